"""Per-cell log-likelihood of patients under the knowledge base: the oracle's machinery.

Design: a frame is checked once (:func:`~data_gen.contract.canonical_frame`) and turned into a
numeric view (:class:`_Numeric`: binary values, categorical codes, continuous values). The
log-probability of every state of every binary and categorical column in every cell is a row of
one table (:class:`_Tables`, built once per knowledge base, missingness mode and recording
regime and cached), so log P(x | cell) for all patients and cells is one one-hot matrix
product, plus a closed-form density for each continuous column. Summing out the cells within
each class (:func:`_class_logsumexp`) gives log P(x | class). The posterior
(:mod:`data_gen.oracle`), the weight of evidence (:mod:`data_gen.evidence`) and the exact
Shapley values (:mod:`data_gen.shapley`) are all built on these tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from .contract import canonical_frame
from .knowledge import Knowledge, load_knowledge
from .recording import (
    RecordingMixture,
    RecordingRegime,
    binary_state_probs,
    categorical_state_probs,
    child_state_probs,
    continuous_state_probs,
    resolve_recording,
)

MISSING_MODES = ("model", "ignore")
_CHUNK = 1 << 15
_IMPOSSIBLE = -1e6  # stands for log(0); an impossible cell falls below any possible one
_LOG_2PI_HALF = 0.5 * np.log(2 * np.pi)


def _kb(knowledge) -> Knowledge:
    return knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)


def _log(x):
    with np.errstate(divide="ignore"):
        return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), _IMPOSSIBLE)


def _check_missing(missing: str) -> bool:
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {MISSING_MODES}, got {missing!r}")
    return missing == "model"


def _setup(knowledge, missing: str, recording, *, mixture_ok: bool = False):
    """The knowledge base, whether missingness is modelled, and the compiled regime."""
    kb = _kb(knowledge)
    model_missing = _check_missing(missing)
    regime = resolve_recording(recording, kb)
    if isinstance(regime, RecordingMixture) and not mixture_ok:
        raise ValueError(
            f"recording={regime.name!r} is a mixture: weight_of_evidence and oracle_shapley explain under a "
            "single regime (oracle_proba and oracle_log_likelihood accept mixtures)"
        )
    if not model_missing and not regime.is_complete:
        raise ValueError(
            f"recording={regime.name!r} describes which values get reported, which only missing='model' "
            "uses; missing='ignore' treats every blank as uninformative whatever the regime"
        )
    return kb, model_missing, regime


# --------------------------------------------------------------------------------------------
# Numeric view of a frame
# --------------------------------------------------------------------------------------------
@dataclass
class _Numeric:
    binary: np.ndarray  # (N, Jb) float: 1, 0 or NaN
    categorical: np.ndarray  # (N, Jc) int level codes, -1 for NaN
    continuous: np.ndarray  # (N, Jn) float, NaN for missing
    #: (N, Jb + Jc + Jn) bool, columns in binary, categorical, continuous order: measured on purpose
    measured: np.ndarray | None = None

    def rows(self, sl: slice) -> "_Numeric":
        m = None if self.measured is None else self.measured[sl]
        return _Numeric(self.binary[sl], self.categorical[sl], self.continuous[sl], m)


def _measured_mask(measured, df: pd.DataFrame, kb: Knowledge) -> np.ndarray | None:
    """``measured=`` as an (N, Jb + Jc + Jn) bool array in the cell table's column order."""
    if measured is None:
        return None
    t = kb.cells
    order = list(t.binary) + list(t.categorical) + list(t.continuous)
    if isinstance(measured, pd.DataFrame):
        unknown = sorted(set(map(str, measured.columns)) - set(order))
        if unknown:
            raise ValueError(f"measured: unknown column(s) {unknown}; expected columns of the input contract")
        if len(measured) != len(df):
            raise ValueError(f"measured: has {len(measured)} rows, the patients {len(df)}; one row per patient")
        out = np.zeros((len(df), len(order)), dtype=bool)
        for i, col in enumerate(order):
            if col in measured.columns:
                v = measured[col].to_numpy()
                if v.dtype != bool:
                    raise ValueError(f"measured: column {col!r} must be bool (True = measured on purpose), got {v.dtype}")
                out[:, i] = v
        return out
    arr = np.asarray(measured)
    if arr.dtype != bool or arr.shape != (len(df), len(order)):
        raise ValueError(
            f"measured: expected a bool DataFrame with contract columns or a bool array of shape "
            f"{(len(df), len(order))} (patients x columns in knowledge.column_names order), got "
            f"{arr.dtype} {arr.shape}"
        )
    pos = {c: i for i, c in enumerate(kb.column_names)}
    return arr[:, [pos[c] for c in order]]


def _numeric(df: pd.DataFrame, kb: Knowledge, measured=None) -> _Numeric:
    t = kb.cells
    mask = _measured_mask(measured, df, kb)
    df = canonical_frame(df, kb)
    n = len(df)
    b = np.empty((n, len(t.binary)))
    for j, col in enumerate(t.binary):
        b[:, j] = df[col].to_numpy(dtype=float, na_value=np.nan)
    c = np.empty((n, len(t.categorical)), dtype=np.int64)
    for j, col in enumerate(t.categorical):
        c[:, j] = df[col].cat.codes
    x = np.empty((n, len(t.continuous)))
    for j, col in enumerate(t.continuous):
        x[:, j] = df[col].to_numpy(dtype=float, na_value=np.nan)
    return _Numeric(b, c, x, mask)


# --------------------------------------------------------------------------------------------
# Per-cell log-likelihood
# --------------------------------------------------------------------------------------------
class _Tables:
    """Log-probability tables of every column state in every cell, built once per call."""

    def __init__(self, kb: Knowledge, model_missing: bool, regime: RecordingRegime | None = None):
        t = kb.cells
        self.t = t
        regime = resolve_recording(regime, kb)
        self.regime = regime
        self.model_missing = model_missing
        self.offsets, self.weights = self._blocks(measured=False)  # (F, C)
        self.n_features = self.weights.shape[0]
        self._both = None
        # unique parameter sets of each continuous column, to evaluate densities once per set
        self.cont_groups = []
        for j in range(len(t.continuous)):
            prm = t.cont_params[j]
            names = sorted(prm)
            stacked = np.column_stack([prm[k] for k in names] + [t.cont_missing[j]])
            uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
            self.cont_groups.append((names, uniq, inverse.ravel()))

    def _blocks(self, measured: bool):
        """Offsets and stacked log-probability rows of every binary and categorical column.

        ``measured=True``: every column's own missingness and recording rate are left out (its
        value contributes P(value | cell), a blank contributes 1), as for a column measured on
        purpose; a child column still conditions on its parent's reported state.
        """
        t, regime, mm = self.t, self.regime, self.model_missing
        own = mm and not measured
        offsets, blocks = [], []
        off = 0
        for j in range(len(t.binary)):
            par = t.parent[j]
            if par < 0:
                rows = binary_state_probs(t.p1[j], t.binary_missing[j], regime.binary[j], own)
            else:
                # rows 3 * parent state + child state; parent states 1 / 0 / NaN / unknown
                rows = child_state_probs(
                    t.p1[par], t.binary_missing[par], regime.binary[par],
                    t.p_given[j, 1], t.p_given[j, 0], t.binary_missing[j], regime.binary[j],
                    mm, child_model_missing=own,
                ).reshape(12, -1)
            offsets.append(off)
            off += len(rows)
            blocks.append(_log(rows))
        for j in range(len(t.categorical)):
            rows = categorical_state_probs(t.cat_probs[j], t.cat_missing[j], regime.categorical[j], own)
            offsets.append(off)
            off += len(rows)
            blocks.append(_log(rows))
        return np.asarray(offsets), np.vstack(blocks)

    def both_weights(self) -> np.ndarray:
        """(2F, C): the ordinary rows, then the measured-on-purpose rows (built once)."""
        if self._both is None:
            self._both = np.vstack([self.weights, self._blocks(measured=True)[1]])
        return self._both

    def states(self, num: _Numeric) -> np.ndarray:
        """Row-wise feature index of every binary and categorical column's state."""
        t = self.t
        n = num.binary.shape[0]
        idx = np.empty((n, len(self.offsets)), dtype=np.int64)
        b = num.binary
        for j in range(len(t.binary)):
            v = b[:, j]
            par = t.parent[j]
            if par < 0:
                s = np.where(v == 1, 0, np.where(v == 0, 1, 2))
            else:
                pv = b[:, par]
                ps = np.where(pv == 1, 0, np.where(pv == 0, 1, 2))
                if num.measured is not None:
                    # a parent measured on purpose but blank is summed out ("unknown", state 3)
                    ps = np.where(num.measured[:, par] & np.isnan(pv), 3, ps)
                s = 3 * ps + np.where(v == 1, 0, np.where(v == 0, 1, 2))
            idx[:, j] = self.offsets[j] + s
        nb = len(t.binary)
        for j in range(len(t.categorical)):
            code = num.categorical[:, j]
            n_lv = t.cat_probs[j].shape[1]
            idx[:, nb + j] = self.offsets[nb + j] + np.where(code < 0, n_lv, code)
        return idx

    def continuous_loglik(self, x: np.ndarray, j: int, model_missing: bool | None = None) -> np.ndarray:
        """(N, C) log density (with missingness unless ``model_missing=False``) of continuous column j."""
        t = self.t
        model_missing = self.model_missing if model_missing is None else model_missing
        names, uniq, inverse = self.cont_groups[j]
        par = dict(zip(names + ["missing"], uniq.T))
        lo, hi = t.cont_bounds[j]
        obs = ~np.isnan(x)
        xv = np.where(obs, x, 1.0)[:, None]
        zero = par["zero"] if "zero" in par else np.zeros_like(par["missing"])
        f_pos, p_zero, p_miss = continuous_state_probs(zero, par["missing"], self.regime.continuous[j], model_missing)
        if t.cont_dist[j] == "normal":
            mu, sd = par["mean"][None, :], par["sd"][None, :]
            zz = (xv - mu) / sd
            log_mass = _log_sub(log_ndtr((hi - mu) / sd), log_ndtr((lo - mu) / sd))
            ll = -0.5 * zz**2 - np.log(sd) - _LOG_2PI_HALF - log_mass + _log(f_pos)[None, :]
            ll = np.where((xv >= lo) & (xv <= hi), ll, _IMPOSSIBLE)
        else:
            med, lg, zr = par["median"][None, :], np.log(par["gsd"])[None, :], zero[None, :]
            pos = xv > 0
            lx = np.log(np.where(pos, xv, 1.0))
            zz = (lx - np.log(med)) / lg
            ll_pos = _log(1 - zr) - 0.5 * zz**2 - np.log(lg) - _LOG_2PI_HALF - lx + _log(f_pos)[None, :]
            ll = np.where(pos, ll_pos, np.where(xv == 0, _log(p_zero)[None, :], _IMPOSSIBLE))
        ll = np.where(obs[:, None], ll, _log(p_miss)[None, :])
        return ll[:, inverse]

    def cell_loglik(self, num: _Numeric) -> np.ndarray:
        """(N, C) log P(x | cell); columns in ``num.measured`` without their missingness."""
        idx = self.states(num)
        n = idx.shape[0]
        m = num.measured if self.model_missing else None
        weights = self.weights
        if m is not None:
            idx = idx + self.n_features * m[:, : idx.shape[1]]
            weights = self.both_weights()
        onehot = np.zeros((n, weights.shape[0]))
        np.put_along_axis(onehot, idx, 1.0, axis=1)
        ll = onehot @ weights
        nd = idx.shape[1]
        for j in range(num.continuous.shape[1]):
            term = self.continuous_loglik(num.continuous[:, j], j)
            if m is not None and m[:, nd + j].any():
                term = np.where(m[:, nd + j, None], self.continuous_loglik(num.continuous[:, j], j, False), term)
            ll += term
        return ll


_TABLE_CACHE: dict = {}


def _cached_tables(kb: Knowledge, model_missing: bool, regime: RecordingRegime) -> _Tables:
    """The tables of one (knowledge base, mode, regime), built once per process (a few ms each).

    Keyed by the objects' identities (both are immutable); the cache holds the objects, so an
    identity is never reused while its entry lives. Bounded to a few dozen entries.
    """
    key = (id(kb), kb.sha256, model_missing, id(regime))
    hit = _TABLE_CACHE.get(key)
    if hit is None:
        if len(_TABLE_CACHE) >= 32:
            _TABLE_CACHE.pop(next(iter(_TABLE_CACHE)))
        hit = _TABLE_CACHE[key] = (kb, regime, _Tables(kb, model_missing, regime))
    return hit[2]


def _log_sub(a, b):
    """log(exp(a) - exp(b)) for a >= b."""
    with np.errstate(divide="ignore"):
        return a + np.log1p(-np.exp(b - a))



def _class_logsumexp(ll: np.ndarray, kb: Knowledge) -> np.ndarray:
    """(..., C) log P(. | cell) -> (..., K) log P(. | class), the latent cells summed out."""
    t = kb.cells
    logw = _log(t.cell_prob)
    out = np.empty(ll.shape[:-1] + (len(kb.class_names),))
    for k in range(len(kb.class_names)):
        idx = t.class_cells(k)
        a = ll[..., idx] + logw[idx]
        amax = a.max(axis=-1, keepdims=True)
        out[..., k] = amax[..., 0] + np.log(np.exp(a - amax).sum(axis=-1))
    return out
