"""The design trade-off of the classifier: gap to the oracle vs trees vs SHAP speed.

For each booster configuration (overrides of ``ml.config.BOOSTER_PARAMS``), trains on the same
generated cohort, then prints the iterations and trees, training seconds, the accuracy and
log-loss gaps to the oracle on a fresh test cohort, and SHAP rows/s in one process on 2,000
patients. The shipped point is the configuration in ``ml/config.py``.

Usage::

    python benchmarks/bench_tradeoff.py [--n 300000] [--test-n 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from data_gen import generate_cohort, oracle_proba  # noqa: E402
from ml import train  # noqa: E402
from ml.config import BOOSTER_PARAMS  # noqa: E402
from ml.explain import shap_values, tree_explainer  # noqa: E402

CONFIGS = (
    {"max_leaf_nodes": 8, "max_depth": 3},
    {"max_leaf_nodes": 8, "max_depth": 3, "learning_rate": 0.5},
    {"max_leaf_nodes": 4, "max_depth": 2, "learning_rate": 0.5},
    {"max_leaf_nodes": 15},
    {"max_leaf_nodes": 31, "learning_rate": 0.1, "min_samples_leaf": 50, "l2_regularization": 0.0},
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300_000)
    ap.add_argument("--test-n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", help="comma-separated indices of CONFIGS to run besides the shipped one")
    args = ap.parse_args(argv)
    test = generate_cohort(args.test_n, random_state=999)
    y = test["calcification_type"].cat.codes.to_numpy()
    po = oracle_proba(test).to_numpy()
    acc_o = (po.argmax(1) == y).mean()
    ll_o = -np.log(np.clip(po[np.arange(len(y)), y], 1e-15, 1)).mean()
    print(f"oracle on the test cohort (n={args.test_n:,}): accuracy {acc_o:.4f}, log loss {ll_o:.4f}")
    cohort = generate_cohort(args.n, random_state=args.seed)
    print(f"training cohort n={args.n:,}; base configuration {dict(BOOSTER_PARAMS)}")
    print(f"{'configuration':<72s}{'iters':>6s}{'trees':>6s}{'train s':>8s}{'acc gap pp':>11s}{'ll gap':>8s}{'SHAP rows/s':>12s}")
    X = None
    configs = CONFIGS
    if args.only:
        configs = tuple(CONFIGS[int(i)] for i in args.only.split(","))
    for cfg in ({},) + configs:  # the shipped configuration first
        t = time.perf_counter()
        model = train(cohort, random_state=0, **cfg)
        seconds = time.perf_counter() - t
        p = model.predict_proba(test).to_numpy()
        acc = (p.argmax(1) == y).mean()
        ll = -np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1)).mean()
        X = model.encode(test.iloc[:2000])
        tree_explainer(model)
        t = time.perf_counter()
        shap_values(model, X, n_jobs=1)
        rows = len(X) / (time.perf_counter() - t)
        label = ", ".join(f"{k}={v}" for k, v in cfg.items()) or "shipped (ml/config.py)"
        print(f"{label:<72s}{model.booster.n_iter_:>6d}{model.n_trees:>6d}{seconds:>8.0f}{100 * (acc_o - acc):>11.2f}{ll - ll_o:>8.4f}{rows:>12.0f}", flush=True)
    print("SHAP rows/s: one process, tree_path_dependent TreeSHAP on 2,000 patients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
