"""Beam's Flink job server, built with Maven and run as a background service.

Beam publishes no ready-made Flink job server jar for its current releases, so
suibou assembles one (``flink-pom.xml``): the ``beam-runners-flink-1.19``
runner at 2.70.0, which holds ``FlinkJobServerDriver`` and the Flink 1.19
translation, plus the portable job service compiled from its 2.65.0 sources
jar (the newest one served; it builds against the 2.70.0 modules). Maven
resolves and compiles everything once into ``<home>/flink/libs``; a second
install with the same pom reuses it.

:func:`ensure_job_server` starts the driver as a detached process that outlives
the Python process that started it (pid and log under ``<home>``), and waits
until its job service answers. Without ``settings.flink_master`` the job server
runs each job on an embedded Flink mini-cluster inside its own JVM; with it,
jobs are submitted to that JobManager.

Layout under ``<home>``::

    flink/pom.xml                 copy of the packaged pom
    flink/libs/                   the job server's classpath (plus an install stamp)
    flink/build/                  Maven's work folder (unpacked job-service sources, classes)
    flink/conf/                   Flink configuration the job server reads
    flink/job-server-<port>.pid   pid of the running job server
    logs/flink-job-server-<port>.log
    logs/flink-install.log        Maven's output
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from suibou.infra.flink_rest import embedded_rest_port
from suibou.settings import Settings

BEAM_VERSION = "2.70.0"
"""Beam version of the Flink runner (pinned in ``flink-pom.xml``)."""

FLINK_VERSION = "1.19.0"
"""Flink release the runner is built for."""

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
_HEARTBEAT_S = 20.0

_DRIVER_CLASS = "org.apache.beam.runners.flink.FlinkJobServerDriver"

# What Flink's own launch scripts pass to Java 17 (env.java.opts.all in Flink 1.19):
# Flink's serialisers and Kryo reflect into these JDK packages.
JAVA17_OPENS = (
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.text=ALL-UNNAMED",
    "--add-opens=java.base/java.time=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED",
)

# The embedded mini-cluster keeps job state on this heap; a drill's state is
# small, and the machine is shared with Kafka, the SDK harnesses and the API.
_JOB_SERVER_JVM = ("-Xms128m", "-Xmx768m", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
                   "-Djava.awt.headless=true", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                   "-Dorg.slf4j.simpleLogger.log.org.apache.beam.runners.jobsubmission=info",
                   "-Dorg.slf4j.simpleLogger.log.org.apache.beam.runners.flink.FlinkJobServerDriver=info",
                   "-Dorg.slf4j.simpleLogger.showDateTime=true")

# Children started by this process, kept so they can be reaped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class FlinkInfraError(RuntimeError):
    """The Flink job server could not be built, started or reached."""


@dataclasses.dataclass(frozen=True)
class FlinkPaths:
    """Where the Flink job server keeps its files."""

    root: Path
    libs: Path
    build: Path
    conf: Path
    pom: Path
    lock_file: Path
    install_log: Path
    logs: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> FlinkPaths:
        root = settings.home / "flink"
        return cls(root=root, libs=root / "libs", build=root / "build", conf=root / "conf",
                   pom=root / "build" / "pom.xml", lock_file=root / ".lock",
                   install_log=settings.home / "logs" / "flink-install.log", logs=settings.home / "logs")

    @property
    def install_stamp(self) -> Path:
        return self.libs / ".installed"

    def pid_file(self, port: int) -> Path:
        return self.root / f"job-server-{port}.pid"

    def log(self, port: int) -> Path:
        return self.logs / f"flink-job-server-{port}.log"


def _say(message: str) -> None:
    """Prints a progress line on stderr, keeping stdout for command output."""
    print(f"[suibou] {message}", file=sys.stderr, flush=True)


def _resource_text(name: str) -> str:
    return resources.files("suibou.infra").joinpath(name).read_text(encoding="utf-8")


@contextlib.contextmanager
def _locked(paths: FlinkPaths) -> Iterator[None]:
    """Serialises builds and starts across processes (parallel tests, CLI and drills)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lock_file, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _require(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FlinkInfraError(f"`{name}` was not found on PATH; {hint}")
    return path


def _java() -> str:
    from suibou.infra.kafka import KafkaInfraError
    from suibou.infra.kafka import _java as java

    try:
        return java()  # The same Java 17+ check as the Kafka broker's.
    except KafkaInfraError as error:
        raise FlinkInfraError(str(error)) from None


# --------------------------------------------------------------------------- install


def _fingerprint(pom_text: str) -> str:
    return hashlib.sha256(pom_text.encode()).hexdigest()


def is_installed(settings: Settings) -> bool:
    """Whether the job server of the packaged pom is built."""
    paths = FlinkPaths.from_settings(settings)
    stamp = paths.install_stamp
    return stamp.is_file() and stamp.read_text().strip() == _fingerprint(_resource_text("flink-pom.xml"))


def install(settings: Settings) -> Path:
    """Builds the job server's classpath into ``<home>/flink/libs`` with Maven (once).

    Returns:
        The classpath folder.

    Raises:
        FlinkInfraError: Maven or Java is missing, or the build failed (the message names its log).
    """
    paths = FlinkPaths.from_settings(settings)
    with _locked(paths):
        return _install_locked(paths)


def _install_locked(paths: FlinkPaths) -> Path:
    pom_text = _resource_text("flink-pom.xml")
    fingerprint = _fingerprint(pom_text)
    if paths.install_stamp.is_file() and paths.install_stamp.read_text().strip() == fingerprint:
        return paths.libs
    mvn = _require("mvn", "suibou builds Beam's Flink job server with Maven (Debian: apt-get install maven).")
    _java()
    paths.build.mkdir(parents=True, exist_ok=True)
    paths.install_log.parent.mkdir(parents=True, exist_ok=True)
    paths.pom.write_text(pom_text, encoding="utf-8")
    staging = paths.root / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    command = [mvn, "--batch-mode", "-Dstyle.color=never", "-f", str(paths.pom), "-DskipTests",
               "clean", "package", "dependency:copy-dependencies",
               f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
    _say(f"building Beam {BEAM_VERSION}'s Flink {FLINK_VERSION} job server with Maven "
         f"(first run only, about 250 MB; log: {paths.install_log})...")
    started = time.monotonic()
    downloaded = 0
    with open(paths.install_log, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        process = subprocess.Popen(command, cwd=paths.build, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        done = threading.Event()

        def heartbeat() -> None:
            # Maven is quiet on the terminal for a minute or more while it downloads.
            while not done.wait(_HEARTBEAT_S):
                _say(f"  still building the Flink job server: {downloaded} files downloaded, "
                     f"{time.monotonic() - started:.0f}s elapsed...")

        ticker = threading.Thread(target=heartbeat, daemon=True)
        ticker.start()
        try:
            for line in process.stdout:
                log.write(line)
                if line.startswith("Downloaded from"):
                    downloaded += 1
            returncode = process.wait()
        finally:
            done.set()
            if process.poll() is None:
                process.kill()
                process.wait()
    built = sorted((paths.build / "target").glob("suibou-flink-job-server-*.jar"))
    if returncode != 0 or not built or not staging.is_dir():
        raise FlinkInfraError(f"building the Flink job server failed (exit code {returncode}); "
                              f"see {paths.install_log}:\n{_tail(paths.install_log)}")
    shutil.copy2(built[0], staging / built[0].name)
    shutil.rmtree(paths.libs, ignore_errors=True)
    staging.rename(paths.libs)
    paths.install_stamp.write_text(fingerprint + "\n")
    jars = list(paths.libs.glob("*.jar"))
    size = sum(jar.stat().st_size for jar in jars) / 2**20
    _say(f"Flink job server built: {len(jars)} jars, {size:.0f} MiB in {paths.libs} "
         f"({time.monotonic() - started:.0f}s)")
    return paths.libs


# ---------------------------------------------------------------------------- process


def _pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _running_pid(paths: FlinkPaths, port: int, main_class: str = _DRIVER_CLASS) -> int | None:
    """The pid in the pid file, if it is alive and still our process (pids are reused)."""
    try:
        pid = int(paths.pid_file(port).read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        return None
    if not _pid_alive(pid) or main_class not in command or str(paths.libs) not in command:
        return None
    return pid


def _master_of(pid: int) -> str | None:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    return next((arg.partition("=")[2] for arg in command if arg.startswith("--flink-master=")), None)


def _terminate(pid: int, timeout_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            time.sleep(0.05)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(Exception):
            child.wait(timeout=1)


def job_endpoint(settings: Settings) -> str:
    """The job service address for ``--job_endpoint``."""
    return f"localhost:{settings.flink_job_port}"


def job_service_answers(endpoint: str, timeout_s: float = 5.0) -> bool:
    """Whether a Beam job service answers ``GetJobs`` at ``endpoint``."""
    import grpc
    from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc

    channel = grpc.insecure_channel(endpoint)
    try:
        beam_job_api_pb2_grpc.JobServiceStub(channel).GetJobs(beam_job_api_pb2.GetJobsRequest(), timeout=timeout_s)
        return True
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def _flink_conf(settings: Settings) -> str:
    """Configuration of the embedded mini-cluster (Flink 1.19 reads config.yaml)."""
    checkpoints = settings.home / "flink" / "checkpoints"
    lines = [
        "# Generated by suibou on every job server start; edits are overwritten.",
        # The embedded cluster's REST API beside its job server (never a fixed 8081 that another job
        # server holds): a checkpointed drill reads its watermarks there (suibou.infra.flink_rest).
        f"rest.port: {embedded_rest_port(settings)}",
        "rest.bind-address: 127.0.0.1",
        f"state.checkpoints.dir: file://{checkpoints}",
        "state.checkpoints.num-retained: 2",
        f"io.tmp.dirs: {settings.home / 'flink' / 'tmp'}",
        "taskmanager.memory.managed.size: 64m",
        "taskmanager.memory.network.max: 64m",
        "taskmanager.memory.network.min: 64m",
    ]
    return "\n".join(lines) + "\n"


def ensure_job_server(settings: Settings, timeout_s: float = READY_TIMEOUT_S) -> str:
    """Makes sure a Flink job server answers on ``settings.flink_job_port``; starts one if needed.

    Builds the job server first if needed. The job server runs each job on an
    embedded Flink mini-cluster, or submits it to ``settings.flink_master``.

    Returns:
        The job endpoint for ``--job_endpoint``.

    Raises:
        FlinkInfraError: It could not be built, or did not answer within ``timeout_s``.
    """
    endpoint = job_endpoint(settings)
    port = settings.flink_job_port
    paths = FlinkPaths.from_settings(settings)
    with _locked(paths):
        pid = _running_pid(paths, port)
        master = settings.flink_master or "[local]"
        if pid is not None and _master_of(pid) != master:
            _say(f"the Flink job server on port {port} submits to {_master_of(pid)}, not {master}: restarting it")
            _terminate(pid, STOP_TIMEOUT_S)
            paths.pid_file(port).unlink(missing_ok=True)
            pid = None
        if pid is not None and job_service_answers(endpoint, 10.0):
            return endpoint
        if pid is None and _port_open(port):
            raise FlinkInfraError(f"port {port} is in use by another program; set SUIBOU_FLINK_JOB_PORT "
                                  "to a free port for suibou's Flink job server.")
        if pid is None:
            pid = _start(settings, paths)
        started = time.monotonic()
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                paths.pid_file(port).unlink(missing_ok=True)
                raise FlinkInfraError(f"the Flink job server exited during start-up; see {paths.log(port)}:\n"
                                      f"{_tail(paths.log(port))}")
            if _port_open(port) and job_service_answers(endpoint, 2.0):
                _say(f"Flink job server ready at {endpoint} (pid {pid}, {time.monotonic() - started:.1f}s)")
                return endpoint
            time.sleep(0.5)
        _terminate(pid, STOP_TIMEOUT_S)
        paths.pid_file(port).unlink(missing_ok=True)
        raise FlinkInfraError(f"the Flink job server did not answer within {timeout_s:.0f}s; "
                              f"see {paths.log(port)}:\n{_tail(paths.log(port))}")


def _start(settings: Settings, paths: FlinkPaths) -> int:
    java = _java()
    _install_locked(paths)
    port = settings.flink_job_port
    paths.conf.mkdir(parents=True, exist_ok=True)
    (paths.root / "tmp").mkdir(parents=True, exist_ok=True)
    (paths.conf / "config.yaml").write_text(_flink_conf(settings), encoding="utf-8")
    log = paths.log(port)
    log.parent.mkdir(parents=True, exist_ok=True)
    master = settings.flink_master or "[local]"
    command = [
        java, *JAVA17_OPENS, *_JOB_SERVER_JVM, f"-Djava.io.tmpdir={paths.root / 'tmp'}",
        "-cp", f"{paths.libs}/*", _DRIVER_CLASS,
        f"--flink-master={master}", f"--flink-conf-dir={paths.conf}",
        f"--job-port={port}", "--artifact-port=0", "--expansion-port=0",
    ]
    _say(f"starting the Flink job server on {job_endpoint(settings)} (Flink {master}; log: {log})...")
    with open(log, "ab") as out:
        out.write(("$ " + " ".join(command) + "\n").encode())
        out.flush()
        # A session of its own: Ctrl-C in a drill does not take the job server down.
        process = subprocess.Popen(command, cwd=paths.root, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    _CHILDREN[process.pid] = process
    paths.pid_file(port).write_text(f"{process.pid}\n")
    return process.pid


def stop(settings: Settings, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stops suibou's job server on ``settings.flink_job_port`` (its embedded jobs with it)."""
    paths = FlinkPaths.from_settings(settings)
    port = settings.flink_job_port
    with _locked(paths):
        pid = _running_pid(paths, port)
        paths.pid_file(port).unlink(missing_ok=True)
        if pid is None:
            return
        _say(f"stopping the Flink job server (pid {pid})...")
        _terminate(pid, timeout_s)


def status(settings: Settings) -> str:
    """``running (pid N) at localhost:P``, ``stopped`` or ``not built``; never starts anything."""
    paths = FlinkPaths.from_settings(settings)
    pid = _running_pid(paths, settings.flink_job_port)
    if pid is not None:
        master = settings.flink_master or "embedded mini-cluster"
        return f"running (pid {pid}) at {job_endpoint(settings)}, Flink {master}"
    return "stopped" if is_installed(settings) else f"not built yet ({paths.libs})"


def pipeline_options(settings: Settings, worker_pool: str | None = None, parallelism: int | None = None,
                     checkpointing_interval_ms: int | None = None, state_backend: str | None = None,
                     job_endpoint: str | None = None) -> list[str]:
    """Beam options that run a streaming pipeline on suibou's Flink job server (started if needed).

    Args:
        settings: Job server port, home folder, and the defaults of the arguments below.
        worker_pool: Address of a running :func:`suibou.infra.sdk_workers.sdk_worker_pool`;
            without it the SDK harness runs in this process (``LOOPBACK``).
        parallelism: Flink parallelism of every operator (default ``settings.flink_parallelism``).
        checkpointing_interval_ms: Flink checkpoints this often; 0: none
            (default ``settings.flink_checkpoint_ms``).
        state_backend: ``rocksdb`` or ``hashmap``; empty: Flink's default, on the heap
            (default ``settings.flink_state_backend``).
        job_endpoint: Another Beam job service for Flink to submit to (default:
            suibou's own, started if needed).
    """
    parallelism = parallelism or settings.flink_parallelism
    if checkpointing_interval_ms is None:
        checkpointing_interval_ms = settings.flink_checkpoint_ms
    state_backend = settings.flink_state_backend if state_backend is None else state_backend
    endpoint = job_endpoint or ensure_job_server(settings)
    if worker_pool:
        environment = ["--environment_type=EXTERNAL", f"--environment_config={worker_pool}"]
    else:
        environment = ["--environment_type=LOOPBACK"]
    from pipelines.ordered import BAG_WAITING_STATE

    options = ["--runner=PortableRunner", f"--job_endpoint={endpoint}", *environment, "--streaming",
               f"--parallelism={parallelism}",
               # The portable Flink runner serves bag state only, no ordered lists.
               f"--experiments={BAG_WAITING_STATE}"]
    if checkpointing_interval_ms:
        options += [f"--checkpointing_interval={checkpointing_interval_ms}",
                    "--finish_bundle_before_checkpointing"]
    if state_backend:
        # Where the backend's checkpoints go (a local folder: every Flink process here shares the disk).
        options += [f"--state_backend={state_backend}",
                    f"--state_backend_storage_path=file://{settings.home / 'flink' / 'checkpoints'}"]
    return options
