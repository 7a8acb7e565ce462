"""Rolling rainfall and level status, as pure folds (no Beam)."""

from __future__ import annotations

import datetime as dt

from pipelines.gauges import LevelFold, RainfallFold
from pipelines.ordered import run_fold
from replay_data.stations import StationCatalogue
from suibou.contracts import AlertLevel, LevelReading, RainReading

T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.timezone.utc)


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
