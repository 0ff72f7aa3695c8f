"""The report's figures: the clue-audit heatmap, reliability, confusion, learning curve, recording gap.

Each function draws one PNG from numbers the evaluation already computed (it never recomputes
them), with the shared style and footer of :mod:`ml.plots` (Agg backend, fixed DPI, the
not-a-clinical-device note), so that the same numbers always give the same picture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from .plots import _AWAY_COLOUR, _TOWARD_COLOUR, _UNTESTED_COLOUR, _plt, _save

__all__ = ["audit_heatmap_png", "reliability_png", "confusion_png", "learning_curve_png", "gap_by_recording_png"]


# --------------------------------------------------------------------------------------------
# The clue audit
# --------------------------------------------------------------------------------------------
_AUDIT_COLUMNS = ("calcification_type", "column", "expected", "passed", "observed_effect")


def _observed_direction(expected: str, passed, effect) -> float:
    """+1 toward the class, -1 away, NaN unknown (see audit_heatmap_png)."""
    exp = 1.0 if expected == "toward" else -1.0
    if passed is not None and passed is not pd.NA and not (isinstance(passed, float) and math.isnan(passed)):
        return exp if bool(passed) else -exp
    if effect is None or not np.isfinite(effect) or effect == 0:
        return float("nan")
    return float(np.sign(effect))


def _audit_row_label(column: str, kb, display) -> str:
    if column not in kb.columns:
        return column
    words = display(column, kb)
    return words if words.replace(" ", "_") == column else f"{words} ({column})"


def audit_heatmap_png(audit_table, path, *, knowledge=None, title: str | None = None) -> Path:
    """The clue audit as a column × class grid: expected vs observed direction of each clue.

    Parameters
    ----------
    audit_table : pandas.DataFrame or an object with ``.table``
        One row per (class, column) clue with ``calcification_type``, ``column``,
        ``expected`` ("toward" or "away"), ``passed`` (bool or NA) and ``observed_effect``.
    path : path-like

    Notes
    -----
    Colour is the observed direction relative to the class: blue toward, orange away, grey
    not testable. Where the audit decided (``passed`` is True or False) the observed direction
    is the expected one when the clue passed and the opposite when it failed, so that clues
    whose effect is stated as "lower values push toward" (a negative rank correlation) read
    the same as the others; otherwise it is the sign of ``observed_effect``. Each cell shows
    the expected direction (↑ toward, ↓ away) and the verdict (✓ passed, ✗ failed, ? not
    tested). Cells without a clue stay white.
    """
    plt = _plt()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from .wording import _kb as load_kb
    from .wording import column_display_name

    table = getattr(audit_table, "table", audit_table)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected an audit table (DataFrame), got {type(audit_table).__name__}")
    missing = [c for c in _AUDIT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the audit table lacks columns {missing}; it needs {list(_AUDIT_COLUMNS)}")
    if table.empty:
        raise ValueError("the audit table has no clues to draw")
    bad = sorted(set(table["expected"].astype(str)) - {"toward", "away"})
    if bad:
        raise ValueError(f"expected must be 'toward' or 'away', got {bad}")
    kb = load_kb(knowledge)

    cls_seen = list(dict.fromkeys(table["calcification_type"].astype(str)))
    classes = [k for k in kb.class_names if k in cls_seen] + [k for k in cls_seen if k not in kb.class_names]
    col_seen = list(dict.fromkeys(table["column"].astype(str)))
    columns = [c for c in kb.column_names if c in col_seen] + [c for c in col_seen if c not in kb.column_names]
    ci = {k: i for i, k in enumerate(classes)}
    ri = {c: i for i, c in enumerate(columns)}

    grid = np.full((len(columns), len(classes)), np.nan)  # 0 away, 1 untested, 2 toward
    has = np.zeros_like(grid, dtype=bool)
    notes = np.full(grid.shape, "", dtype=object)
    n_pass = n_fail = 0
    for rec in table.itertuples(index=False):
        r, c = ri[str(rec.column)], ci[str(rec.calcification_type)]
        passed = rec.passed
        known = not (passed is None or passed is pd.NA or (isinstance(passed, float) and math.isnan(passed)))
        d = _observed_direction(str(rec.expected), passed if known else None, float(rec.observed_effect) if rec.observed_effect is not None and rec.observed_effect is not pd.NA else float("nan"))
        grid[r, c] = 1.0 if not np.isfinite(d) else (2.0 if d > 0 else 0.0)
        has[r, c] = True
        arrow = "\u2191" if rec.expected == "toward" else "\u2193"
        verdict = ("\u2713" if bool(passed) else "\u2717") if known else "?"
        n_pass += known and bool(passed)
        n_fail += known and not bool(passed)
        notes[r, c] = f"{arrow}{verdict}"

    cmap = ListedColormap([_AWAY_COLOUR, _UNTESTED_COLOUR, _TOWARD_COLOUR]).with_extremes(bad="white")
    height = 0.3 * len(columns) + 2.6
    fig, ax = plt.subplots(figsize=(2.0 + 1.25 * len(classes) + 3.0, height))
    ax.imshow(np.ma.masked_invalid(np.where(has, grid, np.nan)), cmap=cmap, vmin=0, vmax=2, aspect="auto", interpolation="nearest")
    for r in range(len(columns)):
        for c in range(len(classes)):
            if has[r, c]:
                failed = notes[r, c].endswith("\u2717")
                ax.text(c, r, notes[r, c], ha="center", va="center", fontsize=10, fontweight="bold" if failed else "normal", color="black" if grid[r, c] == 1 else "white")
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=25, ha="right", fontsize=10)
    ax.set_yticks(range(len(columns)))
    ax.set_yticklabels([_audit_row_label(c, kb, column_display_name) for c in columns], fontsize=9)
    ax.set_xticks(np.arange(-0.5, len(classes)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(columns)), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("calcification type (class)", fontsize=11)
    ax.set_ylabel("input column (clue)", fontsize=11)
    decided = n_pass + n_fail
    rate = f", {n_pass}/{decided} passed ({100 * n_pass / decided:.1f}%)" if decided else ""  # one decimal: 97.6%, not 98%
    ax.set_title(title or f"Clue audit: the review's clues, expected vs observed SHAP direction{rate}", fontsize=12)
    handles = [
        Patch(facecolor=_TOWARD_COLOUR, label="observed: toward the class"),
        Patch(facecolor=_AWAY_COLOUR, label="observed: away from the class"),
        Patch(facecolor=_UNTESTED_COLOUR, label="not testable"),
        Patch(facecolor="white", edgecolor="#999999", label="no clue in the review"),
        Patch(facecolor="none", edgecolor="none", label="\u2191 expected toward, \u2193 expected away"),
        Patch(facecolor="none", edgecolor="none", label="\u2713 passed, \u2717 failed, ? not tested"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9, frameon=False, title="legend", title_fontsize=10)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# Evaluation figures
# --------------------------------------------------------------------------------------------
def _bins_of(obj) -> Mapping:
    if isinstance(obj, Mapping) and "reliability" in obj:
        return obj["reliability"]
    if isinstance(obj, Mapping) and {"edges", "confidence", "accuracy", "count"} <= set(obj):
        return obj
    raise ValueError(
        "expected reliability bins (edges, confidence, accuracy, count) or a classification_metrics "
        f"dict with 'reliability'; got {type(obj).__name__} with keys {sorted(obj) if isinstance(obj, Mapping) else '-'}"
    )


def reliability_png(reliability_bins_by_model: Mapping[str, Mapping], path, *, title: str | None = None) -> Path:
    """Reliability diagram (top-label calibration) of one or more models.

    Parameters
    ----------
    reliability_bins_by_model : mapping name -> bins
        Bins as in :func:`ml.classification_metrics`'s ``reliability`` (``edges``,
        ``confidence``, ``accuracy``, ``count``; NaN for empty bins), or the whole metrics dict.
    path : path-like
    """
    plt = _plt()
    if not reliability_bins_by_model:
        raise ValueError("no models to draw")
    fig, (ax, axc) = plt.subplots(2, 1, figsize=(7, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], linestyle="--", color="#888888", linewidth=1, label="perfect calibration")
    names = list(reliability_bins_by_model)
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        b = _bins_of(reliability_bins_by_model[name])
        edges = np.asarray(b["edges"], dtype=float)
        conf = np.asarray(b["confidence"], dtype=float)
        acc = np.asarray(b["accuracy"], dtype=float)
        count = np.asarray(b["count"], dtype=float)
        ok = count > 0
        ax.plot(conf[ok], acc[ok], marker="o", linewidth=1.5, label=str(name))
        centres = (edges[:-1] + edges[1:]) / 2
        step = np.diff(edges)
        share = count / count.sum() if count.sum() else count
        axc.bar(centres - 0.4 * step + (i + 0.5) * width * step, share, width=width * step, label=str(name))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("observed accuracy (share correct)", fontsize=11)
    ax.set_title(title or "Reliability of the top-class probability", fontsize=12)
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(alpha=0.3)
    axc.set_xlabel("predicted probability of the top class (bin mean)", fontsize=11)
    axc.set_ylabel("share of patients", fontsize=10)
    axc.set_yscale("log")
    axc.grid(alpha=0.3)
    return _save(fig, path)


def confusion_png(matrix, classes: Sequence[str], path, *, title: str | None = None, knowledge=None) -> Path:
    """Confusion matrix (rows = true class, columns = predicted), coloured by row share.

    ``matrix`` is a (classes × classes) array or nested list of counts, as in
    :func:`ml.classification_metrics`' ``confusion_matrix``.
    """
    plt = _plt()
    m = np.asarray(matrix, dtype=float)
    classes = [str(c) for c in classes]
    if m.ndim != 2 or m.shape != (len(classes), len(classes)):
        raise ValueError(f"matrix must be {len(classes)} x {len(classes)} for classes {classes}, got shape {m.shape}")
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.3 * len(classes) + 3.5, 1.1 * len(classes) + 2.2))
    im = ax.imshow(100 * share, cmap="Blues", vmin=0, vmax=100)
    for i in range(len(classes)):
        for j in range(len(classes)):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, f"{int(m[i, j]):,}\n{100 * share[i, j]:.1f}%", ha="center", va="center", fontsize=9, color=colour)
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=25, ha="right", fontsize=10)
    ax.set_yticks(range(len(classes)))
    ax.set_yticklabels(classes, fontsize=10)
    ax.set_xlabel("predicted class", fontsize=11)
    ax.set_ylabel("true class", fontsize=11)
    ax.set_title(title or f"Confusion matrix ({int(m.sum()):,} patients)", fontsize=12)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label("share of the true class (%)", fontsize=10)
    return _save(fig, path)


def learning_curve_png(frame: pd.DataFrame, path, *, title: str | None = None) -> Path:
    """Model vs oracle accuracy and log loss against the training cohort size, over seeds.

    ``frame`` has ``n`` (or ``n_train``, as :func:`ml.learning_curve` returns),
    ``model_accuracy``, ``oracle_accuracy``, ``model_log_loss`` and ``oracle_log_loss``, and
    optionally ``seed`` (one row per size and seed; without it every row is one run). Each
    seed's result is a dot, the classifier's mean over seeds a line, the band its minimum to
    maximum over seeds (the legend says so), the oracle a dashed line.
    """
    plt = _plt()
    f = pd.DataFrame(frame)
    ncol = "n" if "n" in f.columns else "n_train" if "n_train" in f.columns else None
    need = ["model_accuracy", "oracle_accuracy", "model_log_loss", "oracle_log_loss"]
    missing = [c for c in need if c not in f.columns] + ([] if ncol else ["n"])
    if missing:
        raise ValueError(f"the learning-curve frame lacks columns {missing}")
    f = f.sort_values(ncol)
    g = f.groupby(ncol, sort=True)
    n = np.asarray(g.size().index, dtype=float)
    n_seeds = int(f["seed"].nunique()) if "seed" in f.columns else 1
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for a, col, scale in ((a1, "accuracy", 100.0), (a2, "log_loss", 1.0)):
        model = g[f"model_{col}"]
        if n_seeds > 1:
            a.fill_between(n, scale * model.min(), scale * model.max(), color="C0", alpha=0.2, linewidth=0,
                           label=f"classifier: min\u2013max over {n_seeds} seeds")
            a.scatter(f[ncol], scale * f[f"model_{col}"], s=14, color="C0", alpha=0.6, zorder=3, label="classifier: one seed")
        a.plot(n, scale * model.mean(), marker="o" if n_seeds == 1 else None, color="C0",
               label=f"classifier: mean of {n_seeds} seeds" if n_seeds > 1 else "classifier")
        a.plot(n, scale * g[f"oracle_{col}"].mean(), linestyle="--", color="black", label="oracle (Bayes optimum)")
    a1.set_ylabel("accuracy (%)", fontsize=11)
    a1.set_title("Accuracy on the fixed test cohort", fontsize=12)
    a2.set_ylabel("log loss (nats per patient)", fontsize=11)
    a2.set_title("Log loss on the fixed test cohort", fontsize=12)
    for a in (a1, a2):
        if len(n) > 1 and n.min() > 0:
            a.set_xscale("log")
            a.set_xticks(n, [f"{int(v):,}" for v in n])  # the sizes trained, not powers of ten
            a.minorticks_off()
        a.set_xlabel("training cohort size (patients)", fontsize=11)
        a.grid(alpha=0.3)
        a.legend(fontsize=9)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return _save(fig, path)


def gap_by_recording_png(rows: Sequence[Mapping], path, *, title: str | None = None) -> Path:
    """Accuracy and log-loss gap to the oracle (with 95% CIs) against the share of cells recorded.

    ``rows`` are :func:`ml.realworld.gap_by_recording`'s entries (``recording``,
    ``cells_recorded``, ``accuracy_gap_pp`` with ``accuracy_gap_pp_ci``, ``log_loss_gap`` with
    ``log_loss_gap_ci``).
    """
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6))
    for r in rows:
        x = 100 * r["cells_recorded"]
        for ax, key, scale in ((a1, "accuracy_gap_pp", 1.0), (a2, "log_loss_gap", 1.0)):
            lo, hi = r[key + "_ci"]
            y = r[key] * scale
            marker = "s" if isinstance(r["recording"], str) else "o"
            ax.errorbar([x], [y], yerr=[[y - lo], [hi - y]], fmt=marker, capsize=4, color="C0" if marker == "o" else "C3")
            ax.annotate(str(r["recording"]), (x, y), textcoords="offset points", xytext=(6, 6), fontsize=9)
    a1.axhline(1.0, color="grey", linestyle=":", label="limit for sparse records (1.0 pp)")
    a2.axhline(0.03, color="grey", linestyle=":", label="limit for sparse records (0.03 nats)")
    a1.set_ylabel("accuracy gap, oracle − model (pp)", fontsize=11)
    a2.set_ylabel("log-loss gap, model − oracle (nats)", fontsize=11)
    for a in (a1, a2):
        a.axhline(0.0, color="black", linewidth=0.8)
        a.set_xlabel("cells recorded (%)", fontsize=11)
        a.grid(alpha=0.3)
        a.legend(fontsize=9, loc="upper right")
    a1.set_title("Accuracy gap to the exact oracle (95% CI)", fontsize=12)
    a2.set_title("Log-loss gap to the exact oracle (95% CI)", fontsize=12)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return _save(fig, path)
