"""Partner feeds of the active alerts: GeoJSON hazard areas and Waze CIFS road closures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from alert_api import service
from alert_api.deps import ApiConfigDep, ReaderDep, RoadsDep, StoreDep
from alert_api.formats import geojson
from alert_api.models import utc_now
from alert_api.routes._http import etag_response
from alert_api.schemas import HazardAreaFilters

router = APIRouter(prefix="/v1", tags=["feeds"])


@router.get("/hazard-areas", summary="Active hazard areas as a GeoJSON FeatureCollection",
            response_class=Response,
            responses={200: {"content": {geojson.MEDIA_TYPE: {}},
                             "description": "FeatureCollection, one Feature per active alert"},
                       304: {"description": "Not modified (If-None-Match)"},
                       403: {"description": "status=Exercise without the exercises scope"}})
def hazard_areas(request: Request, store: StoreDep, principal: ReaderDep, config: ApiConfigDep,
                 filters: Annotated[HazardAreaFilters, Query()]) -> Response:
    """Active alerts' areas, shaped as the US NWS alerts API serves them (``application/geo+json``)."""
    try:
        document = service.hazard_areas(store, filters, principal, config)
    except service.NotVisible as error:
        raise HTTPException(status_code=403, detail=str(error)) from None
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    return etag_response(request, service.json_bytes(document), geojson.MEDIA_TYPE)


@router.get("/cifs", summary="Road closures and hazards in the Waze CIFS JSON shape",
            response_class=Response,
            responses={200: {"content": {"application/json": {}}, "description": '{"incidents": [...]}'},
                       304: {"description": "Not modified (If-None-Match)"}})
def cifs_feed(request: Request, store: StoreDep, principal: ReaderDep, roads: RoadsDep) -> Response:
    """Roads that cross active areas: ROAD_CLOSED (level 4+) or HAZARD (below), one incident per road part."""
    document = service.closures(store, roads, principal, utc_now())
    return etag_response(request, service.json_bytes(document), "application/json")
