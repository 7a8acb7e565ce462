"""Throughput of the fusion pipeline on Prism against the raw kafka-python ceiling.

A synthetic basin of G reaches (one level gauge and one rain gauge each) gets M
minutes of 1-minute readings, published to fresh topics with the drill
publisher's clock ticks and end markers. Then, in the same run:

1. baseline: kafka-python reads the same records back (assign + seek, JSON
   decode), the ceiling any Python consumer on this machine starts from;
2. pipeline: the whole fusion job (read, parse, rainfall, levels, fusion, ONNX
   scoring, alerts, write) works through the backlog until the end markers,
   run as drills and the live job run it (each stateful stage in an SDK
   harness process of its own).

It prints events per second for both and the pipeline's ratio to the ceiling.
Synthetic data only; nothing here is a measurement of a real storm.

    python bench/pipeline_throughput.py --gauges 50 --minutes 120
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import time
import uuid

from benchkit import delete_topics
from pipelines.job import JobConfig, fusion_pipeline
from suibou import infra
from suibou.catalogue import LevelGauge, RainGauge, Reach, StationCatalogue
from suibou.contracts import ControlKind, LevelReading, RainReading, StreamControl
from suibou.infra.sdk_workers import sdk_worker_pool
from suibou.live import JOB_HARNESSES
from suibou.settings import Settings

T0 = dt.datetime(2019, 10, 12, 0, 0, tzinfo=dt.UTC)


def synthetic_basin(gauges: int) -> StationCatalogue:
    reaches, levels, rains = [], [], []
    for i in range(gauges):
        lon, lat = 139.3 + 0.01 * (i % 40), 35.5 + 0.01 * (i // 40)
        reach_id, level_id, rain_id = f"R-BENCH-{i}", f"WL-BENCH-{i}", f"RG-BENCH-{i}"
        reaches.append(Reach(reach_id, "bench", f"Bench reach {i}", f"試験区間{i}", level_id,
                             ((lon, lat), (lon + 0.005, lat))))
        levels.append(LevelGauge(level_id, f"Bench {i}", f"試験{i}", lon, lat, reach_id,
                                 1.0, 1.5, 2.0, 2.5, 3.0))
        rains.append(RainGauge(rain_id, f"Bench rain {i}", f"試験雨量{i}", lon, lat, (reach_id,)))
    return StationCatalogue("bench", tuple(rains), tuple(levels), tuple(reaches), provenance="synthetic benchmark")


def readings(catalogue: StationCatalogue, minutes: int, drill_id: str):
    """1-minute rain and level readings in event-time order; levels rise and fall once."""
    for minute in range(1, minutes + 1):
        when = T0 + dt.timedelta(minutes=minute)
        phase = math.sin(math.pi * minute / minutes)
        for i, (rain, level) in enumerate(zip(catalogue.rain_gauges, catalogue.level_gauges)):
            yield rain.station_id, RainReading(
                event_id=f"{rain.station_id}:{minute}", station_id=rain.station_id, event_time=when,
                rain_mm=round(2.0 * phase, 2), interval_s=60, exercise=True, drill_id=drill_id)
            yield level.station_id, LevelReading(
                event_id=f"{level.station_id}:{minute}", station_id=level.station_id, event_time=when,
                level_m=round(0.5 + 2.3 * phase * (0.8 + 0.4 * (i % 2)), 3), exercise=True, drill_id=drill_id)


def publish(settings: Settings, catalogue: StationCatalogue, minutes: int, drill_id: str) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=20,
                             batch_size=256 * 1024)
    topics = settings.topics
    partitions = {t: sorted(producer.partitions_for(t)) for t in topics.observation_topics.values()}
    sent = 0
    last_minute = 0
    for key, event in readings(catalogue, minutes, drill_id):
        minute = int((event.event_time - T0).total_seconds() // 60)
        if minute != last_minute and last_minute:
            sent += _controls(producer, partitions, ControlKind.TICK, T0 + dt.timedelta(minutes=last_minute),
                              drill_id)
        last_minute = minute
        topic = topics.rain if isinstance(event, RainReading) else topics.level
        producer.send(topic, key=key.encode(), value=event.to_json(),
                      timestamp_ms=int(event.event_time.timestamp() * 1000))
        sent += 1
    sent += _controls(producer, partitions, ControlKind.END, T0 + dt.timedelta(minutes=minutes), drill_id)
    producer.flush()
    producer.close()
    return sent


def _controls(producer, partitions, kind, when, drill_id) -> int:
    count = 0
    for topic, parts in partitions.items():
        for partition in parts:
            control = StreamControl(event_id=f"{kind.value}:{topic}:{partition}:{when.timestamp():.0f}",
                                    event_time=when, control=kind, source=drill_id, exercise=True,
                                    drill_id=drill_id)
            producer.send(topic, value=control.to_json(), partition=partition,
                          timestamp_ms=int(when.timestamp() * 1000))
            count += 1
    return count


def consume_baseline(settings: Settings) -> tuple[int, float]:
    """kafka-python alone: every record of the observation topics, decoded."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                             max_partition_fetch_bytes=4 * 1024 * 1024)
    tps = [TopicPartition(t, p) for t in settings.topics.observation_topics.values()
           for p in sorted(consumer.partitions_for_topic(t))]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    ends = consumer.end_offsets(tps)
    total = sum(ends.values())
    count = 0
    started = time.perf_counter()
    while count < total:
        for records in consumer.poll(timeout_ms=500, max_records=5000).values():
            for record in records:
                json.loads(record.value)
                count += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return count, elapsed


def run_pipeline(settings: Settings, catalogue: StationCatalogue, drill_id: str, fold_grain_s: float) -> float:
    config = JobConfig(catalogue=catalogue, topics=settings.topics, bootstrap_servers=settings.bootstrap_servers,
                       end_source=drill_id, start_offsets=None, group_id=f"bench-{drill_id}",
                       fold_grain_s=fold_grain_s)
    # Warm harness processes, as drills and the live job use: the figure is the job's
    # pace through the backlog, not how long Python takes to import Beam.
    with sdk_worker_pool(warm=JOB_HARNESSES) as worker_pool:
        # The job service's state stream ends at --job_server_timeout (a gRPC deadline).
        pipeline = fusion_pipeline(settings, config, worker_pool, options=["--job_server_timeout=3600"])
        started = time.perf_counter()
        pipeline.run().wait_until_finish()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gauges", type=int, default=50, help="reaches (one level and one rain gauge each)")
    parser.add_argument("--minutes", type=int, default=120)
    parser.add_argument("--fold-grain", type=float, default=0.0,
                        help="JobConfig.fold_grain_s: 0 as live traffic, 600 as a drill at full speed")
    args = parser.parse_args()

    settings = Settings(topic_prefix=f"bench-{uuid.uuid4().hex[:8]}")
    infra.up(settings)
    catalogue = synthetic_basin(args.gauges)
    drill_id = f"bench-{uuid.uuid4().hex[:6]}"
    try:
        started = time.perf_counter()
        sent = publish(settings, catalogue, args.minutes, drill_id)
        publish_s = time.perf_counter() - started
        count, consume_s = consume_baseline(settings)
        pipeline_s = run_pipeline(settings, catalogue, drill_id, args.fold_grain)
    finally:
        delete_topics(settings)
    events = 2 * args.gauges * args.minutes
    ceiling = count / consume_s
    pipeline_rate = events / pipeline_s
    print(json.dumps({
        "gauges": args.gauges, "minutes": args.minutes, "fold_grain_s": args.fold_grain,
        "readings": events, "records_incl_controls": sent,
        "publish_s": round(publish_s, 2),
        "baseline_kafka_python_consume_records_per_s": round(ceiling),
        "pipeline_s": round(pipeline_s, 2),
        "pipeline_readings_per_s": round(pipeline_rate),
        "pipeline_to_baseline_ratio": round(pipeline_rate / ceiling, 4),
    }, indent=2))


if __name__ == "__main__":
    main()
