"""The drill plan: order, exercise marking, ticks and ends — no broker needed."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from replay_data import load_storm, plan_messages
from replay_data.publish import paced, plan_size, publish_storm
from suibou.contracts import ControlKind, StreamControl, parse_event
from suibou.settings import Settings, Topics

TOPICS = Topics("drilltest")
PARTITIONS = {topic: [0, 1, 2] for topic in TOPICS.observation_topics.values()}
N_TARGETS = 5 * 3


@pytest.fixture(scope="module")
def storm():
    return load_storm("quiet-day-mini")


@pytest.fixture(scope="module")
def plan(storm):
    return list(plan_messages(storm, TOPICS, PARTITIONS, drill_id="drill-7", tick_every_s=600))


def test_counts(storm, plan):
    readings = [m for m in plan if m.kind in ("rain", "level")]
    ticks = [m for m in plan if m.kind == "tick"]
    ends = [m for m in plan if m.kind == "end"]
    assert len(readings) == len(storm.rain) + len(storm.levels)
    # 3 h at 10 min: ticks at +10 … +170 min (not at the end), to every partition of every feed.
    assert len(ticks) == 17 * N_TARGETS
    assert len(ends) == N_TARGETS
    assert len(plan) == plan_size(storm, PARTITIONS, TOPICS, tick_every_s=600)


def test_readings_in_event_time_order_keyed_by_station(storm, plan):
    readings = [m for m in plan if m.kind in ("rain", "level")]
    assert [m.timestamp_ms for m in readings] == sorted(m.timestamp_ms for m in readings)
    for message in readings:
        event = parse_event(message.value)
        assert message.partition is None
        assert message.key == event.station_id.encode()
        assert message.topic == (TOPICS.rain if message.kind == "rain" else TOPICS.level)
        assert message.timestamp_ms == int(event.event_time.timestamp() * 1000)
        assert event.exercise is True and event.drill_id == "drill-7"
        assert event.event_id == f"{event.station_id}:{int(event.event_time.timestamp())}"


def test_a_tick_follows_every_reading_at_or_before_it(plan):
    seen_tick: dict[tuple[str, int], dt.datetime] = {}
    latest_tick = None
    for message in plan:
        if message.kind == "tick":
            seen_tick[(message.topic, message.partition)] = message.event_time
            latest_tick = message.event_time
        elif message.kind in ("rain", "level") and latest_tick is not None:
            assert message.event_time > latest_tick  # nothing at or before a sent tick follows it


def test_ticks_and_ends_reach_every_partition_of_every_feed(storm, plan):
    controls = [m for m in plan if m.kind in ("tick", "end")]
    tick_times = sorted({m.event_time for m in controls if m.kind == "tick"})
    assert tick_times[0] == storm.start + dt.timedelta(minutes=10)
    assert tick_times[-1] < storm.end
    for t in tick_times:
        targets = {(m.topic, m.partition) for m in controls if m.kind == "tick" and m.event_time == t}
        assert targets == {(topic, p) for topic, parts in PARTITIONS.items() for p in parts}
    ends = plan[-N_TARGETS:]
    assert all(m.kind == "end" and m.event_time == storm.end for m in ends)
    assert {(m.topic, m.partition) for m in ends} == {(t, p) for t, ps in PARTITIONS.items() for p in ps}


def test_control_messages_follow_the_contract(plan):
    tick = next(m for m in plan if m.kind == "tick")
    control = parse_event(tick.value)
    assert isinstance(control, StreamControl)
    assert control.control == ControlKind.TICK and control.source == "drill-7"
    assert control.exercise and control.drill_id == "drill-7"
    epoch = int(tick.event_time.timestamp())
    assert control.event_id == f"tick:drill-7:{tick.topic}:{tick.partition}:{epoch}"
    end = parse_event(plan[-1].value)
    assert end.control == ControlKind.END
    assert len({m.value for m in plan}) == len(plan)  # every message distinct


def test_exercise_flag_can_be_turned_off(storm):
    first = next(plan_messages(storm, TOPICS, PARTITIONS, drill_id="d", exercise=False))
    assert json.loads(first.value)["exercise"] is False


def test_plan_refuses_missing_partitions_and_bad_tick(storm):
    partial = dict(PARTITIONS)
    partial.pop(TOPICS.camera)
    with pytest.raises(ValueError, match="camera"):
        list(plan_messages(storm, TOPICS, partial, drill_id="d"))
    with pytest.raises(ValueError):
        list(plan_messages(storm, TOPICS, PARTITIONS, drill_id="d", tick_every_s=0))


def test_pacing_follows_event_time(storm, plan):
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    released = list(paced(iter(plan), storm.start, speed=60.0, clock=lambda: now[0], sleep=sleep))
    assert released == plan
    # Three storm hours at 60x take three wall minutes.
    assert now[0] == pytest.approx((storm.end - storm.start).total_seconds() / 60.0)


class FakeFuture:
    def add_errback(self, callback):
        return self


class FakeProducer:
    def __init__(self):
        self.sent = []
        self.flushed = False

    def partitions_for(self, topic):
        return {0, 1, 2}

    def send(self, topic, value=None, key=None, partition=None, timestamp_ms=None):
        self.sent.append((topic, partition, key, value, timestamp_ms))
        return FakeFuture()

    def flush(self):
        self.flushed = True


def test_publish_sends_the_plan_in_order(storm):
    producer = FakeProducer()
    settings = Settings(topic_prefix="drilltest")
    report = publish_storm(storm, settings, drill_id="drill-7", producer=producer, progress=False,
                           tick_every_s=600)
    expected = [(m.topic, m.partition, m.key, m.value, m.timestamp_ms)
                for m in plan_messages(storm, TOPICS, PARTITIONS, drill_id="drill-7", tick_every_s=600)]
    assert producer.sent == expected and producer.flushed
    assert report.total == len(expected) and report.ends == N_TARGETS
    assert report.readings == len(storm.rain) + len(storm.levels)


# --------------------------------------------------------------------------- every feed, exercise marker, start time


@pytest.fixture(scope="module")
def full_storm(tmp_path_factory):
    from replay_data.library import materialise, open_storm

    return open_storm(materialise("suginami-2005-mini", tmp_path_factory.mktemp("storms")))


@pytest.fixture(scope="module")
def full_plan(full_storm):
    return list(plan_messages(full_storm, TOPICS, PARTITIONS, drill_id="drill-9"))


def test_every_feed_goes_to_its_topic_keyed_by_its_source(full_storm, full_plan):
    topics = {"rain": TOPICS.rain, "level": TOPICS.level, "camera": TOPICS.camera, "grid": TOPICS.grid,
              "drone": TOPICS.drone}
    events = [m for m in full_plan if m.kind in topics]
    assert {m.kind for m in events} == set(topics)
    assert len(events) == len(full_storm.events())
    for message in events:
        event = parse_event(message.value)
        assert message.topic == topics[message.kind] and message.key == event.key.encode()
    assert [m.timestamp_ms for m in events] == sorted(m.timestamp_ms for m in events)
    assert len(full_plan) == plan_size(full_storm, PARTITIONS, TOPICS)


def test_every_message_of_a_drill_carries_the_exercise_marker_and_the_drill_id(full_plan):
    for message in full_plan:
        data = json.loads(message.value)
        assert data["exercise"] is True and data["drill_id"] == "drill-9", message.kind
        assert parse_event(message.value).exercise is True


def test_a_drill_can_start_later_in_the_storm(full_storm, full_plan):
    start = full_storm.start + dt.timedelta(minutes=65)
    late = list(plan_messages(full_storm, TOPICS, PARTITIONS, drill_id="drill-9", start_at=start))
    events = [m for m in late if m.kind not in ("tick", "end")]
    assert min(m.event_time for m in events) == start
    assert events == [m for m in full_plan if m.kind not in ("tick", "end") and m.event_time >= start]
    ticks = sorted({m.event_time for m in late if m.kind == "tick"})
    assert ticks[0] == start + dt.timedelta(minutes=1)
    assert len(late) == plan_size(full_storm, PARTITIONS, TOPICS, start_at=start)
    with pytest.raises(ValueError, match="UTC offset"):
        list(plan_messages(full_storm, TOPICS, PARTITIONS, drill_id="d", start_at=start.replace(tzinfo=None)))
    with pytest.raises(ValueError, match="not before the storm's end"):
        list(plan_messages(full_storm, TOPICS, PARTITIONS, drill_id="d", start_at=full_storm.end))


def test_the_plan_is_deterministic(full_storm, full_plan):
    assert list(plan_messages(full_storm, TOPICS, PARTITIONS, drill_id="drill-9")) == full_plan
