"""Per-gauge features: rolling rainfall at rain gauges, level status at level gauges.

Both are pure folds in event time (see :mod:`pipelines.ordered`), one state
per station; the area stage (:mod:`pipelines.areas`) runs them for the gauges
of each area.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from pipelines.faults import fault
from pipelines.ordered import Fold
from suibou import contracts
from suibou.catalogue import LevelGauge, StationCatalogue, level_for
from suibou.contracts import AlertLevel, FaultKind, LevelReading, RainReading, SensorFault
from suibou.hydrology import TankState, soil_water_index, step_tanks

#: Rainfall accumulation periods, seconds; JMA reports 10-minute and 60-minute totals.
RAIN_PERIODS_S = {"rain_10min_mm": 600, "rain_60min_mm": 3600}
#: Longer totals, kept in 10-minute bins (see :class:`RainfallFold`).
LONG_RAIN_PERIODS_S = {"rain_3h_mm": 3 * 3600, "rain_6h_mm": 6 * 3600, "rain_24h_mm": 24 * 3600}
#: Bin width of the long totals and the soil water index step.
BIN_S = 600
#: The rate of rise is measured over this span (m/h over the last 30 minutes).
RISE_SPAN_S = 1800


@dataclasses.dataclass(frozen=True)
class RainfallTotals:
    """Rain fallen at one gauge in the periods ending at ``event_time``, and the
    soil water index there (JMA's three-tank model, :mod:`suibou.hydrology`)."""

    station_id: str
    event_time: dt.datetime
    rain_10min_mm: float
    rain_60min_mm: float
    exercise: bool
    drill_id: str | None
    rain_3h_mm: float = 0.0
    rain_6h_mm: float = 0.0
    rain_24h_mm: float = 0.0
    swi_mm: float = 0.0
    tanks: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclasses.dataclass(frozen=True)
class LevelAssessment:
    """One water-level reading judged against its gauge's thresholds."""

    station_id: str
    reach_id: str
    event_time: dt.datetime
    level_m: float
    observed_level: AlertLevel
    danger_m: float
    level_30min_ago_m: float
    rise_m_per_h: float
    exercise: bool
    drill_id: str | None
    minutes_to: tuple[tuple[str, float], ...] = ()
    level_10min_ago_m: float | None = None
    caution_m: float = 0.0
    evacuation_m: float = 0.0


# ---------------------------------------------------------------- rainfall


def rainfall_totals(history: Iterable[tuple[float, float]], at: float) -> dict[str, float]:
    """Sums the readings ``(end time, mm)`` that end within each period before ``at``.

    Examples:
        >>> rainfall_totals([(0.0, 1.0), (400.0, 2.0), (900.0, 4.0)], at=900.0)
        {'rain_10min_mm': 6.0, 'rain_60min_mm': 7.0}
    """
    # One pass, each total summed in the history's order (so the floats come out
    # the same however it is computed); this runs for every rain reading.
    starts = [(name, at - period) for name, period in RAIN_PERIODS_S.items()]
    earliest = min(start for _, start in starts)
    sums = [0.0] * len(starts)
    for when, mm in history:
        if earliest < when <= at:
            for index, (_, start) in enumerate(starts):
                if when > start:
                    sums[index] += mm
    return {name: round(total, 3) for (name, _), total in zip(starts, sums, strict=True)}


@dataclasses.dataclass(frozen=True)
class RainState:
    """One gauge's rain memory: an hour of readings, a day of 10-minute bins,
    and the three tanks, stepped up to ``tank_clock`` (start of the next bin)."""

    recent: tuple[tuple[float, float], ...] = ()
    bins: dict[int, float] = dataclasses.field(default_factory=dict)
    tanks: TankState = TankState()
    tank_clock: int | None = None


def bin_of(at: float) -> int:
    """The 10-minute bin a reading ending at ``at`` belongs to (its start, epoch s).

    Examples:
        >>> bin_of(600.0), bin_of(601.0)
        (0, 600)
    """
    return int((at - 1) // BIN_S) * BIN_S


@dataclasses.dataclass(frozen=True)
class RainfallFold(Fold[RainState, RainReading, RainfallTotals]):
    """Rolling totals and the soil water index per gauge.

    The 10- and 60-minute totals are exact, from the readings themselves. The 3-,
    6- and 24-hour totals are kept in 10-minute bins, so their far edge is exact to
    the bin. The tanks take one step of 1/6 h per closed bin, as JMA updates the
    index every 10 minutes; a reading that arrives after its bin was stepped
    still counts in the totals but no longer in the index.

    Attributes:
        seeds: Fold key -> tanks and clock to start from (a resumed job; see
            :mod:`pipelines.recovery`), since the index remembers rain for days.
    """

    seeds: dict[str, tuple[tuple[float, float, float], int]] = dataclasses.field(default_factory=dict)
    name: str = "rainfall"

    def initial(self, key: str) -> RainState:
        seed = self.seeds.get(key)
        if seed is None:
            return RainState()
        return RainState(tanks=TankState(*seed[0]), tank_clock=seed[1])

    def event_time(self, item: RainReading | RainfallTotals) -> dt.datetime:
        return item.event_time

    def identity(self, item: RainReading) -> str:
        return item.event_id

    def step(self, key: str, state: RainState, item: RainReading) -> tuple[RainState, list[RainfallTotals]]:
        at = item.event_time.timestamp()
        this_bin = bin_of(at)
        recent = tuple(h for h in state.recent if h[0] > at - 2 * 3600) + ((at, item.rain_mm),)
        oldest_bin = this_bin - max(LONG_RAIN_PERIODS_S.values()) - BIN_S
        bins = {b: mm for b, mm in state.bins.items() if b >= oldest_bin}
        bins[this_bin] = bins.get(this_bin, 0.0) + item.rain_mm
        tanks, clock = state.tanks, state.tank_clock
        if clock is None:
            clock = this_bin
        while clock < this_bin:  # every bin before this one is closed
            tanks = step_tanks(tanks, bins.get(clock, 0.0), BIN_S / 3600.0)
            clock += BIN_S
        long_totals = {
            name: round(sum(mm for b, mm in bins.items() if b + BIN_S > at - period and b <= at), 3)
            for name, period in LONG_RAIN_PERIODS_S.items()
        }
        return RainState(recent, bins, tanks, clock), [RainfallTotals(
            station_id=item.station_id,
            event_time=item.event_time,
            exercise=item.exercise,
            drill_id=item.drill_id,
            swi_mm=round(soil_water_index(tanks), 3),
            tanks=tuple(round(v, 4) for v in tanks.as_tuple()),  # type: ignore[arg-type]  # three tanks
            **rainfall_totals(recent, at),
            **long_totals,
        )]


# ---------------------------------------------------------------- water level


def level_at_or_before(history: Iterable[tuple[float, float]], at: float) -> tuple[float, float] | None:
    """The newest ``(time, level)`` at or before ``at``, if any."""
    best = None
    for entry in history:
        if entry[0] <= at and (best is None or entry[0] > best[0]):
            best = entry
    return best


def level_minutes_ago(history: Iterable[tuple[float, float]], at: float, minutes: float) -> float | None:
    """The trusted level ``minutes`` before ``at`` (the newest reading at or before then), if known."""
    entry = level_at_or_before(history, at - minutes * 60)
    return None if entry is None else entry[1]


def rise_rate(history: Iterable[tuple[float, float]], at: float, level_m: float) -> tuple[float, float]:
    """Rate of rise over the last :data:`RISE_SPAN_S` seconds, and the level then.

    Uses the reading nearest before ``at - RISE_SPAN_S``; with a shorter record
    (a gauge just back on line) it uses the oldest reading, over that span.

    Examples:
        >>> rise_rate([(0.0, 1.0), (1800.0, 1.5)], at=1800.0, level_m=1.5)
        (1.0, 1.0)
    """
    entries = sorted(history)
    reference = level_at_or_before(entries, at - RISE_SPAN_S)
    if reference is None:
        earlier = [e for e in entries if e[0] < at]
        if not earlier:
            return 0.0, level_m
        reference = earlier[0]
    span_h = (at - reference[0]) / 3600.0
    return round((level_m - reference[1]) / span_h, 4), reference[1]


#: The fastest plausible change of river stage. Tokyo's small urban rivers rise
#: about a metre in ten minutes in the worst downpours; a faster jump is a fault.
MAX_STEP_M_PER_MIN = 0.5
#: A jump that this many consecutive readings agree on is accepted as real.
SPIKE_CONFIRMATIONS = 3


def minutes_to_thresholds(gauge: LevelGauge, level_m: float, rise_m_per_h: float) -> tuple[tuple[str, float], ...]:
    """Minutes until each threshold not yet reached, at the current rate of rise.

    Examples:
        >>> from suibou.catalogue import StationCatalogue
        >>> gauge = StationCatalogue.load("kanda-basin").level_gauge("WL-ZENPUKUJI-NARITA")
        >>> minutes_to_thresholds(gauge, gauge.danger_m - 0.5, 1.0)
        (('evacuation_m', 6.0), ('danger_m', 30.0), ('bank_full_m', 60.0))
        >>> minutes_to_thresholds(gauge, 1.0, -0.2)
        ()
    """
    if rise_m_per_h <= 0:
        return ()
    return tuple(
        (name, round((threshold - level_m) / rise_m_per_h * 60.0, 1))
        for name, threshold in gauge.thresholds().items()
        if threshold > level_m and name != "standby_m"
    )


@dataclasses.dataclass(frozen=True)
class LevelFold(Fold[tuple, LevelReading, "LevelAssessment | SensorFault"]):
    """Judges each reading against its gauge's thresholds, after a plausibility check.

    State: ``(history of (time, level), readings doubted in a row)``. A reading
    that jumps faster than :data:`MAX_STEP_M_PER_MIN` from the last trusted one
    is reported as a ``spike`` fault and not used, until
    :data:`SPIKE_CONFIRMATIONS` readings in a row confirm the new level.
    """

    catalogue: StationCatalogue
    name: str = "water_level"

    def initial(self, key: str) -> tuple:
        return ((), 0)

    def event_time(self, item: LevelReading | LevelAssessment | SensorFault) -> dt.datetime:
        return item.event_time

    def identity(self, item: LevelReading) -> str:
        return item.event_id

    def step(self, key: str, state: tuple, item: LevelReading) -> tuple[tuple, list[LevelAssessment | SensorFault]]:
        gauge = self.catalogue.level_gauge(item.station_id)
        at = item.event_time.timestamp()
        trusted, doubted = state
        previous = level_at_or_before(trusted, at)
        if previous is not None and doubted + 1 < SPIKE_CONFIRMATIONS:
            minutes = max((at - previous[0]) / 60.0, 1.0)
            step = abs(item.level_m - previous[1]) / minutes
            if step > MAX_STEP_M_PER_MIN:
                return (trusted, doubted + 1), [fault(
                    item.station_id, FaultKind.SPIKE, item.event_time, item.event_time,
                    f"{item.level_m:.2f} m is {step:.2f} m/min from the last trusted {previous[1]:.2f} m; "
                    f"not used", item.exercise, item.drill_id)]
        rise, then = rise_rate(trusted, at, item.level_m)
        history = tuple(h for h in trusted if h[0] >= at - 2 * RISE_SPAN_S) + ((at, item.level_m),)
        return (history, 0), [LevelAssessment(
            station_id=item.station_id,
            reach_id=gauge.reach_id,
            event_time=item.event_time,
            level_m=item.level_m,
            observed_level=level_for(gauge, item.level_m),
            danger_m=gauge.danger_m,
            level_30min_ago_m=then,
            rise_m_per_h=rise,
            exercise=item.exercise,
            drill_id=item.drill_id,
            minutes_to=minutes_to_thresholds(gauge, item.level_m, rise),
            level_10min_ago_m=level_minutes_ago(trusted, at, 10),
            caution_m=gauge.caution_m,
            evacuation_m=gauge.evacuation_m,
        )]


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%SZ")


def rain_status(totals: RainfallTotals) -> contracts.RainStatus:
    """The published form of a gauge's totals (topic ``<prefix>.status.rain``)."""
    return contracts.RainStatus(
        event_id=f"rain-status:{totals.drill_id or 'live'}:{totals.station_id}:{_stamp(totals.event_time)}",
        event_time=totals.event_time, exercise=totals.exercise, drill_id=totals.drill_id,
        station_id=totals.station_id, rain_10min_mm=totals.rain_10min_mm, rain_60min_mm=totals.rain_60min_mm,
        rain_3h_mm=totals.rain_3h_mm, rain_24h_mm=totals.rain_24h_mm, swi_mm=totals.swi_mm, tanks=totals.tanks,
    )


def level_status(assessment: LevelAssessment) -> contracts.LevelStatus:
    """The published form of a level assessment (topic ``<prefix>.status.level``)."""
    return contracts.LevelStatus(
        event_id=f"level-status:{assessment.drill_id or 'live'}:{assessment.station_id}:"
                 f"{_stamp(assessment.event_time)}",
        event_time=assessment.event_time, exercise=assessment.exercise, drill_id=assessment.drill_id,
        station_id=assessment.station_id, reach_id=assessment.reach_id, level_m=assessment.level_m,
        observed_level=assessment.observed_level, rise_m_per_h=assessment.rise_m_per_h,
        minutes_to=dict(assessment.minutes_to),
    )


