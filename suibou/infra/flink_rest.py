"""What a running Flink job says about itself through the JobManager's REST API.

Beam's job service reports a job's state, not how far its data has got. A
checkpointed drill on Flink never ends by itself (the runner keeps its sources
alive for checkpoints), so the drill reads here when its data is through:
every operator's input watermark at the end of time, then one more completed
checkpoint, which finishes every bundle and so flushes every writer
(``--finish_bundle_before_checkpointing``).

The REST address is ``settings.flink_master`` when jobs go to a cluster, else
the embedded mini-cluster's (:func:`embedded_rest_port`).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from suibou.settings import Settings

#: The watermark Beam gives a finished input (``GlobalWindow.maxTimestamp()``, in ms):
#: an operator whose every input is at or past it has seen the end of its data.
END_OF_TIME_MS = 9_223_371_950_454_775


def embedded_rest_port(settings: Settings) -> int:
    """The REST port of the job server's embedded mini-cluster: two above its job port."""
    return settings.flink_job_port + 2


def rest_address(settings: Settings) -> str:
    return settings.flink_master or f"127.0.0.1:{embedded_rest_port(settings)}"


def get(address: str, path: str, timeout_s: float = 3.0) -> Any:
    """``GET http://address/path`` as JSON, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=timeout_s) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def find_job(address: str, name: str | None = None, running: bool = True) -> str | None:
    """The newest job named ``name`` (any, when None), only among those not over yet if ``running``."""
    jobs = (get(address, "/jobs/overview") or {}).get("jobs") or []
    live = [j for j in jobs if (name is None or j.get("name") == name)
            and not (running and j.get("state") in ("FINISHED", "CANCELED", "FAILED"))]
    if not live:
        return None
    return str(max(live, key=lambda j: j.get("start-time", 0))["jid"])


def checkpoints(address: str, job: str) -> dict | None:
    """``{"triggered", "completed", "failed", "restored", "latest_completed", "restored_from"}`` of ``job``."""
    stats = get(address, f"/jobs/{urllib.parse.quote(job)}/checkpoints")
    if stats is None or "counts" not in stats:
        return None
    counts, latest = stats["counts"], stats.get("latest") or {}
    return {"triggered": counts.get("total", 0), "completed": counts.get("completed", 0),
            "failed": counts.get("failed", 0), "restored": counts.get("restored", 0),
            "latest_completed": (latest.get("completed") or {}).get("id"),
            "restored_from": (latest.get("restored") or {}).get("id")}


def at_end_of_data(address: str, job: str) -> bool:
    """Whether every operator with inputs has every subtask's input watermark at the end of time."""
    detail = get(address, f"/jobs/{urllib.parse.quote(job)}")
    vertices = (detail or {}).get("vertices") or []
    if not vertices:
        return False
    for vertex in vertices:
        if str(vertex.get("name", "")).startswith("Source:"):
            continue
        marks = get(address, f"/jobs/{urllib.parse.quote(job)}/vertices/{vertex['id']}/watermarks")
        if not marks:
            return False
        for mark in marks:
            try:
                if int(mark["value"]) < END_OF_TIME_MS:
                    return False
            except (KeyError, TypeError, ValueError):
                return False
    return True


def cancel(address: str, job: str, timeout_s: float = 60.0) -> bool:
    """Cancels ``job`` through the JobManager and waits until it is over; whether it is.

    Beam's ``cancel()`` of a job on the embedded cluster has been seen to
    report CANCELLED while the Flink job kept running; asking Flink itself
    ends it for certain, and frees its slots for the next job.
    """
    request = urllib.request.Request(f"http://{address}/jobs/{urllib.parse.quote(job)}?mode=cancel", method="PATCH")
    try:
        with urllib.request.urlopen(request, timeout=5):
            pass
    except (urllib.error.URLError, OSError):
        pass  # already over, or the cluster is gone: the state below says which
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        detail = get(address, f"/jobs/{urllib.parse.quote(job)}")
        if detail is None or detail.get("state") in ("CANCELED", "FINISHED", "FAILED"):
            return True
        time.sleep(0.5)
    return False


def stop_job(settings: Settings, result: Any, job_name: str, timeout_s: float = 60.0) -> None:
    """Cancels a Beam job on Flink through Beam's job service and, to be sure, the JobManager."""
    result.cancel()
    address = rest_address(settings)
    if (job := find_job(address, job_name)) is not None:
        cancel(address, job, timeout_s)
