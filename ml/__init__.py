"""pulmocalc's classifier, its evaluation, explanations and reports.

Research and teaching on synthetic data only; never a clinical device.
"""

from .artifacts import ArtifactError, load_model, read_metadata, save_model
from .model import CalcificationModel, Encoder, adjust_prevalence, train

__all__ = [
    "ArtifactError",
    "CalcificationModel",
    "Encoder",
    "adjust_prevalence",
    "load_model",
    "read_metadata",
    "save_model",
    "train",
]
from .explain import explain, shap_values, tree_explainer

__all__ += ["explain", "shap_values", "tree_explainer"]

from .evaluate import (
    EvaluationResult,
    LogisticBaseline,
    MajorityBaseline,
    RuleScorer,
    classification_metrics,
    evaluate,
    learning_curve,
    paired_bootstrap_gap,
)

__all__ += [
    "EvaluationResult",
    "LogisticBaseline",
    "MajorityBaseline",
    "RuleScorer",
    "classification_metrics",
    "evaluate",
    "learning_curve",
    "paired_bootstrap_gap",
]
from .audit import ClueAudit, attribution_agreement, audit_clues, oracle_agreement, top_reasons

__all__ += ["ClueAudit", "attribution_agreement", "audit_clues", "oracle_agreement", "top_reasons"]
