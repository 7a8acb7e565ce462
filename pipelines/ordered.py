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
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import pickle
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.utils.timestamp import Timestamp

from suibou.contracts import DeadLetter

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - conventional name for the input type
O = TypeVar("O")

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

    @abc.abstractmethod
    def step(self, key: str, state: S, item: I) -> tuple[S, Iterable[O]]:
        """Folds one event; returns the new state and the outputs it causes."""


def run_fold(fold: Fold[S, I, O], key: str, items: Iterable[I], state: S | None = None) -> tuple[S, list[O]]:
    """Folds ``items`` in event-time order without Beam: the reference semantics."""
    current = fold.initial(key) if state is None else state
    outputs: list[O] = []
    seen: set[str] = set()
    for item in sorted(items, key=lambda i: (fold.event_time(i), fold.order(i))):
        identity = fold.identity(item)
        if identity is not None:
            if identity in seen:
                continue
            seen.add(identity)
        current, produced = fold.step(key, current, item)
        outputs.extend(produced)
    return current, outputs


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
    """Everything one key remembers, kept in one state cell.

    One cell means one state read per key and bundle: the runner's state API is
    a round trip per access, which would otherwise dominate the cost of a fold.
    Waiting events are kept already pickled: when a backlog is read far ahead of
    the watermark, the cell is decoded and encoded once per bundle while the
    watermark steps through the backlog, and copying bytes costs far less than
    rebuilding every waiting event each time.
    """

    fold_state: Any = None
    pending: list[tuple[float, int, bytes]] = dataclasses.field(default_factory=list)
    seen: dict[str, float] = dataclasses.field(default_factory=dict)
    folded_until: float | None = None


class _OrderedFoldFn(beam.DoFn, Generic[S, I, O]):
    KEY_STATE = ReadModifyWriteStateSpec("key_state", PickleCoder())
    FIRE = TimerSpec("fire", TimeDomain.WATERMARK)

    def __init__(self, fold: Fold[S, I, O], max_lateness_s: float):
        self._fold = fold
        self._max_lateness_s = max_lateness_s
        self._late = Metrics.counter(fold.name, "late_events_folded")
        self._too_late = Metrics.counter(fold.name, "too_late_dead_lettered")
        self._duplicates = Metrics.counter(fold.name, "duplicates_dropped")

    def process(
        self,
        element: tuple[str, I],
        cell=beam.DoFn.StateParam(KEY_STATE),  # noqa: B008
        fire=beam.DoFn.TimerParam(FIRE),  # noqa: B008
    ) -> Iterator[Any]:
        key, item = element
        at = _epoch(self._fold.event_time(item))
        current: _KeyState = cell.read() or _KeyState()
        if current.folded_until is not None and at < current.folded_until:
            if at < current.folded_until - self._max_lateness_s:
                self._too_late.inc()
                yield pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                    reason=(f"{self._fold.name}: event at {dt.datetime.fromtimestamp(at, dt.timezone.utc)} "
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
        current.pending.append((at, self._fold.order(item), pickle.dumps(item, pickle.HIGHEST_PROTOCOL)))
        cell.write(current)
        # One timer per event time (a dynamic tag): when the watermark jumps
        # ahead, as in a drill replayed at full speed, every due time of a key
        # fires in the same bundle instead of one bundle after another.
        fire.set(Timestamp(at), dynamic_timer_tag=repr(at))

    @on_timer(FIRE)
    def on_fire(
        self,
        key=beam.DoFn.KeyParam,  # noqa: B008
        fired_at=beam.DoFn.TimestampParam,  # noqa: B008
        cell=beam.DoFn.StateParam(KEY_STATE),  # noqa: B008
    ) -> Iterator[Any]:
        limit = float(fired_at.micros) / 1e6
        current: _KeyState = cell.read() or _KeyState()
        ready = sorted((e for e in current.pending if e[0] <= limit), key=lambda e: (e[0], e[1]))
        if not ready:
            return  # An earlier timer of this bundle already folded these events.
        fold_state = self._fold.initial(key) if current.fold_state is None else current.fold_state
        for _, _, pickled in ready:
            fold_state, outputs = self._fold.step(key, fold_state, pickle.loads(pickled))
            for output in outputs:
                yield beam.window.TimestampedValue(output, Timestamp(_epoch(self._fold.event_time(output))))
        newest = ready[-1][0] if current.folded_until is None else max(current.folded_until, ready[-1][0])
        horizon = newest - self._max_lateness_s
        cell.write(_KeyState(
            fold_state=fold_state,
            pending=[e for e in current.pending if e[0] > limit],
            seen={i: t for i, t in current.seen.items() if t >= horizon},
            folded_until=newest,
        ))


@dataclasses.dataclass
class FoldInEventTime(beam.PTransform):
    """Applies a :class:`Fold` per key in event-time order.

    Input: ``(key, item)`` pairs. Output: a PCollection of the fold's outputs,
    plus a ``dead_letter`` output of events too late to fold.

    Attributes:
        fold: The pure state machine.
        max_lateness_s: How far behind already-folded time an event may arrive
            and still be folded (out of order) rather than dead-lettered.
    """

    fold: Fold[Any, Any, Any]
    max_lateness_s: float = 600.0

    def __post_init__(self) -> None:
        super().__init__()
        if self.max_lateness_s < 0:
            raise ValueError("max_lateness_s must be >= 0")

    def expand(self, keyed: beam.PCollection[tuple[str, Any]]) -> pvalue.DoOutputsTuple:
        # String keys, declared, so the runner keys state with a deterministic coder.
        fold = beam.ParDo(_OrderedFoldFn(self.fold, self.max_lateness_s)).with_input_types(tuple[str, Any])
        return keyed | "Fold" >> fold.with_outputs(DEAD_LETTER, main="out")
