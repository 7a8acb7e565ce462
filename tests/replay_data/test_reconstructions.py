"""The storm reconstructions: their labels, and that they do what the history says.

Pure synthesis checks (no broker): totals, peaks, which thresholds are crossed
where, and where the synthetic damage happens.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from replay_data import list_storms, load_storm
from replay_data.storms import OSHIMA_1H_MM, OSHIMA_24H_MM
from replay_data.synth import rolling_sum
from suibou.catalogue import level_for
from suibou.contracts import AlertLevel

JST = dt.timezone(dt.timedelta(hours=9))
RECONSTRUCTIONS = ("suginami-2005-mini", "suginami-2005", "hagibis-2019", "oshima-2013")


@pytest.fixture(scope="module")
def storms():
    return {name: load_storm(name) for name in (*RECONSTRUCTIONS, "quiet-day", "quiet-day-mini")}


def peak_level(storm, station_id):
    sim = storm.simulation
    return level_for(storm.catalogue.level_gauge(station_id), sim.level_m[sim.level_ids.index(station_id)].max())


def rain(storm, station_id):
    sim = storm.simulation
    return sim.rain_mm[sim.rain_ids.index(station_id)]


def test_library_has_the_reconstructions_and_a_negative_control():
    assert {*RECONSTRUCTIONS, "quiet-day", "quiet-day-mini"} <= set(list_storms())


@pytest.mark.parametrize("name", RECONSTRUCTIONS)
def test_reconstructions_say_so(storms, name):
    storm = storms[name]
    assert storm.provenance == "synthetic reconstruction"
    assert "reconstruction" in storm.labels and "synthetic" in storm.labels
    assert "synthetic reconstruction" in storm.title and "not observed" in storm.description


def test_quiet_days_are_labelled_and_cross_nothing(storms):
    for name in ("quiet-day", "quiet-day-mini"):
        storm = storms[name]
        assert "negative-control" in storm.labels and "synthetic" in storm.description
        assert all(peak_level(storm, g) == AlertLevel.NONE for g in storm.simulation.level_ids)
        assert storm.damage == ()
        assert storm.simulation.rain_mm.sum() > 0


def test_oshima_totals_match_the_record(storms):
    storm = storms["oshima-2013"]
    motomachi = rain(storm, "RG-OSHIMA-MOTOMACHI")
    assert rolling_sum(motomachi, 24 * 60).max() == pytest.approx(OSHIMA_24H_MM, rel=0.02)
    assert rolling_sum(motomachi, 60).max() == pytest.approx(OSHIMA_1H_MM, rel=0.02)
    assert (OSHIMA_24H_MM, OSHIMA_1H_MM) == (824.0, 122.5)
    # About three hours at or above 100 mm/h, in the small hours of 16 October (JST).
    hourly = rolling_sum(motomachi, 60)
    heavy = storm.simulation.times[hourly >= 100]
    assert heavy.size >= 60
    first = dt.datetime.fromtimestamp(int(heavy[0].astype("datetime64[s]").astype(int)), JST)
    assert first.date() == dt.date(2013, 10, 16) and first.hour < 5
    # The south of the island (Habu) gets far less.
    assert rain(storm, "RG-OSHIMA-HABU").sum() < 0.5 * motomachi.sum()


def test_oshima_slopes_above_motomachi_fail_and_no_mainland_gauge_is_involved(storms):
    storm = storms["oshima-2013"]
    failed = {d.area_id: d.time for d in storm.damage if d.kind == "slope_failure"}
    assert set(failed) == {"Z-OSHIMA-KANDACHI", "Z-OSHIMA-OKANAZAWA"}
    for when in failed.values():
        local = when.astimezone(JST)
        assert local.date() == dt.date(2013, 10, 16) and 0 <= local.hour < 5
    assert not storm.levels and all(r.station_id.startswith("RG-OSHIMA-") for r in storm.rain)


def test_hagibis_is_long_rain_heaviest_in_the_mountains(storms):
    storm = storms["hagibis-2019"]
    assert storm.end - storm.start == dt.timedelta(hours=48)
    mountain = rain(storm, "RG-OGOUCHI")
    plain = rain(storm, "RG-TAMAGAWA")
    assert 500 < mountain.sum() < 800 and 200 < plain.sum() < 350
    assert rolling_sum(mountain, 60).max() < 80  # long and steady, not a downpour
    hours_raining = (rolling_sum(mountain, 60) >= 10).sum() / 60
    assert hours_raining >= 15


def test_hagibis_tama_thresholds_where_the_history_says(storms):
    storm = storms["hagibis-2019"]
    assert peak_level(storm, "WL-TAMA-FUTAKO") == AlertLevel.FLOODING  # overflow at Futako-Tamagawa
    assert peak_level(storm, "WL-TAMA-ISHIHARA") == AlertLevel.DANGER
    assert peak_level(storm, "WL-TAMA-DENENCHOFU") == AlertLevel.DANGER
    for upstream in ("WL-TAMA-CHOFUBASHI", "WL-TAMA-HAIJIMA", "WL-TAMA-HINOBASHI", "WL-TAMA-SEKIDO"):
        assert AlertLevel.CAUTION <= peak_level(storm, upstream) <= AlertLevel.WARNING
    overflow = [d for d in storm.damage if d.kind == "overflow"]
    assert [d.area_id for d in overflow] == ["R-TAMA-CHOFU"]
    assert overflow[0].time.astimezone(JST).date() == dt.date(2019, 10, 12)
    assert overflow[0].time.astimezone(JST).hour >= 18
    assert [d.area_id for d in storm.damage if d.kind == "slope_failure"] == ["Z-OKUTAMA-NIPPARA"]


def test_suginami_2005_overflows_the_zenpukuji_and_the_myoshoji(storms):
    storm = storms["suginami-2005"]
    assert rolling_sum(rain(storm, "RG-SHIMOIGUSA"), 60).max() > 100
    assert {d.area_id for d in storm.damage} == {"R-ZENPUKUJI-UPPER", "R-MYOSHOJI-UPPER"}
    assert all(peak_level(storm, g) == AlertLevel.NONE for g in storm.simulation.level_ids if "MEGURO" in g)
    assert peak_level(storm, "WL-KANDA-EIFUKU") >= AlertLevel.WARNING


def test_damage_is_where_the_water_is(storms):
    for name in RECONSTRUCTIONS:
        storm = storms[name]
        sim = storm.simulation
        for damage in storm.damage:
            if damage.kind == "overflow":
                gauge = storm.catalogue.level_gauge(storm.catalogue.reach(damage.area_id).level_station_id)
                j = sim.level_ids.index(gauge.station_id)
                k = int(np.flatnonzero(sim.times == np.datetime64(damage.time.replace(tzinfo=None)))[0])
                assert sim.level_true_m[j, k] >= gauge.bank_full_m > sim.level_true_m[j, k - 1]
