"""The CUDA backend on a GPU: the same cases as tests/test_cuda_emulation.py, against cuDNN and against the CPU
result, in every dtype and layout; large batches, a tensor past 2^31 elements, determinism, streams, opcheck and
torch.compile on CUDA tensors. Without a GPU (or without the CUDA kernels compiled in) these skip, saying why; the
registrations are checked wherever the CUDA kernels are compiled, a CPU-only torch included."""

import pytest
import torch
import torch.nn.functional as F

import torchconv
from test_cuda_emulation import ALL_DTYPES, CASES, ROWS, operands, run_pass, tolerance
from test_ops import SAMPLES, torchconv_ops

COMPILED = torchconv.build_info()["cuda_compiled"]
needs_kernels = pytest.mark.skipif(not COMPILED, reason="torchconv was built without its CUDA kernels "
                                                        "(pip install -C cmake.define.TORCHCONV_CUDA=ON ...)")
needs_gpu = pytest.mark.skipif(not (COMPILED and torch.cuda.is_available()),
                               reason="no CUDA GPU here" if COMPILED else "torchconv was built without CUDA kernels")


@needs_kernels
@pytest.mark.parametrize("name", torchconv_ops())
def test_cuda_registration(name):
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"torchconv::{name}", "CUDA")


@needs_kernels
def test_build_info_names_the_architectures():
    info = torchconv.build_info()
    assert info["cuda_architectures"] and info["cuda_version"]


GPU_PARAMS = [pytest.param(name, c, mode, layout, dtype, id=f"{name}-{i}-{mode}-{layout}-{str(dtype)[6:]}")
              for name, cases in CASES.items() for i, c in enumerate(cases) for mode in c["modes"]
              for layout in c["layouts"] for dtype in ALL_DTYPES]


@needs_gpu
@pytest.mark.parametrize("name,c,mode,layout,dtype", GPU_PARAMS)
def test_cuda_kernel_matches_torch(name, c, mode, layout, dtype):
    """Each row forced on the GPU: against the float64 CPU reference, and against its own emulated run."""
    cpu_ops = operands(c, mode, layout, dtype)
    gpu_ops = tuple(t.to("cuda") for t in cpu_ops)
    got, ref, reduction = run_pass(name, c, mode, gpu_ops, name)
    assert got.is_cuda and got.dtype == dtype
    torch.testing.assert_close(got.double().cpu(), ref, **tolerance(dtype, reduction, ref))
    with torchconv.testing.cuda_emulation():
        emulated, _, _ = run_pass(name, c, mode, cpu_ops, name)
    torch.testing.assert_close(got.cpu().double(), emulated.double(), **tolerance(dtype, reduction, ref))


@needs_gpu
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape,groups", [((32, 64, 28, 28), 64), ((32, 64, 28, 28), 1), ((32, 128, 14, 14), 32)],
                         ids=["depthwise", "dense", "grouped"])
def test_large_batch_matches_cudnn(shape, groups, channels_last, dtype):
    torch.manual_seed(0)
    x = torch.randn(shape, device="cuda", dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(shape[1], shape[1] // groups, 3, 3, device="cuda", dtype=dtype, requires_grad=True)
    xg = x.detach().requires_grad_()
    y = torchconv.conv2d(xg, w, None, 1, 1, 1, groups)
    gx, gw = torch.autograd.grad(y.float().square().sum(), (xg, w))
    x64, w64 = x.double().requires_grad_(), w.detach().double().requires_grad_()
    y64 = F.conv2d(x64, w64, None, 1, 1, 1, groups)
    gx64, gw64 = torch.autograd.grad(y64.square().sum(), (x64, w64))
    assert y.is_contiguous(memory_format=torch.channels_last) == channels_last
    eps = {torch.float64: 1e-12, torch.float32: 1e-5}.get(dtype, torch.finfo(dtype).eps)
    for got, ref in ((y, y64), (gx, gx64), (gw, gw64)):
        scale = float(ref.abs().max())
        torch.testing.assert_close(got.double(), ref, rtol=eps * 4, atol=eps * 4 * scale)


@needs_gpu
@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
def test_backward_is_deterministic(algorithm):
    torch.manual_seed(0)
    x = torch.randn(16, 32, 20, 20, device="cuda")
    w = torch.randn(32, 8, 3, 3, device="cuda", requires_grad=True)
    runs = []
    for _ in range(3):
        xr = x.clone().requires_grad_()
        y = torchconv.conv2d(xr, w, None, 1, 1, 1, 4, algorithm=algorithm)
        runs.append(torch.autograd.grad(y.square().sum(), (xr, w)))
    for gx, gw in runs[1:]:
        assert torch.equal(gx, runs[0][0]) and torch.equal(gw, runs[0][1])


@needs_gpu
@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
def test_gradcheck(algorithm):
    x = torch.randn(2, 4, 5, 4, dtype=torch.float64, device="cuda", requires_grad=True)
    w = torch.randn(4, 2, 2, 3, dtype=torch.float64, device="cuda", requires_grad=True)
    f = lambda x, w: torchconv.conv2d(x, w, None, (2, 1), 1, 1, 2, padding_mode="reflect",  # noqa: E731
                                      algorithm=algorithm)
    assert torch.autograd.gradcheck(f, (x, w))
    assert torch.autograd.gradgradcheck(f, (x, w))


@needs_gpu
def test_past_two_to_the_31_elements():
    """A depthwise layer over 2^31 + elements (torch's own kernels have failed here: pytorch#117736, #152816):
    64-bit indexing, checked on the last image against cuDNN."""
    N, C, H, W = 2, 16, 8192, 8200  # 2.15e9 elements, 4.3 GB in float16
    x = torch.empty(N, C, H, W, device="cuda", dtype=torch.float16).normal_()
    w = torch.randn(C, 1, 3, 3, device="cuda", dtype=torch.float16)
    assert x.numel() > 2**31
    y = torchconv.conv2d(x, w, None, 1, 1, 1, C)
    torch.testing.assert_close(y[-1:, -2:].float(), F.conv2d(x[-1:, -2:].float(), w[-2:].float(), None, 1, 1, 1, 2),
                               rtol=1e-2, atol=1e-2)


@needs_gpu
def test_runs_on_the_current_stream():
    x = torch.randn(8, 16, 32, 32, device="cuda")
    w = torch.randn(16, 1, 3, 3, device="cuda")
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        y = torchconv.conv2d(x, w, None, 1, 1, 1, 16)
    s.synchronize()
    torch.testing.assert_close(y, F.conv2d(x, w, None, 1, 1, 1, 16))


@needs_gpu
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_opcheck_on_cuda(name):
    op = getattr(torch.ops.torchconv, name).default
    for args in SAMPLES[name]():
        moved = tuple(a.detach().cuda().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a
                      for a in args)
        torch.library.opcheck(op, moved)


@needs_gpu
def test_compile_fullgraph_on_cuda():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(16, 16, 3, padding=1, groups=16)).cuda()
    x = torch.randn(4, 3, 16, 16, device="cuda")
    ref = model(x)
    compiled = torch.compile(torchconv.convert(model), fullgraph=True)
    torch.testing.assert_close(compiled(x), ref, rtol=1e-4, atol=1e-4)


@needs_gpu
def test_mismatched_devices_raise():
    with pytest.raises(RuntimeError, match="expected weight on the cuda, like input"):
        torchconv.conv2d(torch.randn(1, 2, 5, 5, device="cuda"), torch.randn(2, 2, 3, 3))
