"""Benchmark of partitioned generation on Dask: throughput, peak memory per worker, equality.

Prints, for ``pulmocalc generate --n N --partitions K`` on a local Dask cluster of ``--workers``
process workers (``data_gen.partitioned.generate_partitioned`` with a client):

* wall seconds and patients per second;
* the reference, measured in the same run: the same dataset written by the same tasks one
  after another in this process (no Dask), and the ratio of the two throughputs;
* the peak resident memory of every worker process (``getrusage`` ``ru_maxrss``, read by each
  task in its worker), against the 1 GB limit of the issue and the size of one partition as a
  pandas frame;
* whether ``--check`` randomly placed row ranges of the dataset equal ``generate_cohort(N,
  rows=...)`` computed directly.

The datasets go under ``--tmp`` (default: the system's temporary folder) and are deleted at the
end. The issue's measurement is ``--n 20_000_000 --partitions 40 --workers 2``. The script only
prints.

Usage::

    python benchmarks/bench_partitioned.py [--n 20000000] [--partitions 40] [--workers 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from data_gen import generate_cohort  # noqa: E402
from data_gen.partitioned import generate_partitioned, partition_bounds, partition_path  # noqa: E402
from ml.sweep.cluster import open_client  # noqa: E402

LIMIT_BYTES = 1e9
MiB = 2**20


def _check_ranges(out: Path, n: int, partitions: int, seed: int, k: int, length: int = 2_000) -> int:
    """Rows of ``k`` random ranges read from the dataset, compared with direct generation."""
    rng = np.random.default_rng(seed)
    bounds = partition_bounds(n, partitions)
    ok = 0
    for _ in range(k):
        start = int(rng.integers(0, n - length))
        i = next(j for j, (a, b) in enumerate(bounds) if a <= start < b)
        a, b = bounds[i]
        stop = min(start + length, b)
        got = pd.read_parquet(partition_path(out, i)).iloc[start - a: stop - a].reset_index(drop=True)
        want = generate_cohort(n, random_state=seed, rows=(start, stop)).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        ok += 1
        print(f"  rows {start:,}-{stop:,} (partition {i}): equal")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=lambda s: int(s.replace("_", "")), default=20_000_000)
    ap.add_argument("--partitions", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", type=int, default=5, help="random row ranges compared with generate_cohort")
    ap.add_argument("--tmp", default=tempfile.gettempdir())
    args = ap.parse_args(argv)
    n, k = args.n, args.partitions
    root = Path(tempfile.mkdtemp(prefix="bench_partitioned_", dir=args.tmp))
    try:
        part_rows = max(b - a for a, b in partition_bounds(n, k))
        frame_bytes = generate_cohort(min(part_rows, 200_000), random_state=args.seed).memory_usage(deep=True).sum()
        frame_bytes *= part_rows / min(part_rows, 200_000)
        print(f"{n:,} patients in {k} partitions of up to {part_rows:,} rows (~{frame_bytes / MiB:.0f} MiB as a pandas frame)")

        with open_client(workers=args.workers) as client:
            base_rss = client.run(lambda: __import__("psutil").Process().memory_info().rss)
            t0 = time.perf_counter()
            res = generate_partitioned(n, root / "dask", k, random_state=args.seed, client=client)
            t_dask = time.perf_counter() - t0
        peaks = {}
        for r in res:
            peaks[r["pid"]] = max(peaks.get(r["pid"], 0), r["max_rss_bytes"])
        print(f"Dask, {args.workers} process workers: {t_dask:.1f} s, {n / t_dask:,.0f} patients/s")
        print("  worker RSS after start-up: " + ", ".join(f"{v / MiB:.0f} MiB" for v in base_rss.values()))
        for pid, peak in sorted(peaks.items()):
            tasks = sum(r["pid"] == pid for r in res)
            print(f"  worker pid {pid}: {tasks} partitions, peak RSS {peak / MiB:.0f} MiB "
                  f"({peak / LIMIT_BYTES:.2f} of the 1 GB limit; {peak / frame_bytes:.2f} x one partition's frame)")
        worst = max(peaks.values())
        print(f"  largest peak RSS per worker: {worst / MiB:.0f} MiB -> {'under' if worst < LIMIT_BYTES else 'OVER'} 1 GB")

        t0 = time.perf_counter()
        generate_partitioned(n, root / "inproc", k, random_state=args.seed, client=None)
        t_ref = time.perf_counter() - t0
        print(f"reference, the same tasks in this process (no Dask): {t_ref:.1f} s, {n / t_ref:,.0f} patients/s")
        print(f"throughput ratio Dask / in-process: {t_ref / t_dask:.2f}")
        same = all(
            partition_path(root / "dask", i).read_bytes() == partition_path(root / "inproc", i).read_bytes() for i in range(k)
        )
        print(f"Dask and in-process partitions byte-identical: {same}")
        print(f"{args.check} random row ranges of the Dask dataset vs generate_cohort(n, rows=...):")
        _check_ranges(root / "dask", n, k, args.seed, args.check)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
