"""The surface tank behind the surface rainfall and runoff indices."""

from __future__ import annotations

import numpy as np
import pytest

from suibou.runoff import (
    AHEAD_STEPS_MIN,
    SURFACE_INFILTRATION,
    forecast_surface_tanks,
    step_surface_tanks,
    surface_runoff,
)


def test_a_tank_below_its_lowest_outlet_sheds_nothing_and_only_infiltrates():
    assert surface_runoff(np.array([0.0, 4.9])).tolist() == [0.0, 0.0]
    after = step_surface_tanks(np.array([4.0]), 0.0, 1.0 / 6.0)
    assert after[0] == pytest.approx(4.0 * (1 - SURFACE_INFILTRATION / 6.0))


def test_every_drop_of_rain_is_stored_shed_or_infiltrated():
    storage, rate, dt_h = np.array([0.0, 20.0, 50.0]), np.array([80.0, 10.0, 0.0]), 1.0 / 6.0
    after = step_surface_tanks(storage, rate, dt_h)
    shed = surface_runoff(storage) * dt_h
    infiltrated = SURFACE_INFILTRATION * storage * dt_h
    np.testing.assert_allclose(after, storage + rate * dt_h - shed - infiltrated)


def test_a_long_step_is_sub_stepped_so_it_matches_many_short_ones():
    one = step_surface_tanks(np.zeros(1), np.array([60.0]), 1.0)
    six = np.zeros(1)
    for _ in range(6):
        six = step_surface_tanks(six, np.array([60.0]), 1.0 / 6.0)
    np.testing.assert_allclose(one, six)


def test_heavier_rain_gives_more_storage_and_more_runoff():
    light, heavy = (step_surface_tanks(np.zeros(1), np.array([r]), 1.0) for r in (10.0, 80.0))
    assert heavy[0] > light[0]
    assert surface_runoff(heavy)[0] > surface_runoff(light)[0] > 0


def test_the_forecast_steps_the_tanks_through_each_half_hour_of_the_nowcast():
    ahead = forecast_surface_tanks(np.zeros(2), np.array([0.0, 30.0]), np.array([0.0, 30.0]))
    assert len(ahead) == len(AHEAD_STEPS_MIN)
    dry, wet = np.array(ahead).T
    assert dry.tolist() == [0.0] * len(AHEAD_STEPS_MIN)
    assert np.argmax(wet) == AHEAD_STEPS_MIN.index(30)  # it rains the first half hour, then drains


@pytest.mark.parametrize("rate", [-1.0, float("nan"), float("inf")])
def test_a_rate_that_is_not_rain_is_refused(rate):
    with pytest.raises(ValueError, match="rain rates"):
        step_surface_tanks(np.zeros(1), np.array([rate]), 0.1)
