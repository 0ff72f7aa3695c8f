"""The beeswarm layout (ml.beeswarm): density stacking and colours, on a figure read back."""

import numpy as np
import pytest

from ml.beeswarm import LEVEL_COLOURS, NOT_RECORDED_COLOUR, SwarmRow, draw_beeswarm, swarm_offsets


def test_points_of_one_bin_stack_alternately_up_and_down():
    off = swarm_offsets(np.zeros(7), random_state=3)
    assert sorted(off) == [-3, -2, -1, 0, 1, 2, 3]
    # points far apart each sit alone in their bin, on the row's line
    assert np.all(swarm_offsets(np.arange(10) * 10.0) == 0)
    # two crowded spots, each stacked on its own: 0, +1, -1, +2 and 0, +1, -1
    x = np.array([0.0, 0.0, 0.0, 0.0, 5.0, 5.0, 5.0])
    off = swarm_offsets(x, random_state=0)
    assert sorted(off[:4]) == [-1, 0, 1, 2] and sorted(off[4:]) == [-1, 0, 1]
    # seeded: the same seed gives the same picture
    rng = np.random.default_rng(1).normal(size=500)
    assert np.array_equal(swarm_offsets(rng, random_state=2), swarm_offsets(rng, random_state=2))


def test_categorical_rows_get_one_colour_a_level_and_a_legend():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    n = 300
    codes = rng.integers(0, 3, size=n).astype(float)
    codes[:20] = np.nan
    rows = [SwarmRow("zone", rng.normal(size=n), codes, ("upper", "lower", "diffuse")),
            SwarmRow("age (years)", rng.normal(size=n), rng.uniform(20, 80, size=n))]
    fig, ax = plt.subplots()
    try:
        out = draw_beeswarm(ax, rows)
        zone = out["collections"]["zone"].get_facecolors()
        got = {tuple(c) for c in np.round(zone, 4)}
        want = {tuple(np.round(mcolors.to_rgba(c), 4)) for c in (*LEVEL_COLOURS[:3], NOT_RECORDED_COLOUR)}
        assert got == want
        assert [t.get_text() for t in out["legend"].get_texts()] == ["zone: upper", "zone: lower", "zone: diffuse",
                                                                     "grey: not recorded"]
        assert out["colour_bar"] is not None
        assert len({tuple(c) for c in out["collections"]["age (years)"].get_facecolors()}) > 20  # a value scale
        assert [t.get_text() for t in ax.get_yticklabels()] == ["age (years)", "zone"]  # first row on top
        with pytest.raises(ValueError, match="level codes"):
            draw_beeswarm(ax, [SwarmRow("zone", np.zeros(2), np.array([0.0, 3.0]), ("a", "b", "c"))])
    finally:
        plt.close(fig)
