"""The teaching page's speed: start time of ``pulmocalc serve`` and server-side update times.

1. Start: spawns ``pulmocalc serve --port 0`` and times from the spawn until the page answers
   ``GET /`` (target: under 3 s on 2 cores), then until the first update answers (the first one
   pays for the shap import and caches; a warm-up thread starts on them at once).
2. Updates: ``--updates`` (default 200) server-side updates of the page's engine, in process
   (model, SHAP, oracle, weight of evidence and next best findings for one patient): the
   library's cases, each also with one finding toggled, in turn; median and p95 in ms (target:
   at most 150 ms), beside a reference measured in the same run: one ``oracle_proba`` call on
   one patient.

Usage::

    python benchmarks/bench_serve.py [--model PATH] [--updates 200]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

START_TARGET_S, UPDATE_TARGET_MS = 3.0, 150.0


def _start(model: str | None) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "ml.cli", "serve", "--port", "0"] + (["--model", model] if model else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        url = None
        for line in proc.stderr:
            m = re.search(r"(http://[0-9.]+:\d+/)", line)
            if m:
                url = m.group(1)
                break
        if url is None:
            raise RuntimeError(f"pulmocalc serve did not start (exit status {proc.wait()})")
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.02)
        t_page = time.perf_counter() - t0
        req = urllib.request.Request(url + "api/update", data=b'{"findings": {"sex": "female"}}', headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
        t_first = time.perf_counter() - t0
        return t_page, t_first
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model file (default: the shipped model)")
    ap.add_argument("--updates", type=int, default=200, help="server-side updates timed (default 200)")
    args = ap.parse_args(argv)

    t_page, t_first = _start(args.model)
    print(f"start: page served {t_page:.2f} s after the spawn (target < {START_TARGET_S:.0f} s: "
          f"{'met' if t_page < START_TARGET_S else 'NOT met'}); first update answered after {t_first:.2f} s")

    from data_gen import oracle_proba
    from ml import load_model
    from ml.serve import Engine, warm_up

    engine = Engine(load_model(args.model))
    warm_up(engine)
    patients = []
    for c in engine.cases:
        patients.append(c["findings"])
        blank = [col for col in engine.kb.column_names if col not in c["findings"] and engine.kb.columns[col].kind == "binary"]
        patients.append({**c["findings"], blank[len(patients) % len(blank)]: 1})
    from bench_next_best import spread, timed  # this folder is on sys.path when run as a script

    ms, ref = [], []
    kb = engine.kb
    for i in range(args.updates):  # one update per request is what is being timed
        f = patients[i % len(patients)]
        ms.append(timed(lambda: engine.update(f)))
        x = pd.DataFrame([f]).reindex(columns=list(kb.column_names))
        ref.append(timed(lambda: oracle_proba(x, recording="case_report", knowledge=kb)))
    met = "met" if np.percentile(ms, 95) <= UPDATE_TARGET_MS else "NOT met"
    print(f"updates ({len(ms)}, server-side: model, SHAP, oracle, weight of evidence, next best findings): "
          f"{spread(ms)} (target <= {UPDATE_TARGET_MS:.0f} ms: {met} at p95)")
    print(f"reference, one oracle_proba call on one patient: {spread(ref)}")
    print(f"cores: {os.cpu_count()}; load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
