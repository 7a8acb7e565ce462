"""The console over HTTP: the page, ``/v1/console`` for officers and the admin, stills, and officers' actions
in the audit log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from alert_api.console import ingest_status
from alert_api.consumer import ingest_record
from alert_api.store import SqlAlertStore
from suibou.contracts import AlertLevel

T = dt.datetime(2005, 9, 4, 12, 40, tzinfo=dt.UTC)
PASSWORD = "correct horse battery staple"
EXTERNAL = re.compile(r"(?:https?:)?//(?!www\.w3\.org/2000/svg)[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


@pytest.fixture
def client(console_app: tuple[FastAPI, SqlAlertStore]) -> Iterator[TestClient]:
    with TestClient(console_app[0]) as test_client:
        yield test_client


@pytest.fixture
def store(console_app: tuple[FastAPI, SqlAlertStore]) -> SqlAlertStore:
    return console_app[1]


def officer(client: TestClient, admin: dict[str, str], username: str = "sato", role: str = "officer") -> dict[str, str]:
    response = client.post("/v1/admin/officers", headers=admin, json={
        "username": username, "display_name": username.title(), "password": PASSWORD, "role": role})
    assert response.status_code == 201, response.text
    token = client.post("/v1/officer/login", json={"username": username, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def feed(client: TestClient, store: SqlAlertStore, storm_feed: Any, end: dt.datetime,
         extra: list | None = None) -> None:
    """Statuses through the console consumer's ingest, alerts through the alert consumer's."""
    view = client.app.state.console.view  # type: ignore[attr-defined]
    for event in [*storm_feed.between(None, end), *(extra or [])]:
        ingest_status(view, event.to_json())
    for alert in storm_feed.alerts_until(end):
        ingest_record(store, alert.to_json())


def test_the_page_is_public_and_loads_nothing_from_elsewhere(client: TestClient) -> None:
    page = client.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    for asset in ("/console/", "/console/static/console.js", "/console/static/console.css"):
        response = client.get(asset)
        assert response.status_code == 200
        assert not EXTERNAL.findall(response.text), asset
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/"


def test_console_data_is_for_officers_and_the_admin(client: TestClient, admin: dict[str, str]) -> None:
    partner = client.post("/v1/admin/partners", headers=admin,
                          json={"name": "nav", "scopes": ["alerts:read", "exercises"]}).json()["api_key"]
    observer = officer(client, admin, "suzuki", role="observer")
    for path in ("/v1/console/map", "/v1/console/state", "/v1/console/stations/WL-ZENPUKUJI-NARITA"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": f"Bearer {partner}"}).status_code == 403
        assert client.get(path, headers=observer).status_code == 200
        assert client.get(path, headers=admin).status_code == 200


def test_map_and_state_answer_with_etags(client: TestClient, store: SqlAlertStore, storm_feed: Any,
                                         admin: dict[str, str]) -> None:
    headers = officer(client, admin)
    first = client.get("/v1/console/map", headers=headers)
    assert {a["area_id"] for a in first.json()["areas"]} >= {"R-ZENPUKUJI-UPPER", "R-MYOSHOJI-UPPER"}
    assert client.get("/v1/console/map", headers={**headers, "If-None-Match": first.headers["etag"]}).status_code == 304

    empty = client.get("/v1/console/state", headers=headers).json()
    assert empty["stream"]["id"] == "live" and empty["feed"]["state"] == "disabled"
    feed(client, store, storm_feed, T)
    state = client.get("/v1/console/state", headers=headers)
    body = state.json()
    assert body["stream"]["id"] == storm_feed.drill_id and body["stream"]["exercise"] is True
    assert [s["id"] for s in body["streams"]] == [storm_feed.drill_id]
    shown = {a["alert_id"] for a in body["alerts"]}
    assert shown == {a.alert_id for a in storm_feed.alerts_until(T)}
    level = max(a.level for a in storm_feed.alerts_until(T) if a.area_id == "R-ZENPUKUJI-UPPER")
    assert body["areas"]["R-ZENPUKUJI-UPPER"]["alert_level"] == int(level)
    again = client.get("/v1/console/state", headers={**headers, "If-None-Match": state.headers["etag"]})
    assert again.status_code == 304
    live = client.get("/v1/console/state", params={"stream": "live"}, headers=headers).json()
    assert live["stream"]["exercise"] is False and live["alerts"] == [] and live["stations"]["WL-ZENPUKUJI-NARITA"][
        "status"] == "no_data"
    assert client.get("/v1/console/state", params={"stream": "bad stream"}, headers=headers).status_code == 422


def test_station_history_and_stills(client: TestClient, store: SqlAlertStore, storm_feed: Any,
                                    admin: dict[str, str]) -> None:
    headers = officer(client, admin)
    still = storm_feed.frame(T)
    feed(client, store, storm_feed, T, [still])
    hydrograph = client.get("/v1/console/stations/WL-ZENPUKUJI-NARITA", headers=headers).json()
    assert hydrograph["kind"] == "level" and hydrograph["forecast"]["model"] == "flood/2"
    assert client.get("/v1/console/stations/RG-ASAGAYA", headers=headers).json()["kind"] == "rain"
    assert client.get("/v1/console/stations/WL-NOWHERE", headers=headers).status_code == 404

    path = f"/v1/console/cameras/CAM-ZENPUKUJI-NARITA/frames/{still.event_id}"
    image = client.get(path, headers=headers)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content[:2] == b"\xff\xd8"
    assert client.get(path, params={"stream": "live"}, headers=headers).status_code == 404
    assert client.get("/v1/console/cameras/CAM-ZENPUKUJI-NARITA/frames/CAM-ZENPUKUJI-NARITA:1",
                      headers=headers).status_code == 404
    assert client.get(path).status_code == 401


def test_a_still_outside_the_served_folders_is_refused(client: TestClient, storm_feed: Any, tmp_path: Any,
                                                       admin: dict[str, str]) -> None:
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(b"\xff\xd8secret")
    still = dataclasses.replace(storm_feed.frame(T), event_id="CAM-ZENPUKUJI-NARITA:9", image_uri=outside.as_uri())
    ingest_status(client.app.state.console.view, still.to_json())  # type: ignore[attr-defined]
    response = client.get(f"/v1/console/cameras/CAM-ZENPUKUJI-NARITA/frames/{still.event_id}", headers=admin)
    assert response.status_code == 404 and b"secret" not in response.content


def test_officer_actions_from_the_console_land_in_the_audit_log(client: TestClient, store: SqlAlertStore,
                                                               storm_feed: Any, admin: dict[str, str]) -> None:
    headers = officer(client, admin)
    feed(client, store, storm_feed, T)
    alert = next(a for a in client.get("/v1/console/state", headers=headers).json()["alerts"]
                 if a["area_id"] == "R-ZENPUKUJI-UPPER")
    acknowledged = client.post(f"/v1/officer/alerts/{alert['alert_id']}/acknowledge", headers=headers,
                               json={"note": "seen on the camera", "expected_sequence": alert["sequence"]})
    assert acknowledged.status_code == 200, acknowledged.text
    updated = client.post(f"/v1/officer/alerts/{alert['alert_id']}/update", headers=headers,
                          json={"level": 5, "note": "overtopping at Narita",
                                "expected_sequence": alert["sequence"] + 1})
    assert updated.status_code == 200 and updated.json()["level"] == AlertLevel.FLOODING
    cancelled = client.post(f"/v1/officer/alerts/{alert['alert_id']}/cancel", headers=headers, json={"note": "over"})
    assert cancelled.status_code == 200 and cancelled.json()["active"] is False

    kanda = client.get("/v1/console/map", headers=headers).json()
    area = next(a for a in kanda["areas"] if a["area_id"] == "R-KANDA-UPPER")
    issued = client.post("/v1/officer/alerts", headers=headers, json={
        "area_id": area["area_id"], "hazard": "flood", "level": 3, "note": "drill inject", "exercise": True,
        "drill_id": storm_feed.drill_id, "area_kind": "reach", "area_name": area["name"],
        "area_name_ja": area["name_ja"], "polygon": {"type": "Polygon", "coordinates": [area["polygon"]]}})
    assert issued.status_code == 201, issued.text
    assert issued.json()["drill_id"] == storm_feed.drill_id and issued.json()["exercise"] is True
    shown = client.get("/v1/console/state", headers=headers).json()
    assert shown["areas"]["R-KANDA-UPPER"]["alert_level"] == 3
    assert client.post("/v1/officer/alerts", headers=headers, json={
        "area_id": "R-KANDA-UPPER", "hazard": "flood", "level": 3, "drill_id": storm_feed.drill_id}).status_code == 422

    audit = client.get("/v1/admin/audit", params={"actor": "sato"}, headers=admin).json()["data"]
    assert [e["action"] for e in audit] == ["officer.login", "alert.acknowledge", "alert.update", "alert.cancel",
                                           "alert.issue"]
    assert audit[1]["target"] == alert["alert_id"] and audit[1]["detail"]["note"] == "seen on the camera"
    assert audit[4]["detail"]["drill_id"] == storm_feed.drill_id


def test_an_observer_sees_the_console_but_may_not_act(client: TestClient, store: SqlAlertStore, storm_feed: Any,
                                                      admin: dict[str, str]) -> None:
    headers = officer(client, admin, "suzuki", role="observer")
    feed(client, store, storm_feed, T)
    alert = client.get("/v1/console/state", headers=headers).json()["alerts"][0]
    assert client.post(f"/v1/officer/alerts/{alert['alert_id']}/acknowledge", headers=headers,
                       json={}).status_code == 403
