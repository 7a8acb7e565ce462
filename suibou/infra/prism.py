"""The Prism runner that executes suibou's Beam pipelines locally.

Prism is Apache Beam's portable local runner, written in Go. Beam's Python SDK
would otherwise download a prebuilt Prism release archive on first use; suibou
instead builds it from the Go module proxy at exactly the SDK's version, once,
into ``<home>/bin/prism-<version>``. A binary named after another version is
ignored, so upgrading apache-beam rebuilds Prism on the next run.

Pipelines get the matching options from :func:`prism_pipeline_options`, which
point Beam at that binary so that it neither downloads nor builds anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from suibou.settings import Settings

PRISM_PACKAGE = "github.com/apache/beam/sdks/v2/go/cmd/prism"
"""Go package of the Prism runner's command."""

_HEARTBEAT_S = 30.0

_GO_HINT = (
    "the Prism runner is built from source with Go: install Go 1.21 or newer (the "
    "Debian package `golang` if its version is recent enough - Debian 12's is 1.19 - "
    "otherwise the release archive from go.dev/dl) and put `go` on PATH, or point "
    "SUIBOU_PRISM_PATH at a Prism binary."
)


class PrismBuildError(RuntimeError):
    """The Prism runner binary is missing and could not be built."""


def _say(message: str) -> None:
    """Prints a progress line on stderr, keeping stdout for command output."""
    print(f"[suibou] {message}", file=sys.stderr, flush=True)


def beam_version() -> str:
    """Returns the installed Beam Python SDK's version, e.g. ``"2.77.0"``."""
    from apache_beam.version import __version__

    return __version__


def prism_binary_path(settings: Settings) -> Path:
    """Where the Prism binary matching the installed Beam SDK is (or will be) kept."""
    return settings.home / "bin" / f"prism-{beam_version()}"


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Serialises builds, so parallel first runs don't all compile Prism."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise PrismBuildError(f"`go` was not found on PATH; {_GO_HINT}")
    result = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    # Go 1.21+ fetches the newer toolchain Beam's go.mod asks for by itself
    # (GOTOOLCHAIN=auto); older releases just fail with a confusing error.
    match = re.match(r"go1\.(\d+)", result.stdout.strip())
    if result.returncode != 0 or (match and int(match.group(1)) < 21):
        found = result.stdout.strip() or "an old release"
        raise PrismBuildError(f"{go} is {found}; {_GO_HINT}")
    return go


def go_module_version(version: str) -> str:
    """Maps a Beam Python version to the Go module version of the same release.

    Args:
        version: E.g. ``"2.77.0"`` or a release candidate ``"2.77.0rc2"``.

    Returns:
        E.g. ``"v2.77.0"`` or ``"v2.77.0-RC2"`` (Beam's Go release tags).

    Raises:
        PrismBuildError: For development versions, which have no release tag.
    """
    match = re.fullmatch(r"(\d+\.\d+\.\d+)(?:rc(\d+))?", version)
    if match is None:
        raise PrismBuildError(
            f"apache-beam {version} is not a release, so there is no matching Prism on the "
            "Go module proxy; point SUIBOU_PRISM_PATH at a Prism binary built from that source."
        )
    release, candidate = match.groups()
    return f"v{release}-RC{candidate}" if candidate else f"v{release}"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _build(settings: Settings, version: str, target: Path) -> None:
    go = _go()
    bin_dir = target.parent
    log_path = settings.home / "logs" / "prism-build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # `go install` names the binary after the package; building into a scratch
    # GOBIN and renaming keeps a half-written binary from ever being used.
    staging = bin_dir / ".prism-build"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    env = {
        **os.environ,
        "GOBIN": str(staging),
        # A pure-Go static binary needs no C compiler and runs on any Linux.
        "CGO_ENABLED": "0",
    }
    command = [go, "install", "-v", f"{PRISM_PACKAGE}@{go_module_version(version)}"]

    _say(
        f"building Prism runner v{version} from the Go module proxy "
        f"(first run only, a few minutes; log: {log_path})..."
    )
    started = time.monotonic()
    packages = 0
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        process = subprocess.Popen(
            command,
            env=env,
            cwd=staging,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        done = threading.Event()

        def heartbeat() -> None:
            # `go install` is silent for long stretches while it downloads and
            # compiles; a periodic line shows the build is alive.
            while not done.wait(_HEARTBEAT_S):
                _say(
                    f"  still building Prism: {packages} packages compiled, "
                    f"{time.monotonic() - started:.0f}s elapsed..."
                )

        ticker = threading.Thread(target=heartbeat, daemon=True)
        ticker.start()
        try:
            for line in process.stdout:
                log.write(line)
                log.flush()
                # With -v, go prints one package path per compiled package.
                if not line.startswith(("go: ", "#")):
                    packages += 1
            returncode = process.wait()
        finally:
            done.set()
            if process.poll() is None:
                process.kill()
                process.wait()

    built = staging / "prism"
    if returncode != 0 or not _is_executable(built):
        raise PrismBuildError(
            f"building Prism v{version} failed (exit code {returncode}); see {log_path}:\n"
            f"{_tail(log_path)}"
        )
    built.replace(target)
    shutil.rmtree(staging, ignore_errors=True)
    # Binaries of other Beam versions are never used again.
    for stale in bin_dir.glob("prism-*"):
        if stale != target and stale.is_file():
            stale.unlink(missing_ok=True)
    _say(f"Prism v{version} built in {time.monotonic() - started:.0f}s: {target}")


def ensure_prism(settings: Settings) -> Path:
    """Returns a Prism binary matching the installed Beam SDK, building it if needed.

    ``settings.prism_path`` (``SUIBOU_PRISM_PATH``) is used as given. Otherwise
    the binary is ``<home>/bin/prism-<beam version>``, built on first use with
    ``go install`` (a few minutes) and reused afterwards.

    Args:
        settings: Home folder, or the Prism override.

    Returns:
        Path of the Prism executable.

    Raises:
        PrismBuildError: The override is not an executable file, Go is missing,
            or the build failed (the message names the build log).
    """
    if settings.prism_path is not None:
        path = Path(settings.prism_path).expanduser().resolve()
        if not _is_executable(path):
            raise PrismBuildError(f"SUIBOU_PRISM_PATH={path} is not an executable file")
        return path

    version = beam_version()
    target = prism_binary_path(settings)
    if _is_executable(target):
        return target
    with _locked(target.parent / ".prism.lock"):
        if not _is_executable(target):  # Another process may have built it meanwhile.
            _build(settings, version, target)
    return target


@dataclasses.dataclass(frozen=True)
class PrismServer:
    """A Prism job service run by suibou itself (see :func:`prism_job_server`)."""

    endpoint: str
    process: subprocess.Popen

    def exit_code(self) -> int | None:
        """None while Prism runs."""
        return self.process.poll()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop_process_group(process: subprocess.Popen, grace_s: float) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def prism_job_server(settings: Settings, log_path: Path, start_timeout_s: float = 30.0) -> Iterator[PrismServer]:
    """Runs Prism as a job service of its own for as long as the block runs.

    Beam's ``PrismRunner`` starts Prism itself and stops it when the driver stops
    watching the job: for a live job that was after ``--job_server_timeout``
    (300 s), when the job's state stream reaches its gRPC deadline. Run this way
    (``--runner=PortableRunner --job_endpoint=...``, :func:`prism_pipeline_options`
    with ``job_endpoint``), the job lives as long as this Prism process, and the
    caller watches it with short unary calls instead of a stream with a deadline.

    Yields:
        The running server. On leaving, Prism gets SIGTERM, then SIGKILL after 5 s.

    Raises:
        PrismBuildError: Prism is missing and could not be built.
        RuntimeError: Prism did not listen within ``start_timeout_s``.
    """
    binary = ensure_prism(settings)
    port = _free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(binary), "--job_port", str(port), "--serve_http=false", "--log_level", "warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Prism exited with code {process.returncode} at start; see {log_path}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Prism did not listen on port {port} within {start_timeout_s:.0f}s; see {log_path}")
            time.sleep(0.1)
        yield PrismServer(f"localhost:{port}", process)
    finally:
        _stop_process_group(process, 5.0)


def prism_pipeline_options(settings: Settings, worker_pool: str | None = None,
                           job_endpoint: str | None = None) -> list[str]:
    """Beam pipeline options that run a pipeline on suibou's Prism binary.

    Builds Prism first if needed. Add ``--streaming`` for unbounded pipelines.

    Args:
        settings: Home folder, or the Prism override.
        worker_pool: Address of a running :func:`suibou.infra.sdk_workers.sdk_worker_pool`:
            each environment of the pipeline gets an SDK harness process of its
            own. Without it the harness runs as threads of this process.
        job_endpoint: A Prism already serving (:func:`prism_job_server`); without
            it Beam starts Prism for the pipeline and stops it with the driver.

    Returns:
        Command-line style pipeline options.
    """
    if job_endpoint:
        runner = ["--runner=PortableRunner", f"--job_endpoint={job_endpoint}"]
    else:
        # A local path is used as is; without it Beam would try to download a
        # Prism release archive.
        runner = ["--runner=PrismRunner", f"--prism_location={ensure_prism(settings)}"]
    if worker_pool:
        environment = ["--environment_type=EXTERNAL", f"--environment_config={worker_pool}"]
    else:
        # The Python SDK harness runs inside this process, so no SDK container
        # image has to be pulled (PrismRunner's default too, made explicit).
        environment = ["--environment_type=LOOPBACK"]
    return [
        *runner,
        *environment,
        # Prism splits a bundle that makes no progress between two reports and
        # hands the unprocessed rest back as new work. Done to the bundles of
        # stateful stages (timer firings of the event-time folds) it lost some
        # outputs and repeated others; the folds need every firing exactly once.
        "--experiments=prism_disable_sdf_split",
    ]
