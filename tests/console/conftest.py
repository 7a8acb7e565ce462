"""Fixtures for the duty officer console's tests.

- ``storm_feed``: the ``suginami-2005-mini`` storm as a drill's status, score,
  camera and alert traffic. Statuses are computed here from the storm's own
  readings by plain rules (levels against the gauges' thresholds, rolling rain
  totals, JMA's soil water index); scores and alerts follow the observed levels.
  It is test traffic shaped like the pipeline's, not the pipeline's output.
- ``console_app`` / ``console_server``: the alert API with a SQLite store and no Kafka,
  served by uvicorn on a free loopback port for the browser tests.
- ``browser``: headless Chromium (Debian's package, installed by
  :mod:`suibou.infra.chromium` if missing) driven by Playwright.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from alert_api import create_app
from alert_api.config import AlertApiSettings
from alert_api.console.stations import corridor_polygon
from alert_api.store import SqlAlertStore
from replay_data import load_storm
from suibou.catalogue import level_for
from suibou.contracts import (
    AlertEvent,
    AlertLevel,
    AreaKind,
    CameraFrame,
    Event,
    FaultKind,
    Hazard,
    LevelStatus,
    MsgType,
    RainStatus,
    RiskScore,
    SensorFault,
)
from suibou.hydrology import TankState, soil_water_index, step_tanks
from suibou.settings import PROJECT_ROOT, Settings

ADMIN_KEY = "console-test-admin-key-" + "y" * 32
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
PASSWORD = "correct horse battery staple"
STORM = "suginami-2005-mini"
DRILL = "drill-suginami-2005-mini-20260101T000000"
SAMPLE_FRAME = (PROJECT_ROOT / "replay_data" / "samples" / STORM / "frames" / "CAM-ZENPUKUJI-NARITA"
                / "20050904T125500Z.jpg")
#: Where the browser tests leave their screenshots (git-ignored).
ARTIFACTS = PROJECT_ROOT / ".suibou" / "test-artifacts" / "console"


def stamp(when: dt.datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


# --------------------------------------------------------------------------- storm traffic


@dataclasses.dataclass
class StormFeed:
    """A drill's traffic: ``events`` (statuses, scores) and ``alerts``, each in event-time order."""

    drill_id: str
    events: list[Event]
    alerts: list[AlertEvent]
    frame_dir: Path

    def between(self, start: dt.datetime | None, end: dt.datetime) -> list[Event]:
        return [e for e in self.events if (start is None or e.event_time > start) and e.event_time <= end]

    def alerts_until(self, end: dt.datetime) -> list[AlertEvent]:
        return [a for a in self.alerts if a.event_time <= end]

    def frame(self, when: dt.datetime, camera_id: str = "CAM-ZENPUKUJI-NARITA") -> CameraFrame:
        """A still of ``camera_id`` (the stored storm's sample image) in the frame folder."""
        path = self.frame_dir / camera_id / f"{stamp(when)}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE_FRAME, path)
        return CameraFrame(event_id=f"{camera_id}:{int(when.timestamp())}", event_time=when, exercise=True,
                           drill_id=self.drill_id, camera_id=camera_id, image_uri=path.as_uri(),
                           content_type="image/jpeg", width=160, height=120)

    def fault(self, station_id: str, when: dt.datetime, kind: FaultKind = FaultKind.SILENT,
              since: dt.datetime | None = None) -> SensorFault:
        return SensorFault(event_id=f"fault:{self.drill_id}:{station_id}:{kind.value}:{stamp(when)}", event_time=when,
                           exercise=True, drill_id=self.drill_id, station_id=station_id, kind=kind,
                           since=since or when - dt.timedelta(minutes=10), detail="no reading for 10 min")


def build_storm_feed(frame_dir: Path, drill_id: str = DRILL) -> StormFeed:
    storm = load_storm(STORM)
    catalogue = storm.catalogue
    events: list[Event] = []
    common = {"exercise": True, "drill_id": drill_id}

    rain_by_station: dict[str, list[Any]] = {}
    for reading in storm.rain:
        rain_by_station.setdefault(reading.station_id, []).append(reading)
    rain_60: dict[str, dict[dt.datetime, float]] = {}
    for station_id, readings in rain_by_station.items():
        tanks = TankState(10.0, 5.0, 2.0)
        window: list[tuple[dt.datetime, float]] = []
        rain_60[station_id] = {}
        for reading in sorted(readings, key=lambda r: r.event_time):
            tanks = step_tanks(tanks, reading.rain_mm, reading.interval_s / 3600)
            window.append((reading.event_time, reading.rain_mm))
            t = reading.event_time

            def total(minutes: float, window: list[tuple[dt.datetime, float]] = window, t: dt.datetime = t) -> float:
                return round(sum(r for w, r in window if (t - w).total_seconds() < minutes * 60), 2)

            rain_60[station_id][t] = total(60)
            events.append(RainStatus(
                event_id=f"rain-status:{drill_id}:{station_id}:{stamp(t)}", event_time=t, station_id=station_id,
                rain_10min_mm=total(10), rain_60min_mm=total(60), rain_3h_mm=total(180), rain_24h_mm=total(1440),
                swi_mm=round(soil_water_index(tanks), 3), tanks=tanks.as_tuple(), **common))

    levels: dict[str, list[tuple[dt.datetime, float]]] = {}
    for reading in sorted(storm.levels, key=lambda r: r.event_time):
        levels.setdefault(reading.station_id, []).append((reading.event_time, reading.level_m))
    alerts: list[AlertEvent] = []
    for gauge in catalogue.level_gauges:
        reach = catalogue.reach(gauge.reach_id)
        polygon = corridor_polygon(reach.geometry)
        rain_gauges = [g.station_id for g in catalogue.rain_stations_for_reach(reach.reach_id)]
        alert_level, sequence, alert_id, last_event = AlertLevel.NONE, 0, "", ""
        series = levels[gauge.station_id]
        for index, (t, level_m) in enumerate(series):
            earlier = [v for w, v in series[:index + 1] if (t - w).total_seconds() >= 30 * 60]
            rise = round((level_m - earlier[-1]) * 2, 3) if earlier else 0.0
            observed = level_for(gauge, level_m)
            minutes_to = {name: round((value - level_m) / rise * 60, 1) for name, value in gauge.thresholds().items()
                          if rise > 0 and value > level_m}
            status = LevelStatus(event_id=f"level-status:{drill_id}:{gauge.station_id}:{stamp(t)}", event_time=t,
                                 station_id=gauge.station_id, reach_id=reach.reach_id, level_m=level_m,
                                 observed_level=observed, rise_m_per_h=rise, minutes_to=minutes_to, **common)
            events.append(status)
            r60 = sum(rain_60.get(g, {}).get(t, 0.0) for g in rain_gauges) / max(len(rain_gauges), 1)
            to_danger = gauge.danger_m - level_m
            p = {f"{name}_{m}min":
                 round(min(1.0, max(0.0, 1 - (getattr(gauge, f"{name}_m") - level_m - rise * m / 60))), 4)
                 for name in ("caution", "evacuation", "danger") for m in (30, 60)}
            features = {"stage_to_danger_m": round(to_danger, 3), "rise_m_per_h": rise, "rain_60min_mm": round(r60, 2),
                        "level_m": level_m}
            if reach.reach_id == "R-ZENPUKUJI-UPPER":
                features |= {"camera_level_m": round(level_m + 0.05, 3), "camera_p_overtopping": 0.02}
            score = RiskScore(event_id=f"risk:{drill_id}:{reach.reach_id}:flood:{stamp(t)}", event_time=t,
                              area_id=reach.reach_id, area_kind=AreaKind.REACH, hazard=Hazard.FLOOD,
                              probability=p["danger_60min"], probabilities=p, observed_level=observed,
                              model="flood/2", target="level reaches flood danger (氾濫危険水位) within 60 min",
                              features=features, contributions=("rise_m_per_h", "stage_to_danger_m"), **common)
            events.append(score)
            if observed > alert_level:
                if alert_level is AlertLevel.NONE:
                    alert_id, sequence = f"{drill_id}:{reach.reach_id}:flood:{stamp(t)}", 0
                else:
                    sequence += 1
                event_id = f"{alert_id}:{sequence}"
                alerts.append(AlertEvent(
                    event_id=event_id, event_time=t, alert_id=alert_id, sequence=sequence,
                    msg_type=MsgType.ALERT if sequence == 0 else MsgType.UPDATE, area_id=reach.reach_id,
                    area_kind=AreaKind.REACH, hazard=Hazard.FLOOD, level=observed, previous_level=alert_level,
                    headline=f"{reach.name_ja} 警戒レベル{int(observed)} / {reach.name}: alert level {int(observed)}",
                    references=(last_event,) if sequence else (),
                    reason={"observed_level": int(observed), "probability": p["danger_60min"], "model": "flood/2",
                            "target": score.target, "features": features, "contributions": list(score.contributions),
                            "faults": [], "risk_score_id": score.event_id},
                    area_name=reach.name, area_name_ja=reach.name_ja, polygon=polygon, **common))
                alert_level, last_event = observed, event_id
    events.sort(key=lambda e: (e.event_time, e.event_id))
    alerts.sort(key=lambda a: (a.event_time, a.event_id))
    return StormFeed(drill_id, events, alerts, frame_dir)


@pytest.fixture(scope="session")
def storm_feed_session(tmp_path_factory: pytest.TempPathFactory) -> StormFeed:
    return build_storm_feed(tmp_path_factory.mktemp("frames"))


@pytest.fixture
def storm_feed(storm_feed_session: StormFeed) -> StormFeed:
    return storm_feed_session


# --------------------------------------------------------------------------- the app


def console_settings(frame_root: Path, **overrides: Any) -> AlertApiSettings:
    values: dict[str, Any] = {"admin_key": ADMIN_KEY, "sse_poll_s": 0.1, "sse_heartbeat_s": 1.0,
                              "console_frame_roots": [frame_root]}
    values.update(overrides)
    return AlertApiSettings(**values)


@pytest.fixture
def admin() -> dict[str, str]:
    """Headers that carry the admin key."""
    return dict(ADMIN)


@pytest.fixture
def console_app(tmp_path: Path, storm_feed: StormFeed) -> Iterator[tuple[FastAPI, SqlAlertStore]]:
    """The API on a SQLite store with no Kafka, serving stills from the feed's frame folder."""
    store = SqlAlertStore(f"sqlite:///{tmp_path / 'alerts.db'}")
    app = create_app(Settings(home=tmp_path), store=store, start_consumer=False, start_webhooks=False,
                     api_settings=console_settings(storm_feed.frame_dir))
    yield app, store
    store.close()


def make_officer(base_url: str, username: str = "sato", role: str = "officer") -> None:
    response = httpx.post(f"{base_url}/v1/admin/officers", headers=ADMIN, json={
        "username": username, "display_name": username.title(), "password": PASSWORD, "role": role})
    assert response.status_code == 201, response.text


@dataclasses.dataclass(frozen=True)
class Served:
    """The console's API on a loopback port, with one duty officer (``sato``, role officer)."""

    app: FastAPI
    store: SqlAlertStore
    base_url: str
    officer: str = "sato"
    password: str = PASSWORD


@pytest.fixture
def console_server(console_app: tuple[FastAPI, SqlAlertStore],
                   serve: Callable[[FastAPI], contextlib.AbstractContextManager[str]]) -> Iterator[Served]:
    app, store = console_app
    with serve(app) as base_url:
        make_officer(base_url)
        yield Served(app, store, base_url)


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium, installed with apt-get on first use (root on Debian) by suibou.infra.chromium."""
    from suibou.infra import chromium

    return chromium.ensure_installed(Settings())


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Any]:
    """One headless Chromium for the session, launched by Playwright on the system binary (no ``playwright
    install``: nothing is downloaded). Playwright gives it a fresh temporary profile (user-data dir)."""
    from playwright.sync_api import expect, sync_playwright

    from suibou.infra.chromium import HEADLESS_ARGS

    expect.set_options(timeout=15_000)  # the page polls every 2 s; a loaded CI machine is slower
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), headless=True,
                                             args=list(HEADLESS_ARGS))
        yield browser
        browser.close()


_SHOTS: list[Path] = []


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """``screenshot(page, step)`` saves a PNG under ``.suibou/test-artifacts/console/``."""
    folder = ARTIFACTS / request.node.name.replace("[", "-").replace("]", "")
    shutil.rmtree(folder, ignore_errors=True)
    counter = iter(range(1, 100))

    def take(page: Any, step: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path))
        _SHOTS.append(path)
        return path

    return take


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SHOTS:
        terminalreporter.write_line(f"console screenshots ({len(_SHOTS)}): {ARTIFACTS}")
