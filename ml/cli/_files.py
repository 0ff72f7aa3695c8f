"""Writing cohorts and tables: CSV or Parquet, atomically, with bytes that do not depend on chunking."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# CSV written with pandas' defaults for values (floats as their shortest round-trip repr,
# nullable integers as 0/1, NA as an empty cell) and a fixed line ending on every platform.
CSV_OPTIONS = {"index": False, "lineterminator": "\n", "encoding": "utf-8"}
# Parquet: explicit codec so the bytes do not depend on a library default.
PARQUET_COMPRESSION = "snappy"
PARQUET_ROW_GROUP = 1 << 16
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet"}


def output_path(text: str) -> Path:
    out = Path(text)
    # checked before any work, and so the error names the directory rather than a temporary file
    if not out.parent.is_dir():
        raise ValueError(f"--out {text!r}: the directory {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise ValueError(f"--out {text!r} is a directory; give a file name")
    return out


def output_dir(text, option: str = "--out", what: str = "the output files") -> Path:
    """The directory named by ``option``, created now: a path that can never be written fails
    before any work is done, not after it. An empty path, or an existing file, is refused."""
    if text is None or not str(text).strip():
        raise ValueError(f"{option} {text!r}: give a directory for {what} (an empty path would write into the current directory)")
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {str(text)!r} is a file; give a directory for {what}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{option} {str(text)!r}: cannot create the directory ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {str(text)!r}: the directory is not writable")
    return out


def output_format(out: Path) -> str:
    fmt = OUTPUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"--out {str(out)!r}: unknown file type {out.suffix or '(none)'!r}; use .csv or .parquet")
    if fmt == "parquet":
        import_pyarrow()
    return fmt


def import_pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ValueError(
            "writing Parquet needs the 'pyarrow' package, which is not installed; "
            "install it (pip install 'pulmocalc[parquet]') or write a .csv file"
        ) from None
    return pyarrow, pyarrow.parquet


def write_cohort(chunks: Iterable[pd.DataFrame], out: str | Path, fmt: str) -> int:
    """Write consecutive chunks of one cohort to a CSV or Parquet file; returns its column count.

    The file appears only when complete (written beside it under a temporary name, then
    renamed), so an interrupted run never leaves a truncated cohort. The bytes do not depend on
    how the cohort is chunked: CSV chunks are appended without repeating the header, and
    Parquet row groups always hold ``PARQUET_ROW_GROUP`` rows (the last one fewer).

    Examples
    --------
    >>> from data_gen import iter_cohort
    >>> write_cohort(iter_cohort(100, chunk_size=40, random_state=0), "cohort.csv", "csv")  # doctest: +SKIP
    53
    """
    out = Path(out)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        # name the file the user asked for, not the temporary one
        raise OSError(exc.errno, f"cannot write here ({exc.strerror})", str(out)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        n_columns = _write_csv(chunks, tmp) if fmt == "csv" else _write_parquet(chunks, tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n_columns


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_csv(chunks: Iterable[pd.DataFrame], path: Path) -> int:
    n_columns = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for i, chunk in enumerate(chunks):
            chunk.to_csv(fh, header=(i == 0), **CSV_OPTIONS)
            n_columns = chunk.shape[1]
    return n_columns


def _write_parquet(chunks: Iterable[pd.DataFrame], path: Path) -> int:
    pa, pq = import_pyarrow()
    writer = None
    n_columns = 0
    # Row groups of a fixed size, whatever the chunking, so the bytes do not depend on it.
    pending, pending_rows = [], 0
    try:
        for chunk in chunks:
            # no index: a chunk's RangeIndex would otherwise differ and land in the metadata
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression=PARQUET_COMPRESSION)
            n_columns = chunk.shape[1]
            pending.append(table)
            pending_rows += table.num_rows
            while pending_rows >= PARQUET_ROW_GROUP:
                buffered = pa.concat_tables(pending)
                writer.write_table(buffered.slice(0, PARQUET_ROW_GROUP), row_group_size=PARQUET_ROW_GROUP)
                pending = [buffered.slice(PARQUET_ROW_GROUP)]
                pending_rows = pending[0].num_rows
        if pending_rows:
            writer.write_table(pa.concat_tables(pending), row_group_size=PARQUET_ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()
    return n_columns

