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

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

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

#: The first line of every report.
DISCLAIMER = (
    "pulmocalc is a research and teaching tool trained on synthetic data; it is not a clinical "
    "device and must not be used for decisions about patients."
)

#: A column is a reason only when its centred SHAP exceeds this many log-odds in magnitude.
MIN_EFFECT = 0.01

#: What a blank means when the next findings are ranked (the oracle's ``recording=``): blanks
#: as in published case reports, which is how a user's sparse file is usually written.
NEXT_RECORDING = "case_report"

# Display names where the contract's column name does not read as plain words. Everything else
# is derived from the column name (underscores to spaces, the unit suffix dropped).
_DISPLAY_NAMES = {
    "pack_years": "smoking",
    "slc34a2_variant": "SLC34A2 variant",
    "pth_pg_ml": "parathyroid hormone (PTH)",
    "centrilobular_ggo": "centrilobular ground glass",
    "family_history_pam": "family history of PAM",
    "calcium_vitamin_d_excess": "calcium or vitamin D excess",
    "tree_in_bud": "tree-in-bud",
    "calcification_visible": "calcification on CT (bone window)",
    "bone_scan_lung_uptake": "lung uptake on bone scan",
    "medial_posterior_predominance": "medial and posterior predominance",
    "lymph_node_calcification": "lymph node calcification or enlargement",
    "interlobular_septal_thickening": "interlobular septal thickening",
}

# Words for a binary value, by the column's group: history items are yes/no, imaging findings
# are seen/not seen (distribution descriptors such as "peripheral predominance" read as yes/no).
_BINARY_WORDS = {"imaging": ("not seen", "seen")}
_YES_NO = ("no", "yes")

_ROLE_WORDS = {"usual": "usual", "associated": "associated", "unusual": "unusual", "cause": "cause"}


# --------------------------------------------------------------------------------------------
# Result objects
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reason:
    """One column's contribution to one class for one patient.

    Attributes
    ----------
    column : str
        The input contract's column name.
    value_text : str
        The recorded value in words ("yes", "not seen", "0.4 mm", "lower", "not recorded").
    shap : float
        Centred SHAP toward the class, in log-odds (see the module docstring).
    is_paper_clue : bool
        The knowledge base gives this (class, column) a role other than ``none``.
    role : str
        That role: ``usual``, ``associated``, ``unusual``, ``cause`` or ``none``.
    text : str
        Plain words: "<column in words>: <value in words>".
    clue : str or None
        Where the review states the clue and what it says, e.g. "Table 1: usual".
    value : float, str or None
        The recorded value (None when not recorded).
    blank : str or None
        For a column that is not recorded (:func:`ml.realworld.blank_kinds`): ``"evidence"`` when
        a blank is itself evidence in the knowledge base (an SLC34A2 test not done, no discrete
        lesion to measure); ``"case report"`` when it is evidence only where absent findings go
        unmentioned, as in case reports (a present finding would have been reported);
        ``"no evidence"`` when a blank is about equally likely under every class in either
        setting, so the model's credit for it is an artefact, not a reason. None for a recorded
        value.
    """

    column: str
    value_text: str
    shap: float
    is_paper_clue: bool
    role: str
    text: str
    clue: str | None = None
    value: float | str | None = None
    blank: str | None = None

    def marker(self) -> str:
        """``[Table 1: usual]`` for a paper clue, empty otherwise."""
        return f"[{self.clue}]" if self.clue else ""

    def blank_note(self) -> str:
        """Words for a blank: whether the knowledge base lets it be a reason at all."""
        if self.blank == "no evidence":
            return "(blank: no evidence in the knowledge base; model artefact, not a reason)"
        if self.blank == "case report":
            return "(blank: evidence only if absent findings go unmentioned, as in case reports)"
        if self.blank == "evidence":
            return "(blank: itself evidence in the knowledge base)"
        return ""


@dataclass(frozen=True)
class Differential:
    """One class of the ranked differential."""

    class_name: str
    label: str
    probability: float


@dataclass(frozen=True)
class ClassReasons:
    """The findings for and against one of a patient's most probable classes."""

    class_name: str
    label: str
    probability: float
    favouring: list[Reason]
    against: list[Reason]


@dataclass(frozen=True)
class NextFinding:
    """A column not recorded for the patient, ranked by what measuring it is expected to teach.

    From :func:`data_gen.next_best_findings` (exact oracle). ``outcomes``,
    ``outcome_probabilities`` and ``posterior_after`` run in parallel; each posterior maps
    class -> probability.
    """

    column: str
    text: str
    expected_information_gain_bits: float
    outcomes: list[str]
    outcome_probabilities: list[float]
    posterior_after: list[dict[str, float]]

    def summary(self) -> str:
        """"present 8.4% -> dpo_nodular 67%, dystrophic 31%; absent 91.6% -> ...": each outcome's
        chance and the two leading types after it."""
        parts = []
        for o, p, post in zip(self.outcomes, self.outcome_probabilities, self.posterior_after):
            lead = sorted(post, key=post.get, reverse=True)[:2]
            parts.append(f"{o} {_percent(p)} -> " + ", ".join(f"{k} {_percent(post[k])}" for k in lead))
        return "; ".join(parts)


@dataclass(frozen=True)
class PatientExplanation:
    """Everything :func:`render_text` prints for one patient; ``to_dict`` is JSON-ready."""

    patient_id: str
    differential: list[Differential]
    classes: list[ClassReasons]
    top_class: str
    top_label: str
    implications: dict[str, str]
    prevalence: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    next_findings: list[NextFinding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, strings and finite floats (``json.dumps`` works on it)."""
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PatientExplanation":
        """The inverse of :meth:`to_dict`."""
        return cls(
            patient_id=d["patient_id"],
            differential=[Differential(**x) for x in d["differential"]],
            classes=[
                ClassReasons(
                    class_name=c["class_name"],
                    label=c["label"],
                    probability=c["probability"],
                    favouring=[Reason(**r) for r in c["favouring"]],
                    against=[Reason(**r) for r in c["against"]],
                )
                for c in d["classes"]
            ],
            top_class=d["top_class"],
            top_label=d["top_label"],
            implications=dict(d["implications"]),
            prevalence=None if d.get("prevalence") is None else dict(d["prevalence"]),
            notes=list(d.get("notes", [])),
            next_findings=[NextFinding(**x) for x in d.get("next_findings", [])],
        )


def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


# --------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------
def column_display_name(column: str, knowledge=None) -> str:
    """The column in plain words ("chronic kidney disease", "lesion size", "age").

    Derived from the contract's column name (underscores become spaces and a suffix naming
    the column's unit is dropped), except for the few names in a small mapping.
    """
    if column in _DISPLAY_NAMES:
        return _DISPLAY_NAMES[column]
    kb = _kb(knowledge)
    spec = kb.columns.get(column)
    name = column
    if spec is not None and spec.unit:
        suffix = re.sub(r"[^a-z0-9]+", "_", spec.unit.lower()).strip("_")
        if name.endswith("_" + suffix):
            name = name[: -len(suffix) - 1]
    return name.replace("_", " ")


def _missing_words(spec) -> str:
    """'not recorded', or what the description says a NaN means ("not tested (not recorded)")."""
    m = re.search(r"NaN when ([^;()]+)", spec.description or "")
    if not m:
        return "not recorded"
    why = m.group(1).strip().rstrip(".")
    if why.startswith("not "):
        return f"{why} (not recorded)"
    return f"not recorded (or {why})"


def _format_number(x: float) -> str:
    if x == 0:
        return "0"
    return f"{x:.3g}" if abs(x) < 1e5 else f"{x:.0f}"


def describe_value(column: str, value, knowledge=None) -> str:
    """A recorded value in plain words: "yes", "not seen", "0.4 mm", "lower", "not recorded"."""
    kb = _kb(knowledge)
    spec = kb.columns[column]
    if _is_missing(value):
        return _missing_words(spec)
    if spec.kind == "binary":
        words = _BINARY_WORDS.get(spec.group, _YES_NO)
        if column.endswith("_predominance"):
            words = _YES_NO
        return words[int(float(value) == 1.0)]
    if spec.kind == "categorical":
        return str(value)
    text = _format_number(float(value))
    return f"{text} {spec.unit}" if spec.unit else text


def _is_missing(value) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _clue_text(kb, class_name: str, column: str) -> str | None:
    """Where the review states a (class, column) clue, e.g. "Table 1: usual", "review: cause"."""
    m = kb.classes[class_name].columns[column]
    if m.role == "none":
        return None
    kinds = {s.kind: s for s in m.source.values()}
    if "table1" in kinds:
        where = "Table 1"
    elif "case" in kinds:
        where = f"review case {kinds['case'].fields['case']}"
    elif "text" in kinds:
        where = "review"
    elif "literature" in kinds:
        where = "literature"
    else:
        where = "knowledge base"
    what = _ROLE_WORDS.get(m.role, m.role)
    spec = kb.columns[column]
    if m.expect and m.expect != "none":
        if m.expect == "within" and m.expect_range is not None:
            lo, hi = m.expect_range
            unit = f" {spec.unit}" if spec.unit else ""
            what += f", {_format_number(lo)}-{_format_number(hi)}{unit}"
        else:
            what += f", {m.expect}"
    return f"{where}: {what}"


def _kb(knowledge):
    from data_gen import load_knowledge
    from data_gen.knowledge import Knowledge

    return knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)


def _model_kb(model):
    kb = getattr(model, "knowledge", None)
    return kb if kb is not None else _kb(None)


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


_BLANKS: dict[str, dict] = {}


def _blank_kinds(kb) -> dict:
    """What a blank means per column (:func:`ml.realworld.blank_kinds`), cached per knowledge base."""
    if kb.sha256 not in _BLANKS:
        from .realworld import blank_kinds

        _BLANKS[kb.sha256] = blank_kinds(kb)
    return _BLANKS[kb.sha256]


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------
def centred_shap(values: np.ndarray) -> np.ndarray:
    """SHAP values (patients, columns, classes) minus their mean over the classes."""
    values = np.asarray(values, dtype=float)
    return values - values.mean(axis=-1, keepdims=True)


def _proba_from_scores(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _explained(model, df: pd.DataFrame, id_column: str | None):
    """The checked patients, their explanation and ids."""
    from .explain import explain

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
                patient_id=str(pid),
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


def next_findings_for(kb, patients: pd.DataFrame, top: int, prevalence=None, recording=NEXT_RECORDING, focus=None) -> list[list[NextFinding]]:
    """Per patient (in order), the ``top`` best columns to check next as :class:`NextFinding`.

    All patients are ranked together by :func:`data_gen.next_best_findings_batch` (vectorized
    across patients). A patient the knowledge base finds impossible (a declared impossible
    combination) gets an empty list: there is nothing to rank.
    """
    from data_gen import next_best_findings_batch

    out: list[list[NextFinding]] = [[] for _ in range(len(patients))]
    if top <= 0 or len(patients) == 0:
        return out
    positions = pd.RangeIndex(len(patients))
    frame = patients.set_axis(positions)  # rows named by position: ids may repeat
    nb = next_best_findings_batch(frame, prevalence=prevalence, recording=recording, knowledge=kb, top=top, focus=focus)
    for r in nb.itertuples(index=False):
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


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------
def _percent(p: float) -> str:
    if p > 0 and p < 0.0005:
        return "<0.1%"
    if p < 1 and p > 0.9995:
        return ">99.9%"
    return f"{100 * p:.1f}%"


_TABLE2_WORDS = (
    ("prognosis", "prognosis"),
    ("treatment", "treatment"),
    ("screening", "screening"),
    ("diagnostic_value", "diagnostic value"),
)


def _reason_lines(reasons: Sequence[Reason], indent: str) -> list[str]:
    if not reasons:
        return [f"{indent}(none beyond {MIN_EFFECT:g} log-odds)"]
    lines = []
    for r in reasons:
        mark = f"  {r.marker()}" if r.is_paper_clue else ""
        note = f"  {r.blank_note()}" if r.blank else ""
        lines.append(f"{indent}{r.shap:+.2f}  {r.text}{mark}{note}")
    return lines


def render_text(explanations: Sequence[PatientExplanation]) -> str:
    """The human-readable report of :func:`explain_patients`' result.

    One line of disclaimer, then per patient: the ranked differential with percentages; for
    each top class the findings for and against with their size (centred SHAP, log-odds) and
    the review's clues marked; then what Table 2 of the review says the top diagnosis implies.
    """
    if isinstance(explanations, PatientExplanation):
        explanations = [explanations]
    lines = [DISCLAIMER, ""]
    lines.append(
        "Sizes are log-odds contributions to a class relative to the other classes (SHAP, centred "
        "across classes); [Table 1: ...] and [review: ...] mark the clues the review states."
    )
    for e in explanations:
        lines.append("")
        lines.append(f"=== Patient {e.patient_id} ===")
        if e.prevalence is not None:
            mix = ", ".join(f"{k} {v:g}" for k, v in e.prevalence.items())
            lines.append(f"Differential (prevalence-adjusted: {mix}):")
        else:
            lines.append("Differential (training prevalence):")
        width = max(len(d.label) for d in e.differential)
        for rank, d in enumerate(e.differential, 1):
            lines.append(f"  {rank}. {d.label:<{width}}  {_percent(d.probability):>6}")
        for c in e.classes:
            lines.append("")
            lines.append(f"{c.label} ({_percent(c.probability)})")
            lines.append("  Findings for:")
            lines += _reason_lines(c.favouring, "    ")
            lines.append("  Findings against:")
            lines += _reason_lines(c.against, "    ")
        lines.append("")
        lines.append(f"What the top diagnosis implies (review, Table 2) for {e.top_label}:")
        for key, words in _TABLE2_WORDS:
            if key in e.implications:
                lines.append(f"  {words}: {e.implications[key]}")
        if e.next_findings:
            lines.append("")
            lines.append("What to check next (expected information gain about the type, exact oracle; outcome -> leading types):")
            for i, f in enumerate(e.next_findings, 1):
                lines.append(f"  {i}. {f.text} ({f.expected_information_gain_bits:.3f} bits): {f.summary()}")
        for note in e.notes:
            lines.append(f"Note: {note}")
    return "\n".join(lines) + "\n"
