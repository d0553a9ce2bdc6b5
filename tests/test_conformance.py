"""Forward and both gradients against torch.nn.functional, over hypothesis-drawn geometry."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import torchconv
from conftest import make_layout, pad_by_index, reference_conv2d

MODES = ["zeros", "reflect", "replicate", "circular", "symmetric"]


@st.composite
def conv_cases(draw, modes=("zeros",)):
    groups_kind = draw(st.sampled_from(["1", "2", "C"]))
    cg = draw(st.integers(1, 3))
    groups = {"1": 1, "2": 2, "C": draw(st.integers(2, 5))}[groups_kind]
    if groups_kind == "C":
        cg = 1  # depthwise: one input channel per group, any channel multiplier
    kg = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad4 = [draw(st.integers(0, 3)) for _ in range(4)]
    mode = draw(st.sampled_from(modes))
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    H = draw(st.integers(max(1, eh - pad4[2] - pad4[3]), 12))
    W = draw(st.integers(max(1, ew - pad4[0] - pad4[1]), 12))
    if mode == "reflect":  # torch's F.pad (the reference) needs pad < size
        H, W = max(H, max(pad4[2:]) + 1), max(W, max(pad4[:2]) + 1)
    if mode == "circular":
        H, W = max(H, max(pad4[2:])), max(W, max(pad4[:2]))
    return dict(
        algorithm=draw(st.sampled_from(["auto", "im2col", "direct"])), N=draw(st.sampled_from([0, 1, 3, 5])), C=cg * groups, K=kg * groups, H=H, W=W, kh=kh, kw=kw,
        stride=stride, dilation=dilation, pad4=pad4, groups=groups, mode=mode,
        bias=draw(st.booleans()), layout=draw(st.sampled_from(["contiguous", "channels_last", "sliced"])),
        weight_layout=draw(st.sampled_from(["contiguous", "channels_last"])),
    )


def run_case(c, dtype, seed=0):
    """Our output and gradients, and torch's, for one drawn case. The float32 run is compared with torch in float64."""
    g = torch.Generator().manual_seed(seed)
    x64 = torch.randn(c["N"], c["C"], c["H"], c["W"], generator=g, dtype=torch.float64)
    w64 = torch.randn(c["K"], c["C"] // c["groups"], c["kh"], c["kw"], generator=g, dtype=torch.float64)
    b64 = torch.randn(c["K"], generator=g, dtype=torch.float64) if c["bias"] else None
    args = (c["stride"], c["pad4"], c["dilation"], c["groups"])

    x = make_layout(x64.to(dtype), c["layout"]).requires_grad_()
    w = make_layout(w64.to(dtype), c["weight_layout"]).requires_grad_()
    b = b64.to(dtype).requires_grad_() if b64 is not None else None
    y = torchconv.conv2d(x, w, b, c["stride"], c["pad4"], c["dilation"], c["groups"], padding_mode=c["mode"],
                         algorithm=c["algorithm"])
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    gy_ours = make_layout(gy.to(dtype), c.get("grad_layout", "contiguous"))
    grads = torch.autograd.grad(y, [t for t in (x, w, b) if t is not None], gy_ours, allow_unused=True)

    xr, wr = x64.clone().requires_grad_(), w64.clone().requires_grad_()
    br = b64.clone().requires_grad_() if b64 is not None else None
    yr = reference_conv2d(xr, wr, br, *args, mode=c["mode"])
    ref_grads = torch.autograd.grad(yr, [t for t in (xr, wr, br) if t is not None], gy, allow_unused=True)
    return y, grads, yr, ref_grads


def tolerance(dtype, reduction):
    if dtype == torch.float64:
        return dict(rtol=1e-10, atol=1e-10)
    # float32 rounding grows with the number of products summed into each output.
    return dict(rtol=1e-5, atol=4e-7 * max(1, reduction) + 1e-6)


def check_case(c, dtype):
    y, grads, yr, ref_grads = run_case(c, dtype)
    assert y.shape == yr.shape
    R_fwd = (c["C"] // c["groups"]) * c["kh"] * c["kw"]
    R_gx = (c["K"] // c["groups"]) * c["kh"] * c["kw"]
    R_gw = c["N"] * y.shape[2] * y.shape[3]
    torch.testing.assert_close(y.double(), yr, **tolerance(dtype, R_fwd))
    for got, ref, R in zip(grads, ref_grads, (R_gx, R_gw, R_gw)):
        torch.testing.assert_close(got.double(), ref, **tolerance(dtype, R))


@settings(max_examples=150, deadline=None)
@given(conv_cases())
def test_matches_torch_float64(c):
    check_case(c, torch.float64)


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_matches_torch_float32(c):
    check_case(c, torch.float32)


@settings(max_examples=80, deadline=None)
@given(conv_cases(modes=MODES))
def test_padding_modes_match_pad_then_conv(c):
    check_case(c, torch.float64)


@pytest.mark.parametrize("mode", MODES)
def test_padding_mode_wide_pads(mode):
    """Pads wider than the input, which torch's F.pad refuses: torchconv extends the input as numpy.pad does."""
    x = torch.randn(2, 2, 3, 2, dtype=torch.float64)
    w = torch.randn(3, 2, 3, 2, dtype=torch.float64)
    pad4 = [5, 4, 7, 3]
    y = torchconv.conv2d(x, w, None, (1, 2), pad4, (2, 1), padding_mode=mode)
    ref = F.conv2d(pad_by_index(x, pad4, mode), w, None, (1, 2), 0, (2, 1))
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)


def test_symmetric_matches_numpy():
    """'symmetric' (torch has no such mode) against numpy.pad(mode='symmetric') + a plain valid convolution."""
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 4))
    pad = (1, 2, 2, 0)  # left, right, top, bottom
    xp = np.pad(x, ((0, 0), (0, 0), (pad[2], pad[3]), (pad[0], pad[1])), mode="symmetric")
    OH, OW = xp.shape[2] - 2, xp.shape[3] - 3
    ref = np.zeros((2, 4, OH, OW))
    for i in range(3):
        for j in range(4):
            ref += np.einsum("nchw,kc->nkhw", xp[:, :, i:i + OH, j:j + OW], w[:, :, i, j])
    y = torchconv.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=pad, padding_mode="symmetric")
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_reflect_wide_pad_matches_numpy():
    x = torch.randn(1, 1, 3, 4, dtype=torch.float64)
    w = torch.randn(1, 1, 1, 1, dtype=torch.float64)
    y = torchconv.conv2d(x, w, padding=(2, 3, 2, 2), padding_mode="reflect")
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 3)), mode="reflect")
    np.testing.assert_allclose(y.numpy(), xp * w.item(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", [0, 1, (2, 1), (1, 0, 2, 1), "same", "valid"])
@pytest.mark.parametrize("kernel", [(3, 3), (2, 4), (1, 5)])
def test_public_padding_forms(padding, kernel):
    x = torch.randn(2, 4, 9, 10, dtype=torch.float64)
    w = torch.randn(6, 2, *kernel, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    y = torchconv.conv2d(x, w, b, 1, padding, (1, 2), 2)
    if isinstance(padding, tuple) and len(padding) == 4:
        ref = F.conv2d(F.pad(x, padding), w, b, 1, 0, (1, 2), 2)
    else:
        ref = F.conv2d(x, w, b, 1, padding, (1, 2), 2)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)


def test_unbatched_input():
    x = torch.randn(3, 10, 9, dtype=torch.float64)
    w = torch.randn(5, 3, 3, 2, dtype=torch.float64)
    torch.testing.assert_close(torchconv.conv2d(x, w, stride=2, padding=1), F.conv2d(x, w, stride=2, padding=1))


@pytest.mark.parametrize("padding", [0, 2, (3,), "same", "valid"])
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_conv1d_matches_torch(padding, groups):
    x = torch.randn(3, 4, 31, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, 4 // groups, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, dtype=torch.float64, requires_grad=True)
    kw = dict(stride=1 if padding == "same" else 2, padding=padding, dilation=2, groups=groups)
    y, ref = torchconv.conv1d(x, w, b, **kw), F.conv1d(x, w, b, **kw)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    gy = torch.randn_like(y)
    for a, r in zip(torch.autograd.grad(y, (x, w, b), gy), torch.autograd.grad(ref, (x, w, b), gy)):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torchconv.conv1d(x[0], w, b, **kw), F.conv1d(x[0], w, b, **kw))


@pytest.mark.parametrize("x_layout", ["contiguous", "channels_last", "sliced"])
@pytest.mark.parametrize("w_layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", [(2, 3, 6, 5), (1, 1, 6, 5), (2, 3, 1, 1), (0, 3, 6, 5)])
def test_output_layout_follows_torch(x_layout, w_layout, shape):
    x = make_layout(torch.randn(shape), x_layout)
    w = make_layout(torch.randn(4, shape[1], 1, 1), w_layout)
    y, ref = torchconv.conv2d(x, w), F.conv2d(x, w)
    assert y.shape == ref.shape
    if ref.numel() > 1:
        assert y.stride() == ref.stride(), (y.stride(), ref.stride())
    torch.testing.assert_close(y, ref)


def test_worked_example_vertical_edge():
    """An 8x8 step image (0 left, 3 right) with a vertical-edge kernel: the cross-correlation sign gives -9 at the
    step (torch's convention), where a flipped convolution would give +9."""
    x = torch.zeros(1, 1, 8, 8)
    x[..., 4:] = 3.0
    w = torch.tensor([[1.0, 0.0, -1.0]] * 3).reshape(1, 1, 3, 3)
    y = torchconv.conv2d(x, w)
    assert y.shape == (1, 1, 6, 6)
    expected = torch.zeros(6, 6)
    expected[:, 2:4] = -9.0
    torch.testing.assert_close(y[0, 0], expected, rtol=0, atol=0)


def test_worked_example_5x5():
    """Worked by hand: out[i, j] = sum over the 3 rows of x[r, j] - x[r, j + 2]."""
    x = torch.tensor([[2, 2, 2, 2, 2], [2, 2, 2, 2, 2], [4, 0, 6, 2, 2], [0, 2, 1, 2, 2], [3, 2, 0, 2, 2]],
                     dtype=torch.float32).reshape(1, 1, 5, 5)
    w = torch.tensor([[1, 0, -1]] * 3, dtype=torch.float32).reshape(1, 1, 3, 3)
    expected = torch.tensor([[-2, -2, 4], [-3, -2, 3], [0, -2, 1]], dtype=torch.float32)
    y = torchconv.conv2d(x, w)
    torch.testing.assert_close(y[0, 0], expected, rtol=0, atol=0)
    torch.testing.assert_close(y, F.conv2d(x, w), rtol=0, atol=0)


@pytest.mark.parametrize("N", [1, 7, 33])
def test_tiles_span_images(N):
    """Batches large enough that the im2col tiles cross image boundaries, with a partial last tile."""
    x = torch.randn(N, 64, 14, 13, dtype=torch.float64)
    w = torch.randn(32, 64, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(torchconv.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1), rtol=1e-10,
                               atol=1e-10)
    gy = torch.randn(N, 32, 14, 13, dtype=torch.float64)
    gx = torch.ops.torchconv.conv2d_grad_input(gy, w, list(x.shape), [1, 1], [1] * 4, [1, 1], 1, "zeros", "auto")
    gw = torch.ops.torchconv.conv2d_grad_weight(x, gy, list(w.shape), [1, 1], [1] * 4, [1, 1], 1, "zeros", "auto")
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    F.conv2d(xr, wr, padding=1).backward(gy)
    torch.testing.assert_close(gx, xr.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gw, wr.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel,stride", [((3, 3), 1), ((3, 3), 2), ((5, 5), 1), ((5, 5), 2), ((2, 7), (1, 3))])
@pytest.mark.parametrize("C,K,groups", [(4, 8, 4), (6, 10, 2)], ids=["depthwise-x2", "grouped-3to5"])
def test_grouped_every_algorithm(algorithm, mode, kernel, stride, C, K, groups):
    """Depthwise with a channel multiplier of 2, and 2 groups of 3 -> 5 channels: each explicit algorithm, forward
    and both gradients, rows wider than a vector (W=37) so the direct kernel's tiles and row ends both run."""
    c = dict(algorithm=algorithm, N=3, C=C, K=K, H=13, W=37, kh=kernel[0], kw=kernel[1],
             stride=stride if isinstance(stride, tuple) else (stride, stride), dilation=(1, 2), pad4=[2, 1, 1, 2],
             groups=groups, mode=mode, bias=True, layout="contiguous", weight_layout="contiguous")
    for layout in ("contiguous", "channels_last", "sliced"):
        check_case(dict(c, layout=layout), torch.float64)
    check_case(c, torch.float32)


@pytest.mark.parametrize("N", [0, 1, 3])
@pytest.mark.parametrize("C,K,groups", [(5, 7, 1), (6, 4, 2)])
def test_im2col_1x1_in_place(N, C, K, groups):
    """A 1x1 kernel at unit stride without padding: im2col runs its GEMMs on the tensors in place (no workspace for
    the forward and grad_input), on contiguous and channels_last planes and through a copy for a sliced view, with
    the output and both gradients in either layout."""
    for layout, grad_layout in (("contiguous", "contiguous"), ("channels_last", "channels_last"),
                                ("channels_last", "contiguous"), ("sliced", "sliced")):
        c = dict(algorithm="im2col", N=N, C=C, K=K, H=5, W=7, kh=1, kw=1, stride=(1, 1), dilation=(2, 3),
                 pad4=[0, 0, 0, 0], groups=groups, mode="reflect", bias=True, layout=layout, weight_layout=layout,
                 grad_layout=grad_layout)
        check_case(c, torch.float64)
        check_case(c, torch.float32)
    e = torchconv.explain((N, C, 5, 7), (K, C // groups, 1, 1), groups=groups, algorithm="im2col")
    assert e["workspace_bytes"] == e["grad_input"]["workspace_bytes"] == 0
    assert e["grad_weight"]["workspace_bytes"] == (0 if N == 0 else K // groups * C // groups * 4)


@pytest.mark.cpu_backend
@pytest.mark.parametrize("kw", [1, 2, 3, 4, 7, 8, 9])
@pytest.mark.parametrize("W,pad_lr", [(9, (1, 0)), (46, (0, 2)), (77, (3, 1))])
@pytest.mark.parametrize("K,groups", [(16, 1), (6, 2)])
def test_direct_column_stride2(kw, W, pad_lr, K, groups):
    """Column stride 2 at unit column dilation: the forward's pair tile (taps 2s and 2s + 1 of a row from one pair
    of loads), for kw 1..8 and 9 (past the tile: load_even per tap), left padding 0..3, rows of 1, 2 and 3+ vectors
    (tiles along the row), 8- and 2-channel blocks, row stride 2 and 1 with row dilation 2 (tiles across rows)."""
    for stride, dilation, mode in (((2, 2), (1, 1), "zeros"), ((1, 2), (2, 1), "reflect")):
        c = dict(algorithm="direct", N=2, C=4, K=K, H=11, W=W, kh=3, kw=kw, stride=stride, dilation=dilation,
                 pad4=[1, 2, *pad_lr], groups=groups, mode=mode, bias=True, layout="contiguous",
                 weight_layout="contiguous")
        if mode != "zeros" and max(pad_lr) >= W:
            continue
        check_case(c, torch.float64)
        check_case(c, torch.float32)


@pytest.mark.parametrize("kernel,dilation,pad4", [((3, 3), (1, 1), [1, 1, 1, 1]), ((5, 5), (1, 1), [2, 2, 2, 2]),
                                                  ((3, 2), (2, 1), [0, 1, 4, 0]), ((1, 4), (1, 3), [9, 0, 0, 0])])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("C,K,groups", [(6, 6, 6), (6, 4, 2)])
def test_direct_stride1_grad_input(kernel, dilation, pad4, layout, C, K, groups):
    """Zero padding, unit stride: grad_input runs as a forward pass with the kernel flipped and transposed within
    each group."""
    c = dict(algorithm="direct", N=2, C=C, K=K, H=9, W=11, kh=kernel[0], kw=kernel[1], stride=(1, 1),
             dilation=dilation, pad4=pad4, groups=groups, mode="zeros", bias=False, layout=layout,
             weight_layout="contiguous")
    check_case(c, torch.float64)
    check_case(c, torch.float32)


@pytest.mark.parametrize("k,stride", [(3, 1), (3, 2), (5, 1), (5, 2)])
@pytest.mark.parametrize("H,W", [(37, 35), (7, 7), (3, 40)])
@pytest.mark.parametrize("pad", ["centred", "lopsided"])
def test_depthwise_fast_path(k, stride, H, W, pad):
    """The depthwise 3x3 / 5x5, stride 1 / 2 kernel (one channel per group, zero padding): planes with several
    row blocks and a partial one, planes shorter than a block, rows shorter and longer than a vector, and
    asymmetric padding; forward and both gradients (grad_input at stride 1 runs the same kernel)."""
    pad4 = [k // 2] * 4 if pad == "centred" else [k - 1, 0, 0, k - 2]
    c = dict(algorithm="auto", N=3, C=5, K=5, H=H, W=W, kh=k, kw=k, stride=(stride, stride), dilation=(1, 1),
             pad4=pad4, groups=5, mode="zeros", bias=True, layout="contiguous", weight_layout="contiguous")
    for layout in ("contiguous", "channels_last", "sliced"):
        check_case(dict(c, layout=layout), torch.float64)
    check_case(c, torch.float32)


@pytest.mark.parametrize("kernel,stride,dilation", [((3, 3), (1, 1), (1, 1)), ((3, 3), (2, 2), (1, 1)),
                                                    ((5, 5), (1, 1), (1, 1)), ((5, 5), (2, 2), (1, 1)),
                                                    ((3, 3), (2, 1), (1, 1)), ((5, 5), (1, 2), (2, 1)),
                                                    ((2, 4), (1, 2), (2, 1)), ((7, 1), (2, 1), (1, 1))])
@pytest.mark.parametrize("mode", MODES)
def test_depthwise_channels_last(kernel, stride, dilation, mode):
    """Depthwise on channels_last input and output gradient: the kernels that vectorize along C. 37 channels give
    full vectors and a partial one (float32 and float64); W = 37 runs blocks of 8 and 4 pixels and edge pixels,
    W = 7 only short blocks, W = 2 none; 4-sided padding reaches past the kernel's extent on one side. The 3x3 and
    5x5 kernels with unit column dilation take the register-tiled loops in all three passes, also with row stride or
    row dilation other than the column's."""
    for H, W in [(9, 37), (7, 7), (5, 2)]:
        c = dict(algorithm="auto", N=2, C=37, K=37, H=H, W=W, kh=kernel[0], kw=kernel[1], stride=stride,
                 dilation=dilation, pad4=[2, 1, kernel[0], 0], groups=37, mode=mode, bias=True,
                 layout="channels_last", weight_layout="contiguous", grad_layout="channels_last")
        widest = max(max(c["pad4"][:2]) - W, max(c["pad4"][2:]) - H)
        if (mode == "reflect" and widest >= 0) or (mode == "circular" and widest > 0):
            continue  # torch's F.pad, the reference, needs pad < size (reflect) or <= size (circular)
        y, *_ = run_case(c, torch.float64)
        assert y.is_contiguous(memory_format=torch.channels_last)
        check_case(c, torch.float64)
        check_case(c, torch.float32)


@pytest.mark.cpu_backend
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stride,dilation", [((1, 1), (1, 1)), ((2, 1), (1, 2)), ((1, 2), (2, 1))])
@pytest.mark.parametrize("Cg,Kg,groups", [(16, 3, 2), (32, 16, 1)])
def test_grad_weight_by_channel(mode, stride, dilation, Cg, Kg, groups):
    """grad_weight of a 3x3 kernel whose groups hold whole vectors of input channels (16 or 32 in float32, and in
    float64 where 8 fill a vector) runs with input channels along the vector, from a per-thread padded copy of one
    image's group: every padding mode, strides and dilations either way, an odd number of output channels per group
    (the remainder after pairs), batch 0 and 3, and contiguous, channels_last and sliced inputs."""
    for N in (0, 3):
        c = dict(algorithm="direct", N=N, C=Cg * groups, K=Kg * groups, H=9, W=11, kh=3, kw=3, stride=stride,
                 dilation=dilation, pad4=[2, 1, 1, 2], groups=groups, mode=mode, bias=False, layout="contiguous",
                 weight_layout="contiguous")
        for layout in ("contiguous", "channels_last", "sliced"):
            check_case(dict(c, layout=layout), torch.float64)
        check_case(c, torch.float32)
