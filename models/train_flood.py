"""Trains the flood models: per river reach, P(level reaches caution / evacuation / danger within h).

* ``flood/3`` (the pipeline's): horizons of 60 and 180 minutes; inputs
  :data:`models.features.FLOOD3_FEATURES`; storms over a small urban basin
  (``kanda-basin``) and a large one (``tama-basin``), convective storms and long
  rains (a typhoon's or a front's); metrics and lead times per basin.
* ``flood/2``: horizons of 30 and 60 minutes; inputs
  :data:`models.features.FLOOD2_FEATURES`; convective storms over ``kanda-basin``.

Both are one monotonic histogram-gradient-boosting classifier per target (six),
merged into one ONNX graph whose output ``probabilities`` [n, 6] is coherent (see
:mod:`models.export`). Inputs: head-room to each threshold, rate of rise over
10 and 30 minutes, upstream (basin) rain over 10 and 60 minutes (and, for
``flood/3``, 3 and 6 hours), and nowcast basin rain for the next 30 and 60 minutes.

Training data: seeded synthetic storms over the station catalogues
(:func:`models.datasets.synthetic_flood_series`) plus any storms passed in —
e.g. a bureau's own records read from the import format — split by storm.
Evaluation: ROC-AUC and Brier score per target on held-out storms, and the lead
time gained over the threshold-only rule (:mod:`models.evaluation`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from replay_data.synth import Storm
from suibou.catalogue import StationCatalogue

from .artifacts_io import fmt, onnx_outputs, table, write_artifacts
from .datasets import (
    NOWCAST_ROW_SIGMA,
    NOWCAST_STORM_SIGMA,
    FloodRows,
    StormSeries,
    flood_dataset,
    series_from_storm,
    synthetic_flood_series,
)
from .evaluation import binary_metrics, lead_times
from .export import CoherentTargets, coherence_for, multi_target_onnx, snap_thresholds_to_float32
from .features import (
    FLOOD2_FEATURES,
    FLOOD2_HORIZONS_MIN,
    FLOOD2_PRIMARY_TARGET,
    FLOOD2_TARGET_TEXT,
    FLOOD2_TARGETS,
    FLOOD2_THRESHOLDS,
    FLOOD3_FEATURES,
    FLOOD3_HORIZONS_MIN,
    FLOOD3_PRIMARY_TARGET,
    FLOOD3_TARGET_TEXT,
    FLOOD3_TARGETS,
    FLOOD4_FEATURES,
    FLOOD5_FEATURES,
)

NAME = "flood"
MONOTONIC: dict[str, int] = {
    "stage_to_caution_m": -1, "stage_to_evacuation_m": -1, "stage_to_danger_m": -1,
    "rise_m_per_h": 1, "rise_10min_m_per_h": 1, "rain_10min_mm": 1, "rain_60min_mm": 1,
    "nowcast_rain_30min_mm": 1, "nowcast_rain_60min_mm": 1, "rain_3h_mm": 1, "rain_6h_mm": 1,
    "upstream_stage_to_danger_m": -1, "upstream_rise_m_per_h": 1, "upstream_travel_min": 0,
    "surface_rainfall_index_mm": 1, "surface_rainfall_index_60min_max_mm": 1, "runoff_index_mm_h": 1,
    "runoff_index_60min_max_mm_h": 1,
}
#: Small, shallow ensembles: six of them must score 10,000 rows in well under 20 ms.
HYPERPARAMETERS: dict[str, Any] = {
    "max_iter": 20, "learning_rate": 0.3, "max_depth": 3, "max_leaf_nodes": 8,
    "early_stopping": False, "random_state": 0,
}
P_ALERT = 0.5
SAMPLE_EVERY_MIN = 5
UNITS = {"stage_to_caution_m": "m", "stage_to_evacuation_m": "m", "stage_to_danger_m": "m",
         "rise_m_per_h": "m/h", "rise_10min_m_per_h": "m/h", "rain_10min_mm": "mm", "rain_60min_mm": "mm",
         "nowcast_rain_30min_mm": "mm", "nowcast_rain_60min_mm": "mm", "rain_3h_mm": "mm", "rain_6h_mm": "mm",
         "upstream_stage_to_danger_m": "m", "upstream_rise_m_per_h": "m/h", "upstream_travel_min": "min",
         "surface_rainfall_index_mm": "mm", "surface_rainfall_index_60min_max_mm": "mm", "runoff_index_mm_h": "mm/h",
         "runoff_index_60min_max_mm_h": "mm/h"}
MEANING = {
    "stage_to_caution_m": "flood-caution level (氾濫注意水位) minus current level",
    "stage_to_evacuation_m": "evacuation-judgement level (避難判断水位) minus current level",
    "stage_to_danger_m": "flood-danger level (氾濫危険水位) minus current level",
    "rise_m_per_h": "(level now − level 30 min ago) × 2",
    "rise_10min_m_per_h": "(level now − level 10 min ago) × 6",
    "rain_10min_mm": "rain in the last 10 min, mean of the reach's (upstream) rain gauges",
    "rain_60min_mm": "rain in the last 60 min, same gauges",
    "nowcast_rain_30min_mm": "nowcast rain in the next 30 min, catchment mean (missing: rain_60min_mm / 2)",
    "nowcast_rain_60min_mm": "nowcast rain in the next 60 min, catchment mean (missing: rain_60min_mm)",
    "rain_3h_mm": "rain in the last 3 h, same gauges as rain_60min_mm",
    "rain_6h_mm": "rain in the last 6 h, same gauges",
    "upstream_stage_to_danger_m": "of the level gauge directly upstream nearest its own flood danger level: "
                                  "its flood danger level minus its level (no gauge upstream: 10)",
    "upstream_rise_m_per_h": "that gauge's rise over the last 30 min (no gauge upstream: 0)",
    "upstream_travel_min": "flood-wave travel time from that gauge to this one (no gauge upstream: 0)",
    "surface_rainfall_index_mm": "largest surface-tank storage among the reach's own grid cells "
                                 "(no fresh grid: the tank's steady state under rain_60min_mm)",
    "surface_rainfall_index_60min_max_mm": "its largest value now or within 60 min under the nowcast "
                                           "(no fresh grid: steady state under the nowcast's hour)",
    "runoff_index_mm_h": "surface runoff of the reach and each reach upstream, translated by its travel time "
                         "and averaged (no fresh grid: steady-state runoff under rain_60min_mm)",
    "runoff_index_60min_max_mm_h": "its largest value now or within 60 min (no fresh grid: as above, "
                                   "under the nowcast's hour)",
}


@dataclasses.dataclass(frozen=True)
class FloodSpec:
    """What distinguishes one flood model version from another: inputs, horizons, training storms.

    Attributes:
        version: ``"2"``, ``"3"`` or ``"4"``.
        features: Input columns, in order.
        horizons_min: Look-aheads of the targets.
        targets: ``{threshold}_{horizon}min`` columns, thresholds outer.
        primary_target: What ``OnnxScorer.predict_proba`` returns.
        target_text: Each target in words.
        catalogues: Default catalogues the synthetic storms are drawn over.
        n_storms: Default number of synthetic storms.
        duration_min: Length of each synthetic storm.
        long_rain_share: Share of long rains among them (the rest are convective storms).
    """

    version: str
    features: tuple[str, ...]
    horizons_min: tuple[int, ...]
    targets: tuple[str, ...]
    primary_target: str
    target_text: dict[str, str]
    catalogues: tuple[str, ...]
    n_storms: int
    duration_min: int
    long_rain_share: float

    @property
    def ref(self) -> str:
        return f"{NAME}/{self.version}"


FLOOD2 = FloodSpec("2", FLOOD2_FEATURES, FLOOD2_HORIZONS_MIN, FLOOD2_TARGETS, FLOOD2_PRIMARY_TARGET,
                   FLOOD2_TARGET_TEXT, ("kanda-basin",), 600, 240, 0.0)
#: A large river answers hours after the rain: storms last 15 hours, so that rows
#: see the Tama's rise (the rows end 3 hours before a storm does).
FLOOD3 = FloodSpec("3", FLOOD3_FEATURES, FLOOD3_HORIZONS_MIN, FLOOD3_TARGETS, FLOOD3_PRIMARY_TARGET,
                   FLOOD3_TARGET_TEXT, ("kanda-basin", "tama-basin"), 400, 900, 0.5)
#: ``flood/3`` with the gauge upstream. A third basin, the Meguro, gives the small urban
#: rivers a network too (the Kanda's catalogued reaches are three headwaters side by side);
#: 600 storms keep 200 per basin.
FLOOD4 = FloodSpec("4", FLOOD4_FEATURES, FLOOD3_HORIZONS_MIN, FLOOD3_TARGETS, FLOOD3_PRIMARY_TARGET,
                   FLOOD3_TARGET_TEXT, ("kanda-basin", "tama-basin", "meguro-basin"), 600, 900, 0.5)
#: ``flood/4`` with the surface rainfall and routed runoff indices of the rain grids; the same storms.
FLOOD5 = FloodSpec("5", FLOOD5_FEATURES, FLOOD3_HORIZONS_MIN, FLOOD3_TARGETS, FLOOD3_PRIMARY_TARGET,
                   FLOOD3_TARGET_TEXT, ("kanda-basin", "tama-basin", "meguro-basin"), 600, 900, 0.5)


@dataclasses.dataclass
class FloodResult:
    model: CoherentTargets
    train: FloodRows
    test: FloodRows
    metrics: dict[str, Any]
    onnx_path: Path
    metadata_path: Path
    card_path: Path


def fit_flood(rows: FloodRows, spec: FloodSpec = FLOOD4, hyperparameters: dict[str, Any] | None = None,
              progress: bool = False) -> CoherentTargets:
    """Fits one monotonic classifier per target and wraps them coherently."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from tqdm import tqdm

    params = {**HYPERPARAMETERS, **(hyperparameters or {})}
    estimators = {}
    for i, target in enumerate(tqdm(spec.targets, desc=f"{spec.ref} targets", disable=not progress, leave=False)):
        y = rows.y[:, i]
        if len(set(y.tolist())) < 2:
            raise ValueError(f"{spec.ref}: target {target} has one class only in the training storms; add storms")
        estimators[target] = snap_thresholds_to_float32(HistGradientBoostingClassifier(
            monotonic_cst=[MONOTONIC[f] for f in spec.features], **params).fit(rows.x, y))
    implied, order = coherence_for(list(FLOOD2_THRESHOLDS), list(spec.horizons_min))
    return CoherentTargets(targets=spec.targets, estimators=estimators, implied_by=implied, order=order)


def fit_flood2(rows: FloodRows, hyperparameters: dict[str, Any] | None = None,
               progress: bool = False) -> CoherentTargets:
    """:func:`fit_flood` for ``flood/2``."""
    return fit_flood(rows, FLOOD2, hyperparameters, progress)


def _lead_times(spec: FloodSpec, p_min: np.ndarray, every_minute: FloodRows, p_alert: float,
                rows: np.ndarray | None = None) -> dict[str, Any]:
    """Lead time of every target's rule over the threshold-only rule, on the rows selected by ``rows``."""
    pick = np.ones(len(every_minute), bool) if rows is None else rows
    leads: dict[str, Any] = {}
    for k, threshold in enumerate(FLOOD2_THRESHOLDS):
        crossed = every_minute.level[pick] >= every_minute.thresholds[pick, k]
        for h in spec.horizons_min:
            column = spec.targets.index(f"{threshold}_{h}min")
            leads[f"{threshold}_{h}min"] = lead_times(every_minute.gauge[pick], every_minute.minute[pick], crossed,
                                                      p_min[pick, column] >= p_alert)
    return leads


def evaluate_flood(model: Any, rows: FloodRows, every_minute: FloodRows, base_rates: np.ndarray,
                   spec: FloodSpec = FLOOD4, p_alert: float = P_ALERT,
                   basins: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Per-target metrics on ``rows`` and lead times on ``every_minute`` (rows each minute).

    ``model`` needs ``predict_targets(x) -> (n, 6)`` (the scikit-learn wrapper or an ONNX scorer).
    ``basins`` (catalogue name -> a mask of ``every_minute``) adds lead times per kind of basin.
    """
    p = model.predict_targets(rows.x)
    per_target = {t: binary_metrics(rows.y[:, i], p[:, i], float(base_rates[i])) for i, t in enumerate(spec.targets)}
    p_min = model.predict_targets(every_minute.x)
    leads = _lead_times(spec, p_min, every_minute, p_alert)
    per_basin = {name: _lead_times(spec, p_min, every_minute, p_alert, mask)
                 for name, mask in (basins or {}).items() if mask.any()}

    # The same storms when no grid reaches the pipeline: the nowcast falls back to persistence,
    # and the grid indices (flood/5) to the tanks' steady state under the last hour's rain.
    def persistence(x: np.ndarray) -> np.ndarray:
        from suibou.runoff import steady_runoff, steady_storage

        x = x.copy()
        rain60 = x[:, spec.features.index("rain_60min_mm")]
        x[:, spec.features.index("nowcast_rain_30min_mm")] = rain60 / 2
        x[:, spec.features.index("nowcast_rain_60min_mm")] = rain60
        for names, stand_in in ((("surface_rainfall_index_mm", "surface_rainfall_index_60min_max_mm"), steady_storage),
                                (("runoff_index_mm_h", "runoff_index_60min_max_mm_h"), steady_runoff)):
            for name in names:
                if name in spec.features:
                    x[:, spec.features.index(name)] = stand_in(rain60)
        return x

    p_pers = model.predict_targets(persistence(rows.x))
    p_pers_min = model.predict_targets(persistence(every_minute.x))
    without: dict[str, Any] = {}
    for name, lead in _lead_times(spec, p_pers_min, every_minute, p_alert).items():
        column = spec.targets.index(name)
        without[name] = {"roc_auc": binary_metrics(rows.y[:, column], p_pers[:, column])["roc_auc"],
                         "lead_mean_min": lead["mean_min"], "lead_median_min": lead["median_min"],
                         "false_alarm_groups": lead["false_alarm_groups"]}
    return {"per_target": per_target, "lead_time": leads, "lead_time_per_basin": per_basin,
            "without_nowcast": without, "p_alert": p_alert}


def evaluate_flood2(model: Any, rows: FloodRows, every_minute: FloodRows, base_rates: np.ndarray,
                    p_alert: float = P_ALERT) -> dict[str, Any]:
    """:func:`evaluate_flood` for ``flood/2``."""
    return evaluate_flood(model, rows, every_minute, base_rates, FLOOD2, p_alert)


def _series(storms: Sequence[Storm | StormSeries]) -> list[StormSeries]:
    return [s if isinstance(s, StormSeries) else series_from_storm(s) for s in storms]


def train_flood(
    spec: FloodSpec = FLOOD4,
    seed: int = 2019,
    n_storms: int | None = None,
    *,
    storms: Sequence[Storm | StormSeries] = (),
    held_out_storms: Sequence[Storm | StormSeries] = (),
    catalogues: Sequence[StationCatalogue] | None = None,
    out_dir: str | Path | None = None,
    held_out_fraction: float = 0.25,
    hyperparameters: dict[str, Any] | None = None,
    progress: bool = True,
) -> FloodResult:
    """Trains, evaluates on held-out storms, exports and documents a flood model.

    Args:
        spec: Which model (:data:`FLOOD4`, the default, :data:`FLOOD3` or :data:`FLOOD2`).
        seed: Seeds the synthetic storms and the nowcast errors.
        n_storms: Synthetic storms (default: the spec's); the last ``held_out_fraction``
            are held out. 0 trains on ``storms`` only.
        storms: Further training storms, e.g. a bureau's imported records
            (any :class:`replay_data.synth.Storm`; readings on any interval).
        held_out_storms: Further evaluation-only storms.
        catalogues: Catalogues the synthetic storms are drawn over, in turn (default: the spec's).
        out_dir: Where to write the artifacts (default ``models/artifacts``).
        hyperparameters: Overrides of :data:`HYPERPARAMETERS`.
        progress: Show tqdm progress bars.
    """
    from tqdm import tqdm

    n_storms = spec.n_storms if n_storms is None else n_storms
    catalogues = list(catalogues or [StationCatalogue.load(name) for name in spec.catalogues])
    version = int(spec.version)
    steps = tqdm(total=5, desc=spec.ref, disable=not progress)
    synthetic = synthetic_flood_series(seed, n_storms, catalogues, duration_min=spec.duration_min,
                                       long_rain_share=spec.long_rain_share, progress=progress)
    n_train = round(n_storms * (1 - held_out_fraction))
    extra_train, extra_test = _series(storms), _series(held_out_storms)
    train_series = synthetic[:n_train] + extra_train
    test_series = synthetic[n_train:] + extra_test
    if not test_series:
        raise ValueError(f"{spec.ref}: no held-out storms to evaluate on")
    steps.update()
    train = flood_dataset(train_series, seed + 1, version=version, sample_every_min=SAMPLE_EVERY_MIN)
    test = flood_dataset(test_series, seed + 2, version=version, sample_every_min=SAMPLE_EVERY_MIN,
                         first_storm_index=len(train_series))
    every_minute = flood_dataset(test_series, seed + 3, version=version, sample_every_min=1,
                                 first_storm_index=len(train_series))
    steps.update()
    model = fit_flood(train, spec, hyperparameters, progress)
    steps.update()
    base_rates = train.y.mean(axis=0)
    basin_of_storm = np.array([s.catalogue.name for s in train_series + test_series], dtype=object)
    basins = {name: basin_of_storm[every_minute.storm] == name for name in sorted(set(basin_of_storm))}
    metrics = evaluate_flood(model, test, every_minute, base_rates, spec, basins=basins if len(basins) > 1 else None)
    onnx_bytes = multi_target_onnx(model, len(spec.features), f"{NAME}_{spec.version}")
    (onnx_p,) = onnx_outputs(onnx_bytes, test.x, ["probabilities"])
    parity = float(np.abs(onnx_p - model.predict_targets(test.x)).max())
    if parity > 1e-5:
        raise RuntimeError(f"{spec.ref}: ONNX and scikit-learn disagree by {parity:g} on the held-out rows")
    metrics["onnx_parity_max_abs_diff"] = parity
    steps.update()

    n_imported = sum(s.provenance != "synthetic" for s in extra_train)
    held_out_per_basin = {name: int(sum(s.catalogue.name == name for s in test_series)) for name in basins}
    metadata = {
        "kind": "multi_target",
        "input_name": "features",
        "features": list(spec.features),
        "units": {f: UNITS[f] for f in spec.features},
        "targets": list(spec.targets),
        "horizons_min": list(spec.horizons_min),
        "primary_target": spec.primary_target,
        "target": spec.target_text[spec.primary_target],
        "target_text": spec.target_text,
        "outputs": {"probabilities": "float32 [n, 6]; column j = P(targets[j]), coherent across targets"},
        "estimator": "six HistGradientBoostingClassifier (scikit-learn) with monotonic constraints, "
                     "one per target, merged into one ONNX graph with a Max chain for coherence",
        "hyperparameters": {**HYPERPARAMETERS, **(hyperparameters or {})},
        "monotonic": {f: MONOTONIC[f] for f in spec.features},
        "attribution": {
            "method": "occlusion",
            "baseline": dict(zip(spec.features, map(float, np.median(train.x, axis=0)))),
            "baseline_note": "median training row (a typical, mostly quiet, river)",
        },
        "training_data": {
            "kind": "synthetic storms (replay_data.synth), not observed data"
                    + (f", plus {len(extra_train)} supplied storm(s)" if extra_train else ""),
            "catalogues": [c.name for c in catalogues],
            "seed": seed,
            "n_synthetic_storms": n_storms,
            "storm_minutes": spec.duration_min,
            "long_rain_share": spec.long_rain_share,
            "n_train_storms": len(train_series),
            "n_held_out_storms": len(test_series),
            "n_held_out_storms_per_basin": held_out_per_basin,
            "n_supplied_train_storms": len(extra_train),
            "n_supplied_non_synthetic_train_storms": n_imported,
            "n_supplied_held_out_storms": len(extra_test),
            "n_train_rows": len(train),
            "n_held_out_rows": len(test),
            "positive_rate_train": dict(zip(spec.targets, map(float, base_rates))),
            "sample_every_min": SAMPLE_EVERY_MIN,
            "nowcast_error": {"storm_sigma": NOWCAST_STORM_SIGMA, "row_sigma_30min": NOWCAST_ROW_SIGMA[30],
                              "row_sigma_60min": NOWCAST_ROW_SIGMA[60]},
        },
        "metrics_held_out": {
            "per_target": metrics["per_target"],
            "lead_time": _without_gains(metrics["lead_time"]),
            "lead_time_per_basin": {b: _without_gains(m) for b, m in metrics["lead_time_per_basin"].items()},
            "without_nowcast": metrics["without_nowcast"],
            "p_alert": P_ALERT,
            "onnx_parity_max_abs_diff": parity,
        },
    }
    card = _card_v3 if spec.version in ("3", "4", "5") else _card
    onnx_path, meta_path, card_path = write_artifacts(out_dir, NAME, spec.version, onnx_bytes, metadata, card)
    steps.update()
    steps.close()
    return FloodResult(model=model, train=train, test=test, metrics=metrics, onnx_path=onnx_path,
                       metadata_path=meta_path, card_path=card_path)


def _without_gains(leads: dict[str, Any]) -> dict[str, Any]:
    return {t: {k: v for k, v in m.items() if k != "gains_min"} for t, m in leads.items()}


def train_flood2(seed: int = 2019, n_storms: int = 600, **options: Any) -> FloodResult:
    """:func:`train_flood` for the legacy ``flood/2``."""
    return train_flood(FLOOD2, seed, n_storms, **options)


def train_flood3(seed: int = 2019, n_storms: int | None = None, **options: Any) -> FloodResult:
    """:func:`train_flood` for ``flood/3``."""
    return train_flood(FLOOD3, seed, n_storms, **options)


def train_flood5(seed: int = 2019, n_storms: int | None = None, **options: Any) -> FloodResult:
    """``flood/5``: :func:`train_flood` with :data:`FLOOD5`."""
    return train_flood(FLOOD5, seed, n_storms, **options)


def train_flood4(seed: int = 2019, n_storms: int | None = None, **options: Any) -> FloodResult:
    """:func:`train_flood` for ``flood/4``."""
    return train_flood(FLOOD4, seed, n_storms, **options)


def _lead_table(leads: dict[str, Any]) -> str:
    return table([[f"`{t}`", v["n_events"], fmt(v["mean_min"], 1), fmt(v["median_min"], 1),
                   fmt(v["share_earlier"], 2), f"{v['false_alarm_groups']} / {v['n_no_event_groups']}"]
                  for t, v in leads.items()],
                 ["alert on", "crossings", "mean gain (min)", "median gain (min)", "share earlier",
                  "false alarms / gauge-storms without a crossing"])


def _tables(meta: dict[str, Any]) -> dict[str, str]:
    """The tables both flood cards show: inputs, outputs, metrics, lead times, without a nowcast."""
    m = meta["metrics_held_out"]
    direction = {-1: "can only lower P", 1: "can only raise P", 0: "either way"}
    return {
        "inputs": table([[i, f"`{f}`", meta["units"][f], MEANING[f], direction[meta["monotonic"][f]]]
                         for i, f in enumerate(meta["features"])], ["#", "name", "unit", "definition", "larger value"]),
        "outputs": table([[j, f"`{t}`", meta["target_text"][t]] for j, t in enumerate(meta["targets"])],
                         ["column", "target", "event"]),
        "metrics": table([[f"`{t}`", fmt(v["roc_auc"]), fmt(v["brier"]), fmt(v["brier_climatology"]),
                           fmt(v["positive_rate"], 3)] for t, v in m["per_target"].items()],
                         ["target", "ROC-AUC", "Brier", "Brier of base rate", "positives"]),
        "leads": _lead_table(m["lead_time"]),
        "no_nowcast": table([[f"`{t}`", fmt(v["roc_auc"]), fmt(v["lead_mean_min"], 1), fmt(v["lead_median_min"], 1),
                              v["false_alarm_groups"]] for t, v in m["without_nowcast"].items()],
                            ["target", "ROC-AUC", "mean gain (min)", "median gain (min)", "false alarms"]),
    }


def _card(meta: dict[str, Any]) -> str:
    d = meta["training_data"]
    m = meta["metrics_held_out"]
    tables = _tables(meta)
    inputs, outputs, metrics = tables["inputs"], tables["outputs"], tables["metrics"]
    leads, no_nowcast = tables["leads"], tables["no_nowcast"]
    return f"""# Model card: `{meta['model_ref']}` — flood thresholds within 30 and 60 minutes

**What it predicts.** For one river reach at one time, six probabilities: that
the water level at the reach's gauge reaches flood caution (氾濫注意水位, alert
level 2), evacuation judgement (避難判断水位, level 3) or flood danger
(氾濫危険水位, level 4) at some reading within the next 30 and within the next
60 minutes. They are *coherent*: P(caution) ≥ P(evacuation) ≥ P(danger) at each
horizon, and P(within 60) ≥ P(within 30).

**Estimator.** {meta['estimator']}. File `{meta['onnx_file']}` ({meta['onnx_bytes']} bytes),
sha256 `{meta['sha256']}`.

## Inputs

One float32 tensor named `features`, shape [n, {len(meta['features'])}], columns in this order.
Compute them with `models.flood2_features` / `models.flood2_feature_matrix`, never by hand.

{inputs}

## Outputs

`probabilities`, float32 [n, 6]:

{outputs}

`OnnxScorer.predict_targets(rows)` returns all six; `predict_proba(rows)` returns
`{meta['primary_target']}` (the same event as `flood/1`).

## Training data

Entirely **synthetic** unless storms were supplied: {d['n_synthetic_storms']} seeded random storms
(seed {d['seed']}) from `replay_data.synth` over {', '.join(f'`{c}`' for c in d['catalogues'])} (invented gauges
and thresholds on real rivers): 1–3 moving Gaussian rain cells, peaks from a few to
~160 mm/h, an SCS curve-number loss, a Nash-cascade routing and a rating curve. Rows come from
the *reported* readings (0.5 mm tipping-bucket rain, level noise, 1 cm rounding), one per gauge every
{d['sample_every_min']} minutes. Supplied storms (e.g. a bureau's records in the import format):
{d['n_supplied_train_storms']} for training, {d['n_supplied_held_out_storms']} held out.
Storms were split, not rows: {d['n_train_storms']} storms ({d['n_train_rows']} rows) for training,
{d['n_held_out_storms']} held-out storms ({d['n_held_out_rows']} rows) for the metrics.

**Nowcast rain in training** is not an archived nowcast: it is the rain the gauges
recorded over the next 30/60 minutes times a log-normal error (one factor per storm
and gauge, σ = {d['nowcast_error']['storm_sigma']}; one per row, σ = {d['nowcast_error']['row_sigma_30min']} for 30 min
and {d['nowcast_error']['row_sigma_60min']} for 60 min). A real nowcast can be worse, especially for cells that
form or die within the hour.

## Metrics on held-out synthetic storms

{metrics}

## Lead time gained over the threshold-only rule

Threshold-only rule: alert when the observed level reaches the threshold. Model rule:
alert when the target's probability is at least {m['p_alert']}. An officer using both alerts at
whichever comes first; the gain is how much earlier that is (0 when the model was not
earlier). Evaluated every minute of the held-out storms; only crossings after the first
evaluated minute count.

{leads}

**Without a nowcast** (the pipeline passes none; the nowcast features fall back to
persistence of the last hour's rain), on the same held-out storms:

{no_nowcast}

ONNX vs scikit-learn on the held-out rows: max abs difference {m['onnx_parity_max_abs_diff']:.2e}.

## Limits

* Trained and evaluated on synthetic storms from one simple runoff model; the metrics say how
  well it imitates the synthesiser, not how well it forecasts a real river. Retrain on the
  bureau's own records (`train_flood2(storms=...)`) before relying on it.
* The nowcast stand-in above is optimistic about nowcast skill; the table "without a
  nowcast" shows what is left when none arrives.
* Boosted trees: step functions, flat outside the training range; monotonic in every input.
  No upstream level gauges, tides, sluice operations or backwater.
* Assumes 1-minute level readings with a 30-minute history; with missing history the rise
  counts as 0, which understates risk on a rising river.
* Threshold alerts from observed levels remain the primary trigger; these probabilities are
  earlier, supporting evidence.
"""


def _card_v3(meta: dict[str, Any]) -> str:
    d = meta["training_data"]
    m = meta["metrics_held_out"]
    tables = _tables(meta)
    per_basin = "\n\n".join(
        f"**`{basin}`** ({d['n_held_out_storms_per_basin'].get(basin, 0)} held-out storms):\n\n{_lead_table(leads)}"
        for basin, leads in m["lead_time_per_basin"].items())
    v = meta["model_ref"].partition("/")[2]
    upstream = "upstream_travel_min" in meta["features"]
    basins = ("a small urban basin (the Kanda and its neighbours, catchments of 8–12 km², answering rain "
              "within the hour) and a large one (the Tama and its tributaries, catchments of 155–1,130 km², "
              "answering two to six hours later)")
    if "meguro-basin" in d["catalogues"]:
        basins += (", and a second small urban basin with a river network (the Meguro, three reaches "
                   "of 20–40 km² one below the other)")
    runoff = ("an SCS curve-number loss, a Nash-cascade routing per reach and a rating curve"
              if not upstream else
              "an SCS curve-number loss, a Nash-cascade response per reach's own part of the catchment, "
              "the discharge from the reaches upstream carried down the river network for the catalogue's "
              "travel times (`replay_data.synth.river_discharge`), and a rating curve")
    network = ("""* The synthesiser gives each gauged reach its whole upstream catchment's rain through one
  Nash cascade; it has no river network, so a crest does not travel from one gauge to the
  next. The model has no upstream gauges and no routed runoff index either: its lead on a
  large river comes from the 3- and 6-hour basin rain alone.""" if not upstream else
               """* The river network is a tree of reaches with one travel time each and one linear
  reservoir of channel storage; no backwater, no floodplain storage, no dam operation. The
  model sees the gauge directly upstream only (not two reaches up) and has no routed runoff
  index from the rain grids: on a long river its look-ahead is bounded by one reach's travel
  time plus what the basin rain says.""")
    if "runoff_index_mm_h" in meta["features"]:
        network = """* The river network is a tree of reaches with one travel time each and one linear
  reservoir of channel storage; no backwater, no floodplain storage, no dam operation. The
  model sees the gauge directly upstream only (not two reaches up); the runoff index carries
  the rain of every reach upstream down the network, each translated by its travel time.
* The surface rainfall and runoff indices are suibou's own (`suibou.runoff`): one surface
  tank per cell with suibou's parameters (not JMA's, which are not published in
  machine-readable form), routed reach by reach rather than cell by cell, each catchment
  weighing alike. In training no grid exists: each reach's own rain gauges stand for its
  cells, with a grid every 5 minutes and the nowcast's stand-in errors; in the pipeline
  they are the grid's cells at those gauges. In 10 % of the training gauge-storms no grid
  arrives and the indices take their stand-in (the tanks' steady state under the last
  hour's rain), as in the pipeline when no grid is fresh."""
    monotone = ("" if not upstream else
                " but the travel time. That one takes only the catalogues' few values (10–80 min), so the\n"
                "  trees may read it as which river a row is on as much as how far away the gauge upstream is")
    return f"""# Model card: `{meta['model_ref']}` — flood thresholds within 1 and 3 hours

**What it predicts.** For one river reach at one time, six probabilities: that
the water level at the reach's gauge reaches flood caution (氾濫注意水位, alert
level 2), evacuation judgement (避難判断水位, level 3) or flood danger
(氾濫危険水位, level 4) at some reading within the next 60 and within the next
180 minutes. They are *coherent*: P(caution) ≥ P(evacuation) ≥ P(danger) at each
horizon, and P(within 180) ≥ P(within 60).

**How the pipeline uses it** (docs/architecture.md, "Flood forecast levels"):
flood warning (level 3) when flood danger is expected within 3 hours or
evacuation judgement within the hour; flood danger (level 4) when flood danger
is expected within the hour. Levels from the observed thresholds stand beside
these and level 5 comes from observations only.

**Estimator.** {meta['estimator']}. File `{meta['onnx_file']}` ({meta['onnx_bytes']} bytes),
sha256 `{meta['sha256']}`.

## Inputs

One float32 tensor named `features`, shape [n, {len(meta['features'])}], columns in this order.
Compute them with `models.flood{v}_features` / `models.flood{v}_feature_matrix`, never by hand.

{tables['inputs']}

## Outputs

`probabilities`, float32 [n, 6]:

{tables['outputs']}

`OnnxScorer.predict_targets(rows)` returns all six; `predict_proba(rows)` returns
`{meta['primary_target']}`.

## Training data

Entirely **synthetic** unless storms were supplied: {d['n_synthetic_storms']} seeded random storms
(seed {d['seed']}) of {d['storm_minutes']} minutes from `replay_data.synth`, in turn over
{', '.join(f'`{c}`' for c in d['catalogues'])}: {basins}. Invented gauges and
thresholds on real rivers. {d['long_rain_share']:.0%} of the storms are long rains (1–3 bands
10–40 km wide, 5–60 mm/h for 3–10 hours, like a typhoon's or a front's), the rest convective
storms (1–3 moving cells, peaks from a few to ~160 mm/h). Runoff: {runoff}. Rows come from the *reported* readings
(0.5 mm tipping-bucket rain, level noise, 1 cm rounding), one per gauge every
{d['sample_every_min']} minutes. Storms were split, not rows: {d['n_train_storms']} storms
({d['n_train_rows']} rows) for training, {d['n_held_out_storms']} held-out storms
({d['n_held_out_rows']} rows) for the metrics. No stored storm of the drills (Hagibis 2019,
Suginami 2005, the quiet day) is among them: those are the evaluation (bench/skill.md).

**Nowcast rain in training** is not an archived nowcast: it is the rain the gauges
recorded over the next 30/60 minutes times a log-normal error (one factor per storm
and gauge, σ = {d['nowcast_error']['storm_sigma']}; one per row, σ = {d['nowcast_error']['row_sigma_30min']} for 30 min
and {d['nowcast_error']['row_sigma_60min']} for 60 min).

## Metrics on held-out synthetic storms

{tables['metrics']}

## Lead time gained over the threshold-only rule

Threshold-only rule: alert when the observed level reaches the threshold. Model rule:
alert when the target's probability is at least {m['p_alert']}. The gain is how much earlier
whichever comes first is (0 when the model was not earlier); a false alarm is a gauge-storm
where the model rule alerts and the threshold is never reached. Every minute of the held-out
storms; only crossings after the first evaluated minute count.

All held-out storms:

{tables['leads']}

Per kind of basin:

{per_basin}

**Without a nowcast** (the features fall back to persistence of the last hour's rain), all
held-out storms:

{tables['no_nowcast']}

ONNX vs scikit-learn on the held-out rows: max abs difference {m['onnx_parity_max_abs_diff']:.2e}.

## Limits

* Trained and evaluated on synthetic storms from one simple runoff model; the metrics say how
  well it imitates the synthesiser, not how well it forecasts a real river. Retrain on the
  bureau's own records (`train_flood{v}(storms=...)`) before relying on it.
{network}
* A 3-hour horizon on a river that answers within the hour is mostly a rain forecast: on the
  small basins the 180-minute targets alert on rain that may not come.
* Boosted trees: step functions, flat outside the training range; monotonic in every input{monotone}.
  No tides, sluice operations or backwater.
* Assumes 1-minute level readings with a 30-minute history and six hours of rain history;
  a pipeline that has just started has less, which understates the 3- and 6-hour rain.
"""
