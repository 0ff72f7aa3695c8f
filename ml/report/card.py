"""Section 6, the model card: intended use, training data, metrics, limitations and caveats."""

from __future__ import annotations

from ._common import DISCLAIMER, Context, count, jsonable, num, pct, table

TITLE = "7. Model card"

INTENDED_USE = [
    "Research and teaching on synthetic data: learning and demonstrating the differential diagnosis of diffuse pulmonary "
    "calcification as one review describes it, and studying how faithful a classifier's explanations are to a known truth.",
    "Not for clinical decisions. pulmocalc is not a medical device, has never seen a real patient and must not be used to "
    "diagnose, treat or triage anyone.",
]


def _assumptions(kb) -> list[dict]:
    """Knowledge.assumptions() deduplicated by rationale, with where each one applies."""
    by = {}
    for where, rationale in kb.assumptions():
        key = " ".join(str(rationale).split()) or "(no rationale given)"
        by.setdefault(key, []).append(where)
    return [{"rationale": r, "entries": len(w), "where": w} for r, w in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


def _limitations(kb, ctx: Context, n_assumptions: int, n_rationales: int, results: dict) -> list[str]:
    audit = results.get("explanations", {}).get("audit", {})
    fails = audit.get("failures") or []
    reasons = {}
    for f in fails:
        key = str(f.get("reason", "")).split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    why = ", ".join(f"{v} {k}" for k, v in reasons.items()) if reasons else "none failed in this run"
    return [
        "**Synthetic data from a model of one review.** Every patient is drawn from a knowledge base built from the tables "
        "and text of a single narrative review (Tables 1–2 and its three cases) plus a few published figures. The classifier "
        "learns that knowledge base, not the disease: its accuracy on real patients is unknown and would very likely be lower.",
        f"**Assumed numbers.** The review gives few numbers; {n_assumptions} knowledge-base entries rest on "
        f"{n_rationales} distinct assumptions (listed above). Changing them changes the cohorts, the oracle and every figure here.",
        "**Simplified clinical structure.** Findings are independent within a class and latent subtype (cause, pattern, "
        "stage, renal status); real findings are more entangled, and the subtypes are the knowledge base's, not a validated taxonomy.",
        "**NaN means not recorded.** The model learned the generator's recording habits: an SLC34A2 test or a bone scan is "
        "mostly done when the knowledge base says a clinician would suspect PAM or DPO, so a blank is itself evidence. A file "
        "recorded with other habits shifts that evidence (section 4b shows what masking whole groups of columns does).",
        "**Prevalence is an assumption.** The default class mix (" + ", ".join(f"{k} {pct(v, 0)}" for k, v in kb.prevalence.items())
        + ") is assumed, not measured. Probabilities are calibrated to it; for another setting pass its mix "
        "(`predict_proba(df, prevalence=...)`, `--prevalence`), as section 4a shows.",
        "**Training labels are exact.** Real diagnoses are uncertain; section 4c shows how label noise in training moves the figures.",
        "**What the audit failures mean.** A failed clue is one where the direction of the model's SHAP values for a class "
        "disagrees with the role the review gives the finding. It is a statement about the model's reasoning, not about a "
        "prediction: a clue can fail while the predictions stay near the oracle's, e.g. when the clue is rare in the cohort or "
        "a correlated clue carries the same evidence. In this run: " + why + ". SHAP explains the model, not the disease.",
        "**The oracle is the knowledge base's own posterior.** 'Within x pp of the oracle' means close to the best possible "
        "on these synthetic cohorts, not clinically good.",
    ]


def run(ctx: Context, results: dict) -> dict:
    kb = ctx.knowledge
    info = ctx.model_info
    assumptions = _assumptions(kb)
    n_assumptions = sum(a["entries"] for a in assumptions)
    perf = results.get("performance", {})
    expl = results.get("explanations", {})
    tim = results.get("timings", {})
    table_rows = {r["predictor"]: r for r in perf.get("table", [])}
    metrics = {
        "model": table_rows.get("model"),
        "oracle": table_rows.get("oracle"),
        "gap": perf.get("gap"),
        "audit_pass_rate": expl.get("audit", {}).get("pass_rate"),
        "shap_vs_oracle_spearman_median": expl.get("agreement", {}).get("model", {}).get("spearman_median"),
        "shap_rows_per_second_all_cores": tim.get("shap", {}).get("all_cores_rows_per_second"),
        "eval_n": perf.get("n"),
    }
    return jsonable(
        {
            "intended_use": INTENDED_USE,
            "disclaimer": DISCLAIMER,
            "model": {
                "sha256": info.get("sha256"),
                "source": info.get("source"),
                "estimator": "scikit-learn HistGradientBoostingClassifier (multiclass, own encoding of sex and zone, NaN kept)",
                "n_trees": int(ctx.model.n_trees),
                "n_iter": int(ctx.model.booster.n_iter_),
                "training": info.get("training", {}),
                "train_prevalence": ctx.model.train_prevalence,
                "classes": list(ctx.model.classes_),
                "n_columns": len(kb.column_names),
            },
            "training_data": {
                "knowledge_sha256": kb.sha256,
                "knowledge_file": kb.path.name,
                "description": "patients generated by data_gen.generate_cohort from the knowledge base (no real patient data)",
                "n_assumption_entries": n_assumptions,
                "n_distinct_assumptions": len(assumptions),
                "assumptions": assumptions,
            },
            "metrics": metrics,
            "limitations": _limitations(kb, ctx, n_assumptions, len(assumptions), results),
        }
    )


def markdown(d: dict) -> str:
    out = [f"## {TITLE}", ""]
    out.append("### Intended use")
    out.append("")
    out += [f"- {x}" for x in d["intended_use"]]
    out.append("")
    m = d["model"]
    tr = m.get("training") or {}
    out.append("### Model")
    out.append("")
    rows = [
        ("model SHA-256", m["sha256"] or "—"),
        ("source", m["source"]),
        ("estimator", m["estimator"]),
        ("size", f"{m['n_iter']} boosting iterations × {len(m['classes'])} classes = {m['n_trees']} trees"),
        ("trained on", f"{count(tr.get('train_n'))} generated patients, seed {tr.get('train_seed', '—')}, "
                       f"{num(tr.get('train_seconds'), 1)} s"),
        ("configuration", ", ".join(f"{k}={v}" for k, v in (tr.get("config") or {}).items()) or "—"),
        ("training class mix", ", ".join(f"{k} {pct(v)}" for k, v in m["train_prevalence"].items())),
        ("input", f"{m['n_columns']} columns of the input contract (docs/data-dictionary.md)"),
    ]
    out.append(table(["", ""], rows, ["l", "l"]))
    out.append("")
    td = d["training_data"]
    out.append("### Training data")
    out.append("")
    out.append(
        f"Synthetic only: {td['description']}. Knowledge base `{td['knowledge_file']}`, SHA-256 `{td['knowledge_sha256']}`. "
        f"Its {td['n_assumption_entries']} assumed numbers rest on {td['n_distinct_assumptions']} distinct rationales "
        "(Knowledge.assumptions(), deduplicated by rationale; every other number cites the review or the literature):"
    )
    out.append("")
    rows = []
    for a in td["assumptions"]:
        where = a["where"]
        shown = "; ".join(where[:3]) + (f"; … ({len(where) - 3} more)" if len(where) > 3 else "")
        rows.append((a["rationale"], a["entries"], shown))
    out.append(table(["assumption (rationale)", "entries", "where"], rows, ["l", "r", "l"]))
    out.append("")
    mt = d["metrics"]
    out.append("### Metrics")
    out.append("")
    if mt.get("model") and mt.get("oracle"):
        g = mt.get("gap") or {}
        rows = [
            ("accuracy (model / oracle)", f"{num(mt['model']['accuracy'])} / {num(mt['oracle']['accuracy'])}"),
            ("log loss, nats (model / oracle)", f"{num(mt['model']['log_loss'])} / {num(mt['oracle']['log_loss'])}"),
            ("macro-F1 (model / oracle)", f"{num(mt['model']['macro_f1'])} / {num(mt['oracle']['macro_f1'])}"),
            ("ECE (model / oracle)", f"{num(mt['model']['ece'])} / {num(mt['oracle']['ece'])}"),
            ("gap to the oracle", f"{num(g.get('accuracy_gap_pp'), 2)} pp accuracy, {num(g.get('log_loss_gap'))} nats log loss"),
            ("clue audit pass rate", pct(mt.get("audit_pass_rate"))),
            ("SHAP vs oracle weight of evidence (median Spearman)", num(mt.get("shap_vs_oracle_spearman_median"), 3)),
            ("SHAP speed, all cores", f"{num(mt.get('shap_rows_per_second_all_cores'), 0)} rows/s"),
        ]
        out.append(f"On {count(mt.get('eval_n'))} fresh generated patients (section 2):")
        out.append("")
        out.append(table(["", ""], rows, ["l", "r"]))
        out.append("")
    out.append("### Limitations and caveats")
    out.append("")
    out += [f"- {x}" for x in d["limitations"]]
    out.append("")
    return "\n".join(out)
