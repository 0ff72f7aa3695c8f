"""data_gen.contract: what users' frames look like in practice, read or refused by name.

Partial column sets, text normalization, rows counted from 1, every bad cell at once, lab values
in another unit, and frames that are not pandas.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from data_gen import ContractError, ContractWarning, paper_cases, validate_frame
from data_gen.contract import MAX_PROBLEMS


def _quiet(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ContractWarning)
        return validate_frame(df, **kw)


def test_absent_columns_are_not_recorded_with_one_notice(kb):
    df = pd.DataFrame({"age_years": [40.0], "zone": ["upper"], "calcified_nodules": [1]})
    with pytest.warns(ContractWarning) as record:
        got = validate_frame(df)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("49 of 52 contract columns are absent and read as not recorded: sex, pack_years,")
    assert list(got.columns) == list(kb.column_names)
    assert got.drop(columns=["age_years", "zone", "calcified_nodules"]).isna().all().all()
    # the same as if the absent columns were there and empty
    full = pd.DataFrame({c: [np.nan] for c in kb.column_names}).assign(age_years=40.0, zone="upper", calcified_nodules=1)
    pd.testing.assert_frame_equal(got, validate_frame(full))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_frame(df, notice=False)


def test_unknown_columns_stay_refused_with_a_hint():
    with pytest.raises(ContractError, match=r"unknown column 'serum_calcium' \(did you mean 'serum_calcium_mg_dl'\?\)"):
        _quiet(pd.DataFrame({"age_years": [40.0], "serum_calcium": [9.8]}))


def test_text_is_normalized_alike_in_every_column_kind(kb):
    df = pd.DataFrame({"sex": [" Male", "female ", "FEMALE"], "zone": ["upper ", " Lower", "DIFFUSE"],
                       "on_dialysis": [" 1 ", "TRUE", " false"], "age_years": [" 40 ", "50", "60"]})
    got = _quiet(df)
    assert got["sex"].tolist() == ["male", "female", "female"]
    assert got["zone"].tolist() == ["upper", "lower", "diffuse"]
    assert got["on_dialysis"].tolist() == [1, 1, 0]
    assert got["age_years"].tolist() == [40.0, 50.0, 60.0]
    with pytest.raises(ContractError, match=r"column 'sex': row 1 has value 'M '"):
        _quiet(pd.DataFrame({"sex": ["M "]}))


def test_rows_count_from_1_for_a_default_index_and_keep_other_labels():
    df = pd.DataFrame({"zone": ["upper", "middle"]})
    with pytest.raises(ContractError, match=r"column 'zone': row 2 has value 'middle'"):
        _quiet(df)
    with pytest.raises(ContractError, match=r"column 'zone': row 'b' has value 'middle'"):
        _quiet(df.set_axis(["a", "b"]))
    with pytest.raises(ContractError, match=r"row 11 has"):
        _quiet(df.set_axis([10, 11]))


def test_every_bad_cell_is_reported_at_once_up_to_a_cap(kb):
    df = pd.DataFrame({"age_years": ["old"], "zone": ["middle"], "on_dialysis": ["yes"]})
    with pytest.raises(ContractError) as info:
        _quiet(df)
    assert str(info.value).startswith("3 problems in the input: (1) column 'age_years': row 1 has value 'old'")
    assert len(info.value.problems) == 3
    binary = [c for c, s in kb.columns.items() if s.kind == "binary"]
    many = pd.DataFrame({c: [2] for c in binary[: MAX_PROBLEMS + 3]})
    with pytest.raises(ContractError) as info:
        _quiet(many)
    assert str(info.value).startswith(f"{MAX_PROBLEMS + 3} problems in the input:")
    assert str(info.value).endswith("; and 3 more problems")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "column, value, factor, converted",
    [("serum_calcium_mg_dl", 2.35, "4.008", "9.42 mg/dL"), ("serum_phosphate_mg_dl", 0.9, "3.097", "2.79 mg/dL"),
     ("pth_pg_ml", 0.3, "9.43", "2.83 pg/mL")],
)
def test_lab_values_in_the_other_unit_are_refused_with_the_conversion(column, value, factor, converted):
    with pytest.raises(ContractError, match=rf"column '{column}': row 1 has value {value}, implausible .* multiply by {factor} .*= {converted}"):
        _quiet(pd.DataFrame({column: [value]}))


def test_plausible_lab_values_pass_and_implausible_ones_are_refused_plainly(kb):
    spec = kb.columns["serum_calcium_mg_dl"]
    ok = _quiet(pd.DataFrame({"serum_calcium_mg_dl": [spec.plausible_min, 9.6, spec.plausible_max, np.nan]}))
    assert ok["serum_calcium_mg_dl"].notna().sum() == 3
    with pytest.raises(ContractError) as info:
        _quiet(pd.DataFrame({"serum_calcium_mg_dl": [45.0]}))
    assert "implausible" not in str(info.value) and "allowed: 4 to 30 mg/dL" in str(info.value)


def test_every_lab_column_declares_a_sourced_plausible_range_and_other_unit(kb):
    labs = [c for c, s in kb.columns.items() if s.group == "laboratory"]
    assert labs
    for c in labs:
        s = kb.columns[c]
        assert s.plausible_min is not None and s.plausible_max is not None and s.plausible_source is not None
        assert s.alt_unit and s.alt_factor > 0 and s.alt_source is not None


def test_generated_cohorts_stay_within_the_plausible_ranges(kb):
    from data_gen import generate_cohort

    cohort = generate_cohort(50_000, random_state=3)
    for c, s in kb.columns.items():
        if s.plausible_min is not None:
            x = cohort[c].dropna()
            assert ((x >= s.plausible_min) & (x <= s.plausible_max)).all(), c


def test_frames_that_are_not_pandas_are_converted(kb):
    pa = pytest.importorskip("pyarrow")
    cases = paper_cases().drop(columns=["calcification_type"]).reset_index(drop=True)
    expected = validate_frame(cases)
    table = pa.Table.from_pandas(cases, preserve_index=False)
    pd.testing.assert_frame_equal(validate_frame(table), expected, check_index_type=False)

    class Interchange:  # only the dataframe interchange protocol
        def __dataframe__(self, nan_as_null=False, allow_copy=True):
            return table.__dataframe__(nan_as_null, allow_copy)

    pd.testing.assert_frame_equal(validate_frame(Interchange()), expected, check_index_type=False)


def test_polars_frames_are_converted():
    pl = pytest.importorskip("polars")
    got = _quiet(pl.DataFrame({"age_years": [40.0], "sex": ["male"]}))
    assert got.loc[0, "sex"] == "male"


def test_other_objects_are_refused_naming_module_and_conversion():
    with pytest.raises(ContractError, match=r"expected a DataFrame of patients \(pandas, polars, pyarrow\), got builtins\.dict; pass a pandas\.DataFrame"):
        validate_frame({"age_years": [40]})
    with pytest.raises(ContractError, match=r"got numpy\.ndarray"):
        validate_frame(np.zeros((2, 3)))


def test_a_series_is_refused_before_conversion_with_the_one_row_spelling():
    row = paper_cases().drop(columns="calcification_type").iloc[0]
    # a Series has an Arrow stream too: without the early check Arrow failed on 'male' in a float column
    with pytest.raises(ContractError, match=r"got a pandas Series \(52 values\); pass series\.to_frame\(\)\.T if it is one patient.s row"):
        validate_frame(row)
    one = validate_frame(row.to_frame().T)
    assert len(one) == 1 and one.iloc[0]["sex"] == row["sex"]
