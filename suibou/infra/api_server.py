"""The alert API as a background service: started once, reused, stopped cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from suibou.settings import Settings


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


def _running_pid(settings: Settings) -> int | None:
    """The pid in the pid file, if that process is alive and is suibou's API."""
    try:
        pid = int(_pid_file(settings).read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    # A stale pid file may name a pid the system has since given to another program.
    return pid if b"suibou" in command and b"api" in command else None


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
    log.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(settings).parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SUIBOU_HOME": str(settings.home),
        "SUIBOU_TOPIC_PREFIX": settings.topic_prefix,
        "SUIBOU_API_HOST": settings.api_host,
        "SUIBOU_API_PORT": str(settings.api_port),
        "SUIBOU_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
    }
    if settings.database_url:
        env["SUIBOU_DATABASE_URL"] = settings.database_url
    print(f"[suibou] starting the alert API on {base_url(settings)} (log: {log})", file=sys.stderr, flush=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "suibou", "api"], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    _pid_file(settings).write_text(str(process.pid))
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
    pid = _running_pid(settings)
    if pid is None:
        _pid_file(settings).unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            # Reap it if this process started it, so a zombie does not look alive.
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
    _pid_file(settings).unlink(missing_ok=True)
    print("[suibou] alert API stopped", file=sys.stderr, flush=True)
