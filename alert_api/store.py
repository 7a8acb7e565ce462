"""The alert store: every published alert message, each alert's state, and the webhook outbox.

Pipeline messages come in through :meth:`AlertStore.add`; duty officers' actions
through :meth:`AlertStore.officer_action` and :meth:`AlertStore.officer_issue`.
Both go through one publication step that, in a single transaction, appends the
message to the log (next ``cursor``), updates the alert's state and writes one
outbox row for every partner whose webhook subscription should receive it. What
a pipeline message becomes once an officer has acted is decided by
:func:`alert_api.lifecycle.route_pipeline_message`.

Storing is idempotent on ``event_id``: the alert consumer reads Kafka at least
once, so the same message may arrive again after a restart or a rebalance, and
storing it again changes nothing.

:class:`SqlAlertStore` keeps it all in SQLite (default) or PostgreSQL;
:class:`InMemoryAlertStore` is the same on an in-memory SQLite database, for
tests and tools.

Examples:
    >>> import datetime as dt
    >>> from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType
    >>> store = InMemoryAlertStore()
    >>> event = AlertEvent(
    ...     event_id="a-1.0", event_time=dt.datetime(2005, 9, 4, 12, tzinfo=dt.timezone.utc),
    ...     alert_id="a-1", sequence=0, msg_type=MsgType.ALERT, area_id="R-ZENPUKUJI",
    ...     area_kind=AreaKind.REACH, hazard=Hazard.FLOOD, level=AlertLevel.DANGER,
    ...     headline="Flood danger on the Zenpukuji")
    >>> store.add(event), store.add(event)
    (True, False)
    >>> [alert.alert_id for alert in store.list_alerts(AlertQuery(min_level=AlertLevel.WARNING))]
    ['a-1']
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from alert_api.db import Database, alert_messages, alerts, held_messages, partners, webhook_outbox
from alert_api.formats.texts import message_texts
from alert_api.lifecycle import AlertState, Hold, derive_id, route_pipeline_message
from alert_api.models import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Alert,
    AlertQuery,
    BBox,
    Clock,
    HeldMessage,
    LifecycleError,
    StoreCounts,
    StoredMessage,
    bboxes_intersect,
    polygon_bbox,
    utc_now,
)
from alert_api.views import EVENT_TYPES, message_view
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType, format_time

log = logging.getLogger(__name__)

#: Scopes a partner key can carry.
SCOPE_READ = "alerts:read"
SCOPE_WEBHOOKS = "webhooks:receive"
SCOPE_EXERCISES = "exercises"
SCOPE_METRICS = "metrics:read"
SCOPES = (SCOPE_READ, SCOPE_WEBHOOKS, SCOPE_EXERCISES, SCOPE_METRICS)

#: Officer actions on an existing alert.
OFFICER_ACTIONS = ("acknowledge", "update", "cancel")

__all__ = [
    "DEFAULT_LIMIT", "MAX_LIMIT", "OFFICER_ACTIONS", "SCOPES", "SCOPE_EXERCISES", "SCOPE_METRICS", "SCOPE_READ",
    "SCOPE_WEBHOOKS",
    "Alert", "AlertQuery", "AlertStore", "HeldMessage", "InMemoryAlertStore", "LifecycleError", "SqlAlertStore",
    "StoreCounts", "StoredMessage", "create_store", "legacy_row_to_event", "utc_now",
]


# --------------------------------------------------------------------------- interface


class AlertStore(abc.ABC):
    """Where the alert API keeps alert messages. Implementations are thread-safe."""

    @abc.abstractmethod
    def add(self, event: AlertEvent, received_at: dt.datetime | None = None) -> bool:
        """Takes one pipeline message, unless a message with its ``event_id`` exists.

        The message is published, or held if a duty officer controls its alert
        (:mod:`alert_api.lifecycle`).

        Args:
            event: The message as the pipeline sent it.
            received_at: When it was received; defaults to the store's clock.

        Returns:
            ``True`` if taken, ``False`` if it was a duplicate (nothing changed).
        """

    @abc.abstractmethod
    def officer_action(self, alert_id: str, action: str, officer: str, *, level: AlertLevel | None = None,
                       note: str = "", expected_sequence: int | None = None) -> StoredMessage:
        """Publishes a duty officer's acknowledge, update or cancel of an active alert.

        Raises:
            LifecycleError: Unknown alert (404), cancelled alert or stale
                ``expected_sequence`` (409), or a level that does not fit (422).
        """

    @abc.abstractmethod
    def officer_issue(self, *, officer: str, area_id: str, hazard: Hazard, level: AlertLevel,
                      exercise: bool = False, note: str = "", area_kind: AreaKind | None = None,
                      area_name: str | None = None, area_name_ja: str | None = None,
                      polygon: tuple[tuple[float, float], ...] | None = None,
                      drill_id: str | None = None) -> StoredMessage:
        """Publishes a new alert issued by hand (an exercise may name the drill it belongs to).

        Raises:
            LifecycleError: No polygon given and none known for the area (422).
        """

    @abc.abstractmethod
    def list_alerts(self, query: AlertQuery) -> list[Alert]:
        """Current alerts that match ``query``, latest change first."""

    @abc.abstractmethod
    def active_alerts(self, *, include_exercises: bool, min_level: AlertLevel | None = None) -> list[Alert]:
        """Every active alert (no page limit), for the hazard-area index and the feeds."""

    @abc.abstractmethod
    def get_alert(self, alert_id: str, *, with_held: bool = False) -> Alert | None:
        """One alert with its full message history, or ``None`` if unknown."""

    @abc.abstractmethod
    def get_message(self, event_id: str) -> StoredMessage | None:
        """One published message, or ``None``."""

    @abc.abstractmethod
    def messages_after(self, cursor: int, *, include_exercises: bool, bbox: BBox | None = None,
                       limit: int = DEFAULT_LIMIT) -> tuple[list[StoredMessage], int]:
        """Published messages after ``cursor``, oldest first, and the cursor to ask with next."""

    @abc.abstractmethod
    def latest_cursor(self) -> int:
        """Cursor of the latest published message (0 when there is none)."""

    @abc.abstractmethod
    def sent_times(self, event_ids: Iterable[str]) -> dict[str, dt.datetime]:
        """``event_time`` of each known published message, for CAP ``references``."""

    @abc.abstractmethod
    def counts(self) -> StoreCounts:
        """Number of alerts, active alerts and messages held."""

    def subscribe(self, listener: Callable[[], None]) -> None:  # noqa: B027 - optional hook
        """Calls ``listener`` after each publication (e.g. to wake the webhook worker)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases connections; the store is unusable afterwards."""


# --------------------------------------------------------------------------- SQL


def _polygon_json(polygon: Sequence[Sequence[float]]) -> str:
    return json.dumps([[float(lon), float(lat)] for lon, lat in polygon])


def _area_values(event: AlertEvent) -> dict[str, Any]:
    bbox = polygon_bbox(event.polygon)
    return {
        "area_id": event.area_id,
        "area_kind": event.area_kind.value,
        "hazard": event.hazard.value,
        "area_name": event.area_name,
        "area_name_ja": event.area_name_ja,
        "polygon": _polygon_json(event.polygon),
        "min_lon": bbox[0] if bbox else None,
        "min_lat": bbox[1] if bbox else None,
        "max_lon": bbox[2] if bbox else None,
        "max_lat": bbox[3] if bbox else None,
    }


def _event_from_row(row: Mapping[Any, Any]) -> AlertEvent:
    return AlertEvent(
        event_id=row["event_id"],
        event_time=row["event_time"],
        exercise=bool(row["exercise"]),
        drill_id=row["drill_id"],
        alert_id=row["alert_id"],
        sequence=int(row["sequence"]),
        msg_type=MsgType(row["msg_type"]),
        area_id=row["area_id"],
        area_kind=AreaKind(row["area_kind"]),
        hazard=Hazard(row["hazard"]),
        level=AlertLevel(row["level"]),
        previous_level=AlertLevel(row["previous_level"]),
        headline=row["headline"],
        references=tuple(json.loads(row["references"])),
        reason=json.loads(row["reason"]),
        area_name=row["area_name"],
        area_name_ja=row["area_name_ja"],
        polygon=tuple((float(lon), float(lat)) for lon, lat in json.loads(row["polygon"])),
    )


def _message_from_row(row: Mapping[Any, Any]) -> StoredMessage:
    return StoredMessage(
        event=_event_from_row(row), received_at=row["received_at"], cursor=int(row["cursor"]),
        source=row["source"], action=row["action"], officer=row["officer"],
    )


def legacy_row_to_event(row: Mapping[str, Any]) -> AlertEvent:
    """An ``alert_messages`` row of the first schema as an :class:`AlertEvent` (for the migration).

    That schema stored times as text and had no area names or polygon.
    """
    return _event_from_row({**row, "event_time": _as_time(row["event_time"]),
                            "area_name": "", "area_name_ja": "", "polygon": "[]"})


def _as_time(value: Any) -> dt.datetime:
    """A naive-UTC timestamp as read through raw SQL (text on SQLite), made UTC-aware."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise ValueError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _state(row: Mapping[Any, Any]) -> AlertState:
    return AlertState(
        alert_id=row["alert_id"], source_alert_id=row["source_alert_id"], manual=bool(row["manual"]),
        rebased=bool(row["rebased"]), generation=int(row["generation"]), sequence=int(row["sequence"]),
        last_event_id=row["last_event_id"], level=AlertLevel(row["level"]), active=bool(row["active"]),
        pipeline_sequence=int(row["pipeline_sequence"]),
    )


def webhook_payload(message: StoredMessage) -> str:
    """The body of the webhook that carries ``message`` (Standard Webhooks' type/timestamp/data shape)."""
    body = {
        "type": EVENT_TYPES[message.event.msg_type.value],
        "timestamp": format_time(message.received_at),
        "data": message_view(message),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class SqlAlertStore(AlertStore):
    """The alert store in a SQL database, through SQLAlchemy Core.

    Args:
        url: SQLAlchemy database URL, e.g. ``sqlite:///.suibou/alerts.db`` or
            ``postgresql+psycopg://user@host/suibou``.
        clock: Source of ``received_at`` and of officer messages' times.
        database: An open :class:`~alert_api.db.Database` to use instead of ``url``.

    Raises:
        ValueError: The database is neither SQLite nor PostgreSQL.
    """

    def __init__(self, url: str | None = None, clock: Clock = utc_now, *, database: Database | None = None) -> None:
        if database is None:
            if url is None:
                raise ValueError("give a database URL or a Database")
            database = Database(url)
        self.db = database
        self._clock = clock
        self._listeners: list[Callable[[], None]] = []
        legacy, database.legacy_rows = database.legacy_rows, []
        for row in legacy:
            self.add(legacy_row_to_event(row), received_at=_as_time(row["received_at"]))

    @property
    def engine(self) -> Engine:
        return self.db.engine

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:  # a listener must not undo a committed publication
                log.exception("publication listener failed")

    # ----------------------------------------------------------------------- writes

    def add(self, event: AlertEvent, received_at: dt.datetime | None = None) -> bool:
        received = received_at or self._clock()
        with self.db.publishing() as connection:
            if self._known(connection, event.event_id):
                return False
            row = connection.execute(
                sa.select(alerts).where(alerts.c.source_alert_id == event.alert_id, alerts.c.bound.is_(True))
            ).mappings().first()
            decision = route_pipeline_message(event, _state(row) if row else None)
            if isinstance(decision, Hold):
                connection.execute(sa.insert(held_messages).values(
                    event_id=event.event_id, alert_id=decision.alert_id, source_alert_id=event.alert_id,
                    reason=decision.reason, payload=event.to_json().decode(), received_at=received,
                ))
                log.info("held pipeline message %s: %s", event.event_id, decision.reason)
                return True
            if decision.new_alert and row is not None:
                connection.execute(alerts.update().where(alerts.c.alert_id == row["alert_id"]).values(bound=False))
            self._publish(
                connection, decision.event, received, source="pipeline", source_alert_id=event.alert_id,
                source_sequence=event.sequence, manual=decision.manual, rebased=decision.rebased,
                generation=decision.generation,
            )
        self._notify()
        return True

    def officer_action(self, alert_id: str, action: str, officer: str, *, level: AlertLevel | None = None,
                       note: str = "", expected_sequence: int | None = None) -> StoredMessage:
        if action not in OFFICER_ACTIONS:
            raise LifecycleError(f"action must be one of {', '.join(OFFICER_ACTIONS)}", 422)
        now = self._clock()
        with self.db.publishing() as connection:
            row = connection.execute(sa.select(alerts).where(alerts.c.alert_id == alert_id)).mappings().first()
            if row is None:
                raise LifecycleError(f"no alert {alert_id!r}", 404)
            if not row["active"]:
                raise LifecycleError(f"alert {alert_id!r} is cancelled; issue a new one instead")
            if expected_sequence is not None and expected_sequence != row["sequence"]:
                raise LifecycleError(
                    f"alert {alert_id!r} is at sequence {row['sequence']}, not {expected_sequence}: "
                    "someone changed it meanwhile; reload and decide again")
            latest = self._message(connection, row["last_event_id"])
            current = AlertLevel(row["level"])
            if action == "acknowledge":
                new_level, msg_type, manual = current, MsgType.UPDATE, bool(row["manual"])
            elif action == "update":
                if level is None or level <= AlertLevel.NONE:
                    raise LifecycleError("an update needs a level of 2-5; cancel to end the alert", 422)
                new_level, msg_type, manual = level, MsgType.UPDATE, True
            else:
                new_level, msg_type, manual = AlertLevel.NONE, MsgType.CANCEL, True
            sequence = int(row["sequence"]) + 1
            event = self._officer_event(
                latest.event, alert_id=alert_id, event_id=derive_id(alert_id, f":{sequence}:officer"),
                sequence=sequence, msg_type=msg_type, level=new_level, previous_level=current,
                references=(row["last_event_id"],), action=action, note=note, now=now,
            )
            message = self._publish(
                connection, event, now, source="officer", action=action, officer=officer,
                manual=manual, rebased=True, generation=int(row["generation"]),
            )
        self._notify()
        return message

    def officer_issue(self, *, officer: str, area_id: str, hazard: Hazard, level: AlertLevel,
                      exercise: bool = False, note: str = "", area_kind: AreaKind | None = None,
                      area_name: str | None = None, area_name_ja: str | None = None,
                      polygon: tuple[tuple[float, float], ...] | None = None,
                      drill_id: str | None = None) -> StoredMessage:
        if level <= AlertLevel.NONE:
            raise LifecycleError("an alert needs a level of 2-5", 422)
        now = self._clock()
        with self.db.publishing() as connection:
            known = connection.execute(
                sa.select(alert_messages).where(alert_messages.c.area_id == area_id)
                .order_by(alert_messages.c.cursor.desc()).limit(1)
            ).mappings().first()
            template = _event_from_row(known) if known else None
            ring = polygon or (template.polygon if template else ())
            if not ring:
                raise LifecycleError(f"no polygon given and none known for area {area_id!r}", 422)
            stamp = now.strftime("%Y%m%dT%H%M%SZ")
            alert_id = derive_id(f"duty:{area_id}:{hazard.value}:{stamp}", f"-{secrets.token_hex(3)}")
            base = AlertEvent(
                event_id=alert_id, event_time=now, exercise=exercise, drill_id=drill_id if exercise else None,
                alert_id=alert_id, sequence=0,
                msg_type=MsgType.ALERT, area_id=area_id,
                area_kind=area_kind or (template.area_kind if template else AreaKind.REACH), hazard=hazard,
                level=level, headline="", polygon=ring,
                area_name=area_name if area_name is not None else (template.area_name if template else area_id),
                area_name_ja=area_name_ja if area_name_ja is not None else (template.area_name_ja if template else ""),
            )
            event = self._officer_event(
                base, alert_id=alert_id, event_id=derive_id(alert_id, ":0:officer"), sequence=0,
                msg_type=MsgType.ALERT, level=level, previous_level=AlertLevel.NONE, references=(),
                action="issue", note=note, now=now,
            )
            message = self._publish(
                connection, event, now, source="officer", action="issue", officer=officer,
                manual=True, rebased=True, generation=0,
            )
        self._notify()
        return message

    @staticmethod
    def _officer_event(template: AlertEvent, *, alert_id: str, event_id: str, sequence: int, msg_type: MsgType,
                       level: AlertLevel, previous_level: AlertLevel, references: tuple[str, ...], action: str,
                       note: str, now: dt.datetime) -> AlertEvent:
        texts = message_texts(template.hazard, level, msg_type, template.area_name or template.area_id,
                              template.area_name_ja, exercise=template.exercise, officer_action=action,
                              previous_level=previous_level)
        return AlertEvent(
            event_id=event_id, event_time=now, exercise=template.exercise, drill_id=template.drill_id,
            alert_id=alert_id, sequence=sequence, msg_type=msg_type, area_id=template.area_id,
            area_kind=template.area_kind, hazard=template.hazard, level=level, previous_level=previous_level,
            headline=texts.headline, references=references,
            reason={"action": action, "source": "duty_officer", "note": note},
            area_name=template.area_name, area_name_ja=template.area_name_ja, polygon=template.polygon,
        )

    def _known(self, connection: Connection, event_id: str) -> bool:
        for table in (alert_messages, held_messages):
            if connection.execute(sa.select(table.c.event_id).where(table.c.event_id == event_id)).first():
                return True
        return False

    def _message(self, connection: Connection, event_id: str) -> StoredMessage:
        query = sa.select(alert_messages).where(alert_messages.c.event_id == event_id)
        row = connection.execute(query).mappings().one()
        return _message_from_row(row)

    def _publish(
        self, connection: Connection, event: AlertEvent, received: dt.datetime, *, source: str,
        manual: bool, rebased: bool, generation: int, action: str | None = None, officer: str | None = None,
        source_alert_id: str | None = None, source_sequence: int | None = None,
    ) -> StoredMessage:
        """Appends one message, updates its alert and fills the webhook outbox, in ``connection``'s transaction."""
        m = alert_messages.c
        cursor = int(connection.execute(sa.select(sa.func.coalesce(sa.func.max(m.cursor), 0))).scalar_one()) + 1
        connection.execute(sa.insert(alert_messages).values(
            event_id=event.event_id, cursor=cursor, alert_id=event.alert_id, sequence=event.sequence,
            msg_type=event.msg_type.value, **_area_values(event), level=int(event.level),
            previous_level=int(event.previous_level), exercise=event.exercise, drill_id=event.drill_id,
            event_time=event.event_time, headline=event.headline, references=json.dumps(list(event.references)),
            reason=json.dumps(dict(event.reason), ensure_ascii=False), source=source, action=action,
            officer=officer, source_alert_id=source_alert_id, source_sequence=source_sequence, received_at=received,
        ))
        message = StoredMessage(event, received, cursor, source, action, officer)
        latest_values = {
            "sequence": event.sequence, "last_event_id": event.event_id, "last_cursor": cursor,
            "msg_type": event.msg_type.value, "level": int(event.level),
            "active": event.msg_type is not MsgType.CANCEL, "exercise": event.exercise, "drill_id": event.drill_id,
            **_area_values(event), "headline": event.headline, "updated": event.event_time,
        }
        flags = {"manual": manual, "rebased": rebased, "generation": generation}
        current = connection.execute(sa.select(alerts).where(alerts.c.alert_id == event.alert_id)).mappings().first()
        if current is None:
            connection.execute(sa.insert(alerts).values(
                alert_id=event.alert_id, source_alert_id=source_alert_id, bound=source_alert_id is not None,
                pipeline_sequence=source_sequence if source_sequence is not None else -1,
                pipeline_level=int(event.level) if source == "pipeline" else 1,
                onset=event.event_time, **flags, **latest_values,
            ))
        else:
            values: dict[str, Any] = {"onset": min(current["onset"], event.event_time), **flags}
            if source_sequence is not None and source_sequence > current["pipeline_sequence"]:
                values.update(pipeline_sequence=source_sequence, pipeline_level=int(event.level))
            newer = (event.sequence, event.event_time, event.event_id) > (
                current["sequence"], current["updated"], current["last_event_id"])
            if newer:
                values.update(latest_values)
            connection.execute(alerts.update().where(alerts.c.alert_id == event.alert_id).values(**values))
        self._enqueue_webhooks(connection, message)
        return message

    def _enqueue_webhooks(self, connection: Connection, message: StoredMessage) -> None:
        p = partners.c
        subscribers = connection.execute(
            sa.select(p.partner_id, p.scopes, p.webhook_bbox)
            .where(p.webhook_url.is_not(None), p.disabled.is_(False))
            .order_by(p.partner_id)
        ).all()
        event = message.event
        area = polygon_bbox(event.polygon)
        payload: str | None = None
        rows = []
        for partner_id, scopes_json, bbox_json in subscribers:
            scopes = set(json.loads(scopes_json))
            if SCOPE_WEBHOOKS not in scopes or (event.exercise and SCOPE_EXERCISES not in scopes):
                continue
            if bbox_json and area is not None:
                wanted = tuple(json.loads(bbox_json))
                if not bboxes_intersect(area, (wanted[0], wanted[1], wanted[2], wanted[3])):
                    continue
            payload = payload or webhook_payload(message)
            rows.append({
                "partner_id": partner_id, "event_id": event.event_id, "webhook_id": event.event_id,
                "payload": payload, "status": "pending", "attempts": 0, "next_attempt_at": message.received_at,
                "created_at": message.received_at,
            })
        if rows:
            connection.execute(sa.insert(webhook_outbox), rows)

    # ----------------------------------------------------------------------- reads

    def _alert_filters(self, query: AlertQuery) -> list[sa.ColumnElement[bool]]:
        a = alerts.c
        clauses: list[sa.ColumnElement[bool]] = []
        if not query.include_cancelled:
            clauses.append(a.active.is_(True))
        if query.exercise is not None:
            clauses.append(a.exercise.is_(query.exercise))
        if query.area_id is not None:
            clauses.append(a.area_id == query.area_id)
        if query.hazard is not None:
            clauses.append(a.hazard == query.hazard.value)
        if query.min_level is not None:
            clauses.append(a.level >= int(query.min_level))
        if query.since is not None:
            clauses.append(a.updated >= query.since)
        if query.bbox is not None:
            clauses.extend(_bbox_clauses(a, query.bbox))
        return clauses

    def _alerts_where(self, clauses: list[sa.ColumnElement[bool]], limit: int | None) -> list[Alert]:
        a = alerts.c
        statement = (
            sa.select(alert_messages, a.onset.label("alert_onset"), a.manual.label("alert_manual"))
            .join(alerts, alert_messages.c.event_id == a.last_event_id)
            .where(*clauses)
            .order_by(a.updated.desc(), a.alert_id)
        )
        if limit is not None:
            statement = statement.limit(limit)
        with self.db.read() as connection:
            rows = connection.execute(statement).mappings().all()
        return [Alert(latest=_message_from_row(r), onset=r["alert_onset"], manual=bool(r["alert_manual"]))
                for r in rows]

    def list_alerts(self, query: AlertQuery) -> list[Alert]:
        return self._alerts_where(self._alert_filters(query), query.limit)

    def active_alerts(self, *, include_exercises: bool, min_level: AlertLevel | None = None) -> list[Alert]:
        clauses: list[sa.ColumnElement[bool]] = [alerts.c.active.is_(True)]
        if not include_exercises:
            clauses.append(alerts.c.exercise.is_(False))
        if min_level is not None:
            clauses.append(alerts.c.level >= int(min_level))
        return self._alerts_where(clauses, None)

    def get_alert(self, alert_id: str, *, with_held: bool = False) -> Alert | None:
        with self.db.read() as connection:
            state = connection.execute(sa.select(alerts).where(alerts.c.alert_id == alert_id)).mappings().first()
            if state is None:
                return None
            rows = connection.execute(
                sa.select(alert_messages).where(alert_messages.c.alert_id == alert_id)
            ).mappings().all()
            held_rows = connection.execute(
                sa.select(held_messages).where(held_messages.c.alert_id == alert_id)
                .order_by(held_messages.c.received_at, held_messages.c.event_id)
            ).mappings().all() if with_held else []
        history = sorted((_message_from_row(r) for r in rows),
                         key=lambda m: (m.event.sequence, m.event.event_time, m.event.event_id))
        latest = next(m for m in history if m.event.event_id == state["last_event_id"])
        held = tuple(
            HeldMessage(AlertEvent.from_dict(json.loads(r["payload"])), r["alert_id"], r["reason"], r["received_at"])
            for r in held_rows
        )
        return Alert(latest=latest, onset=state["onset"], messages=tuple(history), manual=bool(state["manual"]),
                     held=held)

    def get_message(self, event_id: str) -> StoredMessage | None:
        with self.db.read() as connection:
            row = connection.execute(
                sa.select(alert_messages).where(alert_messages.c.event_id == event_id)).mappings().first()
        return _message_from_row(row) if row else None

    def messages_after(self, cursor: int, *, include_exercises: bool, bbox: BBox | None = None,
                       limit: int = DEFAULT_LIMIT) -> tuple[list[StoredMessage], int]:
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1-{MAX_LIMIT}, got {limit}")
        m = alert_messages.c
        with self.db.read() as connection:
            top = int(connection.execute(sa.select(sa.func.coalesce(sa.func.max(m.cursor), 0))).scalar_one())
            clauses: list[sa.ColumnElement[bool]] = [m.cursor > cursor, m.cursor <= top]
            if not include_exercises:
                clauses.append(m.exercise.is_(False))
            if bbox is not None:
                clauses.extend(_bbox_clauses(m, bbox))
            rows = connection.execute(
                sa.select(alert_messages).where(*clauses).order_by(m.cursor).limit(limit)).mappings().all()
        messages = [_message_from_row(r) for r in rows]
        following = messages[-1].cursor if len(messages) == limit else max(top, cursor)
        return messages, following

    def latest_cursor(self) -> int:
        with self.db.read() as connection:
            return int(connection.execute(
                sa.select(sa.func.coalesce(sa.func.max(alert_messages.c.cursor), 0))).scalar_one())

    def sent_times(self, event_ids: Iterable[str]) -> dict[str, dt.datetime]:
        ids = list(event_ids)
        if not ids:
            return {}
        m = alert_messages.c
        with self.db.read() as connection:
            rows = connection.execute(sa.select(m.event_id, m.event_time).where(m.event_id.in_(ids))).all()
        return dict(rows)

    def counts(self) -> StoreCounts:
        a = alerts.c
        is_active = sa.case((a.active.is_(True), 1), else_=0)
        with self.db.read() as connection:
            n_alerts, n_active = connection.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(is_active), 0)).select_from(alerts)).one()
            n_messages = connection.execute(sa.select(sa.func.count()).select_from(alert_messages)).scalar_one()
            n_held = connection.execute(sa.select(sa.func.count()).select_from(held_messages)).scalar_one()
        return StoreCounts(int(n_alerts), int(n_active), int(n_messages), int(n_held))

    def close(self) -> None:
        self.db.close()


def _bbox_clauses(c: Any, bbox: BBox) -> list[sa.ColumnElement[bool]]:
    """Rows whose area's bounding box meets ``bbox`` (rows without an area never do)."""
    min_lon, min_lat, max_lon, max_lat = bbox
    return [c.min_lon.is_not(None), c.min_lon <= max_lon, c.max_lon >= min_lon,
            c.min_lat <= max_lat, c.max_lat >= min_lat]


class InMemoryAlertStore(SqlAlertStore):
    """:class:`SqlAlertStore` on a private in-memory SQLite database (tests and tools)."""

    def __init__(self, clock: Clock = utc_now) -> None:
        super().__init__("sqlite://", clock)


def create_store(url: str) -> AlertStore:
    """The store for a database URL (see :class:`SqlAlertStore`)."""
    return SqlAlertStore(url)


def parse_cursor(value: str) -> int:
    """A cursor from its text form.

    Raises:
        ValueError: Not a non-negative integer.
    """
    if not value.isdigit() or len(value) > 18:
        raise ValueError("cursor must be a non-negative integer as returned by the API")
    return int(value)

