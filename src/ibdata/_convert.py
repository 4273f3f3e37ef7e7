"""IB's objects and strings to ibdata's models and back: the only module that knows IB formats.

Dates ibdata asks for: intraday bars with ``formatDate=2`` (epoch seconds, no zone to
guess) and daily, weekly and monthly bars as IB always sends them, ``yyyymmdd`` session
dates. End dates go out in IB's UTC form ``yyyymmdd-hh:mm:ss``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from array import array
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from ibapi.contract import Contract as IBContract

from ibdata.models import (
    Bars,
    BarSize,
    Contract,
    ContractDetails,
    ContractSpec,
    WhatToShow,
    parse_trading_hours,
)

UTC = dt.timezone.utc


@lru_cache(maxsize=128)
def zone(name: str) -> ZoneInfo:
    """The zone for an IANA or IB legacy name (``US/Eastern``, ``MET``).

    Raises:
        ValueError: unknown zone name.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def end_date_time(end: dt.datetime | None) -> str:
    """IB's endDateTime for an aware datetime: ``yyyymmdd-hh:mm:ss`` in UTC; "" for now."""
    if end is None:
        return ""
    return end.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")


@lru_cache(maxsize=1024)
def to_ib_contract(spec: ContractSpec) -> IBContract:
    """An ``ibapi`` Contract for a validated :class:`~ibdata.models.ContractSpec`.

    Memoised per spec (specs are frozen); ibapi only reads the object when it encodes a
    request, and ibdata never changes it.
    """
    c = IBContract()
    c.conId = spec.con_id
    c.symbol = spec.symbol
    c.secType = spec.sec_type.value
    c.lastTradeDateOrContractMonth = spec.last_trade_date_or_contract_month
    c.exchange = spec.exchange
    c.primaryExchange = spec.primary_exchange
    c.currency = spec.currency
    c.localSymbol = spec.local_symbol
    c.tradingClass = spec.trading_class
    c.multiplier = spec.multiplier
    c.includeExpired = spec.include_expired
    return c


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _size(value: Any) -> float | None:
    """IB's decimal sizes; its unset sentinels and empty values become None."""
    if value in (None, ""):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(f) or f >= 1e300 or f == 2147483647:
        return None
    return f


def from_ib_contract(c: Any) -> Contract:
    """A :class:`~ibdata.models.Contract` from an ``ibapi`` Contract."""
    last = _text(c.lastTradeDateOrContractMonth).replace("-", " ").split(" ")[0]
    return Contract(
        con_id=int(c.conId or 0),
        symbol=_text(c.symbol),
        sec_type=_text(c.secType),
        exchange=_text(c.exchange),
        currency=_text(c.currency),
        local_symbol=_text(c.localSymbol),
        trading_class=_text(c.tradingClass),
        primary_exchange=_text(c.primaryExchange),
        last_trade_date=last,
        multiplier=_text(c.multiplier),
    )


def contract_details(cd: Any) -> ContractDetails:
    """A :class:`~ibdata.models.ContractDetails` from an ``ibapi`` ContractDetails.

    Trading and liquid hours are parsed into sessions in the contract's zone; if IB sends
    hours in a form or zone ibdata cannot read, the sessions are empty and the raw text is
    kept in ``raw_trading_hours``/``raw_liquid_hours``.
    """
    tz = _text(cd.timeZoneId)

    def hours(text: str) -> tuple[Any, ...]:
        try:
            return _hours(text, tz)
        except ValueError:
            return ()

    sec_ids = tuple((_text(t.tag), _text(t.value)) for t in (cd.secIdList or ()))
    return ContractDetails(
        contract=from_ib_contract(cd.contract),
        market_name=_text(cd.marketName),
        min_tick=float(cd.minTick or 0.0),
        long_name=_text(cd.longName),
        industry=_text(cd.industry),
        category=_text(cd.category),
        subcategory=_text(cd.subcategory),
        time_zone_id=tz,
        trading_hours=hours(_text(cd.tradingHours)),
        liquid_hours=hours(_text(cd.liquidHours)),
        contract_month=_text(cd.contractMonth),
        valid_exchanges=tuple(x for x in _text(cd.validExchanges).split(",") if x),
        order_types=tuple(x for x in _text(cd.orderTypes).split(",") if x),
        sec_ids=sec_ids,
        under_con_id=int(cd.underConId or 0),
        under_symbol=_text(getattr(cd, "underSymbol", "")),
        under_sec_type=_text(getattr(cd, "underSecType", "")),
        price_magnifier=int(cd.priceMagnifier or 0),
        real_expiration_date=_text(getattr(cd, "realExpirationDate", "")),
        stock_type=_text(getattr(cd, "stockType", "")),
        min_size=_size(getattr(cd, "minSize", None)),
        size_increment=_size(getattr(cd, "sizeIncrement", None)),
        suggested_size_increment=_size(getattr(cd, "suggestedSizeIncrement", None)),
        raw_trading_hours=_text(cd.tradingHours),
        raw_liquid_hours=_text(cd.liquidHours),
    )


#: The fast contract-data parser knows the layouts up to this server version (exclusive).
CONTRACT_DATA_FAST_BELOW = 179


def parse_contract_data(fields: list[bytes], server_version: int) -> tuple[int, ContractDetails]:
    """Parse contractData (10) for server versions 157-178 straight into ContractDetails.

    The same result as ibapi's decoder followed by :func:`contract_details`, without
    building ibapi's objects: three layouts (157-162; 163 adds sizeMinTick; from 164 no
    version field and no mdSizeMultiplier, but minSize, sizeIncrement and
    suggestedSizeIncrement).

    Raises:
        ValueError: the message is malformed for that server version.
        IndexError: it has too few fields.
    """
    f = [x.decode("ascii", "backslashreplace") for x in fields]
    i = 1 if server_version >= 164 else 2  # skip the id (and the version below 164)
    req_id = int(f[i])
    (
        symbol, sec_type, last, _strike, _right, exchange, currency, local_symbol,
        market_name, trading_class, con_id, min_tick,
    ) = f[i + 1 : i + 13]  # fmt: skip
    i += 13
    if server_version < 164:
        i += 1  # mdSizeMultiplier
    (
        multiplier, order_types, valid_exchanges, magnifier, under_con_id, long_name,
        primary, contract_month, industry, category, subcategory, tz, trading, liquid,
        _ev_rule, _ev_multiplier, n_ids,
    ) = f[i : i + 17]  # fmt: skip
    i += 17
    sec_ids = tuple((f[i + 2 * k], f[i + 2 * k + 1]) for k in range(int(n_ids or 0)))
    i += 2 * len(sec_ids)
    _agg, under_symbol, under_sec_type, _rules, real_expiration, stock_type = f[i : i + 6]
    i += 6
    sizes: list[str] = ["", "", ""]
    if server_version == 163:
        sizes = ["", "", f[i]]  # ibapi ignores sizeMinTick; ib_async calls it this
        i += 1
    elif server_version >= 164:
        sizes = f[i : i + 3]
        i += 3
    if i != len(f):
        raise ValueError(
            f"contractData has {len(f)} fields, expected {i} at version {server_version}"
        )
    if server_version >= 153 and "\\u" in long_name:
        long_name = long_name.encode("ascii").decode("unicode-escape")
    contract = Contract(
        con_id=int(con_id or 0),
        symbol=symbol,
        sec_type=sec_type,
        exchange=exchange,
        currency=currency,
        local_symbol=local_symbol,
        trading_class=trading_class,
        primary_exchange=primary,
        last_trade_date=last.replace("-", " ").split(" ")[0],
        multiplier=multiplier,
    )

    def hours(text: str) -> tuple[Any, ...]:
        try:
            return _hours(text, tz)
        except ValueError:
            return ()

    return req_id, ContractDetails(
        contract=contract,
        market_name=market_name,
        min_tick=float(min_tick or 0.0),
        long_name=long_name,
        industry=industry,
        category=category,
        subcategory=subcategory,
        time_zone_id=tz,
        trading_hours=hours(trading),
        liquid_hours=hours(liquid),
        contract_month=contract_month,
        valid_exchanges=tuple(x for x in valid_exchanges.split(",") if x),
        order_types=tuple(x for x in order_types.split(",") if x),
        sec_ids=sec_ids,
        under_con_id=int(under_con_id or 0),
        under_symbol=under_symbol,
        under_sec_type=under_sec_type,
        price_magnifier=int(magnifier or 0),
        real_expiration_date=real_expiration,
        stock_type=stock_type,
        min_size=_size(sizes[0]),
        size_increment=_size(sizes[1]),
        suggested_size_increment=_size(sizes[2]),
        raw_trading_hours=trading,
        raw_liquid_hours=liquid,
    )


@lru_cache(maxsize=512)
def _hours(text: str, tz: str) -> tuple[Any, ...]:
    """Parsed trading hours, memoised: IB repeats the same text all day for a contract, and
    parsing it is most of the cost of a contract-details answer."""
    return parse_trading_hours(text, tz)


@attrs.frozen
class BarColumns:
    """Bars of one historicalData message, as parsed columns (times still as IB sent them)."""

    start: str
    end: str
    times: list[bytes]
    open: array[float]
    high: array[float]
    low: array[float]
    close: array[float]
    volume: array[float]
    wap: array[float]
    count: array[int]


def parse_historical_data(fields: list[bytes]) -> tuple[int, BarColumns]:
    """Parse historicalData (17) for server versions 124-195 straight into columns.

    ``[17, reqId, start, end, n, n x (date, open, high, low, close, volume, WAP, count)]``.

    Raises:
        ValueError: the message is malformed (wrong field count, non-numeric values).
    """
    req_id = int(fields[1])
    n = int(fields[4])
    if n < 0 or len(fields) != 5 + 8 * n:
        raise ValueError(f"historicalData for request {req_id}: {len(fields)} fields for {n} bars")
    body = fields[5:]
    columns = BarColumns(
        start=fields[2].decode("ascii", "replace"),
        end=fields[3].decode("ascii", "replace"),
        times=body[0::8],
        open=array("d", map(float, body[1::8])),
        high=array("d", map(float, body[2::8])),
        low=array("d", map(float, body[3::8])),
        close=array("d", map(float, body[4::8])),
        volume=array("d", map(float, body[5::8])),
        wap=array("d", map(float, body[6::8])),
        count=array("q", map(int, body[7::8])),
    )
    return req_id, columns


def bar_times(times: list[bytes], intraday: bool) -> array[float]:
    """Bar times as epoch seconds (intraday) or date ordinals (daily and longer).

    Raises:
        ValueError: a date in a form ibdata did not ask for.
    """
    if intraday:
        try:
            return array("d", map(float, times))
        except ValueError:
            return array("d", (parse_ib_time(t.decode(), None).timestamp() for t in times))
    out = array("d")
    for t in times:
        if len(t) != 8:
            raise ValueError(f"daily bar date {t!r} is not yyyymmdd")
        out.append(float(dt.date(int(t[:4]), int(t[4:6]), int(t[6:])).toordinal()))
    return out


_TWO_SPACE = re.compile(r"(\d{8})  (\d\d:\d\d:\d\d)")
_ZONED = re.compile(r"(\d{8}) (\d\d:\d\d:\d\d) (\S+)")
_DASHED = re.compile(r"(\d{8})-(\d\d:\d\d:\d\d)")


def parse_ib_time(text: str, login_tz: str | None) -> dt.datetime:
    """Parse any date-time form TWS sends into an aware UTC datetime.

    Forms: epoch seconds; ``yyyymmdd-hh:mm:ss`` (UTC); ``yyyymmdd hh:mm:ss <zone>``;
    ``yyyymmdd  hh:mm:ss`` (two spaces, TWS's login zone, which must then be known).

    Raises:
        ValueError: an unknown form, zone, or a zone-less time with no login zone.
    """
    text = text.strip()
    if text.isdigit() and len(text) != 8:
        return dt.datetime.fromtimestamp(int(text), UTC)
    m = _DASHED.fullmatch(text)
    if m:
        return dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H:%M:%S").replace(tzinfo=UTC)
    m = _ZONED.fullmatch(text)
    if m:
        naive = dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H:%M:%S")
        return naive.replace(tzinfo=zone(m.group(3))).astimezone(UTC)
    m = _TWO_SPACE.fullmatch(text)
    if m:
        if login_tz is None:
            raise ValueError(f"{text!r} has no time zone and TWS's login zone is unknown")
        naive = dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H:%M:%S")
        return naive.replace(tzinfo=zone(login_tz)).astimezone(UTC)
    raise ValueError(f"unrecognised IB date-time {text!r}")


def build_bars(
    columns: BarColumns,
    *,
    contract: Contract | None,
    bar_size: BarSize,
    what_to_show: WhatToShow,
    use_rth: bool,
    time_zone: str,
    login_tz: str | None,
) -> Bars:
    """Turn parsed columns into :class:`~ibdata.models.Bars` with the request's metadata.

    Raises:
        ValueError: a bar time is malformed, or a price, volume or WAP is not a finite
            number (IB never sends NaN or infinity in a bar; ``float()`` would accept them).
    """
    intraday = bar_size.intraday
    times = bar_times(columns.times, intraday)
    for name in ("open", "high", "low", "close", "volume", "wap"):
        column: array[float] = getattr(columns, name)
        # one C-speed sum; the per-value check runs only if it is not finite
        if not math.isfinite(sum(column)) and not all(map(math.isfinite, column)):
            raise ValueError(f"a bar's {name} is not a finite number")

    def window(text: str) -> dt.datetime | None:
        try:
            return parse_ib_time(text, login_tz) if text else None
        except ValueError:
            return None

    return Bars.from_columns(
        times,
        columns.open,
        columns.high,
        columns.low,
        columns.close,
        columns.volume,
        columns.wap,
        columns.count,
        intraday=intraday,
        contract=contract,
        bar_size=bar_size,
        what_to_show=what_to_show,
        use_rth=use_rth,
        start=window(columns.start),
        end=window(columns.end),
        time_zone=time_zone,
    )


def columns_from_bar_data(items: list[Any], start: str, end: str) -> BarColumns:
    """Columns from ibapi ``BarData`` callbacks (the slow path for layouts without the fast
    parser). The WAP is ``average`` in ibapi 9.81 and ``wap`` in 10.x."""

    def wap(b: Any) -> float:
        value: Any = getattr(b, "wap", None)
        if value is None:
            value = getattr(b, "average", -1)
        return float(value)

    return BarColumns(
        start=start,
        end=end,
        times=[str(b.date).encode() for b in items],
        open=array("d", (float(b.open) for b in items)),
        high=array("d", (float(b.high) for b in items)),
        low=array("d", (float(b.low) for b in items)),
        close=array("d", (float(b.close) for b in items)),
        volume=array("d", (float(b.volume) for b in items)),
        wap=array("d", (wap(b) for b in items)),
        count=array("q", (int(b.barCount) for b in items)),
    )
