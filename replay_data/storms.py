"""The storm library: named storms for drills, tests and training checks.

Every built-in storm is **synthetic**, generated deterministically from a seed
by :mod:`replay_data.synth`; where a storm is named after a real event it is a
*synthetic reconstruction* and says so in its title, description, provenance
and labels. :func:`load_storm` builds a storm's rain and level readings in
memory (fast, no files); :func:`replay_data.library.materialise` also writes
its camera frames, rainfall grids and drone observations to a folder
(``docs/storms.md`` documents the layout). Storms imported from a river
bureau's own records (:func:`replay_data.library.import_storm`) live in the
storm cache and load the same way.

Built-in storms (``suibou storms`` lists them with imported ones):

``suginami-2005-mini``
    Synthetic reconstruction of the 2005-09-04 Suginami/Nakano downpour,
    shortened to three hours (the drill in the README and the pipeline's
    end-to-end test). Zenpukuji and Myoshoji reach flood danger.
``suginami-2005``
    The same downpour over ten hours and three basins (Kanda, Shakujii,
    Meguro): over 100 mm/h over Suginami; the Zenpukuji and the Myoshoji
    overflow.
``hagibis-2019``
    Typhoon Hagibis, 2019-10-11 12:00 to 10-13 12:00 JST (48 h): long, heavy
    rain over the Tama basin, heaviest in the Okutama mountains; the Tama
    overflows at Futako-Tamagawa and reaches flood danger downstream; a slope
    fails in the Nippara valley.
``oshima-2013``
    The 2013-10-16 Izu Ōshima debris-flow rain (Typhoon Wipha): 824 mm in
    24 h and 122.5 mm in one hour at Motomachi; the Kandachi and Okanazawa
    slopes above Motomachi fail.
``quiet-day-mini`` / ``quiet-day``
    Negative controls: three hours over the Kanda basin, and 24 hours over
    the Kanda, Shakujii and Meguro basins, of light rain in which no gauge
    reaches flood caution and no slope nears its critical line.
``bench-<H>h-<G>g``
    A synthetic benchmark storm of H hours over about G invented gauges
    (``bench/drill_replay.py``), e.g. ``bench-48h-200g``.

CSV export format (:func:`export_csv`, and the import format of
:func:`replay_data.library.import_storm`), one reading per row, with a header
line ``time,station_id,kind,value``:

    ``time``: ISO 8601 with a UTC offset, the end of the reading interval;
    ``station_id``: catalogue id; ``kind``: ``rain_mm`` (mm fallen in the
    interval) or ``level_m`` (metres above gauge datum); ``value``: the number.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from suibou.catalogue import (
    MESH3_DLAT,
    MESH3_DLON,
    Camera,
    GridDefinition,
    LandslideZone,
    LevelGauge,
    RainGauge,
    Reach,
    ReachHydrology,
    SlopeHydrology,
    StationCatalogue,
)
from suibou.contracts import RainReading, format_time
from suibou.hydrology import CriticalLine

from .synth import RainCell, Storm, StormParams, synthesise

JST = dt.timezone(dt.timedelta(hours=9), "JST")

#: Which storms the names refer to, for ``suibou storms`` and the docs.
RECONSTRUCTION = ("synthetic", "reconstruction")
NEGATIVE_CONTROL = ("synthetic", "negative-control")


def tokyo_west() -> StationCatalogue:
    """The Kanda, Shakujii and Meguro basins as one catalogue (ids are unchanged)."""
    parts = [StationCatalogue.load(n) for n in ("kanda-basin", "shakujii-basin", "meguro-basin")]
    return StationCatalogue.merge("tokyo-west", parts)


# --------------------------------------------------------------------------- 2005 Suginami


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
        provenance="synthetic reconstruction", labels=RECONSTRUCTION,
    )


def _suginami_2005() -> Storm:
    params = StormParams(
        start=dt.datetime(2005, 9, 4, 18, 0, tzinfo=JST),
        duration_min=600,
        cells=(
            # Early showers drifting north-east over the western wards.
            RainCell(peak_mm_h=35.0, lon=139.60, lat=35.69, peak_min=90.0, duration_min=90.0,
                     sigma_km=4.0, speed_kmh=15.0, heading_deg=50.0),
            RainCell(peak_mm_h=50.0, lon=139.63, lat=35.72, peak_min=150.0, duration_min=80.0,
                     sigma_km=3.0, speed_kmh=10.0, heading_deg=60.0),
            # The main cell: above 100 mm/h for about an hour, nearly stationary over Shimo-igusa.
            RainCell(peak_mm_h=118.0, lon=139.615, lat=35.717, peak_min=220.0, duration_min=120.0,
                     sigma_km=2.6, speed_kmh=2.5, heading_deg=55.0, plateau_min=30.0),
            # A second burst over Nakano and Nerima as the system drifts east.
            RainCell(peak_mm_h=45.0, lon=139.645, lat=35.715, peak_min=300.0, duration_min=90.0,
                     sigma_km=3.0, speed_kmh=6.0, heading_deg=70.0),
            # Trailing rain.
            RainCell(peak_mm_h=15.0, lon=139.62, lat=35.70, peak_min=400.0, duration_min=160.0,
                     sigma_km=8.0, speed_kmh=10.0, heading_deg=80.0),
        ),
        background_mm_h=0.8,
        seed=2005090401,
        initial_rain_mm=15.0,
    )
    return synthesise(
        tokyo_west(), params, name="suginami-2005",
        title="Suginami/Nakano downpour, 2005-09-04 (synthetic reconstruction, 10 h)",
        description=(
            "A synthetic reconstruction (not observed data) of the 2005-09-04 local downpour over "
            "Suginami and Nakano, 18:00 to 04:00 JST, over the Kanda, Shakujii and Meguro basins. The real "
            "storm brought over 100 mm/h and the Zenpukuji and Myoshoji rivers overflowed. Here seeded "
            "synthetic rain cells, the strongest above 100 mm/h for about an hour over Shimo-igusa, drive "
            "invented runoff and rating curves at invented gauges; the Zenpukuji and the Myoshoji reach "
            "bank-full. Timings, totals and levels are not the observed ones."
        ),
        provenance="synthetic reconstruction", labels=RECONSTRUCTION,
    )


# --------------------------------------------------------------------------- 2019 Hagibis


def _hagibis_2019() -> Storm:
    catalogue = StationCatalogue.load("tama-basin")
    params = StormParams(
        start=dt.datetime(2019, 10, 11, 12, 0, tzinfo=JST),
        duration_min=48 * 60,
        cells=(
            # Orographic rain on the Okutama mountains, fed by the typhoon's moist easterlies:
            # a stationary band along the ridges, steady for most of the 12th.
            RainCell(peak_mm_h=26.0, lon=139.09, lat=35.80, peak_min=27 * 60, duration_min=10 * 60,
                     sigma_km=12.0, length_km=25.0, axis_deg=40.0, speed_kmh=0.0, plateau_min=9 * 60),
            # The typhoon's wide rain shield over the whole basin.
            RainCell(peak_mm_h=13.0, lon=139.35, lat=35.70, peak_min=28 * 60, duration_min=12 * 60,
                     sigma_km=60.0, speed_kmh=0.0, plateau_min=8 * 60),
            # The core passes from the south-west to the north-north-east in the evening of the 12th.
            RainCell(peak_mm_h=26.0, lon=139.35, lat=35.65, peak_min=33 * 60, duration_min=5 * 60,
                     sigma_km=35.0, speed_kmh=45.0, heading_deg=25.0),
            # Outer rain bands in the morning.
            RainCell(peak_mm_h=15.0, lon=139.30, lat=35.70, peak_min=20 * 60, duration_min=4 * 60,
                     sigma_km=30.0, speed_kmh=30.0, heading_deg=340.0),
        ),
        background_mm_h=0.5,
        seed=20191012,
        initial_rain_mm=40.0,
    )
    return synthesise(
        catalogue, params, name="hagibis-2019",
        title="Typhoon Hagibis over the Tama basin, 2019-10-12 (synthetic reconstruction, 48 h)",
        description=(
            "A synthetic reconstruction (not observed data) of Typhoon Hagibis (令和元年東日本台風) over "
            "the Tama basin, 2019-10-11 12:00 to 10-13 12:00 JST. The real typhoon brought long, heavy rain "
            "over the Tama basin, heaviest in the mountains, and the Tama overflowed in places. Here a "
            "stationary orographic rain band over the Okutama mountains, the typhoon's wide rain shield and "
            "its core passing in the evening of the 12th drive invented runoff and rating curves at invented "
            "gauges on the real rivers: the Tama overflows at Futako-Tamagawa and reaches flood danger at "
            "Ishihara and Den-en-chofu, and a synthetic slope fails in the Nippara valley. Totals, timings "
            "and levels are not the observed ones."
        ),
        provenance="synthetic reconstruction", labels=RECONSTRUCTION,
    )


# --------------------------------------------------------------------------- 2013 Izu Oshima

#: The reconstruction's targets: the real storm's 24-hour and 1-hour maxima at Motomachi.
OSHIMA_24H_MM = 824.0
OSHIMA_1H_MM = 122.5


def _oshima_2013() -> Storm:
    catalogue = StationCatalogue.load("izu-oshima")
    params = StormParams(
        start=dt.datetime(2013, 10, 15, 6, 0, tzinfo=JST),
        duration_min=30 * 60,
        cells=(
            # Typhoon Wipha's rain shield, moving north-east fast.
            RainCell(peak_mm_h=16.0, lon=139.40, lat=34.75, peak_min=20 * 60, duration_min=10 * 60,
                     sigma_km=70.0, speed_kmh=0.0, plateau_min=7 * 60),
            # Evening rain ahead of the band.
            RainCell(peak_mm_h=20.0, lon=139.38, lat=34.76, peak_min=15 * 60, duration_min=5 * 60,
                     sigma_km=15.0, speed_kmh=10.0, heading_deg=45.0, plateau_min=60),
            # The stationary rain band (線状降水帯) over the west of the island in the small hours of the 16th.
            RainCell(peak_mm_h=106.5, lon=139.372, lat=34.755, peak_min=20 * 60 + 30, duration_min=4 * 60,
                     sigma_km=4.0, length_km=30.0, axis_deg=40.0, speed_kmh=0.0, plateau_min=150),
        ),
        background_mm_h=1.0,
        seed=20131016,
        initial_rain_mm=30.0,
        rain_error=0.0,
    )
    return synthesise(
        catalogue, params, name="oshima-2013",
        title="Izu Oshima debris-flow rain, 2013-10-16 (synthetic reconstruction, 30 h)",
        description=(
            "A synthetic reconstruction (not observed data) of the rain of Typhoon Wipha over Izu Oshima, "
            "2013-10-15 06:00 to 10-16 12:00 JST, which set off the debris flow that struck Motomachi. The "
            "real storm brought 824 mm in 24 hours and 122.5 mm in one hour; the synthetic rain at the "
            "invented Motomachi gauge is calibrated to those two figures (the gauge has no calibration error "
            "here). A stationary rain band over the west of the island in the small hours of the 16th, on top "
            "of the typhoon's rain shield, drives JMA's soil water index past invented critical lines; the "
            "synthetic slopes of Kandachi and Okanazawa fail. Timings and the zones are not the observed ones."
        ),
        provenance="synthetic reconstruction", labels=RECONSTRUCTION,
    )


# --------------------------------------------------------------------------- quiet days


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
        labels=NEGATIVE_CONTROL,
    )


def _quiet_day() -> Storm:
    params = StormParams(
        start=dt.datetime(2005, 9, 11, 0, 0, tzinfo=JST),
        duration_min=24 * 60,
        cells=(
            RainCell(peak_mm_h=5.0, lon=139.62, lat=35.70, peak_min=9 * 60, duration_min=180.0,
                     sigma_km=8.0, speed_kmh=20.0, heading_deg=70.0),
            RainCell(peak_mm_h=7.0, lon=139.66, lat=35.68, peak_min=16 * 60, duration_min=120.0,
                     sigma_km=5.0, speed_kmh=25.0, heading_deg=90.0),
        ),
        background_mm_h=0.3,
        seed=20050912,
    )
    return synthesise(
        tokyo_west(), params, name="quiet-day",
        title="Quiet day with light showers (synthetic negative control, 24 h)",
        description=(
            "A synthetic day (not observed data): 24 hours of light showers over the Kanda, Shakujii and "
            "Meguro basins in which no gauge reaches flood caution. A drill using it should raise no alert."
        ),
        labels=NEGATIVE_CONTROL,
    )


# --------------------------------------------------------------------------- benchmark

_BENCH = re.compile(r"^bench-(\d{1,3})h-(\d{1,4})g$")


def benchmark_catalogue(gauges: int, seed: int = 7) -> StationCatalogue:
    """About ``gauges`` invented gauges (half rain, half level) in small basins west of Tokyo.

    One reach per level gauge, one camera per four reaches, a landslide zone per
    ten reaches, one 1 km grid over everything. All invented, for benchmarks.
    """
    rng = np.random.default_rng(seed)
    n = max(1, gauges // 2)
    cols = math.ceil(math.sqrt(n * 1.5))
    lon0, lat0, spacing = 139.25, 35.55, 0.02
    rains, levels, reaches, cameras, zones, hydrology, slopes = [], [], [], [], [], {}, {}
    for i in range(n):
        lon = round(lon0 + spacing * (i % cols) + float(rng.uniform(-0.004, 0.004)), 5)
        lat = round(lat0 + spacing * (i // cols) + float(rng.uniform(-0.004, 0.004)), 5)
        rid, wid, gid = f"R-BENCH-{i:03d}", f"WL-BENCH-{i:03d}", f"RG-BENCH-{i:03d}"
        caution = round(float(rng.uniform(1.6, 2.4)), 2)
        levels.append(LevelGauge(wid, f"Bench gauge {i}", f"試験水位計{i}", lon, lat, rid,
                                 round(caution - 0.5, 2), caution, round(caution + 0.6, 2),
                                 round(caution + 1.0, 2), round(caution + 1.6, 2)))
        reaches.append(Reach(rid, f"Bench river {i}", f"Bench reach {i}", f"試験区間{i}", wid,
                             ((round(lon - 0.01, 5), round(lat + 0.005, 5)), (lon, lat))))
        zone_ids: tuple[str, ...] = ()
        if i % 10 == 0:
            zid = f"Z-BENCH-{i:03d}"
            d = 0.002
            zones.append(LandslideZone(zid, f"Bench zone {i}", f"試験区域{i}",
                                       ((lon - d, lat - d), (lon + d, lat - d), (lon + d, lat + d), (lon - d, lat + d),
                                        (lon - d, lat - d)), CriticalLine()))
            slopes[zid] = SlopeHydrology(failure_swi_mm=float(rng.uniform(150, 250)))
            zone_ids = (zid,)
        rains.append(RainGauge(gid, f"Bench rain {i}", f"試験雨量計{i}", round(lon - 0.006, 5), round(lat + 0.003, 5),
                               (rid,), zone_ids))
        if i % 4 == 0:
            cameras.append(Camera(f"CAM-BENCH-{i:03d}", f"Bench camera {i}", f"試験カメラ{i}", lon, lat, rid, wid))
        hydrology[rid] = ReachHydrology(catchment_km2=float(rng.uniform(5, 15)), curve_number=85.0, n_reservoirs=3,
                                        k_min=float(rng.uniform(10, 25)), base_flow_m3s=0.5, rating_a=20.0,
                                        rating_b=1.6)
    rows = math.ceil(n / cols)
    west, south = lon0 - 0.02, lat0 - 0.02
    i0, j0 = math.floor(west / MESH3_DLON), math.floor(south / MESH3_DLAT)
    grid = GridDefinition("G1K-BENCH", "Benchmark area, 1 km mesh", i0 * MESH3_DLON, j0 * MESH3_DLAT,
                          nx=math.ceil((spacing * cols + 0.04) / MESH3_DLON),
                          ny=math.ceil((spacing * rows + 0.04) / MESH3_DLAT))
    return StationCatalogue(
        name=f"bench-{gauges}g", rain_gauges=tuple(rains), level_gauges=tuple(levels), reaches=tuple(reaches),
        provenance="Entirely invented benchmark catalogue (synthetic positions, ids, thresholds, hydrology).",
        hydrology=hydrology, zones=tuple(zones), cameras=tuple(cameras), grids=(grid,), slopes=slopes,
    )


def benchmark_storm(hours: int, gauges: int) -> Storm:
    """A synthetic storm of ``hours`` over :func:`benchmark_catalogue` (cells sweep the area)."""
    catalogue = benchmark_catalogue(gauges)
    rng = np.random.default_rng(hours * 10_000 + gauges)
    lons = [g.lon for g in catalogue.level_gauges]
    lats = [g.lat for g in catalogue.level_gauges]
    cells = []
    for _k in range(max(2, hours // 3)):
        cells.append(RainCell(
            peak_mm_h=float(rng.uniform(40, 110)), lon=float(rng.uniform(min(lons), max(lons))),
            lat=float(rng.uniform(min(lats), max(lats))), peak_min=float(rng.uniform(30, hours * 60 - 30)),
            duration_min=float(rng.uniform(60, 180)), sigma_km=float(rng.uniform(3, 8)),
            speed_kmh=float(rng.uniform(5, 30)), heading_deg=float(rng.uniform(0, 360))))
    params = StormParams(start=dt.datetime(2019, 10, 12, 0, 0, tzinfo=JST), duration_min=hours * 60,
                         cells=tuple(cells), background_mm_h=1.0, seed=hours * 10_000 + gauges, initial_rain_mm=20.0)
    return synthesise(
        catalogue, params, name=f"bench-{hours}h-{gauges}g",
        title=f"Benchmark storm, {hours} h over {2 * len(catalogue.level_gauges)} invented gauges (synthetic)",
        description=("A synthetic benchmark storm (not observed data, no real place): moving rain cells over an "
                     "invented catalogue, for measuring replay speed."),
        labels=("synthetic", "benchmark"),
    )


# --------------------------------------------------------------------------- library

_STORMS: dict[str, Callable[[], Storm]] = {
    "suginami-2005-mini": _suginami_2005_mini,
    "suginami-2005": _suginami_2005,
    "hagibis-2019": _hagibis_2019,
    "oshima-2013": _oshima_2013,
    "quiet-day-mini": _quiet_day_mini,
    "quiet-day": _quiet_day,
}


def builtin_storms() -> list[str]:
    """Names of the storms synthesised by this module (benchmark storms aside)."""
    return sorted(_STORMS)


def is_builtin(name: str) -> bool:
    return name in _STORMS or _BENCH.match(name) is not None


def list_storms() -> list[str]:
    """Names accepted by :func:`load_storm`: built-in storms, then imported ones."""
    from .library import imported_storms

    return sorted(_STORMS) + [n for n in imported_storms() if n not in _STORMS]


def load_storm(name: str) -> Storm:
    """A named storm's readings: built-in ones are synthesised (deterministically,
    from their seed), imported ones read from the storm cache.

    Raises:
        KeyError: No storm of that name; the message lists the known ones.
    """
    factory = _STORMS.get(name)
    if factory is not None:
        return factory()
    bench = _BENCH.match(name)
    if bench:
        return benchmark_storm(int(bench.group(1)), int(bench.group(2)))
    from .library import imported_storms, open_storm, storm_cache

    if name in imported_storms():
        return open_storm(storm_cache() / name)
    raise KeyError(f"unknown storm {name!r}; known storms: {', '.join(list_storms())}")


def export_csv(storm: Storm, path: str | Path) -> int:
    """Writes a storm's readings as CSV (format in the module docstring); returns the row count."""
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "station_id", "kind", "value"])
        for event in storm.readings():
            if isinstance(event, RainReading):
                writer.writerow([format_time(event.event_time), event.station_id, "rain_mm", f"{event.rain_mm:g}"])
            else:
                writer.writerow([format_time(event.event_time), event.station_id, "level_m", f"{event.level_m:g}"])
            rows += 1
    return rows
