"""What a command tells the person at the terminal: the header line and progress bars.

Progress goes to stderr through tqdm (elapsed time, rate and ETA), only when stderr is a
terminal and ``--quiet`` was not given, so pipes, logs and tests see none of it and stdout stays
the command's output alone. tqdm is imported when a bar is first shown, never at start-up.

The header line names what a command used, so that any output can be traced back to it: the
knowledge base and the model, each with its path and the first 12 hex digits of its SHA-256
(the same digits the reports and the model metadata carry).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._registry import PROG

SHORT_HASH = 12
DISCLAIMER_SHORT = "research and teaching on synthetic data, not a clinical device"


def add_quiet_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars on stderr (they only show on a terminal anyway)")


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def show_progress(args: argparse.Namespace | None = None) -> bool:
    """True when progress should be drawn: stderr is a terminal and ``--quiet`` was not given."""
    return not getattr(args, "quiet", False) and stderr_is_tty()


class _NoBar:
    """The do-nothing bar used when progress is off (same methods as the tqdm ones used here)."""

    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_description_str(self, text: str) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def reset(self, total=None) -> None:
        self.n = 0

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int | None, *, desc: str, unit: str = "it", enabled: bool, **options):
    """A tqdm bar on stderr when ``enabled``, else an object with the same methods that draws nothing.

    Parameters
    ----------
    total : int or None
        Units of work; None when unknown (the bar then shows a count and a rate, no ETA).
    desc : str
        What is being done, e.g. ``"generating"``.
    unit : str
        The unit counted, e.g. ``"patients"``.
    enabled : bool
        Usually :func:`show_progress` of the command's arguments.
    """
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    unit_scale = options.pop("unit_scale", total is not None and total >= 10_000)
    # a terminal that reports no size (a bare pty, some CI consoles) would get an empty bar
    sized = _terminal_columns() > 0
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=sized,
                ncols=None if sized else 100, nrows=None if sized else 24,
                unit_scale=unit_scale, mininterval=0.2, **options)


def _terminal_columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


class ProgressCallback:
    """A ``progress(done, total, label)`` callable for the library, drawn as one tqdm bar.

    The library's long functions (``ml.train``, ``ml.evaluate``, ``ml.explain_patients``,
    ``ml.report.build_report``) take such a callable and never print; this adapter draws it when
    ``enabled`` and does nothing otherwise. Use it as a context manager so the bar is closed.
    """

    def __init__(self, desc: str, *, unit: str = "step", enabled: bool):
        self.desc, self.unit, self.enabled = desc, unit, enabled
        self.bar = None

    def __call__(self, done: int, total: int | None, label: str = "") -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = progress_bar(total, desc=self.desc, unit=self.unit, enabled=True)
        elif self.bar.total != total:  # e.g. boosting that stopped early: the bar ends full
            self.bar.total = total
        self.bar.n = done
        if label:
            self.bar.set_postfix_str(label, refresh=False)
        self.bar.refresh()

    def note(self, text: str) -> None:
        """Show ``text`` (a finer step) beside the bar, cut to 70 characters; nothing without a bar."""
        if self.bar is not None:
            self.bar.set_postfix_str(text[:70])

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _shown_path(path) -> str:
    path = Path(path)
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except (OSError, ValueError):
        return str(path)


def header_line(command_name: str, *, knowledge=None, model=None, model_path=None, model_sha256=None) -> str:
    """One line naming the command, the knowledge base and the model it used, with short hashes.

    Parameters
    ----------
    knowledge : data_gen.Knowledge, optional
        Its ``path`` and ``sha256`` are shown.
    model : ml.CalcificationModel, optional
        Its artifact's path and SHA-256 (from its metadata) are shown; a model trained in the run
        is called "trained in this run".
    model_path, model_sha256 : optional
        A model named by its file before it is loaded (``model`` not given).
    """
    parts = [f"{PROG} {command_name}"]
    if knowledge is not None:
        parts.append(f"knowledge base {_shown_path(knowledge.path)} (sha256 {knowledge.sha256[:SHORT_HASH]})")
    if model is not None or model_path is not None:
        artifact = getattr(model, "artifact", None) or {}
        path, sha = model_path or artifact.get("path"), model_sha256 or artifact.get("sha256")
        where = _shown_path(path) if path else "trained in this run"
        parts.append(f"model {where}" + (f" (sha256 {sha[:SHORT_HASH]})" if sha else ""))
    parts.append(DISCLAIMER_SHORT)
    return " · ".join(parts)
