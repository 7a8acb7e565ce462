"""A local PostgreSQL server for the alert store, started on demand.

:func:`ensure_running` makes one exist and returns its SQLAlchemy URL:

1. Finds PostgreSQL's server programs (``pg_ctl``, ``initdb``, ``postgres``)
   on ``PATH`` or under ``/usr/lib/postgresql/<version>/bin``; if there are
   none and this process runs as root on Debian, installs the ``postgresql``
   package with ``apt-get`` (after ``apt-get update``, non-interactively).
2. Creates a cluster under ``<SUIBOU_HOME>/postgres/data`` the first time (under
   ``/var/tmp/suibou-postgres/<hash of the home>/data`` when the home is in a
   folder the ``postgres`` user cannot enter, such as /root), with
   a database superuser ``suibou`` whose random password is kept in
   ``<SUIBOU_HOME>/postgres/password`` (mode 0600) and password (SCRAM)
   authentication on 127.0.0.1 only. ``initdb`` refuses to run as root, so
   under root the cluster belongs to, and the server runs as, the ``postgres``
   system user that Debian's package creates.
3. Starts the server on 127.0.0.1 (port 15432, or ``SUIBOU_POSTGRES_PORT``)
   with ``pg_ctl``, unless it already runs, and creates the database ``suibou``.

Running it again reuses the cluster and the server; :func:`stop` stops it.
Starts and stops are serialised by a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from suibou.settings import Settings

DEFAULT_PORT = 15432
USER = "suibou"
DATABASE = "suibou"
_SERVER_USER = "postgres"


class PostgresError(RuntimeError):
    """PostgreSQL could not be installed, initialised or started; the message says where to look."""


def _say(message: str) -> None:
    print(f"[suibou] {message}", file=sys.stderr, flush=True)


def port() -> int:
    return int(os.environ.get("SUIBOU_POSTGRES_PORT", DEFAULT_PORT))


def _root(settings: Settings) -> Path:
    return settings.home / "postgres"


#: Where the cluster goes when the ``postgres`` user cannot enter ``<SUIBOU_HOME>`` (e.g. a home under /root).
FALLBACK_ROOT = Path("/var/tmp/suibou-postgres")


def _server_dir(settings: Settings) -> Path:
    """The folder of the cluster and its log: ``<home>/postgres``, or, when running as root and the
    ``postgres`` user cannot enter it, a folder under :data:`FALLBACK_ROOT` named after the home."""
    root = _root(settings)
    if os.geteuid() != 0 or _server_user_reaches(root):
        return root
    digest = hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:12]
    return FALLBACK_ROOT / digest


def _server_user_reaches(folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    try:
        pwd.getpwnam(_SERVER_USER)
    except KeyError:
        return True  # no such user yet: initdb will say so
    command = _as_server_user(["test", "-x", str(folder)])
    return subprocess.run(command, check=False, capture_output=True).returncode == 0


def _data_dir(settings: Settings) -> Path:
    return _server_dir(settings) / "data"


def _password_file(settings: Settings) -> Path:
    return _root(settings) / "password"


def _log_file(settings: Settings) -> Path:
    return _server_dir(settings) / "postgres.log"


def find_binaries() -> Path | None:
    """The folder holding ``pg_ctl``, ``initdb`` and ``postgres``, or ``None``."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb") and shutil.which("postgres"):
        return Path(on_path).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    for pg_ctl in reversed(candidates):
        if (pg_ctl.parent / "initdb").exists() and (pg_ctl.parent / "postgres").exists():
            return pg_ctl.parent
    return None


def install() -> Path:
    """Installs Debian's ``postgresql`` package (root only) and returns its binaries' folder.

    Raises:
        PostgresError: Not root, no ``apt-get``, or the installation failed.
    """
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresError("PostgreSQL is not installed; install Debian's 'postgresql' package "
                            "(apt-get install postgresql) or set SUIBOU_DATABASE_URL to an existing server")
    _say("installing PostgreSQL (apt-get install postgresql)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]):
        result = subprocess.run(command, env=env, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise PostgresError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    found = find_binaries()
    if found is None:
        raise PostgresError("the postgresql package is installed but pg_ctl was not found")
    return found


def _as_server_user(command: list[str]) -> list[str]:
    """``command`` run as the ``postgres`` user when this process is root (initdb refuses root)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", _SERVER_USER, "--", *command]


def _give_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(_SERVER_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    _root(settings).mkdir(parents=True, exist_ok=True)
    with open(_root(settings) / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], what: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise PostgresError(f"{what} failed ({result.returncode}): {result.stderr.strip()[-2000:]}; "
                            f"log: {_log_file(settings)}")
    return result


def _initdb(settings: Settings, binaries: Path) -> None:
    data = _data_dir(settings)
    if (data / "PG_VERSION").exists():
        return
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_SERVER_USER)
        except KeyError:
            raise PostgresError(f"running as root needs the '{_SERVER_USER}' system user that Debian's "
                                "postgresql package creates") from None
    server_dir = data.parent
    server_dir.mkdir(parents=True, exist_ok=True)
    server_dir.chmod(0o755)  # the server user must reach data/ inside it
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    _give_to_server_user(data)
    password = secrets.token_urlsafe(24)
    password_file = _password_file(settings)
    password_file.write_text(password)
    password_file.chmod(0o600)
    # initdb reads the password from a file the server user can read; it is removed straight after.
    handover = server_dir / f".pw-{secrets.token_hex(4)}"
    handover.write_text(password)
    handover.chmod(0o600)
    _give_to_server_user(handover)
    try:
        _say(f"creating a PostgreSQL cluster in {data}")
        _run(_as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={handover}",
                              "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8",
                              "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C"]),
             "initdb", settings)
    finally:
        handover.unlink(missing_ok=True)


def _has_c_utf8() -> bool:
    result = subprocess.run(["locale", "-a"], check=False, capture_output=True, text=True)
    return any(line.lower() in ("c.utf8", "c.utf-8") for line in result.stdout.splitlines())


def _is_running(settings: Settings, binaries: Path) -> bool:
    if not (_data_dir(settings) / "PG_VERSION").exists():
        return False
    result = subprocess.run(_as_server_user([str(binaries / "pg_ctl"), "status", "-D", str(_data_dir(settings))]),
                            check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return result.returncode == 0


def _start(settings: Settings, binaries: Path) -> None:
    log = _log_file(settings)
    log.touch()
    _give_to_server_user(log)
    data = _data_dir(settings)
    options = f"-c listen_addresses=127.0.0.1 -c port={port()} -c unix_socket_directories={data}"
    _say(f"starting PostgreSQL on 127.0.0.1:{port()} (log: {log})")
    _run(_as_server_user([str(binaries / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w", "-t", "60",
                          "-o", options]), "pg_ctl start", settings)


def url(settings: Settings, database: str = DATABASE) -> str:
    """The SQLAlchemy URL of ``database`` on the local server (which must have been initialised)."""
    password = _password_file(settings).read_text().strip()
    return f"postgresql+psycopg://{USER}:{password}@127.0.0.1:{port()}/{database}"


def create_database(settings: Settings, name: str) -> str:
    """Creates database ``name`` on the local server if it does not exist; returns its URL."""
    import psycopg

    password = _password_file(settings).read_text().strip()
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = psycopg.connect(host="127.0.0.1", port=port(), user=USER, password=password,
                                         dbname="postgres", autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    with connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
    return url(settings, name)


def drop_database(settings: Settings, name: str) -> None:
    """Drops database ``name`` on the local server (closing its connections)."""
    import psycopg

    password = _password_file(settings).read_text().strip()
    with psycopg.connect(host="127.0.0.1", port=port(), user=USER, password=password, dbname="postgres",
                         autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ensure_running(settings: Settings) -> str:
    """Installs, initialises and starts the local PostgreSQL server as needed; idempotent.

    Args:
        settings: ``settings.home`` holds the cluster.

    Returns:
        The ``postgresql+psycopg://`` URL of the database ``suibou``.

    Raises:
        PostgresError: PostgreSQL could not be installed or started.
    """
    with _locked(settings):
        binaries = find_binaries() or install()
        _initdb(settings, binaries)
        if not _is_running(settings, binaries):
            _start(settings, binaries)
    return create_database(settings, DATABASE)


def _users_dir(settings: Settings) -> Path:
    return _root(settings) / "users"


def _live_users(settings: Settings) -> list[Path]:
    """Marker files of processes that use the server and are still alive (stale markers are removed)."""
    alive = []
    for marker in _users_dir(settings).glob("*"):
        try:
            os.kill(int(marker.name), 0)
            alive.append(marker)
        except (ValueError, ProcessLookupError):
            marker.unlink(missing_ok=True)
        except PermissionError:
            alive.append(marker)
    return alive


def acquire(settings: Settings) -> tuple[str, bool]:
    """:func:`ensure_running`, registering this process as a user of the server.

    Returns:
        The URL, and whether the server ran before for a reason other than a
        registered user (then :func:`release` leaves it running).
    """
    with _locked(settings):
        outside = is_running(settings) and not _live_users(settings)
    url = ensure_running(settings)
    _users_dir(settings).mkdir(parents=True, exist_ok=True)
    (_users_dir(settings) / str(os.getpid())).touch()
    return url, outside


def release(settings: Settings, *, stop_when_unused: bool = True) -> None:
    """Unregisters this process; stops the server if no other live process uses it and ``stop_when_unused``."""
    (_users_dir(settings) / str(os.getpid())).unlink(missing_ok=True)
    with _locked(settings):
        unused = not _live_users(settings)
    if unused and stop_when_unused:
        stop(settings)


def is_running(settings: Settings) -> bool:
    binaries = find_binaries()
    return binaries is not None and _is_running(settings, binaries)


def stop(settings: Settings) -> None:
    """Stops the local server if it runs (a no-op otherwise)."""
    binaries = find_binaries()
    if binaries is None:
        return
    with _locked(settings):
        if _is_running(settings, binaries):
            _run(_as_server_user([str(binaries / "pg_ctl"), "stop", "-D", str(_data_dir(settings)), "-m", "fast",
                                  "-w", "-t", "60"]), "pg_ctl stop", settings)
            _say("PostgreSQL stopped")


def status(settings: Settings) -> str:
    """A one-line state for ``suibou infra status``."""
    if find_binaries() is None:
        return "not installed"
    if not (_data_dir(settings) / "PG_VERSION").exists():
        return "no cluster yet"
    return f"running on 127.0.0.1:{port()}" if is_running(settings) else "stopped"


__all__ = ["DEFAULT_PORT", "PostgresError", "acquire", "create_database", "release", "drop_database", "ensure_running",
           "find_binaries", "install", "is_running", "status", "stop", "url"]
