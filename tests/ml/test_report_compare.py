"""ml.report.compare: two reports side by side, on the committed report and a changed copy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml.report.compare import COMPARED_META, compare_reports

LATEST = Path(__file__).resolve().parents[2] / "reports" / "latest" / "report.json"


@pytest.fixture()
def changed(tmp_path):
    doc = json.loads(LATEST.read_text(encoding="utf-8"))
    h = doc["headline"]
    h["model_accuracy"] -= 0.01
    lo, hi = h["accuracy_gap_pp_ci"]
    h["accuracy_gap_pp"] += 5.0
    h["accuracy_gap_pp_ci"] = [lo + 5.0, hi + 5.0]  # far from the original interval
    doc["meta"]["knowledge_sha256"] = "f" * 64
    (tmp_path / "report.json").write_text(json.dumps(doc), encoding="utf-8")
    return tmp_path


def test_differences_and_ci_overlap(changed):
    table = compare_reports(LATEST.parent, changed)
    assert list(table.index[: len(COMPARED_META)]) == list(COMPARED_META)
    assert table.loc["knowledge_sha256", "difference"] == "differs"
    assert table.loc["model_accuracy", "difference"] == pytest.approx(-0.01, abs=1e-12)
    assert table.loc["accuracy_gap_pp", "difference"] == pytest.approx(5.0, abs=1e-12)
    assert table.loc["accuracy_gap_pp", "ci_overlap"] is False or table.loc["accuracy_gap_pp", "ci_overlap"] == False  # noqa: E712
    assert bool(table.loc["log_loss_gap", "ci_overlap"]) is True  # unchanged: its intervals coincide
    assert table.loc["log_loss_gap", "difference"] == 0


def test_cli_prints_short_hashes_and_refuses_a_non_report(changed, tmp_path):
    res = subprocess.run([sys.executable, "-m", "ml.cli", "compare", str(LATEST.parent), str(changed)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "ffffffffffff" in res.stdout and "f" * 13 not in res.stdout
    for i, broken in enumerate(({"headline": None, "meta": {}}, {"headline": {"a": 1}, "meta": "x"}, {"headline": {}, "meta": {}})):
        (tmp_path / f"b{i}.json").write_text(json.dumps(broken), encoding="utf-8")
        with pytest.raises(ValueError, match="not a pulmocalc benchmark report"):
            compare_reports(LATEST, tmp_path / f"b{i}.json")
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "ml.cli", "compare", str(LATEST), str(tmp_path / "x.json")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a pulmocalc benchmark report" in bad.stderr
