"""The live fusion job, supervised: it runs for days, comes back when it fails, and says how it is doing.

``suibou pipeline`` (and ``suibou infra up --live``) runs :class:`LiveSupervisor`:

- **Its own Prism.** Each attempt starts a Prism job service of its own
  (:func:`suibou.infra.prism.prism_job_server`) and the SDK harness processes
  (:func:`suibou.infra.sdk_workers.sdk_worker_pool`), submits the job there and
  watches it with short unary calls. Nothing of the job depends on a stream
  with a deadline: Beam's runner had ended live jobs after
  ``--job_server_timeout`` (300 s).
- **Restarts with back-off.** When the job ends, the runner exits, or the
  runner stops answering, the attempt is torn down (Prism and every harness
  process) and a new one resumes from Kafka as any restarted job does
  (:mod:`pipelines.recovery`): nothing lost, nothing published twice. The log
  says why; the wait doubles from 5 s to 5 min and is reset once a job has run
  for 10 minutes.
- **A clean stop.** SIGTERM or SIGINT cancels the job, then stops Prism and the
  harnesses; offsets of every bundle the runner finished are committed by then,
  and whatever was in flight is re-read by the next start.
- **How it is doing.** A :class:`LiveObserver` follows the job from outside, on
  Kafka, so that it means the same on any runner: readings taken per feed,
  consumer lag and watermark lag per topic, the time from reading to score,
  scores, alerts, dead letters by reason and open faults. They are served as
  Prometheus metrics, and a ``job_status/1`` heartbeat goes to
  ``<prefix>.job.status`` every few seconds for the alert API and its console.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from suibou.contracts import (
    AlertEvent,
    ContractError,
    FaultKind,
    JobState,
    JobStatus,
    RiskScore,
    SensorFault,
    parse_event,
)
from suibou.kafka_offsets import list_offsets
from suibou.settings import Settings

_LOG = logging.getLogger("suibou.live")

#: Live readings made at most this long ago are folded as they arrive (pipelines.ordered.FoldPace).
ON_ARRIVAL_S = 300.0
#: The reader's watermark trails the wall clock by this much on a caught-up partition.
LIVE_DELAY_S = 15.0
MIN_BACKOFF_S = 5.0
MAX_BACKOFF_S = 300.0
#: A job that ran this long without failing resets the back-off.
HEALTHY_AFTER_S = 600.0
HEARTBEAT_S = 5.0
#: The observer's consumers that have reached no broker this long are closed and opened anew.
UNREACHABLE_RECONNECT_S = 30.0
#: Consecutive unanswered state queries after which the runner is taken for dead.
UNANSWERED_LIMIT = 3
DEFAULT_METRICS_PORT = 9465
#: State keys per stream of the area stage, live. Folding on arrival reads and
#: writes a shard's whole cell in every bundle, and bundles are small when
#: readings trickle in: small cells keep that cheap (drills fold a grain at a
#: time, one firing per shard and grain, and keep the default).
LIVE_FOLD_SHARDS = 32
#: SDK harness processes of the fusion job: one per fold and one for the reader's stage (pipelines.harness).
JOB_HARNESSES = 4


def _say(message: str) -> None:
    print(f"[suibou] {message}", file=sys.stderr, flush=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def next_backoff(previous_s: float, ran_for_s: float) -> float:
    """The wait before the next attempt: doubled after each quick failure, reset after a healthy run.

    Examples:
        >>> next_backoff(0.0, 3.0), next_backoff(5.0, 3.0), next_backoff(240.0, 3.0)
        (5.0, 10.0, 300.0)
        >>> next_backoff(80.0, 3600.0)
        5.0
    """
    if ran_for_s >= HEALTHY_AFTER_S or previous_s <= 0:
        return MIN_BACKOFF_S
    return min(MAX_BACKOFF_S, previous_s * 2)


def dead_letter_category(stage: str, reason: str) -> str:
    """A bounded label for a dead letter: its stage and the kind of its reason.

    Examples:
        >>> dead_letter_category("parse", "unknown rain gauge 'RG-X' (not in catalogue 'k')")
        'parse:unknown_station'
        >>> dead_letter_category("rainfall", "rainfall: event at 2005-09-04 12:00:00+00:00 is more than 600s "
        ...                      "behind already processed time")
        'rainfall:too_late'
        >>> dead_letter_category("parse", "not valid JSON: Expecting value")
        'parse:contract'
    """
    text = reason.lower()
    kinds = (
        ("behind already processed", "too_late"),
        ("in the future", "future"),
        ("unknown", "unknown_station"),
        ("carries", "wrong_topic"),
        ("outside every", "outside_areas"),
        ("not valid json", "contract"),
        ("missing", "contract"),
        ("must", "contract"),
        ("unsupported", "contract"),
    )
    kind = next((k for phrase, k in kinds if phrase in text), "other")
    safe_stage = "".join(c for c in stage.lower() if c.isalnum() or c in "_-")[:32] or "unknown"
    return f"{safe_stage}:{kind}"


@dataclasses.dataclass
class LagReading:
    """How far the job is behind on one observation topic."""

    records: int
    watermark_lag_s: float


class LiveMetrics:
    """The live job's Prometheus metrics, in a registry of their own."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.readings = Counter("suibou_pipeline_readings", "Observation records the job has taken and committed, "
                                "per feed", ["feed"], registry=r)
        self.dead_letters = Counter("suibou_pipeline_dead_letters", "Dead letters published, by stage and kind of "
                                    "reason", ["reason"], registry=r)
        self.consumer_lag = Gauge("suibou_pipeline_consumer_lag_records", "Observation records not yet committed "
                                  "by the job, per topic", ["topic"], registry=r)
        self.watermark_lag = Gauge("suibou_pipeline_watermark_lag_seconds", "How far the job's event-time clock "
                                   "trails the wall clock, per topic: the age of the oldest record it has not "
                                   "committed, and at least the live delay once it is caught up", ["topic"],
                                   registry=r)
        self.reading_to_score = Histogram(
            "suibou_pipeline_reading_to_score_seconds", "From a live reading's event time to its score on Kafka",
            ["hazard"], buckets=(0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600), registry=r)
        self.scores = Counter("suibou_pipeline_scores", "Risk scores published, by hazard", ["hazard", "stream"],
                              registry=r)
        self.alerts = Counter("suibou_pipeline_alerts", "Alert messages published, by message type",
                              ["msg_type", "stream"], registry=r)
        self.open_faults = Gauge("suibou_pipeline_open_faults", "Gauges currently silent, frozen or spiking (live)",
                                 ["kind"], registry=r)
        self.state = Gauge("suibou_pipeline_job_state", "1 for the live job's current state", ["state"], registry=r)
        self.restarts = Counter("suibou_pipeline_restarts", "Times the live job was restarted", registry=r)
        self.up_since = Gauge("suibou_pipeline_running_since_seconds", "When the current job started running "
                              "(Unix time; 0 while it is not running)", registry=r)

    def set_state(self, state: JobState) -> None:
        for value in JobState:
            self.state.labels(value.value).set(1 if value is state else 0)


class LiveObserver:
    """Follows the live job on Kafka, from outside the runner.

    A background thread reads the score, alert, fault and dead-letter topics
    (live stream only, from their ends when it starts, after reading back the
    faults still open) and, every ``every_s``, the consumer group's committed
    offsets against the observation topics' ends.
    """

    def __init__(self, settings: Settings, group_id: str, metrics: LiveMetrics, live_delay_s: float = LIVE_DELAY_S,
                 every_s: float = HEARTBEAT_S, fault_tail: int = 5000, bootstrap_timeout_ms: int = 5000) -> None:
        self._settings = settings
        self._bootstrap_timeout_ms = bootstrap_timeout_ms
        self._group_id = group_id
        self._metrics = metrics
        self._live_delay_s = live_delay_s
        self._every_s = every_s
        self._fault_tail = fault_tail
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._lags: dict[str, LagReading] = {}
        self._committed: dict[Any, int] = {}
        self._open_faults: dict[tuple[str, str], str] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="live-observer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def snapshot(self) -> tuple[float | None, int | None]:
        """The slowest topic's watermark lag (s) and the total consumer lag (records); None before known."""
        with self._lock:
            if not self._lags:
                return None, None
            return (max(lag.watermark_lag_s for lag in self._lags.values()),
                    sum(lag.records for lag in self._lags.values()))

    def _run(self) -> None:
        from suibou.kafka_clients import ClusterUnreachable, release_failed_clients

        while not self._stop.is_set():
            try:
                self._follow()
                continue
            except Exception as error:  # noqa: BLE001 - a broker outage must not end the supervisor
                _LOG.warning("live metrics: Kafka unavailable (%s); retrying", error)
                dropped = isinstance(error, ClusterUnreachable)
            release_failed_clients(force=dropped)  # out of the except block, the failed consumers are garbage
            self._stop.wait(5.0)

    def _follow(self) -> None:
        from kafka import TopicPartition

        from suibou.kafka_clients import ReachWatch, open_consumer

        topics = self._settings.topics
        followed = [topics.risk_scores, topics.alerts, topics.faults, topics.dead_letter]
        opened: list[Any] = []
        try:
            # Each retried in an outage: what one attempt opened is closed whether or not the others connect.
            for group in (None, self._group_id, None):
                opened.append(open_consumer(bootstrap_servers=self._settings.bootstrap_servers, group_id=group,
                                            enable_auto_commit=False,
                                            bootstrap_timeout_ms=self._bootstrap_timeout_ms))
            outputs, offsets, peek = opened
            partitions = [TopicPartition(t, p) for t in followed for p in sorted(outputs.partitions_for_topic(t) or ())]
            outputs.assign(partitions)
            ends = list_offsets(outputs, partitions)
            for tp in partitions:
                back = self._fault_tail if tp.topic == topics.faults else 0
                outputs.seek(tp, max(0, ends[tp] - back))
            observed = [TopicPartition(t, p) for t in topics.observation_topics.values()
                        for p in sorted(offsets.partitions_for_topic(t) or ())]
            faults_caught_up = False
            next_lag = 0.0
            reach = ReachWatch(UNREACHABLE_RECONNECT_S)
            while not self._stop.is_set():
                reach.check(outputs)
                for records in outputs.poll(timeout_ms=500, max_records=2000).values():
                    for record in records:
                        self._observe(record.topic, record.value, new=faults_caught_up or
                                      record.offset >= ends.get(TopicPartition(record.topic, record.partition), 0))
                faults_caught_up = True
                if time.monotonic() >= next_lag:
                    next_lag = time.monotonic() + self._every_s
                    self._measure_lag(offsets, peek, observed)
        finally:
            for consumer in opened:
                consumer.close()

    def _observe(self, topic: str, value: bytes, new: bool) -> None:
        """Counts one output record; ``new``: published since the observer started (not the faults' tail)."""
        topics = self._settings.topics
        if topic == topics.dead_letter:
            try:
                data = json.loads(value)
                self._metrics.dead_letters.labels(
                    dead_letter_category(str(data.get("stage", "")), str(data.get("reason", "")))).inc()
            except (ValueError, AttributeError):
                self._metrics.dead_letters.labels("unknown:unreadable").inc()
            return
        try:
            event = parse_event(value)
        except ContractError:
            return
        stream = "live" if event.drill_id is None else "drill"
        if isinstance(event, RiskScore):
            if new:
                self._metrics.scores.labels(event.hazard.value, stream).inc()
                if event.drill_id is None and not event.event_id.endswith(":held"):
                    age = (_now() - event.event_time).total_seconds()
                    self._metrics.reading_to_score.labels(event.hazard.value).observe(max(0.0, age))
        elif isinstance(event, AlertEvent):
            if new:
                self._metrics.alerts.labels(event.msg_type.value, stream).inc()
        elif isinstance(event, SensorFault) and event.drill_id is None:
            self._track_fault(event)

    def _track_fault(self, fault: SensorFault) -> None:
        if fault.kind is FaultKind.RECOVERED:
            self._open_faults.pop((fault.station_id, FaultKind.SILENT.value), None)
        else:
            self._open_faults[(fault.station_id, fault.kind.value)] = fault.kind.value
        for kind in FaultKind:
            if kind is not FaultKind.RECOVERED:
                count = sum(1 for k in self._open_faults.values() if k == kind.value)
                self._metrics.open_faults.labels(kind.value).set(count)

    def _measure_lag(self, consumer, peek, partitions) -> None:
        ends = list_offsets(peek, partitions)
        lags: dict[str, LagReading] = {}
        for tp in partitions:
            committed = consumer.committed(tp)
            previous = self._committed.get(tp)
            if committed is not None and previous is not None and committed > previous:
                feed = next((f for f, t in self._settings.topics.observation_topics.items() if t == tp.topic), "?")
                self._metrics.readings.labels(feed).inc(committed - previous)
            if committed is not None:
                self._committed[tp] = committed
            start = committed if committed is not None else ends[tp]
            behind = max(0, ends[tp] - start)
            age = self._live_delay_s
            if behind:
                age = max(age, self._age_of(peek, tp, start))
            lag = lags.setdefault(tp.topic, LagReading(0, 0.0))
            lag.records += behind
            lag.watermark_lag_s = max(lag.watermark_lag_s, age)
        for topic, lag in lags.items():
            self._metrics.consumer_lag.labels(topic).set(lag.records)
            self._metrics.watermark_lag.labels(topic).set(lag.watermark_lag_s)
        with self._lock:
            self._lags = lags

    def _age_of(self, consumer, tp, offset: int) -> float:
        """Seconds since the event time of the record at ``offset`` (0 if it cannot be read now)."""
        consumer.assign([tp])
        consumer.seek(tp, offset)
        for records in consumer.poll(timeout_ms=1000, max_records=1).values():
            for record in records:
                return max(0.0, time.time() - record.timestamp / 1000.0)
        return 0.0


@dataclasses.dataclass(frozen=True)
class LiveOptions:
    """What ``suibou pipeline`` was asked to run."""

    catalogue: str = "kanda-basin"
    group_id: str = "suibou-pipeline"
    hold_s: float = 1800.0
    silence_after_s: float = 600.0
    beam_args: tuple[str, ...] = ()
    metrics_port: int = DEFAULT_METRICS_PORT
    metrics_host: str = "127.0.0.1"


class LiveSupervisor:
    """Runs the live job until stopped, restarting it with back-off whenever it ends.

    Args:
        settings: Kafka, topics and tools.
        options: What to run.
        metrics: Where the job's metrics go.
    """

    def __init__(self, settings: Settings, options: LiveOptions, metrics: LiveMetrics | None = None) -> None:
        self.settings = settings
        self.options = options
        self.metrics = metrics or LiveMetrics()
        self._stopping = threading.Event()
        self._state = JobState.STARTING
        self._since = _now()
        self._restarts = 0
        self._last_reason = ""
        self._heartbeats = 0
        self._observer = LiveObserver(settings, options.group_id, self.metrics)
        self._producer: Any = None
        self.metrics.set_state(self._state)

    # ----------------------------------------------------------------- control

    def stop(self, *_: object) -> None:
        """Asks the supervisor to stop (a signal handler)."""
        if not self._stopping.is_set():
            _say("stopping the live job")
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> int:
        """Runs attempts until stopped; returns the exit code."""
        self._observer.start()
        backoff = 0.0
        try:
            while not self.stopping:
                started = time.monotonic()
                reason = self._attempt()
                if self.stopping:
                    break
                ran_for = time.monotonic() - started
                backoff = next_backoff(backoff, ran_for)
                self._restarts += 1
                self._last_reason = reason[:512]
                self.metrics.restarts.inc()
                self._set_state(JobState.RESTARTING)
                _say(f"the live job ended after {ran_for:.0f}s: {reason}; restarting in {backoff:.0f}s "
                     f"(restart {self._restarts})")
                self._wait(backoff)
        finally:
            self._set_state(JobState.STOPPED)
            self._observer.stop()
            if self._producer is not None:
                with contextlib.suppress(Exception):
                    self._producer.close(timeout=5)
        _say("live job stopped")
        return 0

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            self._heartbeat()
            self._stopping.wait(min(HEARTBEAT_S, max(0.0, deadline - time.monotonic())))

    # ----------------------------------------------------------------- one attempt

    def _attempt(self) -> str:
        """Runs the job once; returns why it ended (or "stopped")."""
        self._set_state(JobState.STARTING)
        try:
            config = self._config()
        except Exception as error:  # noqa: BLE001 - Kafka down at start: retried with back-off
            return f"could not plan the resume from Kafka: {error}"
        try:
            with prism_job(self.settings, config, "live",
                           ["--job_name=suibou-live", *self.options.beam_args]) as job:
                return self._watch(job)
        except Exception as error:  # noqa: BLE001 - any failure of an attempt means a restart
            return f"{type(error).__name__}: {error}"

    def _config(self):
        from pipelines.job import JobConfig, output_topics
        from pipelines.recovery import plan_resume
        from suibou.catalogue import StationCatalogue

        topics = self.settings.topics
        plan = plan_resume(self.settings.bootstrap_servers, self.options.group_id,
                           list(topics.observation_topics.values()), output_topics(topics), topics.alerts,
                           topics.rain_status)
        return JobConfig.resumed(
            plan, catalogue=StationCatalogue.load(self.options.catalogue), topics=topics,
            bootstrap_servers=self.settings.bootstrap_servers, group_id=self.options.group_id,
            hold_s=self.options.hold_s, silence_after_s=self.options.silence_after_s,
            fold_on_arrival_s=ON_ARRIVAL_S, fold_shards=LIVE_FOLD_SHARDS, flood_model=self.settings.flood_model)

    def _watch(self, job: PrismJob) -> str:
        try:
            running_since: float | None = None
            while not self.stopping:
                state, ended = job.poll()
                if ended is not None:
                    return ended
                if state == "RUNNING" and running_since is None:
                    running_since = time.time()
                    self.metrics.up_since.set(running_since)
                    self._set_state(JobState.RUNNING)
                    _say(f"live job running on {self.options.catalogue}")
                self._heartbeat()
                self._stopping.wait(HEARTBEAT_S)
            job.cancel()
            return "stopped"
        finally:
            self.metrics.up_since.set(0)

    # ----------------------------------------------------------------- status

    def _set_state(self, state: JobState) -> None:
        if state is not self._state:
            self._state = state
            self._since = _now()
            self.metrics.set_state(state)
        self._heartbeat()

    def status(self) -> JobStatus:
        """The heartbeat the supervisor would send now."""
        behind, lag = self._observer.snapshot()
        now = _now()
        self._heartbeats += 1
        return JobStatus(event_id=f"live:{now:%Y%m%dT%H%M%S}:{self._heartbeats}", event_time=now, job="live",
                         state=self._state, since=self._since, restarts=self._restarts,
                         last_restart_reason=self._last_reason,
                         behind_s=None if behind is None else round(behind, 1), consumer_lag=lag)

    def _heartbeat(self) -> None:
        status = self.status()
        self._write_status_file(status)
        try:
            if self._producer is None:
                from suibou.kafka_clients import open_producer

                self._producer = open_producer(bootstrap_servers=self.settings.bootstrap_servers, acks="all",
                                               enable_idempotence=True, max_block_ms=2000)
            self._producer.send(self.settings.topics.job_status, key=b"live", value=status.to_json())
        except Exception as error:  # noqa: BLE001 - the heartbeat is best effort; the status file stays
            _LOG.warning("job status heartbeat not sent: %s", error)

    def _write_status_file(self, status: JobStatus) -> None:
        path = status_file(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({**status.to_dict(), "pid": os.getpid()}))
        temporary.replace(path)


#: Job states after which a job does no more work.
TERMINAL_STATES = frozenset({"DONE", "FAILED", "CANCELLED", "DRAINED", "UPDATED"})


@dataclasses.dataclass
class PrismJob:
    """A fusion job on a Prism job service of its own, watched with short calls (:func:`prism_job`)."""

    prism: Any  # suibou.infra.prism.PrismServer
    watch: JobWatch

    def poll(self) -> tuple[str | None, str | None]:
        """The job's state (None when the runner did not answer) and, once it is over, why.

        The job is over when it reached a terminal state, when Prism exited, or
        when Prism left :data:`UNANSWERED_LIMIT` calls in a row unanswered.
        """
        code = self.prism.exit_code()
        if code is not None:
            return None, f"the runner (Prism) exited with code {code}"
        state, error = self.watch.state()
        if state is None:
            if self.watch.unanswered >= UNANSWERED_LIMIT:
                return None, f"the runner stopped answering ({error})"
            return None, None
        if state in TERMINAL_STATES:
            detail = self.watch.last_error()
            return state, f"the job ended in state {state}" + (f": {detail}" if detail else "")
        return state, None

    def cancel(self) -> None:
        self.watch.cancel()


@contextlib.contextmanager
def prism_job(settings: Settings, config: Any, log_stem: str, options: Sequence[str]) -> Iterator[PrismJob]:
    """Submits the fusion job to a Prism of its own with its own harness processes; tears all down on leaving.

    Prism logs to ``<home>/logs/<log_stem>-prism.log``, the harnesses to ``<log_stem>-harness.log``.
    """
    from pipelines.job import fusion_pipeline
    from suibou.infra.prism import prism_job_server
    from suibou.infra.sdk_workers import sdk_worker_pool

    logs = settings.home / "logs"
    # The harnesses import Beam before the job is submitted: Prism fails a job
    # whose harness has not connected within a minute, which a restart on a
    # busy machine could take.
    with (prism_job_server(settings, logs / f"{log_stem}-prism.log") as prism,
          sdk_worker_pool(logs / f"{log_stem}-harness.log", warm=JOB_HARNESSES) as pool):
        result = fusion_pipeline(settings, config, pool, job_endpoint=prism.endpoint, options=options).run()
        # Beam exposes no public job id (the portable runner's result has it).
        job = PrismJob(prism, JobWatch(prism.endpoint, result._job_id))  # type: ignore[attr-defined]  # noqa: SLF001
        try:
            yield job
        finally:
            job.watch.close()


class JobWatch:
    """Asks a job service about one job with short unary calls (no stream, no long deadline)."""

    def __init__(self, endpoint: str, job_id: str, timeout_s: float = 10.0) -> None:
        import grpc
        from apache_beam.portability.api import beam_job_api_pb2_grpc

        self._channel = grpc.insecure_channel(endpoint)
        self._stub = beam_job_api_pb2_grpc.JobServiceStub(self._channel)
        self._job_id = job_id
        self._timeout_s = timeout_s
        self.unanswered = 0

    def state(self) -> tuple[str | None, str]:
        """The job's state name, or None and the error when the service did not answer."""
        import grpc
        from apache_beam.portability.api import beam_job_api_pb2

        try:
            response = self._stub.GetState(beam_job_api_pb2.GetJobStateRequest(job_id=self._job_id),
                                           timeout=self._timeout_s)
        except grpc.RpcError as error:
            self.unanswered += 1
            return None, str(error.code() if hasattr(error, "code") else error)
        self.unanswered = 0
        return beam_job_api_pb2.JobState.Enum.Name(response.state), ""

    def last_error(self) -> str:
        """The last error message the job service has for the job, if it answers at once."""
        import grpc
        from apache_beam.portability.api import beam_job_api_pb2

        try:
            stream = self._stub.GetMessageStream(beam_job_api_pb2.JobMessagesRequest(job_id=self._job_id),
                                                 timeout=2.0)
            last = ""
            for response in stream:
                if (response.HasField("message_response") and response.message_response.message_text
                        and response.message_response.importance >= beam_job_api_pb2.JobMessage.JOB_MESSAGE_ERROR):
                    last = response.message_response.message_text
        except grpc.RpcError:
            pass
        return last.strip().splitlines()[0][:300] if last.strip() else ""

    def cancel(self) -> None:
        import grpc
        from apache_beam.portability.api import beam_job_api_pb2

        with contextlib.suppress(grpc.RpcError):
            self._stub.Cancel(beam_job_api_pb2.CancelJobRequest(job_id=self._job_id), timeout=self._timeout_s)

    def close(self) -> None:
        self._channel.close()


def status_file(settings: Settings) -> Path:
    """The supervisor's latest heartbeat, for ``suibou infra status``."""
    return settings.home / "live" / "status.json"


def read_status(settings: Settings, stale_after_s: float = 30.0) -> str | None:
    """A line on the live job from its status file; None when there is no such file.

    Examples:
        >>> import tempfile
        >>> read_status(Settings(home=Path(tempfile.mkdtemp()))) is None
        True
    """
    try:
        data = json.loads(status_file(settings).read_text())
    except (OSError, ValueError):
        return None
    at = dt.datetime.fromisoformat(data["event_time"])
    age = (_now() - at).total_seconds()
    if age > stale_after_s:
        return f"not heard from for {age:.0f}s (last: {data['state']}, pid {data.get('pid')})"
    text = f"{data['state']} since {data['since']} (pid {data.get('pid')})"
    if data.get("behind_s") is not None and data["state"] == "running":
        text += f", behind by {data['behind_s']:.0f}s"
    if data.get("restarts"):
        text += f", {data['restarts']} restart(s), last: {data.get('last_restart_reason', '')}"
    return text


def parse_args(argv: Sequence[str]) -> tuple[LiveOptions, list[str]]:
    """``suibou pipeline`` options for the live job; the rest are Beam options."""
    parser = argparse.ArgumentParser(prog="suibou pipeline", description="Run the live fusion job until stopped.")
    parser.add_argument("--catalogue", default="kanda-basin", help="station catalogue name or JSON path")
    parser.add_argument("--group-id", default="suibou-pipeline")
    parser.add_argument("--hold-minutes", type=float, default=30.0, help="hysteresis before lowering a level")
    parser.add_argument("--silence-minutes", type=float, default=10.0,
                        help="a gauge not heard from for this long is reported silent")
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("SUIBOU_PIPELINE_METRICS_PORT",
                                                                               DEFAULT_METRICS_PORT)),
                        help="Prometheus metrics port on 127.0.0.1 (0: none)")
    parser.add_argument("--runner", default="prism", choices=("prism",))
    known, rest = parser.parse_known_args(argv)
    if not known.silence_minutes > 0:
        parser.error("--silence-minutes must be positive")
    return LiveOptions(catalogue=known.catalogue, group_id=known.group_id, hold_s=known.hold_minutes * 60,
                       silence_after_s=known.silence_minutes * 60, beam_args=tuple(rest),
                       metrics_port=known.metrics_port), rest


@contextlib.contextmanager
def _signals(handler: Callable[..., None]) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: Sequence[str], settings: Settings) -> int:
    """``suibou pipeline``: the live job, supervised, with its metrics served."""
    options, _ = parse_args(argv)
    supervisor = LiveSupervisor(settings, options)
    if options.metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(options.metrics_port, addr=options.metrics_host, registry=supervisor.metrics.registry)
        except OSError as error:
            _say(f"cannot serve the live job's metrics on {options.metrics_host}:{options.metrics_port} ({error}); "
                 "is another live job running? Choose another --metrics-port, or 0 for none")
            return 2
        _say(f"live job metrics: http://{options.metrics_host}:{options.metrics_port}/metrics")
    with _signals(supervisor.stop):
        return supervisor.run()


__all__ = ["LiveMetrics", "LiveObserver", "LiveOptions", "LiveSupervisor", "dead_letter_category", "main",
           "next_backoff", "read_status", "status_file"]
