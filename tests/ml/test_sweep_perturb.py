"""ml.sweep.perturb: assumptions come from the knowledge base itself and move by the stated rules."""

from __future__ import annotations

import copy
import math
import tomllib

import pytest

from data_gen import load_knowledge
from data_gen.knowledge import Source, default_knowledge_path
from ml.sweep.perturb import (
    LOG_ODDS_STEP,
    RELATIVE_STEP,
    Perturbation,
    enumerate_assumptions,
    perturb_raw,
    perturbed_knowledge,
    select_assumptions,
)


@pytest.fixture(scope="module")
def raw():
    return tomllib.loads(default_knowledge_path().read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def assumptions(raw):
    return enumerate_assumptions(raw)


def _get(raw, path):
    for p in path:
        raw = raw[p]
    return raw


def _expit_logit(p, d):
    return 1 / (1 + math.exp(-(math.log(p / (1 - p)) + d * LOG_ODDS_STEP)))


def test_every_assumption_cites_an_assumption_source_of_the_knowledge_base(raw, assumptions):
    ids = [a.id for a in assumptions]
    assert len(ids) == len(set(ids))
    assert len(assumptions) > 100  # the model card lists about 115 (where, rationale) pairs
    registry = raw["sources"]
    for a in assumptions:
        if a.id.startswith("@"):
            name = a.id[1:].split(":")[0]
            src = registry[name]
            assert Source(src["kind"], {k: v for k, v in src.items() if k != "kind"}).is_assumption, a.id
    # named sources whose numbers are only 0 and 1 (deterministic by definition) are not swept
    assert "@renal_by_definition" not in ids and "@visible_by_definition" not in ids
    # a cited, non-assumed source is never swept
    assert not any(i.startswith("@calcified_lesions_need_visibility") for i in ids)


def test_the_list_follows_the_knowledge_base_not_code(raw, assumptions):
    ids = {a.id for a in assumptions}
    assert "@background" in ids and "defaults.lung_mass" not in ids
    changed = copy.deepcopy(raw)
    # @background becomes a cited figure: it leaves the sweep; lung_mass gets its own assumption
    changed["sources"]["background"] = {"kind": "literature", "id": "L01"}
    changed["defaults"]["lung_mass"]["source"] = {"kind": "assumption", "rationale": "a test's own assumption"}
    new_ids = {a.id for a in enumerate_assumptions(changed)}
    assert "@background" not in new_ids and "defaults.lung_mass" in new_ids


@pytest.mark.parametrize("direction", [-1, 1])
def test_rules_move_each_kind_of_number_as_documented(raw, assumptions, direction):
    seen = set()
    for a in assumptions:
        out = perturb_raw(raw, a, direction)
        for path, rule in a.targets:
            if rule in seen:
                continue
            seen.add(rule)
            old, new = _get(raw, path), _get(out, path)
            if rule == "logit":
                pairs = [(old[k], new[k]) for k in old if k not in ("by", "given")] if isinstance(old, dict) else [(old, new)]
                for o, n in pairs:
                    assert n == (o if o in (0.0, 1.0) else pytest.approx(_expit_logit(o, direction), rel=1e-12))
            elif rule == "location" or rule == "scale":
                o, n = (old, new) if not isinstance(old, dict) else (next(v for k, v in old.items() if k != "by"), next(v for k, v in new.items() if k != "by"))
                assert n == pytest.approx(o * (1 + direction * RELATIVE_STEP))
            elif rule == "log_scale":
                vals = [(old[k], new[k]) for k in old if k != "by"] if isinstance(old, dict) else [(old, new)]
                for o, n in vals:
                    assert n == pytest.approx(o ** (1 + direction * RELATIVE_STEP)) and n > 1
            elif rule == "prevalence":
                total = sum(c["prevalence"] for c in out["classes"].values())
                assert total == pytest.approx(1.0, abs=1e-12)
                assert new == pytest.approx(_expit_logit(old, direction))
            elif rule == "mix":
                tables = [(old[k], new[k]) for k in old if k != "by"] if "by" in old else [(old, new)]
                for o, n in tables:
                    assert sum(n.values()) == pytest.approx(1.0, abs=1e-12)
                    lead = max(o, key=o.get)
                    if 0 < o[lead] < 1:
                        assert n[lead] == pytest.approx(_expit_logit(o[lead], direction))
                        others = [k for k in o if k != lead and o[k] > 0]
                        for k in others:  # the others keep their ratios
                            assert n[k] / n[others[0]] == pytest.approx(o[k] / o[others[0]])
    assert seen == {"logit", "mix", "prevalence", "location", "scale", "log_scale"}
    # the input is never modified
    assert raw == tomllib.loads(default_knowledge_path().read_text(encoding="utf-8"))


def test_perturbed_knowledge_bases_validate_and_differ(tmp_path, assumptions):
    text = default_knowledge_path().read_text(encoding="utf-8")
    base = perturbed_knowledge(text, Perturbation("baseline", 0), tmp_path)
    assert base.prevalence == load_knowledge().prevalence
    by_rule = {}
    for a in assumptions:
        by_rule.setdefault(a.targets[0][1], a)
    for a in by_rule.values():  # one assumption per rule, both ways, through the ordinary loader
        down = perturbed_knowledge(text, Perturbation(a.id, -1), tmp_path)
        up = perturbed_knowledge(text, Perturbation(a.id, 1), tmp_path)
        assert len({base.sha256, down.sha256, up.sha256}) == 3, a.id


def test_unknown_ids_are_refused_with_examples(assumptions):
    assert [a.id for a in select_assumptions(assumptions, "@background,@not_recorded")] == ["@background", "@not_recorded"]
    with pytest.raises(ValueError, match=r"unknown assumption id\(s\) \['nope'\].*@not_recorded"):
        select_assumptions(assumptions, "@background,nope")
    with pytest.raises(ValueError, match="direction"):
        perturb_raw({}, assumptions[0], 0)
