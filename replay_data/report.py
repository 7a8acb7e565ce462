"""The drill report: what was raised, when, and how early, with plots.

A report is built from two things only: the drill's alert messages (as the
pipeline wrote them) and the storm's own data (readings, thresholds, critical
lines, and the ground truth of a synthetic storm's damage). It is written as
Markdown with PNG plots beside it, plus ``report.json`` with the same figures
for machines.

**Threshold crossings.** For each level gauge, the first reading at or above
each threshold: flood caution (level 2), evacuation judgement (3), flood
danger (4), bank-full (5). For each landslide warning zone, the first step at
which its snake-line point (soil water index, 60-minute rain; JMA's three-tank
index from :mod:`suibou.hydrology`, computed from the mean rain of the zone's
gauges) is on or beyond the zone's critical line: the landslide warning
criterion (level 4 equivalent); and, in a synthetic storm, the time its slope
fails (from the storm's damage record), which the landslide warning (level 4)
is meant to precede.

**Lead time** = crossing time − time of the first alert message for that area
and hazard at or above that level. Positive: warned before it happened;
negative: warned late; none: never warned at that level.

**Skill** (:mod:`replay_data.skill`, defined in ``docs/skill.md``): hits,
misses and false alarms per scored level, the lead-time distribution, and how
long each warning was in force before its event, judged against the storm's
truth (:func:`exceedances`) and issue 18's targets. ``report.json`` keeps the
drill's alert messages as :func:`suibou.drill.alert_chain` rows, so that
``suibou skill --from-reports`` can judge a stored report again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from suibou.catalogue import level_for
from suibou.contracts import AlertEvent, AlertLevel, MsgType
from suibou.hydrology import DEFAULT_CRITICAL_LINE, CriticalLine, critical_margin

from . import skill as skill_
from .synth import Storm, rolling_sum, soil_water

JST = dt.timezone(dt.timedelta(hours=9), "JST")
_LEVEL_NAMES = {2: "flood caution (氾濫注意水位)", 3: "evacuation judgement (避難判断水位)",
                4: "flood danger (氾濫危険水位)", 5: "bank-full (flooding)"}
_COLOURS = {1: "#ffffff", 2: "#f2e700", 3: "#ff2800", 4: "#aa00aa", 5: "#0c000c"}
_THRESHOLD_COLOURS = {"standby_m": "#999999", "caution_m": _COLOURS[2], "evacuation_m": _COLOURS[3],
                      "danger_m": _COLOURS[4], "bank_full_m": _COLOURS[5]}


@dataclasses.dataclass(frozen=True)
class DrillInfo:
    """How the drill was run."""

    drill_id: str
    storm: str
    speed: float | None = None
    start_at: dt.datetime | None = None
    published: int = 0
    elapsed_s: float = 0.0
    sent: Mapping[str, int] = dataclasses.field(default_factory=dict)
    publish_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class Crossing:
    """A threshold crossed during the storm."""

    area_id: str
    hazard: str
    level: int
    what: str
    time: dt.datetime


@dataclasses.dataclass(frozen=True)
class LeadTime:
    crossing: Crossing
    alert_time: dt.datetime | None
    alert_id: str | None

    @property
    def minutes(self) -> float | None:
        if self.alert_time is None:
            return None
        return (self.crossing.time - self.alert_time).total_seconds() / 60.0


def _minutes(value: float | None) -> str:
    return "**not warned**" if value is None else f"{value:+.0f} min"


def _jst(value: dt.datetime | None) -> str:
    return "—" if value is None else value.astimezone(JST).strftime("%m-%d %H:%M")


# --------------------------------------------------------------------------- the storm's own data


def _series(readings: Sequence[Any], attr: str) -> dict[str, tuple[list[dt.datetime], np.ndarray]]:
    grouped: dict[str, tuple[list[dt.datetime], list[float]]] = {}
    for r in readings:
        times, values = grouped.setdefault(r.station_id, ([], []))
        times.append(r.event_time)
        values.append(getattr(r, attr))
    out = {}
    for sid, (times, values) in grouped.items():
        order = sorted(range(len(times)), key=times.__getitem__)
        out[sid] = ([times[i] for i in order], np.array([values[i] for i in order]))
    return out


@dataclasses.dataclass(frozen=True)
class SnakeLine:
    """The (SWI, R60) trajectory of one zone (or of one rain gauge's 1 km cell)."""

    area_id: str
    times: list[dt.datetime]
    swi_mm: np.ndarray
    r60_mm: np.ndarray
    critical_line: CriticalLine


def snake_lines(storm: Storm) -> list[SnakeLine]:
    """Snake lines of every landslide zone from its gauges' mean rain; without zones, of
    each rain gauge against the default critical line (for the plot only)."""
    rain = _series(storm.rain, "rain_mm")
    interval = {r.station_id: r.interval_s for r in storm.rain}
    lines = []
    if storm.catalogue.zones:
        targets = [(z.zone_id, [g.station_id for g in storm.catalogue.rain_stations_for_zone(z.zone_id)],
                    z.critical_line) for z in storm.catalogue.zones]
    else:
        targets = [(sid, [sid], DEFAULT_CRITICAL_LINE) for sid in rain]
    for area_id, listed, cl in targets:
        station_ids = [s for s in listed if s in rain]
        if not station_ids:
            continue
        times = rain[station_ids[0]][0]
        stacked = [rain[s][1] for s in station_ids if len(rain[s][1]) == len(times)]
        mean = np.mean(stacked, axis=0)
        swi, r60 = soil_water(mean[None, :], interval[station_ids[0]])
        lines.append(SnakeLine(area_id, times, swi[0], r60[0], cl))
    return lines


def threshold_crossings(storm: Storm, snakes: Sequence[SnakeLine] | None = None) -> list[Crossing]:
    """Every threshold the storm crossed, in time order (see the module docstring)."""
    crossings = []
    levels = _series(storm.levels, "level_m")
    for gauge in storm.catalogue.level_gauges:
        if gauge.station_id not in levels:
            continue
        times, values = levels[gauge.station_id]
        observed = np.array([int(level_for(gauge, v)) for v in values])
        for level in (2, 3, 4, 5):
            hit = np.flatnonzero(observed >= level)
            if hit.size:
                crossings.append(Crossing(gauge.reach_id, "flood", level,
                                          f"{_LEVEL_NAMES[level]} at {gauge.station_id}", times[int(hit[0])]))
    if storm.catalogue.zones:
        for snake in snakes if snakes is not None else snake_lines(storm):
            hit = np.flatnonzero(critical_margin(snake.r60_mm, snake.swi_mm, snake.critical_line) >= 0)
            if hit.size:
                crossings.append(Crossing(snake.area_id, "landslide", 4,
                                          "snake line reaches the critical line (土砂災害警戒情報 criterion)",
                                          snake.times[int(hit[0])]))
    for damage in storm.damage:
        if damage.kind == "slope_failure":
            crossings.append(Crossing(damage.area_id, "landslide", 4, "slope fails (the storm's ground truth)",
                                      damage.time))
    return sorted(crossings, key=lambda c: (c.time, c.area_id, c.level))


def exceedances(storm: Storm, snakes: Sequence[SnakeLine] | None = None) -> list[skill_.Exceedance]:
    """The storm's truth for skill: when each area was at or beyond each scored level's threshold.

    Flood levels 2–5: the reach gauge's readings against its thresholds (as in
    :func:`threshold_crossings`). Landslide level 4: the zone's snake line on or
    beyond its critical line. Landslide level 5: the zone's slope has failed (from
    the failure, in the storm's damage record, to the end of the storm).
    """
    found = []
    levels = _series(storm.levels, "level_m")
    for gauge in storm.catalogue.level_gauges:
        if gauge.station_id not in levels:
            continue
        times, values = levels[gauge.station_id]
        observed = [int(level_for(gauge, v)) for v in values]
        for level in (2, 3, 4, 5):
            spans = skill_.exceedance_spans(times, [o >= level for o in observed])
            if spans:
                found.append(skill_.Exceedance(gauge.reach_id, "flood", level, spans))
    if storm.catalogue.zones:
        for snake in snakes if snakes is not None else snake_lines(storm):
            over = critical_margin(snake.r60_mm, snake.swi_mm, snake.critical_line) >= 0
            spans = skill_.exceedance_spans(snake.times, [bool(o) for o in over])
            if spans:
                found.append(skill_.Exceedance(snake.area_id, "landslide", 4, spans))
    for damage in storm.damage:
        if damage.kind == "slope_failure":
            found.append(skill_.Exceedance(damage.area_id, "landslide", 5, ((damage.time, storm.end),)))
    return found


def drill_skill(storm: Storm, chain: Sequence[Mapping[str, Any]], drill_id: str | None = None,
                snakes: Sequence[SnakeLine] | None = None) -> skill_.StormSkill:
    """The skill of a drill of ``storm`` from its alert messages as alert-chain rows."""
    return skill_.storm_skill(
        storm.name, storm.title, storm.labels, exceedances(storm, snakes), skill_.level_changes_from_rows(chain),
        alerts_raised=len({row["alert_id"] for row in chain}),
        rivers={reach.reach_id: reach.river for reach in storm.catalogue.reaches}, drill_id=drill_id)


def first_alert_at_or_above(alerts: Sequence[AlertEvent], area_id: str, hazard: str,
                            level: int) -> AlertEvent | None:
    """The first alert message (not a cancel) for an area and hazard at ``level`` or higher."""
    matching = [a for a in alerts if a.area_id == area_id and a.hazard.value == hazard
                and int(a.level) >= level and a.msg_type is not MsgType.CANCEL]
    return min(matching, key=lambda a: (a.event_time, a.sequence), default=None)


def lead_times(crossings: Sequence[Crossing], alerts: Sequence[AlertEvent]) -> list[LeadTime]:
    """For each crossing, the first alert message for its area and hazard at or above its level."""
    out = []
    for crossing in crossings:
        first = first_alert_at_or_above(alerts, crossing.area_id, crossing.hazard, crossing.level)
        out.append(LeadTime(crossing, None if first is None else first.event_time,
                            None if first is None else first.alert_id))
    return out


@dataclasses.dataclass(frozen=True)
class FloodWarning:
    """How long before a river flooded its people were warned (level 3) and told to evacuate (level 4)."""

    flooded: Crossing
    warned: dt.datetime | None
    evacuate: dt.datetime | None

    def lead(self, at: dt.datetime | None) -> float | None:
        return None if at is None else (self.flooded.time - at).total_seconds() / 60.0


def flood_warnings(crossings: Sequence[Crossing], alerts: Sequence[AlertEvent]) -> list[FloodWarning]:
    """For each reach that reached bank-full (level 5): its first level-3 and level-4 alerts.

    The per-threshold lead times above are zero whenever an alert follows the
    gauge as it crosses; for the people along a river what counts is how long
    before the flood they were warned and told to leave.
    """
    out = []
    for flooded in (c for c in crossings if c.hazard == "flood" and c.level == 5):
        warned, evacuate = (first_alert_at_or_above(alerts, flooded.area_id, "flood", level) for level in (3, 4))
        out.append(FloodWarning(flooded, None if warned is None else warned.event_time,
                                None if evacuate is None else evacuate.event_time))
    return out


def alert_histories(alerts: Sequence[AlertEvent]) -> list[list[AlertEvent]]:
    """Messages grouped by alert, each in order, alerts by when they were raised."""
    by_alert: dict[str, list[AlertEvent]] = {}
    for message in sorted(alerts, key=lambda m: (m.event_time, m.sequence)):
        by_alert.setdefault(message.alert_id, []).append(message)
    return sorted(by_alert.values(), key=lambda h: (h[0].event_time, h[0].area_id))


def level_steps(history: Sequence[AlertEvent], end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime, int]]:
    """(from, to, level) segments of one alert's life."""
    steps = []
    for message, following in zip(history, [*history[1:], None]):
        until = following.event_time if following is not None else end
        if message.msg_type is not MsgType.CANCEL and until > message.event_time:
            steps.append((message.event_time, until, int(message.level)))
    return steps


# --------------------------------------------------------------------------- plots


def _plots(storm: Storm, alerts: Sequence[AlertEvent], crossings: Sequence[Crossing],
           snakes: Sequence[SnakeLine], folder: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    histories = alert_histories(alerts)
    files: dict[str, str] = {}
    fmt = mdates.DateFormatter("%H:%M", tz=JST)

    def finish(fig: Any, name: str, title: str) -> None:
        fig.suptitle(f"EXERCISE — {title}\n{storm.title}", fontsize=10)
        fig.tight_layout()
        fig.savefig(folder / name, dpi=90)
        plt.close(fig)
        files[name] = title

    levels = _series(storm.levels, "level_m")
    if levels:
        crossed = {c.area_id for c in crossings if c.hazard == "flood"}
        gauges = [g for g in storm.catalogue.level_gauges if g.station_id in levels]
        gauges.sort(key=lambda g: (g.reach_id not in crossed, -levels[g.station_id][1].max() / g.caution_m))
        gauges = gauges[:9]
        cols = min(3, len(gauges))
        rows = -(-len(gauges) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
        for ax, gauge in zip(axes.ravel(), gauges):
            times, values = levels[gauge.station_id]
            for history in histories:
                if history[0].area_id == gauge.reach_id:
                    for start, end, level in level_steps(history, storm.end):
                        ax.axvspan(start, end, color=_COLOURS[level], alpha=0.25, lw=0)
            ax.plot(times, values, color="#1f4e99", lw=1.2)
            for name, value in gauge.thresholds().items():
                ax.axhline(value, color=_THRESHOLD_COLOURS[name], lw=0.9, ls="--")
            ax.set_title(gauge.station_id, fontsize=8)
            ax.set_ylabel("m", fontsize=7)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_formatter(fmt)
        for ax in axes.ravel()[len(gauges):]:
            ax.axis("off")
        finish(fig, "hydrographs.png", "water levels against thresholds (shading: alert level raised)")

    rain = _series(storm.rain, "rain_mm")
    if rain:
        stations = sorted(rain, key=lambda s: -rain[s][1].sum())[:8]
        cols = min(2, len(stations))
        rows = -(-len(stations) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 2.4 * rows), squeeze=False)
        for ax, sid in zip(axes.ravel(), stations):
            times, values = rain[sid]
            step = (times[1] - times[0]).total_seconds() if len(times) > 1 else 600.0
            per = max(1, round(600 / step))
            n = len(values) // per * per
            ten = values[:n].reshape(-1, per).sum(axis=1)
            ax.bar(times[per - 1:n:per], ten, width=per * step / 86400.0, align="edge", color="#3a7bd5")
            ax.set_ylabel("mm / 10 min", fontsize=7)
            twin = ax.twinx()
            twin.plot(times, np.cumsum(values), color="#333333", lw=1)
            twin.set_ylabel("total mm", fontsize=7)
            twin.tick_params(labelsize=7)
            ax.set_title(f"{sid}: {values.sum():.0f} mm, max 60 min "
                         f"{rolling_sum(values, max(1, round(3600 / step))).max():.0f} mm", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_formatter(fmt)
        for ax in axes.ravel()[len(stations):]:
            ax.axis("off")
        finish(fig, "rainfall.png", "rainfall at the gauges (bars: 10-minute totals; line: cumulative)")

    if snakes:
        shown = sorted(snakes, key=lambda s: -float(critical_margin(s.r60_mm, s.swi_mm, s.critical_line).max()))[:6]
        cols = min(3, len(shown))
        rows = -(-len(shown) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.4 * rows), squeeze=False)
        failures = {d.area_id: d.time for d in storm.damage if d.kind == "slope_failure"}
        for ax, snake in zip(axes.ravel(), shown):
            cl = snake.critical_line
            top = max(float(snake.swi_mm.max()) * 1.1, cl.swi_at_no_rain_mm * 1.05)
            x = np.linspace(cl.swi_floor_mm, cl.swi_at_no_rain_mm, 50)
            ax.plot(x, cl.r60_at_dry_mm * (1 - x / cl.swi_at_no_rain_mm), color="#aa00aa", lw=1.5,
                    label="critical line")
            ax.axvline(cl.swi_floor_mm, color="#aa00aa", lw=0.6, ls=":")
            ax.plot(snake.swi_mm, snake.r60_mm, color="#1f4e99", lw=1, label="snake line")
            over = critical_margin(snake.r60_mm, snake.swi_mm, cl) >= 0
            ax.plot(snake.swi_mm[over], snake.r60_mm[over], ".", color="#ff2800", ms=2)
            if snake.area_id in failures and failures[snake.area_id] in snake.times:
                k = snake.times.index(failures[snake.area_id])
                ax.plot(snake.swi_mm[k], snake.r60_mm[k], "kx", ms=8, label="slope fails")
            ax.set_xlim(0, top)
            ax.set_ylim(0, max(float(snake.r60_mm.max()) * 1.1, cl.r60_at_dry_mm * 1.05))
            ax.set_xlabel("soil water index, mm", fontsize=7)
            ax.set_ylabel("60-minute rain, mm", fontsize=7)
            ax.set_title(snake.area_id, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, loc="upper right")
        for ax in axes.ravel()[len(shown):]:
            ax.axis("off")
        note = "" if storm.catalogue.zones else " (no landslide zones: each rain gauge's cell, default line)"
        finish(fig, "snake.png", f"soil water index snake lines against the critical line{note}")

    areas = sorted({h[0].area_id for h in histories} | {c.area_id for c in crossings})
    fig, ax = plt.subplots(figsize=(10, 0.5 * max(3, len(areas)) + 1.2))
    for row, area in enumerate(areas):
        for history in histories:
            if history[0].area_id == area:
                for start, end, level in level_steps(history, storm.end):
                    ax.barh(row, (end - start).total_seconds() / 86400.0, left=mdates.date2num(start), height=0.6,
                            color=_COLOURS[level], edgecolor="#444444", lw=0.5)
        for crossing in crossings:
            if crossing.area_id == area:
                ax.plot(crossing.time, row + 0.42, "v",  # type: ignore[arg-type]  # matplotlib converts dates
                        color=_COLOURS[crossing.level], mec="#333333", ms=7)
    ax.set_yticks(range(len(areas)), areas, fontsize=7)
    ax.set_xlim(storm.start, storm.end)  # type: ignore[arg-type]  # matplotlib converts dates
    ax.xaxis.set_major_formatter(fmt)
    ax.set_xlabel("JST (bars: alert level in force; triangles: threshold crossed in the storm)", fontsize=8)
    if not areas:
        ax.text(0.5, 0.5, "no alert raised, no threshold crossed", transform=ax.transAxes, ha="center")
    finish(fig, "timeline.png", "alert timeline")
    return files


# --------------------------------------------------------------------------- the report


def build_report(storm: Storm, alerts: Sequence[AlertEvent], info: DrillInfo) -> dict[str, Any]:
    """The report's figures, as plain data (also written as report.json)."""
    snakes = snake_lines(storm)
    crossings = threshold_crossings(storm, snakes)
    leads = lead_times(crossings, alerts)
    warnings = flood_warnings(crossings, alerts)
    histories = alert_histories(alerts)
    from suibou.drill import alert_chain

    chain = alert_chain(list(alerts), info.drill_id)
    skill = drill_skill(storm, chain, info.drill_id, snakes)
    return {
        "drill_id": info.drill_id, "storm": storm.name, "title": storm.title, "provenance": storm.provenance,
        "labels": list(storm.labels), "exercise": True,
        "alerts": [{
            "alert_id": h[0].alert_id, "area_id": h[0].area_id, "hazard": h[0].hazard.value,
            "raised": h[0].event_time.isoformat(), "levels": [int(m.level) for m in h],
            "peak": max(int(m.level) for m in h),
            "cancelled": next((m.event_time.isoformat() for m in h if m.msg_type is MsgType.CANCEL), None),
            "all_exercise": all(m.exercise for m in h),
        } for h in histories],
        "crossings": [{
            "area_id": lt.crossing.area_id, "hazard": lt.crossing.hazard, "level": lt.crossing.level,
            "what": lt.crossing.what, "time": lt.crossing.time.isoformat(),
            "first_alert": None if lt.alert_time is None else lt.alert_time.isoformat(),
            "alert_id": lt.alert_id, "lead_min": lt.minutes,
        } for lt in leads],
        "before_floods": [{
            "area_id": w.flooded.area_id, "bank_full": w.flooded.time.isoformat(),
            "level_3_from": None if w.warned is None else w.warned.isoformat(), "level_3_lead_min": w.lead(w.warned),
            "level_4_from": None if w.evacuate is None else w.evacuate.isoformat(),
            "level_4_lead_min": w.lead(w.evacuate),
        } for w in warnings],
        "skill": skill_.skill_dict(skill),
        "alert_messages": chain,
        "_objects": (crossings, leads, warnings, histories, snakes, skill),
    }


def write_report(storm: Storm, alerts: Sequence[AlertEvent], info: DrillInfo, path: str | Path) -> Path:
    """Writes ``path`` (Markdown), the PNG plots and ``report.json`` beside it; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = build_report(storm, alerts, info)
    crossings, leads, warnings, histories, snakes, skill = data.pop("_objects")
    plots = _plots(storm, alerts, crossings, snakes, path.parent)
    (path.parent / "report.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    lines = [f"# EXERCISE — drill report `{info.drill_id}`", "",
             ("> **This was an exercise (訓練), not an activation.** Every message of this drill carried the "
             "exercise marker and the drill id; every alert below has CAP status `Exercise` and reaches only "
             "partners who asked for exercises."), "",
             (f"**Storm:** {storm.title} (`{storm.name}`) — provenance: *{storm.provenance}*; "
             f"labels: {', '.join(storm.labels) or 'none'}."), "", storm.description, ""]
    speed = "as fast as possible" if info.speed is None else f"{info.speed:g}× (storm seconds per wall second)"
    sent = ", ".join(f"{k} {v}" for k, v in info.sent.items() if v)
    lines += [(f"**Replay:** from {_jst(info.start_at or storm.start)} to {_jst(storm.end)} JST, {speed}; "
              f"{info.published} messages ({sent}); drill took {info.elapsed_s:.0f} s "
              f"(publishing {info.publish_s:.0f} s)."), ""]

    lines += ["## What was raised", ""]
    if not histories:
        lines += ["No alert was raised.", ""]
    else:
        lines += ["| area | hazard | raised (JST) | levels | peak | ended |", "|---|---|---|---|---|---|"]
        for h in histories:
            end = next((m.event_time for m in h if m.msg_type is MsgType.CANCEL), None)
            path_text = " → ".join(f"{int(m.level)} {AlertLevel(int(m.level)).colour}" for m in h)
            lines.append(f"| {h[0].area_id} | {h[0].hazard.value} | {_jst(h[0].event_time)} | {path_text} | "
                         f"{max(int(m.level) for m in h)} | {'cancelled ' + _jst(end) if end else 'in force'} |")
        lines.append("")

    lines += ["## Lead time before each threshold crossing", "",
              ("Lead time = when the storm crossed the threshold − when the first alert at or above that level "
              "was raised for that area. Positive: warned early."), ""]
    if not leads:
        lines += ["No threshold was crossed during the storm."
                  + (" No alert was raised either: the correct outcome for a negative control." if not histories
                     else " Alerts raised without a crossing are listed above."), ""]
    else:
        lines += ["| area | threshold | crossed (JST) | first alert at or above (JST) | lead time |",
                  "|---|---|---|---|---|"]
        for lt in leads:
            lines.append(f"| {lt.crossing.area_id} | {lt.crossing.level}: {lt.crossing.what} | "
                         f"{_jst(lt.crossing.time)} | {_jst(lt.alert_time)} | {_minutes(lt.minutes)} |")
        early = sum(1 for lt in leads if lt.minutes is not None and lt.minutes > 0)
        on_time = sum(1 for lt in leads if lt.minutes == 0)
        late = sum(1 for lt in leads if lt.minutes is not None and lt.minutes < 0)
        missed = sum(1 for lt in leads if lt.minutes is None)
        lines += ["", (f"{len(leads)} crossings: {early} warned early, {on_time} warned as it happened, "
                      f"{late} warned late, {missed} not warned."), ""]
        if warnings:
            lines += [("**Before each flood** (bank-full): how long before the river overflowed its people had "
                      "a flood warning (level 3, 氾濫警戒情報) and were told to evacuate (level 4, 氾濫危険情報)."),
                      "", "| area | bank-full (JST) | level 3 from | lead | level 4 from | lead |",
                      "|---|---|---|---|---|---|"]
            for w in warnings:
                lines.append(f"| {w.flooded.area_id} | {_jst(w.flooded.time)} | {_jst(w.warned)} | "
                             f"{_minutes(w.lead(w.warned))} | {_jst(w.evacuate)} | "
                             f"{_minutes(w.lead(w.evacuate))} |")
            lines.append("")
        crossed_areas = {c.area_id for c in crossings}
        extra = [h[0].area_id for h in histories if h[0].area_id not in crossed_areas]
        if extra:
            lines += [f"Alerts for areas that crossed no threshold: {', '.join(sorted(set(extra)))}.", ""]

    lines += skill_.skill_markdown(skill)

    lines += ["## Plots", ""]
    for name, title in plots.items():
        lines += [f"### {title[0].upper()}{title[1:]}", "", f"![{title}]({name})", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
