"""River cameras: stills fetched safely, read by camera/1, and used as evidence of flooding."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from models import FLOOD2_FEATURES, load_scorer, read_frames
from pipelines.cameras import MAX_FRAME_BYTES, CameraEstimate, fetch_frame
from pipelines.gauges import LevelAssessment
from pipelines.ordered import run_fold
from pipelines.risk import ReachFusion, to_risk_score
from suibou.catalogue import StationCatalogue
from suibou.contracts import AlertLevel

SAMPLES = Path(__file__).resolve().parents[2] / "replay_data" / "samples" / "suginami-2005-mini" / "frames"
CATALOGUE = StationCatalogue.load("kanda-basin")
GAUGE = CATALOGUE.level_gauge("WL-ZENPUKUJI-NARITA")
T0 = dt.datetime(2005, 9, 4, 12, 55, tzinfo=dt.UTC)


def test_frames_are_fetched_from_file_uris_and_bad_ones_refused(tmp_path):
    frame = next((SAMPLES / "CAM-ZENPUKUJI-NARITA").glob("*.jpg"))
    assert fetch_frame(frame.as_uri())[:2] == b"\xff\xd8"  # a JPEG
    with pytest.raises(ValueError, match="unsupported image_uri scheme"):
        fetch_frame("http://example.invalid/frame.jpg")
    with pytest.raises(ValueError, match="cannot read"):
        fetch_frame((tmp_path / "missing.jpg").as_uri())
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\0" * (MAX_FRAME_BYTES + 1))
    with pytest.raises(ValueError, match="larger than"):
        fetch_frame(str(big))


def test_the_camera_model_reads_a_stored_still():
    frame = SAMPLES / "CAM-ZENPUKUJI-NARITA" / "20050904T125500Z.jpg"
    reading = read_frames(load_scorer("camera", "1"), [fetch_frame(str(frame))], [GAUGE])[0]
    # 12:55 is the height of the synthetic flood at Narita, close to the top of the bank.
    assert reading.level_m > GAUGE.danger_m - 0.5


def _status(minute: int, metres: float) -> LevelAssessment:
    return LevelAssessment(GAUGE.station_id, GAUGE.reach_id, T0 + dt.timedelta(minutes=minute), metres,
                           AlertLevel.DANGER, GAUGE.danger_m, metres, 0.0, True, "d", caution_m=GAUGE.caution_m,
                           evacuation_m=GAUGE.evacuation_m)


def _camera(minute: int, overtopping: bool) -> CameraEstimate:
    return CameraEstimate("CAM-ZENPUKUJI-NARITA", GAUGE.reach_id, T0 + dt.timedelta(minutes=minute), 3.6,
                          0.97 if overtopping else 0.1, overtopping, "camera/1", True, "d")


def test_a_camera_seeing_water_over_the_banks_raises_the_reach_to_flooding():
    fold = ReachFusion(tuple(FLOOD2_FEATURES), {GAUGE.reach_id: GAUGE.station_id})
    _, rows = run_fold(fold, f"d|{GAUGE.reach_id}", [_camera(0, True), _status(1, 3.2), _status(30, 3.2)])
    scores = [to_risk_score(r, {"danger_60min": 0.9}, "danger_60min", "t", "flood/2", []) for r in rows]
    assert scores[0].observed_level == AlertLevel.FLOODING
    assert scores[0].features["camera_p_overtopping"] == 0.97
    assert scores[1].observed_level == AlertLevel.DANGER  # the still is 30 minutes old: no longer evidence
