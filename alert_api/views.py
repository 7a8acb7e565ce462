"""The JSON shape of one published message, shared by the pull feed, the stream and webhooks.

One function builds it so that a partner sees the same message, byte for byte
in its fields, whichever way it arrives.
"""

from __future__ import annotations

from typing import Any

from alert_api.formats.texts import MessageTexts, message_texts
from alert_api.models import StoredMessage
from suibou.contracts import AlertEvent, format_time

#: ``type`` of a webhook or stream event, by CAP msgType.
EVENT_TYPES = {"Alert": "alert.issued", "Update": "alert.updated", "Cancel": "alert.cancelled"}


def texts_of(message: StoredMessage) -> MessageTexts:
    event = message.event
    return message_texts(
        event.hazard, event.level, event.msg_type, event.area_name or event.area_id, event.area_name_ja,
        exercise=event.exercise, officer_action=message.action, previous_level=event.previous_level,
    )


def polygon_geometry(polygon: tuple[tuple[float, float], ...]) -> dict[str, Any] | None:
    """A GeoJSON Polygon (RFC 7946, 6 decimals) of a closed ring, or ``None``."""
    if not polygon:
        return None
    return {"type": "Polygon", "coordinates": [[[round(lon, 6), round(lat, 6)] for lon, lat in polygon]]}


def message_view(message: StoredMessage, *, officer_view: bool = False) -> dict[str, Any]:
    """The public JSON object of one published message.

    Args:
        message: The stored message.
        officer_view: Add the officer's user name (duty officers and admins only).

    Returns:
        A JSON-ready dict (see ``MessagePublic`` in :mod:`alert_api.schemas`).
    """
    event: AlertEvent = message.event
    texts = texts_of(message)
    view: dict[str, Any] = {
        "type": EVENT_TYPES[event.msg_type.value],
        "cursor": str(message.cursor),
        "event_id": event.event_id,
        "alert_id": event.alert_id,
        "sequence": event.sequence,
        "msg_type": event.msg_type.value,
        "status": event.cap_status,
        "exercise": event.exercise,
        "drill_id": event.drill_id,
        "area_id": event.area_id,
        "area_kind": event.area_kind.value,
        "area_name": event.area_name,
        "area_name_ja": event.area_name_ja,
        "hazard": event.hazard.value,
        "level": int(event.level),
        "level_colour": event.level.colour,
        "previous_level": int(event.previous_level),
        "event_time": format_time(event.event_time),
        "headline": texts.headline,
        "headline_ja": texts.headline_ja,
        "headline_en": texts.headline_en,
        "description_ja": texts.description_ja,
        "description_en": texts.description_en,
        "instruction_ja": texts.instruction_ja,
        "instruction_en": texts.instruction_en,
        "references": list(event.references),
        "reason": dict(event.reason),
        "source": "duty_officer" if message.source == "officer" else "pipeline",
        "geometry": polygon_geometry(event.polygon),
    }
    if officer_view:
        view["officer"] = message.officer
        view["action"] = message.action
    return view


__all__ = ["EVENT_TYPES", "message_view", "polygon_geometry", "texts_of"]
