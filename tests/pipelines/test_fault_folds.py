"""Sensor faults, as pure folds: silence in stream time, impossible jumps, frozen gauges."""

from __future__ import annotations

import datetime as dt

from pipelines.faults import GaugeWatchdog, Heartbeat, watchdog_key
from pipelines.gauges import LevelAssessment, LevelFold, RainfallTotals
from pipelines.ordered import run_fold
from pipelines.risk import ReachFusion
from suibou.catalogue import StationCatalogue
from suibou.contracts import ControlKind, FaultKind, LevelReading, SensorFault, StreamControl

T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.UTC)
CATALOGUE = StationCatalogue.load("kanda-basin")
GAUGE = CATALOGUE.level_gauge("WL-ZENPUKUJI-NARITA")


def at(minute: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


def tick(minute: int) -> StreamControl:
    return StreamControl(event_id=f"t{minute}", event_time=at(minute), control=ControlKind.TICK, source="d")


def beat(station: str, minute: int) -> Heartbeat:
    return Heartbeat(station, at(minute), False, None)


def test_a_gauge_is_silent_after_ten_minutes_of_stream_time_and_recovers():
    fold = GaugeWatchdog(("RG-A", "RG-B"))
    items = [beat("RG-A", m) for m in range(30)] + [beat("RG-B", m) for m in (0, 1, 2, 25)]
    items += [tick(m) for m in range(1, 30)]
    _, faults = run_fold(fold, "live|watchdog", items)
    assert [(f.station_id, f.kind, f.event_time, f.since) for f in faults] == [
        ("RG-B", FaultKind.SILENT, at(12), at(2)),
        ("RG-B", FaultKind.RECOVERED, at(25), at(2)),
    ]


def test_a_recovery_folded_late_never_comes_before_the_silence_it_ends():
    fold = GaugeWatchdog(("RG-B",))
    state, silent = run_fold(fold, "live|watchdog|RG-B", [beat("RG-B", 0), *(tick(m) for m in range(1, 12))])
    assert [(f.kind, f.event_time) for f in silent] == [(FaultKind.SILENT, at(10))]
    # A reading stamped before the declaration arrives after it (within the lateness bound).
    _, recovered = fold.step("live|watchdog|RG-B", state, beat("RG-B", 9))
    assert [(f.kind, f.event_time, f.since) for f in recovered] == [(FaultKind.RECOVERED, at(10), at(0))]


def test_each_watchdog_bucket_watches_its_own_gauges_and_together_they_watch_all():
    stations = tuple(g.station_id for g in (*CATALOGUE.rain_gauges, *CATALOGUE.level_gauges))
    fold = GaugeWatchdog(stations)
    declared = []
    for bucket in range(fold.buckets):
        _, faults = run_fold(fold, watchdog_key(None, bucket), [tick(m) for m in range(11)])
        assert {f.station_id for f in faults} == set(fold.watched(watchdog_key(None, bucket)))
        declared += [f.station_id for f in faults]
    assert sorted(declared) == sorted(stations)  # each gauge once, by its own bucket


def test_no_clock_no_silence():
    # At the end of a drill no tick follows, so nothing is declared silent.
    _, faults = run_fold(GaugeWatchdog(("RG-A",)), "k", [beat("RG-A", 0)])
    assert faults == []


def level(minute: int, metres: float) -> LevelReading:
    return LevelReading(event_id=f"l{minute}", station_id=GAUGE.station_id, event_time=at(minute), level_m=metres)


def test_a_spike_is_reported_and_not_used_until_confirmed():
    readings = [level(0, 1.0), level(1, 1.1), level(2, 4.0), level(3, 1.2),  # a single spike
                level(4, 3.0), level(5, 3.0), level(6, 3.0)]  # a jump that stays is real
    _, outputs = run_fold(LevelFold(CATALOGUE), GAUGE.station_id, readings)
    kinds = [(o.event_time.minute, "fault" if isinstance(o, SensorFault) else "status") for o in outputs]
    assert kinds == [(0, "status"), (1, "status"), (2, "fault"), (3, "status"),
                     (4, "fault"), (5, "fault"), (6, "status")]


def status(minute: int, metres: float) -> LevelAssessment:
    return LevelAssessment(GAUGE.station_id, GAUGE.reach_id, at(minute), metres, 1, GAUGE.danger_m, metres, 0.0,
                       False, None)


def rain(minute: int, mm_60: float) -> RainfallTotals:
    return RainfallTotals("RG-ASAGAYA", at(minute), mm_60 / 6, mm_60, False, None)


def test_a_level_that_does_not_move_in_heavy_rain_is_frozen():
    from models import FLOOD2_FEATURES as FLOOD_FEATURES

    fold = ReachFusion(tuple(FLOOD_FEATURES), {GAUGE.reach_id: GAUGE.station_id})
    items = []
    for minute in range(75):
        items += [rain(minute, 40.0), status(minute, 1.20)]
    _, outputs = run_fold(fold, f"live|{GAUGE.reach_id}", items)
    faults = [o for o in outputs if isinstance(o, SensorFault)]
    assert [(f.kind, f.event_time, f.since) for f in faults] == [(FaultKind.FROZEN, at(60), at(0))]
    rows = [o for o in outputs if not isinstance(o, SensorFault)]
    assert not rows[59].faults and "frozen" in rows[60].faults[0]


def test_a_still_river_in_dry_weather_is_not_frozen():
    from models import FLOOD2_FEATURES as FLOOD_FEATURES

    fold = ReachFusion(tuple(FLOOD_FEATURES), {GAUGE.reach_id: GAUGE.station_id})
    items = [x for m in range(180) for x in (rain(m, 0.0), status(m, 0.40))]
    _, outputs = run_fold(fold, f"live|{GAUGE.reach_id}", items)
    assert not [o for o in outputs if isinstance(o, SensorFault)]
