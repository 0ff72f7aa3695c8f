"""``pulmocalc explain``: the review's three cases explained in words, waterfalls, JSON, one-line errors.

The CLI runs in subprocesses (``python -m ml.cli``) on a small model saved for the test (the
shipped model is not needed).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from data_gen import generate_cohort, load_knowledge, paper_cases
from data_gen.cases import PAPER_CASES_PATH
from ml import train
from _cli_asserts import assert_one_line_error

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    with threadpool_limits(limits=1, user_api="openmp"):
        model = train(generate_cohort(30_000, random_state=1), max_iter=150)
    return model.save(tmp_path_factory.mktemp("model") / "m.joblib")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "ml.cli", "explain", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_paper_cases_report_plots_and_json(model_path, tmp_path):
    plots, out_json = tmp_path / "plots", tmp_path / "explained.json"
    res = run_cli(
        str(PAPER_CASES_PATH), "--model", str(model_path), "--id-column", "case_id",
        "--plot", str(plots), "--json", str(out_json), cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    text = res.stdout
    # one header line naming the knowledge base and the model with their short hashes, then the disclaimer
    header, first = text.splitlines()[:2]
    model_sha = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:12]
    assert header.startswith("pulmocalc explain · knowledge base ") and f"(sha256 {load_knowledge().sha256[:12]})" in header
    assert f"model {model_path} (sha256 {model_sha})" in header
    assert first.startswith("pulmocalc is a research and teaching tool") and "not a clinical device" in first
    cases = paper_cases()
    assert text.count("Differential (training prevalence):") == len(cases)
    for case_id in cases.index:
        assert f"=== Patient {case_id} ===" in text
    assert text.count("What the top diagnosis implies (review, Table 2)") == len(cases)
    assert "Findings for:" in text and "Findings against:" in text and "[Table 1: " in text

    pngs = sorted(plots.glob("*.png"))
    assert [p.stem for p in pngs] == sorted(cases.index)
    import matplotlib.image as mpimg

    for p in pngs:
        assert p.stat().st_size > 10_000
        assert mpimg.imread(p).ndim == 3

    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert "not a clinical device" in doc["disclaimer"]
    assert [p["patient"] for p in doc["patients"]] == list(cases.index)
    for p in doc["patients"]:
        assert abs(sum(d["probability"] for d in p["differential"]) - 1) < 1e-9
        assert len(p["classes"]) == 3


def test_prevalence_top_and_reasons(model_path, tmp_path):
    res = run_cli(
        str(PAPER_CASES_PATH), "--model", str(model_path), "--id-column", "case_id", "--top", "1", "--reasons", "2",
        "--prevalence", "dystrophic=0.2,metastatic=0.2,dpo_nodular=0.2,dpo_dendriform=0.2,pam=0.2", cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("Differential (prevalence-adjusted: ") == 3
    assert res.stdout.count("Findings for:") == 3  # one class per patient


def test_errors_are_one_line(model_path, tmp_path):
    bad = tmp_path / "bad.csv"
    text = PAPER_CASES_PATH.read_text(encoding="utf-8")
    assert ",upper," in text
    bad.write_text(text.replace(",upper,", ",middle,", 1), encoding="utf-8")
    assert_one_line_error(run_cli(str(bad), "--model", str(model_path), "--id-column", "case_id", cwd=tmp_path), "zone", "middle")
    assert_one_line_error(run_cli(str(tmp_path / "missing.csv"), "--model", str(model_path), cwd=tmp_path))
    assert_one_line_error(
        run_cli(str(PAPER_CASES_PATH), "--model", str(model_path), "--id-column", "case_id", "--prevalence", "silicosis=1", cwd=tmp_path),
        "--prevalence", "silicosis",
    )
    # --plot names a directory: an existing file is refused up front, before any patient is explained
    afile = tmp_path / "plot.png"
    afile.write_bytes(b"x")
    res = run_cli(str(PAPER_CASES_PATH), "--model", str(model_path), "--id-column", "case_id", "--plot", str(afile), cwd=tmp_path)
    assert_one_line_error(res, "--plot", "is a file; give a directory")
    assert res.stdout == "" and afile.read_bytes() == b"x"
