"""The console's map: gauges, cameras, river reaches and landslide zones, read from station catalogues.

The map is drawn from ``station_catalogue/1`` and ``/2`` files (the documented
format of ``suibou/catalogues/*.json`` and of every stored or imported
storm's ``catalogue.json``). They are read here as data, drawn as the console
needs them. Everything the page needs is in one JSON document
served by the API, so the console works with no network beyond the API (no map
tiles, no scripts from elsewhere).

A reach is an alert area by its corridor: the same 150 m half-width buffer the
pipeline draws around the river line (``pipelines.alerts.corridor_polygon``),
so that an alert issued by hand for a reach that never had one covers the same
ground as the pipeline's.

Examples:
    >>> doc = {"format": "station_catalogue/2", "name": "x", "rain_gauges": [
    ...     {"station_id": "RG-A", "name": "A", "name_ja": "A", "lon": 139.60, "lat": 35.70,
    ...      "reach_ids": ["R-A"]}],
    ...     "level_gauges": [{"station_id": "WL-A", "name": "A", "name_ja": "A", "lon": 139.61,
    ...      "lat": 35.70, "reach_id": "R-A", "standby_m": 1, "caution_m": 2, "evacuation_m": 3,
    ...      "danger_m": 4, "bank_full_m": 5}],
    ...     "reaches": [{"reach_id": "R-A", "river": "A", "name": "A", "name_ja": "A",
    ...      "level_station_id": "WL-A", "geometry": {"type": "LineString",
    ...      "coordinates": [[139.60, 35.70], [139.62, 35.70]]}}]}
    >>> stations = StationMap.from_documents([doc])
    >>> stations.gauge("WL-A").level_for(3.2), stations.area("R-A").hazard
    (3, 'flood')
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from shapely.geometry import LineString, Polygon

from suibou.catalogue import CATALOGUE_DIR

log = logging.getLogger(__name__)

_FORMATS = ("station_catalogue/1", "station_catalogue/2")
#: Half-width of the corridor around a reach, metres (as the pipeline draws it).
REACH_CORRIDOR_M = 150.0
#: Threshold names of a level gauge, lowest first, with the alert level reached at each.
THRESHOLDS: tuple[tuple[str, int], ...] = (
    ("standby_m", 1), ("caution_m", 2), ("evacuation_m", 3), ("danger_m", 4), ("bank_full_m", 5))
#: The critical line used where a rain gauge samples no landslide zone (``suibou.hydrology``'s
#: default): invented, for illustration only.
DEFAULT_CRITICAL_LINE: Mapping[str, Any] = {
    "r60_at_dry_mm": 100.0, "swi_at_no_rain_mm": 300.0, "swi_floor_mm": 50.0,
    "note": "invented, plausible critical line; not JMA's line for any cell"}

Position = tuple[float, float]


class CatalogueError(ValueError):
    """A station catalogue the console cannot read; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class Gauge:
    """A rain or water-level gauge on the map.

    Attributes:
        kind: ``rain`` or ``level``.
        reach_ids: Reaches the gauge serves (a level gauge: its own).
        zone_ids: Landslide zones a rain gauge samples.
        thresholds: A level gauge's thresholds, metres (``standby_m`` … ``bank_full_m``).
    """

    station_id: str
    kind: Literal["rain", "level"]
    name: str
    name_ja: str
    lon: float
    lat: float
    catalogue: str
    reach_ids: tuple[str, ...] = ()
    zone_ids: tuple[str, ...] = ()
    thresholds: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def level_for(self, level_m: float) -> int:
        """The alert level a stage implies by this gauge's thresholds (1 below flood caution)."""
        reached = [level for name, level in THRESHOLDS if name in self.thresholds and level_m >= self.thresholds[name]]
        return max(reached, default=1)


@dataclasses.dataclass(frozen=True)
class Camera:
    """A river camera and the reach (and staff gauge) in its view."""

    camera_id: str
    name: str
    name_ja: str
    lon: float
    lat: float
    catalogue: str
    reach_id: str
    level_station_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Area:
    """An alert area: a river reach (flood) or a landslide warning zone (landslide).

    Attributes:
        line: A reach's river line, upstream first; empty for a zone.
        polygon: The alert polygon: a reach's corridor, a zone's outline (closed ring).
        critical_line: A zone's snake-line criterion (soil water index vs 60-minute rain).
    """

    area_id: str
    kind: Literal["reach", "zone"]
    hazard: Literal["flood", "landslide"]
    name: str
    name_ja: str
    catalogue: str
    polygon: tuple[Position, ...]
    line: tuple[Position, ...] = ()
    level_station_id: str | None = None
    critical_line: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class CatalogueInfo:
    name: str
    provenance: str
    bbox: tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class StationMap:
    """Every gauge, camera and alert area of the catalogues the console shows.

    Ids are unique across the map: when two catalogues define the same id (a
    stored storm's copy of a bundled catalogue), the first one read is kept.
    """

    catalogues: tuple[CatalogueInfo, ...] = ()
    gauges: tuple[Gauge, ...] = ()
    cameras: tuple[Camera, ...] = ()
    areas: tuple[Area, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_gauges", {g.station_id: g for g in self.gauges})
        object.__setattr__(self, "_cameras", {c.camera_id: c for c in self.cameras})
        object.__setattr__(self, "_areas", {a.area_id: a for a in self.areas})

    def gauge(self, station_id: str) -> Gauge | None:
        return self._gauges.get(station_id)  # type: ignore[attr-defined]

    def camera(self, camera_id: str) -> Camera | None:
        return self._cameras.get(camera_id)  # type: ignore[attr-defined]

    def area(self, area_id: str) -> Area | None:
        return self._areas.get(area_id)  # type: ignore[attr-defined]

    def critical_lines(self, gauge: Gauge) -> list[dict[str, Any]]:
        """The critical lines a rain gauge's snake line is judged against: those of its zones, else the default."""
        lines = [dict(area.critical_line, zone_id=area.area_id) for zone_id in gauge.zone_ids
                 if (area := self.area(zone_id)) is not None and area.critical_line is not None]
        return lines or [dict(DEFAULT_CRITICAL_LINE, zone_id=None)]

    @classmethod
    def from_documents(cls, documents: Iterable[Mapping[str, Any]]) -> StationMap:
        """The map of several catalogue documents, in order (first definition of an id wins).

        Raises:
            CatalogueError: A document is not a station catalogue or misses a field.
        """
        infos: list[CatalogueInfo] = []
        gauges: dict[str, Gauge] = {}
        cameras: dict[str, Camera] = {}
        areas: dict[str, Area] = {}
        for document in documents:
            info, parts = _read_catalogue(document)
            new = [p for p in parts if _id(p) not in gauges and _id(p) not in cameras and _id(p) not in areas]
            if not new:
                continue
            infos.append(info)
            for part in new:
                if isinstance(part, Gauge):
                    gauges[part.station_id] = part
                elif isinstance(part, Camera):
                    cameras[part.camera_id] = part
                else:
                    areas[part.area_id] = part
        return cls(tuple(infos), tuple(gauges.values()), tuple(cameras.values()), tuple(areas.values()))

    @classmethod
    def load(cls, paths: Sequence[Path]) -> StationMap:
        """Reads catalogue files, and every ``*.json`` (or ``*/catalogue.json``) in the folders among ``paths``.

        A file that is not a readable catalogue is skipped with a warning, so one
        bad imported storm does not take the console's map down.
        """
        documents = []
        for path in catalogue_files(paths):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                _read_catalogue(data)
            except (OSError, ValueError) as error:
                log.warning("console map: skipping %s: %s", path, error)
                continue
            documents.append(data)
        return cls.from_documents(documents)

    def to_json(self, roads: Iterable[tuple[str, str, str, Sequence[Position]]] = ()) -> dict[str, Any]:
        """The map as the console page draws it (lon/lat rounded to 6 decimals)."""
        return {
            "catalogues": [{"name": c.name, "provenance": c.provenance, "bbox": list(c.bbox)}
                           for c in self.catalogues],
            "gauges": [{"station_id": g.station_id, "kind": g.kind, "name": g.name, "name_ja": g.name_ja,
                        "lon": g.lon, "lat": g.lat, "catalogue": g.catalogue, "reach_ids": list(g.reach_ids),
                        "zone_ids": list(g.zone_ids), "thresholds": dict(g.thresholds) or None}
                       for g in self.gauges],
            "cameras": [dataclasses.asdict(c) for c in self.cameras],
            "areas": [{"area_id": a.area_id, "kind": a.kind, "hazard": a.hazard, "name": a.name,
                       "name_ja": a.name_ja, "catalogue": a.catalogue, "level_station_id": a.level_station_id,
                       "line": _coords(a.line), "polygon": _coords(a.polygon),
                       "critical_line": dict(a.critical_line) if a.critical_line else None}
                      for a in self.areas],
            "roads": [{"road_id": road_id, "name": name, "name_ja": name_ja, "line": _coords(line)}
                      for road_id, name, name_ja, line in roads],
        }


def _id(part: Gauge | Camera | Area) -> str:
    if isinstance(part, Gauge):
        return part.station_id
    if isinstance(part, Camera):
        return part.camera_id
    return part.area_id


def _coords(points: Sequence[Position]) -> list[list[float]]:
    return [[round(lon, 6), round(lat, 6)] for lon, lat in points]


def _read_catalogue(data: Mapping[str, Any]) -> tuple[CatalogueInfo, list[Gauge | Camera | Area]]:
    if not isinstance(data, Mapping) or data.get("format") not in _FORMATS:
        found = data.get("format") if isinstance(data, Mapping) else None
        raise CatalogueError(f"not a station catalogue (format {found!r})")
    name = str(data.get("name", ""))
    try:
        parts: list[Gauge | Camera | Area] = []
        for g in data.get("rain_gauges", ()):
            parts.append(Gauge(g["station_id"], "rain", g["name"], g["name_ja"], float(g["lon"]), float(g["lat"]),
                               name, tuple(g.get("reach_ids", ())), tuple(g.get("zone_ids", ()))))
        for g in data.get("level_gauges", ()):
            thresholds = {t: float(g[t]) for t, _ in THRESHOLDS}
            parts.append(Gauge(g["station_id"], "level", g["name"], g["name_ja"], float(g["lon"]), float(g["lat"]),
                               name, (g["reach_id"],), (), thresholds))
        for r in data.get("reaches", ()):
            line = tuple((float(lon), float(lat)) for lon, lat in r["geometry"]["coordinates"])
            parts.append(Area(r["reach_id"], "reach", "flood", r["name"], r["name_ja"], name,
                              corridor_polygon(line), line, r.get("level_station_id")))
        for z in data.get("landslide_zones", ()):
            ring = tuple((float(lon), float(lat)) for lon, lat in z["geometry"]["coordinates"][0])
            line_doc = dict(DEFAULT_CRITICAL_LINE) | {k: v for k, v in z.get("critical_line", {}).items()
                                                      if k != "zone_id"}
            parts.append(Area(z["zone_id"], "zone", "landslide", z["name"], z["name_ja"], name, ring,
                              critical_line=line_doc))
        for c in data.get("cameras", ()):
            parts.append(Camera(c["camera_id"], c["name"], c["name_ja"], float(c["lon"]), float(c["lat"]), name,
                                c["reach_id"], c.get("level_station_id")))
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise CatalogueError(f"catalogue {name!r}: malformed: {type(error).__name__}: {error}") from None
    points = [(g.lon, g.lat) for g in parts if isinstance(g, (Gauge, Camera))]
    points += [p for a in parts if isinstance(a, Area) for p in a.polygon]
    if not points:
        raise CatalogueError(f"catalogue {name!r} has nothing to draw")
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    bbox = (min(lons), min(lats), max(lons), max(lats))
    return CatalogueInfo(name, str(data.get("provenance", "")), bbox), parts


def corridor_polygon(line: Sequence[Position], half_width_m: float = REACH_CORRIDOR_M,
                     max_vertices: int = 200) -> tuple[Position, ...]:
    """A corridor around a (lon, lat) line as a closed ring, buffered in a local equirectangular projection.

    The same construction as the pipeline's (``pipelines.alerts.corridor_polygon``);
    a test keeps the two equal.
    """
    lat0 = sum(lat for _, lat in line) / len(line)
    kx, ky = 111_320.0 * math.cos(math.radians(lat0)), 110_574.0
    area = LineString([(lon * kx, lat * ky) for lon, lat in line]).buffer(half_width_m, quad_segs=4)
    tolerance = 1.0
    while len(area.exterior.coords) > max_vertices:
        area = cast(Polygon, area.simplify(tolerance))  # a simplified polygon is a polygon
        tolerance *= 2
    return tuple((round(x / kx, 6), round(y / ky, 6)) for x, y in area.exterior.coords)


def default_catalogue_paths(home: Path) -> list[Path]:
    """The bundled catalogues, then the storm cache (stored and imported storms)."""
    return [CATALOGUE_DIR, home / "cache" / "storms"]


def catalogue_files(paths: Sequence[Path]) -> list[Path]:
    """Files among ``paths``; for a folder its ``*.json`` and ``*/catalogue.json``, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += sorted(path.glob("*.json")) + sorted(path.glob("*/catalogue.json"))
    return files


__all__ = ["Area", "Camera", "CatalogueError", "CatalogueInfo", "DEFAULT_CRITICAL_LINE", "Gauge", "StationMap",
           "THRESHOLDS", "catalogue_files", "corridor_polygon", "default_catalogue_paths"]
