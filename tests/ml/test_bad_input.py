"""Bad input is refused by name, through the API and through every CLI subcommand.

The cases, and the exact messages of docs/bad-input.md, come from tools/render_bad_input.py.
Each case is checked:

* through the API: ``validate_frame``, ``model.predict_proba`` and ``ml.explain`` on the
  DataFrame, and ``read_patients`` on the file, all raising ``ContractError`` (a ``ValueError``)
  with exactly the documented message;
* through the CLI: ``pulmocalc predict``, ``evaluate --data`` and ``explain`` (when it exists)
  exit with status 2, print exactly ``pulmocalc: error: <message>`` as the only line on stderr,
  no traceback, and leave no output file behind.

A cold ``python -m ml.cli`` costs seconds of imports (scikit-learn) per run, which for ~50 runs
on a busy machine is minutes. The runs therefore go through a small server process that imports
the libraries once and forks one child per run; the child executes ``ml.cli`` as ``__main__``
(as ``python -m ml.cli`` does) with its own stdout, stderr and exit status, and an uncaught
exception in it prints a traceback as the interpreter would. ``test_cold_process_agrees``
runs a few cases through a fresh ``[sys.executable, "-m", "ml.cli", ...]`` as well.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from data_gen import ContractError, generate_cohort, read_patients, validate_frame
from ml import explain, load_model, train

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "bad-input.md"
PAPER = ROOT / "data_gen" / "paper_cases.csv"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}  # warnings as a user sees them
ENV.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _load_render():
    spec = importlib.util.spec_from_file_location("render_bad_input", ROOT / "tools" / "render_bad_input.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


render = _load_render()
CASES = {case.name: case for case in render.CASES}
COMMANDS = ("predict", "evaluate", "explain")


# --------------------------------------------------------------------------------------------
# Running the CLI in child processes
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    status: int
    stdout: str
    stderr: str


_SERVER = r"""
import json, os, runpy, sys, traceback
import numpy, pandas, sklearn.ensemble, shap  # noqa: F401  what every CLI run imports, paid once
import data_gen, ml  # noqa: F401  (not ml.cli: it runs as __main__ in each child, as with -m)
data_gen.load_knowledge()  # parsed once; a cold process parses it in every run
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(req["cwd"])
            for fd, name in ((1, req["stdout"]), (2, req["stderr"])):
                os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            sys.stdin = open(os.devnull)
            sys.argv = ["pulmocalc", *req["argv"]]
            try:
                runpy.run_module("ml.cli", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:
                    print(exc.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""


class CliRunner:
    """``run(argv, cwd)``: pulmocalc in a child process (forked from a warm server where possible)."""

    def __init__(self):
        self.proc = None
        self.log = tempfile.TemporaryFile()
        if hasattr(os, "fork"):
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self.log, text=True, env=ENV, cwd=ROOT,
            )

    def run(self, argv: list[str], cwd: Path) -> Run:
        if self.proc is None:
            return cold_run(argv, cwd)
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            self.proc.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}) + "\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline()
            if not reply:
                self.log.seek(0)
                raise RuntimeError(f"the CLI server died: {self.log.read().decode(errors='replace')}")
            return Run(json.loads(reply), out.read_text(), err.read_text())

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
            self.proc.stdout.close()
        self.log.close()


def cold_run(argv: list[str], cwd: Path) -> Run:
    proc = subprocess.run([sys.executable, "-m", "ml.cli", *argv], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=300)
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # OpenMP threads of the booster fight other processes on a busy machine (x5 slower, or worse)
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def cli():
    runner = CliRunner()
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    model = train(generate_cohort(8000, random_state=1), max_iter=20)
    return model.save(tmp_path_factory.mktemp("model") / "small.joblib")


@pytest.fixture(scope="module")
def model(model_path):
    return load_model(model_path)


@pytest.fixture(scope="module")
def has_explain(cli, tmp_path_factory):
    run = cli.run(["-h"], tmp_path_factory.mktemp("help"))
    assert run.status == 0, run.stderr
    return any(line.split()[:1] == ["explain"] for line in run.stdout.splitlines())


def _argv(command: str, path: str, model_path: Path, *extra: str) -> list[str]:
    if command == "evaluate":
        return ["evaluate", "--data", path, "--model", str(model_path), "--bootstrap", "0", *extra]
    return [command, path, "--model", str(model_path), *extra]


def _one_error_line(run: Run, message: str) -> None:
    assert run.status == 2, (run.status, run.stderr)
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout
    assert run.stderr == f"pulmocalc: error: {message}\n", run.stderr


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------
def test_docs_table_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == render.render(), "run: python tools/render_bad_input.py"


def test_documented_prevalence_refusal_is_the_models_too(model):
    """The exact message of the prevalence row is the oracle's, and the model gives the same."""
    frame = render.read_frame(render.to_csv_text(render.base_table())).iloc[[0]]
    documented = render.prevalence_message()
    assert documented.startswith("no class allowed by this prevalence fits row 1: its findings allow only metastatic")
    with pytest.raises(ValueError) as info:
        model.predict_proba(frame, prevalence=render.PREVALENCE)
    assert str(info.value) == documented
    assert f"| {documented} |".replace("|", "") in DOC.read_text(encoding="utf-8").replace("`", "").replace("|", "")


def test_every_case_is_in_the_table():
    text = DOC.read_text(encoding="utf-8")
    for case in render.CASES:
        assert f"| {case.tried} |" in text
    assert len(render.CASES) >= 25


@pytest.mark.parametrize("name", CASES)
def test_message_names_column_rows_values_and_what_is_allowed(name):
    message = CASES[name].message()
    assert "\n" not in message
    for fragment in CASES[name].names:
        assert fragment in message, (fragment, message)


# --------------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CASES)
def test_api_refuses_with_the_documented_message(name, model, tmp_path, monkeypatch):
    case = CASES[name]
    message = case.message()
    frame = case.frame() if case.has_frame else None  # a file's fields or bytes: no frame shows them
    for call in (validate_frame, model.predict_proba, lambda df: explain(model, df)) if case.has_frame else ():
        with pytest.raises(ContractError) as info:
            call(frame)
        assert isinstance(info.value, ValueError)
        if case.file_level:  # the closest DataFrame has its own wording; it must still say what is wrong
            for fragment in case.api_names:
                assert fragment in str(info.value), (fragment, str(info.value))
        else:
            assert str(info.value) == message
    monkeypatch.chdir(tmp_path)
    case.write(tmp_path)
    with pytest.raises(ContractError) as info:
        read_patients(render.FILE_NAME, label="required")
    assert str(info.value) == message


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", CASES)
def test_cli_refuses_on_one_line_with_status_2(name, command, cli, model_path, has_explain, tmp_path):
    if command == "explain" and not has_explain:
        pytest.skip("`pulmocalc explain` is not in `python -m ml.cli -h` yet")
    case = CASES[name]
    case.write(tmp_path)
    extra = ("--out", "out.csv") if command == "predict" else ()
    run = cli.run(_argv(command, render.FILE_NAME, model_path, *extra), tmp_path)
    _one_error_line(run, case.message())
    assert sorted(p.name for p in tmp_path.iterdir()) == [render.FILE_NAME], "a refused run left a file behind"


@pytest.mark.parametrize("command, name", [("predict", "zone_middle"), ("evaluate", "binary_yes"), ("explain", "duplicated_column")])
def test_cold_process_agrees(command, name, model_path, cli, has_explain, tmp_path):
    """A fresh ``python -m ml.cli`` gives what the forked runs give (no import-time noise)."""
    if command == "explain" and not has_explain:
        pytest.skip("`pulmocalc explain` is not in `python -m ml.cli -h` yet")
    case = CASES[name]
    case.write(tmp_path)
    argv = _argv(command, render.FILE_NAME, model_path)
    cold = cold_run(argv, tmp_path)
    _one_error_line(cold, case.message())
    assert cold == cli.run(argv, tmp_path)


def test_a_bad_row_after_the_first_chunk_leaves_no_partial_output(cli, model_path, tmp_path):
    df = render.base_table()
    df = pd.concat([df] * 4, ignore_index=True)
    df.loc[10, "zone"] = "middle"  # row 11, in the third chunk of 5
    (tmp_path / "p.csv").write_text(render.to_csv_text(df))
    run = cli.run(_argv("predict", "p.csv", model_path, "--out", "out.csv", "--chunk-size", "5"), tmp_path)
    _one_error_line(run, "column 'zone': row 11 has value 'middle'; allowed: upper / lower / diffuse, or empty for not recorded")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


# --------------------------------------------------------------------------------------------
# Accepted input
# --------------------------------------------------------------------------------------------
def _check_probabilities(proba: pd.DataFrame, kb) -> None:
    assert list(proba.columns) == list(kb.class_names)
    values = proba.to_numpy(dtype=float)
    assert np.isfinite(values).all() and (values >= 0).all()
    np.testing.assert_allclose(values.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def _predict_file(cli, model_path, tmp_path, path: str, *extra: str) -> pd.DataFrame:
    run = cli.run(_argv("predict", path, model_path, "--out", "out.csv", *extra), tmp_path)
    assert run.status == 0 and run.stderr == "", run.stderr
    return pd.read_csv(tmp_path / "out.csv")


def test_not_recorded_anywhere_including_an_all_empty_patient(cli, model, model_path, kb, tmp_path):
    df = render.base_table()
    df.loc[1, :] = ""  # row 2: every cell empty, the label too
    df.loc[0, ["age_years", "sex", "zone"]] = ""
    (tmp_path / "p.csv").write_text(render.to_csv_text(df))
    frame = render.read_frame(render.to_csv_text(df))
    assert frame.loc[2].isna().all()
    api = model.predict_proba(frame)
    _check_probabilities(api, kb)
    assert explain(model, frame).values.shape == (3, len(kb.column_names), len(kb.class_names))
    out = _predict_file(cli, model_path, tmp_path, "p.csv")
    assert out["patient"].tolist() == [1, 2, 3]
    _check_probabilities(out[list(kb.class_names)], kb)
    np.testing.assert_array_equal(out[list(kb.class_names)].to_numpy(), api.to_numpy())  # CSV floats round-trip


def test_booleans_and_true_false_text_in_binary_columns(cli, model, model_path, kb, tmp_path):
    df = render.base_table()
    binary = [c for c, s in kb.columns.items() if s.kind == "binary"]
    words = df.copy()
    spellings = {"1": ["true", "TRUE", "True"], "0": ["false", "FALSE", "False"]}
    for i, c in enumerate(binary):
        words[c] = [spellings[v][(i + r) % 3] if v in spellings else v for r, v in enumerate(df[c])]
    assert (words[binary] == "true").any().any() and (words[binary] == "False").any().any()
    (tmp_path / "numbers.csv").write_text(render.to_csv_text(df))
    (tmp_path / "words.csv").write_text(render.to_csv_text(words))
    reference = _predict_file(cli, model_path, tmp_path, "numbers.csv")
    pd.testing.assert_frame_equal(_predict_file(cli, model_path, tmp_path, "words.csv"), reference)

    frame = render.read_frame(render.to_csv_text(df))
    as_bools = frame.copy()
    for c in binary:  # Python booleans (object columns with NaN), and a bool-typed column
        as_bools[c] = [np.nan if pd.isna(v) else bool(v) for v in frame[c]]
    as_bools["calcification_visible"] = as_bools["calcification_visible"].fillna(False).astype(bool)
    frame["calcification_visible"] = frame["calcification_visible"].fillna(0)
    expected = model.predict_proba(frame)
    pd.testing.assert_frame_equal(model.predict_proba(as_bools), expected)
    pd.testing.assert_frame_equal(model.predict_proba(render.read_frame(render.to_csv_text(words))), model.predict_proba(render.read_frame(render.to_csv_text(df))))
    np.testing.assert_array_equal(reference[list(kb.class_names)].to_numpy(), model.predict_proba(render.read_frame(render.to_csv_text(df))).to_numpy())


def test_id_column_is_accepted_and_carried_to_the_output(cli, model, model_path, kb, tmp_path):
    ids = pd.read_csv(PAPER)["case_id"].tolist()
    out = _predict_file(cli, model_path, tmp_path, str(PAPER), "--id-column", "case_id")
    # one rule for every output (docs/architecture.md): the identifier is "patient", then the
    # predicted type, then one probability per class in the knowledge base's order
    assert list(out.columns) == ["patient", "predicted_type", *kb.class_names]
    assert out["patient"].tolist() == ids
    _check_probabilities(out[list(kb.class_names)], kb)

    run = cli.run(_argv("predict", str(PAPER), model_path, "--id-column", "case_id", "--out", "out.json"), tmp_path)
    assert run.status == 0, run.stderr
    records = json.loads((tmp_path / "out.json").read_text())
    assert [list(r) for r in records] == [list(out.columns)] * len(ids)
    assert [r["patient"] for r in records] == ids
    np.testing.assert_allclose([[r[k] for k in kb.class_names] for r in records], out[list(kb.class_names)].to_numpy(), rtol=1e-15)

    run = cli.run(_argv("evaluate", str(PAPER), model_path, "--id-column", "case_id"), tmp_path)
    assert run.status == 0 and "3 patients" in run.stdout, run.stderr

    frame = pd.read_csv(PAPER)
    assert validate_frame(frame, id_column="case_id").index.tolist() == ids
    assert model.predict_proba(frame.set_index("case_id")).index.tolist() == ids
    assert explain(model, frame, id_column="case_id").values.shape[0] == 3
    bad = frame.copy()
    bad.loc[1, "zone"] = "middle"
    with pytest.raises(ContractError, match=r"column 'zone': row 'case2_dendriform_dpo' has value 'middle'"):
        validate_frame(bad, id_column="case_id")
    with pytest.raises(ContractError, match=r"id column 'patient' is not in the input"):
        validate_frame(frame, id_column="patient")

