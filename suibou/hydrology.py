"""Soil water index (土壌雨量指数) and the landslide snake-line criterion.

The soil water index is JMA's measure of how much of the rain that has fallen is
still held in the ground. It is the total storage of a series of three tanks
(直列3段タンクモデル) with one set of parameters used nationwide
(JMA, 土壌雨量指数, https://www.jma.go.jp/jma/kishou/know/bosai/dojoshisu.html;
Okada et al., 2001, 天気 48):

===========  ===========================  ==================  ==================
tank         side outlets (height, coeff)  bottom infiltration  drains into
===========  ===========================  ==================  ==================
1 (surface)  15 mm @ 0.10/h, 60 mm @ 0.15/h    0.12/h           tank 2
2            15 mm @ 0.05/h                    0.05/h           tank 3
3 (deep)     15 mm @ 0.01/h                    0.01/h           (lost)
===========  ===========================  ==================  ==================

Runoff from a side outlet is ``coefficient × (storage − outlet height)`` when
the storage is above the outlet, else nothing; infiltration is
``coefficient × storage``. Rain falls into tank 1.

**Stepping scheme.** JMA's discrete form, explicit (forward) Euler with every
outflow computed from the storage at the *start* of the step::

    S1' = S1 − dt·[α1 (S1 − 15)⁺ + α2 (S1 − 60)⁺ + β1 S1] + R
    S2' = S2 − dt·[α3 (S2 − 15)⁺ + β2 S2] + dt·β1 S1
    S3' = S3 − dt·[α4 (S3 − 15)⁺ + β3 S3] + dt·β2 S2

with ``R`` the rain (mm) fallen during the step and ``dt`` the step in hours.
``dt_h = 1`` is JMA's classic hourly computation; shorter steps (e.g. 1/6 h
for 10-minute rain) scale every coefficient by ``dt_h``. The largest outflow
fraction is tank 1's 0.37/h, so for ``dt_h <= 1`` a storage can never go
negative. A step longer than one hour is split into ``ceil(dt_h)`` equal
sub-steps with the rain spread evenly over them.

**Snake line and critical line (スネーク曲線, CL).** JMA plots, per 1 km cell,
the 60-minute rain (y) against the soil water index (x); the trajectory of
that point over time is the snake line. The landslide warning (土砂災害警戒情報)
is issued when the point expected 2 hours ahead is on or beyond the critical
line, which JMA draws per cell from past disasters. Those per-cell lines are not
public in machine-readable form, so :data:`DEFAULT_CRITICAL_LINE` is an
**invented, plausible** line (it is not JMA's line for any place): a straight
line from 100 mm/h at SWI 0 to SWI 300 mm at no rain. Give each zone its own
:class:`CriticalLine` when a bureau has calibrated one.

Examples:
    >>> state = step_tanks(TankState(), 100.0)       # outflows come from the (empty) start
    >>> state, soil_water_index(state)
    (TankState(s1=100.0, s2=0.0, s3=0.0), 100.0)
    >>> round(soil_water_index(step_tanks(state, 0.0)), 3)   # 100 - 14.5 runoff; 12 moves down
    85.5
    >>> critical_line_r60(150.0)
    50.0
    >>> snake_line_exceeds(60.0, 150.0), snake_line_exceeds(40.0, 150.0)
    (True, False)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

# JMA's nationwide parameters (per hour; heights in mm).
TANK1_OUTLETS: tuple[tuple[float, float], ...] = ((15.0, 0.10), (60.0, 0.15))
TANK1_INFILTRATION = 0.12
TANK2_OUTLETS: tuple[tuple[float, float], ...] = ((15.0, 0.05),)
TANK2_INFILTRATION = 0.05
TANK3_OUTLETS: tuple[tuple[float, float], ...] = ((15.0, 0.01),)
TANK3_INFILTRATION = 0.01
_TANKS = (
    (TANK1_OUTLETS, TANK1_INFILTRATION),
    (TANK2_OUTLETS, TANK2_INFILTRATION),
    (TANK3_OUTLETS, TANK3_INFILTRATION),
)


@dataclasses.dataclass(frozen=True)
class TankState:
    """Water stored in each of the three tanks, mm. The default is dry ground."""

    s1: float = 0.0
    s2: float = 0.0
    s3: float = 0.0

    def __post_init__(self) -> None:
        for name in ("s1", "s2", "s3"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name}={value!r}: tank storage must be a finite number >= 0 mm")
            object.__setattr__(self, name, float(value))

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.s1, self.s2, self.s3)


def _check_step(rain_mm: float, dt_h: float) -> None:
    if not (math.isfinite(dt_h) and dt_h > 0):
        raise ValueError(f"dt_h must be a positive number of hours, got {dt_h!r}")
    if not (math.isfinite(rain_mm) and rain_mm >= 0):
        raise ValueError(f"rain_mm must be a finite number >= 0, got {rain_mm!r}")


def _euler(s: tuple[float, float, float], rain_mm: float, dt_h: float) -> tuple[float, float, float]:
    out = []
    inflow = rain_mm
    for storage, (outlets, infiltration) in zip(s, _TANKS):
        runoff = sum(coeff * (storage - height) for height, coeff in outlets if storage > height)
        down = infiltration * storage
        out.append(max(storage - dt_h * (runoff + down) + inflow, 0.0))
        inflow = dt_h * down
    return out[0], out[1], out[2]


def step_tanks(state: TankState, rain_mm: float, dt_h: float = 1.0) -> TankState:
    """Advances the three tanks by one step of ``dt_h`` hours with ``rain_mm`` of rain.

    Explicit Euler, outflows from the storage at the start of the step (see the
    module docstring); steps longer than an hour are sub-stepped.

    Raises:
        ValueError: Negative or non-finite rain, or a non-positive step.
    """
    _check_step(rain_mm, dt_h)
    n_sub = max(1, math.ceil(dt_h - 1e-12))
    s = state.as_tuple()
    for _ in range(n_sub):
        s = _euler(s, rain_mm / n_sub, dt_h / n_sub)
    return TankState(*s)


def soil_water_index(state: TankState) -> float:
    """The soil water index, mm: the total water stored in the three tanks."""
    return state.s1 + state.s2 + state.s3


def tank_series(rain_mm: Sequence[float] | np.ndarray, dt_h: float = 1.0,
                initial: TankState | None = None) -> np.ndarray:
    """Storage of each tank after each step, float64 (n, 3)."""
    rain = np.asarray(rain_mm, dtype=np.float64).reshape(-1)
    if rain.size and (not np.isfinite(rain).all() or (rain < 0).any()):
        raise ValueError("rain_mm must be finite and >= 0")
    _check_step(0.0, dt_h)
    n_sub = max(1, math.ceil(dt_h - 1e-12))
    s = (initial or TankState()).as_tuple()
    out = np.empty((rain.size, 3))
    for i, r in enumerate(rain.tolist()):
        for _ in range(n_sub):
            s = _euler(s, r / n_sub, dt_h / n_sub)
        out[i] = s
    return out


def soil_water_index_series(rain_mm: Sequence[float] | np.ndarray, dt_h: float = 1.0,
                            initial: TankState | None = None) -> np.ndarray:
    """Soil water index after each step of a rain series (mm per step) -> float64 (n,).

    Element ``i`` is the index at the end of step ``i`` (rain ``rain_mm[i]`` included).

    Examples:
        >>> soil_water_index_series([100.0, 0.0, 0.0]).round(3).tolist()
        [100.0, 85.5, 77.625]
    """
    return tank_series(rain_mm, dt_h, initial).sum(axis=1)


def step_tanks_many(storage: np.ndarray, rain_mm: np.ndarray | float, dt_h: float = 1.0) -> np.ndarray:
    """:func:`step_tanks` for many independent tank sets at once: storage (..., 3) -> (..., 3).

    Same scheme (explicit Euler, sub-stepped beyond one hour); ``rain_mm``
    broadcasts against ``storage[..., 0]``.
    """
    s = np.asarray(storage, dtype=np.float64)
    rain = np.broadcast_to(np.asarray(rain_mm, dtype=np.float64), s.shape[:-1])
    if not np.isfinite(rain).all() or (rain < 0).any():
        raise ValueError("rain_mm must be finite and >= 0")
    _check_step(0.0, dt_h)
    n_sub = max(1, math.ceil(dt_h - 1e-12))
    h = dt_h / n_sub
    for _ in range(n_sub):
        inflow = rain / n_sub
        out = []
        for k, (outlets, infiltration) in enumerate(_TANKS):
            storage_k = s[..., k]
            runoff = sum(coeff * np.clip(storage_k - height, 0.0, None) for height, coeff in outlets)
            down = infiltration * storage_k
            out.append(np.clip(storage_k - h * (runoff + down) + inflow, 0.0, None))
            inflow = h * down
        s = np.stack(out, axis=-1)
    return s


def final_state(rain_mm: Sequence[float] | np.ndarray, dt_h: float = 1.0,
                initial: TankState | None = None) -> TankState:
    """Tank state after a whole rain series (the initial state for an empty one)."""
    series = tank_series(rain_mm, dt_h, initial)
    return TankState(*series[-1].tolist()) if len(series) else (initial or TankState())


# --------------------------------------------------------------------------- critical line


@dataclasses.dataclass(frozen=True)
class CriticalLine:
    """A critical line in the (soil water index, 60-minute rain) plane.

    The line runs straight from ``(0, r60_at_dry_mm)`` to ``(swi_at_no_rain_mm, 0)``:
    a point is on or beyond it when ``r60 / r60_at_dry + swi / swi_at_no_rain >= 1``.
    Below ``swi_floor_mm`` nothing exceeds (dry ground does not fail, however
    hard it rains for an hour; JMA's lines likewise start at a lower SWI bound).

    The default values are **invented** for illustration and tests; they are not
    JMA's critical line for any cell.
    """

    r60_at_dry_mm: float = 100.0
    swi_at_no_rain_mm: float = 300.0
    swi_floor_mm: float = 50.0
    zone_id: str = "default"
    note: str = "invented, plausible critical line; not JMA's line for any cell"

    def __post_init__(self) -> None:
        if not (self.r60_at_dry_mm > 0 and self.swi_at_no_rain_mm > 0):
            raise ValueError("r60_at_dry_mm and swi_at_no_rain_mm must be positive")
        if not 0 <= self.swi_floor_mm < self.swi_at_no_rain_mm:
            raise ValueError("swi_floor_mm must be in [0, swi_at_no_rain_mm)")


DEFAULT_CRITICAL_LINE = CriticalLine()


def critical_line_r60(swi_mm: float, cl: CriticalLine = DEFAULT_CRITICAL_LINE) -> float:
    """The 60-minute rain (mm) on the critical line at a soil water index (mm).

    ``inf`` below the line's SWI floor (no rain exceeds there); ``0`` at and
    beyond ``swi_at_no_rain_mm``.
    """
    if swi_mm < cl.swi_floor_mm:
        return math.inf
    return max(0.0, cl.r60_at_dry_mm * (1.0 - swi_mm / cl.swi_at_no_rain_mm))


def snake_line_exceeds(r60_mm: float, swi_mm: float, cl: CriticalLine = DEFAULT_CRITICAL_LINE) -> bool:
    """True when the snake-line point (SWI, r60) is on or beyond the critical line."""
    return r60_mm >= critical_line_r60(swi_mm, cl)


def critical_margin(r60_mm: np.ndarray | float, swi_mm: np.ndarray | float,
                    cl: CriticalLine = DEFAULT_CRITICAL_LINE) -> np.ndarray:
    """Vectorised distance to the line: ``r60/r60_at_dry + swi/swi_at_no_rain - 1``.

    Non-negative (with SWI at or above the floor) exactly when the point exceeds.
    Points below the SWI floor get ``-inf``.
    """
    r60 = np.asarray(r60_mm, dtype=np.float64)
    swi = np.asarray(swi_mm, dtype=np.float64)
    margin = r60 / cl.r60_at_dry_mm + swi / cl.swi_at_no_rain_mm - 1.0
    return np.where(swi < cl.swi_floor_mm, -np.inf, margin)


@dataclasses.dataclass(frozen=True)
class SnakeOutlook:
    """The physically based landslide criterion at one time, for one zone.

    Attributes:
        swi_mm: Soil water index now, then 1 h and 2 h ahead (with the expected rain).
        r60_mm: 60-minute rain now, then the rain expected in the first hour
            (the nowcast's) and in the second.
        margins: :func:`critical_margin` of the three points (``-inf`` below the SWI floor).
        exceeds_now: The snake-line point is on or beyond the critical line now.
        exceeds_within_2h: It is, or is expected to be within 2 hours: JMA's
            landslide warning (土砂災害警戒情報) criterion.
    """

    swi_mm: tuple[float, float, float]
    r60_mm: tuple[float, float, float]
    margins: tuple[float, float, float]
    exceeds_now: bool
    exceeds_within_2h: bool

    @property
    def margin_max(self) -> float:
        return max(self.margins)


def snake_line_outlook(state: TankState, rain_60min_mm: float, nowcast_rain_60min_mm: float,
                       cl: CriticalLine = DEFAULT_CRITICAL_LINE,
                       second_hour_rain_mm: float | None = None) -> SnakeOutlook:
    """Where the snake line is now and where it is expected 1 and 2 hours ahead.

    The tanks are stepped two hours ahead, one hour at a time, with the
    nowcast's 60-minute rain for the first hour and ``second_hour_rain_mm``
    for the second: by default the same again (JMA uses a 2-hour rain forecast
    there; suibou's nowcast reaches 60 minutes, so the second hour assumes some
    rain persists).

    Examples:
        >>> wet = TankState(90.0, 60.0, 40.0)        # SWI 190: the line is at 36.7 mm/h
        >>> outlook = snake_line_outlook(wet, rain_60min_mm=20.0, nowcast_rain_60min_mm=45.0)
        >>> outlook.exceeds_now, outlook.exceeds_within_2h
        (False, True)
        >>> snake_line_outlook(wet, 20.0, 30.0, second_hour_rain_mm=20.0).r60_mm
        (20.0, 30.0, 20.0)
    """
    rain_60min_mm, nowcast_rain_60min_mm = float(rain_60min_mm), float(nowcast_rain_60min_mm)
    second = nowcast_rain_60min_mm if second_hour_rain_mm is None else float(second_hour_rain_mm)
    swi0 = soil_water_index(state)
    one = step_tanks(state, nowcast_rain_60min_mm, 1.0)
    two = step_tanks(one, second, 1.0)
    swi = (swi0, soil_water_index(one), soil_water_index(two))
    r60 = (rain_60min_mm, nowcast_rain_60min_mm, second)
    margins = tuple(float(critical_margin(r, w, cl)) for r, w in zip(r60, swi))
    return SnakeOutlook(swi_mm=swi, r60_mm=r60, margins=margins,  # type: ignore[arg-type]
                        exceeds_now=margins[0] >= 0, exceeds_within_2h=max(margins) >= 0)


def snake_line_outlook_many(storage: np.ndarray, rain_60min_mm: np.ndarray, nowcast_rain_60min_mm: np.ndarray,
                            cl: CriticalLine = DEFAULT_CRITICAL_LINE) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`snake_line_outlook`: ``(margin_now, margin_max_within_2h)``, each (n,).

    ``storage`` is (n, 3); the rain arrays are (n,).
    """
    s0 = np.asarray(storage, dtype=np.float64)
    now_cast = np.asarray(nowcast_rain_60min_mm, dtype=np.float64)
    s1 = step_tanks_many(s0, now_cast, 1.0)
    s2 = step_tanks_many(s1, now_cast, 1.0)
    now = critical_margin(rain_60min_mm, s0.sum(axis=-1), cl)
    ahead = np.maximum(critical_margin(now_cast, s1.sum(axis=-1), cl), critical_margin(now_cast, s2.sum(axis=-1), cl))
    return now, np.maximum(now, ahead)
