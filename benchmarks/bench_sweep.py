"""Benchmark of ``pulmocalc sweep``: speed-up from 1 to 2 workers and the full sweep's wall time.

Runs the same subset of the sweep (the baseline and the first ``--assumptions`` assumptions,
both directions) at the full sweep's sizes (:data:`ml.sweep.tasks.FULL_SIZES`) twice, in fresh
output folders: on a local Dask cluster of 1 process worker, then of 2. Prints the wall times,
the speed-up (1-worker time / 2-worker time; the reference is the 1-worker run of the same
tasks in the same run), the median seconds per task in each run (longer tasks on 2 workers
mean the cores were not free), and from the 1-worker median the estimated wall time of the
full sweep (every assumption of the knowledge base, both directions, plus the baseline) on 1,
2, 16 and 64 workers: ``ceil(tasks / workers) x median task`` plus the measured start-up of a
cluster, which assumes workers as fast as these and a scheduler that keeps them busy. The
tables of the two runs are compared (they must be identical). The script only prints.

Usage::

    python benchmarks/bench_sweep.py [--assumptions 4] [--seed 20211]
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml.sweep.cluster import open_client  # noqa: E402
from ml.sweep.perturb import enumerate_assumptions, knowledge_text  # noqa: E402
from ml.sweep.run import plan, read_task_files, run_sweep  # noqa: E402
from ml.sweep.summarize import combine  # noqa: E402
from ml.sweep.tasks import FULL_SIZES  # noqa: E402


def _timed(workers: int, tasks, out: Path, seed: int, text: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    with open_client(workers=workers) as client:
        up = time.perf_counter() - t0
        run_sweep(tasks, out, client=client, seed=seed, sizes=FULL_SIZES, base_text=text, progress=False)
    return time.perf_counter() - t0, up


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assumptions", type=int, default=4)
    ap.add_argument("--seed", type=int, default=20211)
    args = ap.parse_args(argv)
    text = knowledge_text(None)
    every = enumerate_assumptions(tomllib.loads(text))
    tasks = plan(every[: args.assumptions])
    root = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    try:
        print(f"{len(tasks)} tasks (baseline + {args.assumptions} assumptions x 2) at sizes {FULL_SIZES}")
        t1, up1 = _timed(1, tasks, root / "w1", args.seed, text)
        t2, up2 = _timed(2, tasks, root / "w2", args.seed, text)
        rows1, rows2 = read_task_files(root / "w1"), read_task_files(root / "w2")
        same = combine(rows1, every).equals(combine(rows2, every))
        per_task = float(rows1["seconds"].median())  # one worker alone: the undisturbed task time
        # a task that takes longer with 2 workers than with 1 says the cores were not free
        print(f"1 worker : {t1:7.1f} s wall (cluster start {up1:.1f} s), median task {rows1['seconds'].median():.2f} s")
        print(f"2 workers: {t2:7.1f} s wall (cluster start {up2:.1f} s), median task {rows2['seconds'].median():.2f} s")
        print(f"speed-up 1 -> 2 workers: {t1 / t2:.2f}x (ideal 2.00x); tables identical: {same}")
        print(f"median seconds per task on 1 worker (the basis of the estimates): {per_task:.2f}")
        n_full = 1 + 2 * len(every)
        print(f"full sweep: {len(every)} assumptions -> {n_full} tasks; estimated wall time:")
        for w in (1, 2, 16, 64):
            est = math.ceil(n_full / w) * per_task + up2
            print(f"  {w:3d} workers: {est / 60:7.1f} min")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
