"""The alert API application: FastAPI app factory and server entry point."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from alert_api.accounts import AccountStore
from alert_api.clientaddr import parse_networks
from alert_api.config import AlertApiSettings, Settings, get_api_settings, get_settings, resolve_admin_key
from alert_api.console import StatusConsumer, build_console, static_dir
from alert_api.console.consumer import TopicSource
from alert_api.consumer import AlertConsumer
from alert_api.errors import CatchAllMiddleware, validation_error_reply
from alert_api.formats.cifs import Roads
from alert_api.geo import HazardIndexCache
from alert_api.ingest import IngestService, LazyProducer, Ledger, Producer, kafka_producer_factory
from alert_api.jobs import JobBoard, JobStatusConsumer, describe_job
from alert_api.limits import BodyLimitMiddleware, RateLimiter, StreamSlots
from alert_api.login_guard import HashGate, LoginGuard, LoginLimits, LoginThrottleMiddleware
from alert_api.metrics import ApiMetrics, MetricsMiddleware, Snapshot, outbox_queue
from alert_api.models import Clock, utc_now
from alert_api.routes import (
    admin,
    alerts,
    console,
    feeds,
    health,
    ingest,
    messages,
    metrics,
    officer,
    partner,
    route_check,
    stream,
)
from alert_api.secretbox import SecretBox, load_or_create_key
from alert_api.server import build_server
from alert_api.store import SqlAlertStore
from alert_api.strictjson import StrictJsonMiddleware
from alert_api.webhook_targets import Resolver, system_resolver
from alert_api.webhooks import DeliveryWorker, Outbox, RetryPolicy, Sender
from alert_api.workpool import WorkPool

log = logging.getLogger(__name__)

DESCRIPTION = """\
Flood and landslide alerts for river-bureau duty officers and navigation partners.

Every alert has a stable `alert_id` and a history of messages (Alert, Update, Cancel)
that reference each other, decided by suibou's streaming pipeline or by a duty officer.
Formats: JSON, CAP 1.2 XML, GeoJSON hazard areas, Waze CIFS road closures. Delivery:
pull by cursor (with ETags), Server-Sent Events, and signed webhooks (Standard Webhooks).

Authenticate with `Authorization: Bearer <token>`: a partner API key, an officer
session token or the admin key. Field gateways post readings to `/v1/ingest/readings`
with a gateway key. `/healthz` is public (liveness and the live job's state only);
`/metrics` serves Prometheus metrics to the admin and to keys with `metrics:read`. Duty officers have a console
at `/console/`. Exercise (drill) alerts carry `status: "Exercise"`
and `EXERCISE/訓練` in every text, and reach only partners with the `exercises` scope.
"""


def create_app(
    settings: Settings | None = None,
    store: SqlAlertStore | None = None,
    start_consumer: bool = True,
    *,
    api_settings: AlertApiSettings | None = None,
    start_webhooks: bool = True,
    webhook_sender: Sender | None = None,
    clock: Clock = utc_now,
    start_status_feed: bool | None = None,
    start_job_feed: bool | None = None,
    ingest_producer_factory: Callable[[], Producer] | None = None,
    job_consumer_factory: Callable[[], TopicSource] | None = None,
    resolver: Resolver = system_resolver,
) -> FastAPI:
    """Builds the alert API.

    Nothing is opened here: the lifespan opens the store (unless one is given),
    starts the alert consumer and the webhook delivery worker, and stops them on
    shutdown.

    Args:
        settings: Process settings; defaults to the environment's.
        store: Store to serve from; defaults to a :class:`SqlAlertStore` on
            ``settings.resolved_database_url``, owned and closed by the app.
        start_consumer: Run the Kafka alert consumer in the background.
        api_settings: Limits, formats and delivery; defaults to the environment's.
        start_webhooks: Run the webhook delivery worker in the background.
        webhook_sender: Replaces the HTTP client of the delivery worker (tests).
        clock: Source of times for accounts and deliveries.
        start_status_feed: Run the console's consumer of the status, fault, score
            and camera topics; by default when ``start_consumer`` and
            ``console_status_feed`` are both set.
        start_job_feed: Follow the live job's heartbeats; by default when
            ``start_consumer`` and ``job_status_feed`` are both set.
        ingest_producer_factory: Makes the Kafka producer of the ingest route
            (tests pass a fake); by default a kafka-python producer, made on the
            first batch.
        job_consumer_factory: Makes the Kafka consumer of the heartbeats (tests pass a fake).

    Returns:
        The application, to serve with an ASGI server or a ``TestClient``.
    """
    settings = settings or get_settings()
    config = api_settings or get_api_settings()
    holder: dict[str, FastAPI] = {}
    api_metrics = ApiMetrics(snapshot=lambda: _snapshot(holder["app"]) if "app" in holder else None)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        app.state.store = store or SqlAlertStore(settings.resolved_database_url)
        database = app.state.store.db
        app.state.clock = clock
        app.state.api_settings = config
        app.state.resolver = resolver
        app.state.admin_key = resolve_admin_key(settings, config)
        sealed = database.use_secret_box(SecretBox(load_or_create_key(settings.home / "api" / "secrets.key")))
        if sealed:
            log.info("sealed %d webhook secrets stored in clear", sealed)
        app.state.accounts = AccountStore(database, clock)
        app.state.outbox = Outbox(database, clock)
        app.state.roads = Roads.load(config.roads_path)
        app.state.index_cache = HazardIndexCache(
            app.state.store.latest_cursor,
            lambda exercises: app.state.store.active_alerts(include_exercises=exercises))
        app.state.limiter = RateLimiter()
        app.state.login_guard = LoginGuard(LoginLimits(
            per_client_per_minute=config.login_attempts_per_client_per_minute,
            pair_failures=config.login_failures_per_5min, user_failures=config.login_user_failures_per_5min,
            user_pacing_s=config.login_user_pacing_s, global_per_minute=config.login_attempts_per_minute,
            hash_concurrency=config.login_hash_concurrency, hash_queue=config.login_hash_queue))
        app.state.hash_gate = HashGate(config.login_hash_concurrency, config.login_hash_queue)
        app.state.trusted_proxies = parse_networks(config.trusted_proxies)
        app.state.route_pool = WorkPool(config.route_check_workers, config.route_check_queue,
                                        config.route_check_per_partner)
        app.state.stream_slots = StreamSlots(config.sse_max_streams)
        app.state.worker = None
        if start_webhooks:
            policy = RetryPolicy(max_attempts=config.webhook_max_attempts, base_s=config.webhook_backoff_s,
                                 max_delay_s=max(config.webhook_max_backoff_s, config.webhook_backoff_s))
            app.state.worker = DeliveryWorker(
                database, policy, clock, concurrency=config.webhook_concurrency, timeout_s=config.webhook_timeout_s,
                allow_private=config.webhook_allow_insecure, sender=webhook_sender, metrics=api_metrics,
                resolver=resolver)
            app.state.store.subscribe(app.state.worker.wake)
            app.state.worker.start()
        app.state.consumer = None
        if start_consumer:
            app.state.consumer = AlertConsumer(settings, app.state.store, config, metrics=api_metrics)
            app.state.consumer.start()
        app.state.console = build_console(settings, config, app.state.roads)
        feed = start_status_feed if start_status_feed is not None else start_consumer and config.console_status_feed
        if feed:
            app.state.console.consumer = StatusConsumer(settings, app.state.console.view, config)
            app.state.console.consumer.start()
        app.state.jobs = JobBoard()
        app.state.job_consumer = None
        if start_job_feed if start_job_feed is not None else start_consumer and config.job_status_feed:
            app.state.job_consumer = JobStatusConsumer(settings, app.state.jobs, config,
                                                       consumer_factory=job_consumer_factory)
            app.state.job_consumer.start()
        producer_factory = ingest_producer_factory or kafka_producer_factory(
            settings.bootstrap_servers, timeout_s=config.ingest_timeout_s,
            connect_timeout_ms=config.connect_timeout_ms)
        app.state.ingest = IngestService(
            Ledger(database, retention=dt.timedelta(hours=config.ingest_dedup_hours),
                   stale_after=dt.timedelta(seconds=3 * config.ingest_timeout_s + 30)),
            LazyProducer(producer_factory), settings.topics, timeout_s=config.ingest_timeout_s,
            frame_roots=config.ingest_frame_roots or (), metrics=api_metrics, clock=clock)
        app.state.started = True
        try:
            yield
        finally:
            app.state.started = False
            app.state.closing.set()  # live streams end at their next poll
            await run_in_threadpool(app.state.ingest.close)
            await run_in_threadpool(_stop_background, app, config.shutdown_timeout_s)
            app.state.hash_gate.close()
            app.state.route_pool.close()
            if own_store:
                app.state.store.close()

    app = FastAPI(title="suibou alert API", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    _serve_docs(app)
    holder["app"] = app
    app.state.metrics = api_metrics
    app.state.started = False
    #: Set when the server starts shutting down: live streams end, so that a stop never waits for them.
    app.state.closing = threading.Event()
    for router in (alerts.router, messages.router, feeds.router, stream.router, route_check.router,
                   partner.router, officer.router, admin.router, console.router, console.page, health.router,
                   ingest.router, metrics.router):
        app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=static_dir()), name="console-static")
    app.add_middleware(StrictJsonMiddleware)  # inside the body limit: the bodies it reads are bounded
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes, body_timeout_s=config.body_timeout_s)
    app.add_middleware(LoginThrottleMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=lambda: api_metrics)
    app.add_middleware(CatchAllMiddleware)  # outermost of ours: whatever slips through is a logged 500
    app.add_exception_handler(RequestValidationError, validation_error_reply)
    return app


def _snapshot(app: FastAPI) -> Snapshot | None:
    """The states the metrics read at scrape time; None while the app is not running."""
    state = app.state
    if not getattr(state, "started", False):
        return None
    consumer = state.consumer.status if state.consumer is not None else None
    now = state.clock()
    depth, age = outbox_queue(state.store.db, now)
    config = state.api_settings
    job = describe_job(state.jobs.latest(), now, not_seen_after_s=config.job_not_seen_s,
                       behind_after_s=config.job_behind_s)
    return Snapshot(consumer_state=consumer.state.value if consumer else "disabled",
                    consumer_lag=consumer.lag if consumer else None, queue_depth=depth, queue_age_s=age,
                    job=job.snapshot())




def _stop_background(app: FastAPI, timeout_s: float) -> None:
    """Stops the consumers and the delivery worker together, waiting at most ``timeout_s`` in all."""
    loops = [loop for loop in (app.state.job_consumer, app.state.console.consumer, app.state.consumer)
             if loop is not None]
    for loop in loops:
        loop.request_stop()
    worker = app.state.worker
    if worker is not None:
        worker.request_stop(grace_s=timeout_s)
    deadline = time.monotonic() + timeout_s
    for loop in loops:
        loop.stop(timeout=max(0.1, deadline - time.monotonic()))
    if worker is not None:
        worker.stop(timeout=max(0.1, deadline - time.monotonic()))


#: Swagger UI's files, served at /docs/static (the swagger-ui-bundle package ships them).
SWAGGER_STATIC = "/docs/static"


def _serve_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the API's own files, so the page works offline and loads nothing from elsewhere."""
    app.mount(SWAGGER_STATIC, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - docs",
                                   swagger_js_url=f"{SWAGGER_STATIC}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER_STATIC}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER_STATIC}/favicon-32x32.png")


def serve(settings: Settings | None = None, api_settings: AlertApiSettings | None = None) -> None:
    """Runs the alert API on ``settings.api_host:settings.api_port`` until SIGTERM or SIGINT (see
    :mod:`alert_api.server` for the shutdown and header time limits)."""
    settings = settings or get_settings()
    config = api_settings or get_api_settings()
    app = create_app(settings, api_settings=config)
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from any loopback peer; the API
    # reads it itself, from the proxies in SUIBOU_ALERT_API_TRUSTED_PROXIES only (alert_api.clientaddr).
    build_server(app, settings.api_host, settings.api_port, config, proxy_headers=False).run()
