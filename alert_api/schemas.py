"""Request and response models of the alert API (its OpenAPI schema).

Families follow one pattern: ``*Base`` holds fields shared by every view of a
resource, ``*Public`` is what one item looks like in a response, ``*List`` wraps
a page of them as ``{"count": n, "data": [...]}``.

Times are UTC in ISO 8601 with an explicit offset, to the second, as on the
Kafka topics (CAP and the partner feeds use JST, +09:00).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, StrictFloat

from alert_api.models import DEFAULT_LIMIT, MAX_LIMIT
from alert_api.store import SCOPES
from alert_api.xmltext import XmlText
from suibou.contracts import AlertLevel, AreaKind, Hazard, MsgType, format_time

#: Identifiers (alert, area, event, drill ids), as the event contracts define them.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"
#: ``min_lon,min_lat,max_lon,max_lat``.
BBOX_PATTERN = r"^-?\d+(\.\d+)?,-?\d+(\.\d+)?,-?\d+(\.\d+)?,-?\d+(\.\d+)?$"
#: An opaque position in the message log.
CURSOR_PATTERN = r"^\d{1,18}$"

UtcTime = Annotated[dt.datetime, PlainSerializer(format_time, return_type=str, when_used="json")]
#: Largest integer the stores take (a signed 64-bit column); larger ones are refused, not overflowed.
MAX_INT = 2**63 - 1
#: Earliest and latest instants a time filter may name: datetimes near year 1 or 9999 overflow when
#: converted between offsets (``0001-01-01T00:00:00+01:00`` is in year 0 in UTC).
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def _bounded_time(value: dt.datetime) -> dt.datetime:
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("the time is out of range (1900 to 2200)") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError("the time is out of range (1900 to 2200)")
    return utc


#: An ISO 8601 time with an offset, between 1900 and 2200, as UTC.
BoundedTime = Annotated[AwareDatetime, AfterValidator(_bounded_time)]
Identifier = Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]
Status = Literal["Actual", "Exercise"]
Scope = Literal["alerts:read", "webhooks:receive", "exercises", "metrics:read"]
Source = Literal["pipeline", "duty_officer"]
BBoxText = Annotated[str, Field(pattern=BBOX_PATTERN, max_length=100,
                                description="min_lon,min_lat,max_lon,max_lat (WGS 84)",
                                examples=["139.58,35.67,139.66,35.73"])]
assert set(SCOPES) == {"alerts:read", "webhooks:receive", "exercises", "metrics:read"}


#: A coordinate: a JSON number (an integer or a float; never a boolean or a string).
Coordinate = StrictFloat
#: [longitude, latitude] or [longitude, latitude, altitude].
Position = Annotated[list[Coordinate], Field(min_length=2, max_length=3)]


class GeoJsonPolygon(BaseModel):
    """A GeoJSON Polygon (RFC 7946): one closed ring of [longitude, latitude], at most 500 positions, in the
    service area, not crossing itself."""

    type: Literal["Polygon"]
    coordinates: list[Annotated[list[tuple[Coordinate, Coordinate]], Field(min_length=4, max_length=500)]] = Field(
        min_length=1, max_length=1)


class GeoJsonLineString(BaseModel):
    """A GeoJSON LineString of [longitude, latitude] (a third value, altitude, is ignored)."""

    type: Literal["LineString"]
    coordinates: list[Position] = Field(min_length=2, max_length=10_000)


class LineStringFeature(BaseModel):
    """A GeoJSON Feature whose geometry is a LineString."""

    type: Literal["Feature"]
    geometry: GeoJsonLineString
    properties: dict[str, Any] | None = None


# --------------------------------------------------------------------------- queries


class AlertFilters(BaseModel):
    """Query parameters of ``GET /v1/alerts``; every filter applies to an alert's latest message."""

    model_config = ConfigDict(extra="forbid")

    exercise: bool | None = Field(
        None, description="true: exercise (drill) alerts only; false: actual alerts only; unset: both "
                          "(exercises only for callers allowed to see them)."
    )
    area_id: Identifier | None = Field(None, description="Only alerts for this river reach or landslide zone.")
    hazard: Hazard | None = Field(None, description="Only alerts for this hazard.")
    min_level: AlertLevel | None = Field(None, description="Only alerts at this alert level (1-5) or higher.")
    since: BoundedTime | None = Field(
        None, description="Only alerts changed at or after this time (ISO 8601 with offset)."
    )
    include_cancelled: bool = Field(False, description="Also list alerts whose latest message is a Cancel.")
    bbox: BBoxText | None = Field(None, description="Only alerts whose area meets this box.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Most alerts to return, newest change first.")


class HazardAreaFilters(BaseModel):
    """Query parameters of ``GET /v1/hazard-areas`` (the NWS-style filters)."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = Field(None, description="Actual or Exercise.")
    hazard: Hazard | None = None
    min_level: AlertLevel | None = None
    severity: Literal["Extreme", "Severe", "Moderate", "Minor"] | None = None
    urgency: Literal["Immediate", "Expected", "Future"] | None = None
    certainty: Literal["Observed", "Likely"] | None = None
    point: Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?,-?\d+(\.\d+)?$", max_length=50)] | None = Field(
        None, description="lat,lon: only areas containing this point (as the NWS API takes it).")
    bbox: BBoxText | None = None


# --------------------------------------------------------------------------- alert messages


class AlertMessageBase(BaseModel):
    """Fields every alert message carries."""

    sequence: int = Field(description="Position of the message in its alert, from 0.")
    msg_type: MsgType = Field(description="CAP message type: Alert, Update or Cancel.")
    level: AlertLevel = Field(description="Alert level (警戒レベル) 1-5 after this message.")
    level_colour: str = Field(description="Risk-map colour of the level: white, yellow, red, purple or black.")
    headline: str = Field(description="Japanese and English headline; exercises start with EXERCISE/訓練.")
    references: list[str] = Field(description="event_id of the earlier messages this one updates or cancels.")
    reason: dict[str, Any] = Field(description="Why the level was decided (scores, thresholds, officer note).")
    source: Source = Field(description="pipeline, or duty_officer for a message a duty officer issued.")


class AlertMessagePublic(AlertMessageBase):
    """One message in an alert's history."""

    event_id: str = Field(description="Id of this message; unique across all alerts.")
    previous_level: AlertLevel
    event_time: UtcTime = Field(description="When the message was decided (event time).")
    received_at: UtcTime = Field(description="When the alert API stored the message.")
    cursor: str = Field(description="Position of the message in the message log.")
    officer: str | None = Field(None, description="Officer's user name (officers and admins only).")
    action: str | None = Field(None, description="Officer's action: issue, update, cancel or acknowledge.")


class HeldMessagePublic(BaseModel):
    """A pipeline message held back because a duty officer controls the alert (officers only)."""

    event_id: str
    level: AlertLevel
    msg_type: MsgType
    event_time: UtcTime
    reason: str
    received_at: UtcTime


class MessagePublic(BaseModel):
    """One published message, as the pull feed, the live stream and webhooks carry it."""

    type: Literal["alert.issued", "alert.updated", "alert.cancelled"]
    cursor: str
    event_id: str
    alert_id: str
    sequence: int
    msg_type: MsgType
    status: Status
    exercise: bool
    drill_id: str | None
    area_id: str
    area_kind: AreaKind
    area_name: str
    area_name_ja: str
    hazard: Hazard
    level: int
    level_colour: str
    previous_level: int
    event_time: str
    headline: str
    headline_ja: str
    headline_en: str
    description_ja: str
    description_en: str
    instruction_ja: str
    instruction_en: str
    references: list[str]
    reason: dict[str, Any]
    source: Source
    geometry: dict[str, Any] | None = Field(description="The area as a GeoJSON Polygon.")


class MessagePage(BaseModel):
    """Messages after a cursor, oldest first."""

    count: int
    data: list[MessagePublic]
    next_cursor: str = Field(description="Ask again with after=<next_cursor> for what follows.")


# --------------------------------------------------------------------------- alerts


class AlertBase(AlertMessageBase):
    """An alert's identity and current state (from its latest message)."""

    alert_id: str = Field(description="Stable for the life of the alert: raise, updates, cancel.")
    area_id: str
    area_kind: AreaKind
    area_name: str
    area_name_ja: str
    hazard: Hazard
    status: Status = Field(description="CAP status: Exercise for drill traffic, else Actual.")
    exercise: bool
    drill_id: str | None = None


class AlertPublic(AlertBase):
    """An alert in a list."""

    event_id: str = Field(description="Id of the alert's latest message.")
    event_time: UtcTime = Field(description="Onset: event time of the alert's first message.")
    updated: UtcTime = Field(description="Event time of the alert's latest message.")
    active: bool = Field(description="False once the alert is cancelled.")
    manual: bool = Field(description="A duty officer has taken the alert over.")
    geometry: dict[str, Any] | None = Field(description="The area as a GeoJSON Polygon.")


class AlertDetail(AlertPublic):
    """One alert with every message it has had, in sequence order."""

    messages: list[AlertMessagePublic]
    held: list[HeldMessagePublic] = Field(
        default_factory=list, description="Pipeline messages held back (officers and admins only).")


class AlertList(BaseModel):
    """A page of alerts."""

    count: int = Field(description="Number of alerts in data.")
    data: list[AlertPublic]


# --------------------------------------------------------------------------- route check


class RouteCheckRequest(BaseModel):
    """A route to check, and optionally a road graph for a detour."""

    model_config = ConfigDict(extra="forbid")

    route: GeoJsonLineString | LineStringFeature = Field(description="The route: at most 10,000 positions.")
    buffer_m: StrictFloat = Field(0.0, ge=0, le=1000,
                                  description="Also report areas within this distance of the route.")
    graph: dict[str, Any] | None = Field(
        None,
        description="Your road graph, for a detour around areas at level 4 or above: a GeoJSON "
                    "FeatureCollection of LineStrings (properties name, oneway), or "
                    '{"nodes": [{"id", "lon", "lat"}], "edges": [{"from", "to", "oneway"?, "name"?}]}.',
    )


class RouteHazard(BaseModel):
    alert_id: str
    event_id: str
    status: Status
    exercise: bool
    hazard: Hazard
    level: int
    level_colour: str
    area_id: str
    area_name: str
    area_name_ja: str
    headline_ja: str
    headline_en: str
    updated: str
    avoid: bool = Field(description="Level 4 or above: route around it.")
    entry_m: float = Field(description="Distance along the route to where it first meets the area.")
    inside_m: float = Field(description="Length of the route inside the area.")
    avoid_polygon: dict[str, Any] = Field(description="The area as a GeoJSON Polygon.")


class DetourPublic(BaseModel):
    geometry: dict[str, Any] = Field(description="GeoJSON LineString on your graph.")
    length_m: float
    streets: list[str]
    crosses: list[str] = Field(description="alert_id of areas below level 4 the detour still crosses.")


class RouteCheckResponse(BaseModel):
    crosses: bool = Field(description="The route meets at least one active hazard area.")
    max_level: int = Field(description="Highest level among them (1 if none).")
    avoid: bool = Field(description="The route meets an area at level 4 or above.")
    length_m: float
    hazards: list[RouteHazard] = Field(description="Areas the route meets, in the order it meets them.")
    detour_status: Literal["not_requested", "not_needed", "found", "no_path", "endpoint_in_hazard"]
    detour: DetourPublic | None


# --------------------------------------------------------------------------- partners


class PartnerBase(BaseModel):
    name: XmlText = Field(min_length=1, max_length=128)
    scopes: list[Scope] = Field(description="alerts:read, webhooks:receive, exercises, metrics:read.")
    rate_limit_per_minute: int = Field(600, ge=1, le=1_000_000)


class PartnerCreate(PartnerBase):
    model_config = ConfigDict(extra="forbid")


class PartnerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: XmlText | None = Field(None, min_length=1, max_length=128)
    scopes: list[Scope] | None = None
    rate_limit_per_minute: int | None = Field(None, ge=1, le=1_000_000)
    disabled: bool | None = None


class PartnerPublic(PartnerBase):
    partner_id: str
    webhook_url: str | None
    webhook_bbox: list[float] | None
    disabled: bool
    created_at: UtcTime


class PartnerCreated(BaseModel):
    partner: PartnerPublic
    api_key: str = Field(description="Shown once: only its hash is stored.")


class PartnerList(BaseModel):
    count: int
    data: list[PartnerPublic]


class KeyPublic(BaseModel):
    key_id: str
    created_at: UtcTime
    revoked_at: UtcTime | None


class KeyCreated(BaseModel):
    key_id: str
    api_key: str = Field(description="Shown once: only its hash is stored.")


class KeyList(BaseModel):
    count: int
    data: list[KeyPublic]


class WebhookSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2048, description="https URL that receives POSTed messages.")
    bbox: list[StrictFloat] | None = Field(None, min_length=4, max_length=4,
                                     description="Only alerts whose area meets min_lon,min_lat,max_lon,max_lat.")


class WebhookPublic(BaseModel):
    url: str | None
    bbox: list[float] | None
    secret: str = Field(description="Standard Webhooks signing secret (whsec_…); verify webhook-signature with it.")


class DeliveryPublic(BaseModel):
    event_id: str
    webhook_id: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: UtcTime
    last_error: str | None
    last_status: int | None
    created_at: UtcTime
    delivered_at: UtcTime | None


class DeliveryList(BaseModel):
    count: int
    data: list[DeliveryPublic]


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_ids: list[Identifier] | None = Field(None, max_length=1000,
                                               description="Replay only these; all dead letters when unset.")


class ReplayResult(BaseModel):
    replayed: int


# --------------------------------------------------------------------------- officers

Username = Annotated[str, Field(pattern=r"^[a-z][a-z0-9._-]{1,63}$")]


class OfficerBase(BaseModel):
    username: Username
    display_name: XmlText = Field(min_length=1, max_length=128)
    role: Literal["officer", "observer"] = "officer"


class OfficerCreate(OfficerBase):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=12, max_length=256)


class OfficerAccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool | None = None
    password: str | None = Field(None, min_length=12, max_length=256)
    role: Literal["officer", "observer"] | None = None


class OfficerPublic(OfficerBase):
    disabled: bool
    created_at: UtcTime


class OfficerList(BaseModel):
    count: int
    data: list[OfficerPublic]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class LoginResponse(BaseModel):
    token: str = Field(description="Send as Authorization: Bearer <token>.")
    expires_at: UtcTime
    officer: OfficerPublic


class OfficerNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: XmlText = Field("", max_length=1000, description="Why; goes to the message's reason and the audit log.")
    expected_sequence: int | None = Field(
        None, ge=0, le=MAX_INT, description="Refuse (409) if the alert has moved past this sequence meanwhile.")


class OfficerLevelChange(OfficerNote):
    level: Annotated[int, Field(ge=2, le=5)]


class OfficerIssue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    area_id: Identifier
    hazard: Hazard
    level: Annotated[int, Field(ge=2, le=5)]
    exercise: bool = Field(False, description="Issue as an exercise (CAP status Exercise).")
    drill_id: Identifier | None = Field(None, description="With exercise: the drill the alert belongs to.")
    note: XmlText = Field("", max_length=1000)
    area_kind: AreaKind | None = None
    area_name: XmlText | None = Field(None, max_length=256)
    area_name_ja: XmlText | None = Field(None, max_length=256)
    polygon: GeoJsonPolygon | None = Field(
        None, description="The area; when unset, the polygon of the latest alert for area_id.")


# --------------------------------------------------------------------------- audit


class AuditEntryPublic(BaseModel):
    id: int
    at: UtcTime
    actor_kind: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    remote: str | None


class AuditList(BaseModel):
    count: int
    data: list[AuditEntryPublic]


# --------------------------------------------------------------------------- health


class ConsumerHealth(BaseModel):
    state: str = Field(description="disabled, stopped, connecting, running or retrying.")
    stored: int
    duplicates: int
    dead_letters: int
    last_error: str | None = None
    last_commit_at: UtcTime | None = None
    lag: int | None = Field(None, description="Alert records on the broker not stored yet, once known.")


class JobHealthPublic(BaseModel):
    state: Literal["starting", "running", "behind", "restarting", "stopped", "not_seen"]
    summary: str = Field(description="running, starting, restarting, behind by N s, stopped or not seen.")
    heartbeat_at: str | None = Field(description="Event time of the newest heartbeat.")
    heartbeat_age_s: float | None
    since: str | None = Field(description="Since when the job is in this state.")
    restarts: int | None
    last_restart_reason: str | None
    behind_s: float | None = Field(description="How far the slowest observation feed is behind the wall clock.")
    consumer_lag: int | None = Field(description="Observation records the job has not committed yet.")


class WebhookHealth(BaseModel):
    worker: Literal["running", "stopped"]
    pending: int
    delivered: int
    dead: int


class PublicHealth(BaseModel):
    """The unauthenticated liveness answer: nothing about the store, the brokers or exercises."""

    status: Literal["ok"] = "ok"
    live_job: str = Field(description="The live fusion job: running, starting, restarting, behind by N s, stopped "
                                      "or not seen (no heartbeat for 30 s, or never).")


class FeedHealth(BaseModel):
    state: str = Field(description="disabled, stopped, connecting, running or retrying.")
    applied: int
    unchanged: int
    invalid: int
    last_error: str | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    consumer: ConsumerHealth
    webhooks: WebhookHealth
    live_job: JobHealthPublic
    job_feed: FeedHealth = Field(description="The consumer of the live job's heartbeats.")
    alerts: int = Field(description="Alerts in the store, cancelled and exercises included.")
    active_alerts: int
    messages: int
    held_messages: int


# --------------------------------------------------------------------------- gateways and ingest


GatewayStation = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}\*?$", max_length=129)]


class GatewayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    stations: list[GatewayStation] = Field(
        min_length=1, max_length=1000,
        description="Ids it may report for: gauge station ids, camera ids, drone flight ids; an entry ending in "
                    "'*' is a prefix (at least 3 characters), e.g. 'FL-KANDA-*'.")
    exercise: bool = Field(False, description="An exercise gateway: its readings must be exercises with a drill_id. "
                                              "A live gateway's readings must not be.")


class GatewayPublic(BaseModel):
    gateway_id: str
    name: str
    stations: list[str]
    exercise: bool
    key_id: str
    created_at: UtcTime
    revoked_at: UtcTime | None


class GatewayCreated(BaseModel):
    gateway: GatewayPublic
    api_key: str = Field(description="Shown once (sbg_…): only its hash is stored.")


class GatewayList(BaseModel):
    count: int
    data: list[GatewayPublic]


class IngestItemResult(BaseModel):
    index: int = Field(description="Position of the reading in the batch.")
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = Field(None, description="Why it was rejected.")
    category: str | None = Field(None, description="invalid, schema, station, exercise, image, conflict, in_flight.")


class IngestResponse(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    results: list[IngestItemResult]
