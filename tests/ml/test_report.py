"""The benchmark report (ml.report, ``pulmocalc benchmark``).

One ``pulmocalc benchmark --quick`` run on a small model, then checks on what it wrote: every
section and figure present, report.json complete and consistent with report.md, the figures
valid PNGs. And the committed full report under reports/latest must belong to the shipped
model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from _pty import run_with_terminal_stderr
from data_gen import generate_cohort, load_knowledge
from ml import train
from ml.report import HEADLINE_KEYS, SECTION_TITLES
from ml.report.retrain import noisy_labels
from ml.report.robustness import missing_conditions, shifted_mix

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MODEL = ROOT / "models" / "pulmocalc-default.joblib"
SHIPPED_HASHES = SHIPPED_MODEL.with_name(SHIPPED_MODEL.name + ".sha256")
COMMITTED_REPORT = ROOT / "reports" / "latest" / "report.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECTION_KEYS = ("fidelity", "performance", "explanations", "robustness", "realworld", "timings", "model_card", "environment")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    with threadpool_limits(limits=1, user_api="openmp"):
        model = train(generate_cohort(8_000, random_state=3), random_state=0, max_iter=40)
    return model.save(tmp_path_factory.mktemp("model") / "small.joblib")


@pytest.fixture(scope="module")
def quick_run(small_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "quick"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # stderr on a terminal, as a person running it sees it: the progress bar must show there
    status, stdout, terminal = run_with_terminal_stderr(
        [sys.executable, "-m", "ml.cli", "benchmark", "--quick", "--model", str(small_model), "--out", str(out)],
        cwd=ROOT, env=env, timeout=900,
    )
    assert status == 0, f"stdout:\n{stdout}\nterminal:\n{terminal[-5000:]}"
    return out, subprocess.CompletedProcess([], status, stdout, terminal)


@pytest.fixture(scope="module")
def report(quick_run):
    return json.loads((quick_run[0] / "report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def markdown(quick_run):
    return (quick_run[0] / "report.md").read_text(encoding="utf-8")


# ---- the quick run -------------------------------------------------------------------------
def test_progress_bar_on_a_terminal_and_a_header_on_stdout(quick_run, small_model):
    _, proc = quick_run
    # tqdm redraws one line with carriage returns: sections done of the total, with an ETA
    frames = [f for f in re.split(r"[\r\n]+", proc.stderr) if f.startswith("benchmark:")]
    assert len(frames) >= 5, proc.stderr[-2000:]
    totals = {int(m.group(2)) for f in frames if (m := re.search(r"\| (\d+)/(\d+) ", f))}
    assert len(totals) == 1 and totals.pop() >= 8, frames[-3:]
    assert any(re.search(r"<\d\d:\d\d", f) for f in frames), frames[-3:]  # the ETA
    assert re.search(r"\| (\d+)/\1 ", frames[-1]), frames[-1]  # it ends complete
    # stdout carries the summary only, starting with the header line
    lines = proc.stdout.splitlines()
    model_sha = hashlib.sha256(Path(small_model).read_bytes()).hexdigest()[:12]
    assert lines[0].startswith("pulmocalc benchmark · knowledge base ") and f"(sha256 {model_sha})" in lines[0], lines[0]
    assert "wrote" in proc.stdout and "report.md" in proc.stdout and "benchmark:" not in proc.stdout


def test_every_section_heading_is_present(markdown):
    assert markdown.startswith("# pulmocalc benchmark report")
    headings = re.findall(r"^## (.+)$", markdown, flags=re.M)
    assert headings[0] == "Headline"
    assert headings[1:] == list(SECTION_TITLES)
    for sub in ("### The review's stated facts", "### Per-class recall", "### Learning curve", "### Clue audit",
                "### SHAP vs the oracle's ground truth", "### Per-class SHAP plots", "### The review's three cases",
                "### (a) Prevalence shift", "### (b) Missing data", "### (c) Label noise in training",
                "### Intended use", "### Training data", "### Limitations and caveats"):
        assert sub in markdown, sub


def test_the_top_says_generated_by_which_command_model_and_commit(markdown, report, small_model):
    head = markdown.split("## Headline")[0]
    assert "Generated file" in head
    assert "pulmocalc benchmark --quick --model" in head
    assert _sha256(small_model) in head
    assert report["meta"]["commit"] in head
    assert "not a clinical device" in head
    assert "--quick" in head


def test_report_json_has_the_headline_and_every_section(report, small_model):
    assert set(SECTION_KEYS) <= set(report)
    h = report["headline"]
    for key in HEADLINE_KEYS:
        assert key in h, key
    assert h["model_sha256"] == _sha256(small_model) == report["meta"]["model_sha256"]
    assert h["quick"] is True and report["meta"]["mode"] == "quick"
    assert 0.5 < h["model_accuracy"] <= 1 and 0.5 < h["oracle_accuracy"] <= 1
    assert h["accuracy_gap_pp_ci"][0] <= h["accuracy_gap_pp"] <= h["accuracy_gap_pp_ci"][1]
    assert 0 <= h["audit_pass_rate"] <= 1
    assert h["facts_held"] == h["facts_total"] >= 15
    assert h["shap_oracle_spearman_median"] > h["shap_oracle_spearman_random_floor"] + 0.3
    for key in ("generation_patients_per_second", "predict_rows_per_second", "shap_rows_per_second_1_process",
                "shap_rows_per_second_all_cores", "artifact_mb", "peak_memory_mb", "latency_median_ms"):
        assert h[key] > 0, key


def test_sections_hold_what_the_issue_asks_for(report, kb):
    fid = report["fidelity"]
    assert len(fid["table"]) == fid["n_rows"] > 100  # every (class, column, level), not only the top 25
    z = [abs(r["z"]) for r in fid["table"] if r["z"] is not None]
    assert z == sorted(z, reverse=True)
    perf = report["performance"]
    assert [r["predictor"] for r in perf["table"]] == ["model", "oracle", "majority", "logistic", "rules"]
    lc = perf["learning_curve"]
    assert len(lc["seeds"]) >= 3 and len(lc["sizes"]) >= 2
    # per-seed rows in the JSON, one summary row (mean ± sd over the seeds) per size
    assert [(r["n_train"], r["seed"]) for r in lc["rows"]] == [(n, k) for n in lc["sizes"] for k in lc["seeds"]]
    assert [r["n_train"] for r in lc["summary"]] == lc["sizes"]
    for r in lc["summary"]:
        acc = [x["model_accuracy"] for x in lc["rows"] if x["n_train"] == r["n_train"]]
        assert r["n_seeds"] == len(lc["seeds"]) and r["model_accuracy_mean"] == pytest.approx(np.mean(acc))
        assert r["model_accuracy_sd"] == pytest.approx(np.std(acc, ddof=1)) and r["model_accuracy_sd"] > 0
    ex = report["explanations"]
    assert len(ex["audit"]["table"]) >= 40
    assert {r["calcification_type"] for r in ex["audit"]["summary"]} == set(kb.class_names) | {"overall"}
    n_failed = sum(1 for r in ex["audit"]["table"] if r["passed"] is False)
    assert len(ex["audit"]["failures"]) == n_failed
    assert all(f["reason"] for f in ex["audit"]["failures"])
    for floor in ("random", "permuted_labels"):
        assert abs(ex["agreement"][floor]["spearman_median"]) < 0.3, floor
    assert ex["strict"]["residual_share_shapley"] < 1e-6
    assert [c["true_class"] for c in ex["cases"]] == ["metastatic", "dpo_dendriform", "dpo_nodular"]
    for c in ex["cases"]:
        assert len(c["top5_toward_true_class"]) == 5
        assert set(c["implications_true_class"]) >= {"prognosis", "treatment", "screening", "diagnostic_value"}
    lb = pd.DataFrame(report["leaderboard"]["rows"])
    assert len(lb) and set(lb.model) == {"booster"} and (lb.n_patients == report["leaderboard"]["patients"]).all()
    assert {"treeshap_path", "kernelshap", "lime", "occlusion", "random", "permuted_label"} <= set(lb.explainer)
    assert {"model", "oracle_shapley", "weight_of_evidence"} <= set(lb.ground_truth.dropna())
    rho = lb[(lb.ground_truth == "oracle_shapley") & (lb.metric == "spearman")].set_index("explainer")
    assert rho.loc["treeshap_path", "value"] > rho.loc["random", "value"] + 4 * rho.loc["random", "se"]
    rob = report["robustness"]
    assert {r["setting"] for r in rob["prevalence"]} == {"general radiology", "dialysis clinic", "genetics clinic"}
    assert len(rob["prevalence"]) == 9
    dialysis = next(r for r in rob["prevalence"] if r["setting"] == "dialysis clinic")
    assert dialysis["prevalence"]["metastatic"] == pytest.approx(0.6)
    assert {r["condition"] for r in rob["missing"]["rows"]} >= {"labs, bone scan and SLC34A2 missing", "history missing"}
    assert [r["noise"] for r in rob["label_noise"]["rows"]] == [0.0, 0.05, 0.15]
    card = report["model_card"]
    rationales = [a["rationale"] for a in card["training_data"]["assumptions"]]
    assert len(rationales) == len(set(rationales)) > 10
    assert card["training_data"]["knowledge_sha256"] == kb.sha256
    env = report["environment"]
    for pkg in ("python", "numpy", "pandas", "scikit-learn", "shap", "joblib", "matplotlib"):
        assert env["versions"][pkg], pkg
    assert env["git"]["commit"]
    assert env["machine"]["cores"] >= 1


def _assert_png(path: Path):
    import matplotlib.image as mpimg

    assert path.exists(), path
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300, (path, img.shape)
    assert img[..., :3].std() > 0.05, f"{path} looks blank"


def test_every_figure_is_a_valid_png_and_all_expected_figures_exist(quick_run, report, markdown, kb):
    out = quick_run[0]
    listed = [f["path"] for f in report["figures"]]
    assert len(listed) == len(set(listed))
    expected = {"figures/confusion_model.png", "figures/confusion_oracle.png", "figures/reliability.png",
                "figures/learning_curve.png", "figures/audit_heatmap.png", "figures/gap_by_recording.png"}
    expected |= {f"figures/shap_beeswarm_{k}.png" for k in kb.class_names}
    expected |= {f"figures/case_{c}_waterfall.png" for c in ("case1_mpc", "case2_dendriform_dpo", "case3_nodular_dpo")}
    assert expected <= set(listed)
    on_disk = {p.relative_to(out).as_posix() for p in (out / "figures").glob("*.png")}
    assert on_disk == set(listed)
    for rel in listed:
        _assert_png(out / rel)
    in_markdown = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown))
    assert in_markdown == set(listed)
    for f in report["figures"]:
        assert f["caption"] and f["section"] in SECTION_KEYS


def test_markdown_figures_come_from_the_json(report, markdown):
    """Spot checks that the Markdown prints the JSON's numbers."""
    h = report["headline"]
    assert f"{h['model_accuracy']:.4f} / {h['oracle_accuracy']:.4f}" in markdown
    assert f"{h['accuracy_gap_pp']:.2f} pp" in markdown
    assert f"{100 * h['audit_pass_rate']:.1f}%" in markdown
    # the learning-curve table: mean ± sd over the seeds, per size
    first = report["performance"]["learning_curve"]["summary"][0]
    assert f"{first['model_accuracy_mean']:.4f} ± {first['model_accuracy_sd']:.4f}" in markdown
    assert f"{h['shap_oracle_spearman_median']:.3f}" in markdown
    for r in report["performance"]["table"]:
        assert f"| {r['predictor']} | {r['accuracy']:.4f} | {r['balanced_accuracy']:.4f} |" in markdown
    for f in report["fidelity"]["facts"]:
        assert f["fact"] in markdown
    for fail in report["explanations"]["audit"]["failures"]:
        assert f"| {fail['calcification_type']} | {fail['column']} |" in markdown
    for a in report["model_card"]["training_data"]["assumptions"][:20]:
        assert " ".join(a["rationale"].replace("|", "\\|").split()) in markdown


# ---- pieces --------------------------------------------------------------------------------
def test_shifted_mixes_keep_the_other_classes_in_proportion(kb):
    mix = shifted_mix(kb, ("metastatic", 0.6))
    assert sum(mix.values()) == pytest.approx(1.0)
    assert mix["metastatic"] == pytest.approx(0.6)
    others = [k for k in kb.class_names if k != "metastatic"]
    ratios = [mix[k] / kb.prevalence[k] for k in others]
    assert max(ratios) == pytest.approx(min(ratios))
    assert shifted_mix(kb, None) == kb.prevalence


def test_noisy_labels_flip_the_asked_share_to_another_class(kb):
    rng = np.random.default_rng(0)
    labels = np.array(list(kb.class_names) * 4000, dtype=object)
    noisy, flipped = noisy_labels(labels, list(kb.class_names), 0.15, rng)
    changed = noisy != labels
    assert changed.sum() == flipped
    assert abs(changed.mean() - 0.15) < 0.01
    # uniformly random other class: each of the 4 others about equally often
    pairs = {}
    for a, b in zip(labels[changed], noisy[changed]):
        pairs[(a, b)] = pairs.get((a, b), 0) + 1
    assert len(pairs) == 20
    assert max(pairs.values()) / min(pairs.values()) < 1.5


def test_missing_conditions_mask_the_named_groups(kb):
    conds = {name: cols for name, cols, _ in missing_conditions(kb)}
    labs = {c for c, s in kb.columns.items() if s.group == "laboratory"}
    assert set(conds["labs, bone scan and SLC34A2 missing"]) == labs | {"bone_scan_lung_uptake", "slc34a2_variant"}
    assert set(conds["history missing"]) == {c for c, s in kb.columns.items() if s.group == "history"}
    assert all(kb.columns[c].group == "imaging" for c in kb.column_names if c not in conds["imaging alone"])


def test_benchmark_refuses_a_missing_model_file(tmp_path, capsys):
    from ml.cli import main

    status = main(["benchmark", "--quick", "--model", str(tmp_path / "nope.joblib"), "--out", str(tmp_path / "r")])
    assert status == 2
    assert "no such file" in capsys.readouterr().err


# ---- the committed full report ---------------------------------------------------------------
def test_committed_report_belongs_to_the_shipped_model():
    """reports/latest/report.json must be the full report of the shipped model.

    Skipped only while no shipped model exists. Once models/pulmocalc-default.joblib is there,
    a missing report fails, and so does a report of another model: regenerate it with
    ``pulmocalc benchmark --out reports/latest`` and commit it.
    """
    if not SHIPPED_MODEL.exists() or not SHIPPED_HASHES.exists():
        pytest.skip("no shipped model in models/ yet")
    shipped = SHIPPED_HASHES.read_text().split()[0]
    regenerate = "run `pulmocalc benchmark --out reports/latest` (the full run, about 15 minutes) and commit reports/latest"
    assert COMMITTED_REPORT.exists(), f"the shipped model exists but {COMMITTED_REPORT.relative_to(ROOT)} does not; {regenerate}"
    report = json.loads(COMMITTED_REPORT.read_text(encoding="utf-8"))
    recorded = report.get("meta", {}).get("model_sha256")
    assert recorded == shipped, (
        f"{COMMITTED_REPORT.relative_to(ROOT)} was written for model {str(recorded)[:12]}, but the shipped model is "
        f"{shipped[:12]}; {regenerate}"
    )
    assert report["meta"]["quick"] is False, f"the committed report is a --quick run; {regenerate}"
    assert report["meta"]["knowledge_sha256"] == load_knowledge().sha256, f"the knowledge base changed since the report; {regenerate}"
    md = COMMITTED_REPORT.with_name("report.md")
    assert md.exists() and shipped in md.read_text(encoding="utf-8"), f"report.md is missing or stale; {regenerate}"
    for f in report["figures"]:
        assert (COMMITTED_REPORT.parent / f["path"]).exists(), f"figure {f['path']} is missing; {regenerate}"


def test_the_report_directory_does_not_make_the_tree_dirty(tmp_path):
    import shutil
    import subprocess

    from ml.report.environment import git_commit

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, capture_output=True, text=True, check=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.md").write_text("old\n")
    run("add", ".")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
    (tmp_path / "out" / "report.md").write_text("new\n")  # what a benchmark run does to its own output
    assert git_commit(tmp_path, exclude=tmp_path / "out")["dirty"] is False
    assert git_commit(tmp_path)["dirty"] is True
    (tmp_path / "code.py").write_text("x = 2\n")  # a change to the code still counts
    assert git_commit(tmp_path, exclude=tmp_path / "out")["dirty"] is True


def test_the_leaderboard_section_renders_partial_and_old_inputs(report):
    from ml.report import leaderboard, render_markdown

    assert "Not run in this report." in leaderboard.markdown({})
    rows = report["leaderboard"]["rows"]
    old = [{k: v for k, v in r.items() if k not in ("shuffled", "adjusted", "adjusted_se")} for r in rows]
    assert "3b. Which explainer" in leaderboard.markdown({**report["leaderboard"], "rows": old})
    with pytest.raises(ValueError, match="give every model its own name"):
        leaderboard.markdown({**report["leaderboard"], "rows": rows + rows})
    # a report.json written before section 3b existed still renders, without it
    older = {k: v for k, v in report.items() if k != "leaderboard"}
    md = render_markdown(older)
    assert "## 3b." not in md and "## 4. Robustness" in md
