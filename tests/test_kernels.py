"""Every kernel of the registry, forced by name, on shapes it applies to, against torch: each padding mode it
claims, float64 and float32, and the layouts it takes (copied or in place). A kernel without cases fails the suite,
so no kernel is reached only by chance of the auto rule. tests/test_isa.py runs this file under every ISA."""

import pytest
import torch

import torchconv
from conftest import make_layout, reference_conv2d

MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
NCHW = ("contiguous", "sliced")
ANY = ("contiguous", "channels_last", "sliced")


def case(x, w, stride=1, pad=0, dil=1, groups=1, modes=("zeros",), layouts=ANY):
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    return dict(x=x, w=w, stride=pair(stride), pad=(pad,) * 4 if isinstance(pad, int) else pad, dil=pair(dil),
                groups=groups, modes=modes, layouts=layouts)


# Per kernel: shapes it applies to, odd where it allows (non-square kernels, asymmetric stride, padding and dilation,
# a prime batch, channel counts that leave a partial vector).
CASES = {
    "direct/dw_nhwc_forward": [
        case((3, 20, 9, 11), (20, 1, 3, 5), (2, 1), (1, 2, 0, 1), (1, 2), 20, MODES, ("channels_last",)),
        case((1, 17, 8, 8), (17, 1, 3, 3), 1, 1, 1, 17, MODES, ("channels_last",)),
        case((2, 24, 7, 9), (24, 1, 5, 5), 2, 2, 1, 24, ("zeros",), ("channels_last",)),
    ],
    "direct/dw_nchw_forward": [
        case((3, 6, 10, 9), (6, 1, 5, 5), 2, (2, 1, 2, 0), 1, 6, layouts=NCHW),
        case((1, 4, 17, 19), (4, 1, 3, 3), 1, 1, 1, 4, layouts=NCHW),
    ],
    "direct/dense_nchw_forward": [
        case((3, 6, 9, 8), (4, 3, 3, 2), (2, 1), (1, 0, 2, 1), (1, 2), 2, MODES),
        case((2, 5, 14, 14), (8, 5, 3, 3), 1, 1, 1, 1),
        case((1, 16, 30, 29), (16, 16, 3, 3), 2, 1, 1, 1),  # the stride-2 pair tile
        case((2, 3, 7, 7), (3, 1, 1, 1), 1, 0, 1, 3, layouts=NCHW),  # depthwise 1x1
        case((1, 17, 8, 8), (34, 1, 3, 3), 1, 1, 1, 17),  # depthwise with a channel multiplier of 2
    ],
    "direct/igemm_any_forward": [
        case((3, 6, 9, 8), (4, 3, 3, 2), (2, 1), (1, 0, 2, 1), (1, 2), 2, MODES),
        # A reduction of 300 x 9 rows: several chunks, so later chunks add into the stored result; 70 channels
        # leave a partial panel; runs that wrap output rows inside a tile.
        case((2, 300, 7, 9), (70, 300, 3, 3), 1, (1, 2, 1, 0), 1, 1, ("zeros", "reflect")),
        case((1, 3, 23, 21), (40, 3, 7, 7), 2, 3, 1, 1),  # the stem's shape: stride 2, a 7x7 kernel
        case((5, 16, 6, 5), (24, 8, 1, 1), (1, 2), 0, 1, 2),
    ],
    "im2col/gemm1x1_matrix_forward": [
        case((3, 6, 5, 7), (4, 6, 1, 1)),
        case((2, 8, 4, 5), (6, 4, 1, 1), groups=2, layouts=("contiguous", "channels_last")),
    ],
    "im2col/cols_any_forward": [
        case((3, 6, 9, 8), (4, 3, 3, 2), (2, 3), (1, 0, 2, 1), (1, 2), 2, MODES),
        case((2, 4, 6, 6), (4, 1, 3, 3), 1, 1, 1, 4),
    ],
    "direct/dw_nchw_grad_input": [
        case((3, 6, 10, 9), (6, 1, 5, 5), 2, (2, 1, 2, 0), 1, 6, layouts=NCHW),
        case((1, 4, 17, 16), (4, 1, 3, 3), 2, 1, 1, 4, layouts=NCHW),
    ],
    "direct/dw_nhwc_grad_input": [
        case((3, 20, 9, 11), (20, 1, 3, 5), (2, 1), (1, 2, 0, 1), (1, 2), 20, MODES, ("channels_last",)),
        case((2, 17, 8, 8), (17, 1, 3, 3), 1, 1, 1, 17, ("reflect", "circular"), ("channels_last",)),
    ],
    "direct/flipdw_nhwc_grad_input": [
        case((3, 20, 9, 11), (20, 1, 3, 5), 1, (1, 2, 0, 1), (1, 2), 20, layouts=("channels_last",)),
        case((1, 17, 8, 8), (17, 1, 3, 3), 1, 1, 1, 17, layouts=("channels_last",)),
    ],
    "direct/flipdw_nchw_grad_input": [
        case((3, 6, 10, 9), (6, 1, 5, 5), 1, (2, 1, 2, 0), 1, 6, layouts=NCHW),
        case((1, 4, 17, 16), (4, 1, 3, 3), 1, 1, 1, 4, layouts=NCHW),
    ],
    "direct/flipdense_nchw_grad_input": [
        case((3, 6, 9, 8), (4, 3, 3, 2), 1, (1, 0, 2, 1), (1, 2), 2),
        case((2, 5, 14, 14), (8, 5, 3, 3), 1, 1, 1, 1),
    ],
    "direct/flipigemm_any_grad_input": [
        case((3, 6, 9, 8), (4, 3, 3, 2), 1, (1, 0, 2, 1), (1, 2), 2),
        case((2, 20, 14, 14), (40, 20, 3, 3), 1, 1, 1, 1),  # 360 reduction rows: two chunks
        case((1, 3, 23, 21), (16, 3, 7, 7), 1, 3, 1, 1),
    ],
    "direct/dense_nchw_grad_input": [
        case((3, 6, 9, 8), (4, 3, 3, 2), (2, 1), (1, 0, 2, 1), (1, 2), 2, MODES),
        case((2, 5, 14, 14), (8, 5, 3, 3), 1, 1, 1, 1, ("reflect",)),
    ],
    "im2col/gemm1x1_matrix_grad_input": [
        case((3, 6, 5, 7), (4, 6, 1, 1)),
        case((2, 8, 4, 5), (6, 4, 1, 1), groups=2, layouts=("contiguous", "channels_last")),
    ],
    "im2col/cols_any_grad_input": [
        case((3, 6, 9, 8), (4, 3, 3, 2), (2, 3), (1, 0, 2, 1), (1, 2), 2, MODES),
    ],
    "direct/dw_nhwc_grad_weight": [
        case((3, 20, 9, 11), (20, 1, 3, 5), (2, 1), (1, 2, 0, 1), (1, 2), 20, MODES, ("channels_last",)),
        case((2, 24, 7, 9), (24, 1, 3, 3), 1, 1, 1, 24, ("zeros",), ("channels_last",)),
    ],
    "direct/dw_nchw_grad_weight": [
        case((3, 6, 10, 9), (6, 1, 5, 5), 2, (2, 1, 2, 0), 1, 6, layouts=NCHW),
        case((1, 4, 17, 16), (4, 1, 3, 3), 1, 1, 1, 4, layouts=NCHW),
    ],
    "direct/cvec_nchw_grad_weight": [
        case((3, 16, 9, 7), (8, 16, 3, 3), (2, 1), (1, 0, 2, 1), 1, 1, MODES),
        case((2, 32, 6, 6), (4, 16, 3, 3), 1, 1, (1, 2), 2),
    ],
    "direct/dense_nchw_grad_weight": [
        case((3, 6, 9, 8), (4, 3, 3, 2), (2, 1), (1, 0, 2, 1), (1, 2), 2, MODES),
        case((2, 5, 14, 14), (8, 5, 3, 3), 1, 1, 1, 1),
    ],
    "im2col/gemm1x1_matrix_grad_weight": [
        case((3, 6, 5, 7), (4, 6, 1, 1)),
        case((2, 8, 4, 5), (6, 4, 1, 1), groups=2, layouts=("contiguous", "channels_last")),
    ],
    "im2col/cols_any_grad_weight": [
        case((3, 6, 9, 8), (4, 3, 3, 2), (2, 3), (1, 0, 2, 1), (1, 2), 2, MODES),
    ],
}

PASS_OF = {k["name"]: k["pass"] for k in torchconv.kernels()}
PARAMS = [pytest.param(name, c, mode, layout, dtype, id=f"{name}-{i}-{mode}-{layout}-{str(dtype)[6:]}")
          for name, cases in CASES.items() for i, c in enumerate(cases) for mode in c["modes"]
          for layout in c["layouts"] for dtype in (torch.float64, torch.float32)]


def test_every_kernel_has_cases():
    assert set(CASES) == set(PASS_OF), (set(PASS_OF) - set(CASES), set(CASES) - set(PASS_OF))


def tolerance(dtype, reduction):
    if dtype == torch.float64:
        return dict(rtol=1e-10, atol=1e-10)
    return dict(rtol=1e-5, atol=4e-7 * max(1, reduction) + 1e-6)


def run_kernel(name, c, mode, layout, dtype, operands=None):
    """The kernel's pass on the case's random operands in dtype and layout (or on `operands`: x, w, b, gy), after
    checking that the plan picks this kernel for them. Returns (result, float64 reference on the operands' values,
    operands, reduction length)."""
    pass_ = PASS_OF[name]
    args = (list(c["stride"]), list(c["pad"]), list(c["dil"]), c["groups"], mode)
    if layout != "sliced":  # the plan picks this kernel for these tensors (and raises if it does not apply)
        plan = torchconv.explain(c["x"], c["w"], c["stride"], c["pad"], c["dil"], c["groups"], padding_mode=mode,
                                 algorithm=name, channels_last=layout == "channels_last", dtype=dtype)
        assert (plan if pass_ == "forward" else plan[pass_])["kernel"] == name
    if operands is None:
        g = torch.Generator().manual_seed(7)
        x, w, b = (torch.randn(shape, generator=g, dtype=torch.float64) for shape in (c["x"], c["w"], c["w"][0]))
        gy = torch.randn(reference_conv2d(x, w, None, *args[:4], mode=mode).shape, generator=g, dtype=torch.float64)
        operands = tuple(make_layout(t.to(dtype), layout) if t.dim() == 4 else t.to(dtype) for t in (x, w, b, gy))
    x, w, b, gy = operands
    x64, w64 = x.double().requires_grad_(), w.double().requires_grad_()
    y64 = reference_conv2d(x64, w64, b.double(), *args[:4], mode=mode)
    ref_gx, ref_gw = torch.autograd.grad(y64, (x64, w64), gy.double())
    ops = torch.ops.torchconv
    Kg, Cg = c["w"][0] // c["groups"], c["w"][1]
    taps = c["w"][2] * c["w"][3]
    if pass_ == "forward":
        got, ref, reduction = ops.conv2d(x, w, b, *args, name), y64, Cg * taps
    elif pass_ == "grad_input":
        got, ref, reduction = ops.conv2d_grad_input(gy, w, list(c["x"]), *args, name), ref_gx, Kg * taps
    else:
        got, ref, reduction = ops.conv2d_grad_weight(x, gy, list(c["w"]), *args, name), ref_gw, y64[0, 0].numel()
    assert got.dtype == dtype
    return got, ref.detach(), operands, reduction


@pytest.mark.parametrize("name,c,mode,layout,dtype", PARAMS)
def test_kernel_matches_torch(name, c, mode, layout, dtype):
    got, ref, _, reduction = run_kernel(name, c, mode, layout, dtype)
    torch.testing.assert_close(got.double(), ref, **tolerance(dtype, reduction))


HALF_PARAMS = [pytest.param(name, cases[0], cases[0]["modes"][-1], layout, dtype,
                            id=f"{name}-0-{cases[0]['modes'][-1]}-{layout}-{str(dtype)[6:]}")
               for name, cases in CASES.items() for layout in cases[0]["layouts"]
               for dtype in (torch.bfloat16, torch.float16)]


@pytest.mark.parametrize("name,c,mode,layout,dtype", HALF_PARAMS)
def test_kernel_half_precision(name, c, mode, layout, dtype):
    """bfloat16 and float16 run the kernel on float32 copies and round once: the kernel's float32 result, rounded,
    bit for bit; so within half a unit in the last place of the exact result, plus float32's error."""
    got, ref, operands, reduction = run_kernel(name, c, mode, layout, dtype)
    as_float32 = tuple(t.float() if t.dim() == 1 else make_layout(t.float(), layout) for t in operands)
    got32, _, _, _ = run_kernel(name, c, mode, layout, torch.float32, as_float32)
    assert torch.equal(got, got32.to(dtype))
    f32 = tolerance(torch.float32, reduction)
    half_ulp = torch.finfo(dtype).eps / 2
    torch.testing.assert_close(got.double(), ref, rtol=f32["rtol"] + half_ulp, atol=f32["atol"] * (1 + half_ulp))
