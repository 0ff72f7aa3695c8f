"""The oracle: the exact posterior of the knowledge base, checked against a slow reference,
Bayes' rule, the sampler (calibration on 200k patients) and its weight-of-evidence split."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _dg_stats import bonferroni_z, class_frequency_gap
from data_gen import (
    generate_cohort,
    oracle_log_likelihood,
    oracle_proba,
    weight_of_evidence,
)

IMPOSSIBLE_BELOW = -1e5  # the oracle writes log(0) as a large negative number


# ---------------------------------------------------------------------------------------------
# A slow, obviously correct reference: loop over cells and columns of one patient
# ---------------------------------------------------------------------------------------------
def _phi_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _normal_density(x, mu, sd, lo, hi) -> float:
    if not lo <= x <= hi:
        return 0.0
    mass = _phi_cdf((hi - mu) / sd) - _phi_cdf((lo - mu) / sd)
    return math.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)) / mass


def _lognormal_density(x, med, gsd, zero) -> float:
    if x == 0:
        return zero
    if x < 0:
        return 0.0
    s = math.log(gsd)
    return (1 - zero) * math.exp(-0.5 * ((math.log(x) - math.log(med)) / s) ** 2) / (x * s * math.sqrt(2 * math.pi))


def _cell_parameters(kb):
    """For every latent cell, read from the class specs (not from the compiled cell table):
    (class index, P(cell | class), {column: (kind, missing rate, parameters)}).

    Binary: ("binary", m, (p, None, None)) or, conditioned on a parent column,
    ("binary", m, (None, parent, (P(1 | parent 1), P(1 | parent 0)))); a `requires` gate
    that the cell's levels fail sets the probabilities to 0.
    """
    cells = []
    for k, cls in enumerate(kb.classes.values()):
        for levels, prob in cls.cells():
            cols = {}
            for col, spec in kb.columns.items():
                model = cls.columns[col]
                m = model.missing.at(levels)
                gate = float(all(levels[f] in allowed for f, allowed in model.requires.items()))
                if spec.kind == "binary":
                    param = model.params["p"]
                    if param.given is None:
                        cols[col] = ("binary", m, (param.at(levels) * gate, None, None))
                    else:
                        g = (param.values["1"] * gate, param.values["0"] * gate)
                        cols[col] = ("binary", m, (None, param.given, g))
                elif spec.kind == "categorical":
                    cols[col] = ("categorical", m, dict(model.params["probs"].at(levels)))
                elif model.dist == "normal":
                    # truncated to the contract's range and its plausible range
                    lo = max(-math.inf if spec.min is None else float(spec.min), -math.inf if spec.plausible_min is None else spec.plausible_min)
                    hi = min(math.inf if spec.max is None else float(spec.max), math.inf if spec.plausible_max is None else spec.plausible_max)
                    cols[col] = ("normal", m, (model.params["mean"].at(levels), model.params["sd"].at(levels), lo, hi))
                else:
                    zero = model.params["zero"].at(levels) if "zero" in model.params else 0.0
                    cols[col] = ("lognormal", m, (model.params["median"].at(levels), model.params["gsd"].at(levels), zero))
            cells.append((k, prob, cols))
    return cells


def _is_nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def reference_loglik(kb, row: dict, missing: str, cells=None) -> np.ndarray:
    """log P(row | class) for every class: log sum_cells P(cell|class) prod_columns P(x_j|cell).

    A value that is not recorded contributes P(not recorded | cell) (missing="model") or 1
    ("ignore"); a recorded one contributes P(recorded | cell) P(value | cell) or P(value | cell).
    A binary column with a parent uses P(x | parent's value, cell), or with the parent not
    recorded P(x | cell) = P(parent = 1) P(x | 1) + P(parent = 0) P(x | 0).
    """
    cells = _cell_parameters(kb) if cells is None else cells
    K = len(kb.class_names)
    per_class = [[] for _ in range(K)]  # log(P(cell|class) * P(x|cell)) of each cell
    for k, w, cols in cells:
        log_terms = [math.log(w)]
        for col, (kind, m, prm) in cols.items():
            x = row[col]
            if _is_nan(x):
                prob = m if missing == "model" else 1.0
            else:
                if kind == "binary":
                    p, parent, g = prm
                    if parent is not None:
                        pv = row[parent]
                        if _is_nan(pv):
                            pp = cols[parent][2][0]
                            p = pp * g[0] + (1 - pp) * g[1]
                        else:
                            p = g[0] if pv == 1 else g[1]
                    prob = p if x == 1 else 1 - p
                elif kind == "categorical":
                    prob = prm[x]
                elif kind == "normal":
                    prob = _normal_density(x, *prm)
                else:
                    prob = _lognormal_density(x, *prm)
                if missing == "model":
                    prob *= 1 - m
            if prob <= 0:
                log_terms = None
                break
            log_terms.append(math.log(prob))
        if log_terms is not None:
            per_class[k].append(math.fsum(log_terms))
    out = np.full(K, -math.inf)
    for k, terms in enumerate(per_class):
        if terms:
            top = max(terms)
            out[k] = top + math.log(math.fsum(math.exp(t - top) for t in terms))
    return out


def _rows_as_dicts(kb, df: pd.DataFrame) -> list[dict]:
    out = []
    for _, r in df.iterrows():
        d = {}
        for col, spec in kb.columns.items():
            v = r[col]
            if pd.isna(v):
                d[col] = math.nan
            elif spec.kind == "categorical":
                d[col] = str(v)
            else:
                d[col] = float(v)
        out.append(d)
    return out


@pytest.fixture(scope="module")
def small_patients(kb):
    """20 generated patients of every class, the same 100 with 30% of entries masked at random
    (so that parents go unrecorded while children are recorded), and one empty patient."""
    df = generate_cohort(counts={k: 20 for k in kb.class_names}, random_state=2024)
    df = df[[*kb.column_names, "calcification_type"]]  # the oracle ignores the label column
    masked = df.copy()
    rng = np.random.default_rng(5)
    for col in kb.column_names:
        hide = rng.random(len(masked)) < 0.3
        masked.loc[hide, col] = np.nan
    # make sure the parent-missing, child-recorded state is present
    masked.loc[masked.index[:40], "centrilobular_ggo"] = np.nan
    masked.loc[masked.index[:40], "ground_glass_opacity"] = df["ground_glass_opacity"].iloc[:40]
    empty = df.iloc[:1].copy()
    empty.loc[:, list(kb.column_names)] = np.nan
    out = pd.concat([df, masked, empty], ignore_index=True)
    return out


@pytest.fixture(scope="module")
def reference_cells(kb):
    return _cell_parameters(kb)


@pytest.mark.parametrize("missing", ["model", "ignore"])
def test_log_likelihood_matches_slow_reference(kb, small_patients, reference_cells, missing):
    got = oracle_log_likelihood(small_patients, missing=missing).to_numpy()
    assert got.shape == (len(small_patients), len(kb.class_names))
    truth = small_patients["calcification_type"].cat.codes.to_numpy()
    n_impossible = 0
    for i, row in enumerate(_rows_as_dicts(kb, small_patients)):
        ref = reference_loglik(kb, row, missing, reference_cells)
        assert np.isfinite(ref[truth[i]]), i  # a generated patient is possible under its class
        for k in range(len(kb.class_names)):
            if math.isinf(ref[k]):
                assert got[i, k] < IMPOSSIBLE_BELOW, (i, kb.class_names[k], got[i, k])
                n_impossible += 1
            else:
                assert abs(got[i, k] - ref[k]) <= 1e-8, (i, kb.class_names[k], got[i, k], ref[k])
    assert n_impossible > 0  # the impossible branch was exercised too
    if missing == "ignore":
        assert np.abs(got[-1]).max() < 1e-12  # nothing recorded: likelihood 1 under every class


def test_posterior_matches_reference_bayes(kb, small_patients, reference_cells):
    post = oracle_proba(small_patients).to_numpy()
    prior = np.array([kb.prevalence[k] for k in kb.class_names])
    for i, row in enumerate(_rows_as_dicts(kb, small_patients.iloc[::7])):
        ref = reference_loglik(kb, row, "model", reference_cells) + np.log(prior)
        ref = np.exp(ref - ref.max())
        ref /= ref.sum()
        assert np.abs(post[7 * i] - ref).max() < 1e-9


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_pattern_of_recorded_columns_matches_the_reference(kb, small_patients, reference_cells, data):
    """Property: whatever subset of a generated patient's columns is recorded, the oracle's
    log-likelihood is the reference's (both missing modes)."""
    i = data.draw(st.integers(0, 99), label="patient")
    keep = data.draw(st.lists(st.booleans(), min_size=52, max_size=52), label="recorded")
    row = small_patients.iloc[[i]][list(kb.column_names)].copy()
    for col, k in zip(kb.column_names, keep):
        if not k:
            row[col] = np.nan
    ref_row = _rows_as_dicts(kb, row)[0]
    for missing in ("model", "ignore"):
        got = oracle_log_likelihood(row, missing=missing).to_numpy()[0]
        ref = reference_loglik(kb, ref_row, missing, reference_cells)
        finite = np.isfinite(ref)
        assert finite.any()
        assert np.abs(got[finite] - ref[finite]).max() <= 1e-8
        assert (got[~finite] < IMPOSSIBLE_BELOW).all()


# ---------------------------------------------------------------------------------------------
# Posterior properties
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mid_cohort():
    return generate_cohort(3000, random_state=31)


def test_rows_sum_to_one(mid_cohort, kb):
    for missing in ("model", "ignore"):
        post = oracle_proba(mid_cohort, missing=missing)
        assert list(post.columns) == list(kb.class_names)
        assert post.index.equals(mid_cohort.index)
        p = post.to_numpy()
        assert np.isfinite(p).all()
        assert (p >= 0).all()
        assert np.abs(p.sum(axis=1) - 1).max() < 1e-12


def test_prevalence_shifts_the_posterior_as_bayes_says(kb, mid_cohort):
    alt = {"dystrophic": 0.05, "metastatic": 0.6, "dpo_nodular": 0.1, "dpo_dendriform": 0.15, "pam": 0.1}
    default = np.array([kb.prevalence[k] for k in kb.class_names])
    shifted = np.array([alt[k] for k in kb.class_names])
    p0 = oracle_proba(mid_cohort).to_numpy()
    p1 = oracle_proba(mid_cohort, prevalence=alt).to_numpy()
    # an impossible class stays impossible, a possible one stays possible
    assert ((p0 == 0) == (p1 == 0)).all()
    # posterior odds change by the prior odds ratio, for every pair of classes
    checked = 0
    for a in range(5):
        for b in range(5):
            if a == b:
                continue
            ok = (p0[:, a] > 1e-250) & (p0[:, b] > 1e-250)
            lhs = np.log(p1[ok, a] / p1[ok, b]) - np.log(p0[ok, a] / p0[ok, b])
            rhs = np.log(shifted[a] / shifted[b]) - np.log(default[a] / default[b])
            assert np.abs(lhs - rhs).max() < 1e-9
            checked += ok.sum()
    assert checked > 1000
    # a class given no share gets no posterior
    p2 = oracle_proba(mid_cohort, prevalence={"metastatic": 0.5, "pam": 0.5}).to_numpy()
    assert (p2[:, [0, 2, 3]] == 0).all()


def test_impossible_row_is_nan_with_a_warning(kb, mid_cohort):
    df = mid_cohort.iloc[:3][list(kb.column_names)].copy()
    df.iloc[1] = np.nan
    df.loc[df.index[1], ["on_dialysis", "chronic_kidney_disease", "kidney_transplant"]] = [1, 0, 0]
    with pytest.warns(RuntimeWarning, match="impossible"):
        post = oracle_proba(df)
    assert post.iloc[1].isna().all()
    assert np.isfinite(post.iloc[[0, 2]].to_numpy()).all()
    ll = oracle_log_likelihood(df).iloc[1]
    assert (ll < IMPOSSIBLE_BELOW).all()


def test_missing_mode_is_checked(mid_cohort):
    with pytest.raises(ValueError, match="missing must be one of"):
        oracle_proba(mid_cohort.iloc[:5], missing="drop")


# ---------------------------------------------------------------------------------------------
# Must-show figures: the oracle agrees with the sampler on 200k patients
# ---------------------------------------------------------------------------------------------
def _top_label_ece(prob: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    conf = prob.max(axis=1)
    correct = prob.argmax(axis=1) == y
    which = np.minimum((conf * bins).astype(int), bins - 1)  # equal-width bins, 1.0 in the last
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


@pytest.fixture(scope="module")
def default_posterior(default_cohort):
    return oracle_proba(default_cohort).to_numpy()


def test_mean_probability_matches_class_frequency(kb, default_cohort, default_posterior):
    y = default_cohort["calcification_type"].cat.codes.to_numpy()
    n = len(y)
    p = default_posterior
    freq = np.bincount(y, minlength=5) / n
    mean_p = p.mean(axis=0)
    # sampling error of mean(1{y=k} - p_k(x)) under a calibrated posterior: sqrt(E[p(1-p)] / n)
    se = np.sqrt((p * (1 - p)).mean(axis=0) / n)
    z = bonferroni_z(5)
    print(f"\noracle on {n} default-mix patients: |mean p - freq| = {np.round(np.abs(mean_p - freq), 5)}, SE-based tolerance = {np.round(z * se, 5)}")
    assert np.abs(mean_p - freq).max() < 0.005
    assert (np.abs(mean_p - freq) <= z * se).all()


def test_top_label_calibration_and_accuracy(default_cohort, default_posterior):
    y = default_cohort["calcification_type"].cat.codes.to_numpy()
    ece = _top_label_ece(default_posterior, y)
    acc = float((default_posterior.argmax(axis=1) == y).mean())
    print(f"\noracle on {len(y)} default-mix patients: accuracy = {acc:.4f}, top-label ECE (10 bins) = {ece:.4f}")
    assert ece < 0.01
    assert 0.85 <= acc <= 0.99


def test_calibrated_under_a_dialysis_clinic_mix(kb):
    others = {k: p for k, p in kb.prevalence.items() if k != "metastatic"}
    mix = {k: 0.4 * p / sum(others.values()) for k, p in others.items()}
    mix["metastatic"] = 0.6
    n = 60_000
    df = generate_cohort(n, random_state=77, prevalence=mix)
    p = oracle_proba(df, prevalence=mix).to_numpy()
    y = df["calcification_type"].cat.codes.to_numpy()
    freq = np.bincount(y, minlength=5) / n
    gap, se = class_frequency_gap(p, y)
    z = bonferroni_z(5)
    print(f"\ndialysis-clinic mix, {n} patients: |mean p - freq| = {np.round(gap, 5)}, tolerance = {np.round(z * se, 5)}, ECE = {_top_label_ece(p, y):.4f}")
    assert (gap <= z * se).all()
    assert gap.max() < 0.005 * math.sqrt(200_000 / n)  # the must-show bound scaled to n
    assert _top_label_ece(p, y) < 0.01 * math.sqrt(200_000 / n)
    # the posterior under the default prior would fail the same check here
    default = np.array([kb.prevalence[k] for k in kb.class_names])
    shifted = np.array([mix[k] for k in kb.class_names])
    q = p * (default / shifted)[None, :]
    q /= q.sum(axis=1, keepdims=True)
    assert abs(q[:, 1].mean() - freq[1]) > z * se[1]


# ---------------------------------------------------------------------------------------------
# Weight of evidence
# ---------------------------------------------------------------------------------------------
def test_weight_of_evidence_shape_and_centring(kb, mid_cohort):
    df = mid_cohort.iloc[:500]
    ev = weight_of_evidence(df)
    assert ev.values.shape == (500, 52, 5)
    assert ev.columns == kb.column_names and ev.classes == kb.class_names
    assert np.abs(ev.values.sum(axis=2)).max() < 1e-8
    assert np.abs(ev.total.sum(axis=1)).max() < 1e-8
    assert abs(ev.base.sum()) < 1e-12
    assert np.allclose(ev.total - ev.base[None, :] - ev.values.sum(axis=1), ev.residual, atol=1e-9)
    # total is the centred exact log posterior of oracle_proba
    post = oracle_proba(df).to_numpy()
    ok = (post > 1e-300).all(axis=1)
    lp = np.log(post[ok])
    assert np.abs((lp - lp.mean(axis=1, keepdims=True)) - ev.total[ok]).max() < 1e-8
    assert ev.for_class("pam").shape == (500, 52)
    print(f"\nweight of evidence: residual share (latent subtypes) = {ev.residual_share():.4f}")


def _one_column_frame(kb, items):
    """One patient per (column, value) with only that column recorded."""
    data = {c: [np.nan] * len(items) for c in kb.column_names}
    for c, spec in kb.columns.items():
        if spec.kind == "categorical":
            data[c] = pd.Series([np.nan] * len(items), dtype=object)
    for i, (col, v) in enumerate(items):
        data[col][i] = str(v) if kb.columns[col].kind == "categorical" else float(v)
    return pd.DataFrame(data)


def test_single_recorded_column_gets_the_whole_evidence(kb):
    """With one recorded column the per-column likelihood is the exact likelihood, so
    total - base equals that column's values (and every other column contributes 0)."""
    pool = generate_cohort(counts={k: 40 for k in kb.class_names}, random_state=9)
    # candidate values of every column, then the first that is possible under every class
    candidates = [(col, v) for col in kb.column_names for v in pool[col].dropna().iloc[:25]]
    ll = oracle_log_likelihood(_one_column_frame(kb, candidates), missing="ignore").to_numpy()
    chosen = {}
    for (col, v), row_ll in zip(candidates, ll):
        if col not in chosen and (row_ll > IMPOSSIBLE_BELOW).all():
            chosen[col] = v
    assert set(chosen) == set(kb.column_names)
    items = list(chosen.items())
    ev = weight_of_evidence(_one_column_frame(kb, items), missing="ignore")
    pos = {c: j for j, c in enumerate(ev.columns)}
    for i, (col, _) in enumerate(items):
        j = pos[col]
        assert np.abs(ev.total[i] - ev.base - ev.values[i, j]).max() < 1e-9, col
        others = np.delete(ev.values[i], j, axis=0)
        assert np.abs(others).max() < 1e-12, col
        assert np.abs(ev.residual[i]).max() < 1e-9, col
