"""The duty officer console in a real headless Chromium (Debian's package, driven by Playwright).

The API runs with a SQLite store on a loopback port; a drill's traffic is fed
through the same ingest functions the Kafka consumers use (statuses into the
console's station view, alerts into the store), so no broker is needed. The page
may reach nothing but the API: every other request is aborted and counted.
Screenshots go to ``.suibou/test-artifacts/console/<test>/``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from alert_api.console import ingest_status
from alert_api.consumer import ingest_record

pytestmark = pytest.mark.browser

JMA = {1: "#ffffff", 2: "#f2e700", 3: "#ff2800", 4: "#aa00aa", 5: "#0c000c"}
TIMEOUT_MS = 10_000


def at(hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2005, 9, 4, hour, minute, tzinfo=dt.UTC)


class Console:
    """The served API, a browser page on it, and the drill's traffic to feed it."""

    def __init__(self, served: Any, page: Any, feed: Any, admin: dict[str, str]) -> None:
        self.app, self.store, self.base_url, self.password = served.app, served.store, served.base_url, served.password
        self.page, self.feed, self.admin = page, feed, admin
        self.fed_until: dt.datetime | None = None
        self.outside: list[str] = []
        self.errors: list[str] = []

    def publish_until(self, end: dt.datetime, extra: list | None = None) -> None:
        """The drill's statuses and alerts up to ``end``, as the consumers would ingest them."""
        for event in [*self.feed.between(self.fed_until, end), *(extra or [])]:
            ingest_status(self.app.state.console.view, event.to_json())
        for alert in self.feed.alerts_until(end):
            ingest_record(self.store, alert.to_json())
        self.fed_until = end

    def login(self, username: str = "sato") -> None:
        self.page.fill("#username", username)
        self.page.fill("#password", self.password)
        self.page.click("button[type=submit]")
        self.page.wait_for_selector("#app:not([hidden])", timeout=TIMEOUT_MS)

    def marker(self, station_id: str) -> Any:
        return self.page.locator(f'#map .marker[data-id="{station_id}"]')

    def area(self, area_id: str) -> Any:
        return self.page.locator(f'#map .area[data-id="{area_id}"]')

    def audit(self, actor: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.base_url}/v1/admin/audit", params={"actor": actor}, headers=self.admin)
        data: list[dict[str, Any]] = response.json()["data"]
        return data


@pytest.fixture
def console(browser: Any, console_server: Any, storm_feed: Any, admin: dict[str, str]) -> Iterator[Console]:
    base_url = console_server.base_url
    context = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="Asia/Tokyo")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    session = Console(console_server, page, storm_feed, admin)

    def only_the_api(route: Any) -> None:
        if route.request.url.startswith(base_url + "/"):
            route.continue_()
        else:
            session.outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_api)
    page.on("pageerror", lambda error: session.errors.append(str(error)))
    page.on("console", lambda message: session.errors.append(message.text) if message.type == "error" else None)
    try:
        yield session
    finally:
        context.close()
    assert session.outside == [], "the page reached beyond the API"
    assert [e for e in session.errors if "401" not in e] == [], "errors in the page"


def wait_until(condition: Callable[[], bool], timeout_s: float = TIMEOUT_MS / 1000) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def expect_attribute(locator: Any, name: str, value: str) -> None:
    from playwright.sync_api import expect

    expect(locator).to_have_attribute(name, value, timeout=TIMEOUT_MS)


def test_a_drill_appears_live_and_the_officer_acknowledges_an_alert(
    console: Console, screenshot: Callable[[Any, str], Any]
) -> None:
    from playwright.sync_api import expect

    page, feed = console.page, console.feed
    page.goto(f"{console.base_url}/console/")
    expect(page.locator("#login-form")).to_be_visible()
    screenshot(page, "login")
    console.publish_until(at(12, 15))
    console.login()

    # The drill is shown, marked as an exercise on every view.
    banner = page.locator("#banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("EXERCISE")
    expect(banner).to_contain_text(feed.drill_id)
    expect(page.locator("#exercise-mark")).to_be_visible()
    narita = console.marker("WL-ZENPUKUJI-NARITA")
    expect_attribute(narita, "data-status", "ok")
    expect_attribute(narita, "data-level", "1")
    expect_attribute(narita.locator(".shape"), "fill", JMA[1])
    expect_attribute(console.area("R-ZENPUKUJI-UPPER"), "stroke", JMA[1])
    expect(page.locator("#alerts li")).to_have_count(0)
    screenshot(page, "drill-started")

    # The first alert arrives: it is listed and the reach turns yellow, without a reload.
    console.publish_until(at(12, 22))
    first = feed.alerts[0]
    row = page.locator(f'#alerts li[data-alert-id="{first.alert_id}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("EXERCISE")
    expect_attribute(console.area("R-ZENPUKUJI-UPPER"), "stroke", JMA[2])
    expect_attribute(console.area("R-ZENPUKUJI-UPPER"), "data-level", "2")
    screenshot(page, "first-alert")

    # The river rises to flood danger; a rain gauge falls silent.
    console.publish_until(at(12, 45), [feed.fault("RG-ASAGAYA", at(12, 45))])
    expect_attribute(console.area("R-ZENPUKUJI-UPPER"), "stroke", JMA[4])
    expect_attribute(narita.locator(".shape"), "fill", JMA[4])
    expect_attribute(row, "data-level", "4")
    asagaya = console.marker("RG-ASAGAYA")
    expect_attribute(asagaya, "data-status", "fault")
    expect_attribute(asagaya.locator(".shape"), "fill", "url(#fault-hatch)")
    expect(page.locator('#faults li[data-station-id="RG-ASAGAYA"]')).to_contain_text("silent")
    screenshot(page, "flood-danger-and-a-silent-gauge")

    # The water-level gauge: its hydrograph with the thresholds, the trend and the flood model's probabilities.
    narita.dispatch_event("click")
    chart = page.locator('#detail svg[data-chart="hydrograph"]')
    expect(chart).to_be_visible()
    expect(chart.locator("[data-threshold]")).to_have_count(5)
    expect(chart.locator("polyline.obs")).to_have_count(1)
    expect(chart.locator("polyline.trend")).to_have_count(1)
    expect(page.locator('#detail table[data-forecast="flood/2"]')).to_be_visible()
    expect(page.locator("#detail .exercise-note")).to_contain_text("EXERCISE")
    screenshot(page, "hydrograph")

    # A rain gauge: rainfall bars and the snake line against the critical line.
    console.marker("RG-ZENPUKUJI").dispatch_event("click")
    expect(page.locator('#detail svg[data-chart="rainfall"] rect.bar').first).to_be_visible()
    expect(page.locator('#detail svg[data-chart="snake"] [data-critical-line]')).to_have_count(1)
    expect(page.locator('#detail svg[data-chart="snake"] polyline.snake')).to_have_count(1)
    page.locator('#detail svg[data-chart="snake"]').scroll_into_view_if_needed()
    screenshot(page, "rain-and-snake-line")

    # A camera: its latest still and the level camera/1 reads from it.
    still = feed.frame(at(12, 45))
    ingest_status(console.app.state.console.view, still.to_json())
    camera = console.marker("CAM-ZENPUKUJI-NARITA")
    expect_attribute(camera, "data-status", "ok")
    camera.dispatch_event("click")
    image = page.locator(f'#detail img.frame[data-event-id="{still.event_id}"]')
    expect(image).to_be_visible()
    wait_until(lambda: image.evaluate("img => img.complete && img.naturalWidth") == 160)
    expect(page.locator("#detail [data-estimate]")).to_be_visible()
    screenshot(page, "camera")

    # Why the alert was raised, then the officer acknowledges it; the audit log names them.
    row.click()
    reason = page.locator("#detail [data-reason]")
    expect(reason).to_contain_text("flood/2")
    expect(reason).to_contain_text("stage_to_danger_m")
    reason.scroll_into_view_if_needed()
    screenshot(page, "why-the-alert-was-raised")
    page.fill("#detail .actions input[name=note]", "seen on the Narita camera")
    page.click('#detail button[data-action="acknowledge"]')
    expect(page.locator(f'#detail table[data-history="{first.alert_id}"]')).to_contain_text("sato (acknowledge)")
    screenshot(page, "acknowledged")
    acknowledged = [e for e in console.audit("sato") if e["action"] == "alert.acknowledge"]
    assert [(e["target"], e["detail"]["note"]) for e in acknowledged] == [(first.alert_id, "seen on the Narita camera")]


def test_an_officer_issues_updates_and_cancels_an_alert_by_hand(
    console: Console, screenshot: Callable[[Any, str], Any]
) -> None:
    from playwright.sync_api import expect

    page = console.page
    console.publish_until(at(12, 30))
    page.goto(f"{console.base_url}/console/")
    console.login()
    kanda = console.area("R-KANDA-UPPER")
    expect_attribute(kanda, "stroke", JMA[1])

    kanda.dispatch_event("click")
    form = page.locator('#detail [data-issue="R-KANDA-UPPER"]')
    expect(form).to_contain_text("EXERCISE")
    form.locator("select[name=level]").select_option("3")
    form.locator("input[name=note]").fill("culvert blocked at Eifuku")
    form.locator("button").click()
    expect_attribute(kanda, "stroke", JMA[3])
    history = page.locator("#detail table[data-history]")
    expect(history).to_contain_text("sato (issue)")
    alert_id = history.get_attribute("data-history")
    assert alert_id and alert_id.startswith("duty:R-KANDA-UPPER:flood:")
    row = page.locator(f'#alerts li[data-alert-id="{alert_id}"]')
    expect(row).to_contain_text("officer")
    screenshot(page, "issued")

    page.locator("#detail .actions select[name=level]").select_option("4")
    page.click('#detail button[data-action="update"]')
    expect_attribute(kanda, "stroke", JMA[4])
    expect(history).to_contain_text("sato (update)")
    screenshot(page, "raised-to-4")

    cancel = page.locator('#detail button[data-action="cancel"]')
    cancel.click()
    expect(cancel).to_have_text("confirm cancel")
    cancel.click()
    expect(history).to_contain_text("sato (cancel)")
    expect_attribute(kanda, "stroke", JMA[1])
    expect(row).to_have_class(re.compile("cancelled"))
    screenshot(page, "cancelled")

    actions = [(e["action"], e["target"]) for e in console.audit("sato") if e["action"].startswith("alert.")]
    assert actions == [("alert.issue", alert_id), ("alert.update", alert_id), ("alert.cancel", alert_id)]
    issued = httpx.get(f"{console.base_url}/v1/alerts/{alert_id}", headers=console.admin).json()
    assert issued["exercise"] is True and issued["drill_id"] == console.feed.drill_id


def test_the_console_asks_for_a_login_and_refuses_a_wrong_password(console: Console) -> None:
    from playwright.sync_api import expect

    page = console.page
    page.goto(f"{console.base_url}/console/")
    page.fill("#username", "sato")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("Wrong user name or password")
    expect(page.locator("#app")).to_be_hidden()
    console.login()
    page.click("#logout")
    expect(page.locator("#login-form")).to_be_visible()
    assert [e["action"] for e in console.audit("sato")] == ["officer.login_failed", "officer.login", "officer.logout"]


def test_the_console_shows_the_live_job_and_warns_while_it_is_not_running(console: Console) -> None:
    from playwright.sync_api import expect

    from suibou.contracts import JobState, JobStatus

    page = console.page
    page.goto(f"{console.base_url}/console/")
    console.login()
    expect(page.locator("#job")).to_have_text("live job: not seen")
    expect(page.locator("#job-banner")).to_contain_text("not seen")
    now = dt.datetime.now(dt.UTC)
    console.app.state.jobs.fold(JobStatus(event_id="live:1", event_time=now, job="live", state=JobState.RUNNING,
                                          since=now - dt.timedelta(minutes=3), restarts=1,
                                          last_restart_reason="harness exited", behind_s=3.0))
    expect(page.locator("#job")).to_have_text("live job: running")
    expect(page.locator("#job")).to_have_class("job ok")
    expect(page.locator("#job-banner")).to_be_hidden()
    console.app.state.jobs.fold(JobStatus(event_id="live:2", event_time=now + dt.timedelta(seconds=1), job="live",
                                          state=JobState.RUNNING, since=now, behind_s=95.0))
    expect(page.locator("#job")).to_have_text("live job: behind by 95 s")
    expect(page.locator("#job-banner")).to_contain_text("behind by 95 s")
