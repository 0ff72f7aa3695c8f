"""``pulmocalc generate --partitions K``: a cohort larger than one machine, as a partitioned Parquet dataset.

Each partition is one Dask task that draws its own row range of the cohort (the sampler's
row-range invariance), so the dataset equals ``generate_cohort(n)`` row for row for any K and any
number of workers, and a worker's memory is bounded by one partition. The work is
:func:`data_gen.partitioned.generate_partitioned`; this module parses and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._args import parse_class_spec
from ._files import output_dir
from .progress import ProgressCallback, header_line, show_progress

__all__ = ["run_partitioned_generate"]


def run_partitioned_generate(args: argparse.Namespace) -> int:
    """Run ``pulmocalc generate --partitions``: the cohort as a partitioned Parquet dataset."""
    import time

    import numpy as np

    from data_gen import load_knowledge
    from data_gen.partitioned import generate_partitioned, partition_bounds, read_manifest

    from ..sweep.cluster import open_client, require_distributed

    if args.n is None:
        raise ValueError("--partitions needs --n (the number of patients)")
    if args.counts is not None:
        raise ValueError("--counts writes one file; with --partitions give --n (and --prevalence for a class mix)")
    require_distributed()
    partition_bounds(args.n, args.partitions)  # checks before starting a cluster
    kb = load_knowledge(args.knowledge)
    print(header_line("generate", knowledge=kb), flush=True)
    options = {"latent": args.latent}
    if args.prevalence is not None:
        options["prevalence"] = parse_class_spec(args.prevalence, "--prevalence", kb.class_names, float)
    out = output_dir(args.out, what="the partitions")
    seed = args.seed
    if seed is None and args.resume:
        # the seed of the dataset being resumed; without a record generate_partitioned says so
        seed = (read_manifest(out) or {}).get("random_state")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    t0 = time.perf_counter()
    with open_client(args.scheduler, args.workers) as client:
        with ProgressCallback("generating", unit="partition", enabled=show_progress(args)) as report:
            done = []

            def on_done(result) -> None:
                done.append(result)
                report(len(done), args.partitions)

            results = generate_partitioned(args.n, out, args.partitions, random_state=seed, client=client, on_done=on_done,
                                           resume=args.resume,
                                           knowledge=None if args.knowledge is None else str(Path(args.knowledge).resolve()),
                                           **options)
    secs = time.perf_counter() - t0
    peak = max(r["max_rss_bytes"] for r in results) / 2**20
    kept = sum(1 for r in results if r.get("resumed"))
    print(f"generate: {args.n:,} patients in {len(results)} partitions of {out}/ (seed {seed}) in {secs:.1f} s"
          + (f", {kept} kept from the interrupted run" if kept else "") + f"; largest worker peak RSS {peak:.0f} MiB")
    return 0
