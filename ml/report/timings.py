"""Section 5, timings and sizes: generation, training, prediction, SHAP, the artifact, memory.

Timings are wall-clock seconds measured in the report's own process on whatever else the
machine is doing (its load average is recorded); they are the only figures of the report that
change from run to run.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._common import Context, count, jsonable, table

TITLE = "6. Timings and sizes"


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_memory_mb() -> dict:
    """Peak resident set size of this process and of its finished children (MB)."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 1e6
    return {"self_mb": own, "largest_child_mb": children}


def _generation(ctx: Context) -> dict:
    from data_gen import generate_cohort

    s = ctx.settings
    kb = ctx.knowledge
    n = s.generation_n
    n_columns = len(kb.column_names)
    ctx.say(f"timings: generating {n:,} patients (best of {s.generation_repeat}) against numpy's uniforms")
    generate_cohort(1_000, random_state=0, knowledge=kb)  # warm-up
    gen, ref = [], []
    for _ in range(s.generation_repeat):
        t0 = time.perf_counter()
        df = generate_cohort(n, random_state=0, knowledge=kb)
        gen.append(time.perf_counter() - t0)
        del df
        t0 = time.perf_counter()
        u = np.random.default_rng(0).random((n, n_columns))
        ref.append(time.perf_counter() - t0)
        del u
    g, r = min(gen), min(ref)
    return {
        "n": n,
        "repeat": s.generation_repeat,
        "seconds": g,
        "patients_per_second": n / g,
        "numpy_reference": f"numpy.random.default_rng(0).random(({n}, {n_columns}))",
        "numpy_seconds": r,
        "ratio_to_numpy": g / r,
        "all_seconds": gen,
        "all_numpy_seconds": ref,
    }


def _artifact(ctx: Context) -> dict:
    from ml import load_model

    info = ctx.model_info
    path = info.get("path")
    tmp = None
    if path is None:  # a model trained in this run: save it to measure it
        tmp = tempfile.TemporaryDirectory(prefix="pulmocalc-report-")
        path = ctx.model.save(Path(tmp.name) / "model.joblib")
    knowledge = info.get("knowledge_arg")
    try:
        p = Path(path)
        size = p.stat().st_size
        meta = p.with_suffix(".json").stat().st_size
        load = _best(lambda: load_model(p, knowledge=knowledge), 3)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return {
        "file": "saved to a temporary directory for this measurement" if info.get("path") is None else str(info.get("path")),
        "size_mb": size / 1e6,
        "metadata_kb": meta / 1e3,
        "load_seconds": load,
        "load_note": "load_model: SHA-256 of the files verified, metadata checked, then unpickled (best of 3)",
        "n_trees": int(ctx.model.n_trees),
        "n_iter": int(ctx.model.booster.n_iter_),
        "max_leaf_nodes": ctx.model.booster.max_leaf_nodes,
    }


def run(ctx: Context) -> dict:
    from ml import explain

    s = ctx.settings
    model = ctx.model
    cohort = ctx.shared["eval_cohort"]
    x = cohort.drop(columns=["calcification_type"])
    cores = os.cpu_count() or 1

    generation = _generation(ctx)

    from threadpoolctl import threadpool_limits

    xp = x.iloc[: s.predict_n]
    ctx.say(f"timings: predicting {len(xp):,} patients with 1 thread and with {cores}")
    model.predict_proba(xp.iloc[:100])
    pred = _best(lambda: model.predict_proba(xp), 2)
    with threadpool_limits(limits=cores, user_api="openmp"):
        model.predict_proba(xp.iloc[:100])
        pred_all = _best(lambda: model.predict_proba(xp), 2)
    one = x.iloc[[0]]
    for _ in range(5):
        model.predict_proba(one)
    lat = []
    for _ in range(s.latency_calls):
        t0 = time.perf_counter()
        model.predict_proba(one)
        lat.append(time.perf_counter() - t0)
    lat_ms = np.array(lat) * 1e3

    patients = x.iloc[: s.shap_n]
    ctx.say(f"timings: SHAP on {len(patients):,} patients with 1 process and with {cores}")
    from ml.treeshap import _CHUNK

    t0 = time.perf_counter()
    explain(model, patients.iloc[:200], n_jobs=1)  # builds the TreeExplainer once
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    if cores > 1:  # start the worker processes (joblib keeps them for the timed calls)
        explain(model, patients.iloc[: _CHUNK + 1], n_jobs=cores)
    pool_start = time.perf_counter() - t0
    repeat = 1 if ctx.quick else 2
    t_one = _best(lambda: explain(model, patients, n_jobs=1), repeat)
    t_all = _best(lambda: explain(model, patients, n_jobs=cores), repeat)

    meta = ctx.model_info.get("training", {})
    noise_seconds = ctx.shared.get("noise_train_seconds", [])
    ctx.say("timings: artifact size and load time")
    artifact = _artifact(ctx)
    return jsonable(
        {
            "cores": cores,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "generation": generation,
            "training": {
                "model_train_seconds": meta.get("train_seconds"),
                "model_train_n": meta.get("train_n"),
                "model_n_iter": meta.get("n_iter"),
                "noisy_retrain_seconds": noise_seconds,
                "training_step_wall_seconds": ctx.shared.get("training_wall_seconds"),
            },
            "predict": {"n": len(xp), "seconds": pred, "rows_per_second": len(xp) / pred, "threads": cores,
                        "all_threads_seconds": pred_all, "all_threads_rows_per_second": len(xp) / pred_all},
            "latency": {
                "calls": s.latency_calls,
                "median_ms": float(np.median(lat_ms)),
                "p95_ms": float(np.percentile(lat_ms, 95)),
                "max_ms": float(lat_ms.max()),
            },
            "shap": {
                "n": len(patients),
                "setup_seconds": setup,
                "pool_start_seconds": pool_start,
                "repeat": repeat,
                "one_process_seconds": t_one,
                "one_process_rows_per_second": len(patients) / t_one,
                "processes": cores,
                "all_cores_seconds": t_all,
                "all_cores_rows_per_second": len(patients) / t_all,
            },
            "artifact": artifact,
        }
    )


def markdown(d: dict) -> str:
    out = [f"## {TITLE}", ""]
    la = d.get("load_average")
    load = f"; load average at the time {la[0]:.2f}" if la else ""
    out.append(
        f"Wall-clock times in this run on {d['cores']} core(s){load}. The report computes with one thread per process and "
        "runs parallel work (training, SHAP) in worker processes. Timings on a shared machine are noisy; every other figure "
        "of the report is reproducible."
    )
    out.append("")
    g, p, lat, sh, a, tr = d["generation"], d["predict"], d["latency"], d["shap"], d["artifact"], d["training"]
    rows = [
        (f"generate_cohort({g['n']:,}), best of {g['repeat']}", f"{g['seconds']:.3f} s", f"{g['patients_per_second']:,.0f} patients/s"),
        (f"numpy reference: {g['numpy_reference']}", f"{g['numpy_seconds']:.3f} s", f"generation / reference = {g['ratio_to_numpy']:.2f}"),
    ]
    if tr.get("model_train_seconds") is not None:
        rows.append((f"training the evaluated model ({count(tr['model_train_n'])} patients, {count(tr['model_n_iter'])} iterations; from its metadata)",
                     f"{tr['model_train_seconds']:.1f} s", ""))
    for i, sec in enumerate(tr.get("noisy_retrain_seconds") or []):
        rows.append((f"training run {i + 1} of the label-noise section (1 thread)", f"{sec:.1f} s", ""))
    if tr.get("training_step_wall_seconds") is not None:
        rows.append(("learning curve and label-noise training, wall time (worker processes)", f"{tr['training_step_wall_seconds']:.1f} s", ""))
    rows += [
        (f"predict_proba on {p['n']:,} patients, 1 thread, best of 2", f"{p['seconds']:.3f} s", f"{p['rows_per_second']:,.0f} rows/s"),
        (f"predict_proba on {p['n']:,} patients, {p['threads']} OpenMP threads, best of 2", f"{p['all_threads_seconds']:.3f} s",
         f"{p['all_threads_rows_per_second']:,.0f} rows/s"),
        (f"single-patient predict_proba, {lat['calls']} calls", f"median {lat['median_ms']:.2f} ms", f"p95 {lat['p95_ms']:.2f} ms"),
        ("SHAP TreeExplainer set-up and 200-patient warm-up", f"{sh['setup_seconds']:.2f} s", ""),
        (f"starting {sh['processes']} SHAP worker processes (once per run, not in the rates below)", f"{sh['pool_start_seconds']:.2f} s", ""),
        (f"SHAP (ml.explain) on {sh['n']:,} patients, 1 process, best of {sh['repeat']}", f"{sh['one_process_seconds']:.2f} s",
         f"{sh['one_process_rows_per_second']:,.0f} rows/s"),
        (f"SHAP on {sh['n']:,} patients, {sh['processes']} processes, best of {sh['repeat']}", f"{sh['all_cores_seconds']:.2f} s",
         f"{sh['all_cores_rows_per_second']:,.0f} rows/s"),
        (f"model artifact ({a['n_trees']} trees, {a['n_iter']} iterations, max {a['max_leaf_nodes']} leaves)", f"{a['size_mb']:.2f} MB",
         f"metadata {a['metadata_kb']:.1f} kB"),
        ("artifact load time (hash check + unpickle), best of 3", f"{a['load_seconds'] * 1e3:.0f} ms", ""),
    ]
    mem = d.get("peak_memory")
    if mem:
        rows.append(("peak memory of the report process (ru_maxrss; includes the generation benchmark's cohort and its "
                     "numpy reference array)", f"{mem['self_mb']:,.0f} MB", f"largest child process {mem['largest_child_mb']:,.0f} MB"))
    out.append(table(["measure", "time / size", "rate"], rows, ["l", "r", "r"]))
    out.append("")
    secs = d.get("sections")
    if secs:
        out.append("Wall time of each section of this report: " + ", ".join(f"{k} {v:.1f} s" for k, v in secs.items())
                   + f"; total {d.get('total_seconds', sum(secs.values())):.1f} s.")
        out.append("")
    return "\n".join(out)
