"""next_best_findings: expected information gain under the exact oracle, checked by brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import lognorm

from data_gen import generate_cohort, load_knowledge, next_best_findings, oracle_log_likelihood, oracle_proba
from data_gen.next_best import continuous_grid

KB = load_knowledge()
CLASSES = list(KB.class_names)
# columns whose structural missingness differs between cells: measuring them is not the same
# as recording them, so the plain-oracle brute force below does not apply to them
CELL_VARYING_MISSING = {"slc34a2_variant", "bone_scan_lung_uptake", "lesion_size_mm"}


def _patient(**values) -> pd.DataFrame:
    return pd.DataFrame([values]).reindex(columns=list(KB.column_names))


def _entropy(p) -> float:
    p = np.asarray(p, dtype=float)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


SPARSE = _patient(age_years=60, sex="female", zone="lower", calcified_nodules=1, lesion_size_mm=3.0)
RENAL = _patient(sex="male", chronic_kidney_disease=1, ground_glass_opacity=1, serum_calcium_mg_dl=10.5)


def _brute_force_gain(patient: pd.DataFrame, column: str, recording) -> float:
    """Mutual information from one oracle call per outcome (discrete) or a 20x finer grid.

    Under MCAR recording and a column whose structural missingness is the same in every cell,
    "measured" equals "recorded" up to a constant factor that cancels, so the plain oracle gives
    the truth: P(v | x_-j) ∝ Σ_k prior_k P(x_-j, v | k), today = oracle_proba(patient).
    """
    spec = KB.columns[column]
    prior = np.array([KB.prevalence[k] for k in CLASSES])
    if spec.kind == "binary":
        values, logw = [1.0, 0.0], np.zeros(2)
    elif spec.kind == "categorical":
        values, logw = list(spec.levels), np.zeros(len(spec.levels))
    else:
        nodes, weights, has_zero = continuous_grid(column, KB, step_sd=0.05)
        values = ([0.0] if has_zero else []) + list(nodes)
        logw = np.log(np.concatenate([[1.0] if has_zero else [], weights]))
    rows = []
    for v in values:  # a plain loop: the brute force does not share the vectorized path
        r = patient.copy()
        r[column] = pd.Series([v], dtype=object if spec.kind == "categorical" else float).values
        rows.append(r)
    hyp = pd.concat(rows, ignore_index=True)
    ll = oracle_log_likelihood(hyp, recording=recording).to_numpy() + np.log(prior)
    m = ll.max()
    joint = np.exp(ll - m) * np.exp(logw)[:, None]  # (outcomes, classes), up to a constant
    p_out = joint.sum(axis=1) / joint.sum()
    post = joint / joint.sum(axis=1, keepdims=True)
    now = oracle_proba(patient, recording=recording).to_numpy()[0]
    return _entropy(now) - float(sum(pv * _entropy(q) for pv, q in zip(p_out, post)))


@pytest.fixture(scope="module")
def renal_mcar():
    return next_best_findings(RENAL, recording=0.5)


def test_against_brute_force(renal_mcar):
    nb = renal_mcar.set_index("column")
    checked = 0
    for column in nb.index:
        if column in CELL_VARYING_MISSING:
            continue
        kind = KB.columns[column].kind
        if kind != "continuous" and column not in {"sex", "zone", "on_dialysis", "prior_granulomatous_infection", "dense_calcification", "centrilobular_ggo", "family_history_pam"}:
            continue  # a sample of the discrete columns keeps the loop short; every continuous one
        truth = _brute_force_gain(RENAL, column, 0.5)
        tol = 1e-3 if kind == "continuous" else 1e-9
        assert nb.loc[column, "expected_information_gain_bits"] == pytest.approx(truth, abs=tol), column
        checked += 1
    assert checked == 4 + 6  # age, pack-years, phosphate, PTH; six discrete (sex is recorded)


def test_recorded_columns_never_appear_and_gains_are_bounded(renal_mcar):
    recorded = {c for c in KB.column_names if RENAL[c].notna().iloc[0]}
    listed = set(renal_mcar["column"])
    assert listed == set(KB.column_names) - recorded
    g = renal_mcar["expected_information_gain_bits"].to_numpy()
    h = renal_mcar["entropy_now_bits"].to_numpy()
    assert (g >= 0).all() and (g <= h + 1e-12).all()
    assert (np.diff(g) <= 1e-15).all()  # best first
    # the law of total probability: the outcomes' posteriors average to today's posterior
    for _, r in renal_mcar.iterrows():
        assert sum(r["outcome_probabilities"]) == pytest.approx(1.0, abs=1e-9)
        avg = sum(p * np.array([q[k] for k in CLASSES]) for p, q in zip(r["outcome_probabilities"], r["posterior_after"]))
        assert avg == pytest.approx([r["posterior_now"][k] for k in CLASSES], abs=1e-9)


def _summed_out(patient, column, recording) -> list[float]:
    mask = pd.DataFrame({column: [True]})
    ll = oracle_log_likelihood(patient, recording=recording, measured=mask).to_numpy()[0]
    a = ll + np.log([KB.prevalence[k] for k in CLASSES])
    return (np.exp(a - a.max()) / np.exp(a - a.max()).sum()).tolist()


@pytest.mark.parametrize("recording", [0.5, "case_report"])
def test_today_is_the_oracle_without_the_columns_blank(recording):
    """Measuring a column replaces its own blank: today's term is the oracle with that column
    summed out. Under MCAR that is oracle_proba for an ordinary column, but not for the SLC34A2
    test, whose blank (test not done) is evidence; under the case-report regime every blank is
    some evidence (absent findings are reported less often than present ones)."""
    nb = next_best_findings(SPARSE, recording=recording).set_index("column")
    plain = oracle_proba(SPARSE, recording=recording).iloc[0].tolist()
    for column in ("chronic_heart_failure", "slc34a2_variant", "pth_pg_ml"):
        now = [nb.loc[column, "posterior_now"][k] for k in CLASSES]
        assert now == pytest.approx(_summed_out(SPARSE, column, recording), abs=1e-6), column
    heart = [nb.loc["chronic_heart_failure", "posterior_now"][k] for k in CLASSES]
    if recording == 0.5:
        assert heart == pytest.approx(plain, abs=1e-9)
    else:
        assert max(abs(a - b) for a, b in zip(heart, plain)) > 1e-3
    # where PAM is in play, the test's blank moves it: measuring counts it in neither term
    pam_like = _patient(micronodules=1, zone="lower")
    slc = next_best_findings(pam_like, recording=recording).set_index("column").loc["slc34a2_variant", "posterior_now"]
    plain_pam = oracle_proba(pam_like, recording=recording).iloc[0]["pam"]
    assert abs(slc["pam"] - plain_pam) > 2e-4  # the test is not done in 93 % vs 98 % of cells


def test_measured_semantics_per_cell():
    """oracle_log_likelihood(measured=) against a per-cell computation from the cell table:
    a measured value contributes P(value | cell) without missingness or recording rate."""
    q = 0.5
    x = _patient(calcified_nodules=1, slc34a2_variant=0, lesion_size_mm=3.0)
    mask = pd.DataFrame({"slc34a2_variant": [True], "lesion_size_mm": [True]})
    got = oracle_log_likelihood(x, recording=q, measured=mask).iloc[0].to_numpy()
    t = KB.cells
    blank = lambda miss: np.log(miss + (1 - miss) * (1 - q))  # noqa: E731 (MCAR: value-independent)
    ll = np.zeros(t.n_cells)
    for j, col in enumerate(t.binary):
        if col == "calcified_nodules":
            with np.errstate(divide="ignore"):  # no calcified nodules in some cells
                ll += np.log(t.p1[j] * (1 - t.binary_missing[j]) * q)
        elif col == "slc34a2_variant":
            ll += np.log(1 - t.p1[j])
        else:
            ll += blank(t.binary_missing[j])
    for j in range(len(t.categorical)):
        ll += blank(t.cat_missing[j])
    for j, col in enumerate(t.continuous):
        if col == "lesion_size_mm":
            prm = t.cont_params[j]
            ll += np.log((1 - prm["zero"]) * lognorm.pdf(3.0, s=np.log(prm["gsd"]), scale=prm["median"]))
        else:
            ll += blank(t.cont_missing[j])
    want = [np.logaddexp.reduce(ll[t.class_cells(k)] + np.log(t.cell_prob[t.class_cells(k)])) for k in range(len(CLASSES))]
    assert got == pytest.approx(want, abs=1e-9)
    # without measured=, the structural missingness and the rate count
    plain = oracle_log_likelihood(x, recording=q).iloc[0].to_numpy()
    assert not np.allclose(plain, got)


def test_certain_patient_gains_nothing():
    df = generate_cohort(3000, random_state=5)
    x = df.drop(columns=[c for c in df.columns if c not in KB.columns])
    post = oracle_proba(x).to_numpy()
    certain = np.flatnonzero(post.max(axis=1) > 1 - 1e-12)
    assert len(certain) > 0
    patient = x.iloc[[certain[0]]].copy()
    patient[["pth_pg_ml", "sex", "pulmonary_fibrosis", "lung_mass", "pack_years"]] = np.nan
    assert oracle_proba(patient).to_numpy().max() > 1 - 1e-9
    nb = next_best_findings(patient)
    assert len(nb) >= 5
    assert nb["expected_information_gain_bits"].max() < 1e-6


def test_focus_ranks_by_expected_movement_of_one_class():
    nb = next_best_findings(SPARSE, recording="case_report", focus="dystrophic")
    s = nb["expected_focus_shift"].to_numpy()
    assert (np.diff(s) <= 1e-15).all() and (s >= 0).all()
    for _, r in nb.head(8).iterrows():
        after = [q["dystrophic"] for q in r["posterior_after"]]
        assert r["focus_probability_min"] == pytest.approx(min(after))
        assert r["focus_probability_max"] == pytest.approx(max(after))
        assert r["focus_probability_min"] <= r["focus_probability_now"] + 1e-12 <= r["focus_probability_max"] + 2e-12
        if r["kind"] != "continuous":  # display outcomes are the exact outcomes
            shift = sum(p * abs(a - r["focus_probability_now"]) for p, a in zip(r["outcome_probabilities"], after))
            assert r["expected_focus_shift"] == pytest.approx(shift, abs=1e-12)
    # prior granulomatous infection separates dystrophic calcification from nodular DPO
    top = list(nb["column"].head(5))
    assert "prior_granulomatous_infection" in top
    by_gain = next_best_findings(SPARSE, recording="case_report", top=3)
    assert len(by_gain) == 3


def test_outcomes_of_each_kind():
    nb = next_best_findings(SPARSE, recording="case_report").set_index("column")
    assert nb.loc["chronic_heart_failure", "outcomes"] == ("present", "absent")
    assert nb.loc["on_dialysis", "kind"] == "binary"
    assert nb.loc["pack_years", "outcomes"][0] == "0 pack-years"
    assert all("mg/dL" in o for o in nb.loc["serum_calcium_mg_dl", "outcomes"])
    assert "zone" not in nb.index and "sex" not in nb.index


@pytest.mark.parametrize(
    ("kwargs", "patient", "match"),
    [
        ({}, pd.concat([SPARSE, SPARSE]), "one patient"),
        ({"focus": "gout"}, SPARSE, "focus must be one of"),
        ({"top": 0}, SPARSE, "top must be"),
        ({"missing": "drop"}, SPARSE, "missing must be one of"),
        ({}, _patient(zone="middle"), "zone"),
        ({}, "a patient", "one-row pandas DataFrame"),
    ],
)
def test_bad_input_is_refused_clearly(kwargs, patient, match):
    with pytest.raises(ValueError, match=match):
        next_best_findings(patient, **{"recording": "case_report", **kwargs})


def test_impossible_patient_is_refused():
    with pytest.raises(ValueError, match="impossible under every class"):
        next_best_findings(_patient(on_dialysis=1, chronic_kidney_disease=0), recording="case_report")


def test_mapping_and_series_inputs_agree():
    d = {"age_years": 60, "sex": "female", "zone": "lower", "calcified_nodules": 1, "lesion_size_mm": 3.0}
    a = next_best_findings(d, recording="case_report", top=4)
    b = next_best_findings(pd.Series(d), recording="case_report", top=4)
    c = next_best_findings(SPARSE, recording="case_report", top=4)
    assert list(a["column"]) == list(b["column"]) == list(c["column"])
    assert a["expected_information_gain_bits"].tolist() == pytest.approx(c["expected_information_gain_bits"].tolist())


def test_batch_equals_one_patient_at_a_time():
    from data_gen import next_best_findings_batch

    df = generate_cohort(7, random_state=9, recording="case_report")
    x = df[list(KB.column_names)].copy()
    x.index = [f"p{i}" for i in range(len(x))]
    impossible = _patient(on_dialysis=1, chronic_kidney_disease=0)
    impossible.index = ["impossible"]
    x = pd.concat([x, impossible, SPARSE.set_axis(["sparse"])])
    for focus in (None, "metastatic"):
        batch = next_best_findings_batch(x, recording="case_report", top=4, focus=focus)
        assert "impossible" not in set(batch["patient"])
        key = "expected_focus_shift" if focus else "expected_information_gain_bits"
        for pid in x.index.drop("impossible"):
            one = next_best_findings(x.loc[[pid]], recording="case_report", top=4, focus=focus)
            mine = batch[batch["patient"] == pid].drop(columns=["patient"]).reset_index(drop=True)
            assert list(mine["column"]) == list(one["column"]), pid
            assert mine[key].tolist() == pytest.approx(one[key].tolist(), abs=1e-12)
            for a, b in zip(mine["outcome_probabilities"], one["outcome_probabilities"]):
                np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12, atol=1e-15)
    # a small batch size runs several oracle calls and changes nothing
    import data_gen.next_best as nbm

    full = next_best_findings_batch(x, recording="case_report", top=2)
    old = nbm._BATCH_ROWS
    nbm._BATCH_ROWS = 500
    try:
        small = next_best_findings_batch(x, recording="case_report", top=2)
    finally:
        nbm._BATCH_ROWS = old
    assert small["column"].tolist() == full["column"].tolist()
    assert small["expected_information_gain_bits"].tolist() == pytest.approx(full["expected_information_gain_bits"].tolist(), abs=1e-12)


@pytest.mark.parametrize(
    ("measured", "match"),
    [
        (pd.DataFrame({"gout": [True]}), "unknown column"),
        (pd.DataFrame({"age_years": [1]}), "must be bool"),
        (np.zeros((1, 3), dtype=bool), "shape"),
        (pd.DataFrame({"age_years": [True, False]}), "rows"),
    ],
)
def test_measured_argument_is_checked(measured, match):
    with pytest.raises(ValueError, match=match):
        oracle_log_likelihood(SPARSE, recording=0.5, measured=measured)


def test_a_misspelt_column_is_refused_not_read_as_blank(kb):
    from data_gen import ContractError

    with pytest.raises(ContractError, match=r"unknown columns 'age_year' \(did you mean 'age_years'\?\), 'on_dialyis'"):
        next_best_findings({"age_year": 60, "on_dialyis": 1}, recording="case_report", top=3)


def test_focus_on_a_patient_with_every_column_recorded_gives_an_empty_ranking(kb):
    from data_gen import generate_cohort

    cohort = generate_cohort(2000, random_state=9, counts={"pam": 2000})
    cols = list(kb.column_names)
    # the first PAM patient, every blank filled with another PAM patient's value of that column
    patient = cohort[cols].iloc[[0]].copy()
    for c in cols:
        if patient[c].isna().all():
            patient[c] = cohort[c].dropna().iloc[0]
    assert patient.notna().all(axis=None)
    out = next_best_findings(patient, focus="pam", missing="ignore")
    assert len(out) == 0 and "expected_focus_shift" in out.columns
