"""What the benchmarks share: peak memory of the job's processes, arrival times of records, and clean-up
of their topics.

The benchmarks run as scripts (``python bench/<name>.py``), so this module is
imported by its bare name from the script's folder.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Self

import psutil

from suibou.kafka_offsets import list_offsets
from suibou.settings import Settings

_MIB = 1024 * 1024


def process_role(command_line: list[str]) -> str:
    """Which part of a local job a process of this benchmark's tree is.

    Examples:
        >>> process_role(["/home/x/.suibou/bin/prism-2.77.0", "--job_port", "8073"])
        'prism'
        >>> process_role(["/usr/bin/python3", "-m", "suibou.infra.sdk_workers", "--worker-id", "3"])
        'sdk_harnesses'
        >>> process_role(["/usr/bin/python3", "-m", "suibou", "api"])
        'alert_api'
        >>> process_role(["/usr/bin/java", "kafka.Kafka", "server.properties"])
        'other'
    """
    if command_line and "prism-" in command_line[0].rsplit("/", 1)[-1]:
        return "prism"
    if "suibou.infra.sdk_workers" in command_line:
        return "sdk_harnesses"
    if command_line[-3:] == ["-m", "suibou", "api"]:
        return "alert_api"
    return "other"


class PeakMemory(threading.Thread):
    """Samples the resident memory of this process and of every process it started.

    ``peak_mib`` holds the highest value seen of each role (``driver``: this
    process, the pipeline's launcher and, without a worker pool, its only SDK
    harness; ``prism``; ``sdk_harnesses``, summed; ``alert_api``; ``other``)
    and of ``pipeline``, the sum of driver, Prism and harnesses at one sample.
    Peaks of different roles may come from different moments.
    """

    def __init__(self, every_s: float = 0.5) -> None:
        super().__init__(daemon=True, name="peak-memory")
        self.every_s = every_s
        self.stop = threading.Event()
        self.peak_mib: dict[str, float] = {}

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.wait(self.every_s):
            sample = {"driver": me.memory_info().rss, "prism": 0, "sdk_harnesses": 0, "alert_api": 0, "other": 0}
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # ended between the listing and the reading
                    sample[process_role(child.cmdline())] += child.memory_info().rss
            sample["pipeline"] = sample["driver"] + sample["prism"] + sample["sdk_harnesses"]
            for role, rss in sample.items():
                self.peak_mib[role] = max(self.peak_mib.get(role, 0.0), round(rss / _MIB, 1))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()


def arrivals(settings: Settings, topics: list[str], stop: threading.Event, got: dict, key_of,
             ready: threading.Event | None = None) -> None:
    """Notes in ``got`` the wall time each record that ``key_of`` names first arrives, from the topics' ends
    on, until ``stop``; sets ``ready`` once it reads from the end."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                             fetch_max_wait_ms=5)
    partitions = []
    for topic in topics:
        while not consumer.partitions_for_topic(topic):
            time.sleep(0.2)
        partitions += [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    for tp, end in list_offsets(consumer, partitions).items():
        consumer.seek(tp, end)
    if ready is not None:
        ready.set()
    while not stop.is_set():
        for records in consumer.poll(timeout_ms=50).values():
            now = time.time()
            for record in records:
                key = key_of(record.value)
                if key is not None:
                    got.setdefault(key, now)
    consumer.close()


def delete_topics(settings: Settings) -> None:
    """Deletes a benchmark's topics, so that benchmarks do not pile partitions onto the broker."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        admin.delete_topics(settings.topics.all_topics)
    except Exception as error:  # noqa: BLE001 - a failed clean-up must not hide the figures
        print(f"could not delete the benchmark topics: {error!r}", file=sys.stderr)
    finally:
        admin.close()
