"""data_gen.facts.check_paper_facts: the review's facts hold on a generated cohort, a doctored
cohort makes the right fact fail, and every quoted source is the review's own words."""

from __future__ import annotations

import re

import numpy as np
import pytest

from data_gen import generate_cohort
from data_gen.facts import FACT_COLUMNS, check_paper_facts

SEED = 424242
N = 100_000


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(N, random_state=SEED, latent=True)


@pytest.fixture(scope="module")
def facts(cohort):
    return check_paper_facts(cohort)


def _failing(df) -> set[str]:
    return set(df.loc[~df["holds"], "fact"])


def test_every_fact_holds_on_a_generated_cohort(facts):
    assert list(facts.columns) == list(FACT_COLUMNS)
    assert len(facts) >= 15
    assert facts["holds"].dtype == bool
    assert facts["holds"].all(), facts.loc[~facts["holds"], ["fact", "figure", "criterion"]].to_string()
    assert facts["fact"].is_unique
    assert (facts["n"] > 0).all()
    for col in ("source", "figure", "criterion"):
        assert facts[col].str.len().gt(5).all(), col


def test_the_facts_cover_what_the_review_states(facts):
    text = " ".join(facts["fact"])
    for needle in ("60%", "> 5 mm", "3\u201310 mm", "1\u20135 mm", "1\u20134 mm", "< 1 mm", "upper-zone", "lower-zone",
                   "peripheral", "medial and posterior", "most common", "more common", "rarest", "10\u201320"):
        assert needle in text, needle


def test_the_facts_hold_on_another_seed_and_a_smaller_cohort():
    df = generate_cohort(40_000, random_state=SEED + 1, latent=True)
    out = check_paper_facts(df)
    assert out["holds"].all(), out.loc[~out["holds"], ["fact", "figure"]].to_string()


def _doctor_visibility(df):
    df["calcification_visible"] = df["calcification_visible"].where(df["calcification_type"] != "metastatic", 1)


def _doctor_dystrophic_size(df):
    m = df["calcification_type"] == "dystrophic"
    df.loc[m, "lesion_size_mm"] = df.loc[m, "lesion_size_mm"] / 3


def _doctor_nodular_size(df):
    m = df["calcification_type"] == "dpo_nodular"
    df.loc[m, "lesion_size_mm"] = df.loc[m, "lesion_size_mm"] + 3


def _doctor_pam_zone(df):
    m = (df["calcification_type"] == "pam").to_numpy()
    df.loc[m, "zone"] = "upper"


def _doctor_mpc_peripheral(df):
    m = df["calcification_type"] == "metastatic"
    df.loc[m, "peripheral_predominance"] = 0


def _doctor_sandstorm_age(df):
    m = df["latent_stage"].astype("string").eq("sandstorm").fillna(False).to_numpy()
    df.loc[m, "age_years"] = df.loc[m, "age_years"] + 30


@pytest.mark.parametrize(
    "doctor, fails",
    [
        (_doctor_visibility, {"MPC: calcification visible on CT in about 60%"}),
        (_doctor_dystrophic_size, {"Dystrophic: nodules usually > 5 mm"}),
        (_doctor_nodular_size, {"Nodular DPO: nodules of 1\u20135 mm"}),
        (_doctor_pam_zone, {"PAM: lower-zone predominance"}),
        (_doctor_mpc_peripheral, {"MPC: peripheral predominance"}),
        (_doctor_sandstorm_age, {"PAM sandstorm stage: usually at ages 10\u201320"}),
    ],
    ids=["mpc-visibility", "dystrophic-size", "nodular-size", "pam-zone", "mpc-peripheral", "pam-age"],
)
def test_a_doctored_cohort_fails_exactly_the_doctored_fact(cohort, doctor, fails):
    df = cohort.copy()
    doctor(df)
    assert _failing(check_paper_facts(df)) == fails


def test_a_cohort_with_another_class_mix_fails_the_frequency_facts():
    df = generate_cohort(counts={"dystrophic": 5_000, "metastatic": 20_000, "dpo_nodular": 5_000,
                                 "dpo_dendriform": 10_000, "pam": 12_000}, random_state=SEED + 2, latent=True)
    failing = _failing(check_paper_facts(df))
    assert failing == {"Dystrophic is the most common type", "Nodular DPO is more common than dendriform DPO",
                       "PAM is the rarest type"}


def test_without_latent_columns_it_says_what_is_needed():
    df = generate_cohort(2_000, random_state=1)
    with pytest.raises(ValueError, match=r"latent=True"):
        check_paper_facts(df)


def test_sources_quote_the_review(facts, review_text):
    flat = " ".join(review_text.split())
    quotes = [q for src in facts["source"] for q in re.findall("\u201c([^\u201d]+)\u201d", src)]
    assert len(quotes) >= len(facts)
    for q in quotes:
        for part in q.split(" ... "):
            assert " ".join(part.split()) in flat, part


def test_figures_are_the_cohorts_own(cohort, facts):
    """The reported value is recomputed from the patients, not read from the knowledge base."""
    mpc = cohort.loc[cohort["calcification_type"] == "metastatic", "calcification_visible"].dropna()
    row = facts.set_index("fact").loc["MPC: calcification visible on CT in about 60%"]
    assert row["value"] == pytest.approx(float((mpc == 1).mean()))
    assert row["n"] == len(mpc)
    share = float(np.mean(cohort["calcification_type"] == "pam"))
    assert facts.set_index("fact").loc["PAM is the rarest type", "value"] == pytest.approx(share)
