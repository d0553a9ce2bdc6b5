"""Drop-in replacements for torch.nn.functional.conv2d / conv1d, with padding modes and an algorithm choice."""

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from . import _C, _autocast, _ops, autotune
from ._geometry import dtype_name

IntOrPair = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int], str]  # an int, (h, w), (left, right, top, bottom), "same" or "valid"

__all__ = ["conv2d", "conv1d", "conv_transpose2d", "conv_transpose1d", "explain", "kernels"]


def _pair(v, name):
    if isinstance(v, int):
        return [v, v]
    v = list(v)
    if len(v) == 1:
        return [v[0], v[0]]
    if len(v) != 2:
        raise ValueError(f"torchconv: {name} must be an int or a tuple of 2 ints, got {tuple(v)}")
    return v


def _padding4(padding, kernel_size, dilation, stride):
    """Padding as (left, right, top, bottom), from an int, (pad_h, pad_w), a 4-tuple, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return [0, 0, 0, 0]
        if padding != "same":
            raise ValueError(f"torchconv: invalid padding string '{padding}', expected 'same' or 'valid'")
        if any(s != 1 for s in stride):
            raise ValueError(f"torchconv: padding='same' is not supported for strided convolutions, got stride "
                             f"{tuple(stride)}")
        # As torch: the total is split with the extra pixel (even kernels) on the right / bottom.
        th, tw = dilation[0] * (kernel_size[0] - 1), dilation[1] * (kernel_size[1] - 1)
        return [tw // 2, tw - tw // 2, th // 2, th - th // 2]
    if isinstance(padding, int):
        return [padding] * 4
    padding = list(padding)
    if len(padding) == 1:
        return padding * 4
    if len(padding) == 2:
        return [padding[1], padding[1], padding[0], padding[0]]
    if len(padding) == 4:
        return padding
    raise ValueError(f"torchconv: padding must be an int, a string, or a tuple of 2 (h, w) or 4 "
                     f"(left, right, top, bottom) ints, got {tuple(padding)}")


def _check_ranks(input, weight, spatial, fn, weight_dims):
    """The rank checks of every public function: input (spatial + 1)-D unbatched or (spatial + 2)-D, and the weight
    (spatial + 2)-D, laid out as weight_dims says."""
    if input.dim() not in (spatial + 1, spatial + 2):
        raise RuntimeError(f"torchconv: expected {spatial + 1}-D (unbatched) or {spatial + 2}-D (batched) input to "
                           f"{fn}, got input of size {tuple(input.shape)}")
    if weight.dim() != spatial + 2:
        raise RuntimeError(f"torchconv: expected a {spatial + 2}-D weight ({weight_dims}), got weight of size "
                           f"{tuple(weight.shape)}")


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrPair = 1,
           padding: Padding = 0, dilation: IntOrPair = 1, groups: int = 1, *, padding_mode: str = "zeros",
           algorithm: str = "auto") -> Tensor:
    """Like torch.nn.functional.conv2d, computed by torchconv: a 2-D convolution (cross-correlation) over a batch.

    Args:
        input: (N, C_in, H, W), or (C_in, H, W) unbatched; contiguous, channels_last or any strides.
        weight: (C_out, C_in / groups, kh, kw).
        bias: (C_out,) or None.
        stride, dilation: an int or (h, w), each at least 1.
        padding: an int, (h, w), (left, right, top, bottom) (extra to torch), 'valid' or 'same'.
        groups: splits the channels into groups, each convolved with its own C_out / groups filters.
        padding_mode: 'zeros', 'reflect', 'replicate', 'circular' or numpy's 'symmetric', applied by index mapping
            inside the kernel, without a padded copy; reflect, symmetric and circular pads may exceed the input.
        algorithm: 'auto' (the default: the rule of the kernel registry), 'im2col', 'direct', one kernel's name
            (listed below and by torchconv.kernels()), which runs that kernel in its pass and its family in the
            others, a comma-separated list of kernel names, each run in its own pass (auto in the others), or
            'autotune': the fastest kernel of each pass, timed once per call shape (torchconv.autotune).
            torchconv.explain tells which kernel a call runs.

    Returns:
        (N, C_out, H_out, W_out) with H_out = (H + top + bottom - dilation_h * (kh - 1) - 1) // stride_h + 1 (and
        W_out alike), in input's dtype, channels_last when the input or the weight is (as torch).

    dtypes: float32, float64, bfloat16 and float16 (the half types computed in float32, rounded once); under
    torch.autocast the operands are cast to the autocast dtype, as for F.conv2d. Differentiable to any order.

    Example::

        >>> x, w = torch.randn(8, 32, 56, 56), torch.randn(32, 1, 3, 3)
        >>> torchconv.conv2d(x, w, padding=1, groups=32, padding_mode="reflect").shape
        torch.Size([8, 32, 56, 56])
    """
    _check_ranks(input, weight, 2, "conv2d", "out_channels, in_channels / groups, kh, kw")
    unbatched = input.dim() == 3
    if unbatched:
        input = input.unsqueeze(0)
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    pad = _padding4(padding, weight.shape[2:], dilation, stride)
    if algorithm == "autotune":
        algorithm = autotune.resolve(input, weight, bias, stride, pad, dilation, groups, padding_mode)
    out = _ops.call(_ops.ops.conv2d, input, weight, bias, stride, pad, dilation, groups, padding_mode, algorithm)
    return out.squeeze(0) if unbatched else out


def _single(v, name):
    if isinstance(v, int):
        return v
    v = list(v)
    if len(v) != 1:
        raise ValueError(f"torchconv: {name} must be an int or a tuple of 1 int, got {tuple(v)}")
    return v[0]


def conv1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrPair = 1,
           padding: Padding = 0, dilation: IntOrPair = 1, groups: int = 1, *, padding_mode: str = "zeros",
           algorithm: str = "auto") -> Tensor:
    """Like torch.nn.functional.conv1d: conv2d with H = 1, on input (N, C_in, L) or (C_in, L) and weight
    (C_out, C_in / groups, k); padding may also be a 2-tuple (left, right). Returns (N, C_out, L_out).

    Example::

        >>> torchconv.conv1d(torch.randn(4, 16, 100), torch.randn(16, 16, 5), padding="same").shape
        torch.Size([4, 16, 100])
    """
    _check_ranks(input, weight, 1, "conv1d", "out_channels, in_channels / groups, k")
    if isinstance(padding, str):
        pad = padding
    elif isinstance(padding, int):
        pad = (padding, padding, 0, 0)
    elif len(padding) in (1, 2):
        pad = (padding[0], padding[-1], 0, 0)
    else:
        raise ValueError(f"torchconv: conv1d padding must be an int, a string, or a tuple of 1 or 2 ints, got "
                         f"{tuple(padding)}")
    out = conv2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, _single(stride, "stride")), pad,
                 (1, _single(dilation, "dilation")), groups, padding_mode=padding_mode, algorithm=algorithm)
    return out.squeeze(-2)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrPair = 1,
                     padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1,
                     dilation: IntOrPair = 1, *, algorithm: str = "auto") -> Tensor:
    """Like torch.nn.functional.conv_transpose2d, computed by torchconv: the adjoint of conv2d in its input (the op
    torch.ops.torchconv.conv2d_grad_input), plus the bias.

    weight is (in_channels, out_channels / groups, kh, kw), as torch's. The output is (N, out_channels, H_out, W_out)
    with H_out = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1, and output_padding must
    be smaller than the stride or the dilation. algorithm is conv2d's (its grad_input kernels run here; 'autotune'
    runs auto here: only conv2d and conv1d are timed).

    Example::

        >>> x, w = torch.randn(2, 16, 14, 14), torch.randn(16, 8, 2, 2)
        >>> torchconv.conv_transpose2d(x, w, stride=2).shape
        torch.Size([2, 8, 28, 28])
    """
    _check_ranks(input, weight, 2, "conv_transpose2d", "in_channels, out_channels / groups, kh, kw")
    unbatched = input.dim() == 3
    if unbatched:
        input = input.unsqueeze(0)
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    padding, output_padding = _pair(padding, "padding"), _pair(output_padding, "output_padding")
    if any(p < 0 for p in padding) or any(p < 0 for p in output_padding):
        raise RuntimeError(f"torchconv: padding and output_padding must be non-negative, got padding "
                           f"{tuple(padding)} and output_padding {tuple(output_padding)}")
    if any(s <= 0 for s in stride) or any(d <= 0 for d in dilation):
        raise RuntimeError(f"torchconv: stride and dilation must be positive, got stride {tuple(stride)} and "
                           f"dilation {tuple(dilation)}")
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        raise RuntimeError(f"torchconv: output_padding {tuple(output_padding)} must be smaller than the stride "
                           f"{tuple(stride)} or the dilation {tuple(dilation)}, in each dimension")
    if groups <= 0 or weight.shape[0] % groups != 0:
        raise RuntimeError(f"torchconv: in_channels {weight.shape[0]} (the weight's first dimension) is not "
                           f"divisible by groups {groups}")
    if input.shape[1] != weight.shape[0]:
        raise RuntimeError(f"torchconv: input has {input.shape[1]} channels, but weight of size "
                           f"{tuple(weight.shape)} expects {weight.shape[0]} (its first dimension)")
    extent = [d * (k - 1) + 1 for d, k in zip(dilation, weight.shape[2:])]
    out_hw = [(n - 1) * s - 2 * p + e + op
              for n, s, p, e, op in zip(input.shape[2:], stride, padding, extent, output_padding)]
    if any(o <= 0 for o in out_hw):
        raise RuntimeError(f"torchconv: conv_transpose2d of input {tuple(input.shape)} with weight "
                           f"{tuple(weight.shape)}, stride {tuple(stride)}, padding {tuple(padding)} and dilation "
                           f"{tuple(dilation)} gives a non-positive output size {tuple(out_hw)}")
    # The forward convolution of an out_hw image has one more output row or column than input has when the
    # output_padding reaches the stride (possible when the dilation is larger): those read zeros.
    natural = [(o + 2 * p - e) // s + 1 for o, p, e, s in zip(out_hw, padding, extent, stride)]
    if natural != list(input.shape[2:]):
        input = torch.nn.functional.pad(input, (0, natural[1] - input.shape[3], 0, natural[0] - input.shape[2]))
    size = [input.shape[0], weight.shape[1] * groups, *out_hw]
    pad4 = [padding[1], padding[1], padding[0], padding[0]]
    out = _ops.call(_ops.ops.conv2d_grad_input, input, weight, size, stride, pad4, dilation, groups, "zeros",
                    "auto" if algorithm == "autotune" else algorithm)
    if bias is not None:
        out = out + _transposed_bias(bias, out).view(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out


def _transposed_bias(bias, out):
    """conv_transpose2d's bias, added outside the op: autocast casts it as it casts the op's operands (_autocast.py);
    otherwise its dtype must be the output's, as conv2d requires."""
    if torch.is_autocast_enabled(out.device.type) and _autocast.eligible(bias, out.device.type):
        return bias.to(out.dtype)
    if bias.dtype != out.dtype:
        raise RuntimeError(f"torchconv: bias has dtype {dtype_name(bias.dtype)} but input has dtype "
                           f"{dtype_name(out.dtype)}")
    return bias


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrPair = 1,
                     padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1,
                     dilation: IntOrPair = 1, *, algorithm: str = "auto") -> Tensor:
    """Like torch.nn.functional.conv_transpose1d: conv_transpose2d with H = 1, on input (N, C_in, L) and weight
    (C_in, C_out / groups, k).

    Example::

        >>> torchconv.conv_transpose1d(torch.randn(2, 8, 50), torch.randn(8, 4, 4), stride=2, padding=1).shape
        torch.Size([2, 4, 100])
    """
    _check_ranks(input, weight, 1, "conv_transpose1d", "in_channels, out_channels / groups, k")
    out = conv_transpose2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, _single(stride, "stride")),
                           (0, _single(padding, "padding")), (0, _single(output_padding, "output_padding")), groups,
                           (1, _single(dilation, "dilation")), algorithm=algorithm)
    return out.squeeze(-2)


def explain(input_shape: Sequence[int], weight_shape: Sequence[int], stride: IntOrPair = 1, padding: Padding = 0,
            dilation: IntOrPair = 1, groups: int = 1, *, padding_mode: str = "zeros", algorithm: str = "auto",
            channels_last: bool = False, dtype: torch.dtype = torch.float32, device: str = "cpu") -> dict:
    """The plan torchconv.conv2d makes for these shapes and arguments: which kernel runs each pass, and why.

    Takes the arguments of conv2d, with shapes in place of tensors (4-D, or 3-D unbatched), for contiguous (or
    channels_last) tensors of dtype. Returns, for the forward, a dict with 'kernel' (a row of torchconv.kernels(),
    e.g. 'direct/dw_nchw_forward'), 'algorithm' (its family: 'im2col' or 'direct'), 'reason' (why that family:
    the auto rule, or 'requested'), 'kernel_reason' (what the kernel is for) and 'workspace_bytes' (the scratch it
    takes, with, for bfloat16 and float16, the float32 copies of the chunk of the batch the kernel computes on);
    and the same under 'grad_input' and 'grad_weight' (auto may pick a different kernel per pass).
    device='cuda' gives the CUDA backend's plan (its workspace: the im2col family's columns for one chunk).
    algorithm='autotune' reports the kernels timed fastest for such a call (torchconv.autotune), or auto's choice
    in a pass not timed yet. Raises the error conv2d would raise for an invalid geometry or a kernel that does not
    apply.

    Example::

        >>> torchconv.explain((8, 32, 56, 56), (32, 1, 3, 3), padding=1, groups=32)["kernel"]
        'direct/dw_nchw_forward'
    """
    for name, shape in (("input_shape", input_shape), ("weight_shape", weight_shape)):
        if isinstance(shape, torch.Tensor):
            raise TypeError(f"torchconv.explain takes shapes, not tensors: pass {name}=t.shape (and dtype=, "
                            f"channels_last=, device= to match the tensor)")
    input_shape, weight_shape = list(input_shape), list(weight_shape)
    if len(input_shape) == 3:
        input_shape = [1] + input_shape
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    pad = _padding4(padding, weight_shape[2:], dilation, stride)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"torchconv: unknown device '{device}'; expected cpu or cuda")
    tuned = None
    if algorithm == "autotune":
        tuned = autotune.cached(autotune.key(input_shape, weight_shape, stride, pad, dilation, groups, padding_mode,
                                             dtype, channels_last, device)) or {}
        algorithm = autotune.algorithm_list(tuned)
    args = (input_shape, weight_shape, stride, pad, dilation, groups, padding_mode, algorithm, channels_last,
            dtype_name(dtype))
    plan = _C.explain_cuda if device == "cuda" else _C.explain

    def one(pass_):
        family, kernel, reason, kernel_reason, workspace = plan(pass_, *args)
        if tuned is not None:
            reason = ("autotune: the fastest kernel timed for this call" if pass_ in tuned
                      else f"autotune: not timed yet, so auto's choice ({reason})")
        return {"kernel": kernel, "algorithm": family, "reason": reason, "kernel_reason": kernel_reason,
                "workspace_bytes": workspace}

    return {**one("forward"), "grad_input": one("grad_input"), "grad_weight": one("grad_weight")}


def kernels(device: str = "cpu") -> list:
    """Every kernel of a device ('cpu' or 'cuda'), in the order the plan prefers them within a pass and family: a
    list of dicts with 'name' (what explain reports and algorithm= accepts), 'pass', 'family', 'layout' (what it
    reads in place: nchw, nhwc, any, matrix), 'device' and 'reason'."""
    return _C.kernels(device)


def _list_kernels():
    """Appends the kernel names to conv2d's docstring, from the registry itself, so help() lists every algorithm."""
    names = "\n".join(f"        {k['name']:36} {k['pass']:12} {k['device']}"
                      for device in ("cpu", "cuda") for k in _C.kernels(device))
    conv2d.__doc__ += f"\n    Kernels (algorithm=...):\n\n{names}\n"


_list_kernels()
