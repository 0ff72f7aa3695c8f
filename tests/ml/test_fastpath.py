"""ml.fastpath and the model's few-row path: bit-identical to scikit-learn, on real models."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from data_gen import LABEL, generate_cohort, validate_frame
from ml import load_model
from ml.fastpath import MAX_ROWS, CompiledForest


def _reference_transform(encoder, df: pd.DataFrame) -> np.ndarray:
    """The encoding written column by column, as the contract defines it (the slow reference)."""
    cols = []
    for c in encoder.columns:
        lv = encoder.levels.get(c)
        if lv is None:
            cols.append(df[c].astype("Float64").to_numpy(dtype=float, na_value=np.nan))
            continue
        codes = df[c].cat.codes.to_numpy()
        levels = [1] if len(lv) == 2 else range(len(lv))
        for k in levels:
            cols.append(np.where(codes < 0, np.nan, (codes == k).astype(float)))
    return np.column_stack(cols)


@pytest.fixture(scope="module")
def sparse_patients():
    # blanks everywhere (30% of values kept) so that every missing-value branch is walked
    cohort = generate_cohort(600, random_state=11, recording=0.3)
    return validate_frame(cohort.drop(columns=[LABEL]))


@pytest.mark.parametrize("which", ["shipped", "small"])
def test_flat_walk_equals_scikit_learn_bit_for_bit(which, small_model, sparse_patients):
    model = load_model() if which == "shipped" else small_model
    X = model.encoder.transform(sparse_patients)
    forest = CompiledForest.from_booster(model.booster)
    assert forest is not None
    for rows in (slice(0, 1), slice(5, 12), slice(0, 600)):
        np.testing.assert_array_equal(forest.predict_proba(X[rows]), model.booster.predict_proba(X[rows]))


def test_one_patient_gets_what_it_gets_in_a_batch(small_model, sparse_patients):
    batch = small_model.predict_proba(sparse_patients)  # above MAX_ROWS: scikit-learn's routine
    assert len(sparse_patients) > MAX_ROWS
    for i in (0, 17, 599):
        one = small_model.predict_proba(sparse_patients.iloc[[i]])  # the flat walk
        pd.testing.assert_frame_equal(one, batch.iloc[[i]])


def test_encoder_matches_the_column_by_column_reference(small_model, sparse_patients):
    got = small_model.encoder.transform(sparse_patients)
    np.testing.assert_array_equal(got, _reference_transform(small_model.encoder, sparse_patients))
    assert np.isnan(got).any() and got.shape == (600, len(small_model.encoder.feature_names))


def test_a_booster_with_categorical_splits_is_left_to_scikit_learn(small_model):
    booster = pickle.loads(pickle.dumps(small_model.booster))
    booster._predictors[0][0].nodes["is_categorical"][0] = 1
    assert CompiledForest.from_booster(booster) is None


def test_the_compiled_forest_is_not_saved_with_the_model(small_model, sparse_patients, tmp_path):
    small_model.predict_proba(sparse_patients.iloc[:1])  # compiles it
    assert "_forest" in small_model.__dict__
    assert "_forest" not in small_model.__getstate__()
    assert "_plan_cache" not in small_model.encoder.__getstate__()
