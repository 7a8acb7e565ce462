"""Reads the pipeline's status, fault, score and camera topics into the console's station view.

The view lives in memory, so this consumer belongs to no consumer group and
commits nothing: on every (re)connect it assigns itself every partition of
``status.rain``, ``status.level``, ``faults``, ``obs.camera`` and
``risk.scores``, re-reads at most ``console_warmup_records`` of the latest
records of each (bounded start-up, whatever the record timestamps: drills
replay old storms), and then follows them. Folding is idempotent, so reading a
record twice changes nothing. The per-record logic is
:func:`alert_api.console.view.ingest_status`.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from kafka import TopicPartition
from kafka.errors import KafkaError

from alert_api.background import RetryingLoop
from alert_api.config import AlertApiSettings
from alert_api.console.view import StationView, StatusOutcome, ingest_status
from suibou.kafka_clients import open_consumer
from suibou.settings import Settings

log = logging.getLogger(__name__)


class TopicSource(Protocol):
    """The part of ``kafka.KafkaConsumer`` that :class:`StatusConsumer` uses."""

    def partitions_for_topic(self, topic: str) -> set[int] | None: ...

    def assign(self, partitions: Sequence[Any]) -> None: ...

    def beginning_offsets(self, partitions: Sequence[Any]) -> Mapping[Any, int]: ...

    def end_offsets(self, partitions: Sequence[Any]) -> Mapping[Any, int]: ...

    def seek(self, partition: Any, offset: int) -> None: ...

    def poll(self, timeout_ms: int = ..., max_records: int | None = ...) -> Mapping[Any, Sequence[Any]]: ...

    def close(self, autocommit: bool = ...) -> None: ...


class FeedState(str, enum.Enum):
    DISABLED = "disabled"
    STOPPED = "stopped"
    CONNECTING = "connecting"
    RUNNING = "running"
    RETRYING = "retrying"


@dataclasses.dataclass(frozen=True)
class FeedStatus:
    """A snapshot of the console's consumer: its state and what it did with the records it read."""

    state: FeedState
    applied: int = 0
    unchanged: int = 0
    invalid: int = 0
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state.value, "applied": self.applied, "unchanged": self.unchanged,
                "invalid": self.invalid, "last_error": self.last_error}


class MissingTopic(RuntimeError):
    """A topic the console reads does not exist (yet)."""


def console_topics(settings: Settings) -> list[str]:
    topics = settings.topics
    return [topics.rain_status, topics.level_status, topics.faults, topics.camera, topics.risk_scores]


class StatusConsumer(RetryingLoop[FeedStatus]):
    """Follows the console's topics into a :class:`StationView` on a background thread.

    Args:
        settings: Kafka cluster and topic names.
        view: Where events are folded.
        config: Timing and the warm-up bound; defaults to the environment's.
        consumer_factory: Builds the Kafka consumer (tests pass a fake).
    """

    thread_name = "console-status-consumer"

    def __init__(self, settings: Settings, view: StationView, config: AlertApiSettings | None = None, *,
                 consumer_factory: Callable[[], TopicSource] | None = None) -> None:
        super().__init__(config or AlertApiSettings(), FeedStatus(FeedState.STOPPED))
        self._settings = settings
        self._view = view
        self._new_consumer = consumer_factory or self._kafka_consumer

    def _on_error(self, error: Exception) -> None:
        backoff = self._config.retry_backoff_s
        if isinstance(error, (KafkaError, MissingTopic)):
            log.warning("console status consumer: %s; retrying in %.1f s", error, backoff)
        else:
            log.exception("console status consumer failed; retrying in %.1f s", backoff)  # noqa: LOG004 - in run()'s except
        self._update(state=FeedState.RETRYING, last_error=f"{type(error).__name__}: {error}")

    def _on_stopped(self) -> None:
        self._update(state=FeedState.STOPPED)

    def _consume(self) -> None:
        self._update(state=FeedState.CONNECTING)
        consumer = self._new_consumer()
        try:
            partitions = []
            for topic in console_topics(self._settings):
                numbers = consumer.partitions_for_topic(topic)
                if not numbers:
                    raise MissingTopic(f"topic {topic} does not exist yet")
                partitions += [TopicPartition(topic, n) for n in sorted(numbers)]
            consumer.assign(partitions)
            begins = consumer.beginning_offsets(partitions)
            ends = consumer.end_offsets(partitions)
            for partition in partitions:
                consumer.seek(partition, max(begins[partition], ends[partition] - self._config.console_warmup_records))
            self._update(state=FeedState.RUNNING, last_error=None)
            reach = self._reach_watch()
            while not self._stopping.is_set():
                reach.check(consumer)
                batch = consumer.poll(timeout_ms=self._config.poll_timeout_ms,
                                      max_records=self._config.max_poll_records)
                for records in batch.values():
                    for record in records:
                        self._count(ingest_status(self._view, record.value))
        finally:
            consumer.close(autocommit=False)

    def _count(self, outcome: StatusOutcome) -> None:
        field = {StatusOutcome.APPLIED: "applied", StatusOutcome.UNCHANGED: "unchanged",
                 StatusOutcome.INVALID: "invalid"}[outcome]
        with self._lock:
            self._status = dataclasses.replace(self._status, **{field: getattr(self._status, field) + 1})

    def _kafka_consumer(self) -> TopicSource:
        consumer: TopicSource = open_consumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            group_id=None,
            client_id=f"{self._config.consumer_group}-console",
            enable_auto_commit=False,
            max_poll_records=self._config.max_poll_records,
            bootstrap_timeout_ms=self._config.connect_timeout_ms,
        )
        return consumer


__all__ = ["FeedState", "FeedStatus", "MissingTopic", "StatusConsumer", "TopicSource", "console_topics"]
