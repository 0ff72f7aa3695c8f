"""SHAP speed of the shipped model: rows per second for explaining 10,000 patients.

Prints, for ``ml.explain(model, patients, n_jobs=J)`` on ``--n`` generated patients (default
10,000): seconds and rows/s with one process and with every core (joblib over chunks), the
speed-up between them (measured in the same run), and the model's size (trees, leaves).
Target (issue 5): >= 2000 rows/s on 2 cores.

Usage::

    python benchmarks/bench_explain.py [--model PATH] [--n 10000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from data_gen import generate_cohort  # noqa: E402
from ml import explain, load_model  # noqa: E402
from ml.treeshap import tree_explainer  # noqa: E402

TARGET = 2000.0


def _best(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    model = load_model(args.model)
    cores = os.cpu_count() or 1
    leaves = sum(int(p.nodes["is_leaf"].sum()) for it in model.booster._predictors for p in it)
    print(f"model: {model.n_trees} trees, {leaves} leaves ({leaves / model.n_trees:.1f} per tree), max_leaf_nodes={model.booster.max_leaf_nodes}")
    patients = generate_cohort(args.n, random_state=args.seed)
    t = time.perf_counter()
    tree_explainer(model)
    print(f"TreeExplainer set-up (once per model): {time.perf_counter() - t:.2f} s")
    # warm-up: the first parallel call starts the worker processes (imports), which a
    # long-running user pays once, not per call
    explain(model, patients.iloc[:200], n_jobs=1)
    explain(model, patients.iloc[: 4 * 2000], n_jobs=cores)
    one = _best(lambda: explain(model, patients, n_jobs=1), args.repeat)
    many = _best(lambda: explain(model, patients, n_jobs=cores), args.repeat)
    print(f"{'processes':>10s}{'seconds':>10s}{'rows/s':>10s}")
    print(f"{1:>10d}{one:>10.2f}{args.n / one:>10.0f}")
    print(f"{cores:>10d}{many:>10.2f}{args.n / many:>10.0f}")
    print(f"speed-up with {cores} processes: {one / many:.2f}x; target >= {TARGET:.0f} rows/s on 2 cores: "
          f"{'met' if args.n / many >= TARGET else 'NOT met'} ({args.n / many:.0f} rows/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
