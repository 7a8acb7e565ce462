"""The synthesiser, the storm library and the station catalogue."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest

from replay_data import RainCell, StormParams, export_csv, list_storms, load_storm, simulate
from replay_data.synth import channel_route, drain, scs_effective_rain, tipping_bucket
from suibou.catalogue import LevelGauge, StationCatalogue, level_for
from suibou.contracts import AlertLevel, parse_event

ZENPUKUJI, MYOSHOJI, KANDA = "WL-ZENPUKUJI-NARITA", "WL-MYOSHOJI-SAGINOMIYA", "WL-KANDA-EIFUKU"


@pytest.fixture(scope="module")
def suginami():
    return load_storm("suginami-2005-mini")


@pytest.fixture(scope="module")
def quiet():
    return load_storm("quiet-day-mini")


def max_level(storm, station_id: str) -> float:
    return max(level for _, level in storm.level_series(station_id))


def test_library_lists_both_storms():
    assert {"suginami-2005-mini", "quiet-day-mini"} <= set(list_storms())
    with pytest.raises(KeyError, match="known storms"):
        load_storm("no-such-storm")


def test_same_seed_same_storm(suginami):
    again = load_storm("suginami-2005-mini")
    assert again.rain == suginami.rain
    assert again.levels == suginami.levels


def test_different_seed_different_noise(suginami):
    params = dataclasses.replace(suginami.params, seed=suginami.params.seed + 1)
    other = simulate(suginami.catalogue, params)
    assert not np.array_equal(other.level_m, suginami.simulation.level_m)
    # The noise is small: the true hydrograph is unchanged.
    np.testing.assert_allclose(other.level_true_m, suginami.simulation.level_true_m)


def test_suginami_is_labelled_a_synthetic_reconstruction(suginami):
    assert suginami.provenance == "synthetic reconstruction"
    assert "synthetic reconstruction" in suginami.description
    assert "not observed" in suginami.description


def test_suginami_shape_and_ids(suginami):
    assert suginami.end - suginami.start == dt.timedelta(hours=3)
    assert len(suginami.rain) == 4 * 180 and len(suginami.levels) == 3 * 180
    first = suginami.rain[0]
    assert first.event_time == suginami.start + dt.timedelta(minutes=1)
    assert first.event_id == f"{first.station_id}:{int(first.event_time.timestamp())}"
    assert len({e.event_id for e in suginami.events()}) == len(suginami.events())
    times = [e.event_time for e in suginami.events()]
    assert times == sorted(times)
    # Every reading satisfies its contract.
    for event in suginami.events()[:50]:
        assert parse_event(event.to_json()) == event


def test_suginami_cell_exceeds_100_mm_per_hour_over_zenpukuji_and_myoshoji(suginami):
    sim = suginami.simulation
    for station in ("RG-ZENPUKUJI", "RG-SHIMOIGUSA"):
        i = sim.rain_ids.index(station)
        assert sim.rain_rate_mm_h[i].max() > 100
        hourly = np.convolve(sim.rain_mm[i], np.ones(60))[: sim.rain_mm.shape[1]]
        assert hourly.max() > 80


def test_suginami_thresholds(suginami):
    cat = suginami.catalogue
    zen, myo, kanda = (cat.level_gauge(s) for s in (ZENPUKUJI, MYOSHOJI, KANDA))
    assert level_for(zen, max_level(suginami, ZENPUKUJI)) == AlertLevel.FLOODING
    assert level_for(myo, max_level(suginami, MYOSHOJI)) >= AlertLevel.DANGER
    assert level_for(kanda, max_level(suginami, KANDA)) <= AlertLevel.CAUTION
    # Zenpukuji is bank-full only briefly, and crosses each threshold once, in order.
    series = suginami.level_series(ZENPUKUJI)
    assert 5 <= sum(level >= zen.bank_full_m for _, level in series) <= 30
    firsts = [next(t for t, level in series if level >= v) for v in zen.thresholds().values()]
    assert firsts == sorted(firsts)
    for value in zen.thresholds().values():
        above = np.array([level >= value for _, level in series], dtype=int)
        assert np.abs(np.diff(above)).sum() == 2  # up once, down once


def test_quiet_day_crosses_nothing(quiet):
    assert "synthetic" in quiet.description
    for gauge in quiet.catalogue.level_gauges:
        assert level_for(gauge, max_level(quiet, gauge.station_id)) == AlertLevel.NONE
    assert sum(r.rain_mm for r in quiet.rain) > 0  # it does rain, lightly


def test_export_csv(tmp_path, quiet):
    path = tmp_path / "quiet.csv"
    rows = export_csv(quiet, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "time,station_id,kind,value"
    assert rows == len(lines) - 1 == len(quiet.rain) + len(quiet.levels)
    assert lines[1].split(",")[2] in {"rain_mm", "level_m"}


# --------------------------------------------------------------------------- physics pieces


def test_tipping_bucket_counts_whole_tips_and_conserves_totals():
    true = np.array([0.2, 0.2, 0.2, 1.3, 0.0])
    reported = tipping_bucket(true)
    assert set(np.round(reported / 0.5, 9)) <= {0.0, 1.0, 2.0, 3.0}
    assert reported.sum() == pytest.approx(1.5)  # 1.9 mm fell: three tips, 0.4 mm still in the bucket


def test_scs_has_initial_loss_then_runs_off():
    effective = scs_effective_rain(np.full(60, 2.0), curve_number=85)
    assert effective[:3].sum() == 0.0  # initial abstraction Ia = 0.2 S ≈ 9 mm
    assert 0 < effective.sum() < 120
    assert np.all(np.diff(effective[10:]) >= 0)  # runoff ratio grows as the soil wets


def test_drain_delays_but_conserves_water():
    x = np.array([0, 1, 5, 5, 0, 0, 0, 2, 0.0])
    out = drain(x, 2.0)
    assert out.max() <= 2.0 and out.sum() == pytest.approx(x.sum())


def test_no_rain_means_base_flow():
    cat = StationCatalogue.load("kanda-basin")
    params = StormParams(start=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), duration_min=30, cells=(),
                         seed=3, level_noise_m=0.0)
    sim = simulate(cat, params)
    assert sim.rain_mm.sum() == 0
    assert np.ptp(sim.level_m, axis=1).max() == 0


def test_cell_parameters_are_validated():
    with pytest.raises(ValueError):
        RainCell(peak_mm_h=50, lon=139.6, lat=35.7, peak_min=10, duration_min=0)


# --------------------------------------------------------------------------- catalogue


def _gauge(**overrides):
    fields = {"station_id": "WL-T", "name": "T", "name_ja": "T", "lon": 139.6, "lat": 35.7, "reach_id": "R-T",
              "standby_m": 1.0, "caution_m": 1.5, "evacuation_m": 2.0, "danger_m": 2.5, "bank_full_m": 3.0}
    return LevelGauge(**(fields | overrides))


def test_level_for_boundaries():
    gauge = _gauge()
    assert level_for(gauge, 0.0) == AlertLevel.NONE
    assert level_for(gauge, 1.2) == AlertLevel.NONE  # standby has no alert level
    assert level_for(gauge, 1.5) == AlertLevel.CAUTION
    assert level_for(gauge, 2.0) == AlertLevel.WARNING
    assert level_for(gauge, 2.5) == AlertLevel.DANGER
    assert level_for(gauge, 3.0) == AlertLevel.FLOODING


@pytest.mark.parametrize("overrides", [
    {"caution_m": 2.2},            # caution above evacuation
    {"danger_m": 2.0},             # equal to evacuation
    {"bank_full_m": 2.4},          # bank below danger
    {"standby_m": float("nan")},
    {"lon": 200.0},
    {"station_id": "X-1"},
])
def test_level_gauge_rejects_bad_values(overrides):
    with pytest.raises(ValueError):
        _gauge(**overrides)


def test_catalogue_lookups_and_round_trip(tmp_path):
    cat = StationCatalogue.load("kanda-basin")
    assert "invented" in cat.provenance and "real" in cat.provenance
    assert cat.reach_for_level_station(ZENPUKUJI).reach_id == "R-ZENPUKUJI-UPPER"
    assert {r.reach_id for r in cat.reaches_for_rain_station("RG-ZENPUKUJI")} == {
        "R-ZENPUKUJI-UPPER", "R-MYOSHOJI-UPPER"}
    assert [g.station_id for g in cat.rain_stations_for_reach("R-KANDA-UPPER")] == ["RG-TAKAIDO"]
    with pytest.raises(KeyError):
        cat.reach_for_level_station("WL-NOWHERE")
    path = tmp_path / "copy.json"
    cat.save(path)
    assert StationCatalogue.load(path) == cat
    assert cat.reach("R-KANDA-UPPER").geojson()["geometry"]["type"] == "LineString"


def test_catalogue_rejects_broken_references(tmp_path):
    data = StationCatalogue.load("kanda-basin").to_dict()
    broken = json.loads(json.dumps(data))
    broken["rain_gauges"][0]["reach_ids"] = ["R-NOWHERE"]
    with pytest.raises(ValueError, match="unknown reach"):
        StationCatalogue.from_dict(broken)
    broken = json.loads(json.dumps(data))
    broken["level_gauges"].append(dict(broken["level_gauges"][0]))
    with pytest.raises(ValueError, match="duplicate"):
        StationCatalogue.from_dict(broken)
    broken = json.loads(json.dumps(data))
    broken["level_gauges"][0]["danger_m"] = broken["level_gauges"][0]["caution_m"]
    with pytest.raises(ValueError, match="increase strictly"):
        StationCatalogue.from_dict(broken)
    broken = json.loads(json.dumps(data))
    del broken["reaches"][0]["geometry"]
    with pytest.raises(ValueError, match="malformed"):
        StationCatalogue.from_dict(broken)


def test_a_channel_delays_a_flood_wave_by_its_travel_time_and_loses_no_water():
    wave = np.zeros(600)
    wave[100:130] = 50.0
    routed = channel_route(wave, travel_min=40.0, step_s=60)
    assert routed.sum() == pytest.approx(wave.sum(), rel=1e-3)
    centre = lambda q: float((q * np.arange(q.size)).sum() / q.sum())  # noqa: E731
    assert centre(routed) - centre(wave) == pytest.approx(40.0, abs=1.0)
    assert routed.max() < wave.max()  # the peak flattens a little on the way
    assert not routed[:120].any()  # and nothing arrives before half the travel time


def test_rain_on_the_headwaters_alone_reaches_the_lower_tama_as_a_crest_that_travels():
    tama = StationCatalogue.load("tama-basin")
    # A cell parked over the Okutama mountains; the plain stays dry.
    cell = RainCell(peak_mm_h=40.0, lon=139.05, lat=35.80, peak_min=120.0, duration_min=180.0, sigma_km=4.0,
                    speed_kmh=0.0)
    sim = simulate(tama, StormParams(start=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), duration_min=1200,
                                     cells=(cell,), background_mm_h=0.0, seed=3, level_noise_m=0.0))
    peak = {sid: int(np.argmax(sim.discharge_m3s[j])) for j, sid in enumerate(sim.level_ids)}
    chain = ["WL-TAMA-CHOFUBASHI", "WL-TAMA-HAIJIMA", "WL-TAMA-HINOBASHI", "WL-TAMA-SEKIDO",
             "WL-TAMA-ISHIHARA", "WL-TAMA-FUTAKO", "WL-TAMA-DENENCHOFU"]
    assert [peak[s] for s in chain] == sorted(peak[s] for s in chain)
    # Chofubashi to Den-en-chofu: the travel times of the six reaches between, give or take the flattening.
    travel = sum(tama.reach(r).travel_min or 0 for r in ("R-TAMA-OKUTAMA", "R-TAMA-OME", "R-TAMA-HAIJIMA",
                                                         "R-TAMA-HINO", "R-TAMA-FUCHU", "R-TAMA-CHOFU"))
    assert travel - 30 <= peak["WL-TAMA-DENENCHOFU"] - peak["WL-TAMA-CHOFUBASHI"] <= travel + 90
    # The Aki, which got no rain, stays at its base flow.
    aki = sim.level_ids.index("WL-AKI-AKIRUNO")
    assert sim.discharge_m3s[aki].max() == pytest.approx(tama.hydrology["R-AKI-LOWER"].base_flow_m3s, rel=0.05)


def test_a_reach_smaller_than_the_catchments_upstream_of_it_is_refused():
    tama = StationCatalogue.load("tama-basin")
    hydrology = dict(tama.hydrology)
    hydrology["R-TAMA-OME"] = dataclasses.replace(hydrology["R-TAMA-OME"], catchment_km2=300.0)  # Okutama: 380
    broken = dataclasses.replace(tama, hydrology=hydrology)
    params = StormParams(start=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), duration_min=30, cells=(),
                         background_mm_h=0.0, seed=1)
    with pytest.raises(ValueError, match="R-TAMA-OME: catchment_km2 must exceed"):
        simulate(broken, params)
