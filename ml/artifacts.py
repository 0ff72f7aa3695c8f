"""Saving models: joblib (or skops), with metadata and SHA-256 beside them; the hash checks.

The loading side is :mod:`ml.loading`; this module never imports the model class, so the model
can use it to save itself without an import circle.

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

A pickle holds objects of the libraries that wrote it (the booster's random generator is a
numpy object), and an older library may not read it. The metadata records the versions the
model was written with; :func:`load_model` compares them with the installed ones, and any
failure to unpickle becomes an :class:`ArtifactError` naming both sets of versions (never a
raw ``ValueError`` from deep inside numpy). The version floors declared in ``pyproject.toml``
are those the shipped model is proven to load on: ``tools/check_version_floors.py`` installs
exactly the floors in a fresh environment, loads the shipped model there and compares its
predictions with the current environment's.

A pickle-free export is offered as well (needs the optional ``skops`` package,
``pip install 'pulmocalc[skops]'``)::

    model.skops            the booster, written with skops.io (no pickle)
    model.skops.json       the same metadata, plus the encoded feature names
    model.skops.sha256     SHA-256 of both

:func:`load_skops` makes the same hash and provenance checks, loads the booster with skops
trusting only the types in :data:`SKOPS_TRUSTED_TYPES` (a file holding anything else is refused),
and rebuilds the encoder and the classes from the knowledge base and the metadata.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import joblib
import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "ArtifactError",
    "save_model",
    "read_metadata",
    "DEFAULT_MODEL_PATH",
    "version_differences",
    "export_skops",
    "SKOPS_TRUSTED_TYPES",
]

FORMAT_VERSION = 1
DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "models" / "pulmocalc-default.joblib"
#: Types a .skops model may contain beyond those skops trusts by default (numpy, builtins and
#: scikit-learn estimators): the booster's fitted trees. Anything else is refused.
SKOPS_TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)


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


def _installed(dist: str) -> str:
    """A distribution's installed version, read from its metadata: importing shap only to ask
    its version would add a second and a half to every model load."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:  # e.g. pulmocalc run from a source tree
        return "unknown"


def _versions() -> dict:
    return {
        "pulmocalc": _installed("pulmocalc"),
        "scikit-learn": _installed("scikit-learn"),
        "numpy": np.__version__,
        "pandas": _installed("pandas"),
        "shap": _installed("shap"),
        "joblib": joblib.__version__,
        "python": platform.python_version(),
    }


#: Libraries whose objects are inside the pickle: an older one may not read it.
PICKLED_LIBRARIES = ("numpy", "scikit-learn", "joblib", "pandas")


def version_differences(recorded: dict) -> dict[str, tuple[str, str]]:
    """Libraries of the pickle whose installed version differs from the recorded one.

    Returns
    -------
    dict
        ``{library: (recorded, installed)}`` for each of :data:`PICKLED_LIBRARIES` that differs.

    Examples
    --------
    >>> version_differences({"numpy": "0.0.1"})["numpy"][0]
    '0.0.1'
    """
    installed = _versions()
    return {
        lib: (str(recorded[lib]), installed[lib])
        for lib in PICKLED_LIBRARIES
        if lib in recorded and str(recorded[lib]) != installed[lib]
    }


def _versions_text(recorded: dict) -> str:
    installed = _versions()
    written = ", ".join(f"{lib} {recorded.get(lib, '?')}" for lib in PICKLED_LIBRARIES)
    here = ", ".join(f"{lib} {installed[lib]}" for lib in PICKLED_LIBRARIES)
    return f"it was written with {written}; this environment has {here}"


def _metadata(model) -> dict:
    kb = model.knowledge
    return {
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


def _write_metadata_and_hashes(p: Path, meta_path: Path, sha_path: Path, meta: dict) -> None:
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True, default=_json_default) + "\n")
    sha_path.write_text(f"{_sha256(p)}  {p.name}\n{_sha256(meta_path)}  {meta_path.name}\n")


def save_model(model, path) -> Path:
    """Write ``model`` to ``path`` (``.joblib``), its metadata and their SHA-256."""
    p, meta_path, sha_path = _paths(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = _metadata(model)
    joblib.dump(model, p, compress=3)
    _write_metadata_and_hashes(p, meta_path, sha_path, meta)
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
    return read_sidecar(meta_path)


def read_sidecar(meta_path) -> dict:
    """A model's JSON metadata file; an unreadable one is an :class:`ArtifactError` naming it."""
    try:
        meta = json.loads(Path(meta_path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{str(meta_path)!r} is not valid JSON ({exc}); it is the model's metadata file: restore it "
                            "from where the model came from, or save the model again") from None
    if not isinstance(meta, dict):
        raise ArtifactError(f"{str(meta_path)!r} holds a JSON {type(meta).__name__}, not the model's metadata object")
    return meta


# --------------------------------------------------------------------------------------------
# Pickle-free export (skops)
# --------------------------------------------------------------------------------------------
def _skops_paths(path) -> tuple[Path, Path, Path]:
    p = Path(path)
    if p.suffix != ".skops":
        raise ArtifactError(f"a skops model file must end in .skops, got {str(p)!r}")
    return p, p.with_name(p.name + ".json"), p.with_name(p.name + ".sha256")


def _import_skops():
    try:
        import skops
        import skops.io as sio
    except ImportError:
        raise ArtifactError(
            "the pickle-free .skops format needs the 'skops' package, which is not installed; "
            "install it (pip install 'pulmocalc[skops]') or use a .joblib model"
        ) from None
    return skops, sio


def export_skops(model, path) -> Path:
    """Write ``model`` without pickle: the booster with skops, metadata and SHA-256 beside it.

    Only the fitted booster is serialised (skops.io); the encoder and the class order are
    rebuilt on loading from the knowledge base and the metadata, which records the encoded
    feature names so that a mismatch is refused. Load with :func:`load_skops` (or
    :func:`load_model`, which dispatches on the ``.skops`` suffix).
    """
    import zipfile

    p, meta_path, sha_path = _skops_paths(path)
    skops, sio = _import_skops()
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = _metadata(model)
    meta["format"] = "skops"
    meta["versions"]["skops"] = skops.__version__
    meta["feature_names"] = list(model.encoder.feature_names)
    meta["contents"] = "the HistGradientBoostingClassifier only (skops.io); encoder and classes rebuilt from the knowledge base"
    sio.dump(model.booster, p, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    _write_metadata_and_hashes(p, meta_path, sha_path, meta)
    return p
