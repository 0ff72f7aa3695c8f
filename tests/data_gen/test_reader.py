"""data_gen.reader: every supported dialect reads back the same patients; malformed files are refused.

The round trip is a hypothesis test: random valid patients (a generated cohort with random
cells blanked, random absent columns, columns in random order) are written through every
supported dialect — comma or semicolon separator, decimal point or comma, with or without a
byte-order mark, LF or CRLF, quoted or not — and read back to the identical canonical frame.
The same file with one extra field in one row is refused, naming that line.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_gen import ContractError, ContractWarning, generate_cohort, read_patients, validate_frame
from data_gen.reader import sniff_dialect

FAILING = Path(__file__).resolve().parents[3] / "shared" / "reference" / "failing-inputs"
POOL = generate_cohort(400, random_state=5).drop(columns=["calcification_type"])


def _text(df: pd.DataFrame, *, sep: str, decimal: str, quote: bool, crlf: bool) -> str:
    """The frame as a spreadsheet would write it in this dialect (empty cell = not recorded)."""
    cells = df.astype(object).where(df.notna(), "")
    rows = [list(df.columns)]
    for rec in cells.itertuples(index=False):
        row = []
        for v in rec:
            if isinstance(v, float):
                v = repr(v).replace(".", decimal) if not float(v).is_integer() else str(int(v))
            row.append(str(v))
        rows.append(row)
    out = io.StringIO()
    csv.writer(out, delimiter=sep, quoting=csv.QUOTE_ALL if quote else csv.QUOTE_MINIMAL,
               lineterminator="\r\n" if crlf else "\n").writerows(rows)
    return out.getvalue()


def _write(path: Path, text: str, bom: bool) -> Path:
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


@st.composite
def patients_and_dialect(draw):
    n = draw(st.integers(1, 6))
    start = draw(st.integers(0, len(POOL) - n))
    df = POOL.iloc[start:start + n].reset_index(drop=True)
    cols = list(df.columns)
    absent = draw(st.sets(st.sampled_from(cols), max_size=len(cols) - 1))
    order = draw(st.permutations([c for c in cols if c not in absent]))
    df = df[list(order)].copy()
    blank = draw(st.lists(st.booleans(), min_size=n * len(order), max_size=n * len(order)))
    mask = np.array(blank).reshape(n, len(order))
    for j, c in enumerate(order):
        df.loc[mask[:, j], c] = np.nan if df[c].dtype.kind == "f" else pd.NA
    dialect = draw(st.sampled_from([(",", "."), (";", "."), (";", ","), ("\t", "."), ("\t", ",")]))
    return df, dialect, draw(st.booleans()), draw(st.booleans()), draw(st.booleans())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=patients_and_dialect())
def test_every_dialect_reads_back_the_identical_canonical_frame(case, tmp_path):
    df, (sep, decimal), bom, crlf, quote = case
    expected = validate_frame(df.set_axis(pd.RangeIndex(1, len(df) + 1, name="patient")), notice=False)
    path = _write(tmp_path / "p.csv", _text(df, sep=sep, decimal=decimal, quote=quote, crlf=crlf), bom)
    has_decimals = any(df[c].dtype.kind == "f" and (df[c].dropna() % 1 != 0).any() for c in df.columns)
    # a comma-separated file has decimal points; elsewhere a file with no fractions at all gives
    # the decimal mark no way to show, so it is read either way
    given_decimal = decimal if sep == "," or has_decimals else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ContractWarning)
        got = read_patients(path, decimal=given_decimal if given_decimal != "." or sep != "," else None)
        auto = read_patients(path)  # the dialect read off the file alone
    pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(auto, expected)

    # one extra field in one row shifts nothing: the file is refused, naming the line
    lines = path.read_bytes().decode("utf-8-sig").splitlines(keepends=True)
    r = len(lines) - 1
    eol = "\r\n" if crlf else "\n"
    lines[r] = lines[r].rstrip("\r\n") + sep + "1" + eol
    bad = _write(tmp_path / "bad.csv", "".join(lines), bom)
    with pytest.raises(ContractError, match=rf"line {r + 1} has {len(df.columns) + 1} fields but the header has {len(df.columns)}"):
        read_patients(bad, decimal=given_decimal if sep != "," else None)


def test_the_shifted_row_files_of_the_issue_are_refused():
    for name in ("02c_unquoted_decimal_comma_sparse.csv", "02d_trailing_delimiter.csv"):
        path = FAILING / name
        if not path.exists():
            pytest.skip("shared/reference/failing-inputs is not available")
        with pytest.raises(ContractError, match=r"line 2 has 53 fields but the header has 52"):
            read_patients(path)
    reference = read_patients(FAILING / "02c_reference_decimal_point.csv")
    assert reference.loc[1, "age_years"] == 34


def test_calcium_in_mmol_per_l_from_the_issue_is_refused_with_the_conversion():
    path = FAILING / "08_calcium_in_mmol_per_l.csv"
    if not path.exists():
        pytest.skip("shared/reference/failing-inputs is not available")
    with pytest.raises(ContractError, match=r"row 1 has value 2\.35, implausible in mg/dL .* multiply by 4\.008 .*= 9\.42 mg/dL"):
        read_patients(path)


def test_semicolon_and_decimal_comma_are_read_as_numbers(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("age_years;serum_calcium_mg_dl;lesion_size_mm;sex\n58;9,8;0,4;Male \n", encoding="utf-8")
    d = sniff_dialect(path)
    assert (d.sep, d.decimal) == (";", ",")
    with pytest.warns(ContractWarning, match=r"48 of 52 contract columns are absent"):
        got = read_patients(path)
    assert got.loc[1, ["age_years", "serum_calcium_mg_dl", "lesion_size_mm"]].tolist() == [58.0, 9.8, 0.4]
    assert got.loc[1, "sex"] == "male"


def test_a_point_in_a_decimal_comma_file_is_refused_not_guessed(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("age_years;pth_pg_ml\n58;1.234\n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"column 'pth_pg_ml': row 1 has value '1.234', a decimal point .* read with decimal commas"):
        read_patients(path, decimal=",")


def test_options_are_checked(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("age_years\n40\n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"separator '\|' is not supported"):
        read_patients(path, sep="|")
    with pytest.raises(ContractError, match=r"cannot both be ','"):
        read_patients(path, sep=",", decimal=",")
    with pytest.raises(ContractError, match=r"unknown encoding 'klingon'"):
        read_patients(path, encoding="klingon")


def test_a_legacy_encoding_is_read_when_named(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes("age_years,sex\n40,Female\n# é\n".replace("# é\n", "").encode("cp1252") + "41,male\n".encode("cp1252"))
    assert read_patients(path, encoding="cp1252")["sex"].tolist() == ["female", "male"]
    path.write_bytes("age_years,sex\n40,féminin\n".encode("cp1252"))
    with pytest.raises(ContractError, match=r"line 2 \(byte 0xe9\) is not UTF-8 .* --encoding cp1252"):
        read_patients(path)
    with pytest.raises(ContractError, match=r"column 'sex': row 1 has value 'féminin'"):
        read_patients(path, encoding="cp1252")


def test_the_absent_column_notice_comes_once_per_file(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("age_years,zone\n" + "40,upper\n" * 25, encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from data_gen import iter_patients

        chunks = list(iter_patients(path, chunksize=10))
    assert len(chunks) == 3
    notices = [w for w in caught if issubclass(w.category, ContractWarning)]
    assert len(notices) == 1 and "50 of 52 contract columns are absent" in str(notices[0].message)


def test_identifiers_are_kept_as_written_and_must_be_unique(tmp_path):
    from data_gen import read_patients

    path = tmp_path / "ids.csv"
    path.write_text("case_id,age_years,sex\n007,40,female\n1e3,50,male\n08,60,female\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(read_patients(path, id_column="case_id").index) == ["007", "1e3", "08"]
        path.write_text("case_id,age_years,sex\na,40,female\nb,50,male\na,60,female\n", encoding="utf-8")
        with pytest.raises(ContractError, match=r"column 'case_id' \(the identifier\): value 'a' is repeated \(rows 1, 3\)"):
            read_patients(path, id_column="case_id")
        path.write_text("case_id,age_years,sex\na,40,female\n,50,male\n", encoding="utf-8")
        with pytest.raises(ContractError, match=r"column 'case_id' \(the identifier\): row 2 has no identifier"):
            read_patients(path, id_column="case_id")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_repeated_identifier_is_refused_across_chunks_with_the_files_row(tmp_path, suffix):
    from data_gen import iter_patients

    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"case_id": list("abcdefg"), "age_years": [40.0] * 7})
    path = tmp_path / f"ids{suffix}"
    write = {".csv": lambda p: frame.to_csv(p, index=False), ".parquet": lambda p: frame.to_parquet(p, index=False)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write[suffix](path)
        assert sum(len(c) for c in iter_patients(path, id_column="case_id", chunksize=2)) == 7
        # 'b' again in row 6, three chunks later: each chunk alone has no repeat
        frame.loc[5, "case_id"] = "b"
        write[suffix](path)
        with pytest.raises(ContractError, match=r"value 'b' at row 6 repeats an earlier row's"):
            list(iter_patients(path, id_column="case_id", chunksize=2))
        # a repeat inside a later chunk names the file's rows, not the chunk's
        frame.loc[5, "case_id"] = "e"
        write[suffix](path)
        with pytest.raises(ContractError, match=r"value 'e' is repeated \(rows 5, 6\)"):
            list(iter_patients(path, id_column="case_id", chunksize=3))
