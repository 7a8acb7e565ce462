"""``/v1/route-check``: the hazards a planned route crosses, and a detour on the partner's road graph.

Each check has a budget (``alert_api.geo.Budget``: input bounds, work bound, deadline) and runs on the
route-check pool (``alert_api.workpool``), at most a few per caller at once, cancelled if the client leaves.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from alert_api import service
from alert_api.deps import ApiConfigDep, IndexDep, ReaderDep
from alert_api.geo import BudgetExceeded, GeometryError
from alert_api.schemas import RouteCheckRequest, RouteCheckResponse
from alert_api.workpool import Busy, ClientGone, WorkPool

router = APIRouter(prefix="/v1", tags=["route check"])

#: Answered (to nobody) when the client went away: nginx's "client closed request".
CLIENT_CLOSED = 499


@router.post("/route-check", response_model=RouteCheckResponse, summary="Check a route against active hazards",
             responses={413: {"description": "Request body too large"},
                        422: {"description": "Not a usable LineString or road graph, outside the service area, "
                                             "or more work than one check may do"},
                        429: {"description": "Too many route checks at once for this caller, or in all"},
                        503: {"description": "The check took longer than its deadline"}})
async def route_check(body: RouteCheckRequest, request: Request, index: IndexDep, principal: ReaderDep,
                      config: ApiConfigDep) -> RouteCheckResponse | Response:
    """POST a GeoJSON LineString (at most 10,000 positions, 2,000 with a buffer). The answer lists every active
    hazard area the route meets, in the order it meets them, with level, avoid-polygon and distances. With
    ``graph`` (your road network) it also suggests a detour that meets no area at level 4 or above.
    """
    pool: WorkPool = request.app.state.route_pool
    budget = service.route_budget(config)
    try:
        return await pool.run(f"{principal.kind}:{principal.name}", budget,
                              lambda: service.route_check(index, body, principal, budget), request.is_disconnected)
    except GeometryError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    except Busy as error:
        raise HTTPException(status_code=429, detail=str(error), headers={"Retry-After": str(error.retry_after)}) \
            from None
    except BudgetExceeded as error:
        raise HTTPException(status_code=503, detail=f"{error}; send a shorter route, a smaller buffer or graph",
                            headers={"Retry-After": "5"}) from None
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)
