"""Readings from field gateways over HTTP, produced to the observation topics.

A gateway that is not a Kafka client posts a batch of readings in the contract
JSON to ``POST /v1/ingest/readings`` with its key (``sbg_…``). Each reading is
judged on its own (:func:`check_reading`, pure):

- it must parse with :func:`suibou.contracts.parse_event` and be one of
  ``rain_reading/1``, ``level_reading/1``, ``camera_frame/1`` or
  ``drone_observation/1`` (``schema``; else ``invalid``);
- its source (station id, camera id, drone flight id) must be one the gateway
  is registered for (``station``);
- a live gateway's readings must not claim ``exercise: true`` nor carry a
  ``drill_id``; an exercise gateway's readings must be exercises with a
  ``drill_id`` (``exercise``): drill traffic never passes for live data, nor
  the other way round;
- a camera frame's ``image_uri`` must name a file inside one of the configured
  frame roots (``image``; none are configured by default), since the pipeline
  opens the file it names.

Accepted readings are produced with ``acks=all`` and idempotence, keyed by
their source id, stamped with their event time, to their feed's topic; the
answer waits for the broker's acknowledgement. Idempotence on ``event_id``
(:class:`Ledger`): each new event id is first *claimed* in the store, then
produced, then marked accepted once Kafka acknowledged it (a failed send drops
the claim). A retried reading answers ``duplicate`` and is not produced again;
an event id another gateway sent is ``conflict``; one whose first request is
still waiting for Kafka is ``in_flight``. Accepted ids are kept
``ingest_dedup_hours`` (72 h by default), then purged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import posixpath
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from alert_api.accounts import Gateway
from alert_api.db import Database, ingested_events
from alert_api.metrics import ApiMetrics
from alert_api.models import Clock, utc_now
from suibou.contracts import (
    EVENT_TYPES,
    MAX_MESSAGE_BYTES,
    CameraFrame,
    ContractError,
    DroneObservation,
    Event,
    LevelReading,
    RainReading,
    local_path,
    parse_event,
)
from suibou.settings import Topics

log = logging.getLogger(__name__)

#: Contracts a gateway may post, and their feed (the topic ``Topics.observation_topics[feed]``).
FEEDS: dict[type[Event], str] = {RainReading: "rain", LevelReading: "level", CameraFrame: "camera",
                                 DroneObservation: "drone"}
ACCEPTED_SCHEMAS = tuple(cls.SCHEMA for cls in FEEDS)
_ALL_SCHEMAS = frozenset(EVENT_TYPES)

Status = Literal["accepted", "duplicate", "rejected"]


class BatchError(ValueError):
    """The batch as a whole is unusable; ``status`` is the HTTP status to answer (413 or 422)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class IngestUnavailable(RuntimeError):
    """Kafka did not acknowledge; the answer is 503. ``accepted`` readings did reach it (a retry says duplicate)."""

    def __init__(self, message: str, accepted: int = 0) -> None:
        super().__init__(message)
        self.accepted = accepted


@dataclasses.dataclass(frozen=True)
class ItemResult:
    """What became of one reading of a batch.

    Attributes:
        index: Its position in the batch.
        event_id: Its event id, when it has one.
        status: ``accepted`` (produced and acknowledged), ``duplicate`` (accepted
            before, not produced again) or ``rejected``.
        reason: Why it was rejected, for a person.
        category: The rejection's category (:data:`alert_api.metrics.REJECT_REASONS`).
        feed: Its feed, when it parsed.
    """

    index: int
    event_id: str | None
    status: Status
    reason: str | None = None
    category: str | None = None
    feed: str | None = None


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A reading that passed the checks, ready to produce."""

    index: int
    event: Event
    feed: str
    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int


def parse_batch(body: bytes, *, max_readings: int, max_bytes: int) -> list[Any]:
    """The readings of a request body ``{"readings": [...]}``.

    Raises:
        BatchError: 413 for a body over ``max_bytes`` or more than ``max_readings``
            readings; 422 for anything that is not such an object.
    """
    if len(body) > max_bytes:
        raise BatchError(f"the batch is {len(body)} bytes; at most {max_bytes} are accepted", 413)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BatchError(f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("readings"), list):
        raise BatchError('the body must be a JSON object {"readings": [...]}')
    extra = sorted(set(document) - {"readings"})
    if extra:
        raise BatchError(f"unknown field(s) {', '.join(extra)}; the body holds only 'readings'")
    readings: list[Any] = document["readings"]
    if not readings:
        raise BatchError("the batch holds no readings")
    if len(readings) > max_readings:
        raise BatchError(f"the batch holds {len(readings)} readings; at most {max_readings} are accepted", 413)
    return readings


def source_id(event: Event) -> str:
    """The id a gateway must be registered for to send ``event``."""
    if isinstance(event, (RainReading, LevelReading)):
        return event.station_id
    if isinstance(event, CameraFrame):
        return event.camera_id
    if isinstance(event, DroneObservation):
        return event.flight_id
    raise TypeError(f"no source id for {type(event).__name__}")


def inside_roots(uri: str, roots: Sequence[Path]) -> bool:
    """Whether a ``file://`` URI or path names a file inside one of ``roots`` (no ``..`` escapes).

    Examples:
        >>> inside_roots("file:///data/frames/a.jpg", [Path("/data/frames")])
        True
        >>> inside_roots("/data/frames/../secret.jpg", [Path("/data/frames")])
        False
    """
    try:
        path = local_path(uri, "image_uri")
    except ValueError:
        return False
    if not path.startswith("/"):
        return False
    normal = posixpath.normpath(path)
    return any(normal.startswith(posixpath.normpath(str(root)).rstrip("/") + "/") for root in roots)


def _rejected(index: int, event_id: Any, category: str, reason: str, feed: str | None = None) -> ItemResult:
    return ItemResult(index, event_id if isinstance(event_id, str) else None, "rejected", reason, category, feed)


def check_reading(index: int, item: Any, gateway: Gateway, topics: Topics,
                  frame_roots: Sequence[Path] = ()) -> Candidate | ItemResult:
    """Judges one reading of a gateway's batch: a :class:`Candidate` to produce, or why it is rejected."""
    raw_id = item.get("event_id") if isinstance(item, dict) else None
    if not isinstance(item, dict):
        return _rejected(index, None, "invalid", f"a reading must be a JSON object, got {type(item).__name__}")
    schema = item.get("schema")
    if isinstance(schema, str) and schema in _ALL_SCHEMAS and schema not in ACCEPTED_SCHEMAS:
        return _rejected(index, raw_id, "schema",
                         f"{schema} is not accepted here; gateways send {', '.join(ACCEPTED_SCHEMAS)}")
    try:
        event = parse_event(item)
    except ContractError as error:
        return _rejected(index, raw_id, "invalid", str(error))
    feed = FEEDS.get(type(event))
    if feed is None:  # a schema added to the contracts later
        return _rejected(index, event.event_id, "schema", f"{event.SCHEMA} is not accepted here")
    source = source_id(event)
    if not gateway.may_report_for(source):
        return _rejected(index, event.event_id, "station",
                         f"this gateway is not registered for {source!r}", feed)
    if gateway.exercise and not (event.exercise and event.drill_id):
        return _rejected(index, event.event_id, "exercise",
                         "an exercise gateway's readings must carry exercise: true and a drill_id", feed)
    if not gateway.exercise and (event.exercise or event.drill_id is not None):
        return _rejected(index, event.event_id, "exercise",
                         "a live gateway's readings must not claim exercise: true or carry a drill_id; "
                         "drills go through an exercise gateway", feed)
    if isinstance(event, CameraFrame) and not inside_roots(event.image_uri, frame_roots):
        where = ", ".join(str(r) for r in frame_roots) or "none are configured (SUIBOU_ALERT_API_INGEST_FRAME_ROOTS)"
        return _rejected(index, event.event_id, "image",
                         f"image_uri must name a file inside the ingest frame roots: {where}", feed)
    value = event.to_json()
    if len(value) > MAX_MESSAGE_BYTES:
        return _rejected(index, event.event_id, "invalid", f"the reading exceeds {MAX_MESSAGE_BYTES} bytes", feed)
    return Candidate(index, event, feed, topics.observation_topics[feed], source.encode(), value,
                     round(event.event_time.timestamp() * 1000))


# --------------------------------------------------------------------------- the ledger of event ids


ClaimOutcome = Literal["claimed", "duplicate", "conflict", "in_flight"]


class Ledger:
    """Event ids of gateway readings: claimed before producing, accepted after Kafka's acknowledgement.

    Args:
        database: The alert store's database (SQLite or PostgreSQL).
        retention: How long accepted ids are kept (a retry after that is produced again).
        stale_after: A claim older than this, never accepted, belongs to a request that died; it may be taken over.
    """

    def __init__(self, database: Database, retention: dt.timedelta, stale_after: dt.timedelta) -> None:
        self.db = database
        self.retention = retention
        self.stale_after = stale_after

    def _insert(self) -> Any:
        if self.db.dialect == "postgresql":
            return postgresql.insert(ingested_events)
        return sqlite.insert(ingested_events)

    def claim(self, gateway_id: str, candidates: Sequence[Candidate],
              now: dt.datetime) -> tuple[str, dict[str, ClaimOutcome]]:
        """Claims the event ids of ``candidates``; returns the claim's token and each id's outcome."""
        token = secrets.token_hex(8)
        if not candidates:
            return token, {}
        e = ingested_events.c
        ids = [c.event.event_id for c in candidates]
        with self.db.begin() as connection:
            connection.execute(ingested_events.update().where(
                e.event_id.in_(ids), e.accepted.is_(False), e.claimed_at < now - self.stale_after,
            ).values(gateway_id=gateway_id, claim=token, claimed_at=now))
            rows = [{"event_id": c.event.event_id, "gateway_id": gateway_id, "topic": c.topic, "accepted": False,
                     "claim": token, "claimed_at": now} for c in candidates]
            connection.execute(self._insert().values(rows).on_conflict_do_nothing(index_elements=["event_id"]))
            found = connection.execute(sa.select(e.event_id, e.gateway_id, e.accepted, e.claim)
                                       .where(e.event_id.in_(ids))).mappings().all()
        outcomes: dict[str, ClaimOutcome] = {}
        for row in found:
            if row["claim"] == token and not row["accepted"]:
                outcomes[row["event_id"]] = "claimed"
            elif row["accepted"]:
                outcomes[row["event_id"]] = "duplicate" if row["gateway_id"] == gateway_id else "conflict"
            else:
                outcomes[row["event_id"]] = "in_flight"
        return token, outcomes

    def settle(self, token: str, accepted: Iterable[str], failed: Iterable[str], now: dt.datetime) -> None:
        """Marks acknowledged ids accepted and drops the claims of the others."""
        e = ingested_events.c
        accepted, failed = list(accepted), list(failed)
        with self.db.begin() as connection:
            if accepted:
                connection.execute(ingested_events.update().where(e.claim == token, e.event_id.in_(accepted))
                                   .values(accepted=True, claimed_at=now))
            if failed:
                connection.execute(ingested_events.delete().where(e.claim == token, e.event_id.in_(failed)))

    def purge(self, now: dt.datetime) -> int:
        """Forgets ids accepted longer ago than the retention; returns how many."""
        e = ingested_events.c
        with self.db.begin() as connection:
            result = connection.execute(ingested_events.delete().where(e.claimed_at < now - self.retention))
        return int(result.rowcount)

    def count(self) -> int:
        with self.db.read() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(ingested_events)).scalar_one())


# --------------------------------------------------------------------------- Kafka


class Producer(Protocol):
    """The part of ``kafka.KafkaProducer`` the ingest uses."""

    def send(self, topic: str, value: bytes | None = ..., key: bytes | None = ..., *,
             timestamp_ms: int | None = ...) -> Any: ...

    def close(self, timeout: float | None = ...) -> None: ...


class LazyProducer:
    """One Kafka producer, made on first use, dropped after a failure (the next batch makes a new one).

    Args:
        factory: Makes the producer; may raise when the cluster cannot be reached.
    """

    def __init__(self, factory: Callable[[], Producer]) -> None:
        self._factory = factory
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def get(self) -> Producer:
        with self._lock:
            if self._producer is None:
                self._producer = self._factory()
            return self._producer

    def discard(self, producer: Producer) -> None:
        """Closes ``producer`` if it is still the current one."""
        with self._lock:
            if self._producer is not producer:
                return
            self._producer = None
        try:
            producer.close(timeout=1)
        except Exception:  # closing a broken producer may fail too
            log.debug("closing the ingest producer failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=10)


def kafka_producer_factory(bootstrap_servers: str, *, timeout_s: float,
                           connect_timeout_ms: int) -> Callable[[], Producer]:
    """Makes kafka-python producers for the ingest: ``acks=all``, idempotent, bounded waits."""

    def make() -> Producer:
        from suibou.kafka_clients import open_producer

        timeout_ms = int(timeout_s * 1000)
        producer: Producer = open_producer(
            bootstrap_servers=bootstrap_servers, client_id="suibou-alert-api-ingest", acks="all",
            enable_idempotence=True, linger_ms=2, max_block_ms=timeout_ms, request_timeout_ms=timeout_ms,
            delivery_timeout_ms=timeout_ms + 2000, bootstrap_timeout_ms=connect_timeout_ms,
        )
        return producer

    return make


def produce(producer: Producer, candidates: Sequence[Candidate], timeout_s: float) -> tuple[list[str], str | None]:
    """Sends ``candidates`` and waits for the broker; returns the acknowledged event ids and the first error."""
    futures: list[tuple[Candidate, Any]] = []
    error: str | None = None
    for candidate in candidates:
        try:
            futures.append((candidate, producer.send(candidate.topic, value=candidate.value, key=candidate.key,
                                                     timestamp_ms=candidate.timestamp_ms)))
        except Exception as failure:  # noqa: BLE001 - e.g. KafkaTimeoutError waiting for metadata
            error = f"{type(failure).__name__}: {failure}"
            break
    acked: list[str] = []
    for candidate, future in futures:
        try:
            future.get(timeout=timeout_s)
            acked.append(candidate.event.event_id)
        except Exception as failure:  # noqa: BLE001 - any failure means not acknowledged
            error = error or f"{type(failure).__name__}: {failure}"
    return acked, error


# --------------------------------------------------------------------------- the service


@dataclasses.dataclass(frozen=True)
class BatchResult:
    results: list[ItemResult]

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)


class IngestService:
    """Checks a gateway's batch, claims its event ids, produces the new ones and settles the claims.

    Args:
        ledger: Event ids already sent.
        producer: The Kafka producer, made on first use.
        topics: Topic names.
        timeout_s: Longest wait for the broker's acknowledgement.
        frame_roots: Folders camera frames' ``image_uri`` may point into.
        metrics: Counts what happens.
        clock: Source of times.
    """

    #: How often accepted ids past the retention are purged.
    PURGE_EVERY = dt.timedelta(minutes=5)

    def __init__(self, ledger: Ledger, producer: LazyProducer, topics: Topics, *, timeout_s: float,
                 frame_roots: Sequence[Path] = (), metrics: ApiMetrics | None = None, clock: Clock = utc_now) -> None:
        self.ledger = ledger
        self.producer = producer
        self.topics = topics
        self.timeout_s = timeout_s
        self.frame_roots = tuple(frame_roots)
        self.metrics = metrics
        self._clock = clock
        self._purged_at: dt.datetime | None = None

    def ingest(self, gateway: Gateway, readings: Sequence[Any]) -> BatchResult:
        """Handles one batch (blocking: run it on a worker thread).

        Raises:
            IngestUnavailable: Kafka could not be reached or did not acknowledge.
        """
        now = self._clock()
        if self._purged_at is None or now - self._purged_at > self.PURGE_EVERY:
            self._purged_at = now
            self.ledger.purge(now)
        results: dict[int, ItemResult] = {}
        candidates: list[Candidate] = []
        seen: set[str] = set()
        for index, item in enumerate(readings):
            checked = check_reading(index, item, gateway, self.topics, self.frame_roots)
            if isinstance(checked, ItemResult):
                results[index] = checked
            elif checked.event.event_id in seen:  # the same reading twice in one batch
                results[index] = ItemResult(index, checked.event.event_id, "duplicate", feed=checked.feed)
            else:
                seen.add(checked.event.event_id)
                candidates.append(checked)
        token, outcomes = self.ledger.claim(gateway.gateway_id, candidates, now)
        claimed = []
        for candidate in candidates:
            outcome = outcomes.get(candidate.event.event_id, "in_flight")
            event_id, feed = candidate.event.event_id, candidate.feed
            if outcome == "claimed":
                claimed.append(candidate)
            elif outcome == "duplicate":
                results[candidate.index] = ItemResult(candidate.index, event_id, "duplicate", feed=feed)
            elif outcome == "conflict":
                results[candidate.index] = _rejected(candidate.index, event_id, "conflict",
                                                     "another gateway already sent this event_id", feed)
            else:
                results[candidate.index] = _rejected(candidate.index, event_id, "in_flight",
                                                     "an earlier request with this event_id is still waiting for "
                                                     "Kafka; retry shortly", feed)
        if claimed:
            try:
                self._send(gateway, token, claimed, results)
            except IngestUnavailable:
                self._count(results.values())
                raise
        ordered = [results[i] for i in range(len(readings))]
        self._count(ordered)
        return BatchResult(ordered)

    def _send(self, gateway: Gateway, token: str, claimed: list[Candidate], results: dict[int, ItemResult]) -> None:
        acked: list[str] = []
        error: str | None = None
        try:
            producer = self.producer.get()
        except Exception as failure:  # noqa: BLE001 - NoBrokersAvailable and the like
            error = f"{type(failure).__name__}: {failure}"
        else:
            acked, error = produce(producer, claimed, self.timeout_s)
            if error is not None:
                self.producer.discard(producer)
        acked_set = set(acked)
        self.ledger.settle(token, acked, [c.event.event_id for c in claimed if c.event.event_id not in acked_set],
                           self._clock())
        if error is not None:
            log.warning("ingest from gateway %s: Kafka acknowledged %d of %d readings: %s", gateway.gateway_id,
                        len(acked), len(claimed), error)
            if self.metrics is not None:
                self.metrics.ingest_unavailable.inc()
                for candidate in claimed:
                    if candidate.event.event_id in acked_set:
                        self.metrics.ingest_result(candidate.feed, "accepted")
            raise IngestUnavailable(
                f"Kafka did not acknowledge {len(claimed) - len(acked)} of {len(claimed)} new readings ({error}); "
                f"{len(acked)} were accepted and will answer 'duplicate' when the batch is sent again", len(acked))
        for candidate in claimed:
            results[candidate.index] = ItemResult(candidate.index, candidate.event.event_id, "accepted",
                                                  feed=candidate.feed)

    def _count(self, results: Iterable[ItemResult]) -> None:
        if self.metrics is None:
            return
        for result in results:
            if result.status == "rejected":
                self.metrics.ingest_rejected(result.category or "invalid")
            elif result.feed is not None:
                self.metrics.ingest_result(result.feed, result.status)

    def close(self) -> None:
        self.producer.close()


def results_json(results: Sequence[ItemResult]) -> list[Mapping[str, Any]]:
    return [{"index": r.index, "event_id": r.event_id, "status": r.status, "reason": r.reason,
             "category": r.category} for r in results]


__all__ = ["ACCEPTED_SCHEMAS", "FEEDS", "BatchError", "BatchResult", "Candidate", "IngestService",
           "IngestUnavailable", "ItemResult", "LazyProducer", "Ledger", "Producer", "check_reading", "inside_roots",
           "kafka_producer_factory", "parse_batch", "produce", "source_id"]
