"""`pulmocalc explain` lists the top three next findings, the same as data_gen.next_best_findings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_gen import generate_cohort, next_best_findings
from ml.reasons import IMPOSSIBLE_NOTE, NEXT_RECORDING, PatientExplanation, explain_patients, render_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model(small_model):
    return small_model


@pytest.fixture(scope="module")
def sparse(kb):
    row = {c: np.nan for c in kb.column_names}
    row.update(age_years=60, sex="female", zone="lower", calcified_nodules=1, lesion_size_mm=3.0)
    return pd.DataFrame([row], index=pd.Index(["sparse"], name="patient"))


def test_explain_lists_the_api_top_three(model, sparse):
    (e,) = explain_patients(model, sparse)
    api = next_best_findings(sparse, recording=NEXT_RECORDING, top=3)
    assert [f.column for f in e.next_findings] == list(api["column"])
    assert [f.expected_information_gain_bits for f in e.next_findings] == pytest.approx(list(api["expected_information_gain_bits"]))
    assert e.next_findings[0].outcomes == ["present", "absent"] or len(e.next_findings[0].outcomes) >= 2
    text = render_text([e])
    assert "What to check next" in text
    for i, f in enumerate(e.next_findings, 1):
        assert f"  {i}. {f.text} ({f.expected_information_gain_bits:.3f} bits)" in text
    again = json.loads(json.dumps(e.to_dict()))
    assert PatientExplanation.from_dict(again) == e


def test_next_findings_zero_and_complete_records(model, sparse, kb):
    (e,) = explain_patients(model, sparse, next_findings=0)
    assert e.next_findings == [] and "What to check next" not in render_text([e])
    full = generate_cohort(1, random_state=3)[list(kb.column_names)]
    full = full.fillna({"pack_years": 0.0})
    (f,) = explain_patients(model, full, next_findings=3)
    # of the oracle's top 3 blanks, those that could move the differential (>= MIN_GAIN_BITS) are listed
    from data_gen import next_best_findings
    from ml.reasons import MIN_GAIN_BITS

    ranked = next_best_findings(full, recording=NEXT_RECORDING, top=3)
    worth = ranked[ranked["expected_information_gain_bits"] >= MIN_GAIN_BITS]
    assert [x.column for x in f.next_findings] == list(worth["column"])
    assert all(x.expected_information_gain_bits >= MIN_GAIN_BITS for x in f.next_findings)
    with pytest.raises(ValueError, match="next_findings must be >= 0"):
        explain_patients(model, sparse, next_findings=-1)


def test_cli_prints_and_writes_next_findings(model, sparse, tmp_path):
    path = model.save(tmp_path / "m.joblib")
    csv = tmp_path / "p.csv"
    sparse.to_csv(csv)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "e.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ml.cli", "explain", str(csv), "--model", str(path), "--id-column", "patient", "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "What to check next" in proc.stdout and "  3. " in proc.stdout.split("What to check next")[1]
    doc = json.loads(out.read_text())
    assert len(doc["patients"][0]["next_findings"]) == 3
    proc = subprocess.run(
        [sys.executable, "-m", "ml.cli", "explain", str(csv), "--model", str(path), "--id-column", "patient", "--next", "0"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0 and "What to check next" not in proc.stdout


def test_an_impossible_patient_is_said_to_be_impossible(model, kb):
    cols = list(kb.column_names)
    rows = pd.DataFrame([{c: np.nan for c in cols}, {c: np.nan for c in cols}])
    rows.loc[0, ["on_dialysis", "chronic_kidney_disease"]] = [1, 0]  # declared impossible
    rows.loc[1, ["on_dialysis", "chronic_kidney_disease"]] = [1, 1]
    bad, good = explain_patients(model, rows, top=1)
    assert IMPOSSIBLE_NOTE in bad.notes and not bad.next_findings
    assert IMPOSSIBLE_NOTE not in good.notes and good.next_findings
    assert "impossible under every type in the knowledge base" in render_text([bad])
