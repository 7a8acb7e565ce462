"""``GET /metrics``: the API's Prometheus metrics, for the admin key or a key with the ``metrics:read`` scope."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from alert_api.deps import MetricsDep, MetricsReaderDep
from alert_api.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics (text format)",
            responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(reader: MetricsReaderDep, registry: MetricsDep) -> Response:
    """Counters, gauges and histograms of the alert API; see docs/api.md for the list."""
    body = await run_in_threadpool(registry.render)  # the scrape reads the webhook outbox
    return Response(content=body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
