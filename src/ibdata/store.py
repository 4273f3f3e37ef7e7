"""The bar store: one interface, two backends, for the history engine's bars and its
shared pacing ledger.

A store keeps final bars of each series (:class:`SeriesKey`) with the intervals they cover,
each contract's head timestamp, and, for clients that share a TWS login, the pacing ledger
and the leases that let many processes and hosts share IB's budget without ever breaking
its rules or requesting the same chunk twice (see :doc:`/sharing`). Two backends implement
:class:`~ibdata.store.BarStore` and pass one test suite:

* :class:`ibdata.cache.BarCache`: one SQLite file, the default; every process of one
  machine may share it.
* :class:`ibdata.postgres.PostgresStore`: a PostgreSQL database, for several hosts (extra
  ``ibdata[postgres]``).

:func:`open_store` opens either from what a user types: a path, or a ``postgresql://`` URL.

>>> import tempfile
>>> from ibdata.store import open_store
>>> folder = tempfile.TemporaryDirectory()
>>> with open_store(f"{folder.name}/bars.sqlite") as store:
...     print(type(store).__name__, store.info().backend)
BarCache sqlite
>>> folder.cleanup()
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
import math
import operator
import os
from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import attrs

from ibdata.models import BarSize, WhatToShow

__all__ = [
    "BarStore",
    "CacheInfo",
    "CacheWarning",
    "CachedBars",
    "Copied",
    "SeriesKey",
    "StoreError",
    "copy_store",
    "open_store",
]

#: An interval ``[lo, hi)`` in epoch seconds.
Window = tuple[float, float]


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
    """Bars of one series as eight columns, the form a :class:`~ibdata.store.BarStore`
    stores and loads.

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
    """A summary of a store, as returned by :meth:`ibdata.store.BarStore.info`.

    Attributes:
        path: The cache file of a SQLite store; for PostgreSQL, None.
        size_bytes: Its size on disk, write-ahead log included (PostgreSQL: the size of
            ibdata's tables).
        schema_version: The file's schema version.
        series: How many series (:class:`SeriesKey`) the cache knows.
        bars: How many bars it holds, in all series.
        covered_seconds: The total length of the covered intervals, in seconds, summed over
            all series.
        oldest: The earliest bar time in any series (epoch seconds), or None without bars.
        newest: The latest bar time in any series (epoch seconds), or None without bars.
        backend: ``"sqlite"`` or ``"postgresql"``.
        location: Where the store is: the file, or the URL without its password.
        logins: How many TWS logins have requests in the shared pacing ledger now.
        leases: How many leases are live now (open requests and chunks being fetched).
    """

    path: Path | None
    size_bytes: int
    schema_version: int
    series: int
    bars: int
    covered_seconds: float
    oldest: float | None
    newest: float | None
    backend: str = "sqlite"
    location: str = ""
    logins: int = 0
    leases: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values.

        Returns:
            A dict with the attributes as keys; the path as a string (or None).
        """
        values = attrs.asdict(self)
        values["path"] = None if self.path is None else str(self.path)
        return values


class CacheWarning(UserWarning):
    """The bar store could not be used as it was, and ibdata worked around it.

    Issued with :func:`warnings.warn` in these cases:

    * :class:`~ibdata.cache.BarCache` found a damaged file (a row failing its checksum
      included), another program's SQLite database, or a file written with a newer schema
      version. The message names the file, what was wrong with it, and where it was moved:
      the old file is kept as ``<name>.corrupt-<UTC timestamp>`` for inspection. The cache
      itself keeps working, with its contents lost.
    * :class:`~ibdata.postgres.PostgresStore` found rows failing their checksums: the
      series they belong to is dropped from the store (fetched again when next asked for).
    * A range download (:meth:`ibdata.Client.get_historical_bars` with ``start``) could not
      read or write the store: SQLite failed (a full disk, an I/O error), another
      connection kept the file locked past the cache's ``timeout``, or PostgreSQL could
      not be reached. The message says what could not be done and why; the call went on
      without the store, fetching from IB what it could not read and returning what it
      could not store. The next call tries the store again.
    * The shared pacing ledger could not be reached: the client paced by its own record
      until it could again.
    """


class StoreError(OSError):
    """A store cannot be opened or used: PostgreSQL refused the connection (bad
    credentials, no such database, server down), the database holds tables of another
    program where ibdata's belong, or a newer ibdata wrote it. The message names the store
    (a URL never with its password) and what was wrong; nothing was written.

    It is an :class:`OSError`, as SQLite's file errors are, so one ``except OSError``
    handles a store that cannot be used whatever its backend.
    """


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


#: The signature of a pacing decision (see :meth:`BarStore.admit`): given the ledger's
#: entries of the login ``(time, request)`` oldest first, the number of live open-request
#: leases and the store's clock now, the seconds to wait before the request may be sent
#: (zero or less: send it now).
Decide = Callable[[Sequence[tuple[float, str]], int, float], float]


class BarStore(abc.ABC):
    """What the history engine needs of a store; :class:`~ibdata.cache.BarCache` (SQLite)
    and :class:`~ibdata.postgres.PostgresStore` implement it and pass one test suite.

    Bars and coverage: :meth:`covered`, :meth:`missing`, :meth:`store`, :meth:`load`,
    :meth:`head`, :meth:`set_head`, :meth:`info`, :meth:`clear`. Every write is one
    transaction, every row carries a checksum checked when read.

    Sharing (see :doc:`/sharing`): :meth:`admit` and :meth:`release` keep the pacing ledger
    and the open-request leases of a TWS login; :meth:`claim` and :meth:`release` lease a
    chunk of a series while one client fetches it. A lease lives ``lease_seconds`` unless
    the store that took it renews it (a thread does, every third of that, while the store
    is open), so the leases of a process that dies expire on their own.

    Times are epoch seconds, compared exactly as given. Every method is thread-safe.
    """

    #: The version of the layout this ibdata reads and writes.
    SCHEMA_VERSION: ClassVar[int] = 4

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """The store's file path, or its URL without the password."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once :meth:`close` was called."""

    @property
    @abc.abstractmethod
    def lease_seconds(self) -> float:
        """How long a lease lives unless renewed (seconds)."""

    @abc.abstractmethod
    def covered(self, key: SeriesKey, start: float, end: float) -> list[Window]:
        """The parts of ``[start, end)`` whose bars are all in the store, sorted, disjoint,
        clipped to the range."""

    def missing(self, key: SeriesKey, start: float, end: float) -> list[Window]:
        """The parts of ``[start, end)`` not covered by the store: what is left to fetch.

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
            TypeError: ``key`` is not a :class:`~ibdata.store.SeriesKey`, or a time is not a number.
            ValueError: A time is not finite, ``start`` is after ``end``, or the store is
                closed.
            OSError: The store cannot be read (:class:`~ibdata.store.StoreError`,
                :class:`TimeoutError`).
        """
        lo, hi = _interval(start, end)
        return _gaps(self.covered(key, lo, hi), lo, hi)

    @abc.abstractmethod
    def store(self, key: SeriesKey, start: float, end: float, bars: CachedBars) -> int:
        """Store the final bars of ``[start, end)`` and record the interval as covered, in
        one transaction; returns how many bars were written."""

    @abc.abstractmethod
    def load(self, key: SeriesKey, start: float, end: float) -> CachedBars:
        """The stored bars of ``[start, end)``, sorted by time."""

    @abc.abstractmethod
    def head(self, con_id: int, what_to_show: WhatToShow | str, use_rth: bool) -> float | None:
        """The remembered head timestamp (epoch seconds), or None."""

    @abc.abstractmethod
    def set_head(
        self, con_id: int, what_to_show: WhatToShow | str, use_rth: bool, head: float
    ) -> None:
        """Remember a contract's head timestamp, replacing the one stored before."""

    @abc.abstractmethod
    def info(self) -> CacheInfo:
        """A summary of the store."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Delete all bars, covered intervals and head timestamps (not the ledger)."""

    @abc.abstractmethod
    def series_keys(self) -> list[SeriesKey]:
        """Every series the store knows, sorted."""

    @abc.abstractmethod
    def head_timestamps(self) -> list[tuple[int, str, bool, float]]:
        """Every head timestamp stored: ``(con_id, what_to_show, use_rth, head)``."""

    @abc.abstractmethod
    def admit(
        self, login: str, decide: Decide, request: str | None, lease: str, keep: float
    ) -> float:
        """One pacing decision for ``login``, under the login's lock.

        Reads the ledger entries of the login (dropping those older than ``keep``
        seconds) and the live open-request leases, and calls ``decide``. When it returns
        zero or less, the request is admitted in the same transaction: ``request`` (a
        string the caller can read back; None for a request no rule counts) is added to the
        ledger at the store's time, and an open-request lease named ``lease`` is taken.

        Returns:
            What ``decide`` returned: the seconds to wait before asking again, or zero or
            less when the request was admitted.
        """

    @abc.abstractmethod
    def sent(self, login: str, lease: str) -> None:
        """Move the ledger entry of the request admitted with ``lease`` to the store's time
        now: the moment it is sent. Admission and sending are apart by however long the
        client takes in between (milliseconds; more on a loaded machine); every later
        decision must count the request from when TWS can have seen it."""

    @abc.abstractmethod
    def ledger(self, login: str) -> tuple[list[tuple[float, str]], float]:
        """The ledger entries of ``login`` ``(time, request)`` oldest first, and the store's
        clock now."""

    @abc.abstractmethod
    def claim(
        self, key: SeriesKey, start: float, end: float, lease: str
    ) -> tuple[list[Window], bool]:
        """Lease the missing parts of ``[start, end)`` of a series for fetching.

        Returns:
            The parts still missing, and whether the lease ``lease`` was taken: True when
            no live lease of anybody else overlaps them (fetch them, store them, then
            :meth:`release`), False when another client is fetching some of them (wait,
            then ask again). Nothing missing: ``([], False)``.
        """

    @abc.abstractmethod
    def release(self, lease: str) -> None:
        """End a lease (an open request, or a chunk). Unknown leases are ignored."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the store; its leases are released. Calling it again does nothing."""

    def __enter__(self) -> BarStore:
        """Return the store itself."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the store."""
        self.close()


def _gaps(covered: Iterable[Window], lo: float, hi: float) -> list[Window]:
    """What ``covered`` (sorted, disjoint, inside ``[lo, hi)``) leaves of ``[lo, hi)``."""
    gaps: list[Window] = []
    cursor = lo
    for a, b in covered:
        if a > cursor:
            gaps.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < hi:
        gaps.append((cursor, hi))
    return gaps


def is_url(target: object) -> bool:
    """True when ``target`` is a PostgreSQL URL (``postgresql://`` or ``postgres://``)."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_store(target: str | os.PathLike[str] | BarStore) -> BarStore:
    """The store named by ``target``: a :class:`~ibdata.store.BarStore` as given, a
    ``postgresql://`` (or ``postgres://``) URL as a :class:`~ibdata.postgres.PostgresStore`,
    anything else as the path of a :class:`~ibdata.cache.BarCache` file (``~`` expanded).

    Args:
        target: A path, a URL or a store.

    Returns:
        An open store; the caller closes it (unless it was given one).

    Raises:
        TypeError: ``target`` is none of these.
        StoreError: PostgreSQL cannot be reached or used (the message says why);
            ``ibdata[postgres]`` is not installed.
        OSError: The SQLite file cannot be created.
    """
    if isinstance(target, BarStore):
        return target
    if is_url(target):
        from ibdata.postgres import PostgresStore

        return PostgresStore(str(target))
    if isinstance(target, (str, os.PathLike)):
        from ibdata.cache import BarCache

        return BarCache(target)
    raise TypeError(f"a store must be a path, a postgresql:// URL or a BarStore, got {target!r}")


@attrs.frozen
class Copied:
    """What :func:`copy_store` copied.

    Attributes:
        series: How many series (each with its covered intervals).
        bars: How many bars.
        heads: How many head timestamps.
    """

    series: int
    bars: int
    heads: int


#: Covered intervals are read whole up to this far from the epoch (about 31 million years).
_FOREVER = 1e15


def copy_store(source: BarStore, target: BarStore) -> Copied:
    """Copy every series (its covered intervals and their bars) and every head timestamp
    of ``source`` into ``target``, one covered interval per transaction. What ``target``
    holds for the same intervals is replaced; everything else of it is kept. Copying again
    changes nothing. The pacing ledger and leases are not copied: they describe requests
    in flight, not data.

    Args:
        source: The store read.
        target: The store written.

    Returns:
        How many series, bars and head timestamps were copied.

    Raises:
        OSError: Either store cannot be used (:class:`~ibdata.store.StoreError`,
            :class:`TimeoutError`).
    """
    series = bars = 0
    for key in source.series_keys():
        series += 1
        for lo, hi in source.covered(key, -_FOREVER, _FOREVER):
            bars += target.store(key, lo, hi, source.load(key, lo, hi))
    heads = source.head_timestamps()
    for con_id, what_to_show, use_rth, head in heads:
        target.set_head(con_id, what_to_show, use_rth, head)
    return Copied(series, bars, len(heads))
