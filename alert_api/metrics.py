"""Prometheus metrics of the alert API: every metric object the API has, in one registry per app.

Counters and histograms move where things happen (the alert consumer, webhook
delivery, ingest, every HTTP request); gauges that describe a state (consumer
state and lag, the webhook queue, the live fusion job) are read when Prometheus
scrapes, from a :class:`Snapshot` the app assembles (:class:`StateCollector`).

Every label takes a bounded set of values: feeds and rejection reasons are
fixed lists, routes are the app's route templates (``/v1/alerts/{alert_id}``,
never the path asked for; ``unmatched`` for anything else), statuses are
classes (``2xx``). ``GET /metrics`` serves :meth:`ApiMetrics.render` (text
exposition format) to the admin key and to partner keys with the ``metrics:read``
scope.

Examples:
    >>> metrics = ApiMetrics()
    >>> metrics.alert_message(exercise=False, stored=True)
    >>> metrics.ingest_rejected("nonsense")
    Traceback (most recent call last):
    ...
    ValueError: unknown rejection reason 'nonsense'
    >>> b'suibou_api_alert_messages_stored_total{exercise="false"} 1.0' in metrics.render()
    True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alert_api.db import Database, webhook_outbox

#: Observation feeds the ingest route accepts (label ``feed``).
INGEST_FEEDS = ("rain", "level", "camera", "drone")
#: Why the ingest route refuses a reading (label ``reason``); see :mod:`alert_api.ingest`.
REJECT_REASONS = ("invalid", "schema", "station", "exercise", "image", "conflict", "in_flight")
#: Webhook delivery outcomes (label ``outcome``): a 2xx, a failed attempt to retry, a dead letter.
WEBHOOK_OUTCOMES = ("delivered", "failed", "dead_lettered")
#: Alert consumer states (label ``state``), as :class:`alert_api.consumer.ConsumerState`.
CONSUMER_STATES = ("disabled", "stopped", "connecting", "running", "retrying")
#: Live job states (label ``state``): a heartbeat's state, or ``not_seen``.
JOB_STATES = ("starting", "running", "restarting", "stopped", "not_seen")
#: Latency buckets (seconds) of HTTP requests: from cached reads to large route checks.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclasses.dataclass(frozen=True)
class JobSnapshot:
    """The live job as the API last heard of it (see :mod:`alert_api.jobs`)."""

    state: str
    heartbeat_age_s: float | None = None
    behind_s: float | None = None
    restarts: int | None = None
    consumer_lag: int | None = None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """States read at scrape time.

    Attributes:
        consumer_state: The alert consumer's state (one of :data:`CONSUMER_STATES`).
        consumer_lag: Alert records on the broker not yet stored, when known.
        queue_depth: Webhook deliveries pending.
        queue_age_s: Age of the oldest pending delivery (0 when none is pending).
        job: The live fusion job.
    """

    consumer_state: str
    consumer_lag: int | None
    queue_depth: int
    queue_age_s: float
    job: JobSnapshot


def outbox_queue(database: Database, now: dt.datetime) -> tuple[int, float]:
    """``(pending deliveries, age in seconds of the oldest)`` of the webhook outbox."""
    o = webhook_outbox.c
    with database.read() as connection:
        depth, oldest = connection.execute(
            sa.select(sa.func.count(), sa.func.min(o.created_at)).where(o.status == "pending")).one()
    if not depth or oldest is None:
        return 0, 0.0
    if oldest.tzinfo is None:  # aggregates bypass the column type on some dialects
        oldest = oldest.replace(tzinfo=dt.UTC)
    return int(depth), max(0.0, (now - oldest).total_seconds())


class StateCollector(Collector):
    """Gauges computed from a :class:`Snapshot` at each scrape."""

    def __init__(self, snapshot: Callable[[], Snapshot | None]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        if snap is None:  # the app has not started yet
            return
        state = GaugeMetricFamily("suibou_api_alert_consumer_state", "1 for the alert consumer's current state",
                                  labels=["state"])
        for name in CONSUMER_STATES:
            state.add_metric([name], 1.0 if name == snap.consumer_state else 0.0)
        yield state
        if snap.consumer_lag is not None:
            yield GaugeMetricFamily("suibou_api_alert_consumer_lag_records",
                                    "Alert records on the broker the API has not stored yet", value=snap.consumer_lag)
        yield GaugeMetricFamily("suibou_api_webhook_queue_depth", "Webhook deliveries pending",
                                value=snap.queue_depth)
        yield GaugeMetricFamily("suibou_api_webhook_queue_age_seconds",
                                "Age of the oldest pending webhook delivery (0 when none)", value=snap.queue_age_s)
        job = GaugeMetricFamily("suibou_live_job_state", "1 for the live fusion job's last known state",
                                labels=["state"])
        for name in JOB_STATES:
            job.add_metric([name], 1.0 if name == snap.job.state else 0.0)
        yield job
        optional = (
            ("suibou_live_job_heartbeat_age_seconds", "Seconds since the live job's last heartbeat",
             snap.job.heartbeat_age_s),
            ("suibou_live_job_behind_seconds", "How far the live job's slowest feed is behind the wall clock",
             snap.job.behind_s),
            ("suibou_live_job_restarts", "Restarts of the live job since its supervisor started", snap.job.restarts),
            ("suibou_live_job_consumer_lag_records", "Observation records the live job has not committed",
             snap.job.consumer_lag),
        )
        for name, text, value in optional:
            if value is not None:
                yield GaugeMetricFamily(name, text, value=float(value))


class ApiMetrics:
    """The alert API's metrics, in a registry of their own (several apps can live in one process).

    Args:
        snapshot: Supplies the scrape-time states; ``None`` leaves them out.
    """

    def __init__(self, snapshot: Callable[[], Snapshot | None] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.alert_consumed = Counter("suibou_api_alert_messages_consumed", "Alert records read from Kafka",
                                      ["exercise"], registry=r)
        self.alert_stored = Counter("suibou_api_alert_messages_stored", "Alert messages newly stored",
                                    ["exercise"], registry=r)
        self.alert_dead_letters = Counter("suibou_api_alert_dead_letters", "Alert records sent to the dead letters",
                                          registry=r)
        self.webhook_deliveries = Counter("suibou_api_webhook_deliveries", "Webhook delivery attempts by outcome",
                                          ["outcome"], registry=r)
        self.ingest_accepted = Counter("suibou_api_ingest_readings_accepted", "Gateway readings produced to Kafka",
                                       ["feed"], registry=r)
        self.ingest_duplicates = Counter("suibou_api_ingest_readings_duplicate",
                                         "Gateway readings already accepted before (not produced again)", ["feed"],
                                         registry=r)
        self.ingest_rejections = Counter("suibou_api_ingest_readings_rejected", "Gateway readings refused, by reason",
                                         ["reason"], registry=r)
        self.ingest_unavailable = Counter("suibou_api_ingest_batches_unavailable",
                                          "Ingest batches answered 503 because Kafka did not acknowledge", registry=r)
        self.http_requests = Counter("suibou_api_http_requests", "HTTP requests by route template and status class",
                                     ["route", "method", "status"], registry=r)
        self.http_latency = Histogram("suibou_api_http_request_duration_seconds",
                                      "Time until the response starts, by route template", ["route", "method"],
                                      buckets=LATENCY_BUCKETS, registry=r)
        for value in ("true", "false"):
            self.alert_consumed.labels(value)
            self.alert_stored.labels(value)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_deliveries.labels(outcome)
        for feed in INGEST_FEEDS:
            self.ingest_accepted.labels(feed)
            self.ingest_duplicates.labels(feed)
        for reason in REJECT_REASONS:
            self.ingest_rejections.labels(reason)
        if snapshot is not None:
            r.register(StateCollector(snapshot))

    # ------------------------------------------------------------------ recording

    def alert_message(self, *, exercise: bool | None, stored: bool) -> None:
        """One record of the alerts topic: ``exercise`` None for a record that did not parse."""
        if exercise is None:
            self.alert_dead_letters.inc()
            return
        label = "true" if exercise else "false"
        self.alert_consumed.labels(label).inc()
        if stored:
            self.alert_stored.labels(label).inc()

    def webhook_outcome(self, outcome: str) -> None:
        if outcome not in WEBHOOK_OUTCOMES:
            raise ValueError(f"unknown webhook outcome {outcome!r}")
        self.webhook_deliveries.labels(outcome).inc()

    def ingest_result(self, feed: str, status: str) -> None:
        """An accepted or duplicate reading of ``feed``."""
        if feed not in INGEST_FEEDS:
            raise ValueError(f"unknown feed {feed!r}")
        (self.ingest_accepted if status == "accepted" else self.ingest_duplicates).labels(feed).inc()

    def ingest_rejected(self, reason: str) -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        self.ingest_rejections.labels(reason).inc()

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, f"{status // 100}xx").inc()
        self.http_latency.labels(route, method).observe(seconds)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


#: HTTP methods counted by name; anything else is ``other`` (bounded labels).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(scope: Mapping[str, Any]) -> str:
    """The route template a request matched (``/v1/alerts/{alert_id}``), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class MetricsMiddleware:
    """Counts every HTTP request by route template, method and status class, and times it.

    The time is until the response's headers are sent: for a live stream, until
    the stream opens, not how long it stays open.
    """

    def __init__(self, app: ASGIApp, metrics: Callable[[], ApiMetrics | None]) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        recorded = False
        method = scope.get("method", "GET") if scope.get("method") in _METHODS else "other"

        def record(status: int) -> None:
            nonlocal recorded
            metrics = self._metrics()
            if recorded or metrics is None:
                return
            recorded = True
            metrics.http_request(route_label(scope), method, status, time.perf_counter() - started)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                record(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            record(500)
            raise


__all__ = ["CONTENT_TYPE", "INGEST_FEEDS", "JOB_STATES", "REJECT_REASONS", "WEBHOOK_OUTCOMES", "ApiMetrics",
           "JobSnapshot", "MetricsMiddleware", "Snapshot", "StateCollector", "outbox_queue", "route_label"]
