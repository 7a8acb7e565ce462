"""The live fusion job as the alert API sees it: the newest ``job_status/1`` heartbeat, judged against the clock.

The job's supervisor publishes a heartbeat every few seconds to
``<prefix>.job.status`` (keyed by job name, ``live``). :class:`JobStatusConsumer`
follows that topic into a :class:`JobBoard`; :func:`describe_job` (pure) turns
the newest heartbeat and the current time into what ``/healthz`` and the console
show: ``running``, ``starting``, ``restarting``, ``behind by N s``, ``stopped``,
or ``not seen`` when no heartbeat came for ``job_not_seen_s`` (30 s) or ever. A
job whose heartbeats stop is never reported as fine.

Examples:
    >>> import datetime as dt
    >>> from suibou.contracts import JobState, JobStatus
    >>> t = dt.datetime(2026, 12, 6, 12, tzinfo=dt.timezone.utc)
    >>> beat = JobStatus(event_id="live:1", event_time=t, job="live", state=JobState.RUNNING, since=t, behind_s=75)
    >>> describe_job(beat, t + dt.timedelta(seconds=5)).summary
    'behind by 75 s'
    >>> describe_job(beat, t + dt.timedelta(seconds=31)).summary
    'not seen'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

from kafka import TopicPartition
from kafka.errors import KafkaError

from alert_api.background import RetryingLoop
from alert_api.config import AlertApiSettings
from alert_api.console.consumer import FeedState, FeedStatus, MissingTopic, TopicSource
from alert_api.metrics import JobSnapshot
from suibou.contracts import ContractError, JobState, JobStatus, format_time, parse_event
from suibou.kafka_clients import open_consumer
from suibou.settings import Settings

log = logging.getLogger(__name__)

#: The job the API reports on.
LIVE_JOB = "live"
#: Heartbeats re-read per partition on (re)connect: the newest is all that matters.
WARMUP_RECORDS = 20

Judgement = Literal["starting", "running", "behind", "restarting", "stopped", "not_seen"]


@dataclasses.dataclass(frozen=True)
class JobHealth:
    """What is known of a job now.

    Attributes:
        state: ``not_seen``, ``behind`` (running, but ``behind_s`` over the bound), or the heartbeat's state.
        summary: For people: ``running``, ``behind by 75 s``, ``not seen``…
        heartbeat: The newest heartbeat, if any.
        heartbeat_age_s: Seconds since it (by its event time).
    """

    state: Judgement
    summary: str
    heartbeat: JobStatus | None = None
    heartbeat_age_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        beat = self.heartbeat
        return {
            "state": self.state, "summary": self.summary,
            "heartbeat_at": format_time(beat.event_time) if beat else None,
            "heartbeat_age_s": None if self.heartbeat_age_s is None else round(self.heartbeat_age_s, 1),
            "since": format_time(beat.since) if beat else None,
            "restarts": beat.restarts if beat else None,
            "last_restart_reason": beat.last_restart_reason if beat else None,
            "behind_s": beat.behind_s if beat else None,
            "consumer_lag": beat.consumer_lag if beat else None,
        }

    def snapshot(self) -> JobSnapshot:
        """The job for the metrics (``behind`` counts as running there; ``behind_s`` says by how much)."""
        beat = self.heartbeat
        if beat is None or self.state == "not_seen":
            return JobSnapshot("not_seen", self.heartbeat_age_s, None if beat is None else beat.behind_s,
                               None if beat is None else beat.restarts)
        return JobSnapshot(beat.state.value, self.heartbeat_age_s, beat.behind_s, beat.restarts, beat.consumer_lag)


def describe_job(heartbeat: JobStatus | None, now: dt.datetime, *, not_seen_after_s: float = 30.0,
                 behind_after_s: float = 60.0) -> JobHealth:
    """Judges the newest heartbeat of a job at ``now``."""
    if heartbeat is None:
        return JobHealth("not_seen", "not seen")
    age = max(0.0, (now - heartbeat.event_time).total_seconds())
    if age > not_seen_after_s:
        return JobHealth("not_seen", "not seen", heartbeat, age)
    if heartbeat.state is JobState.RUNNING and heartbeat.behind_s is not None and heartbeat.behind_s > behind_after_s:
        return JobHealth("behind", f"behind by {heartbeat.behind_s:.0f} s", heartbeat, age)
    return JobHealth(heartbeat.state.value, heartbeat.state.value, heartbeat, age)


class JobBoard:
    """The newest heartbeat of each job (thread-safe); an older heartbeat read later changes nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, JobStatus] = {}

    def fold(self, heartbeat: JobStatus) -> bool:
        """Keeps ``heartbeat`` if it is the job's newest; returns whether it changed anything."""
        with self._lock:
            current = self._latest.get(heartbeat.job)
            if current is not None and (current.event_time, current.event_id) >= (heartbeat.event_time,
                                                                                   heartbeat.event_id):
                return False
            self._latest[heartbeat.job] = heartbeat
            return True

    def latest(self, job: str = LIVE_JOB) -> JobStatus | None:
        with self._lock:
            return self._latest.get(job)


def ingest_heartbeat(board: JobBoard, raw: bytes | str | None) -> Literal["applied", "unchanged", "invalid"]:
    """Folds one record of the job status topic."""
    if raw is None:
        return "invalid"
    try:
        event = parse_event(raw)
    except ContractError as error:
        log.warning("job status record refused: %s", error)
        return "invalid"
    if not isinstance(event, JobStatus):
        log.warning("%s does not belong on the job status topic", event.SCHEMA)
        return "invalid"
    return "applied" if board.fold(event) else "unchanged"


class JobStatusConsumer(RetryingLoop[FeedStatus]):
    """Follows ``<prefix>.job.status`` into a :class:`JobBoard` (no consumer group, nothing committed).

    Args:
        settings: Kafka cluster and topic names.
        board: Where heartbeats go.
        config: Timing; defaults to the environment's.
        consumer_factory: Builds the Kafka consumer (tests pass a fake).
    """

    thread_name = "job-status-consumer"

    def __init__(self, settings: Settings, board: JobBoard, config: AlertApiSettings | None = None, *,
                 consumer_factory: Callable[[], TopicSource] | None = None) -> None:
        super().__init__(config or AlertApiSettings(), FeedStatus(FeedState.STOPPED))
        self._settings = settings
        self._board = board
        self._new_consumer = consumer_factory or self._kafka_consumer

    def _on_error(self, error: Exception) -> None:
        backoff = self._config.retry_backoff_s
        if isinstance(error, (KafkaError, MissingTopic)):
            log.warning("job status consumer: %s; retrying in %.1f s", error, backoff)
        else:
            log.exception("job status consumer failed; retrying in %.1f s", backoff)  # noqa: LOG004 - in run()'s except
        self._update(state=FeedState.RETRYING, last_error=f"{type(error).__name__}: {error}")

    def _on_stopped(self) -> None:
        self._update(state=FeedState.STOPPED)

    def _consume(self) -> None:
        self._update(state=FeedState.CONNECTING)
        consumer = self._new_consumer()
        try:
            topic = self._settings.topics.job_status
            numbers = consumer.partitions_for_topic(topic)
            if not numbers:
                raise MissingTopic(f"topic {topic} does not exist yet")
            partitions = [TopicPartition(topic, n) for n in sorted(numbers)]
            consumer.assign(partitions)
            begins = consumer.beginning_offsets(partitions)
            ends = consumer.end_offsets(partitions)
            for partition in partitions:
                consumer.seek(partition, max(begins[partition], ends[partition] - WARMUP_RECORDS))
            self._update(state=FeedState.RUNNING, last_error=None)
            reach = self._reach_watch()
            while not self._stopping.is_set():
                reach.check(consumer)
                batch = consumer.poll(timeout_ms=self._config.poll_timeout_ms, max_records=100)
                for records in batch.values():
                    for record in records:
                        outcome = ingest_heartbeat(self._board, record.value)
                        with self._lock:
                            self._status = dataclasses.replace(
                                self._status, **{outcome: getattr(self._status, outcome) + 1})
        finally:
            consumer.close(autocommit=False)

    def _kafka_consumer(self) -> TopicSource:
        consumer: TopicSource = open_consumer(
            bootstrap_servers=self._settings.bootstrap_servers, group_id=None,
            client_id=f"{self._config.consumer_group}-jobs", enable_auto_commit=False,
            bootstrap_timeout_ms=self._config.connect_timeout_ms,
        )
        return consumer


__all__ = ["LIVE_JOB", "JobBoard", "JobHealth", "JobStatusConsumer", "describe_job", "ingest_heartbeat"]
