"""The benchmark report: one call, the whole picture, with figures.

:func:`build_report` generates the cohorts, loads (or, with ``quick`` and no model, trains) the
classifier, evaluates it against the oracle and the baselines, audits its explanations,
stresses it, times it and writes::

    out_dir/report.md       the report (every figure in it is also in report.json)
    out_dir/report.json     machine-readable
    out_dir/figures/*.png

One module per section: :mod:`.fidelity`, :mod:`.performance`, :mod:`.explanations`,
:mod:`.leaderboard`, :mod:`.robustness`, :mod:`.timings`, :mod:`.card`, :mod:`.environment`. Each has ``run`` (the
figures as plain JSON data) and ``markdown`` (the section rendered from that data only, so the
Markdown cannot show a number that the JSON lacks). :mod:`.retrain` trains the learning curve's
and the label-noise section's models, in worker processes in the full run.

Everything in this process runs with one OpenMP/BLAS thread; parallel work (training, SHAP)
uses worker processes. A booster whose threads contend with other work on a busy machine can
run ten times slower, and a fixed thread count keeps every figure but the timings independent
of the machine. Sizes and seeds are in :data:`FULL` and :data:`QUICK`.

The library never prints: progress lines go to the ``progress`` callable
(``pulmocalc benchmark`` prints them on stderr with a timestamp).

Research and teaching on synthetic data only; never a clinical device.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import card, environment, explanations, fidelity, leaderboard, performance, realworld, retrain, robustness, timings
from ._common import DISCLAIMER, FULL, QUICK, Context, Settings, jsonable, limited_threads, num, pct, table

__all__ = ["build_report", "render_markdown", "REPORT_FORMAT", "SECTION_TITLES", "HEADLINE_KEYS", "FULL", "QUICK", "Settings"]

REPORT_FORMAT = 1
SECTIONS = (
    ("fidelity", fidelity),
    ("performance", performance),
    ("explanations", explanations),
    ("leaderboard", leaderboard),
    ("robustness", robustness),
    ("realworld", realworld),
    ("timings", timings),
    ("model_card", card),
    ("environment", environment),
)
SECTION_TITLES = tuple(mod.TITLE for _, mod in SECTIONS)
HEADLINE_KEYS = (
    "model_sha256",
    "quick",
    "model_accuracy",
    "oracle_accuracy",
    "accuracy_gap_pp",
    "accuracy_gap_pp_ci",
    "model_log_loss",
    "oracle_log_loss",
    "log_loss_gap",
    "log_loss_gap_ci",
    "case_report_accuracy_gap_pp",
    "case_report_accuracy_gap_pp_ci",
    "case_report_log_loss_gap",
    "case_report_log_loss_gap_ci",
    "published_top1_model",
    "published_top1_oracle",
    "published_top2_model",
    "audit_pass_rate",
    "shap_oracle_spearman_median",
    "shap_oracle_spearman_random_floor",
    "shap_oracle_spearman_permuted_floor",
    "shap_shapley_spearman_median",
    "facts_held",
    "facts_total",
    "generation_patients_per_second",
    "generation_ratio_to_numpy",
    "predict_rows_per_second",
    "latency_median_ms",
    "latency_p95_ms",
    "shap_rows_per_second_1_process",
    "shap_rows_per_second_all_cores",
    "artifact_mb",
    "artifact_load_seconds",
    "peak_memory_mb",
    "total_seconds",
)


def _command(quick, model_arg, knowledge_arg, out_dir) -> str:
    parts = ["pulmocalc", "benchmark"]
    if quick:
        parts.append("--quick")
    if model_arg is not None:
        parts += ["--model", str(model_arg)]
    if knowledge_arg is not None:
        parts += ["--knowledge", str(knowledge_arg)]
    parts += ["--out", str(out_dir)]
    return " ".join(parts)


def _resolve_model(model, knowledge, settings: Settings, quick: bool, say, tmp_dir: Path):
    """(model, info) where info records where the model came from, its file and SHA-256."""
    from data_gen import generate_cohort, load_knowledge
    from ml import load_model, read_metadata, train
    from ml.artifacts import DEFAULT_MODEL_PATH, _sha256
    from ml.config import TRAINING
    from ml.model import CalcificationModel

    info: dict = {"knowledge_arg": None if knowledge is None else str(knowledge)}
    if isinstance(model, CalcificationModel):
        obj = model
        info["source"] = "a model object passed to build_report (saved to a temporary file to be measured)"
    elif model is not None:
        path = Path(model)
        say(f"loading the model {path} (SHA-256 checked before unpickling)")
        obj = load_model(path, knowledge=knowledge)
        meta = read_metadata(path)
        info.update(source=f"--model {path}", path=str(path), sha256=_sha256(path), training=meta.get("training", {}),
                    file_metadata={k: meta.get(k) for k in ("format_version", "versions", "knowledge_sha256", "n_trees")})
        return obj, info
    elif quick:
        kb = load_knowledge(knowledge)
        n, it, seed = settings.quick_model_n, settings.quick_model_max_iter, TRAINING["seed"]
        say(f"--quick without --model: training a small model ({n:,} patients, seed {seed}, max_iter {it})")
        with limited_threads(1):
            cohort = generate_cohort(n, random_state=seed, recording=TRAINING["recording"], knowledge=kb)
            obj = train(cohort, random_state=seed, knowledge=knowledge, max_iter=it)
            obj.metadata["recording"] = TRAINING["recording"]
        info["source"] = (f"trained in this run: {n:,} generated patients (seed {seed}, the shipped recording mixture), "
                          f"shipped config with max_iter={it}")
    else:
        path = DEFAULT_MODEL_PATH
        if not path.exists():
            raise ValueError(
                f"the shipped model {path} does not exist; train it with `pulmocalc train --ship`, or pass --model PATH "
                "(or use --quick, which trains a small model)"
            )
        say(f"loading the shipped model {path} (SHA-256 checked before unpickling)")
        obj = load_model(None, knowledge=knowledge)
        meta = read_metadata(path)
        info.update(source=f"the shipped model ({path.relative_to(path.parents[1]).as_posix()})", path=str(path),
                    sha256=_sha256(path), training=meta.get("training", {}),
                    file_metadata={k: meta.get(k) for k in ("format_version", "versions", "knowledge_sha256", "n_trees")})
        return obj, info
    # in-memory model: save it so that its hash, size and load time can be reported
    path = obj.save(tmp_dir / "model.joblib")
    info.update(path=str(path), temporary=True, sha256=_sha256(path), training=dict(obj.metadata))
    return obj, info


def build_report(
    out_dir,
    *,
    quick: bool = False,
    model=None,
    knowledge=None,
    progress: Callable[[str], None] | None = None,
    on_step: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Run the benchmark and write ``out_dir/report.md``, ``report.json`` and ``figures/*.png``.

    Parameters
    ----------
    out_dir : path-like
        Created if needed. PNGs left in ``out_dir/figures`` by an earlier report are replaced.
    quick : bool
        Small cohorts and sizes (:data:`QUICK`); without ``model``, a small model is trained in
        the run. The full run (:data:`FULL`) uses 100k-patient evaluation cohorts, a learning
        curve to 200k and retrains at the model's own training size.
    model : path, CalcificationModel or None
        The model to benchmark. None: the shipped model (full run) or a quickly trained one
        (``quick``).
    knowledge : path, optional
        The knowledge base the model was trained on (default: the one its metadata records).
    on_step : callable(done, total, label), optional
        Called as each section starts (``done`` sections finished of ``total``) and once at the
        end, for a progress bar; ``progress`` gets the finer messages.
    progress : callable(str), optional
        Receives one line per step; the library never prints.

    Returns
    -------
    dict
        The content of ``report.json``.
    """
    t_start = time.perf_counter()
    say = progress if progress is not None else (lambda line: None)
    settings = QUICK if quick else FULL
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(exist_ok=True)
    for old in figures_dir.glob("*.png"):
        old.unlink()
    model_arg = None if model is None or not isinstance(model, (str, os.PathLike)) else model

    with tempfile.TemporaryDirectory(prefix="pulmocalc-report-") as tmp:
        obj, info = _resolve_model(model, knowledge, settings, quick, say, Path(tmp))
        ctx = Context(out_dir=out_dir, settings=settings, model=obj, knowledge=obj.knowledge, model_info=info,
                      progress=say, quick=quick)
        say(f"benchmark ({settings.mode}): model {str(info.get('sha256'))[:12]} ({obj.n_trees} trees), knowledge base "
            f"{ctx.knowledge.sha256[:12]}; writing to {out_dir}")
        results: dict = {"environment": environment.collect(ctx)}
        # One OpenMP/BLAS thread in this process: parallel work runs in worker processes (the
        # training runs, SHAP), so a busy machine cannot stall the report in thread contention.
        steps = [key for key, _ in SECTIONS if key not in ("model_card", "environment")]
        steps = [s for key in steps for s in (["training", key] if key == "performance" else [key])] + ["model_card"]
        step = (lambda i, label: on_step(i, len(steps), label)) if on_step is not None else (lambda i, label: None)
        with limited_threads(1):
            for key, mod in SECTIONS:
                if key in ("model_card", "environment"):
                    continue
                if key == "performance":
                    step(steps.index("training"), "training")
                    with ctx.timed("training"):
                        retrain.run(ctx)
                step(steps.index(key), key)
                with ctx.timed(key):
                    results[key] = mod.run(ctx)
        step(len(steps) - 1, "model card")
        results["model_card"] = card.run(ctx, results)
        step(len(steps), "done")

    total = time.perf_counter() - t_start
    results["timings"]["peak_memory"] = timings.peak_memory_mb()
    results["timings"]["sections"] = {k: round(v, 2) for k, v in ctx.section_seconds.items()}
    results["timings"]["total_seconds"] = total
    env = results["environment"]
    meta = {
        "title": "pulmocalc benchmark report",
        "generated_by": _command(quick, model_arg, knowledge, out_dir),
        "mode": settings.mode,
        "quick": bool(quick),
        "date": env["date"],
        "commit": env["git"]["commit"],
        "commit_dirty": env["git"].get("dirty"),
        "model_sha256": info.get("sha256"),
        "model_source": info.get("source"),
        "knowledge_sha256": ctx.knowledge.sha256,
        "disclaimer": DISCLAIMER,
        "format": REPORT_FORMAT,
    }
    report = {
        "meta": meta,
        "headline": _headline(meta, results),
        **{key: results[key] for key, _ in SECTIONS},
        "figures": ctx.figures,
    }
    report = jsonable(report)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(render_markdown(report), encoding="utf-8", newline="\n")
    say(f"wrote {out_dir / 'report.md'}, {out_dir / 'report.json'} and {len(ctx.figures)} figures in {total:.0f} s")
    return report


def _headline(meta: dict, r: dict) -> dict:
    perf, expl, tim = r["performance"], r["explanations"], r["timings"]
    g = perf["gap"]
    ag = expl["agreement"]
    rw = r["realworld"]
    cr = next(x for x in rw["gaps"] if x["recording"] == "case_report")
    return {
        "model_sha256": meta["model_sha256"],
        "quick": meta["quick"],
        "model_accuracy": g["model_accuracy"],
        "oracle_accuracy": g["oracle_accuracy"],
        "accuracy_gap_pp": g["accuracy_gap_pp"],
        "accuracy_gap_pp_ci": g["accuracy_gap_pp_ci"],
        "model_log_loss": g["model_log_loss"],
        "oracle_log_loss": g["oracle_log_loss"],
        "log_loss_gap": g["log_loss_gap"],
        "log_loss_gap_ci": g["log_loss_gap_ci"],
        "case_report_accuracy_gap_pp": cr["accuracy_gap_pp"],
        "case_report_accuracy_gap_pp_ci": cr["accuracy_gap_pp_ci"],
        "case_report_log_loss_gap": cr["log_loss_gap"],
        "case_report_log_loss_gap_ci": cr["log_loss_gap_ci"],
        "published_top1_model": rw["published"]["model"]["top1"],
        "published_top1_oracle": rw["published"]["oracle (case-report regime)"]["top1"],
        "published_top2_model": rw["published"]["model"]["top2"],
        "audit_pass_rate": expl["audit"]["pass_rate"],
        "shap_oracle_spearman_median": ag["model"]["spearman_median"],
        "shap_oracle_spearman_random_floor": ag["random"]["spearman_median"],
        "shap_oracle_spearman_permuted_floor": ag["permuted_labels"]["spearman_median"],
        "shap_shapley_spearman_median": expl["strict"]["model_vs_shapley"]["spearman_median"],
        "facts_held": r["fidelity"]["facts_held"],
        "facts_total": r["fidelity"]["facts_total"],
        "generation_patients_per_second": tim["generation"]["patients_per_second"],
        "generation_ratio_to_numpy": tim["generation"]["ratio_to_numpy"],
        "predict_rows_per_second": tim["predict"]["rows_per_second"],
        "latency_median_ms": tim["latency"]["median_ms"],
        "latency_p95_ms": tim["latency"]["p95_ms"],
        "shap_rows_per_second_1_process": tim["shap"]["one_process_rows_per_second"],
        "shap_rows_per_second_all_cores": tim["shap"]["all_cores_rows_per_second"],
        "artifact_mb": tim["artifact"]["size_mb"],
        "artifact_load_seconds": tim["artifact"]["load_seconds"],
        "peak_memory_mb": tim["peak_memory"]["self_mb"],
        "total_seconds": tim["total_seconds"],
    }


def render_markdown(report: dict) -> str:
    """report.md from the content of report.json (nothing else is read)."""
    meta, h = report["meta"], report["headline"]
    commit = meta["commit"] + (" (with uncommitted changes)" if meta.get("commit_dirty") else "")
    out = [f"# {meta['title']}", ""]
    out.append(
        f"> **Generated file; do not edit.** Written by `{meta['generated_by']}` on {meta['date']} (UTC) from model "
        f"SHA-256 `{meta['model_sha256']}` ({meta['model_source']}), knowledge base `{meta['knowledge_sha256'][:16]}…`, "
        f"at commit `{commit}`."
    )
    out.append(">")
    out.append(f"> **{meta['disclaimer']}** All patients are synthetic, drawn from a model of one review's tables.")
    out.append("")
    if meta["quick"]:
        out.append(
            "*This is a `--quick` report: small cohorts and a small model, to check that the pipeline works. Its figures are "
            "not the reference; the full report is produced without `--quick`.*"
        )
        out.append("")
    out.append("## Headline")
    out.append("")
    (alo, ahi), (llo, lhi) = h["accuracy_gap_pp_ci"], h["log_loss_gap_ci"]
    rows = [
        ("accuracy on complete records: model / oracle", f"{num(h['model_accuracy'])} / {num(h['oracle_accuracy'])}"),
        ("gap to the oracle on complete records, accuracy (95% CI)", f"{h['accuracy_gap_pp']:.2f} pp [{alo:.2f}, {ahi:.2f}]"),
        ("log loss: model / oracle (nats)", f"{num(h['model_log_loss'])} / {num(h['oracle_log_loss'])}"),
        ("gap to the oracle on complete records, log loss (95% CI)", f"{h['log_loss_gap']:.4f} nats [{llo:.4f}, {lhi:.4f}]"),
        ("gap to the oracle under the case-report regime (95% CI)",
         f"{h['case_report_accuracy_gap_pp']:.2f} pp [{h['case_report_accuracy_gap_pp_ci'][0]:.2f}, "
         f"{h['case_report_accuracy_gap_pp_ci'][1]:.2f}]; {h['case_report_log_loss_gap']:.4f} nats "
         f"[{h['case_report_log_loss_gap_ci'][0]:.4f}, {h['case_report_log_loss_gap_ci'][1]:.4f}]"),
        ("published case reports, top-1: model / oracle (model top-2)",
         f"{pct(h['published_top1_model'])} / {pct(h['published_top1_oracle'])} ({pct(h['published_top2_model'])})"),
        ("clue audit pass rate", pct(h["audit_pass_rate"])),
        ("SHAP vs oracle weight of evidence, median Spearman (random / permuted-label floors)",
         f"{num(h['shap_oracle_spearman_median'], 3)} ({num(h['shap_oracle_spearman_random_floor'], 3)} / "
         f"{num(h['shap_oracle_spearman_permuted_floor'], 3)})"),
        ("SHAP vs exact oracle Shapley values, median Spearman", num(h["shap_shapley_spearman_median"], 3)),
        ("the review's facts holding in the generated cohort", f"{h['facts_held']} of {h['facts_total']}"),
        ("generation", f"{h['generation_patients_per_second']:,.0f} patients/s ({h['generation_ratio_to_numpy']:.2f}× numpy uniforms)"),
        ("prediction", f"{h['predict_rows_per_second']:,.0f} rows/s; one patient: median {h['latency_median_ms']:.2f} ms, p95 {h['latency_p95_ms']:.2f} ms"),
        ("SHAP", f"{h['shap_rows_per_second_1_process']:,.0f} rows/s (1 process), {h['shap_rows_per_second_all_cores']:,.0f} rows/s (all cores)"),
        ("model artifact", f"{h['artifact_mb']:.2f} MB, loads in {1e3 * h['artifact_load_seconds']:.0f} ms"),
        ("peak memory; run time", f"{h['peak_memory_mb']:,.0f} MB; {h['total_seconds']:.0f} s"),
    ]
    out.append(table(["", ""], rows, ["l", "r"]))
    out.append("")
    out.append("Contents: " + " · ".join(f"[{t}](#{_anchor(t)})" for t in SECTION_TITLES))
    out.append("")
    renderers = dict(SECTIONS)
    for key, mod in SECTIONS:
        if key not in report:  # a report.json written before the section existed
            continue
        if key == "fidelity":
            out.append(mod.markdown(report[key], top=report["environment"]["settings"].get("fidelity_top", 25)))
        else:
            out.append(renderers[key].markdown(report[key]))
    return "\n".join(out).rstrip("\n") + "\n"


def _anchor(title: str) -> str:
    import re

    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")
