"""torchconv: convolution kernels for PyTorch, as torch custom ops with autograd.

    torchconv.conv2d / conv1d         drop-in for torch.nn.functional.conv2d / conv1d
    torchconv.conv_transpose2d / 1d   drop-in for torch.nn.functional.conv_transpose2d / 1d
    torchconv.nn.Conv2d / Conv1d      drop-in for torch.nn.Conv2d / Conv1d (and ConvTranspose2d / 1d)
    torchconv.convert(model)          swaps the convolutions of a model
    torchconv.signal.convolve2d, ...  scipy.signal's convolve2d / correlate2d / convolve / correlate on tensors
    torchconv.testing.cuda_emulation  runs the CUDA backend's kernels on the CPU, emulated (for tests)
"""

import torch  # noqa: F401  (torch first: _C resolves its symbols against the loaded libtorch)

from . import _C  # registers torch.ops.torchconv.*
from . import _ops  # noqa: F401  (fake kernels and autograd)
from . import autotune, nn, signal, testing
from .functional import conv1d, conv2d, conv_transpose1d, conv_transpose2d, explain, kernels
from .nn import convert

__version__ = _C.__version__


def build_info() -> dict:
    """What this build is and runs on: version, git revision of the source ('' if unknown), the torch it was built
    against (any torch from 2.10 on runs it: the stable ABI), the torch it runs on, the CPU ISA of the kernels in use
    and what the CPU supports, threads of torch's pool (which torchconv uses), and CUDA support: whether the CUDA
    kernels were compiled, for which architectures, with which nvcc."""
    return {
        "version": _C.__version__,
        "git_revision": _C.git_revision,
        "built_with_torch": _C.built_with_torch,
        "torch": torch.__version__,
        "cpu_isa": _C.cpu_isa(),
        "cpu_supports": {f: _C.cpu_supports(f) for f in ("avx2", "avx512f")},
        "num_threads": _C.num_threads(),
        "cuda_compiled": _C.cuda_compiled,
        "cuda_architectures": list(_C.cuda_architectures),
        "cuda_version": _C.cuda_version,
    }


__all__ = ["autotune", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "convert", "explain", "kernels", "nn",
           "signal", "testing", "build_info"]
