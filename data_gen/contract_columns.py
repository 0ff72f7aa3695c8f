"""The input contract's detailed check of one column of each kind, value by value.

Design: one function per column kind (binary, categorical, continuous) takes the user's column
as it is, whatever its dtype (numbers, booleans, text a CSV reader could not type, mixed Python
objects), accepts exactly what the contract allows (0/1 and true/false; a level, whatever its
case and surrounding spaces; a number within the column's range and plausible range) and
returns it in canonical form, or raises a :class:`~data_gen.contract_messages.ContractError`
naming every bad row and value and what is allowed (with a hint for decimal commas and for lab
values in another unit). :mod:`data_gen.contract_fast` checks ordinary frames faster and comes
here whenever it finds anything to report.
"""

from __future__ import annotations

import decimal
import re

import numpy as np
import pandas as pd

from .contract_messages import _NOT_RECORDED, ContractError, _fail, _plain, _range_text, _rows, _show

_BINARY_ALLOWED = f"0 or 1 (also true/false), {_NOT_RECORDED}"
_DECIMAL_COMMA = re.compile(r"\s*[-+]?\d*,\d+\s*")
_BINARY_TEXT = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "true": 1, "false": 0}


def _check_column(col: str, spec, s: pd.Series, index: pd.Index):
    if spec.kind == "binary":
        return _binary(col, s, index)
    if spec.kind == "categorical":
        return _categorical(col, s, index, spec.levels)
    return _continuous(col, s, index, spec)


def _absent(spec, n: int):
    """An all-empty column of the canonical type: what an absent column means."""
    if spec.kind == "binary":
        return pd.arrays.IntegerArray(np.zeros(n, dtype=np.int8), np.ones(n, dtype=bool))
    if spec.kind == "categorical":
        return pd.Categorical.from_codes(np.full(n, -1), categories=list(spec.levels))
    return np.full(n, np.nan)


def _real_dtype(dtype) -> bool:
    """Booleans, integers and floats (numpy, nullable, sparse or Arrow); not complex, not categorical."""
    if pd.api.types.is_bool_dtype(dtype):
        return True
    if isinstance(dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(dtype):
        return False
    if isinstance(dtype, pd.SparseDtype):
        dtype = dtype.subtype
    return np.dtype(getattr(dtype, "numpy_dtype", dtype)).kind in "biuf"


def _binary(col: str, s: pd.Series, index: pd.Index) -> pd.arrays.IntegerArray:
    if _real_dtype(s.dtype):
        vals = s.to_numpy(dtype=float, na_value=np.nan)
    else:
        obj = s.astype(object).to_numpy()
        # text a CSV reader could not type, mixed Python values, complex numbers, dates...
        vals = _BINARY_FROM_OBJECT(obj).astype(float)
        bad = np.isinf(vals)
        if bad.any():
            _fail(col, index, bad, obj[bad], _BINARY_ALLOWED)
    bad = ~np.isnan(vals) & (vals != 0) & (vals != 1)
    if bad.any():
        _fail(col, index, bad, vals[bad], _BINARY_ALLOWED)
    na = np.isnan(vals)
    return pd.arrays.IntegerArray(np.where(na, 0, vals).astype(np.int8), na)


def _binary_value(v) -> float:
    """0/1 for an accepted binary value, NaN for not recorded, inf for anything else."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return np.nan
    if isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
        return float(v) if v in (0, 1) else np.inf
    if isinstance(v, str):
        t = v.strip().lower()
        return np.nan if t == "" else float(_BINARY_TEXT.get(t, np.inf))
    return np.inf


_BINARY_FROM_OBJECT = np.frompyfunc(_binary_value, 1, 1)


def _categorical(col: str, s: pd.Series, index: pd.Index, levels) -> pd.Categorical:
    levels = list(levels)
    if isinstance(s.dtype, pd.CategoricalDtype) and list(s.cat.categories) == levels:
        return pd.Categorical(s)
    obj = s.astype(object).to_numpy()
    try:
        codes = pd.Index(levels).get_indexer(obj)  # -1: not recorded, or not a level
    except TypeError:  # unhashable cells (lists, dicts): none of them is a level
        codes = np.array([levels.index(v) if isinstance(v, str) and v in levels else -1 for v in obj])
    unmatched = (codes < 0) & ~_is_na(obj)
    if unmatched.any():
        # surrounding spaces and the case of a level do not matter (" Male" is male), as in
        # binary columns; a blank cell (only spaces) is empty
        folded = {lv.casefold(): k for k, lv in enumerate(levels)}
        for i in np.flatnonzero(unmatched):
            v = obj[i]
            if isinstance(v, str):
                t = v.strip().casefold()
                codes[i] = folded.get(t, -2 if t else -1)
            else:
                codes[i] = -2
        bad = codes == -2
        if bad.any():
            _fail(col, index, bad, obj[bad], " / ".join(levels) + f", {_NOT_RECORDED}")
    return pd.Categorical.from_codes(codes, categories=levels)


def _is_na(obj: np.ndarray) -> np.ndarray:
    """Element-wise "not recorded" of an object array (None, NaN, pd.NA, NaT)."""
    return np.asarray(pd.isna(obj), dtype=bool)


def _real_or_text(v) -> bool:
    return isinstance(v, (str, int, float, np.integer, np.floating, decimal.Decimal)) and not isinstance(v, (bool, np.bool_))


def _continuous(col: str, s: pd.Series, index: pd.Index, spec) -> np.ndarray:
    allowed = f"a number ({_range_text(spec)}), {_NOT_RECORDED}"
    if pd.api.types.is_bool_dtype(s.dtype):
        bad = ~s.isna().to_numpy()
        if bad.any():
            _fail(col, index, bad, s.to_numpy()[bad], allowed)
        vals = np.full(len(s), np.nan)
    elif _real_dtype(s.dtype):
        vals = s.to_numpy(dtype=float, na_value=np.nan)
    else:
        obj = s.astype(object).to_numpy()
        na = _is_na(obj)
        # only text and real numbers are converted; booleans, bytes, complex numbers, dates... are not numbers here
        kind_ok = np.fromiter((_real_or_text(v) for v in obj), dtype=bool, count=len(obj)) | na
        conv = pd.to_numeric(pd.Series(np.where(kind_ok, obj, None), dtype=object), errors="coerce")
        conv = conv.to_numpy(dtype=float, na_value=np.nan)
        blank = np.array([isinstance(v, str) and v.strip() == "" for v in obj], dtype=bool)
        bad = ~kind_ok | (np.isnan(conv) & ~na & ~blank)
        if bad.any():
            if any(isinstance(v, str) and _DECIMAL_COMMA.fullmatch(v) for v in obj[bad]):
                allowed += " (decimal commas? read the file with --decimal ',', decimal=',' in Python)"
            _fail(col, index, bad, obj[bad], allowed)
        vals = conv
    finite_or_nan = np.isnan(vals) | np.isfinite(vals)
    lo_ok = np.ones(len(vals), dtype=bool)
    if spec.min is not None:
        lo_ok = vals > spec.min if spec.min_exclusive else vals >= spec.min
    hi_ok = np.ones(len(vals), dtype=bool) if spec.max is None else vals <= spec.max
    bad = ~np.isnan(vals) & ~(lo_ok & hi_ok & finite_or_nan)
    if bad.any():
        _fail(col, index, bad, vals[bad], f"{_range_text(spec)}, {_NOT_RECORDED}")
    _check_plausible(col, index, spec, vals)
    return vals


def _check_plausible(col: str, index: pd.Index, spec, vals: np.ndarray) -> None:
    """Refuse values outside the column's plausible range; suggest the conversion from its
    alternative unit when the value is plausible there (the knowledge base declares both)."""
    lo, hi = spec.plausible_min, spec.plausible_max
    if lo is None and hi is None:
        return
    lo = -np.inf if lo is None else lo
    hi = np.inf if hi is None else hi
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(vals) & ((vals < lo) | (vals > hi))
    if not bad.any():
        return
    unit = f" {spec.unit}" if spec.unit else ""
    plausible = _range_text(spec)
    allowed = f"{plausible}, {_NOT_RECORDED}"
    if spec.alt_unit is not None:
        converted = vals * spec.alt_factor
        other = bad & (converted >= lo) & (converted <= hi)
        if other.any():
            first = np.flatnonzero(other)[0]
            raise ContractError(
                f"column {col!r}: {_rows(index, bad)} {'have' if bad.sum() > 1 else 'has'} "
                f"value{'s' if bad.sum() > 1 else ''} {_show(vals[bad])}, implausible in {spec.unit} "
                f"(plausible: {plausible}) but plausible in {spec.alt_unit}: if these are {spec.alt_unit}, "
                f"multiply by {spec.alt_factor:g} to get {spec.unit} "
                f"({_plain(vals[first])} {spec.alt_unit} = {converted[first]:.3g}{unit}); allowed: {allowed}"
            )
    _fail(col, index, bad, vals[bad], allowed)

