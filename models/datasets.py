"""Training and evaluation rows for the risk models, from synthetic or imported storms.

Two sources feed the same code path:

* **Synthetic storms.** :func:`draw_flood_storm` draws seeded random storms over
  a station catalogue and runs them through :func:`replay_data.synth.simulate`;
  :func:`draw_landslide_storm` draws long rain events (a broad rain band plus
  moving convective cells, over a wet or dry antecedent state) at a handful of
  zones. Everything from these is synthetic.
* **Storms from the import format.** A bureau's own records, read by
  ``replay_data``'s importer (CSV of ``time, station_id, kind, value`` plus a
  station file) or any other :class:`replay_data.synth.Storm`, go through
  :func:`series_from_storm`: readings are put on a 1-minute grid (rain at the
  minute its interval ends; levels carried forward for at most 30 minutes), so
  10-minute rain and irregular level readings work too.

Rows are sampled from a :class:`StormSeries` (flood) or :class:`ZoneSeries`
(landslide). Storms, never rows, are split between training and evaluation.

**Nowcast rain in training.** The pipeline feeds the models the basin- (or
zone-) mean rain of the precipitation nowcast for the next 30 and 60 minutes.
Training has no archived nowcasts, so it uses the rain that the gauges
actually recorded over the next 30/60 minutes, multiplied by a log-normal error:
one factor per storm and gauge (σ = 0.25, a systematic over- or under-forecast)
times one per row (σ = 0.30 for 30 min, 0.45 for 60 min, as nowcast skill
falls with lead time). This is a stand-in for a real nowcast's errors, not a
measurement of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence

import numpy as np

from replay_data.synth import RainCell, Simulation, Storm, StormParams, rain_rate, simulate, tipping_bucket
from suibou.catalogue import LevelGauge, StationCatalogue
from suibou.contracts import LevelReading, RainReading
from suibou.hydrology import (
    DEFAULT_CRITICAL_LINE,
    CriticalLine,
    TankState,
    critical_margin,
    snake_line_outlook_many,
    step_tanks_many,
)
from suibou.runoff import (
    AHEAD_STEPS_MIN,
    ATTENUATION_MIN,
    forecast_surface_tanks,
    own_rain_stations,
    reach_networks,
    step_surface_tanks,
    surface_runoff,
)

from .features import (
    FLOOD2_FEATURES,
    FLOOD2_HORIZONS_MIN,
    FLOOD2_TARGETS,
    FLOOD2_THRESHOLDS,
    FLOOD3_FEATURES,
    FLOOD3_HORIZONS_MIN,
    FLOOD4_FEATURES,
    FLOOD5_FEATURES,
    LANDSLIDE_HORIZON_MIN,
    SWI_STEP_H,
    flood2_feature_matrix,
    flood3_feature_matrix,
    flood4_feature_matrix,
    flood5_feature_matrix,
    landslide_feature_matrix,
)

#: Longest a level reading is carried forward when readings are sparse, minutes.
LEVEL_HOLD_MIN = 30
#: Nowcast error model used in training (see the module docstring).
NOWCAST_STORM_SIGMA = 0.25
NOWCAST_ROW_SIGMA: dict[int, float] = {30: 0.30, 60: 0.45}


# =========================================================================== storm series


@dataclasses.dataclass(frozen=True)
class StormSeries:
    """One storm's reported readings on a regular 1-minute grid.

    Attributes:
        name: Storm name.
        provenance: ``synthetic``, ``synthetic reconstruction``, ``observed`` ...
        catalogue: Gauges the ids refer to.
        start: Grid start (UTC); minute ``i`` covers ``(start + i min, start + (i+1) min]``.
        rain_ids: Rain gauge ids (R,).
        rain_mm: Rain reported in each minute (R, T), 0 where nothing was reported.
        level_ids: Level gauge ids (L,).
        level_m: Level at the end of each minute (L, T), NaN where unknown.
    """

    name: str
    provenance: str
    catalogue: StationCatalogue
    start: dt.datetime
    rain_ids: tuple[str, ...]
    rain_mm: np.ndarray
    level_ids: tuple[str, ...]
    level_m: np.ndarray

    @property
    def n_minutes(self) -> int:
        return int(self.rain_mm.shape[1])

    def basin_rain(self, reach_id: str) -> np.ndarray:
        """Mean per-minute rain of the reach's rain gauges (T,)."""
        rows = [self.rain_ids.index(g.station_id) for g in self.catalogue.rain_stations_for_reach(reach_id)
                if g.station_id in self.rain_ids]
        if not rows:
            return np.zeros(self.n_minutes)
        return self.rain_mm[rows].mean(axis=0)


def series_from_simulation(catalogue: StationCatalogue, params: StormParams, sim: Simulation, *,
                           name: str, provenance: str = "synthetic") -> StormSeries:
    """The fast path for synthetic storms: the simulation's reported arrays, as they are."""
    if params.step_s != 60:
        raise ValueError("series_from_simulation needs 1-minute steps; use series_from_storm")
    return StormSeries(name=name, provenance=provenance, catalogue=catalogue,
                       start=params.start.astimezone(dt.UTC), rain_ids=sim.rain_ids,
                       rain_mm=np.asarray(sim.rain_mm, dtype=np.float64), level_ids=sim.level_ids,
                       level_m=np.asarray(sim.level_m, dtype=np.float64))


def _minute_index(start: dt.datetime, when: dt.datetime) -> int:
    """Minute cell of a reading stamped ``when``: readings end their interval there."""
    return math.ceil((when - start).total_seconds() / 60.0 - 1e-9) - 1


def series_from_storm(storm: Storm) -> StormSeries:
    """Any storm (synthetic, reconstructed or imported) on a 1-minute grid, from its readings.

    Rain readings are added to the minute in which their interval ends; level
    readings are carried forward for up to :data:`LEVEL_HOLD_MIN` minutes.
    Readings of unknown stations or outside ``(start, end]`` are ignored.
    """
    start = storm.start.astimezone(dt.UTC)
    n = max(1, math.ceil((storm.end - storm.start).total_seconds() / 60.0 - 1e-9))
    catalogue = storm.catalogue
    rain_ids = tuple(g.station_id for g in catalogue.rain_gauges)
    level_ids = tuple(g.station_id for g in catalogue.level_gauges)
    rain = np.zeros((len(rain_ids), n))
    seen = np.full((len(level_ids), n), np.nan)
    rain_row = {sid: i for i, sid in enumerate(rain_ids)}
    level_row = {sid: i for i, sid in enumerate(level_ids)}
    for reading in storm.rain:
        i = _minute_index(start, reading.event_time)
        if reading.station_id in rain_row and 0 <= i < n:
            rain[rain_row[reading.station_id], i] += reading.rain_mm
    for level in storm.levels:
        i = _minute_index(start, level.event_time)
        if level.station_id in level_row and 0 <= i < n:
            seen[level_row[level.station_id], i] = level.level_m
    levels = np.full_like(seen, np.nan)
    for j in range(len(level_ids)):
        last, age = np.nan, LEVEL_HOLD_MIN + 1
        for i in range(n):
            if not np.isnan(seen[j, i]):
                last, age = seen[j, i], 0
            else:
                age += 1
            levels[j, i] = last if age <= LEVEL_HOLD_MIN else np.nan
    return StormSeries(name=storm.name, provenance=storm.provenance, catalogue=catalogue, start=start,
                       rain_ids=rain_ids, rain_mm=rain, level_ids=level_ids, level_m=levels)


def storm_from_series_readings(name: str, catalogue: StationCatalogue, start: dt.datetime, end: dt.datetime,
                               rain: Sequence[RainReading], levels: Sequence[LevelReading], *,
                               provenance: str = "observed", description: str = "") -> Storm:
    """Wraps readings from any source (e.g. a bureau's CSV) as a :class:`Storm` for training."""
    return Storm(name=name, title=name, description=description or f"{provenance} readings", provenance=provenance,
                 start=start.astimezone(dt.UTC), end=end.astimezone(dt.UTC), catalogue=catalogue,
                 rain=tuple(rain), levels=tuple(levels))


# =========================================================================== synthetic flood storms


def _storm_params(rng: np.random.Generator, start: dt.datetime, duration_min: int,
                  cells: tuple[RainCell, ...]) -> StormParams:
    """A storm of these cells, with a random drizzle, seed and antecedent rain (drawn in this order)."""
    return StormParams(
        start=start, duration_min=duration_min, cells=cells,
        background_mm_h=float(rng.exponential(1.5)), seed=int(rng.integers(0, 2**31 - 1)),
        initial_rain_mm=float(rng.exponential(10.0)),
    )


def draw_flood_storm(rng: np.random.Generator, catalogue: StationCatalogue, start: dt.datetime,
                     duration_min: int = 240) -> StormParams:
    """A random storm over a catalogue's area: 1-3 moving cells, drizzle to extreme downpours.

    Kept here rather than borrowed from ``replay_data`` so that the models'
    training distribution changes only when the models change.
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
            peak_min=float(rng.uniform(30, duration_min - 45)),
            duration_min=float(rng.uniform(30, 150)),
            sigma_km=float(rng.uniform(1.5, 6.0)),
            speed_kmh=float(rng.uniform(0, 30)),
            heading_deg=float(rng.uniform(0, 360)),
        ))
    return _storm_params(rng, start, duration_min, tuple(cells))


def draw_long_rain(rng: np.random.Generator, catalogue: StationCatalogue, start: dt.datetime,
                   duration_min: int = 900) -> StormParams:
    """A random long rain over a catalogue's area: 1-3 broad, slow bands (a typhoon's or a front's rain).

    Bands 10-40 km wide bring 5-60 mm/h for 3-10 hours, peaking between the
    second hour and four hours before the end; enough to raise a large river,
    whose gauge answers hours after the rain, as well as a small one.
    """
    lons = [g.lon for g in catalogue.rain_gauges]
    lats = [g.lat for g in catalogue.rain_gauges]
    lon_c, lat_c = float(np.mean(lons)), float(np.mean(lats))
    cells = tuple(RainCell(
        peak_mm_h=float(rng.uniform(5, 60)),
        lon=lon_c + float(rng.normal(0, 0.1)),
        lat=lat_c + float(rng.normal(0, 0.08)),
        peak_min=float(rng.uniform(120, duration_min - 240)),
        duration_min=float(rng.uniform(180, 600)),
        sigma_km=float(rng.uniform(10, 40)),
        speed_kmh=float(rng.uniform(0, 30)),
        heading_deg=float(rng.uniform(0, 360)),
    ) for _ in range(int(rng.integers(1, 4))))
    return _storm_params(rng, start, duration_min, cells)


def synthetic_flood_series(seed: int, n_storms: int, catalogues: Sequence[StationCatalogue], *,
                           duration_min: int = 240, long_rain_share: float = 0.0, progress: bool = False,
                           desc: str = "flood storms") -> list[StormSeries]:
    """``n_storms`` seeded synthetic storms, spread over the catalogues in turn.

    ``long_rain_share`` of them (drawn at random) are long rains (:func:`draw_long_rain`),
    the rest convective storms (:func:`draw_flood_storm`).
    """
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    base = dt.datetime(2000, 6, 1, tzinfo=dt.UTC)
    out = []
    for i in tqdm(range(n_storms), desc=desc, disable=not progress, leave=False):
        catalogue = catalogues[i % len(catalogues)]
        # Only drawn when asked for, so that flood/2's storms stay what they were.
        long_rain = long_rain_share > 0 and rng.random() < long_rain_share
        draw = draw_long_rain if long_rain else draw_flood_storm
        params = draw(rng, catalogue, base + dt.timedelta(days=i), duration_min)
        out.append(series_from_simulation(catalogue, params, simulate(catalogue, params),
                                          name=f"synthetic-{seed}-{i:04d}"))
    return out


# =========================================================================== flood rows


def _rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of ``values[t - window + 1 .. t]`` for each t along the last axis (shorter at the start)."""
    c = np.cumsum(values, axis=-1)
    out = c.copy()
    out[..., window:] = c[..., window:] - c[..., :-window]
    return out


def _future_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of ``values[t + 1 .. t + window]`` for each t (shorter at the end), shape (T,)."""
    c = np.concatenate([[0.0], np.cumsum(values)])  # c[i] = sum(values[:i])
    idx = np.arange(values.size)
    return c[np.minimum(idx + window + 1, values.size)] - c[idx + 1]


def _future_max(values: np.ndarray, window: int) -> np.ndarray:
    """Max of ``values[t + 1 .. t + window]`` (NaN ignored; NaN if all unknown), shape (T,)."""
    padded = np.concatenate([values[1:], np.full(window, np.nan)])
    view = np.lib.stride_tricks.sliding_window_view(padded, window)[: values.size]
    with np.errstate(all="ignore"):
        out = np.where(np.isnan(view).all(axis=1), np.nan, np.nanmax(np.where(np.isnan(view), -np.inf, view), axis=1))
    return out


@dataclasses.dataclass
class FloodRows:
    """``flood/2`` or ``flood/3`` rows of several storms.

    Attributes:
        x: Features (n, 9 or 11) float32, in the model's feature order.
        y: Labels (n, 6) int64, in the model's target order.
        storm: Storm index of each row (n,).
        gauge: ``"storm|station"`` of each row (n,), for lead-time grouping.
        minute: Grid minute of each row (n,).
        level: Observed level at the row's time (n,).
        thresholds: The gauge's thresholds per row (n, 3): caution, evacuation, danger.
    """

    x: np.ndarray
    y: np.ndarray
    storm: np.ndarray
    gauge: np.ndarray
    minute: np.ndarray
    level: np.ndarray
    thresholds: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @staticmethod
    def concat(parts: Sequence[FloodRows], n_features: int = len(FLOOD2_FEATURES),
               n_targets: int = len(FLOOD2_TARGETS)) -> FloodRows:
        if not parts:
            return FloodRows(np.zeros((0, n_features), np.float32),
                             np.zeros((0, n_targets), np.int64),
                             np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, np.int64), np.zeros(0),
                             np.zeros((0, 3)))
        return FloodRows(*(np.concatenate([getattr(p, f.name) for p in parts])
                           for f in dataclasses.fields(FloodRows)))


def _flood_shape(version: int) -> tuple[tuple[int, ...], int, int]:
    """``flood/{version}``'s horizons, number of inputs and number of targets."""
    horizons = FLOOD3_HORIZONS_MIN if version >= 3 else FLOOD2_HORIZONS_MIN
    n_features = len({2: FLOOD2_FEATURES, 3: FLOOD3_FEATURES, 4: FLOOD4_FEATURES, 5: FLOOD5_FEATURES}[version])
    return horizons, n_features, len(FLOOD2_THRESHOLDS) * len(horizons)


def flood_rows(series: StormSeries, rng: np.random.Generator, *, version: int = 2, storm_index: int = 0,
               sample_every_min: int = 5, warmup_min: int = 60) -> FloodRows:
    """``flood/2``, ``/3`` or ``/4`` rows for every level gauge of one storm, every ``sample_every_min`` minutes.

    Rows start once ``warmup_min`` minutes of history exist and stop the longest
    horizon before the end (60 minutes for ``flood/2``, 180 for ``flood/3`` and ``/4``).
    Rows whose current level is unknown are skipped. Labels: the level reaches
    the threshold at some reading in ``(t, t + h]``.
    """
    horizons, n_features, n_targets = _flood_shape(version)
    n = series.n_minutes
    t = np.arange(warmup_min - 1, n - max(horizons), sample_every_min)
    parts = []
    for j, sid in enumerate(series.level_ids):
        gauge: LevelGauge = series.catalogue.level_gauge(sid)
        level = series.level_m[j]
        basin = series.basin_rain(gauge.reach_id)
        bias = math.exp(rng.normal(0.0, NOWCAST_STORM_SIGMA))
        nowcast = {
            h: np.round(_future_sum(basin, h)[t] * bias * np.exp(rng.normal(0.0, NOWCAST_ROW_SIGMA[h], t.size)), 1)
            for h in (30, 60)
        }
        if t.size == 0:
            continue
        keep = ~np.isnan(level[t])
        tt = t[keep]
        if tt.size == 0:
            continue
        inputs = (level[tt], np.full(tt.size, gauge.caution_m), np.full(tt.size, gauge.evacuation_m),
                  np.full(tt.size, gauge.danger_m), level[np.maximum(tt - 10, 0)], level[np.maximum(tt - 30, 0)],
                  _rolling_sum(basin, 10)[tt], _rolling_sum(basin, 60)[tt], nowcast[30][keep], nowcast[60][keep])
        if version == 2:
            x = flood2_feature_matrix(*inputs)
        elif version == 3:
            x = flood3_feature_matrix(*inputs, _rolling_sum(basin, 180)[tt], _rolling_sum(basin, 360)[tt])
        elif version == 4:
            stage, rise, travel = upstream_state(series, gauge.reach_id, tt)
            x = flood4_feature_matrix(*inputs, _rolling_sum(basin, 180)[tt], _rolling_sum(basin, 360)[tt],
                                      upstream_stage_to_danger_m=stage, upstream_rise_m_per_h=rise,
                                      upstream_travel_min=travel)
        else:
            stage, rise, travel = upstream_state(series, gauge.reach_id, tt)
            indices = grid_indices(series, gauge.reach_id, tt, np.random.default_rng((storm_index, j, 5)))
            x = flood5_feature_matrix(*inputs, _rolling_sum(basin, 180)[tt], _rolling_sum(basin, 360)[tt],
                                      upstream_stage_to_danger_m=stage, upstream_rise_m_per_h=rise,
                                      upstream_travel_min=travel, **indices)
        labels = []
        ahead = {h: _future_max(level, h)[tt] for h in horizons}
        for threshold_attr in FLOOD2_THRESHOLDS.values():
            for h in horizons:
                labels.append(np.nan_to_num(ahead[h], nan=-np.inf) >= getattr(gauge, threshold_attr))
        parts.append(FloodRows(
            x=x, y=np.stack(labels, axis=1).astype(np.int64), storm=np.full(tt.size, storm_index),
            gauge=np.full(tt.size, f"{series.name}|{sid}", dtype=object), minute=tt,
            level=level[tt], thresholds=np.tile([gauge.caution_m, gauge.evacuation_m, gauge.danger_m], (tt.size, 1)),
        ))
    return FloodRows.concat(parts, n_features, n_targets)


#: Minutes between rain grids, as the drills issue them.
GRID_EVERY_MIN = 5
#: Share of gauge-storms whose rows are made as if no rain grid had arrived (the features' stand-in).
NO_GRID_SHARE = 0.1


def _grid_rates(series: StormSeries, stations: Sequence[str], n_grids: int) -> np.ndarray:
    """Each station's rain rate (mm/h) at each grid time: its rain over the grid step before it."""
    rows = [series.rain_ids.index(s) for s in stations if s in series.rain_ids]
    rain = series.rain_mm[rows] if rows else np.zeros((1, series.n_minutes))
    padded = np.concatenate([np.zeros((rain.shape[0], GRID_EVERY_MIN - 1)), np.nan_to_num(rain)], axis=1)
    steps = np.lib.stride_tricks.sliding_window_view(padded, GRID_EVERY_MIN, axis=1).sum(axis=2)
    return steps[:, : n_grids * GRID_EVERY_MIN : GRID_EVERY_MIN].T * (60.0 / GRID_EVERY_MIN)


def _cell_stations(series: StormSeries, reach_id: str) -> tuple[str, ...]:
    return (own_rain_stations(series.catalogue, reach_id)
            or tuple(g.station_id for g in series.catalogue.rain_stations_for_reach(reach_id)))


def grid_indices(series: StormSeries, reach_id: str, t: np.ndarray, rng: np.random.Generator
                 ) -> dict[str, np.ndarray]:
    """The surface rainfall and runoff indices of ``reach_id`` at minutes ``t``, as the pipeline
    computes them from the rain grids (:mod:`pipelines.runoff`), from the gauges' rain.

    Training has no grids: each reach's own rain gauges stand for its cells (the
    pipeline samples the grid at those gauges' cells), with a grid every
    :data:`GRID_EVERY_MIN` minutes whose rate is the gauge's rain over the step
    before it. The nowcast per cell is the rain the gauge then recorded, with
    the flood rows' log-normal errors. In :data:`NO_GRID_SHARE` of the
    gauge-storms every index is NaN, so the model learns the stand-in that a
    grid outage gives (:func:`models.features.flood5_feature_matrix`).
    Keyword names are :func:`models.features.flood5_feature_matrix`'s.
    """
    n_grids = (series.n_minutes - 1) // GRID_EVERY_MIN + 1
    grid_at = (t // GRID_EVERY_MIN) * GRID_EVERY_MIN  # the newest grid at each row's time
    if rng.random() < NO_GRID_SHARE:
        nan = np.full(t.size, np.nan)
        return {"surface_index_mm": nan, "surface_index_ahead_mm": nan, "runoff_index_mm_h": nan,
                "runoff_index_ahead_mm_h": nan}
    network = reach_networks(series.catalogue)[reach_id]
    own = {reach_id, *(u for u, _ in network)}
    storage: dict[str, np.ndarray] = {}   # reach -> [grid, cell]
    runoff: dict[str, np.ndarray] = {}    # reach -> [minute]: runoff averaged as routing reads it
    ahead: dict[str, list[np.ndarray]] = {}  # reach -> per look-ahead step, [row, cell]
    bias = math.exp(rng.normal(0.0, NOWCAST_STORM_SIGMA))
    noise = {h: np.exp(rng.normal(0.0, NOWCAST_ROW_SIGMA[h], t.size)) for h in (30, 60)}
    for u in sorted(own):
        stations = _cell_stations(series, u)
        rates = _grid_rates(series, stations, n_grids)
        s = np.zeros_like(rates)
        for g in range(1, n_grids):
            s[g] = step_surface_tanks(s[g - 1], rates[g], GRID_EVERY_MIN / 60.0)
        storage[u] = s
        per_grid = surface_runoff(s).mean(axis=1)
        # Mean of the grids in (minute - ATTENUATION_MIN, minute], every minute.
        minutes = np.arange(series.n_minutes + 1)
        first = np.clip(np.floor((minutes - ATTENUATION_MIN) / GRID_EVERY_MIN).astype(int) + 1, 0, None)
        last = np.minimum(minutes // GRID_EVERY_MIN, n_grids - 1)
        total = np.concatenate([[0.0], np.cumsum(per_grid)])
        count = last - first + 1
        runoff[u] = np.where(count > 0, (total[last + 1] - total[first]) / np.maximum(count, 1), 0.0)
        rows = [series.rain_ids.index(x) for x in stations if x in series.rain_ids]
        cells = np.nan_to_num(series.rain_mm[rows]) if rows else np.zeros((1, series.n_minutes))
        future = {h: np.stack([_future_sum(c, h)[np.minimum(grid_at, series.n_minutes - 1)] for c in cells], axis=1)
                  * bias * noise[h][:, None] for h in (30, 60)}
        ahead[u] = forecast_surface_tanks(s[grid_at // GRID_EVERY_MIN], future[30], future[60])

    def runoff_at(u: str, when: np.ndarray) -> np.ndarray:
        offset = when - grid_at
        past = runoff[u][np.clip(np.where(offset < AHEAD_STEPS_MIN[0] / 2, np.minimum(when, grid_at), 0),
                                 0, series.n_minutes)]
        past = np.where(when < 0, 0.0, past)
        step = np.abs(np.asarray(AHEAD_STEPS_MIN)[None, :] - offset[:, None]).argmin(axis=1)
        forecast = np.stack([surface_runoff(a).mean(axis=1) for a in ahead[u]], axis=1)[np.arange(t.size), step]
        return np.where(offset < AHEAD_STEPS_MIN[0] / 2, past, forecast)

    def index(at: np.ndarray) -> np.ndarray:
        return np.mean([runoff_at(u, at - int(travel)) for u, travel in network], axis=0)

    now = index(t)
    mine = storage[reach_id][grid_at // GRID_EVERY_MIN].max(axis=1)
    return {
        "surface_index_mm": mine,
        "surface_index_ahead_mm": np.max([mine, *(a.max(axis=1) for a in ahead[reach_id])], axis=0),
        "runoff_index_mm_h": now,
        "runoff_index_ahead_mm_h": np.max([now, *(index(t + m) for m in AHEAD_STEPS_MIN)], axis=0),
    }


def upstream_state(series: StormSeries, reach_id: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At minutes ``t``, the reported state of the level gauge directly upstream of
    ``reach_id`` that is nearest its flood danger level, as the pipeline sees it
    (``pipelines.risk``): its ``danger_m - level_m``, its rise over 30 min (m/h) and
    the travel time from it. NaN where no gauge upstream reports."""
    stage = np.full(t.size, np.inf)
    rise = np.zeros(t.size)
    travel = np.zeros(t.size)
    for upstream in series.catalogue.upstream_reaches(reach_id):
        sid = upstream.level_station_id
        if sid is None or sid not in series.level_ids:
            continue
        gauge = series.catalogue.level_gauge(sid)
        level = series.level_m[series.level_ids.index(sid)]
        its_stage = gauge.danger_m - level[t]
        earlier = level[np.maximum(t - 30, 0)]
        its_rise = np.where(np.isnan(earlier), 0.0, (level[t] - earlier) * 2.0)
        nearer = np.nan_to_num(its_stage, nan=np.inf) < stage
        stage = np.where(nearer, its_stage, stage)
        rise = np.where(nearer, its_rise, rise)
        travel = np.where(nearer, float(upstream.travel_min or 0.0), travel)
    return np.where(np.isinf(stage), np.nan, stage), rise, travel


def flood2_rows(series: StormSeries, rng: np.random.Generator, *, storm_index: int = 0,
                sample_every_min: int = 5, warmup_min: int = 60) -> FloodRows:
    """``flood/2`` rows of one storm (:func:`flood_rows`)."""
    return flood_rows(series, rng, version=2, storm_index=storm_index, sample_every_min=sample_every_min,
                      warmup_min=warmup_min)


def flood_dataset(series: Sequence[StormSeries], seed: int, *, version: int = 2, sample_every_min: int = 5,
                  first_storm_index: int = 0) -> FloodRows:
    """Rows of many storms for ``flood/{version}``; the nowcast errors are seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    return FloodRows.concat([
        flood_rows(s, rng, version=version, storm_index=first_storm_index + i, sample_every_min=sample_every_min)
        for i, s in enumerate(series)
    ], *_flood_shape(version)[1:])


def flood2_dataset(series: Sequence[StormSeries], seed: int, *, sample_every_min: int = 5,
                   first_storm_index: int = 0) -> FloodRows:
    """``flood/2`` rows of many storms (:func:`flood_dataset`)."""
    return flood_dataset(series, seed, version=2, sample_every_min=sample_every_min,
                         first_storm_index=first_storm_index)


# =========================================================================== landslide zones


@dataclasses.dataclass(frozen=True)
class ZoneSeries:
    """Rain over a few landslide zones (1 km cells) during one event, on a 1-minute grid.

    Attributes:
        name: Event name.
        provenance: ``synthetic`` or where the rain came from.
        zone_ids: One id per zone (Z,).
        rain_mm: Rain in each minute over each zone (Z, T).
        initial: Tank storages at the start (Z, 3), mm (antecedent wetness).
        lines: Each zone's critical line (Z,).
    """

    name: str
    provenance: str
    zone_ids: tuple[str, ...]
    rain_mm: np.ndarray
    initial: np.ndarray
    lines: tuple[CriticalLine, ...]


def draw_critical_line(rng: np.random.Generator, zone_id: str) -> CriticalLine:
    """A random, invented critical line, so the model learns to read the margin, not one line."""
    swi_at_no_rain = float(rng.uniform(180.0, 380.0))
    return CriticalLine(
        r60_at_dry_mm=float(rng.uniform(60.0, 130.0)), swi_at_no_rain_mm=swi_at_no_rain,
        swi_floor_mm=float(rng.uniform(30.0, min(90.0, swi_at_no_rain * 0.4))), zone_id=zone_id,
        note="invented for synthetic training data",
    )


def _antecedent_state(rng: np.random.Generator) -> np.ndarray:
    """Tank storages left by an earlier rain event (or none), by hourly stepping."""
    if rng.random() < 0.35:
        return np.zeros(3)
    total = rng.uniform(15.0, 280.0)
    hours = int(rng.integers(4, 25))
    gap = int(rng.integers(0, 49))
    rain = np.r_[np.full(hours, total / hours), np.zeros(gap)]
    s = np.zeros(3)
    for r in rain:
        s = step_tanks_many(s, r, 1.0)
    return s


def draw_landslide_storm(rng: np.random.Generator, index: int, *, n_zones: int = 4,
                         duration_min: int = 720) -> ZoneSeries:
    """A synthetic long rain event at ``n_zones`` zones a few km apart.

    A broad rain band (a Gaussian in time, up to 35 mm/h, typhoon-like) plus
    0-3 moving convective cells (:class:`replay_data.synth.RainCell`, up to
    130 mm/h, the scale of Izu Ōshima's 122.5 mm hour), over an antecedent
    state from an earlier event. Gauge-like reporting: 0.5 mm tipping bucket
    after a per-zone calibration error.
    """
    lon0, lat0 = 139.40, 35.70
    zl = lon0 + rng.uniform(-0.06, 0.06, n_zones)
    za = lat0 + rng.uniform(-0.05, 0.05, n_zones)
    minutes = np.arange(duration_min) + 0.5
    band = float(rng.choice([0.0, rng.uniform(1.0, 12.0), rng.uniform(8.0, 35.0)], p=[0.25, 0.45, 0.30]))
    band_peak = rng.uniform(0.2, 0.8) * duration_min
    band_sd = rng.uniform(60.0, 240.0)
    rate = band * np.exp(-0.5 * ((minutes - band_peak) / band_sd) ** 2)[None, :] * np.exp(
        rng.normal(0, 0.15, (n_zones, 1)))
    cells = tuple(
        RainCell(
            peak_mm_h=float(rng.choice([rng.uniform(10, 50), rng.uniform(40, 130)], p=[0.5, 0.5])),
            lon=lon0 + float(rng.normal(0, 0.04)), lat=lat0 + float(rng.normal(0, 0.03)),
            peak_min=float(rng.uniform(60, duration_min - 60)), duration_min=float(rng.uniform(40, 240)),
            sigma_km=float(rng.uniform(2.0, 8.0)), speed_kmh=float(rng.uniform(0, 25)),
            heading_deg=float(rng.uniform(0, 360)),
        )
        for _ in range(int(rng.integers(0, 4)))
    )
    rate = rate + rain_rate(cells, 0.0, zl, za, minutes)
    true_mm = rate / 60.0 * np.exp(rng.normal(0.0, 0.05, (n_zones, 1)))
    antecedent = _antecedent_state(rng)
    initial = np.tile(antecedent, (n_zones, 1)) * np.exp(rng.normal(0, 0.1, (n_zones, 1)))
    ids = tuple(f"Z-{index:04d}-{k}" for k in range(n_zones))
    return ZoneSeries(name=f"synthetic-landslide-{index:04d}", provenance="synthetic", zone_ids=ids,
                      rain_mm=tipping_bucket(true_mm), initial=initial,
                      lines=tuple(draw_critical_line(rng, z) for z in ids))


def synthetic_landslide_series(seed: int, n_storms: int, *, progress: bool = False,
                               desc: str = "landslide events") -> list[ZoneSeries]:
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    return [draw_landslide_storm(rng, i) for i in tqdm(range(n_storms), desc=desc, disable=not progress, leave=False)]


def zones_from_storm(storm: Storm | StormSeries, *, critical_line: CriticalLine = DEFAULT_CRITICAL_LINE,
                     initial: TankState | None = None) -> ZoneSeries:
    """Treats each rain gauge of a storm (e.g. an imported one) as a landslide zone.

    Without ``initial`` the ground is taken as dry at the start; give the
    state the bureau's own SWI record implies when it has one.
    """
    series = storm if isinstance(storm, StormSeries) else series_from_storm(storm)
    start = np.asarray((initial or TankState()).as_tuple())
    return ZoneSeries(name=series.name, provenance=series.provenance, zone_ids=series.rain_ids,
                      rain_mm=series.rain_mm, initial=np.tile(start, (len(series.rain_ids), 1)),
                      lines=tuple(critical_line for _ in series.rain_ids))


@dataclasses.dataclass
class LandslideRows:
    """``landslide/1`` rows: features (n, 7), label (n,), and where each row came from.

    ``margin_now`` and ``margin_2h`` are the physically based criterion's
    unclipped margins (>= 0: beyond the critical line now / within 2 h).
    """

    x: np.ndarray
    y: np.ndarray
    storm: np.ndarray
    zone: np.ndarray
    step: np.ndarray
    margin_now: np.ndarray
    margin_2h: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @staticmethod
    def concat(parts: Sequence[LandslideRows]) -> LandslideRows:
        if not parts:
            return LandslideRows(np.zeros((0, 7), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                                 np.zeros(0, object), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        return LandslideRows(*(np.concatenate([getattr(p, f.name) for p in parts])
                               for f in dataclasses.fields(LandslideRows)))


def landslide_rows(zones: ZoneSeries, rng: np.random.Generator, *, storm_index: int = 0) -> LandslideRows:
    """Rows every 10 minutes for each zone of one event.

    The soil water index is stepped every 10 minutes with the 10-minute rain
    (:data:`~models.features.SWI_STEP_H`), from the zone's initial state. Rows
    start after an hour (a full 60-minute rain window) and stop 2 hours before
    the end. Label: the snake-line point, from the recorded rain, is on or
    beyond the zone's critical line at some 10-minute step in ``(t, t + 2 h]``.
    """
    z, n = zones.rain_mm.shape
    k = n // 10
    horizon = LANDSLIDE_HORIZON_MIN // 10
    rain10 = zones.rain_mm[:, : k * 10].reshape(z, k, 10).sum(axis=2)
    storage = np.empty((z, k, 3))
    s = np.asarray(zones.initial, dtype=np.float64)
    for i in range(k):
        s = step_tanks_many(s, rain10[:, i], SWI_STEP_H)
        storage[:, i] = s
    swi = storage.sum(axis=2)
    r60 = _rolling_sum(rain10, 6)
    steps = np.arange(5, k - horizon)
    parts = []
    for q in range(z):
        line = zones.lines[q]
        if steps.size == 0:
            continue
        margin = critical_margin(r60[q], swi[q], line)
        ahead = np.lib.stride_tricks.sliding_window_view(np.r_[margin[1:], np.full(horizon, -np.inf)], horizon)
        label = (ahead[steps].max(axis=1) >= 0).astype(np.int64)
        future = np.lib.stride_tricks.sliding_window_view(np.r_[rain10[q, 1:], np.zeros(6)], 6).sum(axis=1)
        bias = math.exp(rng.normal(0.0, NOWCAST_STORM_SIGMA))
        nowcast = np.round(future[steps] * bias * np.exp(rng.normal(0.0, NOWCAST_ROW_SIGMA[60], steps.size)), 1)
        swi_before = np.r_[zones.initial[q].sum(), swi[q]]  # swi_before[i + 1] = SWI after step i
        x = landslide_feature_matrix(storage[q, steps], swi_before[steps - 5], rain10[q, steps], r60[q, steps],
                                     nowcast, line)
        m_now, m_2h = snake_line_outlook_many(storage[q, steps], r60[q, steps], nowcast, line)
        parts.append(LandslideRows(x=x, y=label, storm=np.full(steps.size, storm_index),
                                   zone=np.full(steps.size, f"{zones.name}|{zones.zone_ids[q]}", dtype=object),
                                   step=steps, margin_now=m_now, margin_2h=m_2h))
    return LandslideRows.concat(parts)


def landslide_dataset(zone_series: Sequence[ZoneSeries], seed: int, *, first_storm_index: int = 0) -> LandslideRows:
    rng = np.random.default_rng(seed)
    return LandslideRows.concat([landslide_rows(zs, rng, storm_index=first_storm_index + i)
                                 for i, zs in enumerate(zone_series)])
