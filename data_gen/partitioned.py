"""A cohort written as a partitioned Parquet dataset, one partition per task, on any executor.

Design. The sampler is row-range invariant (``generate_cohort(n, rows=(a, b))`` equals rows
``a:b`` of the whole cohort, see :mod:`data_gen.sampler`), so partition ``i`` of ``K`` is simply
rows ``[i n // K, (i + 1) n // K)`` of the ``n``-patient cohort, generated and written by one
task (:func:`write_partition`) with nothing shared but the seed. The dataset therefore equals
``generate_cohort(n)`` row for row whatever ``K`` and however many workers ran the tasks. A task
generates its partition in slices of at most ``chunk_rows`` rows (a multiple of the sampler's
block) and appends each as Parquet row groups, so a worker's peak memory is bounded by the
slice, never by ``n``. Each partition appears atomically (written as ``.part-*.tmp``, a name the
Parquet readers skip, then renamed), so readers never see half a file.

An interrupted run can be finished: ``_pulmocalc-dataset.json`` (a name Parquet readers skip,
as they skip every name starting with ``_`` or ``.``) records what the dataset is (``n``,
partitions, seed, cohort options, the knowledge base's SHA-256) before any partition is written,
and ``complete`` once all are. ``resume=True`` checks that record against the call and writes only
the partitions whose file is missing; as the partitions depend on nothing but the seed and their
row range, the finished dataset is the one an uninterrupted run writes.

Files are ``part-00000.parquet`` ... in row order, without an index; pandas
(``pd.read_parquet(dir)``), Dask (``dd.read_parquet(dir)``) and polars
(``pl.read_parquet(dir + "/*.parquet")``) read the directory back in that order. Dask is imported
only when :func:`generate_partitioned` is given a ``distributed.Client``; without one the tasks
run in this process.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

from .sampler import BLOCK_SIZE, _check_n, generate_cohort

__all__ = ["partition_bounds", "partition_path", "write_partition", "generate_partitioned", "read_manifest", "CHUNK_ROWS",
           "MANIFEST"]

#: Rows generated and written at a time inside one partition (a multiple of the block size).
CHUNK_ROWS = 8 * BLOCK_SIZE
#: Parquet row group of the partitions (as ``pulmocalc generate`` writes single files).
ROW_GROUP = 1 << 16
COMPRESSION = "snappy"
#: What the dataset in a directory is, written before its partitions (see the module docstring).
MANIFEST = "_pulmocalc-dataset.json"


def partition_bounds(n: int, partitions: int) -> list[tuple[int, int]]:
    """Row ranges ``[(start, stop), ...]`` of ``partitions`` near-equal, consecutive partitions of ``n`` rows."""
    n = _check_n(n)
    k = _check_n(partitions, "partitions")
    if k == 0:
        raise ValueError("partitions must be at least 1")
    if k > max(n, 1):
        raise ValueError(f"partitions ({k}) must not exceed the number of patients ({n})")
    return [(i * n // k, (i + 1) * n // k) for i in range(k)]


def partition_path(out_dir: str | Path, index: int) -> Path:
    """The file of partition ``index``."""
    return Path(out_dir) / f"part-{index:05d}.parquet"


def write_partition(out_dir: str | Path, n: int, partitions: int, index: int, *, random_state: int,
                    knowledge=None, chunk_rows: int = CHUNK_ROWS, **cohort_options) -> dict:
    """Generate and write partition ``index`` of ``partitions`` of the ``n``-patient cohort.

    Parameters
    ----------
    out_dir : path
        An existing directory (shared by every worker when they run on several machines).
    n, partitions, index : int
        Cohort size, number of partitions, which one.
    random_state : int
        The cohort's seed (must be an int, so that every partition belongs to one cohort).
    knowledge : Knowledge or path, optional
    chunk_rows : int
        Rows generated at a time (bounds the memory of the task).
    **cohort_options
        ``prevalence``, ``recording``, ``latent``: as :func:`data_gen.generate_cohort`.

    Returns
    -------
    dict
        ``index``, ``rows``, ``path``, ``seconds``, ``pid`` and ``max_rss_bytes`` (peak resident
        memory of the process that ran it, from ``getrusage``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    start, stop = partition_bounds(n, partitions)[index]
    path = partition_path(out_dir, index)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = None
    try:
        for a in range(start, stop, chunk_rows) if stop > start else [start]:
            b = min(stop, a + chunk_rows)
            df = generate_cohort(n, random_state=random_state, rows=(a, b), knowledge=knowledge, **cohort_options)
            table = pa.Table.from_pandas(df, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression=COMPRESSION)
            writer.write_table(table, row_group_size=ROW_GROUP)
        writer.close()
        writer = None
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return {
        "index": index,
        "rows": stop - start,
        "path": str(path),
        "seconds": time.perf_counter() - t0,
        "pid": os.getpid(),
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # kB on Linux
    }


def _describe(n, partitions, random_state, knowledge, cohort_options) -> dict:
    from .knowledge import load_knowledge

    options = json.loads(json.dumps(cohort_options, sort_keys=True, default=list))  # tuples as lists, as read back
    return {"format": 1, "n": n, "partitions": partitions, "random_state": random_state,
            "knowledge_sha256": load_knowledge(knowledge).sha256, "cohort_options": options}


def _write_manifest(out_dir: Path, record: dict) -> None:
    tmp = out_dir / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / MANIFEST)


def read_manifest(out_dir: str | Path) -> dict | None:
    """The record of the dataset in ``out_dir`` (see the module docstring), or None without one.

    Raises
    ------
    ValueError
        When the record exists but cannot be read as JSON.
    """
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot resume: {str(path)!r} is unreadable ({exc})") from None


def _check_resume(out_dir: Path, wanted: dict) -> dict:
    had = read_manifest(out_dir)
    if had is None:
        raise ValueError(f"cannot resume in {str(out_dir)!r}: no {MANIFEST} there (a dataset written by this version, "
                         "interrupted); start again in an empty directory")
    for key in ("n", "partitions", "random_state", "knowledge_sha256", "cohort_options"):
        if had.get(key) != wanted[key]:
            raise ValueError(f"cannot resume in {str(out_dir)!r}: its dataset has {key} = {had.get(key)!r}, this run "
                             f"{wanted[key]!r}; resume with the same settings, or start again in an empty directory")
    return had


def generate_partitioned(n: int, out_dir: str | Path, partitions: int, *, random_state: int, client=None,
                         knowledge=None, on_done=None, resume: bool = False, **cohort_options) -> list[dict]:
    """Write the ``n``-patient cohort as ``partitions`` Parquet files in ``out_dir``.

    Parameters
    ----------
    n : int
    out_dir : path
        Created if absent; must hold no ``part-*.parquet`` already (a dataset of another run
        would mix with this one).
    partitions : int
    random_state : int
        The seed; the dataset equals ``generate_cohort(n, random_state=random_state)`` row for row.
    client : distributed.Client, optional
        Runs one task per partition (``retries=2``); None runs them here, one after another.
    knowledge : path, optional
        A knowledge base file readable by every worker (None: the shipped one).
    on_done : callable, optional
        Called with each task's result dict as it finishes (progress).
    resume : bool
        Finish an interrupted run in ``out_dir``: its ``_pulmocalc-dataset.json`` must describe
        this same dataset; only the missing partitions are written (the others are returned
        with ``"resumed": True``).
    **cohort_options
        ``prevalence``, ``recording``, ``latent``: as :func:`data_gen.generate_cohort`.

    Returns
    -------
    list of dict
        :func:`write_partition`'s results in partition order.

    Raises
    ------
    ValueError
        Bad ``n``/``partitions``, a seed that is not a non-negative int, ``out_dir`` already
        holding partitions (without ``resume``), or a ``resume`` whose directory holds another
        dataset (naming the first setting that differs).
    """
    bounds = partition_bounds(n, partitions)
    if isinstance(random_state, bool) or not isinstance(random_state, int) or random_state < 0:
        raise ValueError(f"random_state must be a non-negative int (one seed for every partition), got {random_state!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    knowledge = None if knowledge is None else str(knowledge)
    record = _describe(n, partitions, random_state, knowledge, cohort_options)
    existing = sorted(p.name for p in out_dir.glob("part-*.parquet"))
    results: list = [None] * len(bounds)
    if resume:
        _check_resume(out_dir, record)
        for i in range(len(bounds)):
            path = partition_path(out_dir, i)
            if path.exists():
                results[i] = {"index": i, "rows": bounds[i][1] - bounds[i][0], "path": str(path), "seconds": 0.0,
                              "pid": None, "max_rss_bytes": 0, "resumed": True}
    elif existing:
        raise ValueError(f"--out {str(out_dir)!r} already holds {len(existing)} partition files ({existing[0]}, ...); "
                         "use an empty directory, or resume an interrupted run of the same dataset (resume=True, --resume)")
    _write_manifest(out_dir, {**record, "complete": False})
    todo = [i for i in range(len(bounds)) if results[i] is None]
    for r in results:
        if r is not None and on_done:
            on_done(r)
    args = dict(random_state=random_state, knowledge=knowledge, **cohort_options)
    if client is None:
        for i in todo:
            results[i] = write_partition(out_dir, n, partitions, i, **args)
            if on_done:
                on_done(results[i])
    else:
        from distributed import as_completed  # a client implies Dask is installed

        futures = [client.submit(write_partition, str(out_dir), n, partitions, i, **args, retries=2, pure=False,
                                 key=f"pulmocalc-partition-{i}-of-{partitions}-{random_state}-{os.getpid()}")
                   for i in todo]
        for fut in as_completed(futures, loop=client.loop):
            r = fut.result()
            results[r["index"]] = r
            if on_done:
                on_done(r)
    _write_manifest(out_dir, {**record, "complete": True})
    return results
