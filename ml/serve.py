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
import threading
from importlib import resources

from .serve_engine import Engine, ORACLE_RECORDING, RequestError, case_library, named_settings

__all__ = [
    "Engine",
    "create_app",
    "named_settings",
    "case_library",
    "ORACLE_RECORDING",
    "MAX_BODY_BYTES",
    "MAX_QUERY_BYTES",
    "RequestError",
    "check_address",
    "run",
    "serve_in_thread",
]

#: Largest request body accepted (bytes); a full patient is about 2 kB of JSON.
MAX_BODY_BYTES = 16 * 1024
#: Largest query string accepted (bytes).
MAX_QUERY_BYTES = 8 * 1024

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
            from .loading import load_model

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
