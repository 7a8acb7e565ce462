"""Webhook delivery per the Standard Webhooks specification, from the outbox.

Publishing a message writes one ``webhook_outbox`` row per subscribed partner in
the same transaction (:meth:`alert_api.store.SqlAlertStore._publish`), so a
message is never published without its deliveries, nor the reverse.
:class:`DeliveryWorker` works the outbox off on a background thread:

- **Signed.** Each request carries ``webhook-id`` (the message's ``event_id``,
  the same on every retry, so receivers can de-duplicate), ``webhook-timestamp``
  (seconds since the epoch) and ``webhook-signature`` (``v1,`` + base64 of the
  HMAC-SHA256 of ``id.timestamp.body`` under the partner's ``whsec_`` secret),
  verifiable with any Standard Webhooks library.
- **Ordered per partner.** Only a partner's oldest pending row is attempted;
  the next waits until it is delivered or dead. Partners do not wait for each
  other (a pool of threads).
- **Retried** with exponential backoff and jitter after a non-2xx answer, a
  timeout or a refused connection; after ``max_attempts`` the row is *dead*: it
  is listed in the partner's dead letters, which the partner can replay.
- **Durable.** State lives in the database. A claimed row carries a lease; if
  the process dies mid-delivery the lease runs out and the row is sent again
  under the same ``webhook-id``. A row is marked delivered only after a 2xx,
  and never sent again after that.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import sqlalchemy as sa

from alert_api.db import Database, partners, webhook_outbox
from alert_api.metrics import ApiMetrics
from alert_api.models import Clock, utc_now

log = logging.getLogger(__name__)

USER_AGENT = "suibou-webhooks/1"


def sign(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value for one request.

    Examples:
        >>> secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
        >>> sign(secret, "msg_1", 1700000000, '{"a":1}')
        'v1,tDnYFrCIK4MQWDoOot4FXQ7/xKQ3Ta7J5hEfw60KmoA='
    """
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """When to try again.

    Attributes:
        max_attempts: Attempts before a delivery is dead.
        base_s: Delay after the first failure; doubles after each further one.
        max_delay_s: Ceiling of the delay.
        jitter: Fraction of the delay drawn at random (0.5: between half and all of it).
    """

    max_attempts: int = 8
    base_s: float = 2.0
    max_delay_s: float = 600.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_s <= 0 or self.max_delay_s < self.base_s or not 0 <= self.jitter <= 1:
            raise ValueError("max_attempts >= 1, 0 < base_s <= max_delay_s and 0 <= jitter <= 1 are needed")

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt.

        Examples:
            >>> policy = RetryPolicy(base_s=2, max_delay_s=60, jitter=0)
            >>> [policy.delay(n) for n in (1, 2, 3, 6, 10)]
            [2.0, 4.0, 8.0, 60.0, 60.0]
        """
        full = min(self.max_delay_s, self.base_s * 2 ** (attempts - 1))
        draw = rng.random() if rng is not None else random.random()
        return float(full * (1 - self.jitter * draw))


class UnsafeUrl(ValueError):
    """A webhook URL that must not be called."""


def check_url(url: str, *, allow_insecure: bool) -> str:
    """Validates a webhook URL: ``https`` (``http`` only when ``allow_insecure``), a host, no credentials.

    Raises:
        UnsafeUrl: Why not.
    """
    if len(url) > 2048:
        raise UnsafeUrl("the URL is longer than 2048 characters")
    parts = urllib.parse.urlsplit(url)
    allowed = ("https", "http") if allow_insecure else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeUrl(f"the webhook URL must use {' or '.join(allowed)}")
    if not parts.hostname:
        raise UnsafeUrl("the webhook URL needs a host")
    if parts.username or parts.password:
        raise UnsafeUrl("the webhook URL must not carry credentials")
    if not allow_insecure:
        _check_address(parts.hostname, resolve=False)
    return url


def _check_address(host: str, *, resolve: bool) -> None:
    """Refuses loopback, private, link-local and other non-public addresses (server-side request forgery)."""
    addresses: list[str] = []
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if host.lower() == "localhost" or host.lower().endswith(".localhost"):
            raise UnsafeUrl("the webhook host is local") from None
        if resolve:
            try:
                addresses = [str(info[4][0]) for info in socket.getaddrinfo(host, None)]
            except OSError as error:
                raise UnsafeUrl(f"cannot resolve {host}: {error}") from None
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if not ip.is_global or ip.is_multicast:
            raise UnsafeUrl(f"the webhook host {host} is not a public address ({address})")


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One outbox row as the partner sees it."""

    id: int
    event_id: str
    webhook_id: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    last_status: int | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None


def _delivery(row: Any) -> Delivery:
    return Delivery(int(row["id"]), row["event_id"], row["webhook_id"], row["status"], int(row["attempts"]),
                    row["next_attempt_at"], row["last_error"], row["last_status"], row["created_at"],
                    row["delivered_at"])


class Outbox:
    """Reads and replays a partner's deliveries."""

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self.db = database
        self._clock = clock

    def deliveries(self, partner_id: str, *, status: str | None = None, limit: int = 100) -> list[Delivery]:
        o = webhook_outbox.c
        clauses: list[sa.ColumnElement[bool]] = [o.partner_id == partner_id]
        if status is not None:
            clauses.append(o.status == status)
        with self.db.read() as connection:
            rows = connection.execute(sa.select(webhook_outbox).where(*clauses).order_by(o.id.desc()).limit(limit))
            return [_delivery(r) for r in rows.mappings()]

    def replay(self, partner_id: str, event_ids: Sequence[str] | None = None) -> int:
        """Puts dead deliveries back in the queue (all, or those of ``event_ids``); returns how many."""
        o = webhook_outbox.c
        clauses: list[sa.ColumnElement[bool]] = [o.partner_id == partner_id, o.status == "dead"]
        if event_ids is not None:
            clauses.append(o.event_id.in_(list(event_ids)))
        with self.db.begin() as connection:
            result = connection.execute(webhook_outbox.update().where(*clauses).values(
                status="pending", attempts=0, next_attempt_at=self._clock(), lease_until=None))
        return int(result.rowcount)

    def counts(self) -> dict[str, int]:
        o = webhook_outbox.c
        with self.db.read() as connection:
            rows = connection.execute(sa.select(o.status, sa.func.count()).group_by(o.status)).all()
        counts = {"pending": 0, "delivered": 0, "dead": 0}
        counts.update({status: int(n) for status, n in rows})
        return counts


@dataclasses.dataclass(frozen=True)
class _Claim:
    id: int
    partner_id: str
    webhook_id: str
    payload: str
    attempts: int
    url: str
    secret: str


Sender = Callable[[str, bytes, dict[str, str]], int]


class DeliveryWorker:
    """Delivers the outbox on a background thread (see the module docstring).

    Args:
        database: The alert store's database.
        policy: Retries and backoff.
        clock: Source of times (tests pass a fake).
        concurrency: Partners delivered to at the same time.
        timeout_s: Longest wait for one partner's answer.
        poll_s: How often the outbox is looked at without a wake-up.
        allow_private: Allow webhook hosts on private or loopback addresses (tests, closed networks).
        sender: Sends one request and returns the HTTP status; defaults to an ``httpx`` client.
        metrics: Counts deliveries by outcome.
    """

    def __init__(self, database: Database, policy: RetryPolicy | None = None, clock: Clock = utc_now, *,
                 concurrency: int = 32, timeout_s: float = 10.0, poll_s: float = 0.5, allow_private: bool = False,
                 sender: Sender | None = None, metrics: ApiMetrics | None = None) -> None:
        self.db = database
        self._metrics = metrics
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._concurrency = concurrency
        self._timeout_s = timeout_s
        self._poll_s = poll_s
        self._allow_private = allow_private
        self._client: httpx.Client | None = None
        self._send = sender or self._http_send
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._rng = random.Random()
        self.sent = 0
        self.failed = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Looks at the outbox now (called after each publication)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        if self._send == self._http_send and self._client is None:
            self._client = httpx.Client(timeout=self._timeout_s, follow_redirects=False,
                                        limits=httpx.Limits(max_connections=self._concurrency * 2),
                                        headers={"user-agent": USER_AGENT})
        self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stops taking new deliveries, waits for those in flight and closes the client."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _run(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(self._concurrency, thread_name_prefix="webhook") as pool:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    claims = self._claim()
                except Exception:  # noqa: BLE001 - keep delivering after a database hiccup
                    log.exception("webhook outbox could not be read")
                    claims = []
                for claim in claims:
                    pool.submit(self._deliver, claim)
                self._wake.wait(self._wait_s())

    def _wait_s(self) -> float:
        """Until the next retry falls due, at most ``poll_s``."""
        o = webhook_outbox.c
        try:
            with self.db.read() as connection:
                due = connection.execute(sa.select(sa.func.min(o.next_attempt_at)).where(
                    o.status == "pending", o.lease_until.is_(None))).scalar_one_or_none()
        except Exception:  # noqa: BLE001 - fall back to polling
            return self._poll_s
        if due is None:
            return self._poll_s
        wait: float = (due - self._clock()).total_seconds()
        return min(self._poll_s, max(0.01, wait))

    def run_once(self) -> int:
        """Delivers every due head of the outbox on this thread; returns how many were attempted (tests)."""
        claims = self._claim()
        for claim in claims:
            self._deliver(claim)
        return len(claims)

    def _claim(self) -> list[_Claim]:
        """Leases the oldest pending row of each partner that is due and not already in flight."""
        o, p = webhook_outbox.c, partners.c
        now = self._clock()
        heads = (sa.select(o.partner_id, sa.func.min(o.id).label("head_id"))
                 .where(o.status == "pending").group_by(o.partner_id).subquery())
        statement = (
            sa.select(o.id, o.partner_id, o.webhook_id, o.payload, o.attempts, p.webhook_url, p.webhook_secret)
            .join(heads, heads.c.head_id == o.id)
            .join(partners, p.partner_id == o.partner_id)
            .where(o.next_attempt_at <= now, sa.or_(o.lease_until.is_(None), o.lease_until < now),
                   p.webhook_url.is_not(None), p.disabled.is_(False))
        )
        lease = now + dt.timedelta(seconds=self._timeout_s + 5)
        claims = []
        with self.db.begin() as connection:
            for row in connection.execute(statement).mappings().all():
                with self._lock:
                    if row["partner_id"] in self._in_flight:
                        continue
                taken = connection.execute(webhook_outbox.update().where(
                    o.id == row["id"], o.status == "pending",
                    sa.or_(o.lease_until.is_(None), o.lease_until < now),
                ).values(lease_until=lease)).rowcount
                if taken == 1:
                    claims.append(_Claim(int(row["id"]), row["partner_id"], row["webhook_id"], row["payload"],
                                         int(row["attempts"]), row["webhook_url"], row["webhook_secret"]))
        with self._lock:
            self._in_flight.update(c.partner_id for c in claims)
        return claims

    def _deliver(self, claim: _Claim) -> None:
        try:
            status, error = self._attempt(claim)
            self._record(claim, status, error)
        except Exception:  # noqa: BLE001 - the lease runs out and the row is tried again
            log.exception("webhook delivery %s to %s failed unexpectedly", claim.webhook_id, claim.partner_id)
        finally:
            with self._lock:
                self._in_flight.discard(claim.partner_id)
            self._wake.set()

    def _attempt(self, claim: _Claim) -> tuple[int | None, str | None]:
        timestamp = int(self._clock().timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": claim.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(claim.secret, claim.webhook_id, timestamp, claim.payload),
        }
        try:
            if not self._allow_private:
                host = urllib.parse.urlsplit(claim.url).hostname or ""
                _check_address(host, resolve=True)
            status = self._send(claim.url, claim.payload.encode(), headers)
        except UnsafeUrl as error:
            return None, f"refused: {error}"
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error}"[:500]
        if 200 <= status < 300:
            return status, None
        return status, f"HTTP {status}"

    def _http_send(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        assert self._client is not None
        return self._client.post(url, content=body, headers=headers).status_code

    def _record(self, claim: _Claim, status: int | None, error: str | None) -> None:
        now = self._clock()
        attempts = claim.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status": status, "last_error": error,
                                  "lease_until": None}
        if error is None:
            values.update(status="delivered", delivered_at=now)
            self.sent += 1
        elif attempts >= self.policy.max_attempts:
            values.update(status="dead")
            self.failed += 1
            log.warning("webhook %s to %s is dead after %d attempts: %s", claim.webhook_id, claim.partner_id,
                        attempts, error)
        else:
            values.update(next_attempt_at=now + dt.timedelta(seconds=self.policy.delay(attempts, self._rng)))
            self.failed += 1
        with self.db.begin() as connection:
            connection.execute(webhook_outbox.update().where(webhook_outbox.c.id == claim.id).values(**values))
        if self._metrics is not None:
            outcome = {"delivered": "delivered", "dead": "dead_lettered"}.get(values.get("status", ""), "failed")
            self._metrics.webhook_outcome(outcome)


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.02) -> bool:
    """Polls ``predicate`` until true or ``timeout_s`` passes; returns its last value (tests, bench)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)


__all__ = ["Delivery", "DeliveryWorker", "Outbox", "RetryPolicy", "UnsafeUrl", "check_url", "sign", "wait_until"]
