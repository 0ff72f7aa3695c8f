"""Baselines that put the model's accuracy in context: majority, logistic regression, Table-1 rules.

Each has ``fit(cohort)`` / ``predict_proba(df)`` behind the input contract. The rule scorer is
what a reader of the review would apply by hand, built from the knowledge base's roles only
(never its likelihoods), so it measures what the review's table alone achieves.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping


import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from data_gen import LABEL, load_knowledge, validate_frame
from data_gen.knowledge import Knowledge
from data_gen.sampler import resolve_prevalence

from ..model import Encoder, adjust_prevalence, most_probable


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
