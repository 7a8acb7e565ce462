"""flood/5: flood/4's inputs and targets, plus the surface rainfall and runoff indices of the rain grids."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from models import FLOOD3_TARGETS, FLOOD4_FEATURES, FLOOD5_FEATURES, flood4_features, flood5_features, load_scorer
from models.datasets import grid_indices, synthetic_flood_series
from models.runtime import ARTIFACTS_DIR
from suibou.catalogue import StationCatalogue
from suibou.runoff import reach_networks, steady_runoff, steady_storage
from tests.models.test_flood4_model import random_flood3_inputs

FLOOD4_INPUTS = {"caution_m": 2.0, "evacuation_m": 2.6, "danger_m": 3.0, "level_10min_ago_m": 2.4,
                 "level_30min_ago_m": 2.0, "rain_10min_mm": 12.0, "rain_60min_mm": 40.0,
                 "nowcast_rain_30min_mm": 15.0, "nowcast_rain_60min_mm": 25.0, "rain_3h_mm": 95.5,
                 "rain_6h_mm": 120.0, "upstream_stage_to_danger_m": 0.4, "upstream_rise_m_per_h": 0.3,
                 "upstream_travel_min": 35}
INDICES = ("surface_index_mm", "surface_index_ahead_mm", "runoff_index_mm_h", "runoff_index_ahead_mm_h")


@pytest.fixture(scope="module")
def scorer():
    return load_scorer("flood", "5")


@pytest.fixture(scope="module")
def tama_storm():
    (series,) = synthetic_flood_series(5, 1, [StationCatalogue.load("tama-basin")], duration_min=600,
                                       long_rain_share=1.0)
    return series


def test_a_row_is_flood4s_row_then_the_indices_and_a_missing_index_is_never_read_as_dry():
    row = flood5_features(2.5, surface_index_mm=31.5, surface_index_ahead_mm=44.0, runoff_index_mm_h=12.25,
                          runoff_index_ahead_mm_h=20.0, **FLOOD4_INPUTS)
    assert row == flood4_features(2.5, **FLOOD4_INPUTS) + (31.5, 44.0, 12.25, 20.0)
    assert len(row) == len(FLOOD5_FEATURES) and FLOOD5_FEATURES[: len(FLOOD4_FEATURES)] == FLOOD4_FEATURES
    unknown = flood5_features(2.5, **dict.fromkeys(INDICES), **FLOOD4_INPUTS)[-4:]
    rain_60, nowcast_60 = FLOOD4_INPUTS["rain_60min_mm"], FLOOD4_INPUTS["nowcast_rain_60min_mm"]
    assert unknown == pytest.approx((float(steady_storage(rain_60)), float(max(steady_storage(rain_60),
                                     steady_storage(nowcast_60))), float(steady_runoff(rain_60)),
                                     float(max(steady_runoff(rain_60), steady_runoff(nowcast_60)))), abs=1e-4)
    assert min(unknown) > 0


def test_training_indices_route_the_rain_upstream_down_to_the_reach(tama_storm):
    t = np.arange(60, tama_storm.n_minutes - 180, 5)
    rng = np.random.default_rng(0)
    indices = {}
    while not indices or np.isnan(indices["runoff_index_mm_h"]).all():  # a tenth of gauge-storms have no grid
        indices = grid_indices(tama_storm, "R-TAMA-SETAGAYA", t, rng)
    assert set(indices) == set(INDICES)
    now, ahead = indices["runoff_index_mm_h"], indices["runoff_index_ahead_mm_h"]
    assert np.all(ahead >= now - 1e-9) and now.max() > 0
    assert np.all(indices["surface_index_ahead_mm"] >= indices["surface_index_mm"] - 1e-9)
    # The index now is made of rain already fallen: rain after t changes only what is expected.
    cut = int(t[len(t) // 2])
    dry_after = dataclasses.replace(tama_storm, rain_mm=np.where(np.arange(tama_storm.n_minutes) > cut, 0.0,
                                                                 tama_storm.rain_mm))
    def setagaya(series, seed):
        return grid_indices(series, "R-TAMA-SETAGAYA", t, np.random.default_rng(seed))["runoff_index_mm_h"]

    seed = next(s for s in range(1, 100) if not np.isnan(setagaya(tama_storm, s)).any())
    same, cut_short = setagaya(tama_storm, seed), setagaya(dry_after, seed)
    before = t <= cut
    np.testing.assert_allclose(same[before], cut_short[before])
    assert not np.allclose(same[~before], cut_short[~before])
    assert dict(reach_networks(tama_storm.catalogue)["R-TAMA-SETAGAYA"])["R-TAMA-OKUTAMA"] == 295.0


def test_committed_artifact_is_trained_with_the_indices_and_says_what_they_are(scorer):
    meta = json.loads((ARTIFACTS_DIR / "flood-5.json").read_text())
    assert meta["features"] == list(FLOOD5_FEATURES) and meta["targets"] == list(FLOOD3_TARGETS)
    assert set(meta["metrics_held_out"]["lead_time_per_basin"]) == {"kanda-basin", "tama-basin", "meguro-basin"}
    for target in FLOOD3_TARGETS:
        assert meta["metrics_held_out"]["per_target"][target]["roc_auc"] > 0.95
    card = (ARTIFACTS_DIR / "flood-5.md").read_text()
    for needed in ("runoff_index_mm_h", "surface_rainfall_index_mm", "not JMA's", "steady state", "Limits"):
        assert needed in card


def test_more_runoff_never_lowers_the_risk(scorer):
    rng = np.random.default_rng(5)
    n = 2000
    base = random_flood3_inputs(rng, n)
    upstream = {"upstream_stage_to_danger_m": rng.uniform(-1, 4, n), "upstream_rise_m_per_h": rng.uniform(0, 1, n),
                "upstream_travel_min": rng.choice([10.0, 35.0, 80.0], n)}
    surface, runoff = rng.uniform(0, 60, n), rng.uniform(0, 50, n)
    from models import flood5_feature_matrix

    def risk(extra: float):
        return scorer.predict_targets(flood5_feature_matrix(
            *base, **upstream, surface_index_mm=surface + extra, surface_index_ahead_mm=surface + 2 * extra,
            runoff_index_mm_h=runoff + extra, runoff_index_ahead_mm_h=runoff + 2 * extra))

    assert np.all(risk(10.0) >= risk(0.0) - 1e-6)


def test_every_flood_model_a_setting_can_name_loads_with_the_alert_rules_targets():
    from pydantic import ValidationError

    from suibou.settings import FLOOD_MODELS, Settings

    for ref in FLOOD_MODELS:
        name, _, version = ref.partition("/")
        assert load_scorer(name, version).targets == FLOOD3_TARGETS
    assert Settings(flood_model="flood/5").flood_model == "flood/5"
    with pytest.raises(ValidationError):
        Settings(flood_model="flood/2")  # its targets are not the alert rule's
