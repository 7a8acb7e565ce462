"""``/v1/alerts``, ``/v1/messages``, ``/healthz``, ``/v1/health`` and the OpenAPI document, on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alert_api import create_app
from alert_api.deps import get_store
from alert_api.store import InMemoryAlertStore, SqlAlertStore
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType
from suibou.settings import Settings

MakeAlert = Callable[..., AlertEvent]
ADMIN = {"Authorization": "Bearer test-admin-key-" + "x" * 32}
TAKAO = ((139.25, 35.62), (139.26, 35.62), (139.26, 35.63), (139.25, 35.62))


@pytest.fixture(autouse=True)
def alerts(store: SqlAlertStore, make_alert: MakeAlert) -> None:
    store.add(make_alert("DRILL-1", 0, minutes=0))
    store.add(make_alert("REAL-1", 0, minutes=10, exercise=False, drill_id=None))
    store.add(make_alert("REAL-1", 1, minutes=30, exercise=False, drill_id=None, msg_type=MsgType.UPDATE,
                         level=AlertLevel.DANGER, previous_level=AlertLevel.WARNING, references=("REAL-1.0",),
                         reason={"probability": 0.9}))
    store.add(make_alert("SLOPE-1", 0, minutes=40, exercise=False, drill_id=None, area_id="Z-TAKAO-7",
                         area_kind=AreaKind.ZONE, hazard=Hazard.LANDSLIDE, level=AlertLevel.DANGER,
                         area_name="Takao slope 7", area_name_ja="高尾 7", polygon=TAKAO))
    store.add(make_alert("SLOPE-1", 1, minutes=50, exercise=False, drill_id=None, area_id="Z-TAKAO-7",
                         area_kind=AreaKind.ZONE, hazard=Hazard.LANDSLIDE, msg_type=MsgType.CANCEL,
                         level=AlertLevel.NONE, references=("SLOPE-1.0",), area_name="Takao slope 7",
                         area_name_ja="高尾 7", polygon=TAKAO))


def alert_ids(client: TestClient, headers: dict[str, str] = ADMIN, **params: object) -> list[str]:
    response = client.get("/v1/alerts", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["data"])
    return [item["alert_id"] for item in body["data"]]


def test_lists_active_alerts_newest_first(api: TestClient) -> None:
    assert alert_ids(api) == ["REAL-1", "DRILL-1"]


def test_list_item_shows_current_state(api: TestClient) -> None:
    item = api.get("/v1/alerts", params={"exercise": "false"}, headers=ADMIN).json()["data"][0]
    geometry = item.pop("geometry")
    assert geometry["type"] == "Polygon" and geometry["coordinates"][0][0] == [139.5925, 35.7172]
    assert item == {
        "alert_id": "REAL-1",
        "event_id": "REAL-1.1",
        "area_id": "R-ZENPUKUJI-03",
        "area_kind": "reach",
        "area_name": "Zenpukuji River",
        "area_name_ja": "善福寺川",
        "hazard": "flood",
        "level": 4,
        "level_colour": "purple",
        "msg_type": "Update",
        "status": "Actual",
        "exercise": False,
        "drill_id": None,
        "headline": "善福寺川 氾濫危険情報（警戒レベル4） / Zenpukuji River: flood danger (alert level 4)",
        "event_time": "2005-09-04T12:10:00+00:00",
        "updated": "2005-09-04T12:30:00+00:00",
        "active": True,
        "manual": False,
        "sequence": 1,
        "references": ["REAL-1.0"],
        "reason": {"probability": 0.9},
        "source": "pipeline",
    }


def test_exercise_alerts_are_marked_and_filterable(api: TestClient) -> None:
    [drill] = api.get("/v1/alerts", params={"exercise": "true"}, headers=ADMIN).json()["data"]
    assert (drill["alert_id"], drill["status"], drill["drill_id"]) == ("DRILL-1", "Exercise", "d1")
    assert drill["headline"].startswith("EXERCISE/訓練 善福寺川")
    assert " / EXERCISE/訓練 Zenpukuji River" in drill["headline"]
    assert alert_ids(api, exercise="false") == ["REAL-1"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"include_cancelled": "true"}, ["SLOPE-1", "REAL-1", "DRILL-1"]),
        ({"include_cancelled": "true", "hazard": "landslide"}, ["SLOPE-1"]),
        ({"area_id": "R-ZENPUKUJI-03"}, ["REAL-1", "DRILL-1"]),
        ({"min_level": 4}, ["REAL-1"]),
        ({"since": "2005-09-04T21:20:00+09:00"}, ["REAL-1"]),
        ({"limit": 1}, ["REAL-1"]),
        ({"include_cancelled": "true", "bbox": "139.2,35.6,139.3,35.7"}, ["SLOPE-1"]),
        ({"bbox": "139.2,35.6,139.3,35.7"}, []),
    ],
)
def test_filters(api: TestClient, params: dict[str, object], expected: list[str]) -> None:
    assert alert_ids(api, **params) == expected


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
        {"bbox": "1,2,3"},
        {"bbox": "139.7,35.6,139.6,35.7"},  # min > max
        {"bbox": "200,35.6,201,35.7"},
    ],
)
def test_bad_query_parameters_are_422(api: TestClient, params: dict[str, object]) -> None:
    assert api.get("/v1/alerts", params=params, headers=ADMIN).status_code == 422


def test_get_alert_with_history(api: TestClient) -> None:
    body = api.get("/v1/alerts/REAL-1", headers=ADMIN).json()
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
        "headline": "善福寺川 氾濫危険情報（警戒レベル4） / Zenpukuji River: flood danger (alert level 4)",
        "event_time": "2005-09-04T12:30:00+00:00",
        "received_at": "2005-09-04T12:00:05+00:00",
        "references": ["REAL-1.0"],
        "reason": {"probability": 0.9},
        "source": "pipeline",
        "cursor": "3",
        "officer": None,
        "action": None,
    }
    assert body["held"] == []


def test_cancelled_alert_is_still_retrievable(api: TestClient) -> None:
    body = api.get("/v1/alerts/SLOPE-1", headers=ADMIN).json()
    assert (body["active"], body["msg_type"], body["level_colour"]) == (False, "Cancel", "white")


def test_unknown_alert_is_404(api: TestClient) -> None:
    assert api.get("/v1/alerts/NOPE", headers=ADMIN).status_code == 404


def test_malformed_alert_id_is_422(api: TestClient) -> None:
    assert api.get("/v1/alerts/-leading-dash", headers=ADMIN).status_code == 422


def test_list_answers_if_none_match_with_304_until_something_changes(
    api: TestClient, store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    first = api.get("/v1/alerts", headers=ADMIN)
    etag = first.headers["etag"]
    again = api.get("/v1/alerts", headers={**ADMIN, "If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    store.add(make_alert("NEW-1", minutes=60, exercise=False, drill_id=None))
    changed = api.get("/v1/alerts", headers={**ADMIN, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["data"][0]["alert_id"] == "NEW-1"


def test_message_log_pages_by_cursor(api: TestClient) -> None:
    page = api.get("/v1/messages", params={"limit": 2}, headers=ADMIN).json()
    assert [m["event_id"] for m in page["data"]] == ["DRILL-1.0", "REAL-1.0"]
    assert page["next_cursor"] == "2"
    rest = api.get("/v1/messages", params={"after": page["next_cursor"]}, headers=ADMIN).json()
    assert [m["event_id"] for m in rest["data"]] == ["REAL-1.1", "SLOPE-1.0", "SLOPE-1.1"]
    assert rest["data"][0]["type"] == "alert.updated" and rest["data"][-1]["type"] == "alert.cancelled"
    assert rest["data"][0]["instruction_en"].startswith("Everyone must leave dangerous places")
    done = api.get("/v1/messages", params={"after": rest["next_cursor"]}, headers=ADMIN)
    assert done.json() == {"count": 0, "data": [], "next_cursor": "5"}
    assert api.get("/v1/messages", params={"after": "5"},
                   headers={**ADMIN, "If-None-Match": done.headers["etag"]}).status_code == 304
    assert api.get("/v1/messages/REAL-1.1", headers=ADMIN).json()["level"] == 4
    assert api.get("/v1/messages/NOPE.1", headers=ADMIN).status_code == 404


@pytest.mark.parametrize("params", [{"after": "-1"}, {"after": "abc"}, {"limit": 0}, {"bbox": "x"}])
def test_message_log_rejects_bad_parameters(api: TestClient, params: dict[str, str]) -> None:
    assert api.get("/v1/messages", params=params, headers=ADMIN).status_code == 422


def test_health_reports_store_webhooks_and_disabled_consumer_to_staff_only(api: TestClient) -> None:
    body = api.get("/v1/health", headers=ADMIN).json()
    assert body["status"] == "ok"
    assert body["consumer"]["state"] == "disabled"
    assert body["webhooks"] == {"worker": "running", "pending": 0, "delivered": 0, "dead": 0}
    assert (body["alerts"], body["active_alerts"], body["messages"], body["held_messages"]) == (3, 2, 5, 0)
    assert body["live_job"]["summary"] == "not seen"
    assert api.get("/v1/health").status_code == 401
    partner = api.post("/v1/admin/partners", headers=ADMIN, json={
        "name": "nav", "scopes": ["alerts:read", "exercises", "metrics:read"]}).json()["api_key"]
    assert api.get("/v1/health", headers={"Authorization": f"Bearer {partner}"}).status_code == 403


def test_public_healthz_says_only_that_it_is_alive_and_what_the_live_job_does(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok", "live_job": "not seen"}


def test_openapi_is_served_with_every_route(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    assert {
        "/v1/alerts", "/v1/alerts/{alert_id}", "/v1/alerts/{alert_id}/cap", "/v1/alerts/{alert_id}/geojson",
        "/v1/messages", "/v1/messages/{event_id}", "/v1/messages/{event_id}/cap", "/v1/hazard-areas", "/v1/cifs",
        "/v1/stream", "/v1/route-check", "/v1/partner", "/v1/partner/webhook", "/v1/partner/webhook/deliveries",
        "/v1/partner/webhook/dead-letters", "/v1/partner/webhook/dead-letters/replay", "/v1/officer/login",
        "/v1/officer/alerts", "/v1/officer/alerts/{alert_id}/cancel", "/v1/admin/partners", "/v1/admin/audit",
        "/healthz", "/v1/health", "/metrics", "/v1/ingest/readings", "/v1/admin/gateways",
    } <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert api.get("/docs").status_code == 200


def test_store_can_be_overridden_as_a_dependency(make_alert: MakeAlert, tmp_path: Path,
                                                 make_settings: Callable[..., Any]) -> None:
    other = InMemoryAlertStore()
    other.add(make_alert("OTHER-1"))
    app = create_app(Settings(home=tmp_path), store=InMemoryAlertStore(), start_consumer=False,
                     api_settings=make_settings(), start_webhooks=False)
    app.dependency_overrides[get_store] = lambda: other
    with TestClient(app) as client:
        assert alert_ids(client) == ["OTHER-1"]


def test_default_store_is_sqlite_under_home_and_admin_key_is_generated(
    tmp_path: Path, make_settings: Callable[..., Any]
) -> None:
    settings = Settings(home=tmp_path)
    config = make_settings(admin_key=None)
    with TestClient(create_app(settings, start_consumer=False, api_settings=config)) as client:
        key_file = tmp_path / "api" / "admin.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = key_file.read_text().strip()
        assert len(key) >= 32
        assert client.get("/v1/admin/partners", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert client.get("/v1/health", headers={"Authorization": f"Bearer {key}"}).json()["messages"] == 0
        assert client.get("/v1/admin/partners", headers=ADMIN).status_code == 401
    assert (settings.home / "alerts.db").exists()
    # The key survives a restart.
    with TestClient(create_app(settings, start_consumer=False, api_settings=config)) as client:
        assert client.get("/v1/admin/partners", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert client.get("/v1/health", headers={"Authorization": f"Bearer {key}"}).json()["messages"] == 0


def test_a_short_admin_key_is_refused(tmp_path: Path, make_settings: Callable[..., Any]) -> None:
    app = create_app(Settings(home=tmp_path), start_consumer=False, api_settings=make_settings(admin_key="short"))
    with pytest.raises(ValueError, match="at least 32"), TestClient(app):
        pass


def test_partner_sees_its_view(api: TestClient, callers: Any) -> None:
    _, reader = callers.partner("alerts:read")
    assert alert_ids(api, reader) == ["REAL-1"]
    assert alert_ids(api, reader, include_cancelled="true") == ["SLOPE-1", "REAL-1"]
    assert api.get("/v1/alerts", params={"exercise": "true"}, headers=reader).status_code == 403
    assert api.get("/v1/alerts/DRILL-1", headers=reader).status_code == 404
    assert api.get("/v1/alerts/REAL-1", headers=reader).json()["held"] == []
    _, drills = callers.partner("alerts:read", "exercises")
    assert alert_ids(api, drills) == ["REAL-1", "DRILL-1"]


def test_times_are_utc_with_offset(api: TestClient) -> None:
    item = api.get("/v1/alerts/REAL-1", headers=ADMIN).json()
    assert dt.datetime.fromisoformat(item["updated"]).utcoffset() == dt.timedelta(0)

