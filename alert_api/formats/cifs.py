"""Road closures and hazards in the Waze Closure and Incident Feed Specification (CIFS) JSON shape.

A road becomes an incident when its geometry meets an active alert's area:

- level 4 or above: ``type`` ROAD_CLOSED, ``subtype`` ROAD_CLOSED_HAZARD
  (changes routing);
- below: ``type`` HAZARD, ``subtype`` HAZARD_WEATHER_FLOOD (floods) or
  HAZARD_ON_ROAD (landslides) (notifies drivers only).

Each incident covers the part of the road inside the area. Its ``id`` is
``<alert id>:<road id>`` (``:<n>`` when the road enters the area more than
once), stable for the life of the alert across its updates. ``polyline`` is
space-separated ``lat lon`` with 6 decimals and at least two distinct points;
``street`` is required (partners reject incidents without one) and is the
road's Japanese name; ``description`` is bilingual. ``starttime`` is the
alert's onset. ``endtime`` rolls forward: now plus an hour, rounded up to the
next 10 minutes, so that closures lapse by themselves if this feed stops being
refreshed, and the feed does not change more often than every 10 minutes while
nothing else does.

Roads come from a GeoJSON FeatureCollection of LineStrings with ``road_id``,
``name`` and ``name_ja`` properties; suibou ships approximate main roads of
the upper Kanda basin (``alert_api/data/roads-kanda-basin.geojson``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import LineString, Polygon
from shapely.strtree import STRtree

from alert_api.formats.cap import cap_time
from alert_api.formats.texts import message_texts
from alert_api.models import Alert
from suibou.contracts import AlertLevel, Hazard

#: Default roads, shipped with the API.
DEFAULT_ROADS = "roads-kanda-basin.geojson"
#: How far ahead ``endtime`` is set, and its rounding.
END_HORIZON = dt.timedelta(hours=1)
END_STEP_S = 600


class RoadDataError(ValueError):
    """A roads file that cannot be used."""


@dataclasses.dataclass(frozen=True)
class Road:
    road_id: str
    name: str
    name_ja: str
    line: LineString


class Roads:
    """Named road centre lines in an STRtree.

    Raises:
        RoadDataError: A road without a name, with fewer than two points, or not a LineString.
    """

    def __init__(self, collection: Mapping[str, Any]) -> None:
        self.roads: list[Road] = []
        for feature in collection.get("features", []):
            properties = feature.get("properties") or {}
            geometry = feature.get("geometry") or {}
            road_id = str(properties.get("road_id") or feature.get("id") or "")
            name, name_ja = str(properties.get("name") or ""), str(properties.get("name_ja") or "")
            if not road_id or not name or not name_ja:
                raise RoadDataError(f"road {road_id or '?'} needs road_id, name and name_ja")
            coordinates = geometry.get("coordinates") or []
            if geometry.get("type") != "LineString" or len(coordinates) < 2:
                raise RoadDataError(f"road {road_id} must be a LineString of at least two points")
            self.roads.append(Road(road_id, name, name_ja, LineString(coordinates)))
        self.tree = STRtree(np.array([r.line for r in self.roads], dtype=object))
        self.provenance = str(collection.get("provenance", ""))

    @classmethod
    def load(cls, path: Path | None = None) -> Roads:
        """Reads a roads GeoJSON file; the shipped Kanda-basin roads by default."""
        if path is None:
            text = resources.files("alert_api").joinpath("data", DEFAULT_ROADS).read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return cls(json.loads(text))

    def crossing(self, polygon: Polygon) -> list[Road]:
        if not self.roads:
            return []
        return [self.roads[int(i)] for i in sorted(self.tree.query(polygon, predicate="intersects"))]


def rolling_end(now: dt.datetime) -> dt.datetime:
    """``now`` + :data:`END_HORIZON`, rounded up to the next :data:`END_STEP_S` seconds.

    Examples:
        >>> rolling_end(dt.datetime(2026, 1, 1, 12, 3, tzinfo=dt.timezone.utc)).isoformat()
        '2026-01-01T13:10:00+00:00'
    """
    end = now + END_HORIZON
    stamp = int(end.timestamp())
    rounded = -(-stamp // END_STEP_S) * END_STEP_S
    return dt.datetime.fromtimestamp(rounded, dt.UTC)


def polyline(line: LineString) -> str | None:
    """CIFS ``polyline``: ``lat lon`` pairs with 6 decimals; ``None`` if fewer than two distinct points."""
    points: list[tuple[float, float]] = []
    for lon, lat in line.coords:
        point = (round(lat, 6), round(lon, 6))
        if not points or points[-1] != point:
            points.append(point)
    if len(points) < 2:
        return None
    return " ".join(f"{lat:.6f} {lon:.6f}" for lat, lon in points)


def incidents(alerts: Iterable[Alert], roads: Roads, now: dt.datetime) -> list[dict[str, Any]]:
    """CIFS incidents for the roads that cross the areas of ``alerts`` (active alerts only)."""
    end = cap_time(rolling_end(now))
    found = []
    for alert in alerts:
        event = alert.latest.event
        if not alert.active or not event.polygon:
            continue
        area = Polygon(event.polygon)
        closed = event.level >= AlertLevel.DANGER
        if closed:
            kind, subtype = "ROAD_CLOSED", "ROAD_CLOSED_HAZARD"
        else:
            kind, subtype = "HAZARD", "HAZARD_WEATHER_FLOOD" if event.hazard is Hazard.FLOOD else "HAZARD_ON_ROAD"
        texts = message_texts(event.hazard, event.level, event.msg_type, event.area_name or event.area_id,
                              event.area_name_ja, exercise=event.exercise)
        for road in roads.crossing(area):
            inside = road.line.intersection(area)
            parts = [g for g in getattr(inside, "geoms", [inside]) if isinstance(g, LineString)]
            lines = [p for p in (polyline(g) for g in parts) if p is not None]
            for n, line in enumerate(lines):
                what_ja = "通行止め" if closed else "注意"
                what_en = "closed" if closed else "hazard"
                found.append({
                    "id": f"{event.alert_id}:{road.road_id}" + (f":{n}" if len(lines) > 1 else ""),
                    "type": kind,
                    "subtype": subtype,
                    "polyline": line,
                    "direction": "BOTH_DIRECTIONS",
                    "street": road.name_ja,
                    "starttime": cap_time(alert.onset),
                    "endtime": end,
                    "creationtime": cap_time(alert.onset),
                    "updatetime": cap_time(event.event_time),
                    "description": (f"{texts.headline_ja}：{road.name_ja} {what_ja} / "
                                    f"{texts.headline_en}: {road.name} {what_en}"),
                })
    return found


def feed(alerts: Iterable[Alert], roads: Roads, now: dt.datetime) -> dict[str, Any]:
    """The CIFS document: ``{"incidents": [...]}``."""
    return {"incidents": incidents(alerts, roads, now)}


__all__ = ["DEFAULT_ROADS", "Road", "RoadDataError", "Roads", "feed", "incidents", "polyline", "rolling_end"]
