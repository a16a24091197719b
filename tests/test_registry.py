import numpy as np
import pytest

from mllife import ArtifactError
from mllife.config.project import CandidateConfig
from mllife.models import build_model
from mllife.models.registry import load_model, save_model
from mllife.preprocess.images import ImagePreprocessor
from mllife.storage.store import Store


def _images(digits_folder, n=200):
    files = sorted(digits_folder.rglob("*.png"))[:: 1797 // n]  # every class
    labels = np.array([int(f.parent.name) for f in files])
    return files, labels


@pytest.mark.parametrize(
    "spec",
    [
        CandidateConfig(
            name="lr",
            kind="sklearn",
            estimator="sklearn.linear_model.LogisticRegression",
            params={"max_iter": 500},
        ),
        CandidateConfig(name="cnn", kind="torch", architecture="small_cnn", params={"epochs": 2}),
    ],
    ids=["sklearn", "torch"],
)
def test_saved_model_reloads_and_predicts_identically_on_raw_inputs(spec, tmp_path, digits_folder):
    files, y = _images(digits_folder)
    classes = [str(i) for i in range(10)]
    pre = ImagePreprocessor(size=8).fit(files)
    model = build_model(spec, classes=classes, preprocessor=pre)
    x = pre.transform(files)
    model.fit(x, y, x, y, log=lambda _: None)
    ref = save_model(model, artifacts_dir=tmp_path)
    store = Store(tmp_path / "s.duckdb")
    store.record_model(
        model_hash=ref.model_hash,
        name=spec.name,
        kind=spec.kind,
        spec={},
        data_version="d",
        split_version="s",
        artifact_path=ref.relative_path,
        size_bytes=ref.size_bytes,
        fit_seconds=0.0,
        run_id=None,
    )
    loaded = load_model(ref, artifacts_dir=tmp_path, store=store)
    raw_bytes = [f.read_bytes() for f in files]  # serving receives bytes, not paths
    np.testing.assert_array_equal(loaded.predict(raw_bytes), model.predict(files))
    np.testing.assert_allclose(loaded.predict_proba(raw_bytes), model.predict_proba(files))
    # Same data, same seed: retraining reproduces the artifact byte for byte.
    again = build_model(spec, classes=classes, preprocessor=ImagePreprocessor(size=8).fit(files))
    again.fit(x, y, x, y, log=lambda _: None)
    assert save_model(again, artifacts_dir=tmp_path).model_hash == ref.model_hash


def _sklearn_ref(tmp_path, digits_folder):
    files, y = _images(digits_folder, 100)
    pre = ImagePreprocessor(size=8).fit(files)
    spec = CandidateConfig(
        name="lr", kind="sklearn", estimator="sklearn.linear_model.LogisticRegression"
    )
    model = build_model(spec, classes=[str(i) for i in range(10)], preprocessor=pre)
    x = pre.transform(files)
    model.fit(x, y, x, y, log=lambda _: None)
    return save_model(model, artifacts_dir=tmp_path)


def test_unrecorded_pickle_is_refused(tmp_path, digits_folder):
    ref = _sklearn_ref(tmp_path, digits_folder)
    with pytest.raises(ArtifactError, match="not recorded in the store"):
        load_model(ref, artifacts_dir=tmp_path, store=Store(tmp_path / "s.duckdb"))


def test_tampered_artifact_is_refused(tmp_path, digits_folder):
    ref = _sklearn_ref(tmp_path, digits_folder)
    path = ref.path(tmp_path)
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ArtifactError, match="changed or corrupted"):
        load_model(ref, artifacts_dir=tmp_path, store=None)


def test_missing_artifact_says_how_to_recover(tmp_path, digits_folder):
    ref = _sklearn_ref(tmp_path, digits_folder)
    ref.path(tmp_path).unlink()
    with pytest.raises(ArtifactError, match="missing.*re-materialize"):
        load_model(ref, artifacts_dir=tmp_path, store=None)
