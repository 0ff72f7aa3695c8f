"""Report section: the explainer leaderboard, rendered from its tidy frame (or the CSV it was saved to).

Design. :func:`ml.benchmark_explainers` returns one row per (model, explainer, ground truth,
metric); this module only renders such a frame: a Markdown page (one summary table per model,
the headline findings computed from the numbers, never written by hand) and a figure of
agreement with the data-generating truth against seconds per patient (log scale), one marker
per (model, explainer). ``pulmocalc xai-bench`` writes the page (:mod:`ml.cli.xai`); the benchmark report's section 3b
(:mod:`ml.report.leaderboard`) renders its own small run with the same tables and findings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._common import DISCLAIMER, num, table

__all__ = ["ADJUSTED", "FLOORS", "SUMMARY", "findings", "leaderboard_figure", "leaderboard_markdown", "model_table", "model_tables",
           "normalise",
           "read_leaderboard", "write_leaderboard"]

TITLE = "Which explainer recovers the truth?"
FLOORS = ("random", "permuted_label")
#: metrics of signed agreement over every column (the top-k and rank metrics look at magnitudes first)
SIGNED_METRICS = ("spearman", "sign_agreement")
SUMMARY = [  # (ground truth, metric, header)
    ("", "seconds_per_patient", "s / patient"),
    ("model", "spearman", "fidelity ρ"),
    ("model", "FA@5", "fidelity FA@5"),
    ("oracle_shapley", "spearman", "truth ρ"),
    ("oracle_shapley", "FA@5", "truth FA@5"),
    ("oracle_shapley", "SA@5", "truth SA@5"),
    ("oracle_shapley", "RC", "truth RC"),
    ("oracle_shapley", "PRA", "truth PRA"),
    ("oracle_shapley", "sign_agreement", "truth sign"),
    ("weight_of_evidence", "spearman", "WoE ρ"),
    ("", "deletion_mean", "deletion"),
    ("", "clue_pass_rate", "clue audit"),
]
ADJUSTED = [  # (ground truth, metric, header): chance-adjusted agreement beyond the larger of the two nulls
    ("model", "spearman", "fidelity ρ"),
    ("model", "FA@5", "fidelity FA@5"),
    ("oracle_shapley", "spearman", "truth ρ"),
    ("oracle_shapley", "FA@5", "truth FA@5"),
    ("oracle_shapley", "RA@5", "truth RA@5"),
    ("oracle_shapley", "SA@5", "truth SA@5"),
    ("oracle_shapley", "SRA@5", "truth SRA@5"),
    ("oracle_shapley", "RC", "truth RC"),
    ("oracle_shapley", "PRA", "truth PRA"),
    ("oracle_shapley", "sign_agreement", "truth sign"),
    ("weight_of_evidence", "spearman", "WoE ρ"),
    ("weight_of_evidence", "FA@5", "WoE FA@5"),
]


def read_leaderboard(path) -> pd.DataFrame:
    """A leaderboard CSV written by :func:`write_leaderboard` (an empty ground truth stays "")."""
    return normalise(pd.read_csv(path, keep_default_na=False, na_values=[""]))


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """A leaderboard frame (from a CSV or ``report.json`` rows) ready to render.

    Raises
    ------
    ValueError
        Without the columns every leaderboard has, or when two models share a name (their rows
        could not be told apart: name them with ``ContractClassifier(..., name=...)``).
    """
    from ..xai.leaderboard import LEADERBOARD_COLUMNS

    frame = pd.DataFrame(frame).copy()
    lacking = [c for c in ("model", "explainer", "ground_truth", "metric", "value") if c not in frame.columns]
    if lacking:
        raise ValueError(f"not a leaderboard: the column(s) {lacking} are missing (expected {LEADERBOARD_COLUMNS})")
    for col in LEADERBOARD_COLUMNS:  # leaderboards written before a column existed
        if col not in frame.columns:
            frame[col] = "" if col in ("ground_truth", "budget", "output_scale") else np.nan
    frame["ground_truth"] = frame["ground_truth"].fillna("")
    frame["budget"] = frame["budget"].fillna("")
    key = ["model", "explainer", "ground_truth", "metric"]
    twice = frame[frame.duplicated(key, keep=False)]
    if len(twice):
        r = twice.iloc[0]
        raise ValueError(
            f"{len(twice)} leaderboard rows repeat a (model, explainer, ground truth, metric), e.g. ({r.model!r}, "
            f"{r.explainer!r}, {r.ground_truth!r}, {r.metric!r}): give every model its own name (ContractClassifier(..., name=...))"
        )
    return frame


def _value(frame: pd.DataFrame, model, explainer, truth, metric, col="value") -> float:
    hit = frame[(frame.model == model) & (frame.explainer == explainer) & (frame.ground_truth == truth) & (frame.metric == metric)]
    return float(hit[col].iloc[0]) if len(hit) else float("nan")


def _order(frame: pd.DataFrame, model) -> list[str]:
    """The model's explainers, best agreement with the oracle's Shapley values first, floors last."""
    names = list(dict.fromkeys(frame.loc[frame.model == model, "explainer"]))
    real = sorted((e for e in names if e not in FLOORS), key=lambda e: -np.nan_to_num(_value(frame, model, e, "oracle_shapley", "spearman"), nan=-9))
    return real + [e for e in names if e in FLOORS]


def findings(frame: pd.DataFrame) -> list[str]:
    """The headline findings, each a sentence computed from the leaderboard."""
    out = []
    real = frame[~frame.explainer.isin(FLOORS)]
    rho = real[(real.ground_truth == "oracle_shapley") & (real.metric == "spearman")]
    if len(rho):
        best = rho.loc[rho.value.idxmax()]
        sec = _value(frame, best.model, best.explainer, "", "seconds_per_patient")
        top_adj = rho.loc[rho.adjusted.idxmax()] if rho.adjusted.notna().any() else best
        same = top_adj.name == best.name
        out.append(
            f"Best recovery of the data-generating truth: **{best.explainer}** on the **{best.model}** "
            f"(Spearman ρ with the oracle's Shapley values {best.value:.3f} ± {num(best['se'], 3)}, chance-adjusted "
            f"{num(best.adjusted, 3)}) at {num(sec * 1e3, 2)} ms per patient"
            + (", also first once adjusted." if same else
               f"; once adjusted, **{top_adj.explainer}** on the **{top_adj.model}** leads ({num(top_adj.adjusted, 3)}).")
        )
    for model in dict.fromkeys(frame.model):
        fid = real[(real.model == model) & (real.ground_truth == "model") & (real.metric == "spearman")]
        tru = real[(real.model == model) & (real.ground_truth == "oracle_shapley") & (real.metric == "spearman")]
        if not len(fid) or not len(tru):
            continue
        m = fid.set_index("explainer").value.to_frame("fidelity").join(tru.set_index("explainer")[["value", "se"]].rename(
            columns={"value": "truth", "se": "truth_se"}))
        exact = m.fidelity.idxmax()
        # clearly above the model's own exact values (by more than 2 standard errors of the difference)
        gap = m.truth - m.loc[exact, "truth"]
        above = [e for e in m.index if gap[e] > 2 * np.hypot(m.loc[e, "truth_se"], m.loc[exact, "truth_se"])]
        out.append(
            f"{model}: its exact interventional Shapley values ({exact}) recover the truth at ρ = {m.loc[exact, 'truth']:.3f}; "
            f"its explainers span ρ = {m.truth.min():.3f}–{m.truth.max():.3f} with the truth and "
            f"{m.fidelity.min():.3f}–{m.fidelity.max():.3f} with the model."
            + (f" {', '.join(above)} agree{'s' if len(above) == 1 else ''} with the truth more than the model's own exact "
               "values do (by more than 2 SE): they weight the trees' own paths, a conditional view of the same model, "
               "closer to the oracle's conditional game (see How to read)." if above else "")
        )
    # the same explainer on every model: how much of its score is the model's
    both = real[(real.ground_truth == "oracle_shapley") & (real.metric == "spearman")]
    models = list(dict.fromkeys(both.model))
    if len(models) > 1:
        wide = both.pivot_table(index="explainer", columns="model", values="value").dropna()
        if len(wide):
            across_models = float((wide.max(axis=1) - wide.min(axis=1)).mean())
            across_explainers = float((wide.max(axis=0) - wide.min(axis=0)).mean())
            out.append(
                f"Model vs explainer: for the {len(wide)} explainers run on all {len(models)} models, changing the model moves an "
                f"explainer's ρ with the truth by {across_models:.3f} on average (max − min over models), changing the explainer "
                f"on one model by {across_explainers:.3f}."
            )
    floors = frame[frame.explainer.isin(FLOORS) & (frame.ground_truth != "") & frame.adjusted.notna()]
    if len(floors):
        signed = floors.metric.isin(SIGNED_METRICS)
        for label, part in (("signed agreement over all columns (ρ, sign)", floors[signed]),
                            ("top-k and rank metrics (FA, RA, SA, SRA, RC, PRA)", floors[~signed])):
            for e in FLOORS:
                sel = part[part.explainer == e]
                if not len(sel):
                    continue
                worst = sel.loc[sel.adjusted.abs().idxmax()]
                out.append(
                    f"Floor **{e}**, {label}, chance-adjusted: {sel.adjusted.min():+.3f} … {sel.adjusted.max():+.3f} over "
                    f"{sel.model.nunique()} model{'s' if sel.model.nunique() > 1 else ''} × {sel.ground_truth.nunique()} ground "
                    f"truths (largest: {worst.metric} on the {worst.model} against {worst.ground_truth}, "
                    f"{worst.adjusted:+.3f} ± {num(worst.adjusted_se, 3)})."
                )
        perm = floors[(floors.explainer == "permuted_label") & ~signed & floors.shuffled.lt(1)]
        if len(perm) and perm.class_shuffled.notna().any():
            patient_only = (perm.value - perm.shuffled) / (1 - perm.shuffled)
            out.append(
                f"Why two nulls: beyond the patient-shuffled null alone, the permuted-label floor's top-k and rank metrics "
                f"would stay at {patient_only.min():+.3f} … {patient_only.max():+.3f} (a model that learnt nothing about the "
                "classes still ranks the patient's unusual values first, as the truth does); the class-shuffled null "
                "removes that share."
            )
    return out


def model_table(frame: pd.DataFrame, model, spec, col: str) -> str:
    """One model's explainers (best first, floors last) as a Markdown table of ``spec``'s metrics, ``col`` values."""
    rows = []
    for e in _order(frame, model):
        budget = frame.loc[(frame.model == model) & (frame.explainer == e), "budget"].iloc[0]
        cells = [e] if col == "adjusted" else [e, budget or "—"]
        for g, m, _ in spec:
            v = _value(frame, model, e, g, m, col)
            cells.append(f"{num(v * 1e3, 2)} ms" if m == "seconds_per_patient" and np.isfinite(v) else num(v, 3))
        rows.append(cells)
    head = ["explainer"] if col == "adjusted" else ["explainer", "budget"]
    return table(head + [h for _, _, h in spec], rows, ["l"] * len(head) + ["r"] * len(spec))


def model_tables(frame: pd.DataFrame, model, *, name: bool = False) -> list[str]:
    """Markdown lines of one model's two tables: raw summary, then chance-adjusted agreement (``name``: say the model)."""
    which = f", {model}" if name else ""
    return [model_table(frame, model, SUMMARY, "value"), "",
            f"Chance-adjusted agreement beyond the patient- and class-shuffled nulls{which} (0: nothing beyond cohort-wide "
            "patterns or the patient's unusual values; 1: perfect):", "",
            model_table(frame, model, ADJUSTED, "adjusted"), ""]


def leaderboard_markdown(frame: pd.DataFrame, *, figure: str | None = None, meta: dict | None = None) -> str:
    """The leaderboard page: settings, findings, one summary table per model, how to read it."""
    meta = meta or {}
    frame = normalise(frame)
    out = [f"# {TITLE}", "", f"> {DISCLAIMER}", ""]
    n = int(frame["n_patients"].max()) if len(frame) else 0
    out.append(
        f"Attribution methods scored on {n} patients against two ground truths kept apart: **fidelity** to the "
        "model (its exact interventional Shapley values against the same background: interventional TreeSHAP "
        "for tree models, the closed form for the additive logistic regression) and **recovery** of the "
        "data-generating truth (the oracle's exact-game Shapley values, `data_gen.oracle_shapley`, and its "
        "weight of evidence). Attributions are centred across classes; ρ is the mean Spearman correlation "
        "over (patient, class) pairs. Every metric of every explainer, with its standard error over "
        "patients, its uniform chance level and its chance-adjusted value, is in `leaderboard.csv`."
    )
    out.append("")
    for k, v in meta.items():
        out.append(f"- {k}: {v}")
    if meta:
        out.append("")
    out += ["## Findings", ""] + [f"- {s}" for s in findings(frame)] + [""]
    if figure:
        out += [f"![agreement with the truth against seconds per patient]({figure})", ""]
    for model in dict.fromkeys(frame.model):
        scale = frame.loc[frame.model == model, "output_scale"].iloc[0]
        out += [f"## {model} (attributions of its {scale})", ""]
        out += model_tables(frame, model, name=True)
    out += [
        "## How to read it",
        "",
        "- FA, SA, RC and PRA are OpenXAI's ground-truth metrics (Agarwal et al. 2022): top-k feature and sign "
        "agreement, the rank correlation of |attribution| and pairwise rank agreement; RA and SRA (top-k rank and signed "
        "rank agreement) are in the adjusted tables and the CSV. Chance levels (a uniformly random ranking with random "
        "signs): FA@5 = 5/52, SA@5 ≈ 5/104, RC = ρ = 0, PRA = sign = 0.5.",
        "- The truths are different games. The fidelity truth is the model's interventional game (blank columns drawn "
        "from the background), so treeshap_interventional or exact_additive scores 1 there by construction. The "
        "oracle's Shapley values are those of the data-generating posterior with the unknown columns summed out (a "
        "conditional game), estimated from antithetic permutations of that exact game (how many: the budgets line). "
        "Path-dependent TreeSHAP also approximates a conditional game, which is why it can agree with the oracle more "
        "than the model's own exact interventional values do.",
        "- Chance-adjusted agreement (the second table of each model; `shuffled`, `class_shuffled`, `adjusted` and "
        "`adjusted_se` in the CSV; deletion, the clue audit and seconds are not adjusted). Raw agreement above uniform "
        "chance is not all patient-specific knowledge, in two ways. Some columns, such as the continuous labs and age, "
        "carry large attributions for most patients under any model: the **patient-shuffled null** scores the same "
        "attributions against *other* patients' truths for the same class (5 fixed cyclic shifts of the patients, evenly "
        "spaced). And any model, even one trained on permuted labels, tends to put its largest attributions on the "
        "patient's unusual values (a rare finding present, a lab far from the mean), as the truths do: for an additive "
        "model a column's value is (w_c − w̄)·(x − E[x]) summed over its encoded features, so two models share the "
        "factor |x − E[x]| whatever their weights. The **class-shuffled null** scores the attributions against the "
        "*same* patient's truths for the *other* classes (the average over the 4 others), which keeps the patient's "
        "values and breaks only the class being explained. adjusted = (value − null) / (1 − null), the Cohen's kappa "
        "form, with the larger of the two nulls for each (explainer, truth, metric): 0 means no agreement beyond what "
        "a cohort-wide per-class pattern or the patient's unusual values alone would give; 1 is perfect. For ρ and sign "
        "the class-shuffled null is negative (truths centred across classes), so the patient-shuffled one applies. "
        "Picking the larger of two noisy nulls makes the zero conservative; `adjusted_se` does not count that choice.",
        "- The floors: **random** attributions (independent normal draws, averaged over several; how many: its budget "
        "column) sit at uniform chance on every raw metric and at 0 on every adjusted one. The **permuted_label** floor (the same kind of model trained on permuted labels, "
        "explained exactly: Adebayo et al. 2018's data-randomisation test) is the mean over several null models, each "
        "on its own permutation (how many: its budget column); its ± adds the spread between null models to the error "
        "over patients (`ml.xai.metrics.pooled_agreement`), because one null model's agreement moves by a few hundredths "
        "from one permutation to the next. It sits near chance on the signed agreement over all columns (ρ, sign) even "
        "raw, and near 0 on every adjusted metric (the Findings give the range, largest in absolute value). Its raw "
        "top-k and rank metrics (FA, RA, SA, RC, PRA) stay well above chance: compare explainers on the adjusted "
        "tables, not on raw agreement.",
        "- Standard errors (± and the CSV's `se`) of the explainers are over patients, for one trained model and one "
        "explainer seed; they leave out the spread between training runs of the model, which the floor's ± includes.",
        "- The model-agnostic explainers (kernelshap, permutation, lime) average over a smaller background than the "
        "fidelity truth (the budgets line: `agnostic_background` vs `exact_background`); on the additive logistic "
        "regression, where KernelSHAP and the permutation explainer are exact for their own background, their whole "
        "fidelity shortfall is that difference of background.",
        "- deletion: the mean probability of the predicted class while its 0–10 most supporting columns are set "
        "to not recorded (lower is more faithful to the model; ground-truth free). clue audit: the share of the "
        "review's testable clues that the explainer's values move with (`ml.audit_clues`).",
        "- Seconds per patient are wall-clock on one thread in the run that wrote this page, other work sharing the "
        "machine; compare them within the page.",
        "",
    ]
    return "\n".join(out)


def leaderboard_figure(frame: pd.DataFrame, path, *, truth: str = "oracle_shapley", metric: str = "spearman") -> Path:
    """Agreement with ``truth`` (``metric``) against seconds per patient, log x-axis, per explainer."""
    from ..plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    markers = dict(zip(dict.fromkeys(frame.model), "osD^v"))
    names = list(dict.fromkeys(frame.explainer))
    colours = {e: plt.get_cmap("tab10")(i % 10) for i, e in enumerate(names)}
    for model in markers:
        for e in names:
            x = _value(frame, model, e, "", "seconds_per_patient")
            y = _value(frame, model, e, truth, metric)
            if np.isfinite(x) and np.isfinite(y):
                ax.scatter(max(x, 1e-6), y, marker=markers[model], color=colours[e], s=50, edgecolor="black", linewidth=0.4)
    for e in names:
        ax.scatter([], [], color=colours[e], label=e)
    for model, mk in markers.items():
        ax.scatter([], [], marker=mk, color="white", edgecolor="black", label=model)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per patient (one thread, log scale)")
    ax.set_ylabel(f"{metric} with the oracle's exact-game Shapley values" if truth == "oracle_shapley" else f"{metric} vs {truth}")
    ax.axhline(0, color="#999999", linewidth=0.8)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_title("Agreement with the data-generating truth against cost")
    return _save(fig, path)


def write_leaderboard(frame: pd.DataFrame, out, *, meta: dict | None = None) -> dict[str, Path]:
    """Write ``leaderboard.csv``, ``leaderboard.md`` and ``agreement_vs_cost.png`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "leaderboard.csv", "markdown": out / "leaderboard.md", "figure": out / "agreement_vs_cost.png"}
    frame.to_csv(paths["csv"], index=False, float_format="%.6g")
    # the page and the figure are drawn from the CSV as saved, so that they can be redrawn from it alone
    frame = read_leaderboard(paths["csv"])
    leaderboard_figure(frame, paths["figure"])
    paths["markdown"].write_text(leaderboard_markdown(frame, figure=paths["figure"].name, meta=meta), encoding="utf-8")
    return paths
