"""``/healthz``: liveness, consumer state and store size."""

from __future__ import annotations

from fastapi import APIRouter

from alert_api import service
from alert_api.deps import ConsumerDep, StoreDep
from alert_api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Health of the API and its consumer")
def healthz(store: StoreDep, consumer: ConsumerDep) -> Health:
    return service.health(store, consumer.status if consumer is not None else None)
