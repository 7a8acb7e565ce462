"""The storm library: named storms for drills, tests and training checks.

Each storm is generated from a fixed seed when it is loaded, so nothing large
lives in the repository and every load gives identical readings. Later storms
may also be read from files; :func:`load_storm` is the one entry point.

Storms:
    ``suginami-2005-mini``
        A synthetic reconstruction (not observed data) of the 2005-09-04
        Suginami/Nakano local downpour, shortened to three hours. A slow cell
        peaking above 100 mm/h sits over the upper Zenpukuji and Myoshoji
        catchments; both rivers pass caution, evacuation judgement and danger,
        and the Zenpukuji briefly runs bank-full, while the Kanda upstream of
        the Zenpukuji confluence rises to caution at most.
    ``quiet-day-mini``
        A synthetic negative control: three hours of light rain in which no
        gauge reaches flood caution.

CSV export format (:func:`export_csv`), one reading per row, time-ordered, with
a header line ``time,station_id,kind,value``:

    ``time``: ISO 8601 UTC with offset, the end of the reading interval;
    ``station_id``: catalogue id; ``kind``: ``rain_mm`` (mm fallen in the
    interval, ``interval_s`` as in the storm) or ``level_m`` (metres above
    gauge datum); ``value``: the number.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from suibou.contracts import RainReading, format_time

from .stations import StationCatalogue
from .synth import RainCell, Storm, StormParams, synthesise

JST = dt.timezone(dt.timedelta(hours=9), "JST")


def _suginami_2005_mini() -> Storm:
    catalogue = StationCatalogue.load("kanda-basin")
    params = StormParams(
        start=dt.datetime(2005, 9, 4, 20, 30, tzinfo=JST),
        duration_min=180,
        cells=(
            # The main cell: nearly stationary over Shimo-igusa/Zenpukuji, drifting north-east.
            RainCell(peak_mm_h=130.0, lon=139.612, lat=35.715, peak_min=70.0, duration_min=110.0,
                     sigma_km=2.2, speed_kmh=3.0, heading_deg=60.0),
            # A weaker leading cell that wets the catchments first.
            RainCell(peak_mm_h=45.0, lon=139.625, lat=35.708, peak_min=25.0, duration_min=50.0,
                     sigma_km=3.0, speed_kmh=8.0, heading_deg=70.0),
        ),
        background_mm_h=1.0,
        seed=20050904,
        initial_rain_mm=15.0,
    )
    return synthesise(
        catalogue, params, name="suginami-2005-mini",
        title="Suginami/Nakano downpour, 2005-09-04 (synthetic reconstruction, 3 h)",
        description=(
            "A synthetic reconstruction (not observed data) of the 2005-09-04 Suginami/Nakano "
            "local downpour, shortened to three hours from 20:30 JST. The real storm brought over "
            "100 mm/h and the Zenpukuji and Myoshoji rivers overflowed; here a seeded synthetic rain "
            "cell peaking above 100 mm/h over the upper Zenpukuji and Myoshoji drives invented "
            "runoff and rating curves at invented gauges. Timings and levels are not the observed ones."
        ),
        provenance="synthetic reconstruction",
    )


def _quiet_day_mini() -> Storm:
    catalogue = StationCatalogue.load("kanda-basin")
    params = StormParams(
        start=dt.datetime(2005, 9, 11, 14, 0, tzinfo=JST),
        duration_min=180,
        cells=(
            RainCell(peak_mm_h=6.0, lon=139.615, lat=35.700, peak_min=90.0, duration_min=120.0,
                     sigma_km=5.0, speed_kmh=15.0, heading_deg=80.0),
        ),
        background_mm_h=0.8,
        seed=20050911,
    )
    return synthesise(
        catalogue, params, name="quiet-day-mini",
        title="Quiet day with light rain (synthetic negative control, 3 h)",
        description=(
            "A synthetic storm (not observed data): three hours of light rain over the Kanda basin "
            "in which no gauge reaches flood caution. A drill using it should raise no flood alert."
        ),
    )


_STORMS: dict[str, Callable[[], Storm]] = {
    "suginami-2005-mini": _suginami_2005_mini,
    "quiet-day-mini": _quiet_day_mini,
}


def list_storms() -> list[str]:
    """Names accepted by :func:`load_storm`."""
    return sorted(_STORMS)


def load_storm(name: str) -> Storm:
    """Builds a named storm (deterministically, from its seed).

    Raises:
        KeyError: No storm of that name; the message lists the known ones.
    """
    try:
        factory = _STORMS[name]
    except KeyError:
        raise KeyError(f"unknown storm {name!r}; known storms: {', '.join(list_storms())}") from None
    return factory()


def export_csv(storm: Storm, path: str | Path) -> int:
    """Writes a storm's readings as CSV (format in the module docstring); returns the row count."""
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "station_id", "kind", "value"])
        for event in storm.events():
            if isinstance(event, RainReading):
                writer.writerow([format_time(event.event_time), event.station_id, "rain_mm", f"{event.rain_mm:g}"])
            else:
                writer.writerow([format_time(event.event_time), event.station_id, "level_m", f"{event.level_m:g}"])
            rows += 1
    return rows
