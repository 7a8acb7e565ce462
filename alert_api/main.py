"""The alert API application: FastAPI app factory and server entry point."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from alert_api.config import AlertApiSettings, Settings, get_api_settings, get_settings
from alert_api.consumer import AlertConsumer
from alert_api.routes import alerts, health
from alert_api.store import AlertStore, SqlAlertStore

DESCRIPTION = """\
Flood and landslide alerts decided by suibou's streaming pipeline, for river-bureau
duty officers and navigation partners.

Every alert has a stable `alert_id` and a history of messages (Alert, Update,
Cancel). Exercise (drill) alerts carry `status: "Exercise"`; filter them with
`exercise=false`.
"""


def create_app(
    settings: Settings | None = None,
    store: AlertStore | None = None,
    start_consumer: bool = True,
    *,
    api_settings: AlertApiSettings | None = None,
) -> FastAPI:
    """Builds the alert API.

    Nothing is opened here: the lifespan opens the store (unless one is given)
    and starts the alert consumer, and closes both on shutdown.

    Args:
        settings: Process settings; defaults to the environment's.
        store: Store to serve from; defaults to a :class:`SqlAlertStore` on
            ``settings.resolved_database_url``, owned and closed by the app.
        start_consumer: Run the Kafka alert consumer in the background.
        api_settings: Consumer group and timing; defaults to the environment's.

    Returns:
        The application, to serve with an ASGI server or a ``TestClient``.
    """
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = store or SqlAlertStore(settings.resolved_database_url)
        app.state.consumer = None
        if start_consumer:
            app.state.consumer = AlertConsumer(settings, app.state.store, api_settings or get_api_settings())
            app.state.consumer.start()
        try:
            yield
        finally:
            if app.state.consumer is not None:
                await run_in_threadpool(app.state.consumer.stop)
            if store is None:
                app.state.store.close()

    app = FastAPI(title="suibou alert API", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.include_router(alerts.router)
    app.include_router(health.router)
    return app


def serve(settings: Settings | None = None) -> None:
    """Runs the alert API with uvicorn on ``settings.api_host:settings.api_port`` until interrupted."""
    settings = settings or get_settings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port)
