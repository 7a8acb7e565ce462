"""Kafka at the pipeline's edges, with kafka-python.

Reading is a splittable DoFn with one restriction per topic partition (an
offset range), so every portable runner (Prism, Flink, Dataflow) can checkpoint
and resume it. Event time is the Kafka record timestamp, which suibou's
producers set to the observation time. In a drill, the watermark of a
partition follows the ``stream_control/1`` ticks its publisher writes. Live,
it follows the newest record time less a disorder bound while the partition
has a backlog, and the wall clock less a short delay once it is caught up, so
a topic or partition with no traffic never holds the job back; the reader
then also writes the stream's clock ticks itself. Offsets are committed to the
consumer group only from the bundle finaliser, i.e. after the runner has
durably taken the bundle's output.

A bounded run (a drill) ends each partition at its publisher's ``end`` control
message; a live run never ends.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import apache_beam as beam
from apache_beam.io.iobase import WatermarkEstimator
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider, WatermarkEstimatorProvider
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Duration, Timestamp

from suibou.kafka_offsets import list_offsets

_LOG = logging.getLogger(__name__)
_UNBOUNDED = sys.maxsize
_CONTROL_MARKER = b'"stream_control/1"'
#: A partition reader's consumer that has reached no broker this long is closed and opened anew.
UNREACHABLE_RECONNECT_S = 30.0
#: Pause between attempts to open a reader's consumer while the cluster is out of reach.
REOPEN_BACKOFF_S = 10.0
#: Longest wait of one such attempt (also of the reader's first connect).
REOPEN_TIMEOUT_MS = 5000


@dataclasses.dataclass(frozen=True)
class KafkaRecord:
    """One record as read, before any parsing."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


@dataclasses.dataclass(frozen=True)
class PartitionSpec:
    """What one reader restriction covers: a partition, from ``start_offset``."""

    topic: str
    partition: int
    start_offset: int


@dataclasses.dataclass(frozen=True)
class ControlSignal:
    event_time: Timestamp
    is_end: bool
    source: str


def control_signal(value: bytes) -> ControlSignal | None:
    """Recognises a stream-control message; ``None`` for ordinary records.

    Examples:
        >>> control_signal(b'{"schema":"stream_control/1","control":"end",'
        ...     b'"event_time":"2005-09-04T12:00:00+00:00","source":"d1"}').is_end
        True
        >>> control_signal(b'{"schema":"rain_reading/1"}') is None
        True
    """
    if _CONTROL_MARKER not in value[:200]:
        return None
    # Local import keeps this module usable without the contracts' parse cost.
    from suibou.contracts import ContractError, parse_time

    try:
        data = json.loads(value)
        event_time = parse_time("event_time", data["event_time"])
    except (ValueError, KeyError, ContractError):
        return None  # Malformed control messages are dead-lettered by the parse stage.
    return ControlSignal(
        event_time=Timestamp.from_utc_datetime(event_time),
        is_end=data.get("control") == "end",
        source=str(data.get("source", "")),
    )


class _PartitionTracker(OffsetRestrictionTracker):
    """Allows checkpoints (a split at 0) but never a split of the unread range.

    The range is unbounded, so a fractional split would start a second reader
    near offset 2**63, far past the log.
    """

    def try_split(self, fraction_of_remainder):
        if fraction_of_remainder != 0:
            return None
        return super().try_split(fraction_of_remainder)


class _PartitionRestrictions(RestrictionProvider):
    def initial_restriction(self, element: PartitionSpec) -> OffsetRange:
        return OffsetRange(element.start_offset, _UNBOUNDED)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return _PartitionTracker(restriction)

    def restriction_size(self, element: PartitionSpec, restriction: OffsetRange) -> int:
        # Unknown until read; a constant keeps runners from splitting a partition.
        return 1

    def split(self, element: PartitionSpec, restriction: OffsetRange) -> Iterator[OffsetRange]:
        yield restriction  # A partition is read in order by one reader.

    def truncate(self, element: PartitionSpec, restriction: OffsetRange) -> None:
        return None  # On drain, an unbounded read stops where it is.


class StreamClock(WatermarkEstimator):
    """A partition's watermark: the time its clock promised, reported one call late.

    A tick read during a call is only *pending* until the next call on the
    partition begins. The records read before the tick in the same call may
    still be on their way to the runner when it learns the watermark (from a
    checkpoint or a progress report mid-call); reported at once, the watermark
    could overtake them and they would arrive late downstream, folded out of
    order. By the next call the bundle that carried them has completed.
    """

    def __init__(self, state: tuple[Timestamp, Timestamp]):
        self._current, self._pending = state

    def observe_timestamp(self, timestamp: Timestamp) -> None:
        return None  # Record times say nothing about what may still follow.

    def current_watermark(self) -> Timestamp:
        return self._current

    def get_estimator_state(self) -> tuple[Timestamp, Timestamp]:
        return (self._current, self._pending)

    def promised(self) -> Timestamp:
        """The newest time the partition's clock has promised, reported or not."""
        return max(self._current, self._pending)

    def promise(self, timestamp: Timestamp) -> None:
        """Nothing at or before ``timestamp`` follows on this partition."""
        self._pending = max(self._pending, timestamp)

    def begin_call(self) -> None:
        """Reports what the previous call's clock promised."""
        self._current = self.promised()


class _ClockFromState(WatermarkEstimatorProvider):
    def initial_estimator_state(self, element: PartitionSpec, restriction: OffsetRange
                                ) -> tuple[Timestamp, Timestamp]:
        return (MIN_TIMESTAMP, MIN_TIMESTAMP)

    def create_watermark_estimator(self, estimator_state: tuple[Timestamp, Timestamp]) -> StreamClock:
        return StreamClock(estimator_state)


@dataclasses.dataclass(frozen=True)
class KafkaReadConfig:
    """How records are fetched and how the clock of a partition advances.

    Attributes:
        bootstrap_servers: ``host:port[,host:port]`` of the cluster.
        group_id: Consumer group whose offsets are committed after each bundle.
        end_source: When set, a partition's read ends at an ``end`` control
            message from this source (a drill id), and only this source's
            ticks advance the watermark; otherwise reads never end.
        max_disorder_s: Live, while a partition has a backlog: how far behind
            its newest record time the watermark stays.
        live_delay_s: Live, once a partition is caught up: how far behind the
            wall clock its watermark stays. A reading that reaches Kafka later
            than this after it was made is behind the watermark: the folds
            still take it (on arrival, or late within their bound), the gauge
            watchdog counts it late.
        live_tick_s: Live: the reader writes a clock tick on this grid of
            event time whenever a partition's watermark crosses it, for the
            stages that follow the stream's clock (the gauge watchdog).
        poll_timeout_ms: How long the first poll of a call waits for records
            (later polls of the call take only what has already arrived).
        max_records_per_call: Records read before handing back to the runner.
    """

    bootstrap_servers: str
    group_id: str = "suibou-pipeline"
    end_source: str | None = None
    max_disorder_s: float = 60.0
    live_delay_s: float = 15.0
    live_tick_s: float = 10.0
    poll_timeout_ms: int = 50
    max_records_per_call: int = 5000


#: ``source`` of the clock ticks a live reader writes itself.
LIVE_CLOCK_SOURCE = "live-clock"


def live_tick(topic: str, partition: int, at: Timestamp) -> KafkaRecord:
    """A clock tick at ``at`` as if read from ``topic``/``partition`` (offset -1: not from Kafka).

    Examples:
        >>> tick = live_tick("suibou.obs.rain", 2, Timestamp(1_700_000_000))
        >>> control_signal(tick.value).source, tick.offset
        ('live-clock', -1)
    """
    from suibou.contracts import ControlKind, StreamControl

    when = at.to_utc_datetime(has_tz=True)
    tick = StreamControl(event_id=f"{LIVE_CLOCK_SOURCE}:{when:%Y%m%dT%H%M%SZ}", event_time=when,
                         control=ControlKind.TICK, source=LIVE_CLOCK_SOURCE)
    return KafkaRecord(topic, partition, -1, None, tick.to_json(), at.micros // 1000)


def live_watermark(newest: Timestamp, caught_up: bool, now: Timestamp, config: KafkaReadConfig) -> Timestamp:
    """What a live partition may promise after a read: nothing older is expected to follow.

    Records stamped ahead of the wall clock (a gateway's clock running fast)
    never pull it past the wall clock.

    Examples:
        >>> config = KafkaReadConfig("k:9092")
        >>> now = Timestamp(1000)
        >>> live_watermark(Timestamp(990), False, now, config), live_watermark(Timestamp(990), True, now, config)
        (Timestamp(930), Timestamp(985))
        >>> live_watermark(Timestamp(5000), False, now, config)
        Timestamp(940)
    """
    newest = min(newest, now)
    if caught_up:
        return max(newest - Duration(seconds=config.max_disorder_s), now - Duration(seconds=config.live_delay_s))
    return newest - Duration(seconds=config.max_disorder_s)


class _ReadPartitionFn(beam.DoFn):
    """Reads one Kafka partition as an unbounded offset range."""

    def __init__(self, config: KafkaReadConfig):
        self._config = config
        self._consumers: dict[tuple[str, int], _PartitionConsumer] = {}
        self._last_tick: dict[tuple[str, int], Timestamp] = {}
        self._records = Metrics.counter("kafka_read", "records")
        self._controls = Metrics.counter("kafka_read", "control_messages")

    def setup(self) -> None:
        self._consumers = {}
        self._last_tick = {}

    def teardown(self) -> None:
        for topic, partition in self._consumers:
            _SharedConsumers.release(self._config, topic, partition)
        self._consumers = {}

    def _consumer_for(self, topic: str, partition: int) -> _PartitionConsumer:
        key = (topic, partition)
        consumer = self._consumers.get(key)
        if consumer is None:
            consumer = self._consumers[key] = _SharedConsumers.acquire(self._config, topic, partition)
        return consumer

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        spec: PartitionSpec,
        # Beam passes the finaliser by position and the restriction tracker and
        # watermark estimator by name, so the finaliser must come first.
        finalizer=beam.DoFn.BundleFinalizerParam,
        tracker=beam.DoFn.RestrictionParam(_PartitionRestrictions()),  # noqa: B008
        watermark=beam.DoFn.WatermarkEstimatorParam(_ClockFromState()),  # noqa: B008
    ) -> Iterator[TimestampedValue]:
        watermark.begin_call()
        restriction = tracker.current_restriction()
        consumer = self._consumer_for(spec.topic, spec.partition)
        tp = consumer.tp
        deadline = time.monotonic() + 1.0
        read = 0
        next_offset = restriction.start
        newest = watermark.promised()
        caught_up = False
        while read < self._config.max_records_per_call and time.monotonic() < deadline:
            timeout_ms = self._config.poll_timeout_ms if read == 0 else 0
            batch = consumer.poll(next_offset, timeout_ms)
            if not batch:
                caught_up = True
                break
            for record in batch:
                if not tracker.try_claim(record.offset):
                    self._commit_after_bundle(finalizer, consumer, next_offset)
                    return
                next_offset = record.offset + 1
                read += 1
                signal = control_signal(record.value)
                if signal is not None:
                    self._controls.inc()
                    if self._config.end_source is not None and signal.source != self._config.end_source:
                        continue  # Another drill's clock says nothing about this one.
                    watermark.promise(signal.event_time)
                    if signal.is_end and signal.source == self._config.end_source:
                        self._commit_after_bundle(finalizer, consumer, next_offset)
                        tracker.try_claim(tracker.current_restriction().stop - 1)
                        return
                    if not signal.is_end:
                        # Downstream stages follow the stream clock too (the gauge watchdog).
                        yield TimestampedValue(
                            KafkaRecord(spec.topic, spec.partition, record.offset, record.key, record.value,
                                        record.timestamp),
                            signal.event_time,
                        )
                    continue
                self._records.inc()
                event_time = Timestamp(micros=record.timestamp * 1000)
                newest = max(newest, event_time)
                yield TimestampedValue(
                    KafkaRecord(spec.topic, spec.partition, record.offset, record.key, record.value,
                                record.timestamp),
                    event_time,
                )
        # A drill's clock is its own ticks alone: records of other streams on the
        # same topics carry other times.
        if self._config.end_source is None:
            watermark.promise(live_watermark(newest, caught_up, Timestamp.now(), self._config))
            tick = self._due_tick(tp, watermark)
            if tick is not None:
                yield TimestampedValue(live_tick(spec.topic, spec.partition, tick), tick)
        if next_offset > restriction.start:
            self._commit_after_bundle(finalizer, consumer, next_offset)
        else:
            # Prism asks every bundle of this stage to finalise; a bundle that
            # registered nothing has already been released by the SDK harness
            # and answers with an error, so register a no-op.
            finalizer.register(_nothing_to_commit)
        # Resumed at once even when idle. Prism takes a stage's output watermark from
        # the checkpoints of the bundle that finished last; a partition whose
        # checkpoint were parked for a resume delay would drop out of that minimum
        # and its next records could arrive behind the watermark. The poll above
        # already waits for records, so an idle partition does not spin.
        tracker.defer_remainder(Duration(seconds=0))

    def _due_tick(self, tp, watermark: StreamClock) -> Timestamp | None:
        """The next tick of the live clock's grid, once this partition's promise has reached it.

        Never behind what the partition has already reported: the tick is an
        element, and it must not arrive late.
        """
        grid_us = round(self._config.live_tick_s * 1e6)
        at = Timestamp(micros=watermark.promised().micros // grid_us * grid_us)
        last = self._last_tick.get((tp.topic, tp.partition))
        if (last is not None and at <= last) or at < watermark.current_watermark():
            return None
        self._last_tick[(tp.topic, tp.partition)] = at
        return at

    def _commit_after_bundle(self, finalizer, consumer: _PartitionConsumer,
                             next_offset: int) -> None:
        finalizer.register(lambda: consumer.commit(next_offset))


def _nothing_to_commit() -> None:
    return None


class _PartitionConsumer:
    """A consumer assigned to one partition, used under a lock.

    Reads of a partition never overlap (one restriction, processed call after
    call), but the commit of a finalised bundle may come from another thread
    while the next call polls, and a kafka-python consumer is not thread-safe.

    Through a Kafka outage the reader stays up: a consumer that has reached no
    broker for ``UNREACHABLE_RECONNECT_S`` is closed (kafka-python would retry by
    itself, but keeps a socket per failed attempt while the consumer lives) and
    a new one is opened every ``REOPEN_BACKOFF_S`` until the cluster answers;
    meanwhile polls read nothing and commits are skipped (the records are read
    again). The first connect, when the job starts, still fails the bundle.
    """

    def __init__(self, config: KafkaReadConfig, topic: str, partition: int):
        from kafka import TopicPartition

        self.tp = TopicPartition(topic, partition)
        self._config = config
        self._lock = threading.Lock()
        self._reopen_after = 0.0
        self._failed_reopens = 0
        self._consumer: Any = None  # a BoundedCloseConsumer, or None while the cluster is out of reach
        self._open()

    def _open(self) -> None:
        from suibou.kafka_clients import ReachWatch, open_consumer

        self._consumer = open_consumer(
            bootstrap_servers=self._config.bootstrap_servers,
            group_id=self._config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            bootstrap_timeout_ms=REOPEN_TIMEOUT_MS,
        )
        self._consumer.assign([self.tp])
        self._reach = ReachWatch(UNREACHABLE_RECONNECT_S)

    def _connected(self):
        """The consumer, reopened if the cluster was out of reach; ``None`` while it still is. Under the lock."""
        from kafka.errors import KafkaError

        from suibou.kafka_clients import ClusterUnreachable, release_failed_clients

        if self._consumer is not None:
            try:
                self._reach.check(self._consumer)
                return self._consumer
            except ClusterUnreachable as error:
                _LOG.warning("reader of %s: %s; connecting anew", self.tp, error)
                self._consumer.close()
                self._consumer = None
                release_failed_clients(force=True)
        if time.monotonic() < self._reopen_after:
            return None
        try:
            self._open()
        except KafkaError as error:
            self._reopen_after = time.monotonic() + REOPEN_BACKOFF_S
            self._failed_reopens += 1
            release_failed_clients()
            # One warning per outage, not one per partition every few seconds for hours.
            log = _LOG.warning if self._failed_reopens == 1 else _LOG.debug
            log("reader of %s: Kafka unreachable (%s); retrying every %.0f s", self.tp, error, REOPEN_BACKOFF_S)
            return None
        if self._failed_reopens:
            _LOG.warning("reader of %s: connected again after %d attempts", self.tp, self._failed_reopens)
            self._failed_reopens = 0
        return self._consumer

    def poll(self, offset: int, timeout_ms: int) -> list:
        """Up to 1000 records from ``offset`` on (the next ones when the last poll ended there)."""
        with self._lock:
            consumer = self._connected()
            if consumer is None:
                time.sleep(timeout_ms / 1000)  # as long as a poll would wait: an outage must not spin the reader
                return []
            if consumer.position(self.tp) != offset:
                consumer.seek(self.tp, offset)
            return consumer.poll(timeout_ms=timeout_ms, max_records=1000).get(self.tp, [])

    def commit(self, next_offset: int) -> None:
        from kafka.structs import OffsetAndMetadata

        try:
            with self._lock:
                if self._consumer is None:
                    raise ConnectionError("the cluster is out of reach")
                self._consumer.commit({self.tp: OffsetAndMetadata(next_offset, "", -1)})
        except Exception as error:  # noqa: BLE001 - a failed commit only means a re-read.
            _LOG.warning("offset commit for %s failed (records will be re-read): %s", self.tp, error)

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None


class _SharedConsumers:
    """One consumer per partition and process, shared by every reader instance of the process.

    A runner may keep many instances of the reader alive at once: Flink
    finalises bundles only when a checkpoint completes, and until then the SDK
    harness holds on to each bundle's processor, DoFns and all, and builds a
    new one for the next bundle. With a consumer (and its network thread) per
    instance, every bundle between two checkpoints opened its own.
    """

    _lock = threading.Lock()
    _entries: ClassVar[dict[tuple[str, str, str, int], list]] = {}  # -> [consumer, users]

    @classmethod
    def acquire(cls, config: KafkaReadConfig, topic: str, partition: int) -> _PartitionConsumer:
        key = (config.bootstrap_servers, config.group_id, topic, partition)
        with cls._lock:
            entry = cls._entries.get(key)
            if entry is None:
                entry = cls._entries[key] = [_PartitionConsumer(config, topic, partition), 0]
            entry[1] += 1
            return entry[0]

    @classmethod
    def release(cls, config: KafkaReadConfig, topic: str, partition: int) -> None:
        key = (config.bootstrap_servers, config.group_id, topic, partition)
        with cls._lock:
            entry = cls._entries.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del cls._entries[key]
        entry[0].close()


class _DiscoverPartitions(beam.DoFn):
    """Lists the partitions of each topic at run time (not at construction)."""

    def __init__(self, config: KafkaReadConfig, start_offsets: Mapping[tuple[str, int], int] | None):
        self._config = config
        self._start_offsets = dict(start_offsets or {})

    def process(self, topic: str) -> Iterator[PartitionSpec]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self._config.bootstrap_servers,
            group_id=self._config.group_id,
            enable_auto_commit=False,
        )
        try:
            partitions = _wait_for_partitions(consumer, topic)
            tps = [TopicPartition(topic, p) for p in partitions]
            earliest = list_offsets(consumer, tps, "beginning")
            for tp in tps:
                explicit = self._start_offsets.get((topic, tp.partition))
                committed = consumer.committed(tp)
                start = explicit if explicit is not None else committed if committed is not None else earliest[tp]
                yield PartitionSpec(topic, tp.partition, int(start))
        finally:
            consumer.close()


def _wait_for_partitions(consumer, topic: str, timeout_s: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return sorted(partitions)
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kafka topic {topic!r} does not exist (run `suibou infra up`)")
        time.sleep(0.5)


@dataclasses.dataclass
class ReadFromKafka(beam.PTransform):
    """Reads topics as an unbounded stream of :class:`KafkaRecord` in event time.

    Attributes:
        config: Connection, consumer group and end-of-stream policy.
        topics: Topics to read; every partition of each.
        start_offsets: Optional ``(topic, partition) -> offset`` to start from;
            other partitions start at the group's committed offset, else the
            earliest retained one.
    """

    config: KafkaReadConfig
    topics: tuple[str, ...]
    start_offsets: Mapping[tuple[str, int], int] | None = None

    def __post_init__(self) -> None:
        super().__init__()
        if not self.topics:
            raise ValueError("ReadFromKafka needs at least one topic")

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[KafkaRecord]:
        return (
            pbegin
            | "Topics" >> beam.Create(list(self.topics))
            | "DiscoverPartitions" >> beam.ParDo(_DiscoverPartitions(self.config, self.start_offsets))
            | "SpreadPartitions" >> beam.Reshuffle()
            | "ReadPartitions" >> beam.ParDo(_ReadPartitionFn(self.config))
        )


@dataclasses.dataclass(frozen=True)
class KafkaMessage:
    """One record to write: ``key`` partitions it, ``timestamp_ms`` is its event time."""

    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None
    event_id: str | None = None


class _SharedProducers:
    """One producer per cluster and process, shared by every writer of the job.

    Each output is written by the stage that makes it, so a job has a dozen
    writers; kafka-python's producer is thread-safe, and each one would bring
    its own network thread and connections.
    """

    _lock = threading.Lock()
    _producers: ClassVar[dict[str, list]] = {}  # servers -> [producer, users]

    @classmethod
    def acquire(cls, bootstrap_servers: str):
        from kafka import KafkaProducer

        with cls._lock:
            entry = cls._producers.get(bootstrap_servers)
            if entry is None:
                # acks=all + idempotence: a retried send is not duplicated by the broker.
                # Large batches: each new batch wakes the producer's network thread, and
                # a bundle is flushed as a whole at its end anyway.
                producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True,
                                         linger_ms=5, batch_size=512 * 1024)
                entry = cls._producers[bootstrap_servers] = [producer, 0]
            entry[1] += 1
            return entry[0]

    @classmethod
    def release(cls, bootstrap_servers: str) -> None:
        with cls._lock:
            entry = cls._producers.get(bootstrap_servers)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] == 0:
                del cls._producers[bootstrap_servers]
                entry[0].close()


class PublishedLedger:
    """The ids a job has published since it started, as its output topics hold them.

    A runner that restores a job from a checkpoint (Flink) replays the stages'
    input since that checkpoint, so their outputs since then come again, under
    the same deterministic ids. A writer set up after the restore reads back,
    from ``start_offsets`` on, what the job has already published, and drops
    those ids. One ledger per process and start: each writer set up later reads
    on from where the last read stopped, not from the start again.
    """

    _lock = threading.Lock()
    _ledgers: ClassVar[dict[tuple, PublishedLedger]] = {}

    def __init__(self, bootstrap_servers: str, start_offsets: Mapping[tuple[str, int], int]):
        self._bootstrap_servers = bootstrap_servers
        self._positions = dict(start_offsets)
        self._ids: set[str] = set()
        self._refresh_lock = threading.Lock()

    @classmethod
    def of(cls, bootstrap_servers: str, start_offsets: Mapping[tuple[str, int], int]) -> PublishedLedger:
        """This process's ledger for a job that publishes from ``start_offsets`` on."""
        key = (bootstrap_servers, tuple(sorted(start_offsets.items())))
        with cls._lock:
            ledger = cls._ledgers.get(key)
            if ledger is None:
                ledger = cls._ledgers[key] = cls(bootstrap_servers, start_offsets)
            return ledger

    def refresh(self) -> int:
        """Reads what was published since the last refresh; returns how many ids it knows."""
        from pipelines.recovery import read_published

        with self._refresh_lock:
            ids, self._positions = read_published(self._bootstrap_servers, self._positions)
            self._ids |= ids
            return len(self._ids)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids


class _WriteFn(beam.DoFn):
    def __init__(self, bootstrap_servers: str, already_published: frozenset[str],
                 read_back_from: Mapping[tuple[str, int], int] | None = None):
        self._bootstrap_servers = bootstrap_servers
        self._already_published = already_published
        self._read_back_from = dict(read_back_from) if read_back_from is not None else None
        self._written = Metrics.counter("kafka_write", "records")
        self._fenced = Metrics.counter("kafka_write", "already_published_dropped")

    def setup(self) -> None:
        self._producer = _SharedProducers.acquire(self._bootstrap_servers)
        self._ledger: PublishedLedger | None = None
        if self._read_back_from is not None:
            self._ledger = PublishedLedger.of(self._bootstrap_servers, self._read_back_from)
            self._ledger.refresh()

    def process(self, message: KafkaMessage) -> None:
        if message.event_id is not None and (message.event_id in self._already_published
                                             or (self._ledger is not None and message.event_id in self._ledger)):
            self._fenced.inc()  # Sent by the job this one resumes, or before a restore; never twice.
            return
        self._pending.append(self._producer.send(message.topic, key=message.key, value=message.value,
                                                 timestamp_ms=message.timestamp_ms))
        self._written.inc()

    def start_bundle(self) -> None:
        self._pending: list = []

    def finish_bundle(self) -> None:
        # The bundle is not done until Kafka has every record of it; a record
        # Kafka refused fails the bundle, so the runner retries it. (The flush
        # also sends what other stages' writers have queued; that is harmless.)
        self._producer.flush()
        failed = [f.exception for f in self._pending if f.failed()]
        self._pending = []
        if failed:
            raise RuntimeError(f"Kafka refused {len(failed)} record(s) of this bundle: {failed[0]!r}")

    def teardown(self) -> None:
        if getattr(self, "_producer", None) is not None:
            self._producer = None
            _SharedProducers.release(self._bootstrap_servers)


@dataclasses.dataclass
class WriteToKafka(beam.PTransform):
    """Writes :class:`KafkaMessage` elements; each bundle is flushed before it ends.

    Attributes:
        bootstrap_servers: The cluster.
        already_published: Ids a resumed job must not send again
            (see :mod:`pipelines.recovery`).
        read_back_from: For a runner that restores jobs from checkpoints: the
            offsets (topic, partition: offset) from which this job's outputs
            begin; every writer set up reads back the ids published since and
            does not send them again (:class:`PublishedLedger`).
    """

    bootstrap_servers: str
    already_published: frozenset[str] = frozenset()
    read_back_from: Mapping[tuple[str, int], int] | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def expand(self, messages: beam.PCollection[KafkaMessage]) -> beam.PCollection[None]:
        return messages | "Send" >> beam.ParDo(
            _WriteFn(self.bootstrap_servers, self.already_published, self.read_back_from))
