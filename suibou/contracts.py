"""Event contracts: the one place where suibou's message shapes are defined.

Every message on a suibou topic is a JSON object with a ``schema`` field naming
its contract and version (``"rain_reading/1"``). Parsing checks types, units and
physical bounds and raises :class:`ContractError` with a reason a person can act
on; the pipeline turns that into a dead letter instead of dropping the message.

Units are SI-ish and hydrological: millimetres of rain per reading interval,
metres of river stage above the gauge datum, UTC times in ISO 8601 with an
offset. Documented with examples in ``docs/contracts.md``.

Examples:
    >>> reading = parse_event(b'{"schema": "rain_reading/1", "event_id": "r-1",'
    ...     b' "station_id": "RG-SUGINAMI", "event_time": "2005-09-04T21:00:00+09:00",'
    ...     b' "rain_mm": 2.5, "interval_s": 60}')
    >>> reading.rain_mm, reading.event_time.isoformat()
    (2.5, '2005-09-04T12:00:00+00:00')
    >>> parse_event(b'{"schema": "rain_reading/1", "rain_mm": -1}')
    Traceback (most recent call last):
    ...
    suibou.contracts.ContractError: rain_reading/1: missing field(s): event_id, event_time, interval_s, station_id
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Self, TypeVar

#: Largest message accepted on any topic. Images travel by reference (``image_uri``).
MAX_MESSAGE_BYTES = 64 * 1024
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


class ContractError(ValueError):
    """A message does not satisfy its contract; ``str(error)`` is the reason."""


class AlertLevel(enum.IntEnum):
    """Japan's five-step alert levels (警戒レベル), as used for rivers and slopes.

    River side (by water level): 2 = flood caution (氾濫注意情報), 3 = flood
    warning at the evacuation-judgement level (氾濫警戒情報), 4 = flood danger
    (氾濫危険情報), 5 = flooding occurring (氾濫発生情報). Landslide side: the
    landslide warning (土砂災害警戒情報) is level-4 equivalent.
    """

    NONE = 1
    CAUTION = 2
    WARNING = 3
    DANGER = 4
    FLOODING = 5

    @property
    def colour(self) -> str:
        """JMA risk-map colour (キキクル): white, yellow, red, purple, black."""
        return {1: "white", 2: "yellow", 3: "red", 4: "purple", 5: "black"}[int(self)]


class Hazard(str, enum.Enum):
    FLOOD = "flood"
    LANDSLIDE = "landslide"


class AreaKind(str, enum.Enum):
    REACH = "reach"
    ZONE = "zone"


class MsgType(str, enum.Enum):
    """CAP 1.2 message types that suibou emits."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


# --------------------------------------------------------------------------- helpers


def _require_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _ID_PATTERN.match(value):
        raise ContractError(
            f"{name} must be 1-128 characters of letters, digits, '_', '.', ':' or '-', got {value!r}"
        )
    return value


def _require_number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ContractError(f"{name} must be finite, got {value!r}")
    if not low <= number <= high:
        raise ContractError(f"{name}={number:g} is outside the physical range [{low:g}, {high:g}]")
    return number


def parse_time(name: str, value: Any) -> dt.datetime:
    """Parses an ISO 8601 time that carries an offset; returns it in UTC."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ContractError(f"{name} must be ISO 8601, got {value!r}") from None
    else:
        raise ContractError(f"{name} must be an ISO 8601 string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        raise ContractError(f"{name} must carry a UTC offset (e.g. +09:00), got {value!r}")
    parsed = parsed.astimezone(dt.UTC)
    if not _EARLIEST <= parsed <= _LATEST:
        raise ContractError(f"{name}={value!r} is outside 1900-2200")
    return parsed


def local_path(uri: str, field: str = "uri") -> str:
    """The local file a ``file://`` URI (or a plain path) names: how stills and grid
    files are referenced by ``camera_frame/1``, ``drone_observation/1`` and ``grid_notice/1``.

    Raises:
        ValueError: Another scheme, or a file URI naming another host.

    Examples:
        >>> local_path("file:///data/storms/a%20b.nc"), local_path("/data/x.jpg")
        ('/data/storms/a b.nc', '/data/x.jpg')
        >>> local_path("https://example.invalid/x.jpg", "image_uri")
        Traceback (most recent call last):
        ...
        ValueError: unsupported image_uri scheme 'https'
    """
    import urllib.parse
    import urllib.request

    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"unsupported {field} scheme {parsed.scheme!r}")
    if parsed.scheme == "":
        return uri
    if parsed.netloc not in ("", "localhost"):
        raise ValueError(f"{field} names another host: {parsed.netloc!r}")
    return urllib.request.url2pathname(parsed.path)


def format_time(value: dt.datetime) -> str:
    """ISO 8601 in UTC with an explicit offset, to the second."""
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


def _choice(name: str, value: Any, choices: type[enum.Enum]) -> Any:
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(repr(c.value) for c in choices)
        raise ContractError(f"{name} must be one of {allowed}, got {value!r}") from None


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ContractError(f"{name} must be true or false, got {value!r}")
    return value


def _text(name: str, value: Any, max_len: int = 512) -> str:
    if not isinstance(value, str) or len(value) > max_len:
        raise ContractError(f"{name} must be a string of at most {max_len} characters")
    return value


# --------------------------------------------------------------------------- events

E = TypeVar("E", bound="Event")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """Fields every observation carries.

    Attributes:
        event_id: Unique per source message; the pipeline drops repeats of it.
        event_time: When the observation was made (UTC), not when it was sent.
        exercise: True for drill traffic. It flows to every score and alert
            derived from the event, and ends as CAP status ``Exercise``.
        drill_id: Which drill run the event belongs to, when ``exercise``.
    """

    SCHEMA: ClassVar[str] = ""
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    event_id: str
    event_time: dt.datetime
    exercise: bool = False
    drill_id: str | None = None

    @property
    def key(self) -> str:
        """The key the event is partitioned and processed by."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        missing = sorted(set(cls.REQUIRED) - set(data))
        if missing:
            raise ContractError(f"{cls.SCHEMA}: missing field(s): {', '.join(missing)}")
        try:
            return cls(**cls._fields_from(data))
        except ContractError as error:
            raise ContractError(f"{cls.SCHEMA}: {error}") from None

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        exercise = _bool("exercise", data.get("exercise", False))
        drill_id = data.get("drill_id")
        if drill_id is not None:
            drill_id = _require_id("drill_id", drill_id)
        return {
            "event_id": _require_id("event_id", data["event_id"]),
            "event_time": parse_time("event_time", data["event_time"]),
            "exercise": exercise,
            "drill_id": drill_id,
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": self.SCHEMA}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, dt.datetime):
                value = format_time(value)
            elif isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()


@dataclasses.dataclass(frozen=True, kw_only=True)
class RainReading(Event):
    """Rain fallen at a gauge during ``interval_s`` seconds ending at ``event_time``."""

    SCHEMA: ClassVar[str] = "rain_reading/1"
    REQUIRED: ClassVar[tuple[str, ...]] = ("event_id", "station_id", "event_time", "rain_mm", "interval_s")
    # The world record for one minute is about 38 mm; 10 mm/min sustained is 600 mm/h.
    MAX_MM_PER_MINUTE: ClassVar[float] = 40.0

    station_id: str
    rain_mm: float
    interval_s: int

    @property
    def key(self) -> str:
        return self.station_id

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        interval = _require_number("interval_s", data["interval_s"], 1, 3600)
        if interval != int(interval):
            raise ContractError(f"interval_s must be a whole number of seconds, got {interval:g}")
        ceiling = cls.MAX_MM_PER_MINUTE * max(interval / 60.0, 1.0)
        return {
            **super()._fields_from(data),
            "station_id": _require_id("station_id", data["station_id"]),
            "rain_mm": _require_number("rain_mm", data["rain_mm"], 0.0, ceiling),
            "interval_s": int(interval),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class LevelReading(Event):
    """River stage at a water-level gauge, metres above the gauge datum."""

    SCHEMA: ClassVar[str] = "level_reading/1"
    REQUIRED: ClassVar[tuple[str, ...]] = ("event_id", "station_id", "event_time", "level_m")

    station_id: str
    level_m: float

    @property
    def key(self) -> str:
        return self.station_id

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **super()._fields_from(data),
            "station_id": _require_id("station_id", data["station_id"]),
            "level_m": _require_number("level_m", data["level_m"], -50.0, 100.0),
        }


_IMAGE_TYPES = ("image/jpeg", "image/png")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CameraFrame(Event):
    """A river-camera still. The image itself is stored elsewhere and referenced."""

    SCHEMA: ClassVar[str] = "camera_frame/1"
    REQUIRED: ClassVar[tuple[str, ...]] = (
        "event_id", "camera_id", "event_time", "image_uri", "content_type", "width", "height",
    )

    camera_id: str
    image_uri: str
    content_type: str
    width: int
    height: int

    @property
    def key(self) -> str:
        return self.camera_id

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        content_type = data["content_type"]
        if content_type not in _IMAGE_TYPES:
            raise ContractError(f"content_type must be one of {', '.join(_IMAGE_TYPES)}, got {content_type!r}")
        return {
            **super()._fields_from(data),
            "camera_id": _require_id("camera_id", data["camera_id"]),
            "image_uri": _text("image_uri", data["image_uri"], 1024),
            "content_type": content_type,
            "width": int(_require_number("width", data["width"], 1, 8192)),
            "height": int(_require_number("height", data["height"], 1, 8192)),
        }


class DroneFinding(str, enum.Enum):
    NOTHING = "nothing"
    INUNDATION = "inundation"
    SLOPE_FAILURE = "slope_failure"


@dataclasses.dataclass(frozen=True, kw_only=True)
class DroneObservation(Event):
    """What a drone survey saw at one point (WGS 84 longitude/latitude)."""

    SCHEMA: ClassVar[str] = "drone_observation/1"
    REQUIRED: ClassVar[tuple[str, ...]] = ("event_id", "flight_id", "event_time", "lon", "lat", "finding", "confidence")

    flight_id: str
    lon: float
    lat: float
    finding: DroneFinding
    confidence: float
    image_uri: str | None = None

    @property
    def key(self) -> str:
        return self.flight_id

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        image_uri = data.get("image_uri")
        return {
            **super()._fields_from(data),
            "flight_id": _require_id("flight_id", data["flight_id"]),
            "lon": _require_number("lon", data["lon"], -180.0, 180.0),
            "lat": _require_number("lat", data["lat"], -90.0, 90.0),
            "finding": _choice("finding", data["finding"], DroneFinding),
            "confidence": _require_number("confidence", data["confidence"], 0.0, 1.0),
            "image_uri": None if image_uri is None else _text("image_uri", image_uri, 1024),
        }


class GridKind(str, enum.Enum):
    OBSERVED = "observed"
    NOWCAST = "nowcast"


@dataclasses.dataclass(frozen=True, kw_only=True)
class GridNotice(Event):
    """Announces a rainfall grid file (netCDF or GRIB2) that xarray can open.

    ``event_time`` is the issue time; ``valid_time`` the time the field is for
    (equal for observed grids, up to 60 minutes later for the nowcast).
    """

    SCHEMA: ClassVar[str] = "grid_notice/1"
    REQUIRED: ClassVar[tuple[str, ...]] = (
        "event_id", "grid_id", "event_time", "valid_time", "kind", "uri", "variable",
    )

    grid_id: str
    valid_time: dt.datetime
    kind: GridKind
    uri: str
    variable: str

    @property
    def key(self) -> str:
        return self.grid_id

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = super()._fields_from(data)
        valid_time = parse_time("valid_time", data["valid_time"])
        lead = (valid_time - fields["event_time"]).total_seconds()
        if not 0 <= lead <= 6 * 3600:
            raise ContractError(f"valid_time must be 0 to 6 h after event_time, got {lead / 60:g} min")
        return {
            **fields,
            "grid_id": _require_id("grid_id", data["grid_id"]),
            "valid_time": valid_time,
            "kind": _choice("kind", data["kind"], GridKind),
            "uri": _text("uri", data["uri"], 1024),
            "variable": _require_id("variable", data["variable"]),
        }


class ControlKind(str, enum.Enum):
    """Stream control: a clock ``tick`` says no earlier event will follow on this
    partition; ``end`` closes the partition for a bounded run such as a drill."""

    TICK = "tick"
    END = "end"


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamControl(Event):
    """A watermark message a publisher writes to every partition it owns.

    Quiet partitions would otherwise hold the pipeline's event-time clock back;
    a drill replaying at 60x also needs the clock to follow the storm, not the
    wall clock.
    """

    SCHEMA: ClassVar[str] = "stream_control/1"
    REQUIRED: ClassVar[tuple[str, ...]] = ("event_id", "event_time", "control")

    control: ControlKind
    source: str = "unknown"

    @property
    def key(self) -> str:
        return self.source

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **super()._fields_from(data),
            "control": _choice("control", data["control"], ControlKind),
            "source": _require_id("source", data.get("source", "unknown")),
        }


# --------------------------------------------------------------------------- outputs


def _numbers(name: str, value: Any, size: int) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != size:
        raise ContractError(f"{name} must be a list of {size} numbers")
    return tuple(_require_number(name, v, -1e6, 1e6) for v in value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RainStatus(Event):
    """A rain gauge's rolling totals and soil water index at one time, as the pipeline computed them.

    ``tanks`` is the storage of JMA's three tanks (mm); their sum is ``swi_mm``.
    """

    SCHEMA: ClassVar[str] = "rain_status/1"
    REQUIRED: ClassVar[tuple[str, ...]] = (
        "event_id", "event_time", "station_id", "rain_10min_mm", "rain_60min_mm", "rain_3h_mm",
        "rain_24h_mm", "swi_mm", "tanks",
    )

    station_id: str
    rain_10min_mm: float
    rain_60min_mm: float
    rain_3h_mm: float
    rain_24h_mm: float
    swi_mm: float
    tanks: tuple[float, float, float]

    @property
    def key(self) -> str:
        return self.station_id

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = {name: _require_number(name, data[name], 0.0, 5000.0)
                  for name in ("rain_10min_mm", "rain_60min_mm", "rain_3h_mm", "rain_24h_mm", "swi_mm")}
        return {
            **super()._fields_from(data),
            **fields,
            "station_id": _require_id("station_id", data["station_id"]),
            "tanks": _numbers("tanks", data["tanks"], 3),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class LevelStatus(Event):
    """A water-level gauge's reading judged against its thresholds, with its trend.

    ``minutes_to`` gives, for each threshold not yet reached, the minutes until
    the level reaches it at the current rate of rise (absent when not rising).
    """

    SCHEMA: ClassVar[str] = "level_status/1"
    REQUIRED: ClassVar[tuple[str, ...]] = (
        "event_id", "event_time", "station_id", "reach_id", "level_m", "observed_level", "rise_m_per_h",
    )

    station_id: str
    reach_id: str
    level_m: float
    observed_level: AlertLevel
    rise_m_per_h: float
    minutes_to: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.station_id

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        minutes_to = data.get("minutes_to", {})
        if not isinstance(minutes_to, Mapping) or len(minutes_to) > 8:
            raise ContractError("minutes_to must be an object of at most 8 thresholds")
        return {
            **super()._fields_from(data),
            "station_id": _require_id("station_id", data["station_id"]),
            "reach_id": _require_id("reach_id", data["reach_id"]),
            "level_m": _require_number("level_m", data["level_m"], -50.0, 100.0),
            "observed_level": _alert_level(data["observed_level"]),
            "rise_m_per_h": _require_number("rise_m_per_h", data["rise_m_per_h"], -100.0, 100.0),
            "minutes_to": {_require_id("threshold", k): _require_number(k, v, 0.0, 1e6)
                           for k, v in minutes_to.items()},
        }

    def __hash__(self) -> int:
        return hash(self.event_id)


class FaultKind(str, enum.Enum):
    """What is wrong with a sensor. A fault is never read as "no risk"."""

    SILENT = "silent"  # no reading for longer than the gauge's reporting interval allows
    RECOVERED = "recovered"  # readings again after a silence
    SPIKE = "spike"  # a physically impossible jump; the reading was not used
    FROZEN = "frozen"  # the same value for too long while it rains on the catchment


@dataclasses.dataclass(frozen=True, kw_only=True)
class SensorFault(Event):
    """A gauge that cannot be trusted right now, as the pipeline detected it.

    ``since`` is the time of the last trusted reading (for ``silent`` and
    ``frozen``) or of the faulty reading (``spike``).
    """

    SCHEMA: ClassVar[str] = "sensor_fault/1"
    REQUIRED: ClassVar[tuple[str, ...]] = ("event_id", "event_time", "station_id", "kind", "since", "detail")

    station_id: str
    kind: FaultKind
    since: dt.datetime
    detail: str

    @property
    def key(self) -> str:
        return self.station_id

    @property
    def description(self) -> str:
        return f"{self.station_id} {self.kind.value} since {format_time(self.since)}: {self.detail}"

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **super()._fields_from(data),
            "station_id": _require_id("station_id", data["station_id"]),
            "kind": _choice("kind", data["kind"], FaultKind),
            "since": parse_time("since", data["since"]),
            "detail": _text("detail", data["detail"], 512),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class RiskScore(Event):
    """A scored risk for one river reach or landslide zone at one event time.

    Attributes:
        probability: Model probability of the hazard event named by ``target``.
        observed_level: Alert level implied by observations alone (thresholds).
        probabilities: Every target the model predicts -> its probability
            (``probability`` is the one named by ``target``).
        model: ``name/version`` of the scoring model.
        features: Feature name -> value, in the model's input order.
        contributions: The features that drove the score, largest first.
        faults: Sensor faults that affected this score (empty when healthy).
    """

    SCHEMA: ClassVar[str] = "risk_score/1"
    REQUIRED: ClassVar[tuple[str, ...]] = (
        "event_id", "event_time", "area_id", "area_kind", "hazard", "probability",
        "observed_level", "model", "target", "features",
    )

    area_id: str
    area_kind: AreaKind
    hazard: Hazard
    probability: float
    observed_level: AlertLevel
    model: str
    target: str
    features: Mapping[str, float]
    contributions: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    probabilities: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.area_id

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        features = data["features"]
        if not isinstance(features, Mapping) or len(features) > 64:
            raise ContractError("features must be an object of at most 64 numbers")
        return {
            **super()._fields_from(data),
            "area_id": _require_id("area_id", data["area_id"]),
            "area_kind": _choice("area_kind", data["area_kind"], AreaKind),
            "hazard": _choice("hazard", data["hazard"], Hazard),
            "probability": _require_number("probability", data["probability"], 0.0, 1.0),
            "observed_level": _alert_level(data["observed_level"]),
            "model": _text("model", data["model"], 128),
            "target": _text("target", data["target"], 128),
            "features": {
                _require_id("feature", k): _require_number(k, v, -1e9, 1e9) for k, v in features.items()
            },
            "contributions": tuple(_text("contribution", c, 128) for c in data.get("contributions", ())),
            "faults": tuple(_text("fault", f, 256) for f in data.get("faults", ())),
            "probabilities": _probabilities(data.get("probabilities", {})),
        }

    def __hash__(self) -> int:  # features is a dict; identity is the event id
        return hash(self.event_id)


#: Most vertices an alert area may carry; partners' CAP and GeoJSON readers choke on more.
MAX_POLYGON_VERTICES = 500


def _polygon(value: Any) -> tuple[tuple[float, float], ...]:
    """A closed ring of (lon, lat) pairs, as CAP and GeoJSON need it; empty if absent."""
    if not value:
        return ()
    if not isinstance(value, (list, tuple)) or len(value) > MAX_POLYGON_VERTICES:
        raise ContractError(f"polygon must be a list of at most {MAX_POLYGON_VERTICES} [lon, lat] pairs")
    ring = []
    for point in value:
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise ContractError("polygon points must be [lon, lat] pairs")
        ring.append((_require_number("lon", point[0], -180, 180), _require_number("lat", point[1], -90, 90)))
    if len(ring) < 4 or ring[0] != ring[-1]:
        raise ContractError("polygon must be a closed ring of at least 4 points (first == last)")
    return tuple(ring)


def _probabilities(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping) or len(value) > 16:
        raise ContractError("probabilities must be an object of at most 16 target -> probability")
    return {_require_id("target", k): _require_number(k, v, 0.0, 1.0) for k, v in value.items()}


def _alert_level(value: Any) -> AlertLevel:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ContractError(f"level must be an integer 1-5, got {value!r}")
    return AlertLevel(value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class AlertEvent(Event):
    """A change in the alert level of one area, as the pipeline decided it.

    ``alert_id`` is stable for the life of one alert (raise, updates, cancel);
    ``event_id`` names this one message and is what consumers de-duplicate on.
    ``references`` lists the ``event_id`` of earlier messages an Update or
    Cancel changes, as CAP's ``references`` does.
    """

    SCHEMA: ClassVar[str] = "alert_event/1"
    REQUIRED: ClassVar[tuple[str, ...]] = (
        "event_id", "event_time", "alert_id", "sequence", "msg_type", "area_id", "area_kind",
        "hazard", "level", "headline",
    )

    alert_id: str
    sequence: int
    msg_type: MsgType
    area_id: str
    area_kind: AreaKind
    hazard: Hazard
    level: AlertLevel
    previous_level: AlertLevel = AlertLevel.NONE
    headline: str
    references: tuple[str, ...] = ()
    reason: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    area_name: str = ""
    area_name_ja: str = ""
    polygon: tuple[tuple[float, float], ...] = ()

    @property
    def key(self) -> str:
        return self.area_id

    @property
    def cap_status(self) -> str:
        return "Exercise" if self.exercise else "Actual"

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        reason = data.get("reason", {})
        if not isinstance(reason, Mapping):
            raise ContractError("reason must be an object")
        return {
            **super()._fields_from(data),
            "alert_id": _require_id("alert_id", data["alert_id"]),
            "sequence": int(_require_number("sequence", data["sequence"], 0, 1e9)),
            "msg_type": _choice("msg_type", data["msg_type"], MsgType),
            "area_id": _require_id("area_id", data["area_id"]),
            "area_kind": _choice("area_kind", data["area_kind"], AreaKind),
            "hazard": _choice("hazard", data["hazard"], Hazard),
            "level": _alert_level(data["level"]),
            "previous_level": _alert_level(data.get("previous_level", 1)),
            "headline": _text("headline", data["headline"], 512),
            "references": tuple(_require_id("reference", r) for r in data.get("references", ())),
            "reason": dict(reason),
            "area_name": _text("area_name", data.get("area_name", ""), 256),
            "area_name_ja": _text("area_name_ja", data.get("area_name_ja", ""), 256),
            "polygon": _polygon(data.get("polygon", ())),
        }

    def __hash__(self) -> int:
        return hash(self.event_id)


class JobState(str, enum.Enum):
    """What the live fusion job is doing, as its supervisor (``suibou pipeline``) sees it."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobStatus(Event):
    """A heartbeat of the live fusion job, published by its supervisor every few seconds.

    ``event_time`` is the wall-clock time of the heartbeat. ``behind_s`` is how
    far the job's slowest observation topic is behind the wall clock (its
    watermark, or None before the job has reported one); ``consumer_lag`` is how
    many observation records the job has not yet committed. The alert API shows
    the newest heartbeat in ``/healthz`` and the console: a job whose heartbeats
    stop is reported as not seen, never as fine.
    """

    SCHEMA: ClassVar[str] = "job_status/1"
    REQUIRED: ClassVar[tuple[str, ...]] = ("event_id", "event_time", "job", "state", "since")

    job: str
    state: JobState
    since: dt.datetime
    restarts: int = 0
    last_restart_reason: str = ""
    behind_s: float | None = None
    consumer_lag: int | None = None

    @property
    def key(self) -> str:
        return self.job

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        behind = data.get("behind_s")
        lag = data.get("consumer_lag")
        return {
            **super()._fields_from(data),
            "job": _require_id("job", data["job"]),
            "state": _choice("state", data["state"], JobState),
            "since": parse_time("since", data["since"]),
            "restarts": int(_require_number("restarts", data.get("restarts", 0), 0, 1e9)),
            "last_restart_reason": _text("last_restart_reason", data.get("last_restart_reason", ""), 512),
            "behind_s": None if behind is None else _require_number("behind_s", behind, -1e9, 1e10),
            "consumer_lag": None if lag is None else int(_require_number("consumer_lag", lag, 0, 1e15)),
        }


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A message that could not be used, with the reason and where it came from."""

    SCHEMA: ClassVar[str] = "dead_letter/1"

    reason: str
    source_topic: str
    payload: str
    source_partition: int | None = None
    source_offset: int | None = None
    stage: str = "parse"

    def to_json(self) -> bytes:
        return json.dumps(
            {"schema": self.SCHEMA, **dataclasses.asdict(self)}, ensure_ascii=False, separators=(",", ":")
        ).encode()


# --------------------------------------------------------------------------- parsing

EVENT_TYPES: dict[str, type[Event]] = {
    cls.SCHEMA: cls
    for cls in (
        RainReading, LevelReading, CameraFrame, DroneObservation, GridNotice, StreamControl,
        RiskScore, AlertEvent, SensorFault, RainStatus, LevelStatus, JobStatus,
    )
}


def parse_event(raw: bytes | str | Mapping[str, Any]) -> Event:
    """Parses and validates one message of any suibou contract.

    Args:
        raw: The message as bytes or text (JSON), or an already-decoded object.

    Returns:
        The typed, validated event.

    Raises:
        ContractError: The message is oversized, not JSON, of an unknown or
            unsupported schema, or violates its contract. The text says why.
    """
    if isinstance(raw, Mapping):
        data: Any = raw
    else:
        if len(raw) > MAX_MESSAGE_BYTES:
            raise ContractError(f"message of {len(raw)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ContractError(f"not valid JSON: {error}") from None
    if not isinstance(data, Mapping):
        raise ContractError(f"message must be a JSON object, got {type(data).__name__}")
    schema = data.get("schema")
    if not isinstance(schema, str):
        raise ContractError("missing 'schema' field (e.g. \"rain_reading/1\")")
    event_type = EVENT_TYPES.get(schema)
    if event_type is None:
        name = schema.split("/")[0]
        known = sorted(s for s in EVENT_TYPES if s.split("/")[0] == name)
        if known:
            raise ContractError(f"unsupported version {schema!r}; this build reads {', '.join(known)}")
        raise ContractError(f"unknown schema {schema!r}")
    return event_type.from_dict(data)
