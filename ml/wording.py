"""How findings read in words: display names, values, the review's roles, blanks.

Everything a person reads about a column is derived here from the knowledge base (its groups,
units, levels and Table-1 roles), never restated: the text renderer, the figures and the
teaching page all call these functions, so a column reads the same everywhere.
"""

from __future__ import annotations

import re

import pandas as pd


#: The first line of every report.
DISCLAIMER = (
    "pulmocalc is a research and teaching tool trained on synthetic data; it is not a clinical "
    "device and must not be used for decisions about patients."
)


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


def format_probability(p: float) -> str:
    """A probability as a percentage with one decimal; a rounded value never reads as a certainty.

    ``<0.1%`` and ``>99.9%`` at the ends, so that "100.0%" never stands for 0.99996. Only an exact
    0 or 1 (a type the knowledge base rules out, or the only one it allows) reads ``0%`` or
    ``100%``, without a decimal, so the two cannot be confused. Every output uses this format
    (text, figures, the teaching page's labels, ``predict``'s printout).

    Examples
    --------
    >>> format_probability(0.99996), format_probability(0.25), format_probability(0.0), format_probability(1.0)
    ('>99.9%', '25.0%', '0%', '100%')
    """
    if p == 0 or p == 1:
        return f"{100 * p:.0f}%"
    if 0 < p < 0.0005:
        return "<0.1%"
    if 0.9995 < p < 1:
        return ">99.9%"
    return f"{100 * p:.1f}%"


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


_BLANKS: dict[str, dict] = {}


def _blank_kinds(kb) -> dict:
    """What a blank means per column (:func:`ml.realworld.blank_kinds`), cached per knowledge base."""
    if kb.sha256 not in _BLANKS:
        from .realworld import blank_kinds

        _BLANKS[kb.sha256] = blank_kinds(kb)
    return _BLANKS[kb.sha256]


# --------------------------------------------------------------------------------------------
