"""Real-world evidence: the model where real patients are, with a handful of findings recorded.

Research and teaching on synthetic data and published case reports; never a clinical device.

Three measurements, shared by ``benchmarks/`` and the report's "Real-world evidence" section:

:func:`published_case_metrics`
    top-1 and top-2 accuracy, log loss and per-class top-1 of any predictor on labelled
    patients (the project's published case reports, :func:`data_gen.load_published_cases`).
:func:`gap_by_recording`
    the model's gap to the exact oracle on the same fresh patients reported under several
    recording regimes (complete, missing completely at random at a few keep rates, the
    case-report regime), with paired-bootstrap 95% CIs; the oracle is exact under each
    (:func:`data_gen.oracle_proba` with ``recording=``).
:func:`blank_attribution_share`
    the share of the model's |SHAP| that lands on blank cells the knowledge base gives no
    evidence (:func:`data_gen.recording.blank_evidence`): explanation credit the data cannot
    justify.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .evaluation import EPS, paired_bootstrap_gap

__all__ = [
    "published_case_metrics",
    "gap_by_recording",
    "uninformative_blanks",
    "blank_kinds",
    "blank_attribution_share",
    "SPARSE_LEVELS",
    "BLANK_EVIDENCE_TOL",
]

#: The recording levels of the issue: complete records, MCAR keep rates, the case-report regime.
SPARSE_LEVELS = ("complete", 0.5, 0.3, 0.15, "case_report")
#: A blank whose weight of evidence is below this for every class (nats) carries no evidence:
#: about a 5% change in the odds of a class against the others, five times the smallest reason
#: that ``ml.reasons`` lists, so that rounding-level evidence does not count.
BLANK_EVIDENCE_TOL = 0.05


def published_case_metrics(y_true, proba: pd.DataFrame) -> dict:
    """Top-1, top-2, log loss and per-class top-1 of ``proba`` (patients x classes) against ``y_true``.

    Returns
    -------
    dict
        ``n``, ``top1``, ``top2`` (shares in [0, 1]), ``log_loss`` (nats, probabilities clipped
        at 1e-15), ``per_class_top1`` (class -> share of that class's cases ranked first, NaN for
        a class without cases), ``per_class_n``.
    """
    classes = list(proba.columns)
    P = proba.to_numpy(dtype=float)
    y = pd.Index(classes).get_indexer(np.asarray(y_true, dtype=object))
    if (y < 0).any():
        bad = sorted({str(v) for v, c in zip(y_true, y) if c < 0})
        raise ValueError(f"labels {bad} are not classes of the predictor; expected some of {classes}")
    order = np.argsort(-P, axis=1, kind="stable")
    rank = np.argmax(order == y[:, None], axis=1)  # 0 for the top class
    top1 = rank == 0
    p_true = np.clip(P[np.arange(len(y)), y], EPS, 1.0)
    per_class = {k: float(top1[y == i].mean()) if (y == i).any() else float("nan") for i, k in enumerate(classes)}
    return {
        "n": int(len(y)),
        "top1": float(top1.mean()),
        "top2": float((rank <= 1).mean()),
        "log_loss": float(-np.log(p_true).mean()),
        "per_class_top1": per_class,
        "per_class_n": {k: int((y == i).sum()) for i, k in enumerate(classes)},
    }


def gap_by_recording(
    model,
    *,
    levels: Sequence = SPARSE_LEVELS,
    n: int = 20_000,
    seed: int = 424242,
    n_boot: int = 1000,
    knowledge=None,
) -> list[dict]:
    """The model's gap to the exact oracle at several recording levels, same patients each time.

    Parameters
    ----------
    model : CalcificationModel
    levels : sequence
        Recording regimes (``"complete"``, a keep rate in (0, 1], ``"case_report"``...).
    n, seed : int
        Size and seed of the fresh cohort (a seed never used in training).
    n_boot : int
        Paired-bootstrap replicates for the 95% CIs.

    Returns
    -------
    list of dict
        Per level: ``recording``, ``cells_recorded`` (share of contract cells not blank), and the
        keys of :func:`ml.evaluation.paired_bootstrap_gap` (accuracy gap in pp, log-loss gap in
        nats, both with CIs, and both predictors' accuracy and log loss).
    """
    from data_gen import generate_cohort, oracle_proba

    kb = knowledge if knowledge is not None else model.knowledge
    cols = list(model.encoder.columns)
    out = []
    for rec in levels:
        cohort = generate_cohort(n, random_state=seed, recording=rec, knowledge=kb)
        y = cohort["calcification_type"].astype(str).to_numpy()
        gap = paired_bootstrap_gap(
            y, model.predict_proba(cohort), oracle_proba(cohort, recording=rec, knowledge=kb), n_boot=n_boot, random_state=0
        )
        out.append({"recording": rec, "cells_recorded": float(cohort[cols].notna().to_numpy().mean()), **gap})
    return out


def uninformative_blanks(knowledge, recording=None) -> list[str]:
    """Columns whose blank carries no evidence in the knowledge base under a recording regime.

    A blank is uninformative when "not recorded" is about equally likely under every class
    (:func:`data_gen.recording.blank_evidence` below :data:`BLANK_EVIDENCE_TOL` nats for every
    class). With complete records (default) only structural blanks are evidence (an SLC34A2
    test not done, no bone scan, no discrete lesion to measure); under ``"case_report"`` a blank
    finding is also evidence that it was absent, since reports rarely leave out a present one.
    """
    from data_gen.recording import blank_evidence

    ev = blank_evidence(knowledge, recording).abs().max(axis=1)
    return [c for c in ev.index if ev[c] < BLANK_EVIDENCE_TOL]


def blank_kinds(knowledge) -> dict[str, str]:
    """What a blank means per column: ``"evidence"`` (even in complete records), ``"case report"``
    (evidence only where, as in case reports, absent findings go unmentioned) or ``"no evidence"``."""
    complete = set(uninformative_blanks(knowledge))
    report = set(uninformative_blanks(knowledge, "case_report"))
    return {
        c: "evidence" if c not in complete else "case report" if c not in report else "no evidence"
        for c in knowledge.column_names
    }


def blank_attribution_share(model, cohort: pd.DataFrame, *, recording=None, shap_values=None) -> dict:
    """Share of the model's centred |SHAP| on blank cells that carry no evidence.

    Parameters
    ----------
    model : CalcificationModel
    cohort : pandas.DataFrame
        Patients in the contract (e.g. a masked cohort).
    recording : optional
        The regime the cohort was reported under, which decides which blanks are evidence
        (:func:`uninformative_blanks`); None: complete records or MCAR masking.
    shap_values : numpy.ndarray, optional
        (patients, columns, classes) raw SHAP values of ``model`` on ``cohort``, if already
        computed.

    Returns
    -------
    dict
        ``share_on_uninformative_blanks`` (of all centred |SHAP|), ``share_of_cells_uninformative_blank``
        (how many cells are such blanks, for scale), ``share_on_informative_blanks``, ``n``.
    """
    from .treeshap import explain
    from .treeshap import centred_shap

    cols = list(model.encoder.columns)
    if shap_values is None:
        shap_values = explain(model, cohort).values
    c = np.abs(centred_shap(np.asarray(shap_values))).sum(axis=2)  # (patients, columns)
    blank = cohort[cols].isna().to_numpy()
    no_ev = np.isin(cols, uninformative_blanks(model.knowledge, recording))[None, :]
    total = c.sum()
    return {
        "n": int(len(cohort)),
        "share_on_uninformative_blanks": float(c[blank & no_ev].sum() / total),
        "share_on_informative_blanks": float(c[blank & ~no_ev].sum() / total),
        "share_of_cells_uninformative_blank": float((blank & no_ev).mean()),
    }
