"""Rain grids as GRIB2: written by suibou's synthesiser, read by the grid stage through xarray and cfgrib.

The files are suibou's own (:func:`replay_data.media.write_grid_grib2`), in JMA's
run-length packing (data representation template 5.200) and in simple packing;
every value is checked against the netCDF file of the same fields.
"""

from __future__ import annotations

import datetime as dt
import struct

import numpy as np
import pytest

from pipelines.grids import _SampleGridFn, grib2_templates, read_grid
from replay_data.media import (
    GRIB2_VARIABLE,
    GRID_VARIABLE,
    NOWCAST_LEADS_MIN,
    grid_dataset,
    write_grid,
    write_grid_grib2,
)
from suibou.catalogue import StationCatalogue
from suibou.contracts import GridKind, GridNotice

KANDA = StationCatalogue.load("kanda-basin")
GRID = KANDA.grids[0]
ISSUE = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.UTC)


def _fields(seed: int = 1) -> np.ndarray:
    """Rain rates in 0.1 mm/h steps, as the synthesiser writes them: mostly light, a few cells over 50 mm/h."""
    rng = np.random.default_rng(seed)
    shape = (len(NOWCAST_LEADS_MIN), GRID.ny, GRID.nx)
    return np.round(rng.gamma(0.5, 12.0, shape), 1).astype(np.float32)


@pytest.mark.parametrize(("packing", "template"), [("run_length", 200), ("simple", 0)])
def test_a_grib2_grid_reads_as_the_netcdf_grid_of_the_same_fields(tmp_path, packing, template):
    fields = _fields()
    grib = tmp_path / "g.grib2"
    write_grid_grib2(grib, GRID, fields, ISSUE, packing=packing)
    assert grib2_templates(str(grib)) == [(0, template)] * len(NOWCAST_LEADS_MIN)
    netcdf = tmp_path / "g.nc"
    write_grid(netcdf, grid_dataset(GRID, fields, ISSUE, storm="test", provenance="SYNTHETIC test grid"))

    leads, values = read_grid(grib.as_uri(), GRIB2_VARIABLE, GRID)
    nc_leads, nc_values = read_grid(netcdf.as_uri(), GRID_VARIABLE, GRID)
    assert leads.tolist() == nc_leads.tolist() == list(NOWCAST_LEADS_MIN)
    # Rows south to north as in the netCDF file, although GRIB2 scans from the north.
    assert values.shape == nc_values.shape == fields.shape
    # Both packings keep a rate to 10**-6 kg m-2 s-1, 0.0036 mm/h.
    assert np.abs(values - nc_values).max() <= 0.0036
    assert fields.max() > 50 and np.abs(values - fields).max() <= 0.0036


def test_the_grid_stage_samples_a_grib2_file_as_it_samples_netcdf(tmp_path):
    fields = _fields(2)
    write_grid_grib2(tmp_path / "g.grib2", GRID, fields, ISSUE)
    write_grid(tmp_path / "g.nc", grid_dataset(GRID, fields, ISSUE, storm="test", provenance="SYNTHETIC test grid"))
    sample = _SampleGridFn(KANDA)
    sample.setup()

    def sampled(name: str, variable: str) -> dict:
        notice = GridNotice(event_id=f"grid:{name}", event_time=ISSUE, exercise=True, drill_id="d",
                            grid_id=GRID.grid_id, valid_time=ISSUE, kind=GridKind.NOWCAST,
                            uri=(tmp_path / name).as_uri(),
                            variable=variable)
        return {r.area_id: (r.observed_mm_h, r.nowcast_30min_mm, r.nowcast_60min_mm) for r in sample.process(notice)}

    from_grib, from_netcdf = sampled("g.grib2", GRIB2_VARIABLE), sampled("g.nc", GRID_VARIABLE)
    assert from_grib and from_grib.keys() == from_netcdf.keys()
    for area, values in from_grib.items():
        assert values == pytest.approx(from_netcdf[area], abs=0.11), area  # sums rounded to 0.1 mm


def _with_product_template(message: bytes, template: int) -> bytes:
    """The message with its section 4 declaring another product definition template."""
    data, position = bytearray(message), 16  # sections start after the 16-octet indicator
    while data[position + 4] != 4:
        position += struct.unpack(">I", data[position:position + 4])[0]
    data[position + 7:position + 9] = struct.pack(">H", template)
    return bytes(data)


def test_a_local_product_template_that_eccodes_lacks_is_refused_with_its_number(tmp_path):
    path = tmp_path / "g.grib2"
    write_grid_grib2(path, GRID, _fields(), ISSUE)
    messages = path.read_bytes().split(b"7777")
    local = tmp_path / "jma-local.grib2"
    local.write_bytes(_with_product_template(messages[0] + b"7777", 50008))
    with pytest.raises(ValueError, match=r"message 1 has product definition template 4\.50008"):
        read_grid(local.as_uri(), GRIB2_VARIABLE, GRID)


def test_grib2_files_that_are_not_what_their_notice_says_are_refused(tmp_path):
    path = tmp_path / "g.grib2"
    write_grid_grib2(path, GRID, _fields(), ISSUE)
    with pytest.raises(ValueError, match="has no variable 'tp'"):
        read_grid(path.as_uri(), "tp", GRID)
    oshima = StationCatalogue.load("izu-oshima").grids[0]
    with pytest.raises(ValueError, match=f"not those of grid {oshima.grid_id}"):
        read_grid(path.as_uri(), GRIB2_VARIABLE, oshima)
    cut = tmp_path / "cut.grib2"
    cut.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match=r"cannot read .* as GRIB2"):
        read_grid(cut.as_uri(), GRIB2_VARIABLE, GRID)


def test_the_writer_refuses_what_it_cannot_pack():
    with pytest.raises(ValueError, match="packing must be"):
        write_grid_grib2("/dev/null", GRID, _fields(), ISSUE, packing="jpeg")
    with pytest.raises(ValueError, match="beyond the run-length level table"):
        write_grid_grib2("/dev/null", GRID, np.full_like(_fields(), 30_000.0), ISSUE)


def test_a_rate_beyond_236_mm_h_is_packed_on_the_coarser_scale(tmp_path):
    fields = _fields()
    fields[5, 0, 0] = 242.3  # a nowcast's log-normal error reaches such rates
    path = tmp_path / "g.grib2"
    write_grid_grib2(path, GRID, fields, ISSUE)
    _, values = read_grid(path.as_uri(), GRIB2_VARIABLE, GRID)
    assert np.abs(values[5] - fields[5]).max() <= 0.036
    assert np.abs(values[4] - fields[4]).max() <= 0.0036  # the other leads keep the finer scale
