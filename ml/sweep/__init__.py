"""Sensitivity sweeps over the knowledge base's assumptions, on Dask (``pulmocalc sweep``).

Research and teaching on synthetic data only; never a clinical device.

:mod:`~ml.sweep.perturb` enumerates the assumptions from the knowledge base and moves them,
:mod:`~ml.sweep.tasks` is the pure task (perturbation, seed) -> one row, :mod:`~ml.sweep.run`
the Dask driver (resume, retries, progress), :mod:`~ml.sweep.summarize` the table, tornado plots
and ``sweep.md``, :mod:`~ml.sweep.cluster` the Dask connection and :mod:`ml.cli.sweep` the
command line. Importing this package does not import Dask.
"""

from .perturb import BASELINE, Assumption, Perturbation, enumerate_assumptions, perturb_raw, perturbed_knowledge, select_assumptions
from .tasks import CONCLUSIONS, FULL_SIZES, QUICK_SIZES, SweepSizes, run_task
from .run import SweepOutcome, plan, read_task_files, run_sweep, task_path
from .summarize import combine, effects, tornado_pngs, write_summary
from .cluster import open_client, require_distributed

__all__ = [
    "Assumption", "BASELINE", "CONCLUSIONS", "FULL_SIZES", "Perturbation", "QUICK_SIZES", "SweepOutcome", "SweepSizes",
    "combine", "effects", "enumerate_assumptions", "open_client", "perturb_raw", "perturbed_knowledge", "plan",
    "read_task_files", "require_distributed", "run_sweep", "run_task", "select_assumptions", "task_path",
    "tornado_pngs", "write_summary",
]
