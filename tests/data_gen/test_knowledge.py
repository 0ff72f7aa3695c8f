"""The knowledge base: it loads, covers the contract, rejects malformed entries with a message
that names them, and every cited quote or literature ID can be found in the references."""

from __future__ import annotations

import re
import tomllib

import pytest

from data_gen import CLASSES, KnowledgeError, load_knowledge
from data_gen.knowledge import ROLES, Source, default_knowledge_path

KB_TEXT = default_knowledge_path().read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The shipped knowledge base
# ---------------------------------------------------------------------------------------------
def test_shipped_kb_loads_with_five_classes_in_order(kb):
    assert kb.class_names == CLASSES == (
        "dystrophic", "metastatic", "dpo_nodular", "dpo_dendriform", "pam",
    )
    assert abs(sum(kb.prevalence.values()) - 1.0) < 1e-9
    assert all(0 < p < 1 for p in kb.prevalence.values())


def test_every_class_and_contract_column_has_a_model_with_a_role(kb):
    assert len(kb.column_names) == 52
    for k in kb.class_names:
        cls = kb.classes[k]
        assert set(cls.columns) == set(kb.column_names), k
        for col in kb.column_names:
            model = cls.columns[col]
            assert model.column == col
            assert model.role in ROLES, (k, col, model.role)
            assert kb.role(k, col) == model.role


def test_at_least_40_roles_that_are_not_none(kb):
    roles = kb.roles()
    assert len(roles) >= 40
    assert all(role != "none" and role in ROLES for _, _, role, _ in roles)
    # every class has clues of its own, and Table 1's "unusual" findings are represented
    assert {k for k, *_ in roles} == set(kb.class_names)
    assert {role for _, _, role, _ in roles} == {"usual", "associated", "unusual", "cause"}


def test_cell_probabilities_are_distributions(kb):
    t = kb.cells
    for k in range(len(kb.class_names)):
        idx = t.class_cells(k)
        assert len(idx) > 0
        assert abs(t.cell_prob[idx].sum() - 1.0) < 1e-9
    for probs in t.cat_probs:
        assert abs(probs.sum(axis=1) - 1.0).max() < 1e-9
    for arr in (t.p1, t.p_given, t.binary_missing, t.cat_missing, t.cont_missing):
        assert ((arr >= 0) & (arr <= 1)).all()


# ---------------------------------------------------------------------------------------------
# Validation errors: modified copies of the shipped TOML text
# ---------------------------------------------------------------------------------------------
def _modified(tmp_path, name: str, old: str, new: str):
    """Write knowledge.toml with ``old`` (which must occur exactly once) replaced by ``new``."""
    assert KB_TEXT.count(old) == 1, f"fixture text not unique in knowledge.toml: {old!r}"
    path = tmp_path / f"{name}.toml"  # distinct files: load_knowledge caches by path
    path.write_text(KB_TEXT.replace(old, new), encoding="utf-8")
    return path


def test_unmodified_copy_loads(tmp_path):
    path = tmp_path / "copy.toml"
    path.write_text(KB_TEXT, encoding="utf-8")
    kb2 = load_knowledge(path)
    assert kb2.class_names == CLASSES
    assert kb2.sha256 == load_knowledge().sha256


def test_probability_above_one_is_rejected(tmp_path):
    old = '[classes.dystrophic.columns.calcified_nodules]\nrole = "usual"\np = 0.88\n'
    path = _modified(tmp_path, "p13", old, old.replace("p = 0.88", "p = 1.3"))
    with pytest.raises(KnowledgeError, match=r"\[classes\.dystrophic\]\.columns\.calcified_nodules\.p\b.*must lie in \[0, 1\].*1\.3"):
        load_knowledge(path)


def test_probability_in_a_by_table_above_one_is_rejected(tmp_path):
    old = "p = { by = \"cause\", tumour = 0.6, occupational = 0.12, else = 0.04 }"
    path = _modified(tmp_path, "pby", old, old.replace("tumour = 0.6", "tumour = 1.3"))
    with pytest.raises(KnowledgeError, match=r"dystrophic.*lung_mass\.p\.tumour.*must lie in \[0, 1\].*1\.3"):
        load_knowledge(path)


def test_unsourced_number_is_rejected(tmp_path):
    old = (
        "[classes.dpo_nodular.columns.medial_posterior_predominance]\np = 0.2\n"
        'source = { kind = "assumption", rationale = "gravity-dependent congestion favours posterior lower lobes a little" }\n'
    )
    path = _modified(tmp_path, "nosource", old, old.split("source = ")[0])
    with pytest.raises(KnowledgeError, match=r"\[classes\.dpo_nodular\]\.columns\.medial_posterior_predominance.*no 'source'"):
        load_knowledge(path)


def test_missing_rate_without_its_source_is_rejected(tmp_path):
    old = (
        'missing = 0.93\nsource = { kind = "literature", id = "L03", note = "variants in almost all genetically tested patients" }\n'
        'missing_source = { kind = "literature", id = "L03", note = "variants identified in at least 68 patients, of the 1022 reported cases (L01): about 7% tested, so 93% not recorded (vs 98% of others)" }\n'
    )
    path = _modified(tmp_path, "nomissingsource", old, old.split("missing_source = ")[0])
    with pytest.raises(KnowledgeError, match=r"\[classes\.pam\]\.columns\.slc34a2_variant.*missing_source"):
        load_knowledge(path)


def test_missing_contract_column_is_rejected(tmp_path):
    block = (
        '[defaults.myocardial_calcification]\nrole = "none"\np = 0.02\nmissing = 0.03\n'
        'source = "@background"\nmissing_source = "@imaging_not_recorded"\n'
    )
    path = _modified(tmp_path, "nocolumn", block, "")
    with pytest.raises(KnowledgeError, match=r"myocardial_calcification.*every contract column needs a background distribution"):
        load_knowledge(path)


def test_factor_probabilities_not_summing_to_one_are_rejected(tmp_path):
    old = "levels = { precalcific = 0.1, sandstorm = 0.35, granular = 0.35, white_lung = 0.2 }"
    path = _modified(tmp_path, "factorsum", old, old.replace("precalcific = 0.1", "precalcific = 0.2"))
    with pytest.raises(KnowledgeError, match=r"\[classes\.pam\]\.factors\.stage\.levels.*must sum to 1, got 1\.1"):
        load_knowledge(path)


def test_categorical_probabilities_not_summing_to_one_are_rejected(tmp_path):
    old = "probs = { upper = 0.62, lower = 0.12, diffuse = 0.26 }"
    path = _modified(tmp_path, "catsum", old, old.replace("lower = 0.12", "lower = 0.22"))
    with pytest.raises(KnowledgeError, match=r"\[classes\.dystrophic\]\.columns\.zone\.probs.*must sum to 1, got 1\.1"):
        load_knowledge(path)


def test_unknown_literature_id_is_rejected(tmp_path):
    old = 'source = { kind = "literature", id = "L30", note = "three times as often in men" }'
    path = _modified(tmp_path, "badlit", old, old.replace('"L30"', '"L99"'))
    with pytest.raises(KnowledgeError, match=r"\[classes\.dpo_nodular\]\.columns\.sex\.source.*'L99'.*not listed in \[literature\]"):
        load_knowledge(path)


def test_unknown_named_source_is_rejected(tmp_path):
    old = '[classes.pam.columns.centrilobular_ggo]\np = 0.03\nrequires = { ground_glass = ["ground_glass", "crazy_paving"] }\nsource = "@background"\n'
    path = _modified(tmp_path, "badname", old, old.replace("@background", "@nope"))
    with pytest.raises(KnowledgeError, match=r"\[classes\.pam\]\.columns\.centrilobular_ggo\.source.*unknown named source '@nope'"):
        load_knowledge(path)


def test_violated_constraint_is_rejected(tmp_path):
    # a dialysis patient without kidney disease in every class that uses the default renal model
    old = "p = { by = \"renal\", none = 0.0, ckd = 1.0, dialysis = 1.0, kidney_transplant = 0.6, liver_transplant = 0.3 }"
    path = _modified(tmp_path, "constraint", old, old.replace("dialysis = 1.0", "dialysis = 0.9"))
    with pytest.raises(KnowledgeError, match=r"constraint 'dialysis implies chronic kidney disease'.*'dystrophic'.*chronic_kidney_disease = 0"):
        load_knowledge(path)


def test_invalid_toml_is_rejected(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(KB_TEXT + "\n[classes.pam\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="not valid TOML"):
        load_knowledge(path)


# ---------------------------------------------------------------------------------------------
# Sources can be found in the references
# ---------------------------------------------------------------------------------------------
def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _all_sources(kb) -> list[tuple[str, Source]]:
    out = []
    for k, cls in kb.classes.items():
        out.append((f"{k}.prevalence", cls.prevalence_source))
        for f in cls.factors:
            out.append((f"{k}.factors.{f.name}", f.source))
        for col, m in cls.columns.items():
            for key, src in m.source.items():
                out.append((f"{k}.{col}.source[{key}]", src))
            for key, src in m.missing_source.items():
                out.append((f"{k}.{col}.missing_source[{key}]", src))
    for c in kb.constraints:
        out.append((f"constraint {c.name}", c.source))
    for row, src in kb.table2_sources.items():
        out.append((f"table2.{row}", src))
    return out


def _raw_sources(node, where="") -> list[tuple[str, dict]]:
    """Every inline source table of the raw TOML (including requires_source entries that the
    loader checks but does not keep)."""
    out = []
    if isinstance(node, dict):
        if "kind" in node and isinstance(node.get("kind"), str) and node["kind"] in (
            "table1", "table2", "text", "case", "literature", "assumption",
        ):
            out.append((where, node))
        for key, val in node.items():
            out.extend(_raw_sources(val, f"{where}.{key}"))
    elif isinstance(node, list):
        for i, val in enumerate(node):
            out.extend(_raw_sources(val, f"{where}[{i}]"))
    return out


@pytest.fixture(scope="module")
def sources(kb):
    srcs = _all_sources(kb)
    assert len(srcs) > 300  # every column of every class, so the walk did not stop early
    return srcs


@pytest.fixture(scope="module")
def raw_sources():
    return _raw_sources(tomllib.loads(KB_TEXT))


def _table1_section(review: str) -> str:
    start = review.index("TABLE 1 HRCT findings")
    stop = review.index("**TABLE 2**")
    return review[start:stop]


def test_text_and_case_quotes_are_verbatim_in_the_review(sources, raw_sources, review_text):
    review = _norm(review_text)
    items = [(w, s.kind, s.fields.get("quote")) for w, s in sources]
    items += [(w, s["kind"], s.get("quote")) for w, s in raw_sources]
    checked = 0
    for where, kind, quote in items:
        if kind in ("text", "case"):
            assert quote, where
            assert _norm(quote) in review, f"{where}: quote not found in the review: {quote!r}"
            checked += 1
    assert checked >= 20


def test_case_sources_name_a_case_whose_text_holds_the_quote(sources, review_text):
    review = _norm(review_text)
    bounds = [review.index("Case 1"), review.index("Case 2"), review.index("Case 3"), review.index("DISCUSSION")]
    for where, s in sources:
        if s.kind == "case":
            n = s.fields["case"]
            # the case's own section, plus its figure caption ("**FIGURE n** Case n: ..."), which
            # the layout places elsewhere
            section = review[bounds[n - 1]: bounds[n]]
            caption = _norm(re.search(rf"^\*\*FIGURE {n}\*\* Case {n}:.*$", review_text, re.M).group(0))
            quote = _norm(s.fields["quote"])
            assert quote in section or quote in caption, f"{where}: quote is not in case {n}"


def test_table1_quotes_are_in_table1_of_the_review(sources, raw_sources, review_text):
    table1 = _norm(_table1_section(review_text))
    items = [(w, s.kind, s.fields.get("quote")) for w, s in sources]
    items += [(w, s["kind"], s.get("quote")) for w, s in raw_sources]
    checked = 0
    for where, kind, quote in items:
        if kind == "table1" and quote:
            assert _norm(quote) in table1, f"{where}: quote not found in Table 1: {quote!r}"
            checked += 1
    assert checked >= 40


def test_cited_literature_ids_are_in_literature_numbers(sources, raw_sources, literature_text, kb):
    ids = {s.fields["id"] for _, s in sources if s.kind == "literature"}
    ids |= {s["id"] for _, s in raw_sources if s["kind"] == "literature"}
    assert len(ids) >= 10
    for lid in sorted(ids):
        assert f"| {lid} |" in literature_text, f"literature id {lid} is not in literature-numbers.md"
        assert lid in kb.literature
    # and the [literature] list itself only names IDs that exist
    for lid in kb.literature:
        assert f"| {lid} |" in literature_text, f"[literature] lists {lid}, absent from literature-numbers.md"


def test_assumptions_carry_a_rationale(sources):
    for where, s in sources:
        if s.kind == "assumption":
            assert len(s.fields["rationale"].split()) >= 3, where


# ---------------------------------------------------------------------------------------------
# Table 2
# ---------------------------------------------------------------------------------------------
def test_every_class_has_its_table2_entry(kb, review_text):
    t2 = _norm(review_text[review_text.index("**TABLE 2**"):review_text.index("multifocal pulmonary parenchymal")]).lower()
    for k in kb.class_names:
        imp = kb.implications(k)
        assert set(imp) == {"prognosis", "treatment", "screening", "diagnostic_value"}
        for field, value in imp.items():
            assert value.strip(), (k, field)
            # the entry restates the review's Table 2 (parts joined by "; ")
            for part in value.split(";"):
                assert _norm(part).lower() in t2, (k, field, part)
    assert kb.implications("dpo_nodular") == kb.implications("dpo_dendriform")
    assert kb.classes["metastatic"].table2_row == "mpc"


def test_pam_screening_is_chest_xray_of_family_members(kb):
    screening = kb.implications("pam")["screening"].lower()
    assert "chest x-ray" in screening and "family" in screening
    for k in ("dystrophic", "metastatic", "dpo_nodular", "dpo_dendriform"):
        assert kb.implications(k)["screening"] == "No"
