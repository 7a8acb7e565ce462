"""A reach's flood rows read the level gauge upstream of it, along the catalogue's river network."""

from __future__ import annotations

import datetime as dt

import pytest

from models import FLOOD4_FEATURES
from models.features import NO_UPSTREAM_STAGE_M
from pipelines.areas import AreaPlan, upstream_gauges
from pipelines.faults import fault
from pipelines.gauges import LevelAssessment, RainfallTotals
from pipelines.ordered import run_fold
from pipelines.risk import ReachFeatures, ReachFusion
from suibou.catalogue import StationCatalogue
from suibou.contracts import AlertLevel, FaultKind

TAMA = StationCatalogue.load("tama-basin")
T0 = dt.datetime(2019, 10, 12, 3, 0, tzinfo=dt.UTC)
UPSTREAM = ("upstream_stage_to_danger_m", "upstream_rise_m_per_h", "upstream_travel_min")


def at(minute: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


def status(station_id: str, minute: int, metres: float, metres_30min_ago: float) -> LevelAssessment:
    gauge = TAMA.level_gauge(station_id)
    return LevelAssessment(station_id, gauge.reach_id, at(minute), metres, AlertLevel.NONE, gauge.danger_m,
                           metres_30min_ago, (metres - metres_30min_ago) * 2, False, None,
                           caution_m=gauge.caution_m, evacuation_m=gauge.evacuation_m)


def fusion() -> ReachFusion:
    return ReachFusion(FLOOD4_FEATURES, {r.reach_id: r.level_station_id for r in TAMA.reaches},
                       upstream=upstream_gauges(TAMA))


def rows_of(items, reach_id="R-TAMA-FUCHU") -> list[ReachFeatures]:
    _, outputs = run_fold(fusion(), f"live|{reach_id}", items)
    return [o for o in outputs if isinstance(o, ReachFeatures)]


def upstream_of(row: ReachFeatures) -> tuple[float, ...]:
    features = dict(row.features)
    return tuple(features[name] for name in UPSTREAM)


def test_a_level_gauge_serves_its_own_reach_and_the_reach_downstream():
    plan = AreaPlan.from_catalogue(TAMA)
    assert plan.areas_of_station["WL-TAMA-SEKIDO"] == ("R-TAMA-HINO", "R-TAMA-FUCHU")
    assert plan.home("WL-TAMA-SEKIDO") == "R-TAMA-HINO"
    assert plan.areas_of_station["WL-TAMA-DENENCHOFU"] == ("R-TAMA-SETAGAYA",)
    assert upstream_gauges(TAMA)["R-TAMA-FUCHU"] == (("WL-TAMA-SEKIDO", 50.0),)
    assert upstream_gauges(TAMA)["R-TAMA-OKUTAMA"] == ()


def test_the_gauge_upstream_makes_no_row_of_its_own_and_feeds_the_reachs_rows():
    items = [status("WL-TAMA-SEKIDO", 0, 4.0, 3.4), status("WL-TAMA-ISHIHARA", 1, 3.0, 2.9),
             status("WL-TAMA-SEKIDO", 5, 4.2, 3.5), status("WL-TAMA-ISHIHARA", 6, 3.1, 2.9)]
    rows = rows_of(items)
    assert [r.status.station_id for r in rows] == ["WL-TAMA-ISHIHARA"] * 2
    danger = TAMA.level_gauge("WL-TAMA-SEKIDO").danger_m
    assert upstream_of(rows[0]) == pytest.approx((danger - 4.0, 1.2, 50.0), abs=1e-4)
    assert upstream_of(rows[1]) == pytest.approx((danger - 4.2, 1.4, 50.0), abs=1e-4)


def test_of_two_gauges_upstream_the_one_nearest_its_danger_level_counts():
    ome = TAMA.level_gauge("WL-TAMA-HAIJIMA")  # the Tama above the Aki's mouth
    aki = TAMA.level_gauge("WL-AKI-AKIRUNO")
    items = [status(ome.station_id, 0, ome.danger_m - 1.5, ome.danger_m - 1.6),
             status(aki.station_id, 0, aki.danger_m - 0.3, aki.danger_m - 1.0),
             status("WL-TAMA-HINOBASHI", 1, 2.0, 2.0)]
    (row,) = rows_of(items, "R-TAMA-HAIJIMA")
    assert upstream_of(row) == pytest.approx((0.3, 1.4, 35.0), abs=1e-4)


def test_a_silent_or_stale_gauge_upstream_is_not_read_as_a_calm_river():
    silent = fault("WL-TAMA-SEKIDO", FaultKind.SILENT, at(20), at(10), "no reading for 10 min", False, None)
    items = [status("WL-TAMA-SEKIDO", 0, 4.9, 4.0), status("WL-TAMA-ISHIHARA", 1, 3.0, 2.9), silent,
             status("WL-TAMA-ISHIHARA", 20, 3.2, 3.0)]
    rows = rows_of(items)
    assert upstream_of(rows[0])[2] == 50.0
    assert upstream_of(rows[1]) == (NO_UPSTREAM_STAGE_M, 0.0, 0.0)
    assert any("WL-TAMA-SEKIDO" in f for f in rows[1].faults)
    # Without a fault, a status older than the freshness window no longer counts either.
    stale = rows_of([status("WL-TAMA-SEKIDO", 0, 4.9, 4.0), status("WL-TAMA-ISHIHARA", 16, 3.0, 2.9)])
    assert upstream_of(stale[0]) == (NO_UPSTREAM_STAGE_M, 0.0, 0.0)


def test_a_headwater_reach_has_no_gauge_upstream():
    (row,) = rows_of([status("WL-TAMA-CHOFUBASHI", 0, 2.0, 1.8)], "R-TAMA-OKUTAMA")
    assert upstream_of(row) == (NO_UPSTREAM_STAGE_M, 0.0, 0.0)


def _rain(minute: int, mm_60: float) -> RainfallTotals:
    return RainfallTotals("RG-FUCHU", at(minute), mm_60 / 6, mm_60, False, None)


def test_a_frozen_gauge_upstream_is_not_read_while_it_rains_and_the_row_says_why():
    stuck = [status("WL-TAMA-SEKIDO", m, 4.5, 4.5) for m in range(0, 71, 5)]
    own = [status("WL-TAMA-ISHIHARA", m + 1, 3.0, 2.9) for m in (0, 30, 70)]
    rainy = rows_of(sorted([*stuck, *own, *(_rain(m, 20.0) for m in range(0, 71, 5))], key=lambda i: i.event_time))
    assert upstream_of(rainy[0]) == pytest.approx((TAMA.level_gauge("WL-TAMA-SEKIDO").danger_m - 4.5, 0.0, 50.0),
                                                  abs=1e-4)
    assert upstream_of(rainy[-1]) == (NO_UPSTREAM_STAGE_M, 0.0, 0.0)  # 70 min unmoved in 20 mm/h of rain
    assert any("WL-TAMA-SEKIDO upstream" in f and "unchanged for 70 min" in f for f in rainy[-1].faults)
    # The same unmoving level in dry weather is a calm river, and is read.
    dry = rows_of(sorted([*stuck, *own, *(_rain(m, 0.0) for m in range(0, 71, 5))], key=lambda i: i.event_time))
    assert upstream_of(dry[-1])[2] == 50.0 and not dry[-1].faults
