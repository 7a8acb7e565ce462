"""Officer logins under attack: throttles, the hash gate, a lockout that cannot be aimed, hash upgrades,
and which client address the API believes."""

from __future__ import annotations

import doctest
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

import alert_api.clientaddr
import alert_api.login_guard
from alert_api.db import officers
from alert_api.login_guard import LoginGuard, LoginLimits
from alert_api.security import check_password, hash_password, legacy_scrypt_hash

from .conftest import ADMIN

PASSWORD = "correct horse battery staple"
ATTACKER = ("198.51.100.7", 40000)
OFFICER_DESK = ("192.0.2.10", 40001)


@pytest.mark.parametrize("module", [alert_api.login_guard, alert_api.clientaddr])
def test_docstring_examples_run(module: Any) -> None:
    assert doctest.testmod(module).failed == 0


def test_guard_rule_per_pair_per_user_per_client_and_global() -> None:
    now = [0.0]
    guard = LoginGuard(LoginLimits(per_client_per_minute=100, pair_failures=3, user_failures=6, user_pacing_s=2,
                                   global_per_minute=1000), lambda: now[0])
    for _ in range(3):
        assert guard.admit("duty", "a") is None
        guard.failed("duty", "a")
    refused = guard.admit("duty", "a")
    assert refused is not None and 299 <= refused.retry_after <= 300
    assert guard.admit("duty", "b") is None  # another address is not locked out
    assert guard.admit("other", "a") is None  # nor another user name from the attacker's address
    # A campaign from many addresses: the user name is paced, not locked.
    for client in ("c", "d", "e"):
        guard.failed("duty", client)
    assert guard.admit("duty", "fresh") is None
    paced = guard.admit("duty", "fresh2")
    assert paced is not None and paced.retry_after == 2
    now[0] += 2
    assert guard.admit("duty", "fresh2") is None
    # An address the officer logged in from before is not paced.
    guard.succeeded("duty", "desk")
    assert guard.admit("duty", "desk") is None and guard.admit("duty", "desk") is None
    # After the window, everything is forgotten.
    now[0] += 301
    assert guard.admit("duty", "a") is None

    by_client = LoginGuard(LoginLimits(per_client_per_minute=3, global_per_minute=1000), lambda: now[0])
    assert [by_client.admit(f"u{i}", "x") is None for i in range(4)] == [True, True, True, False]
    assert by_client.admit("u9", "y") is None
    overall = LoginGuard(LoginLimits(per_client_per_minute=100, global_per_minute=2), lambda: now[0])
    assert [overall.admit("u", f"c{i}") is None for i in range(3)] == [True, True, False]


def test_guard_state_stays_small_under_a_flood_from_many_addresses() -> None:
    now = [0.0]
    guard = LoginGuard(LoginLimits(), lambda: now[0])
    for i in range(4096 * 2):
        now[0] += 0.1
        guard.admit(f"user{i}", f"2001:db8::{i:x}")
        guard.failed(f"user{i}", f"2001:db8::{i:x}")
    assert len(guard._pair_failures._failures) <= 4096 * 2
    now[0] += 1000
    for _ in range(4096):
        guard.admit("x", "y")
    assert len(guard._pair_failures._failures) < 10 and len(guard._buckets._buckets) < 10


@pytest.fixture
def login_app(app_factory: Callable[..., FastAPI]) -> Iterator[tuple[FastAPI, TestClient]]:
    app = app_factory(start_webhooks=False)
    with TestClient(app) as client:
        assert client.post("/v1/admin/officers", headers=ADMIN, json={
            "username": "duty", "display_name": "Duty", "password": PASSWORD}).status_code == 201
        yield app, client


def _login(client: TestClient, password: str = PASSWORD, username: str = "duty", **headers: str) -> Any:
    return client.post("/v1/officer/login", json={"username": username, "password": password}, headers=headers)


def test_an_attacker_cannot_lock_the_officer_out(login_app: tuple[FastAPI, TestClient]) -> None:
    app, _ = login_app
    attacker, desk = TestClient(app, client=ATTACKER), TestClient(app, client=OFFICER_DESK)
    assert [_login(attacker, "wrong password").status_code for _ in range(10)] == [401] * 10
    locked = _login(attacker, PASSWORD)  # even the right password: this address is locked out of "duty"
    assert locked.status_code == 429 and 1 <= int(locked.headers["retry-after"]) <= 300
    assert "this address" in locked.json()["detail"]
    assert _login(desk).status_code == 200


def test_one_address_cannot_flood_logins(login_app: tuple[FastAPI, TestClient], monkeypatch: Any) -> None:
    app, _ = login_app
    # The guard's minute stands still: each attempt hashes a password, and 25 of them may take
    # longer than a minute on a busy machine.
    app.state.login_guard = LoginGuard(app.state.login_guard.limits, lambda: 0.0)
    attacker = TestClient(app, client=ATTACKER)
    hashed = []
    original = app.state.accounts.login
    monkeypatch.setattr(app.state.accounts, "login", lambda *a: hashed.append(a) or original(*a))
    statuses = [_login(attacker, "wrong password", username=f"user{i}").status_code for i in range(25)]
    assert statuses == [401] * 20 + [429] * 5
    assert len(hashed) == 20  # refused attempts are not hashed
    assert _login(TestClient(app, client=OFFICER_DESK)).status_code == 200


def test_a_busy_hash_gate_refuses_at_once_without_hashing(app_factory: Callable[..., FastAPI],
                                                          monkeypatch: Any) -> None:
    app = app_factory(start_webhooks=False, login_hash_concurrency=1, login_hash_queue=0)
    with TestClient(app) as client:
        hashed = []
        monkeypatch.setattr(app.state.accounts, "login", lambda *a: hashed.append(a))
        assert app.state.hash_gate.try_enter()  # another login is hashing
        busy = _login(client, "wrong password")
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1" and not hashed
        app.state.hash_gate.leave()
        assert _login(client, "wrong password").status_code == 401 and len(hashed) == 1


def test_a_global_ceiling_bounds_hashing_from_many_addresses(app_factory: Callable[..., FastAPI]) -> None:
    app = app_factory(start_webhooks=False, login_attempts_per_minute=5)
    with TestClient(app):
        statuses = [_login(TestClient(app, client=(f"203.0.113.{i}", 1000)), "wrong password").status_code
                    for i in range(7)]
    assert statuses == [401] * 5 + [429] * 2


def test_old_scrypt_hashes_are_upgraded_on_login(login_app: tuple[FastAPI, TestClient]) -> None:
    app, client = login_app
    engine = app.state.store.engine
    with engine.begin() as connection:
        connection.execute(officers.update().values(password_hash=legacy_scrypt_hash(PASSWORD)))
    assert _login(client, "wrong password").status_code == 401
    with engine.connect() as connection:
        assert connection.execute(sa.select(officers.c.password_hash)).scalar_one().startswith("scrypt$")
    assert _login(client).status_code == 200
    with engine.connect() as connection:
        upgraded = connection.execute(sa.select(officers.c.password_hash)).scalar_one()
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert check_password(PASSWORD, upgraded) == (True, False)
    assert _login(client).status_code == 200


def test_weaker_argon2_and_forged_scrypt_parameters() -> None:
    import argon2

    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    assert check_password(PASSWORD, weak) == (True, True)
    assert check_password("nope", hash_password(PASSWORD)) == (False, False)
    huge = legacy_scrypt_hash(PASSWORD).replace("scrypt$16384$", "scrypt$1048576$")
    assert check_password(PASSWORD, huge)[0] is False  # never computes a hash a forged row asks for


def test_forwarded_for_is_believed_only_from_trusted_proxies(app_factory: Callable[..., FastAPI]) -> None:
    for trusted, expected in (([], "127.0.0.1"), (["127.0.0.0/8"], "198.51.100.7")):
        app = app_factory(start_webhooks=False, trusted_proxies=trusted)
        with TestClient(app, client=("127.0.0.1", 5000)) as client:
            assert client.post("/v1/admin/officers", headers=ADMIN, json={
                "username": "duty", "display_name": "Duty", "password": PASSWORD}).status_code == 201
            assert _login(client, **{"X-Forwarded-For": "198.51.100.7"}).status_code == 200
            audit = client.get("/v1/admin/audit", headers={**ADMIN, "X-Forwarded-For": "198.51.100.9"},
                               params={"action": "officer.login"}).json()["data"]
            assert audit[-1]["remote"] == expected
            app.state.store.db.truncate_all()
