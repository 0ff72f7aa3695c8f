"""ml.cli.xai and ml.report.xai: ``pulmocalc xai-bench --quick`` end to end (about a minute), bad input."""

import argparse

import pytest

from ml.report.xai import leaderboard_markdown, read_leaderboard
from ml.cli.xai import add_arguments, run


def _args(*argv):
    p = argparse.ArgumentParser(prog="pulmocalc xai-bench")
    add_arguments(p)
    return p.parse_args(list(argv))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("xai")
    assert run(_args("--quick", "--out", str(out))) == 0
    return out


def test_quick_run_writes_the_leaderboard_for_three_models(quick, capsys):
    lb = read_leaderboard(quick / "leaderboard.csv")
    assert list(dict.fromkeys(lb.model)) == ["booster", "logistic_regression", "random_forest"]
    booster = set(lb.loc[lb.model == "booster", "explainer"])
    assert {"treeshap_path", "treeshap_interventional", "saabas", "kernelshap", "permutation", "lime", "occlusion",
            "random", "permuted_label"} == booster
    assert "exact_additive" in set(lb.loc[lb.model == "logistic_regression", "explainer"])
    assert "treeshap_path" not in set(lb.loc[lb.model == "logistic_regression", "explainer"])

    def rho(model, explainer):
        sel = lb[(lb.model == model) & (lb.explainer == explainer) & (lb.ground_truth == "oracle_shapley") & (lb.metric == "spearman")]
        return float(sel.value.iloc[0]), float(sel.se.iloc[0])

    v, se = rho("booster", "treeshap_path")
    r, rse = rho("booster", "random")
    assert v > 0.5 and abs(r) < 4 * rse  # a real explainer recovers the truth; the random floor does not
    assert (quick / "agreement_vs_cost.png").stat().st_size > 10_000
    scored = lb[lb.ground_truth != ""]
    assert scored[["shuffled", "class_shuffled", "adjusted"]].notna().all().all()
    # adjusted is measured beyond the larger of the two nulls, for the pooled floor too
    assert set(scored.loc[scored.budget.fillna("").str.startswith("mean of 2 null models"), "explainer"]) == {"permuted_label"}
    zero = scored[["shuffled", "class_shuffled"]].max(axis=1)
    assert ((scored.adjusted - (scored.value - zero) / (1 - zero)).abs() < 1e-4).all()


def test_markdown_renders_the_same_from_the_saved_csv(quick):
    md = (quick / "leaderboard.md").read_text(encoding="utf-8")
    again = leaderboard_markdown(read_leaderboard(quick / "leaderboard.csv"), figure="agreement_vs_cost.png")
    assert "not a clinical device" in md and "Best recovery of the data-generating truth" in md
    assert "Why two nulls" in md and "class-shuffled null" in md
    # the run can be traced: the command and the libraries that computed it
    assert "- command: pulmocalc xai-bench --quick --seed 0" in md and "- libraries: shap " in md and "scikit-learn " in md
    # everything after the run's settings is rendered from the numbers alone
    assert md[md.index("## Findings"):] == again[again.index("## Findings"):]
    for model in ("booster", "logistic_regression", "random_forest"):
        assert f"## {model} (attributions of its" in md


@pytest.mark.parametrize(
    "argv,message",
    [
        (("--patients", "1"), "explain at least 2 patients"),
        (("--seed", "-3"), "non-negative"),
        (("--model", "/nonexistent/model.joblib"), "no such file"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, argv, message):
    with pytest.raises(ValueError, match=message):
        run(_args("--quick", "--out", str(tmp_path / "o"), *argv))


def test_out_must_be_a_directory_that_can_be_made_before_any_work(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file; give a directory"):
        run(_args("--quick", "--out", str(f)))
    # under a file: refused up front (it failed after the whole run), and nothing was printed yet
    with pytest.raises(ValueError, match="cannot create the directory"):
        run(_args("--quick", "--out", str(f / "sub")))
    with pytest.raises(ValueError, match="an empty path would write into the current directory"):
        run(_args("--quick", "--out", ""))
    assert capsys.readouterr().out == ""
