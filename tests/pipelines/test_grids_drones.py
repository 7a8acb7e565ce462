"""Rain grids sampled onto reaches and zones, drone findings joined to them, and both used by fusion."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from models import FLOOD2_FEATURES, LANDSLIDE_FEATURES
from pipelines import grids
from pipelines.drones import AreaIndex, DroneSighting, join_observation
from pipelines.gauges import LevelAssessment, RainfallTotals
from pipelines.grids import AreaRainfall, area_cells, read_grid, sample_area
from pipelines.landslide import ZoneFusion, criterion_level
from pipelines.ordered import run_fold
from pipelines.risk import ReachFusion, to_risk_score
from replay_data.media import GRID_VARIABLE, NOWCAST_LEADS_MIN, grid_dataset, write_grid
from suibou.catalogue import StationCatalogue
from suibou.contracts import AlertLevel, AreaKind, DeadLetter, DroneFinding, DroneObservation

KANDA = StationCatalogue.load("kanda-basin")
OSHIMA = StationCatalogue.load("izu-oshima")
GAUGE = KANDA.level_gauge("WL-ZENPUKUJI-NARITA")
T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.UTC)
LEADS = np.array(NOWCAST_LEADS_MIN)


def _grid_file(tmp_path, grid, observed=6.0, ahead=12.0, name="g.nc"):
    """A grid file raining ``observed`` mm/h now and ``ahead`` mm/h at every lead after it."""
    fields = np.full((len(LEADS), grid.ny, grid.nx), ahead, dtype=np.float32)
    fields[0] = observed
    path = tmp_path / name
    write_grid(path, grid_dataset(grid, fields, T0, storm="test", provenance="SYNTHETIC test grid"))
    return path


def test_sampling_averages_the_cells_and_accumulates_the_nowcast_by_hand():
    fields = np.zeros((len(LEADS), 2, 2))
    fields[:, 0, 0] = 10.0
    fields[:, 1, 1] = 20.0
    fields[7:, 1, 1] = 50.0  # from lead 35 on
    observed, ahead_30, ahead_60 = sample_area(LEADS, fields, ((0, 0), (1, 1)))
    assert observed == 15.0  # (10 + 20) / 2 mm/h
    assert ahead_30 == 7.5  # 15 mm/h for half an hour
    assert ahead_60 == 7.5 + 30.0 / 2  # then 30 mm/h for the second half hour
    assert sample_area(LEADS[:7], fields[:7], ((0, 0),))[2] is None  # the file stops at 30 min


def test_a_grid_file_is_read_and_sampled_onto_every_reach_and_zone_it_covers(tmp_path):
    grid = KANDA.grids[0]
    leads, fields = read_grid(_grid_file(tmp_path, grid).as_uri(), GRID_VARIABLE, grid)
    assert list(leads) == list(NOWCAST_LEADS_MIN) and fields.shape == (len(LEADS), grid.ny, grid.nx)
    areas = {a.area_id: a for a in area_cells(KANDA)[grid.grid_id]}
    assert set(areas) == {r.reach_id for r in KANDA.reaches}
    # A reach is sampled where its rain gauges stand: the basin mean the models were trained on.
    gauges = KANDA.rain_stations_for_reach("R-ZENPUKUJI-UPPER")
    assert set(areas["R-ZENPUKUJI-UPPER"].cells) == {grid.cell_of(g.lon, g.lat) for g in gauges}
    assert sample_area(leads, fields, areas["R-ZENPUKUJI-UPPER"].cells) == (6.0, 6.0, 12.0)
    zones = [a for a in area_cells(OSHIMA)[OSHIMA.grids[0].grid_id] if a.area_kind is AreaKind.ZONE]
    assert {a.area_id for a in zones} == {z.zone_id for z in OSHIMA.zones}


def test_an_area_that_several_grids_cover_is_sampled_from_one_of_them_only():
    """Two grids issued at one instant must not give a reach two rain fields, the one it uses
    depending on which arrived last: each area goes to the grid with most of its cells, then by id."""
    grid = KANDA.grids[0]
    coarse = dataclasses.replace(grid, grid_id="G9-COARSE", nx=1, ny=1, dlon=grid.dlon * grid.nx,
                                 dlat=grid.dlat * grid.ny)
    twin = dataclasses.replace(grid, grid_id="G0-TWIN")
    sampled = area_cells(dataclasses.replace(KANDA, grids=(grid, coarse, twin)))
    owners = [g for g, areas in sampled.items() for a in areas]
    assert sorted(owners) == ["G0-TWIN"] * len(KANDA.reaches), "the twin covers as many cells and sorts first"
    assert sampled[grid.grid_id] == () and sampled["G9-COARSE"] == ()
    assert sampled["G0-TWIN"] == area_cells(KANDA)[grid.grid_id]


def test_grid_files_that_are_not_what_their_notice_says_are_refused(tmp_path, monkeypatch):
    grid = KANDA.grids[0]
    with pytest.raises(ValueError, match="cannot read"):
        read_grid((tmp_path / "missing.nc").as_uri(), GRID_VARIABLE, grid)
    with pytest.raises(ValueError, match="unsupported grid uri scheme"):
        read_grid("https://example.invalid/g.nc", GRID_VARIABLE, grid)
    good = _grid_file(tmp_path, grid)
    with pytest.raises(ValueError, match="has no variable 'rain'"):
        read_grid(good.as_uri(), "rain", grid)
    with pytest.raises(ValueError, match="not those of grid"):
        read_grid(good.as_uri(), GRID_VARIABLE, OSHIMA.grids[0])
    with pytest.raises(ValueError, match="negative"):
        read_grid(_grid_file(tmp_path, grid, observed=-1.0, name="neg.nc").as_uri(), GRID_VARIABLE, grid)
    (tmp_path / "junk.nc").write_bytes(b"not netCDF at all")
    with pytest.raises(ValueError, match="as netCDF"):
        read_grid((tmp_path / "junk.nc").as_uri(), GRID_VARIABLE, grid)
    monkeypatch.setattr(grids, "MAX_GRID_BYTES", 100)
    with pytest.raises(ValueError, match="larger than"):
        read_grid(good.as_uri(), GRID_VARIABLE, grid)


def _status(minute: int, metres: float = 2.0) -> LevelAssessment:
    return LevelAssessment(GAUGE.station_id, GAUGE.reach_id, T0 + dt.timedelta(minutes=minute), metres,
                           AlertLevel.CAUTION, GAUGE.danger_m, metres, 0.0, True, "d", caution_m=GAUGE.caution_m,
                           evacuation_m=GAUGE.evacuation_m)


def _rain(minute: int, station: str = "RG-ZENPUKUJI", mm60: float = 20.0) -> RainfallTotals:
    return RainfallTotals(station, T0 + dt.timedelta(minutes=minute), 4.0, mm60, True, "d")


def _area_rain(area_id: str, kind: AreaKind, minute: int, ahead_30: float, ahead_60: float) -> AreaRainfall:
    return AreaRainfall(area_id, kind, "G1K-KANDA", T0 + dt.timedelta(minutes=minute), 30.0, ahead_30, ahead_60,
                        True, "d")


def test_reach_rows_take_the_nowcast_from_a_fresh_grid_and_say_when_there_is_none():
    fold = ReachFusion(tuple(FLOOD2_FEATURES), {GAUGE.reach_id: GAUGE.station_id})
    grid = _area_rain(GAUGE.reach_id, AreaKind.REACH, 0, 18.0, 41.0)
    _, rows = run_fold(fold, f"d|{GAUGE.reach_id}", [_rain(0), grid, _status(0), _rain(14), _status(16)])
    fresh, stale = (dict(r.features) for r in rows)
    assert (fresh["nowcast_rain_30min_mm"], fresh["nowcast_rain_60min_mm"]) == (18.0, 41.0)
    assert dict(rows[0].grid) == {"grid_rain_rate_mm_h": 30.0}
    # 16 minutes on, the grid is too old: the model's persistence fallback, and the row says why.
    assert stale["nowcast_rain_60min_mm"] == stale["rain_60min_mm"]
    assert any("no rain grid since 2005-09-04T12:00:00" in f for f in rows[1].faults)
    assert not rows[0].faults


def _observation(lon: float, lat: float, finding: DroneFinding, confidence: float = 0.8) -> DroneObservation:
    return DroneObservation(event_id=f"FL-1:{lon:.5f}", event_time=T0, flight_id="FL-1", lon=lon, lat=lat,
                            finding=finding, confidence=confidence, exercise=True, drill_id="d")


def test_drone_findings_are_joined_to_the_reach_or_zone_they_fall_in():
    kanda, oshima = AreaIndex.of(KANDA), AreaIndex.of(OSHIMA)
    lon, lat = KANDA.reach("R-ZENPUKUJI-UPPER").geometry[1]
    on_the_river = join_observation(_observation(lon + 0.001, lat, DroneFinding.INUNDATION), kanda)
    assert isinstance(on_the_river, DroneSighting)
    assert (on_the_river.area_id, on_the_river.area_kind) == ("R-ZENPUKUJI-UPPER", AreaKind.REACH)
    assert 0 < on_the_river.distance_m < 100  # 0.001 degree of longitude is about 90 m here
    far = join_observation(_observation(lon, lat + 0.05, DroneFinding.INUNDATION), kanda)
    assert isinstance(far, DeadLetter) and "more than 250 m from every catalogued reach" in far.reason
    assert join_observation(_observation(lon, lat, DroneFinding.NOTHING), kanda) is None
    assert join_observation(_observation(lon, lat, DroneFinding.INUNDATION, confidence=0.3), kanda) is None
    zone = OSHIMA.zones[0]
    slide = join_observation(_observation(*zone.centroid, DroneFinding.SLOPE_FAILURE), oshima)
    assert isinstance(slide, DroneSighting) and (slide.area_id, slide.distance_m) == (zone.zone_id, 0.0)


def _sighting(area_id: str, kind: AreaKind, finding: DroneFinding, minute: int) -> DroneSighting:
    return DroneSighting(area_id, kind, T0 + dt.timedelta(minutes=minute), finding, 0.85, "FL-1:1", 12.0, None,
                         True, "d")


def test_a_drone_seeing_the_reach_flooded_raises_it_to_level_5_while_the_sighting_stands():
    fold = ReachFusion(tuple(FLOOD2_FEATURES), {GAUGE.reach_id: GAUGE.station_id})
    seen = _sighting(GAUGE.reach_id, AreaKind.REACH, DroneFinding.INUNDATION, 0)
    _, rows = run_fold(fold, f"d|{GAUGE.reach_id}", [seen, _status(1), _status(61)])
    scores = [to_risk_score(r, {"danger_60min": 0.2}, "danger_60min", "t", "flood/2", []) for r in rows]
    assert scores[0].observed_level == AlertLevel.FLOODING
    assert scores[0].features["drone_inundation_confidence"] == 0.85
    assert scores[1].observed_level == AlertLevel.CAUTION  # an hour on, the sighting no longer stands


def test_zones_take_the_grid_nowcast_and_a_seen_slope_failure_is_level_5():
    zone = OSHIMA.zones[0]
    pacer = OSHIMA.rain_stations_for_zone(zone.zone_id)[0].station_id
    fold = ZoneFusion({zone.zone_id: zone.critical_line}, {zone.zone_id: pacer})
    key = f"d|{zone.zone_id}"
    grid = dataclasses.replace(_area_rain(zone.zone_id, AreaKind.ZONE, 0, 40.0, 95.0), grid_id="G1K-OSHIMA")
    slide = _sighting(zone.zone_id, AreaKind.ZONE, DroneFinding.SLOPE_FAILURE, 5)
    _, rows = run_fold(fold, key, [grid, _rain(0, pacer), slide, _rain(5, pacer)])
    first, second = rows
    assert dict(zip(LANDSLIDE_FEATURES, (v for _, v in first.features), strict=True))["nowcast_rain_60min_mm"] == 95.0
    assert criterion_level(first) != AlertLevel.FLOODING
    assert criterion_level(second) == AlertLevel.FLOODING


@pytest.mark.e2e  # runs on the Prism runner
def test_each_grid_file_is_read_once_and_bad_ones_become_dead_letters(tmp_path):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from pipelines.grids import SampleRainGrids
    from suibou.contracts import GridKind, GridNotice
    from suibou.infra.prism import prism_pipeline_options
    from suibou.settings import Settings

    grid = KANDA.grids[0]
    good = _grid_file(tmp_path, grid).as_uri()

    def notice(uri: str, lead: int, grid_id: str = grid.grid_id) -> GridNotice:
        return GridNotice(event_id=f"{uri}:{lead}", event_time=T0, grid_id=grid_id, exercise=True, drill_id="d",
                          valid_time=T0 + dt.timedelta(minutes=lead), kind=GridKind.OBSERVED if lead == 0
                          else GridKind.NOWCAST, uri=uri, variable=GRID_VARIABLE)

    notices = [notice(good, lead) for lead in (0, 5, 60)] + [
        notice((tmp_path / "missing.nc").as_uri(), 0), notice(good, 0, grid_id="G1K-NOWHERE")]
    options = PipelineOptions([*prism_pipeline_options(Settings()), "--streaming"])
    with beam.Pipeline(options=options) as pipeline:
        sampled = (pipeline | beam.Create(notices)
                   | beam.Map(lambda n: beam.window.TimestampedValue(n, T0.timestamp()))
                   | SampleRainGrids(KANDA))
        assert_that(sampled["out"] | beam.Map(lambda a: (a.area_id, a.observed_mm_h, a.nowcast_60min_mm)),
                    equal_to([(r.reach_id, 6.0, 12.0) for r in KANDA.reaches]), label="one sample per reach")
        missing = f"grid: cannot read {(tmp_path / 'missing.nc').as_uri()}: No such file or directory"
        assert_that(sampled["dead_letter"] | beam.Map(lambda d: (d.stage, d.reason)),
                    equal_to([("grids", missing), ("grids", "grid: grid 'G1K-NOWHERE' is not in the catalogue")]),
                    label="dead letters")
