"""Message layouts of the simulator, per negotiated server version (157-200).

Each ``*_fields`` function returns the field list of one incoming-to-the-client message
exactly as TWS lays it out at that server version; the numbered sections refer to
``reference/tws-wire-protocol.md``. Request parsers turn a client's fields into records.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ibdata.sim._framing import Field
from ibdata.sim._model import ContractQuery, SimContract

# Incoming (server -> client) message ids.
IN_ERROR = 4
IN_NEXT_VALID_ID = 9
IN_CONTRACT_DATA = 10
IN_MANAGED_ACCTS = 15
IN_HISTORICAL_DATA = 17
IN_CURRENT_TIME = 49
IN_CONTRACT_DATA_END = 52
IN_OPEN_ORDER_END = 53
IN_ACCOUNT_DOWNLOAD_END = 54
IN_EXEC_DETAILS_END = 55
IN_POSITION_END = 62
IN_ACCOUNT_SUMMARY_END = 64
IN_ACCOUNT_UPDATE_MULTI_END = 74
IN_HEAD_TIMESTAMP = 88
IN_HISTORICAL_DATA_UPDATE = 90
IN_COMPLETED_ORDERS_END = 102
IN_HISTORICAL_DATA_END = 108
IN_CURRENT_TIME_IN_MILLIS = 109

# Outgoing (client -> server) message ids.
OUT_REQ_OPEN_ORDERS = 5
OUT_REQ_ACCOUNT_UPDATES = 6
OUT_REQ_EXECUTIONS = 7
OUT_REQ_IDS = 8
OUT_REQ_CONTRACT_DATA = 9
OUT_REQ_AUTO_OPEN_ORDERS = 15
OUT_REQ_MANAGED_ACCTS = 17
OUT_REQ_HISTORICAL_DATA = 20
OUT_CANCEL_HISTORICAL_DATA = 25
OUT_REQ_CURRENT_TIME = 49
OUT_REQ_MARKET_DATA_TYPE = 59
OUT_REQ_POSITIONS = 61
OUT_REQ_ACCOUNT_SUMMARY = 62
OUT_START_API = 71
OUT_REQ_ACCOUNT_UPDATES_MULTI = 76
OUT_REQ_HEAD_TIMESTAMP = 87
OUT_CANCEL_HEAD_TIMESTAMP = 90
OUT_REQ_COMPLETED_ORDERS = 99
OUT_REQ_CURRENT_TIME_IN_MILLIS = 105

#: Order messages: a read-only data gateway must never see these.
ORDER_MESSAGE_IDS = {
    3: "placeOrder",
    4: "cancelOrder",
    58: "reqGlobalCancel",
    21: "exerciseOptions",
}

OUT_NAMES = {
    OUT_REQ_OPEN_ORDERS: "reqOpenOrders",
    OUT_REQ_ACCOUNT_UPDATES: "reqAccountUpdates",
    OUT_REQ_EXECUTIONS: "reqExecutions",
    OUT_REQ_IDS: "reqIds",
    OUT_REQ_CONTRACT_DATA: "reqContractDetails",
    OUT_REQ_AUTO_OPEN_ORDERS: "reqAutoOpenOrders",
    OUT_REQ_MANAGED_ACCTS: "reqManagedAccts",
    OUT_REQ_HISTORICAL_DATA: "reqHistoricalData",
    OUT_CANCEL_HISTORICAL_DATA: "cancelHistoricalData",
    OUT_REQ_CURRENT_TIME: "reqCurrentTime",
    OUT_REQ_MARKET_DATA_TYPE: "reqMarketDataType",
    OUT_REQ_POSITIONS: "reqPositions",
    OUT_REQ_ACCOUNT_SUMMARY: "reqAccountSummary",
    OUT_START_API: "startApi",
    OUT_REQ_ACCOUNT_UPDATES_MULTI: "reqAccountUpdatesMulti",
    OUT_REQ_HEAD_TIMESTAMP: "reqHeadTimestamp",
    OUT_CANCEL_HEAD_TIMESTAMP: "cancelHeadTimestamp",
    OUT_REQ_COMPLETED_ORDERS: "reqCompletedOrders",
    OUT_REQ_CURRENT_TIME_IN_MILLIS: "reqCurrentTimeInMillis",
    **ORDER_MESSAGE_IDS,
}

# Server-version gates (§2; 179-200 from IB's Python client 10.30-10.51).
FRACTIONAL_SIZE_SUPPORT = 163
SIZE_RULES = 164
ADVANCED_ORDER_REJECT = 166
INSTRUMENT_TIMEZONE = 174
BOND_ISSUERID = 176
LAST_TRADE_DATE = 182
INELIGIBILITY_REASONS = 186
ERROR_TIME = 194
HISTORICAL_DATA_END = 196
CURRENT_TIME_IN_MILLIS = 197
PARAMETRIZED_DAYS_OF_EXECUTIONS = 200

MIN_SERVER_VERSION = 157
#: The last server version whose messages are all text: from 201 TWS frames message ids as
#: binary integers and sends protobuf.
MAX_SERVER_VERSION = 200


def error_fields(
    req_id: int, code: int, text: str, server_version: int, *, time_ms: int = 0
) -> list[Field]:
    """error (4), §3.1: a 6th empty advancedOrderRejectJson field from server version 166;
    from 194 no version field, and the error's time (epoch milliseconds) at the end."""
    if server_version >= ERROR_TIME:
        return [IN_ERROR, req_id, code, text, "", time_ms]
    fields: list[Field] = [IN_ERROR, 2, req_id, code, text]
    if server_version >= ADVANCED_ORDER_REJECT:
        fields.append("")
    return fields


def managed_accounts_fields(accounts: Sequence[str]) -> list[Field]:
    """managedAccounts (15), §3.12: a comma-separated list."""
    return [IN_MANAGED_ACCTS, 1, ",".join(accounts)]


def next_valid_id_fields(order_id: int) -> list[Field]:
    """nextValidId (9), §3.12."""
    return [IN_NEXT_VALID_ID, 1, order_id]


def current_time_fields(epoch: int) -> list[Field]:
    """currentTime (49), §3.10: epoch seconds."""
    return [IN_CURRENT_TIME, 1, epoch]


def current_time_in_millis_fields(epoch_ms: int) -> list[Field]:
    """currentTimeInMillis (109), server version 197+: epoch milliseconds, no version."""
    return [IN_CURRENT_TIME_IN_MILLIS, epoch_ms]


def historical_data_end_fields(req_id: int, start: str, end: str) -> list[Field]:
    """historicalDataEnd (108), server version 196+: the window that historicalData (17)
    no longer carries."""
    return [IN_HISTORICAL_DATA_END, req_id, start, end]


def contract_data_end_fields(req_id: int) -> list[Field]:
    """contractDataEnd (52), §3.3."""
    return [IN_CONTRACT_DATA_END, 1, req_id]


def head_timestamp_fields(req_id: int, text: str) -> list[Field]:
    """headTimestamp (88), §3.9: no version field."""
    return [IN_HEAD_TIMESTAMP, req_id, text]


def _num(value: float) -> str:
    """A float as short decimal text, never in exponent form (``0.00005``, ``1000``)."""
    text = f"{float(value):.10f}".rstrip("0").rstrip(".")
    return text or "0"


def contract_data_fields(
    req_id: int,
    c: SimContract,
    server_version: int,
    *,
    trading_hours: str,
    liquid_hours: str,
    last_trade: str | None = None,
) -> list[Field]:
    """contractData (10), §3.3: 157-162, 163 (sizeMinTick), 164-181 (size rules, no version
    field), 182-185 (lastTradeDate after lastTradeDateOrContractMonth) and 186-200
    (ineligibility reasons: a count, always 0 here, at the end). The fund fields of 179+
    belong to secType FUND only, which the catalog has none of."""
    last = c.last_trade_date
    if last_trade is not None:
        last = last_trade  # written by the server in its api_time_zone style
    elif last and c.last_trade_time:
        last = f"{last} {c.last_trade_time} {c.time_zone_id}"
    f: list[Field] = [IN_CONTRACT_DATA]
    if server_version < SIZE_RULES:
        f.append(8)
    f += [req_id, c.symbol, c.sec_type, last]
    if server_version >= LAST_TRADE_DATE:
        f.append(c.last_trade_date)  # empty for stocks (sv 200 capture); the day for futures
    f += [
        "0",  # strike: TWS sends 0 for stocks and futures alike (§5.1, §5.3)
        "",
        c.exchange,
        c.currency,
        c.local_symbol,
        c.market_name,
        c.trading_class,
        c.con_id,
        _num(c.min_tick),
    ]
    if server_version < SIZE_RULES:
        f.append(c.md_size_multiplier)
    f += [
        c.multiplier,
        c.order_types,
        c.valid_exchanges or c.exchange,
        c.price_magnifier,
        c.under_con_id,
        c.long_name,
        c.primary_exchange,
        c.contract_month,
        c.industry,
        c.category,
        c.subcategory,
        c.time_zone_id,
        trading_hours,
        liquid_hours,
        "",  # evRule
        "",  # evMultiplier: empty, never "1.0" (both clients read an int)
        len(c.sec_ids),
    ]
    for tag, value in c.sec_ids:
        f += [tag, value]
    f += [
        c.agg_group,
        c.under_symbol,
        c.under_sec_type,
        c.market_rule_ids,
        c.real_expiration_date,
        c.stock_type,
    ]
    if server_version == FRACTIONAL_SIZE_SUPPORT:
        f.append(c.size_increment)  # sizeMinTick
    elif server_version >= SIZE_RULES:
        f += [c.min_size, c.size_increment, c.suggested_size_increment]
    if server_version >= INELIGIBILITY_REASONS:
        f.append(0)
    return f


@attrs.frozen
class WireBar:
    """One bar already rendered as wire text."""

    date: str
    open: str
    high: str
    low: str
    close: str
    volume: str
    wap: str
    count: str


def historical_data_fields(
    req_id: int, start: str, end: str, bars: Sequence[WireBar], *, server_version: int
) -> list[Field]:
    """historicalData (17), §3.6: no version field in range; 5 + 8n fields, and from server
    version 196 3 + 8n (start and end move to historicalDataEnd, 108)."""
    f: list[Field] = [IN_HISTORICAL_DATA, req_id]
    if server_version < HISTORICAL_DATA_END:
        f += [start, end]
    f.append(len(bars))
    for b in bars:
        f += [b.date, b.open, b.high, b.low, b.close, b.volume, b.wap, b.count]
    return f


def historical_data_frame(
    req_id: int, start: str, end: str, count: int, body: bytes, *, server_version: int
) -> bytes:
    """historicalData (17) as one frame, from bar fields already encoded, followed from
    server version 196 by historicalDataEnd (108).

    ``body`` holds ``count`` bars, each eight NUL-terminated ASCII fields; the result is
    byte for byte what :func:`historical_data_fields` (and
    :func:`historical_data_end_fields`) give for the same bars.
    """
    if server_version < HISTORICAL_DATA_END:
        head = f"{IN_HISTORICAL_DATA}\0{req_id}\0{start}\0{end}\0{count}\0".encode("ascii")
        return (len(head) + len(body)).to_bytes(4, "big") + head + body
    head = f"{IN_HISTORICAL_DATA}\0{req_id}\0{count}\0".encode("ascii")
    tail = f"{IN_HISTORICAL_DATA_END}\0{req_id}\0{start}\0{end}\0".encode("ascii")
    return (
        (len(head) + len(body)).to_bytes(4, "big")
        + head
        + body
        + len(tail).to_bytes(4, "big")
        + tail
    )


def encode_bar_fields(bars: Sequence[Sequence[str]]) -> bytes:
    """Encode bars' fields (eight strings each) as they appear inside historicalData."""
    return "".join("\0".join(b) + "\0" for b in bars).encode("ascii")


def historical_data_update_fields(req_id: int, count: str, bar: WireBar) -> list[Field]:
    """historicalDataUpdate (90), §3.7: note open, close, high, low, then WAP, volume."""
    return [
        IN_HISTORICAL_DATA_UPDATE,
        req_id,
        count,
        bar.date,
        bar.open,
        bar.close,
        bar.high,
        bar.low,
        bar.wap,
        bar.volume,
    ]


class FieldCursor:
    """Reads a request's fields one by one, raising :class:`ValueError` with context."""

    def __init__(self, fields: Sequence[str], start: int = 1) -> None:
        self._f = fields
        self._i = start

    def text(self) -> str:
        """The next field as text."""
        if self._i >= len(self._f):
            raise ValueError(f"message ends after {len(self._f)} fields")
        value = self._f[self._i]
        self._i += 1
        return value

    def integer(self) -> int:
        """The next field as an integer (empty means 0)."""
        value = self.text()
        try:
            return int(value) if value else 0
        except ValueError:
            raise ValueError(f"field {self._i - 1} is not an integer: {value[:20]!r}") from None

    def number(self) -> float:
        """The next field as a float (empty means 0)."""
        value = self.text()
        try:
            return float(value) if value else 0.0
        except ValueError:
            raise ValueError(f"field {self._i - 1} is not a number: {value[:20]!r}") from None

    def flag(self) -> bool:
        """The next field as ``0``/``1``."""
        return self.integer() != 0

    @property
    def remaining(self) -> int:
        """Fields not read yet."""
        return len(self._f) - self._i


def read_contract(cur: FieldCursor, *, with_con_id: bool = True) -> ContractQuery:
    """Read the 12 contract fields shared by reqHistoricalData and reqHeadTimestamp."""
    con_id = cur.integer() if with_con_id else 0
    return ContractQuery(
        con_id=con_id,
        symbol=cur.text(),
        sec_type=cur.text(),
        last_trade_date_or_contract_month=cur.text(),
        strike=cur.number(),
        right=cur.text(),
        multiplier=cur.text(),
        exchange=cur.text(),
        primary_exchange=cur.text(),
        currency=cur.text(),
        local_symbol=cur.text(),
        trading_class=cur.text(),
    )


def read_contract_details_request(
    fields: Sequence[str], server_version: int
) -> tuple[int, ContractQuery]:
    """reqContractDetails (9), §3.2: 18 fields, 19 with issuerId from server version 176."""
    cur = FieldCursor(fields)
    cur.integer()  # version 8
    req_id = cur.integer()
    q = read_contract(cur)
    include_expired = cur.flag()
    sec_id_type = cur.text()
    sec_id = cur.text()
    issuer_id = cur.text() if server_version >= BOND_ISSUERID and cur.remaining else ""
    return req_id, attrs.evolve(
        q,
        include_expired=include_expired,
        sec_id_type=sec_id_type,
        sec_id=sec_id,
        issuer_id=issuer_id,
    )


@attrs.frozen
class HistoricalRequest:
    """A parsed reqHistoricalData (20), §3.4."""

    req_id: int
    contract: ContractQuery
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


def read_historical_request(fields: Sequence[str]) -> HistoricalRequest:
    """reqHistoricalData (20), §3.4: no version field for server versions >= 124."""
    cur = FieldCursor(fields)
    req_id = cur.integer()
    q = read_contract(cur)
    q = attrs.evolve(q, include_expired=cur.flag())
    end = cur.text()
    bar_size = cur.text()
    duration = cur.text()
    use_rth = cur.flag()
    what_to_show = cur.text()
    format_date = cur.integer()
    if q.sec_type == "BAG":
        legs = cur.integer()
        for _ in range(legs * 4):
            cur.text()
    keep_up_to_date = cur.flag()
    return HistoricalRequest(
        req_id, q, end, bar_size, duration, use_rth, what_to_show, format_date, keep_up_to_date
    )


@attrs.frozen
class HeadTimestampRequest:
    """A parsed reqHeadTimestamp (87), §3.9."""

    req_id: int
    contract: ContractQuery
    use_rth: bool
    what_to_show: str
    format_date: int


def read_head_timestamp_request(fields: Sequence[str]) -> HeadTimestampRequest:
    """reqHeadTimestamp (87), §3.9: 18 fields, no version field."""
    cur = FieldCursor(fields)
    req_id = cur.integer()
    q = read_contract(cur)
    q = attrs.evolve(q, include_expired=cur.flag())
    use_rth = cur.flag()
    what_to_show = cur.text()
    format_date = cur.integer()
    return HeadTimestampRequest(req_id, q, use_rth, what_to_show, format_date)
