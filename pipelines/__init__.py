"""Streaming fusion pipelines (Apache Beam): observations in, risk scores and alerts out.

Stages live in their own modules; this package re-exports the public transforms.
"""

from pipelines.alerts import DecideAlerts
from pipelines.gauges import AccumulateRainfall, AssessWaterLevels
from pipelines.ingest import ParseObservations
from pipelines.kafka_io import ReadFromKafka, WriteToKafka
from pipelines.ordered import FoldInEventTime
from pipelines.risk import FuseReachFeatures, ScoreFloodRisk

__all__ = [
    "AccumulateRainfall",
    "AssessWaterLevels",
    "DecideAlerts",
    "FoldInEventTime",
    "FuseReachFeatures",
    "ParseObservations",
    "ReadFromKafka",
    "ScoreFloodRisk",
    "WriteToKafka",
]
