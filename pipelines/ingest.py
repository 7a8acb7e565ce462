"""Parse and validate raw Kafka records into typed observations.

Every record either becomes a typed event on its feed's output or a
:class:`~suibou.contracts.DeadLetter` naming the reason and the record's topic,
partition and offset. Nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from pipelines.kafka_io import KafkaRecord
from pipelines.ordered import DEAD_LETTER
from suibou.catalogue import StationCatalogue
from suibou.contracts import (
    CameraFrame,
    ContractError,
    DeadLetter,
    DroneObservation,
    Event,
    GridNotice,
    LevelReading,
    RainReading,
    StreamControl,
    parse_event,
)

#: Output of the stream's clock ticks.
CLOCK = "clock"

#: Live: how far ahead of the wall clock an observation may be stamped. A gateway
#: whose clock runs fast would otherwise move its gauge's folded time into the
#: future, and every true reading after it would be too late to fold.
MAX_AHEAD_S = 300.0
#: Live: exercise events this far behind the clock are a replayed storm, folded by its drill's own job.
#: It is a resumed live job's warm-up span: a live exercise's events are younger whenever the job reads them.
REPLAY_AGE_S = 25 * 3600.0

#: Feed name -> the one contract its topic carries.
FEED_TYPES: Mapping[str, type[Event]] = {
    "rain": RainReading,
    "level": LevelReading,
    "camera": CameraFrame,
    "drone": DroneObservation,
    "grid": GridNotice,
}


def parse_record(
    feed: str, record: KafkaRecord, catalogue: StationCatalogue, only_drill: str | None = None,
    known: Mapping[type[Event], frozenset[str]] | None = None, not_after: dt.datetime | None = None,
    replays_before: dt.datetime | None = None,
) -> Event | DeadLetter | None:
    """Validates one record of ``feed``.

    Args:
        only_drill: For a drill's own job: events of other streams (live
            traffic, other drills) are skipped; they are valid, just not ours.
        not_after: Live: observations stamped later than this are dead letters.
        replays_before: Live: exercise events stamped before this are a replay
            of a past storm (``suibou drill``), which the drill's own job folds;
            the live job skips them. Exercises in real time (exercise
            gateways, wall-clock times) are the live job's to fold.

    Returns:
        The typed event (stream-control ticks included: they are the stream's
        clock); a dead letter saying why it cannot be used; or None for events
        of other streams.
    """

    def dead(reason: str) -> DeadLetter:
        return DeadLetter(
            reason=reason,
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            payload=record.value[:4096].decode("utf-8", errors="replace"),
        )

    try:
        event = parse_event(record.value)
    except ContractError as error:
        return dead(str(error))
    if only_drill is not None and event.drill_id != only_drill:
        return None
    if replays_before is not None and event.drill_id is not None and event.event_time < replays_before:
        return None
    if isinstance(event, StreamControl):
        return event
    expected = FEED_TYPES[feed]
    if not isinstance(event, expected):
        return dead(f"topic {record.topic!r} carries {expected.SCHEMA}, got {event.SCHEMA}")
    if not_after is not None and event.event_time > not_after:
        return dead(f"event_time {event.event_time.isoformat()} is in the future (more than {MAX_AHEAD_S:g}s "
                    "ahead of the clock of the pipeline)")
    known = known or known_stations(catalogue)
    station = getattr(event, "station_id", None)
    if isinstance(event, RainReading) and station not in known[RainReading]:
        return dead(f"unknown rain gauge {station!r} (not in catalogue {catalogue.name!r})")
    if isinstance(event, LevelReading) and station not in known[LevelReading]:
        return dead(f"unknown water-level gauge {station!r} (not in catalogue {catalogue.name!r})")
    return event


def known_stations(catalogue: StationCatalogue) -> dict[type[Event], frozenset[str]]:
    """The gauge ids each reading type may carry."""
    return {
        RainReading: frozenset(g.station_id for g in catalogue.rain_gauges),
        LevelReading: frozenset(g.station_id for g in catalogue.level_gauges),
    }


class _ParseFn(beam.DoFn):
    def __init__(self, topic_feeds: Mapping[str, str], catalogue: StationCatalogue, only_drill: str | None):
        self._topic_feeds = dict(topic_feeds)
        self._catalogue = catalogue
        self._only_drill = only_drill
        self._known = known_stations(catalogue)
        self._parsed = Metrics.counter("ingest", "events")
        self._dead = Metrics.counter("ingest", "dead_letters")

    def process(self, record: KafkaRecord) -> Iterator[object]:
        feed = self._topic_feeds.get(record.topic)
        if feed is None:
            self._dead.inc()
            yield pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                reason=f"record from unexpected topic {record.topic!r}",
                source_topic=record.topic, source_partition=record.partition,
                source_offset=record.offset, payload=record.value[:4096].decode("utf-8", "replace"),
            ))
            return
        # A drill replays the past; live, an observation cannot come from the future.
        now = dt.datetime.now(dt.UTC)
        not_after = None if self._only_drill else now + dt.timedelta(seconds=MAX_AHEAD_S)
        replays_before = None if self._only_drill else now - dt.timedelta(seconds=REPLAY_AGE_S)
        result = parse_record(feed, record, self._catalogue, self._only_drill, self._known, not_after, replays_before)
        if result is None:
            return
        if isinstance(result, DeadLetter):
            self._dead.inc()
            yield pvalue.TaggedOutput(DEAD_LETTER, result)
        elif isinstance(result, StreamControl):
            yield pvalue.TaggedOutput(CLOCK, result)
        else:
            self._parsed.inc()
            yield pvalue.TaggedOutput(feed, result)


@dataclasses.dataclass
class ParseObservations(beam.PTransform):
    """Raw records -> one typed PCollection per feed, plus ``dead_letter``.

    Attributes:
        topic_feeds: Topic name -> feed name (``rain``, ``level``, ...).
        catalogue: Known stations; readings from unknown stations are dead letters.
        only_drill: Keep only this drill's events (a drill's own job).
    """

    topic_feeds: Mapping[str, str]
    catalogue: StationCatalogue
    only_drill: str | None = None

    def __post_init__(self) -> None:
        super().__init__()
        unknown = set(self.topic_feeds.values()) - set(FEED_TYPES)
        if unknown:
            raise ValueError(f"unknown feed(s): {', '.join(sorted(unknown))}")

    def expand(self, records: beam.PCollection[KafkaRecord]) -> pvalue.DoOutputsTuple:
        parse = _ParseFn(self.topic_feeds, self.catalogue, self.only_drill)
        return records | "Parse" >> beam.ParDo(parse).with_outputs(
            DEAD_LETTER, CLOCK, *FEED_TYPES
        )
