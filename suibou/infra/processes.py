"""suibou's background services as processes: started detached, found by pid file, stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from suibou.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """This environment plus ``settings`` as ``SUIBOU_*`` variables, for a service started from it."""
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
    if settings.prism_path:
        env["SUIBOU_PRISM_PATH"] = str(settings.prism_path)
    return env


def running_pid(pid_file: Path, markers: Sequence[bytes]) -> int | None:
    """The pid in ``pid_file``, if that process is alive and its command line holds every marker.

    A stale pid file may name a pid the system has since given to another program.
    """
    try:
        pid = int(pid_file.read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if all(marker in command for marker in markers) else None


def start_detached(command: Sequence[str], log: Path, pid_file: Path, env: Mapping[str, str]) -> subprocess.Popen:
    """Starts ``command`` in a session of its own, its output appended to ``log``, its pid in ``pid_file``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=dict(env), start_new_session=True)
    pid_file.write_text(str(process.pid))
    return process


def stop(pid_file: Path, markers: Sequence[bytes], name: str, timeout_s: float = 15.0) -> bool:
    """SIGTERM to the process of ``pid_file``, SIGKILL after ``timeout_s``; False if none was running."""
    pid = running_pid(pid_file, markers)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # Reap it if this process started it, so a zombie does not look alive.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    print(f"[suibou] {name} stopped", file=sys.stderr, flush=True)
    return True
