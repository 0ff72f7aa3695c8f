"""The ``pulmocalc`` command line (research and teaching on synthetic data; not a clinical device).

This module is the only place that parses arguments or prints. The libraries (``data_gen``,
``ml``) raise ``ValueError`` (including ``data_gen.KnowledgeError`` and the contract's
``ContractError``) with a message that names what is wrong; here such errors, and ``OSError``
for files, become one line ``pulmocalc: error: <message>`` on stderr and exit status 2. The
contract's warnings (``ContractWarning``: absent columns read as not recorded) become one line
``pulmocalc: notice: <message>`` on stderr. When the reader of stdout goes away
(``pulmocalc predict file.csv | head``) the command stops quietly, as Unix tools do, with the
status of a process ended by SIGPIPE (141).

Adding a subcommand takes one function that defines its arguments and one that runs it::

    def _foo_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--bar", type=int, required=True)

    @command("foo", help="do foo", arguments=_foo_arguments)
    def run_foo(args: argparse.Namespace) -> int:
        ...
        return 0
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PROG = "pulmocalc"
EXIT_OK, EXIT_USAGE = 0, 2
EXIT_BROKEN_PIPE = 128 + 13  # as a process ended by SIGPIPE
# Rows per generated chunk: a multiple of the sampler's block size, so no block is drawn twice.
DEFAULT_CHUNK_SIZE = 6 * (1 << 15)
# Below this size a non-interactive run prints no progress (tests, pipelines, small cohorts).
PROGRESS_MIN_ROWS = 1_000_000
# CSV written with pandas' defaults for values (floats as their shortest round-trip repr,
# nullable integers as 0/1, NA as an empty cell) and a fixed line ending on every platform.
CSV_OPTIONS = {"index": False, "lineterminator": "\n", "encoding": "utf-8"}
# Parquet: explicit codec so the bytes do not depend on a library default.
PARQUET_COMPRESSION = "snappy"
PARQUET_ROW_GROUP = 1 << 16
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet"}
TOP_DEVIATIONS = 5


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
    args = build_parser().parse_args(argv)
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


# --------------------------------------------------------------------------------------------
# Argument helpers
# --------------------------------------------------------------------------------------------
def _int_at_least(minimum: int) -> Callable[[str], int]:
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


def _add_knowledge_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--knowledge",
        metavar="FILE",
        help="a knowledge base TOML file with the structure of data_gen/knowledge.toml (default: the shipped one)",
    )


def _add_model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help="model file (default: the shipped model)")


def _add_prevalence_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prevalence", metavar="SPEC", help="class mix of the setting, e.g. metastatic=0.6,dystrophic=0.2,...")


def _add_patients_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("patients", metavar="PATIENTS", help="CSV or Parquet file of patients in the input contract")
    _add_dialect_arguments(p)


def _add_dialect_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("CSV dialect (read off the file unless given)")
    g.add_argument("--sep", choices=(",", ";", "tab"), help="field separator")
    g.add_argument("--decimal", choices=(".", ","), help="decimal mark of numbers")
    g.add_argument("--encoding", metavar="NAME", help="text encoding (default UTF-8), e.g. cp1252 for Excel's plain CSV")


def dialect_options(args: argparse.Namespace) -> dict:
    """``sep``, ``decimal`` and ``encoding`` of :func:`data_gen.read_patients` from the arguments."""
    return {"sep": args.sep, "decimal": args.decimal, "encoding": args.encoding}


def _load_knowledge(path: str | None):
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
    return out


# --------------------------------------------------------------------------------------------
# pulmocalc generate
# --------------------------------------------------------------------------------------------
def _generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=_int_at_least(1), metavar="N", help="number of patients (optional with --counts)")
    p.add_argument(
        "--seed",
        type=_int_at_least(0),
        metavar="S",
        help="random seed; the same seed gives byte-identical output (default: a fresh seed, printed)",
    )
    mix = p.add_mutually_exclusive_group()
    mix.add_argument(
        "--prevalence",
        metavar="SPEC",
        help="class mix replacing the knowledge base's, e.g. metastatic=0.6,dystrophic=0.2,dpo_nodular=0.2 "
        "(classes left out get 0; shares must sum to 1)",
    )
    mix.add_argument(
        "--counts",
        metavar="SPEC",
        help="exact number of patients per class, e.g. metastatic=500,pam=50 (classes left out get 0)",
    )
    _add_knowledge_argument(p)
    p.add_argument("--latent", action="store_true", help="also write the latent subtypes as latent_<factor> columns")
    p.add_argument("--out", required=True, metavar="FILE", help="output file: .csv, or .parquet (needs pyarrow)")
    p.add_argument(
        "--chunk-size",
        type=_int_at_least(1),
        default=DEFAULT_CHUNK_SIZE,
        metavar="ROWS",
        help=f"patients generated and written at a time (default {DEFAULT_CHUNK_SIZE}); the output does not depend on it",
    )
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help=f"progress lines on stderr: auto = when stderr is a terminal or N >= {PROGRESS_MIN_ROWS:,}",
    )


@command("generate", help="generate a synthetic cohort and print how closely it follows the knowledge base",
         arguments=_generate_arguments)
def _run_generate(args: argparse.Namespace) -> int:
    # imported here so that usage errors and --help answer without loading numpy and pandas
    import numpy as np

    from data_gen import iter_cohort
    from data_gen.fidelity import FidelityTally
    from data_gen.sampler import resolve_prevalence

    out = _output_path(args.out)
    fmt = _output_format(out)
    kb = _load_knowledge(args.knowledge)
    prevalence = counts = None
    if args.prevalence is not None:
        prevalence = parse_class_spec(args.prevalence, "--prevalence", kb.class_names, float)
        try:
            target = resolve_prevalence(prevalence, kb)
        except ValueError as exc:
            raise ValueError(f"--prevalence: {exc}") from None
        target_label = "--prevalence"
    elif args.counts is not None:
        counts = parse_class_spec(args.counts, "--counts", kb.class_names, int)
        total = sum(counts.values())
        if total == 0:
            raise ValueError("--counts: ask for at least one patient")
        if args.n is not None and args.n != total:
            raise ValueError(f"--n {args.n} does not equal the sum of --counts ({total})")
        target = np.array([counts.get(k, 0) / total for k in kb.class_names])
        target_label = "--counts"
    else:
        target = resolve_prevalence(None, kb)
        target_label = "knowledge base"
    n = sum(counts.values()) if counts is not None else args.n
    if n is None:
        raise ValueError("--n is required unless --counts is given")
    seed_drawn = args.seed is None
    seed = int(np.random.SeedSequence().entropy) if seed_drawn else args.seed

    tally = FidelityTally(kb)
    progress = _Progress(n, args.chunk_size, args.progress)
    chunks = iter_cohort(
        n,
        chunk_size=args.chunk_size,
        random_state=seed,
        prevalence=prevalence,
        counts=counts,
        latent=args.latent,
        knowledge=kb,
    )

    def observed(chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for chunk in chunks:
            tally.add(chunk)
            yield chunk
            progress.update(len(chunk))

    n_columns = write_cohort(observed(chunks), out, fmt)
    _print_generate_summary(kb, tally, out, fmt, n, n_columns, seed, seed_drawn, target, target_label)
    return EXIT_OK


def _output_path(text: str) -> Path:
    out = Path(text)
    # checked before any work, and so the error names the directory rather than a temporary file
    if not out.parent.is_dir():
        raise ValueError(f"--out {text!r}: the directory {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise ValueError(f"--out {text!r} is a directory; give a file name")
    return out


def _output_format(out: Path) -> str:
    fmt = OUTPUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"--out {str(out)!r}: unknown file type {out.suffix or '(none)'!r}; use .csv or .parquet")
    if fmt == "parquet":
        _import_pyarrow()
    return fmt


def _import_pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ValueError(
            "writing Parquet needs the 'pyarrow' package, which is not installed; "
            "install it (pip install 'pulmocalc[parquet]') or write a .csv file"
        ) from None
    return pyarrow, pyarrow.parquet


def write_cohort(chunks: Iterable[pd.DataFrame], out: str | Path, fmt: str) -> int:
    """Write consecutive chunks of one cohort to a CSV or Parquet file; returns its column count.

    The file appears only when complete (written beside it under a temporary name, then
    renamed), so an interrupted run never leaves a truncated cohort. The bytes do not depend on
    how the cohort is chunked: CSV chunks are appended without repeating the header, and
    Parquet row groups always hold ``PARQUET_ROW_GROUP`` rows (the last one fewer).

    Examples
    --------
    >>> from data_gen import iter_cohort
    >>> write_cohort(iter_cohort(100, chunk_size=40, random_state=0), "cohort.csv", "csv")  # doctest: +SKIP
    53
    """
    out = Path(out)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        # name the file the user asked for, not the temporary one
        raise OSError(exc.errno, f"cannot write here ({exc.strerror})", str(out)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        n_columns = _write_csv(chunks, tmp) if fmt == "csv" else _write_parquet(chunks, tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n_columns


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_csv(chunks: Iterable[pd.DataFrame], path: Path) -> int:
    n_columns = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for i, chunk in enumerate(chunks):
            chunk.to_csv(fh, header=(i == 0), **CSV_OPTIONS)
            n_columns = chunk.shape[1]
    return n_columns


def _write_parquet(chunks: Iterable[pd.DataFrame], path: Path) -> int:
    pa, pq = _import_pyarrow()
    writer = None
    n_columns = 0
    # Row groups of a fixed size, whatever the chunking, so the bytes do not depend on it.
    pending, pending_rows = [], 0
    try:
        for chunk in chunks:
            # no index: a chunk's RangeIndex would otherwise differ and land in the metadata
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression=PARQUET_COMPRESSION)
            n_columns = chunk.shape[1]
            pending.append(table)
            pending_rows += table.num_rows
            while pending_rows >= PARQUET_ROW_GROUP:
                buffered = pa.concat_tables(pending)
                writer.write_table(buffered.slice(0, PARQUET_ROW_GROUP), row_group_size=PARQUET_ROW_GROUP)
                pending = [buffered.slice(PARQUET_ROW_GROUP)]
                pending_rows = pending[0].num_rows
        if pending_rows:
            writer.write_table(pa.concat_tables(pending), row_group_size=PARQUET_ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()
    return n_columns


class _Progress:
    """One stderr line per chunk, only where someone is likely to watch."""

    def __init__(self, total: int, chunk_size: int, mode: str):
        self.total, self.done = total, 0
        if mode == "auto":
            self.enabled = total > chunk_size and (_stderr_is_tty() or total >= PROGRESS_MIN_ROWS)
        else:
            self.enabled = mode == "always"

    def update(self, rows: int) -> None:
        self.done += rows
        if self.enabled:
            pct = 100.0 * self.done / self.total if self.total else 100.0
            print(f"{PROG}: generated {self.done:,} of {self.total:,} patients ({pct:.0f}%)", file=sys.stderr, flush=True)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _print_generate_summary(kb, tally, out, fmt, n, n_columns, seed, seed_drawn, target, target_label) -> None:
    counts = tally.class_counts
    print(f"wrote {n:,} patients ({n_columns} columns) to {out} ({fmt})")
    seed_note = " (drawn at random; pass --seed to reproduce)" if seed_drawn else ""
    print(f"seed {seed}{seed_note}; knowledge base {kb.path.name} sha256 {kb.sha256[:12]}")
    print()
    width = max(len(k) for k in kb.class_names)
    print(f"{'class':<{width}}  {'count':>10}  {'share':>7}  {'target':>7}  (target: {target_label})")
    for k, share_target in zip(kb.class_names, target):
        c = int(counts[k])
        print(f"{k:<{width}}  {c:>10,}  {c / n:>7.4f}  {share_target:>7.4f}")
    print()
    table = tally.table()
    table = table[table["level"] == "1"]
    print(
        f"largest deviations of binary columns from the knowledge base, per class: P(x=1 | class) among "
        f"recorded values; z = (observed - expected) / binomial se"
    )
    col_width = max(len(c) for c in kb.column_names)
    for k in kb.class_names:
        rows = table[table["class"] == k].head(TOP_DEVIATIONS)
        if rows.empty:
            continue
        print(f"  {k}")
        for row in rows.itertuples(index=False):
            print(
                f"    {row.column:<{col_width}}  expected {row.expected:.4f}  observed {row.observed:.4f}  "
                f"n {row.n_recorded:>9,}  z {row.z:+.2f}"
            )


# --------------------------------------------------------------------------------------------
# pulmocalc dictionary
# --------------------------------------------------------------------------------------------
def _dictionary_arguments(p: argparse.ArgumentParser) -> None:
    _add_knowledge_argument(p)
    p.add_argument("--out", metavar="FILE", help="write the Markdown here (e.g. docs/data-dictionary.md) instead of stdout")


@command("dictionary", help="write the data dictionary generated from the knowledge base",
         arguments=_dictionary_arguments)
def _run_dictionary(args: argparse.Namespace) -> int:
    from data_gen.dictionary import render_data_dictionary

    text = render_data_dictionary(_load_knowledge(args.knowledge))
    if args.out is None:
        sys.stdout.write(text)
        return EXIT_OK
    out = _output_path(args.out)
    # newline="" keeps "\n" on every platform, so the committed file compares equal everywhere
    with open(out, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    print(f"wrote {out} ({len(text.splitlines())} lines)")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# pulmocalc template
# --------------------------------------------------------------------------------------------
def _template_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="FILE", help="the CSV file to write, e.g. patients.csv")
    _add_knowledge_argument(p)


@command("template", help="write a CSV template: the contract's header and one example patient (the review's case 1)",
         arguments=_template_arguments)
def _run_template(args: argparse.Namespace) -> int:
    from data_gen import LABEL, paper_cases

    out = _output_path(args.out)
    if out.suffix.lower() != ".csv":
        raise ValueError(f"--out {args.out!r}: the template is a .csv file")
    kb = _load_knowledge(args.knowledge)
    example = paper_cases().drop(columns=[LABEL], errors="ignore").iloc[:1]
    example = example[list(kb.column_names)]
    write_cohort([example], out, "csv")
    print(f"wrote {out}: the header of the {len(kb.column_names)} contract columns and one example patient (the review's case 1); "
          "leave a cell empty when it is not recorded, and drop the columns you do not record")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# pulmocalc explain
# --------------------------------------------------------------------------------------------
def _explain_arguments(p: argparse.ArgumentParser) -> None:
    _add_patients_argument(p)
    _add_model_argument(p)
    p.add_argument("--top", type=_int_at_least(1), default=3, help="classes explained per patient, most probable first (default 3)")
    p.add_argument("--reasons", type=_int_at_least(0), default=5, help="findings listed for and against each class (default 5)")
    p.add_argument("--next", type=_int_at_least(0), default=3, dest="next_findings",
                   help="findings to check next, by expected information gain under the exact oracle (default 3; 0: none)")
    _add_prevalence_argument(p)
    p.add_argument("--id-column", metavar="COL", help="a column identifying patients")
    p.add_argument("--plot", metavar="DIR", help="write a waterfall PNG of the top class's reasons per patient to DIR")
    p.add_argument("--json", metavar="FILE", help="also write the explanations as JSON")
    _add_knowledge_argument(p)


@command("explain", help="print each patient's differential with the findings for and against, in plain words",
         arguments=_explain_arguments)
def _run_explain(args: argparse.Namespace) -> int:
    import json
    import re

    from data_gen import read_patients

    from .artifacts import load_model
    from .reasons import DISCLAIMER, explain_patients, render_text

    model = load_model(args.model, knowledge=args.knowledge)
    kb = model.knowledge
    prevalence = None
    if args.prevalence is not None:
        prevalence = parse_class_spec(args.prevalence, "--prevalence", kb.class_names, float)
    patients = read_patients(args.patients, knowledge=kb, id_column=args.id_column, **dialect_options(args))
    explanations = explain_patients(
        model, patients, top=args.top, n_reasons=args.reasons, prevalence=prevalence, next_findings=args.next_findings
    )
    sys.stdout.write(render_text(explanations))
    if args.json is not None:
        doc = {"disclaimer": DISCLAIMER, "patients": [e.to_dict() for e in explanations]}
        Path(args.json).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{PROG}: wrote {args.json}", file=sys.stderr)
    if args.plot is not None:
        from .explain import explain
        from .plots import waterfall_png

        out_dir = Path(args.plot)
        out_dir.mkdir(parents=True, exist_ok=True)
        ex = explain(model, patients)
        used: set[str] = set()
        for i, e in enumerate(explanations):
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", e.patient_id).strip("._") or f"patient_{i}"
            if stem in used:
                stem = f"{stem}_{i}"
            used.add(stem)
            waterfall_png(model, ex[i], e.top_class, out_dir / f"{stem}.png", prevalence=prevalence, patient_id=e.patient_id)
        print(f"{PROG}: wrote {len(explanations)} waterfall PNG(s) to {out_dir}", file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# pulmocalc serve
# --------------------------------------------------------------------------------------------
def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_int_at_least(0), default=8000, help="port (default 8000; 0 picks a free one)")
    _add_model_argument(p)
    _add_knowledge_argument(p)


@command("serve", help="the teaching page: enter findings, watch the differential, learn what to check next",
         arguments=_serve_arguments)
def _run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401
        import starlette  # noqa: F401
    except ImportError:
        raise ValueError("pulmocalc serve needs the serve extra: pip install 'pulmocalc[serve]'") from None
    if args.port > 65535:
        raise ValueError(f"--port must be at most 65535, got {args.port}")
    from .artifacts import load_model
    from .serve import check_address, run

    check_address(args.host, args.port)
    model = load_model(args.model, knowledge=args.knowledge)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"{PROG}: warning: serving on {args.host}, reachable from other machines; the page has no login", file=sys.stderr)
    return run(model, host=args.host, port=args.port)


# the model's subcommands live in their own module; registering them here (not by import side
# effect there) keeps one COMMANDS registry even when this module runs as ``python -m ml.cli``
from .cli_model import register as _register_model_commands  # noqa: E402

_register_model_commands(command)
from .cli_report import register as _register_report_commands  # noqa: E402

_register_report_commands(command)

if __name__ == "__main__":
    sys.exit(main())
