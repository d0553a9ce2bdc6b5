"""Threads, OpenMP runtime, build info, workspace bounds."""

import os
import re

import pytest
import torch
import torch.nn.functional as F

import torchconv


def test_only_torchs_libgomp_is_loaded():
    x = torch.randn(4, 8, 16, 16)
    torchconv.conv2d(x, torch.randn(8, 8, 3, 3), padding=1).sum()
    with open("/proc/self/maps") as f:
        omp = {line.split()[-1] for line in f if "gomp" in line or "libomp" in line or "libiomp" in line}
    torch_lib = os.path.realpath(os.path.join(os.path.dirname(torch.__file__), "lib"))
    assert omp, "torch's libgomp should be mapped"
    assert all(os.path.realpath(p).startswith(torch_lib) for p in omp), omp


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("groups,algorithm", [(1, "auto"), (2, "im2col"), (2, "direct"), (24, "auto")])
def test_one_and_two_threads_agree(threads, dtype, groups, algorithm):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 24, 19, 17, generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(48, 24 // groups, 3, 2, generator=g, dtype=dtype, requires_grad=True)
    gy = torch.randn(5, 48, 9, 17, generator=g, dtype=dtype)
    results = []
    for n in (1, 2):
        torch.set_num_threads(n)
        assert torchconv.build_info()["num_threads"] == n
        y = torchconv.conv2d(x, w, None, (2, 1), (1, 0, 1, 0), 1, groups, padding_mode="reflect", algorithm=algorithm)
        results.append((y, *torch.autograd.grad(y, (x, w), gy)))
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_build_info():
    info = torchconv.build_info()
    assert info["version"] == torchconv.__version__
    assert info["cpu_isa"] in ("default", "avx2", "avx512")
    # The CUDA kernels: compiled for some architectures with some nvcc, or not at all (the CPU-only build).
    cuda_ops = [torch._C._dispatch_has_kernel_for_dispatch_key(f"torchconv::{op}", "CUDA")
                for op in ("conv2d", "conv2d_grad_input", "conv2d_grad_weight")]
    if info["cuda_compiled"]:
        assert all(cuda_ops) and info["cuda_architectures"]
        assert re.fullmatch(r"\d+\.\d+\.\d+", info["cuda_version"]), info["cuda_version"]
    else:
        assert not any(cuda_ops) and info["cuda_architectures"] == [] and info["cuda_version"] is None
    assert info["num_threads"] == torch.get_num_threads()
    assert info["torch"] == torch.__version__
    # Built against a torch of the supported range (the one it runs on need not be the same: the stable ABI).
    major, minor = (int(v) for v in info["built_with_torch"].split(".")[:2])
    assert (major, minor) >= (2, 10), info["built_with_torch"]
    assert re.fullmatch(r"([0-9a-f]{12})?", info["git_revision"]), info["git_revision"]


@pytest.mark.parametrize("pass_", ["forward", "grad_input", "grad_weight"])
def test_workspace_bounded_whatever_the_batch(pass_):
    """The im2col workspace of a ResNet-50 conv2_x layer does not grow with N (torch's slow_conv2d: 231 MB at N=32)."""
    plans = [torchconv.explain((n, 64, 56, 56), (64, 64, 3, 3), padding=1, algorithm="im2col") for n in (1, 8, 32, 256)]
    sizes = [(p if pass_ == "forward" else p[pass_])["workspace_bytes"] for p in plans]
    assert len(set(sizes)) == 1, sizes
    assert sizes[0] <= 8 << 20, sizes


def test_explain_rejects_bad_geometry():
    with pytest.raises(RuntimeError, match="stride must be positive"):
        torchconv.explain((1, 3, 8, 8), (3, 3, 3, 3), stride=(0, 1))
    with pytest.raises(TypeError, match="takes shapes, not tensors: pass weight_shape=t.shape"):
        torchconv.explain((1, 3, 8, 8), torch.zeros(3, 3, 3, 3))


def test_large_reduction_matches_torch():
    """C*kh*kw large enough that a tile is only a few pixels wide."""
    x = torch.randn(2, 512, 9, 9, dtype=torch.float64)
    w = torch.randn(8, 512, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(torchconv.conv2d(x, w, padding=3), F.conv2d(x, w, padding=3))


def kernels_of(plan):
    return [plan["kernel"], plan["grad_input"]["kernel"], plan["grad_weight"]["kernel"]]


def test_explain():
    """The plan per pass for layers whose rule is known: the kernel, its family, why, and its workspace."""
    dw = torchconv.explain((8, 32, 56, 56), (32, 1, 3, 3), padding=1, groups=32)
    assert kernels_of(dw) == ["direct/dw_nchw_forward", "direct/flipdw_nchw_grad_input", "direct/dw_nchw_grad_weight"]
    assert "column stride 1 or 2" in dw["reason"] and dw["workspace_bytes"] == 0
    assert dw["grad_input"]["workspace_bytes"] == 32 * 9 * 4  # the flipped kernel
    dw_nhwc = torchconv.explain((8, 32, 56, 56), (32, 1, 3, 3), padding=1, groups=32, channels_last=True)
    assert kernels_of(dw_nhwc) == ["direct/dw_nhwc_forward", "direct/flipdw_nhwc_grad_input",
                                   "direct/dw_nhwc_grad_weight"]
    dw_s2 = torchconv.explain((8, 32, 56, 56), (32, 1, 5, 5), stride=2, padding=2, groups=32)
    assert dw_s2["grad_input"]["kernel"] == "direct/dw_nchw_grad_input"
    dw_s2_nhwc = torchconv.explain((8, 32, 56, 56), (32, 1, 5, 5), stride=2, padding=2, groups=32, channels_last=True)
    assert dw_s2_nhwc["grad_input"]["kernel"] == "direct/dw_nhwc_grad_input"
    g32 = torchconv.explain((1, 128, 56, 56), (128, 4, 3, 3), stride=2, padding=1, groups=32)
    assert kernels_of(g32) == ["direct/dense_nchw_forward", "direct/dense_nchw_grad_input",
                               "direct/dense_nchw_grad_weight"]
    assert g32["workspace_bytes"] == g32["grad_input"]["workspace_bytes"] == 0
    dense = torchconv.explain((8, 64, 56, 56), (64, 64, 3, 3), padding="same")
    assert kernels_of(dense) == ["direct/igemm_any_forward", "direct/flipigemm_any_grad_input",
                                 "direct/cvec_nchw_grad_weight"]
    assert "implicit GEMM" in dense["reason"] and "flipped kernel" in dense["grad_input"]["reason"]
    assert dense["workspace_bytes"] == 64 * 64 * 9 * 4  # the packed weights: 64 channels fill whole panels
    assert dense["grad_input"]["workspace_bytes"] == 64 * 64 * 9 * 4  # packed from the weights, flipped
    # The backward rules: with a large GEMM, grad_weight is im2col for a short or strided reduction, grad_input
    # where direct would scatter. (200 channels: not whole vectors of 16, so the cvec grad_weight does not apply.)
    short = torchconv.explain((1, 200, 7, 7), (200, 200, 3, 3), padding=1)
    assert kernels_of(short) == ["direct/igemm_any_forward", "direct/flipigemm_any_grad_input",
                                 "im2col/cols_any_grad_weight"]
    assert "short" in short["grad_weight"]["reason"] and short["grad_weight"]["workspace_bytes"] > 0
    assert torchconv.explain((8, 200, 7, 7), (200, 200, 3, 3), padding=1)["grad_weight"]["algorithm"] == "direct"
    strided = torchconv.explain((1, 200, 56, 56), (200, 200, 3, 3), stride=2, padding=1)
    assert kernels_of(strided) == ["direct/igemm_any_forward", "im2col/cols_any_grad_input",
                                   "im2col/cols_any_grad_weight"]
    assert "scatter" in strided["grad_input"]["reason"]
    # A 3x3 grad_weight with whole vectors of input channels per group runs cvec, in any mode, short or strided;
    # its workspace is a padded plane and 9 * Kg accumulators of 64 bytes a pixel, per thread.
    for x, w, stride, groups in (((1, 512, 7, 7), (512, 512, 3, 3), 1, 1), ((1, 128, 56, 56), (128, 128, 3, 3), 2, 1),
                                 ((1, 512, 14, 14), (512, 16, 3, 3), 1, 32)):
        cvec = torchconv.explain(x, w, stride, 1, 1, groups, padding_mode="reflect")["grad_weight"]
        assert cvec["kernel"] == "direct/cvec_nchw_grad_weight" and "cvec" in cvec["reason"]
        H, W, Kg = x[2], x[3], w[0] // groups
        assert cvec["workspace_bytes"] == torch.get_num_threads() * ((H + 2) * (W + 2) + 9 * Kg) * 64
    for shape, kernel in (((1, 256, 28, 28), 3), ((1, 256, 56, 56), 1)):  # rows of 14; a 1x1 kernel
        dense_rows = torchconv.explain(shape, (512, 256, kernel, kernel), stride=2, padding=kernel // 2)
        assert dense_rows["kernel"] == "direct/igemm_any_forward"  # dense: the implicit GEMM, whatever the rows
        short_rows = torchconv.explain(shape, (512, 128, kernel, kernel), stride=2, padding=kernel // 2, groups=2)
        assert short_rows["kernel"] == "im2col/cols_any_forward" and "under 16 wide" in short_rows["reason"]
    pointwise = torchconv.explain((1, 256, 56, 56), (64, 256, 1, 1))
    assert kernels_of(pointwise) == ["im2col/gemm1x1_matrix_forward", "im2col/gemm1x1_matrix_grad_input",
                                     "im2col/gemm1x1_matrix_grad_weight"]
    assert all("1x1" in d["reason"] for d in (pointwise, pointwise["grad_input"], pointwise["grad_weight"]))
    assert pointwise["workspace_bytes"] == pointwise["grad_input"]["workspace_bytes"] == 0
    assert torchconv.explain((8, 256, 56, 56), (64, 256, 1, 1))["algorithm"] == "im2col"
    # On channels_last input, which MKL would read transposed, the implicit GEMM runs the forward.
    nhwc = torchconv.explain((8, 256, 56, 56), (64, 256, 1, 1), channels_last=True)
    assert nhwc["kernel"] == "direct/igemm_any_forward"
    for thin in ((16, 96), (144, 32)):  # MobileNet's pointwise layers: too thin a GEMM for MKL
        assert torchconv.explain((1, thin[0], 56, 56), (thin[1], thin[0], 1, 1))["algorithm"] == "direct"
    assert torchconv.explain((1, 256, 56, 56), (64, 256, 1, 1), padding=1)["algorithm"] == "direct"
    wide = torchconv.explain((1, 64, 112, 112), (64, 64, 3, 3), stride=2, padding=1)  # rows of 56: direct
    assert wide["algorithm"] == wide["grad_weight"]["algorithm"] == "direct"
    patchify = torchconv.explain((8, 3, 224, 224), (96, 3, 4, 4), stride=4)
    assert patchify["kernel"] == "direct/igemm_any_forward"  # dense: the implicit GEMM gathers any stride
    assert patchify["grad_weight"]["kernel"] == "im2col/cols_any_grad_weight"
    assert "above 2" in patchify["grad_weight"]["reason"]
    assert 0 < patchify["grad_weight"]["workspace_bytes"] <= (4 << 20) + (64 << 10)
    forced = torchconv.explain((32, 56, 56), (32, 1, 3, 3), groups=32, algorithm="im2col")
    assert kernels_of(forced) == ["im2col/cols_any_forward", "im2col/cols_any_grad_input", "im2col/cols_any_grad_weight"]
    assert forced["reason"] == forced["grad_input"]["reason"] == "requested"
    reflect = torchconv.explain((1, 64, 28, 28), (64, 64, 3, 3), padding=1, padding_mode="reflect")
    assert reflect["kernel"] == "direct/igemm_any_forward"  # its gather maps the padding at no extra cost
    assert reflect["grad_input"]["algorithm"] == "im2col" and "padding mode" in reflect["grad_input"]["reason"]
    dense_direct = torchconv.explain((1, 60, 8, 8), (64, 60, 3, 3), algorithm="direct")
    assert kernels_of(dense_direct) == ["direct/dense_nchw_forward", "direct/flipdense_nchw_grad_input",
                                        "direct/dense_nchw_grad_weight"]
    assert dense_direct["grad_weight"]["reason"] == "requested" and dense_direct["grad_weight"]["workspace_bytes"] == 0


def test_a_named_kernel_is_forced_in_its_pass_and_its_family_elsewhere():
    plan = torchconv.explain((2, 8, 9, 9), (8, 1, 3, 3), padding=1, groups=8, algorithm="direct/dense_nchw_forward")
    assert kernels_of(plan) == ["direct/dense_nchw_forward", "direct/flipdw_nchw_grad_input",
                                "direct/dw_nchw_grad_weight"]
    with pytest.raises(RuntimeError, match=r"kernel direct/dw_nchw_forward does not apply to this call \(depthwise"
                                           r".*\); kernels that do: direct/dense_nchw_forward, "
                                           r"direct/igemm_any_forward, im2col/cols_any_forward"):
        torchconv.explain((2, 8, 9, 9), (8, 8, 3, 3), padding=1, algorithm="direct/dw_nchw_forward")
    with pytest.raises(RuntimeError, match="unknown algorithm 'direct/none'"):
        torchconv.explain((2, 8, 9, 9), (8, 8, 3, 3), algorithm="direct/none")
    x, w = torch.randn(2, 8, 9, 9, dtype=torch.float64), torch.randn(8, 1, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(torchconv.conv2d(x, w, None, 1, 1, 1, 8, algorithm="direct/dense_nchw_forward"),
                               F.conv2d(x, w, None, 1, 1, 1, 8))


def test_fma_peak_is_measured():
    """The peak bench/bench.py divides by is measured, in a plausible range, for one and two threads."""
    one, two = torchconv._C.fma_peak_gflops(1), torchconv._C.fma_peak_gflops(2)
    assert 1.0 < one < 1e5 and 1.0 < two < 1e5


def test_public_api_is_typed():
    """The package ships py.typed, and every public function says what it takes and returns."""
    import inspect
    import pathlib

    assert (pathlib.Path(torchconv.__file__).parent / "py.typed").exists()
    functions = [torchconv.conv1d, torchconv.conv2d, torchconv.conv_transpose1d, torchconv.conv_transpose2d,
                 torchconv.explain, torchconv.kernels, torchconv.convert, torchconv.build_info,
                 torchconv.signal.convolve2d, torchconv.signal.correlate2d, torchconv.signal.convolve,
                 torchconv.signal.correlate]
    for f in functions:
        sig = inspect.signature(f)
        assert sig.return_annotation is not inspect.Signature.empty, f.__name__
        assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()), f.__name__
        assert f.__doc__ and len(f.__doc__) > 40, f.__name__


def test_docstring_examples_run():
    import doctest

    from torchconv import functional

    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(functional, globs={"torch": torch, "torchconv": torchconv}) if t.examples]
    assert len(tests) >= 5
    for t in tests:
        runner.run(t)
    assert runner.summarize(verbose=False).failed == 0
