"""Reading users' patient files: one reader for the API and the command line.

:func:`read_patients` (a whole file) and :func:`iter_patients` (in chunks, bounded memory) are
what ``pulmocalc predict``, ``explain`` and ``evaluate --data`` call, so a file is read the same
way in Python and on the command line. Every chunk then goes through
:func:`data_gen.validate_frame`. The design:

* **Dialect.** The separator is read off the header: of ``,``, ``;`` and tab, the one that
  splits it into the most contract column names (``sep=`` / ``--sep`` overrides it). A comma-
  separated file uses decimal points. Any other separator (the European Excel default is ``;``
  with decimal commas) takes its decimal mark from the numbers of the first rows; when they
  mix decimal commas and points the file is refused as ambiguous (``decimal=`` / ``--decimal``
  settles it). In a file read with decimal commas, a number written with a point (``1.234``,
  a thousands separator there) is refused rather than guessed.
* **Field counts.** A record with more fields than the header (an unquoted decimal comma
  ``0,4`` in a comma-separated file, or a delimiter at the end of the line) would shift every
  value one column; it is refused, naming the line and both counts.
* **Encoding.** UTF-8, with or without a byte-order mark, unless ``encoding=`` /
  ``--encoding`` says otherwise. A file that does not decode is refused naming the file, the
  line and the likely fix, never with a raw ``UnicodeDecodeError``.
* **Rows** are numbered from 1 at the first patient; absent contract columns are announced
  once per file (a :class:`~data_gen.contract.ContractWarning`), not once per chunk.
* ``NA``, ``null`` and similar markers are not guessed to be "not recorded": only an empty
  cell is (a ``NA`` in a number column is refused, naming it).
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .contract import LABEL, ContractError, _kb, validate_frame
from .contract_columns import _DECIMAL_COMMA
from .contract_messages import _duplicated
from .knowledge import Knowledge

__all__ = ["Dialect", "sniff_dialect", "read_patients", "iter_patients", "SEPARATORS", "DECIMALS"]

#: Separators recognized from the header (``--sep`` accepts these, and "tab" for a tab).
SEPARATORS = (",", ";", "\t")
DECIMALS = (".", ",")
# Lines read to decide the dialect and to count the fields of the first records exactly.
_SNIFF_LINES = 200
_DECIMAL_POINT = re.compile(r"\s*[-+]?\d*\.\d+\s*")
_PARSER_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


@dataclass(frozen=True)
class Dialect:
    """How a patient CSV file is written: separator, decimal mark and text encoding."""

    sep: str
    decimal: str
    encoding: str

    def describe(self) -> str:
        sep = "tab" if self.sep == "\t" else repr(self.sep)
        return f"separator {sep}, decimal {self.decimal!r}, encoding {self.encoding}"


def _sep_name(sep: str) -> str:
    return "tab" if sep == "\t" else repr(sep)


def _check_options(sep: str | None, decimal: str | None) -> tuple[str | None, str | None]:
    if sep is not None:
        sep = "\t" if sep in ("tab", "\\t") else sep
        if sep not in SEPARATORS:
            raise ContractError(f"separator {sep!r} is not supported; use one of ',', ';' or 'tab'")
    if decimal is not None and decimal not in DECIMALS:
        raise ContractError(f"decimal mark {decimal!r} is not supported; use '.' or ','")
    if sep is not None and sep == decimal:
        raise ContractError(f"the separator and the decimal mark cannot both be {sep!r}")
    return sep, decimal


def _python_encoding(encoding: str | None) -> str:
    # utf-8-sig: a byte-order mark (spreadsheet exports) is not part of the first column's name
    return "utf-8-sig" if encoding is None or encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _decode_error(path: Path, encoding: str) -> ContractError:
    """The one-line refusal of a file that is not in ``encoding``, naming the first bad line."""
    line_no, byte = 0, None
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as exc:
                byte = raw[exc.start]
                break
            except LookupError:
                break
    where = f"line {line_no} (byte 0x{byte:02x})" if byte is not None else "it"
    if encoding.startswith("utf-8"):
        return ContractError(
            f"cannot read {str(path)!r}: {where} is not UTF-8 text; the file is probably in a legacy encoding "
            "such as Windows-1252 (Excel's plain 'CSV'): save it as 'CSV UTF-8', or read it with "
            "--encoding cp1252 (encoding='cp1252' in Python)"
        )
    return ContractError(f"cannot read {str(path)!r}: {where} is not valid {encoding} text; give the file's encoding with --encoding")


def _sample(path: Path, encoding: str) -> str:
    try:
        with open(path, encoding=encoding, newline="") as fh:
            return "".join(line for _, line in zip(range(_SNIFF_LINES), fh))
    except UnicodeDecodeError:
        raise _decode_error(path, encoding) from None
    except LookupError:
        raise ContractError(f"unknown encoding {encoding!r}; use e.g. utf-8, cp1252 or latin-1") from None


def sniff_dialect(
    path: str | Path,
    *,
    sep: str | None = None,
    decimal: str | None = None,
    encoding: str | None = None,
    knowledge=None,
) -> Dialect:
    """The dialect of a patient CSV file: given options are kept, the others read off the file.

    Raises
    ------
    ContractError
        An unsupported option, a file that does not decode, or decimal marks that are ambiguous
        (commas and points in the first rows of a file not separated by commas).

    Examples
    --------
    >>> p = Path("patients.csv")                                       # doctest: +SKIP
    >>> _ = p.write_text("age_years;serum_calcium_mg_dl\\n40;9,8\\n")    # doctest: +SKIP
    >>> sniff_dialect(p).describe()                                     # doctest: +SKIP
    "separator ';', decimal ',', encoding utf-8-sig"
    """
    path = Path(path)
    sep, decimal = _check_options(sep, decimal)
    enc = _python_encoding(encoding)
    text = _sample(path, enc)
    kb = _kb(knowledge)
    header_line = text.splitlines()[0] if text else ""
    if sep is None:
        known = set(kb.column_names) | {LABEL}

        def score(candidate: str) -> int:
            names = next(csv.reader([header_line], delimiter=candidate), [])
            return sum(n.strip() in known for n in names)

        sep = max(SEPARATORS, key=score) if header_line else ","
        if score(sep) == 0:
            sep = ","
    if decimal is None:
        decimal = "." if sep == "," else _sniff_decimal(path, text, sep, kb)
    if sep == decimal:
        raise ContractError(f"the separator and the decimal mark cannot both be {sep!r}")
    return Dialect(sep, decimal, enc)


def _sniff_decimal(path: Path, text: str, sep: str, kb: Knowledge) -> str:
    rows = list(csv.reader(io.StringIO(text), delimiter=sep))
    if not rows:
        return "."
    header = [h.strip() for h in rows[0]]
    continuous = [i for i, h in enumerate(header) if h in kb.columns and kb.columns[h].kind == "continuous"]
    comma = point = None
    for r, fields in enumerate(rows[1:], 1):
        for i in continuous:
            if i < len(fields):
                if comma is None and _DECIMAL_COMMA.fullmatch(fields[i]):
                    comma = (header[i], fields[i], r)
                elif point is None and _DECIMAL_POINT.fullmatch(fields[i]):
                    point = (header[i], fields[i], r)
    if comma and point:
        raise ContractError(
            f"cannot tell the decimal mark of {str(path)!r}: {comma[0]!r} has {comma[1]!r} in row {comma[2]} (a decimal "
            f"comma) and {point[0]!r} has {point[1]!r} in row {point[2]} (a decimal point); give it with --decimal "
            "(decimal= in Python)"
        )
    return "," if comma else "."


def _check_field_counts(path: Path, text: str, dialect: Dialect) -> list[str]:
    """Exact field counts of the first records (pandas would silently shift the first one)."""
    reader = csv.reader(io.StringIO(text), delimiter=dialect.sep)
    header = next(reader, [])
    complete = text.endswith("\n")
    last_line = text.count("\n") + (0 if complete else 1)
    for fields in reader:
        if reader.line_num >= last_line and not complete:
            break  # the sample may end mid-record
        if len(fields) > len(header):
            raise _field_count_error(path, reader.line_num, len(fields), len(header), dialect)
    if header and header[-1].strip() == "" and len(header) > 1:
        raise ContractError(
            f"the header of {str(path)!r} ends with an empty column name (column {len(header)}): is there a "
            f"separator ({_sep_name(dialect.sep)}) at the end of the lines? Remove it"
        )
    return header


def _field_count_error(path: Path, line: int, seen: int, expected: int, dialect: Dialect) -> ContractError:
    if dialect.sep == ",":
        why = (
            "an unquoted decimal comma (write 0.4, or quote \"0,4\", or save with ';' separators) or a comma "
            "at the end of the line?"
        )
    else:
        why = f"a separator ({_sep_name(dialect.sep)}) inside a value or at the end of the line?"
    return ContractError(
        f"{str(path)!r} line {line} has {seen} fields but the header has {expected}: every value after the extra "
        f"field would move one column; {why}"
    )


def _decimal_check(chunk: pd.DataFrame, kb: Knowledge, path: Path) -> None:
    """In a file read with decimal commas, a number with a point is ambiguous (1.234 = 1234?)."""
    for col in chunk.columns:
        spec = kb.columns.get(col)
        if spec is None or spec.kind != "continuous" or pd.api.types.is_numeric_dtype(chunk[col].dtype):
            continue
        text = chunk[col].astype(object)
        bad = text.map(lambda v: isinstance(v, str) and _DECIMAL_POINT.fullmatch(v) is not None).to_numpy(dtype=bool)
        if bad.any():
            row = chunk.index[bad][0]
            raise ContractError(
                f"column {col!r}: row {row} has value {text[bad].iloc[0]!r}, a decimal point in {str(path)!r}, which "
                "is read with decimal commas (where '.' separates thousands); write it with a comma, or give "
                "--decimal '.' (decimal='.' in Python)"
            )


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
    sep: str | None = None,
    decimal: str | None = None,
    encoding: str | None = None,
) -> Iterator[pd.DataFrame]:
    """Read and validate a CSV or Parquet file of patients in chunks of ``chunksize`` rows.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.parquet`` file with a header of contract columns.
    chunksize : int
        Rows read and validated at a time; memory stays bounded by it.
    knowledge, id_column, label
        As in :func:`data_gen.validate_frame`.
    sep, decimal, encoding : str, optional
        The CSV dialect; what is not given is read off the file (see the module docstring).

    Yields
    ------
    pandas.DataFrame
        Validated chunks in canonical form, rows numbered from 1 (the first patient) unless
        ``id_column`` is given.

    Raises
    ------
    ContractError
        Naming the file and what is wrong with it, or the column, rows and values of bad cells.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.exists():
        raise ContractError(f"no such file: {str(path)!r}")
    if path.stat().st_size == 0:
        raise _empty_file(path)
    kb = _kb(knowledge)
    seen = 0
    if suffix == ".csv":
        dialect = sniff_dialect(path, sep=sep, decimal=decimal, encoding=encoding, knowledge=kb)
        header = _check_field_counts(path, _sample(path, dialect.encoding), dialect)
        dup = sorted({c for c in header if header.count(c) > 1})
        if dup:  # pandas would rename them (a, a.1)
            raise ContractError(f"{_duplicated(dup)} in the header of {str(path)!r}; each column must appear once")
        try:
            reader = pd.read_csv(
                path, sep=dialect.sep, decimal=dialect.decimal, encoding=dialect.encoding, chunksize=chunksize,
                na_values=[""], keep_default_na=False, low_memory=False, index_col=False, skipinitialspace=False,
                # identifiers are names, not numbers: "007" and "1e3" stay as written
                dtype=None if id_column is None else {id_column: str},
            )
        except pd.errors.EmptyDataError:
            raise _empty_file(path) from None
        ids = _IdentifierLedger(id_column, path)
        with reader:  # closes the file also when a chunk is refused
            for chunk in _safe_chunks(reader, path, dialect):
                chunk.index = pd.RangeIndex(seen + 1, seen + 1 + len(chunk), name="patient")
                if dialect.decimal == ",":
                    _decimal_check(chunk, kb, path)
                out = validate_frame(chunk, knowledge=kb, id_column=id_column, label=label, notice=seen == 0)
                ids.add(out.index, seen)
                yield out
                seen += len(chunk)
    else:
        yield from _iter_parquet(path, chunksize, kb, id_column, label)
        return
    if seen == 0:
        raise ContractError(f"no patients in {str(path)!r}: it has a header but no rows")


def _iter_parquet(path: Path, chunksize: int, kb: Knowledge, id_column, label) -> Iterator[pd.DataFrame]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ContractError("reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow's errors for a file that is not Parquet
        raise ContractError(f"cannot read {str(path)!r} as Parquet: {exc}") from None
    seen = 0
    ids = _IdentifierLedger(id_column, path)
    with pf:
        for batch in pf.iter_batches(batch_size=chunksize):
            chunk = batch.to_pandas()
            chunk.index = pd.RangeIndex(seen + 1, seen + 1 + len(chunk), name="patient")
            out = validate_frame(chunk, knowledge=kb, id_column=id_column, label=label, notice=seen == 0)
            ids.add(out.index, seen)
            yield out
            seen += len(chunk)
    if seen == 0:
        raise ContractError(f"no patients in {str(path)!r}: it has a header but no rows")



class _IdentifierLedger:
    """The identifiers of the chunks read so far, so that a repeat in a later chunk is refused too.

    validate_frame checks one chunk; this keeps a 64-bit hash of every identifier already read
    (about 100 bytes per patient in a Python set) and names the first repeat with its row. Two
    different identifiers would be taken for a repeat only on a hash collision: about one chance
    in 10**5 for 10 million patients.
    """

    def __init__(self, id_column, path: Path):
        self.id_column, self.path, self.hashes = id_column, path, set()

    def add(self, index: pd.Index, first_row: int) -> None:
        if self.id_column is None:
            return
        h = pd.util.hash_array(index.to_numpy(dtype=object)).tolist()
        # isdisjoint runs in C over this chunk only (isin would copy the whole set every chunk)
        if not self.hashes.isdisjoint(h):
            r = next(i for i, x in enumerate(h) if x in self.hashes)  # once, to name the row
            raise ContractError(
                f"column {self.id_column!r} (the identifier) in {str(self.path)!r}: value {index[r]!r} at row "
                f"{first_row + r + 1} repeats an earlier row's; every patient needs its own identifier"
            )
        self.hashes.update(h)


def _empty_file(path: Path) -> ContractError:
    return ContractError(
        f"empty file {str(path)!r}: no header and no patients; expected a header of the contract's columns "
        "and one row per patient"
    )


def _safe_chunks(chunks, path: Path, dialect: Dialect):
    chunks = iter(chunks)
    while True:
        try:
            with warnings.catch_warnings():
                # a first row longer than the header: pandas warns and drops data (checked before)
                warnings.simplefilter("error", pd.errors.ParserWarning)
                chunk = next(chunks)
        except StopIteration:
            return
        except pd.errors.EmptyDataError:
            raise _empty_file(path) from None
        except UnicodeDecodeError:
            raise _decode_error(path, dialect.encoding) from None
        except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
            m = _PARSER_FIELDS.search(str(exc))
            if m:
                expected, line, seen = (int(g) for g in m.groups())
                raise _field_count_error(path, line, seen, expected, dialect) from None
            raise ContractError(f"cannot parse {str(path)!r} as CSV ({dialect.describe()}): {' '.join(str(exc).split())}") from None
        yield chunk


def read_patients(
    path: str | Path,
    *,
    knowledge=None,
    id_column: str | None = None,
    label: str = "optional",
    sep: str | None = None,
    decimal: str | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read and validate a whole CSV or Parquet file of patients, exactly as the CLI does.

    Use this rather than ``pandas.read_csv``: pandas reads ``NA`` as not recorded, shifts
    rows with an extra field and knows nothing of decimal commas; this reader refuses or reads
    each of them as the command line does (see :func:`iter_patients` for the parameters).

    Examples
    --------
    >>> from data_gen import read_patients
    >>> patients = read_patients("patients.csv")                  # doctest: +SKIP
    >>> patients = read_patients("export.csv", sep=";", decimal=",")  # doctest: +SKIP
    """
    return pd.concat(
        list(
            iter_patients(
                path, knowledge=knowledge, id_column=id_column, label=label, sep=sep, decimal=decimal, encoding=encoding
            )
        )
    )
