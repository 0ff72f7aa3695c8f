"""Section 4, robustness: prevalence shift, missing data and label noise in training."""

from __future__ import annotations

import numpy as np

from ._common import Context, count, jsonable, num, pct, table

TITLE = "4. Robustness"

#: Class mixes of the prevalence-shift settings: one class fixed, the rest in the knowledge
#: base's proportions.
SETTINGS = (
    ("general radiology", None, "the knowledge base's default mix"),
    ("dialysis clinic", ("metastatic", 0.6), "MPC 60%, the other classes in the default proportions"),
    ("genetics clinic", ("pam", 0.4), "PAM 40%, the other classes in the default proportions"),
)

ORACLE_IGNORE_WHY = (
    "The masked cohorts are scored against the oracle with `missing=\"ignore\"`. The default (`missing=\"model\"`) reads a "
    "missing value through the knowledge base's missingness model, and for some columns that is evidence: PAM patients are "
    "far more often tested for SLC34A2, a bone scan is done more often when DPO is suspected. After masking, every patient "
    "lacks those columns whatever the class, so reading the blank as \"not tested\" would invent evidence the masking "
    "destroyed; `ignore` sums the masked columns out, which is the exact posterior given what remains. It also treats the "
    "natural blanks of the other columns as uninformative (e.g. a lesion size left blank because there is no discrete "
    "lesion), so it is a slightly weaker reference than the exact one: the row *oracle (ignore), nothing masked* shows "
    "what that costs on the unmasked cohort, and a model may come out a little ahead of it."
)


def shifted_mix(kb, fixed: tuple[str, float] | None) -> dict[str, float]:
    """The default prevalence with one class set to a share and the others scaled to fill the rest."""
    prev = dict(kb.prevalence)
    if fixed is None:
        return prev
    k, share = fixed
    rest = sum(v for c, v in prev.items() if c != k)
    return {c: (share if c == k else v / rest * (1 - share)) for c, v in prev.items()}


def missing_conditions(kb) -> list[tuple[str, list[str], str]]:
    """(name, masked columns, description) of the missing-data conditions."""
    labs = [c for c, s in kb.columns.items() if s.group == "laboratory"]
    history = [c for c, s in kb.columns.items() if s.group == "history"]
    special = [c for c in ("bone_scan_lung_uptake", "slc34a2_variant") if c in kb.columns]
    return [
        ("labs, bone scan and SLC34A2 missing", labs + special, "every laboratory value, the bone scan and the SLC34A2 test set to not recorded"),
        ("history missing", history, "every history column (age, sex, smoking, comorbidities, causes, family history, SLC34A2) not recorded"),
        ("imaging alone", history + labs, "history and laboratory columns not recorded: only the imaging findings remain"),
    ]


def _metrics(y, proba, classes):
    from ml import classification_metrics

    m = classification_metrics(y, proba, classes)
    return {k: m[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "log_loss", "brier", "ece")}


def _audit_summary(audit) -> dict:
    overall = audit.summary().loc["overall"]
    return {"pass_rate": audit.pass_rate, "testable": int(overall["testable"]), "passed": int(overall["passed"]),
            "clues": int(overall["clues"]), "n_patients": audit.n_patients}


def _audit_rate(ctx, model, cohort) -> dict:
    from ml import audit_clues

    s = ctx.settings
    return _audit_summary(audit_clues(model, cohort, max_patients=s.robust_audit_patients, random_state=s.explain_seed))


def _adjusted(model, x, proba, mix, kb):
    """``model.predict_proba(x, prevalence=mix)`` from already computed unadjusted probabilities
    (the same prior-shift correction; checked against the model's own call on a few patients)."""
    import pandas as pd

    from data_gen.sampler import resolve_prevalence
    from ml.model import adjust_prevalence

    p = adjust_prevalence(proba.to_numpy(), model._prior(), resolve_prevalence(mix, kb))
    head = min(len(x), 500)
    direct = model.predict_proba(x.iloc[:head], prevalence=mix).to_numpy()
    if not np.allclose(direct, p[:head], rtol=0, atol=1e-12):
        raise RuntimeError("prevalence adjustment of stored probabilities differs from predict_proba(prevalence=...)")
    return pd.DataFrame(p, index=proba.index, columns=proba.columns)


def run(ctx: Context) -> dict:
    import pandas as pd

    from data_gen import generate_cohort, oracle_proba

    s = ctx.settings
    kb = ctx.knowledge
    model = ctx.model
    classes = list(kb.class_names)
    evaluation = ctx.shared["evaluation"]
    eval_cohort = ctx.shared["eval_cohort"]
    main_audit = _audit_summary(ctx.shared["audit"])
    ye = eval_cohort["calcification_type"].astype(str).to_numpy()
    xe = eval_cohort.drop(columns=["calcification_type"])
    out: dict = {"n": s.robust_n, "eval_n": len(eval_cohort), "audit_patients": s.robust_audit_patients,
                 "main_audit_patients": main_audit["n_patients"]}

    # ---- (a) prevalence shift -------------------------------------------------------------
    prev_rows = []
    for i, (name, fixed, desc) in enumerate(SETTINGS):
        mix = shifted_mix(kb, fixed)
        if fixed is None:  # the default mix: section 2's cohort, probabilities and audit
            y, x, raw, audit, seed, n = ye, xe, evaluation.proba["model"], main_audit, s.eval_seed, len(eval_cohort)
            oracle = evaluation.proba["oracle"]
            source = "the section-2 evaluation cohort"
        else:
            seed = s.robust_seed + i
            ctx.say(f"robustness: {name} ({s.robust_n:,} patients, seed {seed})")
            cohort = generate_cohort(s.robust_n, random_state=seed, prevalence=mix, knowledge=kb)
            y = cohort["calcification_type"].astype(str).to_numpy()
            x = cohort.drop(columns=["calcification_type"])
            raw = model.predict_proba(x)
            oracle = oracle_proba(x, prevalence=mix, knowledge=kb)
            audit = _audit_rate(ctx, model, cohort)
            n = len(cohort)
            source = f"generated with this mix, seed {seed}"
        base = {"setting": name, "description": desc, "prevalence": mix, "seed": seed, "n": n, "cohort": source}
        prev_rows.append({**base, "predictor": "model, not adjusted", **_metrics(y, raw, classes), "audit": audit})
        prev_rows.append({**base, "predictor": "model, prevalence-adjusted",
                          **_metrics(y, _adjusted(model, x, raw, mix, kb), classes), "audit": audit})
        prev_rows.append({**base, "predictor": "oracle with this prevalence", **_metrics(y, oracle, classes), "audit": None})
    out["prevalence"] = prev_rows

    # ---- (b) missing data: the evaluation cohort with groups of columns masked -------------
    ctx.say(f"robustness: missing data (the {len(eval_cohort):,}-patient evaluation cohort, masked)")
    miss_rows = [
        {"condition": "nothing masked", "masked": [], "predictor": "model", **_metrics(ye, evaluation.proba["model"], classes),
         "audit": main_audit},
        {"condition": "nothing masked", "masked": [], "predictor": "oracle (model missingness)",
         **_metrics(ye, evaluation.proba["oracle"], classes), "audit": None},
        {"condition": "nothing masked", "masked": [], "predictor": "oracle (ignore)",
         **_metrics(ye, oracle_proba(xe, missing="ignore", knowledge=kb), classes), "audit": None},
    ]
    never = pd.Series(False, index=eval_cohort.index)
    for name, cols, desc in missing_conditions(kb):
        ctx.say(f"robustness: {name}")
        masked = eval_cohort.copy()
        for c in cols:
            masked[c] = masked[c].where(never)  # not recorded, dtype kept
        mx = masked.drop(columns=["calcification_type"])
        miss_rows.append({"condition": name, "description": desc, "masked": cols, "predictor": "model",
                          **_metrics(ye, model.predict_proba(mx), classes), "audit": _audit_rate(ctx, model, masked)})
        miss_rows.append({"condition": name, "description": desc, "masked": cols, "predictor": "oracle (ignore)",
                          **_metrics(ye, oracle_proba(mx, missing="ignore", knowledge=kb), classes), "audit": None})
        del masked, mx
    out["missing"] = {"seed": s.eval_seed, "n": len(eval_cohort), "rows": miss_rows, "oracle_note": ORACLE_IGNORE_WHY}

    # ---- (c) label noise: models trained by .retrain, scored on the clean evaluation cohort ---
    plan = ctx.shared["noise_plan"]
    trained = ctx.shared["noise_models"]
    meta = ctx.model_info.get("training", {})
    noise_rows = []
    for rate in plan["levels"]:
        if rate == 0.0 and plan["reuse_model_for_zero"]:
            noise_rows.append({"noise": 0.0, "n_train": plan["n"], "flipped": 0, "source": "the evaluated model (same data and config)",
                               "n_iter": int(model.booster.n_iter_), "train_seconds": meta.get("train_seconds"),
                               **_metrics(ye, evaluation.proba["model"], classes), "audit": main_audit})
            continue
        r = trained[rate]
        ctx.say(f"robustness: scoring the model trained with {rate:.0%} label noise")
        m = r["model"]
        noise_rows.append({"noise": rate, "n_train": r["n"], "flipped": r["flipped"], "source": "retrained",
                           "n_iter": int(m.booster.n_iter_), "train_seconds": r["seconds"],
                           **_metrics(ye, m.predict_proba(xe), classes), "audit": _audit_rate(ctx, m, eval_cohort)})
    out["label_noise"] = {
        "n_train": plan["n"],
        "train_seed": plan["train_seed"],
        "noise_seed": s.noise_seed,
        "max_iter": s.noise_max_iter,
        "eval_n": len(eval_cohort),
        "rows": noise_rows,
    }
    ctx.shared["noise_train_seconds"] = [r["train_seconds"] for r in noise_rows if r["source"] == "retrained"]
    return jsonable(out)


def _audit_text(a) -> str:
    if not a:
        return "—"
    return f"{pct(a['pass_rate'])} ({a['passed']}/{a['testable']})"


def markdown(d: dict) -> str:
    out = [f"## {TITLE}", ""]
    out.append(
        "Accuracy, log loss (nats per patient) and the clue audit's pass rate (passed / testable clues) under changed "
        f"conditions. Audits of new cohorts and models explain {d['audit_patients']:,} patients; rows on the section-2 "
        f"evaluation cohort with the evaluated model reuse section 3's audit ({d['main_audit_patients']:,} patients). The "
        "audit reads SHAP values, which a prevalence adjustment does not change, so both model rows of a setting share it; "
        "the oracle has no SHAP audit."
    )
    out.append("")
    out.append("### (a) Prevalence shift")
    out.append("")
    out.append(
        f"The general radiology setting is the default mix, i.e. the section-2 evaluation cohort ({d['eval_n']:,} patients); "
        f"the clinics are cohorts of {d['n']:,} patients generated with their class mix. *Not adjusted*: the model's "
        "probabilities under its training mix; *prevalence-adjusted*: `predict_proba(df, prevalence=mix)` (prior-shift "
        "correction); the oracle is given the setting's mix."
    )
    out.append("")
    rows = []
    for r in d["prevalence"]:
        rows.append((r["setting"], r["predictor"], num(r["accuracy"]), num(r["balanced_accuracy"]), num(r["log_loss"]), num(r["ece"]), _audit_text(r["audit"])))
    out.append(table(["setting", "predictor", "accuracy", "balanced accuracy", "log loss", "ECE", "audit pass rate"], rows, ["l", "l", "r", "r", "r", "r", "r"]))
    out.append("")
    seen = {}
    for r in d["prevalence"]:
        seen.setdefault(r["setting"], r)
    out.append("Class mixes: " + "; ".join(
        f"{name}: " + ", ".join(f"{k} {pct(v)}" for k, v in r["prevalence"].items()) for name, r in seen.items()) + ".")
    out.append("")
    m = d["missing"]
    out.append("### (b) Missing data")
    out.append("")
    out.append(f"The section-2 evaluation cohort ({m['n']:,} patients, seed {m['seed']}) with groups of columns set to not recorded.")
    out.append("")
    rows = []
    for r in m["rows"]:
        rows.append((r["condition"], r["predictor"], count(len(r["masked"])), num(r["accuracy"]), num(r["balanced_accuracy"]), num(r["log_loss"]), _audit_text(r["audit"])))
    out.append(table(["condition", "predictor", "masked columns", "accuracy", "balanced accuracy", "log loss", "audit pass rate"], rows,
                     ["l", "l", "r", "r", "r", "r", "r"]))
    out.append("")
    for r in m["rows"]:
        if r["predictor"] == "model" and r["masked"]:
            out.append(f"- *{r['condition']}*: {r.get('description', '')} ({', '.join(r['masked'])}).")
    out.append("")
    out.append(m["oracle_note"])
    out.append("")
    out.append(
        "Masked columns have no recorded values, so their clues cannot be tested; the audit pass rate is over the clues that "
        "remain testable."
    )
    out.append("")
    ln = d["label_noise"]
    out.append("### (c) Label noise in training")
    out.append("")
    cap = "" if ln["max_iter"] is None else f", capped at {ln['max_iter']} boosting iterations"
    out.append(
        f"The training cohort ({ln['n_train']:,} patients, seed {ln['train_seed']}) with a share of its labels replaced by a "
        f"uniformly random other class (seed {ln['noise_seed']}); models retrained with the shipped configuration{cap} and "
        f"evaluated on the clean labels of the {ln['eval_n']:,}-patient evaluation cohort of section 2."
    )
    out.append("")
    rows = []
    for r in ln["rows"]:
        rows.append((pct(r["noise"], 0), count(r["flipped"]), r["source"], count(r["n_iter"]), num(r["train_seconds"], 1),
                     num(r["accuracy"]), num(r["log_loss"]), num(r["ece"]), _audit_text(r["audit"])))
    out.append(table(["label noise", "labels flipped", "model", "iterations", "training time (s)", "accuracy", "log loss", "ECE", "audit pass rate"], rows,
                     ["r", "r", "l", "r", "r", "r", "r", "r", "r"]))
    out.append("")
    out.append(
        "A model trained on noisy labels learns the noisy labels' distribution: even for a clear-cut patient the true class "
        "keeps only about 1 − noise of the probability, so noise shows first in log loss and calibration (ECE), while accuracy "
        "holds as long as the true class stays the most probable one."
    )
    out.append("")
    return "\n".join(out)
