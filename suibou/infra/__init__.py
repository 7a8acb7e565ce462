"""Local infrastructure: the Kafka broker and the Prism runner suibou's pipelines need.

The Flink job server (:mod:`suibou.infra.flink`) is built and started on demand,
by the first job run with ``--runner flink``; :func:`down` stops it and
:func:`status` reports it.

On a fresh machine :func:`up` installs and starts everything (Kafka jars through
Maven, Prism built with Go; both only the first time) and creates the topics.
It is idempotent: running it again reuses the running broker and the built
runner. :func:`down` stops the broker; Prism needs no stopping, since Beam
starts and stops it with each pipeline.
"""

from __future__ import annotations

import sys
from pathlib import Path

from suibou.infra import flink, flink_cluster, kafka, prism
from suibou.settings import Settings, get_settings

__all__ = ["down", "flink", "kafka", "prism", "status", "up"]


def up(settings: Settings | None = None) -> tuple[str, Path]:
    """Starts (or reuses) Kafka, creates suibou's topics and makes sure Prism is built.

    Args:
        settings: Defaults to the process-wide settings.

    Returns:
        The Kafka bootstrap servers and the Prism binary's path.
    """
    settings = settings or get_settings()
    bootstrap = kafka.ensure_running(settings)
    kafka.ensure_topics(settings, settings.topics.all_topics)
    prism_path = prism.ensure_prism(settings)
    print(
        f"[suibou] infrastructure up: Kafka {bootstrap}, Prism {prism_path}",
        file=sys.stderr,
        flush=True,
    )
    return bootstrap, prism_path


def down(settings: Settings | None = None) -> None:
    """Stops suibou's Flink job servers and session cluster, and the embedded Kafka broker.

    Args:
        settings: Defaults to the process-wide settings.
    """
    settings = settings or get_settings()
    flink.stop(settings)
    flink.stop(flink_cluster.job_server_settings(settings))
    flink_cluster.stop_session_cluster(settings)
    kafka.stop(settings)


def status(settings: Settings | None = None) -> dict[str, str]:
    """Reports the state of each component without starting or building anything.

    Args:
        settings: Defaults to the process-wide settings.

    Returns:
        Component name -> human-readable state.
    """
    settings = settings or get_settings()
    if settings.prism_path is not None:
        prism_state = f"override {settings.prism_path}"
    else:
        binary = prism.prism_binary_path(settings)
        prism_state = f"built {binary}" if binary.is_file() else f"not built yet ({binary})"
    state = {"kafka": kafka.status(settings), "prism": prism_state, "flink": flink.status(settings)}
    cluster = flink_cluster.status(settings)
    if cluster != "stopped":
        state["flink cluster"] = cluster
        state["flink (cluster)"] = flink.status(flink_cluster.job_server_settings(settings))
    return state
