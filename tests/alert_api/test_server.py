"""The server's own limits: bounded error replies, a deadline for request headers, and a stop that never hangs."""

from __future__ import annotations

import contextlib
import doctest
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

import alert_api.errors
from alert_api.config import AlertApiSettings
from alert_api.server import build_server

ADMIN_KEY = "test-admin-key-" + "x" * 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_docstring_examples_run() -> None:
    assert doctest.testmod(alert_api.errors).failed == 0


def test_a_rejected_body_is_not_echoed_in_full(api: TestClient, callers: Any) -> None:
    _, headers = callers.partner("alerts:read", "webhooks:receive")
    huge = "https://nav.example/" + "a" * 2_400_000
    answer = api.put("/v1/partner/webhook", headers=headers, json={"url": huge})
    assert answer.status_code == 422
    assert len(answer.content) < 2_000, len(answer.content)
    [error] = answer.json()["detail"]
    assert error["loc"] == ["body", "url"] and error["input"].endswith("…") and len(error["input"]) == 201
    # Many errors at once: each one bounded, and at most 20 of them.
    route = {"type": "LineString", "coordinates": [["x" * 100, "y" * 100]] * 20_000}
    answer = api.post("/v1/route-check", headers=callers.partner("alerts:read")[1], json={"route": route})
    assert answer.status_code == 422
    assert len(answer.content) < 32_000, len(answer.content)
    body = answer.json()
    assert len(body["detail"]) <= 20


@contextlib.contextmanager
def serving(app: FastAPI, config: AlertApiSettings) -> Iterator[int]:
    port = free_port()
    server = build_server(app, "127.0.0.1", port, config, log_level="warning", lifespan="on")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def closed_after(sock: socket.socket, limit_s: float, trickle: bytes = b"") -> float:
    """Seconds until the server closes ``sock`` (sending ``trickle`` a byte at a time meanwhile), at most
    ``limit_s``."""
    started = time.monotonic()
    sock.settimeout(0.25)
    sent = 0
    while time.monotonic() - started < limit_s:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            pass
        except OSError:
            return time.monotonic() - started
        if sent < len(trickle):
            try:
                sock.sendall(trickle[sent:sent + 1])
            except OSError:
                return time.monotonic() - started
            sent += 1
    return float("inf")


def test_requests_whose_headers_never_finish_are_closed(app_factory: Any, make_settings: Any) -> None:
    config = make_settings(header_timeout_s=1.0)
    with serving(app_factory(header_timeout_s=1.0), config) as port:
        # A partial request, then one header byte every 0.25 s (slowloris).
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            assert 0.7 < closed_after(sock, 5, trickle=b"X-Slow: " + b"a" * 40) < 2.5
        # A connection that sends nothing at all.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            assert closed_after(sock, 5) < 2.5
        # A kept-alive connection: the first request is answered, a partial second one is closed.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            time.sleep(0.5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            assert closed_after(sock, 5, trickle=b"Host: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaa") < 2.5
        # Requests that finish in time are served.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_a_body_that_never_finishes_gets_408_and_the_connection_is_closed(app_factory: Any,
                                                                         make_settings: Any) -> None:
    config = make_settings(body_timeout_s=1.0)
    with serving(app_factory(body_timeout_s=1.0), config) as port, \
            socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /v1/officer/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"username\": ")
            sock.settimeout(5)
            started = time.monotonic()
            answer = b""
            while not answer.endswith(b"}") and time.monotonic() - started < 5:
                answer += sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert 0.7 < time.monotonic() - started < 3
            assert closed_after(sock, 3) < 3


def test_sigterm_stops_the_api_quickly_with_an_open_stream_and_no_broker(tmp_path: Path) -> None:
    """The API as ``suibou api`` runs it: a live stream is open, Kafka is unreachable; SIGTERM must end it."""
    port = free_port()
    env = {
        **os.environ, "SUIBOU_HOME": str(tmp_path), "SUIBOU_API_PORT": str(port), "SUIBOU_API_HOST": "127.0.0.1",
        "SUIBOU_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "SUIBOU_ADMIN_KEY": ADMIN_KEY,
        "SUIBOU_ALERT_API_SHUTDOWN_TIMEOUT_S": "3", "SUIBOU_ALERT_API_RETRY_BACKOFF_S": "0.5",
    }
    env.pop("SUIBOU_DATABASE_URL", None)
    log = tmp_path / "api.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "suibou", "api"], stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        lines: list[str] = []
        ended = threading.Event()

        def follow() -> None:
            try:
                with httpx.stream("GET", f"{base}/v1/stream", timeout=30,
                                  headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as response:
                    for line in response.iter_lines():
                        lines.append(line)  # noqa: PERF402 - keeps what came before a break
            except httpx.HTTPError:
                pass
            ended.set()

        threading.Thread(target=follow, daemon=True).start()
        assert wait_for(lambda: bool(lines), 10), "the stream did not start"
        health = httpx.get(f"{base}/healthz", timeout=5).json()
        assert json.dumps(health)  # reads answer during the outage
        time.sleep(1.0)  # the consumers are retrying against the missing broker
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        took = time.monotonic() - started
        assert took < 6.0, f"the API took {took:.1f} s to stop:\n{log.read_text()}"
        assert code in (0, -signal.SIGTERM), log.read_text()  # uvicorn re-raises the signal once it has stopped
        assert ended.wait(5), "the stream was not closed"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True

