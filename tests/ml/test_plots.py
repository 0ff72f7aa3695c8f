"""Figures (ml.plots, ml.figures): every function writes a readable PNG and returns its path, and
the figures say what they should (the rows, colours, labels and titles are read back from the
drawn figure)."""

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import ml.figures as figures
import ml.plots as plots
from data_gen import generate_cohort, load_knowledge, paper_cases
from ml import classification_metrics, explain, train
from ml.wording import format_probability

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


@pytest.fixture
def drawn(monkeypatch):
    """The figures the functions save (still inspectable after pyplot closed them)."""
    saved = []
    real = plots._save

    def spy(fig, path, note=None):
        out = real(fig, path, note)  # draws, so tick labels are final
        saved.append(fig)
        return out

    monkeypatch.setattr(plots, "_save", spy)
    monkeypatch.setattr(figures, "_save", spy)
    return saved


def all_text(fig):
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text)]


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


def expected_p_label(p):
    pct = format_probability(float(p))
    return f"P {pct[0]} {pct[1:]}" if pct[0] in "<>" else f"P = {pct}"


def test_waterfall_puts_the_probability_beside_the_log_odds(model, cohort, tmp_path, drawn):
    proba = model.predict_proba(cohort)
    # a patient whose top class is far from both 0 and 1, so "P = xx.x%" is a real number
    i = int(np.argmin(np.abs(proba.max(axis=1).to_numpy() - 0.7)))
    top = str(proba.columns[int(np.argmax(proba.iloc[i].to_numpy()))])
    second = str(proba.iloc[i].drop(top).idxmax())
    for cls in (top, second):
        plots.waterfall_png(model, cohort.iloc[[i]], cls, tmp_path / f"{cls}.png")
        fx = sorted({t for t in all_text(drawn[-1]) if "log-odds \u2192" in t})  # findobj meets a tick label twice
        assert len(fx) == 1, all_text(drawn[-1])
        assert fx[0].startswith("$ = ") and fx[0].endswith(f"log-odds \u2192 {expected_p_label(proba.iloc[i][cls])}"), fx[0]
        assert "P = " in fx[0]
    # a near-certain patient: "P > 99.9%", never "100.0%"
    j = int(np.argmax(proba.max(axis=1).to_numpy()))
    plots.waterfall_png(model, cohort.iloc[[j]], None, tmp_path / "sure.png")
    text = " ".join(all_text(drawn[-1]))
    assert "P > 99.9%" in text and "100.0%" not in text


def summary_rows(fig):
    """(row label, PathCollection) top to bottom of a beeswarm figure."""
    ax = next(a for a in fig.axes if a.get_ylabel().startswith("column"))
    labels = [t.get_text() for t in ax.get_yticklabels()]  # bottom to top
    by_y = {int(round(np.median(c.get_offsets()[:, 1]))): c for c in ax.collections}
    return ax, [(labels[y], by_y[y]) for y in reversed(range(len(labels)))]


def test_beeswarm_shows_the_top_columns_only_and_colours_zone_by_level(model, cohort, tmp_path, drawn):
    kb = load_knowledge()
    zone = cohort["zone"]
    present = set(zone.dropna().astype(str))
    want_colours = len(present) + int(zone.isna().any())
    assert len(present) >= 2
    plots.class_summary_pngs(model, cohort, tmp_path, kind="beeswarm", max_display=12)
    assert len(drawn) == len(model.classes_)
    zone_rows = 0
    for fig in drawn:
        ax, rows = summary_rows(fig)
        labels = [label for label, _ in rows]
        assert len(rows) == 12 and len(set(labels)) == 12
        assert not any("other" in label.lower() for label in labels), labels
        assert "top 12 of 52 columns" in ax.get_title()
        # every patient is a dot on every row
        assert all(len(c.get_offsets()) == len(cohort) for _, c in rows)
        # the rows are ordered by mean |SHAP|, largest first
        spread = [np.abs(c.get_offsets()[:, 0]).mean() for _, c in rows]
        assert spread == sorted(spread, reverse=True)
        if "zone" in labels:
            zone_rows += 1
            coll = dict(rows)["zone"]
            colours = {tuple(np.round(c, 3)) for c in coll.get_facecolors()}
            assert len(colours) == want_colours
            legend = [t.get_text() for t in ax.get_legend().get_texts()]
            assert {f"zone: {lv}" for lv in kb.columns["zone"].levels} <= set(legend)
            assert any("not recorded" in t for t in legend)
        # binary and continuous columns keep a value scale with a colour bar
        assert any(a.get_ylabel().startswith("column value") for a in fig.axes)
    assert zone_rows >= 1  # zone moves at least one class's score enough to be shown


def test_bar_summary_has_no_sum_of_other_columns_row(model, cohort, tmp_path, drawn):
    plots.class_summary_pngs(model, cohort, tmp_path, kind="bar", max_display=6, classes=["pam"])
    ax = drawn[-1].axes[0]
    labels = list(dict.fromkeys(t.get_text() for t in ax.get_yticklabels() if t.get_text()))  # shap draws some twice
    assert len(labels) == 6 and not any("other" in t.lower() for t in labels), labels


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


def test_audit_heatmap(tmp_path, drawn):
    out = figures.audit_heatmap_png(audit_table(), tmp_path / "audit.png")
    assert_png(out)
    # 4 of the 6 decided clues passed: one decimal, as everywhere else in the report
    assert "4/6 passed (66.7%)" in drawn[-1].axes[0].get_title()

    class Audit:  # an object with .table, like ml.audit.ClueAudit
        table = audit_table()

    assert_png(figures.audit_heatmap_png(Audit(), tmp_path / "audit2.png"))
    assert no_open_figures()


def test_audit_observed_direction():
    # decided clues read as expected when passed, opposite when failed; undecided by the sign
    assert figures._observed_direction("toward", True, -0.5) == 1.0
    assert figures._observed_direction("away", False, -0.5) == 1.0
    assert figures._observed_direction("away", True, 0.5) == -1.0
    assert figures._observed_direction("toward", None, -0.3) == -1.0
    assert np.isnan(figures._observed_direction("toward", None, float("nan")))


def test_audit_heatmap_checks_its_table(tmp_path):
    with pytest.raises(ValueError, match="lacks columns"):
        figures.audit_heatmap_png(audit_table().drop(columns=["expected"]), tmp_path / "a.png")
    bad = audit_table().assign(expected="up")
    with pytest.raises(ValueError, match="toward"):
        figures.audit_heatmap_png(bad, tmp_path / "a.png")


def test_evaluation_figures(model, cohort, tmp_path, drawn):
    y = cohort["calcification_type"]
    m = classification_metrics(y, model.predict_proba(cohort), model.classes_)
    uniform = classification_metrics(y, np.full((len(y), 5), 0.2), model.classes_)
    assert_png(figures.reliability_png({"classifier": m, "uniform": uniform["reliability"]}, tmp_path / "rel.png"))
    assert_png(figures.confusion_png(m["confusion_matrix"], model.classes_, tmp_path / "conf.png"))
    frame = pd.DataFrame(
        {
            "n_train": [1_000, 3_000, 10_000],
            "model_accuracy": [0.80, 0.85, 0.88],
            "oracle_accuracy": [0.90] * 3,
            "model_log_loss": [0.60, 0.45, 0.35],
            "oracle_log_loss": [0.28] * 3,
        }
    )
    assert_png(figures.learning_curve_png(frame, tmp_path / "lc.png"))
    three = pd.concat([frame.assign(seed=k, model_accuracy=frame.model_accuracy + 0.01 * k) for k in (1, 2, 3)])
    assert_png(figures.learning_curve_png(three, tmp_path / "lc_seeds.png"))
    acc = drawn[-1].axes[0]
    legend = [t.get_text() for t in acc.get_legend().get_texts()]
    assert {"classifier: min\u2013max over 3 seeds", "classifier: mean of 3 seeds", "classifier: one seed",
            "oracle (Bayes optimum)"} <= set(legend)
    band = acc.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(100 * (0.80 + 0.01)) and band.max() == pytest.approx(100 * (0.88 + 0.03))
    mean = next(line for line in acc.get_lines() if line.get_label().startswith("classifier: mean"))
    assert mean.get_ydata() == pytest.approx(100 * (frame.model_accuracy + 0.02))
    assert len(acc.collections[1].get_offsets()) == len(three)  # every seed's point
    assert_png(figures.learning_curve_png(frame.rename(columns={"n_train": "n"}), tmp_path / "lc2.png"))
    with pytest.raises(ValueError, match="lacks columns"):
        figures.learning_curve_png(frame.drop(columns=["oracle_log_loss"]), tmp_path / "lc3.png")
    with pytest.raises(ValueError, match="matrix must be"):
        figures.confusion_png([[1, 2], [3, 4]], model.classes_, tmp_path / "c.png")
    assert no_open_figures()
