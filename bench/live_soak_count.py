"""What a live run put on Kafka, counted: ``python bench/live_soak_count.py [--minutes M]``.

Reads back, from the topics of the current settings (``SUIBOU_*``), everything
live (no drill id) stamped in the last M minutes, and checks what an operator
checks after a soak: every level reading scored once for its reach at its
time, no score id repeated, the dead letters and faults, and how many scores
carried the rain grids' indices. Run it beside ``suibou infra up --live`` and
``suibou gateway`` (bench/pipeline.md, "Live soak").
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import sys
from typing import Any

from suibou.settings import get_settings

INDICES = ("surface_rainfall_index_mm", "runoff_index_mm_h", "runoff_index_60min_max_mm_h")


def read_topic(bootstrap: str, topic: str, since: dt.datetime) -> list[dict[str, Any]]:
    """Every live record of ``topic`` stamped at or after ``since`` (a consumer of its own, from the start)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        starts = consumer.offsets_for_times({p: int(since.timestamp() * 1000) for p in partitions})
        ends = consumer.end_offsets(partitions)
        for p in partitions:
            found = starts.get(p)
            consumer.seek(p, found.offset if found is not None else ends[p])
        out = []
        for record in consumer:
            value = json.loads(record.value)
            if isinstance(value, dict) and value.get("drill_id") is None:
                out.append(value)
            if all((consumer.position(p) or 0) >= ends[p] for p in partitions):
                break
        return out
    finally:
        consumer.close()


def count(minutes: float, settle_s: float = 60.0) -> dict[str, Any]:
    settings = get_settings()
    topics = settings.topics
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)
    levels = read_topic(settings.bootstrap_servers, topics.level, since)
    scores = [s for s in read_topic(settings.bootstrap_servers, topics.risk_scores, since)
              if s.get("hazard") == "flood"]
    faults = read_topic(settings.bootstrap_servers, topics.faults, since)
    dead = read_topic(settings.bootstrap_servers, topics.dead_letter, since)
    grids = read_topic(settings.bootstrap_servers, topics.grid, since)
    ids = collections.Counter(s["event_id"] for s in scores)
    scored = {(s["area_id"], s["event_time"]) for s in scores}
    from suibou.catalogue import StationCatalogue

    reach_of: dict[str, str] = {}
    for name in ("tama-basin", "kanda-basin", "meguro-basin", "shakujii-basin"):
        reach_of.update({g.station_id: g.reach_id for g in StationCatalogue.load(name).level_gauges})
    # Readings of the last ``settle_s`` may still be on their way through the job.
    settled = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=settle_s)).isoformat()
    unscored = [r for r in levels if (reach_of.get(r["station_id"]), r["event_time"]) not in scored
                and r["event_time"] < settled]
    # Under flood/5 a score without the index's grids carries its stand-in, and says so among its faults.
    with_index = [s for s in scores if "runoff_index_mm_h" in s["features"]
                  and not any("rain grid" in f for f in s.get("faults", ()))]
    return {
        "minutes": minutes,
        "level_readings": len(levels),
        "flood_scores": len(scores),
        "level_readings_without_a_score": len(unscored),
        "repeated_score_ids": sum(n - 1 for n in ids.values() if n > 1),
        "grid_notices": len(grids),
        "scores_with_runoff_index": len(with_index),
        "index_max": {k: max((s["features"].get(k, 0.0) for s in scores), default=None) for k in INDICES},
        "faults": dict(collections.Counter(f"{f.get('kind')}:{f.get('station_id')}" for f in faults)),
        "dead_letters": len(dead),
        "dead_letter_reasons": sorted({str(d.get("reason"))[:120] for d in dead})[:10],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how far back to read (default 30)")
    args = parser.parse_args(argv)
    json.dump(count(args.minutes), sys.stdout, indent=1, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
