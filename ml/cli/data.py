"""``pulmocalc generate``, ``dictionary`` and ``template``: the cohort model's subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ._args import add_cluster_arguments, add_knowledge_argument, int_at_least, load_knowledge, parse_class_spec
from ._files import output_format, output_path, write_cohort
from ._registry import EXIT_OK, command
from .progress import add_quiet_argument, header_line, progress_bar, show_progress

if TYPE_CHECKING:
    import pandas as pd

# Rows per generated chunk: a multiple of the sampler's block size, so no block is drawn twice.
DEFAULT_CHUNK_SIZE = 6 * (1 << 15)
TOP_DEVIATIONS = 5


def _generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int_at_least(1), metavar="N", help="number of patients (optional with --counts)")
    p.add_argument(
        "--seed",
        type=int_at_least(0),
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
    add_knowledge_argument(p)
    p.add_argument("--latent", action="store_true", help="also write the latent subtypes as latent_<factor> columns")
    p.add_argument("--out", required=True, metavar="FILE", help="output file: .csv, or .parquet (needs pyarrow); a directory with --partitions")
    p.add_argument(
        "--chunk-size",
        type=int_at_least(1),
        default=DEFAULT_CHUNK_SIZE,
        metavar="ROWS",
        help=f"patients generated and written at a time (default {DEFAULT_CHUNK_SIZE}); the output does not depend on it",
    )
    part = p.add_argument_group("a partitioned dataset on Dask (needs pulmocalc[distributed])")
    part.add_argument("--partitions", type=int_at_least(1), metavar="K",
                      help="write a partitioned Parquet dataset: --out is a directory, K files, one Dask task each "
                      "(the same rows as one file; --chunk-size does not apply)")
    part.add_argument("--resume", action="store_true",
                      help="finish an interrupted --partitions run in --out: only the missing partitions are written "
                      "(the settings must match the run's; --seed may be left out)")
    add_cluster_arguments(part)
    add_quiet_argument(p)


@command("generate", help="generate a synthetic cohort and print how closely it follows the knowledge base",
         arguments=_generate_arguments)
def _run_generate(args: argparse.Namespace) -> int:
    if args.partitions is not None:
        from .partitioned import run_partitioned_generate

        return run_partitioned_generate(args)
    if args.scheduler is not None or args.workers is not None or args.resume:
        raise ValueError("--scheduler, --workers and --resume apply to a partitioned dataset; add --partitions K")
    # imported here so that usage errors and --help answer without loading numpy and pandas
    import numpy as np

    from data_gen import iter_cohort
    from data_gen.fidelity import FidelityTally
    from data_gen.sampler import resolve_prevalence

    out = output_path(args.out)
    fmt = output_format(out)
    kb = load_knowledge(args.knowledge)
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
    progress = progress_bar(n, desc="generating", unit="patients", enabled=show_progress(args))
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

    with progress:
        n_columns = write_cohort(observed(chunks), out, fmt)
    _print_generate_summary(kb, tally, out, fmt, n, n_columns, seed, seed_drawn, target, target_label)
    return EXIT_OK


def _print_generate_summary(kb, tally, out, fmt, n, n_columns, seed, seed_drawn, target, target_label) -> None:
    counts = tally.class_counts
    print(header_line("generate", knowledge=kb))
    print(f"wrote {n:,} patients ({n_columns} columns) to {out} ({fmt})")
    seed_note = " (drawn at random; pass --seed to reproduce)" if seed_drawn else ""
    print(f"seed {seed}{seed_note}")
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
        "largest deviations of binary columns from the knowledge base, per class: P(x=1 | class) among "
        "recorded values; z = (observed - expected) / binomial se"
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
    add_knowledge_argument(p)
    p.add_argument("--out", metavar="FILE", help="write the Markdown here (e.g. docs/data-dictionary.md) instead of stdout")


@command("dictionary", help="write the data dictionary generated from the knowledge base",
         arguments=_dictionary_arguments)
def _run_dictionary(args: argparse.Namespace) -> int:
    from data_gen.dictionary import render_data_dictionary

    kb = load_knowledge(args.knowledge)
    text = render_data_dictionary(kb)
    if args.out is None:
        sys.stdout.write(text)
        return EXIT_OK
    out = output_path(args.out)
    # newline="" keeps "\n" on every platform, so the committed file compares equal everywhere
    with open(out, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    print(header_line("dictionary", knowledge=kb))
    print(f"wrote {out} ({len(text.splitlines())} lines)")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# pulmocalc template
# --------------------------------------------------------------------------------------------
def _template_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="FILE", help="the CSV file to write, e.g. patients.csv")
    add_knowledge_argument(p)


@command("template", help="write a CSV template: the contract's header and one example patient (the review's case 1)",
         arguments=_template_arguments)
def _run_template(args: argparse.Namespace) -> int:
    from data_gen import LABEL, paper_cases

    out = output_path(args.out)
    if out.suffix.lower() != ".csv":
        raise ValueError(f"--out {args.out!r}: the template is a .csv file")
    kb = load_knowledge(args.knowledge)
    example = paper_cases().drop(columns=[LABEL], errors="ignore").iloc[:1]
    example = example[list(kb.column_names)]
    write_cohort([example], out, "csv")
    print(header_line("template", knowledge=kb))
    print(f"wrote {out}: the header of the {len(kb.column_names)} contract columns and one example patient (the review's case 1); "
          "leave a cell empty when it is not recorded, and drop the columns you do not record")
    return EXIT_OK


