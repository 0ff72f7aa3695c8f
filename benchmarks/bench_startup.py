"""Start-up and one-patient latency: `pulmocalc -h` against `import pandas`, `predict_proba` for one patient.

Usage::

    python benchmarks/bench_startup.py [--repeat 15] [--predict-repeat 300]

Prints, from one run on this machine:

* wall time of a fresh process for ``python -c "import pandas"`` (the reference), ``pulmocalc -h``,
  ``pulmocalc --version`` and a usage error (median and min of ``--repeat`` runs, interleaved so
  that load on the machine hits all of them alike), with the ratio of each to the reference; and
  whether ``-h`` imported numpy, pandas, scikit-learn, shap or matplotlib;
* the median time of one patient's ``model.predict_proba`` with the shipped model, split into the
  input check, the encoding and the booster, against scikit-learn's own
  ``HistGradientBoostingClassifier.predict_proba`` on the same encoded row (the reference).

Issue 14's targets: ``-h`` at most the reference, one patient at most 3 ms median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "pandas", "sklearn", "shap", "matplotlib")


def _wall(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("pulmocalc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ml.cli"]


def startup(repeat: int) -> None:
    cli = _cli()
    cases = {
        'python -c "import pandas" (reference)': [sys.executable, "-c", "import pandas"],
        "pulmocalc -h": cli + ["-h"],
        "pulmocalc --version": cli + ["--version"],
        "pulmocalc predict (usage error)": cli + ["predict"],
    }
    for argv in cases.values():  # warm the file cache once
        _wall(argv)
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeat):
        for name, argv in cases.items():
            times[name].append(_wall(argv))
    ref = statistics.median(times['python -c "import pandas" (reference)'])
    print(f"start-up, {repeat} runs each, interleaved ({' '.join(cli)}):")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<40} median {1000 * med:7.1f} ms  min {1000 * min(ts):7.1f} ms  ratio to reference {med / ref:5.2f}")
    probe = ("import sys; from ml.cli import build_parser; build_parser(); "
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    print(f"  heavy libraries imported by building the parser: {loaded or 'none'}")


def _median_ms(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1000 * statistics.median(ts)


def latency(repeat: int) -> None:
    from data_gen import LABEL, generate_cohort
    from ml import load_model

    model = load_model()
    patient = generate_cohort(1, random_state=3, recording="case_report").drop(columns=[LABEL])
    model.predict_proba(patient)  # first call compiles the flat trees and warms the caches
    checked = model.check(patient)
    X = model.encoder.transform(checked)
    parts = {
        "model.predict_proba (one patient)": lambda: model.predict_proba(patient),
        "  input check (model.check)": lambda: model.check(patient),
        "  encoding (encoder.transform)": lambda: model.encoder.transform(checked),
        "  booster, flat trees (ml.fastpath)": lambda: model._booster_proba(X),
        "scikit-learn predict_proba, same row (reference)": lambda: model.booster.predict_proba(X),
    }
    print(f"\none patient, shipped model ({model.n_trees} trees), median of {repeat} calls "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}):")
    results = {name: _median_ms(fn, repeat if "reference" not in name else max(20, repeat // 10)) for name, fn in parts.items()}
    ref = results["scikit-learn predict_proba, same row (reference)"]
    for name, ms in results.items():
        print(f"  {name:<50} {ms:8.3f} ms   ratio to reference {ms / ref:6.3f}")
    total = results["model.predict_proba (one patient)"]
    print(f"  target: at most 3 ms median -> {'met' if total <= 3 else 'NOT met'} ({total:.3f} ms)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="fresh processes per start-up case")
    parser.add_argument("--predict-repeat", type=int, default=300, help="calls timed for one patient")
    args = parser.parse_args(argv)
    startup(args.repeat)
    latency(args.predict_repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
