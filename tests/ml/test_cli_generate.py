"""``pulmocalc generate``: reproducible files, chunk invariance, clear one-line errors, fidelity summary.

The CLI runs in subprocesses (``python -m ml.cli``) so that determinism is checked across
processes and the tests do not depend on the console script being on PATH.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_gen import KnowledgeError, generate_cohort, load_knowledge
from data_gen.knowledge import default_knowledge_path
from ml.cli import main
from _cli_asserts import assert_one_line_error

ROOT = Path(__file__).resolve().parents[2]
N = 3_000
SEED = 20261124


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "ml.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def generate(tmp_path: Path, name: str, *extra: str, n: int = N, seed: int = SEED) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path / name
    res = run_cli("generate", "--n", str(n), "--seed", str(seed), "--out", str(out), *extra, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return out, res


def run_in_process(*args: str, capsys) -> tuple[int, str, str]:
    """``main(args)`` in this process (cheaper than a subprocess where processes do not matter)."""
    try:
        status = main(list(args))
    except SystemExit as exc:  # argparse usage errors
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One CLI run shared by several tests: N patients, seed SEED, default chunking."""
    tmp = tmp_path_factory.mktemp("reference")
    return generate(tmp, "reference.csv")


# --------------------------------------------------------------------------------------------
# Reproducibility
# --------------------------------------------------------------------------------------------
def test_same_seed_gives_byte_identical_csv_in_two_processes(tmp_path, reference):
    ref, _ = reference
    again, _ = generate(tmp_path, "again.csv")
    assert again.read_bytes() == ref.read_bytes()
    assert len(ref.read_text().splitlines()) == N + 1


def test_different_seeds_give_different_cohorts(tmp_path, reference):
    ref, _ = reference
    other, _ = generate(tmp_path, "other.csv", seed=SEED + 1)
    assert other.read_bytes() != ref.read_bytes()
    # same header, different patients
    assert other.read_text().splitlines()[0] == ref.read_text().splitlines()[0]


def test_chunked_csv_equals_one_shot_generation(tmp_path, reference):
    # 700 is neither a divisor of N nor a multiple of the sampler's block size
    out, _ = generate(tmp_path, "chunked.csv", "--chunk-size", "700")
    one_shot = generate_cohort(N, random_state=SEED).to_csv(index=False, lineterminator="\n")
    assert out.read_text(encoding="utf-8") == one_shot
    assert reference[0].read_text(encoding="utf-8") == one_shot


def test_latent_columns_are_written_on_request(tmp_path, capsys):
    status, _out, err = run_in_process("generate", "--n", "500", "--seed", "1", "--latent", "--out", str(tmp_path / "l.csv"), capsys=capsys)
    assert status == 0, err
    header = (tmp_path / "l.csv").read_text().splitlines()[0].split(",")
    assert header == list(generate_cohort(1, random_state=1, latent=True).columns)
    assert "latent_cause" in header


def test_csv_round_trips_values_and_writes_binary_as_0_1_or_empty(reference):
    out, _ = reference
    frame = generate_cohort(N, random_state=SEED)
    raw = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert set(raw["calcified_nodules"]) <= {"0", "1", ""}
    assert (raw["slc34a2_variant"] == "").any()  # not recorded -> empty cell
    back = pd.read_csv(out)
    for col in frame.select_dtypes("float64"):
        # floats are written with their shortest round-trip repr: read back bit for bit
        np.testing.assert_array_equal(back[col].to_numpy(), frame[col].to_numpy())
    assert back["calcification_type"].tolist() == frame["calcification_type"].astype(str).tolist()


def test_counts_give_exactly_the_asked_patients(tmp_path, capsys):
    out = tmp_path / "c.csv"
    status, _out, err = run_in_process("generate", "--counts", "pam=40,metastatic=60", "--seed", "3", "--out", str(out), capsys=capsys)
    assert status == 0, err
    labels = pd.read_csv(out)["calcification_type"].value_counts().to_dict()
    assert labels == {"metastatic": 60, "pam": 40}


def test_prevalence_changes_the_class_mix(tmp_path, capsys):
    out = tmp_path / "p.csv"
    status, stdout, err = run_in_process("generate", "--n", str(N), "--seed", "5", "--prevalence", "metastatic=0.7,pam=0.3", "--out", str(out), capsys=capsys)
    assert status == 0, err
    assert "target: --prevalence" in stdout
    shares = pd.read_csv(out)["calcification_type"].value_counts(normalize=True)
    assert set(shares.index) == {"metastatic", "pam"}
    assert abs(shares["metastatic"] - 0.7) < 5 * np.sqrt(0.21 / N)


# --------------------------------------------------------------------------------------------
# Parquet
# --------------------------------------------------------------------------------------------
def test_parquet_round_trip_and_identical_bytes(tmp_path):
    pytest.importorskip("pyarrow")
    n = 70_000  # more than one Parquet row group (PARQUET_ROW_GROUP rows each)
    a, _ = generate(tmp_path, "a.parquet", "--latent", n=n)
    b, _ = generate(tmp_path, "b.parquet", "--latent", "--chunk-size", "33333", n=n)
    assert a.read_bytes() == b.read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(a), generate_cohort(n, random_state=SEED, latent=True))


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path):
    # run main() with pyarrow made unimportable, as on an install without the parquet extra
    code = "import sys; sys.modules['pyarrow'] = None; from ml.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", code, "generate", "--n", "10", "--out", "x.parquet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert_one_line_error(res, "pyarrow", ".csv")
    assert not (tmp_path / "x.parquet").exists()


# --------------------------------------------------------------------------------------------
# Errors: one line on stderr, exit status 2, no traceback, no output file
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("metastatic=0.5,unicorn=0.5", "unknown class 'unicorn'"),
        ("metastatic=0.5,dystrophic=0.3", "sum to 1"),
        ("metastatic=lots,dystrophic=0.5", "must be a number, got 'lots'"),
    ],
)
def test_bad_prevalence_is_refused_on_one_line(tmp_path, spec, fragment):
    res = run_cli("generate", "--n", "10", "--prevalence", spec, "--out", "x.csv", cwd=tmp_path)
    assert_one_line_error(res, "--prevalence", fragment)
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("--prevalence", "metastatic"), "class=value"),
        (("--prevalence", "metastatic=0.5,metastatic=0.5"), "given twice"),
        (("--prevalence", "metastatic=-0.5,dystrophic=1.5"), ">= 0"),
        (("--prevalence", "metastatic=nan"), "finite"),
        (("--counts", "pam=1.5"), "must be an integer"),
        (("--counts", "pam=0"), "at least one patient"),
        (("--n", "5", "--counts", "pam=3"), "--counts (3)"),
        (("--seed", "1"), "--n is required"),
        (("--n", "-5"), "--n"),
        (("--n", "5", "--seed", "x"), "--seed"),
        (("--n", "5", "--prevalence", "pam=1", "--counts", "pam=5"), "not allowed with"),
    ],
)
def test_other_argument_errors_are_one_line(tmp_path, capsys, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    status, out, err = run_in_process("generate", *args, "--out", "x.csv", capsys=capsys)
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pulmocalc: error: ") and fragment in lines[0], err
    assert not (tmp_path / "x.csv").exists()


def test_broken_knowledge_file_reports_the_knowledge_error(tmp_path, capsys):
    src = default_knowledge_path().read_text(encoding="utf-8")
    entry = '[classes.dystrophic.columns.calcified_nodules]\nrole = "usual"\np = 0.88\n'
    assert entry in src, "test fixture out of date: the dystrophic calcified_nodules entry changed"
    bad = tmp_path / "bad.toml"
    bad.write_text(src.replace(entry, entry.replace("0.88", "1.3")), encoding="utf-8")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(bad)
    res = run_cli("generate", "--n", "10", "--knowledge", str(bad), "--out", "x.csv", cwd=tmp_path)
    assert_one_line_error(res, str(info.value), "calcified_nodules", "1.3")

    not_toml = tmp_path / "not.toml"
    not_toml.write_text("schema_version = 1\n[meta\n", encoding="utf-8")
    missing = tmp_path / "missing.toml"
    for path, fragment in ((not_toml, "not valid TOML"), (missing, "cannot read knowledge base")):
        status, _out, err = run_in_process("generate", "--n", "10", "--knowledge", str(path), "--out", str(tmp_path / "x.csv"), capsys=capsys)
        assert status == 2 and len(err.splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    "out, fragment",
    [("x.xlsx", ".csv or .parquet"), ("missing/x.csv", "does not exist"), (".", "is a directory")],
)
def test_bad_output_paths_are_one_line(tmp_path, capsys, monkeypatch, out, fragment):
    monkeypatch.chdir(tmp_path)
    status, _out, err = run_in_process("generate", "--n", "5", "--out", out, capsys=capsys)
    assert status == 2 and len(err.splitlines()) == 1 and fragment in err, err


def test_a_user_knowledge_base_is_used(tmp_path, capsys):
    src = default_knowledge_path().read_text(encoding="utf-8")
    entry = '[classes.dystrophic.columns.calcified_nodules]\nrole = "usual"\np = 0.88\n'
    mine = tmp_path / "mine.toml"
    mine.write_text(src.replace(entry, entry.replace("0.88", "0.1")), encoding="utf-8")
    out = tmp_path / "m.csv"
    status, stdout, err = run_in_process("generate", "--counts", "dystrophic=2000", "--seed", "2", "--knowledge", str(mine), "--out", str(out), capsys=capsys)
    assert status == 0, err
    df = pd.read_csv(out)
    assert df["calcified_nodules"].mean() < 0.2  # 0.88 * 0.97 under the shipped knowledge base
    assert hashlib.sha256(mine.read_bytes()).hexdigest()[:12] in stdout


# --------------------------------------------------------------------------------------------
# Output on the terminal
# --------------------------------------------------------------------------------------------
def test_fidelity_summary_is_printed(reference, kb):
    out, res = reference
    stdout = res.stdout
    assert f"seed {SEED}" in stdout
    assert kb.sha256[:12] in stdout
    labels = pd.read_csv(out)["calcification_type"].value_counts()
    for cls in kb.class_names:
        m = re.search(rf"^{cls}\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)", stdout, flags=re.M)
        assert m, (cls, stdout)
        assert int(m.group(1).replace(",", "")) == labels.get(cls, 0)
        assert float(m.group(3)) == pytest.approx(kb.prevalence[cls], abs=1e-4)
    # five deviations per class, each with expected, observed and a z-score
    deviations = re.findall(r"^\s{4}(\w+)\s+expected ([\d.]+)\s+observed ([\d.]+)\s+n\s+[\d,]+\s+z ([-+][\d.]+|[-+]inf)$", stdout, flags=re.M)
    assert len(deviations) == 5 * len(kb.class_names)
    assert all(col in kb.columns and kb.columns[col].kind == "binary" for col, *_ in deviations)
    # stdout carries the summary only; nothing on stderr for a small cohort off a terminal
    assert res.stderr == ""


def test_no_progress_off_a_terminal(tmp_path, capsys):
    # progress on a terminal is tested in test_cli_progress (under a pty); in a pipe there is none
    args = ("generate", "--n", str(N), "--seed", "1", "--chunk-size", "1000", "--out", str(tmp_path / "a.csv"))
    status, _stdout, err = run_in_process(*args, capsys=capsys)
    assert status == 0 and err == ""


@pytest.mark.parametrize("argv", [("--bogus",), ("--n", "10", "generate"), ("--seed=3",)])
def test_an_option_before_the_command_is_named(capsys, argv):
    # argparse alone said "the following arguments are required: COMMAND", hiding the option it did not know
    status, out, err = run_in_process(*argv, capsys=capsys)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and f"unknown option {argv[0]!r}; options of a command come after it" in err


def test_version_goes_to_stdout_and_prefixes_work(capsys):
    for argv in (("--version",), ("--vers",)):
        status, out, err = run_in_process(*argv, capsys=capsys)
        assert status == 0 and out.startswith("pulmocalc ") and err == "", (argv, out, err)


def test_running_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    import data_gen

    def huge(*args, **kwargs):
        raise MemoryError("Unable to allocate 41.0 GiB")

    monkeypatch.setattr(data_gen, "iter_cohort", huge)
    status, out, err = run_in_process("generate", "--n", "10", "--out", str(tmp_path / "x.csv"), capsys=capsys)
    assert status == 2 and err.count("\n") == 1 and "out of memory (Unable to allocate 41.0 GiB)" in err, err
