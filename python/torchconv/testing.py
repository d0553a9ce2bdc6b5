"""Testing helpers: run the CUDA backend's kernels on the CPU.

    with torchconv.testing.cuda_emulation() as emu:
        y = torchconv.conv2d(x, w)          # x, w on the CPU: planned and launched as on a GPU, emulated
    emu.launches                            # [(kernel, grid, block, shared_bytes), ...]

Inside the context every torch.ops.torchconv op on CPU tensors runs the CUDA backend: its plan (cuda/plan.cpp),
its launch configurations and its kernels, compiled for the CPU against a small emulator in which a block's
threads run as fibers, in a new random order between every two barriers, with shared memory that starts as NaN.
So a missing __syncthreads or a read of shared memory nobody wrote gives a wrong answer here. Every build has it
(the kernels need no GPU to be tested); the GEMMs the im2col kernels call are torch's bmm on the CPU.
"""

import contextlib
from typing import Iterator, List, NamedTuple, Optional

from . import _C

__all__ = ["cuda_emulation", "Launch", "Emulation"]


class Launch(NamedTuple):
    kernel: str
    grid: int
    block: int
    shared_bytes: int


class Emulation:
    """What cuda_emulation() yields: .launches, every kernel launched inside the context (so far, or in all once
    the context has exited)."""

    def __init__(self):
        self._final: Optional[list] = None

    @property
    def launches(self) -> List[Launch]:
        return [Launch(*r) for r in (self._final if self._final is not None else _C._emulated_launches())]

    def kernels(self) -> List[str]:
        """The distinct kernels launched, in first-launch order."""
        return list(dict.fromkeys(r.kernel for r in self.launches))


@contextlib.contextmanager
def cuda_emulation(column_bytes: Optional[int] = None, _plant_missing_barrier: bool = False) -> Iterator[Emulation]:
    """Runs torch.ops.torchconv on CPU tensors through the emulated CUDA backend (see the module's docstring).

    column_bytes: the im2col kernels' column budget (default 256 MiB), to make small batches run in chunks.
    Not thread-safe and not reentrant: one emulation at a time, for tests.
    """
    _C._set_cuda_emulation(True, column_bytes or 0, _plant_missing_barrier)
    emulation = Emulation()
    try:
        yield emulation
    finally:
        emulation._final = _C._emulated_launches()
        _C._set_cuda_emulation(False, 0, False)
