"""pulmocalc train --data: a given cohort, its label checked, its provenance recorded; refusals on one line."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from ml import load_model
from ml.cli import main
from ml.config import recording_from_metadata


@pytest.fixture(scope="module")
def cohort_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "cohort.parquet"
    assert main(["generate", "--n", "3000", "--seed", "5", "--out", str(path)]) == 0
    return path


def test_train_on_a_file_records_it_and_predicts(cohort_file, tmp_path, capsys):
    out = tmp_path / "m.joblib"
    assert main(["train", "--data", str(cohort_file), "--validation-n", "1000", "--seed", "3", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith("pulmocalc train · knowledge base ") and "trained on 3,000 patients" in stdout
    meta = json.loads(out.with_suffix(".json").read_text())
    training = meta["training"]
    assert training["data"] == str(cohort_file)
    assert training["data_sha256"] == hashlib.sha256(cohort_file.read_bytes()).hexdigest()
    # a file's cohort names no regime to regenerate it with, so the benchmark can retrain under it
    assert recording_from_metadata(training) is None
    model = load_model(out)
    patients = pd.read_parquet(cohort_file).drop(columns=["calcification_type"]).head(5)
    assert model.predict_proba(patients).shape == (5, 5)


@pytest.mark.parametrize("extra, message", [
    (["--n", "5000"], "--n applies to a generated training cohort; with --data FILE the file is the cohort"),
    (["--recording", "complete"], "--recording applies to a generated training cohort"),
])
def test_generated_cohort_options_are_refused_with_data(cohort_file, tmp_path, capsys, extra, message):
    status = main(["train", "--data", str(cohort_file), "--out", str(tmp_path / "m.joblib"), *extra])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err


def test_a_file_without_the_label_is_refused(cohort_file, tmp_path, capsys):
    unlabelled = tmp_path / "u.csv"
    pd.read_parquet(cohort_file).drop(columns=["calcification_type"]).head(50).to_csv(unlabelled, index=False)
    status = main(["train", "--data", str(unlabelled), "--out", str(tmp_path / "m.joblib")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "calcification_type" in err
    assert not (tmp_path / "m.joblib").exists()
