"""Beginning and end offsets of partitions, asked of kafka-python without its stale-metadata gap.

kafka-python 3.0 leaves a partition whose leader its metadata does not know
out of a ListOffsets answer, neither answered nor retried, and then fails with
a ``KeyError`` for it; a client that has only asked about some topics (one
that ``assign()``-ed partitions of others) can stay in that state for minutes.
Asking for the partitions' topics first loads their metadata; a short retry
covers a leader that is still being elected (a broker that just restarted).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal


def list_offsets(consumer: Any, partitions: Sequence[Any], which: Literal["beginning", "end"] = "end",
                 attempts: int = 10, pause_s: float = 0.5) -> dict[Any, int]:
    """``consumer.end_offsets(partitions)`` (or ``beginning_offsets``), retried while metadata is stale.

    Raises:
        KeyError: A partition's leader stayed unknown for every attempt.
    """
    ask = consumer.end_offsets if which == "end" else consumer.beginning_offsets
    for attempt in range(attempts):
        for topic in {tp.topic for tp in partitions}:
            consumer.partitions_for_topic(topic)
        try:
            return dict(ask(list(partitions)))
        except KeyError:
            if attempt == attempts - 1:
                raise
            time.sleep(pause_s)
    raise AssertionError("unreachable")
