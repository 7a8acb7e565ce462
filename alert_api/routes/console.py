"""The duty officer console: the page at ``/console/`` and its data under ``/v1/console``.

The page itself is public (it holds no data); every ``/v1/console`` route needs
an officer's session token or the admin key, like the officers' other routes.
Alerts, their histories and the officer actions are the API's own routes
(``/v1/alerts``, ``/v1/stream``, ``/v1/officer/...``); these routes add the map,
the station view and the camera stills.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from alert_api import service
from alert_api.console import present, static_dir
from alert_api.deps import ConsoleDep, LiveJobDep, StaffDep, StoreDep
from alert_api.routes._http import etag_response
from alert_api.schemas import ID_PATTERN

router = APIRouter(prefix="/v1/console", tags=["duty officer console"])
page = APIRouter(include_in_schema=False)

Id = Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]
Stream = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=128,
                                     description="live, or a drill id; default: the most recently updated stream")]
JSON: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}}},
                                         304: {"description": "Not modified (If-None-Match)"}}

#: The page loads nothing from anywhere but the API itself.
PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
                                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@page.get("/console")
def console_redirect() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@page.get("/console/")
def console_page() -> FileResponse:
    """The console's single page."""
    return FileResponse(static_dir() / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/map", response_class=Response, responses=JSON, summary="Gauges, cameras, reaches and zones to draw")
def console_map(request: Request, console: ConsoleDep, principal: StaffDep) -> Response:
    """Every gauge (with thresholds), camera, river reach (line and corridor) and landslide zone (outline and
    critical line) of the station catalogues, and roads for orientation, in WGS 84 longitude/latitude."""
    return etag_response(request, service.json_bytes(console.map_document), "application/json")


@router.get("/state", response_class=Response, responses=JSON, summary="The current picture of a stream")
def console_state(request: Request, store: StoreDep, console: ConsoleDep, principal: StaffDep, job: LiveJobDep,
                  stream: Stream = None) -> Response:
    """Each station's latest status, fault and colour, each camera's latest still and estimate, each area's
    alert level and latest score, the active faults, the stream's alerts (newest change first), and the live
    fusion job's state (``live_job``)."""
    document = service.console_state(store, console, stream)
    document["live_job"] = service.console_job(job)
    return etag_response(request, service.json_bytes(document), "application/json")


@router.get("/stations/{station_id}", response_class=Response,
            responses={**JSON, 404: {"description": "Neither on the map nor in the stream"}},
            summary="A gauge's history: hydrograph, or rainfall and snake line")
def console_station(request: Request, console: ConsoleDep, principal: StaffDep, station_id: Id,
                    stream: Stream = None) -> Response:
    """A water-level gauge: its levels, thresholds, the rise carried forward and the flood model's
    probabilities for its reach. A rain gauge: its totals, soil water index and critical lines."""
    state = console.view.state
    doc = present.station_document(console.stations, state, present.choose_stream(state, stream), station_id,
                                   console.view.limits)
    if doc is None:
        raise HTTPException(status_code=404, detail=f"no station {station_id!r}")
    return etag_response(request, service.json_bytes(doc), "application/json")


@router.get("/cameras/{camera_id}/frames/{event_id}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}}},
                       404: {"description": "Not a recent still of this camera, or not servable"}},
            summary="A camera still the API has seen")
def console_frame(console: ConsoleDep, principal: StaffDep, camera_id: Id, event_id: Id,
                  stream: Stream = None) -> Response:
    """Only stills named by a recent ``camera_frame`` event, read from the folders stills are served from."""
    state = console.view.state
    try:
        frame = present.find_frame(state, present.choose_stream(state, stream), camera_id, event_id)
        path, media_type = present.frame_path(frame, console.frame_roots)
        with open(path, "rb") as handle:
            content = handle.read(present.MAX_FRAME_BYTES + 1)
    except present.FrameError as error:
        raise HTTPException(status_code=error.status, detail=str(error)) from None
    except OSError:
        raise HTTPException(status_code=404, detail="the still cannot be read") from None
    if len(content) > present.MAX_FRAME_BYTES:
        raise HTTPException(status_code=404, detail="the still is larger than a camera still can be")
    return Response(content, media_type=media_type,
                    headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})
