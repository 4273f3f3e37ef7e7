"""A throwaway PostgreSQL server for the tests: initdb into a temporary directory, trust
authentication on 127.0.0.1 only, a free TCP port, fsync off.

Starting and stopping use only the standard library, so CI can start a server with the
system ``python3`` before the test command has created the virtual environment::

    python3 -m tests.pg_cluster start --dir DIR   # prints the server's URL, leaves it running
    python3 -m tests.pg_cluster stop --dir DIR    # stops it and empties DIR

Creating and dropping databases needs psycopg 3 (imported when called).

The binaries are looked up in this order: ``$IBDATA_PG_BIN``, ``pg_config --bindir``, the
newest ``/usr/lib/postgresql/*/bin`` (Debian, Ubuntu), ``initdb`` on ``PATH``. initdb
refuses to run as root, so as root the server runs as the ``postgres`` system user (or
``$IBDATA_PG_USER``).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "PostgresCluster",
    "PostgresStartError",
    "PostgresUnavailable",
    "create_database",
    "drop_database",
    "find_bindir",
]

#: How to get a server, said by every "unavailable" error.
HOW_TO_GET_POSTGRES = (
    "install PostgreSQL's server binaries (Debian/Ubuntu: apt-get install -y postgresql; "
    "or point IBDATA_PG_BIN at the directory holding initdb, pg_ctl and postgres), "
    "or set IBDATA_TEST_POSTGRES to the URL of a running server where the tests may "
    "create and drop databases, e.g. postgresql://postgres@127.0.0.1:5432/postgres"
)

#: The longest path a Unix socket may have (``sun_path`` is 108 bytes on Linux, with NUL).
_MAX_SOCKET_PATH = 107

_LOG_NAME = "server.log"
_DATA_NAME = "data"
_TOOLS = ("initdb", "pg_ctl", "postgres")


class PostgresUnavailable(RuntimeError):  # noqa: N818 (the name the fixtures and callers use)
    """No PostgreSQL server binaries (or no user to run them as) on this machine."""


class PostgresStartError(RuntimeError):
    """The binaries are there, but initdb or the server failed; the message has the log."""


def _has_tools(bindir: Path) -> bool:
    return all(os.access(bindir / tool, os.X_OK) for tool in _TOOLS)


def _version_key(path: str) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); "9.6" -> (9, 6); anything else sorts first.
    name = Path(path).parent.name
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (-1,)


def find_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Raises:
        PostgresUnavailable: none was found; the message says how to get them.
    """
    explicit = os.environ.get("IBDATA_PG_BIN")
    if explicit:
        bindir = Path(explicit)
        if _has_tools(bindir):
            return bindir
        raise PostgresUnavailable(
            f"IBDATA_PG_BIN={explicit} does not hold {', '.join(_TOOLS)}: {HOW_TO_GET_POSTGRES}"
        )
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
            if out and _has_tools(Path(out)):
                return Path(out)
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if _has_tools(Path(candidate)):
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb:
        # Resolve symlinks (/usr/local/bin/initdb -> .../15/bin/initdb) to find its siblings.
        bindir = Path(initdb).resolve().parent
        if _has_tools(bindir):
            return bindir
    raise PostgresUnavailable(f"no PostgreSQL server binaries found: {HOW_TO_GET_POSTGRES}")


def _server_user() -> pwd.struct_passwd | None:
    """The user to run initdb and the server as: None for "this process's user"."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("IBDATA_PG_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and initdb refuses root, but there is no {name!r} user to run "
            f"PostgreSQL as (create one, e.g. with apt-get install -y postgresql, or name "
            f"another with IBDATA_PG_USER); or set IBDATA_TEST_POSTGRES to the URL of a "
            f"running server"
        ) from None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _conf_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no server log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(the server log is empty)"


def _run(
    argv: list[str], user: pwd.struct_passwd | None, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool as ``user`` (None: as this process), output captured."""
    env = dict(os.environ)
    for var in ("PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE", "PGOPTIONS"):
        env.pop(var, None)
    env["LC_ALL"] = "C"
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stdout + result.stderr).strip()


def _empty_dir(path: Path) -> None:
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                child.unlink()


def _cleanup(
    bindir: Path, data: Path, user: pwd.struct_passwd | None, base: Path, own: bool
) -> None:
    """Stop the server (if running) and remove its files: the finalizer of a cluster."""
    if (data / "postmaster.pid").exists():
        _run([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w"], user, base)
    if own:
        shutil.rmtree(base, ignore_errors=True)
    elif base.is_dir():
        _empty_dir(base)


class PostgresCluster:
    """A PostgreSQL server of its own, in a temporary directory; a context manager.

    ``PostgresCluster()`` runs initdb and starts the server; ``url`` is the superuser's URL
    of the ``postgres`` database over TCP on 127.0.0.1. ``stop()`` and ``start()`` take the
    server down and bring it back on the same port with the same data; ``close()`` stops it
    and removes its files.

    Args:
        base_dir: where the data, log and socket go. None: a new temporary directory,
            removed by ``close()``. Given: a directory that must be empty (it is created
            if missing); ``close()`` empties it and leaves it.
        start: start the server at once (the default); else call ``start()``.
    """

    def __init__(self, base_dir: str | os.PathLike[str] | None = None, *, start: bool = True):
        self.bindir = find_bindir()
        self._user = _server_user()
        if base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="ibdata-pg-"))
            own = True
        else:
            self.base_dir = Path(base_dir).absolute()
            self.base_dir.mkdir(parents=True, exist_ok=True)
            if any(self.base_dir.iterdir()):
                raise ValueError(f"{self.base_dir} is not empty")
            own = False
        self.data_dir = self.base_dir / _DATA_NAME
        self.log_path = self.base_dir / _LOG_NAME
        self.port = free_port()
        self._closed = False
        self._finalizer = weakref.finalize(
            self, _cleanup, self.bindir, self.data_dir, self._user, self.base_dir, own
        )
        try:
            self._initdb()
            if start:
                self._first_start()
        except BaseException:
            self.close()
            raise

    # -- URLs -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The superuser's URL of the ``postgres`` database, over TCP on 127.0.0.1."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def hba_path(self) -> Path:
        return self.data_dir / "pg_hba.conf"

    # -- set-up -----------------------------------------------------------------------------

    def _initdb(self) -> None:
        if self._user is not None:
            # The server's user must own the directory (initdb wants 0700 on what it makes).
            os.chown(self.base_dir, self._user.pw_uid, self._user.pw_gid)
        self.base_dir.chmod(0o700)
        result = _run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            self._user,
            self.base_dir,
        )
        if result.returncode != 0:
            hint = ""
            if self._user is not None:
                hint = (
                    f"\n(initdb ran as {self._user.pw_name!r}: every directory above "
                    f"{self.base_dir} must be traversable by that user)"
                )
            raise PostgresStartError(
                f"initdb failed (exit {result.returncode}) in {self.data_dir}:\n"
                f"{_output(result)}{hint}"
            )
        self.hba_path.write_text(
            "# Written by tests/pg_cluster.py: trust, and only from this machine's 127.0.0.1.\n"
            "# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
            "local   all       all                 trust\n"
            "host    all       all   127.0.0.1/32  trust\n",
            encoding="utf-8",
        )
        self._write_port(self.port)

    def _write_port(self, port: int) -> None:
        # Later settings win: appending again on a port retry overrides the first choice.
        socket_dir = str(self.base_dir)
        if len(f"{socket_dir}/.s.PGSQL.{port}") > _MAX_SOCKET_PATH:
            socket_dir = ""  # too long for a Unix socket: TCP only
        settings = {
            "listen_addresses": _conf_string("127.0.0.1"),
            "port": str(port),
            "unix_socket_directories": _conf_string(socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# tests/pg_cluster.py\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self.port = port

    def _first_start(self) -> None:
        # The port was free when chosen; another process may take it before the server
        # binds it. Then choose another, a few times.
        for attempt in range(3):
            try:
                self.start()
            except PostgresStartError as exc:
                if attempt == 2 or "Address already in use" not in str(exc):
                    raise
                self._write_port(free_port())
            else:
                return

    # -- life cycle -------------------------------------------------------------------------

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run([str(self.bindir / "pg_ctl"), *args], self._user, self.base_dir)

    def start(self) -> None:
        """Start the server (again) on the same port with the same data; wait until ready."""
        if self._closed:
            raise RuntimeError("the cluster is closed")
        started = time.monotonic()
        result = self._pg_ctl(
            "start", "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", "60"
        )
        if result.returncode != 0:
            raise PostgresStartError(
                f"pg_ctl start failed (exit {result.returncode}) after "
                f"{time.monotonic() - started:.1f} s, port {self.port}, data {self.data_dir}:\n"
                f"{_output(result)}\n--- server log ({self.log_path}), last lines:\n"
                f"{_tail(self.log_path)}"
            )

    def stop(self) -> None:
        """Stop the server (fast shutdown: connections are cut, then it exits); wait."""
        result = self._pg_ctl("stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60")
        if result.returncode != 0:
            raise PostgresStartError(
                f"pg_ctl stop failed (exit {result.returncode}):\n{_output(result)}\n"
                f"--- server log, last lines:\n{_tail(self.log_path)}"
            )

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        result = self._pg_ctl("status", "-D", str(self.data_dir))
        return result.returncode == 0

    def close(self) -> None:
        """Stop the server if it runs and remove its files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(PostgresStartError):
                self.stop()
        self._finalizer()  # removes the files (and stops, had stop() failed)

    def detach(self) -> None:
        """Leave the server running and its files in place when this object goes away."""
        self._finalizer.detach()

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresCluster({self.url!r}, base_dir={str(self.base_dir)!r})"

    # -- databases (psycopg) ----------------------------------------------------------------

    def create_database(self) -> str:
        """A new, uniquely named, empty database; its URL."""
        return create_database(self.url)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (made by ``create_database``), cutting its sessions."""
        drop_database(self.url, url)


def _with_dbname(admin_url: str, dbname: str) -> str:
    parts = urlsplit(admin_url)
    if parts.scheme in ("postgres", "postgresql"):
        return urlunsplit(parts._replace(path="/" + dbname))
    from psycopg.conninfo import make_conninfo

    return make_conninfo(admin_url, dbname=dbname)


def create_database(admin_url: str, prefix: str = "ibdata_test") -> str:
    """Create a new, uniquely named database on the server of ``admin_url``; its URL."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_dbname(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database ``url`` names, on the server of ``admin_url``; its sessions are cut."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(url).get("dbname")
    if not isinstance(name, str) or not name or name == conninfo_to_dict(admin_url).get("dbname"):
        raise ValueError(f"{url!r} names no database that may be dropped")
    ident = sql.Identifier(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.info.server_version >= 130000:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        else:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))


# -- command line ---------------------------------------------------------------------------


def _stop_dir(base: Path) -> None:
    data = base / _DATA_NAME
    if (data / "postmaster.pid").exists():
        user = _server_user()
        pg_ctl = str(find_bindir() / "pg_ctl")
        result = _run([pg_ctl, "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60"], user, base)
        if result.returncode != 0:
            print(_output(result), file=sys.stderr)
            _run([pg_ctl, "stop", "-D", str(data), "-m", "immediate", "-w"], user, base)
    if base.is_dir():
        _empty_dir(base)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.pg_cluster",
        description="Start or stop a throwaway PostgreSQL server for the tests.",
    )
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument(
        "--dir", required=True, type=Path, help="where the server's files live (start: empty)"
    )
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            cluster = PostgresCluster(args.dir)
            cluster.detach()
            print(cluster.url, flush=True)
        else:
            _stop_dir(args.dir.absolute())
    except (PostgresUnavailable, PostgresStartError, ValueError) as exc:
        print(f"pg_cluster {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
