"""The station view: pure folds of statuses, faults, stills and scores, per stream, bounded."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from alert_api.console.view import (
    LIVE,
    LevelPoint,
    Limits,
    StationView,
    StatusOutcome,
    ViewState,
    active_fault,
    add_point,
    fold,
    ingest_status,
)
from suibou.contracts import (
    AlertLevel,
    AreaKind,
    CameraFrame,
    ControlKind,
    FaultKind,
    Hazard,
    LevelStatus,
    RainStatus,
    RiskScore,
    SensorFault,
    StreamControl,
)

T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.UTC)


def minutes(m: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=m)


def level(m: float, level_m: float, station: str = "WL-A", drill: str | None = None) -> LevelStatus:
    return LevelStatus(event_id=f"ls:{drill}:{station}:{m}", event_time=minutes(m), exercise=drill is not None,
                       drill_id=drill, station_id=station, reach_id="R-A", level_m=level_m,
                       observed_level=AlertLevel.CAUTION if level_m >= 2 else AlertLevel.NONE, rise_m_per_h=0.5)


def rain(m: float, r60: float, station: str = "RG-A") -> RainStatus:
    return RainStatus(event_id=f"rs:{station}:{m}", event_time=minutes(m), station_id=station, rain_10min_mm=r60 / 6,
                      rain_60min_mm=r60, rain_3h_mm=r60, rain_24h_mm=r60, swi_mm=80.0, tanks=(50.0, 20.0, 10.0))


def fault(m: float, kind: FaultKind, station: str = "WL-A") -> SensorFault:
    return SensorFault(event_id=f"f:{station}:{kind.value}:{m}", event_time=minutes(m), station_id=station, kind=kind,
                       since=minutes(m - 10), detail="test")


def score(m: float, p: float, area: str = "R-A") -> RiskScore:
    return RiskScore(event_id=f"risk:{area}:{m}", event_time=minutes(m), area_id=area, area_kind=AreaKind.REACH,
                     hazard=Hazard.FLOOD, probability=p, observed_level=AlertLevel.NONE, model="flood/2",
                     target="danger within 60 min", features={"level_m": 1.0})


def frame(m: float, camera: str = "CAM-A") -> CameraFrame:
    return CameraFrame(event_id=f"{camera}:{m}", event_time=minutes(m), camera_id=camera,
                       image_uri=f"file:///frames/{m}.jpg", content_type="image/jpeg", width=160, height=120)


def fold_all(events: list, limits: Limits = Limits()) -> ViewState:
    state = ViewState()
    for event in events:
        state = fold(state, event, limits)
    return state


def test_history_keeps_one_point_per_minute_within_the_window_and_the_cap() -> None:
    limits = Limits(history_s=3600, max_points=50)
    history: tuple = ()
    for second in range(0, 3 * 3600, 30):  # two events per minute for three hours
        history = add_point(history, LevelPoint(T0 + dt.timedelta(seconds=second), second / 1000, 1), limits)
    assert len(history) == 50  # the cap is tighter than the hour
    assert [p.time.second for p in history] == [30] * 50  # the later event of each minute
    assert history[-1].time == T0 + dt.timedelta(seconds=3 * 3600 - 30)
    # An hour's window with room to spare keeps exactly an hour.
    wide = Limits(history_s=3600, max_points=1000)
    history = ()
    for minute in range(180):
        history = add_point(history, LevelPoint(minutes(minute), 1.0, 1), wide)
    assert history[0].time == minutes(179 - 60) and len(history) == 61


def test_a_late_point_is_placed_in_time_order_and_an_older_one_of_its_minute_does_not_replace() -> None:
    history = add_point(add_point((), LevelPoint(minutes(0), 1.0, 1)), LevelPoint(minutes(2), 1.2, 1))
    history = add_point(history, LevelPoint(minutes(1.5), 1.1, 1))
    assert [p.level_m for p in history] == [1.0, 1.1, 1.2]
    assert add_point(history, LevelPoint(minutes(1.25), 9.0, 1)) is history


def test_folding_is_idempotent_and_the_latest_status_is_the_newest_by_event_time() -> None:
    events = [level(0, 1.0), level(1, 1.5), level(2, 2.1), score(2, 0.4), frame(2)]
    once = fold_all(events)
    twice = fold_all(events + events)
    assert once.streams == twice.streams
    late = fold(once, level(1.5, 1.7))  # arrives late: joins the history, does not become the latest
    station = late.streams[LIVE].stations["WL-A"]
    assert station.latest.level_m == 2.1
    assert [p.level_m for p in station.history] == [1.0, 1.7, 2.1]  # minute 1 now holds the later reading


def test_live_and_each_drill_are_separate_streams_and_the_oldest_is_dropped_first() -> None:
    limits = Limits(max_streams=2)
    state = fold_all([level(0, 1.0), level(0, 3.0, drill="drill-a"), level(1, 1.1)], limits)
    assert set(state.streams) == {LIVE, "drill-a"}
    assert state.streams["drill-a"].exercise and not state.streams[LIVE].exercise
    assert state.streams[LIVE].stations["WL-A"].latest.level_m == 1.1
    assert state.streams["drill-a"].stations["WL-A"].latest.level_m == 3.0
    state = fold(state, level(0, 2.0, drill="drill-b"), limits)
    assert set(state.streams) == {LIVE, "drill-b"}  # drill-a was touched least recently


def test_a_silent_gauge_stays_faulted_until_it_recovers() -> None:
    state = fold_all([level(0, 1.0), fault(10, FaultKind.SILENT), level(20, 1.0)])
    station = state.streams[LIVE].stations["WL-A"]
    assert active_fault(station, state.streams[LIVE].clock).kind is FaultKind.SILENT
    state = fold(state, fault(21, FaultKind.RECOVERED))
    assert state.streams[LIVE].stations["WL-A"].fault is None


def test_a_recovery_stamped_before_the_silence_ends_it_but_one_from_an_earlier_silence_does_not() -> None:
    # A replay faster than the watchdog: the silence is declared at 11:41 (stream began 11:30), then a reading
    # of 11:40 arrives and the gauge is reported recovered at 11:40.
    silent = dataclasses.replace(fault(41, FaultKind.SILENT), since=minutes(30))
    state = fold_all([silent, fault(40, FaultKind.RECOVERED)])
    assert state.streams[LIVE].stations["WL-A"].fault is None
    stale = fold_all([silent, fault(29, FaultKind.RECOVERED)])
    assert stale.streams[LIVE].stations["WL-A"].fault.kind is FaultKind.SILENT


def test_a_frozen_gauge_is_faulted_until_its_level_moves() -> None:
    state = fold_all([level(0, 1.0), level(60, 1.0), fault(60, FaultKind.FROZEN), level(61, 1.0)])
    assert state.streams[LIVE].stations["WL-A"].fault.kind is FaultKind.FROZEN
    state = fold(state, level(62, 1.05))
    assert state.streams[LIVE].stations["WL-A"].fault is None


def test_a_spike_shows_for_ten_minutes_of_stream_time() -> None:
    state = fold_all([level(0, 1.0), fault(1, FaultKind.SPIKE)])
    stream = state.streams[LIVE]
    assert active_fault(stream.stations["WL-A"], stream.clock).kind is FaultKind.SPIKE
    state = fold(state, level(12, 1.0))
    stream = state.streams[LIVE]
    assert active_fault(stream.stations["WL-A"], stream.clock) is None


def test_cameras_keep_their_latest_stills_and_areas_their_scores() -> None:
    limits = Limits(max_frames=3)
    state = fold_all([frame(m) for m in (5, 1, 4, 2, 3)] + [score(1, 0.1), score(3, 0.7), score(2, 0.2)], limits)
    stream = state.streams[LIVE]
    assert [f.event_id for f in stream.cameras["CAM-A"]] == ["CAM-A:3", "CAM-A:4", "CAM-A:5"]
    area = stream.areas["R-A|flood"]
    assert area.latest.probability == 0.7
    assert [p.probability for p in area.history] == [0.1, 0.2, 0.7]


def test_a_stream_refuses_new_keys_beyond_its_bound() -> None:
    limits = Limits(max_keys=2)
    state = fold_all([rain(0, 1, "RG-A"), rain(0, 1, "RG-B"), rain(0, 1, "RG-C"), rain(1, 2, "RG-A")], limits)
    assert sorted(state.streams[LIVE].stations) == ["RG-A", "RG-B"]
    assert state.streams[LIVE].stations["RG-A"].latest.rain_60min_mm == 2


def test_ingest_folds_valid_records_ignores_controls_and_counts_invalid_ones() -> None:
    view = StationView()
    assert ingest_status(view, level(0, 1.0).to_json()) is StatusOutcome.APPLIED
    assert ingest_status(view, level(0, 1.0).to_json()) is StatusOutcome.UNCHANGED
    tick = StreamControl(event_id="tick-1", event_time=T0, control=ControlKind.TICK)
    assert ingest_status(view, tick.to_json()) is StatusOutcome.UNCHANGED
    assert ingest_status(view, b"{not json") is StatusOutcome.INVALID
    assert ingest_status(view, None) is StatusOutcome.INVALID
    assert view.state.sequence == 1


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        Limits(max_points=0)
    with pytest.raises(ValueError):
        dataclasses.replace(Limits(), history_s=0)


def test_the_stream_clock_follows_the_pipelines_outputs_not_the_cameras() -> None:
    state = fold_all([level(5, 1.0), frame(30)])
    assert state.streams[LIVE].clock == minutes(5)
    assert fold(state, score(7, 0.1)).streams[LIVE].clock == minutes(7)
