"""Benchmark of ``data_gen.generate_cohort``: speed, the numpy reference, and peak memory.

Prints, for ``generate_cohort(n, random_state=seed)``:

* seconds (best of ``--repeat``) and patients per second;
* the reference: seconds (best of ``--repeat``, same run, interleaved with the generation) to
  draw ``n x 52`` uniform numbers, one per input-contract column, with
  ``np.random.default_rng(seed).random((n, 52))``, and the ratio generation / reference;
* the size of the returned frame (``df.memory_usage(deep=True).sum()``);
* the peak memory of one generation above the baseline, measured in a fresh child process
  (peak resident set size, Linux ``VmHWM`` or else ``ru_maxrss``, minus the resident set size
  after imports and a small warm-up generation), and its ratio to the frame size.

Targets (issue 3): 1M patients in <= 2 s on 2 cores, ratio to the reference <= 5, peak memory
<= 2 x the frame. The script only prints; it never fails on a missed target.

Usage::

    python benchmarks/bench_generate.py [--n 1000000] [--repeat 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from data_gen import generate_cohort, load_knowledge  # noqa: E402

TARGET_SECONDS_1M = 2.0
TARGET_RATIO = 5.0
TARGET_MEMORY_RATIO = 2.0
_CHILD_FLAG = "--_memory-child"
MB = 1e6


def _proc_status(field: str) -> int | None:
    """A memory field of /proc/self/status in bytes (Linux), or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _rss_peak() -> int:
    """Peak resident set size of this process in bytes.

    Linux's VmHWM belongs to this process image; ``ru_maxrss`` would also count the parent's
    peak, because it survives the fork + exec that started the child.
    """
    hwm = _proc_status("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _memory_child(n: int, seed: int) -> None:
    """Run in a fresh process: one generation, and its peak memory above the baseline."""
    generate_cohort(min(n, 1000), random_state=seed)  # load the knowledge base, scipy, pandas
    baseline = _proc_status("VmRSS")
    if baseline is None:
        baseline = _rss_peak()
    df = generate_cohort(n, random_state=seed)
    peak = _rss_peak()
    frame = int(df.memory_usage(deep=True).sum())
    print(json.dumps({"baseline": baseline, "peak": peak, "frame": frame}))


def _measure_memory(n: int, seed: int) -> dict:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), _CHILD_FLAG, "--n", str(n), "--seed", str(seed)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="patients (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats; the best counts (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(_CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n <= 0 or args.repeat <= 0:
        parser.error("--n and --repeat must be positive")
    if args._memory_child:
        _memory_child(args.n, args.seed)
        return 0

    n, seed = args.n, args.seed
    mem = _measure_memory(n, seed)  # first, while this process is small
    n_columns = len(load_knowledge().column_names)
    generate_cohort(min(n, 1000), random_state=seed)  # warm-up: knowledge base, imports

    gen_times, ref_times = [], []
    df = None
    for _ in range(args.repeat):
        df = None  # free the previous frame before the next run
        t0 = time.perf_counter()
        df = generate_cohort(n, random_state=seed)
        gen_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = np.random.default_rng(seed).random((n, n_columns))
        ref_times.append(time.perf_counter() - t0)
        del ref
    frame_bytes = int(df.memory_usage(deep=True).sum())
    del df
    gen, ref = min(gen_times), min(ref_times)
    peak_above = mem["peak"] - mem["baseline"]

    target_s = TARGET_SECONDS_1M * n / 1_000_000
    rows = [
        ("generate_cohort(n), best of repeats", f"{gen:.3f} s", f"<= {target_s:.3g} s", gen <= target_s),
        ("patients per second", f"{n / gen:,.0f} /s", "", None),
        (f"numpy reference: rng.random((n, {n_columns})), best", f"{ref:.3f} s", "", None),
        ("ratio generate / reference", f"{gen / ref:.2f}", f"<= {TARGET_RATIO:g}", gen / ref <= TARGET_RATIO),
        ("returned frame (memory_usage deep)", f"{frame_bytes / MB:.1f} MB", "", None),
        ("peak memory above baseline (child RSS)", f"{peak_above / MB:.1f} MB", "", None),
        (
            "ratio peak memory / frame",
            f"{peak_above / frame_bytes:.2f}",
            f"<= {TARGET_MEMORY_RATIO:g}",
            peak_above / frame_bytes <= TARGET_MEMORY_RATIO,
        ),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"generate_cohort benchmark: n = {n:,} patients, seed {seed}, best of {args.repeat} repeat(s); "
        f"{os.cpu_count()} CPUs, load average {load:.2f} (timings on a shared machine are noisy)"
    )
    w0 = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w0}}  {'value':>14}  {'target':>10}  meets")
    for name, value, target, ok in rows:
        print(f"{name:<{w0}}  {value:>14}  {target:>10}  {'' if ok is None else ('yes' if ok else 'NO')}")
    print(
        "all runs (s): generate " + ", ".join(f"{t:.3f}" for t in gen_times)
        + "; reference " + ", ".join(f"{t:.3f}" for t in ref_times)
    )
    if n != 1_000_000:
        print("note: the targets are stated for n = 1,000,000; the time target above is scaled to n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
