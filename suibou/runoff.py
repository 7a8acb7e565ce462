"""Surface rainfall index and routed runoff index of a river reach, from rain grids.

JMA judges flood risk on two indices computed from its 1 km rain analyses and
nowcasts (mission brief, "Flood forecasting with lead time"):

* the **surface rainfall index** (表面雨量指数): rain held at the surface of
  each cell by a tank model, no routing, for inundation from heavy local rain;
* the **runoff index** (流域雨量指数): the runoff of each cell routed down the
  river network, so that a reach downstream feels rain upstream hours before its
  own gauge rises.

suibou computes both in the same spirit, each reach from the grid cells that
stand for it (:func:`pipelines.grids.area_cells`):

**Surface tank.** One tank per cell, stepped like the soil water index
(:mod:`suibou.hydrology`: explicit Euler, outflows from the storage at the start
of each step) with sub-steps of at most 10 minutes:

===========================  =============================  ====================
side outlets (height, coeff)  bottom infiltration            meaning
===========================  =============================  ====================
5 mm @ 0.6/h, 30 mm @ 1.2/h   0.2/h                          quick surface runoff
===========================  =============================  ====================

These are **suibou's parameters, not JMA's**: JMA's per-land-use tank
parameters are not published in machine-readable form. They make a paved 1 km
cell shed most of an intense hour's rain within that hour and hold light rain.
The surface rainfall index of a reach is the largest storage among its cells
(mm); its runoff is the mean side-outlet outflow of its cells (mm/h).

**Routing.** Reach by reach, not cell by cell: the catalogue's river network
(:attr:`suibou.catalogue.Reach.flows_into`) gives each reach the reaches
upstream of it and the travel time of a flood wave from each. The runoff index
of a reach at time ``t`` is the mean, over the reach and every reach upstream
of it, of each one's runoff averaged over the :data:`ATTENUATION_MIN` minutes
before ``t`` minus its travel time (a translation with a little attenuation,
standing in for the kinematic wave). Each catchment weighs alike: the
catalogue has no catchment areas. The index is in mm/h of routed runoff.

**Ahead.** Each grid's nowcast (rain expected in the next 30 and 60 minutes)
steps a copy of the tanks forward, so each index has a largest value expected
within the next 60 minutes, as JMA judges its indices on what the nowcast
brings.

Examples:
    >>> storage = step_surface_tanks(np.zeros(1), np.array([60.0]), dt_h=1.0)
    >>> storage.round(2).tolist(), surface_runoff(storage).round(2).tolist()
    ([42.61], [37.7])
"""

from __future__ import annotations

import math

import numpy as np

from suibou.catalogue import StationCatalogue

#: Side outlets of the surface tank: (height mm, coefficient per hour).
SURFACE_OUTLETS: tuple[tuple[float, float], ...] = ((5.0, 0.6), (30.0, 1.2))
#: Infiltration coefficient of the surface tank, per hour.
SURFACE_INFILTRATION = 0.2
#: The longest Euler sub-step, hours (10 minutes).
MAX_SUBSTEP_H = 1.0 / 6.0
#: Minutes of runoff averaged at each upstream reach before it is translated downstream.
ATTENUATION_MIN = 30.0
#: Minutes ahead of each forecast step, up to the nowcast's 60 minutes.
AHEAD_STEPS_MIN: tuple[int, ...] = (10, 20, 30, 40, 50, 60)


def surface_runoff(storage: np.ndarray) -> np.ndarray:
    """Side-outlet outflow (mm/h) of surface tanks holding ``storage`` (mm)."""
    s = np.asarray(storage, dtype=np.float64)
    return sum((coeff * np.clip(s - height, 0.0, None) for height, coeff in SURFACE_OUTLETS), np.zeros_like(s))


def step_surface_tanks(storage: np.ndarray, rate_mm_h: np.ndarray | float, dt_h: float) -> np.ndarray:
    """Surface tanks after ``dt_h`` hours of rain at ``rate_mm_h`` (broadcast per cell).

    Raises:
        ValueError: A negative or non-finite rate, or a negative step.
    """
    s = np.asarray(storage, dtype=np.float64)
    rate = np.broadcast_to(np.asarray(rate_mm_h, dtype=np.float64), s.shape)
    if not np.isfinite(rate).all() or (rate < 0).any():
        raise ValueError("rain rates must be finite and >= 0")
    if not (math.isfinite(dt_h) and dt_h >= 0):
        raise ValueError(f"dt_h must be a number of hours >= 0, got {dt_h!r}")
    if dt_h == 0:
        return s.copy()
    n_sub = max(1, math.ceil(dt_h / MAX_SUBSTEP_H - 1e-9))
    h = dt_h / n_sub
    for _ in range(n_sub):
        s = np.clip(s - h * (surface_runoff(s) + SURFACE_INFILTRATION * s) + h * rate, 0.0, None)
    return s


def forecast_surface_tanks(storage: np.ndarray, nowcast_30min_mm: np.ndarray, nowcast_60min_mm: np.ndarray
                           ) -> list[np.ndarray]:
    """The tanks at each of :data:`AHEAD_STEPS_MIN`, under the nowcast's rain.

    The nowcast gives the rain expected within 30 and 60 minutes; each half
    hour's rain falls at an even rate (per cell).
    """
    first = np.asarray(nowcast_30min_mm, dtype=np.float64) * 2.0
    second = np.clip(np.asarray(nowcast_60min_mm, dtype=np.float64) - np.asarray(nowcast_30min_mm), 0.0, None) * 2.0
    out = []
    s = np.asarray(storage, dtype=np.float64)
    previous = 0
    for minutes in AHEAD_STEPS_MIN:
        s = step_surface_tanks(s, first if minutes <= 30 else second, (minutes - previous) / 60.0)
        out.append(s)
        previous = minutes
    return out


def routed_mean(values: list[float | None]) -> float | None:
    """The runoff index from the translated runoff of each catchment: their mean, or None if one is unknown.

    Examples:
        >>> routed_mean([4.0, 2.0]), routed_mean([4.0, None]), routed_mean([])
        (3.0, None, None)
    """
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)


def downstream_of(catalogue: StationCatalogue, reach_id: str) -> list[tuple[str, float]]:
    """Every reach below ``reach_id``, nearest first, each with the travel minutes from it."""
    out: list[tuple[str, float]] = []
    travel = 0.0
    reach = catalogue.reach(reach_id)
    while reach.flows_into is not None:  # the catalogue refuses a network with a loop
        travel += float(reach.travel_min or 0.0)
        out.append((reach.flows_into, travel))
        reach = catalogue.reach(reach.flows_into)
    return out


def own_rain_stations(catalogue: StationCatalogue, reach_id: str) -> tuple[str, ...]:
    """The rain gauges of ``reach_id`` that no reach upstream of it has: its own part of the catchment."""
    upstream = {g.station_id for other in catalogue.reaches
                if reach_id in dict(downstream_of(catalogue, other.reach_id))
                for g in catalogue.rain_stations_for_reach(other.reach_id)}
    return tuple(g.station_id for g in catalogue.rain_stations_for_reach(reach_id) if g.station_id not in upstream)


def reach_networks(catalogue: StationCatalogue) -> dict[str, tuple[tuple[str, float], ...]]:
    """Reach id -> the reaches whose runoff its runoff index routes, with the travel minutes from each.

    That is the reach itself (0 minutes) and every reach upstream of it, each
    only if it has rain gauges of its own (:func:`own_rain_stations`): a reach
    with none adds no rain that those upstream did not, so it would count theirs
    twice. A reach with none of its own and none upstream routes itself alone.
    """
    routed = {r.reach_id for r in catalogue.reaches if own_rain_stations(catalogue, r.reach_id)}
    networks: dict[str, list[tuple[str, float]]] = {
        r.reach_id: [(r.reach_id, 0.0)] if r.reach_id in routed else [] for r in catalogue.reaches}
    for reach in catalogue.reaches:
        if reach.reach_id in routed:
            for below, travel in downstream_of(catalogue, reach.reach_id):
                networks[below].append((reach.reach_id, travel))
    return {reach_id: tuple(network) or ((reach_id, 0.0),) for reach_id, network in networks.items()}


def _steady_table() -> tuple[np.ndarray, np.ndarray]:
    storage = np.concatenate([np.linspace(0.0, 100.0, 1001), np.linspace(110.0, 2000.0, 190)])
    return SURFACE_INFILTRATION * storage + surface_runoff(storage), storage


_STEADY_RATE, _STEADY_STORAGE = _steady_table()


def steady_storage(rate_mm_h: np.ndarray | float) -> np.ndarray:
    """Storage (mm) of a surface tank that rain at ``rate_mm_h`` has filled to its steady state.

    The indices' stand-in where no grid is fresh: the last hour's rain taken as
    having gone on steadily (as the nowcast falls back to persistence).

    Examples:
        >>> steady_storage(np.array([0.0, 1.0, 21.0])).round(3).tolist()
        [0.0, 5.0, 30.0]
    """
    return np.interp(np.asarray(rate_mm_h, dtype=np.float64), _STEADY_RATE, _STEADY_STORAGE)


def steady_runoff(rate_mm_h: np.ndarray | float) -> np.ndarray:
    """Runoff (mm/h) of a surface tank at its steady state under ``rate_mm_h`` (:func:`steady_storage`)."""
    return surface_runoff(steady_storage(rate_mm_h))
