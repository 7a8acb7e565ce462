"""suibou.infra.flink without starting anything: options, state reports, refusals."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipelines.job import runner_options
from pipelines.ordered import BAG_WAITING_STATE
from suibou.drill import FlinkDrillJob
from suibou.infra import flink, flink_rest
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


def test_the_mini_cluster_config_fixes_network_memory_and_its_rest_port(tmp_path: Path) -> None:
    conf = flink._flink_conf(_settings(tmp_path, flink_job_port=28099))
    lines = dict(line.split(": ", 1) for line in conf.splitlines() if not line.startswith("#"))
    assert lines["rest.port"] == "28101"  # beside its job server's, where a drill reads its watermarks
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


class _FakeJobManager:
    """The few REST answers of a JobManager that a checkpointed drill reads, changed by the test."""

    END = flink_rest.END_OF_TIME_MS

    def __init__(self) -> None:
        self.watermark = 1_125_840_000_000
        self.counts = {"total": 5, "completed": 5, "failed": 0, "restored": 0}
        self.latest_completed = 5

    def answer(self, path: str) -> object:
        if path == "/jobs/overview":
            return {"jobs": [{"jid": "j1", "name": "drill-x", "state": "RUNNING", "start-time": 1},
                             {"jid": "j0", "name": "drill-x", "state": "CANCELED", "start-time": 0}]}
        if path == "/jobs/j1":
            return {"vertices": [{"id": "v0", "name": "Source: Impulse"}, {"id": "v1", "name": "[8]{FoldAreas}"}]}
        if path == "/jobs/j1/vertices/v1/watermarks":
            return [{"id": "0.currentInputWatermark", "value": str(self.watermark)},
                    {"id": "1.currentInputWatermark", "value": str(self.END + 1)}]
        if path == "/jobs/j1/checkpoints":
            return {"counts": self.counts, "latest": {"completed": {"id": self.latest_completed}}}
        return None


@pytest.fixture
def job_manager(monkeypatch: pytest.MonkeyPatch) -> _FakeJobManager:
    fake = _FakeJobManager()
    monkeypatch.setattr(flink_rest, "get", lambda address, path, timeout_s=3.0: fake.answer(path))
    return fake


def test_a_checkpointed_drill_ends_only_once_a_checkpoint_after_the_end_of_its_data_completes(
        tmp_path: Path, job_manager: _FakeJobManager) -> None:
    job = FlinkDrillJob(_settings(tmp_path, flink_master="jm:8081"), None, [], 60.0,  # type: ignore[arg-type]
                        job_name="drill-x")
    assert not job._data_through()  # a subtask is still in the storm
    job_manager.watermark = job_manager.END
    assert not job._data_through()  # at the end: checkpoint 6, the next one triggered, must flush the writers
    job_manager.counts["total"], job_manager.latest_completed = 6, 5
    assert not job._data_through()
    job_manager.counts["restored"] = 1  # restored from a checkpoint: the data comes again
    job_manager.watermark, job_manager.latest_completed = 1_125_840_000_000, 6
    assert not job._data_through()
    job_manager.watermark = job_manager.END
    assert not job._data_through()  # the end again: now checkpoint 7 must complete
    job_manager.counts["total"], job_manager.latest_completed = 7, 7
    assert job._data_through()


def test_the_end_of_data_is_never_read_from_a_job_that_does_not_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flink_rest, "get", lambda address, path, timeout_s=3.0: None)
    assert flink_rest.find_job("jm:8081", "drill-x") is None
    assert not flink_rest.at_end_of_data("jm:8081", "j1")
    job = FlinkDrillJob(_settings(tmp_path), None, [], 60.0, job_name="drill-x")  # type: ignore[arg-type]
    assert not job._data_through()
