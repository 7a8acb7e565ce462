"""The alert API application: FastAPI app factory and server entry point."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from alert_api.accounts import AccountStore
from alert_api.config import AlertApiSettings, Settings, get_api_settings, get_settings, resolve_admin_key
from alert_api.console import StatusConsumer, build_console, static_dir
from alert_api.consumer import AlertConsumer
from alert_api.errors import validation_error_reply
from alert_api.formats.cifs import Roads
from alert_api.geo import HazardIndexCache
from alert_api.limits import BodyLimitMiddleware, FailureCounter, RateLimiter, StreamSlots
from alert_api.models import Clock, utc_now
from alert_api.routes import admin, alerts, console, feeds, health, messages, officer, partner, route_check, stream
from alert_api.server import build_server
from alert_api.store import SqlAlertStore
from alert_api.webhook_targets import Resolver, system_resolver
from alert_api.webhooks import DeliveryWorker, Outbox, RetryPolicy, Sender

log = logging.getLogger(__name__)

DESCRIPTION = """\
Flood and landslide alerts for river-bureau duty officers and navigation partners.

Every alert has a stable `alert_id` and a history of messages (Alert, Update, Cancel)
that reference each other, decided by suibou's streaming pipeline or by a duty officer.
Formats: JSON, CAP 1.2 XML, GeoJSON hazard areas, Waze CIFS road closures. Delivery:
pull by cursor (with ETags), Server-Sent Events, and signed webhooks (Standard Webhooks).

Authenticate with `Authorization: Bearer <token>`: a partner API key, an officer
session token or the admin key. Duty officers have a console at `/console/`. Exercise (drill) alerts carry `status: "Exercise"`
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

    Returns:
        The application, to serve with an ASGI server or a ``TestClient``.
    """
    settings = settings or get_settings()
    config = api_settings or get_api_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        app.state.store = store or SqlAlertStore(settings.resolved_database_url)
        database = app.state.store.db
        app.state.api_settings = config
        app.state.resolver = resolver
        app.state.admin_key = resolve_admin_key(settings, config)
        app.state.accounts = AccountStore(database, clock)
        app.state.outbox = Outbox(database, clock)
        app.state.roads = Roads.load(config.roads_path)
        app.state.index_cache = HazardIndexCache(
            app.state.store.latest_cursor,
            lambda exercises: app.state.store.active_alerts(include_exercises=exercises))
        app.state.limiter = RateLimiter()
        app.state.login_failures = FailureCounter()
        app.state.stream_slots = StreamSlots(config.sse_max_streams)
        app.state.worker = None
        if start_webhooks:
            policy = RetryPolicy(max_attempts=config.webhook_max_attempts, base_s=config.webhook_backoff_s,
                                 max_delay_s=max(config.webhook_max_backoff_s, config.webhook_backoff_s))
            app.state.worker = DeliveryWorker(
                database, policy, clock, concurrency=config.webhook_concurrency, timeout_s=config.webhook_timeout_s,
                allow_private=config.webhook_allow_insecure, sender=webhook_sender, resolver=resolver)
            app.state.store.subscribe(app.state.worker.wake)
            app.state.worker.start()
        app.state.consumer = None
        if start_consumer:
            app.state.consumer = AlertConsumer(settings, app.state.store, config)
            app.state.consumer.start()
        app.state.console = build_console(settings, config, app.state.roads)
        feed = start_status_feed if start_status_feed is not None else start_consumer and config.console_status_feed
        if feed:
            app.state.console.consumer = StatusConsumer(settings, app.state.console.view, config)
            app.state.console.consumer.start()
        try:
            yield
        finally:
            app.state.closing.set()  # live streams end at their next poll
            await run_in_threadpool(_stop_background, app, config.shutdown_timeout_s)
            if own_store:
                app.state.store.close()

    app = FastAPI(title="suibou alert API", version="1", description=DESCRIPTION, lifespan=lifespan)
    #: Set when the server starts shutting down: live streams end, so that a stop never waits for them.
    app.state.closing = threading.Event()
    for router in (alerts.router, messages.router, feeds.router, stream.router, route_check.router,
                   partner.router, officer.router, admin.router, console.router, console.page, health.router):
        app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=static_dir()), name="console-static")
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes, body_timeout_s=config.body_timeout_s)
    app.add_exception_handler(RequestValidationError, validation_error_reply)
    return app


def _stop_background(app: FastAPI, timeout_s: float) -> None:
    """Stops the consumers and the delivery worker together, waiting at most ``timeout_s`` in all."""
    loops = [loop for loop in (app.state.console.consumer, app.state.consumer) if loop is not None]
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


def serve(settings: Settings | None = None, api_settings: AlertApiSettings | None = None) -> None:
    """Runs the alert API on ``settings.api_host:settings.api_port`` until SIGTERM or SIGINT (see
    :mod:`alert_api.server` for the shutdown and header time limits)."""
    settings = settings or get_settings()
    config = api_settings or get_api_settings()
    app = create_app(settings, api_settings=config)
    build_server(app, settings.api_host, settings.api_port, config).run()
