"""bfloat16 and float16 on the CPU: every op computes them in float32 on float32 copies of a chunk of the batch and
rounds once (tests/test_kernels.py checks each kernel bit for bit against its float32 result). Here: the error
against the exact result is no worse than torch's own half-precision convolution, the chunks of a large batch, the
edge cases, and autocast."""

import copy

import pytest
import torch
import torch.nn.functional as F

import torchconv
from conftest import reference_conv2d

HALF = [torch.bfloat16, torch.float16]

# (x shape, w shape, stride, 4-sided padding (left, right, top, bottom), dilation, groups, padding mode, layout)
GEOMETRY = [
    ((2, 6, 11, 13), (4, 6, 3, 2), (1, 2), (1, 0, 2, 1), (2, 1), 1, "zeros", "contiguous"),
    ((5, 6, 9, 8), (8, 3, 3, 3), (2, 1), (1, 1, 1, 1), (1, 1), 2, "reflect", "channels_last"),
    ((1, 16, 12, 12), (16, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 16, "zeros", "contiguous"),
    ((3, 24, 10, 9), (24, 1, 5, 3), (2, 2), (2, 2, 1, 1), (1, 1), 24, "circular", "channels_last"),
    ((3, 64, 8, 8), (32, 64, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, "zeros", "contiguous"),
    ((2, 64, 9, 9), (64, 64, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, "zeros", "contiguous"),
]


def _layout(t, layout):
    return t.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else t.contiguous()


def _max_err(got, ref):
    return (got.double() - ref).abs().max().item()


@pytest.mark.parametrize("algorithm", ["auto", "direct", "im2col"])
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("geom", GEOMETRY, ids=lambda g: f"{g[0]}-{g[1]}-g{g[5]}-{g[6]}-{g[7]}")
def test_no_less_accurate_than_torch(geom, dtype, algorithm):
    """Forward and both gradients: the largest error against the exact (float64) result on the same half-precision
    values is at most torch's own half-precision convolution's, or half an ulp of the largest value."""
    xs, ws, stride, pad4, dil, groups, mode, layout = geom
    g = torch.Generator().manual_seed(3)
    x, w = (_layout(torch.randn(s, generator=g).to(dtype), layout) for s in (xs, ws))
    b = torch.randn(ws[0], generator=g).to(dtype)
    gy = _layout(torch.randn(reference_conv2d(x.float(), w.float(), None, stride, pad4, dil, groups, mode).shape,
                             generator=g).to(dtype), layout)

    def run(fn, *inputs):
        inputs = [t.detach().requires_grad_() for t in inputs]
        y = fn(*inputs)
        return (y, *torch.autograd.grad(y, inputs, gy.to(y.dtype)))

    ours = run(lambda x, w: torchconv.conv2d(x, w, b, stride, pad4, dil, groups, padding_mode=mode,
                                             algorithm=algorithm), x, w)
    torchs = run(lambda x, w: reference_conv2d(x, w, b, stride, pad4, dil, groups, mode), x, w)
    exact = run(lambda x, w: reference_conv2d(x, w, b.double(), stride, pad4, dil, groups, mode), x.double(),
                w.double())
    for name, o, t, e in zip(("output", "grad_input", "grad_weight"), ours, torchs, exact):
        assert o.dtype == dtype and o.shape == e.shape
        half_ulp = torch.finfo(dtype).eps / 2 * e.abs().max().item()
        bound = max(_max_err(t, e), half_ulp) * 1.05
        assert _max_err(o, e) <= bound, (name, _max_err(o, e), _max_err(t, e))
    assert ours[0].is_contiguous(memory_format=torch.channels_last) == (layout == "channels_last")


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("shape,groups,algorithm", [
    ((3, 256, 128, 128), 256, "direct/dw_nchw_forward"),  # one 32 MiB image per chunk: three chunks
    ((5, 16, 256, 256), 1, "auto"),                        # four images per chunk, then one
], ids=["depthwise", "dense"])
def test_large_batch_runs_in_chunks(shape, groups, algorithm, dtype):
    """A batch whose float32 copies pass 32 MiB is computed a chunk of images at a time: each image's output and
    input gradient are its float32 result rounded; the weight gradient sums the chunks."""
    N, C, H, W = shape
    plan = torchconv.explain(shape, (C, C // groups, 3, 3), padding=1, groups=groups, dtype=dtype)
    image = 4 * 2 * C * H * W
    per_chunk = max(1, (32 << 20) // image)
    assert per_chunk < N
    assert plan["workspace_bytes"] >= per_chunk * image
    assert torchconv.explain(shape, (C, C // groups, 3, 3), padding=1, groups=groups)["workspace_bytes"] < image
    g = torch.Generator().manual_seed(5)
    x = torch.randn(shape, generator=g).to(dtype)
    w = torch.randn(C, C // groups, 3, 3, generator=g).to(dtype)
    gy = torch.randn(shape, generator=g).to(dtype)
    args = ((1, 1), (1, 1, 1, 1), (1, 1), groups, "zeros", algorithm if algorithm == "auto" else "direct")
    ops = torch.ops.torchconv
    fwd = algorithm if algorithm != "auto" else "auto"
    y = ops.conv2d(x, w, None, *args[:-1], fwd)
    gx = ops.conv2d_grad_input(gy, w, list(shape), *args)
    gw = ops.conv2d_grad_weight(x, gy, list(w.shape), *args)
    # Image by image in float32, so that no chunk boundary is shared with the half-precision call.
    for n in range(N):
        xn, gyn = x[n:n + 1].float(), gy[n:n + 1].float()
        assert torch.equal(y[n:n + 1], ops.conv2d(xn, w.float(), None, *args[:-1], fwd).to(dtype))
        assert torch.equal(gx[n:n + 1], ops.conv2d_grad_input(gyn, w.float(), [1, C, H, W], *args).to(dtype))
    gw32 = ops.conv2d_grad_weight(x.float(), gy.float(), list(w.shape), *args)
    torch.testing.assert_close(gw.float(), gw32, rtol=torch.finfo(dtype).eps, atol=1e-5 * gw32.abs().max().item())


@pytest.mark.parametrize("dtype", HALF)
def test_nothing_to_sum(dtype):
    """An empty batch, and no input channels (every output is its channel's bias), in half precision."""
    w, b = torch.randn(4, 3, 3, 3).to(dtype), torch.randn(4).to(dtype)
    assert torchconv.conv2d(torch.randn(0, 3, 8, 8).to(dtype), w, b, padding=1).shape == (0, 4, 8, 8)
    y = torchconv.conv2d(torch.randn(2, 0, 5, 5).to(dtype), torch.randn(4, 0, 3, 3).to(dtype), b, padding=1)
    assert y.dtype == dtype and torch.equal(y, b.view(1, 4, 1, 1).expand(2, 4, 5, 5))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, padding_mode="reflect")
        self.up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.pw = torch.nn.Conv1d(4, 2, 1)

    def forward(self, x):
        y = self.up(torch.relu(self.dw(torch.relu(self.stem(x)))))
        return self.pw(y.flatten(2))


@pytest.mark.parametrize("dtype", HALF)
def test_autocast_runs_converted_model_as_torch_does(dtype):
    """Under torch.autocast("cpu", dtype) every layer of a converted model computes in dtype, as torch's do; the
    float32 parameters get float32 gradients, close to torch's under the same autocast."""
    torch.manual_seed(0)
    ref = Net()
    model = torchconv.convert(copy.deepcopy(ref))
    x = torch.randn(2, 3, 12, 10)
    with torch.autocast("cpu", dtype=dtype):
        want, got = ref(x), model(x)
    assert got.dtype == want.dtype == dtype
    tol = dict(rtol=2 * torch.finfo(dtype).eps, atol=2 * torch.finfo(dtype).eps * want.abs().max().item())
    torch.testing.assert_close(got, want, **tol)
    want.float().square().sum().backward()
    got.float().square().sum().backward()
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert p.grad.dtype == torch.float32, name
        torch.testing.assert_close(p.grad, q.grad, rtol=0.05, atol=0.05 * q.grad.abs().max().item(), msg=name)


def test_autocast_leaves_float64_and_other_devices_alone():
    x, w = torch.randn(1, 3, 6, 6, dtype=torch.float64), torch.randn(4, 3, 3, 3, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torchconv.conv2d(x, w).dtype == F.conv2d(x, w).dtype == torch.float64
        assert torchconv.conv2d(x.float(), w.float()).dtype == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
        assert torchconv.conv2d(x.float(), w.float()).dtype == torch.float32


@pytest.mark.parametrize("dtype", HALF)
def test_autocast_compiles(dtype):
    torch._dynamo.reset()
    model = torchconv.convert(Net())
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(2, 3, 12, 10)
    with torch.autocast("cpu", dtype=dtype):
        want, got = model(x), compiled(x)
    assert got.dtype == dtype
    torch.testing.assert_close(got, want, rtol=2 * torch.finfo(dtype).eps,
                               atol=2 * torch.finfo(dtype).eps * want.abs().max().item())


def test_transposed_bias_dtype_must_match_outside_autocast():
    x, w = torch.randn(1, 2, 4, 4, dtype=torch.bfloat16), torch.randn(2, 3, 3, 3, dtype=torch.bfloat16)
    with pytest.raises(RuntimeError, match=r"bias has dtype float32 but input has dtype bfloat16"):
        torchconv.conv_transpose2d(x, w, torch.randn(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torchconv.conv_transpose2d(x.float(), w.float(), torch.randn(3)).dtype == torch.bfloat16
