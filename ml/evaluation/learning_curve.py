"""Model vs oracle accuracy and log loss as the training cohort grows (several seeds per size).

Each (size, seed) pair trains on its own seed stream, derived from the seed and the size, so
adding sizes or seeds never changes the others' results, and one call with seeds (1, 2, 3)
gives the same rows as three calls with one seed each (which is how the report spreads the
work over processes). :func:`learning_curve_summary` condenses the per-seed rows into mean,
standard deviation, minimum and maximum per size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any


import numpy as np
import pandas as pd

from data_gen import LABEL, generate_cohort, load_knowledge, oracle_proba, validate_frame
from data_gen.knowledge import Knowledge

from .metrics import classification_metrics


# --------------------------------------------------------------------------------------------
# Learning curve
# --------------------------------------------------------------------------------------------
LEARNING_CURVE_COLUMNS = (
    "n_train",
    "seed",
    "model_accuracy",
    "model_log_loss",
    "oracle_accuracy",
    "oracle_log_loss",
    "accuracy_gap_pp",
    "log_loss_gap",
    "n_iter",
    "seconds",
)


#: The metrics :func:`learning_curve_summary` condenses over seeds.
SUMMARY_METRICS = ("model_accuracy", "model_log_loss", "accuracy_gap_pp", "log_loss_gap", "n_iter", "seconds")


def _train_seed(seed: int, size: int) -> np.random.SeedSequence:
    """The training cohort's seed for one (seed, size): independent streams per pair that can
    never coincide with a plain integer seed such as the test cohort's. The seed is the
    entropy and the size the spawn key, so a seed's stream for a size does not depend on which
    other seeds or sizes run (and seed 1 keeps the cohorts of the single-seed curve)."""
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(int(size),))


def _seeds(seeds, seed) -> list[int]:
    if seed is not None:
        if seeds is not None:
            raise ValueError(f"pass seeds= or seed= (one seed), not both; got seeds={seeds!r} and seed={seed!r}")
        seeds = (seed,)
    seeds = [int(s) for s in ((1, 2, 3) if seeds is None else seeds)]
    if not seeds or len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, at least one; got {seeds}")
    return seeds


def learning_curve(
    sizes: Sequence[int] = (1_000, 3_000, 10_000, 30_000, 100_000, 200_000),
    *,
    test_n: int = 100_000,
    seeds: Sequence[int] | None = None,
    seed: int | None = None,
    test_seed: int = 9_000_001,
    train_params: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Model vs oracle accuracy and log loss as the training cohort grows.

    For each size and each seed, a training cohort is generated with the seed
    ``numpy.random.SeedSequence(seed, spawn_key=(size,))`` (independent per (seed, size), never
    equal to the test seed), the classifier is trained with ``ml.train(cohort,
    random_state=seed, **train_params)``, and it is scored on one fixed test cohort
    ``generate_cohort(test_n, random_state=test_seed)``, on which the oracle is scored too.
    The seeds' spread shows how much of a size's result is the luck of its training cohort.

    Parameters
    ----------
    sizes : sequence of int
        Training cohort sizes.
    test_n, test_seed : int
        The fixed test cohort.
    seeds : sequence of int, default (1, 2, 3)
        Each seeds its own training cohorts and the booster's validation split.
    seed : int, optional
        One seed: the same as ``seeds=(seed,)`` (not both).
    train_params : mapping, optional
        Keyword arguments of :func:`ml.train` (booster overrides such as ``max_iter``, or
        ``random_state`` to give every booster one seed).
    progress : callable(str), optional
        Receives one line per step (the CLI prints them); the library itself never prints.

    Returns
    -------
    pandas.DataFrame
        One row per (size, seed), by size then seed, with :data:`LEARNING_CURVE_COLUMNS`:
        ``n_train``, ``seed``, ``model_accuracy``,
        ``model_log_loss``, ``oracle_accuracy``, ``oracle_log_loss``, ``accuracy_gap_pp``
        (oracle minus model, percentage points; positive = model behind), ``log_loss_gap``
        (model minus oracle, nats; positive = model behind), ``n_iter`` (boosting
        iterations) and ``seconds`` (training wall time).

    Raises
    ------
    ValueError
        Sizes that are not positive, seeds that repeat or are negative, or both ``seeds`` and
        ``seed``.
    """
    from ..model import train

    say = progress if progress is not None else (lambda line: None)
    sizes = [int(s) for s in sizes]
    if not sizes or any(s <= 0 for s in sizes):
        raise ValueError(f"sizes must be positive integers, got {sizes}")
    seeds = _seeds(seeds, seed)
    params = dict(train_params or {})
    fixed_rs = params.pop("random_state", None)
    kb = load_knowledge(params.get("knowledge")) if not isinstance(params.get("knowledge"), Knowledge) else params["knowledge"]

    say(f"learning curve: generating the test cohort ({test_n:,} patients, seed {test_seed})")
    test = validate_frame(generate_cohort(test_n, random_state=test_seed, knowledge=kb), knowledge=kb, label="required")
    classes = kb.class_names
    y = test[LABEL]
    features = test.drop(columns=[LABEL])
    oracle_m = classification_metrics(y, oracle_proba(features, knowledge=kb), classes)
    say(f"learning curve: oracle accuracy {oracle_m['accuracy']:.4f}, log loss {oracle_m['log_loss']:.4f}")

    rows = []
    pairs = [(size, sd) for size in sizes for sd in seeds]
    for i, (size, sd) in enumerate(pairs, 1):
        cohort = generate_cohort(size, random_state=_train_seed(sd, size), knowledge=kb)
        t0 = time.perf_counter()
        model = train(cohort, random_state=sd if fixed_rs is None else fixed_rs, **params)
        seconds = time.perf_counter() - t0
        m = classification_metrics(y, model.predict_proba(features), classes)
        row = {
            "n_train": size,
            "seed": sd,
            "model_accuracy": m["accuracy"],
            "model_log_loss": m["log_loss"],
            "oracle_accuracy": oracle_m["accuracy"],
            "oracle_log_loss": oracle_m["log_loss"],
            "accuracy_gap_pp": 100.0 * (oracle_m["accuracy"] - m["accuracy"]),
            "log_loss_gap": m["log_loss"] - oracle_m["log_loss"],
            "n_iter": int(model.booster.n_iter_),
            "seconds": seconds,
        }
        rows.append(row)
        say(
            f"learning curve [{i}/{len(pairs)}] n={size:,}, seed {sd}: {row['n_iter']} iterations in {seconds:.1f} s; "
            f"accuracy gap {row['accuracy_gap_pp']:.2f} pp, log-loss gap {row['log_loss_gap']:.4f}"
        )
    return pd.DataFrame(rows, columns=list(LEARNING_CURVE_COLUMNS))


def learning_curve_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample standard deviation (ddof=1), minimum and maximum over seeds, per size.

    Parameters
    ----------
    frame : pandas.DataFrame
        :func:`learning_curve`'s rows (``n_train``, ``seed`` and :data:`SUMMARY_METRICS`; the
        oracle columns are one value per test cohort).

    Returns
    -------
    pandas.DataFrame
        One row per size, ascending: ``n_train``, ``n_seeds``, ``oracle_accuracy``,
        ``oracle_log_loss`` and, for each metric of :data:`SUMMARY_METRICS`, ``<metric>_mean``,
        ``<metric>_sd`` (NaN with one seed), ``<metric>_min`` and ``<metric>_max``.
    """
    f = pd.DataFrame(frame)
    missing = [c for c in ("n_train", "seed", "oracle_accuracy", "oracle_log_loss", *SUMMARY_METRICS) if c not in f.columns]
    if missing:
        raise ValueError(f"the learning-curve frame lacks columns {missing}")
    g = f.groupby("n_train", sort=True)
    out = pd.DataFrame({"n_seeds": g["seed"].nunique(), "oracle_accuracy": g["oracle_accuracy"].mean(),
                        "oracle_log_loss": g["oracle_log_loss"].mean()})
    for c in SUMMARY_METRICS:
        stats = g[c].agg(["mean", "std", "min", "max"]).rename(columns={"std": "sd"})
        for k in stats.columns:
            out[f"{c}_{k}"] = stats[k]
    return out.reset_index()
