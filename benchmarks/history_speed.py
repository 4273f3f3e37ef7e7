"""ibdata's history engine under IB's pacing rules: how close a long download of small bars
comes to the request rate the rules allow, what the loop of ``ib_async``'s documentation
does with the same range, and how much faster a repeated range comes from ibdata's cache.

Every part runs against an in-process simulator with the clock fixed at 2025-03-12 21:00 UTC
and IB's pacing rules scaled by ``--scale`` (``PacingRules(time_scale=S)``, S=100 by default:
the ten-minute window lasts 6 s, the 2-second burst window 20 ms, the 15-second identical
window 0.15 s). The simulator and the clients are given the same rules object.

The instrument is EUR.USD (CASH, IDEALPRO, ``MIDPOINT``, all hours): it trades 23 3/4 hours a
weekday, so a range of 100 hours is one unbroken stretch of sessions and every 30-minute
request holds bars. (A US stock's all-hours session lasts 16 h: a 100-hour range would cross
nights whose requests come back empty, and the documented ``ib_async`` loop stops at the
first empty answer, whatever its cause.) ``MIDPOINT`` is also what that loop asks for.

1. **Pacing, ibdata**: ``Client.get_historical_bars(start=..., end=..., bar_size="1 secs")``
   for a range ending Friday 2025-03-07 21:00 UTC that needs ``--requests`` chunks of the
   planner's span for 1-second bars (1800 S): 200 by default, plus the head-timestamp
   request the engine sends first (paced like a small-bar request). Measured: wall time from
   the call to the result, the requests that reached the simulator (``sim.received``), the
   simulator's pacing violations (``sim.stats``), the bars against the simulator's own
   generator. The rate the rules allow: the earliest time the same requests could all have
   been sent, by a greedy schedule on :class:`ibdata.pacing.PacingTracker` (each request
   recorded at its ``ready_at`` time, answers taking no time). Efficiency = that ideal
   duration / the measured wall time. Two reference schedules explain the gap: the same with
   the client's 2% safety margin on every window (``ibdata._pacer.SAFETY``: the practical
   ceiling, about 98%), and that with one request at a time taking the measured median gap
   between consecutive requests (what a client that waits for each answer before sending the
   next can reach).
2. **Pacing, the ib_async docs loop**: ``ib_async`` 2.1.0's recipe for long histories walks
   backwards: ``reqHistoricalData`` with ``endDateTime`` = the first bar's date of the
   previous answer, prepending, until an answer is empty. Reproduced here with the same
   duration per request, the same end, and a stop once the start is reached, on a fresh
   simulator with the same rules; ``RaiseRequestErrors=False`` (its default: a failed
   request gives an empty list), a 3 s per-request timeout, its synchronous API on an event
   loop created and closed here. It has no pacing of its own. Run twice: as documented
   (stops at the first empty answer) and continuing past empty answers (stepping back one
   duration), which shows what a pacing-blind loop does with the rest of the range.
3. **Cache**: a client with a cache file in a temporary directory downloads a range of
   ``1 min`` bars (30 days by default, one 86400 S request per day) once (timed), then the
   same range ``--repeat`` times (timed, median) on the same client. The simulator's log
   must show no message at all from the client during the repeats. Speedup = first / median
   repeat.

When a target is missed a cProfile of the caller's thread (where the engine runs) on a
second, untimed run says where the time goes. Nothing here asserts anything about time.

Run ``python benchmarks/history_speed.py [--quick] [--scale S] [--requests N] [--repeat R]
[--output FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import itertools
import logging
import math
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibdata
from ibdata import Client, ContractSpec, PacingRules
from ibdata._pacer import SAFETY, with_margin
from ibdata._planner import chunk_span
from ibdata.pacing import PacedRequest, PacingTracker
from ibdata.sim import ContractQuery, FixedClock, Received, Simulator
from ibdata.sim import _bars as simbars

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ holds _common.py
from _common import leftover_threads, machine

UTC = dt.timezone.utc

#: The simulator's clock: a Wednesday evening.
CLOCK_AT = dt.datetime(2025, 3, 12, 21, 0, tzinfo=UTC)
SYMBOL, SEC_TYPE, EXCHANGE, CURRENCY = "EUR", "CASH", "IDEALPRO", "USD"
WHAT_TO_SHOW = "MIDPOINT"
SPEC = ContractSpec(SYMBOL, sec_type=SEC_TYPE, exchange=EXCHANGE, currency=CURRENCY)
QUERY = ContractQuery(symbol=SYMBOL, sec_type=SEC_TYPE, exchange=EXCHANGE, currency=CURRENCY)

SMALL_BAR = "1 secs"
#: The end of the paced range: Friday 16:00 in New York, an hour before the weekly close.
PACING_END = dt.datetime(2025, 3, 7, 21, 0, tzinfo=UTC)
FULL_REQUESTS, QUICK_REQUESTS = 200, 20
FULL_SCALE, QUICK_SCALE = 100.0, 1000.0

CACHE_BAR = "1 min"
CACHE_END = dt.datetime(2025, 3, 12, 0, 0, tzinfo=UTC)
FULL_CACHE_DAYS, QUICK_CACHE_DAYS = 30, 3
FULL_REPEAT, QUICK_REPEAT = 9, 3

EFFICIENCY_TARGET = 0.95
SPEEDUP_TARGET = 100.0
RECIPE_TIMEOUT = 3.0
CLIENT_TIMEOUT = 30.0
IB_ASYNC_CLIENT_ID = 4242
PACED_NAMES = ("reqHistoricalData", "reqHeadTimestamp")

IBDATA = "ibdata"
RECIPE = "ib_async 2.1.0 docs loop (stops at the first empty answer)"
RECIPE_ON = "ib_async 2.1.0 docs loop, continuing past empty answers"
FIRST = "first download"
REPEAT = "same range again, from the cache"


# --------------------------------------------------------------------------------------
# results


@dataclass
class Download:
    """One client's run over the paced range."""

    name: str
    wall: float
    requests: int  # reqHistoricalData that reached the simulator
    heads: int  # reqHeadTimestamp that reached the simulator
    violations: int
    bars: int  # distinct bars inside the range
    expected: int
    exact: bool  # the bars are the simulator's, first to last
    paced: list[Received] = field(default_factory=list)
    called: float = 0.0  # time.monotonic() of the call
    returned: float = 0.0
    waited: float | None = None  # seconds spent in ibdata's pacer
    error: str | None = None


@dataclass
class Schedules:
    """The rules' fastest schedules for the requests ibdata sent."""

    ideal: float
    margin: float
    gap: float  # measured median gap between consecutive paced requests
    sequential: float


@dataclass
class CacheRun:
    """The cache part: one first download, then repeats."""

    bars: int
    requests: int
    first: float
    repeats: list[float]
    messages: int  # every message the client sent during the first download
    new_requests: int
    new_messages: int
    same: bool
    profile: list[tuple[str, int, float]] | None = None

    @property
    def repeat(self) -> float:
        return statistics.median(self.repeats)

    @property
    def speedup(self) -> float:
        return self.first / self.repeat


# --------------------------------------------------------------------------------------
# helpers


def _simulator(rules: PacingRules) -> Simulator:
    return Simulator(pacing=rules, clock=FixedClock(CLOCK_AT))


def pacing_range(requests: int) -> tuple[dt.datetime, dt.datetime, str]:
    """The range that needs ``requests`` chunks of 1-second bars, and one chunk's duration."""
    duration, span = chunk_span(SMALL_BAR)
    return PACING_END - requests * span, PACING_END, duration


def expected_bars(
    sim: Simulator, bar_size: str, start: dt.datetime, end: dt.datetime
) -> list[float]:
    """Start times (epoch seconds) of the bars the simulator holds in ``[start, end)``."""
    contract = sim.catalog.resolve(QUERY, CLOCK_AT.date())
    bars = simbars.generate(contract, WHAT_TO_SHOW, bar_size, False, start, end, now=CLOCK_AT)
    return [b.start.timestamp() for b in bars]


def _paced(sim: Simulator) -> list[Received]:
    return [r for r in sim.received.snapshot() if r.name in PACED_NAMES]


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence a library's logger (ib_async logs every 162 as an error) for a while."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for ib_async's synchronous API, closed with its tasks afterwards."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        try:
            loop.run_until_complete(asyncio.sleep(0))
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


# --------------------------------------------------------------------------------------
# 1. ibdata under the pacing rules


def ibdata_download(
    rules: PacingRules, requests: int, *, profile: cProfile.Profile | None = None
) -> Download:
    """ibdata's engine over the paced range on a fresh simulator (profiled if asked)."""
    start, end, _ = pacing_range(requests)
    with _simulator(rules) as sim:
        expected = expected_bars(sim, SMALL_BAR, start, end)
        with Client(
            "127.0.0.1", sim.port, pacing=rules, cache=None, timeout=CLIENT_TIMEOUT
        ) as client:
            called = time.monotonic()
            if profile is not None:
                profile.enable()
            try:
                bars = client.get_historical_bars(
                    SPEC, start=start, end=end, bar_size=SMALL_BAR, what_to_show=WHAT_TO_SHOW
                )
            finally:
                if profile is not None:
                    profile.disable()
            returned = time.monotonic()
            waited = client._pacer.waited if client._pacer is not None else None
        paced = _paced(sim)
        violations = sim.stats.pacing_violations
    ends = [b.time for b in (bars[0], bars[-1])] if len(bars) else []
    exact = len(bars) == len(expected) and all(
        isinstance(t, dt.datetime) and t.timestamp() == want
        for t, want in zip(ends, expected[:1] + expected[-1:], strict=True)
    )
    return Download(
        name=IBDATA,
        wall=returned - called,
        requests=sum(r.name == "reqHistoricalData" for r in paced),
        heads=sum(r.name == "reqHeadTimestamp" for r in paced),
        violations=violations,
        bars=len(bars),
        expected=len(expected),
        exact=exact,
        paced=paced,
        called=called,
        returned=returned,
        waited=waited,
    )


def _as_requests(paced: Sequence[Received]) -> list[PacedRequest]:
    """The pacing view of the messages that reached the simulator (each one distinct)."""
    return [
        PacedRequest(
            contract=SYMBOL,
            exchange=EXCHANGE,
            what_to_show=WHAT_TO_SHOW,
            bar_size="" if r.name == "reqHeadTimestamp" else SMALL_BAR,
            identity=r.fields,
            head_timestamp=r.name == "reqHeadTimestamp",
        )
        for r in paced
    ]


def fastest(rules: PacingRules, requests: Sequence[PacedRequest], service: float = 0.0) -> float:
    """Seconds from the first request to the last answer when every request is sent at the
    earliest moment ``rules`` allow (greedy), no request is sent before the previous one's
    answer, and each answer takes ``service`` seconds (0: answers take no time)."""
    tracker = PacingTracker(rules)
    t = 0.0
    for request in requests:
        t = tracker.ready_at(request, t)
        while tracker.check(request, t) is not None:  # ready_at is exact; this never loops
            t = math.nextafter(t, math.inf)
        tracker.record(request, t)
        t += service
    return t


def schedules(rules: PacingRules, paced: Sequence[Received]) -> Schedules:
    """The reference schedules for the requests ibdata sent."""
    requests = _as_requests(paced)
    times = [r.time for r in paced]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    gap = statistics.median(gaps) if gaps else 0.0
    margin = with_margin(rules)
    return Schedules(
        ideal=fastest(rules, requests),
        margin=fastest(margin, requests),
        gap=gap,
        sequential=fastest(margin, requests, gap),
    )


# --------------------------------------------------------------------------------------
# 2. the ib_async documentation's loop


def recipe_download(rules: PacingRules, requests: int, *, keep_going: bool) -> Download:
    """The ib_async docs loop over the paced range on a fresh simulator."""
    from ib_async import IB, Forex

    start, end, duration = pacing_range(requests)
    span = dt.timedelta(seconds=int(duration.split()[0]))
    chunks: list[Any] = []
    error: str | None = None
    with _simulator(rules) as sim, _quiet("ib_async"):
        expected = expected_bars(sim, SMALL_BAR, start, end)
        with _event_loop():
            ib = IB()
            ib.RaiseRequestErrors = False  # the default: a failed request gives []
            called = returned = time.monotonic()
            try:
                ib.connect("127.0.0.1", sim.port, clientId=IB_ASYNC_CLIENT_ID, timeout=20)
                contract = Forex(SYMBOL + CURRENCY)
                called = time.monotonic()
                when: Any = end
                while True:
                    bars = ib.reqHistoricalData(
                        contract,
                        endDateTime=when,
                        durationStr=duration,
                        barSizeSetting=SMALL_BAR,
                        whatToShow=WHAT_TO_SHOW,
                        useRTH=False,
                        formatDate=1,
                        timeout=RECIPE_TIMEOUT,
                    )
                    if bars:
                        chunks.insert(0, bars)
                        when = bars[0].date
                    elif keep_going:
                        when = when - span
                    else:
                        break  # the documented loop ends at the first empty answer
                    if when <= start:
                        break
                returned = time.monotonic()
            except Exception as exc:  # report, never raise: the row says what happened
                returned = time.monotonic()
                error = f"{type(exc).__name__}: {exc}"
            finally:
                ib.disconnect()
        paced = _paced(sim)
        violations = sim.stats.pacing_violations
    got = sorted({b.date.timestamp() for bars in chunks for b in bars if start <= b.date < end})
    wanted = set(expected)
    return Download(
        name=RECIPE_ON if keep_going else RECIPE,
        wall=returned - called,
        requests=sum(r.name == "reqHistoricalData" for r in paced),
        heads=sum(r.name == "reqHeadTimestamp" for r in paced),
        violations=violations,
        bars=len(got),
        expected=len(expected),
        exact=got == expected,
        paced=paced,
        called=called,
        returned=returned,
        error=error if error is not None else (None if wanted.issuperset(got) else "wrong bars"),
    )


# --------------------------------------------------------------------------------------
# 3. the cache


def cache_download(rules: PacingRules, days: int, repeat: int) -> CacheRun:
    """A first download with a cache file, then the same range ``repeat`` times."""
    start, end = CACHE_END - dt.timedelta(days=days), CACHE_END

    def get(client: Client) -> ibdata.Bars:
        return client.get_historical_bars(
            SPEC, start=start, end=end, bar_size=CACHE_BAR, what_to_show=WHAT_TO_SHOW
        )

    with tempfile.TemporaryDirectory(prefix="history_speed-") as tmp, _simulator(rules) as sim:
        path = Path(tmp) / "bars.sqlite"
        with Client(
            "127.0.0.1", sim.port, pacing=rules, cache=path, timeout=CLIENT_TIMEOUT
        ) as client:
            before = sim.received.total
            t0 = time.perf_counter()
            first = get(client)
            first_s = time.perf_counter() - t0
            requests = len(sim.received.find("reqHistoricalData"))
            messages = sim.received.total
            seconds: list[float] = []
            same = True
            for _ in range(repeat):
                t0 = time.perf_counter()
                again = get(client)
                seconds.append(time.perf_counter() - t0)
                same = same and again == first
            run = CacheRun(
                bars=len(first),
                requests=requests,
                messages=messages - before,
                first=first_s,
                repeats=seconds,
                new_requests=len(sim.received.find("reqHistoricalData")) - requests,
                new_messages=sim.received.total - messages,
                same=same,
            )
            if run.speedup < SPEEDUP_TARGET:
                profile = cProfile.Profile()
                profile.enable()
                get(client)
                profile.disable()
                run.profile = _top(profile, 10)
    return run


# --------------------------------------------------------------------------------------
# profiles

_WAITS = ("acquire' of '_thread.lock", "method 'wait'", "built-in method time.sleep")


def _name(key: tuple[str, int, str]) -> str:
    filename, line, func = key
    if filename == "~":
        return func.strip("<>")
    parts = Path(filename).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else filename
    return f"{short}:{line}({func})"


def _top(profile: cProfile.Profile, n: int) -> list[tuple[str, int, float]]:
    """The ``n`` functions with the most own time, waiting left out: (name, calls, s)."""
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    rows = [
        (_name(key), value[1], value[2])
        for key, value in stats.items()
        if not any(w in _name(key) for w in _WAITS)
    ]
    rows.sort(key=lambda row: -row[2])
    return rows[:n]


@dataclass
class PacingProfile:
    """Where the caller's thread spends a profiled download."""

    requests: int
    wall: float
    parts: list[tuple[str, int, float]]  # (what, calls, cumulative s)
    pacer_cpu: float
    top: list[tuple[str, int, float]]


#: (label, file name, function): cumulative time of the engine's steps in the caller's thread.
_STEPS = (
    ("waiting for the rules (`Pacer.acquire`, cumulative)", "_pacer.py", "acquire"),
    ("waiting for each answer (`Client._wait`)", "_client.py", "_wait"),
    ("`Bars` to engine columns per chunk (`_engine._to_cached`)", "_engine.py", "_to_cached"),
    ("range filter per chunk (`_engine._select`)", "_engine.py", "_select"),
    ("final merge of all chunks (`_engine._bars`)", "_engine.py", "_bars"),
)


def profile_pacing(rules: PacingRules, requests: int) -> PacingProfile:
    """A second, untimed ibdata download under cProfile (the caller's thread only)."""
    profile = cProfile.Profile()
    run = ibdata_download(rules, requests, profile=profile)
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    parts = []
    for label, filename, func in _STEPS:
        found = [v for k, v in stats.items() if k[0].endswith(filename) and k[2] == func]
        if found:
            parts.append((label, sum(v[1] for v in found), sum(v[3] for v in found)))
    pacer_cpu = sum(
        v[2] for k, v in stats.items() if k[0].endswith(("ibdata/_pacer.py", "ibdata/pacing.py"))
    )
    return PacingProfile(
        requests=run.requests + run.heads,
        wall=run.wall,
        parts=parts,
        pacer_cpu=pacer_cpu,
        top=_top(profile, 10),
    )


# --------------------------------------------------------------------------------------
# reporting


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def render(
    host: dict[str, str],
    scale: float,
    requests: int,
    ours: Download,
    recipes: list[Download],
    sched: Schedules,
    pacing_profile: PacingProfile | None,
    cache: CacheRun,
    cache_days: int,
) -> str:
    """The results as markdown: machine, tables, conclusions."""
    rules = PacingRules(time_scale=scale)
    start, end, duration = pacing_range(requests)
    efficiency = sched.ideal / ours.wall
    lines = [
        f"Simulator clock 2025-03-12 21:00 UTC; pacing rules scaled by {scale:g} for the "
        f"simulator and every client (10-minute window {rules.effective_window:g} s, "
        f"{rules.burst_max} per {rules.effective_burst_window:g} s per contract, identical "
        f"requests {rules.effective_identical_window:g} s apart); ibdata "
        f"{ibdata.__version__}, ib_async 2.1.0. EUR.USD CASH IDEALPRO `{WHAT_TO_SHOW}`, "
        f"all hours.",
        "",
        *(f"- {key}: {value}" for key, value in host.items()),
        "",
        f"#### Pacing: `{SMALL_BAR}` bars, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, "
        f"`{duration}` per request",
        "",
        "| client | bar requests | head-timestamp requests | wall s | requests/s | "
        "pacing violations | bars | of the range |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in (ours, *recipes):
        total = d.requests + d.heads
        rate = total / d.wall if d.wall > 0 else math.nan
        share = d.bars / d.expected if d.expected else math.nan
        lines.append(
            f"| {d.name} | {d.requests:,} | {d.heads:,} | {d.wall:.2f} | {rate:.1f} | "
            f"{d.violations:,} | {d.bars:,} of {d.expected:,} | {_pct(share)} |"
        )
    paced_total = ours.requests + ours.heads
    lines += [
        "",
        f"The rules' schedules for ibdata's {paced_total} paced requests (greedy on "
        "`PacingTracker`, from the first request):",
        "",
        "| schedule | s | ibdata's wall time vs it |",
        "|---|---:|---:|",
        f"| fastest the rules allow (answers take no time) | {sched.ideal:.2f} | "
        f"{_pct(sched.ideal / ours.wall)} |",
        f"| the same with ibdata's {SAFETY:.0%} safety margin on every window | "
        f"{sched.margin:.2f} | {_pct(sched.margin / ours.wall)} |",
        f"| with the margin, one request at a time, each taking the measured median gap "
        f"({sched.gap * 1e3:.1f} ms) | {sched.sequential:.2f} | "
        f"{_pct(sched.sequential / ours.wall)} |",
    ]
    assert ours.paced, "ibdata sent no paced request"
    first_sent, last_sent = ours.paced[0].time, ours.paced[-1].time
    lines += [
        "",
        "Where ibdata's wall time goes (timestamps of the measured run: the call, the "
        "simulator's arrival times, the return):",
        "",
        "| phase | s | share |",
        "|---|---:|---:|",
        f"| call → first paced request (contract details) | {first_sent - ours.called:.3f} | "
        f"{_pct((first_sent - ours.called) / ours.wall)} |",
        f"| first → last paced request | {last_sent - first_sent:.3f} | "
        f"{_pct((last_sent - first_sent) / ours.wall)} |",
        f"| … of which waiting in the pacer (`_pacer.waited`) | {ours.waited or 0.0:.3f} | "
        f"{_pct((ours.waited or 0.0) / ours.wall)} |",
        f"| last paced request → result (its answer, then merging {ours.bars:,} bars) | "
        f"{ours.returned - last_sent:.3f} | {_pct((ours.returned - last_sent) / ours.wall)} |",
        f"| total | {ours.wall:.3f} | 100.0% |",
    ]
    if pacing_profile is not None:
        p = pacing_profile
        lines += [
            "",
            f"cProfile of a second, untimed run of the same download (the caller's thread, "
            f"where the engine runs; {p.requests} paced requests, {p.wall:.2f} s under the "
            "profiler, which inflates the CPU rows):",
            "",
            "| step | calls | cumulative s |",
            "|---|---:|---:|",
            *(f"| {label} | {calls:,} | {secs:.3f} |" for label, calls, secs in p.parts),
            f"| CPU of the pacer and its tracker (own time in `_pacer.py`, `pacing.py`) | "
            f"{p.requests:,} | {p.pacer_cpu:.3f} |",
            "",
            "| function (own time, waiting left out) | calls | own s |",
            "|---|---:|---:|",
            *(f"| `{name}` | {calls:,} | {secs:.3f} |" for name, calls, secs in p.top),
        ]
    lines += [
        "",
        f"#### Cache: `{CACHE_BAR}` bars, {cache_days} days to "
        f"{CACHE_END:%Y-%m-%d %H:%M} UTC, same client, cache file in a temporary directory",
        "",
        "| run | reqHistoricalData to the simulator | all messages to the simulator | bars | "
        "median s | "
        "min s | max s | speedup |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| {FIRST} | {cache.requests:,} | {cache.messages:,} | {cache.bars:,} | "
        f"{cache.first:.4f} | {cache.first:.4f} | {cache.first:.4f} | 1.0x |",
        f"| {REPEAT} (x{len(cache.repeats)}) | {cache.new_requests:,} | {cache.new_messages:,} "
        f"| {cache.bars:,} | {cache.repeat:.4f} | {min(cache.repeats):.4f} | "
        f"{max(cache.repeats):.4f} | {cache.speedup:.1f}x |",
    ]
    if cache.profile is not None:
        lines += [
            "",
            "cProfile of one more repeat (everything runs in the caller's thread):",
            "",
            "| function (own time) | calls | own s |",
            "|---|---:|---:|",
            *(f"| `{name}` | {calls:,} | {secs:.4f} |" for name, calls, secs in cache.profile),
        ]
    recipe = next(d for d in recipes if d.name == RECIPE)
    onward = [d for d in recipes if d.name == RECIPE_ON]
    lines += [
        "",
        "#### Targets (this run)",
        "",
        f"- ibdata at least {EFFICIENCY_TARGET:.0%} of the request rate the rules allow, "
        f"with no pacing violation: {paced_total} requests in {ours.wall:.2f} s against "
        f"{sched.ideal:.2f} s at best = {_pct(efficiency)}, {ours.violations} violation(s), "
        f"bars {'exactly the simulator' if ours.exact else 'NOT the simulator'}'s: "
        f"{_verdict(efficiency >= EFFICIENCY_TARGET and ours.violations == 0 and ours.exact)}"
        f" (the {SAFETY:.0%} margin alone caps it at {_pct(sched.ideal / sched.margin)}). "
        f"The {ours.wall - sched.ideal:.2f} s above the ideal: {sched.margin - sched.ideal:.2f} s "
        f"from the margin, {sched.sequential - sched.margin:.2f} s from sending one request "
        f"at a time, {ours.wall - sched.sequential:.2f} s other work (the result arrived "
        f"{ours.returned - last_sent:.2f} s after the last request was sent, "
        f"{sched.gap:.3f} s being a typical request's answer).",
        f"- For comparison, the ib_async docs loop on the same range: {recipe.requests} "
        f"requests in {recipe.wall:.2f} s, {recipe.violations} pacing violation(s), "
        f"{recipe.bars:,} of {recipe.expected:,} bars ({_pct(recipe.bars / recipe.expected)})"
        + (f", then failed: {recipe.error}" if recipe.error else ", no exception")
        + "".join(
            f"; continuing past empty answers: {d.requests} requests in {d.wall:.2f} s, "
            f"{d.violations} violation(s), {d.bars:,} bars ({_pct(d.bars / d.expected)})"
            for d in onward
        )
        + ".",
        f"- A repeated range from the cache at least {SPEEDUP_TARGET:.0f}x faster than the "
        f"first download, no request reaching the simulator: {cache.first:.4f} s / "
        f"{cache.repeat:.4f} s = {cache.speedup:.1f}x, {cache.new_requests} request(s) and "
        f"{cache.new_messages} message(s) during the repeats, same bars: "
        f"{'yes' if cache.same else 'NO'}: "
        f"{_verdict(cache.speedup >= SPEEDUP_TARGET and cache.new_messages == 0 and cache.same)}.",
    ]
    for d in recipes:
        if d.error:
            lines.append(f"- {d.name}: {d.error}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the markdown (and write it to ``--output``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_REQUESTS} requests at scale {QUICK_SCALE:g}, a {QUICK_CACHE_DAYS}-day "
        "cache range (a few seconds; for tests)",
    )
    parser.add_argument("--scale", type=float, default=None, help="pacing time scale")
    parser.add_argument("--requests", type=int, default=None, help="bar requests to pace")
    parser.add_argument("--repeat", type=int, default=None, help="repeats from the cache")
    parser.add_argument("--output", help="also write the markdown to this file")
    args = parser.parse_args(argv)
    scale = args.scale if args.scale is not None else (QUICK_SCALE if args.quick else FULL_SCALE)
    requests = (
        args.requests
        if args.requests is not None
        else (QUICK_REQUESTS if args.quick else FULL_REQUESTS)
    )
    default_repeat = QUICK_REPEAT if args.quick else FULL_REPEAT
    repeat = args.repeat if args.repeat is not None else default_repeat
    days = QUICK_CACHE_DAYS if args.quick else FULL_CACHE_DAYS
    if not (math.isfinite(scale) and scale > 0):
        parser.error("--scale must be a positive number")
    if requests < 1 or repeat < 1:
        parser.error("--requests and --repeat must be at least 1")
    rules = PacingRules(time_scale=scale)

    host = machine()
    ours = ibdata_download(rules, requests)
    recipes = [
        recipe_download(rules, requests, keep_going=False),
        recipe_download(rules, requests, keep_going=True),
    ]
    cache = cache_download(rules, days, repeat)
    sched = schedules(rules, ours.paced)
    pacing_profile = None
    if sched.ideal / ours.wall < EFFICIENCY_TARGET:
        pacing_profile = profile_pacing(rules, requests)
    left = leftover_threads()
    if left:
        raise RuntimeError(f"threads still running after the benchmark: {left}")
    text = render(host, scale, requests, ours, recipes, sched, pacing_profile, cache, days)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
