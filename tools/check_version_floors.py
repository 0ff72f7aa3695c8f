"""Prove the version floors of pyproject.toml: the shipped model loads on them and predicts the same.

The floors (``numpy>=2.0`` ...) are read from ``pyproject.toml``'s ``dependencies``; nothing
about the shipped model is assumed here. The script

1. creates a fresh virtual environment and installs exactly the floors
   (``pip install 'numpy==<floor>' 'pandas==<floor>' ...``), then pulmocalc itself without
   dependencies;
2. in that environment, loads the shipped model with :func:`ml.load_model` and writes its
   probabilities for the review's cases (``data_gen/paper_cases.csv``) and a generated cohort;
3. compares them with the same probabilities in the current environment.

It exits 0 when they agree to 1e-9, and 1 (printing why) when the model does not load or the
predictions differ: then a floor in pyproject.toml is false and must be raised.

Usage::

    python tools/check_version_floors.py                 # a temporary environment, removed after
    python tools/check_version_floors.py --venv .floors  # keep (and reuse) it
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-9

# Run in both environments: the shipped model's probabilities, printed as JSON.
_PREDICT = r"""
import json, sys
from data_gen import generate_cohort, paper_cases
from ml import load_model
import numpy, sklearn, pandas
model = load_model()
cases = paper_cases()
cohort = generate_cohort(2000, random_state=11)
out = {
    "versions": {"numpy": numpy.__version__, "scikit-learn": sklearn.__version__, "pandas": pandas.__version__},
    "cases": model.predict_proba(cases).to_numpy().tolist(),
    "cohort": model.predict_proba(cohort).to_numpy().tolist(),
}
json.dump(out, sys.stdout)
"""


def floors(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """``name==version`` for every ``name>=version`` of the project's dependencies."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for dep in deps:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][A-Za-z0-9.]*)\s*", dep)
        if not m:
            raise SystemExit(f"cannot read a floor from dependency {dep!r}; expected 'name>=version'")
        out.append(f"{m.group(1)}=={m.group(2)}")
    return out


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)


def _predictions(python: str) -> dict:
    import json

    res = _run([python, "-c", _PREDICT], cwd=ROOT)
    if res.returncode != 0:
        tail = res.stderr.strip().splitlines()[-1:] or ["(no message)"]
        raise RuntimeError(tail[0])
    return json.loads(res.stdout)


def check(venv: Path) -> int:
    pins = floors()
    python = venv / "bin" / "python"
    t0 = time.perf_counter()
    if not python.exists():
        res = _run([sys.executable, "-m", "venv", str(venv)])
        if res.returncode != 0:
            print(f"cannot create a virtual environment: {res.stderr.strip()}", file=sys.stderr)
            return 1
    res = _run([str(python), "-m", "pip", "install", "--quiet", *pins])
    if res.returncode != 0:
        print(f"cannot install the floors {' '.join(pins)}: {res.stderr.strip()[-800:]}", file=sys.stderr)
        return 1
    res = _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(ROOT)])
    if res.returncode != 0:
        res = _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(ROOT)])
    if res.returncode != 0:
        print(f"cannot install pulmocalc: {res.stderr.strip()[-800:]}", file=sys.stderr)
        return 1
    print(f"floors installed in {venv} ({time.perf_counter() - t0:.0f} s): {' '.join(pins)}")
    try:
        low = _predictions(str(python))
    except RuntimeError as exc:
        print(f"FAIL: the shipped model does not load on the floors: {exc}", file=sys.stderr)
        return 1
    here = _predictions(sys.executable)
    import numpy as np

    worst = max(float(np.abs(np.asarray(low[k]) - np.asarray(here[k])).max()) for k in ("cases", "cohort"))
    print(f"floors {low['versions']} vs here {here['versions']}: largest difference {worst:.2e}")
    if worst > TOLERANCE:
        print(f"FAIL: predictions on the floors differ by {worst:.2e} (> {TOLERANCE:g})", file=sys.stderr)
        return 1
    print("OK: the shipped model loads on every declared floor and predicts the same")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="environment to create or reuse (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.venv is not None:
        return check(args.venv)
    with tempfile.TemporaryDirectory(prefix="pulmocalc-floors-") as tmp:
        return check(Path(tmp) / "venv")


if __name__ == "__main__":
    sys.exit(main())
