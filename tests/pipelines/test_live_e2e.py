"""The live job on real parts (Kafka broker, Prism, the alert API over HTTP), fed as field gateways
feed it: the gateway simulator plays the whole catalogue through the API's ingest route with
wall-clock times and no stream_control ticks; one gauge falls silent; the camera, drone and grid
feeds stay empty; one river rises past its thresholds.

One supervised job (``suibou pipeline`` as a process) must, each within a stated time: show
rain and level statuses, scores, the silent gauge's fault and an alert through the API; run past
the job service deadline that used to end live jobs (shortened here to 20 s); come back by
itself after its runner is killed with SIGKILL; and stop cleanly on SIGTERM. By the end every
level reading taken in has been scored exactly once.
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
from typing import Self

import pytest

from suibou import infra
from suibou.catalogue import StationCatalogue
from suibou.contracts import ContractError, LevelReading, RiskScore, parse_event
from suibou.infra import api_server, processes
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = pytest.mark.e2e

CATALOGUE = "kanda-basin"
SILENT = "WL-KANDA-EIFUKU"  # falls silent 6 s after the gateway starts


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    from suibou.infra import kafka, prism

    base = Settings()
    infra.up(base)  # the project's own broker and Prism, shared with the other tests
    home = tmp_path_factory.mktemp("live")
    settings = Settings(topic_prefix=f"test-live-{uuid.uuid4().hex[:8]}", home=home,
                        kafka_bootstrap=base.bootstrap_servers, prism_path=prism.ensure_prism(base),
                        api_port=_free_port(), database_url=f"sqlite:///{home / 'alerts.db'}")
    kafka.ensure_topics(settings, settings.topics.all_topics)
    api_server.ensure_running(settings)
    yield settings
    api_server.stop(settings)
    with contextlib.suppress(Exception):
        delete_topics(settings)


RISING = "WL-ZENPUKUJI-NARITA"  # posted by the test itself: rises past caution (2.0 m) and evacuation (2.6 m)
EVERY_S = 2


class RisingRiver:
    """One gauge the test posts through the ingest route, rising 5 cm every ``EVERY_S``."""

    def __init__(self, base_url: str, key: str) -> None:
        from replay_data.gateway import HttpSink

        self._sink = HttpSink(base_url, key)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        level = 1.5
        while not self._stop.is_set():
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            level = min(3.2, level + 0.05)
            self._sink.send([LevelReading(event_id=f"rise:{now:%Y%m%dT%H%M%S}", event_time=now, station_id=RISING,
                                          level_m=round(level, 2))])
            self._stop.wait(EVERY_S)


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


def _api(settings: Settings, method: str, path: str, body: dict | None = None) -> dict:
    from suibou.cli import api_headers

    request = urllib.request.Request(f"{api_server.base_url(settings)}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={**api_headers(settings), "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _live_state(settings: Settings) -> dict:
    return _api(settings, "GET", "/v1/console/state?stream=live")


def test_the_live_job_scores_gateway_readings_through_the_api_outlives_its_deadline_comes_back_and_stops(settings):
    from replay_data.gateway import GatewayOptions, GatewaySimulator, HttpSink, run

    catalogue = StationCatalogue.load(CATALOGUE)
    gauges = [g.station_id for g in (*catalogue.rain_gauges, *catalogue.level_gauges)]
    gateway = _api(settings, "POST", "/v1/admin/gateways", {"name": "test gateway", "stations": gauges})
    key = gateway["api_key"]
    metrics_port = _free_port()
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "suibou", "pipeline", "--catalogue", CATALOGUE, "--metrics-port", str(metrics_port),
         "--silence-minutes", "1", "--job_server_timeout=20"],
        env=processes.settings_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(supervisor.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    stop = threading.Event()
    simulator = GatewaySimulator(catalogue, dt.datetime.now(dt.UTC), GatewayOptions(
        interval_s=EVERY_S, jitter_s=1.0, reorder_probability=0.05, silent={SILENT: 6.0}, seed=15,
        stations=tuple(g for g in gauges if g != RISING)))
    feeding = threading.Thread(target=run, args=(simulator, HttpSink(api_server.base_url(settings), key)),
                               kwargs={"stop": stop}, daemon=True)
    try:
        _wait("the live job to run", lambda: _status(settings).get("state") == "running", 240)
        _wait("/healthz to say so", lambda: _api(settings, "GET", "/healthz")["live_job"] == "running", 30)
        feeding.start()
        with RisingRiver(api_server.base_url(settings), key):
            fed_at = time.monotonic()

            # Statuses and scores through the API, with no ticks and three empty feeds.
            def statuses_and_scores() -> bool:
                state = _live_state(settings)
                rain = [v for k, v in state["stations"].items() if k.startswith("RG-") and v["latest"]]
                level = [v for k, v in state["stations"].items() if k.startswith("WL-") and v["latest"]]
                scored = [a for a in state["areas"].values() if a["score"]]
                return bool(rain and level and scored)

            _wait("rain and level statuses and scores at the API", statuses_and_scores, 90, 2)
            statuses_after = time.monotonic() - fed_at

            # An alert for the rising river, raised by the job and served by the API.
            def alert() -> list:
                return [a for a in _api(settings, "GET", "/v1/alerts?limit=100")["data"]
                        if a["area_id"] == "R-ZENPUKUJI-UPPER" and not a.get("exercise")]

            _wait("an alert for the rising river at the API", alert, 120, 2)

            # Past the job service deadline (20 s here, 300 s by default) that ended live jobs.
            before = _status(settings)
            time.sleep(25)
            status = _status(settings)
            assert (status["state"], status["restarts"], status["since"]) == (
                "running", before["restarts"], before["since"]), status

            # The silent gauge is reported although the others keep reporting and no tick is sent.
            def silent_fault() -> bool:
                fault = _live_state(settings)["stations"][SILENT]["fault"]
                return bool(fault and fault.get("kind") == "silent")

            _wait("the silent gauge's fault at the API", silent_fault, 150, 3)
            text = _metrics(metrics_port)
            assert "suibou_pipeline_reading_to_score_seconds_count" in text
            assert 'suibou_pipeline_open_faults{kind="silent"} 1.0' in text

            # Kill the runner outright: the supervisor restarts the job, which resumes.
            restarts = _status(settings)["restarts"]
            prism = [p for p in _children(supervisor.pid) if b"--job_port" in Path(f"/proc/{p}/cmdline").read_bytes()]
            assert prism, "the supervisor runs its own Prism"
            os.kill(prism[0], signal.SIGKILL)
            _wait("a restart", lambda: _status(settings).get("restarts", 0) > restarts, 120)
            _wait("the job running again", lambda: _status(settings).get("state") == "running", 300)

            def fresh_scores() -> bool:
                now = dt.datetime.now(dt.UTC)
                return any(isinstance(e, RiskScore) and (now - e.event_time).total_seconds() < 20
                           for e in _outputs(settings, settings.topics.risk_scores))

            _wait("scores after the restart", fresh_scores, 240, 3)
        stop.set()
        feeding.join(30)

        # Every level reading taken in (through the route, onto Kafka) is scored once.
        reach_of = {g.station_id: g.reach_id for g in catalogue.level_gauges}
        taken = {(reach_of[e.station_id], e.event_time) for e in _outputs(settings, settings.topics.level)
                 if isinstance(e, LevelReading)}
        assert len(taken) > 50

        def all_scored() -> list:
            found = [e for e in _outputs(settings, settings.topics.risk_scores)
                     if isinstance(e, RiskScore) and e.hazard.value == "flood" and not e.event_id.endswith(":held")]
            return found if taken <= {(s.area_id, s.event_time) for s in found} else []

        scores = _wait("a score for every level reading taken in", all_scored, 300, 5)
        repeated = [i for i, n in collections.Counter(s.event_id for s in scores).items() if n > 1]
        assert not repeated, f"{len(repeated)} scores published twice, e.g. {repeated[:3]}"
        assert statuses_after < 90
    finally:
        stop.set()
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
