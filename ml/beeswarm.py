"""A SHAP beeswarm drawn with matplotlib, with categorical colours for categorical columns.

shap's own beeswarm colours every row on one low-to-high value scale, which reads a
categorical column such as ``zone`` (upper, lower, diffuse) as if its levels were ordered, and
it sums the columns it does not show into a "Sum of N other features" row whose spread is
wider than any shown row's. This module draws only the rows it is given. Each row is one
column: a dot per patient at its SHAP value, spread vertically by local density as shap does
(the row's x range is cut into bins; the points of a bin are stacked alternately above and
below the row's line, in a seeded random order so that colours mix), coloured either by the
column's value on a value scale (binary and continuous columns; one colour bar for the
figure) or by level with one distinct colour per level (categorical columns; a legend names
the levels). Not-recorded values are grey, and the legend says so.

It only draws; choosing rows, naming them and saving the PNG is :mod:`ml.plots`' job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SwarmRow", "swarm_offsets", "draw_beeswarm", "NOT_RECORDED_COLOUR", "LEVEL_COLOURS"]

#: Dots of patients in whom the column was not recorded.
NOT_RECORDED_COLOUR = "#a6a6a6"
#: One colour per level of a categorical column (Okabe-Ito, colour-blind safe; no grey, and
#: none that reads as an end of the blue-red value scale).
LEVEL_COLOURS = ("#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442", "#d55e00", "#000000")
#: Bins per row for the density layout (shap uses 100).
N_BINS = 100
#: Share of the distance between two rows that the densest bin's stack may fill.
ROW_HEIGHT = 0.8


@dataclass(frozen=True)
class SwarmRow:
    """One row of the beeswarm.

    Attributes
    ----------
    label : str
        The row's name on the y axis.
    shap : numpy.ndarray, shape (n_patients,)
        SHAP values (x positions).
    value : numpy.ndarray, shape (n_patients,)
        Colour data: a float on the value scale (binary, continuous), or the level's index
        into ``levels`` (categorical). NaN = not recorded.
    levels : tuple of str, optional
        Set for a categorical row: the level names, one colour each.
    """

    label: str
    shap: np.ndarray
    value: np.ndarray
    levels: tuple[str, ...] | None = None


def swarm_offsets(x: np.ndarray, *, n_bins: int = N_BINS, random_state=0) -> np.ndarray:
    """Vertical offsets (in stack units) that spread points of equal x, as shap's beeswarm does.

    The range of ``x`` is cut into ``n_bins`` equal bins; in each bin, points in a random order
    (seeded) get offsets 0, +1, -1, +2, -2, ...

    Parameters
    ----------
    x : numpy.ndarray, shape (n,)
        Finite x positions.
    n_bins : int
    random_state : int or numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape (n,)
        Integer-valued offsets; the largest absolute offset is about half the densest bin's count.
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n == 0:
        return np.zeros(0)
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo
    bins = np.zeros(n, dtype=int) if span == 0 else np.round(n_bins * (x - lo) / span).astype(int)
    rng = np.random.default_rng(random_state)
    order = rng.permutation(n)
    order = order[np.argsort(bins[order], kind="stable")]  # by bin, random within a bin
    sorted_bins = bins[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_bins)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, n]))
    layer = np.arange(n) - first  # 0, 1, 2, ... within each bin
    offset = np.ceil(layer / 2) * np.where(layer % 2 == 1, 1.0, -1.0)
    out = np.empty(n)
    out[order] = offset
    return out


def draw_beeswarm(ax, rows: Sequence[SwarmRow], *, cmap=None, dot_size: float = 10, random_state=0,
                  colour_bar_label: str = "column value (low to high)"):
    """Draw ``rows`` top to bottom on ``ax``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    rows : sequence of SwarmRow
        The first row is drawn at the top.
    cmap : matplotlib colormap, optional
        The value scale (default: shap's blue-to-red).
    dot_size : float
        Marker area (points²).
    random_state : int
        Seeds the order of points within a density bin (only the picture, never a number).
    colour_bar_label : str

    Returns
    -------
    dict
        ``{"collections": {label: PathCollection}, "legend": Legend or None,
        "colour_bar": Colorbar or None}``.
    """
    import matplotlib.colors as mcolors
    from matplotlib.cm import ScalarMappable
    from matplotlib.lines import Line2D

    if cmap is None:
        from shap.plots.colors import red_blue as cmap
    fig = ax.figure
    norm = mcolors.Normalize(0.0, 1.0)
    collections, handles = {}, []
    any_scale = any_missing = False
    n_rows = len(rows)
    for i, row in enumerate(rows):
        y0 = n_rows - 1 - i
        x = np.asarray(row.shap, dtype=float)
        v = np.asarray(row.value, dtype=float)
        if x.shape != v.shape or x.ndim != 1:
            raise ValueError(f"row {row.label!r}: shap and value must be 1-d of one length, got {x.shape} and {v.shape}")
        offsets = swarm_offsets(x, random_state=random_state)
        scale = ROW_HEIGHT / 2 / max(1.0, np.abs(offsets).max() + 1)
        missing = np.isnan(v)
        any_missing |= bool(missing.any())
        colours = np.empty((len(x), 4))
        colours[missing] = mcolors.to_rgba(NOT_RECORDED_COLOUR)
        if row.levels is not None:
            if len(row.levels) > len(LEVEL_COLOURS):
                raise ValueError(f"row {row.label!r} has {len(row.levels)} levels; at most {len(LEVEL_COLOURS)} colours")
            palette = np.array([mcolors.to_rgba(c) for c in LEVEL_COLOURS[: len(row.levels)]])
            codes = v[~missing].astype(int)
            if len(codes) and (codes.min() < 0 or codes.max() >= len(row.levels)):
                raise ValueError(f"row {row.label!r}: level codes must be 0..{len(row.levels) - 1}")
            colours[~missing] = palette[codes]
            handles += [Line2D([], [], marker="o", linestyle="", color=palette[j], label=f"{row.label}: {lv}")
                        for j, lv in enumerate(row.levels)]
        else:
            any_scale = True
            known = v[~missing]
            if len(known):
                # shap's colour range: the 5th to 95th percentile, so that a few outliers do not
                # wash out the rest (a binary column keeps 0 and 1)
                lo, hi = np.nanpercentile(known, [5, 95])
                if hi <= lo:
                    lo, hi = known.min(), known.max()
                t = np.clip((known - lo) / (hi - lo), 0, 1) if hi > lo else np.full(len(known), 0.5)
                colours[~missing] = cmap(norm(t))
        # not-recorded dots first, so that the recorded ones stay visible on top
        draw = np.argsort(~missing, kind="stable")
        collections[row.label] = ax.scatter(x[draw], y0 + scale * offsets[draw], c=colours[draw], s=dot_size,
                                            linewidths=0, rasterized=len(x) > 500, zorder=3)
        ax.axhline(y0, color="#cccccc", linewidth=0.5, linestyle=(0, (1, 4)), zorder=1)
    ax.axvline(0.0, color="#999999", linewidth=0.8, zorder=2)
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels([r.label for r in reversed(rows)], fontsize=11)
    ax.set_ylim(-0.6, n_rows - 0.4)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    colour_bar = legend = None
    if any_scale:
        sm = ScalarMappable(norm=norm, cmap=cmap)
        colour_bar = fig.colorbar(sm, ax=ax, fraction=0.03, pad=0.02, aspect=40)
        colour_bar.set_ticks([0, 1])
        colour_bar.set_ticklabels(["low", "high"])
        colour_bar.set_label(colour_bar_label, fontsize=10)
        colour_bar.outline.set_visible(False)
    if any_missing:
        handles.append(Line2D([], [], marker="o", linestyle="", color=NOT_RECORDED_COLOUR, label="grey: not recorded"))
    if handles:
        legend = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.13 if any_scale else 1.01, 1.0),
                           fontsize=9, frameon=False, title="dot colour", title_fontsize=10, handletextpad=0.3)
    return {"collections": collections, "legend": legend, "colour_bar": colour_bar}
