"""Storms on disk: the folder layout, grids with a nowcast, camera frames, drone observations."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from replay_data import load_storm
from replay_data.library import materialise, open_storm
from replay_data.media import NOWCAST_LEADS_MIN
from replay_data.synth import RainCell, nowcast_rate, rain_rate
from suibou.contracts import DroneFinding, GridKind, parse_event


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return materialise("suginami-2005-mini", tmp_path_factory.mktemp("storms"))


@pytest.fixture(scope="module")
def storm(folder):
    return open_storm(folder)


def test_layout_and_manifest(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "suibou_storm/1"
    assert manifest["provenance"] == "synthetic reconstruction" and "reconstruction" in manifest["labels"]
    assert manifest["seed"] == 20050904
    for name in ("catalogue.json", "hazards.geojson", "points.parquet", "frames/index.csv"):
        assert (folder / name).is_file(), name
    assert len(list((folder / "grids" / "G1K-KANDA").glob("*.nc"))) == 36
    assert manifest["damage"][0]["area_id"] == "R-ZENPUKUJI-UPPER"
    assert manifest["counts"]["frames"] == 3 * 36


def test_readings_read_back_exactly(storm):
    built = load_storm("suginami-2005-mini")
    assert storm.readings() == built.readings()
    assert len(storm.rain) == len(built.rain) and len(storm.levels) == len(built.levels)
    assert storm.damage == built.damage
    assert storm.catalogue == built.catalogue


def test_every_message_follows_its_contract_and_points_at_a_real_file(storm):
    kinds = {type(e).__name__ for e in storm.events()}
    assert kinds == {"RainReading", "LevelReading", "CameraFrame", "GridNotice", "DroneObservation"}
    times = [e.event_time for e in storm.events()]
    assert times == sorted(times) and storm.start < times[0] and times[-1] <= storm.end
    assert len({e.event_id for e in storm.events()}) == len(times)
    for event in [*storm.frames[:5], *storm.grids[:13], *storm.drone]:
        assert parse_event(event.to_json()) == event
        uri = getattr(event, "image_uri", None) or event.uri
        assert uri.startswith("file://")
        assert (storm.root / uri.removeprefix(storm.root.as_uri() + "/")).is_file()


def test_frames_are_jpeg_pictures_of_the_level(storm):
    frame = storm.frames[0]
    with Image.open(storm.root / frame.image_uri.removeprefix(storm.root.as_uri() + "/")) as image:
        assert image.format == "JPEG" and image.size == (frame.width, frame.height) == (160, 120)
    by_camera = {}
    for f in storm.frames:
        by_camera.setdefault(f.camera_id, []).append(f.event_time)
    for times in by_camera.values():
        assert all((b - a) == dt.timedelta(minutes=5) for a, b in itertools.pairwise(times))


def test_grids_are_1km_observed_plus_nowcast_to_60_min(storm, folder):
    notices = [g for g in storm.grids if g.event_time == storm.grids[0].event_time]
    assert [int((n.valid_time - n.event_time).total_seconds() // 60) for n in notices] == list(NOWCAST_LEADS_MIN)
    assert notices[0].kind == GridKind.OBSERVED and {n.kind for n in notices[1:]} == {GridKind.NOWCAST}
    issues = sorted({g.event_time for g in storm.grids})
    assert all(b - a == dt.timedelta(minutes=5) for a, b in itertools.pairwise(issues))
    path = notices[0].uri.removeprefix("file://")
    with xr.open_dataset(path) as ds:
        field = ds[notices[0].variable]
        assert field.dims == ("lead_time", "y", "x") and field.attrs["units"] == "mm h-1"
        assert "SYNTHETIC" in ds.attrs["source"]
        assert np.allclose(np.diff(ds.lat), 30 / 3600) and np.allclose(np.diff(ds.lon), 45 / 3600)
        assert ds.lead_time.values.tolist() == list(NOWCAST_LEADS_MIN)
        assert (ds.valid_time.values[0] == np.datetime64(notices[0].valid_time.replace(tzinfo=None), "ns"))


def _field(storm, issue, lead):
    notice = next(g for g in storm.grids
                  if g.event_time == issue and g.valid_time == issue + dt.timedelta(minutes=lead))
    with xr.open_dataset(notice.uri.removeprefix("file://")) as ds:
        return ds[notice.variable].sel(lead_time=lead).values.astype(float)


def test_nowcast_error_grows_with_lead(storm):
    issues = sorted({g.event_time for g in storm.grids})
    usable = [t for t in issues[3:] if t + dt.timedelta(minutes=60) in issues]
    error = dict.fromkeys((5, 30, 60), 0.0)
    rain = dict.fromkeys(error, 0.0)
    for issue in usable:
        for lead in error:
            truth = _field(storm, issue + dt.timedelta(minutes=lead), 0)
            error[lead] += np.abs(_field(storm, issue, lead) - truth).sum()
            rain[lead] += truth.sum()
    relative = {lead: error[lead] / rain[lead] for lead in error}
    assert 0 < relative[5] < relative[30] < relative[60]


def test_advection_nowcast_follows_a_moving_cell():
    cell = RainCell(peak_mm_h=50, lon=139.60, lat=35.70, peak_min=60, duration_min=600, sigma_km=2,
                    speed_kmh=30, heading_deg=90)
    lon, lat = np.meshgrid(np.linspace(139.5, 139.75, 30), np.linspace(35.65, 35.75, 12))
    truth = rain_rate([cell], 0.0, lon.ravel(), lat.ravel(), np.array([90.0]))[:, 0]
    advected = nowcast_rate([cell], 0.0, lon.ravel(), lat.ravel(), 60.0, np.array([0.0, 30.0]))
    persistence, nowcast = advected[:, 0], advected[:, 1]
    assert np.abs(nowcast - truth).sum() < 0.1 * np.abs(persistence - truth).sum()
    # A motion error moves the forecast, more at longer leads.
    off = nowcast_rate([cell], 0.0, lon.ravel(), lat.ravel(), 60.0, np.array([5.0, 20.0]), (10.0, 0.0))
    exact = nowcast_rate([cell], 0.0, lon.ravel(), lat.ravel(), 60.0, np.array([5.0, 20.0]))
    assert np.abs(off[:, 0] - exact[:, 0]).sum() < np.abs(off[:, 1] - exact[:, 1]).sum()


def test_observed_grid_agrees_with_the_gauges(storm):
    sim = load_storm("suginami-2005-mini").simulation
    grid = storm.catalogue.grid("G1K-KANDA")
    issue = sorted({g.event_time for g in storm.grids})[12]
    field = _field(storm, issue, 0)
    k = int(np.flatnonzero(sim.times == np.datetime64(issue.replace(tzinfo=None)))[0])
    for i, sid in enumerate(sim.rain_ids):
        gauge = storm.catalogue.rain_gauge(sid)
        row, col = grid.cell_of(gauge.lon, gauge.lat)
        # A 1 km cell centre is within ~0.7 km of the gauge: same order of rain.
        assert field[row, col] == pytest.approx(sim.rain_rate_mm_h[i, k], rel=0.5, abs=3)


def test_drone_sees_the_overflow(storm):
    damage = storm.damage[0]
    assert storm.drone, "no drone observation where the Zenpukuji overflowed"
    first = storm.drone[0]
    assert first.event_time >= damage.time + dt.timedelta(minutes=20)
    findings = {o.finding for o in storm.drone}
    assert findings == {DroneFinding.INUNDATION, DroneFinding.NOTHING}
    at_gauge = [o for o in storm.drone if o.finding is DroneFinding.INUNDATION]
    assert min(abs(o.lon - damage.lon) + abs(o.lat - damage.lat) for o in at_gauge) < 1e-6
    collection = json.loads((storm.root / "drone" / f"{first.flight_id}.geojson").read_text())
    assert collection["type"] == "FeatureCollection" and collection["synthetic"] is True


def test_quiet_day_has_no_drone_flight(tmp_path):
    quiet = open_storm(materialise("quiet-day-mini", tmp_path))
    assert quiet.drone == () and quiet.frames and quiet.grids


def _digest(folder):
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_materialising_is_deterministic_and_cached(folder, tmp_path):
    again = materialise("suginami-2005-mini", tmp_path)
    assert _digest(again) == _digest(folder)
    stamp = (again / "manifest.json").stat().st_mtime_ns
    assert materialise("suginami-2005-mini", tmp_path) == again
    assert (again / "manifest.json").stat().st_mtime_ns == stamp  # reused, not rewritten
    with pytest.raises(KeyError):
        materialise("no-such-storm", tmp_path)
