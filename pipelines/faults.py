"""Sensor faults as data: silent gauges, impossible jumps, frozen values.

A gauge that stops reporting must never look like a dry, calm river. The
watchdog follows the stream's own clock (the publisher's ticks), so a drill
replayed at any speed judges silence in storm time, and no tick after the end
of a drill means no false "silent" at its end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import zlib

import apache_beam as beam

from pipelines.ordered import Fold, FoldInEventTime, FoldPace, stream_key
from suibou.catalogue import StationCatalogue
from suibou.contracts import FaultKind, LevelReading, RainReading, SensorFault, StreamControl, format_time

#: A gauge reporting every minute is silent after this long without a reading.
SILENCE_AFTER_S = 600.0

#: Watchdog keys per stream: each watches the gauges of one bucket.
WATCHDOG_BUCKETS = 4


def watchdog_bucket(station_id: str, buckets: int = WATCHDOG_BUCKETS) -> int:
    """The watchdog key that watches ``station_id``: a checksum, the same in every process.

    Examples:
        >>> [watchdog_bucket(s) for s in ("RG-A", "WL-1")]
        [1, 2]
    """
    return zlib.crc32(station_id.encode()) % buckets


@functools.lru_cache(maxsize=64)
def _bucket_stations(stations: tuple[str, ...], buckets: int, bucket: int) -> tuple[str, ...]:
    return tuple(s for s in stations if watchdog_bucket(s, buckets) == bucket)


def watchdog_key(drill_id: str | None, bucket: int) -> str:
    """The fold key of one bucket of a stream's gauges.

    Examples:
        >>> watchdog_key("drill-7", 2)
        'drill-7|watchdog#2'
    """
    return stream_key(drill_id, f"watchdog#{bucket}")


@dataclasses.dataclass(frozen=True)
class Heartbeat:
    """A gauge was heard from at ``event_time``."""

    station_id: str
    event_time: dt.datetime
    exercise: bool
    drill_id: str | None


def heartbeat(reading: RainReading | LevelReading) -> Heartbeat:
    return Heartbeat(reading.station_id, reading.event_time, reading.exercise, reading.drill_id)


def keyed_heartbeat(reading: RainReading | LevelReading) -> tuple[str, Heartbeat]:
    """A reading's heartbeat, keyed to the watchdog of its gauge's bucket."""
    return watchdog_key(reading.drill_id, watchdog_bucket(reading.station_id)), heartbeat(reading)


class _DistinctTicks(beam.DoFn):
    """One tick per stream and instant per bundle: every partition carries the same clock."""

    def start_bundle(self) -> None:
        self._seen: set[tuple[str | None, dt.datetime]] = set()

    def process(self, tick: StreamControl):
        key = (tick.drill_id, tick.event_time)
        if key not in self._seen:
            self._seen.add(key)
            yield tick


def fault(station_id: str, kind: FaultKind, at: dt.datetime, since: dt.datetime, detail: str,
          exercise: bool, drill_id: str | None) -> SensorFault:
    """A fault with a deterministic id, so a re-run publishes the same message."""
    return SensorFault(
        event_id=f"fault:{drill_id or 'live'}:{station_id}:{kind.value}:{at:%Y%m%dT%H%M%SZ}",
        event_time=at, station_id=station_id, kind=kind, since=since, detail=detail,
        exercise=exercise, drill_id=drill_id,
    )


@dataclasses.dataclass(frozen=True)
class WatchdogState:
    last_heard: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    #: Silent gauges, with when their silence was declared.
    silent: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    clock_started: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class GaugeWatchdog(Fold[WatchdogState, "Heartbeat | StreamControl", SensorFault]):
    """Reports every catalogued gauge that has been silent for ``silence_after_s``
    of stream time, and its recovery when it reports again.

    The job keys it per bucket of gauges (:func:`watchdog_key`), sending each
    bucket one copy of the clock: no single key carries the whole stream, and a
    tick costs a few elements rather than one per gauge (as many as all the
    readings together). A key without a bucket watches every station.
    """

    stations: tuple[str, ...]
    silence_after_s: float = SILENCE_AFTER_S
    buckets: int = WATCHDOG_BUCKETS
    name: str = "gauge_watchdog"

    def watched(self, key: str) -> tuple[str, ...]:
        """The stations the fold of ``key`` watches."""
        _, hash_sign, bucket = key.rpartition("|")[2].partition("#")
        if not hash_sign:
            return self.stations
        return _bucket_stations(self.stations, self.buckets, int(bucket))

    def initial(self, key: str) -> WatchdogState:
        return WatchdogState()

    def event_time(self, item: Heartbeat | StreamControl | SensorFault) -> dt.datetime:
        return item.event_time

    def order(self, item: Heartbeat | StreamControl) -> int:
        return 0 if isinstance(item, Heartbeat) else 1  # readings at t count before the tick at t

    def identity(self, item: Heartbeat | StreamControl) -> str | None:
        # Every partition carries the same tick; one per instant is enough.
        return f"tick:{item.event_time.timestamp():.0f}" if isinstance(item, StreamControl) else None

    def step(self, key: str, state: WatchdogState, item: Heartbeat | StreamControl
             ) -> tuple[WatchdogState, list[SensorFault]]:
        if isinstance(item, Heartbeat):
            last = {**state.last_heard, item.station_id: max(item.event_time,
                                                               state.last_heard.get(item.station_id, item.event_time))}
            if item.station_id not in state.silent:
                return dataclasses.replace(state, last_heard=last), []
            since = state.last_heard.get(item.station_id) or state.clock_started or item.event_time
            # A reading folded late may be older than the declaration; the recovery
            # never comes before the silence it ends.
            at = max(item.event_time, state.silent[item.station_id])
            recovered = fault(item.station_id, FaultKind.RECOVERED, at, since,
                              f"reporting again after a silence since {format_time(since)}",
                              item.exercise, item.drill_id)
            silent = {k: v for k, v in state.silent.items() if k != item.station_id}
            return dataclasses.replace(state, last_heard=last, silent=silent), [recovered]
        now = item.event_time
        started = state.clock_started or now
        faults = []
        silent = dict(state.silent)
        for station in self.watched(key):
            if station in silent:
                continue
            since = state.last_heard.get(station, started)
            if (now - since).total_seconds() >= self.silence_after_s:
                silent[station] = now
                heard = state.last_heard.get(station)
                detail = (f"no reading for {(now - since).total_seconds() / 60:.0f} min"
                          if heard else "no reading since the stream began")
                faults.append(fault(station, FaultKind.SILENT, now, since, detail, item.exercise, item.drill_id))
        return WatchdogState(state.last_heard, silent, started), faults


@dataclasses.dataclass
class WatchGauges(beam.PTransform):
    """Rain and level readings plus the stream clock -> silent / recovered faults."""

    catalogue: StationCatalogue
    silence_after_s: float = SILENCE_AFTER_S
    max_lateness_s: float = 600.0
    #: When events are folded (see :class:`pipelines.ordered.FoldPace`).
    pace: FoldPace = FoldPace()

    def __post_init__(self) -> None:
        super().__init__()

    def expand(self, inputs: dict[str, beam.PCollection]):
        stations = (*(g.station_id for g in self.catalogue.rain_gauges),
                    *(g.station_id for g in self.catalogue.level_gauges))
        rain_beats, level_beats = (
            inputs[feed] | f"{feed.capitalize()}Heartbeats" >> beam.Map(keyed_heartbeat) for feed in ("rain", "level"))
        ticks = (
            inputs["clock"]
            | "Ticks" >> beam.Filter(lambda c: c.control.value == "tick")
            | "DistinctTicks" >> beam.ParDo(_DistinctTicks())
            | "ClockToEveryBucket" >> beam.FlatMap(
                lambda t: ((watchdog_key(t.drill_id, bucket), t) for bucket in range(WATCHDOG_BUCKETS)))
        )
        return (rain_beats, level_beats, ticks) | "Watch" >> FoldInEventTime(
            GaugeWatchdog(stations, self.silence_after_s), self.max_lateness_s, pace=self.pace)
