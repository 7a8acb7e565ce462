"""Storms on disk: the documented folder layout, materialising built-in storms, and importing recorded ones.

One folder per storm (``docs/storms.md`` has the full description)::

    <name>/
      manifest.json        format "suibou_storm/1": name, title, description, provenance, labels,
                           seed, start, end, step, what the folder holds, the storm's damage
      catalogue.json       station_catalogue/2: gauges with thresholds, reaches, zones, cameras, grids
      hazards.geojson      river reaches and landslide warning zones (GeoJSON FeatureCollection)
      points.parquet       rain and level readings: time, station_id, kind, value, interval_s
      grids/<grid_id>/<YYYYmmddTHHMMZ>.nc    rain rate, observed (lead 0) and nowcast to 60 min
      frames/index.csv     time, camera_id, file, width, height
      frames/<camera_id>/<YYYYmmddTHHMMSSZ>.jpg
      drone/<flight_id>.geojson              one FeatureCollection of observations per flight
      drone/<flight_id>/<nnnn>.jpg
      rejected.csv         imported storms only: rows refused at import, with line and reason

:func:`materialise` writes a built-in storm's folder deterministically (same
storm, same bytes) and reuses it while its fingerprint matches.
:func:`import_storm` turns a river bureau's CSV of readings and a station
catalogue into such a folder, in the storm cache, so that ``suibou drill NAME``
replays it like a built-in storm. :func:`open_storm` reads any storm folder.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import math
import os
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from suibou.catalogue import StationCatalogue
from suibou.contracts import (
    CameraFrame,
    ContractError,
    DroneFinding,
    DroneObservation,
    GridKind,
    GridNotice,
    LevelReading,
    RainReading,
    format_time,
    parse_time,
)

from . import media
from .synth import Damage, Storm

STORM_FORMAT = "suibou_storm/1"
#: Bump when the synthesiser or the media change what a materialised storm holds.
GENERATOR_VERSION = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_KINDS = {"rain_mm": "rain", "level_m": "level"}


def storm_cache(settings: Any = None) -> Path:
    """Where materialised and imported storms live: ``<SUIBOU_HOME>/cache/storms``."""
    if settings is None:
        from suibou.settings import get_settings

        settings = get_settings()
    return Path(settings.home) / "cache" / "storms"


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if data.get("format") == STORM_FORMAT else None


def imported_storms(root: Path | None = None) -> list[str]:
    """Names of the imported storms in the storm cache."""
    root = root or storm_cache()
    if not root.is_dir():
        return []
    names = []
    for folder in sorted(root.iterdir()):
        manifest = _read_manifest(folder) if folder.is_dir() else None
        if manifest and "imported" in manifest.get("labels", ()):
            names.append(folder.name)
    return names


# --------------------------------------------------------------------------- points


def _write_points(path: Path, storm: Storm) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    readings = storm.readings()
    table = pa.table({
        "time": pa.array([e.event_time for e in readings], pa.timestamp("s", tz="UTC")),
        "station_id": pa.array([e.station_id for e in readings], pa.string()),
        "kind": pa.array(["rain_mm" if isinstance(e, RainReading) else "level_m" for e in readings], pa.string()),
        "value": pa.array([e.rain_mm if isinstance(e, RainReading) else e.level_m for e in readings], pa.float64()),
        "interval_s": pa.array([e.interval_s if isinstance(e, RainReading) else None for e in readings], pa.int32()),
    })
    pq.write_table(table, path, compression="zstd")
    return len(readings)


def _read_points(path: Path) -> tuple[tuple[RainReading, ...], tuple[LevelReading, ...]]:
    import pyarrow.parquet as pq

    columns = pq.read_table(path).to_pydict()
    rain, levels = [], []
    for stamp, sid, kind, value, interval in zip(columns["time"], columns["station_id"], columns["kind"],
                                                 columns["value"], columns["interval_s"]):
        when = stamp.astimezone(dt.UTC)
        event_id = f"{sid}:{int(when.timestamp())}"
        if kind == "rain_mm":
            rain.append(RainReading(event_id=event_id, event_time=when, station_id=sid, rain_mm=value,
                                    interval_s=interval))
        else:
            levels.append(LevelReading(event_id=event_id, event_time=when, station_id=sid, level_m=value))
    return tuple(rain), tuple(levels)


# --------------------------------------------------------------------------- materialise


def fingerprint(storm: Storm) -> str:
    """What a built-in storm's folder depends on: the generator's code, parameters, catalogue."""
    here = Path(__file__).resolve().parent
    code = hashlib.sha256(b"".join((here / f).read_bytes() for f in ("synth.py", "media.py", "camera.py")))
    text = json.dumps({"generator": GENERATOR_VERSION, "code": code.hexdigest(), "params": repr(storm.params),
                       "catalogue": storm.catalogue.to_dict(), "name": storm.name, "title": storm.title,
                       "description": storm.description}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: How a materialised storm's rain grids are written (``netcdf`` or ``grib2``) -> their files' suffix.
GRID_SUFFIXES = {"netcdf": ".nc", "grib2": ".grib2"}
GRID_FORMATS = tuple(GRID_SUFFIXES)


def materialise(name: str, root: str | Path | None = None, *, force: bool = False,
                progress: bool = False, grid_format: str = "netcdf") -> Path:
    """Writes a built-in storm's folder under ``root`` (default: the storm cache); returns it.

    An existing folder with the same fingerprint is reused; imported storms are
    already on disk and are returned as they are. With ``grid_format="grib2"``
    the storm's rain grids are GRIB2 files (:func:`replay_data.media.write_grid_grib2`),
    in a folder of their own under ``root/grib2``; everything else is the same.

    Raises:
        KeyError: Unknown storm.
    """
    from .storms import is_builtin, load_storm

    if grid_format not in GRID_FORMATS:
        raise ValueError(f"grid format must be one of {', '.join(GRID_FORMATS)}, not {grid_format!r}")
    root = Path(root) if root is not None else storm_cache()
    folder = root / name if grid_format == "netcdf" else root / grid_format / name
    manifest = _read_manifest(folder)
    if not is_builtin(name):
        if manifest is None:
            raise KeyError(f"unknown storm {name!r}: neither built in nor imported under {root}")
        return folder
    storm = load_storm(name)
    key = fingerprint(storm) if grid_format == "netcdf" else f"{fingerprint(storm)}-{grid_format}"
    if manifest is not None and manifest.get("fingerprint") == key and not force:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = folder.parent / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        _write_storm(storm, work, key, progress, grid_format)
        shutil.rmtree(folder, ignore_errors=True)
        work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def _write_storm(storm: Storm, folder: Path, key: str, progress: bool, grid_format: str = "netcdf") -> None:
    from tqdm import tqdm

    assert storm.params is not None and storm.simulation is not None
    params, sim, catalogue = storm.params, storm.simulation, storm.catalogue
    catalogue.save(folder / "catalogue.json")
    (folder / "hazards.geojson").write_text(
        json.dumps(catalogue.hazard_areas_geojson(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    n_points = _write_points(folder / "points.parquet", storm)

    grids: list[dict[str, Any]] = []
    for index, grid in enumerate(catalogue.grids):
        rng = np.random.default_rng([params.seed & 0xFFFFFFFF, 1, index])
        (folder / "grids" / grid.grid_id).mkdir(parents=True)
        issues = media.every(storm.start, storm.end, media.GRID_EVERY_S)
        for issue in tqdm(issues, disable=not progress, desc=f"grids {grid.grid_id}", unit="file"):
            fields = media.grid_fields(grid, params, issue, rng)
            path = folder / "grids" / grid.grid_id / f"{media.stamp(issue)}{GRID_SUFFIXES[grid_format]}"
            if grid_format == "grib2":
                media.write_grid_grib2(path, grid, fields, issue)
            else:
                media.write_grid(path, media.grid_dataset(grid, fields, issue, storm=storm.name,
                                                          provenance=storm.provenance))
        grids.append({"grid_id": grid.grid_id, "dir": f"grids/{grid.grid_id}", "format": grid_format,
                      "variable": media.GRIB2_VARIABLE if grid_format == "grib2" else media.GRID_VARIABLE,
                      "every_s": media.GRID_EVERY_S, "leads_min": list(media.NOWCAST_LEADS_MIN),
                      "files": len(issues)})

    jobs = media.frame_jobs(catalogue, params, sim.level_ids, sim.level_m, storm.start, storm.end)
    index_rows = []
    for job, jpeg in tqdm(media.render_frames(catalogue, jobs, params.seed), total=len(jobs), disable=not progress,
                          desc="camera frames", unit="frame"):
        relative = f"frames/{job.camera_id}/{media.stamp(job.when, seconds=True)}.jpg"
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg)
        index_rows.append([format_time(job.when), job.camera_id, relative, 160, 120])
    if index_rows:
        with open(folder / "frames" / "index.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["time", "camera_id", "file", "width", "height"])
            writer.writerows(index_rows)

    shots = media.plan_flights(catalogue, params, storm.damage, storm.start, storm.end)
    flights: dict[str, list[media.DroneShot]] = {}
    for shot in shots:
        flights.setdefault(shot.flight_id, []).append(shot)
    for flight_id, flight in flights.items():
        (folder / "drone" / flight_id).mkdir(parents=True)
        features = []
        for shot in flight:
            (folder / "drone" / shot.image_name).write_bytes(media.render_aerial(shot, params.seed))
            features.append({
                "type": "Feature", "id": shot.event_id,
                "geometry": {"type": "Point", "coordinates": [shot.lon, shot.lat]},
                "properties": {"time": format_time(shot.when), "finding": shot.finding.value,
                               "confidence": shot.confidence, "image": shot.image_name},
            })
        collection = {"type": "FeatureCollection", "flight_id": flight_id, "storm": storm.name,
                      "synthetic": True, "features": features}
        (folder / "drone" / f"{flight_id}.geojson").write_text(
            json.dumps(collection, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    manifest = {
        "format": STORM_FORMAT,
        "name": storm.name, "title": storm.title, "description": storm.description,
        "provenance": storm.provenance, "labels": list(storm.labels),
        "seed": params.seed, "fingerprint": key,
        "generator": {"module": "replay_data.synth", "version": GENERATOR_VERSION, "params": repr(params)},
        "start": format_time(storm.start), "end": format_time(storm.end), "step_s": params.step_s,
        "catalogue": "catalogue.json", "hazards": "hazards.geojson", "points": "points.parquet",
        "grids": grids,
        "frames": {"index": "frames/index.csv", "every_s": media.CAMERA_EVERY_S, "count": len(index_rows)}
        if index_rows else None,
        "drone": [f"drone/{f}.geojson" for f in flights],
        "damage": [d.to_dict() for d in storm.damage],
        "counts": {"readings": n_points, "grid_files": sum(g["files"] for g in grids),
                   "frames": len(index_rows), "drone_observations": len(shots)},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                          encoding="utf-8")


# --------------------------------------------------------------------------- open


def open_storm(folder: str | Path) -> Storm:
    """Reads a storm folder (built-in or imported) with every feed it holds.

    Raises:
        ValueError: Not a storm folder.
    """
    folder = Path(folder).resolve()
    manifest = _read_manifest(folder)
    if manifest is None:
        raise ValueError(f"{folder} is not a storm folder (no {STORM_FORMAT} manifest.json)")
    catalogue = StationCatalogue.load(folder / manifest["catalogue"])
    rain, levels = _read_points(folder / manifest["points"])
    uri = folder.as_uri()

    notices = []
    for grid in manifest.get("grids") or ():
        suffix = GRID_SUFFIXES[grid.get("format", "netcdf")]
        for path in sorted((folder / grid["dir"]).glob(f"*{suffix}")):
            issue = dt.datetime.strptime(path.stem, "%Y%m%dT%H%MZ").replace(tzinfo=dt.UTC)
            file_uri = f"{uri}/{grid['dir']}/{path.name}"
            for lead in grid["leads_min"]:
                kind = GridKind.OBSERVED if lead == 0 else GridKind.NOWCAST
                notices.append(GridNotice(
                    event_id=f"{grid['grid_id']}:{path.stem}:{'obs' if lead == 0 else f'{lead:02d}'}",
                    event_time=issue, grid_id=grid["grid_id"], valid_time=issue + dt.timedelta(minutes=lead),
                    kind=kind, uri=file_uri, variable=grid["variable"]))

    frames = []
    if manifest.get("frames"):
        with open(folder / manifest["frames"]["index"], newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                when = parse_time("time", row["time"])
                frames.append(CameraFrame(
                    event_id=f"{row['camera_id']}:{int(when.timestamp())}", event_time=when,
                    camera_id=row["camera_id"], image_uri=f"{uri}/{row['file']}", content_type="image/jpeg",
                    width=int(row["width"]), height=int(row["height"])))

    drone = []
    for relative in manifest.get("drone") or ():
        collection = json.loads((folder / relative).read_text(encoding="utf-8"))
        for feature in collection["features"]:
            props = feature["properties"]
            lon, lat = feature["geometry"]["coordinates"]
            drone.append(DroneObservation(
                event_id=feature["id"], event_time=parse_time("time", props["time"]),
                flight_id=collection["flight_id"], lon=lon, lat=lat, finding=DroneFinding(props["finding"]),
                confidence=props["confidence"], image_uri=f"{uri}/drone/{props['image']}"))

    damage = tuple(Damage(d["kind"], d["area_id"], parse_time("time", d["time"]), d["lon"], d["lat"])
                   for d in manifest.get("damage") or ())
    return Storm(
        name=manifest["name"], title=manifest["title"], description=manifest["description"],
        provenance=manifest["provenance"], start=parse_time("start", manifest["start"]),
        end=parse_time("end", manifest["end"]), catalogue=catalogue, rain=rain, levels=levels,
        frames=tuple(frames), drone=tuple(drone), grids=tuple(notices), damage=damage,
        labels=tuple(manifest.get("labels", ())), root=folder,
    )


def prepare_storm(name: str, settings: Any = None, *, progress: bool = False, grid_format: str = "netcdf") -> Storm:
    """A storm ready to drill, with every feed: materialised into the cache if built in (its rain
    grids as ``grid_format``; an imported storm's grids are what was imported)."""
    return open_storm(materialise(name, storm_cache(settings), progress=progress, grid_format=grid_format))


# --------------------------------------------------------------------------- import


@dataclasses.dataclass(frozen=True)
class RowError:
    """A row refused at import: its line in the file (header = line 1) and why."""

    line: int
    reason: str
    text: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class StormImportError(ValueError):
    """The import was refused; ``errors`` lists every bad row (or the file-level problem)."""

    def __init__(self, message: str, errors: Sequence[RowError] = ()):
        self.errors = list(errors)
        shown = "\n".join(f"  {e}" for e in self.errors[:25])
        more = f"\n  ... and {len(self.errors) - 25} more" if len(self.errors) > 25 else ""
        super().__init__(f"{message}\n{shown}{more}" if self.errors else message)


@dataclasses.dataclass(frozen=True)
class ImportResult:
    name: str
    folder: Path
    readings: int
    rejected: tuple[RowError, ...]
    start: dt.datetime
    end: dt.datetime


@dataclasses.dataclass
class _Row:
    line: int
    time: dt.datetime
    station_id: str
    kind: str
    value: float
    interval_s: int | None
    text: str


def _load_stations(path: Path) -> StationCatalogue:
    try:
        return StationCatalogue.load(path)
    except FileNotFoundError:
        raise StormImportError(f"station file {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise StormImportError(f"station file {path} is not a usable station catalogue: {error}") from None


def read_readings(path: str | Path, catalogue: StationCatalogue) -> tuple[list[RainReading | LevelReading],
                                                                          list[RowError]]:
    """Checks every row of a readings CSV against the catalogue and the contracts.

    Columns ``time,station_id,kind,value`` and optionally ``interval_s`` (rain
    only; otherwise the most common spacing of that gauge's readings). Blank
    lines are ignored; every other row is either a reading or a :class:`RowError`.

    Raises:
        StormImportError: The file cannot be read or its header is wrong.
    """
    path = Path(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by `with handle` below
    except OSError as error:
        raise StormImportError(f"cannot read {path}: {error}") from None
    rows: list[_Row] = []
    errors: list[RowError] = []
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise StormImportError(f"{path} is empty; expected a header line time,station_id,kind,value") from None
        except (csv.Error, UnicodeDecodeError) as error:
            raise StormImportError(f"{path}: line 1: {error}") from None
        expected = ["time", "station_id", "kind", "value"]
        if header not in (expected, expected + ["interval_s"]):
            raise StormImportError(
                f"{path}: line 1: header must be time,station_id,kind,value[,interval_s], got {','.join(header)}")
        rain_ids = {g.station_id for g in catalogue.rain_gauges}
        level_ids = {g.station_id for g in catalogue.level_gauges}
        line = 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as error:
                errors.append(RowError(reader.line_num, f"unreadable row: {error}"))
                continue
            line = reader.line_num
            text = ",".join(fields)
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                errors.append(RowError(line, f"expected {len(header)} fields ({','.join(header)}), "
                                             f"got {len(fields)}", text))
                continue
            time_text, station_id, kind, value_text = (f.strip() for f in fields[:4])
            try:
                when = parse_time("time", time_text)
            except ContractError as error:
                errors.append(RowError(line, str(error), text))
                continue
            if kind not in _KINDS:
                errors.append(RowError(line, f"kind must be rain_mm or level_m, got {kind!r}", text))
                continue
            if station_id not in rain_ids and station_id not in level_ids:
                errors.append(RowError(line, f"unknown station {station_id!r} (not in catalogue "
                                             f"{catalogue.name!r})", text))
                continue
            if kind == "rain_mm" and station_id not in rain_ids:
                errors.append(RowError(line, f"{station_id} is a water-level gauge; rain_mm needs a rain gauge", text))
                continue
            if kind == "level_m" and station_id not in level_ids:
                errors.append(RowError(line, f"{station_id} is a rain gauge; level_m needs a water-level gauge", text))
                continue
            try:
                value = float(value_text)
            except ValueError:
                errors.append(RowError(line, f"value must be a number, got {value_text!r}", text))
                continue
            if not math.isfinite(value):
                errors.append(RowError(line, f"value must be finite, got {value_text!r}", text))
                continue
            interval = None
            if len(fields) == 5 and fields[4].strip():
                try:
                    interval = int(fields[4].strip())
                except ValueError:
                    errors.append(RowError(line, f"interval_s must be a whole number of seconds, got {fields[4]!r}",
                                           text))
                    continue
            rows.append(_Row(line, when, station_id, kind, value, interval, text))

    # Duplicates, then the rain gauges' reading intervals.
    first_line: dict[tuple[str, str, dt.datetime], int] = {}
    unique: list[_Row] = []
    for row in rows:
        key = (row.station_id, row.kind, row.time)
        if key in first_line:
            errors.append(RowError(row.line, f"duplicate reading: {row.station_id} {row.kind} at "
                                             f"{format_time(row.time)} is already on line {first_line[key]}", row.text))
            continue
        first_line[key] = row.line
        unique.append(row)
    spacing: dict[str, int] = {}
    by_station: dict[str, list[dt.datetime]] = {}
    for row in unique:
        if row.kind == "rain_mm":
            by_station.setdefault(row.station_id, []).append(row.time)
    for station_id, times in by_station.items():
        times.sort()
        gaps = Counter(int((b - a).total_seconds()) for a, b in itertools.pairwise(times))
        if gaps:
            spacing[station_id] = gaps.most_common(1)[0][0]

    readings: list[RainReading | LevelReading] = []
    for row in unique:
        event_id = f"{row.station_id}:{int(row.time.timestamp())}"
        try:
            if row.kind == "rain_mm":
                interval = row.interval_s or spacing.get(row.station_id)
                if interval is None:
                    errors.append(RowError(row.line, f"cannot tell the reading interval of {row.station_id} from a "
                                                     "single reading; add an interval_s column", row.text))
                    continue
                readings.append(RainReading.from_dict({
                    "event_id": event_id, "event_time": row.time, "station_id": row.station_id,
                    "rain_mm": row.value, "interval_s": interval}))
            else:
                readings.append(LevelReading.from_dict({
                    "event_id": event_id, "event_time": row.time, "station_id": row.station_id,
                    "level_m": row.value}))
        except ContractError as error:
            errors.append(RowError(row.line, str(error), row.text))
    errors.sort(key=lambda e: e.line)
    return readings, errors


def import_storm(csv_path: str | Path, stations_path: str | Path, name: str, *, root: str | Path | None = None,
                 title: str | None = None, description: str | None = None, skip_bad_rows: bool = False,
                 replace: bool = False) -> ImportResult:
    """Registers a recorded storm in the storm cache so that it replays like a built-in one.

    Args:
        csv_path: Readings, columns ``time,station_id,kind,value[,interval_s]``.
        stations_path: A station catalogue (``station_catalogue/1`` or ``/2`` JSON).
        name: The storm's name for ``suibou drill`` (lower case, digits, ``.``, ``_``, ``-``).
        root: Storm cache (default ``<SUIBOU_HOME>/cache/storms``).
        title, description: For people; defaults say where the data came from.
        skip_bad_rows: Import the good rows and keep the refused ones, with their
            line numbers and reasons, in ``rejected.csv``. Without it, any bad
            row refuses the whole import.
        replace: Overwrite an imported storm of the same name.

    Raises:
        StormImportError: Bad name or station file, bad rows (each with its
            line number), or no usable reading.
    """
    from .storms import is_builtin

    if not _NAME.match(name):
        raise StormImportError(f"storm name {name!r} must be 1-64 lower-case letters, digits, '.', '_' or '-'")
    if is_builtin(name):
        raise StormImportError(f"{name!r} is a built-in storm; choose another name")
    root = Path(root) if root is not None else storm_cache()
    folder = root / name
    if folder.exists() and not replace:
        raise StormImportError(f"a storm named {name!r} already exists in {root}; pass replace=True (--replace)")
    csv_path, stations_path = Path(csv_path), Path(stations_path)
    catalogue = _load_stations(stations_path)
    readings, errors = read_readings(csv_path, catalogue)
    if errors and not skip_bad_rows:
        raise StormImportError(f"{csv_path}: {len(errors)} bad row(s); nothing was imported "
                               "(fix them, or skip them with --skip-bad-rows)", errors)
    if not readings:
        raise StormImportError(f"{csv_path}: no usable reading", errors)
    readings.sort(key=lambda e: (e.event_time, 0 if isinstance(e, RainReading) else 1, e.station_id))
    first_interval = min((e.interval_s for e in readings if isinstance(e, RainReading)), default=60)
    start = readings[0].event_time - dt.timedelta(seconds=first_interval)
    end = readings[-1].event_time
    rain = tuple(e for e in readings if isinstance(e, RainReading))
    levels = tuple(e for e in readings if isinstance(e, LevelReading))
    storm = Storm(
        name=name, title=title or f"{name} (imported from {csv_path.name})",
        description=description or (
            f"Recorded readings imported from {csv_path.name} with the stations of {stations_path.name} "
            f"(catalogue {catalogue.name!r}). Provenance as stated by whoever recorded them; suibou checked each "
            f"row against the catalogue and the contracts"
            + (f" and refused {len(errors)} row(s), listed in rejected.csv." if errors else ".")),
        provenance="observed (imported)", start=start, end=end, catalogue=catalogue, rain=rain, levels=levels,
        labels=("imported",),
    )
    root.mkdir(parents=True, exist_ok=True)
    work = root / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        catalogue.save(work / "catalogue.json")
        (work / "hazards.geojson").write_text(
            json.dumps(catalogue.hazard_areas_geojson(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        n = _write_points(work / "points.parquet", storm)
        if errors:
            with open(work / "rejected.csv", "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["line", "reason", "row"])
                writer.writerows([e.line, e.reason, e.text] for e in errors)
        manifest = {
            "format": STORM_FORMAT, "name": name, "title": storm.title, "description": storm.description,
            "provenance": storm.provenance, "labels": list(storm.labels), "seed": None,
            "source": {"readings": str(csv_path.resolve()), "stations": str(stations_path.resolve()),
                       "imported_at": format_time(dt.datetime.now(dt.UTC))},
            "start": format_time(start), "end": format_time(end), "step_s": first_interval,
            "catalogue": "catalogue.json", "hazards": "hazards.geojson", "points": "points.parquet",
            "grids": [], "frames": None, "drone": [], "damage": [],
            "rejected": "rejected.csv" if errors else None,
            "counts": {"readings": n, "rejected_rows": len(errors)},
        }
        (work / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                            encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ImportResult(name=name, folder=folder, readings=n, rejected=tuple(errors), start=start, end=end)


def remove_storm(name: str, root: Path | None = None) -> None:
    """Deletes an imported storm from the cache."""
    folder = (root or storm_cache()) / name
    if name not in imported_storms(root):
        raise KeyError(f"no imported storm {name!r}")
    shutil.rmtree(folder)


__all__ = [
    "ImportResult", "RowError", "StormImportError", "import_storm", "imported_storms", "materialise",
    "open_storm", "prepare_storm", "read_readings", "remove_storm", "storm_cache",
]
