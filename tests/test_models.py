"""Tests for ibdata.models: enums, contract records, trading hours, bars and health."""

from __future__ import annotations

import datetime as dt
import gc
import json
import math
import pickle
import string
import subprocess
import sys
import tracemalloc
from array import array
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ibdata.models
from ibdata.models import (
    Bar,
    Bars,
    BarSize,
    ConnectivityEvent,
    Contract,
    ContractDetails,
    ContractSpec,
    FarmState,
    Health,
    LoginTimeZone,
    SecType,
    TradingSession,
    WhatToShow,
    parse_trading_hours,
)

UTC = dt.timezone.utc
TEXT_FIELDS = (
    "symbol",
    "exchange",
    "currency",
    "last_trade_date_or_contract_month",
    "local_symbol",
    "trading_class",
    "multiplier",
    "primary_exchange",
)
#: 2025-03-12 13:30 UTC = 09:30 New York, a Wednesday.
T0 = dt.datetime(2025, 3, 12, 13, 30, tzinfo=UTC)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def aapl() -> Contract:
    return Contract(
        con_id=265598,
        symbol="AAPL",
        sec_type="STK",
        exchange="SMART",
        currency="USD",
        local_symbol="AAPL",
        trading_class="NMS",
        primary_exchange="ISLAND",
        last_trade_date="",
        multiplier="",
    )


def aapl_details(**changes: Any) -> ContractDetails:
    hours = "20251214:CLOSED;20251215:0400-20251215:2000"
    liquid = "20251214:CLOSED;20251215:0930-20251215:1600"
    fields: dict[str, Any] = {
        "contract": aapl(),
        "market_name": "NMS",
        "min_tick": 0.01,
        "long_name": "APPLE INC",
        "industry": "Technology",
        "category": "Computers",
        "subcategory": "Computers",
        "time_zone_id": "US/Eastern",
        "trading_hours": parse_trading_hours(hours, "US/Eastern"),
        "liquid_hours": parse_trading_hours(liquid, "US/Eastern"),
        "contract_month": "",
        "valid_exchanges": "SMART,AMEX,NYSE,ISLAND",
        "order_types": ("LMT", "MKT"),
        "sec_ids": [("ISIN", "US0378331005")],
        "under_con_id": 0,
        "under_symbol": "",
        "under_sec_type": "",
        "price_magnifier": 1,
        "real_expiration_date": "",
        "stock_type": "COMMON",
        "min_size": 0.0001,
        "size_increment": 0.0001,
        "suggested_size_increment": 100.0,
        "raw_trading_hours": hours,
        "raw_liquid_hours": liquid,
    }
    fields.update(changes)
    return ContractDetails(**fields)


def minute_bars(n: int = 5, **meta: Any) -> Bars:
    meta.setdefault("contract", aapl())
    meta.setdefault("bar_size", BarSize.ONE_MINUTE)
    meta.setdefault("what_to_show", WhatToShow.TRADES)
    meta.setdefault("use_rth", True)
    meta.setdefault("time_zone", "US/Eastern")
    start = T0.timestamp()
    return Bars.from_columns(
        [start + 60 * i for i in range(n)],
        [100.0 + i for i in range(n)],
        [101.0 + i for i in range(n)],
        [99.0 + i for i in range(n)],
        [100.5 + i for i in range(n)],
        [1000.0 * (i + 1) for i in range(n)],
        [100.25 + i for i in range(n)],
        [10 * (i + 1) for i in range(n)],
        **meta,
    )


def daily_bars(n: int = 3, **meta: Any) -> Bars:
    meta.setdefault("contract", aapl())
    meta.setdefault("bar_size", BarSize.ONE_DAY)
    meta.setdefault("what_to_show", WhatToShow.MIDPOINT)
    meta.setdefault("use_rth", False)
    first = dt.date(2025, 3, 10).toordinal()
    return Bars.from_columns(
        [float(first + i) for i in range(n)],
        [10.0] * n,
        [11.0] * n,
        [9.0] * n,
        [10.5] * n,
        [-1.0] * n,
        [-1.0] * n,
        [-1] * n,
        **meta,
    )


# --------------------------------------------------------------------------- import
def test_import_models_is_cheap() -> None:
    """``ibdata.models`` and ``ibdata.exceptions`` import only the standard library and attrs."""
    code = (
        "import importlib.util, sys, types\n"
        "spec = importlib.util.find_spec('ibdata')\n"
        "package = types.ModuleType('ibdata')\n"
        "package.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['ibdata'] = package\n"
        "before = set(sys.modules)\n"
        "import ibdata.models, ibdata.exceptions\n"
        "new = {name.split('.')[0] for name in set(sys.modules) - before}\n"
        "extra = new - set(sys.stdlib_module_names) - {'ibdata', 'attr', 'attrs'}\n"
        "print(','.join(sorted(m for m in extra if not m.startswith('_sysconfigdata'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_public_names_are_documented() -> None:
    """Every name in ``ibdata.models.__all__`` exists and has a docstring."""
    for name in ibdata.models.__all__:
        assert getattr(ibdata.models, name).__doc__, name


# --------------------------------------------------------------------------- enums
BAR_SECONDS = {
    "1 secs": 1,
    "5 secs": 5,
    "10 secs": 10,
    "15 secs": 15,
    "30 secs": 30,
    "1 min": 60,
    "2 mins": 120,
    "3 mins": 180,
    "5 mins": 300,
    "10 mins": 600,
    "15 mins": 900,
    "20 mins": 1200,
    "30 mins": 1800,
    "1 hour": 3600,
    "2 hours": 7200,
    "3 hours": 10800,
    "4 hours": 14400,
    "8 hours": 28800,
    "1 day": 86400,
    "1 week": 604800,
    "1 month": 2592000,
}


def test_bar_size_values_are_ib_strings() -> None:
    """BarSize's values are exactly IB's 21 legal bar-size strings, in IB's order."""
    assert [m.value for m in BarSize] == list(BAR_SECONDS)
    assert BarSize.ONE_DAY == "1 day"
    assert BarSize("1 hour") is BarSize.ONE_HOUR


def test_enum_str_and_format_give_ib_value() -> None:
    """``str()`` and f-strings of an enum member give IB's string, not the member name."""
    assert str(BarSize.ONE_DAY) == "1 day"
    assert f"{BarSize.FIVE_MINUTES}" == "5 mins"
    assert f"{WhatToShow.BID_ASK}" == "BID_ASK"
    assert str(SecType.CONTFUT) == "CONTFUT"
    assert str(FarmState.OK) == "ok"


@pytest.mark.parametrize(("value", "seconds"), BAR_SECONDS.items())
def test_bar_size_seconds_and_intraday(value: str, seconds: int) -> None:
    """BarSize.seconds is the nominal length and .intraday is True below one day."""
    size = BarSize(value)
    assert size.seconds == seconds
    assert size.intraday is (seconds < 86400)


def test_bar_size_accepts_tws_spellings_exactly() -> None:
    """TWS's ``1W`` and ``1M`` name the week and month; ``1m`` and ``1 sec`` are refused."""
    assert BarSize("1W") is BarSize.ONE_WEEK
    assert BarSize("1M") is BarSize.ONE_MONTH
    with pytest.raises(ValueError, match="'1m' is not a valid BarSize"):
        BarSize("1m")
    with pytest.raises(ValueError, match="'1 secs'"):
        BarSize("1 sec")


def test_what_to_show_values_are_names() -> None:
    """WhatToShow's values are IB's strings, equal to the member names."""
    names = [
        "TRADES",
        "MIDPOINT",
        "BID",
        "ASK",
        "BID_ASK",
        "ADJUSTED_LAST",
        "HISTORICAL_VOLATILITY",
        "OPTION_IMPLIED_VOLATILITY",
    ]
    assert [m.value for m in WhatToShow] == names
    assert all(m.name == m.value for m in WhatToShow)


def test_sec_type_values_are_names() -> None:
    """SecType's values are IB's security-type strings, equal to the member names."""
    names = [
        "STK",
        "FUT",
        "CONTFUT",
        "IND",
        "CASH",
        "OPT",
        "FOP",
        "BOND",
        "CFD",
        "CMDTY",
        "FUND",
        "CRYPTO",
        "WAR",
    ]
    assert [m.value for m in SecType] == names
    assert all(m.name == m.value for m in SecType)


def test_case_insensitive_enums_accept_lower_case_ascii_only() -> None:
    """WhatToShow and SecType accept lower case, but not look-alike non-ASCII letters."""
    assert WhatToShow("trades") is WhatToShow.TRADES
    assert SecType("fut") is SecType.FUT
    with pytest.raises(ValueError, match="not a valid SecType"):
        SecType("\u017ftk")  # LATIN SMALL LETTER LONG S upper-cases to "S"


def test_farm_state_values() -> None:
    """FarmState's values are the lower-case state names."""
    assert [m.value for m in FarmState] == ["ok", "broken", "inactive", "connecting"]


# --------------------------------------------------------------------------- ContractSpec
def test_contract_spec_defaults() -> None:
    """``ContractSpec("AAPL")`` is a SMART-routed US stock with every other field unset."""
    spec = ContractSpec("AAPL")
    assert spec.sec_type is SecType.STK
    assert (spec.exchange, spec.currency) == ("SMART", "USD")
    assert spec.last_trade_date_or_contract_month == ""
    assert spec.con_id == 0
    assert spec.include_expired is False


def test_contract_spec_fields_after_symbol_are_keyword_only() -> None:
    """Only the symbol may be positional."""
    with pytest.raises(TypeError):
        ContractSpec("AAPL", "STK")  # type: ignore[misc]


def test_contract_spec_sec_type_accepts_strings() -> None:
    """The security type may be given as IB's string in any case."""
    spec = ContractSpec("GBL", sec_type="fut", exchange="EUREX", currency="EUR")
    assert spec.sec_type is SecType.FUT


def test_contract_spec_rejects_unknown_sec_type() -> None:
    """An unknown security type raises ValueError naming the field and legal values."""
    with pytest.raises(ValueError, match=r"ContractSpec\.sec_type must be one of STK, FUT"):
        ContractSpec("X", sec_type="STOCK")
    with pytest.raises(TypeError, match=r"ContractSpec\.sec_type"):
        ContractSpec("X", sec_type=1)  # type: ignore[arg-type]


def test_contract_spec_error_message_names_field_and_shows_repr() -> None:
    """A NUL in the symbol is refused with the field name and the value's repr."""
    with pytest.raises(ValueError, match="printable ASCII") as info:
        ContractSpec("A\x00PL")
    assert str(info.value) == (
        "ContractSpec.symbol must be printable ASCII without control characters, got 'A\\x00PL'"
    )


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("bad", ["A\x00B", "A\nB", "A\tB", "\x7f", "AAPL\u20ac", "\u00c4"])
def test_contract_spec_text_fields_must_be_printable_ascii(field: str, bad: str) -> None:
    """Every text field refuses control characters, DEL and non-ASCII, naming the field."""
    kwargs = {"symbol": "X", field: bad}
    with pytest.raises(ValueError, match=rf"ContractSpec\.{field} must be printable ASCII"):
        ContractSpec(**kwargs)


@pytest.mark.parametrize(
    "field", [f for f in TEXT_FIELDS if f != "last_trade_date_or_contract_month"]
)
def test_contract_spec_text_fields_at_most_64_characters(field: str) -> None:
    """Free text fields longer than 64 characters are refused, naming the field."""
    assert getattr(ContractSpec(**{"symbol": "X", field: "A" * 64}), field) == "A" * 64
    with pytest.raises(ValueError, match=rf"ContractSpec\.{field} must be at most 64"):
        ContractSpec(**{"symbol": "X", field: "A" * 65})


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_contract_spec_text_fields_must_be_str(field: str) -> None:
    """A non-string text field raises TypeError naming the field."""
    with pytest.raises(TypeError, match=rf"ContractSpec\.{field} must be a str"):
        ContractSpec(**{"symbol": "X", field: 5})


def test_contract_spec_refuses_surrounding_spaces_but_keeps_inner_ones() -> None:
    """Leading or trailing spaces are refused; inner spaces (CBOT local symbols) are kept."""
    assert ContractSpec(local_symbol="ZN   SEP 18").local_symbol == "ZN   SEP 18"
    with pytest.raises(ValueError, match="must not start or end with spaces"):
        ContractSpec(" AAPL")


def test_contract_spec_needs_something_to_identify_the_contract() -> None:
    """An empty symbol is allowed only with a local symbol or a con_id."""
    assert ContractSpec(con_id=265598).con_id == 265598
    assert ContractSpec(local_symbol="FGBL JUN 25").symbol == ""
    with pytest.raises(ValueError, match="symbol, a local_symbol or a con_id"):
        ContractSpec("")


@pytest.mark.parametrize("value", ["", "202506", "20250620", "20240229"])
def test_contract_spec_accepts_expiry_forms(value: str) -> None:
    """The expiry may be empty, a contract month YYYYMM or a last trading day YYYYMMDD."""
    spec = ContractSpec("GBL", sec_type=SecType.FUT, last_trade_date_or_contract_month=value)
    assert spec.last_trade_date_or_contract_month == value


@pytest.mark.parametrize(
    "value", ["2025-06", "2025060", "202513", "202500", "20250231", "20250620 ", "M25"]
)
def test_contract_spec_rejects_bad_expiry(value: str) -> None:
    """An expiry that is not a real YYYYMM or YYYYMMDD raises ValueError naming the field."""
    with pytest.raises(ValueError, match=r"ContractSpec\.last_trade_date_or_contract_month"):
        ContractSpec("GBL", sec_type=SecType.FUT, last_trade_date_or_contract_month=value)


def test_contract_spec_con_id_and_flag_types() -> None:
    """con_id must be a non-negative int and include_expired a bool."""
    with pytest.raises(ValueError, match=r"ContractSpec\.con_id must be >= 0"):
        ContractSpec("X", con_id=-1)
    with pytest.raises(TypeError, match=r"ContractSpec\.con_id"):
        ContractSpec("X", con_id=True)
    with pytest.raises(TypeError, match=r"ContractSpec\.con_id"):
        ContractSpec("X", con_id="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ContractSpec\.include_expired"):
        ContractSpec("X", include_expired=1)  # type: ignore[arg-type]


def test_contract_spec_is_frozen_and_hashable() -> None:
    """Specs are immutable values: equal specs hash alike and fields cannot be set."""
    a = ContractSpec("GBL", sec_type="FUT", exchange="EUREX", currency="EUR")
    b = ContractSpec("GBL", sec_type=SecType.FUT, exchange="EUREX", currency="EUR")
    assert a == b
    assert hash(a) == hash(b)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.symbol = "X"  # type: ignore[misc]


def test_contract_spec_describe() -> None:
    """describe() names symbol, type, expiry, exchange and currency, skipping empty parts."""
    spec = ContractSpec(
        "GBL",
        sec_type=SecType.FUT,
        exchange="EUREX",
        currency="EUR",
        last_trade_date_or_contract_month="202506",
        trading_class="FGBL",
    )
    assert spec.describe() == "GBL FUT 202506 EUREX EUR"
    assert ContractSpec("AAPL").describe() == "AAPL STK SMART USD"
    assert ContractSpec(con_id=5, exchange="", currency="").describe() == "con_id=5 STK"


@settings(max_examples=300, database=None)
@given(
    texts=st.fixed_dictionaries({field: st.text(max_size=70) for field in TEXT_FIELDS}),
    sec_type=st.one_of(st.text(max_size=10), st.sampled_from([m.value for m in SecType])),
)
def test_contract_spec_arbitrary_text_is_ascii_or_value_error(
    texts: dict[str, str], sec_type: str
) -> None:
    """Arbitrary unicode either builds a spec of printable ASCII fields or raises ValueError."""
    try:
        spec = ContractSpec(**texts, sec_type=sec_type)
    except ValueError:
        return
    printable = set(string.printable) - set("\t\n\r\x0b\x0c")
    for field in TEXT_FIELDS:
        value = getattr(spec, field)
        assert set(value) <= printable
        assert len(value) <= 64
    assert isinstance(spec.sec_type, SecType)


# --------------------------------------------------------------------------- contracts
def test_contract_construction_and_describe() -> None:
    """A Contract keeps IB's values as given and describes itself briefly."""
    c = aapl()
    assert c.con_id == 265598
    assert c.sec_type == "STK"
    assert c.describe() == "AAPL STK SMART USD"
    fut = attrs.evolve(c, symbol="GBL", sec_type="FUT", last_trade_date="20250606")
    assert fut.describe() == "GBL FUT 20250606 SMART USD"


def test_contract_details_construction() -> None:
    """ContractDetails converts IB's lists and identifiers to tuples and a read-only map."""
    d = aapl_details()
    assert d.valid_exchanges == ("SMART", "AMEX", "NYSE", "ISLAND")
    assert d.order_types == ("LMT", "MKT")
    assert dict(d.sec_ids) == {"ISIN": "US0378331005"}
    assert d.sec_id("ISIN") == "US0378331005"
    assert d.sec_id("CUSIP") is None
    assert d.trading_hours == (TradingSession(utc(2025, 12, 15, 9), utc(2025, 12, 16, 1)),)
    assert d.liquid_hours == (TradingSession(utc(2025, 12, 15, 14, 30), utc(2025, 12, 15, 21)),)
    assert not hasattr(d.sec_ids, "__setitem__")


def test_contract_details_is_hashable_and_compares_by_value() -> None:
    """Two details with the same values are equal and hash alike, sec_ids included."""
    a = aapl_details()
    b = aapl_details(sec_ids={"ISIN": "US0378331005"})
    assert a == b
    assert hash(a) == hash(b)
    assert a != aapl_details(min_tick=0.05)
    assert pickle.loads(pickle.dumps(a)) == a


# --------------------------------------------------------------------------- sessions
def test_trading_session_converts_to_utc() -> None:
    """Aware datetimes in other zones are stored in UTC."""
    ny = ZoneInfo("America/New_York")
    s = TradingSession(
        dt.datetime(2025, 3, 12, 9, 30, tzinfo=ny), dt.datetime(2025, 3, 12, 16, tzinfo=ny)
    )
    assert s.start == utc(2025, 3, 12, 13, 30)
    assert s.start.tzinfo is UTC
    assert s.duration == dt.timedelta(hours=6, minutes=30)
    assert s.contains(utc(2025, 3, 12, 13, 30))
    assert not s.contains(utc(2025, 3, 12, 20))


def test_trading_session_refuses_naive_and_backwards() -> None:
    """Naive datetimes and sessions that do not move forward raise ValueError."""
    with pytest.raises(ValueError, match=r"TradingSession\.start must be timezone-aware"):
        TradingSession(dt.datetime(2025, 3, 12, 9), utc(2025, 3, 12, 16))
    with pytest.raises(ValueError, match="must be after start"):
        TradingSession(utc(2025, 3, 12, 16), utc(2025, 3, 12, 16))
    with pytest.raises(ValueError, match="timezone-aware"):
        TradingSession(utc(2025, 3, 12, 9), utc(2025, 3, 12, 16)).contains(dt.datetime(2025, 1, 1))


# --------------------------------------------------------------------------- hours
def test_parse_trading_hours_current_form() -> None:
    """Sessions of the TWS 970+ form are read in the contract's zone; CLOSED days add none."""
    text = "20250312:0930-20250312:1600;20250313:CLOSED;20250314:0930-20250314:1600"
    assert parse_trading_hours(text, "US/Eastern") == (
        TradingSession(utc(2025, 3, 12, 13, 30), utc(2025, 3, 12, 20)),
        TradingSession(utc(2025, 3, 14, 13, 30), utc(2025, 3, 14, 20)),
    )


def test_parse_trading_hours_overnight_session() -> None:
    """A futures session ending on the next date is one session across midnight."""
    sessions = parse_trading_hours("20250316:1700-20250317:1600", "US/Central")
    assert sessions == (TradingSession(utc(2025, 3, 16, 22), utc(2025, 3, 17, 21)),)


def test_parse_trading_hours_legacy_form() -> None:
    """The pre-970 form with several dateless sessions in one day is read too."""
    sessions = parse_trading_hours("20090507:0700-1830,1830-2330;20090508:CLOSED", "US/Eastern")
    assert sessions == (
        TradingSession(utc(2009, 5, 7, 11), utc(2009, 5, 7, 22, 30)),
        TradingSession(utc(2009, 5, 7, 22, 30), utc(2009, 5, 8, 3, 30)),
    )


def test_parse_trading_hours_legacy_overnight_and_midnight() -> None:
    """In the legacy form an end at or before the start is the next day; 2400 is midnight."""
    assert parse_trading_hours("20090507:1700-0200", "UTC") == (
        TradingSession(utc(2009, 5, 7, 17), utc(2009, 5, 8, 2)),
    )
    assert parse_trading_hours("20090507:1700-2400", "UTC") == (
        TradingSession(utc(2009, 5, 7, 17), utc(2009, 5, 8)),
    )


def test_parse_trading_hours_dst_spring_forward() -> None:
    """New York hours move one hour earlier in UTC on the day US daylight saving starts."""
    text = "20250307:0930-20250307:1600;20250310:0930-20250310:1600"
    friday, monday = parse_trading_hours(text, "US/Eastern")
    assert (friday.start, friday.end) == (utc(2025, 3, 7, 14, 30), utc(2025, 3, 7, 21))
    assert (monday.start, monday.end) == (utc(2025, 3, 10, 13, 30), utc(2025, 3, 10, 20))


def test_parse_trading_hours_session_across_dst_change_is_shorter() -> None:
    """An overnight session spanning the spring change lasts one hour less than on the clock."""
    (session,) = parse_trading_hours("20250308:2200-20250309:0400", "US/Eastern")
    assert session.start == utc(2025, 3, 9, 3)
    assert session.end == utc(2025, 3, 9, 8)
    assert session.duration == dt.timedelta(hours=5)


def test_parse_trading_hours_dst_fall_back() -> None:
    """An overnight session spanning the autumn change lasts one hour more than on the clock."""
    (session,) = parse_trading_hours("20251101:1700-20251102:1600", "US/Central")
    assert session.start == utc(2025, 11, 1, 22)
    assert session.end == utc(2025, 11, 2, 22)
    assert session.duration == dt.timedelta(hours=24)


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("MET", utc(2025, 3, 12, 7)),
        ("GB-Eire", utc(2025, 3, 12, 8)),
        ("Japan", utc(2025, 3, 11, 23)),
        ("Hongkong", utc(2025, 3, 12, 0)),
        ("US/Eastern", utc(2025, 3, 12, 12)),
    ],
)
def test_parse_trading_hours_ib_legacy_zone_names(zone: str, start: dt.datetime) -> None:
    """IB's legacy zone names resolve through tzdata."""
    (session,) = parse_trading_hours("20250312:0800-20250312:1600", zone)
    assert session.start == start


@pytest.mark.parametrize("text", ["", "   ", ";", "20250313:CLOSED", "20250313:CLOSED;"])
def test_parse_trading_hours_empty_gives_no_sessions(text: str) -> None:
    """Empty text, empty entries and closed days give no sessions."""
    assert parse_trading_hours(text, "US/Eastern") == ()


def test_parse_trading_hours_empty_text_does_not_need_a_zone() -> None:
    """An empty schedule parses to nothing whatever the zone, even an empty one."""
    assert parse_trading_hours("", "") == ()
    assert parse_trading_hours("", "Nowhere/Special") == ()


def test_parse_trading_hours_ignores_trailing_semicolon() -> None:
    """A trailing ``;`` does not make an empty entry an error."""
    assert len(parse_trading_hours("20250312:0930-20250312:1600;", "US/Eastern")) == 1


@pytest.mark.parametrize(
    "entry",
    [
        "hello",
        "20250312",
        "20250312:",
        "20250312:OPEN",
        "20250312:closed",
        "20250312:0930",
        "20250312:0930-",
        "2025031:0930-20250312:1600",
        "20250312:930-20250312:1600",
        "20250312:0930-20250312:16:00",
        "20250312:0930-1600-1700",
        "20250312:20250312:0930-20250312:1600",
        "20250312:0930-20250312:1600,",
    ],
)
def test_parse_trading_hours_malformed_entry(entry: str) -> None:
    """A malformed entry raises ValueError quoting it."""
    text = f"20250311:0930-20250311:1600;{entry};20250313:CLOSED"
    with pytest.raises(ValueError, match="trading hours entry") as info:
        parse_trading_hours(text, "US/Eastern")
    assert repr(entry) in str(info.value)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("20251312:0930-20251312:1600", "'20251312' is not a date"),
        ("20250230:0930-20250230:1600", "'20250230' is not a date"),
        ("20250312:0930-20250399:1600", "'20250399' is not a date"),
        ("20250312:2500-20250312:2600", "'2500' is not a time"),
        ("20250312:0960-20250312:1600", "'0960' is not a time"),
        ("20250312:2400-20250313:0100", "'2400' is not a time"),
        ("20250312:1600-20250312:0930", "ends before it starts"),
        ("20250312:1600-20250312:1600", "ends before it starts"),
    ],
)
def test_parse_trading_hours_impossible_values(entry: str, reason: str) -> None:
    """Impossible dates and times, and sessions ending before they start, are refused."""
    with pytest.raises(ValueError, match=reason) as info:
        parse_trading_hours(entry, "US/Eastern")
    assert repr(entry) in str(info.value)


@pytest.mark.parametrize("zone", ["", "Nowhere/Special", "US", "../etc/passwd", "US/Eastern\x00"])
def test_parse_trading_hours_unknown_zone(zone: str) -> None:
    """An empty or unknown zone name raises ValueError."""
    with pytest.raises(ValueError, match=r"time zone|time_zone_id is empty"):
        parse_trading_hours("20250312:0930-20250312:1600", zone)


def test_parse_trading_hours_type_errors() -> None:
    """Non-string arguments raise TypeError."""
    with pytest.raises(TypeError, match="text must be a str"):
        parse_trading_hours(None, "US/Eastern")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="time_zone_id must be a str"):
        parse_trading_hours("", None)  # type: ignore[arg-type]


@settings(max_examples=300, database=None)
@given(st.text(alphabet="0123456789:-;,CLOSED \n", max_size=60) | st.text(max_size=30))
def test_parse_trading_hours_never_fails_otherwise(text: str) -> None:
    """Any text parses into UTC sessions or raises ValueError, nothing else."""
    try:
        sessions = parse_trading_hours(text, "US/Eastern")
    except ValueError:
        return
    for s in sessions:
        assert s.start.tzinfo is UTC
        assert s.end > s.start


# --------------------------------------------------------------------------- Bar
def test_bar_intraday_time_is_utc() -> None:
    """An intraday Bar's aware time is converted to UTC; a naive one is refused."""
    ny = ZoneInfo("America/New_York")
    bar = Bar(dt.datetime(2025, 3, 12, 9, 30, tzinfo=ny), 1, 2, 0.5, 1.5)
    assert bar.time == T0
    assert bar.time.tzinfo is UTC  # type: ignore[union-attr]
    assert isinstance(bar.open, float)
    with pytest.raises(ValueError, match="naive"):
        Bar(dt.datetime(2025, 3, 12, 9, 30), 1, 2, 0.5, 1.5)


def test_bar_daily_time_is_a_date() -> None:
    """A daily Bar keeps the session date as given."""
    bar = Bar(dt.date(2025, 3, 12), 1.0, 2.0, 0.5, 1.5, 100.0, 1.2, 7)
    assert type(bar.time) is dt.date
    assert (bar.volume, bar.wap, bar.count) == (100.0, 1.2, 7)


def test_bar_sentinels_become_none() -> None:
    """IB's -1 volume, WAP and count, and NaN volume or WAP, read as None."""
    bar = Bar(T0, 1.0, 2.0, 0.5, 1.5, -1.0, -1.0, -1)
    assert (bar.volume, bar.wap, bar.count) == (None, None, None)
    bar = Bar(T0, 1.0, 2.0, 0.5, 1.5, math.nan, math.nan, None)
    assert (bar.volume, bar.wap, bar.count) == (None, None, None)


def test_bar_wap_of_minus_one_is_real_when_volume_exists() -> None:
    """A WAP of -1 with real volume is a price (spreads trade below zero), not a sentinel."""
    bar = Bar(T0, -1.5, -0.5, -1.5, -1.0, 20.0, -1.0, 3)
    assert bar.wap == -1.0


def test_bar_type_checks() -> None:
    """Non-numeric prices and times that are not dates raise TypeError."""
    with pytest.raises(TypeError, match=r"Bar\.open must be a number"):
        Bar(T0, "1", 2, 0.5, 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Bar\.time"):
        Bar("2025-03-12", 1, 2, 0.5, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Bar\.count must be a whole number"):
        Bar(T0, 1, 2, 0.5, 1.5, count=1.5)  # type: ignore[arg-type]
    assert Bar(T0, 1, 2, 0.5, 1.5, count=3.0).count == 3  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Bars
def test_bars_cannot_be_built_directly() -> None:
    """``Bars()`` points to the two constructors."""
    with pytest.raises(TypeError, match="from_columns"):
        Bars()


def test_bars_indexing() -> None:
    """Integer indexes, negative ones included, give Bars; out of range raises IndexError."""
    bars = minute_bars(5)
    assert len(bars) == 5
    first = bars[0]
    assert first == Bar(T0, 100.0, 101.0, 99.0, 100.5, 1000.0, 100.25, 10)
    assert bars[-1].time == T0 + dt.timedelta(minutes=4)
    assert bars[-5] == first
    with pytest.raises(IndexError):
        bars[5]
    with pytest.raises(IndexError):
        bars[-6]


def test_bars_slicing_keeps_metadata() -> None:
    """Slices are Bars with the same metadata, steps and negative bounds included."""
    bars = minute_bars(5)
    part = bars[1:3]
    assert isinstance(part, Bars)
    assert [b.time for b in part] == [T0 + dt.timedelta(minutes=m) for m in (1, 2)]
    assert part.contract == bars.contract
    assert part.bar_size is BarSize.ONE_MINUTE
    assert [b.open for b in bars[::2]] == [100.0, 102.0, 104.0]
    assert list(bars[::-1]) == list(reversed(bars))
    assert len(bars[10:]) == 0


def test_bars_iteration_and_sequence_protocol() -> None:
    """Iteration yields every bar in order; ``in`` and ``index`` work."""
    bars = minute_bars(4)
    items = list(bars)
    assert items == [bars[i] for i in range(4)]
    assert items[2] in bars
    assert bars.index(items[2]) == 2


def test_bars_metadata() -> None:
    """Metadata reads back as given; start and end are converted to UTC."""
    ny = ZoneInfo("America/New_York")
    bars = minute_bars(
        2,
        bar_size="1 min",
        what_to_show="trades",
        start=dt.datetime(2025, 3, 12, 9, 30, tzinfo=ny),
        end=utc(2025, 3, 12, 20),
    )
    assert bars.bar_size is BarSize.ONE_MINUTE
    assert bars.what_to_show is WhatToShow.TRADES
    assert bars.use_rth is True
    assert bars.start == T0
    assert bars.start.tzinfo is UTC  # type: ignore[union-attr]
    assert bars.end == utc(2025, 3, 12, 20)
    assert bars.time_zone == "US/Eastern"
    assert bars.intraday is True
    assert bars.contract == aapl()


def test_bars_equality() -> None:
    """Bars are equal with equal bars and metadata, and unequal otherwise."""
    assert minute_bars(3) == minute_bars(3)
    assert minute_bars(3) != minute_bars(4)
    assert minute_bars(3) != minute_bars(3, use_rth=False)
    assert minute_bars(3) != minute_bars(3, contract=None)
    assert minute_bars(3) != list(minute_bars(3))
    changed = Bars.from_bars(
        [attrs.evolve(b, close=0.0) if i == 1 else b for i, b in enumerate(minute_bars(3))],
        contract=aapl(),
        bar_size="1 min",
        what_to_show="TRADES",
        use_rth=True,
        time_zone="US/Eastern",
    )
    assert changed != minute_bars(3)


def test_bars_are_unhashable_but_picklable() -> None:
    """Bars compare by value (so are unhashable) and survive a pickle round trip."""
    bars = minute_bars(3)
    with pytest.raises(TypeError):
        hash(bars)
    assert pickle.loads(pickle.dumps(bars)) == bars


def test_bars_sentinels_read_as_none_and_compare_equal_to_nan() -> None:
    """IB's -1 sentinels in columns read as None and equal NaN/-1 storage of the same bars."""
    raw = daily_bars(3)
    assert [(b.volume, b.wap, b.count) for b in raw] == [(None, None, None)] * 3
    rebuilt = Bars.from_bars(
        list(raw), contract=aapl(), bar_size="1 day", what_to_show="MIDPOINT", use_rth=False
    )
    assert rebuilt == raw


def test_bars_daily_time_is_session_date() -> None:
    """Daily bars are stamped with dates, not datetimes."""
    bars = daily_bars(3)
    assert [b.time for b in bars] == [dt.date(2025, 3, d) for d in (10, 11, 12)]
    assert all(type(b.time) is dt.date for b in bars)
    assert bars.intraday is False


def test_bars_from_bars_from_columns_round_trip() -> None:
    """from_bars on the bars of from_columns rebuilds equal Bars, intraday and daily."""
    for bars in (minute_bars(6), daily_bars(4)):
        again = Bars.from_bars(
            bars,
            contract=bars.contract,
            bar_size=bars.bar_size,
            what_to_show=bars.what_to_show,
            use_rth=bars.use_rth,
            start=bars.start,
            end=bars.end,
            time_zone=bars.time_zone,
        )
        assert again == bars
        assert list(again) == list(bars)


def test_bars_from_columns_accepts_datetimes_and_dates() -> None:
    """The time column may hold aware datetimes (intraday) or dates (daily)."""
    intraday = Bars.from_columns(
        [T0, T0 + dt.timedelta(minutes=1)],
        [1, 2], [1, 2], [1, 2], [1, 2], [None, 5], [None, 1.5], [None, 2],
        bar_size=BarSize.ONE_MINUTE, what_to_show=WhatToShow.TRADES, use_rth=False,
    )  # fmt: skip
    assert intraday[1] == Bar(T0 + dt.timedelta(minutes=1), 2, 2, 2, 2, 5.0, 1.5, 2)
    assert (intraday[0].volume, intraday[0].wap, intraday[0].count) == (None, None, None)
    daily = Bars.from_columns(
        [dt.date(2025, 3, 12)], [1], [1], [1], [1], [1], [1], [1],
        bar_size="1 week", what_to_show="TRADES", use_rth=False,
    )  # fmt: skip
    assert daily[0].time == dt.date(2025, 3, 12)


def test_bars_refuse_naive_datetimes() -> None:
    """Naive datetimes are refused in the time column and in start and end."""
    naive = dt.datetime(2025, 3, 12, 9, 30)
    with pytest.raises(ValueError, match="naive"):
        Bars.from_columns(
            [naive], [1], [1], [1], [1], [1], [1], [1],
            bar_size="1 min", what_to_show="TRADES", use_rth=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        minute_bars(1, start=naive)
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        minute_bars(1, end=naive)


def test_bars_time_type_must_match_bar_size() -> None:
    """Dates are refused for intraday bars and datetimes for daily bars."""
    with pytest.raises(TypeError, match="intraday bars need datetimes"):
        Bars.from_columns(
            [dt.date(2025, 3, 12)], [1], [1], [1], [1], [1], [1], [1],
            bar_size="1 min", what_to_show="TRADES", use_rth=False,
        )  # fmt: skip
    with pytest.raises(TypeError, match="session dates"):
        Bars.from_columns(
            [T0], [1], [1], [1], [1], [1], [1], [1],
            bar_size="1 day", what_to_show="TRADES", use_rth=False,
        )  # fmt: skip
    with pytest.raises(TypeError, match="session dates"):
        Bars.from_bars(
            [Bar(T0, 1, 1, 1, 1)], bar_size="1 day", what_to_show="TRADES", use_rth=False
        )
    with pytest.raises(TypeError, match="need datetimes"):
        Bars.from_bars(
            [Bar(dt.date(2025, 3, 12), 1, 1, 1, 1)],
            bar_size="1 min",
            what_to_show="TRADES",
            use_rth=False,
        )


def test_bars_validation_errors() -> None:
    """Mismatched columns and contradictory or unknown metadata raise clear errors."""
    with pytest.raises(ValueError, match="column volume has 2 values but time has 3"):
        Bars.from_columns(
            [1.0, 2.0, 3.0], [1] * 3, [1] * 3, [1] * 3, [1] * 3, [1, 2], [1] * 3, [1] * 3,
            bar_size="1 min", what_to_show="TRADES", use_rth=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match="intraday=False contradicts"):
        minute_bars(1, intraday=False)
    with pytest.raises(ValueError, match="bar_size must be one of"):
        minute_bars(1, bar_size="2 days")
    with pytest.raises(ValueError, match="what_to_show must be one of"):
        minute_bars(1, what_to_show="TRADE")
    with pytest.raises(ValueError, match=r"start .* must not be after end"):
        minute_bars(1, start=utc(2025, 3, 13), end=utc(2025, 3, 12))
    with pytest.raises(TypeError, match="use_rth must be True or False"):
        minute_bars(1, use_rth=1)
    with pytest.raises(TypeError, match="contract must be a Contract"):
        minute_bars(1, contract=ContractSpec("AAPL"))
    with pytest.raises(TypeError, match="column open must be a sequence of numbers"):
        Bars.from_columns(
            [1.0], "1", [1], [1], [1], [1], [1], [1],  # type: ignore[arg-type]
            bar_size="1 min", what_to_show="TRADES", use_rth=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match="NaN or infinite"):
        Bars.from_columns(
            [math.nan], [1], [1], [1], [1], [1], [1], [1],
            bar_size="1 min", what_to_show="TRADES", use_rth=False,
        )  # fmt: skip
    with pytest.raises(TypeError, match="from_bars needs Bar objects"):
        Bars.from_bars([1], bar_size="1 min", what_to_show="TRADES", use_rth=False)  # type: ignore[list-item]


def test_bars_from_columns_converts_other_array_types() -> None:
    """Arrays of other numeric types are copied into the right columns."""
    bars = Bars.from_columns(
        array("l", [int(T0.timestamp())]),
        array("f", [1.5]), array("d", [2.0]), array("d", [1.0]), array("d", [1.5]),
        array("i", [7]), array("d", [1.25]), array("l", [3]),
        bar_size="1 min", what_to_show="TRADES", use_rth=False,
    )  # fmt: skip
    assert bars[0] == Bar(T0, 1.5, 2.0, 1.0, 1.5, 7.0, 1.25, 3)


def test_bars_from_columns_does_not_copy_matching_arrays() -> None:
    """Columns already of type ``array('d')``/``array('q')`` are taken without a copy."""
    n = 100_000
    cols = [array("d", [T0.timestamp() + 60.0 * i for i in range(n)])]
    cols += [array("d", [1.0]) * n for _ in range(6)]
    count = array("q", [1]) * n
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        bars = Bars.from_columns(
            *cols, count, bar_size="1 min", what_to_show="TRADES", use_rth=False
        )
        allocated = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(bars) == n
    assert allocated < 4096


def _held_bytes_per_bar(build: Any, n: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        bars = build()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(bars) == n
    return held / n


def test_bars_memory_from_columns_at_most_80_bytes_per_bar() -> None:
    """100,000 bars built from plain lists hold at most 80 bytes each (measured)."""
    n = 100_000
    t0 = T0.timestamp()
    columns = [[t0 + 60.0 * i for i in range(n)]] + [[float(i) for i in range(n)]] * 6
    count = list(range(n))
    per_bar = _held_bytes_per_bar(
        lambda: Bars.from_columns(
            *columns, count, bar_size="1 min", what_to_show="TRADES", use_rth=False,
            contract=aapl(), start=T0, end=T0, time_zone="US/Eastern",
        ),
        n,
    )  # fmt: skip
    assert per_bar <= 80


def test_bars_memory_from_bars_at_most_80_bytes_per_bar() -> None:
    """100,000 bars built from Bar objects hold at most 80 bytes each once the Bars exist."""
    n = 100_000
    items = [Bar(T0 + dt.timedelta(minutes=i), 1.0, 2.0, 0.5, 1.5, 10.0, 1.2, 4) for i in range(n)]
    per_bar = _held_bytes_per_bar(
        lambda: Bars.from_bars(items, bar_size="1 min", what_to_show="TRADES", use_rth=False), n
    )
    assert per_bar <= 80


def test_bars_repr_is_short() -> None:
    """repr names the contract, bar size, count and time span on one line."""
    text = repr(minute_bars(3))
    assert text == (
        "<Bars AAPL STK SMART USD, 1 min TRADES, RTH, 3 bars, "
        "2025-03-12T13:30:00+00:00 .. 2025-03-12T13:32:00+00:00>"
    )
    assert repr(daily_bars(0, contract=None)) == "<Bars ?, 1 day MIDPOINT, 0 bars>"


def test_bars_to_dicts() -> None:
    """to_dicts gives one dict per bar with the eight keys and None for missing values."""
    rows = daily_bars(2).to_dicts()
    assert rows[0] == {
        "time": dt.date(2025, 3, 10),
        "open": 10.0,
        "high": 11.0,
        "low": 9.0,
        "close": 10.5,
        "volume": None,
        "wap": None,
        "count": None,
    }
    assert len(rows) == 2


def test_bars_to_pandas_intraday() -> None:
    """to_pandas has a UTC DatetimeIndex named time, float64 prices and Int64 counts."""
    pd = pytest.importorskip("pandas")
    df = minute_bars(3).to_pandas()
    assert list(df.columns) == ["open", "high", "low", "close", "volume", "wap", "count"]
    assert df.index.name == "time"
    assert str(df.index.tz) == "UTC"
    assert df.index[0] == pd.Timestamp("2025-03-12 13:30", tz="UTC")
    assert [str(dtype) for dtype in df.dtypes] == [*["float64"] * 4, "Int64", "float64", "Int64"]
    assert df["count"].tolist() == [10, 20, 30]


def test_bars_to_pandas_daily_and_missing_values() -> None:
    """Daily bars index at midnight UTC of the session date; missing values are NA."""
    pd = pytest.importorskip("pandas")
    df = daily_bars(2).to_pandas()
    assert list(df.index) == [
        pd.Timestamp("2025-03-10", tz="UTC"),
        pd.Timestamp("2025-03-11", tz="UTC"),
    ]
    assert df[["volume", "wap", "count"]].isna().all().all()
    assert [str(dtype) for dtype in df.dtypes] == [*["float64"] * 4, "Int64", "float64", "Int64"]


def test_bars_to_pandas_empty() -> None:
    """Empty bars give an empty frame with the same columns and a UTC index."""
    pytest.importorskip("pandas")
    df = minute_bars(0).to_pandas()
    assert len(df) == 0
    assert str(df.index.tz) == "UTC"
    assert list(df.columns) == ["open", "high", "low", "close", "volume", "wap", "count"]


def test_bars_to_pandas_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pandas, to_pandas raises ImportError naming the ``ibdata[pandas]`` extra."""
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'ibdata\[pandas\]'"):
        minute_bars(1).to_pandas()


# --------------------------------------------------------------------------- health
def health(**changes: Any) -> Health:
    fields: dict[str, Any] = {
        "status": "healthy",
        "connected": True,
        "ready": True,
        "host": "127.0.0.1",
        "port": 7497,
        "client_id": 17,
        "server_version": 176,
        "login_time_zone": LoginTimeZone("CST", "Asia/Shanghai", "offset"),
        "accounts": ("DU123456",),
        "farms": {"usfarm": FarmState.OK, "ushmds": "inactive"},
        "last_connectivity_event": ConnectivityEvent(
            1102, "Connectivity restored - data maintained.", utc(2025, 3, 12, 14)
        ),
        "connected_since": utc(2025, 3, 12, 13, 0, 0, 250000),
        "reconnect_count": 1,
        "ibapi_version": "9.81.1",
        "timestamp": utc(2025, 3, 12, 15),
    }
    fields.update(changes)
    return Health(**fields)


def test_health_to_dict_is_json_ready() -> None:
    """to_dict gives JSON-serialisable values: ISO 8601 times with Z, farm state strings."""
    d = health().to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["timestamp"] == "2025-03-12T15:00:00.000Z"  # milliseconds, as error bodies
    assert d["connected_since"] == "2025-03-12T13:00:00.250Z"
    assert d["farms"] == {"usfarm": "ok", "ushmds": "inactive"}
    assert d["accounts"] == ["DU123456"]
    assert d["login_time_zone"] == {"name": "CST", "zone": "Asia/Shanghai", "certainty": "offset"}
    assert d["last_connectivity_event"] == {
        "code": 1102,
        "message": "Connectivity restored - data maintained.",
        "time": "2025-03-12T14:00:00.000Z",
    }


def test_health_to_dict_when_disconnected() -> None:
    """A fresh, disconnected snapshot serialises its unknowns as null."""
    d = health(
        status="disconnected",
        connected=False,
        ready=False,
        client_id=None,
        server_version=None,
        accounts=(),
        farms={},
        last_connectivity_event=None,
        connected_since=None,
        login_time_zone=None,
    ).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["connected_since"] is None
    assert d["login_time_zone"] is None
    assert d["last_connectivity_event"] is None


def test_health_validation() -> None:
    """Unknown statuses, unknown farm states and naive times are refused."""
    with pytest.raises(ValueError, match=r"Health\.status must be one of"):
        health(status="ok")
    with pytest.raises(ValueError, match="not a valid FarmState"):
        health(farms={"usfarm": "fine"})
    with pytest.raises(ValueError, match=r"Health\.timestamp must be timezone-aware"):
        health(timestamp=dt.datetime(2025, 3, 12))
    with pytest.raises(ValueError, match=r"ConnectivityEvent\.time must be timezone-aware"):
        ConnectivityEvent(1100, "lost", dt.datetime(2025, 3, 12))


def test_login_time_zone_is_a_checked_json_ready_record() -> None:
    """A login zone record refuses an unknown certainty and serialises to plain values;
    Health defaults it to None."""
    unknown = LoginTimeZone("Foo Time", None, "unknown")
    assert unknown.to_dict() == {"name": "Foo Time", "zone": None, "certainty": "unknown"}
    with pytest.raises(ValueError, match=r"LoginTimeZone\.certainty must be one of"):
        LoginTimeZone("CST", "America/Chicago", "likely")
    fields = attrs.asdict(health(), recurse=False)
    del fields["login_time_zone"]
    assert Health(**fields).login_time_zone is None


def test_health_is_immutable_and_hashable() -> None:
    """Health snapshots are frozen values; their farm map cannot be changed."""
    h = health()
    assert h == health()
    assert hash(h) == hash(health())
    assert h.farms["ushmds"] is FarmState.INACTIVE
    with pytest.raises(TypeError):
        h.farms["usfarm"] = FarmState.BROKEN  # type: ignore[index]
