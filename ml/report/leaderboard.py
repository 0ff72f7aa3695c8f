"""Section 3b: which explainer recovers the truth, on the report's own model.

Design. A small run of :func:`ml.benchmark_explainers` on the model this report measures (every
built-in explainer, both ground truths, the floors), so that the section always describes the
same model as the rest of the report. Its budgets are the leaderboard's (:mod:`ml.xai.sizes`:
``FULL`` in the full report, ``QUICK`` with ``--quick``); only the number of patients is the
report's (:class:`ml.report.Settings`, 50 in the full run), which keeps the section to a few
minutes. The 500-patient page with a logistic regression and a random forest beside the booster
is ``pulmocalc xai-bench`` (``reports/xai-bench/``). Rendering is :mod:`ml.report.xai`'s, from
the rows stored in ``report.json``.
"""

from __future__ import annotations

from ._common import Context, num

TITLE = "3b. Which explainer recovers the truth?"


def run(ctx: Context) -> dict:
    import time

    from data_gen import generate_cohort

    from ..xai.leaderboard import benchmark_explainers
    from ..xai.sizes import FULL, QUICK

    s = ctx.settings
    sizes = QUICK if ctx.quick else FULL
    n = s.leaderboard_patients
    budgets = sizes.budgets()
    t0 = time.perf_counter()
    cohort = generate_cohort(n + sizes.background + sizes.null_train, random_state=s.leaderboard_seed, knowledge=ctx.knowledge)
    frame = benchmark_explainers(ctx.model, cohort, n_patients=n, random_state=s.leaderboard_seed, background_size=sizes.background,
                                 train_size=sizes.null_train, n_permutations=sizes.n_permutations, budgets=budgets,
                                 progress=ctx.say)
    return {
        "patients": n,
        "seed": s.leaderboard_seed,
        "background": sizes.background,
        "null_train": sizes.null_train,
        "n_permutations": sizes.n_permutations,
        "budgets": budgets,
        "seconds": time.perf_counter() - t0,
        "rows": frame.to_dict(orient="records"),
    }


def markdown(d: dict) -> str:
    import pandas as pd

    from .xai import findings, model_tables, normalise

    out = [f"## {TITLE}", ""]
    if not d or not d.get("rows"):
        return "\n".join(out + ["Not run in this report.", ""])
    frame = normalise(pd.DataFrame(d["rows"]))
    model = str(frame["model"].iloc[0])
    budgets = d.get("budgets", {})
    out.append(
        f"Every built-in attribution method on this report's model, {d['patients']} patients (seed {d['seed']}), scored against "
        "two ground truths kept apart: **fidelity** to the model (its exact interventional Shapley values, background of "
        f"{budgets.get('exact_background', '—')}) and **recovery** of the data-generating truth (the oracle's exact-game Shapley "
        f"values, {d['n_permutations']} permutations, and its weight of evidence). Budgets: "
        + ", ".join(f"{k} {v}" for k, v in budgets.items())
        + f"; the permuted-label floor trains on {d['null_train']:,} patients. {num(d.get('seconds'), 0)} s. The 500-patient page "
        "with a logistic regression and a random forest beside the booster, and how to read every column, is "
        "`pulmocalc xai-bench --out DIR` (committed in `reports/xai-bench/`)."
    )
    out.append("")
    out += [f"- {s}" for s in findings(frame)] + [""]
    out += model_tables(frame, model)
    return "\n".join(out)
