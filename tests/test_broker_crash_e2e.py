"""The broker killed (SIGKILL) in the middle of a drill and started again: the drill goes on, and every alert of
the storm reaches the alerts topic once, exactly the storm's recorded chain (``tests/golden``).

Marked ``e2e``: the embedded broker, Beam on Prism. The drill runs as fast as it can, which still keeps the
publisher at most half an hour of storm time ahead of the job, so a broker killed at the first alert dies with
most of the storm still to publish and most of its alerts still to come.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from suibou import infra
from suibou.drill import alert_chain, drill_alert_messages, new_drill_id, run_drill
from suibou.infra import kafka
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = pytest.mark.e2e

STORM = "suginami-2005-mini"
GOLDEN = Path(__file__).resolve().parent / "golden" / f"{STORM}.json"


@pytest.fixture
def settings():
    settings = Settings(topic_prefix=f"crash-{uuid.uuid4().hex[:8]}")
    if not settings.uses_embedded_kafka:
        pytest.skip("kills the embedded broker (SUIBOU_KAFKA_BOOTSTRAP is set)")
    infra.up(settings)
    yield settings
    kafka.ensure_running(settings)
    delete_topics(settings)


def test_a_broker_killed_mid_drill_loses_no_alert_and_repeats_none(settings: Settings) -> None:
    recorded = json.loads(GOLDEN.read_text())["alerts"]
    drill_id = new_drill_id(STORM)
    crash: dict[str, Any] = {}

    def kill_the_broker_after_the_first_alert() -> None:
        try:
            deadline = time.monotonic() + 300
            while not (before := drill_alert_messages(settings, drill_id, timeout_s=2)):
                if time.monotonic() > deadline:
                    crash["error"] = "no alert within 300 s"
                    return
                time.sleep(0.2)
            crash["alerts_before"] = len(before)
            pid = int(kafka.KafkaPaths.from_settings(settings).pid_file.read_text().strip())
            os.kill(pid, signal.SIGKILL)
            crash["killed_at"] = time.monotonic()
            time.sleep(5)  # the job, the publisher and their clients meet a dead broker
            kafka.ensure_running(settings)
            crash["back_at"] = time.monotonic()
        except Exception as error:  # noqa: BLE001 - reported by the test below
            crash["error"] = repr(error)

    killer = threading.Thread(target=kill_the_broker_after_the_first_alert, daemon=True)
    killer.start()
    # The drill runs here: it handles signals, which only the main thread may.
    result = run_drill(STORM, settings, drill_id=drill_id, progress=False, timeout_s=600)
    killer.join(timeout=60)
    assert "back_at" in crash and "error" not in crash, crash
    assert crash["alerts_before"] < len(recorded), "the broker was killed after the storm's last alert"
    chain = alert_chain(drill_alert_messages(settings, drill_id, result.alert_offsets), drill_id)
    missing = [a for a in recorded if a not in chain]
    repeated = len(chain) - len({json.dumps(a, sort_keys=True) for a in chain})
    assert (missing, repeated) == ([], 0)
    assert chain == recorded
