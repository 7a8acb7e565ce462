"""Batch a bundle's elements into one call: how the model stages use ONNX Runtime."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam


class BatchPerBundle(beam.DoFn):
    """Collects a bundle's elements and hands them to :meth:`score_batch` at its end.

    One ONNX Runtime call per bundle instead of per element; each output keeps
    the timestamp and window of the element it came from. Subclasses that must
    check an element first override :meth:`process` and call :meth:`add`.
    """

    def start_bundle(self) -> None:
        self._batch: list[tuple[Any, Any, Any]] = []

    def add(self, element: Any, timestamp: Any, window: Any) -> None:
        self._batch.append((element, timestamp, window))

    def process(self, element: Any, timestamp=beam.DoFn.TimestampParam,
                window=beam.DoFn.WindowParam) -> Iterator[Any]:
        self.add(element, timestamp, window)
        return iter(())

    def score_batch(self, elements: Sequence[Any]) -> Sequence[Any]:
        """One output per element, in order. (Not ``process_batch``: Beam reserves
        that name for its own batched DoFns.)"""
        raise NotImplementedError

    def finish_bundle(self):
        from apache_beam.utils.windowed_value import WindowedValue

        batch, self._batch = self._batch, []
        if not batch:
            return
        outputs = self.score_batch([element for element, _, _ in batch])
        for (_, timestamp, window), output in zip(batch, outputs, strict=True):
            yield WindowedValue(output, timestamp, [window])
