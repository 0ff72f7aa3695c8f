"""Section 2, model vs oracle vs baselines: metrics, per-class recall, the gap, and figures."""

from __future__ import annotations

from ._common import Context, ci, count, image, jsonable, num, pct, table

TITLE = "2. Model vs oracle vs baselines"

PREDICTOR_NOTES = {
    "model": "the evaluated classifier",
    "oracle": "exact Bayes posterior of the knowledge base (the best any classifier can do)",
    "majority": "training class frequencies for everyone",
    "logistic": "multinomial logistic regression on the same columns",
    "rules": "Table-1 rule scorer (points for the review's clues)",
}


def mean_sd(row: dict, key: str, digits: int = 4) -> str:
    """"0.9650 ± 0.0013": a learning-curve summary row's ``<key>_mean`` ± ``<key>_sd`` (no sd with one seed)."""
    mean, sd = row[f"{key}_mean"], row[f"{key}_sd"]
    return num(mean, digits) + ("" if sd is None else f" ± {sd:.{digits}f}")


def run(ctx: Context) -> dict:
    from data_gen import generate_cohort
    from ml import evaluate, learning_curve_summary
    from ml.figures import confusion_png, learning_curve_png, reliability_png

    s = ctx.settings
    kb = ctx.knowledge
    model = ctx.model
    ctx.say(f"performance: generating the evaluation cohort ({s.eval_n:,} patients, seed {s.eval_seed})")
    cohort = generate_cohort(s.eval_n, random_state=s.eval_seed, knowledge=kb)
    ctx.shared["eval_cohort"] = cohort
    train_cohort = None
    baseline_source = "ml.evaluate default: generate_cohort(50,000, random_state=12345)"
    if s.baseline_n is not None:
        train_cohort = generate_cohort(s.baseline_n, random_state=s.baseline_seed, knowledge=kb)
        baseline_source = f"generate_cohort({s.baseline_n:,}, random_state={s.baseline_seed})"
    ctx.say("performance: evaluating the model, the oracle and the baselines (majority, logistic, rules)")
    res = evaluate(model, cohort, train_cohort=train_cohort)
    ctx.shared["evaluation"] = res
    ctx.say(f"performance: paired bootstrap of the gap ({s.n_boot} resamples)")
    gap = res.bootstrap_gap(n_boot=s.n_boot, random_state=s.boot_seed)

    figs = {}
    m = res.metrics
    p = confusion_png(m["model"]["confusion_matrix"], res.classes, ctx.figures_dir / "confusion_model.png",
                      title=f"Confusion matrix of the model ({res.n:,} evaluation patients)", knowledge=kb)
    figs["confusion_model"] = ctx.figure(p, "Confusion matrix of the model (rows: true class; columns: predicted)", "performance")
    p = confusion_png(m["oracle"]["confusion_matrix"], res.classes, ctx.figures_dir / "confusion_oracle.png",
                      title=f"Confusion matrix of the oracle ({res.n:,} evaluation patients)", knowledge=kb)
    figs["confusion_oracle"] = ctx.figure(p, "Confusion matrix of the oracle (the irreducible confusion)", "performance")
    p = reliability_png({k: m[k] for k in ("model", "oracle", "logistic", "rules") if k in m}, ctx.figures_dir / "reliability.png",
                        title=f"Reliability of the top-class probability ({res.n:,} patients)")
    figs["reliability"] = ctx.figure(p, "Reliability diagram: top-class probability vs observed accuracy", "performance")

    lc = ctx.shared["learning_curve"]  # trained by .retrain
    p = learning_curve_png(lc, ctx.figures_dir / "learning_curve.png",
                           title=f"Learning curve: classifier ({len(s.learning_seeds)} seeds a size) vs oracle on "
                                 f"{s.learning_test_n:,} test patients")
    figs["learning_curve"] = ctx.figure(p, "Learning curve: model vs oracle accuracy and log loss by training size "
                                           f"(each of {len(s.learning_seeds)} seeds, their mean and min–max)", "performance")

    per_class = res.per_class().reset_index()
    return jsonable(
        {
            "n": res.n,
            "seed": s.eval_seed,
            "baseline_training": baseline_source,
            "table": res.table().reset_index(),
            "per_class": per_class,
            "metrics": res.to_dict()["metrics"],
            "gap": gap,
            "learning_curve": {
                "sizes": list(s.learning_sizes),
                "seeds": list(s.learning_seeds),
                "test_n": s.learning_test_n,
                "test_seed": s.learning_test_seed,
                "max_iter": s.learning_max_iter,
                "rows": lc,  # one per (size, seed)
                "summary": learning_curve_summary(lc),  # one per size: mean, sd, min, max over seeds
            },
            "figures": figs,
        }
    )


def markdown(d: dict) -> str:
    out = [f"## {TITLE}", ""]
    out.append(
        f"All predictors on the same fresh evaluation cohort of {d['n']:,} patients (seed {d['seed']}, default class mix; "
        f"never used in training). Baselines were fitted on {d['baseline_training']}. Log loss in nats per patient; "
        "Brier = multiclass Brier score (0 best, 2 worst); ECE = top-label expected calibration error, 10 bins."
    )
    out.append("")
    out.append(
        table(
            ["predictor", "accuracy", "balanced accuracy", "macro-F1", "log loss", "Brier", "ECE", "what it is"],
            [
                (r["predictor"], num(r["accuracy"]), num(r["balanced_accuracy"]), num(r["macro_f1"]), num(r["log_loss"]),
                 num(r["brier"]), num(r["ece"]), PREDICTOR_NOTES.get(r["predictor"], ""))
                for r in d["table"]
            ],
            ["l", "r", "r", "r", "r", "r", "r", "l"],
        )
    )
    out.append("")
    g = d["gap"]
    out.append(
        f"**Gap to the oracle** (paired bootstrap over patients, {g['n_boot']} resamples, 95% CI): the model is behind by "
        f"**{g['accuracy_gap_pp']:.2f} pp** accuracy {ci(g['accuracy_gap_pp_ci'])} pp and **{g['log_loss_gap']:.4f} nats** "
        f"log loss {ci(g['log_loss_gap_ci'], 4)} (model {num(g['model_accuracy'])} vs oracle {num(g['oracle_accuracy'])} accuracy; "
        f"{num(g['model_log_loss'])} vs {num(g['oracle_log_loss'])} log loss). Positive = model behind."
    )
    out.append("")
    out.append("### Per-class recall")
    out.append("")
    pc = d["per_class"]
    predictors = list(dict.fromkeys(r["predictor"] for r in pc))
    classes = list(dict.fromkeys(r["class"] for r in pc))
    rec = {(r["predictor"], r["class"]): r for r in pc}
    rows = []
    for k in classes:
        rows.append([k, count(rec[(predictors[0], k)]["support"])] + [pct(rec[(pr, k)]["recall"]) for pr in predictors])
    out.append(table(["class", "patients"] + [f"recall: {p}" for p in predictors], rows))
    out.append("")
    rows = []
    for k in classes:
        rows.append([k] + [pct(rec[(pr, k)]["precision"]) for pr in predictors])
    out.append("Precision per class (— where a predictor never predicts the class):")
    out.append("")
    out.append(table(["class"] + [f"precision: {p}" for p in predictors], rows))
    out.append("")
    f = d["figures"]
    out.append(image(f["confusion_model"], "Confusion matrix of the model"))
    out.append("")
    out.append(image(f["confusion_oracle"], "Confusion matrix of the oracle"))
    out.append("")
    out.append(image(f["reliability"], "Reliability diagram"))
    out.append("")
    lc = d["learning_curve"]
    out.append("### Learning curve")
    out.append("")
    cap = "" if lc["max_iter"] is None else f", capped at {lc['max_iter']} boosting iterations,"
    seeds = ", ".join(str(x) for x in lc["seeds"])
    out.append(
        f"Classifiers trained with the shipped configuration{cap} on cohorts of increasing size, {len(lc['seeds'])} times a size "
        f"(seeds {seeds}; one independent training stream per size and seed), and scored on one fixed test cohort of "
        f"{lc['test_n']:,} patients (seed {lc['test_seed']}). Mean ± standard deviation over the seeds (report.json has every "
        "seed's row); the oracle is one number, the test cohort being fixed. Gaps: positive = model behind the oracle."
    )
    out.append("")

    out.append(
        table(
            ["training patients", "seeds", "model accuracy", "oracle accuracy", "accuracy gap (pp)", "model log loss",
             "oracle log loss", "log-loss gap (nats)", "iterations (mean)", "training time (s, mean)"],
            [
                (count(r["n_train"]), count(r["n_seeds"]), mean_sd(r, "model_accuracy"), num(r["oracle_accuracy"]),
                 mean_sd(r, "accuracy_gap_pp", 2), mean_sd(r, "model_log_loss"), num(r["oracle_log_loss"]), mean_sd(r, "log_loss_gap"),
                 num(r["n_iter_mean"], 0), num(r["seconds_mean"], 1))
                for r in lc["summary"]
            ],
        )
    )
    out.append("")
    out.append(image(f["learning_curve"], "Learning curve"))
    out.append("")
    return "\n".join(out)
