"""The duty officer console: a web page served by the alert API, and what it reads.

- ``static/``: the page (plain HTML, JavaScript and SVG; no build step, nothing
  fetched from elsewhere), served at ``/console/``.
- :mod:`~alert_api.console.stations`: the map, read from station catalogues.
- :mod:`~alert_api.console.view`: the station view, folded from the pipeline's
  status, fault, score and camera topics by pure functions.
- :mod:`~alert_api.console.consumer`: the Kafka edge that feeds the view.
- :mod:`~alert_api.console.present`: the documents the ``/v1/console`` routes answer.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

from alert_api.config import AlertApiSettings
from alert_api.console.consumer import FeedState, FeedStatus, StatusConsumer
from alert_api.console.stations import StationMap, default_catalogue_paths
from alert_api.console.view import Limits, StationView, ingest_status
from alert_api.formats.cifs import Roads
from suibou.settings import Settings


@dataclasses.dataclass
class Console:
    """What the console's routes need, kept on ``app.state.console``.

    Attributes:
        stations: The map.
        map_document: The map as JSON (with the roads drawn for orientation).
        view: The station view.
        frame_roots: Folders camera stills may be served from.
        consumer: The status consumer, when it runs.
    """

    stations: StationMap
    map_document: dict[str, Any]
    view: StationView
    frame_roots: tuple[Path, ...]
    consumer: StatusConsumer | None = None

    def feed(self) -> dict[str, Any]:
        status = self.consumer.status if self.consumer is not None else FeedStatus(FeedState.DISABLED)
        return status.to_json()


def build_console(settings: Settings, config: AlertApiSettings, roads: Roads) -> Console:
    """Reads the map and sets up an empty station view (starts nothing)."""
    stations = StationMap.load(config.console_catalogues or default_catalogue_paths(settings.home))
    limits = Limits(history_s=config.console_history_hours * 3600,
                    max_points=max(1, int(config.console_history_hours * 60)),
                    max_streams=config.console_max_streams)
    roots = tuple(config.console_frame_roots or [settings.home / "cache" / "storms"])
    # shapely's stubs type a coordinate as tuple[float, ...]; these lines are 2-D.
    map_document = stations.to_json((r.road_id, r.name, r.name_ja, list(r.line.coords))  # type: ignore[arg-type]
                                    for r in roads.roads)
    return Console(stations, map_document, StationView(limits), roots)


def static_dir() -> Path:
    """The folder of the page's files."""
    return Path(str(resources.files("alert_api").joinpath("console", "static")))


__all__ = ["Console", "StationMap", "StationView", "StatusConsumer", "build_console", "ingest_status", "static_dir"]
