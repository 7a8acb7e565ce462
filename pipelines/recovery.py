"""Resuming the job after a stop without losing or repeating anything.

The runner's state does not outlive a job on Prism, so a resumed job rebuilds it
from the logs it already has on Kafka:

- **Inputs** restart from the consumer group's committed offsets, rewound by a
  warm-up span of event time, so rolling sums, rates of rise and fusion state
  are whole again before anything new is emitted.
- **Outputs** carry deterministic ids. Whatever the stopped job already
  published in that span is read back, and the writer drops those ids: the
  warm-up recomputes them, but nothing is sent twice.
- **Open alerts** are read back from the alerts topic, so an alert raised
  before the warm-up span continues under its own id and sequence instead of
  being raised again.
- **Soil water index tanks** are seeded from each gauge's last published rain
  status before the warm-up span (``<prefix>.status.rain``); at most the rain of
  one 10-minute bin is missed by the index.

All of this is I/O at the job's edge, done once when the job starts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping

from pipelines.alerts import AreaAlertState
from pipelines.ordered import stream_key
from suibou.contracts import AlertEvent, AlertLevel, ContractError, MsgType, RainStatus, parse_event
from suibou.kafka_offsets import list_offsets

#: How much event time a resumed job re-reads to rebuild its state: the longest
#: look-back of any stage (24-hour rain totals) with an hour to spare. The soil
#: water index remembers rain for days, so its tanks are seeded instead.
DEFAULT_WARM_UP_S = 25 * 3600.0


@dataclasses.dataclass(frozen=True)
class ResumePlan:
    """Where a resumed job starts, what it must not send again, and its open alerts."""

    start_offsets: dict[tuple[str, int], int]
    published_ids: frozenset[str]
    open_alerts: dict[str, AreaAlertState]
    tank_seeds: dict[str, tuple[tuple[float, float, float], int]] = dataclasses.field(default_factory=dict)


def _consumer(bootstrap_servers: str, group_id: str | None = None):
    from kafka import KafkaConsumer

    return KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group_id, enable_auto_commit=False,
                         max_partition_fetch_bytes=4 * 1024 * 1024)


def _partitions(consumer, topics: Iterable[str]):
    from kafka import TopicPartition

    return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]


def _records(consumer, starts: Mapping, ends: Mapping) -> Iterator:
    """Every record from ``starts`` up to ``ends``, per partition."""
    live = [tp for tp in starts if starts[tp] < ends[tp]]
    if not live:
        return
    consumer.assign(live)
    for tp in live:
        consumer.seek(tp, starts[tp])
    while any(consumer.position(tp) < ends[tp] for tp in live):
        for tp, batch in consumer.poll(timeout_ms=500, max_records=5000).items():
            for record in batch:
                if record.offset < ends[tp]:
                    yield record


def resume_offsets(bootstrap_servers: str, group_id: str, topics: Iterable[str],
                   warm_up_s: float = DEFAULT_WARM_UP_S) -> tuple[dict[tuple[str, int], int], int | None]:
    """Committed offsets rewound by ``warm_up_s`` of record time, per partition.

    Returns:
        The start offsets, and the earliest record time (ms) they begin at,
        from which published outputs must be read back (None: nothing committed).
    """
    consumer = _consumer(bootstrap_servers, group_id)
    try:
        tps = _partitions(consumer, topics)
        beginnings = list_offsets(consumer, tps, "beginning")
        ends = list_offsets(consumer, tps)
        # A commit past the log's end (a topic deleted and made again) counts as the end.
        committed: dict = {tp: consumer.committed(tp) for tp in tps}
        committed = {tp: None if offset is None else min(offset, ends[tp]) for tp, offset in committed.items()}
        # The record time just before each committed position says where the job had got to. It is read
        # by a consumer of its own: once a kafka-python consumer has been assigned some partitions, its
        # offsets_for_times answers None for the partitions of every other topic, and a resumed job
        # would then have started at the end of those topics instead of a warm-up span back.
        reached: dict = {}
        peek = _consumer(bootstrap_servers)
        try:
            for tp in tps:
                if committed[tp] and committed[tp] > beginnings[tp]:
                    for record in _records(peek, {tp: committed[tp] - 1}, {tp: committed[tp]}):
                        reached[tp] = record.timestamp
        finally:
            peek.close()
        if not reached:
            return {(tp.topic, tp.partition): beginnings[tp] for tp in tps}, None
        since_ms = int(min(reached.values()) - warm_up_s * 1000)
        found = consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        starts = {}
        for tp in tps:
            hit = found.get(tp)
            starts[(tp.topic, tp.partition)] = hit.offset if hit is not None else ends[tp]
        return starts, since_ms
    finally:
        consumer.close()


def _ids(records: Iterable) -> set[str]:
    ids = set()
    for record in records:
        try:
            event_id = json.loads(record.value).get("event_id")
        except ValueError:
            continue
        if event_id:
            ids.add(event_id)
    return ids


def published_since(bootstrap_servers: str, topics: Iterable[str], since_ms: int) -> frozenset[str]:
    """Ids of every output published at or after ``since_ms`` (record time)."""
    consumer = _consumer(bootstrap_servers)
    try:
        tps = _partitions(consumer, topics)
        found = consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        ends = list_offsets(consumer, tps)
        starts = {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in tps}
        return frozenset(_ids(_records(consumer, starts, ends)))
    finally:
        consumer.close()


def read_published(bootstrap_servers: str, start_offsets: Mapping[tuple[str, int], int]
                   ) -> tuple[set[str], dict[tuple[str, int], int]]:
    """Ids of every output published from ``start_offsets`` (topic, partition: offset) up to now.

    Returns:
        The ids, and the offsets read up to (where a later read-back continues).
    """
    from kafka import TopicPartition

    consumer = _consumer(bootstrap_servers)
    try:
        starts = {TopicPartition(topic, partition): offset for (topic, partition), offset in start_offsets.items()}
        ends = list_offsets(consumer, list(starts))
        ids = _ids(_records(consumer, starts, ends))
        return ids, {(tp.topic, tp.partition): max(offset, starts[tp]) for tp, offset in ends.items()}
    finally:
        consumer.close()


def published_from(bootstrap_servers: str, start_offsets: Mapping[tuple[str, int], int]) -> frozenset[str]:
    """Ids of every output published from ``start_offsets`` (topic, partition: offset) on."""
    return frozenset(read_published(bootstrap_servers, start_offsets)[0])


def open_alerts(bootstrap_servers: str, alerts_topic: str) -> dict[str, AreaAlertState]:
    """The last state of every alert on the alerts topic, keyed like the alert fold."""
    consumer = _consumer(bootstrap_servers)
    try:
        tps = _partitions(consumer, [alerts_topic])
        latest: dict[str, AlertEvent] = {}
        for record in _records(consumer, list_offsets(consumer, tps, "beginning"), list_offsets(consumer, tps)):
            try:
                event = parse_event(record.value)
            except ContractError:
                continue
            if not isinstance(event, AlertEvent):
                continue
            key = stream_key(event.drill_id, f"{event.area_id}|{event.hazard.value}")
            known = latest.get(key)
            if known is None or (event.event_time, event.sequence) >= (known.event_time, known.sequence):
                latest[key] = event
        return {
            key: AreaAlertState(level=event.level, alert_id=event.alert_id, sequence=event.sequence,
                                last_event_id=event.event_id, as_of=event.event_time)
            for key, event in latest.items()
            if event.msg_type is not MsgType.CANCEL and event.level > AlertLevel.NONE
        }
    finally:
        consumer.close()


def tank_seeds(bootstrap_servers: str, rain_status_topic: str, before_ms: int
               ) -> dict[str, tuple[tuple[float, float, float], int]]:
    """Each gauge's tanks as last published before ``before_ms``, keyed like the rainfall fold."""
    from pipelines.gauges import bin_of

    consumer = _consumer(bootstrap_servers)
    try:
        tps = _partitions(consumer, [rain_status_topic])
        found = consumer.offsets_for_times(dict.fromkeys(tps, before_ms))
        ends = list_offsets(consumer, tps)
        stops = {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in tps}
        latest: dict[str, RainStatus] = {}
        for record in _records(consumer, list_offsets(consumer, tps, "beginning"), stops):
            try:
                status = parse_event(record.value)
            except ContractError:
                continue
            if isinstance(status, RainStatus):
                key = stream_key(status.drill_id, status.station_id)
                if key not in latest or latest[key].event_time <= status.event_time:
                    latest[key] = status
        return {key: (s.tanks, bin_of(s.event_time.timestamp())) for key, s in latest.items()}
    finally:
        consumer.close()


def plan_resume(bootstrap_servers: str, group_id: str, input_topics: Iterable[str],
                output_topics: Iterable[str], alerts_topic: str, rain_status_topic: str | None = None,
                warm_up_s: float = DEFAULT_WARM_UP_S) -> ResumePlan:
    """Everything a resumed job needs to continue exactly where the stopped one left off."""
    starts, since_ms = resume_offsets(bootstrap_servers, group_id, input_topics, warm_up_s)
    if since_ms is None:
        return ResumePlan(starts, frozenset(), {})
    ids = published_since(bootstrap_servers, output_topics, since_ms)
    seeds = tank_seeds(bootstrap_servers, rain_status_topic, since_ms) if rain_status_topic else {}
    return ResumePlan(starts, ids, open_alerts(bootstrap_servers, alerts_topic), seeds)


def plan_drill_resume(bootstrap_servers: str, group_id: str, drill_id: str,
                      input_starts: Mapping[tuple[str, int], int], output_starts: Mapping[tuple[str, int], int],
                      alerts_topic: str, rain_status_topic: str,
                      warm_up_s: float = DEFAULT_WARM_UP_S) -> ResumePlan:
    """:func:`plan_resume` for a drill's job, which shares its topics with other drills and the live job.

    A drill's records carry storm time, so rewinding by record time can land
    among an earlier drill of the same storm: inputs never start before the
    drill's own first offsets (``input_starts``). What the stopped job published
    is read from the drill's first output offsets (``output_starts``), whether or
    not it had committed anything yet, and kept to the drill's own ids.
    """
    plan = plan_resume(bootstrap_servers, group_id, list(dict.fromkeys(topic for topic, _ in input_starts)),
                       (), alerts_topic, rain_status_topic, warm_up_s)
    starts = {tp: max(offset, input_starts.get(tp, 0)) for tp, offset in plan.start_offsets.items()}
    published = frozenset(i for i in published_from(bootstrap_servers, output_starts) if drill_id in i)
    return dataclasses.replace(plan, start_offsets=starts, published_ids=published)
