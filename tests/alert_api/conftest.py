"""Fixtures for the alert API tests.

- ``make_alert`` builds alert messages from the contracts.
- ``db_url`` is parametrised: every test that uses it (directly or through
  ``store``, ``api`` or ``server``) runs on SQLite and on PostgreSQL. The
  PostgreSQL server is started once per session by
  :func:`suibou.infra.postgres.ensure_running` (installed with apt-get if
  missing), in a database of its own that is emptied before each test.
- ``api`` is a TestClient on an app with the Kafka consumer off; ``server`` is
  the same app served by uvicorn on a free loopback port, for SSE and for
  webhooks over real HTTP.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from alert_api import create_app
from alert_api.config import AlertApiSettings
from alert_api.db import Database
from alert_api.store import SqlAlertStore
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType
from suibou.settings import Settings

T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.UTC)
RECEIVED = dt.datetime(2005, 9, 4, 12, 0, 5, tzinfo=dt.UTC)
ADMIN_KEY = "test-admin-key-" + "x" * 32
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}

MakeAlert = Callable[..., AlertEvent]

#: A corridor around the upper Zenpukuji (lon, lat), crossed by Kanpachi, Ome-kaido and Itsukaichi-kaido.
ZENPUKUJI = ((139.5925, 35.7172), (139.6110, 35.7062), (139.6262, 35.6998), (139.6335, 35.6974),
             (139.6325, 35.6946), (139.6255, 35.6972), (139.6100, 35.7038), (139.5945, 35.7148), (139.5925, 35.7172))
#: A box around the upper Myoshoji, crossed by Kanpachi, Waseda-dori and Nakasugi.
MYOSHOJI = ((139.616, 35.716), (139.644, 35.716), (139.644, 35.724), (139.616, 35.724), (139.616, 35.716))


@pytest.fixture
def make_alert() -> MakeAlert:
    """Builds an :class:`AlertEvent`; ``minutes`` after 2005-09-04 12:00 UTC sets its time.

    The event id defaults to ``<alert_id>.<sequence>``; the area is the upper Zenpukuji with its polygon.
    """

    def make(
        alert_id: str = "A-ZENPUKUJI-1",
        sequence: int = 0,
        *,
        minutes: float = 0,
        msg_type: MsgType = MsgType.ALERT,
        level: AlertLevel = AlertLevel.WARNING,
        **fields: Any,
    ) -> AlertEvent:
        values: dict[str, Any] = {
            "event_id": f"{alert_id}.{sequence}",
            "event_time": T0 + dt.timedelta(minutes=minutes),
            "alert_id": alert_id,
            "sequence": sequence,
            "msg_type": msg_type,
            "area_id": "R-ZENPUKUJI-03",
            "area_kind": AreaKind.REACH,
            "hazard": Hazard.FLOOD,
            "level": level,
            "headline": f"Level {int(level)} on the Zenpukuji",
            "exercise": True,
            "drill_id": "d1",
            "area_name": "Zenpukuji River",
            "area_name_ja": "善福寺川",
            "polygon": ZENPUKUJI,
        }
        values.update(fields)
        return AlertEvent(**values)

    return make


# --------------------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of its own on the local PostgreSQL server, for this test session."""
    from suibou.infra import postgres

    settings = Settings()
    _, already_running = postgres.acquire(settings)
    name = f"suibou_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = postgres.create_database(settings, name)
    yield url
    postgres.drop_database(settings, name)
    # Stopped unless it ran before this session, or another test session still uses it.
    postgres.release(settings, stop_when_unused=not already_running)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'alerts.db'}"
    url: str = request.getfixturevalue("postgres_url")
    database = Database(url)
    database.truncate_all()
    database.close()
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[SqlAlertStore]:
    sql = SqlAlertStore(db_url, clock=lambda: RECEIVED)
    yield sql
    sql.close()


# --------------------------------------------------------------------------- the app


def api_settings(**overrides: Any) -> AlertApiSettings:
    values: dict[str, Any] = {"admin_key": ADMIN_KEY, "webhook_allow_insecure": True, "webhook_backoff_s": 0.05,
                              "webhook_max_backoff_s": 0.2, "webhook_timeout_s": 2.0, "sse_poll_s": 0.05}
    values.update(overrides)
    return AlertApiSettings(**values)


@pytest.fixture
def admin() -> dict[str, str]:
    """Headers that carry the admin key."""
    return dict(ADMIN)


@pytest.fixture
def make_settings() -> Callable[..., AlertApiSettings]:
    """API settings for tests (admin key, http webhooks to loopback, fast retries), with overrides."""
    return api_settings


@pytest.fixture
def app_factory(store: SqlAlertStore, tmp_path: Path) -> Callable[..., FastAPI]:
    def make(**overrides: Any) -> FastAPI:
        start_webhooks = overrides.pop("start_webhooks", True)
        return create_app(Settings(home=tmp_path), store=store, start_consumer=False,
                          api_settings=api_settings(**overrides), start_webhooks=start_webhooks)

    return make


@pytest.fixture
def api(app_factory: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(app_factory()) as client:
        yield client


class Caller:
    """Registers partners and officers through the admin API, and builds their headers."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.last_headers: dict[str, str] = {}

    def partner(self, *scopes: str, name: str = "nav", rate: int = 600) -> tuple[str, dict[str, str]]:
        response = self.client.post("/v1/admin/partners", headers=ADMIN, json={
            "name": name, "scopes": list(scopes or ("alerts:read",)), "rate_limit_per_minute": rate})
        assert response.status_code == 201, response.text
        body = response.json()
        self.last_headers = {"Authorization": f"Bearer {body['api_key']}"}
        return body["partner"]["partner_id"], self.last_headers

    def officer(self, username: str = "tanaka", role: str = "officer") -> dict[str, str]:
        password = "correct horse battery staple"
        response = self.client.post("/v1/admin/officers", headers=ADMIN, json={
            "username": username, "display_name": username.title(), "password": password, "role": role})
        assert response.status_code == 201, response.text
        login = self.client.post("/v1/officer/login", json={"username": username, "password": password})
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['token']}"}


@pytest.fixture
def callers(api: TestClient) -> Caller:
    return Caller(api)


@pytest.fixture
def callers_for() -> Callable[[TestClient], Caller]:
    return Caller


# --------------------------------------------------------------------------- real HTTP


class Receiver:
    """A webhook receiver on a loopback port: records each request and answers with ``statuses`` in turn
    (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if 200 <= status < 300:
                        receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.attempts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.attempts: list[tuple[dict[str, str], bytes]] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_receiver() -> Iterator[Callable[[], Receiver]]:
    """Starts webhook receivers; all are closed after the test."""
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def receiver(make_receiver: Callable[[], Receiver]) -> Receiver:
    return make_receiver()
