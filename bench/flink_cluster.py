"""The fusion job on a Flink session cluster: throughput at parallelism 1 and 2 next to Prism,
and a drill with a TaskManager killed half-way.

Starts suibou's Flink session cluster (:mod:`suibou.infra.flink_cluster`: one
JobManager and two TaskManagers as separate JVMs, RocksDB checkpoints) and a
job server submitting to it, then, on fresh topics each:

1. ``prism``: the drill on Prism (the reference chain of alerts);
2. ``flink-p1`` / ``flink-p2``: the same drill on the cluster at parallelism 1
   and 2;
3. ``flink-kill`` (with ``--kill``): the drill at parallelism 2 with TaskManager 2
   killed (SIGKILL) once the job has sent its first alerts and completed a
   checkpoint, and started again 5 s later. Flink restores the job from that
   checkpoint and replays what followed it; the alert writers read back what
   was already sent (``pipelines.kafka_io.PublishedLedger``), so no alert may be
   missing or repeated.

For each it prints the wall time, messages per second, the job's checkpoints
(completed, and the one it was restored from) and whether the alert chain
equals Prism's (the recorded golden chain when the Prism run failed), else how
many alert messages are missing or repeated.
Nothing is written anywhere: copy the figures, with the machine they were
measured on, into ``bench/pipeline.md``. Stops the cluster and its job server
at the end.

    python bench/flink_cluster.py --storm suginami-2005-mini
    python bench/flink_cluster.py --storm suginami-2005-mini --kill --only flink-kill
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid

from benchkit import delete_topics
from suibou import infra
from suibou.drill import alert_chain, drill_alert_messages, run_drill
from suibou.infra import flink, flink_cluster, flink_rest
from suibou.settings import PROJECT_ROOT, Settings, get_settings

GOLDEN = PROJECT_ROOT / "tests" / "golden"


def _settings(tag: str, base: Settings) -> Settings:
    return base.model_copy(update={"topic_prefix": f"bench-{tag}-{uuid.uuid4().hex[:6]}"})


def _checkpoints(settings: Settings, job_name: str) -> dict:
    address = flink_rest.rest_address(settings)
    job = flink_rest.find_job(address, job_name, running=False)
    return (flink_rest.checkpoints(address, job) or {}) if job else {}


def _kill_when_alerted(settings: Settings, job_name: str, stop: threading.Event, seen: dict) -> None:
    """Kills TaskManager 2 once the job has sent alerts and completed a checkpoint; restarts it 5 s later."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        topic = settings.topics.alerts
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        while not stop.wait(0.5):
            seen.update(_checkpoints(settings, job_name))
            alerts = sum(consumer.end_offsets(partitions).values())
            if alerts > 0 and seen.get("completed", 0) > 0:
                seen["alerts_before_kill"] = alerts
                print(f"[bench] killing TaskManager 2 after checkpoint {seen['completed']} and "
                      f"{seen['alerts_before_kill']} alert messages", file=sys.stderr, flush=True)
                flink_cluster.kill_taskmanager(settings, 2)
                time.sleep(5)
                flink_cluster.start_taskmanager(settings, 2)
                break
        while not stop.wait(2.0):  # the job's checkpoint counts until it ends
            seen.update(_checkpoints(settings, job_name))
    finally:
        consumer.close()


def run(tag: str, base: Settings, storm: str, runner: str, kill: bool = False) -> dict:
    settings = _settings(tag, base)
    infra.kafka.ensure_topics(settings, settings.topics.all_topics)
    stop = threading.Event()
    seen: dict = {}
    drill_id = f"drill-{storm}-{tag}-{uuid.uuid4().hex[:6]}"
    killer = (threading.Thread(target=_kill_when_alerted, args=(settings, drill_id, stop, seen), daemon=True)
              if kill else None)
    if killer is not None:
        killer.start()
    started = time.monotonic()
    try:
        result = run_drill(storm, settings, runner=runner, progress=False, timeout_s=1200, drill_id=drill_id)
        elapsed = time.monotonic() - started
        chain = alert_chain(drill_alert_messages(settings, result.drill_id, result.alert_offsets), result.drill_id)
    except RuntimeError as error:  # A failed run is reported with the others, not the end of the bench.
        print(f"[bench] {tag} failed: {error}", file=sys.stderr, flush=True)
        return {"tag": tag, "state": "FAILED", "elapsed_s": time.monotonic() - started, "messages_per_s": 0.0,
                "chain": []}
    finally:
        stop.set()
        delete_topics(settings)
    if runner == "flink":
        seen.update(_checkpoints(settings, drill_id))
    return {"tag": tag, "state": result.pipeline_state, "elapsed_s": elapsed,
            "messages_per_s": result.published / elapsed, "chain": chain, "checkpoints": seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storm", default="suginami-2005-mini")
    parser.add_argument("--kill", action="store_true", help="also run the drill with a TaskManager killed")
    parser.add_argument("--only", action="append", help="run only these (prism, flink-p1, flink-p2, flink-kill)")
    args = parser.parse_args()
    base = get_settings()
    infra.up(base)
    flink_cluster.ensure_session_cluster(base, taskmanagers=2)
    wanted = args.only or ["prism", "flink-p1", "flink-p2", *(["flink-kill"] if args.kill else [])]
    results = []
    try:
        for tag in wanted:
            if tag == "prism":
                results.append(run(tag, base, args.storm, "prism"))
                continue
            parallelism = 1 if tag == "flink-p1" else 2
            cluster = flink_cluster.job_server_settings(base, parallelism)
            results.append(run(tag, cluster, args.storm, "flink", kill=tag == "flink-kill"))
    finally:
        flink.stop(flink_cluster.job_server_settings(base))
        flink_cluster.stop_session_cluster(base)
    reference = next((r["chain"] for r in results if r["tag"] == "prism" and r["state"] != "FAILED"), None)
    if reference is None and GOLDEN.joinpath(f"{args.storm}.json").is_file():
        # Prism's chain as recorded (tests/golden), when Prism did not run or failed here.
        reference = json.loads(GOLDEN.joinpath(f"{args.storm}.json").read_text())["alerts"]
    print(f"{'run':<12} {'state':<10} {'wall s':>8} {'msg/s':>8} {'checkpoints':>12} {'alerts':>7}  same as Prism")
    for r in results:
        keys = [(a["alert_id"], a["sequence"]) for a in r["chain"]]
        repeated = len(keys) - len(set(keys))
        missing = len({(a["alert_id"], a["sequence"]) for a in reference or []} - set(keys))
        same = "n/a" if reference is None else ("yes" if r["chain"] == reference else
                                                f"no ({missing} missing, {repeated} repeated)")
        stats = r.get("checkpoints") or {}
        restored = f"{stats.get('completed', '-')}" + (f" (from {stats['restored_from']})"
                                                        if stats.get("restored_from") else "")
        print(f"{r['tag']:<12} {r['state']:<10} {r['elapsed_s']:>8.1f} {r['messages_per_s']:>8.1f} "
              f"{restored:>12} {len(r['chain']):>7}  {same}")


if __name__ == "__main__":
    main()
