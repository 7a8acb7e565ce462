"""Tables of the alert API and the engine that holds them (SQLAlchemy Core).

One schema serves SQLite (the embedded default) and PostgreSQL (by URL):

- ``alert_messages``: every message published to partners, in publication
  order (``cursor``), pipeline and duty-officer messages alike.
- ``alerts``: the current state of each published alert, kept in the same
  transaction as its messages.
- ``held_messages``: pipeline messages recorded but not published, because a
  duty officer has taken the alert over (see :mod:`alert_api.lifecycle`).
- ``partners``, ``api_keys``, ``officers``, ``officer_sessions``: accounts;
  keys, passwords and session tokens are stored hashed only.
- ``audit_log``: who did what.
- ``gateways``: field gateways that post readings, with the stations each may
  report for and the SHA-256 of its key; ``ingested_events``: the event ids of
  readings they sent (claimed before producing, accepted once Kafka
  acknowledged), kept for a bounded time so that a retried batch is not
  produced twice.
- ``webhook_outbox``: one row per message per subscribed partner, written in
  the transaction that publishes the message; the delivery worker works it off.

Writers that append to ``alert_messages`` are serialised (a process lock, and
on PostgreSQL a transaction-scoped advisory lock), so ``cursor`` order is commit
order and a reader that has seen cursor *n* has seen everything before it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from alert_api.secretbox import SecretBox, is_sealed

log = logging.getLogger(__name__)

#: Key of the PostgreSQL advisory lock that serialises publication.
PUBLISH_LOCK_KEY = 0x5375_6962  # "Suib"

#: An auto-incrementing integer key on both dialects (SQLite needs INTEGER for a rowid alias).
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class SealedSecret(sa.types.TypeDecorator[str]):
    """A secret stored sealed (:mod:`alert_api.secretbox`) once the database has a box, read back in clear.

    The box hangs on the engine's dialect (:meth:`Database.use_secret_box`), so every reader and writer of
    the column (accounts, the webhook worker) sees clear text without knowing about it.
    """

    impl = sa.String(128)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        box: SecretBox | None = getattr(dialect, "suibou_secret_box", None)
        if value is None or box is None or is_sealed(value):
            return value
        return box.seal(value)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None or not is_sealed(value):
            return value
        box: SecretBox | None = getattr(dialect, "suibou_secret_box", None)
        if box is None:
            raise RuntimeError("webhook secrets are sealed and this database has no key (secrets.key)")
        return box.open(value)


metadata = sa.MetaData()


def _area_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("area_id", sa.String(128), nullable=False),
        sa.Column("area_kind", sa.String(16), nullable=False),
        sa.Column("hazard", sa.String(16), nullable=False),
        sa.Column("area_name", sa.String(256), nullable=False, server_default=""),
        sa.Column("area_name_ja", sa.String(256), nullable=False, server_default=""),
        sa.Column("polygon", sa.Text, nullable=False, server_default="[]"),  # JSON [[lon, lat], ...]
        sa.Column("min_lon", sa.Float, nullable=True),
        sa.Column("min_lat", sa.Float, nullable=True),
        sa.Column("max_lon", sa.Float, nullable=True),
        sa.Column("max_lat", sa.Float, nullable=True),
    ]


alert_messages = sa.Table(
    "alert_messages",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("cursor", sa.BigInteger, nullable=False, unique=True),
    sa.Column("alert_id", sa.String(128), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("msg_type", sa.String(16), nullable=False),
    *_area_columns(),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("previous_level", sa.SmallInteger, nullable=False),
    sa.Column("exercise", sa.Boolean, nullable=False),
    sa.Column("drill_id", sa.String(128), nullable=True),
    sa.Column("event_time", UtcDateTime, nullable=False),
    sa.Column("headline", sa.Text, nullable=False),
    sa.Column("references", sa.Text, nullable=False),  # JSON array of event ids
    sa.Column("reason", sa.Text, nullable=False),  # JSON object
    sa.Column("source", sa.String(16), nullable=False, server_default="pipeline"),  # pipeline | officer
    sa.Column("action", sa.String(16), nullable=True),  # officer: issue | update | cancel | acknowledge
    sa.Column("officer", sa.String(64), nullable=True),
    sa.Column("source_alert_id", sa.String(128), nullable=True),
    sa.Column("source_sequence", sa.BigInteger, nullable=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Index("ix_alert_messages_alert_sequence", "alert_id", "sequence"),
    sa.Index("ix_alert_messages_event_time", "event_time"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(128), primary_key=True),
    sa.Column("source_alert_id", sa.String(128), nullable=True, index=True),
    sa.Column("bound", sa.Boolean, nullable=False),  # receives its source's pipeline messages
    sa.Column("manual", sa.Boolean, nullable=False),  # a duty officer has taken it over
    sa.Column("rebased", sa.Boolean, nullable=False),  # sequence no longer follows the pipeline's
    sa.Column("generation", sa.Integer, nullable=False),  # how often its source was re-opened
    sa.Column("pipeline_sequence", sa.BigInteger, nullable=False),
    sa.Column("pipeline_level", sa.SmallInteger, nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("last_event_id", sa.String(128), nullable=False),
    sa.Column("last_cursor", sa.BigInteger, nullable=False),
    sa.Column("msg_type", sa.String(16), nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, index=True),
    sa.Column("exercise", sa.Boolean, nullable=False),
    sa.Column("drill_id", sa.String(128), nullable=True),
    *_area_columns(),
    sa.Column("headline", sa.Text, nullable=False),
    sa.Column("onset", UtcDateTime, nullable=False),
    sa.Column("updated", UtcDateTime, nullable=False),
)

held_messages = sa.Table(
    "held_messages",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("alert_id", sa.String(128), nullable=False, index=True),
    sa.Column("source_alert_id", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # the alert_event/1 JSON as received
    sa.Column("received_at", UtcDateTime, nullable=False),
)

partners = sa.Table(
    "partners",
    metadata,
    sa.Column("partner_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # JSON array
    sa.Column("rate_limit_per_minute", sa.Integer, nullable=False),
    sa.Column("webhook_url", sa.String(2048), nullable=True),
    sa.Column("webhook_secret", SealedSecret(), nullable=True),
    sa.Column("webhook_bbox", sa.Text, nullable=True),  # JSON [min_lon, min_lat, max_lon, max_lat]
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("partner_id", sa.String(64), sa.ForeignKey("partners.partner_id"), nullable=False, index=True),
    sa.Column("key_hash", sa.String(64), nullable=False),  # SHA-256 hex of the whole key
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
)

officers = sa.Table(
    "officers",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("display_name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

officer_sessions = sa.Table(
    "officer_sessions",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(64), sa.ForeignKey("officers.username"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("actor_kind", sa.String(16), nullable=False),  # admin | partner | officer | system
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # JSON object
    sa.Column("remote", sa.String(64), nullable=True),
)

gateways = sa.Table(
    "gateways",
    metadata,
    sa.Column("gateway_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("stations", sa.Text, nullable=False),  # JSON array of ids, or prefixes ending in '*'
    sa.Column("exercise", sa.Boolean, nullable=False),  # an exercise gateway: its readings must be exercises
    sa.Column("key_id", sa.String(32), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False),  # SHA-256 hex of the whole key
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
)

ingested_events = sa.Table(
    "ingested_events",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("gateway_id", sa.String(64), nullable=False),
    sa.Column("topic", sa.String(256), nullable=False),
    sa.Column("accepted", sa.Boolean, nullable=False),  # False: claimed, waiting for Kafka's acknowledgement
    sa.Column("claim", sa.String(32), nullable=False),  # token of the request that claimed it
    sa.Column("claimed_at", UtcDateTime, nullable=False, index=True),
)

webhook_outbox = sa.Table(
    "webhook_outbox",
    metadata,
    sa.Column("id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("partner_id", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("webhook_id", sa.String(160), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | dead
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("lease_until", UtcDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("delivered_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("partner_id", "event_id", name="uq_webhook_outbox_partner_event"),
    sa.Index("ix_webhook_outbox_partner_status", "partner_id", "status", "id"),
)


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``, with the SQLite details that make it safe to share.

    A file database gets its folder created, write-ahead logging (readers do
    not block the writers) and a busy timeout; an in-memory database is one
    connection shared by every thread.

    Raises:
        ValueError: The database is neither SQLite nor PostgreSQL.
    """
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if backend != "sqlite":
        raise ValueError(f"the alert store supports SQLite and PostgreSQL, not {backend!r}")
    if parsed.database in (None, "", ":memory:"):
        return sa.create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})
    secure_sqlite_file(Path(parsed.database))
    engine = sa.create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def secure_sqlite_file(path: Path) -> None:
    """Makes the database file (0600, with its -wal and -shm files) and a folder made for it (0700) readable
    by this user only.

    The store holds every partner's webhook signing secret and the audit log. Files that exist already are
    narrowed too (a store made before this rule, or under a loose umask). A folder that exists already may be
    shared with other things (the working directory, say) and is left alone, with a warning if others may
    list it.
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
    elif folder.stat().st_mode & 0o077:
        log.warning("the alert store's folder %s is open to other users; the database file itself is not", folder)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # made before SQLite opens it: never world-readable
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if part.exists():
            os.chmod(part, 0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # SQLite gives -wal and -shm the database file's mode (0600)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """An engine with the alert API's schema, and the lock that orders writes.

    On SQLite every write transaction of this process runs under one lock (a
    SQLite database has one writer at a time anyway, and taking turns here
    avoids its busy errors); on PostgreSQL only publication is serialised, by
    a transaction-scoped advisory lock that also holds across API replicas.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///.suibou/alerts.db`` or
            ``postgresql+psycopg://user@host/suibou``.

    Raises:
        ValueError: The database is neither SQLite nor PostgreSQL.
    """

    def __init__(self, url: str) -> None:
        self.engine = create_db_engine(url)
        self.dialect = self.engine.dialect.name
        # An in-memory SQLite database is one shared connection: reads take turns too.
        self._shared = isinstance(self.engine.pool, StaticPool)
        self._lock = threading.RLock()
        self.legacy_rows = migrate(self.engine)

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction; committed when the block ends without an exception."""
        if self.dialect == "sqlite":
            with self._lock, self.engine.begin() as connection:
                yield connection
        else:
            with self.engine.begin() as connection:
                yield connection

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading."""
        if self._shared:
            with self._lock, self.engine.connect() as connection:
                yield connection
        else:
            with self.engine.connect() as connection:
                yield connection

    @contextlib.contextmanager
    def publishing(self) -> Iterator[Connection]:
        """A transaction that may append to ``alert_messages``; one at a time, across replicas."""
        with self._lock, self.engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PUBLISH_LOCK_KEY})
            yield connection

    def use_secret_box(self, box: SecretBox) -> int:
        """Seals webhook secrets with ``box`` from now on, and seals those stored in clear; returns how many."""
        self.engine.dialect.suibou_secret_box = box  # type: ignore[attr-defined]
        with self.begin() as connection:
            rows = connection.execute(sa.text("SELECT partner_id, webhook_secret FROM partners")).all()
            clear = [(pid, secret) for pid, secret in rows if secret is not None and not is_sealed(secret)]
            for partner_id, secret in clear:
                connection.execute(partners.update().where(partners.c.partner_id == partner_id)
                                   .values(webhook_secret=secret))
        return len(clear)

    def truncate_all(self) -> None:
        """Empties every table (tests)."""
        with self.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())

    def close(self) -> None:
        self.engine.dispose()


def migrate(engine: Engine) -> list[dict[str, Any]]:
    """Creates missing tables; returns the messages of a store written by the first alert API.

    The first schema had ``alert_messages`` without ``cursor`` and no ``alerts``
    table. Its rows are read and the table dropped; the caller re-publishes them
    through the lifecycle in the order they were received, which rebuilds both.
    """
    inspector = sa.inspect(engine)
    old_rows: list[dict[str, Any]] = []
    if inspector.has_table("alert_messages"):
        columns = {c["name"] for c in inspector.get_columns("alert_messages")}
        if "cursor" not in columns:
            with engine.begin() as connection:
                old_rows = [dict(r) for r in connection.execute(sa.text(
                    "SELECT * FROM alert_messages ORDER BY received_at, sequence, event_id")).mappings()]
                connection.execute(sa.text("DROP TABLE alert_messages"))
    metadata.create_all(engine)
    return old_rows
