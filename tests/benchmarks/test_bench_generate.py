"""Smoke test: the generation benchmark runs and prints its table (it does not check speed)."""

import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench_generate.py"


def test_bench_generate_runs_and_prints_the_figures():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--n", "20000", "--repeat", "1", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for line_start in (
        "generate_cohort(n), best of repeats",
        "patients per second",
        "numpy reference: rng.random((n, 52))",
        "ratio generate / reference",
        "returned frame (memory_usage deep)",
        "peak memory above baseline (child RSS)",
        "ratio peak memory / frame",
    ):
        assert any(line.startswith(line_start) for line in out.splitlines()), (line_start, out)
    assert "n = 20,000 patients" in out
    assert " MB" in out and " s " in out and "<= 5" in out and "<= 2" in out
