"""``evaluate``: the model, the oracle and the baselines on the same cohort, as one result.

The yardstick is the exact Bayes posterior (:func:`data_gen.oracle_proba`): no classifier can
do better in expectation on cohorts drawn from the knowledge base, so "model minus oracle" is the
part of the error training could still remove.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pathlib import Path

import numpy as np
import pandas as pd

from data_gen import LABEL, generate_cohort, load_knowledge, oracle_proba, validate_frame
from data_gen.knowledge import Knowledge
from data_gen.sampler import resolve_prevalence

from .baselines import BASELINES
from .bootstrap import paired_bootstrap_gap
from .metrics import BASELINE_TRAIN_N, BASELINE_TRAIN_SEED, TABLE_COLUMNS, classification_metrics


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
    progress: Callable[[int, int, str], None] | None = None,
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
    progress : callable(done, total, label), optional
        Called as each step starts (the model, the oracle, each baseline's fit and prediction,
        the metrics) and once at the end with ``done == total``.

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

    resolved = _resolve_baselines(baselines, kb)
    need_fit = [name for name, b in resolved.items() if not getattr(b, "is_fitted", False)]
    steps = (["model"] if model is not None else []) + (["oracle"] if oracle else [])
    steps += [f"fitting {name}" for name in need_fit] + list(resolved) + ["metrics"]
    done = iter(range(len(steps) + 1))

    def step(label: str) -> None:
        if progress is not None:
            progress(next(done), len(steps), label)

    proba: dict[str, pd.DataFrame] = {}
    if model is not None:
        step("model")
        proba["model"] = model.predict_proba(features, **kwargs)
    if oracle:
        step("oracle")
        with warnings.catch_warnings():
            # impossible patients get NaN with a warning; classification_metrics refuses them
            warnings.simplefilter("ignore", RuntimeWarning)
            proba["oracle"] = oracle_proba(features, knowledge=kb, **kwargs)

    training = {}
    if need_fit:
        if train_cohort is None:
            train_cohort = generate_cohort(BASELINE_TRAIN_N, random_state=BASELINE_TRAIN_SEED, knowledge=kb)
            training = {"n": BASELINE_TRAIN_N, "source": f"generate_cohort({BASELINE_TRAIN_N}, random_state={BASELINE_TRAIN_SEED})"}
        else:
            training = {"n": int(len(train_cohort)), "source": "train_cohort argument"}
        for name in need_fit:
            step(f"fitting {name}")
            resolved[name].fit(train_cohort)
    for name, b in resolved.items():
        if name in proba:
            raise ValueError(f"baseline name {name!r} clashes with another predictor")
        step(name)
        proba[name] = b.predict_proba(features, **kwargs)

    step("metrics")
    metrics = {}
    for name, p in proba.items():
        try:
            metrics[name] = classification_metrics(y, p, classes)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    step("done")
    return EvaluationResult(
        metrics=metrics,
        classes=tuple(classes),
        n=int(len(checked)),
        prevalence=None if prevalence is None else dict(zip(classes, resolve_prevalence(prevalence, kb).tolist())),
        baseline_training=training,
        y_true=y,
        proba=proba,
    )
