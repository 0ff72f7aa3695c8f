"""The CLI's core: the subcommand registry, the parser and ``main`` (errors as one line).

This module imports only the standard library, so that ``pulmocalc -h``, ``--version`` and usage
errors answer without loading numpy, pandas, scikit-learn, shap or matplotlib: each command
imports what it needs when it runs. The libraries (``data_gen``, ``ml``) raise ``ValueError``
(including ``data_gen.KnowledgeError`` and the contract's ``ContractError``) with a message that
names what is wrong; here such errors, and ``OSError`` for files, become one line
``pulmocalc: error: <message>`` on stderr and exit status 2. The contract's warnings
(``ContractWarning``: absent columns read as not recorded) become one line
``pulmocalc: notice: <message>``. When the reader of stdout goes away (``pulmocalc predict
file.csv | head``) the command stops quietly with the status of a process ended by SIGPIPE (141).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

PROG = "pulmocalc"
EXIT_OK, EXIT_USAGE = 0, 2
EXIT_BROKEN_PIPE = 128 + 13  # as a process ended by SIGPIPE


# --------------------------------------------------------------------------------------------
# Subcommand registry
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one-line help, argument definitions and the function that runs it."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


COMMANDS: dict[str, Command] = {}


def command(name: str, *, help: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Register the decorated function as the subcommand ``pulmocalc <name>``.

    Examples
    --------
    >>> @command("hello", help="say hello", arguments=lambda p: None)
    ... def run_hello(args):
    ...     return 0
    >>> "hello" in COMMANDS
    True
    >>> del COMMANDS["hello"]
    """

    def register(run):
        if name in COMMANDS:
            raise ValueError(f"subcommand {name!r} is registered twice")
        COMMANDS[name] = Command(name, help, arguments, run)
        return run

    return register


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line, like every other error of the CLI."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


class _Version(argparse.Action):
    """``--version``: read the installed version only when asked (importlib.metadata is not free)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("pulmocalc")
        except PackageNotFoundError:
            text = "(not installed)"
        # on stdout, as argparse's own version action does, so that $(pulmocalc --version) works
        sys.stdout.write(f"{PROG} {text}\n")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand.

    Examples
    --------
    >>> build_parser().parse_args(["dictionary"]).command
    'dictionary'
    """
    parser = _Parser(
        prog=PROG,
        description="Synthetic cohorts, an exact Bayes oracle and an explained classifier for diffuse "
        "pulmonary calcification. Research and teaching on synthetic data; not a clinical device.",
    )
    parser.add_argument("--version", action=_Version, help="print the version of pulmocalc and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``pulmocalc``; returns the exit status (0 on success, 2 on an error).

    Examples
    --------
    >>> main(["generate", "--n", "1000", "--seed", "7", "--out", "cohort.csv"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    given = sys.argv[1:] if argv is None else list(argv)
    first = given[0].split("=", 1)[0] if given else ""
    known = parser._option_string_actions
    # argparse accepts unique prefixes (--vers); "--" ends the options
    if first.startswith("-") and first != "--" and not any(o.startswith(first) for o in known):
        # without this, argparse reports the missing command, not the option it did not know
        parser.error(f"unknown option {given[0]!r}; options of a command come after it (pulmocalc COMMAND {given[0]} ...)")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_notice
            status = args._run(args)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (ValueError, OSError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError as exc:
        print(f"{PROG}: error: out of memory ({_one_line(exc) or 'MemoryError'}); ask for fewer patients or a smaller run",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return EXIT_OK if status is None else int(status)


_default_showwarning = warnings.showwarning


def _show_notice(message, category, filename, lineno, file=None, line=None):
    """The contract's warnings as one ``pulmocalc: notice:`` line; others as Python shows them."""
    from data_gen import ContractWarning

    if issubclass(category, ContractWarning):
        print(f"{PROG}: notice: {' '.join(str(message).split())}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        msg = f"{where}: {exc.strerror}" if where else exc.strerror
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())


