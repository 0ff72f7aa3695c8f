"""Loading models: hashes and provenance checked before anything is unpickled.

The reading side of :mod:`ml.artifacts` (which writes models and holds the hash and metadata
helpers both sides share). It lives apart so that the model class can use the writer
(``CalcificationModel.save``) and the loader can use the model class, with no import circle:
``artifacts`` ← ``model`` ← ``loading``. Unpickling runs code, so :func:`load_model` first verifies
both hashes, then reads the metadata and refuses a newer format, another input contract or another
knowledge base, and only then calls joblib; :func:`load_skops` does the same for the pickle-free
format.
"""

from __future__ import annotations

from pathlib import Path

import joblib

from data_gen import load_knowledge

from .artifacts import (
    DEFAULT_MODEL_PATH,
    FORMAT_VERSION,
    SKOPS_TRUSTED_TYPES,
    ArtifactError,
    _import_skops,
    _paths,
    _sha256,
    _skops_paths,
    _verify_hashes,
    _versions_text,
    read_sidecar,
    version_differences,
)
from .model import CalcificationModel, Encoder

__all__ = ["load_model", "load_skops"]


def _unpickle(p: Path, meta: dict):
    """joblib.load, with any failure turned into an ArtifactError naming both sets of versions."""
    import warnings

    recorded = meta.get("versions") or {}
    try:
        with warnings.catch_warnings():
            # scikit-learn warns on any version difference; the difference is named below if it matters
            warnings.filterwarnings("ignore", message=".*Trying to unpickle estimator.*")
            model = joblib.load(p)
    except Exception as exc:
        differ = version_differences(recorded)
        fix = (
            "install at least the versions it was written with (pip install "
            + " ".join(f"'{lib}>={rec}'" for lib, (rec, _) in differ.items())
            + ") or retrain it here with `pulmocalc train`"
            if differ
            else "retrain it with `pulmocalc train`"
        )
        raise ArtifactError(
            f"cannot unpickle {str(p)!r} ({type(exc).__name__}: {' '.join(str(exc).split())}); "
            f"{_versions_text(recorded)}; {fix}"
        ) from None
    if version_differences(recorded):
        warnings.warn(
            f"{str(p)!r} was loaded with other library versions than it was written with: {_versions_text(recorded)}; "
            "tools/check_version_floors.py proves the declared floors, retrain with `pulmocalc train` if in doubt",
            UserWarning,
            stacklevel=3,
        )
    return model



def load_model(path=None, *, knowledge=None):
    """Load a saved model, verifying its SHA-256 and provenance before unpickling.

    Parameters
    ----------
    path : str or Path, optional
        A ``.joblib`` file written by :meth:`CalcificationModel.save` (or a ``.skops`` file
        written by :meth:`CalcificationModel.export_skops`, loaded with :func:`load_skops`).
        Defaults to the model shipped in ``models/``.
    knowledge : Knowledge or path, optional
        The knowledge base the model must have been trained on; defaults to the one recorded
        in the model (the shipped knowledge base unless it was trained with ``--knowledge``).

    Raises
    ------
    ArtifactError
        The file is missing, modified (hash mismatch), of a newer format, or trained for
        another input contract or knowledge base (nothing is unpickled in these cases); or it
        cannot be unpickled here, naming the library versions it was written with and the
        installed ones.

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
    elif Path(path).suffix == ".skops":
        return load_skops(path, knowledge=knowledge)
    p, meta_path, sha_path = _paths(path)
    _verify_hashes(p, meta_path, sha_path, pinned)
    meta = read_sidecar(meta_path)
    knowledge, kb = _check_provenance(p, meta, knowledge)
    model = _unpickle(p, meta)
    if not isinstance(model, CalcificationModel):
        raise ArtifactError(f"{str(p)!r} does not hold a CalcificationModel")
    model._knowledge_path = None if knowledge is None else kb.path
    model._artifact = {"path": str(p), "sha256": _sha256(p)}
    return model


def _check_provenance(p: Path, meta: dict, knowledge):
    """Refuse a newer format, another contract or another knowledge base; returns (knowledge, kb)."""
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
    return knowledge, kb


def load_skops(path, *, knowledge=None):
    """Load a model written by :meth:`CalcificationModel.export_skops`, without pickle.

    The SHA-256 of the file and its metadata are verified and the provenance checked (format
    version, input contract, knowledge base) exactly as in :func:`load_model`; then skops
    loads the booster, trusting only :data:`SKOPS_TRUSTED_TYPES` beyond its defaults.

    Raises
    ------
    ArtifactError
        skops is not installed; a file is missing or modified; the format is newer; the model
        was trained for another contract or knowledge base; the file holds types that are not
        trusted, or not a booster matching the contract's encoding.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    p, meta_path, sha_path = _skops_paths(path)
    _verify_hashes(p, meta_path, sha_path, None)
    meta = read_sidecar(meta_path)
    if meta.get("format") != "skops":
        raise ArtifactError(f"{str(meta_path)!r} does not describe a skops model (format {meta.get('format')!r})")
    knowledge, kb = _check_provenance(p, meta, knowledge)
    _, sio = _import_skops()
    untrusted = [t for t in sio.get_untrusted_types(file=p) if t not in SKOPS_TRUSTED_TYPES]
    if untrusted:
        raise ArtifactError(
            f"{str(p)!r} holds types pulmocalc does not trust ({', '.join(untrusted[:5])}); refusing to load it "
            "(export the model again with CalcificationModel.export_skops)"
        )
    booster = sio.load(p, trusted=list(SKOPS_TRUSTED_TYPES))
    encoder = Encoder(kb)
    classes = tuple(meta.get("classes") or ())
    if not isinstance(booster, HistGradientBoostingClassifier):
        raise ArtifactError(f"{str(p)!r} does not hold a HistGradientBoostingClassifier")
    if (
        meta.get("feature_names") != list(encoder.feature_names)
        or getattr(booster, "n_features_in_", None) != len(encoder.feature_names)
        or classes != tuple(kb.class_names)
        or list(getattr(booster, "classes_", [])) != list(range(len(classes)))
    ):
        raise ArtifactError(
            f"{str(p)!r} does not match this pulmocalc's encoding of the contract (features or classes differ); "
            "retrain and export it again"
        )
    training = dict(meta.get("training") or {})
    training["knowledge_sha256"] = meta["knowledge_sha256"]
    model = CalcificationModel(booster, encoder, classes, meta["train_prevalence"], training)
    model._knowledge_path = None if knowledge is None else kb.path
    model._artifact = {"path": str(p), "sha256": _sha256(p)}
    return model

