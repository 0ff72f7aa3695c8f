"""The result objects of an explanation: a reason, a differential, a patient's explanation.

Frozen dataclasses with ``to_dict``/``from_dict`` (plain JSON types: NaN becomes None), shared by
the text renderer, the JSON output and the teaching page, so that every output carries the same
fields under the same names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from .wording import format_probability


#: A column is a reason only when its centred SHAP exceeds this many log-odds in magnitude.
MIN_EFFECT = 0.01


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
            parts.append(f"{o} {format_probability(p)} -> " + ", ".join(f"{k} {format_probability(post[k])}" for k in lead))
        return "; ".join(parts)


@dataclass(frozen=True)
class PatientExplanation:
    """Everything :func:`render_text` prints for one patient; ``to_dict`` is JSON-ready.

    ``patient`` is the identifier every output uses (docs/architecture.md, "Outputs"): the
    ``--id-column`` value, or the row number counted from 1.
    """

    patient: str
    differential: list[Differential]
    classes: list[ClassReasons]
    top_class: str
    top_label: str
    implications: dict[str, str]
    prevalence: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    next_findings: list[NextFinding] = field(default_factory=list)

    @property
    def patient_id(self) -> str:
        """The former name of :attr:`patient` (kept so that existing code keeps working)."""
        return self.patient

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, strings and finite floats (``json.dumps`` works on it)."""
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PatientExplanation":
        """The inverse of :meth:`to_dict`."""
        return cls(
            patient=d["patient"] if "patient" in d else d["patient_id"],  # files written before the rename
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
