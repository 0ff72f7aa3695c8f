"""``pulmocalc train``, ``evaluate`` and ``predict``: the model's subcommands.

Part of the command line (it prints); registered by :mod:`ml.cli`. Each subcommand is thin and
calls the public API.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _prevalence(args, kb):
    from .cli import parse_class_spec

    if getattr(args, "prevalence", None) is None:
        return None
    return parse_class_spec(args.prevalence, "--prevalence", kb.class_names, float)


def _load(args):
    from .artifacts import load_model

    return load_model(args.model, knowledge=getattr(args, "knowledge", None))


# --------------------------------------------------------------------------------------------
# pulmocalc train
# --------------------------------------------------------------------------------------------
def _recording_argument(text: str):
    """--recording: 'shipped', 'complete', a regime name of the knowledge base, or a rate."""
    from .config import TRAINING

    if text == "shipped":
        return TRAINING["recording"]
    try:
        q = float(text)
    except ValueError:
        return text  # a regime name; checked against the knowledge base when generating
    if not 0 < q <= 1:
        raise argparse.ArgumentTypeError(f"a recording rate must lie in (0, 1], got {text}")
    return q


def _train_arguments(p: argparse.ArgumentParser) -> None:
    from .config import TRAINING
    from .cli import _add_knowledge_argument, _int_at_least

    p.add_argument("--n", type=_int_at_least(1000), default=TRAINING["n"], help=f"training patients (default {TRAINING['n']:,})")
    p.add_argument("--seed", type=_int_at_least(0), default=TRAINING["seed"], help=f"cohort and training seed (default {TRAINING['seed']})")
    p.add_argument(
        "--out",
        metavar="PATH",
        help="model file to write: .joblib, or .skops for the pickle-free format (needs pulmocalc[skops]); "
        "its metadata (.json) and .sha256 are written beside it",
    )
    p.add_argument("--ship", action="store_true", help="write the shipped default model (models/) and pin its hash in ml/shipped.py")
    p.add_argument(
        "--recording",
        default="shipped",
        type=_recording_argument,
        metavar="REGIME",
        help="how the training patients are reported: 'shipped' (default: the mixture of ml/config.py), 'complete', "
        "'case_report', or a number in (0, 1] (each value kept with that probability)",
    )
    p.add_argument("--validation-n", type=_int_at_least(1000), default=100_000, help="held-out patients for the recorded validation metrics")
    _add_knowledge_argument(p)


def run_train(args: argparse.Namespace) -> int:
    import numpy as np

    from data_gen import generate_cohort, load_knowledge, oracle_proba

    from .artifacts import DEFAULT_MODEL_PATH
    from .config import TRAINING
    from .evaluate import classification_metrics
    from .model import train

    if args.out is None and not args.ship:
        raise ValueError("give --out PATH for the model file, or --ship to replace the shipped default model")
    if args.ship and args.recording != TRAINING["recording"]:
        raise ValueError("--ship writes the default model, trained on the shipped recording mixture; drop --recording")
    if args.ship and args.knowledge is not None:
        raise ValueError("--ship writes the default model, which must be trained on the shipped knowledge base; drop --knowledge")
    out = DEFAULT_MODEL_PATH if args.ship else Path(args.out)
    # refused before minutes of training, not after
    if out.suffix not in (".joblib", ".skops"):
        raise ValueError(f"--out {str(out)!r}: a model file ends in .joblib, or .skops for the pickle-free format")
    if out.suffix == ".skops":
        from .artifacts import _import_skops

        _import_skops()
    kb = load_knowledge(args.knowledge)
    recording = args.recording
    _progress(f"generating {args.n:,} training patients (seed {args.seed}, recording {_recording_name(recording, kb)})")
    cohort = generate_cohort(args.n, random_state=args.seed, recording=recording, knowledge=kb)
    _progress("training the gradient-boosted classifier (early stopping on a validation split)")
    model = train(cohort, random_state=args.seed, knowledge=args.knowledge)
    model.metadata["recording"] = None if recording == "complete" else recording
    del cohort
    _progress(f"trained: {model.booster.n_iter_} iterations, {model.n_trees} trees in {model.metadata['train_seconds']:.0f} s")
    # validation metrics on patients the booster never saw, from a seed stream of their own
    val_seed = np.random.SeedSequence(args.seed, spawn_key=(1,))
    validation = generate_cohort(args.validation_n, random_state=val_seed, knowledge=kb)
    y = validation["calcification_type"].astype(str).to_numpy()
    m = classification_metrics(y, model.predict_proba(validation).to_numpy(), model.classes_)
    o = classification_metrics(y, oracle_proba(validation, knowledge=kb).to_numpy(), model.classes_)
    model.metadata["validation"] = {
        "n": args.validation_n,
        "seed": f"SeedSequence({args.seed}, spawn_key=(1,))",
        "accuracy": m["accuracy"],
        "log_loss": m["log_loss"],
        "oracle_accuracy": o["accuracy"],
        "oracle_log_loss": o["log_loss"],
    }
    path = model.export_skops(out) if out.suffix == ".skops" else model.save(out)
    if args.ship:
        _pin_shipped(path)
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): {model.n_trees} trees; validation accuracy "
        f"{m['accuracy']:.4f} (oracle {o['accuracy']:.4f}), log loss {m['log_loss']:.4f} (oracle {o['log_loss']:.4f})"
    )
    return 0


def _recording_name(recording, kb) -> str:
    from data_gen import resolve_recording

    return resolve_recording(recording, kb).name


def _pin_shipped(path: Path) -> None:
    from .artifacts import _sha256

    shipped = Path(__file__).with_name("shipped.py")
    text = shipped.read_text()
    head, _, _ = text.partition("SHIPPED_SHA256 =")
    shipped.write_text(f'{head}SHIPPED_SHA256 = "{_sha256(path)}"\n')


# --------------------------------------------------------------------------------------------
# pulmocalc evaluate
# --------------------------------------------------------------------------------------------
def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    from .cli import _add_knowledge_argument, _add_model_argument, _add_prevalence_argument, _int_at_least

    _add_model_argument(p)
    p.add_argument("--n", type=_int_at_least(100), default=100_000, help="patients to generate (default 100,000)")
    p.add_argument("--seed", type=_int_at_least(0), default=7, help="seed of the generated evaluation cohort (default 7)")
    p.add_argument("--data", metavar="FILE", help="evaluate on a labelled CSV/Parquet file instead of a generated cohort")
    from .cli import _add_dialect_arguments

    _add_dialect_arguments(p)
    p.add_argument("--id-column", metavar="COL", help="with --data: a column identifying patients (not a feature)")
    _add_prevalence_argument(p)
    p.add_argument("--bootstrap", type=_int_at_least(0), default=1000, help="paired bootstrap resamples for the gap CI (0 = none)")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    _add_knowledge_argument(p)


def run_evaluate(args: argparse.Namespace) -> int:
    import pandas as pd

    from data_gen import generate_cohort, read_patients

    from .evaluate import evaluate

    model = _load(args)
    kb = model.knowledge
    prevalence = _prevalence(args, kb)
    if args.data is not None:
        from .cli import dialect_options

        cohort = read_patients(args.data, knowledge=kb, label="required", id_column=args.id_column, **dialect_options(args))
        source = f"{args.data} ({len(cohort):,} patients)"
    else:
        if args.id_column is not None:
            raise ValueError("--id-column applies to --data FILE; a generated cohort has no identifier column")
        _progress(f"generating {args.n:,} evaluation patients (seed {args.seed})")
        cohort = generate_cohort(args.n, random_state=args.seed, prevalence=prevalence, knowledge=kb)
        source = f"generated cohort, n={args.n:,}, seed={args.seed}"
    _progress("evaluating the model, the oracle and the baselines")
    result = evaluate(model, cohort, prevalence=prevalence)
    print(f"pulmocalc evaluate — {source}; research and teaching on synthetic data, not a clinical device")
    with pd.option_context("display.width", 120, "display.float_format", "{:.4f}".format):
        print(result.table().to_string())
        print("\nrecall per class:")
        print(result.per_class()["recall"].unstack("class").to_string())
    report = result.to_dict()
    if args.bootstrap:
        gap = result.bootstrap_gap(n_boot=args.bootstrap)
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
    from .cli import (
        _add_knowledge_argument,
        _add_model_argument,
        _add_patients_argument,
        _add_prevalence_argument,
        _int_at_least,
    )

    _add_patients_argument(p)
    _add_model_argument(p)
    _add_prevalence_argument(p)
    p.add_argument("--id-column", metavar="COL", help="a column identifying patients, carried to the output")
    p.add_argument("--out", metavar="FILE", help="write probabilities as .csv or .json instead of printing")
    p.add_argument("--chunk-size", type=_int_at_least(1), default=100_000, help="patients read and predicted at a time (bounds memory)")
    _add_knowledge_argument(p)


def run_predict(args: argparse.Namespace) -> int:
    from data_gen import iter_patients

    from .cli import dialect_options, write_cohort

    model = _load(args)
    kb = model.knowledge
    prevalence = _prevalence(args, kb)
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
    if out is None:
        print("pulmocalc predict — research and teaching on synthetic data, not a clinical device")
        for proba in itertools.chain([first], predicted):
            _print_differentials(proba, kb)
        return 0
    if out.suffix.lower() == ".json":
        records = []
        for proba in itertools.chain([first], predicted):
            for pid, row in proba.iterrows():
                ranked = row.sort_values(ascending=False)
                records.append({"patient": _plain(pid), "differential": [{"type": k, "probability": float(v)} for k, v in ranked.items()]})
        out.write_text(json.dumps(records, indent=1) + "\n")
    else:
        def rows():
            for proba in itertools.chain([first], predicted):
                proba.insert(0, "predicted_type", proba.idxmax(axis=1))
                yield proba.reset_index()

        # written beside the output under a temporary name and renamed when complete, so a bad
        # row further down the file leaves no truncated output behind
        write_cohort(rows(), out, "csv")
    print(f"wrote {out}")
    return 0


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _print_differentials(proba, kb) -> None:
    labels = {k: c.label for k, c in kb.classes.items()}
    name = proba.index.name or "row"
    for pid, row in proba.iterrows():
        ranked = row.sort_values(ascending=False)
        print(f"\n{name} {pid}:")
        for k, v in ranked.items():
            print(f"  {100 * v:6.1f}%  {labels[k]}")


def register(command) -> None:
    """Register the model subcommands with the CLI's ``command`` decorator."""
    command("train", help="train the classifier on a generated cohort and save it", arguments=_train_arguments)(run_train)
    command("evaluate", help="evaluate a model against the oracle and baselines", arguments=_evaluate_arguments)(run_evaluate)
    command("predict", help="print or write each patient's ranked differential", arguments=_predict_arguments)(run_predict)
