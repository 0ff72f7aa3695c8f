"""Evaluation: the classifier side by side with the oracle and three baselines.

Everything here is measured on synthetic cohorts (research and teaching; never a clinical
device). The yardstick is the exact Bayes posterior of the knowledge base
(:func:`data_gen.oracle_proba`): no classifier can have a lower expected log loss or a higher
expected accuracy on cohorts generated from that knowledge base, so "model minus oracle" is the
part of the error that training could still remove.

Contents
--------
:func:`classification_metrics`
    accuracy, balanced accuracy, macro-F1, per-class precision and recall, log loss,
    multiclass Brier score, top-label ECE (with the reliability bins), confusion matrix.
Baselines (``fit(cohort)`` / ``predict_proba(df)``)
    :class:`MajorityBaseline`, :class:`LogisticBaseline`, :class:`RuleScorer` (the Table-1
    rule scorer a reader of the review would apply by hand, built from the knowledge base's
    roles only).
:func:`evaluate` -> :class:`EvaluationResult`
    all of them on the same cohort.
:func:`paired_bootstrap_gap`
    the model's gap to the oracle with 95% CIs from a paired bootstrap over patients.
:func:`learning_curve`
    model vs oracle accuracy and log loss as the training cohort grows.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from data_gen import LABEL, generate_cohort, load_knowledge, oracle_proba, validate_frame
from data_gen.knowledge import Knowledge
from data_gen.sampler import resolve_prevalence

from .model import Encoder, adjust_prevalence, most_probable

__all__ = [
    "EPS",
    "ECE_BINS",
    "BASELINE_TRAIN_N",
    "BASELINE_TRAIN_SEED",
    "classification_metrics",
    "MajorityBaseline",
    "LogisticBaseline",
    "RuleScorer",
    "EvaluationResult",
    "evaluate",
    "paired_bootstrap_gap",
    "learning_curve",
    "LEARNING_CURVE_COLUMNS",
]

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


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------
class _Baseline:
    """Shared plumbing: contract checks, class order, training prevalence, prior shift."""

    name = "baseline"

    def __init__(self, knowledge: Knowledge | str | None = None):
        self.knowledge = knowledge

    @property
    def kb(self) -> Knowledge:
        k = self.knowledge
        return k if isinstance(k, Knowledge) else load_knowledge(k)

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "train_prevalence_")

    def fit(self, cohort: pd.DataFrame):
        """Fit on a labelled cohort (contract columns plus ``calcification_type``)."""
        kb = self.kb
        checked = validate_frame(cohort, knowledge=kb, label="required")
        self.classes_ = kb.class_names
        y = checked[LABEL].cat.codes.to_numpy().astype(np.intp)
        counts = np.bincount(y, minlength=len(self.classes_))
        if (counts == 0).any():
            absent = [self.classes_[i] for i in np.flatnonzero(counts == 0)]
            raise ValueError(f"the training cohort has no patients of class(es) {absent}; every class is needed")
        self._fit(checked, y)
        self.train_prevalence_ = dict(zip(self.classes_, (counts / counts.sum()).tolist()))
        self.train_n_ = int(len(checked))
        return self

    def predict_proba(self, df: pd.DataFrame, *, prevalence: Mapping[str, float] | None = None) -> pd.DataFrame:
        """Class probabilities, one column per class.

        ``prevalence`` re-weights them for another class mix exactly as
        :meth:`ml.CalcificationModel.predict_proba` does (prior-shift correction from the
        training prevalence), so that baselines and model are compared on an equal footing.
        """
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(cohort) first")
        kb = self.kb
        checked = validate_frame(df, knowledge=kb)
        p = self._proba(checked)
        if prevalence is not None:
            old = np.array([self.train_prevalence_[k] for k in self.classes_])
            p = adjust_prevalence(p, old, resolve_prevalence(prevalence, kb))
        return pd.DataFrame(p, index=checked.index, columns=list(self.classes_))

    def predict(self, df: pd.DataFrame, *, prevalence=None) -> pd.Series:
        return most_probable(self.predict_proba(df, prevalence=prevalence))

    def __repr__(self) -> str:
        state = f"fitted on {self.train_n_} patients" if self.is_fitted else "not fitted"
        return f"{type(self).__name__}({state})"

    # subclasses
    def _fit(self, checked: pd.DataFrame, y: np.ndarray) -> None:
        pass

    def _proba(self, checked: pd.DataFrame) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class MajorityBaseline(_Baseline):
    """Everyone gets the training cohort's class frequencies.

    Its accuracy is the share of the most frequent class and its log loss the entropy of the
    class mix: what a classifier achieves that reads no finding at all.
    """

    name = "majority"

    def _proba(self, checked: pd.DataFrame) -> np.ndarray:
        prior = np.array([self.train_prevalence_[k] for k in self.classes_])
        return np.repeat(prior[None, :], len(checked), axis=0)


class LogisticBaseline(_Baseline):
    """Multinomial logistic regression on the observed contract columns.

    A scikit-learn :class:`~sklearn.pipeline.Pipeline`:

    1. ``encode``: :class:`ml.model.Encoder` (the booster's float matrix; ``sex`` as one 0/1
       column, ``zone`` one-hot, NaN kept);
    2. ``impute``: median imputation, with a missing-indicator column added for every feature
       that had missing values at fit time (missingness is informative in these cohorts);
    3. ``scale``: standardization;
    4. ``logistic``: L2-regularized (``C``) multinomial logistic regression. The lbfgs solver
       fits the softmax model for more than two classes and is deterministic; ``max_iter`` is
       set high enough to converge at the solver's default tolerance (``converged_`` records
       it; a tighter ``tol=1e-6`` triples the time and changes the test log loss by < 0.001).

    Linear in the findings, it cannot represent the latent subtypes' interactions, which is
    the first thing the booster adds.
    """

    name = "logistic"

    def __init__(self, knowledge=None, *, C: float = 1.0, max_iter: int = 5000, tol: float = 1e-4):
        super().__init__(knowledge)
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def _fit(self, checked: pd.DataFrame, y: np.ndarray) -> None:
        encoder = Encoder(self.kb)
        self.pipeline_ = Pipeline(
            [
                ("encode", FunctionTransformer(encoder.transform, validate=False)),
                ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                ("scale", StandardScaler()),
                ("logistic", LogisticRegression(C=self.C, max_iter=self.max_iter, tol=self.tol)),
            ]
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.pipeline_.fit(checked, y)
        lr = self.pipeline_.named_steps["logistic"]
        self.n_iter_ = int(np.max(lr.n_iter_))
        self.converged_ = self.n_iter_ < self.max_iter
        for w in caught:  # re-emit anything but the convergence warning, which converged_ records
            if "converge" not in str(w.message).lower():
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def _proba(self, checked: pd.DataFrame) -> np.ndarray:
        lr = self.pipeline_.named_steps["logistic"]
        raw = self.pipeline_.predict_proba(checked)
        p = np.zeros((len(checked), len(self.classes_)))
        p[:, lr.classes_] = raw
        return p


class RuleScorer(_Baseline):
    """The Table-1 rule scorer: points a reader of the review would add up by hand.

    Built **only** from the knowledge base's roles and expectations
    (:meth:`data_gen.knowledge.Knowledge.roles`, plus the size range a ``within`` expectation
    quotes from the review), never from its likelihoods. For each class, the score is the sum
    over that class's clues, each worth +1 point for a role ``usual``, ``associated`` or
    ``cause`` and -1 for ``unusual``:

    * a binary finding: counts if present (recorded as 1). Not recorded counts as absent;
    * a categorical column with an expected level (``zone`` = upper / lower): counts if the
      patient has that level;
    * a continuous column with ``expect = "higher"`` / ``"lower"``: counts if the value is
      strictly above / below the **median of that column in the training cohort**, computed
      at fit time (a reader's "raised" / "young" needs a reference point; the pooled median is
      the simplest one that needs no likelihood numbers);
    * a continuous column with ``expect = "within"``: counts if the value lies in the range
      the review states (``expect_range``, inclusive; e.g. "nodules of 1-5 mm");
    * ``expect = "none"`` counts nothing, and neither does a continuous value not recorded.

    Probabilities: ``softmax(temperature * score + log(training prevalence))``. The single
    scale factor ``temperature`` (an inverse temperature: nats per point) is fitted on the
    training cohort by minimising the log loss with a bounded 1-D search
    (:func:`scipy.optimize.minimize_scalar`), and the prior term makes a patient without clues
    fall back to the class mix. Both are fitted, not read from the knowledge base, so the
    scorer's log loss is meaningful while its ranking stays the hand-made one.
    """

    name = "rules"

    def __init__(self, knowledge=None, *, temperature_bounds: tuple[float, float] = (0.0, 20.0)):
        super().__init__(knowledge)
        self.temperature_bounds = temperature_bounds

    def _clue_list(self) -> list[tuple[str, str, str, tuple, int]]:
        """(class, column, role, condition, points); condition = (column, op, argument)."""
        kb = self.kb
        out = []
        for k, col, role, expect in kb.roles():
            spec = kb.columns[col]
            points = -1 if role == "unusual" else 1
            if spec.kind == "binary":
                cond = (col, "present", None)
            elif spec.kind == "categorical":
                if expect not in spec.levels:
                    continue
                cond = (col, "level", expect)
            elif expect == "higher":
                cond = (col, "above median", None)
            elif expect == "lower":
                cond = (col, "below median", None)
            elif expect == "within":
                lo, hi = kb.classes[k].columns[col].expect_range
                cond = (col, "within", (float(lo), float(hi)))
            else:
                continue
            out.append((k, col, role, cond, points))
        return out

    @staticmethod
    def _describe(cond) -> str:
        _, op, arg = cond
        if op == "level":
            return f"= {arg}"
        if op == "within":
            return f"within [{arg[0]:g}, {arg[1]:g}]"
        return op

    def clues(self) -> pd.DataFrame:
        """The scorer's clues: class, column, role, condition, points (one row per clue)."""
        rows = [(k, col, role, self._describe(cond), pts) for k, col, role, cond, pts in self._clue_list()]
        return pd.DataFrame(rows, columns=["class", "column", "role", "condition", "points"])

    def _indicators(self, checked: pd.DataFrame) -> np.ndarray:
        """0/1 matrix (patients, conditions); a value not recorded never meets a condition."""
        F = np.zeros((len(checked), len(self._conditions)))
        for j, (col, op, arg) in enumerate(self._conditions):
            s = checked[col]
            if op == "level":
                F[:, j] = (s == arg).fillna(False).to_numpy(dtype=bool)
                continue
            # comparisons with NaN (not recorded, or an all-NaN training column) are False
            v = s.to_numpy(dtype=float, na_value=np.nan)
            if op == "present":
                F[:, j] = v == 1
            elif op == "above median":
                F[:, j] = v > self.medians_[col]
            elif op == "below median":
                F[:, j] = v < self.medians_[col]
            else:
                F[:, j] = (v >= arg[0]) & (v <= arg[1])
        return F

    def scores(self, df: pd.DataFrame) -> pd.DataFrame:
        """Integer points per class (the hand-made score, before the softmax)."""
        if not self.is_fitted:
            raise RuntimeError("RuleScorer is not fitted; call fit(cohort) first")
        checked = validate_frame(df, knowledge=self.kb)
        return pd.DataFrame(self._scores(checked).astype(int), index=checked.index, columns=list(self.classes_))

    def _scores(self, checked: pd.DataFrame) -> np.ndarray:
        return self._indicators(checked) @ self._weights

    def _fit(self, checked: pd.DataFrame, y: np.ndarray) -> None:
        classes = self.kb.class_names
        clues = self._clue_list()
        self._conditions = list(dict.fromkeys(cond for _, _, _, cond, _ in clues))
        pos = {c: j for j, c in enumerate(self._conditions)}
        W = np.zeros((len(self._conditions), len(classes)))
        for k, _, _, cond, pts in clues:
            W[pos[cond], classes.index(k)] += pts
        self._weights = W
        self.medians_ = {}
        for col, op, _ in self._conditions:
            if op in ("above median", "below median"):
                v = checked[col].to_numpy(dtype=float, na_value=np.nan)
                self.medians_[col] = float(np.nanmedian(v)) if not np.isnan(v).all() else float("nan")
        S = self._scores(checked)
        counts = np.bincount(y, minlength=len(classes))
        log_prior = np.log(counts / counts.sum())

        def loss(t: float) -> float:
            return float(-np.mean(log_softmax(t * S + log_prior[None, :], axis=1)[np.arange(len(y)), y]))

        res = minimize_scalar(loss, bounds=self.temperature_bounds, method="bounded", options={"xatol": 1e-6})
        self.temperature_ = float(res.x)
        self.train_log_loss_ = float(res.fun)
        self._log_prior = log_prior

    def _proba(self, checked: pd.DataFrame) -> np.ndarray:
        return np.exp(log_softmax(self.temperature_ * self._scores(checked) + self._log_prior[None, :], axis=1))


BASELINES: dict[str, type[_Baseline]] = {
    "majority": MajorityBaseline,
    "logistic": LogisticBaseline,
    "rules": RuleScorer,
}


# --------------------------------------------------------------------------------------------
# evaluate()
# --------------------------------------------------------------------------------------------
def jsonable(x):
    """Plain JSON types: NaN/inf -> None, numpy scalars -> Python, tuples -> lists, NA -> None."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, pd.DataFrame):
        return jsonable(x.astype(object).where(x.notna(), None).to_dict(orient="records"))
    if isinstance(x, pd.Series):
        return jsonable(x.to_dict())
    if isinstance(x, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in x]
    if x is None or x is pd.NA or x is pd.NaT:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    return x


@dataclass
class EvaluationResult:
    """Metrics of the model, the oracle and the baselines on one cohort.

    Attributes
    ----------
    metrics : dict
        name -> :func:`classification_metrics` dict. Names: ``model``, ``oracle`` and the
        baselines (``majority``, ``logistic``, ``rules`` by default), in that order.
    classes : tuple of str
    n : int
        Patients in the evaluation cohort.
    prevalence : dict or None
        The class mix given to every predictor (None: each one's default).
    baseline_training : dict
        How the baselines were fitted (``n`` and ``source``).
    y_true, proba
        The labels and each predictor's probabilities (for :meth:`bootstrap_gap` or a report);
        not part of :meth:`to_dict`.
    """

    metrics: dict[str, dict]
    classes: tuple[str, ...]
    n: int
    prevalence: dict | None = None
    baseline_training: dict = field(default_factory=dict)
    y_true: pd.Series | None = field(default=None, repr=False, compare=False)
    proba: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    def table(self) -> pd.DataFrame:
        """One row per predictor: accuracy, balanced_accuracy, macro_f1, log_loss, brier, ece."""
        return pd.DataFrame(
            [[m[c] for c in TABLE_COLUMNS] for m in self.metrics.values()],
            index=pd.Index(list(self.metrics), name="predictor"),
            columns=list(TABLE_COLUMNS),
        )

    def per_class(self) -> pd.DataFrame:
        """Precision, recall and support (patients of the class) per predictor and class."""
        rows, index = [], []
        for name, m in self.metrics.items():
            support = np.sum(m["confusion_matrix"], axis=1)
            for i, k in enumerate(self.classes):
                index.append((name, k))
                rows.append([m["precision"][k], m["recall"][k], int(support[i])])
        return pd.DataFrame(
            rows, index=pd.MultiIndex.from_tuples(index, names=["predictor", "class"]), columns=["precision", "recall", "support"]
        )

    def gap(self) -> dict[str, float]:
        """Model minus oracle: ``accuracy_pp`` (percentage points; negative = model behind) and
        ``log_loss`` (nats; positive = model behind)."""
        if "model" not in self.metrics or "oracle" not in self.metrics:
            raise ValueError("gap() needs both a model and the oracle in the evaluation")
        m, o = self.metrics["model"], self.metrics["oracle"]
        return {
            "accuracy_pp": 100.0 * (m["accuracy"] - o["accuracy"]),
            "log_loss": m["log_loss"] - o["log_loss"],
        }

    def bootstrap_gap(self, *, n_boot: int = 1000, random_state=0) -> dict:
        """:func:`paired_bootstrap_gap` of the model against the oracle on this cohort."""
        if "model" not in self.proba or "oracle" not in self.proba:
            raise ValueError("bootstrap_gap() needs both a model and the oracle in the evaluation")
        return paired_bootstrap_gap(
            self.y_true, self.proba["model"], self.proba["oracle"], n_boot=n_boot, random_state=random_state
        )

    def to_dict(self) -> dict:
        """Everything but the raw probabilities, as plain JSON types (NaN becomes null)."""
        out = {
            "n": self.n,
            "classes": list(self.classes),
            "prevalence": self.prevalence,
            "baseline_training": self.baseline_training,
            "metrics": self.metrics,
        }
        if "model" in self.metrics and "oracle" in self.metrics:
            out["gap"] = self.gap()
        return jsonable(out)


def _resolve_baselines(baselines, kb) -> dict[str, Any]:
    if baselines is None:
        baselines = tuple(BASELINES)
    if isinstance(baselines, Mapping):
        return dict(baselines)
    if isinstance(baselines, str) or not isinstance(baselines, Iterable):
        raise ValueError(f"baselines must be a sequence of names {list(BASELINES)} or a mapping name -> baseline, got {baselines!r}")
    out = {}
    for b in baselines:
        if isinstance(b, str):
            if b not in BASELINES:
                raise ValueError(f"unknown baseline {b!r}; known: {list(BASELINES)}")
            out[b] = BASELINES[b](kb)
        else:
            out[getattr(b, "name", type(b).__name__)] = b
    return out


def _check_labels_allowed(y: pd.Series, prior: np.ndarray, kb) -> None:
    """A labelled cohort cannot hold patients of a class the prevalence sets to 0."""
    counts = pd.Series(np.asarray(y).astype(object)).value_counts()
    excluded = [(k, int(counts.get(k, 0))) for k, share in zip(kb.class_names, prior) if share <= 0 and counts.get(k, 0) > 0]
    if excluded:
        shown = ", ".join(f"{n:,} labelled {k!r}" for k, n in excluded)
        raise ValueError(
            f"the cohort has {shown}, but the prevalence sets {'that class' if len(excluded) == 1 else 'those classes'} to 0: "
            "the setting it describes has no such patients; give each class in the cohort a share > 0, or leave the prevalence out"
        )


def evaluate(
    model,
    cohort: pd.DataFrame,
    *,
    prevalence: Mapping[str, float] | None = None,
    baselines=None,
    train_cohort: pd.DataFrame | None = None,
    oracle: bool = True,
) -> EvaluationResult:
    """Evaluate a classifier side by side with the oracle and the baselines on one cohort.

    Parameters
    ----------
    model : CalcificationModel or None
        Anything with ``predict_proba(df, prevalence=...)`` returning one column per class.
        None evaluates only the oracle and the baselines.
    cohort : pandas.DataFrame
        Labelled patients (contract columns plus ``calcification_type``), checked with
        ``data_gen.validate_frame(label="required")``. Use a cohort none of the predictors
        was trained on.
    prevalence : mapping class -> share, optional
        Class mix of the setting, given to the model, the oracle
        (``oracle_proba(prevalence=...)``) and the baselines (prior-shift correction of their
        training prevalence). Default: each predictor's own (the knowledge base's mix for
        generated training cohorts).
    baselines : None, sequence or mapping
        None: all of ``("majority", "logistic", "rules")``. A sequence of those names (``()``
        for none) or of baseline objects, or a mapping name -> baseline. Objects that are
        already fitted (``is_fitted``) are used as they are; the others are fitted.
    train_cohort : pandas.DataFrame, optional
        The labelled cohort the baselines are fitted on. Default: a fresh
        ``generate_cohort(50_000, random_state=12345)`` (:data:`BASELINE_TRAIN_N`,
        :data:`BASELINE_TRAIN_SEED`), generated only if a baseline needs fitting. 50k is ample
        for baselines with at most a few hundred parameters, and the fixed seed makes the
        baseline rows reproducible; do not evaluate on that seed.
    oracle : bool
        Include the exact Bayes posterior (:func:`data_gen.oracle_proba`).

    Returns
    -------
    EvaluationResult

    Examples
    --------
    >>> from data_gen import generate_cohort
    >>> res = evaluate(None, generate_cohort(2000, random_state=5), baselines=["majority"],
    ...                train_cohort=generate_cohort(2000, random_state=6))
    >>> list(res.table().index)
    ['oracle', 'majority']
    """
    knowledge = getattr(model, "knowledge", None) if model is not None else None
    kb = knowledge if isinstance(knowledge, Knowledge) else load_knowledge()
    checked = validate_frame(cohort, knowledge=kb, label="required")
    classes = kb.class_names
    y = checked[LABEL]
    kwargs = {} if prevalence is None else {"prevalence": prevalence}
    if prevalence is not None:
        _check_labels_allowed(y, resolve_prevalence(prevalence, kb), kb)  # refuse a bad mix before any work
    features = checked.drop(columns=[LABEL])

    proba: dict[str, pd.DataFrame] = {}
    if model is not None:
        proba["model"] = model.predict_proba(features, **kwargs)
    if oracle:
        with warnings.catch_warnings():
            # impossible patients get NaN with a warning; classification_metrics refuses them
            warnings.simplefilter("ignore", RuntimeWarning)
            proba["oracle"] = oracle_proba(features, knowledge=kb, **kwargs)

    resolved = _resolve_baselines(baselines, kb)
    training = {}
    need_fit = [name for name, b in resolved.items() if not getattr(b, "is_fitted", False)]
    if need_fit:
        if train_cohort is None:
            train_cohort = generate_cohort(BASELINE_TRAIN_N, random_state=BASELINE_TRAIN_SEED, knowledge=kb)
            training = {"n": BASELINE_TRAIN_N, "source": f"generate_cohort({BASELINE_TRAIN_N}, random_state={BASELINE_TRAIN_SEED})"}
        else:
            training = {"n": int(len(train_cohort)), "source": "train_cohort argument"}
        for name in need_fit:
            resolved[name].fit(train_cohort)
    for name, b in resolved.items():
        if name in proba:
            raise ValueError(f"baseline name {name!r} clashes with another predictor")
        proba[name] = b.predict_proba(features, **kwargs)

    metrics = {}
    for name, p in proba.items():
        try:
            metrics[name] = classification_metrics(y, p, classes)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return EvaluationResult(
        metrics=metrics,
        classes=tuple(classes),
        n=int(len(checked)),
        prevalence=None if prevalence is None else dict(zip(classes, resolve_prevalence(prevalence, kb).tolist())),
        baseline_training=training,
        y_true=y,
        proba=proba,
    )


# --------------------------------------------------------------------------------------------
# Paired bootstrap
# --------------------------------------------------------------------------------------------
#: Bootstrap index matrices are drawn in batches of about this many entries (int64: 8 bytes each).
_BOOT_BATCH_ENTRIES = 4_000_000


def paired_bootstrap_gap(
    y,
    proba_model,
    proba_oracle,
    *,
    n_boot: int = 1000,
    random_state=0,
    classes: Sequence[str] | None = None,
) -> dict:
    """The model's gap to the oracle with 95% percentile CIs (paired bootstrap over patients).

    Each bootstrap replicate resamples patients with replacement and recomputes both
    predictors' metrics on the *same* resampled patients, so the patient-to-patient variation
    common to both cancels and the CI is that of the gap itself.

    Parameters
    ----------
    y : array-like of str
        True classes.
    proba_model, proba_oracle : DataFrame or array (n_patients, n_classes)
        Probabilities of the model and of the oracle for the same patients.
    n_boot : int
        Bootstrap replicates.
    random_state : int or numpy Generator
        Seeds the resampling; the result is deterministic for a seed.
    classes : sequence of str, optional
        Class order; defaults to the columns of ``proba_model`` (then it must be a DataFrame).

    Returns
    -------
    dict
        ``accuracy_gap_pp``: oracle accuracy minus model accuracy in percentage points
        (positive = model behind) and ``accuracy_gap_pp_ci`` [low, high];
        ``log_loss_gap``: model log loss minus oracle log loss in nats (positive = model
        behind) and ``log_loss_gap_ci``; both predictors' accuracy and log loss; ``n`` and
        ``n_boot``.
    """
    if classes is None:
        if not isinstance(proba_model, pd.DataFrame):
            raise ValueError("give classes, or proba_model as a DataFrame with one column per class")
        classes = [str(c) for c in proba_model.columns]
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    yc = _as_codes(y, classes)
    n = len(yc)
    if n == 0:
        raise ValueError("no patients")
    pm = _as_proba(proba_model, classes, n, "proba_model")
    po = _as_proba(proba_oracle, classes, n, "proba_oracle")
    correct_m = _top_label(pm, yc)[1]
    correct_o = _top_label(po, yc)[1]
    loss_m = _log_losses(pm, yc)
    loss_o = _log_losses(po, yc)
    d_acc = 100.0 * (correct_o.astype(float) - correct_m.astype(float))
    d_ll = loss_m - loss_o

    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    batch = max(1, min(n_boot, _BOOT_BATCH_ENTRIES // n))
    boot_acc = np.empty(n_boot)
    boot_ll = np.empty(n_boot)
    for start in range(0, n_boot, batch):
        b = min(batch, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        boot_acc[start : start + b] = d_acc[idx].mean(axis=1)
        boot_ll[start : start + b] = d_ll[idx].mean(axis=1)

    def ci(v):
        lo, hi = np.percentile(v, [2.5, 97.5])
        return [float(lo), float(hi)]

    return {
        "n": int(n),
        "n_boot": int(n_boot),
        "accuracy_gap_pp": float(d_acc.mean()),
        "accuracy_gap_pp_ci": ci(boot_acc),
        "log_loss_gap": float(d_ll.mean()),
        "log_loss_gap_ci": ci(boot_ll),
        "model_accuracy": float(correct_m.mean()),
        "oracle_accuracy": float(correct_o.mean()),
        "model_log_loss": float(loss_m.mean()),
        "oracle_log_loss": float(loss_o.mean()),
    }


# --------------------------------------------------------------------------------------------
# Learning curve
# --------------------------------------------------------------------------------------------
LEARNING_CURVE_COLUMNS = (
    "n_train",
    "model_accuracy",
    "model_log_loss",
    "oracle_accuracy",
    "oracle_log_loss",
    "accuracy_gap_pp",
    "log_loss_gap",
    "n_iter",
    "seconds",
)


def _train_seed(seed: int, size: int) -> np.random.SeedSequence:
    """The training cohort's seed for one size: independent streams per (seed, size) that can
    never coincide with a plain integer seed such as the test cohort's."""
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(int(size),))


def learning_curve(
    sizes: Sequence[int] = (1_000, 3_000, 10_000, 30_000, 100_000, 200_000),
    *,
    test_n: int = 100_000,
    seed: int = 1,
    test_seed: int = 9_000_001,
    train_params: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Model vs oracle accuracy and log loss as the training cohort grows.

    For each size, a training cohort is generated with the seed
    ``numpy.random.SeedSequence(seed, spawn_key=(size,))`` (independent per size, never equal
    to the test seed), the classifier is trained with ``ml.train(cohort, random_state=seed,
    **train_params)``, and it is scored on one fixed test cohort
    ``generate_cohort(test_n, random_state=test_seed)``, on which the oracle is scored too.

    Parameters
    ----------
    sizes : sequence of int
        Training cohort sizes.
    test_n, test_seed : int
        The fixed test cohort.
    seed : int
        Seeds the training cohorts and the booster's validation split.
    train_params : mapping, optional
        Keyword arguments of :func:`ml.train` (booster overrides such as ``max_iter``, or
        ``random_state`` to override ``seed`` for the booster).
    progress : callable(str), optional
        Receives one line per step (the CLI prints them); the library itself never prints.

    Returns
    -------
    pandas.DataFrame
        One row per size with :data:`LEARNING_CURVE_COLUMNS`: ``n_train``, ``model_accuracy``,
        ``model_log_loss``, ``oracle_accuracy``, ``oracle_log_loss``, ``accuracy_gap_pp``
        (oracle minus model, percentage points; positive = model behind), ``log_loss_gap``
        (model minus oracle, nats; positive = model behind), ``n_iter`` (boosting
        iterations) and ``seconds`` (training wall time).
    """
    from .model import train

    say = progress if progress is not None else (lambda line: None)
    sizes = [int(s) for s in sizes]
    if not sizes or any(s <= 0 for s in sizes):
        raise ValueError(f"sizes must be positive integers, got {sizes}")
    params = dict(train_params or {})
    rs = params.pop("random_state", seed)
    kb = load_knowledge(params.get("knowledge")) if not isinstance(params.get("knowledge"), Knowledge) else params["knowledge"]

    say(f"learning curve: generating the test cohort ({test_n:,} patients, seed {test_seed})")
    test = validate_frame(generate_cohort(test_n, random_state=test_seed, knowledge=kb), knowledge=kb, label="required")
    classes = kb.class_names
    y = test[LABEL]
    features = test.drop(columns=[LABEL])
    oracle_m = classification_metrics(y, oracle_proba(features, knowledge=kb), classes)
    say(f"learning curve: oracle accuracy {oracle_m['accuracy']:.4f}, log loss {oracle_m['log_loss']:.4f}")

    rows = []
    for i, size in enumerate(sizes, 1):
        cohort = generate_cohort(size, random_state=_train_seed(seed, size), knowledge=kb)
        t0 = time.perf_counter()
        model = train(cohort, random_state=rs, **params)
        seconds = time.perf_counter() - t0
        m = classification_metrics(y, model.predict_proba(features), classes)
        row = {
            "n_train": size,
            "model_accuracy": m["accuracy"],
            "model_log_loss": m["log_loss"],
            "oracle_accuracy": oracle_m["accuracy"],
            "oracle_log_loss": oracle_m["log_loss"],
            "accuracy_gap_pp": 100.0 * (oracle_m["accuracy"] - m["accuracy"]),
            "log_loss_gap": m["log_loss"] - oracle_m["log_loss"],
            "n_iter": int(model.booster.n_iter_),
            "seconds": seconds,
        }
        rows.append(row)
        say(
            f"learning curve [{i}/{len(sizes)}] n={size:,}: {row['n_iter']} iterations in {seconds:.1f} s; "
            f"accuracy gap {row['accuracy_gap_pp']:.2f} pp, log-loss gap {row['log_loss_gap']:.4f}"
        )
    return pd.DataFrame(rows, columns=list(LEARNING_CURVE_COLUMNS))
