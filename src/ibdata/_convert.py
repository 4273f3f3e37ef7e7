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

from ibdata._ibapi import UNSET_DOUBLE, UNSET_INTEGER, UNSET_LONG, bar_wap, is_unset
from ibdata._zones import SessionZone
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
    return None if is_unset(f) else f


def _int(value: Any) -> int:
    """An integer field; empty and ``UNSET_INTEGER`` (and larger sentinels) read as 0."""
    if value in (None, ""):
        return 0
    number = int(value)
    return 0 if number >= UNSET_INTEGER else number


def _price(value: Any) -> float:
    """A price-like field (min tick); empty and the unset sentinels read as 0."""
    if value in (None, ""):
        return 0.0
    number = float(value)
    return 0.0 if is_unset(number) else number


def from_ib_contract(c: Any) -> Contract:
    """A :class:`~ibdata.models.Contract` from an ``ibapi`` Contract."""
    last = _text(c.lastTradeDateOrContractMonth).replace("-", " ").split(" ")[0]
    return Contract(
        con_id=_int(c.conId),
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
        min_tick=_price(cd.minTick),
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
        under_con_id=_int(cd.underConId),
        under_symbol=_text(getattr(cd, "underSymbol", "")),
        under_sec_type=_text(getattr(cd, "underSecType", "")),
        price_magnifier=_int(cd.priceMagnifier),
        real_expiration_date=_text(getattr(cd, "realExpirationDate", "")),
        stock_type=_text(getattr(cd, "stockType", "")),
        min_size=_size(getattr(cd, "minSize", None)),
        size_increment=_size(getattr(cd, "sizeIncrement", None)),
        suggested_size_increment=_size(getattr(cd, "suggestedSizeIncrement", None)),
        raw_trading_hours=_text(cd.tradingHours),
        raw_liquid_hours=_text(cd.liquidHours),
    )


#: The fast contract-data parser knows the layouts up to this server version (exclusive).
CONTRACT_DATA_FAST_BELOW = 201

#: Server versions that change contractData (10), for the fast parser.
_SIZE_RULES = 164
_FUND_DATA_FIELDS = 179
_LAST_TRADE_DATE = 182
_INELIGIBILITY_REASONS = 186
#: The 17 fund fields a FUND's contract data carries from server version 179.
_FUND_FIELDS = 17


def parse_contract_data(fields: list[bytes], server_version: int) -> tuple[int, ContractDetails]:
    """Parse contractData (10) for server versions 157-200 straight into ContractDetails.

    The same result as ibapi's decoder followed by :func:`contract_details`, without
    building ibapi's objects, with one exception: at server version 163 the sizeMinTick
    field, which ibapi discards, is kept as ``suggested_size_increment`` (as ``ib_async``
    does). Layouts: 157-162; 163 adds sizeMinTick; from 164 no version
    field and no mdSizeMultiplier, but minSize, sizeIncrement and suggestedSizeIncrement;
    from 179 a FUND carries 17 fund fields after them; from 182 lastTradeDate follows
    lastTradeDateOrContractMonth; from 186 a count of ineligibility reasons (id,
    description pairs) ends the message.

    Raises:
        ValueError: the message is malformed for that server version.
        IndexError: it has too few fields.
    """
    f = [x.decode("ascii", "backslashreplace") for x in fields]
    i = 1 if server_version >= _SIZE_RULES else 2  # skip the id (and the version below 164)
    req_id = int(f[i])
    symbol, sec_type, last = f[i + 1 : i + 4]
    i += 4
    if server_version >= _LAST_TRADE_DATE:
        i += 1  # lastTradeDate: the same day as lastTradeDateOrContractMonth for a future
    (
        _strike, _right, exchange, currency, local_symbol, market_name, trading_class,
        con_id, min_tick,
    ) = f[i : i + 9]  # fmt: skip
    i += 9
    if server_version < _SIZE_RULES:
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
    elif server_version >= _SIZE_RULES:
        sizes = f[i : i + 3]
        i += 3
    if server_version >= _FUND_DATA_FIELDS and sec_type == "FUND":
        i += _FUND_FIELDS
    if server_version >= _INELIGIBILITY_REASONS:
        i += 1 + 2 * int(f[i] or 0)
    if i != len(f):
        raise ValueError(
            f"contractData has {len(f)} fields, expected {i} at version {server_version}"
        )
    if server_version >= 153 and "\\u" in long_name:
        long_name = long_name.encode("ascii").decode("unicode-escape")
    contract = Contract(
        con_id=_int(con_id),
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
        min_tick=_price(min_tick),
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
        under_con_id=_int(under_con_id),
        under_symbol=under_symbol,
        under_sec_type=under_sec_type,
        price_magnifier=_int(magnifier),
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


def _numbers(values: list[bytes]) -> array[float]:
    """Decimal fields as floats; an empty field (ibapi's "no value") reads as UNSET_DOUBLE."""
    try:
        return array("d", map(float, values))
    except ValueError:
        return array("d", (float(v) if v else UNSET_DOUBLE for v in values))


def _integers(values: list[bytes]) -> array[int]:
    """Integer fields; an empty field reads as UNSET_INTEGER."""
    try:
        return array("q", map(int, values))
    except ValueError:
        return array("q", (int(v) if v else UNSET_INTEGER for v in values))


def parse_historical_data(
    fields: list[bytes], *, with_window: bool = True
) -> tuple[int, BarColumns]:
    """Parse historicalData (17) straight into columns.

    ``[17, reqId, start, end, n, n x (date, open, high, low, close, volume, WAP, count)]``
    up to server version 195; from 196 (``with_window=False``) start and end are absent
    (they come in historicalDataEnd) and the columns carry empty ones.

    Raises:
        ValueError: the message is malformed (wrong field count, non-numeric values).
    """
    req_id = int(fields[1])
    head = 5 if with_window else 3
    n = int(fields[head - 1])
    if n < 0 or len(fields) != head + 8 * n:
        raise ValueError(f"historicalData for request {req_id}: {len(fields)} fields for {n} bars")
    body = fields[head:]
    columns = BarColumns(
        start=fields[2].decode("ascii", "replace") if with_window else "",
        end=fields[3].decode("ascii", "replace") if with_window else "",
        times=body[0::8],
        open=_numbers(body[1::8]),
        high=_numbers(body[2::8]),
        low=_numbers(body[3::8]),
        close=_numbers(body[4::8]),
        volume=_numbers(body[5::8]),
        wap=_numbers(body[6::8]),
        count=_integers(body[7::8]),
    )
    return req_id, columns


def parse_historical_update(fields: list[bytes]) -> tuple[int, BarColumns]:
    """Parse historicalDataUpdate (90) into a one-bar :class:`BarColumns`.

    ``[90, reqId, barCount, date, open, close, high, low, WAP, volume]``: no version field,
    and the prices in the order open, close, high, low (§3.7 of the protocol reference).

    Raises:
        ValueError: the message is malformed (wrong field count, non-numeric values).
    """
    if len(fields) != 10:
        raise ValueError(f"historicalDataUpdate of {len(fields)} fields, expected 10")
    req_id = int(fields[1])
    count, date, open_, close, high, low, wap, volume = fields[2:10]
    columns = BarColumns(
        start="",
        end="",
        times=[date],
        open=_numbers([open_]),
        high=_numbers([high]),
        low=_numbers([low]),
        close=_numbers([close]),
        volume=_numbers([volume]),
        wap=_numbers([wap]),
        count=_integers([count]),
    )
    return req_id, columns


def join_columns(parts: list[BarColumns], start: str, end: str) -> BarColumns:
    """The bars of several historicalData messages of one request, in order, with the
    window historicalDataEnd (108) reported."""
    if len(parts) == 1:
        return attrs.evolve(parts[0], start=start, end=end)

    def joined(name: str, code: str) -> Any:
        out = array(code)
        for part in parts:
            out.extend(getattr(part, name))
        return out

    return BarColumns(
        start=start,
        end=end,
        times=[t for part in parts for t in part.times],
        open=joined("open", "d"),
        high=joined("high", "d"),
        low=joined("low", "d"),
        close=joined("close", "d"),
        volume=joined("volume", "d"),
        wap=joined("wap", "d"),
        count=joined("count", "q"),
    )


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


def parse_ib_time(text: str, login_tz: str | SessionZone | None) -> dt.datetime:
    """Parse any date-time form TWS sends into an aware UTC datetime.

    Forms: epoch seconds; ``yyyymmdd-hh:mm:ss`` (UTC); ``yyyymmdd hh:mm:ss <zone>``;
    ``yyyymmdd  hh:mm:ss`` (two spaces, TWS's login zone, which must then be known).
    ``login_tz`` is an IANA name or the session's login zone, which places a time only
    when it is sure of it (see :mod:`ibdata._zones`).

    Raises:
        ValueError: an unknown form, zone, or a zone-less time with no login zone, or one
            the session's login zone cannot place.
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
        if isinstance(login_tz, SessionZone):
            return login_tz.place(naive)
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
    login_tz: str | SessionZone | None,
    asked_end: dt.datetime | None = None,
    volume_in_lots: bool = False,
) -> Bars:
    """Turn parsed columns into :class:`~ibdata.models.Bars` with the request's metadata.

    ``asked_end`` is the end the request gave (None for "now"): TWS renders it as the
    answer's end, in its login zone below server version 174, which tells the login zone's
    offset at that instant (see :meth:`ibdata._zones.SessionZone.learn`).
    ``volume_in_lots``: the volumes are in lots of 100 shares (US stocks below server
    version 175, see :func:`volume_in_lots`); they are returned in shares.

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
        if name in ("open", "high", "low", "close") and column and max(column) >= UNSET_LONG:
            raise ValueError(f"a bar's {name} is IB's 'no value' sentinel")
    volume, wap, count = _unset_as_missing(columns)
    if volume_in_lots:
        # Lots carry at most two decimals, so the shares are whole; rounding removes the
        # binary noise of the product (0.29 lots x 100 is 28.999999999999996 in floats).
        volume = array("d", (round(v * LOT, 6) if v >= 0 else v for v in volume))
    if asked_end is not None and isinstance(login_tz, SessionZone):
        echoed = _TWO_SPACE.fullmatch(columns.end.strip())
        if echoed:
            wall = dt.datetime.strptime(echoed.group(1) + echoed.group(2), "%Y%m%d%H:%M:%S")
            login_tz.learn(wall, asked_end)

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
        volume,
        wap,
        count,
        intraday=intraday,
        contract=contract,
        bar_size=bar_size,
        what_to_show=what_to_show,
        use_rth=use_rth,
        start=window(columns.start),
        end=window(columns.end),
        time_zone=time_zone,
    )


#: Shares in a lot: TWS sends US stocks' historical volume in lots below server version 175.
LOT = 100
#: MIN_SERVER_VER_HMDS_MARKET_DATA_IN_SHARES: from it, historical volume comes in shares.
HMDS_MARKET_DATA_IN_SHARES = 175


def volume_in_lots(contract: Contract, server_version: int) -> bool:
    """True when TWS sends this contract's historical volume in lots of 100 shares: a US
    stock (or ETF) below server version 175 (whole lots below 163, with two decimals from
    163: a capture at 165 shows TSLA's daily volume as ``948837.22``)."""
    return (
        server_version < HMDS_MARKET_DATA_IN_SHARES
        and contract.sec_type == "STK"
        and contract.currency == "USD"
    )


def _unset_as_missing(columns: BarColumns) -> tuple[array[float], array[float], array[int]]:
    """Volume, WAP and count with ibapi's "no value" sentinels (UNSET_DECIMAL, UNSET_DOUBLE,
    UNSET_INTEGER) turned into ibdata's missing values (NaN, NaN, -1).

    The columns are returned as they are when no value is that large (one C-speed ``max``
    per column), which is every answer real TWS sends today.
    """
    volume, wap, count = columns.volume, columns.wap, columns.count
    if volume and max(volume) >= UNSET_INTEGER:
        volume = array("d", (math.nan if is_unset(v) else v for v in volume))
    if wap and max(wap) >= UNSET_INTEGER:
        wap = array("d", (math.nan if is_unset(v) else v for v in wap))
    if count and max(count) >= UNSET_INTEGER:
        count = array("q", (-1 if c >= UNSET_INTEGER else c for c in count))
    return volume, wap, count


def columns_from_bar_data(items: list[Any], start: str, end: str) -> BarColumns:
    """Columns from ibapi ``BarData`` callbacks (the slow path for layouts without the fast
    parser). The WAP is ``average`` in ibapi 9.81 and ``wap`` in 10.x."""

    def wap(b: Any) -> float:
        return float(bar_wap(b))

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
