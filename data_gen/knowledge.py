"""Load and validate the knowledge base into frozen, typed objects.

The knowledge base (``knowledge.toml``) is the only place where clinical numbers live. This
module reads it, checks every entry (ranges, sums, sources, coverage of the input contract,
declared impossible combinations) and compiles it into per-cell parameter arrays that the
sampler and the oracle share, so the two cannot drift apart.

A *cell* is one class together with one level of each of the class's latent factors (cause,
pattern, visibility, stage, renal status...). Within a cell every column is independent of the
others, except that a binary column may be conditioned on one other binary column
(``given``). That keeps the exact posterior a sum over cells.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

__all__ = [
    "KnowledgeError",
    "Source",
    "ColumnSpec",
    "Param",
    "ColumnModel",
    "Factor",
    "ClassSpec",
    "Constraint",
    "RecordingDecl",
    "Knowledge",
    "CellTable",
    "load_knowledge",
    "default_knowledge_path",
    "CLASSES",
    "ROLES",
]

CLASSES = ("dystrophic", "metastatic", "dpo_nodular", "dpo_dendriform", "pam")
ROLES = ("usual", "associated", "unusual", "cause", "none")
TOWARD_ROLES = ("usual", "associated", "cause")
COLUMN_KINDS = ("binary", "categorical", "continuous")
DISTRIBUTIONS = ("normal", "lognormal")
SOURCE_KINDS = {
    "table1": ("row", "column"),
    "table2": ("row", "column"),
    "text": ("quote",),
    "case": ("case", "quote"),
    "literature": ("id",),
    "assumption": ("rationale",),
    "published_cases": ("n_cases", "method"),
}
TABLE1_ROWS = ("dystrophic", "mpc", "dpo_nodular", "dpo_dendriform", "pam")
TABLE1_COLUMNS = (
    "usual_distribution",
    "usual_findings",
    "associated_findings",
    "unusual_findings",
    "causes",
)
TABLE2_ROWS = ("dystrophic", "mpc", "dpo", "pam")
TABLE2_FIELDS = ("prognosis", "treatment", "screening", "diagnostic_value")
TABLE2_COLUMNS = TABLE2_FIELDS + ("all",)
CONTINUOUS_EXPECT = ("higher", "lower", "within", "none")
_PARAMS = {
    "binary": ("p",),
    "categorical": ("probs",),
    "normal": ("mean", "sd"),
    "lognormal": ("median", "gsd", "zero"),
}
_ENTRY_KEYS = {
    "role", "expect", "expect_range", "dist", "p", "probs", "mean", "sd", "median", "gsd", "zero",
    "missing", "requires", "source", "missing_source", "requires_source",
}


class KnowledgeError(ValueError):
    """The knowledge base is malformed: the message names the entry and what was expected."""


def default_knowledge_path() -> Path:
    """Path of the knowledge base shipped with pulmocalc."""
    return Path(__file__).with_name("knowledge.toml")


# --------------------------------------------------------------------------------------------
# Typed, frozen objects
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where a number comes from: a structured reference, never free text alone."""

    kind: str
    fields: Mapping[str, Any]

    def describe(self) -> str:
        """A short human-readable citation."""
        f = self.fields
        if self.kind == "table1":
            text = f"Table 1, {f['row']} / {f['column']}"
        elif self.kind == "table2":
            text = f"Table 2, {f['row']} / {f['column']}"
        elif self.kind == "text":
            text = f"review text: \u201c{f['quote']}\u201d"
        elif self.kind == "case":
            text = f"review case {f['case']}: \u201c{f['quote']}\u201d"
        elif self.kind == "literature":
            text = f"literature {f['id']}"
        elif self.kind == "published_cases":
            text = f"the project's published case reports (n = {f['n_cases']}): {f['method']}"
        else:
            text = f"assumption: {f['rationale']}"
        if "quote" in f and self.kind in ("table1", "table2"):
            text += f" (\u201c{f['quote']}\u201d)"
        if "note" in f:
            text += f"; {f['note']}"
        return text

    @property
    def is_assumption(self) -> bool:
        """An assumption, or a cited source whose note says a number was assumed."""
        return self.kind == "assumption" or "assum" in str(self.fields.get("note", "")).lower()

    @property
    def rationale(self) -> str:
        """Why the number is what it is: the assumption's rationale, else the note."""
        return str(self.fields.get("rationale", self.fields.get("note", "")))


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the input contract."""

    name: str
    kind: str
    group: str
    description: str
    unit: str | None = None
    levels: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    #: plausible range in ``unit``: values outside it are refused (a lab value in another unit)
    plausible_min: float | None = None
    plausible_max: float | None = None
    plausible_source: Source | None = None
    #: a common alternative unit and the factor that converts it to ``unit``
    alt_unit: str | None = None
    alt_factor: float | None = None
    alt_source: Source | None = None


@dataclass(frozen=True)
class Param:
    """A distribution parameter: constant, per level of a factor, or given a parent column.

    ``values`` maps a factor level (or, for ``given``, "1"/"0") to a number, or for a
    categorical column to a mapping level -> probability.
    """

    value: Any = None
    by: str | None = None
    given: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, Source] = field(default_factory=dict)

    def at(self, levels: Mapping[str, str]) -> Any:
        """The parameter in a cell whose factor levels are ``levels``."""
        if self.by is None:
            return self.value
        return self.values[levels[self.by]]


@dataclass(frozen=True)
class ColumnModel:
    """The distribution of one column in one class, with its role and sources."""

    column: str
    role: str
    expect: str | None
    expect_range: tuple[float, float] | None
    dist: str
    params: Mapping[str, Param]
    missing: Param
    requires: Mapping[str, tuple[str, ...]]
    source: Mapping[str, Source]
    missing_source: Mapping[str, Source]
    requires_source: Mapping[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class Factor:
    """A latent subtype of a class (cause, pattern, visibility, stage, renal status)."""

    name: str
    levels: tuple[str, ...]
    probs: tuple[float, ...]  # marginal probabilities given the class
    source: Source
    #: the factor whose level this one's probabilities depend on (None: drawn independently)
    by: str | None = None
    #: with ``by``: level of that factor -> probabilities of this factor's levels
    conditional: Mapping[str, tuple[float, ...]] | None = None

    def probs_given(self, levels: Mapping[str, str]) -> tuple[float, ...]:
        return self.probs if self.by is None else self.conditional[levels[self.by]]


@dataclass(frozen=True)
class ClassSpec:
    """One calcification type."""

    name: str
    label: str
    prevalence: float
    prevalence_source: Source
    factors: tuple[Factor, ...]
    columns: Mapping[str, ColumnModel]
    table1_row: str
    table2_row: str

    def cells(self) -> list[tuple[dict[str, str], float]]:
        """Every combination of factor levels with its probability given the class."""
        out = []
        for combo in itertools.product(*(range(len(f.levels)) for f in self.factors)):
            levels = {f.name: f.levels[i] for f, i in zip(self.factors, combo)}
            prob = math.prod(f.probs_given(levels)[i] for f, i in zip(self.factors, combo))
            if prob > 0:  # a level that a conditioned factor rules out makes no cell
                out.append((levels, prob))
        return out


@dataclass(frozen=True)
class Constraint:
    """A combination that never occurs: whenever ``if_`` holds, ``then`` holds."""

    name: str
    if_: Mapping[str, int]
    then: Mapping[str, int]
    source: Source


@dataclass(frozen=True)
class RecordingDecl:
    """A recording regime declared in the knowledge base (``[recording.<name>]``).

    ``rates[column][value]`` is the probability that a value held by the complete record is
    reported: ``value`` is ``"present"``/``"absent"`` for a binary column, a level for a
    categorical one, ``"positive"``/``"zero"`` for a continuous one. Compiled into arrays by
    :func:`data_gen.recording.resolve_recording`.
    """

    name: str
    description: str
    rates: Mapping[str, Mapping[str, float]]
    source: Source


@dataclass(frozen=True)
class CellTable:
    """Per-cell parameter arrays compiled from the knowledge base (read by sampler and oracle).

    Shapes use ``C`` cells. Binary columns are in ``binary`` order; ``p1[j, c]`` is
    P(value = 1 | cell) for an unconditioned column. A column conditioned on a parent has
    ``parent[j] >= 0`` and ``p_given[j, v, c]`` = P(value = 1 | parent = v, cell).
    """

    cell_class: np.ndarray  # (C,) class index
    cell_prob: np.ndarray  # (C,) P(cell | class)
    cell_levels: tuple[Mapping[str, str], ...]
    binary: tuple[str, ...]
    p1: np.ndarray  # (Jb, C)
    parent: np.ndarray  # (Jb,) index into binary, -1 for none
    p_given: np.ndarray  # (Jb, 2, C)
    binary_missing: np.ndarray  # (Jb, C)
    categorical: tuple[str, ...]
    cat_levels: tuple[tuple[str, ...], ...]
    cat_probs: tuple[np.ndarray, ...]  # each (C, L)
    cat_missing: np.ndarray  # (Jc, C)
    continuous: tuple[str, ...]
    cont_dist: tuple[str, ...]
    cont_params: tuple[Mapping[str, np.ndarray], ...]  # each name -> (C,)
    cont_bounds: tuple[tuple[float, float], ...]
    cont_missing: np.ndarray  # (Jn, C)

    @property
    def n_cells(self) -> int:
        return len(self.cell_class)

    def class_cells(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.cell_class == k)

    def class_matrix(self) -> np.ndarray:
        """(C, K) P(cell | class): a cell's weight in its own class's column, 0 elsewhere.

        ``table @ class_matrix()`` turns per-cell probabilities of shape (..., C) into per-class
        probabilities with the latent cells summed out.
        """
        K = int(self.cell_class.max()) + 1
        pi = np.zeros((self.n_cells, K))
        pi[np.arange(self.n_cells), self.cell_class] = self.cell_prob
        return pi

    def p_marginal(self) -> np.ndarray:
        """P(value = 1 | cell) for every binary column, marginalizing a parent if any."""
        p = self.p1.copy()
        for j in np.flatnonzero(self.parent >= 0):
            pp = p[self.parent[j]]
            p[j] = pp * self.p_given[j, 1] + (1 - pp) * self.p_given[j, 0]
        return p


@dataclass(frozen=True)
class Knowledge:
    """The validated knowledge base."""

    path: Path
    sha256: str
    meta: Mapping[str, Any]
    literature: Mapping[str, str]
    columns: Mapping[str, ColumnSpec]
    classes: Mapping[str, ClassSpec]
    table2: Mapping[str, Mapping[str, str]]
    table2_sources: Mapping[str, Source]
    constraints: tuple[Constraint, ...]
    cells: CellTable
    recording: Mapping[str, RecordingDecl] = field(default_factory=dict)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.classes)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def prevalence(self) -> dict[str, float]:
        return {k: c.prevalence for k, c in self.classes.items()}

    def role(self, class_name: str, column: str) -> str:
        return self.classes[class_name].columns[column].role

    def roles(self) -> list[tuple[str, str, str, str | None]]:
        """Every (class, column, role, expect) whose role is not ``none``."""
        return [
            (k, col, m.role, m.expect)
            for k, cls in self.classes.items()
            for col, m in cls.columns.items()
            if m.role != "none"
        ]

    def implications(self, class_name: str) -> dict[str, str]:
        """Table 2 of the review for a class: prognosis, treatment, screening, diagnostic value."""
        return dict(self.table2[self.classes[class_name].table2_row])

    def assumptions(self) -> list[tuple[str, str]]:
        """Every assumption the knowledge base makes: (where, rationale)."""
        out = []
        seen = set()

        def add(where, src):
            if src.is_assumption and (where, src.rationale) not in seen:
                seen.add((where, src.rationale))
                out.append((where, src.rationale))

        for k, cls in self.classes.items():
            add(f"{k}: prevalence", cls.prevalence_source)
            for f in cls.factors:
                add(f"{k}: factor {f.name}", f.source)
            for col, m in cls.columns.items():
                for src in m.source.values():
                    add(f"{k}: {col}", src)
                for src in m.missing_source.values():
                    add(f"{k}: {col} (missing)", src)
        for col, spec in self.columns.items():
            if spec.plausible_source is not None:
                add(f"contract: {col} (plausible range)", spec.plausible_source)
            if spec.alt_source is not None:
                add(f"contract: {col} ({spec.alt_unit} conversion)", spec.alt_source)
        return out


# --------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------
def load_knowledge(path: str | Path | None = None) -> Knowledge:
    """Load and validate a knowledge base.

    Parameters
    ----------
    path : str or Path, optional
        A TOML file with the structure of the shipped ``data_gen/knowledge.toml``. Defaults to
        the shipped knowledge base.

    Returns
    -------
    Knowledge
        Frozen, validated and compiled into per-cell parameter arrays.

    Raises
    ------
    KnowledgeError
        With a message that names the offending entry and says what was expected.

    Examples
    --------
    >>> from data_gen import load_knowledge
    >>> kb = load_knowledge()
    >>> kb.class_names
    ('dystrophic', 'metastatic', 'dpo_nodular', 'dpo_dendriform', 'pam')
    """
    p = Path(path) if path is not None else default_knowledge_path()
    return _load_cached(p.resolve())


@cache
def _load_cached(path: Path) -> Knowledge:
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise KnowledgeError(f"cannot read knowledge base {str(path)!r}: {exc.strerror}") from None
    try:
        raw = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"knowledge base {str(path)!r} is not valid TOML: {exc}") from None
    return _build(raw, path, hashlib.sha256(raw_bytes).hexdigest())


def _fail(where: str, msg: str):
    raise KnowledgeError(f"knowledge base entry {where}: {msg}")


def _require(raw: Mapping, key: str, where: str, kind=None):
    if key not in raw:
        _fail(where, f"missing required key {key!r}")
    val = raw[key]
    if kind is not None and not isinstance(val, kind):
        _fail(f"{where}.{key}", f"expected {_kind_name(kind)}, got {type(val).__name__} {val!r}")
    return val


def _kind_name(kind) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


def _number(val, where: str) -> float:
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
        _fail(where, f"expected a finite number, got {val!r}")
    return float(val)


def _probability(val, where: str) -> float:
    x = _number(val, where)
    if not 0.0 <= x <= 1.0:
        _fail(where, f"a probability must lie in [0, 1], got {x}")
    return x


class _Sources:
    """Resolves ``source`` entries: an inline table, or ``"@name"`` of the [sources] registry."""

    def __init__(self, registry: Mapping, literature: Mapping):
        self.literature = literature
        self.registry = {}
        for name, raw in registry.items():
            self.registry[name] = self.parse(raw, f"[sources.{name}]")

    def parse(self, raw, where: str) -> Source:
        if isinstance(raw, str):
            if not raw.startswith("@"):
                _fail(where, f"a source must be a table with a 'kind' or '@name', got {raw!r}")
            name = raw[1:]
            if name not in self.registry:
                _fail(where, f"unknown named source {raw!r}; known: {sorted(self.registry)}")
            return self.registry[name]
        if not isinstance(raw, Mapping):
            _fail(where, f"a source must be a table with a 'kind', got {raw!r}")
        kind = raw.get("kind")
        if kind not in SOURCE_KINDS:
            _fail(where, f"source kind must be one of {sorted(SOURCE_KINDS)}, got {kind!r}")
        for key in SOURCE_KINDS[kind]:
            val = raw.get(key)
            if val is None or (isinstance(val, str) and not val.strip()):
                _fail(where, f"a {kind!r} source needs a non-empty {key!r}")
        if kind == "table1":
            if raw["row"] not in TABLE1_ROWS:
                _fail(where, f"Table 1 row must be one of {TABLE1_ROWS}, got {raw['row']!r}")
            if raw["column"] not in TABLE1_COLUMNS:
                _fail(where, f"Table 1 column must be one of {TABLE1_COLUMNS}, got {raw['column']!r}")
        if kind == "table2" and raw["row"] not in TABLE2_ROWS:
            _fail(where, f"Table 2 row must be one of {TABLE2_ROWS}, got {raw['row']!r}")
        if kind == "table2" and raw["column"] not in TABLE2_COLUMNS:
            _fail(where, f"Table 2 column must be one of {TABLE2_COLUMNS}, got {raw['column']!r}")
        if kind == "case" and raw["case"] not in (1, 2, 3):
            _fail(where, f"the review has cases 1, 2 and 3, got {raw['case']!r}")
        if kind == "literature" and raw["id"] not in self.literature:
            _fail(where, f"literature id {raw['id']!r} is not listed in [literature]")
        fields = {k: v for k, v in raw.items() if k != "kind"}
        return Source(kind=kind, fields=MappingProxyType(fields))


def _build(raw: Mapping, path: Path, sha: str) -> Knowledge:
    if raw.get("schema_version") != 1:
        _fail("schema_version", f"expected 1, got {raw.get('schema_version')!r}")
    literature = _require(raw, "literature", "[literature]", Mapping)
    sources = _Sources(_require(raw, "sources", "[sources]", Mapping), literature)
    columns = _parse_columns(_require(raw, "columns", "[columns]", Mapping), sources)
    defaults = _require(raw, "defaults", "[defaults]", Mapping)
    for col in columns:
        if col not in defaults:
            _fail(f"[defaults.{col}]", "every contract column needs a background distribution")
    for col in defaults:
        if col not in columns:
            _fail(f"[defaults.{col}]", f"not a contract column; known: {list(columns)}")

    raw_classes = _require(raw, "classes", "[classes]", Mapping)
    if tuple(raw_classes) != CLASSES:
        _fail("[classes]", f"expected the classes {list(CLASSES)} in this order, got {list(raw_classes)}")
    classes = {}
    for name, rc in raw_classes.items():
        classes[name] = _parse_class(name, rc, columns, defaults, sources)
    total = sum(c.prevalence for c in classes.values())
    if abs(total - 1.0) > 1e-9:
        _fail("[classes.*].prevalence", f"prevalences must sum to 1, got {total:.6g}")
    _check_dist_families(classes, columns)

    table2, table2_sources = {}, {}
    raw_t2 = _require(raw, "table2", "[table2]", Mapping)
    for row in TABLE2_ROWS:
        entry = _require(raw_t2, row, "[table2]", Mapping)
        table2[row] = MappingProxyType({f: _require(entry, f, f"[table2.{row}]", str) for f in TABLE2_FIELDS})
        table2_sources[row] = sources.parse(_require(entry, "source", f"[table2.{row}]"), f"[table2.{row}].source")
    for name, cls in classes.items():
        if cls.table2_row not in table2:
            _fail(f"[classes.{name}].table2_row", f"must be one of {TABLE2_ROWS}, got {cls.table2_row!r}")

    constraints = []
    for i, rc in enumerate(raw.get("constraints", [])):
        where = f"[[constraints]] #{i + 1}"
        name = _require(rc, "name", where, str)
        where = f"[[constraints]] {name!r}"
        if_ = _require(rc, "if", where, Mapping)
        then = _require(rc, "then", where, Mapping)
        for col, val in {**if_, **then}.items():
            if col not in columns or columns[col].kind != "binary":
                _fail(where, f"{col!r} is not a binary contract column")
            if val not in (0, 1) or isinstance(val, bool):
                _fail(f"{where}.{col}", f"expected 0 or 1, got {val!r}")
        src = sources.parse(_require(rc, "source", where), f"{where}.source")
        constraints.append(Constraint(name, MappingProxyType(dict(if_)), MappingProxyType(dict(then)), src))

    cells = _compile_cells(classes, columns)
    recording = _parse_recording(raw.get("recording", {}), columns, sources)
    kb = Knowledge(
        path=path,
        sha256=sha,
        meta=MappingProxyType(dict(_require(raw, "meta", "[meta]", Mapping))),
        literature=MappingProxyType(dict(literature)),
        columns=MappingProxyType(columns),
        classes=MappingProxyType(classes),
        table2=MappingProxyType(table2),
        table2_sources=MappingProxyType(table2_sources),
        constraints=tuple(constraints),
        cells=cells,
        recording=MappingProxyType(recording),
    )
    for c in kb.constraints:
        _check_constraint(kb, c)
    return kb


def _parse_columns(raw: Mapping, sources: "_Sources") -> dict[str, ColumnSpec]:
    out = {}
    for name, rc in raw.items():
        where = f"[columns.{name}]"
        kind = _require(rc, "kind", where, str)
        if kind not in COLUMN_KINDS:
            _fail(f"{where}.kind", f"expected one of {COLUMN_KINDS}, got {kind!r}")
        levels = tuple(rc.get("levels", ()))
        if kind == "categorical" and len(levels) < 2:
            _fail(f"{where}.levels", "a categorical column needs at least two levels")
        out[name] = ColumnSpec(
            name=name,
            kind=kind,
            group=_require(rc, "group", where, str),
            description=_require(rc, "description", where, str),
            unit=rc.get("unit"),
            levels=levels,
            min=rc.get("min"),
            max=rc.get("max"),
            min_exclusive=bool(rc.get("min_exclusive", False)),
            **_plausibility(rc, kind, where, sources),
        )
    return out


def recording_value_keys(spec: ColumnSpec) -> tuple[str, ...]:
    """The values a recording rate can depend on, for one contract column."""
    if spec.kind == "binary":
        return ("present", "absent")
    if spec.kind == "categorical":
        return tuple(spec.levels)
    return ("positive", "zero")


def _parse_recording(raw, columns, sources) -> dict[str, RecordingDecl]:
    """``[recording.<name>]``: a rate for every contract column, a number or per value."""
    if not isinstance(raw, Mapping):
        _fail("[recording]", f"expected a table of regimes, got {raw!r}")
    out = {}
    for name, rr in raw.items():
        where = f"[recording.{name}]"
        if name in ("complete", "mcar"):
            _fail(where, "'complete' and 'mcar' are built-in regimes; choose another name")
        if not isinstance(rr, Mapping):
            _fail(where, f"expected a table, got {rr!r}")
        description = _require(rr, "description", where, str)
        source = sources.parse(_require(rr, "source", where), f"{where}.source")
        rates_raw = _require(rr, "rates", where, Mapping)
        missing = [c for c in columns if c not in rates_raw]
        if missing:
            _fail(f"{where}.rates", f"every contract column needs a rate; missing {missing}")
        rates = {}
        for col, val in rates_raw.items():
            cw = f"{where}.rates.{col}"
            if col not in columns:
                _fail(cw, f"not a contract column; known: {list(columns)}")
            keys = recording_value_keys(columns[col])
            if isinstance(val, Mapping):
                if set(val) != set(keys):
                    _fail(cw, f"expected rates for exactly {list(keys)}, got {list(val)}")
                rates[col] = MappingProxyType({k: _probability(val[k], f"{cw}.{k}") for k in keys})
            else:
                r = _probability(val, cw)
                rates[col] = MappingProxyType({k: r for k in keys})
        out[name] = RecordingDecl(name, description, MappingProxyType(rates), source)
    return out


def _plausibility(rc: Mapping, kind: str, where: str, sources: "_Sources") -> dict:
    """The optional plausible range and alternative unit of a continuous column, with sources."""
    out: dict = {}
    keys = ("plausible_min", "plausible_max", "alt_unit", "alt_factor")
    if not any(k in rc for k in keys):
        return out
    if kind != "continuous":
        _fail(where, f"{', '.join(k for k in keys if k in rc)} apply to continuous columns only")
    for k in ("plausible_min", "plausible_max"):
        if k in rc:
            v = rc[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                _fail(f"{where}.{k}", f"expected a finite number, got {v!r}")
            out[k] = float(v)
    lo, hi = out.get("plausible_min"), out.get("plausible_max")
    if lo is not None and hi is not None and lo >= hi:
        _fail(where, f"plausible_min ({lo:g}) must be below plausible_max ({hi:g})")
    if lo is None and hi is None:
        _fail(where, "alt_unit needs a plausible range (plausible_min and/or plausible_max) to recognize the other unit")
    if (lo is not None and rc.get("min") is not None and lo < rc["min"]) or (hi is not None and rc.get("max") is not None and hi > rc["max"]):
        _fail(where, "the plausible range must lie within min and max")
    out["plausible_source"] = sources.parse(_require(rc, "plausible_source", where), f"{where}.plausible_source")
    if ("alt_unit" in rc) != ("alt_factor" in rc):
        _fail(where, "alt_unit and alt_factor go together")
    if "alt_unit" in rc:
        factor = rc["alt_factor"]
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
            _fail(f"{where}.alt_factor", f"expected a number > 0 that converts {rc['alt_unit']} to {rc.get('unit')}, got {factor!r}")
        out["alt_unit"] = _require(rc, "alt_unit", where, str)
        out["alt_factor"] = float(factor)
        out["alt_source"] = sources.parse(_require(rc, "alt_source", where), f"{where}.alt_source")
    return out


def _parse_class(name, rc, columns, defaults, sources) -> ClassSpec:
    where = f"[classes.{name}]"
    prevalence = _probability(_require(rc, "prevalence", where), f"{where}.prevalence")
    prev_src = sources.parse(_require(rc, "prevalence_source", where), f"{where}.prevalence_source")
    factors = []
    raw_factors = rc.get("factors", {})
    for fname, rf in raw_factors.items():
        fw = f"{where}.factors.{fname}"
        levels = _require(rf, "levels", fw, Mapping)
        src = sources.parse(_require(rf, "source", fw), f"{fw}.source")
        if "by" in levels:
            factors.append(_conditional_factor(fname, levels, raw_factors, fw, src))
            continue
        probs = tuple(_probability(v, f"{fw}.levels.{k}") for k, v in levels.items())
        if abs(sum(probs) - 1.0) > 1e-9:
            _fail(f"{fw}.levels", f"level probabilities must sum to 1, got {sum(probs):.6g}")
        factors.append(Factor(fname, tuple(levels), probs, src))
    factor_levels = {f.name: f.levels for f in factors}
    overrides = rc.get("columns", {})
    for col in overrides:
        if col not in columns:
            _fail(f"{where}.columns.{col}", f"not a contract column; known: {list(columns)}")
    models = {}
    for col, spec in columns.items():
        base = dict(defaults[col])
        over = overrides.get(col, {})
        numeric_keys = {"p", "probs", "mean", "sd", "median", "gsd", "zero"}
        if numeric_keys & set(over) and "source" not in over:
            _fail(f"{where}.columns.{col}", "sets a number but gives no 'source' for it")
        if "missing" in over and "missing_source" not in over:
            _fail(f"{where}.columns.{col}", "sets 'missing' but gives no 'missing_source'")
        if "requires" in over and "requires_source" not in over:
            _fail(f"{where}.columns.{col}", "sets 'requires' but gives no 'requires_source'")
        merged = {**base, **over}
        models[col] = _parse_column_model(f"{where}.columns.{col}", spec, merged, factor_levels, sources, columns)
    return ClassSpec(
        name=name,
        label=_require(rc, "label", where, str),
        prevalence=prevalence,
        prevalence_source=prev_src,
        factors=tuple(factors),
        columns=MappingProxyType(models),
        table1_row=_require(rc, "table1_row", where, str),
        table2_row=_require(rc, "table2_row", where, str),
    )


def _conditional_factor(fname, levels, raw_factors, fw, src) -> Factor:
    """A factor whose level probabilities depend on the level of one other, unconditioned factor:
    ``levels = {by = "<factor>", <its level> = {<level> = p, ...}, ..., else = {...}}``."""
    parent = levels["by"]
    praw = raw_factors.get(parent)
    if parent == fname or not isinstance(praw, Mapping) or not isinstance(praw.get("levels"), Mapping):
        _fail(f"{fw}.levels.by", f"unknown factor {parent!r}; this class has factors {[f for f in raw_factors if f != fname]}")
    plevels = praw["levels"]
    if "by" in plevels:
        _fail(f"{fw}.levels.by", f"factor {parent!r} is itself conditioned on another factor")
    extra = set(levels) - {"by", "else"} - set(plevels)
    if extra:
        _fail(f"{fw}.levels", f"unknown levels {sorted(extra)} of factor {parent!r}; allowed: {list(plevels)}")
    names, cond = None, {}
    for plv in plevels:
        table = levels.get(plv, levels.get("else"))
        if not isinstance(table, Mapping):
            _fail(f"{fw}.levels", f"no probabilities for level {plv!r} of factor {parent!r} and no 'else'")
        if names is None:
            names = tuple(table)
        if tuple(table) != names:
            _fail(f"{fw}.levels.{plv}", f"levels must be exactly {list(names)} in that order, got {list(table)}")
        probs = tuple(_probability(v, f"{fw}.levels.{plv}.{k}") for k, v in table.items())
        if abs(sum(probs) - 1.0) > 1e-9:
            _fail(f"{fw}.levels.{plv}", f"level probabilities must sum to 1, got {sum(probs):.6g}")
        cond[plv] = probs
    pprobs = [_probability(v, f"{fw}.levels.by") for v in plevels.values()]
    marginal = tuple(sum(pp * cond[plv][i] for pp, plv in zip(pprobs, plevels)) for i in range(len(names)))
    return Factor(fname, names, marginal, src, by=parent, conditional=MappingProxyType(cond))


def _parse_column_model(where, spec: ColumnSpec, raw, factor_levels, sources, columns) -> ColumnModel:
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        _fail(where, f"unknown keys {sorted(unknown)}; allowed: {sorted(_ENTRY_KEYS)}")
    role = raw.get("role")
    if role not in ROLES:
        _fail(f"{where}.role", f"expected one of {ROLES}, got {role!r}")
    expect = raw.get("expect")
    if spec.kind == "continuous" and role != "none":
        if expect not in CONTINUOUS_EXPECT:
            _fail(f"{where}.expect", f"a continuous column with a role needs expect in {CONTINUOUS_EXPECT}, got {expect!r}")
    elif spec.kind == "categorical" and role != "none":
        if expect not in spec.levels:
            _fail(f"{where}.expect", f"a categorical column with a role needs expect in {spec.levels}, got {expect!r}")
    elif expect is not None and spec.kind == "binary":
        _fail(f"{where}.expect", "a binary column's direction is its presence; remove 'expect'")
    expect_range = None
    if expect == "within":
        rng = raw.get("expect_range")
        if not (isinstance(rng, list) and len(rng) == 2 and _number(rng[0], f"{where}.expect_range") < _number(rng[1], f"{where}.expect_range")):
            _fail(f"{where}.expect_range", f"expect = 'within' needs expect_range = [low, high] with low < high, got {rng!r}")
        expect_range = (float(rng[0]), float(rng[1]))
    elif "expect_range" in raw:
        _fail(f"{where}.expect_range", "expect_range is only meaningful with expect = 'within'")

    if spec.kind == "binary":
        dist = "binary"
    elif spec.kind == "categorical":
        dist = "categorical"
    else:
        dist = raw.get("dist")
        if dist not in DISTRIBUTIONS:
            _fail(f"{where}.dist", f"a continuous column needs dist in {DISTRIBUTIONS}, got {dist!r}")
    source = _source_map(raw, "source", where, factor_levels, sources)
    params = {}
    for pname in _PARAMS[dist]:
        if pname not in raw:
            if pname == "zero":
                continue
            _fail(where, f"distribution {dist!r} needs parameter {pname!r}")
        params[pname] = _parse_param(f"{where}.{pname}", raw[pname], pname, spec, factor_levels, columns, source)
    missing = _parse_param(f"{where}.missing", _require(raw, "missing", where), "missing", spec, factor_levels, columns, _source_map(raw, "missing_source", where, factor_levels, sources))
    requires = {}
    for fname, lv in raw.get("requires", {}).items():
        if spec.kind != "binary":
            _fail(f"{where}.requires", "only binary findings can require a factor level")
        if fname not in factor_levels:
            _fail(f"{where}.requires", f"unknown factor {fname!r}; this class has {list(factor_levels)}")
        bad = [x for x in lv if x not in factor_levels[fname]]
        if bad:
            _fail(f"{where}.requires.{fname}", f"unknown levels {bad}; allowed: {factor_levels[fname]}")
        requires[fname] = tuple(lv)
    requires_source = _source_map(raw, "requires_source", where, factor_levels, sources) if requires else MappingProxyType({})
    return ColumnModel(
        column=spec.name,
        role=role,
        expect=expect,
        expect_range=expect_range,
        dist=dist,
        params=MappingProxyType(params),
        missing=missing,
        requires=MappingProxyType(requires),
        source=source,
        missing_source=_source_map(raw, "missing_source", where, factor_levels, sources),
        requires_source=requires_source,
    )


def _source_map(raw, key, where, factor_levels, sources) -> Mapping[str, Source]:
    """A source, or a table of sources keyed like the parameter it covers."""
    val = raw.get(key)
    if val is None:
        _fail(where, f"every number needs a source: missing {key!r}")
    if isinstance(val, Mapping) and "kind" not in val:
        return MappingProxyType({k: sources.parse(v, f"{where}.{key}.{k}") for k, v in val.items()})
    return MappingProxyType({"*": sources.parse(val, f"{where}.{key}")})


def _parse_param(where, raw, pname, spec, factor_levels, columns, source) -> Param:
    check = _value_checker(pname, spec)
    if isinstance(raw, Mapping) and "given" in raw:
        if pname != "p":
            _fail(where, "only a binary probability 'p' can be given a parent column")
        parent = raw["given"]
        if parent not in columns or columns[parent].kind != "binary" or parent == spec.name:
            _fail(f"{where}.given", f"the parent must be another binary contract column, got {parent!r}")
        vals = {}
        for v in ("1", "0"):
            if v not in raw:
                _fail(where, f"a 'given' probability needs keys \"1\" and \"0\", got {sorted(raw)}")
            vals[v] = check(raw[v], f"{where}.{v}")
        return Param(given=parent, values=MappingProxyType(vals), sources=source)
    if isinstance(raw, Mapping) and "by" in raw:
        fname = raw["by"]
        if fname not in factor_levels:
            _fail(f"{where}.by", f"unknown factor {fname!r}; this class has factors {list(factor_levels)}")
        levels = factor_levels[fname]
        extra = set(raw) - {"by", "else"} - set(levels)
        if extra:
            _fail(where, f"unknown levels {sorted(extra)} of factor {fname!r}; allowed: {list(levels)}")
        vals = {}
        for lv in levels:
            if lv in raw:
                vals[lv] = check(raw[lv], f"{where}.{lv}")
            elif "else" in raw:
                vals[lv] = check(raw["else"], f"{where}.else")
            else:
                _fail(where, f"no value for level {lv!r} of factor {fname!r} and no 'else'")
        if "*" not in source:
            missing = [lv for lv in levels if lv not in source and "else" not in source]
            if missing:
                _fail(where, f"per-level sources do not cover levels {missing}")
        return Param(by=fname, values=MappingProxyType(vals), sources=source)
    return Param(value=check(raw, where), sources=source)


def _value_checker(pname, spec):
    if pname in ("p", "missing", "zero"):
        return _probability
    if pname == "probs":
        def check_probs(val, where):
            if not isinstance(val, Mapping):
                _fail(where, f"expected a table of level probabilities, got {val!r}")
            if set(val) != set(spec.levels):
                _fail(where, f"levels must be exactly {list(spec.levels)}, got {list(val)}")
            probs = {k: _probability(v, f"{where}.{k}") for k, v in val.items()}
            if abs(sum(probs.values()) - 1.0) > 1e-9:
                _fail(where, f"level probabilities must sum to 1, got {sum(probs.values()):.6g}")
            return MappingProxyType({k: probs[k] for k in spec.levels})
        return check_probs

    def check_positive(val, where):
        x = _number(val, where)
        if pname in ("sd", "median") and x <= 0:
            _fail(where, f"{pname} must be positive, got {x}")
        if pname == "gsd" and x <= 1:
            _fail(where, f"a geometric sd must exceed 1, got {x}")
        return x
    return check_positive


def _check_dist_families(classes, columns):
    for col, spec in columns.items():
        if spec.kind != "continuous":
            continue
        dists = {k: c.columns[col].dist for k, c in classes.items()}
        if len(set(dists.values())) > 1:
            _fail(f"[*.{col}]", f"every class must use one distribution family for a column, got {dists}")


# --------------------------------------------------------------------------------------------
# Compilation into per-cell arrays
# --------------------------------------------------------------------------------------------
def _compile_cells(classes: Mapping[str, ClassSpec], columns: Mapping[str, ColumnSpec]) -> CellTable:
    cell_class, cell_prob, cell_levels, cell_models = [], [], [], []
    for k, cls in enumerate(classes.values()):
        for levels, prob in cls.cells():
            cell_class.append(k)
            cell_prob.append(prob)
            cell_levels.append(MappingProxyType(levels))
            cell_models.append(cls.columns)
    C = len(cell_class)
    binary = tuple(c for c, s in columns.items() if s.kind == "binary")
    bidx = {c: i for i, c in enumerate(binary)}
    p1 = np.zeros((len(binary), C))
    parent = np.full(len(binary), -1, dtype=np.int64)
    p_given = np.zeros((len(binary), 2, C))
    bmiss = np.zeros((len(binary), C))
    for j, col in enumerate(binary):
        for c in range(C):
            m = cell_models[c][col]
            lv = cell_levels[c]
            gate = all(lv.get(f) in allowed for f, allowed in m.requires.items())
            pp = m.params["p"]
            if pp.given is not None:
                par = bidx[pp.given]
                if parent[j] not in (-1, par):
                    _fail(f"[*.{col}].p", "every class must condition a column on the same parent")
                parent[j] = par
                p_given[j, 1, c] = pp.values["1"] * gate
                p_given[j, 0, c] = pp.values["0"] * gate
            else:
                p1[j, c] = pp.at(lv) * gate
            bmiss[j, c] = m.missing.at(lv)
    # a parent-conditioned column must be so in every class (checked above for the parent);
    # where one class gives a plain probability, treat it as equal under both parent values
    for j in np.flatnonzero(parent >= 0):
        for c in range(C):
            if cell_models[c][binary[j]].params["p"].given is None:
                p_given[j, :, c] = p1[j, c]
        if parent[parent[j]] >= 0:
            _fail(f"[*.{binary[j]}].p", "a parent column may not itself be conditioned on another column")

    categorical = tuple(c for c, s in columns.items() if s.kind == "categorical")
    cat_probs, cat_missing = [], np.zeros((len(categorical), C))
    for j, col in enumerate(categorical):
        levels = columns[col].levels
        arr = np.zeros((C, len(levels)))
        for c in range(C):
            m = cell_models[c][col]
            probs = m.params["probs"].at(cell_levels[c])
            arr[c] = [probs[x] for x in levels]
            cat_missing[j, c] = m.missing.at(cell_levels[c])
        cat_probs.append(arr)

    continuous = tuple(c for c, s in columns.items() if s.kind == "continuous")
    cont_dist, cont_params, cont_bounds = [], [], []
    cont_missing = np.zeros((len(continuous), C))
    for j, col in enumerate(continuous):
        spec = columns[col]
        dist = cell_models[0][col].dist
        names = ("mean", "sd") if dist == "normal" else ("median", "gsd", "zero")
        arrs = {n: np.zeros(C) for n in names}
        for c in range(C):
            m = cell_models[c][col]
            for n in names:
                arrs[n][c] = m.params[n].at(cell_levels[c]) if n in m.params else 0.0
            cont_missing[j, c] = m.missing.at(cell_levels[c])
        cont_dist.append(dist)
        cont_params.append(MappingProxyType(arrs))
        # sampled values stay within what the contract accepts: its range and its plausible range
        lo = max(-np.inf if spec.min is None else float(spec.min), -np.inf if spec.plausible_min is None else spec.plausible_min)
        hi = min(np.inf if spec.max is None else float(spec.max), np.inf if spec.plausible_max is None else spec.plausible_max)
        cont_bounds.append((lo, hi))

    for arr in (p1, p_given, bmiss, cat_missing, cont_missing):
        arr.setflags(write=False)
    return CellTable(
        cell_class=np.asarray(cell_class),
        cell_prob=np.asarray(cell_prob),
        cell_levels=tuple(cell_levels),
        binary=binary,
        p1=p1,
        parent=parent,
        p_given=p_given,
        binary_missing=bmiss,
        categorical=categorical,
        cat_levels=tuple(columns[c].levels for c in categorical),
        cat_probs=tuple(cat_probs),
        cat_missing=cat_missing,
        continuous=continuous,
        cont_dist=tuple(cont_dist),
        cont_params=tuple(cont_params),
        cont_bounds=tuple(cont_bounds),
        cont_missing=cont_missing,
    )


def _check_constraint(kb: Knowledge, con: Constraint) -> None:
    """Every cell where the ``if`` part can occur must make each ``then`` part certain."""
    t = kb.cells
    bidx = {c: i for i, c in enumerate(t.binary)}
    names = kb.class_names
    for c in range(t.n_cells):
        joint = _joint_binary(t, c, bidx, {**con.if_, **con.then})
        p_if = _prob_of(joint, con.if_)
        if p_if == 0:
            continue
        for col, val in con.then.items():
            bad = _prob_of(joint, {**con.if_, col: 1 - val})
            if bad > 0:
                lv = dict(t.cell_levels[c])
                raise KnowledgeError(
                    f"knowledge base violates constraint {con.name!r}: in class "
                    f"{names[t.cell_class[c]]!r} with latent levels {lv}, {col} = {1 - val} can "
                    f"occur together with {dict(con.if_)} (probability {bad:.3g}); expected 0"
                )


def _joint_binary(t: CellTable, c: int, bidx, cols) -> dict[tuple, float]:
    """Joint distribution of a few binary columns (values, not missingness) within one cell."""
    names = list(cols)
    # add parents so that conditioned columns can be evaluated
    for col in list(names):
        par = t.parent[bidx[col]]
        if par >= 0 and t.binary[par] not in names:
            names.append(t.binary[par])
    out = {}
    for vals in itertools.product((0, 1), repeat=len(names)):
        assign = dict(zip(names, vals))
        prob = 1.0
        for col, v in assign.items():
            j = bidx[col]
            par = t.parent[j]
            if par >= 0:
                p = t.p_given[j, assign[t.binary[par]], c]
            else:
                p = t.p1[j, c]
            prob *= p if v == 1 else 1 - p
        out[tuple(sorted(assign.items()))] = prob
    return out


def _prob_of(joint, event: Mapping[str, int]) -> float:
    return sum(p for key, p in joint.items() if all(dict(key)[k] == v for k, v in event.items()))
