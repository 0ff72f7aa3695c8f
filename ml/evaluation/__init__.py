"""Evaluation: the classifier side by side with the oracle and three baselines.

Everything here is measured on synthetic cohorts (research and teaching; never a clinical
device). The yardstick is the exact Bayes posterior of the knowledge base
(:func:`data_gen.oracle_proba`): no classifier can have a lower expected log loss or a higher
expected accuracy on cohorts generated from that knowledge base, so "model minus oracle" is the
part of the error that training could still remove.

Modules (each imports only those above it)
------------------------------------------
:mod:`.metrics` — :func:`classification_metrics`
    accuracy, balanced accuracy, macro-F1, per-class precision and recall, log loss,
    multiclass Brier score, top-label ECE (with the reliability bins), confusion matrix.
:mod:`.baselines` — ``fit(cohort)`` / ``predict_proba(df)``
    :class:`MajorityBaseline`, :class:`LogisticBaseline`, :class:`RuleScorer` (the Table-1
    rule scorer a reader of the review would apply by hand, built from the knowledge base's
    roles only).
:mod:`.bootstrap` — :func:`paired_bootstrap_gap`
    the model's gap to the oracle with 95% CIs from a paired bootstrap over patients.
:mod:`.result` — :func:`evaluate` -> :class:`EvaluationResult`
    all of them on the same cohort.
:mod:`.learning_curve` — :func:`learning_curve`
    model vs oracle accuracy and log loss as the training cohort grows, over several seeds.
"""

from .metrics import BASELINE_TRAIN_N, BASELINE_TRAIN_SEED, ECE_BINS, EPS, TABLE_COLUMNS, classification_metrics
from .baselines import BASELINES, LogisticBaseline, MajorityBaseline, RuleScorer
from .bootstrap import paired_bootstrap_gap
from .result import EvaluationResult, evaluate, jsonable
from .learning_curve import LEARNING_CURVE_COLUMNS, learning_curve, learning_curve_summary

__all__ = [
    "BASELINES",
    "BASELINE_TRAIN_N",
    "BASELINE_TRAIN_SEED",
    "ECE_BINS",
    "EPS",
    "EvaluationResult",
    "LEARNING_CURVE_COLUMNS",
    "LogisticBaseline",
    "MajorityBaseline",
    "RuleScorer",
    "TABLE_COLUMNS",
    "classification_metrics",
    "evaluate",
    "jsonable",
    "learning_curve",
    "learning_curve_summary",
    "paired_bootstrap_gap",
]
