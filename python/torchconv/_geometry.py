"""The Python twin of csrc/common/geometry.h and the checks of csrc/cpu/adapter.h.

The fake kernels use it (they must work on symbolic sizes, so they cannot call into C++). The rules and the
messages are the same as the C++ ones, in the same order; tests/test_geometry.py pins the two copies together.
"""

import functools

import torch
from torch._prims_common import suggest_memory_format

PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
ALGORITHMS = ("auto", "im2col", "direct")
SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
_LIMIT = 1 << 62  # sizes above this are refused, as in C++ (where they are computed in 128 bits)


def _fail(msg):
    raise RuntimeError("torchconv: " + msg)


def _tuple(v):
    return "(" + ", ".join(str(int(x)) for x in v) + ")"


def dtype_name(dtype):
    return str(dtype).removeprefix("torch.")


@functools.cache
def _kernel_names():
    from . import _C

    return frozenset(k["name"] for device in ("cpu", "cuda") for k in _C.kernels(device))


def check_algorithm(algorithm):
    """The name check of make_plan (csrc/cpu/plan.cpp); which kernel runs does not matter to a fake kernel."""
    if algorithm not in ALGORITHMS and algorithm not in _kernel_names():
        _fail(f"unknown algorithm '{algorithm}'; expected auto, im2col, direct or a kernel name (torchconv.kernels())")


def check_4d(t, name):
    if t.dim() != 4:
        _fail(f"expected {name} to be 4-D, got {t.dim()}-D")


def check_tensors(*named):
    """Every tensor on the first one's device and of its dtype, which must be one of SUPPORTED_DTYPES."""
    first, first_name = named[0]
    if first.dtype not in SUPPORTED_DTYPES:
        _fail(f"unsupported dtype {dtype_name(first.dtype)} of {first_name}; supported: float32, float64, bfloat16, float16")
    for t, name in named:
        if t.device.type != first.device.type:
            _fail(f"expected {name} on the {first.device.type}, like {first_name}, got {t.device.type}")
        if t.dtype != first.dtype:
            _fail(f"{name} has dtype {dtype_name(t.dtype)} but {first_name} has dtype {dtype_name(first.dtype)}")


def check_len(v, n, name):
    if len(v) != n:
        _fail(f"{name} must have {n} values, got {len(v)}")


def output_size(input_size, weight_size, stride, padding, dilation, groups, padding_mode):
    """(N, K, OH, OW) of a convolution, after every check of make_geometry. padding is (left, right, top, bottom)."""
    check_len(stride, 2, "stride")
    check_len(padding, 4, "padding")
    check_len(dilation, 2, "dilation")
    if padding_mode not in PADDING_MODES:
        _fail(f"unknown padding_mode '{padding_mode}'; expected one of {', '.join(PADDING_MODES)}")
    if groups <= 0:
        _fail(f"groups must be positive, got {groups}")
    if stride[0] <= 0 or stride[1] <= 0:
        _fail(f"stride must be positive, got {_tuple(stride)}")
    if dilation[0] <= 0 or dilation[1] <= 0:
        _fail(f"dilation must be positive, got {_tuple(dilation)}")
    if any(p < 0 for p in padding):
        _fail(f"padding must be non-negative, got {_tuple(padding)} (left, right, top, bottom)")
    if any(s < 0 for s in (*input_size, *weight_size)):
        _fail("sizes must be non-negative")
    N, C, H, W = input_size
    K, Cg, kh, kw = weight_size
    if K % groups != 0:
        _fail(f"out_channels {K} is not divisible by groups {groups}")
    if C != Cg * groups:
        _fail(f"input has {C} channels, but weight of size {_tuple(weight_size)} with groups {groups} "
              f"expects {Cg * groups}")
    pl, pr, pt, pb = padding
    if padding_mode != "zeros" and ((H == 0 and pt + pb > 0) or (W == 0 and pl + pr > 0)):
        _fail(f"padding_mode '{padding_mode}' needs input elements to pad with, got input height and width ({H}, {W}) "
              f"with padding {_tuple(padding)} (left, right, top, bottom)")
    hp, wp = H + pt + pb, W + pl + pr
    ekh, ekw = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if hp > _LIMIT or wp > _LIMIT or ekh > _LIMIT or ekw > _LIMIT:
        _fail("padded input or dilated kernel size would overflow")
    if kh == 0 or kw == 0 or ekh > hp or ekw > wp:
        _fail(f"kernel size ({kh}, {kw}) with dilation ({dilation[0]}, {dilation[1]}) spans ({ekh}, {ekw}), "
              f"larger than the padded input ({hp}, {wp})")
    oh, ow = (hp - ekh) // stride[0] + 1, (wp - ekw) // stride[1] + 1
    numel, overflow = 1, False
    for f in (oh, ow, K, N):  # same order as C++, so N == 0 does not hide an overflowing plane
        numel *= f
        overflow = overflow or numel > _LIMIT
        if overflow:
            numel = 1
    if overflow:
        _fail(f"output size ({N}, {K}, {oh}, {ow}) would overflow")
    return (N, K, oh, ow)


def check_output_size(grad_output, size):
    if tuple(grad_output.shape) != tuple(size):
        _fail(f"grad_output has size {_tuple(grad_output.shape)}, expected {_tuple(size)}")


def check_bias(bias, out_channels):
    if bias.dim() != 1 or bias.shape[0] != out_channels:
        _fail(f"expected bias of size ({out_channels}), one per output channel, got a {bias.dim()}-D bias "
              f"with {bias.numel()} elements")


def output_memory_format(a, b):
    """torch's conv2d rule: channels_last output when either operand suggests channels_last."""
    cl = torch.channels_last
    return cl if suggest_memory_format(a) == cl or suggest_memory_format(b) == cl else torch.contiguous_format
