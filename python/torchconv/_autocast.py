"""Autocast for torch.ops.torchconv.*: inside torch.autocast(device_type, dtype) the ops compute in that dtype, as
torch's own convolutions do. torch casts a convolution's operands by its "lower_precision_fp" policy: every floating
tensor on the autocast device except float64 goes to torch.get_autocast_dtype(device_type), read at each call (so
one registration serves bfloat16 and float16). torch.library.register_autocast would fix the dtype at registration."""

import torch

ops = torch.ops.torchconv
_LIB = torch.library.Library("torchconv", "IMPL")  # kept alive: the registrations last as long as the library


def eligible(a, device_type):
    """Whether autocast on device_type casts a (torch's rule: a floating tensor on that device, not float64)."""
    return (isinstance(a, torch.Tensor) and a.is_floating_point() and a.dtype != torch.float64
            and a.device.type == device_type)


def _register(name, device_type):
    key = "Autocast" + torch._C._dispatch_key_for_device(device_type)
    dispatch_key = getattr(torch._C.DispatchKey, key)
    op = getattr(ops, name).default

    def autocast_kernel(*args):
        dtype = torch.get_autocast_dtype(device_type)
        with torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(dispatch_key)):
            return op(*(a.to(dtype) if eligible(a, device_type) else a for a in args))

    op.py_impl(dispatch_key)(autocast_kernel)  # what torch.compile's tracing runs at this key
    _LIB.impl(name, lambda _keyset, *args: autocast_kernel(*args), key, with_keyset=True)


for _name in ("conv2d", "conv2d_grad_input", "conv2d_grad_weight"):
    for _device in ("cpu", "cuda"):
        if torch._C._is_autocast_available(_device):
            _register(_name, _device)
