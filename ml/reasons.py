"""Per-patient explanations in clinical words: the differential and the reasons behind it.

Research and teaching on synthetic data only; never a clinical device.

:func:`explain_patients` turns the classifier's SHAP values (:func:`ml.explain`) into, for each
patient, the ranked differential and, for each of the most probable classes, the findings that
favour it and those that argue against it, with the review's Table 2 implications of the top
class. :func:`render_text` prints them for people.

How a reason's size is computed
-------------------------------
``ml.explain`` gives raw SHAP values ``v[n, j, k]`` of column ``j`` toward class ``k``'s score
(log-odds) for patient ``n``. A softmax model's scores are only defined up to a constant shared
by the classes: a column that raises every class's score by the same amount changes no
probability. So a reason reports the **centred** value::

    shap[n, j, k] = v[n, j, k] - mean over classes k' of v[n, j, k']

It says how much the column moves class ``k`` *relative to the other classes*, which is what a
differential diagnosis is about. The centred values keep SHAP's additivity: the centred base
value plus the sum of the centred values over all columns equals ``log p_k - mean_k' log p_k'``
(the log of p_k over the geometric mean of the probabilities). Prevalence adjustment only adds
a per-class constant to the base value (``log prevalence_k / training prevalence_k``), so it
changes the probabilities and the ranking of the differential, never the reasons.

A column is listed only when ``|shap|`` exceeds :data:`MIN_EFFECT` (0.01 log-odds, i.e. it
changes the odds of the class against the others by about 1 %): smaller contributions are
numerical dust of the trees and would only lengthen the list. Missing (NaN) values can be
reasons too: the trees route "not recorded" down their own branches, so its SHAP is real; such
a reason says "not recorded", and whether the knowledge base lets a blank be evidence there at
all (:attr:`Reason.blank`): a blank that is equally likely under every class is marked as a
model artefact, a blank that is itself evidence (no SLC34A2 test) as a fair reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from .reason_types import MIN_EFFECT, ClassReasons, Differential, NextFinding, PatientExplanation, Reason
from .render import render_text
from .treeshap import centred_shap
from .wording import DISCLAIMER, _blank_kinds, _clue_text, _is_missing, _model_kb, column_display_name, describe_value

__all__ = [
    "DISCLAIMER",
    "MIN_EFFECT",
    "NEXT_RECORDING",
    "ClassReasons",
    "NextFinding",
    "Differential",
    "PatientExplanation",
    "Reason",
    "centred_shap",
    "column_display_name",
    "describe_value",
    "explain_patients",
    "render_text",
    "top_reasons",
]



#: What a blank means when the next findings are ranked (the oracle's ``recording=``): blanks
#: as in published case reports, which is how a user's sparse file is usually written.
NEXT_RECORDING = "case_report"


# Numbers
# --------------------------------------------------------------------------------------------
def make_reason(kb, class_name: str, column: str, value, shap_value: float) -> Reason:
    """A :class:`Reason` for one (class, column) with its value and centred SHAP."""
    role = kb.classes[class_name].columns[column].role
    value_text = describe_value(column, value, kb)
    missing = _is_missing(value)
    plain = None if missing else (value if isinstance(value, str) else float(value))
    blank = _blank_kinds(kb)[column] if missing else None
    return Reason(
        column=column,
        value_text=value_text,
        shap=float(shap_value),
        is_paper_clue=role != "none",
        role=role,
        text=f"{column_display_name(column, kb)}: {value_text}",
        clue=_clue_text(kb, class_name, column),
        value=plain,
        blank=blank,
    )


def _proba_from_scores(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _explained(model, df: pd.DataFrame, id_column: str | None):
    """The checked patients, their explanation and ids."""
    from .treeshap import explain

    checked = model.check(df, id_column=id_column)
    ex = explain(model, checked)
    return checked, ex


def _select(c: np.ndarray, n_reasons: int, positive: bool) -> np.ndarray:
    """Indices of the at most ``n_reasons`` largest (or most negative) values beyond MIN_EFFECT."""
    if positive:
        idx = np.flatnonzero(c > MIN_EFFECT)
        order = idx[np.argsort(-c[idx], kind="stable")]
    else:
        idx = np.flatnonzero(c < -MIN_EFFECT)
        order = idx[np.argsort(c[idx], kind="stable")]
    return order[: max(int(n_reasons), 0)]


#: Patients explained at a time when progress is reported (and by ``pulmocalc explain``, which
#: prints each batch as soon as it is ready).
EXPLAIN_BATCH = 200


def explain_patients(
    model,
    df: pd.DataFrame,
    *,
    top: int = 3,
    n_reasons: int = 5,
    prevalence: Mapping[str, float] | None = None,
    id_column: str | None = None,
    next_findings: int = 3,
    next_recording=NEXT_RECORDING,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[PatientExplanation]:
    """The differential and its reasons, per patient, in clinical words.

    Parameters
    ----------
    model : CalcificationModel
    df : pandas.DataFrame
        Patients in the input contract (checked first; the label column is ignored).
    top : int
        How many of the most probable classes get their findings for and against.
    n_reasons : int
        At most this many findings for, and this many against, each of those classes.
    prevalence : mapping class -> share, optional
        Class mix of the setting (see :meth:`CalcificationModel.predict_proba`); it changes
        the probabilities and the order of the differential, not the reasons.
    id_column : str, optional
        A column naming the patients; otherwise the frame's index names them.
    next_findings : int
        How many of the columns not recorded to list as "what to check next", ranked by
        expected information gain about the type under the exact oracle
        (:func:`data_gen.next_best_findings`, about 30 ms per patient); 0 skips them.
    next_recording
        The oracle's ``recording=`` for those rankings (default :data:`NEXT_RECORDING`).
    progress : callable(done, total, label), optional
        Called after each batch of :data:`EXPLAIN_BATCH` patients; the patients are then
        explained batch by batch, with the same result (every patient is explained on its own).

    Returns
    -------
    list of PatientExplanation
        In the patients' order. ``differential`` lists every class, most probable first, with
        probabilities summing to 1; ``classes`` the ``top`` most probable with their
        ``favouring`` (largest centred SHAP first, all > 0) and ``against`` (most negative
        first, all < 0) reasons, each beyond :data:`MIN_EFFECT`; ``implications`` Table 2 of
        the review for the top class; ``next_findings`` the best columns to check next.

    Examples
    --------
    >>> from data_gen import paper_cases
    >>> from ml import load_model
    >>> out = explain_patients(load_model(), paper_cases(), top=2)  # doctest: +SKIP
    >>> out[0].top_class  # doctest: +SKIP
    'metastatic'
    """
    if int(top) < 1:
        raise ValueError(f"top must be at least 1, got {top!r}")
    if int(n_reasons) < 0:
        raise ValueError(f"n_reasons must be >= 0, got {n_reasons!r}")
    if int(next_findings) < 0:
        raise ValueError(f"next_findings must be >= 0, got {next_findings!r}")
    options = {"top": top, "n_reasons": n_reasons, "prevalence": prevalence, "next_findings": next_findings,
               "next_recording": next_recording}
    if progress is not None:
        checked = model.check(df, id_column=id_column)
        out: list[PatientExplanation] = []
        for start in range(0, len(checked), EXPLAIN_BATCH):
            out += explain_patients(model, checked.iloc[start : start + EXPLAIN_BATCH], **options)
            progress(len(out), len(checked), "patients")
        return out
    kb = _model_kb(model)
    checked, ex = _explained(model, df, id_column)
    classes = list(model.classes_)
    proba = model.predict_proba(checked, prevalence=prevalence).to_numpy()
    centred = centred_shap(ex.values)
    columns = list(ex.feature_names)
    data = ex.data
    prev = None if prevalence is None else {k: float(v) for k, v in prevalence.items()}
    notes = []
    if prev is not None:
        notes.append("probabilities adjusted to the stated prevalence; the reasons do not depend on it")

    nxt = next_findings_for(kb, checked, int(next_findings), prevalence, next_recording)
    impossible = _impossible_rows(kb, checked)
    out = []
    for n, pid in enumerate(checked.index):
        p = proba[n]
        order = np.argsort(-p, kind="stable")
        differential = [Differential(classes[i], kb.classes[classes[i]].label, float(p[i])) for i in order]
        per_class = []
        for i in order[: int(top)]:
            k = classes[i]
            c = centred[n, :, i]
            fav = [make_reason(kb, k, columns[j], data[n, j], c[j]) for j in _select(c, n_reasons, True)]
            ag = [make_reason(kb, k, columns[j], data[n, j], c[j]) for j in _select(c, n_reasons, False)]
            per_class.append(ClassReasons(k, kb.classes[k].label, float(p[i]), fav, ag))
        best = classes[order[0]]
        out.append(
            PatientExplanation(
                patient=str(pid),
                differential=differential,
                classes=per_class,
                top_class=best,
                top_label=kb.classes[best].label,
                implications=kb.implications(best),
                prevalence=prev,
                notes=list(notes) + ([IMPOSSIBLE_NOTE] if impossible[n] else []),
                next_findings=nxt[n],
            )
        )
    return out


def top_reasons(model, df: pd.DataFrame, class_name: str, k: int = 5, *, id_column: str | None = None) -> list[list[Reason]]:
    """Per patient, the ``k`` columns with the largest centred SHAP toward ``class_name``.

    Unlike :func:`explain_patients`, no threshold applies: the ``k`` largest are returned even
    when some are tiny or negative (sorted largest first).
    """
    if class_name not in model.classes_:
        raise ValueError(f"unknown class {class_name!r}; the model has {list(model.classes_)}")
    kb = _model_kb(model)
    checked, ex = _explained(model, df, id_column)
    i = list(model.classes_).index(class_name)
    c = centred_shap(ex.values)[:, :, i]
    columns = list(ex.feature_names)
    out = []
    for n in range(len(checked)):
        order = np.argsort(-c[n], kind="stable")[: int(k)]
        out.append([make_reason(kb, class_name, columns[j], ex.data[n, j], c[n, j]) for j in order])
    return out


#: Said of a patient whose findings no type of the knowledge base allows.
IMPOSSIBLE_NOTE = (
    "these findings are impossible under every type in the knowledge base (a declared impossible combination, "
    "e.g. on dialysis without chronic kidney disease): check the record; the classifier still answers, the exact "
    "oracle cannot, and no next findings are ranked"
)


def _impossible_rows(kb, patients: pd.DataFrame) -> np.ndarray:
    """(n_patients,) bool: the knowledge base gives the recorded values probability 0 under every class."""
    from data_gen import oracle_log_likelihood
    from data_gen.oracle import _IMPOSSIBLE

    ll = oracle_log_likelihood(patients, missing="ignore", knowledge=kb).to_numpy()
    return ll.max(axis=1) < _IMPOSSIBLE / 2


#: A next finding whose expected information gain is below this (it would print as 0.000 bits) is
#: not listed: whatever its value, the differential stays as it is.
MIN_GAIN_BITS = 5e-4


def next_findings_for(kb, patients: pd.DataFrame, top: int, prevalence=None, recording=NEXT_RECORDING, focus=None) -> list[list[NextFinding]]:
    """Per patient (in order), the ``top`` best columns to check next as :class:`NextFinding`.

    All patients are ranked together by :func:`data_gen.next_best_findings_batch` (vectorized
    across patients). A patient the knowledge base finds impossible (a declared impossible
    combination) gets an empty list: there is nothing to rank. Findings below
    :data:`MIN_GAIN_BITS` are left out (unless ranked for a ``focus``).
    """
    from data_gen import next_best_findings_batch

    out: list[list[NextFinding]] = [[] for _ in range(len(patients))]
    if top <= 0 or len(patients) == 0:
        return out
    positions = pd.RangeIndex(len(patients))
    frame = patients.set_axis(positions)  # rows named by position: ids may repeat
    nb = next_best_findings_batch(frame, prevalence=prevalence, recording=recording, knowledge=kb, top=top, focus=focus)
    for r in nb.itertuples(index=False):
        if focus is None and r.expected_information_gain_bits < MIN_GAIN_BITS:
            continue  # it would print as 0.000 bits: checking it cannot change the differential
        out[int(r.patient)].append(
            NextFinding(
                column=r.column,
                text=column_display_name(r.column, kb),
                expected_information_gain_bits=float(r.expected_information_gain_bits),
                outcomes=list(r.outcomes),
                outcome_probabilities=[float(x) for x in r.outcome_probabilities],
                posterior_after=[{k: float(v) for k, v in d.items()} for d in r.posterior_after],
            )
        )
    return out
