"""The eager fast path: call(), the way torchconv's own code calls torch.ops.torchconv.*."""

import torch

from . import _autocast, _autograd, _fake  # noqa: F401  (registers the autocast casts, fake kernels and autograd)

ops = torch.ops.torchconv
_AUTOGRAD = _autograd.AUTOGRAD


def call(op, *args):
    """op(*args), with the op's autograd done in this module rather than through the dispatcher when it is safe to.

    torch.library.register_autograd's kernel is Python behind the dispatcher: each call crosses into Python, rebuilds
    the schema's argument list (fill_defaults) and redispatches, about 40 us for a forward with a graph and 10 us for
    a call with nothing to record (pytorch/pytorch#177109); that is as much as a small layer. In eager mode call()
    runs the same formula as an autograd.Function, or goes straight to the kernel when autograd has nothing to record.
    Under torch.compile / export tracing, functorch transforms and autocast it calls the op, so they see the
    registered path (autocast casts the operands before autograd records them).
    """
    if (torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active()
            or torch._C._is_any_autocast_enabled()):
        return op(*args)
    if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
        return _AUTOGRAD[op].apply(*args)
    with torch._C._AutoDispatchBelowAutograd():
        return op(*args)
