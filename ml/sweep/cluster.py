"""Connecting to Dask: an existing scheduler unchanged, or a local cluster of process workers.

Design. Dask (``dask.distributed``) is an optional extra, imported only here and only when a
sweep or a partitioned generation runs; without it :func:`require_distributed` raises one
``ValueError`` line saying how to install it, which the CLI prints. A local cluster has process
workers with one thread each, and ``OMP_NUM_THREADS=1`` (and the BLAS equivalents) is set in
each worker's environment before it starts (Dask's ``distributed.nanny.pre-spawn-environ``), so
that the booster's OpenMP threads do not oversubscribe the cores the workers already share.
An existing cluster (``scheduler="tcp://host:8786"``) is used as it is.
"""

from __future__ import annotations

import re

import contextlib
from collections.abc import Iterator

__all__ = ["INSTALL_HINT", "require_distributed", "open_client", "SINGLE_THREAD_ENV"]

INSTALL_HINT = "this needs Dask, which is not installed; install it with: pip install 'pulmocalc[distributed]'"

#: Set in every local worker before it starts: one thread per process for OpenMP and BLAS.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}


def require_distributed():
    """The ``distributed`` module, or a ValueError with the install command."""
    try:
        import distributed
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    return distributed


#: Seconds to wait for a scheduler given with --scheduler before saying so.
CONNECT_TIMEOUT = 10
_ADDRESS = re.compile(r"^(?:(?:tcp|tls|ucx|ws|wss|inproc)://)?[^\s:/]+:\d{1,5}$")


def _check_address(scheduler: str) -> None:
    """Refuse an address Dask cannot parse before trying it (Dask would wait 60 s, then fail noisily)."""
    if not isinstance(scheduler, str) or not _ADDRESS.match(scheduler.strip()):
        raise ValueError(f"--scheduler {scheduler!r}: expected a Dask scheduler address such as tcp://HOST:8786")


@contextlib.contextmanager
def open_client(scheduler: str | None = None, workers: int | None = None) -> Iterator:
    """A ``distributed.Client``: of ``scheduler`` if given, else of a new local cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); the cluster is used unchanged.
    workers : int, optional
        Process workers of the local cluster (default: the machine's cores); one thread each.

    Raises
    ------
    ValueError
        Dask is not installed, both arguments are given, or ``workers`` is not positive.
    """
    distributed = require_distributed()
    import dask

    if scheduler is not None and workers is not None:
        raise ValueError("give either --scheduler or --workers, not both")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if scheduler is not None:
        _check_address(scheduler)
        try:
            client = distributed.Client(scheduler, set_as_default=False, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler {scheduler!r}: no Dask scheduler answered within {CONNECT_TIMEOUT} s "
                             f"({type(exc).__name__}); start one with `dask scheduler` and give its tcp://HOST:PORT") from None
        with client:
            yield client
        return
    import os

    n = workers or os.cpu_count() or 1
    env = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in SINGLE_THREAD_ENV.items()}
    with dask.config.set(env):
        # dashboard_address=":0": any free port, so that two clusters on one machine do not clash
        with distributed.LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
        ) as cluster, distributed.Client(cluster, set_as_default=False) as client:
            yield client
