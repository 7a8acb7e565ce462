"""What the console's routes answer, built by pure functions from the map, the station view and the alerts.

- :func:`state_document`: the selected stream's current picture: every
  station's latest status, fault and colour, every camera's latest still and
  its estimate, every area's alert level and latest score, the active faults and
  the stream's alerts.
- :func:`station_document`: one gauge's history: a hydrograph with the
  thresholds, the trend line and the flood model's probabilities; or rainfall
  bars and the snake line against the critical line.
- :func:`frame_path`: where a camera still the API has seen may be read from.

Colours are JMA's (:attr:`suibou.contracts.AlertLevel.colour`). A station with a
fault is reported as a fault, whatever its last reading; a station with no data
is reported as such, never as level 1.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from alert_api.console.stations import Gauge, StationMap
from alert_api.console.view import (
    DEFAULT_LIMITS,
    EXERCISE,
    LIVE,
    AreaState,
    LevelPoint,
    Limits,
    RainPoint,
    ScorePoint,
    StationState,
    StreamState,
    ViewState,
    active_fault,
    area_key,
)
from alert_api.models import Alert
from suibou.contracts import (
    AlertLevel,
    CameraFrame,
    LevelStatus,
    RainStatus,
    RiskScore,
    SensorFault,
    format_time,
    local_path,
)

#: How far ahead the trend line of a hydrograph reaches.
TREND_HORIZON_MIN = 60
#: A camera estimate is overtopping from this probability on (as camera/1 flags it).
OVERTOPPING_P = 0.5
#: Largest camera still the console serves.
MAX_FRAME_BYTES = 2 * 1024 * 1024
FRAME_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


# --------------------------------------------------------------------------- streams


def alert_in_stream(exercise: bool, drill_id: str | None, stream_id: str) -> bool:
    """Whether an alert belongs on a stream's console: live alerts on ``live``; a drill's alerts, and
    exercise alerts that name no drill (issued by hand), on every exercise stream."""
    if stream_id == LIVE:
        return not exercise
    return exercise and drill_id in (None, stream_id)


def choose_stream(state: ViewState, requested: str | None) -> str:
    """The stream to show: the one asked for, else the most recently updated one, else ``live``."""
    if requested:
        return requested
    if not state.streams:
        return LIVE
    return max(state.streams.values(), key=lambda s: s.touched).stream_id


def streams_summary(state: ViewState) -> list[dict[str, Any]]:
    """Every stream the view holds, most recently updated first."""
    return [{"id": s.stream_id, "exercise": s.exercise, "clock": _time(s.clock), "stations": len(s.stations)}
            for s in sorted(state.streams.values(), key=lambda s: -s.touched)]


def stream_exercise(stream_id: str, state: ViewState) -> bool:
    stream = state.streams.get(stream_id)
    return stream.exercise if stream is not None else stream_id != LIVE


# --------------------------------------------------------------------------- small views


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _round(value: float, digits: int = 3) -> float:
    return round(float(value), digits)


def fault_view(fault: SensorFault) -> dict[str, Any]:
    return {"station_id": fault.station_id, "kind": fault.kind.value, "since": _time(fault.since),
            "time": _time(fault.event_time), "detail": fault.detail, "event_id": fault.event_id}


def score_view(score: RiskScore) -> dict[str, Any]:
    """A risk score as the console shows it: why an area is where it is."""
    return {"event_id": score.event_id, "time": _time(score.event_time), "hazard": score.hazard.value,
            "model": score.model, "target": score.target, "probability": _round(score.probability, 4),
            "probabilities": {k: _round(v, 4) for k, v in score.probabilities.items()},
            "observed_level": int(score.observed_level), "features": dict(score.features),
            "contributions": list(score.contributions), "faults": list(score.faults)}


def critical_margin(r60_mm: float, swi_mm: float, line: Mapping[str, Any]) -> float:
    """``r60/r60_at_dry + swi/swi_at_no_rain - 1``: at or above 0 the snake line is on or beyond the line
    (``-inf`` below the line's SWI floor), as ``suibou.hydrology.critical_margin``."""
    if swi_mm < float(line["swi_floor_mm"]):
        return -math.inf
    return r60_mm / float(line["r60_at_dry_mm"]) + swi_mm / float(line["swi_at_no_rain_mm"]) - 1.0


def status_view(status: RainStatus | LevelStatus, gauge: Gauge | None, stations: StationMap) -> dict[str, Any]:
    if isinstance(status, LevelStatus):
        return {"time": _time(status.event_time), "event_id": status.event_id, "reach_id": status.reach_id,
                "level_m": status.level_m, "observed_level": int(status.observed_level),
                "rise_m_per_h": status.rise_m_per_h, "minutes_to": dict(status.minutes_to)}
    lines = stations.critical_lines(gauge) if gauge is not None else []
    beyond = [line.get("zone_id") or "default" for line in lines
              if critical_margin(status.rain_60min_mm, status.swi_mm, line) >= 0]
    return {"time": _time(status.event_time), "event_id": status.event_id,
            "rain_10min_mm": status.rain_10min_mm, "rain_60min_mm": status.rain_60min_mm,
            "rain_3h_mm": status.rain_3h_mm, "rain_24h_mm": status.rain_24h_mm, "swi_mm": status.swi_mm,
            "tanks": list(status.tanks), "beyond_critical_line": beyond}


def camera_estimate(stations: StationMap, stream: StreamState | None, camera_id: str) -> dict[str, Any] | None:
    """The camera/1 reading of a camera's reach, as the reach's latest flood score carries it, or ``None``.

    The pipeline fuses the latest fresh estimate of the reach's camera into each
    flood score (features ``camera_level_m`` and ``camera_p_overtopping``); the
    estimate is therefore as of that score, not necessarily of the newest still.
    """
    camera = stations.camera(camera_id)
    if camera is None or stream is None:
        return None
    area = stream.areas.get(area_key(camera.reach_id, "flood"))
    score = area.latest if area is not None else None
    if score is None or "camera_level_m" not in score.features:
        return None
    level_m = float(score.features["camera_level_m"])
    p_over = float(score.features.get("camera_p_overtopping", 0.0))
    gauge = stations.gauge(camera.level_station_id) if camera.level_station_id else None
    level = 5 if p_over >= OVERTOPPING_P else (gauge.level_for(level_m) if gauge is not None else None)
    return {"level_m": _round(level_m), "p_overtopping": _round(p_over, 4), "overtopping": p_over >= OVERTOPPING_P,
            "estimated_level": level, "score_time": _time(score.event_time), "score_id": score.event_id,
            "source": "camera/1 estimate as fused into the reach's latest flood score"}


# --------------------------------------------------------------------------- the state document


def area_levels(alerts: Iterable[Alert]) -> dict[str, dict[str, Any]]:
    """Area id -> the highest level of its active alerts and their ids."""
    levels: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        if not alert.active:
            continue
        event = alert.latest.event
        entry = levels.setdefault(event.area_id, {"alert_level": 1, "alert_ids": []})
        entry["alert_level"] = max(entry["alert_level"], int(event.level))
        entry["alert_ids"].append(event.alert_id)
    return levels


def _station_entry(stations: StationMap, station_id: str, station: StationState | None, clock: dt.datetime | None,
                   levels: Mapping[str, Mapping[str, Any]], limits: Limits) -> dict[str, Any]:
    gauge = stations.gauge(station_id)
    fault = active_fault(station, clock, limits) if station is not None else None
    latest = station.latest if station is not None else None
    entry: dict[str, Any] = {
        "kind": gauge.kind if gauge else ("level" if isinstance(latest, LevelStatus) else "rain"),
        "status": "fault" if fault is not None else ("ok" if latest is not None else "no_data"),
        "fault": fault_view(fault) if fault is not None else None,
        "latest": status_view(latest, gauge, stations) if latest is not None else None,
        "age_s": (clock - latest.event_time).total_seconds() if latest is not None and clock else None,
        "colour_level": None,
    }
    if isinstance(latest, LevelStatus):
        entry["colour_level"] = int(latest.observed_level)
    elif latest is not None and gauge is not None:
        entry["colour_level"] = max((levels.get(a, {}).get("alert_level", 1)
                                     for a in (*gauge.reach_ids, *gauge.zone_ids)), default=1)
    if entry["colour_level"] is not None:
        entry["colour"] = AlertLevel(entry["colour_level"]).colour
    return entry


def state_document(stations: StationMap, state: ViewState, stream_id: str, alerts: Sequence[Alert],
                   alert_views: Sequence[Mapping[str, Any]], feed: Mapping[str, Any],
                   limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The console's picture of one stream.

    Args:
        stations: The map.
        state: The station view.
        stream_id: The stream shown (see :func:`choose_stream`).
        alerts: The stream's alerts (active ones colour their areas).
        alert_views: The same alerts as the API's public JSON, newest change first.
        feed: The status consumer's state, so the page can say when it has no station feed.
        limits: The view's limits (how long a spike shows).
    """
    stream = state.streams.get(stream_id)
    clock = stream.clock if stream is not None else None
    levels = area_levels(alerts)
    known = stream.stations if stream is not None else {}
    ids = [g.station_id for g in stations.gauges] + sorted(set(known) - {g.station_id for g in stations.gauges})
    station_docs = {sid: _station_entry(stations, sid, known.get(sid), clock, levels, limits) for sid in ids}
    faults = [doc["fault"] for doc in station_docs.values() if doc["fault"] is not None]

    cameras: dict[str, Any] = {}
    for camera in stations.cameras:
        frames = stream.cameras.get(camera.camera_id, ()) if stream is not None else ()
        estimate = camera_estimate(stations, stream, camera.camera_id)
        level = estimate["estimated_level"] if estimate and estimate["estimated_level"] else None
        if level is None and frames:
            level = levels.get(camera.reach_id, {}).get("alert_level", 1)
        cameras[camera.camera_id] = {
            "status": "ok" if frames else "no_data",
            "frame": _frame_view(frames[-1]) if frames else None,
            "estimate": estimate, "colour_level": level,
            "colour": AlertLevel(level).colour if level else None,
        }

    areas: dict[str, Any] = {}
    for area in stations.areas:
        scored = stream.areas.get(area_key(area.area_id, area.hazard)) if stream is not None else None
        score = scored.latest if scored is not None else None
        alert_level = levels.get(area.area_id, {}).get("alert_level", 1)
        areas[area.area_id] = {
            "alert_level": alert_level, "colour": AlertLevel(alert_level).colour,
            "alert_ids": levels.get(area.area_id, {}).get("alert_ids", []),
            "score": score_view(score) if score is not None else None,
            "faulted": bool(score is not None and score.faults),
        }
    return {
        "stream": {"id": stream_id, "exercise": stream_exercise(stream_id, state),
                   "drill_id": stream_id if stream_id not in (LIVE, EXERCISE) else None, "clock": _time(clock)},
        "streams": streams_summary(state),
        "feed": dict(feed),
        "stations": station_docs,
        "cameras": cameras,
        "areas": areas,
        "faults": faults,
        "alerts": list(alert_views),
    }


def _frame_view(frame: CameraFrame) -> dict[str, Any]:
    return {"event_id": frame.event_id, "time": _time(frame.event_time), "width": frame.width,
            "height": frame.height, "content_type": frame.content_type}


# --------------------------------------------------------------------------- one station


def level_trend(status: LevelStatus, horizon_min: int = TREND_HORIZON_MIN, step_min: int = 10
                ) -> list[tuple[str, float]]:
    """The level carried forward at the current rate of rise: a straight line, not a forecast.

    Examples:
        >>> s = LevelStatus(event_id="s", event_time=dt.datetime(2005, 9, 4, 12, tzinfo=dt.timezone.utc),
        ...     station_id="WL-A", reach_id="R-A", level_m=2.0, observed_level=AlertLevel.CAUTION, rise_m_per_h=0.6)
        >>> level_trend(s, 20)
        [('2005-09-04T12:00:00+00:00', 2.0), ('2005-09-04T12:10:00+00:00', 2.1), ('2005-09-04T12:20:00+00:00', 2.2)]
    """
    return [(format_time(status.event_time + dt.timedelta(minutes=m)),
             _round(max(0.0, status.level_m + status.rise_m_per_h * m / 60.0)))
            for m in range(0, horizon_min + 1, step_min)]


def ten_minute_bars(points: Sequence[RainPoint]) -> list[tuple[str, float]]:
    """Rain per 10-minute slot (JST and UTC slots coincide): the latest 10-minute total seen in each slot,
    labelled with the slot's end.

    Examples:
        >>> t = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.timezone.utc)
        >>> pts = [RainPoint(t + dt.timedelta(minutes=m), r, 0.0, 0.0) for m, r in ((1, 1.0), (10, 4.0), (11, 2.0))]
        >>> ten_minute_bars(pts)
        [('2005-09-04T12:10:00+00:00', 4.0), ('2005-09-04T12:20:00+00:00', 2.0)]
    """
    bars: dict[int, tuple[dt.datetime, float]] = {}
    for point in points:
        slot = math.ceil(point.time.timestamp() / 600)
        if slot not in bars or point.time >= bars[slot][0]:
            bars[slot] = (point.time, point.rain_10min_mm)
    return [(format_time(dt.datetime.fromtimestamp(slot * 600, dt.UTC)), value)
            for slot, (_, value) in sorted(bars.items())]


def station_document(stations: StationMap, state: ViewState, stream_id: str, station_id: str,
                     limits: Limits = DEFAULT_LIMITS) -> dict[str, Any] | None:
    """One gauge's history in one stream, or ``None`` for a station neither on the map nor in the stream."""
    gauge = stations.gauge(station_id)
    stream = state.streams.get(stream_id)
    station = stream.stations.get(station_id) if stream is not None else None
    if gauge is None and station is None:
        return None
    station = station or StationState()
    clock = stream.clock if stream is not None else None
    fault = active_fault(station, clock, limits)
    latest = station.latest
    kind = gauge.kind if gauge is not None else ("level" if isinstance(latest, LevelStatus) else "rain")
    doc: dict[str, Any] = {
        "station_id": station_id, "kind": kind, "stream": stream_id, "clock": _time(clock),
        "name": gauge.name if gauge else station_id, "name_ja": gauge.name_ja if gauge else "",
        "latest": status_view(latest, gauge, stations) if latest is not None else None,
        "fault": fault_view(fault) if fault is not None else None,
        "history_hours": limits.history_s / 3600,
    }
    if kind == "level":
        points = [p for p in station.history if isinstance(p, LevelPoint)]
        doc["series"] = [[format_time(p.time), p.level_m, p.observed_level] for p in points]
        doc["thresholds"] = dict(gauge.thresholds) if gauge else {}
        doc["trend"] = ({"basis": f"the current rate of rise carried forward {TREND_HORIZON_MIN} min "
                                  "(a straight line, not a forecast)",
                         "points": [list(p) for p in level_trend(latest)]}
                        if isinstance(latest, LevelStatus) else None)
        reach_id = gauge.reach_ids[0] if gauge and gauge.reach_ids else (
            latest.reach_id if isinstance(latest, LevelStatus) else None)
        area: AreaState | None = stream.areas.get(area_key(reach_id, "flood")) if stream and reach_id else None
        doc["reach_id"] = reach_id
        doc["forecast"] = score_view(area.latest) if area is not None and area.latest is not None else None
        doc["probability_series"] = ([[format_time(p.time), p.probability] for p in area.history
                                      if isinstance(p, ScorePoint)] if area is not None else [])
        doc["cameras"] = [c.camera_id for c in stations.cameras if reach_id and c.reach_id == reach_id]
    else:
        points_r = [p for p in station.history if isinstance(p, RainPoint)]
        doc["series"] = [[format_time(p.time), p.rain_10min_mm, p.rain_60min_mm, p.swi_mm] for p in points_r]
        doc["bars"] = [list(b) for b in ten_minute_bars(points_r)]
        doc["critical_lines"] = [dict(line) for line in stations.critical_lines(gauge)] if gauge else []
        doc["reach_ids"] = list(gauge.reach_ids) if gauge else []
        doc["zone_ids"] = list(gauge.zone_ids) if gauge else []
    return doc


# --------------------------------------------------------------------------- camera stills


class FrameError(LookupError):
    """A still the console will not serve; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


def find_frame(state: ViewState, stream_id: str, camera_id: str, event_id: str) -> CameraFrame:
    """A still of ``camera_id`` that the view holds (the API saw it in a ``camera_frame`` event).

    Raises:
        FrameError: The view holds no such still (404).
    """
    stream = state.streams.get(stream_id)
    for frame in (stream.cameras.get(camera_id, ()) if stream is not None else ()):
        if frame.event_id == event_id:
            return frame
    raise FrameError(f"no recent still {event_id!r} of camera {camera_id!r} in stream {stream_id!r}")


def frame_path(frame: CameraFrame, roots: Sequence[Path]) -> tuple[Path, str]:
    """The file of a still and its media type, if it may be served.

    Only ``file://`` URIs (or plain paths) to a JPEG or PNG file that lies,
    links resolved, inside one of ``roots`` and is at most
    :data:`MAX_FRAME_BYTES` long.

    Raises:
        FrameError: 404 for a still that is not there or not allowed.
    """
    try:
        raw = local_path(frame.image_uri, "image_uri")
    except ValueError:
        raise FrameError("the still is not a local file") from None
    try:
        path = Path(raw).resolve(strict=True)
    except (OSError, RuntimeError):
        raise FrameError("the still is no longer on disk") from None
    allowed = [root.resolve() for root in roots if root.exists()]
    if not any(path.is_relative_to(root) for root in allowed):
        raise FrameError("the still lies outside the folders stills are served from")
    media_type = FRAME_TYPES.get(path.suffix.lower())
    if media_type is None or not path.is_file():
        raise FrameError("the still is not a JPEG or PNG file")
    if path.stat().st_size > MAX_FRAME_BYTES:
        raise FrameError("the still is larger than a camera still can be")
    return path, media_type


__all__ = [
    "FrameError", "MAX_FRAME_BYTES", "alert_in_stream", "area_levels", "camera_estimate", "choose_stream",
    "critical_margin", "find_frame", "frame_path", "level_trend", "score_view", "state_document",
    "station_document", "streams_summary", "ten_minute_bars",
]
