"""The sampler: reproducible, chunk invariant, typed as the contract says, and faithful to the
knowledge base's distributions within sampling error."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from _dg_stats import binomial_se, bonferroni_z, failures, within
from data_gen import BLOCK_SIZE, generate_cohort, iter_cohort

ROOT = Path(__file__).resolve().parents[2]


def _csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


# ---------------------------------------------------------------------------------------------
# Reproducibility
# ---------------------------------------------------------------------------------------------
def test_same_seed_gives_identical_frame():
    a = generate_cohort(5000, random_state=123, latent=True)
    b = generate_cohort(5000, random_state=123, latent=True)
    assert a.equals(b)
    assert _csv_bytes(a) == _csv_bytes(b)


def test_different_seeds_differ():
    a = generate_cohort(5000, random_state=123)
    b = generate_cohort(5000, random_state=124)
    assert not a.equals(b)
    # not merely a few rows: most continuous values differ
    assert (a["age_years"].to_numpy() != b["age_years"].to_numpy()).mean() > 0.9


def test_same_seed_is_identical_in_a_fresh_process():
    """No dependence on process state (hash seeds, import order, global numpy state)."""
    code = (
        "import hashlib, numpy as np; np.random.seed(99)\n"
        "from data_gen import generate_cohort\n"
        "df = generate_cohort(3000, random_state=123, latent=True)\n"
        "print(hashlib.sha256(df.to_csv(index=False).encode()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    here = hashlib.sha256(_csv_bytes(generate_cohort(3000, random_state=123, latent=True))).hexdigest()
    assert out.stdout.strip() == here


def test_seed_sequence_and_generator_are_reproducible():
    a = generate_cohort(2000, random_state=np.random.SeedSequence(42))
    b = generate_cohort(2000, random_state=np.random.SeedSequence(42))
    assert a.equals(b)
    c = generate_cohort(2000, random_state=np.random.default_rng(42))
    d = generate_cohort(2000, random_state=np.random.default_rng(42))
    assert c.equals(d)
    assert not a.equals(generate_cohort(2000, random_state=np.random.SeedSequence(43)))


# ---------------------------------------------------------------------------------------------
# Chunk invariance
# ---------------------------------------------------------------------------------------------
N_CHUNKED = 2 * BLOCK_SIZE + 4321  # spans three blocks
CHUNK_SIZES = (7777, 20_000, BLOCK_SIZE, BLOCK_SIZE + 1, N_CHUNKED + 5)


@pytest.fixture(scope="module")
def whole():
    return generate_cohort(N_CHUNKED, random_state=11, latent=True)


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_chunks_concatenate_to_the_whole_cohort_values(whole, chunk_size):
    chunks = list(iter_cohort(N_CHUNKED, chunk_size=chunk_size, random_state=11, latent=True))
    assert [len(c) for c in chunks[:-1]] == [chunk_size] * (len(chunks) - 1)
    assert sum(len(c) for c in chunks) == N_CHUNKED
    joined = pd.concat(chunks, ignore_index=True)
    assert joined.equals(whole)


def test_chunks_concatenate_to_the_whole_cohort_with_its_index(whole):
    """pd.concat(iter_cohort(...)) is the cohort itself, row labels included: a chunk's rows are
    labelled by their position in the cohort, as ``whole.iloc[a:b]`` is."""
    joined = pd.concat(iter_cohort(N_CHUNKED, chunk_size=20_000, random_state=11, latent=True))
    assert joined.index.equals(whole.index), "chunks restart their index at 0 (duplicate row labels)"
    assert joined.equals(whole)


@pytest.mark.parametrize("rows", [(0, 1), (5, 1000), (BLOCK_SIZE - 3, BLOCK_SIZE + 3), (40_000, N_CHUNKED), (N_CHUNKED, N_CHUNKED)])
def test_rows_equal_slicing_values(whole, rows):
    a, b = rows
    part = generate_cohort(N_CHUNKED, random_state=11, latent=True, rows=rows)
    assert len(part) == b - a
    assert part.reset_index(drop=True).equals(whole.iloc[a:b].reset_index(drop=True))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.integers(0, N_CHUNKED), length=st.integers(0, 3000))
def test_any_row_range_equals_slicing_values(whole, a, length):
    b = min(N_CHUNKED, a + length)
    part = generate_cohort(N_CHUNKED, random_state=11, latent=True, rows=(a, b))
    assert part.reset_index(drop=True).equals(whole.iloc[a:b].reset_index(drop=True))


def test_rows_equal_slicing_with_index(whole):
    a, b = 5, 1000
    part = generate_cohort(N_CHUNKED, random_state=11, latent=True, rows=(a, b))
    assert part.index.equals(whole.iloc[a:b].index), "rows=(a, b) is labelled 0..b-a, not a..b"
    assert part.equals(whole.iloc[a:b])


def test_chunks_and_rows_with_counts(kb):
    counts = {"dystrophic": 30_000, "metastatic": 20_000, "dpo_nodular": 10_000, "dpo_dendriform": 7000, "pam": 3000}
    n = sum(counts.values())
    full = generate_cohort(counts=counts, random_state=5, latent=True)
    assert len(full) == n > 2 * BLOCK_SIZE
    for chunk_size in (9999, BLOCK_SIZE + 7):
        joined = pd.concat(iter_cohort(n, chunk_size=chunk_size, counts=counts, random_state=5, latent=True), ignore_index=True)
        assert joined.equals(full)
    part = generate_cohort(counts=counts, random_state=5, latent=True, rows=(BLOCK_SIZE - 10, BLOCK_SIZE + 500))
    assert part.reset_index(drop=True).equals(full.iloc[BLOCK_SIZE - 10: BLOCK_SIZE + 500].reset_index(drop=True))


def test_latent_flag_does_not_change_the_patients():
    a = generate_cohort(3000, random_state=8, latent=True)
    b = generate_cohort(3000, random_state=8, latent=False)
    assert a[b.columns].equals(b)


# ---------------------------------------------------------------------------------------------
# Class mix
# ---------------------------------------------------------------------------------------------
def test_counts_mode_gives_exact_numbers(kb):
    counts = {"dystrophic": 123, "metastatic": 0, "dpo_nodular": 4567, "pam": 89}
    df = generate_cohort(counts=counts, random_state=3)
    got = df["calcification_type"].value_counts()
    for k in kb.class_names:
        assert got[k] == counts.get(k, 0)
    assert len(df) == sum(counts.values())
    # shuffled, not blocks of one class
    codes = df["calcification_type"].cat.codes.to_numpy()
    assert (np.diff(codes) != 0).sum() > 100
    assert len(generate_cohort(4779, counts=counts, random_state=3)) == 4779


def test_prevalence_override_matches_within_binomial_error(kb):
    mix = {"dystrophic": 0.1, "metastatic": 0.6, "dpo_nodular": 0.15, "dpo_dendriform": 0.1, "pam": 0.05}
    n = 100_000
    df = generate_cohort(n, random_state=17, prevalence=mix)
    freq = df["calcification_type"].value_counts(normalize=True)
    z = bonferroni_z(len(mix))  # 5 comparisons
    for k, p in mix.items():
        assert within(freq[k], p, binomial_se(p, n), z), (k, freq[k], p)


def test_default_mix_matches_kb_prevalence(kb, default_cohort):
    n = len(default_cohort)
    freq = default_cohort["calcification_type"].value_counts(normalize=True)
    z = bonferroni_z(len(kb.class_names))
    for k, p in kb.prevalence.items():
        assert within(freq[k], p, binomial_se(p, n), z), (k, freq[k], p)


def test_zero_share_class_never_appears():
    df = generate_cohort(50_000, random_state=2, prevalence={"metastatic": 0.5, "pam": 0.5})
    assert set(df["calcification_type"].unique()) == {"metastatic", "pam"}
    assert df["calcification_type"].notna().all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": -1}, r"n must be a non-negative integer"),
        ({"n": 2.5}, r"n must be a non-negative integer"),
        ({"n": True}, r"n must be a non-negative integer"),
        ({}, r"n is required"),
        ({"n": 10, "prevalence": {"dystrophic": 0.5, "metastatic": 0.4}}, r"must sum to 1"),
        ({"n": 10, "prevalence": {"dystrophic": 1.2, "metastatic": -0.2}}, r"'metastatic' must be a finite number >= 0"),
        ({"n": 10, "prevalence": {"foo": 1.0}}, r"unknown classes \['foo'\]"),
        ({"n": 10, "prevalence": [0.2] * 5}, r"prevalence must be a mapping"),
        ({"counts": {"bar": 3}}, r"unknown classes \['bar'\]"),
        ({"counts": {"pam": -3}}, r"counts\['pam'\] must be a non-negative integer"),
        ({"counts": {"pam": 3}, "prevalence": {"pam": 1.0}}, r"either prevalence or counts"),
        ({"n": 5, "counts": {"pam": 3}}, r"n=5 does not equal the sum of counts \(3\)"),
        ({"n": 10, "random_state": -1}, r"random_state must be"),
        ({"n": 10, "random_state": "abc"}, r"random_state must be"),
        ({"n": 10, "random_state": 1.5}, r"random_state must be"),
        ({"n": 10, "rows": (5, 11)}, r"rows must be \(start, stop\)"),
        ({"n": 10, "rows": (6, 5)}, r"rows must be \(start, stop\)"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs, message):
    n = kwargs.pop("n", None)
    with pytest.raises(ValueError, match=message):
        generate_cohort(n, **kwargs)


def test_iter_cohort_rejects_bad_chunk_size():
    with pytest.raises(ValueError, match="chunk_size"):
        list(iter_cohort(10, chunk_size=0, random_state=1))


# ---------------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------------
def test_dtypes_and_values_follow_the_contract(kb):
    df = generate_cohort(20_000, random_state=4)
    assert list(df.columns) == [*kb.column_names, "calcification_type"]
    for col, spec in kb.columns.items():
        s = df[col]
        if spec.kind == "binary":
            assert s.dtype == "Int8", col
            assert set(s.dropna().unique()) <= {0, 1}, col
        elif spec.kind == "categorical":
            assert isinstance(s.dtype, pd.CategoricalDtype), col
            assert list(s.cat.categories) == list(spec.levels), col
        else:
            assert s.dtype == np.float64, col
            x = s.dropna().to_numpy()
            assert np.isfinite(x).all(), col
            if spec.min is not None:
                assert (x > spec.min).all() if spec.min_exclusive else (x >= spec.min).all(), col
            if spec.max is not None:
                assert (x <= spec.max).all(), col
        assert s.notna().any(), col
    assert isinstance(df["calcification_type"].dtype, pd.CategoricalDtype)
    assert list(df["calcification_type"].cat.categories) == list(kb.class_names)
    assert df["calcification_type"].notna().all()
    assert not any(c.startswith("latent_") for c in df.columns)


def test_latent_columns_only_on_request(kb):
    df = generate_cohort(20_000, random_state=4, latent=True)
    extra = [c for c in df.columns if c not in kb.column_names and c != "calcification_type"]
    assert extra and all(c.startswith("latent_") for c in extra)
    factor_names = {f.name for cls in kb.classes.values() for f in cls.factors}
    assert {c.removeprefix("latent_") for c in extra} == factor_names
    for c in extra:
        assert isinstance(df[c].dtype, pd.CategoricalDtype)
        fname = c.removeprefix("latent_")
        for k, cls in kb.classes.items():
            rows = df["calcification_type"] == k
            has = any(f.name == fname for f in cls.factors)
            if has:
                levels = next(f.levels for f in cls.factors if f.name == fname)
                assert df.loc[rows, c].notna().all(), (k, c)
                assert set(df.loc[rows, c].unique()) <= set(levels)
            else:
                assert df.loc[rows, c].isna().all(), (k, c)


def test_empty_cohort_keeps_the_schema(kb):
    df = generate_cohort(0, random_state=1)
    ref = generate_cohort(10, random_state=1)
    assert df.shape == (0, 53)
    assert (df.dtypes == ref.dtypes).all()


# ---------------------------------------------------------------------------------------------
# Fidelity to the knowledge base (counts mode: 60k patients of every class)
# ---------------------------------------------------------------------------------------------
def _class_weights(kb, k):
    idx = kb.cells.class_cells(k)
    return idx, kb.cells.cell_prob[idx]


def test_binary_frequencies_and_missing_rates_match_the_kb(kb, counts_cohort):
    """For every (class, binary column): P(x = 1 | recorded, class) and P(not recorded | class)
    as implied by the cells, vs the generated frequencies, within z binomial SEs.

    P(x = 1 | recorded, class) = sum_c w_c (1 - m_c) p_c / sum_c w_c (1 - m_c), which is the
    plain sum_c w_c p_c wherever the missing rate m_c does not vary across the class's cells.
    """
    t = kb.cells
    pm = t.p_marginal()
    labels = counts_cohort["calcification_type"].to_numpy()
    checks = []
    for k, name in enumerate(kb.class_names):
        idx, w = _class_weights(kb, k)
        sub = counts_cohort.loc[labels == name]
        n_k = len(sub)
        for j, col in enumerate(t.binary):
            m = t.binary_missing[j, idx]
            keep = w * (1 - m)
            exp_missing = float(w @ m)
            exp_one = float(keep @ pm[j, idx] / keep.sum()) if keep.sum() > 0 else np.nan
            vals = sub[col]
            na = vals.isna().to_numpy()
            n_rec = int((~na).sum())
            obs_missing = na.mean()
            checks.append((name, col, "missing", obs_missing, exp_missing, binomial_se(exp_missing, n_k)))
            if n_rec:
                obs_one = float((vals.dropna().to_numpy() == 1).mean())
                checks.append((name, col, "P(1)", obs_one, exp_one, binomial_se(exp_one, n_rec)))
    # 5 classes x 44 columns x 2 = 440 comparisons; Bonferroni at family alpha 0.001 gives z ~ 4.8
    z = bonferroni_z(len(checks))
    bad = failures(checks, z, "binary fidelity")
    assert not bad, bad


def test_categorical_levels_and_missing_rates_match_the_kb(kb, counts_cohort):
    t = kb.cells
    labels = counts_cohort["calcification_type"].to_numpy()
    checks = []
    for k, name in enumerate(kb.class_names):
        idx, w = _class_weights(kb, k)
        sub = counts_cohort.loc[labels == name]
        for j, col in enumerate(t.categorical):
            m = t.cat_missing[j, idx]
            keep = w * (1 - m)
            probs = keep @ t.cat_probs[j][idx] / keep.sum()
            exp_missing = float(w @ m)
            vals = sub[col]
            checks.append((name, col, "NA", vals.isna().mean(), exp_missing, binomial_se(exp_missing, len(sub))))
            rec = vals.dropna()
            for lv, p in zip(t.cat_levels[j], probs):
                checks.append((name, col, lv, float((rec == lv).mean()), float(p), binomial_se(float(p), len(rec))))
    z = bonferroni_z(len(checks))  # 5 classes x (3 + 4) = 35 comparisons: z ~ 4.0
    bad = failures(checks, z, "categorical fidelity")
    assert not bad, bad


def test_latent_factor_levels_match_their_probabilities(kb, counts_cohort):
    labels = counts_cohort["calcification_type"].to_numpy()
    checks = []
    for name, cls in kb.classes.items():
        sub = counts_cohort.loc[labels == name]
        for f in cls.factors:
            vals = sub["latent_" + f.name]
            assert vals.notna().all()
            for lv, p in zip(f.levels, f.probs):
                checks.append((name, f.name, lv, float((vals == lv).mean()), p, binomial_se(p, len(sub))))
    z = bonferroni_z(len(checks))
    bad = failures(checks, z, "latent factor fidelity")
    assert not bad, bad


def _mixture_cdf(kb, k, j, x):
    """P(X <= x | recorded, class k) for continuous column j under the knowledge base."""
    t = kb.cells
    idx, w = _class_weights(kb, k)
    keep = w * (1 - t.cont_missing[j, idx])
    prm = t.cont_params[j]
    lo, hi = t.cont_bounds[j]
    if t.cont_dist[j] == "normal":
        mu, sd = prm["mean"][idx], prm["sd"][idx]
        a, b = ndtr((lo - mu) / sd), ndtr((hi - mu) / sd)
        cdf = (ndtr((np.clip(x, lo, hi) - mu) / sd) - a) / (b - a)
    else:
        med, gsd, zero = prm["median"][idx], prm["gsd"][idx], prm["zero"][idx]
        cdf = zero + (1 - zero) * (ndtr((np.log(x) - np.log(med)) / np.log(gsd)) if x > 0 else 0.0)
    return float(keep @ cdf / keep.sum())


def test_continuous_distributions_match_the_kb(kb, counts_cohort):
    """Empirical CDF at fixed points vs the KB's mixture CDF (truncated normal or zero-inflated
    log-normal per cell), and the missing rate; each a binomial frequency."""
    t = kb.cells
    # evaluation points from an independent cohort, so they do not depend on the tested data
    ref = generate_cohort(counts={k: 5000 for k in kb.class_names}, random_state=99)
    labels = counts_cohort["calcification_type"].to_numpy()
    ref_labels = ref["calcification_type"].to_numpy()
    checks = []
    for k, name in enumerate(kb.class_names):
        idx, w = _class_weights(kb, k)
        sub = counts_cohort.loc[labels == name]
        for j, col in enumerate(t.continuous):
            exp_missing = float(w @ t.cont_missing[j, idx])
            vals = sub[col].to_numpy()
            na = np.isnan(vals)
            checks.append((name, col, "NA", na.mean(), exp_missing, binomial_se(exp_missing, len(vals))))
            rec = vals[~na]
            if len(rec) == 0:
                continue
            pts = list(np.nanquantile(ref.loc[ref_labels == name, col].to_numpy(dtype=float), [0.05, 0.25, 0.5, 0.75, 0.95]))
            if t.cont_dist[j] == "lognormal":
                pts.append(0.0)  # the point mass at zero (pack-years) and nothing at or below zero otherwise
            for x in pts:
                p = _mixture_cdf(kb, k, j, x)
                checks.append((name, col, f"F({x:.3g})", float((rec <= x).mean()), p, binomial_se(p, len(rec))))
    z = bonferroni_z(len(checks))
    bad = failures(checks, z, "continuous fidelity")
    assert not bad, bad


# ---------------------------------------------------------------------------------------------
# Declared impossible combinations
# ---------------------------------------------------------------------------------------------
def _constraint_rows(df, con):
    cols = [*con.if_, *con.then]
    recorded = df[cols].notna().all(axis=1).to_numpy()
    holds = np.ones(len(df), dtype=bool)
    for c, v in con.if_.items():
        holds &= (df[c] == v).fillna(False).to_numpy()
    return recorded & holds


@pytest.mark.parametrize("which", ["counts", "default"])
def test_declared_impossible_combinations_never_occur(kb, counts_cohort, default_cohort, which):
    df = counts_cohort if which == "counts" else default_cohort
    assert len(kb.constraints) >= 3
    for con in kb.constraints:
        rows = _constraint_rows(df, con)
        for c, v in con.then.items():
            violations = int((df.loc[rows, c] != v).sum())
            assert violations == 0, f"{con.name!r}: {violations} rows with {dict(con.if_)} and {c} != {v}"


def test_declared_constraints_are_exercised(kb, counts_cohort):
    """The `if` part of every constraint occurs, so the check above is not vacuous."""
    for con in kb.constraints:
        n_if = int(_constraint_rows(counts_cohort, con).sum())
        assert n_if >= 100, f"{con.name!r}: its condition {dict(con.if_)} occurs only {n_if} times"


def test_dialysis_without_kidney_disease_never_generated(counts_cohort):
    df = counts_cohort
    bad = (df["on_dialysis"] == 1) & (df["chronic_kidney_disease"] == 0) & (df["kidney_transplant"] == 0)
    assert int(bad.fillna(False).sum()) == 0
