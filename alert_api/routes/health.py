"""Health: ``/healthz`` (public liveness and the live job's state) and ``/v1/health`` (details, for staff).

``/healthz`` is safe to expose without authentication: it says that the API
answers and what the live fusion job is doing, nothing about brokers, errors,
the store or exercises. The details (consumers with their errors, the webhook
outbox, the live job's heartbeat, store counts including exercises) are at
``/v1/health`` for duty officers and the admin.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from alert_api import service
from alert_api.console.consumer import FeedState, FeedStatus
from alert_api.deps import ConsumerDep, LiveJobDep, OutboxDep, StaffDep, StoreDep, WorkerDep
from alert_api.jobs import JobStatusConsumer
from alert_api.schemas import Health, PublicHealth

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=PublicHealth, summary="Liveness and the live job's state (no authentication)")
def healthz(job: LiveJobDep) -> PublicHealth:
    return PublicHealth(live_job=job.summary)


@router.get("/v1/health", response_model=Health, summary="Health in detail: consumers, webhooks, live job, store")
def health(request: Request, staff: StaffDep, store: StoreDep, consumer: ConsumerDep, outbox: OutboxDep,
           worker: WorkerDep, job: LiveJobDep) -> Health:
    feed: JobStatusConsumer | None = request.app.state.job_consumer
    return service.health(store, consumer.status if consumer is not None else None, outbox.counts(),
                          worker is not None and worker.running, job,
                          feed.status if feed is not None else FeedStatus(FeedState.DISABLED))
