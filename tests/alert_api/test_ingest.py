"""Field gateways and ``POST /v1/ingest/readings``: per-reading results, station ownership, exercise rules,
idempotence on event ids, batch limits, and 503 when Kafka does not acknowledge (fake producers; one test
against a bootstrap address where nothing listens)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from alert_api import create_app
from alert_api.db import gateways, ingested_events
from alert_api.store import SqlAlertStore
from suibou.settings import Settings
from tests.conftest import free_port

ADMIN = {"Authorization": "Bearer test-admin-key-" + "x" * 32}
T = dt.datetime(2026, 12, 6, 21, 0, tzinfo=dt.UTC)


class FakeFuture:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> object:
        if self.error is not None:
            raise self.error
        return object()


@dataclasses.dataclass
class FakeProducer:
    """Records what is sent; ``fail_from`` makes the n-th send's acknowledgement (0-based) and later ones fail."""

    sent: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    fail_from: int | None = None
    closed: bool = False

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
             timestamp_ms: int | None = None) -> FakeFuture:
        index = len(self.sent)
        failing = self.fail_from is not None and index >= self.fail_from
        if not failing:
            self.sent.append({"topic": topic, "value": json.loads(value or b"{}"), "key": key,
                              "timestamp_ms": timestamp_ms})
        return FakeFuture(TimeoutError("no acknowledgement") if failing else None)

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def rain(event_id: str, station: str = "RG-KANDA-1", minutes: int = 0, **extra: Any) -> dict[str, Any]:
    return {"schema": "rain_reading/1", "event_id": event_id, "station_id": station,
            "event_time": (T + dt.timedelta(minutes=minutes)).isoformat(), "rain_mm": 1.5, "interval_s": 60, **extra}


def level(event_id: str, station: str = "WL-KANDA-1", **extra: Any) -> dict[str, Any]:
    return {"schema": "level_reading/1", "event_id": event_id, "station_id": station,
            "event_time": T.isoformat(), "level_m": 1.25, **extra}


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def make_client(store: SqlAlertStore, tmp_path: Path, make_settings: Callable[..., Any],
                producer: FakeProducer) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(factory: Callable[[], Any] | None = None, **overrides: Any) -> TestClient:
        app = create_app(Settings(home=tmp_path), store=store, start_consumer=False, start_webhooks=False,
                         api_settings=make_settings(**overrides), ingest_producer_factory=factory or (lambda: producer))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        if not getattr(client, "closed_by_test", False):
            client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def register(client: TestClient, stations: list[str], *, exercise: bool = False,
             name: str = "kanda-gw") -> tuple[str, dict[str, str]]:
    response = client.post("/v1/admin/gateways", headers=ADMIN,
                           json={"name": name, "stations": stations, "exercise": exercise})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["api_key"].startswith("sbg_")
    return body["gateway"]["gateway_id"], {"Authorization": f"Bearer {body['api_key']}"}


def post(client: TestClient, headers: dict[str, str], readings: list[Any]) -> Any:
    return client.post("/v1/ingest/readings", headers=headers, json={"readings": readings})


def test_gateway_keys_are_shown_once_stored_hashed_listed_and_revocable(client: TestClient,
                                                                        store: SqlAlertStore) -> None:
    gateway_id, headers = register(client, ["RG-KANDA-1", "WL-KANDA-*"])
    key = headers["Authorization"].split()[1]
    with store.db.read() as connection:
        row = connection.execute(sa.select(gateways)).mappings().one()
    assert key not in json.dumps({k: str(v) for k, v in row.items()})
    listed = client.get("/v1/admin/gateways", headers=ADMIN).json()
    assert listed["count"] == 1 and "api_key" not in listed["data"][0]
    assert listed["data"][0]["stations"] == ["RG-KANDA-1", "WL-KANDA-*"]
    assert post(client, headers, [rain("r-1")]).status_code == 200
    assert client.delete(f"/v1/admin/gateways/{gateway_id}", headers=ADMIN).json()["revoked_at"] is not None
    assert post(client, headers, [rain("r-2")]).status_code == 401
    assert client.delete(f"/v1/admin/gateways/{gateway_id}", headers=ADMIN).status_code == 404
    audit = client.get("/v1/admin/audit", headers=ADMIN, params={"action": "gateway.create"}).json()
    assert audit["count"] == 1


@pytest.mark.parametrize("stations", [[], ["x*"], ["bad id"], ["*"]])
def test_gateway_registration_refuses_bad_station_lists(client: TestClient, stations: list[str]) -> None:
    response = client.post("/v1/admin/gateways", headers=ADMIN, json={"name": "g", "stations": stations})
    assert response.status_code == 422


def test_only_admins_register_gateways_and_gateway_keys_open_nothing_else(client: TestClient) -> None:
    partner = client.post("/v1/admin/partners", headers=ADMIN, json={"name": "nav", "scopes": ["alerts:read"]})
    partner_headers = {"Authorization": f"Bearer {partner.json()['api_key']}"}
    assert client.post("/v1/admin/gateways", headers=partner_headers,
                       json={"name": "g", "stations": ["RG-1"]}).status_code == 403
    _, gateway = register(client, ["RG-KANDA-1"])
    for path in ("/v1/alerts", "/v1/messages", "/v1/health", "/metrics", "/v1/admin/gateways"):
        response = client.get(path, headers=gateway)
        assert response.status_code == 401, path
    assert "ingest" in client.get("/v1/alerts", headers=gateway).json()["detail"]
    assert post(client, partner_headers, [rain("r-1")]).status_code == 401
    assert post(client, ADMIN, [rain("r-1")]).status_code == 401
    assert client.post("/v1/ingest/readings", json={"readings": [rain("r-1")]}).status_code == 401


def test_each_reading_gets_its_own_result_and_the_good_ones_go_to_their_topics(
    client: TestClient, producer: FakeProducer
) -> None:
    _, headers = register(client, ["RG-KANDA-1", "WL-KANDA-1"])
    readings: list[Any] = [
        rain("r-1"),
        level("l-1"),
        rain("r-2", station="RG-ELSEWHERE"),
        {"schema": "rain_reading/1", "event_id": "r-3", "station_id": "RG-KANDA-1"},
        rain("r-4", exercise=True, drill_id="d-1"),
        "not an object",
        {"schema": "stream_control/1", "event_id": "c-1"},
        rain("r-1"),
        {**rain("r-5"), "rain_mm": 900},
    ]
    response = post(client, headers, readings)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 1, 6)
    by_index = {r["index"]: r for r in body["results"]}
    assert [by_index[i]["status"] for i in range(len(readings))] == [
        "accepted", "accepted", "rejected", "rejected", "rejected", "rejected", "rejected", "duplicate", "rejected"]
    assert [by_index[i]["category"] for i in (2, 3, 4, 5, 6, 8)] == [
        "station", "invalid", "exercise", "invalid", "schema", "invalid"]
    assert "RG-ELSEWHERE" in by_index[2]["reason"]
    assert "missing field" in by_index[3]["reason"]
    assert "rain_mm" in by_index[8]["reason"]
    assert by_index[2]["event_id"] == "r-2" and by_index[5]["event_id"] is None
    assert [(s["topic"], s["key"], s["value"]["event_id"]) for s in producer.sent] == [
        ("suibou.obs.rain", b"RG-KANDA-1", "r-1"), ("suibou.obs.level", b"WL-KANDA-1", "l-1")]
    assert producer.sent[0]["timestamp_ms"] == int(T.timestamp() * 1000)
    assert producer.sent[0]["value"]["exercise"] is False


def test_a_retried_batch_answers_duplicate_and_produces_nothing_again(
    client: TestClient, producer: FakeProducer, store: SqlAlertStore
) -> None:
    _, headers = register(client, ["RG-KANDA-1"])
    first = post(client, headers, [rain("r-1"), rain("r-2", minutes=1)]).json()
    again = post(client, headers, [rain("r-1"), rain("r-2", minutes=1), rain("r-3", minutes=2)]).json()
    assert [r["status"] for r in first["results"]] == ["accepted", "accepted"]
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate", "accepted"]
    assert [s["value"]["event_id"] for s in producer.sent] == ["r-1", "r-2", "r-3"]
    _, other = register(client, ["RG-KANDA-1"], name="second")
    taken = post(client, other, [rain("r-1")]).json()["results"][0]
    assert (taken["status"], taken["category"]) == ("rejected", "conflict")
    with store.db.read() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(ingested_events)
                                  .where(ingested_events.c.accepted.is_(True))).scalar_one() == 3


def test_accepted_ids_are_forgotten_after_the_retention(client: TestClient, store: SqlAlertStore) -> None:
    ledger = client.app.state.ingest.ledger  # type: ignore[attr-defined]
    _, headers = register(client, ["RG-KANDA-1"])
    post(client, headers, [rain("r-1")])
    assert ledger.count() == 1
    assert ledger.purge(dt.datetime.now(dt.UTC) + ledger.retention - dt.timedelta(minutes=1)) == 0
    assert ledger.purge(dt.datetime.now(dt.UTC) + ledger.retention + dt.timedelta(minutes=1)) == 1


def test_exercise_gateways_send_only_exercises_with_a_drill_id(client: TestClient, producer: FakeProducer) -> None:
    _, headers = register(client, ["RG-KANDA-1"], exercise=True)
    results = post(client, headers, [rain("r-1"), rain("r-2", exercise=True),
                                     rain("r-3", exercise=True, drill_id="drill-7")]).json()["results"]
    assert [(r["status"], r["category"]) for r in results] == [
        ("rejected", "exercise"), ("rejected", "exercise"), ("accepted", None)]
    assert producer.sent[0]["value"]["drill_id"] == "drill-7"


def test_camera_frames_need_an_image_inside_the_frame_roots_and_drones_their_flight(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    roots = tmp_path / "frames"
    client = make_client(ingest_frame_roots=[roots])
    _, headers = register(client, ["CAM-KANDA-1", "FL-KANDA-*"])
    frame = {"schema": "camera_frame/1", "event_id": "f-1", "camera_id": "CAM-KANDA-1", "event_time": T.isoformat(),
             "image_uri": f"file://{roots}/a.jpg", "content_type": "image/jpeg", "width": 640, "height": 480}
    outside = {**frame, "event_id": "f-2", "image_uri": f"{roots}/../secret.jpg"}
    drone = {"schema": "drone_observation/1", "event_id": "d-1", "flight_id": "FL-KANDA-20261206",
             "event_time": T.isoformat(), "lon": 139.7, "lat": 35.7, "finding": "inundation", "confidence": 0.8}
    stray = {**drone, "event_id": "d-2", "flight_id": "FL-TAMA-1"}
    results = post(client, headers, [frame, outside, drone, stray]).json()["results"]
    assert [(r["status"], r["category"]) for r in results] == [
        ("accepted", None), ("rejected", "image"), ("accepted", None), ("rejected", "station")]
    default = make_client()
    _, headers = register(default, ["CAM-KANDA-1"], name="cam")
    refused = post(default, headers, [frame]).json()["results"][0]
    assert refused["category"] == "image" and "none are configured" in refused["reason"]


@pytest.mark.parametrize(("body", "status"), [
    (b"not json", 422), (b"[]", 422), (b'{"readings": []}', 422), (b'{"readings": {}}', 422),
    (b'{"readings": [], "extra": 1}', 422),
])
def test_unusable_batches_are_refused_whole(client: TestClient, body: bytes, status: int) -> None:
    _, headers = register(client, ["RG-KANDA-1"])
    response = client.post("/v1/ingest/readings", headers={**headers, "content-type": "application/json"},
                           content=body)
    assert response.status_code == status
    assert response.json()["detail"]


def test_batches_are_bounded_in_count_and_size(make_client: Callable[..., TestClient],
                                               producer: FakeProducer) -> None:
    client = make_client(ingest_max_readings=3, ingest_max_body_bytes=2048)
    _, headers = register(client, ["RG-KANDA-1"])
    too_many = post(client, headers, [rain(f"r-{i}", minutes=i) for i in range(4)])
    assert too_many.status_code == 413 and "at most 3" in too_many.json()["detail"]
    too_big = post(client, headers, [rain("r-1", padding="x" * 3000)])
    assert too_big.status_code == 413
    assert producer.sent == []
    assert post(client, headers, [rain(f"r-{i}", minutes=i) for i in range(3)]).json()["accepted"] == 3


def test_when_kafka_does_not_acknowledge_the_answer_is_503_and_a_retry_sends_the_rest(
    client: TestClient, producer: FakeProducer
) -> None:
    _, headers = register(client, ["RG-KANDA-1"])
    producer.fail_from = 1
    response = post(client, headers, [rain("r-1"), rain("r-2", minutes=1), rain("r-3", minutes=2)])
    assert response.status_code == 503
    assert "did not acknowledge 2 of 3" in response.json()["detail"]
    assert response.headers["retry-after"]
    producer.fail_from = None
    results = post(client, headers, [rain("r-1"), rain("r-2", minutes=1), rain("r-3", minutes=2)]).json()["results"]
    assert [r["status"] for r in results] == ["duplicate", "accepted", "accepted"]
    assert [s["value"]["event_id"] for s in producer.sent] == ["r-1", "r-2", "r-3"]


def test_an_unreachable_broker_gives_503_and_records_nothing(make_client: Callable[..., TestClient],
                                                            tmp_path: Path) -> None:
    from alert_api.ingest import kafka_producer_factory

    factory = kafka_producer_factory(f"127.0.0.1:{free_port()}", timeout_s=1.0, connect_timeout_ms=500)
    client = make_client(factory)
    _, headers = register(client, ["RG-KANDA-1"])
    response = post(client, headers, [rain("r-1")])
    assert response.status_code == 503, response.text
    assert "Kafka" in response.json()["detail"]
    assert client.app.state.ingest.ledger.count() == 0  # type: ignore[attr-defined]


def test_the_producer_is_made_lazily_and_closed_on_shutdown(make_client: Callable[..., TestClient],
                                                            producer: FakeProducer) -> None:
    made: list[FakeProducer] = []

    def factory() -> FakeProducer:
        made.append(producer)
        return producer

    client = make_client(factory)
    assert made == []
    _, headers = register(client, ["RG-KANDA-1"])
    post(client, headers, [rain("r-1")])
    post(client, headers, [rain("r-2", minutes=1)])
    assert len(made) == 1
    client.__exit__(None, None, None)
    client.closed_by_test = True  # type: ignore[attr-defined]
    assert producer.closed
