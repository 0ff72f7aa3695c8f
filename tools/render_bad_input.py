"""Write docs/bad-input.md: each bad input tried, and the exact message pulmocalc refuses it with.

Every case starts from ``data_gen/paper_cases.csv`` (the review's three cases) without its
``case_id`` column, saved as ``patients.csv``, and changes one thing. Frame-level cases are read
as the CLI reads them and passed to :func:`data_gen.validate_frame`; file-level cases (a
duplicated header, an empty file) go through :func:`data_gen.read_patients`, which calls it.

``tests/ml/test_bad_input.py`` imports :data:`CASES` from here, checks that docs/bad-input.md
equals :func:`render`, and that the API and every CLI subcommand give exactly these messages.

Usage::

    python tools/render_bad_input.py            # rewrite docs/bad-input.md
    python tools/render_bad_input.py --check    # exit 1 if docs/bad-input.md is out of date
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from data_gen import ContractError, read_patients, validate_frame  # noqa: E402
from data_gen.cases import PAPER_CASES_PATH  # noqa: E402

DOC_PATH = ROOT / "docs" / "bad-input.md"
FILE_NAME = "patients.csv"


def base_table() -> pd.DataFrame:
    """The review's three cases as text cells, without ``case_id`` (rows 1 to 3 of the file)."""
    df = pd.read_csv(PAPER_CASES_PATH, dtype=str, keep_default_na=False)
    return df.drop(columns=["case_id"])


def to_csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, lineterminator="\n")


def read_frame(text: str) -> pd.DataFrame:
    """A CSV text read as ``iter_patients`` reads it: empty cells NaN, rows numbered from 1."""
    df = pd.read_csv(io.StringIO(text), na_values=[""], keep_default_na=False, low_memory=False)
    df.index = pd.RangeIndex(1, len(df) + 1, name="row")
    return df


def _set(column: str, rows, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for r in [rows] if isinstance(rows, int) else rows:
            df.loc[r - 1, column] = value  # file row r is data row r - 1
        return df

    return edit


@dataclass(frozen=True)
class BadInput:
    """One bad input: how it is built and what its message must name.

    ``names`` are fragments the message must contain: the column, the row(s), the value(s) and
    what is allowed (whichever apply). ``file_text`` replaces the file for file-level cases;
    ``api_frame`` is then the closest DataFrame a Python user could pass, and ``api_names``
    what its message must contain.
    """

    name: str
    tried: str
    names: tuple[str, ...]
    edit: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    file_text: Callable[[], str] | None = None
    api_frame: Callable[[], pd.DataFrame] | None = None
    api_names: tuple[str, ...] = field(default=())
    encoding: str = "utf-8"

    @property
    def file_level(self) -> bool:
        return self.file_text is not None

    @property
    def has_frame(self) -> bool:
        """Whether a DataFrame shows the same problem (not so for a file's bytes or fields)."""
        return not self.file_level or self.api_frame is not None

    def csv_text(self) -> str:
        if self.file_text is not None:
            return self.file_text()
        return to_csv_text(self.edit(base_table()))

    def write(self, directory: Path) -> Path:
        path = Path(directory) / FILE_NAME
        path.write_bytes(self.csv_text().encode(self.encoding))
        return path

    def frame(self) -> pd.DataFrame:
        """The DataFrame the API is given: the file as read, or ``api_frame`` for file-level cases."""
        if not self.has_frame:
            raise ValueError(f"bad input {self.name!r} is a file's problem; no DataFrame shows it")
        return self.api_frame() if self.file_level else read_frame(self.csv_text())

    def message(self) -> str:
        """The exact message: validate_frame on the frame, or read_patients on the file."""
        try:
            if self.file_level or self.encoding != "utf-8":
                with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
                    self.write(Path(tmp))
                    read_patients(FILE_NAME)
            else:
                validate_frame(self.frame())
        except ContractError as exc:
            return str(exc)
        raise AssertionError(f"bad input {self.name!r} was accepted")


def _duplicated_header() -> str:
    text = to_csv_text(base_table())
    return text.replace("pack_years,", "age_years,", 1)


def _duplicated_frame() -> pd.DataFrame:
    df = read_frame(to_csv_text(base_table()))
    return pd.concat([df, df[["age_years"]]], axis=1)


def _header_only() -> str:
    return to_csv_text(base_table().iloc[:0])


def _renamed(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={"age_years": "age"})


def _with_case_id(df: pd.DataFrame) -> pd.DataFrame:
    return pd.read_csv(PAPER_CASES_PATH, dtype=str, keep_default_na=False)


def _edits(*edits: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        for e in edits:
            df = e(df)
        return df

    return edit


def _raw_row(row: int, change: Callable[[str], str]) -> Callable[[], str]:
    """The file's text with line ``row + 1`` (patient ``row``) changed as raw text."""

    def text() -> str:
        lines = to_csv_text(base_table()).split("\n")
        lines[row] = change(lines[row])
        return "\n".join(lines)

    return text


def _decimal_comma_lesion(line: str) -> str:
    df = base_table()
    cells = line.split(",")
    cells[list(df.columns).index("lesion_size_mm")] = "0,4"
    return ",".join(cells)


def _semicolons_mixed_decimals() -> str:
    df = base_table()
    df.loc[0, "serum_calcium_mg_dl"] = "9,8"
    return df.to_csv(index=False, sep=";", lineterminator="\n")


CASES: tuple[BadInput, ...] = (
    BadInput("renamed_column", "the header says `age` instead of `age_years`",
             ("'age'", "unknown", "did you mean 'age_years'"), edit=_renamed),
    BadInput("unknown_column", "an identifier column `case_id` not declared with `--id-column`",
             ("'case_id'", "unknown", "allowed", "--id-column"), edit=_with_case_id),
    BadInput("duplicated_column", "`age_years` twice in the CSV header",
             ("'age_years'", "duplicated column", FILE_NAME, "must appear once"), file_text=_duplicated_header,
             api_frame=_duplicated_frame, api_names=("'age_years'", "duplicated column", "must appear once")),
    BadInput("text_in_numeric", "`age_years` = `old` in row 2",
             ("'age_years'", "row 2", "'old'", "a number (0 to 120 years)"), edit=_set("age_years", 2, "old")),
    BadInput("age_130", "`age_years` = `130` in row 2", ("'age_years'", "row 2", "130", "0 to 120 years"),
             edit=_set("age_years", 2, "130")),
    BadInput("age_minus_1", "`age_years` = `-1` in row 3", ("'age_years'", "row 3", "-1", "0 to 120 years"),
             edit=_set("age_years", 3, "-1")),
    BadInput("negative_lesion_size", "`lesion_size_mm` = `-2` in row 1", ("'lesion_size_mm'", "row 1", "-2", "> 0 mm"),
             edit=_set("lesion_size_mm", 1, "-2")),
    BadInput("negative_pack_years", "`pack_years` = `-5` in row 1", ("'pack_years'", "row 1", "-5", ">= 0 pack-years"),
             edit=_set("pack_years", 1, "-5")),
    BadInput("lab_value_0", "`serum_calcium_mg_dl` = `0` in rows 1 and 3",
             ("'serum_calcium_mg_dl'", "rows 1, 3", "0", "4 to 30 mg/dL"), edit=_set("serum_calcium_mg_dl", (1, 3), "0")),
    BadInput("binary_2", "`on_dialysis` = `2` in row 1", ("'on_dialysis'", "row 1", "2", "0 or 1"),
             edit=_set("on_dialysis", 1, "2")),
    BadInput("binary_yes", "`on_dialysis` = `yes` in row 1", ("'on_dialysis'", "row 1", "'yes'", "0 or 1 (also true/false)"),
             edit=_set("on_dialysis", 1, "yes")),
    BadInput("zone_middle", "`zone` = `middle` in row 1", ("'zone'", "row 1", "'middle'", "upper / lower / diffuse"),
             edit=_set("zone", 1, "middle")),
    BadInput("sex_M", "`sex` = `M` in row 1", ("'sex'", "row 1", "'M'", "female / male"), edit=_set("sex", 1, "M")),
    BadInput("empty_file", "an empty file (0 bytes)", (FILE_NAME, "empty file", "expected a header"), file_text=lambda: "",
             api_frame=pd.DataFrame, api_names=("no columns", "expected the contract's columns")),
    BadInput("header_only", "the header and no rows", ("no patients", "header but no rows", "at least one patient"),
             file_text=_header_only, api_frame=lambda: read_frame(_header_only()),
             api_names=("no patients", "header but no rows", "at least one patient")),
    # issue 11: every way a clinical export goes wrong
    BadInput("unquoted_decimal_comma", "`lesion_size_mm` = `0,4` unquoted in row 2 of a comma-separated file",
             (FILE_NAME, "line 3 has 54 fields but the header has 53", "unquoted decimal comma"),
             file_text=_raw_row(2, _decimal_comma_lesion)),
    BadInput("trailing_delimiter", "a comma at the end of row 1",
             (FILE_NAME, "line 2 has 54 fields but the header has 53", "at the end of the line"),
             file_text=_raw_row(1, lambda line: line + ",")),
    BadInput("calcium_in_mmol", "`serum_calcium_mg_dl` = `2.35` (mmol/L) in row 1",
             ("'serum_calcium_mg_dl'", "row 1", "2.35", "plausible in mmol/L", "multiply by 4.008", "9.42 mg/dL"),
             edit=_set("serum_calcium_mg_dl", 1, "2.35")),
    BadInput("phosphate_in_mmol", "`serum_phosphate_mg_dl` = `0.9` (mmol/L) in row 1",
             ("'serum_phosphate_mg_dl'", "row 1", "0.9", "multiply by 3.097"), edit=_set("serum_phosphate_mg_dl", 1, "0.9")),
    BadInput("pth_in_pmol", "`pth_pg_ml` = `0.3` (pmol/L) in row 3",
             ("'pth_pg_ml'", "row 3", "0.3", "multiply by 9.43"), edit=_set("pth_pg_ml", 3, "0.3")),
    BadInput("calcium_implausible", "`serum_calcium_mg_dl` = `45` in row 2",
             ("'serum_calcium_mg_dl'", "row 2", "45", "4 to 30 mg/dL"), edit=_set("serum_calcium_mg_dl", 2, "45")),
    BadInput("three_bad_cells", "three problems: `age_years` = `old` in row 1, `zone` = `middle` in row 2, `on_dialysis` = `yes` in row 3",
             ("3 problems", "(1) column 'age_years': row 1", "column 'on_dialysis': row 3", "column 'zone': row 2"),
             edit=_edits(_set("age_years", 1, "old"), _set("zone", 2, "middle"), _set("on_dialysis", 3, "yes"))),
    BadInput("not_utf8", "the file saved as Windows-1252 with `sex` = `féminin` in row 1",
             (FILE_NAME, "line 2", "not UTF-8", "CSV UTF-8", "--encoding cp1252"),
             file_text=lambda: to_csv_text(_set("sex", 1, "féminin")(base_table())), encoding="cp1252"),
    BadInput("ambiguous_decimal", "`;`-separated, with `9,8` in row 1 and decimal points (`40.0`) elsewhere",
             (FILE_NAME, "'9,8' in row 1", "a decimal point", "--decimal"), file_text=_semicolons_mixed_decimals),
    BadInput("NA_text", "`serum_calcium_mg_dl` = `NA` in row 2 (only an empty cell is not recorded)",
             ("'serum_calcium_mg_dl'", "row 2", "'NA'", "or empty for not recorded"), edit=_set("serum_calcium_mg_dl", 2, "NA")),
)


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def render() -> str:
    """The Markdown of docs/bad-input.md."""
    lines = [
        "# Bad input: what pulmocalc refuses, and the exact message",
        "",
        "<!-- generated by `python tools/render_bad_input.py`; do not edit by hand -->",
        "",
        "Each input below is `data_gen/paper_cases.csv` (the review's three cases) without its",
        f"`case_id` column, saved as `{FILE_NAME}`, with one change. The message is what",
        "`data_gen.validate_frame` raises (a `ContractError`, which is a `ValueError`), and so what",
        "`model.predict_proba`, `ml.explain` and `data_gen.read_patients` raise; the command line",
        "(`pulmocalc predict`, `evaluate --data`, `explain`) prints it as one line",
        "`pulmocalc: error: <message>` and exits with status 2. `tests/ml/test_bad_input.py` checks",
        "every row through the API and the command line, and that this file is up to date.",
        "",
        "Rows are numbered from 1 at the first patient (the line after the header), in Python as on",
        "the command line (a frame's default 0-based index is shown counted from 1); a file's *line*",
        "counts the header as line 1. With `--id-column COL` (`id_column=` in Python) the patient's",
        "identifier is shown instead, and the column is carried to the output of `pulmocalc predict`.",
        "Several bad cells are reported together, up to 10 with a count of the rest.",
        "",
        "| input tried | exact message |",
        "|---|---|",
    ]
    for case in CASES:
        lines.append(f"| {case.tried} | {_cell(case.message())} |")
    lines += [
        "",
        "Accepted, not errors:",
        "",
        "* an empty cell anywhere means \"not recorded\", including a patient with every cell empty;",
        "* in binary columns: 0 and 1, booleans, and the text `true` / `false` in any case;",
        "* the label `calcification_type` (required by `evaluate --data`, ignored by `predict`);",
        "* the contract's columns in any order, and any subset of them: absent columns are read as",
        "  not recorded, listed in one line `pulmocalc: notice: ...` on stderr (a `ContractWarning` in",
        "  Python); unknown columns are still refused, with a \"did you mean\" hint;",
        "* surrounding spaces in any cell, and any case of a level (` Male`, `UPPER`, `True`);",
        "* `;`-separated files with decimal commas (Excel's European default), tab-separated files,",
        "  a byte-order mark and CRLF line ends; `--sep`, `--decimal` and `--encoding` (`sep=`,",
        "  `decimal=`, `encoding=` of `data_gen.read_patients`) say what cannot be read off the file;",
        "* in Python, polars frames and pyarrow tables (anything narwhals, the Arrow PyCapsule",
        "  interface or the dataframe interchange protocol converts); other objects are refused naming",
        "  their type's module and how to convert them.",
        "",
        "Refused elsewhere, by the model and the oracle alike (`--prevalence` in the CLI):",
        "",
        "| bad input tried | exact message |",
        "| --- | --- |",
        f"| {PREVALENCE_TRIED} | {_cell(prevalence_message())} |",
        "",
        "and `evaluate` on a labelled cohort holding a class the prevalence sets to 0. A model file that",
        "cannot be unpickled with the installed libraries is refused naming the versions it was",
        "written with and the installed ones.",
        "",
    ]
    return "\n".join(lines)


#: The review's MPC case under a setting whose prevalence leaves out the class its findings allow.
PREVALENCE = {"dystrophic": 0.5, "dpo_nodular": 0.5}
PREVALENCE_TRIED = "row 1 (the review's MPC case) with `--prevalence dystrophic=0.5,dpo_nodular=0.5`"


def prevalence_message() -> str:
    """The exact refusal of a prevalence that gives 0 to every class the findings allow."""
    from data_gen import oracle_proba

    try:
        oracle_proba(read_frame(to_csv_text(base_table())).iloc[[0]], prevalence=PREVALENCE)
    except ValueError as exc:
        return str(exc)
    raise AssertionError("the review's MPC case was not refused under a prevalence without MPC")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date instead of writing it")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
        if current != text:
            print(f"{DOC_PATH.relative_to(ROOT)} is out of date; run python tools/render_bad_input.py", file=sys.stderr)
            return 1
        return 0
    with open(DOC_PATH, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    print(f"wrote {DOC_PATH.relative_to(ROOT)} ({len(CASES)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
