"""The design trade-off of the classifier: gap to the oracle vs trees vs SHAP speed.

For each booster configuration (overrides of ``ml.config.BOOSTER_PARAMS``), trains on the same
generated cohort (reported under the shipped recording mixture, ``ml.config.TRAINING``), then
prints the iterations and trees, training seconds, the accuracy and log-loss gaps to the exact
oracle on fresh test cohorts with complete records and under the case-report regime and MCAR
with 30% of values kept, and SHAP rows/s in one process on 2,000 patients (the all-core rate
is about twice that on 2 cores). The shipped point is the configuration in ``ml/config.py``.

Usage::

    python benchmarks/bench_tradeoff.py [--n 800000] [--test-n 50000] [--only 0,3]
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
from ml.config import BOOSTER_PARAMS, TRAINING  # noqa: E402
from ml.treeshap import shap_values, tree_explainer  # noqa: E402

LEVELS = ("complete", "case_report", 0.3)
CONFIGS = (
    {"learning_rate": 0.3},
    {"learning_rate": 0.5},
    {"max_leaf_nodes": 8, "max_depth": 3},
    {"max_leaf_nodes": 8, "max_depth": 3, "learning_rate": 0.5},
    {"max_leaf_nodes": 4, "max_depth": 2, "learning_rate": 0.5},
    {"max_leaf_nodes": 15},
    {"max_leaf_nodes": 31, "learning_rate": 0.1, "min_samples_leaf": 50, "l2_regularization": 0.0},
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=TRAINING["n"])
    ap.add_argument("--test-n", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", help="comma-separated indices of CONFIGS to run besides the shipped one")
    args = ap.parse_args(argv)
    tests = []
    for rec in LEVELS:
        test = generate_cohort(args.test_n, random_state=999, recording=rec)
        y = test["calcification_type"].cat.codes.to_numpy()
        po = oracle_proba(test, recording=rec).to_numpy()
        acc_o = (po.argmax(1) == y).mean()
        ll_o = -np.log(np.clip(po[np.arange(len(y)), y], 1e-15, 1)).mean()
        tests.append((rec, test, y, acc_o, ll_o))
        print(f"oracle on the {rec} test cohort (n={args.test_n:,}): accuracy {acc_o:.4f}, log loss {ll_o:.4f}")
    cohort = generate_cohort(args.n, random_state=args.seed, recording=TRAINING["recording"])
    print(f"training cohort n={args.n:,} under the shipped recording mixture; base configuration {dict(BOOSTER_PARAMS)}")
    gaps = "".join(f"{f'{rec} pp/nats':>22s}" for rec, *_ in tests)
    print(f"{'configuration':<48s}{'iters':>6s}{'trees':>6s}{'train s':>8s}{gaps}{'SHAP rows/s':>12s}")
    configs = CONFIGS
    if args.only:
        configs = tuple(CONFIGS[int(i)] for i in args.only.split(","))
    for cfg in ({},) + configs:  # the shipped configuration first
        t = time.perf_counter()
        model = train(cohort, random_state=0, **cfg)
        seconds = time.perf_counter() - t
        cells = ""
        for rec, test, y, acc_o, ll_o in tests:
            p = model.predict_proba(test).to_numpy()
            acc = (p.argmax(1) == y).mean()
            ll = -np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1)).mean()
            cells += f"{f'{100 * (acc_o - acc):.2f} / {ll - ll_o:.4f}':>22s}"
        X = model.encode(tests[1][1].iloc[:2000])
        tree_explainer(model)
        t = time.perf_counter()
        shap_values(model, X, n_jobs=1)
        rows = len(X) / (time.perf_counter() - t)
        label = ", ".join(f"{k}={v}" for k, v in cfg.items()) or "shipped (ml/config.py)"
        print(f"{label:<48s}{model.booster.n_iter_:>6d}{model.n_trees:>6d}{seconds:>8.0f}{cells}{rows:>12.0f}", flush=True)
    print("gaps: oracle - model accuracy (pp) / model - oracle log loss (nats); SHAP rows/s: one process, "
          "tree_path_dependent TreeSHAP on 2,000 case-report patients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
