"""Request and response models of the alert API (its OpenAPI schema).

Families follow one pattern: ``*Base`` holds fields shared by every view of a
resource, ``*Public`` is what one item looks like in a response, ``*List`` wraps
a page of them as ``{"count": n, "data": [...]}``.

Times are UTC in ISO 8601 with an explicit offset, to the second, as on the
Kafka topics.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from alert_api.store import DEFAULT_LIMIT, MAX_LIMIT
from suibou.contracts import AlertLevel, AreaKind, Hazard, MsgType, format_time

#: Identifiers (alert, area, event, drill ids), as the event contracts define them.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"

UtcTime = Annotated[dt.datetime, PlainSerializer(format_time, return_type=str, when_used="json")]
Identifier = Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]
Status = Literal["Actual", "Exercise"]


# --------------------------------------------------------------------------- queries


class AlertFilters(BaseModel):
    """Query parameters of ``GET /v1/alerts``; every filter applies to an alert's latest message."""

    model_config = ConfigDict(extra="forbid")

    exercise: bool | None = Field(
        None, description="true: exercise (drill) alerts only; false: actual alerts only; unset: both."
    )
    area_id: Identifier | None = Field(None, description="Only alerts for this river reach or landslide zone.")
    hazard: Hazard | None = Field(None, description="Only alerts for this hazard.")
    min_level: AlertLevel | None = Field(None, description="Only alerts at this alert level (1-5) or higher.")
    since: AwareDatetime | None = Field(
        None, description="Only alerts changed at or after this time (ISO 8601 with offset)."
    )
    include_cancelled: bool = Field(False, description="Also list alerts whose latest message is a Cancel.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Most alerts to return, newest change first.")


# --------------------------------------------------------------------------- alert messages


class AlertMessageBase(BaseModel):
    """Fields every alert message carries."""

    sequence: int = Field(description="Position of the message in its alert, from 0.")
    msg_type: MsgType = Field(description="CAP message type: Alert, Update or Cancel.")
    level: AlertLevel = Field(description="Alert level (警戒レベル) 1-5 after this message.")
    level_colour: str = Field(description="Risk-map colour of the level: white, yellow, red, purple or black.")
    headline: str
    references: list[str] = Field(description="event_id of the earlier messages this one updates or cancels.")
    reason: dict[str, Any] = Field(description="Why the pipeline decided this level (scores, thresholds).")


class AlertMessagePublic(AlertMessageBase):
    """One message in an alert's history."""

    event_id: str = Field(description="Id of this message; unique across all alerts.")
    previous_level: AlertLevel
    event_time: UtcTime = Field(description="Event time the pipeline decided this message at.")
    received_at: UtcTime = Field(description="When the alert API stored the message.")


# --------------------------------------------------------------------------- alerts


class AlertBase(AlertMessageBase):
    """An alert's identity and current state (from its latest message)."""

    alert_id: str = Field(description="Stable for the life of the alert: raise, updates, cancel.")
    area_id: str
    area_kind: AreaKind
    hazard: Hazard
    status: Status = Field(description="CAP status: Exercise for drill traffic, else Actual.")
    exercise: bool
    drill_id: str | None = None


class AlertPublic(AlertBase):
    """An alert in a list."""

    event_time: UtcTime = Field(description="Onset: event time of the alert's first message.")
    updated: UtcTime = Field(description="Event time of the alert's latest message.")
    active: bool = Field(description="False once the alert is cancelled.")


class AlertDetail(AlertPublic):
    """One alert with every message it has had, in sequence order."""

    messages: list[AlertMessagePublic]


class AlertList(BaseModel):
    """A page of alerts."""

    count: int = Field(description="Number of alerts in data.")
    data: list[AlertPublic]


# --------------------------------------------------------------------------- health


class ConsumerHealth(BaseModel):
    state: str = Field(description="disabled, stopped, connecting, running or retrying.")
    stored: int
    duplicates: int
    dead_letters: int
    last_error: str | None = None
    last_commit_at: UtcTime | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    consumer: ConsumerHealth
    alerts: int = Field(description="Alerts in the store, cancelled included.")
    active_alerts: int
    messages: int
