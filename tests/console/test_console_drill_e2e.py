"""The console during a real drill: Kafka broker, Beam on Prism, the alert API as a process, Chromium.

``suibou drill suginami-2005-mini --speed 600`` replays the storm (its three
hours in about 18 s) while a duty officer watches: the drill's statuses reach
the map through the API's status consumer, and its alerts appear in the list
while the drill still runs.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from suibou import infra
from suibou.drill import new_drill_id
from suibou.infra import api_server
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

JMA = {4: "#aa00aa", 5: "#0c000c"}
WAIT_MS = 90_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    # Own topics and database: the test neither sees nor disturbs other drills.
    settings = Settings(topic_prefix=f"test-console-{uuid.uuid4().hex[:8]}", api_port=_free_port(),
                        database_url=f"sqlite:///{tmp_path_factory.mktemp('api') / 'alerts.db'}")
    infra.up(settings)
    api_server.ensure_running(settings)
    yield settings
    api_server.stop(settings)
    delete_topics(settings)


def test_alerts_appear_live_on_the_console_during_a_drill(settings: Settings, browser: Any,
                                                          screenshot: Callable[[Any, str], Any]) -> None:
    from playwright.sync_api import expect

    from suibou.cli import api_headers

    base = api_server.base_url(settings)
    password = secrets.token_urlsafe(16)
    created = httpx.post(f"{base}/v1/admin/officers", headers=api_headers(settings), json={
        "username": "watanabe", "display_name": "Watanabe", "password": password})
    assert created.status_code == 201, created.text

    context = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="Asia/Tokyo")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(api_server.console_url(settings))
        page.fill("#username", "watanabe")
        page.fill("#password", password)
        page.click("button[type=submit]")
        expect(page.locator("#feed")).to_contain_text("running", timeout=WAIT_MS)

        drill_id = new_drill_id("suginami-2005-mini")
        env = {**os.environ, "SUIBOU_HOME": str(settings.home), "SUIBOU_TOPIC_PREFIX": settings.topic_prefix,
               "SUIBOU_API_PORT": str(settings.api_port), "SUIBOU_DATABASE_URL": settings.database_url or ""}
        started = time.monotonic()
        drill = subprocess.Popen(
            [sys.executable, "-m", "suibou", "drill", "suginami-2005-mini", "--speed", "600", "--drill-id", drill_id,
             "--no-report"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        expect(page.locator("#banner")).to_contain_text(drill_id, timeout=WAIT_MS)
        first = page.locator("#alerts li").first
        expect(first).to_be_visible(timeout=WAIT_MS)
        assert drill.poll() is None, "the first alert should reach the console while the drill runs"
        first_seen_s = time.monotonic() - started
        screenshot(page, "first-alert-during-the-drill")

        reach = page.locator('#map .area[data-id="R-ZENPUKUJI-UPPER"]')
        expect(reach).to_have_attribute("stroke", re.compile(f"{JMA[4]}|{JMA[5]}"), timeout=WAIT_MS)
        screenshot(page, "flood-danger-during-the-drill")

        output, _ = drill.communicate(timeout=600)
        drill_s = time.monotonic() - started
        assert drill.returncode == 0, output[-3000:]
        assert f"EXERCISE - drill {drill_id}" in output and "/console/" in output
        narita = page.locator('#map .marker[data-id="WL-ZENPUKUJI-NARITA"]')
        expect(narita).to_have_attribute("data-status", "ok", timeout=WAIT_MS)
        page.wait_for_timeout(2500)  # one more poll of the console
        screenshot(page, "after-the-drill")
        state = httpx.get(f"{base}/v1/console/state", params={"stream": drill_id},
                          headers=api_headers(settings)).json()
        assert state["stream"]["exercise"] is True and state["feed"]["state"] == "running"
        assert {a["area_id"] for a in state["alerts"]} >= {"R-ZENPUKUJI-UPPER", "R-MYOSHOJI-UPPER"}
        assert all(a["exercise"] and a["drill_id"] == drill_id for a in state["alerts"])
        assert state["stations"]["RG-ZENPUKUJI"]["latest"]["swi_mm"] > 0
        # Paced at 600x, every reading still reaches each stage before the stream clock
        # passes it: no gauge of this storm is ever declared silent.
        from suibou.drill import drill_messages

        assert drill_messages(settings, drill_id, settings.topics.faults) == []
        print(f"first alert on the console {first_seen_s:.1f} s after the drill started; drill took {drill_s:.1f} s")
    finally:
        context.close()
