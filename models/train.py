"""Training entry point (``python -m models.train``, ``suibou models train``) and the legacy ``flood/1``.

The current models are trained by :mod:`models.train_flood` (``flood/2``),
:mod:`models.train_landslide` (``landslide/1``) and :mod:`models.train_camera`
(``camera/1``); :func:`main` runs them. What follows describes ``flood/1``,
which stays loadable for pipelines that still use it.

``flood/1`` is trained on synthetic storms and exported to ONNX.

Training data: many seeded random storms (:func:`replay_data.synth.random_storm_params`:
one to three moving rain cells from drizzle to extreme downpours, varied size,
speed and track) over the Kanda-basin catalogue, run through the synthesiser.
For every level gauge, every 5 minutes of each storm (after the first hour and
before the last), the features of :mod:`models.features` are computed from the
*reported* readings — tipping-bucket rain and noisy, rounded levels, exactly as
the pipeline will see them — and labelled with the target (danger reached in
the next 60 minutes). Storms, not rows, are split into training and held-out
sets, so the metrics are on storms the model never saw.

The model is scikit-learn's histogram gradient boosting with monotonic
constraints (:data:`MONOTONIC`): the probability can only rise as the level
nears or passes danger, as the river rises faster, or as more rain has fallen.
A plain logistic regression scored clearly worse on held-out storms, because
the risk depends on head-room *relative to* the rate of rise; an unconstrained
polynomial logistic model scored well but was not monotonic in the level.
skl2onnx converts the trees to an ONNX TreeEnsemble (parity with scikit-learn
is checked by the tests). Artifacts, in ``models/artifacts``:

* ``flood-1.onnx`` — input ``features`` float32 [n, 4]; outputs ``label`` and
  ``probabilities`` [n, 2] (no ZipMap);
* ``flood-1.json`` — name, version, features, target, sha256 of the ONNX file,
  metrics, the baseline row used for attributions;
* ``flood-1.md`` — the model card.

Run ``python -m models.train flood1`` to rebuild them.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from replay_data.synth import random_storm_params, simulate
from suibou.catalogue import StationCatalogue

from .features import FLOOD_FEATURES, FLOOD_TARGET, HORIZON_MIN, RISE_WINDOW_MIN, flood_feature_matrix

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
MODEL_NAME = "flood"
MODEL_VERSION = "1"
SAMPLE_EVERY_MIN = 5
#: Direction each feature may move the probability: -1 falling, +1 rising.
MONOTONIC: dict[str, int] = {
    "stage_to_danger_m": -1, "rise_m_per_h": 1, "rain_10min_mm": 1, "rain_60min_mm": 1,
}
HYPERPARAMETERS: dict[str, Any] = {
    "max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 15, "early_stopping": False, "random_state": 0,
}
STORM_MINUTES = 240


@dataclasses.dataclass
class TrainResult:
    """What training produced, for tests and the model card."""

    model: Any  # the fitted scikit-learn classifier
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    metrics: dict[str, float]
    onnx_path: Path
    metadata_path: Path
    card_path: Path


def _rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of ``values[t - window + 1 .. t]`` for each t (shorter at the start)."""
    c = np.cumsum(values)
    out = c.copy()
    out[window:] = c[window:] - c[:-window]
    return out


def storm_rows(catalogue: StationCatalogue, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and labels for every level gauge of one synthetic storm.

    Returns:
        ``(x, y)``: float32 (n, 4) in :data:`FLOOD_FEATURES` order, and 0/1 labels.
    """
    if params.step_s != 60:
        raise ValueError("training rows assume 1-minute readings")
    sim = simulate(catalogue, params)
    index = {sid: i for i, sid in enumerate(sim.rain_ids)}
    n = sim.times.size
    t = np.arange(60 - 1, n - HORIZON_MIN, SAMPLE_EVERY_MIN)  # a full 60-min rain window behind
    xs, ys = [], []
    for j, sid in enumerate(sim.level_ids):
        gauge = catalogue.level_gauge(sid)
        rows = [index[g.station_id] for g in catalogue.rain_stations_for_reach(gauge.reach_id)]
        basin = sim.rain_mm[rows].mean(axis=0)
        level = sim.level_m[j]
        ahead = np.lib.stride_tricks.sliding_window_view(level[1:], HORIZON_MIN).max(axis=1)  # (t, t+60]
        xs.append(flood_feature_matrix(
            level[t], np.full(t.size, gauge.danger_m), level[t - RISE_WINDOW_MIN],
            _rolling_sum(basin, 10)[t], _rolling_sum(basin, 60)[t],
        ))
        ys.append((ahead[t] >= gauge.danger_m).astype(np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def synthetic_dataset(seed: int, n_storms: int, *, progress: bool = True,
                      catalogue: StationCatalogue | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows from ``n_storms`` random synthetic storms; returns ``(x, y, storm_index)``."""
    from tqdm import tqdm

    catalogue = catalogue or StationCatalogue.load("kanda-basin")
    rng = np.random.default_rng(seed)
    base = dt.datetime(2000, 6, 1, tzinfo=dt.UTC)
    xs, ys, groups = [], [], []
    for i in tqdm(range(n_storms), desc="synthetic storms", disable=not progress):
        params = random_storm_params(rng, catalogue, base + dt.timedelta(days=i), STORM_MINUTES)
        x, y = storm_rows(catalogue, params)
        xs.append(x)
        ys.append(y)
        groups.append(np.full(y.size, i))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(groups)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def to_onnx(model: Any, n_features: int, graph_name: str = f"{MODEL_NAME}_{MODEL_VERSION}") -> bytes:
    """Converts the fitted classifier: input ``features`` float32 [n, k], no ZipMap.

    The graph gets a fixed name (skl2onnx would pick a random one) so that the
    same training run always yields the same bytes and sha256.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    with warnings.catch_warnings():
        # skl2onnx passes booleans where onnx.helper now wants ints; harmless, and not ours to fix.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="onnx.helper")
        onx = convert_sklearn(
            model, initial_types=[("features", FloatTensorType([None, n_features]))], name=graph_name,
            options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3},
        )
    return onx.SerializeToString()


def train_flood_model(
    seed: int = 2005,
    n_storms: int = 400,
    *,
    out_dir: str | Path | None = None,
    held_out_fraction: float = 0.25,
    progress: bool = True,
) -> TrainResult:
    """Trains, evaluates on held-out storms, exports and documents ``flood/1``.

    Args:
        seed: Seeds the random storms (and hence everything else).
        n_storms: Number of synthetic storms; the last ``held_out_fraction``
            of them are held out.
        out_dir: Where to write the artifacts (default ``models/artifacts``).
        held_out_fraction: Share of storms held out for metrics.
        progress: Show tqdm progress bars.

    Returns:
        The fitted model, the data and the metrics.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import brier_score_loss, roc_auc_score

    out = Path(out_dir) if out_dir is not None else ARTIFACTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    x, y, groups = synthetic_dataset(seed, n_storms, progress=progress)
    n_train_storms = round(n_storms * (1 - held_out_fraction))
    train = groups < n_train_storms
    x_train, y_train, x_test, y_test = x[train], y[train], x[~train], y[~train]
    if len(set(y_train.tolist())) < 2 or len(set(y_test.tolist())) < 2:
        raise ValueError("too few storms: both classes must appear in training and held-out data")

    model = HistGradientBoostingClassifier(
        monotonic_cst=[MONOTONIC[f] for f in FLOOD_FEATURES], **HYPERPARAMETERS,
    )
    model.fit(x_train, y_train)
    p_test = model.predict_proba(x_test)[:, 1]
    metrics = {
        "roc_auc": float(roc_auc_score(y_test, p_test)),
        "brier": float(brier_score_loss(y_test, p_test)),
        "positive_rate_test": float(y_test.mean()),
        "brier_climatology": float(brier_score_loss(y_test, np.full(y_test.size, y_train.mean()))),
    }

    stem = f"{MODEL_NAME}-{MODEL_VERSION}"
    onnx_path = out / f"{stem}.onnx"
    onnx_path.write_bytes(to_onnx(model, len(FLOOD_FEATURES)))
    baseline = np.median(x_train, axis=0)
    metadata = {
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "model_ref": f"{MODEL_NAME}/{MODEL_VERSION}",
        "onnx_file": onnx_path.name,
        "sha256": _sha256(onnx_path),
        "input_name": "features",
        "features": list(FLOOD_FEATURES),
        "target": FLOOD_TARGET,
        "outputs": {"probabilities": "float32 [n, 2]; column 1 = P(target)", "label": "int64 [n]"},
        "estimator": "HistGradientBoostingClassifier with monotonic constraints (scikit-learn)",
        "hyperparameters": HYPERPARAMETERS,
        "monotonic": MONOTONIC,
        "attribution": {
            "method": "occlusion",
            "baseline": dict(zip(FLOOD_FEATURES, map(float, baseline))),
            "baseline_note": "median training row (a typical, mostly quiet, river)",
        },
        "training_data": {
            "kind": "synthetic storms (replay_data.synth), not observed data",
            "catalogue": "kanda-basin",
            "seed": seed,
            "n_storms": n_storms,
            "n_train_storms": n_train_storms,
            "n_held_out_storms": n_storms - n_train_storms,
            "n_train_rows": int(y_train.size),
            "n_held_out_rows": int(y_test.size),
            "positive_rate_train": float(y_train.mean()),
            "sample_every_min": SAMPLE_EVERY_MIN,
        },
        "metrics_held_out": metrics,
    }
    metadata_path = out / f"{stem}.json"
    metadata_path.write_text(json.dumps(metadata, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    card_path = out / f"{stem}.md"
    card_path.write_text(_model_card(metadata), encoding="utf-8")
    return TrainResult(model=model, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                       metrics=metrics, onnx_path=onnx_path, metadata_path=metadata_path, card_path=card_path)


def _model_card(meta: dict[str, Any]) -> str:
    m = meta["metrics_held_out"]
    d = meta["training_data"]
    direction = {-1: "can only lower P", 1: "can only raise P"}
    units = {"stage_to_danger_m": "m", "rise_m_per_h": "m/h", "rain_10min_mm": "mm", "rain_60min_mm": "mm"}
    meaning = {
        "stage_to_danger_m": "danger threshold minus current level (negative above danger)",
        "rise_m_per_h": "(level now - level 30 min ago) × 2",
        "rain_10min_mm": "rain in the last 10 min, mean of the reach's rain gauges",
        "rain_60min_mm": "rain in the last 60 min, mean of the reach's rain gauges",
    }
    rows = "\n".join(
        f"| {i} | `{f}` | {units[f]} | {meaning[f]} | {direction[meta['monotonic'][f]]} |"
        for i, f in enumerate(meta["features"])
    )
    return f"""# Model card: `{meta['model_ref']}` — flood danger within 60 minutes

**What it predicts.** For one river reach at one time: the probability that the
water level at the reach's gauge is at or above its flood-danger threshold
(氾濫危険水位, alert level 4) at some reading in the next 60 minutes.

**Estimator.** {meta['estimator']}, exported to ONNX with skl2onnx
(`{meta['onnx_file']}`, sha256 `{meta['sha256']}`).

## Inputs

One float32 tensor named `features`, shape [n, {len(meta['features'])}], columns in this order
(compute them with `models.flood_features`, never by hand):

| # | name | unit | definition | effect of a larger value |
|---|---|---|---|---|
{rows}

Output `probabilities` [n, 2]: column 1 is P(target). Output `label` is the 0.5-threshold class.

## Training data

Entirely **synthetic**: {d['n_storms']} seeded random storms (seed {d['seed']}) from
`replay_data.synth` over the `{d['catalogue']}` catalogue (invented gauges and
thresholds on real rivers), 1 to 3 moving Gaussian rain cells each, peaks from a
few to ~160 mm/h, through an SCS curve-number loss, a Nash-cascade routing and a
rating curve. Features come from the *reported* readings (0.5 mm tipping-bucket
rain, level noise, 1 cm rounding), one row per gauge every {d['sample_every_min']} minutes.
Storms were split, not rows: {d['n_train_storms']} storms ({d['n_train_rows']} rows) for
training, {d['n_held_out_storms']} held-out storms ({d['n_held_out_rows']} rows) for the metrics.
Positive rate: {d['positive_rate_train']:.3f} (train), {m['positive_rate_test']:.3f} (held out).

## Metrics on held-out synthetic storms

| metric | value |
|---|---|
| ROC-AUC | {m['roc_auc']:.4f} |
| Brier score | {m['brier']:.4f} |
| Brier score of the constant base rate | {m['brier_climatology']:.4f} |

## Attributions

`OnnxScorer.contributions(row)` names the features that raise the probability
most, by occlusion: each feature in turn is replaced by its baseline value (the
median training row: {', '.join(f'{k}={v:.3g}' for k, v in meta['attribution']['baseline'].items())})
and the drop in probability is that feature's contribution. It explains this
model's output, not the river.

## Limits

* Trained and evaluated only on synthetic storms from one simple runoff model and
  three invented gauges; it has never seen observed data. The metrics say how well
  it imitates the synthesiser, not how well it forecasts a real river.
* Boosted trees: the probability is a step function of the inputs and is flat
  outside the range of the training data. Monotonic by construction in each input
  (table above). No notion of upstream gauges, soil moisture beyond what the last
  hour's rain implies, tides, sluice operations or forecast rain.
* Assumes 1-minute level readings with a 30-minute history; with missing history
  the rise is taken as 0, which understates risk on a rising river.
* The threshold alert from observed levels (`replay_data.level_for`) must stay the
  primary trigger; this probability is supporting, earlier evidence.
"""


MODELS = ("flood", "landslide", "camera")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m models.train [flood|landslide|camera|all|flood1] [--out-dir DIR] [--storm NAME ...]``.

    ``flood`` trains ``flood/4``, ``landslide`` ``landslide/1``, ``camera``
    ``camera/1``; ``all`` (the default, and what ``suibou models train`` runs)
    all three. ``flood1``, ``flood2`` and ``flood3`` retrain the legacy flood models (on
    today's synthesiser, so not byte for byte the committed files). ``--storm`` adds
    storms from the storm library (``replay_data.load_storm``; storms imported
    from a bureau's records included) to the flood and landslide training sets.

    ``argv=None`` means no arguments (defaults), so the ``suibou`` CLI can call
    ``main()`` without its own arguments being parsed here.

    Returns:
        Model ref -> held-out metrics of what was trained.
    """
    import time

    parser = argparse.ArgumentParser(prog="python -m models.train",
                                     description="Train the risk models on synthetic storms and export ONNX.")
    parser.add_argument("which", nargs="?", default="all",
                        choices=(*MODELS, "all", "flood1", "flood2", "flood3", "flood4", "flood5"))
    parser.add_argument("--out-dir", type=Path, default=None, help="default: models/artifacts")
    parser.add_argument("--storm", action="append", default=[], metavar="NAME",
                        help="add a library storm (e.g. an imported one) to the flood and landslide training data")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args([] if argv is None else argv)
    progress = not args.no_progress
    extra = []
    if args.storm:
        from replay_data import load_storm

        extra = [load_storm(name) for name in args.storm]
    chosen = MODELS if args.which == "all" else (args.which,)
    results: dict[str, Any] = {}
    for which in chosen:
        started = time.perf_counter()
        if which == "flood1":
            r1 = train_flood_model(out_dir=args.out_dir, progress=progress)
            ref, path, metrics = "flood/1", r1.onnx_path, r1.metrics
        elif which in ("flood", "flood2", "flood3", "flood4", "flood5"):
            from .train_flood import FLOOD2, FLOOD3, FLOOD4, FLOOD5, train_flood

            spec = {"flood": FLOOD4, "flood2": FLOOD2, "flood3": FLOOD3, "flood4": FLOOD4, "flood5": FLOOD5}[which]
            r2 = train_flood(spec, storms=extra, out_dir=args.out_dir, progress=progress)
            ref, path = spec.ref, r2.onnx_path
            metrics = {t: round(v["roc_auc"], 4) for t, v in r2.metrics["per_target"].items()}
            metrics["lead_gain_danger_60min_mean_min"] = round(r2.metrics["lead_time"]["danger_60min"]["mean_min"], 1)
        elif which == "landslide":
            from .train_landslide import train_landslide

            r3 = train_landslide(storms=extra, out_dir=args.out_dir, progress=progress)
            ref, path = "landslide/1", r3.onnx_path
            metrics = {"roc_auc": round(r3.metrics["model"]["roc_auc"], 4),
                       "brier": round(r3.metrics["model"]["brier"], 4),
                       "lead_gain_mean_min": round(r3.metrics["lead_time_model"]["mean_min"], 1)}
        else:
            from .train_camera import train_camera

            r4 = train_camera(out_dir=args.out_dir, progress=progress)
            ref, path = "camera/1", r4.onnx_path
            metrics = {"mae_level_m": round(r4.metrics["mae_level_m"], 3),
                       "overtopping_roc_auc": round(r4.metrics["overtopping"]["roc_auc"], 4)}
        results[ref] = metrics
        print(f"{ref}: wrote {path} ({path.stat().st_size} bytes) in {time.perf_counter() - started:.1f}s; "
              f"held-out: {metrics}", flush=True)
    return results


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
