"""gradcheck / gradgradcheck in float64, through all three ops, and reproducibility of the backward."""

import pytest
import torch

import torchconv
from conftest import make_layout, reference_conv2d

CASES = [
    # (x shape, w shape, stride, pad4, dilation, groups, mode)
    ((2, 4, 7, 6), (6, 2, 3, 2), (2, 1), (1, 0, 2, 1), (1, 2), 2, "zeros"),
    ((1, 3, 5, 6), (3, 1, 2, 3), (1, 2), (2, 1, 1, 1), (1, 1), 3, "reflect"),
    ((3, 2, 4, 5), (4, 2, 3, 3), (1, 1), (1, 1, 2, 0), (2, 1), 1, "replicate"),
    ((2, 2, 5, 4), (2, 1, 3, 2), (2, 2), (1, 2, 2, 1), (1, 1), 2, "circular"),
    ((1, 2, 6, 5), (3, 2, 2, 2), (1, 1), (3, 0, 1, 4), (1, 2), 1, "symmetric"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[-1] for c in CASES])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_gradcheck_and_gradgradcheck(case, layout):
    xs, ws, stride, pad4, dilation, groups, mode = case
    x = make_layout(torch.randn(xs, dtype=torch.float64), layout).requires_grad_()
    w = torch.randn(ws, dtype=torch.float64, requires_grad=True)
    b = torch.randn(ws[0], dtype=torch.float64, requires_grad=True)

    def f(x, w, b):
        return torchconv.conv2d(x, w, b, stride, pad4, dilation, groups, padding_mode=mode)

    assert torch.autograd.gradcheck(f, (x, w, b))
    assert torch.autograd.gradgradcheck(f, (x, w, b))


def test_gradcheck_ops_directly():
    """The three ops called through the dispatcher, so through the autograd registered with torch.library (the path
    torch.compile sees; torchconv.conv2d's eager calls take _ops.call's autograd.Function): gradients of conv2d, and
    the two backward ops differentiable in both their tensor arguments (third order of conv2d)."""
    args = ([2, 1], [1, 0, 1, 2], [1, 2], 2, "reflect", "auto")
    x = torch.randn(2, 4, 6, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    gy = torch.randn(torch.ops.torchconv.conv2d(x, w, None, *args).shape, dtype=torch.float64, requires_grad=True)
    gi = lambda gy, w: torch.ops.torchconv.conv2d_grad_input(gy, w, list(x.shape), *args)  # noqa: E731
    gw = lambda x, gy: torch.ops.torchconv.conv2d_grad_weight(x, gy, list(w.shape), *args)  # noqa: E731
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    conv = lambda x, w, b: torch.ops.torchconv.conv2d(x, w, b, *args)  # noqa: E731
    assert torch.autograd.gradcheck(conv, (x, w, b)) and torch.autograd.gradgradcheck(conv, (x, w, b))
    assert torch.autograd.gradcheck(gi, (gy, w)) and torch.autograd.gradgradcheck(gi, (gy, w))
    assert torch.autograd.gradcheck(gw, (x, gy)) and torch.autograd.gradgradcheck(gw, (x, gy))


def _backward(x, w, gy, groups):
    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    y = torchconv.conv2d(x, w, None, 1, 1, 1, groups)
    return torch.autograd.grad(y, (x, w), gy)


@pytest.mark.cpu_backend  # the CPU's tiles and threads; test_cuda_emulation.py has the CUDA backend's
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C,K,groups,layout", [(64, 32, 2, torch.contiguous_format),
                                               (32, 64, 1, torch.contiguous_format),
                                               (40, 40, 40, torch.channels_last)],
                         ids=["grouped-direct", "dense-im2col-grad-weight", "depthwise-channels-last"])
def test_backward_bitwise_reproducible(dtype, C, K, groups, layout):
    """Large enough for several im2col tiles and both threads: every run gives the same bits."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, C, 20, 20, generator=g, dtype=dtype).contiguous(memory_format=layout)
    w = torch.randn(K, C // groups, 3, 3, generator=g, dtype=dtype)
    gy = torch.randn(9, K, 20, 20, generator=g, dtype=dtype).contiguous(memory_format=layout)
    first = _backward(x, w, gy, groups)
    for _ in range(4):
        for a, b in zip(first, _backward(x, w, gy, groups)):
            assert torch.equal(a, b)


@pytest.mark.parametrize("needs", ["input", "weight", "bias", "none"])
def test_calls_without_autograd_work_skip_it_and_agree(needs):
    """conv2d goes straight to the kernel when autograd has nothing to record (torchconv._ops.call):
    the same values in every such context, and a gradient for whichever single argument requires one."""
    g = torch.Generator().manual_seed(1)
    x, w, b = (torch.randn(s, generator=g, dtype=torch.float64) for s in ((3, 4, 7, 5), (6, 2, 3, 2), (6,)))
    args = ((2, 1), (1, 0, 2, 1), (1, 2), 2)
    expected = reference_conv2d(x, w, b, *args)
    if needs != "none":
        {"input": x, "weight": w, "bias": b}[needs].requires_grad_()
    y = torchconv.conv2d(x, w, b, *args)
    assert torch.allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert y.requires_grad == (needs != "none")
    if needs != "none":
        t = {"input": x, "weight": w, "bias": b}[needs]
        (grad,) = torch.autograd.grad(y.sum(), t)
        (ref_grad,) = torch.autograd.grad(reference_conv2d(x, w, b, *args).sum(), t)
        assert torch.allclose(grad, ref_grad, rtol=1e-12, atol=1e-12)
    for ctx in (torch.no_grad, torch.inference_mode):
        with ctx():
            y = torchconv.conv2d(x, w, b, *args)
        assert not y.requires_grad and torch.allclose(y, expected, rtol=1e-12, atol=1e-12)
