"""The teaching page in a real browser: Debian's chromium driven by Playwright (no browser download).

Skipped, with the reason, only when /usr/bin/chromium or the Python packages are absent;
``.ci/run`` installs all of them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium): the browser test needs it", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install 'pulmocalc[browser]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'pulmocalc[serve]'")

from playwright.sync_api import sync_playwright  # noqa: E402

from data_gen import next_best_findings, oracle_proba  # noqa: E402
from ml.treeshap import explain  # noqa: E402
from ml.serve import ORACLE_RECORDING, create_app, serve_in_thread  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
CASE = "case3_nodular_dpo"
TOGGLE = "prior_granulomatous_infection"


@pytest.fixture(scope="module")
def server(small_model):
    app = create_app(small_model)
    url, stop = serve_in_thread(app)
    yield url, app.engine
    stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
    pg = ctx.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()


def _updates(page) -> int:
    return page.evaluate("window.pulmocalc ? window.pulmocalc.updates : 0")


def _wait(page, expr: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript expression (wait_for_function would need 'unsafe-eval', which the page's
    Content-Security-Policy rightly refuses)."""
    deadline = time.time() + timeout
    while not page.evaluate(f"() => Boolean({expr})"):
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {expr}")
        time.sleep(0.05)


def _wait_update(page, before: int) -> None:
    _wait(page, f"window.pulmocalc && window.pulmocalc.updates > {before}")
    page.wait_for_timeout(150)  # a debounced follow-up update, if any, lands too


def _shown(page):
    """The differential, reasons and next list as the page shows them (from its DOM)."""
    diff = page.eval_on_selector_all(
        "#differential tbody tr", "rows => rows.map(r => [r.dataset.class, +r.dataset.model, +r.dataset.oracle])")
    lead = page.eval_on_selector_all(
        "#reasons article:first-child tr[data-column]", "rows => rows.map(r => [r.dataset.column, +r.dataset.shap, +r.dataset.woe])")
    nxt = page.eval_on_selector_all("#next li[data-column]", "rows => rows.map(r => [r.dataset.column, +r.dataset.gain])")
    return diff, lead, nxt


def _api(engine, findings):
    """What the Python API gives for the same patient."""
    kb, model = engine.kb, engine.model
    x = pd.DataFrame([findings]).reindex(columns=list(kb.column_names))
    pm = model.predict_proba(x, prevalence=kb.prevalence).iloc[0]
    po = oracle_proba(x, recording=ORACLE_RECORDING).iloc[0]
    nb = next_best_findings(x, recording=ORACLE_RECORDING, top=5)
    ex = explain(model, x)
    shap_c = ex.values[0] - ex.values[0].mean(axis=-1, keepdims=True)
    return pm, po, nb, shap_c, list(ex.feature_names), list(kb.class_names)


def _check_against_api(page, engine, findings):
    diff, lead, nxt = _shown(page)
    pm, po, nb, shap_c, cols, classes = _api(engine, findings)
    assert [d[0] for d in diff] == list(pm.sort_values(ascending=False, kind="stable").index)
    for name, m, o in diff:
        assert m == pytest.approx(pm[name], abs=1e-9) and o == pytest.approx(po[name], abs=1e-9)
    k = classes.index(diff[0][0])
    assert lead, "the leading diagnosis shows reasons"
    for col, s, _ in lead:
        assert s == pytest.approx(shap_c[cols.index(col), k], abs=1e-9)
    assert [n[0] for n in nxt] == list(nb["column"])
    assert [n[1] for n in nxt] == pytest.approx(list(nb["expected_information_gain_bits"]), abs=1e-12)
    return diff, lead, nxt


def test_case_toggle_and_agreement_with_the_api(server, page, tmp_path):
    url, engine = server
    page.goto(url)
    _wait(page, "window.pulmocalc && window.pulmocalc.updates >= 1")
    # load a case from the library
    before = _updates(page)
    page.select_option("#case-select", CASE)
    page.click("#case-load")
    _wait_update(page, before)
    case = next(c for c in engine.cases if c["id"] == CASE)
    assert "case" in page.inner_text("#case-citation").lower()
    first = _check_against_api(page, engine, case["findings"])
    assert TOGGLE not in case["findings"]
    # toggle a finding with the keyboard-reachable radio's label
    before = _updates(page)
    page.click(f"label[for=f-{TOGGLE}-1]")
    _wait_update(page, before)
    toggled = {**case["findings"], TOGGLE: 1}
    second = _check_against_api(page, engine, toggled)
    assert second[0] != first[0] and second[1] != first[1] and second[2] != first[2]
    assert f"{TOGGLE}=1" in page.url and f"case={CASE}" in page.url
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert (tmp_path / "page.png").stat().st_size > 10_000
    # the URL is the state: a fresh page on the same link shows the same differential
    other = page.context.new_page()
    other.goto(page.url)
    _wait(other, "window.pulmocalc && window.pulmocalc.updates >= 1")
    assert _shown(other)[0] == _shown(page)[0]
    assert page.dialogs == []


def test_sparse_patient_agrees_and_a_next_finding_click_sets_it(server, page):
    """The issue's sparse patient: a 60-year-old woman with lower-zone calcified nodules of
    3 mm, nothing else recorded; the page's next-best list is next_best_findings'."""
    url, engine = server
    page.goto(url + "?age_years=60&sex=female&zone=lower&calcified_nodules=1&lesion_size_mm=3")
    _wait(page, "window.pulmocalc && window.pulmocalc.updates >= 1")
    sparse = {"age_years": 60, "sex": "female", "zone": "lower", "calcified_nodules": 1, "lesion_size_mm": 3}
    _check_against_api(page, engine, sparse)
    col = page.get_attribute("#next li[data-column]", "data-column")
    before = _updates(page)
    page.click("#next li[data-column] button.set")
    _wait_update(page, before)
    assert col not in [n[0] for n in _shown(page)[2]]  # now recorded, no longer a suggestion
    assert page.is_checked(f"#f-{col}-1") or page.is_checked(f"#f-{col}-0") or page.input_value(f"#f-{col}") != ""


def test_script_injection_is_shown_as_text(server, page):
    url, engine = server
    page.goto(url + "?case=%3Cscript%3Ealert(1)%3C%2Fscript%3E&age_years=%3Cimg%20src%3Dx%20onerror%3Dalert(2)%3E")
    page.wait_for_load_state("networkidle")
    payload = "<script>alert(3)</script>"
    for box in page.query_selector_all("input[type=text]"):
        box.fill(payload)
        page.wait_for_timeout(50)
    page.wait_for_timeout(800)
    assert page.dialogs == []
    assert page.evaluate("document.querySelectorAll('#entry script, #errors script, img[src=x]').length") == 0
    assert "not a number" in page.inner_text("#errors")


def test_inputs_are_labelled_and_keyboard_reachable(server, page):
    url, _ = server
    page.goto(url)
    _wait(page, "window.pulmocalc && window.pulmocalc.updates >= 1")
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input, select')].filter(e => !e.labels || e.labels.length === 0).map(e => e.id)")
    assert unlabelled == []
    # Tab reaches the first controls in document order
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "case-select"


def test_quiz_hides_the_diagnosis_until_commit(server, page):
    url, engine = server
    page.goto(url)
    _wait(page, "window.pulmocalc && window.pulmocalc.updates >= 1")
    page.check("#quiz")
    before = _updates(page)
    page.select_option("#case-select", "case1_mpc")
    page.click("#case-load")
    _wait_update(page, before)
    assert page.is_hidden("#results")
    assert "hidden" in page.inner_text("#case-diagnosis")
    page.select_option("#quiz-answer", "metastatic")
    page.click("#quiz-commit")
    assert page.is_visible("#results")
    text = page.inner_text("#case-diagnosis")
    assert text.startswith("Correct") and engine.kb.classes["metastatic"].label in text
