"""The console's Kafka consumer, against an in-memory topic source: bounded warm-up, folding, retries."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

from kafka import TopicPartition  # type: ignore[import-untyped]

from alert_api.config import AlertApiSettings
from alert_api.console.consumer import FeedState, StatusConsumer, console_topics
from alert_api.console.view import StationView
from suibou.settings import Settings

SETTINGS = Settings(topic_prefix="t")


@dataclasses.dataclass
class Record:
    value: bytes | None


class FakeTopics:
    """Topics as lists of record values; ``poll`` hands out what lies after each assigned partition's position."""

    def __init__(self, records: Mapping[str, list[bytes]], missing: set[str] | None = None) -> None:
        self.records = {TopicPartition(topic, 0): values for topic, values in records.items()}
        self.missing = missing or set()
        self.positions: dict[Any, int] = {}
        self.seeks: dict[Any, int] = {}
        self.closed = False

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return None if topic in self.missing else {0}

    def assign(self, partitions: Sequence[Any]) -> None:
        self.positions = dict.fromkeys(partitions, 0)

    def beginning_offsets(self, partitions: Sequence[Any]) -> Mapping[Any, int]:
        return dict.fromkeys(partitions, 0)

    def end_offsets(self, partitions: Sequence[Any]) -> Mapping[Any, int]:
        return {p: len(self.records.get(p, [])) for p in partitions}

    def seek(self, partition: Any, offset: int) -> None:
        self.positions[partition] = self.seeks[partition] = offset

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> Mapping[Any, Sequence[Any]]:
        batch = {}
        for partition, position in self.positions.items():
            values = self.records.get(partition, [])[position:]
            if values:
                batch[partition] = [Record(v) for v in values]
                self.positions[partition] = position + len(values)
        if not batch:
            time.sleep(timeout_ms / 1000)
        return batch

    def close(self, autocommit: bool = False) -> None:
        self.closed = True


def wait_for(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_consumer_rereads_a_bounded_span_and_folds_every_topic(storm_feed: Any) -> None:
    topics = SETTINGS.topics
    by_topic: dict[str, list[bytes]] = {topic: [] for topic in console_topics(SETTINGS)}
    for event in storm_feed.events:
        topic = {"rain_status/1": topics.rain_status, "level_status/1": topics.level_status,
                 "risk_score/1": topics.risk_scores}[event.SCHEMA]
        by_topic[topic].append(event.to_json())
    by_topic[topics.faults] = [storm_feed.fault("RG-ASAGAYA", storm_feed.events[-1].event_time).to_json(), b"{bad"]
    source = FakeTopics(by_topic)
    view = StationView()
    config = AlertApiSettings(poll_timeout_ms=10, console_warmup_records=100)
    consumer = StatusConsumer(SETTINGS, view, config, consumer_factory=lambda: source)
    consumer.start()
    try:
        wait_for(lambda: consumer.status.invalid == 1 and consumer.status.applied > 0)
        assert consumer.status.state is FeedState.RUNNING
    finally:
        consumer.stop()
    assert source.closed and consumer.status.state is FeedState.STOPPED
    level_partition = TopicPartition(topics.level_status, 0)
    assert source.seeks[level_partition] == len(by_topic[topics.level_status]) - 100
    assert source.seeks[TopicPartition(topics.faults, 0)] == 0
    stream = view.state.streams[storm_feed.drill_id]
    assert stream.stations["RG-ASAGAYA"].fault is not None
    assert stream.stations["WL-ZENPUKUJI-NARITA"].latest.event_time == storm_feed.events[-1].event_time
    assert len(stream.stations["WL-ZENPUKUJI-NARITA"].history) < 100  # only the re-read span


def test_a_missing_topic_is_retried_and_reported() -> None:
    source = FakeTopics({}, missing={SETTINGS.topics.faults})
    consumer = StatusConsumer(SETTINGS, StationView(), AlertApiSettings(retry_backoff_s=0.05),
                              consumer_factory=lambda: source)
    consumer.start()
    try:
        wait_for(lambda: consumer.status.state is FeedState.RETRYING)
        assert "does not exist" in (consumer.status.last_error or "")
    finally:
        consumer.stop()
