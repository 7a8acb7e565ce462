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

A consumer that *was* connected when the cluster went away does not fail: it
stays in kafka-python's own reconnect loop, and every failed attempt's socket
stays referenced (from the traceback of the attempt's error) for as long as the
consumer lives, about one descriptor a minute. :class:`ReachWatch` tells the
owner of such a consumer when it has reached no broker for a while, so that it
closes the consumer, lets go of it and connects anew (through the helpers
above, whose failed attempts leave nothing open). The sockets go with the
consumer's reference cycles at the next full garbage collection, which
:func:`release_failed_clients` runs at once.

Even a constructor that fails cleanly leaves its refused connect attempts'
sockets in reference cycles until a collection; through a long outage the
count then swung by tens of descriptors. So the helpers first knock on the
bootstrap servers with a plain TCP connect of their own, closed at once, and
build no client while none of them answers (:func:`probe_bootstrap`): through
an outage a retrying loop opens and closes one socket per attempt and nothing
else.

The consumer's ``close`` is bounded by ``close_timeout_ms`` (kafka-python's own
bound is ``request_timeout_ms``, 30 s), so stopping the API while the cluster is
down does not wait for it.
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaConnectionError, KafkaError
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

    def reaches_cluster(self) -> bool:
        """Whether the consumer holds an open connection to a broker (a partition leader, its group coordinator).

        A consumer opens its connections on first use: one that has not polled yet may hold none.
        """
        # kafka-python offers no public view of its connections; its client keeps them in this table.
        connections = self._client._manager._conns  # type: ignore[attr-defined]  # noqa: SLF001
        return any(connection.connected for connection in list(connections.values()))


class ClusterUnreachable(KafkaError):
    """A consumer has reached no broker for too long; its owner closes it and connects anew."""

    retriable = True


class ReachWatch:
    """Notices a consumer that has reached no broker for ``patience_s``.

    Shorter gaps (a broker restarting, a leader moving) are left to kafka-python's
    own reconnects, which resume without a rejoin. Consumers that cannot tell
    (test fakes without ``reaches_cluster``) always count as connected.
    """

    def __init__(self, patience_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._patience_s = patience_s
        self._clock = clock
        self._reached_at = clock()

    def check(self, consumer: object) -> None:
        """Raises :class:`ClusterUnreachable` once ``consumer`` has reached no broker for ``patience_s``."""
        reaches = getattr(consumer, "reaches_cluster", None)
        now = self._clock()
        if reaches is None or reaches():
            self._reached_at = now
        elif now - self._reached_at > self._patience_s:
            raise ClusterUnreachable(f"no broker reached for {now - self._reached_at:.0f} s")


#: Least time between two collections of :func:`release_failed_clients` that are not forced.
COLLECT_EVERY_S = 15.0
_collections = threading.Lock()
_last_collection = [float("-inf")]


def release_failed_clients(*, force: bool = False) -> None:
    """Closes the sockets of failed Kafka clients now, rather than at some later collection.

    kafka-python keeps each failed connect attempt's socket in a reference cycle
    (the error's traceback holds the frame that holds the socket), which only
    the cycle collector frees; through an outage that held up to 170 descriptors
    between the interpreter's own full collections. A full collection takes the
    GIL for a while, so it runs at most every :data:`COLLECT_EVERY_S` across the
    process, unless ``force`` (a connected consumer was just dropped).
    """
    with _collections:
        now = time.monotonic()
        if not force and now - _last_collection[0] < COLLECT_EVERY_S:
            return
        _last_collection[0] = now
    gc.collect()


class BrokersUnreachable(KafkaConnectionError):
    """No bootstrap server accepted a connection, so no client was built."""


#: How long :func:`probe_bootstrap` waits for one bootstrap server to accept a connection.
PROBE_TIMEOUT_S = 2.0
#: kafka-python's own default when no ``bootstrap_servers`` is given.
DEFAULT_BOOTSTRAP = "localhost:9092"


def bootstrap_addresses(bootstrap_servers: str | Iterable[str]) -> list[tuple[str, int]]:
    """``host:port`` entries (a comma-separated string or a list; IPv6 in brackets) as (host, port) pairs.

    >>> bootstrap_addresses("kafka-1:9092, [::1]:19092,kafka-2")
    [('kafka-1', 9092), ('::1', 19092), ('kafka-2', 9092)]
    """
    entries = bootstrap_servers.split(",") if isinstance(bootstrap_servers, str) else list(bootstrap_servers)
    addresses = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        host, _, port = entry.rpartition(":") if not entry.endswith("]") else (entry, "", "")
        if not host or (host.count(":") and not host.startswith("[")):
            host, port = entry, ""  # a bare host name, or a bare IPv6 address
        addresses.append((host.strip("[]"), int(port) if port else 9092))
    return addresses


def probe_bootstrap(bootstrap_servers: str | Iterable[str], timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raises :class:`BrokersUnreachable` unless one of the bootstrap servers accepts a TCP connection.

    The probe's socket is closed before it returns, whatever happens: an
    unreachable cluster costs no descriptor that outlives the call.
    """
    refusals = []
    for host, port in bootstrap_addresses(bootstrap_servers):
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return
        except OSError as error:
            refusals.append(f"{host}:{port}: {error.strerror or error}")
    raise BrokersUnreachable("no bootstrap server answered (" + "; ".join(refusals) + ")")


def _closing_on_failure(build: Callable[..., T], *args: Any, **configs: Any) -> T:
    """Calls ``build(*args, kafka_client=<recording factory>, **configs)``; on failure closes the clients it made.

    Nothing is built while no bootstrap server accepts a connection (:func:`probe_bootstrap`).
    """
    probe_bootstrap(configs.get("bootstrap_servers", DEFAULT_BOOTSTRAP))
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


__all__ = [
    "CLOSE_TIMEOUT_MS",
    "BoundedCloseConsumer",
    "BrokersUnreachable",
    "ClusterUnreachable",
    "ReachWatch",
    "bootstrap_addresses",
    "open_consumer",
    "open_producer",
    "probe_bootstrap",
    "release_failed_clients",
]
