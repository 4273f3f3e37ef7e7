"""Tests for the bar store: the shared suite every backend passes (fixture ``cache``, run on
SQLite and on a real PostgreSQL), then what is particular to the SQLite file."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibdata.cache import BarCache, CachedBars, CacheInfo, CacheWarning, SeriesKey
from ibdata.models import BarSize, WhatToShow
from ibdata.store import BarStore

SRC = Path(__file__).resolve().parents[1] / "src"
KEY = SeriesKey(265598, "TRADES", "1 min", False)
NAN = math.nan

#: A child process storing chunks of ``size`` one-second bars, bar ``t`` having every price
#: and the volume equal to ``t``; chunk ``c`` covers ``[c * size, (c + 1) * size)``. It
#: prints "stored" after its first chunk, and runs forever when ``last`` is negative.
WRITER = """
import sys
from array import array
from ibdata.cache import BarCache, CachedBars, SeriesKey

path, con_ids, first, last, size = sys.argv[1:]
keys = [SeriesKey(int(c), "TRADES", "1 secs", False) for c in con_ids.split(",")]
first, last, size = int(first), int(last), int(size)
with BarCache(path) as cache:
    chunk = first
    while last < 0 or chunk < last:
        start = chunk * size
        t = array("d", range(start, start + size))
        bars = CachedBars(t, t, t, t, t, t, t, array("q", range(size)))
        for key in keys:
            cache.store(key, start, start + size, bars)
        if chunk == first:
            print("stored", flush=True)
        chunk += 1
"""


def make_bars(times: Sequence[float], *, volume: Sequence[float] | None = None) -> CachedBars:
    """Bars at ``times`` whose prices are derived from the time."""
    t = array("d", times)
    vol = array("d", volume) if volume is not None else array("d", [100.0] * len(t))
    return CachedBars(
        t,
        array("d", [x + 1.0 for x in t]),
        array("d", [x + 2.0 for x in t]),
        array("d", [x - 1.0 for x in t]),
        array("d", [x + 0.5 for x in t]),
        vol,
        array("d", [x + 0.25 for x in t]),
        array("q", range(len(t))),
    )


def seconds(bars: CachedBars) -> list[float]:
    """The bar times as a list."""
    return list(bars.time)


def writer(path: Path, con_ids: str, first: int, last: int, size: int) -> subprocess.Popen[str]:
    """Start :data:`WRITER` in a new interpreter that imports ibdata from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    args = [sys.executable, "-W", "error", "-c", WRITER, str(path), con_ids]
    return subprocess.Popen(
        [*args, str(first), str(last), str(size)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BarStore]:
    """An empty store of each backend (a SQLite file in a fresh directory; a fresh
    PostgreSQL database), closed after the test: the suite every backend passes."""
    if request.param == "sqlite":
        with BarCache(tmp_path / "cache.sqlite") as opened:
            yield opened
    else:
        from ibdata.postgres import PostgresStore

        with PostgresStore(request.getfixturevalue("postgres_url")) as store:
            yield store


@pytest.fixture
def sqlite_cache(tmp_path: Path) -> Iterator[BarCache]:
    """An empty SQLite cache in a fresh directory, closed after the test."""
    with BarCache(tmp_path / "cache.sqlite") as opened:
        yield opened


# --------------------------------------------------------------------------- records
def test_series_key_keeps_ib_canonical_strings() -> None:
    """A series key stores IB's canonical what-to-show and bar-size strings, enums or not."""
    assert SeriesKey(1, "trades", "1W", True) == SeriesKey(
        1, WhatToShow.TRADES, BarSize.ONE_WEEK, True
    )
    key = SeriesKey(1, WhatToShow.MIDPOINT, BarSize.ONE_MINUTE, False)
    assert type(key.what_to_show) is str
    assert (key.what_to_show, key.bar_size) == ("MIDPOINT", "1 min")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("1", "TRADES", "1 min", False), TypeError),
        ((-1, "TRADES", "1 min", False), ValueError),
        ((True, "TRADES", "1 min", False), TypeError),
        ((1, "LAST", "1 min", False), ValueError),
        ((1, "TRADES", "1 sec", False), ValueError),
        ((1, "TRADES", "1 min", 0), TypeError),
    ],
)
def test_series_key_refuses_bad_fields(args: tuple[object, ...], error: type[Exception]) -> None:
    """A series key refuses a bad contract id, IB value or flag."""
    with pytest.raises(error):
        SeriesKey(*args)  # type: ignore[arg-type]


def test_cached_bars_checks_columns() -> None:
    """Cached bars need columns of one length and sorted, unique, finite times."""
    bars = make_bars([1.0, 2.0])
    with pytest.raises(ValueError, match="column wap has 1 values"):
        attrs.evolve(bars, wap=[1.0])
    for times in ([2.0, 1.0], [1.0, 1.0], [1.0, NAN], [1.0, math.inf]):
        with pytest.raises(ValueError, match="sorted ascending"):
            attrs.evolve(bars, time=times)
    with pytest.raises(TypeError):
        attrs.evolve(bars, time=["a", "b"])  # type: ignore[list-item]
    assert len(CachedBars.empty()) == 0
    assert make_bars([1.0, 2.0]) == bars


# --------------------------------------------------------------------------- basics
def test_round_trip_keeps_missing_value_markers(cache: BarStore) -> None:
    """Stored bars load back exactly, NaN and -1 markers included."""
    times = [60.0 * i for i in range(6)]
    bars = make_bars(times, volume=[NAN, -1.0, 0.0, 5.5, NAN, 1e12])
    bars = CachedBars(
        bars.time,
        bars.open,
        bars.high,
        bars.low,
        bars.close,
        bars.volume,
        array("d", [NAN, -1.0, 1.5, 2.5, -1.0, NAN]),
        array("q", [-1, 0, 3, -1, 7, 2**40]),
    )
    assert cache.store(KEY, 0.0, 360.0, bars) == 6
    loaded = cache.load(KEY, 0.0, 360.0)
    assert loaded == bars
    assert loaded.count.typecode == "q"
    assert math.isnan(loaded.volume[0])
    assert loaded.wap[1] == -1.0
    assert seconds(cache.load(KEY, 60.0, 180.0)) == [60.0, 120.0]


def test_store_ignores_bars_outside_the_interval(cache: BarStore) -> None:
    """Only bars inside ``[start, end)`` are written, and the count says how many."""
    assert cache.store(KEY, 100.0, 200.0, make_bars([50.0, 100.0, 150.0, 200.0, 250.0])) == 2
    assert seconds(cache.load(KEY, 0.0, 1000.0)) == [100.0, 150.0]
    assert cache.covered(KEY, 0.0, 1000.0) == [(100.0, 200.0)]


def test_store_replaces_what_the_interval_held(cache: BarStore) -> None:
    """Storing an interval again makes the new bars its content, leaving others alone."""
    cache.store(KEY, 0.0, 100.0, make_bars([0.0, 10.0, 20.0, 90.0]))
    newer = make_bars([10.0, 15.0], volume=[7.0, 8.0])
    cache.store(KEY, 5.0, 50.0, newer)
    loaded = cache.load(KEY, 0.0, 100.0)
    assert seconds(loaded) == [0.0, 10.0, 15.0, 90.0]
    assert list(loaded.volume) == [100.0, 7.0, 8.0, 100.0]
    assert cache.covered(KEY, -1e9, 1e9) == [(0.0, 100.0)]


def test_series_are_kept_apart(cache: BarStore) -> None:
    """Bars and coverage of one series never show up under another key."""
    others = [
        SeriesKey(265599, "TRADES", "1 min", False),
        SeriesKey(265598, "MIDPOINT", "1 min", False),
        SeriesKey(265598, "TRADES", "5 mins", False),
        SeriesKey(265598, "TRADES", "1 min", True),
    ]
    cache.store(KEY, 0.0, 120.0, make_bars([0.0, 60.0]))
    for other in others:
        assert cache.load(other, 0.0, 120.0) == CachedBars.empty()
        assert cache.missing(other, 0.0, 120.0) == [(0.0, 120.0)]


def test_empty_intervals_are_recorded(cache: BarStore) -> None:
    """An interval stored without bars counts as covered, so it is not fetched again."""
    assert cache.store(KEY, 10.0, 20.0, CachedBars.empty()) == 0
    assert cache.covered(KEY, 0.0, 30.0) == [(10.0, 20.0)]
    assert cache.missing(KEY, 0.0, 30.0) == [(0.0, 10.0), (20.0, 30.0)]
    assert len(cache.load(KEY, 0.0, 30.0)) == 0
    assert cache.store(KEY, 25.0, 25.0, make_bars([25.0])) == 0  # zero length: nothing
    assert cache.missing(KEY, 0.0, 30.0) == [(0.0, 10.0), (20.0, 30.0)]


def test_intervals_merge_when_overlapping_adjacent_or_nested(cache: BarStore) -> None:
    """Covered intervals are merged: overlapping, touching and nested ones become one."""
    empty = CachedBars.empty()
    cache.store(KEY, 10.0, 20.0, empty)
    cache.store(KEY, 30.0, 40.0, empty)
    assert cache.covered(KEY, 0.0, 100.0) == [(10.0, 20.0), (30.0, 40.0)]
    cache.store(KEY, 20.0, 25.0, empty)  # adjacent to the first
    assert cache.covered(KEY, 0.0, 100.0) == [(10.0, 25.0), (30.0, 40.0)]
    cache.store(KEY, 32.0, 35.0, empty)  # nested
    assert cache.covered(KEY, 0.0, 100.0) == [(10.0, 25.0), (30.0, 40.0)]
    cache.store(KEY, 24.0, 31.0, empty)  # overlaps both
    assert cache.covered(KEY, 0.0, 100.0) == [(10.0, 40.0)]
    assert cache.covered(KEY, 15.0, 18.0) == [(15.0, 18.0)]
    assert cache.missing(KEY, 15.0, 18.0) == []
    assert cache.missing(KEY, 0.0, 100.0) == [(0.0, 10.0), (40.0, 100.0)]
    assert cache.missing(KEY, 40.0, 50.0) == [(40.0, 50.0)]
    assert cache.covered(KEY, 40.0, 50.0) == []
    cache.store(KEY, 0.0, 1000.0, empty)  # swallows everything
    assert cache.covered(KEY, -5.0, 2000.0) == [(0.0, 1000.0)]


def test_times_are_compared_exactly(cache: BarStore) -> None:
    """Fractional seconds are kept as given: no rounding opens or closes a gap."""
    a, b, c = 1_700_000_000.1, 1_700_000_000.2, 1_700_000_000.3000001
    cache.store(KEY, a, b, CachedBars.empty())
    cache.store(KEY, b, c, CachedBars.empty())
    assert cache.covered(KEY, 0.0, 2e9) == [(a, c)]
    assert cache.missing(KEY, a, math.nextafter(c, math.inf)) == [(c, math.nextafter(c, math.inf))]


INTERVALS = st.tuples(st.integers(0, 80), st.integers(0, 80)).map(sorted)


def test_missing_matches_a_reference(tmp_path: Path) -> None:
    """For random stores, ``missing`` and ``covered`` equal a plain set-of-cells model."""
    with BarCache(tmp_path / "cache.sqlite") as cache:
        con_ids = itertools.count(1)

        @given(stores=st.lists(INTERVALS, max_size=12), query=INTERVALS)
        @settings(max_examples=150, deadline=None)
        def check(stores: list[list[int]], query: list[int]) -> None:
            key = SeriesKey(next(con_ids), "BID", "1 min", False)
            cells: set[int] = set()  # cell i is [i/4, (i+1)/4)
            for lo, hi in stores:
                cache.store(key, lo / 4, hi / 4, CachedBars.empty())
                cells.update(range(lo, hi))
            lo, hi = query
            gaps: list[tuple[float, float]] = []
            runs: list[tuple[float, float]] = []
            for cell in range(lo, hi):
                target = runs if cell in cells else gaps
                if target and target[-1][1] == cell / 4:
                    target[-1] = (target[-1][0], (cell + 1) / 4)
                else:
                    target.append((cell / 4, (cell + 1) / 4))
            assert cache.missing(key, lo / 4, hi / 4) == gaps
            assert cache.covered(key, lo / 4, hi / 4) == runs

        check()


@pytest.mark.parametrize(
    ("start", "end", "error"),
    [
        (2.0, 1.0, ValueError),
        (NAN, 1.0, ValueError),
        (0.0, math.inf, ValueError),
        ("0", 1.0, TypeError),
    ],
)
def test_bad_intervals_are_refused(
    cache: BarCache, start: object, end: object, error: type[Exception]
) -> None:
    """Reversed, non-finite or non-numeric times raise before the file is touched."""
    for call in (cache.missing, cache.covered, cache.load):
        with pytest.raises(error):
            call(KEY, start, end)  # type: ignore[arg-type]
    with pytest.raises(error):
        cache.store(KEY, start, end, CachedBars.empty())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.store(KEY, 0.0, 1.0, [])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.load((1, "TRADES", "1 min", False), 0.0, 1.0)  # type: ignore[arg-type]


def test_head_timestamps(cache: BarStore) -> None:
    """Head timestamps are remembered per contract, what-to-show and RTH flag."""
    assert cache.head(265598, "TRADES", False) is None
    cache.set_head(265598, "TRADES", False, 345_000_000.0)
    cache.set_head(265598, WhatToShow.TRADES, True, 400_000_000.5)
    assert cache.head(265598, "trades", False) == 345_000_000.0
    assert cache.head(265598, "TRADES", True) == 400_000_000.5
    assert cache.head(265598, "MIDPOINT", False) is None
    cache.set_head(265598, "TRADES", False, 346_000_000.0)
    assert cache.head(265598, "TRADES", False) == 346_000_000.0
    with pytest.raises(ValueError, match="head"):
        cache.set_head(265598, "TRADES", False, NAN)
    with pytest.raises(ValueError, match="what_to_show"):
        cache.head(265598, "LAST", False)


def test_info_and_clear(cache: BarStore) -> None:
    """``info`` summarises the store; ``clear`` empties it and keeps it usable."""
    empty = cache.info()
    sqlite = isinstance(cache, BarCache)
    assert empty == CacheInfo(
        path=cache.path if isinstance(cache, BarCache) else None,
        size_bytes=empty.size_bytes,
        schema_version=BarStore.SCHEMA_VERSION,
        series=0,
        bars=0,
        covered_seconds=0.0,
        oldest=None,
        newest=None,
        backend="sqlite" if sqlite else "postgresql",
        location=cache.location,
        logins=0,
        leases=0,
    )
    cache.store(KEY, 0.0, 180.0, make_bars([0.0, 60.0, 120.0]))
    other = SeriesKey(1, "BID", "1 day", True)
    cache.store(other, 86400.0, 3 * 86400.0, make_bars([86400.0]))
    cache.set_head(1, "BID", True, 5.0)
    info = cache.info()
    assert (info.series, info.bars, info.covered_seconds) == (2, 4, 180.0 + 2 * 86400.0)
    assert (info.oldest, info.newest) == (0.0, 86400.0)
    assert info.size_bytes > 0
    assert info.to_dict()["path"] == (str(cache.path) if isinstance(cache, BarCache) else None)
    assert set(info.to_dict()) == {
        "backend",
        "location",
        "logins",
        "leases",
        "path",
        "size_bytes",
        "schema_version",
        "series",
        "bars",
        "covered_seconds",
        "oldest",
        "newest",
    }
    cache.clear()
    cleared = cache.info()
    assert (cleared.series, cleared.bars, cleared.covered_seconds) == (0, 0, 0.0)
    assert cache.missing(KEY, 0.0, 180.0) == [(0.0, 180.0)]
    assert cache.head(1, "BID", True) is None
    assert cache.store(KEY, 0.0, 60.0, make_bars([0.0])) == 1


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    """Bars, coverage and head timestamps survive closing and reopening the file."""
    path = tmp_path / "deep" / "er" / "cache.sqlite"
    with BarCache(path) as cache:
        cache.store(KEY, 0.0, 120.0, make_bars([0.0, 60.0]))
        cache.set_head(KEY.con_id, KEY.what_to_show, KEY.use_rth, -100.0)
    with BarCache(str(path)) as cache:
        assert cache.path == path
        assert cache.load(KEY, 0.0, 120.0) == make_bars([0.0, 60.0])
        assert cache.missing(KEY, 0.0, 180.0) == [(120.0, 180.0)]
        assert cache.head(KEY.con_id, KEY.what_to_show, KEY.use_rth) == -100.0


def test_file_is_a_wal_sqlite_database_marked_as_ours(sqlite_cache: BarCache) -> None:
    """The file is in WAL mode and carries ibdata's application id and schema version."""
    with contextlib.closing(sqlite3.connect(sqlite_cache.path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (BarCache.SCHEMA_VERSION,)
        assert conn.execute("PRAGMA application_id").fetchone()[0] != 0


def test_close_is_idempotent(tmp_path: Path) -> None:
    """``close`` may be called twice; a closed cache refuses calls with ValueError."""
    cache = BarCache(tmp_path / "cache.sqlite", timeout=5)
    assert "open" in repr(cache)
    cache.close()
    cache.close()
    assert cache.closed
    assert "closed" in repr(cache)
    with pytest.raises(ValueError, match="closed"):
        cache.missing(KEY, 0.0, 1.0)
    with pytest.raises(ValueError, match="closed"):
        cache.store(KEY, 0.0, 1.0, CachedBars.empty())
    with BarCache(tmp_path / "cache.sqlite") as again:
        pass
    again.close()


def test_bad_options_are_refused(tmp_path: Path) -> None:
    """A negative timeout or a path that is not a path raises before a file is created."""
    with pytest.raises(ValueError, match="timeout"):
        BarCache(tmp_path / "cache.sqlite", timeout=-1)
    with pytest.raises(TypeError, match="path"):
        BarCache(3)  # type: ignore[arg-type]
    assert not (tmp_path / "cache.sqlite").exists()


def test_writes_time_out_when_another_connection_holds_the_lock(sqlite_cache: BarCache) -> None:
    """A write waits ``timeout`` for another writer, then raises TimeoutError; reads go on."""
    cache = sqlite_cache
    cache.store(KEY, 0.0, 60.0, make_bars([0.0]))
    with contextlib.closing(sqlite3.connect(cache.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        try:
            with BarCache(cache.path, timeout=0.2) as impatient:
                assert seconds(impatient.load(KEY, 0.0, 60.0)) == [0.0]
                with pytest.raises(TimeoutError, match="locked"):
                    impatient.store(KEY, 60.0, 120.0, make_bars([60.0]))
        finally:
            other.execute("ROLLBACK")
    assert cache.missing(KEY, 0.0, 120.0) == [(60.0, 120.0)]


# --------------------------------------------------------------------------- broken files
def aside_files(path: Path) -> list[Path]:
    """The files a broken cache at ``path`` was moved to."""
    return sorted(path.parent.glob(path.name + ".corrupt-*"))


def assert_usable(path: Path) -> None:
    """The cache at ``path`` opens without a warning, empty, and stores and loads bars."""
    with BarCache(path) as cache:
        assert cache.info().bars == 0
        cache.store(KEY, 0.0, 60.0, make_bars([0.0]))
        assert seconds(cache.load(KEY, 0.0, 60.0)) == [0.0]


def test_random_bytes_are_moved_aside(tmp_path: Path) -> None:
    """A file of random bytes is kept aside with a CacheWarning, and a new cache is made."""
    path = tmp_path / "cache.sqlite"
    junk = random.Random(1).randbytes(10_000)
    path.write_bytes(junk)
    with pytest.warns(CacheWarning, match="not a readable SQLite database") as record:
        cache = BarCache(path)
    cache.close()
    assert str(path) in str(record[0].message)
    assert record[0].filename == __file__
    [aside] = aside_files(path)
    assert aside.read_bytes() == junk
    assert aside.name in str(record[0].message)
    assert_usable(path)


def test_damaged_cache_is_moved_aside(tmp_path: Path) -> None:
    """A cache whose pages were overwritten fails the integrity check and is rebuilt."""
    path = tmp_path / "cache.sqlite"
    with BarCache(path) as cache:
        cache.store(KEY, 0.0, 60.0 * 20_000, make_bars([60.0 * i for i in range(20_000)]))
    size = path.stat().st_size
    assert size > 100_000
    with path.open("r+b") as handle:
        handle.seek(8192)
        handle.write(random.Random(2).randbytes(size // 2))
    with pytest.warns(CacheWarning, match="cache.sqlite"):
        BarCache(path).close()
    assert len(aside_files(path)) == 1
    assert_usable(path)


def test_foreign_database_is_moved_aside(tmp_path: Path) -> None:
    """Another program's SQLite database is kept aside untouched, and a new cache is made."""
    path = tmp_path / "cache.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
        conn.commit()
    with pytest.warns(CacheWarning, match="not an ibdata cache.*users"):
        BarCache(path).close()
    [aside] = aside_files(path)
    with contextlib.closing(sqlite3.connect(aside)) as conn:
        assert conn.execute("SELECT name FROM users").fetchall() == [("ada",)]
    assert_usable(path)


def test_newer_schema_is_moved_aside(tmp_path: Path) -> None:
    """A cache written with a newer schema version is kept aside, and a new cache is made."""
    path = tmp_path / "cache.sqlite"
    with BarCache(path) as cache:
        cache.store(KEY, 0.0, 60.0, make_bars([0.0]))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {BarCache.SCHEMA_VERSION + 1}")
    with pytest.warns(
        CacheWarning, match=f"schema version {BarCache.SCHEMA_VERSION + 1}, written by a newer"
    ):
        BarCache(path).close()
    [aside] = aside_files(path)
    with contextlib.closing(sqlite3.connect(aside)) as conn:
        assert conn.execute("SELECT TOTAL(n) FROM blocks").fetchone() == (1.0,)
    assert_usable(path)


def test_each_broken_file_gets_its_own_name(tmp_path: Path) -> None:
    """Two broken files moved aside within one second keep distinct names."""
    path = tmp_path / "cache.sqlite"
    for seed in (3, 4):
        path.write_bytes(random.Random(seed).randbytes(5000))
        with pytest.warns(CacheWarning):
            BarCache(path).close()
    assert len(aside_files(path)) == 2


# --------------------------------------------------------------------------- concurrency
def test_threads_store_and_load_at_once(tmp_path: Path) -> None:
    """Eight threads storing and loading at once, through one cache or their own, lose nothing."""
    path = tmp_path / "cache.sqlite"
    shared_key = SeriesKey(1, "TRADES", "1 secs", False)
    size, chunks = 200, 15
    start = threading.Barrier(8)

    def work(index: int, cache: BarCache) -> None:
        own = SeriesKey(100 + index, "TRADES", "1 secs", False)
        start.wait()
        for chunk in range(chunks):
            lo = (chunk * 8 + index) * size
            bars = make_bars(range(lo, lo + size))
            assert cache.store(shared_key, lo, lo + size, bars) == size
            assert cache.store(own, lo, lo + size, bars) == size
            assert cache.load(own, lo, lo + size) == bars
            assert cache.missing(own, lo, lo + size) == []
            cache.load(shared_key, lo - 5 * size, lo + size)
            cache.info()

    with BarCache(path) as shared:
        own_caches = [BarCache(path) for _ in range(4)]
        try:
            caches = [shared] * 4 + own_caches
            with ThreadPoolExecutor(8) as pool:
                for future in [pool.submit(work, i, c) for i, c in enumerate(caches)]:
                    future.result()
        finally:
            for own_cache in own_caches:
                own_cache.close()
        total = chunks * 8 * size
        assert seconds(shared.load(shared_key, 0, 1e9)) == [float(t) for t in range(total)]
        assert shared.covered(shared_key, 0, 1e9) == [(0.0, float(total))]
        assert shared.info().bars == 2 * total


def test_two_processes_write_one_file_at_once(tmp_path: Path) -> None:
    """Two processes writing the same file, to a shared series and their own, both succeed."""
    path = tmp_path / "cache.sqlite"
    size = 500
    first = writer(path, "1,2", 0, 60, size)
    second = writer(path, "1,3", 30, 90, size)
    for process in (first, second):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert out == "stored\n"
    with BarCache(path) as cache:
        expected = {1: (0, 90), 2: (0, 60), 3: (30, 90)}
        for con_id, (lo, hi) in expected.items():
            key = SeriesKey(con_id, "TRADES", "1 secs", False)
            bars = cache.load(key, -1.0, 1e9)
            assert seconds(bars) == [float(t) for t in range(lo * size, hi * size)]
            assert list(bars.open) == seconds(bars)
            assert cache.covered(key, -1.0, 1e9) == [(lo * size, hi * size)]
        assert cache.info().bars == (90 + 60 + 60) * size


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    ("signum", "delay"),
    [
        pytest.param(signal.SIGKILL, 0.0, id="kill-at-once"),
        pytest.param(signal.SIGKILL, 0.15, id="kill-soon"),
        pytest.param(signal.SIGKILL, 0.4, id="kill-later"),
        pytest.param(signal.SIGINT, 0.0, id="ctrl-c-at-once"),
        pytest.param(signal.SIGINT, 0.25, id="ctrl-c-later"),
    ],
)
def test_interrupted_writer_leaves_whole_chunks(
    tmp_path: Path, signum: signal.Signals, delay: float
) -> None:
    """A writer killed or interrupted (Ctrl-C) mid-store leaves a file that opens cleanly
    and holds every chunk it finished, whole, and nothing of the chunk it was writing."""
    path = tmp_path / "cache.sqlite"
    size = 3000
    process = writer(path, "7", 0, -1, size)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "stored\n"
        time.sleep(delay)
    finally:
        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
    if signum == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode in (-signal.SIGINT, 1)
        assert err.rstrip().endswith("KeyboardInterrupt"), err
    key = SeriesKey(7, "TRADES", "1 secs", False)
    with BarCache(path) as cache:  # a CacheWarning would fail the test (filterwarnings)
        [(lo, hi)] = cache.covered(key, -1.0, 1e12)
        assert lo == 0.0
        assert hi % size == 0
        assert hi >= size
        bars = cache.load(key, -1.0, 1e12)
        assert seconds(bars) == [float(t) for t in range(int(hi))]
        assert list(bars.close) == seconds(bars)


def test_schema_one_file_is_rebuilt(tmp_path: Path) -> None:
    """A cache of schema version 1 (one row per bar) is set aside and rebuilt empty, at the
    current version."""
    path = tmp_path / "old.sqlite"
    with BarCache(path) as cache:
        cache.store(KEY, 0.0, 60.0, make_bars([0.0]))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 1")
    with pytest.warns(CacheWarning, match="unsupported schema version 1"):
        cache = BarCache(path)
    with cache:
        assert cache.info().schema_version == BarCache.SCHEMA_VERSION == 4
        assert cache.missing(KEY, 0.0, 60.0) == [(0.0, 60.0)]


def _schema_two_file(path: Path, bars: CachedBars) -> None:
    """Write a cache as ibdata wrote schema version 2 (rows without checksums), holding
    ``bars`` as one block of KEY covering ``[0, 600)``, and KEY's head timestamp 0."""
    data = b"".join(column.tobytes() for column in attrs.astuple(bars, recurse=False))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            """
            CREATE TABLE series (id INTEGER PRIMARY KEY, con_id INTEGER NOT NULL,
                what_to_show TEXT NOT NULL, bar_size TEXT NOT NULL, use_rth INTEGER NOT NULL,
                UNIQUE (con_id, what_to_show, bar_size, use_rth));
            CREATE TABLE blocks (series_id INTEGER NOT NULL, first REAL NOT NULL,
                last REAL NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,
                PRIMARY KEY (series_id, first)) WITHOUT ROWID;
            CREATE TABLE coverage (series_id INTEGER NOT NULL, start REAL NOT NULL,
                stop REAL NOT NULL, PRIMARY KEY (series_id, start)) WITHOUT ROWID;
            CREATE TABLE heads (con_id INTEGER NOT NULL, what_to_show TEXT NOT NULL,
                use_rth INTEGER NOT NULL, head REAL NOT NULL,
                PRIMARY KEY (con_id, what_to_show, use_rth)) WITHOUT ROWID;
            PRAGMA application_id = 1768055875;  -- "ibdC"
            PRAGMA user_version = 2;
            """
        )
        conn.execute("INSERT INTO series VALUES (1, ?, 'TRADES', '1 min', 0)", (KEY.con_id,))
        conn.execute(
            "INSERT INTO blocks VALUES (1, ?, ?, ?, ?)",
            (bars.time[0], bars.time[-1], len(bars), data),
        )
        conn.execute("INSERT INTO coverage VALUES (1, 0.0, 600.0)")
        conn.execute("INSERT INTO heads VALUES (?, 'TRADES', 0, 0.0)", (KEY.con_id,))
        conn.commit()


def _zero_the_end_of_a_block(path: Path, length: int) -> None:
    """Overwrite the last ``length`` bytes of KEY's first block with zeros, as a page of a
    large blob zeroed on disk would: the block keeps its size and SQLite's check passes."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        series_id, first, data = conn.execute(
            "SELECT series_id, first, data FROM blocks ORDER BY series_id, first LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE blocks SET data = ? WHERE series_id = ? AND first = ?",
            (data[:-length] + bytes(length), series_id, first),
        )
        conn.commit()
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)


def test_schema_two_file_gets_checksums_and_keeps_its_bars(tmp_path: Path) -> None:
    """A cache of schema version 2 (blocks without checksums) is upgraded in place, without
    a warning: its bars and coverage stay, and damage to them is caught afterwards."""
    path = tmp_path / "v2.sqlite"
    bars = make_bars([60.0 * i for i in range(10)])
    _schema_two_file(path, bars)
    with BarCache(path) as cache:  # a CacheWarning would fail the test (filterwarnings)
        assert cache.info().schema_version == 4
        assert cache.load(KEY, 0.0, 600.0) == bars
        assert cache.missing(KEY, 0.0, 600.0) == []
        assert cache.head(KEY.con_id, "TRADES", use_rth=False) == 0.0
    _zero_the_end_of_a_block(path, 16)
    with pytest.warns(CacheWarning, match="fails its checksum"):
        assert len(_open_and_load(path)) == 0


def test_schema_two_file_with_a_short_block_is_moved_aside(tmp_path: Path) -> None:
    """A version-2 file whose block is shorter than its row says is not upgraded: it is set
    aside like any damaged file."""
    path = tmp_path / "v2.sqlite"
    _schema_two_file(path, make_bars([60.0 * i for i in range(10)]))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE blocks SET data = substr(data, 1, 100)")
        conn.commit()
    with pytest.warns(CacheWarning, match="a block of 10 bars holds 100 bytes"):
        cache = BarCache(path)
    with cache:
        assert cache.missing(KEY, 0.0, 600.0) == [(0.0, 600.0)]


def _open_and_load(path: Path) -> CachedBars:
    """Open the cache at ``path`` and load KEY's bars of ``[0, 600)``."""
    with BarCache(path) as cache:
        return cache.load(KEY, 0.0, 600.0)


def test_zeroed_block_data_is_never_served(tmp_path: Path) -> None:
    """Block data zeroed on disk (same size, SQLite's check passes) fails the block's
    checksum when it is read: the file is set aside with a CacheWarning and the load is
    empty, never the zeros."""
    path = tmp_path / "c.sqlite"
    with BarCache(path) as cache:
        cache.store(KEY, 0.0, 600.0, make_bars([60.0 * i for i in range(10)]))
    _zero_the_end_of_a_block(path, 8)  # the last bar's trade count becomes 0
    with BarCache(path) as cache:  # the open reads no block: no warning yet
        with pytest.warns(CacheWarning, match="a block of 10 bars at 0.0 fails its checksum"):
            assert len(cache.load(KEY, 0.0, 600.0)) == 0
        assert cache.missing(KEY, 0.0, 600.0) == [(0.0, 600.0)]
    assert len(list(tmp_path.glob("c.sqlite.corrupt-*"))) == 1


@pytest.mark.parametrize("column", ["first", "last", "n"])
def test_a_changed_block_bound_is_caught(tmp_path: Path, column: str) -> None:
    """A block whose bounds or bar count changed on disk fails its checksum (a changed
    bound would otherwise misplace the block's bars in loads and stores)."""
    path = tmp_path / "c.sqlite"
    with BarCache(path) as cache:
        cache.store(KEY, 0.0, 600.0, make_bars([60.0 * i for i in range(10)]))
    new = {"first": "first + 1", "last": "last - 60", "n": "n"}[column]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"UPDATE blocks SET {column} = {new}")
        if column == "n":  # same size, other shape: 5 bars of twice the bytes is impossible,
            conn.execute("UPDATE blocks SET n = 5, data = substr(data, 1, 320)")  # so cut it
        conn.commit()
    with pytest.warns(CacheWarning, match="fails its checksum"):
        assert len(_open_and_load(path)) == 0


FIVE_MINUTES = attrs.evolve(KEY, bar_size="5 mins")
MIDPOINT = attrs.evolve(KEY, what_to_show="MIDPOINT")

#: A change to a row that SQLite's check cannot see, and a read that meets the changed row,
#: with what the read returns once the cache has been set aside and started empty.
CHANGED_ROWS: dict[str, tuple[str, Callable[[BarCache], object], object]] = {
    "an interval made longer": (
        "UPDATE coverage SET stop = stop + 60",
        lambda cache: cache.missing(KEY, 0.0, 660.0),
        [(0.0, 660.0)],
    ),
    "an interval met by a store": (
        "UPDATE coverage SET start = start - 60",
        lambda cache: cache.store(KEY, 600.0, 660.0, make_bars([600.0])),
        1,
    ),
    "a head timestamp moved a day later": (
        "UPDATE heads SET head = head + 86400",
        lambda cache: cache.head(KEY.con_id, "TRADES", False),
        None,
    ),
    "a head timestamp moved to another series": (
        "UPDATE heads SET what_to_show = 'MIDPOINT'",
        lambda cache: cache.head(KEY.con_id, "MIDPOINT", False),
        None,
    ),
    "a series relabelled with another bar size": (
        "UPDATE series SET bar_size = '5 mins'",
        lambda cache: len(cache.load(FIVE_MINUTES, 0.0, 600.0)),
        0,
    ),
    "blocks and intervals moved to another series": (
        "UPDATE blocks SET series_id = (SELECT id FROM series WHERE what_to_show = 'MIDPOINT');"
        "UPDATE coverage SET series_id = (SELECT id FROM series WHERE what_to_show = 'MIDPOINT')",
        lambda cache: cache.missing(MIDPOINT, 0.0, 600.0),
        [(0.0, 600.0)],
    ),
}


@pytest.mark.parametrize("case", list(CHANGED_ROWS))
def test_a_changed_row_is_caught_when_read(tmp_path: Path, case: str) -> None:
    """A covered interval, head timestamp or series changed on disk in a way SQLite's
    check cannot see (it would claim bars never fetched, skip bars IB has, or serve one
    series' bars as another's) fails a checksum when read: a CacheWarning, and the answer
    of an empty cache."""
    change, read, empty_answer = CHANGED_ROWS[case]
    path = tmp_path / "c.sqlite"
    with BarCache(path) as cache:
        cache.store(KEY, 0.0, 600.0, make_bars([60.0 * i for i in range(10)]))
        cache.store(MIDPOINT, 1000.0, 1060.0, CachedBars.empty())  # a series with no bars
        cache.set_head(KEY.con_id, "TRADES", False, 0.0)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(change)
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
    with BarCache(path) as cache:
        with pytest.warns(CacheWarning, match="fails its checksum"):
            answer = read(cache)
        assert answer == empty_answer


def test_zeroed_block_data_found_while_in_use_is_set_aside(tmp_path: Path) -> None:
    """Block data zeroed while the cache is open is caught at the next load or store that
    reads the block: a CacheWarning and an empty answer, never the zeros."""
    path = tmp_path / "c.sqlite"
    bars = make_bars([60.0 * i for i in range(10)])
    with BarCache(path) as cache:
        cache.store(KEY, 0.0, 600.0, bars)
        assert cache.load(KEY, 0.0, 600.0) == bars
        _zero_the_end_of_a_block(path, 64)
        with pytest.warns(CacheWarning, match="fails its checksum"):
            assert len(cache.load(KEY, 0.0, 600.0)) == 0
        cache.store(KEY, 0.0, 600.0, bars)
        _zero_the_end_of_a_block(path, 64)
        with pytest.warns(CacheWarning, match="fails its checksum"):
            cache.store(KEY, 120.0, 180.0, make_bars([120.0]))  # splits the damaged block
        assert cache.missing(KEY, 0.0, 600.0) == [(0.0, 120.0), (180.0, 600.0)]
        assert cache.load(KEY, 0.0, 600.0) == make_bars([120.0])


def test_store_inside_a_block_keeps_its_edges(tmp_path: Path) -> None:
    """Storing into the middle of a stored run replaces only that middle."""
    with BarCache(tmp_path / "c.sqlite") as cache:
        cache.store(KEY, 0.0, 600.0, make_bars([60.0 * i for i in range(10)]))
        cache.store(KEY, 120.0, 300.0, make_bars([150.0, 210.0]))
        got = cache.load(KEY, 0.0, 600.0)
        assert list(got.time) == [0.0, 60.0, 150.0, 210.0, 300.0, 360.0, 420.0, 480.0, 540.0]
        assert cache.info().bars == 9


def test_schema_three_file_gets_the_sharing_tables_and_keeps_its_bars(tmp_path: Path) -> None:
    """A file of schema version 3 (before the shared pacing ledger) is upgraded in place:
    its bars, coverage and head timestamps stay, the ledger and lease tables appear."""
    path = tmp_path / "cache.sqlite"
    with BarCache(path) as cache:
        cache.store(KEY, 0.0, 120.0, make_bars([0.0, 60.0]))
        cache.set_head(KEY.con_id, KEY.what_to_show, KEY.use_rth, 7.0)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("DROP TABLE ledger")
        conn.execute("DROP TABLE leases")
        conn.execute("PRAGMA user_version = 3")
    with BarCache(path) as cache:
        assert cache.info().schema_version == 4
        assert cache.load(KEY, 0.0, 120.0) == make_bars([0.0, 60.0])
        assert cache.missing(KEY, 0.0, 180.0) == [(120.0, 180.0)]
        assert cache.head(KEY.con_id, KEY.what_to_show, KEY.use_rth) == 7.0
        assert cache.admit("gw", lambda rows, n, now: 0.0, "r", "lease-1", 60.0) == 0.0
    assert not aside_files(path)
