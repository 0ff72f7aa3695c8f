"""ml.xai.leaderboard: the random and permuted-label floors against every ground truth.

Tolerances come from sampling error. Random attributions are drawn independently per patient,
so the standard error over patients is the right yardstick: every raw metric within 4 of them of
its uniform chance level, and every chance-adjusted one within 4 of its own of 0. The
permuted-label floor is one null *model* shared by all patients, so its error is between models:
R null models (different permutations and seeds) give a mean and a standard error over models.
Raw, its signed metrics (Spearman, sign agreement) sit at chance but its unsigned top-k and rank
metrics well above it (a model that learnt nothing about the classes still puts its largest
attributions on a patient's unusual values, as the truth does). Adjusted beyond the larger of
the patient- and class-shuffled nulls, every metric must sit within 4 standard errors of 0, and
a real explainer far above it.
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from data_gen import generate_cohort
from ml.xai import benchmark_explainers
from ml.xai import builtin_explainers, view_of
from ml.xai.explainers import AdditiveExact, PermutedLabelFloor, RandomFloor, TreePath
from ml.xai.ground_truth import centre, model_truth, oracle_truths
from ml.xai.metrics import agreement

N = 120
R = 5


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(N + 300 + 2_000, random_state=51)


def test_random_floor_is_at_chance_on_every_metric_and_truth(small_model, cohort):
    lb = benchmark_explainers(small_model, cohort, explainers={"random": RandomFloor(random_state=3)}, n_patients=N,
                              background_size=300, train_size=0, n_permutations=16, audit=False, random_state=1,
                              budgets={"exact_background": 30})
    scored = lb[lb.ground_truth != ""]
    assert set(scored.ground_truth) == {"model", "oracle_shapley", "weight_of_evidence"}
    assert len(scored) == 3 * 16  # FA, RA, SA, SRA at 3 k; RC, PRA, Spearman, sign
    for _, r in scored.iterrows():
        assert abs(r.value - r.chance) <= 4 * r.se, (r.ground_truth, r.metric, r.value, r.chance, r.se)
        assert abs(r.adjusted) <= 4 * r.adjusted_se, (r.ground_truth, r.metric, r.adjusted, r.adjusted_se)
        # uniform chance and the shuffled null agree for attributions with no cohort-wide structure
        assert abs(r.shuffled - r.chance) <= 4 * r.se, (r.ground_truth, r.metric, r.shuffled, r.chance)
        assert abs(r.class_shuffled - r.chance) <= 4 * r.se, (r.ground_truth, r.metric, r.class_shuffled, r.chance)


@pytest.fixture(scope="module")
def additive_model(cohort):
    from ml.xai import logistic_regression

    return logistic_regression().fit(cohort.iloc[N + 300 :])


@pytest.mark.parametrize("kind", ["booster", "logistic_regression"])
def test_permuted_label_floor_sits_at_zero_once_adjusted(kind, small_model, additive_model, cohort):
    # the booster against the oracle's exact-game Shapley values; the additive logistic
    # regression against its own exact values, the worst case before the class-shuffled null
    # (any two logistic regressions share |x - E[x]|: raw FA@10 was ~0.5 against chance 0.19)
    model = small_model if kind == "booster" else additive_model
    X = cohort.iloc[:N]
    bg = cohort.iloc[N : N + 300].drop(columns="calcification_type")
    train = cohort.iloc[N + 300 :]
    view = view_of(model)
    checked = view.check(X)
    if kind == "booster":
        truth = oracle_truths(checked, n_permutations=16, random_state=2)["oracle_shapley"]
        explainer = TreePath()
    else:
        truth, _ = model_truth(view, checked, bg, background_size=100)
        explainer = AdditiveExact(bg, background_size=100)
    with threadpool_limits(limits=1):
        nulls = [agreement(centre(PermutedLabelFloor(bg, train=train, random_state=r, background_size=100)(model, X)), truth)
                 for r in range(R)]
        real = agreement(centre(explainer(model, X)), truth)
    for m in ("spearman", "sign_agreement"):  # raw: at uniform chance
        v = np.array([d[m]["value"] for d in nulls])
        se = v.std(ddof=1) / np.sqrt(R)
        assert abs(v.mean() - nulls[0][m]["chance"]) <= 4 * se, (m, v, se)
        assert real[m]["value"] - real[m]["chance"] > 10 * se  # a real explainer is far above the floor
    for m in real:
        adj = np.array([d[m]["adjusted"] for d in nulls])
        se = adj.std(ddof=1) / np.sqrt(R)
        assert abs(adj.mean()) <= 4 * se, (m, adj, se)
        assert real[m]["adjusted"] > 0.05, (m, real[m])  # a real explainer keeps agreement beyond the nulls
        if m in ("FA@5", "FA@10", "RC", "PRA"):
            # raw, the floor's magnitude metrics are well above both uniform chance and the
            # patient-shuffled null: the class-shuffled null is what brings them to 0
            raw = np.array([d[m]["value"] - d[m]["shuffled"] for d in nulls])
            assert raw.mean() > 4 * raw.std(ddof=1) / np.sqrt(R), (m, raw)


def test_a_floor_with_several_null_models_reports_their_mean_and_the_spread_between_them(small_model, cohort):
    floor = PermutedLabelFloor(train=cohort.iloc[N + 300 :], random_state=4, refits=3, background_size=30)
    runs = floor.repeats()
    assert len(runs) == 3 and len({r.random_state for r in runs}) == 3 and runs[0] is floor
    lb = benchmark_explainers(small_model, cohort, explainers={"permuted_label": floor}, ground_truth="oracle_shapley",
                              n_patients=N, background_size=300, train_size=0, n_permutations=16, audit=False, random_state=1)
    row = lb[(lb.metric == "spearman") & (lb.ground_truth == "oracle_shapley")].iloc[0]
    assert row.budget.startswith("mean of 3 null models; ")
    # recompute each null model's score on the same patients and truth: the row is their mean,
    # its standard error the spread between them over sqrt(3)
    from ml.xai.leaderboard import _draw

    Xd, _, _ = _draw(cohort, N, 300, 0, np.random.default_rng(1))
    truth = oracle_truths(small_model.check(Xd), n_permutations=16, random_state=1)["oracle_shapley"]
    scores = [agreement(centre(r(small_model, Xd)), truth)["spearman"] for r in runs]
    each = np.array([d["value"] for d in scores])
    assert row.value == pytest.approx(each.mean(), abs=1e-9)
    assert each.std() > 0  # three different null models
    # the error counts both the spread between null models and the error over patients
    between = each.std(ddof=1) / np.sqrt(3)
    assert row.se >= max(between, min(d["se"] for d in scores)) - 1e-12
    assert row.se <= np.hypot(between, max(d["se"] for d in scores)) + 1e-12
    # adjusted is computed from the pooled value and nulls reported beside it
    zero = max(row.shuffled, row.class_shuffled)
    assert row.adjusted == pytest.approx((row.value - zero) / (1 - zero), abs=1e-12)


@pytest.mark.parametrize("refits", [0, 1.5, 2.0, True, -2, 101, "3", None])
def test_refits_must_be_a_whole_number_of_null_models_in_range(refits):
    with pytest.raises(ValueError, match=r"refits must be a whole number of null models from 1 to 100, got"):
        PermutedLabelFloor(refits=refits)
    with pytest.raises(ValueError, match=r"^null_refits must be a whole number"):
        builtin_explainers(None, null_refits=refits)


def test_the_random_floor_pools_its_draws(small_model, cohort):
    floor = RandomFloor(random_state=5, draws=4)
    runs = floor.repeats()
    assert len(runs) == 4 and runs[0] is floor and len({r.random_state for r in runs}) == 4
    X = small_model.check(cohort.iloc[:N])
    assert not np.array_equal(runs[1](small_model, X), runs[2](small_model, X))
    lb = benchmark_explainers(small_model, cohort, explainers={"random": floor}, ground_truth="oracle_shapley", n_patients=N,
                              background_size=300, train_size=0, n_permutations=16, audit=False, random_state=1)
    scored = lb[lb.ground_truth == "oracle_shapley"]
    assert set(lb.budget) == {"mean of 4 draws"}
    for _, r in scored.iterrows():  # four draws: still at chance, still at 0 once adjusted
        assert abs(r.value - r.chance) <= 4 * r.se and abs(r.adjusted) <= 4 * r.adjusted_se, (r.metric, r.value, r.chance)
    with pytest.raises(ValueError, match="^draws must be a whole number of draws from 1 to 100, got 0"):
        RandomFloor(draws=0)
    with pytest.raises(ValueError, match="^random_draws must be a whole number of draws"):
        builtin_explainers(None, random_draws=1.0)
