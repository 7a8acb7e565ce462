"""One keyed stage for everything an area knows: gauges, fusion, scores and alerts.

An area is a river reach or a landslide warning zone. Each reading is keyed
once, to every area it serves, and one fold per area runs the whole chain for
it in event-time order: the gauges' own folds (rolling rainfall and the soil
water index, level against thresholds), the area's fusion, its model score and
its alert decision. Keying once matters on a portable runner: every stateful
stage costs each element a trip through the runner and each key a state read
and write per bundle, and a chain of seven such stages was what bounded the
job (bench/pipeline.md).

The steps are the pure folds the stages always used (:mod:`pipelines.gauges`,
:mod:`pipelines.risk`, :mod:`pipelines.landslide`, :mod:`pipelines.alerts`),
each given the key it would have had as a stage of its own, so seeds from a
resumed job and the per-gauge results are the same. A rain gauge that serves
several areas is folded once in each, which costs less than a stage between
them. Its status and faults are published by one of them, its *home* area, so
each appears once.

The gauge watchdog stays a stage apart: silence is judged on the stream's
clock (the watermark), never on arrival, and its rare faults join the areas
like any other input.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from pipelines.alerts import AlertHysteresis, AreaAlertState, AreaInfo
from pipelines.cameras import CameraEstimate
from pipelines.drones import DroneSighting
from pipelines.gauges import LevelAssessment, LevelFold, RainfallFold, RainfallTotals
from pipelines.grids import AreaRainfall
from pipelines.landslide import ZoneFusion, zone_risk_scores
from pipelines.ordered import DEAD_LETTER, Fold, FoldInEventTime, FoldPace, stream_key
from pipelines.risk import ReachFeatures, ReachFusion, reach_risk_scores
from suibou.catalogue import StationCatalogue
from suibou.contracts import AlertEvent, AreaKind, LevelReading, RainReading, RiskScore, SensorFault
from suibou.runoff import downstream_of, reach_networks

AreaInput = RainReading | LevelReading | SensorFault | CameraEstimate | AreaRainfall | DroneSighting
AreaOutput = RainfallTotals | LevelAssessment | SensorFault | RiskScore | AlertEvent

#: Output tags of :class:`FoldAreas`, one per published kind.
RAIN_TOTALS, LEVEL_STATUS, FAULTS, SCORES, ALERTS = "rain_totals", "level_status", "faults", "scores", "alerts"

@dataclasses.dataclass(frozen=True)
class AreaPlan:
    """Which areas each gauge serves, from the station catalogue.

    Attributes:
        kinds: Area id -> reach or zone.
        areas_of_station: Gauge id -> the areas it serves, home area first: a rain gauge
            every reach and zone it samples, a level gauge its reach and the reach downstream.
        level_stations: Every level gauge, for the fusion's order within an instant.
        below: Reach id -> the reaches downstream of it, nearest first, whose runoff
            index routes it (:func:`suibou.runoff.reach_networks`): its grid samples
            serve them too.
    """

    kinds: Mapping[str, AreaKind]
    areas_of_station: Mapping[str, tuple[str, ...]]
    level_stations: frozenset[str]
    below: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_catalogue(cls, catalogue: StationCatalogue) -> AreaPlan:
        # The catalogue makes every rain gauge serve a reach or zone, and every level gauge its reach.
        kinds = {r.reach_id: AreaKind.REACH for r in catalogue.reaches}
        kinds.update({z.zone_id: AreaKind.ZONE for z in catalogue.zones})
        areas: dict[str, tuple[str, ...]] = {}
        for gauge in catalogue.rain_gauges:
            served = sorted({r.reach_id for r in catalogue.reaches_for_rain_station(gauge.station_id)}
                            | {z.zone_id for z in catalogue.zones_for_rain_station(gauge.station_id)})
            areas[gauge.station_id] = tuple(served)
        for level in catalogue.level_gauges:
            # A level gauge also serves the reach its river flows into: that reach's
            # scores read the gauge upstream (the home area stays its own reach).
            downstream = catalogue.reach(level.reach_id).flows_into
            areas[level.station_id] = (level.reach_id,) + ((downstream,) if downstream else ())
        networks = reach_networks(catalogue)
        below = {r.reach_id: tuple(d for d, _ in downstream_of(catalogue, r.reach_id)
                                   if r.reach_id in dict(networks[d])) for r in catalogue.reaches}
        return cls(kinds, areas, frozenset(g.station_id for g in catalogue.level_gauges), below)

    def home(self, station_id: str) -> str | None:
        """The area that publishes ``station_id``'s status and faults."""
        served = self.areas_of_station.get(station_id)
        return served[0] if served else None

    def reaches_of(self, station_id: str) -> tuple[str, ...]:
        return tuple(a for a in self.areas_of_station.get(station_id, ()) if self.kinds.get(a) is AreaKind.REACH)


@dataclasses.dataclass(slots=True)
class AreaState:
    """One area's memory: its gauges' fold states, its fusion and its alert.

    Unlike the states of the folds it holds, it is updated in place: it belongs
    to one key of one fold and is never shared, and copying it for every
    reading was a measurable share of the stage's time.
    """

    rain: dict[str, Any] = dataclasses.field(default_factory=dict)
    level: dict[str, Any] = dataclasses.field(default_factory=dict)
    fusion: Any = None
    alert: AreaAlertState | None = None
    #: Ids of recent scores (id -> epoch s), so that a repeated row decides nothing twice.
    scored: dict[str, float] = dataclasses.field(default_factory=dict)


@functools.lru_cache(maxsize=8)
def _scorer(ref: str) -> Any:
    """One ONNX Runtime session per model and process, opened on first use."""
    from models import load_scorer

    name, _, version = ref.partition("/")
    return load_scorer(name, version)


@dataclasses.dataclass(frozen=True)
class AreaFold(Fold[AreaState, AreaInput, AreaOutput]):
    """The whole chain of one area, from a reading to its alert.

    Attributes:
        plan: Which areas each gauge serves.
        rain: Rolling rainfall and soil water index per rain gauge.
        level: Level against thresholds per level gauge.
        reach: A reach's fusion into feature rows.
        zone: A zone's fusion into rows for the landslide model.
        alerts: The alert decision per area and hazard.
        flood_model, landslide_model: ``name/version`` of the models that score rows.
        score_horizon_s: How long a score's id is remembered against repeats.
    """

    plan: AreaPlan
    rain: RainfallFold
    level: LevelFold
    reach: ReachFusion
    zone: ZoneFusion
    alerts: AlertHysteresis
    flood_model: str = "flood/4"
    landslide_model: str = "landslide/1"
    score_horizon_s: float = 600.0
    name: str = "area"

    def initial(self, key: str) -> AreaState:
        return AreaState()

    def event_time(self, item: AreaInput | AreaOutput) -> dt.datetime:
        return item.event_time

    def order(self, item: AreaInput) -> int:
        # The fusions' own order within an instant: a grid or a sighting is known to
        # the rain reading that makes a zone's row; rain, cameras and other gauges'
        # faults are known to the level reading that makes a reach's row, and a
        # level gauge's own fault comes after the others, just before its reading.
        if isinstance(item, (AreaRainfall, DroneSighting)):
            return 0
        if isinstance(item, LevelReading):
            return 3
        if isinstance(item, SensorFault) and item.station_id in self.plan.level_stations:
            return 2
        return 1

    def identity(self, item: AreaInput) -> str | None:
        return item.event_id if isinstance(item, (RainReading, LevelReading)) else None

    def step(self, key: str, state: AreaState, item: AreaInput) -> tuple[AreaState, list[Any]]:
        area = key.partition("|")[2]
        outputs: list[Any] = []
        home = isinstance(item, (RainReading, LevelReading)) and self.plan.home(item.station_id) == area
        if isinstance(item, RainReading):
            fused: list[Any] = _step_gauge(self.rain, state.rain, item)
        elif isinstance(item, LevelReading):
            judged = _step_gauge(self.level, state.level, item)
            fused = [j for j in judged if isinstance(j, LevelAssessment)]
            if home:
                outputs.extend(j for j in judged if isinstance(j, SensorFault))
        else:
            fused = [item]
        for part in fused:
            if home:
                outputs.append(part)
            state, produced = self._fuse(key, area, state, part)
            outputs.extend(produced)
        return state, outputs

    def _fuse(self, key: str, area: str, state: AreaState, item: Any) -> tuple[AreaState, list[Any]]:
        kind = self.plan.kinds.get(area)
        outputs: list[Any] = []
        if kind is AreaKind.REACH:
            fusion = self.reach.initial(key) if state.fusion is None else state.fusion
            fusion, produced = self.reach.step(key, fusion, item)
            for part in produced:  # feature rows, and frozen-gauge faults
                outputs.append(Unscored(self.flood_model, part) if isinstance(part, ReachFeatures) else part)
        elif kind is AreaKind.ZONE and isinstance(item, (RainfallTotals, AreaRainfall, DroneSighting)):
            fusion = self.zone.initial(key) if state.fusion is None else state.fusion
            fusion, rows = self.zone.step(key, fusion, item)
            outputs.extend(Unscored(self.landslide_model, row) for row in rows)
        else:
            return state, []
        state.fusion = fusion
        return state, outputs

    def settle(self, states: dict[str, AreaState], outputs: list[tuple[str, Any]]) -> list[AreaOutput]:
        """Scores every row of the batch with one model call per model, then decides
        each area's alerts from its scores in order."""
        rows: dict[str, list[Any]] = {}
        for _, output in outputs:
            if isinstance(output, Unscored):
                rows.setdefault(output.model, []).append(output.row)
        scores = {model: iter(self._score(model, batch)) for model, batch in rows.items()}
        settled: list[AreaOutput] = []
        for key, output in outputs:
            if not isinstance(output, Unscored):
                settled.append(output)
                continue
            score = next(scores[output.model])
            states[key], alerts = self._decide(states[key], score)
            settled.append(score)
            settled.extend(alerts)
        return settled

    def _score(self, model: str, rows: list[Any]) -> list[RiskScore]:
        if model == self.flood_model:
            return reach_risk_scores(_scorer(model), rows)
        return zone_risk_scores(_scorer(model), rows)

    def _decide(self, state: AreaState, score: RiskScore) -> tuple[AreaState, list[AlertEvent]]:
        at = score.event_time.timestamp()
        if score.event_id in state.scored:
            return state, []
        state.scored = {i: t for i, t in state.scored.items() if t >= at - self.score_horizon_s}
        state.scored[score.event_id] = at
        alert_key = stream_key(score.drill_id, f"{score.area_id}|{score.hazard.value}")
        alert = self.alerts.initial(alert_key) if state.alert is None else state.alert
        state.alert, raised = self.alerts.step(alert_key, alert, score)
        return state, raised


def _step_gauge(fold: Fold[Any, Any, Any], states: dict[str, Any], item: RainReading | LevelReading) -> list[Any]:
    """Steps a gauge's own fold, under the key it would have as a stage of its own (so seeds apply)."""
    gauge_key = stream_key(item.drill_id, item.station_id)
    before = states.get(item.station_id)
    state = fold.initial(gauge_key) if before is None else before
    states[item.station_id], produced = fold.step(gauge_key, state, item)
    return list(produced)


@dataclasses.dataclass(frozen=True)
class Unscored:
    """A row waiting for its model, until the fold's batch is scored (:meth:`AreaFold.settle`)."""

    model: str
    row: Any

    @property
    def event_time(self) -> dt.datetime:
        return self.row.event_time


def area_fold(catalogue: StationCatalogue, feature_names: Sequence[str], areas: Mapping[str, AreaInfo], *,
              hold_s: float = 1800.0, open_alerts: Mapping[str, AreaAlertState] | None = None,
              tank_seeds: Mapping[str, tuple[tuple[float, float, float], int]] | None = None,
              flood_model: str = "flood/4", landslide_model: str = "landslide/1") -> AreaFold:
    """The :class:`AreaFold` of ``catalogue``, with a resumed job's seeds."""
    zones = catalogue.zones
    pacers = {z.zone_id: g[0].station_id for z in zones if (g := catalogue.rain_stations_for_zone(z.zone_id))}
    return AreaFold(
        plan=AreaPlan.from_catalogue(catalogue),
        rain=RainfallFold(dict(tank_seeds or {})),
        level=LevelFold(catalogue),
        reach=ReachFusion(tuple(feature_names), {r.reach_id: r.level_station_id for r in catalogue.reaches},
                          upstream=upstream_gauges(catalogue), networks=reach_networks(catalogue)),
        zone=ZoneFusion({z.zone_id: z.critical_line for z in zones}, pacers),
        alerts=AlertHysteresis(dict(areas), hold_s, seeds=dict(open_alerts or {})),
        flood_model=flood_model,
        landslide_model=landslide_model,
    )


def upstream_gauges(catalogue: StationCatalogue) -> dict[str, tuple[tuple[str, float], ...]]:
    """Reach id -> the level gauges directly upstream of it, with each one's travel time (min)."""
    return {
        reach.reach_id: tuple((u.level_station_id, float(u.travel_min or 0.0))
                              for u in catalogue.upstream_reaches(reach.reach_id) if u.level_station_id)
        for reach in catalogue.reaches
    }


def keyed_to_areas(item: RainReading | LevelReading, plan: AreaPlan) -> Iterator[tuple[str, Any]]:
    """A reading, keyed to every area its gauge serves."""
    for area in plan.areas_of_station.get(item.station_id, ()):
        yield stream_key(item.drill_id, area), item


def fault_to_reaches(item: SensorFault, plan: AreaPlan) -> Iterator[tuple[str, SensorFault]]:
    """A watchdog's fault, keyed to the reaches its gauge serves (zones fuse no faults)."""
    for area in plan.reaches_of(item.station_id):
        yield stream_key(item.drill_id, area), item


def grid_to_areas(item: AreaRainfall, plan: AreaPlan) -> Iterator[tuple[str, AreaRainfall]]:
    """A grid sample, keyed to its area and, for a reach, every reach downstream (their runoff index)."""
    for area in (item.area_id, *plan.below.get(item.area_id, ())):
        yield stream_key(item.drill_id, area), item


def to_area(item: CameraEstimate | AreaRainfall | DroneSighting) -> tuple[str, Any]:
    area = item.reach_id if isinstance(item, CameraEstimate) else item.area_id
    return stream_key(item.drill_id, area), item


_TAG_OF: tuple[tuple[type, str], ...] = (
    (RainfallTotals, RAIN_TOTALS), (LevelAssessment, LEVEL_STATUS), (SensorFault, FAULTS),
    (RiskScore, SCORES), (AlertEvent, ALERTS),
)


class _SplitByKind(beam.DoFn):
    def process(self, element: AreaOutput) -> Iterator[Any]:
        for kind, tag in _TAG_OF:
            if isinstance(element, kind):
                yield pvalue.TaggedOutput(tag, element)
                return


@dataclasses.dataclass
class FoldAreas(beam.PTransform):
    """Readings, watchdog faults, camera estimates, grid samples and drone sightings
    -> rain totals and level statuses (once per gauge), frozen-gauge and spike
    faults, risk scores and alerts, each as its own output, plus ``dead_letter``.

    Input: ``{"rain": ..., "level": ..., "faults": ..., "cameras": ..., "grids": ..., "drones": ...}``,
    each a PCollection of its feed's elements (unkeyed).
    """

    fold: AreaFold
    max_lateness_s: float = 600.0
    pace: FoldPace = FoldPace()
    shards: int = 4

    def __post_init__(self) -> None:
        super().__init__()

    def expand(self, inputs: Mapping[str, beam.PCollection]) -> dict[str, beam.PCollection]:
        plan = self.fold.plan
        keyed = (
            inputs["rain"] | "RainToAreas" >> beam.FlatMap(keyed_to_areas, plan),
            inputs["level"] | "LevelToAreas" >> beam.FlatMap(keyed_to_areas, plan),
            inputs["faults"] | "FaultsToReaches" >> beam.FlatMap(fault_to_reaches, plan),
            inputs["cameras"] | "CamerasToReaches" >> beam.Map(to_area),
            inputs["grids"] | "GridsToAreas" >> beam.FlatMap(grid_to_areas, plan),
            inputs["drones"] | "SightingsToAreas" >> beam.Map(to_area),
        )
        folded = keyed | "Fold" >> FoldInEventTime(self.fold, self.max_lateness_s, self.shards, self.pace)
        split = folded.out | "ByKind" >> beam.ParDo(_SplitByKind()).with_outputs(
            RAIN_TOTALS, LEVEL_STATUS, FAULTS, SCORES, ALERTS)
        return {tag: split[tag] for tag in (RAIN_TOTALS, LEVEL_STATUS, FAULTS, SCORES, ALERTS)} | {
            DEAD_LETTER: folded[DEAD_LETTER]}
