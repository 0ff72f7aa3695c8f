"""``pulmocalc evaluate`` and ``predict``: a saved model on generated or given patients.

Part of the command line (it prints); each subcommand is thin and calls the public API. Outputs
follow one rule (docs/architecture.md, "Outputs"): the identifier is ``patient``, classes come in
the knowledge base's order, and text shows probabilities with
:func:`ml.wording.format_probability`.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from ._args import model_from, prevalence_from
from ._registry import command
from .progress import ProgressCallback, add_quiet_argument, header_line, show_progress


#: The name of the patient identifier in every output file (CSV column, JSON key).
OUTPUT_ID = "patient"


# --------------------------------------------------------------------------------------------
# pulmocalc evaluate
# --------------------------------------------------------------------------------------------
def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    from ._args import add_knowledge_argument, add_model_argument, add_prevalence_argument, int_at_least

    add_model_argument(p)
    p.add_argument("--n", type=int_at_least(100), default=100_000, help="patients to generate (default 100,000)")
    p.add_argument("--seed", type=int_at_least(0), default=7, help="seed of the generated evaluation cohort (default 7)")
    p.add_argument("--data", metavar="FILE", help="evaluate on a labelled CSV/Parquet file instead of a generated cohort")
    from ._args import add_dialect_arguments

    add_dialect_arguments(p)
    p.add_argument("--id-column", metavar="COL", help="with --data: a column identifying patients (not a feature)")
    add_prevalence_argument(p)
    p.add_argument("--bootstrap", type=int_at_least(0), default=1000, help="paired bootstrap resamples for the gap CI (0 = none)")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    add_knowledge_argument(p)
    add_quiet_argument(p)


def run_evaluate(args: argparse.Namespace) -> int:
    import pandas as pd

    from data_gen import generate_cohort, read_patients

    from ..evaluation import evaluate

    model = model_from(args)
    kb = model.knowledge
    prevalence = prevalence_from(args, kb)
    print(header_line("evaluate", knowledge=kb, model=model), flush=True)
    enabled = show_progress(args)
    if args.data is not None:
        from ._args import dialect_options

        cohort = read_patients(args.data, knowledge=kb, label="required", id_column=args.id_column, **dialect_options(args))
        source = f"{args.data} ({len(cohort):,} patients)"
    else:
        if args.id_column is not None:
            raise ValueError("--id-column applies to --data FILE; a generated cohort has no identifier column")
        with ProgressCallback("generating", enabled=enabled) as report:
            report(0, 1, f"{args.n:,} patients, seed {args.seed}")
            cohort = generate_cohort(args.n, random_state=args.seed, prevalence=prevalence, knowledge=kb)
            report(1, 1)
        source = f"generated cohort, n={args.n:,}, seed={args.seed}"
    with ProgressCallback("evaluating", enabled=enabled) as report:
        result = evaluate(model, cohort, prevalence=prevalence, progress=report)
    print(f"on {source}")
    with pd.option_context("display.width", 120, "display.float_format", "{:.4f}".format):
        print(result.table().to_string())
        print("\nrecall per class (classes in the knowledge base's order):")
        recall = result.per_class()["recall"].unstack("class")
        # rows in the table's order above, columns in the knowledge base's class order
        rows = [r for r in result.table().index if r in recall.index]
        print(recall.loc[rows, [k for k in kb.class_names if k in recall.columns]].to_string())
    report = result.to_dict()
    if args.bootstrap:
        with ProgressCallback("bootstrap", enabled=enabled) as bar:
            bar(0, 1, f"{args.bootstrap} paired resamples")
            gap = result.bootstrap_gap(n_boot=args.bootstrap)
            bar(1, 1)
        report["bootstrap_gap"] = gap
        print(f"\ngap to the oracle (paired bootstrap, {args.bootstrap} resamples): {_gap_text(gap)}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


def _gap_text(gap: dict) -> str:
    (alo, ahi), (llo, lhi) = gap["accuracy_gap_pp_ci"], gap["log_loss_gap_ci"]
    return (
        f"model behind by {gap['accuracy_gap_pp']:.2f} pp accuracy [95% CI {alo:.2f}, {ahi:.2f}] and "
        f"{gap['log_loss_gap']:.4f} nats log loss [95% CI {llo:.4f}, {lhi:.4f}]"
    )


# --------------------------------------------------------------------------------------------
# pulmocalc predict
# --------------------------------------------------------------------------------------------
def _predict_arguments(p: argparse.ArgumentParser) -> None:
    from ._args import (
        add_knowledge_argument,
        add_model_argument,
        add_patients_argument,
        add_prevalence_argument,
        int_at_least,
    )

    add_patients_argument(p)
    add_model_argument(p)
    add_prevalence_argument(p)
    p.add_argument("--id-column", metavar="COL", help="a column identifying patients, carried to the output")
    p.add_argument("--out", metavar="FILE", help="write probabilities as .csv or .json instead of printing")
    p.add_argument("--chunk-size", type=int_at_least(1), default=100_000, help="patients read and predicted at a time (bounds memory)")
    add_knowledge_argument(p)
    add_quiet_argument(p)


def run_predict(args: argparse.Namespace) -> int:
    from data_gen import iter_patients

    from ._args import dialect_options
    from ._files import write_cohort

    model = model_from(args)
    kb = model.knowledge
    prevalence = prevalence_from(args, kb)
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"--out must end in .csv or .json, got {args.out!r}")
    chunks = iter_patients(
        args.patients, chunksize=args.chunk_size, knowledge=kb, id_column=args.id_column, **dialect_options(args)
    )
    # one chunk of patients is read, checked and predicted at a time, so memory is bounded by
    # --chunk-size; the first chunk is checked before anything is printed or written
    predicted = (model._proba_checked(chunk, prevalence) for chunk in chunks)
    first = next(predicted, None)
    if first is None:  # iter_patients refuses a file without patients; this is a safeguard
        raise ValueError(f"no patients in {args.patients!r}")
    header = header_line("predict", knowledge=kb, model=model)
    if out is None:
        print(header)
        for proba in itertools.chain([first], predicted):
            _print_differentials(proba, kb)
        return 0
    print(header, flush=True)

    def tables():
        # the same columns in CSV and JSON: patient, predicted_type, one probability per class
        for proba in itertools.chain([first], predicted):
            table = proba.rename_axis(OUTPUT_ID).reset_index()
            table.insert(1, "predicted_type", proba.idxmax(axis=1).to_numpy())
            yield table

    with ProgressCallback("predicting", unit="patients", enabled=show_progress(args)) as report:
        def counted(chunks):
            n = 0
            for table in chunks:
                n += len(table)
                report(n, None)
                yield table

        if out.suffix.lower() == ".json":
            records = [r for table in counted(tables()) for r in table.to_dict(orient="records")]
            text = json.dumps([{k: _plain(v) for k, v in r.items()} for r in records], indent=1) + "\n"
            out.write_text(text, encoding="utf-8")
        else:
            # written beside the output under a temporary name and renamed when complete, so a bad
            # row further down the file leaves no truncated output behind
            write_cohort(counted(tables()), out, "csv")
    print(f"wrote {out}")
    return 0


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _print_differentials(proba, kb) -> None:
    from ..wording import format_probability

    labels = {k: c.label for k, c in kb.classes.items()}
    for pid, row in proba.iterrows():
        # most probable first; ties keep the knowledge base's class order (stable sort)
        ranked = row.sort_values(ascending=False, kind="stable")
        print(f"\nPatient {pid}:")
        for k, v in ranked.items():
            print(f"  {format_probability(v):>6}  {labels[k]}")


# registered on import, in the order --help lists them
command("evaluate", help="evaluate a model against the oracle and baselines", arguments=_evaluate_arguments)(run_evaluate)
command("predict", help="print or write each patient's ranked differential", arguments=_predict_arguments)(run_predict)
