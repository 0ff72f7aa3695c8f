"""One sweep task: a pure function of (perturbation, seed) that returns one row of results.

Design. :func:`run_task` rebuilds the perturbed knowledge base from the base knowledge base's
text (so a worker on another machine needs nothing but pulmocalc), generates a training cohort
under the shipped recording mixture (:data:`ml.config.TRAINING_RECORDING`), trains the shipped
booster configuration with at most ``sizes.max_iter`` iterations, and measures every
conclusion on fresh cohorts. Every random number comes from ``seed`` through
``numpy.random.SeedSequence(seed).spawn``: the same (perturbation, seed, sizes) give the same
row on any worker, so a sweep's table does not depend on how many workers ran it. All
perturbations use the same seed, so their differences from the baseline are measured on common
random numbers (the same uniforms pushed through different knowledge bases), which removes most
of the sampling noise from the comparison.

Standard errors (``*_se`` columns) are the sampling errors of one run: binomial for accuracies
and the audit's pass rate (over its testable clues), the per-patient standard deviation over
``sqrt(n)`` for log losses, and of the paired per-patient differences for the gaps. The
published-case figures have the binomial error over the cases.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .perturb import Perturbation, perturbed_knowledge

__all__ = ["SweepSizes", "QUICK_SIZES", "FULL_SIZES", "CONCLUSIONS", "run_task"]


@dataclass(frozen=True)
class SweepSizes:
    """Sizes of one task: patients to train on, booster iterations, patients to evaluate on."""

    train: int = 8_000
    max_iter: int = 40
    eval: int = 4_000
    audit: int = 1_000


#: ``--quick``: enough to rank assumptions coarsely in CI (one task takes a few seconds).
QUICK_SIZES = SweepSizes(train=4_000, max_iter=30, eval=4_000, audit=800)
#: The default of a full sweep (see README and reports/sweep/sweep.md for why).
FULL_SIZES = SweepSizes(train=8_000, max_iter=40, eval=8_000, audit=1_000)

#: The conclusions of a sweep: column -> (description, higher is better).
CONCLUSIONS = {
    "oracle_accuracy": ("oracle's accuracy (perturbed knowledge base)", True),
    "oracle_log_loss": ("oracle's log loss (perturbed knowledge base)", False),
    "gap_accuracy": ("model's accuracy gap to the oracle", False),
    "gap_log_loss": ("model's log-loss gap to the oracle", False),
    "base_model_accuracy": ("model's accuracy on the unperturbed knowledge base", True),
    "base_model_log_loss": ("model's log loss on the unperturbed knowledge base", False),
    "audit_pass_rate": ("clue-audit pass rate", True),
    "published_model_top1": ("model's top-1 accuracy on the published cases", True),
    "published_oracle_top1": ("oracle's top-1 accuracy on the published cases", True),
}


def _losses(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    from ml.evaluation import EPS

    return -np.log(np.clip(P[np.arange(len(y)), y], EPS, 1.0))


def _binomial_se(p: float, n: int) -> float:
    return float(np.sqrt(p * (1 - p) / n)) if n > 0 else float("nan")


def _top1(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    # an impossible row (NaN everywhere) is never right
    return np.where(np.isnan(P).any(axis=1), False, np.nan_to_num(P, nan=-1.0).argmax(axis=1) == y)


def run_task(perturbation: Perturbation, seed: int, sizes: SweepSizes, base_text: str, workdir: str | None = None) -> pd.DataFrame:
    """Train and evaluate under one perturbation of the knowledge base.

    Parameters
    ----------
    perturbation : Perturbation
        The assumption and direction (``BASELINE`` for none).
    seed : int
        Root of every random number of the task.
    sizes : SweepSizes
    base_text : str
        The unperturbed knowledge base's TOML text.
    workdir : str, optional
        Where perturbed knowledge bases are written (default: the system's temporary folder).

    Returns
    -------
    pandas.DataFrame
        One row: the perturbation, seed and sizes, every conclusion of :data:`CONCLUSIONS` with
        its standard error (``<name>_se``), the model's own accuracy and log loss on the
        perturbed cohort, the booster's iterations, and ``seconds`` (wall time; the only
        column that differs between runs).

    Raises
    ------
    data_gen.KnowledgeError
        When the perturbed knowledge base does not validate.
    """
    from data_gen import LABEL, generate_cohort, load_published_cases, oracle_proba
    from ml.audit import audit_clues
    from ml.config import TRAINING_RECORDING
    from ml.model import train

    t0 = time.perf_counter()
    workdir = workdir or os.path.join(tempfile.gettempdir(), "pulmocalc-sweep-kb")
    kb = perturbed_knowledge(base_text, perturbation, workdir)
    base = perturbed_knowledge(base_text, Perturbation("baseline", 0), workdir)
    s_train, s_eval, s_base = np.random.SeedSequence(seed).spawn(3)
    cohort = generate_cohort(sizes.train, random_state=s_train, recording=list(TRAINING_RECORDING), knowledge=kb)
    model = train(cohort, random_state=seed, knowledge=kb, max_iter=sizes.max_iter)

    row = {"assumption": perturbation.assumption, "direction": perturbation.direction, "seed": seed, **asdict(sizes)}
    fresh = generate_cohort(sizes.eval, random_state=s_eval, knowledge=kb)
    y = fresh[LABEL].cat.codes.to_numpy()
    Po = oracle_proba(fresh, knowledge=kb).to_numpy()
    Pm = model.predict_proba(fresh).to_numpy()
    co, cm = _top1(Po, y), _top1(Pm, y)
    lo, lm = _losses(Po, y), _losses(Pm, y)
    n = len(y)
    row["oracle_accuracy"], row["oracle_accuracy_se"] = float(co.mean()), _binomial_se(co.mean(), n)
    row["oracle_log_loss"], row["oracle_log_loss_se"] = float(lo.mean()), float(lo.std(ddof=1) / np.sqrt(n))
    row["model_accuracy"], row["model_log_loss"] = float(cm.mean()), float(lm.mean())
    dc, dl = co.astype(float) - cm, lm - lo
    row["gap_accuracy"], row["gap_accuracy_se"] = float(dc.mean()), float(dc.std(ddof=1) / np.sqrt(n))
    row["gap_log_loss"], row["gap_log_loss_se"] = float(dl.mean()), float(dl.std(ddof=1) / np.sqrt(n))

    other = generate_cohort(sizes.eval, random_state=s_base, knowledge=base)
    yb = other[LABEL].cat.codes.to_numpy()
    Pb = model.predict_proba(other).to_numpy()
    cb, lb = _top1(Pb, yb), _losses(Pb, yb)
    row["base_model_accuracy"], row["base_model_accuracy_se"] = float(cb.mean()), _binomial_se(cb.mean(), len(yb))
    row["base_model_log_loss"], row["base_model_log_loss_se"] = float(lb.mean()), float(lb.std(ddof=1) / np.sqrt(len(yb)))

    audit = audit_clues(model, fresh, max_patients=sizes.audit, random_state=seed)
    tested = int(audit.table["passed"].notna().sum())
    row["audit_pass_rate"], row["audit_pass_rate_se"] = audit.pass_rate, _binomial_se(audit.pass_rate, tested)
    row["audit_testable"] = tested

    cases = load_published_cases(knowledge=kb)
    yc = cases.y.cat.codes.to_numpy()
    pm = _top1(model.predict_proba(cases.X).to_numpy(), yc).mean()
    po = _top1(oracle_proba(cases.X, recording="case_report", knowledge=kb).to_numpy(), yc).mean()
    row["published_model_top1"], row["published_model_top1_se"] = float(pm), _binomial_se(pm, len(yc))
    row["published_oracle_top1"], row["published_oracle_top1_se"] = float(po), _binomial_se(po, len(yc))
    row["n_iter"] = int(model.metadata["n_iter"])
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return pd.DataFrame([row])
