"""Kafka clients that release everything they opened, also when they fail to connect.

``KafkaConsumer(...)`` and ``KafkaProducer(...)`` build their network client
(an epoll selector, a wake-up socket pair, connections, and for the consumer an
I/O thread) *before* they bootstrap; when the cluster is unreachable the
constructor raises and the caller never gets an object to close. Every failed
reconnect then leaked a few descriptors and a thread, until the process ran out
of descriptors. :func:`open_consumer` and :func:`open_producer` hand kafka-python
a client factory that remembers what it built and close it when the constructor
fails. Every long-running process of suibou (the alert API, the live job's
supervisor) opens its clients through them.

The consumer's ``close`` is bounded by ``close_timeout_ms`` (kafka-python's own
bound is ``request_timeout_ms``, 30 s), so stopping the API while the cluster is
down does not wait for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer
from kafka.net.compat import KafkaNetClient

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest wait of a consumer's ``close`` (leaving its group, closing connections).
CLOSE_TIMEOUT_MS = 2000


class BoundedCloseConsumer(KafkaConsumer):
    """A ``KafkaConsumer`` whose ``close`` waits at most ``close_timeout_ms`` unless told otherwise."""

    close_timeout_ms = CLOSE_TIMEOUT_MS

    def close(self, autocommit: bool = True, timeout_ms: float | None = None) -> None:
        super().close(autocommit=autocommit, timeout_ms=self.close_timeout_ms if timeout_ms is None else timeout_ms)


def _closing_on_failure(build: Callable[..., T], *args: Any, **configs: Any) -> T:
    """Calls ``build(*args, kafka_client=<recording factory>, **configs)``; on failure closes the clients it made."""
    made: list[Any] = []

    def client(**client_configs: Any) -> Any:
        made.append(KafkaNetClient(**client_configs))
        return made[-1]

    try:
        return build(*args, kafka_client=client, **configs)
    except BaseException:
        for net_client in made:
            try:
                net_client.close()
            except Exception:  # closing what is left; the original error matters
                log.debug("closing a Kafka client that failed to connect", exc_info=True)
        raise


def open_consumer(*topics: str, **configs: Any) -> BoundedCloseConsumer:
    """``KafkaConsumer(*topics, **configs)`` that leaves nothing open when it cannot connect."""
    return _closing_on_failure(BoundedCloseConsumer, *topics, **configs)


def open_producer(**configs: Any) -> KafkaProducer:
    """``KafkaProducer(**configs)`` that leaves nothing open when it cannot connect."""
    return _closing_on_failure(KafkaProducer, **configs)


__all__ = ["CLOSE_TIMEOUT_MS", "BoundedCloseConsumer", "open_consumer", "open_producer"]
