"""The knowledge base's assumptions, read from the knowledge base itself, and how each is moved.

Design. An *assumption* is one source of the knowledge base that
:attr:`data_gen.knowledge.Source.is_assumption` calls an assumption (kind ``assumption``, or a
cited source whose note says a number was assumed), together with every number that cites it,
split by what the numbers are: probabilities, locations or scales. A named source of
``[sources]`` (``"@background"``) is one assumption however many entries cite it, because it is
one rationale ("background rate of a finding ...") and moving it means moving all its numbers;
an inline source is an assumption of its own entry (and, in a per-level ``source`` table, of the
levels it covers). Nothing here lists assumptions: they are enumerated from the parsed TOML, so
a knowledge base with other numbers or sources gets its own sweep.

Each assumption is moved down and up (``direction`` -1 and +1) by one rule per kind of number:

* a probability ``p`` (``p``, ``zero``, ``missing``): ±1 on the log-odds scale,
  ``expit(logit(p) ± 1)``; 0 and 1 stay where they are (they are structural: "only in PAM",
  "by definition"), so an assumption made only of 0s and 1s is not perturbable and is left out;
* a probability vector (categorical ``probs``, a latent factor's ``levels``, the class
  ``prevalence`` across classes): the leading level (largest share, the first on a tie) moves
  ±1 on the log-odds scale and the others are rescaled in proportion, so the vector still sums
  to 1 and the others keep their ratios;
* a location (``mean`` of a normal, ``median`` of a log-normal): ×(1 ± 0.25);
* a scale: a normal's ``sd`` ×(1 ± 0.25); a log-normal's geometric sd on its log, i.e.
  ``gsd ** (1 ± 0.25)``, because ``log(gsd)`` is the log-normal's scale parameter and this
  keeps ``gsd > 1``.

A perturbation is applied to a deep copy of the parsed TOML, written with ``tomli_w`` and
validated by the ordinary loader (:func:`data_gen.load_knowledge`), so a perturbed knowledge
base passes every check the shipped one passes (sums, ranges, constraints) or is refused with
the loader's message. Contract entries (plausible ranges, unit conversions) and recording
regimes are not distribution parameters of the cohort and are not swept.
"""

from __future__ import annotations

import copy
import hashlib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from data_gen.knowledge import Knowledge, Source, default_knowledge_path, load_knowledge

__all__ = [
    "Assumption",
    "Perturbation",
    "BASELINE",
    "LOG_ODDS_STEP",
    "RELATIVE_STEP",
    "enumerate_assumptions",
    "knowledge_text",
    "perturb_raw",
    "perturbed_knowledge",
    "select_assumptions",
]

#: Step of a probability on the log-odds scale (the issue's rule).
LOG_ODDS_STEP = 1.0
#: Relative step of a location or scale parameter (the issue's rule).
RELATIVE_STEP = 0.25
#: The id of the unperturbed knowledge base in a sweep.
BASELINE = "baseline"

_PROBABILITY_KEYS = ("p", "zero", "missing")
_LOCATION_KEYS = ("mean", "median")
_SCALE_KEYS = ("sd", "gsd")
_NUMBER_KEYS = _PROBABILITY_KEYS + ("probs",) + _LOCATION_KEYS + _SCALE_KEYS


@dataclass(frozen=True)
class Assumption:
    """One assumption and the numbers that move with it.

    ``targets`` are ``(path, rule)`` pairs: ``path`` leads through the parsed TOML to a number
    (or, for the rules ``"mix"`` and ``"prevalence"``, to a table of shares) and ``rule`` is one
    of ``"logit"``, ``"mix"``, ``"prevalence"``, ``"location"``, ``"scale"``, ``"log_scale"``.
    """

    id: str
    kind: str  # "probability", "location" or "scale"
    rationale: str
    targets: tuple[tuple[tuple, str], ...] = field(default=())

    @property
    def n_numbers(self) -> int:
        return len(self.targets)


@dataclass(frozen=True)
class Perturbation:
    """An assumption moved in one direction (-1 down, +1 up); ``BASELINE`` with 0 is none."""

    assumption: str
    direction: int

    @property
    def key(self) -> str:
        """A file-name-safe, unique name of this perturbation."""
        if self.assumption == BASELINE:
            return BASELINE
        digest = hashlib.sha256(self.assumption.encode()).hexdigest()[:8]
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.assumption.lstrip("@"))[:80]
        return f"{safe}-{digest}-{'up' if self.direction > 0 else 'down'}"


# --------------------------------------------------------------------------------------------
# Enumeration
# --------------------------------------------------------------------------------------------
def _kind_of(key: str) -> str:
    if key in _LOCATION_KEYS:
        return "location"
    if key in _SCALE_KEYS:
        return "scale"
    return "probability"


def _rule_of(key: str) -> str:
    if key in _PROBABILITY_KEYS:
        return "logit"
    if key == "probs":
        return "mix"
    if key in _LOCATION_KEYS:
        return "location"
    return "log_scale" if key == "gsd" else "scale"


class _Collector:
    def __init__(self, raw: Mapping):
        self.registry = raw.get("sources", {})
        self.groups: dict[tuple[str, str], list] = {}
        self.rationale: dict[str, str] = {}

    def source(self, spec) -> Source | None:
        if isinstance(spec, str) and spec.startswith("@"):
            spec = self.registry.get(spec[1:])
        if not isinstance(spec, Mapping) or "kind" not in spec:
            return None
        return Source(kind=spec["kind"], fields={k: v for k, v in spec.items() if k != "kind"})

    def add(self, source_id: str, spec, kind: str, path: tuple, rule: str) -> None:
        src = self.source(spec)
        if src is None or not src.is_assumption:
            return
        self.rationale.setdefault(source_id, src.rationale)
        self.groups.setdefault((source_id, kind), []).append((path, rule))


def _source_id(spec, entry_id: str, level: str | None) -> str:
    if isinstance(spec, str):
        return spec  # "@name": one assumption wherever it is cited
    return entry_id if level is None else f"{entry_id}[{level}]"


def _entry(col: _Collector, path: tuple, entry: Mapping, entry_id: str) -> None:
    for key in _NUMBER_KEYS:
        if key not in entry:
            continue
        skey = "missing_source" if key == "missing" else "source"
        spec = entry.get(skey)
        value = entry[key]
        kind, rule = _kind_of(key), _rule_of(key)
        per_level = isinstance(spec, Mapping) and "kind" not in spec
        if not per_level:
            col.add(_source_id(spec, entry_id, None), spec, kind, path + (key,), rule)
            continue
        # a per-level source table: each of the parameter's levels follows its own source
        if not isinstance(value, Mapping) or "by" not in value:
            for level, s in spec.items():  # one number for every level: moved with each assumption
                col.add(_source_id(s, entry_id, level), s, kind, path + (key,), rule)
            continue
        for level in value:
            if level == "by":
                continue
            slevel = level if level in spec else ("else" if "else" in spec else None)
            if slevel is None:
                continue
            col.add(_source_id(spec[slevel], entry_id, slevel), spec[slevel], kind, path + (key, level), rule)


def _is_moved(raw: Mapping, path: tuple, rule: str) -> bool:
    """Whether the rule changes the number(s) at ``path`` at all (0 and 1 do not move)."""
    value = _get(raw, path)
    if rule == "prevalence":
        return 0.0 < value < 1.0
    if rule == "mix":
        tables = [v for k, v in value.items() if k != "by"] if "by" in value else [value]
        tables = [t if isinstance(t, Mapping) else value for t in tables]
        return any(0.0 < max(t.values()) < 1.0 for t in tables)
    if rule == "logit":
        vals = [v for k, v in value.items() if k not in ("by", "given")] if isinstance(value, Mapping) else [value]
        return any(0.0 < v < 1.0 for v in vals)
    return True


def enumerate_assumptions(raw: Mapping) -> list[Assumption]:
    """Every perturbable assumption of a parsed knowledge base, in file order.

    Parameters
    ----------
    raw : mapping
        The parsed TOML of a knowledge base (``tomllib.loads`` of its text).

    Returns
    -------
    list of Assumption
        Ids are ``"@<name>"`` for a named source, else the entry's TOML path (``defaults.<column>``,
        ``<class>.<column>``, ``<class>.factor.<name>``, ``<class>.prevalence``) with ``[<level>]``
        for one level of a per-level source; ``:location`` or ``:scale`` is appended for those
        kinds. Assumptions whose every number is 0 or 1 are left out.
    """
    col = _Collector(raw)
    for name, entry in raw.get("defaults", {}).items():
        _entry(col, ("defaults", name), entry, f"defaults.{name}")
    for k, cls in raw.get("classes", {}).items():
        col.add(_source_id(cls.get("prevalence_source"), f"{k}.prevalence", None), cls.get("prevalence_source"),
                "probability", ("classes", k, "prevalence"), "prevalence")
        for fname, factor in cls.get("factors", {}).items():
            col.add(_source_id(factor.get("source"), f"{k}.factor.{fname}", None), factor.get("source"),
                    "probability", ("classes", k, "factors", fname, "levels"), "mix")
        for cname, entry in cls.get("columns", {}).items():
            _entry(col, ("classes", k, "columns", cname), entry, f"{k}.{cname}")
    out = []
    for (sid, kind), targets in col.groups.items():
        moved = tuple(t for t in targets if _is_moved(raw, *t))
        if moved:
            aid = sid if kind == "probability" else f"{sid}:{kind}"
            out.append(Assumption(aid, kind, col.rationale[sid], moved))
    return out


def select_assumptions(assumptions: list[Assumption], which: str | None) -> list[Assumption]:
    """``which``: None or "all", or a comma-separated list of ids; unknown ids are refused."""
    if which is None or which.strip() == "all":
        return list(assumptions)
    wanted = [w.strip() for w in which.split(",") if w.strip()]
    by_id = {a.id: a for a in assumptions}
    unknown = [w for w in wanted if w not in by_id]
    if unknown or not wanted:
        raise ValueError(
            f"--assumptions: unknown assumption id(s) {unknown or [which]}; use 'all' or ids such as "
            f"{', '.join(list(by_id)[:3])} (there are {len(by_id)}; see sweep.md or enumerate_assumptions)"
        )
    return [by_id[w] for w in dict.fromkeys(wanted)]


# --------------------------------------------------------------------------------------------
# Applying a perturbation
# --------------------------------------------------------------------------------------------
def _get(raw, path):
    for p in path:
        raw = raw[p]
    return raw


def _logit_step(p: float, d: int) -> float:
    if p <= 0.0 or p >= 1.0:
        return p
    return 1.0 / (1.0 + math.exp(-(math.log(p / (1.0 - p)) + d * LOG_ODDS_STEP)))


def _mix(shares: dict, d: int) -> dict:
    """Leading share ±1 log-odds, the others rescaled in proportion (sum kept at 1)."""
    lead = max(shares, key=lambda k: shares[k])  # the first of equal shares
    old = shares[lead]
    new = _logit_step(old, d)
    rest = 1.0 - old
    out = {}
    for k, v in shares.items():
        out[k] = new if k == lead else (v * (1.0 - new) / rest if rest > 0 else v)
    return out


def _move(value, rule: str, d: int):
    if isinstance(value, Mapping):  # {by=..., level=number} or {given=..., "1"=..., "0"=...}
        return {k: (v if k in ("by", "given") else _move(v, rule, d)) for k, v in value.items()}
    if rule == "logit":
        return _logit_step(value, d)
    if rule == "location" or rule == "scale":
        return value * (1.0 + d * RELATIVE_STEP)
    if rule == "log_scale":
        return value ** (1.0 + d * RELATIVE_STEP)
    raise ValueError(f"unknown perturbation rule {rule!r}")


def perturb_raw(raw: Mapping, assumption: Assumption, direction: int) -> dict:
    """A deep copy of ``raw`` with the assumption's numbers moved down (-1) or up (+1)."""
    if direction not in (-1, 1):
        raise ValueError(f"direction must be -1 or +1, got {direction!r}")
    out = copy.deepcopy(dict(raw))
    for path, rule in assumption.targets:
        parent, key = _get(out, path[:-1]), path[-1]
        value = parent[key]
        if rule == "prevalence":
            classes = out["classes"]
            shares = {k: c["prevalence"] for k, c in classes.items()}
            new = _logit_step(value, direction)
            rest = 1.0 - value
            for k, c in classes.items():
                c["prevalence"] = new if k == path[1] else shares[k] * (1.0 - new) / rest
        elif rule == "mix":
            if "by" in value:
                parent[key] = {k: (v if k == "by" else _mix(v, direction)) for k, v in value.items()}
            else:
                parent[key] = _mix(value, direction)
        else:
            parent[key] = _move(value, rule, direction)
    return out


def perturbed_knowledge(base_text: str, perturbation: Perturbation, workdir: str | Path) -> Knowledge:
    """The validated knowledge base of one perturbation of ``base_text`` (a knowledge.toml's text).

    The perturbed TOML is written to ``workdir/<sha256>.toml`` (the same content, the same file)
    and loaded with :func:`data_gen.load_knowledge`, so it passes the loader's every check or
    raises its :class:`data_gen.KnowledgeError`.
    """
    import tomli_w  # the [distributed] extra

    raw = tomllib.loads(base_text)
    if perturbation.assumption != BASELINE:
        by_id = {a.id: a for a in enumerate_assumptions(raw)}
        if perturbation.assumption not in by_id:
            raise ValueError(f"the knowledge base has no assumption {perturbation.assumption!r}")
        raw = perturb_raw(raw, by_id[perturbation.assumption], perturbation.direction)
    text = tomli_w.dumps(raw)
    path = Path(workdir) / f"{hashlib.sha256(text.encode()).hexdigest()}.toml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{id(text)}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return load_knowledge(path)


def knowledge_text(path: str | Path | None) -> str:
    """The text of a knowledge base file (the shipped one by default), checked by the loader."""
    load_knowledge(path)
    return Path(path if path is not None else default_knowledge_path()).read_text(encoding="utf-8")
