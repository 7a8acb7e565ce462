"""The bulky parts of a synthetic storm: rainfall grids, camera frames, drone observations.

Everything here is **synthetic** and deterministic: the same storm and seed
give the same arrays, pixels and bytes.

**Grids.** For each grid of the catalogue, every ``GRID_EVERY_S`` (5 minutes)
from the storm start, one netCDF file holds the rain rate (mm/h) at the 1 km
cell centres for lead times 0, 5, …, 60 minutes (dims ``lead_time, y, x``):

* lead 0 is the *observed* field: the synthesiser's true rain rate at the
  cell centres at the issue time (no radar error is modelled);
* leads 5-60 are the *nowcast*: an advection nowcast (Lagrangian persistence,
  :func:`replay_data.synth.nowcast_rate`): every rain cell keeps the strength
  it has at the issue time and moves on with its velocity plus a motion-
  estimate error drawn per issue (normal, 3 km/h per component), so the
  displacement error grows linearly with lead time; then a multiplicative
  log-normal error field, spatially smooth (white noise blurred over about
  2 km), whose log standard deviation grows linearly from 0 at lead 0 to
  ``NOWCAST_LOG_SIGMA_60`` at 60 minutes, with mean 1. Growth and decay of
  cells are therefore not foreseen, as in real advection nowcasts.

**Camera frames.** Every ``CAMERA_EVERY_S`` (5 minutes), each camera that
watches a level gauge gets a 160×120 JPEG drawn by
:func:`replay_data.camera.render_frame` from the gauge's reported level and
the true rain rate at the camera.

**Drone observations.** Where the storm does damage (:class:`replay_data.synth.Damage`),
a drone flight is launched 20 minutes after the damage at the earliest, once
the rain at the site has eased below 10 mm/h, and only if it can finish before
the storm's end. It photographs the damage (``inundation`` along an
overflowing reach, ``slope_failure`` in a failed zone) and nearby places where
nothing happened, one observation every 2 minutes, each with a synthetic
160×120 aerial JPEG.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools
import math
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw

from suibou.catalogue import GridDefinition, StationCatalogue
from suibou.contracts import DroneFinding, DroneObservation

from .synth import Damage, StormParams, local_km, nowcast_rate, rain_rate

GRID_EVERY_S = 300
CAMERA_EVERY_S = 300
NOWCAST_LEADS_MIN = tuple(range(0, 65, 5))
NOWCAST_LOG_SIGMA_60 = 0.5
NOWCAST_VELOCITY_ERROR_KMH = 3.0
GRID_VARIABLE = "rain_rate_mm_h"
JST = dt.timezone(dt.timedelta(hours=9), "JST")


def every(start: dt.datetime, end: dt.datetime, step_s: int) -> list[dt.datetime]:
    """``start + k * step`` for k >= 1, up to and including ``end``."""
    n = int((end - start).total_seconds() // step_s)
    return [start + dt.timedelta(seconds=step_s * k) for k in range(1, n + 1)]


def stamp(when: dt.datetime, seconds: bool = False) -> str:
    """A UTC time for file names and ids: ``20050904T1220Z`` (or ``…T122000Z``)."""
    return when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ" if seconds else "%Y%m%dT%H%MZ")


# --------------------------------------------------------------------------- grids


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_cells: float = 2.0) -> np.ndarray:
    """Unit-variance Gaussian noise, smoothed over ``sigma_cells`` (separable convolution)."""
    pad = int(3 * sigma_cells) + 1
    noise = rng.normal(size=(shape[0] + 2 * pad, shape[1] + 2 * pad))
    x = np.arange(-pad, pad + 1)
    kernel = np.exp(-0.5 * (x / sigma_cells) ** 2)
    kernel /= kernel.sum()
    noise = np.apply_along_axis(np.convolve, 0, noise, kernel, mode="same")
    noise = np.apply_along_axis(np.convolve, 1, noise, kernel, mode="same")
    field = noise[pad:pad + shape[0], pad:pad + shape[1]]
    std = field.std()
    return field / std if std > 0 else field


def grid_fields(grid: GridDefinition, params: StormParams, issue: dt.datetime,
                rng: np.random.Generator) -> np.ndarray:
    """Observed (lead 0) and nowcast rain rates, mm/h, float32 (lead_time, y, x), 0.1 mm/h steps."""
    lon, lat = np.meshgrid(np.array(grid.lons), np.array(grid.lats))
    issue_min = (issue - params.start).total_seconds() / 60.0
    leads = np.array(NOWCAST_LEADS_MIN, dtype=float)
    error = rng.normal(0.0, NOWCAST_VELOCITY_ERROR_KMH, size=2)
    rate = nowcast_rate(params.cells, params.background_mm_h, lon.ravel(), lat.ravel(), issue_min, leads,
                        (float(error[0]), float(error[1])))
    fields = rate.T.reshape(len(leads), grid.ny, grid.nx)
    z = _smooth_noise(rng, (grid.ny, grid.nx))
    sigma = NOWCAST_LOG_SIGMA_60 * leads / 60.0
    fields = fields * np.exp(sigma[:, None, None] * z[None] - 0.5 * sigma[:, None, None] ** 2)
    return np.round(fields, 1).astype(np.float32)


def grid_dataset(grid: GridDefinition, fields: np.ndarray, issue: dt.datetime, *, storm: str, provenance: str):
    """The fields as an xarray Dataset ready for netCDF (CF-style attributes)."""
    import xarray as xr

    issue64 = np.datetime64(issue.astimezone(dt.UTC).replace(tzinfo=None), "ns")
    leads = np.array(NOWCAST_LEADS_MIN, dtype=np.int32)
    return xr.Dataset(
        {GRID_VARIABLE: (("lead_time", "y", "x"), fields, {
            "units": "mm h-1", "long_name": "rain rate (lead 0: observed; leads 5-60 min: advection nowcast)"})},
        coords={
            "lead_time": ("lead_time", leads, {"units": "minutes", "long_name": "minutes after the issue time"}),
            "valid_time": ("lead_time", issue64 + leads.astype("timedelta64[m]"), {"long_name": "valid time (UTC)"}),
            "time": ((), issue64, {"long_name": "issue time (UTC)"}),
            "lat": ("y", np.array(grid.lats), {"units": "degrees_north", "long_name": "cell centre latitude"}),
            "lon": ("x", np.array(grid.lons), {"units": "degrees_east", "long_name": "cell centre longitude"}),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": f"{grid.name}: rain rate, observed and nowcast to 60 min",
            "source": "SYNTHETIC data from the suibou storm synthesiser; not radar or JMA data",
            "storm": storm, "provenance": provenance, "grid_id": grid.grid_id,
            "grid": "JIS X 0410 third-order mesh cells (30 arc-seconds of latitude by 45 of longitude, about 1 km)",
            "cell_size_km": f"{grid.cell_km[0]:.3f} x {grid.cell_km[1]:.3f}",
            "nowcast_method": (f"advection (Lagrangian persistence) with a motion error of "
                               f"{NOWCAST_VELOCITY_ERROR_KMH} km/h per component and a log-normal error growing "
                               f"to a log standard deviation of {NOWCAST_LOG_SIGMA_60} at 60 min"),
        },
    )


def write_grid(path, dataset) -> None:
    """Writes a grid Dataset as netCDF-4 (h5netcdf), compressed, byte-for-byte reproducible."""
    encoding = {
        GRID_VARIABLE: {"zlib": True, "complevel": 4},
        "valid_time": {"units": "seconds since 1970-01-01 00:00:00", "dtype": "int64"},
        "time": {"units": "seconds since 1970-01-01 00:00:00", "dtype": "int64"},
    }
    dataset.to_netcdf(path, engine="h5netcdf", encoding=encoding)


#: The GRIB2 parameter suibou writes rain rates as: precipitation rate (discipline 0, category 1,
#: number 7), kg m-2 s-1, which is mm/s; cfgrib names it ``prate``.
GRIB2_RAIN_RATE = {"discipline": 0, "parameterCategory": 1, "parameterNumber": 7}
GRIB2_VARIABLE = "prate"
#: Run-length packing (template 5.200) stores level numbers and a table of level values as
#: 16-bit integers times 10**-decimal_scale. 10**-6 kg m-2 s-1 is 0.0036 mm/h, and 65,535 of
#: them 236 mm/h; a file with a higher rate (a nowcast's error can reach that) takes the next
#: coarser scale, 10**-5 (0.036 mm/h, up to 2,359 mm/h).
RUN_LENGTH_DECIMAL_SCALES = (6, 5, 4)
#: The decimal scale of simple packing (16 bits; ecCodes adds a binary scale where needed).
SIMPLE_DECIMAL_SCALE = 6
JMA_CENTRE = 34  # RJTD, Tokyo; the centre of JMA's own GRIB2 products


def grib2_messages(grid: GridDefinition, fields: np.ndarray, issue: dt.datetime, *,
                   packing: str = "run_length") -> list[bytes]:
    """One GRIB2 message per lead time of ``fields`` (mm/h, ``[lead, y, x]``, leads :data:`NOWCAST_LEADS_MIN`).

    Grid template 3.0 (regular latitude/longitude: the cell centres of ``grid``,
    scanned from the north-west corner as JMA's products are), product template
    4.0 with the lead as forecast time in minutes, and data representation 5.200
    (run-length packing, as JMA packs its rain analyses and nowcasts: each value
    becomes the nearest level of a table) or 5.0 (simple packing,
    ``packing="simple"``). Labelled as produced by centre 34 (JMA) but **synthetic**
    all the same: ``generatingProcessIdentifier`` 255 (missing), no JMA product.

    Raises:
        ValueError: ``packing`` is neither, or a rate is negative or beyond the level table.
    """
    import eccodes

    if packing not in ("run_length", "simple"):
        raise ValueError(f"packing must be 'run_length' or 'simple', not {packing!r}")
    if fields.shape != (len(NOWCAST_LEADS_MIN), grid.ny, grid.nx):
        raise ValueError(f"fields of shape {fields.shape} are not {len(NOWCAST_LEADS_MIN)} leads of {grid.grid_id}")
    # North to south, west to east: GRIB's default scanning mode (0).
    kg_m2_s = np.asarray(fields, dtype=np.float64)[:, ::-1, :] / 3600.0
    if (kg_m2_s < 0).any():
        raise ValueError("rain rates must not be negative")
    utc = issue.astimezone(dt.UTC)
    messages = []
    for lead_index, lead in enumerate(NOWCAST_LEADS_MIN):
        handle = eccodes.codes_grib_new_from_samples("GRIB2")
        try:
            for key, value in (
                ("centre", JMA_CENTRE), ("subCentre", 0), ("generatingProcessIdentifier", 255),
                ("significanceOfReferenceTime", 0 if lead == 0 else 1),
                ("dataDate", int(utc.strftime("%Y%m%d"))), ("dataTime", int(utc.strftime("%H%M"))),
                ("typeOfProcessedData", 0 if lead == 0 else 1),
                ("gridType", "regular_ll"), ("Ni", grid.nx), ("Nj", grid.ny),
                ("latitudeOfFirstGridPointInDegrees", grid.lats[-1]),
                ("longitudeOfFirstGridPointInDegrees", grid.lons[0]),
                ("latitudeOfLastGridPointInDegrees", grid.lats[0]),
                ("longitudeOfLastGridPointInDegrees", grid.lons[-1]),
                ("iDirectionIncrementInDegrees", round(grid.dlon, 6)),
                ("jDirectionIncrementInDegrees", round(grid.dlat, 6)),
                ("iScansNegatively", 0), ("jScansPositively", 0),
                ("productDefinitionTemplateNumber", 0), *GRIB2_RAIN_RATE.items(),
                ("typeOfGeneratingProcess", 0 if lead == 0 else 2),
                ("typeOfFirstFixedSurface", 1),
                ("indicatorOfUnitOfTimeRange", 0), ("forecastTime", lead),
            ):
                eccodes.codes_set(handle, key, value)
            values = kg_m2_s[lead_index].ravel()
            eccodes.codes_set_values(handle, np.zeros_like(values))  # sizes the data section for the grid
            if packing == "simple":
                eccodes.codes_set(handle, "packingType", "grid_simple")
                eccodes.codes_set(handle, "decimalScaleFactor", SIMPLE_DECIMAL_SCALE)
                eccodes.codes_set(handle, "bitsPerValue", 16)
                eccodes.codes_set_values(handle, values)
            else:
                _pack_run_length(handle, values)
            messages.append(bytes(eccodes.codes_get_message(handle)))
        finally:
            eccodes.codes_release(handle)
    return messages


def _pack_run_length(handle, values: np.ndarray) -> None:
    """Template 5.200: the values' distinct levels (in units of 10**-scale) as the table, then the values."""
    import eccodes

    largest = float(values.max(initial=0.0))
    decimal = next((d for d in RUN_LENGTH_DECIMAL_SCALES if round(largest * 10.0**d) < 0xFFFF), None)
    if decimal is None:
        raise ValueError(f"a rain rate of {largest * 3600:.1f} mm/h is beyond the run-length level table")
    scale = 10.0**decimal
    levels_int = np.rint(values * scale).astype(np.int64)
    table = np.unique(levels_int)
    # The missing value (9999 in the data's units) must not be a level; it is far above every rate here.
    bits = max(8, int(np.ceil(np.log2(len(table) + 2))) + 1)
    eccodes.codes_set(handle, "packingType", "grid_run_length")
    for key, value in (("bitsPerValue", bits), ("maxLevelValue", len(table)),
                       ("numberOfLevelValues", len(table)), ("decimalScaleFactor", decimal)):
        eccodes.codes_set(handle, key, value)
    eccodes.codes_set_array(handle, "levelValues", [int(v) for v in table])
    eccodes.codes_set_values(handle, levels_int / scale)


def write_grid_grib2(path, grid: GridDefinition, fields: np.ndarray, issue: dt.datetime, *,
                     packing: str = "run_length") -> None:
    """Writes :func:`grib2_messages` to ``path``, one message after another, as GRIB files are."""
    with open(path, "wb") as out:
        out.writelines(grib2_messages(grid, fields, issue, packing=packing))


# --------------------------------------------------------------------------- camera frames


@dataclasses.dataclass(frozen=True)
class FrameJob:
    camera_id: str
    when: dt.datetime
    level_m: float
    rain_mm_h: float


def frame_jobs(catalogue: StationCatalogue, params: StormParams, level_ids: Sequence[str], level_m: np.ndarray,
               start: dt.datetime, end: dt.datetime) -> list[FrameJob]:
    """Every frame to draw: cameras with a level gauge, every ``CAMERA_EVERY_S``."""
    cameras = [c for c in catalogue.cameras if c.level_station_id in level_ids]
    if not cameras:
        return []
    times = every(start, end, CAMERA_EVERY_S)
    minutes = np.array([(t - start).total_seconds() / 60.0 for t in times])
    rates = rain_rate(params.cells, params.background_mm_h, np.array([c.lon for c in cameras]),
                      np.array([c.lat for c in cameras]), minutes)
    steps = [int((t - start).total_seconds() // params.step_s) - 1 for t in times]
    jobs = []
    for k, camera in enumerate(cameras):
        assert camera.level_station_id is not None  # cameras without a gauge were left out above
        row = level_m[list(level_ids).index(camera.level_station_id)]
        for i, when in enumerate(times):
            jobs.append(FrameJob(camera.camera_id, when, float(row[steps[i]]), round(float(rates[k, i]), 2)))
    return jobs


def render_frames(catalogue: StationCatalogue, jobs: Sequence[FrameJob], seed: int) -> Iterator[tuple[FrameJob, bytes]]:
    """JPEG bytes of each frame."""
    from .camera import encode_jpeg, render_frame

    for job in jobs:
        gauge = catalogue.level_gauge(catalogue.camera(job.camera_id).level_station_id)  # type: ignore[arg-type]
        image = render_frame(job.level_m, gauge, when=job.when, camera_id=job.camera_id, seed=seed,
                             rain_mm_h=job.rain_mm_h)
        yield job, encode_jpeg(image)


# --------------------------------------------------------------------------- drone


@dataclasses.dataclass(frozen=True)
class DroneShot:
    flight_id: str
    seq: int
    when: dt.datetime
    lon: float
    lat: float
    finding: DroneFinding
    confidence: float

    @property
    def event_id(self) -> str:
        return f"{self.flight_id}:{self.seq:04d}"

    @property
    def image_name(self) -> str:
        return f"{self.flight_id}/{self.seq:04d}.jpg"


def _offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (round(lon + east_m / (111_320.0 * math.cos(math.radians(lat))), 6),
            round(lat + north_m / 110_574.0, 6))


def _along_reach(geometry: Sequence[tuple[float, float]], metres_upstream: float) -> tuple[float, float]:
    """The point ``metres_upstream`` of the reach's downstream end, along its line."""
    points = list(reversed(geometry))
    remaining = metres_upstream
    for (lon0, lat0), (lon1, lat1) in itertools.pairwise(points):
        x, y = local_km(lon1, lat1, lon0, lat0)
        length = float(math.hypot(float(x), float(y))) * 1000.0
        if length >= remaining:
            f = remaining / length if length else 0.0
            return round(lon0 + f * (lon1 - lon0), 6), round(lat0 + f * (lat1 - lat0), 6)
        remaining -= length
    return points[-1]


def plan_flights(catalogue: StationCatalogue, params: StormParams, damage: Sequence[Damage],
                 start: dt.datetime, end: dt.datetime) -> list[DroneShot]:
    """Drone observations of the storm's damage (rules in the module docstring)."""
    rng = np.random.default_rng([params.seed & 0xFFFFFFFF, 3])
    failed = {d.area_id for d in damage if d.kind == "slope_failure"}
    shots: list[DroneShot] = []
    flights = 0
    for d in sorted(damage, key=lambda d: (d.time, d.area_id)):
        earliest = (d.time - start).total_seconds() / 60.0 + 20.0
        horizon = (end - start).total_seconds() / 60.0
        minutes = np.arange(math.ceil(earliest), horizon + 1)
        if not minutes.size:
            continue
        site_rate = rain_rate(params.cells, params.background_mm_h, np.array([d.lon]), np.array([d.lat]), minutes)[0]
        calm = np.flatnonzero(site_rate < 10.0)
        if not calm.size:
            continue
        targets: list[tuple[float, float, DroneFinding, float]] = []
        if d.kind == "overflow":
            reach = catalogue.reach(d.area_id)
            targets.append((d.lon, d.lat, DroneFinding.INUNDATION, rng.uniform(0.75, 0.95)))
            for metres in (300.0, 600.0):
                lon, lat = _along_reach(reach.geometry, metres)
                targets.append((lon, lat, DroneFinding.INUNDATION, rng.uniform(0.6, 0.9)))
            for north in (500.0, -500.0):
                lon, lat = _offset(d.lon, d.lat, 0.0, north)
                targets.append((lon, lat, DroneFinding.NOTHING, rng.uniform(0.7, 0.9)))
        else:
            zone = catalogue.zone(d.area_id)
            lon, lat = zone.centroid
            targets.append((round(lon, 6), round(lat, 6), DroneFinding.SLOPE_FAILURE, rng.uniform(0.8, 0.97)))
            lon2, lat2 = _offset(lon, lat, 0.0, -120.0)
            targets.append((lon2, lat2, DroneFinding.SLOPE_FAILURE, rng.uniform(0.6, 0.85)))
            others = [z for z in catalogue.zones if z.zone_id not in failed][:2]
            for other in others:
                olon, olat = other.centroid
                targets.append((round(olon, 6), round(olat, 6), DroneFinding.NOTHING, rng.uniform(0.7, 0.9)))
            for east in (600.0, -600.0)[: max(0, 2 - len(others))]:
                olon, olat = _offset(lon, lat, east, 0.0)
                targets.append((olon, olat, DroneFinding.NOTHING, rng.uniform(0.7, 0.9)))
        launch = start + dt.timedelta(minutes=float(minutes[calm[0]]))
        if launch + dt.timedelta(minutes=2 * len(targets)) > end:
            continue
        flights += 1
        flight_id = f"FL-{launch.astimezone(JST):%Y%m%d}-{flights:02d}"
        for seq, (lon, lat, finding, confidence) in enumerate(targets, start=1):
            shots.append(DroneShot(flight_id, seq, launch + dt.timedelta(minutes=2 * seq), lon, lat, finding,
                                   round(float(confidence), 2)))
    return shots


def render_aerial(shot: DroneShot, seed: int, width: int = 160, height: int = 120) -> bytes:
    """A synthetic top-down drone photo (JPEG) of what the shot found."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(shot.event_id.encode())])
    img = Image.new("RGB", (width, height), (86, 120, 70))
    d = ImageDraw.Draw(img)
    # Ground: fields, trees and roofs in a loose grid.
    for _ in range(40):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        w, h = rng.uniform(8, 26), rng.uniform(6, 20)
        colour = [(70, 104, 58), (120, 128, 118), (150, 140, 120), (60, 90, 50)][int(rng.integers(0, 4))]
        d.rectangle([x, y, x + w, y + h], fill=colour)
    d.line([(0, height * 0.55), (width, height * 0.45)], fill=(170, 170, 165), width=4)  # a road
    if shot.finding is DroneFinding.INUNDATION:
        extent = 0.3 + 0.5 * shot.confidence
        d.polygon([(0, height * (1 - extent)), (width * 0.6, height * (1 - extent * 0.9)),
                   (width, height * (1 - extent * 0.7)), (width, height), (0, height)], fill=(122, 100, 70))
    elif shot.finding is DroneFinding.SLOPE_FAILURE:
        cx = width * rng.uniform(0.35, 0.65)
        spread = width * (0.15 + 0.25 * shot.confidence)
        d.polygon([(cx - 6, 0), (cx + 6, 0), (cx + spread, height), (cx - spread, height)], fill=(128, 96, 62))
        for _ in range(12):
            x, y = cx + rng.uniform(-spread / 2, spread / 2), rng.uniform(height * 0.3, height)
            d.ellipse([x, y, x + 4, y + 3], fill=(90, 80, 70))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0.0, 4.0, (height, width, 1))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, width, 11], fill=(0, 0, 0))
    d.text((2, 0), f"SYNTHETIC {shot.when.astimezone(JST):%m-%d %H:%M}", fill=(255, 255, 255))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=85, optimize=False, progressive=False)
    return buffer.getvalue()


def drone_event(shot: DroneShot, image_uri: str) -> DroneObservation:
    return DroneObservation(event_id=shot.event_id, event_time=shot.when, flight_id=shot.flight_id, lon=shot.lon,
                            lat=shot.lat, finding=shot.finding, confidence=shot.confidence, image_uri=image_uri)
