"""``pulmocalc serve``: a teaching page for the differential of diffuse pulmonary calcification.

Research and teaching on synthetic data only; never a clinical device.

A student enters findings (history, labs, imaging; every binary finding present, absent or not
recorded) and watches, side by side, the classifier's differential and the exact oracle's, the
reasons per diagnosis (the model's SHAP beside the oracle's weight of evidence, each marked with
its role in the review's Table 1), which finding to check next (expected information gain, or
rule-in / rule-out for one chosen diagnosis), the Table 2 implications of the leading diagnosis
and the source of every knowledge-base number shown. A case library holds the review's three
cases and the project's published case reports, with a quiz mode.

Design
------
* :class:`Engine` does all the computing, with no HTTP: :meth:`Engine.update` takes the findings
  as a mapping column -> value and returns one JSON-ready dict. Each update is one patient:
  ``model.predict_proba``, ``ml.explain`` (SHAP), :func:`data_gen.oracle_proba`,
  :func:`data_gen.weight_of_evidence` and :func:`data_gen.next_best_findings`.
* The oracle reads blanks under :data:`ORACLE_RECORDING` (blanks as in published case reports),
  the regime a hand-entered sparse patient resembles.
* Named prevalence settings are *derived* from the knowledge base, never new numbers: the
  knowledge base's own class mix among its patients with one marker (on dialysis, a kidney
  transplant, a family history of PAM), computed by the oracle (:func:`named_settings`).
* :func:`create_app` wraps the engine in a Starlette app: the page (``ml/serve_assets``, no
  CDN, every asset in the package), ``GET /api/schema`` and ``POST /api/update``. The page builds
  its DOM with ``textContent`` only, so everything it shows is escaped; the server sends a strict
  Content-Security-Policy (no inline script), refuses bodies over :data:`MAX_BODY_BYTES` (413)
  and query strings over :data:`MAX_QUERY_BYTES` (414), binds to 127.0.0.1 by default, and
  writes nothing to disk.
* The page state (findings, setting, focus, case, quiz) lives in the URL's query string, so a
  teacher can share a case as a link.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Engine",
    "create_app",
    "named_settings",
    "case_library",
    "ORACLE_RECORDING",
    "MAX_BODY_BYTES",
    "MAX_QUERY_BYTES",
    "RequestError",
]

#: How the oracle reads blanks on the page: as in published case reports.
ORACLE_RECORDING = "case_report"
#: Largest request body accepted (bytes); a full patient is about 2 kB of JSON.
MAX_BODY_BYTES = 16 * 1024
#: Largest query string accepted (bytes).
MAX_QUERY_BYTES = 8 * 1024
#: Findings listed under "what to check next".
NEXT_TOP = 5
#: Reasons listed for and against each diagnosis.
N_REASONS = 8
#: Diagnoses given reasons (the model's most probable first).
N_CLASSES = 3

_ASSETS = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
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
    from .reasons import column_display_name

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
    from .reasons import DISCLAIMER

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

        from .explain import shap_values

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
        from .reasons import MIN_EFFECT, _clue_text, column_display_name, describe_value

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
        from .reasons import column_display_name

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


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------
def _asset(name: str) -> bytes:
    return resources.files("ml").joinpath("serve_assets", name).read_bytes()


class _Limits:
    """ASGI middleware: refuse over-long query strings (414) and bodies (413), add the security
    headers to every response."""

    def __init__(self, app, max_body: int = MAX_BODY_BYTES, max_query: int = MAX_QUERY_BYTES):
        self.app, self.max_body, self.max_query = app, max_body, max_query

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in _SECURITY_HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        if len(scope.get("query_string", b"")) > self.max_query:
            return await _plain(send_headers, 414, f"query string longer than {self.max_query} bytes")
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _plain(send_headers, 413, f"request body larger than {self.max_body} bytes")
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send_headers)
        except _TooLarge:
            await _plain(send_headers, 413, f"request body larger than {self.max_body} bytes")


class _TooLarge(Exception):
    pass


async def _plain(send, status: int, text: str):
    body = json.dumps({"error": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(model=None, *, model_path=None, knowledge=None, engine: Engine | None = None):
    """The Starlette app of the page. ``model`` (or ``model_path``, default the shipped model)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    if engine is None:
        if model is None:
            from .artifacts import load_model

            model = load_model(model_path, knowledge=knowledge)
        engine = Engine(model)
    assets = {name: _asset(name) for name in _ASSETS}
    schema_body = json.dumps(engine.schema, ensure_ascii=False).encode()

    def page(request: Request):
        return Response(assets["index.html"], media_type=_ASSETS["index.html"])

    def static(request: Request):
        name = request.path_params["name"]
        if name not in _ASSETS or name == "index.html":
            return JSONResponse({"error": "no such asset"}, status_code=404)
        return Response(assets[name], media_type=_ASSETS[name])

    def schema(request: Request):
        return Response(schema_body, media_type="application/json")

    async def update(request: Request):
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return JSONResponse({"error": "send the findings as JSON (content-type: application/json)", "field": None}, status_code=415)
        raw = await request.body()
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly nested JSON
            return JSONResponse({"error": "the request body is not valid JSON", "field": None}, status_code=400)
        if not isinstance(doc, dict):
            return JSONResponse({"error": "expected a JSON object with 'findings', 'setting' and 'focus'", "field": None}, status_code=400)
        unknown = sorted(set(doc) - {"findings", "setting", "focus"})
        if unknown:
            return JSONResponse({"error": f"unknown key(s) {[u[:30] for u in unknown][:5]}; expected 'findings', 'setting', 'focus'", "field": None}, status_code=400)
        for key in ("setting", "focus"):
            if doc.get(key) is not None and not isinstance(doc.get(key), str):
                return JSONResponse({"error": f"{key} must be a string or null", "field": key}, status_code=400)
        try:
            out = engine.update(doc.get("findings") or {}, setting=doc.get("setting"), focus=doc.get("focus"))
        except RequestError as exc:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
        return JSONResponse(out)

    routes = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/api/schema", schema),
        Route("/api/update", update, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.engine = engine
    wrapped = _Limits(app)
    wrapped.engine = engine
    return wrapped


def warm_up(engine: Engine) -> None:
    """Run one update so that the first student's request does not pay for imports and caches.

    Then move everything alive (the model, its explainer, the knowledge base, the imported
    libraries) out of the garbage collector's sight (``gc.freeze``): a full collection would
    otherwise walk those millions of objects in the middle of a student's update.
    """
    import gc

    engine.update({})
    gc.collect()
    gc.freeze()


def run(model, *, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Serve the page with uvicorn until interrupted; prints the address once it is listening.

    The engine is built before the server starts (a few hundred ms); one warm-up update then
    runs in a background thread, started once the server is listening (building the SHAP
    explainer of the shipped model's 1,000 trees takes over a second and holds the GIL, so it
    would otherwise delay the page), so that the first student's request does not pay for the
    imports (shap) and caches.
    """
    import sys

    import uvicorn
    from threadpoolctl import threadpool_limits

    # one patient per update: the booster's and BLAS's thread pools only cost time here, and
    # they would compete with the server on a small machine
    threadpool_limits(limits=1)
    app = create_app(model)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)

    original_startup = server.startup

    async def startup(sockets=None):
        await original_startup(sockets=sockets)
        for s in server.servers:
            for sock in s.sockets:
                h, p = sock.getsockname()[:2]
                print(f"pulmocalc: serving the teaching page on http://{h}:{p}/ (Ctrl-C to stop)", file=sys.stderr, flush=True)
        threading.Thread(target=warm_up, args=(app.engine,), daemon=True).start()

    server.startup = startup
    server.run()
    return 0


def check_address(host: str, port: int) -> None:
    """Refuse, before anything starts, an address the server could not listen on.

    Raises ValueError naming ``--host``/``--port`` and the system's reason (a port in use, a
    host that does not resolve or is not this machine's); port 0 means any free port.
    """
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"--host {host!r}: not an address of this machine ({getattr(exc, 'strerror', None) or exc})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(addr)
        except OSError as exc:
            raise ValueError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None


def serve_in_thread(app, *, host: str = "127.0.0.1", timeout: float = 30.0):
    """Serve ``app`` with uvicorn on a free port of ``host`` in a daemon thread (tests, screenshots).

    Returns ``(url, stop)``: the page's address and a function that stops the server and waits
    for its thread. Raises RuntimeError when the server is not listening within ``timeout`` s.
    """
    import socket
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + timeout
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError(f"the page's server did not start within {timeout:g} s")
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://{host}:{port}/", stop
