"""flood/3: three-hour targets, the 3- and 6-hour basin rain, basins of two sizes, per-basin lead times."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import FLOOD3_FEATURES, FLOOD3_TARGETS, flood2_features, flood3_feature_matrix, flood3_features, load_scorer
from models.datasets import flood_rows, synthetic_flood_series
from models.runtime import ARTIFACTS_DIR
from models.train_flood import train_flood3
from suibou.catalogue import StationCatalogue

FLOOD2_INPUTS = {"caution_m": 2.0, "evacuation_m": 2.6, "danger_m": 3.0, "level_10min_ago_m": 2.4,
                 "level_30min_ago_m": 2.0, "rain_10min_mm": 12.0, "rain_60min_mm": 40.0,
                 "nowcast_rain_30min_mm": 15.0, "nowcast_rain_60min_mm": 25.0}


@pytest.fixture(scope="module")
def scorer():
    return load_scorer("flood", "3")


def test_a_row_is_flood2s_row_then_the_long_rain():
    row = flood3_features(2.5, rain_3h_mm=95.5, rain_6h_mm=120.0, **FLOOD2_INPUTS)
    assert row == flood2_features(2.5, **FLOOD2_INPUTS) + (95.5, 120.0)
    matrix = flood3_feature_matrix(*[np.full(3, v) for v in (2.5, 2.0, 2.6, 3.0, 2.4, 2.0, 12.0, 40.0, 15.0, 25.0,
                                                            95.5, 120.0)])
    assert matrix.shape == (3, len(FLOOD3_FEATURES)) and tuple(matrix[0].tolist()) == pytest.approx(row)


def test_rows_carry_the_basin_rain_of_three_and_six_hours_and_look_three_hours_ahead():
    tama = StationCatalogue.load("tama-basin")
    (series,) = synthetic_flood_series(5, 1, [tama], duration_min=600, long_rain_share=1.0)
    rows = flood_rows(series, np.random.default_rng(0), version=3, sample_every_min=1)
    assert rows.x.shape[1] == len(FLOOD3_FEATURES) and rows.y.shape[1] == len(FLOOD3_TARGETS)
    assert rows.minute.max() == series.n_minutes - 180 - 1  # the labels look 180 minutes ahead
    gauge = tama.level_gauges[0]
    mine = rows.gauge == f"{series.name}|{gauge.station_id}"
    basin = series.basin_rain(gauge.reach_id)
    t = rows.minute[mine][-1]
    last = rows.x[mine][-1]
    r3, r6 = last[FLOOD3_FEATURES.index("rain_3h_mm")], last[FLOOD3_FEATURES.index("rain_6h_mm")]
    assert r3 == pytest.approx(basin[t - 179:t + 1].sum(), rel=1e-5)
    assert r6 == pytest.approx(basin[t - 359:t + 1].sum(), rel=1e-5)
    # Coherent labels: reaching a threshold within 60 minutes means reaching it within 180.
    for k in range(0, 6, 2):
        assert np.all(rows.y[:, k + 1] >= rows.y[:, k])


def test_committed_artifact_is_documented_with_lead_times_per_basin(scorer):
    meta = json.loads((ARTIFACTS_DIR / "flood-3.json").read_text())
    assert meta["features"] == list(FLOOD3_FEATURES) and meta["targets"] == list(FLOOD3_TARGETS)
    assert scorer.primary_target == "danger_60min"
    assert set(meta["training_data"]["catalogues"]) == {"kanda-basin", "tama-basin"}
    per_basin = meta["metrics_held_out"]["lead_time_per_basin"]
    assert set(per_basin) == {"kanda-basin", "tama-basin"}
    for target in FLOOD3_TARGETS:
        assert meta["metrics_held_out"]["per_target"][target]["roc_auc"] > 0.95
        for basin in per_basin.values():
            assert basin[target]["n_events"] >= 5
    # Looking three hours ahead gains more than looking one hour ahead, on either kind of basin.
    for basin in per_basin.values():
        assert basin["danger_180min"]["mean_min"] > basin["danger_60min"]["mean_min"] > 0
    card = (ARTIFACTS_DIR / "flood-3.md").read_text()
    for needed in ("Per kind of basin", "`tama-basin`", "`kanda-basin`", "rain_6h_mm", "long rains", "Limits",
                   "no river network"):
        assert needed in card


def test_probabilities_are_coherent_across_thresholds_and_horizons(scorer):
    rng = np.random.default_rng(2)
    n = 3000
    level = rng.uniform(0, 6, n)
    x = flood3_feature_matrix(level, np.full(n, 2.0), np.full(n, 3.0), np.full(n, 4.0),
                              level - rng.uniform(-0.2, 0.5, n), level - rng.uniform(-0.3, 1.0, n),
                              rng.uniform(0, 25, n), rng.uniform(0, 120, n), rng.uniform(0, 60, n),
                              rng.uniform(0, 120, n), rng.uniform(0, 300, n), rng.uniform(0, 500, n))
    p = scorer.predict_targets(x)
    col = {t: i for i, t in enumerate(FLOOD3_TARGETS)}
    for threshold in ("caution", "evacuation", "danger"):
        assert np.all(p[:, col[f"{threshold}_180min"]] >= p[:, col[f"{threshold}_60min"]])
    for h in (60, 180):
        assert np.all(p[:, col[f"caution_{h}min"]] >= p[:, col[f"evacuation_{h}min"]])
        assert np.all(p[:, col[f"evacuation_{h}min"]] >= p[:, col[f"danger_{h}min"]])


def test_a_small_training_run_reports_each_basin(tmp_path):
    result = train_flood3(seed=8, n_storms=24, out_dir=tmp_path, progress=False)
    meta = json.loads(result.metadata_path.read_text())
    assert meta["model_ref"] == "flood/3"
    assert meta["training_data"]["n_held_out_storms_per_basin"] == {"kanda-basin": 3, "tama-basin": 3}
    assert set(meta["metrics_held_out"]["lead_time_per_basin"]) == {"kanda-basin", "tama-basin"}
    assert meta["metrics_held_out"]["onnx_parity_max_abs_diff"] <= 1e-5
