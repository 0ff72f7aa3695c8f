"""Smoke tests: the next-best-finding and page benchmarks run and print their figures
(they check that the scripts work, never their speed)."""

import os
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(script, *args):
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_bench_next_best_prints_ms_per_patient_with_reference():
    out = _run("bench_next_best.py", "--n", "6")
    assert "per patient: median" in out and "p95" in out and "reference, one oracle_proba call" in out


def test_bench_serve_prints_start_and_update_times(tmp_path):
    pytest.importorskip("uvicorn", reason="the serve extra is not installed")
    from data_gen import generate_cohort
    from ml import train

    model = train(generate_cohort(5_000, random_state=0, recording=[("complete", 0.5), ("case_report", 0.5)]), max_iter=10)
    path = model.save(tmp_path / "m.joblib")
    out = _run("bench_serve.py", "--model", str(path), "--updates", "6")
    assert "start: page served" in out and "first update answered" in out
    assert "updates (6, server-side" in out and "median" in out and "reference, one oracle_proba call" in out
