"""The shipped model's gap to the oracle, with paired-bootstrap CIs, and the learning curve.

Prints (issue 4, "The gap to the oracle"):

* on a fresh cohort (default 100,000 patients, seed 424242 — not a seed used in training or
  validation), the model's and the oracle's accuracy and log loss, and the gaps (oracle minus
  model accuracy in percentage points, model minus oracle log loss in nats) with 95% CIs from
  a paired bootstrap over patients; targets: <= 0.5 pp and <= 0.02 nats (limits 1.0 / 0.03);
* the same gap at every recording level (``--recording``, default ``complete,0.5,0.3,0.15,
  case_report``): the same fresh patients reported under complete records, missing completely
  at random with 50%, 30% and 15% of the values kept, and the knowledge base's case-report
  regime; the oracle is exact under each (``oracle_proba(recording=...)``); targets for the
  sparse levels: <= 1.0 pp and <= 0.03 nats;
* with ``--learning-curve``, model vs oracle accuracy and log loss for training sizes
  1k ... 200k (the shipped configuration, each trained afresh) on one fixed test cohort.

Usage::

    python benchmarks/bench_gap.py [--model PATH] [--n 100000] [--seed 424242] [--recording LIST] [--learning-curve]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml import load_model  # noqa: E402
from ml.evaluation import learning_curve  # noqa: E402
from ml.realworld import gap_by_recording  # noqa: E402

SIZES = (1_000, 3_000, 10_000, 30_000, 100_000, 200_000)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model file (default: the shipped model)")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=424242)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--recording", default="complete,0.5,0.3,0.15,case_report",
                    help="comma-separated recording regimes (complete, case_report, or a keep rate)")
    ap.add_argument("--learning-curve", action="store_true")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated training sizes")
    args = ap.parse_args(argv)

    model = load_model(args.model)
    meta = model.metadata
    print(f"model: {model!r}; training seed {meta['train_seed']}, n {meta['train_n']:,}")
    rows = []
    for rec in args.recording.split(","):
        rec = float(rec) if rec.replace(".", "", 1).isdigit() else rec
        t0 = time.perf_counter()
        (row,) = gap_by_recording(model, levels=(rec,), n=args.n, seed=args.seed, n_boot=args.bootstrap)
        rows.append(row)
        recorded, gap = row["cells_recorded"], row
        print(f"\nrecording {rec!s}: n={args.n:,}, seed={args.seed}, {recorded:.1%} of cells recorded ({time.perf_counter() - t0:.1f} s)")
        print(f"{'':24s}{'model':>10s}{'oracle':>10s}")
        print(f"{'accuracy':24s}{gap['model_accuracy']:10.4f}{gap['oracle_accuracy']:10.4f}")
        print(f"{'log loss (nats)':24s}{gap['model_log_loss']:10.4f}{gap['oracle_log_loss']:10.4f}")
        lo, hi = gap["accuracy_gap_pp_ci"]
        print(f"accuracy gap (oracle - model): {gap['accuracy_gap_pp']:.3f} pp  95% CI [{lo:.3f}, {hi:.3f}]")
        lo, hi = gap["log_loss_gap_ci"]
        print(f"log-loss gap (model - oracle): {gap['log_loss_gap']:.4f} nats 95% CI [{lo:.4f}, {hi:.4f}]")
    print(f"\nsummary (paired bootstrap over patients, {args.bootstrap} resamples; limits: complete 0.5 pp / 0.02 nats, "
          "sparse 1.0 pp / 0.03 nats)")
    print(f"{'recording':>12s} {'cells':>6s} {'model acc':>9s} {'oracle acc':>10s} {'gap pp [95% CI]':>24s} {'gap nats [95% CI]':>28s}")
    for g in rows:
        rec, recorded = g["recording"], g["cells_recorded"]
        a_lo, a_hi = g["accuracy_gap_pp_ci"]
        l_lo, l_hi = g["log_loss_gap_ci"]
        print(f"{rec!s:>12s} {recorded:6.1%} {g['model_accuracy']:9.4f} {g['oracle_accuracy']:10.4f} "
              f"{g['accuracy_gap_pp']:7.3f} [{a_lo:6.3f}, {a_hi:6.3f}] {g['log_loss_gap']:9.4f} [{l_lo:7.4f}, {l_hi:7.4f}]")

    if args.learning_curve:
        sizes = tuple(int(s) for s in args.sizes.split(","))
        print(f"\nlearning curve (shipped configuration; test cohort n={args.n:,}, seed={args.seed})")
        curve = learning_curve(sizes, test_n=args.n, test_seed=args.seed, progress=lambda m: print(m, file=sys.stderr, flush=True))
        print(curve.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
