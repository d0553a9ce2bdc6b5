"""torchconv.nn modules and convert(): drop-in for torch.nn, and a converted model trains like the original."""

import copy

import pytest
import torch
from torch import nn

import torchconv


@pytest.mark.parametrize("kwargs", [
    dict(in_channels=4, out_channels=6, kernel_size=3),
    dict(in_channels=4, out_channels=6, kernel_size=(2, 3), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
    dict(in_channels=4, out_channels=4, kernel_size=4, padding="same", groups=4, bias=False),
    dict(in_channels=4, out_channels=8, kernel_size=3, padding=2, padding_mode="reflect"),
    dict(in_channels=4, out_channels=8, kernel_size=(3, 2), padding=(1, 2), padding_mode="circular"),
    dict(in_channels=4, out_channels=8, kernel_size=3, padding="same", padding_mode="replicate"),
])
def test_conv2d_module_matches_torch(kwargs):
    torch.manual_seed(0)
    ref = nn.Conv2d(**kwargs).double()
    ours = torchconv.nn.Conv2d(**kwargs).double()
    assert isinstance(ours, nn.Conv2d)
    assert ours.state_dict().keys() == ref.state_dict().keys()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 4, 11, 10, dtype=torch.float64, requires_grad=True)
    y, yr = ours(x), ref(x)
    torch.testing.assert_close(y, yr)
    g = torch.autograd.grad(y.sum(), [x, *ours.parameters()])
    gr = torch.autograd.grad(yr.sum(), [x, *ref.parameters()])
    for a, b in zip(g, gr):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kwargs", [
    dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1),
    dict(in_channels=4, out_channels=4, kernel_size=4, padding="same", groups=4, dilation=2),
    dict(in_channels=4, out_channels=8, kernel_size=3, padding=2, padding_mode="circular", groups=2),
])
def test_conv1d_module_matches_torch(kwargs):
    ref = nn.Conv1d(**kwargs).double()
    ours = torchconv.nn.Conv1d(**kwargs).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4, 40, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours(x[0]), ref(x[0]))


def test_symmetric_padding_module():
    m = torchconv.nn.Conv2d(2, 3, 3, padding=(2, 1), padding_mode="symmetric").double()
    assert m.padding_mode == "symmetric"
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    y = torchconv.conv2d(x, m.weight, m.bias, padding=(1, 1, 2, 2), padding_mode="symmetric")
    torch.testing.assert_close(m(x), y)
    assert "symmetric" in repr(m)


def test_algorithm_attribute():
    m = torchconv.nn.Conv2d(2, 3, 3, algorithm="im2col")
    assert m.algorithm == "im2col" and "algorithm='im2col'" in repr(m)
    m.algorithm = "unknown"
    with pytest.raises(RuntimeError, match="unknown algorithm 'unknown'"):
        m(torch.randn(1, 2, 5, 5))


class Block(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, BatchNorm, with a residual."""

    def __init__(self, c):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.pw = nn.Conv2d(c, c, 1)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.pw(torch.relu(self.bn1(self.dw(x))))))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.BatchNorm2d(8), nn.ReLU())
        self.conv = nn.Conv2d(8, 16, 3, padding=1)
        self.block = Block(16)
        self.head = nn.Conv1d(16, 10, 2)
        self.fc = nn.Linear(10, 5)

    def forward(self, x):
        x = self.block(torch.relu(self.conv(self.stem(x))))
        x = self.head(x.mean(2))  # (N, 16, W) -> conv1d
        return self.fc(x.mean(2))


def test_convert_swaps_every_conv_and_keeps_state():
    torch.manual_seed(0)
    model = SmallCNN().double().eval()
    params_before = {n: p for n, p in model.named_parameters()}
    out = torchconv.convert(model, algorithm="im2col")
    assert out is model and not model.training
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    assert len(convs) == 5
    assert all(type(m) in (torchconv.nn.Conv1d, torchconv.nn.Conv2d) for m in convs)
    assert all(m.algorithm == "im2col" for m in convs)
    # The same Parameter objects: an optimizer built before convert() still drives the model.
    assert all(p is params_before[n] for n, p in model.named_parameters())
    assert all(p.dtype == torch.float64 for p in model.parameters())


def test_convert_a_bare_conv():
    conv = nn.Conv2d(3, 4, 3)
    new = torchconv.convert(conv)
    assert type(new) is torchconv.nn.Conv2d and new.weight is conv.weight


def test_converted_model_trains_like_the_original():
    torch.manual_seed(0)
    ref = SmallCNN().double()
    initial = copy.deepcopy(ref)
    ours = torchconv.convert(copy.deepcopy(ref))
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    opt = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        x = torch.randn(5, 3, 20, 18, generator=g, dtype=torch.float64)
        target = torch.randint(0, 5, (5,), generator=g)
        for model, o in ((ref, opt_ref), (ours, opt)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(model(x), target).backward()
            o.step()
    for (name, p), q in zip(ref.named_parameters(), ours.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-8, msg=name)
    for (name, b), c in zip(ref.named_buffers(), ours.buffers()):
        torch.testing.assert_close(c, b, rtol=0, atol=1e-8, msg=name)
    # The steps really moved every conv weight, so the comparison above is not of untouched parameters.
    for m0, m in zip(initial.modules(), ours.modules()):
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            assert (m.weight - m0.weight).abs().max() > 1e-4
