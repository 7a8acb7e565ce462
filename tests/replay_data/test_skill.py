"""Skill definitions (replay_data.skill, docs/skill.md) on tiny hand-made drills."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from replay_data import load_storm
from replay_data.report import drill_skill
from replay_data.skill import (
    AFTER_EVENT,
    BEFORE_EVENT,
    FALSE_ALARM,
    LOWERED_BEFORE,
    MISSED,
    WARNED_AT_CROSSING,
    WARNED_EARLY,
    WARNED_LATE,
    Exceedance,
    LevelChange,
    RaisedWarning,
    event_outcome,
    exceedance_spans,
    judge_targets,
    level_changes_from_rows,
    skill_markdown,
    storm_skill,
    warning_outcome,
    warnings_from_changes,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
T0 = dt.datetime(2019, 10, 12, 0, 0, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def change(minutes: float, level: int, area: str = "R-A", hazard: str = "flood", cancel: bool = False,
           sequence: int = 0) -> LevelChange:
    return LevelChange(at(minutes), area, hazard, 1 if cancel else level, cancel, sequence)


def reached(level: int, *spans: tuple[float, float], area: str = "R-A", hazard: str = "flood") -> Exceedance:
    return Exceedance(area, hazard, level, tuple((at(a), at(b)) for a, b in spans))


def test_exceedance_spans_close_each_run_at_its_last_sample():
    times = [at(m) for m in range(6)]
    assert exceedance_spans(times, [True, True, False, False, True, True]) == ((at(0), at(1)), (at(4), at(5)))
    assert exceedance_spans(times, [False] * 6) == ()


def test_a_raise_through_levels_gives_one_warning_per_level_and_a_cancel_ends_them_all():
    warnings = warnings_from_changes([change(0, 2), change(10, 3, sequence=1), change(30, 4, sequence=2),
                                      change(50, 3, sequence=3), change(90, 1, cancel=True, sequence=4)])
    assert [(w.level, w.raised, w.lowered) for w in warnings] == [
        (2, at(0), at(90)), (3, at(10), at(90)), (4, at(30), at(50))]


def test_a_warning_still_raised_at_the_end_has_no_lowering_and_landslide_levels_are_its_own():
    warnings = warnings_from_changes([change(0, 4, area="Z-A", hazard="landslide")])
    assert [(w.hazard, w.level, w.lowered) for w in warnings] == [("landslide", 4, None)]


def test_a_cancel_and_a_new_alert_at_the_same_reading_leave_the_area_warned():
    warnings = warnings_from_changes([change(0, 3), change(20, 3, sequence=0), change(20, 1, cancel=True,
                                                                                       sequence=2)])
    assert [(w.level, w.raised, w.lowered) for w in warnings if w.level == 3] == [(3, at(0), None)]


def test_an_event_under_a_warning_raised_earlier_is_warned_early_with_its_lead():
    warnings = [RaisedWarning("R-A", "flood", 3, at(0), at(200))]
    outcome = event_outcome(reached(3, (45, 80)), warnings, river="Tama River")
    assert (outcome.outcome, outcome.lead_min, outcome.in_force_min, outcome.river) == (
        WARNED_EARLY, 45.0, 45.0, "Tama River")
    assert outcome.hit


def test_a_warning_raised_at_the_crossing_reading_is_a_hit_with_no_lead():
    outcome = event_outcome(reached(4, (30, 40)), [RaisedWarning("R-A", "flood", 4, at(30), None)])
    assert (outcome.outcome, outcome.lead_min) == (WARNED_AT_CROSSING, 0.0)


def test_a_warning_lowered_before_its_event_is_a_miss_though_it_was_in_force_for_a_while():
    outcome = event_outcome(reached(3, (60, 70)), [RaisedWarning("R-A", "flood", 3, at(0), at(40))])
    assert (outcome.outcome, outcome.lead_min, outcome.in_force_min, outcome.hit) == (LOWERED_BEFORE, None, 40.0,
                                                                                     False)


def test_a_first_warning_within_the_late_window_is_late_with_a_negative_lead_and_after_it_a_miss():
    late = event_outcome(reached(3, (60, 70)), [RaisedWarning("R-A", "flood", 3, at(80), None)])
    assert (late.outcome, late.lead_min, late.hit) == (WARNED_LATE, -20.0, False)
    too_late = event_outcome(reached(3, (60, 70)), [RaisedWarning("R-A", "flood", 3, at(121), None)])
    assert (too_late.outcome, too_late.lead_min, too_late.first_raised) == (MISSED, None, None)


def test_warnings_of_another_area_or_a_lower_level_do_not_warn_an_event():
    warnings = [RaisedWarning("R-B", "flood", 4, at(0), None), RaisedWarning("R-A", "flood", 3, at(0), None)]
    assert event_outcome(reached(4, (60, 70)), warnings).outcome == MISSED


def test_a_warning_before_its_threshold_is_reached_tells_how_long_it_was_in_force():
    outcome = warning_outcome(RaisedWarning("R-A", "flood", 4, at(0), at(300)), [reached(4, (130, 150))])
    assert (outcome.verdict, outcome.event_time, outcome.in_force_before_event_min, outcome.in_force_at_event) == (
        BEFORE_EVENT, at(130), 130.0, True)


def test_a_warning_raised_within_the_late_window_after_its_threshold_was_reached_is_not_a_false_alarm():
    outcome = warning_outcome(RaisedWarning("R-A", "flood", 4, at(100), at(300)), [reached(4, (50, 55))])
    assert (outcome.verdict, outcome.event_time, outcome.in_force_before_event_min) == (AFTER_EVENT, at(50), None)


def test_a_warning_whose_threshold_never_came_while_it_was_in_force_is_a_false_alarm():
    assert warning_outcome(RaisedWarning("R-A", "flood", 4, at(0), at(100)),
                           [reached(4, (100, 130))]).verdict == FALSE_ALARM  # lowered as it came
    assert warning_outcome(RaisedWarning("R-A", "flood", 4, at(200), None),
                           [reached(4, (50, 130))]).verdict == FALSE_ALARM  # over 60 min after it ended
    assert warning_outcome(RaisedWarning("R-A", "flood", 4, at(0), None),
                           [reached(3, (10, 130)), reached(4, (10, 20), area="R-B")]).verdict == FALSE_ALARM


def test_storm_skill_counts_hits_misses_false_alarms_and_leads_per_level():
    changes = [change(0, 3), change(60, 4, sequence=1), change(200, 1, cancel=True, sequence=2),
               change(0, 4, area="R-B"), change(50, 1, area="R-B", cancel=True, sequence=1)]
    truth = [reached(3, (30, 150)), reached(4, (90, 120)), reached(3, (100, 110), area="R-C")]
    skill = storm_skill("test", "test", (), truth, changes, alerts_raised=2)
    by_level = {s.scored.level: s for s in skill.levels if s.scored.hazard == "flood"}
    assert (by_level[3].events, by_level[3].hits, by_level[3].missed, by_level[3].warnings,
            by_level[3].false_alarms) == (2, 1, 1, 2, 1)  # R-C missed; R-B's level 3 a false alarm
    assert (by_level[3].lead.minimum, by_level[3].lead.mean_all_events) == (30.0, 15.0)
    assert (by_level[4].hits, by_level[4].lead.maximum, by_level[4].false_alarms) == (1, 30.0, 1)
    # Level 2 is scored too, and no gauge reached flood caution here: both level-2 warnings are false.
    assert (skill.warning_count, skill.false_alarms) == (6, 4)
    assert any("false alarm" in line for line in skill_markdown(skill))


def test_targets_are_judged_against_their_thresholds():
    hit = event_outcome(reached(4, (100, 110), area="R-TAMA-X"),
                        [RaisedWarning("R-TAMA-X", "flood", 4, at(30), None)], river="Tama River")
    other_river = event_outcome(reached(4, (100, 110), area="R-AKI-X"), [], river="Aki River")
    targets = judge_targets("hagibis-2019", (), 1, [hit, other_river], [])
    flood_danger = next(t for t in targets if "flood-danger" in t.target)
    assert (flood_danger.met, "mean +70 min over 1 crossings" in flood_danger.figure) == (True, True)
    early = event_outcome(reached(4, (300, 310), area="Z-A", hazard="landslide"),
                          [RaisedWarning("Z-A", "landslide", 4, at(0), None)])
    landslide = next(t for t in judge_targets("oshima-2013", (), 1, [early], []) if "Landslide" in t.target)
    assert landslide.met is False  # 300 min: beyond the 180-minute limit
    quiet = judge_targets("quiet-day", ("synthetic", "negative-control"), 1, [], [])
    assert [(t.target, t.met) for t in quiet] == [("Quiet day: 0 alerts", False),
                                                 ("False alarms ≤ 20% of warnings", None)]


@pytest.mark.parametrize("storm", ["suginami-2005-mini", "quiet-day-mini"])
def test_the_recorded_mini_storm_chains_give_the_expected_skill(storm):
    rows = json.loads((GOLDEN / f"{storm}.json").read_text())["alerts"]
    skill = drill_skill(load_storm(storm), rows)
    if storm == "quiet-day-mini":
        assert (skill.alerts_raised, skill.events, skill.warnings) == (0, (), ())
        return
    leads = {(e.area_id, e.level): e.lead_min for e in skill.events}
    # From the golden chain against the storm's gauges (docs/skill.md works this example).
    assert leads == {("R-ZENPUKUJI-UPPER", 2): 32.0, ("R-MYOSHOJI-UPPER", 2): 38.0, ("R-ZENPUKUJI-UPPER", 3): 45.0,
                     ("R-MYOSHOJI-UPPER", 3): 49.0, ("R-ZENPUKUJI-UPPER", 4): 29.0, ("R-MYOSHOJI-UPPER", 4): 34.0,
                     ("R-KANDA-UPPER", 2): 29.0, ("R-ZENPUKUJI-UPPER", 5): 0.0}
    assert (skill.alerts_raised, skill.warning_count, skill.false_alarms) == (3, 9, 1)


def test_alert_chain_rows_become_level_changes_with_cancels_at_level_one():
    rows = json.loads((GOLDEN / "suginami-2005-mini.json").read_text())["alerts"]
    changes = level_changes_from_rows(rows)
    cancels = [c for c in changes if c.is_cancel]
    assert len(changes) == len(rows) and cancels and all(c.level == 1 for c in cancels)


def test_the_command_output_names_a_failed_drill_and_still_summarises_the_others(tmp_path):
    from suibou.skill import FailedDrill, JudgedDrill, skill_report_lines

    rows = json.loads((GOLDEN / "quiet-day-mini.json").read_text())["alerts"]
    judged = JudgedDrill(drill_skill(load_storm("quiet-day-mini"), rows, "drill-x"), tmp_path / "report.md")
    text = "\n".join(skill_report_lines([judged, FailedDrill("suginami-2005", "the runner failed")]))
    assert "**The drill failed:** the runner failed" in text
    assert "| quiet-day-mini | Quiet day: 0 alerts | 0 alerts raised | **met** |" in text
    assert "Not judged (drill failed): suginami-2005." in text
