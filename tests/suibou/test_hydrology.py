"""Soil water index (JMA three tanks) against hand-computed steps, and the critical line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from suibou.hydrology import (
    DEFAULT_CRITICAL_LINE,
    CriticalLine,
    TankState,
    critical_line_r60,
    critical_margin,
    final_state,
    soil_water_index,
    soil_water_index_series,
    step_tanks,
    tank_series,
)


def approx_state(state: TankState, expected: tuple[float, float, float]) -> None:
    assert state.as_tuple() == pytest.approx(expected, abs=1e-9)


# --------------------------------------------------------------------------- hand-computed steps


def test_rain_enters_tank_1_after_outflows_of_the_start_state():
    # Dry start: every outflow is computed from S = (0, 0, 0), so all are 0;
    # S1 = 0 - 0 + 100 = 100.
    state = step_tanks(TankState(), 100.0)
    approx_state(state, (100.0, 0.0, 0.0))
    assert soil_water_index(state) == pytest.approx(100.0)


def test_tank_1_above_both_side_outlets():
    # S1 = 100 > 60 > 15, no rain, one hour:
    #   side runoff q1 = 0.10 * (100 - 15) + 0.15 * (100 - 60) = 8.5 + 6.0 = 14.5
    #   infiltration f1 = 0.12 * 100 = 12
    #   S1 = 100 - 14.5 - 12 = 73.5;  S2 = 0 + 12 = 12;  S3 = 0
    #   SWI = 73.5 + 12 = 85.5
    state = step_tanks(TankState(100.0, 0.0, 0.0), 0.0)
    approx_state(state, (73.5, 12.0, 0.0))
    assert soil_water_index(state) == pytest.approx(85.5)
    # Next hour, S = (73.5, 12, 0):
    #   q1 = 0.10 * 58.5 + 0.15 * 13.5 = 5.85 + 2.025 = 7.875;  f1 = 0.12 * 73.5 = 8.82
    #   S1 = 73.5 - 7.875 - 8.82 = 56.805
    #   tank 2 is below its 15 mm outlet: q2 = 0;  f2 = 0.05 * 12 = 0.6
    #   S2 = 12 - 0.6 + 8.82 = 20.22;  S3 = 0 + 0.6 = 0.6
    #   SWI = 56.805 + 20.22 + 0.6 = 77.625
    state = step_tanks(state, 0.0)
    approx_state(state, (56.805, 20.22, 0.6))
    assert soil_water_index(state) == pytest.approx(77.625)


def test_tank_1_between_its_outlets_with_rain():
    # S1 = 40 (above 15, below 60), 10 mm of rain in the hour:
    #   q1 = 0.10 * (40 - 15) = 2.5 (the 60 mm outlet is dry);  f1 = 0.12 * 40 = 4.8
    #   S1 = 40 - 2.5 - 4.8 + 10 = 42.7;  S2 = 4.8
    approx_state(step_tanks(TankState(40.0, 0.0, 0.0), 10.0), (42.7, 4.8, 0.0))


def test_tank_1_below_its_lowest_outlet_only_infiltrates():
    # S1 = 10 < 15: q1 = 0;  f1 = 0.12 * 10 = 1.2;  S1 = 8.8;  S2 = 1.2
    approx_state(step_tanks(TankState(10.0, 0.0, 0.0), 0.0), (8.8, 1.2, 0.0))


def test_tanks_2_and_3_above_their_outlets():
    # S = (0, 40, 30), no rain:
    #   tank 2: q2 = 0.05 * (40 - 15) = 1.25;  f2 = 0.05 * 40 = 2.0;  S2 = 40 - 3.25 = 36.75
    #   tank 3: q3 = 0.01 * (30 - 15) = 0.15;  f3 = 0.01 * 30 = 0.3;  S3 = 30 - 0.45 + 2.0 = 31.55
    #   SWI = 0 + 36.75 + 31.55 = 68.3
    state = step_tanks(TankState(0.0, 40.0, 30.0), 0.0)
    approx_state(state, (0.0, 36.75, 31.55))
    assert soil_water_index(state) == pytest.approx(68.3)


def test_sub_hourly_step_scales_every_coefficient():
    # dt = 0.5 h from S = (100, 0, 0), no rain:
    #   q1 * dt = 14.5 * 0.5 = 7.25;  f1 * dt = 12 * 0.5 = 6.0
    #   S1 = 100 - 7.25 - 6 = 86.75;  S2 = 6.0
    approx_state(step_tanks(TankState(100.0, 0.0, 0.0), 0.0, dt_h=0.5), (86.75, 6.0, 0.0))


def test_long_step_is_split_into_hourly_sub_steps():
    start = TankState(30.0, 20.0, 10.0)
    two_hours = step_tanks(start, 40.0, dt_h=2.0)
    by_hand = step_tanks(step_tanks(start, 20.0), 20.0)
    approx_state(two_hours, by_hand.as_tuple())


def test_series_matches_repeated_steps_and_starts_from_initial():
    rain = [100.0, 0.0, 0.0]
    assert soil_water_index_series(rain).tolist() == pytest.approx([100.0, 85.5, 77.625])
    initial = TankState(5.0, 6.0, 7.0)
    rng = np.random.default_rng(3)
    rain = rng.exponential(4.0, 36)
    state, expected = initial, []
    for r in rain:
        state = step_tanks(state, float(r), dt_h=1 / 6)
        expected.append(soil_water_index(state))
    np.testing.assert_allclose(soil_water_index_series(rain, 1 / 6, initial), expected, rtol=1e-12)
    assert final_state(rain, 1 / 6, initial) == state
    assert final_state([], 1.0, initial) == initial
    assert tank_series([], 1.0).shape == (0, 3)


def test_mass_balance_and_recession():
    # What went in is stored or left: the index never exceeds cumulative rain,
    # and without rain it only falls.
    rain = np.r_[np.full(6, 30.0), np.zeros(48)]
    swi = soil_water_index_series(rain)
    assert np.all(swi <= np.cumsum(rain) + 1e-9)
    assert np.all(np.diff(swi[6:]) < 0)
    assert swi[-1] > 0


def test_izu_oshima_2013_scale_rain_fills_the_tanks():
    # 824 mm in 24 h with a peak hour of 122.5 mm (Izu Ōshima, 2013-10-16): a
    # synthetic hyetograph with those totals drives the index far past any
    # plausible critical line.
    hours = np.arange(24)
    others = hours != 16
    rain = np.exp(-0.5 * ((hours - 16) / 4.0) ** 2)
    rain[others] *= (824.0 - 122.5) / rain[others].sum()
    rain[16] = 122.5
    assert rain.sum() == pytest.approx(824.0) and rain.max() == pytest.approx(122.5)
    swi = soil_water_index_series(rain)
    assert 250.0 < swi.max() < 824.0
    assert critical_margin(rain[16], swi[16]) > 0


def test_rejects_bad_inputs():
    with pytest.raises(ValueError):
        TankState(-1.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        step_tanks(TankState(), -0.5)
    with pytest.raises(ValueError):
        step_tanks(TankState(), 1.0, dt_h=0.0)
    with pytest.raises(ValueError):
        soil_water_index_series([1.0, math.nan])


# --------------------------------------------------------------------------- critical line


def test_default_critical_line_is_labelled_invented():
    assert "invented" in DEFAULT_CRITICAL_LINE.note


def test_critical_line_values():
    # Straight line from (SWI 0, r60 100) to (SWI 300, r60 0), floor SWI 50.
    assert critical_line_r60(150.0) == pytest.approx(50.0)   # 100 * (1 - 150/300)
    assert critical_line_r60(60.0) == pytest.approx(80.0)    # 100 * (1 - 60/300)
    assert critical_line_r60(300.0) == 0.0 and critical_line_r60(400.0) == 0.0
    assert critical_line_r60(49.0) == math.inf               # below the floor nothing exceeds
    zone = CriticalLine(r60_at_dry_mm=60.0, swi_at_no_rain_mm=200.0, swi_floor_mm=20.0, zone_id="Z-1")
    assert critical_line_r60(100.0, zone) == pytest.approx(30.0)
    with pytest.raises(ValueError):
        CriticalLine(swi_floor_mm=400.0)


def test_snake_line_exceeds_on_or_beyond_the_line():
    from suibou.hydrology import snake_line_exceeds

    assert snake_line_exceeds(50.0, 150.0)          # exactly on the line
    assert not snake_line_exceeds(49.9, 150.0)
    assert snake_line_exceeds(10.0, 280.0)          # wet ground, little rain: 100*(1-280/300) = 6.7
    assert not snake_line_exceeds(200.0, 10.0)      # dry ground
    r60 = np.array([50.0, 49.9, 10.0, 200.0])
    swi = np.array([150.0, 150.0, 280.0, 10.0])
    margins = critical_margin(r60, swi)
    assert (margins >= -1e-12).tolist() == [True, False, True, False]


def test_docstring_examples():
    import doctest

    import suibou.hydrology

    result = doctest.testmod(suibou.hydrology)
    assert result.failed == 0 and result.attempted > 0


def test_vectorised_steps_match_scalar_steps():
    from suibou.hydrology import step_tanks_many

    rng = np.random.default_rng(11)
    storage = rng.uniform(0, 120, (20, 3))
    rain = rng.exponential(8.0, 20)
    for dt_h in (1 / 6, 1.0, 2.5):
        many = step_tanks_many(storage, rain, dt_h)
        for i in range(20):
            one = step_tanks(TankState(*storage[i]), float(rain[i]), dt_h)
            np.testing.assert_allclose(many[i], one.as_tuple(), rtol=1e-12)


def test_snake_line_outlook_projects_two_hours_with_the_nowcast():
    from suibou.hydrology import snake_line_outlook, snake_line_outlook_many

    wet = TankState(90.0, 60.0, 40.0)
    # Now: SWI 190, CL(190) = 100 * (1 - 190/300) = 36.67 mm; r60 = 20 is below it.
    # +1 h with 45 mm: tank 1 q1 = 0.1*75 + 0.15*30 = 12, f1 = 10.8 -> S1 = 90 - 22.8 + 45 = 112.2
    #   tank 2 q2 = 0.05*45 = 2.25, f2 = 3 -> S2 = 60 - 5.25 + 10.8 = 65.55
    #   tank 3 q3 = 0.01*25 = 0.25, f3 = 0.4 -> S3 = 40 - 0.65 + 3 = 42.35;  SWI = 220.1
    #   CL(220.1) = 26.63 mm <= 45: beyond the line.
    outlook = snake_line_outlook(wet, rain_60min_mm=20.0, nowcast_rain_60min_mm=45.0)
    assert outlook.swi_mm[1] == pytest.approx(220.1)
    assert not outlook.exceeds_now and outlook.exceeds_within_2h
    assert outlook.margins[0] == pytest.approx(20 / 100 + 190 / 300 - 1)
    calm = snake_line_outlook(wet, rain_60min_mm=20.0, nowcast_rain_60min_mm=0.0)
    assert not calm.exceeds_within_2h
    now, ahead = snake_line_outlook_many(np.array([wet.as_tuple()] * 2), np.array([20.0, 20.0]),
                                         np.array([45.0, 0.0]))
    assert now.tolist() == pytest.approx([outlook.margins[0]] * 2)
    assert ahead.tolist() == pytest.approx([outlook.margin_max, calm.margin_max])
