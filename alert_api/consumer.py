"""Reads alert events from Kafka into the alert store.

Delivery is at least once: offsets are committed only after every record of a
batch is stored (or, if unusable, published as a dead letter and acknowledged
by the broker). The store ignores a message it already has, so a batch read
again after a crash or a rebalance changes nothing: effectively once.

The per-record logic is :func:`ingest_record`, a function of the store and the
raw bytes; :class:`AlertConsumer` only moves records between Kafka and it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from alert_api.background import RetryingLoop
from alert_api.config import AlertApiSettings
from alert_api.metrics import ApiMetrics
from alert_api.store import AlertStore
from suibou.contracts import MAX_MESSAGE_BYTES, AlertEvent, ContractError, DeadLetter, parse_event
from suibou.kafka_clients import open_consumer, open_producer
from suibou.settings import Settings

log = logging.getLogger(__name__)

#: ``DeadLetter.stage`` of messages the alert API could not use.
STAGE = "alert-api"


# --------------------------------------------------------------------------- per record


class IngestOutcome(str, enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"


@dataclasses.dataclass(frozen=True)
class IngestResult:
    """What happened to one record.

    Attributes:
        outcome: Stored, duplicate (already stored) or dead letter.
        event_id: The alert message's id, when it parsed.
        dead_letter: The dead letter to publish, when the record was unusable.
        exercise: Whether the message is an exercise, when it parsed.
    """

    outcome: IngestOutcome
    event_id: str | None = None
    dead_letter: DeadLetter | None = None
    exercise: bool | None = None


def ingest_record(
    store: AlertStore,
    raw: bytes | str | None,
    *,
    source_topic: str = "",
    partition: int | None = None,
    offset: int | None = None,
) -> IngestResult:
    """Parses one record of the alerts topic and stores it.

    Args:
        store: Where alert messages go.
        raw: The record value as read from Kafka (``None`` for a tombstone).
        source_topic: Topic of the record, for the dead letter.
        partition: Partition of the record, for the dead letter.
        offset: Offset of the record, for the dead letter.

    Returns:
        The outcome. A record that is not a valid ``alert_event`` yields a
        :class:`~suibou.contracts.DeadLetter` for the caller to publish.

    Raises:
        Exception: Whatever the store raises; the record was not handled and
            must be read again.
    """
    try:
        event = _parse_alert(raw)
    except ContractError as error:
        letter = DeadLetter(
            reason=str(error),
            source_topic=source_topic,
            payload=_payload_text(raw),
            source_partition=partition,
            source_offset=offset,
            stage=STAGE,
        )
        return IngestResult(IngestOutcome.DEAD_LETTER, dead_letter=letter)
    outcome = IngestOutcome.STORED if store.add(event) else IngestOutcome.DUPLICATE
    return IngestResult(outcome, event_id=event.event_id, exercise=event.exercise)


def _parse_alert(raw: bytes | str | None) -> AlertEvent:
    if raw is None:
        raise ContractError("empty record (no value)")
    event = parse_event(raw)
    if not isinstance(event, AlertEvent):
        raise ContractError(
            f"{event.SCHEMA} does not belong on the alerts topic, which carries {AlertEvent.SCHEMA} only"
        )
    return event


def _payload_text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return text[:MAX_MESSAGE_BYTES]


# --------------------------------------------------------------------------- Kafka edge


class RecordConsumer(Protocol):
    """The part of ``kafka.KafkaConsumer`` that :class:`AlertConsumer` uses."""

    def poll(self, timeout_ms: int = ..., max_records: int | None = ...) -> Mapping[Any, Sequence[Any]]: ...

    def commit(self, offsets: Mapping[Any, Any] | None = ...) -> None: ...

    def close(self, autocommit: bool = ...) -> None: ...


class RecordProducer(Protocol):
    """The part of ``kafka.KafkaProducer`` that :class:`AlertConsumer` uses."""

    def send(self, topic: str, value: bytes | None = ..., key: bytes | None = ...) -> Any: ...

    def close(self, timeout: float | None = ...) -> None: ...


class ConsumerState(str, enum.Enum):
    DISABLED = "disabled"
    STOPPED = "stopped"
    CONNECTING = "connecting"
    RUNNING = "running"
    RETRYING = "retrying"


@dataclasses.dataclass(frozen=True)
class ConsumerStatus:
    """A snapshot of the consumer, for the health check.

    Attributes:
        state: What the consumer thread is doing.
        stored: Messages stored since start.
        duplicates: Messages already in the store, since start.
        dead_letters: Records sent to the dead-letter topic, since start.
        last_error: The latest error that made the consumer reconnect.
        last_commit_at: When offsets were last committed (UTC).
        lag: Records on the broker after the last stored one, summed over the
            partitions read so far (from the fetch responses' high-water marks).
    """

    state: ConsumerState
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    last_error: str | None = None
    last_commit_at: dt.datetime | None = None
    lag: int | None = None


def member_instance_id(group: str) -> str:
    """This process's static member id in ``group``: the same for every consumer the process builds,
    distinct between processes (host and process id), within Kafka's 249 characters of ``[A-Za-z0-9._-]``.

    Examples:
        >>> member_instance_id("suibou-alert-api").startswith("suibou-alert-api-")
        True
    """
    raw = f"{group}-{socket.gethostname()}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9._-]", "-", raw)[:249]


class NoPartitionAssigned(KafkaError):
    """The consumer has held no partition for too long; it reconnects and joins its group again."""

    retriable = True


def _holds_partitions(consumer: RecordConsumer) -> bool:
    """Whether the consumer holds a partition (consumers that cannot say are taken to hold one)."""
    assignment = getattr(consumer, "assignment", None)
    return assignment is None or bool(assignment())


class AlertConsumer(RetryingLoop[ConsumerStatus]):
    """Consumes the alerts topic into an :class:`AlertStore` on a background thread.

    Any Kafka or store error closes the Kafka clients without committing; after
    ``retry_backoff_s`` the consumer reconnects and resumes from the last
    committed offsets, so nothing is skipped.

    Args:
        settings: Kafka cluster and topic names.
        store: Where alert messages go.
        config: Consumer group and timing; defaults to the environment's.
        consumer_factory: Builds the Kafka consumer (tests pass a fake).
        producer_factory: Builds the dead-letter producer (tests pass a fake).
        metrics: Counts the messages read and stored.
    """

    thread_name = "alert-consumer"

    def __init__(
        self,
        settings: Settings,
        store: AlertStore,
        config: AlertApiSettings | None = None,
        *,
        consumer_factory: Callable[[], RecordConsumer] | None = None,
        producer_factory: Callable[[], RecordProducer] | None = None,
        metrics: ApiMetrics | None = None,
    ) -> None:
        super().__init__(config or AlertApiSettings(), ConsumerStatus(ConsumerState.STOPPED))
        self._metrics = metrics
        self._next_offsets: dict[Any, int] = {}
        self._settings = settings
        self._store = store
        self._new_consumer = consumer_factory or self._kafka_consumer
        self._new_producer = producer_factory or self._kafka_producer

    def _on_stopped(self) -> None:
        self._update(state=ConsumerState.STOPPED)

    def _on_error(self, error: Exception) -> None:
        backoff = self._config.retry_backoff_s
        if isinstance(error, KafkaError):  # broker unreachable, rebalance: expected, no traceback
            log.warning("alert consumer: %s; reconnecting in %.1f s", error, backoff)
        else:
            log.exception("alert consumer failed; reconnecting in %.1f s", backoff)  # noqa: LOG004 - in run()'s except
        self._update(state=ConsumerState.RETRYING, last_error=f"{type(error).__name__}: {error}")

    def _consume(self) -> None:
        self._update(state=ConsumerState.CONNECTING)
        self._next_offsets = {}  # partitions may move to another replica across a reconnect
        consumer = self._new_consumer()
        # The dead-letter producer is opened on the first dead letter only: a healthy feed (and an
        # outage) holds no producer connection.
        producer: list[RecordProducer] = []
        try:
            self._update(state=ConsumerState.RUNNING)
            unassigned_since = time.monotonic()
            reach = self._reach_watch()
            while not self._stopping.is_set():
                reach.check(consumer)
                batch = consumer.poll(timeout_ms=self._config.poll_timeout_ms,
                                      max_records=self._config.max_poll_records)
                if batch:
                    self._handle_batch(consumer, lambda: producer[0] if producer else self._open_producer(producer),
                                       batch)
                self._measure_lag(consumer)
                if _holds_partitions(consumer):
                    unassigned_since = time.monotonic()
                elif time.monotonic() - unassigned_since > self._config.unassigned_rejoin_s:
                    raise NoPartitionAssigned(
                        f"no partition of {self._settings.topics.alerts} assigned for "
                        f"{self._config.unassigned_rejoin_s:g} s (a stale group assignment, or more "
                        f"replicas in group {self._config.consumer_group} than partitions)")
        finally:
            try:
                for opened in producer:
                    opened.close(timeout=self._config.dead_letter_timeout_s)
            finally:
                consumer.close(autocommit=False)

    def _open_producer(self, holder: list[RecordProducer]) -> RecordProducer:
        holder.append(self._new_producer())
        return holder[0]

    def _handle_batch(
        self, consumer: RecordConsumer, producer: Callable[[], RecordProducer], batch: Mapping[Any, Sequence[Any]]
    ) -> None:
        """Stores a polled batch, then commits the offset after its last record."""
        sends = []
        offsets = {}
        for partition, records in batch.items():
            for record in records:
                result = ingest_record(
                    self._store,
                    record.value,
                    source_topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                )
                if result.dead_letter is not None:
                    log.warning("dead letter from %s[%d]@%d: %s", record.topic, record.partition,
                                record.offset, result.dead_letter.reason)
                    sends.append(producer().send(self._settings.topics.dead_letter,
                                               value=result.dead_letter.to_json(), key=record.key))
                self._count(result.outcome)
                if self._metrics is not None:
                    self._metrics.alert_message(exercise=result.exercise,
                                                stored=result.outcome is IngestOutcome.STORED)
            if records:
                offsets[partition] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
                self._next_offsets[partition] = records[-1].offset + 1
        for sent in sends:
            sent.get(timeout=self._config.dead_letter_timeout_s)
        consumer.commit(offsets)
        self._update(last_commit_at=dt.datetime.now(dt.UTC))

    def _measure_lag(self, consumer: RecordConsumer) -> None:
        """Records between the next one to read and the high-water mark, summed over the assigned partitions
        (``None`` while any of them is not known yet: before its first fetch, or during a rebalance)."""
        highwater = getattr(consumer, "highwater", None)
        if highwater is None:
            return
        assignment = getattr(consumer, "assignment", None)
        partitions = set(assignment()) if assignment is not None else set(self._next_offsets)
        if not partitions:
            return
        position = getattr(consumer, "position", None)
        lag: int | None = 0
        for partition in partitions:
            mark = highwater(partition)
            offset = self._next_offsets.get(partition)
            if offset is None and position is not None:
                try:
                    offset = position(partition, timeout_ms=100)
                except Exception:  # noqa: BLE001 - unknown for now
                    offset = None
            if mark is None or offset is None:
                lag = None
                break
            lag = (lag or 0) + max(0, int(mark) - int(offset))
        self._update(lag=lag)

    def _count(self, outcome: IngestOutcome) -> None:
        field = {
            IngestOutcome.STORED: "stored",
            IngestOutcome.DUPLICATE: "duplicates",
            IngestOutcome.DEAD_LETTER: "dead_letters",
        }[outcome]
        with self._lock:
            self._status = dataclasses.replace(self._status, **{field: getattr(self._status, field) + 1})

    def _kafka_consumer(self) -> RecordConsumer:
        consumer: RecordConsumer = open_consumer(
            self._settings.topics.alerts,
            bootstrap_servers=self._settings.bootstrap_servers,
            group_id=self._config.consumer_group,
            # Static membership: a consumer built anew after an outage (its predecessor could not leave the
            # group) takes its predecessor's place at once, instead of waiting for the group to drop it.
            group_instance_id=member_instance_id(self._config.consumer_group),
            client_id=self._config.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._config.max_poll_records,
            bootstrap_timeout_ms=self._config.connect_timeout_ms,
        )
        return consumer

    def _kafka_producer(self) -> RecordProducer:
        producer: RecordProducer = open_producer(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=f"{self._config.consumer_group}-dead-letters",
            acks="all",
            bootstrap_timeout_ms=self._config.connect_timeout_ms,
        )
        return producer
