"""reqHistoricalData / reqHeadTimestamp validation and window planning, with TWS's codes."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ibdata.sim._bars import generate, head_timestamp
from ibdata.sim._history import (
    KNOWN_WHAT_TO_SHOW,
    WINDOW_SEMANTICS,
    BarsPlan,
    no_data_error,
    parse_end_date_time,
    plan_bars,
    plan_head_timestamp,
)
from ibdata.sim._model import SessionTemplate, SimContract, SimError

UTC = dt.timezone.utc
NY = ZoneInfo("US/Eastern")
NOW = dt.datetime(2024, 7, 10, 18, 0, tzinfo=UTC)  # Wednesday 14:00 in New York
LOGIN = "America/Chicago"

STOCK = SimContract(
    con_id=265598,
    symbol="AAPL",
    sec_type="STK",
    exchange="SMART",
    primary_exchange="NASDAQ",
    currency="USD",
    local_symbol="AAPL",
    time_zone_id="US/Eastern",
    trading=SessionTemplate("0400", "2000"),
    liquid=SessionTemplate("0930", "1600"),
    calendar="NYSE",
    head_timestamp=dt.datetime(1980, 12, 12, 14, 30, tzinfo=UTC),
)
FX = SimContract(
    con_id=12087792,
    symbol="EUR",
    sec_type="CASH",
    exchange="IDEALPRO",
    currency="USD",
    local_symbol="EUR.USD",
    trading=SessionTemplate("1715", "1700"),
    liquid=SessionTemplate("1715", "1700"),
    min_tick=0.00005,
    base_price=1.08,
    what_to_show=frozenset({"MIDPOINT", "BID", "ASK", "BID_ASK"}),
)
FUTURE = SimContract(
    con_id=637533641,
    symbol="ES",
    sec_type="FUT",
    exchange="CME",
    currency="USD",
    local_symbol="ESZ4",
    last_trade_date="20241220",
    time_zone_id="US/Central",
    trading=SessionTemplate("1700", "1600"),
    liquid=SessionTemplate("0830", "1500"),
    calendar="CME",
    min_tick=0.25,
    base_price=5000.0,
    head_timestamp=dt.datetime(2024, 7, 3, tzinfo=UTC),
)
CONTFUT = SimContract(
    con_id=11004968,
    symbol="ES",
    sec_type="CONTFUT",
    exchange="CME",
    currency="USD",
    local_symbol="ESU4",
    time_zone_id="US/Central",
    trading=SessionTemplate("1700", "1600"),
    liquid=SessionTemplate("0830", "1500"),
    min_tick=0.25,
)
CRYPTO = SimContract(
    con_id=479624278,
    symbol="BTC",
    sec_type="CRYPTO",
    exchange="PAXOS",
    currency="USD",
    local_symbol="BTC.USD",
    trading=SessionTemplate("0000", "0000", days=(0, 1, 2, 3, 4, 5, 6)),
    liquid=SessionTemplate("0000", "0000", days=(0, 1, 2, 3, 4, 5, 6)),
    what_to_show=frozenset({"AGGTRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"}),
)

PREFIX = "Error validating request.-'{}' : cause - "
HMDS = "Historical Market Data Service error message:"
LEGAL = (
    "Historical data bar size setting is invalid. Legal ones are: 1 secs, 5 secs, 10 secs, "
    "15 secs, 30 secs, 1 min, 2 mins, 3 mins, 5 mins, 10 mins, 15 mins, 20 mins, 30 mins, "
    "1 hour, 2 hours, 3 hours, 4 hours, 8 hours, 1 day, 1W, 1M"
)
TEXT_10314 = (
    "End Date/Time: The date, time, or time-zone entered is invalid. The correct format is "
    "yyyymmdd hh:mm:ss xx/xxxx where yyyymmdd and xx/xxxx are optional. E.g.: 20031126 "
    "15:59:00 US/Eastern  Note that there is a space between the date and time, and between "
    "the time and time-zone.  If no date is specified, current date is assumed. If no "
    "time-zone is specified, local time-zone is assumed(deprecated).  You can also provide "
    "yyyymmddd-hh:mm:ss time is in UTC. Note that there is a dash between the date and time "
    "in UTC notation."
)
TEXT_2174 = (
    "Warning: You submitted request with date-time attributes without explicit time zone. "
    "Please switch to use yyyymmdd-hh:mm:ss in UTC or use instrument time zone, like "
    "US/Eastern. Implied time zone functionality will be removed in the next API release"
)
TIME_LENGTH = f"{HMDS}Time length exceed max."


def plan(contract: SimContract = STOCK, **overrides: Any) -> BarsPlan:
    """plan_bars with a valid default request, overridden by keyword."""
    fields: dict[str, Any] = {
        "end_text": "",
        "bar_size": "1 hour",
        "duration": "1 D",
        "use_rth": True,
        "what_to_show": "TRADES",
        "format_date": 1,
        "keep_up_to_date": False,
        "now": NOW,
        "login_tz": LOGIN,
    }
    fields.update(overrides)
    return plan_bars(contract, **fields)


def refused(contract: SimContract = STOCK, **overrides: Any) -> tuple[int, str]:
    """The (code, text) plan_bars raises for the request."""
    with pytest.raises(SimError) as info:
        plan(contract, **overrides)
    return info.value.code, info.value.text


def invalid(cause: str) -> tuple[int, str]:
    """A 321 answer with ``cause``; the two-letter tag is not compared."""
    return 321, cause


def strip_tag(answer: tuple[int, str]) -> tuple[int, str]:
    """Drop the 321 prefix (whose tag varies between TWS builds) and keep the cause."""
    code, text = answer
    if code == 321:
        assert text.startswith("Error validating request.-'")
        assert "' : cause - " in text
        return code, text.split("' : cause - ", 1)[1]
    return code, text


def ny(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    """A New York wall time as an aware UTC datetime."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=NY).astimezone(UTC)


# --------------------------------------------------------------------------------------
# bar size, duration, formatDate, whatToShow


@pytest.mark.parametrize("bar_size", ["1 sec", "3 months", "1 year", "1 mins", "", "60 S", "1D"])
def test_illegal_bar_size(bar_size: str) -> None:
    """An illegal bar size gets 321 with TWS's full list of legal sizes."""
    code, text = refused(bar_size=bar_size)
    assert code == 321
    assert text == PREFIX.format("bK") + LEGAL


@pytest.mark.parametrize(
    ("bar_size", "canonical"),
    [("1W", "1 week"), ("1 week", "1 week"), ("1M", "1 month"), ("1 month", "1 month")],
)
def test_week_and_month_spellings(bar_size: str, canonical: str) -> None:
    """Both spellings of week and month bars are accepted and planned in the long form."""
    assert plan(bar_size=bar_size, duration="1 Y").bar_size == canonical


@pytest.mark.parametrize(
    "duration", ["1", "D", "0 D", "-1 D", "1  D", "1 d", "1.5 D", "1D", " 1 D", "1 H", "abc", ""]
)
def test_malformed_duration(duration: str) -> None:
    """A duration that is not '<positive int> <S|D|W|M|Y>' gets 321 'duration is invalid'."""
    assert strip_tag(refused(duration=duration)) == invalid(
        "Historical data requested duration is invalid."
    )


@pytest.mark.parametrize(
    ("duration", "cause"),
    [
        (
            "366 D",
            "Historical data requests for durations longer than 365 days must be made in years.",
        ),
        (
            "53 W",
            "Historical data requests for durations longer than 52 weeks must be made in years.",
        ),
        (
            "13 M",
            "Historical data requests for durations longer than 12 months must be made in years.",
        ),
    ],
)
def test_unit_overflow_must_be_years(duration: str, cause: str) -> None:
    """More than 365 D, 52 W or 12 M gets 321 asking for years."""
    assert strip_tag(refused(duration=duration, bar_size="1 day")) == invalid(cause)


def test_unit_maxima_are_accepted() -> None:
    """365 D, 52 W, 12 M, 68 Y and 86400 S are the largest durations accepted."""
    for duration in ("365 D", "52 W", "12 M", "68 Y"):
        assert plan(duration=duration, bar_size="1 day").duration == duration
    assert plan(duration="86400 S", bar_size="1 min").duration_count == 86_400


@pytest.mark.parametrize(("duration", "bar_size"), [("69 Y", "1 day"), ("86401 S", "1 min")])
def test_beyond_the_maxima_time_length_exceeds(duration: str, bar_size: str) -> None:
    """More than 68 Y or 86400 S gets 162 'Time length exceed max.'."""
    assert refused(duration=duration, bar_size=bar_size) == (162, TIME_LENGTH)


@pytest.mark.parametrize("format_date", [0, 3, -1, 7])
def test_bad_format_date(format_date: int) -> None:
    """formatDate other than 1 or 2 gets 321 naming the rejected selection."""
    assert strip_tag(refused(format_date=format_date)) == invalid(
        f"Date formatting selection of {format_date} rejected"
    )


def test_format_date_zero_text() -> None:
    """formatDate 0 gets exactly TWS's 'Date formatting selection of 0 rejected'."""
    code, text = refused(format_date=0)
    assert code == 321
    assert text.endswith(" : cause - Date formatting selection of 0 rejected")


@pytest.mark.parametrize("what", ["FOO", "trades", "", "MIDPOINTS"])
def test_unknown_what_to_show(what: str) -> None:
    """An unknown whatToShow gets 321 naming it."""
    assert strip_tag(refused(what_to_show=what)) == invalid(
        f"Historical data request for an invalid type: {what}"
    )
    assert what not in KNOWN_WHAT_TO_SHOW


def test_fx_trades_has_no_historical_data() -> None:
    """TRADES on a currency pair gets TWS's 162 '…EUR/CASH@IDEALPRO Last 0'."""
    assert refused(FX, what_to_show="TRADES") == (
        162,
        f"{HMDS}No historical market data for EUR/CASH@IDEALPRO Last 0",
    )


def test_type_not_offered_for_the_instrument() -> None:
    """A known type the instrument does not offer gets 162 naming the type."""
    assert refused(what_to_show="HISTORICAL_VOLATILITY") == (
        162,
        f"{HMDS}No historical market data for AAPL/STK@SMART Historical_Volatility 0",
    )
    assert refused(FX, what_to_show="ADJUSTED_LAST") == (
        162,
        f"{HMDS}No historical market data for EUR/CASH@IDEALPRO Adjusted_Last 0",
    )


def test_crypto_trades_asks_for_aggtrades() -> None:
    """TRADES on crypto gets 10299 pointing to AGGTRADES."""
    assert refused(CRYPTO, what_to_show="TRADES") == (
        10299,
        "Expected what to show is AGGTRADES, please use that instead of TRADES.",
    )


def test_schedule_needs_daily_bars() -> None:
    """SCHEDULE is planned for daily bars and refused with 10295 for others."""
    contract = SimContract(
        con_id=1,
        symbol="X",
        sec_type="STK",
        exchange="SMART",
        currency="USD",
        local_symbol="X",
        what_to_show=frozenset({"TRADES", "SCHEDULE"}),
    )
    assert plan(contract, what_to_show="SCHEDULE", bar_size="1 day").what_to_show == "SCHEDULE"
    assert refused(contract, what_to_show="SCHEDULE", bar_size="1 hour") == (
        10295,
        "Only daily resolution supported for Schedule requests",
    )


# --------------------------------------------------------------------------------------
# end date restrictions and keepUpToDate


def test_adjusted_last_needs_an_empty_end() -> None:
    """ADJUSTED_LAST with an end date gets 321; with an empty end it is planned."""
    assert strip_tag(
        refused(what_to_show="ADJUSTED_LAST", end_text="20240102-21:00:00")
    ) == invalid("End date not supported with adjusted last")
    assert plan(what_to_show="ADJUSTED_LAST").end == NOW


def test_keep_up_to_date_needs_an_empty_end() -> None:
    """keepUpToDate with an end date gets 321 'End date not supported with live updates'."""
    assert strip_tag(refused(keep_up_to_date=True, end_text="20240102-21:00:00")) == invalid(
        "End date not supported with live updates"
    )
    assert plan(keep_up_to_date=True).keep_up_to_date


@pytest.mark.parametrize("what", ["BID_ASK", "ADJUSTED_LAST"])
def test_keep_up_to_date_types(what: str) -> None:
    """keepUpToDate is refused with 321 for types other than TRADES/MIDPOINT/BID/ASK."""
    code, text = strip_tag(refused(keep_up_to_date=True, what_to_show=what))
    assert code == 321
    assert text.startswith(f"Live updates (keepUpToDate) are not supported for {what}")


def test_keep_up_to_date_bar_size() -> None:
    """keepUpToDate with 1-second bars is refused with 321; 5 secs is accepted."""
    assert strip_tag(refused(keep_up_to_date=True, bar_size="1 secs", duration="60 S")) == invalid(
        "Live updates (keepUpToDate) require a bar size of 5 secs or more"
    )
    assert plan(keep_up_to_date=True, bar_size="5 secs", duration="60 S").keep_up_to_date


def test_continuous_future_end_date() -> None:
    """CONTFUT named by symbol with an end date gets 10339; with an empty end it is planned."""
    assert refused(CONTFUT, end_text="20240102 16:00:00 US/Central") == (
        10339,
        "Setting end date/time for continuous future security type is not allowed.",
    )
    assert refused(CONTFUT, end_text="junk")[0] == 10339
    assert plan(CONTFUT).end == NOW


def test_continuous_future_by_con_id_takes_an_end_date() -> None:
    """A CONTFUT named by conId is served with an end date, as real IB Gateway did (capture
    pyf-session-bars-176: 5 D of daily bars ending 20240322-16:30:00)."""
    planned = plan(
        CONTFUT,
        end_text="20240322-16:30:00",
        duration="5 D",
        bar_size="1 day",
        use_rth=False,
        contract_by_con_id=True,
    )
    assert planned.end == dt.datetime(2024, 3, 22, 16, 30, tzinfo=UTC)
    assert planned.start == dt.datetime(2024, 3, 17, 16, 30, tzinfo=UTC)
    assert [b.session_date.day for b in planned.bars(CONTFUT)] == [18, 19, 20, 21, 22]
    assert refused(CONTFUT, end_text="junk", contract_by_con_id=True)[0] == 10314


# --------------------------------------------------------------------------------------
# step sizes


@pytest.mark.parametrize(
    ("bar_size", "longest"),
    [
        ("1 secs", 2000),
        ("5 secs", 3600),
        ("10 secs", 14_400),
        ("15 secs", 14_400),
        ("30 secs", 28_800),
    ],
)
def test_small_bars_follow_the_step_table(bar_size: str, longest: int) -> None:
    """Bars of 30 secs or less accept durations up to the step table and only in seconds."""
    assert plan(bar_size=bar_size, duration=f"{longest} S").duration_count == longest
    assert refused(bar_size=bar_size, duration=f"{longest + 1} S") == (162, TIME_LENGTH)
    for duration in ("1 D", "1 W", "1 M", "1 Y"):
        assert refused(bar_size=bar_size, duration=duration) == (162, TIME_LENGTH)


@pytest.mark.parametrize("duration", ["365 D", "52 W", "12 M", "1 Y", "2 Y", "86400 S"])
def test_minute_bars_are_not_held_to_the_step_table(duration: str) -> None:
    """1-min bars accept anything up to the unit maxima (large requests are just slow)."""
    assert plan(bar_size="1 min", duration=duration).duration == duration


def test_validation_order() -> None:
    """The bar size is checked before the duration, the duration before formatDate."""
    assert strip_tag(refused(bar_size="1 sec", duration="x", format_date=0))[1] == LEGAL
    assert "duration is invalid" in refused(duration="x", format_date=0)[1]
    assert "Date formatting" in refused(format_date=0, what_to_show="FOO")[1]
    assert refused(end_text="junk", what_to_show="HISTORICAL_VOLATILITY")[0] == 10314


# --------------------------------------------------------------------------------------
# endDateTime forms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20240102 16:00:00 US/Eastern", dt.datetime(2024, 1, 2, 21, 0, tzinfo=UTC)),
        ("20240702 16:00:00 US/Eastern", dt.datetime(2024, 7, 2, 20, 0, tzinfo=UTC)),
        ("20240102 16:00:00 America/New_York", dt.datetime(2024, 1, 2, 21, 0, tzinfo=UTC)),
        ("20240102 21:00:00 UTC", dt.datetime(2024, 1, 2, 21, 0, tzinfo=UTC)),
        ("20240102 21:00:00 GMT", dt.datetime(2024, 1, 2, 21, 0, tzinfo=UTC)),
        ("20240102 22:00:00 Europe/Berlin", dt.datetime(2024, 1, 2, 21, 0, tzinfo=UTC)),
        ("20240102-21:00:00", dt.datetime(2024, 1, 2, 21, 0, tzinfo=UTC)),
        ("20240229-23:59:59", dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_end_with_zone_or_utc(text: str, expected: dt.datetime) -> None:
    """Zoned and dashed-UTC end times parse to the instant they name, without warnings."""
    assert parse_end_date_time(text, now=NOW, login_tz=LOGIN) == (expected, [])
    planned = plan(end_text=text)
    assert planned.end == expected
    assert planned.warnings == []
    assert not planned.end_is_now


def test_empty_end_is_now() -> None:
    """An empty end means now."""
    planned = plan(end_text="")
    assert planned.end == NOW
    assert planned.end_is_now
    assert parse_end_date_time("", now=NOW, login_tz=LOGIN) == (NOW, [])


def test_zoneless_end_uses_login_zone_and_warns() -> None:
    """A zone-less end is read in the login zone and the plan carries warning 2174."""
    planned = plan(end_text="20240102 15:00:00")
    assert planned.end == dt.datetime(2024, 1, 2, 21, 0, tzinfo=UTC)  # 15:00 in Chicago
    assert planned.warnings == [(2174, TEXT_2174)]


def test_date_only_end_is_end_of_day_in_login_zone() -> None:
    """A bare yyyymmdd is read as 23:59:59 that day in the login zone, with warning 2174."""
    end, warnings = parse_end_date_time("20240102", now=NOW, login_tz=LOGIN)
    assert end == dt.datetime(2024, 1, 3, 5, 59, 59, tzinfo=UTC)
    assert warnings == [(2174, TEXT_2174)]


def test_time_only_end_is_today() -> None:
    """hh:mm:ss with a zone means that time today in the zone; without one, 2174."""
    assert parse_end_date_time("09:30:00 US/Eastern", now=NOW, login_tz=LOGIN) == (
        dt.datetime(2024, 7, 10, 13, 30, tzinfo=UTC),
        [],
    )
    end, warnings = parse_end_date_time("08:30:00", now=NOW, login_tz=LOGIN)
    assert end == dt.datetime(2024, 7, 10, 13, 30, tzinfo=UTC)
    assert warnings == [(2174, TEXT_2174)]


@pytest.mark.parametrize(
    "text",
    [
        "20240230 10:00:00 US/Eastern",
        "20240102 25:00:00",
        "20240102 16:00:00 Mars/Olympus",
        "20240102 16:00:00 ../etc/passwd",
        "2024-01-02 16:00:00",
        "yesterday",
        "20240102-16:00",
        "20240102 16:00:00 US/Eastern extra",
        "20240102  16:00:00",
        "2024010 16:00:00",
        "20240102T16:00:00",
        "16:00 US/Eastern",
        "-",
    ],
)
def test_invalid_end_gets_10314(text: str) -> None:
    """Anything else is refused with 10314 and TWS's full help text."""
    assert refused(end_text=text) == (10314, TEXT_10314)


def test_future_end_is_clamped_to_now() -> None:
    """An end after now is served as now."""
    planned = plan(end_text="20300101-00:00:00", duration="3600 S", bar_size="1 min")
    assert planned.end == NOW
    assert planned.end_is_now
    assert planned.start == NOW - dt.timedelta(hours=1)


# --------------------------------------------------------------------------------------
# windows


def test_seconds_window() -> None:
    """N S reports exactly N seconds before the end; inside a session the bars start there
    too, under both semantics."""
    for semantics in ("real", "sessions"):
        planned = plan(
            end_text="20240102-21:00:00",
            duration="1800 S",
            bar_size="1 min",
            window_semantics=semantics,
        )
        assert planned.start == planned.bars_start == dt.datetime(2024, 1, 2, 20, 30, tzinfo=UTC)
        assert (planned.duration_count, planned.duration_unit) == (1800, "S")
        assert planned.overlap == (semantics == "real")


def test_seconds_window_after_the_close_is_the_sessions_last_seconds() -> None:
    """Real TWS counts N S in session time: after the close the bars are the session's last
    N seconds (capture pyf-robusta-1min-bid-176), while the reported window stays end - N."""
    evening = "20240110 18:14:33 US/Eastern"  # RTH closed at 16:00
    planned = plan(end_text=evening, duration="180 S", bar_size="1 min")
    assert planned.start == ny(2024, 1, 10, 18, 11) + dt.timedelta(seconds=33)
    assert planned.bars_start == ny(2024, 1, 10, 15, 57)
    bars = planned.bars(STOCK)
    assert [b.start for b in bars] == [ny(2024, 1, 10, 15, m) for m in (57, 58, 59)]
    old = plan(end_text=evening, duration="180 S", bar_size="1 min", window_semantics="sessions")
    assert old.bars_start == old.start
    assert old.bars(STOCK) == []


def test_seconds_window_reaches_back_over_the_night() -> None:
    """Session time before the open is the previous session's end: 3600 S ten minutes after
    the open spans yesterday's last 50 minutes."""
    planned = plan(end_text="20240110 09:40:00 US/Eastern", duration="3600 S", bar_size="5 mins")
    assert planned.bars_start == ny(2024, 1, 9, 15, 10)
    bars = planned.bars(STOCK)
    assert len(bars) == 12
    assert bars[0].start == ny(2024, 1, 9, 15, 10)
    assert bars[-1].start == ny(2024, 1, 10, 9, 35)


def test_seconds_window_includes_the_bar_holding_the_start() -> None:
    """A 60 S window starting mid-bar includes that bar, and the bar holding the end is cut
    there (capture pyf-session-keepup-176: 14:47:22-14:48:22 gave the 14:47 and 14:48 bars)."""
    planned = plan(end_text="20240110 10:48:22 US/Eastern", duration="60 S", bar_size="1 min")
    bars = planned.bars(STOCK)
    assert [b.start for b in bars] == [ny(2024, 1, 10, 10, 47), ny(2024, 1, 10, 10, 48)]
    assert bars[-1].end == ny(2024, 1, 10, 10, 48) + dt.timedelta(seconds=22)
    old = plan(
        end_text="20240110 10:48:22 US/Eastern",
        duration="60 S",
        bar_size="1 min",
        window_semantics="sessions",
    )
    assert [b.start for b in old.bars(STOCK)] == [ny(2024, 1, 10, 10, 48)]


def test_days_window_reports_n_times_24_hours_and_counts_sessions() -> None:
    """Real TWS reports N D as end - N x 24 h (capture pyf-session-bars-176) and serves the
    bars of the N most recent sessions, the session in progress counting as one."""
    wednesday_noon = "20240110 12:00:00 US/Eastern"
    end = ny(2024, 1, 10, 12, 0)
    for days, first in ((1, ny(2024, 1, 10, 9, 30)), (3, ny(2024, 1, 8, 9, 30))):
        planned = plan(end_text=wednesday_noon, duration=f"{days} D")
        assert planned.start == end - dt.timedelta(days=days)
        assert planned.bars_start == first
    five = plan(end_text=wednesday_noon, duration="5 D", bar_size="1 day")
    assert five.bars_start == ny(2024, 1, 4, 9, 30)
    assert [b.session_date.day for b in five.bars(STOCK)] == [4, 5, 8, 9, 10]
    eight = plan(end_text=wednesday_noon, duration="8 D", bar_size="1 day")
    assert eight.bars_start == ny(2023, 12, 29, 9, 30)  # New Year's Day has no session
    assert len(eight.bars(STOCK)) == 8
    assert plan(end_text=wednesday_noon, duration="1 D", use_rth=False).bars_start == ny(
        2024, 1, 10, 4, 0
    )
    before_open = plan(end_text="20240110 08:00:00 US/Eastern", duration="1 D")
    assert before_open.bars_start == ny(2024, 1, 9, 9, 30)
    saturday = plan(end_text="20240113 12:00:00 US/Eastern", duration="1 D")
    assert saturday.bars_start == ny(2024, 1, 12, 9, 30)
    assert saturday.start == ny(2024, 1, 12, 12, 0)


def test_days_window_counts_sessions_under_sessions_semantics() -> None:
    """Under "sessions" N D starts, and is reported, at the N-th most recent session."""
    wednesday_noon = "20240110 12:00:00 US/Eastern"

    def start(**overrides: Any) -> dt.datetime:
        fields: dict[str, Any] = {"end_text": wednesday_noon, "window_semantics": "sessions"}
        planned = plan(**(fields | overrides))
        assert planned.start == planned.bars_start
        assert not planned.overlap
        return planned.start

    assert start(duration="1 D") == ny(2024, 1, 10, 9, 30)
    assert start(duration="1 D", use_rth=False) == ny(2024, 1, 10, 4, 0)
    assert start(duration="3 D") == ny(2024, 1, 8, 9, 30)
    assert start(duration="5 D") == ny(2024, 1, 4, 9, 30)
    assert start(duration="8 D") == ny(2023, 12, 29, 9, 30)  # New Year's Day has no session
    assert start(duration="1 D", end_text="20240110 08:00:00 US/Eastern") == ny(2024, 1, 9, 9, 30)
    assert start(duration="1 D", end_text="20240113 12:00:00 US/Eastern") == ny(2024, 1, 12, 9, 30)


def test_days_window_overnight_session_started_before_end() -> None:
    """An overnight session that opened before the end counts, though it closes after it."""
    sunday_evening = "20240707 18:00:00 US/Central"
    for semantics in WINDOW_SEMANTICS:
        planned = plan(
            FUTURE,
            end_text=sunday_evening,
            duration="1 D",
            use_rth=False,
            window_semantics=semantics,
        )
        assert planned.bars_start == dt.datetime(2024, 7, 7, 22, 0, tzinfo=UTC)  # 17:00 CDT


def test_days_window_stops_at_the_head_timestamp() -> None:
    """With fewer sessions available, N D's bars start at the first one; with none there are
    no bars (and the reported start is still end - N days under real semantics)."""
    first = head_timestamp(FUTURE, "TRADES", True)
    planned = plan(FUTURE, end_text="20240710 12:00:00 US/Central", duration="30 D")
    assert planned.bars_start == first
    empty = plan(FUTURE, end_text="20240601 12:00:00 US/Central", duration="5 D")
    assert empty.bars_start == empty.end
    assert empty.start == empty.end - dt.timedelta(days=5)
    assert empty.bars(FUTURE) == []
    old = plan(
        FUTURE,
        end_text="20240601 12:00:00 US/Central",
        duration="5 D",
        window_semantics="sessions",
    )
    assert old.start == old.end
    assert old.bars(FUTURE) == []


def test_days_window_after_expiry() -> None:
    """For an expired future, N D counts back from its last sessions."""
    for semantics in WINDOW_SEMANTICS:
        planned = plan(
            FUTURE,
            end_text="20250115 12:00:00 US/Central",
            duration="2 D",
            now=NOW.replace(year=2025),
            window_semantics=semantics,
        )
        assert planned.bars_start == dt.datetime(2024, 12, 19, 14, 30, tzinfo=UTC)  # 08:30 CST


def test_week_month_year_windows_are_calendar_based() -> None:
    """W, M and Y go back calendar weeks, months and years in the instrument's wall time,
    the bars' window and the reported one alike."""
    across_dst = plan(end_text="20240315 12:00:00 US/Eastern", duration="2 W", bar_size="1 day")
    assert across_dst.start == ny(2024, 3, 1, 12, 0)
    assert across_dst.end - across_dst.start == dt.timedelta(days=14, hours=-1)
    month = plan(end_text="20240331 12:00:00 US/Eastern", duration="1 M", bar_size="1 day")
    assert month.start == ny(2024, 2, 29, 12, 0)
    months = plan(end_text="20240531 12:00:00 US/Eastern", duration="3 M", bar_size="1 day")
    assert months.start == ny(2024, 2, 29, 12, 0)
    year = plan(end_text="20240229 12:00:00 US/Eastern", duration="1 Y", bar_size="1 day")
    assert year.start == ny(2023, 2, 28, 12, 0)
    years = plan(end_text="20240110 12:00:00 US/Eastern", duration="10 Y", bar_size="1M")
    assert years.start == years.bars_start == ny(2014, 1, 10, 12, 0)
    old = plan(
        end_text="20240110 12:00:00 US/Eastern",
        duration="10 Y",
        bar_size="1M",
        window_semantics="sessions",
    )
    assert old.start == old.bars_start == years.start


def test_plan_bars_match_the_generator() -> None:
    """BarsPlan.bars gives the generator's bars for the planned window, under both
    semantics."""
    for semantics in WINDOW_SEMANTICS:
        planned = plan(
            end_text="20240110 16:00:00 US/Eastern",
            duration="2 D",
            bar_size="30 mins",
            window_semantics=semantics,
        )
        bars = planned.bars(STOCK)
        assert bars == generate(
            STOCK,
            "TRADES",
            "30 mins",
            True,
            planned.bars_start,
            planned.end,
            overlap=semantics == "real",
        )
        assert len(bars) == 26
        assert bars[0].start == ny(2024, 1, 9, 9, 30)


def test_unknown_window_semantics() -> None:
    """plan_bars refuses a window semantics it does not model."""
    with pytest.raises(ValueError, match="window_semantics"):
        plan(window_semantics="calendar")


def test_a_year_of_minute_bars_is_one_request() -> None:
    """A 1 Y request of 1-min RTH bars is planned (about 100,000 bars)."""
    planned = plan(duration="1 Y", bar_size="1 min")
    assert planned.start == NOW.replace(year=2023)


# --------------------------------------------------------------------------------------
# no data and head timestamp


@pytest.mark.parametrize(
    ("what", "name"),
    [
        ("TRADES", "Trades"),
        ("MIDPOINT", "Midpoint"),
        ("BID", "Bid"),
        ("ASK", "Ask"),
        ("BID_ASK", "Bid_Ask"),
        ("ADJUSTED_LAST", "Adjusted_Last"),
        ("HISTORICAL_VOLATILITY", "Historical_Volatility"),
    ],
)
def test_no_data_error(what: str, name: str) -> None:
    """The no-data answer is 162 '…HMDS query returned no data: <local>@<exchange> <Type>'."""
    err = no_data_error(FUTURE, what)
    assert (err.code, err.text) == (
        162,
        f"{HMDS}HMDS query returned no data: ESZ4@CME {name}",
    )


def test_head_timestamp_forms() -> None:
    """The head timestamp is the first session open, as epoch (2) or dashed UTC (1)."""
    assert plan_head_timestamp(STOCK, "TRADES", True, 1) == "19801212-14:30:00"
    first = head_timestamp(FUTURE, "MIDPOINT", False)
    assert plan_head_timestamp(FUTURE, "MIDPOINT", False, 2) == str(int(first.timestamp()))
    assert plan_head_timestamp(FUTURE, "MIDPOINT", False, 1) == f"{first:%Y%m%d-%H:%M:%S}"


def test_head_timestamp_refusals() -> None:
    """reqHeadTimestamp refuses unavailable types with 162 and bad formats with 321."""
    with pytest.raises(SimError) as info:
        plan_head_timestamp(FX, "TRADES", False, 1)
    assert (info.value.code, info.value.text) == (
        162,
        f"{HMDS}No historical market data for EUR/CASH@IDEALPRO Last 0",
    )
    with pytest.raises(SimError) as info:
        plan_head_timestamp(STOCK, "TRADES", False, 0)
    assert strip_tag((info.value.code, info.value.text)) == invalid(
        "Date formatting selection of 0 rejected"
    )
    with pytest.raises(SimError) as info:
        plan_head_timestamp(STOCK, "NOPE", False, 1)
    assert info.value.code == 321
