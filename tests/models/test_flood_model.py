"""The flood model: feature definitions, training/export parity and the guarded loader."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from models import FLOOD_FEATURES, ModelLoadError, flood_feature_matrix, flood_features, load_scorer
from models.runtime import ARTIFACTS_DIR
from models.train import train_flood_model


@pytest.fixture(scope="module")
def scorer():
    return load_scorer("flood", "1")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("flood-artifacts")
    return train_flood_model(seed=7, n_storms=80, out_dir=out, progress=False)


def artifacts_copy(tmp_path):
    for suffix in ("onnx", "json", "md"):
        shutil.copy(ARTIFACTS_DIR / f"flood-1.{suffix}", tmp_path)
    return tmp_path


# --------------------------------------------------------------------------- features


def test_feature_definitions():
    assert FLOOD_FEATURES == ("stage_to_danger_m", "rise_m_per_h", "rain_10min_mm", "rain_60min_mm")
    row = flood_features(level_m=3.2, danger_m=3.0, level_30min_ago_m=2.7, rain_10min_mm=8.0, rain_60min_mm=55.5)
    assert row == pytest.approx((-0.2, 1.0, 8.0, 55.5), abs=1e-6)
    assert flood_features(1.0, 3.0, None, 0.0, 0.0)[1] == 0.0  # no history: no rise


def test_scalar_and_vector_features_agree():
    rng = np.random.default_rng(0)
    level, earlier = rng.uniform(0, 4, 50), rng.uniform(0, 4, 50)
    r10, r60 = rng.uniform(0, 20, 50), rng.uniform(0, 100, 50)
    matrix = flood_feature_matrix(level, np.full(50, 3.0), earlier, r10, r60)
    assert matrix.dtype == np.float32 and matrix.shape == (50, 4)
    for i in range(50):
        assert flood_features(level[i], 3.0, earlier[i], r10[i], r60[i]) == tuple(matrix[i].tolist())


# --------------------------------------------------------------------------- committed artifact


def test_committed_artifact_is_small_and_described(scorer):
    assert (ARTIFACTS_DIR / "flood-1.onnx").stat().st_size < 1_000_000
    meta = json.loads((ARTIFACTS_DIR / "flood-1.json").read_text())
    assert meta["features"] == list(FLOOD_FEATURES)
    assert meta["metrics_held_out"]["roc_auc"] > 0.9
    assert "synthetic" in meta["training_data"]["kind"]
    card = (ARTIFACTS_DIR / "flood-1.md").read_text()
    assert "ROC-AUC" in card and "Brier" in card and "synthetic" in card
    assert scorer.model_ref == "flood/1" and scorer.features == FLOOD_FEATURES


def test_probability_rises_with_level(scorer):
    levels = np.linspace(0.0, 4.0, 81)
    for earlier, r10, r60 in [(1.0, 0.0, 5.0), (2.0, 10.0, 40.0), (2.5, 20.0, 90.0)]:
        rows = np.array([flood_features(lv, 3.0, earlier, r10, r60) for lv in levels], dtype=np.float32)
        p = scorer.predict_proba(rows)
        assert np.all(np.diff(p) >= -1e-6)
    quiet = scorer.predict_proba([flood_features(0.3, 3.0, 0.3, 0.0, 0.0)])[0]
    storm = scorer.predict_proba([flood_features(2.9, 3.0, 2.0, 15.0, 70.0)])[0]
    assert quiet < 0.05
    assert storm > 0.8


def test_predict_proba_shapes(scorer):
    assert scorer.predict_proba(np.zeros((0, 4), dtype=np.float32)).shape == (0,)
    assert scorer.predict_proba([0.5, 1.0, 5.0, 30.0]).shape == (1,)
    with pytest.raises(ValueError, match="4 features"):
        scorer.predict_proba(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        scorer.predict_proba([[np.nan, 0, 0, 0]])


def test_contributions_name_what_raised_the_risk(scorer):
    wet = flood_features(2.9, 3.0, 2.0, 15.0, 70.0)
    attributions = dict(scorer.attributions(wet))
    assert set(attributions) == set(FLOOD_FEATURES)
    named = scorer.contributions(wet)
    assert named and set(named) <= set(FLOOD_FEATURES)
    assert [attributions[n] for n in named] == sorted((attributions[n] for n in named), reverse=True)
    assert scorer.contributions(flood_features(0.3, 3.0, 0.3, 0.0, 0.0)) == []


# --------------------------------------------------------------------------- training and parity


def test_sklearn_and_onnx_agree_on_held_out_storms(small_model):
    scorer = load_scorer("flood", "1", artifacts_dir=small_model.onnx_path.parent)
    expected = small_model.model.predict_proba(small_model.x_test)[:, 1]
    actual = scorer.predict_proba(small_model.x_test)
    assert len(actual) > 500
    assert np.abs(actual - expected).max() <= 1e-5
    assert 0.5 < small_model.metrics["roc_auc"] <= 1.0


def test_training_is_deterministic(small_model, tmp_path):
    again = train_flood_model(seed=7, n_storms=80, out_dir=tmp_path, progress=False)
    assert again.onnx_path.read_bytes() == small_model.onnx_path.read_bytes()


# --------------------------------------------------------------------------- loader guards


def test_loader_rejects_missing_files(tmp_path):
    with pytest.raises(ModelLoadError, match=r"metadata .* not found"):
        load_scorer("flood", "1", artifacts_dir=tmp_path)
    artifacts_copy(tmp_path)
    (tmp_path / "flood-1.onnx").unlink()
    with pytest.raises(ModelLoadError, match=r"model file .* not found"):
        load_scorer("flood", "1", artifacts_dir=tmp_path)


def test_loader_rejects_corrupt_model(tmp_path):
    artifacts_copy(tmp_path)
    path = tmp_path / "flood-1.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256"):
        load_scorer("flood", "1", artifacts_dir=tmp_path)


def test_loader_rejects_garbage_that_matches_its_hash(tmp_path):
    artifacts_copy(tmp_path)
    (tmp_path / "flood-1.onnx").write_bytes(b"not a model")
    meta_path = tmp_path / "flood-1.json"
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = hashlib.sha256(b"not a model").hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="cannot load"):
        load_scorer("flood", "1", artifacts_dir=tmp_path)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(features=["stage_to_danger_m", "rise_m_per_h", "rain_10min_mm"]), "features"),
    (lambda m: m.update(features=list(reversed(m["features"]))), "features"),
    (lambda m: m.update(version="2"), "describes"),
    (lambda m: m.update(input_name="x"), "inputs"),
    (lambda m: m.pop("sha256"), "lacks"),
])
def test_loader_rejects_mismatched_metadata(tmp_path, change, message):
    artifacts_copy(tmp_path)
    meta_path = tmp_path / "flood-1.json"
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=message):
        load_scorer("flood", "1", artifacts_dir=tmp_path)


def test_loader_rejects_model_of_wrong_width(tmp_path, small_model):
    """A 3-input model under flood-1's name and features is refused."""
    from sklearn.linear_model import LogisticRegression

    from models.train import to_onnx

    model = LogisticRegression().fit(small_model.x_train[:, :3], small_model.y_train)
    artifacts_copy(tmp_path)
    onnx_path = tmp_path / "flood-1.onnx"
    onnx_path.write_bytes(to_onnx(model, 3))
    meta_path = tmp_path / "flood-1.json"
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="shape"):
        load_scorer("flood", "1", artifacts_dir=tmp_path)
