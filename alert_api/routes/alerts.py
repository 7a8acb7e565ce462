"""``/v1/alerts``: current alerts, their histories, and each alert as CAP and as GeoJSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from alert_api import service
from alert_api.deps import ApiConfigDep, ReaderDep, StoreDep
from alert_api.formats import cap, geojson
from alert_api.routes._http import etag_response
from alert_api.schemas import ID_PATTERN, AlertDetail, AlertFilters, AlertList

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

AlertId = Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No alert with this id (or not visible to this key)"}}


@router.get("", response_model=AlertList, summary="List current alerts",
            responses={304: {"description": "Not modified (If-None-Match)"},
                       403: {"description": "exercise=true without the exercises scope"}})
def list_alerts(request: Request, store: StoreDep, principal: ReaderDep,
                filters: Annotated[AlertFilters, Query()]) -> Response:
    """Current state of each alert, latest change first; cancelled alerts only on request.

    Supports ``If-None-Match`` with the ``ETag`` of an earlier answer (304 when unchanged).
    """
    try:
        page = service.list_alerts(store, filters, principal)
    except service.NotVisible as error:
        raise HTTPException(status_code=403, detail=str(error)) from None
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    return etag_response(request, page.model_dump_json().encode(), "application/json")


@router.get("/{alert_id}", response_model=AlertDetail, summary="Get one alert with its history",
            responses=NOT_FOUND)
def get_alert(store: StoreDep, principal: ReaderDep, alert_id: AlertId) -> AlertDetail:
    """An alert's current state and every message it has had, in sequence order."""
    alert = service.get_alert(store, alert_id, principal)
    if alert is None:
        raise HTTPException(status_code=404, detail=f"no alert {alert_id!r}")
    return alert


@router.get("/{alert_id}/cap", summary="The alert's latest message as CAP 1.2 XML",
            response_class=Response,
            responses={200: {"content": {cap.MEDIA_TYPE: {}}, "description": "CAP 1.2 alert"}, **NOT_FOUND})
def get_alert_cap(request: Request, store: StoreDep, principal: ReaderDep, config: ApiConfigDep,
                  alert_id: AlertId) -> Response:
    """OASIS CAP 1.2, with ``info`` blocks in Japanese and English and the area's polygon."""
    alert = service.find_alert(store, alert_id, principal)
    if alert is None:
        raise HTTPException(status_code=404, detail=f"no alert {alert_id!r}")
    return etag_response(request, service.cap_document(store, alert.latest, alert.onset, config), cap.MEDIA_TYPE)


@router.get("/{alert_id}/geojson", summary="The alert as a GeoJSON Feature", response_class=Response,
            responses={200: {"content": {geojson.MEDIA_TYPE: {}}, "description": "GeoJSON Feature"}, **NOT_FOUND})
def get_alert_geojson(request: Request, store: StoreDep, principal: ReaderDep, config: ApiConfigDep,
                      alert_id: AlertId) -> Response:
    """The alert's area and latest message, with the properties of ``GET /v1/hazard-areas``."""
    alert = service.find_alert(store, alert_id, principal)
    if alert is None:
        raise HTTPException(status_code=404, detail=f"no alert {alert_id!r}")
    feature = service.alert_feature(store, alert, config)
    return etag_response(request, service.json_bytes(feature), geojson.MEDIA_TYPE)
