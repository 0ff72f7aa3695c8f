"""The review's three cases: the shipped model's top five reasons name the clues the review gives.

Reasons are SHAP values centred across classes (what distinguishes the class from the others),
ranked toward the case's true class.
"""

import numpy as np
import pytest

from data_gen import paper_cases
from ml import explain, load_model

# (case, clues of which at least one must be in the top five, for each group), from the text
EXPECTED = {
    "case1_mpc": (
        {"chronic_kidney_disease", "kidney_transplant", "on_dialysis"},  # renal failure, transplant, dialysis
        {"zone", "peripheral_predominance", "centrilobular_ggo"},  # upper, peripheral, centrilobular GGO
    ),
    "case2_dendriform_dpo": (
        {"branching_calcification"},
        {"zone", "pulmonary_fibrosis"},  # lower lobes, mild fibrotic changes
    ),
    "case3_nodular_dpo": (
        {"pulmonary_congestion", "chronic_heart_failure"},
        {"calcified_nodules", "zone", "lymph_node_calcification"},  # nodular, lower lobe, no node calcification
    ),
}


@pytest.fixture(scope="module")
def top_five():
    model = load_model()
    cases = paper_cases()
    ex = explain(model, cases, n_jobs=1)
    centred = ex.values - ex.values.mean(axis=2, keepdims=True)
    out = {}
    for i, (case_id, row) in enumerate(cases.iterrows()):
        k = list(model.classes_).index(row["calcification_type"])
        order = np.argsort(-centred[i, :, k])[:5]
        out[case_id] = [ex.feature_names[j] for j in order if centred[i, j, k] > 0]
    return out


@pytest.mark.parametrize("case_id", sorted(EXPECTED))
def test_top_five_reasons_include_the_reviews_clues(top_five, case_id):
    reasons = set(top_five[case_id])
    for group in EXPECTED[case_id]:
        assert reasons & group, f"{case_id}: top five {top_five[case_id]} contain none of {sorted(group)}"
