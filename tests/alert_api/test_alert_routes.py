"""The HTTP routes, served from an in-memory store with the consumer off."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from alert_api import create_app
from alert_api.deps import get_store
from alert_api.store import InMemoryAlertStore
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType
from suibou.settings import Settings

MakeAlert = Callable[..., AlertEvent]
RECEIVED = dt.datetime(2005, 9, 4, 12, 0, 5, tzinfo=dt.timezone.utc)


@pytest.fixture
def store(make_alert: MakeAlert) -> InMemoryAlertStore:
    store = InMemoryAlertStore(clock=lambda: RECEIVED)
    store.add(make_alert("DRILL-1", 0, minutes=0))
    store.add(make_alert("REAL-1", 0, minutes=10, exercise=False, drill_id=None))
    store.add(make_alert("REAL-1", 1, minutes=30, exercise=False, drill_id=None, msg_type=MsgType.UPDATE,
                         level=AlertLevel.DANGER, previous_level=AlertLevel.WARNING, references=("REAL-1.0",),
                         reason={"probability": 0.9}))
    store.add(make_alert("SLOPE-1", 0, minutes=40, exercise=False, drill_id=None, area_id="Z-TAKAO-7",
                         area_kind=AreaKind.ZONE, hazard=Hazard.LANDSLIDE, level=AlertLevel.DANGER))
    store.add(make_alert("SLOPE-1", 1, minutes=50, exercise=False, drill_id=None, area_id="Z-TAKAO-7",
                         area_kind=AreaKind.ZONE, hazard=Hazard.LANDSLIDE, msg_type=MsgType.CANCEL,
                         level=AlertLevel.NONE))
    return store


@pytest.fixture
def client(store: InMemoryAlertStore, tmp_path: object) -> Iterator[TestClient]:
    app = create_app(Settings(home=tmp_path), store=store, start_consumer=False)
    with TestClient(app) as client:
        yield client


def alert_ids(client: TestClient, **params: object) -> list[str]:
    response = client.get("/v1/alerts", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["data"])
    return [item["alert_id"] for item in body["data"]]


def test_lists_active_alerts_newest_first(client: TestClient) -> None:
    assert alert_ids(client) == ["REAL-1", "DRILL-1"]


def test_list_item_shows_current_state(client: TestClient) -> None:
    item = client.get("/v1/alerts", params={"exercise": "false"}).json()["data"][0]
    assert item == {
        "alert_id": "REAL-1",
        "area_id": "R-ZENPUKUJI-03",
        "area_kind": "reach",
        "hazard": "flood",
        "level": 4,
        "level_colour": "purple",
        "msg_type": "Update",
        "status": "Actual",
        "exercise": False,
        "drill_id": None,
        "headline": "Level 4 on the Zenpukuji",
        "event_time": "2005-09-04T12:10:00+00:00",
        "updated": "2005-09-04T12:30:00+00:00",
        "active": True,
        "sequence": 1,
        "references": ["REAL-1.0"],
        "reason": {"probability": 0.9},
    }


def test_exercise_alerts_are_marked_and_filterable(client: TestClient) -> None:
    [drill] = client.get("/v1/alerts", params={"exercise": "true"}).json()["data"]
    assert (drill["alert_id"], drill["status"], drill["drill_id"]) == ("DRILL-1", "Exercise", "d1")
    assert alert_ids(client, exercise="false") == ["REAL-1"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"include_cancelled": "true"}, ["SLOPE-1", "REAL-1", "DRILL-1"]),
        ({"include_cancelled": "true", "hazard": "landslide"}, ["SLOPE-1"]),
        ({"area_id": "R-ZENPUKUJI-03"}, ["REAL-1", "DRILL-1"]),
        ({"min_level": 4}, ["REAL-1"]),
        ({"since": "2005-09-04T21:20:00+09:00"}, ["REAL-1"]),
        ({"limit": 1}, ["REAL-1"]),
    ],
)
def test_filters(client: TestClient, params: dict[str, object], expected: list[str]) -> None:
    assert alert_ids(client, **params) == expected


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "many"},
        {"min_level": 6},
        {"hazard": "tsunami"},
        {"exercise": "perhaps"},
        {"since": "2005-09-04T12:00:00"},  # no offset
        {"area_id": "no spaces"},
        {"colour": "red"},  # unknown parameter
    ],
)
def test_bad_query_parameters_are_422(client: TestClient, params: dict[str, object]) -> None:
    assert client.get("/v1/alerts", params=params).status_code == 422


def test_get_alert_with_history(client: TestClient) -> None:
    body = client.get("/v1/alerts/REAL-1").json()
    assert (body["alert_id"], body["level"], body["msg_type"]) == ("REAL-1", 4, "Update")
    assert [m["sequence"] for m in body["messages"]] == [0, 1]
    first, update = body["messages"]
    assert first["event_id"] == "REAL-1.0"
    assert update == {
        "event_id": "REAL-1.1",
        "sequence": 1,
        "msg_type": "Update",
        "level": 4,
        "level_colour": "purple",
        "previous_level": 3,
        "headline": "Level 4 on the Zenpukuji",
        "event_time": "2005-09-04T12:30:00+00:00",
        "received_at": "2005-09-04T12:00:05+00:00",
        "references": ["REAL-1.0"],
        "reason": {"probability": 0.9},
    }


def test_cancelled_alert_is_still_retrievable(client: TestClient) -> None:
    body = client.get("/v1/alerts/SLOPE-1").json()
    assert (body["active"], body["msg_type"], body["level_colour"]) == (False, "Cancel", "white")


def test_unknown_alert_is_404(client: TestClient) -> None:
    assert client.get("/v1/alerts/NOPE").status_code == 404


def test_malformed_alert_id_is_422(client: TestClient) -> None:
    assert client.get("/v1/alerts/-leading-dash").status_code == 422


def test_healthz_reports_store_and_disabled_consumer(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["consumer"]["state"] == "disabled"
    assert (body["alerts"], body["active_alerts"], body["messages"]) == (3, 2, 5)


def test_openapi_is_served(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/v1/alerts", "/v1/alerts/{alert_id}", "/healthz"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200


def test_store_can_be_overridden_as_a_dependency(make_alert: MakeAlert, tmp_path: object) -> None:
    other = InMemoryAlertStore()
    other.add(make_alert("OTHER-1"))
    app = create_app(Settings(home=tmp_path), store=InMemoryAlertStore(), start_consumer=False)
    app.dependency_overrides[get_store] = lambda: other
    with TestClient(app) as client:
        assert alert_ids(client) == ["OTHER-1"]


def test_default_store_is_sqlite_under_home(make_alert: MakeAlert, tmp_path: object) -> None:
    settings = Settings(home=tmp_path)
    with TestClient(create_app(settings, start_consumer=False)) as client:
        assert client.get("/healthz").json()["messages"] == 0
    assert (settings.home / "alerts.db").exists()
