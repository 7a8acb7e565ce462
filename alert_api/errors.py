"""The last line: an unexpected exception becomes a logged 500 with no traceback for the client.

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

from alert_api.limits import App, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


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


__all__ = ["CatchAllMiddleware"]
