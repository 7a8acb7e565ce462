"""The live fusion job as a background service beside the alert API (``suibou infra up --live``).

The job runs as ``suibou pipeline`` (:mod:`suibou.live`), which restarts the
job itself when it fails; this module starts that supervisor detached, finds
it by its pid file, reports it from its status file and stops it with SIGTERM
(a clean stop: the job is cancelled, then its runner and harness processes).
For a machine that must bring it back after a reboot or a crash of the
supervisor itself, run ``suibou pipeline`` under the system's service manager
instead (docs/operations.md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from suibou.infra import processes
from suibou.settings import Settings

_MARKERS = (b"suibou", b"pipeline")


def _pid_file(settings: Settings) -> Path:
    return settings.home / "live" / "pipeline.pid"


def log_file(settings: Settings) -> Path:
    return settings.home / "logs" / "live.log"


def running_pid(settings: Settings) -> int | None:
    return processes.running_pid(_pid_file(settings), _MARKERS)


def ensure_running(settings: Settings, catalogue: str, timeout_s: float = 180.0) -> int:
    """Starts the supervised live job on ``catalogue`` unless it already runs; waits until it reports.

    Returns:
        The supervisor's pid.

    Raises:
        RuntimeError: It exited, or sent no heartbeat within ``timeout_s``.
    """
    from suibou.live import status_file

    pid = running_pid(settings)
    if pid is not None:
        return pid
    log = log_file(settings)
    status_file(settings).unlink(missing_ok=True)
    print(f"[suibou] starting the live fusion job on {catalogue} (log: {log})", file=sys.stderr, flush=True)
    process = processes.start_detached([sys.executable, "-m", "suibou", "pipeline", "--catalogue", catalogue],
                                       log, _pid_file(settings), processes.settings_env(settings))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the live job exited with code {process.returncode}; see {log}")
        if status_file(settings).exists():
            return process.pid
        time.sleep(0.5)
    raise RuntimeError(f"the live job did not report within {timeout_s:.0f}s; see {log}")


def stop(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Stops the supervised live job (SIGTERM; SIGKILL after ``timeout_s``); False if none ran."""
    return processes.stop(_pid_file(settings), _MARKERS, "live fusion job", timeout_s)


def status(settings: Settings) -> str:
    """One line for ``suibou infra status``."""
    from suibou.live import read_status

    pid = running_pid(settings)
    if pid is None:
        return "not running (start it with `suibou infra up --live`)"
    return read_status(settings) or f"starting (pid {pid})"
