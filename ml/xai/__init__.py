"""Which explainer recovers the truth? Attribution methods scored against pulmocalc's exact ground truth.

pulmocalc knows the data-generating model exactly, so an attribution can be checked against
two truths kept apart: the model's own exact interventional Shapley values (fidelity to the
model) and the oracle's exact-game Shapley values and weight of evidence (recovery of the
evidence that generated the data). :func:`benchmark_explainers` scores the built-in explainers
(TreeSHAP path-dependent and interventional, Saabas, KernelSHAP, the permutation explainer,
LIME, occlusion, the random and permuted-label floors) or any callable ``(model, X) -> array``
on any scikit-learn classifier behind the contract (:class:`ContractClassifier`).
:class:`OracleGame` (``ml.xai.game``, needs shapiq) exposes the oracle as a shapiq game.

LIME and shapiq come with the ``xai`` extra: ``pip install 'pulmocalc[xai]'``.
Research and teaching on synthetic data only; never a clinical device.
"""

from .explainers import Explainer, additive_shapley, builtin_explainers
from .ground_truth import GROUND_TRUTHS
from .leaderboard import LEADERBOARD_COLUMNS, benchmark_explainers
from .metrics import agreement, chance_levels, deletion_curve
from .models import ContractClassifier, ModelView, logistic_regression, random_forest, view_of

__all__ = [
    "ContractClassifier",
    "Explainer",
    "GROUND_TRUTHS",
    "LEADERBOARD_COLUMNS",
    "ModelView",
    "OracleGame",
    "additive_shapley",
    "agreement",
    "benchmark_explainers",
    "builtin_explainers",
    "chance_levels",
    "deletion_curve",
    "logistic_regression",
    "random_forest",
    "view_of",
]


def __getattr__(name):
    # shapiq is optional: the game is imported only when asked for
    if name == "OracleGame":
        from .game import OracleGame

        return OracleGame
    raise AttributeError(f"module 'ml.xai' has no attribute {name!r}")
