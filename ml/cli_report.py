"""``pulmocalc benchmark``: the benchmark report (part of the command line; it prints).

Registered by :mod:`ml.cli`; the work is :func:`ml.report.build_report`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _progress_printer():
    t0 = time.perf_counter()

    def progress(message: str) -> None:
        elapsed = time.perf_counter() - t0
        print(f"[{time.strftime('%H:%M:%S')} +{elapsed:5.0f}s] {message}", file=sys.stderr, flush=True)

    return progress


def _benchmark_arguments(p: argparse.ArgumentParser) -> None:
    from .cli import _add_knowledge_argument

    p.add_argument("--quick", action="store_true",
                   help="small cohorts and sizes (about a minute); without --model a small model is trained in the run")
    p.add_argument("--model", metavar="PATH", help="model file to benchmark (default: the shipped model)")
    _add_knowledge_argument(p)
    p.add_argument("--out", required=True, metavar="DIR", help="directory for report.md, report.json and figures/")


def run_benchmark(args: argparse.Namespace) -> int:
    from .report import build_report

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {args.out!r} is a file; give a directory")
    if args.model is not None and not Path(args.model).exists():
        raise ValueError(f"--model {args.model!r}: no such file")
    report = build_report(out, quick=args.quick, model=args.model, knowledge=args.knowledge, progress=_progress_printer())
    h = report["headline"]
    print(f"pulmocalc benchmark ({report['meta']['mode']}) — research and teaching on synthetic data, not a clinical device")
    print(f"wrote {out / 'report.md'}, {out / 'report.json'} and {len(report['figures'])} figures in {out / 'figures'}")
    print(
        f"model {str(h['model_sha256'])[:12]}: accuracy {h['model_accuracy']:.4f} (oracle {h['oracle_accuracy']:.4f}, "
        f"gap {h['accuracy_gap_pp']:.2f} pp), log-loss gap {h['log_loss_gap']:.4f} nats; audit pass rate "
        f"{100 * h['audit_pass_rate']:.1f}%; SHAP vs oracle median Spearman {h['shap_oracle_spearman_median']:.3f}; "
        f"{h['total_seconds']:.0f} s"
    )
    return 0


def register(command) -> None:
    """Register ``benchmark`` with the CLI's ``command`` decorator."""
    command("benchmark", help="write the benchmark report (report.md, report.json, figures/)",
            arguments=_benchmark_arguments)(run_benchmark)
