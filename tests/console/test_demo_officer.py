"""``suibou demo`` gives the console a duty officer whose password it keeps under ``<SUIBOU_HOME>/api``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from suibou.infra import api_server
from suibou.settings import Settings


def login(base_url: str, username: str, password: str) -> int:
    response = httpx.post(f"{base_url}/v1/officer/login", json={"username": username, "password": password})
    return response.status_code


def test_the_demo_officer_is_made_once_and_can_log_in(console_server: Any, admin: dict[str, str],
                                                      tmp_path: Path) -> None:
    port = int(console_server.base_url.rsplit(":", 1)[1])
    settings = Settings(home=tmp_path / "home", api_port=port)
    username, path = api_server.ensure_demo_officer(settings, admin)
    assert path == settings.home / "api" / "duty-officer.password" and path.stat().st_mode & 0o777 == 0o600
    password = path.read_text().strip()
    assert len(password) >= 20 and login(console_server.base_url, username, password) == 200
    assert api_server.ensure_demo_officer(settings, admin) == (username, path)  # again: nothing changes
    assert path.read_text().strip() == password
    # A new home over the same database: the account takes the new home's password.
    other = Settings(home=tmp_path / "other", api_port=port)
    _, new_path = api_server.ensure_demo_officer(other, admin)
    assert login(console_server.base_url, username, new_path.read_text().strip()) == 200
    assert login(console_server.base_url, username, password) == 401
    assert api_server.console_url(settings) == f"{console_server.base_url}/console/"
