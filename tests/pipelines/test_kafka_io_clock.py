"""The partition clock: a promised time is reported to the runner one call late."""

from __future__ import annotations

from apache_beam.utils.timestamp import MIN_TIMESTAMP, Timestamp

from pipelines.kafka_io import StreamClock


def test_a_tick_moves_the_watermark_only_when_the_next_call_begins():
    clock = StreamClock((MIN_TIMESTAMP, MIN_TIMESTAMP))
    clock.begin_call()
    clock.promise(Timestamp(600))
    # Records read before the tick in this call may still be on their way: not yet reported.
    assert clock.current_watermark() == MIN_TIMESTAMP and clock.promised() == Timestamp(600)
    resumed = StreamClock(clock.get_estimator_state())  # the checkpoint carries the promise
    assert resumed.current_watermark() == MIN_TIMESTAMP
    resumed.begin_call()
    assert resumed.current_watermark() == Timestamp(600)
    resumed.promise(Timestamp(540))  # a clock never runs backwards
    resumed.begin_call()
    assert resumed.current_watermark() == Timestamp(600)
