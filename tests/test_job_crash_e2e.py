"""The drill's fusion job killed (SIGKILL) in the middle of a drill: the drill resumes it from Kafka, as the
live supervisor resumes the live job, and every alert of the storm reaches the alerts topic once, exactly the
storm's recorded chain (``tests/golden``).

Marked ``e2e``: the embedded broker, Beam on Prism. The job is killed whole: its runner (Prism, which holds
every bundle, timer and state cell) and its SDK harness processes, once the storm's first two alerts are out,
when most of the storm and its alerts are still to come.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from suibou import infra
from suibou.drill import alert_chain, drill_alert_messages, new_drill_id, run_drill
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = pytest.mark.e2e

STORM = "suginami-2005-mini"
GOLDEN = Path(__file__).resolve().parent / "golden" / f"{STORM}.json"


@pytest.fixture
def settings():
    settings = Settings(topic_prefix=f"jobcrash-{uuid.uuid4().hex[:8]}")
    infra.up(settings)
    yield settings
    delete_topics(settings)


def job_processes() -> list[psutil.Process]:
    """This process's Prism runner and SDK harness processes: the drill's job."""
    return [child for child in psutil.Process().children(recursive=True)
            if "prism" in child.name() or "suibou.infra.sdk_workers" in child.cmdline()]


def test_a_job_killed_mid_drill_is_resumed_and_loses_no_alert_and_repeats_none(settings: Settings) -> None:
    recorded = json.loads(GOLDEN.read_text())["alerts"]
    drill_id = new_drill_id(STORM)
    crash: dict[str, Any] = {}

    def kill_the_job_after_two_alerts() -> None:
        try:
            deadline = time.monotonic() + 300
            while len(before := drill_alert_messages(settings, drill_id, timeout_s=2)) < 2:
                if time.monotonic() > deadline:
                    crash["error"] = "not two alerts within 300 s"
                    return
                time.sleep(0.2)
            crash["alerts_before"] = len(before)
            victims = job_processes()
            crash["killed"] = sorted({p.name() for p in victims})
            for process in victims:
                process.send_signal(signal.SIGKILL)
        except Exception as error:  # noqa: BLE001 - reported by the test below
            crash["error"] = repr(error)

    killer = threading.Thread(target=kill_the_job_after_two_alerts, daemon=True)
    killer.start()
    # The drill runs here: it handles signals, which only the main thread may.
    result = run_drill(STORM, settings, drill_id=drill_id, progress=False, timeout_s=600)
    killer.join(timeout=60)
    assert "killed" in crash and "error" not in crash, crash
    assert any("prism" in name for name in crash["killed"]), crash
    assert crash["alerts_before"] < len(recorded), "the job was killed after the storm's last alert"
    assert result.job_restarts == 1
    chain = alert_chain(drill_alert_messages(settings, drill_id, result.alert_offsets), drill_id)
    missing = [a for a in recorded if a not in chain]
    repeated = len(chain) - len({json.dumps(a, sort_keys=True) for a in chain})
    def brief(alerts: list[dict]) -> list[str]:
        return [f"{a['event_time'][11:16]} {a['area_id']} {a['msg_type']} L{a['level']} #{a['sequence']}"
                for a in alerts]

    assert (missing, repeated) == ([], 0), f"{crash}: got {brief(chain)}, recorded {brief(recorded)}"
    assert chain == recorded
