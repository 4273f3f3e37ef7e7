"""The simulator's bar generator: determinism, bar invariants, placement and wire formatting."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibdata.sim._bars import (
    BAR_SIZES,
    LEGAL_BAR_SIZES,
    QUOTE_TYPES,
    SUPPORTED_WHAT_TO_SHOW,
    VOLATILITY_TYPES,
    SimBar,
    bar_fields,
    bar_time_formatter,
    canonical_bar_size,
    format_bar_time,
    format_head_timestamp,
    format_last_trade,
    format_price,
    format_volume,
    format_window_time,
    generate,
    head_timestamp,
    is_intraday,
    price_tick,
    sessions,
    volume_unit,
)
from ibdata.sim._model import SessionTemplate, SimContract

UTC = dt.timezone.utc

STOCK = SimContract(
    con_id=265598,
    symbol="AAPL",
    sec_type="STK",
    exchange="SMART",
    primary_exchange="NASDAQ",
    currency="USD",
    local_symbol="AAPL",
    time_zone_id="US/Eastern",
    trading=SessionTemplate("0400", "2000", early_close="1700"),
    liquid=SessionTemplate("0930", "1600", early_close="1300"),
    calendar="NYSE",
    base_price=190.0,
    head_timestamp=dt.datetime(2010, 6, 29, 13, 30, tzinfo=UTC),
)
FUTURE = SimContract(
    con_id=637533641,
    symbol="ES",
    sec_type="FUT",
    exchange="CME",
    currency="USD",
    local_symbol="ESZ4",
    last_trade_date="20241220",
    contract_month="202412",
    multiplier="50",
    time_zone_id="US/Central",
    trading=SessionTemplate("1700", "1600"),
    liquid=SessionTemplate("0830", "1500"),
    calendar="CME",
    min_tick=0.25,
    base_price=5000.0,
    volatility=0.18,
    head_timestamp=dt.datetime(2023, 9, 15, tzinfo=UTC),
)
FX = SimContract(
    con_id=12087792,
    symbol="EUR",
    sec_type="CASH",
    exchange="IDEALPRO",
    currency="USD",
    local_symbol="EUR.USD",
    time_zone_id="US/Eastern",
    trading=SessionTemplate("1715", "1700"),
    liquid=SessionTemplate("1715", "1700"),
    calendar="IDEALPRO",
    min_tick=0.00005,
    base_price=1.08,
    volatility=0.08,
    what_to_show=frozenset({"MIDPOINT", "BID", "ASK", "BID_ASK"}),
)
BUND = SimContract(
    con_id=678911234,
    symbol="GBL",
    sec_type="FUT",
    exchange="EUREX",
    currency="EUR",
    local_symbol="FGBL DEC 24",
    last_trade_date="20241206",
    time_zone_id="Europe/Berlin",
    trading=SessionTemplate("0100", "2200"),
    liquid=SessionTemplate("0800", "1800"),
    calendar="EUREX",
    min_tick=1 / 64,
    base_price=131.5,
    volatility=0.06,
    head_timestamp=dt.datetime(2023, 12, 1, tzinfo=UTC),
)
PENNY = SimContract(
    con_id=999001,
    symbol="PNY",
    sec_type="STK",
    exchange="SMART",
    currency="USD",
    local_symbol="PNY",
    trading=SessionTemplate("0400", "2000"),
    liquid=SessionTemplate("0930", "1600"),
    min_tick=0.003,  # a tick whose inverse is not an integer
    base_price=3.0,
    volatility=0.9,
)
CONTRACTS = (STOCK, FUTURE, FX, BUND, PENNY)
TRADE_TYPES = ("TRADES", "AGGTRADES", "ADJUSTED_LAST")
PRICE_TYPES = ("TRADES", "AGGTRADES", "ADJUSTED_LAST", "MIDPOINT", "BID", "ASK", "BID_ASK")

WINDOW_START = dt.datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def requests(draw: st.DrawFn) -> tuple[SimContract, str, str, bool, dt.datetime, dt.datetime]:
    """A contract, what_to_show, bar size, use_rth and a window a few dozen bars long."""
    contract = draw(st.sampled_from(CONTRACTS))
    what = draw(st.sampled_from(sorted(SUPPORTED_WHAT_TO_SHOW)))
    bar_size = draw(st.sampled_from(sorted(BAR_SIZES)))
    use_rth = draw(st.booleans())
    step = BAR_SIZES[bar_size]
    span = min(step * draw(st.integers(1, 120)), 200 * 86_400)
    day = draw(st.integers(0, 300))
    # mostly inside the US/European trading day, sometimes anywhere
    second = draw(st.one_of(st.integers(13 * 3600, 20 * 3600), st.integers(0, 86_399)))
    start = WINDOW_START + dt.timedelta(days=day, seconds=second)
    return contract, what, bar_size, use_rth, start, start + dt.timedelta(seconds=span)


def on_grid(value: float, tick: float) -> bool:
    """True when ``value`` is a whole number of ticks (within float noise)."""
    return abs(value / tick - round(value / tick)) < 1e-6


# --------------------------------------------------------------------------------------
# bar sizes


def test_bar_sizes_are_the_legal_list() -> None:
    """BAR_SIZES holds the 21 legal sizes, TWS's week/month spellings and nothing else."""
    assert set(LEGAL_BAR_SIZES) <= set(BAR_SIZES)
    assert set(BAR_SIZES) - set(LEGAL_BAR_SIZES) == {"1 week", "1 month"}
    assert len(LEGAL_BAR_SIZES) == 21
    for illegal in ("1 sec", "3 months", "1 year", "1 mins", "1 hours", "1 d"):
        assert illegal not in BAR_SIZES
    assert BAR_SIZES["1 secs"] == 1
    assert BAR_SIZES["8 hours"] == 28_800
    assert BAR_SIZES["1W"] == BAR_SIZES["1 week"]
    assert BAR_SIZES["1M"] == BAR_SIZES["1 month"]


def test_canonical_bar_size_and_intraday() -> None:
    """1W/1M map to their long spellings and only sub-day sizes are intraday."""
    assert canonical_bar_size("1W") == "1 week"
    assert canonical_bar_size("1M") == "1 month"
    assert canonical_bar_size("5 mins") == "5 mins"
    assert is_intraday("8 hours")
    assert not is_intraday("1 day")
    assert not is_intraday("1W")
    with pytest.raises(ValueError, match="illegal bar size"):
        canonical_bar_size("1 sec")
    with pytest.raises(ValueError, match="illegal bar size"):
        is_intraday("1 year")


def test_generate_rejects_bad_arguments() -> None:
    """generate refuses illegal bar sizes, unsupported types and naive datetimes."""
    end = WINDOW_START + dt.timedelta(days=1)
    with pytest.raises(ValueError, match="bar size"):
        generate(STOCK, "TRADES", "1 sec", False, WINDOW_START, end)
    with pytest.raises(ValueError, match="what_to_show"):
        generate(STOCK, "SCHEDULE", "1 day", False, WINDOW_START, end)
    with pytest.raises(ValueError, match="aware"):
        generate(STOCK, "TRADES", "1 min", False, WINDOW_START.replace(tzinfo=None), end)


# --------------------------------------------------------------------------------------
# determinism


@settings(max_examples=80, deadline=None)
@given(requests(), st.floats(0.05, 0.95), st.floats(0.05, 0.95))
def test_overlapping_windows_give_identical_bars(
    request_: tuple[SimContract, str, str, bool, dt.datetime, dt.datetime], a: float, b: float
) -> None:
    """Two overlapping windows agree on every bar in their overlap, and so does the overlap."""
    contract, what, bar_size, use_rth, start, end = request_
    span = end - start
    first_end = start + span * max(a, b)
    second_start = start + span * min(a, b)
    first = generate(contract, what, bar_size, use_rth, start, first_end)
    second = generate(contract, what, bar_size, use_rth, second_start, end)
    direct = generate(contract, what, bar_size, use_rth, second_start, first_end)
    in_first = [x for x in first if x.start >= second_start]
    in_second = [x for x in second if x.start < first_end]
    assert in_first == in_second == direct
    whole = generate(contract, what, bar_size, use_rth, start, end)
    assert [x for x in whole if x.start < first_end] == first


def test_same_key_same_bar_across_calls() -> None:
    """Generating the same request twice gives equal bars, and another contract differs."""
    end = WINDOW_START + dt.timedelta(days=10)
    one = generate(STOCK, "TRADES", "5 mins", True, WINDOW_START, end)
    two = generate(STOCK, "TRADES", "5 mins", True, WINDOW_START, end)
    assert one == two
    assert one
    other = generate(PENNY, "TRADES", "5 mins", True, WINDOW_START, end)
    assert [x.close for x in other] != [x.close for x in one]


def test_now_cuts_the_bar_in_progress() -> None:
    """With ``now`` bars after it vanish, the bar holding it ends at it, earlier bars stay."""
    start = dt.datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    end = dt.datetime(2024, 3, 5, 21, 0, tzinfo=UTC)
    now = dt.datetime(2024, 3, 5, 17, 20, tzinfo=UTC)
    full = generate(STOCK, "TRADES", "1 hour", True, start, end)
    cut = generate(STOCK, "TRADES", "1 hour", True, start, end, now=now)
    assert cut[:-1] == [x for x in full if x.end <= now]
    assert cut[-1].start == dt.datetime(2024, 3, 5, 17, 0, tzinfo=UTC)
    assert cut[-1].end == now
    assert cut[-1].low <= min(cut[-1].open, cut[-1].close)


# --------------------------------------------------------------------------------------
# invariants


def check_bar(contract: SimContract, what: str, bar: SimBar) -> None:
    """Assert every invariant one bar of ``what`` must satisfy."""
    assert bar.start < bar.end
    assert bar.start.tzinfo is not None
    assert bar.end.tzinfo is not None
    assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
    if what in VOLATILITY_TYPES:
        assert 0.1 < bar.low <= bar.high < 0.7
        for value in (bar.open, bar.high, bar.low, bar.close):
            assert round(value, 6) == value
    else:
        assert bar.low > 0
        for value in (bar.open, bar.high, bar.low, bar.close):
            assert on_grid(value, contract.min_tick)
            assert 0.2 * contract.base_price < value < 5 * contract.base_price
    if what in TRADE_TYPES:
        assert bar.low < bar.wap < bar.high
        assert bar.volume >= bar.count >= 1
        assert isinstance(bar.volume, int)
        assert isinstance(bar.count, int)
    else:
        assert what in QUOTE_TYPES
        assert (bar.volume, bar.wap, bar.count) == (-1, -1.0, -1)


@settings(max_examples=80, deadline=None)
@given(requests())
def test_bars_satisfy_the_invariants(
    request_: tuple[SimContract, str, str, bool, dt.datetime, dt.datetime],
) -> None:
    """OHLC order, tick grid, positive prices, WAP inside the range, volume and count rules."""
    contract, what, bar_size, use_rth, start, end = request_
    bars = generate(contract, what, bar_size, use_rth, start, end)
    for bar in bars:
        check_bar(contract, what, bar)
    starts = [x.start for x in bars]
    assert starts == sorted(set(starts))
    assert all(start <= s < end for s in starts)


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.symbol)
@pytest.mark.parametrize("bar_size", ["1 secs", "1 min", "1 hour", "1 day"])
def test_every_type_keeps_invariants_over_a_long_run(contract: SimContract, bar_size: str) -> None:
    """Every supported type keeps its invariants over a few hundred bars of each contract."""
    span = {"1 secs": 600, "1 min": 86_400, "1 hour": 7 * 86_400, "1 day": 300 * 86_400}
    start = dt.datetime(2024, 5, 6, 13, tzinfo=UTC)
    end = start + dt.timedelta(seconds=span[bar_size])
    for what in sorted(SUPPORTED_WHAT_TO_SHOW):
        bars = generate(contract, what, bar_size, False, start, end)
        assert bars
        for bar in bars:
            check_bar(contract, what, bar)


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.symbol)
@pytest.mark.parametrize("bar_size", ["5 secs", "15 mins", "1 day", "1W"])
def test_bid_mid_ask_order_and_bid_ask_composition(contract: SimContract, bar_size: str) -> None:
    """BID <= MIDPOINT <= ASK field by field; BID_ASK is (avg bid, max ask, min bid, avg ask)."""
    start = dt.datetime(2024, 6, 3, 14, tzinfo=UTC)
    end = start + dt.timedelta(seconds=min(BAR_SIZES[bar_size] * 200, 200 * 86_400))
    by_type = {
        what: generate(contract, what, bar_size, True, start, end)
        for what in ("BID", "MIDPOINT", "ASK", "BID_ASK", "TRADES")
    }
    assert by_type["BID"]
    for bid, mid, ask, both, trade in zip(*by_type.values(), strict=True):
        assert bid.start == mid.start == ask.start == both.start == trade.start
        for field in ("open", "high", "low", "close"):
            assert getattr(bid, field) <= getattr(mid, field) <= getattr(ask, field)
        assert bid.low <= trade.low
        assert trade.high <= ask.high
        assert both.low == bid.low
        assert both.high == ask.high
        assert bid.low <= both.open <= bid.high
        assert ask.low <= both.close <= ask.high


def test_adjusted_last_scales_trades_down() -> None:
    """ADJUSTED_LAST closes are the TRADES closes times a factor just below 1."""
    start = dt.datetime(2024, 2, 5, tzinfo=UTC)
    end = start + dt.timedelta(days=60)
    trades = generate(STOCK, "TRADES", "1 day", True, start, end)
    adjusted = generate(STOCK, "ADJUSTED_LAST", "1 day", True, start, end)
    assert len(trades) == len(adjusted) > 30
    for t, a in zip(trades, adjusted, strict=True):
        assert a.close <= t.close
        assert a.close == pytest.approx(t.close * 0.98, abs=STOCK.min_tick)
        assert a.volume == t.volume


def test_prices_stay_near_base_price_over_years() -> None:
    """Twenty years of daily bars stay within a realistic band around base_price."""
    bars = generate(
        STOCK,
        "TRADES",
        "1 day",
        True,
        dt.datetime(2005, 1, 1, tzinfo=UTC),
        dt.datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert bars[0].start == head_timestamp(STOCK, "TRADES", True)
    closes = [x.close for x in bars]
    assert 0.5 * STOCK.base_price < min(closes) < max(closes) < 2 * STOCK.base_price
    moves = [abs(math.log(b / a)) for a, b in itertools.pairwise(closes)]
    assert 0.002 < sum(moves) / len(moves) < 0.05


def test_volatility_levels_are_in_range() -> None:
    """Historical and implied volatility bars are levels between 0.15 and 0.6, not prices."""
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    end = dt.datetime(2024, 12, 31, tzinfo=UTC)
    for what in ("HISTORICAL_VOLATILITY", "OPTION_IMPLIED_VOLATILITY"):
        bars = generate(STOCK, what, "1 day", True, start, end)
        assert bars
        assert all(x.low > 0.12 and x.high < 0.63 for x in bars)
        assert price_tick(STOCK, what) == pytest.approx(1e-6)
    assert price_tick(STOCK, "TRADES") == STOCK.min_tick


# --------------------------------------------------------------------------------------
# placement


@settings(max_examples=60, deadline=None)
@given(requests())
def test_intraday_bars_lie_inside_sessions(
    request_: tuple[SimContract, str, str, bool, dt.datetime, dt.datetime],
) -> None:
    """Each intraday bar lies inside the session it is dated by, which exists that day."""
    contract, what, bar_size, use_rth, start, end = request_
    if not is_intraday(bar_size):
        return
    template = contract.liquid if use_rth else contract.trading
    for bar in generate(contract, what, bar_size, use_rth, start, end):
        session = template.session_on(bar.session_date, contract.time_zone_id, contract.calendar)
        assert session is not None
        assert session.start <= bar.start < bar.end <= session.end
        assert bar.end - bar.start <= dt.timedelta(seconds=BAR_SIZES[bar_size])
        assert bar.start >= contract.head_timestamp
        if contract.expired_on is not None:
            assert bar.session_date <= contract.expired_on


def local_times(bars: list[SimBar], tz: str) -> list[str]:
    """Bar starts as HH:MM in ``tz``."""
    return [f"{x.start.astimezone(ZoneInfo(tz)):%H:%M}" for x in bars]


def test_hourly_rth_bars_follow_ibs_grid() -> None:
    """Hourly RTH stock bars start 09:30, 10:00, 11:00 … 15:00 and the last ends at 16:00."""
    day = dt.datetime(2024, 3, 5, tzinfo=UTC)
    bars = generate(STOCK, "TRADES", "1 hour", True, day, day + dt.timedelta(days=1))
    assert local_times(bars, "US/Eastern") == [
        "09:30",
        "10:00",
        "11:00",
        "12:00",
        "13:00",
        "14:00",
        "15:00",
    ]
    assert bars[0].end == dt.datetime(2024, 3, 5, 15, 0, tzinfo=UTC)
    assert bars[-1].end == dt.datetime(2024, 3, 5, 21, 0, tzinfo=UTC)


def test_grid_counts_from_local_midnight_for_overnight_sessions() -> None:
    """8-hour bars of a 17:00-16:00 future start 17:00, 00:00, 08:00 and end at the close."""
    start = dt.datetime(2024, 3, 5, 22, 30, tzinfo=UTC)
    bars = generate(FUTURE, "TRADES", "8 hours", False, start, start + dt.timedelta(days=1))
    assert local_times(bars, "US/Central") == ["17:00", "00:00", "08:00"]
    assert bars[-1].end == dt.datetime(2024, 3, 6, 22, 0, tzinfo=UTC)  # 16:00 CST
    assert {x.session_date for x in bars} == {dt.date(2024, 3, 6)}


def test_extended_hours_and_weekends() -> None:
    """use_rth=False adds 04:00-20:00 bars; weekends have no bars at all."""
    friday = dt.datetime(2024, 3, 8, 5, tzinfo=UTC)  # midnight in New York
    week_end = friday + dt.timedelta(days=3)
    full = generate(STOCK, "TRADES", "30 mins", False, friday, week_end)
    rth = generate(STOCK, "TRADES", "30 mins", True, friday, week_end)
    assert local_times(full, "US/Eastern")[0] == "04:00"
    assert full[-1].end.astimezone(ZoneInfo("US/Eastern")).hour == 20
    assert len(full) == 32
    assert len(rth) == 13
    assert {x.session_date for x in full} == {dt.date(2024, 3, 8)}
    saturday = dt.datetime(2024, 3, 9, 5, tzinfo=UTC)
    assert generate(STOCK, "TRADES", "1 min", False, saturday, saturday + dt.timedelta(1)) == []


def test_daily_bars_one_per_session_dated_by_close() -> None:
    """Daily bars: one per session, starting at its open, dated by the day it closes."""
    start = dt.datetime(2024, 3, 1, tzinfo=UTC)
    end = dt.datetime(2024, 4, 1, tzinfo=UTC)
    for contract in (STOCK, FUTURE, FX):
        for use_rth in (False, True):
            bars = generate(contract, "MIDPOINT", "1 day", use_rth, start, end)
            expected = [
                s for s in sessions(contract, use_rth, start, end) if start <= s.start < end
            ]
            assert [(x.start, x.end, x.session_date) for x in bars] == [
                (s.start, s.end, s.date) for s in expected
            ]
    overnight = generate(FUTURE, "TRADES", "1 day", False, start, end)
    first = overnight[0]
    assert first.start.astimezone(ZoneInfo("US/Central")).date() < first.session_date


def test_weekly_and_monthly_bars_dated_by_last_session() -> None:
    """Weekly bars are dated by the week's last session, monthly by the month's last one,
    exchange holidays skipped (Good Friday 2024 makes a week and March end on Thursday)."""
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    end = dt.datetime(2024, 7, 1, tzinfo=UTC)
    weekly = generate(STOCK, "TRADES", "1W", True, start, end)
    assert weekly == generate(STOCK, "TRADES", "1 week", True, start, end)
    assert len(weekly) == 26
    thursdays = [x.session_date for x in weekly if x.session_date.weekday() != 4]
    assert thursdays == [dt.date(2024, 3, 28)]
    first_days = [x.start.astimezone(ZoneInfo("US/Eastern")).date() for x in weekly]
    holiday_mondays = {dt.date(2024, 1, 1), dt.date(2024, 1, 15), dt.date(2024, 2, 19)}
    holiday_mondays.add(dt.date(2024, 5, 27))
    for first in first_days:
        monday = first - dt.timedelta(days=first.weekday())
        assert first == (monday + dt.timedelta(days=1) if monday in holiday_mondays else monday)
    monthly = generate(STOCK, "TRADES", "1M", True, start, end)
    assert [x.session_date for x in monthly] == [
        dt.date(2024, 1, 31),
        dt.date(2024, 2, 29),
        dt.date(2024, 3, 28),
        dt.date(2024, 4, 30),
        dt.date(2024, 5, 31),
        dt.date(2024, 6, 28),
    ]
    assert monthly[0].start == dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    mid_month = generate(STOCK, "TRADES", "1M", True, dt.datetime(2024, 1, 15, tzinfo=UTC), end)
    assert mid_month == monthly[1:]


def aggregate(days: list[SimBar]) -> tuple[object, ...]:
    """The weekly/monthly bar fields the daily bars ``days`` add up to."""
    volume = sum(d.volume for d in days) if days[0].volume >= 0 else -1
    return (
        days[0].start,
        days[-1].end,
        days[-1].session_date,
        days[0].open,
        max(d.high for d in days),
        min(d.low for d in days),
        days[-1].close,
        volume,
        sum(d.count for d in days) if volume >= 0 else -1,
    )


def fields(bar: SimBar) -> tuple[object, ...]:
    """A bar's fields except the WAP, comparable with :func:`aggregate`."""
    return (
        bar.start,
        bar.end,
        bar.session_date,
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.volume,
        bar.count,
    )


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.symbol)
@pytest.mark.parametrize("what", ["TRADES", "ADJUSTED_LAST", "BID_ASK", "MIDPOINT", "BID"])
@pytest.mark.parametrize("use_rth", [False, True])
def test_weeks_and_months_are_the_aggregate_of_their_days(
    contract: SimContract, what: str, use_rth: bool
) -> None:
    """A weekly or monthly bar is exactly its daily bars added up: first open, highest high,
    lowest low, last close, summed volume and count, volume-weighted WAP."""
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    end = dt.datetime(2024, 7, 1, tzinfo=UTC)
    for bar_size, key in (
        ("1 week", lambda d: d.isocalendar()[:2]),
        ("1 month", lambda d: (d.year, d.month)),
    ):
        periods = generate(contract, what, bar_size, use_rth, start, end)
        assert periods
        for period in periods:
            days = generate(contract, what, "1 day", use_rth, period.start, period.end)
            assert {key(d.session_date) for d in days} == {key(period.session_date)}
            assert fields(period) == aggregate(days)
            if period.volume >= 0:
                weighted = sum(d.wap * d.volume for d in days) / period.volume
                assert period.wap == pytest.approx(weighted, abs=contract.min_tick / 20)
                assert period.low < period.wap < period.high
            else:
                assert period.wap == -1.0


def test_week_of_labor_day_2023_is_its_days() -> None:
    """The week of 4 September 2023 has no Monday bar, and its weekly high is its highest
    daily high (the simulator once served 648.63 over days that reached 641.92)."""
    start = dt.datetime(2023, 9, 4, tzinfo=UTC)
    end = dt.datetime(2023, 9, 9, tzinfo=UTC)
    days = generate(STOCK, "TRADES", "1 day", False, start, end)
    assert [d.session_date.day for d in days] == [5, 6, 7, 8]
    (week,) = generate(STOCK, "TRADES", "1 week", False, start, end)
    assert week.high == max(d.high for d in days)
    assert week.start == days[0].start


def test_overlap_includes_the_bar_holding_the_start_and_cuts_at_the_end() -> None:
    """With overlap the bar containing the start is whole and included, and the bar
    containing the end is cut there; without it neither is."""
    start = dt.datetime(2024, 3, 5, 14, 47, 22, tzinfo=UTC)
    end = dt.datetime(2024, 3, 5, 14, 50, 30, tzinfo=UTC)
    real = generate(STOCK, "TRADES", "1 min", False, start, end, overlap=True)
    old = generate(STOCK, "TRADES", "1 min", False, start, end)
    minute = dt.timedelta(minutes=1)
    assert [b.start.minute for b in real] == [47, 48, 49, 50]
    assert real[0].end - real[0].start == minute
    assert real[-1].end == end
    assert [b.start.minute for b in old] == [48, 49, 50]
    assert old[-1].end - old[-1].start == minute
    assert real[1:3] == old[:2]


def test_overlap_weekly_bar_is_cut_at_the_end_and_dated_by_its_last_day() -> None:
    """With overlap the week holding the end holds only the sessions before the end, dated
    by the last of them; without it the week is whole and dated by its Friday."""
    start = dt.datetime(2024, 2, 26, tzinfo=UTC)
    end = dt.datetime(2024, 3, 6, 17, 0, tzinfo=UTC)  # Wednesday, 12:00 in New York
    real = generate(STOCK, "TRADES", "1 week", False, start, end, overlap=True)
    old = generate(STOCK, "TRADES", "1 week", False, start, end)
    assert [b.session_date for b in real] == [dt.date(2024, 3, 1), dt.date(2024, 3, 6)]
    assert real[-1].end == end
    days = generate(STOCK, "TRADES", "1 day", False, real[-1].start, end, overlap=True)
    assert fields(real[-1]) == aggregate(days)
    assert [b.session_date for b in old] == [dt.date(2024, 3, 1), dt.date(2024, 3, 8)]
    assert real[0] == old[0]


def test_overlap_daily_bar_in_progress_is_cut_at_the_end() -> None:
    """A daily bar whose session holds the end is cut there under overlap, like "now" cuts
    it under both."""
    start = dt.datetime(2024, 3, 4, tzinfo=UTC)
    end = dt.datetime(2024, 3, 6, 17, 0, tzinfo=UTC)
    real = generate(STOCK, "TRADES", "1 day", True, start, end, overlap=True)
    assert real[-1].session_date == dt.date(2024, 3, 6)
    assert real[-1].end == end
    assert real[-1] == generate(STOCK, "TRADES", "1 day", True, start, end, now=end)[-1]


@settings(max_examples=60, deadline=None)
@given(requests(), st.floats(0.05, 0.95), st.floats(0.05, 0.95))
def test_overlapping_real_windows_agree_on_whole_bars(
    request_: tuple[SimContract, str, str, bool, dt.datetime, dt.datetime], a: float, b: float
) -> None:
    """Under overlap, a bar that ends before both windows' ends is the same in both, and
    every bar overlaps its window."""
    contract, what, bar_size, use_rth, start, end = request_
    span = end - start
    first_end = (start + span * max(a, b)).replace(microsecond=0)  # TWS's ends are whole
    second_start = (start + span * min(a, b)).replace(microsecond=0)
    first = generate(contract, what, bar_size, use_rth, start, first_end, overlap=True)
    whole = generate(contract, what, bar_size, use_rth, start, end, overlap=True)
    later = generate(contract, what, bar_size, use_rth, second_start, end, overlap=True)
    for bars, lo, hi in (
        (first, start, first_end),
        (whole, start, end),
        (later, second_start, end),
    ):
        assert all(x.start < hi and x.end > lo and x.end <= hi for x in bars)
    done = {x.start: x for x in whole if x.end < first_end}
    assert [x for x in first if x.start in done] == [
        done[x.start] for x in first if x.start in done
    ]
    assert [x for x in later if x.start in done] == [
        done[x.start] for x in later if x.start in done
    ]


def test_no_bars_on_holidays_and_early_closes_end_early() -> None:
    """Holidays of each contract's calendar have no bar; NYSE early closes end at 13:00 in
    regular hours and 17:00 in extended hours."""
    cases = [
        (STOCK, dt.date(2023, 9, 4)),  # Labor Day
        (STOCK, dt.date(2024, 3, 29)),  # Good Friday
        (STOCK, dt.date(2025, 1, 9)),  # National Day of Mourning
        (FUTURE, dt.date(2024, 7, 4)),  # Independence Day, the session opening on 3 July
        (FX, dt.date(2024, 12, 25)),
        (BUND, dt.date(2024, 4, 1)),  # Easter Monday
    ]
    for contract, holiday in cases:
        around = dt.datetime.combine(holiday, dt.time(), tzinfo=UTC)
        days = generate(
            contract,
            "MIDPOINT",
            "1 day",
            False,
            around - dt.timedelta(days=3),
            around + dt.timedelta(days=3),
        )
        dates = [d.session_date for d in days]
        assert holiday not in dates
        assert holiday - dt.timedelta(days=1) in dates or holiday.weekday() == 0
    friday = dt.datetime(2023, 11, 24, tzinfo=UTC)  # the day after Thanksgiving
    rth = generate(STOCK, "TRADES", "1 hour", True, friday, friday + dt.timedelta(days=1))
    assert rth[-1].end.astimezone(ZoneInfo("US/Eastern")).time() == dt.time(13, 0)
    full = generate(STOCK, "TRADES", "1 hour", False, friday, friday + dt.timedelta(days=1))
    assert full[-1].end.astimezone(ZoneInfo("US/Eastern")).time() == dt.time(17, 0)
    assert head_timestamp(
        attrs.evolve(STOCK, head_timestamp=dt.datetime(2024, 7, 4, tzinfo=UTC)), "TRADES", True
    ) == dt.datetime(2024, 7, 5, 13, 30, tzinfo=UTC)


def test_stoqey_weekly_and_monthly_expectations() -> None:
    """SPY over real TWS (@stoqey/ib's live tests, useRTH 0): 1 week bars over 1 M ending
    2023-09-04 20:00 UTC are 5, the last dated 20230901; 1 month bars over 1 Y are 13, the
    last dated 20230901."""
    end = dt.datetime(2023, 9, 4, 20, 0, tzinfo=UTC)
    weekly = generate(
        STOCK, "TRADES", "1 week", False, dt.datetime(2023, 8, 4, 20, tzinfo=UTC), end, overlap=True
    )
    assert len(weekly) == 5
    assert weekly[-1].session_date == dt.date(2023, 9, 1)
    monthly = generate(
        STOCK,
        "TRADES",
        "1 month",
        False,
        dt.datetime(2022, 9, 4, 20, tzinfo=UTC),
        end,
        overlap=True,
    )
    assert len(monthly) == 13
    assert monthly[-1].session_date == dt.date(2023, 9, 1)
    assert monthly[0].session_date == dt.date(2022, 9, 30)
    assert weekly[-1].high == max(weekly[-1].high, monthly[-1].high)
    assert (weekly[-1].close, weekly[-1].high) == (monthly[-1].close, monthly[-1].high)


def test_head_timestamp_and_expiry_bound_the_data() -> None:
    """No bars before the first session at the head timestamp, none after the expiry."""
    head = head_timestamp(FUTURE, "TRADES", False)
    assert head >= FUTURE.head_timestamp
    assert head.astimezone(ZoneInfo("US/Central")).strftime("%H:%M") == "17:00"
    head_rth = head_timestamp(FUTURE, "TRADES", True)
    assert head_rth.astimezone(ZoneInfo("US/Central")).strftime("%H:%M") == "08:30"
    bars = generate(
        FUTURE,
        "TRADES",
        "1 day",
        False,
        dt.datetime(2023, 1, 1, tzinfo=UTC),
        dt.datetime(2025, 6, 1, tzinfo=UTC),
    )
    assert bars[0].start == head
    assert bars[-1].session_date == dt.date(2024, 12, 20)
    late = dt.datetime(2024, 12, 21, tzinfo=UTC)
    assert generate(FUTURE, "TRADES", "1 min", False, late, late + dt.timedelta(days=5)) == []
    assert head_timestamp(STOCK, "MIDPOINT", True) == dt.datetime(2010, 6, 29, 13, 30, tzinfo=UTC)


def test_a_hundred_thousand_minute_bars() -> None:
    """A 100,000-bar request of 1-min bars is generated in full, in order."""
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    bars = generate(FX, "MIDPOINT", "1 min", False, start, start + dt.timedelta(days=100))
    assert len(bars) >= 100_000
    assert all(a.start < b.start for a, b in itertools.pairwise(bars))


# --------------------------------------------------------------------------------------
# formatting


SAMPLE = generate(
    STOCK,
    "TRADES",
    "1 min",
    True,
    dt.datetime(2024, 7, 1, 13, 30, tzinfo=UTC),
    dt.datetime(2024, 7, 1, 13, 35, tzinfo=UTC),
)[0]


def test_intraday_date_forms() -> None:
    """Intraday dates: zone form >= 174, two-space login-zone form < 174, epoch for 2."""
    new = format_bar_time(SAMPLE, "1 min", 1, 178, "US/Eastern", "Europe/Berlin")
    assert new == "20240701 09:30:00 US/Eastern"
    day, clock, tz = new.split(" ")
    parsed = dt.datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S").replace(tzinfo=ZoneInfo(tz))
    assert parsed == SAMPLE.start
    old = format_bar_time(SAMPLE, "1 min", 1, 157, "US/Eastern", "Europe/Berlin")
    assert old == "20240701  15:30:00"
    assert format_bar_time(SAMPLE, "1 min", 1, 173, "US/Eastern", "UTC") == "20240701  13:30:00"
    epoch = format_bar_time(SAMPLE, "1 min", 2, 178, "US/Eastern", "Europe/Berlin")
    assert int(epoch) == SAMPLE.start.timestamp()


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(
        min_value=dt.datetime(1990, 1, 1),
        max_value=dt.datetime(2040, 1, 1),
        timezones=st.just(UTC),
    ).map(lambda t: t.replace(microsecond=0)),
    st.sampled_from(["US/Eastern", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney", "UTC"]),
    st.sampled_from([157, 163, 173, 174, 176, 178]),
)
def test_intraday_dates_round_trip(t: dt.datetime, tz: str, server_version: int) -> None:
    """Every intraday date text parses back to the bar's start in the zone it names or implies."""
    bar = SimBar(t, t + dt.timedelta(minutes=1), t.date(), 1.0, 1.0, 1.0, 1.0, -1, -1.0, -1)
    text = format_bar_time(bar, "1 min", 1, server_version, tz, "Asia/Tokyo")
    if server_version >= 174:
        assert re.fullmatch(r"\d{8} \d{2}:\d{2}:\d{2} \S+", text)
        day, clock, zone_name = text.split(" ")
        assert zone_name == tz
    else:
        assert re.fullmatch(r"\d{8}  \d{2}:\d{2}:\d{2}", text)
        day, clock = text.split("  ")
        zone_name = "Asia/Tokyo"
    local = t.astimezone(ZoneInfo(zone_name))
    assert (day, clock) == (f"{local:%Y%m%d}", f"{local:%H:%M:%S}")
    assert format_window_time(t, server_version, tz, "Asia/Tokyo") == text
    assert format_bar_time(bar, "1 secs", 2, server_version, tz, "UTC") == str(int(t.timestamp()))


@pytest.mark.parametrize("bar_size", ["1 day", "1W", "1 week", "1M", "1 month"])
@pytest.mark.parametrize(("format_date", "server_version"), [(1, 157), (1, 178), (2, 178)])
def test_daily_and_longer_dates_are_yyyymmdd(
    bar_size: str, format_date: int, server_version: int
) -> None:
    """Daily, weekly and monthly bars are dated yyyymmdd by session date for every format."""
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    bar = generate(FUTURE, "TRADES", bar_size, False, start, start + dt.timedelta(days=40))[0]
    text = format_bar_time(bar, bar_size, format_date, server_version, "US/Central", "UTC")
    assert text == f"{bar.session_date:%Y%m%d}"


def test_formatter_rejects_bad_format_date() -> None:
    """Only formatDate 1 and 2 can be formatted."""
    with pytest.raises(ValueError, match="format_date"):
        bar_time_formatter("1 min", 3, 178, "US/Eastern", "UTC")
    with pytest.raises(ValueError, match="format_date"):
        format_head_timestamp(SAMPLE.start, 0)


def test_window_and_head_timestamp_forms() -> None:
    """Window times follow the intraday rule; head timestamps are epoch or dashed UTC."""
    t = dt.datetime(2024, 1, 2, 21, 0, 5, tzinfo=UTC)
    assert format_window_time(t, 178, "US/Eastern", "UTC") == "20240102 16:00:05 US/Eastern"
    assert format_window_time(t, 176, "Europe/Berlin", "UTC") == "20240102 22:00:05 Europe/Berlin"
    assert format_window_time(t, 157, "US/Eastern", "Europe/London") == "20240102  21:00:05"
    assert format_head_timestamp(t, 1) == "20240102-21:00:05"
    assert format_head_timestamp(t, 2) == str(int(t.timestamp()))


@pytest.mark.parametrize(
    ("value", "tick", "text"),
    [
        (0.1 + 0.2, 0.01, "0.3"),
        (100.0, 0.01, "100"),
        (187.5, 0.01, "187.5"),
        (1.08345, 0.00005, "1.08345"),
        (-1.0, 0.01, "-1"),
        (-1.0, 1e-6, "-1"),
        (131.515625, 1 / 64, "131.515625"),
        (5000.25, 0.25, "5000.25"),
        (0.000123, 1e-6, "0.000123"),
        (1e-05, 1e-05, "0.00001"),
        (123456789012345678.0, 0.01, "123456789012345680"),
        (0.0, 0.01, "0"),
        (-0.0, 0.01, "0"),
        (0.27000000000000002, 0.03, "0.27"),
        (186.356051, 1e-5, "186.35605"),
    ],
)
def test_format_price(value: float, tick: float, text: str) -> None:
    """Prices print as short decimals with no exponent and no float noise."""
    assert format_price(value, tick) == text


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 10**9),
    st.sampled_from([0.01, 0.25, 0.00005, 1 / 64, 0.005, 0.03, 1e-6, 1.0, 0.1]),
)
def test_format_price_round_trips_tick_multiples(n: int, tick: float) -> None:
    """Any whole number of ticks prints without exponent and parses back to the same value."""
    value = n * tick
    text = format_price(value, tick)
    assert text
    assert "e" not in text.lower()
    assert float(text) == pytest.approx(value, rel=1e-12, abs=tick / 1000)
    if "." in text:
        assert not text.endswith("0")


def test_bar_fields_and_volume_text() -> None:
    """bar_fields gives eight non-empty fields with integer volume and count text."""
    fields = bar_fields(SAMPLE, "20240701 09:30:00 US/Eastern", STOCK.min_tick)
    assert len(fields) == 8
    assert all(fields)
    assert fields[5] == str(SAMPLE.volume)
    assert fields[5].lstrip("-").isdigit()
    assert fields[7] == str(SAMPLE.count)
    assert float(fields[6]) == pytest.approx(SAMPLE.wap)
    assert format_volume(12345) == "12345"
    assert format_volume(-1) == "-1"
    quote = generate(
        STOCK, "BID", "1 min", True, SAMPLE.start, SAMPLE.start + dt.timedelta(minutes=1)
    )[0]
    assert bar_fields(quote, "d", STOCK.min_tick)[5:] == ["-1", "-1", "-1"]


# ------------------------------------------------------------ wire styles (real variants)


@pytest.mark.parametrize(
    ("x", "tick", "style", "text"),
    [
        (254.2, 0.01, "tick", "254.20"),  # a live capture at server version 200
        (182.94, 0.01, "four", "182.9400"),  # captures of 2023 and 2024
        (16.01, 0.01, "four", "16.0100"),
        (2603.0, 0.25, "tick", "2603.00"),
        (254.2, 0.01, "short", "254.2"),
        (1.0466, 0.00005, "tick", "1.04660"),
        (-0.0, 0.01, "tick", "0.00"),
        (-1.0, 0.01, "tick", "-1.00"),
    ],
)
def test_price_formats(x: float, tick: float, style: str, text: str) -> None:
    """Prices in each style real TWS has been seen to send: padded to the tick, to four
    decimals, or short."""
    assert format_price(x, tick, style) == text


def test_volume_units_follow_the_server_version() -> None:
    """US stocks go out in lots below 175 (whole below 163, two decimals from 163), in
    shares from 175; other instruments, and the 'shares' option, always in shares."""
    assert volume_unit("auto", "STK", "USD", 157) == "lots"
    assert volume_unit("auto", "STK", "USD", 165) == "decimal_lots"
    assert volume_unit("auto", "STK", "USD", 175) == "shares"
    assert volume_unit("auto", "FUT", "USD", 157) == "shares"
    assert volume_unit("auto", "STK", "EUR", 157) == "shares"
    assert volume_unit("shares", "STK", "USD", 157) == "shares"
    assert format_volume(94883722, "decimal_lots") == "948837.22"  # the 165 capture's TSLA
    assert format_volume(94883722, "lots") == "948837"
    assert format_volume(-1, "lots") == "-1"


@pytest.mark.parametrize(
    ("style", "sv", "text"),
    [
        ("instrument", 173, "20250620 08:30 US/Central"),  # rust-ibapi's ES capture
        ("instrument", 178, "20250620 08:30 US/Central"),
        ("utc", 176, "20250620-13:30:00"),  # the form of pyfutures' capture
        ("operator", 178, "20250620 15:30:00 Europe/Zurich"),  # the form of ib_async #128
        ("utc", 173, "20250620 08:30 US/Central"),  # the setting is for 174+ clients
    ],
)
def test_last_trade_time_follows_the_api_time_zone(style: str, sv: int, text: str) -> None:
    """A future's last trade time is written in the instrument's zone, the operator's or
    UTC, as TWS's setting says, from server version 174."""
    assert (
        format_last_trade("20250620", "08:30", sv, "US/Central", "Europe/Zurich", zone_style=style)
        == text
    )


def test_window_and_bar_times_follow_the_api_time_zone() -> None:
    """From 174 a window and intraday bar dates are in the instrument's zone, the login
    zone or dashed UTC; below 174 always the two-space login-zone form."""
    t = dt.datetime(2024, 1, 2, 16, 0, 5, tzinfo=UTC)
    assert format_window_time(t, 176, "US/Eastern", "Europe/London", zone_style="utc") == (
        "20240102-16:00:05"
    )
    assert format_window_time(t, 176, "US/Eastern", "Europe/London", zone_style="operator") == (
        "20240102 16:00:05 Europe/London"
    )
    assert format_window_time(t, 157, "US/Eastern", "Europe/London", zone_style="utc") == (
        "20240102  16:00:05"
    )
    assert (
        format_bar_time(SAMPLE, "1 min", 1, 178, "US/Eastern", "UTC", zone_style="utc")
        == f"{SAMPLE.start:%Y%m%d-%H:%M:%S}"
    )
