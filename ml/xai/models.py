"""Any scikit-learn classifier behind the input contract, and one numeric view of every model.

Design. The explainer benchmark compares attribution methods on several models, so every model
is seen through one :class:`ModelView`: the contract's :class:`ml.Encoder` turns patients into
the float matrix the model reads (NaN kept as "not recorded"), ``output`` is the per-class
score that attributions explain, ``proba`` the class probabilities, and ``tree`` the estimator
shap's TreeExplainer reads (None for non-tree models). The explained output is the model's own
additive scale: raw log-odds for the shipped booster and a logistic regression (centred across
classes they are the centred log posterior, the oracle's scale), class probabilities for a
random forest (the only output shap's TreeSHAP is exact for on a forest). Agreement metrics are
rank and sign based, so the two scales are compared on an equal footing.

Model-agnostic explainers perturb patients in the *code space* (:func:`to_codes`): one float
column per contract column, a categorical column as its level code, NaN for not recorded. A
player is then a contract column, never an encoded indicator. :func:`codes_to_encoded` maps
codes back to the encoder's matrix without building a frame, so that thousands of perturbed
rows per patient cost one vectorised pass.

:class:`ContractClassifier` wraps a scikit-learn estimator (or pipeline) trained on the
encoder's matrix; :func:`logistic_regression` and :func:`random_forest` are the two small
models of the leaderboard. Research and teaching on synthetic data only; never a clinical device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from data_gen import LABEL, load_knowledge, validate_frame
from data_gen.knowledge import Knowledge

from ..model import CalcificationModel, Encoder, most_probable

__all__ = [
    "ContractClassifier",
    "ModelView",
    "codes_to_encoded",
    "logistic_regression",
    "random_forest",
    "to_codes",
    "view_of",
]


class ContractClassifier:
    """A scikit-learn classifier trained on the contract's encoded matrix.

    Parameters
    ----------
    estimator : scikit-learn classifier or Pipeline
        Fitted by :meth:`fit` on :class:`ml.Encoder` output (floats, NaN = not recorded): it must
        accept NaN itself or impute it (e.g. a ``SimpleImputer`` step).
    name : str
        Shown in the leaderboard.
    additive : bool
        True when the explained output is a sum of one function per contract column (a linear
        model after column-wise steps): its exact interventional Shapley values then have a
        closed form (:func:`ml.xai.explainers.additive_shapley`).
    knowledge : Knowledge or path, optional
    """

    def __init__(self, estimator, *, name: str, additive: bool = False, knowledge=None):
        self.estimator = estimator
        self.name = name
        self.additive = bool(additive)
        self._kb = knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)
        self.encoder = Encoder(self._kb)
        self.classes_ = tuple(self._kb.class_names)

    @property
    def knowledge(self) -> Knowledge:
        return self._kb

    def check(self, df: pd.DataFrame, *, id_column: str | None = None) -> pd.DataFrame:
        """Validate patients against the contract (the label column is allowed and ignored)."""
        return validate_frame(df, knowledge=self._kb, id_column=id_column)

    def fit(self, cohort: pd.DataFrame) -> "ContractClassifier":
        """Fit on a labelled cohort (contract columns plus ``calcification_type``)."""
        checked = validate_frame(cohort, knowledge=self._kb, label="required")
        y = checked[LABEL].cat.codes.to_numpy()
        missing = sorted(set(range(len(self.classes_))) - set(np.unique(y)))
        if missing:
            raise ValueError(f"the training cohort has no patients of class(es) {[self.classes_[i] for i in missing]}")
        self.estimator.fit(self.encoder.transform(checked), y)
        return self

    def predict_proba(self, df: pd.DataFrame) -> pd.DataFrame:
        """Class probabilities, one column per class (rows sum to 1)."""
        checked = self.check(df)
        p = self.estimator.predict_proba(self.encoder.transform(checked))
        return pd.DataFrame(p, index=checked.index, columns=list(self.classes_))

    def predict(self, df: pd.DataFrame) -> pd.Series:
        return most_probable(self.predict_proba(df))

    def __repr__(self) -> str:
        return f"ContractClassifier({self.name!r}, {type(self.estimator).__name__})"


def logistic_regression(*, knowledge=None, C: float = 1.0) -> ContractClassifier:
    """Multinomial logistic regression: median imputation with a not-recorded indicator, scaling.

    Every step acts on one encoded column at a time, so the log-odds are additive over contract
    columns and the model's exact interventional Shapley values have a closed form.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=C, max_iter=2000),
    )
    return ContractClassifier(pipe, name="logistic_regression", additive=True, knowledge=knowledge)


def random_forest(*, knowledge=None, random_state: int = 0, n_estimators: int = 100) -> ContractClassifier:
    """A random forest reading NaN natively (scikit-learn >= 1.4), kept small for TreeSHAP.

    ``max_depth=10`` and ``min_samples_leaf=20`` bound each tree at 1,024 leaves: path-dependent
    TreeSHAP costs trees × leaves × depth² per patient, so an unbounded forest on 50k patients
    would be hundreds of times slower to explain for little gain in accuracy.
    """
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(
        n_estimators=n_estimators, max_depth=10, min_samples_leaf=20, n_jobs=1, random_state=random_state
    )
    return ContractClassifier(rf, name="random_forest", knowledge=knowledge)


# --------------------------------------------------------------------------------------------
# Code space
# --------------------------------------------------------------------------------------------
def to_codes(encoder: Encoder, checked: pd.DataFrame) -> np.ndarray:
    """(patients, contract columns) floats: values, level codes for categoricals, NaN = not recorded."""
    Z = np.empty((len(checked), len(encoder.columns)))
    for j, c in enumerate(encoder.columns):
        if c in encoder.levels:
            codes = checked[c].cat.codes.to_numpy()
            Z[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            Z[:, j] = checked[c].to_numpy(dtype=float, na_value=np.nan)
    return Z


def codes_to_encoded(encoder: Encoder, Z: np.ndarray) -> np.ndarray:
    """The encoder's matrix of a code-space matrix (the inverse view of :func:`to_codes`)."""
    Z = np.asarray(Z, dtype=float)
    X = np.empty((len(Z), len(encoder.feature_names)))
    f = 0
    for j, c in enumerate(encoder.columns):
        lv = encoder.levels.get(c)
        z = Z[:, j]
        if lv is None:
            X[:, f] = z
            f += 1
        elif len(lv) == 2:
            X[:, f] = np.where(np.isnan(z), np.nan, z == 1)
            f += 1
        else:
            for k in range(len(lv)):
                X[:, f] = np.where(np.isnan(z), np.nan, z == k)
                f += 1
    return X


# --------------------------------------------------------------------------------------------
# One view of every model
# --------------------------------------------------------------------------------------------
@dataclass
class ModelView:
    """What the benchmark needs of a model (see the module docstring).

    Attributes
    ----------
    name : str
    model : CalcificationModel or ContractClassifier
    encoder : Encoder
    classes : tuple of str
    output : callable
        (rows, encoded features) -> (rows, classes): the score attributions explain.
    proba : callable
        (rows, encoded features) -> (rows, classes): class probabilities.
    output_scale : str
        "log-odds" or "probability".
    tree : estimator or None
        What shap.TreeExplainer reads (None for non-tree models).
    additive : bool
        The output is additive over contract columns.
    """

    name: str
    model: object
    encoder: Encoder
    classes: tuple
    output: Callable[[np.ndarray], np.ndarray]
    proba: Callable[[np.ndarray], np.ndarray]
    output_scale: str
    tree: object = None
    additive: bool = False

    def check(self, X: pd.DataFrame) -> pd.DataFrame:
        return self.model.check(X)

    def output_codes(self, Z: np.ndarray) -> np.ndarray:
        """``output`` of a code-space matrix."""
        return np.asarray(self.output(codes_to_encoded(self.encoder, Z)), dtype=float)

    def proba_codes(self, Z: np.ndarray) -> np.ndarray:
        return np.asarray(self.proba(codes_to_encoded(self.encoder, Z)), dtype=float)


def _is_tree(est) -> bool:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier

    kinds = (RandomForestClassifier, ExtraTreesClassifier, GradientBoostingClassifier, HistGradientBoostingClassifier, DecisionTreeClassifier)
    return isinstance(est, kinds)


def view_of(model) -> ModelView:
    """The :class:`ModelView` of the shipped model class or a :class:`ContractClassifier`.

    Raises
    ------
    TypeError
        For any other object, naming what is accepted.
    """
    if isinstance(model, ModelView):
        return model
    if isinstance(model, CalcificationModel):
        b = model.booster
        return ModelView(
            "booster", model, model.encoder, tuple(model.classes_), b.decision_function, b.predict_proba, "log-odds", tree=b
        )
    if isinstance(model, ContractClassifier):
        est = model.estimator
        tree = est if _is_tree(est) else None
        if model.additive or type(est).__name__ in ("HistGradientBoostingClassifier", "GradientBoostingClassifier"):
            out, scale = est.decision_function, "log-odds"
        else:
            out, scale = est.predict_proba, "probability"
        return ModelView(model.name, model, model.encoder, tuple(model.classes_), out, est.predict_proba, scale, tree=tree, additive=model.additive)
    raise TypeError(
        f"cannot benchmark explanations of a {type(model).__name__}: pass an ml.CalcificationModel or an "
        "ml.xai.ContractClassifier (any scikit-learn classifier behind the contract's encoder)"
    )


def refit_permuted(view: ModelView, cohort: pd.DataFrame, rng: np.random.Generator) -> ModelView:
    """The same kind of model trained on ``cohort`` with its labels permuted (the null model).

    The shipped booster's family is retrained by :func:`ml.train` with 30 iterations (as the
    audit's floor); a :class:`ContractClassifier` is cloned and refitted.
    """
    from sklearn.base import clone

    shuffled = cohort.copy()
    labels = shuffled[LABEL].to_numpy()
    shuffled[LABEL] = labels[rng.permutation(len(labels))]
    seed = int(rng.integers(2**31 - 1))
    if isinstance(view.model, CalcificationModel):
        from ..model import train

        null = train(shuffled, random_state=seed, knowledge=view.model.knowledge, max_iter=30)
    else:
        m = view.model
        null = ContractClassifier(clone(m.estimator), name=m.name, additive=m.additive, knowledge=m.knowledge).fit(shuffled)
    v = view_of(null)
    v.name = view.name
    return v
