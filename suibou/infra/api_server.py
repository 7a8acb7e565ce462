"""The alert API as a background service: started once, reused, stopped cleanly."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from suibou.infra import processes
from suibou.settings import Settings

#: The duty officer account ``suibou demo`` makes for the console.
DEMO_OFFICER = "duty"


class ApiServerError(RuntimeError):
    """The alert API did not come up; the message names its log."""


def base_url(settings: Settings) -> str:
    return f"http://{settings.api_host}:{settings.api_port}"


def _pid_file(settings: Settings) -> Path:
    return settings.home / "api" / f"api-{settings.api_port}.pid"


def _log_file(settings: Settings) -> Path:
    return settings.home / "logs" / f"api-{settings.api_port}.log"


def health(settings: Settings, timeout_s: float = 2.0) -> dict | None:
    """The API's /healthz document, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"{base_url(settings)}/healthz", timeout=timeout_s) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


_MARKERS = (b"suibou", b"api")


def _running_pid(settings: Settings) -> int | None:
    """The pid of suibou's API started by :func:`ensure_running`, if it is alive."""
    return processes.running_pid(_pid_file(settings), _MARKERS)


def ensure_running(settings: Settings, timeout_s: float = 60.0) -> str:
    """Starts ``suibou api`` in the background unless it already answers.

    Returns:
        The API's base URL.

    Raises:
        ApiServerError: It did not answer within ``timeout_s``.
    """
    if health(settings) is not None:
        return base_url(settings)
    log = _log_file(settings)
    env = processes.settings_env(settings)
    print(f"[suibou] starting the alert API on {base_url(settings)} (log: {log})", file=sys.stderr, flush=True)
    process = processes.start_detached([sys.executable, "-m", "suibou", "api"], log, _pid_file(settings), env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ApiServerError(f"the alert API exited with code {process.returncode}; see {log}")
        if health(settings) is not None:
            return base_url(settings)
        time.sleep(0.3)
    raise ApiServerError(f"the alert API did not answer within {timeout_s:.0f}s; see {log}")


def stop(settings: Settings, timeout_s: float = 15.0) -> None:
    """Stops the background API started by :func:`ensure_running`, if any."""
    processes.stop(_pid_file(settings), _MARKERS, "alert API", timeout_s)


def console_url(settings: Settings) -> str:
    """Where duty officers open the console."""
    return f"{base_url(settings)}/console/"


def demo_officer_file(settings: Settings) -> Path:
    """The demo duty officer's password: ``<SUIBOU_HOME>/api/duty-officer.password`` (mode 0600)."""
    return settings.home / "api" / f"{DEMO_OFFICER}-officer.password"


def _admin_call(settings: Settings, method: str, path: str, body: dict, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"{base_url(settings)}{path}", data=json.dumps(body).encode(), method=method,
        headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def ensure_demo_officer(settings: Settings, admin_headers: dict[str, str]) -> tuple[str, Path]:
    """Makes sure the API has the demo duty officer, whose password is kept in :func:`demo_officer_file`.

    The password is generated on first use. When the account exists but the
    file does not (a new home over an old database), the account gets the new
    password through the admin API.

    Args:
        settings: Where the API listens and where the password file goes.
        admin_headers: ``Authorization`` with the admin key.

    Returns:
        The officer's user name and the password file.

    Raises:
        ApiServerError: The API refused to create or update the account.
    """
    path = demo_officer_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = False
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        password = path.read_text().strip()
    else:
        password = secrets.token_urlsafe(18)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(password + "\n")
        created = True
    status = _admin_call(settings, "POST", "/v1/admin/officers", {
        "username": DEMO_OFFICER, "display_name": "Duty officer (demo)", "password": password, "role": "officer",
    }, admin_headers)
    if status == 409 and created:
        status = _admin_call(settings, "PATCH", f"/v1/admin/officers/{DEMO_OFFICER}", {"password": password},
                             admin_headers)
    if status not in (200, 201, 409):
        raise ApiServerError(f"the alert API refused the demo duty officer (HTTP {status})")
    return DEMO_OFFICER, path
