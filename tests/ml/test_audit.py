"""The clue audit and the agreement of SHAP with the oracle's weight of evidence (ml.audit)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

shap = pytest.importorskip("shap")

from data_gen import generate_cohort, weight_of_evidence  # noqa: E402
from data_gen.knowledge import TOWARD_ROLES  # noqa: E402
from ml.audit import (  # noqa: E402
    REASON_MISSED,
    REASON_RARE,
    ClueAudit,
    audit_clues,
)
from ml.agreement import attribution_agreement, oracle_agreement, top_reasons  # noqa: E402

N_AUDIT = 4_000  # held-out patients explained once for the whole module
N_ORACLE = 2_000


@pytest.fixture(scope="module")
def model():
    from threadpoolctl import threadpool_limits

    import ml

    # one OpenMP thread: far faster than a contended thread team on busy shared cores
    with threadpool_limits(limits=1, user_api="openmp"):
        return ml.train(generate_cohort(30_000, random_state=1), max_iter=150)


@pytest.fixture(scope="module")
def held_out():
    return generate_cohort(N_AUDIT, random_state=2)


@pytest.fixture(scope="module")
def explanation(model, held_out):
    import ml

    return ml.explain(model, held_out, n_jobs=1)


@pytest.fixture(scope="module")
def audit(model, held_out, explanation):
    # raw per-class values: doctoring one class's values then changes that class's rows only
    return audit_clues(model, held_out, explanation=explanation, centred=False)


def _with_values(ex, values):
    return shap.Explanation(
        values=values,
        base_values=ex.base_values,
        data=ex.data,
        feature_names=list(ex.feature_names),
        output_names=list(ex.output_names),
    )


# ---- the clue audit --------------------------------------------------------------------------
def test_one_row_per_role_of_the_knowledge_base(audit, kb):
    t = audit.table
    roles = kb.roles()
    assert len(roles) >= 40
    assert len(t) == len(roles)
    assert list(zip(t["calcification_type"], t["column"], t["role"])) == [(k, c, r) for k, c, r, _ in roles]
    assert not t.duplicated(["calcification_type", "column"]).any()
    assert (t["role"] != "none").all()


def test_expected_direction_follows_the_role(audit):
    t = audit.table
    toward = t["role"].isin(TOWARD_ROLES)
    assert (t.loc[toward, "expected"] == "toward").all()
    assert (t.loc[~toward, "expected"] == "away").all()
    assert set(t.loc[~toward, "role"]) == {"unusual"}


def test_columns_ranks_and_tests(audit, kb):
    t = audit.table
    assert {"test", "observed_effect", "n_present", "n_absent", "importance_rank", "passed", "reason"} <= set(t.columns)
    assert t["importance_rank"].between(1, len(kb.column_names)).all()
    kinds = t["column"].map(lambda c: kb.columns[c].kind)
    assert t.loc[kinds == "binary", "test"].str.contains("present - absent").all()
    assert t.loc[kinds == "categorical", "test"].str.contains("zone=").all()
    assert t.loc[(kinds == "continuous") & t["n_present"].isna(), "test"].str.startswith("Spearman").all()
    mpc_size = t[(t["calcification_type"] == "metastatic") & (t["column"] == "lesion_size_mm")].iloc[0]
    assert "inside [3, 10]" in mpc_size["test"]
    # a testable clue passes exactly when its effect has the expected sign
    tested = t[t["passed"].notna()]
    expect = {(k, c): e for k, c, _, e in kb.roles()}
    sign = np.where(tested["expected"] == "toward", 1.0, -1.0)
    lower = [  # continuous "lower" clues pass on a negative correlation (zone's "lower" is a level)
        kb.columns[c].kind == "continuous" and expect[(k, c)] == "lower"
        for k, c in zip(tested["calcification_type"], tested["column"])
    ]
    sign = np.where(lower, -sign, sign)
    assert ((sign * tested["observed_effect"] > 0) == tested["passed"].astype(bool)).all()


def test_summary_and_failures(audit):
    t = audit.table
    s = audit.summary()
    tested = t["passed"].dropna().astype(bool)
    assert s.loc["overall", "clues"] == len(t)
    assert s.loc["overall", "testable"] == len(tested)
    assert s.loc["overall", "pass_rate"] == pytest.approx(tested.sum() / len(tested))
    assert audit.pass_rate == pytest.approx(s.loc["overall", "pass_rate"])
    for k, g in t.groupby("calcification_type", sort=False):
        gt = g["passed"].dropna().astype(bool)
        assert s.loc[k, "pass_rate"] == pytest.approx(gt.mean())
    f = audit.failures()
    assert len(f) == (~tested).sum()
    assert f["reason"].notna().all() and (f["reason"].str.len() > 0).all()
    assert f["reason"].map(lambda r: r in (REASON_RARE, REASON_MISSED) or r.startswith("shadowed by a correlated clue: ")).all()
    assert t.loc[t["passed"].fillna(False).astype(bool), "reason"].isna().all()
    assert t.loc[t["passed"].isna(), "reason"].notna().all()
    # JSON-serialisable
    d = json.loads(json.dumps(audit.to_dict()))
    assert len(d["table"]) == len(t)
    assert d["pass_rate"] == pytest.approx(audit.pass_rate)


def test_a_doctored_clue_fails_and_nothing_else_changes(model, held_out, explanation, audit):
    t = audit.table
    # the strongest passing binary "toward" clue
    cand = t[t["passed"].fillna(False).astype(bool) & (t["expected"] == "toward") & t["test"].str.contains("present - absent")]
    row = cand.loc[cand["observed_effect"].idxmax()]
    j = list(explanation.feature_names).index(row["column"])
    k = list(explanation.output_names).index(row["calcification_type"])
    values = np.array(explanation.values, copy=True)
    values[:, j, k] *= -1
    doctored = audit_clues(model, held_out, explanation=_with_values(explanation, values), centred=False)
    d = doctored.table
    hit = (d["calcification_type"] == row["calcification_type"]) & (d["column"] == row["column"])
    assert hit.sum() == 1
    assert pd.notna(d.loc[hit, "passed"].iloc[0]) and not bool(d.loc[hit, "passed"].iloc[0])
    assert d.loc[hit, "observed_effect"].iloc[0] == pytest.approx(-row["observed_effect"])
    assert d.loc[hit, "reason"].iloc[0] is not None
    assert row["column"] in set(doctored.failures()["column"])
    pd.testing.assert_frame_equal(d.loc[~hit].reset_index(drop=True), t.loc[~hit.to_numpy()].reset_index(drop=True))


def test_explains_a_subsample_itself(model, held_out):
    a = audit_clues(model, held_out, max_patients=400, random_state=3)
    assert isinstance(a, ClueAudit)
    assert a.n_patients == 400
    assert len(a.table) >= 40


def test_explanation_must_match_the_cohort(model, held_out, explanation):
    with pytest.raises(ValueError, match="same order"):
        audit_clues(model, held_out.iloc[:10], explanation=explanation)


# ---- agreement with the oracle -------------------------------------------------------------
@pytest.fixture(scope="module")
def agreement(model, held_out, explanation):
    return oracle_agreement(model, held_out, explanation=explanation, max_patients=N_ORACLE, random_state=0)


def test_agreement_is_json_and_complete(agreement):
    d = json.loads(json.dumps(agreement))
    assert set(d) >= {"model", "random", "permuted_labels", "n_patients", "residual_share"}
    assert d["n_patients"] == N_ORACLE
    assert 0 <= d["residual_share"]


def test_model_beats_the_random_floor(agreement):
    n = agreement["n_patients"]
    # median of n (patient-level) Spearman correlations over 52 columns of unrelated vectors:
    # each has sd about 1/sqrt(51); the median of n has sd about 1.2533 times that / sqrt(n)
    tol = 6 * 1.2533 / math.sqrt(51) / math.sqrt(n)
    assert tol <= 0.1
    assert abs(agreement["random"]["spearman_median"]) <= tol
    assert abs(agreement["permuted_labels"]["spearman_median"]) <= 0.1
    model_rho = agreement["model"]["spearman_median"]
    assert model_rho > 0.5
    assert model_rho > agreement["random"]["spearman_median"] + 0.3
    assert agreement["permuted_labels"]["spearman_median"] < model_rho - 0.3
    assert agreement["model"]["sign_agreement"] > agreement["random"]["sign_agreement"]


@pytest.mark.parametrize("which", ["model", "random", "permuted_labels"])
def test_topk_metrics_are_bounded(agreement, which):
    m = agreement[which]
    for k in (1, 3, 5):
        fa, ra, sa = m[f"FA@{k}"], m[f"RA@{k}"], m[f"SA@{k}"]
        assert 0 <= fa <= 1 and 0 <= ra <= 1 and 0 <= sa <= 1
        assert sa <= fa + 1e-12
        assert ra <= fa + 1e-12
    assert m["FA@1"] == pytest.approx(m["RA@1"])


def test_self_comparison_is_perfect(model, held_out):
    sub = held_out.iloc[:500]
    ev = weight_of_evidence(sub)
    fake = shap.Explanation(
        values=ev.values,
        base_values=np.zeros((len(sub), len(ev.classes))),
        feature_names=list(ev.columns),
        output_names=list(ev.classes),
    )
    out = oracle_agreement(model, sub, explanation=fake, evidence=ev, floors=False)
    assert "random" not in out
    m = out["model"]
    for key, value in m.items():
        if key.startswith(("spearman", "sign", "FA@", "RA@", "SA@")):
            assert value == pytest.approx(1.0), key


def test_attribution_agreement_by_hand():
    # one patient, one class, four columns
    a = np.array([4.0, -3.0, 2.0, 0.5]).reshape(1, 4, 1)
    b = np.array([-3.5, 4.0, 1.0, 0.1]).reshape(1, 4, 1)
    m = attribution_agreement(a, b, k=(1, 2, 3))
    # |a| order: 0, 1, 2, 3; |b| order: 1, 0, 2, 3
    assert m["FA@1"] == 0 and m["RA@1"] == 0
    assert m["FA@2"] == 1 and m["RA@2"] == 0 and m["SA@2"] == 0  # same two columns, opposite signs
    assert m["FA@3"] == 1 and m["RA@3"] == pytest.approx(1 / 3) and m["SA@3"] == pytest.approx(1 / 3)
    assert m["sign_agreement"] == pytest.approx(0.5)
    assert m["spearman_median"] == pytest.approx(-0.8)  # ranks 4,1,3,2 vs 1,4,3,2
    const = attribution_agreement(np.ones((1, 4, 1)), b, k=(1,))
    assert const["n_pairs"] == 0 and const["n_pairs_skipped"] == 1


# ---- one patient's reasons -----------------------------------------------------------------
def test_top_reasons(explanation):
    cls = explanation.output_names[1]
    top = top_reasons(explanation, 7, cls, k=5)
    assert len(top) == 5
    vals = [v for _, v in top]
    assert vals == sorted(vals, reverse=True)
    k = list(explanation.output_names).index(cls)
    assert vals[0] == pytest.approx(float(np.max(explanation.values[7, :, k])))
    assert all(c in explanation.feature_names for c, _ in top)
    with pytest.raises(ValueError):
        top_reasons(explanation, 0, "not_a_class")


def test_centred_audit_covers_the_same_clues(model, held_out, explanation, audit):
    c = audit_clues(model, held_out, explanation=explanation)  # centred is the default
    assert c.table[["calcification_type", "column", "role", "expected"]].equals(
        audit.table[["calcification_type", "column", "role", "expected"]]
    )
    assert c.meta["shap"] == "centred across classes" and audit.meta["shap"] == "raw per-class log-odds"
