"""Model inputs, defined once: the pipeline and the trainer both compute them here.

* ``flood/4``: :data:`FLOOD4_FEATURES`, :func:`flood4_features` /
  :func:`flood4_feature_matrix`, outputs :data:`FLOOD3_TARGETS` (``flood/3``'s).
* ``flood/3``: :data:`FLOOD3_FEATURES`, :func:`flood3_features` /
  :func:`flood3_feature_matrix`, outputs :data:`FLOOD3_TARGETS`.
* ``flood/2``: :data:`FLOOD2_FEATURES`, :func:`flood2_features` /
  :func:`flood2_feature_matrix`, outputs :data:`FLOOD2_TARGETS`.
* ``landslide/1``: :data:`LANDSLIDE_FEATURES`, :func:`landslide_features` /
  :func:`landslide_feature_matrix`, and the physically based criterion
  :func:`landslide_criterion`.
* ``camera/1``: see :mod:`models.camera`.
* ``flood/1`` (below).

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

import math
from typing import Any

import numpy as np

from suibou.hydrology import (
    DEFAULT_CRITICAL_LINE,
    CriticalLine,
    SnakeOutlook,
    TankState,
    snake_line_outlook,
    snake_line_outlook_many,
)

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


# =========================================================================== flood/2

#: ``flood/2`` inputs, in order. See :func:`flood2_feature_matrix`.
FLOOD2_FEATURES: tuple[str, ...] = (
    "stage_to_caution_m",
    "stage_to_evacuation_m",
    "stage_to_danger_m",
    "rise_m_per_h",
    "rise_10min_m_per_h",
    "rain_10min_mm",
    "rain_60min_mm",
    "nowcast_rain_30min_mm",
    "nowcast_rain_60min_mm",
)
#: Threshold attribute of :class:`suibou.catalogue.LevelGauge` for each target threshold.
FLOOD2_THRESHOLDS: dict[str, str] = {"caution": "caution_m", "evacuation": "evacuation_m", "danger": "danger_m"}
#: Look-aheads of ``flood/2``, minutes.
FLOOD2_HORIZONS_MIN: tuple[int, ...] = (30, 60)
#: ``flood/2`` outputs, in column order: ``{threshold}_{horizon}min``.
FLOOD2_TARGETS: tuple[str, ...] = tuple(
    f"{threshold}_{horizon}min" for threshold in FLOOD2_THRESHOLDS for horizon in FLOOD2_HORIZONS_MIN
)
#: The target that :meth:`models.OnnxScorer.predict_proba` returns for ``flood/2``
#: (the same event as ``flood/1``'s).
FLOOD2_PRIMARY_TARGET = "danger_60min"
FLOOD2_TARGET_TEXT: dict[str, str] = {
    f"{threshold}_{horizon}min": (
        f"level reaches {name} within {horizon} min"
    )
    for threshold, name in (("caution", "flood caution (氾濫注意水位)"),
                            ("evacuation", "evacuation judgement (避難判断水位)"),
                            ("danger", "flood danger (氾濫危険水位)"))
    for horizon in FLOOD2_HORIZONS_MIN
}


def _rise(level: np.ndarray, earlier: np.ndarray, minutes: float) -> np.ndarray:
    return np.where(np.isnan(earlier), 0.0, (level - earlier) * (60.0 / minutes))


def flood2_feature_matrix(
    level_m: np.ndarray,
    caution_m: np.ndarray,
    evacuation_m: np.ndarray,
    danger_m: np.ndarray,
    level_10min_ago_m: np.ndarray,
    level_30min_ago_m: np.ndarray,
    rain_10min_mm: np.ndarray,
    rain_60min_mm: np.ndarray,
    nowcast_rain_30min_mm: np.ndarray,
    nowcast_rain_60min_mm: np.ndarray,
) -> np.ndarray:
    """``flood/2`` input rows (float32, (n, 9), :data:`FLOOD2_FEATURES` order) from arrays of shape (n,).

    ==========================  =====  ==============================================
    name                        unit   definition
    ==========================  =====  ==============================================
    stage_to_caution_m          m      ``caution_m - level_m`` (negative above it)
    stage_to_evacuation_m       m      ``evacuation_m - level_m``
    stage_to_danger_m           m      ``danger_m - level_m``
    rise_m_per_h                m/h    ``(level_m - level_30min_ago_m) * 2``
    rise_10min_m_per_h          m/h    ``(level_m - level_10min_ago_m) * 6``
    rain_10min_mm               mm     rain in the last 10 min, mean of the reach's
                                       (upstream) rain gauges
    rain_60min_mm               mm     rain in the last 60 min, same gauges
    nowcast_rain_30min_mm       mm     nowcast rain over the reach's catchment in
                                       the next 30 min (basin mean)
    nowcast_rain_60min_mm       mm     nowcast rain in the next 60 min (basin mean)
    ==========================  =====  ==============================================

    A NaN earlier level (no history) gives a rise of 0. A NaN nowcast (no grid
    available) falls back to persistence: the last hour's rain goes on at the
    same rate, i.e. ``rain_60min_mm / 2`` for 30 min and ``rain_60min_mm`` for 60 min.
    """
    level = np.asarray(level_m, dtype=np.float64)
    rain60 = np.asarray(rain_60min_mm, dtype=np.float64)
    now30 = np.asarray(nowcast_rain_30min_mm, dtype=np.float64)
    now60 = np.asarray(nowcast_rain_60min_mm, dtype=np.float64)
    columns = (
        np.asarray(caution_m, dtype=np.float64) - level,
        np.asarray(evacuation_m, dtype=np.float64) - level,
        np.asarray(danger_m, dtype=np.float64) - level,
        _rise(level, np.asarray(level_30min_ago_m, dtype=np.float64), 30.0),
        _rise(level, np.asarray(level_10min_ago_m, dtype=np.float64), 10.0),
        np.asarray(rain_10min_mm, dtype=np.float64),
        rain60,
        np.where(np.isnan(now30), rain60 / 2.0, now30),
        np.where(np.isnan(now60), rain60, now60),
    )
    return np.stack(np.broadcast_arrays(*columns), axis=-1).astype(np.float32)


def flood2_features(
    level_m: float,
    *,
    caution_m: float,
    evacuation_m: float,
    danger_m: float,
    level_10min_ago_m: float | None,
    level_30min_ago_m: float | None,
    rain_10min_mm: float,
    rain_60min_mm: float,
    nowcast_rain_30min_mm: float | None = None,
    nowcast_rain_60min_mm: float | None = None,
) -> tuple[float, ...]:
    """One ``flood/2`` input row, in :data:`FLOOD2_FEATURES` order (see :func:`flood2_feature_matrix`).

    Examples:
        >>> flood2_features(2.5, caution_m=2.0, evacuation_m=2.6, danger_m=3.0, level_10min_ago_m=2.4,
        ...                 level_30min_ago_m=2.0, rain_10min_mm=12.0, rain_60min_mm=40.0,
        ...                 nowcast_rain_30min_mm=15.0, nowcast_rain_60min_mm=25.0)
        (-0.5, 0.1, 0.5, 1.0, 0.6, 12.0, 40.0, 15.0, 25.0)
    """
    # One row in plain floats: the same float64 arithmetic as flood2_feature_matrix,
    # cast to float32 the same way, without building arrays for a single row (the
    # pipeline makes one row per water-level reading).
    def given(value: float | None) -> bool:
        return value is not None and not math.isnan(value)

    level = float(level_m)
    rain60 = float(rain_60min_mm)
    values = (
        float(caution_m) - level,
        float(evacuation_m) - level,
        float(danger_m) - level,
        (level - float(level_30min_ago_m)) * (60.0 / 30.0) if given(level_30min_ago_m) else 0.0,  # type: ignore[arg-type]
        (level - float(level_10min_ago_m)) * (60.0 / 10.0) if given(level_10min_ago_m) else 0.0,  # type: ignore[arg-type]
        float(rain_10min_mm),
        rain60,
        float(nowcast_rain_30min_mm) if given(nowcast_rain_30min_mm) else rain60 / 2.0,  # type: ignore[arg-type]
        float(nowcast_rain_60min_mm) if given(nowcast_rain_60min_mm) else rain60,  # type: ignore[arg-type]
    )
    return tuple(round(v, 6) for v in np.asarray(values, dtype=np.float32).tolist())


# =========================================================================== flood/3

#: ``flood/3`` inputs, in order: ``flood/2``'s and the basin rain of the last 3 and 6 hours.
FLOOD3_FEATURES: tuple[str, ...] = (*FLOOD2_FEATURES, "rain_3h_mm", "rain_6h_mm")
#: Look-aheads of ``flood/3``, minutes: the hour of ``flood/2``'s longer horizon, and the three hours
#: that Japan's designated-river flood forecasts look ahead.
FLOOD3_HORIZONS_MIN: tuple[int, ...] = (60, 180)
#: ``flood/3`` outputs, in column order: ``{threshold}_{horizon}min``.
FLOOD3_TARGETS: tuple[str, ...] = tuple(
    f"{threshold}_{horizon}min" for threshold in FLOOD2_THRESHOLDS for horizon in FLOOD3_HORIZONS_MIN
)
FLOOD3_PRIMARY_TARGET = "danger_60min"
FLOOD3_TARGET_TEXT: dict[str, str] = {
    f"{threshold}_{horizon}min": f"level reaches {name} within {horizon} min"
    for threshold, name in (("caution", "flood caution (氾濫注意水位)"),
                            ("evacuation", "evacuation judgement (避難判断水位)"),
                            ("danger", "flood danger (氾濫危険水位)"))
    for horizon in FLOOD3_HORIZONS_MIN
}


def flood3_feature_matrix(
    level_m: np.ndarray,
    caution_m: np.ndarray,
    evacuation_m: np.ndarray,
    danger_m: np.ndarray,
    level_10min_ago_m: np.ndarray,
    level_30min_ago_m: np.ndarray,
    rain_10min_mm: np.ndarray,
    rain_60min_mm: np.ndarray,
    nowcast_rain_30min_mm: np.ndarray,
    nowcast_rain_60min_mm: np.ndarray,
    rain_3h_mm: np.ndarray,
    rain_6h_mm: np.ndarray,
) -> np.ndarray:
    """``flood/3`` input rows (float32, (n, 11), :data:`FLOOD3_FEATURES` order).

    The first nine columns are :func:`flood2_feature_matrix`'s; then

    ==========================  =====  ==============================================
    rain_3h_mm                  mm     rain in the last 3 h, mean of the reach's
                                       (upstream) rain gauges
    rain_6h_mm                  mm     rain in the last 6 h, same gauges
    ==========================  =====  ==============================================

    On a large river the gauge answers rain hours later (the lower Tama five
    to six hours after the rain on its basin); the last hour's rain says little
    about the next three hours there, the last six hours' a lot.
    """
    head = flood2_feature_matrix(level_m, caution_m, evacuation_m, danger_m, level_10min_ago_m, level_30min_ago_m,
                                 rain_10min_mm, rain_60min_mm, nowcast_rain_30min_mm, nowcast_rain_60min_mm)
    tail = np.stack(np.broadcast_arrays(np.asarray(rain_3h_mm, dtype=np.float64),
                                        np.asarray(rain_6h_mm, dtype=np.float64)), axis=-1).astype(np.float32)
    return np.concatenate([head, tail.reshape(head.shape[0], 2)], axis=-1)


def flood3_features(level_m: float, *, rain_3h_mm: float, rain_6h_mm: float, **flood2_inputs: Any
                    ) -> tuple[float, ...]:
    """One ``flood/3`` input row: :func:`flood2_features` of the same inputs, then the 3- and 6-hour rain.

    Examples:
        >>> flood3_features(2.5, caution_m=2.0, evacuation_m=2.6, danger_m=3.0, level_10min_ago_m=2.4,
        ...                 level_30min_ago_m=2.0, rain_10min_mm=12.0, rain_60min_mm=40.0,
        ...                 nowcast_rain_30min_mm=15.0, nowcast_rain_60min_mm=25.0, rain_3h_mm=95.5,
        ...                 rain_6h_mm=120.0)
        (-0.5, 0.1, 0.5, 1.0, 0.6, 12.0, 40.0, 15.0, 25.0, 95.5, 120.0)
    """
    tail = tuple(round(v, 6) for v in np.asarray((rain_3h_mm, rain_6h_mm), dtype=np.float32).tolist())
    return flood2_features(level_m, **flood2_inputs) + tail


# =========================================================================== landslide/1

#: ``landslide/1`` inputs, in order. See :func:`landslide_feature_matrix`.
LANDSLIDE_FEATURES: tuple[str, ...] = (
    "rain_10min_mm",
    "rain_60min_mm",
    "swi_mm",
    "swi_change_1h_mm",
    "nowcast_rain_60min_mm",
    "cl_margin",
    "cl_margin_2h",
)
LANDSLIDE_TARGET = "snake line (60-min rain vs soil water index) on or beyond the critical line within 2 h"
#: Look-ahead of the landslide target, minutes.
LANDSLIDE_HORIZON_MIN = 120
#: Soil water index step the pipeline and the trainer use (10-minute rain), hours.
SWI_STEP_H = 1.0 / 6.0
#: Critical-line margins are clipped to this range; below the SWI floor the margin is the lower bound.
MARGIN_CLIP: tuple[float, float] = (-2.0, 3.0)


def landslide_feature_matrix(
    tank_storage_mm: np.ndarray,
    swi_1h_ago_mm: np.ndarray,
    rain_10min_mm: np.ndarray,
    rain_60min_mm: np.ndarray,
    nowcast_rain_60min_mm: np.ndarray,
    critical_line: CriticalLine = DEFAULT_CRITICAL_LINE,
) -> np.ndarray:
    """``landslide/1`` input rows (float32, (n, 7), :data:`LANDSLIDE_FEATURES` order).

    ======================  =====  ================================================
    name                    unit   definition
    ======================  =====  ================================================
    rain_10min_mm           mm     rain in the last 10 min over the zone / 1 km cell
    rain_60min_mm           mm     rain in the last 60 min (the snake line's y)
    swi_mm                  mm     soil water index now (:mod:`suibou.hydrology`,
                                   JMA's three tanks stepped every 10 minutes)
    swi_change_1h_mm        mm     ``swi_mm`` minus the index 60 minutes earlier
    nowcast_rain_60min_mm   mm     nowcast rain over the zone in the next 60 min
                                   (NaN: persistence, ``rain_60min_mm``)
    cl_margin               1      :func:`suibou.hydrology.critical_margin` of the
                                   point (swi, r60) now against the zone's
                                   critical line; >= 0 means beyond it
    cl_margin_2h            1      the largest margin now, +1 h and +2 h, stepping
                                   the tanks with the nowcast rain
                                   (:func:`suibou.hydrology.snake_line_outlook`):
                                   the physically based criterion as a number
    ======================  =====  ================================================

    Margins are clipped to :data:`MARGIN_CLIP`; below the line's SWI floor
    (where nothing exceeds) they take the lower bound.

    Args:
        tank_storage_mm: Tank storages (n, 3) now.
        swi_1h_ago_mm: Soil water index an hour earlier (n,); NaN counts as no change.
        rain_10min_mm, rain_60min_mm, nowcast_rain_60min_mm: (n,).
        critical_line: The zone's critical line.
    """
    storage = np.asarray(tank_storage_mm, dtype=np.float64).reshape(-1, 3)
    swi = storage.sum(axis=1)
    earlier = np.asarray(swi_1h_ago_mm, dtype=np.float64)
    rain60 = np.asarray(rain_60min_mm, dtype=np.float64)
    nowcast = np.asarray(nowcast_rain_60min_mm, dtype=np.float64)
    nowcast = np.where(np.isnan(nowcast), rain60, nowcast)
    margin_now, margin_2h = snake_line_outlook_many(storage, rain60 * np.ones_like(swi), nowcast * np.ones_like(swi),
                                                    critical_line)
    low, high = MARGIN_CLIP
    columns = (
        np.asarray(rain_10min_mm, dtype=np.float64),
        rain60,
        swi,
        np.where(np.isnan(earlier), 0.0, swi - earlier),
        nowcast,
        np.clip(margin_now, low, high),
        np.clip(margin_2h, low, high),
    )
    return np.stack(np.broadcast_arrays(*columns), axis=-1).astype(np.float32)


def landslide_features(
    state: TankState,
    *,
    swi_1h_ago_mm: float | None,
    rain_10min_mm: float,
    rain_60min_mm: float,
    nowcast_rain_60min_mm: float | None = None,
    critical_line: CriticalLine = DEFAULT_CRITICAL_LINE,
) -> tuple[float, ...]:
    """One ``landslide/1`` input row for a zone (see :func:`landslide_feature_matrix`).

    Examples:
        >>> from suibou.hydrology import TankState
        >>> landslide_features(TankState(90.0, 60.0, 40.0), swi_1h_ago_mm=170.0, rain_10min_mm=6.0,
        ...                    rain_60min_mm=20.0, nowcast_rain_60min_mm=45.0)
        (6.0, 20.0, 190.0, 20.0, 45.0, -0.166667, 0.264418)
    """
    row = landslide_feature_matrix(
        np.array([state.as_tuple()]), np.array([np.nan if swi_1h_ago_mm is None else swi_1h_ago_mm]),
        np.array([rain_10min_mm]), np.array([rain_60min_mm]),
        np.array([np.nan if nowcast_rain_60min_mm is None else nowcast_rain_60min_mm]), critical_line,
    )[0]
    return tuple(round(float(v), 6) for v in row)


def landslide_criterion(state: TankState, rain_60min_mm: float, nowcast_rain_60min_mm: float | None = None,
                        critical_line: CriticalLine = DEFAULT_CRITICAL_LINE) -> SnakeOutlook:
    """The physically based landslide criterion, to show beside ``landslide/1``'s probability.

    JMA's rule: warn when the snake-line point now or expected within 2 hours is
    on or beyond the critical line (:func:`suibou.hydrology.snake_line_outlook`;
    a missing nowcast means persistence of the last hour's rain).
    """
    nowcast = rain_60min_mm if nowcast_rain_60min_mm is None else nowcast_rain_60min_mm
    return snake_line_outlook(state, rain_60min_mm, nowcast, critical_line)


# =========================================================================== flood/4

#: ``flood/4`` inputs: ``flood/3``'s, then the state of the river upstream.
FLOOD4_FEATURES: tuple[str, ...] = (*FLOOD3_FEATURES, "upstream_stage_to_danger_m", "upstream_rise_m_per_h",
                                    "upstream_travel_min")
#: ``upstream_stage_to_danger_m`` of a reach with no level gauge upstream, or none reporting:
#: as far below flood danger as a gauge ever is, so a missing upstream never reads as a rising one.
NO_UPSTREAM_STAGE_M = 10.0


def flood4_feature_matrix(*flood3_inputs: np.ndarray, upstream_stage_to_danger_m: np.ndarray,
                          upstream_rise_m_per_h: np.ndarray, upstream_travel_min: np.ndarray) -> np.ndarray:
    """``flood/4`` input rows (float32, (n, 14), :data:`FLOOD4_FEATURES` order).

    The first eleven columns are :func:`flood3_feature_matrix` of ``flood3_inputs``; then,
    of the level gauge directly upstream that is nearest its own flood danger level
    (the catalogue's river network, ``Reach.flows_into``):

    ==========================  =====  ==============================================
    upstream_stage_to_danger_m  m      its ``danger_m - level_m``
    upstream_rise_m_per_h       m/h    its rise over the last 30 min
    upstream_travel_min         min    flood-wave travel time from it to this gauge
    ==========================  =====  ==============================================

    A NaN stage (no gauge upstream, or none reporting) gives
    :data:`NO_UPSTREAM_STAGE_M`, a rise of 0 and a travel time of 0.
    """
    stage = np.asarray(upstream_stage_to_danger_m, dtype=np.float64)
    missing = np.isnan(stage)
    tail = np.stack(np.broadcast_arrays(
        np.where(missing, NO_UPSTREAM_STAGE_M, stage),
        np.where(missing, 0.0, np.nan_to_num(np.asarray(upstream_rise_m_per_h, dtype=np.float64))),
        np.where(missing, 0.0, np.asarray(upstream_travel_min, dtype=np.float64)),
    ), axis=-1).astype(np.float32)
    return np.concatenate([flood3_feature_matrix(*flood3_inputs), tail.reshape(-1, 3)], axis=-1)


def flood4_features(level_m: float, *, upstream_stage_to_danger_m: float | None,
                    upstream_rise_m_per_h: float | None, upstream_travel_min: float | None,
                    **flood3_inputs: Any) -> tuple[float, ...]:
    """One ``flood/4`` input row: :func:`flood3_features`, then the upstream gauge's state
    (:func:`flood4_feature_matrix`; ``None`` for no gauge upstream).

    Examples:
        >>> flood4_features(2.5, caution_m=2.0, evacuation_m=2.6, danger_m=3.0, level_10min_ago_m=2.4,
        ...                 level_30min_ago_m=2.0, rain_10min_mm=12.0, rain_60min_mm=40.0,
        ...                 nowcast_rain_30min_mm=15.0, nowcast_rain_60min_mm=25.0, rain_3h_mm=95.5,
        ...                 rain_6h_mm=120.0, upstream_stage_to_danger_m=0.4, upstream_rise_m_per_h=0.3,
        ...                 upstream_travel_min=35)[-3:]
        (0.4, 0.3, 35.0)
        >>> flood4_features(2.5, caution_m=2.0, evacuation_m=2.6, danger_m=3.0, level_10min_ago_m=None,
        ...                 level_30min_ago_m=None, rain_10min_mm=0.0, rain_60min_mm=0.0, rain_3h_mm=0.0,
        ...                 rain_6h_mm=0.0, upstream_stage_to_danger_m=None, upstream_rise_m_per_h=None,
        ...                 upstream_travel_min=None)[-3:]
        (10.0, 0.0, 0.0)
    """
    if upstream_stage_to_danger_m is None or math.isnan(upstream_stage_to_danger_m):
        tail: tuple[float, ...] = (NO_UPSTREAM_STAGE_M, 0.0, 0.0)
    else:
        tail = (float(upstream_stage_to_danger_m), float(upstream_rise_m_per_h or 0.0),
                float(upstream_travel_min or 0.0))
    rounded = tuple(round(v, 6) for v in np.asarray(tail, dtype=np.float32).tolist())
    return flood3_features(level_m, **flood3_inputs) + rounded


# =========================================================================== flood/5

#: ``flood/5`` inputs: ``flood/4``'s, then the reach's surface rainfall and routed runoff
#: indices from the rain grids (:mod:`suibou.runoff`), now and the largest expected within the hour.
FLOOD5_FEATURES: tuple[str, ...] = (
    *FLOOD4_FEATURES, "surface_rainfall_index_mm", "surface_rainfall_index_60min_max_mm", "runoff_index_mm_h",
    "runoff_index_60min_max_mm_h",
)


def flood5_feature_matrix(*flood3_inputs: np.ndarray, upstream_stage_to_danger_m: np.ndarray,
                          upstream_rise_m_per_h: np.ndarray, upstream_travel_min: np.ndarray,
                          surface_index_mm: np.ndarray, surface_index_ahead_mm: np.ndarray,
                          runoff_index_mm_h: np.ndarray, runoff_index_ahead_mm_h: np.ndarray) -> np.ndarray:
    """``flood/5`` input rows (float32, (n, 18), :data:`FLOOD5_FEATURES` order).

    The first fourteen columns are :func:`flood4_feature_matrix`'s; then:

    ===================================  =====  ======================================================
    surface_rainfall_index_mm            mm     largest surface-tank storage among the reach's cells
    surface_rainfall_index_60min_max_mm  mm     its largest value now or within 60 min, under the nowcast
    runoff_index_mm_h                    mm/h   runoff of the reach and every reach upstream, each
                                                translated by its travel time, averaged
    runoff_index_60min_max_mm_h          mm/h   its largest value now or within 60 min
    ===================================  =====  ======================================================

    A NaN index (no fresh grid: its own, or for the runoff index one upstream) is
    replaced by the tank's steady state under the last hour's basin rain
    (:func:`suibou.runoff.steady_storage`), and a NaN look-ahead by that under the
    nowcast's hour (itself persistence when NaN): a grid outage never reads as dry.
    """
    from suibou.runoff import steady_runoff, steady_storage

    rain60 = np.asarray(flood3_inputs[7], dtype=np.float64)
    now60 = np.asarray(flood3_inputs[9], dtype=np.float64)
    now60 = np.where(np.isnan(now60), rain60, now60)

    def filled(values: np.ndarray, fallback: np.ndarray, at_least: np.ndarray | None = None) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        stand_in = fallback if at_least is None else np.maximum(fallback, at_least)
        return np.where(np.isnan(v), stand_in, v)

    surface = filled(surface_index_mm, steady_storage(rain60))
    runoff = filled(runoff_index_mm_h, steady_runoff(rain60))
    tail = np.stack(np.broadcast_arrays(
        surface, filled(surface_index_ahead_mm, steady_storage(now60), surface),
        runoff, filled(runoff_index_ahead_mm_h, steady_runoff(now60), runoff),
    ), axis=-1).astype(np.float32)
    head = flood4_feature_matrix(*flood3_inputs, upstream_stage_to_danger_m=upstream_stage_to_danger_m,
                                 upstream_rise_m_per_h=upstream_rise_m_per_h,
                                 upstream_travel_min=upstream_travel_min)
    return np.concatenate([head, tail.reshape(-1, 4)], axis=-1)


def flood5_features(level_m: float, *, surface_index_mm: float | None, surface_index_ahead_mm: float | None,
                    runoff_index_mm_h: float | None, runoff_index_ahead_mm_h: float | None,
                    **flood4_inputs: Any) -> tuple[float, ...]:
    """One ``flood/5`` input row: :func:`flood4_features`, then the grid indices
    (:func:`flood5_feature_matrix`; ``None`` where unknown).

    Examples:
        >>> row = dict(caution_m=2.0, evacuation_m=2.6, danger_m=3.0, level_10min_ago_m=2.4,
        ...            level_30min_ago_m=2.0, rain_10min_mm=12.0, rain_60min_mm=40.0,
        ...            nowcast_rain_30min_mm=15.0, nowcast_rain_60min_mm=25.0, rain_3h_mm=95.5,
        ...            rain_6h_mm=120.0, upstream_stage_to_danger_m=None, upstream_rise_m_per_h=None,
        ...            upstream_travel_min=None)
        >>> flood5_features(2.5, surface_index_mm=31.5, surface_index_ahead_mm=44.0, runoff_index_mm_h=12.25,
        ...                 runoff_index_ahead_mm_h=20.0, **row)[-4:]
        (31.5, 44.0, 12.25, 20.0)
        >>> flood5_features(2.5, surface_index_mm=None, surface_index_ahead_mm=None, runoff_index_mm_h=None,
        ...                 runoff_index_ahead_mm_h=None, **row)[-4:]   # steady under 40 mm/h, then 25
        (39.5, 39.5, 32.099998, 32.099998)
    """
    head = flood4_features(level_m, **flood4_inputs)
    nan = float("nan")
    tail = flood5_feature_matrix(
        *(np.array([v]) for v in (level_m, flood4_inputs["caution_m"], flood4_inputs["evacuation_m"],
                                  flood4_inputs["danger_m"], nan, nan, flood4_inputs["rain_10min_mm"],
                                  flood4_inputs["rain_60min_mm"], _or_nan(flood4_inputs["nowcast_rain_30min_mm"]),
                                  _or_nan(flood4_inputs["nowcast_rain_60min_mm"]), flood4_inputs["rain_3h_mm"],
                                  flood4_inputs["rain_6h_mm"])),
        upstream_stage_to_danger_m=np.array([nan]), upstream_rise_m_per_h=np.array([nan]),
        upstream_travel_min=np.array([nan]),
        surface_index_mm=np.array([_or_nan(surface_index_mm)]),
        surface_index_ahead_mm=np.array([_or_nan(surface_index_ahead_mm)]),
        runoff_index_mm_h=np.array([_or_nan(runoff_index_mm_h)]),
        runoff_index_ahead_mm_h=np.array([_or_nan(runoff_index_ahead_mm_h)]),
    )[0, -4:]
    return head + tuple(round(v, 6) for v in tail.tolist())


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
