"""Sizes and sample budgets of an explainer-leaderboard run (full and quick).

The budgets are part of the result: an explainer's agreement with the truth depends on its
samples, so every run states them on the leaderboard page.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Sizes"]


@dataclass(frozen=True)
class Sizes:
    """Sizes and budgets of one run."""

    patients: int
    other_models_n: int  # training cohort of the logistic regression and the random forest
    background: int
    null_train: int  # the permuted-label floor's training sample
    n_permutations: int
    kernel_samples: int
    permutation_evals: int
    lime_samples: int
    agnostic_background: int
    exact_background: int
    forest_trees: int
    null_refits: int  # null models averaged by the permuted-label floor
    random_draws: int  # draws averaged by the random floor

    def budgets(self) -> dict:
        """The built-in explainers' budgets, as :func:`ml.benchmark_explainers` takes them (``budgets=``)."""
        return dict(kernel_samples=self.kernel_samples, permutation_evals=self.permutation_evals, lime_samples=self.lime_samples,
                    agnostic_background=self.agnostic_background, exact_background=self.exact_background,
                    null_refits=self.null_refits, random_draws=self.random_draws)


# 50k patients for the other models: with 52 columns and 5 classes the logistic regression and
# the bounded forest are within a few tenths of a point of their accuracy at 200k in a
# fraction of the time, so their attributions reflect what each kind of model learns, not noise.
# 10 null models for the permuted-label floor: one null model's Spearman with the truth moves by
# about 0.04 from one permutation to the next (8 logistic-regression refits: -0.048 .. +0.061),
# so 10 bring the floor's error between null models to about 0.013. The random floor averages 10
# draws as well: one draw's raw FA@5 moved by up to 3 of its standard errors over patients
FULL = Sizes(500, 50_000, 1_000, 20_000, 64, 256, 210, 1_000, 10, 100, 100, 10, 10)
QUICK = Sizes(24, 3_000, 200, 2_000, 16, 128, 106, 200, 5, 30, 30, 2, 2)
