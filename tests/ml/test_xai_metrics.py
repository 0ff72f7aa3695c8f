"""ml.xai.metrics: OpenXAI's ground-truth metrics cross-checked against their own code, chance levels.

OpenXAI is not on PyPI and its package imports torch, so it is not installed: the reference
functions below are transcribed from ``openxai/metrics.py`` (AI4LIFE-GROUP/OpenXAI, commit
a182886): ``_construct_topk_dfs`` and ``_single_k_gt_faith`` (FA, RA, SA, SRA), ``rankcorr``
(RC) and ``pairwise_comp`` (PRA), line for line except that pandas 3 spells ``applymap`` as
``map`` and a per-row ground truth is passed one row at a time where their function takes one
vector. Quantus and teex are not cross-checked: Quantus' faithfulness metrics need a torch or
TensorFlow model wrapper and have no ground-truth agreement metric of these definitions, and
teex's feature-importance metrics (precision, recall, F-score, AUC against a binarised truth,
cosine similarity) are not among the metrics we report.
"""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.special import comb
from scipy.stats import pearsonr, rankdata, spearmanr

from ml.xai.metrics import agreement, chance_levels, row_metrics, rows


# ---- OpenXAI's code, transcribed ------------------------------------------------------------
def _oxai_topk_dfs(explanations, ground_truths, k, metric):
    attrs = [explanations, ground_truths]
    topk_idxs = [np.argsort(-np.abs(attr), axis=1)[:, :k] for attr in attrs]
    topk_idxs_dfs = [("feat" + pd.DataFrame(topk_idx).map(str)) for topk_idx in topk_idxs]
    if "rank" in metric:
        all_feat_ranks = [rankdata(-np.abs(attr), method="dense", axis=1) for attr in attrs]
        topk_ranks = [np.take_along_axis(r, t, axis=1) for r, t in zip(all_feat_ranks, topk_idxs)]
        topk_idxs_dfs = [d + ("rank" + pd.DataFrame(r).map(str)) for d, r in zip(topk_idxs_dfs, topk_ranks)]
    if "sign" in metric:
        topk_signs = [np.take_along_axis(np.sign(attr).astype(int), t, axis=1) for attr, t in zip(attrs, topk_idxs)]
        topk_idxs_dfs = [d + ("sign" + pd.DataFrame(s).map(str)) for d, s in zip(topk_idxs_dfs, topk_signs)]
    return topk_idxs_dfs


def _oxai_single_k_gt_faith(explanations, ground_truths, k, metric):
    topk_idxs_df, topk_idxs_df_gt = _oxai_topk_dfs(explanations, ground_truths, k, metric)
    if metric in ["overlap", "sign"]:
        topk_sets = [set(list(row)) for row in topk_idxs_df.to_numpy()]
        topk_sets_gt = [set(list(row)) for row in topk_idxs_df_gt.to_numpy()]
        return np.array([len(a.intersection(b)) / k for a, b in zip(topk_sets, topk_sets_gt)])
    return (topk_idxs_df.to_numpy() == topk_idxs_df_gt.to_numpy()).sum(axis=1) / k


def _oxai_rankcorr(explanations, ground_truth):
    corrs = np.zeros(explanations.shape[0])
    exp_ranks = rankdata(-np.abs(explanations), method="dense", axis=1)
    gt_rank = rankdata(-np.abs(ground_truth), method="dense")
    for row in range(exp_ranks.shape[0]):
        corrs[row], _ = pearsonr(exp_ranks[row], gt_rank)
    return corrs


def _oxai_pairwise_comp(explanations, ground_truth):
    same = np.zeros(explanations.shape[0])
    exp_ranks = rankdata(-np.abs(explanations), method="dense", axis=1)
    gt_rank = rankdata(-np.abs(ground_truth), method="dense")
    n_feat = explanations.shape[1]
    for f1, f2 in itertools.combinations_with_replacement(range(n_feat), 2):
        if f1 != f2:
            same += (exp_ranks[:, f1] < exp_ranks[:, f2]) == (gt_rank[f1] < gt_rank[f2])
    return same / comb(n_feat, 2)


# ---- attributions to compare: a real truth's structure (exact zeros), noisy explanations -----
@pytest.fixture(scope="module")
def pair():
    from data_gen import generate_cohort, weight_of_evidence

    df = generate_cohort(40, random_state=5)
    truth = weight_of_evidence(df).values  # exact zeros where a blank carries no evidence
    rng = np.random.default_rng(0)
    expl = truth + rng.normal(scale=0.5 * np.abs(truth).mean(), size=truth.shape)
    A, B = rows(expl), rows(truth)
    # OpenXAI's unstable argsort and our stable one agree when there is no tie inside a top k
    ok = np.array([len(np.unique(np.abs(b)[np.argsort(-np.abs(b))[:10]])) == 10 for b in B])
    assert ok.mean() > 0.8
    return A[ok], B[ok]


@pytest.mark.parametrize("k", [3, 5, 10])
@pytest.mark.parametrize("metric,name", [("overlap", "FA"), ("rank", "RA"), ("sign", "SA"), ("ranksign", "SRA")])
def test_topk_metrics_match_openxai(pair, k, metric, name):
    A, B = pair
    ours = row_metrics(A, B, ks=(k,))[f"{name}@{k}"]
    np.testing.assert_allclose(ours, _oxai_single_k_gt_faith(A, B, k, metric), atol=1e-12)
    assert 0 < ours.mean() < 1  # neither trivially 0 nor 1: the comparison tests something


def test_rank_correlation_and_pairwise_agreement_match_openxai(pair):
    A, B = pair
    got = row_metrics(A, B, ks=(3,))
    rc = np.array([_oxai_rankcorr(A[i : i + 1], B[i])[0] for i in range(len(A))])
    pra = np.array([_oxai_pairwise_comp(A[i : i + 1], B[i])[0] for i in range(len(A))])
    np.testing.assert_allclose(got["RC"], rc, atol=1e-12)
    np.testing.assert_allclose(got["PRA"], pra, atol=1e-12)


def test_spearman_matches_scipy(pair):
    A, B = pair
    got = row_metrics(A, B, ks=(3,))["spearman"]
    ref = np.array([spearmanr(a, b).statistic for a, b in zip(A, B)])
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_sign_agreement_counts_a_zero_attribution_as_one_half():
    B = np.array([[1.0, -2.0, 3.0, 0.0]])
    A = np.array([[2.0, 0.0, -1.0, 5.0]])  # agree, no sign, disagree; the last column has no truth sign
    assert row_metrics(A, B, ks=(1,))["sign_agreement"][0] == pytest.approx(0.5)


def test_chance_levels_are_what_random_attributions_score(pair):
    """Monte Carlo over random attributions reproduces every chance level within 4 standard errors."""
    _, B = pair
    rng = np.random.default_rng(1)
    draws = 60
    B_rep = np.repeat(B, draws, axis=0)
    A = rng.standard_normal(B_rep.shape)
    got, chance = row_metrics(A, B_rep), chance_levels(B_rep)
    for m in got:
        v = got[m][np.isfinite(got[m])]
        se = v.std(ddof=1) / np.sqrt(len(v))
        assert abs(v.mean() - np.nanmean(chance[m])) < 4 * se + 1e-12, m


def test_agreement_is_one_against_itself_and_names_shapes():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((20, 52, 5))
    d = agreement(a, a)
    for m in ("FA@3", "RA@5", "SA@10", "SRA@10", "RC", "PRA", "spearman", "sign_agreement"):
        assert d[m]["value"] == pytest.approx(1.0), m
    with pytest.raises(ValueError, match=r"do not match"):
        agreement(a, a[:, :51])


# ---- the patient- and class-shuffled nulls and the chance-adjusted agreement -------------------
def _truths(n=300, J=52, K=5, seed=0):
    """Truths with cohort-wide structure (a few columns large for everyone) and a patient part."""
    rng = np.random.default_rng(seed)
    scale = np.where(np.arange(J) < 6, 3.0, 0.5)[None, :, None]
    return rng.normal(size=(n, J, K)) * scale


def test_adjusted_is_one_for_the_truth_and_about_zero_for_cohort_wide_importance():
    b = _truths()
    exact = agreement(b, b)
    for m, d in exact.items():
        assert d["adjusted"] == pytest.approx(1.0), m
    # the same attribution for every patient: the cohort's mean |truth|. Raw FA@5 is far above
    # uniform chance (the 6 large columns), adjusted it is about 0: nothing is about the patient
    glob = np.broadcast_to(np.abs(b).mean(axis=0, keepdims=True), b.shape) + 1e-9 * np.arange(52)[None, :, None]
    d = agreement(glob, b)
    assert d["FA@5"]["value"] > d["FA@5"]["chance"] + 20 * d["FA@5"]["se"]
    for m in ("FA@5", "FA@10", "RC", "PRA"):
        assert abs(d[m]["adjusted"]) <= 4 * d[m]["adjusted_se"], (m, d[m])


def test_adjusted_credits_patient_specific_agreement_and_is_consistent():
    b = _truths(seed=1)
    rng = np.random.default_rng(2)
    noisy = b + rng.normal(scale=1.0, size=b.shape)  # the truth seen through noise
    d = agreement(noisy, b)
    for m in ("FA@5", "RC", "spearman", "sign_agreement"):
        assert d[m]["adjusted"] > 10 * d[m]["adjusted_se"], (m, d[m])
        zero = max(d[m]["shuffled"], d[m]["class_shuffled"])  # the larger null is the zero
        assert d[m]["adjusted"] == pytest.approx((d[m]["value"] - zero) / (1 - zero))


def test_adjusted_is_about_zero_for_class_blind_attributions_that_track_the_patients_values():
    # the additive case: a column's Shapley value is w[j, c] * (x - E[x]), so an explainer of a
    # model with unrelated weights (trained on permuted labels) shares |x - E[x]| with the truth
    # and agrees on which columns are large, although it knows nothing about the classes
    rng = np.random.default_rng(7)
    n, J, K = 400, 52, 5
    dev = rng.standard_t(3, size=(n, J, 1)) * np.where(np.arange(J) < 10, 2.0, 1.0)[None, :, None]
    truth = rng.normal(size=(1, J, K)) * dev
    # weights drawn afresh per patient, so that the standard error over patients covers the
    # spread between class-blind weight vectors (one shared draw is one null model)
    blind = rng.normal(size=(n, J, K)) * dev
    d = agreement(blind, truth)
    for m in ("FA@5", "FA@10", "RA@5", "SA@5", "RC", "PRA", "spearman", "sign_agreement"):
        if m in ("FA@5", "FA@10", "RC", "PRA"):  # raw, and beyond other patients' truths: far above
            assert d[m]["value"] > d[m]["shuffled"] + 10 * d[m]["se"], (m, d[m])
        assert abs(d[m]["adjusted"]) <= 4 * d[m]["adjusted_se"], (m, d[m])
    # the same patients' values with the truth's own weights, seen through noise: credited
    seen = truth + 0.5 * rng.normal(size=truth.shape) * np.abs(dev)
    good = agreement(seen, truth)
    for m in ("FA@5", "RC", "PRA", "spearman"):
        assert good[m]["adjusted"] > 10 * good[m]["adjusted_se"], (m, good[m])


def test_class_shuffled_null_pairs_each_class_with_the_others_only():
    from ml.xai.metrics import class_shuffled_null

    b = _truths(n=7, seed=8)
    null = class_shuffled_null(b, b)
    assert null["spearman"].shape == (7 * 5,)
    assert np.all(null["spearman"] < 0.9)  # never the row's own class
    # one class: no other to pair with; two: the other class's centred truth is minus this one's
    assert np.isnan(class_shuffled_null(b[:, :, :1], b[:, :, :1])["spearman"]).all()
    assert np.isnan(class_shuffled_null(b[:, :, :2], b[:, :, :2])["spearman"]).all()
    # three classes, attributions = the truth of the class before: one of the two shifts finds it
    three = b[:, :, :3]
    null = class_shuffled_null(np.roll(three, 1, axis=2), three)["spearman"]
    assert null.shape == (21,) and np.all((null > 0.2) & (null < 0.8))


def test_shuffled_null_pairs_each_patient_with_others_only():
    from ml.xai.metrics import shuffled_null

    # every patient's truth is different; attributions equal to the truth score 1 only unshuffled
    b = _truths(n=7, seed=3)
    null = shuffled_null(b, b)
    assert np.all(null["spearman"] < 0.9)
    assert np.isnan(shuffled_null(b[:1], b[:1])["spearman"]).all()  # one patient: no other to pair with


def test_bad_inputs_are_refused_naming_what_is_wrong():
    from ml.xai.metrics import class_shuffled_null, shuffled_null

    b = _truths(n=20, seed=4)
    a = b.copy()
    a[3, 7, 1] = np.nan
    with pytest.raises(ValueError, match=r"attributions hold 1 non-finite value\(s\).*\(3, 7, 1\)"):
        agreement(a, b)
    with pytest.raises(ValueError, match=r"truth hold 1 non-finite"):
        agreement(b, np.where(a == a, b, np.inf))
    with pytest.raises(ValueError, match=r"shape \(10, 52, 5\) do not match the truth's \(20, 52, 5\)"):
        shuffled_null(b[:10], b)
    with pytest.raises(ValueError, match=r"shape \(20, 52, 4\) do not match the truth's \(20, 52, 5\)"):
        class_shuffled_null(b[:, :, :4], b)
    with pytest.raises(ValueError, match="shuffles must be a positive integer"):
        shuffled_null(b, b, shuffles=0)
    with pytest.raises(ValueError, match="have no patients"):
        agreement(b[:0], b[:0])
    with pytest.raises(ValueError, match=r"between 1 and the 4 columns; pass ks="):
        agreement(b[:, :4], b[:, :4])


def test_metrics_do_not_depend_on_the_attributions_scale():
    b = _truths(n=40, seed=5)
    a = b + np.random.default_rng(6).normal(size=b.shape)
    base = agreement(a, b)
    for scale in (1e-13, 1e6):  # rounding was absolute: at 1e-13 every attribution became 0
        got = agreement(a * scale, b)
        for m in ("spearman", "FA@5", "RC", "sign_agreement"):
            assert got[m]["value"] == pytest.approx(base[m]["value"], abs=1e-9), (scale, m)


def test_with_two_classes_the_class_null_is_left_out_and_adjusted_still_credits_agreement():
    from ml.xai.ground_truth import centre
    from ml.xai.metrics import class_shuffled_null

    rng = np.random.default_rng(9)
    b = centre(rng.standard_normal((60, 52, 2)))  # centred: class 1's truth is minus class 0's
    a = centre(b + 0.3 * rng.standard_normal(b.shape))
    assert np.isnan(class_shuffled_null(a, b)["FA@5"]).all()
    d = agreement(a, b)
    for m in ("FA@5", "RC", "PRA", "spearman"):
        assert np.isnan(d[m]["class_shuffled"])
        assert d[m]["adjusted"] == pytest.approx((d[m]["value"] - d[m]["shuffled"]) / (1 - d[m]["shuffled"]))
        assert d[m]["adjusted"] > 10 * d[m]["adjusted_se"], (m, d[m])
        assert agreement(b, b)[m]["adjusted"] == pytest.approx(1.0)


def test_pooled_agreement_of_one_run_is_agreement_and_its_error_never_falls_below_the_patients():
    from ml.xai.metrics import pooled_agreement

    b = _truths(n=50, seed=10)
    rng = np.random.default_rng(11)
    a = b + rng.normal(size=b.shape)
    one, alone = pooled_agreement([a], b), agreement(a, b)
    assert one == alone
    twice = pooled_agreement([a, a], b)  # two identical runs: nothing between them
    for m in ("FA@5", "spearman"):
        assert twice[m]["se"] == pytest.approx(alone[m]["se"]) and twice[m]["adjusted_se"] == pytest.approx(alone[m]["adjusted_se"])
    other = b + rng.normal(size=b.shape)
    two = pooled_agreement([a, other], b)
    for m in ("FA@5", "spearman"):
        assert two[m]["value"] == pytest.approx((alone[m]["value"] + agreement(other, b)[m]["value"]) / 2)
        assert two[m]["se"] >= min(alone[m]["se"], agreement(other, b)[m]["se"]) * 0.7
    for bad in ([], a, "a"):
        with pytest.raises(ValueError, match="runs must be a non-empty list"):
            pooled_agreement(bad, b)


@pytest.mark.parametrize("ks,message", [
    (3, "ks must be a sequence of top-k sizes"),
    ((3.0,), "ks must be a non-empty sequence of whole numbers"),
    ((True,), "ks must be a non-empty sequence of whole numbers"),
    (("3",), "ks must be a non-empty sequence of whole numbers"),
    ((), "ks must be a non-empty sequence of whole numbers"),
    ((0, 3), "each must be between 1 and the 52 columns"),
])
def test_topk_sizes_are_checked_in_every_entry_point(ks, message):
    from ml.xai.metrics import class_shuffled_null, shuffled_null

    b = _truths(n=6, seed=12)
    for f in (agreement, class_shuffled_null, shuffled_null):
        with pytest.raises(ValueError, match=message):
            f(b, b, ks=ks)


def test_a_generator_of_ks_is_read_once_and_kept():
    b = _truths(n=6, seed=13)
    assert "FA@4" in agreement(b, b, ks=(k for k in (4,)))


def test_arrays_that_are_not_real_numbers_or_have_no_classes_are_refused():
    b = _truths(n=6, seed=14)
    with pytest.raises(ValueError, match="attributions must be real numbers, got an array of dtype <U"):
        agreement(b.astype(str), b)
    with pytest.raises(ValueError, match="truth must be real numbers, got an array of dtype complex128"):
        agreement(b, b + 0j)
    with pytest.raises(ValueError, match=r"have no classes \(shape \(6, 52, 0\)\)"):
        agreement(b[:, :, :0], b[:, :, :0])
    assert agreement(np.rint(b).astype(int), b)["spearman"]["value"] > 0.5  # integers are numbers


def test_sign_agreement_does_not_depend_on_the_truths_unit():
    b = _truths(n=20, seed=15)
    a = b + np.random.default_rng(16).normal(size=b.shape)
    base = agreement(a, b)["sign_agreement"]["value"]
    for scale in (1e-10, 1e-6, 1e6):  # the tolerance was absolute: at 1e-10 every column was "zero"
        assert agreement(a, b * scale)["sign_agreement"]["value"] == pytest.approx(base, abs=1e-12), scale
