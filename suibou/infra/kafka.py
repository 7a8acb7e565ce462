"""The embedded single-node Kafka broker that suibou runs when no cluster is configured.

A fresh machine needs only Java 17+ and Maven: :func:`install` resolves Apache
Kafka's broker jars through Maven into ``<home>/kafka/libs``, and
:func:`ensure_running` writes a KRaft config (one node acting as broker and
controller), formats the storage once and starts the broker as a detached
background process that outlives the Python process that started it. Every step
is idempotent, so calling :func:`ensure_running` from each pipeline, test or CLI
command is cheap once the broker is up, and concurrent callers are serialised
by a file lock.

Layout under ``<home>``::

    kafka/pom.xml             copy of the packaged dependency list
    kafka/libs/               the broker's classpath (plus an install stamp)
    kafka/server.properties   regenerated on every start from Settings
    kafka/log4j2.properties   broker logging config
    kafka/data/               KRaft metadata and topic partitions
    kafka/kafka.pid           pid of the running broker
    logs/kafka.log            broker stdout/stderr
    logs/kafka-install.log    Maven's output

When ``settings.kafka_bootstrap`` names an external cluster nothing is installed
or started: :func:`ensure_running` only checks that the cluster answers.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from kafka import KafkaAdminClient
from kafka import errors as kafka_errors

from suibou.settings import Settings

KAFKA_VERSION = "4.1.1"
"""Apache Kafka release run by the embedded broker (pinned in ``kafka-pom.xml``)."""

MIN_JAVA_VERSION = 17
"""Kafka 4.x brokers need Java 17 or newer."""

READY_TIMEOUT_S = 60.0
# The longest a start may take while the broker keeps writing to its log (recovering partitions).
_LOADING_LIMIT_S = 900.0
STOP_TIMEOUT_S = 30.0

# Kafka's default heap (1 GiB) is sized for a production broker; a local broker
# carrying replayed sensor feeds is comfortable in half of it, which leaves room
# for the Beam workers and the alert API on a small machine.
_JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    # Log4j would otherwise stop logging as soon as the JVM begins to exit,
    # hiding the broker's shutdown (and any error in it) from kafka.log.
    "-Dlog4j2.shutdownHookEnabled=false",
)
_MAIN_CLASS = "kafka.Kafka"
_STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"
_LOG_ROTATE_BYTES = 20 * 1024 * 1024

# Children started by this process, kept so they can be reaped (no zombies while
# the parent lives on, e.g. in a test session) and so that Popen does not warn
# about a still-running child when it is garbage collected.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class KafkaInfraError(RuntimeError):
    """The embedded broker could not be installed, started, stopped or reached."""


@dataclasses.dataclass(frozen=True)
class KafkaPaths:
    """Where the embedded broker keeps its files.

    Attributes:
        root: ``<home>/kafka``.
        libs: The broker's classpath folder.
        data: KRaft ``log.dirs``.
        pom: Working copy of the dependency list Maven resolves.
        server_properties: Broker config, regenerated on every start.
        log4j_config: Broker logging config.
        pid_file: Pid of the running broker.
        lock_file: Serialises install/start/stop across processes.
        log: Broker stdout/stderr.
        install_log: Maven's output.
    """

    root: Path
    libs: Path
    data: Path
    pom: Path
    server_properties: Path
    log4j_config: Path
    pid_file: Path
    lock_file: Path
    log: Path
    install_log: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaPaths:
        root = settings.home / "kafka"
        logs = settings.home / "logs"
        return cls(
            root=root,
            libs=root / "libs",
            data=root / "data",
            pom=root / "pom.xml",
            server_properties=root / "server.properties",
            log4j_config=root / "log4j2.properties",
            pid_file=root / "kafka.pid",
            lock_file=root / ".lock",
            log=logs / "kafka.log",
            install_log=logs / "kafka-install.log",
        )

    @property
    def install_stamp(self) -> Path:
        return self.libs / ".installed"


def _say(message: str) -> None:
    """Prints a progress line on stderr, keeping stdout for command output."""
    print(f"[suibou] {message}", file=sys.stderr, flush=True)


def _resource_text(name: str) -> str:
    return resources.files("suibou.infra").joinpath(name).read_text(encoding="utf-8")


@contextlib.contextmanager
def _locked(paths: KafkaPaths) -> Iterator[None]:
    """Holds an exclusive lock on the broker folder.

    Two processes starting at once (a pipeline and the API, or parallel tests)
    would otherwise both format the storage or both launch a broker.
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lock_file, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 40, start: int = 0) -> str:
    """Returns the end of a log, from byte ``start`` on (this run's part of it)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _failure_excerpt(path: Path, start: int) -> str:
    """Picks the lines that explain a failed broker start out of its log.

    A fatal error is usually followed by a long stack trace, so a plain tail
    shows only stack frames: the ERROR lines and the message after each are
    listed first, then the last lines.
    """
    lines = _tail(path, lines=10_000, start=start).splitlines()
    causes: list[str] = []
    for index, line in enumerate(lines):
        if " ERROR " in line or " FATAL " in line:
            causes.append(line)
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if following and not following.startswith(("[", "\t")):
                causes.append(following)  # The exception's message.
    excerpt = causes[-10:] + ["..."] if causes else []
    return "\n".join(excerpt + lines[-15:])


# --------------------------------------------------------------------------- install


def _require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise KafkaInfraError(f"`{name}` was not found on PATH; {hint}")
    return path


def _java() -> str:
    """Returns the java executable, checking it is recent enough for Kafka 4."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else None
    java = java or _require_tool(
        "java",
        f"the embedded Kafka broker needs Java {MIN_JAVA_VERSION}+ "
        "(Debian: apt-get install openjdk-17-jre-headless).",
    )
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    # `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15' on stderr.
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # Java 8 and older report "1.8".
            major = int(match.group(2))
        if major < MIN_JAVA_VERSION:
            raise KafkaInfraError(
                f"{java} is Java {major}; Kafka {KAFKA_VERSION} needs Java {MIN_JAVA_VERSION}+ "
                "(set JAVA_HOME or put a newer java first on PATH)."
            )
    return java


def _install_fingerprint(pom_text: str) -> str:
    return hashlib.sha256(pom_text.encode()).hexdigest()


def install(settings: Settings) -> Path:
    """Resolves the Kafka broker's jars into ``<home>/kafka/libs`` through Maven.

    Does nothing when the jars of the current dependency list are already there.
    The jars are copied to a scratch folder first and moved into place only when
    Maven succeeds, so an interrupted install is simply redone.

    Args:
        settings: Where ``home`` is.

    Returns:
        The folder holding the broker's classpath.

    Raises:
        KafkaInfraError: Maven is missing or failed (the message names its log).
    """
    paths = KafkaPaths.from_settings(settings)
    with _locked(paths):
        return _install_locked(paths)


def _install_locked(paths: KafkaPaths) -> Path:
    pom_text = _resource_text("kafka-pom.xml")
    fingerprint = _install_fingerprint(pom_text)
    stamp = paths.install_stamp
    if stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return paths.libs

    mvn = _require_tool(
        "mvn",
        "suibou fetches the Kafka broker through Maven (Debian: apt-get install maven), "
        "or set SUIBOU_KAFKA_BOOTSTRAP to use an existing cluster.",
    )
    _java()  # Fail before a long download if the broker could not run anyway.
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.install_log.parent.mkdir(parents=True, exist_ok=True)
    paths.pom.write_text(pom_text, encoding="utf-8")
    staging = paths.root / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)

    _say(f"installing Apache Kafka {KAFKA_VERSION} broker jars with Maven (first run only)...")
    command = [
        mvn,
        "--batch-mode",
        "-Dstyle.color=never",
        "-f",
        str(paths.pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-Dmdep.useRepositoryLayout=false",
        "-DincludeScope=runtime",
    ]
    started = time.monotonic()
    with open(paths.install_log, "wb") as log:
        log.write(("$ " + " ".join(command) + "\n").encode())
        log.flush()
        result = subprocess.run(
            command,
            cwd=paths.root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    jars = list(staging.glob("kafka_2.13-*.jar")) if staging.is_dir() else []
    if result.returncode != 0 or not jars:
        raise KafkaInfraError(
            f"Maven could not fetch the Kafka broker (exit code {result.returncode}); "
            f"see {paths.install_log}:\n{_tail(paths.install_log, 25)}"
        )
    shutil.rmtree(paths.libs, ignore_errors=True)
    staging.rename(paths.libs)
    stamp.write_text(fingerprint + "\n")
    count = len(list(paths.libs.glob("*.jar")))
    _say(f"Kafka jars installed: {count} jars in {paths.libs} ({time.monotonic() - started:.0f}s)")
    return paths.libs


# ---------------------------------------------------------------------------- config


def _server_properties(settings: Settings, paths: KafkaPaths) -> str:
    host = "127.0.0.1"
    port = settings.kafka_port
    controller_port = settings.kafka_controller_port
    properties = {
        # One KRaft node that is both the broker and the whole controller quorum.
        # A static voter set keeps formatting to a single, repeatable command.
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(paths.data),
        "num.partitions": "3",
        # Internal topics default to replication factor 3, which a single node
        # cannot host: consumer groups and transactions would never work.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Topics are created explicitly (ensure_topics) so a typo in a topic name
        # fails loudly instead of silently feeding a new, unread topic.
        "auto.create.topics.enable": "false",
        # Consumers in tests and drills join alone; don't make them wait 3 s.
        "group.initial.rebalance.delay.ms": "0",
        # Replayed observations carry their original, possibly years-old event
        # timestamps. Time-based retention would delete such segments right
        # after they are written, so retention here is by size only.
        "log.retention.ms": "-1",
        "log.retention.bytes": str(256 * 1024 * 1024),
        "log.segment.bytes": str(64 * 1024 * 1024),
        # Fewer threads than the production defaults: this broker shares a small
        # machine with the pipelines.
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
    }
    lines = ["# Generated by suibou on every broker start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"


def _write_config(settings: Settings, paths: KafkaPaths) -> None:
    paths.server_properties.write_text(_server_properties(settings, paths), encoding="utf-8")
    paths.log4j_config.write_text(_resource_text("kafka-log4j2.properties"), encoding="utf-8")


def _random_cluster_id() -> str:
    """Returns a KRaft cluster id in Kafka's ``Uuid`` form (22 base64url characters).

    This is what ``kafka-storage random-uuid`` prints; generating it here saves
    starting a JVM. Like Kafka, ids starting with ``-`` are avoided because they
    read as command-line flags.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _java_command(java: str, paths: KafkaPaths, main_class: str, *args: str) -> list[str]:
    return [
        java,
        *_JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={paths.log4j_config}",
        "-cp",
        f"{paths.libs}/*",
        main_class,
        *args,
    ]


def _format_storage(java: str, paths: KafkaPaths) -> None:
    """Formats the KRaft metadata directory unless that was done before."""
    if (paths.data / "meta.properties").is_file():
        return
    _say(f"formatting Kafka storage in {paths.data}...")
    paths.data.mkdir(parents=True, exist_ok=True)
    command = _java_command(
        java,
        paths,
        _STORAGE_TOOL_CLASS,
        "format",
        "--cluster-id",
        _random_cluster_id(),
        "--config",
        str(paths.server_properties),
        "--ignore-formatted",
    )
    log_start = paths.log.stat().st_size if paths.log.exists() else 0
    with open(paths.log, "ab") as log:
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise KafkaInfraError(
            f"formatting Kafka storage failed (exit code {result.returncode}); "
            f"see {paths.log}:\n{_failure_excerpt(paths.log, log_start)}"
        )


# --------------------------------------------------------------------------- process


def _process_state(pid: int) -> str | None:
    """Returns the kernel's one-letter state of ``pid``, or None if it is gone."""
    with contextlib.suppress(ChildProcessError, OSError):
        # Reap it if it is our exited child, or it would linger as a zombie.
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"  # No /proc (macOS): alive, state unknown.
    # The command name in field 2 may contain spaces; the state follows its ')'.
    return stat.rpartition(")")[2].split()[0]


def _pid_alive(pid: int) -> bool:
    state = _process_state(pid)
    return state is not None and state not in ("Z", "X")


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        result = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
        return result.stdout


def _running_pid(paths: KafkaPaths) -> int | None:
    """Returns the pid of our broker if it is alive.

    The pid must also still be a Kafka broker using our config, since pids are
    reused after a reboot or a crash.
    """
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not _pid_alive(pid):
        return None
    command_line = _command_line(pid)
    if _MAIN_CLASS not in command_line or str(paths.server_properties) not in command_line:
        return None
    return pid


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _terminate(pid: int, timeout_s: float) -> None:
    """Sends SIGTERM, which Kafka answers with a controlled shutdown, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(pid):
        _say(f"Kafka did not stop within {timeout_s:.0f}s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            time.sleep(0.05)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(Exception):
            child.wait(timeout=1)


def _rotate_log(path: Path) -> None:
    """Keeps one previous broker log so it does not grow without bound."""
    with contextlib.suppress(OSError):
        if path.stat().st_size > _LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))


def _start(settings: Settings, paths: KafkaPaths) -> tuple[int, int]:
    for port in (settings.kafka_port, settings.kafka_controller_port):
        if _port_open("127.0.0.1", port):
            raise KafkaInfraError(
                f"port {port} is already in use by another program, so suibou cannot start its "
                "Kafka broker; free it, or set SUIBOU_KAFKA_PORT / SUIBOU_KAFKA_CONTROLLER_PORT, "
                "or point SUIBOU_KAFKA_BOOTSTRAP at a running cluster."
            )
    java = _java()
    _install_locked(paths)
    paths.log.parent.mkdir(parents=True, exist_ok=True)
    _write_config(settings, paths)
    _format_storage(java, paths)
    _rotate_log(paths.log)

    _say(f"starting Kafka {KAFKA_VERSION} on {settings.bootstrap_servers} (log: {paths.log})...")
    log_start = paths.log.stat().st_size if paths.log.exists() else 0
    command = _java_command(java, paths, _MAIN_CLASS, str(paths.server_properties))
    with open(paths.log, "ab") as log:
        # A new session detaches the broker from the terminal and the caller's
        # process group, so Ctrl-C in a pipeline does not take the broker down.
        process = subprocess.Popen(
            command,
            cwd=paths.root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _CHILDREN[process.pid] = process
    paths.pid_file.write_text(f"{process.pid}\n")
    return process.pid, log_start


def _admin_client(bootstrap_servers: str, timeout_s: float) -> KafkaAdminClient:
    timeout_ms = max(1000, int(timeout_s * 1000))
    return KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="suibou-infra",
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
    )


def _cluster_answers(bootstrap_servers: str, timeout_s: float) -> bool:
    try:
        admin = _admin_client(bootstrap_servers, timeout_s)
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False
    try:
        admin.list_topics()
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        with contextlib.suppress(Exception):
            admin.close()


_LOADED_PARTITIONS = re.compile(r"\((\d+)/(\d+) completed in ")


def _partitions_loaded(log_text: str) -> tuple[int, int] | None:
    """How many partition logs the broker has loaded so far, of how many, from its log.

    Examples:
        >>> _partitions_loaded("... with 1 segments ... in 13ms (4626/4724 completed in /data) (kafka.log.LogManager)")
        (4626, 4724)
        >>> _partitions_loaded("[KafkaRaftServer nodeId=1] Kafka Server started") is None
        True
    """
    found = _LOADED_PARTITIONS.findall(log_text)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def _wait_ready(
    settings: Settings, paths: KafkaPaths, pid: int, timeout_s: float, log_start: int | None = None
) -> None:
    """Waits until the broker serves metadata requests, or fails with its log's excerpt.

    Args:
        settings: Ports.
        paths: Log and pid file.
        pid: The broker process.
        timeout_s: How long to wait after the broker's last log line.
        log_start: Byte offset in the log where this broker's output begins;
            by default the last 64 KiB are searched.
    """
    if log_start is None:
        with contextlib.suppress(OSError):
            log_start = max(0, paths.log.stat().st_size - 65536)
    log_start = log_start or 0
    started = time.monotonic()
    deadline = started + timeout_s
    log_size, told = log_start, started
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            paths.pid_file.unlink(missing_ok=True)
            raise KafkaInfraError(
                f"the Kafka broker exited during start-up; see {paths.log}:\n"
                f"{_failure_excerpt(paths.log, log_start)}"
            )
        # The listener port opens only once the broker is unfenced and serving,
        # and probing it first keeps the client's connection-refused errors
        # out of the user's terminal.
        if _port_open("127.0.0.1", settings.kafka_port) and _cluster_answers(
            settings.bootstrap_servers, 5.0
        ):
            return
        # A broker that stopped uncleanly recovers every partition's log before it
        # serves: minutes with thousands of partitions. While its log grows it is
        # working, so the timeout counts from its last line, up to a hard limit.
        with contextlib.suppress(OSError):
            size = paths.log.stat().st_size
            if size > log_size:
                log_size = size
                deadline = min(max(deadline, time.monotonic() + timeout_s), started + _LOADING_LIMIT_S)
        if time.monotonic() - told > 10.0:
            told = time.monotonic()
            loading = _partitions_loaded(_tail(paths.log, lines=200, start=log_start))
            if loading:
                _say(f"the Kafka broker is recovering its logs: {loading[0]} of {loading[1]} partitions")
        time.sleep(0.25)
    raise KafkaInfraError(
        f"the Kafka broker (pid {pid}) did not become ready "
        f"(nothing new in its log for {timeout_s:.0f}s, or still starting after {_LOADING_LIMIT_S:.0f}s); "
        f"see {paths.log}:\n{_failure_excerpt(paths.log, log_start)}"
    )


# ------------------------------------------------------------------------ public API


def ensure_running(settings: Settings, timeout_s: float = READY_TIMEOUT_S) -> str:
    """Makes sure a Kafka cluster is reachable, starting the embedded broker if needed.

    With ``settings.kafka_bootstrap`` set, only checks that the external cluster
    answers. Otherwise reuses the embedded broker if it is running, and else
    installs (first run), configures, formats (first run) and starts it.

    Args:
        settings: Ports, home folder or external cluster address.
        timeout_s: How long to wait for the broker to serve requests, counted
            from its last log line while it is recovering its logs.

    Returns:
        The bootstrap servers string for Kafka clients.

    Raises:
        KafkaInfraError: The broker could not be installed or started, or the
            external cluster does not answer.
    """
    bootstrap = settings.bootstrap_servers
    if not settings.uses_embedded_kafka:
        if not _cluster_answers(bootstrap, min(timeout_s, 15.0)):
            raise KafkaInfraError(
                f"the Kafka cluster at {bootstrap} (SUIBOU_KAFKA_BOOTSTRAP) does not answer."
            )
        return bootstrap

    paths = KafkaPaths.from_settings(settings)
    with _locked(paths):
        pid = _running_pid(paths)
        if pid is not None:
            _wait_ready(settings, paths, pid, timeout_s)
            return bootstrap
        paths.pid_file.unlink(missing_ok=True)
        started = time.monotonic()
        pid, log_start = _start(settings, paths)
        try:
            _wait_ready(settings, paths, pid, timeout_s, log_start)
        except KafkaInfraError:
            # A broker that never became ready would hold the ports and make
            # the next attempt "reuse" it; take it down with the failure.
            if _pid_alive(pid):
                _terminate(pid, STOP_TIMEOUT_S)
            paths.pid_file.unlink(missing_ok=True)
            raise
        _say(f"Kafka ready at {bootstrap} (pid {pid}, {time.monotonic() - started:.1f}s)")
    return bootstrap


def stop(settings: Settings, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stops the embedded broker: SIGTERM (a clean, controlled shutdown), then SIGKILL.

    Does nothing when the broker is not running or an external cluster is used.

    Args:
        settings: Where the broker's pid file is.
        timeout_s: How long to wait for a clean shutdown before killing it.
    """
    if not settings.uses_embedded_kafka:
        _say(f"using the external Kafka cluster at {settings.kafka_bootstrap}; nothing to stop")
        return
    paths = KafkaPaths.from_settings(settings)
    with _locked(paths):
        pid = _running_pid(paths)
        if pid is None:
            paths.pid_file.unlink(missing_ok=True)
            return
        _say(f"stopping Kafka (pid {pid})...")
        _terminate(pid, timeout_s)
        paths.pid_file.unlink(missing_ok=True)
        _say("Kafka stopped")


def status(settings: Settings) -> str:
    """Describes the broker's state; the first word is ``running``, ``stopped`` or ``external``.

    Args:
        settings: Where the broker's pid file is, or the external cluster.

    Returns:
        E.g. ``"running (pid 4242) at 127.0.0.1:19092"`` or ``"stopped"``.
    """
    if not settings.uses_embedded_kafka:
        return f"external cluster at {settings.kafka_bootstrap}"
    pid = _running_pid(KafkaPaths.from_settings(settings))
    if pid is None:
        return "stopped"
    return f"running (pid {pid}) at {settings.bootstrap_servers}"


def ensure_topics(
    settings: Settings,
    topics: list[str],
    partitions: int = 3,
    timeout_s: float = 30.0,
) -> list[str]:
    """Creates the topics that do not exist yet, and waits until they have leaders.

    Existing topics are left as they are (their partition count is not changed).
    The replication factor is the cluster's default: 1 on the embedded broker.

    Args:
        settings: Which cluster.
        topics: Topic names.
        partitions: Partition count of newly created topics.
        timeout_s: Limit for reaching the cluster and for topics to get leaders.

    Returns:
        The topics that were created by this call.

    Raises:
        KafkaInfraError: The cluster cannot be reached or refused to create a topic.
    """
    wanted = list(dict.fromkeys(topics))
    if not wanted:
        return []
    try:
        admin = _admin_client(settings.bootstrap_servers, timeout_s)
    except kafka_errors.KafkaError as error:
        raise KafkaInfraError(
            f"cannot reach Kafka at {settings.bootstrap_servers} ({error}); "
            "is it running? (`suibou infra up`)"
        ) from error
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if missing:
            result = admin.create_topics(
                {name: {"num_partitions": partitions, "replication_factor": -1} for name in missing},
                timeout_ms=int(timeout_s * 1000),
                raise_errors=False,
            )
            for topic in result["topics"]:
                error_class = kafka_errors.for_code(topic["error_code"])
                if topic["error_code"] == 0:
                    created.append(topic["name"])
                elif error_class is kafka_errors.TopicAlreadyExistsError:
                    pass  # Created concurrently by another process: that's fine.
                else:
                    raise KafkaInfraError(
                        f"could not create topic {topic['name']}: {error_class.__name__} "
                        f"{topic.get('error_message') or ''}".rstrip()
                    )
        # A topic the controller accepted may not have partition leaders for a
        # moment; producing to it then fails, so wait until it is usable.
        admin.wait_for_topics(wanted, timeout_ms=int(timeout_s * 1000))
    finally:
        with contextlib.suppress(Exception):
            admin.close()
    if created:
        _say(f"created Kafka topics: {', '.join(created)}")
    return created
