"""ml.xai.game: the oracle as a shapiq Game; shapiq's exact values against ours and oracle_shapley."""

from math import factorial

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("shapiq")

from shapiq import ExactComputer  # noqa: E402

from data_gen import generate_cohort, oracle_shapley, weight_of_evidence  # noqa: E402
from ml.xai.game import OracleGame, brute_force_shapley  # noqa: E402

K_PLAYERS = 10
CLASS = "metastatic"


@pytest.fixture(scope="module")
def patient():
    """A patient every class can explain, and its ten most informative recorded columns."""
    df = generate_cohort(200, random_state=31)
    ev = weight_of_evidence(df)
    possible = (ev.total > -1e4).all(axis=1) & (df.notna().sum(axis=1).to_numpy() > 30)
    i = int(np.flatnonzero(possible)[0])
    row = df.iloc[[i]].drop(columns="calcification_type")
    k = ev.classes.index(CLASS)
    order = np.argsort(-np.abs(ev.values[i, :, k]))
    top = [ev.columns[j] for j in order if pd.notna(row.iloc[0][ev.columns[j]])][:K_PLAYERS]
    return row, top


def _shapiq_sv(game) -> np.ndarray:
    iv = ExactComputer(game)("SV", 1)
    return np.array([iv.dict_values.get((i,), 0.0) for i in range(game.n_players)])


def _permutation_sd(value, n: int) -> np.ndarray:
    """Exact standard deviation of each player's marginal contribution over uniform random orders."""
    masks = np.arange(1 << n)
    bits = ((masks[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
    v = value(bits)
    size = bits.sum(axis=1)
    w = np.array([factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)])
    sd = np.empty(n)
    for i in range(n):
        without = masks[~bits[:, i]]
        d = v[without | (1 << i)] - v[without]
        p = w[size[without]]
        mean = (p * d).sum()
        sd[i] = np.sqrt(max((p * (d - mean) ** 2).sum(), 0.0))
    return sd


def test_grand_and_empty_coalitions_are_the_oracles_posterior_and_prior(patient):
    row, _ = patient
    game = OracleGame(row, CLASS)
    ev = oracle_shapley(row, n_permutations=2)
    k = ev.classes.index(CLASS)
    np.testing.assert_allclose(game.value_all, ev.total[0], atol=1e-9)
    assert game.normalization_value == pytest.approx(ev.base[k], abs=1e-12)
    assert game(np.ones((1, 52), bool))[0] == pytest.approx(ev.total[0, k] - ev.base[k], abs=1e-9)


def test_shapiq_exact_matches_brute_force_on_a_sub_game(patient):
    """Ten free players, the other 42 columns fixed known at the patient's values."""
    row, top = patient
    game = OracleGame(row, CLASS, players=top, fixed="known")
    sv, bf = _shapiq_sv(game), brute_force_shapley(game.value_function, K_PLAYERS)
    np.testing.assert_allclose(sv, bf, atol=1e-9)
    full = game.value_function(np.ones((1, K_PLAYERS), bool))[0] - game.value_function(np.zeros((1, K_PLAYERS), bool))[0]
    assert bf.sum() == pytest.approx(full, abs=1e-9)  # efficiency
    assert np.abs(bf).max() > 0.1  # the sub-game carries evidence


def test_shapiq_exact_matches_oracle_shapley_within_its_monte_carlo_error(patient):
    """Only the ten columns recorded (the rest blank and, with missing="ignore", summed out).

    The other 42 columns are then dummy players of oracle_shapley's 52-player game, so its
    values for the ten are the sub-game's Shapley values, estimated from P permutations in
    antithetic pairs. A pair's mean has variance (σ² + cov) / 2 ≤ σ², σ the exact standard
    deviation of a player's marginal contribution over random orders (computed from the 2^10
    coalitions), so the estimate's standard error is at most σ / sqrt(P / 2): the tolerance is
    4 of those.
    """
    row, top = patient
    only = row.copy()
    only[[c for c in only.columns if c not in top]] = np.nan
    game = OracleGame(only, CLASS, players=top, fixed="unknown", missing="ignore")
    exact = _shapiq_sv(game)
    P = 256
    ev = oracle_shapley(only, n_permutations=P, missing="ignore", random_state=3)
    k = ev.classes.index(CLASS)
    cols = list(ev.columns)
    mc = ev.values[0, [cols.index(c) for c in top], k]
    tol = 4 * _permutation_sd(game.value_function, K_PLAYERS) / np.sqrt(P / 2) + 1e-9
    assert (np.abs(mc - exact) <= tol).all(), (mc - exact, tol)
    others = [cols.index(c) for c in cols if c not in top]
    assert np.abs(ev.values[0, others, k]).max() < 1e-9  # blanks are dummies under missing="ignore"
    np.testing.assert_allclose(exact, brute_force_shapley(game.value_function, K_PLAYERS), atol=1e-9)


def test_bad_input_is_refused_with_what_is_allowed(patient):
    row, top = patient
    with pytest.raises(ValueError, match="one patient"):
        OracleGame(pd.concat([row, row]), CLASS)
    with pytest.raises(ValueError, match="unknown class 'nope'"):
        OracleGame(row, "nope")
    with pytest.raises(ValueError, match=r"unknown: \['not_a_column'\]"):
        OracleGame(row, CLASS, players=["not_a_column"])
    with pytest.raises(ValueError, match="fixed must be"):
        OracleGame(row, CLASS, fixed="sometimes")
