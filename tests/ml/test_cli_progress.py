"""Progress bars on a terminal, none in a pipe or with --quiet, and the header line of each command.

Each command runs for real in a subprocess with its stderr on a pseudo-terminal (tests/ml/_pty.py),
at small sizes; the same command with stderr piped must print nothing there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from _pty import run_with_terminal_stderr
from data_gen import load_knowledge
from ml.config import BOOSTER_PARAMS

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "120"}
CLI = [sys.executable, "-m", "ml.cli"]


def _frames(terminal: str, desc: str) -> list[str]:
    """The redrawn states of one tqdm bar (they are separated by carriage returns)."""
    return [f for f in re.split(r"[\r\n]+", terminal) if f.startswith(f"{desc}:")]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("progress")


@pytest.fixture(scope="module")
def trained(workdir):
    argv = CLI + ["train", "--n", "4000", "--recording", "complete", "--validation-n", "1000", "--seed", "3", "--out", "m.joblib"]
    return run_with_terminal_stderr(argv, cwd=workdir, env=ENV)


def test_generate_shows_a_bar_with_an_eta_on_a_terminal_only(workdir):
    argv = CLI + ["generate", "--n", "200000", "--seed", "1", "--chunk-size", "32768", "--out", "c.csv"]
    status, stdout, terminal = run_with_terminal_stderr(argv, cwd=workdir, env=ENV)
    assert status == 0, terminal
    frames = _frames(terminal, "generating")
    assert len(frames) >= 2, terminal
    assert re.search(r"200k/200k", frames[-1]) and "<" in frames[-1], frames[-1]  # complete, with elapsed<remaining
    assert "generating:" not in stdout
    kb = load_knowledge()
    assert stdout.splitlines()[0] == (f"pulmocalc generate · knowledge base {kb.path} "
                                      f"(sha256 {kb.sha256[:12]}) · research and teaching on synthetic data, not a clinical device")
    # the same run with stderr piped, or with --quiet on a terminal: nothing on stderr
    piped = subprocess.run(argv, cwd=workdir, env=ENV, capture_output=True, text=True, timeout=600)
    assert piped.returncode == 0 and piped.stderr == ""
    status, _, terminal = run_with_terminal_stderr(argv + ["--quiet"], cwd=workdir, env=ENV)
    assert status == 0 and terminal == ""


def test_train_shows_generation_boosting_and_validation(trained):
    status, stdout, terminal = trained
    assert status == 0, terminal
    boosting = _frames(terminal, "boosting")
    # iterations of max_iter while it runs; early stopping ends the bar full at the iterations run
    assert any(f"/{BOOSTER_PARAMS['max_iter']} " in f and "val loss" in f for f in boosting), boosting[:3]
    m = re.search(r"\| (\d+)/(\d+) ", boosting[-1])
    assert m and m.group(1) == m.group(2) and int(m.group(1)) >= 10, boosting[-1]
    assert "stopped early" in boosting[-1]
    assert _frames(terminal, "generating (recording complete)") and _frames(terminal, "validating")
    assert stdout.startswith("pulmocalc train · knowledge base ")
    assert re.search(r"wrote m\.joblib .* trained on 4,000 patients", stdout)


def test_evaluate_and_explain_show_their_steps(trained, workdir):
    assert trained[0] == 0
    status, stdout, terminal = run_with_terminal_stderr(
        CLI + ["evaluate", "--model", "m.joblib", "--n", "2000", "--bootstrap", "50"], cwd=workdir, env=ENV)
    assert status == 0, terminal
    steps = _frames(terminal, "evaluating")
    labels = " ".join(steps)
    for label in ("model", "oracle", "fitting logistic", "rules", "metrics"):
        assert label in labels, steps
    assert re.search(r"\| (\d+)/\1 ", steps[-1]), steps[-1]
    sha = __import__("hashlib").sha256((workdir / "m.joblib").read_bytes()).hexdigest()[:12]
    assert stdout.splitlines()[0].endswith(f"model m.joblib (sha256 {sha}) · research and teaching on synthetic data, not a clinical device")

    subprocess.run(CLI + ["generate", "--n", "450", "--seed", "4", "--out", "few.csv"], cwd=workdir, env=ENV, check=True, capture_output=True)
    status, stdout, terminal = run_with_terminal_stderr(CLI + ["explain", "few.csv", "--model", "m.joblib", "--next", "0"], cwd=workdir, env=ENV)
    assert status == 0, terminal
    frames = _frames(terminal, "explaining")
    assert frames and "450/450" in frames[-1], frames[-3:]
    assert stdout.count("=== Patient ") == 450 and stdout.count("not a clinical device") == 2  # header + one disclaimer
