"""Availability on the real parts: the consumers come back when the broker does, and an API killed in the middle
of consuming loses no alert, stores none twice and keeps its webhook ids.

Marked ``e2e``: starts the embedded Kafka broker (``suibou.infra.kafka``) on the ports of the environment
(``SUIBOU_KAFKA_PORT``, ``SUIBOU_KAFKA_CONTROLLER_PORT``) and the alert API as a process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer  # type: ignore[import-untyped]

from alert_api.config import AlertApiSettings
from alert_api.console.consumer import FeedState, StatusConsumer
from alert_api.console.view import StationView
from alert_api.consumer import AlertConsumer, ConsumerState
from alert_api.store import AlertQuery, InMemoryAlertStore
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType
from suibou.infra import kafka
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = pytest.mark.e2e

ADMIN_KEY = "e2e-admin-key-" + "y" * 32
RING = ((139.60, 35.70), (139.61, 35.70), (139.61, 35.71), (139.60, 35.71), (139.60, 35.70))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)
    return True


def alert(prefix: str, n: int) -> AlertEvent:
    return AlertEvent(
        event_id=f"{prefix}-A{n}:0", event_time=dt.datetime(2005, 9, 4, 12, tzinfo=dt.UTC)
        + dt.timedelta(minutes=n), alert_id=f"{prefix}-A{n}", sequence=0, msg_type=MsgType.ALERT,
        area_id=f"R-E2E-{n}", area_kind=AreaKind.REACH, hazard=Hazard.FLOOD, level=AlertLevel.DANGER,
        headline="e2e", area_name="E2E River", area_name_ja="E2E川", polygon=RING, exercise=False, drill_id=None)


def publish(settings: Settings, events: list[AlertEvent]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    try:
        for event in events:
            producer.send(settings.topics.alerts, value=event.to_json(), key=event.area_id.encode())
        producer.flush(30)
    finally:
        producer.close()


@pytest.fixture
def settings() -> Iterator[Settings]:
    """The embedded broker's settings with topics of this test's own."""
    settings = Settings(topic_prefix=f"avail-{uuid.uuid4().hex[:8]}")
    if not settings.uses_embedded_kafka:
        pytest.skip("needs the embedded broker (SUIBOU_KAFKA_BOOTSTRAP is set)")
    yield settings
    with contextlib.suppress(Exception):  # the broker may be down already
        delete_topics(settings, request_timeout_ms=10_000)


def test_the_consumers_reconnect_when_the_broker_comes_back(settings: Settings) -> None:
    kafka.stop(settings)  # the broker is down when the API starts
    config = AlertApiSettings(retry_backoff_s=0.2, connect_timeout_ms=500, poll_timeout_ms=200,
                              consumer_group=f"e2e-{uuid.uuid4().hex[:6]}")
    store = InMemoryAlertStore()
    consumer = AlertConsumer(settings, store, config)
    feed = StatusConsumer(settings, StationView(), config)
    consumer.start()
    feed.start()
    try:
        assert wait_for(lambda: consumer.status.state is ConsumerState.RETRYING, 30)
        assert wait_for(lambda: feed.status.state is FeedState.RETRYING, 30)
        time.sleep(2)  # several failed connects
        kafka.ensure_running(settings)
        kafka.ensure_topics(settings, settings.topics.all_topics)
        publish(settings, [alert(settings.topic_prefix, 0)])
        assert wait_for(lambda: store.counts().messages == 1, 90), consumer.status
        assert consumer.status.state is ConsumerState.RUNNING
        assert wait_for(lambda: feed.status.state is FeedState.RUNNING, 60), feed.status
        assert [a.alert_id for a in store.list_alerts(AlertQuery())] == [f"{settings.topic_prefix}-A0"]
    finally:
        consumer.stop(timeout=10)
        feed.stop(timeout=10)


class Receiver:
    """A webhook receiver on a loopback port that records every webhook-id it gets, repeats included."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.ids.append(self.headers["webhook-id"])
                assert json.loads(body)["data"]["event_id"] == self.headers["webhook-id"]
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_api(settings: Settings, home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ, "SUIBOU_HOME": str(home), "SUIBOU_API_HOST": "127.0.0.1", "SUIBOU_API_PORT": str(port),
        "SUIBOU_TOPIC_PREFIX": settings.topic_prefix, "SUIBOU_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "SUIBOU_DATABASE_URL": f"sqlite:///{home / 'alerts.db'}", "SUIBOU_ADMIN_KEY": ADMIN_KEY,
        "SUIBOU_ALERT_API_WEBHOOK_ALLOW_INSECURE": "true", "SUIBOU_ALERT_API_MAX_POLL_RECORDS": "5",
        "SUIBOU_ALERT_API_CONSOLE_STATUS_FEED": "false",
        "SUIBOU_ALERT_API_CONSUMER_GROUP": f"api-{settings.topic_prefix}",
    }
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "suibou", "api"], stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_for(answers, 60), log.read_text()
    return process


def stored(base: str) -> list[str]:
    """Every message id in the API's log, in cursor order."""
    ids: list[str] = []
    cursor = "0"
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    while True:
        page = httpx.get(f"{base}/v1/messages", params={"after": cursor, "limit": 1000}, headers=admin,
                         timeout=10).json()
        ids += [m["event_id"] for m in page["data"]]
        if not page["data"]:
            return ids
        cursor = page["next_cursor"]


def test_an_api_killed_while_consuming_stores_every_alert_once_and_keeps_webhook_ids(
    settings: Settings, tmp_path: Path
) -> None:
    kafka.ensure_running(settings)
    kafka.ensure_topics(settings, settings.topics.all_topics)
    receiver = Receiver()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "api.log"
    process = start_api(settings, tmp_path, port, log)
    try:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        made = httpx.post(f"{base}/v1/admin/partners", headers=admin, timeout=10, json={
            "name": "nav", "scopes": ["alerts:read", "webhooks:receive"]}).json()
        partner = {"Authorization": f"Bearer {made['api_key']}"}
        assert httpx.put(f"{base}/v1/partner/webhook", headers=partner, json={"url": receiver.url},
                         timeout=10).status_code == 200
        # Enough that the API, five records a batch, is still consuming when it is killed, even on a quiet machine.
        events = [alert(settings.topic_prefix, n) for n in range(1500)]
        publish(settings, events)
        # The store itself is watched (the API's listing is slower than the consumer): killed after a few batches.
        assert wait_for(lambda: len(stored_so_far(tmp_path)) >= 30, 60, step_s=0.005), log.read_text()
        process.send_signal(signal.SIGKILL)  # in the middle of consumption and delivery
        process.wait(10)
        killed_at = len(stored_from_db(tmp_path))
        assert killed_at < len(events), "the API had consumed everything before it was killed; kill earlier"
        process = start_api(settings, tmp_path, port, log)
        expected = [e.event_id for e in events]
        assert wait_for(lambda: len(stored(base)) == len(expected), 240), log.read_text()
        ids = stored(base)
        assert sorted(ids) == sorted(expected) and len(set(ids)) == len(ids)  # every alert, once
        assert wait_for(lambda: set(receiver.ids) == set(expected), 240), (len(set(receiver.ids)), len(expected))
        # webhook-id is the message's event id on every attempt: repeats (at least once) carry the same id
        assert set(receiver.ids) <= set(expected)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        receiver.close()


def stored_so_far(home: Path) -> list[str]:
    """What the store holds now; nothing while the API has not made its tables yet."""
    import sqlite3

    try:
        return stored_from_db(home)
    except sqlite3.Error:
        return []


def stored_from_db(home: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(home / "alerts.db") as connection:
        return [row[0] for row in connection.execute("select event_id from alert_messages")]
