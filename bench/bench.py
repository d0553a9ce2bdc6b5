"""Benchmark-and-verify: times torchconv against torch on named layer suites, checks every output, prints a table.

    python bench/bench.py                      # the default suite, against torch default (oneDNN) and torch native
    python bench/bench.py --suite mobilenetv2 --batch 8 --mode fwdbwd --threads 1 --baseline default

torch and torchconv run in one process, in alternating blocks, and each time is the median over the blocks.
torch native (torch.backends.mkldnn.enabled = False) is timed in a child process, so oneDNN's state cannot leak
into it. Exit status 1 if any output differs from torch's beyond the float32 tolerance.
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
TORCH_PAD = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def make_case(spec, batch, dtype=torch.float32, backward=False):
    C, H, W, K, kh, kw, stride, pad, dil, groups, mode = spec
    g = torch.Generator().manual_seed(0)  # drawn in float64, so both dtypes get the same values
    x = torch.randn(batch, C, H, W, generator=g, dtype=torch.float64).to(dtype)
    w = (torch.randn(K, C // groups, kh, kw, generator=g, dtype=torch.float64) / (C // groups * kh * kw) ** 0.5).to(dtype)
    b = torch.randn(K, generator=g, dtype=torch.float64).to(dtype)
    stride, dil = pair(stride), pair(dil)

    if backward:
        x.requires_grad_(), w.requires_grad_(), b.requires_grad_()

    def ours_forward():
        return torchconv.conv2d(x, w, b, stride, pad, dil, groups, padding_mode=mode)

    def theirs_forward():
        # torch has no 4-sided padding or padding modes inside conv2d: symmetric zero padding goes in the conv,
        # anything else through F.pad (what nn.Conv2d does).
        if mode == "zeros" and pad[0] == pad[1] and pad[2] == pad[3]:
            return F.conv2d(x, w, b, stride, (pad[2], pad[0]), dil, groups)
        return F.conv2d(F.pad(x, pad, mode=TORCH_PAD.get(mode, "constant")), w, b, stride, 0, dil, groups)

    if not backward:
        return x, w, ours_forward, theirs_forward
    gy = torch.randn(ours_forward().shape, generator=g, dtype=torch.float64).to(dtype)

    def with_backward(f):
        return lambda: torch.autograd.grad(f(), (x, w, b), gy)

    return x, w, with_backward(ours_forward), with_backward(theirs_forward)


def flops(spec, batch, backward):
    """Multiply-adds x 2 of the forward; forward + backward is three convolutions' worth."""
    x, w, ours, _ = make_case(spec, batch)
    with torch.no_grad():
        y = ours()
    return 2.0 * y.numel() * w.shape[1] * w.shape[2] * w.shape[3] * (3 if backward else 1)


def workspace(spec, batch):
    C, H, W, K, kh, kw, stride, pad, dil, groups, mode = spec
    return torchconv._C.workspace_bytes("forward", [batch, C, H, W], [K, C // groups, kh, kw], list(pair(stride)),
                                        list(pad), list(pair(dil)), groups, mode, "auto", 4)


def time_alternating(fns, min_block_s=0.05, blocks=7):
    """Median seconds per call of each fn, timed in alternating blocks so drifts of the machine hit all alike."""
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
    return [statistics.median(s) for s in samples]


def verify(spec, batch):
    """Our float32 output against torch's float64 one, with the tolerance of the tests (scaled by the reduction)."""
    x, w, ours, _ = make_case(spec, batch)
    x64, w64, _, theirs64 = make_case(spec, batch, torch.float64)
    with torch.no_grad():
        y, ref = ours(), theirs64()
    R = w.shape[1] * w.shape[2] * w.shape[3]
    err = (y.double() - ref).abs().max().item()
    return err, err <= 4e-7 * R + 1e-6 + 1e-5 * ref.abs().max().item()


def run(suite, batch, baseline, backward=False, progress=True):
    if baseline == "native":
        torch.backends.mkldnn.enabled = False
    # oneDNN's depthwise runs ~10x slower in a process where no parallel ATen op has run yet; real models run them.
    torch.ones(1 << 22).mul_(2).sum()
    rows = []
    for i, (name, spec) in enumerate(SUITES[suite].items()):
        if progress:
            print(f"  [{baseline} {i + 1}/{len(SUITES[suite])}] {name}", file=sys.stderr, flush=True)
        x, w, ours, theirs = make_case(spec, batch, backward=backward)
        with torch.set_grad_enabled(backward):
            t_torch, t_ours = time_alternating([theirs, ours])
        err, ok = verify(spec, batch)
        rows.append(dict(layer=name, shape=f"{tuple(x.shape)} * {tuple(w.shape)}", torch_ms=t_torch * 1e3,
                         torchconv_ms=t_ours * 1e3, ratio=t_torch / t_ours,
                         gflops=flops(spec, batch, backward) / t_ours / 1e9,
                         workspace_bytes=workspace(spec, batch), max_err=err, ok=ok))
    return rows


def print_table(rows, title):
    print(f"\n{title}")
    head = f"{'layer':32} {'input * weight':34} {'torch ms':>9} {'ours ms':>9} {'ratio':>6} {'GFLOP/s':>8} " \
           f"{'workspace':>10}  check"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['layer']:32} {r['shape']:34} {r['torch_ms']:9.3f} {r['torchconv_ms']:9.3f} {r['ratio']:6.2f} "
              f"{r['gflops']:8.1f} {r['workspace_bytes']:10d}  {'ok' if r['ok'] else 'MISMATCH %.2e' % r['max_err']}")
    geo = statistics.geometric_mean([r["ratio"] for r in rows])
    print(f"geomean ratio (torch / torchconv): {geo:.3f}   (ratio > 1: torchconv is faster)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="default", choices=sorted(SUITES))
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--baseline", default="both", choices=["default", "native", "both"])
    p.add_argument("--mode", default="forward", choices=["forward", "fwdbwd"],
                   help="time the forward alone, or forward + backward (grad of input, weight and bias)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for both sides")
    p.add_argument("--json", default=None, help="write the rows to this JSON file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.threads:
        torch.set_num_threads(a.threads)
    backward = a.mode == "fwdbwd"
    if a.child:  # one baseline, rows as JSON on stdout
        print(json.dumps(run(a.suite, a.batch, a.baseline, backward)))
        return 0
    info = torchconv.build_info()
    print(f"torchconv {info['version']} (kernels: {info['cpu_isa']}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, suite {a.suite}, batch {a.batch}, float32, "
          f"{'forward + backward' if backward else 'forward'}")
    results = {}
    for baseline in (["default", "native"] if a.baseline == "both" else [a.baseline]):
        if baseline == "default":
            results[baseline] = run(a.suite, a.batch, baseline, backward)
        else:
            out = subprocess.run([sys.executable, __file__, "--child", "--suite", a.suite, "--batch", str(a.batch),
                                  "--baseline", baseline, "--mode", a.mode,
                                  "--threads", str(torch.get_num_threads())],
                                 check=True, stdout=subprocess.PIPE, text=True)
            results[baseline] = json.loads(out.stdout)
        name = "torch default (oneDNN)" if baseline == "default" else "torch native (mkldnn disabled)"
        print_table(results[baseline], f"against {name}")
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(dict(build=info, torch=torch.__version__, suite=a.suite, batch=a.batch, mode=a.mode,
                       threads=torch.get_num_threads(), results=results), f, indent=1)
    bad = [r["layer"] for rows in results.values() for r in rows if not r["ok"]]
    if bad:
        print(f"\nMISMATCH against torch: {', '.join(bad)}")
        return 1
    print("\nall outputs match torch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
