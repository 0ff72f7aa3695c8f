"""Smoke test: the predict memory benchmark runs and prints its table (it checks no figure)."""

import os
import pathlib
import re
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench_predict_memory.py"


def test_bench_predict_memory_runs_and_prints_the_figures():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--n", "300", "--small", "100"],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("pulmocalc predict memory benchmark:"), out
    rows = {line.split()[0]: line for line in out.splitlines() if re.match(r"(baseline|small|large)\s+[\d,]+\s", line)}
    assert set(rows) == {"baseline", "small", "large"}, out
    assert re.search(r"large\s+300\s+.*MB\s+[\d.]+ MB\s+[\d.]+ s\s+[\d,]+\s+<= 1,500 MB \(1\.5 GB\): (yes|NO)", rows["large"]), out
    assert re.search(r"small\s+100\s", rows["small"]), out
    assert "peak growth from 100 to 300 patients" in out and "fixed cost (10 patients)" in out
