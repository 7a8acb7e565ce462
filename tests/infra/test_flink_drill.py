"""The same drill on Apache Flink as on Prism: the same alerts.

A stored storm is replayed as a drill through Kafka and the fusion job running
on suibou's Flink job server (an embedded Flink mini-cluster, built with Maven
by :mod:`suibou.infra.flink` on first use). Its alert chain (areas, levels,
times, message chains) must equal the chain the job gives on Prism: the
recorded golden chain when ``tests/golden/<storm>.json`` exists, otherwise a
Prism drill of the same storm run in this test.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from suibou import infra
from suibou.drill import alert_chain, drill_alert_messages, run_drill
from suibou.infra import flink
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = [pytest.mark.e2e, pytest.mark.flink]

STORM = "suginami-2005-mini"
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / f"{STORM}.json"


@pytest.fixture(scope="module")
def settings():
    # Own topics: the test neither sees nor disturbs other drills.
    settings = Settings(topic_prefix=f"test-flink-{uuid.uuid4().hex[:8]}")
    infra.up(settings)
    started_here = flink.status(settings).split()[0] != "running"
    flink.ensure_job_server(settings)
    yield settings
    if started_here:
        flink.stop(settings)  # A job server this test started takes ~0.6 GB: not left behind.
    delete_topics(settings)


def _drill_chain(settings: Settings, runner: str) -> list[dict]:
    result = run_drill(STORM, settings, runner=runner, progress=False, timeout_s=900)
    assert "DONE" in result.pipeline_state.upper()
    return alert_chain(drill_alert_messages(settings, result.drill_id, result.alert_offsets), result.drill_id)


def test_a_drill_on_flink_raises_the_alerts_it_raises_on_prism(settings):
    on_flink = _drill_chain(settings, "flink")
    on_prism = json.loads(GOLDEN.read_text())["alerts"] if GOLDEN.is_file() else _drill_chain(settings, "prism")
    assert on_prism, "the storm raises alerts on Prism"
    assert on_flink == on_prism
    # Every alert once: no message lost or repeated.
    assert len({(a["alert_id"], a["sequence"]) for a in on_flink}) == len(on_flink)
