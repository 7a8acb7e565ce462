"""Configuration of the alert API.

Process-wide settings (Kafka cluster, topics, database URL, bind address) come
from :class:`suibou.settings.Settings`; this module adds the few knobs that only
the alert API has, read from ``SUIBOU_ALERT_API_*`` variables.
"""

from __future__ import annotations

import functools
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from suibou.settings import Settings, get_settings

__all__ = ["AlertApiSettings", "Settings", "get_api_settings", "get_settings"]


class AlertApiSettings(BaseSettings):
    """Settings of the alert API's Kafka consumer.

    Attributes:
        consumer_group: Kafka consumer group of the alert consumer. Every API
            replica in one group shares the alert partitions; each replica
            needs its own database, or one shared database, to see every alert.
        poll_timeout_ms: Longest wait of one poll; also bounds how long a stop takes.
        connect_timeout_ms: Longest wait for the cluster when (re)connecting; a
            stop waits for it too while the cluster is down.
        max_poll_records: Most records stored (and committed) as one batch.
        retry_backoff_s: Pause before reconnecting after a Kafka or database error.
        dead_letter_timeout_s: Longest wait for the broker to acknowledge a dead letter.
    """

    model_config = SettingsConfigDict(env_prefix="SUIBOU_ALERT_API_", extra="ignore")

    consumer_group: Annotated[str, Field(min_length=1, max_length=249)] = "suibou-alert-api"
    poll_timeout_ms: Annotated[int, Field(ge=10, le=60_000)] = 1000
    connect_timeout_ms: Annotated[int, Field(ge=100, le=300_000)] = 5000
    max_poll_records: Annotated[int, Field(ge=1, le=10_000)] = 500
    retry_backoff_s: Annotated[float, Field(gt=0, le=300)] = 2.0
    dead_letter_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0


@functools.lru_cache(maxsize=1)
def get_api_settings() -> AlertApiSettings:
    return AlertApiSettings()
