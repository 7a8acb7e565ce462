"""The full-speed drill's brake: the publisher waits while the pipeline is too far behind."""

from __future__ import annotations

import datetime as dt
import threading
import time

from suibou.drill import PipelineProgress
from suibou.settings import Settings

START = dt.datetime(2019, 10, 11, 12, 0, tzinfo=dt.timezone.utc)
END = START + dt.timedelta(hours=48)


def follower(**kwargs) -> PipelineProgress:
    # Not entered: nothing reads Kafka; the test notes the pipeline's progress itself.
    return PipelineProgress(Settings(), "drill-1", START, END, show=False, every_s=0.02,
                            lead=dt.timedelta(minutes=30), **kwargs)


def test_the_first_lead_of_the_storm_is_published_at_once():
    started = time.monotonic()
    follower(stall_s=5).wait_for(START + dt.timedelta(minutes=30))
    assert time.monotonic() - started < 0.5


def test_publishing_waits_until_the_pipeline_is_within_the_lead():
    progress = follower(stall_s=5)
    progress.note(START + dt.timedelta(minutes=10))

    def catch_up() -> None:
        time.sleep(0.3)
        progress.note(START + dt.timedelta(minutes=45))

    threading.Thread(target=catch_up).start()
    started = time.monotonic()
    progress.wait_for(START + dt.timedelta(minutes=75))
    assert 0.25 < time.monotonic() - started < 2.0


def test_a_pipeline_that_shows_no_progress_is_not_waited_for_forever():
    progress = follower(stall_s=0.3)
    progress.note(START + dt.timedelta(minutes=10))
    started = time.monotonic()
    progress.wait_for(START + dt.timedelta(hours=10))
    assert 0.25 < time.monotonic() - started < 2.0
    started = time.monotonic()
    progress.wait_for(START + dt.timedelta(hours=11))  # and not once per minute after that
    assert time.monotonic() - started < 0.1
