"""Parts of the system killed (SIGKILL) in the middle of a drill: every alert of the storm still reaches the
alerts topic once, exactly the storm's recorded chain (``tests/golden``).

- **The broker**, at the storm's first alert, and started again 5 s later: the drill goes on.
- **The drill's job**: its runner (Prism, which holds every bundle, timer and state cell) and its SDK harness
  processes, once the storm's first two alerts are out. The drill resumes the job from Kafka, as the live
  supervisor resumes the live job.

Marked ``e2e``: the embedded broker, Beam on Prism. The drill runs as fast as it can, which still keeps the
publisher at most half an hour of storm time ahead of the job, so either kill comes with most of the storm
still to publish and most of its alerts still to come.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from suibou import infra
from suibou.drill import DrillResult, alert_chain, drill_alert_messages, new_drill_id, run_drill
from suibou.infra import kafka
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = pytest.mark.e2e

STORM = "suginami-2005-mini"
RECORDED = json.loads((Path(__file__).resolve().parent / "golden" / f"{STORM}.json").read_text())["alerts"]


@pytest.fixture
def settings():
    settings = Settings(topic_prefix=f"crash-{uuid.uuid4().hex[:8]}")
    infra.up(settings)
    yield settings
    if settings.uses_embedded_kafka:
        kafka.ensure_running(settings)  # after a failed broker test
    delete_topics(settings)


def assert_the_recorded_chain(settings: Settings, drill_id: str, alert_offsets: dict, crash: dict[str, Any]) -> None:
    """The drill's alerts are the storm's recorded chain: none missing, none twice, nothing else."""
    chain = alert_chain(drill_alert_messages(settings, drill_id, alert_offsets), drill_id)

    def brief(alerts: list[dict]) -> list[str]:
        return [f"{a['event_time'][11:16]} {a['area_id']} {a['msg_type']} L{a['level']} #{a['sequence']}"
                for a in alerts]

    missing = [a for a in RECORDED if a not in chain]
    repeated = len(chain) - len({json.dumps(a, sort_keys=True) for a in chain})
    assert (missing, repeated) == ([], 0), f"{crash}: got {brief(chain)}, recorded {brief(RECORDED)}"
    assert chain == RECORDED


def drill_with_a_kill(settings: Settings, drill_id: str, after_alerts: int,
                      kill: Callable[[dict[str, Any]], None]) -> tuple[DrillResult, dict[str, Any]]:
    """Runs the drill here (it handles signals, which only the main thread may) while another thread waits
    for its first ``after_alerts`` alert messages and then calls ``kill``, which notes what it did in the
    dict it is given. Returns the drill's result and those notes (``error`` if the kill failed)."""
    crash: dict[str, Any] = {}

    def kill_after_the_alerts() -> None:
        try:
            deadline = time.monotonic() + 300
            while len(before := drill_alert_messages(settings, drill_id, timeout_s=2)) < after_alerts:
                if time.monotonic() > deadline:
                    crash["error"] = f"not {after_alerts} alerts within 300 s"
                    return
                time.sleep(0.2)
            crash["alerts_before"] = len(before)
            kill(crash)
        except Exception as error:  # noqa: BLE001 - reported by the test
            crash["error"] = repr(error)

    killer = threading.Thread(target=kill_after_the_alerts, daemon=True)
    killer.start()
    result = run_drill(STORM, settings, drill_id=drill_id, progress=False, timeout_s=600)
    killer.join(timeout=60)
    return result, crash


def test_a_broker_killed_mid_drill_loses_no_alert_and_repeats_none(settings: Settings) -> None:
    if not settings.uses_embedded_kafka:
        pytest.skip("kills the embedded broker (SUIBOU_KAFKA_BOOTSTRAP is set)")
    drill_id = new_drill_id(STORM)

    def kill_the_broker(crash: dict[str, Any]) -> None:
        pid = int(kafka.KafkaPaths.from_settings(settings).pid_file.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        crash["killed_at"] = time.monotonic()
        time.sleep(5)  # the job, the publisher and their clients meet a dead broker
        kafka.ensure_running(settings)
        crash["back_at"] = time.monotonic()

    result, crash = drill_with_a_kill(settings, drill_id, 1, kill_the_broker)
    assert "back_at" in crash and "error" not in crash, crash
    assert crash["alerts_before"] < len(RECORDED), "the broker was killed after the storm's last alert"
    assert_the_recorded_chain(settings, drill_id, result.alert_offsets, crash)


def job_processes() -> list[psutil.Process]:
    """This process's Prism runner and SDK harness processes: the drill's job."""
    return [child for child in psutil.Process().children(recursive=True)
            if "prism" in child.name() or "suibou.infra.sdk_workers" in child.cmdline()]


def test_a_job_killed_mid_drill_is_resumed_and_loses_no_alert_and_repeats_none(settings: Settings) -> None:
    drill_id = new_drill_id(STORM)

    def kill_the_job(crash: dict[str, Any]) -> None:
        victims = job_processes()
        crash["killed"] = sorted({p.name() for p in victims})
        for process in victims:
            process.send_signal(signal.SIGKILL)

    result, crash = drill_with_a_kill(settings, drill_id, 2, kill_the_job)
    assert "killed" in crash and "error" not in crash, crash
    assert any("prism" in name for name in crash["killed"]), crash
    assert crash["alerts_before"] < len(RECORDED), "the job was killed after the storm's last alert"
    assert result.job_restarts == 1
    assert_the_recorded_chain(settings, drill_id, result.alert_offsets, crash)
