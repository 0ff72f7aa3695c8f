"""SHAP explanations of the classifier, reported under the input contract's column names.

``feature_perturbation="tree_path_dependent"``: the exact TreeSHAP algorithm that follows each
tree's own training-sample counts down the branches a missing feature would take. It needs no
background sample, is exact for the trees, and runs in O(trees × leaves × depth²) per patient,
which is what makes explaining thousands of patients per second possible. The interventional
alternative would need a background set and cost a factor of its size more. Values are raw
per-class scores (the booster's log-odds), additive to the model's ``decision_function``.

Encoded columns (``zone`` one-hot, ``sex``) are summed back into their contract column, so an
explanation always speaks the contract's names.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd

__all__ = ["centred_shap", "explain", "shap_values", "tree_explainer"]

_CHUNK = 2_000


def tree_explainer(model):
    """The (cached) shap TreeExplainer of a model's booster."""
    import shap

    cached = getattr(model, "_tree_explainer", None)
    if cached is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cached = shap.TreeExplainer(model.booster, feature_perturbation="tree_path_dependent", model_output="raw")
        model._tree_explainer = cached
    return cached


def _chunk_values(explainer, X: np.ndarray) -> np.ndarray:
    vals = explainer.shap_values(X, check_additivity=False)
    if isinstance(vals, list):  # older shap: one array per class
        vals = np.stack(vals, axis=-1)
    return np.asarray(vals, dtype=np.float64)


def shap_values(model, X: np.ndarray, *, n_jobs: int | None = None) -> np.ndarray:
    """Raw SHAP values (patients, encoded features, classes) of an encoded matrix.

    ``n_jobs`` processes share the rows (joblib); None uses every core when there are more
    than a few thousand rows.
    """
    explainer = tree_explainer(model)
    n = len(X)
    if n_jobs is None:
        n_jobs = min(os.cpu_count() or 1, max(1, n // _CHUNK))
    if n_jobs == 1 or n <= _CHUNK:
        return _chunk_values(explainer, X)
    from joblib import Parallel, delayed

    bounds = np.linspace(0, n, n_jobs + 1).astype(int)
    parts = Parallel(n_jobs=n_jobs)(
        delayed(_chunk_values)(explainer, X[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a
    )
    return np.concatenate(parts, axis=0)


def explain(model, df: pd.DataFrame, *, n_jobs: int | None = None, id_column: str | None = None):
    """SHAP values of the model for each patient, column and class.

    Parameters
    ----------
    model : CalcificationModel
    df : pandas.DataFrame
        Patients in the input contract, checked before anything else.
    n_jobs : int, optional
        Processes to spread the patients over (default: all cores for large inputs).
    id_column : str, optional
        A column identifying patients (kept as the index of ``data``).

    Returns
    -------
    shap.Explanation
        ``values`` of shape (patients, contract columns, classes) in raw score units;
        ``base_values`` of shape (patients, classes); ``data`` the patients' contract values
        (binary and continuous as floats, ``sex`` and ``zone`` as text), ``feature_names``
        the contract columns and ``output_names`` the classes. For every patient and class,
        ``base_values + values.sum(axis=1)`` equals ``model.decision_function`` to 1e-6.

    Examples
    --------
    >>> from data_gen import paper_cases
    >>> from ml import load_model, explain
    >>> ex = explain(load_model(), paper_cases())
    >>> ex.values.shape
    (3, 52, 5)
    """
    import shap

    checked = model.check(df, id_column=id_column)
    X = model.encoder.transform(checked)
    raw = shap_values(model, X, n_jobs=n_jobs)
    values = np.einsum("nfk,fj->njk", raw, model.encoder.source_matrix())
    explainer = tree_explainer(model)
    base = np.broadcast_to(np.asarray(explainer.expected_value, dtype=float), (len(X), len(model.classes_))).copy()
    data = checked[list(model.encoder.columns)].astype(object).where(checked[list(model.encoder.columns)].notna(), np.nan)
    return shap.Explanation(
        values=values,
        base_values=base,
        data=data.to_numpy(),
        feature_names=list(model.encoder.columns),
        output_names=list(model.classes_),
    )


def centred_shap(values: np.ndarray) -> np.ndarray:
    """SHAP values (patients, columns, classes) minus their mean over the classes."""
    values = np.asarray(values, dtype=float)
    return values - values.mean(axis=-1, keepdims=True)
