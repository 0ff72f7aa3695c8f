"""``pulmocalc train``: train the classifier on a generated cohort or on a given file, and save it.

Three steps, each with progress on a terminal: the training cohort (generated in chunks, the
same patients as one ``generate_cohort`` call, or read from ``--data``), the boosting iterations,
and validation metrics on a fresh generated cohort from a seed stream of its own, beside the
exact oracle's. With ``--data`` the label column is required and checked like every input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._args import add_dialect_arguments, add_knowledge_argument, dialect_options, int_at_least
from ._registry import command
from .progress import ProgressCallback, add_quiet_argument, header_line, show_progress

#: Rows per generated chunk while the training cohort is drawn (only the progress bar sees it:
#: the cohort is the same for any chunking).
GENERATE_CHUNK = 1 << 16


def _recording_argument(text: str):
    """--recording: 'shipped', 'complete', a regime name of the knowledge base, or a rate."""
    from ..config import TRAINING

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
    from ..config import TRAINING

    p.add_argument("--n", type=int_at_least(1000), help=f"training patients to generate (default {TRAINING['n']:,})")
    p.add_argument(
        "--data",
        metavar="FILE",
        help="train on this labelled CSV or Parquet cohort (e.g. from pulmocalc generate) instead of generating one; "
        "it needs the label column calcification_type",
    )
    p.add_argument("--id-column", metavar="COL", help="with --data: a column identifying patients (not a feature)")
    add_dialect_arguments(p)
    p.add_argument("--seed", type=int_at_least(0), default=TRAINING["seed"],
                   help=f"seed of the generated cohort, the booster's validation split and the validation cohort (default {TRAINING['seed']})")
    p.add_argument(
        "--out",
        metavar="PATH",
        help="model file to write: .joblib, or .skops for the pickle-free format (needs pulmocalc[skops]); "
        "its metadata (.json) and .sha256 are written beside it",
    )
    p.add_argument("--ship", action="store_true", help="write the shipped default model (models/) and pin its hash in ml/shipped.py")
    p.add_argument(
        "--recording",
        type=_recording_argument,
        metavar="REGIME",
        help="how the generated training patients are reported: 'shipped' (default: the mixture of ml/config.py), "
        "'complete', 'case_report', or a number in (0, 1] (each value kept with that probability)",
    )
    p.add_argument("--validation-n", type=int_at_least(1000), default=100_000, help="held-out patients for the recorded validation metrics")
    add_knowledge_argument(p)
    add_quiet_argument(p)


def _check_options(args, TRAINING) -> Path:
    from ..artifacts import DEFAULT_MODEL_PATH

    if args.out is None and not args.ship:
        raise ValueError("give --out PATH for the model file, or --ship to replace the shipped default model")
    if args.data is not None:
        for option, value in (("--n", args.n), ("--recording", args.recording), ("--ship", args.ship or None)):
            if value is not None:
                raise ValueError(f"{option} applies to a generated training cohort; with --data FILE the file is the cohort")
    elif args.id_column is not None:
        raise ValueError("--id-column applies to --data FILE; a generated cohort has no identifier column")
    if args.ship and args.recording not in (None, TRAINING["recording"]):
        raise ValueError("--ship writes the default model, trained on the shipped recording mixture; drop --recording")
    if args.ship and args.knowledge is not None:
        raise ValueError("--ship writes the default model, which must be trained on the shipped knowledge base; drop --knowledge")
    out = DEFAULT_MODEL_PATH if args.ship else Path(args.out)
    # refused before minutes of training, not after
    if out.suffix not in (".joblib", ".skops"):
        raise ValueError(f"--out {str(out)!r}: a model file ends in .joblib, or .skops for the pickle-free format")
    if not out.parent.is_dir():
        raise ValueError(f"--out {str(out)!r}: the directory {str(out.parent)!r} does not exist")
    if out.suffix == ".skops":
        from ..artifacts import _import_skops

        _import_skops()
    return out


def _training_cohort(args, kb, TRAINING, enabled: bool):
    """The training cohort and a description of where it came from (for the metadata)."""
    import pandas as pd

    from data_gen import iter_cohort, read_patients, resolve_recording

    from ..artifacts import _sha256

    if args.data is not None:
        cohort = read_patients(args.data, knowledge=kb, label="required", id_column=args.id_column, **dialect_options(args))
        # "recording" names a regime a cohort can be regenerated with (the report retrains under
        # it); a file's blanks are its own, so none is recorded and the file is named instead
        return cohort, {"data": str(args.data), "data_sha256": _sha256(Path(args.data)), "recording": None}
    n = TRAINING["n"] if args.n is None else args.n
    recording = TRAINING["recording"] if args.recording is None else args.recording
    name = resolve_recording(recording, kb).name
    with ProgressCallback(f"generating (recording {name})", unit="patients", enabled=enabled) as report:
        chunks = []
        for chunk in iter_cohort(n, chunk_size=GENERATE_CHUNK, random_state=args.seed, recording=recording, knowledge=kb):
            chunks.append(chunk)
            report(sum(len(c) for c in chunks), n)
    cohort = pd.concat(chunks)
    return cohort, {"recording": None if recording == "complete" else recording}


@command("train", help="train the classifier on a generated cohort (or --data FILE) and save it", arguments=_train_arguments)
def run_train(args: argparse.Namespace) -> int:
    import numpy as np

    from data_gen import generate_cohort, load_knowledge, oracle_proba

    from ..config import TRAINING
    from ..evaluation import classification_metrics
    from ..model import train

    out = _check_options(args, TRAINING)
    kb = load_knowledge(args.knowledge)
    print(header_line("train", knowledge=kb), flush=True)
    enabled = show_progress(args)
    cohort, source = _training_cohort(args, kb, TRAINING, enabled)
    with ProgressCallback("boosting", unit="iteration", enabled=enabled) as report:
        # off a terminal the booster is fitted exactly as without a bar (no verbose log to read)
        model = train(cohort, random_state=args.seed, knowledge=args.knowledge, progress=report if enabled else None)
    model.metadata.update(source)
    n_train = len(cohort)
    del cohort
    # validation metrics on patients the booster never saw, from a seed stream of their own
    with ProgressCallback("validating", enabled=enabled) as report:
        report(0, 3, f"generating {args.validation_n:,} patients")
        val_seed = np.random.SeedSequence(args.seed, spawn_key=(1,))
        validation = generate_cohort(args.validation_n, random_state=val_seed, knowledge=kb)
        y = validation["calcification_type"].astype(str).to_numpy()
        report(1, 3, "the model")
        m = classification_metrics(y, model.predict_proba(validation).to_numpy(), model.classes_)
        report(2, 3, "the exact oracle")
        o = classification_metrics(y, oracle_proba(validation, knowledge=kb).to_numpy(), model.classes_)
        report(3, 3)
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
        f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): trained on {n_train:,} patients, "
        f"{model.booster.n_iter_} iterations ({model.n_trees} trees) in {model.metadata['train_seconds']:.0f} s; "
        f"validation accuracy {m['accuracy']:.4f} (oracle {o['accuracy']:.4f}), "
        f"log loss {m['log_loss']:.4f} (oracle {o['log_loss']:.4f})"
    )
    return 0


def _pin_shipped(path: Path) -> None:
    from ..artifacts import _sha256

    shipped = Path(__file__).parent.parent / "shipped.py"
    text = shipped.read_text()
    head, _, _ = text.partition("SHIPPED_SHA256 =")
    shipped.write_text(f'{head}SHIPPED_SHA256 = "{_sha256(path)}"\n')
