"""Recording regimes: the sampler blanks only what the regime says, and the oracle stays exact
under every regime (a slow per-cell reference, and calibration against 150k sampled patients)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from _dg_stats import binomial_se, bonferroni_z, class_frequency_gap
from data_gen import RecordingRegime, generate_cohort, oracle_log_likelihood, oracle_proba, resolve_recording
from data_gen.knowledge import recording_value_keys
from test_oracle import IMPOSSIBLE_BELOW, _cell_parameters, _lognormal_density, _normal_density, _top_label_ece


def _random_regime(kb, seed=0) -> RecordingRegime:
    """A regime whose rates differ by column and value (and are far from 0 and 1)."""
    rng = np.random.default_rng(seed)
    t = kb.cells
    return RecordingRegime(
        "random",
        rng.uniform(0.1, 1.0, (len(t.binary), 2)),
        tuple(rng.uniform(0.2, 1.0, len(lv)) for lv in t.cat_levels),
        rng.uniform(0.1, 1.0, (len(t.continuous), 2)),
    )


@pytest.fixture(scope="module")
def regime(kb):
    return _random_regime(kb)


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, message",
    [
        (0.0, r"in \(0, 1\]; got 0.0"),
        (1.5, r"in \(0, 1\]; got 1.5"),
        (True, "must be None, 'complete', a number"),
        ("case-report", r"unknown recording regime 'case-report'; expected one of: complete, .*'case_report'"),
        ([0.5], r"a recording mixture is a list of \(regime, weight\) pairs; item 0 is 0.5"),
        ([("complete", 0.5), (0.3, 0.4)], "must sum to 1, got 0.9"),
        ([("complete", 0.5), (0.3, -0.5)], r"weight of mixture item 1 \(0.3\) must be a number in \(0, 1\]"),
        ([([("complete", 1.0)], 1.0)], "components must be single regimes"),
    ],
)
def test_bad_recording_is_refused_by_name(kb, bad, message):
    with pytest.raises(ValueError, match=message):
        resolve_recording(bad, kb)
    with pytest.raises(ValueError, match=message):
        generate_cohort(10, random_state=0, recording=bad)


def test_regime_for_other_columns_is_refused(kb):
    wrong = RecordingRegime("short", np.ones((3, 2)), (), np.ones((1, 2)))
    with pytest.raises(ValueError, match="compiled for a knowledge base with other columns"):
        resolve_recording(wrong, kb)


def test_regime_of_another_knowledge_base_is_refused(kb, tmp_path):
    """Same shapes, other column order: the rates would land on the wrong columns."""
    text = (kb.path).read_text(encoding="utf-8").replace("transplant ⇒", "transplant =>")
    text += "\n# another knowledge base\n"
    other = tmp_path / "other.toml"
    other.write_text(text, encoding="utf-8")
    from data_gen import load_knowledge

    foreign = resolve_recording("case_report", load_knowledge(other))
    with pytest.raises(ValueError, match=r"was compiled for knowledge base \w{12}, not for this one"):
        generate_cohort(10, random_state=0, recording=foreign, knowledge=kb)


@pytest.mark.parametrize("bad", [1.5, -0.2, np.nan])
def test_hand_built_rates_outside_0_1_are_refused(kb, regime, bad):
    binary = regime.binary.copy()
    binary[3, 0] = bad
    wrong = RecordingRegime("hand", binary, regime.categorical, regime.continuous)
    col = kb.cells.binary[3]
    with pytest.raises(ValueError, match=rf"the rate of {col} = present is .*; a rate is a probability in \[0, 1\]"):
        oracle_proba(generate_cohort(5, random_state=0), recording=wrong)


def test_a_bool_weight_stays_refused_after_the_same_mixture_with_1(kb):
    df = generate_cohort(5, random_state=0)
    oracle_proba(df, recording=[("complete", 1)])
    with pytest.raises(ValueError, match="weight of mixture item 0"):
        oracle_proba(df, recording=[("complete", True)])


def test_ignore_mode_refuses_a_regime():
    df = generate_cohort(5, random_state=0)
    with pytest.raises(ValueError, match="only missing='model' uses"):
        oracle_proba(df, missing="ignore", recording=0.5)


def test_case_report_regime_is_declared_for_every_column_and_value(kb):
    decl = kb.recording["case_report"]
    assert decl.source.kind == "published_cases"
    for col, spec in kb.columns.items():
        assert set(decl.rates[col]) == set(recording_value_keys(spec))
    reg = resolve_recording("case_report", kb)
    assert not reg.is_complete
    # what the regime is for: reports mention a present finding more often than an absent one
    present_gt_absent = (reg.binary[:, 0] > reg.binary[:, 1]).mean()
    assert present_gt_absent > 0.9


# ---------------------------------------------------------------------------------------------
# The sampler
# ---------------------------------------------------------------------------------------------
def test_complete_regime_is_the_default_cohort_byte_for_byte():
    base = generate_cohort(3000, random_state=8)
    for rec in ("complete", 1.0, 1):
        pd.testing.assert_frame_equal(generate_cohort(3000, random_state=8, recording=rec), base)


@pytest.mark.parametrize("recording", [0.3, "case_report"])
def test_a_regime_only_blanks_cells_of_the_same_patients(kb, recording):
    full = generate_cohort(4000, random_state=21)
    masked = generate_cohort(4000, random_state=21, recording=recording)
    cols = list(kb.column_names)
    pd.testing.assert_series_equal(masked["calcification_type"], full["calcification_type"])
    kept = masked[cols].notna()
    assert (full[cols].notna() | ~kept).all().all()  # nothing appears that was not recorded
    for col in cols:
        a, b = masked.loc[kept[col], col], full.loc[kept[col], col]
        assert (a.astype(object) == b.astype(object)).all(), col
    assert kept.to_numpy().sum() < full[cols].notna().to_numpy().sum()


def test_regime_rows_and_chunks_are_invariant(regime):
    n = 70_000  # three sampler blocks
    whole = generate_cohort(n, random_state=5, recording=regime)
    part = generate_cohort(n, random_state=5, recording=regime, rows=(32_000, 33_500))
    pd.testing.assert_frame_equal(part, whole.iloc[32_000:33_500])


def test_mcar_keeps_each_recorded_value_with_its_rate(kb):
    n, q = 60_000, 0.35
    full = generate_cohort(n, random_state=13)
    masked = generate_cohort(n, random_state=13, recording=q)
    cols = list(kb.column_names)
    held = full[cols].notna().to_numpy()
    kept = masked[cols].notna().to_numpy()
    z = bonferroni_z(len(cols))
    for j, col in enumerate(cols):
        m = held[:, j].sum()
        if m:
            assert abs(kept[:, j].sum() / m - q) <= z * binomial_se(q, m), col


def test_case_report_rates_are_the_declared_ones(kb):
    """Per binary column and value: reported / held by the complete record = the declared rate."""
    n = 150_000
    full = generate_cohort(n, random_state=31)
    masked = generate_cohort(n, random_state=31, recording="case_report")
    rates = kb.recording["case_report"].rates
    checks = []
    for col in kb.cells.binary:
        for key, v in (("present", 1), ("absent", 0)):
            held = (full[col] == v).fillna(False).to_numpy()
            if held.sum() < 200:
                continue
            kept = masked[col].notna().to_numpy() & held
            checks.append((col, key, kept.sum() / held.sum(), rates[col][key], held.sum()))
    z = bonferroni_z(len(checks))
    for col, key, got, want, m in checks:
        assert abs(got - want) <= z * binomial_se(want, m), (col, key, got, want)
    assert len(checks) > 40


# ---------------------------------------------------------------------------------------------
# The oracle: a slow reference that sums over each column's true value
# ---------------------------------------------------------------------------------------------
def _reported(state, value, m, rate) -> float:
    """P(state | value) for a binary value: state 1/0 reported, NaN not reported."""
    if state is None:
        return m + (1 - m) * (1 - rate[0 if value == 1 else 1])
    return (1 - m) * rate[0 if value == 1 else 1] if state == value else 0.0


def regime_reference_loglik(kb, row: dict, reg: RecordingRegime, cells) -> np.ndarray:
    """log P(reported row | class), summing every unobserved truth explicitly, cell by cell."""
    t = kb.cells
    bpos = {c: j for j, c in enumerate(t.binary)}
    cpos = {c: j for j, c in enumerate(t.categorical)}
    npos = {c: j for j, c in enumerate(t.continuous)}
    K = len(kb.class_names)
    per_class = [[] for _ in range(K)]
    children = {}
    for col, (kind, m, prm) in cells[0][2].items():
        if kind == "binary" and prm[1] is not None:
            children[prm[1]] = col
    for k, w, cols in cells:
        total = math.log(w)
        ok = True
        for col, (kind, m, prm) in cols.items():
            x = row[col]
            x = None if x is None or (isinstance(x, float) and math.isnan(x)) else x
            if kind == "binary":
                p, parent, g = prm
                if parent is not None:
                    continue  # handled with its parent
                rate = reg.binary[bpos[col]]
                if col in children:
                    child = children[col]
                    cm, (_, _, cg) = cols[child][1], cols[child][2]
                    crate = reg.binary[bpos[child]]
                    cx = row[child]
                    cx = None if cx is None or (isinstance(cx, float) and math.isnan(cx)) else cx
                    prob = 0.0
                    for pv in (1, 0):
                        for cv in (1, 0):
                            pc = cg[0] if pv == 1 else cg[1]
                            prob += ((p if pv else 1 - p) * _reported(x, pv, m, rate)
                                     * (pc if cv else 1 - pc) * _reported(cx, cv, cm, crate))
                else:
                    prob = sum((p if v else 1 - p) * _reported(x, v, m, rate) for v in (1, 0))
            elif kind == "categorical":
                rate = dict(zip(kb.columns[col].levels, reg.categorical[cpos[col]]))
                if x is None:
                    prob = m + (1 - m) * sum(prm[lv] * (1 - rate[lv]) for lv in prm)
                else:
                    prob = (1 - m) * prm[x] * rate[x]
            else:
                r_pos, r_zero = reg.continuous[npos[col]]
                zero = prm[2] if kind == "lognormal" else 0.0
                if x is None:
                    prob = m + (1 - m) * ((1 - zero) * (1 - r_pos) + zero * (1 - r_zero))
                else:
                    dens = _normal_density(x, *prm) if kind == "normal" else _lognormal_density(x, *prm)
                    prob = (1 - m) * dens * (r_zero if x == 0 else r_pos)
            if prob <= 0:
                ok = False
                break
            total += math.log(prob)
        if ok:
            per_class[k].append(total)
    out = np.full(K, -math.inf)
    for k, terms in enumerate(per_class):
        if terms:
            top = max(terms)
            out[k] = top + math.log(math.fsum(math.exp(v - top) for v in terms))
    return out


def test_oracle_matches_the_slow_reference_under_a_value_dependent_regime(kb, regime):
    df = generate_cohort(counts={k: 12 for k in kb.class_names}, random_state=99, recording=regime)
    # the states that make a parent-conditioned child subtle: parent blank, child reported
    df.loc[df.index[:20], "centrilobular_ggo"] = pd.NA
    got = oracle_log_likelihood(df, recording=regime).to_numpy()
    cells = _cell_parameters(kb)
    rows = df[list(kb.column_names)].astype(object).where(df[list(kb.column_names)].notna(), None)
    n_impossible = 0
    for i, (_, r) in enumerate(rows.iterrows()):
        row = {c: (float(v) if isinstance(v, (int, float, np.integer, np.floating)) else v) for c, v in r.items()}
        ref = regime_reference_loglik(kb, row, regime, cells)
        for k in range(len(kb.class_names)):
            if math.isinf(ref[k]):
                assert got[i, k] < IMPOSSIBLE_BELOW
                n_impossible += 1
            else:
                assert abs(got[i, k] - ref[k]) <= 1e-8, (i, k, got[i, k], ref[k])
    assert n_impossible > 0


MIXTURE = [("complete", 0.3), ("case_report", 0.3), (0.5, 0.2), (0.15, 0.2)]


def test_mixture_draws_each_component_with_its_weight(kb):
    n = 40_000
    mixed = generate_cohort(n, random_state=3, recording=MIXTURE)
    full = generate_cohort(n, random_state=3)
    cols = list(kb.column_names)
    share = mixed[cols].notna().sum(axis=1) / full[cols].notna().sum(axis=1)
    # complete records keep everything: their share is the mixture weight of "complete"
    whole = float((share == 1).mean())
    assert abs(whole - 0.3) <= 5 * binomial_se(0.3, n)
    with pytest.raises(ValueError, match="is a mixture: weight_of_evidence and oracle_shapley explain under a single regime"):
        from data_gen import weight_of_evidence

        weight_of_evidence(mixed.head(), recording=MIXTURE)


@pytest.mark.parametrize("recording", [0.15, "case_report", "random", "mixture"])
def test_oracle_is_calibrated_under_each_regime(kb, regime, recording):
    rec = {"random": regime, "mixture": MIXTURE}.get(recording, recording)
    n = 150_000
    df = generate_cohort(n, random_state=2718, recording=rec)
    p = oracle_proba(df, recording=rec).to_numpy()
    y = df["calcification_type"].cat.codes.to_numpy()
    gap, se = class_frequency_gap(p, y)
    assert (gap <= bonferroni_z(5) * se).all(), (gap, se)
    assert _top_label_ece(p, y) < 0.01
    # ignoring the regime (blanks as in complete records) is measurably worse
    ll = -np.log(p[np.arange(n), y]).mean()
    naive = oracle_proba(df, missing="ignore").to_numpy()
    ll_naive = -np.log(np.clip(naive[np.arange(n), y], 1e-300, None)).mean()
    assert ll < ll_naive
