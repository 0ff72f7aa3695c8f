"""Checking a user's frame against the input contract: one place, clear errors.

The contract (column names, kinds, units, ranges and levels) is declared in the knowledge base's
``[columns]`` section, after ``shared/reference/input-schema.md``. Every entry point that takes
patients (the oracle, the model, the explanations, the CLI) passes them through
:func:`validate_frame` first, so a bad value is refused with a message naming the column, the
row(s), the value(s) and what is allowed, and nothing is silently coerced or dropped.

NaN (an empty cell) always means "not recorded" and is accepted, including a patient with every
column empty. Binary columns accept 0/1, booleans and the text "true"/"false"/"0"/"1".
"""

from __future__ import annotations

import decimal
import difflib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from .knowledge import Knowledge, load_knowledge

__all__ = [
    "ContractError",
    "LABEL",
    "validate_frame",
    "canonical_frame",
    "read_patients",
    "iter_patients",
]

LABEL = "calcification_type"
_MAX_SHOWN = 5
_MAX_NAME = 60
_NOT_RECORDED = "or empty for not recorded"
_BINARY_ALLOWED = f"0 or 1 (also true/false), {_NOT_RECORDED}"
_BINARY_TEXT = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "true": 1, "false": 0}


class ContractError(ValueError):
    """Input that breaks the contract: the message names column, rows, values and what is allowed."""


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
) -> pd.DataFrame:
    """Check patients against the input contract and return them in canonical form.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per patient with the contract's columns. NaN means "not recorded".
    knowledge : Knowledge or path, optional
        The knowledge base declaring the contract; defaults to the shipped one.
    id_column : str, optional
        A column identifying patients; it becomes the returned frame's index.
    label : {"optional", "required", "forbidden"}
        Whether the label column ``calcification_type`` may, must or must not be present.
    extra : {"error", "ignore"}
        Whether columns outside the contract are refused or left out of the result.

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
        allowed: a missing, unknown or duplicated column, a wrong type, a value out of range,
        an unknown category, or no patients at all.

    Examples
    --------
    >>> import pandas as pd
    >>> from data_gen import validate_frame, load_knowledge
    >>> cols = load_knowledge().column_names
    >>> df = pd.DataFrame({c: [float("nan")] for c in cols})
    >>> validate_frame(df.assign(zone="upper")).loc[0, "zone"]
    'upper'
    """
    kb = _kb(knowledge)
    if not isinstance(df, pd.DataFrame):
        raise ContractError(f"expected a pandas DataFrame of patients, got {type(df).__name__}")
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
    if missing:
        shown = ", ".join(repr(c) for c in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise ContractError(
            f"missing contract column{'s' if len(missing) > 1 else ''} {shown}; every contract column must be "
            f"present, in any order (leave its cells empty for 'not recorded'){_unknown_note(names, unknown, kb)}"
        )
    if unknown and extra == "error":
        label_note = f", the label {LABEL!r}" if label != "forbidden" else ""
        raise ContractError(
            f"unknown column{'s' if len(unknown) > 1 else ''} {_hints(unknown, kb)}; allowed: the contract's columns "
            f"(docs/data-dictionary.md){label_note} and one identifier column declared with id_column= / --id-column"
        )
    if label == "required" and LABEL not in names:
        raise ContractError(f"the label column {LABEL!r} is required here (one of {list(kb.class_names)})")
    if len(df) == 0:
        raise ContractError("no patients: the input has a header but no rows; at least one patient (row) is needed")

    index = pd.Index(df[id_column]) if id_column is not None else df.index
    out = {}
    for col, spec in kb.columns.items():
        s = df[col]
        if spec.kind == "binary":
            out[col] = _binary(col, s, index)
        elif spec.kind == "categorical":
            out[col] = _categorical(col, s, index, spec.levels)
        else:
            out[col] = _continuous(col, s, index, spec)
    if LABEL in names and label != "forbidden":
        out[LABEL] = _categorical(LABEL, df[LABEL], index, kb.class_names)
        if label == "required" and pd.isna(out[LABEL]).any():
            mask = pd.isna(out[LABEL])
            raise ContractError(f"column {LABEL!r}: {_rows(index, np.asarray(mask))} have no label; every row needs one of {list(kb.class_names)}")
    result = pd.DataFrame(out, copy=False)
    result.index = index
    return result


def _duplicated(dup: list[str]) -> str:
    return f"duplicated column{'s' if len(dup) > 1 else ''} " + ", ".join(_name(c) for c in dup)


def _hints(unknown: list[str], kb: Knowledge) -> str:
    known = list(kb.column_names) + [LABEL]
    hints = []
    for c in unknown[:5]:
        close = difflib.get_close_matches(c, known, n=1) or [k for k in known if len(c) >= 3 and k.startswith(c.lower())][:1]
        hints.append(_name(c) + (f" (did you mean {close[0]!r}?)" if close else ""))
    return ", ".join(hints) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")


def _unknown_note(names: list[str], unknown: list[str], kb: Knowledge) -> str:
    if len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|")):
        return f"; the header is one column {_name(names[0])}: is the file separated by commas?"
    if unknown:
        return f"; the input has unknown column{'s' if len(unknown) > 1 else ''} {_hints(unknown, kb)}"
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
    bad = (codes < 0) & ~_is_na(obj)
    if bad.any():
        # a blank cell (only spaces) is empty, as it is in binary and continuous columns
        bad &= ~np.array([isinstance(v, str) and v.strip() == "" for v in obj], dtype=bool)
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
    return vals


def _range_text(spec) -> str:
    unit = f" {spec.unit}" if spec.unit else ""
    if spec.min is not None and spec.max is not None:
        return f"{spec.min:g} to {spec.max:g}{unit}"
    if spec.min is not None:
        return f"{'>' if spec.min_exclusive else '>='} {spec.min:g}{unit}"
    return f"a finite number{unit}"


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ContractError(f"cannot read {str(path)!r}: expected a .csv or .parquet file")
    return suffix


def iter_patients(
    path: str | Path,
    *,
    chunksize: int = 100_000,
    knowledge=None,
    id_column: str | None = None,
    label: str = "optional",
) -> Iterator[pd.DataFrame]:
    """Read and validate a CSV or Parquet file of patients in chunks of ``chunksize`` rows.

    Rows are numbered from 1 (the first data row) in error messages and in the index unless
    ``id_column`` is given. Memory stays bounded by the chunk size.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.exists():
        raise ContractError(f"no such file: {str(path)!r}")
    if path.stat().st_size == 0:
        raise _empty_file(path)
    seen = 0
    if suffix == ".csv":
        try:
            reader = pd.read_csv(path, chunksize=chunksize, na_values=[""], keep_default_na=False, low_memory=False)
        except pd.errors.EmptyDataError:
            raise _empty_file(path) from None
        except pd.errors.ParserError as exc:
            raise ContractError(f"cannot parse {str(path)!r} as CSV: {exc}") from None
        with reader:  # closes the file also when a chunk is refused
            header_checked = False
            for chunk in _safe_chunks(iter(reader), path):
                if not header_checked:
                    _check_raw_header(path, kb=_kb(knowledge))
                    header_checked = True
                chunk.index = pd.RangeIndex(seen + 1, seen + 1 + len(chunk), name="row")
                seen += len(chunk)
                yield validate_frame(chunk, knowledge=knowledge, id_column=id_column, label=label)
    else:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ContractError("reading Parquet needs pyarrow: pip install pyarrow") from None
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow's errors for a file that is not Parquet
            raise ContractError(f"cannot read {str(path)!r} as Parquet: {exc}") from None
        with pf:
            for batch in pf.iter_batches(batch_size=chunksize):
                chunk = batch.to_pandas()
                chunk.index = pd.RangeIndex(seen + 1, seen + 1 + len(chunk), name="row")
                seen += len(chunk)
                yield validate_frame(chunk, knowledge=knowledge, id_column=id_column, label=label)
    if seen == 0:
        raise ContractError(f"no patients in {str(path)!r}: it has a header but no rows")


def _empty_file(path: Path) -> ContractError:
    return ContractError(
        f"empty file {str(path)!r}: no header and no patients; expected a header of the contract's columns "
        "and one row per patient"
    )


def _safe_chunks(chunks, path):
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except pd.errors.EmptyDataError:
            raise _empty_file(path) from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ContractError(f"cannot parse {str(path)!r} as CSV: {exc}") from None
        yield chunk


def _check_raw_header(path: Path, kb: Knowledge) -> None:
    """pandas renames duplicated CSV headers (``a``, ``a.1``); refuse them from the raw header."""
    import csv

    # utf-8-sig: a byte-order mark (spreadsheet exports) is not part of the first name; a
    # malformed byte elsewhere is pandas' to report, with the file's name
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        header = next(csv.reader(fh), [])
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise ContractError(f"{_duplicated(dup)} in the header of {str(path)!r}; each column must appear once")


def read_patients(path: str | Path, *, knowledge=None, id_column: str | None = None, label: str = "optional") -> pd.DataFrame:
    """Read and validate a whole CSV or Parquet file of patients (see :func:`iter_patients`)."""
    return pd.concat(list(iter_patients(path, knowledge=knowledge, id_column=id_column, label=label)))
