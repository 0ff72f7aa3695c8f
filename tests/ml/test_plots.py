"""Figures (ml.plots): every function writes a readable PNG and returns its path."""

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import ml.plots as plots
from data_gen import generate_cohort, paper_cases
from ml import classification_metrics, explain, train

MIN_BYTES = 10_000


@pytest.fixture(scope="module")
def model():
    with threadpool_limits(limits=1, user_api="openmp"):
        return train(generate_cohort(30_000, random_state=1), max_iter=150)


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(1_500, random_state=7)


def assert_png(path, min_bytes=MIN_BYTES):
    import matplotlib.image as mpimg

    assert path.exists(), path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > min_bytes, f"{path} is only {path.stat().st_size} bytes"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
    assert img[..., :3].std() > 0.05  # not a blank canvas


def no_open_figures():
    import matplotlib.pyplot as plt

    return plt.get_fignums() == []


def test_waterfall_per_paper_case(model, tmp_path):
    cases = paper_cases()
    for i, case_id in enumerate(cases.index):
        out = plots.waterfall_png(model, cases.iloc[[i]], None, tmp_path / f"{case_id}.png")
        assert out == tmp_path / f"{case_id}.png"
        assert_png(out)
    assert no_open_figures()


def test_waterfall_from_an_explanation_row_and_a_series(model, tmp_path):
    cases = paper_cases()
    ex = explain(model, cases)
    a = plots.waterfall_png(model, ex[1], "dpo_dendriform", tmp_path / "row.png", max_display=6)
    b = plots.waterfall_png(model, cases.iloc[2], "pam", tmp_path / "series.png", prevalence={"pam": 0.5, "dpo_nodular": 0.5})
    assert_png(a)
    assert_png(b)
    with pytest.raises(ValueError, match="unknown class"):
        plots.waterfall_png(model, ex[0], "silicosis", tmp_path / "x.png")
    with pytest.raises(ValueError, match="one patient"):
        plots.waterfall_png(model, cases, None, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("kind", ["beeswarm", "bar"])
def test_class_summaries(model, cohort, tmp_path, kind):
    classes = None if kind == "beeswarm" else ["pam", "metastatic"]
    paths = plots.class_summary_pngs(model, cohort, tmp_path / kind, kind=kind, max_display=8, classes=classes)
    want = list(model.classes_) if classes is None else classes
    assert [p.name for p in paths] == [f"shap_{kind}_{k}.png" for k in want]
    for p in paths:
        assert_png(p)
    assert no_open_figures()


def test_class_summaries_refuse_an_unknown_kind(model, cohort, tmp_path):
    with pytest.raises(ValueError, match="beeswarm"):
        plots.class_summary_pngs(model, cohort, tmp_path, kind="violin")


def audit_table():
    return pd.DataFrame(
        {
            "calcification_type": ["metastatic", "metastatic", "pam", "pam", "dystrophic", "dpo_nodular", "dpo_dendriform"],
            "column": ["chronic_kidney_disease", "tree_in_bud", "age_years", "micronodules", "lesion_size_mm", "zone", "branching_calcification"],
            "role": ["cause", "unusual", "usual", "usual", "usual", "usual", "usual"],
            "expected": ["toward", "away", "toward", "toward", "toward", "toward", "toward"],
            "passed": pd.array([True, False, True, pd.NA, True, False, True], dtype="boolean"),
            "observed_effect": [1.2, 0.3, -0.5, np.nan, 0.4, -0.2, 2.0],
        }
    )


def test_audit_heatmap(tmp_path):
    out = plots.audit_heatmap_png(audit_table(), tmp_path / "audit.png")
    assert_png(out)

    class Audit:  # an object with .table, like ml.audit.ClueAudit
        table = audit_table()

    assert_png(plots.audit_heatmap_png(Audit(), tmp_path / "audit2.png"))
    assert no_open_figures()


def test_audit_observed_direction():
    # decided clues read as expected when passed, opposite when failed; undecided by the sign
    assert plots._observed_direction("toward", True, -0.5) == 1.0
    assert plots._observed_direction("away", False, -0.5) == 1.0
    assert plots._observed_direction("away", True, 0.5) == -1.0
    assert plots._observed_direction("toward", None, -0.3) == -1.0
    assert np.isnan(plots._observed_direction("toward", None, float("nan")))


def test_audit_heatmap_checks_its_table(tmp_path):
    with pytest.raises(ValueError, match="lacks columns"):
        plots.audit_heatmap_png(audit_table().drop(columns=["expected"]), tmp_path / "a.png")
    bad = audit_table().assign(expected="up")
    with pytest.raises(ValueError, match="toward"):
        plots.audit_heatmap_png(bad, tmp_path / "a.png")


def test_evaluation_figures(model, cohort, tmp_path):
    y = cohort["calcification_type"]
    m = classification_metrics(y, model.predict_proba(cohort), model.classes_)
    uniform = classification_metrics(y, np.full((len(y), 5), 0.2), model.classes_)
    assert_png(plots.reliability_png({"classifier": m, "uniform": uniform["reliability"]}, tmp_path / "rel.png"))
    assert_png(plots.confusion_png(m["confusion_matrix"], model.classes_, tmp_path / "conf.png"))
    frame = pd.DataFrame(
        {
            "n_train": [1_000, 3_000, 10_000],
            "model_accuracy": [0.80, 0.85, 0.88],
            "oracle_accuracy": [0.90] * 3,
            "model_log_loss": [0.60, 0.45, 0.35],
            "oracle_log_loss": [0.28] * 3,
        }
    )
    assert_png(plots.learning_curve_png(frame, tmp_path / "lc.png"))
    assert_png(plots.learning_curve_png(frame.rename(columns={"n_train": "n"}), tmp_path / "lc2.png"))
    with pytest.raises(ValueError, match="lacks columns"):
        plots.learning_curve_png(frame.drop(columns=["oracle_log_loss"]), tmp_path / "lc3.png")
    with pytest.raises(ValueError, match="matrix must be"):
        plots.confusion_png([[1, 2], [3, 4]], model.classes_, tmp_path / "c.png")
    assert no_open_figures()
