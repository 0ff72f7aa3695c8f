"""Checking a user's frame against the input contract: one place, clear errors.

The contract (column names, kinds, units, ranges and levels) is declared in the knowledge base's
``[columns]`` section, after ``shared/reference/input-schema.md``. Every entry point that takes
patients (the oracle, the model, the explanations, the CLI) passes them through
:func:`validate_frame` first, so a bad value is refused with a message naming the column, the
row(s), the value(s) and what is allowed, and nothing is silently coerced or dropped.

NaN (an empty cell) always means "not recorded" and is accepted, including a patient with every
column empty. Binary columns accept 0/1, booleans and the text "true"/"false"/"0"/"1".

Design choices that hold for every entry point:

* **Absent columns are not recorded.** A contract column missing from the frame is treated as an
  all-empty column, with one :class:`ContractWarning` listing them (the CLI prints it as a
  notice). Unknown columns stay refused, with a "did you mean" hint, so typos are still caught.
* **Every bad cell at once.** Header problems (unknown or duplicated columns, no rows) are
  refused first; then every column is checked and all its problems are reported together in one
  message, up to :data:`MAX_PROBLEMS` with a count of the rest. :attr:`ContractError.problems`
  holds them one by one.
* **Rows are counted from 1** at the first patient, in the API as in the CLI: a frame's default
  ``RangeIndex`` (0, 1, ...) is shown as rows 1, 2, ...; any other index (an id column, a
  file's rows) is shown as it is.
* **Text is normalized the same way in every column kind**: surrounding whitespace is ignored,
  and so is the case of categorical levels and of ``true``/``false`` (``" Male "`` is ``male``).
* **Lab values in another unit are refused.** A lab column may declare a plausible range and a
  common alternative unit with its conversion factor (``plausible_min``/``plausible_max``,
  ``alt_unit``/``alt_factor`` in ``[columns.*]`` of the knowledge base, each with a source); a
  value outside the plausible range is refused, and when it is plausible in the other unit the
  message gives the conversion (calcium 2.35 is mmol/L: x 4.008 = 9.42 mg/dL).
* **Frames that are not pandas** (polars, pyarrow tables, anything narwhals or the dataframe
  interchange protocol understands) are converted once at the door; anything else is refused
  naming its type's module and how to convert it.

Reading files (dialects, field counts, encodings) is :mod:`data_gen.reader`'s job.
"""

from __future__ import annotations

import decimal
import difflib
import re
import warnings

import numpy as np
import pandas as pd

from .knowledge import Knowledge, load_knowledge

__all__ = [
    "ContractError",
    "ContractWarning",
    "LABEL",
    "MAX_PROBLEMS",
    "validate_frame",
    "canonical_frame",
    "as_pandas",
]

LABEL = "calcification_type"
#: Problems listed in one message; the rest are counted.
MAX_PROBLEMS = 10
_MAX_SHOWN = 5
_MAX_NAME = 60
_MAX_LISTED = 60  # absent columns listed in the notice (all of them, in practice)
_NOT_RECORDED = "or empty for not recorded"
_BINARY_ALLOWED = f"0 or 1 (also true/false), {_NOT_RECORDED}"
_DECIMAL_COMMA = re.compile(r"\s*[-+]?\d*,\d+\s*")
_BINARY_TEXT = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "true": 1, "false": 0}


class ContractError(ValueError):
    """Input that breaks the contract: the message names column, rows, values and what is allowed.

    Attributes
    ----------
    problems : tuple of str
        Each problem on its own (one per column); the message joins them.
    """

    def __init__(self, message: str, problems: tuple[str, ...] | None = None):
        super().__init__(message)
        self.problems = tuple(problems) if problems is not None else (message,)


class ContractWarning(UserWarning):
    """Input that is accepted but read in a way the user should know of (absent columns)."""


def _kb(knowledge) -> Knowledge:
    return knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)


def _show(values) -> str:
    vals = list(values)
    shown = ", ".join(repr(_plain(v)) for v in vals[:_MAX_SHOWN])
    more = f" and {len(vals) - _MAX_SHOWN} more" if len(vals) > _MAX_SHOWN else ""
    return shown + more


def _plain(v):
    if isinstance(v, np.generic):
        v = v.item()
    # 130.0 read from a CSV is shown as the 130 the user typed; 0.5 stays 0.5
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return int(v)
    return v


def _name(c) -> str:
    """A column name for a message, cut short when it is very long (e.g. a whole ;-separated header)."""
    text = repr(str(c))
    return text if len(text) <= _MAX_NAME else text[: _MAX_NAME - 4] + "...'"


def _display_index(index: pd.Index) -> pd.Index:
    """Row labels as messages show them: a default 0-based RangeIndex counts from 1."""
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None:
        return pd.RangeIndex(1, len(index) + 1)
    return index


def _rows(index: pd.Index, mask: np.ndarray) -> str:
    labels = index[mask]
    return f"row{'s' if len(labels) > 1 else ''} {_show(labels)}"


def _fail(column: str, index: pd.Index, mask: np.ndarray, values, allowed: str):
    raise ContractError(
        f"column {column!r}: {_rows(index, mask)} {'have' if mask.sum() > 1 else 'has'} "
        f"value{'s' if mask.sum() > 1 else ''} {_show(values)}; allowed: {allowed}"
    )


def validate_frame(
    df: pd.DataFrame,
    *,
    knowledge: Knowledge | str | None = None,
    id_column: str | None = None,
    label: str = "optional",
    extra: str = "error",
    notice: bool = True,
) -> pd.DataFrame:
    """Check patients against the input contract and return them in canonical form.

    Parameters
    ----------
    df : DataFrame
        One row per patient with the contract's columns. NaN means "not recorded"; an absent
        contract column is not recorded for every patient. A pandas DataFrame, or any frame
        narwhals, the Arrow PyCapsule interface or the dataframe interchange protocol can
        convert (polars, pyarrow tables), see :func:`as_pandas`.
    knowledge : Knowledge or path, optional
        The knowledge base declaring the contract; defaults to the shipped one.
    id_column : str, optional
        A column identifying patients; it becomes the returned frame's index.
    label : {"optional", "required", "forbidden"}
        Whether the label column ``calcification_type`` may, must or must not be present.
    extra : {"error", "ignore"}
        Whether columns outside the contract are refused or left out of the result.
    notice : bool
        Whether absent contract columns are announced with a :class:`ContractWarning`.

    Returns
    -------
    pandas.DataFrame
        The contract columns in contract order (binary as nullable ``Int8``, ``sex`` and
        ``zone`` as categoricals with the contract's levels, continuous as ``float64``), then
        the label (categorical) when present. The index is ``df``'s or the id column.

    Raises
    ------
    ContractError
        A ``ValueError`` naming the column, the offending row(s) and value(s) and what is
        allowed: an unknown or duplicated column, a wrong type, a value out of range or
        implausible in the contract's unit, an unknown category, or no patients at all. All
        bad columns are reported at once (see :attr:`ContractError.problems`).

    Warns
    -----
    ContractWarning
        Contract columns absent from ``df``, read as not recorded.

    Examples
    --------
    >>> import pandas as pd
    >>> from data_gen import validate_frame, load_knowledge
    >>> cols = load_knowledge().column_names
    >>> df = pd.DataFrame({c: [float("nan")] for c in cols})
    >>> validate_frame(df.assign(zone=" Upper")).loc[0, "zone"]
    'upper'
    """
    kb = _kb(knowledge)
    df = as_pandas(df)
    if label not in ("optional", "required", "forbidden"):
        raise ValueError(f"label must be 'optional', 'required' or 'forbidden', got {label!r}")
    if extra not in ("error", "ignore"):
        raise ValueError(f"extra must be 'error' or 'ignore', got {extra!r}")
    if df.shape[1] == 0:
        raise ContractError("empty input: no columns; expected the contract's columns, e.g. " + ", ".join(kb.column_names[:3]) + ", ...")
    if isinstance(df.columns, pd.MultiIndex):
        raise ContractError("the columns have several levels (a MultiIndex); expected one flat header of contract column names")
    names = [str(c) for c in df.columns]
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise ContractError(f"{_duplicated(dup)}; each column must appear once")
    allowed_extra = {LABEL} if label != "forbidden" else set()
    if id_column is not None:
        if id_column not in names:
            raise ContractError(
                f"id column {id_column!r} is not in the input; its columns are "
                f"{', '.join(_name(c) for c in names[:5])}{' and more' if len(names) > 5 else ''}"
            )
        allowed_extra.add(id_column)
    unknown = [c for c in names if c not in kb.columns and c not in allowed_extra]
    missing = [c for c in kb.column_names if c not in names]
    if unknown and extra == "error":
        note = _unknown_note(names)
        if note:
            raise ContractError(note)
        label_note = f", the label {LABEL!r}" if label != "forbidden" else ""
        raise ContractError(
            f"unknown column{'s' if len(unknown) > 1 else ''} {_hints(unknown, kb)}; allowed: the contract's columns "
            f"(docs/data-dictionary.md){label_note} and one identifier column declared with id_column= / --id-column"
        )
    if label == "required" and LABEL not in names:
        raise ContractError(f"the label column {LABEL!r} is required here (one of {list(kb.class_names)})")
    if len(df) == 0:
        raise ContractError("no patients: the input has a header but no rows; at least one patient (row) is needed")

    if missing and notice:
        warnings.warn(absent_columns_notice(missing, kb), ContractWarning, stacklevel=2)

    index = pd.Index(df[id_column]) if id_column is not None else df.index
    shown = _display_index(index)
    out, problems = {}, []
    for col, spec in kb.columns.items():
        if col in missing:
            out[col] = _absent(spec, len(df))
            continue
        try:
            out[col] = _check_column(col, spec, df[col], shown)
        except ContractError as exc:
            problems.append(str(exc))
    if LABEL in names and label != "forbidden":
        try:
            out[LABEL] = _categorical(LABEL, df[LABEL], shown, kb.class_names)
            if label == "required" and pd.isna(out[LABEL]).any():
                mask = np.asarray(pd.isna(out[LABEL]))
                raise ContractError(f"column {LABEL!r}: {_rows(shown, mask)} have no label; every row needs one of {list(kb.class_names)}")
        except ContractError as exc:
            problems.append(str(exc))
    if problems:
        raise _problems_error(problems)
    result = pd.DataFrame(out, copy=False)
    result.index = index
    return result


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


def _problems_error(problems: list[str]) -> ContractError:
    if len(problems) == 1:
        return ContractError(problems[0])
    shown = "; ".join(f"({i}) {p}" for i, p in enumerate(problems[:MAX_PROBLEMS], 1))
    more = f"; and {len(problems) - MAX_PROBLEMS} more problems" if len(problems) > MAX_PROBLEMS else ""
    return ContractError(f"{len(problems)} problems in the input: {shown}{more}", tuple(problems))


def absent_columns_notice(missing: list[str], kb: Knowledge) -> str:
    """The one-line notice listing absent contract columns (treated as not recorded)."""
    shown = ", ".join(missing[:_MAX_LISTED]) + (f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else "")
    return (
        f"{len(missing)} of {len(kb.column_names)} contract columns are absent and read as not recorded: {shown}"
    )


def as_pandas(df) -> pd.DataFrame:
    """A pandas DataFrame of the same patients, from any supported frame.

    pandas frames are returned as they are. Others are converted with narwhals when it is
    installed (``pip install narwhals``: polars, pyarrow, modin, cuDF, ...), else through the
    Arrow PyCapsule interface (``__arrow_c_stream__``, with pyarrow), else through the
    dataframe interchange protocol (``__dataframe__``).

    Raises
    ------
    ContractError
        For anything else, naming the type and its module and how to convert it.

    Examples
    --------
    >>> import pyarrow as pa
    >>> as_pandas(pa.table({"age_years": [40.0]}))["age_years"].tolist()
    [40.0]
    """
    if isinstance(df, pd.DataFrame):
        return df
    module = type(df).__module__.split(".")[0]
    what = f"{module}.{type(df).__name__}"
    try:
        import narwhals as nw
    except ImportError:
        nw = None
    try:
        if nw is not None:
            try:
                native = nw.from_native(df, eager_only=True)
            except TypeError:
                native = None
            if native is not None:
                return native.to_pandas()
        if hasattr(df, "__arrow_c_stream__"):
            import pyarrow as pa

            return pa.table(df).to_pandas()
        if hasattr(df, "__dataframe__"):
            return pd.api.interchange.from_dataframe(df)
    except ImportError as exc:
        raise ContractError(f"cannot convert a {what} to pandas: {exc}; convert it with its .to_pandas() method") from None
    hint = "convert it with .to_pandas()" if hasattr(df, "to_pandas") else "build a pandas.DataFrame from it"
    if isinstance(df, (pd.Series, np.ndarray, list, dict)):
        hint = "pass a pandas.DataFrame with one column per contract column (pandas.DataFrame(...))"
    raise ContractError(f"expected a DataFrame of patients (pandas, polars, pyarrow), got {what}; {hint}")


def _duplicated(dup: list[str]) -> str:
    return f"duplicated column{'s' if len(dup) > 1 else ''} " + ", ".join(_name(c) for c in dup)


def _hints(unknown: list[str], kb: Knowledge) -> str:
    known = list(kb.column_names) + [LABEL]
    hints = []
    for c in unknown[:5]:
        close = difflib.get_close_matches(c, known, n=1) or [k for k in known if len(c) >= 3 and k.startswith(c.lower())][:1]
        hints.append(_name(c) + (f" (did you mean {close[0]!r}?)" if close else ""))
    return ", ".join(hints) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")


def _unknown_note(names: list[str]) -> str:
    """The whole message when the header is one column holding separators (a wrong separator)."""
    if len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|", ",")):
        return (
            f"the header is one column {_name(names[0])}: the file's separator was not recognized; "
            "give it with --sep (sep= in Python), e.g. --sep ';'"
        )
    return ""


def canonical_frame(df: pd.DataFrame, knowledge=None) -> pd.DataFrame:
    """:func:`validate_frame` for trusted internal frames: extra columns are left out."""
    return validate_frame(df, knowledge=knowledge, extra="ignore")


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


def _range_text(spec) -> str:
    unit = f" {spec.unit}" if spec.unit else ""
    if spec.plausible_min is not None or spec.plausible_max is not None:
        lo = spec.min if spec.plausible_min is None else spec.plausible_min
        hi = spec.max if spec.plausible_max is None else spec.plausible_max
        return f"{lo:g} to {hi:g}{unit}" if hi is not None else f">= {lo:g}{unit}"
    if spec.min is not None and spec.max is not None:
        return f"{spec.min:g} to {spec.max:g}{unit}"
    if spec.min is not None:
        return f"{'>' if spec.min_exclusive else '>='} {spec.min:g}{unit}"
    return f"a finite number{unit}"
