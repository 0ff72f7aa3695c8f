"""ml.xai.leaderboard: the random and permuted-label floors against every ground truth.

Tolerances come from sampling error. Random attributions are drawn independently per patient,
so the standard error over patients is the right yardstick: every metric within 4 of them of
its chance level. The permuted-label floor is one null *model* shared by all patients, so its
error is between models: R null models (different permutations and seeds) give a mean and a
standard error over models, and the signed metrics (Spearman, sign agreement) must sit within
4 of those of chance. Its unsigned top-k and rank metrics sit above chance by design of the
data (which columns carry large attributions — recorded values, continuous labs — is partly
fixed by the data, for any model); the test pins that they stay far below a real explainer's.
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from data_gen import generate_cohort
from ml.xai import benchmark_explainers
from ml.xai.explainers import PermutedLabelFloor, RandomFloor, TreePath
from ml.xai.ground_truth import centre, oracle_truths
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


def test_permuted_label_floor_is_at_chance_on_signed_metrics(small_model, cohort):
    X = cohort.iloc[:N]
    train = cohort.iloc[N + 300 :]
    truth = oracle_truths(small_model.check(X), n_permutations=16, random_state=2)["oracle_shapley"]
    with threadpool_limits(limits=1):
        nulls = [agreement(centre(PermutedLabelFloor(train=train, random_state=r)(small_model, X)), truth) for r in range(R)]
        real = agreement(centre(TreePath()(small_model, X)), truth)
    for m in ("spearman", "sign_agreement"):
        v = np.array([d[m]["value"] for d in nulls])
        se = v.std(ddof=1) / np.sqrt(R)
        assert abs(v.mean() - nulls[0][m]["chance"]) <= 4 * se, (m, v, se)
        assert real[m]["value"] - real[m]["chance"] > 10 * se  # a real explainer is far above the floor
    for m in ("FA@5", "RC", "PRA"):
        lift = np.mean([d[m]["value"] - d[m]["chance"] for d in nulls])
        assert lift < 0.5 * (real[m]["value"] - real[m]["chance"]), (m, lift, real[m])
