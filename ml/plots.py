"""Figures of the classifier: per-patient waterfalls, per-class SHAP summaries, the clue audit,
calibration, confusion and learning curves (PNG files).

Research and teaching on synthetic data only; never a clinical device.

Every function writes PNG files with matplotlib and returns their paths; none calls
``plt.show``. When ``matplotlib.pyplot`` has not been imported yet, the first figure selects
the non-interactive Agg backend (an interactive session keeps its own backend; saving works
with any backend); importing this module changes nothing. SHAP values are shown centred across classes, as in
:mod:`ml.reasons`: a bar says how much a column moves one class relative to the others, in
log-odds.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "waterfall_png",
    "class_summary_pngs",
    "SUMMARY_MAX_PATIENTS",
]

#: ``class_summary_pngs`` explains a random sample of at most this many patients.
SUMMARY_MAX_PATIENTS = 5_000

_DPI = 120
_TOWARD_COLOUR = "#2c7bb6"  # blue: toward the class
_AWAY_COLOUR = "#e66101"  # orange: away from the class (colour-blind safe pair)
_UNTESTED_COLOUR = "#d9d9d9"
_SHAP_AXIS = "SHAP value toward {cls} (log-odds, centred across classes)"
_FOOTER = "pulmocalc — research/teaching on synthetic data; not a clinical device"


def _plt():
    """pyplot, on the Agg backend unless the caller imported pyplot (and chose a backend) first."""
    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib

        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, note: str | None = None) -> Path:
    """Write ``fig`` as PNG below every other artist a footer (and an optional note), close it."""
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.canvas.draw()
        bbox = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
        w, h = fig.get_size_inches()
        y = (bbox.y0 - 0.08) / h
        fig.text(bbox.x1 / w, y, _FOOTER, ha="right", va="top", fontsize=7, color="#777777")
        if note:
            fig.text(bbox.x0 / w, y, note, ha="left", va="top", fontsize=8, color="#555555")
        fig.savefig(path, dpi=_DPI, bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)
    return path


def _percent(p: float) -> str:
    from .wording import format_probability as pct

    return pct(float(p))


def _kb(model):
    from .wording import _model_kb

    return _model_kb(model)


# --------------------------------------------------------------------------------------------
# One patient
# --------------------------------------------------------------------------------------------
def _one_patient_explanation(model, x):
    """A single patient's shap.Explanation (columns, classes) and its id."""
    import shap

    from .treeshap import explain

    if isinstance(x, pd.Series):
        x = x.to_frame().T
    if isinstance(x, pd.DataFrame):
        if len(x) != 1:
            raise ValueError(f"waterfall_png explains one patient, got {len(x)} rows; pass df.iloc[[i]]")
        checked = model.check(x)
        return explain(model, checked)[0], str(checked.index[0])
    if isinstance(x, shap.Explanation):
        values = np.asarray(x.values)
        if values.ndim == 3:
            if values.shape[0] != 1:
                raise ValueError(f"waterfall_png explains one patient, got an explanation of {values.shape[0]}")
            x = x[0]
        elif values.ndim != 2:
            raise ValueError(f"expected one patient's SHAP values (columns, classes), got shape {values.shape}")
        return x, None
    raise TypeError(
        "waterfall_png needs one patient (a one-row DataFrame or a Series in the input contract) "
        f"or one row of ml.explain(...); got {type(x).__name__}"
    )


def _p_equals(percent: str) -> str:
    """"P = 25.0%", or "P > 99.9%" / "P < 0.1%" for format_probability's bounds."""
    return f"P {percent[0]} {percent[1:]}" if percent.startswith(("<", ">")) else f"P = {percent}"


def _label_fx_with_probability(fig, p: float) -> None:
    """Put the class probability beside shap's "f(x) = 5.258" label: "= 5.258 log-odds → P = 99.5%"
    (formatted by :func:`ml.wording.format_probability`, so never "100.0%").

    shap draws f(x) as two tick labels of a twin axis ("$f(x)$" and "$ = 5.258$"); they are
    found by their text (shap's axis order is not an API), and the value label is rewritten.
    """
    from .wording import format_probability

    for ax in fig.axes:
        texts = [t.get_text() for t in ax.get_xticklabels()]
        if "$f(x)$" not in texts:
            continue
        value = next((i for i, t in enumerate(texts) if t.startswith("$ = ")), None)
        if value is not None:
            texts[value] += f" log-odds \u2192 {_p_equals(format_probability(float(p)))}"
            # through the axis (its formatter redraws the labels); the label objects, and the
            # offsets and colour shap gave them, stay
            ax.set_xticklabels(texts)
            return
    raise RuntimeError("shap's waterfall has no 'f(x) = ...' label to put the probability beside; has shap changed its layout?")


def waterfall_png(
    model,
    explanation_row_or_patient,
    class_name: str | None,
    path,
    *,
    prevalence=None,
    max_display: int = 12,
    patient_id=None,
    title: str | None = None,
) -> Path:
    """A waterfall of one patient's reasons for one class (shap.plots.waterfall).

    Parameters
    ----------
    model : CalcificationModel
    explanation_row_or_patient : pandas.DataFrame (one row), pandas.Series or shap.Explanation
        The patient in the input contract, or its row of :func:`ml.explain` (values of shape
        (columns, classes)).
    class_name : str or None
        The class whose reasons are drawn; None draws the patient's most probable class.
    path : path-like
        The PNG to write.
    prevalence : mapping class -> share, optional
        Shifts the base value (and the probability in the title) to this class mix.
    max_display : int
        Bars drawn; the rest are summed into one.
    patient_id : optional
        Named in the title (a one-row DataFrame names its patient by its index).
    title : str, optional
        Replaces the default title (class label and probability).

    Returns
    -------
    pathlib.Path
        ``path``. The bars are centred SHAP values (log-odds relative to the other classes),
        labelled with the column in words and the patient's value ("zone: lower"); they add up
        from the centred base value E[f(X)] to the class's centred score f(x).
    """
    import shap

    from .reasons import make_reason
    from .treeshap import centred_shap

    row, pid = _one_patient_explanation(model, explanation_row_or_patient)
    if patient_id is not None:
        pid = str(patient_id)
    kb = _kb(model)
    classes = list(row.output_names) if row.output_names is not None else list(model.classes_)
    values = np.asarray(row.values, dtype=float)  # (J, K)
    base = np.asarray(row.base_values, dtype=float).reshape(-1)
    if prevalence is not None:
        from data_gen.sampler import resolve_prevalence

        target = resolve_prevalence(prevalence, kb)
        prior = model._prior()
        with np.errstate(divide="ignore"):
            base = base + np.log(target) - np.log(prior)
    scores = base + values.sum(axis=0)
    with np.errstate(invalid="ignore"):
        z = np.exp(scores - np.nanmax(scores))
        proba = z / z.sum()
    if class_name is None:
        k = int(np.argmax(proba))
    elif class_name in classes:
        k = classes.index(class_name)
    else:
        raise ValueError(f"unknown class {class_name!r}; the model has {classes}")
    cls = classes[k]
    centred = centred_shap(values[None])[0][:, k]
    finite = np.isfinite(base)
    cbase = float(base[k] - base[finite].mean()) if np.isfinite(base[k]) else float("-inf")
    features = list(row.feature_names)
    data = row.data
    reasons = [make_reason(kb, cls, c, data[j], centred[j]) for j, c in enumerate(features)]
    # shap splits labels at "="; "*" marks the clues the review states for this class
    texts = [r.text.replace("=", ":") + (" *" if r.is_paper_clue else "") for r in reasons]
    single = shap.Explanation(values=centred, base_values=cbase, data=None, feature_names=texts)

    plt = _plt()
    n_bars = min(max_display, len(features))
    plt.figure(figsize=(10, 0.5 * n_bars + 2.2))
    shap.plots.waterfall(single, max_display=max_display, show=False)
    fig = plt.gcf()
    ax = fig.axes[0]
    ax.set_xlabel(_SHAP_AXIS.format(cls=cls), fontsize=11, labelpad=30)
    who = f"patient {pid}: " if pid is not None else ""
    prev_note = " (prevalence-adjusted)" if prevalence is not None else ""
    ax.set_title(
        title or f"{who}{kb.classes[cls].label}, probability {_percent(proba[k])}{prev_note}",
        fontsize=13,
        pad=34,
    )
    # shap's wording "N other features"; ours speaks of columns (labels carry no "=", so
    # shap's grey and black copies of each label are the same text)
    ax.set_yticklabels([t.get_text().replace(" other features", " other columns") for t in ax.get_yticklabels()], fontsize=13)
    _label_fx_with_probability(fig, proba[k])
    return _save(fig, path, note="* a clue the review states for this class (Table 1, text or literature)")


# --------------------------------------------------------------------------------------------
# Per class
# --------------------------------------------------------------------------------------------
def _numeric_data(kb, data: np.ndarray, columns: Sequence[str]) -> tuple[np.ndarray, list[str], list[tuple[str, ...] | None]]:
    """Feature values as floats for colouring, axis names with units or codes, and the levels of
    categorical columns with more than two levels (their values are level indices, coloured one
    colour a level; every other column is on a low-to-high value scale)."""
    from .wording import column_display_name

    out = np.full(data.shape, np.nan)
    names, levels_of = [], []
    for j, c in enumerate(columns):
        spec = kb.columns[c]
        col = pd.Series(data[:, j])
        name = column_display_name(c, kb)
        levels = None
        if spec.kind == "categorical":
            levels = tuple(spec.levels)
            codes = col.map({lv: i for i, lv in enumerate(levels)})
            out[:, j] = pd.to_numeric(codes, errors="coerce").to_numpy(dtype=float)
            if len(levels) == 2:
                name = f"{name} ({levels[1]} = high)"
                levels = None
        else:
            out[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
            if spec.unit:
                name = f"{name} ({spec.unit})"
        names.append(name)
        levels_of.append(levels)
    return out, names, levels_of


def class_summary_pngs(model, df: pd.DataFrame, out_dir, *, kind: str = "beeswarm", max_display: int = 12, random_state=0, classes: Sequence[str] | None = None) -> list[Path]:
    """One PNG per class: a beeswarm or bar plot of that class's (centred) SHAP values.

    Parameters
    ----------
    model : CalcificationModel
    df : pandas.DataFrame
        Patients in the input contract; a random sample of at most
        :data:`SUMMARY_MAX_PATIENTS` is explained.
    out_dir : path-like
        Written as ``<out_dir>/shap_<kind>_<class>.png``.
    kind : {"beeswarm", "bar"}
        Beeswarm (:func:`ml.beeswarm.draw_beeswarm`): one dot per patient; binary and
        continuous columns coloured on a low-to-high value scale (colour bar), categorical
        columns with more than two levels (``zone``) one colour per level (legend); grey = not
        recorded. Bar (``shap.plots.bar``): mean |SHAP| per column.
    max_display : int
        Columns shown: the ``max_display`` columns with the largest mean |centred SHAP| for the
        class. The others are left out, not summed into an extra row (a sum of many columns
        spreads wider than any one column and would read as the most important row).

    Returns
    -------
    list of pathlib.Path
        One per class, in the model's class order.
    """
    import shap

    from .beeswarm import SwarmRow, draw_beeswarm
    from .treeshap import centred_shap, explain

    if kind not in ("beeswarm", "bar"):
        raise ValueError(f"kind must be 'beeswarm' or 'bar', got {kind!r}")
    if int(max_display) < 1:
        raise ValueError(f"max_display must be at least 1, got {max_display}")
    kb = _kb(model)
    checked = model.check(df)
    if len(checked) > SUMMARY_MAX_PATIENTS:
        checked = checked.sample(SUMMARY_MAX_PATIENTS, random_state=random_state)
    ex = explain(model, checked)
    centred = centred_shap(ex.values)
    columns = list(ex.feature_names)
    data, names, levels_of = _numeric_data(kb, ex.data, columns)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    paths = []
    wanted = list(model.classes_) if classes is None else list(classes)
    for cls in wanted:
        if cls not in model.classes_:
            raise ValueError(f"unknown class {cls!r}; the model has {list(model.classes_)}")
        k = list(model.classes_).index(cls)
        values = centred[:, :, k]
        top = np.argsort(-np.abs(values).mean(axis=0), kind="stable")[: int(max_display)]
        rows = len(top)
        fig, ax = plt.subplots(figsize=(10, 0.42 * rows + 2.0))
        if kind == "beeswarm":
            swarm = [SwarmRow(names[j], values[:, j], data[:, j], levels_of[j]) for j in top]
            draw_beeswarm(ax, swarm, random_state=random_state, colour_bar_label="column value (high = yes/seen)")
            ax.set_xlabel(_SHAP_AXIS.format(cls=cls), fontsize=11)
        else:
            e = shap.Explanation(values=values[:, top], data=data[:, top], feature_names=[names[j] for j in top])
            shap.plots.bar(e, max_display=rows, show=False, ax=ax)
            ax.set_xlabel(f"mean |SHAP value| toward {cls} (log-odds, centred across classes)", fontsize=11)
        ax.set_ylabel(f"column (unit): top {rows} of {len(columns)} by mean |SHAP|", fontsize=11)
        ax.set_title(f"{kb.classes[cls].label} — what moves its score: top {rows} of {len(columns)} columns by mean |SHAP| "
                     f"({len(checked):,} patients)", fontsize=12)
        paths.append(_save(fig, out_dir / f"shap_{kind}_{cls}.png"))
    return paths
