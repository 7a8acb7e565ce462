"""FoldInEventTime on Prism: keys that share a state shard still fold alone, in
event-time order, with late events folded, too-late ones dead-lettered and
repeats dropped."""

from __future__ import annotations

import dataclasses
import datetime as dt

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream as EventStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from pipelines.ordered import BAG_WAITING_STATE, DEAD_LETTER, Fold, FoldInEventTime, FoldPace, run_fold, shard_of
from suibou.infra.prism import prism_pipeline_options
from suibou.settings import Settings

pytestmark = pytest.mark.e2e  # runs on the Prism runner

T0 = dt.datetime(2019, 10, 12, 0, 0, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class Reading:
    key: str
    minute: int
    value: int

    @property
    def event_time(self) -> dt.datetime:
        return T0 + dt.timedelta(minutes=self.minute)


@dataclasses.dataclass(frozen=True)
class Seen:
    """What a key had folded when it folded ``minute``: the values so far, in folding order."""

    key: str
    minute: int
    values: tuple[int, ...]

    @property
    def event_time(self) -> dt.datetime:
        return T0 + dt.timedelta(minutes=self.minute)


@dataclasses.dataclass(frozen=True)
class History(Fold[tuple, Reading, Seen]):
    name: str = "history"

    def initial(self, key: str) -> tuple:
        return ()

    def event_time(self, item: Reading | Seen) -> dt.datetime:
        return item.event_time

    def identity(self, item: Reading) -> str:
        return f"{item.key}:{item.minute}"

    def step(self, key: str, state: tuple, item: Reading) -> tuple[tuple, list[Seen]]:
        state = (*state, item.value)
        return state, [Seen(key, item.minute, state)]


def at(minute: float) -> Timestamp:
    return Timestamp.from_utc_datetime(T0 + dt.timedelta(minutes=minute))


def timestamped(reading: Reading) -> beam.window.TimestampedValue:
    return beam.window.TimestampedValue((f"d1|{reading.key}", reading), at(reading.minute))


#: Waiting events in ordered-list state (Prism, Dataflow), or in bag state, as on Flink.
WAITING_STATES = pytest.mark.parametrize("waiting", ["ordered-list", "bag"])


def fold_options(waiting: str) -> PipelineOptions:
    experiments = [f"--experiments={BAG_WAITING_STATE}"] if waiting == "bag" else []
    return PipelineOptions([*prism_pipeline_options(Settings()), "--streaming", *experiments])


@WAITING_STATES
def test_keys_sharing_a_shard_fold_alone_in_event_time_order(waiting):
    keys = ["A", "B", "C"]
    assert len({shard_of(f"d1|{k}", 1) for k in keys}) == 1  # one shard: every key shares it
    stream = EventStream().advance_watermark_to(at(0))
    # Minutes 1-3 arrive newest first, interleaved across the keys, before the watermark moves.
    stream = stream.add_elements([timestamped(Reading(k, m, 10 * m + i)) for m in (3, 2, 1)
                                  for i, k in enumerate(keys)])
    stream = stream.advance_watermark_to(at(3.5))
    stream = stream.add_elements([
        timestamped(Reading("A", 3, 999)),   # a repeat of A's minute 3: dropped
        timestamped(Reading("B", 0, 5)),     # behind B's folded time, within the bound: folded late
        timestamped(Reading("C", 10, 100)),
    ])
    stream = stream.advance_watermark_to(at(20))
    stream = stream.add_elements([timestamped(Reading("C", 1, 1))])  # 9 minutes behind C: too late
    stream = stream.advance_watermark_to_infinity()

    with beam.Pipeline(options=fold_options(waiting)) as pipeline:
        folded = (pipeline | stream
                  | FoldInEventTime(History(), max_lateness_s=300.0, shards=1))
        assert ("Bag" in folded.out.producer.full_label) == (waiting == "bag")
        seen = folded.out | beam.Map(lambda s: (s.key.partition("|")[2], s.minute, s.values))
        late = folded[DEAD_LETTER] | beam.Map(lambda d: d.reason.split(" is ")[1])
        assert_that(seen, equal_to([
            ("A", 1, (10,)), ("A", 2, (10, 20)), ("A", 3, (10, 20, 30)),
            ("B", 1, (11,)), ("B", 2, (11, 21)), ("B", 3, (11, 21, 31)), ("B", 0, (11, 21, 31, 5)),
            ("C", 1, (12,)), ("C", 2, (12, 22)), ("C", 3, (12, 22, 32)), ("C", 10, (12, 22, 32, 100)),
        ]), label="each key in its own time order")
        assert_that(late, equal_to(["more than 300s behind already processed time"]), label="too late")


def test_the_fold_without_beam_gives_the_same_order():
    readings = [Reading("A", m, m) for m in (3, 1, 2)]
    _, outputs = run_fold(History(), "d1|A", readings)
    assert [s.values for s in outputs] == [(1,), (1, 2), (1, 2, 3)]


@dataclasses.dataclass(frozen=True)
class EveryReading(History):
    """History without de-duplication: two feeds may report the same key and minute."""

    def identity(self, item: Reading) -> None:
        return None


@WAITING_STATES
def test_folding_a_grain_at_a_time_holds_the_watermark_for_what_it_has_not_folded(waiting):
    """A fold that folds ten minutes at a time gives the same order, and a fold
    downstream that folds every minute as it passes, fed by it and directly by the
    source, gets none of its outputs late: the grain's timer holds the watermark."""
    stream = EventStream().advance_watermark_to(at(0))
    for minute in range(1, 31):
        stream = stream.add_elements([timestamped(Reading("A", minute, minute))])
        stream = stream.advance_watermark_to(at(minute))
    stream = stream.advance_watermark_to_infinity()

    with beam.Pipeline(options=fold_options(waiting)) as pipeline:
        readings = pipeline | stream
        first = readings | "ByGrain" >> FoldInEventTime(History(), max_lateness_s=0.0, pace=FoldPace(grain_s=600.0))
        derived = first.out | beam.Map(lambda s: (s.key, Reading(s.key, s.minute, -len(s.values))))
        second = ((readings, derived) | beam.Flatten()
                  | "EachMinute" >> FoldInEventTime(EveryReading(), max_lateness_s=0.0))
        in_order = first.out | beam.Filter(lambda s: s.minute == 30) | beam.Map(lambda s: s.values)
        folded = second.out | beam.Map(lambda s: len(s.values)) | beam.Filter(lambda n: n >= 60)
        assert_that(in_order, equal_to([tuple(range(1, 31))]), label="in order")
        assert_that(folded, equal_to([60]), label="every reading folded downstream")
        assert_that(second[DEAD_LETTER], equal_to([]), label="nothing late downstream")


@WAITING_STATES
def test_live_readings_are_folded_as_they_arrive_and_a_backlog_waits_for_the_watermark(waiting):
    """Folded on arrival, a live key is folded in the order its readings come, without
    waiting for a watermark that never moves here; an hour-old backlog still waits
    for the watermark and is put in event-time order first."""
    now = (dt.datetime.now(dt.UTC) - T0).total_seconds() / 60
    stream = EventStream().advance_watermark_to(at(0))
    # Live: the newest first, then one made 30 s earlier, which therefore comes late.
    stream = stream.add_elements([timestamped(Reading("L", now, 1))])
    # (A watermark step, far behind either reading, so that the runner hands them over one by one.)
    stream = stream.advance_watermark_to(at(1))
    stream = stream.add_elements([timestamped(Reading("L", now - 0.5, 2))])
    # A backlog from an hour ago, newest first, stamped to the microsecond as gateways may.
    stream = stream.add_elements([timestamped(Reading("B", now - 60 + m + 1e-6 / 7, m)) for m in (3, 2, 1)])
    stream = stream.advance_watermark_to_infinity()

    with beam.Pipeline(options=fold_options(waiting)) as pipeline:
        folded = (pipeline | stream
                  | FoldInEventTime(History(), max_lateness_s=300.0, shards=1, pace=FoldPace(on_arrival_s=120.0)))
        seen = folded.out | beam.Map(lambda s: (s.key.partition("|")[2], s.values))
        assert_that(seen, equal_to([
            ("L", (1,)), ("L", (1, 2)),                      # as they arrived
            ("B", (1,)), ("B", (1, 2)), ("B", (1, 2, 3)),    # in event-time order
        ]))


@WAITING_STATES
def test_events_of_one_instant_and_rank_fold_in_the_same_order_whichever_arrives_first(waiting):
    """Two events that tie on time and order (two grids over one reach, say) are folded in the fold's
    own tiebreak order, not in the order the runner delivered them: the same answer on every run."""
    stream = EventStream().advance_watermark_to(at(0))
    stream = stream.add_elements([timestamped(Reading("A", 1, 7)), timestamped(Reading("B", 1, 5))])
    stream = stream.add_elements([timestamped(Reading("A", 1, 5)), timestamped(Reading("B", 1, 7))])
    stream = stream.advance_watermark_to_infinity()

    with beam.Pipeline(options=fold_options(waiting)) as pipeline:
        folded = pipeline | stream | FoldInEventTime(EveryReading(), max_lateness_s=0.0, shards=1)
        last = folded.out | beam.Filter(lambda s: len(s.values) == 2) | beam.Map(
            lambda s: (s.key.partition("|")[2], s.values))
        assert_that(last, equal_to([("A", (5, 7)), ("B", (5, 7))]))


def test_the_fold_without_beam_breaks_ties_the_same_way():
    for arrival in ([Reading("A", 1, 7), Reading("A", 1, 5)], [Reading("A", 1, 5), Reading("A", 1, 7)]):
        _, outputs = run_fold(EveryReading(), "d1|A", arrival)
        assert outputs[-1].values == (5, 7)
