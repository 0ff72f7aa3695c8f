"""The data dictionary is generated from the knowledge base, complete, and never stale."""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from data_gen import load_knowledge, render_data_dictionary
from data_gen.dictionary import DEFAULT_DICTIONARY_PATH, regenerate_command
from data_gen.knowledge import default_knowledge_path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / DEFAULT_DICTIONARY_PATH


@pytest.fixture(scope="module")
def text():
    return render_data_dictionary()


def _section(text: str, heading: str) -> str:
    """The text from ``heading`` to the next heading of the same or a higher level."""
    start = text.index(heading + "\n")
    level = heading.split(" ")[0]
    rest = text[start + len(heading) + 1 :]
    m = re.search(rf"^#{{1,{len(level)}}} ", rest, flags=re.M)
    return rest[: m.start()] if m else rest


def _class_row(section: str, cls: str) -> str:
    rows = [line for line in section.splitlines() if line.startswith(f"| `{cls}` |")]
    assert len(rows) == 1, (cls, rows)
    return rows[0]


def test_committed_dictionary_is_current(text):
    assert COMMITTED.exists(), f"{DEFAULT_DICTIONARY_PATH} is missing; generate it with `{regenerate_command()}`"
    committed = COMMITTED.read_text(encoding="utf-8")
    if committed != text:
        diff = "\n".join(list(difflib.unified_diff(committed.splitlines(), text.splitlines(), "committed", "knowledge base", lineterm="", n=0))[:12])
        pytest.fail(f"{DEFAULT_DICTIONARY_PATH} is stale; regenerate it with `{regenerate_command()}`\n{diff}")


def test_header_names_generator_command_and_hash(text):
    sha = hashlib.sha256(default_knowledge_path().read_bytes()).hexdigest()
    head = "\n".join(text.splitlines()[:6])
    assert sha in head
    assert "pulmocalc dictionary --out docs/data-dictionary.md" in head
    assert "Generated" in head
    # nothing machine-specific, so the committed file compares equal on every checkout
    assert str(ROOT) not in text


def test_every_column_and_class_appears_in_contract_order(kb, text):
    positions = [text.index(f"### `{col}`\n") for col in kb.column_names]
    assert positions == sorted(positions)
    for col, spec in kb.columns.items():
        section = _section(text, f"### `{col}`")
        assert f"**type:** {spec.kind}" in section
        assert spec.description.split()[0] in section
        for cls in kb.class_names:
            row = _class_row(section, cls)
            assert f"| {kb.role(cls, col)}" in row
    classes = _section(text, "## Classes")
    table2 = _section(text, "## Table 2: what each type implies")
    for cls, spec in kb.classes.items():
        assert f"| `{cls}` | {spec.label} |" in classes
        assert f"### {cls}: " in text
        assert _class_row(table2, cls)
        for factor in spec.factors:
            assert f"| `{factor.name}` |" in _section(text, f"### {cls}: {spec.label}")


def test_rendering_of_each_distribution_kind(kb, text):
    def row(col, cls):
        return _class_row(_section(text, f"### `{col}`"), cls)

    dys = kb.classes["dystrophic"].columns
    p_inf = dys["prior_granulomatous_infection"].params["p"].values
    assert f"P(1) by cause: infectious {p_inf['infectious']:g}, else {p_inf['tumour']:g}" in row("prior_granulomatous_infection", "dystrophic")
    gga = dys["ground_glass_opacity"].params["p"].values
    assert f"P(1) given centrilobular_ggo: 1→{gga['1']:g}, 0→{gga['0']:g}" in row("ground_glass_opacity", "dystrophic")
    assert f"P(1) = {dys['calcified_nodules'].params['p'].value:g}; forced to 0 unless visibility is visible" in row("calcified_nodules", "dystrophic")
    size = dys["lesion_size_mm"].params
    assert f"log-normal(median {size['median'].value:g} mm, gsd {size['gsd'].value:g})" in row("lesion_size_mm", "dystrophic")
    assert "usual (expect `higher`)" in row("lesion_size_mm", "dystrophic")
    nod = kb.classes["dpo_nodular"].columns["age_years"].params
    assert f"normal(mean {nod['mean'].value:g}, sd {nod['sd'].value:g}) truncated to [0, 120]" in row("age_years", "dpo_nodular")
    assert f"P(0) = {kb.classes['metastatic'].columns['pack_years'].params['zero'].value:g}" in row("pack_years", "metastatic")
    # a per-level missing rate and per-level categorical probabilities
    assert "| by stage: precalcific 1, else 0.05 |" in row("lesion_size_mm", "pam")
    assert "by stage: white_lung (upper 0.05, lower 0.35, diffuse 0.6), else (" in row("zone", "pam")
    # per-level sources are cited level by level, with the missingness source beside them
    assert "[infectious] Table 1, dystrophic / causes" in row("prior_granulomatous_infection", "dystrophic")
    assert "<br>missing: " in row("prior_granulomatous_infection", "dystrophic")
    # allowed values: min_exclusive means strictly greater
    assert "x > 0" in _section(text, "### `serum_calcium_mg_dl`")
    assert "0 ≤ x ≤ 120" in _section(text, "### `age_years`")


def test_constraints_and_assumptions_are_listed(kb, text):
    constraints = _section(text, "## Impossible combinations")
    for c in kb.constraints:
        assert c.name in constraints
    assumptions = _section(text, "## Assumptions")
    rationales = {r for _where, r in kb.assumptions()}
    for r in rationales:
        assert assumptions.count(f". {r}\n") == 1, r  # each listed once
    assert f"({len(rationales)} distinct assumptions)" in assumptions


def test_changing_a_number_changes_only_its_row(tmp_path, text):
    src = default_knowledge_path().read_text(encoding="utf-8")
    entry = '[classes.dystrophic.columns.calcified_nodules]\nrole = "usual"\np = 0.88\n'
    assert entry in src, "test fixture out of date: the dystrophic calcified_nodules entry changed"
    changed = tmp_path / "knowledge.toml"
    changed.write_text(src.replace(entry, entry.replace("p = 0.88", "p = 0.87")), encoding="utf-8")
    new = render_data_dictionary(load_knowledge(changed))
    old_lines, new_lines = text.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    differing = [(i, a, b) for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b]
    rows = [(a, b) for _i, a, b in differing if a.startswith("| `dystrophic` |")]
    assert len(rows) == 1
    assert "P(1) = 0.88;" in rows[0][0] and "P(1) = 0.87;" in rows[0][1]
    assert rows[0][0] == _class_row(_section(text, "### `calcified_nodules`"), "dystrophic")
    # everything else that changed is the header, which names the new knowledge base's hash
    header = [b for i, a, b in differing if not a.startswith("| `dystrophic` |")]
    assert all(i < 6 for i, a, _b in differing if not a.startswith("| `dystrophic` |"))
    assert any(hashlib.sha256(changed.read_bytes()).hexdigest() in b for b in header)


def test_cli_writes_the_rendered_dictionary(tmp_path, text):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "dd.md"
    res = subprocess.run([sys.executable, "-m", "ml.cli", "dictionary", "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == text.encode("utf-8")


def test_cli_prints_the_dictionary_without_out(capsys, text):
    from ml.cli import main

    assert main(["dictionary"]) == 0
    assert capsys.readouterr().out == text
