"""Differential fuzz of torchconv.conv2d against torch.

    python tests/fuzz.py --seeds N [--start S] [--isa default,avx2,avx512] [--algorithms auto,im2col,direct]
                         [--timeout SEC]
    python tests/fuzz.py --case JSON [--algorithms ...]      # one case, in this process: a reproducer

Each seed draws one case (random.Random(seed)): the arguments of torchconv.conv2d, mostly small valid layers of
every geometry family, and a good share of invalid or edge ones (ranks, empty dims, channel and group mismatches,
zero, negative and huge strides, dilations and pads, every padding mode, dtype mixes, strided, expanded, aliased and
channels_last tensors, NaN and Inf in the input, the weight and the output gradient). Each (case, ISA, algorithm) is
classified as

    equal               torch computes, and torchconv gives the same values, NaN pattern, shape, dtype and layout,
                        forward and backward, and the same gradient bits for 1 and 2 threads (the README's promise)
    both_raise          torch raises, and torchconv raises a RuntimeError, ValueError or TypeError with a message
                        (on a documented extension, only where some argument is beyond 2**31)
    extension           torch raises, but the case is a documented extension (4-sided or symmetric padding, reflect or
                        circular pads wider than the input, no input or output channels, an empty input plane in
                        zero padding) and torchconv computes what
                        numpy.pad's index maps followed by an unpadded convolution give
    refused_documented  torchconv refuses a dtype other than float32 / float64 / bfloat16 / float16 that torch
                        computes
    defect              anything else: a crash, a hang, a mismatch, a refusal of what torch computes, a value where
                        torch raises, or another exception type

Each ISA runs in a child process (TORCHCONV_CPU_CAPABILITY=isa) that reports each (case, algorithm) and its phases
as JSON lines, so a crash or a hang is pinned on its case; the parent then starts a new child from the next one.
Every defect prints a one-line reproducer that rebuilds the case from explicit values. Exit status 1 on any defect.
"""

import argparse
import collections
import contextlib
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch._prims_common import suggest_memory_format

import torchconv

ALGORITHMS = ("auto", "im2col", "direct")
MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
TORCH_MODES = ("reflect", "replicate", "circular")  # the modes F.pad has
CLASSES = ("equal", "both_raise", "extension", "refused_documented", "defect")
DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
          "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32}
SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
CLEAN_ERRORS = (RuntimeError, ValueError, TypeError)
INT64_MAX = 2**63 - 1
# Far above any allocation (2**40), at torchconv's size limit (2**62), at the edge of int64 and beyond it.
HUGE = (2**40, 2**62, 2**62 + 1, INT64_MAX, 2**63)
# Sizes between these two bounds would be allocated for real (and slowly) by torch or torchconv; a case that needs
# one is drawn again. Below: milliseconds. Above: the allocation fails at once (or an overflow check refuses it).
SMALL_ELEMS, HOPELESS_ELEMS = 2**20, 2**36
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4}  # relative to the largest finite reference value
LOW_PRECISION_TOLERANCE = 1e-2
CL = torch.channels_last


# ---- drawing cases ----------------------------------------------------------------------------------------------

def draw_case(seed):
    """The case of a seed: a JSON-able dict of explicit values (the tensor values come from case['values'])."""
    r = random.Random(seed)
    while True:
        case = _draw(r)
        if _affordable(case):
            return case


def _pick(r, weights):
    return r.choices(list(weights), weights=list(weights.values()))[0]


def _draw(r):
    g = _draw_layer(r)
    for _ in range(_pick(r, {0: 60, 1: 30, 2: 10})):
        _pick(r, MUTATIONS)(r, g)
    dtype = _pick(r, {"float64": 40, "float32": 40, "bfloat16": 10, "float16": 10})
    x_shape = g.get("x_shape") or ([g["C"], g["H"], g["W"]] if g["unbatched"] else [g["N"], g["C"], g["H"], g["W"]])
    w_shape = g.get("w_shape") or [g["K"], g["Cg"], g["kh"], g["kw"]]
    case = {
        "x": {"shape": x_shape, "dtype": g.get("x_dtype", dtype), "specials": [],
              "layout": _pick(r, {"contiguous": 50, "channels_last": 20, "sliced": 12, "channels_last_sliced": 6,
                                  "expanded": 12})},
        "w": {"shape": w_shape, "dtype": g.get("w_dtype", dtype), "specials": [],
              "layout": _pick(r, {"contiguous": 60, "channels_last": 25, "sliced": 8, "expanded": 7})},
        "b": None,
        "stride": g["stride"], "padding": g["padding"], "dilation": g["dilation"], "groups": g["groups"],
        "padding_mode": g["mode"],
        "alias": None,
        "gy": {"layout": _pick(r, {"contiguous": 75, "channels_last": 25}), "specials": []},
        "values": r.randrange(2**31),
    }
    if "b_shape" in g or r.random() < 0.6:
        case["b"] = {"shape": g.get("b_shape", [w_shape[0]]), "dtype": g.get("b_dtype", dtype), "specials": [],
                     "layout": _pick(r, {"contiguous": 70, "sliced": 15, "expanded": 15})}
    if case["x"]["dtype"] == case["w"]["dtype"] and min(x_shape + w_shape) >= 0 and r.random() < 0.05:
        # The input and the weight are two overlapping views of one buffer.
        case["x"]["layout"] = case["w"]["layout"] = "contiguous"
        case["alias"] = r.randrange(_numel(x_shape) + 1)
    for t, p in ((case["x"], 0.25), (case["w"], 0.2), (case["gy"], 0.2)):
        if r.random() < p:
            rank = len(t["shape"]) if "shape" in t else 4
            t["specials"] = [[_border_index(r, rank), r.choice(["nan", "inf", "-inf"])] for _ in range(r.randint(1, 3))]
    return case


def _border_index(r, rank):
    """An index (taken modulo the size at use) that falls on a border (first or last row or column) half the time."""
    index = [r.randrange(8) for _ in range(rank)]
    if rank >= 2 and r.random() < 0.5:
        index[r.choice([-1, -2])] = r.choice([0, -1])
    return index


def _draw_layer(r):
    """A valid layer of one family: dense, depthwise, grouped, 1x1, non-square, or large enough for two threads."""
    family = _pick(r, {"dense": 25, "depthwise": 20, "grouped": 20, "pointwise": 10, "nonsquare": 15, "threads": 10})
    g = {"N": r.choice([1, 1, 2, 2, 3, 5]), "H": r.randint(1, 12), "W": r.randint(1, 12), "groups": 1,
         "stride": r.choice([1, 1, 1, 2, [1, 2], [2, 1], [3, 2]]),
         "dilation": r.choice([1, 1, 1, 1, 2, [1, 2], [3, 1]]),
         "mode": _pick(r, {"zeros": 40, "reflect": 15, "replicate": 15, "circular": 15, "symmetric": 15}),
         "unbatched": r.random() < 0.1}
    if family == "depthwise":
        C, k = r.randint(1, 9), r.choice([3, 5])
        g.update(groups=C, C=C, K=C * r.choice([1, 1, 2]), kh=k, kw=k, stride=r.choice([1, 2]), dilation=1)
    elif family == "grouped":
        groups = r.randint(2, 4)
        g.update(groups=groups, C=groups * r.randint(1, 3), K=groups * r.randint(1, 3), kh=r.randint(1, 3),
                 kw=r.randint(1, 3))
    elif family == "pointwise":
        g.update(C=r.randint(1, 8), K=r.randint(1, 8), kh=1, kw=1)
    elif family == "nonsquare":
        kh, kw = r.sample([1, 2, 3, 4, 5], 2)
        g.update(C=r.randint(1, 5), K=r.randint(1, 5), kh=kh, kw=kw)
    elif family == "threads":  # several images and groups: both threads get work, im2col sums several partials
        groups, k = r.choice([1, 2, 4]), r.choice([1, 3])
        g.update(N=r.choice([4, 7]), groups=groups, C=groups * r.choice([2, 4, 8]), K=groups * r.choice([2, 4, 8]),
                 kh=k, kw=k, H=r.randint(12, 20), W=r.randint(12, 20), unbatched=False)
    else:
        k = r.choice([1, 2, 3, 5])
        g.update(C=r.randint(1, 6), K=r.randint(1, 6), kh=k, kw=k)
    g["Cg"] = g["C"] // g["groups"]
    form = _pick(r, {"int": 35, "pair": 20, "quad": 30, "same": 10, "valid": 5})
    if form == "same" and _pair(g["stride"]) == (1, 1):
        g["padding"] = "same"
    elif form == "valid":
        g["padding"] = "valid"
    elif form == "pair":
        g["padding"] = [r.randint(0, 2), r.randint(0, 3)]
    elif form == "quad":
        g["padding"] = [r.randint(0, 3) for _ in range(4)]
    else:
        g["padding"] = r.randint(0, 2)
    if r.random() < 0.85:  # mostly valid: the input alone covers the dilated kernel
        dh, dw = _pair(g["dilation"])
        g["H"], g["W"] = max(g["H"], dh * (g["kh"] - 1) + 1), max(g["W"], dw * (g["kw"] - 1) + 1)
    return g


def _huge_or_bad(r):
    return r.choice([0, -1, *HUGE])


def _mutate_rank(r, g):
    if r.random() < 0.5:
        N, C, H, W = g["N"], g["C"], g["H"], g["W"]
        g["x_shape"] = r.choice([[H, W], [N, C, H, W, 1], [1, N, C, H, W]])
    else:
        g["w_shape"] = r.choice([[g["K"], g["Cg"], g["kh"]], [g["K"], g["Cg"], g["kh"], g["kw"], 1]])


def _mutate_empty(r, g):
    which = r.choice(["N", "K", "C", "H", "W"])
    if which == "C":  # no input channels: weight (K, 0, kh, kw)
        g["C"] = g["Cg"] = 0
    else:
        g[which] = 0
        g["unbatched"] = g["unbatched"] and which != "N"


def _mutate_channels(r, g):
    if r.random() < 0.5:
        g["Cg"] += 1 if g["Cg"] == 0 else r.choice([-1, 1])  # a tensor has no negative size
    elif g["groups"] > 1:
        g["K"] += 1
    else:
        g["groups"] = r.choice([0, -1, 2, 2**63 - 1])


def _mutate_stride_or_dilation(r, g):
    key = r.choice(["stride", "dilation"])
    value = list(_pair(g[key]))
    value[r.randrange(2)] = _huge_or_bad(r)
    g[key] = value if r.random() < 0.7 else value[0]


def _mutate_padding(r, g):
    """Negative or huge pads, as an int, a pair or a 4-tuple; huge ones on one dim or side only (a plane that fits)."""
    bad = _huge_or_bad(r) if r.random() < 0.7 else -1
    form = r.choice(["int", "pair", "quad"])
    if form == "int":
        g["padding"] = bad
    elif form == "pair":
        g["padding"] = [0, 1] if r.random() < 0.5 else [1, 0]
        g["padding"][r.randrange(2)] = bad
    else:
        g["padding"] = [r.randint(0, 2) for _ in range(4)]
        g["padding"][r.randrange(4)] = bad


def _mutate_huge_stride(r, g):
    """Small padding with a stride near 2**63: one or two output pixels per dim, the first one in the padding."""
    g["stride"] = [r.choice(HUGE[1:4]), r.choice(HUGE[1:4])] if r.random() < 0.7 else r.choice(HUGE[1:4])
    g["padding"] = r.choice([r.randint(1, 3), [r.randint(1, 3), r.randint(0, 3)], [r.randint(0, 3) for _ in range(4)]])


def _mutate_empty_huge_padding(r, g):
    """An empty output (no images or no output channels) whose plane is huge along one dim."""
    g[r.choice(["N", "K"])] = 0
    g["unbatched"] = False
    huge = r.choice(HUGE[:2])
    g["padding"] = r.choice([[huge, 0], [0, huge], [huge, 0, 0, 0], [0, 0, 0, huge]])


def _mutate_big_kernel(r, g):
    g["kh"] = g["H"] + 2 * r.randint(0, 3) + r.randint(1, 2)


def _mutate_wide_padding(r, g):
    """Pads as wide as the input or wider: refused by F.pad's reflect and circular, computed like numpy.pad."""
    g["padding"] = r.choice([[r.randint(g["H"], 2 * g["H"] + 2), r.randint(0, 2 * g["W"] + 2)],
                             [r.randint(0, 2 * g["W"] + 2) for _ in range(2)] + [r.randint(g["H"], 2 * g["H"] + 2), 0]])
    g["mode"] = r.choice(MODES)


def _mutate_dtype(r, g):
    other = r.choice(["float16", "bfloat16", "int64", "int32", "float32", "float64"])
    keys = r.choice([["x_dtype"], ["w_dtype"], ["b_dtype"], ["x_dtype", "w_dtype", "b_dtype"]])
    g.update(dict.fromkeys(keys, other))


def _mutate_bias(r, g):
    g["b_shape"] = r.choice([[g["K"] + 1], [g["K"], 1], []])


def _mutate_padding_string(r, g):
    g["padding"] = r.choice(["same", "full"])
    g["stride"] = r.choice([1, 2, [1, 2]])


# Weights: empty dims and strides near 2**63 are where the kernels' index arithmetic has the most corners.
MUTATIONS = {_mutate_rank: 1, _mutate_empty: 2, _mutate_channels: 1, _mutate_stride_or_dilation: 1, _mutate_padding: 1,
             _mutate_huge_stride: 2, _mutate_empty_huge_padding: 1, _mutate_big_kernel: 1, _mutate_wide_padding: 1,
             _mutate_dtype: 1, _mutate_bias: 1, _mutate_padding_string: 1}


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _affordable(case):
    """No tensor that torch or torchconv would fill for real (F.pad's copy, the output) between small and hopeless."""
    x_shape, w_shape = case["x"]["shape"], case["w"]["shape"]
    if max(_numel(x_shape), _numel(w_shape)) > 2**17:
        return False
    try:
        N, C, H, W = ([1] + x_shape) if len(x_shape) == 3 else x_shape
        K, Cg, kh, kw = w_shape
        (sh, sw), (dh, dw) = _pair(case["stride"]), _pair(case["dilation"])
        pl, pr, pt, pb = padding4(case["padding"], (kh, kw), case["stride"], case["dilation"], quad=True)
    except (ValueError, TypeError):
        return True  # refused before anything is allocated
    hp, wp = H + pt + pb, W + pl + pr
    if case["padding_mode"] != "zeros" and SMALL_ELEMS < N * C * hp * wp < HOPELESS_ELEMS:
        return False
    if min(sh, sw, dh, dw) <= 0 or dh * (kh - 1) + 1 > hp or dw * (kw - 1) + 1 > wp:
        return True
    out = N * K * ((hp - dh * (kh - 1) - 1) // sh + 1) * ((wp - dw * (kw - 1) - 1) // sw + 1)
    return not SMALL_ELEMS < out < HOPELESS_ELEMS and out * max(Cg, 1) * kh * kw <= 2**23


# ---- building tensors ---------------------------------------------------------------------------------------------

def _values(rng, shape, dtype):
    if dtype.is_floating_point:
        return torch.from_numpy(rng.standard_normal(shape)).to(dtype)
    return torch.from_numpy(rng.integers(-3, 4, shape)).to(dtype)


def _set_specials(t, specials):
    """Writes NaN / Inf at each index, taken modulo t's sizes (its last dims, for a shorter tensor)."""
    if not specials or t.numel() == 0 or not t.dtype.is_floating_point:
        return
    with torch.no_grad():
        for index, value in specials:
            t[tuple(i % s for i, s in zip(index[-t.dim():], t.shape))] = float(value)


def _make(spec, rng, requires_grad):
    """One tensor of spec: its values, its layout (as a view of a leaf when it is a view), its NaN / Inf."""
    shape, dtype, layout = spec["shape"], DTYPES[spec["dtype"]], spec["layout"]
    four_d = len(shape) == 4  # channels_last exists for 4-D tensors only; elsewhere those layouts are plain
    sliced = layout in ("sliced", "channels_last_sliced") and len(shape) > 0
    base_shape, index = list(shape), [slice(None)] * len(shape)
    if sliced:  # every 3rd column from the 2nd, and every 2nd channel
        base_shape[-1], index[-1] = 3 * shape[-1], slice(1, None, 3)
        if len(shape) >= 3:
            base_shape[1], index[1] = 2 * shape[1], slice(None, None, 2)
    elif layout == "expanded" and shape:  # stride 0 along dim 0
        base_shape[0] = 1
    base = _values(rng, base_shape, dtype)
    if four_d and layout in ("channels_last", "channels_last_sliced"):
        base = base.contiguous(memory_format=CL)

    def view(b):
        if sliced:
            return b[tuple(index)]
        return b.expand(shape) if layout == "expanded" else b

    _set_specials(base if layout == "expanded" else view(base), spec["specials"])
    return view(base.requires_grad_(requires_grad and dtype.is_floating_point))


def build(case, requires_grad=False):
    """(x, w, b, rng) of a case; rng then draws the output gradient."""
    rng = np.random.default_rng(case["values"])
    if case["alias"] is not None:
        xs, ws, off = case["x"], case["w"], case["alias"]
        nx, nw = _numel(xs["shape"]), _numel(ws["shape"])
        flat = _values(rng, [max(nx, off + nw)], DTYPES[xs["dtype"]])
        _set_specials(flat[:nx].view(xs["shape"]), xs["specials"])
        _set_specials(flat[off:off + nw].view(ws["shape"]), ws["specials"])
        flat.requires_grad_(requires_grad and flat.dtype.is_floating_point)
        x, w = flat[:nx].view(xs["shape"]), flat[off:off + nw].view(ws["shape"])
    else:
        x, w = _make(case["x"], rng, requires_grad), _make(case["w"], rng, requires_grad)
    b = _make(case["b"], rng, requires_grad) if case["b"] else None
    return x, w, b, rng


def grad_output(case, y, rng):
    spec = dict(case["gy"], shape=list(y.shape), dtype=str(y.dtype).removeprefix("torch."))
    return _make(spec, rng, False)


# ---- references ---------------------------------------------------------------------------------------------------

class TorchRefuses(Exception):
    """torch has no answer: it raises, or it returns a shape that is not the convolution's."""


def _pair(v):
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return tuple(v)
    raise ValueError(f"expected an int or 2 ints, got {v!r}")


def padding4(padding, kernel, stride, dilation, quad):
    """(left, right, top, bottom) as F.conv2d reads padding (and, with quad, torchconv's 4-tuple too)."""
    if isinstance(padding, str):
        if padding == "valid":
            return [0, 0, 0, 0]
        if padding != "same":
            raise ValueError(f"invalid padding string {padding!r}")
        if _pair(stride) != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
        (dh, dw), (kh, kw) = _pair(dilation), kernel
        th, tw = dh * (kh - 1), dw * (kw - 1)  # torch puts the odd pixel on the right / bottom
        return [tw // 2, tw - tw // 2, th // 2, th - th // 2]
    if isinstance(padding, int):
        pads = [padding] * 4
    elif len(padding) == 2:
        pads = [padding[1], padding[1], padding[0], padding[0]]
    elif len(padding) == 4 and quad:
        pads = list(padding)
    else:
        raise ValueError(f"padding {padding!r} is not an int, a pair or a string")
    if any(p < 0 for p in pads):  # F.conv2d refuses them (F.pad would crop)
        raise ValueError("negative padding")
    return pads


def geometry(x_shape, w_shape, b_shape, stride, pad4, dilation, groups):
    """(N, K, OH, OW) in exact integers, or ValueError: F.conv2d's rules, with no int64 wrap-around."""
    if len(x_shape) not in (3, 4) or len(w_shape) != 4:
        raise ValueError("expected a 3-D or 4-D input and a 4-D weight")
    N, C, H, W = ([1] + list(x_shape)) if len(x_shape) == 3 else x_shape
    K, Cg, kh, kw = w_shape
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    if any(not isinstance(v, int) or v > INT64_MAX for v in (sh, sw, dh, dw, groups, *pad4)):
        raise ValueError("arguments must be int64")
    if min(sh, sw, dh, dw, groups) <= 0:
        raise ValueError("non-positive stride, dilation or groups")
    if C != Cg * groups or K % groups:
        raise ValueError("channels do not match groups")
    if b_shape is not None and list(b_shape) != [K]:
        raise ValueError("bias is not 1-D with one value per output channel")
    pl, pr, pt, pb = pad4
    hp, wp, ekh, ekw = H + pt + pb, W + pl + pr, dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if max(hp, wp, ekh, ekw) > INT64_MAX:
        raise ValueError("sizes beyond int64")
    if min(kh, kw) < 1 or ekh > hp or ekw > wp:
        raise ValueError("kernel larger than the padded input")
    return N, K, (hp - ekh) // sh + 1, (wp - ekw) // sw + 1


def torch_conv(case, x, w, b):
    """What torch computes: F.conv2d, after F.pad for a padding mode other than zeros (as nn.Conv2d does)."""
    mode, stride, dilation, groups = case["padding_mode"], case["stride"], case["dilation"], case["groups"]
    if mode == "zeros":
        return F.conv2d(x, w, b, stride, case["padding"], dilation, groups)
    if mode not in TORCH_MODES:
        raise TorchRefuses(f"torch has no padding_mode {mode!r}")
    pad4 = padding4(case["padding"], tuple(w.shape[2:]), stride, dilation, quad=False)
    return F.conv2d(F.pad(x, pad4, mode=mode), w, b, stride, 0, dilation, groups)


def _index_map(p, size, mode):
    """Where numpy.pad takes the padded position p (-top .. size + bottom - 1) from; `size` means a zero."""
    if 0 <= p < size:
        return p
    if mode == "zeros":
        return size
    if size == 0:
        raise ValueError(f"padding_mode {mode!r} has no element to pad with")
    if mode == "replicate":
        return min(max(p, 0), size - 1)
    if mode == "circular":
        return p % size
    if mode == "reflect":  # period 2 * size - 2, the edge not repeated
        m = p % (2 * size - 2) if size > 1 else 0
        return m if m < size else 2 * size - 2 - m
    m = p % (2 * size)  # symmetric: period 2 * size, the edge repeated
    return m if m < size else 2 * size - 1 - m


def numpy_pad_conv(case, x, w, b):
    """The documented extension: gather the rows and columns each output reads through numpy.pad's index maps (in
    closed form, which test_fuzz checks against numpy.pad, so huge pads cost nothing), then an unpadded convolution
    as a sum of products (0 * Inf is NaN as in the padded copy). Differentiable."""
    stride, dilation, groups, mode = case["stride"], case["dilation"], case["groups"], case["padding_mode"]
    if len({t.dtype for t in (x, w, b) if t is not None}) != 1:
        raise ValueError("dtypes differ")
    pad4 = padding4(case["padding"], tuple(w.shape[2:]), stride, dilation, quad=True)
    N, K, oh, ow = geometry(list(x.shape), list(w.shape), None if b is None else list(b.shape), stride, pad4,
                            dilation, groups)
    x4 = x.unsqueeze(0) if x.dim() == 3 else x
    if mode != "zeros" and 0 in x4.shape[2:]:  # numpy.pad: no element to pad with, whatever the output
        raise ValueError(f"padding_mode {mode!r} of an empty input plane")
    if N * K * oh * ow == 0:
        y = x4.new_zeros(N, K, oh, ow)
    else:
        (sh, sw), (dh, dw), (kh, kw), (C, H, W) = _pair(stride), _pair(dilation), w.shape[2:], x4.shape[1:]
        rows = torch.tensor([[_index_map(i * sh + a * dh - pad4[2], H, mode) for a in range(kh)] for i in range(oh)])
        cols = torch.tensor([[_index_map(j * sw + a * dw - pad4[0], W, mode) for a in range(kw)] for j in range(ow)])
        xz = F.pad(x4, (0, 1, 0, 1))  # row H and column W are the zeros of zero padding
        patches = xz[:, :, rows][..., cols].reshape(N, groups, 1, C // groups, oh, kh, ow, kw)
        w7 = w.reshape(1, groups, K // groups, C // groups, 1, kh, 1, kw)
        y = (patches * w7).sum((3, 5, 7)).reshape(N, K, oh, ow)
        if b is not None:
            y = y + b.reshape(1, K, 1, 1)
    return y.squeeze(0) if x.dim() == 3 else y


def extension_reason(case):
    """Why torch's refusal of a case may be torchconv's documented extension, or None."""
    mode, padding = case["padding_mode"], case["padding"]
    x_shape, w_shape = case["x"]["shape"], case["w"]["shape"]
    if isinstance(padding, list) and len(padding) == 4:
        return "4-sided padding"
    if mode == "symmetric":
        return "symmetric padding"
    if len(x_shape) in (3, 4) and len(w_shape) == 4:
        try:
            pl, pr, pt, pb = padding4(padding, tuple(w_shape[2:]), case["stride"], case["dilation"], quad=True)
        except (ValueError, TypeError):
            pl = pr = pt = pb = 0
        H, W = x_shape[-2:]
        wide = max(pt, pb) - H, max(pl, pr) - W
        if (mode == "reflect" and max(wide) >= 0) or (mode == "circular" and max(wide) > 0):
            return f"{mode} pads wider than the input"
        if x_shape[-3] == 0 or w_shape[0] == 0:
            return "no input or output channels"
        if 0 in (H, W) and mode == "zeros":
            return "an empty input plane in zero padding"
    return None


@contextlib.contextmanager
def _threads(n):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _float64(t):
    return None if t is None else t.detach().to(torch.float64).requires_grad_(t.requires_grad)


class Reference:
    """torch's answer to a case: its output (or its refusal), and a differentiable function for the gradients.

    A float32 case is computed in float64: a better reference, and oneDNN's float32 kernel refuses some geometries
    torch computes (a stride near 2**63). A shape that is not the convolution's (torch's int64 sizes wrap around,
    and it returns 0 channels for an input without channels) counts as a refusal. One thread: the reference needs
    none, and on a loaded machine each parallel region of a small op can wait milliseconds for the other thread."""

    def __init__(self, case):
        with _threads(1):
            self._compute(case)
        self._grads = None

    def _compute(self, case):
        self.case = case
        x, w, b, _ = build(case)
        tensors = [t for t in (x, w, b) if t is not None]
        self.dtype = x.dtype
        self.supported = all(t.dtype in SUPPORTED_DTYPES for t in tensors)
        self.fn, self.extension, self.error = torch_conv, None, None
        upcast = self.supported and len({t.dtype for t in tensors}) == 1
        try:
            self.out = torch_conv(case, *((_float64(t) for t in (x, w, b)) if upcast else (x, w, b)))
            want = self._shape(x, w, b, quad=False)
            got = tuple(self.out.shape) if self.out.dim() == 4 else (1, *self.out.shape)
            if got != want:
                raise TorchRefuses(f"torch returns the shape {tuple(self.out.shape)}, the geometry gives {want}")
        except Exception as e:
            self.error, self.out = e, None
        if self.out is None and upcast and extension_reason(case):
            try:
                self.out = numpy_pad_conv(case, *(_float64(t) for t in (x, w, b)))
                self.fn, self.extension = numpy_pad_conv, extension_reason(case)
            except (ValueError, RuntimeError):  # outside the extension too: torchconv should refuse it
                self.out = None

    def grads(self):
        """The gradients of input, weight (and bias) for the case's output gradient, computed once."""
        if self._grads is None:
            with _threads(1):
                try:
                    self._grads = self._grads_of(self.fn)
                except RuntimeError:  # torch's backward fails where its forward ran (a 2**40 pad, an empty batch)
                    self._grads = self._grads_of(numpy_pad_conv)
        return self._grads

    def _grads_of(self, fn):
        x, w, b, rng = build(self.case, requires_grad=True)
        x, w, b = (_float64(t) for t in (x, w, b))
        y = fn(self.case, x, w, b)
        gy = _float64(grad_output(self.case, y.to(self.dtype), rng))
        # An empty output that numpy_pad_conv builds from nothing has no graph.
        return _grads(y, (x, w, b), gy) if y.requires_grad else [
            torch.zeros_like(t) for t in (x, w, b) if t is not None]

    def _shape(self, x, w, b, quad):
        c = self.case
        try:
            pad4 = padding4(c["padding"], tuple(w.shape[2:]), c["stride"], c["dilation"], quad)
            return geometry(list(x.shape), list(w.shape), None if b is None else list(b.shape), c["stride"], pad4,
                            c["dilation"], c["groups"])
        except (ValueError, TypeError) as e:
            return f"a refusal ({e})"

    def layout(self, x, w):
        """'contiguous', 'channels_last', or None when the output's shape makes them the same.

        F.conv2d's own output, where it ran on the tensors themselves; otherwise torch's rule (channels_last when the
        input or the weight is), since F.pad's copy need not keep the input's layout (circular does not)."""
        if self.case["padding_mode"] == "zeros" and not self.extension:
            return layout_of(_as4(self.out))
        x4 = x.unsqueeze(0) if x.dim() == 3 else x
        fmt = CL if CL in (suggest_memory_format(x4), suggest_memory_format(w)) else torch.contiguous_format
        return layout_of(torch.empty(_as4(self.out).shape, device="meta").contiguous(memory_format=fmt))


def _as4(t):
    return t.unsqueeze(0) if t.dim() == 3 else t


def layout_of(t):
    contiguous, cl = t.is_contiguous(), t.is_contiguous(memory_format=CL)
    return None if contiguous == cl else "contiguous" if contiguous else "channels_last"


# ---- checking one (case, algorithm) -------------------------------------------------------------------------------

def _tolerance(dtype):
    return TOLERANCE.get(dtype, LOW_PRECISION_TOLERANCE)


def compare(name, got, want, dtype):
    """None when got matches want (shape, NaN pattern, values within dtype's tolerance), else (what, detail)."""
    if tuple(got.shape) != tuple(want.shape):
        return f"mismatch {name} shape", f"{tuple(got.shape)}, torch {tuple(want.shape)}"
    g, r = got.detach().double(), want.detach().double()
    finite = r[torch.isfinite(r)]
    scale = max(1.0, finite.abs().max().item()) if finite.numel() else 1.0
    tol = _tolerance(dtype)
    bad = ~torch.isclose(g, r, rtol=tol, atol=tol * scale, equal_nan=True)
    if not bad.any():
        return None
    i = tuple(bad.nonzero()[0].tolist())
    kinds = [_kind(v) for v in (g[i], r[i])]
    what = "values" if kinds == ["finite", "finite"] else "{} where torch has {}".format(*kinds)
    return (f"mismatch {name} {what}",
            f"{int(bad.sum())} of {bad.numel()} differ, first at {i}: {g[i].item()!r}, torch {r[i].item()!r}")


def _kind(v):
    return "NaN" if torch.isnan(v) else "Inf" if torch.isinf(v) else "finite"


def _bits(t):
    t = t.detach().contiguous()
    return t.view({8: torch.int64, 4: torch.int32, 2: torch.int16}[t.element_size()])


def _call(case, x, w, b, algorithm):
    return torchconv.conv2d(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"],
                            padding_mode=case["padding_mode"], algorithm=algorithm)


def _short(e):
    """An exception as one line, from torchconv's own text on (no C++ function / file prefix)."""
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg[msg.find('torchconv:'):] if 'torchconv:' in msg else msg}"[:300]


def _ordinary(case):
    """No stride, dilation, padding or groups beyond 2**31: torchconv may refuse an extension only beyond that (as
    torch refuses such a case, and torchconv's sizes stop at 2**62)."""
    values = [v for key in ("stride", "dilation", "padding", "groups")
              for v in (case[key] if isinstance(case[key], list) else [case[key]])]
    return all(not isinstance(v, int) or abs(v) < 2**31 for v in values)


def _result(cls, what="", detail=""):
    return {"result": cls, "what": what, "detail": detail}


def check(case, algorithm, ref, phase):
    """Classifies one (case, algorithm); phase(name) is called before each step that runs torchconv."""
    phase("forward")
    x, w, b, _ = build(case)
    try:
        y = _call(case, x, w, b, algorithm)
    except Exception as e:
        if not isinstance(e, CLEAN_ERRORS) or not str(e).strip():
            return _result("defect", f"raises {type(e).__name__}", _short(e))
        if ref.out is None or (ref.extension and not _ordinary(case)):
            return _result("both_raise", detail=_short(e))
        if ref.extension:
            return _result("defect", f"refuses a documented extension, {ref.extension} ({_short(e)[:100]})")
        if not ref.supported and "dtype" in str(e):
            return _result("refused_documented", detail=_short(e))
        return _result("defect", f"raises where torch computes ({_short(e)[:100]})",
                       f"torch gives {tuple(ref.out.shape)}")
    if ref.out is None:
        return _result("defect", f"computes where torch raises ({_short(ref.error)[:100]})",
                       f"output {tuple(y.shape)} {y.dtype}")
    if y.dtype != ref.dtype:  # torch computes only when the dtypes agree
        return _result("defect", "mismatch forward dtype", f"{y.dtype}, torch {ref.dtype}")
    problem = compare("forward", y, ref.out, ref.dtype)
    if problem:
        return _result("defect", *problem)
    want = ref.layout(x, w)
    if want and not _as4(y).is_contiguous(memory_format=CL if want == "channels_last" else torch.contiguous_format):
        return _result("defect", f"mismatch output layout, torch {want}", f"output strides {y.stride()}")
    cls = "extension" if ref.extension else "equal"
    if not ref.supported:
        return _result(cls)
    expected = ref.grads()  # outside the try: an error of the reference is the harness's, not torchconv's
    phase("backward")
    try:
        grads = _backward(case, algorithm)
        for name, got, want in zip(("grad_input", "grad_weight", "grad_bias"), grads, expected):
            problem = compare(name, got, want, ref.dtype)
            if problem:
                return _result("defect", *problem)
        threads = torch.get_num_threads()
        if threads > 1:
            phase("backward, 1 thread")
            with _threads(1):
                one = _backward(case, algorithm)
            for name, a, c in zip(("grad_input", "grad_weight", "grad_bias"), grads, one):
                if not torch.equal(_bits(a), _bits(c)):
                    problem = compare(name, c, a, torch.float64)
                    return _result("defect", f"{name} differs between 1 and {threads} threads",
                                   problem[1] if problem else "in the last bits")
    except Exception as e:
        return _result("defect", f"backward raises {type(e).__name__}", _short(e))
    return _result(cls, ref.extension or "")


def _grads(y, inputs, gy):
    inputs = [t for t in inputs if t is not None]
    grads = torch.autograd.grad(y, inputs, gy, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, grads)]


def _backward(case, algorithm):
    x, w, b, rng = build(case, requires_grad=True)
    y = _call(case, x, w, b, algorithm)
    return _grads(y, (x, w, b), grad_output(case, y, rng))


# ---- the child: runs jobs from stdin, one JSON line per phase and per result ---------------------------------------

def child_main():
    def emit(msg):
        print(json.dumps(msg), flush=True)

    info = torchconv.build_info()
    emit({"ready": info["cpu_isa"]})
    cached = {}
    for line in sys.stdin:
        job = json.loads(line)
        seed, algorithm = job["seed"], job["algorithm"]

        def phase(name):
            emit(dict(job, phase=name))

        if seed not in cached:
            phase("torch's reference")  # a hang here is torch's, and says so
            cached.clear()
            case = draw_case(seed)
            cached[seed] = case, Reference(case)
        case, ref = cached[seed]
        emit(dict(job, **check(case, algorithm, ref, phase)))


class Child:
    """A child process running the jobs of one ISA; request() returns a job's result, or a crash or hang defect."""

    def __init__(self, isa, startup_timeout=120):
        self.stderr = tempfile.TemporaryFile()
        env = dict(os.environ, TORCHCONV_CPU_CAPABILITY=isa)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        self.buffer = b""
        line = self._readline(startup_timeout)
        if not line or json.loads(line).get("ready") != isa:
            self.close()
            raise RuntimeError(f"the child for ISA {isa} did not start: {line!r} {self._stderr_tail()}")

    def _readline(self, timeout):
        """The next line, b'' at EOF, None after `timeout` seconds of silence."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return b""
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def _stderr_tail(self):
        self.stderr.seek(0)
        lines = self.stderr.read().decode(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:])[-400:]

    def request(self, job, timeout):
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the child is gone; reading says how
        phase = "start"
        while True:
            line = self._readline(timeout)
            if line is None:
                self.close()
                return dict(job, **_result("defect", f"hang in {phase}", f"no output for {timeout} s"))
            if line == b"":
                rc = self.proc.wait()
                how = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"
                tail = self._stderr_tail()
                self.close()
                return dict(job, **_result("defect", f"crash ({how}) in {phase}", tail))
            if line.startswith(b"{"):
                msg = json.loads(line)
                if "result" in msg:
                    return msg
                phase = msg["phase"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.stderr.close()


# ---- the parent -----------------------------------------------------------------------------------------------------

def supported_isas():
    cpu = torchconv.build_info()["cpu_supports"]
    return ["default"] + (["avx2"] if cpu["avx2"] else []) + (["avx512"] if cpu["avx512f"] else [])


def reproducer(case, isa, algorithm):
    script = os.path.relpath(os.path.abspath(__file__))
    return (f"TORCHCONV_CPU_CAPABILITY={isa} python {script} --algorithms {algorithm} "
            f"--case '{json.dumps(case, separators=(',', ':'))}'")


def run(seeds, start=0, isas=None, algorithms=ALGORITHMS, timeout=10.0, out=sys.stdout):
    """Runs seeds start .. start + seeds - 1 under each ISA (default: all this CPU has) and algorithm; returns one
    dict per run (isa, seed, algorithm, result, what, detail, and repro for a defect), printing each defect."""
    available = supported_isas()
    results = []
    for isa in isas or available:
        if isa not in available:
            print(f"skipping ISA {isa}: this CPU lacks it", file=out)
            continue
        jobs = [{"seed": s, "algorithm": a} for s in range(start, start + seeds) for a in algorithms]
        child = None
        for job in jobs:
            child = child or Child(isa)
            result = dict(child.request(job, timeout), isa=isa)
            if child.proc.poll() is not None:  # crashed, or killed for a hang: the next job gets a new child
                child = None
            if result["result"] == "defect":
                result["repro"] = reproducer(draw_case(job["seed"]), isa, job["algorithm"])
                print(f"DEFECT [{isa} seed {job['seed']} {job['algorithm']}] {result['what']}: {result['detail']}\n"
                      f"  {result['repro']}", file=out, flush=True)
            results.append(result)
        if child:
            child.close()
    return results


def _signature(result):
    """What a defect is, without its numbers: duplicates of one defect share it."""
    return re.sub(r"\d+", "#", result["what"])


def summary(results, elapsed):
    isas = list(dict.fromkeys(r["isa"] for r in results))
    counts = collections.Counter((r["isa"], r["result"]) for r in results)
    lines = [f"{len(results)} runs in {elapsed:.1f} s", f"{'class':20}{'total':>8}" + "".join(f"{i:>9}" for i in isas)]
    for cls in CLASSES:
        lines.append(f"{cls:20}{sum(counts[i, cls] for i in isas):>8}" + "".join(f"{counts[i, cls]:>9}" for i in isas))
    groups = collections.defaultdict(list)
    for r in results:
        if r["result"] == "defect":
            groups[_signature(r)].append(r)
    if groups:
        lines.append(f"{len(groups)} distinct defects:")
    for signature, rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        where = ", ".join(sorted({f"{r['isa']}/{r['algorithm']}" for r in rs}))
        lines += [f"  {len(rs)} x {signature}  [{where}]", f"    {rs[0]['detail']}", f"    {rs[0]['repro']}"]
    return "\n".join(lines)


def run_case(case, algorithms):
    """--case: one case under this process's ISA, in this process (a crash or a hang is the reproduction)."""
    ref = Reference(case)
    failed = False
    for algorithm in algorithms:
        result = check(case, algorithm, ref, lambda name: print(f"{algorithm}: {name}", flush=True))
        print(f"{algorithm}: {result['result']} {result['what']} {result['detail']}".rstrip())
        failed = failed or result["result"] == "defect"
    return 1 if failed else 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--isa", default=None, help="comma-separated; default: every ISA this CPU has")
    p.add_argument("--algorithms", default=",".join(ALGORITHMS))
    p.add_argument("--timeout", type=float, default=10.0, help="seconds of silence before a child counts as hung")
    p.add_argument("--case", help="a case as JSON (from a reproducer): run it here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_main()
    algorithms = args.algorithms.split(",")
    if args.case:
        return run_case(json.loads(args.case), algorithms)
    t0 = time.monotonic()
    results = run(args.seeds, args.start, args.isa and args.isa.split(","), algorithms, args.timeout)
    print(summary(results, time.monotonic() - t0))
    return 1 if any(r["result"] == "defect" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
