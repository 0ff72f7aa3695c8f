"""Smoke tests: the ground-truth, gap, explain, next-best and page benchmarks run and print their figures
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


def test_bench_ground_truth_prints_the_agreement():
    out = _run("bench_ground_truth.py", "--n", "30", "--permutations", "2")
    assert "residual share" in out and "weight of evidence vs oracle_shapley: median Spearman" in out


def test_bench_gap_prints_both_gaps_with_cis_at_every_recording_level():
    out = _run("bench_gap.py", "--n", "3000", "--bootstrap", "50", "--recording", "complete,0.3,case_report")
    assert "accuracy gap (oracle - model):" in out and "95% CI" in out
    assert "log-loss gap (model - oracle):" in out
    summary = out.split("summary")[1]
    assert all(level in summary for level in ("complete", "0.3", "case_report"))


def test_bench_published_prints_top1_top2_and_the_misses():
    out = _run("bench_published.py")
    assert "published cases" in out and "top-1" in out and "top-2" in out
    assert "oracle (case_report)" in out and "targets: model top-1 >= 0.85" in out


def test_bench_explain_prints_rows_per_second():
    out = _run("bench_explain.py", "--n", "400", "--repeat", "1")
    assert "rows/s" in out and "speed-up with" in out


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


def test_bench_xai_prints_seconds_per_patient_against_treeshap():
    out = _run("bench_xai.py", "--n", "3", "--explainers", "occlusion,saabas")
    assert "ms / patient" in out and "reference treeshap_path measured in this run" in out
    assert all(name in out for name in ("treeshap_path", "occlusion", "saabas"))
