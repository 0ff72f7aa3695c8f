"""``pulmocalc sweep``: how far each conclusion moves when each assumption of the knowledge base moves.

The work is :mod:`ml.sweep` (perturbation rules, one pure task per perturbation, the Dask driver
with resume and retries, the summary); this module parses and prints. A missing Dask is one
error line with the install command; a sweep whose tasks partly failed writes what finished and
returns 1 (rerun to retry).
"""

from __future__ import annotations

import argparse
import sys

from ._args import add_cluster_arguments, int_at_least
from ._files import output_dir
from ._registry import command
from .progress import add_quiet_argument, header_line, show_progress

__all__ = ["add_arguments", "run", "QUICK_ASSUMPTIONS", "DEFAULT_SEED"]

#: ``--quick`` sweeps the first this many assumptions of the knowledge base (both directions).
QUICK_ASSUMPTIONS = 8
DEFAULT_SEED = 20211


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``pulmocalc sweep``."""
    p.add_argument("--assumptions", default="all", metavar="all|ID,...",
                   help="which assumptions to move (ids as listed in sweep.md; default all)")
    p.add_argument("--quick", action="store_true",
                   help=f"the first {QUICK_ASSUMPTIONS} assumptions (unless --assumptions names them) at tiny sizes: a smoke test")
    p.add_argument("--train-size", type=int_at_least(1), metavar="N", help="patients in each training cohort")
    add_cluster_arguments(p)
    p.add_argument("--knowledge", metavar="FILE", help="knowledge base to sweep (default: the shipped one)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of every task (default {DEFAULT_SEED})")
    add_quiet_argument(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (resumes a sweep found there)")


def run(args: argparse.Namespace) -> int:
    """Run ``pulmocalc sweep``; 0 when every task finished, 1 when some failed (rerun to retry)."""
    import tomllib
    from dataclasses import replace

    from data_gen import load_knowledge

    from ..sweep.cluster import open_client, require_distributed
    from ..sweep.perturb import enumerate_assumptions, knowledge_text, select_assumptions
    from ..sweep.run import plan, read_task_files, run_sweep
    from ..sweep.summarize import combine, tornado_pngs, write_summary
    from ..sweep.tasks import FULL_SIZES, QUICK_SIZES

    require_distributed()
    print(header_line("sweep", knowledge=load_knowledge(args.knowledge)), flush=True)
    text = knowledge_text(args.knowledge)
    every = enumerate_assumptions(tomllib.loads(text))
    which = args.assumptions
    if args.quick and (which is None or which.strip() == "all"):
        chosen = every[:QUICK_ASSUMPTIONS]
    else:
        chosen = select_assumptions(every, which)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.train_size is not None:
        sizes = replace(sizes, train=args.train_size)
    out = output_dir(args.out, what="the sweep's tables")
    with open_client(args.scheduler, args.workers) as client:
        n_workers = len(client.scheduler_info().get("workers", {}))
        where = f"the scheduler {args.scheduler}" if args.scheduler else "a local Dask cluster"
        where += f" ({n_workers} worker{'s' if n_workers != 1 else ''})"
        outcome = run_sweep(plan(chosen), out, client=client, seed=args.seed, sizes=sizes, base_text=text,
                            progress=show_progress(args))
    rows = read_task_files(out)
    if rows.empty:
        first = next(iter(outcome.failed.values()), "no task ran")
        raise ValueError(f"no task of the sweep finished ({len(outcome.failed)} failed; first: {first}); nothing to summarize")
    table = combine(rows, every)
    table.to_parquet(out / "sweep.parquet", index=False)
    table.to_csv(out / "sweep.csv", index=False, lineterminator="\n")
    if (table["assumption"] == "baseline").any():
        tornado_pngs(table, out)
        write_summary(table, rows, chosen, out, workers=where, failed=outcome.failed)
    print(f"sweep: {len(outcome.ran)} tasks run, {outcome.skipped} already done, {len(outcome.failed)} failed, "
          f"on {where}; results in {out}/ (sweep.csv, sweep.parquet, sweep.md, tornado_*.png)")
    if outcome.failed:
        print(f"pulmocalc: error: {len(outcome.failed)} tasks failed (first: {next(iter(outcome.failed.values()))}); "
              "rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


command("sweep", help="sensitivity sweep: move each assumption of the knowledge base down and up, on Dask",
        arguments=add_arguments)(run)
