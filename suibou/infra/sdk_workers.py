"""SDK harness processes for the job's stages (an external worker pool for Prism).

Prism starts one SDK harness per environment of the pipeline and asks the
worker pool named by the environment to start it. This pool starts each as a
process of this interpreter (``python -m suibou.infra.sdk_workers``), so the
stages given environments of their own (``pipelines.harness.spread_stages``)
run on separate cores instead of sharing one interpreter lock.

A pool may start its processes ahead of the job (``warm``): each imports Beam
and suibou's pipeline, says it is ready and waits for its assignment. Prism
fails a job whose harness has not connected a minute after it asked for it;
eight harnesses importing Beam at once on a loaded two-core machine took longer
than that, and a live job restarted on such a machine failed again and again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

#: Messages a harness process logs that are not failures (see ``_is_noise``).
_NOISE = ("apitools not found", "Bundle is not in a finalizable state")


def _is_noise(record: logging.LogRecord) -> bool:
    """Beam warns on import about optional Google Cloud clients suibou never uses;
    and Prism asks for the finalisation of bundles that registered nothing to
    finalise, which the harness logs, with a traceback, as an error Prism then
    ignores (nothing is lost: the next bundle's commit covers its offsets)."""
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text += str(record.exc_info[1])
    return any(phrase in text for phrase in _NOISE)


if __name__ == "__main__":
    # A harness process: its log goes to the terminal of whoever started the job.
    logging.getLogger().addFilter(lambda record: not _is_noise(record))

import grpc  # noqa: E402 (after the filter above)
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc  # noqa: E402
from apache_beam.runners.worker import sdk_worker  # noqa: E402


class _PrefixedShortIds(sdk_worker.ShortIdCache):
    """Metric short ids that no other harness of the job hands out.

    Every harness numbers its metrics' short ids from 1, but Prism (2.77) maps
    short ids to metrics once per job, not per worker: two harness processes
    would give one id to two metrics, and Prism fails the job decoding one
    metric's payload as the other's.
    """

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix

    def get_short_id(self, monitoring_info):
        return self._prefix + super().get_short_id(monitoring_info)

    def get_infos(self, short_ids):
        own = {short_id: short_id[len(self._prefix):] for short_id in short_ids}
        infos = super().get_infos(own.values())
        return {short_id: infos[plain] for short_id, plain in own.items()}


class SdkWorkerPool(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
    """Starts one SDK harness process per worker Prism asks for, from ``warm`` ready ones first."""

    def __init__(self, log_path: Path | None = None, warm: int = 0) -> None:
        self._lock = threading.Lock()
        self._started = 0
        self._processes: dict[str, subprocess.Popen] = {}
        self._log_path = log_path
        self._warm = [self._spawn([sys.executable, "-m", "suibou.infra.sdk_workers", "--await-assignment"])
                      for _ in range(warm)]

    def _spawn(self, command: list[str]) -> subprocess.Popen:
        waiting = "--await-assignment" in command
        log = None
        if self._log_path is not None:
            # The harnesses' own log (bundle errors with their tracebacks, which the
            # runner also reports as the job's error) goes to a file.
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self._log_path, "ab")  # noqa: SIM115 - the child keeps its own copy
        try:
            # A warm process says "ready" on its stdout and takes its assignment on stdin.
            return subprocess.Popen(command, stdin=subprocess.PIPE if waiting else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE if waiting else log, stderr=log)
        finally:
            if log is not None:
                log.close()

    def wait_until_warm(self, timeout_s: float) -> int:
        """Waits until every warm process has imported what a harness needs; returns how many are ready."""
        deadline = time.monotonic() + timeout_s
        ready = 0
        for process in self._warm:
            assert process.stdout is not None
            readable, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if readable and process.stdout.readline().strip() == b"ready":
                ready += 1
        return ready

    def StartWorker(self, request, context):  # noqa: N802 (gRPC name)
        with self._lock:
            self._started += 1
            assignment = {"worker_id": request.worker_id, "control": request.control_endpoint.url,
                          "short_id_prefix": f"w{self._started}-"}
            try:
                while self._warm:
                    process = self._warm.pop(0)
                    if process.poll() is None:
                        assert process.stdin is not None
                        process.stdin.write((json.dumps(assignment) + "\n").encode())
                        process.stdin.close()
                        break
                else:
                    process = self._spawn([sys.executable, "-m", "suibou.infra.sdk_workers",
                                           "--worker-id", assignment["worker_id"], "--control", assignment["control"],
                                           "--short-id-prefix", assignment["short_id_prefix"]])
                self._processes[request.worker_id] = process
            except OSError as error:
                return beam_fn_api_pb2.StartWorkerResponse(error=f"could not start an SDK harness: {error}")
        return beam_fn_api_pb2.StartWorkerResponse()

    def StopWorker(self, request, context):  # noqa: N802 (gRPC name)
        with self._lock:
            process = self._processes.pop(request.worker_id, None)
        if process is not None:
            _stop(process)
        return beam_fn_api_pb2.StopWorkerResponse()

    def stop_all(self) -> None:
        with self._lock:
            processes, self._processes = [*self._processes.values(), *self._warm], {}
            self._warm = []
        _stop(*processes)


def _stop(*processes: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM to every process at once, SIGKILL to those still running ``grace_s`` later."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def sdk_worker_pool(log_path: Path | None = None, warm: int = 0, warm_timeout_s: float = 600.0) -> Iterator[str]:
    """Serves a worker pool on a free local port while the block runs.

    Args:
        log_path: Where the harness processes write their log (default: this
            process's terminal).
        warm: Harness processes to start now and hand out first; the block
            begins once they are ready (or after ``warm_timeout_s``).

    Yields:
        The pool's address, for ``--environment_config``.
    """
    pool = SdkWorkerPool(log_path, warm)
    if warm:
        pool.wait_until_warm(warm_timeout_s)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=1)
        pool.stop_all()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One SDK harness, started by suibou's worker pool.")
    parser.add_argument("--worker-id")
    parser.add_argument("--control", help="the runner's control endpoint")
    parser.add_argument("--short-id-prefix")
    parser.add_argument("--await-assignment", action="store_true",
                        help="import what a harness needs, print 'ready', then read the three above as JSON on stdin")
    args = parser.parse_args(argv)
    if args.await_assignment:
        import pipelines.job  # noqa: F401 - the stages' modules, imported before the job needs them

        print("ready", flush=True)
        line = sys.stdin.readline()
        if not line:
            return  # the pool stopped before it needed this harness
        # Whatever a harness prints goes to its log, not to a pipe nobody reads any more.
        os.dup2(2, 1)
        assignment = json.loads(line)
        args.worker_id, args.control = assignment["worker_id"], assignment["control"]
        args.short_id_prefix = assignment["short_id_prefix"]
    elif not (args.worker_id and args.control and args.short_id_prefix):
        parser.error("--worker-id, --control and --short-id-prefix are needed without --await-assignment")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s sdk-worker %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda record: not _is_noise(record))
    # The job's Kafka clients retry by themselves; a failure that matters fails a bundle.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    sdk_worker.SHORT_ID_CACHE = _PrefixedShortIds(args.short_id_prefix)
    sdk_worker.SdkHarness(args.control, worker_id=args.worker_id).run()


if __name__ == "__main__":
    main()
