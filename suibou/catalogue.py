"""Gauges, river reaches and their thresholds: the station catalogue.

A catalogue names every rain gauge, water-level gauge and river reach that a
storm or the pipeline refers to, with the four level thresholds Japanese river
management uses for each level gauge (水防団待機水位 standby, 氾濫注意水位
flood caution, 避難判断水位 evacuation judgement, 氾濫危険水位 flood danger)
and the bank-full level above which the river is flooding.

Catalogues are JSON files (``suibou/catalogues/*.json``), documented in
``docs/storms.md``. Format ``station_catalogue/2`` adds, to the rain gauges,
level gauges and reaches of ``station_catalogue/1`` (still read):

* landslide warning zones (土砂災害警戒区域, :class:`LandslideZone`): polygons
  with a critical line each, and the rain gauges that sample them
  (``RainGauge.zone_ids``);
* river cameras (:class:`Camera`): position and the reach and level gauge they watch;
* 1 km rainfall grids (:class:`GridDefinition`): JIS X 0410 third-order mesh
  cells (30″ of latitude by 45″ of longitude, about 0.93 × 1.13 km at 35.7°N).

A catalogue may also carry ``synthetic_hydrology`` (invented runoff and
rating-curve parameters per reach) and ``synthetic_slopes`` (invented slope
failure parameters per zone) that only the storm synthesiser
(:mod:`replay_data.synth`) uses.

Examples:
    >>> gauge = LevelGauge(station_id="WL-X", name="X", name_ja="X", lon=139.6, lat=35.7,
    ...     reach_id="R-X", standby_m=1.0, caution_m=1.5, evacuation_m=2.0, danger_m=2.5,
    ...     bank_full_m=3.0)
    >>> level_for(gauge, 2.2), level_for(gauge, 3.0)
    (<AlertLevel.WARNING: 3>, <AlertLevel.FLOODING: 5>)
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from suibou.contracts import MAX_POLYGON_VERTICES, AlertLevel
from suibou.hydrology import CriticalLine

CATALOGUE_DIR = Path(__file__).resolve().parent / "catalogues"
_FORMAT = "station_catalogue/2"
_READS = ("station_catalogue/1", "station_catalogue/2")
#: JIS X 0410 third-order mesh (基準地域メッシュ): 30″ latitude × 45″ longitude, about 1 km.
MESH3_DLAT = 30.0 / 3600.0
MESH3_DLON = 45.0 / 3600.0


def _check_position(what: str, lon: float, lat: float) -> None:
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise ValueError(f"{what}: lon={lon!r} is not a WGS 84 longitude")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise ValueError(f"{what}: lat={lat!r} is not a WGS 84 latitude")


def _check_id(what: str, value: str, prefix: str) -> None:
    if not isinstance(value, str) or not value.startswith(prefix) or len(value) > 64:
        raise ValueError(f"{what}: id {value!r} must start with {prefix!r} and be at most 64 characters")


@dataclasses.dataclass(frozen=True)
class RainGauge:
    """A rain gauge (雨量計) and the river reaches and landslide zones it samples.

    Attributes:
        reach_ids: Reaches whose catchment the gauge samples.
        zone_ids: Landslide warning zones whose rain the gauge samples (format 2).
    """

    station_id: str
    name: str
    name_ja: str
    lon: float
    lat: float
    reach_ids: tuple[str, ...]
    zone_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_id("rain gauge", self.station_id, "RG-")
        _check_position(self.station_id, self.lon, self.lat)
        object.__setattr__(self, "reach_ids", tuple(self.reach_ids))
        object.__setattr__(self, "zone_ids", tuple(self.zone_ids))
        if not self.reach_ids and not self.zone_ids:
            raise ValueError(f"{self.station_id}: a rain gauge must sample at least one reach or zone")


@dataclasses.dataclass(frozen=True)
class LevelGauge:
    """A water-level gauge (水位計) with its thresholds, metres above the gauge datum.

    Attributes:
        standby_m: 水防団待機水位, flood-fighting crews stand by.
        caution_m: 氾濫注意水位, flood caution (alert level 2).
        evacuation_m: 避難判断水位, evacuation judgement (alert level 3).
        danger_m: 氾濫危険水位, flood danger (alert level 4).
        bank_full_m: Top of the bank; at or above it the river is flooding (5).

    Raises:
        ValueError: The thresholds are not strictly increasing in the order above.
    """

    station_id: str
    name: str
    name_ja: str
    lon: float
    lat: float
    reach_id: str
    standby_m: float
    caution_m: float
    evacuation_m: float
    danger_m: float
    bank_full_m: float

    def __post_init__(self) -> None:
        _check_id("level gauge", self.station_id, "WL-")
        _check_position(self.station_id, self.lon, self.lat)
        values = self.thresholds()
        for name, value in values.items():
            if not math.isfinite(value):
                raise ValueError(f"{self.station_id}: {name}={value!r} is not a finite number")
        names = list(values)
        for low, high in itertools.pairwise(names):
            if not values[low] < values[high]:
                raise ValueError(
                    f"{self.station_id}: thresholds must increase strictly "
                    f"(standby < caution < evacuation < danger < bank_full), "
                    f"but {low}={values[low]:g} >= {high}={values[high]:g}"
                )

    def thresholds(self) -> dict[str, float]:
        """Threshold name -> metres, lowest first."""
        return {
            "standby_m": self.standby_m,
            "caution_m": self.caution_m,
            "evacuation_m": self.evacuation_m,
            "danger_m": self.danger_m,
            "bank_full_m": self.bank_full_m,
        }


def level_for(gauge: LevelGauge, level_m: float) -> AlertLevel:
    """The alert level that a water level implies at a gauge, by thresholds alone.

    A level exactly at a threshold counts as having reached it.

    Args:
        gauge: The gauge and its thresholds.
        level_m: Stage in metres above the gauge datum.

    Returns:
        FLOODING at or above bank-full, DANGER at or above flood danger, WARNING
        at or above evacuation judgement, CAUTION at or above flood caution,
        otherwise NONE. (Standby has no alert level of its own.)
    """
    if level_m >= gauge.bank_full_m:
        return AlertLevel.FLOODING
    if level_m >= gauge.danger_m:
        return AlertLevel.DANGER
    if level_m >= gauge.evacuation_m:
        return AlertLevel.WARNING
    if level_m >= gauge.caution_m:
        return AlertLevel.CAUTION
    return AlertLevel.NONE


@dataclasses.dataclass(frozen=True)
class Reach:
    """A stretch of river that alerts are raised for.

    Attributes:
        geometry: GeoJSON LineString coordinates, ``((lon, lat), ...)``, upstream first.
        level_station_id: The level gauge that represents the reach, if any.
        flows_into: The reach this one's water flows into next, if that reach is
            in the catalogue: the river network, which the flood scores read to
            look at the gauges upstream of a reach.
        travel_min: Minutes a flood wave takes from this reach's level gauge to
            the level gauge of ``flows_into``.
    """

    reach_id: str
    river: str
    name: str
    name_ja: str
    level_station_id: str | None
    geometry: tuple[tuple[float, float], ...]
    flows_into: str | None = None
    travel_min: float | None = None

    def __post_init__(self) -> None:
        _check_id("reach", self.reach_id, "R-")
        if (self.flows_into is None) != (self.travel_min is None):
            raise ValueError(f"{self.reach_id}: flows_into and travel_min come together")
        if self.travel_min is not None and not (isinstance(self.travel_min, int | float)
                                                and 0 < self.travel_min <= 24 * 60):
            raise ValueError(f"{self.reach_id}: travel_min must be in (0, 1440] minutes, got {self.travel_min!r}")
        if self.flows_into == self.reach_id:
            raise ValueError(f"{self.reach_id}: a reach cannot flow into itself")
        coords = tuple((float(lon), float(lat)) for lon, lat in self.geometry)
        if len(coords) < 2:
            raise ValueError(f"{self.reach_id}: a LineString needs at least two positions")
        for lon, lat in coords:
            _check_position(self.reach_id, lon, lat)
        object.__setattr__(self, "geometry", coords)

    def geojson(self) -> dict[str, Any]:
        """The reach as a GeoJSON (RFC 7946) Feature."""
        return {
            "type": "Feature",
            "id": self.reach_id,
            "geometry": {"type": "LineString", "coordinates": [list(c) for c in self.geometry]},
            "properties": {"river": self.river, "name": self.name, "name_ja": self.name_ja,
                           "level_station_id": self.level_station_id, "flows_into": self.flows_into},
        }


@dataclasses.dataclass(frozen=True)
class ReachHydrology:
    """Invented runoff and rating parameters for synthesising one reach's response.

    Used only by :mod:`replay_data.synth`; the pipeline never reads them.

    Attributes:
        catchment_km2: Area draining to the reach's level gauge.
        curve_number: SCS curve number (0-100]; urban Tokyo is 80-95.
        n_reservoirs: Linear reservoirs in the Nash cascade (shape of the response).
        k_min: Time constant of each reservoir, minutes (lag ~ n * k).
        base_flow_m3s: Dry-weather discharge.
        rating_a, rating_b, rating_h0_m: Rating curve Q = a * (h - h0) ** b, Q in m³/s.
        drain_capacity_mm_h: Most effective rain per hour the storm sewers can
            deliver to the river; the excess ponds on the streets (内水氾濫) and
            drains later. ``None`` for no limit.
    """

    catchment_km2: float
    curve_number: float
    n_reservoirs: int
    k_min: float
    base_flow_m3s: float
    rating_a: float
    rating_b: float
    rating_h0_m: float = 0.0
    drain_capacity_mm_h: float | None = None

    def __post_init__(self) -> None:
        if self.drain_capacity_mm_h is not None and not self.drain_capacity_mm_h > 0:
            raise ValueError(f"drain_capacity_mm_h must be positive, got {self.drain_capacity_mm_h!r}")
        if not self.catchment_km2 > 0:
            raise ValueError(f"catchment_km2 must be positive, got {self.catchment_km2!r}")
        if not 0 < self.curve_number <= 100:
            raise ValueError(f"curve_number must be in (0, 100], got {self.curve_number!r}")
        if self.n_reservoirs < 1 or not self.k_min > 0:
            raise ValueError("n_reservoirs must be >= 1 and k_min positive")
        if self.base_flow_m3s < 0 or not self.rating_a > 0 or not self.rating_b > 0:
            raise ValueError("base_flow_m3s must be >= 0, rating_a and rating_b positive")


def _ring(what: str, coords: Iterable[Iterable[float]]) -> tuple[tuple[float, float], ...]:
    ring = tuple((float(lon), float(lat)) for lon, lat in coords)
    if len(ring) < 4 or ring[0] != ring[-1]:
        raise ValueError(f"{what}: a polygon ring needs at least 4 positions, the first equal to the last")
    if len(ring) > MAX_POLYGON_VERTICES:
        raise ValueError(f"{what}: at most {MAX_POLYGON_VERTICES} positions per polygon")
    for lon, lat in ring:
        _check_position(what, lon, lat)
    from shapely.geometry import Polygon

    if not Polygon(ring).is_valid:
        raise ValueError(f"{what}: the polygon intersects itself")
    return ring


@dataclasses.dataclass(frozen=True)
class LandslideZone:
    """A landslide warning zone (土砂災害警戒区域) and its critical line.

    Attributes:
        zone_id: ``Z-...``.
        polygon: Closed GeoJSON ring ``((lon, lat), ...)``, first == last.
        critical_line: The zone's snake-line criterion (:class:`suibou.hydrology.CriticalLine`).
        hazard_type: What the zone is designated for: ``debris_flow`` (土石流),
            ``slope_failure`` (急傾斜地の崩壊) or ``landslide`` (地すべり).
    """

    zone_id: str
    name: str
    name_ja: str
    polygon: tuple[tuple[float, float], ...]
    critical_line: CriticalLine = CriticalLine()
    hazard_type: str = "slope_failure"

    def __post_init__(self) -> None:
        _check_id("landslide zone", self.zone_id, "Z-")
        object.__setattr__(self, "polygon", _ring(self.zone_id, self.polygon))
        if self.hazard_type not in ("debris_flow", "slope_failure", "landslide"):
            raise ValueError(f"{self.zone_id}: hazard_type must be debris_flow, slope_failure or landslide")
        if self.critical_line.zone_id != self.zone_id:
            object.__setattr__(self, "critical_line", dataclasses.replace(self.critical_line, zone_id=self.zone_id))

    @property
    def centroid(self) -> tuple[float, float]:
        """(lon, lat) of the polygon's centroid."""
        from shapely.geometry import Polygon

        point = Polygon(self.polygon).centroid
        return (float(point.x), float(point.y))

    def geojson(self) -> dict[str, Any]:
        """The zone as a GeoJSON (RFC 7946) Feature."""
        return {
            "type": "Feature",
            "id": self.zone_id,
            "geometry": {"type": "Polygon", "coordinates": [[list(c) for c in self.polygon]]},
            "properties": {"kind": "landslide_zone", "name": self.name, "name_ja": self.name_ja,
                           "hazard_type": self.hazard_type,
                           "critical_line": _critical_line_dict(self.critical_line)},
        }


def _critical_line_dict(cl: CriticalLine) -> dict[str, Any]:
    return {"r60_at_dry_mm": cl.r60_at_dry_mm, "swi_at_no_rain_mm": cl.swi_at_no_rain_mm,
            "swi_floor_mm": cl.swi_floor_mm, "note": cl.note}


@dataclasses.dataclass(frozen=True)
class Camera:
    """A river monitoring camera (河川監視カメラ) and what it watches.

    Attributes:
        camera_id: ``CAM-...``.
        reach_id: The reach in view.
        level_station_id: The level gauge (staff gauge) in view, if any; it must
            stand on ``reach_id``.
    """

    camera_id: str
    name: str
    name_ja: str
    lon: float
    lat: float
    reach_id: str
    level_station_id: str | None = None

    def __post_init__(self) -> None:
        _check_id("camera", self.camera_id, "CAM-")
        _check_position(self.camera_id, self.lon, self.lat)


@dataclasses.dataclass(frozen=True)
class GridDefinition:
    """A 1 km rainfall grid over one basin: a block of JIS X 0410 third-order mesh cells.

    Cell ``(j, i)`` (row ``j`` from the south, column ``i`` from the west) spans
    longitudes ``lon0 + i * dlon`` to ``lon0 + (i + 1) * dlon`` and latitudes
    ``lat0 + j * dlat`` to ``lat0 + (j + 1) * dlat``. ``lon0`` and ``lat0`` lie on
    mesh edges (multiples of 45″ and 30″), so cells coincide with the national mesh.

    Examples:
        >>> grid = GridDefinition("G1K-X", "X", lon0=139.5, lat0=35.675, nx=4, ny=3)
        >>> round(grid.cell_km[0], 2), round(grid.cell_km[1], 2)
        (1.13, 0.92)
        >>> grid.cell_of(139.52, 35.69)
        (1, 1)
    """

    grid_id: str
    name: str
    lon0: float
    lat0: float
    nx: int
    ny: int
    dlon: float = MESH3_DLON
    dlat: float = MESH3_DLAT

    def __post_init__(self) -> None:
        if not isinstance(self.grid_id, str) or not self.grid_id.startswith("G") or len(self.grid_id) > 64:
            raise ValueError(f"grid id {self.grid_id!r} must start with 'G' and be at most 64 characters")
        _check_position(self.grid_id, self.lon0, self.lat0)
        _check_position(self.grid_id, self.lon0 + self.nx * self.dlon, self.lat0 + self.ny * self.dlat)
        if not (1 <= self.nx <= 2000 and 1 <= self.ny <= 2000):
            raise ValueError(f"{self.grid_id}: nx and ny must be 1-2000")
        if (self.dlon, self.dlat) == (MESH3_DLON, MESH3_DLAT):
            for name, value, step in (("lon0", self.lon0, MESH3_DLON), ("lat0", self.lat0, MESH3_DLAT)):
                if abs(value / step - round(value / step)) > 1e-6:
                    raise ValueError(f"{self.grid_id}: {name}={value} is not on a third-order mesh edge")

    @property
    def lons(self) -> list[float]:
        """Longitudes of the cell centres, west to east."""
        return [round(self.lon0 + (i + 0.5) * self.dlon, 7) for i in range(self.nx)]

    @property
    def lats(self) -> list[float]:
        """Latitudes of the cell centres, south to north."""
        return [round(self.lat0 + (j + 0.5) * self.dlat, 7) for j in range(self.ny)]

    @property
    def cell_km(self) -> tuple[float, float]:
        """Cell size (east-west, north-south) in km at the grid's mid latitude."""
        lat = self.lat0 + self.ny * self.dlat / 2
        return (self.dlon * 111.320 * math.cos(math.radians(lat)), self.dlat * 110.574)

    def cell_of(self, lon: float, lat: float) -> tuple[int, int] | None:
        """``(row, column)`` of the cell holding a point, or None outside the grid."""
        i = math.floor((lon - self.lon0) / self.dlon)
        j = math.floor((lat - self.lat0) / self.dlat)
        return (j, i) if 0 <= i < self.nx and 0 <= j < self.ny else None

    def covers(self, lon: float, lat: float) -> bool:
        return self.cell_of(lon, lat) is not None


@dataclasses.dataclass(frozen=True)
class SlopeHydrology:
    """Invented parameters for synthesising when a zone's slope fails.

    Used only by :mod:`replay_data.synth`: a synthetic slope fails when the
    snake-line point is on or beyond the zone's critical line *and* the soil
    water index reaches ``failure_swi_mm``.
    """

    failure_swi_mm: float

    def __post_init__(self) -> None:
        if not self.failure_swi_mm > 0:
            raise ValueError(f"failure_swi_mm must be positive, got {self.failure_swi_mm!r}")


@dataclasses.dataclass(frozen=True)
class StationCatalogue:
    """Every gauge, reach, landslide zone, camera and grid of one area, cross-checked.

    Raises:
        ValueError: Duplicate ids, or a reference to a gauge, reach or zone that
            is not in the catalogue, or a reach whose level gauge points elsewhere.
    """

    name: str
    rain_gauges: tuple[RainGauge, ...]
    level_gauges: tuple[LevelGauge, ...]
    reaches: tuple[Reach, ...]
    provenance: str = ""
    hydrology: Mapping[str, ReachHydrology] = dataclasses.field(default_factory=dict)
    zones: tuple[LandslideZone, ...] = ()
    cameras: tuple[Camera, ...] = ()
    grids: tuple[GridDefinition, ...] = ()
    slopes: Mapping[str, SlopeHydrology] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for attr in ("rain_gauges", "level_gauges", "reaches", "zones", "cameras", "grids"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        object.__setattr__(self, "hydrology", dict(self.hydrology))
        object.__setattr__(self, "slopes", dict(self.slopes))
        ids = [g.station_id for g in self.rain_gauges] + [g.station_id for g in self.level_gauges]
        ids += [r.reach_id for r in self.reaches] + [z.zone_id for z in self.zones]
        ids += [c.camera_id for c in self.cameras] + [g.grid_id for g in self.grids]
        duplicates = sorted(i for i, n in collections.Counter(ids).items() if n > 1)
        if duplicates:
            raise ValueError(f"catalogue {self.name!r}: duplicate id(s): {', '.join(duplicates)}")
        reaches = {r.reach_id: r for r in self.reaches}
        levels = {g.station_id: g for g in self.level_gauges}
        zones = {z.zone_id: z for z in self.zones}
        for gauge in self.rain_gauges:
            unknown = [r for r in gauge.reach_ids if r not in reaches]
            if unknown:
                raise ValueError(f"{gauge.station_id}: unknown reach(es) {', '.join(unknown)}")
            unknown = [z for z in gauge.zone_ids if z not in zones]
            if unknown:
                raise ValueError(f"{gauge.station_id}: unknown zone(s) {', '.join(unknown)}")
        for level_gauge in self.level_gauges:
            reach = reaches.get(level_gauge.reach_id)
            if reach is None:
                raise ValueError(f"{level_gauge.station_id}: unknown reach {level_gauge.reach_id}")
            if reach.level_station_id != level_gauge.station_id:
                raise ValueError(
                    f"{level_gauge.station_id} is on {level_gauge.reach_id}, but that reach names "
                    f"{reach.level_station_id!r} as its level gauge"
                )
        for reach in self.reaches:
            if reach.level_station_id is not None and reach.level_station_id not in levels:
                raise ValueError(f"{reach.reach_id}: unknown level gauge {reach.level_station_id}")
            if reach.flows_into is not None and reach.flows_into not in reaches:
                raise ValueError(f"{reach.reach_id}: flows into unknown reach {reach.flows_into}")
        for reach in self.reaches:
            seen = {reach.reach_id}
            downstream = reach.flows_into
            while downstream is not None:
                if downstream in seen:
                    raise ValueError(f"{reach.reach_id}: the river network has a loop through {downstream}")
                seen.add(downstream)
                downstream = reaches[downstream].flows_into
        for camera in self.cameras:
            if camera.reach_id not in reaches:
                raise ValueError(f"{camera.camera_id}: unknown reach {camera.reach_id}")
            if camera.level_station_id is not None:
                watched = levels.get(camera.level_station_id)
                if watched is None:
                    raise ValueError(f"{camera.camera_id}: unknown level gauge {camera.level_station_id}")
                if watched.reach_id != camera.reach_id:
                    raise ValueError(f"{camera.camera_id} watches {camera.reach_id}, but "
                                     f"{watched.station_id} stands on {watched.reach_id}")
        unknown = sorted(set(self.hydrology) - set(reaches))
        if unknown:
            raise ValueError(f"hydrology for unknown reach(es): {', '.join(unknown)}")
        unknown = sorted(set(self.slopes) - set(zones))
        if unknown:
            raise ValueError(f"synthetic slopes for unknown zone(s): {', '.join(unknown)}")
        # Lookup tables (not fields: equality and the JSON form ignore them).
        object.__setattr__(self, "_rain_by_id", {g.station_id: g for g in self.rain_gauges})
        object.__setattr__(self, "_level_by_id", levels)
        object.__setattr__(self, "_reach_by_id", reaches)
        object.__setattr__(self, "_zone_by_id", zones)

    # ------------------------------------------------------------------ lookups

    def rain_gauge(self, station_id: str) -> RainGauge:
        try:
            return self._rain_by_id[station_id]  # type: ignore[attr-defined]
        except KeyError:
            raise KeyError(f"no rain gauge {station_id!r} in catalogue {self.name!r}") from None

    def level_gauge(self, station_id: str) -> LevelGauge:
        try:
            return self._level_by_id[station_id]  # type: ignore[attr-defined]
        except KeyError:
            raise KeyError(f"no level gauge {station_id!r} in catalogue {self.name!r}") from None

    def reach(self, reach_id: str) -> Reach:
        try:
            return self._reach_by_id[reach_id]  # type: ignore[attr-defined]
        except KeyError:
            raise KeyError(f"no reach {reach_id!r} in catalogue {self.name!r}") from None

    def zone(self, zone_id: str) -> LandslideZone:
        try:
            return self._zone_by_id[zone_id]  # type: ignore[attr-defined]
        except KeyError:
            raise KeyError(f"no landslide zone {zone_id!r} in catalogue {self.name!r}") from None

    def camera(self, camera_id: str) -> Camera:
        for camera in self.cameras:
            if camera.camera_id == camera_id:
                return camera
        raise KeyError(f"no camera {camera_id!r} in catalogue {self.name!r}")

    def grid(self, grid_id: str) -> GridDefinition:
        for grid in self.grids:
            if grid.grid_id == grid_id:
                return grid
        raise KeyError(f"no grid {grid_id!r} in catalogue {self.name!r}")

    def reach_for_level_station(self, station_id: str) -> Reach:
        """The reach a level gauge stands on. Raises KeyError for an unknown gauge."""
        return self.reach(self.level_gauge(station_id).reach_id)

    def reaches_for_rain_station(self, station_id: str) -> tuple[Reach, ...]:
        """The reaches whose catchment a rain gauge samples. Raises KeyError if unknown."""
        return tuple(self.reach(r) for r in self.rain_gauge(station_id).reach_ids)

    def upstream_reaches(self, reach_id: str) -> tuple[Reach, ...]:
        """The reaches that flow directly into ``reach_id``, in catalogue order."""
        self.reach(reach_id)  # KeyError for an unknown reach
        return tuple(r for r in self.reaches if r.flows_into == reach_id)

    def rain_stations_for_reach(self, reach_id: str) -> tuple[RainGauge, ...]:
        """The rain gauges that sample a reach's catchment, in catalogue order."""
        self.reach(reach_id)  # KeyError for an unknown reach
        return tuple(g for g in self.rain_gauges if reach_id in g.reach_ids)

    def zones_for_rain_station(self, station_id: str) -> tuple[LandslideZone, ...]:
        """The landslide zones a rain gauge samples. Raises KeyError if unknown."""
        return tuple(self.zone(z) for z in self.rain_gauge(station_id).zone_ids)

    def rain_stations_for_zone(self, zone_id: str) -> tuple[RainGauge, ...]:
        """The rain gauges that sample a landslide zone, in catalogue order."""
        self.zone(zone_id)  # KeyError for an unknown zone
        return tuple(g for g in self.rain_gauges if zone_id in g.zone_ids)

    def level_gauge_for_reach(self, reach_id: str) -> LevelGauge | None:
        station_id = self.reach(reach_id).level_station_id
        return None if station_id is None else self.level_gauge(station_id)

    def cameras_for_level_station(self, station_id: str) -> tuple[Camera, ...]:
        return tuple(c for c in self.cameras if c.level_station_id == station_id)

    def hazard_areas_geojson(self) -> dict[str, Any]:
        """River reaches and landslide zones as one GeoJSON FeatureCollection."""
        reaches = []
        for reach in self.reaches:
            feature = reach.geojson()
            feature["properties"] = {"kind": "river_reach", **feature["properties"]}
            reaches.append(feature)
        return {"type": "FeatureCollection", "name": self.name,
                "features": reaches + [z.geojson() for z in self.zones]}

    # ------------------------------------------------------------------ combining

    @classmethod
    def merge(cls, name: str, catalogues: Iterable[StationCatalogue],
              provenance: str | None = None) -> StationCatalogue:
        """One catalogue holding everything of several (ids must not collide)."""
        parts = list(catalogues)
        fields: dict[str, Any] = {attr: tuple(x for c in parts for x in getattr(c, attr))
                                  for attr in ("rain_gauges", "level_gauges", "reaches", "zones", "cameras", "grids")}
        return cls(
            name=name,
            provenance=provenance if provenance is not None else " ".join(
                f"[{c.name}] {c.provenance}" for c in parts),
            hydrology={k: v for c in parts for k, v in c.hydrology.items()},
            slopes={k: v for c in parts for k, v in c.slopes.items()},
            **fields,
        )

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """The catalogue as a ``station_catalogue/2`` document."""
        out: dict[str, Any] = {
            "format": _FORMAT,
            "name": self.name,
            "provenance": self.provenance,
            "rain_gauges": [
                {k: v for k, v in (dataclasses.asdict(g) | {"reach_ids": list(g.reach_ids),
                                                           "zone_ids": list(g.zone_ids)}).items()
                 if k != "zone_ids" or v}
                for g in self.rain_gauges
            ],
            "level_gauges": [dataclasses.asdict(g) for g in self.level_gauges],
            "reaches": [
                {k: v for k, v in (dataclasses.asdict(r) | {"geometry": {
                    "type": "LineString", "coordinates": [list(c) for c in r.geometry]}}).items()
                 if k not in ("flows_into", "travel_min") or r.flows_into is not None}
                for r in self.reaches
            ],
        }
        if self.zones:
            out["landslide_zones"] = [
                {"zone_id": z.zone_id, "name": z.name, "name_ja": z.name_ja, "hazard_type": z.hazard_type,
                 "geometry": {"type": "Polygon", "coordinates": [[list(c) for c in z.polygon]]},
                 "critical_line": _critical_line_dict(z.critical_line)}
                for z in self.zones
            ]
        if self.cameras:
            out["cameras"] = [dataclasses.asdict(c) for c in self.cameras]
        if self.grids:
            out["grids"] = [dataclasses.asdict(g) for g in self.grids]
        if self.hydrology:
            out["synthetic_hydrology"] = {k: dataclasses.asdict(v) for k, v in self.hydrology.items()}
        if self.slopes:
            out["synthetic_slopes"] = {k: dataclasses.asdict(v) for k, v in self.slopes.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StationCatalogue:
        """Reads a ``station_catalogue/1`` or ``/2`` document.

        Raises:
            ValueError: Not a catalogue, a missing or mistyped field, or any
                check of the catalogue's parts failing; the message says which.
        """
        if data.get("format") not in _READS:
            raise ValueError(f"not a station catalogue: format={data.get('format')!r} "
                             f"(this build reads {', '.join(_READS)})")
        try:
            reaches = []
            for r in data["reaches"]:
                geometry = r["geometry"]
                if geometry.get("type") != "LineString":
                    raise ValueError(f"{r.get('reach_id')}: geometry must be a GeoJSON LineString")
                reaches.append(Reach(**{**r, "geometry": tuple(tuple(c) for c in geometry["coordinates"])}))
            zones = []
            for z in data.get("landslide_zones", ()):
                geometry = z["geometry"]
                if geometry.get("type") != "Polygon" or len(geometry["coordinates"]) != 1:
                    raise ValueError(f"{z.get('zone_id')}: geometry must be a GeoJSON Polygon without holes")
                line = {k: v for k, v in z.get("critical_line", {}).items() if k != "zone_id"}
                zones.append(LandslideZone(
                    zone_id=z["zone_id"], name=z["name"], name_ja=z["name_ja"],
                    hazard_type=z.get("hazard_type", "slope_failure"),
                    polygon=tuple(tuple(c) for c in geometry["coordinates"][0]),
                    critical_line=CriticalLine(**line),
                ))
            return cls(
                name=data["name"],
                provenance=data.get("provenance", ""),
                rain_gauges=tuple(RainGauge(**{**g, "reach_ids": tuple(g["reach_ids"]),
                                               "zone_ids": tuple(g.get("zone_ids", ()))})
                                  for g in data["rain_gauges"]),
                level_gauges=tuple(LevelGauge(**g) for g in data["level_gauges"]),
                reaches=tuple(reaches),
                hydrology={k: ReachHydrology(**v) for k, v in data.get("synthetic_hydrology", {}).items()},
                zones=tuple(zones),
                cameras=tuple(Camera(**c) for c in data.get("cameras", ())),
                grids=tuple(GridDefinition(**g) for g in data.get("grids", ())),
                slopes={k: SlopeHydrology(**v) for k, v in data.get("synthetic_slopes", {}).items()},
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"malformed station catalogue: {type(error).__name__}: {error}") from None

    @classmethod
    def load(cls, path: str | Path) -> StationCatalogue:
        """Reads a catalogue JSON file, or a bundled one by name (``"kanda-basin"``)."""
        path = Path(path)
        if not path.suffix and not path.exists():
            path = CATALOGUE_DIR / f"{path}.json"
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def bundled_catalogues() -> Iterable[str]:
    """Names of the catalogues shipped in ``suibou/catalogues``."""
    return sorted(p.stem for p in CATALOGUE_DIR.glob("*.json"))
