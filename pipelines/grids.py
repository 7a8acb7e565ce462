"""Rainfall grids: each netCDF file a notice points to is read once with xarray and
sampled onto the reaches and landslide zones it covers.

A grid file holds the observed rain rate (lead 0) and the nowcast to 60 minutes
(mm/h, dims ``lead_time, y, x``; see :mod:`replay_data.media`). An area's
rain is the mean over its cells: the cells holding the rain gauges that sample
it, which is how the models were trained (the basin or zone mean of its
gauges), or, for an area with no gauge on the grid, the cells its geometry
touches. The nowcast is accumulated into the rain expected in the next 30 and
60 minutes, the ``nowcast_rain_*`` features of ``flood/3`` and ``landslide/1``.

One file is announced by several notices (one per lead time); the first one
read wins and the others are dropped as duplicates. A file that is missing,
too large, or not the grid its id says becomes a dead letter with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterable, Iterator, Mapping

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from pipelines.ordered import DEAD_LETTER, Fold, FoldInEventTime, FoldPace, stream_key
from suibou.catalogue import GridDefinition, StationCatalogue
from suibou.contracts import AreaKind, DeadLetter, GridNotice, local_path
from suibou.runoff import own_rain_stations

#: A 1 km grid over a basin with 13 lead times is a few hundred kilobytes; far larger is not one of ours.
MAX_GRID_BYTES = 64 * 1024 * 1024
#: Nowcast horizons the models take, minutes.
NOWCAST_HORIZONS_MIN = (30, 60)
#: A grid counts for this long after its issue (grids come every 5 to 10 minutes).
GRID_MAX_AGE_S = 900.0

Cell = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class AreaRainfall:
    """Rain over one reach or zone from one grid issue.

    Attributes:
        event_time: The grid's issue time.
        observed_mm_h: Mean observed rain rate now (lead 0), if the file has it.
        nowcast_30min_mm: Rain the nowcast expects in the next 30 minutes.
        nowcast_60min_mm: Rain the nowcast expects in the next 60 minutes.
        cell_rates_mm_h: A reach's observed rain rate in each of its own cells
            (:attr:`AreaCells.local_cells`), for its surface tanks (:mod:`pipelines.runoff`).
        cell_nowcast_30min_mm, cell_nowcast_60min_mm: The nowcast's rain per cell.
    """

    area_id: str
    area_kind: AreaKind
    grid_id: str
    event_time: dt.datetime
    observed_mm_h: float | None
    nowcast_30min_mm: float | None
    nowcast_60min_mm: float | None
    exercise: bool
    drill_id: str | None
    cell_rates_mm_h: tuple[float, ...] = ()
    cell_nowcast_30min_mm: tuple[float, ...] = ()
    cell_nowcast_60min_mm: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class AreaCells:
    """The cells of one grid that stand for one area.

    Attributes:
        cells: Those whose mean is the area's rain: for a reach, the cells of
            every rain gauge upstream of its level gauge (its whole catchment).
        local_cells: A reach's own part of them: the cells of its own rain gauges
            (:func:`suibou.runoff.own_rain_stations`), or all of ``cells`` where it
            has none. Its surface tanks (:mod:`pipelines.runoff`) stand on them.
    """

    area_id: str
    area_kind: AreaKind
    cells: tuple[Cell, ...]
    local_cells: tuple[Cell, ...] = ()


def _geometry_cells(grid: GridDefinition, points: Iterable[tuple[float, float]]) -> tuple[Cell, ...]:
    return tuple(sorted({c for lon, lat in points if (c := grid.cell_of(lon, lat)) is not None}))


def area_cells(catalogue: StationCatalogue) -> dict[str, tuple[AreaCells, ...]]:
    """Grid id -> the reaches and zones it stands for, each with the cells that stand for it.

    Each area is sampled from one grid only: of those that cover it, the one
    with the most of its cells (the first by id on a tie). Two grids issued at
    the same instant would otherwise give one area two rain fields at once,
    and which of them the area used would depend on the order they arrived.
    """
    candidates: dict[str, list[tuple[int, str, AreaCells]]] = {}
    for grid in catalogue.grids:
        for kind, area_id, gauges, outline in (
            *((AreaKind.REACH, r.reach_id, catalogue.rain_stations_for_reach(r.reach_id), r.geometry)
              for r in catalogue.reaches),
            *((AreaKind.ZONE, z.zone_id, catalogue.rain_stations_for_zone(z.zone_id), (z.centroid,))
              for z in catalogue.zones),
        ):
            cells = _geometry_cells(grid, ((g.lon, g.lat) for g in gauges)) or _geometry_cells(grid, outline)
            if cells:
                candidates.setdefault(area_id, []).append((-len(cells), grid.grid_id, AreaCells(area_id, kind, cells)))
    chosen = {area_id: min(options, key=lambda option: option[:2])[1:] for area_id, options in candidates.items()}
    sampled: dict[str, list[AreaCells]] = {grid.grid_id: [] for grid in catalogue.grids}
    grids = {g.grid_id: g for g in catalogue.grids}
    for area_id, (grid_id, area) in chosen.items():
        if area.area_kind is AreaKind.REACH:
            own = [catalogue.rain_gauge(s) for s in own_rain_stations(catalogue, area_id)]
            local = _geometry_cells(grids[grid_id], ((g.lon, g.lat) for g in own)) or area.cells
            sampled[grid_id].append(dataclasses.replace(area, local_cells=local))
        else:
            sampled[grid_id].append(area)
    return {grid_id: tuple(areas) for grid_id, areas in sampled.items()}


def accumulate_nowcast(leads_min: np.ndarray, rates_mm_h: np.ndarray, horizon_min: int) -> float | None:
    """Rain (mm) expected within ``horizon_min``: each lead's rate held over the step before it.

    Examples:
        >>> accumulate_nowcast(np.array([0, 5, 10, 15, 20, 25, 30]), np.array([9.0, 12, 12, 12, 12, 12, 12]), 30)
        6.0
        >>> accumulate_nowcast(np.array([0]), np.array([9.0]), 30) is None
        True
    """
    ahead = (leads_min > 0) & (leads_min <= horizon_min)
    if not ahead.any() or leads_min[ahead].max() < horizon_min:
        return None  # The file does not reach that far ahead.
    steps = np.diff(np.concatenate([[0], leads_min[ahead]])) / 60.0
    return round(float(np.sum(rates_mm_h[ahead] * steps)), 1)


def sample_area(leads_min: np.ndarray, fields: np.ndarray, cells: tuple[Cell, ...]
                ) -> tuple[float | None, float | None, float | None]:
    """(observed mm/h, nowcast 30 min mm, nowcast 60 min mm) over ``cells`` of ``fields[lead, y, x]``."""
    rows, columns = zip(*cells, strict=True)
    rates = fields[:, list(rows), list(columns)].mean(axis=1)
    observed = rates[leads_min == 0]
    return (  # type: ignore[return-value]  # NOWCAST_HORIZONS_MIN holds two horizons
        round(float(observed[0]), 1) if observed.size else None,
        *(accumulate_nowcast(leads_min, rates, h) for h in NOWCAST_HORIZONS_MIN),
    )


def sample_cells(leads_min: np.ndarray, fields: np.ndarray, cells: tuple[Cell, ...]
                 ) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Per cell of ``cells``: the observed rate (mm/h) and the nowcast's rain in 30 and 60 minutes (mm).

    Each tuple is empty when the file lacks that lead (no analysis, or a nowcast short of the horizon).
    """
    rows, columns = zip(*cells, strict=True)
    rates = fields[:, list(rows), list(columns)]
    observed = rates[leads_min == 0]
    now = tuple(round(float(v), 1) for v in observed[0]) if observed.shape[0] else ()
    ahead = [tuple(a for c in range(len(cells)) if (a := accumulate_nowcast(leads_min, rates[:, c], h)) is not None)
             for h in NOWCAST_HORIZONS_MIN]
    return (now, *(a if len(a) == len(cells) else () for a in ahead))  # type: ignore[return-value]


def read_grid(uri: str, variable: str, grid: GridDefinition) -> tuple[np.ndarray, np.ndarray]:
    """Lead times (minutes) and rain rates ``[lead, y, x]`` (mm/h, rows south to north) of one grid file.

    The file is netCDF (``variable`` in mm/h over ``lead_time, y, x``, as
    :mod:`replay_data.media` writes it) or GRIB2 (``variable`` the cfgrib name
    of a precipitation rate in kg m-2 s-1, one message per lead time; see
    :func:`read_grib2`), told apart by the file's first bytes.

    Raises:
        ValueError: The file is missing, too large, lacks ``variable``, or its
            cells are not those of ``grid``.
    """
    path = local_path(uri, "grid uri")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as file:
            magic = file.read(4)
    except OSError as error:
        raise ValueError(f"cannot read {uri}: {error.strerror or error}") from None
    if size > MAX_GRID_BYTES:
        raise ValueError(f"{uri} is larger than {MAX_GRID_BYTES} bytes")
    leads, values = (read_grib2 if magic == b"GRIB" else _read_netcdf)(path, uri, variable, grid)
    if not np.all(np.isfinite(values)) or values.min() < 0:
        raise ValueError(f"{uri}: {variable} has negative or missing rain rates")
    return leads, values


def _check_cells(uri: str, lons: np.ndarray, lats: np.ndarray, grid: GridDefinition) -> None:
    if (lons.shape, lats.shape) != ((grid.nx,), (grid.ny,)) or not (
            np.allclose(lons, grid.lons, atol=1e-5) and np.allclose(lats, grid.lats, atol=1e-5)):
        raise ValueError(f"{uri}: its cells are not those of grid {grid.grid_id}")


def _read_netcdf(path: str, uri: str, variable: str, grid: GridDefinition) -> tuple[np.ndarray, np.ndarray]:
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="h5netcdf") as dataset:
            if variable not in dataset:
                raise ValueError(f"{uri} has no variable {variable!r}")
            field = dataset[variable]
            if field.dims != ("lead_time", "y", "x"):
                raise ValueError(f"{uri}: {variable} has dims {field.dims}, expected (lead_time, y, x)")
            _check_cells(uri, dataset["lon"].values, dataset["lat"].values, grid)
            leads = np.asarray(dataset["lead_time"].values, dtype=np.int64)
            values = np.asarray(field.values, dtype=np.float64)
    except (OSError, KeyError) as error:
        raise ValueError(f"cannot read {uri} as netCDF: {error}") from None
    return leads, values


#: GRIB2 units of a rain rate that the grid stage converts to mm/h.
GRIB2_RATE_UNITS = {"kg m**-2 s**-1": 3600.0}


def grib2_templates(path: str) -> list[tuple[int, int | None]]:
    """(product definition template, data representation template) of each GRIB2 message in a file.

    The data template is None where ecCodes cannot decode the message's
    product definition, as with a centre's local templates it has no
    definition of (JMA's rain products use templates of its own).
    """
    import eccodes

    found: list[tuple[int, int | None]] = []
    with open(path, "rb") as file:
        while (handle := eccodes.codes_grib_new_from_file(file)) is not None:
            try:
                product = int(eccodes.codes_get(handle, "productDefinitionTemplateNumber"))
                try:
                    eccodes.codes_get(handle, "forecastTime")
                    data: int | None = int(eccodes.codes_get(handle, "dataRepresentationTemplateNumber"))
                except eccodes.CodesInternalError:
                    data = None
                found.append((product, data))
            finally:
                eccodes.codes_release(handle)
    return found


def read_grib2(path: str, uri: str, variable: str, grid: GridDefinition) -> tuple[np.ndarray, np.ndarray]:
    """A GRIB2 grid file through xarray and cfgrib: ``variable`` (a rain rate) at each lead, in mm/h.

    Every message must decode with ecCodes' definitions: grid template 3.0 on
    the catalogue grid's cell centres (either scanning direction), one product
    per lead time, any packing ecCodes reads (simple, JPEG 2000, PNG, complex,
    and JMA's run-length packing, template 5.200).
    """
    import cfgrib
    import eccodes
    import xarray as xr

    try:
        templates = grib2_templates(path)
    except (eccodes.CodesInternalError, OSError) as error:  # a damaged or cut file
        raise ValueError(f"cannot read {uri} as GRIB2: {type(error).__name__}: {error}") from None
    if not templates:
        raise ValueError(f"{uri} holds no GRIB2 message")
    for index, (product, data) in enumerate(templates):
        if data is None:
            raise ValueError(f"{uri}: message {index + 1} has product definition template 4.{product}, which "
                             f"ecCodes has no definition of (a centre's local template; see docs/grids.md)")
    try:
        # One dataset per kind of message: an analysis at lead 0 and forecasts after it come apart.
        parts = [d[variable] for d in cfgrib.open_datasets(path, backend_kwargs={"indexpath": ""})
                 if variable in d]
        if not parts:
            raise ValueError(f"{uri} has no variable {variable!r}")
        units = {str(part.attrs.get("GRIB_units")) for part in parts}
        factor = GRIB2_RATE_UNITS.get(units.pop()) if len(units) == 1 else None
        if factor is None:
            raise ValueError(f"{uri}: {variable} is not a rain rate in {' or '.join(GRIB2_RATE_UNITS)}")
        field = xr.concat([part if "step" in part.dims else part.expand_dims("step") for part in parts], "step",
                          coords="minimal", compat="override")
        if set(field.dims) != {"step", "latitude", "longitude"}:
            raise ValueError(f"{uri}: {variable} has dims {field.dims}, expected step, latitude, longitude")
        field = field.transpose("step", "latitude", "longitude").sortby("latitude").sortby("step")
        _check_cells(uri, field["longitude"].values, field["latitude"].values, grid)
        leads = np.asarray(field["step"].values, dtype="timedelta64[s]").astype(np.int64) // 60
        values = np.asarray(field.values, dtype=np.float64) * factor
    except cfgrib.dataset.DatasetBuildError as error:  # messages that do not make one field
        raise ValueError(f"cannot read {uri} as GRIB2: {error}") from None
    except (eccodes.CodesInternalError, OSError, KeyError, EOFError) as error:
        raise ValueError(f"cannot read {uri} as GRIB2: {type(error).__name__}: {error}") from None
    return leads, values


@dataclasses.dataclass(frozen=True)
class FirstNoticePerFile(Fold[None, GridNotice, GridNotice]):
    """Passes the first notice of each grid file; later notices of the same file are duplicates."""

    name: str = "grid_notices"

    def initial(self, key: str) -> None:
        return None

    def event_time(self, item: GridNotice) -> dt.datetime:
        return item.event_time

    def identity(self, item: GridNotice) -> str:
        return item.uri

    def step(self, key: str, state: None, item: GridNotice) -> tuple[None, list[GridNotice]]:
        return None, [item]


class _SampleGridFn(beam.DoFn):
    def __init__(self, catalogue: StationCatalogue):
        self._catalogue = catalogue
        self._read = Metrics.counter("grids", "files_read")

    def setup(self) -> None:
        self._grids = {g.grid_id: g for g in self._catalogue.grids}
        self._areas = area_cells(self._catalogue)

    def process(self, notice: GridNotice) -> Iterator[object]:
        grid = self._grids.get(notice.grid_id)
        try:
            if grid is None:
                raise ValueError(f"grid {notice.grid_id!r} is not in the catalogue")
            leads, fields = read_grid(notice.uri, notice.variable, grid)
        except ValueError as error:
            yield pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                reason=f"grid: {error}", source_topic="", payload=notice.to_json().decode()[:2000], stage="grids"))
            return
        self._read.inc()
        for area in self._areas.get(grid.grid_id, ()):
            observed, nowcast_30, nowcast_60 = sample_area(leads, fields, area.cells)
            per_cell = sample_cells(leads, fields, area.local_cells) if area.local_cells else ((), (), ())
            yield AreaRainfall(area.area_id, area.area_kind, grid.grid_id, notice.event_time, observed,
                               nowcast_30, nowcast_60, notice.exercise, notice.drill_id, *per_cell)


@dataclasses.dataclass
class SampleRainGrids(beam.PTransform):
    """Grid notices -> :class:`AreaRainfall` per reach and zone, plus ``dead_letter``."""

    catalogue: StationCatalogue
    max_lateness_s: float = 600.0
    #: When events are folded (see :class:`pipelines.ordered.FoldPace`).
    pace: FoldPace = FoldPace()

    def __post_init__(self) -> None:
        super().__init__()

    def expand(self, notices: beam.PCollection[GridNotice]) -> Mapping[str, beam.PCollection]:
        first = (
            notices
            | "ByGrid" >> beam.Map(lambda n: (stream_key(n.drill_id, n.grid_id), n))
            | "FirstNoticePerFile" >> FoldInEventTime(FirstNoticePerFile(), self.max_lateness_s, pace=self.pace)
        )
        sampled = first.out | "Sample" >> beam.ParDo(_SampleGridFn(self.catalogue)).with_outputs(
            DEAD_LETTER, main="out")
        dead = (first.dead_letter, sampled[DEAD_LETTER]) | "GridDeadLetters" >> beam.Flatten()
        return {"out": sampled.out, DEAD_LETTER: dead}


def fresh_grid(grid: AreaRainfall | None, at: dt.datetime) -> AreaRainfall | None:
    """The grid if it is recent enough at ``at`` to stand for the rain ahead."""
    if grid is None or not 0 <= (at - grid.event_time).total_seconds() <= GRID_MAX_AGE_S:
        return None
    return grid


def grid_features(grid: AreaRainfall | None) -> dict[str, float]:
    """What a score shows of the grid behind it (its nowcast is already among the model's features)."""
    if grid is None or grid.observed_mm_h is None:
        return {}
    return {"grid_rain_rate_mm_h": grid.observed_mm_h}


