"""The CLI on real users' files: partial columns with a notice, the template, European dialects,
a prevalence that excludes the patient's classes, and a closed pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from data_gen import generate_cohort, read_patients
from ml import train

from _cli_asserts import assert_one_line_error

ROOT = Path(__file__).resolve().parents[2]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
ENV.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _run(argv, cwd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ml.cli", *argv], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=300, **kw)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    model = train(generate_cohort(6000, random_state=1), max_iter=15)
    return str(model.save(tmp_path_factory.mktemp("model") / "small.joblib"))


def test_template_then_a_six_column_file_predicts_with_one_notice(model_path, tmp_path, kb):
    res = _run(["template", "--out", "patients.csv"], tmp_path)
    assert res.returncode == 0, res.stderr
    template = pd.read_csv(tmp_path / "patients.csv")
    assert list(template.columns) == list(kb.column_names) and len(template) == 1
    assert len(read_patients(tmp_path / "patients.csv")) == 1  # the template reads back as it is

    six = template[["age_years", "sex", "serum_calcium_mg_dl", "zone", "calcification_visible", "calcified_nodules"]]
    six.to_csv(tmp_path / "six.csv", index=False)
    res = _run(["predict", "six.csv", "--model", model_path], tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pulmocalc: notice: 46 of 52 contract columns are absent and read as not recorded: pack_years,")
    assert "Patient 1:" in res.stdout and "%" in res.stdout


def test_semicolons_with_decimal_commas_predict_like_the_comma_file(model_path, tmp_path):
    res = _run(["template", "--out", "t.csv"], tmp_path)
    assert res.returncode == 0, res.stderr
    df = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)
    df.to_csv(tmp_path / "eu.csv", sep=";", index=False)
    text = (tmp_path / "eu.csv").read_text()
    (tmp_path / "eu.csv").write_text(text.replace(".", ","))  # every decimal point a comma
    a = _run(["predict", "t.csv", "--model", model_path], tmp_path)
    b = _run(["predict", "eu.csv", "--model", model_path], tmp_path)
    c = _run(["predict", "eu.csv", "--model", model_path, "--sep", ";", "--decimal", ","], tmp_path)
    assert a.returncode == b.returncode == c.returncode == 0, (a.stderr, b.stderr, c.stderr)
    assert a.stdout == b.stdout == c.stdout
    d = _run(["predict", "eu.csv", "--model", model_path, "--decimal", "."], tmp_path)
    assert_one_line_error(d, "row 1 has value", "decimal commas? read the file with --decimal ','")


def test_a_prevalence_that_excludes_the_patients_classes_is_refused(model_path, tmp_path):
    cases = ROOT / "data_gen" / "paper_cases.csv"
    res = _run(["predict", str(cases), "--model", model_path, "--id-column", "case_id", "--prevalence", "dystrophic=0.5,dpo_nodular=0.5"], tmp_path)
    assert_one_line_error(res, "no class allowed by this prevalence fits row 'case1", "allow only metastatic", "sets metastatic, dpo_dendriform, pam to 0")


def test_a_closed_pipe_stops_quietly(model_path, tmp_path):
    cohort = generate_cohort(3000, random_state=2).drop(columns=["calcification_type"])
    cohort.to_csv(tmp_path / "many.csv", index=False)
    proc = subprocess.Popen([sys.executable, "-m", "ml.cli", "predict", "many.csv", "--model", model_path], cwd=tmp_path,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    status = proc.wait(timeout=300)
    assert stderr == "", stderr
    assert status == 141
