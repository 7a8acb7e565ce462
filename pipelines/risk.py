"""Fuse gauge features per river reach and score flood risk with an ONNX model."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from models import FLOOD5_FEATURES, flood5_features
from pipelines.cameras import CameraEstimate
from pipelines.drones import DroneSighting, fresh_sighting, sighting_features
from pipelines.faults import fault
from pipelines.gauges import LevelAssessment, RainfallTotals
from pipelines.grids import GRID_MAX_AGE_S, AreaRainfall, fresh_grid, grid_features
from pipelines.ordered import Fold
from pipelines.runoff import (
    RUNOFF_INDEX,
    RUNOFF_INDEX_AHEAD,
    SURFACE_INDEX,
    SURFACE_INDEX_AHEAD,
    CatchmentRunoff,
    runoff_features,
    step_catchment,
)
from suibou.contracts import AlertLevel, AreaKind, FaultKind, Hazard, RiskScore, SensorFault, format_time
from suibou.runoff import ATTENUATION_MIN


@dataclasses.dataclass(frozen=True)
class ReachFeatures:
    """Model inputs for one reach at one time, with the observation they came from.

    ``faults`` lists what cannot be trusted behind this row (a silent rain gauge,
    a silent or frozen level gauge). A row made because the level gauge went
    silent repeats the last trusted status and says so.
    """

    reach_id: str
    event_time: dt.datetime
    features: tuple[tuple[str, float], ...]
    status: LevelAssessment
    rain_stations: tuple[str, ...]
    exercise: bool
    drill_id: str | None
    faults: tuple[str, ...] = ()
    held: bool = False  # a repeat of the last trusted status, made because the level gauge fell silent
    camera: tuple[tuple[str, float], ...] = ()  # the latest fresh camera estimate, if any
    camera_overtopping: bool = False
    grid: tuple[tuple[str, float], ...] = ()  # the rain grid behind the nowcast features, if any
    runoff: tuple[tuple[str, float], ...] = ()  # the surface rainfall and runoff indices, where known
    drone: DroneSighting | None = None  # inundation seen from the air, while it stands


@dataclasses.dataclass(frozen=True)
class FusionState:
    rain: dict[str, tuple[RainfallTotals, ...]] = dataclasses.field(default_factory=dict)
    last_status: LevelAssessment | None = None
    unchanged_since: dt.datetime | None = None
    faults: dict[str, SensorFault] = dataclasses.field(default_factory=dict)
    camera: CameraEstimate | None = None
    grid: AreaRainfall | None = None
    drone: DroneSighting | None = None
    #: Recent statuses of the level gauges directly upstream, per gauge, in time order.
    upstream: dict[str, tuple[LevelAssessment, ...]] = dataclasses.field(default_factory=dict)
    #: Since when each level gauge directly upstream has reported the same level.
    upstream_unchanged_since: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    #: Surface tanks of the reach and of every reach upstream (:mod:`pipelines.runoff`).
    runoff: dict[str, CatchmentRunoff] = dataclasses.field(default_factory=dict)


#: How far back fusion keeps each rain gauge's totals and each upstream gauge's statuses:
#: the lateness bound and the freshness window.
RAIN_HISTORY_S = 1800.0
#: A camera estimate counts for this long after its still was taken (stills come every 5 minutes).
CAMERA_MAX_AGE_S = 900.0
#: A level that does not move for this long while it rains is a frozen gauge.
FROZEN_AFTER_S = 3600.0
#: "It rains" for the frozen-gauge check: mean 60-minute rain over the reach, mm.
FROZEN_RAIN_60MIN_MM = 10.0


@dataclasses.dataclass(frozen=True)
class ReachFusion(Fold[FusionState, "RainfallTotals | LevelAssessment | SensorFault", "ReachFeatures | SensorFault"]):
    """Keeps the latest rainfall totals of a reach's gauges, its latest camera
    estimate, rain grid and drone sighting; each level status of the reach yields
    one feature row.

    Rain that is older than ``rain_max_age_s`` at the level's time does not
    count, and the row names the gauge as a fault: a gauge that stopped
    reporting is not read as "no rain". A level gauge that goes silent yields a
    row repeating its last trusted status, flagged, so the reach keeps its
    level instead of looking calm; one that does not move for
    :data:`FROZEN_AFTER_S` while it rains is reported as ``frozen``.
    """

    feature_names: tuple[str, ...]
    level_gauges: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    #: Reach id -> the level gauges directly upstream of it and each one's travel time, minutes.
    upstream: Mapping[str, tuple[tuple[str, float], ...]] = dataclasses.field(default_factory=dict)
    #: Reach id -> itself and every reach upstream, with the travel minutes from each (its runoff index).
    networks: Mapping[str, tuple[tuple[str, float], ...]] = dataclasses.field(default_factory=dict)
    rain_max_age_s: float = 900.0
    name: str = "reach_fusion"

    def initial(self, key: str) -> FusionState:
        return FusionState()

    def event_time(self, item: RainfallTotals | LevelAssessment | SensorFault | ReachFeatures) -> dt.datetime:
        return item.event_time

    def order(self, item: RainfallTotals | LevelAssessment | SensorFault | CameraEstimate | AreaRainfall
              | DroneSighting) -> int:
        # Rain, grids, camera stills, sightings and faults at t are known to the level at t; a level
        # gauge's own fault comes after the others of its instant, since it may
        # produce a row that should list them.
        if isinstance(item, LevelAssessment):
            return 3
        if isinstance(item, SensorFault):
            return 2 if item.station_id in self._level_stations else 1  # type: ignore[attr-defined]  # set in __post_init__
        return 0 if isinstance(item, (RainfallTotals, AreaRainfall)) else 1

    def __post_init__(self) -> None:
        # order() runs for every buffered event; look the level gauges up in a set built once.
        object.__setattr__(self, "_level_stations", frozenset(s for s in self.level_gauges.values() if s))
        object.__setattr__(self, "_upstream_stations",
                           {reach: frozenset(s for s, _ in gauges) for reach, gauges in self.upstream.items()})

    def _network(self, reach_id: str) -> tuple[tuple[str, float], ...]:
        """The reaches whose runoff this reach's index routes, with their travel minutes (itself alone by default)."""
        return self.networks.get(reach_id, ((reach_id, 0.0),))

    def _runoff_keep_s(self, reach_id: str) -> float:
        """How far back a reach keeps runoff history: as far as the longest travel in its network needs."""
        return 60.0 * (max(t for _, t in self._network(reach_id)) + ATTENUATION_MIN) + GRID_MAX_AGE_S + 3600.0

    def step(self, key: str, state: FusionState, item: RainfallTotals | LevelAssessment | SensorFault
             ) -> tuple[FusionState, list[ReachFeatures | SensorFault]]:
        if isinstance(item, RainfallTotals):
            # A short history per gauge, so a level folded late still meets the rain of its own time.
            history = _recent_with(state.rain.get(item.station_id, ()), item)
            return dataclasses.replace(state, rain={**state.rain, item.station_id: history}), []
        if isinstance(item, SensorFault):
            return self._on_fault(key.partition("|")[2], state, item)
        if isinstance(item, CameraEstimate):
            if state.camera is not None and state.camera.event_time > item.event_time:
                return state, []
            return dataclasses.replace(state, camera=item), []
        if isinstance(item, AreaRainfall):
            reach_id = key.partition("|")[2]
            catchment = step_catchment(state.runoff.get(item.area_id), item, self._runoff_keep_s(reach_id))
            if catchment is not None:
                state = dataclasses.replace(state, runoff={**state.runoff, item.area_id: catchment})
            if item.area_id != reach_id or (state.grid is not None and state.grid.event_time > item.event_time):
                return state, []  # a reach upstream counts for the runoff index only
            return dataclasses.replace(state, grid=item), []
        if isinstance(item, DroneSighting):
            if state.drone is not None and state.drone.event_time > item.event_time:
                return state, []
            return dataclasses.replace(state, drone=item), []
        if item.station_id in self._upstream_stations.get(key.partition("|")[2], ()):  # type: ignore[attr-defined]
            # A gauge upstream: remembered for this reach's rows, it makes none of its own.
            previous = _as_of(state.upstream.get(item.station_id, ()), item.event_time)
            statuses = _recent_with(state.upstream.get(item.station_id, ()), item)
            since = state.upstream_unchanged_since.get(item.station_id)
            if previous is None or previous.level_m != item.level_m or since is None:
                since = item.event_time
            return dataclasses.replace(state, upstream={**state.upstream, item.station_id: statuses},
                                       upstream_unchanged_since={**state.upstream_unchanged_since,
                                                                 item.station_id: since}), []
        return self._on_level(key, state, item)

    def _upstream_features(self, state: FusionState, reach_id: str, at: dt.datetime, rain_60min_mm: float
                           ) -> tuple[dict[str, float | None], list[str]]:
        """The state of the gauge upstream nearest its own flood danger level, as it stood at
        ``at`` (``None`` values when none is known, fresh and trusted), and why any was passed over.

        A gauge whose level has not moved for :data:`FROZEN_AFTER_S` while this reach's
        basin (which holds the catchment upstream) had :data:`FROZEN_RAIN_60MIN_MM` in
        the last hour is frozen: its reach reports the fault, and here it counts as none.
        """
        nearest: tuple[float, float, float] | None = None
        passed_over: list[str] = []
        for station_id, travel_min in self.upstream.get(reach_id, ()):
            if station_id in state.faults:
                continue  # silent (the watchdog's fault): not read as a calm river upstream
            status = _as_of(state.upstream.get(station_id, ()), at)
            if status is None or (at - status.event_time).total_seconds() > self.rain_max_age_s:
                continue
            since = state.upstream_unchanged_since.get(station_id, status.event_time)
            frozen_for = (status.event_time - since).total_seconds()
            if frozen_for >= FROZEN_AFTER_S and rain_60min_mm >= FROZEN_RAIN_60MIN_MM:
                passed_over.append(f"{station_id} upstream: {status.level_m:.2f} m unchanged for "
                                   f"{frozen_for / 60:.0f} min while it rains; not read")
                continue
            earlier = status.level_30min_ago_m
            rise = 0.0 if earlier is None else (status.level_m - earlier) * 2.0
            stage = status.danger_m - status.level_m
            if nearest is None or stage < nearest[0]:
                nearest = (stage, rise, travel_min)
        names = ("upstream_stage_to_danger_m", "upstream_rise_m_per_h", "upstream_travel_min")
        if nearest is None:
            return dict.fromkeys(names), passed_over
        return dict(zip(names, nearest, strict=True)), passed_over

    def _on_fault(self, reach_id: str, state: FusionState, item: SensorFault
                  ) -> tuple[FusionState, list[ReachFeatures | SensorFault]]:
        faults = dict(state.faults)
        if item.kind is FaultKind.RECOVERED:
            faults.pop(item.station_id, None)
        elif item.kind is FaultKind.SILENT:
            faults[item.station_id] = item
        state = dataclasses.replace(state, faults=faults)
        if (item.kind is FaultKind.SILENT and item.station_id == self.level_gauges.get(reach_id)
                and state.last_status is not None):
            # Keep the reach at its last trusted level, flagged, rather than let it go quiet.
            return state, [dataclasses.replace(self._row(state, state.last_status, item.event_time), held=True)]
        return state, []

    def _on_level(self, key: str, state: FusionState, item: LevelAssessment
                  ) -> tuple[FusionState, list[ReachFeatures | SensorFault]]:
        previous = state.last_status
        unchanged_since = state.unchanged_since
        if previous is None or previous.level_m != item.level_m:
            unchanged_since = item.event_time
        known = state.faults.get(item.station_id)
        faults = {k: v for k, v in state.faults.items() if v.kind is not FaultKind.FROZEN}
        if known is not None and known.kind is FaultKind.SILENT:
            faults.pop(item.station_id)  # It reports again.
        state = dataclasses.replace(state, last_status=item, unchanged_since=unchanged_since, faults=faults)
        row = self._row(state, item, item.event_time)
        outputs: list[ReachFeatures | SensorFault] = []
        frozen_for = (item.event_time - (unchanged_since or item.event_time)).total_seconds()
        rain_60 = dict(row.features).get("rain_60min_mm", 0.0)
        if frozen_for >= FROZEN_AFTER_S and rain_60 >= FROZEN_RAIN_60MIN_MM:
            frozen = fault(item.station_id, FaultKind.FROZEN, item.event_time, unchanged_since or item.event_time,
                           f"{item.level_m:.2f} m unchanged for {frozen_for / 60:.0f} min while "
                           f"{rain_60:.0f} mm fell in the last hour", item.exercise, item.drill_id)
            if known is None or known.kind is not FaultKind.FROZEN:
                outputs.append(frozen)  # Reported once, when it starts.
            state = dataclasses.replace(state, faults={**faults, item.station_id: frozen})
            row = self._row(state, item, item.event_time)
        outputs.append(row)
        return state, outputs

    def _row(self, state: FusionState, status: LevelAssessment, at: dt.datetime) -> ReachFeatures:
        fresh: list[RainfallTotals] = []
        stale: list[RainfallTotals] = []
        for history in state.rain.values():
            # The gauge's totals as they stood at ``at``, whatever order they arrived in.
            totals = _as_of(history, at)
            if totals is None:
                continue
            age = (at - totals.event_time).total_seconds()
            (fresh if age <= self.rain_max_age_s else stale).append(totals)
        def basin_mean(total: str) -> float:
            return sum(getattr(t, total) for t in fresh) / len(fresh) if fresh else 0.0

        rain_60 = basin_mean("rain_60min_mm")
        grid = fresh_grid(state.grid, at)
        runoff = runoff_features(state.runoff, status.reach_id, self._network(status.reach_id), at)
        upstream, passed_over = self._upstream_features(state, status.reach_id, at, rain_60)
        values = flood5_features(
            status.level_m,
            caution_m=status.caution_m,
            evacuation_m=status.evacuation_m,
            danger_m=status.danger_m,
            level_10min_ago_m=status.level_10min_ago_m,
            level_30min_ago_m=status.level_30min_ago_m,
            rain_10min_mm=basin_mean("rain_10min_mm"),
            rain_60min_mm=rain_60,
            rain_3h_mm=basin_mean("rain_3h_mm"),
            rain_6h_mm=basin_mean("rain_6h_mm"),
            # Without a fresh grid the model's own fallback (persistence of the last hour) applies.
            nowcast_rain_30min_mm=None if grid is None else grid.nowcast_30min_mm,
            nowcast_rain_60min_mm=None if grid is None else grid.nowcast_60min_mm,
            **upstream,
            # Without them (no fresh grid), the model's own stand-in: the tanks' steady state.
            surface_index_mm=runoff.get(SURFACE_INDEX),
            surface_index_ahead_mm=runoff.get(SURFACE_INDEX_AHEAD),
            runoff_index_mm_h=runoff.get(RUNOFF_INDEX),
            runoff_index_ahead_mm_h=runoff.get(RUNOFF_INDEX_AHEAD),
        )
        # flood/5's inputs include flood/4's, /3's and /2's: each model takes its own columns by name.
        every = dict(zip(FLOOD5_FEATURES, values, strict=True))
        camera = state.camera
        if camera is not None and not 0 <= (at - camera.event_time).total_seconds() <= CAMERA_MAX_AGE_S:
            camera = None
        faults = [f.description for f in state.faults.values()] + passed_over
        faults += [f"{t.station_id} no rain data since {format_time(t.event_time)}" for t in stale
                   if t.station_id not in state.faults]
        if state.grid is not None and grid is None and state.grid.event_time <= at:
            faults.append(f"{state.grid.grid_id} no rain grid since {format_time(state.grid.event_time)}; "
                          "nowcast taken as persistence")
        elif SURFACE_INDEX in runoff and RUNOFF_INDEX not in runoff:
            faults.append("no fresh rain grid for a reach upstream; runoff index taken from the last hour's rain")
        return ReachFeatures(
            reach_id=status.reach_id,
            event_time=at,
            features=tuple((name, round(float(every[name]), 4)) for name in self.feature_names),
            status=status,
            rain_stations=tuple(sorted(t.station_id for t in fresh)),
            exercise=status.exercise,
            drill_id=status.drill_id,
            faults=tuple(sorted(faults)),
            camera=() if camera is None else (("camera_level_m", camera.level_m),
                                              ("camera_p_overtopping", camera.p_overtopping)),
            camera_overtopping=camera is not None and camera.overtopping,
            grid=tuple(grid_features(grid).items()),
            runoff=tuple(runoff.items()),
            drone=fresh_sighting(state.drone, at),
        )


_Timed = TypeVar("_Timed", RainfallTotals, LevelAssessment)


def _recent_with(history: tuple[_Timed, ...], item: _Timed) -> tuple[_Timed, ...]:
    """``history`` with ``item`` added, in time order, less what is older than :data:`RAIN_HISTORY_S` before it."""
    kept = [h for h in history if (item.event_time - h.event_time).total_seconds() <= RAIN_HISTORY_S]
    kept.append(item)
    return tuple(sorted(kept, key=lambda h: h.event_time))


def _as_of(history: tuple[_Timed, ...], at: dt.datetime) -> _Timed | None:
    """The newest entry of a time-ordered ``history`` at or before ``at``, whatever order they arrived in."""
    return next((h for h in reversed(history) if h.event_time <= at), None)


def to_risk_score(row: ReachFeatures, probabilities: dict[str, float], primary: str, target: str,
                  model_ref: str, contributions: list[str]) -> RiskScore:
    """Builds the published score; its id is deterministic so re-runs de-duplicate."""
    stamp = row.event_time.strftime("%Y%m%dT%H%M%SZ")
    return RiskScore(
        event_id=f"risk:{row.drill_id or 'live'}:{row.reach_id}:{Hazard.FLOOD.value}:{stamp}"
                 + (":held" if row.held else ""),
        event_time=row.event_time,
        exercise=row.exercise,
        drill_id=row.drill_id,
        area_id=row.reach_id,
        area_kind=AreaKind.REACH,
        hazard=Hazard.FLOOD,
        probability=probabilities[primary],
        probabilities=probabilities,
        # A camera that sees water over the banks, or a drone that sees the flood, is
        # evidence of flooding (level 5) on its own.
        observed_level=(AlertLevel.FLOODING if row.camera_overtopping or row.drone is not None
                        else row.status.observed_level),
        model=model_ref,
        target=target,
        # The indices as computed where known; the model's own inputs (stand-ins included) over them.
        features=(dict(row.runoff) | dict(row.features) | {"level_m": row.status.level_m} | dict(row.camera)
                  | dict(row.grid) | sighting_features(row.drone)),
        contributions=tuple(contributions),
        faults=row.faults,
    )


def reach_risk_scores(scorer: Any, rows: Sequence[ReachFeatures]) -> list[RiskScore]:
    """Scores feature rows in one ONNX Runtime call (``scorer``: a :class:`models.runtime.OnnxScorer`)."""
    matrix = np.asarray([[v for _, v in row.features] for row in rows], dtype=np.float32)
    probabilities = scorer.predict_targets(matrix)
    contributions = scorer.contributions_batch(matrix)
    return [
        to_risk_score(row, {t: round(float(v), 6) for t, v in zip(scorer.targets, p, strict=True)},
                      scorer.primary_target, scorer.target, scorer.model_ref, named)
        for row, named, p in zip(rows, contributions, probabilities, strict=True)
    ]


