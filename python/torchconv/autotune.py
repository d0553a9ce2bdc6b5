"""algorithm="autotune": time every kernel that applies to a call, once per call shape, and keep the fastest.

The first conv2d call of a shape with algorithm="autotune" times, on that call's own tensors, each registry kernel
of the forward that applies (and, when the call will be differentiated, of grad_input and grad_weight), in
alternating rounds, and remembers the fastest per pass under a key of everything the choice depends on: shapes,
stride, padding, dilation, groups, padding mode, dtype, layout, device, thread count and CPU ISA. Later calls of
the key run those kernels straight away; torchconv.explain(..., algorithm="autotune") reports them. `auto` stays
the default. The cache lives in the process; save() and load() keep it in a JSON file across runs.

Under torch.compile nothing is timed (a traced call has no real tensors): a cached choice is used, else auto.
Transposed convolutions take auto.

Example::

    >>> y = torchconv.conv2d(x, w, padding=1, algorithm="autotune")   # times the candidates, once
    >>> torchconv.explain(x.shape, w.shape, padding=1, algorithm="autotune")["kernel"]
    'direct/igemm_any_forward'
    >>> torchconv.autotune.save("conv_choices.json")
"""

import json
import statistics
import time
from typing import Dict, Optional, Tuple

import torch

from . import _C

PASSES = ("forward", "grad_input", "grad_weight")
ROUNDS = 3  # timed rounds per candidate, after one warm-up call; the median is kept

_cache: Dict[Tuple, Dict[str, str]] = {}


def _isa(device: str) -> str:
    return "cuda" if device == "cuda" else _C.cpu_isa()


def key(input_shape, weight_shape, stride, pad, dilation, groups, padding_mode, dtype, channels_last,
        device) -> Tuple:
    """What a choice depends on. pad: the four-sided (left, right, top, bottom) padding conv2d resolves."""
    return (tuple(input_shape), tuple(weight_shape), tuple(stride), tuple(pad), tuple(dilation), int(groups),
            padding_mode, str(dtype).replace("torch.", ""), bool(channels_last), str(device),
            torch.get_num_threads(), _isa(str(device)))


def _channels_last(t: torch.Tensor) -> bool:
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def algorithm_list(choice: Dict[str, str]) -> str:
    """The algorithm argument that runs a choice: its kernels, comma-separated, auto in a pass not tuned."""
    return ",".join(choice.get(p, "auto") for p in PASSES)


def _time(name: str, fn, sync) -> float:
    """Seconds one call of candidate `name` takes (name: for tests, which replace this)."""
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def _fastest(candidates: Dict[str, object], sync) -> str:
    """The name of the fastest callable: one warm-up call each, then ROUNDS alternating rounds, medians."""
    for fn in candidates.values():
        fn()
    samples = {name: [] for name in candidates}
    for _ in range(ROUNDS):
        for name, fn in candidates.items():
            samples[name].append(_time(name, fn, sync))
    return min(samples, key=lambda name: statistics.median(samples[name]))


def _applies(name, x, w, stride, pad, dilation, groups, padding_mode) -> bool:
    from .functional import explain
    try:
        explain(tuple(x.shape), tuple(w.shape), stride, pad, dilation, groups, padding_mode=padding_mode,
                algorithm=name, channels_last=_channels_last(x), dtype=x.dtype, device=x.device.type)
    except RuntimeError:
        return False
    return True


def _tune(passes, x, w, b, stride, pad, dilation, groups, padding_mode) -> Dict[str, str]:
    from .functional import kernels
    ops = torch.ops.torchconv
    device = x.device.type
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    args = (list(stride), list(pad), list(dilation), groups, padding_mode)
    with torch.no_grad():
        y = ops.conv2d(x, w, b, *args, "auto")
        gy = torch.randn_like(y)
        run = {
            "forward": lambda name: (lambda: ops.conv2d(x, w, b, *args, name)),
            "grad_input": lambda name: (lambda: ops.conv2d_grad_input(gy, w, list(x.shape), *args, name)),
            "grad_weight": lambda name: (lambda: ops.conv2d_grad_weight(x, gy, list(w.shape), *args, name)),
        }
        choice = {}
        for pass_ in passes:
            names = [k["name"] for k in kernels(device) if k["pass"] == pass_
                     and _applies(k["name"], x, w, stride, pad, dilation, groups, padding_mode)]
            choice[pass_] = _fastest({name: run[pass_](name) for name in names}, sync)
    return choice


@torch.compiler.assume_constant_result
def _traced(*key_args) -> str:
    """While tracing: the cached choice or auto, a constant of the graph (nothing is timed on traced tensors)."""
    choice = _cache.get(key(*key_args))
    return algorithm_list(choice) if choice else "auto"


def resolve(x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor], stride, pad, dilation, groups,
            padding_mode) -> str:
    """The algorithm argument for this conv2d call: the cached choice for its key, timed now where missing."""
    if torch.compiler.is_compiling():
        return _traced(tuple(x.shape), tuple(w.shape), tuple(stride), tuple(pad), tuple(dilation), groups,
                       padding_mode, x.dtype, _channels_last(x), x.device.type)
    k = key(x.shape, w.shape, stride, pad, dilation, groups, padding_mode, x.dtype, _channels_last(x), x.device.type)
    choice = _cache.get(k, {})
    backward = torch.is_grad_enabled() and (x.requires_grad or w.requires_grad or (b is not None and b.requires_grad))
    missing = [p for p in (PASSES if backward else PASSES[:1]) if p not in choice]
    if missing:
        choice = {**choice, **_tune(missing, x.detach(), w.detach(), None if b is None else b.detach(), stride, pad,
                                    dilation, groups, padding_mode)}
        _cache[k] = choice
    return algorithm_list(choice)


def cached(key_: Tuple) -> Optional[Dict[str, str]]:
    """The choice cached for a key (see key()), or None."""
    return _cache.get(key_)


def clear() -> None:
    """Forgets every choice."""
    _cache.clear()


def save(path: str) -> None:
    """Writes every choice to a JSON file."""
    with open(path, "w") as f:
        json.dump([{"key": list(k), "choice": c} for k, c in _cache.items()], f, indent=1)


def load(path: str) -> int:
    """Adds the choices of a JSON file written by save() (replacing those of the same key); returns how many.
    A choice names kernels: one this build does not have raises when a call uses it."""
    with open(path) as f:
        entries = json.load(f)
    for e in entries:
        k = e["key"]
        _cache[tuple(tuple(v) if isinstance(v, list) else v for v in k)] = {p: str(n) for p, n in e["choice"].items()}
    return len(entries)
