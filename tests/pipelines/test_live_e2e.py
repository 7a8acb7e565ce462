"""The live job on real parts (Kafka broker, Prism), fed as a field gateway feeds it: wall-clock
times, no stream_control ticks, a gauge that falls silent, feeds that stay empty.

One supervised job (``suibou pipeline`` as a process) is watched through its own
status and metrics while it runs past the job service deadline that used to end
live jobs (shortened here to 20 s), is killed (its runner, with SIGKILL) and
comes back by itself, and is finally stopped with SIGTERM. Every level reading
it was sent must have been scored exactly once by the end.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from suibou import infra
from suibou.catalogue import StationCatalogue
from suibou.contracts import (
    ContractError,
    FaultKind,
    LevelReading,
    RainReading,
    RiskScore,
    SensorFault,
    parse_event,
)
from suibou.infra import processes
from suibou.settings import Settings

pytestmark = pytest.mark.e2e

CATALOGUE = "kanda-basin"
SILENT = "WL-KANDA-EIFUKU"  # reports twice, then never again
EVERY_S = 2.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    from suibou.infra import kafka, prism

    base = Settings()
    infra.up(base)  # the project's own broker and Prism, shared with the other tests
    settings = Settings(topic_prefix=f"test-live-{uuid.uuid4().hex[:8]}", home=tmp_path_factory.mktemp("live"),
                        kafka_bootstrap=base.bootstrap_servers, prism_path=prism.ensure_prism(base))
    kafka.ensure_topics(settings, settings.topics.all_topics)
    yield settings
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    with contextlib.suppress(Exception):
        admin.delete_topics(settings.topics.all_topics)
    admin.close()


class Gateway:
    """Sends one reading per gauge every ``EVERY_S``, stamped with the wall clock; no ticks."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaProducer

        self._settings = settings
        self._catalogue = StationCatalogue.load(CATALOGUE)
        self._producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                                       enable_idempotence=True)
        self.levels: list[LevelReading] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._rounds = 0

    def __enter__(self) -> Gateway:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._producer.flush()
        self._producer.close()

    def _run(self) -> None:
        topics = self._settings.topics
        while not self._stop.is_set():
            now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
            self._rounds += 1
            for gauge in self._catalogue.rain_gauges:
                reading = RainReading(event_id=f"{gauge.station_id}:{now:%H%M%S}", event_time=now,
                                      station_id=gauge.station_id, rain_mm=0.5, interval_s=int(EVERY_S))
                self._send(topics.rain, reading)
            for index, gauge in enumerate(self._catalogue.level_gauges):
                if gauge.station_id == SILENT and self._rounds > 2:
                    continue
                level = LevelReading(event_id=f"{gauge.station_id}:{now:%H%M%S}", event_time=now,
                                     station_id=gauge.station_id, level_m=1.0 + 0.001 * self._rounds + 0.1 * index)
                self._send(topics.level, level)
                self.levels.append(level)
            self._producer.flush()
            self._stop.wait(EVERY_S)

    def _send(self, topic: str, event) -> None:  # type: ignore[no-untyped-def]
        self._producer.send(topic, key=event.station_id.encode(), value=event.to_json(),
                            timestamp_ms=int(event.event_time.timestamp() * 1000))


def _outputs(settings: Settings, topic: str) -> list:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        found, quiet = [], 0
        while quiet < 3:
            batches = consumer.poll(timeout_ms=500)
            quiet = 0 if any(batches.values()) else quiet + 1
            for records in batches.values():
                for record in records:
                    with contextlib.suppress(ContractError):
                        found.append(parse_event(record.value))
        return found
    finally:
        consumer.close()


def _status(settings: Settings) -> dict:
    from suibou.live import status_file

    try:
        return json.loads(status_file(settings).read_text())
    except (OSError, ValueError):
        return {}


def _wait(what: str, condition, timeout_s: float, every_s: float = 1.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_the_live_job_scores_without_ticks_outlives_its_deadline_comes_back_and_stops_cleanly(settings):
    metrics_port = _free_port()
    env = processes.settings_env(settings)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "suibou", "pipeline", "--catalogue", CATALOGUE, "--metrics-port", str(metrics_port),
         "--silence-minutes", "1", "--job_server_timeout=20"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(supervisor.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        _wait("the live job to run", lambda: _status(settings).get("state") == "running", 240)
        with Gateway(settings) as gateway:
            def scored_recently() -> bool:
                scores = [e for e in _outputs(settings, settings.topics.risk_scores) if isinstance(e, RiskScore)]
                now = dt.datetime.now(dt.timezone.utc)
                return any((now - s.event_time).total_seconds() < 30 for s in scores)

            _wait("scores of live readings, with no ticks and three empty feeds", scored_recently, 180, 3)
            # Past the job service deadline (20 s here, 300 s by default) that ended live jobs.
            before = _status(settings)
            time.sleep(30)
            status = _status(settings)
            assert (status["state"], status["restarts"], status["since"]) == (
                "running", before["restarts"], before["since"]), status
            _wait("scores after the deadline", scored_recently, 60, 3)
            assert "suibou_pipeline_reading_to_score_seconds_count" in _metrics(metrics_port)

            # The silent gauge is reported, although the other gauges keep reporting
            # and no clock tick is ever sent.
            def silent_reported() -> bool:
                faults = [e for e in _outputs(settings, settings.topics.faults) if isinstance(e, SensorFault)]
                return any(f.station_id == SILENT and f.kind is FaultKind.SILENT and f.drill_id is None
                           for f in faults)

            _wait("the silent gauge's fault", silent_reported, 180, 5)

            # Kill the runner outright: the supervisor restarts the job, which resumes.
            prism = [p for p in _children(supervisor.pid) if b"--job_port" in Path(f"/proc/{p}/cmdline").read_bytes()]
            assert prism, "the supervisor runs its own Prism"
            restarts = _status(settings)["restarts"]
            os.kill(prism[0], signal.SIGKILL)
            _wait("a restart", lambda: _status(settings).get("restarts", 0) > restarts, 120)
            assert "Prism" in _status(settings)["last_restart_reason"]
            _wait("the job running again", lambda: _status(settings).get("state") == "running", 300)
            _wait("scores after the restart", scored_recently, 240, 3)
        sent = gateway.levels

        # Every level reading sent is scored once, before and after the kill.
        catalogue = StationCatalogue.load(CATALOGUE)
        reach_of = {g.station_id: g.reach_id for g in catalogue.level_gauges}
        expected = {(reach_of[r.station_id], r.event_time) for r in sent}

        def all_scored() -> list:
            found = [e for e in _outputs(settings, settings.topics.risk_scores)
                     if isinstance(e, RiskScore) and e.hazard.value == "flood" and not e.event_id.endswith(":held")]
            return found if expected <= {(s.area_id, s.event_time) for s in found} else []

        scores = _wait("a score for every level reading sent", all_scored, 300, 5)
        repeated = [i for i, n in collections.Counter(s.event_id for s in scores).items() if n > 1]
        assert not repeated, f"{len(repeated)} scores published twice, e.g. {repeated[:3]}"
    finally:
        children = _children(supervisor.pid)
        grandchildren = [g for c in children for g in _children(c)]
        supervisor.send_signal(signal.SIGTERM)
        try:
            code = supervisor.wait(30)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            raise
    assert code == 0
    time.sleep(3)
    left = [p for p in children + grandchildren if _alive(p)]
    assert not left, f"processes left behind after SIGTERM: {left}"
    reader.join(5)
    text = "".join(output)
    assert "Traceback" not in text, text[-3000:]
