"""The console's map, read from station catalogues without importing the storm library."""

from __future__ import annotations

import json
from pathlib import Path

from alert_api.console.stations import StationMap, default_catalogue_paths
from pipelines.alerts import corridor_polygon as pipeline_corridor
from suibou.catalogue import StationCatalogue, bundled_catalogues


def test_the_bundled_catalogues_give_every_gauge_camera_reach_and_zone() -> None:
    stations = StationMap.load(default_catalogue_paths(Path("/nonexistent")))
    catalogues = [StationCatalogue.load(name) for name in bundled_catalogues()]
    assert [c.name for c in stations.catalogues] == [c.name for c in catalogues]
    for catalogue in catalogues:
        for gauge in catalogue.level_gauges:
            drawn = stations.gauge(gauge.station_id)
            assert drawn is not None and drawn.kind == "level" and drawn.thresholds == gauge.thresholds()
        for gauge in catalogue.rain_gauges:
            drawn = stations.gauge(gauge.station_id)
            assert drawn is not None and drawn.zone_ids == gauge.zone_ids and drawn.reach_ids == gauge.reach_ids
        for camera in catalogue.cameras:
            assert stations.camera(camera.camera_id).level_station_id == camera.level_station_id
        for zone in catalogue.zones:
            area = stations.area(zone.zone_id)
            assert area.hazard == "landslide" and area.polygon == zone.polygon
            assert area.critical_line["swi_at_no_rain_mm"] == zone.critical_line.swi_at_no_rain_mm


def test_reach_corridors_are_the_pipelines_alert_polygons() -> None:
    stations = StationMap.load(default_catalogue_paths(Path("/nonexistent")))
    for name in bundled_catalogues():
        for reach in StationCatalogue.load(name).reaches:
            area = stations.area(reach.reach_id)
            assert area.hazard == "flood" and area.line == reach.geometry
            assert area.polygon == pipeline_corridor(reach.geometry)


def test_a_stored_storms_copy_is_not_drawn_twice_and_a_bad_file_is_skipped(tmp_path: Path) -> None:
    kanda = StationCatalogue.load("kanda-basin")
    (tmp_path / "storm-a").mkdir()
    kanda.save(tmp_path / "storm-a" / "catalogue.json")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something_else/1"}))
    stations = StationMap.load([tmp_path])
    assert [c.name for c in stations.catalogues] == ["kanda-basin"]
    again = StationMap.load([*default_catalogue_paths(Path("/nonexistent")), tmp_path])
    assert len(again.gauges) == len({g.station_id for g in again.gauges})


def test_levels_and_critical_lines_of_gauges() -> None:
    stations = StationMap.load(default_catalogue_paths(Path("/nonexistent")))
    gauge = stations.gauge("WL-ZENPUKUJI-NARITA")  # caution 2.0, evacuation 2.6, danger 3.0, bank full 3.5
    assert [gauge.level_for(v) for v in (1.9, 2.0, 2.7, 3.0, 3.6)] == [1, 2, 3, 4, 5]
    # A rain gauge that samples no zone is judged against the default, invented line.
    assert [line["zone_id"] for line in stations.critical_lines(stations.gauge("RG-ZENPUKUJI"))] == [None]
    sampling = next(g for g in stations.gauges if g.zone_ids)
    assert [line["zone_id"] for line in stations.critical_lines(sampling)] == list(sampling.zone_ids)


def test_the_map_document_holds_what_the_page_draws() -> None:
    stations = StationMap.load(default_catalogue_paths(Path("/nonexistent")))
    doc = stations.to_json([("RD-1", "Road", "道", [(139.6, 35.7), (139.61, 35.71)])])
    assert {"catalogues", "gauges", "cameras", "areas", "roads"} <= set(doc)
    reach = next(a for a in doc["areas"] if a["area_id"] == "R-ZENPUKUJI-UPPER")
    assert reach["polygon"][0] == reach["polygon"][-1] and len(reach["line"]) >= 2
    assert doc["roads"][0]["line"] == [[139.6, 35.7], [139.61, 35.71]]
    json.dumps(doc)  # plain JSON
