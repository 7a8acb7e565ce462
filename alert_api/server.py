"""The HTTP server of the alert API: uvicorn with bounded shutdown and a request-header deadline.

- **Bounded shutdown.** On SIGTERM or SIGINT the server first sets the app's
  ``closing`` event, which ends every live stream (SSE) at its next poll, then
  gives open requests ``shutdown_timeout_s`` to finish (uvicorn's
  ``timeout_graceful_shutdown``) before cancelling them, and the lifespan
  stops the background threads with the same bound.
- **Header deadline.** uvicorn's h11 protocol times out idle keep-alive
  connections but not a request whose headers never finish (slowloris): a
  client could hold a connection, and a slot, for ever by sending a header
  byte now and then. :func:`header_deadline_protocol` makes a subclass that
  closes a connection whose request line and headers are not complete
  ``header_timeout_s`` after the connection opened or after the first byte of
  the next request on a kept-alive connection. Headers are limited to h11's
  default 16 KiB as well.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from alert_api.config import AlertApiSettings


class _HeaderDeadlineProtocol(H11Protocol):
    """h11 protocol that closes connections whose request headers do not arrive in time."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The keep-alive timer now watches the idle connection; a new request's first byte re-arms this one.
        self._cancel_header_timer()

    def _watch_headers(self) -> None:
        """Arms the deadline while a request's headers are awaited (not while the keep-alive timer runs)."""
        if self.conn.their_state is h11.IDLE:
            if self._header_timer is None and self.timeout_keep_alive_task is None and not self.transport.is_closing():
                self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)
        else:
            self._cancel_header_timer()

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers did not arrive within %.1f s",
                             self.header_timeout_s)
            self.transport.close()


def header_deadline_protocol(header_timeout_s: float) -> type[H11Protocol]:
    """An h11 protocol class for uvicorn that closes connections whose headers take over ``header_timeout_s``."""
    return type("HeaderDeadlineProtocol", (_HeaderDeadlineProtocol,), {"header_timeout_s": header_timeout_s})


class ApiServer(uvicorn.Server):
    """uvicorn's server that tells the app it is closing before it waits for open requests."""

    def __init__(self, config: uvicorn.Config, closing: threading.Event) -> None:
        super().__init__(config)
        self._closing = closing

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._closing.set()
        await super().shutdown(sockets)


def build_server(app: FastAPI, host: str, port: int, api_settings: AlertApiSettings, **options: Any) -> ApiServer:
    """The server for ``app`` with the limits of ``api_settings`` (``options`` go to ``uvicorn.Config``)."""
    config = uvicorn.Config(
        app, host=host, port=port,
        http=header_deadline_protocol(api_settings.header_timeout_s),
        timeout_keep_alive=5,
        timeout_graceful_shutdown=max(1, round(api_settings.shutdown_timeout_s)),
        **options)
    return ApiServer(config, app.state.closing)


__all__ = ["ApiServer", "build_server", "header_deadline_protocol"]
