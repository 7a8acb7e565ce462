"""OASIS Common Alerting Protocol 1.2 messages.

One CAP ``alert`` per published message, with an ``info`` block in Japanese
(``ja-JP``) and one in English (``en-US``), each with the area's polygon. The
tests validate the output against the official OASIS CAP 1.2 schema.

Mapping (CAP 1.2 §3.2):

- ``identifier`` = ``event_id``; ``sent`` = the message's event time, in JST;
  ``status`` Actual, or Exercise for drill traffic (with a ``note``);
  ``msgType`` Alert, Update or Cancel; ``references`` lists
  ``sender,identifier,sent`` of the message(s) it changes.
- ``category`` Met for floods (CAP: "meteorological, inc. flood"), Geo for landslides.
- Level → ``urgency`` / ``severity`` / ``responseType``: 5 Immediate / Extreme
  / Evacuate; 4 Immediate / Severe / Evacuate, Avoid; 3 Expected / Moderate /
  Prepare, Avoid; 2 Future / Minor / Monitor; a Cancel is Past / Minor / AllClear.
- ``certainty`` Observed when the level was read off a gauge (or set by a duty
  officer), Likely when the flood forecast raised it.
- ``eventCode`` ``JP-KeikaiLevel`` = the level; ``parameter`` carries the alert
  id, level colour and source.
- ``polygon`` is CAP's ``lat,lon`` pairs, first equal to last.

Every text is written through :func:`alert_api.xmltext.xml_safe`: a character
XML 1.0 cannot carry (a control character, an unpaired surrogate) that reached
the store becomes U+FFFD instead of breaking this document and every later one
of the area (officer messages inherit the area's names).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from lxml import etree  # type: ignore[import-untyped]

from alert_api.models import StoredMessage
from alert_api.views import texts_of
from alert_api.xmltext import xml_safe
from suibou.contracts import AlertLevel, Hazard, MsgType

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
MEDIA_TYPE = "application/cap+xml"
JST = dt.timezone(dt.timedelta(hours=9))


def cap_time(value: dt.datetime) -> str:
    """CAP's dateTime form: seconds, explicit offset, no ``Z`` (JST).

    Examples:
        >>> cap_time(dt.datetime(2005, 9, 4, 12, 22, 0, 500, tzinfo=dt.timezone.utc))
        '2005-09-04T21:22:00+09:00'
    """
    return value.astimezone(JST).replace(microsecond=0).isoformat()


@dataclasses.dataclass(frozen=True)
class CapCodes:
    """The CAP enumerations of one message."""

    category: str
    urgency: str
    severity: str
    certainty: str
    responses: tuple[str, ...]


def cap_codes(message: StoredMessage) -> CapCodes:
    """CAP category, urgency, severity, certainty and responses of a message (see the module docstring)."""
    event = message.event
    category = "Geo" if event.hazard is Hazard.LANDSLIDE else "Met"
    if event.msg_type is MsgType.CANCEL:
        return CapCodes(category, "Past", "Minor", "Observed", ("AllClear",))
    level = int(event.level)
    urgency, severity, responses = {
        5: ("Immediate", "Extreme", ("Evacuate",)),
        4: ("Immediate", "Severe", ("Evacuate", "Avoid")),
        3: ("Expected", "Moderate", ("Prepare", "Avoid")),
        2: ("Future", "Minor", ("Monitor",)),
    }.get(level, ("Unknown", "Unknown", ("None",)))
    observed = event.reason.get("observed_level")
    forecast = message.source == "pipeline" and isinstance(observed, int) and observed < level
    return CapCodes(category, urgency, severity, "Likely" if forecast else "Observed", responses)


def cap_polygon(ring: tuple[tuple[float, float], ...]) -> str:
    """CAP polygon text: space-separated ``lat,lon`` pairs.

    Examples:
        >>> cap_polygon(((139.6, 35.7), (139.61, 35.7), (139.61, 35.71), (139.6, 35.7)))
        '35.700000,139.600000 35.700000,139.610000 35.710000,139.610000 35.700000,139.600000'
    """
    return " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in ring)


def cap_alert(message: StoredMessage, *, onset: dt.datetime, sender: str, sender_name: str,
              references_sent: Mapping[str, dt.datetime]) -> bytes:
    """The CAP 1.2 XML document of one message.

    Args:
        message: The published message.
        onset: Onset of its alert (event time of the alert's first message).
        sender: CAP ``sender`` (e.g. ``suibou@river.example.jp``).
        sender_name: CAP ``senderName``.
        references_sent: ``event_time`` of each referenced message, for CAP's
            ``sender,identifier,sent`` triples; unknown references are left out.

    Returns:
        UTF-8 XML with a declaration.
    """
    event = message.event
    texts = texts_of(message)
    codes = cap_codes(message)

    root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})

    def add(parent: etree._Element, name: str, text: str) -> etree._Element:
        element = etree.SubElement(parent, f"{{{CAP_NS}}}{name}")
        element.text = xml_safe(text)  # a stored value XML cannot carry must not break this document
        return element

    add(root, "identifier", event.event_id)
    add(root, "sender", sender)
    add(root, "sent", cap_time(event.event_time))
    add(root, "status", event.cap_status)
    add(root, "msgType", event.msg_type.value)
    add(root, "source", "river bureau duty officer" if message.source == "officer" else "suibou pipeline")
    add(root, "scope", "Public")
    notes = []
    if event.exercise:
        notes.append(f"EXERCISE/訓練: drill {event.drill_id or 'by duty officer'}. これは訓練です。 "
                     "This is an exercise, not a real alert.")
    if message.source == "officer":
        notes.append(f"Duty officer action: {message.action}.")
    if notes:
        add(root, "note", " ".join(notes))
    triples = [f"{sender},{ref},{cap_time(references_sent[ref])}" for ref in event.references if ref in references_sent]
    if triples:
        add(root, "references", " ".join(triples))
    add(root, "incidents", event.alert_id)

    for language, (event_text, headline, description, instruction, area_desc) in (
        ("ja-JP", (texts.event_ja, texts.headline_ja, texts.description_ja, texts.instruction_ja,
                   event.area_name_ja or event.area_name or event.area_id)),
        ("en-US", (texts.event_en, texts.headline_en, texts.description_en, texts.instruction_en,
                   event.area_name or event.area_name_ja or event.area_id)),
    ):
        info = etree.SubElement(root, f"{{{CAP_NS}}}info")
        add(info, "language", language)
        add(info, "category", codes.category)
        add(info, "event", event_text)
        for response in codes.responses:
            add(info, "responseType", response)
        add(info, "urgency", codes.urgency)
        add(info, "severity", codes.severity)
        add(info, "certainty", codes.certainty)
        code = etree.SubElement(info, f"{{{CAP_NS}}}eventCode")
        add(code, "valueName", "JP-KeikaiLevel")
        add(code, "value", str(int(event.level)))
        add(info, "effective", cap_time(event.event_time))
        add(info, "onset", cap_time(onset))
        add(info, "senderName", sender_name)
        add(info, "headline", headline)
        add(info, "description", description)
        add(info, "instruction", instruction)
        for name, value in (("alert_id", event.alert_id), ("level_colour", AlertLevel(event.level).colour),
                            ("hazard", event.hazard.value), ("area_id", event.area_id),
                            ("source", "duty_officer" if message.source == "officer" else "pipeline")):
            parameter = etree.SubElement(info, f"{{{CAP_NS}}}parameter")
            add(parameter, "valueName", name)
            add(parameter, "value", value)
        area = etree.SubElement(info, f"{{{CAP_NS}}}area")
        add(area, "areaDesc", area_desc)
        if event.polygon:
            add(area, "polygon", cap_polygon(event.polygon))
        geocode = etree.SubElement(area, f"{{{CAP_NS}}}geocode")
        add(geocode, "valueName", "suibou-area-id")
        add(geocode, "value", event.area_id)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


__all__ = ["CAP_NS", "JST", "MEDIA_TYPE", "CapCodes", "cap_alert", "cap_codes", "cap_polygon", "cap_time"]
