"""Trains ``landslide/1``: per zone / 1 km cell, P(snake line on or beyond the critical line within 2 h).

Alongside the model stands the physically based criterion itself
(:func:`models.features.landslide_criterion`, JMA's rule: the snake-line point
now or expected within 2 hours, stepping the three tanks with the nowcast rain,
is on or beyond the critical line), reported for every zone so officers see
both. Its margin is also one of the model's inputs (``cl_margin_2h``).

Training data: seeded synthetic long rain events at a few zones each
(:func:`models.datasets.draw_landslide_storm`), each zone with its own invented
critical line, plus any supplied storms (each rain gauge as a zone with the
default line, e.g. a bureau's imported records). Split by event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from replay_data.synth import Storm
from suibou.hydrology import DEFAULT_CRITICAL_LINE

from .artifacts_io import fmt, onnx_outputs, table, write_artifacts
from .datasets import (
    NOWCAST_ROW_SIGMA,
    NOWCAST_STORM_SIGMA,
    LandslideRows,
    StormSeries,
    ZoneSeries,
    landslide_dataset,
    synthetic_landslide_series,
    zones_from_storm,
)
from .evaluation import binary_metrics, contingency, lead_times
from .export import binary_onnx, snap_thresholds_to_float32
from .features import LANDSLIDE_FEATURES, LANDSLIDE_TARGET, MARGIN_CLIP

NAME, VERSION = "landslide", "1"
MONOTONIC: dict[str, int] = dict.fromkeys(LANDSLIDE_FEATURES, 1)
HYPERPARAMETERS: dict[str, Any] = {
    "max_iter": 60, "learning_rate": 0.15, "max_depth": 5, "max_leaf_nodes": 16,
    "early_stopping": False, "random_state": 0,
}
P_ALERT = 0.5
UNITS = {"rain_10min_mm": "mm", "rain_60min_mm": "mm", "swi_mm": "mm", "swi_change_1h_mm": "mm",
         "nowcast_rain_60min_mm": "mm", "cl_margin": "1", "cl_margin_2h": "1"}
MEANING = {
    "rain_10min_mm": "rain in the last 10 min over the zone",
    "rain_60min_mm": "rain in the last 60 min over the zone (the snake line's y)",
    "swi_mm": "soil water index now (JMA three tanks, 10-min steps; the snake line's x)",
    "swi_change_1h_mm": "soil water index now minus 60 min ago",
    "nowcast_rain_60min_mm": "nowcast rain over the zone in the next 60 min (missing: rain_60min_mm)",
    "cl_margin": "r60 / r60_at_dry + swi / swi_at_no_rain − 1 against the zone's critical line now "
                 f"(≥ 0: beyond it; clipped to {list(MARGIN_CLIP)}, lower bound below the SWI floor)",
    "cl_margin_2h": "largest margin now, +1 h and +2 h with the nowcast rain (the physically based criterion)",
}


@dataclasses.dataclass
class LandslideResult:
    model: Any
    train: LandslideRows
    test: LandslideRows
    metrics: dict[str, Any]
    onnx_path: Path
    metadata_path: Path
    card_path: Path


def _zones(storms: Sequence[Storm | StormSeries | ZoneSeries]) -> list[ZoneSeries]:
    return [s if isinstance(s, ZoneSeries) else zones_from_storm(s) for s in storms]


def evaluate_landslide(p: np.ndarray, rows: LandslideRows, base_rate: float,
                       p_alert: float = P_ALERT) -> dict[str, Any]:
    """Model metrics, the physically based criterion's skill, and lead times over the threshold-only rule."""
    physical = rows.margin_2h >= 0
    minutes = rows.step * 10
    crossed = rows.margin_now >= 0
    return {
        "model": {**binary_metrics(rows.y, p, base_rate), **contingency(rows.y, p >= p_alert)},
        "physical_criterion": contingency(rows.y, physical),
        "lead_time_model": lead_times(rows.zone, minutes, crossed, p >= p_alert),
        "lead_time_physical_criterion": lead_times(rows.zone, minutes, crossed, physical),
        "p_alert": p_alert,
    }


def train_landslide(
    seed: int = 2013,
    n_storms: int = 500,
    *,
    storms: Sequence[Storm | StormSeries | ZoneSeries] = (),
    held_out_storms: Sequence[Storm | StormSeries | ZoneSeries] = (),
    out_dir: str | Path | None = None,
    held_out_fraction: float = 0.25,
    hyperparameters: dict[str, Any] | None = None,
    progress: bool = True,
) -> LandslideResult:
    """Trains, evaluates on held-out events, exports and documents ``landslide/1``.

    Args:
        seed: Seeds the synthetic events and the nowcast errors.
        n_storms: Synthetic events (4 zones each); the last ``held_out_fraction`` are held out.
        storms: Further training storms (imported records: each rain gauge is a
            zone with the default critical line, dry at the start), or prepared
            :class:`~models.datasets.ZoneSeries`.
        held_out_storms: Further evaluation-only storms.
        out_dir: Where to write the artifacts (default ``models/artifacts``).
        hyperparameters: Overrides of :data:`HYPERPARAMETERS`.
        progress: Show tqdm progress bars.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from tqdm import tqdm

    steps = tqdm(total=4, desc="landslide/1", disable=not progress)
    synthetic = synthetic_landslide_series(seed, n_storms, progress=progress)
    n_train = round(n_storms * (1 - held_out_fraction))
    extra_train, extra_test = _zones(storms), _zones(held_out_storms)
    train_events = synthetic[:n_train] + extra_train
    test_events = synthetic[n_train:] + extra_test
    if not test_events:
        raise ValueError("landslide/1: no held-out events to evaluate on")
    train = landslide_dataset(train_events, seed + 1)
    test = landslide_dataset(test_events, seed + 2, first_storm_index=len(train_events))
    if len(set(train.y.tolist())) < 2:
        raise ValueError("landslide/1: the training events never (or always) cross the critical line")
    steps.update()
    params = {**HYPERPARAMETERS, **(hyperparameters or {})}
    model = HistGradientBoostingClassifier(monotonic_cst=[MONOTONIC[f] for f in LANDSLIDE_FEATURES], **params)
    snap_thresholds_to_float32(model.fit(train.x, train.y))
    steps.update()
    p = model.predict_proba(test.x)[:, 1]
    metrics = evaluate_landslide(p, test, float(train.y.mean()))
    onnx_bytes = binary_onnx(model, len(LANDSLIDE_FEATURES), f"{NAME}_{VERSION}")
    (onnx_p,) = onnx_outputs(onnx_bytes, test.x, ["probabilities"])
    parity = float(np.abs(onnx_p[:, 1] - p).max())
    if parity > 1e-5:
        raise RuntimeError(f"landslide/1: ONNX and scikit-learn disagree by {parity:g} on the held-out rows")
    metrics["onnx_parity_max_abs_diff"] = parity
    steps.update()
    line = DEFAULT_CRITICAL_LINE
    metadata = {
        "kind": "binary",
        "input_name": "features",
        "features": list(LANDSLIDE_FEATURES),
        "units": UNITS,
        "targets": ["snake_line_beyond_cl_120min"],
        "primary_target": "snake_line_beyond_cl_120min",
        "target": LANDSLIDE_TARGET,
        "outputs": {"probabilities": "float32 [n, 2]; column 1 = P(target)", "label": "int64 [n]"},
        "estimator": "HistGradientBoostingClassifier with monotonic constraints (scikit-learn)",
        "hyperparameters": params,
        "monotonic": MONOTONIC,
        "attribution": {
            "method": "occlusion",
            "baseline": dict(zip(LANDSLIDE_FEATURES, map(float, np.median(train.x, axis=0)))),
            "baseline_note": "median training row",
        },
        "default_critical_line": {**dataclasses.asdict(line)},
        "soil_water_index": "JMA three-tank model (suibou.hydrology), stepped every 10 minutes with 10-minute rain",
        "training_data": {
            "kind": "synthetic rain events at synthetic zones, not observed data"
                    + (f", plus {len(extra_train)} supplied storm(s)" if extra_train else ""),
            "seed": seed,
            "n_synthetic_events": n_storms,
            "zones_per_synthetic_event": 4,
            "n_train_events": len(train_events),
            "n_held_out_events": len(test_events),
            "n_supplied_train_storms": len(extra_train),
            "n_supplied_held_out_storms": len(extra_test),
            "n_train_rows": len(train),
            "n_held_out_rows": len(test),
            "positive_rate_train": float(train.y.mean()),
            "sample_every_min": 10,
            "nowcast_error": {"storm_sigma": NOWCAST_STORM_SIGMA, "row_sigma_60min": NOWCAST_ROW_SIGMA[60]},
        },
        "metrics_held_out": {
            "model": metrics["model"],
            "physical_criterion": metrics["physical_criterion"],
            "lead_time_model": {k: v for k, v in metrics["lead_time_model"].items() if k != "gains_min"},
            "lead_time_physical_criterion": {k: v for k, v in metrics["lead_time_physical_criterion"].items()
                                             if k != "gains_min"},
            "p_alert": P_ALERT,
            "onnx_parity_max_abs_diff": parity,
        },
    }
    onnx_path, meta_path, card_path = write_artifacts(out_dir, NAME, VERSION, onnx_bytes, metadata, _card)
    steps.update()
    steps.close()
    return LandslideResult(model=model, train=train, test=test, metrics=metrics, onnx_path=onnx_path,
                           metadata_path=meta_path, card_path=card_path)


def _card(meta: dict[str, Any]) -> str:
    d = meta["training_data"]
    m = meta["metrics_held_out"]
    cl = meta["default_critical_line"]
    inputs = table([[i, f"`{f}`", meta["units"][f], MEANING[f]] for i, f in enumerate(meta["features"])],
                   ["#", "name", "unit", "definition (all: larger value can only raise P)"])
    mm, pc = m["model"], m["physical_criterion"]
    skill = table([
        [f"`{meta['model_ref']}`, P ≥ {m['p_alert']}", fmt(mm["roc_auc"]), fmt(mm["brier"]), fmt(mm["pod"], 3),
         fmt(mm["far"], 3)],
        ["physically based criterion (margin within 2 h ≥ 0)", "—", "—", fmt(pc["pod"], 3), fmt(pc["far"], 3)],
    ], ["rule", "ROC-AUC", "Brier", "probability of detection", "false-alarm ratio"])
    lt = []
    for label, key in (("model", "lead_time_model"), ("physically based criterion", "lead_time_physical_criterion")):
        v = m[key]
        lt.append([label, v["n_events"], fmt(v["mean_min"], 1), fmt(v["median_min"], 1), fmt(v["share_earlier"], 2),
                   f"{v['false_alarm_groups']} / {v['n_no_event_groups']}"])
    leads = table(lt, ["alert on", "crossings", "mean gain (min)", "median gain (min)", "share earlier",
                       "false alarms / zone-events without a crossing"])
    held_out = fmt(mm["positive_rate"], 3)
    return f"""# Model card: `{meta['model_ref']}` — snake line crosses the critical line within 2 hours

**What it predicts.** For one landslide warning zone or 1 km cell at one time: the
probability that the snake-line point — 60-minute rain against the soil water index
(土壌雨量指数) — is on or beyond the zone's critical line (CL) at some 10-minute step in
the next 2 hours. That is the event JMA's landslide warning (土砂災害警戒情報, alert
level 4 equivalent) is issued for.

**Beside it, the physically based criterion** (`models.landslide_criterion`,
`suibou.hydrology.snake_line_outlook`): step the three tanks 1 and 2 hours ahead with
the nowcast's 60-minute rain (the second hour by persistence) and check the three
points against the CL. The pipeline should publish both; they disagree mostly near the
line, where the model adds calibrated probabilities.

**Estimator.** {meta['estimator']}. File `{meta['onnx_file']}` ({meta['onnx_bytes']} bytes),
sha256 `{meta['sha256']}`.

## Inputs

One float32 tensor named `features`, shape [n, {len(meta['features'])}], columns in this order.
Compute them with `models.landslide_features` / `models.landslide_feature_matrix` from the
zone's tank state (`suibou.hydrology.step_tanks(state, rain_10min_mm, dt_h=1/6)` every 10 minutes).

{inputs}

Output `probabilities` [n, 2]: column 1 is P(target).

**Critical line.** JMA draws each cell's CL from past disasters; those lines are not
used here. The default line is **invented**: straight from {cl['r60_at_dry_mm']:g} mm/h at
SWI 0 to SWI {cl['swi_at_no_rain_mm']:g} mm at no rain, nothing below SWI {cl['swi_floor_mm']:g} mm.
Give each zone its own `CriticalLine`; the model reads the margin to whatever line it is given.

## Training data

Entirely **synthetic** unless storms were supplied: {d['n_synthetic_events']} seeded events (seed {d['seed']}),
each 12 hours at {d['zones_per_synthetic_event']} zones a few km apart: a broad rain band (up to 35 mm/h,
typhoon-like) plus 0–3 moving convective cells (up to 130 mm/h, the scale of Izu Ōshima's
122.5 mm hour in 2013), over a random antecedent wetness (an earlier event of 15–280 mm
ending 0–48 h before), reported through a 0.5 mm tipping bucket. Every zone has its own
invented critical line (r60 at SWI 0: 60–130 mm; SWI at no rain: 180–380 mm). Supplied
storms: {d['n_supplied_train_storms']} for training, {d['n_supplied_held_out_storms']} held out (each rain gauge a zone,
the default line, dry at the start). Split by event: {d['n_train_events']} events ({d['n_train_rows']} rows)
for training, {d['n_held_out_events']} held out ({d['n_held_out_rows']} rows). One row per zone every
{d['sample_every_min']} minutes. Positive rate (train): {d['positive_rate_train']:.3f}.

Nowcast rain in training: the recorded rain of the next 60 minutes times a log-normal
error (σ = {d['nowcast_error']['storm_sigma']} per zone-event, {d['nowcast_error']['row_sigma_60min']} per row).

## Metrics on held-out synthetic events

{skill}

Brier score of the constant base rate: {fmt(mm['brier_climatology'])}; positives held out: {held_out}.

## Lead time gained over the threshold-only rule

Threshold-only rule: alert when the *observed* snake-line point is on or beyond the CL now.
Gain: how much earlier an officer who also watches the model (P ≥ {m['p_alert']}) — or the
physically based 2-hour criterion — would alert.

{leads}

ONNX vs scikit-learn on the held-out rows: max abs difference {m['onnx_parity_max_abs_diff']:.2e}.

## Limits

* Synthetic events and invented critical lines: the metrics say how well the model
  imitates the criterion under the synthetic nowcast errors, not how well it anticipates
  real slope failures. Real CLs and real nowcasts must replace them before use.
* The soil water index is the JMA tank model with its nationwide parameters; local
  geology, snowmelt and groundwater are not represented (the CL is where JMA puts them).
* The second hour of the outlook (the `cl_margin_2h` feature) assumes the nowcast's hour
  persists. The pipeline's level-4 warning does not: it takes the median of the newest
  three nowcast issues for the first hour and the observed last hour for the second
  (`pipelines.landslide.warning_outlook`; why: docs/skill.md, "Landslide warning timing").
* Izu Ōshima-type events (824 mm in 24 h) exceed the 12-hour synthetic events in total;
  beyond the training range the trees stay flat (the criterion does not).
"""
