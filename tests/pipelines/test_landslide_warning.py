"""The landslide warning's two hours of rain: a lagged median of the nowcasts, then the observed hour.

Worked by hand on wet ground (tanks 90, 60, 40: SWI 190, the default critical
line at 36.7 mm/h there) with 20 mm in the last hour: 45 mm in the next hour
reaches the line, 20 mm (persistence) does not.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.gauges import RainfallTotals
from pipelines.grids import AreaRainfall
from pipelines.landslide import ZoneFusion, criterion_level, warning_outlook
from pipelines.ordered import run_fold
from suibou.contracts import AlertLevel, AreaKind
from suibou.hydrology import CriticalLine, TankState, snake_line_outlook

ZONE, GAUGE = "Z-TEST", "RG-TEST"
T0 = dt.datetime(2013, 10, 15, 12, 0, tzinfo=dt.UTC)
WET = (90.0, 60.0, 40.0)


def _rain(minute: int) -> RainfallTotals:
    return RainfallTotals(GAUGE, T0 + dt.timedelta(minutes=minute), 4.0, 20.0, True, "d", swi_mm=190.0, tanks=WET)


def _issue(minute: int, nowcast_60min_mm: float) -> AreaRainfall:
    return AreaRainfall(ZONE, AreaKind.ZONE, "G1K", T0 + dt.timedelta(minutes=minute), 20.0, None,
                        nowcast_60min_mm, True, "d")


def _rows(items: list) -> list:
    _, rows = run_fold(ZoneFusion({ZONE: CriticalLine()}, {ZONE: GAUGE}), f"d|{ZONE}", items)
    return rows


def test_one_high_nowcast_issue_among_three_does_not_raise_the_warning():
    # The newest issue alone (80 mm) would raise it.
    row, = _rows([_issue(0, 20.0), _issue(5, 22.0), _issue(10, 80.0), _rain(10)])
    assert not row.exceeds_within_2h and criterion_level(row) == AlertLevel.NONE
    assert row.warning_rain_mm == (22.0, 20.0)  # the median issue, then the observed hour


def test_two_high_issues_of_three_raise_it():
    # The newest issue alone (22 mm) would not.
    row, = _rows([_issue(0, 80.0), _issue(5, 45.0), _issue(10, 22.0), _rain(10)])
    assert row.exceeds_within_2h and criterion_level(row) == AlertLevel.DANGER
    assert row.warning_rain_mm == (45.0, 20.0)


def test_only_the_newest_three_fresh_issues_count():
    # The issue of minute 0 is 20 minutes old at the row (grids stand for 15): only 45, 47 and 22 are fresh.
    row, = _rows([_issue(0, 10.0), _issue(5, 45.0), _issue(10, 47.0), _issue(15, 22.0), _rain(20)])
    assert row.warning_rain_mm[0] == 45.0
    # Four fresh issues: the oldest of them is left out.
    row, = _rows([_issue(5, 10.0), _issue(10, 45.0), _issue(15, 47.0), _issue(20, 22.0), _rain(20)])
    assert row.warning_rain_mm[0] == 45.0


def test_without_a_fresh_grid_both_hours_are_the_observed_hour():
    row, = _rows([_issue(0, 80.0), _rain(30)])
    assert row.warning_rain_mm == (20.0, 20.0) and not row.exceeds_within_2h


def test_an_issue_that_arrives_late_still_counts_once():
    on_time = _rows([_issue(0, 80.0), _issue(5, 45.0), _issue(10, 22.0), _rain(10)])
    late = _rows([_issue(10, 22.0), _issue(0, 80.0), _issue(5, 45.0), _issue(5, 45.0), _rain(10)])
    assert late[0].warning_rain_mm == on_time[0].warning_rain_mm == (45.0, 20.0)


def test_the_second_hour_is_the_observed_rain_not_the_nowcast_again():
    wet, line = TankState(*WET), CriticalLine()
    # 30 mm in the next hour: SWI 205.1 after it, the line at 31.6 mm: short of it (margin -0.016).
    outlook = warning_outlook(wet, 20.0, 30.0, line)
    assert outlook.r60_mm == (20.0, 30.0, 20.0) and not outlook.exceeds_within_2h
    # The first pipeline held the nowcast's 30 mm for a second hour too, and warned (+0.027).
    held = snake_line_outlook(wet, 20.0, 30.0, line)
    assert held.r60_mm == (20.0, 30.0, 30.0) and held.exceeds_within_2h
    assert held.margins[2] == pytest.approx(0.027, abs=1e-3) and outlook.margins[1] == pytest.approx(-0.016, abs=1e-3)


@pytest.mark.parametrize("nowcast", [None, 20.0])
def test_persistence_on_wet_ground_does_not_reach_the_line(nowcast):
    assert not warning_outlook(TankState(*WET), 20.0, nowcast, CriticalLine()).exceeds_within_2h
