"""Route checks: the hazard index, detours on a partner's road graph, and ``POST /v1/route-check``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import LineString, Polygon

from alert_api.geo import GeometryError, HazardIndex, HazardIndexCache, RoadGraph, check_route
from alert_api.models import Alert, StoredMessage
from alert_api.store import SqlAlertStore
from suibou.contracts import AlertEvent, AlertLevel

MakeAlert = Callable[..., AlertEvent]
NOW = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)

#: Two areas on an east-west line at latitude 35.70: a level-4 box at 139.61-139.62 and a level-2 box at 139.64-139.65.
DANGER_BOX = ((139.61, 35.695), (139.62, 35.695), (139.62, 35.705), (139.61, 35.705), (139.61, 35.695))
CAUTION_BOX = ((139.64, 35.695), (139.65, 35.695), (139.65, 35.705), (139.64, 35.705), (139.64, 35.695))
ROUTE = [[139.60, 35.70], [139.63, 35.70], [139.66, 35.70]]


def alert(make_alert: MakeAlert, alert_id: str, level: AlertLevel, polygon: Any, **fields: Any) -> Alert:
    event = make_alert(alert_id, level=level, polygon=polygon, exercise=False, drill_id=None, **fields)
    return Alert(latest=StoredMessage(event, NOW), onset=event.event_time)


@pytest.fixture
def index(make_alert: MakeAlert) -> HazardIndex:
    return HazardIndex([alert(make_alert, "DANGER", AlertLevel.DANGER, DANGER_BOX),
                        alert(make_alert, "CAUTION", AlertLevel.CAUTION, CAUTION_BOX),
                        alert(make_alert, "NOWHERE", AlertLevel.FLOODING, ())])


def grid_graph() -> dict[str, Any]:
    """Roads every 0.01 degrees from 139.60 to 139.66 and 35.69 to 35.72, as GeoJSON LineStrings."""
    features = []
    lons = [round(139.60 + 0.01 * i, 2) for i in range(7)]
    lats = [round(35.69 + 0.01 * j, 2) for j in range(4)]
    for lat in lats:
        features.append({"type": "Feature", "properties": {"name": f"East-west {lat}"},
                         "geometry": {"type": "LineString", "coordinates": [[lon, lat] for lon in lons]}})
    for lon in lons:
        features.append({"type": "Feature", "properties": {"name": f"North-south {lon}"},
                         "geometry": {"type": "LineString", "coordinates": [[lon, lat] for lat in lats]}})
    return {"type": "FeatureCollection", "features": features}


def test_route_hits_come_in_route_order_with_distances(index: HazardIndex) -> None:
    result = check_route(index, ROUTE)
    assert [h.alert.alert_id for h in result.hits] == ["DANGER", "CAUTION"]
    danger, caution = result.hits
    assert danger.entry_m == pytest.approx(904, rel=0.01)  # 0.01 degrees of longitude at 35.7 N
    assert danger.inside_m == pytest.approx(904, rel=0.01)
    assert caution.entry_m == pytest.approx(3616, rel=0.01)
    assert result.length_m == pytest.approx(5424, rel=0.01)
    assert (result.detour, result.detour_status) == (None, "not_requested")


def test_a_route_that_misses_everything_and_the_buffer(index: HazardIndex) -> None:
    north = [[139.60, 35.707], [139.66, 35.707]]  # about 220 m north of both boxes
    assert check_route(index, north).hits == []
    near = check_route(index, north, buffer_m=300)
    assert [h.alert.alert_id for h in near.hits] == ["DANGER", "CAUTION"]
    assert near.hits[0].inside_m == 0.0


@pytest.mark.parametrize(
    ("coordinates", "message"),
    [
        ([[139.6, 35.7]], "2 to 10000 positions"),
        ([[139.6, 35.7]] * 10_001, "2 to 10000 positions"),
        ([[139.6, 35.7], [200.0, 35.7]], "longitude"),
        ([[139.6, 35.7], [float("nan"), 35.7]], "finite"),
        ([[139.6, 35.7], ["x", 35.7]], "numbers"),
    ],
)
def test_unusable_routes_are_refused(index: HazardIndex, coordinates: list[Any], message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        check_route(index, coordinates)


def test_detour_avoids_level_4_areas_on_a_geojson_graph(index: HazardIndex) -> None:
    result = check_route(index, ROUTE, graph=RoadGraph.from_geojson(grid_graph()))
    assert result.detour_status == "found" and result.detour is not None
    line = LineString(result.detour.coordinates)
    assert not line.intersects(Polygon(DANGER_BOX))
    assert line.coords[0] == (139.60, 35.70) and line.coords[-1] == (139.66, 35.70)
    assert [a.alert_id for a in result.detour.crosses] == ["CAUTION"]  # level 2 is not avoided
    assert result.detour.length_m > result.length_m
    assert "East-west 35.71" in result.detour.streets or "East-west 35.69" in result.detour.streets


def test_detour_on_a_nodes_and_edges_graph_with_one_way_streets(index: HazardIndex) -> None:
    nodes = [{"id": "w", "lon": 139.60, "lat": 35.70}, {"id": "e", "lon": 139.63, "lat": 35.70},
             {"id": "nw", "lon": 139.60, "lat": 35.71}, {"id": "ne", "lon": 139.63, "lat": 35.71},
             {"id": "sw", "lon": 139.60, "lat": 35.69}, {"id": "se", "lon": 139.63, "lat": 35.69}]
    edges = [{"from": "w", "to": "e", "name": "Straight"}, {"from": "w", "to": "nw"},
             {"from": "nw", "to": "ne", "name": "North road", "oneway": True}, {"from": "ne", "to": "e"},
             {"from": "sw", "to": "w"}, {"from": "se", "to": "sw", "name": "South road", "oneway": True},
             {"from": "e", "to": "se"}]
    graph = RoadGraph.from_nodes_edges({"nodes": nodes, "edges": edges})
    there = check_route(index, [[139.60, 35.70], [139.63, 35.70]], graph=graph)
    assert there.detour is not None and there.detour.streets == ["North road"]
    back = check_route(index, [[139.63, 35.70], [139.60, 35.70]], graph=graph)
    assert back.detour is not None and back.detour.streets == ["South road"]


def test_no_detour_when_none_is_needed_possible_or_the_end_is_inside(index: HazardIndex) -> None:
    graph = RoadGraph.from_geojson(grid_graph())
    assert check_route(index, [[139.64, 35.70], [139.66, 35.70]], graph=graph).detour_status == "not_needed"
    assert check_route(index, [[139.60, 35.70], [139.615, 35.70]], graph=graph).detour_status == "endpoint_in_hazard"
    only_straight = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString",
                                                          "coordinates": [[139.60, 35.70], [139.63, 35.70]]}}]}
    assert check_route(index, ROUTE, graph=RoadGraph.from_geojson(only_straight)).detour_status == "no_path"


@pytest.mark.parametrize(
    "graph",
    [
        {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point",
                                                                                     "coordinates": [1, 2]}}]},
        {"type": "FeatureCollection", "features": []},
        {"type": "Topology"},
    ],
)
def test_bad_geojson_graphs_are_refused(graph: dict[str, Any]) -> None:
    with pytest.raises(GeometryError):
        RoadGraph.from_geojson(graph)


@pytest.mark.parametrize(
    "graph",
    [
        {"nodes": [], "edges": []},
        {"nodes": [{"id": "a", "lon": 1, "lat": 2}], "edges": [{"from": "a", "to": "b"}]},
        {"nodes": [{"id": "a"}], "edges": [{"from": "a", "to": "a"}]},
        {"nodes": [{"id": "a", "lon": 1, "lat": 2}], "edges": [{"to": "a"}]},
    ],
)
def test_bad_node_edge_graphs_are_refused(graph: dict[str, Any]) -> None:
    with pytest.raises(GeometryError):
        RoadGraph.from_nodes_edges(graph)


def test_the_index_is_rebuilt_only_when_the_store_moves_on(store: SqlAlertStore, make_alert: MakeAlert) -> None:
    loads: list[bool] = []

    def load(exercises: bool) -> list[Alert]:
        loads.append(exercises)
        return store.active_alerts(include_exercises=exercises)

    cache = HazardIndexCache(store.latest_cursor, load)
    assert len(cache.get(True)) == 0
    assert cache.get(True) is cache.get(True) and loads == [True]
    store.add(make_alert("A", polygon=DANGER_BOX, level=AlertLevel.DANGER))
    assert len(cache.get(True)) == 1 and len(cache.get(False)) == 0  # an exercise
    assert loads == [True, True, False]


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture
def hazards(store: SqlAlertStore, make_alert: MakeAlert) -> None:
    store.add(make_alert("DANGER", polygon=DANGER_BOX, level=AlertLevel.DANGER, exercise=False, drill_id=None,
                         area_name="Box river", area_name_ja="箱川"))
    store.add(make_alert("DRILL", polygon=CAUTION_BOX, level=AlertLevel.FLOODING))


@pytest.mark.usefixtures("hazards")
def test_route_check_over_http(api: TestClient, callers: Any) -> None:
    _, partner = callers.partner("alerts:read")
    body = {"route": {"type": "LineString", "coordinates": ROUTE}, "graph": grid_graph()}
    response = api.post("/v1/route-check", headers=partner, json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["crosses"], result["max_level"], result["avoid"]) == (True, 4, True)
    [hazard] = result["hazards"]  # the exercise is not visible to this partner
    assert (hazard["alert_id"], hazard["level"], hazard["avoid"], hazard["status"]) == ("DANGER", 4, True, "Actual")
    assert hazard["avoid_polygon"] == {"type": "Polygon", "coordinates": [[list(p) for p in DANGER_BOX]]}
    assert hazard["headline_ja"] == "箱川 氾濫危険情報（警戒レベル4）"
    assert result["detour_status"] == "found"
    assert not LineString(result["detour"]["geometry"]["coordinates"]).intersects(Polygon(DANGER_BOX))
    _, drills = callers.partner("alerts:read", "exercises")
    feature = {"route": {"type": "Feature", "properties": {"name": "trip"},
                         "geometry": {"type": "LineString", "coordinates": ROUTE}}}
    seen = api.post("/v1/route-check", headers=drills, json=feature).json()
    assert [(h["alert_id"], h["status"], h["headline_en"]) for h in seen["hazards"]] == [
        ("DANGER", "Actual", "Box river: flood danger (alert level 4)"),
        ("DRILL", "Exercise", "EXERCISE/訓練 Zenpukuji River: flooding occurring (alert level 5)")]
    assert seen["max_level"] == 5 and seen["detour_status"] == "not_requested"


@pytest.mark.usefixtures("hazards")
@pytest.mark.parametrize(
    "body",
    [
        {"route": {"type": "LineString", "coordinates": [[139.6, 35.7]]}},
        {"route": {"type": "LineString", "coordinates": [[139.6, 35.7]] * 10_001}},
        {"route": {"type": "Point", "coordinates": [139.6, 35.7]}},
        {"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [239.6, 35.7]]}},
        {"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.7, 35.7]]}, "buffer_m": 5000},
        {"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.7, 35.7]]}, "graph": {"nodes": []}},
        {"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.7, 35.7]]}, "colour": "red"},
        {},
    ],
)
def test_route_check_rejects_bad_input(api: TestClient, admin: dict[str, str], body: dict[str, Any]) -> None:
    assert api.post("/v1/route-check", headers=admin, json=body).status_code == 422


def test_route_check_rejects_malformed_json_and_needs_a_key(api: TestClient, admin: dict[str, str]) -> None:
    bad = api.post("/v1/route-check", headers={**admin, "content-type": "application/json"}, content=b'{"route": [')
    assert bad.status_code == 422
    route = {"route": {"type": "LineString", "coordinates": ROUTE}}
    assert api.post("/v1/route-check", json=route).status_code == 401
    nan = b'{"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [NaN, 35.7]]}}'
    assert api.post("/v1/route-check", headers={**admin, "content-type": "application/json"},
                    content=nan).status_code == 422


def test_ten_thousand_vertex_route_is_accepted(api: TestClient, admin: dict[str, str], hazards: None) -> None:
    coordinates = [[139.60 + 0.06 * i / 9999, 35.70] for i in range(10_000)]
    result = api.post("/v1/route-check", headers=admin,
                      json={"route": {"type": "LineString", "coordinates": coordinates}}).json()
    assert [h["alert_id"] for h in result["hazards"]] == ["DANGER", "DRILL"]
    assert result["hazards"][0]["level"] == 4


def test_segment_distances_agree_with_whole_line_geometry(make_alert: MakeAlert) -> None:
    """The vectorised per-segment distances equal those measured on the whole line, on a winding route."""
    import math
    import random

    from alert_api.geo import LocalProjection, _buffered_hits, _hits

    rng = random.Random(3)
    rings = []
    for _n in range(60):
        x, y = 139.60 + rng.random() * 0.05, 35.69 + rng.random() * 0.03
        rings.append(((x, y), (x + 0.004, y), (x + 0.004, y + 0.003), (x, y + 0.003), (x, y)))
    index = HazardIndex([alert(make_alert, f"A{n}", AlertLevel.WARNING, ring) for n, ring in enumerate(rings)])
    route = [[139.60 + 0.05 * i / 499, 35.70 + 0.01 * math.sin(i / 40)] for i in range(500)]
    array = __import__("numpy").array(route)
    projection = LocalProjection(float(array[:, 1].mean()))
    line = LineString(array)
    metric = LineString(projection.metres(array))
    fast = {h.alert.alert_id: (h.entry_m, h.inside_m) for h in _hits(index, array, line, projection)}
    slow = {h.alert.alert_id: (h.entry_m, h.inside_m)
            for h in _buffered_hits(index, line, metric, projection, 1e-9) if h.inside_m > 0}
    assert fast.keys() == slow.keys() and len(fast) > 5
    for key, (entry, inside) in fast.items():
        assert entry == pytest.approx(slow[key][0], abs=0.5) and inside == pytest.approx(slow[key][1], abs=0.5)
