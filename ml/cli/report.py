"""``pulmocalc benchmark``: the benchmark report (part of the command line; it prints).

Registered by :mod:`ml.cli`; the work is :func:`ml.report.build_report`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._files import output_dir
from ._registry import PROG, command
from .progress import ProgressCallback, add_quiet_argument, header_line, show_progress


def _benchmark_arguments(p: argparse.ArgumentParser) -> None:
    from ._args import add_knowledge_argument

    p.add_argument("--quick", action="store_true",
                   help="small cohorts and sizes (under a minute); without --model a small model is trained in the run")
    p.add_argument("--model", metavar="PATH", help="model file to benchmark (default: the shipped model)")
    add_knowledge_argument(p)
    p.add_argument("--out", required=True, metavar="DIR", help="directory for report.md, report.json and figures/")
    add_quiet_argument(p)


def run_benchmark(args: argparse.Namespace) -> int:
    from ..report import build_report

    out = output_dir(args.out, what="the report")
    if args.model is not None and not Path(args.model).exists():
        raise ValueError(f"--model {args.model!r}: no such file")
    from data_gen import load_knowledge

    from ..artifacts import DEFAULT_MODEL_PATH, _sha256
    from ..shipped import SHIPPED_SHA256

    if args.model is not None:
        model_path, model_sha = args.model, _sha256(Path(args.model))
    elif args.quick:
        model_path, model_sha = "trained in this run (--quick)", None
    else:
        model_path, model_sha = DEFAULT_MODEL_PATH, SHIPPED_SHA256
    print(header_line("benchmark", knowledge=load_knowledge(args.knowledge), model_path=model_path, model_sha256=model_sha),
          flush=True)
    enabled = show_progress(args)
    with ProgressCallback("benchmark", unit="section", enabled=enabled) as bar:
        report = build_report(out, quick=args.quick, model=args.model, knowledge=args.knowledge,
                              progress=bar.note, on_step=bar)
    h = report["headline"]
    print(f"{PROG} benchmark ({report['meta']['mode']}): model sha256 {str(h['model_sha256'])[:12]}")
    print(f"wrote {out / 'report.md'}, {out / 'report.json'} and {len(report['figures'])} figures in {out / 'figures'}")
    print(
        f"model {str(h['model_sha256'])[:12]}: accuracy {h['model_accuracy']:.4f} (oracle {h['oracle_accuracy']:.4f}, "
        f"gap {h['accuracy_gap_pp']:.2f} pp), log-loss gap {h['log_loss_gap']:.4f} nats; audit pass rate "
        f"{100 * h['audit_pass_rate']:.1f}%; SHAP vs oracle median Spearman {h['shap_oracle_spearman_median']:.3f}; "
        f"{h['total_seconds']:.0f} s"
    )
    return 0


def _compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="REPORT_A", help="a benchmark report directory (or its report.json), e.g. reports/latest")
    p.add_argument("b", metavar="REPORT_B", help="the report to compare with it, e.g. out/my-report")


def run_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..report.compare import compare_reports

    table = compare_reports(args.a, args.b)
    # hashes and commits shortened to 12 hex digits, as every other output shows them
    table[["a", "b"]] = table[["a", "b"]].map(lambda v: v[:12] if isinstance(v, str) and len(v) >= 40 else v)
    print(f"{PROG} compare · A = {args.a} · B = {args.b} · difference = B - A; ci_overlap: do the 95% CIs overlap "
          "(if they do, the difference is within sampling error)")
    with pd.option_context("display.width", 160, "display.max_colwidth", 24, "display.max_rows", 200):
        print(table.to_string(float_format=lambda v: f"{v:.6g}"))
    return 0


# registered on import, in the order --help lists them
command("benchmark", help="write the benchmark report (report.md, report.json, figures/)",
        arguments=_benchmark_arguments)(run_benchmark)
command("compare", help="compare two benchmark reports: provenance and every headline number, with CI overlap",
        arguments=_compare_arguments)(run_compare)
