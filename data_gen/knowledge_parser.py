"""Reading the knowledge base's TOML entries into typed objects, checking each one.

Design: one function per kind of entry (contract columns with their plausible ranges and
alternative units, classes with their latent factors, each class's column models and their
parameters, recording regimes), each taking the raw TOML table and the place it stands at
(``where``) and either returning a frozen object of :mod:`data_gen.knowledge_types` or raising a
:class:`~data_gen.knowledge_types.KnowledgeError` that names the entry and what was expected.
Sources are resolved here too (:class:`_Sources`: inline tables or ``"@name"`` of the
``[sources]`` registry), so that no number is accepted without one. Assembling the whole
knowledge base from these parts is :func:`data_gen.knowledge.load_knowledge`'s job.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Mapping

import numpy as np

from .knowledge_types import (
    COLUMN_KINDS,
    CONTINUOUS_EXPECT,
    DISTRIBUTIONS,
    ROLES,
    SOURCE_KINDS,
    TABLE1_COLUMNS,
    TABLE1_ROWS,
    TABLE2_COLUMNS,
    TABLE2_ROWS,
    ClassSpec,
    ColumnModel,
    ColumnSpec,
    Factor,
    Param,
    RecordingDecl,
    Source,
    _fail,
    recording_value_keys,
)

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

