"""A reach's surface rainfall and runoff indices: kept in its fold, routed down the network."""

from __future__ import annotations

import datetime as dt

import numpy as np

from models import FLOOD4_FEATURES
from pipelines.areas import AreaPlan, grid_to_areas
from pipelines.gauges import LevelAssessment
from pipelines.grids import GRID_MAX_AGE_S, AreaRainfall, area_cells, sample_cells
from pipelines.ordered import run_fold
from pipelines.risk import ReachFusion
from pipelines.runoff import (
    RUNOFF_INDEX,
    RUNOFF_INDEX_AHEAD,
    SURFACE_INDEX,
    SURFACE_INDEX_AHEAD,
    CatchmentRunoff,
    runoff_features,
    step_catchment,
)
from suibou.catalogue import StationCatalogue
from suibou.contracts import AlertLevel, AreaKind
from suibou.runoff import own_rain_stations, reach_networks, steady_storage, step_surface_tanks

TAMA = StationCatalogue.load("tama-basin")
T0 = dt.datetime(2019, 10, 12, 0, 0, tzinfo=dt.UTC)
KEEP_S = 6 * 3600.0


def _grid(area: str, minute: float, rate: float, ahead_30: float | None = None, ahead_60: float | None = None,
          cells: int = 2) -> AreaRainfall:
    now30 = () if ahead_30 is None else (ahead_30,) * cells
    now60 = () if ahead_60 is None else (ahead_60,) * cells
    return AreaRainfall(area, AreaKind.REACH, "G1K", T0 + dt.timedelta(minutes=minute), rate, ahead_30, ahead_60,
                        True, "d", (rate,) * cells, now30, now60)


def _catchment(area: str, rates_by_minute: dict[float, float]) -> CatchmentRunoff:
    state = None
    for minute, rate in sorted(rates_by_minute.items()):
        state = step_catchment(state, _grid(area, minute, rate), KEEP_S)
    assert state is not None
    return state


def _chain() -> tuple[str, str, float]:
    """A reach with one reach upstream of it in the Tama catalogue, and the travel minutes between them."""
    for reach in TAMA.reaches:
        if reach.flows_into is not None:
            return reach.reach_id, reach.flows_into, float(reach.travel_min or 0.0)
    raise AssertionError("the Tama catalogue has no river network")


def test_the_network_of_a_reach_is_every_reach_upstream_with_gauges_of_its_own_and_travel_times_added_up():
    networks = reach_networks(TAMA)
    for reach in TAMA.reaches:
        own = own_rain_stations(TAMA, reach.reach_id)
        assert ((reach.reach_id, 0.0) in networks[reach.reach_id]) == bool(own) or len(networks[reach.reach_id]) == 1
        if reach.flows_into is not None and own:
            below = dict(networks[reach.flows_into])
            assert below[reach.reach_id] == reach.travel_min
            for upstream, travel in networks[reach.reach_id][1:]:
                assert below[upstream] == travel + reach.travel_min  # two reaches up and more
    # A reach with no rain gauge of its own adds no rain: routing it would count those upstream twice.
    hino = dict(networks["R-TAMA-HINO"])
    assert not own_rain_stations(TAMA, "R-TAMA-HINO") and "R-TAMA-HINO" not in hino
    assert hino["R-TAMA-OKUTAMA"] == 150.0 and len(hino) == 5
    assert len(networks["R-TAMA-SETAGAYA"]) == 7


def test_a_reach_grid_sample_is_keyed_to_every_reach_below_it_and_a_zone_to_itself():
    plan = AreaPlan.from_catalogue(TAMA)
    upper, below, _ = _chain()
    keys = [k for k, _ in grid_to_areas(_grid(upper, 0, 1.0), plan)]
    assert keys[:2] == [f"d|{upper}", f"d|{below}"]
    assert len(keys) == 1 + len(plan.below[upper])
    zone = TAMA.zones[0].zone_id
    assert [k for k, _ in grid_to_areas(_grid(zone, 0, 1.0), plan)] == [f"d|{zone}"]


def test_rain_upstream_reaches_the_reach_below_after_the_travel_time():
    upper, below, travel = _chain()
    network = ((below, 0.0), (upper, travel))
    catchments: dict[str, CatchmentRunoff | None] = {upper: None, below: None}
    upstream_runoff, index = {}, {}
    for minute in range(0, 600, 5):  # as the fold sees them: both reaches' grids, then a row
        catchments[upper] = step_catchment(catchments[upper], _grid(upper, minute, 60.0 if 30 <= minute < 90 else 0.0),
                                           KEEP_S)
        catchments[below] = step_catchment(catchments[below], _grid(below, minute, 0.0), KEEP_S)
        at = T0 + dt.timedelta(minutes=minute)
        known = {k: v for k, v in catchments.items() if v is not None}
        upstream_runoff[minute] = known[upper].runoff_at(at)
        index[minute] = runoff_features(known, below, network, at)[RUNOFF_INDEX]
    peak_upstream = max(upstream_runoff, key=lambda m: upstream_runoff[m])
    peak_below = max(index, key=lambda m: index[m])
    assert abs(peak_below - peak_upstream - travel) <= 5  # grids every 5 minutes
    assert index[peak_upstream] < index[peak_below] == round(upstream_runoff[peak_upstream] / 2, 2)


def test_an_index_is_unknown_rather_than_zero_when_a_catchment_upstream_stopped_sending_grids():
    upper, below, travel = _chain()
    silent_after = 60
    late_min = int(silent_after + travel + GRID_MAX_AGE_S / 60 + 90) // 5 * 5
    catchments = {upper: _catchment(upper, dict.fromkeys(range(0, silent_after + 5, 5), 40.0)),
                  below: _catchment(below, dict.fromkeys(range(0, late_min + 5, 5), 40.0))}
    network = ((below, 0.0), (upper, travel))
    late = T0 + dt.timedelta(minutes=late_min)
    features = runoff_features(catchments, below, network, late)
    assert SURFACE_INDEX in features  # its own rain is known
    assert RUNOFF_INDEX not in features and RUNOFF_INDEX_AHEAD not in features


def test_no_fresh_grid_of_its_own_gives_no_index_at_all():
    below = _chain()[1]
    catchments = {below: _catchment(below, {0: 30.0, 5: 30.0})}
    assert runoff_features(catchments, below, ((below, 0.0),), T0 + dt.timedelta(minutes=5)) != {}
    assert runoff_features(catchments, below, ((below, 0.0),), T0 + dt.timedelta(minutes=5 + 16)) == {}


def test_the_nowcast_lifts_the_index_expected_within_the_hour():
    reach = TAMA.reaches[0].reach_id
    dry = step_catchment(None, _grid(reach, 0, 0.0, ahead_30=0.0, ahead_60=0.0), KEEP_S)
    wet = step_catchment(None, _grid(reach, 0, 0.0, ahead_30=40.0, ahead_60=60.0), KEEP_S)
    at = T0 + dt.timedelta(minutes=1)
    network = ((reach, 0.0),)
    assert dry is not None and wet is not None
    dry_features, wet_features = (runoff_features({reach: c}, reach, network, at) for c in (dry, wet))
    assert dry_features[RUNOFF_INDEX_AHEAD] == 0.0 and dry_features[SURFACE_INDEX_AHEAD] == 0.0
    assert wet_features[RUNOFF_INDEX_AHEAD] > 0 and wet_features[SURFACE_INDEX_AHEAD] > 0
    assert wet_features[RUNOFF_INDEX] == 0.0  # nothing has fallen yet


def test_after_a_gap_in_the_grids_the_tanks_restart_at_the_stand_in_and_what_came_before_is_unknown():
    reach = TAMA.reaches[0].reach_id
    wet = _catchment(reach, {0: 60.0, 5: 60.0})
    after_gap = step_catchment(wet, _grid(reach, 5 + 240, 60.0), KEEP_S)
    assert after_gap is not None
    np.testing.assert_allclose(after_gap.storage, steady_storage(np.full(2, 60.0)))
    assert after_gap.runoff_at(T0 + dt.timedelta(minutes=5 + 240)) is not None
    assert after_gap.runoff_at(T0 + dt.timedelta(minutes=100)) is None  # in the gap: not dry, unknown
    assert wet.runoff_at(T0 - dt.timedelta(minutes=30)) == 0.0  # before the job's first grid: dry
    # A gap within the grids' age is rained through at the new grid's rate.
    short = step_catchment(wet, _grid(reach, 5 + 15, 60.0), KEEP_S)
    assert short is not None
    np.testing.assert_allclose(short.storage, step_surface_tanks(np.asarray(wet.storage), 60.0, 0.25))


def test_trimmed_history_is_unknown_not_dry():
    reach = TAMA.reaches[0].reach_id
    state = _catchment(reach, dict.fromkeys(range(0, 121, 5), 10.0))
    trimmed = step_catchment(state, _grid(reach, 125, 10.0), keep_s=3600.0)
    assert trimmed is not None and not trimmed.dry_before
    assert trimmed.runoff_at(T0 + dt.timedelta(minutes=30)) is None
    assert trimmed.runoff_at(T0 + dt.timedelta(minutes=120)) is not None


def test_a_grid_older_than_the_tanks_changes_nothing():
    reach = TAMA.reaches[0].reach_id
    state = _catchment(reach, {0: 10.0, 10: 10.0})
    assert step_catchment(state, _grid(reach, 5, 90.0), KEEP_S) is state


def test_the_reach_fold_routes_a_reach_upstream_into_its_rows_and_its_own_grid_only_into_the_nowcast():
    upper, below, travel = _chain()
    gauge = TAMA.level_gauge(TAMA.reach(below).level_station_id)
    fold = ReachFusion(tuple(FLOOD4_FEATURES), {below: gauge.station_id}, networks=reach_networks(TAMA))
    items: list[object] = []
    for minute in range(0, 301, 5):
        items.append(_grid(upper, minute, 50.0 if minute < 60 else 0.0, 0.0, 0.0))
        items.append(_grid(below, minute, 0.0, 0.0, 0.0))
    status = LevelAssessment(gauge.station_id, below, T0 + dt.timedelta(minutes=300), 1.0, AlertLevel.NONE,
                             gauge.danger_m, 1.0, 1.0, True, "d", caution_m=gauge.caution_m,
                             evacuation_m=gauge.evacuation_m)
    state, rows = run_fold(fold, f"d|{below}", [*items, status])
    (row,) = rows
    assert state.grid is not None and state.grid.area_id == below
    features = dict(row.runoff)
    assert features[SURFACE_INDEX] == 0.0  # no rain on its own cells
    upstream_only = {m: (50.0 if m < 60 else 0.0) for m in range(0, 301, 5)}
    expected = (0.0 + _catchment(upper, upstream_only).runoff_at(T0 + dt.timedelta(minutes=300 - travel))) / 2
    assert features[RUNOFF_INDEX] == round(expected, 2) > 0


def test_cells_are_sampled_one_by_one():
    leads = np.array([0, 10, 20, 30, 40, 50, 60])
    fields = np.zeros((leads.size, 1, 2))
    fields[:, 0, 1] = 12.0
    now, ahead_30, ahead_60 = sample_cells(leads, fields, ((0, 0), (0, 1)))
    assert now == (0.0, 12.0) and ahead_30 == (0.0, 6.0) and ahead_60 == (0.0, 12.0)
    assert sample_cells(np.array([0]), fields[:1], ((0, 0), (0, 1))) == ((0.0, 12.0), (), ())


def test_a_reach_stands_on_the_cells_of_its_own_rain_gauges_and_a_reach_without_any_on_all_of_its_cells():
    (areas,) = area_cells(TAMA).values()
    by_id = {a.area_id: a for a in areas}
    grid = TAMA.grids[0]
    for reach_id in ("R-TAMA-OME", "R-TAMA-FUCHU"):
        own = {grid.cell_of(g.lon, g.lat) for g in map(TAMA.rain_gauge, own_rain_stations(TAMA, reach_id))}
        assert set(by_id[reach_id].local_cells) == own and len(own) < len(by_id[reach_id].cells)
    assert not own_rain_stations(TAMA, "R-TAMA-HINO")
    assert by_id["R-TAMA-HINO"].local_cells == by_id["R-TAMA-HINO"].cells
    assert all(not a.local_cells for a in areas if a.area_kind is AreaKind.ZONE)
