"""The station view: what the console knows of every gauge, camera and scored area, per stream.

The pipeline's status topics (``rain_status/1``, ``level_status/1``), its faults
(``sensor_fault/1``), its scores (``risk_score/1``) and the camera stills
(``camera_frame/1``) are folded, one event at a time, by the pure function
:func:`fold` into an immutable :class:`ViewState`:

- per station, the latest status and a bounded history (by default the last
  24 hours of event time at one point per minute, at most 1,440 points);
- per station, the fault that is active now (``silent`` until a ``recovered``
  for a reading after its ``since``, ``frozen`` until the level moves,
  ``spike`` for 10 minutes of stream time);
- per camera, its latest stills (at most 12);
- per area and hazard, the latest score and a bounded history of its probability.

State is kept per **stream**: live traffic (``live``) and each drill (its drill
id) apart, as the pipeline keeps them, so a drill never colours the live map.
At most ``max_streams`` streams are kept; the least recently updated goes first.
A repeated event (Kafka is read at least once) changes nothing.

:class:`StationView` holds the current state for the API's threads; the
console's Kafka consumer and the tests feed it through :func:`ingest_status`.

Examples:
    >>> import datetime as dt
    >>> from suibou.contracts import LevelStatus, AlertLevel
    >>> t = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.timezone.utc)
    >>> status = LevelStatus(event_id="s1", event_time=t, station_id="WL-A", reach_id="R-A", level_m=2.1,
    ...                      observed_level=AlertLevel.CAUTION, rise_m_per_h=0.6)
    >>> state = fold(ViewState(), status)
    >>> station = state.streams["live"].stations["WL-A"]
    >>> station.latest.level_m, len(station.history), fold(state, status) == state
    (2.1, 1, True)
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import enum
import threading
from collections.abc import Mapping
from typing import TypeVar

from suibou.contracts import (
    CameraFrame,
    ContractError,
    Event,
    FaultKind,
    LevelStatus,
    RainStatus,
    RiskScore,
    SensorFault,
    StreamControl,
    parse_event,
)

#: The stream of actual (non-exercise) traffic.
LIVE = "live"
#: The stream of exercise traffic that names no drill.
EXERCISE = "exercise"


@dataclasses.dataclass(frozen=True)
class Limits:
    """How much the view keeps.

    Attributes:
        history_s: Event time a station's or area's history reaches back from its newest point.
        resolution_s: One point per this many seconds (a later event in the same slot replaces it).
        max_points: Most points per history.
        max_frames: Most stills remembered per camera.
        max_streams: Most streams kept.
        max_keys: Most stations, cameras or areas per stream.
        spike_show_s: How long (stream time) a spike is shown as a fault.
    """

    history_s: float = 24 * 3600.0
    resolution_s: float = 60.0
    max_points: int = 1440
    max_frames: int = 12
    max_streams: int = 8
    max_keys: int = 2000
    spike_show_s: float = 600.0

    def __post_init__(self) -> None:
        if not (self.history_s > 0 and self.resolution_s > 0):
            raise ValueError("history_s and resolution_s must be positive")
        if min(self.max_points, self.max_frames, self.max_streams, self.max_keys) < 1:
            raise ValueError("max_points, max_frames, max_streams and max_keys must be at least 1")


DEFAULT_LIMITS = Limits()


@dataclasses.dataclass(frozen=True)
class LevelPoint:
    time: dt.datetime
    level_m: float
    observed_level: int


@dataclasses.dataclass(frozen=True)
class RainPoint:
    time: dt.datetime
    rain_10min_mm: float
    rain_60min_mm: float
    swi_mm: float


@dataclasses.dataclass(frozen=True)
class ScorePoint:
    time: dt.datetime
    probability: float
    observed_level: int


Point = LevelPoint | RainPoint | ScorePoint
StatusEvent = RainStatus | LevelStatus


@dataclasses.dataclass(frozen=True)
class StationState:
    """One gauge in one stream.

    Attributes:
        latest: The newest status (by event time).
        history: Points, oldest first, bounded by :class:`Limits`.
        fault: The latest fault report that is not a recovery, if any (see :func:`active_fault`).
        fault_level_m: The gauge's level when a ``frozen`` fault came (it ends when the level moves).
    """

    latest: StatusEvent | None = None
    history: tuple[Point, ...] = ()
    fault: SensorFault | None = None
    fault_level_m: float | None = None


@dataclasses.dataclass(frozen=True)
class AreaState:
    """One area and hazard in one stream: the latest score and its probability over time."""

    latest: RiskScore | None = None
    history: tuple[Point, ...] = ()


@dataclasses.dataclass(frozen=True)
class StreamState:
    """Everything known of one stream.

    Attributes:
        stream_id: ``live``, ``exercise`` or a drill id.
        exercise: Exercise traffic (drills).
        clock: The newest event time of the pipeline's outputs (statuses, faults, scores) in the stream.
        touched: :attr:`ViewState.sequence` when the stream last changed (which stream to drop first).
        stations: Station id -> state.
        cameras: Camera id -> its latest stills, oldest first.
        areas: ``<area_id>|<hazard>`` -> state.
    """

    stream_id: str
    exercise: bool
    clock: dt.datetime | None = None
    touched: int = 0
    stations: Mapping[str, StationState] = dataclasses.field(default_factory=dict)
    cameras: Mapping[str, tuple[CameraFrame, ...]] = dataclasses.field(default_factory=dict)
    areas: Mapping[str, AreaState] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ViewState:
    """Every stream, and how many events changed the view so far."""

    streams: Mapping[str, StreamState] = dataclasses.field(default_factory=dict)
    sequence: int = 0


# --------------------------------------------------------------------------- pure steps


def stream_of(exercise: bool, drill_id: str | None) -> str:
    """The stream an event or alert belongs to: its drill, ``exercise`` without one, else ``live``."""
    if drill_id:
        return drill_id
    return EXERCISE if exercise else LIVE


def area_key(area_id: str, hazard: str) -> str:
    return f"{area_id}|{hazard}"


def add_point(history: tuple[Point, ...], point: Point, limits: Limits = DEFAULT_LIMITS) -> tuple[Point, ...]:
    """``history`` with ``point`` in time order: one point per resolution slot (the later event wins),
    nothing older than ``history_s`` before the newest point, at most ``max_points``.

    Examples:
        >>> t = dt.datetime(2005, 9, 4, 12, tzinfo=dt.timezone.utc)
        >>> h = add_point((), LevelPoint(t, 1.0, 1))
        >>> h = add_point(h, LevelPoint(t + dt.timedelta(seconds=30), 1.1, 1))   # same minute: replaces
        >>> h = add_point(h, LevelPoint(t + dt.timedelta(minutes=1), 1.2, 1))
        >>> [p.level_m for p in h]
        [1.1, 1.2]
    """
    slot = _slot(point.time, limits)
    if history and _slot(history[-1].time, limits) < slot:
        index = len(history)  # the usual case, a newer slot: no search
    else:
        # Bisected on the slot of each point, computed only for the few points probed:
        # a gauge's day of history is up to 1,440 points, and a drill adds thousands a second.
        index = bisect.bisect_left(history, slot, key=lambda p: _slot(p.time, limits))
    if index < len(history) and _slot(history[index].time, limits) == slot:
        if point.time < history[index].time or point == history[index]:
            return history  # an older event of the same slot (the later one stays), or a repeat
        points = history[:index] + (point,) + history[index + 1:]
    else:
        points = history[:index] + (point,) + history[index:]
    oldest = points[-1].time - dt.timedelta(seconds=limits.history_s)
    start = 0
    while start < len(points) and points[start].time < oldest:
        start += 1
    return points[max(start, len(points) - limits.max_points):]


def _slot(time: dt.datetime, limits: Limits) -> int:
    return int(time.timestamp() // limits.resolution_s)


def _point_of(event: StatusEvent) -> Point:
    if isinstance(event, LevelStatus):
        return LevelPoint(event.event_time, event.level_m, int(event.observed_level))
    return RainPoint(event.event_time, event.rain_10min_mm, event.rain_60min_mm, event.swi_mm)


def fold_station(station: StationState, event: StatusEvent | SensorFault,
                 limits: Limits = DEFAULT_LIMITS) -> StationState:
    """One gauge's state after one status or fault."""
    if isinstance(event, SensorFault):
        if event.kind is FaultKind.RECOVERED:
            # A reading after the last trusted one ends the silence, even one stamped before the silence was
            # declared (it reached the watchdog late); a recovery from an earlier silence does not.
            current = station.fault
            if current is not None and current.kind is FaultKind.SILENT and event.event_time > current.since:
                return dataclasses.replace(station, fault=None, fault_level_m=None)
            return station
        if station.fault is not None and (station.fault == event or station.fault.event_time > event.event_time):
            return station  # a repeat, or a newer fault is already known
        level = station.latest.level_m if isinstance(station.latest, LevelStatus) else None
        return dataclasses.replace(station, fault=event, fault_level_m=level)
    latest = station.latest
    if latest is None or (latest.event_time <= event.event_time and latest != event):
        latest = event
    fault, fault_level = station.fault, station.fault_level_m
    if (fault is not None and fault.kind is FaultKind.FROZEN and isinstance(event, LevelStatus)
            and event.event_time > fault.event_time and fault_level is not None and event.level_m != fault_level):
        fault, fault_level = None, None  # the level moves again
    history = add_point(station.history, _point_of(event), limits)
    if latest is station.latest and history is station.history and fault is station.fault:
        return station
    return StationState(latest, history, fault, fault_level)


def active_fault(station: StationState, clock: dt.datetime | None,
                 limits: Limits = DEFAULT_LIMITS) -> SensorFault | None:
    """The fault to show for a gauge now (stream time ``clock``): a spike only for ``spike_show_s``."""
    fault = station.fault
    if fault is None:
        return None
    if (fault.kind is FaultKind.SPIKE and clock is not None
            and (clock - fault.event_time).total_seconds() > limits.spike_show_s):
        return None
    return fault


def fold_camera(frames: tuple[CameraFrame, ...], frame: CameraFrame,
                limits: Limits = DEFAULT_LIMITS) -> tuple[CameraFrame, ...]:
    """A camera's latest stills, oldest first, with ``frame`` (ignored if already known)."""
    if any(f.event_id == frame.event_id for f in frames):
        return frames
    kept = tuple(sorted((*frames, frame), key=lambda f: (f.event_time, f.event_id)))[-limits.max_frames:]
    return frames if kept == frames else kept


def fold_area(area: AreaState, score: RiskScore, limits: Limits = DEFAULT_LIMITS) -> AreaState:
    """An area's latest score and probability history, with ``score``."""
    latest = area.latest
    if latest is None or (latest.event_time <= score.event_time and latest != score):
        latest = score
    point = ScorePoint(score.event_time, score.probability, int(score.observed_level))
    history = add_point(area.history, point, limits)
    if latest is area.latest and history is area.history:
        return area
    return AreaState(latest, history)


V = TypeVar("V")


def _put(mapping: Mapping[str, V], key: str, before: V | None, after: V, limits: Limits) -> Mapping[str, V] | None:
    """``mapping`` with ``key`` set to ``after``; ``None`` when nothing changes or a new key does not fit."""
    if after is before or (before is None and len(mapping) >= limits.max_keys):
        return None  # unchanged; or full, and a new key is refused rather than an old one forgotten
    return {**mapping, key: after}


def fold_stream(stream: StreamState, event: Event, limits: Limits = DEFAULT_LIMITS) -> StreamState:
    """One stream's state after one event (``touched`` is left to :func:`fold`); the same object if unchanged."""
    clock = event.event_time if stream.clock is None else max(stream.clock, event.event_time)
    if isinstance(event, CameraFrame):
        # Stills come straight from the cameras, ahead of the pipeline's outputs: they do not move the clock.
        frames = stream.cameras.get(event.camera_id)
        cameras = _put(stream.cameras, event.camera_id, frames, fold_camera(frames or (), event, limits), limits)
        return stream if cameras is None else dataclasses.replace(stream, cameras=cameras)
    if isinstance(event, (RainStatus, LevelStatus, SensorFault)):
        station = stream.stations.get(event.station_id)
        stations = _put(stream.stations, event.station_id, station,
                        fold_station(station or StationState(), event, limits), limits)
        return stream if stations is None else dataclasses.replace(stream, clock=clock, stations=stations)
    if isinstance(event, RiskScore):
        key = area_key(event.area_id, event.hazard.value)
        area = stream.areas.get(key)
        areas = _put(stream.areas, key, area, fold_area(area or AreaState(), event, limits), limits)
        return stream if areas is None else dataclasses.replace(stream, clock=clock, areas=areas)
    return stream


#: Events the view folds; anything else (e.g. stream_control ticks on the camera topic) is ignored.
VIEW_EVENTS = (RainStatus, LevelStatus, SensorFault, CameraFrame, RiskScore)


def fold(state: ViewState, event: Event, limits: Limits = DEFAULT_LIMITS) -> ViewState:
    """The view after one event. Events of other kinds leave it unchanged; so does a repeat."""
    if not isinstance(event, VIEW_EVENTS):
        return state
    stream_id = stream_of(event.exercise, event.drill_id)
    before = state.streams.get(stream_id) or StreamState(stream_id, exercise=event.exercise)
    after = fold_stream(before, event, limits)
    if after is before:
        return state
    sequence = state.sequence + 1
    streams = {**state.streams, stream_id: dataclasses.replace(after, touched=sequence)}
    while len(streams) > limits.max_streams:
        del streams[min(streams.values(), key=lambda s: s.touched).stream_id]
    return ViewState(streams, sequence)


# --------------------------------------------------------------------------- ingest


class StatusOutcome(str, enum.Enum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"  # a repeat, or an event the view does not fold
    INVALID = "invalid"


class StationView:
    """The current :class:`ViewState`, shared by the consumer thread and the API's request threads."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._state = ViewState()
        self._lock = threading.Lock()

    @property
    def state(self) -> ViewState:
        with self._lock:
            return self._state

    def apply(self, event: Event) -> bool:
        """Folds one event; ``True`` if the view changed."""
        with self._lock:
            before = self._state
            self._state = fold(before, event, self.limits)
            return self._state is not before


def ingest_status(view: StationView, raw: bytes | str | Mapping[str, object] | None) -> StatusOutcome:
    """Parses one record of a status, fault, score or camera topic and folds it into ``view``.

    A record that fails its contract is counted, not dead-lettered: the
    pipeline wrote these topics (or, for cameras, already dead-letters bad
    stills), and the console only shows them.
    """
    if raw is None:
        return StatusOutcome.INVALID
    try:
        event = parse_event(raw)
    except ContractError:
        return StatusOutcome.INVALID
    if isinstance(event, StreamControl):
        return StatusOutcome.UNCHANGED
    return StatusOutcome.APPLIED if view.apply(event) else StatusOutcome.UNCHANGED


__all__ = [
    "AreaState", "DEFAULT_LIMITS", "EXERCISE", "LIVE", "LevelPoint", "Limits", "RainPoint", "ScorePoint",
    "StationState", "StationView", "StatusOutcome", "StreamState", "ViewState", "active_fault", "add_point",
    "area_key", "fold", "fold_area", "fold_camera", "fold_station", "fold_stream", "ingest_status", "stream_of",
]
