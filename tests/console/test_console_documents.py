"""What the console's routes answer: built by pure functions from the map, the view and the alerts."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from alert_api.console import present
from alert_api.console.stations import StationMap, default_catalogue_paths
from alert_api.console.view import LIVE, Limits, RainPoint, ViewState, fold
from alert_api.models import Alert, StoredMessage
from suibou.contracts import AlertEvent, CameraFrame, FaultKind

T = dt.datetime(2005, 9, 4, 12, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def stations() -> StationMap:
    return StationMap.load(default_catalogue_paths(Path("/nonexistent")))


def view_until(feed: Any, end: dt.datetime, extra: list | None = None) -> ViewState:
    state = ViewState()
    for event in [*feed.between(None, end), *(extra or [])]:
        state = fold(state, event)
    return state


def alerts_of(events: list[AlertEvent]) -> list[Alert]:
    latest: dict[str, AlertEvent] = {}
    onset: dict[str, dt.datetime] = {}
    for event in events:
        latest[event.alert_id] = event
        onset.setdefault(event.alert_id, event.event_time)
    return [Alert(StoredMessage(e, e.event_time), onset[a]) for a, e in latest.items()]


def document(stations: StationMap, feed: Any, end: dt.datetime, extra: list | None = None) -> dict[str, Any]:
    state = view_until(feed, end, extra)
    alerts = alerts_of(feed.alerts_until(end))
    return present.state_document(stations, state, present.choose_stream(state, None), alerts, [],
                                  {"state": "running"})


def test_the_stream_shown_is_the_most_recently_updated_unless_one_is_asked_for(storm_feed: Any) -> None:
    state = view_until(storm_feed, T)
    assert present.choose_stream(state, None) == storm_feed.drill_id
    assert present.choose_stream(state, LIVE) == LIVE
    assert present.choose_stream(ViewState(), None) == LIVE


@pytest.mark.parametrize(("exercise", "drill_id", "stream", "shown"), [
    (False, None, LIVE, True), (True, "d1", LIVE, False), (True, "d1", "d1", True), (True, "d2", "d1", False),
    (True, None, "d1", True), (False, None, "d1", False)])
def test_alerts_belong_to_their_stream(exercise: bool, drill_id: str | None, stream: str, shown: bool) -> None:
    assert present.alert_in_stream(exercise, drill_id, stream) is shown


def test_level_gauges_take_their_observed_level_and_rain_gauges_the_level_of_their_areas(
    stations: StationMap, storm_feed: Any
) -> None:
    end = max(a.event_time for a in storm_feed.alerts if a.area_id == "R-ZENPUKUJI-UPPER" and a.level >= 4)
    doc = document(stations, storm_feed, end)
    assert doc["stream"] == {"id": storm_feed.drill_id, "exercise": True, "drill_id": storm_feed.drill_id,
                             "clock": end.isoformat()}
    narita = doc["stations"]["WL-ZENPUKUJI-NARITA"]
    assert narita["status"] == "ok" and narita["colour_level"] == narita["latest"]["observed_level"] >= 4
    assert narita["colour"] == {4: "purple", 5: "black"}[narita["colour_level"]]
    assert doc["areas"]["R-ZENPUKUJI-UPPER"]["alert_level"] >= 4
    assert doc["areas"]["R-ZENPUKUJI-UPPER"]["score"]["model"] == "flood/2"
    # RG-ASAGAYA samples only the Zenpukuji reach; RG-ZENPUKUJI also the Myoshoji.
    assert doc["stations"]["RG-ASAGAYA"]["colour_level"] == doc["areas"]["R-ZENPUKUJI-UPPER"]["alert_level"]
    assert doc["stations"]["RG-ZENPUKUJI"]["colour_level"] == max(
        doc["areas"][a]["alert_level"] for a in ("R-ZENPUKUJI-UPPER", "R-MYOSHOJI-UPPER"))
    # Stations of other basins have no data in this drill: never shown as level 1.
    tama = next(g.station_id for g in stations.gauges if g.catalogue == "tama-basin")
    assert doc["stations"][tama] == {"kind": doc["stations"][tama]["kind"], "status": "no_data", "fault": None,
                                     "latest": None, "age_s": None, "colour_level": None}


def test_a_faulted_gauge_is_reported_as_a_fault_not_as_its_last_reading(stations: StationMap, storm_feed: Any) -> None:
    silent = storm_feed.fault("RG-ASAGAYA", T)
    doc = document(stations, storm_feed, T, [silent])
    entry = doc["stations"]["RG-ASAGAYA"]
    assert entry["status"] == "fault" and entry["fault"]["kind"] == "silent"
    assert [f["station_id"] for f in doc["faults"]] == ["RG-ASAGAYA"]
    recovered = storm_feed.fault("RG-ASAGAYA", T + dt.timedelta(minutes=1), FaultKind.RECOVERED)
    assert document(stations, storm_feed, T, [silent, recovered])["stations"]["RG-ASAGAYA"]["status"] == "ok"


def test_a_cameras_still_and_estimate(stations: StationMap, storm_feed: Any) -> None:
    still = storm_feed.frame(T)
    doc = document(stations, storm_feed, T, [still])
    camera = doc["cameras"]["CAM-ZENPUKUJI-NARITA"]
    assert camera["frame"]["event_id"] == still.event_id
    level_m = doc["stations"]["WL-ZENPUKUJI-NARITA"]["latest"]["level_m"]
    assert camera["estimate"]["level_m"] == pytest.approx(level_m + 0.05)
    assert camera["estimate"]["estimated_level"] == stations.gauge("WL-ZENPUKUJI-NARITA").level_for(level_m + 0.05)
    assert doc["cameras"]["CAM-KANDA-EIFUKU"]["status"] == "no_data"


def test_a_hydrograph_has_the_thresholds_the_trend_and_the_flood_models_probabilities(
    stations: StationMap, storm_feed: Any
) -> None:
    state = view_until(storm_feed, T)
    doc = present.station_document(stations, state, storm_feed.drill_id, "WL-ZENPUKUJI-NARITA")
    assert doc["kind"] == "level" and len(doc["series"]) == 60  # one reading a minute since 11:31
    assert doc["thresholds"] == stations.gauge("WL-ZENPUKUJI-NARITA").thresholds
    latest = doc["latest"]
    trend = doc["trend"]["points"]
    assert trend[0] == [latest["time"], round(latest["level_m"], 3)]
    assert trend[-1][1] == pytest.approx(max(0.0, latest["level_m"] + latest["rise_m_per_h"]), abs=1e-3)
    assert "not a forecast" in doc["trend"]["basis"]
    assert doc["forecast"]["model"] == "flood/2" and set(doc["forecast"]["probabilities"]) == {
        f"{n}_{m}min" for n in ("caution", "evacuation", "danger") for m in (30, 60)}
    assert len(doc["probability_series"]) == 60
    assert doc["cameras"] == ["CAM-ZENPUKUJI-NARITA"]
    assert present.station_document(stations, state, storm_feed.drill_id, "WL-NOWHERE") is None


def test_a_rain_gauge_has_rainfall_bars_and_its_snake_line_against_the_critical_line(
    stations: StationMap, storm_feed: Any
) -> None:
    state = view_until(storm_feed, T)
    doc = present.station_document(stations, state, storm_feed.drill_id, "RG-ZENPUKUJI")
    assert doc["kind"] == "rain" and len(doc["series"]) == 60
    assert len(doc["bars"]) == 6 and doc["bars"][-1][0] == T.isoformat()
    assert doc["critical_lines"][0]["zone_id"] is None and "invented" in doc["critical_lines"][0]["note"]
    assert doc["latest"]["beyond_critical_line"] == [] or doc["latest"]["swi_mm"] >= 50


def test_ten_minute_bars_take_the_latest_total_of_each_slot() -> None:
    points = [RainPoint(T + dt.timedelta(minutes=m), float(m), 0.0, 0.0) for m in (1, 5, 10, 11, 19)]
    assert present.ten_minute_bars(points) == [("2005-09-04T12:40:00+00:00", 10.0), ("2005-09-04T12:50:00+00:00", 19.0)]


def test_the_snake_line_margin_matches_the_hydrology_module() -> None:
    from suibou.hydrology import DEFAULT_CRITICAL_LINE, critical_margin

    line = {"r60_at_dry_mm": 100.0, "swi_at_no_rain_mm": 300.0, "swi_floor_mm": 50.0}
    for r60, swi in ((60.0, 150.0), (40.0, 150.0), (90.0, 20.0)):
        assert present.critical_margin(r60, swi, line) == float(critical_margin(r60, swi, DEFAULT_CRITICAL_LINE))


def still(path: Path | str, event_id: str = "CAM-A:1") -> CameraFrame:
    uri = path.as_uri() if isinstance(path, Path) else path
    return CameraFrame(event_id=event_id, event_time=T, camera_id="CAM-A", image_uri=uri,
                       content_type="image/jpeg", width=160, height=120)


def test_stills_are_served_only_from_the_allowed_folders(tmp_path: Path) -> None:
    root, outside = tmp_path / "frames", tmp_path / "secret"
    root.mkdir()
    outside.mkdir()
    (root / "a.jpg").write_bytes(b"\xff\xd8jpeg")
    (outside / "b.jpg").write_bytes(b"\xff\xd8jpeg")
    (root / "notes.txt").write_text("not an image")
    (root / "big.jpg").write_bytes(b"\0" * (present.MAX_FRAME_BYTES + 1))
    os.symlink(outside / "b.jpg", root / "link.jpg")
    assert present.frame_path(still(root / "a.jpg"), [root]) == ((root / "a.jpg").resolve(), "image/jpeg")
    for refused in (outside / "b.jpg", root / "link.jpg", root / "notes.txt", root / "big.jpg", root / "gone.jpg",
                    f"{(root / '..' / 'secret' / 'b.jpg').as_posix()}", "http://example.com/a.jpg",
                    f"file://remote-host{(root / 'a.jpg').as_posix()}"):
        with pytest.raises(present.FrameError):
            present.frame_path(still(refused), [root])


def test_only_stills_the_view_holds_can_be_found(storm_feed: Any) -> None:
    frame = storm_feed.frame(T)
    state = fold(ViewState(), frame, Limits())
    assert present.find_frame(state, storm_feed.drill_id, frame.camera_id, frame.event_id) == frame
    with pytest.raises(present.FrameError):
        present.find_frame(state, storm_feed.drill_id, frame.camera_id, "CAM-ZENPUKUJI-NARITA:1")
    with pytest.raises(present.FrameError):
        present.find_frame(state, LIVE, frame.camera_id, frame.event_id)


def test_a_landslide_zone_takes_its_alert_level_and_its_score(stations: StationMap) -> None:
    from suibou.contracts import AlertLevel, AreaKind, Hazard, MsgType, RiskScore

    zone = next(a for a in stations.areas if a.kind == "zone")
    score = RiskScore(event_id="risk:live:zone", event_time=T, area_id=zone.area_id, area_kind=AreaKind.ZONE,
                      hazard=Hazard.LANDSLIDE, probability=0.8, observed_level=AlertLevel.DANGER, model="landslide/1",
                      target="slope failure within 2 h", features={"snake_line_beyond_cl_within_2h": 1.0},
                      faults=("RG-X silent since 2005-09-04T12:00:00+00:00: no reading for 10 min",))
    alert = AlertEvent(event_id="z.0", event_time=T, alert_id="z", sequence=0, msg_type=MsgType.ALERT,
                       area_id=zone.area_id, area_kind=AreaKind.ZONE, hazard=Hazard.LANDSLIDE,
                       level=AlertLevel.DANGER, headline="土砂災害警戒情報", polygon=zone.polygon)
    state = fold(ViewState(), score)
    doc = present.state_document(stations, state, LIVE, alerts_of([alert]), [], {"state": "running"})
    entry = doc["areas"][zone.area_id]
    assert entry["alert_level"] == 4 and entry["colour"] == "purple" and entry["alert_ids"] == ["z"]
    assert entry["score"]["model"] == "landslide/1" and entry["faulted"] is True
    sampling = [g for g in stations.gauges if zone.area_id in g.zone_ids]
    assert sampling and all(doc["stations"][g.station_id]["status"] == "no_data" for g in sampling)
