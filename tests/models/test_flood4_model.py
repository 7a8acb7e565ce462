"""flood/4: flood/3's inputs and targets, plus the level gauge upstream along the river network."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import FLOOD3_TARGETS, FLOOD4_FEATURES, flood3_features, flood4_feature_matrix, flood4_features, load_scorer
from models.datasets import flood_rows, synthetic_flood_series, upstream_state
from models.features import NO_UPSTREAM_STAGE_M
from models.runtime import ARTIFACTS_DIR
from suibou.catalogue import StationCatalogue

FLOOD3_INPUTS = {"caution_m": 2.0, "evacuation_m": 2.6, "danger_m": 3.0, "level_10min_ago_m": 2.4,
                 "level_30min_ago_m": 2.0, "rain_10min_mm": 12.0, "rain_60min_mm": 40.0,
                 "nowcast_rain_30min_mm": 15.0, "nowcast_rain_60min_mm": 25.0, "rain_3h_mm": 95.5,
                 "rain_6h_mm": 120.0}


@pytest.fixture(scope="module")
def scorer():
    return load_scorer("flood", "4")


@pytest.fixture(scope="module")
def tama_storm():
    tama = StationCatalogue.load("tama-basin")
    (series,) = synthetic_flood_series(5, 1, [tama], duration_min=600, long_rain_share=1.0)
    return series


def test_a_row_is_flood3s_row_then_the_gauge_upstream():
    row = flood4_features(2.5, upstream_stage_to_danger_m=0.4, upstream_rise_m_per_h=0.3, upstream_travel_min=35,
                          **FLOOD3_INPUTS)
    assert row == flood3_features(2.5, **FLOOD3_INPUTS) + (0.4, 0.3, 35.0)
    inputs = [np.full(3, v) for v in (2.5, 2.0, 2.6, 3.0, 2.4, 2.0, 12.0, 40.0, 15.0, 25.0, 95.5, 120.0)]
    matrix = flood4_feature_matrix(*inputs, upstream_stage_to_danger_m=np.array([0.4, np.nan, 0.4]),
                                   upstream_rise_m_per_h=np.array([0.3, 5.0, np.nan]),
                                   upstream_travel_min=np.array([35.0, 35.0, 35.0]))
    assert matrix.shape == (3, len(FLOOD4_FEATURES)) and tuple(matrix[0].tolist()) == pytest.approx(row)
    assert tuple(matrix[1, -3:].tolist()) == (NO_UPSTREAM_STAGE_M, 0.0, 0.0)  # nothing known upstream
    assert tuple(matrix[2, -3:].tolist()) == pytest.approx((0.4, 0.0, 35.0))  # no rise history yet


def test_training_rows_read_the_gauge_upstream_as_the_pipeline_does(tama_storm):
    rows = flood_rows(tama_storm, np.random.default_rng(0), version=4, sample_every_min=1)
    assert rows.x.shape[1] == len(FLOOD4_FEATURES) and rows.y.shape[1] == len(FLOOD3_TARGETS)
    col = {name: i for i, name in enumerate(FLOOD4_FEATURES)}
    catalogue = tama_storm.catalogue
    sekido = tama_storm.level_m[tama_storm.level_ids.index("WL-TAMA-SEKIDO")]
    ishihara = rows.gauge == f"{tama_storm.name}|WL-TAMA-ISHIHARA"
    t = rows.minute[ishihara][-1]
    last = rows.x[ishihara][-1]
    danger = catalogue.level_gauge("WL-TAMA-SEKIDO").danger_m
    assert last[col["upstream_stage_to_danger_m"]] == pytest.approx(danger - sekido[t], abs=1e-5)
    assert last[col["upstream_rise_m_per_h"]] == pytest.approx((sekido[t] - sekido[t - 30]) * 2, abs=1e-5)
    assert last[col["upstream_travel_min"]] == 50.0
    headwater = rows.x[rows.gauge == f"{tama_storm.name}|WL-TAMA-CHOFUBASHI"]
    assert (headwater[:, col["upstream_stage_to_danger_m"]] == NO_UPSTREAM_STAGE_M).all()
    # At the Aki's mouth, of the two gauges upstream the one nearer its danger level counts.
    stage, _, travel = upstream_state(tama_storm, "R-TAMA-HAIJIMA", np.array([t]))
    ome, aki = (catalogue.level_gauge(s) for s in ("WL-TAMA-HAIJIMA", "WL-AKI-AKIRUNO"))
    levels = {s: tama_storm.level_m[tama_storm.level_ids.index(s)][t] for s in (ome.station_id, aki.station_id)}
    assert stage[0] == pytest.approx(min(ome.danger_m - levels[ome.station_id], aki.danger_m - levels[aki.station_id]))
    assert travel[0] == 35.0


def test_committed_artifact_covers_three_basins_and_says_what_it_leaves_out(scorer):
    meta = json.loads((ARTIFACTS_DIR / "flood-4.json").read_text())
    assert meta["features"] == list(FLOOD4_FEATURES) and meta["targets"] == list(FLOOD3_TARGETS)
    assert set(meta["training_data"]["catalogues"]) == {"kanda-basin", "tama-basin", "meguro-basin"}
    per_basin = meta["metrics_held_out"]["lead_time_per_basin"]
    assert set(per_basin) == {"kanda-basin", "tama-basin", "meguro-basin"}
    for target in FLOOD3_TARGETS:
        assert meta["metrics_held_out"]["per_target"][target]["roc_auc"] > 0.95
    card = (ARTIFACTS_DIR / "flood-4.md").read_text()
    for needed in ("`meguro-basin`", "upstream_stage_to_danger_m", "river network", "travel time", "Limits"):
        assert needed in card


def random_flood3_inputs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``flood3_feature_matrix``'s inputs for ``n`` random rows over the range the models are trained on."""
    level = rng.uniform(0, 6, n)
    return [level, np.full(n, 2.0), np.full(n, 3.0), np.full(n, 4.0), level - rng.uniform(-0.2, 0.5, n),
            level - rng.uniform(-0.3, 1.0, n), rng.uniform(0, 25, n), rng.uniform(0, 120, n), rng.uniform(0, 60, n),
            rng.uniform(0, 120, n), rng.uniform(0, 300, n), rng.uniform(0, 500, n)]


def test_a_river_rising_upstream_never_lowers_the_risk_downstream(scorer):
    rng = np.random.default_rng(4)
    n = 2000
    base = random_flood3_inputs(rng, n)
    stage = rng.uniform(-1, 4, n)
    rise = rng.uniform(-0.5, 1.5, n)
    travel = rng.choice([10.0, 35.0, 80.0], n)
    calm = scorer.predict_targets(flood4_feature_matrix(*base, upstream_stage_to_danger_m=stage,
                                                        upstream_rise_m_per_h=rise, upstream_travel_min=travel))
    higher = scorer.predict_targets(flood4_feature_matrix(*base, upstream_stage_to_danger_m=stage - 0.5,
                                                          upstream_rise_m_per_h=rise + 0.5, upstream_travel_min=travel))
    assert np.all(higher >= calm - 1e-6)
    col = {t: i for i, t in enumerate(FLOOD3_TARGETS)}
    for threshold in ("caution", "evacuation", "danger"):
        assert np.all(calm[:, col[f"{threshold}_180min"]] >= calm[:, col[f"{threshold}_60min"]])
