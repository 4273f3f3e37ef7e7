"""Exchange calendars of the simulator: holidays by rule, early closes, and where they show."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import attrs
import pytest

from ibdata._probe import IbapiProbe, future, stock
from ibdata.sim import Catalog, FixedClock, SessionTemplate, SimContract, Simulator
from ibdata.sim._bars import head_timestamp
from ibdata.sim._calendar import (
    CALENDARS,
    NYSE_SPECIAL_CLOSURES,
    default_calendar,
    easter_sunday,
    get_calendar,
)
from ibdata.sim._catalog import ExpiryRule, load_catalog_data

UTC = dt.timezone.utc


def dates(*texts: str) -> set[dt.date]:
    """ISO dates as a set of ``datetime.date``."""
    return {dt.date.fromisoformat(t) for t in texts}


#: Full-day closures published by NYSE for 2023-2026 (including the 2025 day of mourning).
NYSE_REAL = {
    2023: dates(
        "2023-01-02",
        "2023-01-16",
        "2023-02-20",
        "2023-04-07",
        "2023-05-29",
        "2023-06-19",
        "2023-07-04",
        "2023-09-04",
        "2023-11-23",
        "2023-12-25",
    ),
    2024: dates(
        "2024-01-01",
        "2024-01-15",
        "2024-02-19",
        "2024-03-29",
        "2024-05-27",
        "2024-06-19",
        "2024-07-04",
        "2024-09-02",
        "2024-11-28",
        "2024-12-25",
    ),
    2025: dates(
        "2025-01-01",
        "2025-01-09",
        "2025-01-20",
        "2025-02-17",
        "2025-04-18",
        "2025-05-26",
        "2025-06-19",
        "2025-07-04",
        "2025-09-01",
        "2025-11-27",
        "2025-12-25",
    ),
    2026: dates(
        "2026-01-01",
        "2026-01-19",
        "2026-02-16",
        "2026-04-03",
        "2026-05-25",
        "2026-06-19",
        "2026-07-03",
        "2026-09-07",
        "2026-11-26",
        "2026-12-25",
    ),
}

#: Eurex trading calendars 2023-2026 (weekday closures).
EUREX_REAL = {
    2023: dates("2023-04-07", "2023-04-10", "2023-05-01", "2023-12-25", "2023-12-26"),
    2024: dates(
        "2024-01-01",
        "2024-03-29",
        "2024-04-01",
        "2024-05-01",
        "2024-12-24",
        "2024-12-25",
        "2024-12-26",
        "2024-12-31",
    ),
    2025: dates(
        "2025-01-01",
        "2025-04-18",
        "2025-04-21",
        "2025-05-01",
        "2025-12-24",
        "2025-12-25",
        "2025-12-26",
        "2025-12-31",
    ),
    2026: dates(
        "2026-01-01",
        "2026-04-03",
        "2026-04-06",
        "2026-05-01",
        "2026-12-24",
        "2026-12-25",
        "2026-12-31",
    ),
}

#: Bank holidays of England and Wales 2023-2026 as published (2023-05-08, the coronation, is
#: a one-off and not a rule).
UK_REAL = {
    2023: dates(
        "2023-01-02",
        "2023-04-07",
        "2023-04-10",
        "2023-05-01",
        "2023-05-08",
        "2023-05-29",
        "2023-08-28",
        "2023-12-25",
        "2023-12-26",
    ),
    2024: dates(
        "2024-01-01",
        "2024-03-29",
        "2024-04-01",
        "2024-05-06",
        "2024-05-27",
        "2024-08-26",
        "2024-12-25",
        "2024-12-26",
    ),
    2025: dates(
        "2025-01-01",
        "2025-04-18",
        "2025-04-21",
        "2025-05-05",
        "2025-05-26",
        "2025-08-25",
        "2025-12-25",
        "2025-12-26",
    ),
    2026: dates(
        "2026-01-01",
        "2026-04-03",
        "2026-04-06",
        "2026-05-04",
        "2026-05-25",
        "2026-08-31",
        "2026-12-25",
        "2026-12-28",
    ),
}


@pytest.mark.parametrize("year", sorted(NYSE_REAL))
def test_nyse_holidays_match_the_published_calendar(year: int) -> None:
    """NYSE's computed holidays of 2023-2026 are exactly the published closures."""
    assert set(get_calendar("NYSE").holidays(year)) == NYSE_REAL[year]


@pytest.mark.parametrize("year", sorted(NYSE_REAL))
def test_cme_closes_on_the_us_holidays(year: int) -> None:
    """CME's calendar holds the same US holidays, without NYSE's one-off closures."""
    expected = NYSE_REAL[year] - set(NYSE_SPECIAL_CLOSURES)
    assert set(get_calendar("CME").holidays(year)) == expected


@pytest.mark.parametrize("year", sorted(EUREX_REAL))
def test_eurex_holidays_match_the_published_calendar(year: int) -> None:
    """Eurex's computed closures of 2023-2026 are the published ones (weekdays only)."""
    assert set(get_calendar("EUREX").holidays(year)) == EUREX_REAL[year]


@pytest.mark.parametrize("year", sorted(UK_REAL))
def test_ice_europe_follows_uk_bank_holidays_by_rule(year: int) -> None:
    """ICE Futures Europe closes on every rule-based bank holiday of England and Wales,
    substitute days included; the 2023 coronation holiday is a one-off it does not know."""
    expected = UK_REAL[year] - dates("2023-05-08")
    assert set(get_calendar("ICE_EUROPE").holidays(year)) == expected


def test_observance_rules() -> None:
    """Saturday holidays move to Friday and Sunday ones to Monday, except a Saturday New
    Year's Day; Juneteenth only from 2022; UK substitutes skip days already taken."""
    nyse = get_calendar("NYSE")
    assert nyse.is_holiday(dt.date(2021, 12, 24))  # Christmas on a Saturday
    assert not nyse.is_holiday(dt.date(2021, 12, 31))  # New Year's Day 2022 on a Saturday
    assert nyse.is_holiday(dt.date(2022, 6, 20))  # Juneteenth on a Sunday
    assert not nyse.is_holiday(dt.date(2021, 6, 18))  # before Juneteenth was observed
    assert nyse.is_holiday(dt.date(2027, 6, 18))  # Juneteenth on a Saturday
    assert nyse.is_holiday(dt.date(2023, 1, 2))  # New Year's Day on a Sunday
    assert not nyse.is_holiday(dt.date(1997, 1, 20))  # MLK Day from 1998 only
    assert nyse.is_holiday(dt.date(1998, 1, 19))
    uk = get_calendar("ICE_EUROPE")
    assert {dt.date(2027, 12, 27), dt.date(2027, 12, 28)} <= set(uk.holidays(2027))
    assert {dt.date(2022, 12, 26), dt.date(2022, 12, 27)} <= set(uk.holidays(2022))
    assert uk.is_holiday(dt.date(2022, 1, 3))


def test_nyse_early_closes() -> None:
    """NYSE closes early the day after Thanksgiving, and on 3 July and 24 December when those
    fall Monday to Thursday."""
    nyse = get_calendar("NYSE")
    early = {d for year in range(2023, 2027) for d in nyse.early_closes(year)}
    assert early == dates(
        "2023-07-03",
        "2023-11-24",
        "2024-07-03",
        "2024-11-29",
        "2024-12-24",
        "2025-07-03",
        "2025-11-28",
        "2025-12-24",
        "2026-11-27",
        "2026-12-24",
    )
    assert not nyse.is_early_close(dt.date(2026, 7, 2))  # 3 July 2026 is the holiday itself
    assert not any(get_calendar(n).early_closes(2024) for n in ("CME", "EUREX", "ICE_EUROPE"))


def test_idealpro_and_empty_calendars() -> None:
    """IDEALPRO closes on 1 January and 25 December only; the empty calendar never."""
    fx = get_calendar("IDEALPRO")
    for year in range(2023, 2027):
        assert set(fx.holidays(year)) == {dt.date(year, 1, 1), dt.date(year, 12, 25)}
    assert not get_calendar("").holidays(2024)
    assert get_calendar("").is_business_day(dt.date(2024, 12, 25))
    assert not get_calendar("").is_business_day(dt.date(2024, 12, 28))


@pytest.mark.parametrize(
    ("year", "easter"),
    [(1943, "1943-04-25"), (2023, "2023-04-09"), (2024, "2024-03-31"), (2025, "2025-04-20")],
)
def test_easter(year: int, easter: str) -> None:
    """Easter Sunday follows the Gregorian computus."""
    assert easter_sunday(year) == dt.date.fromisoformat(easter)


def test_every_year_has_the_rules() -> None:
    """Each calendar gives its rule count every year from 1990 to 2100 (no year is missing a
    rule, none has a holiday on a weekend)."""
    for year in range(1990, 2101):
        for name, cal in CALENDARS.items():
            days = cal.holidays(year)
            assert all(d.year == year for d in days)
            if name != "IDEALPRO":
                assert all(d.weekday() < 5 for d in days)
        assert len(get_calendar("ICE_EUROPE").holidays(year)) == 8
        saturday_new_year = dt.date(year, 1, 1).weekday() == 5
        rules = 8 + (year >= 1998) + (year >= 2022) - saturday_new_year
        assert len(get_calendar("CME").holidays(year)) == rules


def test_unknown_calendar_is_refused() -> None:
    """A calendar name the simulator does not know is refused where it is given."""
    with pytest.raises(ValueError, match="unknown exchange calendar"):
        get_calendar("LSE")
    with pytest.raises(ValueError, match="calendar"):
        SimContract(
            con_id=1,
            symbol="X",
            sec_type="STK",
            exchange="SMART",
            currency="USD",
            local_symbol="X",
            calendar="LSE",
        )


def test_default_calendar_by_exchange() -> None:
    """An instrument without a calendar follows its exchange (SMART: its primary one)."""
    assert default_calendar("SMART", "NASDAQ") == "NYSE"
    assert default_calendar("CBOE") == "NYSE"
    assert default_calendar("CBOT") == default_calendar("NYMEX") == "CME"
    assert default_calendar("EUREX") == "EUREX"
    assert default_calendar("ICEEU") == "ICE_EUROPE"
    assert default_calendar("IDEALPRO") == "IDEALPRO"
    assert default_calendar("PAXOS") == ""


# --------------------------------------------------------------------------------------
# sessions, catalog and contract details


def test_holiday_and_early_close_sessions() -> None:
    """No session closes on a holiday (an overnight one that would have opened the evening
    before included) and an early-close day ends at the template's early close."""
    stock_hours = SessionTemplate("0930", "1600", early_close="1300")
    assert stock_hours.session_on(dt.date(2023, 9, 4), "US/Eastern", "NYSE") is None
    assert stock_hours.session_on(dt.date(2023, 9, 4), "US/Eastern") is not None
    friday = stock_hours.session_on(dt.date(2023, 11, 24), "US/Eastern", "NYSE")
    assert friday is not None
    assert friday.end == dt.datetime(2023, 11, 24, 18, 0, tzinfo=UTC)
    overnight = SessionTemplate("1700", "1600")
    assert overnight.session_on(dt.date(2024, 7, 4), "US/Central", "CME") is None
    after = overnight.session_on(dt.date(2024, 7, 5), "US/Central", "CME")
    assert after is not None
    assert after.start == dt.datetime(2024, 7, 4, 22, 0, tzinfo=UTC)  # reopens 17:00 CDT
    with pytest.raises(ValueError, match="early_close"):
        SessionTemplate("0930", "1600", early_close="0900")


def test_hours_text_marks_holidays_closed() -> None:
    """tradingHours/liquidHours say yyyymmdd:CLOSED on holidays and show early closes."""
    catalog = Catalog.default(dt.date(2025, 11, 24))
    aapl = catalog.by_con_id(265598)
    assert aapl is not None
    trading = aapl.trading.hours(aapl.time_zone_id, dt.date(2025, 11, 26), 4, aapl.calendar)
    assert trading == (
        "20251126:0400-20251126:2000;20251127:CLOSED;20251128:0400-20251128:1700;20251129:CLOSED"
    )
    liquid = aapl.liquid.hours(aapl.time_zone_id, dt.date(2025, 11, 27), 2, aapl.calendar)
    assert liquid == "20251127:CLOSED;20251128:0930-20251128:1300"


def test_every_packaged_instrument_has_its_exchange_calendar() -> None:
    """Every instrument and futures contract of the default catalog follows its exchange's
    calendar, and the catalog file names it for every entry it lists."""
    catalog = Catalog.default(dt.date(2025, 3, 12))
    for c in catalog.contracts:
        assert c.calendar, c.local_symbol
        assert c.calendar == default_calendar(c.exchange, c.primary_exchange), c.local_symbol
    statics, products = load_catalog_data()
    assert all(p.calendar == default_calendar(p.exchange) for p in products)
    assert {c.calendar for c in statics} >= {"NYSE", "IDEALPRO"}


def test_catalog_file_calendar_keys() -> None:
    """A catalog entry without a calendar gets its exchange's; an unknown one is refused."""
    entry = {
        "con_id": 1,
        "symbol": "X",
        "sec_type": "STK",
        "exchange": "SMART",
        "primary_exchange": "NYSE",
        "currency": "USD",
        "local_symbol": "X",
        "liquid": {"open": "0930", "close": "1600", "early_close": "1300"},
    }
    ((c,), ()) = load_catalog_data(json.dumps({"instruments": [entry]}))
    assert c.calendar == "NYSE"
    assert c.liquid.early_close == "1300"
    ((c,), ()) = load_catalog_data(json.dumps({"instruments": [entry | {"calendar": ""}]}))
    assert c.calendar == ""
    with pytest.raises(ValueError, match="calendar"):
        load_catalog_data(json.dumps({"instruments": [entry | {"calendar": "MOON"}]}))


@pytest.mark.parametrize(
    ("symbol", "year", "month", "expected"),
    [
        ("ZN", 2024, 12, "2024-12-19"),  # CME's real last trade day: Christmas not counted
        ("ZB", 2024, 12, "2024-12-19"),
        ("ZN", 2025, 3, "2025-03-20"),
        ("ZF", 2024, 12, "2024-12-31"),
        ("GBL", 2025, 6, "2025-06-06"),
        ("R", 2024, 12, "2024-12-27"),
    ],
)
def test_futures_expiry_counts_exchange_business_days(
    symbol: str, year: int, month: int, expected: str
) -> None:
    """Last trade dates count business days of the product's exchange calendar."""
    _, products = load_catalog_data()
    (product,) = [p for p in products if p.symbol == symbol]
    contract = product.contract(year, month)
    assert contract.last_trade_date == expected.replace("-", "")
    assert contract.calendar == product.calendar


def test_expiry_rule_without_calendar_counts_weekdays() -> None:
    """Without a calendar the rule counts Monday to Friday, holidays included."""
    rule = ExpiryRule(rule="before_last_business_day", business_days_before=7)
    assert rule.last_trade_date(2024, 12) == dt.date(2024, 12, 20)
    assert rule.last_trade_date(2024, 12, "CME") == dt.date(2024, 12, 19)


def test_contract_details_over_ibapi_show_holidays_closed(
    sim_factory: Callable[..., Simulator],
) -> None:
    """IB's client reads CLOSED on Christmas and the early close of Christmas Eve for AAPL,
    and a Eurex future's hours closed from Christmas Eve to Boxing Day."""
    sim = sim_factory(clock=FixedClock(dt.datetime(2025, 12, 22, 12, 0, tzinfo=UTC)))
    with IbapiProbe(sim.host, sim.port, client_id=5) as ib:
        (aapl,) = ib.contract_details(stock("AAPL"))
        (bund,) = ib.contract_details(future("GBL", "EUREX", "EUR", month="202603"))
    assert "20251225:CLOSED" in aapl.tradingHours.split(";")
    assert "20251224:0400-20251224:1700" in aapl.tradingHours.split(";")
    assert "20251224:0930-20251224:1300" in aapl.liquidHours.split(";")
    assert "20251226:0930-20251226:1600" in aapl.liquidHours.split(";")
    assert {"20251224:CLOSED", "20251225:CLOSED", "20251226:CLOSED"} <= set(
        bund.tradingHours.split(";")
    )


def test_no_head_timestamp_on_a_holiday() -> None:
    """A head timestamp that falls on a holiday moves to the next session."""
    spy = Catalog.default(dt.date(2025, 3, 12)).by_con_id(756733)
    assert spy is not None
    on_labor_day = attrs.evolve(spy, head_timestamp=dt.datetime(2023, 9, 4, 8, tzinfo=UTC))
    assert head_timestamp(on_labor_day, "TRADES", False) == dt.datetime(
        2023, 9, 5, 8, 0, tzinfo=UTC
    )
