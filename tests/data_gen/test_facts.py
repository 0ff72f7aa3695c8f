"""What the review states must hold in a generated cohort (measured on generated data, not read
from the knowledge base's numbers)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from _dg_stats import binomial_se, bonferroni_z
from data_gen import generate_cohort, oracle_log_likelihood, oracle_proba, weight_of_evidence

Z1 = bonferroni_z(1)  # a single comparison at alpha 0.001: z ~ 3.3


_SPLITS: dict[int, tuple[pd.DataFrame, dict[str, pd.DataFrame]]] = {}


def _of(df, k):
    """The rows of class k (split once per cohort)."""
    if id(df) not in _SPLITS:
        labels = df["calcification_type"].to_numpy()
        _SPLITS[id(df)] = (df, {c: df.loc[labels == c] for c in df["calcification_type"].cat.categories})
    return _SPLITS[id(df)][1][k]


def _rate(s: pd.Series) -> tuple[float, int]:
    """Share of 1 among recorded values, and how many were recorded."""
    rec = s.dropna().to_numpy()
    return float((rec == 1).mean()), len(rec)


def _greater(p1, n1, p2, n2, z=Z1) -> bool:
    """p1 exceeds p2 by more than z standard errors of the difference."""
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return p1 - p2 > z * se


# ---------------------------------------------------------------------------------------------
# "Calcifications only in 60% of cases!" (MPC)
# ---------------------------------------------------------------------------------------------
def test_mpc_calcification_visible_in_about_60_percent(counts_cohort):
    rate, n = _rate(_of(counts_cohort, "metastatic")["calcification_visible"])
    assert abs(rate - 0.60) <= Z1 * binomial_se(0.60, n), rate


def test_mpc_without_visible_calcification_shows_no_calcified_lesions(counts_cohort):
    mpc = _of(counts_cohort, "metastatic")
    hidden = mpc[mpc["calcification_visible"] == 0]
    assert len(hidden) > 1000
    for col in ("calcified_nodules", "dense_calcification", "branching_calcification"):
        assert (hidden[col].dropna() == 0).all(), col


# ---------------------------------------------------------------------------------------------
# Lesion sizes
# ---------------------------------------------------------------------------------------------
def _share_within(x: pd.Series, lo: float, hi: float) -> float:
    v = x.dropna().to_numpy()
    assert len(v) > 1000
    return float(((v >= lo) & (v <= hi)).mean())


def test_dystrophic_nodules_usually_above_5_mm(counts_cohort):
    size = _of(counts_cohort, "dystrophic")["lesion_size_mm"].dropna()
    assert size.median() > 5
    assert (size > 5).mean() > 0.5


def test_mpc_centrilobular_nodules_3_to_10_mm(counts_cohort):
    mpc = _of(counts_cohort, "metastatic")
    ggo = mpc[mpc["latent_pattern"] == "centrilobular_ggo"]
    assert _share_within(ggo["lesion_size_mm"], 3, 10) >= 0.90


def test_nodular_dpo_1_to_5_mm(counts_cohort):
    assert _share_within(_of(counts_cohort, "dpo_nodular")["lesion_size_mm"], 1, 5) >= 0.90


def test_dendriform_lines_1_to_4_mm(counts_cohort):
    assert _share_within(_of(counts_cohort, "dpo_dendriform")["lesion_size_mm"], 1, 4) >= 0.90


def test_pam_micronodules_below_1_mm(counts_cohort):
    pam = _of(counts_cohort, "pam")
    sand = pam.loc[pam["latent_stage"] == "sandstorm", "lesion_size_mm"].dropna()
    assert len(sand) > 1000
    assert (sand < 1).mean() >= 0.90
    assert pam["lesion_size_mm"].dropna().median() < 1
    # the precalcific stage has no lesion to measure
    assert pam.loc[pam["latent_stage"] == "precalcific", "lesion_size_mm"].isna().all()


def test_pam_lesions_are_the_smallest(counts_cohort):
    med = {k: _of(counts_cohort, k)["lesion_size_mm"].median() for k in counts_cohort["calcification_type"].cat.categories}
    assert min(med, key=med.get) == "pam"
    assert max(med, key=med.get) == "dystrophic"


# ---------------------------------------------------------------------------------------------
# Zones
# ---------------------------------------------------------------------------------------------
def _zone_shares(df, k) -> pd.Series:
    return _of(df, k)["zone"].value_counts(normalize=True)


@pytest.mark.parametrize("k, zone", [("dystrophic", "upper"), ("metastatic", "upper"), ("dpo_nodular", "lower"), ("dpo_dendriform", "lower"), ("pam", "lower")])
def test_most_common_zone(counts_cohort, k, zone):
    shares = _zone_shares(counts_cohort, k)
    n = int(_of(counts_cohort, k)["zone"].notna().sum())
    others = [z for z in shares.index if z != zone]
    for z in others:
        assert _greater(shares[zone], n, shares[z], n), (k, zone, z, shares.to_dict())


def _rate_by_class(df, col):
    return {k: _rate(_of(df, k)[col]) for k in df["calcification_type"].cat.categories}


def test_mpc_is_the_most_peripheral(counts_cohort):
    rates = _rate_by_class(counts_cohort, "peripheral_predominance")
    p, n = rates.pop("metastatic")
    for k, (q, m) in rates.items():
        assert _greater(p, n, q, m), (k, p, q)


def test_pam_is_the_most_medial_posterior(counts_cohort):
    rates = _rate_by_class(counts_cohort, "medial_posterior_predominance")
    p, n = rates.pop("pam")
    for k, (q, m) in rates.items():
        assert _greater(p, n, q, m), (k, p, q)


# ---------------------------------------------------------------------------------------------
# Frequencies under the default mix
# ---------------------------------------------------------------------------------------------
def test_class_frequencies_under_default_mix(default_cohort):
    n = len(default_cohort)
    f = default_cohort["calcification_type"].value_counts(normalize=True)
    for k in f.index:
        if k != "dystrophic":
            assert _greater(f["dystrophic"], n, f[k], n), k
    assert _greater(f["dpo_nodular"], n, f["dpo_dendriform"], n)
    for k in f.index:
        if k != "pam":
            assert _greater(f[k], n, f["pam"], n), k
    assert f["pam"] < 0.10  # "PAM is a rare ... disorder"


# ---------------------------------------------------------------------------------------------
# PAM stages
# ---------------------------------------------------------------------------------------------
def test_pam_sandstorm_stage_mostly_aged_10_to_20(counts_cohort):
    pam = _of(counts_cohort, "pam")
    age = pam.loc[pam["latent_stage"] == "sandstorm", "age_years"].dropna()
    share = float(((age >= 10) & (age <= 20)).mean())
    assert share - Z1 * binomial_se(0.5, len(age)) > 0.5, share


def test_pam_precalcific_stage_shows_no_calcification(counts_cohort):
    pam = _of(counts_cohort, "pam")
    pre = pam[pam["latent_stage"] == "precalcific"]
    assert len(pre) > 1000
    assert (pre["calcification_visible"].dropna() == 0).all()
    for col in ("calcified_nodules", "dense_calcification", "branching_calcification"):
        assert (pre[col].dropna() == 0).all(), col


def test_pam_screening_family_history(counts_cohort):
    """Autosomal recessive: a relative with PAM is far more common in PAM than elsewhere."""
    rates = _rate_by_class(counts_cohort, "family_history_pam")
    p, n = rates.pop("pam")
    for k, (q, m) in rates.items():
        assert _greater(p, n, q, m), k


# ---------------------------------------------------------------------------------------------
# Causes and latent structure
# ---------------------------------------------------------------------------------------------
def test_dystrophic_occupational_has_dust_and_node_calcification(counts_cohort):
    dys = _of(counts_cohort, "dystrophic")
    occ = dys["latent_cause"] == "occupational"
    # dust exposure: above every other dystrophic cause
    p, n = _rate(dys.loc[occ, "occupational_dust_exposure"])
    for cause in dys.loc[~occ, "latent_cause"].unique():
        q, m = _rate(dys.loc[dys["latent_cause"] == cause, "occupational_dust_exposure"])
        assert _greater(p, n, q, m), cause
    # dust exposure and lymph node calcification: above the other dystrophic subtypes together
    for col in ("occupational_dust_exposure", "lymph_node_calcification"):
        p, n = _rate(dys.loc[occ, col])
        q, m = _rate(dys.loc[~occ, col])
        assert _greater(p, n, q, m), col


def test_sarcoidosis_is_a_cause_of_dystrophic_and_metastatic(kb, counts_cohort):
    for k in ("dystrophic", "metastatic"):
        assert kb.role(k, "sarcoidosis") == "cause"
        rate, _ = _rate(_of(counts_cohort, k)["sarcoidosis"])
        assert rate > 0, k


def test_amyloidosis_is_a_cause_of_dystrophic_and_both_dpo(kb, counts_cohort):
    for k in ("dystrophic", "dpo_nodular", "dpo_dendriform"):
        assert kb.role(k, "amyloidosis") == "cause"
        rate, _ = _rate(_of(counts_cohort, k)["amyloidosis"])
        assert rate > 0, k


def test_kidney_disease_occurs_in_every_class(counts_cohort):
    for k in counts_cohort["calcification_type"].cat.categories:
        rate, _ = _rate(_of(counts_cohort, k)["chronic_kidney_disease"])
        assert rate > 0, k
    # and it is the hallmark of MPC
    rates = _rate_by_class(counts_cohort, "chronic_kidney_disease")
    p, n = rates.pop("metastatic")
    for k, (q, m) in rates.items():
        assert _greater(p, n, q, m), k


def test_unusual_findings_are_rare_but_occur(kb, counts_cohort):
    unusual = [(k, col) for k, col, role, _ in kb.roles() if role == "unusual"]
    assert len(unusual) >= 15
    for k, col in unusual:
        rate, n = _rate(_of(counts_cohort, k)[col])
        assert 0 < rate <= 0.10, (k, col, rate)


# ---------------------------------------------------------------------------------------------
# No single column determines the class (SLC34A2 aside)
# ---------------------------------------------------------------------------------------------
def test_no_single_column_determines_the_class(kb):
    df = generate_cohort(50_000, random_state=41)
    ev = weight_of_evidence(df, missing="ignore")
    log_prior = np.log([kb.prevalence[k] for k in kb.class_names])
    shares = {}
    for j, col in enumerate(ev.columns):
        a = ev.values[:, j, :] + log_prior[None, :]  # centring cancels on normalising
        a = np.exp(a - a.max(axis=1, keepdims=True))
        post = a / a.sum(axis=1, keepdims=True)
        shares[col] = float((post.max(axis=1) > 0.99).mean())
    top = sorted(shares.items(), key=lambda kv: -kv[1])[:4]
    print(f"\nshare of patients whose single-column posterior exceeds 0.99, largest: {top}")
    for col, share in shares.items():
        if col != "slc34a2_variant":
            assert share < 0.05, (col, share)


def test_a_found_slc34a2_variant_means_pam(counts_cohort, default_cohort):
    for df in (counts_cohort, default_cohort):
        found = (df["slc34a2_variant"] == 1).fillna(False).to_numpy()
        assert found.sum() > 100
        assert (df.loc[found, "calcification_type"] == "pam").all()


# ---------------------------------------------------------------------------------------------
# The review's three cases are plausible under the model
# ---------------------------------------------------------------------------------------------
def _paper_cases(kb) -> pd.DataFrame:
    try:
        from data_gen import paper_cases

        return paper_cases()
    except ImportError:  # data_gen.contract not written yet
        from data_gen.cases import PAPER_CASES_PATH

        df = pd.read_csv(PAPER_CASES_PATH, index_col="case_id")
        for col, spec in kb.columns.items():
            if spec.kind == "binary":
                df[col] = df[col].astype(float)
        return df


@pytest.mark.parametrize("missing", ["ignore", "model"])
def test_paper_cases_are_plausible(kb, missing):
    cases = _paper_cases(kb)
    assert len(cases) == 3
    truth = cases["calcification_type"].astype(str).tolist()
    assert truth == ["metastatic", "dpo_dendriform", "dpo_nodular"]
    ll = oracle_log_likelihood(cases, missing=missing)
    post = oracle_proba(cases, missing=missing)
    for case_id, k in zip(cases.index, truth):
        assert np.isfinite(ll.loc[case_id, k]) and ll.loc[case_id, k] > -1e5, (case_id, ll.loc[case_id].to_dict())
        assert post.loc[case_id].idxmax() == k, (case_id, post.loc[case_id].round(4).to_dict())
    print(f"\npaper cases, missing={missing!r}: posterior of the true class = {[round(post.loc[c, k], 4) for c, k in zip(cases.index, truth)]}")
