"""The alert API through a Kafka outage: reads keep being answered, descriptors stay flat, alerts resume.

The API runs as ``suibou api`` does, in a child process, consuming the alerts
and status topics of the embedded broker. The script publishes 20 alerts, then
in one run:

- ``Kafka up`` (the baseline): a client reads ``GET /v1/alerts`` every 0.5 s
  for ``--baseline-s`` seconds;
- ``Kafka down``: the broker is stopped and the same reads go on for
  ``--outage-minutes`` (30 by default), while the API's consumers fail to
  connect again and again;
- ``Kafka back``: the broker is started again, one more alert is published,
  and the time until the API serves it is measured.

Every 10 s it samples the API process's open descriptors and threads. It
prints each phase's reads (answered, failed, p50 and p99 latency and their
ratio to the baseline) and the descriptor and thread counts, and exits with
status 1 if a read failed, the descriptors grew by more than 10 over the
outage, or the new alert was not served within 120 s of the broker's return.

Runs beside other work on its own ports and home, e.g.::

    SUIBOU_HOME=/tmp/outage SUIBOU_KAFKA_PORT=29092 SUIBOU_KAFKA_CONTROLLER_PORT=29093 SUIBOU_API_PORT=28765 \\
        .venv/bin/python bench/api_kafka_outage.py --outage-minutes 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType  # noqa: E402
from suibou.infra import kafka  # noqa: E402
from suibou.settings import Settings  # noqa: E402

ADMIN_KEY = "bench-admin-key-" + uuid.uuid4().hex
RING = ((139.60, 35.70), (139.61, 35.70), (139.61, 35.71), (139.60, 35.71), (139.60, 35.70))
MAX_FD_GROWTH = 10


def alert(n: int) -> AlertEvent:
    return AlertEvent(event_id=f"OUT-{n}:0", event_time=dt.datetime.now(dt.UTC), alert_id=f"OUT-{n}", sequence=0,
                      msg_type=MsgType.ALERT, area_id=f"R-OUT-{n}", area_kind=AreaKind.REACH, hazard=Hazard.FLOOD,
                      level=AlertLevel.CAUTION, headline="outage benchmark", area_name=f"Reach {n}",
                      area_name_ja=f"区間{n}", polygon=RING, exercise=False, drill_id=None)


def publish(settings: Settings, events: list[AlertEvent]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    try:
        for event in events:
            producer.send(settings.topics.alerts, key=event.area_id.encode(), value=event.to_json())
        producer.flush(30)
    finally:
        producer.close()


class Sampler(threading.Thread):
    """Open descriptors and threads of one process, every ``every_s``."""

    def __init__(self, pid: int, every_s: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.process, self.every_s = psutil.Process(pid), every_s
        self.samples: list[tuple[float, str, int, int]] = []
        self.kinds: dict[str, dict[str, int]] = {}
        self.phase = "Kafka up"
        self.stop = threading.Event()

    def sample(self) -> None:
        self.samples.append((time.monotonic(), self.phase, self.process.num_fds(), self.process.num_threads()))
        self.kinds[self.phase] = self.fd_kinds()

    def fd_kinds(self) -> dict[str, int]:
        """Open descriptors by kind (socket, pipe, anon_inode:[eventpoll], file ...)."""
        kinds: dict[str, int] = {}
        folder = f"/proc/{self.process.pid}/fd"
        for name in os.listdir(folder):
            try:
                target = os.readlink(f"{folder}/{name}")
            except OSError:
                continue
            kind = target.split(":[", 1)[0] if ":[" in target else "file"
            kinds[kind] = kinds.get(kind, 0) + 1
        return kinds

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            self.sample()


def read_for(client: httpx.Client, seconds: float, label: str, progress: bool = False) -> tuple[list[float], int]:
    """Reads every 0.5 s for ``seconds``: latencies (ms) of answered reads, and failures."""
    latencies: list[float] = []
    failed = 0
    end = time.monotonic() + seconds
    next_report = time.monotonic() + 60
    while time.monotonic() < end:
        start = time.perf_counter()
        try:
            answer = client.get("/v1/alerts", timeout=10)
            if answer.status_code == 200:
                latencies.append((time.perf_counter() - start) * 1e3)
            else:
                failed += 1
        except httpx.HTTPError:
            failed += 1
        if progress and time.monotonic() >= next_report:
            left = max(0.0, end - time.monotonic()) / 60
            print(f"  {label}: {len(latencies)} reads answered, {failed} failed, {left:.0f} min to go",
                  file=sys.stderr, flush=True)
            next_report += 60
        time.sleep(max(0.0, 0.5 - (time.perf_counter() - start)))
    return latencies, failed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage-minutes", type=float, default=30.0)
    parser.add_argument("--baseline-s", type=float, default=120.0)
    args = parser.parse_args()
    settings = Settings(topic_prefix=f"bench-outage-{uuid.uuid4().hex[:8]}")
    if not settings.uses_embedded_kafka:
        print("this benchmark stops the embedded broker; unset SUIBOU_KAFKA_BOOTSTRAP", file=sys.stderr)
        return 2
    was_running = kafka.status(settings).startswith("running")
    kafka.ensure_running(settings)
    kafka.ensure_topics(settings, settings.topics.all_topics)
    env = {**os.environ, "SUIBOU_ADMIN_KEY": ADMIN_KEY, "SUIBOU_TOPIC_PREFIX": settings.topic_prefix,
           "SUIBOU_HOME": str(settings.home)}
    log_path = settings.home / "logs" / "bench-outage-api.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        api = subprocess.Popen([sys.executable, "-m", "suibou", "api"], env=env, stdout=log, stderr=log, cwd=ROOT)
    base = f"http://{settings.api_host}:{settings.api_port}"
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    failures: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/v1/alerts", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or api.poll() is not None:
                print(f"the API did not start; see {log_path}", file=sys.stderr)
                return 2
            time.sleep(0.5)
        publish(settings, [alert(n) for n in range(20)])
        deadline = time.monotonic() + 60
        while len(client.get("/v1/alerts", timeout=10).json()["data"]) < 20:
            if time.monotonic() > deadline:
                print("the API did not take in the first 20 alerts", file=sys.stderr)
                return 2
            time.sleep(0.5)
        sampler = Sampler(api.pid)
        sampler.sample()
        sampler.start()
        print(f"Kafka up: reading for {args.baseline_s:.0f} s", file=sys.stderr, flush=True)
        phases = {"Kafka up": read_for(client, args.baseline_s, "Kafka up")}
        sampler.sample()
        sampler.phase = "Kafka down"
        kafka.stop(settings)
        print(f"Kafka down: reading for {args.outage_minutes:g} min", file=sys.stderr, flush=True)
        phases["Kafka down"] = read_for(client, args.outage_minutes * 60, "Kafka down", progress=True)
        sampler.sample()
        sampler.phase = "Kafka back"
        back = time.monotonic()
        kafka.ensure_running(settings)
        publish(settings, [alert(20)])
        served_s = None
        while time.monotonic() - back < 120:
            if any(a["alert_id"] == "OUT-20" for a in client.get("/v1/alerts", timeout=10).json()["data"]):
                served_s = time.monotonic() - back
                break
            time.sleep(0.5)
        sampler.sample()
        sampler.stop.set()
    finally:
        client.close()
        api.terminate()
        try:
            api.wait(20)
        except subprocess.TimeoutExpired:
            api.kill()
            failures.append("the API did not stop within 20 s of SIGTERM")
        kafka.ensure_running(settings)
    from benchkit import delete_topics

    delete_topics(settings)
    if not was_running:
        kafka.stop(settings)  # leave the broker as it was found

    quiet = phases["Kafka up"][0]
    print(f"\nAPI on {base}, Kafka outage of {args.outage_minutes:g} min, reads every 0.5 s\n")
    print("| phase | reads answered | failed | p50 ms | p99 ms | p50 / Kafka up | p99 / Kafka up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (latencies, failed) in phases.items():
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        print(f"| {name} | {len(latencies)} | {failed} | {p50:.1f} | {p99:.1f} "
              f"| {p50 / percentile(quiet, 0.5):.2f}x | {p99 / percentile(quiet, 0.99):.2f}x |")
        if failed:
            failures.append(f"{failed} reads failed with {name}")
    print("\n| phase | samples | descriptors first / min / max / last | threads min / max |")
    print("|---|---:|---|---|")
    for name in ("Kafka up", "Kafka down", "Kafka back"):
        rows = [s for s in sampler.samples if s[1] == name]
        if rows:
            fds, threads = [r[2] for r in rows], [r[3] for r in rows]
            print(f"| {name} | {len(rows)} | {fds[0]} / {min(fds)} / {max(fds)} / {fds[-1]} "
                  f"| {min(threads)} / {max(threads)} |")
    print("\nopen descriptors at the end of each phase, by kind: "
          + "; ".join(f"{phase}: {dict(sorted(kinds.items()))}" for phase, kinds in sampler.kinds.items()))
    start_s = sampler.samples[0][0]
    print("descriptors every 5 minutes: " + ", ".join(
        f"{(at - start_s) / 60:.0f} min {n}" for at, _, n, _ in sampler.samples[::30]))
    down = [s[2] for s in sampler.samples if s[1] == "Kafka down"]
    if down and max(down) - down[0] > MAX_FD_GROWTH:
        failures.append(f"descriptors grew from {down[0]} to {max(down)} during the outage")
    print(f"\nnew alert served {served_s:.1f} s after the broker was started again" if served_s is not None
          else "\nthe new alert was not served within 120 s of the broker's return")
    if served_s is None:
        failures.append("no alert served after the outage")
    print(f"mean read latency with Kafka down: {statistics.fmean(phases['Kafka down'][0]):.1f} ms"
          if phases["Kafka down"][0] else "")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
