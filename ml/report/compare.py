"""Two benchmark reports side by side: what changed when an assumption, a model or the code changed.

The research loop ends here (README, "Change an assumption"): copy the knowledge base, change a
number, generate, train, benchmark, then compare the new ``report.json`` with the shipped one.
:func:`compare_reports` reads the two headlines (:data:`ml.report.HEADLINE_KEYS`) and returns one
row per number with both values and their difference; a number with a 95% CI in both reports
also says whether the intervals overlap, so that a difference within sampling error is not read
as an effect. Provenance (knowledge-base and model hashes, mode) is compared too, since two
reports are only comparable when the reader knows what differs between them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

__all__ = ["compare_reports", "COMPARED_META"]

#: Provenance fields shown first, so the reader sees what differs between the two runs.
COMPARED_META = ("mode", "knowledge_sha256", "model_sha256", "commit", "date")


def _load(report) -> dict:
    path = Path(report)
    if path.is_dir():
        path = path / "report.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{str(path)!r}: no such report (give a report directory or its report.json)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not a report: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("headline"), dict) or not isinstance(doc.get("meta"), dict) \
            or not doc["headline"]:
        raise ValueError(f"{str(path)!r} is not a pulmocalc benchmark report (it needs a 'headline' and a 'meta' object)")
    return doc


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def compare_reports(a, b) -> pd.DataFrame:
    """The headlines of two benchmark reports side by side.

    Parameters
    ----------
    a, b : path-like
        Report directories (with ``report.json``) or the JSON files themselves.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``key``; columns ``a``, ``b``, ``difference`` (b - a, numbers only) and
        ``ci_overlap`` (True / False where both reports give a 95% CI for the key, else NA).
        Provenance rows (:data:`COMPARED_META`) come first.

    Raises
    ------
    ValueError
        A path that is not a pulmocalc benchmark report.
    """
    ra, rb = _load(a), _load(b)
    rows = []
    for key in COMPARED_META:
        va, vb = ra["meta"].get(key), rb["meta"].get(key)
        rows.append({"key": key, "a": va, "b": vb, "difference": pd.NA if va == vb else "differs", "ci_overlap": pd.NA})
    ha, hb = ra["headline"], rb["headline"]
    for key in [k for k in ha if k in hb and not k.endswith("_ci") and k != "model_sha256"]:
        va, vb = ha[key], hb[key]
        diff = vb - va if _number(va) and _number(vb) else (pd.NA if va == vb else "differs")
        ca, cb = ha.get(f"{key}_ci"), hb.get(f"{key}_ci")
        overlap = pd.NA
        if isinstance(ca, list) and isinstance(cb, list) and len(ca) == len(cb) == 2:
            overlap = bool(ca[0] <= cb[1] and cb[0] <= ca[1])
        rows.append({"key": key, "a": va, "b": vb, "difference": diff, "ci_overlap": overlap})
    return pd.DataFrame(rows).set_index("key")
