"""Tests of the local infrastructure: the embedded Kafka broker and the Prism runner.

The ``e2e`` tests start a real broker (its jars are fetched with Maven on the
first run) and run real pipelines on Prism (built with Go on the first run, a
few minutes). The broker under test gets its own home folder and free ports,
so it never touches a broker a developer has running; the Prism binary is the
project's shared one, so it is built once for tests and ``suibou infra up``.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_stream as teststream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import FixedWindows, TimestampedValue
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

import suibou.infra
from suibou.infra import kafka, prism
from suibou.settings import Settings


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _isolated_settings(home: Path, **overrides: Any) -> Settings:
    # Explicit values win over SUIBOU_* variables, so a developer's environment
    # (e.g. an external cluster) cannot redirect these tests.
    values: dict[str, Any] = {
        "home": home,
        "kafka_bootstrap": None,
        "kafka_port": _free_port(),
        "kafka_controller_port": _free_port(),
        "topic_prefix": f"test-{uuid.uuid4().hex[:8]}",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A running embedded broker in a scratch home, stopped after the module."""
    settings = _isolated_settings(tmp_path_factory.mktemp("suibou-home"))
    kafka.ensure_running(settings)
    yield settings
    kafka.stop(settings)
    assert kafka.status(settings) == "stopped"


@pytest.fixture(scope="session")
def prism_settings() -> Settings:
    """The project's own settings, so the Prism binary is shared with `suibou infra up`."""
    return Settings()


# ----------------------------------------------------------------- without services


def test_cluster_id_looks_like_a_kafka_uuid() -> None:
    for _ in range(50):
        cluster_id = kafka._random_cluster_id()
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    settings = _isolated_settings(tmp_path, kafka_port=19999, kafka_controller_port=19998)
    paths = kafka.KafkaPaths.from_settings(settings)
    props = dict(
        line.split("=", 1)
        for line in kafka._server_properties(settings, paths).splitlines()
        if line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19998"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19999,CONTROLLER://127.0.0.1:19998"
    assert props["log.dirs"] == str(tmp_path / "kafka" / "data")
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"


def test_fresh_home_reports_stopped(tmp_path: Path) -> None:
    settings = _isolated_settings(tmp_path)
    assert kafka.status(settings) == "stopped"
    kafka.stop(settings)  # Stopping a broker that never ran is a no-op.
    assert suibou.infra.status(settings)["kafka"] == "stopped"


def test_busy_port_is_reported_before_anything_is_installed(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        settings = _isolated_settings(tmp_path, kafka_port=squatter.getsockname()[1])
        with pytest.raises(kafka.KafkaInfraError, match="already in use"):
            kafka.ensure_running(settings)
    assert not (tmp_path / "kafka" / "libs").exists()


def test_a_broker_recovering_its_logs_is_given_time_while_it_writes(tmp_path: Path) -> None:
    """The start-up timeout counts from the broker's last log line, not from its start."""
    settings = _isolated_settings(tmp_path, kafka_port=_free_port())
    paths = kafka.KafkaPaths.from_settings(settings)
    paths.log.parent.mkdir(parents=True, exist_ok=True)
    paths.log.write_text("")
    stand_in = subprocess.Popen(["sleep", "30"])  # alive, but never serves

    def recover() -> None:
        for n in range(1, 11):
            with open(paths.log, "a") as log:
                log.write(f"INFO Completed load of Log ... ({n}/10 completed in /data) (kafka.log.LogManager)\n")
            time.sleep(0.2)

    writer = threading.Thread(target=recover)
    started = time.monotonic()
    writer.start()
    try:
        with pytest.raises(kafka.KafkaInfraError, match="nothing new in its log for 1s") as failure:
            kafka._wait_ready(settings, paths, stand_in.pid, timeout_s=1.0, log_start=0)
    finally:
        writer.join()
        stand_in.kill()
        stand_in.wait()
    waited = time.monotonic() - started
    assert 2.5 < waited < 6.0  # two seconds of writing, then one quiet second
    assert "10/10 completed" in str(failure.value)


def test_external_cluster_is_only_checked(tmp_path: Path) -> None:
    settings = _isolated_settings(tmp_path, kafka_bootstrap=f"127.0.0.1:{_free_port()}")
    assert kafka.status(settings).startswith("external")
    with pytest.raises(kafka.KafkaInfraError, match="does not answer"):
        kafka.ensure_running(settings, timeout_s=2)
    with pytest.raises(kafka.KafkaInfraError, match="cannot reach Kafka"):
        kafka.ensure_topics(settings, ["anything"], timeout_s=2)
    kafka.stop(settings)
    assert not (tmp_path / "kafka").exists()


def test_prism_override_is_used_as_given(tmp_path: Path) -> None:
    fake = tmp_path / "prism"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    settings = _isolated_settings(tmp_path, prism_path=fake)
    assert prism.ensure_prism(settings) == fake
    assert f"--prism_location={fake}" in prism.prism_pipeline_options(settings)


def test_prism_override_must_be_executable(tmp_path: Path) -> None:
    settings = _isolated_settings(tmp_path, prism_path=tmp_path / "missing")
    with pytest.raises(prism.PrismBuildError, match="not an executable"):
        prism.ensure_prism(settings)


def test_prism_binary_is_named_after_the_beam_version(tmp_path: Path) -> None:
    settings = _isolated_settings(tmp_path)
    assert prism.prism_binary_path(settings).name == f"prism-{beam.__version__}"


def test_prism_is_built_from_the_matching_go_release_tag() -> None:
    assert prism.go_module_version("2.77.0") == "v2.77.0"
    assert prism.go_module_version("2.77.0rc2") == "v2.77.0-RC2"
    with pytest.raises(prism.PrismBuildError, match="not a release"):
        prism.go_module_version("2.78.0.dev0")


# -------------------------------------------------------------------- Kafka, for real


@pytest.mark.e2e
def test_broker_round_trip(broker: Settings) -> None:
    topic = f"{broker.topic_prefix}.round-trip"
    assert kafka.ensure_topics(broker, [topic]) == [topic]
    assert kafka.ensure_topics(broker, [topic]) == []  # Idempotent.

    bootstrap = broker.bootstrap_servers
    sent = {f"gauge-{i}".encode(): f"level={i}".encode() for i in range(30)}
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value in sent.items():
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{broker.topic_prefix}.reader",
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    received: dict[bytes, bytes] = {}
    partitions: set[int] = set()
    try:
        for message in consumer:
            received[message.key] = message.value
            partitions.add(message.partition)
            if len(received) == len(sent):
                break
    finally:
        consumer.close()
    assert received == sent
    # Keys spread over the topic's 3 partitions, so consumer assignment works too.
    assert len(partitions) > 1


@pytest.mark.e2e
def test_ensure_running_reuses_the_running_broker(broker: Settings) -> None:
    status = kafka.status(broker)
    assert status.startswith("running")
    started = time.monotonic()
    assert kafka.ensure_running(broker) == broker.bootstrap_servers
    assert time.monotonic() - started < 10
    assert kafka.status(broker) == status  # Same pid: nothing was restarted.


@pytest.mark.e2e
def test_up_creates_every_topic(broker: Settings, prism_settings: Settings) -> None:
    binary = prism.ensure_prism(prism_settings)
    settings = broker.model_copy(update={"prism_path": binary})
    assert suibou.infra.up(settings) == (broker.bootstrap_servers, binary)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        described = {t["name"]: t for t in admin.describe_topics(broker.topics.all_topics)}
    finally:
        admin.close()
    assert set(described) == set(broker.topics.all_topics)
    assert all(len(t["partitions"]) == 3 for t in described.values())


@pytest.mark.e2e
def test_stop_and_restart_keeps_data(broker: Settings) -> None:
    topic = f"{broker.topic_prefix}.survives-restart"
    kafka.ensure_topics(broker, [topic])
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    producer.send(topic, b"kept").get(timeout=30)
    producer.close()
    paths = kafka.KafkaPaths.from_settings(broker)

    kafka.stop(broker)
    assert kafka.status(broker) == "stopped"
    assert not paths.pid_file.exists()
    # A controlled shutdown leaves this marker, so the next start skips log recovery.
    assert (paths.data / ".kafka_cleanshutdown").exists()

    kafka.ensure_running(broker)
    assert kafka.status(broker).startswith("running")
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    try:
        values = [message.value for message in consumer]
    finally:
        consumer.close()
    assert values == [b"kept"]


# --------------------------------------------------------------------- Prism, for real


class _WindowedGroup(beam.DoFn):
    """Emits (key, window start, sorted values) for each grouped window pane."""

    def process(self, element, window=beam.DoFn.WindowParam):
        key, values = element
        yield key, int(window.start), sorted(values)


@pytest.mark.e2e
def test_prism_runs_a_streaming_windowed_pipeline(prism_settings: Settings) -> None:
    options = PipelineOptions([*prism.prism_pipeline_options(prism_settings), "--streaming"])
    # Two gauges' readings in event time; the second batch arrives after the
    # watermark passed the first 10 s window, so it lands in the next one.
    events = (
        teststream.TestStream()
        .advance_watermark_to(0)
        .add_elements(
            [
                TimestampedValue(("gauge-a", 1), 1),
                TimestampedValue(("gauge-a", 2), 5),
                TimestampedValue(("gauge-b", 4), 7),
            ]
        )
        .advance_watermark_to(10)
        .add_elements([TimestampedValue(("gauge-a", 8), 12)])
        .advance_watermark_to_infinity()
    )
    started = time.monotonic()
    with beam.Pipeline(options=options) as pipeline:
        panes = (
            pipeline
            | events
            | beam.WindowInto(FixedWindows(10))
            | beam.GroupByKey()
            | beam.ParDo(_WindowedGroup())
        )
        assert_that(
            panes,
            equal_to([("gauge-a", 0, [1, 2]), ("gauge-b", 0, [4]), ("gauge-a", 10, [8])]),
        )
    print(f"Prism streaming pipeline ran in {time.monotonic() - started:.2f}s")
