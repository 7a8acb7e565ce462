"""The drill report: threshold crossings, lead times, plots; from alerts and the storm's own data."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from replay_data import load_storm
from replay_data.report import DrillInfo, lead_times, threshold_crossings, write_report
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType

DRILL = "drill-test-1"


def alert(area, level, when, sequence=0, msg_type=MsgType.ALERT, hazard=Hazard.FLOOD):
    return AlertEvent(event_id=f"{DRILL}:{area}:{sequence}", event_time=when, exercise=True, drill_id=DRILL,
                      alert_id=f"{DRILL}:{area}", sequence=sequence, msg_type=msg_type, area_id=area,
                      area_kind=AreaKind.REACH if hazard is Hazard.FLOOD else AreaKind.ZONE, hazard=hazard,
                      level=AlertLevel(level), headline="test")


@pytest.fixture(scope="module")
def suginami():
    return load_storm("suginami-2005-mini")


def test_crossings_come_from_the_levels_and_thresholds(suginami):
    crossings = {(c.area_id, c.level): c.time for c in threshold_crossings(suginami)}
    zen = suginami.catalogue.level_gauge("WL-ZENPUKUJI-NARITA")
    series = suginami.level_series(zen.station_id)
    assert crossings[("R-ZENPUKUJI-UPPER", 4)] == next(t for t, v in series if v >= zen.danger_m)
    assert crossings[("R-ZENPUKUJI-UPPER", 5)] == next(t for t, v in series if v >= zen.bank_full_m)
    assert ("R-KANDA-UPPER", 3) not in crossings


def test_lead_time_is_crossing_minus_first_alert_at_or_above_the_level(suginami):
    crossings = threshold_crossings(suginami)
    danger = next(c for c in crossings if c.area_id == "R-ZENPUKUJI-UPPER" and c.level == 4)
    alerts = [
        alert("R-ZENPUKUJI-UPPER", 2, danger.time - dt.timedelta(minutes=40)),
        alert("R-ZENPUKUJI-UPPER", 4, danger.time - dt.timedelta(minutes=15), 1, MsgType.UPDATE),
        alert("R-MYOSHOJI-UPPER", 3, danger.time + dt.timedelta(minutes=30)),
    ]
    leads = {(lt.crossing.area_id, lt.crossing.level): lt.minutes for lt in lead_times(crossings, alerts)}
    assert leads[("R-ZENPUKUJI-UPPER", 4)] == 15
    caution = next(c for c in crossings if c.area_id == "R-ZENPUKUJI-UPPER" and c.level == 2)
    assert leads[("R-ZENPUKUJI-UPPER", 2)] == (caution.time - danger.time).total_seconds() / 60 + 40
    assert leads[("R-ZENPUKUJI-UPPER", 5)] is None  # never alerted at level 5
    myoshoji_caution = next(c for c in crossings if c.area_id == "R-MYOSHOJI-UPPER" and c.level == 2)
    assert leads[("R-MYOSHOJI-UPPER", 2)] < 0  # warned late
    assert leads[("R-MYOSHOJI-UPPER", 4)] is None
    assert myoshoji_caution.time < danger.time + dt.timedelta(minutes=30)


def test_landslide_crossings_and_failures_on_oshima():
    storm = load_storm("oshima-2013")
    crossings = threshold_crossings(storm)
    kandachi = [c for c in crossings if c.area_id == "Z-OSHIMA-KANDACHI"]
    assert [(c.level, "fails" in c.what) for c in kandachi] == [(4, False), (4, True)]
    assert kandachi[0].time < kandachi[1].time  # the critical line is crossed before the slope fails
    warned = [alert("Z-OSHIMA-KANDACHI", 4, kandachi[0].time - dt.timedelta(hours=2), hazard=Hazard.LANDSLIDE)]
    leads = [lt.minutes for lt in lead_times(kandachi, warned)]
    assert leads[0] == 120 and leads[1] > 120
    assert not [c for c in crossings if c.area_id == "Z-OSHIMA-HABU"]


def test_report_files(tmp_path, suginami):
    crossings = threshold_crossings(suginami)
    first = crossings[0]
    alerts = [alert(first.area_id, 2, first.time - dt.timedelta(minutes=10)),
              alert(first.area_id, 1, first.time + dt.timedelta(hours=1), 1, MsgType.CANCEL)]
    path = write_report(suginami, alerts, DrillInfo(DRILL, suginami.name, published=10), tmp_path / "r" / "report.md")
    text = path.read_text()
    assert text.startswith(f"# EXERCISE — drill report `{DRILL}`")
    assert "synthetic reconstruction" in text and "+10 min" in text and "**not warned**" in text
    for plot in ("hydrographs.png", "rainfall.png", "snake.png", "timeline.png"):
        assert (tmp_path / "r" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({plot})" in text
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert data["exercise"] is True and data["alerts"][0]["cancelled"] is not None
    assert data["crossings"][0]["lead_min"] == 10


def test_quiet_day_report_says_nothing_happened(tmp_path):
    storm = load_storm("quiet-day-mini")
    text = write_report(storm, [], DrillInfo(DRILL, storm.name), tmp_path / "report.md").read_text()
    assert "No alert was raised." in text
    assert "No threshold was crossed" in text and "negative control" in text


def test_before_each_flood_the_warning_and_the_evacuation_lead(suginami):
    from replay_data.report import flood_warnings

    crossings = threshold_crossings(suginami)
    flooded = next(c for c in crossings if c.area_id == "R-ZENPUKUJI-UPPER" and c.level == 5)
    alerts = [
        alert("R-ZENPUKUJI-UPPER", 3, flooded.time - dt.timedelta(minutes=50)),
        alert("R-ZENPUKUJI-UPPER", 4, flooded.time - dt.timedelta(minutes=20), 1, MsgType.UPDATE),
        alert("R-MYOSHOJI-UPPER", 4, flooded.time - dt.timedelta(minutes=90)),  # another reach
    ]
    warnings = {w.flooded.area_id: w for w in flood_warnings(crossings, alerts)}
    zen = warnings["R-ZENPUKUJI-UPPER"]
    assert (zen.lead(zen.warned), zen.lead(zen.evacuate)) == (50, 20)
    assert all(w.flooded.level == 5 for w in warnings.values())
    unwarned = [w for area, w in warnings.items() if area != "R-ZENPUKUJI-UPPER"]
    assert all(w.warned is None and w.evacuate is None for w in unwarned)
