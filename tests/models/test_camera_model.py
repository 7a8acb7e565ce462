"""camera/1: shared preprocessing, level and overtopping from frames, parity, loader."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from PIL import Image

from models import CAMERA_FEATURES, ModelLoadError, camera_input, camera_inputs, load_scorer, read_frame, read_frames
from models.runtime import ARTIFACTS_DIR
from models.train_camera import render_frames, train_camera
from replay_data.camera import JST, encode_jpeg, render_frame
from suibou.catalogue import StationCatalogue
from suibou.contracts import AlertLevel


@pytest.fixture(scope="module")
def scorer():
    return load_scorer("camera", "1")


@pytest.fixture(scope="module")
def gauge():
    return StationCatalogue.load("kanda-basin").level_gauges[0]  # bank-full 3.5 m


def test_preprocessing_is_box_filtered_grayscale_in_unit_range():
    # Left half black, right half white: the 32 x 24 input is 0 on the left, 1 on the right.
    image = Image.new("RGB", (160, 120), (0, 0, 0))
    image.paste((255, 255, 255), (80, 0, 160, 120))
    x = camera_input(image).reshape(24, 32)
    assert x.dtype == np.float32 and x.shape == (24, 32)
    assert np.all(x[:, :16] == 0.0) and np.all(x[:, 16:] == 1.0)
    assert len(CAMERA_FEATURES) == 768 and CAMERA_FEATURES[32] == "px_01_00"
    # Bytes and images give the same input; many frames stack.
    frame = render_frame(1.0, StationCatalogue.load("kanda-basin").level_gauges[0],
                         when=dt.datetime(2020, 1, 1, 12, tzinfo=JST), camera_id="CAM-P")
    data = encode_jpeg(frame)
    np.testing.assert_array_equal(camera_input(data), camera_input(Image.open(__import__("io").BytesIO(data))))
    assert camera_inputs([data, frame]).shape == (2, 768)
    with pytest.raises(TypeError):
        camera_input("not an image")


def test_committed_artifact(scorer):
    assert (ARTIFACTS_DIR / "camera-1.onnx").stat().st_size < 2_000_000
    meta = json.loads((ARTIFACTS_DIR / "camera-1.json").read_text())
    m = meta["metrics_held_out"]
    assert m["mae_level_m"] < 0.2 and m["mae_level_ratio"] < 0.05
    assert m["overtopping"]["roc_auc"] > 0.95
    assert m["onnx_parity_max_abs_diff"] <= 1e-5
    assert "synthetic" in meta["training_data"]["kind"]
    card = (ARTIFACTS_DIR / "camera-1.md").read_text()
    assert "MAE" in card and "synthetic" in card and "Limits" in card


@pytest.mark.parametrize("level_m", [0.6, 1.5, 2.2, 2.8, 3.2, 3.9])
def test_reads_the_level_of_unseen_frames(scorer, gauge, level_m):
    # A camera id never used in training, daylight and night, light and heavy rain.
    frames = [
        encode_jpeg(render_frame(level_m, gauge, when=dt.datetime(2021, 6, 1, hour, tzinfo=JST),
                                 camera_id="CAM-UNSEEN-TEST", seed=seed, rain_mm_h=rain))
        for hour, seed, rain in ((11, 1, 0.0), (14, 2, 60.0), (23, 3, 20.0))
    ]
    readings = read_frames(scorer, frames, [gauge] * len(frames))
    for reading in readings:
        # Held-out MAE is ~9 cm; single frames can be off by a few tenths (model card).
        assert reading.level_m == pytest.approx(level_m, abs=0.6)
        assert reading.model == "camera/1"
        assert reading.overtopping == (level_m >= gauge.bank_full_m)
    assert np.median([r.level_m for r in readings]) == pytest.approx(level_m, abs=0.2)


def test_stage_comes_from_the_gauge_thresholds(scorer, gauge):
    frame = render_frame(4.2, gauge, when=dt.datetime(2021, 6, 1, 12, tzinfo=JST), camera_id="CAM-X1", seed=4)
    reading = read_frame(scorer, frame, gauge)
    assert reading.overtopping and reading.p_overtopping > 0.9
    assert reading.stage == AlertLevel.FLOODING
    low = read_frame(scorer, render_frame(0.5, gauge, when=dt.datetime(2021, 6, 1, 12, tzinfo=JST),
                                          camera_id="CAM-X1", seed=4), gauge)
    assert low.stage == AlertLevel.NONE and low.p_overtopping < 0.1
    with pytest.raises(ValueError):
        read_frames(scorer, [frame], [])


def test_camera_scorer_api(scorer):
    x = np.zeros((3, 768), dtype=np.float32)
    ratio, p = scorer.predict_camera(x)
    assert ratio.shape == (3,) and p.shape == (3,)
    np.testing.assert_array_equal(scorer.predict_proba(x), p)
    assert scorer.predict_camera(np.zeros((0, 768)))[0].shape == (0,)
    with pytest.raises(ValueError, match="768 features"):
        scorer.predict_camera(np.zeros((1, 10)))
    with pytest.raises(ValueError, match="not a camera model"):
        load_scorer("landslide", "1").predict_camera(np.zeros((1, 7)))


def test_parity_with_scikit_learn_on_held_out_frames(tmp_path):
    result = train_camera(seed=5, n_frames=500, n_held_out=200, out_dir=tmp_path, progress=False)
    scorer = load_scorer("camera", "1", artifacts_dir=tmp_path)
    ratio, p = scorer.predict_camera(result.test.x)
    assert np.abs(ratio - result.model.predict_level_ratio(result.test.x)).max() <= 1e-5
    assert np.abs(p - result.model.predict_overtopping(result.test.x)).max() <= 1e-5
    assert result.metrics["mae_level_ratio"] < 0.1  # even a small model reads the water line


def test_frames_for_training_are_reproducible():
    a = render_frames(3, 5, ["CAM-A", "CAM-B"])
    b = render_frames(3, 5, ["CAM-A", "CAM-B"])
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.level_ratio, b.level_ratio)


def test_loader_rejects_a_camera_model_without_its_level_output(tmp_path):
    import hashlib
    import shutil

    for suffix in ("onnx", "json"):
        shutil.copy(ARTIFACTS_DIR / f"camera-1.{suffix}", tmp_path)
    meta = json.loads((tmp_path / "camera-1.json").read_text())
    meta["features"] = meta["features"][:-1]
    (tmp_path / "camera-1.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="features"):
        load_scorer("camera", "1", artifacts_dir=tmp_path)
    # A binary model on 768 inputs posing as the camera model: no level output.
    from sklearn.ensemble import HistGradientBoostingClassifier

    from models.export import binary_onnx

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(100, 768)).astype(np.float32)
    data = binary_onnx(HistGradientBoostingClassifier(max_iter=2).fit(x, x[:, 0] > 0.5), 768, "impostor")
    (tmp_path / "camera-1.onnx").write_bytes(data)
    meta = json.loads((ARTIFACTS_DIR / "camera-1.json").read_text())
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    (tmp_path / "camera-1.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="level_ratio"):
        load_scorer("camera", "1", artifacts_dir=tmp_path)
