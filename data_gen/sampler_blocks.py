"""The sampler's block generator: per-cell thresholds, seeded streams, one block at a time.

Design: patients are generated in fixed blocks of ``BLOCK_SIZE`` rows, block ``b`` drawing from
its own ``numpy.random.Generator`` seeded by ``SeedSequence(entropy, spawn_key=(stream, b))``,
always for the full block, so any row range is identical to the same rows of the whole cohort.
The knowledge base's cell table is compiled once per call into per-cell thresholds
(:class:`_Plan`, :class:`_InverseCDF`); a draw becomes a value by one or two comparisons,
written straight into preallocated arrays that the returned frame wraps without copying. The
public entry points (:func:`data_gen.generate_cohort`, :func:`data_gen.iter_cohort`) are in
:mod:`data_gen.sampler`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri  # scipy is a dependency of scikit-learn

from .knowledge import Knowledge
from .recording import RecordingMixture

BLOCK_SIZE = 1 << 15
LATENT_PREFIX = "latent_"
_LABEL_STREAM, _FEATURE_STREAM, _COUNT_STREAM, _RECORDING_STREAM = 0, 1, 2, 3


def _rng(entropy: int, stream: int, block: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(stream, block)))



# --------------------------------------------------------------------------------------------
# The generator
#
# Every random number comes from the block's feature Generator (and, with a class mix, the
# block's label Generator), always for the full block, in this order:
#
#   label stream   u_class (BLOCK_SIZE uniforms), only when classes are drawn from a mix
#   feature stream u_cell; then one uniform per binary column (roots before conditioned
#                  columns); then one per categorical column; then for each continuous column
#                  one uniform for missingness (and the point mass at zero) followed by its value
#                  draw: a uniform (truncated normal, by inverse CDF) or a standard normal
#                  (log-normal)
#
# A draw is turned into a value by comparing the uniform with per-cell thresholds compiled
# once per call (see _Plan): for a binary column [0, miss) is NA, [miss, miss + (1 - miss) p)
# is 1 and the rest 0, so missingness and value are independent and each has exactly its
# probability. Only the rows asked for are transformed; they are written straight into the
# preallocated output arrays, which the returned frame then wraps without copying.
# --------------------------------------------------------------------------------------------
_NEVER = 2.0  # a threshold no uniform in [0, 1) reaches
_Q_LO, _Q_HI = np.finfo(float).tiny, 1.0 - 2.0**-53  # keep ndtri finite
_FACTOR = np.array([1.0, 0.0, np.nan])  # continuous value state: observed, zero, NA


def _scalar_or(arr: np.ndarray):
    """A float when every cell has the same value (a comparison with it needs no gather)."""
    arr = np.asarray(arr, dtype=float)
    return float(arr[0]) if (arr == arr[0]).all() else np.ascontiguousarray(arr)


def _upper(miss: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Upper end of the interval [miss, miss + (1 - miss) p) of a uniform that means 'present'."""
    return np.where(p >= 1, 1.0, miss + (1.0 - miss) * p)


class _Plan:
    """Per-cell thresholds and parameters compiled from the cell table for the sampler."""

    def __init__(self, kb: Knowledge):
        t = kb.cells
        C = t.n_cells
        K = len(kb.class_names)
        if K > 127:
            raise ValueError(f"at most 127 classes are supported, the knowledge base has {K}")
        self.n_cells = C
        self.cell_class = np.asarray(t.cell_class, dtype=np.int8)
        self.cell_dtype = np.min_scalar_type(max(C - 1, 0))
        cdfs, cells = [], []
        for k in range(K):
            idx = t.class_cells(k)
            cum = np.cumsum(t.cell_prob[idx])
            cdfs.append(cum / cum[-1] if len(idx) and cum[-1] > 0 else cum)
            cells.append(idx)
        self.cell_lookup = _InverseCDF(cdfs, cells)

        # binary columns, roots first: (j, na threshold, value threshold, latent threshold, parent)
        parents = {int(p) for p in t.parent if p >= 0}
        roots = [j for j in range(len(t.binary)) if t.parent[j] < 0]
        children = [j for j in range(len(t.binary)) if t.parent[j] >= 0]
        self.binary = []
        for j in roots + children:
            miss = t.binary_missing[j]
            par = int(t.parent[j])
            if par < 0:
                one = _scalar_or(_upper(miss, t.p1[j]))
            else:
                # indexed by cell + C * (latent value of the parent)
                one = np.concatenate([_upper(miss, t.p_given[j, 0]), _upper(miss, t.p_given[j, 1])])
            # a parent's value exists even when it is not recorded (so that its child follows
            # P(child | cell) with the parent summed out, as the oracle assumes): within [0, miss)
            # the rescaled uniform u / miss decides it
            latent = _scalar_or(miss * t.p1[j]) if j in parents else None
            self.binary.append((j, _scalar_or(miss), one, latent, par))

        # categorical: code = sum_k [u >= thr_k] - [u < miss]; thr_k = miss + (1 - miss) cum_{k-1}
        self.categorical = []
        for j in range(len(t.categorical)):
            miss = t.cat_missing[j]
            probs = t.cat_probs[j]
            cum = np.cumsum(probs, axis=1)
            tail = np.cumsum(probs[:, ::-1], axis=1)[:, ::-1]  # P(level >= k)
            thr = [
                _scalar_or(np.where(tail[:, k] > 0, miss + (1.0 - miss) * cum[:, k - 1], _NEVER))
                for k in range(1, probs.shape[1])
            ]
            self.categorical.append((j, _scalar_or(miss), thr))

        self.continuous = []
        for j in range(len(t.continuous)):
            miss = t.cont_missing[j]
            prm = t.cont_params[j]
            if t.cont_dist[j] == "normal":
                lo, hi = t.cont_bounds[j]
                mu, sd = prm["mean"], prm["sd"]
                a = ndtr((lo - mu) / sd)
                w = ndtr((hi - mu) / sd) - a
                self.continuous.append(
                    (j, "normal", _scalar_or(miss), (_scalar_or(mu), _scalar_or(sd), _scalar_or(a), _scalar_or(w), lo, hi))
                )
            else:
                zero = _scalar_or(_upper(miss, prm["zero"]))
                self.continuous.append(
                    (j, "lognormal", _scalar_or(miss), (_scalar_or(np.log(prm["median"])), _scalar_or(np.log(prm["gsd"])), zero))
                )

    def cells(self, cls: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The cell of each patient given its class and a uniform (inverse CDF within the class)."""
        return self.cell_lookup(cls, u)


class _InverseCDF:
    """Exact inverse-CDF lookup in one of several discrete distributions.

    Row ``r`` maps a uniform ``u`` to ``values[r][min(searchsorted(cdf[r], u, 'right'), n - 1)]``.
    A guide table over ``BINS`` equal bins of [0, 1) answers every bin that no CDF step falls
    inside; only uniforms in the few other bins need the binary search.
    """

    BINS = 1 << 12

    def __init__(self, cdfs, values):
        M = self.BINS
        self.cdfs = [np.asarray(c, dtype=float) for c in cdfs]
        self.values = [np.asarray(v, dtype=np.intp) for v in values]
        top = max([int(v.max()) for v in self.values if len(v)] + [0])
        dtype = np.int16 if top < np.iinfo(np.int16).max else np.int64
        lo = np.arange(M) / M
        hi = (np.arange(M) + 1) / M
        table = np.full((len(self.cdfs), M), -1, dtype=dtype)
        for r, (cdf, vals) in enumerate(zip(self.cdfs, self.values)):
            if len(cdf) == 0:
                continue
            at_lo = np.searchsorted(cdf, lo, side="right")  # steps <= lo
            below_hi = np.searchsorted(cdf, hi, side="left")  # steps < hi
            table[r] = np.where(at_lo == below_hi, vals[np.minimum(at_lo, len(cdf) - 1)], -1)
        self.table = table.ravel()

    def __call__(self, row, u: np.ndarray) -> np.ndarray:
        key = (u * self.BINS).astype(np.intp)  # exact: BINS is a power of two, u < 1
        if row is not None:
            key += np.asarray(row, dtype=np.intp) * self.BINS
        out = self.table.take(key, mode="wrap").astype(np.intp)
        miss = np.flatnonzero(out < 0)
        if len(miss):
            rows = np.zeros(len(miss), dtype=np.intp) if row is None else row[miss]
            for r in np.unique(rows):
                sel = miss[rows == r]
                pos = np.searchsorted(self.cdfs[r], u[sel], side="right")
                np.minimum(pos, len(self.cdfs[r]) - 1, out=pos)
                out[sel] = self.values[r][pos]
        return out


def _gather(table, cell: np.ndarray, out: np.ndarray):
    """table[cell] into out, or the scalar itself."""
    if isinstance(table, float):
        return table
    return np.take(table, cell, out=out, mode="wrap")  # cell is always in range


def _generate(kb: Knowledge, entropy: int, prev, labels, start: int, stop: int, latent: bool, regime=None) -> pd.DataFrame:
    t = kb.cells
    plan = _Plan(kb)
    C = plan.n_cells
    m = stop - start
    n_bin, n_cat, n_cont = len(t.binary), len(t.categorical), len(t.continuous)
    # outputs, one contiguous row per column; the frame wraps these rows without copying
    out_val = np.empty((n_bin, m), dtype=np.int8)
    out_na = np.empty((n_bin, m), dtype=bool)
    out_cat = np.empty((n_cat, m), dtype=np.int8)
    out_cont = np.empty((n_cont, m))
    out_class = np.empty(m, dtype=np.int8)
    out_cell = np.empty(m, dtype=plan.cell_dtype) if latent else None

    class_lookup = None if prev is None else _InverseCDF([np.cumsum(prev)], [np.arange(len(prev))])
    all_positive = prev is None or bool((prev > 0).all())
    S = BLOCK_SIZE
    u = np.empty(S)  # the uniform of the current column, for the whole block
    w = np.empty(S)  # the value draw of a continuous column
    g1, g2 = np.empty(S), np.empty(S)  # gathered thresholds / parameters
    t1 = np.empty(S, dtype=bool)
    i1 = np.empty(S, dtype=np.int8)

    first, last = start // S, (stop - 1) // S if stop > start else start // S - 1
    for b in range(first, last + 1):
        b0 = b * S
        lo, hi = max(start, b0), min(stop, b0 + S)
        s0, s1 = lo - b0, hi - b0  # rows of the block that are returned
        o0, o1 = lo - start, hi - start  # where they go in the output
        r = s1 - s0
        us, ws, h1, h2, tb, state = u[s0:s1], w[s0:s1], g1[:r], g2[:r], t1[:r], i1[:r]
        rng = _rng(entropy, _FEATURE_STREAM, b)

        # class and cell
        if labels is None:
            cls = class_lookup(None, _rng(entropy, _LABEL_STREAM, b).random(S)[s0:s1])
            if not all_positive:
                # a class with zero prevalence can never be drawn even at the edge of a float
                cls = _skip_zero(cls, prev)
        else:
            cls = labels[lo:hi]
        rng.random(S, out=u)
        cell = plan.cells(cls, us)
        np.take(plan.cell_class, cell, out=out_class[o0:o1])
        if out_cell is not None:
            out_cell[o0:o1] = cell

        # binary
        latents = {}
        for j, miss, one, lat, par in plan.binary:
            rng.random(S, out=u)
            na, val = out_na[j, o0:o1], out_val[j, o0:o1]
            np.less(us, _gather(miss, cell, h1), out=na)
            if par < 0:
                thr = _gather(one, cell, h2)
            else:
                idx = cell + C * latents[par]
                thr = np.take(one, idx, out=h2, mode="wrap")
            np.less(us, thr, out=tb)
            np.not_equal(tb, na, out=val)  # 1 where present and below the value threshold
            if lat is not None:
                lv = np.less(us, _gather(lat, cell, h1))
                np.logical_or(lv, val, out=lv)
                latents[j] = lv

        # categorical
        for j, miss, thrs in plan.categorical:
            rng.random(S, out=u)
            code = out_cat[j, o0:o1]
            np.greater_equal(us, _gather(thrs[0], cell, h1), out=code)
            for thr in thrs[1:]:
                np.greater_equal(us, _gather(thr, cell, h1), out=tb)
                code += tb
            np.less(us, _gather(miss, cell, h1), out=tb)
            code -= tb

        # continuous
        for j, dist, miss, prm in plan.continuous:
            rng.random(S, out=u)
            x = out_cont[j, o0:o1]
            if dist == "normal":
                mu, sd, a, width, lo_b, hi_b = prm
                rng.random(S, out=w)
                # inverse-CDF sampling of the normal truncated to the contract range
                q = np.multiply(ws, _gather(width, cell, h1), out=h1)
                np.add(q, _gather(a, cell, h2), out=q)
                np.clip(q, _Q_LO, _Q_HI, out=q)
                ndtri(q, out=q)
                np.multiply(q, _gather(sd, cell, h2), out=q)
                np.add(q, _gather(mu, cell, h2), out=x)
                if np.isfinite(lo_b) or np.isfinite(hi_b):
                    np.clip(x, lo_b, hi_b, out=x)
                np.less(us, _gather(miss, cell, h1), out=state)
                state *= 2  # 0: observed, 2: NA
            else:
                logmed, loggsd, zero = prm
                rng.standard_normal(S, out=w)
                z = np.multiply(ws, _gather(loggsd, cell, h1), out=h1)
                np.add(z, _gather(logmed, cell, h2), out=z)
                np.exp(z, out=x)
                np.less(us, _gather(zero, cell, h1), out=state)  # 1: zero, 2: NA
                np.less(us, _gather(miss, cell, h1), out=tb)
                state += tb
            # x * 1 = x, x * 0 = 0 and x * NaN = NaN: exact and without masked writes
            np.multiply(x, _FACTOR.take(state, mode="wrap", out=h1), out=x)

        if regime is not None:
            _mask_block(regime, _rng(entropy, _RECORDING_STREAM, b), s0, s1,
                        out_val[:, o0:o1], out_na[:, o0:o1], out_cat[:, o0:o1], out_cont[:, o0:o1])

    return _assemble(kb, out_val, out_na, out_cat, out_cont, out_class, out_cell, start)


def _mask_block(regime, rng, s0: int, s1: int, val, na, cat, cont):
    """Blank the values that the regime does not report, for rows ``s0:s1`` of one block.

    For a mixture, one uniform per row of the full block first picks each patient's component.
    Then one uniform per column for every row of the full block, in the order binary,
    categorical, continuous (as the sampler's own draws), so any row range gives the same
    mask; a value is kept when its uniform falls below the rate of its own value (in the
    patient's component), so the mask depends only on the column and its value.
    """
    u = np.empty(BLOCK_SIZE)
    us = u[s0:s1]
    if isinstance(regime, RecordingMixture):
        rng.random(BLOCK_SIZE, out=u)
        comp = np.minimum(np.searchsorted(np.cumsum(regime.weights), us, side="right"), len(regime.weights) - 1)
        bins = np.stack([c.binary for c in regime.components])  # (R, Jb, 2)
        cats = [np.stack([np.append(c.categorical[j], 1.0) for c in regime.components]) for j in range(cat.shape[0])]
        conts = np.stack([c.continuous for c in regime.components])  # (R, Jn, 2)
    else:
        comp = 0
        bins = regime.binary[None]
        cats = [np.append(regime.categorical[j], 1.0)[None] for j in range(cat.shape[0])]
        conts = regime.continuous[None]
    for j in range(val.shape[0]):
        rng.random(BLOCK_SIZE, out=u)
        blank = us >= bins[comp, j, 1 - val[j]]  # column 0 holds the rate of a 1
        np.logical_or(na[j], blank, out=na[j])
        val[j][blank] = 0
    for j in range(cat.shape[0]):
        rng.random(BLOCK_SIZE, out=u)
        code = cat[j]
        code[us >= cats[j][comp, code]] = -1  # code -1 (not recorded) reads the rate 1 appended last
    for j in range(cont.shape[0]):
        rng.random(BLOCK_SIZE, out=u)
        x = cont[j]
        x[us >= conts[comp, j, (x == 0).astype(np.intp)]] = np.nan  # a value already NaN stays NaN


def _skip_zero(cls: np.ndarray, prev: np.ndarray) -> np.ndarray:
    if (prev[cls] > 0).all():
        return cls
    nz = np.flatnonzero(prev > 0)
    bad = prev[cls] == 0
    # map to the nearest class with positive share (only at floating-point edges)
    cls = cls.copy()
    cls[bad] = nz[np.searchsorted(nz, cls[bad]).clip(max=len(nz) - 1)]
    return cls


def _assemble(kb, out_val, out_na, out_cat, out_cont, out_class, out_cell, start: int = 0) -> pd.DataFrame:
    t = kb.cells
    data = {}
    bpos = {c: i for i, c in enumerate(t.binary)}
    cpos = {c: i for i, c in enumerate(t.categorical)}
    npos = {c: i for i, c in enumerate(t.continuous)}
    for col in kb.column_names:
        if col in bpos:
            j = bpos[col]
            data[col] = pd.arrays.IntegerArray(out_val[j], out_na[j])
        elif col in cpos:
            j = cpos[col]
            data[col] = pd.Categorical.from_codes(out_cat[j], categories=list(t.cat_levels[j]))
        else:
            data[col] = out_cont[npos[col]]
    data["calcification_type"] = pd.Categorical.from_codes(out_class, categories=list(kb.class_names))
    if out_cell is not None:
        factor_names = []
        for cls in kb.classes.values():
            for f in cls.factors:
                if f.name not in factor_names:
                    factor_names.append(f.name)
        for fname in factor_names:
            levels = sorted({lv[fname] for lv in t.cell_levels if fname in lv})
            code_of_cell = np.array([levels.index(lv[fname]) if fname in lv else -1 for lv in t.cell_levels], dtype=np.int8)
            data[LATENT_PREFIX + fname] = pd.Categorical.from_codes(code_of_cell[out_cell], categories=levels)
    # rows are labelled by their position in the cohort, as whole.iloc[start:stop] is; pandas >= 2
    # keeps each array as given (no consolidation into a 2-D block) with copy=False
    index = pd.RangeIndex(start, start + len(out_class))
    return pd.DataFrame(data, index=index, copy=False)

