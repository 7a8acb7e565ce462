"""Stop the pipeline in the middle of a storm, start it again: nothing lost, nothing twice.

Runs on the real broker and Prism. The same storm is also run once without a
stop; the stopped-and-resumed run must publish exactly the same scores and
alerts (same areas, times, levels, message types and sequence), each once.
"""

from __future__ import annotations

import collections
import datetime as dt
import time
import uuid

import pytest

from pipelines.job import JobConfig, fusion_pipeline, output_topics
from pipelines.recovery import plan_resume, resume_offsets
from replay_data import load_storm, plan_messages
from suibou import infra
from suibou.contracts import AlertEvent, ContractError, RainStatus, RiskScore, parse_event
from suibou.drill import snapshot_end_offsets
from suibou.infra.sdk_workers import sdk_worker_pool
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = pytest.mark.e2e

STORM = "suginami-2005-mini"


@pytest.fixture(scope="module")
def settings():
    settings = Settings(topic_prefix=f"test-restart-{uuid.uuid4().hex[:8]}")
    infra.up(settings)
    yield settings
    delete_topics(settings)


@pytest.fixture(scope="module")
def worker_pool():
    """Starts the harness processes of every job of this module; stops any left when the module ends."""
    with sdk_worker_pool() as address:
        yield address


def _producer(settings):
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", enable_idempotence=True)


def _plan(settings, producer, drill_id):
    topics = settings.topics
    partitions = {t: sorted(producer.partitions_for(t)) for t in topics.observation_topics.values()}
    return list(plan_messages(load_storm(STORM), topics, partitions, drill_id=drill_id))


def _send(producer, messages):
    for m in messages:
        producer.send(m.topic, value=m.value, key=m.key, partition=m.partition, timestamp_ms=m.timestamp_ms)
    producer.flush()


def _start(settings, worker_pool, drill_id, group_id, start_offsets, resume=None):
    fields = {"catalogue": load_storm(STORM).catalogue, "topics": settings.topics,
              "bootstrap_servers": settings.bootstrap_servers, "end_source": drill_id, "group_id": group_id}
    config = JobConfig.resumed(resume, **fields) if resume else JobConfig(start_offsets=start_offsets, **fields)
    return fusion_pipeline(settings, config, worker_pool).run()


def _outputs(settings, drill_id):
    """Every output of ``drill_id``, read until the topics stay quiet for two seconds."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    tps = [TopicPartition(t, p) for t in output_topics(settings.topics) for p in range(3)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    found, quiet_since = [], time.monotonic()
    while time.monotonic() - quiet_since < 2.0:
        batches = consumer.poll(timeout_ms=300)
        if any(batches.values()):
            quiet_since = time.monotonic()
        for batch in batches.values():
            for record in batch:
                try:
                    event = parse_event(record.value)
                except ContractError:
                    continue
                if event.drill_id == drill_id:
                    found.append(event)
    consumer.close()
    return found


def _summary(events, drill_id):
    scores = sorted((e.area_id, e.event_time, round(e.probability, 5)) for e in events if isinstance(e, RiskScore))
    alerts = sorted((e.alert_id.replace(drill_id, "D"), e.sequence, e.msg_type.value, int(e.level), e.event_time,
                     tuple(r.replace(drill_id, "D") for r in e.references))
                    for e in events if isinstance(e, AlertEvent))
    statuses = sorted((e.station_id, e.event_time, e.swi_mm, e.rain_24h_mm) for e in events
                      if isinstance(e, RainStatus))
    return scores, alerts, statuses


def test_a_resumed_pipeline_loses_nothing_and_repeats_nothing(settings, worker_pool):
    producer = _producer(settings)
    observation_topics = list(settings.topics.observation_topics.values())

    # The reference: the whole storm, no stop.
    reference = f"ref-{uuid.uuid4().hex[:6]}"
    result = _start(settings, worker_pool, reference, f"g-{reference}",
                    snapshot_end_offsets(settings, observation_topics))
    _send(producer, _plan(settings, producer, reference))
    result.wait_until_finish()

    # The same storm, stopped after its peak has passed and resumed.
    drill = f"cut-{uuid.uuid4().hex[:6]}"
    plan = _plan(settings, producer, drill)
    storm = load_storm(STORM)
    cut = storm.start + (storm.end - storm.start) * 0.6
    group = f"g-{drill}"
    first = _start(settings, worker_pool, drill, group, snapshot_end_offsets(settings, observation_topics))
    _send(producer, [m for m in plan if m.event_time <= cut and m.kind != "end"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        scored = [e.event_time for e in _outputs(settings, drill) if isinstance(e, RiskScore)]
        if scored and max(scored) >= cut - dt.timedelta(minutes=1):
            break
        time.sleep(1)
    first.cancel()
    time.sleep(2)

    resume = plan_resume(settings.bootstrap_servers, group, observation_topics, output_topics(settings.topics),
                         settings.topics.alerts, settings.topics.rain_status)
    assert resume.published_ids, "the stopped job had published nothing to fence"
    second = _start(settings, worker_pool, drill, group, resume.start_offsets, resume)
    _send(producer, [m for m in plan if m.event_time > cut or m.kind == "end"])
    second.wait_until_finish()
    producer.close()

    resumed = _outputs(settings, drill)
    ids = collections.Counter(e.event_id for e in resumed)
    twice = sorted(i for i, n in ids.items() if n > 1)
    assert not twice, f"{len(twice)} outputs published twice, e.g. {twice[:3]}"
    expected_scores, expected_alerts, expected_statuses = _summary(_outputs(settings, reference), reference)
    scores, alerts, statuses = _summary(resumed, drill)
    assert len(scores) == len(expected_scores)
    differing = sorted(set(scores) ^ set(expected_scores))
    assert scores == expected_scores, f"{len(differing)} scores differ, e.g. {differing[:6]}"
    assert alerts == expected_alerts
    assert statuses == expected_statuses  # rain totals and soil water index, continued exactly


def test_the_warm_up_span_is_rewound_on_every_input_topic(settings):
    """kafka-python's ``offsets_for_times`` answered None for the topics of partitions a consumer had been
    assigned before (when reading them took a fetch or two, as it does with a few hundred records), and a
    resumed job then started those topics at their end: a warm-up span and every record published while
    it was down, lost."""
    from kafka.structs import OffsetAndMetadata, TopicPartition

    producer = _producer(settings)
    topics = list(settings.topics.observation_topics.values())
    starts = snapshot_end_offsets(settings, topics)
    # Later than any storm of the module's other test, and in the past (the broker refuses the future).
    t0 = int((time.time() - 7200) * 1000)
    for topic in topics:
        for partition in range(3):
            for n in range(200):
                producer.send(topic, value=b"{}", partition=partition, timestamp_ms=t0 + n * 10_000)
    producer.flush()
    producer.close()
    group = f"g-warm-{uuid.uuid4().hex[:6]}"
    from kafka import KafkaConsumer

    committer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False)
    committer.commit({TopicPartition(t, p): OffsetAndMetadata(starts[(t, p)] + 40, "", -1)
                      for t in topics for p in range(3)})
    committer.close()

    resumed, since_ms = resume_offsets(settings.bootstrap_servers, group, topics, warm_up_s=300)

    assert since_ms == t0 + 90_000  # the last record read (the 40th, at 390 s) less five minutes
    assert resumed == {tp: offset + 9 for tp, offset in starts.items()}


def _alert_ids(settings, starts):
    from pipelines.recovery import read_published

    return read_published(settings.bootstrap_servers, starts)[0]


def test_a_writer_set_up_after_a_restore_does_not_send_what_the_job_already_sent(settings):
    """Flink restores a job from its last checkpoint and replays what followed: the same alerts come again
    under the same ids. A writer reading back from where the job's alerts began sends only the new ones."""
    from pipelines.kafka_io import KafkaMessage, PublishedLedger, _WriteFn

    topic = settings.topics.alerts
    infra.kafka.ensure_topics(settings, [topic])
    starts = snapshot_end_offsets(settings, [topic])

    def alert(n: int) -> KafkaMessage:
        return KafkaMessage(topic, b"area-1", f'{{"event_id": "restore-{n}"}}'.encode(), None, f"restore-{n}")

    def writer_sending(messages: list[KafkaMessage]) -> None:
        writer = _WriteFn(settings.bootstrap_servers, frozenset(), read_back_from=starts)
        writer.setup()
        writer.start_bundle()
        for message in messages:
            writer.process(message)
        writer.finish_bundle()
        writer.teardown()

    writer_sending([alert(1), alert(2)])  # before the checkpoint... and after it, before the crash
    writer_sending([alert(2), alert(3)])  # the restored job replays alert 2, then goes on
    writer_sending([alert(3), alert(4)])  # a later writer of the same process reads on from where it stopped

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, consumer_timeout_ms=3000)
    tps = [TopicPartition(t, p) for (t, p) in starts]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, starts[(tp.topic, tp.partition)])
    published = [record.key for record in consumer if b"restore-" in record.value]
    consumer.close()
    assert len(published) == 4
    assert _alert_ids(settings, starts) == {"restore-1", "restore-2", "restore-3", "restore-4"}
    assert PublishedLedger.of(settings.bootstrap_servers, starts) is PublishedLedger.of(
        settings.bootstrap_servers, dict(starts))
