"""Chunk invariance of reading and predicting: the chunk size never changes a result.

(Generation in chunks is covered in tests/ml/test_cli_generate.py and tests/data_gen.)
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from data_gen import generate_cohort, iter_patients, read_patients
from ml import train

ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


@pytest.fixture(scope="module")
def patients_csv(tmp_path_factory):
    """50 patients whose per-chunk column types differ: ``zone`` empty in the first chunk, a
    binary column written as true/false text only in the last rows, ``age_years`` as text."""
    df = generate_cohort(50, random_state=3)
    df["zone"] = df["zone"].astype(object)
    df.loc[:9, "zone"] = np.nan
    df["on_dialysis"] = df["on_dialysis"].astype(object)
    df.loc[40:, "on_dialysis"] = [np.nan if pd.isna(v) else ("true" if v == 1 else "false") for v in df.loc[40:, "on_dialysis"]]
    path = tmp_path_factory.mktemp("chunks") / "patients.csv"
    df.to_csv(path, index=False, lineterminator="\n")
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    with threadpool_limits(1):
        model = train(generate_cohort(3000, random_state=0), random_state=0, max_iter=10)
    return model.save(tmp_path_factory.mktemp("model") / "small.joblib")


@pytest.mark.parametrize("chunksize", [1, 7, 10, 49, 50])
def test_iter_patients_chunks_concatenate_to_read_patients(patients_csv, chunksize):
    whole = read_patients(patients_csv)
    chunks = list(iter_patients(patients_csv, chunksize=chunksize))
    assert [len(c) for c in chunks] == [min(chunksize, 50 - i) for i in range(0, 50, chunksize)]
    assert all(c.index.name == "patient" for c in chunks)
    joined = pd.concat(chunks)
    pd.testing.assert_frame_equal(joined, whole)
    assert whole.index.tolist() == list(range(1, 51))
    assert whole["zone"].isna().sum() >= 10 and whole["on_dialysis"].dtype == "Int8"


def test_iter_patients_chunks_with_an_id_column(patients_csv, tmp_path):
    df = pd.read_csv(patients_csv)
    df.insert(0, "pid", [f"p{i:03d}" for i in range(len(df))])
    path = tmp_path / "ids.csv"
    df.to_csv(path, index=False)
    joined = pd.concat(iter_patients(path, chunksize=7, id_column="pid"))
    pd.testing.assert_frame_equal(joined, read_patients(path, id_column="pid"))
    assert joined.index.tolist() == df["pid"].tolist()


def test_parquet_chunks_concatenate_to_read_patients(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "p.parquet"
    generate_cohort(30, random_state=5).to_parquet(path)
    joined = pd.concat(iter_patients(path, chunksize=7))
    pd.testing.assert_frame_equal(joined, read_patients(path))
    pd.testing.assert_frame_equal(joined.reset_index(drop=True), generate_cohort(30, random_state=5))


def _predict(patients, model_path, out, *extra):
    proc = subprocess.run(
        [sys.executable, "-m", "ml.cli", "predict", str(patients), "--model", str(model_path), "--out", str(out), *extra],
        capture_output=True, text=True, env=ENV, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()


def test_predict_output_does_not_depend_on_the_chunk_size(patients_csv, model_path, tmp_path):
    default = _predict(patients_csv, model_path, tmp_path / "default.csv")
    sevens = _predict(patients_csv, model_path, tmp_path / "sevens.csv", "--chunk-size", "7")
    assert sevens == default
    out = pd.read_csv(tmp_path / "default.csv")
    assert out["patient"].tolist() == list(range(1, 51))
    from ml import load_model

    with threadpool_limits(1):
        expected = load_model(model_path).predict_proba(read_patients(patients_csv))
    np.testing.assert_array_equal(out[expected.columns].to_numpy(), expected.to_numpy())
    assert (out["predicted_type"] == expected.idxmax(axis=1).to_numpy()).all()
