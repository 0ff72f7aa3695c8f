"""Published case reports: real patients coded into the input contract, and what they teach.

``published_cases.json`` (package data) holds patients from published case reports and
teaching files, coded from the authors' text alone by the rules of
``shared/reference/published-cases-coding.md``: every value carries a verbatim evidence quote of
at most 12 words, every case its source URL, citation, the authors' diagnosis (with a quote)
and the clues they gave. Only reports whose source URL hashes (SHA-256, hex) to a first digit
0-7 may be here; 8-f are kept outside the repository for a blind evaluation.
:func:`check_published_cases` enforces these rules; :func:`load_published_cases` refuses a file
that breaks them.

The set has two uses. It is the external test of the model and the oracle (real patients, a
handful of findings each). And it is the source of the knowledge base's ``case_report``
recording regime: :func:`estimate_recording_rates` turns how often reports mention each
column, present or absent, into the probability that a value is reported. The same reports
serve both, so the case-report regime is fitted to the set it is tested on; the rates are
per column and value and never per class, and the blind set outside the repository is the
unbiased check.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .contract import LABEL, canonical_frame
from .knowledge import Knowledge, load_knowledge, recording_value_keys

__all__ = [
    "PUBLISHED_CASES_PATH",
    "PublishedCases",
    "load_published_cases",
    "check_published_cases",
    "estimate_recording_rates",
    "blind_split_allows",
    "MAX_QUOTE_WORDS",
]

PUBLISHED_CASES_PATH = Path(__file__).with_name("published_cases.json")
MAX_QUOTE_WORDS = 12
_CASE_KEYS = ("id", "expected", "source", "citation", "x", "reasons_any", "evidence")


def blind_split_allows(source: str) -> bool:
    """True when a report may enter the project: SHA-256 of its URL starts with 0-7."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[0] in "01234567"


@dataclass(frozen=True)
class PublishedCases:
    """The published set: ``frame`` (contract columns + ``calcification_type``, indexed by
    case id) and ``meta`` (source, citation, clues, evidence quotes, per case id)."""

    frame: pd.DataFrame
    meta: pd.DataFrame

    @property
    def X(self) -> pd.DataFrame:
        """The contract columns only, shape (n_cases, 52)."""
        return self.frame.drop(columns=[LABEL])

    @property
    def y(self) -> pd.Series:
        """The authors' diagnosis of every case."""
        return self.frame[LABEL]

    def __len__(self) -> int:
        return len(self.frame)


def _words(text: str) -> int:
    return len(str(text).split())


def check_published_cases(raw: dict, *, knowledge=None) -> list[str]:
    """Every way a published-case file breaks the project's rules, as messages (empty if none).

    Checks: the required keys; a known diagnosis; contract columns with allowed values (through
    the contract checker); an evidence quote of 1-12 words for every coded value; the clue
    groups name coded columns; the blind split's hash rule; no duplicated id, source or patient
    (two cases with identical coded values).
    """
    kb = knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)
    problems = []
    cases = raw.get("cases") if isinstance(raw, dict) else None
    if not isinstance(cases, list) or not cases:
        return ["the file must be a JSON object with a non-empty list 'cases'"]
    seen_id, seen_src, seen_x = {}, {}, {}
    for i, case in enumerate(cases):
        where = f"case #{i + 1} ({case.get('id', '?') if isinstance(case, dict) else '?'})"
        if not isinstance(case, dict):
            problems.append(f"{where}: not an object")
            continue
        missing = [k for k in _CASE_KEYS if k not in case]
        if missing:
            problems.append(f"{where}: missing keys {missing}")
            continue
        if case["expected"] not in kb.class_names:
            problems.append(f"{where}: expected {case['expected']!r} is not one of {list(kb.class_names)}")
        x, ev = case["x"], case["evidence"]
        unknown = [c for c in x if c not in kb.columns]
        if unknown:
            problems.append(f"{where}: unknown contract columns {unknown}")
        for col in x:
            quote = ev.get(col)
            if not isinstance(quote, str) or not quote.strip():
                problems.append(f"{where}: {col} has no evidence quote")
            elif _words(quote) > MAX_QUOTE_WORDS:
                problems.append(f"{where}: the quote for {col} has {_words(quote)} words, at most {MAX_QUOTE_WORDS}")
        extra = [c for c in ev if c not in x]
        if extra:
            problems.append(f"{where}: evidence for columns that are not coded: {extra}")
        for group in case["reasons_any"]:
            bad = [c for c in group if c not in x]
            if bad:
                problems.append(f"{where}: clue group {group} names columns that are not coded: {bad}")
        if not blind_split_allows(case["source"]):
            problems.append(f"{where}: its source URL hashes to 8-f, reserved for the blind evaluation")
        for key, seen, val in (("id", seen_id, case["id"]), ("source", seen_src, case["source"]),
                               ("coded values", seen_x, json.dumps(x, sort_keys=True))):
            if val in seen:
                problems.append(f"{where}: same {key} as {seen[val]}")
            seen[val] = case["id"]
    if not problems:
        try:
            _frame(cases, kb)
        except ValueError as exc:
            problems.append(f"contract: {exc}")
    return problems


def _frame(cases: list[dict], kb: Knowledge) -> pd.DataFrame:
    rows = [{**{c: np.nan for c in kb.column_names}, **case["x"], LABEL: case["expected"]} for case in cases]
    df = pd.DataFrame(rows, index=pd.Index([c["id"] for c in cases], name="case_id"))
    df = canonical_frame(df[[*kb.column_names, LABEL]], kb)
    df[LABEL] = pd.Categorical(df[LABEL], categories=list(kb.class_names))
    return df


def load_published_cases(path=None, *, knowledge=None) -> PublishedCases:
    """Load the published case reports (the shipped set by default), checked.

    Parameters
    ----------
    path : str or Path, optional
        A JSON file in the shipped set's format; defaults to ``data_gen/published_cases.json``.
    knowledge : Knowledge or path, optional

    Returns
    -------
    PublishedCases
        ``frame``: (n_cases, 53) contract columns and ``calcification_type``, indexed by case
        id, NaN where the report does not say; ``meta``: id -> source, citation, clues,
        diagnosis quote, clue groups (``reasons_any``) and evidence quotes.

    Raises
    ------
    ValueError
        Naming every rule the file breaks (see :func:`check_published_cases`).

    Examples
    --------
    >>> from data_gen import load_published_cases
    >>> cases = load_published_cases()
    >>> cases.frame.shape[1]
    53
    """
    kb = knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)
    p = Path(path) if path is not None else PUBLISHED_CASES_PATH
    raw = json.loads(p.read_text(encoding="utf-8"))
    problems = check_published_cases(raw, knowledge=kb)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ValueError(f"published cases {str(p)!r} break the rules: " + "; ".join(problems[:5]) + more)
    cases = raw["cases"]
    meta = pd.DataFrame(
        [{k: c.get(k) for k in ("source", "citation", "clues", "diagnosis_quote", "reasons_any", "evidence")} for c in cases],
        index=pd.Index([c["id"] for c in cases], name="case_id"),
    )
    return PublishedCases(_frame(cases, kb), meta)


# --------------------------------------------------------------------------------------------
# The case-report recording regime
# --------------------------------------------------------------------------------------------
def _recorded_value_probs(kb: Knowledge) -> dict[str, np.ndarray]:
    """Per column, (K classes, values) P(value held by the complete record | class).

    Values in the order of :func:`data_gen.knowledge.recording_value_keys`; the latent cells of
    each class are summed out and the structural missingness is included ((1 - missing) x P).
    """
    t = kb.cells
    pi = t.class_matrix()
    out = {}
    pm = t.p_marginal()
    for j, col in enumerate(t.binary):
        keep = 1 - t.binary_missing[j]
        out[col] = np.stack([(pm[j] * keep) @ pi, ((1 - pm[j]) * keep) @ pi], axis=1)
    for j, col in enumerate(t.categorical):
        keep = 1 - t.cat_missing[j]
        out[col] = (t.cat_probs[j] * keep[:, None]).T @ pi  # (L, K)
        out[col] = out[col].T
    for j, col in enumerate(t.continuous):
        keep = 1 - t.cont_missing[j]
        zero = t.cont_params[j].get("zero", np.zeros(t.n_cells))
        out[col] = np.stack([((1 - zero) * keep) @ pi, (zero * keep) @ pi], axis=1)
    return out


def estimate_recording_rates(cases: PublishedCases, *, knowledge=None, prior_strength: float = 2.0) -> pd.DataFrame:
    """How often a report mentions each column's value, given the complete record holds it.

    For column j and value v, the moment estimate over the published cases i is::

        rate(j, v) = (m_jv + a · r) / (e_jv + a),   m_jv = #{i : report i codes x_ij = v}
                                                    e_jv = Σ_i P(record holds x_ij = v | class_i)

    where ``e_jv`` comes from the knowledge base (the latent cells summed out, structural
    missingness included), ``r = Σ m / Σ e`` is the pooled rate over every column and value,
    and ``a = prior_strength`` shrinks rarely expected values toward it (a gamma-Poisson
    posterior mean with ``a`` pseudo-patients). Rates are clipped to [0, 1]; a clipped rate means
    the reports hold the value more often than the knowledge base expects (``ratio > 1``), a
    fidelity signal worth reading.

    Parameters
    ----------
    cases : PublishedCases
    knowledge : Knowledge or path, optional
    prior_strength : float, default 2.0
        Pseudo-patients of the pooled rate.

    Returns
    -------
    pandas.DataFrame
        One row per (column, value): ``mentioned`` (m), ``expected`` (e), ``ratio`` (m / e),
        ``rate`` (the shrunk, clipped estimate).
    """
    kb = knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)
    if not (isinstance(prior_strength, (int, float)) and math.isfinite(prior_strength) and prior_strength > 0):
        raise ValueError(f"prior_strength must be a positive number, got {prior_strength!r}")
    held = _recorded_value_probs(kb)
    y = cases.y.cat.codes.to_numpy()
    X = cases.X
    rows = []
    for col in kb.column_names:
        spec = kb.columns[col]
        keys = recording_value_keys(spec)
        s = X[col]
        if spec.kind == "binary":
            v = s.to_numpy(dtype=float, na_value=np.nan)
            hits = [v == 1, v == 0]
        elif spec.kind == "categorical":
            codes = s.cat.codes.to_numpy()
            hits = [codes == k for k in range(len(keys))]
        else:
            v = s.to_numpy(dtype=float, na_value=np.nan)
            hits = [v > 0, v == 0]
        expected = held[col][y].sum(axis=0)  # (values,)
        for k, key in enumerate(keys):
            rows.append({"column": col, "value": key, "mentioned": int(hits[k].sum()), "expected": float(expected[k])})
    out = pd.DataFrame(rows)
    pooled = out["mentioned"].sum() / out["expected"].sum()
    a = float(prior_strength)
    out["ratio"] = out["mentioned"] / out["expected"].where(out["expected"] > 0)
    out["rate"] = ((out["mentioned"] + a * pooled) / (out["expected"] + a)).clip(0.0, 1.0)
    out.attrs["pooled_rate"] = float(pooled)
    out.attrs["n_cases"] = len(cases)
    return out
