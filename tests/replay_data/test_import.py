"""Importing a river bureau's recorded storm: every bad row reported with its line number."""

from __future__ import annotations

import datetime as dt

import pytest

from replay_data import export_csv, load_storm
from replay_data.library import StormImportError, import_storm, imported_storms, open_storm, read_readings
from suibou.catalogue import StationCatalogue
from suibou.cli import main

HEADER = "time,station_id,kind,value\n"
GOOD = [
    "2024-08-01T21:01:00+09:00,RG-ZENPUKUJI,rain_mm,1.5",
    "2024-08-01T21:01:00+09:00,WL-ZENPUKUJI-NARITA,level_m,0.82",
    "2024-08-01T21:02:00+09:00,RG-ZENPUKUJI,rain_mm,2.0",
    "2024-08-01T21:02:00+09:00,WL-ZENPUKUJI-NARITA,level_m,0.85",
    "2024-08-01T21:03:00+09:00,RG-ZENPUKUJI,rain_mm,3.5",
]


@pytest.fixture()
def stations(tmp_path):
    path = tmp_path / "stations.json"
    StationCatalogue.load("kanda-basin").save(path)
    return path


def write(tmp_path, lines, header=HEADER):
    path = tmp_path / "storm.csv"
    path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    return path


BAD_ROWS = [
    ("2024-08-01 21:04,RG-ZENPUKUJI,rain_mm,1.0", "UTC offset"),
    ("yesterday,RG-ZENPUKUJI,rain_mm,1.0", "ISO 8601"),
    ("2024-08-01T21:04:00+09:00,RG-NOWHERE,rain_mm,1.0", "unknown station 'RG-NOWHERE'"),
    ("2024-08-01T21:04:00+09:00,RG-ZENPUKUJI,snow_cm,1.0", "kind must be rain_mm or level_m"),
    ("2024-08-01T21:04:00+09:00,WL-ZENPUKUJI-NARITA,rain_mm,1.0", "water-level gauge; rain_mm needs a rain gauge"),
    ("2024-08-01T21:04:00+09:00,RG-ZENPUKUJI,level_m,1.0", "rain gauge; level_m needs a water-level gauge"),
    ("2024-08-01T21:04:00+09:00,RG-ZENPUKUJI,rain_mm,lots", "value must be a number"),
    ("2024-08-01T21:04:00+09:00,RG-ZENPUKUJI,rain_mm,nan", "value must be finite"),
    ("2024-08-01T21:04:00+09:00,RG-ZENPUKUJI,rain_mm,-2", "outside the physical range"),
    ("2024-08-01T21:04:00+09:00,RG-ZENPUKUJI,rain_mm,55", "outside the physical range"),
    ("2024-08-01T21:04:00+09:00,WL-ZENPUKUJI-NARITA,level_m,250", "outside the physical range"),
    ("2024-08-01T21:04:00+09:00,RG-ZENPUKUJI,rain_mm", "expected 4 fields"),
    ("2024-08-01T21:02:00+09:00,RG-ZENPUKUJI,rain_mm,2.0", "duplicate reading"),
]


@pytest.mark.parametrize("row, reason", BAD_ROWS)
def test_each_kind_of_bad_row_is_reported_with_its_line(tmp_path, stations, row, reason):
    path = write(tmp_path, [*GOOD[:3], row, *GOOD[3:]])
    readings, errors = read_readings(path, StationCatalogue.load(stations))
    assert len(readings) == len(GOOD)
    assert len(errors) == 1
    assert errors[0].line == 5  # header is line 1; the bad row follows three good ones
    assert reason in errors[0].reason
    with pytest.raises(StormImportError, match=r"line 5: ") as refused:
        import_storm(path, stations, "bureau-2024", root=tmp_path / "cache")
    assert "nothing was imported" in str(refused.value)
    assert imported_storms(tmp_path / "cache") == []


def test_all_bad_rows_are_listed_and_can_be_skipped_visibly(tmp_path, stations):
    rows = [*GOOD, *(r for r, _ in BAD_ROWS)]
    path = write(tmp_path, rows)
    with pytest.raises(StormImportError) as refused:
        import_storm(path, stations, "bureau-2024", root=tmp_path / "cache")
    assert [e.line for e in refused.value.errors] == list(range(len(GOOD) + 2, len(rows) + 2))
    result = import_storm(path, stations, "bureau-2024", root=tmp_path / "cache", skip_bad_rows=True)
    assert result.readings == len(GOOD) and len(result.rejected) == len(BAD_ROWS)
    rejected = (result.folder / "rejected.csv").read_text().splitlines()
    assert rejected[0] == "line,reason,row" and len(rejected) == len(BAD_ROWS) + 1
    assert rejected[1].startswith(f"{len(GOOD) + 2},")
    storm = open_storm(result.folder)
    assert "refused 13 row(s)" in storm.description and storm.labels == ("imported",)


def test_file_level_problems(tmp_path, stations):
    with pytest.raises(StormImportError, match="header must be"):
        import_storm(write(tmp_path, GOOD, header="when,where,what,how much\n"), stations, "x", root=tmp_path)
    with pytest.raises(StormImportError, match="empty"):
        (tmp_path / "empty.csv").write_text("")
        import_storm(tmp_path / "empty.csv", stations, "x", root=tmp_path)
    with pytest.raises(StormImportError, match="does not exist"):
        import_storm(write(tmp_path, GOOD), tmp_path / "missing.json", "x", root=tmp_path)
    (tmp_path / "bad.json").write_text('{"format": "station_catalogue/2", "name": "x"}')
    with pytest.raises(StormImportError, match="not a usable station catalogue"):
        import_storm(write(tmp_path, GOOD), tmp_path / "bad.json", "x", root=tmp_path)
    with pytest.raises(StormImportError, match="built-in"):
        import_storm(write(tmp_path, GOOD), stations, "suginami-2005-mini", root=tmp_path)
    with pytest.raises(StormImportError, match="lower-case"):
        import_storm(write(tmp_path, GOOD), stations, "Bad Name", root=tmp_path)
    with pytest.raises(StormImportError, match="single reading"):
        import_storm(write(tmp_path, GOOD[:2]), stations, "one", root=tmp_path)
    import_storm(write(tmp_path, GOOD), stations, "twice", root=tmp_path)
    with pytest.raises(StormImportError, match="already exists"):
        import_storm(write(tmp_path, GOOD), stations, "twice", root=tmp_path)


def test_an_exported_storm_imports_and_replays_the_same(tmp_path, stations):
    original = load_storm("suginami-2005-mini")
    export_csv(original, tmp_path / "recorded.csv")
    result = import_storm(tmp_path / "recorded.csv", stations, "recorded", root=tmp_path / "cache")
    storm = open_storm(result.folder)
    assert storm.readings() == original.readings()
    assert storm.provenance == "observed (imported)" and storm.start == original.start
    assert storm.end == original.end


def test_import_command_registers_the_storm_for_drills(tmp_path, stations, monkeypatch, capsys):
    from suibou import settings as settings_module

    monkeypatch.setenv("SUIBOU_HOME", str(tmp_path / "home"))
    settings_module.get_settings.cache_clear()
    try:
        path = write(tmp_path, [*GOOD, BAD_ROWS[2][0]])
        assert main(["import", str(path), "--stations", str(stations), "--name", "bureau-2024"]) == 2
        assert "line 7: unknown station" in capsys.readouterr().err
        assert main(["import", str(path), "--stations", str(stations), "--name", "bureau-2024",
                     "--skip-bad-rows"]) == 0
        out = capsys.readouterr()
        assert "skipped line 7" in out.err and "suibou drill bureau-2024" in out.out
        assert "bureau-2024" in imported_storms(tmp_path / "home" / "cache" / "storms")
        storm = load_storm("bureau-2024")
        assert storm.rain[0].event_time == dt.datetime(2024, 8, 1, 12, 1, tzinfo=dt.UTC)
        assert main(["storms"]) == 0
        assert "bureau-2024" in capsys.readouterr().out
    finally:
        settings_module.get_settings.cache_clear()


def test_drill_command_line_options():
    from suibou.cli import _parser

    args = _parser().parse_args(["drill", "hagibis-2019", "--speed", "1", "--start", "2019-10-12T15:00+09:00",
                                 "--report", "out/report.md"])
    assert args.speed == 1.0 and args.report == "out/report.md"
    assert args.start == dt.datetime(2019, 10, 12, 6, 0, tzinfo=dt.UTC)
    assert _parser().parse_args(["drill", "x", "--speed", "max"]).speed is None
    assert _parser().parse_args(["drill", "x"]).speed is None
    for bad in (["--speed", "-3"], ["--speed", "0"], ["--start", "2019-10-12T15:00"], ["--start", "soon"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(["drill", "x", *bad])
