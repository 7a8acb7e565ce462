"""SDK harness processes for the job's stages (an external worker pool for Prism).

Prism starts one SDK harness per environment of the pipeline and asks the
worker pool named by the environment to start it. This pool starts each as a
process of this interpreter (``python -m suibou.infra.sdk_workers``), so the
stages given environments of their own (``pipelines.harness.spread_stages``)
run on separate cores instead of sharing one interpreter lock.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import subprocess
import sys
import threading
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

    def get_short_id(self, monitoring_info):  # type: ignore[no-untyped-def]
        return self._prefix + super().get_short_id(monitoring_info)

    def get_infos(self, short_ids):  # type: ignore[no-untyped-def]
        own = {short_id: short_id[len(self._prefix):] for short_id in short_ids}
        infos = super().get_infos(own.values())
        return {short_id: infos[plain] for short_id, plain in own.items()}


class SdkWorkerPool(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
    """Starts one SDK harness process per worker Prism asks for."""

    def __init__(self, log_path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._started = 0
        self._processes: dict[str, subprocess.Popen] = {}
        self._log_path = log_path

    def StartWorker(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802 (gRPC name)
        with self._lock:
            self._started += 1
            command = [sys.executable, "-m", "suibou.infra.sdk_workers", "--worker-id", request.worker_id,
                       "--control", request.control_endpoint.url, "--short-id-prefix", f"w{self._started}-"]
            try:
                if self._log_path is None:
                    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
                else:
                    # The harnesses' own log (bundle errors with their tracebacks, which
                    # the runner also reports as the job's error) goes to a file.
                    self._log_path.parent.mkdir(parents=True, exist_ok=True)
                    with open(self._log_path, "ab") as log:
                        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                                   stderr=subprocess.STDOUT)
                self._processes[request.worker_id] = process
            except OSError as error:
                return beam_fn_api_pb2.StartWorkerResponse(error=f"could not start an SDK harness: {error}")
        return beam_fn_api_pb2.StartWorkerResponse()

    def StopWorker(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802 (gRPC name)
        with self._lock:
            process = self._processes.pop(request.worker_id, None)
        if process is not None:
            _stop(process)
        return beam_fn_api_pb2.StopWorkerResponse()

    def stop_all(self) -> None:
        with self._lock:
            processes, self._processes = list(self._processes.values()), {}
        for process in processes:
            _stop(process)


def _stop(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def sdk_worker_pool(log_path: Path | None = None) -> Iterator[str]:
    """Serves a worker pool on a free local port while the block runs.

    Args:
        log_path: Where the harness processes write their log (default: this
            process's terminal).

    Yields:
        The pool's address, for ``--environment_config``.
    """
    pool = SdkWorkerPool(log_path)
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
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--control", required=True, help="the runner's control endpoint")
    parser.add_argument("--short-id-prefix", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s sdk-worker %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda record: not _is_noise(record))
    # The job's Kafka clients retry by themselves; a failure that matters fails a bundle.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    sdk_worker.SHORT_ID_CACHE = _PrefixedShortIds(args.short_id_prefix)
    sdk_worker.SdkHarness(args.control, worker_id=args.worker_id).run()


if __name__ == "__main__":
    main()
