"""Decide alert levels per area from risk scores, with hysteresis.

The level an area *should* have is the higher of what observations show
(thresholds crossed) and what the forecast shows: following the practice for
Japan's flood-forecast rivers, a river expected to reach flood danger within the
lead time is raised to flood warning (氾濫警戒情報, level 3) before it gets there.

Raising is immediate. Lowering waits until the area has stayed below its
current level for ``hold_s`` of event time, so a level hovering at a threshold
does not flap. A new alert (``Alert``) opens when an area rises above level 1;
changes are ``Update`` messages and the end is a ``Cancel``, each referencing
the message before it, as CAP does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import cast

from pipelines.ordered import Fold
from suibou.catalogue import StationCatalogue
from suibou.contracts import AlertEvent, AlertLevel, Hazard, MsgType, RiskScore


@dataclasses.dataclass(frozen=True)
class AreaInfo:
    """What partners need to show and avoid an area: names and a polygon (lon, lat ring)."""

    name: str
    name_ja: str
    polygon: tuple[tuple[float, float], ...] = ()


#: Half-width of the hazard corridor drawn around a river reach, metres.
REACH_CORRIDOR_M = 150.0


def corridor_polygon(line: tuple[tuple[float, float], ...], half_width_m: float = REACH_CORRIDOR_M,
                     max_vertices: int = 200) -> tuple[tuple[float, float], ...]:
    """A corridor around a (lon, lat) line, as a closed ring.

    Buffered in a local equirectangular projection, which is accurate to well
    under a metre over the few kilometres of a reach.

    Examples:
        >>> ring = corridor_polygon(((139.60, 35.70), (139.62, 35.70)), 100.0)
        >>> ring[0] == ring[-1], round(min(lat for _, lat in ring), 4), round(max(lat for _, lat in ring), 4)
        (True, 35.6991, 35.7009)
    """
    import math

    from shapely.geometry import LineString, Polygon

    lat0 = sum(lat for _, lat in line) / len(line)
    kx, ky = 111_320.0 * math.cos(math.radians(lat0)), 110_574.0
    projected = LineString([(lon * kx, lat * ky) for lon, lat in line])
    area = projected.buffer(half_width_m, quad_segs=4)
    tolerance = 1.0
    while len(area.exterior.coords) > max_vertices:
        area = cast(Polygon, area.simplify(tolerance))  # a simplified polygon is a polygon
        tolerance *= 2
    return tuple((round(x / kx, 6), round(y / ky, 6)) for x, y in area.exterior.coords)


#: How long a landslide warning zone stays below its level before it is lowered.
LANDSLIDE_HOLD_S = 3 * 3600.0


@dataclasses.dataclass(frozen=True)
class AreaAlertState:
    """What one area's alert is, as the fold remembers it."""

    level: AlertLevel = AlertLevel.NONE
    alert_id: str | None = None
    sequence: int = 0
    last_event_id: str | None = None
    below_since: dt.datetime | None = None
    #: For a state read back from the alerts topic: the time of its last
    #: message. Scores up to then are already reflected in it.
    as_of: dt.datetime | None = None


_NAMES_JA = {
    AlertLevel.CAUTION: "氾濫注意情報",
    AlertLevel.WARNING: "氾濫警戒情報",
    AlertLevel.DANGER: "氾濫危険情報",
    AlertLevel.FLOODING: "氾濫発生情報",
}
_NAMES_EN = {
    AlertLevel.CAUTION: "flood caution",
    AlertLevel.WARNING: "flood warning",
    AlertLevel.DANGER: "flood danger",
    AlertLevel.FLOODING: "flooding occurring",
}


#: What a flood model that looks three hours ahead (``flood/3``) raises a reach to, highest first:
#: flood danger (level 4) when the gauge is expected to reach flood danger within the hour; flood
#: warning (level 3) when it is expected to reach flood danger within three hours, or evacuation
#: judgement within the hour.
FLOOD_FORECAST_LEVELS: tuple[tuple[AlertLevel, tuple[str, ...]], ...] = (
    (AlertLevel.DANGER, ("danger_60min",)),
    (AlertLevel.WARNING, ("danger_180min", "evacuation_60min")),
)


def forecast_level(score: RiskScore, forecast_threshold: float) -> tuple[AlertLevel, str | None]:
    """The level the forecast alone supports, and the target that decided it (``None`` when none did).

    A flood score with three-hour targets follows :data:`FLOOD_FORECAST_LEVELS`;
    any other score raises to level 3 when its primary probability reaches the threshold.
    """
    if score.hazard is Hazard.FLOOD and "danger_180min" in score.probabilities:
        for level, targets in FLOOD_FORECAST_LEVELS:
            for target in targets:
                if score.probabilities.get(target, 0.0) >= forecast_threshold:
                    return level, target
        return AlertLevel.NONE, None
    if score.probability >= forecast_threshold:
        return AlertLevel.WARNING, score.target
    return AlertLevel.NONE, None


def target_level(score: RiskScore, forecast_threshold: float) -> AlertLevel:
    """The level the evidence supports now: observed, raised by the forecast."""
    return max(score.observed_level, forecast_level(score, forecast_threshold)[0])


_LANDSLIDE_JA = {
    AlertLevel.CAUTION: "土砂災害に注意",
    AlertLevel.WARNING: "土砂災害の危険度が上昇",
    AlertLevel.DANGER: "土砂災害警戒情報",
    AlertLevel.FLOODING: "土砂災害が発生",
}
_LANDSLIDE_EN = {
    AlertLevel.CAUTION: "landslide caution",
    AlertLevel.WARNING: "landslide risk rising",
    AlertLevel.DANGER: "landslide warning",
    AlertLevel.FLOODING: "landslide occurring",
}


def headline(area_name: str, area_name_ja: str, level: AlertLevel, msg_type: MsgType,
             hazard: Hazard = Hazard.FLOOD) -> str:
    """Bilingual headline, Japanese first.

    Examples:
        >>> headline("Zenpukuji River", "善福寺川", AlertLevel.DANGER, MsgType.ALERT)
        '善福寺川 氾濫危険情報（警戒レベル4） / Zenpukuji River: flood danger (alert level 4)'
        >>> headline("Kandachi, Motomachi", "元町神達", AlertLevel.DANGER, MsgType.ALERT, Hazard.LANDSLIDE)
        '元町神達 土砂災害警戒情報（警戒レベル4相当） / Kandachi, Motomachi: landslide warning (alert level 4)'
    """
    if hazard is Hazard.LANDSLIDE:
        if msg_type is MsgType.CANCEL:
            return f"{area_name_ja} 土砂災害に関する情報の解除 / {area_name}: landslide alert cancelled"
        return (f"{area_name_ja} {_LANDSLIDE_JA[level]}（警戒レベル{int(level)}相当） / "
                f"{area_name}: {_LANDSLIDE_EN[level]} (alert level {int(level)})")
    if msg_type is MsgType.CANCEL:
        return f"{area_name_ja} 洪水に関する情報の解除 / {area_name}: flood alert cancelled"
    return (f"{area_name_ja} {_NAMES_JA[level]}（警戒レベル{int(level)}） / "
            f"{area_name}: {_NAMES_EN[level]} (alert level {int(level)})")


@dataclasses.dataclass(frozen=True)
class AlertHysteresis(Fold[AreaAlertState, RiskScore, AlertEvent]):
    """Per-area alert lifecycle over a stream of risk scores.

    Attributes:
        areas: Area id -> names and polygon, carried on every alert message.
        seeds: Fold key -> open alert, for a resumed job (see :mod:`pipelines.recovery`).
        hold_s: How long a river reach must stay below its level before it is lowered.
        forecast_threshold: Probability at which the forecast raises a level (:func:`forecast_level`).
        landslide_hold_s: The same for a landslide warning zone. Slopes keep
            failing after the rain eases (soil stays saturated for hours), and a
            warning dropped when a squall passes and re-issued with the next
            would teach people to ignore it, so it is held far longer.
    """

    areas: Mapping[str, AreaInfo]
    hold_s: float = 1800.0
    forecast_threshold: float = 0.5
    seeds: Mapping[str, AreaAlertState] = dataclasses.field(default_factory=dict)
    landslide_hold_s: float = LANDSLIDE_HOLD_S
    name: str = "alert_hysteresis"

    def initial(self, key: str) -> AreaAlertState:
        # A resumed job continues the alerts its predecessor had open.
        return self.seeds.get(key, AreaAlertState())

    def event_time(self, item: RiskScore | AlertEvent) -> dt.datetime:
        return item.event_time

    def identity(self, item: RiskScore) -> str:
        return item.event_id

    def step(self, key: str, state: AreaAlertState, item: RiskScore) -> tuple[AreaAlertState, list[AlertEvent]]:
        if state.as_of is not None and item.event_time <= state.as_of:
            return state, []  # Re-read while a resumed job warms up; its effect is in the seed.
        wanted = target_level(item, self.forecast_threshold)
        if wanted > state.level:
            msg_type = MsgType.ALERT if state.alert_id is None else MsgType.UPDATE
            return self._emit(state, item, wanted, msg_type)
        if wanted == state.level:
            return dataclasses.replace(state, below_since=None), []
        if item.faults:
            # A faulty gauge is no evidence that the danger has passed: hold the level.
            return dataclasses.replace(state, below_since=None), []
        below_since = state.below_since or item.event_time
        hold_s = self.landslide_hold_s if item.hazard is Hazard.LANDSLIDE else self.hold_s
        if (item.event_time - below_since).total_seconds() < hold_s:
            return dataclasses.replace(state, below_since=below_since), []
        msg_type = MsgType.CANCEL if wanted <= AlertLevel.NONE else MsgType.UPDATE
        return self._emit(state, item, wanted, msg_type)

    def _emit(self, state: AreaAlertState, score: RiskScore, level: AlertLevel,
              msg_type: MsgType) -> tuple[AreaAlertState, list[AlertEvent]]:
        onset = score.event_time.strftime("%Y%m%dT%H%M%SZ")
        alert_id = state.alert_id or f"{score.drill_id or 'live'}:{score.area_id}:{score.hazard.value}:{onset}"
        sequence = state.sequence + 1 if state.alert_id else 0
        event_id = f"{alert_id}:{sequence}"
        area = self.areas.get(score.area_id) or AreaInfo(score.area_id, score.area_id)
        forecast, forecast_target = forecast_level(score, self.forecast_threshold)
        alert = AlertEvent(
            event_id=event_id,
            event_time=score.event_time,
            exercise=score.exercise,
            drill_id=score.drill_id,
            alert_id=alert_id,
            sequence=sequence,
            msg_type=msg_type,
            area_id=score.area_id,
            area_kind=score.area_kind,
            hazard=score.hazard,
            level=level,
            previous_level=state.level,
            headline=headline(area.name, area.name_ja, level, msg_type, score.hazard),
            area_name=area.name,
            area_name_ja=area.name_ja,
            polygon=area.polygon,
            references=(state.last_event_id,) if state.last_event_id else (),
            reason={
                "observed_level": int(score.observed_level),
                "forecast_level": int(forecast),
                "forecast_target": forecast_target,
                "probability": score.probability,
                "target": score.target,
                "model": score.model,
                "features": dict(score.features),
                "contributions": list(score.contributions),
                "risk_score_id": score.event_id,
                "faults": list(score.faults),
            },
        )
        if msg_type is MsgType.CANCEL:
            return AreaAlertState(), [alert]
        return AreaAlertState(level=level, alert_id=alert_id, sequence=sequence, last_event_id=event_id), [alert]


def reach_areas(catalogue: StationCatalogue) -> dict[str, AreaInfo]:
    """Every reach (its corridor) and landslide warning zone (its polygon) as an alert area."""
    areas = {r.reach_id: AreaInfo(r.name, r.name_ja, corridor_polygon(r.geometry)) for r in catalogue.reaches}
    areas.update({z.zone_id: AreaInfo(z.name, z.name_ja, tuple(z.polygon)) for z in catalogue.zones})
    return areas


__all__ = ["FLOOD_FORECAST_LEVELS", "LANDSLIDE_HOLD_S", "AlertHysteresis", "AreaInfo", "corridor_polygon",
           "forecast_level", "headline", "reach_areas", "target_level"]
