"""``/healthz``: liveness, consumer state, webhook outbox and store size (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter

from alert_api import service
from alert_api.deps import ConsumerDep, OutboxDep, StoreDep, WorkerDep
from alert_api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Health of the API, its consumer and webhook delivery")
def healthz(store: StoreDep, consumer: ConsumerDep, outbox: OutboxDep, worker: WorkerDep) -> Health:
    return service.health(store, consumer.status if consumer is not None else None, outbox.counts(),
                          worker is not None and worker.running)
