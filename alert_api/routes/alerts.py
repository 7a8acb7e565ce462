"""``/v1/alerts``: current alerts and their message histories."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from alert_api import service
from alert_api.deps import StoreDep
from alert_api.schemas import ID_PATTERN, AlertDetail, AlertFilters, AlertList

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


@router.get("", response_model=AlertList, summary="List current alerts")
def list_alerts(store: StoreDep, filters: Annotated[AlertFilters, Query()]) -> AlertList:
    """Current state of each alert, latest change first; cancelled alerts only on request."""
    return service.list_alerts(store, filters)


@router.get(
    "/{alert_id}",
    response_model=AlertDetail,
    summary="Get one alert with its history",
    responses={404: {"description": "No alert with this id"}},
)
def get_alert(
    store: StoreDep, alert_id: Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]
) -> AlertDetail:
    """An alert's current state and every message it has had, in sequence order."""
    alert = service.get_alert(store, alert_id)
    if alert is None:
        raise HTTPException(status_code=404, detail=f"no alert {alert_id!r}")
    return alert
