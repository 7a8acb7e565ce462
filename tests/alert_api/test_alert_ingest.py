"""From alerts-topic records to the store: ``ingest_record`` and the consumer loop, without a broker."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from kafka.structs import OffsetAndMetadata, TopicPartition

from alert_api.config import AlertApiSettings
from alert_api.consumer import AlertConsumer, ConsumerState, IngestOutcome, ingest_record
from alert_api.store import AlertQuery, InMemoryAlertStore
from suibou.contracts import AlertEvent, RainReading
from suibou.settings import Settings

MakeAlert = Callable[..., AlertEvent]
SETTINGS = Settings(topic_prefix="t")
ALERTS = SETTINGS.topics.alerts
DEAD = SETTINGS.topics.dead_letter


# --------------------------------------------------------------------------- ingest_record


def test_good_record_is_stored(make_alert: MakeAlert) -> None:
    store = InMemoryAlertStore()
    result = ingest_record(store, make_alert().to_json(), source_topic=ALERTS)
    assert (result.outcome, result.event_id, result.dead_letter) == (IngestOutcome.STORED, "A-ZENPUKUJI-1.0", None)
    assert store.counts().messages == 1


def test_repeated_record_is_a_duplicate(make_alert: MakeAlert) -> None:
    store = InMemoryAlertStore()
    ingest_record(store, make_alert().to_json())
    assert ingest_record(store, make_alert().to_json()).outcome is IngestOutcome.DUPLICATE
    assert store.counts().messages == 1


def test_malformed_json_is_a_dead_letter() -> None:
    store = InMemoryAlertStore()
    result = ingest_record(store, b'{"schema": "alert_event/1",', source_topic=ALERTS, partition=2, offset=41)
    assert result.outcome is IngestOutcome.DEAD_LETTER
    letter = result.dead_letter
    assert letter is not None
    assert letter.reason.startswith("not valid JSON")
    assert (letter.source_topic, letter.source_partition, letter.source_offset, letter.stage) == (
        ALERTS, 2, 41, "alert-api",
    )
    assert letter.payload == '{"schema": "alert_event/1",'
    assert store.counts().messages == 0


def test_other_schema_on_the_alerts_topic_is_a_dead_letter() -> None:
    reading = RainReading(
        event_id="r-1", event_time=dt.datetime(2005, 9, 4, 12, tzinfo=dt.UTC),
        station_id="RG-SUGINAMI", rain_mm=2.5, interval_s=60,
    )
    result = ingest_record(InMemoryAlertStore(), reading.to_json(), source_topic=ALERTS)
    assert result.dead_letter is not None
    assert "rain_reading/1 does not belong on the alerts topic" in result.dead_letter.reason


def test_alert_breaking_its_contract_is_a_dead_letter(make_alert: MakeAlert) -> None:
    data = json.loads(make_alert().to_json())
    data["level"] = 9
    result = ingest_record(InMemoryAlertStore(), json.dumps(data).encode())
    assert result.dead_letter is not None
    assert "level must be an integer 1-5" in result.dead_letter.reason


def test_tombstone_and_undecodable_bytes_are_dead_letters() -> None:
    tombstone = ingest_record(InMemoryAlertStore(), None)
    assert tombstone.dead_letter is not None and tombstone.dead_letter.payload == ""
    binary = ingest_record(InMemoryAlertStore(), b"\xff\xfe{")
    assert binary.dead_letter is not None and binary.dead_letter.payload == "\ufffd\ufffd{"


def test_store_errors_propagate(make_alert: MakeAlert) -> None:
    class BrokenStore(InMemoryAlertStore):
        def add(self, event: AlertEvent) -> bool:
            raise OSError("disk full")

    with pytest.raises(OSError):
        ingest_record(BrokenStore(), make_alert().to_json())


# --------------------------------------------------------------------------- the consumer loop


@dataclasses.dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


class Sent:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


class FakeConsumer:
    """Hands out prepared batches, then calls ``when_drained``."""

    def __init__(self, batches: list[dict[TopicPartition, list[Record]]], when_drained: Callable[[], None]) -> None:
        self.batches = batches
        self.when_drained = when_drained
        self.commits: list[Mapping[Any, Any]] = []
        self.closed = False

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> Mapping[Any, Sequence[Any]]:
        if not self.batches:
            self.when_drained()
            time.sleep(timeout_ms / 1000)
            return {}
        return self.batches.pop(0)

    def commit(self, offsets: Mapping[Any, Any] | None = None) -> None:
        self.commits.append(offsets or {})

    def close(self, autocommit: bool = True) -> None:
        assert autocommit is False
        self.closed = True


class FakeProducer:
    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.error = error
        self.closed = False

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Sent:
        self.sent.append((topic, value, key))
        return Sent(self.error)

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def run_consumer(
    store: InMemoryAlertStore,
    batches: list[dict[TopicPartition, list[Record]]],
    producer: FakeProducer,
) -> tuple[AlertConsumer, FakeConsumer]:
    """Runs the consumer loop in this thread until the batches are used up."""
    config = AlertApiSettings(retry_backoff_s=0.01, poll_timeout_ms=10)
    holder: dict[str, AlertConsumer] = {}
    kafka = FakeConsumer(batches, when_drained=lambda: holder["consumer"].stop())  # noqa: PLW0108 - holder is filled later
    consumer = AlertConsumer(SETTINGS, store, config, consumer_factory=lambda: kafka, producer_factory=lambda: producer)
    holder["consumer"] = consumer
    consumer.run()
    return consumer, kafka


def test_batch_is_stored_then_committed_after_its_last_record(make_alert: MakeAlert) -> None:
    store = InMemoryAlertStore()
    p0, p1 = TopicPartition(ALERTS, 0), TopicPartition(ALERTS, 1)
    batch = {
        p0: [Record(ALERTS, 0, 7, make_alert("A").to_json()), Record(ALERTS, 0, 8, make_alert("A").to_json())],
        p1: [Record(ALERTS, 1, 3, b"not json", key=b"R-1")],
    }
    producer = FakeProducer()
    consumer, kafka = run_consumer(store, [batch], producer)

    assert [a.alert_id for a in store.list_alerts(AlertQuery())] == ["A"]
    assert kafka.commits == [{p0: OffsetAndMetadata(9, "", -1), p1: OffsetAndMetadata(4, "", -1)}]
    [(topic, value, key)] = producer.sent
    assert (topic, key) == (DEAD, b"R-1")
    assert json.loads(value or b"")["source_offset"] == 3
    status = consumer.status
    assert (status.state, status.stored, status.duplicates, status.dead_letters) == (ConsumerState.STOPPED, 1, 1, 1)
    assert kafka.closed and producer.closed


def test_nothing_is_committed_when_the_store_fails(make_alert: MakeAlert) -> None:
    class FailingOnce(InMemoryAlertStore):
        failed = False

        def add(self, event: AlertEvent) -> bool:
            if not self.failed:
                self.failed = True
                raise OSError("database is locked")
            return super().add(event)

    store = FailingOnce()
    batch = {TopicPartition(ALERTS, 0): [Record(ALERTS, 0, 0, make_alert().to_json())]}
    # The first connection's batch fails; the reconnected consumer reads it again.
    consumer, kafka = run_consumer(store, [batch, batch], FakeProducer())
    assert len(kafka.commits) == 1
    assert store.counts().messages == 1
    assert consumer.status.last_error == "OSError: database is locked"


def test_nothing_is_committed_when_a_dead_letter_is_not_acknowledged() -> None:
    batch = {TopicPartition(ALERTS, 0): [Record(ALERTS, 0, 0, b"{}")]}
    consumer, kafka = run_consumer(InMemoryAlertStore(), [batch], FakeProducer(error=TimeoutError("no ack")))
    assert kafka.commits == []
    assert consumer.status.last_error == "TimeoutError: no ack"


def test_start_and_stop_run_the_loop_on_a_thread(make_alert: MakeAlert) -> None:
    store = InMemoryAlertStore()
    batch = {TopicPartition(ALERTS, 0): [Record(ALERTS, 0, 0, make_alert().to_json())]}
    kafka = FakeConsumer([batch], when_drained=lambda: None)
    consumer = AlertConsumer(
        SETTINGS, store, AlertApiSettings(poll_timeout_ms=10),
        consumer_factory=lambda: kafka, producer_factory=FakeProducer,
    )
    consumer.start()
    try:
        for _ in range(500):
            if kafka.commits:
                break
            time.sleep(0.01)
        assert consumer.status.state is ConsumerState.RUNNING
    finally:
        consumer.stop(timeout=5)
    assert consumer.status.state is ConsumerState.STOPPED
    assert kafka.closed and store.counts().messages == 1


class UnassignedConsumer(FakeConsumer):
    """A group member whose assignment came back empty (or not, with ``partitions``)."""

    def __init__(self, partitions: set[TopicPartition]) -> None:
        super().__init__([], when_drained=lambda: None)
        self.partitions = partitions

    def assignment(self) -> set[TopicPartition]:
        return self.partitions


@pytest.mark.parametrize("partitions", [set(), {TopicPartition(ALERTS, 0)}], ids=["none", "one"])
def test_a_consumer_that_holds_no_partition_joins_its_group_again(partitions: set[TopicPartition]) -> None:
    # kafka-python's leader can assign from metadata that lacks the topic and then never rebalance:
    # the API would read nothing until restarted.
    opened: list[UnassignedConsumer] = []

    def factory() -> UnassignedConsumer:
        opened.append(UnassignedConsumer(partitions))
        return opened[-1]

    consumer = AlertConsumer(SETTINGS, InMemoryAlertStore(),
                             AlertApiSettings(poll_timeout_ms=10, unassigned_rejoin_s=0.2, retry_backoff_s=0.05),
                             consumer_factory=factory, producer_factory=FakeProducer)
    consumer.start()
    try:
        time.sleep(1.0)
    finally:
        consumer.stop(timeout=5)
    if partitions:
        assert len(opened) == 1 and consumer.status.last_error is None
    else:
        assert len(opened) >= 2 and all(c.closed for c in opened)
        assert "no partition of t.alerts assigned for 0.2 s" in (consumer.status.last_error or "")
