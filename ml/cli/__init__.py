"""The ``pulmocalc`` command line (research and teaching on synthetic data; not a clinical device).

One module per command group: :mod:`.data` (generate, dictionary, template), :mod:`.model`
(train, evaluate, predict), :mod:`.explain`, :mod:`.serve` and :mod:`.report` (benchmark).
Each registers its subcommands with :func:`command` from :mod:`._registry`, which builds the parser
and turns library errors into one line (see its docstring). The flow is one way: this package
imports the libraries (``data_gen``, ``ml``), never the reverse, and the modules here import
only the standard library at start-up, so ``pulmocalc -h`` answers before numpy or pandas load.

Adding a subcommand takes one function that defines its arguments and one that runs it::

    def _foo_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--bar", type=int, required=True)

    @command("foo", help="do foo", arguments=_foo_arguments)
    def run_foo(args: argparse.Namespace) -> int:
        ...
        return 0
"""

from ._args import dialect_options, parse_class_spec
from ._files import write_cohort
from ._registry import COMMANDS, EXIT_BROKEN_PIPE, EXIT_OK, EXIT_USAGE, PROG, Command, build_parser, command, main

# the command groups register their subcommands on import, in the order --help lists them
from . import data, train, model, explain, serve, report, sweep, xai  # noqa: E402,F401  isort: skip

__all__ = [
    "COMMANDS",
    "Command",
    "EXIT_BROKEN_PIPE",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "build_parser",
    "command",
    "dialect_options",
    "main",
    "parse_class_spec",
    "write_cohort",
]
