"""``pulmocalc serve``: the teaching page on a local web server."""

from __future__ import annotations

import argparse
import sys

from ._args import add_knowledge_argument, add_model_argument, int_at_least
from ._registry import PROG, command
from .progress import header_line


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int_at_least(0), default=8000, help="port (default 8000; 0 picks a free one)")
    add_model_argument(p)
    add_knowledge_argument(p)


@command("serve", help="the teaching page: enter findings, watch the differential, learn what to check next",
         arguments=_serve_arguments)
def _run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401
        import starlette  # noqa: F401
    except ImportError:
        raise ValueError("pulmocalc serve needs the serve extra: pip install 'pulmocalc[serve]'") from None
    if args.port > 65535:
        raise ValueError(f"--port must be at most 65535, got {args.port}")
    from ..loading import load_model
    from ..serve import check_address, run

    check_address(args.host, args.port)
    model = load_model(args.model, knowledge=args.knowledge)
    print(header_line("serve", knowledge=model.knowledge, model=model), file=sys.stderr, flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"{PROG}: warning: serving on {args.host}, reachable from other machines; the page has no login", file=sys.stderr)
    return run(model, host=args.host, port=args.port)


# the model's subcommands live in their own module; registering them here (not by import side
# effect there) keeps one COMMANDS registry even when this module runs as ``python -m ml.cli``
