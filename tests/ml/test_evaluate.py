"""ml.evaluate: metrics from first principles, baselines, the oracle as yardstick, bootstrap, learning curve.

Real generated cohorts with fixed seeds; tolerances come from sampling error. Models are
small (max_iter <= 50, <= 20k patients) and trained single-threaded: on a busy machine
OpenMP threads of the booster contend with each other and run several times slower.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss
from threadpoolctl import threadpool_limits

import ml
from data_gen import LABEL, generate_cohort, oracle_proba
from ml.evaluation import (
    EPS,
    LEARNING_CURVE_COLUMNS,
    TABLE_COLUMNS,
    LogisticBaseline,
    MajorityBaseline,
    RuleScorer,
    classification_metrics,
    evaluate,
    learning_curve,
    learning_curve_summary,
    paired_bootstrap_gap,
)

TRAIN_SEED, TEST_SEED = 20260101, 20260202
DIALYSIS = {"dystrophic": 0.2, "metastatic": 0.6, "dpo_nodular": 0.1, "dpo_dendriform": 0.05, "pam": 0.05}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def train_cohort():
    return generate_cohort(20_000, random_state=TRAIN_SEED)


@pytest.fixture(scope="module")
def test_cohort():
    return generate_cohort(20_000, random_state=TEST_SEED)


@pytest.fixture(scope="module")
def model(train_cohort):
    return ml.train(train_cohort.iloc[:10_000], random_state=0, max_iter=50)


@pytest.fixture(scope="module")
def result(model, train_cohort, test_cohort):
    return evaluate(model, test_cohort, train_cohort=train_cohort)


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------
def test_hand_example():
    # Four patients, classes a, b, c.
    #   1: truth a, p = (1/2, 1/4, 1/4) -> predicts a (right), confidence 1/2
    #   2: truth b, p = (1/4, 1/2, 1/4) -> predicts b (right), confidence 1/2
    #   3: truth c, p = (1/2, 1/4, 1/4) -> predicts a (wrong), confidence 1/2
    #   4: truth a, p = (1, 0, 0)       -> predicts a (right), confidence 1
    classes = ["a", "b", "c"]
    y = ["a", "b", "c", "a"]
    p = np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])
    m = classification_metrics(y, p, classes)
    assert m["n"] == 4
    assert m["accuracy"] == pytest.approx(3 / 4)
    # recall a = 2/2, b = 1/1, c = 0/1; precision a = 2/3 (patient 3 predicted a), b = 1/1,
    # c undefined (never predicted).
    assert m["recall"] == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.0})
    assert m["precision"]["a"] == pytest.approx(2 / 3) and m["precision"]["b"] == 1.0
    assert math.isnan(m["precision"]["c"])
    assert m["balanced_accuracy"] == pytest.approx((1 + 1 + 0) / 3)
    # F1 a = 2 (2/3)(1) / (2/3 + 1) = 4/5, F1 b = 1, F1 c = 0 -> macro 3/5
    assert m["macro_f1"] == pytest.approx(0.6)
    # log loss = -(ln 1/2 + ln 1/2 + ln 1/4 + ln 1) / 4 = 4 ln 2 / 4 = ln 2
    assert m["log_loss"] == pytest.approx(math.log(2))
    # Brier rows: (1/2)^2 + 2 (1/4)^2 = 3/8; 3/8; (1/2)^2 + (1/4)^2 + (3/4)^2 = 7/8; 0
    assert m["brier"] == pytest.approx((3 / 8 + 3 / 8 + 7 / 8 + 0) / 4)
    # ECE: bin [0.5, 0.6) holds patients 1-3, accuracy 2/3, confidence 1/2, weight 3/4;
    # bin [0.9, 1.0] holds patient 4 with accuracy = confidence = 1  -> (3/4)(1/6) = 1/8
    assert m["ece"] == pytest.approx(1 / 8)
    rel = m["reliability"]
    assert rel["count"] == [0, 0, 0, 0, 0, 3, 0, 0, 0, 1]
    assert rel["edges"][0] == 0.0 and rel["edges"][-1] == 1.0 and len(rel["edges"]) == 11
    assert rel["accuracy"][5] == pytest.approx(2 / 3) and rel["confidence"][5] == pytest.approx(0.5)
    assert math.isnan(rel["accuracy"][0])
    # rows = truth, columns = prediction
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 1, 0], [1, 0, 0]]


def test_matches_direct_numpy_and_sklearn_on_random_data():
    rng = np.random.default_rng(7)
    classes = ["w", "x", "y", "z", "v"]
    n = 3000
    p = rng.dirichlet(np.full(5, 0.7), size=n)
    y_idx = rng.integers(0, 5, size=n)
    y = np.asarray(classes, dtype=object)[y_idx]
    m = classification_metrics(y, p, classes)
    pred = p.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_idx, pred))
    assert m["accuracy"] == pytest.approx(np.mean(pred == y_idx))
    assert m["log_loss"] == pytest.approx(log_loss(y_idx, p, labels=range(5)), rel=1e-12)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(p[np.arange(n), y_idx])), rel=1e-12)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_idx, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_idx, pred, average="macro"))
    onehot = np.eye(5)[y_idx]
    assert m["brier"] == pytest.approx(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    cm = np.asarray(m["confusion_matrix"])
    assert cm.sum() == n and np.trace(cm) == np.sum(pred == y_idx)
    for j, k in enumerate(classes):
        assert m["recall"][k] == pytest.approx(cm[j, j] / cm[j].sum())
        assert m["precision"][k] == pytest.approx(cm[j, j] / cm[:, j].sum())
    # a DataFrame is read by column name, whatever its column order
    df = pd.DataFrame(p, columns=classes)[classes[::-1]]
    assert classification_metrics(y, df, classes)["log_loss"] == pytest.approx(m["log_loss"])


def test_zero_probability_on_truth_is_clipped_not_infinite():
    m = classification_metrics(["a", "b"], [[1.0, 0.0], [1.0, 0.0]], ["a", "b"])
    assert m["log_loss"] == pytest.approx(-math.log(EPS) / 2)


def test_nan_and_malformed_probabilities_are_refused():
    classes = ["a", "b"]
    with pytest.raises(ValueError, match="NaN"):
        classification_metrics(["a", "b", "a"], [[0.5, 0.5], [np.nan, np.nan], [1.0, 0.0]], classes)
    with pytest.raises(ValueError, match="sum to 1"):
        classification_metrics(["a"], [[0.5, 0.6]], classes)
    with pytest.raises(ValueError, match="not one of"):
        classification_metrics(["a", "q"], [[0.5, 0.5], [0.5, 0.5]], classes)
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(["a"], [[1.0, 0.0, 0.0]], classes)


def _ece_bound(conf: np.ndarray, n_bins: int = 10) -> float:
    """Bound on E[ECE] for calibrated probabilities: per bin E|acc - conf| <= sqrt(sum c(1-c)) / n_b."""
    b = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    var = np.bincount(b, weights=conf * (1 - conf), minlength=n_bins)
    return float(np.sum(np.sqrt(var)) / len(conf))


def test_ece_small_when_calibrated_large_when_overconfident():
    rng = np.random.default_rng(11)
    n, classes = 20_000, ["a", "b", "c", "d"]
    p = rng.dirichlet(np.ones(4), size=n)
    # labels drawn from p: P(top label right | p) = max p, so calibrated by construction
    u = rng.random(n)[:, None]
    y_idx = np.minimum((u > np.cumsum(p, axis=1)).sum(axis=1), 3)
    y = np.asarray(classes, dtype=object)[y_idx]
    bound = _ece_bound(p.max(axis=1))
    assert bound < 0.02
    m = classification_metrics(y, p, classes)
    assert m["ece"] < 2 * bound
    # overconfident: same ranking, sharpened probabilities (p^4 renormalized)
    q = p**4 / np.sum(p**4, axis=1, keepdims=True)
    mq = classification_metrics(y, q, classes)
    assert mq["accuracy"] == m["accuracy"]
    assert mq["ece"] > 0.15 and mq["ece"] > 10 * bound


# --------------------------------------------------------------------------------------------
# Baselines and evaluate()
# --------------------------------------------------------------------------------------------
def test_result_has_every_row_and_metric(result, test_cohort, kb):
    table = result.table()
    assert list(table.index) == ["model", "oracle", "majority", "logistic", "rules"]
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert table.notna().all().all()
    pc = result.per_class()
    assert list(pc.columns) == ["precision", "recall", "support"]
    assert len(pc) == 5 * len(kb.class_names)
    support = test_cohort[LABEL].value_counts()
    assert (pc.loc["oracle", "support"] == support.reindex(kb.class_names).to_numpy()).all()
    for m in result.metrics.values():
        assert m["n"] == len(test_cohort)
        assert np.asarray(m["confusion_matrix"]).sum() == len(test_cohort)
    g = result.gap()
    assert g["accuracy_pp"] == pytest.approx(100 * (table.loc["model", "accuracy"] - table.loc["oracle", "accuracy"]))
    assert g["log_loss"] == pytest.approx(table.loc["model", "log_loss"] - table.loc["oracle", "log_loss"])
    d = result.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert set(back["metrics"]) == set(table.index)
    assert back["metrics"]["majority"]["precision"]["pam"] is None  # NaN -> null
    assert back["baseline_training"]["n"] == 20_000


def test_oracle_is_the_yardstick(result, test_cohort):
    table = result.table()
    oracle_ll = table.loc["oracle", "log_loss"]
    for name in ("model", "majority", "logistic", "rules"):
        assert oracle_ll <= table.loc[name, "log_loss"], name
    assert table.loc["rules", "accuracy"] > table.loc["majority", "accuracy"]
    assert table.loc["logistic", "accuracy"] > table.loc["majority", "accuracy"]
    # the majority baseline scores exactly its definition: share of the largest class,
    # log loss = cross-entropy of the test mix against the training mix
    share = test_cohort[LABEL].value_counts(normalize=True)
    assert table.loc["majority", "accuracy"] == pytest.approx(share.max())
    # the oracle's own reliability is good: calibration error within a few bin-sampling errors
    p = result.proba["oracle"].to_numpy()
    assert table.loc["oracle", "ece"] < 3 * _ece_bound(p.max(axis=1))


def test_baselines_fitted_once_and_reused(train_cohort, test_cohort):
    majority = MajorityBaseline().fit(train_cohort)
    small = test_cohort.iloc[:2000]
    res = evaluate(None, small, baselines={"majority": majority})
    assert list(res.table().index) == ["oracle", "majority"]
    assert res.baseline_training == {}  # nothing fitted, nothing generated
    prior = np.array([majority.train_prevalence_[k] for k in majority.classes_])
    assert np.allclose(res.proba["majority"].to_numpy(), prior)
    with pytest.raises(ValueError, match="unknown baseline"):
        evaluate(None, small, baselines=["nope"])


def test_logistic_converges(train_cohort):
    b = LogisticBaseline().fit(train_cohort.iloc[:5000])
    assert b.converged_
    steps = list(b.pipeline_.named_steps)
    assert steps == ["encode", "impute", "scale", "logistic"]
    assert b.pipeline_.named_steps["impute"].add_indicator


def empty_patient(kb) -> pd.DataFrame:
    """One patient with nothing recorded."""
    return pd.DataFrame({c: [np.nan] for c in kb.column_names})


def test_rule_scorer_points_by_hand(kb, train_cohort):
    scorer = RuleScorer().fit(train_cohort)
    clues = scorer.clues()
    # one clue per role, except expect="none" continuous columns and categoricals without a level
    skipped = [r for r in kb.roles() if kb.columns[r[1]].kind != "binary" and r[3] in (None, "none")]
    assert len(clues) == len(kb.roles()) - len(skipped)
    within = [(k, c) for k, c, _, e in kb.roles() if e == "within"]
    for k, c in within:
        lo, hi = kb.classes[k].columns[c].expect_range
        row = clues[(clues["class"] == k) & (clues["column"] == c)]
        assert list(row["condition"]) == [f"within [{lo:g}, {hi:g}]"]
    assert set(clues["points"]) == {-1, 1}
    assert (clues.loc[clues["role"] == "unusual", "points"] == -1).all()
    # A patient with only on_dialysis = 1 and tree_in_bud = 1 recorded:
    #   metastatic  +1 (cause on_dialysis) - 1 (tree-in-bud unusual) = 0
    #   dystrophic  +1 (tree-in-bud associated)
    #   dpo_nodular -1, pam -1 (tree-in-bud unusual), dpo_dendriform 0
    patient = empty_patient(kb).assign(on_dialysis=1, tree_in_bud=1)
    s = scorer.scores(patient).iloc[0]
    assert s.to_dict() == {"dystrophic": 1, "metastatic": 0, "dpo_nodular": -1, "dpo_dendriform": 0, "pam": -1}
    # zone and a continuous clue: lower zone, young (below the training median age)
    young = patient.assign(on_dialysis=np.nan, tree_in_bud=np.nan, zone="lower", age_years=scorer.medians_["age_years"] - 1)
    assert scorer.scores(young).iloc[0].to_dict() == {
        "dystrophic": 0, "metastatic": 0, "dpo_nodular": 1, "dpo_dendriform": 1, "pam": 2,
    }
    # a size inside a stated range scores for every class whose range holds it
    size = 2.0
    sized = empty_patient(kb).assign(lesion_size_mm=size)
    expected = {k: 0 for k in kb.class_names}
    for k, c in within:
        lo, hi = kb.classes[k].columns[c].expect_range
        expected[k] += int(lo <= size <= hi)
    if size < scorer.medians_.get("lesion_size_mm", -np.inf):
        expected["pam"] += 1  # pam: expect "lower" than the median size
    assert scorer.scores(sized).iloc[0].to_dict() == expected
    # probabilities: softmax(temperature * score + log training prevalence)
    assert 0 < scorer.temperature_ < scorer.temperature_bounds[1]
    proba = scorer.predict_proba(patient).iloc[0].to_numpy()
    prior = np.array([scorer.train_prevalence_[k] for k in scorer.classes_])
    logits = scorer.temperature_ * s.to_numpy() + np.log(prior)
    assert np.allclose(proba, np.exp(logits) / np.exp(logits).sum())
    # nothing recorded: the prior
    empty = empty_patient(kb)
    assert np.allclose(scorer.predict_proba(empty).iloc[0].to_numpy(), prior)


def test_nan_probabilities_refused_in_evaluate(test_cohort):
    class Broken:
        def predict_proba(self, df, prevalence=None):
            p = np.full((len(df), 5), 0.2)
            p[3] = np.nan
            return pd.DataFrame(p, index=df.index, columns=["dystrophic", "metastatic", "dpo_nodular", "dpo_dendriform", "pam"])

    with pytest.raises(ValueError, match="model: .*NaN"):
        evaluate(Broken(), test_cohort.iloc[:500], baselines=())


def test_label_is_required(test_cohort):
    with pytest.raises(ValueError, match="calcification_type"):
        evaluate(None, test_cohort.drop(columns=[LABEL]).iloc[:100], baselines=())


def test_prevalence_reaches_every_predictor(model, train_cohort):
    clinic = generate_cohort(3000, random_state=TEST_SEED + 1, prevalence=DIALYSIS)
    majority = MajorityBaseline().fit(train_cohort)
    res = evaluate(model, clinic, prevalence=DIALYSIS, baselines=[majority])
    want = classification_metrics(clinic[LABEL], oracle_proba(clinic, prevalence=DIALYSIS), res.classes)
    assert res.metrics["oracle"]["log_loss"] == pytest.approx(want["log_loss"])
    assert np.allclose(res.proba["majority"].to_numpy(), [DIALYSIS[k] for k in res.classes])
    assert res.prevalence == pytest.approx(DIALYSIS)


# --------------------------------------------------------------------------------------------
# Paired bootstrap
# --------------------------------------------------------------------------------------------
def test_paired_bootstrap(result):
    y, pm, po = result.y_true, result.proba["model"], result.proba["oracle"]
    a = paired_bootstrap_gap(y, pm, po, n_boot=400, random_state=3)
    g = result.gap()
    assert a["accuracy_gap_pp"] == pytest.approx(-g["accuracy_pp"])
    assert a["log_loss_gap"] == pytest.approx(g["log_loss"])
    for key in ("accuracy_gap_pp", "log_loss_gap"):
        lo, hi = a[f"{key}_ci"]
        assert lo <= a[key] <= hi
    # width agrees with the normal approximation 2 * 1.96 * sd / sqrt(n) of the paired difference
    p_m, p_o, yc = pm.to_numpy(), po.to_numpy(), pd.Categorical(y, categories=result.classes).codes
    d = 100.0 * ((p_o.argmax(1) == yc).astype(float) - (p_m.argmax(1) == yc))
    se = d.std() / math.sqrt(len(d))
    width = a["accuracy_gap_pp_ci"][1] - a["accuracy_gap_pp_ci"][0]
    assert width == pytest.approx(2 * 1.96 * se, rel=0.2)
    # deterministic for a seed; another seed resamples differently
    assert paired_bootstrap_gap(y, pm, po, n_boot=400, random_state=3) == a
    assert paired_bootstrap_gap(y, pm, po, n_boot=400, random_state=4)["log_loss_gap_ci"] != a["log_loss_gap_ci"]
    # identical predictors: zero gap, zero-width CI
    z = paired_bootstrap_gap(y, po, po, n_boot=200, random_state=0)
    assert z["accuracy_gap_pp"] == 0 and z["log_loss_gap"] == 0
    assert z["accuracy_gap_pp_ci"] == [0.0, 0.0] and z["log_loss_gap_ci"] == [0.0, 0.0]


def test_bootstrap_batches_do_not_change_the_estimate_shape():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=50)
    y = np.asarray(["a", "b", "c"], dtype=object)[rng.integers(0, 3, 50)]
    r = paired_bootstrap_gap(y, p, p[::-1].copy(), n_boot=7, random_state=1, classes=["a", "b", "c"])
    assert r["n_boot"] == 7 and r["n"] == 50
    with pytest.raises(ValueError, match="NaN"):
        q = p.copy()
        q[0] = np.nan
        paired_bootstrap_gap(y, q, p, classes=["a", "b", "c"])


# --------------------------------------------------------------------------------------------
# Learning curve
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def curve_lines():
    lines = []
    lc = learning_curve((500, 2000), test_n=5000, seeds=(5, 6, 7), test_seed=8, train_params={"max_iter": 50}, progress=lines.append)
    return lc, lines


def test_learning_curve_tiny(curve_lines):
    lc, lines = curve_lines
    assert list(lc.columns) == list(LEARNING_CURVE_COLUMNS)
    # one row per (size, seed), by size then seed
    assert list(zip(lc["n_train"], lc["seed"])) == [(500, 5), (500, 6), (500, 7), (2000, 5), (2000, 6), (2000, 7)]
    assert lc["oracle_accuracy"].nunique() == 1  # one fixed test cohort
    for _, r in lc.iterrows():
        # paired accuracy difference per patient is in {-1, 0, 1}; its variance is at most the
        # share of patients on which the two disagree <= both error rates added
        se_pp = 100 * math.sqrt(((1 - r.model_accuracy) + (1 - r.oracle_accuracy)) / 5000)
        assert r.accuracy_gap_pp >= -3 * se_pp
        assert r.accuracy_gap_pp == pytest.approx(100 * (r.oracle_accuracy - r.model_accuracy))
        assert r.log_loss_gap > 0
        assert 1 <= r.n_iter <= 50 and r.seconds > 0
    mean_gap = lc.groupby("n_train")["log_loss_gap"].mean()
    assert mean_gap[2000] < mean_gap[500]
    # each seed trains on its own cohort: the seeds' results differ at every size
    for _, g in lc.groupby("n_train"):
        assert g["model_accuracy"].nunique() == 3 and g["model_log_loss"].nunique() == 3
    assert len(lines) == 2 + 6 and "n=2,000, seed 7" in lines[-1]


def test_learning_curve_seeds_reproduce_and_do_not_depend_on_each_other(curve_lines):
    lc, _ = curve_lines
    # seed= is one seed; its rows are the same numbers as in the three-seed run (no shared stream)
    again = learning_curve((2000,), test_n=5000, seed=6, test_seed=8, train_params={"max_iter": 50})
    assert list(again["seed"]) == [6]
    same = lc[(lc.n_train == 2000) & (lc.seed == 6)]
    cols = [c for c in LEARNING_CURVE_COLUMNS if c != "seconds"]
    assert again[cols].to_numpy().tolist() == same[cols].to_numpy().tolist()
    with pytest.raises(ValueError, match="not both"):
        learning_curve((500,), seeds=(1, 2), seed=3)
    with pytest.raises(ValueError, match="distinct"):
        learning_curve((500,), seeds=(1, 1))
    with pytest.raises(ValueError, match="positive"):
        learning_curve((0, 500))


def test_learning_curve_summary_is_mean_sd_min_max_over_seeds(curve_lines):
    lc, _ = curve_lines
    s = learning_curve_summary(lc)
    assert list(s["n_train"]) == [500, 2000] and list(s["n_seeds"]) == [3, 3]
    for _, r in s.iterrows():
        acc = lc.loc[lc.n_train == r.n_train, "model_accuracy"].to_numpy()
        assert r.model_accuracy_mean == pytest.approx(acc.mean())
        assert r.model_accuracy_sd == pytest.approx(acc.std(ddof=1))
        assert (r.model_accuracy_min, r.model_accuracy_max) == (acc.min(), acc.max())
        assert r.oracle_accuracy == lc["oracle_accuracy"].iloc[0]
    with pytest.raises(ValueError, match="lacks columns"):
        learning_curve_summary(lc.drop(columns=["seed"]))


def test_a_labelled_cohort_with_a_class_of_prevalence_0_is_refused_up_front(model, test_cohort):
    with pytest.raises(ValueError, match=r"the cohort has [\d,]+ labelled 'pam', but the prevalence sets that class to 0"):
        ml.evaluate(model, test_cohort.iloc[:2000], prevalence={"dystrophic": 0.25, "metastatic": 0.25, "dpo_nodular": 0.25, "dpo_dendriform": 0.25})
