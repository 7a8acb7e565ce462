"""Error replies that stay small, whatever the request held.

FastAPI's own reply to a request that fails validation lists every error with
the rejected ``input`` and the rule's ``ctx`` in full, so a 2.4 MB body could
earn a reply larger than itself. :func:`bounded_errors` keeps at most
``MAX_ERRORS`` errors and cuts any ``input``, ``ctx`` or ``msg`` whose JSON is
longer than ``MAX_ECHO_CHARS`` characters to that many, marked with ``…``; a
reply says how many errors it left out. A validation reply is therefore at most
a few tens of KiB.

The last line: an unexpected exception becomes a logged 500 with no traceback for the client.

Every refusal the API means to make is a 4xx with a reason, raised where the
input is checked; this only catches what nobody foresaw. The exception and its
traceback go to the log with the request's method and path; the client gets
``{"detail": "internal error", "error_id": …}`` (the id is in the log line too),
and the connection stays usable. An exception after the answer has started can
only be logged: the answer is cut short.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from alert_api.limits import App, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: Longest ``input``, ``ctx`` or ``msg`` echoed in a validation error, in characters of JSON.
MAX_ECHO_CHARS = 200
#: Most validation errors in one reply.
MAX_ERRORS = 20


def _bounded(value: Any) -> Any:
    """``value`` itself when its JSON is short, else the start of its JSON text marked with ``…``."""
    encoded = jsonable_encoder(value, custom_encoder={BaseException: str})
    text = json.dumps(encoded, ensure_ascii=False, default=str)
    if len(text) <= MAX_ECHO_CHARS:
        return encoded
    return text[:MAX_ECHO_CHARS] + "…"


def bounded_errors(errors: Sequence[Any]) -> dict[str, Any]:
    """The body of a 422 for ``errors``: at most ``MAX_ERRORS``, each echo at most ``MAX_ECHO_CHARS``.

    Examples:
        >>> body = bounded_errors([{"type": "string_too_long", "loc": ["body", "url"], "msg": "too long",
        ...                         "input": "x" * 5000, "ctx": {"max_length": 2048}}] * 30)
        >>> len(body["detail"]), body["errors_omitted"], len(body["detail"][0]["input"]), body["detail"][0]["ctx"]
        (20, 10, 201, {'max_length': 2048})
    """
    detail = []
    for error in list(errors)[:MAX_ERRORS]:
        item = dict(error) if isinstance(error, dict) else {"msg": str(error)}
        item.pop("url", None)  # pydantic's link to its documentation
        for key in ("input", "ctx", "msg"):
            if key in item:
                item[key] = _bounded(item[key])
        if "loc" in item:
            item["loc"] = [_bounded(part) for part in list(item["loc"])[:16]]
        detail.append(item)
    body: dict[str, Any] = {"detail": detail}
    if len(errors) > MAX_ERRORS:
        body["errors_omitted"] = len(errors) - MAX_ERRORS
    return body


async def validation_error_reply(request: Request, error: Exception) -> JSONResponse:
    """422 for a request that failed validation, with the echoes bounded (:func:`bounded_errors`)."""
    errors = error.errors() if isinstance(error, RequestValidationError) else [{"msg": str(error)}]
    return JSONResponse(status_code=422, content=bounded_errors(errors))


class CatchAllMiddleware:
    """Turns an unhandled exception into a logged 500 (see the module docstring)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            error_id = secrets.token_hex(6)
            log.exception("unexpected error %s in %s %s", error_id, scope.get("method"), scope.get("path"))
            if started:
                return
            body = json.dumps({"detail": "internal error", "error_id": error_id}).encode()
            await send({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


__all__ = ["MAX_ECHO_CHARS", "MAX_ERRORS", "CatchAllMiddleware", "bounded_errors", "validation_error_reply"]
