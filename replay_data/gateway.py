"""A field-gateway simulator: a catalogue's gauges reporting live, as a gateway in the field would.

Unlike a drill, this is *live* traffic: readings carry wall-clock event times,
are not marked as exercises (unless a ``drill_id`` is given, for an exercise
gateway), and no ``stream_control/1`` ticks are sent: the pipeline must keep its
clock from the readings themselves, as it does in live operation.

Values are **synthetic** (not from any storm), drawn per gauge from a seeded
random generator:

- **Rain gauges**: a two-state (dry/wet) Markov chain per reading; while wet,
  the intensity does a bounded multiplicative random walk between 0.5 and 60
  mm/h, and a reading reports ``intensity × interval``.
- **Water-level gauges**: a mean-reverting random walk (Ornstein-Uhlenbeck)
  around 60 % of the gauge's standby level, kept between 0 and the standby
  level: plausible quiet-weather stages that never reach a flood threshold by
  themselves (a simulator must not raise live flood alerts).

What a gateway's link does to them, each optional and drawn from the same seed:

- ``jitter_s``: each reading is delivered up to this many seconds after its
  event time (uniformly);
- ``gap_probability``: a reading is lost and never sent;
- ``reorder_probability``: a reading is delivered after the same gauge's next
  one (held back by 1.5 reading intervals);
- ``silent``: a gauge stops reporting ``after_s`` seconds after the start.

:class:`GatewaySimulator` is pure (no clock, no I/O): ``readings_until(t)``
returns the readings delivered by time ``t``; the same seed and options give the
same readings however the time is stepped. :func:`run` paces it against a clock
and hands batches to a sink (:class:`HttpSink` posts them to the alert API's
``POST /v1/ingest/readings``; :class:`KafkaSink` produces them directly), at
most ``rate`` readings per second, until a duration passes or a stop event is set.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import json
import logging
import math
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from suibou.catalogue import LevelGauge, RainGauge, StationCatalogue
from suibou.contracts import Event, GridKind, GridNotice, LevelReading, RainReading
from suibou.settings import Settings

log = logging.getLogger(__name__)

#: Most readings in one HTTP batch (the API's default bound is 500).
HTTP_BATCH = 500


@dataclasses.dataclass(frozen=True)
class GatewayOptions:
    """How the simulated gateway reports.

    Attributes:
        interval_s: Seconds between two readings of a gauge (a whole number, at least 1).
        jitter_s: Largest delivery delay after a reading's event time.
        gap_probability: Chance that a reading is lost.
        reorder_probability: Chance that a reading arrives after the gauge's next one.
        silent: Gauges that fall silent, with the seconds after the start when they do.
        seed: Seed of every random draw; None for a fresh one.
        drill_id: Marks every reading as an exercise of this drill (for an exercise gateway).
        stations: Only these gauges of the catalogue (default: all rain and water-level gauges).
    """

    interval_s: int = 5
    jitter_s: float = 0.0
    gap_probability: float = 0.0
    reorder_probability: float = 0.0
    silent: Mapping[str, float] = dataclasses.field(default_factory=dict)
    seed: int | None = None
    drill_id: str | None = None
    stations: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.interval_s, int) or not 1 <= self.interval_s <= 3600:
            raise ValueError(f"interval_s must be a whole number of seconds from 1 to 3600, got {self.interval_s!r}")
        if not 0 <= self.jitter_s <= 3600:
            raise ValueError(f"jitter_s must be between 0 and 3600, got {self.jitter_s!r}")
        for name in ("gap_probability", "reorder_probability"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be at least 0 and below 1, got {value!r}")
        for station, after in self.silent.items():
            if not after >= 0:
                raise ValueError(f"{station} must fall silent at 0 s or later, got {after!r}")


def parse_silent(text: str) -> tuple[str, float]:
    """``STATION`` (silent from the start) or ``STATION@after_s``.

    Examples:
        >>> parse_silent("RG-ASAGAYA@120"), parse_silent("WL-KANDA-EIFUKU")
        (('RG-ASAGAYA', 120.0), ('WL-KANDA-EIFUKU', 0.0))
    """
    station, _, after = text.partition("@")
    if not station:
        raise ValueError(f"expected STATION or STATION@after_s, got {text!r}")
    try:
        seconds = float(after) if after else 0.0
    except ValueError:
        raise ValueError(f"expected STATION@after_s with a number of seconds, got {text!r}") from None
    if not seconds >= 0:
        raise ValueError(f"the silence must start at 0 s or later, got {text!r}")
    return station, seconds


class _Rain:
    """One rain gauge's weather: dry or wet, and the intensity while wet (mm/h)."""

    P_START = 0.02  # per reading: a shower begins
    P_STOP = 0.05  # per reading: it ends

    def __init__(self, rng: random.Random) -> None:
        self.wet = rng.random() < 0.3
        self.intensity = rng.uniform(1.0, 10.0)

    def step(self, rng: random.Random, interval_s: int) -> float:
        if self.wet and rng.random() < self.P_STOP:
            self.wet = False
        elif not self.wet and rng.random() < self.P_START:
            self.wet, self.intensity = True, rng.uniform(1.0, 10.0)
        if not self.wet:
            return 0.0
        self.intensity = min(60.0, max(0.5, self.intensity * math.exp(rng.gauss(0.0, 0.15))))
        return round(self.intensity * interval_s / 3600.0, 3)


class _Level:
    """One water-level gauge's stage: mean-reverting around 60 % of standby, below standby."""

    def __init__(self, gauge: LevelGauge, rng: random.Random) -> None:
        self.base = 0.6 * gauge.standby_m
        self.ceiling = gauge.standby_m
        self.level = self.base + rng.gauss(0.0, 0.02)

    def step(self, rng: random.Random, interval_s: int) -> float:
        pull = 0.05 * (self.base - self.level) * interval_s / 60.0
        noise = rng.gauss(0.0, 0.004) * math.sqrt(interval_s / 60.0)
        self.level = min(self.ceiling * 0.98, max(0.0, self.level + pull + noise))
        return round(self.level, 3)


@dataclasses.dataclass(order=True, frozen=True)
class Delivery:
    """A reading and when the gateway delivers it."""

    release: dt.datetime
    station_id: str
    event_time: dt.datetime
    event: Event = dataclasses.field(compare=False)


class GatewaySimulator:
    """Generates a catalogue's gauge readings from ``start`` on, delivered as a gateway would (pure).

    Args:
        catalogue: The gauges.
        start: Time of the first readings (one per gauge); later ones every ``interval_s``.
        options: Interval, link faults, seed.

    Raises:
        ValueError: A station named in ``options`` is not a gauge of the catalogue.
    """

    def __init__(self, catalogue: StationCatalogue, start: dt.datetime, options: GatewayOptions | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("start must carry a UTC offset")
        self.options = options or GatewayOptions()
        self.start = start.astimezone(dt.UTC)
        gauges: dict[str, RainGauge | LevelGauge] = {g.station_id: g for g in catalogue.rain_gauges}
        gauges.update({g.station_id: g for g in catalogue.level_gauges})
        wanted = self.options.stations or tuple(sorted(gauges))
        unknown = sorted((set(wanted) | set(self.options.silent)) - set(gauges))
        if unknown:
            raise ValueError(f"not gauges of catalogue {catalogue.name}: {', '.join(unknown)}")
        self.stations = tuple(wanted)
        self._rng = random.Random(self.options.seed)
        self._models: dict[str, _Rain | _Level] = {}
        for station in self.stations:
            gauge = gauges[station]
            self._models[station] = _Level(gauge, self._rng) if isinstance(gauge, LevelGauge) else _Rain(self._rng)
        self._next: list[tuple[dt.datetime, str]] = [(self.start, s) for s in self.stations]
        heapq.heapify(self._next)
        self._pending: list[Delivery] = []
        self.generated = 0
        self.lost = 0

    def _reading(self, station: str, at: dt.datetime) -> Event:
        model = self._models[station]
        value = model.step(self._rng, self.options.interval_s)
        drill = self.options.drill_id
        common: dict[str, Any] = {"event_id": f"gw:{station}:{at.strftime('%Y%m%dT%H%M%S')}",
                                  "event_time": at, "station_id": station,
                                  "exercise": drill is not None, "drill_id": drill}
        if isinstance(model, _Rain):
            return RainReading(rain_mm=value, interval_s=self.options.interval_s, **common)
        return LevelReading(level_m=value, **common)

    def _generate_until(self, t: dt.datetime) -> None:
        """Draws every reading stamped at or before ``t`` in (time, station) order, so draws do not depend on
        how time is stepped."""
        step = dt.timedelta(seconds=self.options.interval_s)
        while self._next and self._next[0][0] <= t:
            at, station = heapq.heappop(self._next)
            heapq.heappush(self._next, (at + step, station))
            silent_after = self.options.silent.get(station)
            if silent_after is not None and (at - self.start).total_seconds() >= silent_after:
                continue
            event = self._reading(station, at)
            self.generated += 1
            lost = self._rng.random() < self.options.gap_probability
            late = self._rng.random() < self.options.reorder_probability
            delay = self._rng.uniform(0.0, self.options.jitter_s) if self.options.jitter_s else 0.0
            if lost:
                self.lost += 1
                continue
            if late:
                delay += 1.5 * self.options.interval_s
            heapq.heappush(self._pending, Delivery(at + dt.timedelta(seconds=delay), station, at, event))

    def rain_rates(self) -> dict[str, float]:
        """Each simulated rain gauge's intensity now (mm/h; 0 while dry), as of its last reading drawn."""
        return {s: (m.intensity if m.wet else 0.0) for s, m in self._models.items() if isinstance(m, _Rain)}

    def readings_until(self, t: dt.datetime) -> list[Event]:
        """The readings delivered after the previous call and by ``t``, in delivery order."""
        self._generate_until(t)
        out = []
        while self._pending and self._pending[0].release <= t:
            out.append(heapq.heappop(self._pending).event)
        return out


class LiveGrids:
    """Rain grids issued live, every ``every_s`` seconds on the clock's marks, from the simulator's
    rain gauges (**synthetic**).

    Each cell of each catalogue grid rains at the intensity of the nearest
    simulated rain gauge (0 where that gauge is dry); every lead of the
    nowcast repeats it (persistence). Files are netCDF, written to ``folder``
    (one per grid and issue); one ``grid_notice/1`` per file is returned for
    the grid topic, as a radar-analysis feed would send them. Like the readings,
    the same seed gives the same grids however time is stepped.
    """

    def __init__(self, simulator: GatewaySimulator, catalogue: StationCatalogue, folder: Path,
                 every_s: int = 300) -> None:
        # A grid counts for 15 minutes in the pipeline (pipelines.grids.GRID_MAX_AGE_S): issue them more often.
        if not isinstance(every_s, int) or not 60 <= every_s <= 900:
            raise ValueError(f"grids must be issued every 60 to 900 s, got {every_s!r}")
        rain = {g.station_id: g for g in catalogue.rain_gauges if g.station_id in simulator.stations}
        if not rain or not catalogue.grids:
            raise ValueError(f"catalogue {catalogue.name} has no rain grid with a simulated rain gauge")
        self._simulator, self._folder, self._every = simulator, folder, dt.timedelta(seconds=every_s)
        # Issued on the clock's marks (every 5 minutes: :00, :05, ...), as radar analyses are.
        start = simulator.start.timestamp()
        self._next = dt.datetime.fromtimestamp(math.ceil(start / every_s) * every_s, dt.UTC)
        self._nearest: dict[str, list[list[str]]] = {}
        for grid in catalogue.grids:
            self._nearest[grid.grid_id] = [
                [min(rain, key=lambda s: (rain[s].lon - lon) ** 2 + (rain[s].lat - lat) ** 2) for lon in grid.lons]
                for lat in grid.lats]
        self._grids = catalogue.grids
        self.issued = 0

    def issue_until(self, t: dt.datetime) -> list[GridNotice]:
        """Writes the grids due by ``t`` (after the simulator has drawn its readings up to ``t``)."""
        import numpy as np

        from replay_data.media import GRID_VARIABLE, NOWCAST_LEADS_MIN, grid_dataset, write_grid

        notices = []
        while self._next <= t:
            issue, self._next = self._next, self._next + self._every
            rates = self._simulator.rain_rates()
            for grid in self._grids:
                field = np.array([[rates[s] for s in row] for row in self._nearest[grid.grid_id]], dtype=np.float32)
                fields = np.repeat(field[None, :, :], len(NOWCAST_LEADS_MIN), axis=0)
                stamp = issue.strftime("%Y%m%dT%H%M%SZ")
                path = self._folder / grid.grid_id / f"{stamp}.nc"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_grid(path, grid_dataset(grid, fields, issue, storm="live gateway",
                                              provenance="SYNTHETIC: the gateway's simulated rain gauges, "
                                                         "nearest gauge per cell, persistence nowcast"))
                drill = self._simulator.options.drill_id
                notices.append(GridNotice(event_id=f"gw:{grid.grid_id}:{stamp}", event_time=issue, valid_time=issue,
                                          grid_id=grid.grid_id, kind=GridKind.OBSERVED, uri=path.as_uri(),
                                          variable=GRID_VARIABLE, exercise=drill is not None, drill_id=drill))
                self.issued += 1
        return notices


# --------------------------------------------------------------------------- sending


class Sink(Protocol):
    def send(self, readings: Sequence[Event]) -> SendResult: ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class SendResult:
    """What a sink did with a batch: ``retry`` readings could not be delivered and should be sent again."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    retry: tuple[Event, ...] = ()
    reasons: tuple[str, ...] = ()


class HttpSink:
    """Posts readings to the alert API's ``POST /v1/ingest/readings`` with a gateway key.

    A 503 (Kafka unavailable) or a connection error keeps the batch for a later
    retry (the API answers ``duplicate`` for what it already accepted); any
    other error status is raised.
    """

    def __init__(self, base_url: str, key: str, timeout_s: float = 30.0) -> None:
        self.url = base_url.rstrip("/") + "/v1/ingest/readings"
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self._timeout_s = timeout_s

    def send(self, readings: Sequence[Event]) -> SendResult:
        total = SendResult()
        for first in range(0, len(readings), HTTP_BATCH):
            batch = readings[first:first + HTTP_BATCH]
            result = self._post(batch)
            total = SendResult(total.accepted + result.accepted, total.duplicate + result.duplicate,
                               total.rejected + result.rejected, total.retry + result.retry,
                               total.reasons + result.reasons)
        return total

    def _post(self, batch: Sequence[Event]) -> SendResult:
        body = json.dumps({"readings": [e.to_dict() for e in batch]}).encode()
        request = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", errors="replace")[:500]
            if error.code == 503:
                log.warning("ingest unavailable, keeping %d readings for later: %s", len(batch), detail)
                return SendResult(retry=tuple(batch))
            raise RuntimeError(f"the alert API refused the batch: HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            log.warning("cannot reach %s, keeping %d readings for later: %s", self.url, len(batch), error)
            return SendResult(retry=tuple(batch))
        reasons = tuple(f"{r['event_id']}: {r['reason']}" for r in document["results"] if r["status"] == "rejected")
        return SendResult(document["accepted"], document["duplicate"], document["rejected"], (), reasons)

    def close(self) -> None:
        pass


class KafkaSink:
    """Produces readings straight to the observation topics (``acks=all``, idempotent, key = station,
    record time = event time), waiting for the broker's acknowledgement."""

    def __init__(self, settings: Settings, producer: Any = None, timeout_s: float = 30.0) -> None:
        from replay_data.publish import make_producer

        self._topics = settings.topics
        self._producer = producer or make_producer(settings)
        self._timeout_s = timeout_s

    def send(self, readings: Sequence[Event]) -> SendResult:
        futures = []
        for event in readings:
            feed = "rain" if isinstance(event, RainReading) else "grid" if isinstance(event, GridNotice) else "level"
            futures.append(self._producer.send(
                self._topics.observation_topics[feed], value=event.to_json(), key=event.key.encode(),
                timestamp_ms=round(event.event_time.timestamp() * 1000)))
        retry = []
        for event, future in zip(readings, futures):
            try:
                future.get(timeout=self._timeout_s)
            except Exception as error:  # noqa: BLE001 - keep it for a later retry
                log.warning("Kafka did not acknowledge %s: %s", event.event_id, error)
                retry.append(event)
        return SendResult(accepted=len(readings) - len(retry), retry=tuple(retry))

    def close(self) -> None:
        self._producer.close()


@dataclasses.dataclass
class RunReport:
    """What a run did."""

    generated: int = 0
    lost: int = 0
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    backlog: int = 0
    reasons: list[str] = dataclasses.field(default_factory=list)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run(simulator: GatewaySimulator, sink: Sink, *, duration_s: float | None = None, rate: float | None = None,
        stop: threading.Event | None = None, clock: Callable[[], dt.datetime] = utc_now,
        sleep: Callable[[float], None] | None = None, tick_s: float = 1.0,
        on_batch: Callable[[RunReport], None] | None = None, grids: LiveGrids | None = None) -> RunReport:
    """Plays ``simulator`` against ``clock`` into ``sink`` until ``duration_s`` passes or ``stop`` is set.

    Every ``tick_s`` the readings delivered by then join a backlog, and up to
    ``rate`` readings per second of it (all of them without a rate) are sent.
    Readings the sink could not deliver stay at the front of the backlog. With
    ``grids``, the grids due are written and their notices join the backlog too.

    Returns:
        Counts of what was generated, lost on the link, sent and how the receiver answered.
    """
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be positive, got {rate!r}")
    stop = stop or threading.Event()
    wait = sleep or stop.wait
    report = RunReport()
    backlog: list[Event] = []
    began = clock()
    budget = 0.0
    last = began
    while True:
        now = clock()
        finished = stop.is_set() or (duration_s is not None and (now - began).total_seconds() >= duration_s)
        if finished:
            now = min(now, began + dt.timedelta(seconds=duration_s)) if duration_s is not None else now
        backlog.extend(simulator.readings_until(now))
        if grids is not None:
            backlog.extend(grids.issue_until(now))
        if rate is None:
            chunk, backlog = backlog, []
        else:
            budget = min(budget + rate * (now - last).total_seconds(), max(rate, 1.0))
            take = int(budget)
            chunk, backlog = backlog[:take], backlog[take:]
            budget -= len(chunk)
        last = now
        if chunk:
            result = sink.send(chunk)
            report.sent += len(chunk) - len(result.retry)
            report.accepted += result.accepted
            report.duplicate += result.duplicate
            report.rejected += result.rejected
            report.reasons.extend(result.reasons[:20])
            backlog = list(result.retry) + backlog
        report.generated, report.lost, report.backlog = simulator.generated, simulator.lost, len(backlog)
        if on_batch is not None and chunk:
            on_batch(report)
        if finished:
            return report
        wait(tick_s)


def silent_map(entries: Iterable[str]) -> dict[str, float]:
    """``--silent`` arguments as station -> seconds after the start."""
    return dict(parse_silent(entry) for entry in entries)


__all__ = ["GatewayOptions", "GatewaySimulator", "HttpSink", "KafkaSink", "LiveGrids", "RunReport", "SendResult",
           "Sink", "parse_silent", "run", "silent_map"]
