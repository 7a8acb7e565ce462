"""The store's files are this user's only; /docs loads nothing from elsewhere."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from alert_api.db import Database


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "new" / "alerts.db"
        Database(f"sqlite:///{fresh}").close()
        assert _mode(fresh.parent) == 0o700 and _mode(fresh) == 0o600
        # A store made before the rule, world-readable, is narrowed on start (the folder it shares is not).
        (tmp_path / "old").mkdir(mode=0o755)
        existing = tmp_path / "old" / "alerts.db"
        Database(f"sqlite:///{existing}").close()
        os.chmod(existing, 0o644)
        database = Database(f"sqlite:///{existing}")
        with database.begin() as connection:
            connection.exec_driver_sql("SELECT 1")
        wal = existing.with_name("alerts.db-wal")
        assert _mode(existing) == 0o600 and (not wal.exists() or _mode(wal) == 0o600)
        database.close()
    finally:
        os.umask(old)


def test_docs_load_nothing_from_another_host(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(start_webhooks=False)) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "swagger-ui" in page.text
        assert not re.search(r"(src|href|url)\s*[=:]\s*['\"]?(https?:)?//", page.text), "an external reference"
        links = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert links and all(link.startswith("/") for link in links)
        for link in links:
            assert client.get(link).status_code == 200, link
        assert client.get("/openapi.json").status_code == 200


def test_webhook_secrets_are_sealed_at_rest_and_served_in_clear(app_factory: Callable[..., FastAPI],
                                                                tmp_path: Path) -> None:
    import sqlalchemy as sa

    from alert_api.secretbox import is_sealed

    from .conftest import ADMIN

    app = app_factory(start_webhooks=False)
    with TestClient(app) as client:
        made = client.post("/v1/admin/partners", headers=ADMIN,
                           json={"name": "nav", "scopes": ["alerts:read", "webhooks:receive"]}).json()
        partner = {"Authorization": f"Bearer {made['api_key']}"}
        shown = client.get("/v1/partner/webhook", headers=partner).json()["secret"]
        assert shown.startswith("whsec_")
        engine = app.state.store.db.engine
        with engine.connect() as connection:
            raw = connection.execute(sa.text("SELECT webhook_secret FROM partners")).scalar_one()
        assert is_sealed(raw) and shown not in raw and len(raw) <= 128
        key = tmp_path / "api" / "secrets.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        # A secret stored in clear by an earlier API is sealed on the next start.
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE partners SET webhook_secret = :s"), {"s": shown})
    with TestClient(app) as client:
        with engine.connect() as connection:
            raw = connection.execute(sa.text("SELECT webhook_secret FROM partners")).scalar_one()
        assert is_sealed(raw)
        assert client.get("/v1/partner/webhook", headers=partner).json()["secret"] == shown


def test_docstring_examples_run() -> None:
    import doctest

    import alert_api.secretbox

    assert doctest.testmod(alert_api.secretbox).failed == 0
