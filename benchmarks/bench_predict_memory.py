"""Benchmark of ``pulmocalc predict`` on large CSV files: peak memory and throughput.

Writes contract CSV files of ``--small`` (default 100,000) and ``--n`` (default 1,000,000)
patients (``data_gen.iter_cohort`` in chunks, without the label, via pandas ``to_csv``) to a
temporary directory, then runs, for each, in a child process::

    python -m ml.cli predict FILE --model MODEL --out OUT.csv

and prints its peak resident set size (``/usr/bin/time -v`` where present, else
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``, with the small file measured first),
its wall time, patients per second, and the target: peak memory <= 1.5 GB for 1M patients
(issue 7). ``predict`` reads, checks and predicts ``--chunk-size`` patients at a time, so the
peak should not grow with the file; the two files show it. A 10-patient run gives the fixed
cost (interpreter, libraries, model).

The model is the shipped one (``models/pulmocalc-default.joblib``) when present, else a small
one trained here. The script only prints; it never fails on a missed target.

Usage::

    python benchmarks/bench_predict_memory.py [--n 1000000] [--small 100000] [--chunk-size ROWS]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data_gen import LABEL, iter_cohort  # noqa: E402

TARGET_BYTES = 1.5e9
SHIPPED = ROOT / "models" / "pulmocalc-default.joblib"
MB = 1e6
TIME = "/usr/bin/time"


def write_csv(path: Path, n: int, seed: int, chunk_size: int = 200_000) -> float:
    """A contract CSV of ``n`` generated patients, without the label; returns seconds taken."""
    t0 = time.perf_counter()
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for i, chunk in enumerate(iter_cohort(n, chunk_size=chunk_size, random_state=seed)):
            chunk.drop(columns=[LABEL]).to_csv(fh, header=(i == 0), index=False, lineterminator="\n")
    return time.perf_counter() - t0


def model_path(directory: Path) -> tuple[Path, str]:
    if SHIPPED.exists():
        return SHIPPED, f"shipped model {SHIPPED.relative_to(ROOT)}"
    from data_gen import generate_cohort
    from ml import train

    model = train(generate_cohort(20_000, random_state=0), random_state=0, max_iter=50)
    return model.save(directory / "bench-model.joblib"), "a small model trained here (no shipped model found)"


def _gnu_time() -> bool:
    if not os.path.exists(TIME):
        return False
    probe = subprocess.run([TIME, "-v", "true"], capture_output=True, text=True)
    return probe.returncode == 0 and "Maximum resident set size" in probe.stderr


def run_predict(patients: Path, model: Path, out: Path, chunk_size: int | None, use_time: bool) -> dict:
    """One ``pulmocalc predict`` in a child process: peak RSS (bytes), seconds, output rows."""
    cmd = [sys.executable, "-m", "ml.cli", "predict", str(patients), "--model", str(model), "--out", str(out)]
    if chunk_size is not None:
        cmd += ["--chunk-size", str(chunk_size)]
    if use_time:
        cmd = [TIME, "-v", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"pulmocalc predict failed ({proc.returncode}):\n{proc.stderr}")
    if use_time:
        match = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", proc.stderr)
        peak = int(match.group(1)) * 1024
    else:
        import resource

        # the largest child so far: the files are run smallest first, so this is this run's
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        peak = peak if sys.platform == "darwin" else peak * 1024
    with open(out, "rb") as fh:
        rows = sum(1 for _ in fh) - 1
    return {"peak": peak, "seconds": seconds, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="patients in the large file (default 1,000,000)")
    parser.add_argument("--small", type=int, default=100_000, help="patients in the smaller file (default 100,000)")
    parser.add_argument("--chunk-size", type=int, default=None, help="pass --chunk-size to predict (default: its own)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated patients (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (its path is printed)")
    args = parser.parse_args(argv)
    if not 0 < args.small <= args.n:
        parser.error("need 0 < --small <= --n")

    tmp = Path(tempfile.mkdtemp(prefix="pulmocalc-bench-predict-"))
    try:
        model, model_note = model_path(tmp)
        use_time = _gnu_time()
        sizes = [("baseline", 10), ("small", args.small), ("large", args.n)]
        results = []
        for name, n in sizes:  # smallest first (see run_predict)
            csv = tmp / f"patients-{n}.csv"
            write_seconds = write_csv(csv, n, args.seed)
            r = run_predict(csv, model, tmp / f"out-{n}.csv", args.chunk_size, use_time)
            if r["rows"] != n:
                raise SystemExit(f"predict wrote {r['rows']} rows for {n} patients")
            r.update(name=name, n=n, file_mb=csv.stat().st_size / MB, write_seconds=write_seconds)
            results.append(r)
            csv.unlink()
            (tmp / f"out-{n}.csv").unlink()
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    how = "/usr/bin/time -v" if use_time else "getrusage(RUSAGE_CHILDREN).ru_maxrss"
    print(
        f"pulmocalc predict memory benchmark: {model_note}; chunk size "
        f"{args.chunk_size if args.chunk_size else 'default'}; peak RSS by {how}; "
        f"{os.cpu_count()} CPUs, load average {load:.2f} (timings on a shared machine are noisy)"
    )
    print(f"{'file':<10}  {'patients':>10}  {'CSV':>9}  {'peak RSS':>10}  {'wall':>8}  {'patients/s':>11}  target")
    for r in results:
        target = ""
        if r["name"] == "large":
            ok = r["peak"] <= TARGET_BYTES
            target = f"<= {TARGET_BYTES / MB:,.0f} MB (1.5 GB): {'yes' if ok else 'NO'}"
        print(
            f"{r['name']:<10}  {r['n']:>10,}  {r['file_mb']:>6.1f} MB  {r['peak'] / MB:>7.1f} MB  "
            f"{r['seconds']:>6.1f} s  {r['n'] / r['seconds']:>11,.0f}  {target}"
        )
    base, small, large = results
    print(
        f"peak growth from {small['n']:,} to {large['n']:,} patients: {(large['peak'] - small['peak']) / MB:+.1f} MB "
        f"({large['peak'] / small['peak']:.2f}x for {large['n'] / small['n']:.0f}x the patients); "
        f"fixed cost (10 patients): {base['peak'] / MB:.1f} MB"
    )
    chunk = args.chunk_size or 100_000
    if small["n"] <= chunk < large["n"]:
        print(
            f"note: predict reads {chunk:,} patients at a time; the {small['n']:,}-patient file is a single chunk, and "
            "the peak rises once more with the second chunk (the first is released while it is read), then stays flat"
        )
    if args.n != 1_000_000:
        print("note: the 1.5 GB target is stated for n = 1,000,000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
