"""The exact oracle as a cooperative game: a shapiq ``Game`` over the contract's 52 columns.

Design. The value of a coalition S of columns, for one patient and one class, is the oracle's
centred log posterior of that class when only the columns in S (and any columns held fixed)
are known, the others summed out exactly with the latent subtypes — the game whose Shapley
values :func:`data_gen.oracle_shapley` estimates by permutation sampling. Each column's
log-probability term per latent cell is computed once per patient (``data_gen.oracle``'s own
``_column_contributions``), so a batch of coalitions costs one matrix product and one
log-sum-exp over cells: shapiq's approximators can query thousands of coalitions per second.

A *sub-game* frees only some players: the other columns are fixed known at the patient's own
values (``fixed="known"``) or fixed unknown (``fixed="unknown"``, summed out). With at most
about 16 free players shapiq's ``ExactComputer`` enumerates the powerset;
:func:`brute_force_shapley` is our own enumeration of the same formula, as an independent check.
Requires the ``xai`` extra (``pip install 'pulmocalc[xai]'``). Synthetic data; not a clinical device.
"""

from __future__ import annotations

from math import factorial

import numpy as np
import pandas as pd

try:
    from shapiq import Game
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("ml.xai.game needs shapiq: pip install 'pulmocalc[xai]'") from exc

from data_gen.likelihood import _cached_tables, _class_logsumexp, _log, _numeric, _setup
from data_gen.shapley import _column_contributions
from data_gen.prevalence import resolve_prevalence

__all__ = ["OracleGame", "brute_force_shapley"]


class OracleGame(Game):
    """One patient's oracle game for one class, as a shapiq ``Game``.

    Parameters
    ----------
    patient : pandas.DataFrame
        One patient (one row) in the input contract.
    class_name : str
        The class whose centred log posterior is the value.
    players : sequence of str, optional
        The free players (contract columns), default all 52, in knowledge-base order.
    fixed : {"known", "unknown"}
        What the other columns are in every coalition.
    missing, recording, prevalence, knowledge
        As for :func:`data_gen.oracle_shapley`.

    Attributes
    ----------
    player_names : list of str
    value_all : ndarray
        ``value_all[k]`` is the grand coalition's centred log posterior of class k.

    Raises
    ------
    ValueError
        For more than one patient, an unknown class or column, or ``fixed`` not in the two modes.
    """

    def __init__(self, patient: pd.DataFrame, class_name: str, *, players=None, fixed: str = "known",
                 missing: str = "model", recording=None, prevalence=None, knowledge=None):
        kb, model_missing, regime = _setup(knowledge, missing, recording)
        if len(patient) != 1:
            raise ValueError(f"OracleGame takes one patient (a one-row frame), got {len(patient)} rows")
        if class_name not in kb.class_names:
            raise ValueError(f"unknown class {class_name!r}; the classes are {list(kb.class_names)}")
        if fixed not in ("known", "unknown"):
            raise ValueError(f"fixed must be 'known' or 'unknown', got {fixed!r}")
        cols = list(kb.column_names)
        players = cols if players is None else list(players)
        unknown = sorted(set(players) - set(cols))
        if unknown or len(set(players)) != len(players):
            raise ValueError(f"players must be distinct contract columns; unknown: {unknown}")
        self._kb = kb
        self._k = kb.class_names.index(class_name)
        self._free = np.array([cols.index(p) for p in players])
        self._base = np.zeros(len(cols), bool)
        if fixed == "known":
            self._base[:] = True
            self._base[self._free] = False
        contrib, switch = _column_contributions(_cached_tables(kb, model_missing, regime), kb, _numeric(patient, kb))
        self._contrib = contrib[:, 0, :]  # (J, cells)
        self._switch = [(child, par, term[0]) for child, (par, term) in switch.items()]
        self._log_prior = _log(resolve_prevalence(prevalence, kb))
        empty = self.class_values(np.zeros((1, len(players)), bool))[0]
        self.value_all = self.class_values(np.ones((1, len(players)), bool))[0]
        super().__init__(len(players), normalize=True, normalization_value=float(empty[self._k]), player_names=players)

    def class_values(self, coalitions: np.ndarray) -> np.ndarray:
        """(coalitions, classes) centred log posteriors of boolean coalitions over the free players."""
        C = np.asarray(coalitions, bool)
        M = np.repeat(self._base[None, :], len(C), axis=0)
        M[:, self._free] = C
        ll = M.astype(float) @ self._contrib
        for child, par, term in self._switch:
            # a child column's factor conditions on its parent only when both are known
            ll += (M[:, child] & M[:, par]).astype(float)[:, None] * term[None, :]
        v = _class_logsumexp(ll, self._kb) + self._log_prior
        return v - v.mean(axis=1, keepdims=True)

    def value_function(self, coalitions: np.ndarray) -> np.ndarray:
        """The centred log posterior of the game's class for each coalition (shapiq's interface)."""
        return self.class_values(coalitions)[:, self._k]


def brute_force_shapley(value, n_players: int) -> np.ndarray:
    """Exact Shapley values by enumerating all 2^n coalitions (n <= 20).

    ``value`` maps a boolean (coalitions, n_players) matrix to (coalitions,) values, e.g. an
    :class:`OracleGame`'s ``value_function``. φ_i = Σ_S |S|!(n-|S|-1)!/n! [v(S ∪ i) - v(S)]
    over S not containing i (Shapley 1953).
    """
    if not 1 <= n_players <= 20:
        raise ValueError(f"brute force is for 1 to 20 players, got {n_players}")
    masks = np.arange(1 << n_players)
    bits = ((masks[:, None] >> np.arange(n_players)[None, :]) & 1).astype(bool)
    v = np.asarray(value(bits), dtype=float)
    size = bits.sum(axis=1)
    w = np.array([factorial(s) * factorial(n_players - s - 1) / factorial(n_players) for s in range(n_players)])
    phi = np.empty(n_players)
    for i in range(n_players):
        without = masks[~bits[:, i]]
        phi[i] = (w[size[without]] * (v[without | (1 << i)] - v[without])).sum()
    return phi
