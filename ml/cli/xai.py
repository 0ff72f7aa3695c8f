"""``pulmocalc xai-bench``: the explainer leaderboard on the shipped model and two other models.

One fresh cohort (seeded) gives the patients explained, the background and the permuted-label
floor's training sample; a second, disjoint cohort trains the logistic regression and the random
forest. The full run (the committed ``reports/xai-bench/``) explains 500 patients with
64-permutation oracle Shapley values; ``--quick`` explains 24 with small budgets and models, as a
smoke test of the whole path. Sizes and budgets: :mod:`ml.xai.sizes`. Needs the ``xai`` extra
(LIME, shapiq). Synthetic data; not a clinical device.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ._files import output_dir
from ._registry import command
from .progress import DISCLAIMER_SHORT, ProgressCallback, add_quiet_argument, header_line, show_progress

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``pulmocalc xai-bench``."""
    parser.add_argument("--quick", action="store_true", help="24 patients, small models and budgets (a smoke test)")
    parser.add_argument("--model", metavar="PATH", help="model file to benchmark (default: the shipped model)")
    parser.add_argument("--patients", type=int, metavar="N", help="patients to explain (default 500; --quick 24)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the cohorts and every sampling explainer")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for leaderboard.md, leaderboard.csv and the figure")
    add_quiet_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Write the leaderboard (Markdown, CSV) and its figure into ``args.out``; returns 0."""
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from data_gen import generate_cohort

    from ..loading import load_model
    from ..report.xai import write_leaderboard
    from ..xai.leaderboard import benchmark_explainers
    from ..xai.models import logistic_regression, random_forest
    from ..xai.sizes import FULL, QUICK

    sizes = QUICK if args.quick else FULL
    n = sizes.patients if args.patients is None else int(args.patients)
    if n < 2:
        raise ValueError(f"--patients {args.patients}: explain at least 2 patients")
    if args.seed is None or args.seed < 0:
        raise ValueError(f"--seed {args.seed}: give a non-negative integer")
    out = output_dir(args.out, what="the leaderboard")
    if args.model is not None and not Path(args.model).exists():
        raise ValueError(f"--model {args.model!r}: no such file")
    t0 = time.perf_counter()
    shipped = load_model(args.model) if args.model else load_model()
    kb = shipped.knowledge
    header = header_line("xai-bench", knowledge=kb, model=shipped)
    print(header, flush=True)
    bar = ProgressCallback("xai-bench", unit="model", enabled=show_progress(args))

    bar(0, 3, "training the logistic regression and the random forest")
    cohort = generate_cohort(n + sizes.background + sizes.null_train, random_state=args.seed + 1, knowledge=kb)
    train = generate_cohort(sizes.other_models_n, random_state=args.seed + 2, knowledge=kb)
    with threadpool_limits(limits=1):
        others = [
            logistic_regression(knowledge=kb).fit(train),
            random_forest(knowledge=kb, random_state=args.seed, n_estimators=sizes.forest_trees).fit(train),
        ]
    budgets = sizes.budgets()
    frames = []
    with bar:
        for i, m in enumerate([shipped] + others):
            bar(i, 3, type(m).__name__)
            frames.append(benchmark_explainers(m, cohort, n_patients=n, random_state=args.seed, background_size=sizes.background,
                                               train_size=sizes.null_train, n_permutations=sizes.n_permutations, budgets=budgets,
                                               progress=bar.note))
        bar(3, 3)
    frame = pd.concat(frames, ignore_index=True)
    meta = {
        "run": header.replace(f" · {DISCLAIMER_SHORT}", "").replace("pulmocalc xai-bench · ", "", 1),
        "mode": "quick" if args.quick else "full",
        "models": f"the {'given' if args.model else 'shipped'} booster ({shipped.n_trees} trees); logistic regression and "
                  f"random forest ({sizes.forest_trees} trees, depth ≤ 10) trained on {sizes.other_models_n:,} fresh patients (seed {args.seed + 2})",
        "patients": f"{n} explained, a background of {sizes.background} and {sizes.null_train:,} for the permuted-label floor, "
                    f"all from one cohort (seed {args.seed + 1}, complete recording)",
        "budgets": ", ".join(f"{k} {v}" for k, v in budgets.items()) + f"; oracle_shapley {sizes.n_permutations} permutations",
        "seconds": f"{time.perf_counter() - t0:.0f} (whole run, niced, one thread while explaining)",
        "libraries": _versions("shap", "lime", "scikit-learn", "numpy"),
        "command": "pulmocalc xai-bench" + (" --quick" if args.quick else "") + f" --seed {args.seed}"
                   + (f" --patients {args.patients}" if args.patients else "") + (f" --model {args.model}" if args.model else ""),
    }
    paths = write_leaderboard(frame, out, meta=meta)
    print(f"wrote {paths['markdown']}, {paths['csv']} and {paths['figure']} ({len(frame)} rows, {time.perf_counter() - t0:.0f} s)")
    return 0


command("xai-bench", help="score attribution methods against the exact ground truth (explainer leaderboard)",
        arguments=add_arguments)(run)


def _versions(*names: str) -> str:
    """Installed versions of the libraries whose explainers and metrics the page reports."""
    from ..artifacts import _installed

    return ", ".join(f"{n} {_installed(n)}" for n in names)
