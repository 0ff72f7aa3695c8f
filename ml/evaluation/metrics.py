"""Classification metrics of one set of predicted probabilities (accuracy to calibration).

The yardstick functions of :mod:`ml.evaluation`: accuracy, balanced accuracy, macro-F1,
per-class precision and recall, the confusion matrix (all from scikit-learn), log loss clipped at
:data:`EPS` and the multiclass Brier score and top-label ECE (computed here: see
:func:`classification_metrics` for why scikit-learn's versions are not used for these three).
Everything is vectorized over patients; probabilities are checked, never renormalized.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence


import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)




__all__ = ["EPS", "ECE_BINS", "BASELINE_TRAIN_N", "BASELINE_TRAIN_SEED", "TABLE_COLUMNS", "classification_metrics"]

#: Probabilities are clipped to [EPS, 1] before taking logs (see :func:`_log_losses`).
EPS = 1e-15
#: Equal-width confidence bins of the expected calibration error.
ECE_BINS = 10
#: Baselines are fitted on ``generate_cohort(BASELINE_TRAIN_N, random_state=BASELINE_TRAIN_SEED)``
#: unless a training cohort is given. The seed is reserved for this purpose (the shipped model
#: trains on ``ml.config.TRAINING["seed"]``; evaluation cohorts should use yet other seeds).
BASELINE_TRAIN_N = 50_000
BASELINE_TRAIN_SEED = 12345
#: Row tolerance for probabilities that must sum to one.
_SUM_TOL = 1e-6

TABLE_COLUMNS = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss", "brier", "ece")


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------
def _as_codes(y_true, classes: Sequence[str]) -> np.ndarray:
    """Class labels -> integer codes in ``classes`` order; unknown or missing labels refused."""
    values = np.asarray(y_true, dtype=object).ravel()
    codes = pd.Index(list(classes)).get_indexer(values).astype(np.intp)
    bad = codes < 0
    if bad.any():
        shown = pd.unique(values[bad])[:5].tolist()
        raise ValueError(f"y_true has {int(bad.sum())} label(s) that are missing or not one of {list(classes)}: {shown}")
    return codes


def _as_proba(proba, classes: Sequence[str], n: int, what: str = "proba") -> np.ndarray:
    """A probability matrix (n, K) in class order, checked: no NaN, in [0, 1], rows sum to 1.

    Rows with NaN are refused, never dropped: the oracle gives NaN only to a patient impossible
    under every class, which a generated cohort never contains, so NaN means a bug upstream,
    and dropping rows would silently compare models on different patients.
    """
    index = None
    if isinstance(proba, pd.DataFrame):
        cols = [str(c) for c in proba.columns]
        if sorted(cols) != sorted(classes):
            raise ValueError(f"{what} has columns {cols}; expected one per class {list(classes)}")
        index = proba.index
        p = proba[list(classes)].to_numpy(dtype=float)
    else:
        p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape != (n, len(classes)):
        raise ValueError(f"{what} must have shape (n_patients, n_classes) = ({n}, {len(classes)}), got {p.shape}")
    nan_rows = np.isnan(p).any(axis=1)
    if nan_rows.any():
        where = (index[nan_rows] if index is not None else np.flatnonzero(nan_rows))[:5].tolist()
        raise ValueError(
            f"{what} has NaN probabilities in {int(nan_rows.sum())} row(s) (first: {where}); "
            "a posterior is NaN only for a patient impossible under every class, so these rows "
            "are refused rather than dropped (dropping them would compare models on different patients)"
        )
    if (p < 0).any() or (p > 1 + _SUM_TOL).any() or not np.isfinite(p).all():
        raise ValueError(f"{what} has values outside [0, 1]")
    off = np.abs(p.sum(axis=1) - 1.0) > _SUM_TOL
    if off.any():
        where = (index[off] if index is not None else np.flatnonzero(off))[:5].tolist()
        raise ValueError(f"{what} rows must sum to 1 (within {_SUM_TOL}); {int(off.sum())} do not (first: {where})")
    return p


def _log_losses(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-patient log loss -ln p(true class), the probability clipped at :data:`EPS`.

    Why clip: a classifier (not the oracle, whose posterior is never 0 for a class that could
    have produced the patient) may give the true class a probability of exactly 0, e.g. a rare
    class in a booster leaf or the majority baseline without a class. Unclipped, one such
    patient makes the mean log loss infinite and hides every other difference; clipped at 1e-15,
    it costs ln(1e15) = 34.5 nats, still a heavy penalty that shows up in the mean. (scikit-learn
    clips at the float64 machine epsilon since version 1.5; 1e-15 is the long-standing
    convention and keeps our numbers independent of the installed version.)
    """
    return -np.log(np.clip(p[np.arange(len(y)), y], EPS, 1.0))


def _top_label(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = p.argmax(axis=1)
    return pred, pred == y


def _reliability(conf: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> tuple[float, dict]:
    """Top-label ECE with equal-width bins and the bins themselves (for a reliability diagram).

    Bin ``b`` holds confidences in [b/n_bins, (b+1)/n_bins); the last bin includes 1.0.
    ECE = sum over bins of (bin share of patients) * |bin accuracy - bin mean confidence|.
    """
    # floor(conf * n_bins) puts a confidence exactly on an edge (0.5, 0.7...) in the bin it
    # opens, which np.linspace edges with their rounding (0.30000000000000004) would not.
    b = np.minimum((conf * n_bins).astype(np.intp), n_bins - 1)
    count = np.bincount(b, minlength=n_bins)
    sum_conf = np.bincount(b, weights=conf, minlength=n_bins)
    sum_acc = np.bincount(b, weights=correct.astype(float), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = sum_conf / count
        acc = sum_acc / count
    nonempty = count > 0
    ece = float(np.sum(count[nonempty] / len(conf) * np.abs(acc[nonempty] - mean_conf[nonempty])))
    bins = {
        "edges": np.linspace(0.0, 1.0, n_bins + 1).round(12).tolist(),
        "confidence": [float(v) for v in mean_conf],  # NaN for an empty bin
        "accuracy": [float(v) for v in acc],
        "count": [int(v) for v in count],
    }
    return ece, bins


def classification_metrics(y_true, proba, classes: Sequence[str]) -> dict:
    """Every metric of the evaluation for one set of predicted probabilities.

    Parameters
    ----------
    y_true : array-like of str
        True class of each patient (e.g. a cohort's ``calcification_type``).
    proba : pandas.DataFrame or array (n_patients, n_classes)
        Predicted probabilities; a DataFrame needs one column per class (any order), an array
        is read in ``classes`` order. Rows must sum to 1. NaN is refused with a ValueError,
        never dropped.
    classes : sequence of str
        Class order of the per-class results and of the confusion matrix.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy`` (mean recall over the classes present in the
        truth), ``macro_f1`` (over the classes present in the truth or the predictions),
        ``precision`` and ``recall`` (dict class -> value; NaN when undefined, e.g. precision of
        a class never predicted), ``log_loss`` (natural log, probabilities clipped at 1e-15),
        ``brier`` (mean over patients of the sum over classes of the squared error against the
        one-hot truth; 0 is perfect, 2 the worst), ``ece`` (top-label expected calibration
        error, 10 equal-width bins) with ``reliability`` (bin ``edges``, mean ``confidence``,
        ``accuracy``, ``count``), ``confusion_matrix`` (nested lists, rows = truth, columns =
        prediction, both in ``classes`` order) and ``n``. Predictions are the most probable
        class (the first in class order on a tie).

    Examples
    --------
    >>> m = classification_metrics(["a", "b"], [[0.9, 0.1], [0.2, 0.8]], ["a", "b"])
    >>> m["accuracy"], round(m["log_loss"], 4)
    (1.0, 0.1643)
    """
    classes = [str(c) for c in classes]
    if len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes must be distinct and non-empty, got {classes}")
    y = _as_codes(y_true, classes)
    if len(y) == 0:
        raise ValueError("no patients to evaluate")
    p = _as_proba(proba, classes, len(y))
    K = len(classes)
    pred, correct = _top_label(p, y)
    labels = np.arange(K)
    precision, recall, _, _ = precision_recall_fscore_support(
        y, pred, labels=labels, average=None, zero_division=np.nan
    )
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": balanced accuracy then averages the recall
        # of the classes present in the truth, which is what we report.
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y, pred)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    # Multiclass Brier: scikit-learn has it only from 1.7 on (brier_score_loss with labels);
    # the project supports older versions, and the formula is one line.
    brier = float(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    ece, bins = _reliability(p[np.arange(len(y)), pred], correct)
    return {
        "n": int(len(y)),
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0.0)),
        "precision": {k: float(v) for k, v in zip(classes, precision)},
        "recall": {k: float(v) for k, v in zip(classes, recall)},
        "log_loss": float(np.mean(_log_losses(p, y))),
        "brier": brier,
        "ece": ece,
        "reliability": bins,
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
    }
