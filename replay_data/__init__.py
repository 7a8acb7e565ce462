"""Storms for drills and tests: the synthesiser, the storm library
(built-in reconstructions, storms on disk, imports), the drill publisher and the
drill report. ``docs/storms.md`` describes them.

Examples:
    >>> from replay_data import load_storm
    >>> storm = load_storm("suginami-2005-mini")
    >>> storm.provenance
    'synthetic reconstruction'
"""

from .library import StormImportError, import_storm, materialise, open_storm
from .publish import PlannedMessage, PublishError, PublishReport, plan_messages, publish_storm
from .storms import export_csv, list_storms, load_storm
from .synth import RainCell, Simulation, Storm, StormParams, simulate, synthesise

__all__ = [
    "PlannedMessage",
    "PublishError",
    "PublishReport",
    "RainCell",
    "StormImportError",
    "Simulation",
    "Storm",
    "StormParams",
    "export_csv",
    "import_storm",
    "list_storms",
    "load_storm",
    "materialise",
    "open_storm",
    "plan_messages",
    "publish_storm",
    "simulate",
    "synthesise",
]
