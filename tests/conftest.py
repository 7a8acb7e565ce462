"""Fixtures every test folder may use."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from suibou.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def delete_topics(settings: Settings, **admin_configs: Any) -> None:
    """Deletes the topics of ``settings`` (a test's own prefix) that exist: a test's Kafka teardown."""
    from kafka import KafkaAdminClient  # type: ignore[import-untyped]

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **admin_configs)
    try:
        existing = set(admin.list_topics())
        if topics := [t for t in settings.topics.all_topics if t in existing]:
            admin.delete_topics(topics)
    finally:
        admin.close()


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serves ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.fixture
def serve() -> Callable[[FastAPI], contextlib.AbstractContextManager[str]]:
    """``serve(app)``: a context manager serving ``app`` on a free loopback port, yielding its URL."""
    return serving
