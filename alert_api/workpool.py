"""Heavy requests (route checks) on a bounded pool of their own, fairly shared and cancellable.

A route check may compute for seconds. Run on the server's default thread pool,
a few of them would hold every thread and starve every other request; run
without bounds, one partner could queue as many as it likes. So:

- they run on a pool of ``workers`` threads used for nothing else;
- at most ``queue`` more may wait for a thread; beyond that: 429;
- one caller (partner, officer or admin) may have at most ``per_caller`` running
  or waiting at once; beyond that: 429, while other callers go on;
- a request whose client disconnects has its work cancelled (the work looks at
  its :class:`~alert_api.geo.Budget` in its loops).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from alert_api.geo import Budget

T = TypeVar("T")

#: How often a running request looks whether its client is still there, seconds.
DISCONNECT_POLL_S = 0.1


class Busy(Exception):
    """No room for the work: ``reason`` says whose limit, ``retry_after`` when to try again."""

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class ClientGone(Exception):
    """The client disconnected; its work was cancelled."""


class WorkPool:
    """A bounded pool with a per-caller limit.

    Args:
        workers: Threads.
        queue: Work that may wait for a thread.
        per_caller: Work one caller may have running or waiting.
    """

    def __init__(self, workers: int = 4, queue: int = 16, per_caller: int = 2) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="route-check")
        self._capacity = workers + queue
        self._per_caller = per_caller
        self._lock = threading.Lock()
        self._admitted = 0
        self._by_caller: collections.Counter[str] = collections.Counter()

    def _enter(self, caller: str) -> None:
        with self._lock:
            if self._by_caller[caller] >= self._per_caller:
                raise Busy(f"at most {self._per_caller} route checks at once per caller")
            if self._admitted >= self._capacity:
                raise Busy("the route-check workers are busy; try again shortly")
            self._admitted += 1
            self._by_caller[caller] += 1

    def _leave(self, caller: str) -> None:
        with self._lock:
            self._admitted -= 1
            self._by_caller[caller] -= 1
            if self._by_caller[caller] <= 0:
                del self._by_caller[caller]

    async def run(self, caller: str, budget: Budget, work: Callable[[], T],
                  disconnected: Callable[[], Awaitable[bool]]) -> T:
        """Runs ``work`` on the pool; cancels it (``budget.cancelled``) if the client goes away.

        Raises:
            Busy: No room for the caller or in the pool (nothing was run).
            ClientGone: The client disconnected before the work ended.
        """
        self._enter(caller)

        def timed() -> T:
            budget.started = time.monotonic()  # the deadline counts computing time, not the wait for a worker
            return work()

        future = asyncio.get_running_loop().run_in_executor(self._pool, timed)
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=DISCONNECT_POLL_S)
                if done:
                    return future.result()
                if await disconnected():
                    budget.cancelled.set()
                    raise ClientGone()
        finally:
            if not future.done():
                budget.cancelled.set()
            # The slot is freed when the thread is, not before: a cancelled check stops at its next budget look.
            future.add_done_callback(lambda _: self._leave(caller))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["Busy", "ClientGone", "WorkPool"]
