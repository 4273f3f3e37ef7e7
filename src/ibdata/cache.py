"""The on-disk bar cache of the history engine: final bars and the intervals they cover.

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
  for another connection's writes.
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
``application_id``. Nothing in the public API is specific to SQLite, so another backend
(PostgreSQL, for caches shared between hosts) can offer the same methods.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import enum
import functools
import logging
import math
import operator
import os
import sqlite3
import struct
import sys
import threading
import time as _time
import warnings
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, TypeVar

import attrs

from ibdata.models import BarSize, WhatToShow

__all__ = ["BarCache", "CacheInfo", "CacheWarning", "CachedBars", "SeriesKey"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Marks a SQLite file as an ibdata cache (``PRAGMA application_id``): ASCII "ibdC".
_APPLICATION_ID: Final = 0x69626443

_TABLES: Final = frozenset({"series", "blocks", "coverage", "heads"})

# Every row of blocks, coverage and heads ends with ``crc``, the CRC-32 of its other fields
# (_crc), with the series key (con_id, what_to_show, bar_size, use_rth) in place of
# series_id, so a changed series row or series_id fails the check too. SQLite checks the
# structure of its file but keeps no checksums of what it stores: a page of a large blob
# zeroed on disk, or a value changed inside a well-formed page, passes its check and would
# read back as bars, intervals or head timestamps never written.
_SCHEMA: Final = (
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

#: How each checked table's rows are read: the fields under the checksum (those of blocks
#: and coverage follow their series key), then ``crc``; text and blobs as bytes, whatever a
#: damaged file holds there.
_FIELDS: Final = {
    "blocks": ("first", "last", "n", "COALESCE(CAST(data AS BLOB), x'')", "crc"),
    "coverage": ("start", "stop", "crc"),
    "heads": ("con_id", "CAST(what_to_show AS BLOB)", "use_rth", "head", "crc"),
}
_ROW: Final = {table: ", ".join(fields) for table, fields in _FIELDS.items()}
_SERIES_KEY: Final = "s.con_id, CAST(s.what_to_show AS BLOB), CAST(s.bar_size AS BLOB), s.use_rth"
_SERIES_ID: Final = (
    "(SELECT id FROM series WHERE con_id = ? AND what_to_show = ? AND bar_size = ? AND use_rth = ?)"
)
_BLOCKS: Final = (
    f"SELECT {_ROW['blocks']} FROM blocks "
    f"WHERE series_id = {_SERIES_ID} AND first < ? AND last >= ? ORDER BY first"
)
_COVERED: Final = (
    f"SELECT {_ROW['coverage']} FROM coverage WHERE series_id = {_SERIES_ID} "
    "AND start < ? AND stop > ? ORDER BY start"
)
_COLUMNS: Final = ("time", "open", "high", "low", "close", "volume", "wap", "count")


def _pack(columns: list[array[Any]]) -> bytes:
    """Eight equal-length columns as one little-endian blob."""
    if sys.byteorder == "big":  # pragma: no cover - no big-endian machine here
        columns = [array(c.typecode, c) for c in columns]
        for c in columns:
            c.byteswap()
    return b"".join(c.tobytes() for c in columns)


def _crc(*fields: object) -> int:
    """The checksum of a row's fields: CRC-32 of each as 8 bytes (int, float) or its bytes
    (bytes, str as UTF-8); -1 for a field no row of ours holds, which a damaged file may."""
    crc = 0
    for field in fields:
        if isinstance(field, float):
            raw = struct.pack("<d", field)
        elif isinstance(field, int) and -(2**63) <= field < 2**63:
            raw = struct.pack("<q", field)
        elif isinstance(field, bytes):
            raw = field
        elif isinstance(field, str):
            raw = field.encode()
        else:
            return -1
        crc = zlib.crc32(raw, crc)
    return crc


def _with_crc(series: tuple[Any, ...], *fields: object) -> tuple[object, ...]:
    """The fields of a row to insert and their checksum under the series key ``series``
    (empty for heads). REAL fields must be given as floats, as SQLite reads them back."""
    return (*fields, _crc(*series, *fields))


def _insert_block(
    conn: sqlite3.Connection, series: tuple[Any, ...], series_id: int, columns: list[array[Any]]
) -> None:
    """Store a run of bars (eight equal, non-empty columns) as one block."""
    first, last, n, data = columns[0][0], columns[0][-1], len(columns[0]), _pack(columns)
    row = (series_id, *_with_crc(series, first, last, n, data))
    conn.execute("INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)", row)


class _DamagedRow(sqlite3.DatabaseError):
    """A row that does not hold what was written: the file was damaged in a way SQLite's
    integrity check cannot see."""


def _damage(table: str, series: tuple[Any, ...], row: tuple[Any, ...]) -> str:
    """What is wrong with a row of ``table`` (read as :data:`_ROW` says) of the series
    ``series`` (its key's four values; empty for heads), or ''."""
    if table == "blocks":
        n, data = row[2], row[3]
        if not isinstance(n, int) or len(data) != 64 * n:
            return f"a block of {n!r} bars holds {len(data)} bytes"
    if _crc(*series, *row[:-1]) == row[-1]:
        return ""
    if table == "blocks":
        return f"a block of {row[2]} bars at {row[0]!r} fails its checksum"
    name = "a covered interval" if table == "coverage" else "a head timestamp"
    return f"{name} fails its checksum"


def _checked(table: str, series: tuple[Any, ...], row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` if it holds what was written (see :func:`_damage`); raises _DamagedRow if
    not."""
    problem = _damage(table, series, row)
    if problem:
        raise _DamagedRow(problem)
    return row


def _scan(table: str, *extra: str) -> str:
    """A query for every row of ``table`` with its series key first (blocks, coverage), as
    :data:`_ROW` reads it, then the ``extra`` columns as stored."""
    fields = ", ".join((_ROW[table], *extra))
    if table == "heads":
        return f"SELECT {fields} FROM heads"
    return (
        f"SELECT {_SERIES_KEY}, {fields} FROM {table} JOIN series AS s ON s.id = {table}.series_id"
    )


def _unpack(series: tuple[Any, ...], row: tuple[Any, ...]) -> list[array[Any]]:
    """The eight columns of a block's row (as :data:`_ROW` reads it) of the series
    ``series``, checked."""
    data, n = _checked("blocks", series, row)[3], row[2]
    out: list[array[Any]] = []
    for i, name in enumerate(_COLUMNS):
        column = array("q" if name == "count" else "d")
        column.frombytes(data[8 * n * i : 8 * n * (i + 1)])
        if sys.byteorder == "big":  # pragma: no cover
            column.byteswap()
        out.append(column)
    return out


# SQLite's primary result codes (the low byte of an extended code).
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_SQLITE_CORRUPT: Final = 11
_SQLITE_NOTADB: Final = 26


# --------------------------------------------------------------------------- records
def _float_array(values: Iterable[float]) -> array[float]:
    if isinstance(values, array) and values.typecode == "d":
        return values
    try:
        return array("d", values)
    except TypeError:
        raise TypeError(f"a bar column must hold floats, got {values!r:.80}") from None


def _int_array(values: Iterable[int]) -> array[int]:
    if isinstance(values, array) and values.typecode == "q":
        return values
    try:
        return array("q", values)
    except TypeError:
        raise TypeError(f"column count must hold ints, got {values!r:.80}") from None


def _column_key(column: array[Any]) -> bytes:
    return column.tobytes()


@attrs.frozen
class CachedBars:
    """Bars of one series as eight columns, the form :class:`BarCache` stores and loads.

    Columns given as ``array.array`` of the right type (``'d'``, and ``'q'`` for ``count``)
    are kept without a copy, so do not modify them afterwards; any other iterable of numbers
    is copied into such an array. Values are stored as given: NaN, IB's -1 or any other
    marker of a missing volume, WAP or count comes back as it went in (NaN in any column
    reads back as the standard NaN). Two :class:`CachedBars` are equal when their columns
    hold the same bytes.

    Attributes:
        time: Each bar's time in seconds since the epoch (UTC), sorted ascending and
            unique: the bar's start for intraday bars, midnight UTC of the session date for
            daily, weekly and monthly bars.
        open: Opening prices.
        high: High prices.
        low: Low prices.
        close: Closing prices.
        volume: Volumes; NaN or -1 when missing.
        wap: Volume-weighted average prices; NaN or -1 when missing.
        count: Trade counts (``'q'`` array); -1 when missing.

    Raises:
        TypeError: A column does not hold numbers.
        ValueError: The columns differ in length, or ``time`` is not sorted ascending,
            unique and finite.
    """

    time: array[float] = attrs.field(converter=_float_array, eq=_column_key)
    open: array[float] = attrs.field(converter=_float_array, eq=_column_key)
    high: array[float] = attrs.field(converter=_float_array, eq=_column_key)
    low: array[float] = attrs.field(converter=_float_array, eq=_column_key)
    close: array[float] = attrs.field(converter=_float_array, eq=_column_key)
    volume: array[float] = attrs.field(converter=_float_array, eq=_column_key)
    wap: array[float] = attrs.field(converter=_float_array, eq=_column_key)
    count: array[int] = attrs.field(converter=_int_array, eq=_column_key)

    def __attrs_post_init__(self) -> None:
        n = len(self.time)
        for field in attrs.fields(CachedBars)[1:]:
            size = len(getattr(self, field.name))
            if size != n:
                raise ValueError(f"column {field.name} has {size} values but time has {n}")
        times = self.time
        if n and not (
            all(map(operator.lt, times, islice(times, 1, None)))  # C speed
            and math.isfinite(times[0])
            and math.isfinite(times[-1])
        ):
            raise ValueError("column time must be finite, sorted ascending and unique")

    def __len__(self) -> int:
        """The number of bars."""
        return len(self.time)

    @classmethod
    def empty(cls) -> CachedBars:
        """No bars.

        Returns:
            A :class:`CachedBars` with eight empty columns.
        """
        f = _float_array
        return cls(f(()), f(()), f(()), f(()), f(()), f(()), f(()), array("q"))


def _con_id(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    _check_con_id(value, "SeriesKey.con_id")


def _check_con_id(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not 0 <= value < 2**63:
        raise ValueError(f"{name} must be a non-negative contract id, got {value!r}")


def _check_flag(value: object, name: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def _use_rth(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    _check_flag(value, "SeriesKey.use_rth")


def _ib_value(kind: type[enum.Enum], value: object, name: str) -> str:
    if isinstance(value, kind):
        return str(value.value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a {kind.__name__} or a str, got {value!r}")
    try:
        return str(kind(value).value)
    except ValueError:
        legal = ", ".join(repr(member.value) for member in kind)
        raise ValueError(f"{name} must be one of {legal}; got {value!r}") from None


def _what_to_show(value: WhatToShow | str) -> str:
    return _ib_value(WhatToShow, value, "what_to_show")


def _bar_size(value: BarSize | str) -> str:
    return _ib_value(BarSize, value, "bar_size")


@attrs.frozen
class SeriesKey:
    """Which series of bars: the key the cache stores bars and covered intervals under.

    ``what_to_show`` and ``bar_size`` are kept as IB's canonical strings, so
    ``SeriesKey(1, "trades", "1W", False) == SeriesKey(1, WhatToShow.TRADES,
    BarSize.ONE_WEEK, False)``.

    Attributes:
        con_id: IB's contract id.
        what_to_show: What the bars measure; a :class:`~ibdata.WhatToShow` or its string
            (``"TRADES"``, ``"MIDPOINT"``, ``"BID"``, ``"ASK"``, ``"BID_ASK"`` ...).
        bar_size: The bar size; a :class:`~ibdata.BarSize` or its string (``"1 min"``,
            ``"1 day"`` ...).
        use_rth: True for bars of regular trading hours only.

    Raises:
        TypeError: A field has the wrong type.
        ValueError: ``con_id`` is negative, or ``what_to_show`` or ``bar_size`` is not one
            of IB's values.
    """

    con_id: int = attrs.field(validator=_con_id)
    what_to_show: str = attrs.field(converter=_what_to_show)
    bar_size: str = attrs.field(converter=_bar_size)
    use_rth: bool = attrs.field(validator=_use_rth)


@attrs.frozen
class CacheInfo:
    """A summary of a cache file, as returned by :meth:`BarCache.info`.

    Attributes:
        path: The cache file.
        size_bytes: Its size on disk, write-ahead log included.
        schema_version: The file's schema version.
        series: How many series (:class:`SeriesKey`) the cache knows.
        bars: How many bars it holds, in all series.
        covered_seconds: The total length of the covered intervals, in seconds, summed over
            all series.
        oldest: The earliest bar time in any series (epoch seconds), or None without bars.
        newest: The latest bar time in any series (epoch seconds), or None without bars.
    """

    path: Path
    size_bytes: int
    schema_version: int
    series: int
    bars: int
    covered_seconds: float
    oldest: float | None
    newest: float | None

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values.

        Returns:
            A dict with the attributes as keys; the path as a string.
        """
        values = attrs.asdict(self)
        values["path"] = str(self.path)
        return values


class CacheWarning(UserWarning):
    """The bar cache could not be used as it was, and ibdata worked around it.

    Issued with :func:`warnings.warn` in two cases:

    * :class:`BarCache` found a damaged file (a row failing its checksum included), another
      program's SQLite database, or a file written with a newer schema version. The
      message names the file, what was wrong with it, and where it was moved: the old file
      is kept as ``<name>.corrupt-<UTC timestamp>`` for inspection. The cache itself keeps
      working, with its contents lost.
    * A range download (:meth:`ibdata.Client.get_historical_bars` with ``start``) could not
      read or write the cache: SQLite failed (a full disk, an I/O error) or another
      connection kept the file locked past the cache's ``timeout``. The message says what
      could not be done and why; the call went on without the cache, fetching from IB
      what it could not read and returning what it could not store.
    """


# --------------------------------------------------------------------------- helpers
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
    if isinstance(exc, _DamagedRow):
        return True
    code = _code(exc)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be seconds since the epoch (a float), got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return seconds


def _interval(start: object, end: object) -> tuple[float, float]:
    lo, hi = _seconds(start, "start"), _seconds(end, "end")
    if lo > hi:
        raise ValueError(f"start must not be after end, got start={lo!r}, end={hi!r}")
    return lo, hi


def _check_key(key: object) -> SeriesKey:
    if not isinstance(key, SeriesKey):
        raise TypeError(f"key must be a SeriesKey, got {key!r}")
    return key


def _key_params(key: SeriesKey) -> tuple[int, str, str, int]:
    return (key.con_id, key.what_to_show, key.bar_size, int(key.use_rth))


def _timeout_seconds(value: object) -> float:
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"timeout must be seconds or a timedelta, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"timeout must be zero or more seconds, got {value!r}")
    return float(value)


def _nan_for_null(column: tuple[Any, ...]) -> array[float]:
    try:
        return array("d", column)
    except TypeError:  # SQLite stores NaN as NULL
        nan = math.nan
        return array("d", [nan if value is None else value for value in column])


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
    if version not in (_UNCHECKED_VERSION, BarCache.SCHEMA_VERSION):
        return "bad", f"has the unsupported schema version {version}"
    if not names >= _TABLES:
        return "bad", f"lacks the tables {', '.join(sorted(_TABLES - names))}"
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
            for table in _ROW:
                keyed = 0 if table == "heads" else 4  # the series key's fields
                for row in conn.execute(_scan(table)):
                    problem = _damage(table, row[:keyed], row[keyed:])
                    if problem:
                        return "bad", f"is damaged ({problem})"
    return "old" if version == _UNCHECKED_VERSION else "ok", ""


# --------------------------------------------------------------------------- the cache
class BarCache:
    """Final bars and the intervals they cover, in one SQLite file shared by all users.

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
    checksums (2) gets them when opened, keeping its bars.

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

    Raises:
        TypeError: ``path`` is not a path, or ``timeout`` not a number of seconds.
        ValueError: ``timeout`` is negative or not finite.
        TimeoutError: The file stayed locked by another connection for ``timeout`` seconds.
        OSError: The parent directory cannot be created, or a broken file cannot be moved
            aside.
        sqlite3.Error: SQLite cannot open or write the file (permissions, a full disk).
    """

    #: The version of the file layout this ibdata reads and writes.
    SCHEMA_VERSION: ClassVar[int] = 3

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float | dt.timedelta = 30.0
    ) -> None:
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
        """Create the schema in an empty file, or upgrade a file of the schema version
        before checksums; the problem, if another process made the file unusable."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            state, problem = _inspect(conn, full=False)  # another process may have won
            if state == "empty":
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                logger.info("created the bar cache %s", self._path)
            elif state == "old":
                self._add_checksums(conn)
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
        for table in _ROW:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN crc INTEGER NOT NULL DEFAULT 0")
            key = primary[table]
            # the checked fields (series key included), crc, then the primary key as stored
            n = len(_FIELDS[table]) - 1 + (0 if table == "heads" else 4)
            query = _scan(table, *(f"{table}.{column}" for column in key))
            sums = [(_crc(*row[:n]), *row[n + 1 :]) for row in conn.execute(query)]
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

    def covered(self, key: SeriesKey, start: float, end: float) -> list[tuple[float, float]]:
        """The parts of ``[start, end)`` whose bars are all in the cache.

        Args:
            key: The series.
            start: The start of the range, seconds since the epoch (UTC).
            end: The end of the range (excluded), seconds since the epoch.

        Returns:
            Disjoint, non-adjacent half-open intervals ``(start, end)``, sorted and clipped
            to the range; empty when nothing is covered or ``start == end``.

        Raises:
            TypeError: ``key`` is not a :class:`SeriesKey`, or a time is not a number.
            ValueError: A time is not finite, ``start`` is after ``end``, or the cache is
                closed.
            TimeoutError: The file stayed locked for ``timeout`` seconds.
        """
        key = _check_key(key)
        lo, hi = _interval(start, end)
        if lo == hi:
            return []

        def work(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            # checked here, so that a damaged row is handled like any damage to the file
            series = _key_params(key)
            rows = conn.execute(_COVERED, (*series, hi, lo)).fetchall()
            return [_checked("coverage", series, row) for row in rows]

        rows = self._run(work, write=False)
        return [(max(row[0], lo), min(row[1], hi)) for row in rows]

    def missing(self, key: SeriesKey, start: float, end: float) -> list[tuple[float, float]]:
        """The parts of ``[start, end)`` not covered by the cache: what is left to fetch.

        Times are compared exactly as given, so the intervals returned fit the covered ones
        without gap or overlap.

        Args:
            key: The series.
            start: The start of the range, seconds since the epoch (UTC).
            end: The end of the range (excluded), seconds since the epoch.

        Returns:
            Disjoint half-open intervals ``(start, end)``, sorted; ``[(start, end)]`` when
            nothing of the range is covered, empty when all of it is (or ``start == end``).

        Raises:
            TypeError: ``key`` is not a :class:`SeriesKey`, or a time is not a number.
            ValueError: A time is not finite, ``start`` is after ``end``, or the cache is
                closed.
            TimeoutError: The file stayed locked for ``timeout`` seconds.
        """
        lo, hi = _interval(start, end)
        gaps: list[tuple[float, float]] = []
        cursor = lo
        for a, b in self.covered(key, lo, hi):
            if a > cursor:
                gaps.append((cursor, a))
            cursor = b
        if cursor < hi:
            gaps.append((cursor, hi))
        return gaps

    def store(self, key: SeriesKey, start: float, end: float, bars: CachedBars) -> int:
        """Store the final bars of ``[start, end)`` and record the interval as covered.

        The bars given become the cache's content for ``[start, end)``: they replace any
        bars it held there, and bars outside the interval are ignored. The interval is
        recorded as covered even when ``bars`` is empty (IB had no bars there), merged with
        covered intervals it overlaps or touches. Everything happens in one transaction,
        so after an interruption either all of it is stored or none.

        Args:
            key: The series.
            start: The start of the interval, seconds since the epoch (UTC).
            end: The end of the interval (excluded), seconds since the epoch. An empty
                interval (``start == end``) stores nothing.
            bars: The series' final bars in the interval.

        Returns:
            How many bars were written.

        Raises:
            TypeError: ``key`` is not a :class:`SeriesKey`, ``bars`` not
                :class:`CachedBars`, or a time is not a number.
            ValueError: A time is not finite, ``start`` is after ``end``, or the cache is
                closed.
            TimeoutError: Other connections kept the file locked for ``timeout`` seconds.
        """
        key = _check_key(key)
        lo, hi = _interval(start, end)
        if not isinstance(bars, CachedBars):
            raise TypeError(f"bars must be CachedBars, got {bars!r:.80}")
        if lo == hi:
            return 0
        first = bisect.bisect_left(bars.time, lo)
        last = bisect.bisect_left(bars.time, hi)
        columns = [column[first:last] for column in attrs.astuple(bars, recurse=False)]
        if last - first < len(bars):
            logger.debug(
                "cache store ignores %d bars outside the interval", len(bars) - (last - first)
            )

        def work(conn: sqlite3.Connection) -> int:
            series = _key_params(key)
            conn.execute(
                "INSERT OR IGNORE INTO series (con_id, what_to_show, bar_size, use_rth) "
                "VALUES (?, ?, ?, ?)",
                series,
            )
            series_id = conn.execute(f"SELECT {_SERIES_ID}", series).fetchone()[0]
            # Blocks reaching into [lo, hi) give up their bars there: what is kept of them
            # (before lo, from hi on) is written back as up to two blocks.
            overlapping = conn.execute(
                f"SELECT {_ROW['blocks']} FROM blocks "
                "WHERE series_id = ? AND first < ? AND last >= ?",
                (series_id, hi, lo),
            ).fetchall()
            for row in overlapping:
                old = _unpack(series, row)
                n = len(old[0])
                cut_lo = bisect.bisect_left(old[0], lo)
                cut_hi = bisect.bisect_left(old[0], hi)
                conn.execute(
                    "DELETE FROM blocks WHERE series_id = ? AND first = ?", (series_id, row[0])
                )
                for a, b in ((0, cut_lo), (cut_hi, n)):
                    if b > a:
                        _insert_block(conn, series, series_id, [c[a:b] for c in old])
            if last > first:
                _insert_block(conn, series, series_id, columns)
            touching = (series_id, hi, lo)
            rows = [
                _checked("coverage", series, row)
                for row in conn.execute(
                    f"SELECT {_ROW['coverage']} FROM coverage "
                    "WHERE series_id = ? AND start <= ? AND stop >= ?",
                    touching,
                )
            ]
            new_start = min([lo, *(row[0] for row in rows)])
            new_stop = max([hi, *(row[1] for row in rows)])
            conn.execute(
                "DELETE FROM coverage WHERE series_id = ? AND start <= ? AND stop >= ?",
                touching,
            )
            conn.execute(
                "INSERT INTO coverage VALUES (?, ?, ?, ?)",
                (series_id, *_with_crc(series, float(new_start), float(new_stop))),
            )
            return last - first

        return self._run(work, write=True)

    def load(self, key: SeriesKey, start: float, end: float) -> CachedBars:
        """The cached bars of ``[start, end)``.

        Only bars are returned; whether the range is fully covered is for
        :meth:`missing` to say.

        Args:
            key: The series.
            start: The first time wanted, seconds since the epoch (UTC).
            end: The end of the range (excluded), seconds since the epoch.

        Returns:
            The bars with ``start <= time < end``, sorted by time.

        Raises:
            TypeError: ``key`` is not a :class:`SeriesKey`, or a time is not a number.
            ValueError: A time is not finite, ``start`` is after ``end``, or the cache is
                closed.
            TimeoutError: The file stayed locked for ``timeout`` seconds.
        """
        key = _check_key(key)
        lo, hi = _interval(start, end)
        if lo == hi:
            return CachedBars.empty()

        def work(conn: sqlite3.Connection) -> list[tuple[int, list[array[Any]]]]:
            # unpacked here, so that a damaged block is handled like any damage to the file
            series = _key_params(key)
            rows = conn.execute(_BLOCKS, (*series, hi, lo)).fetchall()
            return [(row[2], _unpack(series, row)) for row in rows]

        blocks = self._run(work, write=False)
        if not blocks:
            return CachedBars.empty()
        merged = [array("q" if name == "count" else "d") for name in _COLUMNS]
        for n, block in blocks:
            a = bisect.bisect_left(block[0], lo)
            b = bisect.bisect_left(block[0], hi)
            for target, column in zip(merged, block, strict=True):
                target.extend(column[a:b] if (a, b) != (0, n) else column)
        return CachedBars(*merged)

    def head(self, con_id: int, what_to_show: WhatToShow | str, use_rth: bool) -> float | None:
        """The remembered head timestamp: the earliest time IB has data for.

        See `IB's head timestamp
        <https://interactivebrokers.github.io/tws-api/head_timestamp.html>`_.

        Args:
            con_id: IB's contract id.
            what_to_show: What the bars measure, a :class:`~ibdata.WhatToShow` or its
                string.
            use_rth: True for regular trading hours only.

        Returns:
            Seconds since the epoch (UTC), or None when none was stored.

        Raises:
            TypeError: An argument has the wrong type.
            ValueError: ``con_id`` is negative, ``what_to_show`` is not IB's, or the
                cache is closed.
            TimeoutError: The file stayed locked for ``timeout`` seconds.
        """
        params = self._head_params(con_id, what_to_show, use_rth)

        def work(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row = conn.execute(
                f"SELECT {_ROW['heads']} FROM heads "
                "WHERE con_id = ? AND what_to_show = ? AND use_rth = ?",
                params,
            ).fetchone()
            return None if row is None else _checked("heads", (), row)

        row = self._run(work, write=False)
        return None if row is None else float(row[3])

    def set_head(
        self, con_id: int, what_to_show: WhatToShow | str, use_rth: bool, head: float
    ) -> None:
        """Remember a contract's head timestamp, replacing the one stored before.

        Args:
            con_id: IB's contract id.
            what_to_show: What the bars measure, a :class:`~ibdata.WhatToShow` or its
                string.
            use_rth: True for regular trading hours only.
            head: The earliest time IB has data for, seconds since the epoch (UTC).

        Raises:
            TypeError: An argument has the wrong type.
            ValueError: ``con_id`` is negative, ``what_to_show`` is not IB's, ``head`` is
                not finite, or the cache is closed.
            TimeoutError: Other connections kept the file locked for ``timeout`` seconds.
        """
        params = (*self._head_params(con_id, what_to_show, use_rth), _seconds(head, "head"))
        self._run(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO heads VALUES (?, ?, ?, ?, ?)", _with_crc((), *params)
            ),
            write=True,
        )

    @staticmethod
    def _head_params(con_id: object, what_to_show: object, use_rth: object) -> tuple[Any, ...]:
        _check_con_id(con_id, "con_id")
        _check_flag(use_rth, "use_rth")
        return (con_id, _ib_value(WhatToShow, what_to_show, "what_to_show"), int(bool(use_rth)))

    def info(self) -> CacheInfo:
        """A summary of the file: its size and how much it holds.

        Returns:
            A :class:`CacheInfo`.

        Raises:
            ValueError: The cache is closed.
            TimeoutError: The file stayed locked for ``timeout`` seconds.
        """

        def work(conn: sqlite3.Connection) -> tuple[Any, ...]:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            series = conn.execute("SELECT COUNT(*) FROM series").fetchone()[0]
            bars = conn.execute("SELECT TOTAL(n) FROM blocks").fetchone()[0]
            covered = conn.execute("SELECT TOTAL(stop - start) FROM coverage").fetchone()[0]
            oldest, newest = conn.execute("SELECT MIN(first), MAX(last) FROM blocks").fetchone()
            return version, series, bars, covered, oldest, newest

        version, series, bars, covered, oldest, newest = self._run(work, write=False)
        size = 0
        for name in (str(self._path), f"{self._path}-wal"):
            with contextlib.suppress(FileNotFoundError):
                size += os.stat(name).st_size
        return CacheInfo(
            path=self._path,
            size_bytes=size,
            schema_version=int(version),
            series=int(series),
            bars=int(bars),
            covered_seconds=float(covered),
            oldest=None if oldest is None else float(oldest),
            newest=None if newest is None else float(newest),
        )

    def clear(self) -> None:
        """Delete all bars, covered intervals and head timestamps, keeping the file.

        The space freed is returned to the file system.

        Raises:
            ValueError: The cache is closed.
            TimeoutError: Other connections kept the file locked for ``timeout`` seconds.
        """

        def work(conn: sqlite3.Connection) -> None:
            for table in ("blocks", "coverage", "heads", "series"):
                conn.execute(f"DELETE FROM {table}")

        with self._lock:
            self._run(work, write=True)
            conn = self._conn
            assert conn is not None
            try:  # give the space back; the data is gone whether this works or not
                self._retry(lambda: conn.execute("VACUUM"))
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except (sqlite3.Error, TimeoutError) as exc:
                logger.info("cache %s: could not shrink the file after clear: %s", self._path, exc)
        logger.info("cleared the bar cache %s", self._path)

    def close(self) -> None:
        """Close the file. Calling it again does nothing."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def __enter__(self) -> BarCache:
        """Return the cache itself."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the cache."""
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"<BarCache {str(self._path)!r} {state}>"
