"""Webhook fan-out: how long until every subscribed partner has received an alert, and whether slow
partners delay the others.

Targets (issues): 100 partners all receive an alert within 2 s; with 1,000 partners of which 15 % are slow
(they answer after ``--slow-s``), the fast partners' latency stays close to what it is when every partner is fast.

The real delivery path: the alert is published through the store (outbox rows
written in the publishing transaction), the delivery worker signs each request
(Standard Webhooks) and POSTs it over HTTP to a receiver on a loopback port,
one path per partner; the receivers run on uvicorn in a process of their own,
and every signature is checked with the ``standardwebhooks`` library. Measured from the publishing call to the last
partner's receipt. The baseline is one partner, measured in the same run; the
result is also given as a ratio to it.

``--slow-fraction F`` (e.g. 0.15) runs the isolation benchmark instead: the
same number of partners twice in one run, all fast (the baseline), then with a
fraction F answering after ``--slow-s`` seconds (spread evenly among the
partners); it reports the fast partners' latency (publication to receipt)
median and p99 in both, and their ratio.

Usage: ``.venv/bin/python bench/api_webhook_fanout.py [--partners 100] [--alerts 10] [--database-url URL]``,
``.venv/bin/python bench/api_webhook_fanout.py --partners 1000 --alerts 5 --slow-fraction 0.15 [--slow-s 3]``
(SQLite in a temporary folder by default, as the API runs embedded).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn
from standardwebhooks import Webhook

from alert_api.accounts import AccountStore
from alert_api.store import SqlAlertStore
from alert_api.webhooks import DeliveryWorker, RetryPolicy
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType

RING = ((139.60, 35.70), (139.61, 35.70), (139.61, 35.71), (139.60, 35.71), (139.60, 35.70))


def _serve_receivers(port: Any, arrivals: Any, slow_s: float) -> None:
    """The receivers' process: an ASGI app on uvicorn; records each request (path, arrival time, headers, body)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # the sender gave up on this attempt (deadline)
                arrivals.put((scope["path"], time.monotonic(), None, None))
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        at = time.monotonic()  # system-wide: comparable with the publishing process's clock
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        arrivals.put((scope["path"], at, headers, body))
        if scope["path"].startswith("/slow/"):
            await asyncio.sleep(slow_s)
        await send({"type": "http.response.start", "status": 204, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port.put(sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level="error", backlog=1024)).run(sockets=[sock])


class Receivers:
    """Partners' receivers in a process of their own, on uvicorn (as partners are elsewhere: they do not compete
    with the delivery worker for this process's interpreter lock). Partner ``p`` posts to ``/p/<p>``, or to
    ``/slow/<p>`` when it answers only after ``slow_s`` seconds. Arrivals are recorded when a request came in,
    and every signature is verified (in this process) with the ``standardwebhooks`` library.
    """

    def __init__(self, slow_s: float = 0.0) -> None:
        self.slow: set[str] = set()
        self.secrets: dict[str, Webhook] = {}
        self.arrivals: dict[tuple[str, str], float] = {}
        self.bad = 0
        self.cut_off = 0
        self.lock = threading.Lock()
        context = multiprocessing.get_context("spawn")
        port: Any = context.Queue()
        self._queue: Any = context.Queue()
        self._process = context.Process(target=_serve_receivers, args=(port, self._queue, slow_s), daemon=True)
        self._process.start()
        self.port = int(port.get(timeout=60))
        threading.Thread(target=self._collect, daemon=True).start()

    def url(self, partner_id: str) -> str:
        kind = "slow" if partner_id in self.slow else "p"
        return f"http://127.0.0.1:{self.port}/{kind}/{partner_id}"

    def _collect(self) -> None:
        while True:
            path, at, headers, body = self._queue.get()
            partner = path.rsplit("/", 1)[-1]
            with self.lock:
                if headers is None:
                    self.cut_off += 1
                    continue
                try:
                    self.secrets[partner].verify(body, headers)
                except Exception:  # noqa: BLE001 - counted as a bad delivery
                    self.bad += 1
                    continue
                self.arrivals.setdefault((partner, headers["webhook-id"]), at)


def run(partners: int, alerts: int, url: str | None, receivers: Receivers, label: str,
        slow_fraction: float = 0.0, concurrency: int = 64) -> tuple[list[float], list[float]]:
    """Publishes ``alerts`` alerts one after the other, each once every partner has the previous one.

    Returns:
        Per alert, the time until the last fast partner's receipt; and every fast partner's latency.
    """
    folder = Path(tempfile.mkdtemp())
    store = SqlAlertStore(url or f"sqlite:///{folder / 'alerts.db'}")
    store.db.truncate_all()
    accounts = AccountStore(store.db)
    fast: set[str] = set()
    for n in range(partners):
        partner, _ = accounts.create_partner(f"{label}-{n}", ["alerts:read", "webhooks:receive"])
        if int((n + 1) * slow_fraction) > int(n * slow_fraction):  # spread evenly
            receivers.slow.add(partner.partner_id)
        else:
            fast.add(partner.partner_id)
        partner = accounts.set_webhook(partner.partner_id, receivers.url(partner.partner_id), None)
        assert partner.webhook_secret is not None
        with receivers.lock:
            receivers.secrets[partner.partner_id] = Webhook(partner.webhook_secret)
    worker = DeliveryWorker(store.db, RetryPolicy(), concurrency=concurrency, allow_private=True)
    store.subscribe(worker.wake)
    worker.start()
    last_fast: list[float] = []
    latencies: list[float] = []
    try:
        for a in range(alerts):
            event = AlertEvent(
                event_id=f"{label}-A{a}:0", event_time=dt.datetime.now(dt.UTC), alert_id=f"{label}-A{a}",
                sequence=0, msg_type=MsgType.ALERT, area_id="R-BENCH", area_kind=AreaKind.REACH,
                hazard=Hazard.FLOOD, level=AlertLevel.DANGER, headline="bench", area_name="Bench River",
                area_name_ja="ベンチ川", polygon=RING)
            start = time.monotonic()
            store.add(event)
            deadline = start + 120
            while True:
                with receivers.lock:
                    got = {p: t for (p, w), t in receivers.arrivals.items() if w == event.event_id}
                if len(got) == partners or time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            if len(got) < partners:
                raise RuntimeError(f"only {len(got)} of {partners} partners received {event.event_id} in 120 s")
            fast_times = [t - start for p, t in got.items() if p in fast]
            latencies += fast_times
            last_fast.append(max(fast_times))
            time.sleep(0.05)
    finally:
        worker.stop()
        store.close()
    return last_fast, latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def isolation(args: argparse.Namespace) -> None:
    """All fast against a fraction slow, same partner count, same run."""
    receivers = Receivers(slow_s=args.slow_s)
    base_last, base = run(args.partners, args.alerts, args.database_url, receivers, "fast",
                          concurrency=args.concurrency)
    mixed_last, mixed = run(args.partners, args.alerts, args.database_url, receivers, "mixed",
                            slow_fraction=args.slow_fraction, concurrency=args.concurrency)
    slow_count = round(args.partners * args.slow_fraction)
    print(f"webhook isolation ({'SQLite' if args.database_url is None else args.database_url.split(':')[0]}): "
          f"{args.partners} partners, {args.alerts} alerts, concurrency {args.concurrency}; "
          f"fast partners' latency from publication to receipt (s)")
    print(f"{'run':>24} {'median':>8} {'p99':>8} {'max':>8} {'last fast, median':>18}")
    for name, values, last in (("all fast (baseline)", base, base_last),
                               (f"{slow_count} slow ({args.slow_s:g} s)", mixed, mixed_last)):
        print(f"{name:>24} {statistics.median(values):>8.3f} {percentile(values, 0.99):>8.3f} "
              f"{max(values):>8.3f} {statistics.median(last):>18.3f}")
    print(f"{'ratio (slow / baseline)':>24} {statistics.median(mixed) / statistics.median(base):>7.2f}x "
          f"{percentile(mixed, 0.99) / percentile(base, 0.99):>7.2f}x")
    print(f"signatures that failed verification: {receivers.bad}; requests cut off by the sender's deadline: "
          f"{receivers.cut_off}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=100)
    parser.add_argument("--alerts", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--slow-fraction", type=float, default=0.0,
                        help="run the isolation benchmark with this fraction of slow partners")
    parser.add_argument("--slow-s", type=float, default=3.0, help="how long a slow partner takes to answer")
    parser.add_argument("--concurrency", type=int, default=64, help="SUIBOU_ALERT_API_WEBHOOK_CONCURRENCY")
    args = parser.parse_args(argv)
    if args.slow_fraction > 0:
        isolation(args)
        return
    receivers = Receivers()
    one, _ = run(1, args.alerts, args.database_url, receivers, "one", concurrency=args.concurrency)
    many, _ = run(args.partners, args.alerts, args.database_url, receivers, "many", concurrency=args.concurrency)
    print(f"webhook fan-out ({'SQLite' if args.database_url is None else args.database_url.split(':')[0]}): "
          f"{args.alerts} alerts, time from publication to the last partner's receipt (s)")
    print(f"{'partners':>9} {'median':>8} {'max':>8} {'ratio to 1 partner (median)':>28}")
    print(f"{1:>9} {statistics.median(one):>8.3f} {max(one):>8.3f} {1.0:>27.1f}x")
    print(f"{args.partners:>9} {statistics.median(many):>8.3f} {max(many):>8.3f} "
          f"{statistics.median(many) / statistics.median(one):>27.1f}x")
    print(f"signatures that failed verification: {receivers.bad}; requests cut off by the sender's deadline: "
          f"{receivers.cut_off}")
    print(f"target: all {args.partners} partners within 2 s: {'met' if max(many) < 2.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
