"""``POST /v1/ingest/readings``: field gateways' readings, produced to the observation topics."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from alert_api.deps import ApiConfigDep, GatewayDep, IngestDep
from alert_api.ingest import BatchError, IngestUnavailable, parse_batch, results_json
from alert_api.schemas import IngestItemResult, IngestResponse

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])


@router.post("/readings", response_model=IngestResponse, summary="Send a batch of readings (gateway key)",
             responses={413: {"description": "Too large a batch"}, 503: {"description": "Kafka did not acknowledge"}},
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "required": ["readings"], "properties": {"readings": {
                     "type": "array", "items": {"type": "object"},
                     "description": "rain_reading/1, level_reading/1, camera_frame/1 or drone_observation/1 "
                                    "objects, as in docs/contracts.md"}}}}}}})
async def ingest_readings(request: Request, gateway: GatewayDep, ingest: IngestDep,
                          config: ApiConfigDep) -> IngestResponse:
    """Each reading gets its own result: accepted (Kafka acknowledged it), duplicate (accepted before, not sent
    again) or rejected with the reason. 503 when Kafka cannot be reached: send the batch again later."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > config.ingest_max_body_bytes:
        raise HTTPException(status_code=413, detail=f"the batch is {declared} bytes; at most "
                                                    f"{config.ingest_max_body_bytes} are accepted")
    body = await request.body()
    try:
        readings = parse_batch(body, max_readings=config.ingest_max_readings, max_bytes=config.ingest_max_body_bytes)
    except BatchError as error:
        raise HTTPException(status_code=error.status, detail=str(error)) from None
    try:
        result = await run_in_threadpool(ingest.ingest, gateway, readings)
    except IngestUnavailable as error:
        raise HTTPException(status_code=503, detail=str(error), headers={"Retry-After": "5"}) from None
    return IngestResponse(accepted=result.count("accepted"), duplicate=result.count("duplicate"),
                          rejected=result.count("rejected"),
                          results=[IngestItemResult(**r) for r in results_json(result.results)])
