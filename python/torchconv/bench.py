"""Benchmark-and-verify: times torchconv against torch on named layer suites, checks every output, prints a table.

    python -m torchconv.bench                  # the default suite, against torch default (oneDNN) and torch native
    python -m torchconv.bench --suite mobilenetv2 --batch 8 --mode fwdbwd --threads 1 --baseline default
    python -m torchconv.bench --suite resnet50 --baseline all --peak 231 --chart ratios.png
    python -m torchconv.bench --dtype bfloat16 --baseline default

    python -m torchconv.bench --device cuda --suite mobilenetv2 --batch 32 --mode fwdbwd --baseline all

(bench/bench.py in the source tree runs the same.)

On a GPU (--device cuda) each call is timed with CUDA events, on inputs rotated through copies larger than the L2
cache, against torch default (cuDNN, torch.backends.cudnn.benchmark = True), torch native (cuDNN disabled:
torch's own CUDA kernels) and, for --mode fwdbwd, deterministic torch (cudnn.deterministic, the setting whose
backward torchconv's is compared with); each layer also prints its floor, the time to move its bytes at the
GPU's memory bandwidth or do its FLOPs at its peak, whichever is longer.

torch and torchconv run in one process, in alternating blocks, and each time is the median over the blocks.
torch native (torch.backends.mkldnn.enabled = False) is timed in a child process, so oneDNN's state cannot leak
into it. The unfold baseline (F.unfold + matmul, im2col in torch ops) runs in-process like the default one, on the
layers it can express, and its output is checked against torch's too. Exit status 1 if any output differs from
the exact result beyond the tests' tolerance for the dtype (float32's, or for bfloat16 and float16 half an ulp more).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import torchconv
from torchconv import _bench_models
from torchconv._bench_models import max_model_error, stand_in_models, suite_models  # noqa: F401 (the tests')

# name: (C_in, H, W, C_out, kh, kw, stride, padding (left, right, top, bottom), dilation, groups, padding_mode)
SUITES = {
    "resnet50": {
        "stem 7x7/2": (3, 224, 224, 64, 7, 7, 2, (3, 3, 3, 3), 1, 1, "zeros"),
        "conv2 3x3 64": (64, 56, 56, 64, 3, 3, 1, (1, 1, 1, 1), 1, 1, "zeros"),
        "conv3 3x3 128": (128, 28, 28, 128, 3, 3, 1, (1, 1, 1, 1), 1, 1, "zeros"),
        "conv4 3x3 256": (256, 14, 14, 256, 3, 3, 1, (1, 1, 1, 1), 1, 1, "zeros"),
        "conv5 3x3 512": (512, 7, 7, 512, 3, 3, 1, (1, 1, 1, 1), 1, 1, "zeros"),
        "conv3 3x3/2 128": (128, 56, 56, 128, 3, 3, 2, (1, 1, 1, 1), 1, 1, "zeros"),
        "1x1 256->64": (256, 56, 56, 64, 1, 1, 1, (0, 0, 0, 0), 1, 1, "zeros"),
        "1x1 64->256": (64, 56, 56, 256, 1, 1, 1, (0, 0, 0, 0), 1, 1, "zeros"),
        "1x1 1024->256": (1024, 14, 14, 256, 1, 1, 1, (0, 0, 0, 0), 1, 1, "zeros"),
    },
    "odd": {
        "5x3 s(2,1) d(1,2) pad(2,1,0,3)": (24, 37, 29, 40, 5, 3, (2, 1), (2, 1, 0, 3), (1, 2), 1, "zeros"),
        "3x3 groups=4": (64, 28, 28, 64, 3, 3, 1, (1, 1, 1, 1), 1, 4, "zeros"),
        "3x3 depthwise": (32, 56, 56, 32, 3, 3, 1, (1, 1, 1, 1), 1, 32, "zeros"),
        "3x3 reflect": (64, 28, 28, 64, 3, 3, 1, (1, 1, 1, 1), 1, 1, "reflect"),
        "1x7 circular": (32, 17, 64, 32, 1, 7, 1, (3, 3, 0, 0), 1, 1, "circular"),
    },
}
# MobileNetV2's depthwise 3x3 layers (112^2 down to 7^2, stride 1 and 2), and an EfficientNet 5x5 one.
SUITES["mobilenetv2"] = {
    "dw 3x3 32 @112": (32, 112, 112, 32, 3, 3, 1, (1, 1, 1, 1), 1, 32, "zeros"),
    "dw 3x3/2 96 @112": (96, 112, 112, 96, 3, 3, 2, (1, 1, 1, 1), 1, 96, "zeros"),
    "dw 3x3 144 @56": (144, 56, 56, 144, 3, 3, 1, (1, 1, 1, 1), 1, 144, "zeros"),
    "dw 3x3/2 144 @56": (144, 56, 56, 144, 3, 3, 2, (1, 1, 1, 1), 1, 144, "zeros"),
    "dw 3x3 192 @28": (192, 28, 28, 192, 3, 3, 1, (1, 1, 1, 1), 1, 192, "zeros"),
    "dw 3x3/2 192 @28": (192, 28, 28, 192, 3, 3, 2, (1, 1, 1, 1), 1, 192, "zeros"),
    "dw 3x3 384 @14": (384, 14, 14, 384, 3, 3, 1, (1, 1, 1, 1), 1, 384, "zeros"),
    "dw 3x3 576 @14": (576, 14, 14, 576, 3, 3, 1, (1, 1, 1, 1), 1, 576, "zeros"),
    "dw 3x3/2 576 @14": (576, 14, 14, 576, 3, 3, 2, (1, 1, 1, 1), 1, 576, "zeros"),
    "dw 3x3 960 @7": (960, 7, 7, 960, 3, 3, 1, (1, 1, 1, 1), 1, 960, "zeros"),
    "dw 5x5 240 @28 (effnet)": (240, 28, 28, 240, 5, 5, 1, (2, 2, 2, 2), 1, 240, "zeros"),
}
# ResNeXt-50 (32x4d) grouped 3x3 layers, g=32, and a RegNet-style g=8 one.
SUITES["resnext"] = {
    "g32 3x3 128 @56": (128, 56, 56, 128, 3, 3, 1, (1, 1, 1, 1), 1, 32, "zeros"),
    "g32 3x3 256 @28": (256, 28, 28, 256, 3, 3, 1, (1, 1, 1, 1), 1, 32, "zeros"),
    "g32 3x3 512 @14": (512, 14, 14, 512, 3, 3, 1, (1, 1, 1, 1), 1, 32, "zeros"),
    "g8 3x3 224 @28 (regnet)": (224, 28, 28, 224, 3, 3, 1, (1, 1, 1, 1), 1, 8, "zeros"),
}
# 1-D, run as H = 1: audio-style dense layers, and depthwise k=4 over a long sequence.
SUITES["conv1d"] = {
    "c256 L16000 k3": (256, 1, 16000, 256, 1, 3, 1, (1, 1, 0, 0), 1, 1, "zeros"),
    "c256 L16000 k9": (256, 1, 16000, 256, 1, 9, 1, (4, 4, 0, 0), 1, 1, "zeros"),
    "dw c512 L16000 k4": (512, 1, 16000, 512, 1, 4, 1, (3, 0, 0, 0), 1, 512, "zeros"),
}
SUITES["default"] = {**SUITES["resnet50"], **SUITES["odd"]}
# Whole models, converted (torchconv.convert) against the originals (_bench_models.py).
SUITES["models"] = {}


def run_models(batch, backward, progress=True):
    timer = time_alternating_cuda if DEVICE == "cuda" else time_alternating
    return _bench_models.run_models(batch, backward, timer, DEVICE, DTYPE, LAYOUT, progress)


TORCH_PAD = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def symmetric_zero_padding(mode, pad):
    """(top, left) when the padding is zeros and symmetric, the only kind F.conv2d and F.unfold take; else None."""
    if mode == "zeros" and pad[0] == pad[1] and pad[2] == pad[3]:
        return pad[2], pad[0]
    return None


def unfold_skip_reason(spec):
    """Why the F.unfold + matmul baseline cannot express this layer, or None if it can."""
    C, H, W, K, kh, kw, stride, pad, dil, groups, mode = spec
    if groups != 1:
        return f"groups={groups}"
    if symmetric_zero_padding(mode, pad) is None:
        return f"{mode} padding" if mode != "zeros" else f"asymmetric padding {pad}"
    return None


ALGORITHM = "auto"  # torchconv's algorithm argument, from --algorithm
LAYOUT = torch.contiguous_format  # the input's (and so the output's) memory format, from --channels-last
DTYPE = torch.float32  # the dtype both sides compute in, from --dtype
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICE = "cpu"  # where both sides run, from --device
# On a GPU, inputs rotate through copies of at least this many bytes: past any L2 (H200: 60 MB).
ROTATE_BYTES = 256 << 20


def make_case(spec, batch, dtype=None, backward=False):
    """Input, weight, and the convolutions to compare by name: "torchconv", "torch", and "unfold" where it applies,
    in dtype (default: --dtype's).

    With backward, each one computes the gradients of input, weight and bias of its output instead."""
    C, H, W, K, kh, kw, stride, pad, dil, groups, mode = spec
    dtype = dtype or DTYPE
    g = torch.Generator().manual_seed(0)  # drawn in float64 and rounded to --dtype: every dtype gets the same values

    def values(*shape, scale=1.0):
        return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(DTYPE).to(dtype)

    x = values(batch, C, H, W).to(DEVICE).contiguous(memory_format=LAYOUT)
    w = values(K, C // groups, kh, kw, scale=(C // groups * kh * kw) ** -0.5).to(DEVICE)
    b = values(K).to(DEVICE)
    # On a GPU the calls read the input from rotating copies, so no timing is of an input that sits in L2.
    copies = [x] + [x.clone() for _ in range(min(7, ROTATE_BYTES // max(1, x.numel() * x.element_size())))] \
        if DEVICE == "cuda" and not backward else [x]
    turn = [0]

    def next_x():
        turn[0] = (turn[0] + 1) % len(copies)
        return copies[turn[0]]
    stride, dil = pair(stride), pair(dil)
    conv_padding = symmetric_zero_padding(mode, pad)

    if backward:
        x.requires_grad_(), w.requires_grad_(), b.requires_grad_()

    def torchconv_forward():
        return torchconv.conv2d(next_x(), w, b, stride, pad, dil, groups, padding_mode=mode, algorithm=ALGORITHM)

    def torch_forward():
        # torch has no 4-sided padding or padding modes inside conv2d: symmetric zero padding goes in the conv,
        # anything else through F.pad (what nn.Conv2d does).
        xi = next_x()
        if conv_padding is not None:
            return F.conv2d(xi, w, b, stride, conv_padding, dil, groups)
        return F.conv2d(F.pad(xi, pad, mode=TORCH_PAD.get(mode, "constant")), w, b, stride, 0, dil, groups)

    def unfold_forward():
        columns = F.unfold(x, (kh, kw), dil, conv_padding, stride)  # (N, C*kh*kw, OH*OW)
        y = w.reshape(K, -1) @ columns + b[:, None]
        out_h = (H + 2 * conv_padding[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
        return y.reshape(batch, K, out_h, -1)

    forwards = {"torchconv": torchconv_forward, "torch": torch_forward}
    if unfold_skip_reason(spec) is None:
        forwards["unfold"] = unfold_forward
    if not backward:
        return x, w, forwards
    gy = values(*torchconv_forward().shape).contiguous(memory_format=LAYOUT)

    def with_backward(f):
        return lambda: torch.autograd.grad(f(), (x, w, b), gy)

    return x, w, {name: with_backward(f) for name, f in forwards.items()}


def flops(spec, batch, backward):
    """Multiply-adds x 2 of the forward; forward + backward is three convolutions' worth."""
    x, w, forwards = make_case(spec, batch)
    with torch.no_grad():
        y = forwards["torchconv"]()
    return 2.0 * y.numel() * w.shape[1] * w.shape[2] * w.shape[3] * (3 if backward else 1)


def min_bytes(spec, batch, backward):
    """Bytes a pass cannot avoid moving: read the input and weight, write the output (forward); forward + backward
    also reads the output gradient twice and writes both gradients."""
    C, H, W, K, kh, kw, stride, pad, dil, groups, mode = spec
    x, w, forwards = make_case(spec, batch)
    with torch.no_grad():
        y = forwards["torchconv"]()
    e = x.element_size()
    once = (x.numel() + w.numel() + y.numel()) * e
    return once + (2 * y.numel() + x.numel() + w.numel()) * e if backward else once


def workspace(spec, batch, backward):
    """The largest scratch of the timed passes (auto may run im2col in a backward pass and direct in the forward)."""
    C, H, W, K, kh, kw, stride, pad, dil, groups, mode = spec
    plan = torchconv.explain((batch, C, H, W), (K, C // groups, kh, kw), stride, tuple(pad), dil, groups,
                             padding_mode=mode, algorithm=ALGORITHM, channels_last=LAYOUT == torch.channels_last,
                             dtype=DTYPE, device=DEVICE)
    passes = (plan, plan["grad_input"], plan["grad_weight"]) if backward else (plan,)
    return max(p["workspace_bytes"] for p in passes)


NOISY_SPREAD = 0.25  # a layer whose blocks spread more than this around their median is timed on a busy machine


def spread(samples):
    """How far a layer's timing blocks spread: their interquartile range over their median (one slow block, a page
    fault or a timer tick, does not count; a machine that takes the cores away block after block does)."""
    q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return (q3 - q1) / median


def time_alternating(fns, min_block_s=0.05, blocks=7):
    """(median seconds per call, spread of the blocks) of each fn, timed in alternating blocks so drifts of the
    machine hit all alike."""
    iters = []
    for fn in fns:  # warm up and size each block to about min_block_s
        fn()
        t0 = time.perf_counter()
        fn()
        iters.append(max(1, int(min_block_s / max(time.perf_counter() - t0, 1e-6))))
    samples = [[] for _ in fns]
    for _ in range(blocks):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(iters[i]):
                fn()
            samples[i].append((time.perf_counter() - t0) / iters[i])
    return [(statistics.median(s), spread(s)) for s in samples]


def time_alternating_cuda(fns, min_block_s=0.02, blocks=7):
    """time_alternating on a GPU: each block timed with CUDA events around its calls (no host sync inside)."""
    iters = []
    for fn in fns:
        fn()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(3):
            fn()
        end.record()
        end.synchronize()
        iters.append(max(3, int(min_block_s / max(start.elapsed_time(end) / 3e3, 1e-7))))
    samples = [[] for _ in fns]
    for _ in range(blocks):
        for i, fn in enumerate(fns):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters[i]):
                fn()
            end.record()
            end.synchronize()
            samples[i].append(start.elapsed_time(end) / 1e3 / iters[i])
    return [(statistics.median(s), spread(s)) for s in samples]


def verify(spec, batch, names):
    """{name: (max error, ok)} of each named convolution in --dtype against torch's float64 one on the same values,
    with the tolerance of the tests (scaled by the reduction; half an ulp more for bfloat16 and float16, which are
    rounded once)."""
    _, w, forwards = make_case(spec, batch)
    _, _, forwards64 = make_case(spec, batch, torch.float64)
    with torch.no_grad():
        ref = forwards64["torch"]()
        outputs = {name: forwards[name]() for name in names}
    R = w.shape[1] * w.shape[2] * w.shape[3]
    # Half types: rounded once (half an ulp), or on a GPU twice where cuBLAS rounds the GEMM before the bias.
    rounding = torch.finfo(DTYPE).eps / (1 if DEVICE == "cuda" else 2) if DTYPE in (torch.bfloat16, torch.float16) \
        else 0.0
    tolerance = 4e-7 * R + 1e-6 + (1e-5 + rounding) * ref.abs().max().item()
    errors = {name: (y.double() - ref).abs().max().item() for name, y in outputs.items()}
    return {name: (err, err <= tolerance) for name, err in errors.items()}


def run(suite, batch, baseline, backward=False, progress=True):
    """One row per layer of the suite, torchconv against one baseline; a row of a layer the baseline cannot
    express has only layer, shape and skipped (the reason)."""
    if baseline == "native":
        torch.backends.mkldnn.enabled = False  # the CPU's native baseline runs in a child process of its own
    if DEVICE == "cuda":
        torch.backends.cudnn.enabled = baseline != "native"
        torch.backends.cudnn.benchmark = baseline == "default"
        torch.backends.cudnn.deterministic = baseline == "deterministic"
    # oneDNN's depthwise runs ~10x slower in a process where no parallel ATen op has run yet; real models run them.
    torch.ones(1 << 22).mul_(2).sum()
    timer = time_alternating_cuda if DEVICE == "cuda" else time_alternating
    if suite == "models":
        return run_models(batch, backward, progress)
    compared = "unfold" if baseline == "unfold" else "torch"
    rows = []
    for i, (name, spec) in enumerate(SUITES[suite].items()):
        if progress:
            print(f"  [{baseline} {i + 1}/{len(SUITES[suite])}] {name}", file=sys.stderr, flush=True)
        x, w, forwards = make_case(spec, batch, backward=backward)
        shape = f"{tuple(x.shape)} * {tuple(w.shape)}"
        if compared not in forwards:
            rows.append(dict(layer=name, shape=shape, skipped=unfold_skip_reason(spec)))
            continue
        with torch.set_grad_enabled(backward):
            (t_torch, s_torch), (t_ours, s_ours) = timer([forwards[compared], forwards["torchconv"]])
        # torch's conv2d is the reference itself; the unfold baseline gets checked against it like torchconv.
        checks = verify(spec, batch, ["torchconv"] if compared == "torch" else ["torchconv", compared])
        err, ok = checks["torchconv"]
        row = dict(layer=name, shape=shape, torch_ms=t_torch * 1e3, torchconv_ms=t_ours * 1e3, ratio=t_torch / t_ours,
                   gflops=flops(spec, batch, backward) / t_ours / 1e9,
                   workspace_bytes=workspace(spec, batch, backward), max_err=err, ok=ok,
                   spread=max(s_torch, s_ours))
        if DEVICE == "cuda":
            floor = max(min_bytes(spec, batch, backward) / (GPU_PEAKS["bandwidth_gbs"] * 1e9),
                        flops(spec, batch, backward) / (GPU_PEAKS["gflops"] * 1e9))
            row.update(floor_ms=floor * 1e3, bandwidth_share=min_bytes(spec, batch, backward) / t_ours /
                       (GPU_PEAKS["bandwidth_gbs"] * 1e9))
        if compared in checks:
            row["baseline_max_err"], row["baseline_ok"] = checks[compared]
        rows.append(row)
    return rows


def timed(rows):
    return [r for r in rows if "skipped" not in r]


def check_text(r):
    """ok, or which output differs from torch: torchconv's, or the baseline's when that is checked too (unfold)."""
    found = [] if r["ok"] else ["MISMATCH %.2e" % r["max_err"]]
    if not r.get("baseline_ok", True):
        found.append("baseline MISMATCH %.2e" % r["baseline_max_err"])
    return ", ".join(found) or "ok"


def print_table(rows, title, peak_gflops):
    print(f"\n{title}")
    head = f"{'layer':32} {'input * weight':34} {'torch ms':>9} {'ours ms':>9} {'ratio':>6} {'GFLOP/s':>8} " \
           f"{'% peak':>6} {'workspace':>10} {'spread':>6}  check"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "skipped" in r:
            print(f"{r['layer']:32} {r['shape']:34} skipped: the baseline cannot express {r['skipped']}")
            continue
        counted = r["gflops"] == r["gflops"]  # NaN for a whole model, whose FLOPs the bench does not count
        gflops = f"{r['gflops']:8.1f}" if counted else f"{'-':>8}"
        peak_share = f"{100 * r['gflops'] / peak_gflops:6.1f}" if peak_gflops is not None and counted \
            else f"{'-':>6}"
        floor = f"  floor {r['floor_ms']:.3f} ms, {100 * r['bandwidth_share']:.0f}% of HBM" if "floor_ms" in r else ""
        print(f"{r['layer']:32} {r['shape']:34} {r['torch_ms']:9.3f} {r['torchconv_ms']:9.3f} {r['ratio']:6.2f} "
              f"{gflops} {peak_share} {r['workspace_bytes']:10d} {100 * r['spread']:5.0f}%  "
              f"{check_text(r)}{'  NOISY' if r['spread'] > NOISY_SPREAD else ''}{floor}")
    geo = statistics.geometric_mean([r["ratio"] for r in timed(rows)])
    print(f"geomean ratio (torch / torchconv): {geo:.3f}   (ratio > 1: torchconv is faster)")
    noisy = [r["layer"] for r in timed(rows) if r["spread"] > NOISY_SPREAD]
    if noisy:
        print(f"warning: {len(noisy)} of {len(timed(rows))} layers are NOISY (the quartiles of their timing blocks "
              f"lie more than {100 * NOISY_SPREAD:.0f}% of the median apart: another process shares the cores); "
              f"rerun on an idle machine before reading those ratios (load average now {os.getloadavg()[0]:.2f})")


BASELINE_TITLES = {"default": "torch default (oneDNN)", "native": "torch native (mkldnn disabled)",
                   "unfold": "torch F.unfold + matmul (im2col)", "deterministic": "torch deterministic (cuDNN)"}
CUDA_TITLES = {"default": "torch default (cuDNN, benchmark=True)", "native": "torch native (cuDNN disabled)",
               "deterministic": "torch deterministic (cudnn.deterministic=True)"}
BASELINE_SETS = {"both": ["default", "native"], "all": ["default", "native", "unfold"]}
# --device cuda: HBM GB/s and fp32 GFLOP/s (non-tensor-core) for the floor column; H200 SXM by default.
GPU_PEAKS = {"bandwidth_gbs": 4800.0, "gflops": 67000.0}


def unfold_applies(suite):
    return suite != "models" and any(unfold_skip_reason(spec) is None for spec in SUITES[suite].values())


def peak_gflops(given, threads):
    """(peak fp32 GFLOP/s or None, where it came from)."""
    if given is not None:
        return given, "--peak"
    measure = getattr(torchconv._C, "fma_peak_gflops", None)  # absent from builds older than it
    if measure is None:
        return None, "unknown: no --peak given and this torchconv build has no _C.fma_peak_gflops"
    # The cores' peak, not this moment's: on a shared machine a run of the threads-wide loop can lose a core to
    # another process (2 threads once measured 117.7 GFLOP/s, the 1-thread figure), so take threads x the
    # 1-thread loop when that is higher.
    wide, one = float(measure(threads)), float(measure(1))
    if threads * one > wide:
        return threads * one, f"{threads} x torchconv._C.fma_peak_gflops(1)"
    return wide, f"torchconv._C.fma_peak_gflops({threads})"


def import_pyplot():
    import matplotlib
    matplotlib.use("Agg")  # a file, no display
    import matplotlib.pyplot as plt
    return plt


def write_chart(plt, path, results, title):
    """Grouped bars of torch / torchconv time per layer, one bar per baseline, drawn from 1.0 up or down."""
    layers = [r["layer"] for r in next(iter(results.values()))]
    fig, ax = plt.subplots(figsize=(max(8, 0.35 * len(layers) * (len(results) + 1)), 6))
    bar_width = 0.8 / len(results)
    for i, (baseline, rows) in enumerate(results.items()):
        offset = (i - (len(results) - 1) / 2) * bar_width
        for r in rows:
            if "skipped" in r:  # so a missing bar reads as "cannot run here", not as a ratio of 1
                ax.text(layers.index(r["layer"]) + offset, 1, "skipped", rotation=90, ha="center", va="bottom",
                        fontsize=7, color="gray")
        rows = timed(rows)
        positions = [layers.index(r["layer"]) + offset for r in rows]
        bars = ax.bar(positions, [r["ratio"] - 1 for r in rows], bar_width, bottom=1, label=BASELINE_TITLES[baseline])
        ax.bar_label(bars, [f"{r['ratio']:.2f}" for r in rows], fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    # At least 0.5 to 2, so ratios near 1 look small and the 1-2-5 ticks always label the axis; room for the labels.
    ratios = [r["ratio"] for rows in results.values() for r in timed(rows)]
    ax.set_ylim(min(0.5, min(ratios) / 1.3), max(2.0, max(ratios) * 1.3))
    ax.yaxis.set_major_locator(plt.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_ylabel("torch time / torchconv time  (> 1: torchconv is faster)")
    ax.set_xticks(range(len(layers)), layers, rotation=40, ha="right")
    ax.set_xlim(-0.5, len(layers) - 0.5)  # the bars alone would leave a trailing "skipped" outside
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="default", choices=sorted(SUITES))
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--baseline", default="both",
                   choices=["default", "native", "unfold", "deterministic", "both", "all"],
                   help="both = default + native; all = default + native + unfold (where the suite has layers "
                        "that F.unfold + matmul can express: groups 1, symmetric zero padding); with --device cuda, "
                        "all = default + native + deterministic (--mode fwdbwd: the backward torchconv's, "
                        "deterministic, is held to)")
    p.add_argument("--mode", default="forward", choices=["forward", "fwdbwd"],
                   help="time the forward alone, or forward + backward (grad of input, weight and bias)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for both sides")
    names = {"auto", "im2col", "direct"} | {k["name"] for d in ("cpu", "cuda") for k in torchconv.kernels(d)}

    def algorithm(s):
        # One name, or a list of kernels (or auto), one per pass, as torchconv.conv2d takes it.
        if s in names or ("," in s and all(k in names - {"im2col", "direct"} for k in s.split(","))):
            return s
        raise argparse.ArgumentTypeError(f"unknown algorithm {s!r}: expected auto, im2col, direct, a kernel of "
                                         f"torchconv.kernels() or a comma-separated list of kernels and auto")

    p.add_argument("--algorithm", default="auto", type=algorithm,
                   help="torchconv's kernel choice: auto (the rule in csrc/cpu/plan.cpp), a family, one kernel "
                        "(torchconv.kernels(); it must apply to every layer of the suite), or a list "
                        "'FORWARD,GRAD_INPUT,GRAD_WEIGHT' of kernels or auto, one per pass")
    p.add_argument("--dtype", default="float32", choices=list(DTYPES),
                   help="the dtype of both sides (torchconv computes bfloat16 and float16 in float32)")
    p.add_argument("--channels-last", action="store_true",
                   help="inputs (and output gradients) in channels_last memory format, for both sides")
    p.add_argument("--peak", type=float, default=None, metavar="GFLOPS",
                   help="peak fp32 GFLOP/s of the machine, for the %% peak column "
                        "(default: measured by torchconv._C.fma_peak_gflops when the build has it)")
    p.add_argument("--json", default=None, help="write the rows to this JSON file")
    p.add_argument("--chart", default=None, metavar="PATH.png",
                   help="draw the ratios per layer and baseline to this PNG (needs matplotlib)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="where both sides run (cuda: CUDA events, cuDNN baselines, a floor column)")
    p.add_argument("--gpu-peaks", default=None, metavar="GBS,GFLOPS",
                   help="--device cuda: the GPU's memory bandwidth (GB/s) and fp32 peak (GFLOP/s) for the floor "
                        "column (default 4800,67000: an H200 SXM)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    global ALGORITHM, LAYOUT, DTYPE, DEVICE
    ALGORITHM = a.algorithm
    DEVICE = a.device
    if DEVICE == "cuda":
        if not torch.cuda.is_available():
            p.error("--device cuda: torch sees no CUDA GPU here")
        if not torchconv.build_info()["cuda_compiled"]:
            p.error("--device cuda: this torchconv was built without its CUDA kernels "
                    "(pip install --no-build-isolation -C cmake.define.TORCHCONV_CUDA=ON .)")
        if a.gpu_peaks:
            GPU_PEAKS["bandwidth_gbs"], GPU_PEAKS["gflops"] = (float(v) for v in a.gpu_peaks.split(","))
        BASELINE_TITLES.update(CUDA_TITLES)
    elif a.baseline == "deterministic":
        p.error("--baseline deterministic is a GPU baseline (cuDNN's deterministic algorithms): add --device cuda")
    DTYPE = DTYPES[a.dtype]
    LAYOUT = torch.channels_last if a.channels_last else torch.contiguous_format
    if a.peak is not None and a.peak <= 0:
        p.error("--peak must be positive")
    baselines = list(BASELINE_SETS.get(a.baseline, [a.baseline]))
    if DEVICE == "cuda" and a.baseline == "all":
        baselines = ["default", "native", "deterministic"]
    unfold_dropped = "unfold" in baselines and not unfold_applies(a.suite)
    if unfold_dropped:
        if a.baseline == "unfold":
            p.error(f"F.unfold + matmul can express no layer of suite {a.suite} "
                    "(it needs groups 1 and symmetric zero padding)")
        baselines.remove("unfold")

    if a.threads:
        torch.set_num_threads(a.threads)
    backward = a.mode == "fwdbwd"
    if a.child:  # one baseline, rows as JSON on stdout
        print(json.dumps(run(a.suite, a.batch, a.baseline, backward)))
        return 0
    plt = None
    if a.chart:  # matplotlib is an optional extra: imported only for --chart, and before the run, not after it
        try:
            plt = import_pyplot()
        except ImportError:
            p.error("--chart needs matplotlib, which is not installed: pip install matplotlib "
                    "(or install torchconv with the [bench] extra)")
    info = torchconv.build_info()
    if DEVICE == "cuda":
        print(f"GPU: {torch.cuda.get_device_name()}, torchconv CUDA architectures {info['cuda_architectures']}, "
              f"floor from {GPU_PEAKS['bandwidth_gbs']:.0f} GB/s and {GPU_PEAKS['gflops']:.0f} GFLOP/s")
    print(f"torchconv {info['version']} (kernels: {info['cpu_isa']}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, suite {a.suite}, batch {a.batch}, {a.dtype}, "
          f"{'forward + backward' if backward else 'forward'}, algorithm {a.algorithm}"
          f"{', channels_last' if a.channels_last else ''}")
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} on {os.cpu_count()} CPUs"
          + (": busy, expect noise (see the spread column)" if load > 0.75 * (os.cpu_count() or 1) else ""))
    peak, peak_source = (a.peak or GPU_PEAKS["gflops"], "--peak" if a.peak else "--gpu-peaks") if DEVICE == "cuda" \
        else peak_gflops(a.peak, torch.get_num_threads())
    print(f"peak fp32: {peak:.1f} GFLOP/s (from {peak_source})" if peak is not None else
          f"peak fp32: {peak_source}, so % peak shows as -")
    if unfold_dropped:
        print(f"no F.unfold + matmul baseline: it can express no layer of suite {a.suite}")
    results = {}
    for baseline in baselines:
        if baseline != "native" or DEVICE == "cuda":  # cuDNN's switch holds no state across calls
            results[baseline] = run(a.suite, a.batch, baseline, backward)
        else:
            out = subprocess.run([sys.executable, "-m", "torchconv.bench", "--child", "--suite", a.suite,
                                  "--batch", str(a.batch),
                                  "--baseline", baseline, "--mode", a.mode, "--algorithm", a.algorithm,
                                  "--threads", str(torch.get_num_threads()), "--dtype", a.dtype]
                                 + (["--channels-last"] if a.channels_last else []),
                                 check=True, stdout=subprocess.PIPE, text=True)
            results[baseline] = json.loads(out.stdout)
        print_table(results[baseline], f"against {BASELINE_TITLES[baseline]}", peak)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(dict(build=info, torch=torch.__version__, suite=a.suite, batch=a.batch, mode=a.mode,
                           dtype=a.dtype,
                           threads=torch.get_num_threads(), peak_gflops=peak, peak_source=peak_source,
                           results=results), f, indent=1)
    if a.chart:
        write_chart(plt, a.chart, results, f"torch / torchconv time: suite {a.suite}, batch {a.batch}, {a.mode}, "
                                           f"{torch.get_num_threads()} threads")
        print(f"\nchart written to {a.chart}")
    bad = [r["layer"] for rows in results.values() for r in timed(rows) if not r["ok"]]
    bad += [f"{r['layer']} (F.unfold + matmul)" for r in timed(results.get("unfold", [])) if not r["baseline_ok"]]
    if bad:
        print(f"\nMISMATCH against torch: {', '.join(bad)}")
        return 1
    print("\nall outputs match torch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
