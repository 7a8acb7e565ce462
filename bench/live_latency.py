"""Latency of the live job, fed as field gateways feed it, and its memory over a long run.

A synthetic basin of G reaches (one level and one rain gauge each) reports
live: each gauge sends a rain and a level reading every ``2 G / rate`` seconds,
stamped with the wall clock, with no stream_control ticks. G is ``--gauges``,
or the rate itself where that is more (so that no gauge reports more than once
every 2 s: event times are whole seconds). Each level gauge
rises once, over a minute, from below its standby level to bank-full, at a
time spread over the run, so that every reach raises an alert and steps it up
to level 5 while the others report quietly. Synthetic data only.

For each rate, in the same run and on fresh topics:

1. baseline: kafka-python alone, the same paced readings produced and consumed
   back (the floor any pipeline on this broker starts from);
2. the live job, run as an operator runs it (``suibou pipeline`` as a process,
   with its own Prism and harness processes) beside the alert API: from each
   level reading's send to its reach's flood score on the scores topic, and
   from the reading an alert message was decided on to that message in the
   API's ``/v1/alerts``.

With ``--soak`` it also samples the resident memory of the job's processes
(the supervisor, Prism, the SDK harnesses) every ``--sample-s`` and reports
the series, and whether the job restarted.

    python bench/live_latency.py --gauges 50 --rates 5 50 500 --seconds 300
    python bench/live_latency.py --gauges 50 --rates 50 --seconds 1800 --soak --baseline-seconds 60
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import math
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchkit import arrivals, delete_topics
from pipeline_latency import summary
from pipeline_throughput import synthetic_basin
from suibou import infra
from suibou.catalogue import StationCatalogue
from suibou.contracts import LevelReading, RainReading, RiskScore, parse_event
from suibou.infra import api_server, processes
from suibou.settings import Settings

_MIB = 1024 * 1024


class Gateways:
    """Paced live readings; notes the wall time each level reading was sent."""

    def __init__(self, settings: Settings, catalogue: StationCatalogue, rate: float, seconds: float,
                 ramp_s: float = 60.0) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.rate = rate
        self.seconds = seconds
        self.ramp_s = ramp_s
        self.sent_at: dict[tuple[str, dt.datetime], float] = {}
        self.sent = 0

    def level_at(self, index: int, elapsed: float) -> float:
        gauges = len(self.catalogue.level_gauges)
        start = (self.seconds - self.ramp_s) * 0.1 + (self.seconds - self.ramp_s) * 0.8 * index / max(1, gauges)
        rise = min(1.0, max(0.0, (elapsed - start) / self.ramp_s))
        return round(0.5 + 2.7 * rise, 3)

    def run(self, stop_wanted: threading.Event | None = None) -> float:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, acks="all",
                                 enable_idempotence=True, linger_ms=2)
        topics = self.settings.topics
        pairs = list(zip(self.catalogue.rain_gauges, self.catalogue.level_gauges))
        started = time.perf_counter()
        count = 0
        while time.perf_counter() - started < self.seconds and not (stop_wanted and stop_wanted.is_set()):
            for index, (rain, level) in enumerate(pairs):
                for gauge, is_level in ((rain, False), (level, True)):
                    delay = started + count / self.rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    # Event times go to the second on the wire (suibou.contracts.format_time).
                    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
                    event: LevelReading | RainReading
                    if is_level:
                        event = LevelReading(event_id=f"{gauge.station_id}:{now:%H%M%S%f}", event_time=now,
                                             station_id=gauge.station_id,
                                             level_m=self.level_at(index, time.perf_counter() - started))
                        self.sent_at[(gauge.station_id, now)] = time.time()
                        topic = topics.level
                    else:
                        event = RainReading(event_id=f"{gauge.station_id}:{now:%H%M%S%f}", event_time=now,
                                            station_id=gauge.station_id, rain_mm=0.2,
                                            interval_s=max(1, round(2 * len(pairs) / self.rate)))
                        topic = topics.rain
                    producer.send(topic, key=gauge.station_id.encode(), value=event.to_json(),
                                  timestamp_ms=int(now.timestamp() * 1000))
                    count += 1
        producer.flush()
        producer.close()
        self.sent = count
        return count / (time.perf_counter() - started)


def reading_key(value: bytes):
    event = parse_event(value)
    return (event.station_id, event.event_time) if isinstance(event, LevelReading) else None


def latencies_ms(sent_at: dict, got: dict, skip_s: float) -> np.ndarray:
    first = min(sent_at.values(), default=0.0)
    return np.array([(got[k] - t) * 1000 for k, t in sent_at.items() if k in got and t - first >= skip_s])


def baseline(catalogue: StationCatalogue, rate: float, seconds: float) -> dict:
    settings = Settings(topic_prefix=f"bench-live-base-{uuid.uuid4().hex[:8]}")
    infra.up(settings)
    got: dict = {}
    stop, ready = threading.Event(), threading.Event()
    reader = threading.Thread(target=arrivals, args=(settings, [settings.topics.level], stop, got, reading_key, ready))
    reader.start()
    ready.wait(60)
    gateways = Gateways(settings, catalogue, rate, seconds)
    achieved = gateways.run()
    time.sleep(2.0)
    stop.set()
    reader.join()
    delete_topics(settings)
    return {"achieved_rate_per_s": round(achieved, 1),
            "produce_to_consume": summary(latencies_ms(gateways.sent_at, got, min(10.0, seconds / 10)))}


def _tree_rss_mib(pid: int) -> dict[str, float]:
    roles = {"supervisor": 0, "prism": 0, "sdk_harnesses": 0}
    try:
        root = psutil.Process(pid)
        roles["supervisor"] = root.memory_info().rss
        for child in root.children(recursive=True):
            try:
                line = child.cmdline()
                role = "prism" if line and "prism-" in line[0] else "sdk_harnesses"
                roles[role] += child.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    out = {k: round(v / _MIB, 1) for k, v in roles.items()}
    out["total"] = round(sum(out.values()), 1)
    return out


def live(catalogue: StationCatalogue, rate: float, seconds: float, sample_s: float, api_port: int) -> dict:
    prefix = f"bench-live-{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="suibou-bench-live-"))
    base = Settings()
    infra.up(base)
    settings = Settings(topic_prefix=prefix, home=home, kafka_bootstrap=base.bootstrap_servers,
                        prism_path=infra.prism.ensure_prism(base), api_port=api_port,
                        database_url=f"sqlite:///{home / 'alerts.db'}")
    infra.kafka.ensure_topics(settings, settings.topics.all_topics)
    catalogue_file = home / "catalogue.json"
    catalogue.save(catalogue_file)
    api_server.ensure_running(settings)
    from suibou.cli import api_headers

    headers = api_headers(settings)
    supervisor = processes.start_detached(
        [sys.executable, "-m", "suibou", "pipeline", "--catalogue", str(catalogue_file), "--metrics-port", "0"],
        home / "live.log", home / "live.pid", processes.settings_env(settings))
    status_path = home / "live" / "status.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if status_path.exists() and json.loads(status_path.read_text())["state"] == "running":
            break
        time.sleep(1)
    else:
        raise RuntimeError("the live job did not start; see " + str(home / "live.log"))

    station_of = {g.reach_id: g.station_id for g in catalogue.level_gauges}

    def score_key(value: bytes):
        event = parse_event(value)
        if isinstance(event, RiskScore) and event.area_id in station_of and not event.event_id.endswith(":held"):
            return (station_of[event.area_id], event.event_time)
        return None

    scores: dict = {}
    alerts_seen: dict[str, tuple[float, dict[str, Any]]] = {}
    stop, ready = threading.Event(), threading.Event()
    reader = threading.Thread(target=arrivals, args=(settings, [settings.topics.risk_scores], stop, scores, score_key,
                                                   ready))
    reader.start()
    ready.wait(60)

    def poll_api() -> None:
        url = f"{api_server.base_url(settings)}/v1/alerts?include_cancelled=true&limit=1000"
        while not stop.is_set():
            try:
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(request, timeout=5) as response:
                    now = time.time()
                    for alert in json.loads(response.read())["data"]:
                        key = f"{alert['alert_id']}#{alert['sequence']}"
                        alerts_seen.setdefault(key, (now, alert))
            except OSError:
                pass
            stop.wait(0.2)

    api_poller = threading.Thread(target=poll_api)
    api_poller.start()
    memory: list[tuple[float, dict[str, float]]] = []
    gateways = Gateways(settings, catalogue, rate, seconds)
    sender_done = threading.Event()

    def send() -> None:
        gateways.run()
        sender_done.set()

    sender = threading.Thread(target=send)
    started = time.monotonic()
    sender.start()
    while not sender_done.wait(sample_s):
        memory.append((round(time.monotonic() - started), _tree_rss_mib(supervisor.pid)))
    # The last scores and alerts: until every level reading has its score, or two minutes.
    settle = time.monotonic() + 120
    while time.monotonic() < settle and any(k not in scores for k in gateways.sent_at):
        time.sleep(1)
    time.sleep(2)
    status = json.loads(status_path.read_text())
    stop.set()
    reader.join()
    api_poller.join()
    processes.stop(home / "live.pid", (b"suibou", b"pipeline"), "live fusion job", 30)
    api_server.stop(settings)
    delete_topics(settings)

    level_sent = gateways.sent_at
    score_latency = summary(latencies_ms(level_sent, scores, min(10.0, seconds / 10)))
    alert_latency = []
    for seen_at, alert in alerts_seen.values():
        station = station_of.get(alert["area_id"])
        at = dt.datetime.fromisoformat(alert["event_time"])
        if station is not None and (station, at) in level_sent:
            alert_latency.append((seen_at - level_sent[(station, at)]) * 1000)
    totals = [m["total"] for _, m in memory]
    # Where the slow scores were: spread over the gauges (a stalled stage) or on a few (a key held back).
    slow = sorted(k for k, t in level_sent.items() if k in scores and scores[k] - t > 5.0)
    by_minute = collections.Counter(f"{at:%H:%M}" for _, at in slow)
    return {
        "achieved_rate_per_s": round(gateways.sent / seconds, 1),
        "level_readings_sent": len(level_sent),
        "scores_missing": sum(1 for k in level_sent if k not in scores),
        "reading_to_score_on_kafka": score_latency,
        "reading_to_alert_at_api": summary(np.array(alert_latency)),
        "alert_messages_at_api": len(alerts_seen),
        "restarts": status.get("restarts"),
        "scores_over_5s": {"count": len(slow), "gauges": len({g for g, _ in slow}),
                           "by_minute": dict(sorted(by_minute.items()))},
        "memory_mib": {"first": memory[0][1] if memory else None, "last": memory[-1][1] if memory else None,
                       "peak_total": max(totals) if totals else None,
                       "series_total": [(t, m["total"]) for t, m in memory]},
    }


def main() -> None:
    import logging

    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gauges", type=int, default=50)
    parser.add_argument("--rates", type=float, nargs="+", default=[5.0, 50.0, 500.0], help="readings per second")
    parser.add_argument("--seconds", type=float, default=300.0, help="how long the live job is fed, per rate")
    parser.add_argument("--baseline-seconds", type=float, default=60.0)
    parser.add_argument("--soak", action="store_true", help="sample memory every --sample-s (default 30 s)")
    parser.add_argument("--sample-s", type=float, default=None)
    parser.add_argument("--api-port", type=int, default=8799)
    args = parser.parse_args()
    sample_s = args.sample_s or (30.0 if args.soak else 10.0)
    results = []
    for rate in args.rates:
        catalogue = synthetic_basin(max(args.gauges, math.ceil(rate)))
        print(f"rate {rate:g}/s: baseline ({args.baseline_seconds:.0f} s)...", file=sys.stderr, flush=True)
        floor = baseline(catalogue, rate, args.baseline_seconds)
        print(f"rate {rate:g}/s: live job ({args.seconds:.0f} s)...", file=sys.stderr, flush=True)
        measured = live(catalogue, rate, args.seconds, sample_s, args.api_port)
        p99 = measured["reading_to_score_on_kafka"].get("p99_ms")
        base_p99 = floor["produce_to_consume"].get("p99_ms")
        results.append({"rate_per_s": rate, "gauges": len(catalogue.level_gauges), "seconds": args.seconds,
                        "baseline_kafka_python": floor, "live_job": measured,
                        "score_p99_over_baseline_p99": round(p99 / base_p99, 1) if p99 and base_p99 else None})
        print(json.dumps(results[-1], indent=1), flush=True)


if __name__ == "__main__":
    main()
