"""suibou.infra.flink without starting anything: options, state reports, refusals."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipelines.job import runner_options
from pipelines.ordered import BAG_WAITING_STATE
from suibou.infra import flink
from suibou.settings import Settings


def _settings(tmp_path: Path, **fields) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(home=tmp_path, **fields)


def test_a_fresh_home_reports_the_job_server_not_built(tmp_path: Path) -> None:
    assert flink.status(_settings(tmp_path)).startswith("not built yet")
    assert not flink.is_installed(_settings(tmp_path))


def test_options_for_a_given_job_service_start_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path, flink_parallelism=2, flink_checkpoint_ms=5000, flink_state_backend="rocksdb")
    options = runner_options(settings, "flink", "127.0.0.1:5000", job_endpoint="localhost:1")
    assert options[:5] == ["--runner=PortableRunner", "--job_endpoint=localhost:1", "--environment_type=EXTERNAL",
                           "--environment_config=127.0.0.1:5000", "--streaming"]
    assert "--parallelism=2" in options
    # Ordered-list state is not served by the portable Flink runner: the folds use bags.
    assert f"--experiments={BAG_WAITING_STATE}" in options
    assert "--checkpointing_interval=5000" in options and "--finish_bundle_before_checkpointing" in options
    assert "--state_backend=rocksdb" in options
    assert f"--state_backend_storage_path=file://{tmp_path / 'flink' / 'checkpoints'}" in options
    assert not (tmp_path / "flink").exists()


def test_no_checkpoint_options_when_checkpointing_is_off(tmp_path: Path) -> None:
    options = flink.pipeline_options(_settings(tmp_path, flink_checkpoint_ms=0), job_endpoint="localhost:1")
    assert "--environment_type=LOOPBACK" in options
    assert not [o for o in options if "checkpoint" in o]


def test_the_mini_cluster_config_fixes_network_memory_and_a_free_web_port(tmp_path: Path) -> None:
    conf = flink._flink_conf(_settings(tmp_path))
    lines = dict(line.split(": ", 1) for line in conf.splitlines() if not line.startswith("#"))
    assert lines["rest.port"] == "0"
    # Flink refuses a TaskManager whose network memory is a range.
    assert lines["taskmanager.memory.network.min"] == lines["taskmanager.memory.network.max"]
    assert lines["state.checkpoints.dir"] == f"file://{tmp_path / 'flink' / 'checkpoints'}"


def test_a_busy_job_port_is_reported_before_anything_is_built(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(flink.FlinkInfraError, match="in use"):
            flink.ensure_job_server(_settings(tmp_path, flink_job_port=port))
    assert not (tmp_path / "flink" / "libs").exists()


def test_the_pom_builds_the_runner_with_the_job_service_from_sources() -> None:
    pom = flink._resource_text("flink-pom.xml")
    assert "<artifactId>beam-runners-flink-1.19</artifactId>" in pom
    assert "<beam.version>2.70.0</beam.version>" in pom
    assert "<classifier>sources</classifier>" in pom and "<job.service.version>2.65.0</job.service.version>" in pom
