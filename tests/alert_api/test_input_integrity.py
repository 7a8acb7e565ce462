"""Edge inputs get 4xx with a reason, never 500: text XML cannot carry, non-finite numbers, extreme dates,
malformed road graphs, geometry outside the service area or crossing itself, booleans as coordinates."""

from __future__ import annotations

import doctest
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from lxml import etree

import alert_api.strictjson
import alert_api.xmltext
from alert_api.errors import CatchAllMiddleware
from suibou.contracts import AlertLevel

from .conftest import ADMIN
from .test_formats import cap_schema, valid_cap  # noqa: F401 - the fixture is used by name

ISSUE = {"area_id": "R-TEST-1", "hazard": "flood", "level": 4, "area_name": "Test reach", "area_name_ja": "試験区間",
         "polygon": {"type": "Polygon", "coordinates": [[[139.6, 35.7], [139.61, 35.7], [139.61, 35.71],
                                                         [139.6, 35.7]]]}}


@pytest.mark.parametrize("module", [alert_api.strictjson, alert_api.xmltext])
def test_docstring_examples_run(module: Any) -> None:
    assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize("field,value", [
    ("area_name", "bad\x07bell"), ("area_name_ja", "区間\x00"), ("note", "form\x0cfeed"), ("area_name", "\ufffe"),
])
def test_text_that_xml_cannot_carry_is_refused_at_input(api: TestClient, callers: Any, field: str,
                                                        value: str) -> None:
    officer = callers.officer()
    answer = api.post("/v1/officer/alerts", headers=officer, json={**ISSUE, field: value})
    assert answer.status_code == 422
    assert "is not allowed in XML text" in answer.text and field in answer.text
    assert api.post("/v1/officer/alerts", headers=officer, json={**ISSUE, "note": "tab\tnew\nline\r"}).status_code \
        == 201
    for path, body in (("/v1/admin/partners", {"name": "nav\x1b", "scopes": ["alerts:read"]}),
                       ("/v1/admin/officers", {"username": "sato", "display_name": "Sato\x01",
                                               "password": "x" * 12})):
        assert api.post(path, headers=ADMIN, json=body).status_code == 422


def test_a_stored_bad_value_never_breaks_later_cap(api: TestClient, callers: Any, make_alert: Callable[..., Any],
                                                   cap_schema: etree.XMLSchema) -> None:  # noqa: F811
    # Stored before input was checked (or arriving from elsewhere): control characters. (A lone surrogate
    # cannot be stored at all: the database refuses to encode it.)
    api.app.state.store.add(make_alert("OLD", area_id="R-TEST-1", area_name="Old\x07name\x7f\x0b",  # type: ignore[attr-defined]
                                       area_name_ja="旧\x1b名", exercise=False, drill_id=None))
    officer = callers.officer()
    issued = api.post("/v1/officer/alerts", headers=officer,
                      json={"area_id": "R-TEST-1", "hazard": "flood", "level": 4})  # inherits the names
    assert issued.status_code == 201, issued.text
    assert issued.json()["status"] == "Actual"
    for alert_id in ("OLD", issued.json()["alert_id"]):
        cap = api.get(f"/v1/alerts/{alert_id}/cap", headers=officer)
        assert cap.status_code == 200
        root = valid_cap(cap_schema, cap.content)
        descriptions = root.findall(".//{urn:oasis:names:tc:emergency:cap:1.2}areaDesc")
        assert any("\ufffd" in d.text for d in descriptions)
    assert api.get("/v1/alerts", headers=officer).status_code == 200
    assert api.get("/v1/hazard-areas", headers=officer).status_code == 200


@pytest.mark.parametrize("raw", [
    b'{"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.61, NaN]]}}',
    b'{"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.61, 35.7]]}, "buffer_m": Infinity}',
    b'{"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [1e999, 35.7]]}}',
    b'{"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.61, ' + b"9" * 5000 + b']]}}',
    b'{"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.61, 35.7]]}, "x": "\\udc00"}',
])
def test_non_json_numbers_and_unpaired_surrogates_are_422(api: TestClient, raw: bytes) -> None:
    answer = api.post("/v1/route-check", headers={**ADMIN, "content-type": "application/json"}, content=raw)
    assert answer.status_code == 422 and "JSON decode error" in answer.text


def test_surrogates_in_a_password_are_422_not_500(api: TestClient) -> None:
    raw = b'{"username": "duty", "password": "pass\\ud800word"}'
    answer = api.post("/v1/officer/login", headers={"content-type": "application/json"}, content=raw)
    assert answer.status_code == 422


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00",
                                   "0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z", "2300-01-01T00:00:00+09:00"])
def test_extreme_dates_are_422(api: TestClient, since: str) -> None:
    answer = api.get("/v1/alerts", headers=ADMIN, params={"since": since})
    assert answer.status_code == 422 and "out of range" in answer.text
    assert api.get("/v1/alerts", headers=ADMIN, params={"since": "2005-09-04T21:00:00+09:00"}).status_code == 200


def test_huge_integers_are_422(api: TestClient, callers: Any) -> None:
    assert api.get("/v1/admin/audit", headers=ADMIN, params={"after_id": str(2**70)}).status_code == 422
    officer = callers.officer()
    big = api.post("/v1/officer/alerts/X/acknowledge", headers=officer, json={"expected_sequence": 2**64})
    assert big.status_code == 422


@pytest.mark.parametrize("graph,reason", [
    ({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": [1],
      "geometry": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.61, 35.7]]}}]}, "properties"),
    ({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": {"ja": "x"}},
      "geometry": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.61, 35.7]]}}]}, "name"),
    ({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"oneway": [True]},
      "geometry": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.61, 35.7]]}}]}, "oneway"),
    ({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
      "geometry": {"type": "LineString", "coordinates": "139.6,35.7"}}]}, "coordinates"),
    ({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
      "geometry": {"type": "LineString", "coordinates": [[True, 35.7], [139.61, 35.7]]}}]}, "booleans"),
    ({"nodes": [{"id": [1], "lon": 139.6, "lat": 35.7}], "edges": [{"from": 1, "to": 2}]}, "node id"),
    ({"nodes": [{"id": 1, "lon": "139.6", "lat": 35.7}], "edges": [{"from": 1, "to": 1}]}, "numbers"),
    ({"nodes": [{"id": 1, "lon": 139.6, "lat": 35.7}], "edges": [5]}, "from"),
    ({"nodes": ["x"], "edges": [{"from": 1, "to": 2}]}, "needs 'id'"),
])
def test_malformed_road_graphs_are_422_with_the_reason(api: TestClient, make_alert: Callable[..., Any],
                                                       graph: dict[str, Any], reason: str) -> None:
    api.app.state.store.add(make_alert("A", level=AlertLevel.DANGER))  # type: ignore[attr-defined]
    body = {"route": {"type": "LineString", "coordinates": [[139.58, 35.71], [139.64, 35.70]]}, "graph": graph}
    answer = api.post("/v1/route-check", headers=ADMIN, json=body)
    assert answer.status_code == 422 and reason in answer.json()["detail"], answer.text


@pytest.mark.parametrize("coordinates,reason", [
    ([[179.9, 35.7], [-179.9, 35.7]], "service area"),  # across the antimeridian
    ([[0.0, 90.0], [90.0, 90.0]], "service area"),  # at the North Pole
    ([[139.6, 35.7], [True, 35.7]], "number"),  # a boolean is not a coordinate
])
def test_routes_outside_the_service_area_or_with_booleans_are_422(api: TestClient, coordinates: list[Any],
                                                                  reason: str) -> None:
    answer = api.post("/v1/route-check", headers=ADMIN, json={"route": {"type": "LineString",
                                                                        "coordinates": coordinates}})
    assert answer.status_code == 422 and reason in answer.text


@pytest.mark.parametrize("ring,reason", [
    ([[179.0, 35.0], [-179.0, 35.0], [-179.0, 36.0], [179.0, 36.0], [179.0, 35.0]], "service area"),
    ([[139.6, 35.7], [139.61, 35.71], [139.61, 35.7], [139.6, 35.71], [139.6, 35.7]], "cross itself"),
    ([[139.6, 35.7], [139.61, 35.7], [139.61, 35.71], [139.6, 35.71]], "closed"),
    ([[139.6, 35.7], [139.61, 35.7], [139.62, 35.7], [139.6, 35.7]], "valid"),
    ([[139.6, 35.7], [True, 35.7], [139.61, 35.71], [139.6, 35.7]], "float"),
    ([[139.6 + i * 1e-4, 35.7] for i in range(500)] + [[139.6, 35.71], [139.6, 35.7]], "500"),
])
def test_officer_polygons_must_be_valid_and_in_the_service_area(api: TestClient, callers: Any, ring: list[Any],
                                                                reason: str) -> None:
    officer = callers.officer()
    body = {**ISSUE, "polygon": {"type": "Polygon", "coordinates": [ring]}}
    answer = api.post("/v1/officer/alerts", headers=officer, json=body)
    assert answer.status_code == 422 and reason in answer.text, answer.text


def test_an_unexpected_error_is_a_logged_500_without_a_traceback(app_factory: Callable[..., FastAPI],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    app = app_factory(start_webhooks=False)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    assert any(m.cls is CatchAllMiddleware for m in app.user_middleware)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom")
    assert answer.status_code == 500 and "secret internals" not in answer.text and "Traceback" not in answer.text
    assert answer.json()["error_id"] in caplog.text and "secret internals" in caplog.text
