"""A partner's reads while the officer login is flooded with bad passwords.

The API runs under uvicorn in a child process (SQLite store with 50 active
alerts, no Kafka), as ``suibou api`` runs it. A partner reads ``GET /v1/alerts``
one request after another over a keep-alive connection; meanwhile 48 clients
post wrong passwords to ``POST /v1/officer/login`` as fast as they are answered,
every other one for the officer ``duty`` and the rest for names nobody has (each
of which costs the same hash, against a dummy).
Three phases in the same run:

- ``quiet``: the reads alone (the baseline);
- ``flood, one address``: the 48 clients from one address;
- ``flood, 48 addresses``: each client behind a trusted proxy with its own
  ``X-Forwarded-For`` (a distributed flood: only the global ceiling and the hash
  gate stand in its way).

Read latency p50/p99 of each phase is printed with its ratio to ``quiet``, and
what the login flood was answered (401: hashed; 429: refused without hashing).
``--code DIR`` serves the API from another checkout (e.g. the code before a
change, unpacked with ``git archive``), with the same client side.

Usage: ``.venv/bin/python bench/api_login_flood.py [--reads 300] [--flooders 48] [--code DIR]``
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "bench-admin-key-" + "x" * 32
PASSWORD = "correct horse battery staple"
RING = ((139.60, 35.70), (139.61, 35.70), (139.61, 35.71), (139.60, 35.71), (139.60, 35.70))


def serve(code: str, home: str, port: int) -> None:
    """The child process: the API on ``port``, with 50 active alerts."""
    sys.path.insert(0, code)
    import uvicorn

    from alert_api import create_app
    from alert_api.config import AlertApiSettings
    from alert_api.store import SqlAlertStore
    from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType
    from suibou.settings import Settings

    store = SqlAlertStore(f"sqlite:///{home}/alerts.db")
    t0 = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)
    for n in range(50):
        store.add(AlertEvent(event_id=f"B-{n}:0", event_time=t0, alert_id=f"B-{n}", sequence=0,
                             msg_type=MsgType.ALERT, area_id=f"R-{n}", area_kind=AreaKind.REACH,
                             hazard=Hazard.FLOOD, level=AlertLevel(2 + n % 4), headline="bench",
                             area_name=f"Reach {n}", area_name_ja=f"区間{n}", polygon=RING))
    fields = AlertApiSettings.model_fields
    extra: dict[str, Any] = {"trusted_proxies": ["127.0.0.1/32"]} if "trusted_proxies" in fields else {}
    config = AlertApiSettings(admin_key=SecretStr(ADMIN_KEY), **extra)
    app = create_app(Settings(home=Path(home)), store=store, start_consumer=False, api_settings=config,
                     start_webhooks=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return statistics.median(ordered) * 1000, p99 * 1000


class Flood:
    """``flooders`` threads posting wrong passwords for ``duty`` until stopped."""

    def __init__(self, base: str, flooders: int, spread: bool) -> None:
        self.stop = threading.Event()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(base, n, spread), daemon=True)
                        for n in range(flooders)]

    def run(self, base: str, n: int, spread: bool) -> None:
        headers = {"X-Forwarded-For": f"198.51.{n // 250}.{n % 250 + 1}"} if spread else {}
        with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                user = "duty" if i % 2 else f"user{n}-{i}"  # the officer's name, and names nobody has
                try:
                    status = client.post("/v1/officer/login",
                                         json={"username": user, "password": f"guess {n} {i}"}).status_code
                except httpx.HTTPError:
                    status = 0
                with self.lock:
                    self.statuses[status] += 1

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        time.sleep(1.0)  # let it build up
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def reads(client: httpx.Client, headers: dict[str, str], count: int) -> tuple[list[float], float]:
    samples = []
    started = time.perf_counter()
    for _ in range(count):
        start = time.perf_counter()
        response = client.get("/v1/alerts", headers=headers)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return samples, time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--flooders", type=int, default=48)
    parser.add_argument("--code", default=str(ROOT), help="checkout to serve the API from")
    parser.add_argument("--serve", nargs=3, metavar=("CODE", "HOME", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], args.serve[1], int(args.serve[2]))
        return
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as home:
        child = subprocess.Popen([sys.executable, __file__, "--serve", str(Path(args.code).resolve()), home,
                                  str(port)], cwd=args.code, env={**os.environ, "PYTHONPATH": args.code})
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                for _ in range(200):
                    try:
                        client.get("/openapi.json")
                        break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
                made = client.post("/v1/admin/officers", headers=admin,
                                   json={"username": "duty", "display_name": "Duty", "password": PASSWORD})
                assert made.status_code == 201, made.text
                partner = client.post("/v1/admin/partners", headers=admin, json={
                    "name": "nav", "scopes": ["alerts:read"], "rate_limit_per_minute": 1_000_000}).json()
                headers = {"Authorization": f"Bearer {partner['api_key']}"}
                reads(client, headers, 20)  # warm
                rows: list[tuple[str, list[float], collections.Counter[int] | None]] = []
                quiet, _ = reads(client, headers, args.reads)
                rows.append(("quiet", quiet, None))
                for label, spread in (("flood, one address", False), (f"flood, {args.flooders} addresses", True)):
                    with Flood(base, args.flooders, spread) as flood:
                        samples, _ = reads(client, headers, args.reads)
                    rows.append((label, samples, flood.statuses))
                # The officer, from an address of its own, can still log in after the floods (honouring
                # Retry-After, as the console does).
                started = time.perf_counter()
                tries = []
                for _ in range(5):
                    officer = client.post("/v1/officer/login", json={"username": "duty", "password": PASSWORD},
                                          headers={"X-Forwarded-For": "192.0.2.10"})
                    tries.append(officer.status_code)
                    if officer.status_code != 429:
                        break
                    time.sleep(float(officer.headers.get("retry-after", "1")))
                officer_s = time.perf_counter() - started
        finally:
            child.terminate()
            child.wait(timeout=30)
    q50, q99 = percentiles(quiet)
    print(f"partner GET /v1/alerts (50 alerts), {args.reads} reads per phase, {args.flooders} flooding clients; "
          f"API from {args.code}")
    print(f"{'phase':<24} {'p50 ms':>8} {'p99 ms':>8} {'p50 x':>7} {'p99 x':>7}  login answers during the phase")
    for label, samples, statuses in rows:
        p50, p99 = percentiles(samples)
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) if statuses else ""
        print(f"{label:<24} {p50:>8.2f} {p99:>8.2f} {p50 / q50:>6.1f}x {p99 / q99:>6.1f}x  {answers}")
    print(f"officer login from its own address after the floods: {tries} in {officer_s:.1f} s")


if __name__ == "__main__":
    main()
