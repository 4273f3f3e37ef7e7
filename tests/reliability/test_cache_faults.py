"""The bar cache under faults: writers killed mid-write, again and again, two processes
writing overlapping ranges at once, and damaged files.

Every bar written is a known function of its time, so after each fault the whole cache is
checked: each covered interval holds exactly its bars, once each, with the right values;
no covered interval is lost; the file opens without a warning unless it was damaged, and a
damaged file is set aside with a CacheWarning for an empty, working cache.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from ibdata import Client
from ibdata.cache import BarCache, CachedBars, CacheWarning, SeriesKey
from ibdata.sim import Simulator
from tests.reliability.conftest import Figures

SRC = Path(__file__).resolve().parents[2] / "src"
KEY = SeriesKey(7, "TRADES", "1 secs", False)
UTC = dt.timezone.utc

#: A child process storing random intervals of KEY's bars, forever or ``count`` times. It
#: prints "storing LO HI" before each store and "stored" once it has committed.
WRITER = """
import random, sys
from array import array
from ibdata.cache import BarCache, CachedBars, SeriesKey

path, seed, span, longest, count = sys.argv[1:]
seed, span, longest, count = int(seed), int(span), int(longest), int(count)
key = SeriesKey(7, "TRADES", "1 secs", False)
rng = random.Random(seed)

def column(times, offset):
    return array("d", [t + offset for t in times])

with BarCache(path) as cache:
    done = 0
    while count < 0 or done < count:
        lo = rng.randrange(span)
        hi = min(span, lo + rng.randrange(1, longest))
        t = array("d", [x for x in range(lo, hi) if x % 7 != 3])
        bars = CachedBars(
            t, column(t, 0.25), column(t, 0.5), column(t, -0.5), column(t, 0.125),
            column(t, 1000.0), column(t, 0.375), array("q", [int(x) * 3 for x in t]),
        )
        sys.stdout.write(f"storing {lo} {hi}\\n")
        sys.stdout.flush()
        cache.store(key, lo, hi, bars)
        sys.stdout.write("stored\\n")
        sys.stdout.flush()
        done += 1
"""


def expected_bars(cells: Iterable[int]) -> CachedBars:
    """The bars WRITER stores for the covered seconds ``cells``."""
    t = array("d", sorted(x for x in cells if x % 7 != 3))

    def column(offset: float) -> array[float]:
        return array("d", [x + offset for x in t])

    counts = array("q", [int(x) * 3 for x in t])
    return CachedBars(
        t, column(0.25), column(0.5), column(-0.5), column(0.125), column(1000.0),
        column(0.375), counts,
    )  # fmt: skip


def start_writer(
    path: Path, seed: int, span: int, longest: int, count: int = -1
) -> subprocess.Popen[str]:
    """Start :data:`WRITER` in a new interpreter importing ibdata from ``src``.

    Its stderr joins stdout, which is read with ``read()`` after the first ``readline()``:
    ``communicate`` would read the raw pipe and lose what ``readline`` buffered.
    """
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    args = [str(path), str(seed), str(span), str(longest), str(count)]
    return subprocess.Popen(
        [sys.executable, "-W", "error", "-c", WRITER, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_later(
    process: subprocess.Popen[str], delay: float
) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """SIGKILL ``process`` ``delay`` seconds after its first store began; the intervals it
    confirmed, and the one it was storing when killed (committed or not), if any."""
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        assert first.startswith("storing"), first + process.stdout.read()
        time.sleep(delay)
    finally:
        process.kill()
        out = process.stdout.read()  # to the end: the process is dead
        process.stdout.close()
        process.wait(30)
    assert process.returncode == -signal.SIGKILL, out
    return _confirmed(first + out)


def _confirmed(output: str) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    done: list[tuple[int, int]] = []
    pending: tuple[int, int] | None = None
    for raw in output.splitlines(keepends=True):
        if not raw.endswith("\n"):  # cut by the kill: the store had not begun
            break
        line = raw.rstrip("\n")
        if line.startswith("storing"):
            _, lo, hi = line.split()
            pending = (int(lo), int(hi))
        elif line == "stored":
            assert pending is not None
            done.append(pending)
            pending = None
    return done, pending


def cells(intervals: Iterable[tuple[float, float]]) -> set[int]:
    """The whole seconds the intervals cover."""
    out: set[int] = set()
    for lo, hi in intervals:
        assert (lo, hi) == (int(lo), int(hi))
        out.update(range(int(lo), int(hi)))
    return out


def check_cache(path: Path, span: int, known: set[int], maybe: list[tuple[int, int]]) -> set[int]:
    """Open the cache (a CacheWarning fails the test) and check it: it covers every second
    in ``known``, plus whole intervals of ``maybe`` (stores a kill may or may not have
    committed) and nothing else; the bars are exactly the expected ones. Returns what it
    covers."""
    with BarCache(path) as cache:
        covered = cells(cache.covered(KEY, 0, span))
        possible = [known | cells(chosen) for chosen in _subsets(maybe)]
        assert covered in possible, "coverage lost, or a store half committed"
        loaded = cache.load(KEY, 0, span)
        assert loaded == expected_bars(covered), "bars lost, duplicated or wrong"
        assert cache.info().bars == len(loaded)  # nothing stored outside the coverage
    return covered


def _subsets(items: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    out: list[list[tuple[int, int]]] = [[]]
    for item in items:
        out += [[*subset, item] for subset in out]
    return out


def _integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


# ---------------------------------------------------------------------- kills


def test_writer_killed_mid_write_again_and_again(tmp_path: Path, figures: Figures) -> None:
    """50 writers in turn, each SIGKILLed at a random moment while storing overlapping
    random intervals: after every kill the file opens cleanly, keeps every committed store
    whole, holds nothing of an uncommitted one, and no bar is lost or duplicated."""
    path = tmp_path / "cache.sqlite"
    span, cycles = 20_000, 50
    rng = random.Random(7)
    known: set[int] = set()
    mid_store = committed_at_kill = stores = 0
    for cycle in range(cycles):
        done, pending = kill_later(start_writer(path, cycle, span, 3000), rng.uniform(0, 0.25))
        stores += len(done)
        for interval in done:
            known |= cells([interval])
        covered = check_cache(path, span, known, [pending] if pending else [])
        if pending is not None:
            mid_store += 1
            committed_at_kill += covered != known
        known = covered
    assert _integrity(path) == "ok"
    assert mid_store > cycles // 3  # most kills landed while a store was under way
    figures.record("writer kills (SIGKILL) survived", cycles)
    figures.record(
        "kills during a store (committed whole / rolled back)",
        f"{mid_store} ({committed_at_kill} / {mid_store - committed_at_kill})",
    )
    figures.record("stores confirmed before the kills", stores)
    figures.record("bars checked after the last kill", len(expected_bars(known)))


def test_two_writers_on_overlapping_ranges_killed_at_random(
    tmp_path: Path, figures: Figures
) -> None:
    """Two processes storing overlapping random intervals of one series at once, both
    killed at random moments, 12 rounds, then a round run to completion: nothing committed
    is lost, nothing is duplicated, and the last round covers exactly what both stored."""
    path = tmp_path / "cache.sqlite"
    span, rounds = 6_000, 12
    rng = random.Random(11)
    known: set[int] = set()
    for round_ in range(rounds):
        writers = [start_writer(path, 1000 + 2 * round_ + i, span, 1500) for i in range(2)]
        results = [kill_later(w, rng.uniform(0, 0.3)) for w in writers]
        maybe = []
        for done, pending in results:
            known |= cells(done)
            if pending is not None:
                maybe.append(pending)
        known = check_cache(path, span, known, maybe)
    writers = [start_writer(path, 5000 + i, span, 1500, count=40) for i in range(2)]
    for w in writers:
        out, _ = w.communicate(timeout=60)  # nothing read before: communicate is safe
        assert w.returncode == 0, out
        done, pending = _confirmed(out)
        assert pending is None
        assert len(done) == 40
        known |= cells(done)
    assert check_cache(path, span, known, []) == known
    assert _integrity(path) == "ok"
    figures.record("rounds of two writers killed at random", rounds)
    figures.record("seconds covered after the final round (of 6000)", len(known))


DOWNLOAD = """
import datetime as dt, sys
from ibdata import Client
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
utc = dt.timezone.utc
with Client(host, port, pacing=None, timeout=30, cache=path, chunk_spans={"1 min": "1800 S"}) as ib:
    print("connected", flush=True)
    ib.get_historical_bars(
        "AAPL", start=dt.datetime(2025, 2, 24, tzinfo=utc), end=dt.datetime(2025, 3, 8, tzinfo=utc),
        bar_size="1 min",
    )
print("done", flush=True)
"""


def test_downloads_killed_mid_range_resume_without_loss(
    sim_factory: Callable[..., Simulator], tmp_path: Path, figures: Figures
) -> None:
    """A client process downloading a range into the cache, SIGKILLed at random moments 8
    times: each time the cache holds only whole, correct chunks, and a last download
    through the cache equals the same range fetched without one."""
    sim = sim_factory(pacing=None)
    path = tmp_path / "cache.sqlite"
    start, end = dt.datetime(2025, 2, 24, tzinfo=UTC), dt.datetime(2025, 3, 8, tzinfo=UTC)
    with Client(sim.host, sim.port, pacing=None, timeout=30) as ib:
        reference = ib.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
    assert reference.contract is not None
    key = SeriesKey(reference.contract.con_id, "TRADES", "1 min", False)
    ref = reference.to_arrays()
    rng = random.Random(3)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    kills = 0
    for _ in range(8):
        process = subprocess.Popen(
            [sys.executable, "-W", "error", "-c", DOWNLOAD, sim.host, str(sim.port), str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == "connected\n"
            time.sleep(rng.uniform(0.05, 0.4))
        finally:
            process.kill()
            process.communicate(timeout=30)
        kills += process.returncode == -signal.SIGKILL
        with BarCache(path) as cache:
            for lo, hi in cache.covered(key, start.timestamp(), end.timestamp()):
                got = cache.load(key, lo, hi)
                rows = [i for i, t in enumerate(ref["time"]) if lo <= t < hi]
                want = CachedBars(*(array(c.typecode, (c[i] for i in rows)) for c in ref.values()))
                assert got == want, (lo, hi)
    with Client(sim.host, sim.port, pacing=None, timeout=30, cache=path) as ib:
        before = len(sim.received.find("reqHistoricalData"))
        resumed = ib.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
        fetched = len(sim.received.find("reqHistoricalData")) - before
    assert resumed == reference
    assert kills >= 6  # most processes were killed before they finished
    figures.record("range downloads killed mid-way, then resumed", kills)
    figures.record("bars in the resumed range (equal to a fresh download)", len(resumed))
    figures.record("requests the resumed download still needed", fetched)


#: A client process whose files may not grow past a limit (RLIMIT_FSIZE, as on a full
#: disk): it opens the cache, then downloads a range with the limit set just above the
#: file's size, and prints the bars as JSON and the warnings it got, one a line.
FULL_DISK = """
import datetime as dt, json, os, resource, signal, sys, warnings
from ibdata import Client
from ibdata.cache import BarCache
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
utc = dt.timezone.utc
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
with BarCache(path) as cache, Client(host, port, pacing=None, timeout=30, cache=cache) as ib:
    used = sum(os.path.getsize(f) for f in (path, path + "-wal") if os.path.exists(f))
    resource.setrlimit(resource.RLIMIT_FSIZE, (used + 8192, resource.RLIM_INFINITY))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bars = ib.get_historical_bars(
            "AAPL", start=dt.datetime(2025, 3, 3, tzinfo=utc),
            end=dt.datetime(2025, 3, 8, tzinfo=utc), bar_size="1 min",
        )
print(json.dumps([[b.time.timestamp(), b.close, b.volume] for b in bars]))
for w in caught:
    print(w.category.__name__, w.message)
"""


def test_a_full_disk_costs_no_download(
    sim_factory: Callable[..., Simulator], tmp_path: Path, figures: Figures
) -> None:
    """A client whose cache file cannot grow (its writes fail as on a full disk) gets the
    whole range from IB, exact, with one CacheWarning for the first write that failed (a
    chunk's lease or its bars; the rest of the download does without the cache), and the
    cache file is left readable with nothing half-stored."""
    sim = sim_factory(pacing=None)
    path = tmp_path / "cache.sqlite"
    start, end = dt.datetime(2025, 3, 3, tzinfo=UTC), dt.datetime(2025, 3, 8, tzinfo=UTC)
    with Client(sim.host, sim.port, pacing=None, timeout=30) as ib:
        reference = ib.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", FULL_DISK, sim.host, str(sim.port), str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    first, *warned = run.stdout.splitlines()
    assert json.loads(first) == [[b.time.timestamp(), b.close, b.volume] for b in reference]
    chunks = [
        line for line in warned if "could not store a chunk" in line or "lease a chunk" in line
    ]
    assert len(chunks) == 1, warned  # the first failure; later chunks were not tried
    for line in warned:
        assert line.startswith("CacheWarning ibdata cache "), line
        # the file size limit makes the write fail with EFBIG, which SQLite reports as an
        # I/O error; a full disk (ENOSPC) is reported as "database or disk is full"
        assert "(OperationalError: disk I/O error); going on without it" in line, line
    with BarCache(path) as cache:  # a CacheWarning here would fail the test
        key = SeriesKey(reference.contract.con_id, "TRADES", "1 min", False)  # type: ignore[union-attr]
        for lo, hi in cache.covered(key, start.timestamp(), end.timestamp()):
            got = cache.load(key, lo, hi)
            assert [float(t) for t in got.time] == [
                b.time.timestamp() for b in reference if lo <= b.time.timestamp() < hi
            ]
    figures.record("bars returned whole with the cache's disk full", len(reference))


# ---------------------------------------------------------------------- damaged files


def populated(path: Path) -> CachedBars:
    """A cache file at ``path`` with three series in many blocks; the bars of each."""
    bars = expected_bars(range(30_000))
    with BarCache(path) as cache:
        for con_id in (1, 2, 3):
            key = SeriesKey(con_id, "TRADES", "1 secs", False)
            for lo in range(0, 30_000, 2_000):
                cache.store(key, lo, lo + 2_000, expected_bars(range(lo, lo + 2_000)))
    return bars


def assert_rebuilt(path: Path, kept: bytes) -> None:
    """The damaged file was kept aside unchanged and an empty, working cache took its place."""
    [aside] = sorted(path.parent.glob(path.name + ".corrupt-*"))
    assert aside.read_bytes() == kept
    with BarCache(path) as cache:
        key = SeriesKey(1, "TRADES", "1 secs", False)
        assert cache.info().bars == 0
        assert cache.missing(key, 0, 30_000) == [(0.0, 30_000.0)]  # will be fetched again
        assert cache.store(KEY, 0, 10, expected_bars(range(10))) == len(expected_bars(range(10)))
        assert cache.load(KEY, 0, 10) == expected_bars(range(10))


def _truncate(size: Callable[[int], int]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with path.open("r+b") as handle:
            handle.truncate(size(path.stat().st_size))

    return damage


def _overwrite(offset: int, length: int, *, zeros: bool = False) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with path.open("r+b") as handle:
            handle.seek(offset)
            handle.write(bytes(length) if zeros else random.Random(offset).randbytes(length))

    return damage


def _short_block(path: Path) -> None:
    """A block's data loses its last 8 bytes: SQLite's own check sees nothing wrong."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "UPDATE blocks SET data = substr(data, 1, length(data) - 8) "
            "WHERE series_id = (SELECT MIN(series_id) FROM blocks) AND first = 0"
        )
        conn.commit()
    assert _integrity(path) == "ok"


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated to 100 bytes": _truncate(lambda size: 100),
    "truncated to half": _truncate(lambda size: size // 2),
    "last page cut off": _truncate(lambda size: size - 4096),
    "garbage header": _overwrite(0, 100),
    "garbage over a page in the middle": _overwrite(40 * 4096, 4096),
    "a block shorter than its row says": _short_block,
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_damaged_file_is_set_aside_with_a_warning(tmp_path: Path, damage: str) -> None:
    """A damaged file (truncated, a garbage header or page, a block whose data was cut)
    is kept aside with a CacheWarning and replaced by an empty, working cache."""
    path = tmp_path / "cache.sqlite"
    populated(path)
    DAMAGE[damage](path)
    kept = path.read_bytes()
    with pytest.warns(CacheWarning, match="moved it to cache.sqlite.corrupt-"):
        BarCache(path).close()
    assert_rebuilt(path, kept)


def test_file_emptied_to_zero_bytes_is_a_new_cache(tmp_path: Path) -> None:
    """A file truncated to nothing is an empty SQLite database: it becomes a new cache
    without a warning, and claims no coverage (every bar is fetched again)."""
    path = tmp_path / "cache.sqlite"
    populated(path)
    _truncate(lambda size: 0)(path)
    with BarCache(path) as cache:  # a CacheWarning would fail the test
        key = SeriesKey(1, "TRADES", "1 secs", False)
        assert cache.missing(key, 0, 30_000) == [(0.0, 30_000.0)]
        assert cache.info().bars == 0


@pytest.mark.parametrize("fill", ["garbage", "zeros"])
def test_every_page_overwritten_is_caught(tmp_path: Path, figures: Figures, fill: str) -> None:
    """Garbage or zeros written over any one page of the file, page by page: the cache
    either warns and starts empty (having served only series it read intact before), or
    (a page holding nothing) serves every bar and every covered interval unchanged. Zeros
    over a page of a block's data pass SQLite's own check: the block's checksum catches
    them when the block is read."""
    source = tmp_path / "source.sqlite"
    bars = populated(source)
    pages = source.stat().st_size // 4096
    outcomes = {"warned": 0, "unchanged": 0}
    for page in range(pages):
        path = tmp_path / f"p{page}" / "cache.sqlite"
        path.parent.mkdir()
        shutil.copy(source, path)
        _overwrite(page * 4096, 4096, zeros=fill == "zeros")(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with BarCache(path) as cache:
                keys = [SeriesKey(c, "TRADES", "1 secs", False) for c in (1, 2, 3)]
                loads = [cache.load(key, 0, 30_000) for key in keys]
                gaps = [cache.missing(key, 0, 30_000) for key in keys]
        if caught:  # at the open, or at the load that read the damage
            assert [w.category for w in caught] == [CacheWarning]
            assert all(b == bars or len(b) == 0 for b in loads), f"page {page}: wrong bars"
            assert gaps == [[(0.0, 30_000.0)]] * 3  # an empty cache took its place
            outcomes["warned"] += 1
        else:
            assert all(b == bars for b in loads), f"page {page}: wrong bars served"
            assert gaps == [[], [], []], f"page {page}: coverage changed"
            outcomes["unchanged"] += 1
        shutil.rmtree(path.parent)
    assert outcomes["warned"] > pages // 2
    figures.record(
        f"pages overwritten with {fill} one at a time (warned / harmless)",
        f"{pages} ({outcomes['warned']} / {outcomes['unchanged']})",
    )


def test_damage_found_while_in_use_is_set_aside(tmp_path: Path) -> None:
    """A block damaged while the cache is open is found at the next load: a CacheWarning,
    the file set aside, and an empty answer instead of an exception."""
    path = tmp_path / "cache.sqlite"
    populated(path)
    key = SeriesKey(1, "TRADES", "1 secs", False)
    with BarCache(path) as cache:
        assert len(cache.load(key, 0, 2_000)) > 0
        _short_block(path)
        with pytest.warns(CacheWarning, match="a block of"):
            assert len(cache.load(key, 0, 2_000)) == 0
        assert cache.missing(key, 0, 2_000) == [(0.0, 2_000.0)]
        assert cache.store(key, 0, 2_000, expected_bars(range(2_000))) > 0
        assert cache.load(key, 0, 2_000) == expected_bars(range(2_000))
    assert len(list(tmp_path.glob("cache.sqlite.corrupt-*"))) == 1
