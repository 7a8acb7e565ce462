"""``/v1/messages``: the message log, pulled by cursor, and each message as CAP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from alert_api import service
from alert_api.deps import ApiConfigDep, ReaderDep, StoreDep
from alert_api.formats import cap
from alert_api.models import DEFAULT_LIMIT, MAX_LIMIT
from alert_api.routes._http import etag_response
from alert_api.schemas import BBOX_PATTERN, CURSOR_PATTERN, ID_PATTERN, MessagePage, MessagePublic
from alert_api.store import parse_cursor
from alert_api.views import message_view

router = APIRouter(prefix="/v1/messages", tags=["messages"])

EventId = Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]


@router.get("", response_model=MessagePage, summary="Pull messages after a cursor",
            responses={304: {"description": "Not modified (If-None-Match)"}})
async def list_messages(
    request: Request,
    store: StoreDep,
    principal: ReaderDep,
    after: Annotated[str, Query(pattern=CURSOR_PATTERN,
                                description="next_cursor of the previous page; 0 for all")] = "0",
    bbox: Annotated[str | None, Query(pattern=BBOX_PATTERN, max_length=100,
                                      description="min_lon,min_lat,max_lon,max_lat")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    """Every message published after ``after``, oldest first: Alerts, Updates and Cancels,
    pipeline and duty-officer messages alike. Poll with the ``next_cursor`` of each page; an
    unchanged page answers ``If-None-Match`` with 304.
    """
    try:
        box = service.parse_bbox(bbox) if bbox else None
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    messages, following = await run_in_threadpool(
        store.messages_after, parse_cursor(after), include_exercises=principal.sees_exercises, bbox=box, limit=limit)
    page = MessagePage(count=len(messages), data=[MessagePublic(**message_view(m)) for m in messages],
                       next_cursor=str(following))
    return etag_response(request, page.model_dump_json().encode(), "application/json")


@router.get("/{event_id}", response_model=MessagePublic, summary="One message",
            responses={404: {"description": "No message with this id (or not visible to this key)"}})
def get_message(store: StoreDep, principal: ReaderDep, event_id: EventId) -> MessagePublic:
    message = service.find_message(store, event_id, principal)
    if message is None:
        raise HTTPException(status_code=404, detail=f"no message {event_id!r}")
    return MessagePublic(**message_view(message))


@router.get("/{event_id}/cap", summary="One message as CAP 1.2 XML", response_class=Response,
            responses={200: {"content": {cap.MEDIA_TYPE: {}}, "description": "CAP 1.2 alert"},
                       404: {"description": "No message with this id (or not visible to this key)"}})
def get_message_cap(request: Request, store: StoreDep, principal: ReaderDep, config: ApiConfigDep,
                    event_id: EventId) -> Response:
    """Any message of an alert's history as CAP; ``references`` point at the messages it changes."""
    message = service.find_message(store, event_id, principal)
    if message is None:
        raise HTTPException(status_code=404, detail=f"no message {event_id!r}")
    onset = service.alert_onset(store, message.event.alert_id) or message.event.event_time
    return etag_response(request, service.cap_document(store, message, onset, config), cap.MEDIA_TYPE)
