"""Request limits: per-partner rate limits, failed-login limits, request body size.

Rate limits are token buckets kept in the process (each API replica limits on
its own). A partner's bucket holds ``rate_limit_per_minute`` tokens and refills
at that rate; a request that finds it empty gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class RateLimiter:
    """Token buckets by key.

    Args:
        clock: Monotonic seconds (tests pass a fake).

    Examples:
        >>> now = [0.0]
        >>> limiter = RateLimiter(clock=lambda: now[0])
        >>> [limiter.take("p", per_minute=2) for _ in range(3)]
        [0.0, 0.0, 30.0]
        >>> now[0] = 30.0
        >>> limiter.take("p", per_minute=2)
        0.0
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, per_minute: int) -> float:
        """Takes one token; returns 0 if there was one, else the seconds until there will be."""
        rate = per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - at) * rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return float(math.ceil((1 - tokens) / rate))

    def wait(self, key: str, per_minute: int) -> float:
        """Seconds until ``key`` has a token (0 if it has one now), without taking it."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - at) * per_minute / 60.0)
        return 0.0 if tokens >= 1 else float(math.ceil((1 - tokens) * 60.0 / per_minute))

    def reset(self, key: str) -> None:
        with self._lock:
            self._buckets.pop(key, None)

    def prune(self, idle_s: float) -> None:
        """Forgets buckets untouched for ``idle_s`` (a full bucket is the same as none, after a minute)."""
        now = self._clock()
        with self._lock:
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < idle_s}


class FailureCounter:
    """Counts failures by key in a sliding window (failed officer logins)."""

    def __init__(self, window_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}

    def count(self, key: str) -> int:
        now = self._clock()
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if now - t < self._window]
            self._failures[key] = recent
            return len(recent)

    def add(self, key: str) -> None:
        with self._lock:
            self._failures.setdefault(key, []).append(self._clock())

    def until_below(self, key: str, limit: int) -> float:
        """Seconds until fewer than ``limit`` failures of ``key`` are in the window (0 if already)."""
        now = self._clock()
        with self._lock:
            recent = sorted(t for t in self._failures.get(key, []) if now - t < self._window)
        if len(recent) < limit:
            return 0.0
        return max(0.0, recent[len(recent) - limit] + self._window - now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def prune(self) -> None:
        """Forgets keys without a failure in the window."""
        now = self._clock()
        with self._lock:
            self._failures = {k: v for k, v in self._failures.items() if v and now - v[-1] < self._window}


class StreamSlots:
    """Counts open live streams per key, up to a maximum."""

    def __init__(self, maximum: int) -> None:
        self._maximum = maximum
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}

    def acquire(self, key: str) -> bool:
        with self._lock:
            if self._open.get(key, 0) >= self._maximum:
                return False
            self._open[key] = self._open.get(key, 0) + 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._open[key] = max(0, self._open.get(key, 0) - 1)


class BodyLimitMiddleware:
    """Answers 413 to a request whose body is larger than ``max_bytes``.

    The declared ``Content-Length`` is checked first; a body without one (chunked)
    is read up to the limit before the application sees any of it. A body that
    has not arrived in full ``body_timeout_s`` after the headers gets 408 and
    the connection is closed (a client trickling its body cannot hold a
    connection for ever).
    """

    def __init__(self, app: App, max_bytes: int, body_timeout_s: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await self._too_large(send)
                    return
        chunks: list[bytes] = []
        size = 0
        deadline = None if self.body_timeout_s is None else time.monotonic() + self.body_timeout_s
        while True:
            try:
                message = await (receive() if deadline is None else
                                 asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic())))
            except TimeoutError:
                await self._reply(send, 408, f"request body not received within {self.body_timeout_s:g} s")
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await self._reply(send, 413, f"request body is larger than {self.max_bytes} bytes")

    @staticmethod
    async def _reply(send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


__all__ = ["BodyLimitMiddleware", "FailureCounter", "RateLimiter", "StreamSlots"]
