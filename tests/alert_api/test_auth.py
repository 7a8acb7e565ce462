"""Keys, scopes, rate limits, request limits, the admin API and the audit log."""

from __future__ import annotations

import doctest
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

import alert_api.limits
import alert_api.security
from alert_api.db import api_keys, officers
from alert_api.store import SqlAlertStore
from suibou.contracts import AlertEvent

MakeAlert = Callable[..., AlertEvent]

READS = ["/v1/alerts", "/v1/messages", "/v1/hazard-areas", "/v1/cifs", "/v1/alerts/X/cap", "/v1/alerts/X/geojson"]


@pytest.mark.parametrize("module", [alert_api.security, alert_api.limits])
def test_docstring_examples_run(module: Any) -> None:
    assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize("token", [None, "", "sbk_0123456789abcdef_guess", "sbs_0123456789abcdef_guess", "admin"])
def test_reads_need_a_valid_token(api: TestClient, path: str, token: str | None) -> None:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = api.get(path, headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_scopes_are_enforced(api: TestClient, callers: Any) -> None:
    _, hooks_only = callers.partner("webhooks:receive")
    for path in ("/v1/alerts", "/v1/messages", "/v1/hazard-areas", "/v1/cifs"):
        assert api.get(path, headers=hooks_only).status_code == 403, path
    route = {"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.7, 35.7]]}}
    assert api.post("/v1/route-check", headers=hooks_only, json=route).status_code == 403
    assert api.get("/v1/partner", headers=hooks_only).status_code == 200
    _, reader = callers.partner("alerts:read")
    assert api.get("/v1/partner/webhook", headers=reader).status_code == 403
    assert api.get("/v1/admin/partners", headers=reader).status_code == 403
    officer = callers.officer()
    assert api.get("/v1/admin/partners", headers=officer).status_code == 403
    assert api.get("/v1/partner", headers=officer).status_code == 403
    assert api.post("/v1/officer/alerts/X/cancel", headers=reader, json={}).status_code == 403


def test_keys_are_stored_hashed_shown_once_and_revocable(
    api: TestClient, callers: Any, admin: dict[str, str], store: SqlAlertStore
) -> None:
    partner_id, headers = callers.partner("alerts:read")
    key = headers["Authorization"].removeprefix("Bearer ")
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(api_keys)).mappings().all()
        hashes = [r["password_hash"] for r in connection.execute(sa.select(officers)).mappings()]
    assert len(rows) == 1 and key not in str(dict(rows[0]))
    assert rows[0]["key_hash"] == alert_api.security.hash_token(key)
    assert hashes == []
    listed = api.get(f"/v1/admin/partners/{partner_id}", headers=admin).text
    assert key not in listed and key not in api.get("/v1/partner", headers=headers).text
    second = api.post(f"/v1/admin/partners/{partner_id}/keys", headers=admin).json()
    both = api.get(f"/v1/admin/partners/{partner_id}/keys", headers=admin).json()
    assert both["count"] == 2 and second["api_key"] not in str(both)
    key_id = alert_api.security.split_token(key)[1]  # type: ignore[index]
    assert api.delete(f"/v1/admin/partners/{partner_id}/keys/{key_id}", headers=admin).status_code == 204
    assert api.get("/v1/alerts", headers=headers).status_code == 401
    assert api.get("/v1/alerts", headers={"Authorization": f"Bearer {second['api_key']}"}).status_code == 200
    assert api.delete(f"/v1/admin/partners/{partner_id}/keys/{key_id}", headers=admin).status_code == 404
    # A key whose secret part is wrong is refused although its id exists.
    forged = f"sbk_{second['key_id']}_{'A' * 43}"
    assert api.get("/v1/alerts", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_disabled_partners_are_refused_and_scopes_can_change(api: TestClient, callers: Any,
                                                             admin: dict[str, str]) -> None:
    partner_id, headers = callers.partner("alerts:read")
    assert api.get("/v1/alerts", params={"exercise": "true"}, headers=headers).status_code == 403
    changed = api.patch(f"/v1/admin/partners/{partner_id}", headers=admin,
                        json={"scopes": ["alerts:read", "exercises"]})
    assert changed.json()["scopes"] == ["alerts:read", "exercises"]
    assert api.get("/v1/alerts", params={"exercise": "true"}, headers=headers).status_code == 200
    assert api.patch(f"/v1/admin/partners/{partner_id}", headers=admin, json={"disabled": True}).status_code == 200
    assert api.get("/v1/alerts", headers=headers).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"name": "nav", "scopes": ["alerts:write"]},
        {"name": "", "scopes": ["alerts:read"]},
        {"name": "nav", "scopes": ["alerts:read"], "rate_limit_per_minute": 0},
        {"name": "nav", "scopes": ["alerts:read"], "secret": "x"},
        {"scopes": ["alerts:read"]},
    ],
)
def test_admin_refuses_bad_partners(api: TestClient, admin: dict[str, str], body: dict[str, Any]) -> None:
    assert api.post("/v1/admin/partners", headers=admin, json=body).status_code == 422


def test_admin_refuses_bad_officers_and_unknown_ids(api: TestClient, admin: dict[str, str], callers: Any) -> None:
    weak = {"username": "kato", "display_name": "Kato", "password": "short"}
    assert api.post("/v1/admin/officers", headers=admin, json=weak).status_code == 422
    caps = {"username": "Kato", "display_name": "Kato", "password": "x" * 12}
    assert api.post("/v1/admin/officers", headers=admin, json=caps).status_code == 422
    callers.officer("kato")
    again = {"username": "kato", "display_name": "Kato", "password": "y" * 12}
    assert api.post("/v1/admin/officers", headers=admin, json=again).status_code == 409
    assert api.get("/v1/admin/partners/p_000000000000", headers=admin).status_code == 404
    assert api.get("/v1/admin/partners/../../etc", headers=admin).status_code in (404, 422)
    assert api.patch("/v1/admin/partners/p_000000000000", headers=admin, json={"name": "x"}).status_code == 404
    assert api.patch("/v1/admin/officers/nobody", headers=admin, json={"role": "observer"}).status_code == 404
    with store_engine_check(api) as hashes:
        assert hashes and all(h.startswith("$argon2id$v=19$m=19456,t=2,p=1$") for h in hashes)


class store_engine_check:  # noqa: N801 - a tiny context manager for the test above
    def __init__(self, api: TestClient) -> None:
        self.api = api

    def __enter__(self) -> list[str]:
        store = self.api.app.state.store  # type: ignore[attr-defined]
        with store.engine.connect() as connection:
            return [r[0] for r in connection.execute(sa.select(officers.c.password_hash))]

    def __exit__(self, *args: object) -> None:
        return None


def test_rate_limit_answers_429_with_retry_after(api: TestClient, callers: Any) -> None:
    _, headers = callers.partner("alerts:read", rate=3)
    statuses = [api.get("/v1/alerts", headers=headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = api.get("/v1/alerts", headers=headers)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    _, other = callers.partner("alerts:read", rate=3)
    assert api.get("/v1/alerts", headers=other).status_code == 200  # limits are per partner


def test_audit_log_records_admin_and_partner_actions(api: TestClient, callers: Any, admin: dict[str, str],
                                                     receiver: Any) -> None:
    partner_id, headers = callers.partner("alerts:read", "webhooks:receive")
    api.put("/v1/partner/webhook", headers=headers, json={"url": receiver.url})
    api.post("/v1/partner/webhook/dead-letters/replay", headers=headers, json={})
    entries = api.get("/v1/admin/audit", headers=admin).json()["data"]
    assert [(e["actor_kind"], e["action"], e["target"]) for e in entries] == [
        ("admin", "partner.create", partner_id), ("partner", "webhook.subscribe", partner_id),
        ("partner", "webhook.replay", partner_id)]
    assert entries[0]["remote"] == "testclient" and entries[1]["detail"]["url"] == receiver.url
    after = api.get("/v1/admin/audit", params={"after_id": entries[1]["id"]}, headers=admin).json()["data"]
    assert [e["action"] for e in after] == ["webhook.replay"]
    assert api.get("/v1/admin/audit", params={"limit": 0}, headers=admin).status_code == 422


# --------------------------------------------------------------------------- request limits


def test_oversized_bodies_are_refused_before_parsing(app_factory: Callable[..., FastAPI],
                                                     serve: Callable[[FastAPI], Any], admin: dict[str, str]) -> None:
    with TestClient(app_factory(max_body_bytes=2048)) as client:
        big = {"route": {"type": "LineString", "coordinates": [[139.6, 35.7]] * 500}}
        response = client.post("/v1/route-check", headers=admin, json=big)
        assert response.status_code == 413 and "2048" in response.json()["detail"]
        small = {"route": {"type": "LineString", "coordinates": [[139.6, 35.7], [139.7, 35.7]]}}
        assert client.post("/v1/route-check", headers=admin, json=small).status_code == 200
    with serve(app_factory(max_body_bytes=2048)) as url:
        def chunks() -> Any:
            yield b'{"route": {"type": "LineString", "coordinates": ['
            for _ in range(300):
                yield b"[139.6, 35.7],"
            yield b"[139.6, 35.7]]}}"

        chunked = httpx.post(f"{url}/v1/route-check", headers={**admin, "content-type": "application/json"},
                             content=chunks(), timeout=10)
        assert chunked.status_code == 413
        # A declared length over the limit is answered before any of the body is read.
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /v1/route-check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + f"Authorization: {admin['Authorization']}\r\n".encode()
                         + b"Content-Length: 999999999\r\n\r\n{}")
            assert sock.recv(100).startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/admin/partners", b"{not json"),
        ("post", "/v1/officer/login", b'["a", "b"]'),
        ("put", "/v1/partner/webhook", b""),
        ("post", "/v1/officer/alerts", b'{"area_id": 5}'),
    ],
)
def test_malformed_bodies_are_422(api: TestClient, callers: Any, admin: dict[str, str], method: str, path: str,
                                  body: bytes) -> None:
    headers = dict(admin)
    if path.startswith("/v1/partner"):
        headers = callers.partner("alerts:read", "webhooks:receive")[1]
    if path == "/v1/officer/alerts":
        headers = callers.officer()
    response = getattr(api, method)(path, headers={**headers, "content-type": "application/json"}, content=body)
    assert response.status_code == 422, response.text


def test_admin_lists_partners_and_officers(api: TestClient, callers: Any, admin: dict[str, str]) -> None:
    first, _ = callers.partner("alerts:read", name="Navi A")
    second, _ = callers.partner("alerts:read", "webhooks:receive", name="Navi B")
    callers.officer("tanaka")
    callers.officer("ito", role="observer")
    partners = api.get("/v1/admin/partners", headers=admin).json()
    assert partners["count"] == 2 and {p["partner_id"] for p in partners["data"]} == {first, second}
    assert all("api_key" not in p and "webhook_secret" not in p for p in partners["data"])
    officers = api.get("/v1/admin/officers", headers=admin).json()
    assert [(o["username"], o["role"]) for o in officers["data"]] == [("ito", "observer"), ("tanaka", "officer")]
    assert all("password" not in str(o) for o in officers["data"])
