"""The data dictionary, rendered from the knowledge base and nothing else.

``docs/data-dictionary.md`` is the output of :func:`render_data_dictionary`; a test fails when
the committed file differs from a fresh rendering, so the dictionary can never drift from the
numbers the sampler and the oracle actually use. Every number, role and source printed here is
read from the validated :class:`~data_gen.knowledge.Knowledge`; the only hand-written text is
the fixed wording that explains how to read the tables.
"""

from __future__ import annotations

import math

from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from .knowledge import ColumnModel, ColumnSpec, Knowledge, Param, Source, default_knowledge_path, load_knowledge

__all__ = ["render_data_dictionary", "regenerate_command", "DEFAULT_DICTIONARY_PATH"]

DEFAULT_DICTIONARY_PATH = "docs/data-dictionary.md"
# A level-indexed parameter prints its most common value once as "else" only when that value is
# shared by at least this many levels; for fewer, listing every level reads more easily.
_ELSE_MIN_LEVELS = 3


def regenerate_command(knowledge: Knowledge | None = None) -> str:
    """The shell command that rewrites ``docs/data-dictionary.md`` for a knowledge base.

    Examples
    --------
    >>> regenerate_command()
    'pulmocalc dictionary --out docs/data-dictionary.md'
    """
    if knowledge is None or _is_default(knowledge):
        return f"pulmocalc dictionary --out {DEFAULT_DICTIONARY_PATH}"
    # only the file name: an absolute path would make the output depend on the machine
    return f"pulmocalc dictionary --knowledge {knowledge.path.name} --out {DEFAULT_DICTIONARY_PATH}"


def render_data_dictionary(knowledge: Knowledge | str | None = None) -> str:
    """Render the data dictionary of a knowledge base as Markdown.

    The text depends only on the knowledge base (no dates, no absolute paths), so the same
    knowledge base always gives the same bytes.

    Parameters
    ----------
    knowledge : Knowledge or path, optional
        The knowledge base; defaults to the shipped ``data_gen/knowledge.toml``.

    Returns
    -------
    str
        Markdown: a generated-file header (regeneration command and the knowledge base's
        sha256), the classes, one section per input-contract column in contract order (type,
        unit, allowed values, description and, per class, role, distribution, missingness and
        source), the latent factors, Table 2, the impossible combinations, the assumptions and
        the literature cited.

    Examples
    --------
    >>> from data_gen import render_data_dictionary
    >>> text = render_data_dictionary()
    >>> text.splitlines()[0]
    '# pulmocalc data dictionary'
    >>> "### `lesion_size_mm`" in text
    True
    """
    kb = knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)
    parts: list[str] = []
    parts += _header(kb)
    parts += _classes_section(kb)
    parts += _columns_overview(kb)
    for name, spec in kb.columns.items():
        parts += _column_section(kb, name, spec)
    parts += _factors_section(kb)
    parts += _table2_section(kb)
    parts += _constraints_section(kb)
    parts += _assumptions_section(kb)
    parts += _literature_section(kb)
    return "\n".join(parts).rstrip("\n") + "\n"


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------
def _header(kb: Knowledge) -> list[str]:
    meta = kb.meta
    lines = [
        "# pulmocalc data dictionary",
        "",
        f"<!-- Generated file: do not edit. Regenerate with `{regenerate_command(kb)}`. -->",
        "",
        f"> **Generated** from the knowledge base `{kb.path.name}` (sha256 `{kb.sha256}`) by "
        f"`{regenerate_command(kb)}`. Do not edit by hand: change the knowledge base and rerun "
        "the command; a test fails when this file is stale.",
        "",
    ]
    if "title" in meta:
        lines.append(f"**Model:** {_cell(meta['title'])}  ")
    if "paper" in meta:
        lines.append(f"**Source paper:** {_cell(meta['paper'])}  ")
    if "intended_use" in meta:
        lines.append(f"**Intended use:** {_cell(meta['intended_use'])}")
    lines += [
        "",
        "## How to read this dictionary",
        "",
        "- One row of a cohort is one patient. An empty cell (NaN) means *not recorded*, never *absent*; "
        "a finding that was looked for and not seen is 0.",
        "- Each class draws its patients through latent factors (cause, pattern, visibility, stage, renal "
        "status). A distribution given *by* a factor has one value per level of that factor; *else* stands "
        "for the levels not named. Within one combination of factor levels (a *cell*) the columns are "
        "independent, except that a binary column may be conditioned on another binary column (*given*).",
        "- *missing* is the probability that the column is not recorded; it is drawn independently of the value.",
        "- *role* is the review's reading of the column for the class: `usual`, `associated` and `cause` push "
        "toward the class (for continuous columns and `zone` in the `expect`ed direction or level), `unusual` "
        "(Table 1's *may suggest alternate diagnosis*) pushes away, `none` means the review gives no clue.",
        "- *source* cites the review's table, text or case, a published figure of "
        "`shared/reference/literature-numbers.md` (by ID), or an assumption with its rationale "
        "(all assumptions are listed at the end).",
        "",
    ]
    return lines


def _classes_section(kb: Knowledge) -> list[str]:
    rows = []
    for k, cls in kb.classes.items():
        rows.append([
            f"`{k}`",
            cls.label,
            _num(cls.prevalence),
            cls.table1_row,
            cls.table2_row,
            str(len(cls.cells())),
            cls.prevalence_source.describe(),
        ])
    return [
        "## Classes",
        "",
        "The label column `calcification_type` takes one of these values.",
        "",
        *_table(["class", "label", "default prevalence", "Table 1 row", "Table 2 row", "latent cells", "source of the prevalence"], rows),
        "",
    ]


def _columns_overview(kb: Knowledge) -> list[str]:
    rows = [
        [f"[`{name}`](#{name})", spec.group, spec.kind, spec.unit or "", _allowed(spec), spec.description]
        for name, spec in kb.columns.items()
    ]
    return [
        "## Columns",
        "",
        f"The input contract: {len(kb.columns)} columns, in contract order.",
        "",
        *_table(["column", "group", "type", "unit", "allowed values", "description"], rows),
        "",
    ]


def _column_section(kb: Knowledge, name: str, spec: ColumnSpec) -> list[str]:
    lines = [
        f"### `{name}`",
        "",
        f"{_cell(spec.description)}",
        "",
        f"- **type:** {spec.kind} ({spec.group})",
        f"- **unit:** {spec.unit or '—'}",
        f"- **allowed values:** {_allowed(spec)}; empty = not recorded",
        *_plausibility(spec),
        "",
    ]
    rows = []
    for k, cls in kb.classes.items():
        m = cls.columns[name]
        rows.append([f"`{k}`", _role(m, spec), _distribution(m, spec), _param(m.missing, _num), _sources(m)])
    lines += _table(["class", "role", "distribution", "missing", "source"], rows)
    lines.append("")
    return lines


def _factor_levels(f) -> str:
    marginal = ", ".join(f"{lv} {_num(p)}" for lv, p in zip(f.levels, f.probs))
    if f.by is None:
        return marginal
    given = "; ".join(
        f"{plv}: " + ", ".join(f"{lv} {_num(p)}" for lv, p in zip(f.levels, probs))
        for plv, probs in f.conditional.items()
    )
    return f"{marginal} (by {f.by}: {given})"


def _factors_section(kb: Knowledge) -> list[str]:
    lines = [
        "## Latent factors",
        "",
        "Latent subtypes of each class. They are never model inputs; `generate_cohort(..., latent=True)` "
        "returns them as `latent_<factor>` columns. A class's cells are every combination of its factors' "
        "levels, drawn independently with these probabilities, except that a factor may depend on one "
        "other factor (shown as 'by').",
        "",
    ]
    for k, cls in kb.classes.items():
        lines += [f"### {k}: {_cell(cls.label)}", ""]
        if not cls.factors:
            lines += ["No latent factors.", ""]
            continue
        rows = [[f"`{f.name}`", _factor_levels(f), f.source.describe()] for f in cls.factors]
        lines += _table(["factor", "levels (probability given the class)", "source"], rows)
        lines.append("")
    return lines


def _table2_section(kb: Knowledge) -> list[str]:
    rows = []
    for k, cls in kb.classes.items():
        t2 = kb.table2[cls.table2_row]
        rows.append([
            f"`{k}`",
            t2["prognosis"],
            t2["treatment"],
            t2["screening"],
            t2["diagnostic_value"],
            kb.table2_sources[cls.table2_row].describe(),
        ])
    return [
        "## Table 2: what each type implies",
        "",
        *_table(["class", "prognosis", "treatment", "screening", "diagnostic value", "source"], rows),
        "",
    ]


def _constraints_section(kb: Knowledge) -> list[str]:
    lines = [
        "## Impossible combinations",
        "",
        "Declared in the knowledge base and checked in every latent cell when it is loaded: whenever "
        "the *if* part holds, the *then* part holds.",
        "",
    ]
    if not kb.constraints:
        return lines + ["None declared.", ""]
    rows = [
        [
            c.name,
            " and ".join(f"`{col}` = {v}" for col, v in c.if_.items()),
            " and ".join(f"`{col}` = {v}" for col, v in c.then.items()),
            c.source.describe(),
        ]
        for c in kb.constraints
    ]
    return lines + _table(["constraint", "if", "then", "source"], rows) + [""]


def _assumptions_section(kb: Knowledge) -> list[str]:
    by_rationale: dict[str, list[str]] = {}
    for where, rationale in kb.assumptions():
        by_rationale.setdefault(rationale, []).append(where)
    lines = [
        "## Assumptions",
        "",
        f"Every number of the knowledge base whose source is an assumption, grouped by rationale "
        f"({len(by_rationale)} distinct assumptions), with where each is used.",
        "",
    ]
    for i, (rationale, wheres) in enumerate(by_rationale.items(), 1):
        lines.append(f"{i}. {_cell(rationale)}")
        lines.append(f"   - used in: {_where_text(wheres)}")
    lines.append("")
    return lines


def _literature_section(kb: Knowledge) -> list[str]:
    rows = [[ident, ref] for ident, ref in kb.literature.items()]
    return [
        "## Literature cited",
        "",
        "IDs of `shared/reference/literature-numbers.md`.",
        "",
        *_table(["ID", "reference"], rows),
        "",
    ]


# --------------------------------------------------------------------------------------------
# Cell texts
# --------------------------------------------------------------------------------------------
def _role(m: ColumnModel, spec: ColumnSpec) -> str:
    if m.expect is None or m.role == "none":
        return m.role
    text = f"{m.role} (expect `{m.expect}`"
    expect_range = getattr(m, "expect_range", None)
    if expect_range is not None:
        unit = f" {spec.unit}" if spec.unit else ""
        text += f" {_num(expect_range[0])}–{_num(expect_range[1])}{unit}"
    return text + ")"


def _allowed(spec: ColumnSpec) -> str:
    if spec.kind == "binary":
        return "0 or 1"
    if spec.kind == "categorical":
        return ", ".join(f"`{lv}`" for lv in spec.levels)
    lo = None if spec.min is None else f"x {'>' if spec.min_exclusive else '≥'} {_num(spec.min)}"
    hi = None if spec.max is None else f"x ≤ {_num(spec.max)}"
    if lo and hi and not spec.min_exclusive:
        return f"{_num(spec.min)} ≤ x ≤ {_num(spec.max)}"
    return " and ".join(t for t in (lo, hi) if t) or "any finite number"


def _plausibility(spec: ColumnSpec) -> list[str]:
    """The plausible range and the alternative unit of a lab column, with their sources."""
    lines = []
    if spec.plausible_min is not None or spec.plausible_max is not None:
        lo = "-∞" if spec.plausible_min is None else _num(spec.plausible_min)
        hi = "∞" if spec.plausible_max is None else _num(spec.plausible_max)
        lines.append(f"- **plausible range:** {lo} to {hi} {spec.unit or ''}; values outside are refused (source: {_cell(spec.plausible_source.describe())})")
    if spec.alt_unit is not None:
        lines.append(
            f"- **other unit:** {spec.alt_unit} x {_num(spec.alt_factor)} = {spec.unit}; a value plausible only in "
            f"{spec.alt_unit} is refused with this conversion (source: {_cell(spec.alt_source.describe())})"
        )
    return lines


def _interval(spec: ColumnSpec) -> str:
    """The support a truncated normal is confined to (range and plausible range), in interval notation."""
    lo_v = max(v for v in (spec.min, spec.plausible_min, -math.inf) if v is not None)
    hi_v = min(v for v in (spec.max, spec.plausible_max, math.inf) if v is not None)
    lo = "-∞" if lo_v == -math.inf else _num(lo_v)
    hi = "∞" if hi_v == math.inf else _num(hi_v)
    left = "(" if lo_v == -math.inf or (spec.min_exclusive and lo_v == spec.min) else "["
    right = ")" if hi_v == math.inf else "]"
    return f"{left}{lo}, {hi}{right}"


def _distribution(m: ColumnModel, spec: ColumnSpec) -> str:
    if m.dist == "binary":
        text = f"P(1) {_param(m.params['p'], _num, eq=True)}"
    elif m.dist == "categorical":
        text = _param(m.params["probs"], _level_probs)
    elif m.dist == "normal":
        text = f"normal({_continuous_params(m, ('mean', 'sd'), spec)}) truncated to {_interval(spec)}"
    else:
        body = _continuous_params(m, ("median", "gsd"), spec)
        text = f"log-normal({body})"
        if "zero" in m.params:
            text += f", P(0) {_param(m.params['zero'], _num, eq=True)}"
    if m.requires:
        gates = "; ".join(f"{f} is {_or(levels)}" for f, levels in m.requires.items())
        text += f"; forced to 0 unless {gates}"
        why = "; ".join(dict.fromkeys(src.describe() for src in m.requires_source.values()))
        if why:
            text += f" ({_cell(why)})"
    return text


def _continuous_params(m: ColumnModel, names: tuple[str, ...], spec: ColumnSpec) -> str:
    unit = f" {spec.unit}" if spec.unit else ""

    def fmt(pname):
        # the median carries the unit; a geometric sd is a unitless factor
        return (lambda x: f"{_num(x)}{unit}") if pname == "median" else _num

    params = {p: m.params[p] for p in names}
    varying = {p: prm for p, prm in params.items() if prm.by is not None and len(set(prm.values.values())) > 1}
    factors = {prm.by for prm in varying.values()}
    if len(varying) >= 2 and len(factors) == 1:
        # several parameters follow one factor: show them together per level
        factor = factors.pop()
        first = next(iter(varying.values()))
        levels = list(first.values)
        tuples = {lv: tuple(params[p].at({factor: lv}) for p in names) for lv in levels}
        groups = _collapse(levels, tuples)
        inner = "; ".join(
            f"{label} ({', '.join(f'{p} {fmt(p)(v)}' for p, v in zip(names, vals))})" for label, vals in groups
        )
        return f"by {factor}: {inner}"
    sep = "; " if varying else ", "
    return sep.join(f"{p} {_param(params[p], fmt(p))}" for p in names)


def _param(prm: Param, fmt: Callable[[object], str], eq: bool = False) -> str:
    """A parameter as text: a value, ``by <factor>: ...`` or ``given <column>: ...``."""
    if prm.given is not None:
        return f"given {prm.given}: 1→{fmt(prm.values['1'])}, 0→{fmt(prm.values['0'])}"
    if prm.by is None or len(set(map(_key, prm.values.values()))) == 1:
        value = prm.value if prm.by is None else next(iter(prm.values.values()))
        return f"= {fmt(value)}" if eq else fmt(value)
    groups = _collapse(list(prm.values), dict(prm.values))
    # a level's categorical probabilities are a list themselves: parenthesize to keep levels apart
    wrap = (lambda t: f"({t})") if isinstance(next(iter(prm.values.values())), Mapping) else (lambda t: t)
    return f"by {prm.by}: " + ", ".join(f"{label} {wrap(fmt(v))}" for label, v in groups)


def _collapse(levels: list[str], values: Mapping[str, object]) -> list[tuple[str, object]]:
    """Level/value pairs, with the most common value shown once as ``else`` when widely shared."""
    counts = Counter(_key(values[lv]) for lv in levels)
    mode, count = max(counts.items(), key=lambda kv: (kv[1], -_first_index(levels, values, kv[0])))
    if count < _ELSE_MIN_LEVELS:
        return [(lv, values[lv]) for lv in levels]
    out = [(lv, values[lv]) for lv in levels if _key(values[lv]) != mode]
    rep = next(values[lv] for lv in levels if _key(values[lv]) == mode)
    return out + [("else", rep)]


def _first_index(levels, values, key) -> int:
    return next(i for i, lv in enumerate(levels) if _key(values[lv]) == key)


def _key(v):
    # categorical parameters are mappings (unhashable proxies); compare them by their items
    return tuple(v.items()) if isinstance(v, Mapping) else v


def _level_probs(probs: Mapping[str, float]) -> str:
    return ", ".join(f"{lv} {_num(p)}" for lv, p in probs.items())


def _sources(m: ColumnModel) -> str:
    parts = [f"value: {_source_map(m.source)}", f"missing: {_source_map(m.missing_source)}"]
    return "<br>".join(parts)


def _source_map(sources: Mapping[str, Source]) -> str:
    if set(sources) == {"*"}:
        return sources["*"].describe()
    # levels that share a citation are listed together rather than repeating it
    by_text: dict[str, list[str]] = {}
    for level, src in sources.items():
        by_text.setdefault(src.describe(), []).append(level)
    return "; ".join(f"[{', '.join(levels)}] {text}" for text, levels in by_text.items())


def _where_text(wheres: Iterable[str]) -> str:
    """``"dystrophic: age_years"``-style locations, grouped by class."""
    grouped: dict[str, list[str]] = {}
    for where in wheres:
        cls, _, item = where.partition(": ")
        grouped.setdefault(cls, []).append(item)
    return "; ".join(f"{cls}: {', '.join(items)}" for cls, items in grouped.items())


def _or(levels: Iterable[str]) -> str:
    levels = list(levels)
    return levels[0] if len(levels) == 1 else ", ".join(levels[:-1]) + f" or {levels[-1]}"


def _num(x) -> str:
    """Shortest text that round-trips the number, so any change in the knowledge base shows."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _cell(text) -> str:
    # a pipe would end a Markdown table cell, a newline the row
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        out.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return out


def _is_default(kb: Knowledge) -> bool:
    try:
        return kb.path.resolve() == default_knowledge_path().resolve()
    except OSError:
        return False
