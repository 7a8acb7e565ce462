"""The drill publisher: replays a storm onto the observation topics.

A drill is an ordinary producer whose messages carry ``exercise=True`` and a
``drill_id``. Publishing is split in two:

* :func:`plan_messages` is a pure generator of :class:`PlannedMessage` — what
  goes to which topic and partition, with which key, value and timestamp, in
  which order. It needs no broker and is what the tests check.
* :func:`publish_storm` opens a kafka-python producer, asks it for each
  observation topic's partitions, paces the plan against the wall clock if
  asked, sends it, flushes and reports counts.

Order and watermarks. Every message of the storm goes out in event-time order
to its feed's topic: rain and level readings keyed by station id, camera frames
by camera id, grid notices by grid id, drone observations by flight id (so the
default partitioner keeps one source on one partition). A drill may start
later than the storm (``start_at``): earlier messages are not sent. Every ``tick_every_s`` of event time,
after every reading stamped at or before the tick time, a ``stream_control/1`` TICK goes to *every*
partition of *every* observation topic (camera, drone and grid too, since a
quiet partition would otherwise hold the pipeline's event-time clock back).
A tick at time t therefore promises that nothing stamped at or before t
follows on that partition. Ticks run from ``start + tick_every_s`` up to, but
not including, the storm end; at the end an END control at the storm's end
time closes every partition.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from suibou.contracts import (
    CameraFrame,
    ControlKind,
    DroneObservation,
    Event,
    GridNotice,
    LevelReading,
    RainReading,
    StreamControl,
)
from suibou.settings import Settings, Topics

from .synth import Storm

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The drill could not be published completely."""


@dataclasses.dataclass(frozen=True)
class PlannedMessage:
    """One message to send.

    Attributes:
        topic: Kafka topic.
        partition: Explicit partition (controls), or None to partition by key.
        key: Message key bytes.
        value: Message value (contract JSON).
        timestamp_ms: Kafka record timestamp = event time in ms since the epoch.
        event_time: The event time, for pacing.
        kind: ``"rain"``, ``"level"``, ``"camera"``, ``"grid"``, ``"drone"``, ``"tick"`` or ``"end"``.
    """

    topic: str
    partition: int | None
    key: bytes
    value: bytes
    timestamp_ms: int
    event_time: dt.datetime
    kind: str


@dataclasses.dataclass(frozen=True)
class PublishReport:
    """What a drill run sent."""

    storm: str
    drill_id: str
    exercise: bool
    sent: Mapping[str, int]
    readings: int
    ticks: int
    ends: int
    first_event_time: dt.datetime
    last_event_time: dt.datetime
    wall_seconds: float
    #: Camera frames, grid notices and drone observations sent.
    media: int = 0
    #: Messages sent per feed and control kind.
    counts: Mapping[str, int] = dataclasses.field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def _ms(t: dt.datetime) -> int:
    return round(t.timestamp() * 1000)


def _control(kind: ControlKind, t: dt.datetime, topic: str, partition: int, *, drill_id: str,
             exercise: bool) -> PlannedMessage:
    epoch = int(t.timestamp())
    control = StreamControl(
        event_id=f"{kind.value}:{drill_id}:{topic}:{partition}:{epoch}", event_time=t,
        control=kind, source=drill_id, exercise=exercise, drill_id=drill_id,
    )
    return PlannedMessage(topic=topic, partition=partition, key=drill_id.encode(), value=control.to_json(),
                          timestamp_ms=_ms(t), event_time=t, kind=kind.value)


_FEEDS: dict[type[Event], str] = {
    RainReading: "rain", LevelReading: "level", CameraFrame: "camera", GridNotice: "grid", DroneObservation: "drone",
}


def _reading_topic(event: Event, topics: Topics) -> tuple[str, str]:
    feed = _FEEDS.get(type(event))
    if feed is None:
        raise TypeError(f"no observation topic for {type(event).__name__}")
    return topics.observation_topics[feed], feed


def replay_window(storm: Storm, start_at: dt.datetime | None) -> dt.datetime:
    """Where a drill starts in storm time: the storm's start, or a later ``start_at``.

    Raises:
        ValueError: ``start_at`` is naive or not before the storm's end.
    """
    if start_at is None:
        return storm.start
    if start_at.tzinfo is None:
        raise ValueError("the start time must carry a UTC offset, e.g. 2005-09-04T21:00+09:00")
    if not start_at < storm.end:
        raise ValueError(f"the start time {start_at.isoformat()} is not before the storm's end {storm.end.isoformat()}")
    return max(storm.start, start_at.astimezone(dt.UTC))


def plan_messages(
    storm: Storm,
    topics: Topics,
    partitions: Mapping[str, Sequence[int]],
    *,
    drill_id: str,
    exercise: bool = True,
    tick_every_s: int = 60,
    start_at: dt.datetime | None = None,
) -> Iterator[PlannedMessage]:
    """Plans a drill: every message in event-time order, ticks, then END on every partition.

    Args:
        storm: The storm to replay.
        topics: Topic names.
        partitions: Topic -> its partition numbers, for every observation topic.
        drill_id: Marks every message (a valid contract id).
        exercise: Stamped on every message; True for drills.
        tick_every_s: Event-time spacing of TICK controls, seconds.
        start_at: Start the replay at this storm time (messages stamped before it
            are not sent); default the storm's start.

    Yields:
        The messages in the order they must be sent.

    Raises:
        ValueError: ``tick_every_s`` is not positive, or an observation topic
            has no partitions listed.
    """
    if tick_every_s <= 0:
        raise ValueError(f"tick_every_s must be positive, got {tick_every_s}")
    begin = replay_window(storm, start_at)
    step = dt.timedelta(seconds=tick_every_s)
    next_tick = begin + step
    control_targets: list[tuple[str, int]] = []
    for topic in topics.observation_topics.values():
        parts = sorted(partitions.get(topic, ()))
        if not parts:
            raise ValueError(f"no partitions known for observation topic {topic!r}")
        control_targets.extend((topic, p) for p in parts)

    def ticks_up_to(t: dt.datetime) -> Iterator[PlannedMessage]:
        nonlocal next_tick
        while next_tick < storm.end and next_tick <= t:
            for topic, partition in control_targets:
                yield _control(ControlKind.TICK, next_tick, topic, partition, drill_id=drill_id, exercise=exercise)
            next_tick += step

    for event in storm.events():
        if event.event_time < begin:
            continue
        # Ticks strictly before this event: everything stamped at or before them is out.
        if event.event_time > next_tick:
            yield from ticks_up_to(event.event_time - dt.timedelta(microseconds=1))
        topic, kind = _reading_topic(event, topics)
        marked = dataclasses.replace(event, exercise=exercise, drill_id=drill_id)
        yield PlannedMessage(topic=topic, partition=None, key=marked.key.encode(), value=marked.to_json(),
                             timestamp_ms=_ms(event.event_time), event_time=event.event_time, kind=kind)
    yield from ticks_up_to(storm.end)
    for topic, partition in control_targets:
        yield _control(ControlKind.END, storm.end, topic, partition, drill_id=drill_id, exercise=exercise)


def plan_size(storm: Storm, partitions: Mapping[str, Sequence[int]], topics: Topics, tick_every_s: int = 60,
              start_at: dt.datetime | None = None) -> int:
    """How many messages :func:`plan_messages` yields, without building them."""
    begin = replay_window(storm, start_at)
    targets = sum(len(partitions.get(t, ())) for t in topics.observation_topics.values())
    span = (storm.end - begin).total_seconds()
    n_ticks = max(0, -(-int(span) // tick_every_s) - 1)  # begin+k*step for k>=1 while < end
    feeds = (storm.rain, storm.levels, storm.frames, storm.grids, storm.drone)
    if begin == storm.start:
        events = sum(len(f) for f in feeds)
    else:
        events = sum(1 for f in feeds for e in f if e.event_time >= begin)
    return events + (n_ticks + 1) * targets


def paced(plan: Iterator[PlannedMessage], start: dt.datetime, speed: float | None, *,
          clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[PlannedMessage]:
    """Releases each message no earlier than ``(event_time - start) / speed`` wall seconds in.

    ``speed=None`` releases as fast as possible; ``speed=60`` plays one storm
    minute per wall second.
    """
    if speed is None:
        yield from plan
        return
    if speed <= 0:
        raise ValueError(f"speed must be positive or None, got {speed}")
    wall0 = clock()
    for message in plan:
        due = wall0 + (message.event_time - start).total_seconds() / speed
        delay = due - clock()
        if delay > 0:
            sleep(delay)
        yield message


def make_producer(settings: Settings) -> Any:
    """A kafka-python producer for drills: all replicas acknowledge, idempotent retries."""
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        client_id="suibou-drill-publisher",
    )


def publish_storm(
    storm: Storm,
    settings: Settings,
    *,
    drill_id: str,
    speed: float | None = None,
    exercise: bool = True,
    tick_every_s: int = 60,
    progress: bool = True,
    producer: Any = None,
    start_at: dt.datetime | None = None,
    wait_for: Callable[[dt.datetime], None] | None = None,
) -> PublishReport:
    """Replays a storm onto the observation topics as a drill.

    Args:
        storm: The storm (see :func:`replay_data.load_storm`).
        settings: Bootstrap servers and topic names. The topics must exist.
        drill_id: Marks every message of this run.
        speed: None to send as fast as possible, else event-time seconds per
            wall second (60 = one storm minute per second).
        exercise: Stamped on every message. Leave True for drills.
        tick_every_s: Event-time spacing of TICK controls.
        progress: Show a tqdm progress bar.
        producer: A producer to use instead of a new one (it is flushed, not closed).
        start_at: Start at this storm time instead of the storm's start.
        wait_for: Called with the event time of each new storm minute before its
            messages are sent; it may block to keep the publisher from running
            too far ahead of the pipeline, or raise to stop the replay (see
            :class:`suibou.drill.PipelineProgress`).

    Returns:
        Counts of what was sent, per topic and per kind.

    Raises:
        PublishError: A topic is missing, or any send failed.
        ValueError: ``start_at`` is naive or not before the storm's end.
    """
    from tqdm import tqdm

    begin = replay_window(storm, start_at)
    topics = settings.topics
    own_producer = producer is None
    if own_producer:
        producer = make_producer(settings)
    failures: list[BaseException] = []
    try:
        partitions: dict[str, list[int]] = {}
        for topic in topics.observation_topics.values():
            try:
                found = producer.partitions_for(topic)
            except Exception as error:  # kafka-python raises KafkaTimeoutError for unknown topics
                raise PublishError(f"cannot get the partitions of topic {topic!r}: {error!r}") from error
            if not found:
                raise PublishError(f"topic {topic!r} does not exist or has no partitions; create the topics first")
            partitions[topic] = sorted(found)
        total = plan_size(storm, partitions, topics, tick_every_s, start_at)
        plan = plan_messages(storm, topics, partitions, drill_id=drill_id, exercise=exercise,
                             tick_every_s=tick_every_s, start_at=start_at)
        sent: dict[str, int] = {}
        counts = dict.fromkeys(("rain", "level", "camera", "grid", "drone", "tick", "end"), 0)
        wall0 = time.monotonic()
        with tqdm(total=total, disable=not progress, unit="msg", desc=f"drill {drill_id}") as bar:
            gated_until = None
            for message in paced(plan, begin, speed):
                if wait_for is not None and (gated_until is None or message.event_time >= gated_until):
                    wait_for(message.event_time)
                    gated_until = message.event_time + dt.timedelta(seconds=tick_every_s)
                future = producer.send(message.topic, value=message.value, key=message.key,
                                       partition=message.partition, timestamp_ms=message.timestamp_ms)
                future.add_errback(failures.append)
                sent[message.topic] = sent.get(message.topic, 0) + 1
                counts[message.kind] += 1
                bar.update(1)
                if failures:
                    break
            producer.flush()
    finally:
        if own_producer:
            producer.close()
    if failures:
        raise PublishError(f"{len(failures)} message(s) of drill {drill_id} failed: {failures[0]!r}")
    report = PublishReport(
        storm=storm.name, drill_id=drill_id, exercise=exercise, sent=sent,
        readings=counts["rain"] + counts["level"], ticks=counts["tick"], ends=counts["end"],
        media=counts["camera"] + counts["grid"] + counts["drone"], counts=counts, first_event_time=begin,
        last_event_time=storm.end, wall_seconds=time.monotonic() - wall0,
    )
    log.info("drill %s: sent %d messages of storm %s", drill_id, report.total, storm.name)
    return report
