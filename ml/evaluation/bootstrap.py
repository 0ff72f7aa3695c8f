"""The model's gap to the oracle with 95% CIs from a paired bootstrap over patients.

Resampling is batched so that memory stays bounded (``_BOOT_BATCH_ENTRIES`` index entries at a
time) and the generator is derived from the caller's seed: same seed, same intervals.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence


import numpy as np
import pandas as pd


from .metrics import _as_codes, _as_proba, _log_losses, _top_label


# --------------------------------------------------------------------------------------------
# Paired bootstrap
# --------------------------------------------------------------------------------------------
#: Bootstrap index matrices are drawn in batches of about this many entries (int64: 8 bytes each).
_BOOT_BATCH_ENTRIES = 4_000_000


def paired_bootstrap_gap(
    y,
    proba_model,
    proba_oracle,
    *,
    n_boot: int = 1000,
    random_state=0,
    classes: Sequence[str] | None = None,
) -> dict:
    """The model's gap to the oracle with 95% percentile CIs (paired bootstrap over patients).

    Each bootstrap replicate resamples patients with replacement and recomputes both
    predictors' metrics on the *same* resampled patients, so the patient-to-patient variation
    common to both cancels and the CI is that of the gap itself.

    Parameters
    ----------
    y : array-like of str
        True classes.
    proba_model, proba_oracle : DataFrame or array (n_patients, n_classes)
        Probabilities of the model and of the oracle for the same patients.
    n_boot : int
        Bootstrap replicates.
    random_state : int or numpy Generator
        Seeds the resampling; the result is deterministic for a seed.
    classes : sequence of str, optional
        Class order; defaults to the columns of ``proba_model`` (then it must be a DataFrame).

    Returns
    -------
    dict
        ``accuracy_gap_pp``: oracle accuracy minus model accuracy in percentage points
        (positive = model behind) and ``accuracy_gap_pp_ci`` [low, high];
        ``log_loss_gap``: model log loss minus oracle log loss in nats (positive = model
        behind) and ``log_loss_gap_ci``; both predictors' accuracy and log loss; ``n`` and
        ``n_boot``.
    """
    if classes is None:
        if not isinstance(proba_model, pd.DataFrame):
            raise ValueError("give classes, or proba_model as a DataFrame with one column per class")
        classes = [str(c) for c in proba_model.columns]
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    yc = _as_codes(y, classes)
    n = len(yc)
    if n == 0:
        raise ValueError("no patients")
    pm = _as_proba(proba_model, classes, n, "proba_model")
    po = _as_proba(proba_oracle, classes, n, "proba_oracle")
    correct_m = _top_label(pm, yc)[1]
    correct_o = _top_label(po, yc)[1]
    loss_m = _log_losses(pm, yc)
    loss_o = _log_losses(po, yc)
    d_acc = 100.0 * (correct_o.astype(float) - correct_m.astype(float))
    d_ll = loss_m - loss_o

    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    batch = max(1, min(n_boot, _BOOT_BATCH_ENTRIES // n))
    boot_acc = np.empty(n_boot)
    boot_ll = np.empty(n_boot)
    for start in range(0, n_boot, batch):
        b = min(batch, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        boot_acc[start : start + b] = d_acc[idx].mean(axis=1)
        boot_ll[start : start + b] = d_ll[idx].mean(axis=1)

    def ci(v):
        lo, hi = np.percentile(v, [2.5, 97.5])
        return [float(lo), float(hi)]

    return {
        "n": int(n),
        "n_boot": int(n_boot),
        "accuracy_gap_pp": float(d_acc.mean()),
        "accuracy_gap_pp_ci": ci(boot_acc),
        "log_loss_gap": float(d_ll.mean()),
        "log_loss_gap_ci": ci(boot_ll),
        "model_accuracy": float(correct_m.mean()),
        "oracle_accuracy": float(correct_o.mean()),
        "model_log_loss": float(loss_m.mean()),
        "oracle_log_loss": float(loss_o.mean()),
    }
