"""Sampling-error helpers for the data_gen fidelity tests."""

from __future__ import annotations

import math

from scipy.stats import norm

#: family-wise error rate of each multi-comparison fidelity test (Bonferroni)
FAMILY_ALPHA = 0.001


def bonferroni_z(n_comparisons: int, alpha: float = FAMILY_ALPHA) -> float:
    """Two-sided z threshold so that ``n_comparisons`` tests together err with prob <= alpha.

    For ~250 comparisons and alpha = 0.001 this is about 4.6 (the brief's z = 4.5).
    """
    return float(norm.isf(alpha / (2 * max(1, n_comparisons))))


def binomial_se(p: float, n: int) -> float:
    """Standard error of a frequency with true probability ``p`` over ``n`` draws."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else math.inf


def within(observed: float, expected: float, se: float, z: float) -> bool:
    """|observed - expected| <= z * se; with se = 0 (p = 0 or 1) the match must be exact."""
    return abs(observed - expected) <= z * se + 1e-12


def failures(checks, z: float, label: str) -> list:
    """Checks (key..., observed, expected, se) outside z SEs; prints the worst |z| seen."""
    def zscore(o, e, s):
        if s > 0:
            return abs(o - e) / s
        return 0.0 if abs(o - e) <= 1e-12 else math.inf

    worst = max(checks, key=lambda c: zscore(*c[-3:]))
    print(f"\n{label}: {len(checks)} comparisons, Bonferroni z = {z:.2f}, worst |z| = {zscore(*worst[-3:]):.2f} at {worst[:-3]}")
    return [(*c[:-3], round(c[-3], 5), round(c[-2], 5)) for c in checks if not within(*c[-3:], z)]


def class_frequency_gap(p, y):
    """|mean predicted probability - class frequency| per class, and its sampling SE.

    ``p`` is (n, K) posteriors, ``y`` the (n,) class codes. Under a calibrated posterior
    mean(1{y=k} - p_k) has standard error sqrt(E[p_k (1 - p_k)] / n).
    """
    import numpy as np

    p = np.asarray(p)
    n, K = p.shape
    freq = np.bincount(y, minlength=K) / n
    return np.abs(p.mean(axis=0) - freq), np.sqrt((p * (1 - p)).mean(axis=0) / n)
