"""Contracts: every feed round-trips, and bad events are rejected with a reason."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from suibou.contracts import (
    MAX_MESSAGE_BYTES,
    AlertEvent,
    AlertLevel,
    AreaKind,
    CameraFrame,
    ContractError,
    ControlKind,
    DroneFinding,
    DroneObservation,
    GridKind,
    GridNotice,
    Hazard,
    LevelReading,
    MsgType,
    RainReading,
    RiskScore,
    StreamControl,
    parse_event,
)

T = dt.datetime(2019, 10, 12, 9, 0, tzinfo=dt.UTC)

EXAMPLES = [
    RainReading(event_id="RG-1:1", station_id="RG-1", event_time=T, rain_mm=3.5, interval_s=60),
    LevelReading(event_id="WL-1:1", station_id="WL-1", event_time=T, level_m=2.31, exercise=True, drill_id="d-1"),
    CameraFrame(event_id="CAM-1:1", camera_id="CAM-1", event_time=T, image_uri="file:///frames/1.jpg",
                content_type="image/jpeg", width=640, height=360),
    DroneObservation(event_id="fl-1:1", flight_id="fl-1", event_time=T, lon=139.39, lat=34.75,
                     finding=DroneFinding.SLOPE_FAILURE, confidence=0.8),
    GridNotice(event_id="g-1", grid_id="nowcast-1km", event_time=T, valid_time=T + dt.timedelta(minutes=30),
               kind=GridKind.NOWCAST, uri="file:///grids/g-1.nc", variable="rain_rate"),
    StreamControl(event_id="tick-1", event_time=T, control=ControlKind.TICK, source="d-1"),
    RiskScore(event_id="risk-1", event_time=T, area_id="R-TAMA-1", area_kind=AreaKind.REACH,
              hazard=Hazard.FLOOD, probability=0.25, observed_level=AlertLevel.CAUTION, model="flood/1",
              target="danger within 60 min", features={"rain_60min_mm": 42.0}, contributions=("rain_60min_mm",)),
    AlertEvent(event_id="a-1:1", event_time=T, alert_id="a-1", sequence=1, msg_type=MsgType.UPDATE,
               area_id="R-TAMA-1", area_kind=AreaKind.REACH, hazard=Hazard.FLOOD, level=AlertLevel.DANGER,
               previous_level=AlertLevel.WARNING, headline="多摩川 氾濫危険情報", references=("a-1:0",)),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.SCHEMA)
def test_every_contract_round_trips_through_json(event):
    assert parse_event(event.to_json()) == event


def test_times_are_normalised_to_utc():
    reading = parse_event(json.dumps({
        "schema": "rain_reading/1", "event_id": "x", "station_id": "RG-1",
        "event_time": "2019-10-12T18:00:00+09:00", "rain_mm": 0, "interval_s": 60,
    }))
    assert reading.event_time == T


def _rain(**overrides):
    base = {"schema": "rain_reading/1", "event_id": "x", "station_id": "RG-1",
            "event_time": "2019-10-12T09:00:00+00:00", "rain_mm": 1.0, "interval_s": 60}
    return json.dumps({**base, **overrides})


@pytest.mark.parametrize(("raw", "reason"), [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"rain_mm": 1}', "missing 'schema'"),
    (b'{"schema": "tsunami/1"}', "unknown schema"),
    (b'{"schema": "rain_reading/9"}', "unsupported version"),
    (_rain(rain_mm=-0.5), "outside the physical range"),
    (_rain(rain_mm=900), "outside the physical range"),
    (_rain(rain_mm="3"), "must be a number"),
    (_rain(rain_mm=float("nan")), "must be finite"),
    (_rain(event_time="2019-10-12T09:00:00"), "must carry a UTC offset"),
    (_rain(event_time="yesterday"), "must be ISO 8601"),
    (_rain(station_id="RG 1; DROP"), "station_id must be"),
    (_rain(interval_s=0.5), "outside the physical range"),
    (_rain(exercise="yes"), "exercise must be true or false"),
    (json.dumps({"schema": "level_reading/1", "event_id": "x", "station_id": "WL-1",
                 "event_time": "2019-10-12T09:00:00Z", "level_m": 500}), "outside the physical range"),
    (json.dumps({"schema": "camera_frame/1", "event_id": "x", "camera_id": "C", "event_time": "2019-10-12T09:00:00Z",
                 "image_uri": "f", "content_type": "image/gif", "width": 1, "height": 1}), "content_type"),
    (json.dumps({"schema": "drone_observation/1", "event_id": "x", "flight_id": "f",
                 "event_time": "2019-10-12T09:00:00Z", "lon": 139.0, "lat": 95.0, "finding": "nothing",
                 "confidence": 1}), "lat=95"),
    (json.dumps({"schema": "grid_notice/1", "event_id": "x", "grid_id": "g", "event_time": "2019-10-12T09:00:00Z",
                 "valid_time": "2019-10-12T08:00:00Z", "kind": "nowcast", "uri": "u", "variable": "v"}),
     "valid_time must be 0 to 6 h after"),
    (json.dumps({"schema": "alert_event/1", "event_id": "x", "event_time": "2019-10-12T09:00:00Z",
                 "alert_id": "a", "sequence": 0, "msg_type": "Alert", "area_id": "R", "area_kind": "reach",
                 "hazard": "flood", "level": 7, "headline": "h"}), "level must be an integer 1-5"),
])
def test_bad_events_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(ContractError, match=reason):
        parse_event(raw)


def test_missing_fields_are_named():
    with pytest.raises(ContractError, match=r"missing field.*interval_s.*station_id"):
        parse_event(b'{"schema": "rain_reading/1", "event_id": "x", "event_time": "2019-10-12T09:00:00Z",'
                    b' "rain_mm": 1}')


def test_oversized_messages_are_rejected_before_parsing():
    with pytest.raises(ContractError, match="exceeds"):
        parse_event(b" " * (MAX_MESSAGE_BYTES + 1))


def test_alert_status_follows_the_exercise_marker():
    actual, exercise = EXAMPLES[-1], EXAMPLES[-1].__class__(**{**EXAMPLES[-1].__dict__, "exercise": True})
    assert (actual.cap_status, exercise.cap_status) == ("Actual", "Exercise")


def test_level_colours_follow_jma():
    assert [level.colour for level in AlertLevel] == ["white", "yellow", "red", "purple", "black"]
