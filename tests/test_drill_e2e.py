"""End to end on real parts: Kafka broker, Beam on Prism, the alert API over HTTP.

A stored storm is published as a drill; the fusion pipeline turns it into
alerts; the API (a real server process) consumes them; the test asks the API.
The expected alerts are derived from the storm's own water levels and the
gauges' thresholds, not written down by hand.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import socket
import time
import urllib.request
import uuid

import pytest

from replay_data import load_storm
from suibou import infra
from suibou.catalogue import level_for
from suibou.contracts import AlertLevel, Hazard, RiskScore
from suibou.drill import drill_alert_messages, drill_messages, run_drill
from suibou.infra import api_server
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    # Own topics and database: the test neither sees nor disturbs other drills.
    settings = Settings(
        topic_prefix=f"test-{uuid.uuid4().hex[:8]}",
        api_port=_free_port(),
        database_url=f"sqlite:///{tmp_path_factory.mktemp('api') / 'alerts.db'}",
    )
    infra.up(settings)
    api_server.ensure_running(settings)
    yield settings
    api_server.stop(settings)
    delete_topics(settings)


def _get(settings: Settings, path: str) -> dict:
    from suibou.cli import api_headers

    request = urllib.request.Request(f"{api_server.base_url(settings)}{path}", headers=api_headers(settings))
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _api_alerts(settings: Settings, drill_id: str, expected_messages: int, timeout_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        alerts = [a for a in _get(settings, "/v1/alerts?exercise=true&include_cancelled=true&limit=1000")["data"]
                  if a["drill_id"] == drill_id]
        if sum(a["sequence"] + 1 for a in alerts) >= expected_messages or time.monotonic() > deadline:
            return alerts
        time.sleep(0.5)


def _first_crossings(storm, gauge) -> dict[AlertLevel, dt.datetime]:
    crossings: dict[AlertLevel, dt.datetime] = {}
    for when, level_m in storm.level_series(gauge.station_id):
        for level in AlertLevel:
            if level >= AlertLevel.CAUTION and level_for(gauge, level_m) >= level:
                crossings.setdefault(level, when)
    return crossings


def test_a_storm_drill_raises_the_expected_alerts_through_the_api(settings):
    storm = load_storm("suginami-2005-mini")
    result = run_drill("suginami-2005-mini", settings, progress=False, timeout_s=600)
    produced = drill_alert_messages(settings, result.drill_id, result.alert_offsets)
    alerts = _api_alerts(settings, result.drill_id, len(produced))
    assert produced, "the drill raised no alert at all"
    assert sum(a["sequence"] + 1 for a in alerts) == len(produced)

    by_area = {}
    for alert in alerts:
        history = _get(settings, f"/v1/alerts/{alert['alert_id']}")["messages"]
        by_area.setdefault(alert["area_id"], []).extend(history)
        assert alert["exercise"] is True and alert["status"] == "Exercise"
        for earlier, later in itertools.pairwise(history):
            assert later["references"] == [earlier["event_id"]]

    for gauge in storm.catalogue.level_gauges:
        crossings = _first_crossings(storm, gauge)
        messages = by_area.get(gauge.reach_id, [])
        if not crossings:
            continue
        assert messages, f"{gauge.reach_id} crossed {max(crossings).name} but raised no alert"
        levels = [m["level"] for m in messages]
        assert max(levels) >= int(max(crossings)), (gauge.reach_id, levels, crossings)
        first_alert = min(dt.datetime.fromisoformat(m["event_time"]) for m in messages)
        # Raised no later than the first threshold crossing (earlier when the forecast warns).
        assert first_alert <= crossings[AlertLevel.CAUTION]
        if AlertLevel.DANGER in crossings:
            # Level 4 by the time the gauge reaches flood danger: at the crossing, or earlier when flood
            # danger is forecast within the hour.
            danger = [dt.datetime.fromisoformat(m["event_time"]) for m in messages if m["level"] >= 4]
            assert min(danger) <= crossings[AlertLevel.DANGER]

    # The reconstruction's point: the Zenpukuji and the Myoshoji reach flood danger.
    for reach_id in ("R-ZENPUKUJI-UPPER", "R-MYOSHOJI-UPPER"):
        assert max(m["level"] for m in by_area[reach_id]) >= 4

    # Every feed counts in the scores: rain and level on every row; the rain grids' nowcast,
    # the cameras and the drone survey where the storm has them.
    flood = [s for s in drill_messages(settings, result.drill_id, settings.topics.risk_scores)
             if isinstance(s, RiskScore) and s.hazard is Hazard.FLOOD]
    gridded = [s for s in flood if "grid_rain_rate_mm_h" in s.features]
    assert gridded, "no flood score used a rain grid"
    assert any(s.features["nowcast_rain_60min_mm"] != s.features["rain_60min_mm"] for s in gridded)
    assert any("camera_level_m" in s.features for s in flood), "no flood score used a camera"
    surveyed = [s for s in flood if "drone_inundation_confidence" in s.features]
    assert {s.area_id for s in surveyed} == {"R-ZENPUKUJI-UPPER"}  # where the storm's overflow is surveyed
    assert all(s.observed_level == AlertLevel.FLOODING for s in surveyed)

    # Every alert message of the drill is an exercise of this drill.
    assert all(m.exercise and m.drill_id == result.drill_id and m.cap_status == "Exercise" for m in produced)

    # The drill report: written from these alerts and the storm's own data, with positive lead times.
    from suibou.drill import write_report

    report = write_report(result, settings, produced, settings.home / "reports" / result.drill_id)
    data = json.loads((report.parent / "report.json").read_text())
    assert data["exercise"] is True and len(data["alerts"]) == len({m.alert_id for m in produced})
    for reach_id in ("R-ZENPUKUJI-UPPER", "R-MYOSHOJI-UPPER"):
        leads = [c["lead_min"] for c in data["crossings"] if c["area_id"] == reach_id and c["level"] <= 4]
        assert leads and all(lead is not None and lead >= 0 for lead in leads), (reach_id, leads)
        assert max(leads) > 0, (reach_id, leads)
    for plot in ("hydrographs.png", "rainfall.png", "snake.png", "timeline.png"):
        assert (report.parent / plot).stat().st_size > 1000


def test_a_quiet_day_drill_raises_no_alert(settings):
    result = run_drill("quiet-day-mini", settings, progress=False, timeout_s=600)
    assert result.pipeline_state.upper().endswith("DONE")
    assert result.sent["camera"] > 0 and result.sent["grid"] > 0
    assert drill_alert_messages(settings, result.drill_id, result.alert_offsets) == []
    from suibou.drill import write_report

    text = write_report(result, settings, [], settings.home / "reports" / result.drill_id).read_text()
    assert "No alert was raised." in text and "No threshold was crossed" in text
