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
- **Ordered per partner.** Only a partner's oldest pending row is attempted,
  one at a time; the next waits until it is delivered or dead.
- **Partners do not wait for each other.** Deliveries are asynchronous
  (``httpx.AsyncClient`` on the worker's own event loop). Each attempt has one
  deadline, ``timeout_s``, for DNS, connecting, TLS, sending and the answer
  together. There are two lanes: ``concurrency`` deliveries at once to
  partners that answer quickly, and ``concurrency // 2`` to *slow* partners,
  those whose last attempt took over ``slow_after_s`` or got no answer. A
  delivery still running after ``slow_after_s`` moves to the slow lane at
  once, freeing its place, so a partner that turns slow delays the others by
  at most ``slow_after_s``, once. No new delivery starts while
  ``3 * concurrency`` are in flight. Among due partners the one waiting
  longest goes first.
- **Every failure is an attempt.** A non-2xx answer, a timeout, a refused
  connection, a URL that does not parse, a name that does not resolve, a
  refused address, a TLS error: each counts, with its reason in ``last_error``
  (never an address the host resolved to), and is retried with exponential
  backoff and jitter; after ``max_attempts`` the row is *dead*: it is listed in
  the partner's dead letters, which the partner can replay. The default, 21
  attempts at most 10 minutes apart, retries for 1 to 2 hours, so a partner
  that is down for minutes gets every message afterwards, in order.
- **Safe targets.** Each attempt resolves the host and connects only to an
  address it judged public (:mod:`alert_api.webhook_targets`).
- **Durable.** State lives in the database. A claimed row carries a lease; if
  the process dies mid-delivery the lease runs out and the row is sent again
  under the same ``webhook-id``. A row is marked delivered only after a 2xx,
  and never sent again after that.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import random
import resource
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import sqlalchemy as sa

from alert_api.db import Database, partners, webhook_outbox
from alert_api.metrics import ApiMetrics
from alert_api.models import Clock, utc_now
from alert_api.webhook_targets import (
    PinnedBackend,
    PinnedTransport,
    Resolver,
    UnsafeUrl,
    check_url,
    normalise_url,
    resolve_checked,
    system_resolver,
    without_addresses,
)

log = logging.getLogger(__name__)

USER_AGENT = "suibou-webhooks/1"

#: Most bytes of a partner's answer that are read (the rest is dropped with its connection).
MAX_ANSWER_BYTES = 64 * 1024

#: Longest failure reason kept in ``last_error``.
MAX_ERROR_CHARS = 300


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

    The defaults retry for at least an hour (the sum of the 20 delays, each at
    least half its nominal value) and at most about two.

    Examples:
        >>> policy = RetryPolicy()
        >>> low = RetryPolicy(jitter=0).retrying_s() * (1 - policy.jitter)
        >>> round(low / 3600, 2), round(RetryPolicy(jitter=0).retrying_s() / 3600, 2)
        (1.06, 2.12)
    """

    max_attempts: int = 21
    base_s: float = 2.0
    max_delay_s: float = 600.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_s <= 0 or self.max_delay_s < self.base_s or not 0 <= self.jitter <= 1:
            raise ValueError("max_attempts >= 1, 0 < base_s <= max_delay_s and 0 <= jitter <= 1 are needed")

    def retrying_s(self) -> float:
        """The nominal time from the first attempt to the last (no jitter drawn)."""
        return sum(min(self.max_delay_s, self.base_s * 2 ** (n - 1)) for n in range(1, self.max_attempts))

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


def describe_failure(error: BaseException, timeout_s: float) -> str:
    """The ``last_error`` of a failed attempt: what failed, never an address the host resolved to.

    Examples:
        >>> describe_failure(UnsafeUrl("the webhook host is not a public address"), 10)
        'refused: the webhook host is not a public address'
        >>> describe_failure(TimeoutError(), 2.5)
        'no answer within 2.5 s'
        >>> describe_failure(httpx.ConnectError("[Errno 111] Connection refused to 10.0.0.7"), 10)
        'ConnectError: [Errno 111] Connection refused to <address>'
    """
    if isinstance(error, UnsafeUrl):
        text = f"refused: {error}"
    elif isinstance(error, (TimeoutError, httpx.TimeoutException)):
        text = f"no answer within {timeout_s:g} s"
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return without_addresses(text)[:MAX_ERROR_CHARS]


#: Connection pools of the delivery client, each for a share of the partners: httpcore looks at every
#: connection of a pool for each request, so one pool of hundreds of connections costs more per request.
POOL_SHARDS = 16


class _Clients:
    """The delivery's HTTP clients, one per shard of partners (a partner always uses the same one)."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self._clients = clients

    def for_partner(self, partner_id: str) -> httpx.AsyncClient:
        return self._clients[zlib.crc32(partner_id.encode()) % len(self._clients)]

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def descriptor_budget() -> int:
    """Connections webhook delivery may hold: a quarter of the process's descriptor limit (at least 4), so that
    slow partners cannot take the descriptors the API needs to answer requests."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 1 << 16
    return 1 << 16 if soft == resource.RLIM_INFINITY else max(4, soft // 4)


class DeliveryWorker:
    """Delivers the outbox on a background thread running an event loop (see the module docstring).

    Args:
        database: The alert store's database.
        policy: Retries and backoff.
        clock: Source of times (tests pass a fake).
        concurrency: Deliveries in flight at once to partners that answer quickly (each to a different
            partner); slow partners get half as many more.
        timeout_s: Deadline of one attempt, DNS to answer.
        poll_s: How often the outbox is looked at without a wake-up.
        allow_private: Allow webhook hosts on private or loopback addresses (tests, closed networks).
        sender: Sends one request and returns the HTTP status (tests); defaults to an ``httpx.AsyncClient``
            whose connections go only to judged addresses. Runs on a worker thread.
        resolver: Resolves host names (tests pass a fake).
        slow_after_s: An attempt longer than this marks its partner slow.
        metrics: Counts deliveries by outcome.
    """

    def __init__(self, database: Database, policy: RetryPolicy | None = None, clock: Clock = utc_now, *,
                 concurrency: int = 64, timeout_s: float = 10.0, poll_s: float = 0.5, allow_private: bool = False,
                 sender: Sender | None = None, resolver: Resolver = system_resolver,
                 slow_after_s: float = 1.0, metrics: ApiMetrics | None = None) -> None:
        self.db = database
        self._metrics = metrics
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._concurrency = max(1, concurrency)
        self._slow_room = max(1, self._concurrency // 2)
        self._most_in_flight = min(3 * self._concurrency, descriptor_budget())
        self._timeout_s = timeout_s
        self._poll_s = poll_s
        self._allow_private = allow_private
        self._sender = sender
        self._resolver = resolver
        self._slow_after_s = slow_after_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._results: asyncio.Queue[tuple[_Claim, int | None, str | None, asyncio.Future[None]]] | None = None
        self._in_flight: set[str] = set()
        self._slow: set[str] = set()  # partners whose last (or running) attempt was slow
        self._lock = threading.Lock()
        self._rng = random.Random()
        self.sent = 0
        self.failed = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Looks at the outbox now (called after each publication, from any thread)."""
        loop, event = self._loop, self._wake_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop has just closed
                loop.call_soon_threadsafe(event.set)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)
        self._thread.start()

    def request_stop(self, grace_s: float | None = None) -> None:
        """Stops taking new deliveries, without waiting; those in flight get ``grace_s`` (default 5 s) to finish."""
        if grace_s is not None:
            self._stop_grace_s = grace_s
        self._stopping.set()
        self.wake()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops: deliveries still in flight after ``timeout`` are cancelled.

        A cancelled delivery keeps its lease and is sent again, under the same
        ``webhook-id``, once the lease runs out (at least once).
        """
        self.request_stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout + 1)
            if self._thread.is_alive():
                log.warning("webhook delivery did not stop within %.0f s", timeout + 1)
            self._thread = None

    #: How long a stop lets deliveries in flight finish before cancelling them.
    _stop_grace_s = 5.0

    def _run(self) -> None:
        asyncio.run(self._main())

    def _client(self) -> _Clients | None:
        if self._sender is not None:
            return None
        # As many connections as deliveries may be in flight: a slow partner's connection never holds up another's.
        limits = httpx.Limits(max_connections=self._most_in_flight, max_keepalive_connections=2)
        backend = PinnedBackend(self._resolver, allow_private=self._allow_private)
        ssl_context = httpx.create_ssl_context(trust_env=False)
        return _Clients([
            httpx.AsyncClient(transport=PinnedTransport(backend, limits, ssl_context), timeout=self._timeout_s,
                              follow_redirects=False, trust_env=False, headers={"user-agent": USER_AGENT})
            for _ in range(POOL_SHARDS)])

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        # The loop's worker threads run the outbox queries, the result writes and every connection's address
        # lookup (anyio resolves even an address); sized so that lookups never queue behind database work.
        self._loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
            max_workers=16, thread_name_prefix="webhook-io"))
        self._wake_event = asyncio.Event()
        self._results = asyncio.Queue()
        recorder = asyncio.create_task(self._recorder(self._results))
        client = self._client()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                self._wake_event.clear()
                with self._lock:
                    slow_busy = len(self._in_flight & self._slow)
                    fast_free = self._concurrency - (len(self._in_flight) - slow_busy)
                    fast_free = min(fast_free, self._most_in_flight - len(self._in_flight))
                    slow_free = min(self._slow_room - slow_busy, self._most_in_flight - len(self._in_flight))
                claims: list[_Claim] = []
                if fast_free > 0 or slow_free > 0:
                    claims = await asyncio.to_thread(self._claim_safely, max(0, fast_free), max(0, slow_free))
                for claim in claims:
                    task = asyncio.create_task(self._deliver(client, claim))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                # Completions wake the loop; without them, wait for the next retry that falls due.
                wait_s = self._poll_s if tasks else await asyncio.to_thread(self._wait_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_event.wait(), wait_s)
            if tasks:  # let deliveries in flight finish, within the stop's grace
                await asyncio.wait(tasks, timeout=self._stop_grace_s)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for _ in range(200):  # results still to write, for at most 2 s
                if self._results.empty():
                    break
                await asyncio.sleep(0.01)
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)
            self._results = None
            if client is not None:
                await client.aclose()
            self._loop = None

    async def _recorder(self, results: asyncio.Queue[tuple[_Claim, int | None, str | None, asyncio.Future[None]]]
                        ) -> None:
        """Writes the results of finished attempts, all that are waiting in one transaction."""
        while True:
            batch = [await results.get()]
            while not results.empty():
                batch.append(results.get_nowait())
            try:
                await asyncio.to_thread(self._record_many, [(claim, status, error) for claim, status, error, _ in
                                                            batch])
            except Exception:  # the leases run out and the rows are tried again
                log.exception("%d webhook delivery results could not be recorded", len(batch))
            for *_, done in batch:
                if not done.done():
                    done.set_result(None)

    def _claim_safely(self, fast: int, slow: int) -> list[_Claim]:
        try:
            return self._claim(fast, slow)
        except Exception:  # keep delivering after a database hiccup
            log.exception("webhook outbox could not be read")
            return []

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
        """Delivers every due head of the outbox and waits for the results; returns how many were attempted
        (tests)."""
        claims = self._claim()

        async def deliver_all() -> None:
            client = self._client()
            try:
                await asyncio.gather(*(self._deliver(client, claim) for claim in claims))
            finally:
                if client is not None:
                    await client.aclose()

        if claims:
            asyncio.run(deliver_all())
        return len(claims)

    def _claim(self, fast: int | None = None, slow: int | None = None) -> list[_Claim]:
        """Leases the oldest pending row of due partners not already in flight, longest waiting first.

        At most ``fast`` rows of partners not marked slow and ``slow`` of partners marked slow (no limit: all).
        """
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
            .order_by(o.next_attempt_at, o.id)
        )
        lease = now + dt.timedelta(seconds=self._timeout_s + 5)
        claims: list[_Claim] = []
        with self._lock:
            busy = set(self._in_flight)
            marked = set(self._slow)
        room: dict[bool, int | None] = {False: fast, True: slow}
        with self.db.begin() as connection:
            for row in connection.execute(statement).mappings().all():
                if room[False] == 0 and room[True] == 0:
                    break
                partner = row["partner_id"]
                lane = partner in marked
                if partner in busy or room[lane] == 0:
                    continue
                taken = connection.execute(webhook_outbox.update().where(
                    o.id == row["id"], o.status == "pending",
                    sa.or_(o.lease_until.is_(None), o.lease_until < now),
                ).values(lease_until=lease)).rowcount
                if taken == 1:
                    busy.add(partner)
                    left = room[lane]
                    room[lane] = None if left is None else left - 1
                    claims.append(_Claim(int(row["id"]), partner, row["webhook_id"], row["payload"],
                                         int(row["attempts"]), row["webhook_url"], row["webhook_secret"]))
        with self._lock:
            self._in_flight.update(c.partner_id for c in claims)
        return claims

    async def _deliver(self, client: _Clients | None, claim: _Claim) -> None:
        started = time.monotonic()
        slow_lane = asyncio.get_running_loop().call_later(self._slow_after_s, self._turned_slow, claim.partner_id)
        try:
            try:
                status, error = await asyncio.wait_for(self._attempt(client, claim), self._timeout_s)
            except Exception as failure:  # noqa: BLE001 - every failure to deliver counts as an attempt
                # (a stop's cancellation is not an Exception: the lease runs out, the row is sent again)
                status, error = None, describe_failure(failure, self._timeout_s)
                if not isinstance(failure, (UnsafeUrl, TimeoutError, httpx.HTTPError)):
                    log.warning("webhook %s to %s failed: %r", claim.webhook_id, claim.partner_id, failure)
            self._note_speed(claim.partner_id, time.monotonic() - started, status)
            if self._results is not None:
                written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._results.put_nowait((claim, status, error, written))
                await written
            else:
                try:
                    await asyncio.to_thread(self._record, claim, status, error)
                except Exception:  # the lease runs out and the row is tried again
                    log.exception("webhook delivery %s to %s could not be recorded", claim.webhook_id,
                                  claim.partner_id)
        finally:
            slow_lane.cancel()
            with self._lock:
                self._in_flight.discard(claim.partner_id)
            self.wake()

    def _turned_slow(self, partner_id: str) -> None:
        """A delivery has run ``slow_after_s``: its partner is slow; its place in the fast lane is free."""
        with self._lock:
            self._slow.add(partner_id)
        self.wake()

    def _note_speed(self, partner_id: str, elapsed_s: float, status: int | None) -> None:
        with self._lock:
            if status is None or elapsed_s > self._slow_after_s:
                self._slow.add(partner_id)
            else:
                self._slow.discard(partner_id)

    async def _attempt(self, client: _Clients | None, claim: _Claim) -> tuple[int | None, str | None]:
        """One attempt; raises whatever kept it from getting an answer."""
        target = normalise_url(claim.url, allow_insecure=self._allow_private)
        timestamp = int(self._clock().timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": claim.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(claim.secret, claim.webhook_id, timestamp, claim.payload),
        }
        body = claim.payload.encode()
        if client is None:
            assert self._sender is not None
            if not self._allow_private:
                await asyncio.to_thread(resolve_checked, target, self._resolver, allow_private=False)
            status = await asyncio.to_thread(self._sender, target.url, body, headers)
        else:
            async with client.for_partner(claim.partner_id).stream("POST", target.url, content=body,
                                                                   headers=headers) as response:
                status = response.status_code
                # Read a short answer to the end, so its connection can be reused; a longer one is cut off.
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > MAX_ANSWER_BYTES:
                        break
        if 200 <= status < 300:
            return status, None
        return status, f"HTTP {status}"

    def _record(self, claim: _Claim, status: int | None, error: str | None) -> None:
        self._record_many([(claim, status, error)])

    def _record_many(self, results: Sequence[tuple[_Claim, int | None, str | None]]) -> None:
        """Records attempts in one transaction: delivered, dead, or due again after a backoff."""
        now = self._clock()
        updates = []
        for claim, status, error in results:
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
            updates.append((claim.id, values))
        with self.db.begin() as connection:
            for row_id, values in updates:
                connection.execute(webhook_outbox.update().where(webhook_outbox.c.id == row_id).values(**values))
        if self._metrics is not None:
            for _, values in updates:
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


__all__ = [
    "Delivery", "DeliveryWorker", "Outbox", "RetryPolicy", "UnsafeUrl", "check_url", "describe_failure", "sign",
    "wait_until",
]
