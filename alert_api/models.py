"""Values the alert store hands out: messages, alerts, queries, counts.

An alert is the sequence of published messages that share an ``alert_id``
(Alert, then Updates, perhaps a Cancel). Its current state is its latest
message; it is active while that message is not a Cancel.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable

from suibou.contracts import AlertEvent, AlertLevel, Hazard, MsgType

#: Largest page of alerts or messages one query returns.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

Clock = Callable[[], dt.datetime]
BBox = tuple[float, float, float, float]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def polygon_bbox(polygon: tuple[tuple[float, float], ...]) -> BBox | None:
    """``(min_lon, min_lat, max_lon, max_lat)`` of a ring, ``None`` for no ring."""
    if not polygon:
        return None
    lons = [p[0] for p in polygon]
    lats = [p[1] for p in polygon]
    return min(lons), min(lats), max(lons), max(lats)


def check_bbox(bbox: BBox) -> BBox:
    """Validates a WGS 84 bounding box.

    Raises:
        ValueError: Not four finite numbers in range with min <= max.
    """
    min_lon, min_lat, max_lon, max_lat = bbox
    if not all(math.isfinite(v) for v in bbox):
        raise ValueError("bbox values must be finite")
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise ValueError("bbox must be min_lon,min_lat,max_lon,max_lat within -180..180 and -90..90")
    return bbox


def bboxes_intersect(a: BBox, b: BBox) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@dataclasses.dataclass(frozen=True)
class StoredMessage:
    """One published alert message.

    Attributes:
        event: The message as published (for a pipeline message of an alert a
            duty officer has touched, with the alert's sequence and references).
        received_at: When this API stored it (UTC).
        cursor: Its position in publication order; the pull feed's and the
            stream's cursor.
        source: ``pipeline`` or ``officer``.
        action: For an officer's message: issue, update, cancel or acknowledge.
        officer: User name of the officer (shown to officers and admins only).
    """

    event: AlertEvent
    received_at: dt.datetime
    cursor: int = 0
    source: str = "pipeline"
    action: str | None = None
    officer: str | None = None


@dataclasses.dataclass(frozen=True)
class HeldMessage:
    """A pipeline message recorded but not published (see :mod:`alert_api.lifecycle`)."""

    event: AlertEvent
    alert_id: str
    reason: str
    received_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Alert:
    """The current state of one alert.

    Attributes:
        latest: The alert's latest message (highest ``sequence``).
        onset: ``event_time`` of the alert's first message.
        messages: The full history ordered by ``sequence``; filled only by
            :meth:`~alert_api.store.AlertStore.get_alert`, empty in lists.
        manual: A duty officer has taken the alert over.
        held: Pipeline messages held back from it (with its history only).
    """

    latest: StoredMessage
    onset: dt.datetime
    messages: tuple[StoredMessage, ...] = ()
    manual: bool = False
    held: tuple[HeldMessage, ...] = ()

    @property
    def alert_id(self) -> str:
        return self.latest.event.alert_id

    @property
    def active(self) -> bool:
        return self.latest.event.msg_type is not MsgType.CANCEL


@dataclasses.dataclass(frozen=True)
class AlertQuery:
    """Which current alerts to list. Every filter applies to the latest message.

    Attributes:
        exercise: ``True`` for exercise alerts only, ``False`` for actual alerts
            only, ``None`` for both.
        area_id: Only alerts for this river reach or landslide zone.
        hazard: Only alerts for this hazard.
        min_level: Only alerts whose current level is at least this.
        since: Only alerts whose latest message's ``event_time`` is at or after
            this (UTC-aware), i.e. alerts that changed since then.
        include_cancelled: Also list alerts whose latest message is a Cancel.
        bbox: Only alerts whose area's bounding box meets this one.
        limit: Most alerts to return, 1 to :data:`MAX_LIMIT`; newest first.

    Raises:
        ValueError: ``limit`` is out of range, ``since`` has no UTC offset or
            ``bbox`` is not a valid box.
    """

    exercise: bool | None = None
    area_id: str | None = None
    hazard: Hazard | None = None
    min_level: AlertLevel | None = None
    since: dt.datetime | None = None
    include_cancelled: bool = False
    bbox: BBox | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1-{MAX_LIMIT}, got {self.limit}")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("since must carry a UTC offset")
        if self.bbox is not None:
            check_bbox(self.bbox)


@dataclasses.dataclass(frozen=True)
class StoreCounts:
    """How much the store holds: distinct alerts, active ones, published and held messages."""

    alerts: int
    active: int
    messages: int
    held: int = 0


class LifecycleError(ValueError):
    """An officer action does not fit the alert's state; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


__all__ = [
    "Alert", "AlertQuery", "BBox", "Clock", "DEFAULT_LIMIT", "HeldMessage", "LifecycleError", "MAX_LIMIT",
    "StoreCounts", "StoredMessage", "bboxes_intersect", "check_bbox", "polygon_bbox", "utc_now",
]
