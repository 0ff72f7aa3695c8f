"""Plain-text rendering of explanations: the differential, reasons for and against, next findings.

One format for every command (``explain``; ``predict`` uses :func:`format_probability`): patients
are labelled by their identifier, probabilities read as percentages with one decimal (``<0.1%``
and ``>99.9%`` at the ends, so a probability is never shown as a certainty), classes in
decreasing probability.
"""

from __future__ import annotations

from collections.abc import Sequence

from .reason_types import MIN_EFFECT, PatientExplanation, Reason
from .wording import DISCLAIMER, format_probability


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------
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


def render_text(explanations: Sequence[PatientExplanation], *, preamble: bool = True) -> str:
    """The human-readable report of :func:`explain_patients`' result.

    One line of disclaimer, then per patient: the ranked differential with percentages; for
    each top class the findings for and against with their size (centred SHAP, log-odds) and
    the review's clues marked; then what Table 2 of the review says the top diagnosis implies.
    ``preamble=False`` leaves out the disclaimer and the legend, for output written in parts.
    """
    if isinstance(explanations, PatientExplanation):
        explanations = [explanations]
    lines = []
    if preamble:
        lines = [DISCLAIMER, ""]
        lines.append(
            "Sizes are log-odds contributions to a class relative to the other classes (SHAP, centred "
            "across classes); [Table 1: ...] and [review: ...] mark the clues the review states."
        )
    for e in explanations:
        lines.append("")
        lines.append(f"=== Patient {e.patient} ===")
        if e.prevalence is not None:
            mix = ", ".join(f"{k} {v:g}" for k, v in e.prevalence.items())
            lines.append(f"Differential (prevalence-adjusted: {mix}):")
        else:
            lines.append("Differential (training prevalence):")
        width = max(len(d.label) for d in e.differential)
        for rank, d in enumerate(e.differential, 1):
            lines.append(f"  {rank}. {d.label:<{width}}  {format_probability(d.probability):>6}")
        for c in e.classes:
            lines.append("")
            lines.append(f"{c.label} ({format_probability(c.probability)})")
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
