"""Per-gauge features: rolling rainfall at rain gauges, level status at level gauges.

Both are folds in event time (see :mod:`pipelines.ordered`), keyed by station.
The logic is pure; :class:`AccumulateRainfall` and :class:`AssessWaterLevels`
only wire it into Beam.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

import apache_beam as beam

from pipelines.faults import fault
from pipelines.ordered import Fold, FoldInEventTime, stream_key
from replay_data.stations import StationCatalogue, level_for
from suibou.contracts import AlertLevel, FaultKind, LevelReading, RainReading, SensorFault

#: Rainfall accumulation periods, seconds; JMA reports 10-minute and 60-minute totals.
RAIN_PERIODS_S = {"rain_10min_mm": 600, "rain_60min_mm": 3600}
#: The rate of rise is measured over this span (m/h over the last 30 minutes).
RISE_SPAN_S = 1800


@dataclasses.dataclass(frozen=True)
class RainfallTotals:
    """Rain fallen at one gauge in the periods ending at ``event_time``."""

    station_id: str
    event_time: dt.datetime
    rain_10min_mm: float
    rain_60min_mm: float
    exercise: bool
    drill_id: str | None


@dataclasses.dataclass(frozen=True)
class LevelStatus:
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


# ---------------------------------------------------------------- rainfall


def rainfall_totals(history: Iterable[tuple[float, float]], at: float) -> dict[str, float]:
    """Sums the readings ``(end time, mm)`` that end within each period before ``at``.

    Examples:
        >>> rainfall_totals([(0.0, 1.0), (400.0, 2.0), (900.0, 4.0)], at=900.0)
        {'rain_10min_mm': 6.0, 'rain_60min_mm': 7.0}
    """
    totals = dict.fromkeys(RAIN_PERIODS_S, 0.0)
    for when, mm in history:
        for name, period in RAIN_PERIODS_S.items():
            if at - period < when <= at:
                totals[name] += mm
    return {name: round(value, 3) for name, value in totals.items()}


class RainfallFold(Fold[tuple, RainReading, RainfallTotals]):
    """Keeps an hour of readings per gauge; each reading yields the totals at its time."""

    name = "rainfall"

    def initial(self, key: str) -> tuple:
        return ()

    def event_time(self, item: RainReading | RainfallTotals) -> dt.datetime:
        return item.event_time

    def identity(self, item: RainReading) -> str:
        return item.event_id

    def step(self, key: str, state: tuple, item: RainReading) -> tuple[tuple, list[RainfallTotals]]:
        at = item.event_time.timestamp()
        horizon = at - max(RAIN_PERIODS_S.values())
        history = tuple(h for h in state if h[0] > horizon - 3600) + ((at, item.rain_mm),)
        totals = rainfall_totals(history, at)
        return history, [RainfallTotals(
            station_id=item.station_id,
            event_time=item.event_time,
            exercise=item.exercise,
            drill_id=item.drill_id,
            **totals,
        )]


@dataclasses.dataclass
class AccumulateRainfall(beam.PTransform):
    """Rain readings -> 10- and 60-minute totals per gauge, in event time."""

    max_lateness_s: float = 600.0

    def __post_init__(self) -> None:
        super().__init__()

    def expand(self, readings: beam.PCollection[RainReading]):  # type: ignore[no-untyped-def]
        return (
            readings
            | "KeyByGauge" >> beam.Map(lambda r: (stream_key(r.drill_id, r.station_id), r))
            | "Accumulate" >> FoldInEventTime(RainfallFold(), self.max_lateness_s)
        )


# ---------------------------------------------------------------- water level


def level_at_or_before(history: Iterable[tuple[float, float]], at: float) -> tuple[float, float] | None:
    """The newest ``(time, level)`` at or before ``at``, if any."""
    best = None
    for entry in history:
        if entry[0] <= at and (best is None or entry[0] > best[0]):
            best = entry
    return best


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


@dataclasses.dataclass(frozen=True)
class LevelFold(Fold[tuple, LevelReading, "LevelStatus | SensorFault"]):
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

    def event_time(self, item: LevelReading | LevelStatus | SensorFault) -> dt.datetime:
        return item.event_time

    def identity(self, item: LevelReading) -> str:
        return item.event_id

    def step(self, key: str, state: tuple, item: LevelReading) -> tuple[tuple, list[LevelStatus | SensorFault]]:
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
        return (history, 0), [LevelStatus(
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
        )]


@dataclasses.dataclass
class AssessWaterLevels(beam.PTransform):
    """Level readings -> level against thresholds and rate of rise, per gauge."""

    catalogue: StationCatalogue
    max_lateness_s: float = 600.0

    def __post_init__(self) -> None:
        super().__init__()

    def expand(self, readings: beam.PCollection[LevelReading]):  # type: ignore[no-untyped-def]
        return (
            readings
            | "KeyByGauge" >> beam.Map(lambda r: (stream_key(r.drill_id, r.station_id), r))
            | "Assess" >> FoldInEventTime(LevelFold(self.catalogue), self.max_lateness_s)
        )


class _SplitFaults(beam.DoFn):
    def process(self, element: object):  # type: ignore[no-untyped-def]
        if isinstance(element, SensorFault):
            yield beam.pvalue.TaggedOutput("faults", element)
        else:
            yield element


def split_faults(outputs: beam.PCollection, label: str) -> beam.pvalue.DoOutputsTuple:
    """Separates the sensor faults a stage emits from its regular outputs."""
    return outputs | label >> beam.ParDo(_SplitFaults()).with_outputs("faults", main="out")
