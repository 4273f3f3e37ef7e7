"""The PostgreSQL backend of the bar store: one store (and one pacing ledger) for every host
of a team.

>>> from ibdata.postgres import PostgresStore  # doctest: +SKIP
>>> store = PostgresStore("postgresql://ibdata@db.internal/ibdata")  # doctest: +SKIP

It keeps the same tables as the SQLite file (:mod:`ibdata.cache`), with the same checksums
on every row, in a schema of their own named ``ibdata``, so that it can live in a database
that other programs use too: ibdata never touches a table outside it. Its clock, for the
pacing ledger and leases, is the server's (``clock_timestamp()``), so hosts whose clocks
disagree still agree on when a request was sent. Locks are transaction-scoped advisory
locks: one per TWS login around each pacing decision, one per series around each write.

It needs psycopg 3 (``pip install "ibdata[postgres]"``). See :doc:`/sharing` for pointing a
team at one database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import threading
import urllib.parse
import warnings
from collections.abc import Callable
from typing import Any, ClassVar, Final, TypeVar

from ibdata._sqlstore import DamagedRow, Queries, SqlStore
from ibdata.store import CacheInfo, CacheWarning, StoreError, _timeout_seconds, is_url

__all__ = ["PostgresStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The schema ibdata's tables live in.
SCHEMA: Final = "ibdata"

_QUERIES: Final = Queries(as_bytes=lambda column: column)

_TABLES: Final = (
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE series (
        id bigserial PRIMARY KEY,
        con_id bigint NOT NULL,
        what_to_show text NOT NULL,
        bar_size text NOT NULL,
        use_rth integer NOT NULL,
        UNIQUE (con_id, what_to_show, bar_size, use_rth)
    )""",
    """CREATE TABLE blocks (
        series_id bigint NOT NULL,
        first double precision NOT NULL,
        last double precision NOT NULL,
        n integer NOT NULL,
        data bytea NOT NULL,
        crc bigint NOT NULL,
        PRIMARY KEY (series_id, first)
    )""",
    """CREATE TABLE coverage (
        series_id bigint NOT NULL,
        start double precision NOT NULL,
        stop double precision NOT NULL,
        crc bigint NOT NULL,
        PRIMARY KEY (series_id, start)
    )""",
    """CREATE TABLE heads (
        con_id bigint NOT NULL,
        what_to_show text NOT NULL,
        use_rth integer NOT NULL,
        head double precision NOT NULL,
        crc bigint NOT NULL,
        PRIMARY KEY (con_id, what_to_show, use_rth)
    )""",
    """CREATE TABLE ledger (
        login text NOT NULL,
        at double precision NOT NULL,
        request text NOT NULL,
        holder text NOT NULL,
        lease text NOT NULL
    )""",
    "CREATE INDEX ledger_login_at ON ledger (login, at)",
    """CREATE TABLE leases (
        id text PRIMARY KEY,
        login text NOT NULL,
        kind text NOT NULL,
        series text NOT NULL,
        lo double precision NOT NULL,
        hi double precision NOT NULL,
        holder text NOT NULL,
        expires double precision NOT NULL
    )""",
)


def redact(url: str) -> str:
    """``url`` without its password (and without a ``password=`` query parameter)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = "&".join(
        item for item in parts.query.split("&") if item and not item.startswith("password=")
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name``, the same on every host."""
    digest = hashlib.blake2b(f"ibdata:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _Tx:
    """A psycopg connection seen through ``execute(sql, params)`` with ``?`` placeholders,
    as the shared queries are written."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), params)


class PostgresStore(SqlStore):
    """Bars, coverage, head timestamps, the shared pacing ledger and leases in PostgreSQL:
    the backend of :class:`~ibdata.store.BarStore` for several hosts.

    Opening connects, and creates the ``ibdata`` schema and its tables when the database
    has none. It refuses, with :class:`~ibdata.store.StoreError` and without writing
    anything, a database whose ``ibdata`` schema was not made by ibdata, or was made by a
    newer ibdata (a higher schema version). Rows failing their checksum are found when read:
    their series is dropped (its bars are fetched again when next asked for) and a
    :class:`~ibdata.store.CacheWarning` says so.

    One store holds one connection guarded by a lock: any number of threads may call it
    (their calls run one after another). Any number of stores, on any number of hosts, may
    use the same database at once. When the server goes away, each call raises
    :class:`~ibdata.store.StoreError` at once, and the next call after it comes back
    reconnects; the history engine then carries on without the store, as with any store
    failure.

    Args:
        url: A libpq URL, ``postgresql://user:password@host:port/database`` (``postgres://``
            too; any libpq parameter may be given in the query string, such as
            ``?sslmode=require``). Never shown with its password.
        timeout: How long connecting, and waiting for a lock another client holds, may take,
            in seconds or as a :class:`~datetime.timedelta`.
        lease_seconds: How long a lease this store takes outlives its process if that dies.

    Raises:
        TypeError: ``url`` is not a string, or ``timeout`` or ``lease_seconds`` not a
            number of seconds.
        ValueError: ``url`` is not a ``postgresql://`` URL, or a number is out of range.
        StoreError: psycopg is not installed; the server cannot be reached or refuses the
            credentials; the database cannot be used (see above).
    """

    #: The version of the layout this ibdata reads and writes.
    SCHEMA_VERSION: ClassVar[int] = 4

    _queries = _QUERIES
    backend = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        timeout: float | dt.timedelta = 30.0,
        lease_seconds: float = 30.0,
    ) -> None:
        super().__init__(lease_seconds=lease_seconds)
        if not isinstance(url, str):
            raise TypeError(f"url must be a postgresql:// URL string, got {url!r}")
        if not is_url(url):
            raise ValueError(
                f"url must start with postgresql:// or postgres://, got {redact(url)!r}"
            )
        self._url = url
        self._location = redact(url)
        self._timeout = _timeout_seconds(timeout)
        self._lock = threading.RLock()
        self._conn: Any = None
        self._closed = False
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError(
                f"the store {self._location} is PostgreSQL, which needs psycopg 3: "
                'pip install "ibdata[postgres]"'
            ) from exc
        self._psycopg = psycopg
        with self._lock:
            self._conn = self._connect()
            try:
                self._prepare(self._conn)
            except BaseException:
                self._conn.close()
                self._conn = None
                raise

    # ------------------------------------------------------------------ connecting
    def _connect(self) -> Any:
        psycopg = self._psycopg
        try:
            conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(1, round(min(self._timeout, 30.0))),
                application_name="ibdata",
            )
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to PostgreSQL at {self._location}: {_first_line(exc)}"
            ) from exc
        try:
            millis = max(1, round(self._timeout * 1000))
            conn.execute(f"SET lock_timeout = {millis}")
            conn.execute(f"SET search_path TO {SCHEMA}")
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(
                f"cannot use PostgreSQL at {self._location}: {_first_line(exc)}"
            ) from exc
        return conn

    def _prepare(self, conn: Any) -> None:
        """Check the schema, creating it in a database without one; raises StoreError for a
        database ibdata must not write to."""
        psycopg = self._psycopg
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("schema"),))
                problem = self._inspect(conn)
                if problem == "empty":
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
                    for statement in _TABLES:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO meta VALUES ('application', 'ibdata'), ('schema_version', %s)",
                        (str(self.SCHEMA_VERSION),),
                    )
                    logger.info("created the ibdata store in %s", self._location)
                elif problem:
                    raise StoreError(f"the store {self._location} {problem}; nothing was changed")
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot use PostgreSQL at {self._location}: {_first_line(exc)}"
            ) from exc

    def _inspect(self, conn: Any) -> str:
        """'' when the schema is ibdata's of this version, 'empty' when there is none, else
        what is wrong."""
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v') ORDER BY 1",
                (SCHEMA,),
            )
        ]
        if not tables:
            return "empty"
        if "meta" not in tables:
            listed = ", ".join(tables)
            return f"has a schema {SCHEMA!r} that ibdata did not write (tables: {listed})"
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("application") != "ibdata":
            return f"has a schema {SCHEMA!r} that ibdata did not write (a meta table not ibdata's)"
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            return f"has an unreadable schema version {meta.get('schema_version')!r}"
        if version > self.SCHEMA_VERSION:
            return (
                f"has schema version {version}, written by a newer ibdata "
                f"(this one reads version {self.SCHEMA_VERSION})"
            )
        if version != self.SCHEMA_VERSION:
            return f"has the unsupported schema version {version}"
        return ""

    # ------------------------------------------------------------------ running
    def _run(self, work: Callable[[Any], T], *, write: bool) -> T:
        """Run ``work`` in one transaction; a lost server raises StoreError (the next call
        reconnects), a damaged row drops its series and runs ``work`` again."""
        psycopg = self._psycopg
        with self._lock:
            for attempt in range(2):
                if self._closed:
                    raise ValueError(f"the store {self._location} is closed")
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                conn = self._conn
                try:
                    with conn.transaction():
                        return work(_Tx(conn))
                except DamagedRow as exc:
                    if attempt:
                        raise StoreError(f"the store {self._location} is damaged: {exc}") from exc
                    self._drop_damaged(exc)
                except psycopg.errors.LockNotAvailable as exc:
                    raise TimeoutError(
                        f"the store {self._location} stayed locked by another client for "
                        f"{self._timeout:g} s"
                    ) from exc
                except psycopg.Error as exc:
                    if conn.closed or isinstance(exc, psycopg.OperationalError):
                        with contextlib.suppress(psycopg.Error):
                            conn.close()
                        self._conn = None
                    raise StoreError(
                        f"PostgreSQL at {self._location} failed: {_first_line(exc)}"
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _drop_damaged(self, exc: DamagedRow) -> None:
        """Delete what a damaged row belongs to (its series; or the head timestamp) and
        warn."""
        conn = self._conn
        with conn.transaction():
            if exc.table == "heads":
                con_id, what, rth = exc.row[0], exc.row[1], exc.row[2]
                if isinstance(what, bytes):
                    what = what.decode(errors="replace")
                conn.execute(
                    "DELETE FROM heads WHERE con_id = %s AND what_to_show = %s AND use_rth = %s",
                    (con_id, what, rth),
                )
                lost = "a head timestamp"
            else:
                ids = conn.execute(
                    "SELECT id FROM series WHERE con_id = %s AND what_to_show = %s "
                    "AND bar_size = %s AND use_rth = %s",
                    exc.series,
                ).fetchall()
                for (series_id,) in ids:
                    conn.execute("DELETE FROM blocks WHERE series_id = %s", (series_id,))
                    conn.execute("DELETE FROM coverage WHERE series_id = %s", (series_id,))
                lost = f"the series {'/'.join(map(str, exc.series))}"
        message = f"ibdata store {self._location}: {exc}; dropped {lost}, to be fetched again"
        logger.info("%s", message)
        warnings.warn(CacheWarning(message), stacklevel=5)

    def _now(self, conn: Any) -> float:
        """The server's clock: one clock for every host."""
        return float(
            conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0]
        )

    def _serialize(self, conn: Any, name: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (lock_key(name),))

    # ------------------------------------------------------------------ public
    @property
    def location(self) -> str:
        """The URL, without its password."""
        return self._location

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def info(self) -> CacheInfo:
        """A summary of the store: the size of its tables and how much they hold.

        Returns:
            A :class:`~ibdata.store.CacheInfo` (``path`` None).

        Raises:
            ValueError: The store is closed.
            StoreError: The server cannot be reached.
        """

        def work(conn: Any) -> CacheInfo:
            version = conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()[0]
            size = conn.execute(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = ? AND c.relkind = 'r'",
                (SCHEMA,),
            ).fetchone()[0]
            return self._info(conn, path=None, version=int(version), size=int(size))

        return self._run(work, write=False)

    def clear(self) -> None:
        """Delete all bars, covered intervals and head timestamps; the ledger and leases
        stay (other clients may be using them).

        Raises:
            ValueError: The store is closed.
            StoreError: The server cannot be reached.
        """
        self._run(self._clear, write=True)
        logger.info("cleared the ibdata store %s", self._location)

    def close(self) -> None:
        """Close the connection, releasing the leases this store holds. Calling it again
        does nothing."""
        if not self._closed:
            self._stop_leases()
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def __enter__(self) -> PostgresStore:
        """Return the store itself."""
        return self

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<PostgresStore {self._location!r} {state}>"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
