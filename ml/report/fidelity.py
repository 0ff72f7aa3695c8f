"""Section 1, cohort fidelity: the knowledge base vs the generated cohort, and the review's facts."""

from __future__ import annotations

from ._common import Context, count, jsonable, num, pct, table

TITLE = "1. Cohort fidelity"


def run(ctx: Context) -> dict:
    from data_gen import fidelity_table, generate_cohort
    from data_gen.facts import check_paper_facts

    s = ctx.settings
    kb = ctx.knowledge
    ctx.say(f"fidelity: generating {s.fidelity_n:,} patients (seed {s.fidelity_seed}) with their latent subtypes")
    cohort = generate_cohort(s.fidelity_n, random_state=s.fidelity_seed, latent=True, knowledge=kb)
    ctx.say("fidelity: comparing every (class, column) frequency with the knowledge base")
    fid = fidelity_table(cohort, knowledge=kb)
    absz = fid["z"].abs()
    facts = check_paper_facts(cohort, knowledge=kb)
    ctx.say(f"fidelity: {int(facts['holds'].sum())} of {len(facts)} of the review's facts hold")
    counts = cohort["calcification_type"].value_counts()
    mix = [
        {"class": k, "expected": kb.prevalence[k], "observed": float(counts.get(k, 0) / len(cohort)), "n": int(counts.get(k, 0))}
        for k in kb.class_names
    ]
    return jsonable(
        {
            "n": s.fidelity_n,
            "seed": s.fidelity_seed,
            "knowledge_sha256": kb.sha256,
            "class_mix": mix,
            "n_rows": len(fid),
            "max_abs_z": float(absz.max()),
            "share_abs_z_above_3": float((absz > 3).mean()),
            "share_abs_z_above_4": float((absz > 4).mean()),
            "max_abs_deviation": float((fid["observed"] - fid["expected"]).abs().max()),
            "table": fid,
            "facts": facts,
            "facts_held": int(facts["holds"].sum()),
            "facts_total": int(len(facts)),
        }
    )


def markdown(d: dict, top: int = 25) -> str:
    out = [f"## {TITLE}", ""]
    out.append(
        f"A cohort of {d['n']:,} patients (seed {d['seed']}, the knowledge base's default class mix, "
        f"knowledge base `{d['knowledge_sha256'][:12]}`) compared with what the knowledge base implies. "
        "For every class and every binary column or categorical level, *expected* is the knowledge base's "
        "probability among patients with the column recorded (latent subtypes summed out) and *observed* the "
        "cohort's frequency; z = (observed − expected) / binomial SE."
    )
    out.append("")
    out.append(table(["class", "expected share", "observed share", "patients"],
                     [(m["class"], pct(m["expected"], 2), pct(m["observed"], 2), count(m["n"])) for m in d["class_mix"]]))
    out.append("")
    n_rows = d["n_rows"]
    out.append(
        f"{n_rows:,} (class, column, level) frequencies: largest |z| = {num(d['max_abs_z'], 2)}; "
        f"{pct(d['share_abs_z_above_3'])} have |z| > 3 (about 0.27% expected by chance) and "
        f"{pct(d['share_abs_z_above_4'])} have |z| > 4; largest absolute deviation "
        f"{num(d['max_abs_deviation'], 4)}. The {min(top, n_rows)} largest deviations (all rows are in report.json, "
        "`fidelity.table`):"
    )
    out.append("")
    rows = [
        (r["class"], r["column"], r["level"], num(r["expected"]), num(r["observed"]), count(r["n_recorded"]), num(r["z"], 2))
        for r in d["table"][:top]
    ]
    out.append(table(["class", "column", "level", "expected", "observed", "n recorded", "z"], rows, ["l", "l", "l", "r", "r", "r", "r"]))
    out.append("")
    out.append(f"### The review's stated facts in the generated cohort ({d['facts_held']} of {d['facts_total']} hold)")
    out.append("")
    out.append(
        "Each fact is checked on the generated patients alone (observed columns, label and latent subtype) "
        "against the threshold the review states (`data_gen.facts.check_paper_facts`)."
    )
    out.append("")
    out.append(
        table(
            ["fact", "the review says", "generated cohort", "criterion", "holds"],
            [(f["fact"], f["source"], f["figure"], f["criterion"], f["holds"]) for f in d["facts"]],
            ["l", "l", "l", "l", "l"],
        )
    )
    out.append("")
    return "\n".join(out)
