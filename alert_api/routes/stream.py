"""``/v1/stream``: published messages as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from alert_api import service
from alert_api.deps import ApiConfigDep, ReaderDep, StoreDep
from alert_api.limits import StreamSlots
from alert_api.models import BBox
from alert_api.schemas import BBOX_PATTERN, CURSOR_PATTERN
from alert_api.store import AlertStore, parse_cursor
from alert_api.views import message_view

router = APIRouter(prefix="/v1", tags=["stream"])


@router.get(
    "/stream",
    summary="Live stream of messages (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "event: alert.issued|alert.updated|alert.cancelled; id: cursor; "
                                    "data: the message (as in GET /v1/messages)"},
               429: {"description": "Too many open streams for this key"}},
)
async def stream(
    request: Request,
    store: StoreDep,
    principal: ReaderDep,
    config: ApiConfigDep,
    after: Annotated[str | None, Query(pattern=CURSOR_PATTERN,
                                       description="Start after this cursor (default: only new messages)")] = None,
    bbox: Annotated[str | None, Query(pattern=BBOX_PATTERN, max_length=100)] = None,
    last_event_id: Annotated[str | None, Header(pattern=CURSOR_PATTERN)] = None,
) -> StreamingResponse:
    """Each published message as one event, ``id`` = its cursor. A reconnecting client sends
    ``Last-Event-ID`` (browsers do so by themselves) and misses nothing."""
    try:
        box = service.parse_bbox(bbox) if bbox else None
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    start_text = last_event_id or after
    start = parse_cursor(start_text) if start_text else await run_in_threadpool(store.latest_cursor)
    slots: StreamSlots = request.app.state.stream_slots
    if not slots.acquire(principal.name):
        raise HTTPException(status_code=429, detail=f"at most {config.sse_max_streams} open streams per key")
    return StreamingResponse(
        _events(request, store, start, principal.sees_exercises, box, config.sse_poll_s, config.sse_heartbeat_s,
                lambda: slots.release(principal.name)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, store: AlertStore, cursor: int, exercises: bool, bbox: BBox | None,
                  poll_s: float, heartbeat_s: float, release: object) -> AsyncIterator[str]:
    last_sent = time.monotonic()
    closing: threading.Event = request.app.state.closing  # the server is stopping: end the stream, clients resume
    try:
        yield "retry: 2000\n\n"
        while not closing.is_set() and not await request.is_disconnected():
            messages, cursor = await run_in_threadpool(
                store.messages_after, cursor, include_exercises=exercises, bbox=bbox, limit=200)
            for message in messages:
                view = message_view(message)
                data = json.dumps(view, ensure_ascii=False, separators=(",", ":"))
                yield f"id: {message.cursor}\nevent: {view['type']}\ndata: {data}\n\n"
                last_sent = time.monotonic()
            if messages:
                continue
            if time.monotonic() - last_sent >= heartbeat_s:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(poll_s)
    finally:
        if callable(release):
            release()
