import numpy as np
import pytest
import torch
import torch.nn.functional as F

import torchconv  # noqa: F401

TORCH_PAD = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}
NUMPY_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap",
             "symmetric": "symmetric"}


def pad_by_index(x, pad4, mode):
    """Pads the last two dims by gathering with numpy.pad's index maps: independent of torchconv, differentiable."""
    left, right, top, bottom = pad4
    H, W = x.shape[-2:]
    if mode == "zeros":
        return F.pad(x, (left, right, top, bottom))
    rows = np.pad(np.arange(H), (top, bottom), mode=NUMPY_PAD[mode])
    cols = np.pad(np.arange(W), (left, right), mode=NUMPY_PAD[mode])
    return x[..., torch.from_numpy(rows), :][..., torch.from_numpy(cols)]


def reference_conv2d(x, w, b, stride, pad4, dilation, groups, mode="zeros"):
    """torch's answer: F.pad (or numpy's index map for 'symmetric') followed by an unpadded F.conv2d."""
    if mode in TORCH_PAD:
        xp = F.pad(x, tuple(pad4), mode=TORCH_PAD[mode])
    else:
        xp = pad_by_index(x, pad4, mode)
    return F.conv2d(xp, w, b, stride, 0, dilation, groups)


def make_layout(t, layout):
    """The same values as t, laid out 'contiguous', 'channels_last' or 'sliced' (a strided view)."""
    if layout == "contiguous":
        return t.contiguous()
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "sliced":
        big = torch.zeros(t.shape[0], t.shape[1] * 2, t.shape[2], t.shape[3] * 3, dtype=t.dtype)
        view = big[:, ::2, :, 1::3]
        view.copy_(t)
        return view
    raise ValueError(layout)


@pytest.fixture
def threads():
    """Restores torch's thread count after a test that changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def pytest_addoption(parser):
    parser.addoption("--cuda-emulation", action="store_true",
                     help="run every test inside torchconv.testing.cuda_emulation(): the CUDA backend, emulated")


@pytest.fixture(autouse=True)
def _cuda_emulation(request):
    """With --cuda-emulation, each test runs its torchconv ops through the emulated CUDA backend."""
    if not request.config.getoption("--cuda-emulation"):
        yield
        return
    if request.node.get_closest_marker("cpu_backend"):
        pytest.skip("tests the CPU backend itself (its kernels, plan, threads or ISA)")
    with torchconv.testing.cuda_emulation():
        yield


def pytest_configure(config):
    config.addinivalue_line("markers", "cpu_backend: tests the CPU backend's own kernels or plan; not emulated")
