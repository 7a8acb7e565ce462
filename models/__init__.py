"""Risk models: feature definitions, training on synthetic (or imported) storms, ONNX
export and the runtime loader the pipeline uses.

Models (artifacts in ``models/artifacts``, each with a ``.json`` metadata file
and a ``.md`` model card):

* ``flood/4`` — per river reach, P(level reaches flood caution / evacuation
  judgement / flood danger within 60 / 180 min), from the reach's own gauge,
  its basin rain and the level gauge upstream of it: :func:`flood4_features`,
  ``scorer.predict_targets(rows) -> (n, 6)`` in ``scorer.targets`` order.
* ``flood/5`` — ``flood/4``'s inputs and targets plus the reach's surface rainfall
  and routed runoff indices from the rain grids: :func:`flood5_features`;
  evaluated and selectable (``SUIBOU_FLOOD_MODEL``), not the default.
* ``flood/3`` — the same targets without the gauge upstream: :func:`flood3_features`;
  kept loadable.
* ``flood/2`` — the same thresholds within 30 / 60 min, without the 3- and
  6-hour rain: :func:`flood2_features`; kept loadable.
* ``landslide/1`` — per zone or 1 km cell, P(snake line on or beyond the
  critical line within 2 h): :func:`landslide_features`; beside it the
  physically based criterion, :func:`landslide_criterion`.
* ``camera/1`` — river-camera still -> level as a share of bank-full, and
  P(overtopping): :func:`read_frames`.
* ``flood/1`` — the first flood model (danger within 60 min), kept loadable.

Train with ``python -m models.train [flood|landslide|camera|all]`` (or
``suibou models train``); load at start-up with :func:`load_scorer`.

Examples:
    >>> from models import FLOOD_FEATURES, flood_features, load_scorer
    >>> scorer = load_scorer("flood", "1")
    >>> row = flood_features(level_m=3.1, danger_m=3.0, level_30min_ago_m=2.3,
    ...                      rain_10min_mm=15.0, rain_60min_mm=70.0)
    >>> bool(scorer.predict_proba([row])[0] > 0.5)
    True
    >>> flood2 = load_scorer("flood", "2")
    >>> flood2.targets[:2], flood2.primary_target
    (('caution_30min', 'caution_60min'), 'danger_60min')
    >>> row = flood2_features(2.9, caution_m=2.0, evacuation_m=2.6, danger_m=3.0, level_10min_ago_m=2.7,
    ...                       level_30min_ago_m=2.3, rain_10min_mm=15.0, rain_60min_mm=70.0,
    ...                       nowcast_rain_30min_mm=30.0, nowcast_rain_60min_mm=50.0)
    >>> p = flood2.predict_targets([row])[0]
    >>> bool(p[flood2.targets.index("caution_30min")] > 0.9), bool(p[-1] > 0.5)
    (True, True)
"""

from .camera import CAMERA_FEATURES, CAMERA_SIZE, CameraReading, camera_input, camera_inputs, read_frame, read_frames
from .features import (
    FLOOD2_FEATURES,
    FLOOD2_PRIMARY_TARGET,
    FLOOD2_TARGET_TEXT,
    FLOOD2_TARGETS,
    FLOOD3_FEATURES,
    FLOOD3_PRIMARY_TARGET,
    FLOOD3_TARGET_TEXT,
    FLOOD3_TARGETS,
    FLOOD4_FEATURES,
    FLOOD5_FEATURES,
    FLOOD_FEATURES,
    FLOOD_TARGET,
    LANDSLIDE_FEATURES,
    LANDSLIDE_TARGET,
    SWI_STEP_H,
    flood2_feature_matrix,
    flood2_features,
    flood3_feature_matrix,
    flood3_features,
    flood4_feature_matrix,
    flood4_features,
    flood5_feature_matrix,
    flood5_features,
    flood_feature_matrix,
    flood_features,
    landslide_criterion,
    landslide_feature_matrix,
    landslide_features,
)
from .runtime import ModelLoadError, OnnxScorer, artifact_paths, load_scorer, load_scorers

__all__ = [
    "CAMERA_FEATURES",
    "CAMERA_SIZE",
    "FLOOD2_FEATURES",
    "FLOOD2_PRIMARY_TARGET",
    "FLOOD2_TARGETS",
    "FLOOD2_TARGET_TEXT",
    "FLOOD3_FEATURES",
    "FLOOD3_PRIMARY_TARGET",
    "FLOOD3_TARGETS",
    "FLOOD3_TARGET_TEXT",
    "FLOOD4_FEATURES",
    "FLOOD5_FEATURES",
    "FLOOD_FEATURES",
    "FLOOD_TARGET",
    "LANDSLIDE_FEATURES",
    "LANDSLIDE_TARGET",
    "SWI_STEP_H",
    "CameraReading",
    "ModelLoadError",
    "OnnxScorer",
    "artifact_paths",
    "camera_input",
    "camera_inputs",
    "flood2_feature_matrix",
    "flood2_features",
    "flood3_feature_matrix",
    "flood3_features",
    "flood4_feature_matrix",
    "flood4_features",
    "flood5_feature_matrix",
    "flood5_features",
    "flood_feature_matrix",
    "flood_features",
    "landslide_criterion",
    "landslide_feature_matrix",
    "landslide_features",
    "load_scorer",
    "load_scorers",
    "read_frame",
    "read_frames",
]
