"""Op registration: opcheck on every op in torch.ops.torchconv, torch.compile and torch.export."""

import pytest
import torch
import torch.nn.functional as F

import torchconv


def torchconv_ops():
    """Every op registered in the torchconv namespace, found from the dispatcher so none can be missed."""
    names = sorted({n.split("::")[1].split(".")[0] for n in torch._C._dispatch_get_all_op_names()
                    if n.startswith("torchconv::")})
    assert names, "no torchconv ops registered"
    return names


def _geom(mode="zeros"):
    return [[2, 1], [1, 0, 2, 1], [1, 2], 2, mode, "auto"]


def conv2d_samples():
    for mode in ("zeros", "reflect", "symmetric"):
        for cl in (False, True):
            x = torch.randn(3, 4, 7, 8, dtype=torch.float64, requires_grad=True)
            if cl:
                x = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
            w = torch.randn(6, 2, 3, 2, dtype=torch.float64, requires_grad=True)
            b = torch.randn(6, dtype=torch.float64, requires_grad=True)
            yield (x, w, b, *_geom(mode))
            yield (x.detach().float(), w.detach().float(), None, *_geom(mode))


def _gy(x, w, mode):
    return torch.ops.torchconv.conv2d(x.detach(), w.detach(), None, *_geom(mode))


def conv2d_grad_input_samples():
    for mode in ("zeros", "circular"):
        x = torch.randn(3, 4, 7, 8, dtype=torch.float64)
        w = torch.randn(6, 2, 3, 2, dtype=torch.float64, requires_grad=True)
        gy = torch.randn_like(_gy(x, w, mode)).requires_grad_()
        yield (gy, w, list(x.shape), *_geom(mode))


def conv2d_grad_weight_samples():
    for mode in ("zeros", "replicate"):
        x = torch.randn(3, 4, 7, 8, dtype=torch.float64, requires_grad=True)
        w = torch.randn(6, 2, 3, 2, dtype=torch.float64)
        gy = torch.randn_like(_gy(x, w, mode)).requires_grad_()
        yield (x, gy, list(w.shape), *_geom(mode))


SAMPLES = {
    "conv2d": conv2d_samples,
    "conv2d_grad_input": conv2d_grad_input_samples,
    "conv2d_grad_weight": conv2d_grad_weight_samples,
}


def test_every_op_has_samples():
    assert set(torchconv_ops()) == set(SAMPLES), "add opcheck samples for every new op"


def _as_dtype(args, dtype):
    return tuple(a.detach().to(dtype).requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a
                 for a in args)


@pytest.mark.parametrize("name", torchconv_ops())
def test_opcheck(name):
    op = getattr(torch.ops.torchconv, name).default
    for args in SAMPLES[name]():
        torch.library.opcheck(op, args)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", torchconv_ops())
def test_opcheck_half(name, dtype):
    op = getattr(torch.ops.torchconv, name).default
    torch.library.opcheck(op, _as_dtype(next(iter(SAMPLES[name]())), dtype))


class SmallNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, padding_mode="reflect")
        self.pw = torch.nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.pw(torch.relu(self.dw(torch.relu(self.stem(x)))))


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    torch._dynamo.reset()
    ref = SmallNet().double()
    model = torchconv.convert(SmallNet().double())
    model.load_state_dict(ref.state_dict())
    compiled = torch.compile(model, fullgraph=True, dynamic=dynamic)
    for n in (2, 3):
        x = torch.randn(n, 3, 16, 12, dtype=torch.float64, requires_grad=True)
        y = compiled(x)
        torch.testing.assert_close(y, ref(x))
        g_ours = torch.autograd.grad(y.square().sum(), (x, model.dw.weight))
        g_ref = torch.autograd.grad(ref(x).square().sum(), (x, ref.dw.weight))
        for a, b in zip(g_ours, g_ref):
            torch.testing.assert_close(a, b)


def test_compile_functional_with_symmetric_padding():
    w = torch.randn(4, 3, 2, 3)

    def f(x):
        return torchconv.conv2d(x, w, padding=(1, 2, 0, 1), padding_mode="symmetric").relu()

    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(torch.compile(f, fullgraph=True)(x), f(x))


def test_export():
    model = torchconv.convert(SmallNet())
    x = torch.randn(2, 3, 16, 12)
    ep = torch.export.export(model, (x,))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert "torchconv.conv2d.default" in targets, targets
    torch.testing.assert_close(ep.module()(x), model(x))
    x2 = torch.randn(2, 3, 16, 12)
    torch.testing.assert_close(ep.module()(x2), F.conv2d(F.relu(model.dw(F.relu(model.stem(x2)))), model.pw.weight,
                                                          model.pw.bias))
