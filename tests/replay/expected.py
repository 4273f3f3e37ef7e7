"""What ibdata must decode from a recorded frame, worked out on the test side.

Built from the named fields of :mod:`tests.replay.layouts` and the documented meaning of
each model field, with date-time and trading-hours readers of its own (not ibdata's):

* a contract's last trading day is the date that begins lastTradeDateOrContractMonth,
  whatever follows it (``20250620 08:30 US/Central``, ``20240430-17:10:00``, a time and a
  zone);
* trading hours ``YYYYMMDD:HHMM-YYYYMMDD:HHMM`` / ``YYYYMMDD:CLOSED`` are wall-clock times
  in the contract's zone, empty entries (a leading ``;``) are skipped;
* bar and window date-times are epoch seconds, ``yyyymmdd-hh:mm:ss`` (UTC),
  ``yyyymmdd hh:mm:ss <zone>`` or ``yyyymmdd  hh:mm:ss`` in the login's zone; daily bars
  are session dates;
* -1 volume, WAP (with no volume) and trade count mean "none"; a US stock's volume below
  server version 175 is in lots of 100 shares, and ibdata returns shares;
* the size rules do not exist below server version 164: None there.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ibdata.models import Bar, Contract, ContractDetails, TradingSession
from tests.replay.layouts import IN_SHARES, SIZE_RULES, Frame, parse_historical_data

UTC = dt.timezone.utc

#: The IANA zone of each login-zone name in the captures: how a TWS host in that place
#: names its zone (Java display names; the short forms as TWS prints them).
LOGIN_ZONES = {
    "Greenwich Mean Time": "Europe/London",  # a London host in winter
    "British Summer Time": "Europe/London",
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "Central European Standard Time": "Europe/Berlin",  # Windows name, all year
    "CET": "Europe/Berlin",
}


def login_zone(connection_time: str) -> str:
    """The IANA zone of a connection time ``yyyymmdd hh:mm:ss <name>``."""
    name = connection_time.split(" ", 2)[2]
    return LOGIN_ZONES[name]


def sessions(text: str, zone_name: str) -> tuple[TradingSession, ...]:
    """Trading or liquid hours as UTC sessions."""
    zone = ZoneInfo(zone_name)
    out = []
    for entry in text.split(";"):
        if not entry:
            continue
        day, rest = entry.split(":", 1)
        if rest == "CLOSED":
            continue
        begin, end = rest.split("-")
        end_day, end_time = end.split(":") if ":" in end else (day, end)
        start = dt.datetime.strptime(day + begin, "%Y%m%d%H%M").replace(tzinfo=zone)
        stop = dt.datetime.strptime(end_day + end_time, "%Y%m%d%H%M").replace(tzinfo=zone)
        out.append(TradingSession(start.astimezone(UTC), stop.astimezone(UTC)))
    return tuple(out)


def _size(value: str | None) -> float | None:
    return float(value) if value else None


def contract(d: dict[str, Any]) -> Contract:
    """The contract part of named contractData fields."""
    day = re.match(r"\d{8}", d["lastTradeDateOrContractMonth"])
    return Contract(
        con_id=int(d["conId"]),
        symbol=d["symbol"],
        sec_type=d["secType"],
        exchange=d["exchange"],
        currency=d["currency"],
        local_symbol=d["localSymbol"],
        trading_class=d["tradingClass"],
        primary_exchange=d["primaryExchange"],
        last_trade_date=day.group(0) if day else "",
        multiplier=d["multiplier"],
    )


def details(d: dict[str, Any], server_version: int) -> ContractDetails:
    """The ContractDetails of named contractData fields, read at ``server_version``."""
    sizes = d["sizes"] if server_version >= SIZE_RULES and d["sizes"] else (None, None, None)
    tz = d["timeZoneId"]
    return ContractDetails(
        contract=contract(d),
        market_name=d["marketName"],
        min_tick=float(d["minTick"]),
        long_name=d["longName"],
        industry=d["industry"],
        category=d["category"],
        subcategory=d["subcategory"],
        time_zone_id=tz,
        trading_hours=sessions(d["tradingHours"], tz),
        liquid_hours=sessions(d["liquidHours"], tz),
        contract_month=d["contractMonth"],
        valid_exchanges=tuple(x for x in d["validExchanges"].split(",") if x),
        order_types=tuple(x for x in d["orderTypes"].split(",") if x),
        sec_ids=dict(d["secIds"]),
        under_con_id=int(d["underConId"] or 0),
        under_symbol=d["underSymbol"],
        under_sec_type=d["underSecType"],
        price_magnifier=int(d["priceMagnifier"] or 0),
        real_expiration_date=d["realExpirationDate"],
        stock_type=d["stockType"],
        min_size=_size(sizes[0]),
        size_increment=_size(sizes[1]),
        suggested_size_increment=_size(sizes[2]),
        raw_trading_hours=d["tradingHours"],
        raw_liquid_hours=d["liquidHours"],
    )


def ib_time(text: str, login: str | None) -> dt.datetime:
    """A date-time in any form TWS sends, as an aware UTC datetime."""
    if text.isdigit() and len(text) != 8:
        return dt.datetime.fromtimestamp(int(text), UTC)
    if m := re.fullmatch(r"(\d{8})-(\d\d:\d\d:\d\d)", text):
        return dt.datetime.strptime(m[1] + m[2], "%Y%m%d%H:%M:%S").replace(tzinfo=UTC)
    if m := re.fullmatch(r"(\d{8}) (\d\d:\d\d:\d\d) (\S+)", text):
        naive = dt.datetime.strptime(m[1] + m[2], "%Y%m%d%H:%M:%S")
        return naive.replace(tzinfo=ZoneInfo(m[3])).astimezone(UTC)
    if m := re.fullmatch(r"(\d{8})  (\d\d:\d\d:\d\d)", text):
        assert login is not None
        naive = dt.datetime.strptime(m[1] + m[2], "%Y%m%d%H:%M:%S")
        return naive.replace(tzinfo=ZoneInfo(login)).astimezone(UTC)
    raise ValueError(f"not a TWS date-time: {text!r}")


def bars(
    answer: list[Frame], server_version: int, login: str | None, *, intraday: bool, lots: bool
) -> tuple[list[Bar], dt.datetime, dt.datetime]:
    """The bars and window of one recorded bar answer (17 frames, and 108 from 196).

    ``lots``: a US stock's bars, whose volume below server version 175 is in lots of 100
    shares; ibdata returns shares.
    """
    out: list[Bar] = []
    window: tuple[str, str] | None = None
    for frame in answer:
        if frame[0] == "108":
            window = (frame[2], frame[3])
        if frame[0] != "17":
            continue
        data = parse_historical_data(frame, server_version)
        window = data["window"] or window
        for date, o, h, low, c, volume, wap, count in data["bars"]:
            when: dt.datetime | dt.date
            if intraday:
                when = ib_time(date, login)
            else:
                when = dt.date(int(date[:4]), int(date[4:6]), int(date[6:8]))
            vol = float(volume)
            if lots and server_version < IN_SHARES and vol >= 0:
                vol = float(Decimal(volume) * 100)
            vol_or_none = None if vol < 0 else vol
            wap_value: float | None = float(wap)
            if vol_or_none is None and wap_value == -1.0:
                wap_value = None
            n = int(count)
            out.append(
                Bar(when, float(o), float(h), float(low), float(c), vol_or_none, wap_value,
                    None if n < 0 else n)
            )  # fmt: skip
    assert window is not None, "a bar answer without its window"
    return out, ib_time(window[0], login), ib_time(window[1], login)


def differences(expected: Any, got: Any, path: str = "") -> list[str]:
    """Where two model values differ, field by field: ``path: expected … got …``."""
    fields = getattr(type(expected), "__attrs_attrs__", None)
    if fields is not None and type(got) is type(expected):
        out: list[str] = []
        for f in fields:
            out += differences(getattr(expected, f.name), getattr(got, f.name), f"{path}.{f.name}")
        return out
    if expected != got:
        return [f"{path or 'value'}: expected {expected!r}, got {got!r}"]
    return []
