"""Shared pieces of the benchmark report: settings, the run context, JSON and Markdown helpers.

The library never prints: progress goes through the ``progress`` callable of
:class:`Context` (the CLI prints it on stderr).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


from ..evaluation import jsonable  # noqa: F401 - one converter for every JSON the package writes

DISCLAIMER = (
    "Research and teaching on synthetic data only. pulmocalc is not a clinical device and must not "
    "be used for decisions about patients."
)


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Every size and seed of one report run (``--quick`` or full).

    Seeds are fixed so that two runs with the same model give the same report (timings,
    memory and the date aside). None of them is a seed the shipped model trained on
    (``ml.config.TRAINING["seed"]``), the baselines trained on (12345) or the learning curve's
    test cohort uses (9,000,001).
    """

    mode: str
    # 1. fidelity
    fidelity_n: int
    fidelity_seed: int = 1_101
    fidelity_top: int = 25
    # 2. performance
    eval_n: int = 100_000
    eval_seed: int = 1_202
    baseline_n: int | None = None  # None: ml.evaluate's default (50k, seed 12345)
    baseline_seed: int = 12_345
    n_boot: int = 1_000
    boot_seed: int = 0
    # three seeds per size show the spread of each point; 200,000 is left out so that the
    # training stays about as long as with one seed: 3 x 144k patients instead of 1 x 344k
    learning_sizes: tuple[int, ...] = (1_000, 3_000, 10_000, 30_000, 100_000)
    learning_test_n: int = 100_000
    learning_seeds: tuple[int, ...] = (1, 2, 3)
    learning_test_seed: int = 9_000_001
    learning_max_iter: int | None = None
    # 3. explanations
    audit_patients: int = 20_000
    agreement_patients: int = 5_000
    shapley_patients: int = 300
    shapley_permutations: int = 64
    summary_patients: int = 5_000
    explain_seed: int = 0
    # the explainer leaderboard on the report's own model (section 3b); the 500-patient,
    # three-model page is `pulmocalc xai-bench`'s
    leaderboard_patients: int = 50
    leaderboard_seed: int = 1_505
    # 4. robustness
    robust_n: int = 100_000
    robust_seed: int = 1_404
    robust_audit_patients: int = 5_000
    noise_levels: tuple[float, ...] = (0.05, 0.15)
    # the label-noise models (clean, 5%, 15%) are trained afresh on 200k patients under the model's
    # recording mixture: at the shipped model's 800k the full run would take ~3x longer
    noise_n: int | None = 200_000  # None: the evaluated model's training size
    noise_seed: int = 1_505
    noise_max_iter: int | None = None
    # 5. real-world evidence
    realworld_n: int = 20_000
    realworld_seed: int = 1_606
    realworld_boot: int = 1_000
    blank_patients: int = 5_000
    blank_keep: float = 0.3
    # 6. timings
    generation_n: int = 1_000_000
    generation_repeat: int = 3
    predict_n: int = 20_000
    latency_calls: int = 200
    shap_n: int = 10_000
    # quick model (when --quick runs without --model)
    quick_model_n: int = 8_000
    quick_model_max_iter: int = 40

    def to_dict(self) -> dict:
        return jsonable(asdict(self))


FULL = Settings(mode="full", fidelity_n=200_000)

QUICK = Settings(
    mode="quick",
    fidelity_n=40_000,
    eval_n=5_000,
    baseline_n=10_000,
    n_boot=200,
    learning_sizes=(1_000, 3_000),  # x 3 seeds: about 5 s of training on one core
    learning_test_n=5_000,
    learning_max_iter=100,
    audit_patients=2_000,
    agreement_patients=500,
    shapley_patients=40,
    shapley_permutations=16,
    leaderboard_patients=16,
    summary_patients=400,
    robust_n=5_000,
    robust_audit_patients=1_000,
    noise_n=8_000,
    noise_max_iter=40,
    realworld_n=2_000,
    realworld_boot=200,
    blank_patients=400,
    generation_n=200_000,
    generation_repeat=2,
    latency_calls=50,
    shap_n=3_000,
)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------
@dataclass
class Context:
    """What every section reads: the settings, the model, the knowledge base, shared cohorts."""

    out_dir: Path
    settings: Settings
    model: Any
    knowledge: Any
    model_info: dict
    progress: Callable[[str], None]
    quick: bool
    shared: dict = field(default_factory=dict)
    figures: list = field(default_factory=list)
    section_seconds: dict = field(default_factory=dict)

    @property
    def figures_dir(self) -> Path:
        return self.out_dir / "figures"

    def say(self, message: str) -> None:
        self.progress(message)

    def figure(self, path: Path, caption: str, section: str) -> str:
        """Record a written figure; returns its path relative to the report."""
        rel = Path(path).resolve().relative_to(self.out_dir.resolve()).as_posix()
        self.figures.append({"path": rel, "caption": caption, "section": section})
        return rel

    @contextmanager
    def timed(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.section_seconds[name] = time.perf_counter() - t0


@contextmanager
def limited_threads(limit: int | None):
    if limit is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit):  # OpenMP and BLAS
        yield


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------
def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and not math.isfinite(v))


def num(v, digits: int = 4) -> str:
    return "—" if _missing(v) else f"{v:.{digits}f}"


def pct(v, digits: int = 1) -> str:
    """A share as a percentage."""
    return "—" if _missing(v) else f"{100 * v:.{digits}f}%"


def pp(v, digits: int = 2) -> str:
    return "—" if _missing(v) else f"{v:+.{digits}f} pp"


def count(v) -> str:
    return "—" if _missing(v) else f"{int(v):,}"


def ci(pair, digits: int = 2) -> str:
    if not pair or any(_missing(v) for v in pair):
        return "—"
    return f"[{pair[0]:.{digits}f}, {pair[1]:.{digits}f}]"


def cell(v) -> str:
    """A value as a Markdown table cell (pipes escaped, newlines flattened)."""
    if isinstance(v, bool):
        text = "yes" if v else "**no**"
    elif _missing(v):
        text = "—"
    else:
        text = str(v)
    return " ".join(text.replace("|", "\\|").split())


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` is "l" or "r" per column."""
    headers = list(headers)
    align = list(align) if align is not None else ["l"] + ["r"] * (len(headers) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "| " + " | ".join(sep) + " |"]
    for r in rows:
        lines.append("| " + " | ".join(cell(v) for v in r) + " |")
    return "\n".join(lines)


def image(rel: str, caption: str) -> str:
    return f"![{caption}]({rel})"
