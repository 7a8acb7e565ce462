"""Drone observations: each finding is joined to the river reach or landslide zone it falls in.

A survey flight reports points with a finding (inundation, slope failure or
nothing) and a confidence. Inundation within :data:`REACH_RADIUS_M` of a reach
is evidence that the reach floods (level 5, 氾濫発生); a slope failure inside a
warning zone, or within :data:`ZONE_RADIUS_M` of it, that the zone's disaster
has happened. Findings below :data:`MIN_CONFIDENCE` are not evidence. A damage
finding that falls in no catalogued reach or zone becomes a dead letter naming
the place, so an officer can still see it; "nothing" findings need no home.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from pipelines.ordered import DEAD_LETTER
from suibou.catalogue import StationCatalogue
from suibou.contracts import AreaKind, DeadLetter, DroneFinding, DroneObservation

#: Inundation this close to a reach's line counts for the reach (the flood plain beside the channel).
REACH_RADIUS_M = 250.0
#: A slope failure this close to a zone's outline counts for the zone (debris runs out beyond it).
ZONE_RADIUS_M = 200.0
#: Findings less certain than this are not taken as evidence.
MIN_CONFIDENCE = 0.6
#: A sighting stands for this long: a flooded street does not drain in minutes.
SIGHTING_VALID_S = 3600.0

_EARTH_M_PER_DEG = 111_320.0


@dataclasses.dataclass(frozen=True)
class DroneSighting:
    """A damage finding joined to the area it falls in."""

    area_id: str
    area_kind: AreaKind
    event_time: dt.datetime
    finding: DroneFinding
    confidence: float
    observation_id: str
    distance_m: float
    image_uri: str | None
    exercise: bool
    drill_id: str | None


def _metres(origin_lat: float, points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Local east/north metres (equirectangular about ``origin_lat``): exact enough over a few km."""
    scale = math.cos(math.radians(origin_lat))
    return [(lon * _EARTH_M_PER_DEG * scale, lat * _EARTH_M_PER_DEG) for lon, lat in points]


@dataclasses.dataclass(frozen=True)
class AreaIndex:
    """Reach lines and zone outlines, for finding where an observation falls."""

    reaches: tuple[tuple[str, tuple[tuple[float, float], ...]], ...]
    zones: tuple[tuple[str, tuple[tuple[float, float], ...]], ...]

    @classmethod
    def of(cls, catalogue: StationCatalogue) -> AreaIndex:
        return cls(tuple((r.reach_id, r.geometry) for r in catalogue.reaches),
                   tuple((z.zone_id, z.polygon) for z in catalogue.zones))

    def nearest(self, observation: DroneObservation) -> tuple[str, AreaKind, float] | None:
        """The area a damage finding belongs to, with its distance in metres, or None."""
        from shapely.geometry import LineString, Point, Polygon

        point = Point(_metres(observation.lat, [(observation.lon, observation.lat)])[0])
        if observation.finding is DroneFinding.INUNDATION:
            kind, radius = AreaKind.REACH, REACH_RADIUS_M
            candidates: Iterator[tuple[str, Any]] = ((a, LineString(_metres(observation.lat, g)))
                                                     for a, g in self.reaches)
        elif observation.finding is DroneFinding.SLOPE_FAILURE:
            kind, radius = AreaKind.ZONE, ZONE_RADIUS_M
            candidates = ((a, Polygon(_metres(observation.lat, g))) for a, g in self.zones)
        else:
            return None
        distances = sorted((shape.distance(point), area_id) for area_id, shape in candidates)
        if not distances or distances[0][0] > radius:
            return None
        return distances[0][1], kind, round(distances[0][0], 1)


def join_observation(observation: DroneObservation, index: AreaIndex) -> DroneSighting | DeadLetter | None:
    """The sighting a finding is evidence of; a dead letter for damage outside every area; None otherwise."""
    if observation.finding is DroneFinding.NOTHING or observation.confidence < MIN_CONFIDENCE:
        return None
    found = index.nearest(observation)
    if found is None:
        radius = REACH_RADIUS_M if observation.finding is DroneFinding.INUNDATION else ZONE_RADIUS_M
        return DeadLetter(
            reason=(f"drone: {observation.finding.value} at {observation.lon:.6f},{observation.lat:.6f} is more "
                    f"than {radius:g} m from every catalogued {'reach' if radius == REACH_RADIUS_M else 'zone'}"),
            source_topic="", payload=observation.to_json().decode()[:2000], stage="drones")
    area_id, kind, distance = found
    return DroneSighting(area_id, kind, observation.event_time, observation.finding, observation.confidence,
                         observation.event_id, distance, observation.image_uri, observation.exercise,
                         observation.drill_id)


def fresh_sighting(sighting: DroneSighting | None, at: dt.datetime) -> DroneSighting | None:
    """The sighting if it still stands at ``at``."""
    if sighting is None or not 0 <= (at - sighting.event_time).total_seconds() <= SIGHTING_VALID_S:
        return None
    return sighting


def sighting_features(sighting: DroneSighting | None) -> dict[str, float]:
    """What a score shows of the sighting behind it."""
    if sighting is None:
        return {}
    return {f"drone_{sighting.finding.value}_confidence": sighting.confidence,
            "drone_distance_m": sighting.distance_m}


class _JoinFn(beam.DoFn):
    def __init__(self, catalogue: StationCatalogue):
        self._catalogue = catalogue
        self._joined = Metrics.counter("drones", "sightings")

    def setup(self) -> None:
        self._index = AreaIndex.of(self._catalogue)

    def process(self, observation: DroneObservation) -> Iterator[object]:
        joined = join_observation(observation, self._index)
        if isinstance(joined, DeadLetter):
            yield pvalue.TaggedOutput(DEAD_LETTER, joined)
        elif joined is not None:
            self._joined.inc()
            yield joined


@dataclasses.dataclass
class JoinDroneObservations(beam.PTransform):
    """Drone observations -> :class:`DroneSighting` per reach or zone, plus ``dead_letter``."""

    catalogue: StationCatalogue

    def __post_init__(self) -> None:
        super().__init__()

    def expand(self, observations: beam.PCollection[DroneObservation]) -> pvalue.DoOutputsTuple:
        return observations | "Join" >> beam.ParDo(_JoinFn(self.catalogue)).with_outputs(DEAD_LETTER, main="out")


