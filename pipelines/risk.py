"""Fuse gauge features per river reach and score flood risk with an ONNX model."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from pipelines.gauges import LevelStatus, RainfallTotals
from pipelines.ordered import Fold, FoldInEventTime, stream_key
from replay_data.stations import StationCatalogue
from suibou.contracts import AreaKind, Hazard, RiskScore

#: What the flood model predicts; travels with every score.
FLOOD_TARGET = "level reaches flood danger (氾濫危険水位) within 60 min"


@dataclasses.dataclass(frozen=True)
class ReachFeatures:
    """Model inputs for one reach at one time, with the observation they came from."""

    reach_id: str
    event_time: dt.datetime
    features: tuple[tuple[str, float], ...]
    status: LevelStatus
    rain_stations: tuple[str, ...]
    exercise: bool
    drill_id: str | None


@dataclasses.dataclass(frozen=True)
class ReachFusion(Fold[dict, "RainfallTotals | LevelStatus", ReachFeatures]):
    """Keeps the latest rainfall totals of a reach's gauges; each level status of
    the reach yields one feature row.

    Rain that is older than ``rain_max_age_s`` at the level's time does not
    count: a gauge that stopped reporting is not read as "no rain".
    """

    feature_names: tuple[str, ...]
    rain_max_age_s: float = 900.0
    name: str = "reach_fusion"

    def initial(self, key: str) -> dict:
        return {}

    def event_time(self, item: RainfallTotals | LevelStatus | ReachFeatures) -> dt.datetime:
        return item.event_time

    def order(self, item: RainfallTotals | LevelStatus) -> int:
        return 0 if isinstance(item, RainfallTotals) else 1  # rain at t is known to the level at t

    def step(self, key: str, state: dict, item: RainfallTotals | LevelStatus) -> tuple[dict, list[ReachFeatures]]:
        if isinstance(item, RainfallTotals):
            known = state.get(item.station_id)
            if known is not None and known.event_time > item.event_time:
                return state, []  # A late total does not replace a newer one.
            return {**state, item.station_id: item}, []
        fresh = [
            totals for totals in state.values()
            if 0 <= (item.event_time - totals.event_time).total_seconds() <= self.rain_max_age_s
        ]
        rain_10 = float(np.mean([t.rain_10min_mm for t in fresh])) if fresh else 0.0
        rain_60 = float(np.mean([t.rain_60min_mm for t in fresh])) if fresh else 0.0
        from models import flood_features

        values = flood_features(
            level_m=item.level_m,
            danger_m=item.danger_m,
            level_30min_ago_m=item.level_30min_ago_m,
            rain_10min_mm=rain_10,
            rain_60min_mm=rain_60,
        )
        return state, [ReachFeatures(
            reach_id=item.reach_id,
            event_time=item.event_time,
            features=tuple(zip(self.feature_names, (round(float(v), 4) for v in values), strict=True)),
            status=item,
            rain_stations=tuple(sorted(t.station_id for t in fresh)),
            exercise=item.exercise,
            drill_id=item.drill_id,
        )]


def rain_to_reaches(totals: RainfallTotals, catalogue: StationCatalogue) -> Iterator[tuple[str, RainfallTotals]]:
    for reach in catalogue.reaches_for_rain_station(totals.station_id):
        yield stream_key(totals.drill_id, reach.reach_id), totals


@dataclasses.dataclass
class FuseReachFeatures(beam.PTransform):
    """Rainfall totals and level statuses -> one feature row per reach and reading."""

    catalogue: StationCatalogue
    feature_names: tuple[str, ...]
    max_lateness_s: float = 600.0

    def __post_init__(self) -> None:
        super().__init__()

    def expand(self, inputs: Mapping[str, beam.PCollection]):  # type: ignore[no-untyped-def]
        rain = inputs["rain"] | "RainToReaches" >> beam.FlatMap(rain_to_reaches, self.catalogue)
        level = inputs["level"] | "LevelToReach" >> beam.Map(lambda s: (stream_key(s.drill_id, s.reach_id), s))
        return (
            (rain, level)
            | "Merge" >> beam.Flatten()
            | "Fuse" >> FoldInEventTime(ReachFusion(self.feature_names), self.max_lateness_s)
        )


def to_risk_score(row: ReachFeatures, probability: float, model_ref: str, contributions: list[str]) -> RiskScore:
    """Builds the published score; its id is deterministic so re-runs de-duplicate."""
    stamp = row.event_time.strftime("%Y%m%dT%H%M%SZ")
    return RiskScore(
        event_id=f"risk:{row.drill_id or 'live'}:{row.reach_id}:{Hazard.FLOOD.value}:{stamp}",
        event_time=row.event_time,
        exercise=row.exercise,
        drill_id=row.drill_id,
        area_id=row.reach_id,
        area_kind=AreaKind.REACH,
        hazard=Hazard.FLOOD,
        probability=round(float(probability), 6),
        observed_level=row.status.observed_level,
        model=model_ref,
        target=FLOOD_TARGET,
        features=dict(row.features) | {"level_m": row.status.level_m},
        contributions=tuple(contributions),
    )


class _ScoreFn(beam.DoFn):
    """Holds one ONNX Runtime session per worker, opened in ``setup``."""

    def __init__(self, model_name: str, model_version: str, artifacts_dir: str | None):
        self._model_name = model_name
        self._model_version = model_version
        self._artifacts_dir = artifacts_dir
        self._scored = Metrics.counter("score", "scores")

    def setup(self) -> None:
        from models import load_scorer

        self._scorer = load_scorer(self._model_name, self._model_version, self._artifacts_dir)

    def process(self, row: ReachFeatures) -> Iterator[RiskScore]:
        values = np.asarray([[v for _, v in row.features]], dtype=np.float32)
        probability = float(self._scorer.predict_proba(values)[0])
        self._scored.inc()
        yield to_risk_score(row, probability, self._scorer.model_ref, self._scorer.contributions(values[0]))


@dataclasses.dataclass
class ScoreFloodRisk(beam.PTransform):
    """Feature rows -> :class:`RiskScore` with the model's version and main features."""

    model_name: str = "flood"
    model_version: str = "1"
    artifacts_dir: str | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def expand(self, rows: beam.PCollection[ReachFeatures]) -> beam.PCollection[RiskScore]:
        return rows | "Score" >> beam.ParDo(_ScoreFn(self.model_name, self.model_version, self.artifacts_dir))
