"""Which stream a job folds: a drill's job its own drill's events, the live job live events only."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.ingest import parse_record
from pipelines.kafka_io import KafkaRecord
from suibou.catalogue import StationCatalogue
from suibou.contracts import ControlKind, LevelReading, StreamControl

CATALOGUE = StationCatalogue.load("kanda-basin")
GAUGE = CATALOGUE.level_gauges[0].station_id
AT = dt.datetime(2005, 9, 4, 12, tzinfo=dt.UTC)


def record(drill_id: str | None, control: bool = False) -> KafkaRecord:
    event = (StreamControl(event_id=f"tick:{drill_id}", event_time=AT, control=ControlKind.TICK,
                           source=drill_id or "live", exercise=drill_id is not None, drill_id=drill_id)
             if control else
             LevelReading(event_id=f"{GAUGE}:{drill_id}", station_id=GAUGE, exercise=drill_id is not None,
                          drill_id=drill_id, event_time=AT, level_m=1.0))
    return KafkaRecord(topic="obs.level", partition=0, offset=0, key=None, value=event.to_json(),
                       timestamp_ms=int(AT.timestamp() * 1000))


@pytest.mark.parametrize("control", [False, True], ids=["reading", "tick"])
def test_each_job_folds_its_own_stream_and_skips_the_others(control: bool) -> None:
    def kept(stream: str | None, job: str | None) -> bool:
        return parse_record("level", record(stream, control), CATALOGUE, only_drill=job) is not None

    assert kept("d1", "d1") and kept(None, None)
    # A drill's traffic shares the live topics; the live job leaves it to the drill's own job.
    assert not kept("d1", None)
    assert not kept(None, "d1") and not kept("d2", "d1")
