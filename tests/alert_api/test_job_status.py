"""The live job's heartbeats: judged against a clock (pure), followed from the topic (a fake source), and shown
by ``/healthz``, ``/v1/health`` and the metrics with an injected clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import TopicPartition  # type: ignore[import-untyped]

from alert_api import create_app
from alert_api.console.consumer import FeedState
from alert_api.jobs import JobBoard, JobStatusConsumer, describe_job, ingest_heartbeat
from alert_api.store import InMemoryAlertStore
from suibou.contracts import JobState, JobStatus
from suibou.settings import Settings

T = dt.datetime(2026, 12, 6, 22, 0, tzinfo=dt.UTC)
ADMIN = {"Authorization": "Bearer test-admin-key-" + "x" * 32}


def beat(seconds: float = 0, state: JobState = JobState.RUNNING, **fields: Any) -> JobStatus:
    at = T + dt.timedelta(seconds=seconds)
    return JobStatus(event_id=f"live:{at.timestamp():.0f}", event_time=at, job="live", state=state,
                     since=T - dt.timedelta(minutes=10), **fields)


@pytest.mark.parametrize(("heartbeat", "after_s", "summary", "state"), [
    (None, 0, "not seen", "not_seen"),
    (beat(), 5, "running", "running"),
    (beat(behind_s=60.0), 5, "running", "running"),
    (beat(behind_s=75.4), 5, "behind by 75 s", "behind"),
    (beat(state=JobState.RESTARTING, restarts=2), 5, "restarting", "restarting"),
    (beat(state=JobState.STARTING), 5, "starting", "starting"),
    (beat(state=JobState.STOPPED), 5, "stopped", "stopped"),
    (beat(), 30, "running", "running"),
    (beat(), 30.5, "not seen", "not_seen"),
    (beat(state=JobState.STOPPED), 3600, "not seen", "not_seen"),
])
def test_a_heartbeat_is_judged_against_the_clock(heartbeat: JobStatus | None, after_s: float, summary: str,
                                                 state: str) -> None:
    health = describe_job(heartbeat, T + dt.timedelta(seconds=after_s))
    assert (health.summary, health.state) == (summary, state)


def test_the_board_keeps_the_newest_heartbeat_of_each_job() -> None:
    board = JobBoard()
    assert ingest_heartbeat(board, beat(10).to_json()) == "applied"
    assert ingest_heartbeat(board, beat(5, state=JobState.STOPPED).to_json()) == "unchanged"
    assert ingest_heartbeat(board, beat(10).to_json()) == "unchanged"
    assert ingest_heartbeat(board, b'{"schema": "job_status/1"}') == "invalid"
    assert ingest_heartbeat(board, None) == "invalid"
    latest = board.latest()
    assert latest is not None and latest.event_time == T + dt.timedelta(seconds=10)


@dataclasses.dataclass
class Record:
    value: bytes | None


class FakeTopic:
    """One topic of one partition, as a list of record values."""

    def __init__(self, topic: str, values: list[bytes] | None) -> None:
        self.partition = TopicPartition(topic, 0)
        self.values = values
        self.position = 0
        self.seeked: int | None = None

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return None if self.values is None else {0}

    def assign(self, partitions: Sequence[Any]) -> None:
        assert list(partitions) == [self.partition]

    def beginning_offsets(self, partitions: Sequence[Any]) -> Mapping[Any, int]:
        return {self.partition: 0}

    def end_offsets(self, partitions: Sequence[Any]) -> Mapping[Any, int]:
        return {self.partition: len(self.values or [])}

    def seek(self, partition: Any, offset: int) -> None:
        self.position = self.seeked = offset

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> Mapping[Any, Sequence[Any]]:
        values = (self.values or [])[self.position:]
        self.position += len(values)
        if not values:
            time.sleep(timeout_ms / 1000)
            return {}
        return {self.partition: [Record(v) for v in values]}

    def close(self, autocommit: bool = False) -> None:
        pass


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_consumer_rereads_only_the_latest_heartbeats_and_retries_while_the_topic_is_missing(
    make_settings: Callable[..., Any]
) -> None:
    settings = Settings(topic_prefix="t")
    config = make_settings(poll_timeout_ms=10, retry_backoff_s=0.05)
    missing = JobStatusConsumer(settings, JobBoard(), config, consumer_factory=lambda: FakeTopic("t.job.status", None))
    missing.start()
    wait_for(lambda: missing.status.state is FeedState.RETRYING)
    assert "does not exist" in (missing.status.last_error or "")
    missing.stop()
    source = FakeTopic("t.job.status", [beat(i).to_json() for i in range(100)])
    board = JobBoard()
    consumer = JobStatusConsumer(settings, board, config, consumer_factory=lambda: source)
    consumer.start()
    wait_for(lambda: consumer.status.applied == 20)
    consumer.stop()
    assert source.seeked == 80
    latest = board.latest()
    assert latest is not None and latest.event_time == T + dt.timedelta(seconds=99)


def test_healthz_the_health_document_and_the_metrics_follow_the_heartbeats(
    tmp_path: Path, make_settings: Callable[..., Any]
) -> None:
    now = [T]
    source = FakeTopic("suibou.job.status", [beat(0, restarts=1, last_restart_reason="harness exited",
                                                   behind_s=4.0, consumer_lag=12).to_json()])
    app = create_app(Settings(home=tmp_path), store=InMemoryAlertStore(), start_consumer=False,
                     start_webhooks=False, api_settings=make_settings(poll_timeout_ms=10), clock=lambda: now[0],
                     start_job_feed=True, job_consumer_factory=lambda: source)
    with TestClient(app) as client:
        wait_for(lambda: app.state.jobs.latest() is not None)
        now[0] = T + dt.timedelta(seconds=5)
        assert client.get("/healthz").json() == {"status": "ok", "live_job": "running"}
        detail = client.get("/v1/health", headers=ADMIN).json()
        assert detail["live_job"]["restarts"] == 1
        assert detail["live_job"]["last_restart_reason"] == "harness exited"
        assert detail["live_job"]["heartbeat_age_s"] == 5.0
        assert detail["job_feed"]["state"] == "running"
        metrics = client.get("/metrics", headers=ADMIN).text
        assert 'suibou_live_job_state{state="running"} 1.0' in metrics
        assert "suibou_live_job_restarts 1.0" in metrics
        assert "suibou_live_job_consumer_lag_records 12.0" in metrics
        app.state.jobs.fold(beat(10, behind_s=125.0))
        now[0] = T + dt.timedelta(seconds=12)
        assert client.get("/healthz").json()["live_job"] == "behind by 125 s"
        console = client.get("/v1/console/state", headers=ADMIN).json()["live_job"]
        assert (console["state"], console["summary"]) == ("behind", "behind by 125 s")
        assert "suibou_live_job_behind_seconds 125.0" in client.get("/metrics", headers=ADMIN).text
        app.state.jobs.fold(beat(20, state=JobState.RESTARTING, restarts=2))
        now[0] = T + dt.timedelta(seconds=21)
        assert client.get("/healthz").json()["live_job"] == "restarting"
        app.state.jobs.fold(beat(25, state=JobState.STOPPED))
        assert client.get("/healthz").json()["live_job"] == "stopped"
        now[0] = T + dt.timedelta(seconds=60)
        assert client.get("/healthz").json()["live_job"] == "not seen"
        metrics = client.get("/metrics", headers=ADMIN).text
        assert 'suibou_live_job_state{state="not_seen"} 1.0' in metrics
        assert 'suibou_live_job_state{state="stopped"} 0.0' in metrics
