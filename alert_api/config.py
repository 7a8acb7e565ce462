"""Configuration of the alert API.

Process-wide settings (Kafka cluster, topics, database URL, bind address) come
from :class:`suibou.settings.Settings`; this module adds the few knobs that only
the alert API has, read from ``SUIBOU_ALERT_API_*`` variables.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alert_api.clientaddr import parse_networks
from suibou.settings import Settings, get_settings

__all__ = ["AlertApiSettings", "Settings", "admin_key_file", "get_api_settings", "get_settings", "resolve_admin_key"]

log = logging.getLogger(__name__)

#: Shortest admin key accepted from the environment.
MIN_ADMIN_KEY = 32


class AlertApiSettings(BaseSettings):
    """Settings of the alert API: its Kafka consumer, security limits, partner formats and delivery.

    Attributes:
        consumer_group: Kafka consumer group of the alert consumer. Every API
            replica in one group shares the alert partitions; each replica
            needs its own database, or one shared database, to see every alert.
        poll_timeout_ms: Longest wait of one poll; also bounds how long a stop takes.
        connect_timeout_ms: Longest wait for the cluster when (re)connecting; a
            stop waits for it too while the cluster is down.
        max_poll_records: Most records stored (and committed) as one batch.
        unassigned_rejoin_s: A consumer that holds no partition of the alerts topic this
            long closes and joins its group again. kafka-python's group leader can assign
            from metadata that lacks the topic and then see no change that would make it
            rebalance, so the member holds nothing until it rejoins. (A replica that truly
            has nothing to hold, in a group with more replicas than partitions, rejoins
            this often too, and says so in its log.)
        unreachable_reconnect_s: A consumer that has reached no broker this long is closed
            and built anew. kafka-python would go on reconnecting by itself, but keeps
            every failed attempt's socket while the consumer lives (about one descriptor
            a minute of outage); a new consumer starts with none.
        retry_backoff_s: Pause before reconnecting after a Kafka or database error.
        dead_letter_timeout_s: Longest wait for the broker to acknowledge a dead letter.
        admin_key: The admin API key (``SUIBOU_ADMIN_KEY``, at least 32 characters).
            When unset, the API generates one on first start into
            ``<SUIBOU_HOME>/api/admin.key`` (mode 0600) and uses it from then on.
        max_body_bytes: Largest request body; larger ones get 413.
        cap_sender: CAP ``sender`` of every message (make it globally unique, e.g. an e-mail address).
        cap_sender_name: CAP ``senderName``.
        roads_path: Roads GeoJSON for the closure feed; the shipped Kanda-basin roads when unset.
        default_rate_limit: Requests per minute a new partner may make.
        webhook_allow_insecure: Allow ``http`` webhook URLs and hosts on loopback or
            private addresses (tests and closed networks only).
        webhook_max_attempts: Attempts before a delivery goes to the dead letters (21 with the
            default backoff: 1 to 2 hours of retries).
        webhook_backoff_s: Delay after the first failed attempt; doubles each time.
        webhook_max_backoff_s: Ceiling of that delay.
        webhook_timeout_s: Deadline of one delivery attempt: DNS, connecting, TLS,
            sending and the partner's answer together.
        webhook_concurrency: Deliveries in flight at once, each to a different
            partner; partners whose last attempt was slow or failed hold at most half.
        shutdown_timeout_s: On SIGTERM, how long open requests and background threads
            get to finish before they are cancelled or left behind.
        header_timeout_s: A connection whose request line and headers are not
            complete this long after it opened (or after the first byte of its
            next request) is closed.
        body_timeout_s: A request body not received in full this long after its
            headers gets 408 and its connection is closed.
        sse_poll_s: How often a live stream looks for new messages.
        sse_heartbeat_s: Comment line sent on a quiet stream so proxies keep it open.
        sse_max_streams: Live streams one partner may hold open at once.
        login_failures_per_5min: Failed officer logins for one user name from one client address in
            5 minutes before that address may not try that user name for a while (429).
        login_attempts_per_client_per_minute: Login attempts one client address may make per minute.
        login_attempts_per_minute: Login attempts the API hashes per minute, from everyone.
        login_user_failures_per_5min: Failed logins for one user name, from every address, after which
            attempts on it are paced (``login_user_pacing_s``); never a lockout.
        login_user_pacing_s: Seconds between two attempts on a paced user name.
        login_hash_concurrency: Password hashes computed at once (each takes 19 MiB).
        login_hash_queue: Logins that may wait for a hash; more get 429 at once.
        route_check_deadline_s: Longest a route check may compute (from when a worker starts it); then 503.
        route_check_max_work: Most route positions x active areas near the route's bounding box.
        route_check_max_hits: Most active areas one route may meet.
        route_check_max_graph_edges: Most edges of a road graph sent for a detour (a two-way road counts once).
        route_check_max_graph_nodes: Most nodes of such a graph.
        route_check_workers: Threads that compute route checks (a pool of their own).
        route_check_queue: Route checks that may wait for a thread; more get 429.
        route_check_per_partner: Route checks one caller may have running or waiting at once (keep it
            below ``route_check_workers``, so that one caller cannot hold every worker).
        service_area: suibou's service area, ``[min_lon, min_lat, max_lon, max_lat]``; geometry outside it
            (routes, road graphs, officers' polygons) is refused with 422.
        trusted_proxies: Reverse proxies (IP addresses or networks) whose ``X-Forwarded-For`` is
            believed; by default none, and the connection's address is the client's.
        console_status_feed: Run the duty officer console's consumer of the status,
            fault, camera and score topics (with the alert consumer).
        console_warmup_records: On start, the console's consumer re-reads at most
            this many of the latest records of each partition to rebuild its view.
        console_history_hours: How far back each station's history reaches.
        console_max_streams: Streams (live, and one per drill) the console keeps;
            the least recently updated one is dropped first.
        console_catalogues: Station catalogue files or folders the console's map is
            drawn from; by default the bundled catalogues and the storm cache's.
        console_frame_roots: Folders the console may serve camera stills from; by
            default the storm cache (``<SUIBOU_HOME>/cache/storms``).
        ingest_max_readings: Most readings in one ``POST /v1/ingest/readings`` batch.
        ingest_max_body_bytes: Largest ingest batch body.
        ingest_timeout_s: Longest wait for Kafka to acknowledge a batch (and for its metadata).
        ingest_dedup_hours: How long accepted event ids are remembered (a retry within it is a duplicate).
        ingest_rate_limit_per_minute: Requests per minute one gateway may make.
        ingest_frame_roots: Folders a gateway's camera frames' ``image_uri`` may point into;
            none by default, which refuses camera frames over HTTP.
        job_status_feed: Follow the live job's heartbeats (``<prefix>.job.status``) with the alert consumer.
        job_not_seen_s: A live job without a heartbeat for this long is reported as not seen.
        job_behind_s: A running live job further behind the wall clock than this is reported as behind.
    """

    model_config = SettingsConfigDict(env_prefix="SUIBOU_ALERT_API_", extra="ignore", populate_by_name=True)

    consumer_group: Annotated[str, Field(min_length=1, max_length=249)] = "suibou-alert-api"
    poll_timeout_ms: Annotated[int, Field(ge=10, le=60_000)] = 1000
    connect_timeout_ms: Annotated[int, Field(ge=100, le=300_000)] = 5000
    max_poll_records: Annotated[int, Field(ge=1, le=10_000)] = 500
    unassigned_rejoin_s: Annotated[float, Field(ge=0.1, le=3600)] = 30.0
    unreachable_reconnect_s: Annotated[float, Field(ge=0.1, le=3600)] = 30.0
    retry_backoff_s: Annotated[float, Field(gt=0, le=300)] = 2.0
    dead_letter_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    admin_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SUIBOU_ADMIN_KEY", "SUIBOU_ALERT_API_ADMIN_KEY"))
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 4 * 1024 * 1024
    cap_sender: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\s,<&]+$")] = "suibou@localhost"
    cap_sender_name: Annotated[str, Field(min_length=1, max_length=256)] = "suibou 水防 river alerts"
    roads_path: Path | None = None
    default_rate_limit: Annotated[int, Field(ge=1, le=1_000_000)] = 600
    webhook_allow_insecure: bool = False
    webhook_max_attempts: Annotated[int, Field(ge=1, le=100)] = 21
    webhook_backoff_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    webhook_max_backoff_s: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    webhook_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    webhook_concurrency: Annotated[int, Field(ge=2, le=1024)] = 64
    shutdown_timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    header_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    body_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    sse_poll_s: Annotated[float, Field(gt=0, le=10)] = 0.5
    sse_heartbeat_s: Annotated[float, Field(gt=0, le=300)] = 15.0
    sse_max_streams: Annotated[int, Field(ge=1, le=100)] = 5
    login_failures_per_5min: Annotated[int, Field(ge=1, le=1000)] = 10
    login_attempts_per_client_per_minute: Annotated[int, Field(ge=1, le=10_000)] = 20
    login_attempts_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 120
    login_user_failures_per_5min: Annotated[int, Field(ge=1, le=100_000)] = 30
    login_user_pacing_s: Annotated[float, Field(ge=0, le=60)] = 2.0
    login_hash_concurrency: Annotated[int, Field(ge=1, le=16)] = 1
    login_hash_queue: Annotated[int, Field(ge=0, le=256)] = 4
    route_check_deadline_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    route_check_max_work: Annotated[int, Field(ge=1000, le=10**12)] = 5_000_000
    route_check_max_hits: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    route_check_max_graph_edges: Annotated[int, Field(ge=1, le=1_000_000)] = 20_000
    route_check_max_graph_nodes: Annotated[int, Field(ge=1, le=1_000_000)] = 20_000
    route_check_workers: Annotated[int, Field(ge=1, le=64)] = 4
    route_check_queue: Annotated[int, Field(ge=0, le=1000)] = 16
    route_check_per_partner: Annotated[int, Field(ge=1, le=100)] = 2
    service_area: tuple[float, float, float, float] = (122.0, 20.0, 154.0, 46.0)
    trusted_proxies: list[str] = Field(default_factory=list)
    console_status_feed: bool = True
    console_warmup_records: Annotated[int, Field(ge=0, le=1_000_000)] = 5000
    console_history_hours: Annotated[float, Field(gt=0, le=72)] = 24.0
    console_max_streams: Annotated[int, Field(ge=1, le=100)] = 8
    console_catalogues: list[Path] | None = None
    console_frame_roots: list[Path] | None = None
    ingest_max_readings: Annotated[int, Field(ge=1, le=10_000)] = 500
    ingest_max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 1024 * 1024
    ingest_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    ingest_dedup_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 72.0
    ingest_rate_limit_per_minute: Annotated[int, Field(ge=1, le=1_000_000)] = 600
    ingest_frame_roots: list[Path] | None = None
    job_status_feed: bool = True
    job_not_seen_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    job_behind_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0


    @field_validator("service_area")
    @classmethod
    def _area(cls, value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        west, south, east, north = value
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise ValueError("service_area must be min_lon,min_lat,max_lon,max_lat with min < max, in range")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        try:
            parse_networks(value)
        except ValueError as error:
            raise ValueError(f"trusted_proxies: {error}") from None
        return value


@functools.lru_cache(maxsize=1)
def get_api_settings() -> AlertApiSettings:
    return AlertApiSettings()


def admin_key_file(settings: Settings) -> Path:
    """Where a generated admin key is kept: ``<SUIBOU_HOME>/api/admin.key``."""
    return settings.home / "api" / "admin.key"


def resolve_admin_key(settings: Settings, api_settings: AlertApiSettings) -> str:
    """The admin key: ``SUIBOU_ADMIN_KEY``, else the generated key file (created on first use).

    Raises:
        ValueError: ``SUIBOU_ADMIN_KEY`` is shorter than 32 characters.
    """
    if api_settings.admin_key is not None:
        key = api_settings.admin_key.get_secret_value()
        if len(key) < MIN_ADMIN_KEY:
            raise ValueError(f"SUIBOU_ADMIN_KEY must be at least {MIN_ADMIN_KEY} characters")
        return key
    path = admin_key_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(32))
    log.warning("generated an admin key in %s (readable by this user only)", path)
    return path.read_text().strip()
