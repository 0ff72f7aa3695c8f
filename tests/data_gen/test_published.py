"""The published case reports: well-formed, within the blind split, loadable, and the source of
the knowledge base's case-report regime (whose rates must be the estimator's)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_gen import estimate_recording_rates, load_published_cases
from data_gen.published import MAX_QUOTE_WORDS, PUBLISHED_CASES_PATH, blind_split_allows, check_published_cases

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raw():
    return json.loads(PUBLISHED_CASES_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cases(kb):
    return load_published_cases(knowledge=kb)


def test_shipped_set_breaks_no_rule(raw, kb):
    assert check_published_cases(raw, knowledge=kb) == []


def test_shipped_set_size_and_types(cases, kb):
    counts = cases.y.value_counts()
    print("\npublished cases per type:", counts.to_dict())
    assert len(cases) >= 40
    assert set(counts.index) == set(kb.class_names)
    assert counts.min() >= 4  # the issue asks 5 of each; nodular DPO is short (see the closing note)


def test_every_case_is_sourced(raw):
    for case in raw["cases"]:
        assert case["source"].startswith(("http://", "https://")), case["id"]
        assert blind_split_allows(case["source"]), case["id"]
        assert case["citation"].strip() and case["diagnosis_quote"].strip() and case["clues"].strip(), case["id"]
        assert set(case["evidence"]) == set(case["x"]), case["id"]
        assert all(0 < len(q.split()) <= MAX_QUOTE_WORDS for q in case["evidence"].values()), case["id"]


def test_frame_holds_the_coded_values_and_nothing_else(raw, cases, kb):
    X = cases.X
    assert X.shape == (len(raw["cases"]), len(kb.column_names))
    for case in raw["cases"]:
        row = X.loc[case["id"]]
        assert set(row.index[row.notna()]) == set(case["x"]), case["id"]
        for col, v in case["x"].items():
            assert row[col] == v, (case["id"], col)
    print(f"\ncolumns coded per case: median {X.notna().sum(axis=1).median():.0f}")


def test_blind_split_rule():
    assert blind_split_allows("https://www.eurorad.org/case/12811")  # sha256 starts with 0
    assert not blind_split_allows("https://www.eurorad.org/case/13793/teaching-case")  # starts with 9


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c.update(source="https://www.eurorad.org/case/13793/teaching-case"), "hashes to 8-f"),
        (lambda c: c["evidence"].pop(next(iter(c["x"]))), "has no evidence quote"),
        (lambda c: c["evidence"].update({next(iter(c["x"])): " ".join(["word"] * 13)}), "has 13 words, at most 12"),
        (lambda c: c.update(expected="calcinosis"), "'calcinosis' is not one of"),
        (lambda c: c["x"].update(ages=3), "unknown contract columns ['ages']"),
        (lambda c: c["reasons_any"].append(["lung_mass_x"]), "names columns that are not coded"),
    ],
)
def test_a_broken_case_is_named(raw, kb, mutate, message):
    bad = copy.deepcopy(raw)
    mutate(bad["cases"][0])
    problems = check_published_cases(bad, knowledge=kb)
    assert any(message in p and raw["cases"][0]["id"] in p for p in problems), problems


def test_a_duplicated_patient_is_named(raw, kb):
    bad = copy.deepcopy(raw)
    twin = copy.deepcopy(bad["cases"][3])
    twin["id"] = "twin"
    twin["source"] = "https://example.org/1"  # same coded values, another URL
    bad["cases"].append(twin)
    problems = check_published_cases(bad, knowledge=kb)
    assert any("same coded values as" in p for p in problems), problems


def test_a_contract_violation_is_named(raw, kb, tmp_path):
    bad = copy.deepcopy(raw)
    case = bad["cases"][0]
    case["x"]["zone"] = "apical"
    case["evidence"]["zone"] = "apical"
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(ValueError, match=r"zone.*'apical'"):
        load_published_cases(path, knowledge=kb)


def test_recording_rate_estimate_by_hand(cases, kb):
    est = estimate_recording_rates(cases, knowledge=kb, prior_strength=2.0).set_index(["column", "value"])
    # mentions are counts of the coded values
    n_ckd = int((cases.X["chronic_kidney_disease"] == 1).sum())
    assert est.loc[("chronic_kidney_disease", "present"), "mentioned"] == n_ckd
    r = est.attrs["pooled_rate"]
    assert r == pytest.approx(est["mentioned"].sum() / est["expected"].sum())
    row = est.loc[("chronic_kidney_disease", "present")]
    assert row["rate"] == pytest.approx(min(1.0, (n_ckd + 2 * r) / (row["expected"] + 2)))
    assert ((est["rate"] >= 0) & (est["rate"] <= 1)).all()
    # stronger shrinkage pulls every rate toward the pooled one
    strong = estimate_recording_rates(cases, knowledge=kb, prior_strength=50.0).set_index(["column", "value"])
    assert (np.abs(strong["rate"] - r) <= np.abs(est["rate"] - r) + 1e-12).all()
    with pytest.raises(ValueError, match="prior_strength must be a positive number"):
        estimate_recording_rates(cases, knowledge=kb, prior_strength=0)


def test_knowledge_base_holds_the_estimated_rates():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "estimate_recording.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
