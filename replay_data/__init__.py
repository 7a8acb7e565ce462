"""Storms for drills and tests: station catalogues, the synthesiser, the storm library
and the drill publisher.

Examples:
    >>> from replay_data import load_storm, level_for
    >>> storm = load_storm("suginami-2005-mini")
    >>> storm.provenance
    'synthetic reconstruction'
"""

from .publish import PlannedMessage, PublishError, PublishReport, plan_messages, publish_storm
from .stations import (
    LevelGauge,
    RainGauge,
    Reach,
    ReachHydrology,
    StationCatalogue,
    bundled_catalogues,
    level_for,
)
from .storms import export_csv, list_storms, load_storm
from .synth import RainCell, Simulation, Storm, StormParams, simulate, synthesise

__all__ = [
    "LevelGauge",
    "PlannedMessage",
    "PublishError",
    "PublishReport",
    "RainCell",
    "RainGauge",
    "Reach",
    "ReachHydrology",
    "Simulation",
    "StationCatalogue",
    "Storm",
    "StormParams",
    "bundled_catalogues",
    "export_csv",
    "level_for",
    "list_storms",
    "load_storm",
    "plan_messages",
    "publish_storm",
    "simulate",
    "synthesise",
]
