"""The CUDA backend's kernels, run on the CPU under torchconv.testing.cuda_emulation(): every row of the CUDA
registry forced by name against torch (every padding mode, every dtype, contiguous / channels_last / sliced
tensors), the launches each makes, autograd, determinism, the column chunks, and the emulator's own check that a
missing barrier gives a wrong answer. The same kernel sources run on a GPU in tests/test_cuda.py."""

import pytest
import torch
import torch.nn.functional as F

import torchconv
from conftest import make_layout, pad_by_index
from torchconv.testing import cuda_emulation

MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
ALL_DTYPES = (torch.float64, torch.float32, torch.bfloat16, torch.float16)
ops = torch.ops.torchconv


def reference_conv2d(x, w, b, stride, pad4, dilation, groups, mode="zeros"):
    """numpy.pad's index maps, then an unpadded F.conv2d: any pad width in every mode (F.pad refuses wide ones)."""
    return F.conv2d(pad_by_index(x, pad4, mode), w, b, stride, 0, dilation, groups)


def case(x, w, stride=1, pad=0, dil=1, groups=1, modes=("zeros",), layouts=("contiguous", "channels_last", "sliced")):
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    return dict(x=x, w=w, stride=pair(stride), pad=(pad,) * 4 if isinstance(pad, int) else pad, dil=pair(dil),
                groups=groups, modes=modes, layouts=layouts)


# Odd geometry, small enough to emulate (each thread is a function call, each barrier a fiber switch): non-square
# kernels, asymmetric stride, padding and dilation, groups of 1, 2 and C, batches of 1 and a prime.
DENSE = case((3, 4, 7, 6), (5, 4, 3, 2), (2, 1), (1, 0, 2, 1), (1, 2), 1, MODES)
GROUPED = case((1, 6, 6, 7), (4, 3, 2, 3), (1, 2), (2, 1, 0, 1), (2, 1), 2, MODES)
DEPTHWISE = case((3, 5, 6, 5), (10, 1, 3, 3), 2, (1, 2, 1, 0), 1, 5, MODES)  # a channel multiplier of 2
WIDE_PAD = case((2, 3, 3, 4), (3, 1, 2, 3), 1, (5, 4, 6, 3), 1, 3, ("reflect", "circular", "symmetric"))
NHWC = ("channels_last",)
CASES = {
    "direct/direct_nhwc_forward": [case(*[DEPTHWISE[k] for k in ("x", "w", "stride", "pad", "dil", "groups",
                                                                  "modes")], NHWC),
                                   case((2, 33, 4, 3), (33, 1, 3, 3), 1, 1, 1, 33, layouts=NHWC)],
    "direct/tiled_nchw_forward": [DENSE, GROUPED, case((1, 3, 20, 21), (7, 3, 3, 3), 1, 1)],  # 2 pixel tiles
    "direct/direct_nchw_forward": [DEPTHWISE, DENSE, WIDE_PAD],
    "im2col/cols_any_forward": [DENSE, GROUPED, DEPTHWISE],
    "direct/direct_nhwc_grad_input": [case(*[GROUPED[k] for k in ("x", "w", "stride", "pad", "dil", "groups",
                                                                   "modes")], NHWC)],
    "direct/direct_nchw_grad_input": [DEPTHWISE, DENSE, WIDE_PAD],
    "im2col/cols_any_grad_input": [DENSE, GROUPED, WIDE_PAD],
    "direct/reduce_nhwc_grad_weight": [case(*[DEPTHWISE[k] for k in ("x", "w", "stride", "pad", "dil", "groups",
                                                                      "modes")], NHWC),
                                       case((2, 40, 3, 3), (40, 1, 3, 3), 1, 1, 1, 40, layouts=NHWC)],  # 2 tiles
    "direct/reduce_nchw_grad_weight": [DENSE, GROUPED, WIDE_PAD],
    "im2col/cols_any_grad_weight": [DENSE, GROUPED, DEPTHWISE],
}
ROWS = {k["name"]: k for k in torchconv.kernels("cuda")}
# The launches each row makes (the im2col rows: their steps around torch's bmm).
LAUNCHES = {
    "im2col/cols_any_forward": ["im2col", "rows_to_output"],
    "im2col/cols_any_grad_input": ["output_to_rows", "col2im"],
    "im2col/cols_any_grad_weight": ["im2col", "output_to_rows"],
}


def test_every_cuda_kernel_has_cases():
    assert set(CASES) == set(ROWS)


def operands(c, mode, layout, dtype):
    g = torch.Generator().manual_seed(11)
    x, w, b = (torch.randn(s, generator=g, dtype=torch.float64) for s in (c["x"], c["w"], c["w"][0]))
    args = (list(c["stride"]), list(c["pad"]), list(c["dil"]), c["groups"])
    gy = torch.randn(reference_conv2d(x, w, None, *args, mode=mode).shape, generator=g, dtype=torch.float64)
    return tuple(make_layout(t.to(dtype), layout) if t.dim() == 4 else t.to(dtype) for t in (x, w, b, gy))


def run_pass(name, c, mode, ops_, algorithm):
    """The pass of row `name` on operands (x, w, b, gy), and its float64 reference from torch's autograd."""
    x, w, b, gy = ops_
    args = (list(c["stride"]), list(c["pad"]), list(c["dil"]), c["groups"], mode)
    x64, w64 = x.double().requires_grad_(), w.double().requires_grad_()
    y64 = reference_conv2d(x64, w64, b.double(), *args[:4], mode=mode)
    gx64, gw64 = torch.autograd.grad(y64, (x64, w64), gy.double())
    pass_ = ROWS[name]["pass"]
    if pass_ == "forward":
        return ops.conv2d(x, w, b, *args, algorithm), y64.detach(), c["w"][1] * c["w"][2] * c["w"][3]
    if pass_ == "grad_input":
        return ops.conv2d_grad_input(gy, w, list(c["x"]), *args, algorithm), gx64, c["w"][0] * c["w"][2] * c["w"][3]
    return ops.conv2d_grad_weight(x, gy, list(c["w"]), *args, algorithm), gw64, gy[0, 0].numel() * c["x"][0]


def tolerance(dtype, reduction, ref):
    if dtype == torch.float64:
        return dict(rtol=1e-10, atol=1e-10)
    if dtype == torch.float32:
        return dict(rtol=1e-5, atol=4e-7 * reduction + 1e-6)
    # Half types accumulate in float32 and round once, except the im2col rows, whose GEMM (torch's bmm) rounds its
    # product before the bias is added: two roundings, each up to half a unit of the largest term.
    eps = torch.finfo(dtype).eps
    return dict(rtol=eps, atol=eps * float(ref.abs().max()))


PARAMS = [pytest.param(name, c, mode, layout, dtype, id=f"{name}-{i}-{mode}-{layout}-{str(dtype)[6:]}")
          for name, cases in CASES.items() for i, c in enumerate(cases) for mode in c["modes"]
          for layout in c["layouts"] for dtype in ALL_DTYPES
          if dtype in (torch.float64, torch.float32) or (mode == c["modes"][-1] and layout == c["layouts"][0])]


@pytest.mark.parametrize("name,c,mode,layout,dtype", PARAMS)
def test_cuda_kernel_matches_torch(name, c, mode, layout, dtype):
    ops_ = operands(c, mode, layout, dtype)
    if layout != "sliced":  # the CUDA plan picks this kernel for these tensors
        plan = torchconv.explain(c["x"], c["w"], c["stride"], c["pad"], c["dil"], c["groups"], padding_mode=mode,
                                 algorithm=name, channels_last=layout == "channels_last", dtype=dtype, device="cuda")
        pass_ = ROWS[name]["pass"]
        assert (plan if pass_ == "forward" else plan[pass_])["kernel"] == name
    with cuda_emulation() as emu:
        got, ref, reduction = run_pass(name, c, mode, ops_, name)
    assert got.dtype == dtype
    kernel = name.split("/")[1]
    assert emu.kernels() == LAUNCHES.get(name, [kernel])
    torch.testing.assert_close(got.double(), ref, **tolerance(dtype, reduction, ref))


def test_half_precision_direct_rounds_once():
    """A direct kernel in a half type accumulates in float32 and rounds once: its float32 result, rounded, up to a
    difference in the float32 sum's last bit that flips a rounding (none on these values)."""
    c = DEPTHWISE
    for dtype in (torch.bfloat16, torch.float16):
        x, w, b, gy = operands(c, "reflect", "contiguous", dtype)
        with cuda_emulation():
            half = ops.conv2d(x, w, b, list(c["stride"]), list(c["pad"]), [1, 1], c["groups"], "reflect", "direct")
            full = ops.conv2d(x.float(), w.float(), b.float(), list(c["stride"]), list(c["pad"]), [1, 1],
                              c["groups"], "reflect", "direct")
        assert torch.equal(half, full.to(dtype))


@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
def test_gradcheck_and_gradgradcheck(algorithm):
    x = torch.randn(1, 4, 4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    f = lambda x, w, b: torchconv.conv2d(x, w, b, (2, 1), (1, 0), 1, 2, padding_mode="reflect",  # noqa: E731
                                         algorithm=algorithm)
    with cuda_emulation():
        assert torch.autograd.gradcheck(f, (x, w, b))
        assert torch.autograd.gradgradcheck(f, (x, w, b))


@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
def test_backward_is_deterministic(algorithm):
    """Two runs give the same bits: no atomics, fixed reduction trees, chunks added in order."""
    x = torch.randn(5, 6, 9, 8, dtype=torch.float32)
    w = torch.randn(6, 3, 3, 3, dtype=torch.float32, requires_grad=True)
    runs = []
    for _ in range(2):
        xr = x.clone().requires_grad_()
        with cuda_emulation(column_bytes=4096) as emu:
            y = torchconv.conv2d(xr, w, None, 1, 1, 1, 2, algorithm=algorithm)
            gx, gw = torch.autograd.grad(y.square().sum(), (xr, w))
        runs.append((gx, gw))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    if algorithm == "im2col":
        assert sum(r.kernel == "im2col" for r in emu.launches) > 2  # the batch ran in several chunks


def test_column_chunks_match_one_chunk():
    x, w, b, gy = operands(DENSE, "circular", "contiguous", torch.float64)
    args = (list(DENSE["stride"]), list(DENSE["pad"]), list(DENSE["dil"]), 1, "circular", "im2col")
    with cuda_emulation() as whole:
        y1, gx1, gw1 = (ops.conv2d(x, w, b, *args), ops.conv2d_grad_input(gy, w, list(x.shape), *args),
                        ops.conv2d_grad_weight(x, gy, list(w.shape), *args))
    with cuda_emulation(column_bytes=1) as chunked:  # one image a chunk
        y2, gx2, gw2 = (ops.conv2d(x, w, b, *args), ops.conv2d_grad_input(gy, w, list(x.shape), *args),
                        ops.conv2d_grad_weight(x, gy, list(w.shape), *args))
    assert [r.kernel for r in whole.launches].count("im2col") == 2
    assert [r.kernel for r in chunked.launches].count("im2col") == 2 * x.shape[0]
    assert "accumulate" in chunked.kernels()
    torch.testing.assert_close(y1, y2, rtol=0, atol=1e-12)
    torch.testing.assert_close(gx1, gx2, rtol=0, atol=1e-12)
    torch.testing.assert_close(gw1, gw2, rtol=1e-12, atol=1e-12)


def test_planted_missing_barrier_is_caught():
    """The emulator runs each phase's threads in a new random order, so the reduction tree without its barrier
    reads partial sums not yet written: the answer must come out wrong (and right with the barrier)."""
    x, w, b, gy = operands(DENSE, "zeros", "contiguous", torch.float64)
    args = (list(w.shape), list(DENSE["stride"]), list(DENSE["pad"]), list(DENSE["dil"]), 1, "zeros",
            "direct/reduce_nchw_grad_weight")
    with cuda_emulation():
        good = ops.conv2d_grad_weight(x, gy, *args)
    with cuda_emulation(_plant_missing_barrier=True) as emu:
        bad = ops.conv2d_grad_weight(x, gy, *args)
    assert emu.kernels() == ["planted_missing_barrier"]
    expected = run_pass("direct/reduce_nchw_grad_weight", DENSE, "zeros", (x, w, b, gy), "auto")[1]
    torch.testing.assert_close(good, expected)
    assert not torch.allclose(bad, expected)


def test_launch_configurations():
    """Grid-stride kernels: 256-thread blocks, grids capped at 2^16, shared memory only where the kernel syncs."""
    x = torch.randn(2, 8, 9, 9)
    w = torch.randn(8, 4, 3, 3)
    with cuda_emulation() as emu:
        torchconv.conv2d(x, w, None, 1, 1, 1, 2, algorithm="direct/tiled_nchw_forward")
        torchconv.conv2d(x, w, None, 1, 1, 1, 2, algorithm="direct/direct_nchw_forward")
    tiled, direct = emu.launches
    assert tiled.block == direct.block == 256
    assert tiled.shared_bytes == 4 * 4 * 3 * 3 * 4  # 4 filters of the group, float32
    assert tiled.grid == 2 * 2 * 1 * 1  # images x groups x channel tiles x pixel tiles
    assert direct.shared_bytes == 0 and direct.grid == 6  # 2 * 8 * 81 outputs, one a thread


def test_empty_and_degenerate():
    w = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    with cuda_emulation():
        assert ops.conv2d(torch.randn(0, 4, 5, 5, dtype=torch.float64), w, None, [1, 1], [1] * 4, [1, 1], 2,
                          "zeros", "auto").shape == (0, 4, 5, 5)
        gw = ops.conv2d_grad_weight(torch.randn(0, 4, 5, 5, dtype=torch.float64),
                                    torch.randn(0, 4, 5, 5, dtype=torch.float64), [4, 2, 3, 3], [1, 1], [1] * 4,
                                    [1, 1], 2, "zeros", "im2col")
        assert torch.equal(gw, torch.zeros_like(gw))
        for algorithm in ("im2col", "direct"):  # an empty input plane: every tap reads zero padding
            y = ops.conv2d(torch.randn(2, 4, 0, 3, dtype=torch.float64), w, torch.ones(4, dtype=torch.float64),
                           [1, 1], [1, 1, 2, 2], [1, 1], 2, "zeros", algorithm)
            assert y.shape == (2, 4, 2, 3) and torch.equal(y, torch.ones_like(y))


@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
def test_nonfinite_weight_meets_padding_as_torch(algorithm):
    """Zero padding is multiplied like any value, so Inf meeting it gives NaN (0 * Inf), as torch's padded
    convolution and torchconv's CPU backend do (torch's own CPU depthwise kernel skips the padding instead)."""
    x = torch.randn(1, 2, 4, 4)
    w = torch.randn(2, 1, 3, 3)
    w[0, 0, 0, 0] = float("inf")
    with cuda_emulation():
        y = torchconv.conv2d(x, w, None, 1, 1, 1, 2, algorithm=algorithm)
    assert y[0, 0, 0].isnan().all() and not y[0, 1].isnan().any()
    torch.testing.assert_close(y, reference_conv2d(x, w, None, 1, (1,) * 4, 1, 2), equal_nan=True)
    torch.testing.assert_close(y, torchconv.conv2d(x, w, None, 1, 1, 1, 2), equal_nan=True)


def test_errors_name_the_cuda_kernels():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(2, 2, 3, 3)
    with cuda_emulation():
        with pytest.raises(RuntimeError, match="for the CUDA backend; expected auto, im2col, direct or one of "
                                               "direct/direct_nhwc_forward"):
            torchconv.conv2d(x, w, algorithm="direct/dense_nchw_forward")  # a CPU kernel
        with pytest.raises(RuntimeError, match="kernel direct/tiled_nchw_forward does not apply"):
            torchconv.conv2d(x, torch.randn(2, 1, 3, 3), groups=2, algorithm="direct/tiled_nchw_forward")
        with pytest.raises(RuntimeError, match="expected weight on the cpu, like input"):
            torchconv.conv2d(x, torch.randn(2, 2, 3, 3, device="meta"))


def test_model_and_compile_under_emulation():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, padding_mode="reflect"),
                                torch.nn.Conv2d(8, 4, 1)).double()
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64)
    ref = model(x)
    converted = torchconv.convert(model)
    with cuda_emulation() as emu:
        torch.testing.assert_close(converted(x), ref)
        compiled = torch.compile(converted, fullgraph=True, backend="eager")
        torch.testing.assert_close(compiled(x), ref)
    assert {"im2col", "direct_nchw_forward"} <= set(emu.kernels())


@pytest.mark.parametrize("name", ["conv2d", "conv2d_grad_input", "conv2d_grad_weight"])
def test_opcheck_under_emulation(name):
    from test_ops import SAMPLES
    op = getattr(torch.ops.torchconv, name).default
    with cuda_emulation():
        for args in SAMPLES[name]():
            torch.library.opcheck(op, args)
