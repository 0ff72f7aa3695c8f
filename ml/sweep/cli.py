"""Command-line entry points of ``pulmocalc sweep`` and ``pulmocalc generate --partitions``.

Design. Each command is a pair, ``add_*arguments(parser)`` and ``run*(args) -> int``, wired into
the ``pulmocalc`` parser by :mod:`ml.cli`. As everywhere in the CLI, bad input raises
``ValueError`` (or ``OSError``) with one line naming what is wrong, and ``ml.cli.main`` prints it
as ``pulmocalc: error: ...`` with exit status 2; a missing Dask is such a line with the install
command. A sweep whose tasks partly failed writes what finished and returns 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run", "add_partition_arguments", "run_partitioned_generate", "QUICK_ASSUMPTIONS", "DEFAULT_SEED"]

#: ``--quick`` sweeps the first this many assumptions of the knowledge base (both directions).
QUICK_ASSUMPTIONS = 8
DEFAULT_SEED = 20211


def _positive(text: str) -> int:
    try:
        v = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return v


def _cluster_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (tcp://HOST:8786), used unchanged")
    g.add_argument("--workers", type=_positive, metavar="N",
                   help="process workers of a local Dask cluster, one thread each (default: the machine's cores)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``pulmocalc sweep``."""
    p.add_argument("--assumptions", default="all", metavar="all|ID,...",
                   help="which assumptions to move (ids as listed in sweep.md; default all)")
    p.add_argument("--quick", action="store_true",
                   help=f"the first {QUICK_ASSUMPTIONS} assumptions (unless --assumptions names them) at tiny sizes: a smoke test")
    p.add_argument("--train-size", type=_positive, metavar="N", help="patients in each training cohort")
    _cluster_arguments(p)
    p.add_argument("--knowledge", metavar="FILE", help="knowledge base to sweep (default: the shipped one)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of every task (default {DEFAULT_SEED})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (resumes a sweep found there)")


def run(args: argparse.Namespace) -> int:
    """Run ``pulmocalc sweep``; 0 when every task finished, 1 when some failed (rerun to retry)."""
    import tomllib
    from dataclasses import replace

    from .cluster import open_client, require_distributed
    from .perturb import enumerate_assumptions, knowledge_text, select_assumptions
    from .run import plan, read_task_files, run_sweep
    from .summarize import combine, tornado_pngs, write_summary
    from .tasks import FULL_SIZES, QUICK_SIZES

    require_distributed()
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
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file; give a directory")
    with open_client(args.scheduler, args.workers) as client:
        n_workers = len(client.scheduler_info().get("workers", {}))
        where = f"the scheduler {args.scheduler}" if args.scheduler else "a local Dask cluster"
        where += f" ({n_workers} worker{'s' if n_workers != 1 else ''})"
        outcome = run_sweep(plan(chosen), out, client=client, seed=args.seed, sizes=sizes, base_text=text,
                            progress=False if args.quiet else None)
    rows = read_task_files(out)
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


def add_partition_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``pulmocalc generate --partitions``."""
    p.add_argument("--n", type=_positive, required=True, help="patients in the cohort")
    p.add_argument("--out", required=True, metavar="DIR/", help="directory of the Parquet dataset (part-*.parquet)")
    p.add_argument("--partitions", type=_positive, required=True, metavar="K", help="partitions (files), one Dask task each")
    _cluster_arguments(p)
    p.add_argument("--seed", type=int, help="seed (default: drawn and printed)")
    p.add_argument("--knowledge", metavar="FILE", help="knowledge base (default: the shipped one; must be readable by every worker)")


def run_partitioned_generate(args: argparse.Namespace) -> int:
    """Run ``pulmocalc generate --partitions``: the cohort as a partitioned Parquet dataset."""
    import time

    import numpy as np

    from data_gen import load_knowledge
    from data_gen.partitioned import generate_partitioned, partition_bounds

    from .cluster import open_client, require_distributed

    require_distributed()
    partition_bounds(args.n, args.partitions)  # checks before starting a cluster
    if args.knowledge is not None:
        load_knowledge(args.knowledge)
    if args.seed is not None and args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {args.seed}")
    seed = int(np.random.SeedSequence().entropy) if args.seed is None else args.seed
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file; give a directory")
    t0 = time.perf_counter()
    with open_client(args.scheduler, args.workers) as client:
        results = generate_partitioned(args.n, out, args.partitions, random_state=seed, client=client,
                                       knowledge=None if args.knowledge is None else str(Path(args.knowledge).resolve()))
    secs = time.perf_counter() - t0
    peak = max(r["max_rss_bytes"] for r in results) / 2**20
    print(f"generate: {args.n:,} patients in {len(results)} partitions of {out}/ (seed {seed}) in {secs:.1f} s; "
          f"largest worker peak RSS {peak:.0f} MiB")
    return 0
