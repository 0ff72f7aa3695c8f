"""A vectorized check of ordinary frames against the input contract, for one patient or many.

Design: most frames that reach :func:`data_gen.validate_frame` are already typed (a CSV read
by pandas, a generated cohort, a frame built by a program): numbers or booleans in binary and
continuous columns, text or a pandas Categorical in categorical ones. For those, all binary
columns are checked at once on one 2-D float array (every value 0, 1 or NaN), all continuous
columns at once against their range and plausible range from the knowledge base (compiled
once per knowledge base into per-column bounds), and each categorical column by one lookup of
its levels; the canonical frame is then built in one constructor call. This path never
reports a problem: whenever it meets anything it does not expect (a bad or out-of-range value,
text in a binary column, a level in another case, an unusual dtype), it gives up and
:mod:`data_gen.contract_columns` checks the frame column by column, so every error message
and warning stays the detailed one. Both paths give identical frames
(``tests/data_gen/test_contract_fast.py``); the speed is measured by
``benchmarks/bench_validate.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .knowledge import Knowledge

#: nullable arrays whose values and mask are read directly (``_data``/``_mask``: the arrays
#: the public constructors ``IntegerArray(values, mask)`` etc. take)
_MASKED = (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)
_PLANS: dict = {}


class _Plan:
    """The contract of one knowledge base as arrays: column kinds, bounds, levels."""

    def __init__(self, kb: Knowledge):
        t = kb.cells
        self.binary, self.categorical, self.continuous = t.binary, t.categorical, t.continuous
        self.levels = [list(lv) for lv in t.cat_levels]
        # built once: a list of categories is turned into an index (and its strings into Arrow) per call
        self.dtypes = [pd.CategoricalDtype(list(lv)) for lv in t.cat_levels]
        # object indexes: looking up a column of Python strings needs no conversion to Arrow
        self.level_index = [pd.Index(list(lv), dtype=object) for lv in t.cat_levels]
        specs = [kb.columns[c] for c in t.continuous]

        def bound(values, default):
            return np.array([default if v is None else float(v) for v in values])[:, None]

        # a missing bound lets every finite value through; finiteness is checked on its own
        self.lo = bound([s.min for s in specs], -np.inf)
        self.lo_strict = np.array([s.min_exclusive and s.min is not None for s in specs])[:, None]
        self.hi = bound([s.max for s in specs], np.inf)
        self.plausible_lo = bound([s.plausible_min for s in specs], -np.inf)
        self.plausible_hi = bound([s.plausible_max for s in specs], np.inf)


def _plan(kb: Knowledge) -> _Plan:
    key = (id(kb), kb.sha256)  # the entry holds kb, so its id is not reused while it lives
    hit = _PLANS.get(key)
    if hit is None:
        if len(_PLANS) >= 8:
            _PLANS.pop(next(iter(_PLANS)))
        hit = _PLANS[key] = (kb, _Plan(kb))
    return hit[1]


def column_arrays(df: pd.DataFrame) -> list:
    """Each column's array (ndarray or extension array), by position.

    ``df[c]`` builds a Series per column (~15 us each, most of the budget for one patient over
    52 columns), so the block manager's arrays are read directly where pandas has them.
    """
    iget = getattr(getattr(df, "_mgr", None), "iget_values", None)
    if iget is not None:
        return [iget(i) for i in range(df.shape[1])]
    arrays = [df.iloc[:, i].array for i in range(df.shape[1])]
    return [a.to_numpy() if isinstance(a, pd.arrays.NumpyExtensionArray) else a for a in arrays]


def numbers_into(a, out: np.ndarray, bool_ok: bool) -> bool:
    """Write a numeric column into ``out`` as float (NaN where missing); False for other dtypes."""
    if isinstance(a, np.ndarray):
        if a.dtype.kind in "iuf" or (bool_ok and a.dtype.kind == "b"):
            out[:] = a
            return True
        return False
    if type(a) in _MASKED and (bool_ok or type(a) is not pd.arrays.BooleanArray):
        out[:] = a._data
        out[a._mask] = np.nan
        return True
    return False


def _categorical(a, levels: list, level_index: pd.Index, dtype: pd.CategoricalDtype):
    """The canonical categorical of a column whose every value is a level or missing, else None."""
    if isinstance(a, pd.Categorical):
        return pd.Categorical(a) if list(a.categories) == levels else None
    if not ((isinstance(a, np.ndarray) and a.dtype == object) or isinstance(a.dtype, pd.StringDtype)):
        return None
    obj = np.asarray(a, dtype=object)
    try:
        codes = level_index.get_indexer(pd.Index(obj, dtype=object, copy=False))  # no inference to Arrow strings
    except TypeError:  # unhashable cells
        return None
    if ((codes < 0) & ~np.asarray(pd.isna(obj), dtype=bool)).any():
        return None  # another case, surrounding spaces or not a level: the detailed check decides
    return pd.Categorical.from_codes(codes, dtype=dtype)


def fast_columns(df: pd.DataFrame, kb: Knowledge, names: list[str], absent: list[str]) -> dict | None:
    """The contract columns of ``df`` in canonical form, or None to use the detailed check.

    Parameters
    ----------
    df : pandas.DataFrame
        Patients whose header has passed the contract's checks.
    kb : Knowledge
    names : list of str
        ``str`` of each column of ``df``, in order.
    absent : list of str
        The contract columns ``df`` does not have (read as not recorded).

    Returns
    -------
    dict or None
        Column name -> canonical array in contract order (``Int8`` binary, categorical,
        ``float64`` continuous), as :func:`data_gen.validate_frame` builds them; None when any
        column has an unexpected dtype or any value the contract refuses.
    """
    plan = _plan(kb)
    n = len(df)
    pos = {c: i for i, c in enumerate(names)}
    absent = set(absent)
    arrays = column_arrays(df)
    out = {}
    values = np.empty((len(plan.binary), n))
    for j, col in enumerate(plan.binary):
        if col in absent:
            values[j] = np.nan
        elif not numbers_into(arrays[pos[col]], values[j], bool_ok=True):
            return None
    na, one = np.isnan(values), values == 1
    if np.count_nonzero(na) + np.count_nonzero(one) + np.count_nonzero(values == 0) != values.size:
        return None
    x = np.empty((len(plan.continuous), n))
    for j, col in enumerate(plan.continuous):
        if col in absent:
            x[j] = np.nan
        elif not numbers_into(arrays[pos[col]], x[j], bool_ok=False):
            return None
    with np.errstate(invalid="ignore"):
        above = np.where(plan.lo_strict, x > plan.lo, x >= plan.lo)
        inside = np.isfinite(x) & above & (x <= plan.hi) & (x >= plan.plausible_lo) & (x <= plan.plausible_hi)
    if not (inside | np.isnan(x)).all():
        return None
    for j, col in enumerate(plan.categorical):
        if col in absent:
            out[col] = pd.Categorical.from_codes(np.full(n, -1), dtype=plan.dtypes[j])
            continue
        out[col] = _categorical(arrays[pos[col]], plan.levels[j], plan.level_index[j], plan.dtypes[j])
        if out[col] is None:
            return None
    codes = one.view(np.int8)  # 1 where the value is 1, else 0 (also where it is missing)
    binary = {c: pd.arrays.IntegerArray(codes[j], na[j]) for j, c in enumerate(plan.binary)}
    continuous = {c: x[j] for j, c in enumerate(plan.continuous)}
    return {c: binary[c] if c in binary else continuous[c] if c in continuous else out[c] for c in kb.column_names}


def frame_from_arrays(columns: dict, index: pd.Index) -> pd.DataFrame:
    """``pd.DataFrame(columns, index=index)`` without re-checking arrays already canonical.

    ``DataFrame._from_arrays`` skips the per-column sanitizing of the dict constructor (about
    half of its time for 52 columns); the public constructor is the fallback where pandas has
    no such method.
    """
    from_arrays = getattr(pd.DataFrame, "_from_arrays", None)
    if from_arrays is None:
        result = pd.DataFrame(columns, copy=False)
        result.index = index
        return result
    return from_arrays(list(columns.values()), columns=pd.Index(list(columns)), index=index, verify_integrity=False)
