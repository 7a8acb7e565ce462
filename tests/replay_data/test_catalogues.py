"""Station catalogues, format 2: zones, cameras, grids; the five bundled areas."""

from __future__ import annotations

import json

import pytest

from suibou.catalogue import (
    MESH3_DLAT,
    MESH3_DLON,
    Camera,
    GridDefinition,
    LandslideZone,
    StationCatalogue,
    bundled_catalogues,
)
from suibou.hydrology import CriticalLine

# Rough bounding boxes (lon, lat) of the real places each catalogue covers.
AREAS = {
    "kanda-basin": (139.55, 139.67, 35.66, 35.74),
    "shakujii-basin": (139.50, 139.74, 35.70, 35.77),
    "meguro-basin": (139.63, 139.75, 35.60, 35.67),
    "tama-basin": (139.00, 139.70, 35.57, 35.87),
    "izu-oshima": (139.33, 139.47, 34.67, 34.80),
}


def test_the_five_areas_are_bundled_where_they_really_are():
    assert set(AREAS) <= set(bundled_catalogues())
    for name, (west, east, south, north) in AREAS.items():
        cat = StationCatalogue.load(name)
        assert "real" in cat.provenance and "invented" in cat.provenance
        points = [(g.lon, g.lat) for g in (*cat.rain_gauges, *cat.level_gauges, *cat.cameras)]
        points += [z.centroid for z in cat.zones]
        for lon, lat in points:
            assert west <= lon <= east and south <= lat <= north, (name, lon, lat)
        assert cat.grids, name
        for grid in cat.grids:
            for lon, lat in points:
                assert grid.covers(lon, lat), (name, grid.grid_id, lon, lat)
            km_x, km_y = grid.cell_km
            assert 0.85 < km_x < 1.2 and 0.85 < km_y < 1.0


def test_kanda_basin_ids_are_stable():
    cat = StationCatalogue.load("kanda-basin")
    assert [g.station_id for g in cat.rain_gauges] == ["RG-ZENPUKUJI", "RG-SHIMOIGUSA", "RG-ASAGAYA", "RG-TAKAIDO"]
    assert [g.station_id for g in cat.level_gauges] == [
        "WL-ZENPUKUJI-NARITA", "WL-MYOSHOJI-SAGINOMIYA", "WL-KANDA-EIFUKU"]
    assert cat.level_gauge("WL-ZENPUKUJI-NARITA").danger_m == 3.0
    assert {c.level_station_id for c in cat.cameras} == {g.station_id for g in cat.level_gauges}


def test_izu_oshima_has_zones_and_no_river_gauges():
    cat = StationCatalogue.load("izu-oshima")
    assert not cat.level_gauges and not cat.reaches
    assert {"Z-OSHIMA-KANDACHI", "Z-OSHIMA-OKANAZAWA"} <= {z.zone_id for z in cat.zones}
    motomachi = cat.rain_gauge("RG-OSHIMA-MOTOMACHI")
    assert "Z-OSHIMA-KANDACHI" in motomachi.zone_ids
    assert next(g.station_id for g in cat.rain_stations_for_zone("Z-OSHIMA-KANDACHI")) == "RG-OSHIMA-MOTOMACHI"
    for zone in cat.zones:
        assert zone.critical_line.zone_id == zone.zone_id
        assert "invented" in zone.critical_line.note


def test_format_2_round_trips_and_format_1_is_still_read(tmp_path):
    for name in AREAS:
        cat = StationCatalogue.load(name)
        cat.save(tmp_path / f"{name}.json")
        assert StationCatalogue.load(tmp_path / f"{name}.json") == cat
    v1 = StationCatalogue.load("kanda-basin").to_dict()
    v1["format"] = "station_catalogue/1"
    for key in ("cameras", "grids", "landslide_zones"):
        v1.pop(key, None)
    old = StationCatalogue.from_dict(v1)
    assert old.cameras == () and old.zones == () and old.level_gauge("WL-KANDA-EIFUKU").caution_m == 2.2
    with pytest.raises(ValueError, match="station_catalogue/1, station_catalogue/2"):
        StationCatalogue.from_dict({**v1, "format": "station_catalogue/9"})


def test_hazard_geojson_has_reaches_and_zones():
    collection = StationCatalogue.load("tama-basin").hazard_areas_geojson()
    kinds = {f["properties"]["kind"] for f in collection["features"]}
    assert kinds == {"river_reach", "landslide_zone"}
    zone = next(f for f in collection["features"] if f["properties"]["kind"] == "landslide_zone")
    ring = zone["geometry"]["coordinates"][0]
    assert zone["geometry"]["type"] == "Polygon" and ring[0] == ring[-1]


def _doc(name="tama-basin"):
    return json.loads(json.dumps(StationCatalogue.load(name).to_dict()))


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d["cameras"][0].update(level_station_id="WL-NOWHERE"), "unknown level gauge"),
    (lambda d: d["cameras"][0].update(reach_id="R-TAMA-FUCHU"), "stands on"),
    (lambda d: d["rain_gauges"][1].update(zone_ids=["Z-NOWHERE"]), "unknown zone"),
    (lambda d: d["landslide_zones"][0]["geometry"]["coordinates"][0].pop(), "first equal to the last"),
    (lambda d: d["landslide_zones"][0].update(zone_id="OKUTAMA"), "must start with 'Z-'"),
    (lambda d: d["grids"][0].update(lon0=d["grids"][0]["lon0"] + 0.001), "third-order mesh"),
    (lambda d: d["synthetic_slopes"].update({"Z-NOWHERE": {"failure_swi_mm": 100}}), "unknown zone"),
    (lambda d: d["cameras"].append(dict(d["cameras"][0])), "duplicate"),
    (lambda d: d["reaches"][0].update(flows_into="R-NOWHERE"), "flows into unknown reach"),
    (lambda d: d["reaches"][-1].update(flows_into="R-TAMA-OKUTAMA", travel_min=30), "loop"),
    (lambda d: d["reaches"][0].pop("travel_min"), "come together"),
    (lambda d: d["reaches"][0].update(travel_min=0), "travel_min must be"),
    (lambda d: d["reaches"][0].update(flows_into=d["reaches"][0]["reach_id"]), "into itself"),
])
def test_format_2_rejects_broken_parts(breakage, message):
    doc = _doc()
    breakage(doc)
    with pytest.raises(ValueError, match=message):
        StationCatalogue.from_dict(doc)


def test_parts_validate_themselves():
    with pytest.raises(ValueError, match="intersects itself"):
        LandslideZone("Z-X", "x", "x", ((139.0, 35.0), (139.01, 35.01), (139.01, 35.0), (139.0, 35.01), (139.0, 35.0)))
    with pytest.raises(ValueError, match="CAM-"):
        Camera("X-1", "x", "x", 139.0, 35.0, "R-X")
    grid = GridDefinition("G1K-T", "t", lon0=1117 * 0.125, lat0=4284 * MESH3_DLAT, nx=3, ny=2)
    assert grid.cell_of(grid.lon0 + 2.5 * MESH3_DLON, grid.lat0 + 0.5 * MESH3_DLAT) == (0, 2)
    assert grid.cell_of(grid.lon0 - 0.001, grid.lat0) is None
    assert LandslideZone("Z-X", "x", "x", ((139.0, 35.0), (139.01, 35.0), (139.01, 35.01), (139.0, 35.0)),
                         CriticalLine(r60_at_dry_mm=80)).critical_line.r60_at_dry_mm == 80


def test_merge_keeps_everything_and_refuses_collisions():
    kanda, shakujii = StationCatalogue.load("kanda-basin"), StationCatalogue.load("shakujii-basin")
    merged = StationCatalogue.merge("both", [kanda, shakujii])
    assert len(merged.level_gauges) == len(kanda.level_gauges) + len(shakujii.level_gauges)
    assert set(merged.hydrology) == set(kanda.hydrology) | set(shakujii.hydrology)
    with pytest.raises(ValueError, match="duplicate"):
        StationCatalogue.merge("twice", [kanda, kanda])


def test_the_river_network_runs_down_the_real_rivers():
    tama = StationCatalogue.load("tama-basin")
    assert [r.reach_id for r in tama.upstream_reaches("R-TAMA-HAIJIMA")] == ["R-TAMA-OME", "R-AKI-LOWER"]
    assert [r.reach_id for r in tama.upstream_reaches("R-TAMA-HINO")] == ["R-TAMA-HAIJIMA", "R-ASA-LOWER"]
    assert tama.upstream_reaches("R-TAMA-OKUTAMA") == ()
    # Every reach but the last drains, in the end, to the lowest reach of its river system.
    for reach in tama.reaches[:-1]:
        down = reach
        while down.flows_into is not None:
            down = tama.reach(down.flows_into)
        assert down.reach_id == "R-TAMA-SETAGAYA"
        assert reach.travel_min and 5 <= reach.travel_min <= 120
    # The Kanda's catalogued reaches are three headwaters that meet downstream of the catalogue.
    assert all(r.flows_into is None for r in StationCatalogue.load("kanda-basin").reaches)
    shakujii = StationCatalogue.load("shakujii-basin")
    assert [r.flows_into for r in shakujii.reaches] == ["R-SHAKUJII-MIDDLE", "R-SHAKUJII-LOWER", None]
    assert tama.reach("R-TAMA-FUCHU").geojson()["properties"]["flows_into"] == "R-TAMA-CHOFU"
