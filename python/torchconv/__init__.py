import torch  # noqa: F401  (torch first: _C resolves its symbols against the loaded libtorch)

from . import _C  # noqa: F401  (registers torch.ops.torchconv.*)
