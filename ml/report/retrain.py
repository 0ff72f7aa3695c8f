"""The report's training runs: the learning curve (section 2) and the label-noise models (section 4c).

They are the report's longest steps, and independent of each other, so the full run spreads them
over worker processes (one OpenMP thread each: a booster whose threads contend with other work
can run ten times slower, and a fixed thread count keeps the run independent of the machine's
scheduling). Results do not depend on the split: every task has its own seed.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ._common import Context

NOISE_TASK = "noise"
CURVE_TASK = "learning_curve"


def noisy_labels(labels: np.ndarray, classes, rate: float, rng) -> tuple[np.ndarray, int]:
    """Replace a share ``rate`` of labels by a uniformly random *other* class; (labels, flipped)."""
    k = len(classes)
    idx = {c: i for i, c in enumerate(classes)}
    y = np.array([idx[c] for c in np.asarray(labels)])
    flip = rng.random(len(y)) < rate
    shift = rng.integers(1, k, size=len(y))  # 1..k-1: never the true class
    y2 = np.where(flip, (y + shift) % k, y)
    return np.asarray(classes, dtype=object)[y2], int(flip.sum())


def noise_seed(base: int, rate: float) -> np.random.SeedSequence:
    """The label-noise stream of one noise level (independent per level)."""
    return np.random.SeedSequence(int(base), spawn_key=(int(round(rate * 10_000)),))


def _task(kind: str, spec: dict):
    """One training task, run in this process or in a worker (one OpenMP/BLAS thread)."""
    from threadpoolctl import threadpool_limits

    from data_gen import generate_cohort, load_knowledge
    from ml import learning_curve, train

    kb = load_knowledge(spec["knowledge_path"])
    with threadpool_limits(limits=1):
        if kind == CURVE_TASK:
            params = {"knowledge": kb}
            if spec["max_iter"] is not None:
                params["max_iter"] = spec["max_iter"]
            t0 = time.perf_counter()
            frame = learning_curve(spec["sizes"], test_n=spec["test_n"], seeds=(spec["seed"],), test_seed=spec["test_seed"],
                                   train_params=params)
            return {"kind": kind, "seed": spec["seed"], "frame": frame, "seconds": time.perf_counter() - t0}
        import pandas as pd

        cohort = generate_cohort(spec["n"], random_state=spec["train_seed"], recording=spec.get("recording"), knowledge=kb)
        classes = list(kb.class_names)
        flipped = 0
        if spec["rate"] > 0:
            rng = np.random.default_rng(noise_seed(spec["noise_seed"], spec["rate"]))
            new, flipped = noisy_labels(cohort["calcification_type"].astype(str).to_numpy(), classes, spec["rate"], rng)
            cohort["calcification_type"] = pd.Categorical(new, categories=cohort["calcification_type"].cat.categories)
        params = {} if spec["max_iter"] is None else {"max_iter": spec["max_iter"]}
        t0 = time.perf_counter()
        model = train(cohort, random_state=spec["train_seed"], knowledge=spec["knowledge_arg"], **params)
        return {"kind": kind, "rate": spec["rate"], "model": model, "seconds": time.perf_counter() - t0, "flipped": flipped,
                "n": spec["n"]}


def noise_plan(ctx: Context) -> dict:
    """Training size, seed and which noise levels need a model (0% reuses the evaluated model
    when it was trained on the same data with the shipped configuration)."""
    from ml.config import BOOSTER_PARAMS, recording_from_metadata

    s = ctx.settings
    meta = ctx.model_info.get("training", {})
    n = s.noise_n if s.noise_n is not None else int(meta.get("train_n") or 300_000)
    seed = meta.get("train_seed")
    train_seed = int(seed) if seed is not None else 20211
    config = meta.get("config") or {}
    same = (
        s.noise_n is None and s.noise_max_iter is None and int(meta.get("train_n") or -1) == n
        and all(config.get(k) == v for k, v in BOOSTER_PARAMS.items())
    )
    levels = [0.0] + [float(r) for r in s.noise_levels]
    return {"n": n, "train_seed": train_seed, "reuse_model_for_zero": same, "recording": recording_from_metadata(meta),
            "train_levels": [r for r in levels if not (r == 0.0 and same)], "levels": levels}


def run(ctx: Context) -> None:
    """Train everything; results go to ``ctx.shared["learning_curve"]`` and ``["noise_models"]``."""
    import os

    s = ctx.settings
    kb = ctx.knowledge
    plan = noise_plan(ctx)
    ctx.shared["noise_plan"] = plan
    kb_path = str(kb.path)
    # one learning-curve task per seed (each seed's rows do not depend on the others'), so
    # that the workers share the curve's training as evenly as the noise models'
    tasks = [
        (CURVE_TASK, {"knowledge_path": kb_path, "sizes": list(s.learning_sizes), "test_n": s.learning_test_n,
                      "seed": seed, "test_seed": s.learning_test_seed, "max_iter": s.learning_max_iter})
        for seed in s.learning_seeds
    ]
    tasks += [
        (NOISE_TASK, {"knowledge_path": kb_path, "knowledge_arg": ctx.model_info.get("knowledge_arg"), "n": plan["n"],
                      "train_seed": plan["train_seed"], "rate": r, "noise_seed": s.noise_seed, "max_iter": s.noise_max_iter,
                      "recording": plan["recording"]})
        for r in plan["train_levels"]
    ]
    workers = min(os.cpu_count() or 1, len(tasks)) if not ctx.quick else 1
    sizes = ", ".join(f"{n:,}" for n in s.learning_sizes)
    noise = ", ".join(f"{r:.0%}" for r in plan["train_levels"])
    ctx.say(
        f"training: learning curve (sizes {sizes}; seeds {', '.join(map(str, s.learning_seeds))}; test cohort {s.learning_test_n:,}) and label-noise models ({noise} noise, "
        f"{plan['n']:,} patients each) in {workers} process(es), one thread each"
    )
    t0 = time.perf_counter()
    if workers > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=workers, backend="loky")(delayed(_task)(kind, spec) for kind, spec in tasks)
    else:
        results = []
        for kind, spec in tasks:
            results.append(_task(kind, spec))
            r = results[-1]
            if kind == NOISE_TASK:
                ctx.say(f"training: {r['rate']:.0%} label noise: {r['model'].booster.n_iter_} iterations in {r['seconds']:.1f} s")
            else:
                ctx.say(f"training: learning curve, seed {r['seed']}, done in {r['seconds']:.1f} s")
    ctx.shared["training_wall_seconds"] = time.perf_counter() - t0
    noise_models = {}
    curves = [r["frame"] for r in results if r["kind"] == CURVE_TASK]
    curve = pd.concat(curves, ignore_index=True).sort_values(["n_train", "seed"], kind="stable").reset_index(drop=True)
    ctx.shared["learning_curve"] = curve
    for row in curve.itertuples(index=False):
        ctx.say(f"learning curve n={row.n_train:,}, seed {row.seed}: {row.n_iter} iterations in {row.seconds:.1f} s; "
                f"accuracy gap {row.accuracy_gap_pp:.2f} pp, log-loss gap {row.log_loss_gap:.4f}")
    for r in results:
        if r["kind"] != CURVE_TASK:
            noise_models[r["rate"]] = r
            if workers > 1:
                ctx.say(f"training: {r['rate']:.0%} label noise ({r['flipped']:,} labels flipped): "
                        f"{r['model'].booster.n_iter_} iterations in {r['seconds']:.1f} s")
    ctx.shared["noise_models"] = noise_models
    ctx.say(f"training: done in {ctx.shared['training_wall_seconds']:.0f} s")
