"""One pacing budget and one bar store per TWS login, shared by processes (and hosts):
the shared pacing ledger, open-request and chunk leases, on SQLite and on a real
PostgreSQL, with real processes against the simulator enforcing IB's rules on a scaled
clock."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ibdata import Client, PacingRules
from ibdata._sharing import SharedPacer
from ibdata.cache import BarCache, CacheWarning, SeriesKey
from ibdata.pacing import PacedRequest, PacingTracker
from ibdata.sim import Simulator
from ibdata.store import BarStore, StoreError, open_store
from tests.conftest import PACED_SCALE

SRC = Path(__file__).resolve().parents[1] / "src"
UTC = dt.timezone.utc
KEY = SeriesKey(265598, "TRADES", "1 min", False)
ENV = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONDONTWRITEBYTECODE": "1"}

#: A process downloading one range of AAPL bars into a store, printing them as JSON.
DOWNLOAD = """
import datetime as dt, json, sys
from ibdata import Client, PacingRules
from ibdata.cache import BarCache
host, port, target, start, end, size, scale, lease = sys.argv[1:9]
wait = sys.argv[9:] == ["wait"]
if target.startswith("postgresql://"):
    from ibdata.postgres import PostgresStore
    store = PostgresStore(target, lease_seconds=float(lease))
else:
    store = BarCache(target, lease_seconds=float(lease))
pacing = PacingRules(time_scale=float(scale))
with store, Client(host, int(port), cache=store, pacing=pacing, timeout=120) as ib:
    if wait:  # connected, contract known: the test decides when the download starts
        ib.get_contract_details("AAPL")
        print("ready", flush=True)
        sys.stdin.readline()
    bars = ib.get_historical_bars(
        "AAPL", start=dt.datetime.fromisoformat(start), end=dt.datetime.fromisoformat(end),
        bar_size=size,
    )
print(json.dumps([[b.time.timestamp(), b.open, b.high, b.low, b.close, b.volume, b.wap,
                   b.count] for b in bars]))
"""

#: A process that takes a chunk lease and an open-request lease, then waits to be killed.
HOLDER = """
import sys, time
from ibdata.store import SeriesKey, open_store
from ibdata.cache import BarCache
target, lease = sys.argv[1], float(sys.argv[2])
if target.startswith("postgresql://"):
    from ibdata.postgres import PostgresStore
    store = PostgresStore(target, lease_seconds=lease)
else:
    store = BarCache(target, lease_seconds=lease)
key = SeriesKey(265598, "TRADES", "1 min", False)
gaps, mine = store.claim(key, 0.0, 600.0, "chunk-of-the-dead")
assert mine, gaps
assert store.admit("gw", lambda rows, n, now: 0.0, "x", "slot-of-the-dead", 60.0) <= 0
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives, for each backend: a SQLite path, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "shared.sqlite")
    return str(request.getfixturevalue("postgres_url"))


def opened(target: str, **options: Any) -> BarStore:
    """A store of ``target`` with ``options`` (lease_seconds)."""
    if target.startswith("postgresql://"):
        from ibdata.postgres import PostgresStore

        return PostgresStore(target, **options)
    return BarCache(target, **options)


@pytest.fixture
def stores(target: str) -> Iterator[Callable[..., BarStore]]:
    """Open stores of one target (each its own connection), all closed after the test."""
    made: list[BarStore] = []

    def make(**options: Any) -> BarStore:
        store = opened(target, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def small(n: int) -> PacedRequest:
    return PacedRequest(
        contract="265598", exchange="SMART", what_to_show="TRADES", bar_size="1 secs",
        identity=(f"end {n}", "1800 S"),
    )  # fmt: skip


# --------------------------------------------------------------------------- the ledger
def test_two_pacers_on_one_store_never_break_the_rules_together(
    stores: Callable[..., BarStore],
) -> None:
    """Two clients' pacers, each on its own connection to one store and one login, admit
    requests whose combined record breaks no rule: the second waits for the first's."""
    rules = PacingRules(window_max=4, window=60.0, time_scale=200.0)  # 0.3 s window
    pacers = [SharedPacer(rules, stores(), "gw:4002"), SharedPacer(rules, stores(), "gw:4002")]
    admitted: list[tuple[float, PacedRequest]] = []
    lock = threading.Lock()

    def run(pacer: SharedPacer, first: int) -> None:
        for n in range(first, first + 6):
            pacer.acquire(small(n), n, None)
            with lock:
                admitted.append((time.monotonic(), small(n)))
            pacer.release(n)

    threads = [threading.Thread(target=run, args=(p, 100 * i)) for i, p in enumerate(pacers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(admitted) == 12
    tracker = PacingTracker(rules)
    for at, request in sorted(admitted, key=lambda a: a[0]):
        assert tracker.acquire(request, at) is None  # the simulator's own check
    assert sum(p.waited for p in pacers) > 0


def test_the_ledger_counts_a_request_from_when_it_is_sent(
    stores: Callable[..., BarStore],
) -> None:
    """A request admitted, then held up before it is sent (a loaded machine), is counted
    from the moment it is sent: another client's request a window after the admission, but
    not a window after the send, still waits."""
    rules = PacingRules(window_max=1, bid_ask_weight=1, window=60.0, time_scale=100.0)  # 0.6 s
    first, second = SharedPacer(rules, stores(), "gw"), SharedPacer(rules, stores(), "gw")
    first.acquire(small(1), 1, None)
    time.sleep(0.5)  # admitted, not yet sent
    first.sent(1)
    sent = time.monotonic()
    rows, _ = first._store.ledger("gw")
    assert len(rows) == 1
    time.sleep(0.2)  # a window after the admission, not after the send
    second.acquire(small(2), 2, None)
    assert time.monotonic() - sent >= 0.6  # it waited for the window from the send
    for pacer, key in ((first, 1), (second, 2)):
        pacer.release(key)


def test_another_login_has_its_own_budget(stores: Callable[..., BarStore]) -> None:
    """Requests on one login do not delay another login's."""
    rules = PacingRules(window_max=2, window=600.0)  # the second window lasts ten minutes
    store = stores()
    first, second = SharedPacer(rules, store, "a:1"), SharedPacer(rules, store, "b:1")
    for n in range(2):
        first.acquire(small(n), n, None)
        first.release(n)
    with pytest.raises(Exception, match="pacing"):
        first.acquire(small(9), 9, time.monotonic() + 0.2)  # the window is full
    second.acquire(small(3), 3, time.monotonic() + 0.2)  # another login: at once
    second.release(3)


def test_open_requests_are_shared_and_freed(stores: Callable[..., BarStore]) -> None:
    """The open-request limit counts every client's open requests on the login."""
    rules = PacingRules(max_open=2, small_bar_seconds=1)  # 1-min bars fall under no rule
    one, two = SharedPacer(rules, stores(), "gw"), SharedPacer(rules, stores(), "gw")
    big = PacedRequest(contract="1", exchange="SMART", what_to_show="TRADES", bar_size="1 min")
    one.acquire(big, "a", None)
    two.acquire(big, "b", None)
    waiting = threading.Thread(target=two.acquire, args=(big, "c", None))
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive()  # two open on the login: the third waits
    one.release("a")
    waiting.join(10)
    assert not waiting.is_alive()
    for pacer, key in ((two, "b"), (two, "c")):
        pacer.release(key)


def test_leases_of_a_killed_process_expire(target: str, stores: Callable[..., BarStore]) -> None:
    """A process SIGKILLed while holding a chunk lease and an open-request lease blocks
    nobody for longer than the lease: both expire, and another client takes them."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, target, "1.0"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held", (
            child.stderr.read() if child.stderr else ""
        )
        store = stores(lease_seconds=1.0)
        assert store.claim(KEY, 0.0, 600.0, "mine") == ([(0.0, 600.0)], False)
        assert store.info().leases == 2
        time.sleep(2.0)  # the holder is alive: it renews its leases
        assert store.claim(KEY, 0.0, 600.0, "mine") == ([(0.0, 600.0)], False)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        killed = time.monotonic()
        while store.claim(KEY, 0.0, 600.0, "mine") != ([(0.0, 600.0)], True):
            assert time.monotonic() - killed < 30, "the dead process's lease never expired"
            time.sleep(0.05)
        store.release("mine")
        assert store.info().leases == 0  # the open-request lease expired too
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        child.wait(10)
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()


def test_a_claim_sees_what_another_stored(stores: Callable[..., BarStore]) -> None:
    """A chunk another client stored while this one waited is not missing any more; a
    claim of a range partly stored returns only the parts still missing."""
    from tests.test_cache import make_bars

    one, two = stores(), stores()
    assert one.claim(KEY, 0.0, 600.0, "one") == ([(0.0, 600.0)], True)
    assert two.claim(KEY, 0.0, 600.0, "two") == ([(0.0, 600.0)], False)
    one.store(KEY, 0.0, 300.0, make_bars([0.0, 60.0]))
    one.release("one")
    assert two.claim(KEY, 0.0, 600.0, "two") == ([(300.0, 600.0)], True)
    two.release("two")
    one.store(KEY, 300.0, 600.0, make_bars([360.0]))
    assert two.claim(KEY, 0.0, 600.0, "two") == ([], False)


# --------------------------------------------------------------------------- processes
def _download(
    sim: Simulator,
    target: str,
    start: dt.datetime,
    end: dt.datetime,
    size: str,
    lease: float,
    *extra: str,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-c", DOWNLOAD, sim.host, str(sim.port), target,
            start.isoformat(), end.isoformat(), size, str(PACED_SCALE), str(lease), *extra,
        ],
        env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _finish(process: subprocess.Popen[str], timeout: float = 240) -> list[list[float]]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    rows: list[list[float]] = json.loads(out)
    return rows


def _requests(sim: Simulator) -> int:
    return len(sim.received.find("reqHistoricalData"))


def _reference(sim: Simulator, start: dt.datetime, end: dt.datetime, size: str) -> list[Any]:
    with Client(sim.host, sim.port, pacing=PacingRules(time_scale=PACED_SCALE), timeout=60) as c:
        bars = c.get_historical_bars("AAPL", start=start, end=end, bar_size=size)
    return [
        [b.time.timestamp(), b.open, b.high, b.low, b.close, b.volume, b.wap, b.count]  # type: ignore[union-attr]
        for b in bars
    ]


def test_four_processes_on_overlapping_ranges_share_every_request(
    sim_factory: Callable[..., Simulator], target: str
) -> None:
    """Four processes download overlapping ranges of 1-second bars at once into one store:
    no pacing violation, no more historical requests than one process downloading the union
    (every chunk fetched once, by one of them), and the same bars wherever they overlap."""
    sim = sim_factory(pacing=PacingRules(time_scale=PACED_SCALE))
    t0 = dt.datetime(2025, 3, 11, 13, 0, tzinfo=UTC)  # chunks of 1800 s start on the half hour
    half = dt.timedelta(seconds=1800)
    ranges = [(0, 12), (6, 18), (10, 24), (3, 21)]  # in half hours from t0; union 0-24
    with Client(sim.host, sim.port, pacing=PacingRules(time_scale=PACED_SCALE)) as planner:
        union = planner.plan("AAPL", start=t0, end=t0 + 24 * half, bar_size="1 secs")
    before = _requests(sim)
    processes = [
        _download(sim, target, t0 + a * half, t0 + b * half, "1 secs", 30.0) for a, b in ranges
    ]
    results = [_finish(p) for p in processes]
    fetched = _requests(sim) - before
    assert sim.stats.pacing_violations == 0
    assert fetched == len(union.chunks) == 24
    reference = _reference(sim, t0, t0 + 24 * half, "1 secs")
    by_time = {row[0]: row for row in reference}
    for (a, b), rows in zip(ranges, results, strict=True):
        lo, hi = (t0 + a * half).timestamp(), (t0 + b * half).timestamp()
        assert rows == [by_time[t] for t in sorted(by_time) if lo <= t < hi]
        assert rows


def test_back_to_back_cli_runs_share_the_ten_minute_budget(
    sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    """The new user's case: three ``ibdata bars`` runs of 1-second bars, one after the
    other, 25 requests each (75 in all, over the 60 per ten minutes the rules allow): every
    run succeeds and the simulator sees no pacing violation, because each run paces by the
    requests the earlier ones recorded in the shared cache."""
    sim = sim_factory(pacing=PacingRules(time_scale=PACED_SCALE))
    env = {
        **ENV, "IB_HOST": sim.host, "IB_PORT": str(sim.port),
        "IBDATA_PACING_SCALE": str(PACED_SCALE), "IBDATA_CACHE": str(tmp_path / "bars.sqlite"),
    }  # fmt: skip
    start = dt.datetime(2025, 3, 10, 0, 0, tzinfo=UTC)
    span = dt.timedelta(seconds=25 * 1800)
    counts: list[int] = []
    for run in range(3):
        a, b = start + run * span, start + (run + 1) * span
        done = subprocess.run(
            [
                sys.executable, "-m", "ibdata", "bars", "AAPL", "--start", a.isoformat(),
                "--end", b.isoformat(), "--bar-size", "1 secs", "--format", "csv",
                "-o", str(tmp_path / f"run{run}.csv"), "--no-progress",
            ],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        lines = (tmp_path / f"run{run}.csv").read_text().splitlines()
        counts.append(len(lines) - 1)
    assert _requests(sim) == 75
    assert sim.stats.pacing_violations == 0
    with BarCache(tmp_path / "bars.sqlite") as cache:
        assert cache.info().logins == 1
    assert counts == [
        len(_reference(sim, start + r * span, start + (r + 1) * span, "1 secs")) for r in range(3)
    ]
    assert sum(counts) > 0


def test_a_killed_downloader_does_not_stall_the_others(
    sim_factory: Callable[..., Simulator], target: str
) -> None:
    """A process SIGKILLed while its request is in flight (holding a chunk lease and an
    open-request slot): another process downloading the same range waits for that chunk
    only until the lease expires, then fetches it; its bars are exact."""
    sim = sim_factory(pacing=PacingRules(time_scale=PACED_SCALE))
    start = dt.datetime(2025, 3, 4, tzinfo=UTC)
    end = start + dt.timedelta(days=3)
    reference = _reference(sim, start, end, "1 min")
    with open_store(target) as store:  # known: the victim's first request is for bars
        store.set_head(265598, "TRADES", False, start.timestamp() - 86400 * 365)
    victim = _download(sim, target, start, end, "1 min", 1.0, "wait")
    try:
        assert victim.stdout is not None
        assert victim.stdin is not None
        assert victim.stdout.readline().strip() == "ready"
        sim.go_deaf(True)  # the victim's first request will never be answered
        victim.stdin.write("go\n")
        victim.stdin.flush()
        deadline = time.monotonic() + 60
        while _requests(sim) < 4:  # 3 for the reference, 1 of the victim's
            assert time.monotonic() < deadline, "the victim never sent its request"
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            victim.kill()
        victim.communicate(timeout=10)
        sim.go_deaf(False)
    survivor = _download(sim, target, start, end, "1 min", 1.0)
    assert _finish(survivor, timeout=120) == reference
    assert _requests(sim) == 4 + 3  # the survivor fetched each chunk once
    assert sim.stats.pacing_violations == 0
    with open_store(target) as store:
        assert store.info().leases == 0


# --------------------------------------------------------------------------- PostgreSQL
def test_postgres_restarted_mid_download(
    sim_factory: Callable[..., Simulator], own_postgres: Any
) -> None:
    """PostgreSQL stopped during a download and started again: a CacheWarning, the download
    goes on from IB and is exact; what was stored before the stop reads back whole, and the
    store is used again by the next download."""
    sim = sim_factory(pacing=PacingRules(time_scale=PACED_SCALE))
    url = own_postgres.create_database()
    start = dt.datetime(2025, 3, 3, tzinfo=UTC)
    end = start + dt.timedelta(days=8)  # 8 chunks of one day of 1-minute bars
    reference = _reference(sim, start, end, "1 min")
    sim.set_latency(0.3)
    first = _requests(sim)
    pacing = PacingRules(time_scale=PACED_SCALE)
    got: dict[str, Any] = {}
    with Client(sim.host, sim.port, cache=url, pacing=pacing, timeout=60) as client:

        def download() -> None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got["bars"] = client.get_historical_bars(
                    "AAPL", start=start, end=end, bar_size="1 min"
                )
            got["warnings"] = [str(w.message) for w in caught if w.category is CacheWarning]

        thread = threading.Thread(target=download)
        thread.start()
        while _requests(sim) < first + 3:
            time.sleep(0.01)
        own_postgres.stop()
        while thread.is_alive() and _requests(sim) < first + 6:
            time.sleep(0.01)
        own_postgres.start()
        thread.join(120)
        assert not thread.is_alive()
        bars = got["bars"]
        assert [[b.time.timestamp(), b.close] for b in bars] == [[r[0], r[4]] for r in reference]
        assert got["warnings"], "the outage was not reported"
        assert all("going on without it" in w or "pacing" in w for w in got["warnings"])
        key = SeriesKey(bars.contract.con_id, "TRADES", "1 min", False)  # type: ignore[union-attr]
        with open_store(url) as store:
            covered = store.covered(key, start.timestamp(), end.timestamp())
            assert covered  # the chunks stored before the stop
            by_time = {r[0]: r[4] for r in reference}
            for lo, hi in covered:
                loaded = store.load(key, lo, hi)
                assert list(loaded.close) == [by_time[t] for t in sorted(by_time) if lo <= t < hi]
        before = _requests(sim)
        again = client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
        assert list(again) == list(bars)
        assert 0 < _requests(sim) - before < 8  # the stored chunks came from the store
        before = _requests(sim)
        client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
        assert _requests(sim) == before  # all of it is stored now


def test_postgres_credentials_are_never_shown(postgres_server: Any) -> None:
    """A URL with a role the server does not know: a StoreError naming the server and the
    role, never the password; the CLI prints it as one line and exits 1."""

    host_port = postgres_server.url.split("@", 1)[1].split("/", 1)[0]
    url = f"postgresql://nobody:s3cret-pw@{host_port}/postgres"
    with pytest.raises(StoreError) as raised:
        open_store(url)
    message = str(raised.value)
    assert "nobody" in message
    assert "s3cret-pw" not in message
    assert "cannot connect to PostgreSQL at postgresql://nobody@" in message
    done = subprocess.run(
        [sys.executable, "-m", "ibdata", "cache", "info", "--cache", url],
        env=ENV, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "s3cret-pw" not in done.stderr + done.stdout
    assert done.stderr.startswith("ibdata: cannot connect to PostgreSQL"), done.stderr


def _sql(url: str, *statements: str) -> list[Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows: list[Any] = []
        for statement in statements:
            cursor = conn.execute(statement)
            if cursor.description is not None:
                rows = cursor.fetchall()
        return rows


def test_postgres_database_of_another_program(postgres_url: str) -> None:
    """Another program's tables are never touched: beside them in ``public`` the store
    works; a schema named ``ibdata`` that ibdata did not write is refused, unchanged."""
    _sql(postgres_url, "CREATE TABLE series (name text)", "INSERT INTO series VALUES ('theirs')")
    with open_store(postgres_url) as store:
        store.set_head(1, "TRADES", False, 5.0)
        assert store.head(1, "TRADES", False) == 5.0
    assert _sql(postgres_url, "SELECT name FROM public.series") == [("theirs",)]
    _sql(
        postgres_url,
        "DROP SCHEMA ibdata CASCADE",
        "CREATE SCHEMA ibdata",
        "CREATE TABLE ibdata.series (x int)",
    )
    with pytest.raises(
        StoreError, match=r"schema 'ibdata' that ibdata did not write.*nothing was changed"
    ):
        open_store(postgres_url)
    assert _sql(
        postgres_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ibdata'",
    ) == [("series",)]


def test_postgres_schema_from_a_newer_ibdata(postgres_url: str) -> None:
    """A store whose schema version is newer than this ibdata's is refused, unchanged."""
    with open_store(postgres_url) as store:
        store.set_head(1, "TRADES", False, 5.0)
    _sql(postgres_url, "UPDATE ibdata.meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99, written by a newer ibdata"):
        Client(cache=postgres_url)
    assert _sql(postgres_url, "SELECT head FROM ibdata.heads") == [(5.0,)]


def test_cli_cache_copy_between_backends(postgres_url: str, tmp_path: Path) -> None:
    """``ibdata cache copy`` moves every bar, covered interval and head timestamp from a
    SQLite cache into PostgreSQL and back; ``cache info`` reads both."""
    from tests.test_cache import make_bars

    path = tmp_path / "bars.sqlite"
    other = SeriesKey(1, "MIDPOINT", "1 day", True)
    with BarCache(path) as cache:
        cache.store(KEY, 0.0, 300.0, make_bars([0.0, 60.0, 240.0]))
        cache.store(KEY, 600.0, 900.0, make_bars([]))
        cache.store(other, 0.0, 86400.0 * 3, make_bars([86400.0]))
        cache.set_head(265598, "TRADES", False, -5.0)

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ibdata", "cache", *args],
            env=ENV, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = cli("copy", str(path), postgres_url)
    assert "copied 2 series, 4 bars and 1 head timestamps" in out
    info = cli("info", "--cache", postgres_url)
    assert "backend:  postgresql" in info
    assert "bars:     4" in info
    back = tmp_path / "back.sqlite"
    cli("copy", postgres_url, str(back))
    with BarCache(path) as a, BarCache(back) as b:
        for key in (KEY, other):
            assert a.covered(key, -1e12, 1e12) == b.covered(key, -1e12, 1e12)
            assert a.load(key, -1e12, 1e12) == b.load(key, -1e12, 1e12)
        assert b.head(265598, "TRADES", False) == -5.0
    assert "cleared" in cli("clear", "--cache", postgres_url)
    assert "bars:     0" in cli("info", "--cache", postgres_url)
