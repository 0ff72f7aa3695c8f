"""How closely attributions agree with the exact weight of evidence, and one patient's top reasons.

:func:`attribution_agreement` compares any two attribution arrays patient by patient (Spearman,
sign agreement, top-k overlap); :func:`oracle_agreement` applies it to the model's SHAP values
against the oracle's weight of evidence (:func:`data_gen.weight_of_evidence`), with a random and a
permuted-label floor so that a number can be read against what chance and a model without signal
reach. The clue audit itself is :mod:`ml.audit`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from data_gen import LABEL

from .audit import _explanation_parts, _jsonable, _subsample

__all__ = ["attribution_agreement", "oracle_agreement", "top_reasons"]


# Agreement with the oracle's weight of evidence
# --------------------------------------------------------------------------------------------
def _rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of matching rows of two (P, J) arrays; NaN where a row is constant."""
    ra = rankdata(a, axis=1)
    rb = rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    num = (ra * rb).sum(axis=1)
    den = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    # a constant row has all-equal ranks, i.e. zero centred ranks
    ok = ((ra != 0).any(axis=1)) & ((rb != 0).any(axis=1)) & (den > 0)
    out = np.full(len(a), np.nan)
    out[ok] = num[ok] / den[ok]
    return out


def _topk_positions(a: np.ndarray, k: int) -> np.ndarray:
    """Column positions of the k largest |a| per row, in rank order (ties by column order)."""
    return np.argsort(-np.abs(a), axis=1, kind="stable")[:, :k]


def attribution_agreement(a: np.ndarray, b: np.ndarray, *, k=(1, 3, 5), sign_tol: float = 1e-9) -> dict[str, float]:
    """Agreement of two attributions of shape (patients, columns, classes), per (patient, class).

    ``b`` is the reference (e.g. the oracle's weight of evidence). Returns a flat dict:

    * ``spearman_median``, ``spearman_q1``, ``spearman_q3``, ``spearman_mean``: Spearman rank
      correlation across columns, over (patient, class) pairs where neither vector is
      constant (``n_pairs`` counted, ``n_pairs_skipped`` not);
    * ``sign_agreement``: the share of (patient, column, class) entries with |b| > ``sign_tol``
      whose signs agree;
    * ``FA@k``, ``RA@k``, ``SA@k`` for each k (Agarwal et al. 2022, OpenXAI), averaged over
      (patient, class) pairs: feature agreement |top_k(a) ∩ top_k(b)| / k (top k by absolute
      value); rank agreement, the share of the k positions holding the same column in both;
      sign agreement, the number of columns in both top-k sets with the same sign, over k.

    Vectorised: no Python loop over patients.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"attributions must share a (patients, columns, classes) shape, got {a.shape} and {b.shape}")
    n, J, K = a.shape
    # differences below 1e-12 (e.g. from centring values that are already centred) are float
    # noise: rounding them away keeps exact ties tied and exact zeros zero
    A = np.round(np.moveaxis(a, 2, 1).reshape(n * K, J), 12)
    B = np.round(np.moveaxis(b, 2, 1).reshape(n * K, J), 12)
    rho = _rowwise_spearman(A, B)
    valid = rho[np.isfinite(rho)]
    out: dict[str, float] = {}
    if len(valid):
        q1, med, q3 = np.quantile(valid, [0.25, 0.5, 0.75])
        out.update(spearman_median=float(med), spearman_q1=float(q1), spearman_q3=float(q3), spearman_mean=float(valid.mean()))
    else:
        out.update(spearman_median=float("nan"), spearman_q1=float("nan"), spearman_q3=float("nan"), spearman_mean=float("nan"))
    out["n_pairs"] = int(len(valid))
    out["n_pairs_skipped"] = int(len(rho) - len(valid))
    mask = np.abs(B) > sign_tol
    out["sign_agreement"] = float((np.sign(A) == np.sign(B))[mask].mean()) if mask.any() else float("nan")
    same_sign = np.sign(A) == np.sign(B)
    rows = np.arange(len(A))[:, None]
    for kk in sorted({int(x) for x in np.atleast_1d(k)}):
        if not 1 <= kk <= J:
            raise ValueError(f"k must be between 1 and {J}, got {kk}")
        ta, tb = _topk_positions(A, kk), _topk_positions(B, kk)
        ma = np.zeros_like(A, dtype=bool)
        mb = np.zeros_like(B, dtype=bool)
        ma[rows, ta] = True
        mb[rows, tb] = True
        both = ma & mb
        out[f"FA@{kk}"] = float((both.sum(axis=1) / kk).mean())
        out[f"RA@{kk}"] = float((ta == tb).mean())
        out[f"SA@{kk}"] = float(((both & same_sign).sum(axis=1) / kk).mean())
    return out


def _centre(values: np.ndarray) -> np.ndarray:
    return values - values.mean(axis=2, keepdims=True)


def _aligned(values, features, classes, columns, class_names) -> np.ndarray:
    """Reorder (n, J, K) values to the oracle's column and class order."""
    fi = [features.index(c) for c in columns]
    ki = [classes.index(k) for k in class_names]
    return values[:, fi][:, :, ki]


def oracle_agreement(
    model,
    cohort: pd.DataFrame,
    *,
    explanation=None,
    evidence=None,
    max_patients: int | None = 5_000,
    k=(1, 3, 5),
    random_state=0,
    floors: bool = True,
    permuted_max_iter: int = 30,
) -> dict[str, Any]:
    """How faithful the model's SHAP values are to the generator's weight of evidence.

    The model's raw SHAP values are centred across classes (the per-(patient, column) mean
    over classes subtracted, which removes what a column adds to every class alike and leaves
    what it does to the odds between classes) and compared per patient and class with
    :func:`data_gen.weight_of_evidence`, which is centred the same way; see
    :func:`attribution_agreement` for the metrics.

    Parameters
    ----------
    model : CalcificationModel
    cohort : pandas.DataFrame
        Patients in the input contract, generated from the model's knowledge base.
    explanation : shap.Explanation, optional
        :func:`ml.explain` of exactly ``cohort``'s patients, in order.
    evidence : data_gen.Evidence, optional
        ``weight_of_evidence(cohort)``, for exactly ``cohort``'s patients, in order.
    max_patients : int, optional
        A seeded random subsample of at most this many patients is compared (None: all).
    k : sequence of int
        The top-k sizes of FA/RA/SA.
    random_state : int
        Seeds the subsample and both floors.
    floors : bool
        Also score two sanity floors the same way: ``random`` (standard normal attributions
        of the same shape, centred alike) and ``permuted_labels`` (a model trained with
        :func:`ml.train` on the compared patients with their labels permuted, at most
        ``permuted_max_iter`` iterations; without a label column the model's predictions are
        permuted). Both should have a Spearman median near 0.

    Returns
    -------
    dict
        JSON-serialisable: ``{"model": {...}, "random": {...}, "permuted_labels": {...},
        "n_patients": int, "k": [...], "residual_share": float}``, where ``residual_share``
        (:meth:`data_gen.Evidence.residual_share`) is the part of the exact posterior that the
        per-column weights leave unattributed — a ceiling on how well any additive
        attribution can agree with them.
    """
    from data_gen import weight_of_evidence

    from .treeshap import explain

    kb = model.knowledge
    n_all = len(cohort)
    for name, obj in (("explanation", explanation), ("evidence", evidence)):
        if obj is not None and len(obj.values) != n_all:
            raise ValueError(
                f"the {name} has {len(obj.values)} patients but the cohort has {n_all}; pass the "
                "cohort it was computed for, in the same order"
            )
    pos = _subsample(n_all, max_patients, random_state)
    sub = cohort.iloc[pos]
    if evidence is None:
        evidence = weight_of_evidence(sub, knowledge=kb)
    elif len(pos) != n_all:
        from dataclasses import replace

        evidence = replace(
            evidence,
            values=evidence.values[pos],
            total=evidence.total[pos],
            residual=evidence.residual[pos],
            index=evidence.index[pos],
        )
    columns, class_names = list(evidence.columns), list(evidence.classes)
    woe = np.asarray(evidence.values, dtype=np.float64)

    if explanation is None:
        values, features, classes = _explanation_parts(explain(model, sub))
    else:
        values, features, classes = _explanation_parts(explanation)
        values = values[pos]
    shap_c = _centre(_aligned(values, features, classes, columns, class_names))

    result: dict[str, Any] = {
        "n_patients": int(len(pos)),
        "k": sorted({int(x) for x in np.atleast_1d(k)}),
        "residual_share": evidence.residual_share(),
        "model": attribution_agreement(shap_c, woe, k=k),
    }
    if floors:
        rng = np.random.default_rng(random_state)
        result["random"] = attribution_agreement(_centre(rng.standard_normal(woe.shape)), woe, k=k)
        result["permuted_labels"] = _permuted_label_floor(model, sub, woe, columns, class_names, k, rng, permuted_max_iter)
    return _jsonable(result)


def _permuted_label_floor(model, sub, woe, columns, class_names, k, rng, max_iter) -> dict:
    from .treeshap import explain
    from .model import train

    if LABEL in sub.columns and sub[LABEL].notna().all():
        labels = sub[LABEL].astype(str).to_numpy()
        source = "label"
    else:
        labels = np.asarray(model.predict(sub).astype(str))
        source = "predicted"
    shuffled = sub.copy()
    shuffled[LABEL] = labels[rng.permutation(len(labels))]
    seed = int(rng.integers(2**31 - 1))
    # a small booster: one OpenMP thread trains it in well under a second, whereas a thread
    # team contending with other work on busy cores can take tens of seconds
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        null_model = train(shuffled, random_state=seed, knowledge=model.knowledge, max_iter=max_iter)
    values, features, classes = _explanation_parts(explain(null_model, sub))
    out = attribution_agreement(_centre(_aligned(values, features, classes, columns, class_names)), woe, k=k)
    out["labels"] = source
    out["n_iter"] = int(null_model.booster.n_iter_)
    return out


# --------------------------------------------------------------------------------------------
# One patient's reasons
# --------------------------------------------------------------------------------------------
def top_reasons(explanation, patient_index: int, class_name: str, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` columns pushing one patient most toward ``class_name``.

    Returns a list of (column, SHAP value) for that class, sorted by value, largest first
    (so the first entries are the strongest reasons *for* the class).
    """
    values, features, classes = _explanation_parts(explanation)
    if class_name not in classes:
        raise ValueError(f"unknown class {class_name!r}; the explanation has {classes}")
    v = values[int(patient_index), :, classes.index(class_name)]
    order = np.argsort(-v, kind="stable")[: int(k)]
    return [(features[j], float(v[j])) for j in order]
