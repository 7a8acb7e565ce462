"""Geometry of hazards: the active-area index, route checks and detours.

:class:`HazardIndex` holds the polygons of the active alerts in a shapely
``STRtree``; :class:`HazardIndexCache` rebuilds it only when the store has
published something new (its latest cursor moved), once for viewers who see
exercises and once for those who do not.

A route check intersects a GeoJSON LineString with the index: the candidates
come from the tree by bounding box, then an exact intersection test on prepared
polygons. Distances along the route are measured in a local equirectangular
projection, accurate to well under 1 % over a city.

A detour needs the partner's road graph (GeoJSON LineStrings, or nodes and
edges): every edge that meets an area at level 4 or above is removed, the
route's ends are snapped to the nearest graph nodes, and ``networkx`` finds the
shortest remaining path by length.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import networkx as nx  # type: ignore[import-untyped]
import numpy as np
import shapely  # type: ignore[import-untyped]
import shapely.ops  # type: ignore[import-untyped]
from shapely.geometry import LineString, Point, Polygon  # type: ignore[import-untyped]
from shapely.strtree import STRtree  # type: ignore[import-untyped]

from alert_api.models import Alert
from suibou.contracts import AlertLevel

#: Most vertices of a route.
MAX_ROUTE_VERTICES = 10_000
#: Most edges of a partner's road graph.
MAX_GRAPH_EDGES = 100_000
#: Areas at or above this level are avoided by detours.
AVOID_LEVEL = AlertLevel.DANGER

Coordinates = Sequence[Sequence[float]]


class GeometryError(ValueError):
    """Input geometry that cannot be used; the message says why."""


# --------------------------------------------------------------------------- projection


@dataclasses.dataclass(frozen=True)
class LocalProjection:
    """Equirectangular metres around a reference latitude."""

    lat0: float

    @property
    def kx(self) -> float:
        return 111_320.0 * math.cos(math.radians(self.lat0))

    @property
    def ky(self) -> float:
        return 110_574.0

    def metres(self, coordinates: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.column_stack((coordinates[:, 0] * self.kx, coordinates[:, 1] * self.ky))

    def distance_m(self, a: Sequence[float], b: Sequence[float]) -> float:
        return math.hypot((a[0] - b[0]) * self.kx, (a[1] - b[1]) * self.ky)


def check_coordinates(coordinates: Coordinates, *, minimum: int, maximum: int, what: str) -> np.ndarray[Any, Any]:
    """Validates ``[[lon, lat], ...]`` (a third value, altitude, is ignored) and returns an (n, 2) array.

    Raises:
        GeometryError: Too few or too many points, or a point out of range.
    """
    if not minimum <= len(coordinates) <= maximum:
        raise GeometryError(f"{what} needs {minimum} to {maximum} positions, got {len(coordinates)}")
    try:
        array = np.asarray(coordinates, dtype=float)
        if array.ndim != 2 or array.shape[1] < 2:
            raise ValueError("not pairs")
        array = array[:, :2]
    except (TypeError, ValueError):
        try:  # ragged: some positions carry an altitude
            array = np.array([(float(p[0]), float(p[1])) for p in coordinates], dtype=float)
        except (TypeError, ValueError, IndexError):
            raise GeometryError(f"{what} positions must be [longitude, latitude] numbers") from None
    if not np.isfinite(array).all():
        raise GeometryError(f"{what} positions must be finite")
    if (np.abs(array[:, 0]) > 180).any() or (np.abs(array[:, 1]) > 90).any():
        raise GeometryError(f"{what} positions must be longitude -180..180, latitude -90..90")
    return array


# --------------------------------------------------------------------------- index


@dataclasses.dataclass(frozen=True)
class HazardHit:
    """One active area a line crosses."""

    alert: Alert
    polygon: Polygon
    entry_m: float  # distance along the line to where it first meets the area
    inside_m: float  # length of the line inside the area


class HazardIndex:
    """Active alert areas in an STRtree.

    Args:
        alerts: Active alerts; those without a polygon are left out.
    """

    def __init__(self, alerts: Iterable[Alert]) -> None:
        self.alerts: list[Alert] = []
        polygons: list[Polygon] = []
        for alert in alerts:
            ring = alert.latest.event.polygon
            if not ring:
                continue
            polygon = Polygon(ring)
            if not polygon.is_valid:
                polygon = shapely.make_valid(polygon)
            self.alerts.append(alert)
            polygons.append(polygon)
        self.polygons = np.array(polygons, dtype=object)
        shapely.prepare(self.polygons)
        self.levels = np.array([int(a.latest.event.level) for a in self.alerts], dtype=int)
        self.tree = STRtree(self.polygons)

    def __len__(self) -> int:
        return len(self.alerts)

    def intersecting(self, geometry: shapely.Geometry, min_level: int = 1) -> np.ndarray[Any, Any]:
        """Indices of the areas ``geometry`` meets, at ``min_level`` or above."""
        if not len(self.alerts):
            return np.zeros(0, dtype=int)
        found = self.tree.query(geometry, predicate="intersects")
        if min_level > 1:
            found = found[self.levels[found] >= min_level]
        return np.sort(found)

    def blocked_edges(self, edges: np.ndarray[Any, Any], min_level: int) -> set[int]:
        """Indices of ``edges`` (array of LineStrings) that meet an area at ``min_level`` or above."""
        if not len(self.alerts) or not len(edges):
            return set()
        edge_index, area_index = self.tree.query(edges, predicate="intersects")
        keep = self.levels[area_index] >= min_level
        return set(int(i) for i in edge_index[keep])

    def inside(self, point: Point, min_level: int) -> list[int]:
        return [int(i) for i in self.intersecting(point, min_level)]


class HazardIndexCache:
    """Keeps one :class:`HazardIndex` per exercise visibility, rebuilt when the store has moved on.

    Args:
        latest_cursor: Returns the store's latest cursor.
        load: Returns the active alerts for a visibility (``True``: with exercises).
    """

    def __init__(self, latest_cursor: Callable[[], int], load: Callable[[bool], list[Alert]]) -> None:
        self._latest_cursor = latest_cursor
        self._load = load
        self._lock = threading.Lock()
        self._cache: dict[bool, tuple[int, HazardIndex]] = {}

    def get(self, include_exercises: bool) -> HazardIndex:
        cursor = self._latest_cursor()
        with self._lock:
            cached = self._cache.get(include_exercises)
            if cached is not None and cached[0] == cursor:
                return cached[1]
        index = HazardIndex(self._load(include_exercises))
        with self._lock:
            self._cache[include_exercises] = (cursor, index)
        # Tens of thousands of long-lived objects (alerts, polygons) would otherwise be traversed by every
        # full garbage collection, a pause of 100 ms or more in the middle of a request. Frozen objects are
        # still freed when no longer referenced; only the cycle collector skips them.
        gc.freeze()
        return index


# --------------------------------------------------------------------------- route check


@dataclasses.dataclass(frozen=True)
class RouteCheck:
    """What a route crosses, nearest first, and the detour if one was asked for."""

    hits: list[HazardHit]
    length_m: float
    detour: Detour | None
    detour_status: str


def _line_distance(projection: LocalProjection, metric_line: LineString, point: Sequence[float]) -> float:
    return float(metric_line.project(Point(point[0] * projection.kx, point[1] * projection.ky)))


def _hits(index: HazardIndex, array: np.ndarray[Any, Any], line: LineString,
          projection: LocalProjection) -> list[HazardHit]:
    """The areas ``line`` meets, with entry distance and length inside, computed per route segment.

    The STRtree finds the areas; a second, small tree over the route's segments finds which segments
    meet which area, and the cuts of those short segments give the distances (all vectorised).
    """
    found = index.intersecting(line)
    if not len(found):
        return []
    starts, ends = array[:-1], array[1:]
    segments = shapely.linestrings(np.stack([starts, ends], axis=1))
    scale = np.array([projection.kx, projection.ky])
    segment_m = np.hypot(*((ends - starts) * scale).T)
    cumulative = np.concatenate([[0.0], np.cumsum(segment_m)])
    polygons = index.polygons[found]
    area_at, segment_at = STRtree(segments).query(polygons, predicate="intersects")
    # Segments wholly inside an area count in full from their start; only those that cross its
    # boundary are cut (on prepared polygons, the containment test is much cheaper than a cut).
    crossing = ~shapely.contains(polygons[area_at], segments[segment_at])
    cut_segment, cut_area = segment_at[crossing], area_at[crossing]
    parts = shapely.intersection(segments[cut_segment], polygons[cut_area])
    degrees = shapely.length(segments[cut_segment])
    share = np.ones(len(segment_at))
    share[crossing] = np.divide(shapely.length(parts), degrees, out=np.zeros(len(parts)), where=degrees > 0)
    inside = np.zeros(len(found))
    np.add.at(inside, area_at, share * segment_m[segment_at])
    points, owner = shapely.get_coordinates(parts, return_index=True)
    a, b = starts[cut_segment][owner], ends[cut_segment][owner]
    step = b - a
    length2 = (step * step).sum(axis=1)
    t = np.divide(((points - a) * step).sum(axis=1), length2, out=np.zeros(len(points)), where=length2 > 0)
    cut_t = np.full(len(parts), np.inf)
    np.minimum.at(cut_t, owner, np.clip(t, 0.0, 1.0))
    first_t = np.zeros(len(segment_at))
    first_t[crossing] = np.where(np.isfinite(cut_t), cut_t, 0.0)
    entry_per_cut = cumulative[segment_at] + first_t * segment_m[segment_at]
    entry = np.full(len(found), np.inf)
    np.minimum.at(entry, area_at, entry_per_cut)
    return [HazardHit(index.alerts[int(i)], index.polygons[int(i)], float(e if np.isfinite(e) else 0.0), float(m))
            for i, e, m in zip(found, entry, inside)]


def _buffered_hits(index: HazardIndex, line: LineString, metric_line: LineString, projection: LocalProjection,
                   buffer_m: float) -> list[HazardHit]:
    """The areas within ``buffer_m`` of the route (one by one; buffered checks are the rarer kind)."""
    probe = line.buffer(buffer_m / min(projection.kx, projection.ky), quad_segs=4)
    hits = []
    for i in index.intersecting(probe):
        polygon = index.polygons[i]
        part = polygon.intersection(line)
        if part.is_empty:  # only within the buffer
            nearest = shapely.ops.nearest_points(line, polygon)[0]
            entry, inside = _line_distance(projection, metric_line, nearest.coords[0]), 0.0
        else:
            starts = [g.coords[0] for g in getattr(part, "geoms", [part]) if not g.is_empty]
            entry = min(_line_distance(projection, metric_line, s) for s in starts)
            metric_part = shapely.transform(part, lambda xy: xy * np.array([projection.kx, projection.ky]))
            inside = float(metric_part.length)
        hits.append(HazardHit(index.alerts[int(i)], polygon, entry, inside))
    return hits


def check_route(index: HazardIndex, coordinates: Coordinates, *, buffer_m: float = 0.0,
                graph: RoadGraph | None = None, avoid_level: int = int(AVOID_LEVEL)) -> RouteCheck:
    """Finds the active areas a route crosses, and a detour around areas at ``avoid_level`` or above.

    Args:
        index: The active areas the caller may see.
        coordinates: The route, ``[[lon, lat], ...]``, 2 to :data:`MAX_ROUTE_VERTICES` positions.
        buffer_m: Also report areas within this distance of the route (0 to 1000 m).
        graph: The partner's road graph; without it no detour is computed.
        avoid_level: Level from which the detour avoids an area.

    Returns:
        The hits, sorted by distance along the route, and the detour.

    Raises:
        GeometryError: The route is not a usable line.
    """
    array = check_coordinates(coordinates, minimum=2, maximum=MAX_ROUTE_VERTICES, what="route")
    if not 0 <= buffer_m <= 1000:
        raise GeometryError("buffer_m must be 0 to 1000")
    projection = LocalProjection(float(array[:, 1].mean()))
    line = LineString(array)
    metric_line = LineString(projection.metres(array))
    if buffer_m > 0:
        hits = _buffered_hits(index, line, metric_line, projection, buffer_m)
    else:
        hits = _hits(index, array, line, projection)
    hits.sort(key=lambda h: (h.entry_m, -int(h.alert.latest.event.level)))
    needs_detour = any(int(h.alert.latest.event.level) >= avoid_level for h in hits)
    detour, status = None, "not_requested"
    if graph is not None:
        if not needs_detour:
            status = "not_needed"
        else:
            detour, status = find_detour(index, graph, array[0], array[-1], avoid_level)
    return RouteCheck(hits, float(metric_line.length), detour, status)


# --------------------------------------------------------------------------- detours


@dataclasses.dataclass(frozen=True)
class Detour:
    coordinates: list[tuple[float, float]]
    length_m: float
    streets: list[str]
    crosses: list[Alert]  # areas below the avoid level it still crosses


class RoadGraph:
    """A partner's road graph: nodes with positions, directed edges with length and street name.

    Build it with :meth:`from_geojson` or :meth:`from_nodes_edges`.
    """

    def __init__(self) -> None:
        self.graph: nx.DiGraph = nx.DiGraph()
        self.positions: dict[Any, tuple[float, float]] = {}
        self.edge_list: list[tuple[Any, Any]] = []

    def _add_edge(self, a: Any, b: Any, name: str, oneway: bool, projection: LocalProjection) -> None:
        if a == b:
            return
        length = projection.distance_m(self.positions[a], self.positions[b])
        for u, v in ((a, b),) if oneway else ((a, b), (b, a)):
            self.graph.add_edge(u, v, length_m=length, name=name, index=len(self.edge_list))
            self.edge_list.append((u, v))
        if len(self.edge_list) > 2 * MAX_GRAPH_EDGES:
            raise GeometryError(f"the road graph has more than {MAX_GRAPH_EDGES} edges")

    @classmethod
    def from_geojson(cls, collection: Mapping[str, Any]) -> RoadGraph:
        """From a FeatureCollection of LineStrings: consecutive positions are joined by an edge,
        equal positions (to 1e-7 degrees) are one node; ``properties.oneway`` and ``name`` are read.

        Raises:
            GeometryError: Not a FeatureCollection of LineStrings, or too large.
        """
        if collection.get("type") != "FeatureCollection" or not isinstance(collection.get("features"), list):
            raise GeometryError("the road graph must be a GeoJSON FeatureCollection")
        road = cls()
        lines = []
        for feature in collection["features"]:
            geometry = feature.get("geometry") if isinstance(feature, Mapping) else None
            if not isinstance(geometry, Mapping) or geometry.get("type") != "LineString":
                raise GeometryError("every road graph feature must be a LineString")
            properties = feature.get("properties") or {}
            lines.append((check_coordinates(geometry.get("coordinates") or [], minimum=2,
                                            maximum=MAX_GRAPH_EDGES, what="road"), properties))
        if not lines:
            raise GeometryError("the road graph has no roads")
        projection = LocalProjection(float(np.mean([a[:, 1].mean() for a, _ in lines])))
        for array, properties in lines:
            name = str(properties.get("name") or properties.get("name_ja") or "")
            oneway = properties.get("oneway") in (True, "yes", "true", 1)
            keys = [(round(float(x), 7), round(float(y), 7)) for x, y in array]
            for key in keys:
                road.positions.setdefault(key, key)
            for a, b in zip(keys, keys[1:]):
                road._add_edge(a, b, name, oneway, projection)
        return road

    @classmethod
    def from_nodes_edges(cls, spec: Mapping[str, Any]) -> RoadGraph:
        """From ``{"nodes": [{"id", "lon", "lat"}], "edges": [{"from", "to", "oneway"?, "name"?}]}``.

        Raises:
            GeometryError: Missing or unknown nodes, bad positions, or too large.
        """
        nodes, edges = spec.get("nodes"), spec.get("edges")
        if not isinstance(nodes, list) or not isinstance(edges, list) or not nodes or not edges:
            raise GeometryError("the road graph needs non-empty 'nodes' and 'edges' lists")
        if len(edges) > MAX_GRAPH_EDGES or len(nodes) > MAX_GRAPH_EDGES:
            raise GeometryError(f"the road graph has more than {MAX_GRAPH_EDGES} nodes or edges")
        road = cls()
        try:
            positions = check_coordinates([(n["lon"], n["lat"]) for n in nodes], minimum=1,
                                          maximum=MAX_GRAPH_EDGES, what="node")
            for node, (lon, lat) in zip(nodes, positions):
                road.positions[str(node["id"])] = (float(lon), float(lat))
        except (KeyError, TypeError):
            raise GeometryError("every node needs 'id', 'lon' and 'lat'") from None
        projection = LocalProjection(float(positions[:, 1].mean()))
        for edge in edges:
            try:
                a, b = str(edge["from"]), str(edge["to"])
            except (KeyError, TypeError):
                raise GeometryError("every edge needs 'from' and 'to'") from None
            if a not in road.positions or b not in road.positions:
                raise GeometryError(f"edge {a}->{b} names an unknown node")
            road._add_edge(a, b, str(edge.get("name") or ""), bool(edge.get("oneway", False)), projection)
        return road

    def edge_lines(self) -> np.ndarray[Any, Any]:
        return np.array([LineString([self.positions[u], self.positions[v]]) for u, v in self.edge_list],
                        dtype=object)

    def nearest_node(self, point: Sequence[float], exclude: set[Any]) -> Any | None:
        """The graph node nearest to ``point`` (lon, lat) that is not in ``exclude``."""
        candidates = [n for n in self.positions if n not in exclude and n in self.graph]
        if not candidates:
            return None
        projection = LocalProjection(float(point[1]))
        xy = np.array([self.positions[n] for n in candidates], dtype=float)
        d2 = ((xy[:, 0] - point[0]) * projection.kx) ** 2 + ((xy[:, 1] - point[1]) * projection.ky) ** 2
        return candidates[int(np.argmin(d2))]


def find_detour(index: HazardIndex, road: RoadGraph, origin: Sequence[float], destination: Sequence[float],
                avoid_level: int) -> tuple[Detour | None, str]:
    """Shortest path on ``road`` from near ``origin`` to near ``destination`` that meets no area at
    ``avoid_level`` or above; ``(None, reason)`` when there is none."""
    if index.inside(Point(origin), avoid_level) or index.inside(Point(destination), avoid_level):
        return None, "endpoint_in_hazard"
    blocked = index.blocked_edges(road.edge_lines(), avoid_level)
    graph = road.graph.copy()
    graph.remove_edges_from(road.edge_list[i] for i in blocked)
    blocked_nodes = {n for n, position in road.positions.items() if index.inside(Point(position), avoid_level)}
    start = road.nearest_node(origin, blocked_nodes)
    end = road.nearest_node(destination, blocked_nodes)
    if start is None or end is None:
        return None, "no_path"
    try:
        nodes = nx.shortest_path(graph, start, end, weight="length_m")
    except nx.NetworkXNoPath:
        return None, "no_path"
    coordinates = [road.positions[n] for n in nodes]
    length = sum(graph.edges[u, v]["length_m"] for u, v in zip(nodes, nodes[1:]))
    streets: list[str] = []
    for u, v in zip(nodes, nodes[1:]):
        name = graph.edges[u, v]["name"]
        if name and (not streets or streets[-1] != name):
            streets.append(name)
    crosses: list[Alert] = []
    if len(coordinates) >= 2:
        crosses = [index.alerts[int(i)] for i in index.intersecting(LineString(coordinates))]
    return Detour([(round(x, 7), round(y, 7)) for x, y in coordinates], float(length), streets, crosses), "found"


__all__ = ["AVOID_LEVEL", "MAX_GRAPH_EDGES", "MAX_ROUTE_VERTICES", "Detour", "GeometryError", "HazardHit",
           "HazardIndex", "HazardIndexCache", "LocalProjection", "RoadGraph", "RouteCheck", "check_coordinates",
           "check_route", "find_detour"]
