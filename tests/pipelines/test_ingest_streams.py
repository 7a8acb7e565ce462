"""Which stream a job folds: a drill's job its own drill's events; the live job live events and exercises in
real time, but not the replay of a past storm, which its drill's own job folds."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.ingest import REPLAY_AGE_S, parse_record
from pipelines.kafka_io import KafkaRecord
from suibou.catalogue import StationCatalogue
from suibou.contracts import ControlKind, LevelReading, StreamControl

CATALOGUE = StationCatalogue.load("kanda-basin")
GAUGE = CATALOGUE.level_gauges[0].station_id
NOW = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
STORM = dt.datetime(2005, 9, 4, 12, tzinfo=dt.UTC)


def record(drill_id: str | None, at: dt.datetime, control: bool = False) -> KafkaRecord:
    event = (StreamControl(event_id=f"tick:{drill_id}", event_time=at, control=ControlKind.TICK,
                           source=drill_id or "live", exercise=drill_id is not None, drill_id=drill_id)
             if control else
             LevelReading(event_id=f"{GAUGE}:{drill_id}", station_id=GAUGE, exercise=drill_id is not None,
                          drill_id=drill_id, event_time=at, level_m=1.0))
    return KafkaRecord(topic="obs.level", partition=0, offset=0, key=None, value=event.to_json(),
                       timestamp_ms=int(at.timestamp() * 1000))


@pytest.mark.parametrize("control", [False, True], ids=["reading", "tick"])
def test_a_drills_job_folds_its_own_drill_only(control: bool) -> None:
    def kept(stream: str | None) -> bool:
        return parse_record("level", record(stream, STORM, control), CATALOGUE, only_drill="d1") is not None

    assert kept("d1")
    assert not kept(None) and not kept("d2")


def test_the_live_job_leaves_a_replayed_storm_to_its_drill_but_folds_exercises_in_real_time() -> None:
    replays_before = NOW - dt.timedelta(seconds=REPLAY_AGE_S)

    def kept(stream: str | None, at: dt.datetime) -> bool:
        return parse_record("level", record(stream, at), CATALOGUE, replays_before=replays_before) is not None

    assert kept(None, NOW - dt.timedelta(minutes=1))
    assert kept("exercise-1", NOW - dt.timedelta(minutes=1))  # an exercise gateway, wall-clock times
    assert kept("exercise-1", replays_before + dt.timedelta(minutes=1))  # re-read in a resumed job's warm-up
    assert not kept("drill-suginami-2005", STORM)  # suibou drill's replay: its own job folds it
