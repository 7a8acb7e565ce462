"""Warning skill of a drill: hits, misses, false alarms, lead times, time in force.

Everything here is a pure function of two inputs: the storm's truth (when each
area was at or beyond the threshold of each scored level,
:class:`Exceedance`) and the alert level each area was raised or lowered to
(:class:`LevelChange`). ``replay_data.report`` derives both from a drill;
``docs/skill.md`` states the definitions with worked examples. In short:

**Scored levels and their events** (:data:`SCORED_LEVELS`). Flood level 2, 3,
4, 5 match the reach gauge reaching flood caution, evacuation judgement, flood
danger and bank-full; landslide level 4 (土砂災害警戒情報) matches the zone's
snake line reaching its critical line; landslide level 5 (disaster occurring)
matches the zone's slope failing. The *event* of an area and level is the
first time its threshold is reached in the storm.

**Warning.** A maximal interval during which an area's alert level for a
hazard was at or above a scored level (an alert raised to 3 then to 4 is one
level-3 warning and one level-4 warning). A cancel, or an update below the
level, ends it.

**Events** are *warned early* (a warning at or above the level was in force
when the threshold was reached, raised before), *warned at the crossing*
(raised at the very reading that reached it), *lowered before* (warned
earlier, but not in force when it came), *warned late* (first raised within
:data:`LATE_WINDOW` after it) or *missed*. Hits are the first two; the rest
are misses. Lead time = event − raise of the warning in force at the event.

**Warnings** are *before their event* (the threshold was first reached, within
the verification window, while the warning was in force), *after their event*
(the threshold had been reached up to :data:`LATE_WINDOW` before the raise, or
was still reached at the raise) or *false alarms* (the threshold was not
reached in that area from :data:`LATE_WINDOW` before the raise until the
warning ended, or until the end of the storm for a warning still in force).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: How long after an event a first warning still counts as a (late) warning of it, and how
#: long before a warning's raise its threshold may have been reached for the warning to be
#: a late one rather than a false alarm. An hour: a gauge's rise on the smallest rivers
#: takes under an hour, so a later warning belongs to another rise.
LATE_WINDOW = dt.timedelta(minutes=60)

JST = dt.timezone(dt.timedelta(hours=9), "JST")


@dataclasses.dataclass(frozen=True)
class ScoredLevel:
    """An alert level that is scored, and the event in the storm it is meant to precede."""

    hazard: str
    level: int
    event: str


SCORED_LEVELS: tuple[ScoredLevel, ...] = (
    ScoredLevel("flood", 2, "flood caution (氾濫注意水位) at the reach gauge"),
    ScoredLevel("flood", 3, "evacuation judgement (避難判断水位) at the reach gauge"),
    ScoredLevel("flood", 4, "flood danger (氾濫危険水位) at the reach gauge"),
    ScoredLevel("flood", 5, "bank-full at the reach gauge (flooding)"),
    ScoredLevel("landslide", 4, "snake line on or beyond the critical line (土砂災害警戒情報 criterion)"),
    ScoredLevel("landslide", 5, "the slope fails (the storm's ground truth)"),
)

# Event outcomes.
WARNED_EARLY = "warned early"
WARNED_AT_CROSSING = "warned at the crossing"
LOWERED_BEFORE = "lowered before"
WARNED_LATE = "warned late"
MISSED = "missed"
HIT_OUTCOMES = (WARNED_EARLY, WARNED_AT_CROSSING)

# Warning verdicts.
BEFORE_EVENT = "before its event"
AFTER_EVENT = "after its event"
FALSE_ALARM = "false alarm"


@dataclasses.dataclass(frozen=True)
class Exceedance:
    """When one area was at or beyond the threshold of one scored level, in the storm's truth.

    Attributes:
        spans: Closed (first, last) sample times of each run of samples at or beyond the
            threshold, in time order; never empty.
    """

    area_id: str
    hazard: str
    level: int
    spans: tuple[tuple[dt.datetime, dt.datetime], ...]

    @property
    def first(self) -> dt.datetime:
        """The event: the first time the threshold was reached."""
        return self.spans[0][0]


@dataclasses.dataclass(frozen=True)
class LevelChange:
    """An area's alert level for a hazard from ``time`` on (a cancel is level 1)."""

    time: dt.datetime
    area_id: str
    hazard: str
    level: int
    is_cancel: bool = False
    sequence: int = 0


@dataclasses.dataclass(frozen=True)
class RaisedWarning:
    """An interval during which an area was under an alert at or above ``level``.

    ``lowered`` is None for a warning still in force at the end of the drill.
    """

    area_id: str
    hazard: str
    level: int
    raised: dt.datetime
    lowered: dt.datetime | None

    def in_force_at(self, time: dt.datetime) -> bool:
        return self.raised <= time and (self.lowered is None or time < self.lowered)


@dataclasses.dataclass(frozen=True)
class EventOutcome:
    """How one event (first crossing of an area's threshold) was warned.

    Attributes:
        lead_min: Event − raise of the warning in force at the event (≥ 0) for a hit;
            event − first raise (< 0) for a late warning; None otherwise.
        in_force_min: How long, in total, the area was under a warning at or above the
            level before the event (more than ``lead_min`` only if a warning was lowered
            and raised again).
        first_raised: The first raise at or above the level, up to the late window after.
        river: The reach's river, for a flood event.
    """

    area_id: str
    hazard: str
    level: int
    time: dt.datetime
    outcome: str
    lead_min: float | None
    in_force_min: float
    first_raised: dt.datetime | None
    river: str | None = None

    @property
    def hit(self) -> bool:
        return self.outcome in HIT_OUTCOMES


@dataclasses.dataclass(frozen=True)
class WarningOutcome:
    """Whether one warning was followed by its event, and how long it was in force before it.

    Attributes:
        event_time: The first time the threshold was reached in the warning's
            verification window; None for a false alarm.
        in_force_before_event_min: ``event_time − raised`` for a warning before its
            event (it was in force at the event); None otherwise.
    """

    warning: RaisedWarning
    verdict: str
    event_time: dt.datetime | None
    in_force_before_event_min: float | None

    @property
    def in_force_at_event(self) -> bool:
        return self.verdict == BEFORE_EVENT


@dataclasses.dataclass(frozen=True)
class LeadDistribution:
    """Lead times (minutes) of the hits of one level, and the mean over every event."""

    hits: int
    minimum: float | None
    median: float | None
    maximum: float | None
    mean_of_hits: float | None
    #: Mean over every event, a miss or late warning counting 0 minutes (no lead).
    mean_all_events: float | None


@dataclasses.dataclass(frozen=True)
class LevelSkill:
    """Hits, misses and false alarms of one scored level."""

    scored: ScoredLevel
    events: int
    warned_early: int
    warned_at_crossing: int
    lowered_before: int
    warned_late: int
    missed: int
    lead: LeadDistribution
    warnings: int
    before_event: int
    after_event: int
    false_alarms: int
    #: Median time in force before the event of the warnings that preceded it.
    median_in_force_min: float | None

    @property
    def hits(self) -> int:
        return self.warned_early + self.warned_at_crossing

    @property
    def misses(self) -> int:
        return self.events - self.hits

    @property
    def probability_of_detection(self) -> float | None:
        return None if self.events == 0 else self.hits / self.events

    @property
    def false_alarm_ratio(self) -> float | None:
        return None if self.warnings == 0 else self.false_alarms / self.warnings


@dataclasses.dataclass(frozen=True)
class TargetResult:
    """One target of the skill work, judged on one storm.

    ``met`` is None when the storm has nothing to judge it on; ``binding`` is False for
    a figure shown for reference only (e.g. the short version of a storm whose target
    is set on the full storm).
    """

    target: str
    figure: str
    met: bool | None
    binding: bool = True


@dataclasses.dataclass(frozen=True)
class StormSkill:
    """The skill of one drill of one storm."""

    storm: str
    title: str
    alerts_raised: int
    levels: tuple[LevelSkill, ...]
    events: tuple[EventOutcome, ...]
    warnings: tuple[WarningOutcome, ...]
    targets: tuple[TargetResult, ...]
    drill_id: str | None = None

    @property
    def warning_count(self) -> int:
        return len(self.warnings)

    @property
    def false_alarms(self) -> int:
        return sum(1 for w in self.warnings if w.verdict == FALSE_ALARM)

    @property
    def false_alarm_ratio(self) -> float | None:
        return None if not self.warnings else self.false_alarms / len(self.warnings)


# --------------------------------------------------------------------------- the two inputs


def exceedance_spans(times: Sequence[dt.datetime],
                     reached: Sequence[bool]) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
    """Runs of samples at or beyond a threshold, as closed (first, last) sample times.

    Examples:
        >>> t = [dt.datetime(2005, 9, 4, 12, m, tzinfo=dt.timezone.utc) for m in range(5)]
        >>> [(a.minute, b.minute) for a, b in exceedance_spans(t, [False, True, True, False, True])]
        [(1, 2), (4, 4)]
    """
    spans = []
    start: dt.datetime | None = None
    previous: dt.datetime | None = None
    for time, flag in zip(times, reached):
        if flag and start is None:
            start = time
        elif not flag and start is not None and previous is not None:
            spans.append((start, previous))
            start = None
        previous = time
    if start is not None and previous is not None:
        spans.append((start, previous))
    return tuple(spans)


def level_changes_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[LevelChange]:
    """Level changes from alert-chain rows (``suibou.drill.alert_chain``, the golden files)."""
    return [LevelChange(time=dt.datetime.fromisoformat(r["event_time"]), area_id=r["area_id"], hazard=r["hazard"],
                        level=1 if r["msg_type"] == "Cancel" else int(r["level"]),
                        is_cancel=r["msg_type"] == "Cancel", sequence=int(r["sequence"]))
            for r in rows]


def warnings_from_changes(changes: Iterable[LevelChange],
                          scored: Sequence[ScoredLevel] = SCORED_LEVELS) -> list[RaisedWarning]:
    """Every warning (interval at or above a scored level) of every area, by raise time.

    The level at a time is that of its last change, a cancel being applied before a
    raise: an alert cancelled and a new one raised at the same reading leave the
    area under the same warning.
    """
    by_area: dict[tuple[str, str], list[LevelChange]] = {}
    for change in changes:
        by_area.setdefault((change.area_id, change.hazard), []).append(change)
    found = []
    for (area_id, hazard), area_changes in by_area.items():
        levels = [s.level for s in scored if s.hazard == hazard]
        area_changes.sort(key=lambda c: (c.time, not c.is_cancel, c.sequence))
        level_at = {change.time: change.level for change in area_changes}  # the last change wins
        opened: dict[int, dt.datetime] = {}
        for time, area_level in sorted(level_at.items()):
            for level in levels:
                if area_level >= level and level not in opened:
                    opened[level] = time
                elif area_level < level and level in opened:
                    found.append(RaisedWarning(area_id, hazard, level, opened.pop(level), time))
        found += [RaisedWarning(area_id, hazard, level, raised, None) for level, raised in opened.items()]
    return sorted(found, key=lambda w: (w.raised, w.area_id, w.hazard, w.level))


# --------------------------------------------------------------------------- matching


def _minutes(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 60.0


def event_outcome(event: Exceedance, warnings: Sequence[RaisedWarning], late_window: dt.timedelta = LATE_WINDOW,
                  river: str | None = None) -> EventOutcome:
    """How the event of ``event`` (its first crossing) was warned by ``warnings`` (any areas)."""
    time = event.first
    own = sorted((w for w in warnings if (w.area_id, w.hazard, w.level) == (event.area_id, event.hazard,
                                                                             event.level)),
                 key=lambda w: w.raised)
    in_force_min = sum(_minutes(min(w.lowered or time, time) - w.raised) for w in own if w.raised < time)
    first = next((w.raised for w in own if w.raised <= time + late_window), None)
    current = next((w for w in own if w.in_force_at(time)), None)
    if current is not None:
        lead = _minutes(time - current.raised)
        outcome = WARNED_EARLY if lead > 0 else WARNED_AT_CROSSING
        return EventOutcome(event.area_id, event.hazard, event.level, time, outcome, lead, in_force_min, first,
                            river)
    if any(w.raised < time for w in own):
        return EventOutcome(event.area_id, event.hazard, event.level, time, LOWERED_BEFORE, None, in_force_min,
                            first, river)
    late = next((w for w in own if time < w.raised <= time + late_window), None)
    if late is not None:
        return EventOutcome(event.area_id, event.hazard, event.level, time, WARNED_LATE,
                            _minutes(time - late.raised), 0.0, first, river)
    return EventOutcome(event.area_id, event.hazard, event.level, time, MISSED, None, 0.0, None, river)


def warning_outcome(warning: RaisedWarning, exceedances: Sequence[Exceedance],
                    late_window: dt.timedelta = LATE_WINDOW) -> WarningOutcome:
    """Whether ``warning``'s threshold was reached in its area in its verification window.

    The window runs from ``late_window`` before the raise to the warning's end (to
    the end of the drill for one still in force).
    """
    window_start = warning.raised - late_window
    overlapping = [first for exceedance in exceedances
                   if (exceedance.area_id, exceedance.hazard, exceedance.level) == (warning.area_id, warning.hazard,
                                                                                    warning.level)
                   for first, last in exceedance.spans
                   if last >= window_start and (warning.lowered is None or first < warning.lowered)]
    if not overlapping:
        return WarningOutcome(warning, FALSE_ALARM, None, None)
    # The earliest run decides: a warning raised while (or just after) its threshold was
    # reached came after its event, even if the threshold is reached again later.
    event_time = min(overlapping)
    if event_time >= warning.raised:
        return WarningOutcome(warning, BEFORE_EVENT, event_time, _minutes(event_time - warning.raised))
    return WarningOutcome(warning, AFTER_EVENT, event_time, None)


# --------------------------------------------------------------------------- summaries


def lead_distribution(outcomes: Sequence[EventOutcome]) -> LeadDistribution:
    """Lead times of the hits among ``outcomes`` (one level), and the mean over all of them.

    Examples:
        >>> t = dt.datetime(2019, 10, 12, tzinfo=dt.timezone.utc)
        >>> hit = EventOutcome("R", "flood", 3, t, WARNED_EARLY, 40.0, 40.0, t)
        >>> miss = EventOutcome("R2", "flood", 3, t, MISSED, None, 0.0, None)
        >>> d = lead_distribution([hit, miss])
        >>> d.hits, d.mean_of_hits, d.mean_all_events
        (1, 40.0, 20.0)
    """
    leads = sorted(o.lead_min for o in outcomes if o.hit and o.lead_min is not None)
    all_events = [o.lead_min if o.hit and o.lead_min is not None else 0.0 for o in outcomes]
    return LeadDistribution(
        hits=len(leads),
        minimum=leads[0] if leads else None,
        median=statistics.median(leads) if leads else None,
        maximum=leads[-1] if leads else None,
        mean_of_hits=statistics.fmean(leads) if leads else None,
        mean_all_events=statistics.fmean(all_events) if all_events else None,
    )


def level_skill(scored: ScoredLevel, events: Sequence[EventOutcome],
                warnings: Sequence[WarningOutcome]) -> LevelSkill:
    """Counts and lead times of one scored level from the outcomes of every level."""
    own_events = [e for e in events if (e.hazard, e.level) == (scored.hazard, scored.level)]
    own_warnings = [w for w in warnings if (w.warning.hazard, w.warning.level) == (scored.hazard, scored.level)]
    in_force = [w.in_force_before_event_min for w in own_warnings if w.in_force_before_event_min is not None]

    def count(outcome: str) -> int:
        return sum(1 for e in own_events if e.outcome == outcome)

    return LevelSkill(
        scored=scored, events=len(own_events), warned_early=count(WARNED_EARLY),
        warned_at_crossing=count(WARNED_AT_CROSSING), lowered_before=count(LOWERED_BEFORE),
        warned_late=count(WARNED_LATE), missed=count(MISSED), lead=lead_distribution(own_events),
        warnings=len(own_warnings),
        before_event=sum(1 for w in own_warnings if w.verdict == BEFORE_EVENT),
        after_event=sum(1 for w in own_warnings if w.verdict == AFTER_EVENT),
        false_alarms=sum(1 for w in own_warnings if w.verdict == FALSE_ALARM),
        median_in_force_min=statistics.median(in_force) if in_force else None,
    )


# --------------------------------------------------------------------------- targets (issue 18)

#: Issue 18's targets. Flood lead targets are set on named storms; the others on every storm.
HAGIBIS_MEAN_LEAD_MIN = 60.0
SUGINAMI_MEAN_LEAD_MIN = 30.0
LANDSLIDE_LEAD_RANGE_MIN = (30.0, 180.0)
MAX_FALSE_ALARM_RATIO = 0.20


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.0f}"


def _mean_lead_target(target: str, events: Sequence[EventOutcome], minimum: float, binding: bool) -> TargetResult:
    if not events:
        return TargetResult(target, "no such crossing in this drill", None, binding)
    lead = lead_distribution(events)
    mean = lead.mean_all_events if lead.mean_all_events is not None else 0.0
    early = sum(1 for e in events if e.outcome == WARNED_EARLY)
    figure = (f"mean {mean:+.0f} min over {len(events)} crossings (a miss counts 0); {early} warned early, "
              f"{lead.hits - early} at the crossing, {len(events) - lead.hits} not in force; "
              f"hits' leads {_signed(lead.minimum)} to {_signed(lead.maximum)} min")
    return TargetResult(target, figure, mean >= minimum, binding)


def judge_targets(storm: str, labels: Sequence[str], alerts_raised: int, events: Sequence[EventOutcome],
                  warnings: Sequence[WarningOutcome]) -> tuple[TargetResult, ...]:
    """Issue 18's targets that apply to ``storm``, each with this drill's figure."""
    results = []
    if storm.startswith("hagibis-2019"):
        for level, name in ((3, "evacuation-judgement"), (4, "flood-danger")):
            tama = [e for e in events if e.hazard == "flood" and e.level == level and e.river is not None
                    and e.river.startswith("Tama")]
            results.append(_mean_lead_target(
                f"Hagibis: mean lead ≥ {HAGIBIS_MEAN_LEAD_MIN:.0f} min before each {name} crossing on the "
                "Tama reaches", tama, HAGIBIS_MEAN_LEAD_MIN, binding=True))
    if storm.startswith("suginami-2005"):
        danger = [e for e in events if e.hazard == "flood" and e.level == 4]
        full = storm == "suginami-2005"
        results.append(_mean_lead_target(
            f"Suginami: mean lead ≥ {SUGINAMI_MEAN_LEAD_MIN:.0f} min before each flood-danger crossing"
            + ("" if full else " (set on the full storm; the short one shown for reference)"),
            danger, SUGINAMI_MEAN_LEAD_MIN, binding=full))
    landslide = [e for e in events if e.hazard == "landslide" and e.level == 4]
    if landslide:
        low, high = LANDSLIDE_LEAD_RANGE_MIN
        leads = ", ".join(f"{e.area_id} {_signed(e.lead_min)}" if e.hit else f"{e.area_id} {e.outcome}"
                          for e in landslide)
        met = all(e.hit and e.lead_min is not None and low <= e.lead_min <= high for e in landslide)
        results.append(TargetResult(
            f"Landslide level 4 {low:.0f}–{high:.0f} min before each critical-line crossing",
            f"{sum(1 for e in landslide if e.hit and e.lead_min is not None and low <= e.lead_min <= high)} "
            f"of {len(landslide)} in range; leads (min): {leads}", met))
    if "negative-control" in labels:
        results.append(TargetResult("Quiet day: 0 alerts", f"{alerts_raised} alerts raised", alerts_raised == 0))
    false_alarms = sum(1 for w in warnings if w.verdict == FALSE_ALARM)
    if warnings:
        ratio = false_alarms / len(warnings)
        results.append(TargetResult(
            f"False alarms ≤ {MAX_FALSE_ALARM_RATIO:.0%} of warnings",
            f"{false_alarms} of {len(warnings)} warnings ({ratio:.0%})", ratio <= MAX_FALSE_ALARM_RATIO))
    else:
        results.append(TargetResult(f"False alarms ≤ {MAX_FALSE_ALARM_RATIO:.0%} of warnings",
                                    "no warning raised", None))
    return tuple(results)


def storm_skill(storm: str, title: str, labels: Sequence[str], exceedances: Sequence[Exceedance],
                changes: Sequence[LevelChange], *, alerts_raised: int, rivers: Mapping[str, str] | None = None,
                drill_id: str | None = None, late_window: dt.timedelta = LATE_WINDOW,
                scored: Sequence[ScoredLevel] = SCORED_LEVELS) -> StormSkill:
    """The skill of one drill: every event and warning judged, per-level counts and the targets.

    Args:
        exceedances: The storm's truth (``replay_data.report.exceedances``).
        changes: The drill's alert level changes.
        alerts_raised: Distinct alerts the drill raised (for the quiet-day target).
        rivers: Reach id → river name, for targets set on one river.
    """
    rivers = rivers or {}
    levels = {(s.hazard, s.level) for s in scored}
    warnings = warnings_from_changes(changes, scored)
    truth = [e for e in exceedances if (e.hazard, e.level) in levels]
    events = sorted((event_outcome(e, warnings, late_window, rivers.get(e.area_id)) for e in truth),
                    key=lambda o: (o.time, o.area_id, o.hazard, o.level))
    judged = [warning_outcome(w, truth, late_window) for w in warnings]
    per_level = tuple(level_skill(s, events, judged) for s in scored)
    return StormSkill(storm=storm, title=title, alerts_raised=alerts_raised, levels=per_level,
                      events=tuple(events), warnings=tuple(judged),
                      targets=judge_targets(storm, labels, alerts_raised, events, judged), drill_id=drill_id)


# --------------------------------------------------------------------------- rendering


def _jst(value: dt.datetime | None) -> str:
    return "—" if value is None else value.astimezone(JST).strftime("%m-%d %H:%M")


def _lead(value: float | None) -> str:
    return "—" if value is None else f"{value:+.0f} min"


def _verdict(met: bool | None, binding: bool) -> str:
    text = "n/a" if met is None else ("**met**" if met else "**not met**")
    return text if binding else f"{text} (reference)"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def skill_markdown(skill: StormSkill, heading: str = "##") -> list[str]:
    """Markdown lines: targets, per-level table, every event, every warning."""
    lines = [f"{heading} Skill", "",
             (f"{skill.alerts_raised} alerts raised; {skill.warning_count} warnings (raises to a scored level), "
              f"{skill.false_alarms} false alarms ({_percent(skill.false_alarm_ratio)}). Definitions: "
              "`docs/skill.md`. Lead = event − raise of the warning in force at the event; a warning counts "
              f"against an event up to {_minutes(LATE_WINDOW):.0f} min after it (late)."), "",
             "| target | this drill | |", "|---|---|---|"]
    lines += [f"| {t.target} | {t.figure} | {_verdict(t.met, t.binding)} |" for t in skill.targets]
    lines += ["", ("| hazard | level | event | events | hits (early + at crossing) | lowered before | late "
                   "| missed | POD | lead of hits min / median / max | mean lead, miss = 0 | warnings "
                   "| false alarms | FAR | median in force before event |"),
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for level in skill.levels:
        if not level.events and not level.warnings:
            continue
        lead = level.lead
        lines.append(
            f"| {level.scored.hazard} | {level.scored.level} | {level.scored.event} | {level.events} | "
            f"{level.hits} ({level.warned_early} + {level.warned_at_crossing}) | {level.lowered_before} | "
            f"{level.warned_late} | {level.missed} | {_percent(level.probability_of_detection)} | "
            f"{_signed(lead.minimum)} / {_signed(lead.median)} / {_signed(lead.maximum)} | "
            f"{_signed(lead.mean_all_events)} | {level.warnings} | {level.false_alarms} | "
            f"{_percent(level.false_alarm_ratio)} | "
            f"{'—' if level.median_in_force_min is None else f'{level.median_in_force_min:.0f} min'} |")
    if all(not level.events and not level.warnings for level in skill.levels):
        lines.append("| — | — | no threshold reached, no warning raised | 0 | | | | | | | | 0 | 0 | | |")
    if skill.events:
        lines += ["", "**Events** (first crossing of each area's threshold):", "",
                  ("| area | hazard | level | crossed (JST) | first raised at or above (JST) | outcome | lead "
                   "| in force before |"), "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {e.area_id} | {e.hazard} | {e.level} | {_jst(e.time)} | {_jst(e.first_raised)} | "
                  f"{e.outcome} | {_lead(e.lead_min)} | {e.in_force_min:.0f} min |" for e in skill.events]
    if skill.warnings:
        lines += ["", ("**Warnings** (each raise to a scored level) and how long each was in force before its "
                       "event:"), "",
                  ("| area | hazard | level | raised (JST) | lowered (JST) | verdict | event (JST) "
                   "| in force before event | in force at event |"), "|---|---|---|---|---|---|---|---|---|"]
        for w in skill.warnings:
            lowered = "in force at the end" if w.warning.lowered is None else _jst(w.warning.lowered)
            before = "—" if w.in_force_before_event_min is None else f"{w.in_force_before_event_min:.0f} min"
            lines.append(f"| {w.warning.area_id} | {w.warning.hazard} | {w.warning.level} | "
                         f"{_jst(w.warning.raised)} | {lowered} | {w.verdict} | {_jst(w.event_time)} | {before} | "
                         f"{'yes' if w.in_force_at_event else 'no'} |")
    lines.append("")
    return lines


def summary_markdown(skills: Sequence[StormSkill]) -> list[str]:
    """One table of every storm's targets: the figure and met / not met."""
    lines = ["| storm | target | figure | |", "|---|---|---|---|"]
    for skill in skills:
        for t in skill.targets:
            lines.append(f"| {skill.storm} | {t.target} | {t.figure} | {_verdict(t.met, t.binding)} |")
    return [*lines, ""]


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def skill_dict(skill: StormSkill) -> dict[str, Any]:
    """The skill as plain data (report.json's ``skill``, ``suibou skill --json``)."""
    return {
        "storm": skill.storm, "drill_id": skill.drill_id, "alerts_raised": skill.alerts_raised,
        "warnings": skill.warning_count, "false_alarms": skill.false_alarms,
        "false_alarm_ratio": skill.false_alarm_ratio, "late_window_min": _minutes(LATE_WINDOW),
        "targets": [dataclasses.asdict(t) for t in skill.targets],
        "levels": [{
            "hazard": s.scored.hazard, "level": s.scored.level, "event": s.scored.event, "events": s.events,
            "hits": s.hits, "warned_early": s.warned_early, "warned_at_crossing": s.warned_at_crossing,
            "lowered_before": s.lowered_before, "warned_late": s.warned_late, "missed": s.missed,
            "probability_of_detection": s.probability_of_detection,
            "lead_min": dataclasses.asdict(s.lead), "warnings": s.warnings, "before_event": s.before_event,
            "after_event": s.after_event, "false_alarms": s.false_alarms,
            "false_alarm_ratio": s.false_alarm_ratio, "median_in_force_min": s.median_in_force_min,
        } for s in skill.levels],
        "events": [{
            "area_id": e.area_id, "hazard": e.hazard, "level": e.level, "time": e.time.isoformat(),
            "outcome": e.outcome, "lead_min": e.lead_min, "in_force_min": e.in_force_min,
            "first_raised": _time(e.first_raised), "river": e.river,
        } for e in skill.events],
        "warning_list": [{
            "area_id": w.warning.area_id, "hazard": w.warning.hazard, "level": w.warning.level,
            "raised": w.warning.raised.isoformat(), "lowered": _time(w.warning.lowered), "verdict": w.verdict,
            "event_time": _time(w.event_time), "in_force_before_event_min": w.in_force_before_event_min,
            "in_force_at_event": w.in_force_at_event,
        } for w in skill.warnings],
    }
