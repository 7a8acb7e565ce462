"""Drill replay speed: a long synthetic storm through Kafka, the pipeline and the alert API.

The storm is ``bench-<H>h-<G>g`` from the storm library: H hours over about G
invented gauges (half rain, half level) at 1-minute steps, with a river camera
on every fourth reach (a frame every 5 minutes) and a 1 km rainfall grid with
a 60-minute nowcast issued every 5 minutes (13 notices per issue). It is
materialised once into the storm cache (``<SUIBOU_HOME>/cache/storms``).

In one run, on fresh topics, it measures:

1. baseline: raw kafka-python, the same message values sent with a plain
   producer (acks=all, idempotent, as the drill publisher) and read back with
   assign + seek and a JSON decode: the ceiling for any Python path here;
2. publish: the drill publisher alone (plan, exercise marker, ticks, ends, send);
3. end to end: ``suibou.drill.run_drill`` (Prism pipeline + publisher, until the
   drill's end markers) and then until the alert API has stored every alert
   message of the drill; meanwhile the peak resident memory of the pipeline's
   processes (driver and publisher, Prism, the SDK harnesses) and of the API.

It prints the times, messages per second and the ratios to the baseline, and
appends nothing anywhere: copy the figures into ``bench/drill.md``. Synthetic
data only.

    python bench/drill_replay.py --hours 2 --gauges 50     # reduced scale
    python bench/drill_replay.py --full                     # 48 h, 200 gauges (the target: < 10 min end to end)
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import uuid
from typing import Any

from benchkit import PeakMemory, delete_topics
from replay_data.library import materialise, open_storm, storm_cache
from replay_data.publish import plan_messages, publish_storm
from suibou import infra
from suibou.drill import drill_alert_messages, run_drill
from suibou.infra import api_server
from suibou.settings import Settings, get_settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _settings(tag: str, **extra) -> Settings:
    base = get_settings()
    return Settings(home=base.home, kafka_bootstrap=base.kafka_bootstrap,
                    topic_prefix=f"bench-{tag}-{uuid.uuid4().hex[:6]}", **extra)


def baseline(storm, settings: Settings) -> dict[str, float]:
    """Raw kafka-python: send the storm's message values, then read them back."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", enable_idempotence=True,
                             linger_ms=5)
    partitions = {t: sorted(producer.partitions_for(t)) for t in settings.topics.observation_topics.values()}
    messages = [(m.topic, m.key, m.value, m.partition, m.timestamp_ms)
                for m in plan_messages(storm, settings.topics, partitions, drill_id="bench-baseline")]
    started = time.monotonic()
    for topic, key, value, partition, timestamp in messages:
        producer.send(topic, value=value, key=key, partition=partition, timestamp_ms=timestamp)
    producer.flush()
    produce_s = time.monotonic() - started
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    assigned = [TopicPartition(t, p) for t, ps in partitions.items() for p in ps]
    consumer.assign(assigned)
    consumer.seek_to_beginning()
    ends = consumer.end_offsets(assigned)
    started = time.monotonic()
    seen = 0
    while any(consumer.position(tp) < ends[tp] for tp in assigned):  # type: ignore[operator]  # int without a timeout
        for records in consumer.poll(timeout_ms=500, max_records=5000).values():
            for record in records:
                json.loads(record.value)
                seen += 1
    consume_s = time.monotonic() - started
    consumer.close()
    return {"messages": len(messages), "produce_s": produce_s, "consume_s": consume_s, "consumed": seen}


def wait_for_api(settings: Settings, drill_id: str, expected: dict[str, int], timeout_s: float = 600) -> float:
    """Seconds until the API holds every alert message of the drill."""
    import urllib.request

    from suibou.cli import api_headers

    started = time.monotonic()
    url = f"{api_server.base_url(settings)}/v1/alerts?exercise=true&include_cancelled=true&limit=1000"
    request = urllib.request.Request(url, headers=api_headers(settings))
    while time.monotonic() - started < timeout_s:
        with urllib.request.urlopen(request, timeout=10) as response:
            got = {a["alert_id"]: a["sequence"] for a in json.loads(response.read())["data"]
                   if a.get("drill_id") == drill_id}
        if got == expected:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"the API did not get every alert of {drill_id} within {timeout_s:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=int, default=2)
    parser.add_argument("--gauges", type=int, default=50)
    parser.add_argument("--full", action="store_true", help="48 hours, 200 gauges")
    parser.add_argument("--skip-e2e", action="store_true", help="only the baseline and the publisher")
    parser.add_argument("--timeout", type=float, default=3600, help="give up on the pipeline after this many seconds")
    args = parser.parse_args()
    hours, gauges = (48, 200) if args.full else (args.hours, args.gauges)
    name = f"bench-{hours}h-{gauges}g"

    started = time.monotonic()
    folder = materialise(name, storm_cache(), progress=True)
    materialise_s = time.monotonic() - started
    started = time.monotonic()
    storm = open_storm(folder)
    load_s = time.monotonic() - started
    counts = {"rain": len(storm.rain), "level": len(storm.levels), "camera": len(storm.frames),
              "grid": len(storm.grids), "drone": len(storm.drone)}
    print(f"{name}: {counts} (materialise {materialise_s:.1f} s, cached after the first run; load {load_s:.1f} s)",
          file=sys.stderr)

    results: dict[str, Any] = {"storm": name, "hours": hours, "gauges": 2 * len(storm.catalogue.level_gauges),
                                  "events": counts, "load_s": round(load_s, 2)}
    base_settings = _settings("base")
    infra.up(base_settings)
    try:
        b = results["baseline"] = baseline(storm, base_settings)
    finally:
        delete_topics(base_settings)
    raw_s = b["produce_s"] + b["consume_s"]
    print(f"\n{name}: {b['messages']} messages", flush=True)
    print(f"  baseline kafka-python  produce {b['produce_s']:7.1f} s ({b['messages'] / b['produce_s']:8.0f} msg/s)"
          f"  consume {b['consume_s']:6.1f} s ({b['consumed'] / b['consume_s']:8.0f} msg/s)", flush=True)

    pub_settings = _settings("pub")
    infra.up(pub_settings)
    try:
        report = publish_storm(storm, pub_settings, drill_id=f"bench-pub-{uuid.uuid4().hex[:6]}", progress=False)
        p = results["publish"] = {"messages": report.total, "seconds": report.wall_seconds}
    finally:
        delete_topics(pub_settings)
    results["ratio_publish_to_raw_produce"] = round(p["seconds"] / b["produce_s"], 2)
    print(f"  drill publisher alone  {p['seconds']:7.1f} s ({p['messages'] / p['seconds']:8.0f} msg/s)"
          f"  = {p['seconds'] / b['produce_s']:.1f}x the raw produce time", flush=True)

    if not args.skip_e2e:
        e2e_settings = _settings("e2e", api_port=_free_port(),
                                 database_url=f"sqlite:///{get_settings().home / f'bench-{uuid.uuid4().hex[:6]}.db'}")
        infra.up(e2e_settings)
        api_server.ensure_running(e2e_settings)
        started = time.monotonic()
        try:
            with PeakMemory() as memory:
                result = run_drill(name, e2e_settings, progress=False, timeout_s=args.timeout)
            produced = drill_alert_messages(e2e_settings, result.drill_id, result.alert_offsets, timeout_s=60)
            expected: dict[str, int] = {}
            for message in produced:
                expected[message.alert_id] = max(expected.get(message.alert_id, -1), message.sequence)
            api_s = wait_for_api(e2e_settings, result.drill_id, expected)
            e = results["end_to_end"] = {"messages": result.published, "drill_s": result.elapsed_s,
                                         "publish_s": result.publish_s, "api_wait_s": api_s,
                                         "total_s": result.elapsed_s + api_s, "alerts": len(expected),
                                         "alert_messages": len(produced), "peak_rss_mib": memory.peak_mib}
            results["ratio_end_to_end_to_raw"] = round(e["total_s"] / raw_s, 2)
            print(f"  end to end             {e['total_s']:7.1f} s (drill {e['drill_s']:.1f} s incl. publishing "
                  f"{e['publish_s']:.1f} s, then API {e['api_wait_s']:.1f} s; {e['alerts']} alerts, "
                  f"{e['alert_messages']} messages)  = {e['total_s'] / raw_s:.1f}x raw produce+consume")
            peaks = memory.peak_mib
            print(f"  peak memory            pipeline {peaks['pipeline']:.0f} MiB (driver and publisher "
                  f"{peaks['driver']:.0f}, Prism {peaks['prism']:.0f}, SDK harnesses {peaks['sdk_harnesses']:.0f}); "
                  f"alert API {peaks['alert_api']:.0f} MiB")
        except Exception as error:  # noqa: BLE001 - report the failure with the figures measured so far
            failed_s = time.monotonic() - started
            results["end_to_end"] = {"failed_after_s": failed_s, "error": f"{type(error).__name__}: {error}"[:500]}
            print(f"  end to end             FAILED after {failed_s:.0f} s: {type(error).__name__}: "
                  f"{str(error)[:200]}")
        finally:
            api_server.stop(e2e_settings)
            delete_topics(e2e_settings)
    print(json.dumps(results, default=float))


if __name__ == "__main__":
    main()
