"""Section 3, explanations: the clue audit, SHAP vs the oracle's ground truth, per-class SHAP
plots and the review's three cases."""

from __future__ import annotations

import numpy as np

from ._common import Context, count, image, jsonable, num, pct, table

TITLE = "3. Explanations"

#: The clues the review names for each of its cases (issue 5): every group should have a member
#: among the top five reasons toward the case's class.
PAPER_CLUES = {
    "case1_mpc": [
        ("renal failure, transplant or dialysis", ("chronic_kidney_disease", "kidney_transplant", "on_dialysis")),
        ("upper, peripheral, centrilobular ground glass", ("zone", "peripheral_predominance", "centrilobular_ggo", "ground_glass_opacity")),
    ],
    "case2_dendriform_dpo": [
        ("branching calcification", ("branching_calcification",)),
        ("lower zone or fibrosis", ("zone", "pulmonary_fibrosis")),
    ],
    "case3_nodular_dpo": [
        ("congestion or heart failure", ("pulmonary_congestion", "chronic_heart_failure")),
        ("nodular calcification, lower zone or no node calcification", ("calcified_nodules", "zone", "lymph_node_calcification")),
    ],
}

AGREEMENT_KEYS = ("spearman_median", "spearman_q1", "spearman_q3", "sign_agreement", "FA@1", "FA@3", "RA@3", "SA@3", "FA@5", "SA@5")


#: Columns in each per-class SHAP plot (the largest mean |SHAP| for the class).
SUMMARY_COLUMNS = 12


def _centred_aligned(explanation, columns, classes) -> np.ndarray:
    values = np.asarray(explanation.values, dtype=float)
    feats = list(explanation.feature_names)
    outs = list(explanation.output_names)
    v = values[:, [feats.index(c) for c in columns]][:, :, [outs.index(k) for k in classes]]
    return v - v.mean(axis=2, keepdims=True)


def _strict_ground_truth(ctx: Context, cohort) -> dict:
    """SHAP vs the exact oracle game's Shapley values on a few hundred patients."""
    from data_gen import oracle_shapley, weight_of_evidence
    from ml import explain
    from ml.agreement import attribution_agreement

    s = ctx.settings
    kb = ctx.knowledge
    sub = cohort.iloc[: s.shapley_patients].drop(columns=["calcification_type"])
    ctx.say(f"explanations: exact oracle Shapley values of {len(sub):,} patients ({s.shapley_permutations} permutations)")
    shapley = oracle_shapley(sub, n_permutations=s.shapley_permutations, random_state=s.explain_seed, knowledge=kb)
    woe = weight_of_evidence(sub, knowledge=kb)
    columns, classes = list(shapley.columns), list(shapley.classes)
    shap_c = _centred_aligned(explain(ctx.model, sub, n_jobs=1), columns, classes)
    truth = np.asarray(shapley.values, dtype=float)
    rng = np.random.default_rng(s.explain_seed)
    rand = rng.standard_normal(truth.shape)
    rand -= rand.mean(axis=2, keepdims=True)
    return {
        "n_patients": len(sub),
        "n_permutations": s.shapley_permutations,
        "model_vs_shapley": attribution_agreement(shap_c, truth),
        "weight_of_evidence_vs_shapley": attribution_agreement(np.asarray(woe.values, dtype=float), truth),
        "random_vs_shapley": attribution_agreement(rand, truth),
        "residual_share_weight_of_evidence": woe.residual_share(),
        "residual_share_shapley": shapley.residual_share(),
    }


def _case(ctx: Context, cases, i: int, expl, top5) -> dict:
    from ml.plots import waterfall_png
    from ml.reasons import render_text

    kb = ctx.knowledge
    case_id = str(cases.index[i])
    truth = str(cases["calcification_type"].iloc[i])
    reasons = top5[i]
    columns = [r.column for r in reasons]
    checks = [
        {"clue": words, "columns": list(cols), "in_top_5": any(c in columns for c in cols)}
        for words, cols in PAPER_CLUES.get(case_id, [])
    ]
    path = waterfall_png(ctx.model, cases.iloc[[i]], truth, ctx.figures_dir / f"case_{case_id}_waterfall.png",
                         title=f"{case_id}: reasons toward {kb.classes[truth].label}")
    rel = ctx.figure(path, f"Waterfall of {case_id}'s reasons toward its true class ({truth})", "explanations")
    e = expl[i]
    recorded = [c for c in kb.column_names if c in cases.columns and cases[c].notna().iloc[i]]
    return {
        "case_id": case_id,
        "true_class": truth,
        "true_label": kb.classes[truth].label,
        "recorded_columns": recorded,
        "top_class": e.top_class,
        "correct": e.top_class == truth,
        "explanation": e.to_dict(),
        "top5_toward_true_class": [
            {"column": r.column, "text": r.text, "shap": r.shap, "paper_clue": r.clue} for r in reasons
        ],
        "paper_clue_checks": checks,
        "implications_true_class": kb.implications(truth),
        "text": render_text([e]),
        "waterfall": rel,
    }


def run(ctx: Context) -> dict:
    from data_gen import paper_cases
    from ml import audit_clues, oracle_agreement
    from ml.figures import audit_heatmap_png
    from ml.plots import class_summary_pngs
    from ml.reasons import explain_patients, top_reasons

    s = ctx.settings
    kb = ctx.knowledge
    model = ctx.model
    cohort = ctx.shared["eval_cohort"]

    ctx.say(f"explanations: clue audit on {min(s.audit_patients, len(cohort)):,} patients")
    audit = audit_clues(model, cohort, max_patients=s.audit_patients, random_state=s.explain_seed)
    ctx.shared["audit"] = audit
    summary = audit.summary().reset_index()
    ctx.say(f"explanations: audit pass rate {audit.pass_rate:.1%}")

    ctx.say(f"explanations: SHAP vs the oracle's weight of evidence on {min(s.agreement_patients, len(cohort)):,} patients, with floors")
    agreement = oracle_agreement(model, cohort, max_patients=s.agreement_patients, random_state=s.explain_seed)
    strict = _strict_ground_truth(ctx, cohort)

    figs = {}
    ctx.say(f"explanations: per-class SHAP plots ({min(s.summary_patients, len(cohort)):,} patients)")
    paths = class_summary_pngs(model, cohort.iloc[: s.summary_patients], ctx.figures_dir, kind="beeswarm",
                               max_display=SUMMARY_COLUMNS, random_state=s.explain_seed)
    figs["class_summary"] = {k: ctx.figure(p, f"SHAP beeswarm for {k}", "explanations") for k, p in zip(model.classes_, paths)}
    p = audit_heatmap_png(audit, ctx.figures_dir / "audit_heatmap.png", knowledge=kb)
    figs["audit_heatmap"] = ctx.figure(p, "Clue audit heatmap: expected vs observed SHAP direction per class and column", "explanations")

    ctx.say("explanations: the review's three cases")
    cases = paper_cases()
    expl = explain_patients(model, cases, top=3, n_reasons=5)
    top5 = []
    for i in range(len(cases)):
        truth = str(cases["calcification_type"].iloc[i])
        top5.append(top_reasons(model, cases.iloc[[i]], truth, k=5)[0])
    case_records = [_case(ctx, cases, i, expl, top5) for i in range(len(cases))]

    return jsonable(
        {
            "audit": {
                "n_patients": audit.n_patients,
                "label_source": audit.label_source,
                "pass_rate": audit.pass_rate,
                "summary": summary,
                "failures": audit.failures(),
                "untestable": audit.untestable(),
                "table": audit.table,
                "meta": audit.meta,
            },
            "agreement": agreement,
            "strict": strict,
            "cases": case_records,
            "figures": figs,
        }
    )


def _prob(p) -> str:
    if p is None:
        return "—"
    if 0 < p < 0.0005:
        return "<0.1%"
    if 0.9995 < p < 1:
        return ">99.9%"
    return pct(p)


def _agreement_rows(named: list[tuple[str, dict]]) -> list[list[str]]:
    rows = []
    for name, a in named:
        rows.append([name] + [num(a.get(k), 3) for k in AGREEMENT_KEYS])
    return rows


def markdown(d: dict) -> str:
    out = [f"## {TITLE}", ""]
    a = d["audit"]
    out.append("### Clue audit")
    out.append("")
    out.append(
        f"Every (class, column) to which the knowledge base gives a role from the review (usual, associated, cause: "
        f"pushes toward the class; unusual: pushes away) is checked against the direction of the model's SHAP values "
        f"for that class (centred across classes), on {a['n_patients']:,} evaluation patients "
        f"(classes from the {'true labels' if a['label_source'] == 'label' else 'predictions'}). "
        f"Overall pass rate: **{pct(a['pass_rate'])}** of the testable clues."
    )
    out.append("")
    out.append(
        table(
            ["class", "clues", "testable", "passed", "failed", "pass rate"],
            [(r["calcification_type"], count(r["clues"]), count(r["testable"]), count(r["passed"]), count(r["failed"]), pct(r["pass_rate"]))
             for r in a["summary"]],
        )
    )
    out.append("")
    fails = a["failures"]
    if fails:
        out.append(f"Every failing clue ({len(fails)}), with its likely reason:")
        out.append("")
        out.append(
            table(
                ["class", "column", "role", "expected", "test", "observed effect", "class rate", "importance rank", "reason"],
                [(f["calcification_type"], f["column"], f["role"], f["expected"], f["test"], num(f["observed_effect"], 3),
                  pct(f["class_rate"]), count(f["importance_rank"]), f["reason"]) for f in fails],
                ["l", "l", "l", "l", "l", "r", "r", "r", "l"],
            )
        )
    else:
        out.append("No clue failed.")
    out.append("")
    unt = a["untestable"]
    if unt:
        out.append(f"Clues that could not be tested ({len(unt)}): " + "; ".join(f"{u['calcification_type']}/{u['column']} ({u['reason']})" for u in unt) + ".")
        out.append("")
    out.append(
        "Reasons: *too rare in the cohort* = a compared group has fewer than "
        f"{a['meta'].get('min_group')} patients or the finding occurs in under {pct(a['meta'].get('min_class_rate'))} of the class; "
        "*shadowed by a correlated clue* = a more important clue of the same class is correlated with it "
        f"(|Spearman| ≥ {a['meta'].get('shadow_correlation')}), so the model credits that one; *the model missed it* = neither. "
        "The full table (every clue, its test, effect, groups and rank) is in report.json (`explanations.audit.table`)."
    )
    out.append("")
    out.append(image(d["figures"]["audit_heatmap"], "Clue audit heatmap"))
    out.append("")

    g = d["agreement"]
    st = d["strict"]
    out.append("### SHAP vs the oracle's ground truth")
    out.append("")
    out.append(
        f"Per patient and class, the model's SHAP values (centred across classes) are compared with the oracle's per-column "
        f"weight of evidence (`data_gen.weight_of_evidence`) on {g['n_patients']:,} patients: Spearman rank correlation across "
        "the 52 columns (median and quartiles over patient–class pairs), sign agreement, and OpenXAI's top-k feature (FA), "
        "rank (RA) and sign (SA) agreement. Two sanity floors are scored the same way: random attributions and a model "
        "trained on permuted labels; both should be near 0 (FA@k of a random ranking is about k/52)."
    )
    out.append("")
    heads = ["attribution", "Spearman median", "Q1", "Q3", "sign agreement", "FA@1", "FA@3", "RA@3", "SA@3", "FA@5", "SA@5"]
    out.append(table(heads, _agreement_rows([("model SHAP", g["model"]), ("floor: random", g["random"]),
                                             ("floor: permuted labels", g["permuted_labels"])])))
    out.append("")
    out.append(
        f"The weight of evidence treats each column on its own; clues that share a latent subtype (kidney disease, dialysis "
        f"and PTH in renal MPC) each count in full, so it leaves a residual: **{pct(g['residual_share'])}** of the posterior "
        "is not attributed to any column (`Evidence.residual_share`), a ceiling on how well any additive attribution can "
        "agree with it."
    )
    out.append("")
    out.append(
        f"The stricter ground truth is the exact Shapley value of the oracle's game (`data_gen.oracle_shapley`, "
        f"{st['n_permutations']} antithetic permutations; residual share {pct(st['residual_share_shapley'], 3)}), computed on "
        f"{st['n_patients']:,} patients:"
    )
    out.append("")
    out.append(table(heads, _agreement_rows([("model SHAP", st["model_vs_shapley"]),
                                             ("weight of evidence", st["weight_of_evidence_vs_shapley"]),
                                             ("floor: random", st["random_vs_shapley"])])))
    out.append("")
    out.append("### Per-class SHAP plots")
    out.append("")
    out.append(
        "One dot per patient and column: its centred SHAP value toward the class (log-odds relative to the other classes). "
        f"Each plot shows the {SUMMARY_COLUMNS} columns with the largest mean |SHAP| for its class; the others are left out, "
        "not summed into an extra row. Yes/no and numeric columns are coloured on a low-to-high scale (high = yes/seen), "
        "categorical columns with more than two levels (zone) one colour per level, named in the legend; grey = not recorded."
    )
    out.append("")
    for k, rel in d["figures"]["class_summary"].items():
        out.append(image(rel, f"SHAP beeswarm for {k}"))
        out.append("")

    out.append("### The review's three cases")
    out.append("")
    out.append(
        "Encoded from the review's text (only what it states; everything else not recorded). For each case: the model's "
        "differential, the findings for and against its most probable class, the five largest reasons toward the case's "
        "true class with the clues the review names for it, and what Table 2 of the review says the diagnosis implies."
    )
    out.append("")
    for c in d["cases"]:
        e = c["explanation"]
        out.append(f"#### {c['case_id']}: {c['true_label']}")
        out.append("")
        verdict = "correct" if c["correct"] else f"**wrong** (true: {c['true_class']})"
        out.append(f"Recorded columns: {', '.join(c['recorded_columns'])}. Top of the differential: {e['top_class']} ({verdict}).")
        out.append("")
        out.append(table(["rank", "class", "probability"], [(i + 1, dd["label"], _prob(dd["probability"])) for i, dd in enumerate(e["differential"])]))
        out.append("")
        top = e["classes"][0]
        rows = [("for", r["text"], f"{r['shap']:+.2f}", r["clue"] or "") for r in top["favouring"]]
        rows += [("against", r["text"], f"{r['shap']:+.2f}", r["clue"] or "") for r in top["against"]]
        out.append(f"Findings for and against {top['label']} (centred SHAP, log-odds):")
        out.append("")
        out.append(table(["", "finding", "SHAP", "the review's clue"], rows, ["l", "l", "r", "l"]))
        out.append("")
        out.append(f"Top five reasons toward the true class ({c['true_class']}):")
        out.append("")
        out.append(table(["rank", "finding", "SHAP", "the review's clue"],
                         [(i + 1, r["text"], f"{r['shap']:+.2f}", r["paper_clue"] or "") for i, r in enumerate(c["top5_toward_true_class"])],
                         ["r", "l", "r", "l"]))
        out.append("")
        if c["paper_clue_checks"]:
            out.append("Clues the review names for this case among those five: " + "; ".join(
                f"{chk['clue']}: {'yes' if chk['in_top_5'] else '**no**'}" for chk in c["paper_clue_checks"]) + ".")
            out.append("")
        imp = c["implications_true_class"]
        out.append(f"Table 2 of the review for {c['true_label']}:")
        out.append("")
        out.append(table(["", ""], [(k.replace("_", " "), v) for k, v in imp.items()], ["l", "l"]))
        out.append("")
        out.append(image(c["waterfall"], f"Waterfall for {c['case_id']}"))
        out.append("")
        out.append("<details><summary>pulmocalc explain output</summary>")
        out.append("")
        out.append("```text")
        out.append(c["text"].rstrip("\n"))
        out.append("```")
        out.append("")
        out.append("</details>")
        out.append("")
    return "\n".join(out)
