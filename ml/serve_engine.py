"""The teaching page's engine: one patient's findings in, the whole page's content out, no HTTP.

:meth:`Engine.update` takes the findings as a mapping column -> value and returns one JSON-ready
dict: ``model.predict_proba``, ``ml.explain`` (SHAP), :func:`data_gen.oracle_proba`,
:func:`data_gen.weight_of_evidence` and :func:`data_gen.next_best_findings` for that patient. The
oracle reads blanks under :data:`ORACLE_RECORDING` (as in published case reports). Named
prevalence settings are derived from the knowledge base (:func:`named_settings`), never new
numbers. :mod:`ml.serve` puts this behind HTTP. Research and teaching only; never a clinical device.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Engine", "RequestError", "case_library", "named_settings", "ORACLE_RECORDING", "NEXT_TOP", "N_REASONS", "N_CLASSES"]

#: How the oracle reads blanks on the page: as in published case reports.
ORACLE_RECORDING = "case_report"
#: Findings listed under "what to check next".
NEXT_TOP = 5
#: Reasons listed for and against each diagnosis.
N_REASONS = 8
#: Diagnoses given reasons (the model's most probable first).
N_CLASSES = 3
# markers whose class mix in the knowledge base makes a named setting
_SETTINGS = (
    ("dialysis_unit", "a dialysis unit", "on_dialysis"),
    ("transplant_clinic", "a kidney transplant clinic", "kidney_transplant"),
    ("pam_family_clinic", "a family clinic for PAM", "family_history_pam"),
)
_TABLE2_WORDS = (("prognosis", "prognosis"), ("treatment", "treatment"), ("screening", "screening"), ("diagnostic_value", "diagnostic value"))


class RequestError(ValueError):
    """A bad request: ``field`` names the finding (or parameter) at fault, ``message`` says what
    is allowed. Shown to the student and returned with HTTP status 400."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------------------------
# Knowledge-derived content
# --------------------------------------------------------------------------------------------
def named_settings(kb) -> dict[str, dict[str, Any]]:
    """The prevalence settings of the selector: the default mix and mixes derived from it.

    Returns ``{name: {"label", "mix": {class: share}, "source"}}``. ``default`` is the knowledge
    base's prevalence; each other setting is the knowledge base's class mix among its patients
    with one marker present (P(class | marker) by the oracle, every other column unknown), so no
    number enters that the knowledge base does not already hold.
    """
    from data_gen import oracle_proba

    classes = list(kb.class_names)
    out = {
        "default": {
            "label": "default mix (knowledge base)",
            "mix": {k: float(kb.prevalence[k]) for k in classes},
            "source": "; ".join(f"{k}: {kb.classes[k].prevalence_source.describe()}" for k in classes),
        }
    }
    rows = pd.DataFrame([{m: 1} for _, _, m in _SETTINGS]).reindex(columns=list(kb.column_names))
    mixes = oracle_proba(rows, missing="ignore", knowledge=kb).to_numpy()
    for (name, label, marker), mix in zip(_SETTINGS, mixes):
        out[name] = {
            "label": label,
            "mix": {k: float(v) for k, v in zip(classes, mix)},
            "source": f"derived: the knowledge base's class mix among its patients with {marker} = 1 (exact oracle, other columns unknown)",
        }
    out["uniform"] = {"label": "equal shares (findings alone)", "mix": {k: 1 / len(classes) for k in classes},
                      "source": "no prior preference: every type equally likely before the findings"}
    return out


def _plain_value(v):
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return int(f) if f.is_integer() else f
    return str(v)


def case_library(kb) -> list[dict[str, Any]]:
    """The review's three cases and the project's published case reports, each with its citation.

    Every entry: ``id``, ``title``, ``citation``, ``source`` (URL or None), ``diagnosis`` (class
    name), ``diagnosis_label`` and ``findings`` (column -> value, recorded values only).
    """
    from data_gen import load_published_cases, paper_cases

    cols = list(kb.column_names)
    out = []
    review = paper_cases()
    for i, (cid, row) in enumerate(review.iterrows(), 1):
        k = str(row["calcification_type"])
        out.append({
            "id": str(cid), "title": f"Review case {i}", "citation": f"{kb.meta.get('paper', 'the review')}, case {i}",
            "source": None, "diagnosis": k, "diagnosis_label": kb.classes[k].label,
            "findings": {c: _plain_value(row[c]) for c in cols if _plain_value(row[c]) is not None},
        })
    pub = load_published_cases(knowledge=kb)
    for cid, row in pub.frame.iterrows():
        k = str(row["calcification_type"])
        meta = pub.meta.loc[cid]
        out.append({
            "id": str(cid), "title": str(meta["citation"]), "citation": str(meta["citation"]), "source": str(meta["source"]),
            "diagnosis": k, "diagnosis_label": kb.classes[k].label,
            "findings": {c: _plain_value(row[c]) for c in cols if _plain_value(row[c]) is not None},
        })
    return out


def _schema(kb, settings, cases) -> dict[str, Any]:
    from .wording import column_display_name

    groups = {"history": "History", "laboratory": "Labs", "imaging": "Imaging"}
    columns = []
    for name, spec in kb.columns.items():
        columns.append({
            "name": name, "label": column_display_name(name, kb), "kind": spec.kind, "group": spec.group,
            "group_label": groups.get(spec.group, spec.group), "unit": spec.unit, "levels": list(spec.levels),
            "min": spec.min, "max": None if spec.max is None or not math.isfinite(spec.max) else spec.max,
            "description": spec.description,
        })
    return {
        "disclaimer": _disclaimer(),
        "title": kb.meta.get("title", "pulmocalc"),
        "paper": kb.meta.get("paper", ""),
        "classes": [{"name": k, "label": c.label} for k, c in kb.classes.items()],
        "columns": columns,
        "settings": [{"name": n, "label": s["label"], "source": s["source"]} for n, s in settings.items()],
        "cases": [{k: c[k] for k in ("id", "title", "citation", "source", "findings", "diagnosis", "diagnosis_label")} for c in cases],
        "oracle_recording": ORACLE_RECORDING,
    }


def _disclaimer() -> str:
    from .wording import DISCLAIMER

    return DISCLAIMER


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------
class Engine:
    """Everything the page computes, for one patient at a time, without HTTP.

    Parameters
    ----------
    model : CalcificationModel
        The classifier (``ml.load_model()`` for the shipped one).
    """

    def __init__(self, model):
        from data_gen import load_knowledge

        self.model = model
        self.kb = getattr(model, "knowledge", None) or load_knowledge()
        self.classes = list(self.kb.class_names)
        self.settings = named_settings(self.kb)
        self.cases = case_library(self.kb)
        self.schema = _schema(self.kb, self.settings, self.cases)
        self._lock = threading.Lock()  # the model's cached SHAP explainer is not thread-safe

    # -- input ------------------------------------------------------------------------------
    def patient(self, findings: Mapping[str, Any]) -> pd.DataFrame:
        """The findings as a one-row frame in the input contract, or a :class:`RequestError`
        naming the finding and what is allowed."""
        from data_gen import ContractError

        if not isinstance(findings, Mapping):
            raise RequestError("findings must be an object mapping finding names to values", "findings")
        row = {}
        for name, value in findings.items():
            if name not in self.kb.columns:
                raise RequestError(f"unknown finding {str(name)[:60]!r}; expected one of the input contract's columns", str(name)[:60])
            if value is None or value == "":
                continue
            if not isinstance(value, (str, int, float, bool)):
                raise RequestError(f"finding {name!r}: expected a number, a word or empty, got {type(value).__name__}", name)
            spec = self.kb.columns[name]
            if spec.kind == "continuous" and isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise RequestError(
                        f"finding {name!r}: {value[:40]!r} is not a number; expected a number in {spec.unit or 'its unit'} or empty",
                        name,
                    ) from None
            row[name] = value
        df = pd.DataFrame([row]).reindex(columns=list(self.kb.column_names))
        for c, spec in self.kb.columns.items():
            if spec.kind == "continuous" or spec.kind == "binary":
                if df[c].dtype == object and df[c].isna().all():
                    df[c] = df[c].astype(float)
        try:
            return self.model.check(df)  # the contract's checks, once per update
        except ContractError as exc:
            m = re.search(r"column '([A-Za-z0-9_]+)'", str(exc))
            raise RequestError(str(exc), m.group(1) if m else None) from None

    def prevalence(self, setting: str | None) -> dict[str, float]:
        name = setting or "default"
        if name not in self.settings:
            raise RequestError(f"unknown setting {str(name)[:40]!r}; expected one of {list(self.settings)}", "setting")
        return self.settings[name]["mix"]

    # -- output -----------------------------------------------------------------------------
    def update(self, findings: Mapping[str, Any], *, setting: str | None = None, focus: str | None = None) -> dict[str, Any]:
        """The page's content for one patient (JSON-ready).

        Keys: ``findings`` (the checked values), ``setting``, ``differential`` (per class: label,
        model and oracle probability, best first by the model), ``reasons`` (the model's
        ``N_CLASSES`` most probable classes, each with findings ``for`` and ``against``: SHAP and
        weight of evidence in log-odds, Table 1 role, sources, an ``unusual`` flag), ``next``
        (columns by information gain, or by expected movement of ``focus``), ``table2`` (the
        leading diagnosis's implications with their source) and ``prevalence_source``.
        """
        from data_gen import next_best_findings, weight_of_evidence

        from .treeshap import shap_values

        if focus not in (None, "") and focus not in self.classes:
            raise RequestError(f"unknown focus {str(focus)[:40]!r}; expected one of {self.classes} or empty", "focus")
        focus = focus or None
        df = self.patient(findings)
        mix = self.prevalence(setting)
        kb = self.kb
        model = self.model
        with self._lock:
            # what model.predict_proba and ml.explain compute, without checking the frame again
            p_model = model._proba_checked(df, mix).iloc[0]
            raw = shap_values(model, model.encoder.transform(df), n_jobs=1)
        shap_all = np.einsum("nfk,fj->njk", raw, model.encoder.source_matrix())[0]  # (columns, classes)
        woe = weight_of_evidence(df, prevalence=mix, recording=ORACLE_RECORDING, knowledge=kb)
        # the evidence's total is the oracle's centred log posterior: its softmax is oracle_proba
        total = woe.total[0]
        z = np.exp(total - total.max())
        p_oracle = pd.Series(z / z.sum(), index=self.classes)
        shap_c = shap_all - shap_all.mean(axis=-1, keepdims=True)  # (J, K), centred as in ml.reasons
        shap_cols = list(model.encoder.columns)
        woe_v = woe.values[0]  # (J, K)
        order = np.argsort(-p_model.to_numpy(), kind="stable")
        differential = [
            {"name": self.classes[i], "label": kb.classes[self.classes[i]].label,
             "model": float(p_model.iloc[i]), "oracle": float(p_oracle.iloc[i])}
            for i in order
        ]
        reasons = [self._reasons(self.classes[i], df, shap_c, shap_cols, woe_v, float(p_model.iloc[i]), float(p_oracle.iloc[i])) for i in order[:N_CLASSES]]
        try:
            nb = next_best_findings(df, prevalence=mix, recording=ORACLE_RECORDING, focus=focus, top=NEXT_TOP, knowledge=kb)
        except ValueError as exc:
            if "impossible under every class" not in str(exc):
                raise
            raise RequestError(
                "these findings are impossible under every type in the knowledge base (a declared impossible "
                "combination, e.g. on dialysis without chronic kidney disease); change one of them", None
            ) from None
        lead = self.classes[order[0]]
        row2 = kb.classes[lead].table2_row
        table2 = {
            "class": lead, "label": kb.classes[lead].label,
            "items": [{"key": key, "words": words, "text": kb.implications(lead)[key]} for key, words in _TABLE2_WORDS if key in kb.implications(lead)],
            "source": kb.table2_sources[row2].describe() if row2 in kb.table2_sources else "Table 2",
        }
        return {
            "findings": {c: _plain_value(v) for c, v in df.iloc[0].items() if _plain_value(v) is not None},
            "setting": setting or "default",
            "prevalence": mix,
            "prevalence_source": self.settings[setting or "default"]["source"],
            "differential": differential,
            "reasons": reasons,
            "focus": focus,
            "next": self._next(nb, focus),
            "table2": table2,
        }

    def _reasons(self, k, df, shap_c, shap_cols, woe_v, p_model, p_oracle) -> dict[str, Any]:
        from .reason_types import MIN_EFFECT
        from .wording import _clue_text, column_display_name, describe_value

        kb = self.kb
        ki = self.classes.index(k)
        pos = {c: i for i, c in enumerate(kb.column_names)}
        values = df.iloc[0]
        items = []
        for j, col in enumerate(shap_cols):
            s, w = float(shap_c[j, ki]), float(woe_v[pos[col], ki])
            if max(abs(s), abs(w)) <= MIN_EFFECT:
                continue
            m = kb.classes[k].columns[col]
            v = values[col]
            blank = _plain_value(v) is None
            present = (not blank) and (kb.columns[col].kind != "binary" or float(v) == 1.0)
            sources = [src.describe() if name in ("*", "p", "value") else f"{name}: {src.describe()}" for name, src in m.source.items()]
            if blank:
                sources += [f"not recorded: {src.describe()}" for src in m.missing_source.values()]
            items.append({
                "column": col, "text": column_display_name(col, kb), "value_text": describe_value(col, v, kb),
                "shap": s, "woe": w, "role": m.role, "clue": _clue_text(kb, k, col),
                "unusual": bool(m.role == "unusual" and present), "blank": blank, "sources": sources,
            })
        sign = [it["woe"] if abs(it["woe"]) > MIN_EFFECT else it["shap"] for it in items]
        fav = sorted((it for it, g in zip(items, sign) if g > 0), key=lambda it: -max(it["woe"], it["shap"]))[:N_REASONS]
        ag = sorted((it for it, g in zip(items, sign) if g < 0), key=lambda it: min(it["woe"], it["shap"]))[:N_REASONS]
        unusual = [
            {"column": col, "text": column_display_name(col, kb), "clue": _clue_text(kb, k, col)}
            for col, m in kb.classes[k].columns.items()
            if m.role == "unusual" and _plain_value(values[col]) is not None
            and (kb.columns[col].kind != "binary" or float(values[col]) == 1.0)
        ]
        return {"name": k, "label": kb.classes[k].label, "model": p_model, "oracle": p_oracle,
                "for": fav, "against": ag, "unusual": unusual}

    def _next(self, nb: pd.DataFrame, focus) -> list[dict[str, Any]]:
        from .wording import column_display_name

        out = []
        for r in nb.itertuples(index=False):
            values = []
            for lbl in r.outcomes:
                values.append(1 if lbl == "present" else 0 if lbl == "absent" else (lbl if r.kind == "categorical" else None))
            item = {
                "column": r.column, "text": column_display_name(r.column, self.kb), "kind": r.kind,
                "gain_bits": float(r.expected_information_gain_bits),
                "outcomes": [
                    {"label": lbl, "value": val, "probability": float(p), "posterior": {k: float(q[k]) for k in self.classes}}
                    for lbl, val, p, q in zip(r.outcomes, values, r.outcome_probabilities, r.posterior_after)
                ],
            }
            if focus is not None:
                item.update(focus_shift=float(r.expected_focus_shift), focus_now=float(r.focus_probability_now),
                            focus_min=float(r.focus_probability_min), focus_max=float(r.focus_probability_max))
            out.append(item)
        return out
