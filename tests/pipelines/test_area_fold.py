"""The area stage's fold (pipelines.areas), without Beam: tiny hand-made readings on kanda-basin."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np

from models import FLOOD4_FEATURES
from models.features import flood2_feature_matrix, flood2_features
from pipelines.alerts import reach_areas
from pipelines.areas import AreaPlan, area_fold, keyed_to_areas
from pipelines.gauges import LevelAssessment, RainfallTotals
from pipelines.ordered import run_fold
from suibou.catalogue import StationCatalogue
from suibou.contracts import AlertEvent, LevelReading, RainReading, RiskScore

T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.UTC)
CATALOGUE = StationCatalogue.load("kanda-basin")
SHARED = "RG-ZENPUKUJI"  # serves the Myoshoji and the Zenpukuji reaches


def rain(station: str, minute: int, mm: float) -> RainReading:
    return RainReading(event_id=f"{station}:{minute}", station_id=station, exercise=True, drill_id="d1",
                       event_time=T0 + dt.timedelta(minutes=minute), rain_mm=mm, interval_s=60)


def level(station: str, minute: int, metres: float) -> LevelReading:
    return LevelReading(event_id=f"{station}:{minute}", station_id=station, exercise=True, drill_id="d1",
                        event_time=T0 + dt.timedelta(minutes=minute), level_m=metres)


def storm() -> list:
    """Forty minutes of heavy rain on every gauge and the Zenpukuji rising past its thresholds."""
    items: list = []
    for minute in range(40):
        items += [rain(g.station_id, minute, 4.0) for g in CATALOGUE.rain_gauges]
        items.append(level("WL-ZENPUKUJI-NARITA", minute, 1.5 + 0.05 * minute))
        items.append(level("WL-MYOSHOJI-SAGINOMIYA", minute, 1.0))
    return items


def by_area(items: list, plan: AreaPlan) -> dict[str, list]:
    keyed: dict[str, list] = {}
    for item in items:
        for key, routed in keyed_to_areas(item, plan):
            keyed.setdefault(key, []).append(routed)
    return keyed


def test_a_gauge_serving_two_areas_is_folded_in_both_and_published_once():
    fold = area_fold(CATALOGUE, FLOOD4_FEATURES, reach_areas(CATALOGUE))
    assert fold.plan.areas_of_station[SHARED] == ("R-MYOSHOJI-UPPER", "R-ZENPUKUJI-UPPER")
    outputs = [o for key, items in by_area(storm(), fold.plan).items() for o in run_fold(fold, key, items)[1]]
    shared_totals = [o for o in outputs if isinstance(o, RainfallTotals) and o.station_id == SHARED]
    assert len(shared_totals) == 40  # once per reading, by its home area
    statuses = [o for o in outputs if isinstance(o, LevelAssessment)]
    assert len(statuses) == 80
    scores = [o for o in outputs if isinstance(o, RiskScore)]
    # Both reaches fuse the shared gauge's rain: each has one score per level reading.
    assert {s.area_id for s in scores} == {"R-ZENPUKUJI-UPPER", "R-MYOSHOJI-UPPER"}
    zenpukuji = [s for s in scores if s.area_id == "R-ZENPUKUJI-UPPER"]
    assert len(zenpukuji) == 40 and zenpukuji[-1].features["rain_60min_mm"] > 100
    alerts = [o for o in outputs if isinstance(o, AlertEvent)]
    assert max(a.level for a in alerts if a.area_id == "R-ZENPUKUJI-UPPER") >= 4


def test_scoring_a_batch_at_once_gives_what_scoring_each_row_alone_gives():
    fold = area_fold(CATALOGUE, FLOOD4_FEATURES, reach_areas(CATALOGUE))
    key, items = "d1|R-ZENPUKUJI-UPPER", by_area(storm(), fold.plan)["d1|R-ZENPUKUJI-UPPER"]
    _, batched = run_fold(fold, key, items)
    state, one_by_one = fold.initial(key), []
    for item in sorted(items, key=lambda i: (i.event_time, fold.order(i))):
        state, produced = fold.step(key, state, item)
        states = {key: state}
        one_by_one += fold.settle(states, [(key, p) for p in produced])
        state = states[key]
    assert batched == one_by_one
    # Something to compare: a score per level reading and the alert they raise (straight to level 4 on the
    # forecast, flood danger expected within the hour).
    assert sum(isinstance(o, RiskScore) for o in batched) == 40
    assert next((a.msg_type.value, a.level) for a in batched if isinstance(a, AlertEvent)) == ("Alert", 4)


def test_one_flood_row_from_plain_floats_equals_the_matrix_form():
    rng = random.Random(7)
    for _ in range(2000):
        values = [rng.uniform(-1.0, 10.0) for _ in range(10)]
        for optional in (4, 5, 8, 9):
            if rng.random() < 0.3:
                values[optional] = None
        row = flood2_features(values[0], caution_m=values[1], evacuation_m=values[2], danger_m=values[3],
                              level_10min_ago_m=values[4], level_30min_ago_m=values[5], rain_10min_mm=values[6],
                              rain_60min_mm=values[7], nowcast_rain_30min_mm=values[8],
                              nowcast_rain_60min_mm=values[9])
        matrix = flood2_feature_matrix(*(np.array([np.nan if v is None else v]) for v in values))[0]
        assert row == tuple(round(float(v), 6) for v in matrix)
