"""The fusion stages wired together, on Prism, fed by a TestStream (no broker).

Tiny, hand-made data: a few minutes of rain and water level on one reach, plus a
malformed record, a duplicate and a reading from an unknown gauge.
"""

from __future__ import annotations

import datetime as dt

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream as EventStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from pipelines.job import JobConfig, build_stages
from pipelines.kafka_io import KafkaRecord
from suibou.catalogue import StationCatalogue
from suibou.contracts import ControlKind, LevelReading, RainReading, StreamControl
from suibou.infra.prism import prism_pipeline_options
from suibou.settings import Settings, Topics

pytestmark = pytest.mark.e2e  # runs on the Prism runner

T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.UTC)
TOPICS = Topics("t")
CATALOGUE = StationCatalogue.load("kanda-basin")


def record(topic: str, offset: int, value: bytes, minute: int) -> beam.window.TimestampedValue:
    at = T0 + dt.timedelta(minutes=minute)
    return beam.window.TimestampedValue(
        KafkaRecord(topic, 0, offset, None, value, int(at.timestamp() * 1000)), Timestamp.from_utc_datetime(at)
    )


def level(minute: int, metres: float, station: str = "WL-ZENPUKUJI-NARITA") -> bytes:
    return LevelReading(event_id=f"{station}:{minute}", station_id=station, exercise=True, drill_id="d1",
                        event_time=T0 + dt.timedelta(minutes=minute), level_m=metres).to_json()


def tick(minute: int) -> bytes:
    return StreamControl(event_id=f"tick:{minute}", event_time=T0 + dt.timedelta(minutes=minute),
                         control=ControlKind.TICK, source="d1", exercise=True, drill_id="d1").to_json()


def rain(minute: int, mm: float) -> bytes:
    return RainReading(event_id=f"RG-ASAGAYA:{minute}", station_id="RG-ASAGAYA", exercise=True, drill_id="d1",
                       event_time=T0 + dt.timedelta(minutes=minute), rain_mm=mm, interval_s=60).to_json()


def test_stages_turn_readings_into_alerts_and_bad_records_into_dead_letters():
    levels = [1.6, 1.9, 2.1, 2.6, 3.05, 3.2]  # caution at minute 2, evacuation at 3, danger at 4
    stream = EventStream().advance_watermark_to(Timestamp.from_utc_datetime(T0))
    for minute, metres in enumerate(levels):
        stream = stream.add_elements([
            record(TOPICS.rain, minute, rain(minute, 3.0), minute),
            record(TOPICS.level, minute, level(minute, metres), minute),
        ]).advance_watermark_to(Timestamp.from_utc_datetime(T0 + dt.timedelta(minutes=minute, seconds=30)))
    stream = stream.add_elements([
        record(TOPICS.level, 100, level(5, 3.2), 5),  # a repeat of minute 5: dropped
        record(TOPICS.level, 101, b"{not json", 5),
        record(TOPICS.level, 102, level(5, 2.0, station="WL-NOWHERE"), 5),
        record(TOPICS.rain, 103, level(5, 2.0), 5),  # a level reading on the rain topic
        record(TOPICS.level, 104, level(6, 9.0), 6),  # 5.8 m in a minute: a spike, not used
    ])
    # The stream's clock runs on for 20 minutes after the gauges fall silent.
    for minute in range(6, 27):
        stream = stream.add_elements([record(TOPICS.level, 200 + minute, tick(minute), minute)])
        stream = stream.advance_watermark_to(Timestamp.from_utc_datetime(T0 + dt.timedelta(minutes=minute)))
    stream = stream.advance_watermark_to_infinity()

    config = JobConfig(catalogue=CATALOGUE, topics=TOPICS, bootstrap_servers="unused:9092", end_source="d1")
    options = PipelineOptions([*prism_pipeline_options(Settings()), "--streaming"])
    with beam.Pipeline(options=options) as pipeline:
        outputs = build_stages(pipeline | stream, config)
        all_scores = outputs.scores | "AllScores" >> beam.Flatten()
        alerts = outputs.alerts | beam.Map(
            lambda a: (a.area_id, a.msg_type.value, int(a.level), a.event_time.minute, a.cap_status))
        scores = all_scores | beam.Map(lambda s: (s.event_time.minute, s.model, int(s.observed_level)))
        reasons = (outputs.dead_letters | "AllDeadLetters" >> beam.Flatten()
                   | beam.Map(lambda d: (d.source_offset, d.reason.split(":")[0])))
        faults = (outputs.faults | "AllFaults" >> beam.Flatten()
                  | beam.Map(lambda f: (f.station_id, f.kind.value, f.event_time.minute)))
        flagged = (all_scores | beam.Filter(lambda s: s.faults)
                   | beam.Map(lambda s: (s.event_time.minute, int(s.observed_level),
                                         tuple(f.split()[0] + " " + f.split()[1] for f in s.faults))))

        assert_that(alerts, equal_to([
            ("R-ZENPUKUJI-UPPER", "Alert", 2, 2, "Exercise"),
            ("R-ZENPUKUJI-UPPER", "Update", 3, 3, "Exercise"),
            ("R-ZENPUKUJI-UPPER", "Update", 4, 4, "Exercise"),
        ]), label="alerts")
        assert_that(scores, equal_to([*((m, "flood/4", o) for m, o in enumerate([1, 1, 2, 3, 4, 4])),
                                      (16, "flood/4", 4)]),
                    label="one score per level reading, and one when the gauge fell silent")
        assert_that(reasons, equal_to([
            (101, "not valid JSON"),
            (102, "unknown water-level gauge 'WL-NOWHERE' (not in catalogue 'kanda-basin')"),
            (103, "topic 't.obs.rain' carries rain_reading/1, got level_reading/1"),
        ]), label="dead letters")
        silent_from_start = [(g, "silent", 16) for g in (
            "RG-ZENPUKUJI", "RG-SHIMOIGUSA", "RG-TAKAIDO", "WL-MYOSHOJI-SAGINOMIYA", "WL-KANDA-EIFUKU")]
        assert_that(faults, equal_to([
            ("WL-ZENPUKUJI-NARITA", "spike", 6),
            ("WL-ZENPUKUJI-NARITA", "silent", 16),  # last heard at minute 6 (the spike)
            ("RG-ASAGAYA", "silent", 15),
            *silent_from_start,
        ]), label="faults")
        # The reach is not let go quiet: its last level is repeated, flagged, and the alert holds.
        silent = ("RG-ASAGAYA silent", "RG-ZENPUKUJI silent", "WL-ZENPUKUJI-NARITA silent")
        assert_that(flagged, equal_to([(16, 4, silent)]),
                    label="flagged scores")
