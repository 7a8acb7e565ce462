"""Model inputs, defined once: the pipeline and the trainer both compute them here.

Flood model (``flood/1``) inputs, in this order (:data:`FLOOD_FEATURES`):

==================  =====  ====================================================
name                unit   definition
==================  =====  ====================================================
stage_to_danger_m   m      ``danger_m - level_m``: head-room below the gauge's
                           flood-danger level (氾濫危険水位); negative above it.
rise_m_per_h        m/h    ``(level_m - level_30min_ago_m) * 2``: rate of rise
                           over the last 30 minutes.
rain_10min_mm       mm     rain in the last 10 minutes, mean over the reach's
                           rain gauges.
rain_60min_mm       mm     rain in the last 60 minutes, mean over the reach's
                           rain gauges.
==================  =====  ====================================================

"Last N minutes" at time t means readings stamped in ``(t - N min, t]``.

Target (``FLOOD_TARGET``): the level at the reach's gauge is at or above the
flood-danger threshold at some reading in the next 60 minutes, ``(t, t + 60 min]``.

Examples:
    >>> flood_features(level_m=2.5, danger_m=3.0, level_30min_ago_m=2.0,
    ...                rain_10min_mm=12.0, rain_60min_mm=40.0)
    (0.5, 1.0, 12.0, 40.0)
"""

from __future__ import annotations

import numpy as np

FLOOD_FEATURES: tuple[str, ...] = ("stage_to_danger_m", "rise_m_per_h", "rain_10min_mm", "rain_60min_mm")
FLOOD_TARGET = "level reaches the flood-danger threshold (氾濫危険水位) within the next 60 minutes"
#: Window of the rate of rise, minutes.
RISE_WINDOW_MIN = 30
#: Look-ahead of the target, minutes.
HORIZON_MIN = 60


def flood_feature_matrix(
    level_m: np.ndarray,
    danger_m: np.ndarray,
    level_30min_ago_m: np.ndarray,
    rain_10min_mm: np.ndarray,
    rain_60min_mm: np.ndarray,
) -> np.ndarray:
    """Vectorised :func:`flood_features`: arrays of equal shape (n,) -> float32 (n, 4).

    A NaN ``level_30min_ago_m`` (no history yet) gives a rise of 0.
    """
    level = np.asarray(level_m, dtype=np.float64)
    earlier = np.asarray(level_30min_ago_m, dtype=np.float64)
    rise = np.where(np.isnan(earlier), 0.0, (level - earlier) * (60.0 / RISE_WINDOW_MIN))
    columns = (
        np.asarray(danger_m, dtype=np.float64) - level,
        rise,
        np.asarray(rain_10min_mm, dtype=np.float64),
        np.asarray(rain_60min_mm, dtype=np.float64),
    )
    return np.stack(np.broadcast_arrays(*columns), axis=-1).astype(np.float32)


def flood_features(
    level_m: float,
    danger_m: float,
    level_30min_ago_m: float | None,
    rain_10min_mm: float,
    rain_60min_mm: float,
) -> tuple[float, ...]:
    """The flood model's input row for one reach at one time, in :data:`FLOOD_FEATURES` order.

    Args:
        level_m: Current stage at the reach's level gauge, m.
        danger_m: The gauge's flood-danger threshold, m.
        level_30min_ago_m: Stage 30 minutes earlier, m; None when there is no
            history yet (rise counts as 0).
        rain_10min_mm: Rain in the last 10 minutes, mean of the reach's gauges, mm.
        rain_60min_mm: Rain in the last 60 minutes, mean of the reach's gauges, mm.

    Returns:
        Four floats, rounded through float32 exactly as the model sees them.
    """
    earlier = np.nan if level_30min_ago_m is None else level_30min_ago_m
    row = flood_feature_matrix(
        np.array([level_m]), np.array([danger_m]), np.array([earlier]),
        np.array([rain_10min_mm]), np.array([rain_60min_mm]),
    )[0]
    return tuple(float(v) for v in row)
