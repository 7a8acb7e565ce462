"""Live operation end to end on the real broker: a simulated field gateway posts to the alert API served over
HTTP, whose ingest route produces to Kafka (acks=all, idempotent) exactly once per reading, keyed by station and
stamped with the event time; a job_status/1 heartbeat on the topic shows in ``/healthz``; the metrics count it."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from alert_api import create_app
from alert_api.config import AlertApiSettings
from replay_data.gateway import GatewayOptions, GatewaySimulator, HttpSink
from suibou.catalogue import StationCatalogue
from suibou.contracts import JobState, JobStatus
from suibou.infra import kafka
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = pytest.mark.e2e

ADMIN_KEY = "e2e-admin-key-" + "x" * 32
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    """The project's broker (started if needed) with topics of this test's own."""
    settings = Settings(topic_prefix=f"test-{uuid.uuid4().hex[:8]}")
    kafka.ensure_running(settings)
    kafka.ensure_topics(settings, settings.topics.all_topics)
    yield settings
    delete_topics(settings)


def read_topic(settings: Settings, topic: str, expected: int, timeout_s: float = 30.0) -> list[Any]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=2000)
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
            if len(records) >= expected:
                # Anything more (a second copy) would have arrived with these; look once more.
                for batch in consumer.poll(timeout_ms=1500).values():
                    records.extend(batch)
                break
    finally:
        consumer.close()
    return records


def test_a_gateway_reports_through_the_api_into_kafka_once_and_the_live_job_shows(
    settings: Settings, tmp_path: Path, serve: Callable[[Any], Any]
) -> None:
    app = create_app(settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'alerts.db'}"}),
                     start_consumer=False, start_webhooks=False, start_job_feed=True,
                     api_settings=AlertApiSettings(admin_key=ADMIN_KEY, retry_backoff_s=0.5, poll_timeout_ms=200))
    catalogue = StationCatalogue.load("kanda-basin")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=60)
    simulator = GatewaySimulator(catalogue, start, GatewayOptions(interval_s=10, seed=3,
                                                                  stations=("RG-ASAGAYA", "WL-KANDA-EIFUKU")))
    readings = simulator.readings_until(start + dt.timedelta(seconds=60))
    with serve(app) as url:
        created = httpx.post(f"{url}/v1/admin/gateways", headers=ADMIN,
                             json={"name": "kanda", "stations": ["RG-ASAGAYA", "WL-KANDA-EIFUKU"]})
        sink = HttpSink(url, created.json()["api_key"])
        first = sink.send(readings)
        again = sink.send(readings)
        assert (first.accepted, first.rejected, first.retry) == (len(readings), 0, ())
        assert (again.accepted, again.duplicate) == (0, len(readings))

        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
        now = dt.datetime.now(dt.UTC)
        beat = JobStatus(event_id=f"live:{now.timestamp():.0f}", event_time=now, job="live", state=JobState.RUNNING,
                         since=now - dt.timedelta(minutes=5), restarts=0, behind_s=2.0, consumer_lag=0)
        producer.send(settings.topics.job_status, value=beat.to_json(), key=b"live").get(timeout=30)
        producer.close()
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/healthz").json()["live_job"] != "running":
            assert time.monotonic() < deadline, httpx.get(f"{url}/v1/health", headers=ADMIN).json()
            time.sleep(0.2)
        metrics = httpx.get(f"{url}/metrics", headers=ADMIN).text
        assert 'suibou_api_ingest_readings_accepted_total{feed="rain"} 7.0' in metrics
        assert 'suibou_api_ingest_readings_duplicate_total{feed="level"} 7.0' in metrics

    rain = read_topic(settings, settings.topics.rain, 7)
    level = read_topic(settings, settings.topics.level, 7)
    assert len(rain) == 7 and len(level) == 7  # once each, though the batch was sent twice
    for record in rain + level:
        value = json.loads(record.value)
        assert record.key == value["station_id"].encode()
        assert record.timestamp == round(dt.datetime.fromisoformat(value["event_time"]).timestamp() * 1000)
        assert value["exercise"] is False


def test_the_alert_consumer_reports_its_lag_and_counts_what_it_stores(
    settings: Settings, tmp_path: Path, serve: Callable[[Any], Any]
) -> None:
    from kafka import KafkaProducer

    from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    alert = AlertEvent(event_id="e2e-1.0", event_time=now, alert_id="e2e-1", sequence=0, msg_type=MsgType.ALERT,
                       area_id="R-KANDA-UPPER", area_kind=AreaKind.REACH, hazard=Hazard.FLOOD,
                       level=AlertLevel.CAUTION, headline="e2e")
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    producer.send(settings.topics.alerts, value=alert.to_json(), key=b"R-KANDA-UPPER").get(timeout=30)
    producer.close()
    app = create_app(settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'alerts.db'}"}),
                     start_consumer=True, start_webhooks=False, start_status_feed=False, start_job_feed=False,
                     api_settings=AlertApiSettings(admin_key=ADMIN_KEY, consumer_group=f"e2e-{uuid.uuid4().hex[:6]}",
                                                   retry_backoff_s=0.5, poll_timeout_ms=200))
    with serve(app) as url:
        # A member that kafka-python's leader assigned nothing (from metadata that lacked the topic)
        # rejoins after ``unassigned_rejoin_s`` (30 s); a loaded machine may take more than one round.
        deadline = time.monotonic() + 180
        while True:
            text = httpx.get(f"{url}/metrics", headers=ADMIN).text
            if ('suibou_api_alert_messages_stored_total{exercise="false"} 1.0' in text
                    and "suibou_api_alert_consumer_lag_records 0.0" in text):
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.3)
        assert 'suibou_api_alert_consumer_state{state="running"} 1.0' in text
        assert httpx.get(f"{url}/v1/health", headers=ADMIN).json()["consumer"]["lag"] == 0
