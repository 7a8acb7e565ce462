"""GeoJSON (RFC 7946) hazard areas, shaped as the US National Weather Service alerts API serves them.

A FeatureCollection with one Feature per active alert (its latest message):
the geometry is the area's Polygon (``null`` when the area has none), and the
properties use the NWS names (``areaDesc``, ``sent``, ``effective``, ``onset``,
``status``, ``messageType``, ``category``, ``severity``, ``certainty``,
``urgency``, ``event``, ``headline``, ``description``, ``instruction``,
``response``, ``parameters``, ``references`` as ``{identifier, sender, sent}``)
with English texts, plus ``*_ja`` for the Japanese ones and suibou's own
fields (``alert_id``, ``level``, ``level_colour``, ``hazard``, ``area_id``,
``exercise``, ``source``). The feature ``id`` is the message's CAP identifier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from alert_api.formats.cap import cap_codes, cap_time
from alert_api.models import Alert, StoredMessage
from alert_api.views import polygon_geometry, texts_of

MEDIA_TYPE = "application/geo+json"


def alert_feature(message: StoredMessage, *, onset: dt.datetime, sender: str, sender_name: str,
                  references_sent: Mapping[str, dt.datetime]) -> dict[str, Any]:
    """One Feature for a message (an alert's latest message in the collection)."""
    event = message.event
    texts = texts_of(message)
    codes = cap_codes(message)
    source = "duty_officer" if message.source == "officer" else "pipeline"
    return {
        "id": event.event_id,
        "type": "Feature",
        "geometry": polygon_geometry(event.polygon),
        "properties": {
            "id": event.event_id,
            "areaDesc": event.area_name or event.area_name_ja or event.area_id,
            "areaDesc_ja": event.area_name_ja or event.area_name or event.area_id,
            "geocode": {"SUIBOU": [event.area_id]},
            "affectedZones": [],
            "references": [
                {"identifier": ref, "sender": sender, "sent": cap_time(references_sent[ref])}
                for ref in event.references if ref in references_sent
            ],
            "sent": cap_time(event.event_time),
            "effective": cap_time(event.event_time),
            "onset": cap_time(onset),
            "expires": None,
            "ends": None,
            "status": event.cap_status,
            "messageType": event.msg_type.value,
            "category": codes.category,
            "severity": codes.severity,
            "certainty": codes.certainty,
            "urgency": codes.urgency,
            "event": texts.event_en,
            "event_ja": texts.event_ja,
            "sender": sender,
            "senderName": sender_name,
            "headline": texts.headline_en,
            "headline_ja": texts.headline_ja,
            "description": texts.description_en,
            "description_ja": texts.description_ja,
            "instruction": texts.instruction_en,
            "instruction_ja": texts.instruction_ja,
            "response": codes.responses[0],
            "parameters": {
                "JP-KeikaiLevel": [str(int(event.level))],
                "levelColour": [event.level.colour],
            },
            "alert_id": event.alert_id,
            "sequence": event.sequence,
            "level": int(event.level),
            "level_colour": event.level.colour,
            "hazard": event.hazard.value,
            "area_id": event.area_id,
            "area_kind": event.area_kind.value,
            "exercise": event.exercise,
            "drill_id": event.drill_id,
            "source": source,
        },
    }


def feature_collection(alerts: Iterable[Alert], *, sender: str, sender_name: str,
                       references_sent: Mapping[str, dt.datetime], updated: dt.datetime) -> dict[str, Any]:
    """The FeatureCollection of ``alerts`` (each as its latest message)."""
    return {
        "type": "FeatureCollection",
        "title": "suibou hazard areas / 水防 危険区域",
        "updated": cap_time(updated),
        "features": [
            alert_feature(a.latest, onset=a.onset, sender=sender, sender_name=sender_name,
                          references_sent=references_sent)
            for a in alerts
        ],
    }


__all__ = ["MEDIA_TYPE", "alert_feature", "feature_collection"]
