"""Rolling rainfall and level status, as pure folds (no Beam)."""

from __future__ import annotations

import datetime as dt

from pipelines.gauges import LevelFold, RainfallFold
from pipelines.ordered import run_fold
from suibou.catalogue import StationCatalogue
from suibou.contracts import AlertLevel, LevelReading, RainReading

T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.UTC)


def rain(minute: float, mm: float, event_id: str | None = None) -> RainReading:
    return RainReading(event_id=event_id or f"r{minute}", station_id="RG-A",
                       event_time=T0 + dt.timedelta(minutes=minute), rain_mm=mm, interval_s=60)


def test_rainfall_totals_over_10_and_60_minutes():
    readings = [rain(m, 1.0) for m in range(1, 91)]
    _, totals = run_fold(RainfallFold(), "RG-A", readings)
    by_minute = {int((t.event_time - T0).total_seconds() // 60): t for t in totals}
    assert (by_minute[5].rain_10min_mm, by_minute[5].rain_60min_mm) == (5.0, 5.0)
    assert (by_minute[90].rain_10min_mm, by_minute[90].rain_60min_mm) == (10.0, 60.0)


def test_out_of_order_and_duplicate_readings_count_once_in_time_order():
    _, totals = run_fold(RainfallFold(), "RG-A", [rain(3, 2.0), rain(1, 1.0), rain(3, 2.0), rain(2, 4.0)])
    assert [t.rain_10min_mm for t in totals] == [1.0, 5.0, 7.0]


def test_level_status_against_thresholds_and_rate_of_rise():
    catalogue = StationCatalogue.load("kanda-basin")
    gauge = catalogue.level_gauges[0]
    readings = [
        LevelReading(event_id=f"l{m}", station_id=gauge.station_id, event_time=T0 + dt.timedelta(minutes=m),
                     level_m=gauge.standby_m + 0.01 * m)
        for m in range(0, 61, 10)
    ] + [LevelReading(event_id="top", station_id=gauge.station_id, event_time=T0 + dt.timedelta(minutes=70),
                      level_m=gauge.danger_m)]
    _, statuses = run_fold(LevelFold(catalogue), gauge.station_id, readings)
    assert statuses[0].rise_m_per_h == 0.0
    assert abs(statuses[6].rise_m_per_h - 0.6) < 1e-9  # 0.3 m over the last 30 min
    assert statuses[6].level_30min_ago_m == gauge.standby_m + 0.3
    assert statuses[-1].observed_level == AlertLevel.DANGER
    assert statuses[-1].reach_id == gauge.reach_id


def test_long_totals_and_the_soil_water_index_follow_the_tank_model():
    from suibou.hydrology import soil_water_index_series

    # Five hours of rain at 1 mm/min, then an hour without.
    readings = [rain(m, 1.0 if m <= 300 else 0.0, event_id=f"r{m}") for m in range(1, 361)]
    _, totals = run_fold(RainfallFold(), "RG-A", readings)
    last = totals[-1]  # at 6:00, after a dry hour
    assert (last.rain_60min_mm, last.rain_3h_mm, last.rain_6h_mm, last.rain_24h_mm) == (0.0, 120.0, 300.0, 300.0)
    # The index has stepped once per closed 10-minute bin: 35 bins, 30 of 10 mm then 5 dry.
    expected = soil_water_index_series([10.0] * 30 + [0.0] * 5, dt_h=1 / 6)[-1]
    assert abs(last.swi_mm - expected) < 1e-3
    assert last.swi_mm > 100  # the ground is still wet an hour after the rain


def test_a_seeded_gauge_continues_its_soil_water_index():
    from pipelines.gauges import bin_of

    readings = [rain(m, 2.0, event_id=f"r{m}") for m in range(1, 121)]
    _whole, totals = run_fold(RainfallFold(), "RG-A", readings)
    # Stop after 60 minutes; resume from the index published at minute 60.
    at_60 = totals[59]
    seeded = RainfallFold(seeds={"RG-A": (at_60.tanks, bin_of(at_60.event_time.timestamp()))})
    _, resumed = run_fold(seeded, "RG-A", readings[60:])
    # The seed's own bin (minutes 51-60) is the rain a resumed index can miss: under 10 minutes of rain.
    assert 0 < totals[-1].swi_mm - resumed[-1].swi_mm < 20.0
    assert abs(totals[-1].swi_mm - resumed[-1].swi_mm) < 0.1 * totals[-1].swi_mm
