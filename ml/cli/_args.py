"""Argument helpers shared by the subcommands (standard library only, so ``-h`` stays fast)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable


# --------------------------------------------------------------------------------------------
# Argument helpers
# --------------------------------------------------------------------------------------------
def int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def add_knowledge_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--knowledge",
        metavar="FILE",
        help="a knowledge base TOML file with the structure of data_gen/knowledge.toml (default: the shipped one)",
    )


def add_model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help="model file (default: the shipped model)")


def add_prevalence_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prevalence", metavar="SPEC", help="class mix of the setting, e.g. metastatic=0.6,dystrophic=0.4 (shares, or percentages adding up to 100)")


def add_patients_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("patients", metavar="PATIENTS", help="CSV or Parquet file of patients in the input contract")
    add_dialect_arguments(p)


def add_dialect_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("CSV dialect (read off the file unless given)")
    g.add_argument("--sep", choices=(",", ";", "tab"), help="field separator")
    g.add_argument("--decimal", choices=(".", ","), help="decimal mark of numbers")
    g.add_argument("--encoding", metavar="NAME", help="text encoding (default UTF-8), e.g. cp1252 for Excel's plain CSV")


def dialect_options(args: argparse.Namespace) -> dict:
    """``sep``, ``decimal`` and ``encoding`` of :func:`data_gen.read_patients` from the arguments."""
    return {"sep": args.sep, "decimal": args.decimal, "encoding": args.encoding}


def load_knowledge(path: str | None):
    from data_gen import load_knowledge

    return load_knowledge(path)


def parse_class_spec(text: str, option: str, class_names: Iterable[str], kind: type) -> dict:
    """Parse ``class=value,class=value`` for ``--prevalence`` (float) or ``--counts`` (int).

    Raises
    ------
    ValueError
        Naming the option and the offending item: a missing ``=``, an unknown or repeated class,
        or a value that is not a finite non-negative number (an integer for ``int``).

    Examples
    --------
    >>> parse_class_spec("metastatic=0.6,dystrophic=0.4", "--prevalence", ["dystrophic", "metastatic"], float)
    {'metastatic': 0.6, 'dystrophic': 0.4}

    ``--prevalence`` shares that add up to 100 are read as percentages, with a notice on stderr
    (``metastatic=60,dystrophic=40`` is ``metastatic=0.6,dystrophic=0.4``).
    """
    known = list(class_names)
    out: dict = {}
    for item in text.split(","):
        item = item.strip()
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"{option}: expected class=value pairs separated by commas, got {item!r} in {text!r}")
        if name not in known:
            raise ValueError(f"{option}: unknown class {name!r}; expected some of {', '.join(known)}")
        if name in out:
            raise ValueError(f"{option}: class {name!r} is given twice")
        try:
            number = kind(value)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"{option}: the value for {name!r} must be {what}, got {value!r}") from None
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{option}: the value for {name!r} must be finite and >= 0, got {value!r}")
        out[name] = number
    if kind is float and option == "--prevalence":
        out = _percentages(out, option)
    return out


def _percentages(shares: dict, option: str) -> dict:
    """Shares that add up to 100 (and not to 1) are percentages: divided by 100, and said so."""
    total = math.fsum(shares.values())
    if abs(total - 100) <= 1e-6 * 100 and abs(total - 1) > 1e-6:
        shares = {k: v / 100 for k, v in shares.items()}
        shown = ", ".join(f"{k}={v:g}" for k, v in shares.items())
        print(f"pulmocalc: notice: {option}: the shares add up to 100, so they are read as percentages: {shown}",
              file=sys.stderr)
    return shares


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    """``--scheduler`` or ``--workers``: where Dask runs (an existing cluster, or a local one)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (tcp://HOST:8786), used unchanged")
    g.add_argument("--workers", type=int_at_least(1), metavar="N",
                   help="process workers of a local Dask cluster, one thread each (default: the machine's cores)")


def model_from(args):
    """The model named by ``--model`` (default: the shipped one), checked against ``--knowledge``."""
    from ..loading import load_model

    return load_model(args.model, knowledge=getattr(args, "knowledge", None))


def prevalence_from(args, kb):
    """``--prevalence`` read against the knowledge base's classes (percentages), or None when not given."""
    if getattr(args, "prevalence", None) is None:
        return None
    return parse_class_spec(args.prevalence, "--prevalence", kb.class_names, float)
