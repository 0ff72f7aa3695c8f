"""Benchmark of the input check (``data_gen.validate_frame``): vectorized path vs detailed path.

``validate_frame`` is what ``model.predict_proba`` / ``model.check`` call first for every
patient (issue 14: one patient's ``predict_proba`` within 3 ms median). For 1, 100 and
``--n`` (default 20,000) generated patients with blanks (``recording=0.7``), in two typings --
the canonical dtypes (nullable ``Int8``, categoricals, ``float64``, as ``generate_cohort``
returns) and the typing of a CSV read by pandas (``float64`` binary columns, text levels) --
it prints the median time of ``validate_frame`` with the vectorized check and, as the
reference measured in the same run, with the detailed per-column check alone
(``data_gen.contract._FAST = False``), and their ratio. The target for one canonical patient
is 0.7 ms median. The script only prints.

Usage::

    python benchmarks/bench_validate.py [--n 20000] [--repeat 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import data_gen.contract as contract  # noqa: E402
from data_gen import LABEL, generate_cohort, load_knowledge, validate_frame  # noqa: E402


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up: caches of the knowledge base and the plan
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=300, help="calls per figure for 1 and 100 rows (fewer for --n)")
    args = ap.parse_args(argv)
    kb = load_knowledge()
    cohort = generate_cohort(args.n, random_state=3, recording=0.7).drop(columns=[LABEL])
    print(f"validate_frame, median ms per call (vectorized | detailed per-column reference | ratio); {args.n} patients at most")
    for n in (1, 100, args.n):
        repeat = args.repeat if n <= 100 else max(5, args.repeat // 20)
        canonical = cohort.iloc[:n]
        csv_like = canonical.astype({c: float for c in kb.cells.binary}).astype({c: object for c in kb.cells.categorical})
        for name, df in (("canonical dtypes", canonical), ("CSV dtypes", csv_like)):
            fast = median_ms(lambda: validate_frame(df, knowledge=kb), repeat)
            with mock.patch.object(contract, "_FAST", False):
                slow = median_ms(lambda: validate_frame(df, knowledge=kb), repeat)
            print(f"  {n:>7} rows, {name:<16}: {fast:8.3f} | {slow:8.3f} | x{slow / fast:5.1f} faster")
    print("target: one canonical patient <= 0.7 ms median (issue 14)")


if __name__ == "__main__":
    main()
