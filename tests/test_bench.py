"""The benchmark (python -m torchconv.bench, or bench/bench.py), the README's main job, runs end to end on a small
suite: every layer checked against torch, the JSON written with a ratio and a workspace per layer."""

import copy
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

import torchconv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


WRAPPER = os.path.join(ROOT, "bench", "bench.py")


# `python -m torchconv.bench` is the installed benchmark; bench/bench.py, the source tree's wrapper of it.
@pytest.mark.parametrize("command,dtype,baselines", [([WRAPPER], "float32", ["default"]),
                                                     (["-m", "torchconv.bench"], "bfloat16", ["default", "native"])],
                         ids=["bench.py-float32", "module-bfloat16"])
def test_bench_runs_and_verifies(tmp_path, command, dtype, baselines):
    if not os.path.exists(command[0]) and command[0] == WRAPPER:
        pytest.skip("no source tree: bench/bench.py is not here")
    out = tmp_path / "odd.json"
    r = subprocess.run([sys.executable, *command, "--suite", "odd", "--batch", "1",
                        "--threads", "1", "--mode", "fwdbwd", "--dtype", dtype,
                        "--baseline", "both" if len(baselines) == 2 else "default",
                        "--json", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "all outputs match torch" in r.stdout
    d = json.loads(out.read_text())
    assert d["suite"] == "odd" and d["mode"] == "fwdbwd" and d["threads"] == 1 and d["peak_gflops"] > 0
    assert d["dtype"] == dtype and f"batch 1, {dtype}," in r.stdout
    assert sorted(d["results"]) == baselines
    for rows in d["results"].values():
        assert len(rows) >= 3
        for row in rows:
            assert row["ok"], row
            assert row["ratio"] > 0 and row["torch_ms"] > 0 and row["torchconv_ms"] > 0 and row["workspace_bytes"] >= 0
            assert row["spread"] >= 0


def test_spread_flags_a_busy_machine():
    """Blocks quantised by a scheduler's time slices (8, 16, 24 ms for a 10 ms layer) are noise; one slow block is
    not."""
    from torchconv.bench import NOISY_SPREAD, spread

    assert spread([8e-3, 16e-3, 8e-3, 24e-3, 16e-3, 8e-3, 16e-3]) > NOISY_SPREAD
    assert spread([1.00e-3, 1.01e-3, 0.99e-3, 1.00e-3, 3.0e-3, 1.02e-3, 0.98e-3]) < NOISY_SPREAD


def test_algorithm_list_runs_each_kernel_in_its_pass(tmp_path):
    """--algorithm takes a per-pass list, as conv2d does; an unknown entry is refused before anything runs."""
    out = tmp_path / "rows.json"
    r = subprocess.run([sys.executable, "-m", "torchconv.bench", "--suite", "odd", "--batch", "1", "--baseline",
                        "default", "--mode", "fwdbwd", "--algorithm", "auto,im2col/cols_any_grad_input,auto",
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "algorithm auto,im2col/cols_any_grad_input,auto" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "torchconv.bench", "--algorithm", "auto,direct/nope"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "unknown algorithm 'auto,direct/nope'" in bad.stderr


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed")
def test_chart_without_matplotlib_says_how_to_get_it(tmp_path):
    r = subprocess.run([sys.executable, "-m", "torchconv.bench", "--chart", str(tmp_path / "c.png")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and "pip install matplotlib" in r.stderr, r.stderr


def test_models_suite_stand_ins(tmp_path, monkeypatch):
    """The models suite without torchvision: the stand-in models, converted, timed and checked against the
    originals, inference and a training step."""
    import torchconv.bench as bench

    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if not installed
    assert set(bench.suite_models()) == {"resnet-like (stand-in)", "mobilenetv2-like (stand-in)"}
    for backward in (False, True):
        rows = bench.run_models(batch=1, backward=backward, progress=False)
        assert [r["layer"] for r in rows] == list(bench.stand_in_models())
        for r in rows:
            assert r["ok"] and r["ratio"] > 0 and r["torch_ms"] > 0, r


@pytest.mark.parametrize("backward", [False, True])
def test_models_check_sees_a_wrong_conversion(backward):
    """The models suite's check passes a converted model and fails one whose last convolution is off, on its output
    and, with backward, on its weights' gradients, and leaves each model in the mode it found it."""
    import torchconv.bench as bench

    torch.manual_seed(0)
    model = bench.stand_in_models()["mobilenetv2-like (stand-in)"].train(backward)
    x = torch.randn(1, 3, 64, 64)
    converted = torchconv.convert(copy.deepcopy(model))
    err, ok = bench.max_model_error(model, converted, x, backward)
    assert ok, err
    assert model.training == converted.training == backward
    last_conv = [m for m in converted.modules() if hasattr(m, "weight") and m.weight.dim() == 4][-1]
    with torch.no_grad():
        last_conv.weight.add_(torch.randn_like(last_conv.weight))
    err, ok = bench.max_model_error(model, converted, x, backward)
    assert not ok, err
