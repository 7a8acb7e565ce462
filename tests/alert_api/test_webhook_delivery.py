"""Webhook delivery under failure: every failure is an attempt, slow partners do not delay the others, and one
attempt has one deadline."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from alert_api.accounts import AccountStore
from alert_api.db import Database
from alert_api.store import SqlAlertStore
from alert_api.webhooks import DeliveryWorker, Outbox, RetryPolicy, wait_until
from suibou.contracts import AlertEvent, MsgType

MakeAlert = Callable[..., AlertEvent]


def actual(make_alert: MakeAlert, alert_id: str = "ZEN", sequence: int = 0) -> AlertEvent:
    return make_alert(alert_id, sequence, minutes=sequence, msg_type=MsgType.ALERT if sequence == 0 else MsgType.UPDATE,
                      exercise=False, drill_id=None, references=(f"{alert_id}.{sequence - 1}",) if sequence else ())


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.close()


def partner_with_url(database: Database, url: str, name: str = "nav") -> str:
    """A partner whose stored URL is ``url`` as it is (as one stored before URLs were normalised could be)."""
    accounts = AccountStore(database)
    partner, _ = accounts.create_partner(name, ["alerts:read", "webhooks:receive"])
    accounts.set_webhook(partner.partner_id, url, None)
    return partner.partner_id


def public(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]


def _raise(error: BaseException) -> Callable[..., int]:
    def send(url: str, body: bytes, headers: dict[str, str]) -> int:
        raise error

    return send


def _slow(url: str, body: bytes, headers: dict[str, str]) -> int:
    time.sleep(1.0)
    return 204


def _no_dns(host: str, port: int) -> list[str]:
    raise socket.gaierror(-2, "Name or service not known")


def _rebound(host: str, port: int) -> list[str]:
    return ["10.0.0.7"]


@pytest.mark.parametrize(("url", "sender", "resolver", "reason"), [
    ("https://nav.example:99999/hooks", None, public, "refused: the webhook URL has an invalid port or host"),
    ("https://nav example/hooks", None, public, "refused: the webhook URL must not contain spaces"),
    ("https://nav.example/a\nb", None, public, "refused: the webhook URL must not contain spaces"),
    ("https://ナビ\u3000.example/", None, public, "refused: the webhook URL must not contain spaces"),
    ("https://nav.example/hooks", None, _no_dns, "refused: the webhook host does not resolve"),
    ("https://nav.example/hooks", None, _rebound, "refused: the webhook host is not a public address"),
    ("https://2130706433/hooks", None, public, "refused: the webhook host is not a public address"),
    ("https://nav.example/hooks", _raise(ssl.SSLError(1, "CERTIFICATE_VERIFY_FAILED")), public, "SSLError"),
    ("https://nav.example/hooks", _raise(RuntimeError("receiver library bug")), public, "RuntimeError"),
    ("https://nav.example/hooks", _slow, public, "no answer within 0.3 s"),
])
def test_every_failure_is_an_attempt_with_backoff_then_a_dead_letter_and_the_queue_moves_on(
    database: Database, make_alert: MakeAlert, url: str, sender: Callable[..., int] | None,
    resolver: Callable[[str, int], list[str]], reason: str
) -> None:
    store = SqlAlertStore(database=database)
    partner = partner_with_url(database, url)
    store.add(actual(make_alert))
    store.add(actual(make_alert, sequence=1))
    now = [dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)]
    calls: list[str] = []

    def record_calls(u: str, body: bytes, headers: dict[str, str]) -> int:
        calls.append(headers["webhook-id"])
        return (sender or (lambda *a: 204))(u, body, headers)

    policy = RetryPolicy(max_attempts=3, base_s=10, max_delay_s=100, jitter=0)
    worker = DeliveryWorker(database, policy, lambda: now[0], timeout_s=0.3, sender=record_calls, resolver=resolver)
    outbox = Outbox(database)

    def head() -> Any:
        return {d.event_id: d for d in outbox.deliveries(partner)}["ZEN.0"]

    assert worker.run_once() == 1
    first = head()
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.last_error is not None and first.last_error.startswith(reason), first.last_error
    assert "10.0.0.7" not in first.last_error and "127.0.0.1" not in first.last_error
    assert first.next_attempt_at > now[0]  # backed off
    assert worker.run_once() == 0  # not due yet
    now[0] += dt.timedelta(seconds=10)
    assert worker.run_once() == 1 and head().attempts == 2
    now[0] += dt.timedelta(seconds=20)
    assert worker.run_once() == 1
    assert (head().status, head().attempts) == ("dead", 3)
    # The dead head no longer holds the partner's queue: the next message is attempted at once.
    assert worker.run_once() == 1
    assert {d.event_id: d for d in outbox.deliveries(partner)}["ZEN.1"].attempts == 1
    store.close()


class Receivers:
    """Loopback receivers: a path under /slow/ answers after ``slow_s``, any other at once."""

    def __init__(self, slow_s: float) -> None:
        self.arrivals: dict[str, float] = {}
        self.lock = threading.Lock()
        receivers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # http.server's name
                self.rfile.read(int(self.headers["content-length"]))
                if self.path.startswith("/slow/"):
                    time.sleep(slow_s)
                with receivers.lock:
                    receivers.arrivals.setdefault(self.path, time.monotonic())
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_slow_partners_do_not_delay_the_others(database: Database, make_alert: MakeAlert) -> None:
    receivers = Receivers(slow_s=5.0)
    store = SqlAlertStore(database=database)
    # The slow partners subscribed first, so their deliveries are the oldest and are started first.
    slow = [partner_with_url(database, f"{receivers.base}/slow/{n}", f"slow{n}") for n in range(8)]
    fast = [partner_with_url(database, f"{receivers.base}/fast/{n}", f"fast{n}") for n in range(8)]
    worker = DeliveryWorker(database, RetryPolicy(), concurrency=4, timeout_s=5, allow_private=True,
                            slow_after_s=0.2)
    store.subscribe(worker.wake)
    worker.start()
    try:
        published = time.monotonic()
        store.add(actual(make_alert))
        assert wait_until(lambda: all(f"/fast/{n}" in receivers.arrivals for n in range(len(fast))), 20)
        fast_done = max(receivers.arrivals[f"/fast/{n}"] for n in range(len(fast))) - published
        # Without lanes, 4 workers busy with 8 slow partners for 5 s each keep the fast ones waiting 10 s.
        assert fast_done < 3.0, f"fast partners waited {fast_done:.2f} s"
        assert not any(f"/slow/{n}" in receivers.arrivals for n in range(len(slow)))  # still answering
    finally:
        worker.stop(timeout=0.5)
        store.close()
        receivers.close()


def test_one_attempt_has_one_deadline_for_connecting_sending_and_the_answer(
    database: Database, make_alert: MakeAlert
) -> None:
    """A receiver that answers one header byte every 0.2 s never trips a per-read timeout; the attempt's
    deadline (0.5 s) ends it all the same."""
    trickler = socket.socket()
    trickler.bind(("127.0.0.1", 0))
    trickler.listen(8)
    stop = threading.Event()

    def trickle(connection: socket.socket) -> None:
        with connection:
            try:
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.wait(0.2):
                    connection.sendall(b"a")
            except OSError:
                pass

    def accept() -> None:
        trickler.settimeout(0.1)
        while not stop.is_set():
            try:
                threading.Thread(target=trickle, args=(trickler.accept()[0],), daemon=True).start()
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    store = SqlAlertStore(database=database)
    partner = partner_with_url(database, f"http://127.0.0.1:{trickler.getsockname()[1]}/hooks")
    worker = DeliveryWorker(database, RetryPolicy(base_s=60), timeout_s=0.5, allow_private=True)
    store.subscribe(worker.wake)
    worker.start()
    try:
        started = time.monotonic()
        store.add(actual(make_alert))
        assert wait_until(lambda: Outbox(database).deliveries(partner)[0].attempts == 1, 10)
        assert time.monotonic() - started < 5.0
        [delivery] = Outbox(database).deliveries(partner)
        assert (delivery.status, delivery.last_error) == ("pending", "no answer within 0.5 s")
    finally:
        worker.stop(timeout=0.5)
        stop.set()
        trickler.close()
        store.close()


def test_webhook_connections_never_take_more_than_a_quarter_of_the_descriptor_limit(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda which: (200, 4096))
    worker = DeliveryWorker(database, concurrency=64)
    assert worker._most_in_flight == 50  # not 3 x 64
    monkeypatch.setattr(resource, "getrlimit", lambda which: (100_000, 100_000))
    assert DeliveryWorker(database, concurrency=64)._most_in_flight == 192


def test_a_partner_down_for_ten_minutes_gets_every_message_afterwards_in_order(
    database: Database, make_alert: MakeAlert
) -> None:
    """The default retry policy outlasts a 10-minute outage: nothing goes to the dead letters."""
    store = SqlAlertStore(database=database)
    partner = partner_with_url(database, "https://nav.example/hooks")
    start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    back_at = start + dt.timedelta(minutes=10)
    now = [start]
    arrived: list[str] = []

    def down_then_up(url: str, body: bytes, headers: dict[str, str]) -> int:
        if now[0] < back_at:
            raise ConnectionRefusedError(111, "Connection refused")
        arrived.append(headers["webhook-id"])
        return 204

    worker = DeliveryWorker(database, RetryPolicy(), lambda: now[0], sender=down_then_up, resolver=public)
    outbox = Outbox(database)
    for sequence in range(5):  # alerts keep coming while the partner is down
        store.add(actual(make_alert, sequence=sequence))
    for _ in range(200):
        if worker.run_once() == 0:
            pending = [d for d in outbox.deliveries(partner) if d.status == "pending"]
            if not pending:
                break
            now[0] = max(now[0], min(pending, key=lambda d: d.id).next_attempt_at)  # on to the head's next retry
    deliveries = outbox.deliveries(partner)
    assert [d.status for d in deliveries] == ["delivered"] * 5
    assert arrived == [f"ZEN.{n}" for n in range(5)]
    # The first retry after the partner is back comes within the backoff's ceiling, 10 minutes.
    assert now[0] - back_at <= dt.timedelta(minutes=10)
    store.close()
