"""The review's three cases, encoded in the input contract.

Only what the text states is filled; everything else is NaN (not recorded). Case 1 is
metastatic pulmonary calcification after kidney transplantation, case 2 dendriform and case 3
nodular disseminated pulmonary ossification.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["paper_cases", "PAPER_CASES_PATH"]

PAPER_CASES_PATH = Path(__file__).with_name("paper_cases.csv")


def paper_cases() -> pd.DataFrame:
    """The three cases, indexed by ``case_id``, with the label in ``calcification_type``.

    Examples
    --------
    >>> from data_gen import paper_cases
    >>> paper_cases()["calcification_type"].tolist()
    ['metastatic', 'dpo_dendriform', 'dpo_nodular']
    """
    df = pd.read_csv(PAPER_CASES_PATH, index_col="case_id")
    from .contract import canonical_frame  # local import: contract depends on knowledge only

    return canonical_frame(df)
