"""The SQLite backend of the bar store: final bars and the intervals they cover, in one file.

Pass a path (or a :class:`BarCache`) as ``Client(cache=...)`` and every range of bars the
client has fetched once is read from disk afterwards, so IB's pacing budget is never spent
twice on the same bars. The cache is a single SQLite file in WAL mode; used directly, it
answers which parts of a range are missing, and stores and loads columns of bars:

>>> import tempfile
>>> from ibdata.cache import BarCache, CachedBars, SeriesKey
>>> folder = tempfile.TemporaryDirectory()
>>> with BarCache(f"{folder.name}/bars.sqlite") as cache:
...     key = SeriesKey(265598, "TRADES", "1 min", use_rth=False)
...     t0 = 1_741_791_600.0  # 2025-03-12 15:00 UTC
...     print(cache.missing(key, t0, t0 + 180))
...     minutes = [t0, t0 + 60, t0 + 120]
...     prices = [100.0, 101.0, 102.0]
...     volume = [500.0, 600.0, 700.0]
...     bars = CachedBars(minutes, prices, prices, prices, prices, volume, prices, [5, 6, 7])
...     cache.store(key, t0, t0 + 180, bars)  # the bars of [t0, t0 + 180), all of them
...     print(cache.missing(key, t0, t0 + 180), list(cache.load(key, t0 + 60, t0 + 180).close))
[(1741791600.0, 1741791780.0)]
3
[] [101.0, 102.0]
>>> folder.cleanup()

What is stored:

* Bars are grouped in series, one per :class:`SeriesKey` (contract id, what-to-show, bar
  size, regular trading hours or not).
* Each series records the half-open intervals ``[start, end)`` it *covers*: intervals whose
  bars are all in the cache, including intervals that hold no bar at all (a weekend, a
  holiday), so that nothing is ever requested twice. :meth:`BarCache.missing` answers which
  parts of a range still have to be fetched.
* Only final bars belong here: the history engine decides which bars are final (a bar still
  forming, or today's daily bar, is not) and stores only those.
* The cache also remembers each contract's *head timestamp*, the earliest time IB has data
  for (:meth:`BarCache.head`).

Times are plain floats: seconds since the epoch (UTC), compared exactly as given, never
rounded. Intraday bars are keyed by their start; for daily, weekly and monthly bars the
engine stores midnight UTC of the session date.

Safety:

* Many threads may share one :class:`BarCache` (its calls then run one at a time), and
  several :class:`BarCache` objects, in one process or in many, may use the same file at
  the same time: writes wait for each other (up to ``timeout`` seconds), reads never wait
  for another connection's writes. Processes sharing the file share one pacing ledger per
  TWS login and lease chunks to each other (:doc:`/sharing`).
* Each :meth:`BarCache.store` is one transaction: its bars and its covered interval appear
  together or not at all, so a download interrupted by an exception, Ctrl-C or even a
  killed process keeps every chunk stored before it, and never a partial chunk.
* Every row (a block of bars, a covered interval, a head timestamp) is stored with a
  checksum (CRC-32) of its contents and its series, checked whenever it is read: SQLite
  keeps no checksums of its own, so without them a page of bars zeroed by a failing disk
  would read back as bars with zero prices or counts.
* A file that is not a readable ibdata cache (damaged, another program's database, or
  written by a newer ibdata) is never an error: it is renamed to
  ``<name>.corrupt-<UTC timestamp>`` and kept for inspection, a :class:`CacheWarning` says
  so, and an empty cache takes its place.

The file has a schema version (:attr:`BarCache.SCHEMA_VERSION`), stored in SQLite's
``user_version``; the file is marked as an ibdata cache through SQLite's
``application_id``. Files of versions 2 (before checksums) and 3 (before the shared pacing
ledger) are upgraded in place when opened, keeping their bars. The interface is
:class:`ibdata.store.BarStore`; :class:`ibdata.postgres.PostgresStore` is the other backend.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import os
import sqlite3
import sys
import threading
import time as _time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, Final, Literal, TypeVar

from ibdata._sqlstore import (
    BAR_TABLES,
    SHARING_TABLES,
    DamagedRow,
    Queries,
    SqlStore,
    crc,
    damage,
)
from ibdata.store import (
    CachedBars,
    CacheInfo,
    CacheWarning,
    SeriesKey,
    _timeout_seconds,
)

__all__ = ["BarCache", "CacheInfo", "CacheWarning", "CachedBars", "SeriesKey"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Marks a SQLite file as an ibdata cache (``PRAGMA application_id``): ASCII "ibdC".
_APPLICATION_ID: Final = 0x69626443

_QUERIES: Final = Queries(as_bytes=lambda column: f"CAST({column} AS BLOB)")


# Every row of blocks, coverage and heads ends with ``crc`` (see ibdata._sqlstore). SQLite
# checks the structure of its file but keeps no checksums of what it stores.
_BAR_SCHEMA: Final = (
    """CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        con_id INTEGER NOT NULL,
        what_to_show TEXT NOT NULL,
        bar_size TEXT NOT NULL,
        use_rth INTEGER NOT NULL,
        UNIQUE (con_id, what_to_show, bar_size, use_rth)
    )""",
    # One row per stored run of bars: its eight columns packed in one blob (little-endian
    # float64 for time, open, high, low, close, volume, wap; int64 for count). Runs of a
    # series never overlap in time, so loading is reading a few blobs in order.
    """CREATE TABLE blocks (
        series_id INTEGER NOT NULL,
        first REAL NOT NULL,
        last REAL NOT NULL,
        n INTEGER NOT NULL,
        data BLOB NOT NULL,
        crc INTEGER NOT NULL,
        PRIMARY KEY (series_id, first)
    ) WITHOUT ROWID""",
    """CREATE TABLE coverage (
        series_id INTEGER NOT NULL,
        start REAL NOT NULL,
        stop REAL NOT NULL,
        crc INTEGER NOT NULL,
        PRIMARY KEY (series_id, start)
    ) WITHOUT ROWID""",
    """CREATE TABLE heads (
        con_id INTEGER NOT NULL,
        what_to_show TEXT NOT NULL,
        use_rth INTEGER NOT NULL,
        head REAL NOT NULL,
        crc INTEGER NOT NULL,
        PRIMARY KEY (con_id, what_to_show, use_rth)
    ) WITHOUT ROWID""",
)

_SHARING_SCHEMA: Final = (
    # The shared pacing ledger: one row per request a pacing rule counts, per TWS login,
    # at the time it was sent (first the time it was admitted; ``lease`` names it).
    """CREATE TABLE ledger (
        login TEXT NOT NULL,
        at REAL NOT NULL,
        request TEXT NOT NULL,
        holder TEXT NOT NULL,
        lease TEXT NOT NULL
    )""",
    "CREATE INDEX ledger_login_at ON ledger (login, at)",
    # Open-request leases (kind 'open', per login) and chunk leases (kind 'chunk', per
    # series): live while expires is ahead of the clock.
    """CREATE TABLE leases (
        id TEXT PRIMARY KEY,
        login TEXT NOT NULL,
        kind TEXT NOT NULL,
        series TEXT NOT NULL,
        lo REAL NOT NULL,
        hi REAL NOT NULL,
        holder TEXT NOT NULL,
        expires REAL NOT NULL
    )""",
)


# SQLite's primary result codes (the low byte of an extended code).
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_SQLITE_CORRUPT: Final = 11
_SQLITE_NOTADB: Final = 26


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    return None if code is None else int(code) & 0xFF


def _is_busy(exc: sqlite3.Error) -> bool:
    code = _code(exc)
    if code is not None:
        return code in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _is_corrupt(exc: sqlite3.Error) -> bool:
    if isinstance(exc, DamagedRow):
        return True
    code = _code(exc)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (POSIX), so one process rebuilds at a time."""
    if sys.platform == "win32":  # Windows refuses to rename an open file anyway
        yield
        return
    import fcntl

    with open(lock_path, "ab") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


_State = Literal["ok", "old", "empty", "bad"]

#: The schema version before blocks had checksums; such a file is upgraded when opened.
_UNCHECKED_VERSION: Final = 2
#: The schema version before the shared pacing ledger and leases; upgraded when opened.
_UNSHARED_VERSION: Final = 3


def _inspect(
    conn: sqlite3.Connection, *, full: bool, checksums: bool = False
) -> tuple[_State, str]:
    """Whether the open file is a usable cache, an empty file, or something else (and why).

    ``full`` adds SQLite's check and the size of every block (cheap: no block is read);
    ``checksums`` reads every row of blocks, coverage and heads to check its checksum, as
    reads do for the rows they meet.
    """
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    if app_id == 0 and version == 0 and not names:
        return "empty", ""
    if app_id != _APPLICATION_ID:
        listed = ", ".join(sorted(n for n in names if not n.startswith("sqlite_")))
        return "bad", f"is not an ibdata cache (a SQLite database with tables: {listed})"
    if version > BarCache.SCHEMA_VERSION:
        return "bad", (
            f"has schema version {version}, written by a newer ibdata "
            f"(this one reads version {BarCache.SCHEMA_VERSION})"
        )
    if version not in (_UNCHECKED_VERSION, _UNSHARED_VERSION, BarCache.SCHEMA_VERSION):
        return "bad", f"has the unsupported schema version {version}"
    tables = set(BAR_TABLES) | (
        set(SHARING_TABLES) if version >= BarCache.SCHEMA_VERSION else set()
    )
    if not names >= tables:
        return "bad", f"lacks the tables {', '.join(sorted(tables - names))}"
    if full:
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            return "bad", f"failed SQLite's integrity check ({rows[0][0]})"
        # damage SQLite cannot see: a block whose row is not what was written
        block = conn.execute(
            "SELECT n, length(data) FROM blocks WHERE length(data) != 64 * n LIMIT 1"
        ).fetchone()
        if block is not None:
            return "bad", f"is damaged (a block of {block[0]} bars holds {block[1]} bytes)"
        if checksums and version != _UNCHECKED_VERSION:
            for table in _QUERIES.fields:
                keyed = 0 if table == "heads" else 4  # the series key's fields
                for row in conn.execute(_QUERIES.scan(table)):
                    problem = damage(table, row[:keyed], row[keyed:])
                    if problem:
                        return "bad", f"is damaged ({problem})"
    return "old" if version < BarCache.SCHEMA_VERSION else "ok", ""


# --------------------------------------------------------------------------- the cache
class BarCache(SqlStore):
    """Final bars and the intervals they cover, in one SQLite file shared by all users: the
    SQLite backend of :class:`~ibdata.store.BarStore`.

    Opening creates the file (and its parent directories) when it does not exist, switches
    it to WAL mode and checks it (SQLite's ``quick_check`` and the size of every stored
    block). A file that is damaged, belongs to another program or has a newer schema
    version is renamed to ``<name>.corrupt-<UTC timestamp>``, a :class:`CacheWarning` is
    issued, and a new, empty cache is created in its place; the same happens if the file is
    found damaged later, while it is in use. A lock file ``<name>.lock`` is created next to
    it when that happens, so that processes rebuild it one at a time.

    Every stored row (bars, covered intervals, head timestamps) carries a checksum, checked
    each time it is read, so damage SQLite cannot see (a page of bars zeroed on disk) is
    found before anything of the row is returned. A file of the schema version before
    checksums (2) gets them when opened, and one before the shared ledger (3) its tables,
    keeping its bars.

    One :class:`BarCache` holds one SQLite connection guarded by a lock: any number of
    threads may call it at once (their calls run one after another). Any number of
    :class:`BarCache` objects, in this process or others, may open the same file: each
    write is a transaction that waits up to ``timeout`` seconds for the others' to finish,
    and reads see a consistent snapshot without waiting. Open a cache after ``fork()``, not
    before.

    Use it as a context manager, or call :meth:`close`.

    Args:
        path: The cache file, such as ``"~/.cache/ibdata/bars.sqlite"`` (``~`` is
            expanded).
        timeout: How long a call waits for other connections' writes before giving up, in
            seconds or as a :class:`~datetime.timedelta`.
        lease_seconds: How long a lease this cache takes (an open request, a chunk being
            fetched) outlives its process if that dies (see :doc:`/sharing`).

    Raises:
        TypeError: ``path`` is not a path, or ``timeout`` or ``lease_seconds`` not a
            number of seconds.
        ValueError: ``timeout`` is negative or not finite, or ``lease_seconds`` is outside
            0.1 to a million.
        TimeoutError: The file stayed locked by another connection for ``timeout`` seconds.
        OSError: The parent directory cannot be created, or a broken file cannot be moved
            aside.
        sqlite3.Error: SQLite cannot open or write the file (permissions, a full disk).
    """

    #: The version of the file layout this ibdata reads and writes.
    SCHEMA_VERSION: ClassVar[int] = 4

    _queries = _QUERIES
    backend = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float | dt.timedelta = 30.0,
        lease_seconds: float = 30.0,
    ) -> None:
        super().__init__(lease_seconds=lease_seconds)
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or a path, got {path!r}")
        self._path = Path(os.fspath(path)).expanduser().absolute()
        self._timeout = _timeout_seconds(timeout)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._open(stacklevel=4)

    # ------------------------------------------------------------------ opening
    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )

    def _open(self, *, stacklevel: int) -> sqlite3.Connection:
        """A connection to a usable cache file, moving a broken file aside first."""
        for _ in range(5):
            conn = self._connect()
            try:
                problem = self._retry(functools.partial(self._prepare, conn))
            except BaseException:
                conn.close()
                raise
            if problem is None:
                return conn
            conn.close()
            self._set_aside(stacklevel=stacklevel)
        raise OSError(f"cannot make {self._path} a usable ibdata cache")

    def _prepare(self, conn: sqlite3.Connection) -> str | None:
        """Check the file, create the schema in an empty one; the problem, if unusable."""
        try:
            state, problem = _inspect(conn, full=True)
            if state == "bad":
                return problem
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("cache %s: SQLite kept journal mode %r, not WAL", self._path, mode)
            conn.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL
            if state != "ok":
                return self._create(conn)
        except sqlite3.DatabaseError as exc:
            if _is_corrupt(exc):
                return f"is not a readable SQLite database ({exc})"
            raise
        return None

    def _create(self, conn: sqlite3.Connection) -> str | None:
        """Create the schema in an empty file, or upgrade a file of an older schema version;
        the problem, if another process made the file unusable."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            state, problem = _inspect(conn, full=False)  # another process may have won
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if state == "empty":
                for statement in (*_BAR_SCHEMA, *_SHARING_SCHEMA):
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                logger.info("created the bar cache %s", self._path)
            elif state == "old":
                if version == _UNCHECKED_VERSION:
                    self._add_checksums(conn)
                for statement in _SHARING_SCHEMA:
                    conn.execute(statement)
                logger.info(
                    "upgraded the bar cache %s to schema version %d",
                    self._path,
                    self.SCHEMA_VERSION,
                )
            if state in ("empty", "old"):
                conn.execute(f"PRAGMA user_version = {self.SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        return problem if state == "bad" else None

    def _add_checksums(self, conn: sqlite3.Connection) -> None:
        """Upgrade a file of the schema version before checksums, in its transaction."""
        primary = {
            "blocks": ("series_id", "first"),
            "coverage": ("series_id", "start"),
            "heads": ("con_id", "what_to_show", "use_rth"),
        }
        for table, fields in _QUERIES.fields.items():
            conn.execute(f"ALTER TABLE {table} ADD COLUMN crc INTEGER NOT NULL DEFAULT 0")
            key = primary[table]
            # the checked fields (series key included), crc, then the primary key as stored
            n = len(fields) - 1 + (0 if table == "heads" else 4)
            query = _QUERIES.scan(table, *(f"{table}.{column}" for column in key))
            sums = [(crc(*row[:n]), *row[n + 1 :]) for row in conn.execute(query)]
            where = " AND ".join(f"{column} = ?" for column in key)
            conn.executemany(f"UPDATE {table} SET crc = ? WHERE {where}", sums)
        logger.info("added checksums to the bar cache %s", self._path)

    def _set_aside(self, *, stacklevel: int) -> None:
        """Move a broken file (and its journals) aside and warn, unless someone fixed it."""
        with _exclusive(self._path.with_name(self._path.name + ".lock")):
            conn = self._connect()
            try:
                _state, problem = self._retry(lambda: _inspect(conn, full=True, checksums=True))
            except sqlite3.DatabaseError as exc:
                if not _is_corrupt(exc):
                    raise
                problem = f"is not a readable SQLite database ({exc})"
            finally:
                conn.close()
            if not problem:  # rebuilt meanwhile by another process
                return
            aside = self._move_aside()
        message = (
            f"ibdata cache {self._path} {problem}; moved it to {aside.name} and started "
            "an empty cache"
        )
        logger.info("%s", message)
        warnings.warn(CacheWarning(message), stacklevel=stacklevel)

    def _move_aside(self) -> Path:
        path = self._path
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        number = 1
        while aside.exists():
            number += 1
            aside = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
        os.rename(path, aside)
        for suffix in ("-wal", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.rename(f"{path}{suffix}", f"{aside}{suffix}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}-shm")
        return aside

    # ------------------------------------------------------------------ running
    def _retry(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` again while SQLite reports a lock, up to the timeout."""
        deadline = _time.monotonic() + self._timeout
        delay = 0.001
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if _time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"the bar cache {self._path} stayed locked by another connection "
                        f"for {self._timeout:g} s ({exc})"
                    ) from exc
                _time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _run(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run ``work`` in one transaction, retrying on locks and rebuilding a broken file."""
        with self._lock:
            if self._conn is None:
                raise ValueError(f"the bar cache {self._path} is closed")
            try:
                return self._retry(lambda: self._transaction(work, write))
            except sqlite3.DatabaseError as exc:
                if not _is_corrupt(exc):
                    raise
                logger.info("cache %s failed: %s", self._path, exc)
                self._conn.close()
                self._conn = None
                self._set_aside(stacklevel=4)
                self._conn = self._open(stacklevel=5)
            return self._retry(lambda: self._transaction(work, write))

    def _transaction(self, work: Callable[[sqlite3.Connection], T], write: bool) -> T:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return result

    # ------------------------------------------------------------------ public
    @property
    def path(self) -> Path:
        """The cache file, an absolute path."""
        return self._path

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._conn is None

    @property
    def location(self) -> str:
        """The cache file, as a string."""
        return str(self._path)

    def _now(self, conn: sqlite3.Connection) -> float:
        """The wall clock of this machine: every process sharing the file reads it."""
        return _time.time()

    def info(self) -> CacheInfo:
        """A summary of the file: its size and how much it holds.

        Returns:
            A :class:`~ibdata.store.CacheInfo`.

        Raises:
            ValueError: The cache is closed.
            TimeoutError: The file stayed locked for ``timeout`` seconds.
        """

        def work(conn: sqlite3.Connection) -> CacheInfo:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            size = 0
            for name in (str(self._path), f"{self._path}-wal"):
                with contextlib.suppress(FileNotFoundError):
                    size += os.stat(name).st_size
            return self._info(conn, path=self._path, version=version, size=size)

        return self._run(work, write=False)

    def clear(self) -> None:
        """Delete all bars, covered intervals and head timestamps, keeping the file.

        The pacing ledger and leases stay: other processes may be using them. The space
        freed is returned to the file system.

        Raises:
            ValueError: The cache is closed.
            TimeoutError: Other connections kept the file locked for ``timeout`` seconds.
        """
        with self._lock:
            self._run(self._clear, write=True)
            conn = self._conn
            assert conn is not None
            try:  # give the space back; the data is gone whether this works or not
                self._retry(lambda: conn.execute("VACUUM"))
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except (sqlite3.Error, TimeoutError) as exc:
                logger.info("cache %s: could not shrink the file after clear: %s", self._path, exc)
        logger.info("cleared the bar cache %s", self._path)

    def close(self) -> None:
        """Close the file, releasing the leases this cache holds. Calling it again does
        nothing."""
        if self._conn is not None:
            self._stop_leases()
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def __enter__(self) -> BarCache:
        """Return the cache itself."""
        return self

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"<BarCache {str(self._path)!r} {state}>"
