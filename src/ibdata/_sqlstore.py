"""What the SQLite and PostgreSQL stores share: their tables, queries, checksums and every
operation of :class:`~ibdata.store.BarStore` written once over a DB-API connection.

A backend supplies four things: how to run one transaction (:meth:`SqlStore._run`, given a
connection whose ``execute`` takes ``?`` placeholders), its clock (:meth:`SqlStore._now`:
the wall clock for a SQLite file, the server's for PostgreSQL, so that every host reads one
clock), a lock taken inside a transaction (:meth:`SqlStore._serialize`: nothing for SQLite,
whose write transactions exclude each other already; a transaction-scoped advisory lock for
PostgreSQL), and how its text and blob columns are read (:class:`Queries`).

Every row of blocks, coverage and heads ends with ``crc``, the CRC-32 of its other fields
(:func:`crc`), with the series key (con_id, what_to_show, bar_size, use_rth) in place of
series_id, so a changed series row or series_id fails the check too. Neither SQLite nor
PostgreSQL keeps checksums of what it stores where ibdata can see them: a page of a large
blob zeroed on disk, or a value changed inside a well-formed page, would otherwise read
back as bars, intervals or head timestamps never written.
"""

from __future__ import annotations

import abc
import bisect
import functools
import logging
import os
import socket
import sqlite3
import struct
import sys
import threading
import zlib
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

import attrs

from ibdata.models import WhatToShow
from ibdata.store import (
    BarStore,
    CachedBars,
    CacheInfo,
    Decide,
    SeriesKey,
    Window,
    _check_con_id,
    _check_flag,
    _check_key,
    _gaps,
    _ib_value,
    _interval,
    _seconds,
)

logger = logging.getLogger("ibdata.store")

T = TypeVar("T")

COLUMNS: Final = ("time", "open", "high", "low", "close", "volume", "wap", "count")

#: The tables of bars, with checksums; and those of sharing (schema version 4).
BAR_TABLES: Final = ("series", "blocks", "coverage", "heads")
SHARING_TABLES: Final = ("ledger", "leases")

#: Who holds a lease, for ``ibdata cache info``: this host and process.
HOLDER: Final = f"{socket.gethostname()}:{os.getpid()}"


def pack(columns: list[array[Any]]) -> bytes:
    """Eight equal-length columns as one little-endian blob."""
    if sys.byteorder == "big":  # pragma: no cover - no big-endian machine here
        columns = [array(c.typecode, c) for c in columns]
        for c in columns:
            c.byteswap()
    return b"".join(c.tobytes() for c in columns)


def crc(*fields: object) -> int:
    """The checksum of a row's fields: CRC-32 of each as 8 bytes (int, float) or its bytes
    (bytes, str as UTF-8); -1 for a field no row of ours holds, which a damaged file may."""
    value = 0
    for field in fields:
        if isinstance(field, float):
            raw = struct.pack("<d", field)
        elif isinstance(field, int) and -(2**63) <= field < 2**63:
            raw = struct.pack("<q", field)
        elif isinstance(field, (bytes, memoryview)):
            raw = bytes(field)
        elif isinstance(field, str):
            raw = field.encode()
        else:
            return -1
        value = zlib.crc32(raw, value)
    return value


def with_crc(series: tuple[Any, ...], *fields: object) -> tuple[object, ...]:
    """The fields of a row to insert and their checksum under the series key ``series``
    (empty for heads). REAL fields must be given as floats, as the database reads them back."""
    return (*fields, crc(*series, *fields))


class DamagedRow(sqlite3.DatabaseError):
    """A row that does not hold what was written: the store was damaged in a way the
    database's own checks cannot see. ``table``, ``series`` (the series key's four values,
    empty for heads) and ``row`` say which row."""

    def __init__(self, problem: str, table: str, series: tuple[Any, ...], row: tuple[Any, ...]):
        super().__init__(problem)
        self.table = table
        self.series = series
        self.row = row


def damage(table: str, series: tuple[Any, ...], row: tuple[Any, ...]) -> str:
    """What is wrong with a row of ``table`` (read as :class:`Queries` reads it) of the
    series ``series`` (its key's four values; empty for heads), or ''."""
    if table == "blocks":
        n, data = row[2], row[3]
        if not isinstance(n, int) or len(data) != 64 * n:
            return f"a block of {n!r} bars holds {len(data)} bytes"
    if crc(*series, *row[:-1]) == row[-1]:
        return ""
    if table == "blocks":
        return f"a block of {row[2]} bars at {row[0]!r} fails its checksum"
    name = "a covered interval" if table == "coverage" else "a head timestamp"
    return f"{name} fails its checksum"


def checked(table: str, series: tuple[Any, ...], row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` if it holds what was written (see :func:`damage`); raises DamagedRow if not."""
    problem = damage(table, series, row)
    if problem:
        raise DamagedRow(problem, table, series, row)
    return row


def unpack(series: tuple[Any, ...], row: tuple[Any, ...]) -> list[array[Any]]:
    """The eight columns of a block's row of the series ``series``, checked."""
    data, n = bytes(checked("blocks", series, row)[3]), row[2]
    out: list[array[Any]] = []
    for i, name in enumerate(COLUMNS):
        column = array("q" if name == "count" else "d")
        column.frombytes(data[8 * n * i : 8 * n * (i + 1)])
        if sys.byteorder == "big":  # pragma: no cover
            column.byteswap()
        out.append(column)
    return out


def _delete_lease(conn: Any, *, lease: str) -> None:
    conn.execute("DELETE FROM leases WHERE id = ?", (lease,))


def key_params(key: SeriesKey) -> tuple[int, str, str, int]:
    """A series key as the four values stored in ``series``."""
    return (key.con_id, key.what_to_show, key.bar_size, int(key.use_rth))


def series_name(key: SeriesKey) -> str:
    """A series key as one string, for chunk leases and locks."""
    return "|".join(map(str, key_params(key)))


@attrs.frozen
class Queries:
    """The queries of one backend. ``as_bytes`` wraps a column read as bytes whatever a
    damaged row holds there (SQLite: ``CAST(x AS BLOB)``); PostgreSQL's columns have types
    it enforces, so it reads them as they are."""

    as_bytes: Callable[[str], str]

    @property
    def fields(self) -> dict[str, tuple[str, ...]]:
        """How each checked table's rows are read: the fields under the checksum (those of
        blocks and coverage follow their series key), then ``crc``."""
        b = self.as_bytes
        return {
            "blocks": ("first", "last", "n", f"COALESCE({b('data')}, {b(chr(39) * 2)})", "crc"),
            "coverage": ("start", "stop", "crc"),
            "heads": ("con_id", b("what_to_show"), "use_rth", "head", "crc"),
        }

    def row(self, table: str) -> str:
        """The select list of a checked table's row."""
        return ", ".join(self.fields[table])

    @property
    def series_key(self) -> str:
        """The series key of a joined ``series AS s``, read as the checksum wants it."""
        b = self.as_bytes
        return f"s.con_id, {b('s.what_to_show')}, {b('s.bar_size')}, s.use_rth"

    def scan(self, table: str, *extra: str) -> str:
        """A query for every row of ``table`` with its series key first (blocks, coverage),
        then the ``extra`` columns as stored."""
        fields = ", ".join((self.row(table), *extra))
        if table == "heads":
            return f"SELECT {fields} FROM heads"
        return (
            f"SELECT {self.series_key}, {fields} FROM {table} "
            f"JOIN series AS s ON s.id = {table}.series_id"
        )


SERIES_ID: Final = (
    "(SELECT id FROM series WHERE con_id = ? AND what_to_show = ? AND bar_size = ? AND use_rth = ?)"
)


class SqlStore(BarStore):
    """The operations of :class:`~ibdata.store.BarStore` over SQL, for both backends."""

    _queries: Queries
    #: The backend's name in :class:`~ibdata.store.CacheInfo`.
    backend: ClassVar[str]

    def __init__(self, *, lease_seconds: float) -> None:
        if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, (int, float)):
            raise TypeError(f"lease_seconds must be a number of seconds, got {lease_seconds!r}")
        if not 0.1 <= lease_seconds < 1e6:
            raise ValueError(f"lease_seconds must be 0.1 to 1e6 seconds, got {lease_seconds!r}")
        self._lease_seconds = float(lease_seconds)
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._beat = threading.Event()
        self._beater: threading.Thread | None = None

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _run(self, work: Callable[[Any], T], *, write: bool) -> T:
        """Run ``work(conn)`` in one transaction (a write transaction if ``write``)."""

    @abc.abstractmethod
    def _now(self, conn: Any) -> float:
        """The store's clock, epoch seconds: one clock for every user of the store."""

    def _serialize(self, conn: Any, name: str) -> None:
        """Hold a lock named ``name`` until the transaction ends (if the backend needs one
        beyond its write transactions)."""

    # ------------------------------------------------------------------ bars
    @property
    def lease_seconds(self) -> float:
        """How long a lease lives unless renewed (seconds)."""
        return self._lease_seconds

    def covered(self, key: SeriesKey, start: float, end: float) -> list[Window]:
        """The parts of ``[start, end)`` whose bars are all in the store.

        Args:
            key: The series.
            start: The start of the range, seconds since the epoch (UTC).
            end: The end of the range (excluded), seconds since the epoch.

        Returns:
            Disjoint, non-adjacent half-open intervals ``(start, end)``, sorted and clipped
            to the range; empty when nothing is covered or ``start == end``.

        Raises:
            TypeError: ``key`` is not a :class:`~ibdata.store.SeriesKey`, or a time is not
                a number.
            ValueError: A time is not finite, ``start`` is after ``end``, or the store is
                closed.
            OSError: The store cannot be read (locked past its timeout, unreachable).
        """
        key = _check_key(key)
        lo, hi = _interval(start, end)
        if lo == hi:
            return []
        return self._run(lambda conn: self._covered(conn, key, lo, hi), write=False)

    def _covered(self, conn: Any, key: SeriesKey, lo: float, hi: float) -> list[Window]:
        # checked here, so that a damaged row is handled like any damage to the store
        series = key_params(key)
        rows = conn.execute(
            f"SELECT {self._queries.row('coverage')} FROM coverage WHERE series_id = "
            f"{SERIES_ID} AND start < ? AND stop > ? ORDER BY start",
            (*series, hi, lo),
        ).fetchall()
        return [
            (max(row[0], lo), min(row[1], hi))
            for row in (checked("coverage", series, tuple(r)) for r in rows)
        ]

    def store(self, key: SeriesKey, start: float, end: float, bars: CachedBars) -> int:
        """Store the final bars of ``[start, end)`` and record the interval as covered.

        The bars given become the store's content for ``[start, end)``: they replace any
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
            TypeError: ``key`` is not a :class:`~ibdata.store.SeriesKey`, ``bars`` not
                :class:`~ibdata.store.CachedBars`, or a time is not a number.
            ValueError: A time is not finite, ``start`` is after ``end``, or the store is
                closed.
            OSError: The store cannot be written (locked past its timeout, unreachable).
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
            logger.debug("store ignores %d bars outside the interval", len(bars) - (last - first))
        q = self._queries

        def work(conn: Any) -> int:
            series = key_params(key)
            self._serialize(conn, "series:" + series_name(key))
            conn.execute(
                "INSERT INTO series (con_id, what_to_show, bar_size, use_rth) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                series,
            )
            series_id = conn.execute(f"SELECT {SERIES_ID}", series).fetchone()[0]
            # Blocks reaching into [lo, hi) give up their bars there: what is kept of them
            # (before lo, from hi on) is written back as up to two blocks.
            overlapping = conn.execute(
                f"SELECT {q.row('blocks')} FROM blocks "
                "WHERE series_id = ? AND first < ? AND last >= ?",
                (series_id, hi, lo),
            ).fetchall()
            for row in overlapping:
                old = unpack(series, tuple(row))
                n = len(old[0])
                cut_lo = bisect.bisect_left(old[0], lo)
                cut_hi = bisect.bisect_left(old[0], hi)
                conn.execute(
                    "DELETE FROM blocks WHERE series_id = ? AND first = ?", (series_id, row[0])
                )
                for a, b in ((0, cut_lo), (cut_hi, n)):
                    if b > a:
                        self._insert_block(conn, series, series_id, [c[a:b] for c in old])
            if last > first:
                self._insert_block(conn, series, series_id, columns)
            touching = (series_id, hi, lo)
            rows = [
                checked("coverage", series, tuple(row))
                for row in conn.execute(
                    f"SELECT {q.row('coverage')} FROM coverage "
                    "WHERE series_id = ? AND start <= ? AND stop >= ?",
                    touching,
                ).fetchall()
            ]
            new_start = min([lo, *(row[0] for row in rows)])
            new_stop = max([hi, *(row[1] for row in rows)])
            conn.execute(
                "DELETE FROM coverage WHERE series_id = ? AND start <= ? AND stop >= ?",
                touching,
            )
            conn.execute(
                "INSERT INTO coverage VALUES (?, ?, ?, ?)",
                (series_id, *with_crc(series, float(new_start), float(new_stop))),
            )
            return last - first

        return self._run(work, write=True)

    @staticmethod
    def _insert_block(
        conn: Any, series: tuple[Any, ...], series_id: int, columns: list[array[Any]]
    ) -> None:
        """Store a run of bars (eight equal, non-empty columns) as one block."""
        first, last, n, data = columns[0][0], columns[0][-1], len(columns[0]), pack(columns)
        row = (series_id, *with_crc(series, first, last, n, data))
        conn.execute("INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)", row)

    def load(self, key: SeriesKey, start: float, end: float) -> CachedBars:
        """The stored bars of ``[start, end)``.

        Only bars are returned; whether the range is fully covered is for
        :meth:`missing` to say.

        Args:
            key: The series.
            start: The first time wanted, seconds since the epoch (UTC).
            end: The end of the range (excluded), seconds since the epoch.

        Returns:
            The bars with ``start <= time < end``, sorted by time.

        Raises:
            TypeError: ``key`` is not a :class:`~ibdata.store.SeriesKey`, or a time is not
                a number.
            ValueError: A time is not finite, ``start`` is after ``end``, or the store is
                closed.
            OSError: The store cannot be read (locked past its timeout, unreachable).
        """
        key = _check_key(key)
        lo, hi = _interval(start, end)
        if lo == hi:
            return CachedBars.empty()

        def work(conn: Any) -> list[tuple[int, list[array[Any]]]]:
            # unpacked here, so that a damaged block is handled like any damage to the store
            series = key_params(key)
            rows = conn.execute(
                f"SELECT {self._queries.row('blocks')} FROM blocks "
                f"WHERE series_id = {SERIES_ID} AND first < ? AND last >= ? ORDER BY first",
                (*series, hi, lo),
            ).fetchall()
            return [(row[2], unpack(series, tuple(row))) for row in rows]

        blocks = self._run(work, write=False)
        if not blocks:
            return CachedBars.empty()
        merged = [array("q" if name == "count" else "d") for name in COLUMNS]
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
                store is closed.
            OSError: The store cannot be read (locked past its timeout, unreachable).
        """
        params = self._head_params(con_id, what_to_show, use_rth)

        def work(conn: Any) -> tuple[Any, ...] | None:
            row = conn.execute(
                f"SELECT {self._queries.row('heads')} FROM heads "
                "WHERE con_id = ? AND what_to_show = ? AND use_rth = ?",
                params,
            ).fetchone()
            return None if row is None else checked("heads", (), tuple(row))

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
                not finite, or the store is closed.
            OSError: The store cannot be written (locked past its timeout, unreachable).
        """
        params = (*self._head_params(con_id, what_to_show, use_rth), _seconds(head, "head"))
        self._run(
            lambda conn: conn.execute(
                "INSERT INTO heads VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (con_id, what_to_show, use_rth) "
                "DO UPDATE SET head = excluded.head, crc = excluded.crc",
                with_crc((), *params),
            ),
            write=True,
        )

    @staticmethod
    def _head_params(con_id: object, what_to_show: object, use_rth: object) -> tuple[Any, ...]:
        _check_con_id(con_id, "con_id")
        _check_flag(use_rth, "use_rth")
        return (con_id, _ib_value(WhatToShow, what_to_show, "what_to_show"), int(bool(use_rth)))

    def series_keys(self) -> list[SeriesKey]:
        """Every series the store knows, sorted."""
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT con_id, what_to_show, bar_size, use_rth FROM series "
                "ORDER BY con_id, what_to_show, bar_size, use_rth"
            ).fetchall(),
            write=False,
        )
        return [SeriesKey(int(c), str(w), str(b), bool(r)) for c, w, b, r in rows]

    def head_timestamps(self) -> list[tuple[int, str, bool, float]]:
        """Every head timestamp stored: ``(con_id, what_to_show, use_rth, head)``."""

        def work(conn: Any) -> list[tuple[Any, ...]]:
            rows = conn.execute(f"SELECT {self._queries.row('heads')} FROM heads").fetchall()
            return [checked("heads", (), tuple(row)) for row in rows]

        return [
            (
                int(c),
                bytes(w).decode() if isinstance(w, (bytes, memoryview)) else str(w),
                bool(r),
                float(h),
            )
            for c, w, r, h, _ in self._run(work, write=False)
        ]

    def _info(self, conn: Any, *, path: Path | None, version: int, size: int) -> CacheInfo:
        """The store's summary, read in ``conn``'s transaction."""
        series, bars, covered, oldest, newest, logins, leases = self._counts(conn)
        return CacheInfo(
            path=path,
            size_bytes=int(size),
            schema_version=int(version),
            series=int(series),
            bars=int(bars),
            covered_seconds=float(covered),
            oldest=None if oldest is None else float(oldest),
            newest=None if newest is None else float(newest),
            backend=self.backend,
            location=self.location,
            logins=int(logins),
            leases=int(leases),
        )

    def _counts(self, conn: Any) -> tuple[Any, ...]:
        """series, bars, covered seconds, oldest, newest, logins, live leases."""
        now = self._now(conn)
        series = conn.execute("SELECT COUNT(*) FROM series").fetchone()[0]
        bars = conn.execute("SELECT COALESCE(SUM(n), 0) FROM blocks").fetchone()[0]
        covered = conn.execute("SELECT COALESCE(SUM(stop - start), 0) FROM coverage").fetchone()[0]
        oldest, newest = conn.execute("SELECT MIN(first), MAX(last) FROM blocks").fetchone()
        logins = conn.execute("SELECT COUNT(DISTINCT login) FROM ledger").fetchone()[0]
        leases = conn.execute("SELECT COUNT(*) FROM leases WHERE expires > ?", (now,)).fetchone()[0]
        return series, bars, covered, oldest, newest, logins, leases

    @staticmethod
    def _clear(conn: Any) -> None:
        for table in ("blocks", "coverage", "heads", "series"):
            conn.execute(f"DELETE FROM {table}")

    # ------------------------------------------------------------------ sharing
    def admit(
        self, login: str, decide: Decide, request: str | None, lease: str, keep: float
    ) -> float:
        """One pacing decision for ``login`` under the login's lock; see
        :meth:`ibdata.store.BarStore.admit`."""

        def work(conn: Any) -> float:
            self._serialize(conn, "login:" + login)
            now = self._now(conn)
            conn.execute("DELETE FROM ledger WHERE login = ? AND at < ?", (login, now - keep))
            rows = conn.execute(
                "SELECT at, request FROM ledger WHERE login = ? ORDER BY at", (login,)
            ).fetchall()
            open_now = conn.execute(
                "SELECT COUNT(*) FROM leases WHERE login = ? AND kind = 'open' AND expires > ?",
                (login, now),
            ).fetchone()[0]
            wait = decide([(float(a), str(r)) for a, r in rows], int(open_now), now)
            if wait <= 0:
                if request is not None:
                    conn.execute(
                        "INSERT INTO ledger VALUES (?, ?, ?, ?, ?)",
                        (login, now, request, HOLDER, lease),
                    )
                self._insert_lease(
                    conn, lease, login=login, kind="open", series="", span=(0.0, 0.0), now=now
                )
            return wait

        wait = self._run(work, write=True)
        if wait <= 0:
            self._hold(lease)
        return wait

    def sent(self, login: str, lease: str) -> None:
        """Move the ledger entry of the request admitted with ``lease`` to the store's time
        now, the moment it is sent; see :meth:`ibdata.store.BarStore.sent`."""

        def work(conn: Any) -> None:
            conn.execute(
                "UPDATE ledger SET at = ? WHERE login = ? AND lease = ?",
                (self._now(conn), login, lease),
            )

        self._run(work, write=True)

    def ledger(self, login: str) -> tuple[list[tuple[float, str]], float]:
        """The ledger entries of ``login`` and the store's clock now."""

        def work(conn: Any) -> tuple[list[tuple[float, str]], float]:
            rows = conn.execute(
                "SELECT at, request FROM ledger WHERE login = ? ORDER BY at", (login,)
            ).fetchall()
            return [(float(a), str(r)) for a, r in rows], self._now(conn)

        return self._run(work, write=False)

    def claim(
        self, key: SeriesKey, start: float, end: float, lease: str
    ) -> tuple[list[Window], bool]:
        """Lease the missing parts of ``[start, end)``; see
        :meth:`ibdata.store.BarStore.claim`."""
        key = _check_key(key)
        lo, hi = _interval(start, end)
        name = series_name(key)

        def work(conn: Any) -> tuple[list[Window], bool]:
            self._serialize(conn, "series:" + name)
            now = self._now(conn)
            gaps = _gaps(self._covered(conn, key, lo, hi), lo, hi)
            if not gaps:
                return [], False
            busy = conn.execute(
                "SELECT lo, hi FROM leases WHERE kind = 'chunk' AND series = ? "
                "AND expires > ? AND lo < ? AND hi > ? AND id != ?",
                (name, now, gaps[-1][1], gaps[0][0], lease),
            ).fetchall()
            if any(a < g_hi and b > g_lo for a, b in busy for g_lo, g_hi in gaps):
                return gaps, False
            span = (gaps[0][0], gaps[-1][1])
            self._insert_lease(conn, lease, login="", kind="chunk", series=name, span=span, now=now)
            return gaps, True

        gaps, mine = self._run(work, write=True)
        if mine:
            self._hold(lease)
        return gaps, mine

    def release(self, lease: str) -> None:
        """End a lease; unknown leases are ignored."""
        with self._held_lock:
            self._held.discard(lease)
        self._run(functools.partial(_delete_lease, lease=lease), write=True)

    def _insert_lease(
        self,
        conn: Any,
        lease: str,
        *,
        login: str,
        kind: str,
        series: str,
        span: Window,
        now: float,
    ) -> None:
        conn.execute("DELETE FROM leases WHERE expires < ?", (now - 60.0,))  # long dead
        conn.execute(
            "INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (lease, login, kind, series, *span, HOLDER, now + self._lease_seconds),
        )

    def _hold(self, lease: str) -> None:
        """Keep ``lease`` alive until released: the heartbeat thread renews it."""
        with self._held_lock:
            self._held.add(lease)
            if self._beater is None or not self._beater.is_alive():
                self._beat.clear()
                self._beater = threading.Thread(
                    target=self._renew_loop, name=f"ibdata-leases {self.location}", daemon=True
                )
                self._beater.start()

    def _renew_loop(self) -> None:
        while not self._beat.wait(self._lease_seconds / 3):
            with self._held_lock:
                held = sorted(self._held)
            if not held:
                continue
            marks = ", ".join("?" * len(held))

            def work(conn: Any, held: list[str] = held, marks: str = marks) -> None:
                until = self._now(conn) + self._lease_seconds
                conn.execute(f"UPDATE leases SET expires = ? WHERE id IN ({marks})", (until, *held))

            try:
                self._run(work, write=True)
            except Exception as exc:  # the store is down: the leases may expire, as they should
                logger.warning(
                    "store %s: could not renew %d leases: %s", self.location, len(held), exc
                )

    def _stop_leases(self) -> None:
        """Stop renewing and release every lease still held (on close)."""
        self._beat.set()
        beater, self._beater = self._beater, None
        if beater is not None and beater is not threading.current_thread():
            beater.join(timeout=10)
        with self._held_lock:
            held, self._held = sorted(self._held), set()
        for lease in held:
            try:
                self._run(functools.partial(_delete_lease, lease=lease), write=True)
            except Exception as exc:  # they expire on their own
                logger.info("store %s: lease %s left to expire: %s", self.location, lease, exc)
