"""Streaming fusion pipelines (Apache Beam): observations in, risk scores and alerts out.

Stages live in their own modules; this package re-exports the public transforms.
"""

from pipelines.areas import FoldAreas
from pipelines.ingest import ParseObservations
from pipelines.kafka_io import ReadFromKafka, WriteToKafka
from pipelines.ordered import FoldInEventTime

__all__ = [
    "FoldAreas",
    "FoldInEventTime",
    "ParseObservations",
    "ReadFromKafka",
    "WriteToKafka",
]
