"""Webhook fan-out: how long until every subscribed partner has received an alert.

Target (issue): 100 partners all receive an alert within 2 s.

The real delivery path: the alert is published through the store (outbox rows
written in the publishing transaction), the delivery worker signs each request
(Standard Webhooks) and POSTs it over HTTP to a receiver on a loopback port,
one path per partner; the receiver checks each signature with the
``standardwebhooks`` library. Measured from the publishing call to the last
partner's receipt. The baseline is one partner, measured in the same run; the
result is also given as a ratio to it.

Usage: ``.venv/bin/python bench/api_webhook_fanout.py [--partners 100] [--alerts 10] [--database-url URL]``
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
    """One HTTP server; partner ``n`` posts to ``/p/<n>``. Records when each (partner, webhook-id) arrived."""

    def __init__(self) -> None:
        self.secrets: dict[str, Webhook] = {}
        self.arrivals: dict[tuple[str, str], float] = {}
        self.bad = 0
        self.lock = threading.Lock()
        receivers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                partner = self.path.rsplit("/", 1)[-1]
                at = time.perf_counter()
                try:
                    receivers.secrets[partner].verify(body, dict(self.headers))
                    with receivers.lock:
                        receivers.arrivals.setdefault((partner, self.headers["webhook-id"]), at)
                except Exception:  # noqa: BLE001 - counted as a bad delivery
                    with receivers.lock:
                        receivers.bad += 1
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/p/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run(partners: int, alerts: int, url: str | None, receivers: Receivers, label: str) -> list[float]:
    folder = Path(tempfile.mkdtemp())
    store = SqlAlertStore(url or f"sqlite:///{folder / 'alerts.db'}")
    store.db.truncate_all()
    accounts = AccountStore(store.db)
    for n in range(partners):
        partner, _ = accounts.create_partner(f"{label}-{n}", ["alerts:read", "webhooks:receive"])
        partner = accounts.set_webhook(partner.partner_id, receivers.base + partner.partner_id, None)
        assert partner.webhook_secret is not None
        receivers.secrets[partner.partner_id] = Webhook(partner.webhook_secret)
    worker = DeliveryWorker(store.db, RetryPolicy(), concurrency=32, allow_private=True)
    store.subscribe(worker.wake)
    worker.start()
    latencies = []
    try:
        for a in range(alerts):
            event = AlertEvent(
                event_id=f"{label}-A{a}:0", event_time=dt.datetime.now(dt.timezone.utc), alert_id=f"{label}-A{a}",
                sequence=0, msg_type=MsgType.ALERT, area_id="R-BENCH", area_kind=AreaKind.REACH,
                hazard=Hazard.FLOOD, level=AlertLevel.DANGER, headline="bench", area_name="Bench River",
                area_name_ja="ベンチ川", polygon=RING)
            start = time.perf_counter()
            store.add(event)
            deadline = start + 30
            while True:
                with receivers.lock:
                    got = [t for (p, w), t in receivers.arrivals.items() if w == event.event_id]
                if len(got) == partners or time.perf_counter() > deadline:
                    break
                time.sleep(0.002)
            if len(got) < partners:
                raise RuntimeError(f"only {len(got)} of {partners} partners received {event.event_id} in 30 s")
            latencies.append(max(got) - start)
            time.sleep(0.05)
    finally:
        worker.stop()
        store.close()
    return latencies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=100)
    parser.add_argument("--alerts", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    receivers = Receivers()
    one = run(1, args.alerts, args.database_url, receivers, "one")
    many = run(args.partners, args.alerts, args.database_url, receivers, "many")
    print(f"webhook fan-out ({'SQLite' if args.database_url is None else args.database_url.split(':')[0]}): "
          f"{args.alerts} alerts, time from publication to the last partner's receipt (s)")
    print(f"{'partners':>9} {'median':>8} {'max':>8} {'ratio to 1 partner (median)':>28}")
    print(f"{1:>9} {statistics.median(one):>8.3f} {max(one):>8.3f} {1.0:>27.1f}x")
    print(f"{args.partners:>9} {statistics.median(many):>8.3f} {max(many):>8.3f} "
          f"{statistics.median(many) / statistics.median(one):>27.1f}x")
    print(f"signatures that failed verification: {receivers.bad}")
    print(f"target: all {args.partners} partners within 2 s: {'met' if max(many) < 2.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
