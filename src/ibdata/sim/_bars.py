"""The simulator's deterministic bar generator and the wire formatting of bar fields.

Every bar is a pure function of the contract's ``con_id`` (plus its ``base_price``,
``volatility`` and ``min_tick``), the price series behind ``what_to_show``, the bar size and the
bar's own interval. Nothing is accumulated from an origin, so the same bar comes back whatever
window a request asked for, and generating a bar costs O(1).

Prices follow a smooth path ``mid(t) = base_price * exp(sum of slow sinusoids)`` whose phases
and amplitudes are hashed from the contract; amplitudes scale with ``volatility`` and the square
root of each sinusoid's period, so prices stay near ``base_price`` (within roughly ±40 % for a
25 % volatility). A bar opens near ``mid(start)``, closes near ``mid(end)``, and gets hashed
noise and high/low excursions scaled by ``volatility * sqrt(bar length)``. The quote series are
derived from the same unrounded midpoint bar with monotone transforms, so at the same bar
``BID <= MIDPOINT <= ASK`` field by field.

Bar placement (see :func:`generate`):

* Sessions follow the contract's session templates and its exchange calendar
  (:mod:`ibdata.sim._calendar`): no session closes on a holiday, early-close days end at the
  template's ``early_close``.
* Intraday bars exist only inside sessions: ``contract.trading`` sessions, or ``contract.liquid``
  ones when ``use_rth``. In a session the first bar starts at the open, later bars start on the
  bar-size grid counted from local midnight in ``contract.time_zone_id`` (09:30, 10:00, 11:00 …
  for hourly bars of a 09:30 open) and the last bar ends at the close. The grid uses the UTC
  offset in force at the session's open.
* Daily bars: one per session, dated by the day the session closes, spanning the session.
* Weekly bars: one per calendar week (Monday to Sunday) of session dates, monthly bars one per
  calendar month; each is the aggregate of its sessions' daily bars (open of the first, highest
  high, lowest low, close of the last, summed volume and count, volume-weighted WAP) and is
  dated by the last session it holds.
* Sessions that start before ``contract.head_timestamp`` and, for contracts with a
  ``last_trade_date``, sessions dated after it, do not exist.
* Windows: every bar whose start lies in ``[start, end)``, whole (weeks and months by their
  first session's start); or, with ``overlap`` (what real TWS answers), every bar that
  overlaps ``[start, end)``, built from data up to ``end`` only, so the bar holding ``end`` is
  cut there and a week or month is dated by its last session up to ``end``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Final

import attrs

from ibdata.pacing import BAR_SIZE_SECONDS
from ibdata.sim._model import Session, SimContract, zone

UTC = dt.timezone.utc

__all__ = [
    "BAR_SIZES",
    "LEGAL_BAR_SIZES",
    "QUOTE_TYPES",
    "SUPPORTED_WHAT_TO_SHOW",
    "VOLATILITY_TYPES",
    "SimBar",
    "bar_ending",
    "bar_fields",
    "bar_time_formatter",
    "canonical_bar_size",
    "format_bar_time",
    "format_head_timestamp",
    "format_last_trade",
    "format_price",
    "format_volume",
    "format_window_time",
    "forming_bar",
    "generate",
    "head_timestamp",
    "is_intraday",
    "next_bar_end",
    "price_tick",
    "sessions",
    "volume_unit",
]

_DAY: Final = 86_400
_WEEK: Final = 7 * _DAY
_MONTH: Final = 30 * _DAY  # nominal; monthly bars follow calendar months

#: Every legal ``barSizeSetting`` in IB's order, with TWS's own spellings of week and month.
LEGAL_BAR_SIZES: Final[tuple[str, ...]] = (
    "1 secs",
    "5 secs",
    "10 secs",
    "15 secs",
    "30 secs",
    "1 min",
    "2 mins",
    "3 mins",
    "5 mins",
    "10 mins",
    "15 mins",
    "20 mins",
    "30 mins",
    "1 hour",
    "2 hours",
    "3 hours",
    "4 hours",
    "8 hours",
    "1 day",
    "1W",
    "1M",
)

_CANONICAL: Final[Mapping[str, str]] = MappingProxyType({"1W": "1 week", "1M": "1 month"})

#: Legal bar-size strings → length in seconds. Intraday sizes are exact; ``1 day`` is 86,400,
#: ``1 week``/``1W`` 604,800 and ``1 month``/``1M`` a nominal 30 days (monthly bars follow
#: calendar months). ``1 sec``, ``3 months`` and ``1 year`` are not legal.
BAR_SIZES: Final[Mapping[str, int]] = BAR_SIZE_SECONDS  # IB's table, shared with pacing

#: Types whose bars carry no volume, WAP or count (all three are ``-1``).
QUOTE_TYPES: Final = frozenset(
    {
        "MIDPOINT",
        "BID",
        "ASK",
        "BID_ASK",
        "HISTORICAL_VOLATILITY",
        "OPTION_IMPLIED_VOLATILITY",
    }
)

_TRADE_TYPES: Final = frozenset({"TRADES", "AGGTRADES", "ADJUSTED_LAST"})

# Volatility series (levels, not prices): value range, series id for hashing.
_LEVELS: Final[Mapping[str, tuple[float, float, int]]] = MappingProxyType(
    {
        "HISTORICAL_VOLATILITY": (0.15, 0.6, 1),
        "OPTION_IMPLIED_VOLATILITY": (0.15, 0.6, 2),
    }
)

#: Types whose values are volatilities (about 0.15-0.6), rounded to 6 decimals, not to a tick.
VOLATILITY_TYPES: Final = frozenset(_LEVELS)

#: ``whatToShow`` values :func:`generate` can produce bars for.
SUPPORTED_WHAT_TO_SHOW: Final = frozenset(
    {"TRADES", "AGGTRADES", "ADJUSTED_LAST", "MIDPOINT", "BID", "ASK", "BID_ASK", *_LEVELS}
)

_LEVEL_DECIMALS: Final = 6
_ADJUSTMENT: Final = 0.98  # ADJUSTED_LAST = TRADES x this (dividends and splits, simplified)
_YEAR: Final = 365.25 * _DAY
_TRADING_YEAR: Final = 252 * 6.5 * 3600  # seconds of trading a year, scales bar noise
_PERIODS: Final = (
    4 * _YEAR,
    1.02 * _YEAR,
    91.3 * _DAY,
    20.7 * _DAY,
    4.9 * _DAY,
    1.37 * _DAY,
    7.1 * 3600,
    2.03 * 3600,
    37.3 * 60,
    11.1 * 60,
)
_PERSON: Final = b"ibdata.sim.bars"
_KEY: Final = struct.Struct("<qqqq")
_WORDS: Final = struct.Struct("<16I")
_WORDS48: Final = struct.Struct("<12I")
_U32: Final = 1.0 / 4_294_967_296.0
_EPS: Final = 1e-9
_EPOCH_DATE: Final = dt.date(1970, 1, 1)
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = _EPOCH_DATE.toordinal()


@attrs.frozen
class SimBar:
    """One generated bar.

    ``start`` and ``end`` are UTC. For intraday bars ``end`` is the end of the bar (the next grid
    point or the session close); for daily, weekly and monthly bars ``start`` is the first
    session's open and ``end`` the last session's close. ``session_date`` is the date the bar's
    (last) session closes, for every bar size. ``volume``, ``wap`` and ``count`` are ``-1`` for
    quote and volatility types (:data:`QUOTE_TYPES`).
    """

    start: dt.datetime
    end: dt.datetime
    session_date: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: int
    wap: float
    count: int


def canonical_bar_size(bar_size: str) -> str:
    """The long spelling of a legal bar size (``1W`` → ``1 week``, ``1M`` → ``1 month``).

    Raises:
        ValueError: ``bar_size`` is not legal.
    """
    if bar_size not in BAR_SIZES:
        raise ValueError(f"illegal bar size {bar_size!r}")
    return _CANONICAL.get(bar_size, bar_size)


def is_intraday(bar_size: str) -> bool:
    """True for bars shorter than a day (``1 secs`` … ``8 hours``).

    Raises:
        ValueError: ``bar_size`` is not legal.
    """
    if bar_size not in BAR_SIZES:
        raise ValueError(f"illegal bar size {bar_size!r}")
    return BAR_SIZES[bar_size] < _DAY


def price_tick(contract: SimContract, what_to_show: str) -> float:
    """The grid the bar values of ``what_to_show`` lie on: ``min_tick``, or 1e-6 for the
    volatility types."""
    return 10.0**-_LEVEL_DECIMALS if what_to_show in _LEVELS else contract.min_tick


# --------------------------------------------------------------------------------------
# sessions


def sessions(
    contract: SimContract, use_rth: bool, start: dt.datetime, end: dt.datetime
) -> list[Session]:
    """The contract's sessions that overlap ``[start, end)``, oldest first.

    Liquid sessions when ``use_rth``, trading sessions otherwise, on the contract's exchange
    calendar (no session on a holiday). Sessions that start before
    ``contract.head_timestamp`` or are dated after ``contract.last_trade_date`` are left out.
    """
    template = contract.liquid if use_rth else contract.trading
    expiry = contract.expired_on
    head = contract.head_timestamp
    if expiry is not None:
        last = dt.datetime.combine(expiry + dt.timedelta(days=2), dt.time(), tzinfo=UTC)
        end = min(end, last)
    start = max(start, head - dt.timedelta(days=1))
    if start >= end:
        return []
    return [
        s
        for s in template.sessions(contract.time_zone_id, start, end, contract.calendar)
        if s.start >= head and (expiry is None or s.date <= expiry)
    ]


def head_timestamp(contract: SimContract, what_to_show: str, use_rth: bool) -> dt.datetime:
    """The start of the first bar available: the first session open at or after the contract's
    ``head_timestamp`` (liquid sessions when ``use_rth``). The same for every ``what_to_show``.

    If no session exists after it (a contract that expired first), the contract's
    ``head_timestamp`` itself is returned.
    """
    del what_to_show  # every series starts at the same time in the simulator
    head = contract.head_timestamp
    probe = head
    for _ in range(8):
        found = sessions(contract, use_rth, probe, probe + dt.timedelta(days=31))
        if found:
            return found[0].start
        probe += dt.timedelta(days=31)
    return head


# --------------------------------------------------------------------------------------
# hashing and the price path


@attrs.frozen
class _Path:
    """A smooth deterministic curve: ``wave(t)`` is a sum of ten hashed sinusoids."""

    wave: Callable[[float], float]
    total: float  # sum of the amplitudes: |wave(t)| <= total


def _sinusoids(
    amps: Sequence[float], omegas: Sequence[float], phases: Sequence[float]
) -> Callable[[float], float]:
    a0, a1, a2, a3, a4, a5, a6, a7, a8, a9 = amps
    w0, w1, w2, w3, w4, w5, w6, w7, w8, w9 = omegas
    p0, p1, p2, p3, p4, p5, p6, p7, p8, p9 = phases
    sin = math.sin

    def wave(t: float) -> float:
        return (
            a0 * sin(w0 * t + p0)
            + a1 * sin(w1 * t + p1)
            + a2 * sin(w2 * t + p2)
            + a3 * sin(w3 * t + p3)
            + a4 * sin(w4 * t + p4)
            + a5 * sin(w5 * t + p5)
            + a6 * sin(w6 * t + p6)
            + a7 * sin(w7 * t + p7)
            + a8 * sin(w8 * t + p8)
            + a9 * sin(w9 * t + p9)
        )

    return wave


@lru_cache(maxsize=512)
def _path(con_id: int, series: int, volatility: float) -> _Path:
    """The curve of one series of one contract; amplitudes grow with ``volatility`` and with
    the square root of each period."""
    words = _WORDS.unpack(
        hashlib.blake2b(_KEY.pack(con_id, series, -1, -1), digest_size=64, person=_PERSON).digest()
    )
    amps: list[float] = []
    phases: list[float] = []
    omegas: list[float] = []
    for i, period in enumerate(_PERIODS):
        u_amp = words[i] * _U32
        u_phase = words[(i + 7) % 16] * _U32
        amps.append(0.35 * volatility * math.sqrt(period / _YEAR) * (0.5 + 0.5 * u_amp))
        phases.append(2.0 * math.pi * u_phase)
        omegas.append(2.0 * math.pi / period)
    return _Path(_sinusoids(amps, omegas, phases), sum(amps))


def _words(con_id: int, code: int, t0: int, t1: int) -> tuple[int, ...]:
    digest = hashlib.blake2b(
        _KEY.pack(con_id, code, t0, t1), digest_size=64, person=_PERSON
    ).digest()
    return _WORDS.unpack(digest)


@lru_cache(maxsize=64)
def _decimals(tick: float) -> int:
    """How many decimals a value on the ``tick`` grid needs (0.01 → 2, 0.25 → 2, 1/64 → 6)."""
    if not tick > 0:
        raise ValueError(f"tick must be positive, got {tick!r}")
    for d in range(13):
        if abs(round(tick, d) - tick) <= 1e-12 * max(1.0, tick):
            return d
    return 12


# --------------------------------------------------------------------------------------
# bar intervals


_Interval = tuple[int, int, dt.date]  # (start epoch, end epoch, session date) of one bar


def _intervals(
    contract: SimContract,
    bar_size: str,
    use_rth: bool,
    start: dt.datetime,
    end: dt.datetime,
    *,
    overlap: bool,
) -> list[_Interval]:
    """The intraday or daily bars of the window, uncut: those that overlap ``[start, end)``
    (``overlap``) or whose start lies in it."""
    w0 = math.ceil(start.timestamp())
    w1 = math.ceil(end.timestamp())
    f0 = math.floor(start.timestamp())
    step = BAR_SIZES[bar_size]
    out: list[_Interval] = []
    if step < _DAY:
        z = zone(contract.time_zone_id)
        lowest = f0 - step + 1 if overlap else w0  # the earliest grid bar start kept
        for s in sessions(contract, use_rth, start, end):
            s0 = int(s.start.timestamp())
            s1 = int(s.end.timestamp())
            offset = s.start.astimezone(z).utcoffset()
            off = int(offset.total_seconds()) if offset is not None else 0
            grid = s0 - (s0 + off) % step + step  # first grid point after the open
            date = s.date
            if (s0 < w1 and min(grid, s1) > f0) if overlap else (w0 <= s0 < w1):
                out.append((s0, min(grid, s1), date))
            lo = max(grid, lowest)
            first = grid + -(-(lo - grid) // step) * step  # first grid point >= lo
            for t in range(first, min(s1, w1), step):
                out.append((t, min(t + step, s1), date))
        return out
    for s in sessions(contract, use_rth, start, end):
        t0 = int(s.start.timestamp())
        if overlap or w0 <= t0 < w1:
            out.append((t0, int(s.end.timestamp()), s.date))
    return out


def _period_intervals(
    contract: SimContract,
    bar_size: str,
    use_rth: bool,
    start: dt.datetime,
    end: dt.datetime,
    *,
    overlap: bool,
    now: dt.datetime | None,
) -> list[list[_Interval]]:
    """The sessions (as daily-bar intervals, uncut) of every week or month of the window.

    With ``overlap`` a period belongs to the window when one of its sessions overlaps
    ``[start, end)`` and holds its sessions that start before ``end``; otherwise when its
    first session starts in the window, and it holds all its sessions (up to ``now``).
    """
    weekly = BAR_SIZES[bar_size] == _WEEK
    margin = dt.timedelta(days=40)  # reaches the first session of the period holding start
    later = end + margin if now is None else min(end + margin, now)
    until = end if overlap else later
    groups: dict[tuple[int, int], list[Session]] = {}
    for s in sessions(contract, use_rth, start - margin, until):
        if weekly:
            iso = s.date.isocalendar()
            key = (iso[0], iso[1])
        else:
            key = (s.date.year, s.date.month)
        groups.setdefault(key, []).append(s)
    w0 = math.ceil(start.timestamp())
    w1 = math.ceil(end.timestamp())
    out: list[list[_Interval]] = []
    for key in sorted(groups):
        group = groups[key]
        first = int(group[0].start.timestamp())
        if group[-1].end > start if overlap else w0 <= first < w1:
            out.append([(int(g.start.timestamp()), int(g.end.timestamp()), g.date) for g in group])
    return out


def _code(bar_size: str, series: int) -> int:
    return BAR_SIZES[bar_size] * 16 + series


def _cut(interval: _Interval, at: dt.datetime) -> _Interval:
    """``interval`` ending at ``at`` at the latest (never empty)."""
    t0, t1, day = interval
    cut = math.floor(at.timestamp())
    return (t0, max(cut, t0 + 1), day) if t1 > cut else interval


# --------------------------------------------------------------------------------------
# the generator


def generate(  # noqa: PLR0917 - positional signature shared with the server
    contract: SimContract,
    what_to_show: str,
    bar_size: str,
    use_rth: bool,
    start: dt.datetime,
    end: dt.datetime,
    *,
    now: dt.datetime | None = None,
    overlap: bool = False,
) -> list[SimBar]:
    """The bars of the window ``[start, end)``, oldest first.

    Without ``overlap``: every bar whose start lies in the window (a weekly or monthly bar's
    start is its first session's), whole: the bars of a range. With ``overlap`` (how real TWS
    answers a request): every bar that overlaps the window, built from data before ``end``
    only: the bar that contains ``end`` is cut to end there (an intraday or daily bar ends at
    ``end``; a weekly or monthly bar holds the sessions that start before ``end``, the last
    one cut, and is dated by the last of them).
    Bars never depend on the window otherwise: a bar wholly inside two windows is the same in
    both (contract, ``what_to_show``, bar size, session kind and the bar's own interval
    decide it).

    Values: prices lie on the ``contract.min_tick`` grid and are positive;
    ``low <= min(open, close) <= max(open, close) <= high``. ``TRADES``, ``AGGTRADES`` and
    ``ADJUSTED_LAST`` (``TRADES`` prices x 0.98, re-rounded) have ``low < wap < high``,
    ``volume >= count >= 1``. ``MIDPOINT``, ``BID``, ``ASK`` and ``BID_ASK`` carry ``-1``
    volume, WAP and count, with ``BID <= MIDPOINT <= ASK`` at the same bar; ``BID_ASK`` has
    open = time-averaged bid, high = highest ask, low = lowest bid, close = time-averaged ask.
    ``HISTORICAL_VOLATILITY`` and ``OPTION_IMPLIED_VOLATILITY`` are levels around 0.15-0.6
    with 6 decimals, with ``-1`` volume, WAP and count. Weekly and monthly bars are the
    aggregate of the daily bars of their sessions: open of the first, highest high, lowest
    low, close of the last, summed volume and count, volume-weighted WAP (one decimal more
    than prices).

    Args:
        contract: The instrument.
        what_to_show: One of :data:`SUPPORTED_WHAT_TO_SHOW`.
        bar_size: A key of :data:`BAR_SIZES`.
        use_rth: Use liquid rather than trading sessions.
        start: Window start, timezone-aware.
        end: Window end (exclusive), timezone-aware.
        now: When given, nothing at or after ``now`` exists: the window ends at ``now`` at the
            latest and the bar that contains ``now`` is cut to end at ``now`` (an in-progress
            bar; it then depends on ``now`` too).
        overlap: Real TWS's window rather than the bars starting in the window.

    Returns:
        The bars, oldest first.

    Raises:
        ValueError: Illegal ``bar_size``, unsupported ``what_to_show`` or naive datetimes.
    """
    if bar_size not in BAR_SIZES:
        raise ValueError(f"illegal bar size {bar_size!r}")
    if what_to_show not in SUPPORTED_WHAT_TO_SHOW:
        raise ValueError(f"cannot generate bars for what_to_show={what_to_show!r}")
    if start.tzinfo is None or end.tzinfo is None or (now is not None and now.tzinfo is None):
        raise ValueError("start, end and now must be timezone-aware")
    if now is not None:
        end = min(end, now)
    if start >= end:
        return []
    cut_at = end if overlap else now
    if BAR_SIZES[bar_size] <= _DAY:
        intervals = _intervals(contract, bar_size, use_rth, start, end, overlap=overlap)
        if cut_at is not None and intervals:
            intervals[-1] = _cut(intervals[-1], cut_at)
        return _make_bars(contract, what_to_show, bar_size, intervals)
    periods = _period_intervals(contract, bar_size, use_rth, start, end, overlap=overlap, now=now)
    if cut_at is not None and periods:
        periods[-1][-1] = _cut(periods[-1][-1], cut_at)
    days = _make_bars(contract, what_to_show, "1 day", [i for p in periods for i in p])
    wap_decimals = min(_decimals(contract.min_tick) + 1, 12)
    out: list[SimBar] = []
    at = 0
    for period in periods:
        out.append(_aggregate(days[at : at + len(period)], wap_decimals))
        at += len(period)
    return out


# --------------------------------------------------------------------------------------
# live bars: what a keepUpToDate subscription sends

_SECOND: Final = dt.timedelta(seconds=1)


def forming_bar(
    contract: SimContract, what_to_show: str, bar_size: str, use_rth: bool, now: dt.datetime
) -> SimBar | None:
    """The bar in progress at ``now``, cut there: the last bar a request answered at ``now``
    ends with, unless that bar ended before ``now``. None while the market is closed.

    At a bar's end exactly it is that bar, complete; a moment later, the next one, cut to at
    least one second.
    """
    bars = generate(
        contract, what_to_show, bar_size, use_rth, now - _SECOND, now, now=now, overlap=True
    )
    if not bars:
        return None
    end = next_bar_end(contract, bar_size, use_rth, bars[-1].start)  # the bar's, uncut
    return bars[-1] if end is not None and end >= now else None


def bar_ending(
    contract: SimContract, what_to_show: str, bar_size: str, use_rth: bool, end: dt.datetime
) -> SimBar | None:
    """The complete bar that ends at ``end`` (a time :func:`next_bar_end` gave), exactly as
    every later window holding it has it; None if no bar ends there."""
    bars = generate(
        contract, what_to_show, bar_size, use_rth, end - _SECOND, end, now=end, overlap=True
    )
    return bars[-1] if bars and bars[-1].end == end else None


def next_bar_end(
    contract: SimContract, bar_size: str, use_rth: bool, after: dt.datetime
) -> dt.datetime | None:
    """The end of the first bar that ends after ``after``: the end of the bar in progress, or
    of the next session's first bar (the next week's or month's for weekly and monthly
    bars) while the market is closed. None if no session starts within two weeks (ten
    weeks for weekly and monthly bars), as after a future's last trading day.

    Bars end on the bar-size grid and at session closes (see :func:`generate`).
    """
    step = BAR_SIZES[bar_size]
    at = after.timestamp()
    if step <= _DAY:
        for s in sessions(contract, use_rth, after, after + dt.timedelta(days=14)):
            if s.end <= after:
                continue
            t = max(after, s.start)
            ends = [
                t1
                for t0, t1, _ in _intervals(
                    contract, bar_size, use_rth, t, t + _SECOND, overlap=True
                )
                if t1 > at
            ]
            if ends:
                return dt.datetime.fromtimestamp(min(ends), UTC)
        return None
    weekly = step == _WEEK
    horizon = after + dt.timedelta(days=70)
    groups: dict[tuple[int, int], list[Session]] = {}
    for s in sessions(contract, use_rth, after - dt.timedelta(days=40), horizon):
        key = s.date.isocalendar()[:2] if weekly else (s.date.year, s.date.month)
        groups.setdefault(key, []).append(s)
    for key in sorted(groups):
        last = groups[key][-1]
        if last.end <= after:
            continue
        if weekly:
            period_end = dt.date.fromisocalendar(key[0], key[1], 7)
        else:
            period_end = dt.date(key[0] + key[1] // 12, key[1] % 12 + 1, 1) - dt.timedelta(days=1)
        # a period reaching past the horizon may have sessions not seen
        return last.end if period_end < horizon.date() - dt.timedelta(days=1) else None
    return None


def _make_bars(
    contract: SimContract, what_to_show: str, bar_size: str, intervals: Sequence[_Interval]
) -> list[SimBar]:
    if what_to_show in _LEVELS:
        return _level_bars(contract, what_to_show, bar_size, intervals)
    return _price_bars(contract, what_to_show, bar_size, intervals)


def _aggregate(days: Sequence[SimBar], wap_decimals: int) -> SimBar:
    """One bar made of consecutive daily bars: open of the first, extremes, close of the last,
    volume and count summed, WAP volume-weighted (``-1`` for types without volume)."""
    first = days[0]
    last = days[-1]
    high = max(b.high for b in days)
    low = min(b.low for b in days)
    if first.volume < 0:
        volume, wap, count = -1, -1.0, -1
    else:
        volume = sum(b.volume for b in days)
        count = sum(b.count for b in days)
        wap = round(math.fsum(b.wap * b.volume for b in days) / volume, wap_decimals)
    return SimBar(
        first.start,
        last.end,
        last.session_date,
        first.open,
        high,
        low,
        last.close,
        volume,
        wap,
        count,
    )


def _price_bars(
    contract: SimContract,
    what_to_show: str,
    bar_size: str,
    intervals: Sequence[tuple[int, int, dt.date]],
) -> list[SimBar]:
    """Price bars; the hot loop of the simulator, so written for speed (locals, no calls)."""
    tick = contract.min_tick
    dec = _decimals(tick)
    wap_dec = min(dec + 1, 12)  # IB's WAPs carry one digit more than prices (184.869)
    inv = 1.0 / tick
    scale = round(inv)
    exact = scale >= 1 and abs(scale * tick - 1.0) < 1e-12  # q / scale is the clean decimal
    wave = _path(contract.con_id, 0, contract.volatility).wave
    log_base = math.log(contract.base_price)
    vol = contract.volatility
    con_id = contract.con_id
    code = _code(bar_size, 0)
    profile = _WORDS.unpack(
        hashlib.blake2b(_KEY.pack(con_id, 0, -2, -2), digest_size=64, person=_PERSON).digest()
    )
    rate = 5.0 * 40.0 ** (profile[0] * _U32)  # shares a second, 5 … 200
    lot = 1 + int(profile[1] * _U32 * 150)  # average trade size
    trades = what_to_show in _TRADE_TYPES
    adjusted = what_to_show == "ADJUSTED_LAST"
    mode = {"MIDPOINT": 0, "BID": 1, "ASK": 2, "BID_ASK": 3}.get(what_to_show, -1)
    floor = math.floor
    ceil = math.ceil
    exp = math.exp
    sqrt = math.sqrt
    blake2b = hashlib.blake2b
    pack = _KEY.pack
    unpack = _WORDS48.unpack
    person = _PERSON
    fromts = dt.datetime.fromtimestamp
    u32 = _U32
    z_scale = 0.6 * _U32
    ext_scale = 0.5 * _U32
    wap_scale = 0.4 * _U32
    eps = _EPS
    adj = _ADJUSTMENT
    per_year = 1.0 / _TRADING_YEAR
    out: list[SimBar] = []
    append = out.append
    last_t = -1
    last_wave = 0.0
    last_end = _EPOCH
    last_dur = -1
    sb = 0.0

    for t0, t1, day in intervals:
        u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, _u11 = unpack(
            blake2b(pack(con_id, code, t0, t1), digest_size=48, person=person).digest()
        )
        if t0 == last_t:  # bars in a row share the boundary: reuse its curve value and time
            wave0 = last_wave
            start = last_end
        else:
            wave0 = wave(t0)
            start = fromts(t0, UTC)
        wave1 = wave(t1)
        end = fromts(t1, UTC)
        last_t = t1
        last_wave = wave1
        last_end = end
        dur = t1 - t0
        if dur != last_dur:
            sb = vol * sqrt(dur * per_year)
            last_dur = dur
        # the unrounded midpoint bar
        o = exp(log_base + wave0 + sb * ((u0 + u1) * z_scale - 0.6))
        c = exp(log_base + wave1 + sb * ((u2 + u3) * z_scale - 0.6))
        if o > c:
            hi = o * (1.0 + sb * (0.1 + u4 * ext_scale)) + tick
            lo = c / (1.0 + sb * (0.1 + u5 * ext_scale)) - tick
        else:
            hi = c * (1.0 + sb * (0.1 + u4 * ext_scale)) + tick
            lo = o / (1.0 + sb * (0.1 + u5 * ext_scale)) - tick
        half = (1 + (u6 >> 30)) * tick  # half spread: 1-4 ticks
        if trades:
            shift = (2.0 * u7 * u32 - 1.0) * half  # trades print inside the spread
            qo = int((o + shift) * inv + 0.5)
            qh = int((hi + shift) * inv + 0.5)
            ql = floor((lo + shift) * inv + 0.5)
            qc = int((c + shift) * inv + 0.5)
            if adjusted:
                qo = int(qo * adj + 0.5)
                qh = int(qh * adj + 0.5)
                ql = floor(ql * adj + 0.5)
                qc = int(qc * adj + 0.5)
            if qo > qc:
                if qh <= qo:
                    qh = qo + 1
                if ql >= qc:
                    ql = qc - 1
            else:
                if qh <= qc:
                    qh = qc + 1
                if ql >= qo:
                    ql = qo - 1
            if ql < 1:
                ql = 1
                qo = max(qo, 2)
                qc = max(qc, 2)
                qh = max(qh, qo + 1, qc + 1)
            if exact:
                po = qo / scale
                ph = qh / scale
                pl = ql / scale
                pc = qc / scale
            else:
                po = round(qo * tick, dec)
                ph = round(qh * tick, dec)
                pl = round(ql * tick, dec)
                pc = round(qc * tick, dec)
            volume = int(rate * dur * (0.2 + 1.6 * u8 * u32)) or 1
            count = volume // lot + (u9 & 3)
            if count > volume:
                count = volume
            elif count < 1:
                count = 1
            wap = round(pl + (ph - pl) * (0.3 + u10 * wap_scale), wap_dec)
            append(SimBar(start, end, day, po, ph, pl, pc, volume, wap, count))
            continue
        if mode == 0:  # MIDPOINT
            qo = floor(o * inv + 0.5)
            qh = floor(hi * inv + 0.5)
            ql = floor(lo * inv + 0.5)
            qc = floor(c * inv + 0.5)
        elif mode == 1:  # BID
            qo = floor((o - half) * inv + eps)
            qh = floor((hi - half) * inv + eps)
            ql = floor((lo - half) * inv + eps)
            qc = floor((c - half) * inv + eps)
        elif mode == 2:  # ASK
            qo = ceil((o + half) * inv - eps)
            qh = ceil((hi + half) * inv - eps)
            ql = ceil((lo + half) * inv - eps)
            qc = ceil((c + half) * inv - eps)
        else:  # BID_ASK: time-averaged bid, highest ask, lowest bid, time-averaged ask
            qo = (floor((o - half) * inv + eps) + floor((c - half) * inv + eps)) // 2
            qh = ceil((hi + half) * inv - eps)
            ql = floor((lo - half) * inv + eps)
            qc = -((-ceil((o + half) * inv - eps) - ceil((c + half) * inv - eps)) // 2)
        if ql < 1:  # monotone clamp keeps every ordering
            ql = 1
            qo = max(qo, 1)
            qh = max(qh, 1)
            qc = max(qc, 1)
        if exact:
            append(
                SimBar(
                    start, end, day, qo / scale, qh / scale, ql / scale, qc / scale, -1, -1.0, -1
                )
            )
        else:
            append(
                SimBar(
                    start,
                    end,
                    day,
                    round(qo * tick, dec),
                    round(qh * tick, dec),
                    round(ql * tick, dec),
                    round(qc * tick, dec),
                    -1,
                    -1.0,
                    -1,
                )
            )
    return out


def _level_bars(
    contract: SimContract,
    what_to_show: str,
    bar_size: str,
    intervals: Sequence[tuple[int, int, dt.date]],
) -> list[SimBar]:
    low_level, high_level, series = _LEVELS[what_to_show]
    path = _path(contract.con_id, series, 1.0)
    mid = 0.5 * (low_level + high_level)
    half = 0.5 * (high_level - low_level) / path.total
    noise = 0.02 * (high_level - low_level)
    code = _code(bar_size, series)
    out: list[SimBar] = []
    wave = path.wave
    for t0, t1, day in intervals:
        w = _words(contract.con_id, code, t0, t1)
        o = mid + half * wave(t0) + noise * (2.0 * w[0] * _U32 - 1.0)
        c = mid + half * wave(t1) + noise * (2.0 * w[1] * _U32 - 1.0)
        hi = max(o, c) + noise * w[2] * _U32
        lo = min(o, c) - noise * w[3] * _U32
        out.append(
            SimBar(
                dt.datetime.fromtimestamp(t0, UTC),
                dt.datetime.fromtimestamp(t1, UTC),
                day,
                round(o, _LEVEL_DECIMALS),
                round(hi, _LEVEL_DECIMALS),
                round(lo, _LEVEL_DECIMALS),
                round(c, _LEVEL_DECIMALS),
                -1,
                -1.0,
                -1,
            )
        )
    return out


# --------------------------------------------------------------------------------------
# wire formatting


#: How prices are written (the ``price_format`` option of the simulator): ``tick`` pads to
#: the tick's decimals (``254.20``, a live capture at server version 200), ``four`` to at
#: least four (``182.9400``, ``16.0100``: captures of 2023 and 2024), ``short`` drops
#: trailing zeros (``254.2``).
PRICE_FORMATS: Final = ("tick", "four", "short")
#: How volumes are written (the ``volume_units`` option): ``auto`` as real TWS, US stocks
#: in lots of 100 below server version 175 (whole lots below 163, two decimals from 163, as
#: a capture at 165 shows) and everything in shares from 175; ``shares`` always shares.
VOLUME_UNITS: Final = ("auto", "shares")
#: TWS's API setting "Send instrument-specific attributes for dual-mode API client in"
#: (the ``api_time_zone`` option): from server version 174 date-times go out in the
#: instrument's zone, the operator's (the login zone) or UTC (``yyyymmdd-hh:mm:ss``).
API_TIME_ZONES: Final = ("instrument", "operator", "utc")


def format_price(x: float, tick: float, style: str = "short") -> str:
    """Decimal text for a value on the ``tick`` grid: no exponent, no float noise.

    ``short`` uses at most as many decimals as the tick needs and drops trailing zeros
    (``187.5``, ``100``, ``1.08345``, ``-1``); ``tick`` keeps the tick's decimals
    (``187.50``); ``four`` at least four (``187.5000``). Never empty.
    """
    decimals = _decimals(tick)
    if style in ("tick", "four"):
        text = f"{x:.{decimals if style == 'tick' else max(4, decimals)}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text
    text = repr(x)
    if "e" not in text and "n" not in text:  # fast path: repr is already the short decimal
        point = text.find(".")
        if len(text) - point - 1 <= decimals:
            if text.endswith(".0"):
                text = text[:-2]
            return "0" if text == "-0" else text
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_volume(volume: int, unit: str = "shares") -> str:
    """Volume text: ``shares`` (integer), ``lots`` (whole lots of 100) or ``decimal_lots``
    (lots of 100 with two decimals: ``948837.22``). ``-1`` (no volume) stays ``-1``."""
    if volume < 0 or unit == "shares":
        return str(int(volume))
    if unit == "lots":
        return str(round(volume / 100))
    return f"{volume / 100:.2f}"


def volume_unit(units: str, sec_type: str, currency: str, server_version: int) -> str:
    """The volume unit of one answer under the ``volume_units`` option (see
    :data:`VOLUME_UNITS`)."""
    if units != "auto" or sec_type != "STK" or currency != "USD" or server_version >= 175:
        return "shares"
    return "decimal_lots" if server_version >= 163 else "lots"


@lru_cache(maxsize=8192)
def _offset(tz: str, quarter: int) -> int:
    """UTC offset (seconds) of ``tz`` during the quarter hour ``quarter`` (epoch // 900)."""
    offset = dt.datetime.fromtimestamp(quarter * 900, zone(tz)).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


@lru_cache(maxsize=16384)
def _day_text(day: int) -> str:
    return f"{_EPOCH_DATE + dt.timedelta(days=day):%Y%m%d}"


@cache  # at most 86,400 entries
def _clock_text(second: int) -> str:
    hours, rest = divmod(second, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _epoch_text(epoch: int, tz: str, sep: str) -> str:
    """``yyyymmdd<sep>hh:mm:ss`` wall time in ``tz`` of an epoch second (cached pieces)."""
    day, second = divmod(epoch + _offset(tz, epoch // 900), _DAY)
    return _day_text(day) + sep + _clock_text(second)


def _local_text(t: dt.datetime, tz: str, sep: str) -> str:
    return _epoch_text(math.floor(t.timestamp()), tz, sep)


def _instrument_zone_form(server_version: int) -> bool:
    return server_version >= 174  # MIN_SERVER_VER_INSTRUMENT_TIMEZONE


def _zoned(epoch: int, zone_style: str, contract_tz: str, login_tz: str) -> str:
    """A date-time from server version 174 in the ``api_time_zone`` style."""
    if zone_style == "utc":
        return _epoch_text(epoch, "UTC", "-")
    tz = login_tz if zone_style == "operator" else contract_tz
    return f"{_epoch_text(epoch, tz, ' ')} {tz}"


def format_window_time(
    t: dt.datetime,
    server_version: int,
    contract_tz: str,
    login_tz: str,
    *,
    zone_style: str = "instrument",
) -> str:
    """The start/end text of a historicalData message.

    From server version 174 ``yyyymmdd hh:mm:ss <zone>`` in the instrument's zone (or the
    login zone, for ``zone_style`` ``operator``) or ``yyyymmdd-hh:mm:ss`` in UTC (``utc``);
    below it the legacy ``yyyymmdd  hh:mm:ss`` (two spaces, no zone) in the login zone.
    """
    if _instrument_zone_form(server_version):
        return _zoned(math.floor(t.timestamp()), zone_style, contract_tz, login_tz)
    return _local_text(t, login_tz, "  ")


def format_last_trade(
    day: str,
    clock: str,
    server_version: int,
    contract_tz: str,
    login_tz: str,
    *,
    zone_style: str = "instrument",
) -> str:
    """lastTradeDateOrContractMonth of a future in contract data: ``yyyymmdd hh:mm <zone>``
    in the instrument's zone (a capture at 173: ``20250620 08:30 US/Central``) and, from
    server version 174, the operator's zone with seconds (``20260320 14:30:00
    Europe/Zurich``, a capture at 178) or UTC (``20240430-17:10:00``, a capture at 176)
    under those ``api_time_zone`` settings."""
    if not clock:
        return day
    if not _instrument_zone_form(server_version) or zone_style == "instrument":
        return f"{day} {clock} {contract_tz}"
    hours, minutes = (int(x) for x in clock.split(":")[:2])
    local = dt.datetime(int(day[:4]), int(day[4:6]), int(day[6:]), hours, minutes)
    epoch = math.floor(local.replace(tzinfo=zone(contract_tz)).timestamp())
    return _zoned(epoch, zone_style, contract_tz, login_tz)


def bar_time_formatter(
    bar_size: str,
    format_date: int,
    server_version: int,
    contract_tz: str,
    login_tz: str,
    *,
    zone_style: str = "instrument",
) -> Callable[[SimBar], str]:
    """A function giving the ``date`` field of bars; see :func:`format_bar_time` for the rules.

    Raises:
        ValueError: Illegal ``bar_size`` or ``format_date`` other than 1 or 2.
    """
    return _formatter(bar_size, format_date, server_version, contract_tz, login_tz, zone_style)


@lru_cache(maxsize=256)
def _formatter(  # noqa: PLR0917 - cached on all of its arguments
    bar_size: str,
    format_date: int,
    server_version: int,
    contract_tz: str,
    login_tz: str,
    zone_style: str = "instrument",
) -> Callable[[SimBar], str]:
    if format_date not in (1, 2):
        raise ValueError(f"format_date must be 1 or 2, got {format_date!r}")
    if not is_intraday(bar_size):
        return lambda bar: _day_text(bar.session_date.toordinal() - _EPOCH_ORDINAL)
    if format_date == 2:
        return lambda bar: str(math.floor(bar.start.timestamp()))
    if _instrument_zone_form(server_version):
        zone(contract_tz)  # fail early on an unknown zone
        zone(login_tz)
        return lambda bar: _zoned(
            math.floor(bar.start.timestamp()), zone_style, contract_tz, login_tz
        )
    zone(login_tz)
    return lambda bar: _epoch_text(math.floor(bar.start.timestamp()), login_tz, "  ")


def format_bar_time(  # noqa: PLR0917 - positional signature shared with the server
    bar: SimBar,
    bar_size: str,
    format_date: int,
    server_version: int,
    contract_tz: str,
    login_tz: str,
    *,
    zone_style: str = "instrument",
) -> str:
    """The ``date`` field of one bar in historicalData (17).

    * Daily, weekly and monthly bars: ``yyyymmdd`` (the session date), whatever ``format_date``.
    * Intraday, ``format_date`` 2: epoch seconds of the bar's start.
    * Intraday, ``format_date`` 1: from server version 174 ``yyyymmdd hh:mm:ss <zone>`` in
      the instrument's zone (or the login zone, ``zone_style`` ``operator``) or
      ``yyyymmdd-hh:mm:ss`` in UTC (``utc``); below 174 ``yyyymmdd  hh:mm:ss`` (two spaces)
      in ``login_tz``.

    Raises:
        ValueError: Illegal ``bar_size`` or ``format_date`` other than 1 or 2.
    """
    return _formatter(bar_size, format_date, server_version, contract_tz, login_tz, zone_style)(bar)


def format_head_timestamp(t: dt.datetime, format_date: int) -> str:
    """The headTimestamp text: epoch seconds for ``format_date`` 2, dashed UTC
    ``yyyymmdd-hh:mm:ss`` for 1.

    Raises:
        ValueError: ``format_date`` other than 1 or 2.
    """
    if format_date == 2:
        return str(math.floor(t.timestamp()))
    if format_date == 1:
        return _local_text(t, "UTC", "-")
    raise ValueError(f"format_date must be 1 or 2, got {format_date!r}")


def bar_fields(
    bar: SimBar,
    date_text: str,
    tick: float,
    *,
    price_style: str = "short",
    volume: str = "shares",
) -> list[str]:
    """The eight historicalData fields of one bar: date, open, high, low, close, volume, WAP,
    count. Prices use ``tick`` (see :func:`price_tick`) written in ``price_style`` (see
    :data:`PRICE_FORMATS`); the WAP gets one more decimal and is never padded (real
    captures show ``184.869``, ``252.266``); the volume is written in ``volume`` (see
    :func:`format_volume`)."""
    return [
        date_text,
        format_price(bar.open, tick, price_style),
        format_price(bar.high, tick, price_style),
        format_price(bar.low, tick, price_style),
        format_price(bar.close, tick, price_style),
        format_volume(bar.volume, volume),
        format_price(bar.wap, tick / 10.0),
        str(bar.count),
    ]
