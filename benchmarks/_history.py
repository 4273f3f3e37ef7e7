"""The history comparisons: ibdata's history engine against naive loops under IB's pacing
rules, and a repeated range from ibdata's on-disk cache against downloading it.

Everything runs on the one simulator of the run, its pacing rules scaled
(:meth:`ibdata.sim.Simulator.set_pacing` with ``PacingRules(time_scale=S)``, set afresh
before each download, so that each starts from empty windows as on a new simulator); the
clients are given the same rules object. At S=100 IB's ten-minute window of 60 small-bar
requests lasts 6 s, the 2-second window of 5 requests per contract 20 ms.

The instrument is EUR.USD (CASH, IDEALPRO, ``MIDPOINT``, all hours): it trades 23 3/4 hours
a weekday, so a range of 100 hours is one unbroken stretch in which every 30-minute request
holds bars. (A US stock's all-hours session lasts 16 h: the range would cross nights whose
requests come back empty, and the documented ``ib_async`` loop stops at the first empty
answer, whatever its cause.) ``MIDPOINT`` is also what that loop asks for.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibdata
from _common import CLOCK_AT, UTC, event_loop, quiet
from ibdata import Client, ContractSpec, PacingRules
from ibdata._pacer import with_margin
from ibdata._planner import chunk_span
from ibdata.pacing import PacedRequest, PacingTracker
from ibdata.sim import ContractQuery, Received, Simulator
from ibdata.sim import _bars as simbars

SYMBOL, SEC_TYPE, EXCHANGE, CURRENCY = "EUR", "CASH", "IDEALPRO", "USD"
WHAT_TO_SHOW = "MIDPOINT"
SPEC = ContractSpec(SYMBOL, sec_type=SEC_TYPE, exchange=EXCHANGE, currency=CURRENCY)
QUERY = ContractQuery(symbol=SYMBOL, sec_type=SEC_TYPE, exchange=EXCHANGE, currency=CURRENCY)

SMALL_BAR = "1 secs"
#: The end of the paced range: Friday 16:00 in New York, an hour before the weekly close.
PACING_END = dt.datetime(2025, 3, 7, 21, 0, tzinfo=UTC)

CACHE_BAR = "1 min"
CACHE_END = dt.datetime(2025, 3, 12, 0, 0, tzinfo=UTC)

#: Seconds the loops give each request before ib_async gives up on it.
LOOP_TIMEOUT = 3.0
CLIENT_TIMEOUT = 30.0
PACED_NAMES = ("reqHistoricalData", "reqHeadTimestamp")

IBDATA = "ibdata history engine"
RECIPE = "ib_async docs loop"
RECIPE_ON = "ib_async docs loop, past empty answers"
SLEEPER = "ib_async docs loop, sleeping between requests"

_client_ids = itertools.count(50_000)


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
    paced: list[Received]
    error: str | None = None

    @property
    def share(self) -> float:
        """The share of the range's bars it got."""
        return self.bars / self.expected


@dataclass
class CacheRun:
    """One first download into an empty cache file, then hits."""

    bars: int
    first: float
    hits: list[float]
    new_messages: int  # messages that reached the simulator during the hits
    same: bool


def pacing_range(requests: int) -> tuple[dt.datetime, dt.datetime, str]:
    """The range that needs ``requests`` chunks of 1-second bars, and one chunk's duration."""
    duration, span = chunk_span(SMALL_BAR)
    return PACING_END - requests * span, PACING_END, duration


def sleep_between(rules: PacingRules) -> float:
    """The pause that keeps a one-request-at-a-time loop inside the ten-minute rule:
    its window over its count (10 s under IB's rules)."""
    return rules.effective_window / rules.window_max


def _expected(sim: Simulator, start: dt.datetime, end: dt.datetime) -> list[float]:
    """Start times (epoch seconds) of the bars the simulator holds in ``[start, end)``."""
    contract = sim.catalog.resolve(QUERY, CLOCK_AT.date())
    bars = simbars.generate(contract, WHAT_TO_SHOW, SMALL_BAR, False, start, end, now=CLOCK_AT)
    return [b.start.timestamp() for b in bars]


def _paced(sim: Simulator, client_id: int) -> list[Received]:
    return [m for m in sim.received.find(client_id=client_id) if m.name in PACED_NAMES]


def warm(sim: Simulator, requests: int, cache_days: int) -> None:
    """Download both ranges once with pacing off (untimed), so the simulator serves them
    from its session cache: every timed download then meets the same, fast simulator."""
    sim.set_pacing(None)
    start, end, _ = pacing_range(requests)
    with Client(
        "127.0.0.1", sim.port, client_id=next(_client_ids), pacing=None, timeout=CLIENT_TIMEOUT
    ) as client:
        client.get_historical_bars(
            SPEC, start=start, end=end, bar_size=SMALL_BAR, what_to_show=WHAT_TO_SHOW
        )
        client.get_historical_bars(
            SPEC,
            start=CACHE_END - dt.timedelta(days=cache_days),
            end=CACHE_END,
            bar_size=CACHE_BAR,
            what_to_show=WHAT_TO_SHOW,
        )


def ibdata_download(sim: Simulator, rules: PacingRules, requests: int) -> Download:
    """ibdata's engine over the paced range (no cache), from the call to the result."""
    start, end, _ = pacing_range(requests)
    expected = _expected(sim, start, end)
    client_id = next(_client_ids)
    with Client(
        "127.0.0.1", sim.port, client_id=client_id, pacing=rules, timeout=CLIENT_TIMEOUT
    ) as client:
        sim.set_pacing(rules)
        violations = sim.stats.pacing_violations
        called = time.perf_counter()
        bars = client.get_historical_bars(
            SPEC, start=start, end=end, bar_size=SMALL_BAR, what_to_show=WHAT_TO_SHOW
        )
        wall = time.perf_counter() - called
    paced = _paced(sim, client_id)
    ends = [bars[0].time, bars[-1].time] if len(bars) else []
    exact = len(bars) == len(expected) and all(
        isinstance(t, dt.datetime) and t.timestamp() == want
        for t, want in zip(ends, expected[:1] + expected[-1:], strict=True)
    )
    return Download(
        name=IBDATA,
        wall=wall,
        requests=sum(r.name == "reqHistoricalData" for r in paced),
        heads=sum(r.name == "reqHeadTimestamp" for r in paced),
        violations=sim.stats.pacing_violations - violations,
        bars=len(bars),
        expected=len(expected),
        exact=exact,
        paced=paced,
    )


def loop_download(
    sim: Simulator, rules: PacingRules, requests: int, name: str, *, pause: float = 0.0
) -> Download:
    """The loop of ``ib_async``'s documentation for long histories, over the paced range.

    It walks backwards: ``reqHistoricalData`` with ``endDateTime`` = the first bar's date of
    the previous answer, prepending each answer, until an answer is empty (``RECIPE``) or
    the range's start is reached. ``RECIPE_ON`` steps back one duration past empty answers
    instead; ``SLEEPER`` sleeps ``pause`` seconds after each answer (``ib.sleep``). Same
    duration per request, ``useRTH=False``, ``formatDate=1``, ``RaiseRequestErrors=False``
    (its default: a failed request gives an empty list), a 3 s timeout per request; its
    synchronous API on an event loop created here. It paces nothing of its own.
    """
    from ib_async import IB, Forex

    start, end, duration = pacing_range(requests)
    span = dt.timedelta(seconds=int(duration.split()[0]))
    expected = _expected(sim, start, end)
    client_id = next(_client_ids)
    chunks: list[Any] = []
    error: str | None = None
    with quiet("ib_async"), event_loop():
        ib = IB()
        ib.RaiseRequestErrors = False
        try:
            ib.connect("127.0.0.1", sim.port, clientId=client_id, timeout=20)
            contract = Forex(SYMBOL + CURRENCY)
            sim.set_pacing(rules)
            violations = sim.stats.pacing_violations
            called = time.perf_counter()
            when: Any = end
            try:
                while True:
                    bars = ib.reqHistoricalData(
                        contract,
                        endDateTime=when,
                        durationStr=duration,
                        barSizeSetting=SMALL_BAR,
                        whatToShow=WHAT_TO_SHOW,
                        useRTH=False,
                        formatDate=1,
                        timeout=LOOP_TIMEOUT,
                    )
                    if bars:
                        chunks.insert(0, bars)
                        when = bars[0].date
                    elif name == RECIPE_ON:
                        when = when - span
                    else:
                        break  # the documented loop ends at the first empty answer
                    if when <= start:
                        break
                    if pause:
                        ib.sleep(pause)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            wall = time.perf_counter() - called
            violations = sim.stats.pacing_violations - violations
        finally:
            ib.disconnect()
    paced = _paced(sim, client_id)
    got = sorted({b.date.timestamp() for bars in chunks for b in bars if start <= b.date < end})
    if error is None and not set(expected).issuperset(got):
        error = "bars the simulator does not have"
    return Download(
        name=name,
        wall=wall,
        requests=sum(r.name == "reqHistoricalData" for r in paced),
        heads=sum(r.name == "reqHeadTimestamp" for r in paced),
        violations=violations,
        bars=len(got),
        expected=len(expected),
        exact=got == expected,
        paced=paced,
        error=error,
    )


def fastest(rules: PacingRules, paced: Sequence[Received]) -> float:
    """Seconds from the first request to the last when the requests that reached the
    simulator are each sent at the earliest moment ``rules`` allow and answers take no
    time: a greedy schedule on :class:`ibdata.pacing.PacingTracker`."""
    tracker = PacingTracker(rules)
    t = 0.0
    for r in paced:
        request = PacedRequest(
            contract=SYMBOL,
            exchange=EXCHANGE,
            what_to_show=WHAT_TO_SHOW,
            bar_size="" if r.name == "reqHeadTimestamp" else SMALL_BAR,
            identity=r.fields,
            head_timestamp=r.name == "reqHeadTimestamp",
        )
        t = tracker.ready_at(request, t)
        while tracker.check(request, t) is not None:  # ready_at is exact; this never loops
            t = math.nextafter(t, math.inf)
        tracker.record(request, t)
    return t


def schedules(rules: PacingRules, paced: Sequence[Received]) -> tuple[float, float]:
    """The fastest schedule of ibdata's requests under the rules, and under the rules with
    ibdata's safety margin (``ibdata._pacer.SAFETY``: the practical ceiling)."""
    return fastest(rules, paced), fastest(with_margin(rules), paced)


def cache_download(sim: Simulator, rules: PacingRules, days: int, hits: int) -> CacheRun:
    """``days`` of 1-minute bars downloaded into an empty cache file (timed), then the same
    range ``hits`` times from the cache on the same client (each timed); no message may
    reach the simulator during the hits, and every hit must equal the download."""
    start, end = CACHE_END - dt.timedelta(days=days), CACHE_END

    def get(client: Client) -> ibdata.Bars:
        return client.get_historical_bars(
            SPEC, start=start, end=end, bar_size=CACHE_BAR, what_to_show=WHAT_TO_SHOW
        )

    with tempfile.TemporaryDirectory(prefix="ibdata-bench-") as tmp:
        client_id = next(_client_ids)
        path = Path(tmp) / "bars.sqlite"
        with Client(
            "127.0.0.1",
            sim.port,
            client_id=client_id,
            pacing=rules,
            cache=path,
            timeout=CLIENT_TIMEOUT,
        ) as client:
            sim.set_pacing(rules)
            t0 = time.perf_counter()
            first = get(client)
            first_s = time.perf_counter() - t0
            messages = len(sim.received.find(client_id=client_id))
            seconds: list[float] = []
            same = True
            for _ in range(hits):
                t0 = time.perf_counter()
                again = get(client)
                seconds.append(time.perf_counter() - t0)
                same = same and again == first
            new = len(sim.received.find(client_id=client_id)) - messages
    return CacheRun(bars=len(first), first=first_s, hits=seconds, new_messages=new, same=same)


def median_hit(runs: Sequence[CacheRun]) -> float:
    """The median seconds of every hit of ``runs``."""
    return statistics.median(x for r in runs for x in r.hits)
