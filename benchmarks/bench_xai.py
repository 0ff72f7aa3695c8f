"""Seconds per patient of the explainer benchmark's built-in explainers, against TreeSHAP.

Prints, for each built-in explainer of ``ml.xai`` that applies to the model (the shipped model
unless ``--model``), the seconds per patient to explain ``--n`` generated patients on one
thread after an untimed warm-up on two patients, and its ratio to path-dependent TreeSHAP
measured in the same run (the reference). The budgets are the leaderboard's
(``ml.xai.sizes.FULL``). Requires the ``xai`` extra for LIME.

Usage::

    python benchmarks/bench_xai.py [--model PATH] [--n 100] [--explainers treeshap_path,kernelshap,...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from threadpoolctl import threadpool_limits  # noqa: E402

from data_gen import generate_cohort  # noqa: E402
from ml import load_model  # noqa: E402
from ml.xai import builtin_explainers, view_of  # noqa: E402
from ml.xai.sizes import FULL  # noqa: E402

REFERENCE = "treeshap_path"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model file (default: the shipped model)")
    p.add_argument("--n", type=int, default=100, help="patients to explain (default 100)")
    p.add_argument("--explainers", help="comma-separated names (default: all that apply)")
    a = p.parse_args(argv)
    model = load_model(a.model) if a.model else load_model()
    view = view_of(model)
    X = generate_cohort(a.n, random_state=7)
    bg = generate_cohort(FULL.background, random_state=8)
    train = generate_cohort(FULL.null_train, random_state=9)
    explainers = builtin_explainers(
        bg, train, kernel_samples=FULL.kernel_samples, permutation_evals=FULL.permutation_evals,
        lime_samples=FULL.lime_samples, agnostic_background=FULL.agnostic_background, exact_background=FULL.exact_background,
    )
    wanted = a.explainers.split(",") if a.explainers else list(explainers)
    if REFERENCE not in wanted:
        wanted.insert(0, REFERENCE)
    unknown = sorted(set(wanted) - set(explainers))
    if unknown:
        p.error(f"unknown explainer(s) {unknown}; choose from {sorted(explainers)}")
    seconds = {}
    with threadpool_limits(limits=1):
        for name in wanted:
            ex = explainers[name]
            if not ex.supports(view):
                continue
            ex(model, X.iloc[:2])
            t = time.perf_counter()
            ex(model, X)
            seconds[name] = (time.perf_counter() - t) / a.n
    ref = seconds[REFERENCE]
    print(f"explainers on {view.name} ({a.n} patients, one thread; reference {REFERENCE} measured in this run)")
    print(f"{'explainer':<26}{'ms / patient':>14}{'x ' + REFERENCE:>22}  budget")
    for name, s in seconds.items():
        print(f"{name:<26}{s * 1e3:>14.2f}{s / ref:>22.2f}  {explainers[name].budget or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
