"""flood/2: six coherent targets, parity with scikit-learn, lead time, imported storms, loader guards."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil

import numpy as np
import pytest

from models import FLOOD2_FEATURES, FLOOD2_TARGETS, ModelLoadError, flood2_feature_matrix, flood2_features, load_scorer
from models.datasets import (
    flood2_rows,
    series_from_simulation,
    series_from_storm,
    synthetic_flood_series,
)
from models.evaluation import lead_times
from models.runtime import ARTIFACTS_DIR
from models.train_flood import train_flood2
from replay_data.synth import Storm, simulate
from suibou.catalogue import StationCatalogue
from suibou.contracts import LevelReading, RainReading


@pytest.fixture(scope="module")
def scorer():
    return load_scorer("flood", "2")


@pytest.fixture(scope="module")
def catalogue():
    return StationCatalogue.load("kanda-basin")


def imported_style_storm(catalogue, seed: int, name: str) -> Storm:
    """A storm as a bureau's CSV would give it: 10-minute rain totals and 5-minute levels.

    The readings come from a synthetic simulation (so the test knows the truth),
    re-expressed on coarser intervals and marked as imported.
    """
    from models.datasets import draw_flood_storm

    rng = np.random.default_rng(seed)
    params = draw_flood_storm(rng, catalogue, dt.datetime(2021, 7, 1, tzinfo=dt.UTC))
    # Make sure it rains hard, so the storm has crossings.
    params = dataclasses.replace(params, cells=tuple(dataclasses.replace(c, peak_mm_h=120.0) for c in params.cells))
    sim = simulate(catalogue, params)
    times = [params.start + dt.timedelta(minutes=m + 1) for m in range(params.n_steps)]
    rain = []
    for i, sid in enumerate(sim.rain_ids):
        for k in range(9, params.n_steps, 10):
            total = float(sim.rain_mm[i, k - 9:k + 1].sum())
            rain.append(RainReading(event_id=f"{sid}:{k}", event_time=times[k], station_id=sid,
                                    rain_mm=round(total, 1), interval_s=600))
    levels = [
        LevelReading(event_id=f"{sid}:{k}", event_time=times[k], station_id=sid, level_m=float(sim.level_m[j, k]))
        for j, sid in enumerate(sim.level_ids) for k in range(4, params.n_steps, 5)
    ]
    return Storm(name=name, title=name, description="test storm in the import format (derived from a synthetic run)",
                 provenance="observed (imported)", start=params.start, end=params.end, catalogue=catalogue,
                 rain=tuple(rain), levels=tuple(levels))


# --------------------------------------------------------------------------- features


def test_feature_row_by_hand():
    row = flood2_features(2.5, caution_m=2.0, evacuation_m=2.6, danger_m=3.0, level_10min_ago_m=2.4,
                          level_30min_ago_m=2.0, rain_10min_mm=12.0, rain_60min_mm=40.0,
                          nowcast_rain_30min_mm=15.0, nowcast_rain_60min_mm=25.0)
    # head-rooms 2.0-2.5, 2.6-2.5, 3.0-2.5; rises (2.5-2.0)*2 and (2.5-2.4)*6
    assert row == pytest.approx((-0.5, 0.1, 0.5, 1.0, 0.6, 12.0, 40.0, 15.0, 25.0), abs=1e-6)
    # No history: no rise. No nowcast: persistence of the last hour.
    row = flood2_features(1.0, caution_m=2.0, evacuation_m=2.6, danger_m=3.0, level_10min_ago_m=None,
                          level_30min_ago_m=None, rain_10min_mm=3.0, rain_60min_mm=18.0)
    assert row[3:5] == (0.0, 0.0) and row[7:] == (9.0, 18.0)
    assert flood2_feature_matrix(*[np.zeros(4)] * 10).shape == (4, len(FLOOD2_FEATURES))


# --------------------------------------------------------------------------- committed artifact


def test_committed_artifact_is_small_and_documented(scorer):
    assert (ARTIFACTS_DIR / "flood-2.onnx").stat().st_size < 2_000_000
    meta = json.loads((ARTIFACTS_DIR / "flood-2.json").read_text())
    assert meta["features"] == list(FLOOD2_FEATURES) and meta["targets"] == list(FLOOD2_TARGETS)
    assert scorer.targets == FLOOD2_TARGETS and scorer.primary_target == "danger_60min"
    metrics = meta["metrics_held_out"]
    for target in FLOOD2_TARGETS:
        assert metrics["per_target"][target]["roc_auc"] > 0.95
        assert metrics["per_target"][target]["brier"] < metrics["per_target"][target]["brier_climatology"] / 2
        lead = metrics["lead_time"][target]
        assert lead["n_events"] >= 20 and lead["mean_min"] > 5 and lead["median_min"] > 0
    assert metrics["onnx_parity_max_abs_diff"] <= 1e-5
    card = (ARTIFACTS_DIR / "flood-2.md").read_text()
    for needed in ("ROC-AUC", "Brier", "Lead time", "synthetic", "Limits", "nowcast_rain_60min_mm", "mm"):
        assert needed in card


def test_outputs_are_coherent_and_primary_is_danger_60(scorer):
    rng = np.random.default_rng(1)
    n = 4000
    level = rng.uniform(0, 4, n)
    x = flood2_feature_matrix(level, np.full(n, 2.0), np.full(n, 2.6), np.full(n, 3.0),
                              level - rng.uniform(-0.2, 0.5, n),
                              level - rng.uniform(-0.3, 1.0, n), rng.uniform(0, 25, n), rng.uniform(0, 120, n),
                              rng.uniform(0, 60, n), rng.uniform(0, 120, n))
    p = scorer.predict_targets(x)
    assert p.shape == (n, 6) and p.dtype == np.float32
    col = {t: i for i, t in enumerate(FLOOD2_TARGETS)}
    for threshold in ("caution", "evacuation", "danger"):
        assert np.all(p[:, col[f"{threshold}_60min"]] >= p[:, col[f"{threshold}_30min"]])
    for h in (30, 60):
        assert np.all(p[:, col[f"caution_{h}min"]] >= p[:, col[f"evacuation_{h}min"]])
        assert np.all(p[:, col[f"evacuation_{h}min"]] >= p[:, col[f"danger_{h}min"]])
    np.testing.assert_array_equal(scorer.predict_proba(x), p[:, col["danger_60min"]])
    named = scorer.target_probabilities(x[0])
    assert list(named) == list(FLOOD2_TARGETS)


def test_probability_rises_with_level_and_nowcast(scorer):
    levels = np.linspace(0.0, 3.4, 69)
    n = levels.size

    def rows(nowcast):
        return flood2_feature_matrix(levels, np.full(n, 2.0), np.full(n, 2.6), np.full(n, 3.0), levels - 0.1,
                                     levels - 0.3, np.full(n, 8.0), np.full(n, 40.0), np.full(n, nowcast / 2),
                                     np.full(n, nowcast))

    dry, wet = scorer.predict_targets(rows(0.0)), scorer.predict_targets(rows(80.0))
    assert np.all(np.diff(dry, axis=0) >= -1e-6) and np.all(np.diff(wet, axis=0) >= -1e-6)
    assert np.all(wet >= dry - 1e-6)
    quiet = flood2_features(0.4, caution_m=2.0, evacuation_m=2.6, danger_m=3.0, level_10min_ago_m=0.4,
                            level_30min_ago_m=0.4, rain_10min_mm=0.0, rain_60min_mm=0.0,
                            nowcast_rain_30min_mm=0.0, nowcast_rain_60min_mm=0.0)
    assert scorer.predict_targets([quiet]).max() < 0.05
    assert scorer.contributions(quiet) == []


# --------------------------------------------------------------------------- training, parity, lead time


@pytest.fixture(scope="module")
def trained(tmp_path_factory, catalogue):
    out = tmp_path_factory.mktemp("flood2")
    storms = [imported_style_storm(catalogue, 5, "bureau-2021-07-a")]
    held = [imported_style_storm(catalogue, 6, "bureau-2021-07-b")]
    result = train_flood2(seed=11, n_storms=120, storms=storms, held_out_storms=held, out_dir=out, progress=False)
    return result


def test_onnx_runtime_matches_scikit_learn_on_held_out_storms(trained):
    scorer = load_scorer("flood", "2", artifacts_dir=trained.onnx_path.parent)
    expected = trained.model.predict_targets(trained.test.x)
    actual = scorer.predict_targets(trained.test.x)
    assert len(actual) > 1000
    assert np.abs(actual - expected).max() <= 1e-5
    # Batched and row-by-row scoring agree.
    singles = np.concatenate([scorer.predict_targets(trained.test.x[i:i + 1]) for i in range(50)])
    np.testing.assert_array_equal(singles, actual[:50])


def test_imported_storms_are_trained_on_and_evaluated(trained):
    meta = json.loads(trained.metadata_path.read_text())
    data = meta["training_data"]
    assert data["n_supplied_train_storms"] == 1 and data["n_supplied_non_synthetic_train_storms"] == 1
    assert data["n_supplied_held_out_storms"] == 1
    assert any(g.startswith("bureau-2021-07-a|") for g in trained.train.gauge)
    assert any(g.startswith("bureau-2021-07-b|") for g in trained.test.gauge)
    assert not any(g.startswith("bureau-2021-07-b|") for g in trained.train.gauge)


def test_model_beats_threshold_only_rule_on_lead_time(trained):
    for target, lead in trained.metrics["lead_time"].items():
        assert lead["n_events"] > 0, target
        assert lead["mean_min"] > 0, target
        assert all(g >= 0 for g in lead["gains_min"])


def test_training_is_deterministic(catalogue, tmp_path):
    a = train_flood2(seed=3, n_storms=40, out_dir=tmp_path / "a", progress=False)
    b = train_flood2(seed=3, n_storms=40, out_dir=tmp_path / "b", progress=False)
    assert a.onnx_path.read_bytes() == b.onnx_path.read_bytes()


# --------------------------------------------------------------------------- data plumbing


def test_import_format_series_matches_the_simulation(catalogue):
    storm = imported_style_storm(catalogue, 5, "bureau")
    series = series_from_storm(storm)
    assert series.rain_mm.shape == (len(catalogue.rain_gauges), 240)
    # 10-minute totals land in the minute their interval ends.
    assert np.count_nonzero(series.rain_mm.sum(axis=0)[np.arange(240) % 10 != 9]) == 0
    total = sum(r.rain_mm for r in storm.rain)
    assert series.rain_mm.sum() == pytest.approx(total)
    # Levels read every 5 minutes are carried forward in between, unknown before the first.
    j = 0
    assert np.isnan(series.level_m[j, :4]).all()
    assert series.level_m[j, 4] == series.level_m[j, 8] == storm.levels[0].level_m
    rows = flood2_rows(series, np.random.default_rng(0))
    assert len(rows) > 0 and rows.x.shape[1] == len(FLOOD2_FEATURES)


def test_both_paths_give_the_same_series(catalogue):
    from replay_data.synth import synthesise

    series = synthetic_flood_series(8, 1, [catalogue])[0]
    from models.datasets import draw_flood_storm

    params = draw_flood_storm(np.random.default_rng(8), catalogue,
                              dt.datetime(2000, 6, 1, tzinfo=dt.UTC))
    storm = synthesise(catalogue, params, name="x", title="x", description="synthetic test storm")
    from_readings = series_from_storm(storm)
    from_arrays = series_from_simulation(catalogue, params, simulate(catalogue, params), name="x")
    np.testing.assert_allclose(from_readings.rain_mm, from_arrays.rain_mm, atol=1e-9)
    np.testing.assert_allclose(from_readings.level_m, from_arrays.level_m, atol=1e-9)
    np.testing.assert_allclose(series.level_m, from_arrays.level_m)


def test_lead_time_arithmetic():
    # One gauge: crosses at minute 30; the model alerts at minute 12 -> 18 min gained.
    # Another: crosses at 20, model never alerts -> 0. A third never crosses but the model alerts: a false alarm.
    # A fourth is above the threshold from the start: not counted.
    groups = np.array(["a"] * 5 + ["b"] * 5 + ["c"] * 3 + ["d"] * 2)
    minutes = np.array([0, 12, 20, 30, 40, 0, 10, 20, 30, 40, 0, 10, 20, 0, 10])
    crossed = np.array([0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1], dtype=bool)
    alert = np.array([0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1], dtype=bool)
    out = lead_times(groups, minutes, crossed, alert)
    assert out["gains_min"] == [18.0, 0.0]
    assert out["n_events"] == 2 and out["mean_min"] == 9.0 and out["share_earlier"] == 0.5
    assert out["false_alarm_groups"] == 1 and out["n_no_event_groups"] == 1


# --------------------------------------------------------------------------- loader guards


def copy_artifacts(tmp_path, stem="flood-2"):
    for suffix in ("onnx", "json", "md"):
        shutil.copy(ARTIFACTS_DIR / f"{stem}.{suffix}", tmp_path)
    return tmp_path


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(targets=list(reversed(m["targets"]))), "targets"),
    (lambda m: m.update(features=m["features"][:-1]), "features"),
    (lambda m: m.update(primary_target="danger_90min"), "primary_target"),
    (lambda m: m.update(kind="ensemble"), "kind"),
])
def test_loader_rejects_mismatched_metadata(tmp_path, change, message):
    copy_artifacts(tmp_path)
    path = tmp_path / "flood-2.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=message):
        load_scorer("flood", "2", artifacts_dir=tmp_path)


def test_loader_rejects_a_model_with_the_wrong_output_width(tmp_path):
    # A binary classifier on the right nine features (probabilities [n, 2]) posing as flood/2.
    import hashlib

    from sklearn.ensemble import HistGradientBoostingClassifier

    from models.export import binary_onnx

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(FLOOD2_FEATURES))).astype(np.float32)
    model = HistGradientBoostingClassifier(max_iter=3).fit(x, x[:, 0] > 0)
    data = binary_onnx(model, len(FLOOD2_FEATURES), "impostor")
    copy_artifacts(tmp_path)
    (tmp_path / "flood-2.onnx").write_bytes(data)
    meta = json.loads((tmp_path / "flood-2.json").read_text())
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    (tmp_path / "flood-2.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=r"shape .* expected \[n, 6\]"):
        load_scorer("flood", "2", artifacts_dir=tmp_path)


def test_loader_rejects_missing_and_corrupt_files(tmp_path):
    copy_artifacts(tmp_path)
    path = tmp_path / "flood-2.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256"):
        load_scorer("flood", "2", artifacts_dir=tmp_path)
    path.unlink()
    with pytest.raises(ModelLoadError, match="not found"):
        load_scorer("flood", "2", artifacts_dir=tmp_path)


def test_training_on_a_storm_imported_from_bureau_csv(tmp_path, catalogue):
    """The whole import route: bureau CSV (10-minute rain, 5-minute levels) + station file
    -> replay_data's importer -> train_flood2(storms=[...])."""
    library = pytest.importorskip("replay_data.library")
    if not hasattr(library, "import_storm") or not hasattr(library, "open_storm"):
        pytest.skip("replay_data has no CSV importer in this build")
    import csv

    storm = imported_style_storm(catalogue, 5, "bureau")
    readings = tmp_path / "readings.csv"
    with open(readings, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "station_id", "kind", "value", "interval_s"])
        for r in storm.rain:
            writer.writerow([r.event_time.isoformat(), r.station_id, "rain_mm", r.rain_mm, r.interval_s])
        for lv in storm.levels:
            writer.writerow([lv.event_time.isoformat(), lv.station_id, "level_m", lv.level_m, ""])
    stations = tmp_path / "stations.json"
    catalogue.save(stations)
    result = library.import_storm(readings, stations, "bureau-test-2021", root=tmp_path / "cache")
    imported = library.open_storm(result.folder)
    assert "imported" in imported.provenance
    trained = train_flood2(seed=4, n_storms=40, storms=[imported], out_dir=tmp_path / "model", progress=False)
    assert any(g.startswith("bureau-test-2021|") for g in trained.train.gauge)
    ours = series_from_storm(storm)
    theirs = series_from_storm(imported)
    np.testing.assert_allclose(theirs.rain_mm.sum(axis=1), ours.rain_mm.sum(axis=1), atol=1e-6)
