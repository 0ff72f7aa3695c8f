"""Auditing the model's SHAP explanations: against the review's clues and against the truth.

Two yardsticks, both for the raw per-class SHAP values of :func:`ml.explain`:

* :func:`audit_clues` — the *clue audit*. The knowledge base gives each (class, column) a
  role taken from the review (``usual``, ``associated``, ``cause``: the finding pushes toward
  the class; ``unusual``, Table 1's "may suggest alternate diagnosis": it pushes away). For
  every such clue the audit measures the direction in which the model's SHAP values for that
  class actually move with the finding, and says whether it agrees. Every clue gets a row;
  failures are reported with their likely reason, never filtered out.
* :func:`oracle_agreement` — *faithfulness to the generator*. Our cohorts come from a known
  model, whose per-column weight of evidence (:func:`data_gen.weight_of_evidence`) is the
  attribution the Bayes-optimal classifier would give. The model's SHAP values, centred across
  classes, are compared with it per patient and class (Spearman, sign agreement, and OpenXAI's
  top-k feature, rank and sign agreement), beside two sanity floors that should score about
  zero: random attributions and a model trained on permuted labels.

Research and teaching on synthetic data only; never a clinical device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from data_gen import LABEL
from data_gen.knowledge import TOWARD_ROLES

__all__ = [
    "ClueAudit",
    "audit_clues",
    "MIN_GROUP",
    "MIN_CLASS_RATE",
    "SHADOW_CORRELATION",
]

#: A compared group smaller than this makes a clue "too rare in the cohort".
MIN_GROUP = 30
#: A finding seen in fewer than this share of its class's patients is "too rare in the cohort".
MIN_CLASS_RATE = 0.01
#: |correlation| within the class from which another, more important clue can shadow a clue.
SHADOW_CORRELATION = 0.4

REASON_NO_DIRECTION = "the review states no direction"
REASON_RARE = "too rare in the cohort"
REASON_SHADOWED = "shadowed by a correlated clue: {}"
REASON_MISSED = "the model missed it"

_TABLE_COLUMNS = [
    "calcification_type",
    "column",
    "role",
    "expected",
    "test",
    "observed_effect",
    "n_present",
    "n_absent",
    "n_recorded",
    "class_rate",
    "importance_rank",
    "passed",
    "reason",
]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def _jsonable(obj):
    """Recursively turn numpy / pandas scalars and NA into plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    return obj


def _explanation_parts(explanation):
    """(values (n, J, K), feature names, class names) of a shap.Explanation-like object."""
    values = np.asarray(explanation.values, dtype=np.float64)
    if values.ndim != 3:
        raise ValueError(f"expected SHAP values of shape (patients, columns, classes), got {values.shape}")
    features = list(explanation.feature_names)
    classes = list(explanation.output_names)
    if values.shape[1:] != (len(features), len(classes)):
        raise ValueError(
            f"SHAP values of shape {values.shape} do not match {len(features)} feature names "
            f"and {len(classes)} output names"
        )
    return values, features, classes


def _subsample(n: int, max_patients: int | None, random_state) -> np.ndarray:
    """Sorted positions of a seeded random subsample of at most ``max_patients`` rows."""
    if max_patients is None or n <= max_patients:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=int(max_patients), replace=False))


def _rank_corr(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of two vectors (NaN when either is constant)."""
    if len(x) < 2:
        return float("nan")
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float((rx * rx).sum()) * float((ry * ry).sum()))
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


def _explained(model, cohort: pd.DataFrame, explanation, max_patients, random_state):
    """The patients to audit (checked contract frame, labels or None) and their SHAP values."""
    if explanation is None:
        pos = _subsample(len(cohort), max_patients, random_state)
        cohort = cohort.iloc[pos]
        from .treeshap import explain

        explanation = explain(model, cohort)
    values, features, classes = _explanation_parts(explanation)
    if len(values) != len(cohort):
        raise ValueError(
            f"the explanation has {len(values)} patients but the cohort has {len(cohort)}; pass the "
            "cohort whose patients were explained, in the same order"
        )
    return cohort, values, features, classes


# --------------------------------------------------------------------------------------------
# The clue audit
# --------------------------------------------------------------------------------------------
@dataclass
class ClueAudit:
    """The result of :func:`audit_clues`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (class, column) that the knowledge base gives a role other than ``none``,
        failures included. Columns: ``calcification_type``, ``column``, ``role``, ``expected``
        ("toward" or "away"), ``test`` (what was compared), ``observed_effect``,
        ``n_present``/``n_absent`` (the two compared groups; NA for a rank correlation),
        ``n_recorded``, ``class_rate`` (share of the class's patients with the finding, or with
        a recorded value for a rank correlation), ``importance_rank`` (1 = the column with the
        largest mean |SHAP| for that class), ``passed`` (NA when untestable) and ``reason``
        (why a clue failed or could not be tested; empty for a pass).
    n_patients : int
        Patients whose explanations were audited.
    label_source : str
        "label" when classes of patients came from the cohort's ``calcification_type``,
        "predicted" when they had to be the model's predictions.
    """

    table: pd.DataFrame
    n_patients: int
    label_source: str = "label"
    meta: dict = field(default_factory=dict)

    @property
    def pass_rate(self) -> float:
        """Passed over testable clues, all classes together."""
        tested = self.table["passed"].dropna()
        return float(tested.astype(bool).mean()) if len(tested) else float("nan")

    def summary(self) -> pd.DataFrame:
        """Pass rate per class and overall: clues, testable, passed, failed, pass_rate."""
        t = self.table
        rows = []
        groups = [(k, t[t["calcification_type"] == k]) for k in dict.fromkeys(t["calcification_type"])]
        groups.append(("overall", t))
        for name, g in groups:
            tested = g["passed"].dropna().astype(bool)
            rows.append(
                {
                    "calcification_type": name,
                    "clues": int(len(g)),
                    "testable": int(len(tested)),
                    "passed": int(tested.sum()),
                    "failed": int((~tested).sum()),
                    "pass_rate": float(tested.mean()) if len(tested) else float("nan"),
                }
            )
        return pd.DataFrame(rows).set_index("calcification_type")

    def failures(self) -> pd.DataFrame:
        """The failing clues (passed is False) with their likely reasons."""
        t = self.table
        failed = t["passed"].fillna(True).astype(bool).eq(False)
        return t.loc[failed].reset_index(drop=True)

    def untestable(self) -> pd.DataFrame:
        """Clues that could not be tested (passed is NA), with why."""
        return self.table.loc[self.table["passed"].isna()].reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable record of the audit."""
        summary = self.summary().reset_index().to_dict(orient="records")
        table = self.table.astype(object).where(self.table.notna(), None).to_dict(orient="records")
        return _jsonable(
            {
                "n_patients": self.n_patients,
                "label_source": self.label_source,
                "pass_rate": self.pass_rate,
                "summary": summary,
                "table": table,
                "meta": self.meta,
            }
        )

    def __repr__(self) -> str:
        s = self.summary().loc["overall"]
        return (
            f"ClueAudit({int(s['clues'])} clues, {int(s['passed'])}/{int(s['testable'])} testable passed "
            f"({s['pass_rate']:.1%}), {self.n_patients} patients)"
        )


def _clue_feature(kind, expect, expect_range, x):
    """The clue's numeric view of a column (for correlations): NaN where not recorded."""
    if kind == "categorical":
        return x  # already an indicator of the expected level
    if expect == "within":
        lo, hi = expect_range
        return np.where(np.isnan(x), np.nan, ((x >= lo) & (x <= hi)).astype(float))
    return x


def audit_clues(
    model,
    cohort: pd.DataFrame,
    *,
    explanation=None,
    max_patients: int | None = 20_000,
    random_state=0,
    centred: bool = True,
) -> ClueAudit:
    """Check that the model's SHAP values move with the review's clues as the review says.

    Parameters
    ----------
    model : CalcificationModel
    cohort : pandas.DataFrame
        Patients in the input contract, normally with ``calcification_type`` (used for the
        per-class rarity and correlation checks; without it the model's predicted class is
        used).
    explanation : shap.Explanation, optional
        :func:`ml.explain` of exactly ``cohort``'s patients, in order. When not given, a seeded
        random subsample of at most ``max_patients`` patients is explained.
    max_patients : int, optional
        Size of the subsample to explain when ``explanation`` is None (None: all).
    random_state : int
        Seeds the subsample.
    centred : bool
        Audit the SHAP values centred across classes (each (patient, column) mean over classes
        subtracted) instead of the raw per-class values. A softmax booster's raw class scores
        are defined only up to a shift shared by all classes, so a raw per-class SHAP value
        mixes what a finding does to the odds of that class against the others with what it
        does to every class alike; the centred values keep only the former (they are on the
        scale of :func:`data_gen.weight_of_evidence`), so they are the default; ``centred=False``
        audits the raw values.

    Returns
    -------
    ClueAudit
        ``.table`` has one row per (class, column) with a role other than ``none``. For the
        SHAP values of that class, the observed effect is:

        * binary column: mean SHAP with the finding present minus absent (recorded patients);
          passes when its sign is the expected one (> 0 toward, < 0 away);
        * continuous, expect "higher"/"lower": Spearman correlation of value and SHAP over
          recorded patients; passes when positive for "higher" toward or "lower" away, and
          negative for "lower" toward or "higher" away;
        * continuous, expect "within" ``expect_range``: mean SHAP inside the range minus
          outside; passes when its sign is the expected one;
        * categorical (``zone``), expect a level: mean SHAP at that level minus at the other
          recorded levels; passes when its sign is the expected one;
        * continuous, expect "none": the rank correlation is reported, ``passed`` is NA.

        A failing clue's reason is, in this order: "too rare in the cohort" (a compared group
        under :data:`MIN_GROUP` patients, or the finding in under :data:`MIN_CLASS_RATE` of the
        class's patients); "shadowed by a correlated clue: <column>" (another clue of the same
        class with |Spearman| ≥ :data:`SHADOW_CORRELATION` to it among that class's patients,
        on pairwise recorded values, and a better importance rank); else "the model missed it".

    Examples
    --------
    >>> from data_gen import generate_cohort
    >>> from ml import train, audit_clues
    >>> df = generate_cohort(5000, random_state=0)
    >>> audit = audit_clues(train(df, max_iter=20), df, max_patients=1000)
    >>> bool(audit.summary().loc["overall", "clues"] >= 40)
    True
    """
    kb = model.knowledge
    cohort, values, features, classes = _explained(model, cohort, explanation, max_patients, random_state)
    if centred:
        values = values - values.mean(axis=2, keepdims=True)
    checked = model.check(cohort)
    n = len(checked)
    fpos = {c: i for i, c in enumerate(features)}
    kpos = {k: i for i, k in enumerate(classes)}

    if LABEL in cohort.columns and checked.get(LABEL) is not None and checked[LABEL].notna().all():
        labels = checked[LABEL].astype(str).to_numpy()
        label_source = "label"
    else:
        labels = np.asarray(model.predict(cohort).astype(str))
        label_source = "predicted"

    # importance rank of every column for every class: 1 = largest mean |SHAP|
    mean_abs = np.abs(values).mean(axis=0)  # (J, K)
    ranks = np.column_stack([rankdata(-mean_abs[:, k], method="min") for k in range(mean_abs.shape[1])]).astype(int)

    rows, feats = [], {}
    for k, col, role, expect in kb.roles():
        if col not in fpos or k not in kpos:
            raise ValueError(f"the explanation has no column {col!r} or class {k!r}")
        spec = kb.columns[col]
        cm = kb.classes[k].columns[col]
        s = values[:, fpos[col], kpos[k]]
        in_class = labels == k
        expected = "toward" if role in TOWARD_ROLES else "away"
        sign = 1.0 if expected == "toward" else -1.0
        row = {
            "calcification_type": k,
            "column": col,
            "role": role,
            "expected": expected,
            "n_present": pd.NA,
            "n_absent": pd.NA,
            "importance_rank": int(ranks[fpos[col], kpos[k]]),
            "passed": pd.NA,
            "reason": None,
        }
        if spec.kind == "categorical":
            codes = checked[col].astype("string")
            rec = codes.notna().to_numpy()
            x = np.where(rec, (codes == expect).fillna(False).to_numpy(), False)
            xf = np.where(rec, x.astype(float), np.nan)
            present, absent = rec & x, rec & ~x
            row["test"] = f"mean SHAP {col}={expect} - other levels"
            mode = "groups"
        else:
            xf = checked[col].to_numpy(dtype=float, na_value=np.nan)
            rec = ~np.isnan(xf)
            if spec.kind == "binary":
                present, absent = rec & (xf == 1), rec & (xf == 0)
                row["test"] = "mean SHAP present - absent"
                mode = "groups"
            elif expect == "within":
                lo, hi = cm.expect_range
                inside = rec & (xf >= lo) & (xf <= hi)
                present, absent = inside, rec & ~inside
                row["test"] = f"mean SHAP inside [{lo:g}, {hi:g}] - outside"
                mode = "groups"
            else:
                present = absent = None
                row["test"] = "Spearman(value, SHAP)" + (" (no direction stated)" if expect in (None, "none") else "")
                mode = "rank"
        row["n_recorded"] = int(rec.sum())
        n_class = int(in_class.sum())
        if mode == "groups":
            n_p, n_a = int(present.sum()), int(absent.sum())
            row["n_present"], row["n_absent"] = n_p, n_a
            effect = float(s[present].mean() - s[absent].mean()) if n_p and n_a else float("nan")
            n_class_rec = int((in_class & rec).sum())
            rate = float((in_class & present).sum() / n_class_rec) if n_class_rec else float("nan")
            rare = min(n_p, n_a) < MIN_GROUP
        else:
            effect = _rank_corr(xf[rec], s[rec])
            if rec.sum() >= 2 and not math.isfinite(effect):
                effect = 0.0  # SHAP (or the value) constant: the model did not use the column
            rate = float((in_class & rec).sum() / n_class) if n_class else float("nan")
            rare = int(rec.sum()) < MIN_GROUP
            if expect == "lower":
                sign = -sign
        row["observed_effect"] = effect
        row["class_rate"] = rate
        rare = rare or not (rate >= MIN_CLASS_RATE)
        feats.setdefault(k, {})[col] = _clue_feature(spec.kind, expect, cm.expect_range, xf)
        if expect == "none" and spec.kind != "categorical":
            row["reason"] = REASON_NO_DIRECTION
        elif not math.isfinite(effect):
            row["reason"] = REASON_RARE  # one compared group is empty: untestable
        else:
            row["passed"] = bool(sign * effect > 0)
            row["_rare"] = rare
        rows.append(row)

    # reasons for failures: rare, shadowed, missed (in that order)
    corr_cache: dict[str, pd.DataFrame] = {}
    for row in rows:
        rare = row.pop("_rare", None)
        if row["passed"] is not False:
            continue
        if rare:
            row["reason"] = REASON_RARE
            continue
        k = row["calcification_type"]
        if k not in corr_cache:
            in_class = labels == k
            frame = pd.DataFrame({c: v[in_class] for c, v in feats[k].items()})
            corr_cache[k] = frame.corr(method="spearman", min_periods=MIN_GROUP)
        corr = corr_cache[k]
        shadows = []
        for other in rows:
            oc = other["column"]
            if other["calcification_type"] != k or oc == row["column"]:
                continue
            r = corr.at[row["column"], oc] if row["column"] in corr.index and oc in corr.columns else np.nan
            if np.isfinite(r) and abs(r) >= SHADOW_CORRELATION and other["importance_rank"] < row["importance_rank"]:
                shadows.append((abs(r), -other["importance_rank"], oc))
        row["reason"] = REASON_SHADOWED.format(max(shadows)[2]) if shadows else REASON_MISSED

    table = pd.DataFrame(rows)[_TABLE_COLUMNS]
    table["passed"] = table["passed"].astype("boolean")
    for c in ("n_present", "n_absent", "n_recorded", "importance_rank"):
        table[c] = table[c].astype("Int64")
    table["observed_effect"] = table["observed_effect"].astype(float)
    table["class_rate"] = table["class_rate"].astype(float)
    meta = {
        "min_group": MIN_GROUP,
        "min_class_rate": MIN_CLASS_RATE,
        "shadow_correlation": SHADOW_CORRELATION,
        "knowledge_sha256": kb.sha256,
        "shap": "centred across classes" if centred else "raw per-class log-odds",
    }
    return ClueAudit(table=table, n_patients=n, label_source=label_source, meta=meta)


# --------------------------------------------------------------------------------------------
