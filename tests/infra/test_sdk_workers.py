"""The worker pool hands Prism's first workers to harness processes started ahead of the job."""

from __future__ import annotations

import time

from apache_beam.portability.api import beam_fn_api_pb2, endpoints_pb2

from suibou.infra.sdk_workers import SdkWorkerPool


def _request(worker_id: str) -> beam_fn_api_pb2.StartWorkerRequest:
    # Nothing listens on port 9 (discard): the harness fails to connect, which is all this test needs.
    return beam_fn_api_pb2.StartWorkerRequest(
        worker_id=worker_id, control_endpoint=endpoints_pb2.ApiServiceDescriptor(url="localhost:9"))


def test_a_warm_process_takes_the_first_worker_and_later_ones_start_cold(tmp_path):
    pool = SdkWorkerPool(tmp_path / "harness.log", warm=1)
    try:
        assert pool.wait_until_warm(300) == 1
        warm = pool._warm[0]
        assert pool.StartWorker(_request("w-1"), None).error == ""
        assert pool._processes["w-1"] is warm
        assert pool._warm == []
        assert pool.StartWorker(_request("w-2"), None).error == ""
        cold = pool._processes["w-2"]
        assert cold is not warm and "--worker-id" in cold.args
    finally:
        started = time.monotonic()
        pool.stop_all()
    assert time.monotonic() - started < 10
    assert warm.poll() is not None and cold.poll() is not None


def test_warm_processes_nobody_asked_for_are_stopped_with_the_pool(tmp_path):
    pool = SdkWorkerPool(tmp_path / "harness.log", warm=2)
    pool.wait_until_warm(300)
    spare = list(pool._warm)
    pool.stop_all()
    assert all(p.poll() is not None for p in spare)
