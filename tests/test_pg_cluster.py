"""The PostgreSQL test infrastructure itself: tests/pg_cluster.py and tests/pg_fixtures.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.pg_cluster import (
    PostgresCluster,
    PostgresStartError,
    PostgresUnavailable,
    create_database,
    drop_database,
    find_bindir,
)
from tests.pg_fixtures import PostgresServer, unavailable

REPO = Path(__file__).resolve().parent.parent

#: Host-based rules of pg_hba.conf (every type but "local", the Unix socket).
HOST_TYPES = {"host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"}


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, connect_timeout=5, autocommit=True)


def test_fresh_database_takes_a_query_over_tcp_on_localhost(postgres_url: str) -> None:
    dbname = conninfo_to_dict(postgres_url)["dbname"]
    assert dbname != "postgres"
    with _connect(postgres_url) as conn:
        row = conn.execute(
            "SELECT 1, current_database(), host(inet_server_addr()), inet_server_port()"
        ).fetchone()
    assert row is not None
    assert row[:3] == (1, dbname, "127.0.0.1")
    assert row[3] == int(conninfo_to_dict(postgres_url)["port"])


def test_drop_database_cuts_open_sessions(postgres_server: PostgresServer) -> None:
    url = create_database(postgres_server.url)
    name = conninfo_to_dict(url)["dbname"]
    with _connect(url) as held:
        held.execute("CREATE TABLE t (x int)")
        drop_database(postgres_server.url, url)  # would wait or fail without cutting `held`
    with _connect(postgres_server.url) as admin:
        rows = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchall()
    assert rows == []


def test_stop_refuses_connections_and_start_brings_back_the_same_url(
    own_postgres: PostgresCluster,
) -> None:
    url = own_postgres.url
    with _connect(url) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")

    own_postgres.stop()
    assert not own_postgres.running
    with pytest.raises(psycopg.OperationalError):
        _connect(url).close()

    own_postgres.start()
    assert own_postgres.url == url
    with _connect(url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]

    own_postgres.restart()
    with _connect(url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]


def test_only_127_0_0_1_is_let_in(own_postgres: PostgresCluster) -> None:
    # Connections from elsewhere are hard to make in a test; the rules are read instead:
    # the file's and the rules the running server loaded.
    host_lines = [
        line.split()
        for line in own_postgres.hba_path.read_text(encoding="utf-8").splitlines()
        if line.split() and not line.lstrip().startswith("#") and line.split()[0] != "local"
    ]
    assert host_lines == [["host", "all", "all", "127.0.0.1/32", "trust"]]
    with _connect(own_postgres.url) as conn:
        rules = conn.execute(
            "SELECT type, address, netmask, error FROM pg_hba_file_rules WHERE type <> 'local'"
        ).fetchall()
        listen = conn.execute("SHOW listen_addresses").fetchone()
    assert rules == [("host", "127.0.0.1", "255.255.255.255", None)]
    assert listen == ("127.0.0.1",)
    assert {rule[0] for rule in rules} <= HOST_TYPES


def test_close_removes_the_files_and_may_be_repeated(own_postgres: PostgresCluster) -> None:
    base = own_postgres.base_dir
    assert (base / "data" / "PG_VERSION").is_file()
    own_postgres.close()
    assert not base.exists()
    own_postgres.close()  # and the fixture closes it a third time


def test_a_start_error_shows_the_server_log() -> None:
    try:
        cluster = PostgresCluster(start=False)
    except PostgresUnavailable as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:
        unavailable(reason)
    with cluster:
        with (cluster.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("no_such_setting_at_all = 1\n")
        with pytest.raises(PostgresStartError, match="no_such_setting_at_all"):
            cluster.start()


def test_missing_binaries_say_how_to_get_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBDATA_PG_BIN", str(REPO / "tests"))  # no initdb in there
    with pytest.raises(PostgresUnavailable) as caught:
        find_bindir()
    assert "apt-get install -y postgresql" in str(caught.value)
    assert "IBDATA_TEST_POSTGRES" in str(caught.value)


def test_command_line_start_and_stop() -> None:
    # What .ci/run does, with the standard library only. Not tmp_path: pytest makes its
    # base 0700 for this user, and as root the server runs as `postgres`, which must
    # reach the directory.
    try:
        find_bindir()
    except PostgresUnavailable as exc:
        unavailable_reason = str(exc)
    else:
        unavailable_reason = ""
    if unavailable_reason:
        unavailable(unavailable_reason)
    base = Path(tempfile.mkdtemp(prefix="ibdata-pg-cli-"))
    try:
        command = [sys.executable, "-m", "tests.pg_cluster"]
        started = subprocess.run(
            [*command, "start", "--dir", str(base)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert started.returncode == 0, started.stderr
        lines = started.stdout.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("postgresql://postgres@127.0.0.1:")
        with _connect(lines[0]) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)

        stopped = subprocess.run(
            [*command, "stop", "--dir", str(base)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert stopped.returncode == 0, stopped.stderr
        assert list(base.iterdir()) == []
        with pytest.raises(psycopg.OperationalError):
            _connect(lines[0]).close()
    finally:
        subprocess.run(
            [sys.executable, "-m", "tests.pg_cluster", "stop", "--dir", str(base)],
            cwd=REPO,
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)
