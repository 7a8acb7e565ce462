"""Webhooks over real HTTP to a loopback receiver, verified with the off-the-shelf ``standardwebhooks`` library."""

from __future__ import annotations

import datetime as dt
import doctest
import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

import alert_api.webhooks
from alert_api import create_app
from alert_api.db import Database
from alert_api.store import SqlAlertStore
from alert_api.webhooks import DeliveryWorker, RetryPolicy, UnsafeUrl, check_url, wait_until
from suibou.contracts import AlertEvent, AlertLevel, MsgType
from suibou.settings import Settings

MakeAlert = Callable[..., AlertEvent]


def subscribe(client: TestClient, callers: Any, url: str, *scopes: str) -> tuple[str, str]:
    """Registers a partner with ``scopes`` and subscribes it to ``url``; returns (partner id, secret)."""
    partner_id, headers = callers.partner(*(scopes or ("alerts:read", "webhooks:receive")))
    response = client.put("/v1/partner/webhook", headers=headers, json={"url": url})
    assert response.status_code == 200, response.text
    secret = response.json()["secret"]
    assert secret.startswith("whsec_")
    return partner_id, secret


def actual(make_alert: MakeAlert, alert_id: str = "ZEN", sequence: int = 0, **fields: Any) -> AlertEvent:
    kind = MsgType.ALERT if sequence == 0 else MsgType.UPDATE
    return make_alert(alert_id, sequence, minutes=sequence, msg_type=kind, exercise=False, drill_id=None,
                      references=(f"{alert_id}.{sequence - 1}",) if sequence else (), **fields)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(alert_api.webhooks).failed == 0


def test_signed_webhook_verifies_with_the_standard_library_and_matches_the_pull_feed(
    api: TestClient, callers: Any, receiver: Any, store: SqlAlertStore, make_alert: MakeAlert,
    admin: dict[str, str]
) -> None:
    _, secret = subscribe(api, callers, receiver.url)
    store.add(actual(make_alert, level=AlertLevel.DANGER))
    assert wait_until(lambda: len(receiver.requests) == 1, 10)
    headers, body = receiver.requests[0]
    payload = Webhook(secret).verify(body, headers)
    assert headers["webhook-id"] == "ZEN.0" and headers["content-type"] == "application/json"
    assert payload["type"] == "alert.issued"
    pulled = api.get("/v1/messages/ZEN.0", headers=admin).json()
    assert payload["data"] == pulled
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"ZEN.0", b"ZEN.9"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)


def test_failed_deliveries_are_retried_with_backoff_under_the_same_id(
    api: TestClient, callers: Any, receiver: Any, store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    _, secret = subscribe(api, callers, receiver.url)
    receiver.statuses = [500, 503]
    store.add(actual(make_alert))
    assert wait_until(lambda: len(receiver.requests) == 1, 10)
    assert [h["webhook-id"] for h, _ in receiver.attempts] == ["ZEN.0"] * 3
    for headers, body in receiver.attempts:
        Webhook(secret).verify(body, headers)  # every attempt is signed afresh

    def deliveries() -> list[dict[str, Any]]:
        return list(api.get("/v1/partner/webhook/deliveries", headers=callers.last_headers).json()["data"])

    assert wait_until(lambda: deliveries()[0]["status"] == "delivered", 5)
    [delivery] = deliveries()
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == ("delivered", 3, 200)


def test_each_partner_gets_messages_in_order_even_when_one_needs_retries(
    api: TestClient, callers: Any, receiver: Any, store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    subscribe(api, callers, receiver.url)
    receiver.statuses = [500, 500]
    for sequence in range(3):
        store.add(actual(make_alert, sequence=sequence, level=AlertLevel(2 + sequence)))
    assert wait_until(lambda: len(receiver.requests) == 3, 10)
    assert [h["webhook-id"] for h, _ in receiver.requests] == ["ZEN.0", "ZEN.1", "ZEN.2"]
    assert [h["webhook-id"] for h, _ in receiver.attempts] == ["ZEN.0", "ZEN.0", "ZEN.0", "ZEN.1", "ZEN.2"]


def test_dead_letters_can_be_listed_and_replayed(
    app_factory: Callable[..., FastAPI], callers_for: Callable[[TestClient], Any], receiver: Any,
    store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    with TestClient(app_factory(webhook_max_attempts=2)) as client:
        callers = callers_for(client)
        _, secret = subscribe(client, callers, receiver.url)
        partner = callers.last_headers
        receiver.statuses = [500] * 4
        store.add(actual(make_alert))
        store.add(actual(make_alert, sequence=1))
        assert wait_until(lambda: len(receiver.attempts) == 4, 10)
        assert wait_until(lambda: client.get("/v1/partner/webhook/dead-letters", headers=partner).json()["count"] == 2,
                          5)
        dead = client.get("/v1/partner/webhook/dead-letters", headers=partner).json()["data"]
        assert {(d["event_id"], d["attempts"], d["last_error"]) for d in dead} == {
            ("ZEN.0", 2, "HTTP 500"), ("ZEN.1", 2, "HTTP 500")}
        assert receiver.requests == []
        replayed = client.post("/v1/partner/webhook/dead-letters/replay", headers=partner,
                               json={"event_ids": ["ZEN.1"]})
        assert replayed.json() == {"replayed": 1}
        assert wait_until(lambda: len(receiver.requests) == 1, 10)
        assert client.post("/v1/partner/webhook/dead-letters/replay", headers=partner, json={}).json() == {
            "replayed": 1}
        assert wait_until(lambda: len(receiver.requests) == 2, 10)
        ids = [h["webhook-id"] for h, _ in receiver.requests]
        assert ids == ["ZEN.1", "ZEN.0"]  # replayed under their original ids
        for headers, body in receiver.requests:
            Webhook(secret).verify(body, headers)
        assert client.get("/v1/partner/webhook/dead-letters", headers=partner).json()["count"] == 0


def test_delivery_survives_a_restart_and_nothing_is_sent_twice(
    db_url: str, tmp_path: Path, make_settings: Callable[..., Any], callers_for: Callable[[TestClient], Any],
    make_receiver: Callable[[], Any], make_alert: MakeAlert, admin: dict[str, str]
) -> None:
    settings = Settings(home=tmp_path, database_url=db_url)
    receiver = make_receiver()
    receiver.statuses = [500] * 1000  # the partner is down
    with TestClient(create_app(settings, start_consumer=False,
                               api_settings=make_settings(webhook_backoff_s=0.05))) as client:
        callers = callers_for(client)
        _, secret = subscribe(client, callers, receiver.url)
        client.app.state.store.add(actual(make_alert))  # type: ignore[attr-defined]
        client.app.state.store.add(actual(make_alert, sequence=1))  # type: ignore[attr-defined]
        assert wait_until(lambda: len(receiver.attempts) >= 2, 10)
    # The API is down; the partner comes back.
    attempts_while_down = len(receiver.attempts)
    receiver.statuses = []
    assert receiver.requests == []
    with TestClient(create_app(settings, start_consumer=False, api_settings=make_settings())) as client:
        assert wait_until(lambda: len(receiver.requests) == 2, 10)
    assert [h["webhook-id"] for h, _ in receiver.requests] == ["ZEN.0", "ZEN.1"]
    assert all(h["webhook-id"] == "ZEN.0" for h, _ in receiver.attempts[:attempts_while_down])
    for headers, body in receiver.requests:
        Webhook(secret).verify(body, headers)
    # Another restart sends nothing again.
    with TestClient(create_app(settings, start_consumer=False, api_settings=make_settings())) as client:
        health = client.get("/v1/health", headers=admin).json()["webhooks"]
        assert (health["pending"], health["delivered"]) == (0, 2)
        assert not wait_until(lambda: len(receiver.requests) > 2, 0.5)


def test_a_crash_after_sending_resends_under_the_same_id_once_the_lease_runs_out(
    db_url: str, make_alert: MakeAlert
) -> None:
    database = Database(db_url)
    store = SqlAlertStore(database=database)
    from alert_api.accounts import AccountStore

    accounts = AccountStore(database)
    partner, _ = accounts.create_partner("nav", ["alerts:read", "webhooks:receive"])
    accounts.set_webhook(partner.partner_id, "https://nav.example/hooks", None)
    store.add(actual(make_alert))
    now = [dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)]  # the worker's own clock, after publication
    sent: list[str] = []

    def send(url: str, body: bytes, headers: dict[str, str]) -> int:
        sent.append(headers["webhook-id"])
        return 204

    def power_cut(*args: Any) -> None:
        raise RuntimeError("power cut before the result was recorded")

    crashing = DeliveryWorker(database, RetryPolicy(), lambda: now[0], timeout_s=10, allow_private=True,
                              sender=send)
    crashing._record_many = power_cut  # type: ignore[method-assign]
    assert crashing.run_once() == 1
    assert crashing.run_once() == 0  # leased: not sent again yet
    now[0] += dt.timedelta(seconds=16)  # the lease (timeout + 5 s) has run out
    delivered: list[str] = []
    worker = DeliveryWorker(database, RetryPolicy(), lambda: now[0], allow_private=True,
                            sender=lambda u, b, h: delivered.append(h["webhook-id"]) or 204)
    assert worker.run_once() == 1
    assert (sent, delivered) == (["ZEN.0"], ["ZEN.0"])
    assert worker.run_once() == 0
    store.close()


def test_unreachable_partner_backs_off_exponentially(db_url: str, make_alert: MakeAlert) -> None:
    database = Database(db_url)
    store = SqlAlertStore(database=database)
    from alert_api.accounts import AccountStore

    accounts = AccountStore(database)
    partner, _ = accounts.create_partner("nav", ["alerts:read", "webhooks:receive"])
    accounts.set_webhook(partner.partner_id, "https://nav.example/hooks", None)
    store.add(actual(make_alert))
    start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)  # the worker's own clock
    now = [start]
    attempts: list[dt.datetime] = []

    def refuse(url: str, body: bytes, headers: dict[str, str]) -> int:
        attempts.append(now[0])
        return 502

    policy = RetryPolicy(max_attempts=5, base_s=10, max_delay_s=1000, jitter=0)
    worker = DeliveryWorker(database, policy, lambda: now[0], allow_private=True, sender=refuse)
    while now[0] < start + dt.timedelta(seconds=200):  # the four delays add up to 150 s
        worker.run_once()
        now[0] += dt.timedelta(seconds=1)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert len(attempts) == 5 and gaps == [10.0, 20.0, 40.0, 80.0]
    assert worker.run_once() == 0  # dead
    store.close()


def test_backoff_has_jitter_within_bounds() -> None:
    policy = RetryPolicy(base_s=2, max_delay_s=60, jitter=0.5)
    rng = random.Random(7)
    delays = [policy.delay(3, rng) for _ in range(200)]
    assert all(4.0 <= d <= 8.0 for d in delays) and len({round(d, 3) for d in delays}) > 100
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_officer_actions_are_delivered_like_pipeline_messages(
    api: TestClient, callers: Any, receiver: Any, store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    _, secret = subscribe(api, callers, receiver.url)
    store.add(actual(make_alert, level=AlertLevel.DANGER))
    officer = callers.officer("tanaka")
    assert api.post("/v1/officer/alerts/ZEN/cancel", headers=officer, json={"note": "false alarm"}).status_code == 200
    assert wait_until(lambda: len(receiver.requests) == 2, 10)
    cancel = Webhook(secret).verify(receiver.requests[1][1], receiver.requests[1][0])
    data = cancel["data"]
    assert (cancel["type"], data["msg_type"], data["source"], data["references"]) == (
        "alert.cancelled", "Cancel", "duty_officer", ["ZEN.0"])
    assert "tanaka" not in receiver.requests[1][1].decode()  # names stay in the audit log


def test_bbox_subscription_and_unsubscribe(
    api: TestClient, callers: Any, receiver: Any, store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    _partner_id, headers = callers.partner("alerts:read", "webhooks:receive")
    response = api.put("/v1/partner/webhook", headers=headers,
                       json={"url": receiver.url, "bbox": [139.25, 35.6, 139.3, 35.65]})
    assert response.json()["bbox"] == [139.25, 35.6, 139.3, 35.65]
    store.add(actual(make_alert))  # the Zenpukuji, outside the box
    store.add(actual(make_alert, "TAKAO", area_id="Z-TAKAO-7",
                     polygon=((139.25, 35.62), (139.26, 35.62), (139.26, 35.63), (139.25, 35.62))))
    assert wait_until(lambda: len(receiver.requests) == 1, 10)
    assert receiver.bodies()[0]["data"]["alert_id"] == "TAKAO"
    assert api.delete("/v1/partner/webhook", headers=headers).status_code == 204
    store.add(actual(make_alert, "TAKAO", sequence=1, area_id="Z-TAKAO-7",
                     polygon=((139.25, 35.62), (139.26, 35.62), (139.26, 35.63), (139.25, 35.62))))
    assert not wait_until(lambda: len(receiver.requests) > 1, 0.5)
    assert api.get("/v1/partner/webhook", headers=headers).json()["url"] is None


def test_subscription_rules(api: TestClient, callers: Any, receiver: Any) -> None:
    _, reader = callers.partner("alerts:read")
    assert api.put("/v1/partner/webhook", headers=reader, json={"url": receiver.url}).status_code == 403
    _, hooks = callers.partner("alerts:read", "webhooks:receive")
    for body in ({"url": "ftp://nav.example/hooks"}, {"url": "https://user:pw@nav.example/hooks"},
                 {"url": receiver.url, "bbox": [1, 2, 3]}, {"url": receiver.url, "bbox": [3, 2, 1, 4]},
                 {"url": receiver.url, "extra": 1}):
        assert api.put("/v1/partner/webhook", headers=hooks, json=body).status_code == 422, body
    first = api.put("/v1/partner/webhook", headers=hooks, json={"url": receiver.url}).json()["secret"]
    rotated = api.post("/v1/partner/webhook/rotate-secret", headers=hooks).json()["secret"]
    assert rotated != first and rotated.startswith("whsec_")


def test_the_worker_refuses_private_addresses_even_if_stored(db_url: str, make_alert: MakeAlert) -> None:
    database = Database(db_url)
    store = SqlAlertStore(database=database)
    from alert_api.accounts import AccountStore

    accounts = AccountStore(database)
    partner, _ = accounts.create_partner("nav", ["alerts:read", "webhooks:receive"])
    accounts.set_webhook(partner.partner_id, "https://10.0.0.7/hooks", None)
    store.add(actual(make_alert))
    called: list[str] = []
    worker = DeliveryWorker(database, RetryPolicy(max_attempts=1), sender=lambda u, b, h: called.append(u) or 200)
    assert worker.run_once() == 1
    [delivery] = alert_api.webhooks.Outbox(database).deliveries(partner.partner_id)
    assert called == [] and delivery.status == "dead" and delivery.last_error is not None
    assert delivery.last_error == "refused: the webhook host is not a public address"
    store.close()


@pytest.mark.parametrize(
    "url",
    ["http://nav.example/hooks", "https://127.0.0.1/hooks", "https://10.1.2.3/hooks", "https://localhost/hooks",
     "https://[::1]/hooks", "https://169.254.169.254/latest"],
)
def test_webhooks_go_to_public_https_hosts_only_by_default(url: str) -> None:
    def public(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    with pytest.raises(UnsafeUrl):
        check_url(url, allow_insecure=False, resolver=public)
    assert check_url("https://nav.example/hooks", allow_insecure=False, resolver=public)


def test_a_partner_sees_only_its_own_deliveries(
    api: TestClient, callers: Any, make_receiver: Callable[[], Any], store: SqlAlertStore, make_alert: MakeAlert,
    admin: dict[str, str]
) -> None:
    first, second = make_receiver(), make_receiver()
    one_id, _ = subscribe(api, callers, first.url)
    one = callers.last_headers
    two_id, _ = subscribe(api, callers, second.url)
    two = callers.last_headers
    store.add(actual(make_alert))
    assert wait_until(lambda: len(first.requests) == 1 and len(second.requests) == 1, 10)
    mine = api.get("/v1/partner/webhook/deliveries", headers=one).json()["data"]
    assert len(mine) == 1 and api.get("/v1/partner", headers=one).json()["partner_id"] == one_id
    assert api.get(f"/v1/admin/partners/{two_id}/deliveries", headers=one).status_code == 403
    assert api.get(f"/v1/admin/partners/{two_id}/deliveries", headers=admin).json()["count"] == 1
    assert api.post("/v1/partner/webhook/dead-letters/replay", headers=two,
                    json={"event_ids": ["ZEN.0"]}).json() == {"replayed": 0}
