"""The local PostgreSQL server: install if missing, initialise once, start, reuse, stop, start again."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from suibou.infra import postgres
from suibou.settings import Settings

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    # A cluster of its own on a port of its own: the session's shared server is not touched. Its folder is
    # outside pytest's private temporary folder, which the postgres system user could not enter.
    monkeypatch.setenv("SUIBOU_POSTGRES_PORT", str(_free_port()))
    home = Path(tempfile.mkdtemp(prefix="suibou-pg-test-"))
    home.chmod(0o755)
    yield Settings(home=home)
    postgres.stop(Settings(home=home))
    shutil.rmtree(home, ignore_errors=True)


def test_a_home_the_server_user_cannot_enter_gets_its_cluster_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root runs the server as another user")
    monkeypatch.setenv("SUIBOU_POSTGRES_PORT", str(_free_port()))
    tmp_path.parent.chmod(0o700)  # pytest's own temporary folders are private
    settings = Settings(home=tmp_path)
    try:
        url = postgres.ensure_running(settings)
        data = postgres._data_dir(settings)
        assert data.is_relative_to(postgres.FALLBACK_ROOT) and (data / "PG_VERSION").exists()
        with sa.create_engine(url).connect() as connection:
            assert connection.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        postgres.stop(settings)
        shutil.rmtree(postgres._server_dir(settings), ignore_errors=True)


def test_ensure_running_is_idempotent_and_survives_a_stop(settings: Settings) -> None:
    assert postgres.status(settings) == "no cluster yet"
    url = postgres.ensure_running(settings)
    try:
        assert url.startswith("postgresql+psycopg://suibou:") and url.endswith(f":{postgres.port()}/suibou")
        assert postgres.status(settings) == f"running on 127.0.0.1:{postgres.port()}"
        password_file = settings.home / "postgres" / "password"
        assert password_file.stat().st_mode & 0o777 == 0o600
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE kept (n INTEGER)"))
            connection.execute(sa.text("INSERT INTO kept VALUES (42)"))
        engine.dispose()
        assert postgres.ensure_running(settings) == url  # reused, not initialised again
        postgres.stop(settings)
        assert postgres.status(settings) == "stopped"
        assert postgres.ensure_running(settings) == url
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT n FROM kept")).scalar_one() == 42
        engine.dispose()
    finally:
        postgres.stop(settings)


def test_only_local_password_connections_are_accepted(settings: Settings) -> None:
    url = postgres.ensure_running(settings)
    try:
        wrong = sa.create_engine(url.replace("suibou:", "suibou:wrong", 1))
        with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
            wrong.connect()
        wrong.dispose()
        config = (settings.home / "postgres" / "data" / "postgresql.auto.conf").read_text()
        assert "listen_addresses" not in config  # given on the command line: 127.0.0.1 only
        with sa.create_engine(url).connect() as connection:
            assert connection.execute(sa.text("SHOW listen_addresses")).scalar_one() == "127.0.0.1"
    finally:
        postgres.stop(settings)


def test_stop_without_a_cluster_is_a_no_op(settings: Settings) -> None:
    postgres.stop(settings)
    assert postgres.status(settings) == "no cluster yet"


def test_binaries_are_found() -> None:
    found = postgres.find_binaries()
    assert found is not None and (found / "pg_ctl").exists() and (found / "initdb").exists()


def test_commands_run_as_the_postgres_user_under_root() -> None:
    command = postgres._as_server_user(["pg_ctl", "status"])
    if os.geteuid() == 0:
        assert command[:4] == ["runuser", "-u", "postgres", "--"]
    else:
        assert command == ["pg_ctl", "status"]
