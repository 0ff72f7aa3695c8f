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

Files are ``part-00000.parquet`` ... in row order, without an index; pandas
(``pd.read_parquet(dir)``), Dask (``dd.read_parquet(dir)``) and polars
(``pl.read_parquet(dir + "/*.parquet")``) read the directory back in that order. Dask is imported
only when :func:`generate_partitioned` is given a ``distributed.Client``; without one the tasks
run in this process.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from .sampler import BLOCK_SIZE, _check_n, generate_cohort

__all__ = ["partition_bounds", "partition_path", "write_partition", "generate_partitioned", "CHUNK_ROWS"]

#: Rows generated and written at a time inside one partition (a multiple of the block size).
CHUNK_ROWS = 8 * BLOCK_SIZE
#: Parquet row group of the partitions (as ``pulmocalc generate`` writes single files).
ROW_GROUP = 1 << 16
COMPRESSION = "snappy"


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


def generate_partitioned(n: int, out_dir: str | Path, partitions: int, *, random_state: int, client=None,
                         knowledge=None, on_done=None, **cohort_options) -> list[dict]:
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
    **cohort_options
        ``prevalence``, ``recording``, ``latent``: as :func:`data_gen.generate_cohort`.

    Returns
    -------
    list of dict
        :func:`write_partition`'s results in partition order.

    Raises
    ------
    ValueError
        Bad ``n``/``partitions``, a seed that is not a non-negative int, or ``out_dir`` already
        holding partitions.
    """
    bounds = partition_bounds(n, partitions)
    if isinstance(random_state, bool) or not isinstance(random_state, int) or random_state < 0:
        raise ValueError(f"random_state must be a non-negative int (one seed for every partition), got {random_state!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(p.name for p in out_dir.glob("part-*.parquet"))
    if existing:
        raise ValueError(f"--out {str(out_dir)!r} already holds {len(existing)} partition files ({existing[0]}, ...); "
                         "use an empty directory")
    knowledge = None if knowledge is None else str(knowledge)
    args = dict(random_state=random_state, knowledge=knowledge, **cohort_options)
    results = [None] * len(bounds)
    if client is None:
        for i in range(len(bounds)):
            results[i] = write_partition(out_dir, n, partitions, i, **args)
            if on_done:
                on_done(results[i])
        return results
    from distributed import as_completed  # a client implies Dask is installed

    futures = [client.submit(write_partition, str(out_dir), n, partitions, i, **args, retries=2, pure=False,
                             key=f"pulmocalc-partition-{i}-of-{partitions}-{random_state}-{os.getpid()}")
               for i in range(len(bounds))]
    for fut in as_completed(futures, loop=client.loop):
        r = fut.result()
        results[r["index"]] = r
        if on_done:
            on_done(r)
    return results
