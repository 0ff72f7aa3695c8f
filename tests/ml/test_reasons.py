"""Per-patient explanations in clinical words (ml.reasons)."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from data_gen import generate_cohort, paper_cases
from ml import explain, train
from ml.reasons import (
    DISCLAIMER,
    MIN_EFFECT,
    PatientExplanation,
    centred_shap,
    column_display_name,
    describe_value,
    explain_patients,
    render_text,
    top_reasons,
)

# The clues the review names for each of its cases (issue 5, "Must show"): for each case, every
# group must have at least one member among the top five reasons for the case's class.
PAPER_CLUES = {
    "case1_mpc": [
        {"chronic_kidney_disease", "kidney_transplant", "on_dialysis"},
        {"zone", "peripheral_predominance", "centrilobular_ggo", "ground_glass_opacity"},
    ],
    "case2_dendriform_dpo": [
        {"branching_calcification"},
        {"zone", "pulmonary_fibrosis"},
    ],
    "case3_nodular_dpo": [
        {"pulmonary_congestion", "chronic_heart_failure"},
        {"calcified_nodules", "zone", "lymph_node_calcification"},
    ],
}


@pytest.fixture(scope="module")
def model():
    # one OpenMP thread: on a busy machine the booster's threads otherwise spin against each other
    with threadpool_limits(limits=1, user_api="openmp"):
        return train(generate_cohort(30_000, random_state=1), max_iter=150)


@pytest.fixture(scope="module")
def cases():
    return paper_cases()


@pytest.fixture(scope="module")
def explained(model, cases):
    return explain_patients(model, cases)


@pytest.fixture(scope="module")
def pam_patient(kb):
    row = {c: np.nan for c in kb.column_names}
    row.update(
        age_years=15,
        sex="female",
        micronodules=1,
        slc34a2_variant=1,
        family_history_pam=1,
        zone="lower",
        calcification_visible=1,
        dense_calcification=1,
        medial_posterior_predominance=1,
        black_pleura_sign=1,
        lesion_size_mm=0.4,
        chronic_kidney_disease=0,
    )
    return pd.DataFrame([row], index=pd.Index(["pam_1"], name="patient"))


# ---- the differential ------------------------------------------------------------------------
def test_differential_sums_to_one_and_is_sorted(explained, model, cases):
    assert [e.patient for e in explained] == list(cases.index)
    proba = model.predict_proba(cases)
    for e in explained:
        p = [d.probability for d in e.differential]
        assert sorted(d.class_name for d in e.differential) == sorted(model.classes_)
        assert math.isclose(sum(p), 1.0, abs_tol=1e-9)
        assert p == sorted(p, reverse=True)
        for d in e.differential:
            assert d.probability == pytest.approx(proba.loc[e.patient, d.class_name], abs=1e-12)
        assert e.top_class == e.differential[0].class_name
        assert [c.class_name for c in e.classes] == [d.class_name for d in e.differential[:3]]


def test_prevalence_changes_probabilities_not_reasons(model, cases, explained):
    prev = {"dystrophic": 0.1, "metastatic": 0.1, "dpo_nodular": 0.1, "dpo_dendriform": 0.1, "pam": 0.6}
    adjusted = explain_patients(model, cases, prevalence=prev)
    want = model.predict_proba(cases, prevalence=prev)
    for a, e in zip(adjusted, explained):
        assert a.prevalence == prev
        for d in a.differential:
            assert d.probability == pytest.approx(want.loc[a.patient, d.class_name], abs=1e-12)
        same = {c.class_name: c for c in e.classes}
        for c in a.classes:
            if c.class_name in same:
                assert c.favouring == same[c.class_name].favouring
                assert c.against == same[c.class_name].against


# ---- the reasons -----------------------------------------------------------------------------
def test_reasons_sorted_by_size_with_signs(explained):
    for e in explained:
        for c in e.classes:
            fav = [r.shap for r in c.favouring]
            ag = [r.shap for r in c.against]
            assert len(fav) <= 5 and len(ag) <= 5
            assert fav == sorted(fav, reverse=True)
            assert ag == sorted(ag)
            assert all(v > MIN_EFFECT for v in fav)
            assert all(v < -MIN_EFFECT for v in ag)
            assert not {r.column for r in c.favouring} & {r.column for r in c.against}


def test_reason_sizes_are_centred_shap(model, cases, explained):
    ex = explain(model, cases)
    centred = centred_shap(ex.values)
    cols = list(ex.feature_names)
    classes = list(model.classes_)
    for n, e in enumerate(explained):
        for c in e.classes:
            k = classes.index(c.class_name)
            for r in c.favouring + c.against:
                assert r.shap == pytest.approx(centred[n, cols.index(r.column), k], abs=1e-12)
            # the favouring list is exactly the largest centred values above the threshold
            v = centred[n, :, k]
            top = sorted((x for x in v if x > MIN_EFFECT), reverse=True)[:5]
            assert [r.shap for r in c.favouring] == pytest.approx(top)
    # centring keeps additivity: centred base + sum of centred SHAP = log p - mean log p
    logp = np.log(model.predict_proba(cases).to_numpy())
    base = ex.base_values - ex.base_values.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(base + centred.sum(axis=1), logp - logp.mean(axis=1, keepdims=True), atol=1e-6)


def test_reason_text_names_column_and_value(explained, kb):
    seen_missing = False
    for e in explained:
        for c in e.classes:
            for r in c.favouring + c.against:
                words = column_display_name(r.column, kb)
                assert "_" not in words
                assert r.text == f"{words}: {r.value_text}"
                spec = kb.columns[r.column]
                if r.value is None:
                    seen_missing = True
                    assert "not recorded" in r.value_text
                elif spec.kind == "binary":
                    assert r.value_text in ("yes", "no", "seen", "not seen")
                elif spec.kind == "categorical":
                    assert r.value_text == r.value
                else:
                    assert r.value_text.startswith(f"{r.value:.3g}")
                    assert r.value_text.endswith(spec.unit)
                assert r.is_paper_clue == (kb.role(c.class_name, r.column) != "none")
                assert r.role == kb.role(c.class_name, r.column)
                assert (r.clue is not None) == r.is_paper_clue
    assert seen_missing, "the paper cases leave most columns unrecorded; some must be reasons"


@pytest.mark.parametrize(
    "column, value, words",
    [
        ("chronic_kidney_disease", 1, "chronic kidney disease: yes"),
        ("calcified_nodules", 0, "calcified nodules: not seen"),
        ("lesion_size_mm", 0.4, "lesion size: 0.4 mm"),
        ("zone", "lower", "zone: lower"),
        ("age_years", 83, "age: 83 years"),
        ("slc34a2_variant", np.nan, "SLC34A2 variant: not tested (not recorded)"),
        ("serum_calcium_mg_dl", 11.25, "serum calcium: 11.2 mg/dL"),
        ("peripheral_predominance", 1, "peripheral predominance: yes"),
        ("pulmonary_congestion", None, "pulmonary congestion: not recorded"),
    ],
)
def test_plain_words(column, value, words, kb):
    assert f"{column_display_name(column, kb)}: {describe_value(column, value, kb)}" == words


def test_every_column_has_words(kb):
    for c in kb.column_names:
        words = column_display_name(c, kb)
        assert words and "_" not in words
        assert describe_value(c, np.nan, kb).startswith(("not recorded", "not tested", "not done"))


# ---- Table 2 and the report ------------------------------------------------------------------
def test_pam_patient_implies_screening_family_members(model, pam_patient):
    (e,) = explain_patients(model, pam_patient)
    assert e.patient == "pam_1"
    assert e.top_class == "pam"
    assert set(e.implications) == {"prognosis", "treatment", "screening", "diagnostic_value"}
    assert "family members" in e.implications["screening"]
    text = render_text([e])
    block = text[text.index("What the top diagnosis implies (review, Table 2)"):]
    assert "screening: Chest x-ray for family members" in block
    assert "prognosis:" in block and "treatment:" in block and "diagnostic value:" in block
    fav = {r.column for r in e.classes[0].favouring}
    assert fav & {"micronodules", "slc34a2_variant", "family_history_pam", "age_years", "lesion_size_mm"}


def test_render_text(explained, cases):
    text = render_text(explained)
    lines = text.splitlines()
    assert lines[0] == DISCLAIMER
    assert "not a clinical device" in lines[0] and "synthetic" in lines[0]
    for e in explained:
        assert f"=== Patient {e.patient} ===" in text
        part = text[text.index(f"=== Patient {e.patient} ===") :]
        for rank, d in enumerate(e.differential, 1):
            assert f"{rank}. {d.label}" in part
        assert "%" in part
        assert "Findings for:" in part and "Findings against:" in part
        assert "What the top diagnosis implies (review, Table 2)" in part
        for r in e.classes[0].favouring:
            assert f"{r.shap:+.2f}  {r.text}" in part
            if r.is_paper_clue:
                assert f"{r.text}  [{r.clue}]" in part
    assert "[Table 1: " in text


def test_json_round_trip(explained):
    for e in explained:
        d = e.to_dict()
        again = json.loads(json.dumps(d))
        assert again == d
        assert PatientExplanation.from_dict(again) == e


def test_id_column(model, cases):
    df = cases.reset_index()
    out = explain_patients(model, df, top=1, n_reasons=2, id_column="case_id")
    assert [e.patient for e in out] == list(cases.index)
    assert all(len(e.classes) == 1 and len(e.classes[0].favouring) <= 2 for e in out)


def test_bad_arguments(model, cases):
    with pytest.raises(ValueError, match="top"):
        explain_patients(model, cases, top=0)
    with pytest.raises(ValueError, match="unknown class"):
        top_reasons(model, cases, "silicosis")


def test_top_reasons(model, cases, explained):
    out = top_reasons(model, cases, "metastatic", k=4)
    assert len(out) == len(cases)
    for reasons, e in zip(out, explained):
        assert len(reasons) == 4
        sizes = [r.shap for r in reasons]
        assert sizes == sorted(sizes, reverse=True)
        if e.top_class == "metastatic":
            fav = e.classes[0].favouring
            assert [r.column for r in reasons[: len(fav)]] == [r.column for r in fav][:4]


# ---- the review's three cases ------------------------------------------------------------------
def test_paper_cases_top_class_is_the_true_class(explained, cases):
    for e in explained:
        assert e.top_class == cases.loc[e.patient, "calcification_type"], render_text([e])


@pytest.mark.parametrize("case_id", sorted(PAPER_CLUES))
def test_paper_cases_top_five_reasons_include_the_papers_clues(explained, cases, case_id):
    e = next(x for x in explained if x.patient == case_id)
    true = cases.loc[case_id, "calcification_type"]
    c = next(x for x in e.classes if x.class_name == true)
    top5 = {r.column for r in c.favouring[:5]}
    for group in PAPER_CLUES[case_id]:
        assert top5 & group, f"{case_id}: none of {sorted(group)} among the top five reasons {sorted(top5)}"
