"""Event-time ordered folds per key: the one stateful pattern the stages share.

Rolling rainfall, rate of rise, fusion and alert hysteresis are all "fold the
events of one key in event-time order through a pure step function". Instead
of triggered windows this is one stateful DoFn: events wait in a bag until the
watermark passes them (an event-time timer), then they are folded in time order
and the fold's outputs are emitted with their own event time. That gives an
output per event rather than per window pane, exact de-duplication and a stated
lateness bound, with nothing beyond the default trigger, which every portable
runner (Prism, Flink, Dataflow) executes the same way.

Events that arrive after their time was already folded are folded late if they
are within ``max_lateness`` of the newest folded time, and otherwise go to the
dead-letter output with the reason: never silently dropped.

Live traffic does not wait for the watermark (:class:`FoldPace`): an event
stamped within ``on_arrival_s`` of the wall clock, for a key with nothing
waiting, is folded as it arrives. Waiting for the watermark would make every
score as late as the slowest partition's clock; a backlog (a restarted job
catching up, a drill) is still put in order by the watermark first.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    OrderedListStateSpec,
    ReadModifyWriteStateSpec,
    StateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from suibou.contracts import DeadLetter

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - conventional name for the input type
O = TypeVar("O")  # noqa: E741 - conventional name for the output type

DEAD_LETTER = "dead_letter"


class Fold(abc.ABC, Generic[S, I, O]):
    """A pure, per-key state machine over events in event-time order."""

    #: Human name used in metrics and dead-letter reasons.
    name: str = "fold"

    @abc.abstractmethod
    def initial(self, key: str) -> S:
        """State before the first event of ``key``."""

    @abc.abstractmethod
    def event_time(self, item: I) -> dt.datetime:
        """When ``item`` happened."""

    def order(self, item: I) -> int:
        """Tie-break among events of one instant (lower first)."""
        return 0

    def identity(self, item: I) -> str | None:
        """A unique id; a second event with the same id is dropped as a duplicate."""
        return None

    def tiebreak(self, item: I) -> str:
        """Orders the events of one key that :meth:`event_time` and :meth:`order` leave tied.

        A key's fold must not depend on the order in which the runner delivered
        its events, and two events of one instant and rank (two grids over one
        reach, two cameras of one gauge) may arrive either way round. By default
        the event's id, or else its ``repr``: any total order will do, as long as
        it is the same on every run.
        """
        return self.identity(item) or getattr(item, "event_id", None) or repr(item)

    @abc.abstractmethod
    def step(self, key: str, state: S, item: I) -> tuple[S, Iterable[O]]:
        """Folds one event; returns the new state and the outputs it causes."""

    def settle(self, states: dict[str, S], outputs: list[tuple[str, Any]]) -> list[O]:
        """Completes the outputs of a batch of steps, in order: ``(key, output)`` -> outputs.

        A fold whose outputs need work that is cheaper done for many at once (a
        model scoring a batch of rows in one call) emits placeholders from
        :meth:`step` and replaces them here, updating ``states`` (key -> fold
        state) in place where the completed outputs change a key's state. The
        result must not depend on how the steps were batched. By default the
        outputs are complete as they are.
        """
        return [output for _, output in outputs]


def run_fold(fold: Fold[S, I, O], key: str, items: Iterable[I], state: S | None = None) -> tuple[S, list[O]]:
    """Folds ``items`` in event-time order without Beam: the reference semantics."""
    current = fold.initial(key) if state is None else state
    outputs: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for item in sorted(items, key=lambda i: (fold.event_time(i), fold.order(i), fold.tiebreak(i))):
        identity = fold.identity(item)
        if identity is not None:
            if identity in seen:
                continue
            seen.add(identity)
        current, produced = fold.step(key, current, item)
        outputs.extend((key, output) for output in produced)
    states = {key: current}
    settled = fold.settle(states, outputs)
    return states[key], settled


def stream_key(drill_id: str | None, entity_id: str) -> str:
    """The state key of an entity within one stream: live traffic, or one drill.

    A drill's readings must never move the state of live gauges or alerts (nor
    of another drill running at the same time), so every fold is keyed by both.

    Examples:
        >>> stream_key(None, "WL-1"), stream_key("drill-7", "WL-1")
        ('live|WL-1', 'drill-7|WL-1')
    """
    return f"{drill_id or 'live'}|{entity_id}"


def _epoch(value: dt.datetime) -> float:
    return value.timestamp()


@dataclasses.dataclass
class _KeyState:
    """What one key remembers between firings (its waiting events are kept apart)."""

    fold_state: Any = None
    #: Ids folded within the lateness bound, to drop a second copy.
    seen: dict[str, float] = dataclasses.field(default_factory=dict)
    folded_until: float | None = None
    #: Events of this key waiting for the watermark (counted only when folding on arrival).
    waiting: int = 0


@dataclasses.dataclass(frozen=True)
class FoldPace:
    """When a fold folds the events it is given.

    Attributes:
        grain_s: 0 folds each event as soon as the watermark passes its time.
            Otherwise events are folded a grain at a time, when the watermark
            passes the end of their grain: the same results (each key still in
            event-time order), later. Meant for drills replayed as fast as
            possible, where nobody waits on a single event: a stage fed by two
            stages (readings and the clock, rain and levels) gets one input's
            events behind the timers the other's have set, and the runner never
            puts data and timers of one key in the same bundle, so it would take
            two bundles for every distinct event time instead of every grain.
        on_arrival_s: 0 waits for the watermark. Otherwise (live traffic) an
            event stamped no more than this many seconds before the wall clock
            is folded as soon as it arrives, provided no earlier event of its
            key is still waiting: in order per key, without the watermark's
            delay. One that arrives behind its key's folded time is folded late
            or dead-lettered exactly as under the watermark. Older events (a
            backlog) wait for the watermark, which puts the inputs of a key in
            order first.

    Examples:
        >>> FoldPace(on_arrival_s=300).live
        True
        >>> FoldPace(grain_s=600, on_arrival_s=300)
        Traceback (most recent call last):
        ...
        ValueError: a fold is paced by a grain (drills) or on arrival (live), not both
    """

    grain_s: float = 0.0
    on_arrival_s: float = 0.0

    def __post_init__(self) -> None:
        if self.grain_s < 0 or self.on_arrival_s < 0:
            raise ValueError("grain_s and on_arrival_s must be >= 0")
        if self.grain_s and self.on_arrival_s:
            raise ValueError("a fold is paced by a grain (drills) or on arrival (live), not both")

    @property
    def live(self) -> bool:
        return self.on_arrival_s > 0


def shard_of(key: str, shards: int) -> str:
    """The state key holding ``key``: its stream and one of ``shards`` buckets.

    Each state key costs the runner's state API a read and a write per bundle,
    a round trip each, and on a portable runner such as Prism that round trip,
    not the fold, is what a bundle spends its time on. So the keys of a stream
    (gauges, reaches, zones) share a few state keys instead of one each; a
    stream (live traffic or one drill) never shares one with another stream.
    The bucket is a checksum of the key, the same in every process.

    Examples:
        >>> shard_of("drill-7|WL-1", 4)
        'drill-7#1'
        >>> shard_of("live|WL-1", 4).startswith("live#")
        True
    """
    stream = key.partition("|")[0]
    return f"{stream}#{zlib.crc32(key.encode()) % shards}"


def as_parts(pcolls: Any) -> tuple[Any, ...]:
    """One PCollection, or a tuple or list of them, as a tuple.

    Stages take several inputs apart rather than flattened (see :class:`FoldInEventTime`).
    """
    return tuple(pcolls) if isinstance(pcolls, (tuple, list)) else (pcolls,)


def part_label(name: str, index: int, parts: tuple[Any, ...]) -> str:
    """A transform label for the ``index``-th of ``parts``: numbered only when there are several.

    Examples:
        >>> part_label("Shard", 0, ("one",)), part_label("Shard", 1, ("a", "b"))
        ('Shard', 'Shard1')
    """
    return f"{name}{index}" if len(parts) > 1 else name


_BEFORE_ANY_TIME = Timestamp(micros=-(1 << 62))


def set_timer_with_hold(timer: Any, fire_at: Timestamp, hold: Timestamp, tag: str) -> None:
    """Sets an event-time timer that holds the output watermark at ``hold``, before it fires.

    Java's ``Timer.withOutputTimestamp`` does this; Beam's Python SDK (2.77) always
    holds at the firing time and has no API for another hold, though the Fn API
    timer it writes carries one. Outputs of a firing are stamped with their own
    event times, earlier than the firing; without the hold they could fall behind
    the watermark downstream. So the timer is written as ``OutputTimer.set`` writes
    it, with the hold given. Checked by tests/pipelines/test_ordered_folds.py.
    """
    from apache_beam.transforms.userstate import Timer

    encoded = Timer(user_key=timer._key, dynamic_timer_tag=tag, windows=(timer._window,), clear_bit=False,
                    fire_timestamp=fire_at, hold_timestamp=hold, paneinfo=timer._paneinfo)
    timer._timer_coder_impl.encode_to_stream(encoded, timer._output_stream, True)
    timer._output_stream.maybe_flush()


class _OrderedFoldFn(beam.DoFn, Generic[S, I, O]):
    """Folds the keys of one shard (see :func:`shard_of`) in event-time order.

    Waiting events go into an ordered list keyed by event time, added without
    reading anything, and a firing reads and clears only the span that is due.
    A backlog read far ahead of the watermark (a drill at full speed) therefore
    costs nothing per bundle while it waits; keeping it in a cell that each
    bundle decodes and rewrites made the fold quadratic in the backlog. The
    keys' fold states stay in one small cell per shard.
    """

    WAITING: StateSpec = OrderedListStateSpec("waiting", PickleCoder())
    KEYS = ReadModifyWriteStateSpec("keys", PickleCoder())
    FIRE = TimerSpec("fire", TimeDomain.WATERMARK)

    def __init__(self, fold: Fold[S, I, O], max_lateness_s: float, pace: FoldPace = FoldPace()):
        self._fold = fold
        self._max_lateness_s = max_lateness_s
        self._grain_us = round(pace.grain_s * 1e6)
        self._on_arrival_us = round(pace.on_arrival_s * 1e6)
        self._on_arrival = Metrics.counter(fold.name, "folded_on_arrival")
        self._late = Metrics.counter(fold.name, "late_events_folded")
        self._too_late = Metrics.counter(fold.name, "too_late_dead_lettered")
        self._duplicates = Metrics.counter(fold.name, "duplicates_dropped")

    def start_bundle(self) -> None:
        self._armed: set[tuple[str, int]] = set()

    def process(
        self,
        element: tuple[str, tuple[str, I]],
        waiting=beam.DoFn.StateParam(WAITING),  # noqa: B008
        cell=beam.DoFn.StateParam(KEYS),  # noqa: B008
        fire=beam.DoFn.TimerParam(FIRE),  # noqa: B008
    ) -> Iterator[Any]:
        shard, (key, item) = element
        # Whole milliseconds: runners keep timers to the millisecond (Prism does), and a
        # timer reported earlier than the event it was set for would never fold it.
        at = Timestamp(_epoch(self._fold.event_time(item))).micros // 1000 * 1000
        if self._on_arrival_us:
            keys: dict[str, _KeyState] = cell.read() or {}
            current = keys.setdefault(key, _KeyState())
            if current.waiting == 0 and at >= time.time_ns() // 1000 - self._on_arrival_us:
                self._on_arrival.inc()
                yield from self._settled(keys, self._fold_one(key, current, at / 1e6, item))
                self._forget_old_ids(current)
                cell.write(keys)
                return
            current.waiting += 1
            cell.write(keys)
        waiting.add((Timestamp(micros=at), (self._fold.order(item), key, item)))
        # One timer per event time, or per grain (a dynamic tag): when the watermark
        # jumps ahead, every due time of a shard fires in the same bundle instead of
        # one bundle after another. Setting it again changes nothing.
        if not self._grain_us:
            if (shard, at) not in self._armed:
                self._armed.add((shard, at))
                fire.set(Timestamp(micros=at), dynamic_timer_tag=str(at))
            return
        # With a grain, the timer fires at the end of the event's grain and holds
        # the output watermark at its start, so nothing it emits is late downstream.
        due = -(-at // self._grain_us) * self._grain_us
        if (shard, due) not in self._armed:
            self._armed.add((shard, due))
            set_timer_with_hold(fire, Timestamp(micros=due), Timestamp(micros=due - self._grain_us + 1), str(due))

    @on_timer(FIRE)
    def on_fire(
        self,
        fired_at=beam.DoFn.TimestampParam,
        waiting=beam.DoFn.StateParam(WAITING),  # noqa: B008
        cell=beam.DoFn.StateParam(KEYS),  # noqa: B008
    ) -> Iterator[Any]:
        due_before = Timestamp(micros=fired_at.micros + 1)
        due = list(waiting.read_range(_BEFORE_ANY_TIME, due_before))
        if not due:
            return  # An earlier timer of this bundle folded these events already.
        waiting.clear_range(_BEFORE_ANY_TIME, due_before)
        yield from self._fold_due(due, cell)

    def _fold_due(self, due: list[tuple[Timestamp, tuple[int, str, Any]]], cell: Any) -> Iterator[Any]:
        keys: dict[str, _KeyState] = cell.read() or {}
        tiebreak = self._fold.tiebreak
        due.sort(key=lambda entry: (entry[0].micros, entry[1][0], entry[1][1], tiebreak(entry[1][2])))
        produced: list[Any] = []
        for when, (_, key, item) in due:
            current = keys.setdefault(key, _KeyState())
            current.waiting = max(0, current.waiting - 1)
            produced.extend(self._fold_one(key, current, float(when.micros) / 1e6, item))
        yield from self._settled(keys, produced)
        for current in keys.values():
            self._forget_old_ids(current)
        cell.write(keys)

    def _settled(self, keys: dict[str, _KeyState], produced: Iterable[Any]) -> Iterator[Any]:
        """The dead letters of a batch of steps, then its outputs completed by :meth:`Fold.settle`."""
        pending: list[tuple[str, Any]] = []
        for entry in produced:
            if isinstance(entry, pvalue.TaggedOutput):
                yield entry
            else:
                pending.append(entry)
        if not pending:
            return
        states = {key: keys[key].fold_state for key, _ in pending}
        settled = self._fold.settle(states, pending)
        for key, state in states.items():
            keys[key].fold_state = state
        for output in settled:
            # Outputs carry their own event time (Fold.event_time reads it from outputs as from inputs).
            yield TimestampedValue(output, Timestamp(_epoch(self._fold.event_time(output))))  # type: ignore[arg-type]

    def _forget_old_ids(self, current: _KeyState) -> None:
        if current.folded_until is not None:
            horizon = current.folded_until - self._max_lateness_s
            current.seen = {i: t for i, t in current.seen.items() if t >= horizon}

    def _fold_one(self, key: str, current: _KeyState, at: float, item: I) -> Iterator[Any]:
        if current.folded_until is not None and at < current.folded_until:
            if at < current.folded_until - self._max_lateness_s:
                self._too_late.inc()
                yield pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                    reason=(f"{self._fold.name}: event at {dt.datetime.fromtimestamp(at, dt.UTC)} "
                            f"is more than {self._max_lateness_s:g}s behind already processed time"),
                    source_topic="",
                    payload=repr(item)[:2000],
                    stage=self._fold.name,
                ))
                return
            self._late.inc()
        identity = self._fold.identity(item)
        if identity is not None:
            # Ids are remembered for as long as an event could still be folded,
            # so every duplicate is either dropped here or dead-lettered above.
            if identity in current.seen:
                self._duplicates.inc()
                return
            current.seen[identity] = at
        state = self._fold.initial(key) if current.fold_state is None else current.fold_state
        current.fold_state, outputs = self._fold.step(key, state, item)
        current.folded_until = at if current.folded_until is None else max(current.folded_until, at)
        for output in outputs:
            yield key, output


class _BagFoldFn(_OrderedFoldFn[S, I, O]):
    """:class:`_OrderedFoldFn` with its waiting events in a bag, for runners without ordered lists.

    Beam's portable Flink runner (2.70) serves only bag user state to an SDK
    harness: an ordered-list state request fails the bundle. Events are still
    added without reading anything; a firing reads the whole bag, folds what
    is due and writes the rest back. A drill at full speed keeps at most a few
    grains waiting (the publisher stays within ``FULL_SPEED_LEAD`` of the job),
    and a live job only what the watermark has not yet passed, so the rewrite
    stays small. The fold, its order and its outputs are the same.
    """

    WAITING = BagStateSpec("waiting", PickleCoder())
    KEYS = ReadModifyWriteStateSpec("keys", PickleCoder())
    FIRE = TimerSpec("fire", TimeDomain.WATERMARK)

    def process(
        self,
        element: tuple[str, tuple[str, I]],
        waiting=beam.DoFn.StateParam(WAITING),  # noqa: B008
        cell=beam.DoFn.StateParam(KEYS),  # noqa: B008
        fire=beam.DoFn.TimerParam(FIRE),  # noqa: B008
    ) -> Iterator[Any]:
        yield from super().process(element, waiting, cell, fire)

    @on_timer(FIRE)
    def on_fire(
        self,
        fired_at=beam.DoFn.TimestampParam,
        waiting=beam.DoFn.StateParam(WAITING),  # noqa: B008
        cell=beam.DoFn.StateParam(KEYS),  # noqa: B008
    ) -> Iterator[Any]:
        due: list[Any] = []
        later: list[Any] = []
        for entry in waiting.read():
            (due if entry[0].micros <= fired_at.micros else later).append(entry)
        if not due:
            return  # An earlier timer of this bundle folded these events already.
        waiting.clear()
        for entry in later:
            waiting.add(entry)
        yield from self._fold_due(due, cell)


BAG_WAITING_STATE = "suibou_fold_waiting_in_bag"
"""Pipeline experiment: every :class:`FoldInEventTime` keeps its waiting events in bag state.

Set by :func:`suibou.infra.flink.pipeline_options` (``--experiments=...``) for
runners that serve no ordered-list state, such as Beam's portable Flink runner.
"""


@dataclasses.dataclass
class FoldInEventTime(beam.PTransform):
    """Applies a :class:`Fold` per key in event-time order.

    Input: ``(key, item)`` pairs, as one PCollection or several (given apart,
    not flattened first). Output: a PCollection of the fold's outputs, plus a
    ``dead_letter`` output of events too late to fold.

    Attributes:
        fold: The pure state machine.
        max_lateness_s: How far behind already-folded time an event may arrive
            and still be folded (out of order) rather than dead-lettered.
        shards: State keys per stream (see :func:`shard_of`); each key is still
            folded on its own, in its own event-time order.
        pace: When events are folded: as the watermark passes them, a grain at
            a time, or on arrival (:class:`FoldPace`).
    """

    fold: Fold[Any, Any, Any]
    max_lateness_s: float = 600.0
    shards: int = 4
    pace: FoldPace = FoldPace()

    def __post_init__(self) -> None:
        super().__init__()
        if self.max_lateness_s < 0:
            raise ValueError("max_lateness_s must be >= 0")
        if self.shards < 1:
            raise ValueError("shards must be >= 1")

    def expand(self, keyed: beam.PCollection[tuple[str, Any]] | Sequence[beam.PCollection[tuple[str, Any]]]
               ) -> pvalue.DoOutputsTuple:
        # Several inputs are sharded apart and only then flattened into the fold:
        # Prism (2.77) makes the consumer of a Flatten the start of a new stage,
        # so a Flatten ahead of the sharding would send every event through the
        # runner once more before the fold.
        inputs = as_parts(keyed)
        shards = self.shards

        def to_shard(pair: tuple[str, Any]) -> tuple[str, tuple[str, Any]]:
            return shard_of(pair[0], shards), pair

        # One declared type for every input: Prism puts an extra stage in front of
        # a Flatten input whose coder differs from the Flatten's.
        sharded = [
            pcoll | part_label("Shard", index, inputs) >> beam.Map(to_shard).with_output_types(
                tuple[str, tuple[str, Any]])
            for index, pcoll in enumerate(inputs)
        ]
        merged = sharded[0] if len(sharded) == 1 else tuple(sharded) | "Merge" >> beam.Flatten()
        # String keys, declared, so the runner keys state with a deterministic coder.
        fn_class = _BagFoldFn if _wants_bag_state(merged.pipeline) else _OrderedFoldFn
        fold = beam.ParDo(fn_class(self.fold, self.max_lateness_s, self.pace)).with_input_types(
            tuple[str, Any])
        return merged | "Fold" >> fold.with_outputs(DEAD_LETTER, main="out")


def _wants_bag_state(pipeline: beam.Pipeline) -> bool:
    from apache_beam.options.pipeline_options import DebugOptions

    options = pipeline._options
    return options is not None and options.view_as(DebugOptions).lookup_experiment(BAG_WAITING_STATE, False)
