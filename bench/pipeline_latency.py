"""End-to-end latency and memory of the fusion pipeline at a steady event rate.

A synthetic basin of G reaches (one level and one rain gauge each, as in
``pipeline_throughput.py``) is replayed in real time at ``--rate`` readings per
second: stream time runs ``rate * 60 / (2 G)`` times faster than the wall clock,
with a clock tick every stream minute, as the drill publisher sends them.

Measured in the same run, on fresh topics:

1. baseline: kafka-python alone, the same paced readings produced and consumed
   back (produce -> consume latency of each reading): the floor any pipeline on
   this broker starts from;
2. pipeline: the fusion job on Prism reads the paced readings; for every level
   reading, the time from its send to the arrival of the reach's risk score on
   the scores topic (the reading's reach and event time identify the score).

It reports p50/p90/p99/max latency of both after a warm-up, the pipeline's p99
as a multiple of the baseline's, and the peak resident memory of the job
(this process, the Prism runner and the SDK harness processes; see
``benchkit.PeakMemory``) sampled every 0.5 s. Synthetic data only.

    python bench/pipeline_latency.py --gauges 50 --rate 500 --seconds 60
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import threading
import time
import uuid

import numpy as np

from benchkit import PeakMemory, arrivals, delete_topics
from pipeline_throughput import T0, _controls, readings, synthetic_basin
from pipelines.job import JobConfig, fusion_pipeline
from suibou import infra
from suibou.contracts import ControlKind, LevelReading, RainReading, RiskScore, parse_event
from suibou.infra.sdk_workers import sdk_worker_pool
from suibou.settings import Settings


def paced_send(settings: Settings, catalogue, minutes: int, drill_id: str, rate: float,
               sent_at: dict[tuple[str, dt.datetime], float]) -> float:
    """Sends the readings at ``rate`` per second with a tick after each stream minute, noting the
    wall time of each send under ``(station_id, event_time)``; returns the rate achieved."""
    from kafka import KafkaProducer

    # As the drill publisher: idempotent, so a retried batch cannot overtake a later one.
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", enable_idempotence=True,
                             linger_ms=5)
    topics = settings.topics
    partitions = {t: sorted(producer.partitions_for(t)) for t in topics.observation_topics.values()}
    started = time.perf_counter()
    count, last_minute = 0, 0
    for key, event in readings(catalogue, minutes, drill_id):
        minute = int((event.event_time - T0).total_seconds() // 60)
        if minute != last_minute and last_minute:
            _controls(producer, partitions, ControlKind.TICK, T0 + dt.timedelta(minutes=last_minute), drill_id)
            producer.flush()
        last_minute = minute
        delay = started + count / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        topic = topics.rain if isinstance(event, RainReading) else topics.level
        sent_at[(event.station_id, event.event_time)] = time.time()
        producer.send(topic, key=key.encode(), value=event.to_json(),
                      timestamp_ms=int(event.event_time.timestamp() * 1000))
        count += 1
    _controls(producer, partitions, ControlKind.END, T0 + dt.timedelta(minutes=minutes), drill_id)
    producer.flush()
    producer.close()
    return count / (time.perf_counter() - started)


def _reading_key(value: bytes):
    event = parse_event(value)
    return (event.station_id, event.event_time) if isinstance(event, (LevelReading, RainReading)) else None


def _score_key(level_station_of: dict[str, str]):
    """A reach's flood score is keyed by the level reading it was made for."""
    def key(value: bytes):
        event = parse_event(value)
        if isinstance(event, RiskScore) and event.area_id in level_station_of:
            return (level_station_of[event.area_id], event.event_time)
        return None
    return key


def latencies(sent_at: dict, got: dict, skip_s: float) -> np.ndarray:
    first = min(sent_at.values())
    return np.array([(got[k] - t) * 1000 for k, t in sent_at.items() if k in got and t - first >= skip_s])


def summary(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"n": 0}
    return {"n": int(values.size), **{f"p{q}_ms": round(float(np.percentile(values, q)), 1) for q in (50, 90, 99)},
            "max_ms": round(float(values.max()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gauges", type=int, default=50)
    parser.add_argument("--rate", type=float, default=500.0, help="readings per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="wall-clock length of the replay")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds left out at the start")
    args = parser.parse_args()
    minutes = max(2, round(args.rate * args.seconds / (2 * args.gauges)))
    catalogue = synthetic_basin(args.gauges)

    # 1. Baseline: the broker and kafka-python alone.
    settings = Settings(topic_prefix=f"bench-lat-{uuid.uuid4().hex[:8]}")
    infra.up(settings)
    sent: dict[tuple[str, dt.datetime], float] = {}
    got: dict[tuple[str, dt.datetime], float] = {}
    stop = threading.Event()
    reader = threading.Thread(target=arrivals, args=(settings, [settings.topics.rain, settings.topics.level], stop,
                                                     got, _reading_key))
    reader.start()
    time.sleep(2.0)
    base_rate = paced_send(settings, catalogue, minutes, "bench-base", args.rate, sent)
    time.sleep(2.0)
    stop.set()
    reader.join()
    delete_topics(settings)
    baseline = summary(latencies(sent, got, args.warmup))

    # 2. The pipeline, reading the same paced stream on its own topics, run as
    # drills and the live job run it (a harness process per stateful stage).
    settings = Settings(topic_prefix=f"bench-lat-{uuid.uuid4().hex[:8]}")
    infra.up(settings)
    drill_id = f"bench-{uuid.uuid4().hex[:6]}"
    config = JobConfig(catalogue=catalogue, topics=settings.topics, bootstrap_servers=settings.bootstrap_servers,
                       end_source=drill_id, group_id=f"bench-{drill_id}")
    sent, got, stop = {}, {}, threading.Event()
    try:
        with PeakMemory() as memory, sdk_worker_pool() as worker_pool:
            result = fusion_pipeline(settings, config, worker_pool).run()
            level_station_of = {g.reach_id: g.station_id for g in catalogue.level_gauges}
            reader = threading.Thread(target=arrivals, args=(settings, [settings.topics.risk_scores], stop, got,
                                                             _score_key(level_station_of)))
            reader.start()
            time.sleep(8.0)  # Prism start-up, the harnesses' and the readers' first polls
            rate = paced_send(settings, catalogue, minutes, drill_id, args.rate, sent)
            result.wait_until_finish()
            time.sleep(1.0)
            stop.set()
            reader.join()
    finally:
        delete_topics(settings)
    scored = {k: t for k, t in sent.items() if k[0].startswith("WL-")}
    pipeline_latency = summary(latencies(scored, got, args.warmup))
    counters = {f"{c.key.metric.namespace}.{c.key.metric.name}": c.committed
                for c in result.metrics().query()["counters"] if c.key.metric.namespace != "beam" and c.committed}
    print(json.dumps({
        "gauges": args.gauges, "stream_minutes": minutes, "target_rate_per_s": args.rate,
        "baseline_rate_per_s": round(base_rate), "pipeline_rate_per_s": round(rate),
        "baseline_kafka_python_latency": baseline,
        "pipeline_latency_reading_to_score": pipeline_latency,
        "scores_missing": len(scored) - sum(1 for k in scored if k in got),
        "scores_missing_examples": sorted(f"{s} {t:%H:%M}" for s, t in scored if (s, t) not in got)[:8],
        "pipeline_p99_over_baseline_p99": (round(pipeline_latency["p99_ms"] / baseline["p99_ms"], 1)
                                           if pipeline_latency.get("n") and baseline.get("n") else None),
        "pipeline_counters": dict(sorted(counters.items())),
        "peak_rss_mib": memory.peak_mib,
    }, indent=2))


if __name__ == "__main__":
    main()
