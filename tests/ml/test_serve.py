"""The teaching page's server (pulmocalc serve) through Starlette's TestClient."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'pulmocalc[serve]'")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx (the test extra)")

from starlette.testclient import TestClient  # noqa: E402

from data_gen import load_published_cases, next_best_findings, oracle_proba, weight_of_evidence  # noqa: E402
from ml.treeshap import explain  # noqa: E402
from ml.serve import MAX_BODY_BYTES, MAX_QUERY_BYTES, ORACLE_RECORDING, create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPARSE = {"age_years": 60, "sex": "female", "zone": "lower", "calcified_nodules": 1, "lesion_size_mm": 3}
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def model(small_model):
    return small_model


@pytest.fixture(scope="module")
def app(model):
    return create_app(model)


@pytest.fixture(scope="module")
def client(app):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TestClient(app)


def _frame(kb, findings):
    return pd.DataFrame([findings]).reindex(columns=list(kb.column_names))


def _post(client, findings, **kw):
    return client.post("/api/update", json={"findings": findings, **kw})


def test_page_and_assets_are_served_offline_with_strict_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    for name in ("app.js", "style.css"):
        a = client.get(f"/static/{name}")
        assert a.status_code == 200 and len(a.content) > 500
    # nothing is fetched from elsewhere: every src/href of the page and every fetch is local
    html = r.text
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    js = client.get("/static/app.js").text
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "eval(" not in js
    assert re.findall(r'fetch\("([^"]+)"', js) == ["/api/update", "/api/schema"]
    assert client.get("/static/secret.py").status_code == 404
    assert client.get("/static/index.html").status_code == 404


def test_schema_groups_columns_and_lists_the_case_library(client, kb):
    s = client.get("/api/schema").json()
    assert [c["name"] for c in s["columns"]] == list(kb.column_names)
    assert {c["group"] for c in s["columns"]} == {"history", "laboratory", "imaging"}
    age = next(c for c in s["columns"] if c["name"] == "age_years")
    assert age["unit"] == "years" and age["kind"] == "continuous"
    assert len(s["cases"]) == 3 + len(load_published_cases(knowledge=kb))
    assert all(c["citation"] and c["diagnosis"] in kb.class_names for c in s["cases"])
    assert {x["name"] for x in s["settings"]} >= {"default", "dialysis_unit"}
    assert "not a clinical device" in s["disclaimer"]


def test_update_agrees_with_the_python_api(client, model, kb):
    r = _post(client, SPARSE)
    assert r.status_code == 200
    d = r.json()
    x = _frame(kb, SPARSE)
    pm = model.predict_proba(x, prevalence=kb.prevalence).iloc[0]  # the page adjusts to the setting's mix
    po = oracle_proba(x, recording=ORACLE_RECORDING).iloc[0]
    for row in d["differential"]:
        assert row["model"] == pytest.approx(pm[row["name"]], abs=1e-9)
        assert row["oracle"] == pytest.approx(po[row["name"]], abs=1e-9)
    assert [r["model"] for r in d["differential"]] == sorted([r["model"] for r in d["differential"]], reverse=True)
    nb = next_best_findings(x, recording=ORACLE_RECORDING, top=5)
    assert [n["column"] for n in d["next"]] == list(nb["column"])
    assert [n["gain_bits"] for n in d["next"]] == pytest.approx(list(nb["expected_information_gain_bits"]))
    # reasons: the model's centred SHAP beside the oracle's weight of evidence
    ex = explain(model, x)
    shap_c = ex.values[0] - ex.values[0].mean(axis=-1, keepdims=True)
    woe = weight_of_evidence(x, recording=ORACLE_RECORDING)
    cols = list(ex.feature_names)
    lead = d["reasons"][0]
    assert lead["name"] == d["differential"][0]["name"]
    k = list(kb.class_names).index(lead["name"])
    size = next(r for r in lead["for"] if r["column"] == "lesion_size_mm")
    assert size["shap"] == pytest.approx(shap_c[cols.index("lesion_size_mm"), k])
    assert size["woe"] == pytest.approx(woe.values[0, list(kb.column_names).index("lesion_size_mm"), k])
    assert size["clue"].startswith("Table 1") and size["sources"] and size["value_text"] == "3 mm"
    assert d["table2"]["class"] == lead["name"] and d["table2"]["items"] and "Table 2" in d["table2"]["source"]


def test_prevalence_settings_are_derived_from_the_knowledge_base(client, kb):
    default = _post(client, SPARSE).json()
    dial = _post(client, SPARSE, setting="dialysis_unit").json()
    marker = oracle_proba(_frame(kb, {"on_dialysis": 1}), missing="ignore").iloc[0]
    assert dial["prevalence"] == pytest.approx(marker.to_dict())
    po = oracle_proba(_frame(kb, SPARSE), prevalence=marker.to_dict(), recording=ORACLE_RECORDING).iloc[0]
    assert {r["name"]: r["oracle"] for r in dial["differential"]} == pytest.approx(po.to_dict())
    assert dial["differential"] != default["differential"]
    assert "derived" in dial["prevalence_source"]
    bad = _post(client, SPARSE, setting="icu")
    assert bad.status_code == 400 and bad.json()["field"] == "setting" and "dialysis_unit" in bad.json()["error"]


def test_focus_mode_ranks_rule_in_rule_out(client, kb):
    d = _post(client, SPARSE, focus="dystrophic").json()
    nb = next_best_findings(_frame(kb, SPARSE), recording=ORACLE_RECORDING, top=5, focus="dystrophic")
    assert [n["column"] for n in d["next"]] == list(nb["column"])
    for n in d["next"]:
        assert n["focus_min"] <= n["focus_now"] + 1e-12 <= n["focus_max"] + 2e-12
    bad = _post(client, SPARSE, focus="gout")
    assert bad.status_code == 400 and bad.json()["field"] == "focus"


def test_unusual_findings_are_flagged(client, kb):
    unusual = [(k, c) for k, c, role, _ in kb.roles() if role == "unusual" and kb.columns[c].kind == "binary"]
    assert unusual
    findings = dict(SPARSE)
    for _, c in unusual[:4]:
        findings[c] = 1
    d = _post(client, findings).json()
    flagged = {(r["name"], u["column"]) for r in d["reasons"] for u in r["unusual"]}
    shown = {r["name"] for r in d["reasons"]}
    expect = {(k, c) for k, c in unusual if k in shown and findings.get(c) == 1}
    assert expect and expect <= flagged


@pytest.mark.parametrize("value", [SCRIPT, "12abc", "-5", "1e400"])
def test_bad_numbers_name_the_field(client, kb, value):
    for col in [c for c, s in kb.columns.items() if s.kind == "continuous"]:
        r = _post(client, {col: value})
        assert r.status_code == 400, (col, value)
        body = r.json()
        assert body["field"] == col and col in body["error"]
        assert r.headers["content-type"].startswith("application/json")


def test_script_injection_everywhere_is_refused_or_inert(client, kb):
    for col, spec in kb.columns.items():  # every input, whatever its kind
        r = _post(client, {col: SCRIPT})
        assert r.status_code == 400 and r.json()["field"] == col, col
    r = _post(client, {SCRIPT: 1})
    assert r.status_code == 400 and "unknown finding" in r.json()["error"]
    assert _post(client, SPARSE, setting=SCRIPT).status_code == 400
    assert _post(client, SPARSE, focus=SCRIPT).status_code == 400
    # the case id and any other query parameter are never reflected into the page
    page = client.get("/", params={"case": SCRIPT, "age_years": SCRIPT, "quiz": "1"})
    assert page.status_code == 200 and "alert(1)" not in page.text


def test_request_size_and_shape_limits(client):
    big = {"findings": {"age_years": 60}, "setting": "x" * (MAX_BODY_BYTES + 10)}
    r = client.post("/api/update", content=json.dumps(big), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.get("/", params={"q": "x" * (MAX_QUERY_BYTES + 10)}).status_code == 414
    assert client.post("/api/update", content="not json", headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/api/update", content="{}", headers={"content-type": "text/plain"}).status_code == 415
    r = client.post("/api/update", json={"findings": {}, "extra": 1})
    assert r.status_code == 400 and "unknown key" in r.json()["error"]
    assert client.post("/api/update", json=[1, 2]).status_code == 400
    assert client.get("/api/update").status_code == 405


def test_impossible_combination_is_explained(client):
    r = _post(client, {"on_dialysis": 1, "chronic_kidney_disease": 0})
    assert r.status_code == 400 and "impossible" in r.json()["error"]


def test_every_library_case_updates(client):
    cases = client.get("/api/schema").json()["cases"]
    for c in cases:
        r = _post(client, c["findings"])
        assert r.status_code == 200, (c["id"], r.json())


def test_writes_nothing_to_disk(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True, text=True).stdout
    for f in (SPARSE, {"sex": "male"}, {"chronic_kidney_disease": 1, "on_dialysis": 1}):
        assert _post(client, f).status_code == 200
    client.get("/")
    client.get("/api/schema")
    assert list(tmp_path.iterdir()) == []
    after = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True, text=True).stdout
    assert after == before


def test_cli_serve_defaults_and_bad_port():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    h = subprocess.run([sys.executable, "-m", "ml.cli", "serve", "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert h.returncode == 0 and "127.0.0.1" in h.stdout and "--port" in h.stdout
    bad = subprocess.run([sys.executable, "-m", "ml.cli", "serve", "--port", "70000"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "--port" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_absurdly_nested_json_is_a_400_and_media_types_ignore_case(client):
    r = client.post("/api/update", content="[" * 5000 + "]" * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "the request body is not valid JSON"
    r = client.post("/api/update", content=json.dumps({"findings": {"age_years": 60}}), headers={"content-type": "Application/JSON"})
    assert r.status_code == 200


def test_an_address_the_server_cannot_listen_on_is_refused_by_name():
    import socket

    from ml.serve import check_address

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=rf"--host 127.0.0.1 --port {port}: cannot listen there \(.*in use"):
            check_address("127.0.0.1", port)
    with pytest.raises(ValueError, match=r"--host 'not a host': not an address of this machine"):
        check_address("not a host", 8000)
    check_address("127.0.0.1", 0)  # any free port
