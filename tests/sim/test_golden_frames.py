"""Golden frames for the simulator's encoders, cross-checked with the official decoders.

Every expected byte string below is written out by hand from ``tws-wire-protocol.md`` (§1.1
framing, §3.1 error, §3.3 contractData, §3.6/§3.7 historical data, §3.9 headTimestamp, §3.10
currentTime, §3.12 ids and accounts, §5 real captures); none is computed by the code under
test. The same frames are then fed to ``ibapi`` 9.81.1 (server version 157, its maximum) and
to ``ib_async`` 2.1.0 (every server version tested), which must decode the values we meant.
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
from typing import Any

import ib_async.decoder
import ibapi.comm
import ibapi.decoder
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ib_async.util import parseIBDatetime

from ibdata.sim._framing import (
    FrameReader,
    Hello,
    ProtocolError,
    encode,
    parse_hello,
    split_fields,
)
from ibdata.sim._messages import (
    WireBar,
    contract_data_end_fields,
    contract_data_fields,
    current_time_fields,
    error_fields,
    head_timestamp_fields,
    historical_data_fields,
    historical_data_update_fields,
    managed_accounts_fields,
    next_valid_id_fields,
)
from ibdata.sim._model import SessionTemplate, SimContract

SERVER_VERSIONS = [157, 163, 164, 166, 176, 178]
#: The same plus the last version before each gate (163, 164, 166), for the golden layouts.
GATE_VERSIONS = [157, 162, 163, 164, 165, 166, 176, 178]
IBAPI_VERSION = 157  # ibapi 9.81.1 announces v100..157, so it always runs at 157 (§1.2)

# --- error (4), §3.1 and §5.2 -------------------------------------------------------------
# The 2104 usfarm notice: 53 bytes with 5 fields, 54 with the empty advancedOrderRejectJson
# (the nautilus_trader capture at 176 lists this very frame as 54 bytes, §5.2).
FARM_TEXT = "Market data farm connection is OK:usfarm"
ERROR_FARM_5 = b"\x00\x00\x00\x35" + (
    b"4\x002\x00-1\x002104\x00Market data farm connection is OK:usfarm\x00"
)
ERROR_FARM_6 = b"\x00\x00\x00\x36" + (
    b"4\x00"
    b"2\x00"
    b"-1\x00"
    b"2104\x00"
    b"Market data farm connection is OK:usfarm\x00"
    b"\x00"  # advancedOrderRejectJson
)
NOT_FOUND_TEXT = "No security definition has been found for the request"
ERROR_200_5 = b"\x00\x00\x00\x43" + (
    b"4\x002\x009001\x00200\x00No security definition has been found for the request\x00"
)
ERROR_200_6 = b"\x00\x00\x00\x44" + (
    b"4\x00"
    b"2\x00"
    b"9001\x00"
    b"200\x00"
    b"No security definition has been found for the request\x00"
    b"\x00"  # advancedOrderRejectJson
)

# --- managedAccounts (15), nextValidId (9), currentTime (49), contractDataEnd (52) ---------
MANAGED_ACCOUNTS = b"\x00\x00\x00\x0f" + b"15\x001\x00DU1234567\x00"  # §5.2 exactly
MANAGED_ACCOUNTS_TWO = b"\x00\x00\x00\x19" + b"15\x001\x00DU1234567,DU7654321\x00"
NEXT_VALID_ID = b"\x00\x00\x00\x08" + b"9\x001\x00117\x00"  # §5.2 exactly
CURRENT_TIME = b"\x00\x00\x00\x10" + b"49\x001\x001781163646\x00"  # §3.10
CONTRACT_DATA_END = b"\x00\x00\x00\x0a" + b"52\x001\x009001\x00"

# --- headTimestamp (88), §3.9 ---------------------------------------------------------------
HEAD_TIMESTAMP_EPOCH = b"\x00\x00\x00\x13" + b"88\x009000\x001678323335\x00"
HEAD_TIMESTAMP_DASHED = b"\x00\x00\x00\x1a" + b"88\x001001\x0019801212-14:30:00\x00"

# --- historicalData (17), §3.6; historicalDataUpdate (90), §3.7 -----------------------------
BARS = [
    WireBar(
        date="20240102  09:30:00",
        open="187.15",
        high="187.80",
        low="186.90",
        close="187.42",
        volume="5123",
        wap="187.3312",
        count="2210",
    ),
    WireBar(
        date="20240102  09:35:00",
        open="187.42",
        high="187.55",
        low="186.71",
        close="186.88",
        volume="3410",
        wap="187.101",
        count="1504",
    ),
]
HISTORICAL_DATA = b"\x00\x00\x00\xb3" + (
    b"17\x00"
    b"9000\x00"
    b"20240102  09:30:00\x00"  # startDateStr
    b"20240102  09:40:00\x00"  # endDateStr
    b"2\x00"
    b"20240102  09:30:00\x00187.15\x00187.80\x00186.90\x00187.42\x005123\x00187.3312\x002210\x00"
    b"20240102  09:35:00\x00187.42\x00187.55\x00186.71\x00186.88\x003410\x00187.101\x001504\x00"
)
# The real 2023 capture of §5.3 (rust-ibapi v1.0.7): decimal volume and WAP, legal from 163.
TSLA_BARS = [
    WireBar(
        date="20230413",
        open="182.9400",
        high="186.5000",
        low="180.9400",
        close="185.9000",
        volume="948837.22",
        wap="184.869",
        count="324891",
    ),
    WireBar(
        date="20230414",
        open="183.8800",
        high="186.2800",
        low="182.0100",
        close="185.0000",
        volume="810998.27",
        wap="183.9865",
        count="277547",
    ),
]
HISTORICAL_DATA_DECIMAL = b"\x00\x00\x00\xbd" + (
    b"17\x00"
    b"9000\x00"
    b"20230413  16:31:22\x00"
    b"20230415  16:31:22\x00"
    b"2\x00"
    b"20230413\x00182.9400\x00186.5000\x00180.9400\x00185.9000\x00948837.22\x00184.869\x00324891\x00"
    b"20230414\x00183.8800\x00186.2800\x00182.0100\x00185.0000\x00810998.27\x00183.9865\x00277547\x00"
)
UPDATE_BAR = WireBar(
    date="20240102  09:40:00",
    open="186.88",
    high="187.20",
    low="186.80",
    close="187.05",
    volume="812",
    wap="187.0102",
    count="99",  # ignored: the update's barCount is a separate argument
)
HISTORICAL_DATA_UPDATE = b"\x00\x00\x00\x47" + (
    b"90\x00"
    b"9000\x00"
    b"-1\x00"  # barCount
    b"20240102  09:40:00\x00"
    b"186.88\x00"  # open
    b"187.05\x00"  # close
    b"187.20\x00"  # high
    b"186.80\x00"  # low
    b"187.0102\x00"  # WAP
    b"812\x00"  # volume
)

# --- contractData (10), §3.3 ----------------------------------------------------------------
AAPL_TRADING = "20250324:0400-20250324:2000;20250325:0400-20250325:2000"
AAPL_LIQUID = "20250324:0930-20250324:1600;20250325:0930-20250325:1600"
AAPL = SimContract(
    con_id=265598,
    symbol="AAPL",
    sec_type="STK",
    exchange="SMART",
    currency="USD",
    local_symbol="AAPL",
    trading_class="NMS",
    primary_exchange="ISLAND",
    market_name="NMS",
    min_tick=0.01,
    order_types="ACTIVETIM,AD,LMT,MKT,STP,WHATIF",
    valid_exchanges="SMART,AMEX,NYSE",
    long_name="APPLE INC",
    industry="Technology",
    category="Computers",
    subcategory="Computers",
    time_zone_id="US/Eastern",
    sec_ids=(("ISIN", "US0378331005"),),
    agg_group=1,
    market_rule_id=26,
    stock_type="COMMON",
    md_size_multiplier=1,
    min_size="0.0001",
    size_increment="0.0001",
    suggested_size_increment="100",
)
# reqId .. minTick: the 13 fields after the id (and version) in every layout.
_AAPL_HEAD = (
    b"9001\x00"  # reqId
    b"AAPL\x00"
    b"STK\x00"
    b"\x00"  # lastTradeDateOrContractMonth
    b"0\x00"  # strike
    b"\x00"  # right
    b"SMART\x00"
    b"USD\x00"
    b"AAPL\x00"  # localSymbol
    b"NMS\x00"  # marketName
    b"NMS\x00"  # tradingClass
    b"265598\x00"  # conId
    b"0.01\x00"  # minTick
)
# multiplier .. stockType: 25 fields with one secId pair.
_AAPL_TAIL = (
    b"\x00"  # multiplier
    b"ACTIVETIM,AD,LMT,MKT,STP,WHATIF\x00"
    b"SMART,AMEX,NYSE\x00"
    b"1\x00"  # priceMagnifier
    b"0\x00"  # underConId
    b"APPLE INC\x00"
    b"ISLAND\x00"  # primaryExchange
    b"\x00"  # contractMonth
    b"Technology\x00"
    b"Computers\x00"
    b"Computers\x00"
    b"US/Eastern\x00"
    b"20250324:0400-20250324:2000;20250325:0400-20250325:2000\x00"
    b"20250324:0930-20250324:1600;20250325:0930-20250325:1600\x00"
    b"\x00"  # evRule
    b"\x00"  # evMultiplier
    b"1\x00"  # secIdListCount
    b"ISIN\x00"
    b"US0378331005\x00"
    b"1\x00"  # aggGroup
    b"\x00"  # underSymbol
    b"\x00"  # underSecType
    b"26,26,26\x00"  # marketRuleIds, one per valid exchange
    b"\x00"  # realExpirationDate
    b"COMMON\x00"  # stockType
)
# minSize, sizeIncrement, suggestedSizeIncrement (164+), as in the §5.1 capture.
_AAPL_SIZES = b"0.0001\x00" + b"0.0001\x00" + b"100\x00"
# 157-162: id, version 8, head, mdSizeMultiplier 1, tail; 163 appends sizeMinTick.
AAPL_157 = b"\x00\x00\x01\x48" + b"10\x00" + b"8\x00" + _AAPL_HEAD + b"1\x00" + _AAPL_TAIL
AAPL_163 = (
    b"\x00\x00\x01\x4f" + b"10\x00" + b"8\x00" + _AAPL_HEAD + b"1\x00" + _AAPL_TAIL + b"0.0001\x00"
)
# 164+: no version, no mdSizeMultiplier, the three size rules at the end.
AAPL_164 = b"\x00\x00\x01\x56" + b"10\x00" + _AAPL_HEAD + _AAPL_TAIL + _AAPL_SIZES

GBL_TRADING = "20250303:0100-20250303:2200;20250304:0100-20250304:2200"
GBL_LIQUID = "20250303:0800-20250303:1715;20250304:0800-20250304:1715"
GBL = SimContract(
    con_id=723779556,  # made up
    symbol="GBL",
    sec_type="FUT",
    exchange="EUREX",
    currency="EUR",
    local_symbol="FGBL MAR 25",
    trading_class="FGBL",
    market_name="FGBL",
    last_trade_date="20250306",
    last_trade_time="12:30",
    contract_month="202503",
    multiplier="1000",
    min_tick=0.01,
    order_types="ACTIVETIM,AD,LMT,MKT,STP,WHATIF",
    valid_exchanges="EUREX",
    under_con_id=38692370,  # made up
    long_name="Euro-Bund (10 Year Bond)",
    time_zone_id="MET",
    agg_group=2147483647,  # the ES capture of §5.3 carries UNSET_INTEGER here
    under_symbol="GBL",  # illustrative: distinct values catch swapped fields
    under_sec_type="BOND",
    market_rule_id=1636,  # made up
    real_expiration_date="20250306",
    md_size_multiplier=1,
    min_size="1",
    size_increment="1",
    suggested_size_increment="1",
)
_GBL_HEAD = (
    b"9002\x00"  # reqId
    b"GBL\x00"
    b"FUT\x00"
    b"20250306 12:30 MET\x00"  # date, time and zone in one field, like §5.3's ES
    b"0\x00"  # strike
    b"\x00"  # right
    b"EUREX\x00"
    b"EUR\x00"
    b"FGBL MAR 25\x00"  # localSymbol
    b"FGBL\x00"  # marketName
    b"FGBL\x00"  # tradingClass
    b"723779556\x00"  # conId
    b"0.01\x00"  # minTick
)
# multiplier .. stockType: 23 fields, no secIds.
_GBL_TAIL = (
    b"1000\x00"  # multiplier
    b"ACTIVETIM,AD,LMT,MKT,STP,WHATIF\x00"
    b"EUREX\x00"  # validExchanges
    b"1\x00"  # priceMagnifier
    b"38692370\x00"  # underConId
    b"Euro-Bund (10 Year Bond)\x00"
    b"\x00"  # primaryExchange
    b"202503\x00"  # contractMonth
    b"\x00"  # industry
    b"\x00"  # category
    b"\x00"  # subcategory
    b"MET\x00"
    b"20250303:0100-20250303:2200;20250304:0100-20250304:2200\x00"
    b"20250303:0800-20250303:1715;20250304:0800-20250304:1715\x00"
    b"\x00"  # evRule
    b"\x00"  # evMultiplier
    b"0\x00"  # secIdListCount
    b"2147483647\x00"  # aggGroup
    b"GBL\x00"  # underSymbol
    b"BOND\x00"  # underSecType
    b"1636\x00"  # marketRuleIds
    b"20250306\x00"  # realExpirationDate
    b"\x00"  # stockType
)
_GBL_SIZES = b"1\x00" + b"1\x00" + b"1\x00"
GBL_157 = b"\x00\x00\x01\x4e" + b"10\x00" + b"8\x00" + _GBL_HEAD + b"1\x00" + _GBL_TAIL
GBL_163 = b"\x00\x00\x01\x50" + b"10\x00" + b"8\x00" + _GBL_HEAD + b"1\x00" + _GBL_TAIL + b"1\x00"
GBL_164 = b"\x00\x00\x01\x50" + b"10\x00" + _GBL_HEAD + _GBL_TAIL + _GBL_SIZES

ALL_GOLDEN = {
    "ERROR_FARM_5": ERROR_FARM_5,
    "ERROR_FARM_6": ERROR_FARM_6,
    "ERROR_200_5": ERROR_200_5,
    "ERROR_200_6": ERROR_200_6,
    "MANAGED_ACCOUNTS": MANAGED_ACCOUNTS,
    "MANAGED_ACCOUNTS_TWO": MANAGED_ACCOUNTS_TWO,
    "NEXT_VALID_ID": NEXT_VALID_ID,
    "CURRENT_TIME": CURRENT_TIME,
    "CONTRACT_DATA_END": CONTRACT_DATA_END,
    "HEAD_TIMESTAMP_EPOCH": HEAD_TIMESTAMP_EPOCH,
    "HEAD_TIMESTAMP_DASHED": HEAD_TIMESTAMP_DASHED,
    "HISTORICAL_DATA": HISTORICAL_DATA,
    "HISTORICAL_DATA_DECIMAL": HISTORICAL_DATA_DECIMAL,
    "HISTORICAL_DATA_UPDATE": HISTORICAL_DATA_UPDATE,
    "AAPL_157": AAPL_157,
    "AAPL_163": AAPL_163,
    "AAPL_164": AAPL_164,
    "GBL_157": GBL_157,
    "GBL_163": GBL_163,
    "GBL_164": GBL_164,
}


def error_farm(sv: int) -> bytes:
    """The 2104 notice as TWS sends it at server version ``sv``."""
    return ERROR_FARM_6 if sv >= 166 else ERROR_FARM_5


def aapl(sv: int) -> bytes:
    """The AAPL contractData frame in the layout of server version ``sv``."""
    if sv < 163:
        return AAPL_157
    return AAPL_163 if sv == 163 else AAPL_164


def gbl(sv: int) -> bytes:
    """The GBL future contractData frame in the layout of server version ``sv``."""
    if sv < 163:
        return GBL_157
    return GBL_163 if sv == 163 else GBL_164


def frame(payload: bytes) -> bytes:
    """Length-prefix a payload (test-side framing, independent of the code under test)."""
    return struct.pack(">I", len(payload)) + payload


# --- decoding through the official clients ----------------------------------------------


class Recorder:
    """A minimal wrapper recording the callbacks either client's decoder makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def error(self, req_id: int, code: int, text: str, *rest: str) -> None:
        self.calls.append(("error", req_id, code, text, *rest))

    def nextValidId(self, order_id: int) -> None:
        self.calls.append(("nextValidId", order_id))

    def managedAccounts(self, accounts: str) -> None:
        self.calls.append(("managedAccounts", accounts))

    def currentTime(self, time: int) -> None:
        self.calls.append(("currentTime", time))

    def contractDetails(self, req_id: int, details: Any) -> None:
        self.calls.append(("contractDetails", req_id, details))

    def contractDetailsEnd(self, req_id: int) -> None:
        self.calls.append(("contractDetailsEnd", req_id))

    def historicalData(self, req_id: int, bar: Any) -> None:
        self.calls.append(("historicalData", req_id, bar_tuple(bar)))

    def historicalDataEnd(self, req_id: int, start: str, end: str) -> None:
        self.calls.append(("historicalDataEnd", req_id, start, end))

    def historicalDataUpdate(self, req_id: int, bar: Any) -> None:
        self.calls.append(("historicalDataUpdate", req_id, bar_tuple(bar)))

    def headTimestamp(self, req_id: int, text: str) -> None:
        self.calls.append(("headTimestamp", req_id, text))


def bar_tuple(bar: Any) -> tuple[Any, ...]:
    """A decoded bar of either client as (date, open, high, low, close, volume, wap, count)."""
    return (
        bar.date,
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.volume,
        bar.average,
        bar.barCount,
    )


def ibapi_fields(data: bytes) -> tuple[bytes, ...]:
    """Cut one frame with ibapi's own ``read_msg``/``read_fields``, checking nothing is left."""
    size, payload, rest = ibapi.comm.read_msg(data)
    assert (size, rest) == (len(data) - 4, b"")
    return ibapi.comm.read_fields(payload)


def ib_async_fields(data: bytes) -> list[str]:
    """Cut one frame the way ib_async's ``Client._onSocketHasData`` does."""
    (size,) = struct.unpack(">I", data[:4])
    assert size == len(data) - 4
    fields = data[4 : 4 + size].decode(errors="backslashreplace").split("\0")
    fields.pop()
    return fields


def ibapi_decode(data: bytes) -> list[tuple[Any, ...]]:
    """Run one frame through ibapi 9.81.1's decoder at server version 157."""
    rec = Recorder()
    ibapi.decoder.Decoder(rec, IBAPI_VERSION).interpret(ibapi_fields(data))
    return rec.calls


def ib_async_decode(data: bytes, sv: int) -> list[tuple[Any, ...]]:
    """Run one frame through ib_async 2.1.0's decoder at server version ``sv``."""
    rec = Recorder()
    ib_async.decoder.Decoder(rec, sv).interpret(ib_async_fields(data))
    return rec.calls


def details_of(calls: list[tuple[Any, ...]], req_id: int) -> Any:
    """The one ContractDetails a decoder delivered for ``req_id``."""
    assert [c[:2] for c in calls] == [("contractDetails", req_id)]
    return calls[0][2]


def common_details(cd: Any) -> dict[str, Any]:
    """The ContractDetails attributes both clients name and type alike."""
    c = cd.contract
    return {
        "conId": c.conId,
        "symbol": c.symbol,
        "secType": c.secType,
        "lastTradeDateOrContractMonth": c.lastTradeDateOrContractMonth,
        "strike": c.strike,
        "right": c.right,
        "exchange": c.exchange,
        "currency": c.currency,
        "localSymbol": c.localSymbol,
        "tradingClass": c.tradingClass,
        "primaryExchange": c.primaryExchange,
        "multiplier": c.multiplier,
        "marketName": cd.marketName,
        "minTick": cd.minTick,
        "orderTypes": cd.orderTypes,
        "validExchanges": cd.validExchanges,
        "priceMagnifier": cd.priceMagnifier,
        "underConId": cd.underConId,
        "longName": cd.longName,
        "contractMonth": cd.contractMonth,
        "industry": cd.industry,
        "category": cd.category,
        "subcategory": cd.subcategory,
        "timeZoneId": cd.timeZoneId,
        "tradingHours": cd.tradingHours,
        "liquidHours": cd.liquidHours,
        "evRule": cd.evRule,
        "evMultiplier": cd.evMultiplier,
        "secIdList": [(t.tag, t.value) for t in cd.secIdList or []],
        "aggGroup": cd.aggGroup,
        "underSymbol": cd.underSymbol,
        "underSecType": cd.underSecType,
        "marketRuleIds": cd.marketRuleIds,
        "realExpirationDate": cd.realExpirationDate,
        "stockType": cd.stockType,
        "lastTradeTime": cd.lastTradeTime,
    }


AAPL_DECODED = {
    "conId": 265598,
    "symbol": "AAPL",
    "secType": "STK",
    "lastTradeDateOrContractMonth": "",
    "strike": 0.0,
    "right": "",
    "exchange": "SMART",
    "currency": "USD",
    "localSymbol": "AAPL",
    "tradingClass": "NMS",
    "primaryExchange": "ISLAND",
    "multiplier": "",
    "marketName": "NMS",
    "minTick": 0.01,
    "orderTypes": "ACTIVETIM,AD,LMT,MKT,STP,WHATIF",
    "validExchanges": "SMART,AMEX,NYSE",
    "priceMagnifier": 1,
    "underConId": 0,
    "longName": "APPLE INC",
    "contractMonth": "",
    "industry": "Technology",
    "category": "Computers",
    "subcategory": "Computers",
    "timeZoneId": "US/Eastern",
    "tradingHours": AAPL_TRADING,
    "liquidHours": AAPL_LIQUID,
    "evRule": "",
    "evMultiplier": 0,
    "secIdList": [("ISIN", "US0378331005")],
    "aggGroup": 1,
    "underSymbol": "",
    "underSecType": "",
    "marketRuleIds": "26,26,26",
    "realExpirationDate": "",
    "stockType": "COMMON",
    "lastTradeTime": "",
}
GBL_DECODED = {
    "conId": 723779556,
    "symbol": "GBL",
    "secType": "FUT",
    "lastTradeDateOrContractMonth": "20250306",
    "strike": 0.0,
    "right": "",
    "exchange": "EUREX",
    "currency": "EUR",
    "localSymbol": "FGBL MAR 25",
    "tradingClass": "FGBL",
    "primaryExchange": "",
    "multiplier": "1000",
    "marketName": "FGBL",
    "minTick": 0.01,
    "orderTypes": "ACTIVETIM,AD,LMT,MKT,STP,WHATIF",
    "validExchanges": "EUREX",
    "priceMagnifier": 1,
    "underConId": 38692370,
    "longName": "Euro-Bund (10 Year Bond)",
    "contractMonth": "202503",
    "industry": "",
    "category": "",
    "subcategory": "",
    "timeZoneId": "MET",
    "tradingHours": GBL_TRADING,
    "liquidHours": GBL_LIQUID,
    "evRule": "",
    "evMultiplier": 0,
    "secIdList": [],
    "aggGroup": 2147483647,
    "underSymbol": "GBL",
    "underSecType": "BOND",
    "marketRuleIds": "1636",
    "realExpirationDate": "20250306",
    "stockType": "",
    "lastTradeTime": "12:30",
}
BARS_DECODED = [
    ("20240102  09:30:00", 187.15, 187.8, 186.9, 187.42, 5123, 187.3312, 2210),
    ("20240102  09:35:00", 187.42, 187.55, 186.71, 186.88, 3410, 187.101, 1504),
]
UPDATE_DECODED = ("20240102  09:40:00", 186.88, 187.2, 186.8, 187.05, 812, 187.0102, -1)


# --- 0. the golden data itself -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALL_GOLDEN))
def test_golden_constant_is_well_framed(name: str) -> None:
    """Each hand-written golden frame has a correct length prefix and NUL-terminated fields."""
    data = ALL_GOLDEN[name]
    (size,) = struct.unpack(">I", data[:4])
    payload = data[4:]
    assert size == len(payload)
    assert payload.endswith(b"\0")
    assert payload.isascii()


# --- 1. golden frames ----------------------------------------------------------------------
# Only error and contractData take the server version; the other encoders have one layout
# across 157-178, so their golden tests need no version (the decoder tests below still run
# them at every version).


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_error_farm_notice_frame(sv: int) -> None:
    """A farm notice is ``[4, 2, -1, 2104, text]``, plus an empty field from version 166."""
    assert encode(error_fields(-1, 2104, FARM_TEXT, sv)) == error_farm(sv)


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_error_request_frame(sv: int) -> None:
    """A request error carries the request id and gains advancedOrderRejectJson at 166."""
    expected = ERROR_200_6 if sv >= 166 else ERROR_200_5
    assert encode(error_fields(9001, 200, NOT_FOUND_TEXT, sv)) == expected


def test_managed_accounts_frame() -> None:
    """managedAccounts is ``[15, 1, accounts]`` with the accounts joined by commas."""
    assert encode(managed_accounts_fields(["DU1234567"])) == MANAGED_ACCOUNTS
    assert encode(managed_accounts_fields(["DU1234567", "DU7654321"])) == MANAGED_ACCOUNTS_TWO


def test_next_valid_id_frame() -> None:
    """nextValidId is ``[9, 1, id]``, byte for byte the §5.2 capture."""
    assert encode(next_valid_id_fields(117)) == NEXT_VALID_ID


def test_current_time_frame() -> None:
    """currentTime is ``[49, 1, epochSeconds]``."""
    assert encode(current_time_fields(1781163646)) == CURRENT_TIME


def test_contract_data_end_frame() -> None:
    """contractDataEnd is ``[52, 1, reqId]``."""
    assert encode(contract_data_end_fields(9001)) == CONTRACT_DATA_END


def test_head_timestamp_frames() -> None:
    """headTimestamp is ``[88, reqId, text]`` with no version field, epoch or dashed text."""
    assert encode(head_timestamp_fields(9000, "1678323335")) == HEAD_TIMESTAMP_EPOCH
    assert encode(head_timestamp_fields(1001, "19801212-14:30:00")) == HEAD_TIMESTAMP_DASHED


def test_historical_data_frame() -> None:
    """historicalData is ``[17, reqId, start, end, n, n x 8 bar fields]`` with no version."""
    fields = historical_data_fields(9000, "20240102  09:30:00", "20240102  09:40:00", BARS)
    assert len(fields) == 5 + 8 * 2
    assert encode(fields) == HISTORICAL_DATA


def test_historical_data_decimal_frame() -> None:
    """Decimal volume and WAP pass through untouched, reproducing the §5.3 capture."""
    fields = historical_data_fields(9000, "20230413  16:31:22", "20230415  16:31:22", TSLA_BARS)
    assert encode(fields) == HISTORICAL_DATA_DECIMAL


def test_historical_data_update_frame() -> None:
    """historicalDataUpdate orders open, close, high, low, then WAP before volume."""
    assert encode(historical_data_update_fields(9000, "-1", UPDATE_BAR)) == HISTORICAL_DATA_UPDATE


def test_historical_data_without_bars() -> None:
    """An empty answer still has start, end and a zero count."""
    assert (
        encode(historical_data_fields(7, "a", "b", []))
        == b"\x00\x00\x00\x0b" + b"17\x007\x00a\x00b\x000\x00"
    )


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_contract_data_stock_frame(sv: int) -> None:
    """AAPL's contractData follows the 157-162, 163 and 164+ layouts of §3.3 byte for byte."""
    fields = contract_data_fields(
        9001, AAPL, sv, trading_hours=AAPL_TRADING, liquid_hours=AAPL_LIQUID
    )
    assert encode(fields) == aapl(sv)


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_contract_data_future_frame(sv: int) -> None:
    """A future's contractData carries expiry time and zone, multiplier and month in place."""
    fields = contract_data_fields(9002, GBL, sv, trading_hours=GBL_TRADING, liquid_hours=GBL_LIQUID)
    assert encode(fields) == gbl(sv)


@pytest.mark.parametrize(
    ("sv", "count"), [(157, 41), (160, 41), (162, 41), (163, 42), (164, 42), (170, 42), (178, 42)]
)
def test_contract_data_field_count(sv: int, count: int) -> None:
    """With one secId pair contractData has 41 fields at 157-162 and 42 at 163 and 164-178."""
    fields = contract_data_fields(
        9001, AAPL, sv, trading_hours=AAPL_TRADING, liquid_hours=AAPL_LIQUID
    )
    assert len(fields) == count
    assert aapl(sv)[4:].count(b"\0") == count
    no_sec_ids = contract_data_fields(
        9002, GBL, sv, trading_hours=GBL_TRADING, liquid_hours=GBL_LIQUID
    )
    assert len(no_sec_ids) == count - 2


def test_contract_data_layouts_differ_only_where_the_reference_says() -> None:
    """163 appends sizeMinTick to the 157 layout; 164 drops version and mdSizeMultiplier."""
    f157 = [str(f) for f in contract_data_fields(1, AAPL, 157, trading_hours="", liquid_hours="")]
    f163 = [str(f) for f in contract_data_fields(1, AAPL, 163, trading_hours="", liquid_hours="")]
    f164 = [str(f) for f in contract_data_fields(1, AAPL, 164, trading_hours="", liquid_hours="")]
    assert f157[1] == "8"
    assert f163 == [*f157, "0.0001"]
    assert f164 == [f157[0], *f157[2:15], *f157[16:], "0.0001", "0.0001", "100"]


def test_session_template_hours_text() -> None:
    """Trading hours render as ``yyyymmdd:hhmm-yyyymmdd:hhmm`` and ``yyyymmdd:CLOSED`` entries."""
    day = SessionTemplate("0400", "2000").hours("US/Eastern", dt.date(2025, 3, 22), 4)
    assert day == (
        "20250322:CLOSED;20250323:CLOSED;20250324:0400-20250324:2000;20250325:0400-20250325:2000"
    )
    overnight = SessionTemplate("1700", "1600").hours("US/Central", dt.date(2025, 3, 17), 2)
    assert overnight == "20250316:1700-20250317:1600;20250317:1700-20250318:1600"


# --- 2a. ibapi 9.81.1 at server version 157 -----------------------------------------------


def test_ibapi_decodes_error() -> None:
    """ibapi delivers a 5-field error as ``error(reqId, code, text)``."""
    assert ibapi_decode(ERROR_FARM_5) == [("error", -1, 2104, FARM_TEXT)]
    assert ibapi_decode(ERROR_200_5) == [("error", 9001, 200, NOT_FOUND_TEXT)]


def test_ibapi_drops_six_field_error(caplog: pytest.LogCaptureFixture) -> None:
    """Documented quirk (§1.7, §3.1): ibapi drops an error with advancedOrderRejectJson."""
    with caplog.at_level(logging.ERROR, logger="ibapi.decoder"):
        assert ibapi_decode(ERROR_FARM_6) == []
    assert "diff len fields and params" in caplog.text


def test_ibapi_decodes_start_up_messages() -> None:
    """ibapi's exact-field-count decoders accept nextValidId, managedAccounts and currentTime."""
    assert ibapi_decode(NEXT_VALID_ID) == [("nextValidId", 117)]
    assert ibapi_decode(MANAGED_ACCOUNTS) == [("managedAccounts", "DU1234567")]
    assert ibapi_decode(MANAGED_ACCOUNTS_TWO) == [("managedAccounts", "DU1234567,DU7654321")]
    assert ibapi_decode(CURRENT_TIME) == [("currentTime", 1781163646)]
    assert ibapi_decode(CONTRACT_DATA_END) == [("contractDetailsEnd", 9001)]


@pytest.mark.parametrize(
    ("data", "req_id", "expected"),
    [(AAPL_157, 9001, AAPL_DECODED), (GBL_157, 9002, GBL_DECODED)],
    ids=["AAPL", "GBL"],
)
def test_ibapi_decodes_contract_data(data: bytes, req_id: int, expected: dict[str, Any]) -> None:
    """ibapi reads the version-8 layout with mdSizeMultiplier and gets every value back."""
    cd = details_of(ibapi_decode(data), req_id)
    assert common_details(cd) == expected
    assert cd.mdSizeMultiplier == 1


@pytest.mark.parametrize("data", [AAPL_157, GBL_157, HISTORICAL_DATA], ids=["AAPL", "GBL", "17"])
def test_ibapi_consumes_every_field(data: bytes) -> None:
    """ibapi's sequential decoders read exactly the fields the 157 frames carry, no more."""
    dec = ibapi.decoder.Decoder(Recorder(), IBAPI_VERSION)
    fields = iter(ibapi_fields(data))
    handler = dec.msgId2handleInfo[int(ibapi_fields(data)[0])].processMeth
    handler(dec, fields)
    assert list(fields) == []


def test_ibapi_decodes_historical_data() -> None:
    """ibapi delivers each bar (integer volume) and then historicalDataEnd with start and end."""
    assert ibapi_decode(HISTORICAL_DATA) == [
        ("historicalData", 9000, BARS_DECODED[0]),
        ("historicalData", 9000, BARS_DECODED[1]),
        ("historicalDataEnd", 9000, "20240102  09:30:00", "20240102  09:40:00"),
    ]


def test_ibapi_dies_on_decimal_volume() -> None:
    """Documented quirk (§3.6): decimal volume raises out of ibapi's decoder, so never at 157."""
    with pytest.raises(ValueError, match=r"948837\.22"):
        ibapi_decode(HISTORICAL_DATA_DECIMAL)


def test_ibapi_decodes_historical_data_update() -> None:
    """ibapi reads the update as barCount, date, open, close, high, low, WAP, volume."""
    assert ibapi_decode(HISTORICAL_DATA_UPDATE) == [("historicalDataUpdate", 9000, UPDATE_DECODED)]


def test_ibapi_decodes_head_timestamp() -> None:
    """ibapi passes the head timestamp through as text."""
    assert ibapi_decode(HEAD_TIMESTAMP_EPOCH) == [("headTimestamp", 9000, "1678323335")]
    assert ibapi_decode(HEAD_TIMESTAMP_DASHED) == [("headTimestamp", 1001, "19801212-14:30:00")]


# --- 2b. ib_async 2.1.0 at every server version --------------------------------------------


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ib_async_decodes_error(sv: int) -> None:
    """ib_async delivers the version's error frame with an empty advancedOrderRejectJson."""
    assert ib_async_decode(error_farm(sv), sv) == [("error", -1, 2104, FARM_TEXT, "")]
    request_error = ERROR_200_6 if sv >= 166 else ERROR_200_5
    assert ib_async_decode(request_error, sv) == [("error", 9001, 200, NOT_FOUND_TEXT, "")]


@pytest.mark.parametrize("sv", [sv for sv in SERVER_VERSIONS if sv >= 166])
def test_ib_async_drops_five_field_error_from_166(
    sv: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Documented quirk (§3.1): from 166 ib_async loses an error without the sixth field."""
    with caplog.at_level(logging.ERROR, logger="ib_async.Decoder"):
        assert ib_async_decode(ERROR_FARM_5, sv) == []
    assert "Error handling fields" in caplog.text


@pytest.mark.parametrize("sv", [sv for sv in SERVER_VERSIONS if sv < 166])
def test_ib_async_ignores_sixth_error_field_before_166(sv: int) -> None:
    """Below 166 ib_async ignores a surplus advancedOrderRejectJson field."""
    assert ib_async_decode(ERROR_FARM_6, sv) == [("error", -1, 2104, FARM_TEXT, "")]


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ib_async_decodes_start_up_messages(sv: int) -> None:
    """ib_async reads nextValidId, managedAccounts (3 fields each), currentTime and 52."""
    assert len(ib_async_fields(NEXT_VALID_ID)) == 3
    assert len(ib_async_fields(MANAGED_ACCOUNTS)) == 3
    assert ib_async_decode(NEXT_VALID_ID, sv) == [("nextValidId", 117)]
    assert ib_async_decode(MANAGED_ACCOUNTS, sv) == [("managedAccounts", "DU1234567")]
    assert ib_async_decode(MANAGED_ACCOUNTS_TWO, sv) == [("managedAccounts", "DU1234567,DU7654321")]
    assert ib_async_decode(CURRENT_TIME, sv) == [("currentTime", 1781163646)]
    assert ib_async_decode(CONTRACT_DATA_END, sv) == [("contractDetailsEnd", 9001)]


def size_rules(sv: int, min_size: float, increment: float, suggested: float) -> tuple[float, ...]:
    """What ib_async stores as (minSize, sizeIncrement, suggestedSizeIncrement) at ``sv``."""
    if sv < 163:
        return (0.0, 0.0, 0.0)
    if sv == 163:
        return (0.0, 0.0, increment)  # sizeMinTick lands in suggestedSizeIncrement
    return (min_size, increment, suggested)


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ib_async_decodes_stock_contract_data(sv: int) -> None:
    """ib_async decodes AAPL in each layout, size rules included where the layout has them."""
    cd = details_of(ib_async_decode(aapl(sv), sv), 9001)
    assert common_details(cd) == AAPL_DECODED
    sizes = (cd.minSize, cd.sizeIncrement, cd.suggestedSizeIncrement)
    assert sizes == size_rules(sv, 0.0001, 0.0001, 100.0)


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ib_async_decodes_future_contract_data(sv: int) -> None:
    """ib_async splits the future's expiry into date and time and keeps the zone MET."""
    cd = details_of(ib_async_decode(gbl(sv), sv), 9002)
    assert common_details(cd) == GBL_DECODED
    sizes = (cd.minSize, cd.sizeIncrement, cd.suggestedSizeIncrement)
    assert sizes == size_rules(sv, 1.0, 1.0, 1.0)


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ib_async_decodes_historical_data(sv: int) -> None:
    """ib_async delivers every bar with the fields in place, then historicalDataEnd."""
    calls = ib_async_decode(HISTORICAL_DATA, sv)
    assert calls == [
        ("historicalData", 9000, BARS_DECODED[0]),
        ("historicalData", 9000, BARS_DECODED[1]),
        ("historicalDataEnd", 9000, "20240102  09:30:00", "20240102  09:40:00"),
    ]
    for _, _, bar in calls[:2]:
        assert parseIBDatetime(bar[0]).isoformat() in ("2024-01-02T09:30:00", "2024-01-02T09:35:00")


@pytest.mark.parametrize("sv", [sv for sv in SERVER_VERSIONS if sv >= 163])
def test_ib_async_decodes_decimal_volume(sv: int) -> None:
    """ib_async reads the §5.3 capture's decimal volume and WAP as floats."""
    assert ib_async_decode(HISTORICAL_DATA_DECIMAL, sv) == [
        (
            "historicalData",
            9000,
            ("20230413", 182.94, 186.5, 180.94, 185.9, 948837.22, 184.869, 324891),
        ),
        (
            "historicalData",
            9000,
            ("20230414", 183.88, 186.28, 182.01, 185.0, 810998.27, 183.9865, 277547),
        ),
        ("historicalDataEnd", 9000, "20230413  16:31:22", "20230415  16:31:22"),
    ]


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ib_async_decodes_historical_data_update(sv: int) -> None:
    """ib_async reads the update's open, close, high, low order and WAP before volume."""
    assert ib_async_decode(HISTORICAL_DATA_UPDATE, sv) == [
        ("historicalDataUpdate", 9000, UPDATE_DECODED)
    ]


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ib_async_decodes_head_timestamp(sv: int) -> None:
    """ib_async passes the head timestamp on, and its parser accepts both text forms."""
    assert ib_async_decode(HEAD_TIMESTAMP_EPOCH, sv) == [("headTimestamp", 9000, "1678323335")]
    assert ib_async_decode(HEAD_TIMESTAMP_DASHED, sv) == [
        ("headTimestamp", 1001, "19801212-14:30:00")
    ]
    assert parseIBDatetime("1678323335").timestamp() == 1678323335
    assert parseIBDatetime("19801212-14:30:00").isoformat() == "1980-12-12T14:30:00"


# --- 3. framing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [["a\0b"], ["4", "\0"], ["caf\u00e9"], ["\u20ac"]],
    ids=["nul", "lone-nul", "latin1", "euro"],
)
def test_encode_refuses_nul_and_non_ascii(fields: list[str]) -> None:
    """encode refuses a NUL inside a field and any non-ASCII character."""
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by cause
        encode(fields)


def test_encode_refuses_an_empty_message() -> None:
    """encode never produces a zero-length frame, which would stall ibapi's reader."""
    with pytest.raises(ValueError, match="at least one field"):
        encode([])
    with pytest.raises(ValueError, match="at least one field"):
        encode(iter(()))


def test_encode_renders_booleans_and_empty_fields() -> None:
    """Booleans go out as ``1``/``0`` and an empty string as a bare NUL."""
    assert encode([True, False, ""]) == b"\x00\x00\x00\x05" + b"1\x000\x00\x00"


@given(
    st.lists(
        st.one_of(
            st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=12),
            st.integers(-(2**63), 2**63),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_encode_then_split_round_trips(fields: list[str | int]) -> None:
    """Any ASCII, NUL-free fields survive encode, FrameReader and split_fields unchanged."""
    reader = FrameReader(max_frame=1 << 16)
    assert [split_fields(p) for p in reader.feed(encode(fields))] == [[str(f) for f in fields]]


@given(st.lists(st.binary(max_size=48), max_size=8), st.data())
def test_frame_reader_any_chunking(payloads: list[bytes], data: st.DataObject) -> None:
    """Random payloads cut into random chunks come back whole, empty frames skipped."""
    stream = b"".join(frame(p) for p in payloads)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=10)))
    reader = FrameReader(max_frame=64)
    got: list[bytes] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += reader.feed(stream[a:b])
    assert got == [p for p in payloads if p]
    assert reader.buffered == 0


def test_frame_reader_split_at_every_position() -> None:
    """Golden frames split in two at every byte position are reassembled exactly."""
    stream = ERROR_FARM_6 + NEXT_VALID_ID + frame(b"") + MANAGED_ACCOUNTS + AAPL_164
    expected = [ERROR_FARM_6[4:], NEXT_VALID_ID[4:], MANAGED_ACCOUNTS[4:], AAPL_164[4:]]
    for i in range(len(stream) + 1):
        reader = FrameReader(max_frame=1024)
        assert reader.feed(stream[:i]) + reader.feed(stream[i:]) == expected, i
        assert reader.buffered == 0


def test_frame_reader_byte_by_byte() -> None:
    """Feeding one byte at a time yields each frame as soon as its last byte arrives."""
    reader = FrameReader()
    stream = NEXT_VALID_ID + CURRENT_TIME
    out = [reader.feed(stream[i : i + 1]) for i in range(len(stream))]
    assert out[len(NEXT_VALID_ID) - 1] == [NEXT_VALID_ID[4:]]
    assert out[-1] == [CURRENT_TIME[4:]]
    assert [p for chunk in out for p in chunk] == [NEXT_VALID_ID[4:], CURRENT_TIME[4:]]


def test_frame_reader_skips_zero_length_frames() -> None:
    """Zero-length frames carry nothing and are skipped without stalling the reader."""
    reader = FrameReader()
    assert reader.feed(frame(b"") * 3 + NEXT_VALID_ID + frame(b"")) == [NEXT_VALID_ID[4:]]
    assert reader.buffered == 0


def test_frame_reader_refuses_oversized_frame_from_its_header() -> None:
    """A frame over the limit raises ProtocolError from its 4-byte header alone."""
    reader = FrameReader(max_frame=16)
    assert reader.feed(frame(b"x" * 16)) == [b"x" * 16]
    with pytest.raises(ProtocolError, match="exceeds"):
        reader.feed(b"\x00\x00\x00\x11")
    with pytest.raises(ProtocolError, match="exceeds"):
        FrameReader().feed(b"\xff\xff\xff\xff")


@pytest.mark.parametrize(
    ("payload", "hello"),
    [
        (b"v100..157", Hello(100, 157, "")),
        (b"v157..178", Hello(157, 178, "")),
        (b"v157..178 +PACEAPI", Hello(157, 178, "+PACEAPI")),
        (b"v100..157 +PACEAPI", Hello(100, 157, "+PACEAPI")),
        (b"v176", Hello(176, 176, "")),
        (b"v157..178\0", Hello(157, 178, "")),
        (b"v176..176", Hello(176, 176, "")),
    ],
)
def test_parse_hello_accepts(payload: bytes, hello: Hello) -> None:
    """parse_hello reads both clients' hellos, options, ``v<n>`` and a stray trailing NUL."""
    assert parse_hello(payload) == hello


@pytest.mark.parametrize(
    "payload",
    [b"v100.200", b"garbage", b"v178..157", b"", b"100..157", b"v..157", b"v157..", b"v1\xff"],
)
def test_parse_hello_rejects(payload: bytes) -> None:
    """parse_hello refuses malformed ranges, garbage, empty ranges and non-ASCII text."""
    with pytest.raises(ProtocolError):
        parse_hello(payload)
