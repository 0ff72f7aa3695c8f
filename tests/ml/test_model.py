"""The classifier: encoding, training determinism, prediction, prevalence adjustment."""

import numpy as np
import pandas as pd
import pytest

from data_gen import ContractError, generate_cohort, oracle_proba
from ml import Encoder, adjust_prevalence, train


@pytest.fixture(scope="module")
def small_model():
    return train(generate_cohort(20_000, random_state=21), random_state=3, max_iter=60)


def test_encoder_keeps_nan_and_sums_back_to_contract_columns(kb):
    enc = Encoder(kb)
    df = generate_cohort(500, random_state=2)
    X = enc.transform(df)
    assert X.shape == (500, len(enc.feature_names))
    zone = [i for i, s in enumerate(enc.sources) if s == "zone"]
    assert len(zone) == 3
    recorded = df["zone"].notna().to_numpy()
    # one indicator per level, exactly one set when recorded, all NaN when not
    assert (X[recorded][:, zone].sum(axis=1) == 1).all()
    assert np.isnan(X[~recorded][:, zone]).all()
    M = enc.source_matrix()
    assert M.shape == (len(enc.feature_names), 52) and (M.sum(axis=1) == 1).all()
    sex = enc.feature_names.index("sex=male")
    np.testing.assert_array_equal(X[:, sex], np.where(df["sex"].isna(), np.nan, df["sex"] == "male"))


def test_training_is_deterministic_for_a_seed():
    cohort = generate_cohort(8_000, random_state=5)
    a = train(cohort, random_state=1, max_iter=30)
    b = train(cohort, random_state=1, max_iter=30)
    test = generate_cohort(2_000, random_state=6)
    np.testing.assert_array_equal(a.predict_proba(test).to_numpy(), b.predict_proba(test).to_numpy())


def test_predict_proba_frame_and_predict(small_model):
    test = generate_cohort(1_000, random_state=7)
    p = small_model.predict_proba(test)
    assert list(p.columns) == list(small_model.classes_)
    assert p.index.equals(test.index)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    pred = small_model.predict(test)
    assert (pred.astype(str).to_numpy() == p.idxmax(axis=1).to_numpy()).all()
    # on held-out patients a trained model is far above the majority rate (0.45)
    assert (pred.astype(str) == test["calcification_type"].astype(str)).mean() > 0.9


def test_input_is_checked_before_prediction(small_model):
    test = generate_cohort(10, random_state=8).astype(object)
    test.loc[4, "zone"] = "middle"
    with pytest.raises(ContractError, match="zone.*middle.*upper / lower / diffuse"):
        small_model.predict_proba(test)
    with pytest.raises(ContractError, match="zone.*middle") as info:
        with pytest.warns(UserWarning, match="1 of 52 contract columns are absent"):
            small_model.predict_proba(test.drop(columns=["age_years"]))
    assert "row 5 has" in str(info.value)  # the default 0-based index counts from 1


def test_all_empty_patient_gets_a_distribution(small_model, kb):
    empty = pd.DataFrame({c: [np.nan] for c in kb.column_names})
    p = small_model.predict_proba(empty).to_numpy()
    assert np.isfinite(p).all() and abs(p.sum() - 1) < 1e-12


def test_adjust_prevalence_is_bayes_rule():
    p = np.array([[0.5, 0.3, 0.2]])
    old = np.array([0.5, 0.25, 0.25])
    new = np.array([0.2, 0.6, 0.2])
    q = adjust_prevalence(p, old, new)
    expected = p * new / old
    np.testing.assert_allclose(q, expected / expected.sum(), atol=1e-15)
    np.testing.assert_allclose(adjust_prevalence(p, old, old), p)


def test_training_refuses_latent_columns_and_missing_classes():
    cohort = generate_cohort(2_000, random_state=9, latent=True)
    with pytest.raises(ContractError, match="unknown column"):
        train(cohort, max_iter=5)
    only_two = generate_cohort(counts={"dystrophic": 500, "pam": 500}, random_state=1)
    with pytest.raises(ValueError, match="no patients of class"):
        train(only_two, max_iter=5)


def test_a_prevalence_that_excludes_every_class_the_findings_allow_is_refused(small_model):
    from data_gen import PrevalenceError, paper_cases

    case1 = paper_cases().iloc[[0]]  # the review's MPC case: only metastatic fits its findings
    with pytest.raises(PrevalenceError, match=r"no class allowed by this prevalence fits row 'case1.*': its findings allow only metastatic, and the prevalence sets metastatic, dpo_dendriform, pam to 0"):
        small_model.predict_proba(case1, prevalence={"dystrophic": 0.5, "dpo_nodular": 0.5})
    # the oracle says the same, in the same words
    with pytest.raises(PrevalenceError) as oracle_info:
        oracle_proba(case1, prevalence={"dystrophic": 0.5, "dpo_nodular": 0.5})
    with pytest.raises(PrevalenceError) as model_info:
        small_model.predict_proba(case1, prevalence={"dystrophic": 0.5, "dpo_nodular": 0.5})
    assert str(oracle_info.value) == str(model_info.value)
    # a prevalence that keeps an allowed class answers as before
    p = small_model.predict_proba(case1, prevalence={"metastatic": 0.5, "dystrophic": 0.5})
    assert p.loc[case1.index[0], "metastatic"] > 0.5


def test_a_column_without_any_recorded_value_is_refused_before_training():
    from data_gen import generate_cohort

    cohort = generate_cohort(300, random_state=0, recording=0.01)
    with pytest.raises(ValueError, match=r"the training cohort has no recorded value in columns? .*train on more patients"):
        train(cohort, random_state=0, max_iter=5)


def test_progress_reports_every_iteration_and_changes_nothing(capsys):
    from data_gen import generate_cohort
    from ml import train

    cohort = generate_cohort(3000, random_state=0)
    calls = []
    with_bar = train(cohort, random_state=0, max_iter=15, progress=lambda d, t, label: calls.append((d, t, label)))
    without = train(cohort, random_state=0, max_iter=15)
    assert [d for d, _, _ in calls[: with_bar.booster.n_iter_]] == list(range(1, with_bar.booster.n_iter_ + 1))
    assert all(t == 15 for _, t, _ in calls[: with_bar.booster.n_iter_]) and "val loss" in calls[0][2]
    assert with_bar.booster.get_params() == without.booster.get_params()
    patients = generate_cohort(200, random_state=1, recording=0.5)
    pd.testing.assert_frame_equal(with_bar.predict_proba(patients), without.predict_proba(patients), check_exact=True)
    # a callback that prints reaches the caller's stdout (the booster's own log is read, not shown)
    capsys.readouterr()
    train(cohort, random_state=0, max_iter=3, progress=lambda d, t, label: print(f"[{d}/{t}] step"))
    assert capsys.readouterr().out.splitlines() == ["[1/3] step", "[2/3] step", "[3/3] step"]
    with pytest.raises(TypeError, match="progress must be a callable"):
        train(cohort, random_state=0, max_iter=3, progress=True)
