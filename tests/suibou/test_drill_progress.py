"""The full-speed drill's brake: the publisher waits while the pipeline is too far behind."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from suibou.drill import PipelineEnded, PipelineProgress
from suibou.settings import Settings

START = dt.datetime(2019, 10, 11, 12, 0, tzinfo=dt.UTC)
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


def test_a_job_that_ends_while_the_storm_is_published_stops_the_drill_at_once():
    ended = threading.Event()
    progress = follower(stall_s=60, job_ended=ended.is_set)
    progress.note(START + dt.timedelta(minutes=10))
    progress.wait_for(START + dt.timedelta(minutes=20))  # running: within the lead, no wait
    threading.Timer(0.2, ended.set).start()
    started = time.monotonic()
    with pytest.raises(PipelineEnded):
        progress.wait_for(START + dt.timedelta(hours=5))  # braking when the job fails
    assert time.monotonic() - started < 1.0


def test_a_paced_drill_does_not_brake_but_still_notices_a_job_that_ended():
    ended = threading.Event()
    progress = follower(stall_s=60, brake=False, job_ended=ended.is_set)
    started = time.monotonic()
    progress.wait_for(START + dt.timedelta(hours=5))  # far ahead of a job that has done nothing
    assert time.monotonic() - started < 0.1
    ended.set()
    time.sleep(0.05)
    with pytest.raises(PipelineEnded):
        progress.wait_for(START + dt.timedelta(hours=6))
