"""When does the landslide warning (level 4) come, against when the snake line reaches the critical line?

The warning is JMA's criterion: the snake line, now or expected within two
hours, on or beyond the zone's critical line. What decides its timing is the
rain assumed for those two hours. This script draws fresh synthetic rain events
(the generator that trains ``landslide/1``, with a seed of its own: none of
them is a training event or a stored storm), issues a noisy advection-like
nowcast every 5 minutes, and compares, on the same events in the same run:

* ``nowcast, held 2 h``: the first pipeline's rule, the latest issue's
  60-minute nowcast for the first hour and again for the second (the baseline);
* ``lagged median, then observed``: suibou's rule
  (:func:`pipelines.landslide.warning_outlook` with
  :func:`pipelines.landslide.lagged_nowcast`): the median of the newest three
  issues for the first hour, the last hour's observed rain for the second;
* ``lagged median, held 2 h`` and ``latest nowcast, then observed``: each half
  of that change alone;
* ``persistence``: the last hour's observed rain for both hours (no nowcast);
* ``perfect first hour, then observed``: the rain that really fell in the next
  hour (what no nowcast can give; a bound).

The nowcast of an issue is the rain that really falls in the next 60 minutes,
times an error: a log-normal factor per zone and event (σ 0.25, a biased
nowcast) and an independent one per issue (σ 0.45 at 60 minutes), the error
model of ``landslide/1``'s training data (:mod:`models.datasets`). Independent
issue errors are the kind a lagged median damps best; a real nowcast's
successive issues share more of their error, so its gain would be smaller.

Per rule: the share of critical-line crossings warned 30-180 minutes ahead
(the target of the lead-time issue), warned later or not at all (< 30), or
earlier than 180 minutes; the median lead; and the zone-events warned that
never crossed (false alarms), with ratios to the baseline.

    .venv/bin/python bench/landslide_warning.py                 # 400 events, 1,600 zone-events
    .venv/bin/python bench/landslide_warning.py --events 100    # quicker
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.datasets import NOWCAST_ROW_SIGMA, NOWCAST_STORM_SIGMA, synthetic_landslide_series  # noqa: E402
from models.features import LANDSLIDE_HORIZON_MIN, SWI_STEP_H  # noqa: E402
from pipelines.landslide import lagged_nowcast, warning_outlook  # noqa: E402
from suibou.hydrology import CriticalLine, TankState, critical_margin, snake_line_outlook, step_tanks  # noqa: E402

ISSUE_EVERY_MIN = 5
ROW_EVERY_MIN = 10
LEAD_RANGE_MIN = (30, 180)


@dataclasses.dataclass(frozen=True)
class Row:
    """One zone at one 10-minute step: what the pipeline knows then."""

    minute: int
    tanks: TankState
    rain_60min_mm: float
    issues: tuple[tuple[float, float], ...]  # (issue minute * 60, 60-minute nowcast), newest last
    true_next_60min_mm: float


Rule = Callable[[Row, CriticalLine], bool]


def _latest(row: Row) -> float | None:
    return row.issues[-1][1] if row.issues else None


RULES: dict[str, Rule] = {
    "nowcast, held 2 h (baseline)": lambda r, line: snake_line_outlook(
        r.tanks, r.rain_60min_mm, _latest(r) or r.rain_60min_mm, line).exceeds_within_2h,
    "lagged median, then observed (suibou)": lambda r, line: warning_outlook(
        r.tanks, r.rain_60min_mm, lagged_nowcast(r.issues, r.minute * 60.0), line).exceeds_within_2h,
    "lagged median, held 2 h": lambda r, line: snake_line_outlook(
        r.tanks, r.rain_60min_mm, m := (lagged_nowcast(r.issues, r.minute * 60.0) or r.rain_60min_mm), line,
        second_hour_rain_mm=m).exceeds_within_2h,
    "latest nowcast, then observed": lambda r, line: warning_outlook(
        r.tanks, r.rain_60min_mm, _latest(r), line).exceeds_within_2h,
    "persistence": lambda r, line: warning_outlook(r.tanks, r.rain_60min_mm, None, line).exceeds_within_2h,
    "perfect first hour, then observed": lambda r, line: warning_outlook(
        r.tanks, r.rain_60min_mm, r.true_next_60min_mm, line).exceeds_within_2h,
}


def zone_rows(rain_mm: np.ndarray, initial: np.ndarray, rng: np.random.Generator) -> list[Row]:
    """Rows every 10 minutes of one zone's per-minute rain, with the nowcast issues fresh at each."""
    minutes = rain_mm.size
    cumulative = np.r_[0.0, np.cumsum(rain_mm)]

    def total(start: int, end: int) -> float:
        return float(cumulative[min(end, minutes)] - cumulative[max(start, 0)])

    bias = math.exp(rng.normal(0.0, NOWCAST_STORM_SIGMA))
    issue_minutes = range(0, minutes, ISSUE_EVERY_MIN)
    nowcast = {m: round(total(m, m + 60) * bias * math.exp(rng.normal(0.0, NOWCAST_ROW_SIGMA[60])), 1)
               for m in issue_minutes}
    tanks = TankState(*initial.tolist())
    rows = []
    for end in range(ROW_EVERY_MIN, minutes + 1, ROW_EVERY_MIN):
        tanks = step_tanks(tanks, total(end - ROW_EVERY_MIN, end), SWI_STEP_H)
        issues = tuple((m * 60.0, nowcast[m]) for m in issue_minutes if end - 15 <= m <= end)
        rows.append(Row(end, tanks, total(end - 60, end), issues, total(end, end + 60)))
    return rows


def judge(events: int, seed: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed + 1)
    firsts: dict[str, list[tuple[int | None, int | None]]] = {name: [] for name in RULES}
    for event in synthetic_landslide_series(seed, events, progress=True, desc="events"):
        for q, line in enumerate(event.lines):
            rows = zone_rows(event.rain_mm[q], np.asarray(event.initial[q]), rng)
            rows = rows[5:len(rows) - LANDSLIDE_HORIZON_MIN // ROW_EVERY_MIN]  # a full hour behind, 2 h ahead
            crossed = next((r.minute for r in rows
                            if float(critical_margin(r.rain_60min_mm, sum(r.tanks.as_tuple()), line)) >= 0), None)
            if crossed is not None and crossed == rows[0].minute:
                continue  # beyond the line from the first row: no lead to judge
            for name, rule in RULES.items():
                warned = next((r.minute for r in rows if rule(r, line)), None)
                firsts[name].append((crossed, warned))
    table = {}
    for name, pairs in firsts.items():
        crossings = [(c, w) for c, w in pairs if c is not None]
        leads = np.array([c - w for c, w in crossings if w is not None and w <= c], dtype=float)
        low, high = LEAD_RANGE_MIN
        warnings = [w for _, w in pairs if w is not None]
        false = sum(1 for c, w in pairs if c is None and w is not None)
        table[name] = {
            "crossings": len(crossings),
            "in_range": float(((leads >= low) & (leads <= high)).sum()) / len(crossings),
            "late_or_missed": 1.0 - leads.size / len(crossings) + float((leads < low).sum()) / len(crossings),
            "too_early": float((leads > high).sum()) / len(crossings),
            "median_lead_min": float(np.median(leads)) if leads.size else float("nan"),
            "warned": len(warnings),
            "false_alarms": false,
            "false_alarm_share": false / len(warnings) if warnings else float("nan"),
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400, help="synthetic rain events, 4 zones each")
    parser.add_argument("--seed", type=int, default=8_000, help="not landslide/1's training seed (2013)")
    args = parser.parse_args()
    table = judge(args.events, args.seed)
    base = table["nowcast, held 2 h (baseline)"]
    crossings = base["crossings"]
    print(f"{args.events} synthetic events (seed {args.seed}), {crossings} critical-line crossings; "
          f"lead target {LEAD_RANGE_MIN[0]}-{LEAD_RANGE_MIN[1]} min")
    print("| rule | warned 30-180 min ahead | / baseline | later or missed | earlier than 180 min "
          "| median lead (min) | zone-events warned without a crossing | / baseline |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in table.items():
        print(f"| {name} | {row['in_range']:.0%} | {row['in_range'] / base['in_range']:.2f}x "
              f"| {row['late_or_missed']:.0%} | {row['too_early']:.0%} | {row['median_lead_min']:.0f} "
              f"| {row['false_alarms']} of {row['warned']} ({row['false_alarm_share']:.0%}) "
              f"| {row['false_alarm_share'] / base['false_alarm_share']:.2f}x |")


if __name__ == "__main__":
    main()
