"""Which SDK harness process runs which stage (pipelines.harness, suibou.infra.sdk_workers)."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import PipelineVisitor
from apache_beam.portability.api import metrics_pb2

from pipelines.harness import _is_stateful, _runner_implemented, harness_process, spread_stages
from pipelines.job import JobConfig, build
from suibou.catalogue import StationCatalogue
from suibou.infra.sdk_workers import _PrefixedShortIds
from suibou.settings import Settings


def _job() -> beam.Pipeline:
    config = JobConfig(catalogue=StationCatalogue.load("kanda-basin"), topics=Settings().topics,
                       bootstrap_servers="127.0.0.1:1", end_source="drill-x", start_offsets={}, group_id="g")
    pipeline = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    build(pipeline, config)
    return pipeline


class _Leaves(PipelineVisitor):
    def __init__(self) -> None:
        self.leaves = []

    def visit_transform(self, applied) -> None:  # type: ignore[no-untyped-def]
        self.leaves.append(applied)


def _leaves(pipeline: beam.Pipeline) -> list:
    visitor = _Leaves()
    pipeline.visit(visitor)
    return visitor.leaves


def test_every_fold_gets_a_process_of_its_own_and_stateless_transforms_follow_their_input():
    pipeline = _job()
    placed = spread_stages(pipeline)
    leaves = _leaves(pipeline)

    stateful = [leaf for leaf in leaves if _is_stateful(leaf)]
    assert placed == len(stateful) == 3
    assert len({harness_process(leaf) for leaf in stateful}) == 3
    assert None not in {harness_process(leaf) for leaf in stateful}

    for leaf in leaves:
        if _is_stateful(leaf) or _runner_implemented(leaf):
            continue
        producers = [value.producer for value in leaf.main_inputs.values() if not _runner_implemented(value.producer)]
        for producer in producers:
            # Else Prism could not fuse the two and would put a stage between them.
            assert harness_process(leaf) == harness_process(producer), leaf.full_label

    by_label = {leaf.full_label: harness_process(leaf) for leaf in leaves}
    # The reader, parsing and the keying in front of each fold stay in the default process...
    assert by_label["ReadObservations/ReadPartitions"] is None
    assert by_label["FoldAreas/Fold/Shard1"] is None
    # ... and what a fold emits is split and written in the fold's process.
    assert by_label["FoldAreas/ByKind/ParDo(_SplitByKind)"] == by_label["FoldAreas/Fold/Fold/ParDo(_OrderedFoldFn)"]
    assert by_label["WriteAlert/Send"] == by_label["FoldAreas/Fold/Fold/ParDo(_OrderedFoldFn)"]


def test_the_runner_sees_one_environment_per_process():
    pipeline = _job()
    spread_stages(pipeline)
    proto = pipeline.to_runner_api()
    assert len(proto.components.environments) == 3 + 1


def test_without_spreading_the_job_has_one_environment():
    proto = _job().to_runner_api()
    assert len(proto.components.environments) == 1


def _info(transform: str) -> metrics_pb2.MonitoringInfo:
    return metrics_pb2.MonitoringInfo(urn="beam:metric:element_count:v1", type="beam:metrics:sum_int64:v1",
                                      labels={"PTRANSFORM": transform})


def test_metric_short_ids_differ_between_harness_processes_and_map_back():
    first, second = _PrefixedShortIds("w1-"), _PrefixedShortIds("w2-")
    ids = [first.get_short_id(_info("a")), first.get_short_id(_info("b"))]
    assert second.get_short_id(_info("x")) not in ids  # each numbers from 1, but the prefixes differ
    assert first.get_short_id(_info("a")) == ids[0]
    infos = first.get_infos(ids)
    assert [infos[i].labels["PTRANSFORM"] for i in ids] == ["a", "b"]
