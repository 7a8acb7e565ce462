"""What the routes do, between the HTTP layer and the store: visibility, conversions, formats.

Exercise isolation lives here: every read goes through a caller's
:attr:`~alert_api.deps.Principal.sees_exercises`, so a partner without the
``exercises`` scope never receives an exercise message in any format.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from shapely.geometry import Point, Polygon

from alert_api.config import AlertApiSettings
from alert_api.console import Console, present
from alert_api.console.consumer import FeedStatus
from alert_api.console.view import LIVE
from alert_api.consumer import ConsumerState, ConsumerStatus
from alert_api.deps import Principal
from alert_api.formats import cap, cifs, geojson
from alert_api.formats.texts import message_texts
from alert_api.geo import Budget, HazardIndexCache, RoadGraph, RouteCheck, check_route
from alert_api.jobs import JobHealth
from alert_api.models import MAX_LIMIT, Alert, AlertQuery, BBox, StoredMessage, check_bbox, utc_now
from alert_api.schemas import (
    AlertDetail,
    AlertFilters,
    AlertList,
    AlertMessagePublic,
    AlertPublic,
    ConsumerHealth,
    DetourPublic,
    FeedHealth,
    HazardAreaFilters,
    Health,
    HeldMessagePublic,
    JobHealthPublic,
    RouteCheckRequest,
    RouteCheckResponse,
    RouteHazard,
    WebhookHealth,
)
from alert_api.store import AlertStore
from alert_api.views import polygon_geometry, texts_of
from suibou.contracts import format_time


class NotVisible(PermissionError):
    """The caller asked for exercises without the ``exercises`` scope."""


def parse_bbox(text: str) -> BBox:
    """``min_lon,min_lat,max_lon,max_lat`` as a checked tuple.

    Raises:
        ValueError: Not four numbers forming a valid box.
    """
    values = [float(v) for v in text.split(",")]
    if len(values) != 4:
        raise ValueError("bbox needs four numbers: min_lon,min_lat,max_lon,max_lat")
    return check_bbox((values[0], values[1], values[2], values[3]))


def to_query(filters: AlertFilters, principal: Principal) -> AlertQuery:
    """The store query for ``filters`` as ``principal`` may see it.

    Raises:
        NotVisible: Exercises asked for without the scope.
        ValueError: A bad bbox.
    """
    exercise = filters.exercise
    if not principal.sees_exercises:
        if exercise is True:
            raise NotVisible("exercise alerts need the exercises scope")
        exercise = False
    return AlertQuery(
        exercise=exercise,
        area_id=filters.area_id,
        hazard=filters.hazard,
        min_level=filters.min_level,
        since=filters.since,
        include_cancelled=filters.include_cancelled,
        bbox=parse_bbox(filters.bbox) if filters.bbox else None,
        limit=filters.limit,
    )


def visible(message: StoredMessage, principal: Principal) -> bool:
    return principal.sees_exercises or not message.event.exercise


def list_alerts(store: AlertStore, filters: AlertFilters, principal: Principal) -> AlertList:
    """Current alerts matching ``filters``, latest change first."""
    alerts = [to_public(alert) for alert in store.list_alerts(to_query(filters, principal))]
    return AlertList(count=len(alerts), data=alerts)


def find_alert(store: AlertStore, alert_id: str, principal: Principal, *, with_held: bool = False) -> Alert | None:
    """The alert if it exists and the caller may see it (an invisible exercise is reported as absent)."""
    alert = store.get_alert(alert_id, with_held=with_held)
    if alert is None or not visible(alert.latest, principal):
        return None
    return alert


def find_message(store: AlertStore, event_id: str, principal: Principal) -> StoredMessage | None:
    message = store.get_message(event_id)
    if message is None or not visible(message, principal):
        return None
    return message


def get_alert(store: AlertStore, alert_id: str, principal: Principal) -> AlertDetail | None:
    """One alert with its message history; officers and admins also get held messages and officer names."""
    staff = principal.kind in ("officer", "admin")
    alert = find_alert(store, alert_id, principal, with_held=staff)
    if alert is None:
        return None
    return AlertDetail(
        **to_public(alert).model_dump(),
        messages=[to_message_public(m, officer_view=staff) for m in alert.messages],
        held=[HeldMessagePublic(event_id=h.event.event_id, level=h.event.level, msg_type=h.event.msg_type,
                                event_time=h.event.event_time, reason=h.reason, received_at=h.received_at)
              for h in alert.held],
    )


def to_public(alert: Alert) -> AlertPublic:
    """The public view of an alert's current state."""
    message = alert.latest
    event = message.event
    return AlertPublic(
        alert_id=event.alert_id,
        event_id=event.event_id,
        area_id=event.area_id,
        area_kind=event.area_kind,
        area_name=event.area_name,
        area_name_ja=event.area_name_ja,
        hazard=event.hazard,
        level=event.level,
        level_colour=event.level.colour,
        msg_type=event.msg_type,
        status="Exercise" if event.exercise else "Actual",
        exercise=event.exercise,
        drill_id=event.drill_id,
        headline=texts_of(message).headline,
        event_time=alert.onset,
        updated=event.event_time,
        active=alert.active,
        manual=alert.manual,
        sequence=event.sequence,
        references=list(event.references),
        reason=dict(event.reason),
        source="duty_officer" if message.source == "officer" else "pipeline",
        geometry=polygon_geometry(event.polygon),
    )


def to_message_public(message: StoredMessage, *, officer_view: bool = False) -> AlertMessagePublic:
    event = message.event
    return AlertMessagePublic(
        event_id=event.event_id,
        sequence=event.sequence,
        msg_type=event.msg_type,
        level=event.level,
        level_colour=event.level.colour,
        previous_level=event.previous_level,
        headline=texts_of(message).headline,
        event_time=event.event_time,
        received_at=message.received_at,
        references=list(event.references),
        reason=dict(event.reason),
        source="duty_officer" if message.source == "officer" else "pipeline",
        cursor=str(message.cursor),
        officer=message.officer if officer_view else None,
        action=message.action if officer_view else None,
    )


# --------------------------------------------------------------------------- formats


def cap_document(store: AlertStore, message: StoredMessage, onset: dt.datetime, config: AlertApiSettings) -> bytes:
    return cap.cap_alert(message, onset=onset, sender=config.cap_sender, sender_name=config.cap_sender_name,
                         references_sent=store.sent_times(message.event.references))


def alert_onset(store: AlertStore, alert_id: str) -> dt.datetime | None:
    alert = store.get_alert(alert_id)
    return alert.onset if alert else None


def alert_feature(store: AlertStore, alert: Alert, config: AlertApiSettings) -> dict[str, Any]:
    return geojson.alert_feature(alert.latest, onset=alert.onset, sender=config.cap_sender,
                                 sender_name=config.cap_sender_name,
                                 references_sent=store.sent_times(alert.latest.event.references))


def hazard_areas(store: AlertStore, filters: HazardAreaFilters, principal: Principal,
                 config: AlertApiSettings) -> dict[str, Any]:
    """The GeoJSON FeatureCollection of active hazard areas, filtered as the NWS API filters.

    Raises:
        NotVisible: ``status=Exercise`` without the scope.
        ValueError: A bad bbox or point.
    """
    if filters.status == "Exercise" and not principal.sees_exercises:
        raise NotVisible("exercise alerts need the exercises scope")
    alerts = store.active_alerts(include_exercises=principal.sees_exercises, min_level=filters.min_level)
    bbox = parse_bbox(filters.bbox) if filters.bbox else None
    point = None
    if filters.point:
        lat, lon = (float(v) for v in filters.point.split(","))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError("point must be lat,lon within range")
        point = Point(lon, lat)
    chosen = []
    for alert in alerts:
        event = alert.latest.event
        codes = cap.cap_codes(alert.latest)
        if filters.status is not None and event.cap_status != filters.status:
            continue
        if filters.hazard is not None and event.hazard is not filters.hazard:
            continue
        if filters.severity is not None and codes.severity != filters.severity:
            continue
        if filters.urgency is not None and codes.urgency != filters.urgency:
            continue
        if filters.certainty is not None and codes.certainty != filters.certainty:
            continue
        if bbox is not None or point is not None:
            if not event.polygon:
                continue
            area = Polygon(event.polygon)
            if bbox is not None and not area.intersects(Polygon.from_bounds(*bbox)):
                continue
            if point is not None and not area.covers(point):
                continue
        chosen.append(alert)
    references = store.sent_times(ref for a in chosen for ref in a.latest.event.references)
    updated = max((a.latest.event.event_time for a in chosen), default=utc_now())
    return geojson.feature_collection(chosen, sender=config.cap_sender, sender_name=config.cap_sender_name,
                                      references_sent=references, updated=updated)


def closures(store: AlertStore, roads: cifs.Roads, principal: Principal, now: dt.datetime) -> dict[str, Any]:
    """The Waze CIFS feed for the roads that cross active areas the caller may see."""
    return cifs.feed(store.active_alerts(include_exercises=principal.sees_exercises), roads, now)


# --------------------------------------------------------------------------- route check


def route_budget(config: AlertApiSettings) -> Budget:
    """A fresh budget for one route check, from the settings (the deadline starts now)."""
    return Budget(deadline_s=config.route_check_deadline_s, max_work=config.route_check_max_work,
                  max_hits=config.route_check_max_hits, max_graph_edges=config.route_check_max_graph_edges,
                  max_graph_nodes=config.route_check_max_graph_nodes, service_area=config.service_area)


def route_check(index: HazardIndexCache, request: RouteCheckRequest, principal: Principal,
                budget: Budget | None = None) -> RouteCheckResponse:
    """Checks a route against the hazard areas the caller may see, within ``budget``.

    Raises:
        alert_api.geo.GeometryError: Unusable route or graph, or over the budget's bounds.
        alert_api.geo.BudgetExceeded: Past the deadline, or cancelled.
    """
    budget = budget or Budget()
    hazards = index.get(principal.sees_exercises)
    # Building the shared index after a publication is not this check's own work: its deadline starts now.
    budget.started = time.monotonic()
    route = request.route.geometry if hasattr(request.route, "geometry") else request.route
    coordinates = [position[:3] for position in route.coordinates]
    graph = None
    if request.graph is not None:
        graph = (RoadGraph.from_geojson(request.graph, budget) if request.graph.get("type") == "FeatureCollection"
                 else RoadGraph.from_nodes_edges(request.graph, budget))
    result = check_route(hazards, coordinates, buffer_m=request.buffer_m, graph=graph, budget=budget)
    return route_check_response(result)


def route_check_response(result: RouteCheck) -> RouteCheckResponse:
    hazards = []
    for hit in result.hits:
        message = hit.alert.latest
        event = message.event
        texts = message_texts(event.hazard, event.level, event.msg_type, event.area_name or event.area_id,
                              event.area_name_ja, exercise=event.exercise)
        geometry = polygon_geometry(event.polygon)
        assert geometry is not None
        hazards.append(RouteHazard(
            alert_id=event.alert_id, event_id=event.event_id, status="Exercise" if event.exercise else "Actual",
            exercise=event.exercise, hazard=event.hazard, level=int(event.level), level_colour=event.level.colour,
            area_id=event.area_id, area_name=event.area_name, area_name_ja=event.area_name_ja,
            headline_ja=texts.headline_ja, headline_en=texts.headline_en, updated=format_time(event.event_time),
            avoid=int(event.level) >= 4, entry_m=round(hit.entry_m, 1), inside_m=round(hit.inside_m, 1),
            avoid_polygon=geometry,
        ))
    detour = None
    if result.detour is not None:
        detour = DetourPublic(
            geometry={"type": "LineString", "coordinates": [list(c) for c in result.detour.coordinates]},
            length_m=round(result.detour.length_m, 1), streets=result.detour.streets,
            crosses=[a.alert_id for a in result.detour.crosses],
        )
    return RouteCheckResponse(
        crosses=bool(hazards), max_level=max((h.level for h in hazards), default=1),
        avoid=any(h.avoid for h in hazards), length_m=round(result.length_m, 1), hazards=hazards,
        detour_status=result.detour_status,  # type: ignore[arg-type]
        detour=detour,
    )


# --------------------------------------------------------------------------- console


#: Cancelled alerts the console lists besides the active ones (the latest to change).
CONSOLE_CANCELLED = 50


def stream_alerts(store: AlertStore, stream_id: str) -> list[Alert]:
    """A console stream's active alerts and its latest cancelled ones, latest change first
    (see ``present.alert_in_stream``)."""
    query = AlertQuery(exercise=stream_id != LIVE, include_cancelled=True, limit=MAX_LIMIT)
    alerts = [a for a in store.list_alerts(query)
              if present.alert_in_stream(a.latest.event.exercise, a.latest.event.drill_id, stream_id)]
    shown_cancelled = {a.alert_id for a in [a for a in alerts if not a.active][:CONSOLE_CANCELLED]}
    return [a for a in alerts if a.active or a.alert_id in shown_cancelled]


def console_state(store: AlertStore, console: Console, stream: str | None) -> dict[str, Any]:
    """The console's picture of a stream (the most recently updated one when ``stream`` is unset)."""
    state = console.view.state
    stream_id = present.choose_stream(state, stream)
    alerts = stream_alerts(store, stream_id)
    views = [to_public(a).model_dump(mode="json") for a in alerts]
    return present.state_document(console.stations, state, stream_id, alerts, views, console.feed(),
                                  console.view.limits)


def console_job(job: JobHealth) -> dict[str, Any]:
    """The live job for the console: its state without the heartbeat's age (which would change every answer's
    ETag); the summary says when it is not seen."""
    document = job.to_json()
    return {key: document[key] for key in ("state", "summary", "heartbeat_at", "restarts", "last_restart_reason")}


# --------------------------------------------------------------------------- health


def health(store: AlertStore, consumer: ConsumerStatus | None, outbox_counts: dict[str, int],
           worker_running: bool, job: JobHealth, job_feed: FeedStatus) -> Health:
    """The detailed health: the consumers' states, the webhook outbox, the live job and what the store holds."""
    status = consumer or ConsumerStatus(ConsumerState.DISABLED)
    counts = store.counts()
    return Health(
        consumer=ConsumerHealth(
            state=status.state.value,
            stored=status.stored,
            duplicates=status.duplicates,
            dead_letters=status.dead_letters,
            last_error=status.last_error,
            last_commit_at=status.last_commit_at,
            lag=status.lag,
        ),
        webhooks=WebhookHealth(worker="running" if worker_running else "stopped", **outbox_counts),
        live_job=JobHealthPublic(**job.to_json()),
        job_feed=FeedHealth(**job_feed.to_json()),
        alerts=counts.alerts,
        active_alerts=counts.active,
        messages=counts.messages,
        held_messages=counts.held,
    )


def json_bytes(document: Any) -> bytes:
    # errors="replace": an unpaired surrogate that reached the store must not make the whole answer fail
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode(errors="replace")

