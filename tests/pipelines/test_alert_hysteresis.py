"""Alert lifecycle: raise at once, lower only after the hold, reference what changed."""

from __future__ import annotations

import dataclasses
import datetime as dt

from pipelines.alerts import AlertHysteresis, AreaInfo, forecast_level
from pipelines.ordered import run_fold
from suibou.contracts import AlertLevel, AreaKind, Hazard, RiskScore

T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.UTC)
FOLD = AlertHysteresis({"R-Z": AreaInfo("Zenpukuji River", "善福寺川", ((139.6, 35.7), (139.61, 35.7),
                                                                        (139.61, 35.71), (139.6, 35.7)))},
                       hold_s=1800)


def score(minute: int, observed: int, probability: float = 0.0) -> RiskScore:
    return RiskScore(
        event_id=f"risk:{minute}", event_time=T0 + dt.timedelta(minutes=minute), exercise=True, drill_id="d1",
        area_id="R-Z", area_kind=AreaKind.REACH, hazard=Hazard.FLOOD, probability=probability,
        observed_level=AlertLevel(observed), model="flood/1", target="t", features={"x": 1.0},
    )


def summary(alerts):
    return [(a.msg_type.value, int(a.level), (a.event_time - T0).seconds // 60) for a in alerts]


def test_levels_rise_at_once_and_fall_after_the_hold():
    scores = [score(0, 1), score(5, 2), score(10, 4), score(15, 2), score(30, 2), score(46, 2),
              score(50, 1), score(70, 1), score(81, 1)]
    _, alerts = run_fold(FOLD, "R-Z|flood", scores)
    assert summary(alerts) == [("Alert", 2, 5), ("Update", 4, 10), ("Update", 2, 46), ("Cancel", 1, 81)]


def test_a_level_hovering_at_a_threshold_does_not_flap():
    scores = [score(m, 3 if m % 2 else 2) for m in range(40)]
    _, alerts = run_fold(FOLD, "R-Z|flood", scores)
    assert summary(alerts) == [("Alert", 2, 0), ("Update", 3, 1)]


def test_the_forecast_raises_to_flood_warning_before_the_threshold():
    _, alerts = run_fold(FOLD, "R-Z|flood", [score(0, 2), score(1, 2, probability=0.7)])
    assert summary(alerts) == [("Alert", 2, 0), ("Update", 3, 1)]
    assert alerts[1].reason["probability"] == 0.7


def test_ids_are_stable_and_updates_reference_the_previous_message():
    _, alerts = run_fold(FOLD, "R-Z|flood", [score(0, 2), score(1, 3), score(2, 4)])
    assert {a.alert_id for a in alerts} == {"d1:R-Z:flood:20050904T120000Z"}
    assert [a.references for a in alerts] == [(), (alerts[0].event_id,), (alerts[1].event_id,)]
    assert all(a.exercise and a.cap_status == "Exercise" for a in alerts)
    assert alerts[2].headline.startswith("善福寺川 氾濫危険情報")


def test_replaying_the_same_scores_gives_the_same_messages():
    scores = [score(0, 2), score(1, 4), score(40, 1)]
    assert run_fold(FOLD, "k", scores)[1] == run_fold(FOLD, "k", list(reversed(scores)))[1]


def test_duplicate_scores_are_folded_once():
    _, alerts = run_fold(FOLD, "k", [score(0, 2), score(0, 2)])
    assert len(alerts) == 1


def test_alerts_carry_the_area_names_and_polygon():
    _, alerts = run_fold(FOLD, "R-Z|flood", [score(0, 2)])
    assert (alerts[0].area_name, alerts[0].area_name_ja) == ("Zenpukuji River", "善福寺川")
    assert alerts[0].polygon[0] == alerts[0].polygon[-1] and len(alerts[0].polygon) == 4


def test_a_landslide_warning_outlasts_a_lull_in_the_rain():
    """A zone whose criterion drops out between two squalls keeps its warning (one alert, not two)."""
    def zone(minute: int, observed: int) -> RiskScore:
        return RiskScore(
            event_id=f"zone:{minute}", event_time=T0 + dt.timedelta(minutes=minute), exercise=True,
            drill_id="d1", area_id="Z-1", area_kind=AreaKind.ZONE, hazard=Hazard.LANDSLIDE, probability=0.0,
            observed_level=AlertLevel(observed), model="landslide/1", target="t", features={"x": 1.0},
        )

    fold = AlertHysteresis({"Z-1": AreaInfo("Zone", "区域")}, hold_s=1800, landslide_hold_s=3 * 3600)
    squalls = [zone(m, 4 if m < 30 or 100 <= m < 130 else 1) for m in range(0, 400, 10)]
    _, alerts = run_fold(fold, "Z-1|landslide", squalls)
    assert summary(alerts) == [("Alert", 4, 0), ("Cancel", 1, 310)]


def three_hour_score(minute: int, observed: int, **probabilities: float) -> RiskScore:
    """A flood/3 score: probabilities of each threshold within 60 and 180 minutes (0 unless given)."""
    every = {f"{t}_{h}min": 0.0 for t in ("caution", "evacuation", "danger") for h in (60, 180)}
    every.update(probabilities)
    return RiskScore(
        event_id=f"risk:{minute}", event_time=T0 + dt.timedelta(minutes=minute), exercise=True, drill_id="d1",
        area_id="R-Z", area_kind=AreaKind.REACH, hazard=Hazard.FLOOD, probability=every["danger_60min"],
        observed_level=AlertLevel(observed), model="flood/3", target="t", features={"x": 1.0},
        probabilities=every,
    )


def test_a_three_hour_forecast_raises_warning_then_danger_before_the_thresholds():
    assert forecast_level(three_hour_score(0, 1), 0.5) == (AlertLevel.NONE, None)
    assert forecast_level(three_hour_score(0, 1, danger_180min=0.6), 0.5) == (AlertLevel.WARNING, "danger_180min")
    assert forecast_level(three_hour_score(0, 1, evacuation_60min=0.5), 0.5) == (AlertLevel.WARNING,
                                                                                 "evacuation_60min")
    assert forecast_level(three_hour_score(0, 1, danger_60min=0.9, danger_180min=0.9), 0.5) == (
        AlertLevel.DANGER, "danger_60min")
    # Evacuation expected within three hours alone is no warning: it is the level-3 crossing itself that
    # the one-hour clause anticipates.
    assert forecast_level(three_hour_score(0, 1, evacuation_180min=0.9), 0.5) == (AlertLevel.NONE, None)

    scores = [three_hour_score(0, 1), three_hour_score(5, 1, danger_180min=0.7),
              three_hour_score(10, 2, danger_180min=0.9, danger_60min=0.6), three_hour_score(20, 4, danger_60min=0.9)]
    _, alerts = run_fold(FOLD, "R-Z|flood", scores)
    assert summary(alerts) == [("Alert", 3, 5), ("Update", 4, 10)]
    assert [(a.reason["forecast_level"], a.reason["forecast_target"], a.reason["observed_level"]) for a in alerts] == [
        (3, "danger_180min", 1), (4, "danger_60min", 2)]


def test_a_model_without_three_hour_targets_raises_to_warning_only():
    one_hour = score(0, 2, probability=0.95)
    assert forecast_level(one_hour, 0.5) == (AlertLevel.WARNING, "t")
    landslide = dataclasses.replace(three_hour_score(0, 1, danger_60min=0.9), hazard=Hazard.LANDSLIDE,
                                    probability=0.9, area_kind=AreaKind.ZONE)
    assert forecast_level(landslide, 0.5) == (AlertLevel.WARNING, "t")
