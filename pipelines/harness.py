"""Which SDK harness process runs which stage.

Prism runs every transform of one environment in one SDK harness, and a
Python harness runs all its bundles under one interpreter lock: one core for
the whole job, however many cores the machine has. Prism starts one harness per
environment, so giving the stateful stages environments of their own spreads
the job over several processes (``--experiments=use_loopback_process_worker``
makes each a process rather than a thread of the driver).

Each stateful stage (one per fold) gets a process of its own; everything
else stays in the default environment's. An environment here is the default
one plus a resource hint naming the process. Stateless transforms follow the
process of the transform that feeds them, so a stage's fusion (the fold with
its scoring and its writers) is the same as with a single harness: Prism never
fuses transforms of two environments, and a transform placed apart from its
input would become a stage of its own, one more trip through the runner for
every element.

What it gained for the 48-hour drill is in bench/drill.md.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor
from apache_beam.transforms.resources import ResourceHint
from apache_beam.transforms.userstate import is_stateful_dofn


class HarnessProcessHint(ResourceHint):
    """Names the SDK harness process a transform runs in (suibou's own hint)."""

    urn = "suibou:resource_hint:harness_process:v1"


ResourceHint.register_resource_hint("harness_process", HarnessProcessHint)


def _is_stateful(applied: AppliedPTransform) -> bool:
    transform = applied.transform
    return isinstance(transform, beam.ParDo) and is_stateful_dofn(transform.fn)


def _runner_implemented(applied: AppliedPTransform) -> bool:
    """Prism runs these itself: they belong to no harness."""
    return isinstance(applied.transform, (beam.Flatten, beam.GroupByKey, beam.Impulse))


class _Assign(PipelineVisitor):
    """Visits leaf transforms in the order they were applied: producers first."""

    def __init__(self) -> None:
        self.stateful = 0
        self.process_of: dict[AppliedPTransform, str] = {}

    def visit_transform(self, applied: AppliedPTransform) -> None:
        if _runner_implemented(applied):
            return
        name: str | None
        if _is_stateful(applied):
            self.stateful += 1
            name = f"stage-{self.stateful}"
        else:
            producers = [producer for value in applied.main_inputs.values()
                         if (producer := getattr(value, "producer", None)) is not None]
            name = next((self.process_of[p] for p in producers if p in self.process_of), None)
            if name is None:
                name = next((self._through_flatten(p) for p in producers if _runner_implemented(p)), None)
        if name is None:
            return
        self.process_of[applied] = name
        applied.resource_hints = {**applied.resource_hints, HarnessProcessHint.urn: name.encode()}

    def _through_flatten(self, applied: AppliedPTransform) -> str | None:
        """The process of a runner-implemented transform's first placed producer."""
        for value in applied.main_inputs.values():
            producer = getattr(value, "producer", None)
            if producer in self.process_of:
                return self.process_of[producer]
        return None


def harness_process(applied: AppliedPTransform) -> str | None:
    """The process :func:`spread_stages` gave ``applied``; None: the default one."""
    name = applied.resource_hints.get(HarnessProcessHint.urn)
    return name.decode() if name is not None else None


def spread_stages(pipeline: beam.Pipeline) -> int:
    """Gives every stateful stage of ``pipeline`` an SDK harness process of its own.

    Call it once the pipeline is built, before it runs; run the pipeline with a
    worker pool (:func:`suibou.infra.sdk_workers.sdk_worker_pool`), or every
    environment becomes a thread of one process again.

    Returns:
        How many stateful stages were placed.
    """
    assign = _Assign()
    pipeline.visit(assign)
    return assign.stateful
