"""The two ground truths of the explainer benchmark, kept apart so that errors are not confused.

Design. *Fidelity to the model* asks whether an explainer reports what the model computes: the
truth is the model's exact interventional Shapley values against the benchmark's background
sample — interventional TreeSHAP for a tree model (exact for trees, Lundberg et al. 2020; over
the encoder's features summed back to contract columns, as :func:`ml.explain` does) or the
closed form of an additive model (:func:`ml.xai.explainers.additive_shapley`). A model that is
neither has no exact fidelity truth here, and its fidelity rows are left out rather than
approximated. *Recovery of the data-generating truth* asks whether the attribution matches the
evidence that generated the data, whatever the model learnt: the oracle's exact-game Shapley
values (:func:`data_gen.oracle_shapley`, Monte Carlo over permutations of an exactly computed
game) and its per-column weight of evidence (:func:`data_gen.weight_of_evidence`). All are
centred across classes, on the model's output scale for fidelity and on the centred log
posterior for the oracle's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .explainers import AdditiveExact, TreeInterventional
from .models import ModelView

__all__ = ["GROUND_TRUTHS", "centre", "model_truth", "oracle_truths"]

#: the names of the ground truths, in the leaderboard's order
GROUND_TRUTHS = ("model", "oracle_shapley", "weight_of_evidence")


def centre(a: np.ndarray) -> np.ndarray:
    """Subtract each (patient, column)'s mean over classes (what a column does to every class alike)."""
    a = np.asarray(a, dtype=np.float64)
    return a - a.mean(axis=2, keepdims=True)


def model_truth(view: ModelView, checked: pd.DataFrame, background: pd.DataFrame, *, background_size: int = 100):
    """The model's exact interventional Shapley values, centred, and the explainer that gives them.

    Returns ``(values (patients, columns, classes), explainer name)``, or ``(None, None)`` for a
    model that is neither a tree model nor additive.
    """
    for cls in (TreeInterventional, AdditiveExact):
        ex = cls(background, background_size=background_size)
        if ex.supports(view):
            return centre(ex.explain(view, checked)), ex.name
    return None, None


def oracle_truths(checked: pd.DataFrame, *, n_permutations: int = 64, random_state: int = 0, knowledge=None) -> dict:
    """``{"oracle_shapley": ..., "weight_of_evidence": ...}`` for the patients, each (n, J, K).

    Both are under complete recording (the regime of :func:`data_gen.generate_cohort`'s
    default), with the knowledge base's prevalence. ``oracle_shapley`` averages
    ``n_permutations`` antithetic permutations seeded by ``random_state``.
    """
    from data_gen import oracle_shapley, weight_of_evidence

    sh = oracle_shapley(checked, n_permutations=n_permutations, random_state=random_state, knowledge=knowledge)
    woe = weight_of_evidence(checked, knowledge=knowledge)
    return {"oracle_shapley": np.asarray(sh.values), "weight_of_evidence": np.asarray(woe.values)}
