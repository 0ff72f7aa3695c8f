"""Saving and loading models: joblib, with provenance, checked before anything is unpickled.

A saved model is three files::

    model.joblib           the pickled CalcificationModel (joblib)
    model.json             its metadata, readable without unpickling
    model.joblib.sha256    SHA-256 of both, in ``sha256sum`` format

Unpickling runs code, so :func:`load_model` first verifies both hashes, then reads the
metadata and refuses a newer format, another input contract or another knowledge base, and only
then calls joblib. The hash file guards against corrupted and modified artifacts; it cannot
guard against someone who can rewrite all three files, so load models only from sources you
trust. The model shipped in ``models/`` is additionally pinned by its hash in
``ml/shipped.py``.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import joblib
import numpy as np

from data_gen import load_knowledge

__all__ = ["FORMAT_VERSION", "ArtifactError", "save_model", "load_model", "read_metadata", "DEFAULT_MODEL_PATH"]

FORMAT_VERSION = 1
DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "models" / "pulmocalc-default.joblib"


class ArtifactError(ValueError):
    """A model file that must not be loaded: the message says why and what to do."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _paths(path) -> tuple[Path, Path, Path]:
    p = Path(path)
    if p.suffix != ".joblib":
        raise ArtifactError(f"a model file must end in .joblib, got {str(p)!r}")
    return p, p.with_suffix(".json"), p.with_name(p.name + ".sha256")


def _versions() -> dict:
    import pandas
    import shap
    import sklearn

    try:
        from importlib.metadata import version

        pulmocalc_version = version("pulmocalc")
    except Exception:  # not installed as a distribution (e.g. run from a source tree)
        pulmocalc_version = "unknown"
    return {
        "pulmocalc": pulmocalc_version,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "shap": shap.__version__,
        "joblib": joblib.__version__,
        "python": platform.python_version(),
    }


def save_model(model, path) -> Path:
    """Write ``model`` to ``path`` (``.joblib``), its metadata and their SHA-256."""
    p, meta_path, sha_path = _paths(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    kb = model.knowledge
    meta = {
        "format_version": FORMAT_VERSION,
        "versions": _versions(),
        "knowledge_sha256": model.metadata["knowledge_sha256"],
        "knowledge_path": None if model._knowledge_path is None else str(model._knowledge_path),
        "contract_columns": list(kb.column_names),
        "classes": list(model.classes_),
        "train_prevalence": model.train_prevalence,
        "training": {k: v for k, v in model.metadata.items() if k not in ("knowledge_sha256",)},
        "n_trees": model.n_trees,
        "intended_use": "Research and teaching on synthetic data; not a clinical device.",
    }
    joblib.dump(model, p, compress=3)
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True, default=_json_default) + "\n")
    sha_path.write_text(f"{_sha256(p)}  {p.name}\n{_sha256(meta_path)}  {meta_path.name}\n")
    return p


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"cannot store {type(o).__name__} in model metadata")


def _verify_hashes(p: Path, meta_path: Path, sha_path: Path, pinned: str | None) -> None:
    for f in (p, meta_path, sha_path):
        if not f.exists():
            raise ArtifactError(f"model file {str(f)!r} is missing; a model needs {p.name}, {meta_path.name} and {sha_path.name}")
    recorded = {}
    for line in sha_path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            recorded[parts[1]] = parts[0]
    for f in (p, meta_path):
        want = recorded.get(f.name)
        got = _sha256(f)
        if want is None:
            raise ArtifactError(f"{sha_path.name} records no SHA-256 for {f.name}; refusing to load {str(p)!r}")
        if got != want:
            raise ArtifactError(
                f"SHA-256 of {str(f)!r} is {got[:16]}…, but {sha_path.name} records {want[:16]}…: the file was "
                "modified or corrupted, and unpickling it could run foreign code; refusing to load it "
                "(retrain with `pulmocalc train` or restore the original file)"
            )
    if pinned is not None and _sha256(p) != pinned:
        raise ArtifactError(
            f"the shipped model {str(p)!r} does not match the SHA-256 pinned in ml/shipped.py; "
            "refusing to load it (reinstall pulmocalc or restore models/ from the repository)"
        )


def read_metadata(path) -> dict:
    """The metadata of a saved model, after verifying the hashes (nothing is unpickled)."""
    p, meta_path, sha_path = _paths(path)
    _verify_hashes(p, meta_path, sha_path, None)
    return json.loads(meta_path.read_text())


def load_model(path=None, *, knowledge=None):
    """Load a saved model, verifying its SHA-256 and provenance before unpickling.

    Parameters
    ----------
    path : str or Path, optional
        A ``.joblib`` file written by :meth:`CalcificationModel.save`. Defaults to the model
        shipped in ``models/``.
    knowledge : Knowledge or path, optional
        The knowledge base the model must have been trained on; defaults to the one recorded
        in the model (the shipped knowledge base unless it was trained with ``--knowledge``).

    Raises
    ------
    ArtifactError
        The file is missing, modified (hash mismatch), of a newer format, or trained for
        another input contract or knowledge base. Nothing is unpickled in these cases.

    Examples
    --------
    >>> from ml import load_model
    >>> model = load_model()
    >>> model.classes_
    ('dystrophic', 'metastatic', 'dpo_nodular', 'dpo_dendriform', 'pam')
    """
    from .shipped import SHIPPED_SHA256

    pinned = None
    if path is None:
        path, pinned = DEFAULT_MODEL_PATH, SHIPPED_SHA256
    p, meta_path, sha_path = _paths(path)
    _verify_hashes(p, meta_path, sha_path, pinned)
    meta = json.loads(meta_path.read_text())
    fmt = meta.get("format_version")
    if not isinstance(fmt, int) or fmt > FORMAT_VERSION:
        raise ArtifactError(
            f"{str(p)!r} has model format version {fmt!r}, newer than this pulmocalc reads "
            f"({FORMAT_VERSION}); upgrade pulmocalc or retrain the model with this version"
        )
    if knowledge is None and meta.get("knowledge_path"):
        knowledge = meta["knowledge_path"]
    kb = load_knowledge(knowledge)
    if meta.get("contract_columns") != list(kb.column_names):
        raise ArtifactError(
            f"{str(p)!r} was trained for another input contract (columns differ from this "
            "pulmocalc's); retrain it with `pulmocalc train`"
        )
    if meta.get("knowledge_sha256") != kb.sha256:
        raise ArtifactError(
            f"{str(p)!r} was trained on knowledge base {str(meta.get('knowledge_sha256'))[:12]}, but the "
            f"knowledge base in use ({kb.path.name}) is {kb.sha256[:12]}; retrain with `pulmocalc train"
            f"{'' if knowledge is None else ' --knowledge ' + str(kb.path)}` or pass the knowledge base it was trained on"
        )
    model = joblib.load(p)
    from .model import CalcificationModel

    if not isinstance(model, CalcificationModel):
        raise ArtifactError(f"{str(p)!r} does not hold a CalcificationModel")
    model._knowledge_path = None if knowledge is None else kb.path
    return model
