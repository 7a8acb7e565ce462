"""Webhook fan-out: how long until every subscribed partner has received an alert, and whether slow
partners delay the others.

Targets (issues): 100 partners all receive an alert within 2 s; with 1,000 partners of which 15 % are slow
(they answer after ``--slow-s``), the fast partners' latency stays close to what it is when every partner is fast.

The real delivery path: the alert is published through the store (outbox rows
written in the publishing transaction), the delivery worker signs each request
(Standard Webhooks) and POSTs it over HTTP to a receiver on a loopback port,
one path per partner; the receiver checks each signature with the
``standardwebhooks`` library. Measured from the publishing call to the last
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
import datetime as dt
import http.server
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from standardwebhooks import Webhook  # noqa: E402

from alert_api.accounts import AccountStore  # noqa: E402
from alert_api.store import SqlAlertStore  # noqa: E402
from alert_api.webhooks import DeliveryWorker, RetryPolicy  # noqa: E402
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType  # noqa: E402

RING = ((139.60, 35.70), (139.61, 35.70), (139.61, 35.71), (139.60, 35.71), (139.60, 35.70))


class Receivers:
    """One HTTP server; partner ``n`` posts to ``/p/<n>``. Records when each (partner, webhook-id) arrived.

    Partners in ``slow`` answer after ``slow_s`` seconds (their arrival is recorded when the request came in).
    """

    def __init__(self, slow_s: float = 0.0) -> None:
        self.slow: set[str] = set()
        self.secrets: dict[str, Webhook] = {}
        self.arrivals: dict[tuple[str, str], float] = {}
        self.bad = 0
        self.cut_off = 0
        self.lock = threading.Lock()
        receivers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["content-length"])
                body = self.rfile.read(length)
                partner = self.path.rsplit("/", 1)[-1]
                at = time.perf_counter()
                if len(body) < length:  # the sender gave up on this attempt (deadline) and closed the connection
                    with receivers.lock:
                        receivers.cut_off += 1
                    return
                try:
                    receivers.secrets[partner].verify(body, dict(self.headers))
                    with receivers.lock:
                        receivers.arrivals.setdefault((partner, self.headers["webhook-id"]), at)
                except Exception:  # noqa: BLE001 - counted as a bad delivery
                    with receivers.lock:
                        receivers.bad += 1
                if partner in receivers.slow:
                    time.sleep(slow_s)
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        http.server.ThreadingHTTPServer.request_queue_size = 1024
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # connections closed by the sender's deadline
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/p/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


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
        partner = accounts.set_webhook(partner.partner_id, receivers.base + partner.partner_id, None)
        assert partner.webhook_secret is not None
        receivers.secrets[partner.partner_id] = Webhook(partner.webhook_secret)
        if int((n + 1) * slow_fraction) > int(n * slow_fraction):  # spread evenly
            receivers.slow.add(partner.partner_id)
        else:
            fast.add(partner.partner_id)
    worker = DeliveryWorker(store.db, RetryPolicy(), concurrency=concurrency, allow_private=True)
    store.subscribe(worker.wake)
    worker.start()
    last_fast: list[float] = []
    latencies: list[float] = []
    try:
        for a in range(alerts):
            event = AlertEvent(
                event_id=f"{label}-A{a}:0", event_time=dt.datetime.now(dt.timezone.utc), alert_id=f"{label}-A{a}",
                sequence=0, msg_type=MsgType.ALERT, area_id="R-BENCH", area_kind=AreaKind.REACH,
                hazard=Hazard.FLOOD, level=AlertLevel.DANGER, headline="bench", area_name="Bench River",
                area_name_ja="ベンチ川", polygon=RING)
            start = time.perf_counter()
            store.add(event)
            deadline = start + 120
            while True:
                with receivers.lock:
                    got = {p: t for (p, w), t in receivers.arrivals.items() if w == event.event_id}
                if len(got) == partners or time.perf_counter() > deadline:
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
