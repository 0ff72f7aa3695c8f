"""Per-column weight of evidence of the exact oracle, for every patient and class.

Design: each column's likelihood is marginalized over the latent cells on its own
(``table @ P(cell | class)``, one small table per column and state), so a patient's weight of
evidence for a column is one lookup (binary, categorical) or one density per cell summed out
(continuous). The result is centred across classes and returned with the exact centred log
posterior, so that what the per-column sum leaves unattributed (clues sharing a latent cause)
is measured as a residual. :mod:`data_gen.shapley` gives the exact game's values instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .likelihood import _CHUNK, _IMPOSSIBLE, _cached_tables, _class_logsumexp, _log, _Numeric, _numeric, _setup
from .prevalence import resolve_prevalence
from .recording import binary_state_probs, categorical_state_probs

__all__ = ["Evidence", "weight_of_evidence"]


@dataclass(frozen=True)
class Evidence:
    """Per-column weight of evidence, centred across classes.

    ``values[i, j, k]`` is log P(x_ij | class k) minus its mean over classes, where each
    column's likelihood marginalizes the latent cells on its own. ``base[k]`` is the centred log
    prior and ``total[i, k]`` the centred exact log posterior, so that
    ``total = base + values.sum(axis=1) + residual``. Where columns are independent given the
    class, ``values`` is exactly the Shapley value of the centred log posterior and the
    residual is 0; the latent subtypes make the columns dependent given the class, and
    ``residual`` measures how much of the posterior that leaves unattributed: clues that share
    a latent cause (kidney disease, dialysis, phosphate and PTH in renal MPC) each count in full,
    so their sum overstates the joint evidence. :func:`oracle_shapley` gives the exact game's
    Shapley values (residual 0) at a higher cost; ``benchmarks/bench_ground_truth.py`` prints
    how close the two are.
    """

    values: np.ndarray
    base: np.ndarray
    total: np.ndarray
    residual: np.ndarray
    columns: tuple[str, ...]
    classes: tuple[str, ...]
    index: pd.Index

    def for_class(self, class_name: str) -> pd.DataFrame:
        """The weights for one class as a (patients x columns) frame."""
        k = self.classes.index(class_name)
        return pd.DataFrame(self.values[:, :, k], index=self.index, columns=list(self.columns))

    def residual_share(self) -> float:
        """Mean |residual| over mean |total - base|: the share of the posterior left unattributed.

        Patients that some class cannot explain at all (log-likelihood -inf, stored as -1e6)
        are left out: their totals are dominated by that sentinel, not by evidence.
        """
        possible = (self.total > _IMPOSSIBLE / 10).all(axis=1)
        if not possible.any():
            return float("nan")
        denom = np.abs(self.total - self.base)[possible].mean()
        return float(np.abs(self.residual[possible]).mean() / denom) if denom > 0 else 0.0


def weight_of_evidence(
    df: pd.DataFrame, *, prevalence=None, missing: str = "model", recording=None, knowledge=None
) -> Evidence:
    """Per-column weight of evidence for every patient and class (the explanation audit's truth).

    Parameters are those of :func:`oracle_proba`. Returns an :class:`Evidence`.

    Examples
    --------
    >>> from data_gen import generate_cohort, weight_of_evidence
    >>> ev = weight_of_evidence(generate_cohort(200, random_state=2))
    >>> ev.values.shape
    (200, 52, 5)
    """
    kb, model_missing, regime = _setup(knowledge, missing, recording)
    t = kb.cells
    K = len(kb.class_names)
    prior = resolve_prevalence(prevalence, kb)
    num = _numeric(df, kb)
    n = len(df)
    # P(cell | class) as a (C, K) matrix, to marginalize each column within a class
    pi = t.class_matrix()
    cols = kb.column_names
    pos = {c: i for i, c in enumerate(cols)}
    values = np.empty((n, len(cols), K))
    pm = t.p_marginal()
    for j, col in enumerate(t.binary):
        table = binary_state_probs(pm[j], t.binary_missing[j], regime.binary[j], model_missing) @ pi
        v = num.binary[:, j]
        s = np.where(v == 1, 0, np.where(v == 0, 1, 2))
        values[:, pos[col], :] = _log(table)[s]
    for j, col in enumerate(t.categorical):
        table = categorical_state_probs(t.cat_probs[j], t.cat_missing[j], regime.categorical[j], model_missing) @ pi
        code = num.categorical[:, j]
        values[:, pos[col], :] = _log(table)[np.where(code < 0, table.shape[0] - 1, code)]
    tables = _cached_tables(kb, model_missing, regime)
    total = np.empty((n, K))
    for s in range(0, n, _CHUNK):
        sl = slice(s, s + _CHUNK)
        for j, col in enumerate(t.continuous):
            values[sl, pos[col], :] = _class_logsumexp(tables.continuous_loglik(num.continuous[sl, j], j), kb)
        chunk = _Numeric(num.binary[sl], num.categorical[sl], num.continuous[sl])
        total[sl] = _class_logsumexp(tables.cell_loglik(chunk), kb)
    log_prior = _log(prior)
    total = total + log_prior[None, :]
    values -= values.mean(axis=2, keepdims=True)
    total -= total.mean(axis=1, keepdims=True)
    base = log_prior - log_prior.mean()
    residual = total - base[None, :] - values.sum(axis=1)
    return Evidence(values, base, total, residual, cols, kb.class_names, df.index)
