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

* **Typed frames are checked at once.** Frames whose columns already hold numbers, levels or
  categoricals go through one vectorized check (:mod:`data_gen.contract_fast`); anything it does
  not expect, and every bad value, goes through the detailed per-column check
  (:mod:`data_gen.contract_columns`), so the messages are the same either way.

Reading files (dialects, field counts, encodings) is :mod:`data_gen.reader`'s job.
"""

from __future__ import annotations

import difflib
import warnings

import numpy as np
import pandas as pd

from .contract_columns import _absent, _categorical, _check_column
from .contract_fast import fast_columns, frame_from_arrays
from .contract_messages import (  # ContractError, ContractWarning and MAX_PROBLEMS re-exported
    MAX_PROBLEMS,
    ContractError,
    ContractWarning,
    _display_index,
    _duplicated,
    _name,
    _problems_error,
    _rows,
    _unknown_note,
    absent_columns_notice,
)
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
#: whether validate_frame tries the vectorized check first (tests turn it off to compare)
_FAST = True


def _kb(knowledge) -> Knowledge:
    return knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)


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
    names = [str(c) for c in df.columns.tolist()]
    present = set(names)
    dup = sorted({c for c in names if names.count(c) > 1}) if len(present) < len(names) else []
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
    missing = [c for c in kb.column_names if c not in present]
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
    if id_column is not None:
        # a chunk of a file (data_gen.reader numbers its rows "patient" from the file's first row)
        # names the file's rows; any other frame its own, counted from 1
        rows = df.index.to_numpy() if isinstance(df.index, pd.RangeIndex) and df.index.name == "patient" else None
        _check_identifiers(index, id_column, rows)
    shown = _display_index(index)
    # the vectorized check first; it gives up (None) on anything the detailed check must word
    out = fast_columns(df, kb, names, missing) if _FAST else None
    fast, problems = out is not None, []
    if not fast:
        out = {}
        for col, spec in kb.columns.items():
            if col in missing:
                out[col] = _absent(spec, len(df))
                continue
            try:
                out[col] = _check_column(col, spec, df[col], shown)
            except ContractError as exc:
                problems.append(str(exc))
    if LABEL in present and label != "forbidden":
        try:
            out[LABEL] = _categorical(LABEL, df[LABEL], shown, kb.class_names)
            if label == "required" and pd.isna(out[LABEL]).any():
                mask = np.asarray(pd.isna(out[LABEL]))
                raise ContractError(f"column {LABEL!r}: {_rows(shown, mask)} have no label; every row needs one of {list(kb.class_names)}")
        except ContractError as exc:
            problems.append(str(exc))
    if problems:
        raise _problems_error(problems)
    if fast:
        return frame_from_arrays(out, index)
    result = pd.DataFrame(out, copy=False)
    result.index = index
    return result


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
    # before any conversion: a Series would otherwise reach Arrow as one column of mixed values
    if isinstance(df, pd.Series):
        raise ContractError(
            f"expected a DataFrame of patients, got a pandas Series ({len(df)} values); pass series.to_frame().T if it "
            "is one patient's row (indexed by column names), or series.to_frame() if it is one column of several patients"
        )
    if isinstance(df, (np.ndarray, list, dict)):
        raise ContractError(
            f"expected a DataFrame of patients (pandas, polars, pyarrow), got {what}; pass a pandas.DataFrame "
            "with one column per contract column (pandas.DataFrame(...))"
        )
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

            try:
                return pa.table(df).to_pandas()
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # one column (a polars Series, an Arrow array)
                raise ContractError(
                    f"expected a DataFrame of patients (pandas, polars, pyarrow), got {what}, which Arrow cannot read as a "
                    f"table ({exc}); pass a DataFrame with one column per contract column (a column: .to_frame())"
                ) from None
        if hasattr(df, "__dataframe__"):
            return pd.api.interchange.from_dataframe(df)
    except ImportError as exc:
        raise ContractError(f"cannot convert a {what} to pandas: {exc}; convert it with its .to_pandas() method") from None
    hint = "convert it with .to_pandas()" if hasattr(df, "to_pandas") else "build a pandas.DataFrame from it"
    raise ContractError(f"expected a DataFrame of patients (pandas, polars, pyarrow), got {what}; {hint}")


def _hints(unknown: list[str], kb: Knowledge) -> str:
    known = list(kb.column_names) + [LABEL]
    hints = []
    for c in unknown[:5]:
        close = difflib.get_close_matches(c, known, n=1) or [k for k in known if len(c) >= 3 and k.startswith(c.lower())][:1]
        hints.append(_name(c) + (f" (did you mean {close[0]!r}?)" if close else ""))
    return ", ".join(hints) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")


def canonical_frame(df: pd.DataFrame, knowledge=None) -> pd.DataFrame:
    """:func:`validate_frame` for trusted internal frames: extra columns are left out."""
    return validate_frame(df, knowledge=knowledge, extra="ignore")


def _check_identifiers(index: pd.Index, id_column: str, rows=None) -> None:
    """Every patient has one identifier of its own: a blank or a repeated one is refused.

    Outputs name patients by it (``patient``), so a blank would print as "nan" and a repeat would
    make two patients indistinguishable. Rows are counted from 1, as in a spreadsheet.
    """
    number = np.arange(1, len(index) + 1) if rows is None else np.asarray(rows)
    blank = np.flatnonzero(pd.isna(index))
    if len(blank):
        rows = ", ".join(str(number[r]) for r in blank[:5]) + (" and more" if len(blank) > 5 else "")
        raise ContractError(f"column {id_column!r} (the identifier): row{'s' if len(blank) > 1 else ''} {rows} "
                            f"{'have' if len(blank) > 1 else 'has'} no identifier; every patient needs its own")
    repeated = index[index.duplicated(keep=False)]
    if len(repeated):
        value = repeated[0]
        rows = ", ".join(str(number[r]) for r in np.flatnonzero(index == value)[:5])
        raise ContractError(f"column {id_column!r} (the identifier): value {value!r} is repeated (rows {rows}); "
                            "every patient needs its own identifier")
