"""bench/bench.py, the README's main job, runs end to end on a small suite: every layer checked against torch, the
JSON written with a ratio and a workspace per layer."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_runs_and_verifies(tmp_path):
    out = tmp_path / "odd.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench.py"), "--suite", "odd", "--batch", "1",
                        "--threads", "1", "--mode", "fwdbwd", "--baseline", "default", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "all outputs match torch" in r.stdout
    d = json.loads(out.read_text())
    assert d["suite"] == "odd" and d["mode"] == "fwdbwd" and d["threads"] == 1 and d["peak_gflops"] > 0
    rows = d["results"]["default"]
    assert len(rows) >= 3
    for row in rows:
        assert row["ok"], row
        assert row["ratio"] > 0 and row["torch_ms"] > 0 and row["torchconv_ms"] > 0 and row["workspace_bytes"] >= 0
