"""Vectorized, seeded, chunk-invariant sampling of synthetic patients from the knowledge base.

Patients are generated in fixed blocks of ``BLOCK_SIZE`` rows. Block ``b`` draws from its own
``numpy.random.Generator`` seeded by ``SeedSequence(entropy, spawn_key=(stream, b))``, so any
row range of a cohort can be produced on its own (for parallel or distributed generation) and
is identical to the same rows of the whole cohort.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri  # scipy is a dependency of scikit-learn

from .knowledge import CLASSES, Knowledge, load_knowledge

__all__ = ["generate_cohort", "iter_cohort", "BLOCK_SIZE", "resolve_prevalence", "LATENT_PREFIX"]

BLOCK_SIZE = 1 << 15
LATENT_PREFIX = "latent_"
_LABEL_STREAM, _FEATURE_STREAM, _COUNT_STREAM = 0, 1, 2


def resolve_prevalence(prevalence, kb: Knowledge) -> np.ndarray:
    """Validate a class mix (mapping class -> share) and return it in class order.

    Classes left out get 0. Shares must be non-negative and sum to 1 (within 1e-6).
    """
    if prevalence is None:
        return np.array([kb.classes[k].prevalence for k in kb.class_names])
    if not isinstance(prevalence, Mapping):
        raise ValueError(f"prevalence must be a mapping class -> share, got {type(prevalence).__name__}")
    unknown = [k for k in prevalence if k not in kb.classes]
    if unknown:
        raise ValueError(f"prevalence names unknown classes {unknown}; expected some of {list(kb.class_names)}")
    out = np.zeros(len(kb.class_names))
    for i, k in enumerate(kb.class_names):
        v = prevalence.get(k, 0.0)
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v < 0:
            raise ValueError(f"prevalence of {k!r} must be a finite number >= 0, got {v!r}")
        out[i] = float(v)
    if abs(out.sum() - 1.0) > 1e-6:
        raise ValueError(f"prevalence shares must sum to 1, got {out.sum():.6g} from {dict(prevalence)}")
    return out


def _entropy(random_state) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63))
    if isinstance(random_state, np.random.SeedSequence):
        return int(random_state.generate_state(2, np.uint64).astype(object).dot([1, 2**64]))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state)
    raise ValueError(
        f"random_state must be None, a non-negative int, a numpy SeedSequence or Generator; got {random_state!r}"
    )


def _rng(entropy: int, stream: int, block: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(stream, block)))


def _check_n(n, name="n") -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


def generate_cohort(
    n: int | None = None,
    *,
    random_state=None,
    prevalence: Mapping[str, float] | None = None,
    counts: Mapping[str, int] | None = None,
    rows: tuple[int, int] | None = None,
    latent: bool = False,
    knowledge: Knowledge | str | None = None,
) -> pd.DataFrame:
    """Generate synthetic patients with diffuse pulmonary calcification.

    Parameters
    ----------
    n : int
        Number of patients. Omit it when ``counts`` is given.
    random_state : int, numpy.random.SeedSequence, numpy.random.Generator or None
        Seed. The same seed gives the identical frame on every run and platform.
    prevalence : mapping of class -> share, optional
        Class mix overriding the knowledge base's default prevalence (e.g. a dialysis clinic).
    counts : mapping of class -> int, optional
        Exact number of patients of each class (classes left out get 0); their order is
        shuffled. Mutually exclusive with ``prevalence``.
    rows : (start, stop), optional
        Return only these rows of the ``n``-patient cohort; identical to slicing the whole.
    latent : bool, default False
        Also return the latent subtypes as ``latent_<factor>`` columns (never model inputs).
    knowledge : Knowledge or path, optional
        Knowledge base; defaults to the shipped one.

    Returns
    -------
    pandas.DataFrame
        The input-contract columns (binary as nullable ``Int8``, ``sex`` and ``zone`` as
        categoricals, continuous as ``float64``; missing values are NA), plus
        ``calcification_type`` (categorical) and, with ``latent=True``, the latent columns.

    Examples
    --------
    >>> from data_gen import generate_cohort
    >>> df = generate_cohort(1000, random_state=0)
    >>> df.shape
    (1000, 53)
    >>> df["calcification_type"].value_counts().index[0]
    'dystrophic'
    """
    kb = knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)
    if counts is not None:
        if prevalence is not None:
            raise ValueError("give either prevalence or counts, not both")
        if not isinstance(counts, Mapping):
            raise ValueError(f"counts must be a mapping class -> int, got {type(counts).__name__}")
        unknown = [k for k in counts if k not in kb.classes]
        if unknown:
            raise ValueError(f"counts names unknown classes {unknown}; expected some of {list(kb.class_names)}")
        count_arr = np.array([_check_n(counts.get(k, 0), f"counts[{k!r}]") for k in kb.class_names])
        total = int(count_arr.sum())
        if n is not None and _check_n(n) != total:
            raise ValueError(f"n={n} does not equal the sum of counts ({total})")
        n = total
        prev = None
    else:
        if n is None:
            raise ValueError("n is required unless counts is given")
        n = _check_n(n)
        prev = resolve_prevalence(prevalence, kb)
        count_arr = None
    start, stop = (0, n) if rows is None else rows
    if not (isinstance(start, numbers.Integral) and isinstance(stop, numbers.Integral) and 0 <= start <= stop <= n):
        raise ValueError(f"rows must be (start, stop) with 0 <= start <= stop <= n={n}, got {rows!r}")
    entropy = _entropy(random_state)
    labels = None
    if count_arr is not None:
        labels = np.repeat(np.arange(len(count_arr)), count_arr)
        _rng(entropy, _COUNT_STREAM).shuffle(labels)
    return _generate(kb, entropy, prev, labels, int(start), int(stop), latent)


def iter_cohort(
    n: int,
    *,
    chunk_size: int = 100_000,
    random_state=None,
    prevalence=None,
    counts=None,
    latent: bool = False,
    knowledge=None,
) -> Iterator[pd.DataFrame]:
    """Yield a cohort in consecutive chunks; their concatenation equals ``generate_cohort``.

    ``random_state`` must be reproducible (an int or SeedSequence) so that every chunk belongs
    to the same cohort; an int seed is drawn once when None or a Generator is given.
    """
    chunk_size = _check_n(chunk_size, "chunk_size")
    if chunk_size == 0:
        raise ValueError("chunk_size must be positive")
    seed = _entropy(random_state)
    if counts is not None:
        n = sum(int(v) for v in counts.values())
    n = _check_n(n)
    for start in range(0, n, chunk_size):
        yield generate_cohort(
            None if counts is not None else n,
            random_state=seed,
            prevalence=prevalence,
            counts=counts,
            rows=(start, min(n, start + chunk_size)),
            latent=latent,
            knowledge=knowledge,
        )


# --------------------------------------------------------------------------------------------
def _generate(kb: Knowledge, entropy: int, prev, labels, start: int, stop: int, latent: bool) -> pd.DataFrame:
    t = kb.cells
    m = stop - start
    cols = kb.column_names
    n_bin, n_cat, n_cont = len(t.binary), len(t.categorical), len(t.continuous)
    out_bin = np.zeros((n_bin, m), dtype=np.int8)
    out_bin_mask = np.zeros((n_bin, m), dtype=bool)
    out_cat = np.zeros((n_cat, m), dtype=np.int8)
    out_cont = np.zeros((n_cont, m))
    out_cell = np.zeros(m, dtype=np.int64)

    class_cum = None if prev is None else np.cumsum(prev)
    cell_cum = {k: (t.class_cells(k), np.cumsum(t.cell_prob[t.class_cells(k)])) for k in range(len(kb.classes))}
    cat_cum = [np.cumsum(p, axis=1) for p in t.cat_probs]
    order = _binary_order(t)

    first, last = start // BLOCK_SIZE, (stop - 1) // BLOCK_SIZE if stop > start else start // BLOCK_SIZE - 1
    for b in range(first, last + 1):
        b0 = b * BLOCK_SIZE
        lo, hi = max(start, b0), min(stop, b0 + BLOCK_SIZE)
        # always draw a full block, so that any row range reproduces the same patients
        size = BLOCK_SIZE
        rng = _rng(entropy, _FEATURE_STREAM, b)
        if labels is None:
            u_class = _rng(entropy, _LABEL_STREAM, b).random(size)
            cls = np.searchsorted(class_cum, u_class, side="right").clip(max=len(class_cum) - 1)
            # a class with zero prevalence can never be drawn even at the edge of a float
            cls = _skip_zero(cls, prev)
        else:
            cls = np.zeros(size, dtype=np.int64)
            cls[: max(0, min(size, len(labels) - b0))] = labels[b0 : b0 + size]
        u_cell = rng.random(size)
        cell = np.empty(size, dtype=np.int64)
        for k, (idx, cum) in cell_cum.items():
            sel = cls == k
            if sel.any():
                pos = np.searchsorted(cum / cum[-1], u_cell[sel], side="right").clip(max=len(idx) - 1)
                cell[sel] = idx[pos]
        # binary: one uniform per value; below `missing` it is NA, above it the rescaled
        # uniform decides the value, so missingness and value are independent
        u = rng.random((n_bin, size))
        miss = t.binary_missing[:, cell]
        is_na = u < miss
        v = (u - miss) / np.where(miss < 1, 1 - miss, 1.0)
        vals = np.zeros((n_bin, size), dtype=np.int8)
        for j in order:
            par = t.parent[j]
            if par < 0:
                p = t.p1[j, cell]
            else:
                p = np.where(vals[par] == 1, t.p_given[j, 1, cell], t.p_given[j, 0, cell])
            vals[j] = v[j] < p
        # categorical
        u = rng.random((n_cat, size))
        cat_vals = np.zeros((n_cat, size), dtype=np.int8)
        for j in range(n_cat):
            mj = t.cat_missing[j, cell]
            na = u[j] < mj
            vj = (u[j] - mj) / np.where(mj < 1, 1 - mj, 1.0)
            level = (vj[:, None] >= cat_cum[j][cell]).sum(axis=1).clip(max=cat_cum[j].shape[1] - 1)
            cat_vals[j] = np.where(na, -1, level)
        # continuous: one uniform for missing / the point mass at zero, one for the value
        u = rng.random((n_cont, size))
        w = np.clip(rng.random((n_cont, size)), 1e-300, None)
        cont_vals = np.empty((n_cont, size))
        for j in range(n_cont):
            mj = t.cont_missing[j, cell]
            prm = t.cont_params[j]
            if t.cont_dist[j] == "normal":
                lo_b, hi_b = t.cont_bounds[j]
                mu, sd = prm["mean"][cell], prm["sd"][cell]
                a, bnd = ndtr((lo_b - mu) / sd), ndtr((hi_b - mu) / sd)
                # inverse-CDF sampling of the normal truncated to the contract range
                x = np.clip(mu + sd * ndtri(a + w[j] * (bnd - a)), lo_b, hi_b)
            else:
                med, gsd, zero = prm["median"][cell], prm["gsd"][cell], prm["zero"][cell]
                x = med * np.exp(np.log(gsd) * ndtri(w[j]))
                vj = (u[j] - mj) / np.where(mj < 1, 1 - mj, 1.0)
                x = np.where(vj < zero, 0.0, x)
            cont_vals[j] = np.where(u[j] < mj, np.nan, x)
        sl = slice(lo - b0, hi - b0)
        osl = slice(lo - start, hi - start)
        out_bin[:, osl] = vals[:, sl]
        out_bin_mask[:, osl] = is_na[:, sl]
        out_cat[:, osl] = cat_vals[:, sl]
        out_cont[:, osl] = cont_vals[:, sl]
        out_cell[osl] = cell[sl]
    return _assemble(kb, cols, out_bin, out_bin_mask, out_cat, out_cont, out_cell, latent)


def _skip_zero(cls: np.ndarray, prev: np.ndarray) -> np.ndarray:
    if (prev[cls] > 0).all():
        return cls
    nz = np.flatnonzero(prev > 0)
    bad = prev[cls] == 0
    # map to the nearest class with positive share (only at floating-point edges)
    cls = cls.copy()
    cls[bad] = nz[np.searchsorted(nz, cls[bad]).clip(max=len(nz) - 1)]
    return cls


def _binary_order(t) -> list[int]:
    roots = [j for j in range(len(t.binary)) if t.parent[j] < 0]
    return roots + [j for j in range(len(t.binary)) if t.parent[j] >= 0]


def _assemble(kb, cols, out_bin, out_bin_mask, out_cat, out_cont, out_cell, latent) -> pd.DataFrame:
    t = kb.cells
    data = {}
    bpos = {c: i for i, c in enumerate(t.binary)}
    cpos = {c: i for i, c in enumerate(t.categorical)}
    npos = {c: i for i, c in enumerate(t.continuous)}
    for col in cols:
        if col in bpos:
            j = bpos[col]
            data[col] = pd.arrays.IntegerArray(out_bin[j], out_bin_mask[j])
        elif col in cpos:
            j = cpos[col]
            data[col] = pd.Categorical.from_codes(out_cat[j], categories=list(t.cat_levels[j]))
        else:
            data[col] = out_cont[npos[col]]
    cell_class = t.cell_class[out_cell]
    data["calcification_type"] = pd.Categorical.from_codes(cell_class, categories=list(kb.class_names))
    if latent:
        factor_names = []
        for cls in kb.classes.values():
            for f in cls.factors:
                if f.name not in factor_names:
                    factor_names.append(f.name)
        for fname in factor_names:
            levels = sorted({lv[fname] for lv in t.cell_levels if fname in lv})
            code_of_cell = np.array([levels.index(lv[fname]) if fname in lv else -1 for lv in t.cell_levels], dtype=np.int8)
            data[LATENT_PREFIX + fname] = pd.Categorical.from_codes(code_of_cell[out_cell], categories=levels)
    return pd.DataFrame(data, copy=False)


assert tuple(CLASSES) == ("dystrophic", "metastatic", "dpo_nodular", "dpo_dendriform", "pam")
