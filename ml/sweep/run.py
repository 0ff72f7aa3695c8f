"""The sweep's driver: submit the tasks to Dask, keep every finished result, resume, show progress.

Design. A sweep is the baseline plus every selected assumption moved down and up, all with one
seed (:func:`plan`). The driver submits one Dask task per perturbation that has no result file
yet (``client.submit(..., retries=2)``; a worker that dies has its tasks rescheduled by the
scheduler) and, as each finishes, writes its one-row Parquet file under ``DIR/tasks/`` itself,
atomically (a temporary name, then ``os.replace``): the workers need no shared file system, an
interrupted sweep loses only the tasks that were running, and a rerun skips every task whose
file exists. ``DIR/sweep.json`` records the settings (seed, sizes, the knowledge base's
SHA-256); a rerun with other settings is refused rather than mixing results. Progress (tasks
done, running, failed, ETA) goes to stderr through ``tqdm`` when stderr is a terminal.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from .perturb import BASELINE, Assumption, Perturbation
from .tasks import SweepSizes, run_task

__all__ = ["SweepOutcome", "plan", "task_path", "run_sweep", "read_task_files"]

TASK_DIR = "tasks"
MANIFEST = "sweep.json"


@dataclass
class SweepOutcome:
    """What one run of the driver did: tasks found done, run now, and failed (key -> message)."""

    skipped: int = 0
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def plan(assumptions: list[Assumption]) -> list[Perturbation]:
    """The baseline, then every assumption down and up."""
    out = [Perturbation(BASELINE, 0)]
    for a in assumptions:
        out += [Perturbation(a.id, -1), Perturbation(a.id, 1)]
    return out


def task_path(out_dir: str | Path, perturbation: Perturbation) -> Path:
    """The result file of one perturbation."""
    return Path(out_dir) / TASK_DIR / f"{perturbation.key}.parquet"


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_manifest(out_dir: Path, settings: dict) -> None:
    path = out_dir / MANIFEST
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != settings:
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise ValueError(
                f"--out {str(out_dir)!r} holds a sweep with other settings ({', '.join(diff)}); "
                "use another directory or delete it"
            )
    else:
        path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def run_sweep(
    perturbations: list[Perturbation],
    out_dir: str | Path,
    *,
    client,
    seed: int,
    sizes: SweepSizes,
    base_text: str,
    progress: bool | None = None,
) -> SweepOutcome:
    """Run every perturbation without a result file on ``client``; write each result as it ends.

    Parameters
    ----------
    perturbations : list of Perturbation
    out_dir : path
        Gets ``tasks/<key>.parquet`` per finished task and ``sweep.json`` (the settings).
    client : distributed.Client
    seed : int
        The seed of every task.
    sizes : SweepSizes
    base_text : str
        The unperturbed knowledge base's TOML text (sent to the workers).
    progress : bool, optional
        Show a progress bar on stderr; default: when stderr is a terminal.

    Returns
    -------
    SweepOutcome

    Raises
    ------
    ValueError
        ``out_dir`` holds a sweep with other settings.
    """
    from distributed import as_completed
    from tqdm import tqdm

    out_dir = Path(out_dir)
    (out_dir / TASK_DIR).mkdir(parents=True, exist_ok=True)
    settings = {"seed": seed, "sizes": asdict(sizes), "knowledge_sha256": hashlib.sha256(base_text.encode()).hexdigest()}
    _check_manifest(out_dir, settings)
    outcome = SweepOutcome()
    todo = [p for p in perturbations if not task_path(out_dir, p).exists()]
    outcome.skipped = len(perturbations) - len(todo)
    if not todo:
        return outcome
    text = client.scatter(base_text, broadcast=True)
    futures = {
        client.submit(run_task, p, seed, sizes, text, key=f"pulmocalc-sweep-{p.key}-{settings['knowledge_sha256'][:8]}",
                      retries=2, pure=False): p
        for p in todo
    }
    show = sys.stderr.isatty() if progress is None else progress
    keys = {f.key for f in futures}
    bar = tqdm(total=len(todo), disable=not show, file=sys.stderr, unit="task", desc="sweep", dynamic_ncols=True)
    try:
        for fut in as_completed(list(futures), loop=client.loop):
            p = futures.pop(fut)
            if fut.status == "finished":
                _write_atomic(fut.result(), task_path(out_dir, p))
                outcome.ran.append(p.key)
            else:
                exc = fut.exception()
                outcome.failed[p.key] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            if show:
                running = sum(1 for ks in client.processing().values() for k in ks if k in keys and k != fut.key)
                bar.set_postfix(done=len(outcome.ran), running=running, failed=len(outcome.failed), refresh=False)
                bar.update(1)
    finally:
        bar.close()
        for fut in futures:  # interrupted: nothing left running for nobody
            fut.cancel()
    return outcome


def read_task_files(out_dir: str | Path) -> pd.DataFrame:
    """Every finished task's row, in file-name order (empty frame when none)."""
    files = sorted((Path(out_dir) / TASK_DIR).glob("*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
