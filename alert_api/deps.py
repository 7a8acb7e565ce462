"""FastAPI dependencies of the alert API, as ``Annotated`` aliases.

The store and the consumer live on ``app.state``, set up by the application's
lifespan; tests swap them through ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from alert_api.consumer import AlertConsumer
from alert_api.store import AlertStore


def get_store(request: Request) -> AlertStore:
    store: AlertStore = request.app.state.store
    return store


def get_consumer(request: Request) -> AlertConsumer | None:
    consumer: AlertConsumer | None = getattr(request.app.state, "consumer", None)
    return consumer


StoreDep = Annotated[AlertStore, Depends(get_store)]
ConsumerDep = Annotated[AlertConsumer | None, Depends(get_consumer)]
