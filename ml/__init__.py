"""pulmocalc's classifier, its evaluation, explanations and reports.

Research and teaching on synthetic data only; never a clinical device.

The public names below are imported lazily (PEP 562): ``import ml`` costs nothing, and
``ml.train`` loads scikit-learn only when first used. This keeps the command line's start-up
(``pulmocalc -h``) free of scikit-learn, shap and matplotlib. ``from ml import X`` and
``dir(ml)`` work as for eager imports.
"""

from __future__ import annotations

import importlib

# public name -> the submodule that defines it
_EXPORTS = {
    "ArtifactError": "artifacts",
    "read_metadata": "artifacts",
    "save_model": "artifacts",
    "export_skops": "artifacts",
    "load_model": "loading",
    "load_skops": "loading",
    "CalcificationModel": "model",
    "Encoder": "model",
    "adjust_prevalence": "model",
    "train": "model",
    "explain": "treeshap",
    "shap_values": "treeshap",
    "tree_explainer": "treeshap",
    "EvaluationResult": "evaluation",
    "LogisticBaseline": "evaluation",
    "MajorityBaseline": "evaluation",
    "RuleScorer": "evaluation",
    "classification_metrics": "evaluation",
    "evaluate": "evaluation",
    "learning_curve": "evaluation",
    "learning_curve_summary": "evaluation",
    "paired_bootstrap_gap": "evaluation",
    "ClueAudit": "audit",
    "attribution_agreement": "agreement",
    "audit_clues": "audit",
    "oracle_agreement": "agreement",
    # ml.reasons.top_reasons(model, df, class_name) stays in its module: ml.top_reasons is ml.agreement's
    "top_reasons": "agreement",
    "ClassReasons": "reasons",
    "Differential": "reasons",
    "PatientExplanation": "reasons",
    "Reason": "reasons",
    "explain_patients": "reasons",
    "render_text": "reasons",
    "audit_heatmap_png": "figures",
    "class_summary_pngs": "plots",
    "confusion_png": "figures",
    "learning_curve_png": "figures",
    "reliability_png": "figures",
    "waterfall_png": "plots",
    "benchmark_explainers": "xai",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ml' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
