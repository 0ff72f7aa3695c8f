"""The shipped default model: loads, is small, classifies the review's cases, adjusts for
prevalence like the oracle, and is reproduced exactly by retraining with its recorded config."""

import numpy as np
import pytest

from data_gen import generate_cohort, oracle_proba, paper_cases
from ml import load_model, read_metadata, train
from ml.artifacts import DEFAULT_MODEL_PATH
from ml.config import TRAINING, recording_from_metadata


@pytest.fixture(scope="module")
def shipped():
    return load_model()


def test_shipped_model_is_committed_small_and_pinned(shipped):
    assert DEFAULT_MODEL_PATH.exists()
    assert DEFAULT_MODEL_PATH.stat().st_size < 5 * 1024 * 1024
    meta = read_metadata(DEFAULT_MODEL_PATH)
    assert meta["intended_use"].startswith("Research and teaching")
    assert meta["training"]["validation"]["accuracy"] > 0.9


def test_the_reviews_three_cases_are_classified_correctly(shipped):
    cases = paper_cases()
    predicted = shipped.predict(cases).astype(str)
    assert list(predicted) == list(cases["calcification_type"].astype(str))


def _dialysis_mix(kb):
    rest = {k: v for k, v in kb.prevalence.items() if k != "metastatic"}
    scale = 0.4 / sum(rest.values())
    return {"metastatic": 0.6, **{k: v * scale for k, v in rest.items()}}


def test_prevalence_adjustment_matches_the_oracle_in_a_dialysis_clinic(shipped, kb):
    mix = _dialysis_mix(kb)
    cohort = generate_cohort(20_000, random_state=77, prevalence=mix)
    adjusted = shipped.predict_proba(cohort, prevalence=mix).to_numpy()
    oracle = oracle_proba(cohort, prevalence=mix).to_numpy()
    unadjusted = shipped.predict_proba(cohort).to_numpy()
    mae = np.abs(adjusted - oracle).mean()
    assert mae <= 0.02, mae
    # the adjustment is what brings it there: the unadjusted posterior is further away
    assert np.abs(unadjusted - oracle).mean() > mae
    # and calibrated on a cohort drawn with that mix: mean probability vs frequency, within
    # 4 binomial standard errors per class
    y = cohort["calcification_type"].cat.codes.to_numpy()
    freq = np.bincount(y, minlength=5) / len(y)
    se = np.sqrt(freq * (1 - freq) / len(y))
    assert (np.abs(adjusted.mean(axis=0) - freq) <= 4 * se + 1e-3).all()


def test_shipped_model_was_trained_on_the_configured_recording_mixture():
    meta = read_metadata(DEFAULT_MODEL_PATH)["training"]
    assert recording_from_metadata(meta) == list(TRAINING["recording"])


#: Boosting iterations retrained by the reproduction test: the first K trees of a run do not depend
#: on how many follow, so retraining K of them and comparing with the shipped booster's stage K
#: checks the cohort, the recording mixture, the encoding, the split and the config exactly, at
#: a fraction of a full retraining (which ``pulmocalc train --ship`` does in minutes).
REPRODUCE_ITERATIONS = 12


def test_retraining_with_the_recorded_config_reproduces_the_shipped_trees_exactly(shipped):
    meta = read_metadata(DEFAULT_MODEL_PATH)["training"]
    cohort = generate_cohort(meta["train_n"], random_state=meta["train_seed"], recording=recording_from_metadata(meta))
    params = {**meta["config"], "max_iter": REPRODUCE_ITERATIONS}
    retrained = train(cohort, random_state=meta["train_seed"], **params)
    del cohort
    X = shipped.encode(generate_cohort(5_000, random_state=2024, recording=0.5))
    stage = next(p for i, p in enumerate(shipped.booster.staged_predict_proba(X), 1) if i == REPRODUCE_ITERATIONS)
    np.testing.assert_array_equal(retrained.booster.predict_proba(X), stage)
    assert shipped.booster.n_iter_ > REPRODUCE_ITERATIONS
