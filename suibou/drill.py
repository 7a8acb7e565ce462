"""A storm drill, end to end: publish a stored storm to Kafka as exercise traffic
and run the fusion pipeline on it until the drill's end-of-stream markers.

The storm is first materialised into the storm cache (camera frames, rainfall
grids and drone observations are files the messages point to). The pipeline
reads from the topic offsets taken just before publishing, so the drill sees
its own storm and nothing older. Every message carries the exercise marker and
the drill id, which every score and alert keeps. After the drill,
:func:`write_report` writes the drill report (``replay_data.report``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

from suibou.kafka_offsets import list_offsets
from suibou.settings import Settings

if TYPE_CHECKING:
    from pipelines.job import JobConfig
    from suibou.live import PrismJob


@dataclasses.dataclass(frozen=True)
class DrillResult:
    drill_id: str
    storm: str
    published: int
    pipeline_state: str
    elapsed_s: float
    #: Where the alerts topic stood when the drill began.
    alert_offsets: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)
    speed: float | None = None
    start_at: dt.datetime | None = None
    #: Messages sent per feed and control kind (rain, level, camera, grid, drone, tick, end).
    sent: dict[str, int] = dataclasses.field(default_factory=dict)
    publish_s: float = 0.0
    #: How often the drill's job died and was resumed from Kafka (:class:`PrismDrillJob`).
    job_restarts: int = 0


#: How much storm time the pipeline folds at once in a drill replayed as fast as possible.
FULL_SPEED_FOLD_GRAIN_S = 600.0

#: How far ahead of the pipeline such a drill publishes. More than a grain, or the
#: job would wait for ticks the publisher holds back until the job moves.
FULL_SPEED_LEAD = dt.timedelta(seconds=3 * FULL_SPEED_FOLD_GRAIN_S)


class PipelineEnded(RuntimeError):
    """The drill's job ended (failed, most likely) while its storm was still being published."""


def _say(message: str) -> None:
    print(f"[suibou] {message}", file=sys.stderr, flush=True)


def new_drill_id(storm: str, now: dt.datetime | None = None) -> str:
    """A readable, unique id: ``drill-<storm>-<UTC time>``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"drill-{storm}-{now:%Y%m%dT%H%M%S}"


def snapshot_end_offsets(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    """The next offset of every partition of ``topics``: where a new drill begins."""
    from pipelines.job import end_offsets

    return end_offsets(settings.bootstrap_servers, topics)


class PipelineProgress:
    """How far, in storm time, the pipeline has got with a drill: a progress bar, and a brake.

    Every ``every_s`` this reads only the newest record of each partition of the
    rain and level status and score topics (a seek to their end, not the streams:
    reading every record would take CPU from the pipeline it is watching) and
    takes, per topic, the newest time among this drill's records; the pipeline
    has got as far as the slowest of them.

    Publishing a storm at full speed takes seconds and the pipeline then works
    through it for minutes. Read that far ahead, everything not yet folded waits
    in the runner's state, and Prism copies and re-sorts a key's waiting events
    for every bundle: the backlog made a 48-hour drill quadratic. So a drill at
    full speed publishes no more than ``lead`` of storm time ahead of what the
    pipeline has done (:meth:`wait_for`). A pipeline that shows no progress for
    ``stall_s`` is not waited for any longer (a storm with no output): the drill
    then finds out how the job ended.

    Given ``job_ended``, :meth:`wait_for` also asks whether the job is still
    running (at most every ``every_s``, braking or not) and raises
    :class:`PipelineEnded` once it is not: a job that fails while the storm is
    published stops the drill at once, not after the rest of the storm.
    """

    def __init__(self, settings: Settings, drill_id: str, start: dt.datetime, end: dt.datetime,
                 show: bool = True, every_s: float = 0.5, lead: dt.timedelta = FULL_SPEED_LEAD,
                 stall_s: float = 120.0, brake: bool = True, job_ended: Callable[[], bool] | None = None):
        self._settings = settings
        self._drill_id = drill_id
        self._start = start
        self._minutes = max(1, round((end - start).total_seconds() / 60))
        self._show = show
        self._every_s = every_s
        self._lead = lead
        self._stall_s = stall_s
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._braking = brake
        self._job_ended = job_ended
        self._job_checked_at = -math.inf
        self.reached: dt.datetime | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._follow, name="drill-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def note(self, reached: dt.datetime) -> None:
        """Records that the pipeline has got to ``reached`` in storm time."""
        with self._changed:
            self.reached = reached
            self._changed.notify_all()

    def _check_job(self) -> None:
        if self._job_ended is None or time.monotonic() - self._job_checked_at < self._every_s:
            return
        self._job_checked_at = time.monotonic()
        if self._job_ended():
            raise PipelineEnded("the drill pipeline stopped before the storm was published")

    def wait_for(self, event_time: dt.datetime) -> None:
        """Blocks until the pipeline is within ``lead`` of ``event_time`` (or seems stalled).

        Raises:
            PipelineEnded: The job is no longer running (see ``job_ended``).
        """
        self._check_job()
        last_move = time.monotonic()
        with self._changed:
            seen = self.reached
            while self._braking and self._start + self._lead < event_time:
                self._check_job()
                if self.reached is not None and self.reached + self._lead >= event_time:
                    return
                if self.reached != seen:
                    seen, last_move = self.reached, time.monotonic()
                elif time.monotonic() - last_move > self._stall_s:
                    self._braking = False  # Once stalled, the rest is published at once.
                    _say(f"the pipeline showed no progress for {self._stall_s:.0f}s; publishing the rest "
                         "without waiting for it")
                    return
                self._changed.wait(timeout=self._every_s)

    def _follow(self) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from tqdm import tqdm

        from suibou.contracts import ContractError, parse_event

        topics = self._settings.topics
        consumer = KafkaConsumer(bootstrap_servers=self._settings.bootstrap_servers, enable_auto_commit=False)
        try:
            partitions = [TopicPartition(topic, p)
                          for topic in (topics.rain_status, topics.level_status, topics.risk_scores)
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            newest: dict[str, dt.datetime] = {}
            with tqdm(total=self._minutes, unit="storm min", desc="pipeline has done", disable=not self._show,
                      position=1) as bar:
                while not self._stop.wait(self._every_s):
                    for tp, end in list_offsets(consumer, partitions).items():
                        if end > 0:
                            consumer.seek(tp, end - 1)
                    for records in consumer.poll(timeout_ms=500).values():
                        for record in records:
                            try:
                                event = parse_event(record.value)
                            except ContractError:
                                continue
                            if event.drill_id == self._drill_id:
                                newest[record.topic] = max(newest.get(record.topic, event.event_time),
                                                           event.event_time)
                    # The slowest of the stages that have written anything for this drill.
                    reached = min(newest.values(), default=None)
                    if reached is not None and reached != self.reached:
                        self.note(reached)
                        bar.n = min(self._minutes, round((reached - self._start).total_seconds() / 60))
                        bar.refresh()
        except Exception as error:  # noqa: BLE001 - following progress must never fail a drill
            _say(f"pipeline progress display stopped: {error}")
        finally:
            consumer.close()
            with self._changed:
                self._braking = False  # Nothing follows the job any more: stop waiting for it.
                self._changed.notify_all()


#: How often a drill's job on Prism that dies is resumed from Kafka before the drill fails.
DRILL_JOB_RESTARTS = 3


class DrillJob(Protocol):
    """The drill's running job, as the drill waits for it."""

    #: Why the job ended, once it has.
    outcome: str

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def ended(self) -> bool:
        """Whether the job is over for good (done, or failed past recovery)."""
        ...

    def wait(self, timeout_s: float) -> str:
        """Waits for the job to be over; returns its final state's name."""
        ...


def _wait_until_ended(job: DrillJob, timeout_s: float, poll_s: float) -> bool:
    """Polls ``job.ended()`` for up to ``timeout_s``; whether the job ended (else its outcome says so)."""
    deadline = time.monotonic() + timeout_s
    while not job.ended():
        if time.monotonic() > deadline:
            job.outcome = f"not done after {timeout_s:.0f}s"
            return False
        time.sleep(poll_s)
    return True


class PrismDrillJob:
    """The drill's job on a Prism of its own, resumed from Kafka when it dies as the live job is.

    Prism killed, a harness gone, a job that failed: the attempt is torn down
    and a new one resumes from the drill's committed offsets
    (:func:`pipelines.recovery.plan_drill_resume`), dropping outputs already
    published and continuing open alerts, so the drill still ends with each of
    its alerts sent once. After ``restarts`` resumes the next failure ends the drill.
    """

    def __init__(self, settings: Settings, config: JobConfig, options: list[str], drill_id: str,
                 output_starts: dict[tuple[str, int], int], restarts: int = DRILL_JOB_RESTARTS,
                 poll_s: float = 0.5) -> None:
        self._settings = settings
        self._config = config
        self._options = options
        self._drill_id = drill_id
        self._output_starts = output_starts
        self._restarts_left = restarts
        self._poll_s = poll_s
        self._attempt = contextlib.ExitStack()
        self._job: PrismJob | None = None
        self._state: str | None = None
        self.restarts = 0
        self.outcome = "running"

    def __enter__(self) -> Self:
        self._start(self._config)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._job is not None and self._state is None:
            self._job.cancel()  # without its end markers the job would read the topics forever
        self._attempt.close()

    def _start(self, config: JobConfig) -> None:
        from suibou.live import prism_job

        attempt = contextlib.ExitStack()
        self._job = attempt.enter_context(prism_job(self._settings, config, "drill", self._options))
        self._attempt = attempt

    def ended(self) -> bool:
        """Whether the job is over for good; resumes it first if it died and a restart is left."""
        if self._state is not None:
            return True
        assert self._job is not None
        state, reason = self._job.poll()
        if reason is None:
            return False
        if state != "DONE" and self._restarts_left > 0:
            self._resume(reason)
            return False
        self._state, self.outcome = state or "FAILED", reason
        return True

    def _resume(self, reason: str) -> None:
        from pipelines.recovery import plan_drill_resume

        self._restarts_left -= 1
        self.restarts += 1
        _say(f"the drill's job died ({reason}); resuming it from Kafka (restart {self.restarts})")
        self._job = None
        self._attempt.close()
        topics = self._settings.topics
        plan = plan_drill_resume(self._settings.bootstrap_servers, self._config.group_id, self._drill_id,
                                 self._config.start_offsets or {}, self._output_starts, topics.alerts,
                                 topics.rain_status)
        self._start(dataclasses.replace(self._config, start_offsets=plan.start_offsets,
                                        already_published=plan.published_ids, open_alerts=plan.open_alerts,
                                        tank_seeds=plan.tank_seeds))

    def wait(self, timeout_s: float) -> str:
        if not _wait_until_ended(self, timeout_s, self._poll_s):
            return "RUNNING"
        return self._state or "FAILED"


#: How long a drill waits for Flink to cancel its job (and free its slots) once it is over.
CANCEL_TIMEOUT_S = 60.0


class FlinkDrillJob:
    """The drill's job on suibou's Flink job server, watched through Beam's own result and Flink's REST API.

    The job checkpoints as a live job does (``settings.flink_checkpoint_ms``),
    so Flink itself restores a failed task from the last checkpoint, and the
    alert writers read back what was sent before and send nothing twice
    (:class:`pipelines.kafka_io.PublishedLedger`). A failure Flink's restart
    strategy gives up on ends the drill.

    With checkpointing, Beam's Flink runner keeps the job's sources running so
    that checkpoints can still be taken, and the job does not end at the
    drill's end markers. (Shutting idle sources down, Beam's way to end such a
    job, stops checkpoints: once the source has finished, Flink declines every
    checkpoint of the tasks behind it.) So the drill ends the job itself once
    its data is through (:func:`suibou.infra.flink_rest.at_end_of_data`) and a
    checkpoint triggered after that has completed.
    """

    def __init__(self, settings: Settings, config: JobConfig, options: list[str], timeout_s: float,
                 job_name: str, poll_s: float = 1.0) -> None:
        self._settings = settings
        self._config = config
        # The job service's state stream is opened with --job_server_timeout as its gRPC deadline
        # (Beam's default: 300 s); a longer drill would lose it and fail with DEADLINE_EXCEEDED.
        self._options = [*options, f"--job_server_timeout={int(timeout_s) + 120}"]
        self._job_name = job_name
        self._flink_job: str | None = None  # Flink's id of the job, once found through its REST API
        self._poll_s = poll_s
        self._pool = contextlib.ExitStack()
        self._result: Any = None
        self._done = False
        self._drained = False
        self._flushed_by: int | None = None  # the checkpoint that, once completed, has flushed every writer
        self._restored = 0
        self.outcome = "running"

    def __enter__(self) -> Self:
        from pipelines.job import fusion_pipeline
        from suibou.infra.sdk_workers import sdk_worker_pool
        from suibou.live import JOB_HARNESSES

        logs = self._settings.home / "logs"
        pool = self._pool.enter_context(sdk_worker_pool(logs / "drill-harness.log", warm=JOB_HARNESSES))
        try:
            self._result = fusion_pipeline(self._settings, self._config, pool, runner="flink",
                                           options=self._options).run()
        except BaseException:
            self._pool.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        from apache_beam.runners.runner import PipelineState

        from suibou.infra import flink_rest

        if not self._done or self._drained:
            # Without its end markers (or, checkpointed, ever) the job would read the topics forever;
            # and Flink frees the job's slots only once the job is over: the next job would not find them.
            flink_rest.stop_job(self._settings, self._result, self._job_name, CANCEL_TIMEOUT_S)
            deadline = time.monotonic() + CANCEL_TIMEOUT_S
            while not PipelineState.is_terminal(self._result.state) and time.monotonic() < deadline:
                time.sleep(self._poll_s)
        self._pool.close()

    def _data_through(self) -> bool:
        """Whether the drill's data is through every stage and flushed to Kafka (checkpointed jobs)."""
        from suibou.infra import flink_rest

        address = flink_rest.rest_address(self._settings)
        if self._flink_job is None:  # looked up once: Flink keeps a job's id through its restores
            self._flink_job = flink_rest.find_job(address, self._job_name)
        job = self._flink_job
        stats = flink_rest.checkpoints(address, job) if job is not None else None
        if job is None or stats is None:
            return False
        if stats["restored"] != self._restored:  # restored from a checkpoint: the data is coming again
            self._restored, self._flushed_by = stats["restored"], None
        if self._flushed_by is None:
            if flink_rest.at_end_of_data(address, job):
                self._flushed_by = stats["triggered"] + 1
            return False
        return (stats["latest_completed"] or 0) >= self._flushed_by

    def ended(self) -> bool:
        from apache_beam.runners.runner import PipelineState

        if self._done:
            return True
        state = self._result.state
        self._done = PipelineState.is_terminal(state)
        if self._done:
            self.outcome = f"the job ended in state {state}"
        elif self._settings.flink_checkpoint_ms and self._data_through():
            self._done = self._drained = True
            self.outcome = (f"the drill's data is through every stage and checkpoint {self._flushed_by} has "
                            f"flushed it (restored {self._restored} time(s)); the job is stopped")
        return self._done

    def wait(self, timeout_s: float) -> str:
        if not _wait_until_ended(self, timeout_s, self._poll_s):
            return "RUNNING"
        return "DONE" if self._drained else str(self._result.state)


def run_drill(
    storm_name: str,
    settings: Settings,
    *,
    speed: float | None = None,
    drill_id: str | None = None,
    hold_minutes: float = 30.0,
    progress: bool = True,
    timeout_s: float = 1800.0,
    start_at: dt.datetime | None = None,
    runner: str = "prism",
    grid_format: str = "netcdf",
    restarts: int = DRILL_JOB_RESTARTS,
) -> DrillResult:
    """Replays ``storm_name`` through Kafka and the streaming pipeline on Prism (or Flink).

    Args:
        storm_name: A storm from :func:`replay_data.list_storms`.
        settings: Kafka, topics and tools; the infrastructure must be up.
        speed: Storm seconds per wall-clock second; None for as fast as possible.
        drill_id: Defaults to a new id from the storm name and the time.
        hold_minutes: Alert hysteresis before a level is lowered.
        progress: Show a progress bar while publishing.
        timeout_s: Give up waiting for the pipeline after this long.
        start_at: Replay from this storm time (UTC-aware) instead of the storm's start.
        runner: ``"prism"``, or ``"flink"`` for suibou's Flink job server (:mod:`suibou.infra.flink`).
        grid_format: How a built-in storm's rain grids are written for the drill: ``"netcdf"`` or ``"grib2"``.
        restarts: How often a job on Prism that dies mid-drill is resumed from Kafka before the drill fails
            (:class:`PrismDrillJob`).

    Returns:
        What was published and how the pipeline ended.

    Raises:
        RuntimeError: The pipeline failed or did not finish in time.
    """
    from pipelines.job import JobConfig, output_topics
    from replay_data import publish_storm
    from replay_data.library import prepare_storm
    from replay_data.publish import replay_window

    started = time.monotonic()
    storm = prepare_storm(storm_name, settings, progress=progress, grid_format=grid_format)
    replay_window(storm, start_at)  # refuse a bad start time before starting anything
    drill_id = drill_id or new_drill_id(storm_name)
    _say(f"drill {drill_id}: {storm.title}")
    observation_topics = list(settings.topics.observation_topics.values())
    start_offsets = snapshot_end_offsets(settings, observation_topics)
    alert_offsets = snapshot_end_offsets(settings, [settings.topics.alerts])
    config = JobConfig(
        catalogue=storm.catalogue,
        topics=settings.topics,
        bootstrap_servers=settings.bootstrap_servers,
        end_source=drill_id,
        start_offsets=start_offsets,
        # A group of its own: a job of this drill that dies resumes from the drill's own commits.
        group_id=f"suibou-drill-{drill_id}",
        hold_s=hold_minutes * 60,
        flood_model=settings.flood_model,
        # Nobody watches a drill replayed as fast as possible event by event;
        # folding it ten storm minutes at a time gives the same results sooner.
        fold_grain_s=FULL_SPEED_FOLD_GRAIN_S if speed is None else 0.0,
    )
    options = [f"--job_name={drill_id.lower()}"]
    job: DrillJob
    if runner == "flink":
        job = FlinkDrillJob(settings, config, options, timeout_s, job_name=drill_id.lower())
    else:
        output_starts = snapshot_end_offsets(settings, output_topics(settings.topics))
        job = PrismDrillJob(settings, config, options, drill_id, output_starts, restarts=restarts)
    _say(f"starting the fusion pipeline on {runner.capitalize()}")
    with job, PipelineProgress(settings, drill_id, replay_window(storm, start_at), storm.end, show=progress,
                               brake=speed is None, job_ended=job.ended) as follower:
        try:
            report = publish_storm(storm, settings, speed=speed, exercise=True, drill_id=drill_id,
                                   progress=progress, start_at=start_at, wait_for=follower.wait_for)
        except PipelineEnded:
            raise RuntimeError(f"the drill pipeline ended before the storm was published: {job.outcome}") from None
        _say(f"published {report.total} messages; waiting for the pipeline to reach the end of the drill")
        state_name = job.wait(timeout_s)
        if "DONE" not in state_name.upper():
            raise RuntimeError(f"the drill pipeline ended in state {state_name}: {job.outcome}")
    elapsed = time.monotonic() - started
    _say(f"drill {drill_id} processed in {elapsed:.1f}s")
    return DrillResult(drill_id=drill_id, storm=storm_name, published=report.total,
                       pipeline_state=state_name, elapsed_s=elapsed, alert_offsets=alert_offsets,
                       speed=speed, start_at=start_at, sent={**report.counts}, publish_s=report.wall_seconds,
                       job_restarts=getattr(job, "restarts", 0))


def report_dir(settings: Settings, drill_id: str) -> Path:
    """Default place of a drill's report: ``<SUIBOU_HOME>/reports/<drill_id>/``."""
    return Path(settings.home) / "reports" / drill_id


def write_report(result: DrillResult, settings: Settings, alerts: list, path: str | Path | None = None) -> Path:
    """Writes the drill report (Markdown + PNG plots, and report.json); returns the Markdown file.

    Args:
        result: The drill.
        settings: Where the storm cache and the default report folder are.
        alerts: The drill's alert messages (:func:`drill_alert_messages`).
        path: A ``.md`` file or a folder; default ``<SUIBOU_HOME>/reports/<drill_id>/report.md``.
    """
    from replay_data.library import prepare_storm
    from replay_data.report import DrillInfo
    from replay_data.report import write_report as write

    target = Path(path) if path is not None else report_dir(settings, result.drill_id)
    if target.suffix.lower() != ".md":
        target = target / "report.md"
    storm = prepare_storm(result.storm, settings)
    info = DrillInfo(drill_id=result.drill_id, storm=result.storm, speed=result.speed, start_at=result.start_at,
                     published=result.published, elapsed_s=result.elapsed_s, sent=result.sent,
                     publish_s=result.publish_s)
    return write(storm, alerts, info, target)


def drill_messages(
    settings: Settings, drill_id: str, topic: str, from_offsets: dict[tuple[str, int], int] | None = None,
    timeout_s: float = 10.0,
) -> list:
    """Every event of ``drill_id`` on ``topic`` (from ``from_offsets`` where given), read back from Kafka."""
    from kafka import KafkaConsumer, TopicPartition

    from suibou.contracts import ContractError, parse_event

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        for tp in partitions:
            if from_offsets and (tp.topic, tp.partition) in from_offsets:
                consumer.seek(tp, from_offsets[(tp.topic, tp.partition)])
        ends = list_offsets(consumer, partitions)
        found = []
        deadline = time.monotonic() + timeout_s
        # position() without a timeout waits for an offset, so it is never None here.
        while (any(consumer.position(tp) < ends[tp] for tp in partitions)  # type: ignore[operator]
               and time.monotonic() < deadline):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if drill_id.encode() not in record.value:
                        continue
                    try:
                        event = parse_event(record.value)
                    except ContractError:
                        continue
                    if event.drill_id == drill_id:
                        found.append(event)
        return found
    finally:
        consumer.close()


def drill_alert_messages(
    settings: Settings, drill_id: str, from_offsets: dict[tuple[str, int], int] | None = None,
    timeout_s: float = 10.0,
) -> list:
    """Every alert message the pipeline wrote for ``drill_id``, read back from Kafka."""
    return drill_messages(settings, drill_id, settings.topics.alerts, from_offsets, timeout_s)


def alert_chain(alerts: list, drill_id: str | None = None) -> list[dict]:
    """A drill's alert messages as plain rows, independent of its drill id and of arrival order.

    Two runs of the same storm (another drill id, another runner, a resumed
    job) give the same chain when they raised the same alerts: the same areas,
    levels, times and message chains (``sequence`` and ``references``).

    Examples:
        >>> import datetime as dt
        >>> from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType
        >>> first = AlertEvent(event_id="d1:R-X:flood:0:0", alert_id="d1:R-X:flood:0", sequence=0,
        ...     event_time=dt.datetime(2005, 9, 4, 12, tzinfo=dt.timezone.utc), msg_type=MsgType.ALERT,
        ...     area_id="R-X", area_kind=AreaKind.REACH, hazard=Hazard.FLOOD, level=AlertLevel.WARNING,
        ...     headline="x", exercise=True, drill_id="d1")
        >>> alert_chain([first], "d1")[0]["alert_id"], alert_chain([first], "d1")[0]["level"]
        ('DRILL:R-X:flood:0', 3)
    """

    def plain(text: str) -> str:
        return text.replace(drill_id, "DRILL") if drill_id else text

    rows = [
        {
            "alert_id": plain(a.alert_id),
            "sequence": a.sequence,
            "msg_type": a.msg_type.value,
            "area_id": a.area_id,
            "hazard": a.hazard.value,
            "level": int(a.level),
            "previous_level": int(a.previous_level),
            "event_time": a.event_time.isoformat(),
            "references": [plain(r) for r in a.references],
        }
        for a in alerts
    ]
    return sorted(rows, key=lambda r: (r["event_time"], r["area_id"], r["hazard"], r["sequence"]))
