"""The exact posterior of the knowledge base: the Bayes-optimal "oracle".

For a patient with observed columns ``x``::

    P(class | x) ∝ prior(class) · Σ_cells P(cell | class) · Π_columns P(x_j | cell)

The sum runs over every latent cell (cause, pattern, visibility, stage, renal status) of the
class, so the latent subtypes are marginalized exactly. Within a cell the columns are
independent, except that a binary column may depend on one parent column (``given``), in which
case its factor is P(x_j | x_parent, cell), or, when the parent is not recorded,
P(x_j | cell) with the parent summed out.

Missing values. With ``missing="model"`` (the default) the posterior is exact for cohorts drawn
by :func:`data_gen.generate_cohort`: a value that is not recorded contributes
P(not recorded | cell), which is the same for every class for most columns (so it carries no
evidence) but not for an SLC34A2 test, a bone scan or a lesion size of a patient without
discrete lesions. With ``missing="ignore"`` a NaN contributes nothing: the value is summed out
and the fact that it was not recorded is taken as uninformative, which suits a user's file
whose recording habits differ from the generator's.
"""

from __future__ import annotations

import warnings
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
from .sampler import resolve_prevalence

__all__ = ["oracle_proba", "oracle_log_likelihood", "oracle_shapley", "weight_of_evidence", "Evidence", "MISSING_MODES"]

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


def _class_logsumexp(ll_cells: np.ndarray, kb: Knowledge) -> np.ndarray:
    """(N, K) log P(x | class) from (N, C) log P(x | cell)."""
    t = kb.cells
    K = len(kb.class_names)
    out = np.empty((ll_cells.shape[0], K))
    logw = _log(t.cell_prob)
    for k in range(K):
        idx = t.class_cells(k)
        a = ll_cells[:, idx] + logw[idx]
        amax = a.max(axis=1, keepdims=True)
        out[:, k] = amax[:, 0] + np.log(np.exp(a - amax).sum(axis=1))
    return out


def oracle_log_likelihood(
    df: pd.DataFrame, *, missing: str = "model", recording=None, knowledge=None, measured=None
) -> pd.DataFrame:
    """log P(observed columns | class) under the knowledge base, one column per class.

    Parameters are those of :func:`oracle_proba`, plus:

    measured : pandas.DataFrame of bool or numpy.ndarray of bool, optional
        Per patient, the columns measured on purpose (a hypothetical test result, as in
        :func:`data_gen.next_best_findings`): a DataFrame with contract column names (absent
        columns count as False) or an array of shape (n_patients, n_columns) in
        ``knowledge.column_names`` order. A measured column's missingness and recording rate
        are not evidence: its value contributes P(value | cell) and a blank is summed out, as
        under ``missing="ignore"``, while the other columns keep ``missing=``. Refused with a
        ValueError naming the problem for unknown columns, other shapes or non-bool values.

    Returns an (n_patients, n_classes) frame.
    """
    kb, model_missing, regime = _setup(knowledge, missing, recording, mixture_ok=True)
    # a mixture's component is a latent variable independent of class and cell:
    # P(x | class) = sum_r w_r P_r(x | class)
    components = regime.components if isinstance(regime, RecordingMixture) else (regime,)
    log_w = np.log(regime.weights) if isinstance(regime, RecordingMixture) else np.zeros(1)
    tables = [_cached_tables(kb, model_missing, r) for r in components]
    num = _numeric(df, kb, measured)
    out = np.empty((len(df), len(kb.class_names)))
    for s in range(0, len(df), _CHUNK):
        sl = slice(s, s + _CHUNK)
        chunk = num.rows(sl)
        per = np.stack([_class_logsumexp(tb.cell_loglik(chunk), kb) + lw for tb, lw in zip(tables, log_w)])
        top = per.max(axis=0)
        out[sl] = top + np.log(np.exp(per - top).sum(axis=0))
    return pd.DataFrame(out, index=df.index, columns=list(kb.class_names))


def oracle_proba(
    df: pd.DataFrame, *, prevalence=None, missing: str = "model", recording=None, knowledge=None
) -> pd.DataFrame:
    """The exact posterior P(class | observed columns) under the knowledge base.

    Parameters
    ----------
    df : pandas.DataFrame
        Patients in the input contract, checked by :func:`data_gen.validate_frame` (columns
        outside the contract, such as the label or latent subtypes, are ignored). NaN means
        not recorded.
    prevalence : mapping class -> share, optional
        Class mix of the setting; defaults to the knowledge base's prevalence.
    missing : {"model", "ignore"}
        "model" (exact for generated cohorts) counts the probability of a value not being
        recorded; "ignore" treats NaN as uninformative. See the module docstring.
    recording : None, "complete", float, str or RecordingRegime
        The recording regime the patients were reported under (see
        :mod:`data_gen.recording`): with ``missing="model"`` the posterior is exact for a cohort
        drawn by ``generate_cohort(..., recording=...)`` with the same regime.
    knowledge : Knowledge or path, optional

    Returns
    -------
    pandas.DataFrame
        One column per class, rows sum to 1. A row that is impossible under every class
        (e.g. on dialysis without kidney disease) gets NaN, with a warning.

    Examples
    --------
    >>> from data_gen import generate_cohort, oracle_proba
    >>> df = generate_cohort(500, random_state=1)
    >>> post = oracle_proba(df)
    >>> bool(abs(post.sum(axis=1) - 1).max() < 1e-9)
    True
    """
    kb = _kb(knowledge)
    prior = resolve_prevalence(prevalence, kb)
    ll = oracle_log_likelihood(df, missing=missing, recording=recording, knowledge=kb).to_numpy()
    check_prevalence_fits(ll, prior, df.index, kb)
    return pd.DataFrame(_posterior(ll, prior), index=df.index, columns=list(kb.class_names))


class PrevalenceError(ValueError):
    """A prevalence that gives 0 to every class the patient's findings allow."""


def check_prevalence_fits(ll: np.ndarray, prior: np.ndarray, index: pd.Index, kb: Knowledge) -> None:
    """Refuse patients whom no class allowed by the prevalence can explain.

    A class "allows" a patient when the patient's findings have a non-zero likelihood under it
    (``ll`` from :func:`oracle_log_likelihood`). When every allowed class has prevalence 0, the
    posterior is undefined: renormalizing what is left would answer confidently for a class
    the findings rule out. Patients impossible under every class are left to the caller (NaN
    with a warning in the oracle).

    Raises
    ------
    PrevalenceError
        Naming the rows, the classes the findings allow and the classes set to 0.
    """
    zero = prior <= 0
    if not zero.any():
        return
    possible = ll > _IMPOSSIBLE / 2
    unfit = possible.any(axis=1) & ~(possible & ~zero[None, :]).any(axis=1)
    if not unfit.any():
        return
    from .contract import _display_index, _rows

    names = np.asarray(kb.class_names)
    first = np.flatnonzero(unfit)[0]
    allowed = ", ".join(names[possible[first]])
    raise PrevalenceError(
        f"no class allowed by this prevalence fits {_rows(_display_index(index), unfit)}: "
        f"{'its' if unfit.sum() == 1 else 'the first one' + chr(39) + 's'} findings allow only {allowed}, "
        f"and the prevalence sets {', '.join(names[zero])} to 0; give those classes a share > 0, or leave the "
        "prevalence out"
    )


def _posterior(ll: np.ndarray, prior: np.ndarray) -> np.ndarray:
    a = ll + _log(prior)[None, :]
    amax = a.max(axis=1, keepdims=True)
    impossible = amax[:, 0] < _IMPOSSIBLE / 2
    p = np.exp(a - amax)
    p /= p.sum(axis=1, keepdims=True)
    if impossible.any():
        warnings.warn(
            f"{int(impossible.sum())} patient(s) are impossible under every class of the knowledge "
            "base (a declared impossible combination); their posterior is NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        p[impossible] = np.nan
    return p


# --------------------------------------------------------------------------------------------
# Weight of evidence
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Shapley values of the exact oracle
# --------------------------------------------------------------------------------------------
def _column_contributions(tables: _Tables, kb: Knowledge, num: _Numeric):
    """Per-column (N, C) log-probability terms, and for each parent-conditioned column the
    extra term it gains once its parent is known (conditional minus parent-marginal)."""
    t = kb.cells
    cols = kb.column_names
    pos = {c: i for i, c in enumerate(cols)}
    n = num.binary.shape[0]
    contrib = np.empty((len(cols), n, t.n_cells))
    switch = {}
    idx = tables.states(num)
    for j, col in enumerate(t.binary):
        par = t.parent[j]
        if par < 0:
            contrib[pos[col]] = tables.weights[idx[:, j]]
        else:
            # marginal over the parent: the "parent not recorded" states (4, 5) or missing (6)
            v = num.binary[:, j]
            marg_state = 9 + np.where(v == 1, 0, np.where(v == 0, 1, 2))  # parent unknown
            marginal = tables.weights[tables.offsets[j] + marg_state]
            contrib[pos[col]] = marginal
            switch[pos[col]] = (pos[t.binary[par]], tables.weights[idx[:, j]] - marginal)
    nb = len(t.binary)
    for j, col in enumerate(t.categorical):
        contrib[pos[col]] = tables.weights[idx[:, nb + j]]
    for j, col in enumerate(t.continuous):
        contrib[pos[col]] = tables.continuous_loglik(num.continuous[:, j], j)
    return contrib, switch


def _class_lse_many(ll: np.ndarray, kb: Knowledge) -> np.ndarray:
    """(..., C) log P(. | cell) -> (..., K) log P(. | class)."""
    t = kb.cells
    logw = _log(t.cell_prob)
    out = np.empty(ll.shape[:-1] + (len(kb.class_names),))
    for k in range(len(kb.class_names)):
        idx = t.class_cells(k)
        a = ll[..., idx] + logw[idx]
        amax = a.max(axis=-1, keepdims=True)
        out[..., k] = amax[..., 0] + np.log(np.exp(a - amax).sum(axis=-1))
    return out


def oracle_shapley(
    df: pd.DataFrame,
    *,
    n_permutations: int = 64,
    random_state=0,
    prevalence=None,
    missing: str = "model",
    recording=None,
    knowledge=None,
) -> Evidence:
    """Shapley values of the oracle's centred log posterior, estimated over random permutations.

    The game: the value of a set S of columns is the centred log posterior the oracle gives
    when only the columns in S are known (the others summed out exactly, latent subtypes
    included). Unlike :func:`weight_of_evidence`, this accounts for clues that share a latent
    cause (kidney disease, dialysis and PTH all point to the renal MPC subtype), so the values
    add up exactly to the posterior: every permutation's marginal contributions sum to
    ``total - base``, so ``residual`` is 0 up to rounding. The only error is Monte Carlo:
    antithetic permutation pairs are used and ``values`` are the mean over
    ``n_permutations``.

    Cost grows as patients × permutations × columns × cells; a few thousand patients with 64
    permutations take seconds to a minute.
    """
    kb, model_missing, regime = _setup(knowledge, missing, recording)
    if not isinstance(n_permutations, int) or n_permutations < 2 or n_permutations % 2:
        raise ValueError(f"n_permutations must be an even integer >= 2 (antithetic pairs), got {n_permutations!r}")
    from .sampler import _entropy

    rng = np.random.default_rng(np.random.SeedSequence(_entropy(random_state)))
    prior = resolve_prevalence(prevalence, kb)
    log_prior = _log(prior)
    tables = _cached_tables(kb, model_missing, regime)
    num = _numeric(df, kb)
    n, J, K = len(df), len(kb.column_names), len(kb.class_names)
    values = np.zeros((n, J, K))
    total = np.empty((n, K))
    step = max(1, (1 << 22) // (J * kb.cells.n_cells))  # patients per batch, bounding memory
    perms = []
    for _ in range(n_permutations // 2):
        p = rng.permutation(J)
        perms += [p, p[::-1]]
    for s in range(0, n, step):
        sl = slice(s, s + step)
        chunk = _Numeric(num.binary[sl], num.categorical[sl], num.continuous[sl])
        contrib, switch = _column_contributions(tables, kb, chunk)
        m = contrib.shape[1]
        children_of = {}
        for child, (par, _) in switch.items():
            children_of.setdefault(par, []).append(child)
        for perm in perms:
            ll = np.zeros((m, kb.cells.n_cells))
            prev = _class_lse_many(ll, kb) + log_prior
            prev -= prev.mean(axis=1, keepdims=True)
            known = np.zeros(J, dtype=bool)
            for j in perm:
                ll = ll + contrib[j]
                if j in switch and known[switch[j][0]]:
                    ll = ll + switch[j][1]
                for child in children_of.get(j, ()):
                    if known[child]:
                        ll = ll + switch[child][1]
                known[j] = True
                cur = _class_lse_many(ll, kb) + log_prior
                cur -= cur.mean(axis=1, keepdims=True)
                values[sl, j, :] += cur - prev
                prev = cur
        total[sl] = prev
    values /= len(perms)
    base = log_prior - log_prior.mean()
    residual = total - base[None, :] - values.sum(axis=1)
    return Evidence(values, base, total, residual, kb.column_names, kb.class_names, df.index)
