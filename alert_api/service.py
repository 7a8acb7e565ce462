"""What the alert routes do, between the HTTP layer and the store."""

from __future__ import annotations

from alert_api.consumer import ConsumerState, ConsumerStatus
from alert_api.schemas import (
    AlertDetail,
    AlertFilters,
    AlertList,
    AlertMessagePublic,
    AlertPublic,
    ConsumerHealth,
    Health,
)
from alert_api.store import Alert, AlertQuery, AlertStore, StoredMessage


def to_query(filters: AlertFilters) -> AlertQuery:
    return AlertQuery(
        exercise=filters.exercise,
        area_id=filters.area_id,
        hazard=filters.hazard,
        min_level=filters.min_level,
        since=filters.since,
        include_cancelled=filters.include_cancelled,
        limit=filters.limit,
    )


def list_alerts(store: AlertStore, filters: AlertFilters) -> AlertList:
    """Current alerts matching ``filters``, latest change first."""
    alerts = [to_public(alert) for alert in store.list_alerts(to_query(filters))]
    return AlertList(count=len(alerts), data=alerts)


def get_alert(store: AlertStore, alert_id: str) -> AlertDetail | None:
    """One alert with its message history, or ``None`` if the store does not know it."""
    alert = store.get_alert(alert_id)
    if alert is None:
        return None
    return AlertDetail(
        **to_public(alert).model_dump(),
        messages=[to_message_public(message) for message in alert.messages],
    )


def to_public(alert: Alert) -> AlertPublic:
    """The public view of an alert's current state."""
    event = alert.latest.event
    return AlertPublic(
        alert_id=event.alert_id,
        area_id=event.area_id,
        area_kind=event.area_kind,
        hazard=event.hazard,
        level=event.level,
        level_colour=event.level.colour,
        msg_type=event.msg_type,
        status="Exercise" if event.exercise else "Actual",
        exercise=event.exercise,
        drill_id=event.drill_id,
        headline=event.headline,
        event_time=alert.onset,
        updated=event.event_time,
        active=alert.active,
        sequence=event.sequence,
        references=list(event.references),
        reason=dict(event.reason),
    )


def to_message_public(message: StoredMessage) -> AlertMessagePublic:
    event = message.event
    return AlertMessagePublic(
        event_id=event.event_id,
        sequence=event.sequence,
        msg_type=event.msg_type,
        level=event.level,
        level_colour=event.level.colour,
        previous_level=event.previous_level,
        headline=event.headline,
        event_time=event.event_time,
        received_at=message.received_at,
        references=list(event.references),
        reason=dict(event.reason),
    )


def health(store: AlertStore, consumer: ConsumerStatus | None) -> Health:
    """Liveness with the consumer's state and what the store holds."""
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
        ),
        alerts=counts.alerts,
        active_alerts=counts.active,
        messages=counts.messages,
    )
