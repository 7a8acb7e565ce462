"""Risk models: feature definitions, training on synthetic storms, ONNX export and
the runtime loader the pipeline uses.

Examples:
    >>> from models import FLOOD_FEATURES, flood_features, load_scorer
    >>> scorer = load_scorer("flood", "1")
    >>> row = flood_features(level_m=3.1, danger_m=3.0, level_30min_ago_m=2.3,
    ...                      rain_10min_mm=15.0, rain_60min_mm=70.0)
    >>> bool(scorer.predict_proba([row])[0] > 0.5)
    True
"""

from .features import FLOOD_FEATURES, FLOOD_TARGET, flood_feature_matrix, flood_features
from .runtime import ModelLoadError, OnnxScorer, artifact_paths, load_scorer

__all__ = [
    "FLOOD_FEATURES",
    "FLOOD_TARGET",
    "ModelLoadError",
    "OnnxScorer",
    "artifact_paths",
    "flood_feature_matrix",
    "flood_features",
    "load_scorer",
]
