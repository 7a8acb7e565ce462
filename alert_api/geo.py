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

Every check runs within a :class:`Budget`: bounds on its input (route
vertices, buffered vertices, graph nodes and edges), on its work (route
vertices times the areas its bounding box meets, areas crossed) and on its time
(a deadline checked inside the loops, which also notices a cancelled check,
e.g. when the client has gone). Input over a bound is a :class:`GeometryError`;
a deadline or a cancellation is :class:`BudgetExceeded`.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import networkx as nx
import numpy as np
import shapely
import shapely.ops
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from alert_api.models import Alert
from suibou.contracts import AlertLevel

#: Most vertices of a route.
MAX_ROUTE_VERTICES = 10_000
#: Most vertices of a route checked with a buffer (buffering costs per vertex).
MAX_BUFFERED_VERTICES = 2_000
#: Largest buffer, metres.
MAX_BUFFER_M = 1000.0
#: Most edges of a partner's road graph (a two-way road counts once).
MAX_GRAPH_EDGES = 20_000
#: Most nodes of a partner's road graph.
MAX_GRAPH_NODES = 20_000
#: suibou's service area (min_lon, min_lat, max_lon, max_lat): Japan and its islands, from Yonaguni (122.9 E)
#: and Okinotorishima (20.4 N) to Minamitorishima (153.9 E) and Etorofu (45.6 N). Far from the antimeridian and
#: the poles, so that a local projection and planar geometry hold inside it.
SERVICE_AREA: tuple[float, float, float, float] = (122.0, 20.0, 154.0, 46.0)
#: Areas at or above this level are avoided by detours.
AVOID_LEVEL = AlertLevel.DANGER

Coordinates = Sequence[Sequence[float]]


class GeometryError(ValueError):
    """Input geometry that cannot be used; the message says why."""


class BudgetExceeded(RuntimeError):
    """A check ran past its deadline, or was cancelled (``cancelled``: the client went away)."""

    def __init__(self, message: str, cancelled: bool = False) -> None:
        super().__init__(message)
        self.cancelled = cancelled


@dataclasses.dataclass
class Budget:
    """What one route check may cost.

    Attributes:
        deadline_s: Seconds the check may take, counted from ``started``.
        max_work: Most route vertices x active areas the route's bounding box meets (the cost of the exact
            intersection tests; a long zigzag meets every area's box).
        max_hits: Most areas a route may meet.
        max_graph_edges: Most edges of a road graph.
        max_graph_nodes: Most nodes of a road graph.
        service_area: Every position must lie in this box (min_lon, min_lat, max_lon, max_lat).
        started: Monotonic start time.
        cancelled: Set to stop the check at its next look at the budget.
    """

    deadline_s: float = 5.0
    max_work: int = 5_000_000
    max_hits: int = 1_000
    max_graph_edges: int = MAX_GRAPH_EDGES
    max_graph_nodes: int = MAX_GRAPH_NODES
    service_area: tuple[float, float, float, float] = SERVICE_AREA
    started: float = dataclasses.field(default_factory=time.monotonic)
    cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)

    def check(self) -> None:
        """Raises :class:`BudgetExceeded` if the check was cancelled or is past its deadline."""
        if self.cancelled.is_set():
            raise BudgetExceeded("the route check was cancelled", cancelled=True)
        if time.monotonic() - self.started > self.deadline_s:
            raise BudgetExceeded(f"the route check took longer than its {self.deadline_s:g} s budget")

    def ticker(self, every: int = 1024) -> Callable[[], None]:
        """A function to call once per loop step; it looks at the budget every ``every`` calls."""
        count = 0

        def tick() -> None:
            nonlocal count
            count += 1
            if count % every == 0:
                self.check()

        return tick


#: No deadline, no cancellation: for callers that bound the work themselves (tests, benchmarks).
def unlimited() -> Budget:
    return Budget(deadline_s=math.inf, max_work=2**62, max_hits=2**62)


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


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_coordinates(coordinates: Coordinates, *, minimum: int, maximum: int, what: str,
                      area: Sequence[float] | None = SERVICE_AREA) -> np.ndarray[Any, Any]:
    """Validates ``[[lon, lat], ...]`` (a third value, altitude, is ignored) and returns an (n, 2) array.

    Args:
        area: The box every position must lie in (the service area); ``None``: anywhere on Earth.

    Raises:
        GeometryError: Too few or too many points, a point that is not two or three numbers (booleans are
            not numbers), or a point out of range or outside ``area``.
    """
    if not isinstance(coordinates, Sequence) or isinstance(coordinates, str):
        raise GeometryError(f"{what} must be a list of [longitude, latitude] positions")
    if not minimum <= len(coordinates) <= maximum:
        raise GeometryError(f"{what} needs {minimum} to {maximum} positions, got {len(coordinates)}")
    pairs = []
    for position in coordinates:
        if (not isinstance(position, Sequence) or isinstance(position, str) or not 2 <= len(position) <= 3
                or not all(_is_number(v) for v in position)):
            raise GeometryError(f"{what} positions must be [longitude, latitude] numbers (booleans and strings "
                                "are not numbers)")
        pairs.append((position[0], position[1]))
    array = np.array(pairs, dtype=float).reshape(-1, 2)
    if not np.isfinite(array).all():
        raise GeometryError(f"{what} positions must be finite")
    if (np.abs(array[:, 0]) > 180).any() or (np.abs(array[:, 1]) > 90).any():
        raise GeometryError(f"{what} positions must be longitude -180..180, latitude -90..90")
    if area is not None:
        outside = ((array[:, 0] < area[0]) | (array[:, 0] > area[2]) | (array[:, 1] < area[1])
                   | (array[:, 1] > area[3]))
        if outside.any():
            lon, lat = array[int(np.argmax(outside))]
            raise GeometryError(f"{what} position [{lon:g}, {lat:g}] lies outside suibou's service area "
                                f"(longitude {area[0]:g} to {area[2]:g}, latitude {area[1]:g} to {area[3]:g})")
    return array


#: Most positions of an area's ring (first and last equal).
MAX_POLYGON_VERTICES = 500


def check_polygon(ring: Coordinates, area: Sequence[float] | None = SERVICE_AREA) -> tuple[tuple[float, float], ...]:
    """A usable area ring: closed, 4 to 500 positions, inside ``area``, not crossing itself, with an area.

    Raises:
        GeometryError: Why not.
    """
    array = check_coordinates(ring, minimum=4, maximum=MAX_POLYGON_VERTICES, what="polygon", area=area)
    if not np.array_equal(array[0], array[-1]):
        raise GeometryError("polygon must be closed: its last position must equal its first")
    polygon = Polygon(array)
    if not polygon.is_valid:
        reason = shapely.is_valid_reason(polygon)
        raise GeometryError(f"polygon is not a valid simple ring ({reason}); it must not cross itself")
    if polygon.area <= 0:
        raise GeometryError("polygon must enclose an area")
    return tuple((float(x), float(y)) for x, y in array)


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
        polygons: list[BaseGeometry] = []  # make_valid may give a multipolygon
        for alert in alerts:
            ring = alert.latest.event.polygon
            if not ring:
                continue
            polygon: BaseGeometry = Polygon(ring)
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

    def near_envelope(self, geometry: BaseGeometry, pad: float = 0.0) -> int:
        """How many areas' bounding boxes meet ``geometry``'s bounding box grown by ``pad`` degrees (cheap)."""
        if not len(self.alerts):
            return 0
        box = shapely.box(*np.asarray(geometry.bounds) + np.array([-pad, -pad, pad, pad]))
        return len(self.tree.query(box))

    def blocked_edges(self, edges: np.ndarray[Any, Any], min_level: int) -> set[int]:
        """Indices of ``edges`` (array of LineStrings) that meet an area at ``min_level`` or above."""
        if not len(self.alerts) or not len(edges):
            return set()
        edge_index, area_index = self.tree.query(edges, predicate="intersects")
        keep = self.levels[area_index] >= min_level
        return {int(i) for i in edge_index[keep]}

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
        self._building: dict[bool, threading.Lock] = {}

    def get(self, include_exercises: bool) -> HazardIndex:
        cursor = self._latest_cursor()
        with self._lock:
            cached = self._cache.get(include_exercises)
            if cached is not None and cached[0] == cursor:
                return cached[1]
            building = self._building.setdefault(include_exercises, threading.Lock())
        # One build per visibility at a time: concurrent checks wait for it instead of each building the same index.
        with building:
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
          projection: LocalProjection, budget: Budget | None = None) -> list[HazardHit]:
    """The areas ``line`` meets, with entry distance and length inside, computed per route segment.

    The STRtree finds the areas; a second, small tree over the route's segments finds which segments
    meet which area, and the cuts of those short segments give the distances (all vectorised).
    """
    found = index.intersecting(line)
    _check_hits(len(found), budget or unlimited())
    if not len(found):
        return []
    starts, ends = array[:-1], array[1:]
    # On arrays shapely returns arrays (its stubs cannot tell from the argument types).
    segments = cast("np.ndarray[Any, Any]", shapely.linestrings(np.stack([starts, ends], axis=1)))
    scale = np.array([projection.kx, projection.ky])
    segment_m = np.hypot(*((ends - starts) * scale).T)
    cumulative = np.concatenate([[0.0], np.cumsum(segment_m)])
    polygons = index.polygons[found]
    area_at, segment_at = STRtree(segments).query(polygons, predicate="intersects")
    # Segments wholly inside an area count in full from their start; only those that cross its
    # boundary are cut (on prepared polygons, the containment test is much cheaper than a cut).
    crossing = ~shapely.contains(polygons[area_at], segments[segment_at])
    cut_segment, cut_area = segment_at[crossing], area_at[crossing]
    parts = cast("np.ndarray[Any, Any]", shapely.intersection(segments[cut_segment], polygons[cut_area]))
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


def _check_hits(found: int, budget: Budget) -> None:
    if found > budget.max_hits:
        raise GeometryError(f"the route meets {found} active areas, more than one check reports "
                            f"({budget.max_hits}); check it in shorter parts")
    budget.check()


def _buffered_hits(index: HazardIndex, line: LineString, metric_line: LineString, projection: LocalProjection,
                   buffer_m: float, budget: Budget | None = None) -> list[HazardHit]:
    """The areas within ``buffer_m`` of the route (one by one; buffered checks are the rarer kind)."""
    budget = budget or unlimited()
    # GEOS buffers a long, self-overlapping line very slowly (seconds for 2,000 positions and 1 km), so the probe
    # is the buffer of the line simplified by 5 % of the buffer, widened by as much: a superset of the areas
    # within buffer_m. Each candidate is then measured exactly, in metres, and kept only if it is within buffer_m.
    degrees = buffer_m / min(projection.kx, projection.ky)
    probe = line.simplify(degrees * 0.05).buffer(degrees * 1.05, quad_segs=4)
    budget.check()
    found = index.intersecting(probe)
    _check_hits(len(found), budget)
    scale = np.array([projection.kx, projection.ky])
    hits = []
    for i in found:
        budget.check()
        polygon = index.polygons[i]
        part = polygon.intersection(line)
        if part.is_empty:  # only within the buffer, if at all
            if shapely.transform(polygon, lambda xy: xy * scale).distance(metric_line) > buffer_m:
                continue
            nearest = shapely.ops.nearest_points(line, polygon)[0]
            entry, inside = _line_distance(projection, metric_line, nearest.coords[0]), 0.0
        else:
            starts = [g.coords[0] for g in getattr(part, "geoms", [part]) if not g.is_empty]
            entry = min(_line_distance(projection, metric_line, s) for s in starts)
            metric_part = shapely.transform(part, lambda xy: xy * scale)
            inside = float(metric_part.length)
        hits.append(HazardHit(index.alerts[int(i)], polygon, entry, inside))
    return hits


def check_route(index: HazardIndex, coordinates: Coordinates, *, buffer_m: float = 0.0,
                graph: RoadGraph | None = None, avoid_level: int = int(AVOID_LEVEL),
                budget: Budget | None = None) -> RouteCheck:
    """Finds the active areas a route crosses, and a detour around areas at ``avoid_level`` or above.

    Args:
        index: The active areas the caller may see.
        coordinates: The route, ``[[lon, lat], ...]``, 2 to :data:`MAX_ROUTE_VERTICES` positions.
        buffer_m: Also report areas within this distance of the route (0 to 1000 m).
        graph: The partner's road graph; without it no detour is computed.
        avoid_level: Level from which the detour avoids an area.
        budget: Bounds on the work and time; the defaults of :class:`Budget` when unset.

    Returns:
        The hits, sorted by distance along the route, and the detour.

    Raises:
        GeometryError: The route is not a usable line, or its check would cost more than the budget allows.
        BudgetExceeded: The deadline passed or the check was cancelled.
    """
    budget = budget or Budget()
    array = check_coordinates(coordinates, minimum=2, maximum=MAX_ROUTE_VERTICES, what="route",
                              area=budget.service_area)
    if not 0 <= buffer_m <= MAX_BUFFER_M:
        raise GeometryError(f"buffer_m must be 0 to {MAX_BUFFER_M:g}")
    if buffer_m > 0 and len(array) > MAX_BUFFERED_VERTICES:
        raise GeometryError(f"a route checked with buffer_m needs at most {MAX_BUFFERED_VERTICES} positions, "
                            f"got {len(array)}; simplify it or check it without a buffer")
    projection = LocalProjection(float(array[:, 1].mean()))
    line = LineString(array)
    metric_line = LineString(projection.metres(array))
    pad = buffer_m / min(projection.kx, projection.ky)
    near = index.near_envelope(line, pad)
    work = near * len(array) * (4 if buffer_m > 0 else 1)
    if work > budget.max_work:
        raise GeometryError(f"the route's bounding box meets {near} active areas; with {len(array)} positions "
                            f"that is more work than one check may do ({budget.max_work:,} position-areas): "
                            "check a long route in shorter parts")
    budget.check()
    if buffer_m > 0:
        hits = _buffered_hits(index, line, metric_line, projection, buffer_m, budget)
    else:
        hits = _hits(index, array, line, projection, budget)
    hits.sort(key=lambda h: (h.entry_m, -int(h.alert.latest.event.level)))
    needs_detour = any(int(h.alert.latest.event.level) >= avoid_level for h in hits)
    detour, status = None, "not_requested"
    if graph is not None:
        if not needs_detour:
            status = "not_needed"
        else:
            detour, status = find_detour(index, graph, array[0], array[-1], avoid_level, budget)
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

    Build it with :meth:`from_geojson` or :meth:`from_nodes_edges`; both refuse malformed input with a
    :class:`GeometryError` that says what is wrong, and graphs over the budget's node and edge bounds.
    """

    def __init__(self) -> None:
        self.graph: nx.DiGraph = nx.DiGraph()
        self.positions: dict[Any, tuple[float, float]] = {}
        self.edge_list: list[tuple[Any, Any]] = []
        self._roads = 0

    def _add_edge(self, a: Any, b: Any, name: str, oneway: bool, projection: LocalProjection,
                  budget: Budget) -> None:
        if a == b:
            return
        self._roads += 1
        if self._roads > budget.max_graph_edges:
            raise GeometryError(f"the road graph has more than {budget.max_graph_edges} edges")
        length = projection.distance_m(self.positions[a], self.positions[b])
        for u, v in ((a, b),) if oneway else ((a, b), (b, a)):
            self.graph.add_edge(u, v, length_m=length, name=name, index=len(self.edge_list))
            self.edge_list.append((u, v))

    @classmethod
    def from_geojson(cls, collection: Mapping[str, Any], budget: Budget | None = None) -> RoadGraph:
        """From a FeatureCollection of LineStrings: consecutive positions are joined by an edge,
        equal positions (to 1e-7 degrees) are one node; ``properties.oneway`` and ``name`` are read.

        Raises:
            GeometryError: Not a FeatureCollection of LineStrings, malformed properties, or too large.
        """
        budget = budget or Budget()
        if collection.get("type") != "FeatureCollection" or not isinstance(collection.get("features"), list):
            raise GeometryError("the road graph must be a GeoJSON FeatureCollection")
        road = cls()
        lines: list[tuple[Any, Any]] = []
        positions = 0
        tick = budget.ticker(256)
        for number, feature in enumerate(collection["features"]):
            tick()
            geometry = feature.get("geometry") if isinstance(feature, Mapping) else None
            if not isinstance(geometry, Mapping) or geometry.get("type") != "LineString":
                raise GeometryError(f"road graph feature {number}: every feature must be a LineString")
            coordinates = geometry.get("coordinates")
            if not isinstance(coordinates, list):
                raise GeometryError(f"road graph feature {number}: coordinates must be a list of positions")
            positions += len(coordinates)
            if positions > budget.max_graph_edges + len(lines) + 1:
                raise GeometryError(f"the road graph has more than {budget.max_graph_edges} edges")
            lines.append((check_coordinates(coordinates, minimum=2, maximum=MAX_ROUTE_VERTICES,
                                            what=f"road {number}", area=budget.service_area),
                          _road_properties(feature, number)))
        if not lines:
            raise GeometryError("the road graph has no roads")
        projection = LocalProjection(float(np.mean([a[:, 1].mean() for a, _ in lines])))
        tick = budget.ticker(1024)
        for array, (name, oneway) in lines:
            keys = [(round(float(x), 7), round(float(y), 7)) for x, y in array]
            for key in keys:
                road.positions.setdefault(key, key)
            if len(road.positions) > budget.max_graph_nodes:
                raise GeometryError(f"the road graph has more than {budget.max_graph_nodes} nodes")
            for a, b in itertools.pairwise(keys):
                tick()
                road._add_edge(a, b, name, oneway, projection, budget)
        return road

    @classmethod
    def from_nodes_edges(cls, spec: Mapping[str, Any], budget: Budget | None = None) -> RoadGraph:
        """From ``{"nodes": [{"id", "lon", "lat"}], "edges": [{"from", "to", "oneway"?, "name"?}]}``.

        Raises:
            GeometryError: Missing, malformed or unknown nodes, bad positions, or too large.
        """
        budget = budget or Budget()
        nodes, edges = spec.get("nodes"), spec.get("edges")
        if not isinstance(nodes, list) or not isinstance(edges, list) or not nodes or not edges:
            raise GeometryError("the road graph needs non-empty 'nodes' and 'edges' lists")
        if len(nodes) > budget.max_graph_nodes:
            raise GeometryError(f"the road graph has more than {budget.max_graph_nodes} nodes")
        if len(edges) > budget.max_graph_edges:
            raise GeometryError(f"the road graph has more than {budget.max_graph_edges} edges")
        road = cls()
        ids = []
        for number, node in enumerate(nodes):
            if not isinstance(node, Mapping) or not {"id", "lon", "lat"} <= node.keys():
                raise GeometryError(f"node {number}: every node needs 'id', 'lon' and 'lat'")
            ids.append(_node_id(node["id"], f"node {number}"))
        positions = check_coordinates([(n["lon"], n["lat"]) for n in nodes], minimum=1,
                                      maximum=budget.max_graph_nodes, what="node", area=budget.service_area)
        for node_id, (lon, lat) in zip(ids, positions):
            road.positions[node_id] = (float(lon), float(lat))
        projection = LocalProjection(float(positions[:, 1].mean()))
        tick = budget.ticker(1024)
        for number, edge in enumerate(edges):
            tick()
            if not isinstance(edge, Mapping) or "from" not in edge or "to" not in edge:
                raise GeometryError(f"edge {number}: every edge needs 'from' and 'to'")
            a, b = _node_id(edge["from"], f"edge {number} from"), _node_id(edge["to"], f"edge {number} to")
            if a not in road.positions or b not in road.positions:
                raise GeometryError(f"edge {number} ({a}->{b}) names an unknown node")
            name, oneway = _road_properties({"properties": edge}, number, what="edge")
            road._add_edge(a, b, name, oneway, projection, budget)
        return road

    def edge_lines(self) -> np.ndarray[Any, Any]:
        if not self.edge_list:
            return np.zeros(0, dtype=object)
        ends = np.array([(self.positions[u], self.positions[v]) for u, v in self.edge_list], dtype=float)
        return cast("np.ndarray[Any, Any]", shapely.linestrings(ends))

    def nearest_node(self, point: Sequence[float], exclude: set[Any]) -> Any | None:
        """The graph node nearest to ``point`` (lon, lat) that is not in ``exclude``."""
        candidates = [n for n in self.graph if n not in exclude]
        if not candidates:
            return None
        projection = LocalProjection(float(point[1]))
        xy = np.array([self.positions[n] for n in candidates], dtype=float)
        d2 = ((xy[:, 0] - point[0]) * projection.kx) ** 2 + ((xy[:, 1] - point[1]) * projection.ky) ** 2
        return candidates[int(np.argmin(d2))]


#: Longest street name kept, and longest node id accepted.
MAX_NAME = 256


def _node_id(value: Any, what: str) -> str:
    """A node id: a string or an integer (not a boolean, not a float), at most 256 characters."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise GeometryError(f"{what}: a node id must be a string or an integer")
    text = str(value)
    if not 0 < len(text) <= MAX_NAME:
        raise GeometryError(f"{what}: a node id must have 1 to {MAX_NAME} characters")
    return text


def _road_properties(feature: Mapping[str, Any], number: int, what: str = "road graph feature") -> tuple[str, bool]:
    """``(name, oneway)`` from a feature's properties; refuses what is not a name or a oneway flag."""
    properties = feature.get("properties")
    if properties is None:
        return "", False
    if not isinstance(properties, Mapping):
        raise GeometryError(f"{what} {number}: properties must be an object")
    name = properties.get("name")
    if name is None:
        name = properties.get("name_ja")
    if name is None:
        name = ""
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise GeometryError(f"{what} {number}: name must be a string of at most {MAX_NAME} characters")
    oneway = properties.get("oneway", False)
    if oneway is None:
        oneway = False
    if isinstance(oneway, float) or oneway not in (True, False, "yes", "no", "true", "false"):  # 1 and 0 too
        raise GeometryError(f'{what} {number}: oneway must be true, false, "yes" or "no"')
    return name, oneway in (True, "yes", "true")


def find_detour(index: HazardIndex, road: RoadGraph, origin: Sequence[float], destination: Sequence[float],
                avoid_level: int, budget: Budget | None = None) -> tuple[Detour | None, str]:
    """Shortest path on ``road`` from near ``origin`` to near ``destination`` that meets no area at
    ``avoid_level`` or above; ``(None, reason)`` when there is none.

    Raises:
        BudgetExceeded: The deadline passed or the check was cancelled (looked at while searching).
    """
    budget = budget or Budget()
    if index.inside(Point(origin), avoid_level) or index.inside(Point(destination), avoid_level):
        return None, "endpoint_in_hazard"
    blocked = index.blocked_edges(road.edge_lines(), avoid_level)
    budget.check()
    names = list(road.positions)
    blocked_nodes: set[Any] = set()
    if len(index) and names:
        points = shapely.points(np.array([road.positions[n] for n in names], dtype=float))
        point_index, area_index = index.tree.query(points, predicate="intersects")
        blocked_nodes = {names[int(i)] for i in point_index[index.levels[area_index] >= avoid_level]}
    budget.check()
    start = road.nearest_node(origin, blocked_nodes)
    end = road.nearest_node(destination, blocked_nodes)
    if start is None or end is None:
        return None, "no_path"
    tick = budget.ticker(4096)

    def weight(u: Any, v: Any, data: Mapping[str, Any]) -> float | None:
        tick()
        return None if data["index"] in blocked else float(data["length_m"])

    try:
        nodes = nx.shortest_path(road.graph, start, end, weight=weight)
    except nx.NetworkXNoPath:
        return None, "no_path"
    graph = road.graph
    coordinates = [road.positions[n] for n in nodes]
    length = sum(graph.edges[u, v]["length_m"] for u, v in itertools.pairwise(nodes))
    streets: list[str] = []
    for u, v in itertools.pairwise(nodes):
        name = graph.edges[u, v]["name"]
        if name and (not streets or streets[-1] != name):
            streets.append(name)
    crosses: list[Alert] = []
    if len(coordinates) >= 2:
        crosses = [index.alerts[int(i)] for i in index.intersecting(LineString(coordinates))]
    return Detour([(round(x, 7), round(y, 7)) for x, y in coordinates], float(length), streets, crosses), "found"


__all__ = [
    "AVOID_LEVEL",
    "MAX_BUFFERED_VERTICES",
    "MAX_BUFFER_M",
    "MAX_GRAPH_EDGES",
    "MAX_GRAPH_NODES",
    "MAX_ROUTE_VERTICES",
    "SERVICE_AREA",
    "Budget",
    "BudgetExceeded",
    "Detour",
    "GeometryError",
    "HazardHit",
    "HazardIndex",
    "HazardIndexCache",
    "LocalProjection",
    "RoadGraph",
    "RouteCheck",
    "check_coordinates",
    "check_route",
    "find_detour",
    "unlimited",
]
