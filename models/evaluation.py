"""Held-out metrics and the lead time gained over the threshold-only rule.

**Lead time.** For one gauge (or zone) in one held-out storm and one threshold,
the *threshold-only rule* alerts at the first minute the observed value is at
or beyond the threshold (level >= caution/evacuation/danger; for landslides,
the snake-line point on or beyond the critical line now). The *model rule*
alerts at the first minute its probability is at least ``p_alert`` (0.5). An
officer using both alerts at whichever comes first, so the lead time gained is
``t_threshold - min(t_model, t_threshold)`` >= 0. Only crossings that happen
after the first evaluated minute count (a storm that starts above the threshold
gives no lead time to measure). False alarms are gauge-storms where the model
rule alerts but the threshold is never reached in the evaluated window.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np


def binary_metrics(y: np.ndarray, p: np.ndarray, base_rate: float | None = None) -> dict[str, float]:
    """ROC-AUC, Brier score, the Brier score of a constant base rate, and positives."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    rate = float(y.mean()) if base_rate is None else base_rate
    both = len(set(y.tolist())) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)) if both else float(np.mean((p - y) ** 2)),
        "brier_climatology": float(np.mean((rate - y) ** 2)),
        "positive_rate": float(y.mean()),
        "n": int(y.size),
    }


def contingency(y: np.ndarray, warn: np.ndarray) -> dict[str, float]:
    """Probability of detection and false-alarm ratio of a yes/no rule."""
    y = np.asarray(y).astype(bool)
    warn = np.asarray(warn).astype(bool)
    hits = int((y & warn).sum())
    misses = int((y & ~warn).sum())
    false_alarms = int((~y & warn).sum())
    return {
        "pod": hits / (hits + misses) if hits + misses else float("nan"),
        "far": false_alarms / (hits + false_alarms) if hits + false_alarms else float("nan"),
    }


def lead_times(groups: np.ndarray, minutes: np.ndarray, observed_crossed: np.ndarray, model_alert: np.ndarray,
               ) -> dict[str, Any]:
    """Lead time gained by ``model_alert`` over ``observed_crossed``, per group (see the module docstring).

    Args:
        groups: Group key per row (gauge in storm).
        minutes: Row time in minutes (any origin, increasing within a group).
        observed_crossed: Threshold-only rule fires at this row.
        model_alert: Model rule fires at this row.

    Returns:
        ``n_events``, ``mean_min``, ``median_min``, ``share_earlier`` (events
        where the model was strictly earlier), ``n_no_event_groups``,
        ``false_alarm_groups`` and ``gains_min`` (the list).
    """
    gains: list[float] = []
    no_event = false_alarm = 0
    order = np.lexsort((minutes, groups))
    g_sorted = groups[order]
    bounds = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1], True])
    for a, b in itertools.pairwise(bounds):
        idx = order[a:b]
        t = minutes[idx]
        crossed = np.flatnonzero(observed_crossed[idx])
        alerted = np.flatnonzero(model_alert[idx])
        if crossed.size == 0:
            no_event += 1
            false_alarm += int(alerted.size > 0)
            continue
        if crossed[0] == 0:
            continue  # already beyond the threshold when evaluation starts
        t_obs = t[crossed[0]]
        t_model = t[alerted[0]] if alerted.size else np.inf
        gains.append(float(t_obs - min(t_model, t_obs)))
    arr = np.asarray(gains)
    return {
        "n_events": int(arr.size),
        "mean_min": float(arr.mean()) if arr.size else float("nan"),
        "median_min": float(np.median(arr)) if arr.size else float("nan"),
        "share_earlier": float((arr > 0).mean()) if arr.size else float("nan"),
        "n_no_event_groups": no_event,
        "false_alarm_groups": false_alarm,
        "gains_min": [round(g, 1) for g in gains],
    }


def summarise(per_target: dict[str, dict[str, Any]], keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Drops long lists from nested metrics for metadata files."""
    return {t: {k: v for k, v in m.items() if k in keys} for t, m in per_target.items()}
