"""The field-gateway simulator: live readings with wall-clock times, seeded link faults (jitter, gaps, reordering,
a gauge falling silent), the paced run with a rate and retries, and its HTTP sink against the alert API."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from replay_data.gateway import GatewayOptions, GatewaySimulator, HttpSink, SendResult, parse_silent, run
from suibou.catalogue import StationCatalogue
from suibou.contracts import Event, LevelReading, RainReading, parse_event

T0 = dt.datetime(2026, 12, 6, 22, 0, tzinfo=dt.UTC)
KANDA = StationCatalogue.load("kanda-basin")
GAUGES = len(KANDA.rain_gauges) + len(KANDA.level_gauges)


def sim(**options: Any) -> GatewaySimulator:
    return GatewaySimulator(KANDA, T0, GatewayOptions(**{"seed": 7, **options}))


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def stepped(simulator: GatewaySimulator, until_s: float, step_s: float) -> list[Event]:
    out: list[Event] = []
    t = 0.0
    while t < until_s:
        t = min(until_s, t + step_s)
        out += simulator.readings_until(at(t))
    return out


def test_every_gauge_reports_live_plausible_readings_on_the_interval() -> None:
    readings = sim(interval_s=5).readings_until(at(60))
    assert len(readings) == GAUGES * 13  # t = 0, 5, ..., 60
    assert {r.station_id for r in readings} == {g.station_id for g in (*KANDA.rain_gauges, *KANDA.level_gauges)}
    for reading in readings:
        assert reading.exercise is False and reading.drill_id is None
        assert parse_event(reading.to_json()) == reading  # valid under its contract
        assert (reading.event_time - T0).total_seconds() % 5 == 0
    levels = [r for r in readings if isinstance(r, LevelReading)]
    for reading in levels:
        assert 0 <= reading.level_m < KANDA.level_gauge(reading.station_id).standby_m
    assert all(isinstance(r, RainReading) and r.interval_s == 5 and r.rain_mm >= 0
               for r in readings if not isinstance(r, LevelReading))
    assert len({r.event_id for r in readings}) == len(readings)


def test_the_same_seed_gives_the_same_readings_however_time_is_stepped() -> None:
    faults = {"jitter_s": 3.0, "gap_probability": 0.2, "reorder_probability": 0.2, "silent": {"RG-ASAGAYA": 30}}
    one_go = sim(**faults).readings_until(at(600))
    small_steps = stepped(sim(**faults), 600, 0.7)
    assert [r.to_dict() for r in small_steps] == [r.to_dict() for r in one_go]
    other = sim(**{**faults, "seed": 8}).readings_until(at(600))
    assert [r.to_dict() for r in other] != [r.to_dict() for r in one_go]


def test_gaps_lose_readings_for_good() -> None:
    simulator = sim(gap_probability=0.3)
    readings = simulator.readings_until(at(3000))
    assert simulator.generated == GAUGES * 601
    assert simulator.lost == simulator.generated - len(readings)
    assert 0.25 < simulator.lost / simulator.generated < 0.35
    assert simulator.readings_until(at(3000)) == []


def test_jitter_delivers_late_but_never_before_the_event_time() -> None:
    simulator = sim(jitter_s=4.0)
    delivered: list[tuple[float, Event]] = []
    for t in range(600):
        delivered += [(t, r) for r in simulator.readings_until(at(t))]
    delays = [t - (r.event_time - T0).total_seconds() for t, r in delivered]
    assert min(delays) >= 0 and max(delays) <= 5  # delivered within the jitter (plus the 1 s step)
    assert sum(1 for d in delays if d >= 1) > len(delays) / 2


def test_reordered_readings_arrive_after_the_gauges_next_one() -> None:
    simulator = sim(reorder_probability=0.2)
    readings = simulator.readings_until(at(1200)) + simulator.readings_until(at(1210))
    by_station: dict[str, list[dt.datetime]] = {}
    for reading in readings:
        by_station.setdefault(reading.station_id, []).append(reading.event_time)
    inversions = sum(1 for times in by_station.values() for a, b in itertools.pairwise(times) if b < a)
    assert inversions > 0
    for times in by_station.values():  # nothing lost or repeated, only delivered out of order
        assert sorted(t for t in times if t <= at(1200)) == [at(5 * i) for i in range(241)]


def test_a_gauge_falls_silent_after_a_while_and_the_others_go_on() -> None:
    readings = sim(silent={"WL-KANDA-EIFUKU": 60.0, "RG-ASAGAYA": 0.0}).readings_until(at(300))
    eifuku = [r.event_time for r in readings if r.station_id == "WL-KANDA-EIFUKU"]
    assert max(eifuku) == at(55) and len(eifuku) == 12
    assert not [r for r in readings if r.station_id == "RG-ASAGAYA"]
    assert len([r for r in readings if r.station_id == "WL-ZENPUKUJI-NARITA"]) == 61


def test_exercise_gateways_mark_their_readings() -> None:
    reading = sim(drill_id="drill-9").readings_until(at(0))[0]
    assert reading.exercise is True and reading.drill_id == "drill-9"


@pytest.mark.parametrize("options", [{"interval_s": 0}, {"interval_s": 2.5}, {"gap_probability": 1.0},
                                     {"jitter_s": -1}, {"silent": {"RG-ASAGAYA": -5}}])
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GatewayOptions(**options)


def test_unknown_stations_and_bad_silences_are_refused() -> None:
    with pytest.raises(ValueError, match="RG-NOWHERE"):
        sim(silent={"RG-NOWHERE": 5})
    with pytest.raises(ValueError, match="RG-NOWHERE"):
        sim(stations=("RG-NOWHERE",))
    for text in ("", "@5", "RG-A@soon", "RG-A@-1"):
        with pytest.raises(ValueError):
            parse_silent(text)


@dataclasses.dataclass
class Collector:
    """A sink that keeps what it gets; the first ``refuse`` calls hand the batch back for a retry."""

    batches: list[list[Event]] = dataclasses.field(default_factory=list)
    refuse: int = 0

    def send(self, readings: Sequence[Event]) -> SendResult:
        if self.refuse:
            self.refuse -= 1
            return SendResult(retry=tuple(readings))
        self.batches.append(list(readings))
        return SendResult(accepted=len(readings))

    def close(self) -> None:
        pass


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def test_run_paces_the_simulator_caps_the_rate_and_retries_what_the_sink_hands_back() -> None:
    clock = FakeClock()
    sink = Collector(refuse=2)
    report = run(sim(interval_s=10, stations=("RG-ASAGAYA", "WL-KANDA-EIFUKU")), sink, duration_s=60,
                 clock=clock, sleep=clock.sleep)
    sent = [r for batch in sink.batches for r in batch]
    assert report.generated == 14 and report.sent == 14 and report.accepted == 14 and report.backlog == 0
    assert [r.event_id for r in sent[:2]] == ["gw:RG-ASAGAYA:20261206T220000", "gw:WL-KANDA-EIFUKU:20261206T220000"]
    assert len(sink.batches[0]) == 2  # handed back at t = 0 and 1, sent at t = 2
    clock = FakeClock()
    capped = Collector()
    report = run(sim(interval_s=1), capped, duration_s=10, rate=3, clock=clock, sleep=clock.sleep)
    assert all(len(batch) <= 3 for batch in capped.batches)
    assert report.sent <= 3 * 10 + 3 and report.backlog == report.generated - report.sent > 0


def test_run_stops_when_asked() -> None:
    stop = threading.Event()
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= at(30):
            stop.set()

    report = run(sim(interval_s=5, stations=("RG-ASAGAYA",)), Collector(), stop=stop, clock=clock, sleep=sleep)
    assert report.generated == 7  # t = 0 .. 30


def test_the_http_sink_posts_batches_to_the_ingest_route(serve: Any, tmp_path: Path) -> None:
    from alert_api import create_app
    from alert_api.config import AlertApiSettings
    from alert_api.store import InMemoryAlertStore
    from suibou.settings import Settings

    produced: list[tuple[str, bytes]] = []

    class Acked:
        def get(self, timeout: float | None = None) -> None:
            return None

    class Producer:
        def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                 timestamp_ms: int | None = None) -> Acked:
            produced.append((topic, key or b""))
            return Acked()

        def close(self, timeout: float | None = None) -> None:
            pass

    admin_key = "gateway-test-admin-key-" + "x" * 32
    app = create_app(Settings(home=tmp_path), store=InMemoryAlertStore(), start_consumer=False, start_webhooks=False,
                     api_settings=AlertApiSettings(admin_key=admin_key), ingest_producer_factory=Producer)
    with serve(app) as url:
        import httpx

        created = httpx.post(f"{url}/v1/admin/gateways", headers={"Authorization": f"Bearer {admin_key}"},
                             json={"name": "kanda", "stations": ["RG-ASAGAYA"]}).json()
        sink = HttpSink(url, created["api_key"])
        readings = sim(interval_s=5, stations=("RG-ASAGAYA", "WL-KANDA-EIFUKU")).readings_until(at(20))
        result = sink.send(readings)
        assert (result.accepted, result.rejected, result.retry) == (5, 5, ())
        assert all("WL-KANDA-EIFUKU" in reason for reason in result.reasons)
        assert sink.send(readings).duplicate == 5
        down = HttpSink("http://127.0.0.1:9", created["api_key"], timeout_s=2).send(readings[:2])
        assert len(down.retry) == 2
    assert {topic for topic, _ in produced} == {"suibou.obs.rain"} and len(produced) == 5


def test_the_kafka_sink_keys_by_station_stamps_event_time_and_keeps_what_was_not_acknowledged() -> None:
    from replay_data.gateway import KafkaSink
    from suibou.settings import Settings

    sent: list[dict[str, Any]] = []

    class Future:
        def __init__(self, ok: bool) -> None:
            self.ok = ok

        def get(self, timeout: float | None = None) -> None:
            if not self.ok:
                raise TimeoutError("no acknowledgement")

    class Producer:
        def send(self, topic: str, value: bytes, key: bytes, timestamp_ms: int) -> Future:
            sent.append({"topic": topic, "key": key, "timestamp_ms": timestamp_ms})
            return Future(len(sent) != 2)

        def close(self) -> None:
            pass

    readings = sim(stations=("RG-ASAGAYA", "WL-KANDA-EIFUKU")).readings_until(at(0))
    result = KafkaSink(Settings(topic_prefix="t"), producer=Producer()).send(readings)
    assert sent == [{"topic": "t.obs.rain", "key": b"RG-ASAGAYA", "timestamp_ms": int(T0.timestamp() * 1000)},
                    {"topic": "t.obs.level", "key": b"WL-KANDA-EIFUKU", "timestamp_ms": int(T0.timestamp() * 1000)}]
    assert result.accepted == 1 and [r.station_id for r in result.retry] == ["WL-KANDA-EIFUKU"]


@pytest.mark.parametrize("argv", [
    ["gateway", "--catalogue", "kanda-basin"],  # http without a key file
    ["gateway", "--catalogue", "no-such-catalogue", "--via", "kafka"],
    ["gateway", "--catalogue", "kanda-basin", "--silent", "RG-NOWHERE@5", "--via", "kafka"],
    ["gateway", "--catalogue", "kanda-basin", "--gap-probability", "1.5", "--via", "kafka"],
    ["gateway", "--catalogue", "kanda-basin", "--grids", "300", "--key-file", "k"],  # grids need Kafka
    ["gateway", "--catalogue", "kanda-basin", "--grids", "5", "--via", "kafka"],
])
def test_the_command_refuses_bad_arguments_with_a_message(argv: list[str], capsys: Any) -> None:
    from suibou.cli import main

    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("gateway: ")


def test_live_grids_rain_where_the_nearest_simulated_gauge_rains_and_are_announced_on_the_grid_topic(
        tmp_path: Path) -> None:
    import numpy as np

    from pipelines.grids import read_grid
    from replay_data.gateway import LiveGrids
    from replay_data.media import GRID_VARIABLE
    from suibou.contracts import GridNotice

    clock = FakeClock()
    sink = Collector()
    simulator = sim(interval_s=60)
    grids = LiveGrids(simulator, KANDA, tmp_path, every_s=300)
    run(simulator, sink, duration_s=900, clock=clock, sleep=clock.sleep, tick_s=60.0, grids=grids)
    notices = [e for batch in sink.batches for e in batch if isinstance(e, GridNotice)]
    (grid,) = KANDA.grids
    assert [n.event_time for n in notices] == [at(0), at(300), at(600), at(900)] and grids.issued == 4
    assert all(n.grid_id == grid.grid_id and not n.exercise and parse_event(n.to_json()) == n for n in notices)
    leads, fields = read_grid(notices[-1].uri, GRID_VARIABLE, grid)
    rates = simulator.rain_rates()
    for gauge in KANDA.rain_gauges:
        row, column = grid.cell_of(gauge.lon, gauge.lat)
        assert fields[0, row, column] == pytest.approx(rates[gauge.station_id], abs=1e-4)
    assert np.all(fields == fields[0])  # persistence at every lead
    assert leads.tolist()[0] == 0 and leads.tolist()[-1] == 60
