"""landslide/1 and the physically based criterion beside it."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from models import LANDSLIDE_FEATURES, landslide_criterion, landslide_feature_matrix, landslide_features, load_scorer
from models.datasets import (
    ZoneSeries,
    draw_landslide_storm,
    landslide_rows,
    zones_from_storm,
)
from models.runtime import ARTIFACTS_DIR
from models.train_landslide import train_landslide
from replay_data.synth import Storm
from suibou.catalogue import StationCatalogue
from suibou.contracts import RainReading
from suibou.hydrology import DEFAULT_CRITICAL_LINE, CriticalLine, TankState, soil_water_index_series, step_tanks


@pytest.fixture(scope="module")
def scorer():
    return load_scorer("landslide", "1")


def test_feature_row_by_hand():
    state = TankState(90.0, 60.0, 40.0)
    row = landslide_features(state, swi_1h_ago_mm=170.0, rain_10min_mm=6.0, rain_60min_mm=20.0,
                             nowcast_rain_60min_mm=45.0)
    # swi = 190; change = 20; margin now = 20/100 + 190/300 - 1 = -0.1667;
    # +1 h with 45 mm: SWI 220.1 (see tests/suibou/test_hydrology.py), margin 45/100 + 220.1/300 - 1 = 0.1837;
    # +2 h: larger still, 0.2644.
    assert row == pytest.approx((6.0, 20.0, 190.0, 20.0, 45.0, -0.166667, 0.264418), abs=1e-5)
    outlook = landslide_criterion(state, 20.0, 45.0)
    assert not outlook.exceeds_now and outlook.exceeds_within_2h
    assert outlook.margin_max == pytest.approx(row[6], abs=1e-5)
    # Dry ground, below the line's SWI floor: the margins sit at the lower clip.
    dry = landslide_features(TankState(), swi_1h_ago_mm=None, rain_10min_mm=0.0, rain_60min_mm=0.0)
    assert dry[3] == 0.0 and dry[4] == 0.0 and dry[5] == -2.0


def test_feature_margin_agrees_with_the_criterion_everywhere():
    rng = np.random.default_rng(4)
    n = 500
    storage = rng.uniform(0, 150, (n, 3))
    r60, nowcast = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    line = CriticalLine(r60_at_dry_mm=80.0, swi_at_no_rain_mm=250.0, swi_floor_mm=40.0)
    x = landslide_feature_matrix(storage, np.full(n, np.nan), rng.uniform(0, 20, n), r60, nowcast, line)
    for i in range(0, n, 7):
        outlook = landslide_criterion(TankState(*storage[i]), r60[i], nowcast[i], line)
        assert (x[i, 6] >= 0) == outlook.exceeds_within_2h
        assert (x[i, 5] >= 0) == outlook.exceeds_now


def test_committed_artifact(scorer):
    assert (ARTIFACTS_DIR / "landslide-1.onnx").stat().st_size < 2_000_000
    meta = json.loads((ARTIFACTS_DIR / "landslide-1.json").read_text())
    assert scorer.features == LANDSLIDE_FEATURES and meta["features"] == list(LANDSLIDE_FEATURES)
    m = meta["metrics_held_out"]
    assert m["model"]["roc_auc"] > 0.9 and m["model"]["brier"] < m["model"]["brier_climatology"]
    assert m["lead_time_model"]["n_events"] >= 20 and m["lead_time_model"]["mean_min"] > 10
    assert m["onnx_parity_max_abs_diff"] <= 1e-5
    assert "invented" in meta["default_critical_line"]["note"]
    card = (ARTIFACTS_DIR / "landslide-1.md").read_text()
    for needed in ("ROC-AUC", "Brier", "physically based criterion", "invented", "synthetic", "Limits"):
        assert needed in card


def test_probability_rises_with_soil_water_and_rain(scorer):
    swis = np.linspace(0, 300, 61)
    storage = np.stack([swis * 0.4, swis * 0.35, swis * 0.25], axis=1)
    for r60 in (10.0, 40.0, 80.0):
        x = landslide_feature_matrix(storage, swis - 10, np.full(61, r60 / 6), np.full(61, r60), np.full(61, r60))
        p = scorer.predict_proba(x)
        assert np.all(np.diff(p) >= -1e-6)
    calm = landslide_features(TankState(5.0, 5.0, 5.0), swi_1h_ago_mm=15.0, rain_10min_mm=0.0, rain_60min_mm=0.0,
                              nowcast_rain_60min_mm=0.0)
    soaked = landslide_features(TankState(110.0, 80.0, 60.0), swi_1h_ago_mm=200.0, rain_10min_mm=15.0,
                                rain_60min_mm=60.0, nowcast_rain_60min_mm=70.0)
    p = scorer.predict_proba([calm, soaked])
    assert p[0] < 0.02 and p[1] > 0.9


def test_rows_label_the_snake_line_two_hours_ahead():
    # One zone, wet ground, then 12 h of rain: 0 for 4 h, 80 mm/h for 1 h, then 0.
    rain = np.zeros((1, 720))
    rain[0, 240:300] = 80.0 / 60.0
    zones = ZoneSeries(name="t", provenance="synthetic", zone_ids=("Z",), rain_mm=rain,
                       initial=np.array([[40.0, 50.0, 40.0]]), lines=(DEFAULT_CRITICAL_LINE,))
    rows = landslide_rows(zones, np.random.default_rng(0))
    crossed = rows.step[rows.margin_now >= 0]
    assert crossed.size > 0
    first = crossed.min()
    # Labelled positive exactly in the 12 steps (2 h) before the first crossing, and while beyond.
    positive = set(rows.step[rows.y == 1].tolist())
    assert set(range(max(5, first - 12), first)) <= positive
    assert not positive & set(range(5, first - 12))  # nothing earlier than 2 h ahead
    assert first - 12 > 5  # the test storm leaves room to see that
    assert rows.x[:, 2].max() == pytest.approx(
        soil_water_index_series(rain[0].reshape(72, 10).sum(axis=1), 1 / 6,
                                TankState(40.0, 50.0, 40.0)).max(), rel=1e-5)


def imported_style_storm(name: str, hours: int = 10) -> Storm:
    """Hourly rain at two gauges in the import format: a long soaking with a burst."""
    catalogue = StationCatalogue.load("kanda-basin")
    start = dt.datetime(2019, 10, 12, 0, 0, tzinfo=dt.UTC)
    rng = np.random.default_rng(len(name))
    rain = []
    for gauge in catalogue.rain_gauges[:2]:
        for h in range(hours):
            amount = 30.0 + rng.uniform(0, 20) + (70.0 if h == hours - 4 else 0.0)
            rain.append(RainReading(event_id=f"{gauge.station_id}:{h}", event_time=start + dt.timedelta(hours=h + 1),
                                    station_id=gauge.station_id, rain_mm=round(amount, 1), interval_s=3600))
    return Storm(name=name, title=name, description="test storm in the import format", provenance="observed (imported)",
                 start=start, end=start + dt.timedelta(hours=hours), catalogue=catalogue, rain=tuple(rain), levels=())


def test_imported_storm_becomes_zones():
    storm = imported_style_storm("bureau-hagibis-like")
    zones = zones_from_storm(storm)
    assert zones.zone_ids[:2] == tuple(g.station_id for g in storm.catalogue.rain_gauges[:2])
    assert zones.rain_mm[:2].sum() == pytest.approx(sum(r.rain_mm for r in storm.rain))
    rows = landslide_rows(zones, np.random.default_rng(0))
    assert len(rows) > 0 and rows.y.any()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("landslide")
    return train_landslide(seed=21, n_storms=120, storms=[imported_style_storm("bureau-a")],
                           held_out_storms=[imported_style_storm("bureau-b", 12)], out_dir=out, progress=False)


def test_parity_and_lead_time_on_held_out_events(trained):
    scorer = load_scorer("landslide", "1", artifacts_dir=trained.onnx_path.parent)
    expected = trained.model.predict_proba(trained.test.x)[:, 1]
    actual = scorer.predict_proba(trained.test.x)
    assert len(actual) > 1000 and np.abs(actual - expected).max() <= 1e-5
    assert trained.metrics["lead_time_model"]["mean_min"] > 0
    assert trained.metrics["lead_time_physical_criterion"]["mean_min"] > 0
    meta = json.loads(trained.metadata_path.read_text())
    assert meta["training_data"]["n_supplied_train_storms"] == 1
    assert any(z.startswith("bureau-a|") for z in trained.train.zone)
    assert any(z.startswith("bureau-b|") for z in trained.test.zone)


def test_synthetic_events_are_reproducible():
    a = draw_landslide_storm(np.random.default_rng(9), 0)
    b = draw_landslide_storm(np.random.default_rng(9), 0)
    np.testing.assert_array_equal(a.rain_mm, b.rain_mm)
    assert a.lines == b.lines
    assert np.all(np.round(a.rain_mm / 0.5, 6) % 1 == 0)  # tipping-bucket resolution


def test_tank_state_for_the_pipeline_is_stepped_every_ten_minutes():
    # The pipeline keeps a TankState per zone and steps it with each 10-minute total.
    state = TankState()
    for amount in (5.0, 12.0, 0.0):
        state = step_tanks(state, amount, dt_h=1 / 6)
    np.testing.assert_allclose(sum(state.as_tuple()), soil_water_index_series([5.0, 12.0, 0.0], 1 / 6)[-1])
