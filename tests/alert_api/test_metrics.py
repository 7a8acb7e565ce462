"""``GET /metrics``: who may scrape, and that the values move with what the API does (alert consumer, webhook
queue and deliveries, ingest, HTTP requests), with one registry per app."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kafka import TopicPartition  # type: ignore[import-untyped]

from alert_api import create_app
from alert_api.config import AlertApiSettings
from alert_api.consumer import AlertConsumer
from alert_api.metrics import ApiMetrics
from alert_api.store import InMemoryAlertStore, SqlAlertStore
from suibou.settings import Settings

ADMIN = {"Authorization": "Bearer test-admin-key-" + "x" * 32}
T = dt.datetime(2026, 12, 6, 22, 0, tzinfo=dt.UTC)
MakeAlert = Callable[..., Any]


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` of a scrape (labels in any order); fails if it is absent."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if found == labels:
            return float(match.group(4))
    raise AssertionError(f"no sample {name}{labels}")


def make_app(tmp_path: Path, store: Any, make_settings: Callable[..., Any], **kwargs: Any) -> FastAPI:
    return create_app(Settings(home=tmp_path), store=store, start_consumer=False,
                      api_settings=make_settings(), **kwargs)


def test_metrics_need_the_admin_key_or_the_metrics_scope(api: TestClient, callers: Any) -> None:
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    _, reader = callers.partner("alerts:read", "exercises")
    assert api.get("/metrics", headers=reader).status_code == 403
    assert api.get("/metrics", headers=callers.officer()).status_code == 403
    _, scraper = callers.partner("metrics:read", name="prometheus")
    response = api.get("/metrics", headers=scraper)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "suibou_api_http_requests_total" in response.text
    assert api.get("/metrics", headers=ADMIN).status_code == 200
    assert api.get("/v1/alerts", headers=scraper).status_code == 403  # the scope opens nothing else


def test_http_requests_are_counted_by_route_template_and_status_class(api: TestClient) -> None:
    api.get("/v1/alerts/NO-SUCH-ALERT", headers=ADMIN)
    api.get("/v1/alerts/ANOTHER", headers=ADMIN)
    api.get("/no/such/path")
    api.get("/healthz")
    text = api.get("/metrics", headers=ADMIN).text
    assert value(text, "suibou_api_http_requests_total", route="/v1/alerts/{alert_id}", method="GET",
                 status="4xx") == 2
    assert value(text, "suibou_api_http_requests_total", route="unmatched", method="GET", status="4xx") == 1
    assert value(text, "suibou_api_http_requests_total", route="/healthz", method="GET", status="2xx") == 1
    assert value(text, "suibou_api_http_request_duration_seconds_count", route="/v1/alerts/{alert_id}",
                 method="GET") == 2
    assert "NO-SUCH-ALERT" not in text


def test_every_app_has_its_own_registry(tmp_path: Path, make_settings: Callable[..., Any]) -> None:
    with TestClient(make_app(tmp_path / "a", InMemoryAlertStore(), make_settings)) as one, \
            TestClient(make_app(tmp_path / "b", InMemoryAlertStore(), make_settings)) as two:
        one.get("/healthz")
        one.get("/healthz")
        two.get("/healthz")
        assert value(one.get("/metrics", headers=ADMIN).text, "suibou_api_http_requests_total",
                     route="/healthz", method="GET", status="2xx") == 2
        assert value(two.get("/metrics", headers=ADMIN).text, "suibou_api_http_requests_total",
                     route="/healthz", method="GET", status="2xx") == 1


def test_webhook_queue_depth_and_age_then_deliveries_by_outcome(
    store: SqlAlertStore, tmp_path: Path, make_settings: Callable[..., Any], make_alert: MakeAlert,
    callers_for: Callable[[TestClient], Any]
) -> None:
    now = [T]
    statuses = [500]
    app = make_app(tmp_path, store, make_settings, start_webhooks=False, clock=lambda: now[0])
    with TestClient(app) as client:
        _, partner = callers_for(client).partner("alerts:read", "webhooks:receive", "exercises")
        assert client.put("/v1/partner/webhook", headers=partner,
                          json={"url": "http://127.0.0.1:9/hooks"}).status_code == 200
        text = client.get("/metrics", headers=ADMIN).text
        assert value(text, "suibou_api_webhook_queue_depth") == 0
        assert value(text, "suibou_api_webhook_queue_age_seconds") == 0
        store.add(make_alert("ZEN"))
        store.add(make_alert("ZEN", 1, minutes=5))
        now[0] = T + dt.timedelta(seconds=5)
        text = client.get("/metrics", headers=ADMIN).text
        assert value(text, "suibou_api_webhook_queue_depth") == 2
        assert value(text, "suibou_api_webhook_queue_age_seconds") >= 5  # store rows are stamped by its own clock
    from alert_api.webhooks import DeliveryWorker, RetryPolicy

    worker = DeliveryWorker(store.db, RetryPolicy(max_attempts=2, base_s=0.01, max_delay_s=0.01, jitter=0),
                            allow_private=True, sender=lambda url, body, headers: statuses.pop(0) if statuses else 200,
                            metrics=app.state.metrics)
    worker.run_once()  # 500: failed, retried later
    time.sleep(0.02)
    worker.run_once()  # 200: delivered
    worker.run_once()  # the second message: 200
    text = app.state.metrics.render().decode()
    assert value(text, "suibou_api_webhook_deliveries_total", outcome="failed") == 1
    assert value(text, "suibou_api_webhook_deliveries_total", outcome="delivered") == 2
    statuses.extend([500, 500])
    store.add(make_alert("ZEN", 2, minutes=10))
    worker.run_once()
    time.sleep(0.02)
    worker.run_once()
    text = app.state.metrics.render().decode()
    assert value(text, "suibou_api_webhook_deliveries_total", outcome="dead_lettered") == 1


def test_ingest_counters_move_per_feed_and_reason(tmp_path: Path, make_settings: Callable[..., Any]) -> None:
    class Acked:
        def get(self, timeout: float | None = None) -> None:
            return None

    class Producer:
        def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                 timestamp_ms: int | None = None) -> Acked:
            return Acked()

        def close(self, timeout: float | None = None) -> None:
            pass

    app = make_app(tmp_path, InMemoryAlertStore(), make_settings, start_webhooks=False,
                   ingest_producer_factory=Producer)
    with TestClient(app) as client:
        key = client.post("/v1/admin/gateways", headers=ADMIN, json={"name": "g", "stations": ["RG-1"]}).json()
        gateway = {"Authorization": f"Bearer {key['api_key']}"}
        reading = {"schema": "rain_reading/1", "event_id": "r-1", "station_id": "RG-1", "event_time": T.isoformat(),
                   "rain_mm": 0.5, "interval_s": 60}
        client.post("/v1/ingest/readings", headers=gateway, json={"readings": [
            reading, {**reading, "event_id": "r-2", "station_id": "RG-2"}, {"schema": "nope"}]})
        client.post("/v1/ingest/readings", headers=gateway, json={"readings": [reading]})
        text = client.get("/metrics", headers=ADMIN).text
    assert value(text, "suibou_api_ingest_readings_accepted_total", feed="rain") == 1
    assert value(text, "suibou_api_ingest_readings_duplicate_total", feed="rain") == 1
    assert value(text, "suibou_api_ingest_readings_rejected_total", reason="station") == 1
    assert value(text, "suibou_api_ingest_readings_rejected_total", reason="invalid") == 1
    assert value(text, "suibou_api_ingest_readings_accepted_total", feed="level") == 0


@dataclasses.dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


class Source:
    """One batch of alert records, a high-water mark, then nothing."""

    def __init__(self, batch: dict[Any, list[Record]], highwater: int, stop: Callable[[], None]) -> None:
        self.batches = [batch]
        self.mark = highwater
        self.stop = stop

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> Mapping[Any, Sequence[Any]]:
        if not self.batches:
            self.stop()
            return {}
        return self.batches.pop(0)

    def highwater(self, partition: Any) -> int:
        return self.mark

    def commit(self, offsets: Mapping[Any, Any] | None = None) -> None:
        pass

    def close(self, autocommit: bool = True) -> None:
        pass


class NoProducer:
    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any:
        class Done:
            def get(self, timeout: float | None = None) -> None:
                return None

        return Done()

    def close(self, timeout: float | None = None) -> None:
        pass


def test_the_alert_consumer_counts_messages_by_exercise_and_measures_its_lag(make_alert: MakeAlert) -> None:
    metrics = ApiMetrics()
    part = TopicPartition("suibou.alerts", 0)
    batch = {part: [Record("suibou.alerts", 0, 0, make_alert("A", exercise=False, drill_id=None).to_json()),
                    Record("suibou.alerts", 0, 1, make_alert("A", exercise=False, drill_id=None).to_json()),
                    Record("suibou.alerts", 0, 2, make_alert("B").to_json()),
                    Record("suibou.alerts", 0, 3, b"not json")]}
    holder: dict[str, AlertConsumer] = {}
    source = Source(batch, highwater=10, stop=lambda: holder["c"].stop())  # noqa: PLW0108 - holder is filled later
    consumer = AlertConsumer(Settings(), InMemoryAlertStore(), AlertApiSettings(poll_timeout_ms=10),
                             consumer_factory=lambda: source, producer_factory=NoProducer, metrics=metrics)
    holder["c"] = consumer
    consumer.run()
    text = metrics.render().decode()
    assert value(text, "suibou_api_alert_messages_consumed_total", exercise="false") == 2
    assert value(text, "suibou_api_alert_messages_stored_total", exercise="false") == 1
    assert value(text, "suibou_api_alert_messages_stored_total", exercise="true") == 1
    assert value(text, "suibou_api_alert_dead_letters_total") == 1
    assert consumer.status.lag == 6  # offsets 4..9 not read yet


def test_consumer_state_and_lag_are_read_at_scrape_time(tmp_path: Path, make_settings: Callable[..., Any]) -> None:
    app = make_app(tmp_path, InMemoryAlertStore(), make_settings, start_webhooks=False)
    with TestClient(app) as client:
        text = client.get("/metrics", headers=ADMIN).text
        assert value(text, "suibou_api_alert_consumer_state", state="disabled") == 1
        assert value(text, "suibou_api_alert_consumer_state", state="running") == 0
        assert "suibou_api_alert_consumer_lag_records" not in text  # unknown, not zero


@pytest.mark.parametrize("bad", ["feed", "reason", "outcome"])
def test_label_values_are_bounded(bad: str) -> None:
    metrics = ApiMetrics()
    with pytest.raises(ValueError):
        {"feed": lambda: metrics.ingest_result("sewer", "accepted"),
         "reason": lambda: metrics.ingest_rejected("whatever"),
         "outcome": lambda: metrics.webhook_outcome("maybe")}[bad]()
