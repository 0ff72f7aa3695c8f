"""Property-based tests (hypothesis) of the input contract and the model behind it.

* Random valid patients (any mix of NaN and valid values of every contract column, in any of
  the representations the contract accepts) always get probabilities that are finite and sum
  to 1.
* Random invalid frames (one corruption of a valid frame) always raise ``ContractError`` (a
  ``ValueError``) naming what is wrong, never another exception.

The runs are derandomized (the same examples every time) and the example database is off, so
the tests neither flake nor write files.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from data_gen import ContractError, generate_cohort, load_knowledge, validate_frame
from ml import train

KB = load_knowledge()
SETTINGS = settings(
    max_examples=50,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NOT_RECORDED = st.sampled_from([np.nan, None, ""])
BIG = 1e9  # upper end of the open-ended ranges (pack-years, lab values, sizes)


@pytest.fixture(scope="module")
def model():
    with threadpool_limits(1):
        return train(generate_cohort(3000, random_state=0), random_state=0, max_iter=10)


# --------------------------------------------------------------------------------------------
# Valid values, per column, from the knowledge base's contract
# --------------------------------------------------------------------------------------------
def _in_range(spec) -> st.SearchStrategy[float]:
    lo = float(spec.min) if spec.min is not None else -BIG
    hi = float(spec.max) if spec.max is not None else BIG
    if spec.plausible_min is not None or spec.plausible_max is not None:  # lab values: their plausible range
        lo = max(lo, spec.plausible_min if spec.plausible_min is not None else lo)
        hi = min(hi, spec.plausible_max if spec.plausible_max is not None else hi)
    return st.floats(lo, hi, exclude_min=spec.min_exclusive, allow_nan=False, allow_infinity=False).filter(
        lambda v: v > spec.min if spec.min_exclusive else True
    )


def valid_value(spec) -> st.SearchStrategy:
    if spec.kind == "binary":
        recorded = st.sampled_from([0, 1, 0.0, 1.0, True, False, np.True_, "true", "FALSE", " True ", "0", "1"])
    elif spec.kind == "categorical":
        recorded = st.sampled_from(list(spec.levels))
    else:
        number = _in_range(spec)
        recorded = number | number.map(repr) | number.filter(lambda v: v.is_integer()).map(int)
    return st.one_of(NOT_RECORDED, recorded)


@st.composite
def valid_frames(draw, max_rows: int = 12, partial: bool = True) -> pd.DataFrame:
    n = draw(st.integers(1, max_rows))
    columns = {}
    for name, spec in KB.columns.items():
        style = draw(st.sampled_from(["empty", "mixed", "typed"]))
        if style == "empty":
            columns[name] = [np.nan] * n
        elif style == "typed" and spec.kind != "categorical":
            # a float column, as a CSV reader gives: values or NaN
            number = st.sampled_from([0.0, 1.0]) if spec.kind == "binary" else _in_range(spec)
            columns[name] = pd.array(draw(st.lists(st.one_of(st.just(np.nan), number), min_size=n, max_size=n)), dtype="float64")
        else:
            columns[name] = pd.array(draw(st.lists(valid_value(spec), min_size=n, max_size=n)), dtype=object)
    order = draw(st.permutations(list(KB.column_names)))  # any column order
    keep = draw(st.integers(1, len(order))) if partial else len(order)  # any subset: absent = not recorded
    return pd.DataFrame(columns)[list(order)[:keep]]


ALL_EMPTY = pd.DataFrame({c: [np.nan, np.nan] for c in KB.column_names})


@SETTINGS
@given(df=valid_frames())
@example(df=ALL_EMPTY)
@example(df=pd.DataFrame({c: ["", " "] for c in KB.column_names}))
def test_valid_patients_get_finite_probabilities_summing_to_one(model, df):
    with threadpool_limits(1):
        proba = model.predict_proba(df)
    assert list(proba.columns) == list(KB.class_names)
    assert proba.index.equals(df.index)
    p = proba.to_numpy()
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------------------------
# Invalid frames: one corruption of a valid frame
# --------------------------------------------------------------------------------------------
CONTINUOUS = [c for c, s in KB.columns.items() if s.kind == "continuous"]
BINARY = [c for c, s in KB.columns.items() if s.kind == "binary"]
CATEGORICAL = [c for c, s in KB.columns.items() if s.kind == "categorical"]
_NUMBER_WORDS = {"nan", "inf", "infinity", "true", "false"}


def _not_a_number(text: str) -> bool:
    t = text.strip()
    if not t or t.lower().lstrip("+-") in _NUMBER_WORDS:
        return False
    try:
        float(t)
    except ValueError:
        converted = pd.to_numeric(pd.Series([t], dtype=object), errors="coerce").iloc[0]
        return bool(pd.isna(converted))
    return False


TEXT = st.text(min_size=1, max_size=12).filter(_not_a_number)
ODD_OBJECTS = st.sampled_from([[1], {"a": 1}, (0, 1), b"1", complex(1, 2), object(), pd.Timestamp("2020-01-01")])


def out_of_range(spec) -> st.SearchStrategy[float]:
    below = st.floats(max_value=float(spec.min), allow_nan=False, allow_infinity=False)
    below = below.filter(lambda v: v <= spec.min if spec.min_exclusive else v < spec.min)
    options = [below, st.sampled_from([math.inf, -math.inf])]
    if spec.max is not None:
        options.append(st.floats(min_value=float(spec.max), allow_nan=False).filter(lambda v: v > spec.max))
    return st.one_of(options)


@st.composite
def corrupted_cell(draw, df: pd.DataFrame):
    kind = draw(st.sampled_from(["range", "binary_value", "level", "text", "bool_in_continuous", "object"]))
    if kind == "range":
        col = draw(st.sampled_from(CONTINUOUS))
        value = draw(out_of_range(KB.columns[col]))
    elif kind == "binary_value":
        col = draw(st.sampled_from(BINARY))
        value = draw(st.one_of(st.integers(), st.floats(allow_nan=False)).filter(lambda v: v not in (0, 1)))
    elif kind == "level":
        col = draw(st.sampled_from(CATEGORICAL))
        folded = {lv.casefold() for lv in KB.columns[col].levels}  # the case and spaces of a level do not matter
        value = draw(st.text(min_size=1, max_size=12).filter(lambda v: v.strip() and v.strip().casefold() not in folded))
    elif kind == "text":
        col = draw(st.sampled_from(CONTINUOUS + BINARY))
        value = draw(TEXT)
    elif kind == "bool_in_continuous":
        col = draw(st.sampled_from(CONTINUOUS))
        value = draw(st.sampled_from([True, False, np.True_, np.False_]))
    else:
        col = draw(st.sampled_from(list(KB.column_names)))
        value = draw(ODD_OBJECTS)
    row = draw(st.integers(0, len(df) - 1))
    out = df.copy()
    out[col] = out[col].astype(object)
    out.iat[row, out.columns.get_loc(col)] = value
    return out, col


@st.composite
def corrupted_columns(draw, df: pd.DataFrame):
    kind = draw(st.sampled_from(["rename", "duplicate", "bool_column"]))  # a dropped column is not recorded
    col = draw(st.sampled_from(list(df.columns)))
    if kind == "rename":  # an unknown column, named in the message
        name = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=20)
        new = draw(name.filter(lambda v: v not in KB.columns and v != "calcification_type"))
        return df.rename(columns={col: new}), new
    if kind == "duplicate":
        return pd.concat([df, df[[col]]], axis=1), col
    col = draw(st.sampled_from(CONTINUOUS))
    out = df.copy()
    out[col] = draw(st.lists(st.booleans(), min_size=len(df), max_size=len(df)))
    return out, col


@st.composite
def invalid_frames(draw):
    df = draw(valid_frames(max_rows=5, partial=False))
    corrupt = corrupted_cell(df) | corrupted_columns(df)
    return draw(corrupt)


@SETTINGS
@given(case=invalid_frames())
def test_invalid_frames_always_raise_the_contract_error(model, case):
    df, col = case
    for call in (validate_frame, model.predict_proba):
        with pytest.raises(ContractError) as info:  # any other exception fails the test
            call(df)
        assert isinstance(info.value, ValueError)
        message = str(info.value)
        assert col in message, message  # the column is named
        assert "\n" not in message  # one line, as the CLI prints it
