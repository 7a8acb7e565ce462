"""The fusion job: Kafka observations -> risk scores, alerts and dead letters on Kafka.

``parse_args`` is separate from ``run`` so the command line can be tested on its
own; ``build`` wires the stages so tests can feed them from a TestStream.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState

from pipelines.alerts import AreaAlertState, reach_areas
from pipelines.areas import ALERTS, FAULTS, LEVEL_STATUS, RAIN_TOTALS, SCORES, FoldAreas, area_fold
from pipelines.cameras import ReadRiverCameras
from pipelines.drones import JoinDroneObservations
from pipelines.faults import SILENCE_AFTER_S, WatchGauges
from pipelines.gauges import level_status, rain_status
from pipelines.grids import SampleRainGrids
from pipelines.ingest import CLOCK, ParseObservations
from pipelines.kafka_io import KafkaMessage, KafkaReadConfig, ReadFromKafka, WriteToKafka
from pipelines.ordered import DEAD_LETTER, FoldPace, part_label
from pipelines.recovery import ResumePlan
from suibou.catalogue import StationCatalogue
from suibou.contracts import DeadLetter, Event
from suibou.kafka_offsets import list_offsets
from suibou.settings import Settings, Topics

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class JobConfig:
    """What the job needs besides runner options.

    Attributes:
        catalogue: Stations, thresholds and reaches.
        topics: Topic names.
        bootstrap_servers: Kafka cluster.
        end_source: Ends the job at this drill's end-of-stream markers (None: run forever).
        start_offsets: Explicit ``(topic, partition) -> offset`` starts.
        group_id: Consumer group for committed offsets.
        hold_s: Hysteresis hold before an alert level is lowered.
        max_lateness_s: Out-of-order tolerance before events are dead-lettered.
        fold_grain_s: 0 (live, paced drills): every stage folds an event as soon
            as the watermark passes it. A drill replayed as fast as possible
            folds a grain of event time at a time instead: the same results, in
            far fewer bundles (:class:`pipelines.ordered.FoldPace`).
        fold_on_arrival_s: Live: readings stamped within this many seconds of
            the wall clock are folded as they arrive, in order per key, rather
            than when the watermark passes them (0: always wait, as drills do).
            The gauge watchdog always follows the watermark.
        silence_after_s: A catalogued gauge not heard from for this long of
            stream time is reported silent.
        fold_shards: State keys per stream of the area stage (see
            :func:`pipelines.ordered.shard_of`).
        flood_model: ``name/version`` of the model that scores every reach
            (``suibou.settings.Settings.flood_model``).
        alerts_from: Where the job's alerts begin on the alerts topic
            (topic, partition: offset). Its alert writers read back what was
            sent from there on and never send it again, for runners that restore
            a job from a checkpoint. None: not read back (Prism); on Flink,
            :func:`fusion_pipeline` sets it to the topic's end when the job starts.
    """

    catalogue: StationCatalogue
    topics: Topics
    bootstrap_servers: str
    end_source: str | None = None
    start_offsets: Mapping[tuple[str, int], int] | None = None
    group_id: str = "suibou-pipeline"
    hold_s: float = 1800.0
    max_lateness_s: float = 600.0
    fold_grain_s: float = 0.0
    fold_on_arrival_s: float = 0.0
    silence_after_s: float = SILENCE_AFTER_S
    fold_shards: int = 4
    flood_model: str = "flood/4"
    already_published: frozenset[str] = frozenset()
    open_alerts: Mapping[str, AreaAlertState] = dataclasses.field(default_factory=dict)
    tank_seeds: Mapping[str, tuple[tuple[float, float, float], int]] = dataclasses.field(default_factory=dict)
    alerts_from: Mapping[tuple[str, int], int] | None = None

    @classmethod
    def resumed(cls, plan: ResumePlan, **fields) -> JobConfig:
        """A config that continues a stopped job (see :mod:`pipelines.recovery`)."""
        return cls(start_offsets=plan.start_offsets, already_published=plan.published_ids,
                   open_alerts=plan.open_alerts, tank_seeds=plan.tank_seeds, **fields)


@dataclasses.dataclass(frozen=True)
class JobOutputs:
    """What the job produces, each output as the PCollections of the stages that make it.

    They are kept apart, not flattened: Prism (2.77) starts a new stage at the
    consumer of every Flatten, so one Kafka writer behind a Flatten of all the
    outputs would send every output message through the runner once more. Each
    part gets its own writer, fused into the stage that produced it.
    """

    rain_status: beam.PCollection
    level_status: beam.PCollection
    scores: tuple[beam.PCollection, ...]
    alerts: beam.PCollection
    faults: tuple[beam.PCollection, ...]
    dead_letters: tuple[beam.PCollection, ...]


def output_message(topic: str, event: Event) -> KafkaMessage:
    """An output keyed by its area or station, stamped with its event time and id."""
    return KafkaMessage(topic, event.key.encode(), event.to_json(), int(event.event_time.timestamp() * 1000),
                        event.event_id)


def dead_letter_message(topic: str, dead: DeadLetter) -> KafkaMessage:
    key = f"{dead.source_topic}:{dead.source_partition}" if dead.source_topic else dead.stage
    return KafkaMessage(topic, key.encode(), dead.to_json())


def build_stages(records: beam.PCollection, config: JobConfig) -> JobOutputs:
    """Wires every stage from raw records to scores, alerts and dead letters."""
    from models.runtime import EXPECTED_FEATURES

    topic_feeds = {topic: feed for feed, topic in config.topics.observation_topics.items()}
    pace = FoldPace(config.fold_grain_s, config.fold_on_arrival_s)
    parsed = records | "ParseObservations" >> ParseObservations(topic_feeds, config.catalogue, config.end_source)
    # Silence is judged on the stream's clock, never on arrival: a gauge is
    # silent only once the watermark says nothing older can still come.
    watchdog = {"rain": parsed.rain, "level": parsed.level, "clock": parsed[CLOCK]} | "WatchGauges" >> WatchGauges(
        config.catalogue, silence_after_s=config.silence_after_s, max_lateness_s=config.max_lateness_s,
        pace=FoldPace(grain_s=config.fold_grain_s))
    cameras = parsed.camera | "ReadRiverCameras" >> ReadRiverCameras(config.catalogue)
    grids = parsed.grid | "SampleRainGrids" >> SampleRainGrids(
        config.catalogue, config.max_lateness_s, pace=pace)
    drones = parsed.drone | "JoinDroneObservations" >> JoinDroneObservations(config.catalogue)
    flood_model = config.flood_model
    fold = area_fold(config.catalogue, EXPECTED_FEATURES[flood_model], reach_areas(config.catalogue),
                     hold_s=config.hold_s, open_alerts=config.open_alerts, tank_seeds=config.tank_seeds,
                     flood_model=flood_model)
    areas = {"rain": parsed.rain, "level": parsed.level, "faults": watchdog.out, "cameras": cameras.out,
             "grids": grids["out"], "drones": drones.out} | "FoldAreas" >> FoldAreas(
        fold, config.max_lateness_s, pace=pace, shards=config.fold_shards)
    dead_letters = (parsed[DEAD_LETTER], watchdog[DEAD_LETTER], areas[DEAD_LETTER], cameras[DEAD_LETTER],
                    grids[DEAD_LETTER], drones[DEAD_LETTER])
    return JobOutputs(
        rain_status=areas[RAIN_TOTALS] | "RainStatus" >> beam.Map(rain_status),
        level_status=areas[LEVEL_STATUS] | "LevelStatus" >> beam.Map(level_status),
        scores=(areas[SCORES],), alerts=areas[ALERTS], faults=(areas[FAULTS], watchdog.out),
        dead_letters=dead_letters,
    )


def build(pipeline: beam.Pipeline, config: JobConfig) -> JobOutputs:
    """The whole job between its Kafka edges."""
    read_config = KafkaReadConfig(
        bootstrap_servers=config.bootstrap_servers, group_id=config.group_id, end_source=config.end_source,
    )
    records = pipeline | "ReadObservations" >> ReadFromKafka(
        read_config, tuple(config.topics.observation_topics.values()), config.start_offsets
    )
    outputs = build_stages(records, config)
    topics = config.topics
    writer = WriteToKafka(config.bootstrap_servers, config.already_published)
    # Alerts are never sent twice, even by a job the runner restores from a checkpoint.
    alert_writer = WriteToKafka(config.bootstrap_servers, config.already_published, config.alerts_from)

    def write(label: str, parts: tuple[beam.PCollection, ...], to_message, sink: WriteToKafka = writer) -> None:
        for index, part in enumerate(parts):
            (part | part_label(f"{label}Messages", index, parts) >> beam.Map(to_message)
             | part_label(f"Write{label}", index, parts) >> sink)

    write("RainStatus", (outputs.rain_status,), lambda s: output_message(topics.rain_status, s))
    write("LevelStatus", (outputs.level_status,), lambda s: output_message(topics.level_status, s))
    write("Score", outputs.scores, lambda s: output_message(topics.risk_scores, s))
    write("Alert", (outputs.alerts,), lambda a: output_message(topics.alerts, a), alert_writer)
    write("Fault", outputs.faults, lambda f: output_message(topics.faults, f))
    write("DeadLetter", outputs.dead_letters, lambda d: dead_letter_message(topics.dead_letter, d))
    return outputs


def end_offsets(bootstrap_servers: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    """The next offset of every partition of ``topics``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers)
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        return {(tp.topic, tp.partition): offset for tp, offset in list_offsets(consumer, partitions).items()}
    finally:
        consumer.close()


def output_topics(topics: Topics) -> list[str]:
    """Every topic the job publishes with deterministic ids."""
    return [topics.rain_status, topics.level_status, topics.risk_scores, topics.alerts, topics.faults]


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Splits suibou's own options from Beam pipeline options."""
    parser = argparse.ArgumentParser(prog="suibou pipeline", description=__doc__)
    parser.add_argument("--catalogue", default="kanda-basin", help="station catalogue name or JSON path")
    parser.add_argument("--end-source", default=None, help="stop at this drill's end-of-stream markers")
    parser.add_argument("--start-offsets", default=None,
                        help='JSON {"topic:partition": offset} to start from (default: resume from the '
                             "group's committed offsets, re-reading a warm-up span)")
    parser.add_argument("--group-id", default="suibou-pipeline")
    parser.add_argument("--hold-minutes", type=float, default=30.0, help="hysteresis before lowering a level")
    parser.add_argument("--runner", default="prism", choices=("prism", "flink"))
    return parser.parse_known_args(argv)


def decode_start_offsets(text: str | None) -> dict[tuple[str, int], int] | None:
    """``{"topic:partition": offset}`` -> ``{(topic, partition): offset}``.

    Examples:
        >>> decode_start_offsets('{"suibou.obs.rain:2": 17}')
        {('suibou.obs.rain', 2): 17}
    """
    if not text:
        return None
    decoded = {}
    for name, offset in json.loads(text).items():
        topic, _, partition = name.rpartition(":")
        decoded[(topic, int(partition))] = int(offset)
    return decoded


def runner_options(settings: Settings, runner: str, worker_pool: str | None = None,
                   job_endpoint: str | None = None) -> list[str]:
    """Beam options for a streaming run on Prism or on Flink.

    ``worker_pool``, ``job_endpoint``: see :func:`suibou.infra.prism.prism_pipeline_options`.
    ``"flink"`` submits to suibou's Flink job server (started if needed; or to
    ``job_endpoint``), with the parallelism, checkpointing and state backend of
    ``settings`` (:func:`suibou.infra.flink.pipeline_options`).
    """
    if runner == "prism":
        from suibou.infra.prism import prism_pipeline_options

        return [*prism_pipeline_options(settings, worker_pool, job_endpoint), "--streaming"]
    if runner == "flink":
        from suibou.infra.flink import pipeline_options

        return pipeline_options(settings, worker_pool, job_endpoint=job_endpoint)  # --streaming included
    raise ValueError(f"unknown runner {runner!r}")


def fusion_pipeline(settings: Settings, config: JobConfig, worker_pool: str, runner: str = "prism",
                    options: Sequence[str] = (), job_endpoint: str | None = None) -> beam.Pipeline:
    """The fusion job for ``config``, built and ready to run, as drills and the live job run it.

    Each stateful stage is given an SDK harness process of its own from
    ``worker_pool`` (see :mod:`pipelines.harness`), which must serve until the
    job has ended.

    Args:
        settings: Kafka and the runner binaries.
        config: What the job reads, writes and knows.
        worker_pool: Address of a running :func:`suibou.infra.sdk_workers.sdk_worker_pool`.
        runner: ``"prism"`` or ``"flink"``.
        options: Further Beam options, such as ``--job_name``.
        job_endpoint: A job service already running (the live job's own Prism).
    """
    from pipelines.harness import spread_stages

    if runner == "flink" and config.alerts_from is None:
        # Flink restores a failed job from its last checkpoint and replays what followed it:
        # the alert writers read back what the job has sent since it began (see WriteToKafka).
        config = dataclasses.replace(config, alerts_from=end_offsets(config.bootstrap_servers, [config.topics.alerts]))
    pipeline = beam.Pipeline(options=PipelineOptions(
        [*runner_options(settings, runner, worker_pool, job_endpoint), *options]))
    build(pipeline, config)
    spread_stages(pipeline)
    return pipeline


def run(argv: Sequence[str] | None = None, settings: Settings | None = None) -> None:
    """Runs the job until it is stopped, or until the drill named by --end-source ends."""
    from pipelines.recovery import plan_resume
    from suibou.infra.sdk_workers import sdk_worker_pool
    from suibou.settings import get_settings

    settings = settings or get_settings()
    known, beam_args = parse_args(argv)
    topics = settings.topics
    start_offsets = decode_start_offsets(known.start_offsets)
    fields = {
        "catalogue": StationCatalogue.load(known.catalogue),
        "topics": topics,
        "bootstrap_servers": settings.bootstrap_servers,
        "end_source": known.end_source,
        "group_id": known.group_id,
        "hold_s": known.hold_minutes * 60,
        "flood_model": settings.flood_model,
    }
    if start_offsets is None:
        # A restarted job continues where the last one stopped (see pipelines.recovery).
        config = JobConfig.resumed(plan_resume(
            settings.bootstrap_servers, known.group_id, list(topics.observation_topics.values()),
            output_topics(topics), topics.alerts, topics.rain_status), **fields)
    else:
        config = JobConfig(start_offsets=start_offsets, **fields)
    # The harnesses' own logs (and a lost runner's gRPC errors) go to a file, as the supervisor's do.
    harness_log = settings.home / "logs" / "pipeline-harness.log"
    print(f"[suibou] the job's SDK harnesses log to {harness_log}", file=sys.stderr, flush=True)
    job_name = f"suibou-pipeline-{known.group_id}".lower()
    with sdk_worker_pool(harness_log) as worker_pool, _terminate_as_interrupt():
        result = fusion_pipeline(settings, config, worker_pool, known.runner,
                                 [f"--job_name={job_name}", *beam_args]).run()
        try:
            result.wait_until_finish()
        finally:
            # The job's harnesses are this process's: a job left running without them would fail,
            # and on Flink be restarted again and again.
            if not PipelineState.is_terminal(result.state):
                print("[suibou] stopping the job", file=sys.stderr, flush=True)
                if known.runner == "flink":
                    from suibou.infra import flink_rest

                    flink_rest.stop_job(settings, result, job_name)
                else:
                    result.cancel()


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager's stop) ends :func:`run` as Ctrl-C does, through its clean-up."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # only the main thread takes signals
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
