"""``GET /v1/stream``: Server-Sent Events from a real uvicorn server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from alert_api.store import SqlAlertStore
from suibou.contracts import AlertEvent, MsgType

MakeAlert = Callable[..., AlertEvent]


def read_events(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    """Reads ``count`` events (id, event, data) off an open SSE response."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(": ")
            current[field] = json.loads(value) if field == "data" else value
    return events


@pytest.fixture
def base_url(app_factory: Callable[..., FastAPI], serve: Callable[[FastAPI], Any]) -> Iterator[str]:
    with serve(app_factory(sse_heartbeat_s=0.2, sse_max_streams=2)) as url:
        yield url


def register(base_url: str, admin: dict[str, str], *scopes: str) -> dict[str, str]:
    response = httpx.post(f"{base_url}/v1/admin/partners", headers=admin,
                          json={"name": "nav", "scopes": list(scopes)})
    return {"Authorization": f"Bearer {response.json()['api_key']}"}


def later(action: Callable[[], None], delay_s: float = 0.3) -> None:
    timer = threading.Timer(delay_s, action)
    timer.daemon = True
    timer.start()


def test_stream_sends_new_messages_and_resumes_after_last_event_id(
    base_url: str, admin: dict[str, str], store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    partner = register(base_url, admin, "alerts:read")
    store.add(make_alert("OLD", exercise=False, drill_id=None))
    with httpx.stream("GET", f"{base_url}/v1/stream", headers=partner, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        later(lambda: [store.add(make_alert("NEW", s, minutes=s, exercise=False, drill_id=None,
                                            msg_type=MsgType.ALERT if s == 0 else MsgType.UPDATE))
                       for s in range(2)])
        first, second = read_events(response, 2)
    assert (first["event"], first["data"]["event_id"], first["id"]) == ("alert.issued", "NEW.0", "2")
    assert (second["event"], second["data"]["event_id"]) == ("alert.updated", "NEW.1")
    assert first["data"]["geometry"]["type"] == "Polygon"
    # Reconnecting with Last-Event-ID resumes after it; nothing is missed.
    store.add(make_alert("NEW", 2, minutes=2, exercise=False, drill_id=None, msg_type=MsgType.UPDATE))
    with httpx.stream("GET", f"{base_url}/v1/stream", headers={**partner, "Last-Event-ID": first["id"]},
                      timeout=10) as response:
        resumed = read_events(response, 2)
    assert [e["data"]["event_id"] for e in resumed] == ["NEW.1", "NEW.2"]
    with httpx.stream("GET", f"{base_url}/v1/stream", params={"after": "0"}, headers=partner,
                      timeout=10) as response:
        assert [e["data"]["event_id"] for e in read_events(response, 1)] == ["OLD.0"]


def test_stream_hides_exercises_without_the_scope_and_labels_them_with_it(
    base_url: str, admin: dict[str, str], store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    plain = register(base_url, admin, "alerts:read")
    drills = register(base_url, admin, "alerts:read", "exercises")
    store.add(make_alert("DRILL"))
    store.add(make_alert("REAL", exercise=False, drill_id=None))
    with httpx.stream("GET", f"{base_url}/v1/stream", params={"after": "0"}, headers=plain, timeout=10) as response:
        [only] = read_events(response, 1)
    assert only["data"]["alert_id"] == "REAL"
    with httpx.stream("GET", f"{base_url}/v1/stream", params={"after": "0"}, headers=drills, timeout=10) as response:
        drill, real = read_events(response, 2)
    assert drill["data"]["status"] == "Exercise" and drill["data"]["headline_en"].startswith("EXERCISE/訓練 ")
    assert real["data"]["alert_id"] == "REAL"


def test_stream_filters_by_bbox_and_keeps_quiet_connections_alive(
    base_url: str, admin: dict[str, str], store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    partner = register(base_url, admin, "alerts:read", "exercises")
    far = ((139.25, 35.62), (139.26, 35.62), (139.26, 35.63), (139.25, 35.62))
    store.add(make_alert("FAR", polygon=far))
    store.add(make_alert("NEAR"))
    with httpx.stream("GET", f"{base_url}/v1/stream", params={"after": "0", "bbox": "139.59,35.69,139.64,35.72"},
                      headers=partner, timeout=10) as response:
        seen: list[str] = []
        for line in response.iter_lines():
            seen.append(line)
            if line.startswith(": keep-alive"):
                break
    data = [json.loads(line[6:]) for line in seen if line.startswith("data: ")]
    assert [d["alert_id"] for d in data] == ["NEAR"]


def test_stream_refuses_without_a_key_bad_cursors_and_too_many_streams(
    base_url: str, admin: dict[str, str]
) -> None:
    assert httpx.get(f"{base_url}/v1/stream", timeout=5).status_code == 401
    partner = register(base_url, admin, "alerts:read")
    assert httpx.get(f"{base_url}/v1/stream", params={"after": "x"}, headers=partner, timeout=5).status_code == 422
    assert httpx.get(f"{base_url}/v1/stream", headers={**partner, "Last-Event-ID": "-1"},
                     timeout=5).status_code == 422
    hooks_only = register(base_url, admin, "webhooks:receive")
    assert httpx.get(f"{base_url}/v1/stream", headers=hooks_only, timeout=5).status_code == 403
    with httpx.stream("GET", f"{base_url}/v1/stream", headers=partner, timeout=10) as one, \
            httpx.stream("GET", f"{base_url}/v1/stream", headers=partner, timeout=10) as two:
        assert one.status_code == two.status_code == 200
        assert httpx.get(f"{base_url}/v1/stream", headers=partner, timeout=5).status_code == 429


def test_stream_route_is_in_the_test_client_too(api: TestClient, admin: dict[str, str]) -> None:
    assert api.get("/v1/stream", params={"after": "zz"}, headers=admin).status_code == 422
