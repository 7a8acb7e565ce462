"""Partners, their API keys and webhook subscriptions; field gateways and their keys; duty officers and their
sessions; the audit log.

Secrets are stored hashed (:mod:`alert_api.security`), except each partner's
webhook signing secret, which the API needs in clear to sign (HMAC) and which
is only ever shown to that partner and to admins.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import secrets
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from alert_api.db import Database, api_keys, audit_log, gateways, officer_sessions, officers, partners
from alert_api.models import BBox, Clock, utc_now
from alert_api.security import (
    GATEWAY_KEY_PREFIX,
    PARTNER_KEY_PREFIX,
    SESSION_PREFIX,
    check_password,
    dummy_password_hash,
    hash_password,
    new_api_key,
    new_gateway_key,
    new_session_token,
    new_webhook_secret,
    split_token,
    token_matches,
)
from alert_api.store import SCOPES

#: Officer roles: ``officer`` acts on alerts; ``observer`` only reads.
ROLES = ("officer", "observer")
#: How long an officer session lasts: a duty shift.
SESSION_HOURS = 12
#: Most stations (ids or prefixes) one gateway may report for.
MAX_GATEWAY_STATIONS = 1000
_STATION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")


class AccountError(ValueError):
    """A request on accounts that cannot be done; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Partner:
    """A navigation or route-search partner.

    Attributes:
        partner_id: Stable id, ``p_`` + hex.
        name: Display name.
        scopes: What its keys may do (:data:`alert_api.store.SCOPES`).
        rate_limit_per_minute: Requests allowed per minute, across its keys.
        webhook_url: Where its webhooks go; ``None`` when not subscribed.
        webhook_secret: Its Standard Webhooks signing secret (``whsec_``).
        webhook_bbox: Only alerts whose area meets this box are sent, if set.
        disabled: A disabled partner's keys are refused and nothing is sent to it.
        created_at: When it was registered.
    """

    partner_id: str
    name: str
    scopes: frozenset[str]
    rate_limit_per_minute: int
    webhook_url: str | None
    webhook_secret: str | None
    webhook_bbox: BBox | None
    disabled: bool
    created_at: dt.datetime

    @property
    def sees_exercises(self) -> bool:
        return "exercises" in self.scopes


@dataclasses.dataclass(frozen=True)
class Gateway:
    """A field gateway that posts readings to ``/v1/ingest/readings``.

    Attributes:
        gateway_id: Stable id, ``g_`` + hex.
        name: Display name.
        stations: Ids it may report for (gauge station ids, camera ids, drone
            flight ids); an entry ending in ``*`` is a prefix (``FL-KANDA-*``).
        exercise: An exercise gateway: every reading it sends must be marked as
            an exercise with a drill id. A live gateway's readings must not be.
        key_id: Id of its key (the key itself is stored hashed).
        created_at: When it was registered.
        revoked_at: When its key was revoked; a revoked gateway is refused.
    """

    gateway_id: str
    name: str
    stations: tuple[str, ...]
    exercise: bool
    key_id: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    def may_report_for(self, source_id: str) -> bool:
        """Whether the gateway may send readings of ``source_id``.

        Examples:
            >>> g = Gateway("g_1", "n", ("WL-A", "FL-KANDA-*"), False, "k", dt.datetime.now(dt.timezone.utc), None)
            >>> g.may_report_for("WL-A"), g.may_report_for("WL-AB"), g.may_report_for("FL-KANDA-7")
            (True, False, True)
        """
        return any(source_id == s or (s.endswith("*") and source_id.startswith(s[:-1])) for s in self.stations)


@dataclasses.dataclass(frozen=True)
class Officer:
    username: str
    display_name: str
    role: str
    disabled: bool
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    actor_kind: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    remote: str | None


def _partner(row: Any) -> Partner:
    bbox = json.loads(row["webhook_bbox"]) if row["webhook_bbox"] else None
    return Partner(
        partner_id=row["partner_id"], name=row["name"], scopes=frozenset(json.loads(row["scopes"])),
        rate_limit_per_minute=int(row["rate_limit_per_minute"]), webhook_url=row["webhook_url"],
        webhook_secret=row["webhook_secret"], webhook_bbox=tuple(bbox) if bbox else None,
        disabled=bool(row["disabled"]), created_at=row["created_at"],
    )


def _officer(row: Any) -> Officer:
    return Officer(row["username"], row["display_name"], row["role"], bool(row["disabled"]), row["created_at"])


def _gateway(row: Any) -> Gateway:
    return Gateway(row["gateway_id"], row["name"], tuple(json.loads(row["stations"])), bool(row["exercise"]),
                   row["key_id"], row["created_at"], row["revoked_at"])


def check_stations(stations: Iterable[str]) -> list[str]:
    """Validates a gateway's station list: ids, or prefixes of at least 3 characters ending in ``*``.

    Raises:
        AccountError: (422) An entry is malformed, or there are none or too many.
    """
    chosen = sorted(set(stations))
    if not 1 <= len(chosen) <= MAX_GATEWAY_STATIONS:
        raise AccountError(f"a gateway reports for 1 to {MAX_GATEWAY_STATIONS} stations, got {len(chosen)}", 422)
    for entry in chosen:
        stem = entry.removesuffix("*")
        if not _STATION_PATTERN.match(stem) or (entry.endswith("*") and len(stem) < 3):
            raise AccountError(f"{entry!r} is neither a station id nor a prefix like 'FL-KANDA-*' "
                               "(at least 3 characters before the '*')", 422)
    return chosen


def check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise AccountError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}", 422)
    return chosen


class AccountStore:
    """Accounts and the audit log, in the alert store's database.

    Args:
        database: The open database (shared with the alert store).
        clock: Source of times.
    """

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self.db = database
        self._clock = clock

    # ----------------------------------------------------------------------- partners

    def create_partner(self, name: str, scopes: Iterable[str], rate_limit_per_minute: int = 600) -> tuple[Partner, str]:
        """Registers a partner with a first API key.

        Returns:
            The partner and its API key, which is not stored and cannot be shown again.
        """
        partner_id = f"p_{secrets.token_hex(6)}"
        now = self._clock()
        with self.db.begin() as connection:
            connection.execute(sa.insert(partners).values(
                partner_id=partner_id, name=name, scopes=json.dumps(check_scopes(scopes)),
                rate_limit_per_minute=rate_limit_per_minute, webhook_url=None,
                webhook_secret=new_webhook_secret(), webhook_bbox=None, disabled=False, created_at=now,
            ))
            key = self._insert_key(connection, partner_id, now)
        partner = self.get_partner(partner_id)
        assert partner is not None
        return partner, key

    def _insert_key(self, connection: sa.Connection, partner_id: str, now: dt.datetime) -> str:
        key_id, key, digest = new_api_key()
        connection.execute(sa.insert(api_keys).values(
            key_id=key_id, partner_id=partner_id, key_hash=digest, created_at=now, revoked_at=None))
        return key

    def get_partner(self, partner_id: str) -> Partner | None:
        with self.db.read() as connection:
            row = connection.execute(sa.select(partners).where(partners.c.partner_id == partner_id)).mappings().first()
        return _partner(row) if row else None

    def list_partners(self) -> list[Partner]:
        with self.db.read() as connection:
            rows = connection.execute(sa.select(partners).order_by(partners.c.created_at, partners.c.partner_id))
            return [_partner(r) for r in rows.mappings()]

    def update_partner(self, partner_id: str, *, name: str | None = None, scopes: Iterable[str] | None = None,
                       rate_limit_per_minute: int | None = None, disabled: bool | None = None) -> Partner:
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        if scopes is not None:
            values["scopes"] = json.dumps(check_scopes(scopes))
        if rate_limit_per_minute is not None:
            values["rate_limit_per_minute"] = rate_limit_per_minute
        if disabled is not None:
            values["disabled"] = disabled
        with self.db.begin() as connection:
            if values:
                result = connection.execute(
                    partners.update().where(partners.c.partner_id == partner_id).values(**values))
                if result.rowcount == 0:
                    raise AccountError(f"no partner {partner_id!r}", 404)
        partner = self.get_partner(partner_id)
        if partner is None:
            raise AccountError(f"no partner {partner_id!r}", 404)
        return partner

    def create_key(self, partner_id: str) -> tuple[str, str]:
        """A new API key for a partner: ``(key id, key)``; the key is shown once."""
        if self.get_partner(partner_id) is None:
            raise AccountError(f"no partner {partner_id!r}", 404)
        with self.db.begin() as connection:
            key = self._insert_key(connection, partner_id, self._clock())
        parts = split_token(key)
        assert parts is not None
        return parts[1], key

    def list_keys(self, partner_id: str) -> list[dict[str, Any]]:
        k = api_keys.c
        with self.db.read() as connection:
            rows = connection.execute(sa.select(k.key_id, k.created_at, k.revoked_at)
                                      .where(k.partner_id == partner_id).order_by(k.created_at, k.key_id))
            return [dict(r) for r in rows.mappings()]

    def revoke_key(self, partner_id: str, key_id: str) -> None:
        with self.db.begin() as connection:
            result = connection.execute(api_keys.update().where(
                api_keys.c.partner_id == partner_id, api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None),
            ).values(revoked_at=self._clock()))
        if result.rowcount == 0:
            raise AccountError(f"partner {partner_id!r} has no active key {key_id!r}", 404)

    def authenticate_key(self, token: str) -> Partner | None:
        """The partner a key belongs to, if the key is valid, not revoked and the partner enabled."""
        parts = split_token(token)
        if parts is None or parts[0] != PARTNER_KEY_PREFIX:
            return None
        with self.db.read() as connection:
            row = connection.execute(
                sa.select(api_keys.c.key_hash, api_keys.c.revoked_at, partners)
                .join(partners, partners.c.partner_id == api_keys.c.partner_id)
                .where(api_keys.c.key_id == parts[1])
            ).mappings().first()
        if row is None or not token_matches(token, row["key_hash"]) or row["revoked_at"] is not None:
            return None
        partner = _partner(row)
        return None if partner.disabled else partner

    def set_webhook(self, partner_id: str, url: str, bbox: BBox | None) -> Partner:
        with self.db.begin() as connection:
            connection.execute(partners.update().where(partners.c.partner_id == partner_id).values(
                webhook_url=url, webhook_bbox=json.dumps(list(bbox)) if bbox else None))
        partner = self.get_partner(partner_id)
        assert partner is not None
        return partner

    def clear_webhook(self, partner_id: str) -> None:
        with self.db.begin() as connection:
            connection.execute(partners.update().where(partners.c.partner_id == partner_id).values(
                webhook_url=None, webhook_bbox=None))

    def rotate_webhook_secret(self, partner_id: str) -> str:
        secret = new_webhook_secret()
        with self.db.begin() as connection:
            connection.execute(partners.update().where(partners.c.partner_id == partner_id).values(
                webhook_secret=secret))
        return secret

    # ----------------------------------------------------------------------- gateways

    def create_gateway(self, name: str, stations: Iterable[str], exercise: bool = False) -> tuple[Gateway, str]:
        """Registers a field gateway with its key.

        Returns:
            The gateway and its key (``sbg_…``), which is not stored and cannot be shown again.
        """
        gateway_id = f"g_{secrets.token_hex(6)}"
        key_id, key, digest = new_gateway_key()
        with self.db.begin() as connection:
            connection.execute(sa.insert(gateways).values(
                gateway_id=gateway_id, name=name, stations=json.dumps(check_stations(stations)), exercise=exercise,
                key_id=key_id, key_hash=digest, created_at=self._clock(), revoked_at=None))
        gateway = self.get_gateway(gateway_id)
        assert gateway is not None
        return gateway, key

    def get_gateway(self, gateway_id: str) -> Gateway | None:
        with self.db.read() as connection:
            row = connection.execute(sa.select(gateways).where(gateways.c.gateway_id == gateway_id)).mappings().first()
        return _gateway(row) if row else None

    def list_gateways(self) -> list[Gateway]:
        with self.db.read() as connection:
            rows = connection.execute(sa.select(gateways).order_by(gateways.c.created_at, gateways.c.gateway_id))
            return [_gateway(r) for r in rows.mappings()]

    def revoke_gateway(self, gateway_id: str) -> Gateway:
        """Revokes a gateway's key: from now on its requests get 401."""
        with self.db.begin() as connection:
            result = connection.execute(gateways.update().where(
                gateways.c.gateway_id == gateway_id, gateways.c.revoked_at.is_(None)).values(revoked_at=self._clock()))
        if result.rowcount == 0:
            raise AccountError(f"no active gateway {gateway_id!r}", 404)
        gateway = self.get_gateway(gateway_id)
        assert gateway is not None
        return gateway

    def authenticate_gateway(self, token: str) -> Gateway | None:
        """The gateway a key belongs to, if the key is valid and not revoked."""
        parts = split_token(token)
        if parts is None or parts[0] != GATEWAY_KEY_PREFIX:
            return None
        with self.db.read() as connection:
            row = connection.execute(sa.select(gateways).where(gateways.c.key_id == parts[1])).mappings().first()
        if row is None or not token_matches(token, row["key_hash"]) or row["revoked_at"] is not None:
            return None
        return _gateway(row)

    # ----------------------------------------------------------------------- officers

    def create_officer(self, username: str, display_name: str, password: str, role: str = "officer") -> Officer:
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}", 422)
        now = self._clock()
        try:
            with self.db.begin() as connection:
                connection.execute(sa.insert(officers).values(
                    username=username, display_name=display_name, role=role,
                    password_hash=hash_password(password), disabled=False, created_at=now))
        except sa.exc.IntegrityError:
            raise AccountError(f"officer {username!r} exists") from None
        return Officer(username, display_name, role, False, now)

    def list_officers(self) -> list[Officer]:
        with self.db.read() as connection:
            return [_officer(r) for r in connection.execute(
                sa.select(officers).order_by(officers.c.username)).mappings()]

    def update_officer(self, username: str, *, disabled: bool | None = None, password: str | None = None,
                       role: str | None = None) -> Officer:
        values: dict[str, Any] = {}
        if disabled is not None:
            values["disabled"] = disabled
        if password is not None:
            values["password_hash"] = hash_password(password)
        if role is not None:
            if role not in ROLES:
                raise AccountError(f"role must be one of {', '.join(ROLES)}", 422)
            values["role"] = role
        with self.db.begin() as connection:
            if values:
                connection.execute(officers.update().where(officers.c.username == username).values(**values))
            if disabled or password is not None:  # end the officer's sessions
                connection.execute(officer_sessions.update().where(
                    officer_sessions.c.username == username, officer_sessions.c.revoked_at.is_(None),
                ).values(revoked_at=self._clock()))
            row = connection.execute(sa.select(officers).where(officers.c.username == username)).mappings().first()
        if row is None:
            raise AccountError(f"no officer {username!r}", 404)
        return _officer(row)

    def login(self, username: str, password: str) -> tuple[Officer, str, dt.datetime] | None:
        """Checks a password; returns the officer, a new session token and its expiry, or ``None``.

        Hashes the password once (an unknown user name against a dummy hash, so that it costs the same).
        A stored hash of an older scheme or weaker parameters is replaced by a current one on success.
        This blocks for the length of a password hash: call it off the event loop.
        """
        with self.db.read() as connection:
            row = connection.execute(sa.select(officers).where(officers.c.username == username)).mappings().first()
        stored = row["password_hash"] if row else dummy_password_hash()
        matches, upgrade = check_password(password, stored)
        if not matches or row is None or row["disabled"]:
            return None
        upgraded = hash_password(password) if upgrade else None  # before the write lock is taken
        token_id, token, digest = new_session_token()
        now = self._clock()
        expires = now + dt.timedelta(hours=SESSION_HOURS)
        with self.db.begin() as connection:
            if upgraded is not None:
                connection.execute(officers.update().where(
                    officers.c.username == username, officers.c.password_hash == stored,
                ).values(password_hash=upgraded))
            connection.execute(sa.insert(officer_sessions).values(
                token_id=token_id, username=username, token_hash=digest, created_at=now, expires_at=expires,
                revoked_at=None))
        return _officer(row), token, expires

    def authenticate_session(self, token: str) -> Officer | None:
        parts = split_token(token)
        if parts is None or parts[0] != SESSION_PREFIX:
            return None
        s = officer_sessions.c
        with self.db.read() as connection:
            row = connection.execute(
                sa.select(s.token_hash, s.expires_at, s.revoked_at, officers)
                .join(officers, officers.c.username == s.username).where(s.token_id == parts[1])
            ).mappings().first()
        if row is None or not token_matches(token, row["token_hash"]):
            return None
        if row["revoked_at"] is not None or row["expires_at"] <= self._clock() or row["disabled"]:
            return None
        return _officer(row)

    def logout(self, token: str) -> None:
        parts = split_token(token)
        if parts is None:
            return
        with self.db.begin() as connection:
            connection.execute(officer_sessions.update().where(
                officer_sessions.c.token_id == parts[1]).values(revoked_at=self._clock()))

    # ----------------------------------------------------------------------- audit

    def audit(self, actor_kind: str, actor: str, action: str, target: str = "",
              detail: dict[str, Any] | None = None, remote: str | None = None) -> None:
        with self.db.begin() as connection:
            connection.execute(sa.insert(audit_log).values(
                at=self._clock(), actor_kind=actor_kind, actor=actor[:128], action=action, target=target[:256],
                detail=json.dumps(detail or {}, ensure_ascii=False), remote=remote))

    def audit_entries(self, *, limit: int = 100, after_id: int = 0, actor: str | None = None,
                      action: str | None = None) -> list[AuditEntry]:
        a = audit_log.c
        clauses: list[sa.ColumnElement[bool]] = [a.id > after_id]
        if actor is not None:
            clauses.append(a.actor == actor)
        if action is not None:
            clauses.append(a.action == action)
        with self.db.read() as connection:
            rows = connection.execute(sa.select(audit_log).where(*clauses).order_by(a.id).limit(limit)).mappings()
            return [AuditEntry(int(r["id"]), r["at"], r["actor_kind"], r["actor"], r["action"], r["target"],
                               json.loads(r["detail"]), r["remote"]) for r in rows]


__all__ = ["MAX_GATEWAY_STATIONS", "ROLES", "SESSION_HOURS", "AccountError", "AccountStore", "AuditEntry", "Gateway",
           "Officer", "Partner", "check_scopes", "check_stations"]
