"""Settings shared by every suibou process, read from ``SUIBOU_*`` variables.

Everything has an embedded default so that a fresh checkout runs with no
configuration: a local Kafka broker started by ``suibou infra up``, SQLite for
the alert store, and state under ``.suibou/`` in the project root.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Literal, get_args

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Process-wide configuration.

    Attributes:
        home: Folder for the broker's data, built tools, logs and caches.
        kafka_bootstrap: ``host:port`` of an existing Kafka cluster. When unset,
            suibou starts and uses its own single-node broker.
        kafka_port: Listener port of the embedded broker.
        kafka_controller_port: KRaft controller port of the embedded broker.
        topic_prefix: Prefix of every topic name, so that drills, tests and live
            operation can share one cluster without mixing streams.
        prism_path: A Prism runner binary to use instead of building one.
        database_url: Alert store; SQLite by default, ``postgresql://`` in production.
        api_host: Interface the alert API binds to.
        api_port: Port of the alert API.
        flink_job_port: Job service port of suibou's Flink job server (``suibou.infra.flink``).
        flink_master: ``host:port`` of a running Flink JobManager the job server submits
            to; unset: each job runs on an embedded mini-cluster in the job server.
        flink_rpc_port: JobManager RPC port of suibou's own Flink session cluster.
        flink_rest_port: REST (web UI) port of that session cluster.
        flink_parallelism: Parallelism of every operator of a job run on Flink.
        flink_checkpoint_ms: Flink checkpoint interval of a job (live or drill); 0: no checkpoints,
            so no recovery from one. Bundle finalisation, and with it the Kafka offset commits,
            happens only at completed checkpoints on Flink (docs/flink.md).
        flink_state_backend: ``rocksdb``, ``hashmap`` or empty (Flink's default, on the heap).
        flood_model: The flood model that scores every reach (``name/version``), live and in
            drills: one of :data:`FLOOD_MODELS`, each with the six targets of the alert rule.
    """

    model_config = SettingsConfigDict(env_prefix="SUIBOU_", extra="ignore")

    home: Path = PROJECT_ROOT / ".suibou"
    kafka_bootstrap: str | None = None
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    topic_prefix: str = "suibou"
    prism_path: Path | None = None
    database_url: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8765
    flink_job_port: int = 18099
    flink_master: str | None = None
    flink_rpc_port: int = 16123
    flink_rest_port: int = 18081
    flink_parallelism: int = 1
    flink_checkpoint_ms: int = 10_000
    flink_state_backend: str = ""
    flood_model: Literal["flood/3", "flood/4", "flood/5"] = "flood/4"

    @property
    def bootstrap_servers(self) -> str:
        """The Kafka cluster to talk to: the configured one, or the embedded broker."""
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def uses_embedded_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'alerts.db'}"

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)


@dataclasses.dataclass(frozen=True)
class Topics:
    """Kafka topic names, one per observation feed plus the pipeline's outputs."""

    prefix: str = "suibou"

    @property
    def rain(self) -> str:
        return f"{self.prefix}.obs.rain"

    @property
    def level(self) -> str:
        return f"{self.prefix}.obs.level"

    @property
    def camera(self) -> str:
        return f"{self.prefix}.obs.camera"

    @property
    def drone(self) -> str:
        return f"{self.prefix}.obs.drone"

    @property
    def grid(self) -> str:
        return f"{self.prefix}.obs.grid"

    @property
    def risk_scores(self) -> str:
        return f"{self.prefix}.risk.scores"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def faults(self) -> str:
        return f"{self.prefix}.faults"

    @property
    def rain_status(self) -> str:
        return f"{self.prefix}.status.rain"

    @property
    def level_status(self) -> str:
        return f"{self.prefix}.status.level"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}.dead-letter"

    @property
    def job_status(self) -> str:
        """Heartbeats of the live fusion job (:class:`suibou.contracts.JobStatus`)."""
        return f"{self.prefix}.job.status"

    @property
    def observation_topics(self) -> dict[str, str]:
        """Feed name -> topic, for every observation feed."""
        return {
            "rain": self.rain,
            "level": self.level,
            "camera": self.camera,
            "drone": self.drone,
            "grid": self.grid,
        }

    @property
    def all_topics(self) -> list[str]:
        return [*self.observation_topics.values(), self.rain_status, self.level_status, self.risk_scores,
                self.alerts, self.faults, self.dead_letter, self.job_status]


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


#: Flood models the alert rule can take (each predicts caution, evacuation and danger within 60 and 180 min).
FLOOD_MODELS: tuple[str, ...] = get_args(Settings.model_fields["flood_model"].annotation)
