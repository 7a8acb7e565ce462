"""The alert store: every alert message the API has received, keyed by event id.

An alert is the sequence of messages that share an ``alert_id`` (Alert, then
Updates, perhaps a Cancel). The store keeps every message and answers questions
about the *current* state of each alert, which is its latest message (highest
``sequence``). An alert is active while its latest message is not a Cancel.

Storing is idempotent on ``event_id``: the alert consumer reads Kafka at least
once, so the same message may arrive again after a restart or a rebalance, and
storing it again changes nothing.

Two implementations share the interface: :class:`SqlAlertStore` (SQLAlchemy
Core; SQLite by default, PostgreSQL by URL) and :class:`InMemoryAlertStore`
for tests.

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
import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType

#: Largest page of alerts one query returns.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --------------------------------------------------------------------------- values


@dataclasses.dataclass(frozen=True)
class StoredMessage:
    """One alert message as stored.

    Attributes:
        event: The message as the pipeline published it.
        received_at: When this API stored it (UTC).
    """

    event: AlertEvent
    received_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Alert:
    """The current state of one alert.

    Attributes:
        latest: The alert's latest message (highest ``sequence``).
        onset: ``event_time`` of the alert's first message.
        messages: The full history ordered by ``sequence``; filled only by
            :meth:`AlertStore.get_alert`, empty in lists.
    """

    latest: StoredMessage
    onset: dt.datetime
    messages: tuple[StoredMessage, ...] = ()

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
        limit: Most alerts to return, 1 to :data:`MAX_LIMIT`; newest first.

    Raises:
        ValueError: ``limit`` is out of range or ``since`` has no UTC offset.
    """

    exercise: bool | None = None
    area_id: str | None = None
    hazard: Hazard | None = None
    min_level: AlertLevel | None = None
    since: dt.datetime | None = None
    include_cancelled: bool = False
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1-{MAX_LIMIT}, got {self.limit}")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("since must carry a UTC offset")

    def matches(self, alert: Alert) -> bool:
        """Whether ``alert`` passes every filter (``limit`` aside)."""
        event = alert.latest.event
        return (
            (self.include_cancelled or alert.active)
            and (self.exercise is None or event.exercise == self.exercise)
            and (self.area_id is None or event.area_id == self.area_id)
            and (self.hazard is None or event.hazard is self.hazard)
            and (self.min_level is None or event.level >= self.min_level)
            and (self.since is None or event.event_time >= self.since)
        )


@dataclasses.dataclass(frozen=True)
class StoreCounts:
    """How much the store holds: distinct alerts, active ones, and messages."""

    alerts: int
    active: int
    messages: int


# --------------------------------------------------------------------------- interface


class AlertStore(abc.ABC):
    """Where the alert API keeps alert messages. Implementations are thread-safe."""

    @abc.abstractmethod
    def add(self, event: AlertEvent) -> bool:
        """Stores one alert message, unless a message with its ``event_id`` exists.

        Args:
            event: The message to store.

        Returns:
            ``True`` if stored, ``False`` if it was a duplicate (nothing changed).
        """

    @abc.abstractmethod
    def list_alerts(self, query: AlertQuery) -> list[Alert]:
        """Current alerts that match ``query``, latest change first."""

    @abc.abstractmethod
    def get_alert(self, alert_id: str) -> Alert | None:
        """One alert with its full message history, or ``None`` if unknown."""

    @abc.abstractmethod
    def counts(self) -> StoreCounts:
        """Number of alerts, active alerts and messages held."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases connections; the store is unusable afterwards."""


def _message_order(message: StoredMessage) -> tuple[int, dt.datetime, str]:
    """Order of messages within one alert; the last one is the alert's latest."""
    event = message.event
    return event.sequence, event.event_time, event.event_id


def _newest_first(alerts: Iterable[Alert], limit: int) -> list[Alert]:
    ordered = sorted(alerts, key=lambda a: a.alert_id)
    ordered.sort(key=lambda a: a.latest.event.event_time, reverse=True)
    return ordered[:limit]


# --------------------------------------------------------------------------- in memory


class InMemoryAlertStore(AlertStore):
    """A store in a dict, for tests and for trying the API without a database."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._messages: dict[str, StoredMessage] = {}

    def add(self, event: AlertEvent) -> bool:
        with self._lock:
            if event.event_id in self._messages:
                return False
            self._messages[event.event_id] = StoredMessage(event, self._clock())
            return True

    def list_alerts(self, query: AlertQuery) -> list[Alert]:
        alerts = (a for a in self._alerts(with_history=False) if query.matches(a))
        return _newest_first(alerts, query.limit)

    def get_alert(self, alert_id: str) -> Alert | None:
        return next((a for a in self._alerts(with_history=True) if a.alert_id == alert_id), None)

    def counts(self) -> StoreCounts:
        alerts = self._alerts(with_history=False)
        return StoreCounts(len(alerts), sum(a.active for a in alerts), len(self._messages))

    def _alerts(self, *, with_history: bool) -> list[Alert]:
        with self._lock:
            messages = list(self._messages.values())
        by_alert: dict[str, list[StoredMessage]] = {}
        for message in messages:
            by_alert.setdefault(message.event.alert_id, []).append(message)
        alerts = []
        for history in by_alert.values():
            history.sort(key=_message_order)
            alerts.append(
                Alert(
                    latest=history[-1],
                    onset=min(m.event.event_time for m in history),
                    messages=tuple(history) if with_history else (),
                )
            )
        return alerts


# --------------------------------------------------------------------------- SQL


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A UTC instant stored as a naive ``TIMESTAMP``, read back as UTC-aware.

    Naive UTC compares and sorts the same way on SQLite and PostgreSQL.
    """

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs a timezone-aware datetime")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


metadata = sa.MetaData()

alert_messages = sa.Table(
    "alert_messages",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("alert_id", sa.String(128), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("msg_type", sa.String(16), nullable=False),
    sa.Column("area_id", sa.String(128), nullable=False),
    sa.Column("area_kind", sa.String(16), nullable=False),
    sa.Column("hazard", sa.String(16), nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("previous_level", sa.SmallInteger, nullable=False),
    sa.Column("exercise", sa.Boolean, nullable=False),
    sa.Column("drill_id", sa.String(128), nullable=True),
    sa.Column("event_time", UtcDateTime, nullable=False),
    sa.Column("headline", sa.Text, nullable=False),
    sa.Column("references", sa.Text, nullable=False),  # JSON array of event ids
    sa.Column("reason", sa.Text, nullable=False),  # JSON object
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Index("ix_alert_messages_alert_sequence", "alert_id", "sequence"),
    sa.Index("ix_alert_messages_event_time", "event_time"),
)


def event_to_row(event: AlertEvent, received_at: dt.datetime) -> dict[str, Any]:
    """The ``alert_messages`` row for one message."""
    return {
        "event_id": event.event_id,
        "alert_id": event.alert_id,
        "sequence": event.sequence,
        "msg_type": event.msg_type.value,
        "area_id": event.area_id,
        "area_kind": event.area_kind.value,
        "hazard": event.hazard.value,
        "level": int(event.level),
        "previous_level": int(event.previous_level),
        "exercise": event.exercise,
        "drill_id": event.drill_id,
        "event_time": event.event_time,
        "headline": event.headline,
        "references": json.dumps(list(event.references)),
        "reason": json.dumps(dict(event.reason), ensure_ascii=False),
        "received_at": received_at,
    }


def row_to_message(row: Mapping[Any, Any]) -> StoredMessage:
    """The inverse of :func:`event_to_row`."""
    event = AlertEvent(
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
    )
    return StoredMessage(event, row["received_at"])


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``, with the SQLite details that make it safe to share.

    A file database gets its folder created, write-ahead logging (readers do
    not block the consumer's writes) and a busy timeout; an in-memory database
    is one connection shared by every thread.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    if parsed.database in (None, "", ":memory:"):
        return sa.create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": 30})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class SqlAlertStore(AlertStore):
    """The alert store in a SQL database, through SQLAlchemy Core.

    Args:
        url: SQLAlchemy database URL, e.g. ``sqlite:///.suibou/alerts.db`` or
            ``postgresql+psycopg://user@host/suibou``.
        clock: Source of ``received_at``.

    Raises:
        ValueError: The database is neither SQLite nor PostgreSQL.
    """

    def __init__(self, url: str, clock: Clock = utc_now) -> None:
        self._engine = create_db_engine(url)
        self._insert = _insert_ignoring_duplicates(self._engine.dialect.name)
        self._clock = clock
        metadata.create_all(self._engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def add(self, event: AlertEvent) -> bool:
        statement = self._insert(event_to_row(event, self._clock()))
        with self._engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    def list_alerts(self, query: AlertQuery) -> list[Alert]:
        latest = _latest_messages()
        statement = (
            sa.select(latest)
            .where(latest.c.recency == 1, *_filters(latest.c, query))
            .order_by(latest.c.event_time.desc(), latest.c.alert_id)
            .limit(query.limit)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        return [Alert(latest=row_to_message(row), onset=row["onset"]) for row in rows]

    def get_alert(self, alert_id: str) -> Alert | None:
        t = alert_messages.c
        statement = sa.select(alert_messages).where(t.alert_id == alert_id)
        with self._engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        if not rows:
            return None
        history = sorted((row_to_message(row) for row in rows), key=_message_order)
        onset = min(m.event.event_time for m in history)
        return Alert(latest=history[-1], onset=onset, messages=tuple(history))

    def counts(self) -> StoreCounts:
        latest = _latest_messages()
        is_active = sa.case((latest.c.msg_type != MsgType.CANCEL.value, 1), else_=0)
        alerts = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(is_active), 0))
        alerts = alerts.where(latest.c.recency == 1)
        messages = sa.select(sa.func.count()).select_from(alert_messages)
        with self._engine.connect() as connection:
            n_alerts, n_active = connection.execute(alerts).one()
            n_messages = connection.execute(messages).scalar_one()
        return StoreCounts(int(n_alerts), int(n_active), int(n_messages))

    def close(self) -> None:
        self._engine.dispose()


def _insert_ignoring_duplicates(dialect: str) -> Callable[[dict[str, Any]], sa.Executable]:
    """``INSERT ... ON CONFLICT (event_id) DO NOTHING`` for the given dialect."""
    if dialect == "sqlite":
        return lambda row: sqlite.insert(alert_messages).values(row).on_conflict_do_nothing(
            index_elements=["event_id"]
        )
    if dialect == "postgresql":
        return lambda row: postgresql.insert(alert_messages).values(row).on_conflict_do_nothing(
            index_elements=["event_id"]
        )
    raise ValueError(f"the alert store supports SQLite and PostgreSQL, not {dialect!r}")


def _latest_messages() -> sa.Subquery:
    """Every message with its ``recency`` in its alert (1 = latest) and the alert's ``onset``."""
    t = alert_messages.c
    rank = sa.func.row_number().over(
        partition_by=t.alert_id, order_by=(t.sequence.desc(), t.event_time.desc(), t.event_id.desc())
    )
    onset = sa.func.min(t.event_time).over(partition_by=t.alert_id)
    columns = (rank.label("recency"), sa.type_coerce(onset, UtcDateTime).label("onset"))
    return sa.select(alert_messages, *columns).subquery("latest")


def _filters(c: Any, query: AlertQuery) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses for ``query`` on the columns ``c`` of :func:`_latest_messages`."""
    clauses: list[sa.ColumnElement[bool]] = []
    if not query.include_cancelled:
        clauses.append(c.msg_type != MsgType.CANCEL.value)
    if query.exercise is not None:
        clauses.append(c.exercise == query.exercise)
    if query.area_id is not None:
        clauses.append(c.area_id == query.area_id)
    if query.hazard is not None:
        clauses.append(c.hazard == query.hazard.value)
    if query.min_level is not None:
        clauses.append(c.level >= int(query.min_level))
    if query.since is not None:
        clauses.append(c.event_time >= query.since)
    return clauses


def create_store(url: str) -> AlertStore:
    """The store for a database URL (see :class:`SqlAlertStore`)."""
    return SqlAlertStore(url)
