"""Load and validate the knowledge base into frozen, typed objects.

The knowledge base (``knowledge.toml``) is the only place where clinical numbers live. This
module reads it, checks every entry (ranges, sums, sources, coverage of the input contract,
declared impossible combinations) and compiles it into per-cell parameter arrays that the
sampler and the oracle share, so the two cannot drift apart.

A *cell* is one class together with one level of each of the class's latent factors (cause,
pattern, visibility, stage, renal status...). Within a cell every column is independent of the
others, except that a binary column may be conditioned on one other binary column
(``given``). That keeps the exact posterior a sum over cells.

Design of the package's knowledge-base modules, lowest first: :mod:`data_gen.knowledge_types`
(the frozen objects), :mod:`data_gen.knowledge_parser` (one checked entry at a time),
:mod:`data_gen.knowledge_cells` (the per-cell arrays and the constraint check) and this module,
which reads the file, assembles the parts in order and caches the result per path. The
knowledge base's public names are importable from here, as they always were.
"""

from __future__ import annotations

import hashlib
import tomllib
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from .knowledge_cells import _check_constraint, _compile_cells
from .knowledge_parser import _check_dist_families, _parse_class, _parse_columns, _parse_recording, _require, _Sources
from .knowledge_types import (  # re-exported: the knowledge base's public names live here for users
    CLASSES,
    ROLES,
    TABLE2_FIELDS,
    TABLE2_ROWS,
    TOWARD_ROLES,
    CellTable,
    ClassSpec,
    ColumnModel,
    ColumnSpec,
    Constraint,
    Factor,
    Knowledge,
    KnowledgeError,
    Param,
    RecordingDecl,
    Source,
    _fail,
    recording_value_keys,
)

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
    "recording_value_keys",
    "CLASSES",
    "ROLES",
    "TOWARD_ROLES",
]


def default_knowledge_path() -> Path:
    """Path of the knowledge base shipped with pulmocalc."""
    return Path(__file__).with_name("knowledge.toml")


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

