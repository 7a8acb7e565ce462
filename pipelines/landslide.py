"""Landslide risk per warning zone: the snake line against the critical line, and a model.

Each zone takes the rain and soil water index of the gauges that sample it
(``RainGauge.zone_ids``). Two judgements travel together on every score, so an
officer sees both: JMA's physically based criterion (does the snake line of
60-minute rain against the soil water index reach the zone's critical line
within two hours?) and the ``landslide/1`` model's probability of the same event.

Levels: the criterion met within two hours is the landslide warning
(土砂災害警戒情報, level 4 equivalent); the model's forecast raises a zone to
level 3 earlier (see :func:`pipelines.alerts.target_level`).

The criterion's two hours of rain (:func:`warning_outlook`): the first hour is
the median of the 60-minute nowcasts of the newest three grid issues (a lagged
ensemble), the second hour the rain of the last hour, observed by the gauges.
One nowcast issue alone swings far more than the rain does (an advection
nowcast's motion and intensity errors), and the snake line of a long steady
rain creeps along the critical line for hours, where a single high issue held
over two hours would raise the warning hours before the line is reached
(docs/skill.md, "Landslide warning timing").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipelines.drones import DroneSighting, fresh_sighting, sighting_features
from pipelines.gauges import RainfallTotals
from pipelines.grids import GRID_MAX_AGE_S, AreaRainfall, fresh_grid, grid_features
from pipelines.ordered import Fold
from suibou.contracts import AlertLevel, AreaKind, Hazard, RiskScore, format_time
from suibou.hydrology import CriticalLine, SnakeOutlook, TankState, snake_line_outlook

#: Zone rows are built from the gauges' totals; totals older than this are stale.
RAIN_MAX_AGE_S = 900.0
#: The warning's first-hour rain is the median nowcast of this many newest grid issues.
LAGGED_NOWCAST_ISSUES = 3
#: Grid issues a zone remembers for that median (a few more, for issues that arrive out of order).
NOWCAST_ISSUES_KEPT = 2 * LAGGED_NOWCAST_ISSUES


def remember_nowcast(issues: tuple[tuple[float, float], ...], issued_at: float, nowcast_60min_mm: float
                     ) -> tuple[tuple[float, float], ...]:
    """``issues`` (issue time, 60-minute nowcast), in time order, with one more; the newest few kept.

    Examples:
        >>> remember_nowcast(((0.0, 5.0), (600.0, 7.0)), 300.0, 6.0)
        ((0.0, 5.0), (300.0, 6.0), (600.0, 7.0))
        >>> remember_nowcast(((0.0, 5.0),), 0.0, 9.0)  # one issue sampled once
        ((0.0, 5.0),)
    """
    if any(at == issued_at for at, _ in issues):
        return issues
    return tuple(sorted((*issues, (issued_at, nowcast_60min_mm))))[-NOWCAST_ISSUES_KEPT:]


def lagged_nowcast(issues: tuple[tuple[float, float], ...], at: float) -> float | None:
    """The median 60-minute nowcast of the newest :data:`LAGGED_NOWCAST_ISSUES` issues fresh at ``at``.

    Examples:
        >>> lagged_nowcast(((0.0, 20.0), (300.0, 72.0), (600.0, 26.0)), at=700.0)  # one high issue
        26.0
        >>> lagged_nowcast(((0.0, 20.0), (300.0, 72.0)), at=2000.0) is None  # none fresh: persistence
        True
    """
    fresh = [mm for issued, mm in issues if 0 <= at - issued <= GRID_MAX_AGE_S][-LAGGED_NOWCAST_ISSUES:]
    return float(np.median(fresh)) if fresh else None


def warning_outlook(tanks: TankState, rain_60min_mm: float, nowcast_60min_mm: float | None,
                    line: CriticalLine) -> SnakeOutlook:
    """JMA's landslide warning criterion as suibou forecasts the two hours.

    Hour 1: ``nowcast_60min_mm`` (the lagged median, :func:`lagged_nowcast`), or
    the last hour's rain again without a fresh grid. Hour 2: the last hour's
    observed rain; no nowcast reaches that far, and carrying the nowcast's own
    hour over doubles its error.

    Examples:
        >>> wet = TankState(90.0, 60.0, 40.0)  # SWI 190: the line is at 36.7 mm/h
        >>> warning_outlook(wet, 20.0, 45.0, CriticalLine()).exceeds_within_2h
        True
        >>> warning_outlook(wet, 20.0, None, CriticalLine()).exceeds_within_2h  # persistence
        False
    """
    hour_1 = rain_60min_mm if nowcast_60min_mm is None else nowcast_60min_mm
    return snake_line_outlook(tanks, rain_60min_mm, hour_1, line, second_hour_rain_mm=rain_60min_mm)


@dataclasses.dataclass(frozen=True)
class ZoneRow:
    """One zone's model inputs at one time, with the criterion's verdict."""

    zone_id: str
    event_time: dt.datetime
    features: tuple[tuple[str, float], ...]
    exceeds_now: bool
    exceeds_within_2h: bool
    rain_stations: tuple[str, ...]
    faults: tuple[str, ...]
    exercise: bool
    drill_id: str | None
    grid: tuple[tuple[str, float], ...] = ()  # the rain grid behind the nowcast feature, if any
    drone: DroneSighting | None = None  # a slope failure seen from the air, while it stands
    warning_rain_mm: tuple[float, float] = (0.0, 0.0)  # the criterion's rain in hours 1 and 2


@dataclasses.dataclass(frozen=True)
class ZoneState:
    totals: dict[str, RainfallTotals] = dataclasses.field(default_factory=dict)
    swi_history: tuple[tuple[float, float], ...] = ()  # (time, zone SWI), the last ~70 minutes
    grid: AreaRainfall | None = None
    nowcasts: tuple[tuple[float, float], ...] = ()  # (issue time, 60-minute nowcast) of recent grids
    drone: DroneSighting | None = None


@dataclasses.dataclass(frozen=True)
class ZoneFusion(Fold[ZoneState, "RainfallTotals | AreaRainfall | DroneSighting", ZoneRow]):
    """Averages a zone's gauges; the zone's first gauge paces its rows (one per reading).

    The zone's latest rain grid gives the nowcast (persistence without one); a
    drone's slope-failure sighting marks the zone's disaster as happening.

    Attributes:
        lines: Zone id -> its critical line.
        pacers: Zone id -> the gauge whose readings make the zone's rows.
    """

    lines: dict[str, CriticalLine]
    pacers: dict[str, str]
    name: str = "zone_fusion"

    def initial(self, key: str) -> ZoneState:
        return ZoneState()

    def event_time(self, item: RainfallTotals | AreaRainfall | DroneSighting | ZoneRow) -> dt.datetime:
        return item.event_time

    def order(self, item: RainfallTotals | AreaRainfall | DroneSighting) -> int:
        # A grid or sighting at t is known to the gauge reading at t that makes the row.
        return 1 if isinstance(item, RainfallTotals) else 0

    def step(self, key: str, state: ZoneState, item: RainfallTotals | AreaRainfall | DroneSighting
             ) -> tuple[ZoneState, list[ZoneRow]]:
        from models import landslide_features

        if isinstance(item, AreaRainfall):
            newer = state.grid is None or state.grid.event_time <= item.event_time
            nowcasts = state.nowcasts if item.nowcast_60min_mm is None else remember_nowcast(
                state.nowcasts, item.event_time.timestamp(), item.nowcast_60min_mm)
            return dataclasses.replace(state, grid=item if newer else state.grid, nowcasts=nowcasts), []
        if isinstance(item, DroneSighting):
            newer = state.drone is None or state.drone.event_time <= item.event_time
            return (dataclasses.replace(state, drone=item) if newer else state), []
        zone_id = key.partition("|")[2]
        known = state.totals.get(item.station_id)
        if known is not None and known.event_time > item.event_time:
            return state, []
        totals = {**state.totals, item.station_id: item}
        if item.station_id != self.pacers.get(zone_id):
            return dataclasses.replace(state, totals=totals), []
        fresh: list[RainfallTotals] = []
        stale: list[RainfallTotals] = []
        for t in totals.values():
            age = (item.event_time - t.event_time).total_seconds()
            (fresh if 0 <= age <= RAIN_MAX_AGE_S else stale).append(t)
        tanks = TankState(*(float(np.mean([t.tanks[i] for t in fresh])) for i in range(3)))
        rain_10 = float(np.mean([t.rain_10min_mm for t in fresh]))
        rain_60 = float(np.mean([t.rain_60min_mm for t in fresh]))
        at = item.event_time.timestamp()
        history = tuple(h for h in state.swi_history if h[0] >= at - 4200) + ((at, sum(tanks.as_tuple())),)
        hour_ago = [swi for when, swi in history if when <= at - 3600]
        line = self.lines.get(zone_id, CriticalLine())
        grid = fresh_grid(state.grid, item.event_time)
        nowcast_60 = None if grid is None else grid.nowcast_60min_mm
        values = landslide_features(tanks, swi_1h_ago_mm=hour_ago[-1] if hour_ago else None,
                                    rain_10min_mm=rain_10, rain_60min_mm=rain_60,
                                    nowcast_rain_60min_mm=nowcast_60, critical_line=line)
        outlook = warning_outlook(tanks, rain_60, lagged_nowcast(state.nowcasts, at), line)
        from models import LANDSLIDE_FEATURES

        row = ZoneRow(
            zone_id=zone_id,
            event_time=item.event_time,
            features=tuple(zip(LANDSLIDE_FEATURES, (round(float(v), 4) for v in values), strict=True)),
            exceeds_now=bool(outlook.exceeds_now),
            exceeds_within_2h=bool(outlook.exceeds_within_2h),
            rain_stations=tuple(sorted(t.station_id for t in fresh)),
            faults=tuple(f"{t.station_id} no rain data since {format_time(t.event_time)}" for t in stale),
            exercise=item.exercise,
            drill_id=item.drill_id,
            grid=tuple(grid_features(grid).items()),
            drone=fresh_sighting(state.drone, item.event_time),
            warning_rain_mm=(round(outlook.r60_mm[1], 2), round(outlook.r60_mm[2], 2)),
        )
        return dataclasses.replace(state, totals=totals, swi_history=history), [row]


def criterion_level(row: ZoneRow) -> AlertLevel:
    """The physically based level: the critical line reached now or within two hours -> level 4;
    a slope failure seen by a drone -> level 5 (the disaster is happening)."""
    if row.drone is not None:
        return AlertLevel.FLOODING
    return AlertLevel.DANGER if row.exceeds_now or row.exceeds_within_2h else AlertLevel.NONE


def zone_risk_scores(scorer: Any, rows: Sequence[ZoneRow]) -> list[RiskScore]:
    """Scores zone rows in one ONNX Runtime call (``scorer``: a :class:`models.runtime.OnnxScorer`)."""
    matrix = np.asarray([[v for _, v in row.features] for row in rows], dtype=np.float32)
    probabilities = scorer.predict_proba(matrix)
    contributions = scorer.contributions_batch(matrix)
    return [_zone_score(scorer, row, float(p), named)
            for row, named, p in zip(rows, contributions, probabilities, strict=True)]


def _zone_score(scorer: Any, row: ZoneRow, probability: float, contributions: list[str]) -> RiskScore:
    stamp = row.event_time.strftime("%Y%m%dT%H%M%SZ")
    criterion = {"snake_line_beyond_cl_now": float(row.exceeds_now),
                 "snake_line_beyond_cl_within_2h": float(row.exceeds_within_2h),
                 "warning_rain_hour_1_mm": row.warning_rain_mm[0], "warning_rain_hour_2_mm": row.warning_rain_mm[1]}
    return RiskScore(
        event_id=f"risk:{row.drill_id or 'live'}:{row.zone_id}:{Hazard.LANDSLIDE.value}:{stamp}",
        event_time=row.event_time,
        exercise=row.exercise,
        drill_id=row.drill_id,
        area_id=row.zone_id,
        area_kind=AreaKind.ZONE,
        hazard=Hazard.LANDSLIDE,
        probability=round(probability, 6),
        probabilities={"snake_line_beyond_cl_within_2h": round(probability, 6)},
        observed_level=criterion_level(row),
        model=scorer.model_ref,
        target=scorer.target,
        features=dict(row.features) | criterion | dict(row.grid) | sighting_features(row.drone),
        contributions=tuple(contributions),
        faults=row.faults,
    )


