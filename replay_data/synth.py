"""A seeded, physically consistent storm synthesiser for drills and training data.

Everything here is synthetic. The chain, at a fixed time step (1 minute by default):

1. **Rain.** One or more moving Gaussian rain cells (:class:`RainCell`) plus a
   uniform background give the true rain rate (mm/h) at every rain gauge::

       rate(x, t) = background + sum_cells peak * g(t) * exp(-|x - c(t)|² / 2σ²)

   where ``c(t)`` moves in a straight line at the cell's speed and heading and
   ``g(t)`` is a Gaussian envelope in time (the cell grows and decays).
2. **Rain gauges** report what a 0.5 mm tipping bucket would have counted in
   each step, after a small multiplicative gauge error (seeded).
3. **Runoff.** Per reach, basin rain is the mean true rain of the reach's rain
   gauges. The SCS curve-number method turns cumulative basin rain P into
   cumulative runoff Q = (P - Ia)² / (P - Ia + S), S = 25400/CN - 254 mm,
   Ia = 0.2 S; its increments are the effective rain. Storm sewers deliver at
   most ``drain_capacity_mm_h`` of it to the river; the rest ponds and drains
   at that capacity afterwards (a Lindley queue, vectorised).
4. **Routing.** A Nash cascade of ``n`` linear reservoirs with time constant
   ``k`` (its unit hydrograph, a gamma density, convolved with effective
   rain) gives discharge, plus base flow. Down the river network
   (:func:`river_discharge`), a reach adds the response of its own part of the
   catchment to the discharge of the reaches upstream, each carried down the
   channel for the catalogue's travel time (:func:`channel_route`).
5. **Stage.** Inverting the reach's rating curve Q = a (h - h0)^b gives the water
   level, to which small gauge noise is added before rounding to 1 cm.
6. **Soil water.** At each landslide zone's centroid, JMA's soil water index
   (three tanks, :mod:`suibou.hydrology`) and the 60-minute rain.
7. **Damage** (:func:`find_damage`): reaches whose true level reaches bank-full
   overflow; slopes whose snake line is beyond their critical line once the
   soil water index has reached their invented ``failure_swi_mm`` fail.

Cells may be elongated (``length_km``: a rain band) and hold their peak for a
while (``plateau_min``: steady rain). Camera frames, rainfall grids with a
nowcast and drone observations are derived from the same storm by
:mod:`replay_data.media`.

The runoff and rating parameters are the catalogue's invented
``synthetic_hydrology``. All functions are pure and vectorised over time and
stations; the only randomness comes from ``numpy.random.default_rng(seed)``, so
a seed always yields the same storm.

Examples:
    >>> from suibou.catalogue import StationCatalogue
    >>> import datetime as dt
    >>> cat = StationCatalogue.load("kanda-basin")
    >>> params = StormParams(start=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
    ...     duration_min=60, cells=(), background_mm_h=0.0, seed=1)
    >>> sim = simulate(cat, params)
    >>> sim.rain_mm.shape, float(sim.rain_mm.sum())
    ((4, 60), 0.0)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from suibou.catalogue import Reach, ReachHydrology, StationCatalogue
from suibou.contracts import (
    CameraFrame,
    DroneObservation,
    Event,
    GridNotice,
    LevelReading,
    RainReading,
)

_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON_EQUATOR = 111.320
#: Resolution of a standard tipping-bucket rain gauge, mm.
BUCKET_MM = 0.5
#: Resolution a level gauge reports to, m.
LEVEL_RESOLUTION_M = 0.01


@dataclasses.dataclass(frozen=True)
class RainCell:
    """A rain cell: a Gaussian blob that moves in a straight line.

    Attributes:
        peak_mm_h: Rain rate at the cell centre at its peak time, mm/h.
        lon, lat: Where the centre is at the peak time.
        peak_min: Minutes after the storm start at which the cell peaks (the
            middle of the plateau, if any).
        duration_min: Life of the cell: outside the plateau its envelope falls
            off as a Gaussian in time with standard deviation ``duration_min / 4``.
        sigma_km: Spatial standard deviation of the blob across its long axis, km.
        speed_kmh: Speed of the centre, km/h.
        heading_deg: Direction the cell moves towards, degrees clockwise from north.
        length_km: Standard deviation along the long axis, km; None for a round
            cell. An elongated, slow cell is a rain band (線状降水帯).
        axis_deg: Direction of the long axis (default: the heading).
        plateau_min: Minutes around the peak during which the cell keeps its
            peak strength (long, steady rain such as a typhoon's rain shield).
    """

    peak_mm_h: float
    lon: float
    lat: float
    peak_min: float
    duration_min: float
    sigma_km: float = 3.0
    speed_kmh: float = 10.0
    heading_deg: float = 90.0
    length_km: float | None = None
    axis_deg: float | None = None
    plateau_min: float = 0.0

    def __post_init__(self) -> None:
        if self.peak_mm_h < 0 or self.duration_min <= 0 or self.sigma_km <= 0 or self.speed_kmh < 0:
            raise ValueError("peak_mm_h and speed_kmh must be >= 0; duration_min and sigma_km positive")
        if (self.length_km is not None and not self.length_km > 0) or self.plateau_min < 0:
            raise ValueError("length_km must be positive and plateau_min >= 0")

    def envelope(self, minutes: np.ndarray) -> np.ndarray:
        """Strength relative to the peak at ``minutes`` after the storm start."""
        outside = np.clip(np.abs(np.asarray(minutes, dtype=float) - self.peak_min) - self.plateau_min / 2, 0.0, None)
        return np.exp(-0.5 * (outside / (self.duration_min / 4.0)) ** 2)

    def velocity_kmh(self) -> tuple[float, float]:
        """(east, north) velocity of the centre, km/h."""
        heading = math.radians(self.heading_deg)
        return self.speed_kmh * math.sin(heading), self.speed_kmh * math.cos(heading)


@dataclasses.dataclass(frozen=True)
class StormParams:
    """Everything that determines a synthetic storm (together with a catalogue).

    Attributes:
        start: Start of the storm (UTC-aware). Readings are stamped at the end
            of each step, from ``start + step`` to ``start + duration``.
        duration_min: Length of the storm, minutes (a whole number of steps).
        cells: The moving rain cells.
        background_mm_h: Uniform light rain everywhere, mm/h.
        seed: Seed of the gauge errors.
        step_s: Time step of rain and level readings, seconds.
        rain_error: Standard deviation of the multiplicative rain-gauge error.
        level_noise_m: Standard deviation of the level-gauge noise, m.
        initial_rain_mm: Rain already fallen before the start (wets the soil:
            counts towards the SCS initial loss).
    """

    start: dt.datetime
    duration_min: int
    cells: tuple[RainCell, ...]
    background_mm_h: float = 0.0
    seed: int = 0
    step_s: int = 60
    rain_error: float = 0.05
    level_noise_m: float = 0.004
    initial_rain_mm: float = 0.0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if self.step_s <= 0 or (self.duration_min * 60) % self.step_s:
            raise ValueError("duration_min must be a whole number of steps")
        if self.duration_min <= 0 or self.background_mm_h < 0 or self.initial_rain_mm < 0:
            raise ValueError("duration_min must be positive; background and initial rain >= 0")
        object.__setattr__(self, "cells", tuple(self.cells))

    @property
    def n_steps(self) -> int:
        return self.duration_min * 60 // self.step_s

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(minutes=self.duration_min)


@dataclasses.dataclass(frozen=True)
class Simulation:
    """The arrays behind a synthetic storm.

    Attributes:
        times: Reading times (UTC), shape (T,), ``start + step * (1..T)``.
        rain_ids: Rain gauge ids, in catalogue order (R,).
        rain_rate_mm_h: True mean rain rate over each step, (R, T).
        rain_mm: What each gauge reported for each step, (R, T).
        level_ids: Level gauge ids, in catalogue order (L,).
        discharge_m3s: True discharge at each level gauge, (L, T).
        level_true_m: True stage, (L, T).
        level_m: Reported stage (noisy, rounded to 1 cm), (L, T).
        zone_ids: Landslide zone ids, in catalogue order (Z,).
        zone_rain_mm: True rain at each zone's centroid per step, (Z, T).
        zone_swi_mm: Soil water index at each zone's centroid after each step, (Z, T).
        zone_r60_mm: Rain in the 60 minutes up to each step's end, (Z, T).
    """

    times: np.ndarray
    rain_ids: tuple[str, ...]
    rain_rate_mm_h: np.ndarray
    rain_mm: np.ndarray
    level_ids: tuple[str, ...]
    discharge_m3s: np.ndarray
    level_true_m: np.ndarray
    level_m: np.ndarray
    zone_ids: tuple[str, ...] = ()
    zone_rain_mm: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))
    zone_swi_mm: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))
    zone_r60_mm: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def epochs(self) -> np.ndarray:
        """Reading times as whole seconds since 1970-01-01 UTC."""
        return self.times.astype("datetime64[s]").astype(np.int64)


# --------------------------------------------------------------------------- rain


def local_km(lon: np.ndarray | float, lat: np.ndarray | float, lon0: float,
             lat0: float) -> tuple[np.ndarray, np.ndarray]:
    """Equirectangular projection to km east/north of (lon0, lat0); fine over a city."""
    x = (np.asarray(lon, dtype=float) - lon0) * _KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat0))
    y = (np.asarray(lat, dtype=float) - lat0) * _KM_PER_DEG_LAT
    return x, y


def _cells_rate(cells: Sequence[RainCell], background_mm_h: float, lon: np.ndarray, lat: np.ndarray,
                position_min: np.ndarray, strength_min: np.ndarray,
                shift_km: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Rain rate (P, T) with each cell placed where it is at ``position_min`` and as
    strong as it is at ``strength_min`` (equal for the true field; the nowcast
    freezes the strength at its issue time), its centre moved by ``shift_km``."""
    lon = np.asarray(lon, dtype=float).ravel()
    lat = np.asarray(lat, dtype=float).ravel()
    position_min = np.asarray(position_min, dtype=float)
    rate = np.full((lon.size, position_min.size), float(background_mm_h))
    for cell in cells:
        px, py = local_km(lon, lat, cell.lon, cell.lat)  # relative to the centre at peak time
        hours = (position_min - cell.peak_min) / 60.0
        vx, vy = cell.velocity_kmh()
        cx, cy = vx * hours, vy * hours
        if shift_km is not None:
            cx, cy = cx + shift_km[0], cy + shift_km[1]
        dx = px[:, None] - cx[None, :]
        dy = py[:, None] - cy[None, :]
        if cell.length_km is None:
            q = (dx**2 + dy**2) / cell.sigma_km**2
        else:
            axis = math.radians(cell.heading_deg if cell.axis_deg is None else cell.axis_deg)
            along = dx * math.sin(axis) + dy * math.cos(axis)
            across = dx * math.cos(axis) - dy * math.sin(axis)
            q = along**2 / cell.length_km**2 + across**2 / cell.sigma_km**2
        rate += cell.peak_mm_h * cell.envelope(strength_min)[None, :] * np.exp(-0.5 * q)
    return rate


def rain_rate(cells: Sequence[RainCell], background_mm_h: float, lon: np.ndarray, lat: np.ndarray,
              minutes: np.ndarray) -> np.ndarray:
    """True rain rate, mm/h, at points (P,) and times in minutes since the start (T,) -> (P, T)."""
    minutes = np.asarray(minutes, dtype=float)
    return _cells_rate(cells, background_mm_h, lon, lat, minutes, minutes)


def nowcast_rate(cells: Sequence[RainCell], background_mm_h: float, lon: np.ndarray, lat: np.ndarray,
                 issue_min: float, lead_min: np.ndarray, velocity_error_kmh: tuple[float, float] = (0.0, 0.0)
                 ) -> np.ndarray:
    """Advection nowcast of the rain rate, mm/h, (P, L): Lagrangian persistence.

    Each cell keeps the strength it has at the issue time (growth and decay are
    not foreseen) and moves on with its velocity plus ``velocity_error_kmh``
    (the error of the motion estimate), so the displacement error grows
    linearly with lead time. At lead 0 this is the true field.
    """
    lead = np.asarray(lead_min, dtype=float)
    shift = (velocity_error_kmh[0] * lead / 60.0, velocity_error_kmh[1] * lead / 60.0)
    return _cells_rate(cells, background_mm_h, lon, lat, issue_min + lead, np.full(lead.shape, float(issue_min)),
                       shift)


def step_mean_rate(cells: Sequence[RainCell], background_mm_h: float, lon: np.ndarray, lat: np.ndarray,
                   n_steps: int, step_s: int, substeps: int = 4) -> np.ndarray:
    """Mean rain rate over each step ``((i-1)*step, i*step]``, mm/h, (P, n_steps)."""
    step_min = step_s / 60.0
    offsets = (np.arange(substeps) + 0.5) / substeps * step_min
    minutes = (np.arange(n_steps)[:, None] * step_min + offsets[None, :]).ravel()
    rate = rain_rate(cells, background_mm_h, lon, lat, minutes)
    return rate.reshape(len(np.atleast_1d(lon)), n_steps, substeps).mean(axis=2)


def tipping_bucket(rain_mm: np.ndarray, bucket_mm: float = BUCKET_MM) -> np.ndarray:
    """What a tipping bucket reports per step for true rain depths (…, T): whole tips only.

    Totals are conserved up to the part of a bucket still filling at the end.
    """
    tips = np.floor(np.cumsum(rain_mm, axis=-1) / bucket_mm + 1e-9)
    return np.diff(tips, axis=-1, prepend=0.0) * bucket_mm


# --------------------------------------------------------------------------- runoff


def scs_effective_rain(rain_mm: np.ndarray, curve_number: float, initial_rain_mm: float = 0.0) -> np.ndarray:
    """Effective (runoff-producing) rain per step by the SCS curve-number method, mm."""
    s = 25400.0 / curve_number - 254.0
    ia = 0.2 * s
    p = initial_rain_mm + np.concatenate([[0.0], np.cumsum(rain_mm)])
    excess = np.clip(p - ia, 0.0, None)
    q = excess**2 / (excess + s) if s > 0 else excess
    return np.diff(q)


def drain(effective_mm: np.ndarray, capacity_mm: float | None) -> np.ndarray:
    """What the sewers deliver per step when they carry at most ``capacity_mm`` per step.

    Surface ponding follows the Lindley recursion P_t = max(0, P_{t-1} + x_t - c),
    solved in closed form as P_t = C_t - min(0, min_{s<=t} C_s) with C the
    cumulative sum of ``x - c``; delivery is inflow minus the change in ponding.
    """
    if capacity_mm is None:
        return effective_mm
    c = np.cumsum(effective_mm - capacity_mm)
    ponded = c - np.minimum(np.minimum.accumulate(c), 0.0)
    return effective_mm - np.diff(ponded, prepend=0.0)


def nash_unit_hydrograph(n: int, k_min: float, step_s: int, length: int) -> np.ndarray:
    """Discrete Nash-cascade unit hydrograph: fraction of a step's runoff leaving in each step.

    The gamma density is integrated over each step (midpoint rule on sub-steps)
    and normalised so the fractions sum to one over ``length`` steps.
    """
    sub = 8
    t = (np.arange(length * sub) + 0.5) * (step_s / 60.0) / sub
    density = t ** (n - 1) * np.exp(-t / k_min) / (k_min**n * math.gamma(n))
    uh = density.reshape(length, sub).sum(axis=1)
    return uh / uh.sum()


def route(effective_mm: np.ndarray, hydro: ReachHydrology, step_s: int) -> np.ndarray:
    """Discharge (m³/s) at the reach outlet for effective rain (mm per step), plus base flow."""
    n_steps = effective_mm.size
    # mm per step over the catchment -> m³/s: mm * 1e-3 m * km² * 1e6 m² / step_s
    capacity = None if hydro.drain_capacity_mm_h is None else hydro.drain_capacity_mm_h * step_s / 3600.0
    inflow = drain(effective_mm, capacity) * hydro.catchment_km2 * 1e3 / step_s
    length = max(n_steps, int(20 * hydro.n_reservoirs * hydro.k_min * 60 / step_s) + 1)
    uh = nash_unit_hydrograph(hydro.n_reservoirs, hydro.k_min, step_s, length)
    return hydro.base_flow_m3s + np.convolve(inflow, uh)[:n_steps]


def stage_from_discharge(discharge_m3s: np.ndarray, hydro: ReachHydrology) -> np.ndarray:
    """Water level (m) from the rating curve Q = a (h - h0)^b."""
    return hydro.rating_h0_m + (np.clip(discharge_m3s, 0.0, None) / hydro.rating_a) ** (1.0 / hydro.rating_b)


def discharge_from_stage(level_m: np.ndarray | float, hydro: ReachHydrology) -> np.ndarray:
    """Inverse of :func:`stage_from_discharge`."""
    return hydro.rating_a * np.clip(np.asarray(level_m, dtype=float) - hydro.rating_h0_m, 0.0, None) ** hydro.rating_b


#: Exponent of the lag-area relation that scales a reach's time constant to the
#: part of its catchment between its own gauge and the gauges upstream (lag grows
#: roughly as area to the power 0.3 to 0.4 in empirical lag formulas).
LAG_AREA_EXPONENT = 0.38


def channel_route(excess_m3s: np.ndarray, travel_min: float, step_s: int) -> np.ndarray:
    """A flood wave carried ``travel_min`` down a channel: half as a pure delay,
    half through one linear reservoir, so the mean delay is ``travel_min`` and the
    peak flattens a little, as a Muskingum reach with x = 0 would flatten it."""
    n_steps = excess_m3s.size
    delay = round(travel_min * 30 / step_s)
    k_min = travel_min / 2.0
    length = max(1, min(n_steps, int(20 * k_min * 60 / step_s) + 1))
    kernel = nash_unit_hydrograph(1, k_min, step_s, length)
    routed = np.convolve(excess_m3s, kernel)[:n_steps]
    return np.concatenate([np.zeros(min(delay, n_steps)), routed[:max(n_steps - delay, 0)]])


def gauged_upstream(catalogue: StationCatalogue, reach_id: str) -> tuple[Reach, ...]:
    """The reaches flowing directly into ``reach_id`` whose discharge is synthesised."""
    return tuple(r for r in catalogue.upstream_reaches(reach_id)
                 if r.level_station_id is not None and r.reach_id in catalogue.hydrology)


def river_discharge(catalogue: StationCatalogue, true_mm: np.ndarray, rain_ids: Sequence[str],
                    initial_rain_mm: float, step_s: int) -> np.ndarray:
    """Discharge (m³/s) at every level gauge, routed down the river network.

    A reach with no gauged reach upstream answers its basin rain as a whole
    (:func:`route`). A reach below others adds its own part of the catchment
    (its area less theirs, driven by the rain gauges that sample none of the
    reaches upstream, and with its time constant scaled to that area) to their
    discharges above base flow, each carried down by :func:`channel_route`
    over the upstream reach's ``travel_min``.

    Raises:
        ValueError: A gauged reach has no synthetic hydrology or rain gauge, or
            its catchment is not larger than the catchments upstream of it.
    """
    index = {sid: i for i, sid in enumerate(rain_ids)}
    n = true_mm.shape[1]
    by_reach: dict[str, np.ndarray] = {}

    def reach_discharge(reach: Reach) -> np.ndarray:
        if reach.reach_id in by_reach:
            return by_reach[reach.reach_id]
        hydro = catalogue.hydrology.get(reach.reach_id)
        if hydro is None:
            raise ValueError(f"catalogue {catalogue.name!r} has no synthetic_hydrology for {reach.reach_id}")
        gauges = catalogue.rain_stations_for_reach(reach.reach_id)
        if not gauges:
            raise ValueError(f"{reach.reach_id} has no rain gauge to drive its runoff")
        upstream = gauged_upstream(catalogue, reach.reach_id)
        if upstream:
            local_km2 = hydro.catchment_km2 - sum(catalogue.hydrology[u.reach_id].catchment_km2 for u in upstream)
            if not local_km2 > 0:
                raise ValueError(f"{reach.reach_id}: catchment_km2 must exceed the catchments upstream of it")
            above = {u.reach_id for u in upstream}
            local_gauges = [g for g in gauges if not above & set(g.reach_ids)] or list(gauges)
            local = dataclasses.replace(
                hydro, catchment_km2=local_km2, base_flow_m3s=0.0,
                k_min=hydro.k_min * (local_km2 / hydro.catchment_km2) ** LAG_AREA_EXPONENT)
        else:
            local, local_gauges = hydro, list(gauges)
        basin_mm = true_mm[[index[g.station_id] for g in local_gauges]].mean(axis=0)
        flow = route(scs_effective_rain(basin_mm, hydro.curve_number, initial_rain_mm), local, step_s)
        for u in upstream:
            excess = reach_discharge(u) - catalogue.hydrology[u.reach_id].base_flow_m3s
            flow = flow + channel_route(excess, float(u.travel_min or 0.0), step_s)
        if upstream:
            flow = flow + hydro.base_flow_m3s
        by_reach[reach.reach_id] = flow
        return flow

    discharge = np.zeros((len(catalogue.level_gauges), n))
    for j, gauge in enumerate(catalogue.level_gauges):
        discharge[j] = reach_discharge(catalogue.reach(gauge.reach_id))
    return discharge


# --------------------------------------------------------------------------- storm


def simulate(catalogue: StationCatalogue, params: StormParams) -> Simulation:
    """Synthesises rain at every rain gauge and level at every level gauge.

    Args:
        catalogue: Gauges, reaches and ``synthetic_hydrology`` for every reach
            that has a level gauge.
        params: The storm.

    Returns:
        The true and reported series, see :class:`Simulation`.

    Raises:
        ValueError: A gauged reach has no synthetic hydrology, or no rain gauge.
    """
    rng = np.random.default_rng(params.seed)
    n, step_s = params.n_steps, params.step_s
    rain_ids = tuple(g.station_id for g in catalogue.rain_gauges)
    lon = np.array([g.lon for g in catalogue.rain_gauges])
    lat = np.array([g.lat for g in catalogue.rain_gauges])
    rate = step_mean_rate(params.cells, params.background_mm_h, lon, lat, n, step_s)
    true_mm = rate * step_s / 3600.0
    # A gauge has a constant calibration error for the whole storm.
    gauge_error = np.exp(rng.normal(0.0, params.rain_error, size=(len(rain_ids), 1)))
    reported_mm = tipping_bucket(true_mm * gauge_error)

    level_ids = tuple(g.station_id for g in catalogue.level_gauges)
    discharge = river_discharge(catalogue, true_mm, rain_ids, params.initial_rain_mm, step_s)
    level_true = np.stack([
        stage_from_discharge(discharge[j], catalogue.hydrology[g.reach_id])
        for j, g in enumerate(catalogue.level_gauges)
    ]) if level_ids else np.zeros((0, n))
    noise = rng.normal(0.0, params.level_noise_m, size=level_true.shape)
    level = np.round((level_true + noise) / LEVEL_RESOLUTION_M) * LEVEL_RESOLUTION_M

    start = np.datetime64(params.start.astimezone(dt.UTC).replace(tzinfo=None), "s")
    times = start + np.arange(1, n + 1) * np.timedelta64(step_s, "s")
    zone_ids = tuple(z.zone_id for z in catalogue.zones)
    if zone_ids:
        centroids = np.array([z.centroid for z in catalogue.zones])
        zone_mm = step_mean_rate(params.cells, params.background_mm_h, centroids[:, 0], centroids[:, 1],
                                 n, step_s) * step_s / 3600.0
        zone_swi, zone_r60 = soil_water(zone_mm, step_s, params.initial_rain_mm)
    else:
        zone_mm = zone_swi = zone_r60 = np.zeros((0, n))
    return Simulation(
        times=times, rain_ids=rain_ids, rain_rate_mm_h=rate, rain_mm=np.round(reported_mm, 3),
        level_ids=level_ids, discharge_m3s=discharge, level_true_m=level_true, level_m=np.round(level, 3),
        zone_ids=zone_ids, zone_rain_mm=zone_mm, zone_swi_mm=zone_swi, zone_r60_mm=zone_r60,
    )


def rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of the last ``window`` steps, up to and including each step, along the last axis."""
    c = np.cumsum(values, axis=-1)
    shifted = np.zeros_like(c)
    if window < c.shape[-1]:
        shifted[..., window:] = c[..., :-window]
    return c - shifted


def soil_water(rain_mm: np.ndarray, step_s: int, initial_rain_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Soil water index and 60-minute rain after each step, for rain per step (Z, T).

    The soil water index is JMA's three-tank model (:mod:`suibou.hydrology`) run at
    the reading step. ``initial_rain_mm`` (the rain before the start) is spread
    evenly over the 24 hours before the start to set the tanks' initial state.
    """
    from suibou.hydrology import final_state, soil_water_index_series

    rain_mm = np.atleast_2d(rain_mm)
    initial = final_state([initial_rain_mm / 24.0] * 24, 1.0) if initial_rain_mm > 0 else None
    swi = np.stack([soil_water_index_series(row, step_s / 3600.0, initial) for row in rain_mm]) \
        if rain_mm.shape[0] else np.zeros(rain_mm.shape)
    window = max(1, round(3600 / step_s))
    return swi, rolling_sum(rain_mm, window)


@dataclasses.dataclass(frozen=True)
class Damage:
    """Where and when a synthetic storm does damage (the storm's ground truth).

    Attributes:
        kind: ``overflow`` (a river reaches bank-full at its gauge) or
            ``slope_failure`` (a landslide zone's slope fails).
        area_id: The reach or zone.
        time: First reading time at which it happens.
        lon, lat: Where (the level gauge, or the zone's centroid).
    """

    kind: str
    area_id: str
    time: dt.datetime
    lon: float
    lat: float

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "area_id": self.area_id, "time": self.time.isoformat(),
                "lon": self.lon, "lat": self.lat}


def find_damage(catalogue: StationCatalogue, sim: Simulation) -> tuple[Damage, ...]:
    """Rivers that reach bank-full and slopes that fail, in time order.

    A slope fails (synthetically) at the first step at which its snake-line point
    is on or beyond its critical line and its soil water index has reached the
    zone's invented ``failure_swi_mm`` (``synthetic_slopes``). Zones without
    synthetic slope parameters never fail.
    """
    from suibou.hydrology import critical_margin

    times = [dt.datetime.fromtimestamp(int(e), dt.UTC) for e in sim.epochs]
    found = []
    for j, sid in enumerate(sim.level_ids):
        gauge = catalogue.level_gauge(sid)
        over = np.flatnonzero(sim.level_true_m[j] >= gauge.bank_full_m)
        if over.size:
            found.append(Damage("overflow", gauge.reach_id, times[int(over[0])], gauge.lon, gauge.lat))
    for k, zid in enumerate(sim.zone_ids):
        slope = catalogue.slopes.get(zid)
        if slope is None:
            continue
        zone = catalogue.zone(zid)
        margin = critical_margin(sim.zone_r60_mm[k], sim.zone_swi_mm[k], zone.critical_line)
        failed = np.flatnonzero((margin >= 0) & (sim.zone_swi_mm[k] >= slope.failure_swi_mm))
        if failed.size:
            lon, lat = zone.centroid
            found.append(Damage("slope_failure", zid, times[int(failed[0])], lon, lat))
    return tuple(sorted(found, key=lambda d: (d.time, d.area_id)))


@dataclasses.dataclass(frozen=True)
class Storm:
    """A storm ready to replay: its readings as contract events, and what it is.

    Attributes:
        name: Short id (``"suginami-2005-mini"``).
        title: One line for people.
        description: What the storm is; always says whether it is synthetic, a
            reconstruction, or observed.
        provenance: ``"synthetic"``, ``"synthetic reconstruction"`` or ``"observed"``.
        start, end: Event-time span (UTC). Readings fall in ``(start, end]``.
        catalogue: The stations the readings refer to.
        rain: Rain readings, in time then catalogue order.
        levels: Level readings, in time then catalogue order.
        params: The synthesiser parameters, when synthetic.
        simulation: The arrays behind the readings, when synthetic.
        frames: River-camera stills (files under ``root``).
        drone: Drone observations (images under ``root``).
        grids: Rainfall grid notices (netCDF files under ``root``).
        damage: Where and when the storm does damage (ground truth of a synthetic storm).
        labels: Short tags: ``synthetic``, ``reconstruction``, ``negative-control``, ``imported``.
        root: The storm's folder on disk, when it has been materialised or imported.
    """

    name: str
    title: str
    description: str
    provenance: str
    start: dt.datetime
    end: dt.datetime
    catalogue: StationCatalogue
    rain: tuple[RainReading, ...]
    levels: tuple[LevelReading, ...]
    params: StormParams | None = None
    simulation: Simulation | None = dataclasses.field(default=None, repr=False, compare=False)
    frames: tuple[CameraFrame, ...] = ()
    drone: tuple[DroneObservation, ...] = ()
    grids: tuple[GridNotice, ...] = ()
    damage: tuple[Damage, ...] = ()
    labels: tuple[str, ...] = ()
    root: Path | None = dataclasses.field(default=None, compare=False)

    def events(self) -> list[Event]:
        """Every message of the storm in event-time order.

        At equal times: rain, level, camera, grid, drone; then by key and event id.
        """
        rank = {RainReading: 0, LevelReading: 1, CameraFrame: 2, GridNotice: 3, DroneObservation: 4}
        merged: list[Event] = [*self.rain, *self.levels, *self.frames, *self.grids, *self.drone]
        merged.sort(key=lambda e: (e.event_time, rank[type(e)], e.key, e.event_id))
        return merged

    def readings(self) -> list[RainReading | LevelReading]:
        """Rain and level readings only, in event-time order."""
        merged: list[RainReading | LevelReading] = [*self.rain, *self.levels]
        merged.sort(key=lambda e: (e.event_time, 0 if isinstance(e, RainReading) else 1, e.station_id))
        return merged

    def level_series(self, station_id: str) -> list[tuple[dt.datetime, float]]:
        return [(r.event_time, r.level_m) for r in self.levels if r.station_id == station_id]

    def rain_series(self, station_id: str) -> list[tuple[dt.datetime, float]]:
        return [(r.event_time, r.rain_mm) for r in self.rain if r.station_id == station_id]


def to_events(sim: Simulation, step_s: int) -> tuple[tuple[RainReading, ...], tuple[LevelReading, ...]]:
    """Turns simulation arrays into contract events with ids ``f"{station}:{epoch}"``."""
    epochs = sim.epochs.tolist()
    times = [dt.datetime.fromtimestamp(e, dt.UTC) for e in epochs]
    rain = tuple(
        RainReading(event_id=f"{sid}:{epochs[t]}", event_time=times[t], station_id=sid,
                    rain_mm=float(sim.rain_mm[i, t]), interval_s=step_s)
        for t in range(len(times)) for i, sid in enumerate(sim.rain_ids)
    )
    levels = tuple(
        LevelReading(event_id=f"{sid}:{epochs[t]}", event_time=times[t], station_id=sid,
                     level_m=float(sim.level_m[j, t]))
        for t in range(len(times)) for j, sid in enumerate(sim.level_ids)
    )
    return rain, levels


def synthesise(catalogue: StationCatalogue, params: StormParams, *, name: str, title: str,
               description: str, provenance: str = "synthetic", labels: Sequence[str] = ("synthetic",)) -> Storm:
    """Builds a :class:`Storm` (rain and level readings, and its damage) from synthesiser parameters.

    Cameras, grids and drone observations are files; :func:`replay_data.library.materialise`
    writes them.

    Raises:
        ValueError: ``description`` does not say the storm is synthetic, or a
            reconstruction is not labelled as one.
    """
    if "synthetic" not in description.lower() or "synthetic" not in provenance:
        raise ValueError("a synthesised storm's description and provenance must say it is synthetic")
    if ("reconstruction" in provenance) != ("reconstruction" in labels) or (
            "reconstruction" in labels and "reconstruction" not in description.lower()):
        raise ValueError("a reconstruction must say so in its provenance, labels and description")
    sim = simulate(catalogue, params)
    rain, levels = to_events(sim, params.step_s)
    return Storm(name=name, title=title, description=description, provenance=provenance,
                 start=params.start.astimezone(dt.UTC), end=params.end.astimezone(dt.UTC),
                 catalogue=catalogue, rain=rain, levels=levels, params=params, simulation=sim,
                 damage=find_damage(catalogue, sim), labels=tuple(labels))


def random_storm_params(rng: np.random.Generator, catalogue: StationCatalogue, start: dt.datetime,
                        duration_min: int = 240) -> StormParams:
    """Draws a random storm over a catalogue's area: 1-3 cells of varied strength and track.

    Used for training data; the mix runs from drizzle to extreme downpours so
    that both outcomes (level reaches danger or not) are well represented.
    """
    lons = [g.lon for g in catalogue.rain_gauges] + [g.lon for g in catalogue.level_gauges]
    lats = [g.lat for g in catalogue.rain_gauges] + [g.lat for g in catalogue.level_gauges]
    lon_c, lat_c = float(np.mean(lons)), float(np.mean(lats))
    cells = []
    for _ in range(int(rng.integers(1, 4))):
        cells.append(RainCell(
            peak_mm_h=float(rng.choice([rng.uniform(5, 40), rng.uniform(30, 160)], p=[0.4, 0.6])),
            lon=lon_c + float(rng.normal(0, 0.04)),
            lat=lat_c + float(rng.normal(0, 0.03)),
            peak_min=float(rng.uniform(30, duration_min - 60)),
            duration_min=float(rng.uniform(30, 150)),
            sigma_km=float(rng.uniform(1.5, 6.0)),
            speed_kmh=float(rng.uniform(0, 30)),
            heading_deg=float(rng.uniform(0, 360)),
        ))
    return StormParams(
        start=start, duration_min=duration_min, cells=tuple(cells),
        background_mm_h=float(rng.exponential(1.5)), seed=int(rng.integers(0, 2**31 - 1)),
        initial_rain_mm=float(rng.exponential(10.0)),
    )
