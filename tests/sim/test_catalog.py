"""The simulator's contract catalog: static instruments, futures chains and TWS's matching rules."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import itertools
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ibapi.contract import Contract

from ibdata._probe import IbapiProbe, future, stock
from ibdata.sim import FixedClock, Simulator
from ibdata.sim._catalog import (
    NO_EXPIRY_TEXT,
    NOT_FOUND_TEXT,
    Catalog,
    ExpiryRule,
    FutureProduct,
    load_catalog_data,
)
from ibdata.sim._model import ContractQuery, SessionTemplate, SimContract, SimError

UTC = dt.timezone.utc
EUREX_LOCAL = re.compile(r"F[A-Z]{3} (MAR|JUN|SEP|DEC) \d\d")
CODE_LOCAL = re.compile(r"[A-Z]{1,2}[HMUZ]\d")
TODAY = dt.date(2025, 1, 15)

US_PRODUCTS = (
    # (symbol, trading class) of the CME Group futures products, in file order
    *(("ES", "ES"), ("NQ", "NQ"), ("MES", "MES"), ("MNQ", "MNQ"), ("YM", "YM"), ("RTY", "RTY")),
    *(("CL", "CL"), ("NG", "NG"), ("GC", "GC"), ("SI", "SI"), ("SI", "SIL"), ("HG", "HG")),
    *(("EUR", "6E"), ("JPY", "6J"), ("GBP", "6B")),
)

PRODUCTS = {
    # symbol: (exchange, currency, trading class, local symbol of the March 2025 contract)
    "GBL": ("EUREX", "EUR", "FGBL", "FGBL MAR 25"),
    "GBM": ("EUREX", "EUR", "FGBM", "FGBM MAR 25"),
    "GBS": ("EUREX", "EUR", "FGBS", "FGBS MAR 25"),
    "BTP": ("EUREX", "EUR", "FBTP", "FBTP MAR 25"),
    "R": ("ICEEU", "GBP", "R", "RH5"),
    "ZN": ("CBOT", "USD", "ZN", "ZNH5"),
    "ZF": ("CBOT", "USD", "ZF", "ZFH5"),
    "ZB": ("CBOT", "USD", "ZB", "ZBH5"),
}


@pytest.fixture
def catalog() -> Catalog:
    """The default catalog built for ``TODAY``."""
    return Catalog.default(TODAY)


def chain(cat: Catalog, symbol: str) -> list[SimContract]:
    """Every generated future of ``symbol``, oldest first."""
    return sorted(
        (c for c in cat.contracts if c.symbol == symbol and c.sec_type == "FUT"),
        key=lambda c: c.last_trade_date,
    )


def ltd(contract: SimContract) -> dt.date:
    """The last trade date of a future."""
    expiry = contract.expired_on
    assert expiry is not None
    return expiry


def years_before(day: dt.date, years: int) -> dt.date:
    """``day`` moved back ``years`` years (29 February becomes the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def years_after(day: dt.date, years: int) -> dt.date:
    """``day`` moved forward ``years`` years (29 February becomes the 28th)."""
    return years_before(day, -years)


def error_of(fn: object, *args: object) -> SimError:
    """The SimError raised by calling ``fn(*args)``."""
    assert callable(fn)
    with pytest.raises(SimError) as info:
        fn(*args)
    return info.value


def check_chain_invariants(cat: Catalog, today: dt.date) -> None:
    """Assert the chain properties every product must have for ``today``."""
    con_ids = [c.con_id for c in cat.contracts]
    assert len(con_ids) == len(set(con_ids))
    for symbol, (exchange, currency, trading_class, _) in PRODUCTS.items():
        contracts = chain(cat, symbol)
        dates = [ltd(c) for c in contracts]
        assert min(dates) <= years_before(today, 2)
        assert max(dates) >= years_after(today, 1)
        months = [c.contract_month for c in contracts]
        assert len(months) == len(set(months))
        for c in contracts:
            assert int(c.contract_month[4:]) in (3, 6, 9, 12)
            assert c.contract_month == f"{ltd(c):%Y%m}"
            assert ltd(c).weekday() < 5
            assert c.real_expiration_date == c.last_trade_date
            assert (c.exchange, c.currency, c.trading_class) == (exchange, currency, trading_class)
            assert c.valid_exchanges == exchange
            assert c.multiplier == "1000"
            assert c.under_con_id == 0
            assert 100_000_000 <= c.con_id <= 999_999_999
        # quarterly and gapless: consecutive contracts are three months apart
        index = [int(m[:4]) * 12 + int(m[4:]) for m in months]
        assert all(b - a == 3 for a, b in itertools.pairwise(index))


# --- the data file ---------------------------------------------------------------------------


def test_catalog_json_is_package_data() -> None:
    """catalog.json ships inside the ibdata.sim package and is valid JSON."""
    resource = importlib.resources.files("ibdata.sim").joinpath("catalog.json")
    assert resource.is_file()
    assert isinstance(json.loads(resource.read_text("utf-8")), dict)


def test_catalog_json_loads() -> None:
    """The data file yields the seventeen static instruments and the twenty-three futures
    products (the eight bond futures first)."""
    statics, products = load_catalog_data()
    assert [c.local_symbol for c in statics] == [
        *("AAPL", "MSFT", "SPY", "AMZN", "TSLA", "NVDA", "GOOGL", "META", "AMD", "QQQ", "IWM"),
        *("SPX", "NDX", "VIX", "EUR.USD", "GBP.USD", "USD.JPY"),
    ]
    assert [p.symbol for p in products] == [*PRODUCTS, *(s for s, _ in US_PRODUCTS)]
    assert [p.trading_class for p in products][len(PRODUCTS) :] == [t for _, t in US_PRODUCTS]


def test_bad_catalog_data_is_refused() -> None:
    """Malformed JSON and unknown fields raise ValueError naming the problem."""
    with pytest.raises(ValueError, match="not valid JSON"):
        load_catalog_data("{")
    with pytest.raises(ValueError, match="unknown fields"):
        load_catalog_data('{"instruments": [{"con_id": 1, "symbl": "X"}]}')
    with pytest.raises(ValueError, match="top-level"):
        load_catalog_data('{"instrumens": []}')


# --- static instruments --------------------------------------------------------------------


def test_aapl_matches_ib_contract_details(catalog: Catalog) -> None:
    """AAPL carries the field values of IB's real contract details."""
    aapl = catalog.by_con_id(265598)
    assert aapl is not None
    assert (aapl.symbol, aapl.sec_type, aapl.exchange, aapl.currency) == (
        "AAPL",
        "STK",
        "SMART",
        "USD",
    )
    assert aapl.primary_exchange == "NASDAQ"  # every real capture 2022-2026
    assert (aapl.local_symbol, aapl.trading_class, aapl.market_name) == ("AAPL", "NMS", "NMS")
    assert aapl.min_tick == 0.01
    assert aapl.price_magnifier == 1
    assert aapl.long_name == "APPLE INC"
    assert (aapl.industry, aapl.category, aapl.subcategory) == (
        "Technology",
        "Computers",
        "Computers",
    )
    assert aapl.time_zone_id == "US/Eastern"
    assert aapl.valid_exchanges == (
        "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,EDGX,"
        "FOXRIVER,PEARL,NYSENAT,LTSE,MEMX,IBEOS,OVERNIGHT,TPLUS0,PSX,T24X"
    )
    assert aapl.market_rule_ids == ",".join(["26"] * 26)
    assert aapl.order_types.startswith("ACTIVETIM,AD,ADDONT,ADJUST,ALERT,ALGO,")
    assert aapl.order_types.endswith(",WHATIF")
    assert aapl.stock_type == "COMMON"
    assert aapl.sec_ids == (("ISIN", "US0378331005"),)
    assert (aapl.md_size_multiplier, aapl.agg_group) == (1, 1)
    assert (aapl.min_size, aapl.size_increment, aapl.suggested_size_increment) == (
        "0.0001",
        "0.0001",
        "100",
    )
    assert (aapl.under_con_id, aapl.contract_month, aapl.real_expiration_date) == (0, "", "")
    assert (aapl.last_trade_date, aapl.last_trade_time, aapl.multiplier) == ("", "", "")
    assert aapl.trading == SessionTemplate("0400", "2000", early_close="1700")
    assert aapl.liquid == SessionTemplate("0930", "1600", early_close="1300")
    assert aapl.calendar == "NYSE"
    assert aapl.head_timestamp == dt.datetime(1980, 12, 12, 14, 30, tzinfo=UTC)
    assert 150 < aapl.base_price < 300


def test_aapl_trading_hours_text(catalog: Catalog) -> None:
    """AAPL's trading and liquid hours render like IB's, closed on the weekend."""
    aapl = catalog.by_con_id(265598)
    assert aapl is not None
    hours = aapl.trading.hours(aapl.time_zone_id, dt.date(2025, 12, 14), 2)
    assert hours == "20251214:CLOSED;20251215:0400-20251215:2000"
    liquid = aapl.liquid.hours(aapl.time_zone_id, dt.date(2025, 12, 15), 1)
    assert liquid == "20251215:0930-20251215:1600"


@pytest.mark.parametrize(
    ("con_id", "symbol", "sec_type", "exchange", "primary", "isin", "stock_type"),
    [
        (272093, "MSFT", "STK", "SMART", "NASDAQ", "US5949181045", "COMMON"),
        (756733, "SPY", "STK", "SMART", "ARCA", "US78462F1030", "ETF"),
        (12087792, "EUR", "CASH", "IDEALPRO", "", None, ""),
    ],
)
def test_other_static_instruments(
    catalog: Catalog,
    con_id: int,
    symbol: str,
    sec_type: str,
    exchange: str,
    primary: str,
    isin: str | None,
    stock_type: str,
) -> None:
    """MSFT, SPY and EUR.USD carry IB's conIds and identifying fields."""
    c = catalog.by_con_id(con_id)
    assert c is not None
    assert (c.symbol, c.sec_type, c.exchange, c.currency) == (symbol, sec_type, exchange, "USD")
    assert c.primary_exchange == primary
    assert c.stock_type == stock_type
    if isin is not None:
        assert c.sec_ids == (("ISIN", isin),)
    assert c.time_zone_id == "US/Eastern"


def test_index_and_fx_what_to_show(catalog: Catalog) -> None:
    """SPX offers only trades and volatilities; EUR.USD offers quotes but no TRADES."""
    spx = catalog.by_con_id(416904)
    fx = catalog.by_con_id(12087792)
    assert spx is not None
    assert fx is not None
    assert spx.what_to_show == {"TRADES", "HISTORICAL_VOLATILITY", "OPTION_IMPLIED_VOLATILITY"}
    # IB's real SPX: Chicago hours, 08:30-15:00 (New York's 09:30-16:00), 12:00 early closes
    assert spx.trading == spx.liquid == SessionTemplate("0830", "1500", early_close="1200")
    assert spx.time_zone_id == "US/Central"
    assert spx.calendar == "NYSE"
    assert fx.what_to_show == {"MIDPOINT", "BID", "ASK", "BID_ASK"}
    assert (fx.local_symbol, fx.trading_class, fx.min_tick) == ("EUR.USD", "EUR.USD", 0.00005)
    assert fx.trading == SessionTemplate("1715", "1700", (0, 1, 2, 3, 4))
    assert fx.calendar == "IDEALPRO"
    assert 1.0 < fx.base_price < 1.2


# --- futures chains ------------------------------------------------------------------------


def test_chains_cover_two_years_back_and_one_ahead(catalog: Catalog) -> None:
    """Every product has a gapless quarterly chain from 2 years before to 1 year after today."""
    check_chain_invariants(catalog, TODAY)


@pytest.mark.parametrize(
    ("symbol", "month", "expected"),
    [
        ("GBL", "202503", "20250306"),  # delivery Mon 10 March; two exchange days before
        ("GBL", "202506", "20250606"),
        ("GBL", "202509", "20250908"),
        ("GBM", "202412", "20241206"),
        ("ZN", "202503", "20250320"),  # 7 business days before Mon 31 March
        ("ZB", "202503", "20250320"),
        ("ZF", "202503", "20250331"),  # last business day
        ("ZF", "202505", None),  # not a quarterly month
        ("R", "202503", "20250327"),  # 2 business days before the last business day
        ("R", "202506", "20250626"),
    ],
)
def test_last_trade_dates(catalog: Catalog, symbol: str, month: str, expected: str | None) -> None:
    """Last trade dates follow each exchange's rule (holidays ignored)."""
    found = [c for c in chain(catalog, symbol) if c.contract_month == month]
    assert [c.last_trade_date for c in found] == ([] if expected is None else [expected])


@pytest.mark.parametrize(("symbol", "style"), [(s, v[3]) for s, v in PRODUCTS.items()])
def test_local_symbol_style(catalog: Catalog, symbol: str, style: str) -> None:
    """Each product's March 2025 contract has the product's local-symbol style."""
    (march,) = [c for c in chain(catalog, symbol) if c.contract_month == "202503"]
    assert march.local_symbol == style


def test_contract_fields_of_futures(catalog: Catalog) -> None:
    """Futures carry their product's zone, sessions, tick, trade time and realistic prices."""
    bund = catalog.by_con_id(611202503)
    zn = catalog.by_con_id(631202503)
    gilt = catalog.by_con_id(621202503)
    assert bund is not None
    assert zn is not None
    assert gilt is not None
    assert (bund.time_zone_id, bund.last_trade_time, bund.min_tick) == ("MET", "12:30", 0.01)
    assert bund.trading == SessionTemplate("0110", "2200")
    assert (zn.time_zone_id, zn.last_trade_time, zn.min_tick) == ("US/Central", "12:01", 0.015625)
    assert zn.trading == SessionTemplate("1700", "1600")
    assert zn.trading.overnight
    assert zn.liquid == SessionTemplate("0720", "1400")
    assert (gilt.time_zone_id, gilt.last_trade_time) == ("Europe/London", "11:00")
    ticks = {s: chain(catalog, s)[0].min_tick for s in ("ZF", "ZB")}
    assert ticks == {"ZF": 0.0078125, "ZB": 0.03125}
    prices = {s: chain(catalog, s)[0].base_price for s in PRODUCTS}
    assert 120 < prices["GBL"] < 140
    assert 80 < prices["R"] < 100
    assert 100 < prices["ZN"] < 120
    assert bund.what_to_show == {"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"}


def test_head_timestamp_about_nine_months_before_expiry(catalog: Catalog) -> None:
    """A future's bars start at its listing, about nine months before its last trade date."""
    for symbol in PRODUCTS:
        for c in chain(catalog, symbol):
            assert c.head_timestamp.tzinfo is not None
            lead = ltd(c) - c.head_timestamp.date()
            assert dt.timedelta(days=265) <= lead <= dt.timedelta(days=280)


def test_padded_local_symbol_style() -> None:
    """The legacy CBOT style pads the root to four characters, as in ``ZN   SEP 18``."""
    _, products = load_catalog_data()
    zn = next(p for p in products if p.symbol == "ZN")
    legacy = attrs.evolve(zn, local_symbol_style="padded_mon_yy")
    assert legacy.local_symbol(2018, 9) == "ZN   SEP 18"
    with pytest.raises(ValueError, match="local_symbol_style"):
        attrs.evolve(zn, local_symbol_style="weird")


# --- lookup: futures -----------------------------------------------------------------------


def test_fut_without_expiry_returns_only_live_contracts(catalog: Catalog) -> None:
    """A FUT query without expiry returns every live expiry, oldest first."""
    found = catalog.lookup(ContractQuery(symbol="GBL", sec_type="FUT", exchange="EUREX"), TODAY)
    dates = [c.last_trade_date for c in found]
    assert dates == sorted(dates)
    assert all(ltd(c) >= TODAY for c in found)
    assert len(found) == len([c for c in chain(catalog, "GBL") if ltd(c) >= TODAY])
    assert found[0].local_symbol == "FGBL MAR 25"


def test_contract_is_live_on_its_last_trade_date(catalog: Catalog) -> None:
    """On its last trade date a future is still live; the next day it needs include_expired."""
    query = ContractQuery(symbol="ZN", sec_type="FUT", exchange="CBOT", local_symbol="ZNH5")
    assert catalog.lookup(query, dt.date(2025, 3, 20))[0].con_id == 631202503
    assert error_of(catalog.lookup, query, dt.date(2025, 3, 21)).code == 200
    expired = attrs.evolve(query, include_expired=True)
    assert catalog.lookup(expired, dt.date(2025, 3, 21))[0].con_id == 631202503


def test_include_expired_adds_the_last_two_years(catalog: Catalog) -> None:
    """include_expired adds contracts that expired within two years, never older ones."""
    query = ContractQuery(symbol="ZF", sec_type="FUT", exchange="CBOT", include_expired=True)
    found = catalog.lookup(query, TODAY)
    live = catalog.lookup(attrs.evolve(query, include_expired=False), TODAY)
    expired = [c for c in found if ltd(c) < TODAY]
    assert len(found) == len(live) + len(expired)
    assert len(expired) >= 7
    assert all(ltd(c) >= years_before(TODAY, 2) for c in expired)
    older = [c for c in chain(catalog, "ZF") if ltd(c) < years_before(TODAY, 2)]
    assert older
    assert not {c.con_id for c in older} & {c.con_id for c in found}


@pytest.mark.parametrize(
    "expiry", ["202506", "20250606", "20250606 12:30 MET", "20250606-10:30:00", "20250606 12:30"]
)
def test_expiry_forms(catalog: Catalog, expiry: str) -> None:
    """An expiry given as contract month or last trade date (with or without time) matches."""
    query = ContractQuery(
        symbol="GBL", sec_type="FUT", exchange="EUREX", last_trade_date_or_contract_month=expiry
    )
    assert [c.local_symbol for c in catalog.lookup(query, TODAY)] == ["FGBL JUN 25"]


def test_expiry_year_narrows_to_that_year(catalog: Catalog) -> None:
    """A four-digit year returns the live contracts of that year."""
    query = ContractQuery(symbol="ZB", sec_type="FUT", last_trade_date_or_contract_month="2025")
    months = [c.contract_month for c in catalog.lookup(query, TODAY)]
    assert months == ["202503", "202506", "202509", "202512"]


def test_wrong_expiry_is_not_found(catalog: Catalog) -> None:
    """A non-quarterly month, a wrong day or garbage in the expiry finds nothing."""
    for expiry in ("202505", "20250605", "2025-06", "junk"):
        query = ContractQuery(
            symbol="GBL", sec_type="FUT", last_trade_date_or_contract_month=expiry
        )
        assert error_of(catalog.lookup, query, TODAY).text == NOT_FOUND_TEXT


def test_lookup_by_local_symbol_without_symbol(catalog: Catalog) -> None:
    """A local symbol alone (with secType and exchange) identifies one future."""
    query = ContractQuery(sec_type="FUT", exchange="EUREX", local_symbol="FGBM SEP 25")
    (found,) = catalog.lookup(query, TODAY)
    assert (found.symbol, found.trading_class, found.contract_month) == ("GBM", "FGBM", "202509")


def test_trading_class_and_multiplier_filter(catalog: Catalog) -> None:
    """tradingClass and multiplier narrow the match; the multiplier compares as a number."""
    query = ContractQuery(symbol="BTP", sec_type="FUT", trading_class="FBTP", multiplier="1000.0")
    assert catalog.lookup(query, TODAY)
    assert error_of(catalog.lookup, attrs.evolve(query, multiplier="100"), TODAY).code == 200
    assert error_of(catalog.lookup, attrs.evolve(query, trading_class="FGBL"), TODAY).code == 200


@pytest.mark.parametrize(
    "query",
    [
        ContractQuery(symbol="FGBL", sec_type="FUT", exchange="EUREX"),  # trading class as symbol
        ContractQuery(symbol="GBL", sec_type="FUT", exchange="DTB"),  # pre-2022 name
        ContractQuery(symbol="ZN", sec_type="FUT", exchange="ECBOT"),
        ContractQuery(symbol="G", sec_type="FUT", exchange="LIFFE"),
        ContractQuery(symbol="R", sec_type="FUT", exchange="ICEEU", currency="USD"),
        ContractQuery(symbol="NOPE", sec_type="STK", exchange="SMART"),
        ContractQuery(symbol="AAPL", sec_type="OPT", exchange="SMART"),
        ContractQuery(symbol="AAPL", sec_type="STK", strike=200.0, right="C"),
        ContractQuery(sec_type="FUT", exchange="EUREX"),  # names no contract
    ],
)
def test_unknown_contract_is_200(catalog: Catalog, query: ContractQuery) -> None:
    """Unknown symbols, legacy exchange names and mismatched fields give error 200."""
    err = error_of(catalog.lookup, query, TODAY)
    assert (err.code, err.text) == (200, NOT_FOUND_TEXT)
    assert error_of(catalog.resolve, query, TODAY).code == 200


# --- lookup: CONTFUT -----------------------------------------------------------------------


def test_contfut_is_one_copy_of_the_front_month(catalog: Catalog) -> None:
    """CONTFUT returns exactly one entry: the front month with secType CONTFUT."""
    (cont,) = catalog.lookup(
        ContractQuery(symbol="GBL", sec_type="CONTFUT", exchange="EUREX"), TODAY
    )
    front = catalog.front_month("GBL", "EUREX", TODAY)
    assert front is not None
    assert cont.sec_type == "CONTFUT"
    assert (cont.con_id, cont.last_trade_date, cont.local_symbol) == (
        front.con_id,
        front.last_trade_date,
        front.local_symbol,
    )
    assert front.local_symbol == "FGBL MAR 25"
    assert catalog.by_con_id(cont.con_id) == front  # the FUT itself is unchanged
    assert cont.head_timestamp < front.head_timestamp  # continuous history reaches further back


def test_contfut_rolls_after_the_last_trade_date(catalog: Catalog) -> None:
    """The continuous contract switches to the next expiry the day after the last trade date."""
    query = ContractQuery(symbol="ZN", sec_type="CONTFUT", exchange="CBOT")
    assert catalog.resolve(query, dt.date(2025, 3, 20)).local_symbol == "ZNH5"
    assert catalog.resolve(query, dt.date(2025, 3, 21)).local_symbol == "ZNM5"


def test_contfut_ignores_an_echoed_old_front_month(catalog: Catalog) -> None:
    """A CONTFUT query carrying an old front month's conId still resolves today's front."""
    query = ContractQuery(con_id=611202412, sec_type="CONTFUT", exchange="EUREX")
    resolved = catalog.resolve(query, TODAY)
    assert (resolved.sec_type, resolved.local_symbol) == ("CONTFUT", "FGBL MAR 25")


def test_fut_plus_contfut(catalog: Catalog) -> None:
    """FUT+CONTFUT returns the live futures followed by the continuous entry."""
    found = catalog.lookup(
        ContractQuery(symbol="GBL", sec_type="FUT+CONTFUT", exchange="EUREX"), TODAY
    )
    assert [c.sec_type for c in found][-1] == "CONTFUT"
    assert all(c.sec_type == "FUT" for c in found[:-1])
    assert (
        error_of(catalog.resolve, ContractQuery(symbol="GBL", sec_type="FUT+CONTFUT"), TODAY).code
        == 200
    )


# --- lookup: conId and stocks --------------------------------------------------------------


def test_lookup_by_con_id(catalog: Catalog) -> None:
    """A conId alone finds its contract; other given fields must agree."""
    assert [c.symbol for c in catalog.lookup(ContractQuery(con_id=265598), TODAY)] == ["AAPL"]
    ok = ContractQuery(con_id=265598, symbol="AAPL", sec_type="STK", currency="USD")
    assert catalog.resolve(ok, TODAY).con_id == 265598
    wrong = ContractQuery(con_id=265598, symbol="MSFT")
    assert error_of(catalog.lookup, wrong, TODAY).code == 200
    assert error_of(catalog.lookup, ContractQuery(con_id=1), TODAY).code == 200


def test_con_id_with_a_valid_exchange(catalog: Catalog) -> None:
    """A conId asked on one of its valid exchanges comes back on that exchange."""
    (on_nasdaq,) = catalog.lookup(ContractQuery(con_id=265598, exchange="NASDAQ"), TODAY)
    assert on_nasdaq.exchange == "NASDAQ"
    assert on_nasdaq.primary_exchange == "NASDAQ"
    assert (
        error_of(catalog.lookup, ContractQuery(con_id=265598, exchange="EUREX"), TODAY).code == 200
    )


def test_expired_con_id_needs_include_expired(catalog: Catalog) -> None:
    """An expired future's conId is found only with include_expired, and only for two years."""
    recent, old = 611202412, 611202212  # Dec 2024 and Dec 2022 Bunds
    assert error_of(catalog.resolve, ContractQuery(con_id=recent), TODAY).code == 200
    assert (
        catalog.resolve(ContractQuery(con_id=recent, include_expired=True), TODAY).con_id == recent
    )
    assert catalog.by_con_id(old) is not None
    err = error_of(catalog.resolve, ContractQuery(con_id=old, include_expired=True), TODAY)
    assert (err.code, err.text) == (200, NOT_FOUND_TEXT)


def test_stock_lookup_and_aliases(catalog: Catalog) -> None:
    """SMART finds SMART stocks; NASDAQ and ISLAND name the same primary exchange; ISIN works."""
    query = ContractQuery(symbol="AAPL", sec_type="STK", exchange="SMART", currency="USD")
    assert catalog.resolve(query, TODAY).con_id == 265598
    for name in ("NASDAQ", "ISLAND"):
        named = attrs.evolve(query, primary_exchange=name)
        assert catalog.resolve(named, TODAY).con_id == 265598
    by_isin = ContractQuery(sec_id_type="ISIN", sec_id="US5949181045", exchange="SMART")
    assert catalog.resolve(by_isin, TODAY).symbol == "MSFT"
    assert error_of(catalog.lookup, attrs.evolve(query, exchange="EUREX"), TODAY).code == 200


def test_nasdaq_name_setting() -> None:
    """Catalog.default reports NASDAQ for NASDAQ stocks, or ISLAND (TWS's compatibility
    mode) when asked; queries may use either name."""
    cat = Catalog.default(TODAY, nasdaq_name="ISLAND")
    msft = cat.by_con_id(272093)
    assert msft is not None
    assert msft.primary_exchange == "ISLAND"
    assert "ISLAND" in msft.valid_exchanges.split(",")
    assert "NASDAQ" not in msft.valid_exchanges.split(",")
    query = ContractQuery(
        symbol="MSFT", sec_type="STK", exchange="SMART", primary_exchange="NASDAQ"
    )
    assert cat.resolve(query, TODAY).con_id == 272093
    with pytest.raises(ValueError, match="nasdaq_name"):
        Catalog.default(TODAY, nasdaq_name="NYSE")


# --- resolve -------------------------------------------------------------------------------


def test_resolve_future_without_expiry_is_321(catalog: Catalog) -> None:
    """resolve() refuses a future given without expiry or local symbol with error 321."""
    for query in (
        ContractQuery(symbol="ZN", sec_type="FUT", exchange="CBOT"),
        ContractQuery(symbol="ZN"),
    ):
        err = error_of(catalog.resolve, query, TODAY)
        assert (err.code, err.text) == (321, NO_EXPIRY_TEXT)
    assert NO_EXPIRY_TEXT == (
        "Error validating request.-'bS' : cause - Please enter a local symbol or an expiry"
    )


def test_resolve_ambiguous_is_200(catalog: Catalog) -> None:
    """resolve() answers several non-future matches with the ambiguity form of error 200."""
    catalog.add(
        SimContract(
            con_id=900_000_001,
            symbol="AAPL",
            sec_type="STK",
            exchange="MEXI",
            currency="MXN",
            local_symbol="AAPL",
            valid_exchanges="MEXI",
        )
    )
    query = ContractQuery(symbol="AAPL", sec_type="STK")
    assert len(catalog.lookup(query, TODAY)) == 2  # not an error for contract details
    err = error_of(catalog.resolve, query, TODAY)
    assert (err.code, err.text) == (
        200,
        "The contract description specified for AAPL is ambiguous.",
    )
    assert catalog.resolve(attrs.evolve(query, currency="MXN"), TODAY).con_id == 900_000_001


def test_resolve_future_by_expiry_and_by_local_symbol(catalog: Catalog) -> None:
    """A future with an expiry or a local symbol resolves to exactly one contract."""
    by_month = ContractQuery(
        symbol="R", sec_type="FUT", exchange="ICEEU", last_trade_date_or_contract_month="202509"
    )
    by_local = ContractQuery(sec_type="FUT", exchange="ICEEU", currency="GBP", local_symbol="RU5")
    assert catalog.resolve(by_month, TODAY) == catalog.resolve(by_local, TODAY)


# --- add, growth, threads ------------------------------------------------------------------


def test_add_refuses_duplicate_con_id(catalog: Catalog) -> None:
    """add() refuses a conId that is already taken, and non-positive conIds."""
    aapl = catalog.by_con_id(265598)
    assert aapl is not None
    with pytest.raises(ValueError, match="duplicate con_id 265598"):
        catalog.add(attrs.evolve(aapl, symbol="AAPL2"))
    with pytest.raises(ValueError, match="positive"):
        catalog.add(attrs.evolve(aapl, con_id=0))


def test_add_makes_a_contract_findable() -> None:
    """A contract added to an empty catalog is found by lookup and listed in contracts."""
    cat = Catalog()
    ibm = SimContract(
        con_id=8314,
        symbol="IBM",
        sec_type="STK",
        exchange="SMART",
        currency="USD",
        local_symbol="IBM",
        primary_exchange="NYSE",
        valid_exchanges="SMART,NYSE",
    )
    cat.add(ibm)
    assert cat.contracts == (ibm,)
    assert cat.resolve(ContractQuery(symbol="IBM", exchange="SMART"), TODAY) == ibm
    assert cat.front_month("IBM", "SMART", TODAY) is None


def test_generated_con_ids_do_not_collide_with_statics(catalog: Catalog) -> None:
    """Generated 9-digit conIds never equal a static instrument's conId."""
    statics, _ = load_catalog_data()
    static_ids = {c.con_id for c in statics}
    futures = [c for c in catalog.contracts if c.sec_type == "FUT"]
    assert futures
    assert not static_ids & {c.con_id for c in futures}


def test_chains_grow_when_today_moves() -> None:
    """A catalog asked about a date years later extends its chains to that date."""
    cat = Catalog.default(TODAY)
    later = dt.date(2029, 8, 1)
    found = cat.lookup(ContractQuery(symbol="GBS", sec_type="FUT"), later)
    assert found[0].contract_month == "202909"
    assert len(found) >= 4
    check_chain_invariants(cat, later)
    check_chain_invariants(cat, TODAY)


def test_concurrent_reads_and_adds() -> None:
    """Lookups from several threads run safely while another thread adds contracts."""
    cat = Catalog.default(TODAY)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(200):
                assert cat.resolve(ContractQuery(symbol="ZB", sec_type="CONTFUT"), TODAY)
                assert cat.lookup(ContractQuery(symbol="AAPL", exchange="SMART"), TODAY)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def write() -> None:
        for i in range(200):
            cat.add(
                SimContract(
                    con_id=800_000_000 + i,
                    symbol=f"X{i}",
                    sec_type="STK",
                    exchange="SMART",
                    currency="USD",
                    local_symbol=f"X{i}",
                )
            )

    threads = [threading.Thread(target=read) for _ in range(4)] + [threading.Thread(target=write)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cat.by_con_id(800_000_199) is not None


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(today=st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 12, 31)))
def test_chain_invariants_for_any_today(today: dt.date) -> None:
    """For any date in 2020 to 2030 the chains hold and CONTFUT is the nearest live expiry."""
    cat = Catalog.default(today)
    check_chain_invariants(cat, today)
    for symbol, (exchange, *_rest) in PRODUCTS.items():
        live = [c for c in chain(cat, symbol) if ltd(c) >= today]
        cont = cat.resolve(
            ContractQuery(symbol=symbol, sec_type="CONTFUT", exchange=exchange), today
        )
        assert cont.sec_type == "CONTFUT"
        assert cont.con_id == live[0].con_id
        found = cat.lookup(ContractQuery(symbol=symbol, sec_type="FUT"), today)
        assert [c.con_id for c in found] == [c.con_id for c in live]
        pattern = EUREX_LOCAL if exchange == "EUREX" else CODE_LOCAL
        assert all(pattern.fullmatch(c.local_symbol) for c in found)


def test_future_product_refuses_bad_definitions() -> None:
    """FutureProduct validates months, conId prefix and expiry rule."""
    _, products = load_catalog_data()
    bund: FutureProduct = products[0]
    with pytest.raises(ValueError, match="months"):
        attrs.evolve(bund, months="HX1")
    with pytest.raises(ValueError, match="con_id_prefix"):
        attrs.evolve(bund, con_id_prefix=5)
    with pytest.raises(ValueError, match="does not list"):
        bund.contract(2025, 5)


# --- the instruments of public IB examples, with IB's real facts ---------------------------

#: A Wednesday in June 2026: ESM6 is still the front month and ESZ6 is listed.
JUNE_2026 = dt.datetime(2026, 6, 10, 15, 0, tzinfo=UTC)


def contract(**fields: Any) -> Contract:
    """An ibapi ``Contract`` with the given attributes."""
    c = Contract()
    for name, value in fields.items():
        setattr(c, name, value)
    return c


def index(symbol: str, exchange: str) -> Contract:
    """An ibapi ``Contract`` for an index."""
    return contract(symbol=symbol, secType="IND", exchange=exchange, currency="USD")


def cash(symbol: str, currency: str) -> Contract:
    """An ibapi ``Contract`` for a currency pair on IDEALPRO."""
    return contract(symbol=symbol, secType="CASH", exchange="IDEALPRO", currency=currency)


def silver(trading_class: str) -> Contract:
    """An ibapi ``Contract`` for the September 2026 COMEX silver future of one trading class."""
    c = future("SI", "COMEX", "USD", "202609")
    c.tradingClass = trading_class
    return c


def details_over_ibapi(sim: Simulator, query: Contract) -> Any:
    """The one ContractDetails IB's client reads from the simulator for ``query``."""
    with IbapiProbe(sim.host, sim.port, client_id=7) as ib:
        (details,) = ib.contract_details(query)
    return details


# (query, conId, exchange, primaryExchange, longName, minTick, multiplier, timeZoneId,
#  tradingClass); the facts are IB's (see the simulator guide for sources and the guesses)
STATIC_FACTS = [
    (stock("AMZN"), 3691937, "SMART", "NASDAQ", "AMAZON.COM INC", 0.01, "", "US/Eastern", "NMS"),
    (stock("TSLA"), 76792991, "SMART", "NASDAQ", "TESLA INC", 0.01, "", "US/Eastern", "NMS"),
    (stock("NVDA"), 4815747, "SMART", "NASDAQ", "NVIDIA CORP", 0.01, "", "US/Eastern", "NMS"),
    (
        stock("GOOGL"),
        208813719,
        "SMART",
        "NASDAQ",
        "ALPHABET INC-CL A",
        0.01,
        "",
        "US/Eastern",
        "NMS",
    ),
    (
        stock("META"),
        107113386,
        "SMART",
        "NASDAQ",
        "META PLATFORMS INC-CLASS A",
        0.01,
        "",
        "US/Eastern",
        "NMS",
    ),
    (
        stock("AMD"),
        4391,
        "SMART",
        "NASDAQ",
        "ADVANCED MICRO DEVICES",
        0.01,
        "",
        "US/Eastern",
        "NMS",
    ),
    (
        stock("QQQ"),
        320227571,
        "SMART",
        "NASDAQ",
        "INVESCO QQQ TRUST SERIES 1",
        0.01,
        "",
        "US/Eastern",
        "NMS",
    ),
    (
        stock("IWM"),
        9579970,
        "SMART",
        "ARCA",
        "ISHARES RUSSELL 2000 ETF",
        0.01,
        "",
        "US/Eastern",
        "IWM",
    ),
    (index("SPX", "CBOE"), 416904, "CBOE", "", "S&P 500 Stock Index", 0.01, "", "US/Central", ""),
    (
        index("NDX", "NASDAQ"),
        416843,
        "NASDAQ",
        "",
        "NASDAQ 100 Stock Index",
        0.01,
        "",
        "US/Eastern",
        "",
    ),
    (
        index("VIX", "CBOE"),
        13455763,
        "CBOE",
        "",
        "CBOE Volatility Index",
        0.01,
        "",
        "US/Central",
        "",
    ),
    (
        cash("EUR", "USD"),
        12087792,
        "IDEALPRO",
        "",
        "European Monetary Union Euro",
        0.00005,
        "",
        "US/Eastern",
        "EUR.USD",
    ),
    (
        cash("GBP", "USD"),
        12087797,
        "IDEALPRO",
        "",
        "British pound",
        0.00005,
        "",
        "US/Eastern",
        "GBP.USD",
    ),
    (
        cash("USD", "JPY"),
        15016059,
        "IDEALPRO",
        "",
        "United States dollar",
        0.005,
        "",
        "US/Eastern",
        "USD.JPY",
    ),
]


@pytest.mark.parametrize(
    ("query", "con_id", "exchange", "primary", "long_name", "tick", "mult", "zone", "klass"),
    STATIC_FACTS,
    ids=[f"{q.symbol}-{q.secType}" for q, *_ in STATIC_FACTS],
)
def test_static_instruments_over_the_socket(
    sim_factory: Callable[..., Simulator],
    query: Contract,
    con_id: int,
    exchange: str,
    primary: str,
    long_name: str,
    tick: float,
    mult: str,
    zone: str,
    klass: str,
) -> None:
    """Stocks, ETFs, indices and pairs of public IB examples reach IB's client with IB's
    conId, exchanges, long name, tick, multiplier, zone and trading class."""
    d = details_over_ibapi(sim_factory(clock=FixedClock(JUNE_2026)), query)
    c = d.contract
    assert (c.conId, c.symbol, c.secType, c.currency) == (
        con_id,
        query.symbol,
        query.secType,
        query.currency,
    )
    assert (c.exchange, c.primaryExchange) == (exchange, primary)
    assert (d.longName, d.minTick, c.multiplier, d.timeZoneId) == (long_name, tick, mult, zone)
    assert (c.tradingClass, d.marketName) == (klass, klass)
    assert (d.underConId, d.underSymbol, d.underSecType) == (0, "", "")


def test_stock_facts_of_the_new_names(catalog: Catalog) -> None:
    """The new stocks carry IB's industry trio, ISIN and stock type; ETFs have no industry."""
    facts = {
        "AMZN": ("Communications", "Internet", "E-Commerce/Products", "US0231351067", "COMMON"),
        "TSLA": (
            "Consumer, Cyclical",
            "Auto Manufacturers",
            "Auto-Cars/Light Trucks",
            "US88160R1014",
            "COMMON",
        ),
        "AMD": (
            "Technology",
            "Semiconductors",
            "Electronic Compo-Semicon",
            "US0079031078",
            "COMMON",
        ),
        "GOOGL": ("Communications", "Internet", "Web Portals/ISP", "US02079K3059", "COMMON"),
        "QQQ": ("", "", "", "US46090E1038", "ETF"),
        "IWM": ("", "", "", "US4642876555", "ETF"),
    }
    for symbol, (industry, category, sub, isin, kind) in facts.items():
        c = catalog.resolve(ContractQuery(symbol=symbol, sec_type="STK", exchange="SMART"), TODAY)
        assert (c.industry, c.category, c.subcategory) == (industry, category, sub), symbol
        assert (c.sec_ids, c.stock_type) == ((("ISIN", isin),), kind), symbol
        assert c.market_rule_ids == ",".join(["26"] * 26)


def test_spx_has_ibs_real_fields(sim_factory: Callable[..., Simulator]) -> None:
    """SPX reaches IB's client as IB sends it: market rule 25, Chicago hours 08:30-15:00,
    no trading class, industry Indices."""
    d = details_over_ibapi(sim_factory(clock=FixedClock(JUNE_2026)), index("SPX", "CBOE"))
    assert (d.marketRuleIds, d.timeZoneId, d.contract.tradingClass) == ("25", "US/Central", "")
    assert (d.industry, d.category, d.subcategory) == (
        "Indices",
        "Broad Range Equity Index",
        "*",
    )
    assert "20260610:0830-20260610:1500" in d.liquidHours.split(";")
    assert d.aggGroup == 2147483647


# (query, conId, localSymbol, last trade date, longName, minTick, multiplier, zone,
#  tradingClass, underlying) at JUNE_2026; generated conIds are prefix * 1e6 + YYYYMM
FUTURE_FACTS = [
    (future("ES", "CME", "USD", "202612"), 515416632, "ESZ6", "20261218", "E-mini S&P 500",
     0.25, "50", "US/Central", "ES", (11004968, "ES", "IND")),
    (future("ES", "CME", "USD", "202606"), 649180678, "ESM6", "20260618", "E-mini S&P 500",
     0.25, "50", "US/Central", "ES", (11004968, "ES", "IND")),
    (future("NQ", "CME", "USD", "202609"), 770561204, "NQU6", "20260918", "E-mini NASDAQ 100 ",
     0.25, "20", "US/Central", "NQ", (11004958, "NQ", "IND")),
    (future("MES", "CME", "USD", "202609"), 643202609, "MESU6", "20260918",
     "Micro E-Mini S&P 500 Stock Price Index", 0.25, "5", "US/Central", "MES",
     (362673777, "MES", "IND")),
    (future("MNQ", "CME", "USD", "202612"), 644202612, "MNQZ6", "20261218",
     "Micro E-Mini Nasdaq-100 Index", 0.25, "2", "US/Central", "MNQ", (362687422, "MNQ", "IND")),
    (future("YM", "CBOT", "USD", "202609"), 645202609, "YMU6", "20260918",
     "E-mini Dow Jones Industrial Average", 1.0, "5", "US/Central", "YM", (0, "YM", "IND")),
    (future("RTY", "CME", "USD", "202609"), 646202609, "RTYU6", "20260918",
     "E-mini Russell 2000 Index", 0.1, "50", "US/Central", "RTY", (0, "RTY", "IND")),
    (future("CL", "NYMEX", "USD", "202612"), 651202612, "CLZ6", "20261120",
     "Light Sweet Crude Oil", 0.01, "1000", "US/Eastern", "CL", (17340715, "CL", "IND")),
    (future("NG", "NYMEX", "USD", "202608"), 652202608, "NGQ6", "20260729",
     "Henry Hub Natural Gas", 0.001, "10000", "US/Eastern", "NG", (0, "NG", "IND")),
    (future("GC", "COMEX", "USD", "202608"), 732156872, "GCQ6", "20260827", "Gold",
     0.1, "100", "US/Eastern", "GC", (17340718, "GC", "IND")),
    (future("GC", "COMEX", "USD", "202612"), 462941472, "GCZ6", "20261229", "Gold",
     0.1, "100", "US/Eastern", "GC", (17340718, "GC", "IND")),
    (silver("SI"), 662202609,
     "SIU6", "20260928", "Silver", 0.005, "5000", "US/Eastern", "SI", (0, "SI", "IND")),
    (silver("SIL"), 663202609,
     "SILU6", "20260928", "Silver", 0.005, "1000", "US/Eastern", "SIL", (0, "SI", "IND")),
    (future("HG", "COMEX", "USD", "202609"), 664202609, "HGU6", "20260928", "Copper",
     0.0005, "25000", "US/Eastern", "HG", (36557087, "HG", "IND")),
    (future("EUR", "CME", "USD", "202609"), 671202609, "6EU6", "20260914",
     "European Monetary Union Euro", 0.00005, "125000", "US/Central", "6E",
     (12087792, "EUR", "CASH")),
    (future("JPY", "CME", "USD", "202609"), 672202609, "6JU6", "20260914", "Japanese yen",
     0.0000005, "12500000", "US/Central", "6J", (0, "", "")),
    (future("GBP", "CME", "USD", "202609"), 673202609, "6BU6", "20260914", "British pound",
     0.0001, "62500", "US/Central", "6B", (12087797, "GBP", "CASH")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "con_id", "local", "last", "long_name", "tick", "mult", "zone", "klass", "under"),
    FUTURE_FACTS,
    ids=[f"{fact[2]}" for fact in FUTURE_FACTS],
)
def test_futures_over_the_socket(
    sim_factory: Callable[..., Simulator],
    query: Contract,
    con_id: int,
    local: str,
    last: str,
    long_name: str,
    tick: float,
    mult: str,
    zone: str,
    klass: str,
    under: tuple[int, str, str],
) -> None:
    """CME Group futures reach IB's client with IB's conId (where known), local symbol, last
    trade date, long name, tick, multiplier, zone, trading class and underlying."""
    d = details_over_ibapi(sim_factory(clock=FixedClock(JUNE_2026)), query)
    c = d.contract
    assert (c.conId, c.localSymbol, c.lastTradeDateOrContractMonth) == (con_id, local, last)
    assert (c.symbol, c.secType, c.exchange, c.primaryExchange) == (
        query.symbol,
        "FUT",
        query.exchange,
        "",
    )
    assert (d.longName, d.minTick, c.multiplier, d.timeZoneId) == (long_name, tick, mult, zone)
    month = query.lastTradeDateOrContractMonth
    assert (c.tradingClass, d.marketName, d.contractMonth) == (klass, klass, month)
    assert (d.underConId, d.underSymbol, d.underSecType) == under
    assert d.validExchanges == f"{query.exchange},QBALGO"
    assert d.aggGroup == 2147483647


def product(symbol: str, trading_class: str = "") -> FutureProduct:
    """The packaged futures product of ``symbol`` (and ``trading_class``, default the symbol)."""
    _, products = load_catalog_data()
    (found,) = [
        p for p in products if (p.symbol, p.trading_class) == (symbol, trading_class or symbol)
    ]
    return found


@pytest.mark.parametrize(
    ("symbol", "trading_class", "year", "month", "expected"),
    [
        ("ES", "ES", 2025, 6, "20250620"),  # a recorded ESM5: 3rd Friday
        ("ES", "ES", 2025, 12, "20251219"),  # ESZ5, recorded expiry-day hours
        ("ES", "ES", 2026, 6, "20260618"),  # Juneteenth is the 3rd Friday: Thursday
        ("NQ", "NQ", 2026, 6, "20260618"),
        ("MNQ", "MNQ", 2026, 6, "20260618"),
        ("ES", "ES", 2026, 12, "20261218"),
        ("CL", "CL", 2023, 12, "20231120"),  # 25 Nov is a Saturday: 4 business days before,
        # Thanksgiving not counted (CLZ3, recorded)
        ("CL", "CL", 2024, 12, "20241120"),  # 25 Nov a Monday: 3 business days before
        ("GC", "GC", 2025, 4, "20250428"),  # third-last business day (GCJ5, recorded)
        ("GC", "GC", 2025, 6, "20250626"),  # GCM5
        ("GC", "GC", 2025, 12, "20251229"),  # GCZ5
        ("JPY", "6J", 2024, 9, "20240916"),  # 2 business days before the 3rd Wednesday (6JU4)
    ],
)
def test_last_trade_dates_of_us_futures(
    symbol: str, trading_class: str, year: int, month: int, expected: str
) -> None:
    """CME Group last trade dates follow each product's rule, as IB reported these months."""
    c = product(symbol, trading_class).contract(year, month)
    assert c.last_trade_date == expected == c.real_expiration_date
    assert c.contract_month == f"{year:04d}{month:02d}"


@pytest.mark.parametrize(
    ("symbol", "trading_class", "local", "con_id"),
    [
        ("ES", "ES", "ESM5", 620731015),
        ("ES", "ES", "ESZ6", 515416632),
        ("ES", "ES", "ESZ0", 815824241),  # December 2030
        ("NQ", "NQ", "NQZ5", 563947738),
        ("MES", "MES", "MESM5", 691171673),
        ("MNQ", "MNQ", "MNQM5", 691171685),
        ("YM", "YM", "YMZ4", 672387412),
        ("RTY", "RTY", "RTYU1", 428520008),
        ("CL", "CL", "CLZ3", 174230596),
        ("GC", "GC", "GCM5", 372852975),
        ("GC", "GC", "GCF6", 760200558),
        ("SI", "SIL", "SILN5", 719262093),
        ("JPY", "6J", "6JU4", 383308433),
    ],
)
def test_recorded_contracts_keep_ibs_con_ids(
    symbol: str, trading_class: str, local: str, con_id: int
) -> None:
    """A month IB's conId was recorded for gets that conId, with IB's local symbol."""
    p = product(symbol, trading_class)
    code, digit = local[-2], int(local[-1])
    year = (2030 if digit == 0 else 2020 + digit) if symbol == "ES" else 2020 + digit
    c = p.contract(year, "FGHJKMNQUVXZ".index(code) + 1)
    assert (c.local_symbol, c.con_id) == (local, con_id)


def test_cme_group_months(catalog: Catalog) -> None:
    """Equity-index and currency futures list H, M, U, Z; CL, NG, GC, SI and HG every month;
    CL's and NG's last trade falls in the month before the contract month."""
    for symbol, klass, months in (("ES", "", "HMUZ"), ("EUR", "6E", "HMUZ"), ("GBP", "6B", "HMUZ")):
        assert product(symbol, klass).months == months
    for symbol in ("CL", "NG", "GC", "SI", "HG"):
        assert product(symbol).months == "FGHJKMNQUVXZ"
    for symbol in ("CL", "GC"):
        found = catalog.lookup(ContractQuery(symbol=symbol, sec_type="FUT"), TODAY)
        index = [int(c.contract_month[:4]) * 12 + int(c.contract_month[4:]) for c in found]
        assert len(found) >= 12
        assert all(b - a == 1 for a, b in itertools.pairwise(index))
        for c in found:
            before = int(c.contract_month[:4]) * 12 + int(c.contract_month[4:]) - 1
            lag = before - (ltd(c).year * 12 + ltd(c).month - 1)
            assert lag == (1 if symbol == "CL" else 0), c.local_symbol


def test_es_chain_over_the_socket(sim_factory: Callable[..., Simulator]) -> None:
    """A chain request (symbol, FUT, CME) lists ES's live quarterly months, oldest first,
    each with IB's recorded conId, five years ahead (a real sv-200 answer of April 2026 held
    21 expiries): every recorded month from ESM6 to ESZ0 of 2030."""
    sim = sim_factory(clock=FixedClock(JUNE_2026))
    with IbapiProbe(sim.host, sim.port, client_id=7) as ib:
        found = ib.contract_details(contract(symbol="ES", secType="FUT", exchange="CME"))
    got = [(d.contract.localSymbol, d.contract.conId) for d in found]
    assert got[:6] == [
        ("ESM6", 649180678),
        ("ESU6", 649180671),
        ("ESZ6", 515416632),
        ("ESH7", 649180684),
        ("ESM7", 649180661),
        ("ESU7", 649180681),
    ]
    assert ("ESZ0", 815824241) in got  # December 2030
    assert len(got) >= 21
    assert {d.underConId for d in found} == {11004968}


def test_gc_chain_over_the_socket(sim_factory: Callable[..., Simulator]) -> None:
    """A COMEX gold chain lists consecutive months from the front one, with recorded conIds."""
    sim = sim_factory(clock=FixedClock(JUNE_2026))
    with IbapiProbe(sim.host, sim.port, client_id=7) as ib:
        found = ib.contract_details(contract(symbol="GC", secType="FUT", exchange="COMEX"))
    locals_ = [d.contract.localSymbol for d in found]
    assert locals_[:8] == ["GCM6", "GCN6", "GCQ6", "GCU6", "GCV6", "GCX6", "GCZ6", "GCF7"]
    assert [d.contract.conId for d in found[:7]] == [
        430360630,
        760200536,
        732156872,
        760200565,
        744880148,
        760200541,
        462941472,
    ]


def test_silver_without_trading_class_is_ambiguous(catalog: Catalog) -> None:
    """SI names two products (SI of 5000 oz and SIL of 1000 oz): a bar request needs the
    trading class or the multiplier, as on IB."""
    query = ContractQuery(
        symbol="SI", sec_type="FUT", exchange="COMEX", last_trade_date_or_contract_month="202509"
    )
    assert [c.trading_class for c in catalog.lookup(query, TODAY)] == ["SI", "SIL"]
    err = error_of(catalog.resolve, query, TODAY)
    assert (err.code, err.text) == (200, "The contract description specified for SI is ambiguous.")
    assert catalog.resolve(attrs.evolve(query, multiplier="1000"), TODAY).trading_class == "SIL"


def test_generated_con_ids_never_equal_a_real_one() -> None:
    """No generated conId of any product, in any month of 1990-2099, equals a real conId of
    the catalog (static instruments and recorded futures months)."""
    statics, products = load_catalog_data()
    real = [c.con_id for c in statics] + [i for p in products for _, i in p.con_ids]
    assert len(real) == len(set(real))
    generated = {
        p.generated_con_id(year, month)
        for p in products
        for year in range(1990, 2100)
        for month in p.month_numbers
    }
    assert not generated & set(real)
    cat = Catalog.default(TODAY)
    ids = [c.con_id for c in cat.contracts]
    assert len(ids) == len(set(ids))


def test_loader_refuses_real_con_ids_of_the_generated_form() -> None:
    """A recorded conId that looks generated, or one given twice, is refused at load time."""
    raw = json.loads(
        importlib.resources.files("ibdata.sim").joinpath("catalog.json").read_text("utf-8")
    )
    es = next(f for f in raw["futures"] if f["symbol"] == "ES")
    es["con_ids"]["202703"] = 631202703  # ZN's generated form
    with pytest.raises(ValueError, match="form of a generated conId"):
        load_catalog_data(json.dumps(raw))
    es["con_ids"]["202703"] = 265598  # AAPL's
    with pytest.raises(ValueError, match="265598"):
        load_catalog_data(json.dumps(raw))
    es["con_ids"]["202704"] = 1  # not a listed month
    with pytest.raises(ValueError, match="not a listed month"):
        load_catalog_data(json.dumps(raw))


def test_expiry_rules_refuse_bad_values() -> None:
    """ExpiryRule validates its rule, weekday, week number, day and month offset."""
    for bad, match in (
        ({"rule": "third_friday"}, "unknown expiry rule"),
        ({"rule": "nth_weekday", "weekday": 5}, "weekday"),
        ({"rule": "nth_weekday", "nth": 5}, "nth"),
        ({"rule": "before_calendar_day", "day": 31}, "day"),
        ({"rule": "before_calendar_day", "month_offset": 1}, "month_offset"),
    ):
        with pytest.raises(ValueError, match=match):
            ExpiryRule(business_days_before=0, **bad)
    rule = ExpiryRule(rule="nth_weekday", weekday=4, nth=3, business_days_before=0)
    assert rule.last_trade_date(2026, 6) == dt.date(2026, 6, 19)  # no calendar: Juneteenth
    assert rule.last_trade_date(2026, 6, "CME") == dt.date(2026, 6, 18)
