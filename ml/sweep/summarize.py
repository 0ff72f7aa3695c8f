"""A sweep's results: the combined table, a tornado plot per conclusion and ``sweep.md``.

Design. The combined table has one row per finished task (baseline first, then assumptions in
the knowledge base's order, down before up) and no timing column, so two runs of the same sweep
on any number of workers give identical tables; the seconds per task are summarized in
``sweep.md`` only. An assumption *moves* a conclusion when its value under either direction
lies outside the baseline's 95% confidence interval (baseline ± 1.96 standard errors of the
baseline's own sampling error, see :mod:`ml.sweep.tasks`). All tasks share one seed, so the
difference to the baseline is mostly the assumption's effect, not noise; the interval is the
conservative yardstick of how precisely one run measures the conclusion at all.

Research and teaching on synthetic data only; never a clinical device.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .perturb import BASELINE, Assumption
from .tasks import CONCLUSIONS

__all__ = ["combine", "effects", "tornado_pngs", "write_summary", "Z95", "TORNADO_TOP"]

#: Two-sided 95% normal quantile.
Z95 = 1.959963984540054
#: Assumptions shown per tornado plot and listed per conclusion in sweep.md.
TORNADO_TOP = 15
LIST_TOP = 5
TIMING_COLUMNS = ("seconds",)


def combine(rows: pd.DataFrame, assumptions: list[Assumption]) -> pd.DataFrame:
    """The finished tasks in plan order, without timing columns."""
    order = {BASELINE: -1} | {a.id: i for i, a in enumerate(assumptions)}
    known = rows[rows["assumption"].isin(order)]
    table = known.assign(_o=known["assumption"].map(order)).sort_values(["_o", "direction"], kind="stable")
    return table.drop(columns=["_o", *[c for c in TIMING_COLUMNS if c in table]]).reset_index(drop=True)


def effects(table: pd.DataFrame, conclusion: str) -> pd.DataFrame:
    """Per assumption: value down and up, their change from the baseline, and whether it moves.

    Returns a frame indexed by assumption with ``down``, ``up``, ``delta_down``, ``delta_up``,
    ``swing`` (largest absolute change) and ``moves`` (outside the baseline's 95% CI), sorted by
    ``swing``, largest first.
    """
    base = table[table["assumption"] == BASELINE]
    if base.empty:
        raise ValueError("the sweep has no baseline result yet; rerun it to finish the baseline task")
    b = float(base[conclusion].iloc[0])
    half = Z95 * float(base[f"{conclusion}_se"].iloc[0])
    rest = table[table["assumption"] != BASELINE]
    wide = rest.pivot_table(index="assumption", columns="direction", values=conclusion, aggfunc="first", sort=False)
    wide = wide.reindex(columns=[-1, 1])
    out = pd.DataFrame({"down": wide[-1], "up": wide[1]})
    out["delta_down"], out["delta_up"] = out["down"] - b, out["up"] - b
    out["swing"] = out[["delta_down", "delta_up"]].abs().max(axis=1)
    out["moves"] = (out[["delta_down", "delta_up"]].abs() > half).any(axis=1)
    out.attrs.update(baseline=b, ci_half_width=half)
    return out.sort_values("swing", ascending=False, kind="stable")


def tornado_pngs(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """One tornado plot per conclusion (``tornado_<conclusion>.png``): the largest swings."""
    from ml.plots import _plt, _save

    plt = _plt()
    paths = []
    for name, (label, _) in CONCLUSIONS.items():
        eff = effects(table, name).head(TORNADO_TOP).iloc[::-1]
        b, half = eff.attrs["baseline"], eff.attrs["ci_half_width"]
        fig, ax = plt.subplots(figsize=(8.5, 0.32 * len(eff) + 1.6))
        y = np.arange(len(eff))
        ax.axvspan(b - half, b + half, color="#dddddd", label="baseline 95% CI")
        ax.barh(y, eff["delta_down"].fillna(0), left=b, color="#e66101", label="assumption down")
        ax.barh(y, eff["delta_up"].fillna(0), left=b, color="#2c7bb6", alpha=0.8, label="assumption up")
        ax.axvline(b, color="black", lw=0.8)
        ax.set_yticks(y, [str(i)[:60] for i in eff.index], fontsize=7)
        ax.set_xlabel(f"{label} (baseline {b:.4g})")
        ax.set_title(f"Sensitivity of the {label}", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        paths.append(_save(fig, Path(out_dir) / f"tornado_{name}.png"))  # its footer says research/teaching only
    return paths


def _fmt(x: float) -> str:
    return "—" if not np.isfinite(x) else f"{x:+.4f}"


def write_summary(table: pd.DataFrame, rows: pd.DataFrame, assumptions: list[Assumption], out_dir: str | Path,
                  *, workers: str, failed: dict[str, str] | None = None) -> Path:
    """Write ``sweep.md``: per conclusion the assumptions that move it most, and how many move none."""
    out_dir = Path(out_dir)
    by_id = {a.id: a for a in assumptions}
    base = table[table["assumption"] == BASELINE].iloc[0]
    n_assumptions = table.loc[table["assumption"] != BASELINE, "assumption"].nunique()
    secs = rows["seconds"] if "seconds" in rows else pd.Series(dtype=float)
    lines = [
        "# Sensitivity sweep over the knowledge base's assumptions",
        "",
        "Research and teaching on synthetic data only; pulmocalc is not a clinical device.",
        "",
        f"- Assumptions swept: {n_assumptions} of {len(assumptions)} selected, each down and up "
        f"({len(table)} finished tasks with the baseline); seed {int(base['seed'])}.",
        f"- Sizes per task: training cohort {int(base['train']):,} patients (the shipped recording mixture), "
        f"at most {int(base['max_iter'])} boosting iterations of the shipped configuration, "
        f"evaluation cohorts {int(base['eval']):,} patients, clue audit on {int(base['audit']):,} patients.",
        "- Rules: probabilities ±1 on the log-odds scale (a probability vector: its leading share, the others "
        "rescaled), locations ±25%, a normal's sd ±25%, a log-normal's gsd to the power 1 ± 0.25.",
        f"- Run on {workers}; {len(secs)} task files, median {secs.median():.1f} s per task "
        f"(total {secs.sum() / 60:.1f} worker-minutes)." if len(secs) else f"- Run on {workers}.",
        "- An assumption *moves* a conclusion when either direction lands outside the baseline's 95% CI "
        "(baseline ± 1.96 SE of one run).",
    ]
    if failed:
        lines += ["", f"**{len(failed)} tasks failed** (rerun the same command to retry them):", ""]
        lines += [f"- `{k}`: {msg[:200]}" for k, msg in sorted(failed.items())]
    for name, (label, _) in CONCLUSIONS.items():
        eff = effects(table, name)
        b, half = eff.attrs["baseline"], eff.attrs["ci_half_width"]
        lines += [
            "",
            f"## {label[0].upper()}{label[1:]}",
            "",
            f"Baseline {b:.4f} (95% CI ± {half:.4f}). {int((~eff['moves']).sum())} of {len(eff)} assumptions move it "
            f"beyond the CI in neither direction; {int(eff['moves'].sum())} do. Tornado plot: `tornado_{name}.png`.",
            "",
            "| assumption | kind | down | up | change down | change up |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for aid, r in eff.head(LIST_TOP).iterrows():
            kind = by_id[aid].kind if aid in by_id else "?"
            lines.append(f"| `{aid}` | {kind} | {r['down']:.4f} | {r['up']:.4f} | {_fmt(r['delta_down'])} | {_fmt(r['delta_up'])} |")
    path = out_dir / "sweep.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
