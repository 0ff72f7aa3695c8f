"""Saving and loading: provenance, SHA-256 checked before unpickling, refusals."""

import hashlib
import json
import pickle

import numpy as np
import pytest

from data_gen import generate_cohort
from ml import ArtifactError, load_model, read_metadata, train


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = train(generate_cohort(6_000, random_state=31), random_state=2, max_iter=20)
    path = model.save(tmp_path_factory.mktemp("m") / "model.joblib")
    return model, path


def _rehash(path):
    meta = path.with_suffix(".json")
    sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in (path, meta)]
    path.with_name(path.name + ".sha256").write_text("\n".join(sums) + "\n")


def _copy(saved_path, tmp_path):
    out = tmp_path / "copy.joblib"
    out.write_bytes(saved_path.read_bytes())
    meta = json.loads(saved_path.with_suffix(".json").read_text())
    out.with_suffix(".json").write_text(json.dumps(meta))
    _rehash(out)
    return out


def test_round_trip_and_metadata(saved, kb):
    model, path = saved
    loaded = load_model(path)
    test = generate_cohort(500, random_state=4)
    np.testing.assert_array_equal(loaded.predict_proba(test).to_numpy(), model.predict_proba(test).to_numpy())
    meta = read_metadata(path)
    assert meta["format_version"] == 1
    assert meta["knowledge_sha256"] == kb.sha256
    assert meta["contract_columns"] == list(kb.column_names)
    assert meta["classes"] == list(kb.class_names)
    assert meta["training"]["train_n"] == 6_000 and meta["training"]["train_seed"] == 2
    assert meta["training"]["config"]["max_leaf_nodes"] > 0
    for pkg in ("pulmocalc", "scikit-learn", "numpy", "shap"):
        assert pkg in meta["versions"]


def test_modified_artifact_is_refused_before_unpickling(saved, tmp_path):
    _, path = saved
    evil = _copy(path, tmp_path)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("unpickled",))

    # a pickle that writes a file when loaded, put in place of the model without rehashing
    evil.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ArtifactError, match="SHA-256.*modified or corrupted"):
        load_model(evil)
    assert not marker.exists()


def test_a_single_flipped_byte_is_refused(saved, tmp_path):
    _, path = saved
    bad = _copy(path, tmp_path)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_model(bad)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("format_version", 99, "newer than this pulmocalc reads"),
        ("knowledge_sha256", "0" * 64, "trained on knowledge base 000000000000"),
        ("contract_columns", ["age_years"], "another input contract"),
    ],
)
def test_provenance_mismatch_is_refused(saved, tmp_path, field, value, message):
    _, path = saved
    out = _copy(path, tmp_path)
    meta = json.loads(out.with_suffix(".json").read_text())
    meta[field] = value
    out.with_suffix(".json").write_text(json.dumps(meta))
    _rehash(out)  # hashes consistent: the refusal comes from the provenance itself
    with pytest.raises(ArtifactError, match=message):
        load_model(out)


def test_missing_hash_file_is_refused(saved, tmp_path):
    _, path = saved
    out = _copy(path, tmp_path)
    out.with_name(out.name + ".sha256").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_model(out)


def test_an_unpickling_failure_names_the_recorded_and_installed_versions(saved, tmp_path, monkeypatch):
    from ml import artifacts

    _, path = saved
    copy = _copy(path, tmp_path)
    meta = json.loads(copy.with_suffix(".json").read_text())
    meta["versions"]["numpy"] = "99.0"
    copy.with_suffix(".json").write_text(json.dumps(meta))
    _rehash(copy)

    def fail(_):  # what numpy 1.26 raises for a numpy 2 random generator
        raise ValueError("PCG64 is not a known BitGenerator module.")

    monkeypatch.setattr(artifacts.joblib, "load", fail)
    with pytest.raises(ArtifactError, match=r"cannot unpickle .*copy\.joblib.*PCG64 is not a known BitGenerator.*written with numpy 99\.0.*this environment has numpy " + np.__version__.replace(".", r"\.") + r".*pip install 'numpy>=99\.0'"):
        load_model(copy)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match=r"loaded with other library versions .* numpy 99\.0"):
        load_model(copy)


def test_the_declared_floors_are_the_ones_the_floor_check_installs():
    import importlib.util
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("check_version_floors", root / "tools" / "check_version_floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pins = dict(p.split("==") for p in module.floors())
    assert {"numpy", "scikit-learn", "pandas", "joblib", "scipy"} <= set(pins)
    assert int(pins["numpy"].split(".")[0]) >= 2  # numpy 1.x cannot read a numpy 2 random generator


def test_a_metadata_file_that_is_not_json_is_named(saved, tmp_path):
    _, path = saved
    bad = _copy(path, tmp_path)
    bad.with_suffix(".json").write_text("{'format_version': 3,\n")  # hand-edited: single quotes
    _rehash(bad)  # consistent hashes, so the JSON itself is what fails
    for load in (load_model, read_metadata):
        with pytest.raises(ArtifactError, match=r"copy\.json' is not valid JSON .*the model's metadata file"):
            load(bad)
