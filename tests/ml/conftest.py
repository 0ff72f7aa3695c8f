"""Fixtures shared by the tests of the ml package."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="session")
def small_model():
    """A small model trained here on complete and case-report records (about 10 s on one core).

    Tests of the explanations and the page use it instead of the shipped model, so that they do
    not depend on the shipped artifact matching the knowledge base in use.
    """
    from data_gen import generate_cohort
    from ml import train

    with threadpool_limits(limits=1, user_api="openmp"):
        cohort = generate_cohort(20_000, random_state=0, recording=[("complete", 0.5), ("case_report", 0.5)])
        return train(cohort, random_state=0, max_iter=60)
