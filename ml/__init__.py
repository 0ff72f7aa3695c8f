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
from .reasons import ClassReasons, Differential, PatientExplanation, Reason, explain_patients, render_text

# ml.reasons.top_reasons(model, df, class_name) stays in its module: ml.top_reasons is the audit's
__all__ += ["ClassReasons", "Differential", "PatientExplanation", "Reason", "explain_patients", "render_text"]
from .plots import (
    audit_heatmap_png,
    class_summary_pngs,
    confusion_png,
    learning_curve_png,
    reliability_png,
    waterfall_png,
)

__all__ += [
    "audit_heatmap_png",
    "class_summary_pngs",
    "confusion_png",
    "learning_curve_png",
    "reliability_png",
    "waterfall_png",
]
from .xai import benchmark_explainers

__all__ += ["benchmark_explainers"]
