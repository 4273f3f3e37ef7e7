"""What sharing one TWS login through one bar store costs and gains: the aggregate request
rate of several processes pacing from one shared ledger, reading a cached year of bars from
SQLite and from PostgreSQL, and the ledger's cost per request.

Three measurements, side by side in one run, on both backends (a SQLite file and a
PostgreSQL database):

1. **Aggregate request rate.** 1, 2 and 4 processes (``python -c`` children, each its own
   ``ibdata.Client`` with ``cache=`` the store) share one login through one store; each
   downloads its own disjoint range of 1-second AAPL bars (chunks of 1800 S) from one
   simulator enforcing IB's pacing rules on a scaled clock. The simulator's receive times
   of the ``reqHistoricalData`` messages give the span from the first request to the last;
   :func:`ibdata._pacer.minimum_time` gives the least time IB's rules allow for the same
   requests from an idle session. Every run starts idle (a fresh store; two simulators
   take turns, so each has been left alone for a whole window) and all processes start
   together (each connects and looks the contract up, then waits for the word).
2. **A year of 1-minute bars.** The year is downloaded once from the simulator into each
   store (IB's rules at real time; the simulator answers from its bar cache, primed by one
   untimed download), then read back: ``store.load`` over the year, and
   ``Client.get_historical_bars`` served entirely from the store (the simulator sees no
   historical request), several times, round-robin.
3. **Ledger cost per request.** One ``SharedPacer.acquire`` + ``release`` (the ledger
   transaction and the open-request lease) with rules that never make it wait, next to the
   in-memory ``Pacer`` of a client without a store.

Nothing here asserts a time: the figures are medians and ratios between rows measured in
the same run, on a shared, noisy machine. PostgreSQL is ``--postgres URL`` (a superuser's
URL; a database is created for each store and dropped afterwards), else
``$IBDATA_TEST_POSTGRES``, else a throwaway server started with ``tests/pg_cluster.py`` and
stopped at the end.

Run ``python benchmarks/sharing.py [--quick] [--repeat N] [--postgres URL] [--output FILE]``
(default output ``docs/_static/benchmarks-sharing.md``). The full run (180 requests a run
at ``time_scale=100``, 3 runs a row; a year of bars; 1,200 ledger samples a row) takes
about six minutes; ``--quick`` (64 requests at ``time_scale=150``, one run a row; 14 days;
120 samples) about half a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ibdata
from ibdata import Client, PacingRules
from ibdata._pacer import SAFETY, SAFETY_SECONDS, Pacer, minimum_time, with_margin
from ibdata._sharing import SharedPacer
from ibdata.pacing import PacedRequest
from ibdata.sim import FixedClock, Simulator
from ibdata.store import BarStore, SeriesKey, open_store

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ holds _common.py
from _common import CLOCK_AT, UTC, leftover_threads, machine, quantile, rotation

HERE = Path(__file__).resolve().parent

#: Where ``ibdata`` was imported from: the children import the same code.
SRC = Path(ibdata.__file__).resolve().parent.parent
DEFAULT_OUTPUT = HERE.parent / "docs" / "_static" / "benchmarks-sharing.md"

AAPL = 265598
#: 1-second bars, the bar size IB's small-bar rules count; the engine asks 1800 S a chunk.
CHUNK_SECONDS = 1800
#: The first chunk of part 1: Monday 2025-03-03, 04:00 New York, AAPL's session opens.
RATE_START = dt.datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
#: The end of the year of part 2 (midnight UTC before the simulator's clock).
YEAR_END = dt.datetime(2025, 3, 12, tzinfo=UTC)
HEAD = dt.datetime(1980, 12, 12, tzinfo=UTC)  # set in every store: no head request
PROCESSES = (1, 2, 4)
#: Ledger requests per login in part 3: the most IB's ten-minute rule lets the ledger hold.
LEDGER_BATCH = 60


@dataclass(frozen=True)
class Settings:
    """The sizes of one run (full or ``--quick``)."""

    scale: float  # part 1's time_scale
    requests: int  # part 1's requests per run
    repeat: int  # part 1's runs per row
    warm_up: bool  # one untimed part-1 run first (fills the simulator's bar cache)
    days: int  # part 2's range
    reads: int  # part 2's repetitions
    rounds: int  # part 3's batches of LEDGER_BATCH requests per row


FULL = Settings(scale=100.0, requests=180, repeat=3, warm_up=True, days=365, reads=7, rounds=20)
QUICK = Settings(scale=150.0, requests=64, repeat=1, warm_up=False, days=14, reads=3, rounds=2)


def _repository_on_path() -> None:
    """Make ``tests.pg_cluster`` importable: the repository's root holds ``tests/``."""
    root = str(HERE.parent)
    if root not in sys.path:
        sys.path.insert(1, root)


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "PYTHONDONTWRITEBYTECODE": "1"}


# --------------------------------------------------------------------------- PostgreSQL
@contextlib.contextmanager
def postgres_server(url: str | None) -> Iterator[tuple[str, str]]:
    """A superuser's URL of a PostgreSQL server, and where it came from: ``url``, else
    ``$IBDATA_TEST_POSTGRES``, else a throwaway server stopped (files removed) afterwards."""
    given = url or os.environ.get("IBDATA_TEST_POSTGRES")
    if given:
        yield given, "a running server given to the benchmark"
        return
    _repository_on_path()
    from tests.pg_cluster import PostgresCluster

    with PostgresCluster() as cluster:
        yield cluster.url, "a throwaway server started by `tests/pg_cluster.py`"


class Databases:
    """Databases created on one server for this run, all dropped by :meth:`drop_all`."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.made: list[str] = []

    def new(self) -> str:
        _repository_on_path()
        from tests.pg_cluster import create_database

        url = create_database(self.admin_url, prefix="ibdata_bench")
        self.made.append(url)
        return url

    def drop(self, url: str) -> None:
        _repository_on_path()
        from tests.pg_cluster import drop_database

        drop_database(self.admin_url, url)
        self.made.remove(url)

    def drop_all(self) -> None:
        for url in list(self.made):
            self.drop(url)

    def describe(self) -> str:
        """The server's version, durability settings and address."""
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        settings = []
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in ("server_version", "fsync", "synchronous_commit"):
                row = conn.execute(f"SHOW {name}").fetchone()
                settings.append(str(row[0]).split()[0] if row else "?")
        version, fsync, commit = settings
        host = conninfo_to_dict(self.admin_url).get("host") or "a local socket"
        return f"PostgreSQL {version} (fsync {fsync}, synchronous_commit {commit}) at {host}"


@dataclass
class Backend:
    """One kind of store: its name, and how to make a fresh one (a path or a URL)."""

    name: str
    fresh: Callable[[], str]
    discard: Callable[[str], None]


def backends(tmp: Path, databases: Databases) -> list[Backend]:
    counter = iter(range(1_000_000))

    def sqlite_path() -> str:
        return str(tmp / f"store-{next(counter)}.sqlite")

    def remove(path: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + suffix)

    return [
        Backend("SQLite file", sqlite_path, remove),
        Backend("PostgreSQL", databases.new, databases.drop),
    ]


class _Refusals(logging.Handler):
    """Keeps the simulator's reasons for the pacing violations it answers."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "pacing violation" in text:
            self.reasons.append(text.rsplit("pacing violation", 1)[1].strip(" ()"))


@contextlib.contextmanager
def refusals() -> Iterator[list[str]]:
    """The reasons of the pacing violations the simulators of this process answer
    meanwhile, as they log them."""
    logger = logging.getLogger("ibdata.sim")
    handler = _Refusals()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.reasons
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _set_head(target: str) -> None:
    with open_store(target) as store:
        store.set_head(AAPL, "TRADES", False, HEAD.timestamp())


# --------------------------------------------------------------------------- 1. rate
#: One process of part 1: connects, looks AAPL up, says "ready", waits for a line on its
#: standard input, downloads its range into the shared store, prints how many bars.
DOWNLOADER = """
import datetime as dt, sys
from ibdata import Client, PacingRules
from ibdata.store import open_store
host, port, target, start, end, scale = sys.argv[1:7]
pacing = PacingRules(time_scale=float(scale))
with open_store(target) as store, Client(
    host, int(port), cache=store, pacing=pacing, timeout=300
) as ib:
    ib.get_contract_details("AAPL")
    print("ready", flush=True)
    sys.stdin.readline()
    bars = ib.get_historical_bars(
        "AAPL", start=dt.datetime.fromisoformat(start), end=dt.datetime.fromisoformat(end),
        bar_size="1 secs",
    )
print(len(bars), flush=True)
"""


@dataclass(frozen=True)
class RateRun:
    """One part-1 run as the simulator saw it."""

    requests: int
    span: float  # seconds from the first request received to the last
    first_window: float  # seconds from the first request to the last of the first window
    last_window: float  # seconds from the first request to the first of the last window
    violations: int
    bars: int
    reasons: tuple[str, ...] = ()  # the simulator's, for each violation


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _stop(children: Sequence[subprocess.Popen[str]]) -> None:
    for child in children:
        if child.poll() is None:
            child.kill()
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.communicate(timeout=30)
        for pipe in (child.stdin, child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()


def rate_run(sim: Simulator, target: str, processes: int, requests: int, scale: float) -> RateRun:
    """``processes`` children download ``requests`` chunks between them into ``target``."""
    _set_head(target)
    before = len(sim.received.find("reqHistoricalData"))
    violations = sim.stats.pacing_violations
    children: list[subprocess.Popen[str]] = []
    with contextlib.ExitStack() as stack:
        reasons = stack.enter_context(refusals())
        stack.callback(_stop, children)
        offset = 0
        for share in _shares(requests, processes):
            start = RATE_START + dt.timedelta(seconds=offset * CHUNK_SECONDS)
            end = start + dt.timedelta(seconds=share * CHUNK_SECONDS)
            offset += share
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        DOWNLOADER,
                        sim.host,
                        str(sim.port),
                        target,
                        start.isoformat(),
                        end.isoformat(),
                        str(scale),
                    ],
                    env=_child_env(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                child.wait(30)
                err = child.stderr.read() if child.stderr else ""
                raise RuntimeError(f"a downloader did not start:\n{err}")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        bars = 0
        for child in children:
            out, err = child.communicate(timeout=600)
            if child.returncode != 0:
                raise RuntimeError(f"a downloader failed (exit {child.returncode}):\n{err}")
            bars += int(out.split()[-1])
    seen = sim.received.find("reqHistoricalData")[before:]
    if not seen:
        raise RuntimeError("the simulator received no historical request")
    span = seen[-1].time - seen[0].time
    first_window = seen[min(len(seen), PacingRules().window_max) - 1].time - seen[0].time
    last_window = seen[last_window_index(len(seen))].time - seen[0].time
    return RateRun(
        len(seen),
        span,
        first_window,
        last_window,
        sim.stats.pacing_violations - violations,
        bars,
        tuple(reasons),
    )


def last_window_index(requests: int, window_max: int = PacingRules().window_max) -> int:
    """The index (from 0) of the first request of a run's last ten-minute window: from an
    idle session the rules let ``window_max`` requests go at once, then ``window_max`` more
    each window, so request ``k * window_max`` (from 0) is the first of window ``k``."""
    return (requests - 1) // window_max * window_max


def _idle(sim: Simulator, rules: PacingRules) -> None:
    """Wait until the simulator's ten-minute window (scaled) holds none of the requests
    sent so far: the next run starts from an idle session, as ``minimum_time`` assumes."""
    seen = sim.received.find("reqHistoricalData")
    if seen:
        wait = seen[-1].time + rules.effective_window * 1.05 - time.monotonic()
        if wait > 0:
            time.sleep(wait)


def small_requests(n: int) -> list[PacedRequest]:
    """``n`` distinct 1-second-bar requests for one contract: what the rules see of a
    download's chunks (identity aside, which only tells identical requests apart)."""
    return [
        PacedRequest(
            contract=str(AAPL),
            exchange="SMART",
            what_to_show="TRADES",
            bar_size="1 secs",
            identity=(f"chunk {i}", f"{CHUNK_SECONDS} S"),
        )
        for i in range(n)
    ]


@dataclass
class RateRow:
    backend: str
    processes: int
    runs: list[RateRun] = field(default_factory=list)


def measure_rates(
    settings: Settings, kinds: Sequence[Backend], log: Callable[[str], None]
) -> list[RateRow]:
    """Every row ``settings.repeat`` times, round-robin. Two simulators take turns, so
    that while one run sends requests the other simulator's window empties."""
    rules = PacingRules(time_scale=settings.scale)
    rows = [RateRow(kind.name, p) for kind in kinds for p in PROCESSES]
    by_name = {kind.name: kind for kind in kinds}
    with contextlib.ExitStack() as stack:
        sims = [
            stack.enter_context(Simulator(pacing=rules, clock=FixedClock(CLOCK_AT)))
            for _ in range(2)
        ]
        turn = iter(range(1_000_000))

        def one(row: RateRow) -> RateRun:
            sim = sims[next(turn) % len(sims)]
            kind = by_name[row.backend]
            target = kind.fresh()
            try:
                _idle(sim, rules)
                return rate_run(sim, target, row.processes, settings.requests, settings.scale)
            finally:
                kind.discard(target)

        if settings.warm_up:
            for _ in sims:
                log("part 1: warm-up run (untimed), filling a simulator's bar cache")
                one(RateRow(kinds[0].name, PROCESSES[-1]))
        for n in range(settings.repeat):
            for row in rotation(rows, n):
                run = one(row)
                log(
                    f"part 1: {row.backend}, {row.processes} process(es): {run.requests} "
                    f"requests in {run.span:.3f} s, {run.violations} violations"
                )
                row.runs.append(run)
    return rows


# --------------------------------------------------------------------------- 2. a year
@dataclass
class YearFacts:
    days: int
    bars: int = 0
    plan_requests: int = 0
    plan_minimum: float = 0.0
    downloads: dict[str, float] = field(default_factory=dict)
    loads: dict[str, list[float]] = field(default_factory=dict)
    client_reads: dict[str, list[float]] = field(default_factory=dict)
    requests_while_reading: int = 0
    violations: int = 0


def measure_year(
    settings: Settings, kinds: Sequence[Backend], log: Callable[[str], None]
) -> YearFacts:
    facts = YearFacts(settings.days)
    end = YEAR_END
    start = end - dt.timedelta(days=settings.days)
    lo, hi = start.timestamp(), end.timestamp()
    key = SeriesKey(AAPL, "TRADES", "1 min", False)
    rules = PacingRules()  # IB's, at real time: 1-minute bars fall under none of them
    targets = {kind.name: kind.fresh() for kind in kinds}
    stores: dict[str, BarStore] = {}
    clients: dict[str, Client] = {}
    try:
        with (
            Simulator(pacing=rules, clock=FixedClock(CLOCK_AT)) as sim,
            contextlib.ExitStack() as stack,
        ):
            for name, target in targets.items():
                _set_head(target)
                stores[name] = stack.enter_context(open_store(target))
                clients[name] = stack.enter_context(
                    Client(sim.host, sim.port, cache=stores[name], pacing=rules, timeout=300)
                )
            first = clients[kinds[0].name]
            plan = first.plan("AAPL", start=start, end=end, bar_size="1 min")
            facts.plan_requests = plan.requests
            facts.plan_minimum = plan.minimum_time.total_seconds()
            with Client(sim.host, sim.port, pacing=rules, timeout=300) as primer:
                primer.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
            log(f"part 2: the simulator's bar cache primed ({settings.days} days)")
            for name, client in clients.items():
                client.get_contract_details("AAPL")  # looked up outside the timing
                t0 = time.perf_counter()
                bars = client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
                facts.downloads[name] = time.perf_counter() - t0
                facts.bars = len(bars)
                log(f"part 2: downloaded into {name} in {facts.downloads[name]:.2f} s")
            sent = len(sim.received.find("reqHistoricalData"))

            def load(name: str) -> Callable[[], int]:
                return lambda: len(stores[name].load(key, lo, hi))

            def read(name: str) -> Callable[[], int]:
                return lambda: len(
                    clients[name].get_historical_bars(
                        "AAPL", start=start, end=end, bar_size="1 min"
                    )
                )

            cells: list[tuple[dict[str, list[float]], str, Callable[[], int]]] = []
            for name in targets:
                cells.append((facts.loads, name, load(name)))
                cells.append((facts.client_reads, name, read(name)))
            for out, name, _ in cells:
                out[name] = []
            for n in range(settings.reads):
                for out, name, call in rotation(cells, n):
                    t0 = time.perf_counter()
                    got = call()
                    out[name].append(time.perf_counter() - t0)
                    if got != facts.bars:
                        raise RuntimeError(f"{name} read {got} bars, the download had {facts.bars}")
            facts.requests_while_reading = len(sim.received.find("reqHistoricalData")) - sent
            facts.violations = sim.stats.pacing_violations
    finally:
        for kind in kinds:
            kind.discard(targets[kind.name])
    return facts


# --------------------------------------------------------------------------- 3. ledger
@dataclass
class LedgerRow:
    pacer: str
    request: str
    samples: list[float] = field(default_factory=list)


#: IB's windows, with counts no run here reaches: no request ever waits.
NEVER_WAIT = PacingRules(burst_max=10**9, window_max=10**9)
ONE_MINUTE = PacedRequest(
    contract=str(AAPL), exchange="SMART", what_to_show="TRADES", bar_size="1 min",
    identity=("", "86400 S"),
)  # fmt: skip


@dataclass(frozen=True)
class PacerKind:
    """A pacer as a client makes one: in memory without a store, else shared through it."""

    label: str
    store: BarStore | None

    def make(self, rules: PacingRules) -> Pacer | SharedPacer:
        """A new pacer; a shared one paces a login of its own."""
        if self.store is None:
            return Pacer(rules)
        return SharedPacer(rules, self.store, f"bench-{uuid.uuid4().hex}")


def measure_ledger(
    settings: Settings, kinds: Sequence[Backend], log: Callable[[str], None]
) -> list[LedgerRow]:
    targets = {kind.name: kind.fresh() for kind in kinds}
    rows: list[LedgerRow] = []
    try:
        with contextlib.ExitStack() as stack:
            pacers = [PacerKind("in-memory Pacer (no store)", None)]
            for name, target in targets.items():
                pacers.append(
                    PacerKind(f"SharedPacer, {name}", stack.enter_context(open_store(target)))
                )
            cells: list[Callable[[], None]] = []
            for pacer in pacers:
                # 1-minute bars: no rule counts them; the ledger keeps no entry, the
                # open-request lease is taken and freed all the same. One pacer throughout.
                free = LedgerRow(pacer.label, "1 min bars (no rule counts it)")
                cells.append(_batch(free, [ONE_MINUTE], pacer.make(PacingRules())))
                # 1-second bars: counted; a new pacer (and login) every batch, so the
                # ledger holds 0 to 59 entries, as under IB's 60-per-ten-minutes rule.
                paced = LedgerRow(pacer.label, "1 secs bars (counted)")
                cells.append(_batch(paced, small_requests(LEDGER_BATCH), pacer))
                rows += [free, paced]
            for n in range(settings.rounds):
                for run in rotation(cells, n):
                    run()
            for row in rows:
                log(f"part 3: {row.pacer}, {row.request}: median {_us(row.samples)}")
    finally:
        for kind in kinds:
            kind.discard(targets[kind.name])
    return rows


def _batch(
    row: LedgerRow, requests: Sequence[PacedRequest], pacer: Pacer | SharedPacer | PacerKind
) -> Callable[[], None]:
    """A batch of LEDGER_BATCH acquire + release pairs, each timed into ``row``: on
    ``pacer``, or on a new pacer of a kind (with :data:`NEVER_WAIT`) each batch."""

    def run() -> None:
        p = pacer.make(NEVER_WAIT) if isinstance(pacer, PacerKind) else pacer
        for i in range(LEDGER_BATCH):
            request = requests[i % len(requests)]
            t0 = time.perf_counter()
            p.acquire(request, i, None)
            p.release(i)
            row.samples.append(time.perf_counter() - t0)

    return run


# --------------------------------------------------------------------------- rendering
def _us(samples: Sequence[float], q: float = 0.5) -> str:
    return _duration(quantile(samples, q))


def _duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:,.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:,.2f}x" if b > 0 else "—"


def render_rates(rows: Sequence[RateRow], settings: Settings) -> list[str]:
    rules = PacingRules(time_scale=settings.scale)
    sustained = rules.window_max / rules.effective_window
    k = last_window_index(settings.requests)
    lines = [
        f"| store | processes | requests | first → last request | allowed | rate (allowed) "
        f"| % of allowed | first {rules.window_max} sent in | first → request {k + 1} "
        f"| allowed | % of allowed | pacing violations |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    whole: list[float] = []
    windows: list[float] = []
    firsts: list[float] = []
    for row in rows:
        n = round(statistics.median(r.requests for r in row.runs))
        span = statistics.median(r.span for r in row.runs)
        allowed = minimum_time(rules, small_requests(n))
        first = statistics.median(r.first_window for r in row.runs)
        to_k = statistics.median(r.last_window for r in row.runs)
        allowed_k = minimum_time(rules, small_requests(last_window_index(n) + 1))
        violations = sum(r.violations for r in row.runs)
        whole.append(100 * allowed / span)
        windows.append(100 * allowed_k / to_k)
        firsts.append(first)
        lines.append(
            f"| {row.backend} | {row.processes} | {n} | {span:.3f} s | {allowed:.3f} s "
            f"| {_rate(n, span)} ({_rate(n, allowed)}) | {_percent(allowed, span)} "
            f"| {first:.3f} s | {to_k:.3f} s | {allowed_k:.3f} s "
            f"| {_percent(allowed_k, to_k)} | {violations} |"
        )
    n = settings.requests
    margined = with_margin(rules)
    ceiling = minimum_time(rules, small_requests(n)) / minimum_time(margined, small_requests(n))
    ceiling_k = minimum_time(rules, small_requests(k + 1)) / minimum_time(
        margined, small_requests(k + 1)
    )
    runs = sum(len(row.runs) for row in rows)
    violations = sum(r.violations for row in rows for r in row.runs)
    share = [100 * f / rules.effective_window for f in (min(firsts), max(firsts))]
    real = 100 * max(firsts) / PacingRules().effective_window
    spans = "; ".join(
        f"{row.backend}, {row.processes}: " + ", ".join(f"{r.span:.3f}" for r in row.runs)
        for row in rows
    )
    lines += [
        "",
        f"- Goals: at least 95% of the allowed rate, no pacing violation. Measured: "
        f"{min(whole):.1f}-{max(whole):.1f}% over the whole run, "
        f"{min(windows):.1f}-{max(windows):.1f}% up to the first request of the last "
        f"window; {violations} pacing violation(s) in {runs} runs.",
        f"- IB's rules at `time_scale={settings.scale:g}`: at most {rules.window_max} "
        f"requests in {rules.effective_window:.3g} s, {rules.burst_max} per contract in "
        f"{rules.effective_burst_window:.3g} s, no identical request within "
        f"{rules.effective_identical_window:.3g} s; over a long run that is {sustained:g} "
        f"requests/s. *allowed* is `ibdata._pacer.minimum_time` for as many requests from "
        f"an idle session: the first {rules.window_max} at once (as fast as the "
        f"per-contract rule lets them), answers taken as instant. *rate* is requests over "
        f"time; *% of allowed* is allowed time over measured time.",
        f"- The ceiling is about {100 * ceiling_k:.1f}%, not 100%: ibdata lengthens every "
        f"window by {100 * SAFETY:g}% plus {SAFETY_SECONDS * 1e3:g} ms of real time "
        f"(`ibdata._pacer.SAFETY`, `SAFETY_SECONDS`), because TWS counts a request when it "
        f"arrives, a moment after the client counted it. `minimum_time` under IB's rules "
        f"over `minimum_time` under the lengthened ones: {100 * ceiling_k:.1f}% for "
        f"{k + 1} requests, {100 * ceiling:.1f}% for {n} (the per-contract window of "
        f"{rules.effective_burst_window * 1e3:.3g} ms grows to "
        f"{margined.effective_burst_window * 1e3:.1f} ms and slows the burst after the "
        f"last window opens).",
        f"- The rules let the first {rules.window_max} requests go at once, but the "
        f"processes send them only as fast as they fetch and store chunks (*first "
        f"{rules.window_max} sent in*), and each later request may go one window after the "
        f"one {rules.window_max} before it: the spread of the first window comes back in "
        f"every window, and the requests after the last window opens take about as long as "
        f"the first ones did. *first → request {k + 1}* (the first request of the last "
        f"window) leaves that spread out: only the pacing of the windows decides it.",
        f"- What the whole run loses beyond the ceiling: the first {rules.window_max} "
        f"requests took {min(firsts):.2f}-{max(firsts):.2f} s to send, "
        f"{share[0]:.0f}-{share[1]:.0f}% of a window scaled to "
        f"{rules.effective_window:.3g} s, and that spread is paid again in the last "
        f"window (above). Scaling shortens IB's windows but not what a request costs the "
        f"processes (fetching, decoding and storing 1,800 bars, and the ledger and lease "
        f"transactions, on {os.cpu_count()} cpus shared with the simulators); under IB's "
        f"real ten-minute window the same spread would be {real:.2f}% of it.",
        f"- {settings.repeat} run(s) per row, round-robin; times are medians, violations "
        f"the sum over the runs. Each run: a fresh store; the processes' disjoint ranges, "
        f"together {n} chunks of AAPL 1-second bars from {RATE_START:%Y-%m-%d %H:%M} UTC "
        f"on, {CHUNK_SECONDS} S a request (night hours included, as a download asks "
        f"them); the head timestamp set in the store beforehand (no head-timestamp "
        f"request); every process connected and the contract looked up before the "
        f"start. Times are the simulator's receive times (`sim.received`). Two simulators "
        f"take turns, so each run starts on a session idle for a window"
        + (", each filled by one untimed run first." if settings.warm_up else "."),
        f"- Every run's first → last request, in seconds: {spans}.",
    ]
    refused = [
        f"{row.backend}, {row.processes}: {reason}"
        for row in rows
        for r in row.runs
        for reason in r.reasons
    ]
    if refused:
        lines.append(f"- The simulator's reasons for the pacing violations: {'; '.join(refused)}.")
    return lines


def _rate(requests: int, seconds: float) -> str:
    return f"{requests / seconds:.2f} req/s" if seconds > 0 else "—"


def _percent(allowed: float, measured: float) -> str:
    return f"{100 * allowed / measured:.1f}%" if measured > 0 else "—"


def render_year(facts: YearFacts, kinds: Sequence[str]) -> list[str]:
    sqlite, pg = kinds
    lines = [
        "| operation | store | bars | median | min | max | PostgreSQL / SQLite "
        "| faster than the download |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def row(op: str, name: str, samples: Sequence[float], pair: Sequence[float]) -> None:
        med = statistics.median(samples)
        ratio = _ratio(med, statistics.median(pair)) if name == pg else "1.00x"
        lines.append(
            f"| {op} | {name} | {facts.bars:,} | {_duration(med)} | {_duration(min(samples))} "
            f"| {_duration(max(samples))} | {ratio} | {_ratio(facts.downloads[name], med)} |"
        )

    for op, table in (
        ("`store.load` over the range", facts.loads),
        ("`Client.get_historical_bars` from the store", facts.client_reads),
    ):
        for name in (sqlite, pg):
            row(op, name, table[name], table[sqlite])
    for name in (sqlite, pg):
        took = facts.downloads[name]
        ratio = _ratio(took, facts.downloads[sqlite]) if name == pg else "1.00x"
        lines.append(
            f"| download from the simulator into the store (IB's rules, real time) | {name} "
            f"| {facts.bars:,} | {_duration(took)} | — | — | {ratio} | 1.00x |"
        )
    lines.append(
        f"| least time IB's rules allow for the download's {facts.plan_requests} requests "
        f"(`Client.plan(...).minimum_time`, `time_scale=1`) | — | {facts.bars:,} "
        f"| {facts.plan_minimum:.3f} s | — | — | — | — |"
    )
    load_ratio = statistics.median(facts.loads[pg]) / statistics.median(facts.loads[sqlite])
    read_ratio = statistics.median(facts.client_reads[pg]) / statistics.median(
        facts.client_reads[sqlite]
    )
    lines += [
        "",
        f"- Goal: PostgreSQL within 3x of SQLite. Measured: {load_ratio:.2f}x for "
        f"`store.load`, {read_ratio:.2f}x through the client.",
        f"- The range: {facts.days} days of AAPL 1-minute bars (all hours, TRADES) ending "
        f"{YEAR_END:%Y-%m-%d} 00:00 UTC, {facts.plan_requests} requests of 86400 S; the "
        f"simulator's sessions hold 960 bars (04:00-20:00 New York) on trading days. The "
        f"stores were filled by downloading from the simulator (not by storing synthetic "
        f"bars), one request per day, each day's bars stored as it arrived.",
        f"- {len(facts.loads[sqlite])} reads of each kind, round-robin; "
        f"`Client.get_historical_bars` sent {facts.requests_while_reading} historical "
        f"requests to the simulator while reading (all of it came from the store). "
        f"*faster than the download*: the download into the same store over the row's "
        f"median.",
        f"- The download is one timed run per store, after one untimed download that filled "
        f"the simulator's bar cache: the simulator answers in milliseconds, so this is the "
        f"client's and the store's own cost, a floor; IB takes far longer per request. "
        f"`minimum_time` is {facts.plan_minimum:g} s because IB's published pacing rules "
        f"count only bars of 30 secs or less (and head-timestamp requests): for 1-minute "
        f"bars they set no lower bound, and the real time is IB's answer time (plus its "
        f"unpublished slow-down) times {facts.plan_requests}. Pacing violations during "
        f"part 2: {facts.violations}.",
    ]
    return lines


def render_ledger(rows: Sequence[LedgerRow]) -> list[str]:
    lines = [
        "| pacer | request | samples | median | p99 | median vs in-memory |",
        "|---|---|---:|---:|---:|---:|",
    ]
    base = {row.request: statistics.median(row.samples) for row in rows if "no store" in row.pacer}
    for row in rows:
        med = statistics.median(row.samples)
        lines.append(
            f"| {row.pacer} | {row.request} | {len(row.samples):,} | {_duration(med)} "
            f"| {_us(row.samples, 0.99)} | {_ratio(med, base[row.request])} |"
        )
    lines += [
        "",
        "- One sample is `acquire(request, key, None)` then `release(key)`, timed together "
        "(`time.perf_counter`). With a store that is one ledger transaction (lock the "
        "login, drop old entries, read the rest, decide, record the request and take an "
        "open-request lease) and one more to free the lease.",
        f"- Rules that never make a request wait: IB's windows, with `burst_max` and "
        f"`window_max` raised to 10^9 for the counted requests; IB's own rules for 1-minute "
        f"bars, which none of them counts (the ledger records nothing, the lease is taken "
        f"all the same). Counted requests run in batches of {LEDGER_BATCH} on a new login, "
        f"so the ledger holds 0 to {LEDGER_BATCH - 1} entries when asked, as under IB's "
        f"rule of 60 per ten minutes; the batches of every row take turns.",
    ]
    return lines


def render(
    settings: Settings,
    quick: bool,
    host: dict[str, str],
    pg: tuple[str, str],
    rates: Sequence[RateRow],
    year: YearFacts,
    ledger: Sequence[LedgerRow],
    kinds: Sequence[str],
    wall: float,
) -> str:
    pg_server, pg_source = pg
    lines = [
        f"One run of `python benchmarks/sharing.py{' --quick' if quick else ''}`: sharing "
        f"one TWS login through one bar store, a SQLite file or a PostgreSQL database; "
        f"every simulator in-process, clock {CLOCK_AT:%Y-%m-%d %H:%M} UTC. Medians of runs "
        f"taken in turns on a shared machine: compare figures within this run only.",
        "",
        *(f"- {name}: {value}" for name, value in host.items()),
        f"- SQLite store: SQLite {_sqlite_version()}, a file in a temporary folder (WAL, "
        f"synchronous NORMAL, as `BarCache` sets)",
        f"- PostgreSQL store: {pg_server}, {pg_source}; psycopg {_psycopg_version()}; a new "
        f"database for each store",
        f"- ibdata {ibdata.__version__}",
        f"- wall time of the run: {wall:.0f} s",
        "",
        f"**1. Aggregate request rate of processes sharing one login through one store** "
        f"(IB's pacing rules, `time_scale={settings.scale:g}`)",
        "",
        *render_rates(rates, settings),
        "",
        f"**2. Reading a cached range of 1-minute bars ({year.days} days)**",
        "",
        *render_year(year, kinds),
        "",
        "**3. Ledger cost per request**",
        "",
        *render_ledger(ledger),
    ]
    return "\n".join(lines) + "\n"


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def _psycopg_version() -> str:
    try:
        import psycopg
    except ImportError:
        return "not installed"
    return str(psycopg.__version__)


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the markdown and write it to ``--output``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (for the tests)")
    parser.add_argument("--repeat", type=int, default=None, help="part 1's runs per row")
    parser.add_argument(
        "--postgres", default=None, help="a superuser's URL of a running PostgreSQL server"
    )
    parser.add_argument(
        "--output", default=str(DEFAULT_OUTPUT), help="where to write the markdown as well"
    )
    parser.add_argument("--verbose", action="store_true", help="say what runs, on stderr")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.repeat is not None:
        if args.repeat < 1:
            parser.error("--repeat must be at least 1")
        settings = Settings(**{**settings.__dict__, "repeat": args.repeat})

    def log(text: str) -> None:
        if args.verbose:
            print(text, file=sys.stderr, flush=True)

    started = time.monotonic()
    host = machine()
    before = {t.name for t in threading.enumerate()}
    with (
        postgres_server(args.postgres) as (admin_url, source),
        tempfile.TemporaryDirectory(prefix="ibdata-bench-") as folder,
    ):
        databases = Databases(admin_url)
        try:
            pg = (databases.describe(), source)
            kinds = backends(Path(folder), databases)
            rates = measure_rates(settings, kinds, log)
            year = measure_year(settings, kinds, log)
            ledger = measure_ledger(settings, kinds, log)
        finally:
            databases.drop_all()
    left = [name for name in leftover_threads() if name not in before]
    if left:
        raise RuntimeError(f"threads left running: {left}")
    names = [kind.name for kind in kinds]
    text = render(
        settings, args.quick, host, pg, rates, year, ledger, names, time.monotonic() - started
    )
    print(text, end="")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
