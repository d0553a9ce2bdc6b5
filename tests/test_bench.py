"""bench/bench.py, the README's main job, runs end to end on a small suite: every layer checked against torch, the
JSON written with a ratio and a workspace per layer."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_bench_runs_and_verifies(tmp_path, dtype):
    out = tmp_path / "odd.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench.py"), "--suite", "odd", "--batch", "1",
                        "--threads", "1", "--mode", "fwdbwd", "--baseline", "default", "--dtype", dtype,
                        "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "all outputs match torch" in r.stdout
    d = json.loads(out.read_text())
    assert d["suite"] == "odd" and d["mode"] == "fwdbwd" and d["threads"] == 1 and d["peak_gflops"] > 0
    assert d["dtype"] == dtype and f"batch 1, {dtype}," in r.stdout
    rows = d["results"]["default"]
    assert len(rows) >= 3
    for row in rows:
        assert row["ok"], row
        assert row["ratio"] > 0 and row["torch_ms"] > 0 and row["torchconv_ms"] > 0 and row["workspace_bytes"] >= 0
