"""data_gen.contract_fast: the vectorized check gives the detailed check's frames, and gives up
(leaving the detailed messages) on anything the contract refuses or that it does not expect."""

import warnings
from unittest import mock

import numpy as np
import pandas as pd
import pytest

import data_gen.contract as contract
from data_gen import LABEL, ContractError, generate_cohort, load_knowledge, validate_frame
from data_gen.contract_fast import fast_columns

KB = load_knowledge()
BINARY, CATEGORICAL, CONTINUOUS = list(KB.cells.binary), list(KB.cells.categorical), list(KB.cells.continuous)


def _detailed(df, **kw):
    with mock.patch.object(contract, "_FAST", False):
        return validate_frame(df, **kw)


def _takes_fast_path(df) -> bool:
    names = [str(c) for c in df.columns]
    return fast_columns(df, KB, names, [c for c in KB.column_names if c not in names]) is not None


def _same(df, fast_expected=True, **kw):
    """Both paths give the same frame (values, dtypes, index, column order) and the same warnings."""
    assert _takes_fast_path(df) is fast_expected
    with warnings.catch_warnings(record=True) as w_fast:
        warnings.simplefilter("always")
        fast = validate_frame(df, **kw)
    with warnings.catch_warnings(record=True) as w_slow:
        warnings.simplefilter("always")
        slow = _detailed(df, **kw)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert [str(w.message) for w in w_fast] == [str(w.message) for w in w_slow]
    return fast


def _as_typed(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The same patients with the dtypes programs and CSV readers produce, chosen per column."""
    out = {}
    for c in df.columns:
        s = df[c]
        if c in BINARY:
            kind = rng.integers(4)
            if kind == 0:
                s = s.astype(float)
            elif kind == 1:
                s = s.astype("Int64")
            elif kind == 2 and not s.isna().any():
                s = s.astype(bool) if rng.integers(2) else s.astype(np.int64)
            else:
                s = s.astype("boolean")
        elif c in CATEGORICAL:
            s = [s.astype(object), s.astype(str if not s.isna().any() else object), s][rng.integers(3)]
        elif c in CONTINUOUS and rng.integers(2):
            s = s.astype("Float64")
        out[c] = s
    return pd.DataFrame(out, index=df.index)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("recording", [None, 0.4, "case_report"])
def test_generated_cohorts_with_blanks_give_identical_frames(seed, recording):
    df = generate_cohort(int(np.random.default_rng(seed).integers(1, 400)), random_state=seed, recording=recording)
    _same(df)
    _same(df.drop(columns=[LABEL]).iloc[:1])
    typed = _as_typed(df, np.random.default_rng(seed))
    _same(typed)
    # absent columns, an id column, the label required
    rng = np.random.default_rng(seed + 100)
    dropped = list(rng.choice(KB.column_names, size=5, replace=False))
    _same(typed.drop(columns=dropped).assign(pid=np.arange(len(df)) + 7), id_column="pid", label="required")


def test_a_frame_built_by_hand_with_numpy_dtypes():
    rng = np.random.default_rng(0)
    n = 50
    data = {c: rng.integers(0, 2, n).astype(rng.choice(["int8", "int64", "uint8", "float32", "bool"])) for c in BINARY}
    data.update({c: rng.choice(list(KB.columns[c].levels) + [None], n) for c in CATEGORICAL})
    for c in CONTINUOUS:
        spec = KB.columns[c]
        lo = spec.plausible_min if spec.plausible_min is not None else (spec.min or 0.0)
        hi = spec.plausible_max if spec.plausible_max is not None else lo + 100
        x = rng.uniform(lo, hi, n)
        x[rng.random(n) < 0.3] = np.nan
        data[c] = x
    out = _same(pd.DataFrame(data))
    assert all(str(out[c].dtype) == "Int8" for c in BINARY)
    assert all(out[c].dtype == float for c in CONTINUOUS)


def _one_patient(**values):
    row = generate_cohort(1, random_state=4).drop(columns=[LABEL]).astype({c: float for c in BINARY})
    for c, v in values.items():
        row[c] = row[c].astype(object) if isinstance(v, str) else row[c]
        row.loc[0, c] = v
    return row


@pytest.mark.parametrize(
    "values",
    [
        {"chronic_kidney_disease": 2.0},  # not 0/1
        {"on_dialysis": -1.0, "sarcoidosis": 0.5},  # two bad binary columns: both reported
        {"lesion_size_mm": -3.0},  # below the contract's range
        {"serum_calcium_mg_dl": 2.35},  # mmol/L: the message gives the conversion
        {"pth_pg_ml": float("inf")},
        {"zone": "middle"},  # not a level
    ],
)
def test_refused_values_leave_the_detailed_message(values):
    df = _one_patient(**values)
    assert not _takes_fast_path(df)
    with pytest.raises(ContractError) as fast:
        validate_frame(df)
    with pytest.raises(ContractError) as slow:
        _detailed(df)
    assert str(fast.value) == str(slow.value)
    assert fast.value.problems == slow.value.problems
    assert all(c in str(fast.value) for c in values)


@pytest.mark.parametrize(
    "values",
    [
        {"chronic_kidney_disease": "true", "on_dialysis": " 0 "},  # text in a binary column
        {"zone": " Upper", "sex": "FEMALE"},  # case and spaces of a level
        {"age_years": "61"},  # a number as text
    ],
)
def test_unusual_but_accepted_values_go_the_detailed_way(values):
    _same(_one_patient(**values), fast_expected=False)


def test_a_categorical_with_other_categories_goes_the_detailed_way():
    df = _one_patient()
    df["zone"] = pd.Categorical(["upper"], categories=["upper", "lower", "diffuse", "other"])
    _same(df, fast_expected=False)
    df["zone"] = pd.Categorical(["lower"], categories=list(KB.columns["zone"].levels), ordered=True)
    assert _same(df)["zone"].cat.ordered
