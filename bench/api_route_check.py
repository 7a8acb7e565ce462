"""Route-check latency against the number of active hazard polygons.

Target (issue): p99 under 20 ms with 10,000 active polygons and a 1,000-vertex route.

Three measurements per polygon count, on the same synthetic polygons and routes:

- ``index``: :func:`alert_api.geo.check_route` on the STRtree index (what the
  endpoint runs), including the per-hit intersections and distances;
- ``search``: the index search alone (which areas does the route meet), STRtree
  against the linear scan;
- ``http``: ``POST /v1/route-check`` through the whole app (auth, JSON parsing
  and validation, the index served from the store, the JSON answer), in process;
- ``baseline``: the same route check with the STRtree replaced by a naive
  linear scan (``polygon.intersects(route)`` for every polygon), measured in
  the same run; the speed-up is given as a ratio to it.

Polygons are spread over mainland Tokyo (about 70 km x 35 km, where Tokyo has
some 16,000 landslide warning zones): nine in ten are small zone-like polygons
of 100-300 m (about 10 vertices), one in ten a 150 m corridor around a 1-3 km
river-like line (about 40 vertices, like the pipeline's reach corridors).
Routes are 1,000-vertex random walks of about 15 km. ``--dense`` packs the same
number of corridors into a 40 km square instead (several times more hits per
route: a worst case).

``--worst`` measures instead the heaviest requests the route-check budgets
(``alert_api.geo.Budget``) let through, over the HTTP path with 10,000 active
polygons, each as a ratio to a simple two-position route in the same run: a
zigzag sweeping the whole area with as many positions as the work bound allows,
a 10,000-position route, a 2,000-position route with a 1,000 m buffer, and a
detour on a grid with as many edges as a road graph may have; then a partner's simple checks while another
partner sends zigzags back to back, two at a time.

Usage: ``.venv/bin/python bench/api_route_check.py [--counts 100 1000 10000] [--routes 200] [--worst]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import cast

import numpy as np
from fastapi.testclient import TestClient
from pydantic import SecretStr
from shapely.geometry import LineString, Polygon

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alert_api import create_app
from alert_api.config import AlertApiSettings
from alert_api.geo import HazardIndex, check_route
from alert_api.models import Alert, StoredMessage
from alert_api.store import InMemoryAlertStore
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType
from suibou.settings import Settings

CENTRE = (139.52, 35.70)
HALF_SIDE_DEG = (0.38, 0.16)  # about 70 km x 35 km
DENSE_HALF_SIDE_DEG = (0.22, 0.18)  # about 40 km x 40 km
KX, KY = 111_320.0 * math.cos(math.radians(CENTRE[1])), 110_574.0
T0 = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)
ADMIN_KEY = "bench-admin-key-" + "x" * 32


def zone(rng: random.Random, half: tuple[float, float]) -> tuple[tuple[float, float], ...]:
    x = rng.uniform(-half[0], half[0]) * KX
    y = rng.uniform(-half[1], half[1]) * KY
    radius = rng.uniform(50, 150)
    n = rng.randint(8, 12)
    ring = [(x + radius * rng.uniform(0.7, 1.0) * math.cos(2 * math.pi * k / n),
             y + radius * rng.uniform(0.7, 1.0) * math.sin(2 * math.pi * k / n)) for k in range(n)]
    ring.append(ring[0])
    return tuple((round(CENTRE[0] + px / KX, 6), round(CENTRE[1] + py / KY, 6)) for px, py in ring)


def area(rng: random.Random, dense: bool) -> tuple[tuple[float, float], ...]:
    if dense:
        return corridor(rng, DENSE_HALF_SIDE_DEG)
    return corridor(rng, HALF_SIDE_DEG) if rng.random() < 0.1 else zone(rng, HALF_SIDE_DEG)


def corridor(rng: random.Random, half: tuple[float, float]) -> tuple[tuple[float, float], ...]:
    x = rng.uniform(-half[0], half[0]) * KX
    y = rng.uniform(-half[1], half[1]) * KY
    heading = rng.uniform(0, 2 * math.pi)
    points = [(x, y)]
    for _ in range(rng.randint(3, 6)):
        heading += rng.uniform(-0.6, 0.6)
        step = rng.uniform(300, 600)
        x, y = x + step * math.cos(heading), y + step * math.sin(heading)
        points.append((x, y))
    area = cast(Polygon, LineString(points).buffer(150, quad_segs=4).simplify(5))
    return tuple((round(CENTRE[0] + px / KX, 6), round(CENTRE[1] + py / KY, 6)) for px, py in area.exterior.coords)


def route(rng: random.Random, vertices: int = 1000, half: tuple[float, float] = HALF_SIDE_DEG) -> list[list[float]]:
    x = rng.uniform(-0.5, 0.5) * half[0] * KX
    y = rng.uniform(-0.5, 0.5) * half[1] * KY
    heading = rng.uniform(0, 2 * math.pi)
    coordinates = []
    for _ in range(vertices):
        coordinates.append([CENTRE[0] + x / KX, CENTRE[1] + y / KY])
        heading += rng.uniform(-0.3, 0.3)
        x, y = x + 15.0 * math.cos(heading), y + 15.0 * math.sin(heading)
    return coordinates


def event(n: int, ring: tuple[tuple[float, float], ...], rng: random.Random) -> AlertEvent:
    level = AlertLevel(rng.choice([2, 3, 4, 5]))
    return AlertEvent(event_id=f"B-{n}:0", event_time=T0, alert_id=f"B-{n}", sequence=0, msg_type=MsgType.ALERT,
                      area_id=f"Z-{n}", area_kind=AreaKind.ZONE, hazard=Hazard.FLOOD, level=level,
                      headline="bench", area_name=f"Area {n}", area_name_ja=f"区域{n}", polygon=ring)


class LinearScan(HazardIndex):
    """The baseline: the same index, searched by testing every polygon in turn."""

    def intersecting(self, geometry: object, min_level: int = 1) -> np.ndarray:
        found = [i for i, polygon in enumerate(self.plain) if polygon.intersects(geometry)]  # type: ignore[call-overload]
        return np.array([i for i in found if self.levels[i] >= min_level], dtype=int)

    def __init__(self, alerts: list[Alert]) -> None:
        super().__init__(alerts)
        self.plain = [Polygon(a.latest.event.polygon) for a in alerts]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return statistics.median(ordered) * 1000, p99 * 1000


def timed(function: object, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return samples


def grid(half: tuple[float, float], target_edges: int) -> dict[str, object]:
    """A square grid of two-way streets over the area, with as many edges as the budget allows."""
    n = int((1 + math.sqrt(1 + 2 * target_edges)) / 2)
    while 2 * n * (n - 1) > target_edges:
        n -= 1
    xs = np.linspace(CENTRE[0] - half[0], CENTRE[0] + half[0], n)
    ys = np.linspace(CENTRE[1] - half[1], CENTRE[1] + half[1], n)
    nodes = [{"id": f"{i}-{j}", "lon": float(xs[i]), "lat": float(ys[j])} for i in range(n) for j in range(n)]
    edges = [{"from": f"{i}-{j}", "to": f"{i + 1}-{j}"} for i in range(n - 1) for j in range(n)]
    edges += [{"from": f"{i}-{j}", "to": f"{i}-{j + 1}"} for i in range(n) for j in range(n - 1)]
    return {"nodes": nodes, "edges": edges}


def worst(args: argparse.Namespace) -> None:
    """The heaviest requests the budgets allow, as ratios to a simple route in the same run."""
    from alert_api.geo import Budget

    rng = random.Random(args.seed)
    events = [event(n, area(rng, False), rng) for n in range(10_000)]
    store = InMemoryAlertStore()
    for e in events:
        store.add(e)
    config = AlertApiSettings(admin_key=SecretStr(ADMIN_KEY), max_body_bytes=16 * 1024 * 1024)
    app = create_app(Settings(home=Path(tempfile.mkdtemp())), store=store, start_consumer=False,
                     api_settings=config, start_webhooks=False)
    budget = Budget(max_work=config.route_check_max_work)
    west, east = CENTRE[0] - HALF_SIDE_DEG[0], CENTRE[0] + HALF_SIDE_DEG[0]
    south, north = CENTRE[1] - HALF_SIDE_DEG[1], CENTRE[1] + HALF_SIDE_DEG[1]
    sweep = budget.max_work // 10_000  # every area's box meets the zigzag's box

    def zigzag(vertices: int) -> list[list[float]]:
        return [[east if i % 2 else west, south + (north - south) * i / (vertices - 1)] for i in range(vertices)]

    simple = {"route": {"type": "LineString", "coordinates": [[139.50, 35.70], [139.52, 35.70]]}}
    danger = next(e for e in events if int(e.level) >= 4)
    (x0, y0), (x1, y1) = danger.polygon[0], danger.polygon[len(danger.polygon) // 2]
    through = [[x0 - 0.02, y0], [x1 + 0.02, y1]]
    cases = {
        "simple route (2 positions)": simple,
        f"zigzag over all areas ({sweep} positions)": {"route": {"type": "LineString", "coordinates": zigzag(sweep)}},
        "random walk, 10,000 positions": {"route": {"type": "LineString", "coordinates": route(rng, 10_000)}},
        "2,000 positions, buffer 1,000 m": {"route": {"type": "LineString", "coordinates": route(rng, 2000)},
                                            "buffer_m": 1000},
        f"detour, {config.route_check_max_graph_edges:,}-edge grid": {
            "route": {"type": "LineString", "coordinates": through},
            "graph": grid(HALF_SIDE_DEG, config.route_check_max_graph_edges)},
    }
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    rows = []
    with TestClient(app) as client:
        for label, body in cases.items():
            client.post("/v1/route-check", headers=headers, json=body)  # warm
            samples, statuses = [], set()
            for _ in range(args.worst_repeats if label != "simple route (2 positions)" else 50):
                start = time.perf_counter()
                response = client.post("/v1/route-check", headers=headers, json=body)
                samples.append(time.perf_counter() - start)
                statuses.add(response.status_code)
            rows.append((label, samples, statuses, response.json().get("detour_status", response.json())))
        # Fairness: partner B's simple checks while partner A sends zigzags two at a time.
        made = [client.post("/v1/admin/partners", headers=headers, json={
            "name": name, "scopes": ["alerts:read"], "rate_limit_per_minute": 1_000_000}).json()
            for name in ("a", "b")]
        heavy_headers, light_headers = ({"Authorization": f"Bearer {m['api_key']}"} for m in made)
        client.post("/v1/route-check", headers=light_headers, json=simple)  # builds the partners' index
        stop = False
        heavy_statuses: list[int] = []

        def flood() -> None:
            while not stop:
                heavy_statuses.append(client.post("/v1/route-check", headers=heavy_headers,
                                                  json=cases[f"zigzag over all areas ({sweep} positions)"]).status_code)

        import threading

        flooders = [threading.Thread(target=flood) for _ in range(4)]
        for thread in flooders:
            thread.start()
        time.sleep(1.0)
        shared, shared_statuses = [], set()
        for _ in range(50):
            start = time.perf_counter()
            shared_statuses.add(client.post("/v1/route-check", headers=light_headers, json=simple).status_code)
            shared.append(time.perf_counter() - start)
        stop = True
        for thread in flooders:
            thread.join()
        time.sleep(0.1)
        rows.append(("B simple, A sends zigzags x4", shared, shared_statuses,
                     f"A got {sorted(set(heavy_statuses))}"))
    base50, _ = percentiles(rows[0][1])
    print(f"heaviest route checks the budgets allow, 10,000 active polygons, HTTP in process; times in ms "
          f"(max_work {budget.max_work:,}, deadline {config.route_check_deadline_s:g} s)")
    print(f"{'request':<40} {'status':>10} {'p50':>9} {'p99':>9} {'p50 x':>8}  note")
    for label, samples, statuses, note in rows:
        p50, p99 = percentiles(samples)
        text = note if isinstance(note, str) else ""
        print(f"{label:<40} {','.join(map(str, sorted(statuses))):>10} {p50:>9.1f} {p99:>9.1f} "
              f"{p50 / base50:>7.0f}x  {text}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--routes", type=int, default=200, help="routes timed per count")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dense", action="store_true", help="river corridors packed into a 40 km square")
    parser.add_argument("--worst", action="store_true", help="the heaviest requests the budgets allow")
    parser.add_argument("--worst-repeats", type=int, default=10)
    args = parser.parse_args(argv)
    if args.worst:
        worst(args)
        return
    rng = random.Random(args.seed)
    routes = [route(rng, half=DENSE_HALF_SIDE_DEG if args.dense else HALF_SIDE_DEG) for _ in range(args.routes)]
    layout = "dense: corridors in a 40 km square" if args.dense else "Tokyo-like: zones and corridors over 70 x 35 km"
    print(f"route check ({layout}): {args.routes} routes of 1000 vertices (about 15 km) per count; times in ms")
    print(f"{'polygons':>8} {'hits':>5} {'search tree/scan p50':>21} {'check p50':>9} {'check p99':>9} "
          f"{'naive p50':>9} {'naive p99':>9} {'naive/check p50':>15} {'http p50':>8} {'http p99':>8} {'build s':>7}")
    for count in args.counts:
        rings = [area(rng, args.dense) for _ in range(count)]
        events = [event(n, ring, rng) for n, ring in enumerate(rings)]
        alerts = [Alert(latest=StoredMessage(e, T0, n + 1), onset=T0) for n, e in enumerate(events)]
        started = time.perf_counter()
        index = HazardIndex(alerts)
        build_s = time.perf_counter() - started
        scan = LinearScan(alerts)
        hits = [len(check_route(index, r).hits) for r in routes]
        assert hits == [len(check_route(scan, r).hits) for r in routes], "the index and the scan disagree"
        index_samples: list[float] = []
        naive_samples: list[float] = []
        tree_search: list[float] = []
        scan_search: list[float] = []
        for r in routes:
            index_samples += timed(partial(check_route, index, r), 1)
            naive_samples += timed(partial(check_route, scan, r), 1)
            line = LineString(r)
            tree_search += timed(partial(index.intersecting, line), 1)
            scan_search += timed(partial(scan.intersecting, line), 1)

        store = InMemoryAlertStore()
        for e in events:
            store.add(e)
        config = AlertApiSettings(admin_key=SecretStr(ADMIN_KEY), max_body_bytes=8 * 1024 * 1024)
        app = create_app(Settings(home=Path(tempfile.mkdtemp())), store=store, start_consumer=False,
                         api_settings=config, start_webhooks=False)
        http_samples: list[float] = []
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            bodies = [{"route": {"type": "LineString", "coordinates": r}} for r in routes]
            assert client.post("/v1/route-check", headers=headers, json=bodies[0]).status_code == 200  # warm
            for body in bodies:
                start = time.perf_counter()
                response = client.post("/v1/route-check", headers=headers, json=body)
                http_samples.append(time.perf_counter() - start)
                assert response.status_code == 200
        store.close()
        i50, i99 = percentiles(index_samples)
        h50, h99 = percentiles(http_samples)
        n50, n99 = percentiles(naive_samples)
        t50, _ = percentiles(tree_search)
        s50, _ = percentiles(scan_search)
        search = f"{t50:.2f}/{s50:.2f} ({s50 / t50:.0f}x)"
        print(f"{count:>8} {np.mean(hits):>5.1f} {search:>21} {i50:>9.2f} {i99:>9.2f} {n50:>9.2f} {n99:>9.2f} "
              f"{n50 / i50:>14.1f}x {h50:>8.2f} {h99:>8.2f} {build_s:>7.2f}")
    print("check = alert_api.geo.check_route; naive = the same with a linear scan; http = POST /v1/route-check")
    print("target: http p99 < 20 ms at 10000 polygons")


if __name__ == "__main__":
    main()
