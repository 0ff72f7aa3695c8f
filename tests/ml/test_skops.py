"""The pickle-free export (skops): exact round trip, the same hash and provenance refusals as
joblib, and only trusted types loaded. Skipped where skops is not installed (pulmocalc[skops]),
except the test of the message that asks for it."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from data_gen import generate_cohort
from ml import ArtifactError, explain, load_model, train
from ml.artifacts import SKOPS_TRUSTED_TYPES
from ml.loading import load_skops

def _has_skops() -> bool:
    try:
        import skops.io  # noqa: F401
    except ImportError:
        return False
    return True


needs_skops = pytest.mark.skipif(not _has_skops(), reason="skops is not installed (pip install 'pulmocalc[skops]')")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def model():
    return train(generate_cohort(4000, random_state=11), random_state=3, max_iter=15)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    if not _has_skops():
        pytest.skip("skops is not installed (pip install 'pulmocalc[skops]')")
    return model.export_skops(tmp_path_factory.mktemp("skops") / "model.skops")


def _rehash(path):
    meta = path.with_name(path.name + ".json")
    sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in (path, meta)]
    path.with_name(path.name + ".sha256").write_text("\n".join(sums) + "\n")


def _copy(path, tmp_path, meta_edit=None):
    out = tmp_path / "copy.skops"
    out.write_bytes(path.read_bytes())
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    if meta_edit is not None:
        meta_edit(meta)
    out.with_name(out.name + ".json").write_text(json.dumps(meta))
    _rehash(out)
    return out


@needs_skops
def test_round_trip_gives_identical_probabilities_and_explanations(model, exported):
    assert sorted(p.name for p in exported.parent.iterdir()) == ["model.skops", "model.skops.json", "model.skops.sha256"]
    loaded = load_skops(exported)
    test = generate_cohort(3000, random_state=12)
    np.testing.assert_array_equal(loaded.predict_proba(test).to_numpy(), model.predict_proba(test).to_numpy())
    prev = {"metastatic": 0.5, "dystrophic": 0.3, "dpo_nodular": 0.1, "dpo_dendriform": 0.05, "pam": 0.05}
    np.testing.assert_array_equal(
        loaded.predict_proba(test, prevalence=prev).to_numpy(), model.predict_proba(test, prevalence=prev).to_numpy()
    )
    np.testing.assert_array_equal(explain(loaded, test[:50], n_jobs=1).values, explain(model, test[:50], n_jobs=1).values)
    assert loaded.classes_ == model.classes_ and loaded.train_prevalence == model.train_prevalence
    assert loaded.metadata["knowledge_sha256"] == model.metadata["knowledge_sha256"]
    # load_model dispatches on the suffix, so `pulmocalc predict --model model.skops` works too
    np.testing.assert_array_equal(load_model(exported).predict_proba(test[:20]).to_numpy(), model.predict_proba(test[:20]).to_numpy())


@needs_skops
def test_the_file_holds_no_pickle(model, exported):
    meta = json.loads(exported.with_name(exported.name + ".json").read_text())
    assert meta["format"] == "skops" and meta["versions"]["skops"]
    assert meta["feature_names"] == list(model.encoder.feature_names)
    with zipfile.ZipFile(exported) as zf:
        names = zf.namelist()
        assert "schema.json" in names
        assert not [n for n in names if n.endswith((".pkl", ".pickle", ".joblib"))]
        for n in names:
            assert not zf.read(n).startswith(b"\x80"), f"{n} looks like a pickle stream"


@needs_skops
def test_modified_file_is_refused_before_skops_reads_it(exported, tmp_path, monkeypatch):
    import skops.io

    bad = _copy(exported, tmp_path)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))

    def never(*args, **kwargs):
        raise AssertionError("skops read a file whose hash does not match")

    monkeypatch.setattr(skops.io, "load", never)
    monkeypatch.setattr(skops.io, "get_untrusted_types", never)
    with pytest.raises(ArtifactError, match="SHA-256.*modified or corrupted"):
        load_skops(bad)


@needs_skops
@pytest.mark.parametrize(
    "field, value, message",
    [
        ("knowledge_sha256", "0" * 64, "trained on knowledge base 000000000000"),
        ("contract_columns", ["age_years"], "another input contract"),
        ("format_version", 99, "newer than this pulmocalc reads"),
        ("format", "joblib", "does not describe a skops model"),
        ("feature_names", ["age_years"], "does not match this pulmocalc's encoding"),
    ],
)
def test_provenance_mismatch_is_refused(exported, tmp_path, field, value, message):
    bad = _copy(exported, tmp_path, lambda meta: meta.__setitem__(field, value))
    with pytest.raises(ArtifactError, match=message):
        load_skops(bad)


@needs_skops
def test_untrusted_types_are_refused(exported, tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    evil = _copy(exported, tmp_path)
    # what an attacker would ship: a transformer that calls os.system, with matching hashes
    sio.dump(FunctionTransformer(func=os.system), evil)
    _rehash(evil)
    with pytest.raises(ArtifactError, match=r"does not trust \(.*system"):
        load_skops(evil)


@needs_skops
def test_a_trusted_object_that_is_not_a_booster_is_refused(exported, tmp_path):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    other = _copy(exported, tmp_path)
    sio.dump(LogisticRegression(), other)
    _rehash(other)
    with pytest.raises(ArtifactError, match="HistGradientBoostingClassifier"):
        load_skops(other)


def test_trusted_types_are_only_the_booster_trees():
    assert SKOPS_TRUSTED_TYPES == ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)


def test_without_skops_the_message_says_how_to_install_it(model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(ArtifactError, match=r"pip install 'pulmocalc\[skops\]'"):
        model.export_skops(tmp_path / "m.skops")
    with pytest.raises(ArtifactError, match="must end in .skops"):
        model.export_skops(tmp_path / "m.joblib")
