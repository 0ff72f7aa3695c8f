"""Large generated cohorts shared by the data_gen tests (generated once per session)."""

from __future__ import annotations

import pytest

from data_gen import generate_cohort

# Fixed seeds: every statistical test is deterministic.
COUNTS_SEED = 20240611
DEFAULT_SEED = 7
PER_CLASS = 60_000
DEFAULT_N = 200_000


@pytest.fixture(scope="session")
def counts_cohort(kb):
    """300k patients, exactly 60k of each class, with the latent subtypes."""
    return generate_cohort(
        counts={k: PER_CLASS for k in kb.class_names}, random_state=COUNTS_SEED, latent=True
    )


@pytest.fixture(scope="session")
def default_cohort():
    """200k patients of the default class mix, with the latent subtypes."""
    return generate_cohort(DEFAULT_N, random_state=DEFAULT_SEED, latent=True)
