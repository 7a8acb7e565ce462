"""Gauges, river reaches and their thresholds: the station catalogue.

A catalogue names every rain gauge, water-level gauge and river reach that a
storm or the pipeline refers to, with the four level thresholds Japanese river
management uses for each level gauge (水防団待機水位 standby, 氾濫注意水位
flood caution, 避難判断水位 evacuation judgement, 氾濫危険水位 flood danger)
and the bank-full level above which the river is flooding.

Catalogues are JSON files (``replay_data/catalogues/*.json``); see
``kanda-basin.json`` for the format. A catalogue may also carry
``synthetic_hydrology``: invented runoff and rating-curve parameters per reach
that only the storm synthesiser (:mod:`replay_data.synth`) uses.

Examples:
    >>> gauge = LevelGauge(station_id="WL-X", name="X", name_ja="X", lon=139.6, lat=35.7,
    ...     reach_id="R-X", standby_m=1.0, caution_m=1.5, evacuation_m=2.0, danger_m=2.5,
    ...     bank_full_m=3.0)
    >>> level_for(gauge, 2.2), level_for(gauge, 3.0)
    (<AlertLevel.WARNING: 3>, <AlertLevel.FLOODING: 5>)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from suibou.contracts import AlertLevel

CATALOGUE_DIR = Path(__file__).resolve().parent / "catalogues"
_FORMAT = "station_catalogue/1"


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
    """A rain gauge (雨量計) and the river reaches whose catchment it samples."""

    station_id: str
    name: str
    name_ja: str
    lon: float
    lat: float
    reach_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_id("rain gauge", self.station_id, "RG-")
        _check_position(self.station_id, self.lon, self.lat)
        object.__setattr__(self, "reach_ids", tuple(self.reach_ids))
        if not self.reach_ids:
            raise ValueError(f"{self.station_id}: a rain gauge must sample at least one reach")


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
        for low, high in zip(names, names[1:]):
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
    """

    reach_id: str
    river: str
    name: str
    name_ja: str
    level_station_id: str | None
    geometry: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        _check_id("reach", self.reach_id, "R-")
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
                           "level_station_id": self.level_station_id},
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


@dataclasses.dataclass(frozen=True)
class StationCatalogue:
    """Every gauge and reach of one basin, with cross-checked references.

    Raises:
        ValueError: Duplicate ids, or a reference to a gauge or reach that is not
            in the catalogue, or a reach whose level gauge points elsewhere.
    """

    name: str
    rain_gauges: tuple[RainGauge, ...]
    level_gauges: tuple[LevelGauge, ...]
    reaches: tuple[Reach, ...]
    provenance: str = ""
    hydrology: Mapping[str, ReachHydrology] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for attr in ("rain_gauges", "level_gauges", "reaches"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        object.__setattr__(self, "hydrology", dict(self.hydrology))
        ids = [g.station_id for g in self.rain_gauges] + [g.station_id for g in self.level_gauges]
        ids += [r.reach_id for r in self.reaches]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"catalogue {self.name!r}: duplicate id(s): {', '.join(duplicates)}")
        reaches = {r.reach_id: r for r in self.reaches}
        levels = {g.station_id: g for g in self.level_gauges}
        for gauge in self.rain_gauges:
            unknown = [r for r in gauge.reach_ids if r not in reaches]
            if unknown:
                raise ValueError(f"{gauge.station_id}: unknown reach(es) {', '.join(unknown)}")
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
        unknown = sorted(set(self.hydrology) - set(reaches))
        if unknown:
            raise ValueError(f"hydrology for unknown reach(es): {', '.join(unknown)}")

    # ------------------------------------------------------------------ lookups

    def rain_gauge(self, station_id: str) -> RainGauge:
        for gauge in self.rain_gauges:
            if gauge.station_id == station_id:
                return gauge
        raise KeyError(f"no rain gauge {station_id!r} in catalogue {self.name!r}")

    def level_gauge(self, station_id: str) -> LevelGauge:
        for gauge in self.level_gauges:
            if gauge.station_id == station_id:
                return gauge
        raise KeyError(f"no level gauge {station_id!r} in catalogue {self.name!r}")

    def reach(self, reach_id: str) -> Reach:
        for reach in self.reaches:
            if reach.reach_id == reach_id:
                return reach
        raise KeyError(f"no reach {reach_id!r} in catalogue {self.name!r}")

    def reach_for_level_station(self, station_id: str) -> Reach:
        """The reach a level gauge stands on. Raises KeyError for an unknown gauge."""
        return self.reach(self.level_gauge(station_id).reach_id)

    def reaches_for_rain_station(self, station_id: str) -> tuple[Reach, ...]:
        """The reaches whose catchment a rain gauge samples. Raises KeyError if unknown."""
        return tuple(self.reach(r) for r in self.rain_gauge(station_id).reach_ids)

    def rain_stations_for_reach(self, reach_id: str) -> tuple[RainGauge, ...]:
        """The rain gauges that sample a reach's catchment, in catalogue order."""
        self.reach(reach_id)  # KeyError for an unknown reach
        return tuple(g for g in self.rain_gauges if reach_id in g.reach_ids)

    def level_gauge_for_reach(self, reach_id: str) -> LevelGauge | None:
        station_id = self.reach(reach_id).level_station_id
        return None if station_id is None else self.level_gauge(station_id)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": _FORMAT,
            "name": self.name,
            "provenance": self.provenance,
            "rain_gauges": [dataclasses.asdict(g) | {"reach_ids": list(g.reach_ids)} for g in self.rain_gauges],
            "level_gauges": [dataclasses.asdict(g) for g in self.level_gauges],
            "reaches": [
                dataclasses.asdict(r) | {"geometry": {"type": "LineString",
                                                      "coordinates": [list(c) for c in r.geometry]}}
                for r in self.reaches
            ],
        }
        if self.hydrology:
            out["synthetic_hydrology"] = {k: dataclasses.asdict(v) for k, v in self.hydrology.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StationCatalogue:
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a {_FORMAT} document (format={data.get('format')!r})")
        try:
            reaches = []
            for r in data["reaches"]:
                geometry = r["geometry"]
                if geometry.get("type") != "LineString":
                    raise ValueError(f"{r.get('reach_id')}: geometry must be a GeoJSON LineString")
                reaches.append(Reach(**{**r, "geometry": tuple(tuple(c) for c in geometry["coordinates"])}))
            return cls(
                name=data["name"],
                provenance=data.get("provenance", ""),
                rain_gauges=tuple(RainGauge(**{**g, "reach_ids": tuple(g["reach_ids"])})
                                  for g in data["rain_gauges"]),
                level_gauges=tuple(LevelGauge(**g) for g in data["level_gauges"]),
                reaches=tuple(reaches),
                hydrology={k: ReachHydrology(**v) for k, v in data.get("synthetic_hydrology", {}).items()},
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed station catalogue: {error}") from None

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
    """Names of the catalogues shipped in ``replay_data/catalogues``."""
    return sorted(p.stem for p in CATALOGUE_DIR.glob("*.json"))
