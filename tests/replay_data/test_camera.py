"""Synthetic river-camera frames: deterministic, and the picture shows the level."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from PIL import Image

from replay_data.camera import JST, LAYOUT, THRESHOLD_COLOURS, daylight, encode_jpeg, render_frame, surface_y
from suibou.catalogue import LevelGauge

GAUGE = LevelGauge(station_id="WL-TEST", name="Test", name_ja="テスト", lon=139.6, lat=35.7, reach_id="R-TEST",
                   standby_m=1.5, caution_m=2.0, evacuation_m=2.6, danger_m=3.0, bank_full_m=3.5)
NOON = dt.datetime(2005, 9, 4, 12, 0, tzinfo=JST)
NIGHT = dt.datetime(2005, 9, 4, 2, 0, tzinfo=JST)
CAMERA = "CAM-TEST"  # crc32 puts this camera's view shift at (sx, sy); measured below


def pixels(level, when=NOON, **kwargs):
    return np.asarray(render_frame(level, GAUGE, when=when, camera_id=CAMERA, **kwargs), dtype=np.int16)


def is_water(px: np.ndarray) -> np.ndarray:
    """Brown water (104, 88, 66) +- noise and ripple; neither grass, concrete, sky nor gauge."""
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    return (np.abs(r - 104) < 22) & (np.abs(g - 88) < 22) & (np.abs(b - 66) < 22) & (r - b > 20)


def first_water_row(px: np.ndarray, column: int) -> int:
    rows = np.nonzero(is_water(px[:, column]))[0]
    return int(rows.min()) if rows.size else px.shape[0]


def test_same_inputs_same_pixels_and_bytes():
    a = render_frame(2.2, GAUGE, when=NOON, camera_id=CAMERA, seed=5, rain_mm_h=40.0)
    b = render_frame(2.2, GAUGE, when=NOON, camera_id=CAMERA, seed=5, rain_mm_h=40.0)
    assert a.tobytes() == b.tobytes()
    assert encode_jpeg(a) == encode_jpeg(b)
    c = render_frame(2.2, GAUGE, when=NOON, camera_id=CAMERA, seed=6, rain_mm_h=40.0)
    assert a.tobytes() != c.tobytes()


def test_jpeg_round_trip():
    data = encode_jpeg(render_frame(1.0, GAUGE, when=NOON, camera_id=CAMERA, width=200, height=150))
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "JPEG" and decoded.size == (200, 150)


def test_water_surface_height_is_proportional_to_level():
    # Column a little left of the gauge, inside the channel at every level.
    column = int(0.45 * 160)
    expected_rows, found_rows = [], []
    for level in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.4):
        px = pixels(level)
        found_rows.append(first_water_row(px, column))
        expected_rows.append(surface_y(level, GAUGE.bank_full_m, 120, shift_y=_shift_y()))
    assert np.all(np.diff(found_rows) < 0), found_rows  # higher level, higher surface
    np.testing.assert_allclose(found_rows, expected_rows, atol=2.0)
    # Linear in the level: equal steps of level give equal steps of rows.
    steps = np.diff(expected_rows[:6])
    np.testing.assert_allclose(steps, steps[0], atol=1e-9)


def _shift_y() -> float:
    from replay_data.camera import camera_shift

    return camera_shift(CAMERA)[1]


def test_view_shift_moves_the_scene():
    base = pixels(2.0, view_shift=(0.0, 0.0))
    moved = pixels(2.0, view_shift=(0.0, 2.0))
    column = int(0.45 * 160)
    assert first_water_row(moved, column) == first_water_row(base, column) + 2


def test_overtopping_floods_the_crowns():
    crown_row = int(LAYOUT.bank_y * 120 + _shift_y()) + 2  # just below the crown
    for column in (3, 156):  # far left and far right: embankment, outside the channel
        below = pixels(GAUGE.bank_full_m - 0.05)
        above = pixels(GAUGE.bank_full_m + 0.05)
        assert not is_water(below[crown_row, column])
        assert is_water(above[crown_row, column])
    dry_share = is_water(pixels(GAUGE.bank_full_m - 0.05)).mean()
    wet_share = is_water(pixels(GAUGE.bank_full_m + 0.3)).mean()
    assert wet_share > dry_share + 0.25


def test_staff_gauge_shows_threshold_marks_above_the_water():
    px = pixels(0.5)
    for name, colour in THRESHOLD_COLOURS.items():
        close = (np.abs(px - np.array(colour)).sum(axis=2) < 40)
        assert close.sum() >= 4, name
    # Under water the marks are hidden: at 3.2 m caution, evacuation and danger are submerged.
    px = pixels(3.2)
    for name in ("caution_m", "evacuation_m", "danger_m"):
        close = (np.abs(px - np.array(THRESHOLD_COLOURS[name])).sum(axis=2) < 40)
        assert close.sum() < 2, name


def test_night_is_darker_and_rain_adds_streaks():
    assert daylight(NOON) == 1.0 and daylight(NIGHT) == 0.25
    assert 0.25 < daylight(dt.datetime(2005, 9, 4, 6, 0, tzinfo=JST)) < 1.0
    day, night = pixels(1.0).mean(), pixels(1.0, when=NIGHT).mean()
    assert night < 0.6 * day
    dry = (pixels(1.0) > 200).all(axis=2)[30:].sum()
    wet = (pixels(1.0, rain_mm_h=80.0) > 170).all(axis=2)[30:].sum()
    assert wet > dry + 50


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="timezone"):
        render_frame(1.0, GAUGE, when=dt.datetime(2005, 9, 4, 12), camera_id=CAMERA)
    with pytest.raises(ValueError):
        render_frame(float("nan"), GAUGE, when=NOON, camera_id=CAMERA)
    with pytest.raises(ValueError):
        render_frame(1.0, GAUGE, when=NOON, camera_id=CAMERA, width=20, height=10)


def test_docstring_examples():
    import doctest

    import replay_data.camera

    result = doctest.testmod(replay_data.camera)
    assert result.failed == 0 and result.attempted > 0
