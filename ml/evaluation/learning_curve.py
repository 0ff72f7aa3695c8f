"""Model vs oracle accuracy and log loss as the training cohort grows (several seeds per size).

Each (size, seed) pair trains on its own seed stream, derived from the caller's seed and the
size, so adding sizes or seeds never changes the others' results.
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
    "model_accuracy",
    "model_log_loss",
    "oracle_accuracy",
    "oracle_log_loss",
    "accuracy_gap_pp",
    "log_loss_gap",
    "n_iter",
    "seconds",
)


def _train_seed(seed: int, size: int) -> np.random.SeedSequence:
    """The training cohort's seed for one size: independent streams per (seed, size) that can
    never coincide with a plain integer seed such as the test cohort's."""
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(int(size),))


def learning_curve(
    sizes: Sequence[int] = (1_000, 3_000, 10_000, 30_000, 100_000, 200_000),
    *,
    test_n: int = 100_000,
    seed: int = 1,
    test_seed: int = 9_000_001,
    train_params: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Model vs oracle accuracy and log loss as the training cohort grows.

    For each size, a training cohort is generated with the seed
    ``numpy.random.SeedSequence(seed, spawn_key=(size,))`` (independent per size, never equal
    to the test seed), the classifier is trained with ``ml.train(cohort, random_state=seed,
    **train_params)``, and it is scored on one fixed test cohort
    ``generate_cohort(test_n, random_state=test_seed)``, on which the oracle is scored too.

    Parameters
    ----------
    sizes : sequence of int
        Training cohort sizes.
    test_n, test_seed : int
        The fixed test cohort.
    seed : int
        Seeds the training cohorts and the booster's validation split.
    train_params : mapping, optional
        Keyword arguments of :func:`ml.train` (booster overrides such as ``max_iter``, or
        ``random_state`` to override ``seed`` for the booster).
    progress : callable(str), optional
        Receives one line per step (the CLI prints them); the library itself never prints.

    Returns
    -------
    pandas.DataFrame
        One row per size with :data:`LEARNING_CURVE_COLUMNS`: ``n_train``, ``model_accuracy``,
        ``model_log_loss``, ``oracle_accuracy``, ``oracle_log_loss``, ``accuracy_gap_pp``
        (oracle minus model, percentage points; positive = model behind), ``log_loss_gap``
        (model minus oracle, nats; positive = model behind), ``n_iter`` (boosting
        iterations) and ``seconds`` (training wall time).
    """
    from ..model import train

    say = progress if progress is not None else (lambda line: None)
    sizes = [int(s) for s in sizes]
    if not sizes or any(s <= 0 for s in sizes):
        raise ValueError(f"sizes must be positive integers, got {sizes}")
    params = dict(train_params or {})
    rs = params.pop("random_state", seed)
    kb = load_knowledge(params.get("knowledge")) if not isinstance(params.get("knowledge"), Knowledge) else params["knowledge"]

    say(f"learning curve: generating the test cohort ({test_n:,} patients, seed {test_seed})")
    test = validate_frame(generate_cohort(test_n, random_state=test_seed, knowledge=kb), knowledge=kb, label="required")
    classes = kb.class_names
    y = test[LABEL]
    features = test.drop(columns=[LABEL])
    oracle_m = classification_metrics(y, oracle_proba(features, knowledge=kb), classes)
    say(f"learning curve: oracle accuracy {oracle_m['accuracy']:.4f}, log loss {oracle_m['log_loss']:.4f}")

    rows = []
    for i, size in enumerate(sizes, 1):
        cohort = generate_cohort(size, random_state=_train_seed(seed, size), knowledge=kb)
        t0 = time.perf_counter()
        model = train(cohort, random_state=rs, **params)
        seconds = time.perf_counter() - t0
        m = classification_metrics(y, model.predict_proba(features), classes)
        row = {
            "n_train": size,
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
            f"learning curve [{i}/{len(sizes)}] n={size:,}: {row['n_iter']} iterations in {seconds:.1f} s; "
            f"accuracy gap {row['accuracy_gap_pp']:.2f} pp, log-loss gap {row['log_loss_gap']:.4f}"
        )
    return pd.DataFrame(rows, columns=list(LEARNING_CURVE_COLUMNS))
