"""Section 7, environment: versions, seeds, git commit, machine and date."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path

from ._common import Context, jsonable, table

TITLE = "8. Environment"
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy", "shap", "joblib", "matplotlib", "threadpoolctl")


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return "not installed"


def git_commit(root: Path = ROOT, *, exclude: Path | None = None) -> dict:
    """``git rev-parse HEAD`` of the source tree ("unknown" outside a repository) and whether
    tracked files have uncommitted changes, leaving out ``exclude`` (the report's own output
    directory, which the run itself rewrites: reports/latest would otherwise always read dirty)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": "unknown", "dirty": None}
        spec = []
        if exclude is not None:
            try:
                spec = ["--", ".", f":(exclude){Path(exclude).resolve().relative_to(Path(root).resolve()).as_posix()}"]
            except ValueError:  # the output is outside the source tree
                spec = []
        status = git("status", "--porcelain", "--untracked-files=no", *spec)
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def collect(ctx: Context) -> dict:
    versions = {"python": platform.python_version(), "pulmocalc": _version("pulmocalc")}
    versions.update({p: _version(p) for p in PACKAGES})
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return jsonable(
        {
            "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "versions": versions,
            "git": git_commit(exclude=ctx.out_dir),
            "machine": {
                "cores": os.cpu_count(),
                "usable_cores": usable,
                "platform": platform.platform(),
                "processor": platform.machine(),
            },
            "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
            "seeds": {k: v for k, v in ctx.settings.to_dict().items() if "seed" in k},
            "settings": ctx.settings.to_dict(),
        }
    )


def markdown(d: dict) -> str:
    out = [f"## {TITLE}", ""]
    git = d["git"]
    commit = git["commit"] + (" (with uncommitted changes to tracked files)" if git.get("dirty") else "")
    m = d["machine"]
    rows = [("date (UTC)", d["date"]), ("git commit", commit),
            ("machine", f"{m['cores']} cores ({m['usable_cores']} usable), {m['processor']}, {m['platform']}")]
    rows += [(k, v) for k, v in d["versions"].items()]
    env = ", ".join(f"{k}={v}" for k, v in d["threads_env"].items() if v is not None) or "none set"
    rows.append(("thread environment variables", env))
    out.append(table(["", ""], rows, ["l", "l"]))
    out.append("")
    out.append("Seeds: " + ", ".join(f"{k} = {v}" for k, v in d["seeds"].items()) + ".")
    out.append("")
    sizes = {k: v for k, v in d["settings"].items() if "seed" not in k}
    out.append("Sizes of this run: " + ", ".join(f"{k} = {v}" for k, v in sizes.items()) + ".")
    out.append("")
    return "\n".join(out)
