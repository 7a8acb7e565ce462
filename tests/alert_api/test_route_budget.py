"""Route checks have a bounded cost: input bounds, a work bound, a deadline, cancellation when the client
leaves, and a pool of their own shared fairly between callers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from alert_api.geo import Budget, BudgetExceeded, GeometryError, HazardIndex, RoadGraph, check_route
from alert_api.models import Alert, StoredMessage
from alert_api.workpool import Busy, ClientGone, WorkPool
from suibou.contracts import AlertLevel

from .conftest import ADMIN, RECEIVED


def _index(make_alert: Callable[..., Any], count: int) -> HazardIndex:
    alerts = []
    for n in range(count):
        x, y = 139.50 + (n % 50) * 0.004, 35.60 + (n // 50) * 0.004
        ring = ((x, y), (x + 0.002, y), (x + 0.002, y + 0.002), (x, y + 0.002), (x, y))
        event = make_alert(f"A{n}", level=AlertLevel.WARNING, polygon=ring, area_id=f"Z{n}")
        alerts.append(Alert(latest=StoredMessage(event, RECEIVED, n + 1), onset=RECEIVED))
    return HazardIndex(alerts)


def zigzag(vertices: int) -> list[list[float]]:
    """A route that sweeps back and forth across the whole box of areas."""
    return [[139.50 + (0.2 if i % 2 else 0.0), 35.60 + 0.08 * i / vertices] for i in range(vertices)]


def test_a_zigzag_over_every_area_is_refused_before_the_work(make_alert: Callable[..., Any]) -> None:
    index = _index(make_alert, 1000)
    started = time.perf_counter()
    with pytest.raises(GeometryError, match="more work than one check may do"):
        check_route(index, zigzag(10_000), budget=Budget(max_work=1_000_000))
    assert time.perf_counter() - started < 1.0
    assert check_route(index, zigzag(100), budget=Budget(max_work=1_000_000)).hits  # small enough: answered


def test_too_many_hits_buffered_vertices_and_graph_sizes_are_refused(make_alert: Callable[..., Any]) -> None:
    index = _index(make_alert, 200)
    with pytest.raises(GeometryError, match=r"meets \d+ active areas, more than one check reports \(10\)"):
        check_route(index, zigzag(50), budget=Budget(max_hits=10))
    with pytest.raises(GeometryError, match="with buffer_m needs at most 2000"):
        check_route(index, zigzag(2001), buffer_m=10)
    nodes = [{"id": i, "lon": 139.6 + i * 1e-5, "lat": 35.7} for i in range(101)]
    edges = [{"from": i, "to": i + 1} for i in range(100)]
    with pytest.raises(GeometryError, match="more than 100 nodes"):
        RoadGraph.from_nodes_edges({"nodes": nodes, "edges": edges}, Budget(max_graph_nodes=100))
    with pytest.raises(GeometryError, match="more than 50 edges"):
        RoadGraph.from_nodes_edges({"nodes": nodes, "edges": edges}, Budget(max_graph_edges=50))
    lines = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {
        "type": "LineString", "coordinates": [[139.6 + i * 1e-5, 35.7] for i in range(101)]}}]}
    with pytest.raises(GeometryError, match="more than 50 edges"):
        RoadGraph.from_geojson(lines, Budget(max_graph_edges=50))


def test_the_deadline_and_cancellation_stop_the_work_inside_its_loops(make_alert: Callable[..., Any]) -> None:
    index = _index(make_alert, 50)
    nodes = [{"id": i, "lon": 139.49 + (i % 100) * 1e-3, "lat": 35.59 + (i // 100) * 1e-3} for i in range(10_000)]
    edges = [{"from": i, "to": i + 1} for i in range(9_999)]
    late = Budget(deadline_s=0.0)
    with pytest.raises(BudgetExceeded, match="longer than its 0 s budget"):
        RoadGraph.from_nodes_edges({"nodes": nodes, "edges": edges}, late)
    gone = Budget()
    gone.cancelled.set()
    with pytest.raises(BudgetExceeded) as raised:
        check_route(index, zigzag(10), budget=gone)
    assert raised.value.cancelled


def test_the_pool_limits_each_caller_and_in_all_and_cancels_when_the_client_leaves() -> None:
    release = threading.Event()
    stopped = threading.Event()

    def blocking() -> str:
        release.wait(5)
        return "done"

    def cancellable(budget: Budget) -> Callable[[], None]:
        def work() -> None:
            try:
                while True:
                    budget.check()
                    time.sleep(0.01)
            finally:
                stopped.set()
        return work

    async def scenario() -> None:
        pool = WorkPool(workers=2, queue=1, per_caller=2)
        never_gone = _never
        first = asyncio.ensure_future(pool.run("a", Budget(), blocking, never_gone))
        second = asyncio.ensure_future(pool.run("a", Budget(), blocking, never_gone))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy, match="per caller"):
            await pool.run("a", Budget(), blocking, never_gone)
        third = asyncio.ensure_future(pool.run("b", Budget(), blocking, never_gone))  # another caller: queued
        await asyncio.sleep(0.05)
        with pytest.raises(Busy, match="busy"):
            await pool.run("c", Budget(), blocking, never_gone)  # pool and queue full
        release.set()
        assert await asyncio.gather(first, second, third) == ["done"] * 3
        await asyncio.sleep(0.05)
        budget = Budget()

        async def gone() -> bool:
            return True

        with pytest.raises(ClientGone):
            await pool.run("a", budget, cancellable(budget), gone)
        assert budget.cancelled.is_set()
        await asyncio.sleep(0.2)
        assert stopped.is_set()  # the thread stopped computing
        assert await pool.run("a", Budget(), lambda: "again", never_gone) == "again"  # slots were given back
        pool.close()

    asyncio.run(scenario())


async def _never() -> bool:
    return False


def test_route_check_answers_422_503_and_429_with_reasons(app_factory: Callable[..., FastAPI],
                                                          make_alert: Callable[..., Any]) -> None:
    app = app_factory(start_webhooks=False, route_check_deadline_s=1e-9)
    with TestClient(app) as client:
        app.state.store.add(make_alert("A1", level=AlertLevel.DANGER))
        body = {"route": {"type": "LineString", "coordinates": [[139.58, 35.71], [139.64, 35.70]]}}
        late = client.post("/v1/route-check", headers=ADMIN, json=body)
        assert late.status_code == 503 and "budget" in late.json()["detail"] and late.headers["retry-after"]
        far = {"route": {"type": "LineString", "coordinates": [[179.9, 35.7], [-179.9, 35.7]]}}
        outside = client.post("/v1/route-check", headers=ADMIN, json=far)
        assert outside.status_code == 422 and "service area" in outside.json()["detail"]
        app.state.route_pool._per_caller = 0  # every caller is at its limit
        busy = client.post("/v1/route-check", headers=ADMIN, json=body)
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
