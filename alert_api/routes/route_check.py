"""``/v1/route-check``: the hazards a planned route crosses, and a detour on the partner's road graph."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from alert_api import service
from alert_api.deps import IndexDep, ReaderDep
from alert_api.geo import GeometryError
from alert_api.schemas import RouteCheckRequest, RouteCheckResponse

router = APIRouter(prefix="/v1", tags=["route check"])


@router.post("/route-check", response_model=RouteCheckResponse, summary="Check a route against active hazards",
             responses={413: {"description": "Request body too large"},
                        422: {"description": "Not a usable LineString or road graph"}})
async def route_check(request: RouteCheckRequest, index: IndexDep, principal: ReaderDep) -> RouteCheckResponse:
    """POST a GeoJSON LineString (at most 10,000 positions). The answer lists every active hazard
    area the route meets, in the order it meets them, with level, avoid-polygon and distances. With
    ``graph`` (your road network) it also suggests a detour that meets no area at level 4 or above.
    """
    try:
        return await run_in_threadpool(service.route_check, index, request, principal)
    except GeometryError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
