"""A loop on a background thread that survives errors: how the API follows Kafka topics."""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, Generic, TypeVar

from alert_api.config import AlertApiSettings
from suibou.kafka_clients import ClusterUnreachable, ReachWatch, release_failed_clients

log = logging.getLogger(__name__)

S = TypeVar("S")


class RetryingLoop(Generic[S]):
    """Runs :meth:`_consume` on a daemon thread until :meth:`stop`.

    An error from ``_consume`` goes to :meth:`_on_error` (which records it in the
    status); after ``retry_backoff_s`` the loop calls ``_consume`` again, which
    reconnects. The status is a frozen dataclass, replaced under a lock.
    ``_consume`` checks its consumer with :meth:`_reach_watch` on every poll, so
    that an outage ends in a reconnect, not in kafka-python's endless retries.
    """

    #: The thread's name, as logs and debuggers show it.
    thread_name = "retrying-loop"

    def __init__(self, config: AlertApiSettings, status: S) -> None:
        self._config = config
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._status = status

    @property
    def status(self) -> S:
        with self._lock:
            return self._status

    def start(self) -> None:
        """Starts the thread; does nothing if it is already running."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Asks the thread to stop, without waiting (a pause between retries ends at once)."""
        self._stopping.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Asks the thread to stop and waits at most ``timeout`` for it to close its clients.

        The thread is a daemon: one still connecting after the timeout does not keep the process alive.
        """
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s did not stop within %.0f s", self.thread_name, timeout)
            self._thread = None

    def run(self) -> None:
        """Consumes until :meth:`stop`, reconnecting after errors. The thread's body."""
        while not self._stopping.is_set():
            try:
                self._consume()
                continue
            except Exception as error:  # noqa: BLE001 - the thread must survive and retry
                self._on_error(error)
                dropped = isinstance(error, ClusterUnreachable)
            # Out of the except block: the error, and through its traceback the failed or dropped consumer,
            # are garbage now.
            release_failed_clients(force=dropped)
            self._stopping.wait(self._config.retry_backoff_s)
        self._on_stopped()

    def _reach_watch(self) -> ReachWatch:
        """A watch that ends ``_consume`` when its consumer has reached no broker for a while."""
        return ReachWatch(self._config.unreachable_reconnect_s)

    def _consume(self) -> None:
        raise NotImplementedError

    def _on_error(self, error: Exception) -> None:
        raise NotImplementedError

    def _on_stopped(self) -> None:
        raise NotImplementedError

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._status = dataclasses.replace(self._status, **changes)  # type: ignore[type-var]
