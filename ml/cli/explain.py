"""``pulmocalc explain``: each patient's differential with the findings for and against."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._args import (
    add_knowledge_argument,
    add_model_argument,
    add_patients_argument,
    add_prevalence_argument,
    dialect_options,
    int_at_least,
    model_from,
    prevalence_from,
)
from ._files import output_dir
from ._registry import EXIT_OK, PROG, command
from .progress import ProgressCallback, add_quiet_argument, header_line, show_progress


def _explain_arguments(p: argparse.ArgumentParser) -> None:
    add_patients_argument(p)
    add_model_argument(p)
    p.add_argument("--top", type=int_at_least(1), default=3, help="classes explained per patient, most probable first (default 3)")
    p.add_argument("--reasons", type=int_at_least(0), default=5, help="findings listed for and against each class (default 5)")
    p.add_argument("--next", type=int_at_least(0), default=3, dest="next_findings",
                   help="findings to check next, by expected information gain under the exact oracle (default 3; 0: none)")
    add_prevalence_argument(p)
    p.add_argument("--id-column", metavar="COL", help="a column identifying patients")
    p.add_argument("--plot", metavar="DIR", help="write a waterfall PNG of the top class's reasons per patient to DIR")
    p.add_argument("--json", metavar="FILE", help="also write the explanations as JSON")
    add_knowledge_argument(p)
    add_quiet_argument(p)


@command("explain", help="print each patient's differential with the findings for and against, in plain words",
         arguments=_explain_arguments)
def _run_explain(args: argparse.Namespace) -> int:
    import json

    from data_gen import read_patients

    from ..reasons import DISCLAIMER, EXPLAIN_BATCH, explain_patients, render_text

    if args.plot is not None:
        output_dir(args.plot, "--plot", "the waterfall figures (one PNG per patient)")
    model = model_from(args)
    kb = model.knowledge
    prevalence = prevalence_from(args, kb)
    patients = read_patients(args.patients, knowledge=kb, id_column=args.id_column, **dialect_options(args))
    print(header_line("explain", knowledge=kb, model=model), flush=True)
    explanations = []
    # printed batch by batch as soon as each is ready, so `explain big.csv | head` answers at once
    with ProgressCallback("explaining", unit="patients", enabled=show_progress(args)) as report:
        for start in range(0, len(patients), EXPLAIN_BATCH):
            batch = explain_patients(model, patients.iloc[start : start + EXPLAIN_BATCH], top=args.top, n_reasons=args.reasons,
                                     prevalence=prevalence, next_findings=args.next_findings)
            sys.stdout.write(render_text(batch, preamble=start == 0))
            sys.stdout.flush()
            explanations += batch
            report(len(explanations), len(patients))
    if args.json is not None:
        doc = {"disclaimer": DISCLAIMER, "patients": [e.to_dict() for e in explanations]}
        Path(args.json).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{PROG}: wrote {args.json}", file=sys.stderr)
    if args.plot is not None:
        _waterfalls(model, patients, explanations, Path(args.plot), prevalence)
    return EXIT_OK


def _waterfalls(model, patients, explanations, out_dir: Path, prevalence) -> None:
    import re

    from ..plots import waterfall_png
    from ..treeshap import explain

    out_dir.mkdir(parents=True, exist_ok=True)
    ex = explain(model, patients)
    used: set[str] = set()
    for i, e in enumerate(explanations):
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", e.patient).strip("._") or f"patient_{i}"
        if stem in used:
            stem = f"{stem}_{i}"
        used.add(stem)
        waterfall_png(model, ex[i], e.top_class, out_dir / f"{stem}.png", prevalence=prevalence, patient_id=e.patient)
    print(f"{PROG}: wrote {len(explanations)} waterfall PNG(s) to {out_dir}", file=sys.stderr)
