"""The knowledge base's typed, frozen objects and its vocabulary.

Design: every entry of ``knowledge.toml`` becomes an immutable dataclass (a :class:`Source`
for every number, a :class:`ColumnSpec` per contract column, a :class:`ColumnModel` per class
and column, the latent :class:`Factor` levels of each :class:`ClassSpec`, declared impossible
combinations as :class:`Constraint`), assembled into one :class:`Knowledge`. The per-cell
arrays that the sampler and the oracle share are a :class:`CellTable`. This module only defines
these types and the words the schema allows (classes, roles, source kinds, Table 1/2 rows);
reading and checking the TOML is :mod:`data_gen.knowledge_parser`'s job, compiling the cell
table :mod:`data_gen.knowledge_cells`', and :func:`data_gen.knowledge.load_knowledge` puts them
together and re-exports the public names (its ``__all__``). It imports no other module of
the package.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

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


class KnowledgeError(ValueError):
    """The knowledge base is malformed: the message names the entry and what was expected."""



def _fail(where: str, msg: str):
    raise KnowledgeError(f"knowledge base entry {where}: {msg}")



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



def recording_value_keys(spec: ColumnSpec) -> tuple[str, ...]:
    """The values a recording rate can depend on, for one contract column."""
    if spec.kind == "binary":
        return ("present", "absent")
    if spec.kind == "categorical":
        return tuple(spec.levels)
    return ("positive", "zero")

