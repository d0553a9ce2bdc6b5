"""Bad input raises a Python error naming the bad values; it never crashes the process.

Each op-level case runs twice: on CPU tensors (the C++ checks) and on meta tensors (the Python twin in
_geometry.py, which the fake kernels use). Both must raise the same message.
"""

import re

import pytest
import torch

import torchconv

OPS = torch.ops.torchconv


def base(**over):
    a = dict(x=(2, 4, 8, 8), w=(6, 2, 3, 3), b=(6,), stride=[1, 1], pad=[1, 1, 1, 1], dil=[1, 1], groups=2,
             mode="zeros", algorithm="auto", dtype=torch.float64, wdtype=None)
    a.update(over)
    return a


CASES = [
    ("input rank", base(x=(4, 8, 8)), r"expected input to be 4-D, got 3-D"),
    ("weight rank", base(w=(6, 2, 3)), r"expected weight to be 4-D, got 3-D"),
    ("channels", base(w=(6, 3, 3, 3)), r"input has 4 channels, but weight of size \(6, 3, 3, 3\) with groups 2 "
                                       r"expects 6"),
    ("out channels", base(w=(5, 2, 3, 3), b=(5,)), r"out_channels 5 is not divisible by groups 2"),
    ("groups 0", base(groups=0), r"groups must be positive, got 0"),
    ("groups negative", base(groups=-2), r"groups must be positive, got -2"),
    ("stride 0", base(stride=[0, 1]), r"stride must be positive, got \(0, 1\)"),
    ("stride negative", base(stride=[1, -3]), r"stride must be positive, got \(1, -3\)"),
    ("dilation 0", base(dil=[1, 0]), r"dilation must be positive, got \(1, 0\)"),
    ("padding negative", base(pad=[1, -1, 0, 0]), r"padding must be non-negative, got \(1, -1, 0, 0\)"),
    ("kernel too large", base(w=(6, 2, 11, 3), pad=[0, 0, 1, 1]),
     r"kernel size \(11, 3\) with dilation \(1, 1\) spans \(11, 3\), larger than the padded input \(10, 8\)"),
    ("dilated kernel too large", base(dil=[5, 1], pad=[0] * 4),
     r"spans \(11, 3\), larger than the padded input \(8, 8\)"),
    ("replicate from an empty row", base(x=(2, 4, 9, 0), pad=[3, 0, 0, 0], mode="replicate"),
     r"padding_mode 'replicate' needs input elements to pad with, got input height and width \(9, 0\) with "
     r"padding \(3, 0, 0, 0\)"),
    ("circular from an empty column", base(x=(2, 4, 0, 5), pad=[0, 0, 0, 2], mode="circular"),
     r"padding_mode 'circular' needs input elements to pad with, got input height and width \(0, 5\)"),
    ("padding mode", base(mode="mirror"), r"unknown padding_mode 'mirror'; expected one of zeros, reflect"),
    ("algorithm", base(algorithm="winograd"), r"unknown algorithm 'winograd'; expected auto, im2col, direct or a kernel name"),
    ("bias size", base(b=(5,)), r"expected bias of size \(6\), one per output channel, got a 1-D bias with 5"),
    ("bias rank", base(b=(6, 1)), r"expected bias of size \(6\), one per output channel, got a 2-D bias"),
    ("dtype mismatch", base(wdtype=torch.float32), r"weight has dtype float32 but input has dtype float64"),
    ("int32", base(dtype=torch.int32), r"unsupported dtype int32 of input; supported: float32, float64, bfloat16, "
                                       r"float16"),
    ("int64", base(dtype=torch.int64), r"unsupported dtype int64 of input"),
    ("padding overflow", base(pad=[0, 0, 2**62, 2**62]), r"padded input or dilated kernel size would overflow"),
    ("output overflow", base(x=(2, 4, 1, 1), pad=[2**40] * 4),
     r"output size \(2, 6, 2199023255551, 2199023255551\) would overflow"),
    ("stride length", base(stride=[1, 1, 1]), r"stride must have 2 values, got 3"),
    ("padding length", base(pad=[1, 1]), r"padding must have 4 values, got 2"),
]


def make(a, device):
    def t(shape, dtype):
        if dtype.is_floating_point:
            return torch.randn(shape, dtype=dtype, device=device)
        return torch.ones(shape, dtype=dtype, device=device)
    x = t(a["x"], a["dtype"])
    w = t(a["w"], a["wdtype"] or a["dtype"])
    b = t(a["b"], a["dtype"]) if a["b"] is not None else None
    return x, w, b, a["stride"], a["pad"], a["dil"], a["groups"], a["mode"], a["algorithm"]


def message(device, a):
    with pytest.raises(RuntimeError) as info:
        OPS.conv2d(*make(a, device))
    return str(info.value)


@pytest.mark.parametrize("name,args,pattern", CASES, ids=[c[0] for c in CASES])
def test_conv2d_bad_input(name, args, pattern):
    cpp, py = message("cpu", args), message("meta", args)
    assert re.search(pattern, cpp), cpp
    # The twins agree word for word (the C++ text may carry a function/file prefix before "torchconv:").
    assert cpp[cpp.index("torchconv:"):] == py[py.index("torchconv:"):], (cpp, py)


GRAD_ARGS = [[1, 1], [1, 1, 1, 1], [1, 1], 2, "zeros", "auto"]


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_grad_ops_check_grad_output_size(device):
    x = torch.randn(2, 4, 8, 8, device=device, dtype=torch.float64)
    w = torch.randn(6, 2, 3, 3, device=device, dtype=torch.float64)
    gy = torch.randn(2, 6, 7, 8, device=device, dtype=torch.float64)
    msg = r"grad_output has size \(2, 6, 7, 8\), expected \(2, 6, 8, 8\)"
    with pytest.raises(RuntimeError, match=msg):
        OPS.conv2d_grad_input(gy, w, list(x.shape), *GRAD_ARGS)
    with pytest.raises(RuntimeError, match=msg):
        OPS.conv2d_grad_weight(x, gy, list(w.shape), *GRAD_ARGS)
    with pytest.raises(RuntimeError, match=r"input_size must have 4 values, got 3"):
        OPS.conv2d_grad_input(gy, w, [2, 4, 8], *GRAD_ARGS)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_grad_ops_check_dtypes(device):
    x = torch.randn(2, 4, 8, 8, device=device)
    w = torch.randn(6, 2, 3, 3, device=device, dtype=torch.float64)
    gy = torch.randn(2, 6, 8, 8, device=device)
    with pytest.raises(RuntimeError, match=r"weight has dtype float64 but grad_output has dtype float32"):
        OPS.conv2d_grad_input(gy, w, list(x.shape), *GRAD_ARGS)
    with pytest.raises(RuntimeError, match=r"unsupported dtype int64 of input"):
        OPS.conv2d_grad_weight(x.long(), gy.long(), list(w.shape), *GRAD_ARGS)
    with pytest.raises(RuntimeError, match=r"grad_output has dtype bfloat16 but input has dtype float16"):
        OPS.conv2d_grad_weight(x.half(), gy.bfloat16(), list(w.shape), *GRAD_ARGS)


def test_device_mismatch():
    x = torch.randn(2, 4, 8, 8)
    w = torch.randn(6, 2, 3, 3, device="meta")
    with pytest.raises(RuntimeError, match=r"expected weight on the cpu, like input, got meta"):
        torchconv.conv2d(x, w, groups=2)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda x, w: torchconv.conv2d(x[None], w), RuntimeError,
     r"expected 3-D \(unbatched\) or 4-D \(batched\) input to conv2d, got input of size \(1, 2, 4, 8, 8\)"),
    (lambda x, w: torchconv.conv2d(x, w[0]), RuntimeError, r"expected a 4-D weight .* got weight of size \(4, 3, 3\)"),
    (lambda x, w: torchconv.conv2d(x, w, stride=2, padding="same"), ValueError,
     r"padding='same' is not supported for strided convolutions, got stride \(2, 2\)"),
    (lambda x, w: torchconv.conv2d(x, w, padding="full"), ValueError,
     r"invalid padding string 'full', expected 'same' or 'valid'"),
    (lambda x, w: torchconv.conv2d(x, w, padding=(1, 2, 3)), ValueError,
     r"padding must be an int, a string, or a tuple of 2 \(h, w\) or 4 \(left, right, top, bottom\) ints, got "
     r"\(1, 2, 3\)"),
    (lambda x, w: torchconv.conv2d(x, w, stride=(1, 2, 3)), ValueError,
     r"stride must be an int or a tuple of 2 ints, got \(1, 2, 3\)"),
    (lambda x, w: torchconv.conv2d(x, w, padding=-1), RuntimeError, r"padding must be non-negative"),
    (lambda x, w: torchconv.conv1d(x, w), RuntimeError, r"expected 2-D \(unbatched\) or 3-D \(batched\) input"),
    (lambda x, w: torchconv.conv1d(x[:, :, 0], w), RuntimeError, r"expected a 3-D weight"),
    (lambda x, w: torchconv.conv1d(x[:, :, 0], w[:, :, 0, :2], padding=(1, 2, 3)), ValueError,
     r"conv1d padding must be an int, a string, or a tuple of 1 or 2 ints"),
])
def test_public_api_bad_arguments(call, exc, pattern):
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 3, 3)
    with pytest.raises(exc, match=pattern):
        call(x, w)


def test_module_rejects_unknown_padding_mode():
    with pytest.raises(ValueError, match="padding_mode"):
        torchconv.nn.Conv2d(3, 4, 3, padding_mode="mirror")
