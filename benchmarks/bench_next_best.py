"""Speed of data_gen.next_best_findings: milliseconds per patient, with a reference.

For ``--n`` patients (the three review cases, the published case reports and sparse synthetic
patients drawn under the case-report regime), times one ``next_best_findings`` call per patient
and prints the median and 95th percentile in ms, beside the reference measured in the same run:
one ``oracle_proba`` call on one patient (the fixed cost of one checked oracle call). Target
(issue "A teaching page for the differential"): at most 50 ms per patient.

Usage::

    python benchmarks/bench_next_best.py [--n 60] [--recording case_report]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from data_gen import generate_cohort, load_knowledge, load_published_cases, next_best_findings, oracle_proba, paper_cases  # noqa: E402

TARGET_MS = 50.0


def _patients(n: int, recording, kb) -> pd.DataFrame:
    cols = list(kb.column_names)
    frames = [paper_cases()[cols], load_published_cases(knowledge=kb).X[cols]]
    frames.append(generate_cohort(max(n, 1), random_state=12, recording=recording, knowledge=kb)[cols])
    return pd.concat(frames, ignore_index=True).head(n)


def timed(fn) -> float:
    """Milliseconds one call of ``fn`` takes."""
    t0 = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - t0)


def spread(ms) -> str:
    """"median 31.2 ms, p95 48.0 ms" of a list of timings."""
    return f"median {np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="patients timed (default 60)")
    ap.add_argument("--recording", default="case_report", help="recording regime of the blanks (default case_report)")
    args = ap.parse_args(argv)
    kb = load_knowledge()
    X = _patients(args.n, args.recording, kb)
    next_best_findings(X.iloc[[0]], recording=args.recording, knowledge=kb)  # warm the caches
    oracle_proba(X.iloc[[0]], recording=args.recording, knowledge=kb)
    ms, ref, rows = [], [], []
    for i in range(len(X)):  # one call per patient is what is being timed
        p = X.iloc[[i]]
        ref.append(timed(lambda: oracle_proba(p, recording=args.recording, knowledge=kb)))
        ms.append(timed(lambda: rows.append(len(next_best_findings(p, recording=args.recording, knowledge=kb)))))
    print(f"next_best_findings on {len(X)} patients (recording={args.recording!r}, {np.mean(rows):.0f} candidate columns on average)")
    print(f"  per patient: {spread(ms)} (target <= {TARGET_MS:.0f} ms: {'met' if np.median(ms) <= TARGET_MS else 'NOT met'} at the median)")
    print(f"  reference, one oracle_proba call on one patient: {spread(ref)}")
    print(f"  ratio next_best / oracle_proba (medians): {np.median(ms) / np.median(ref):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
