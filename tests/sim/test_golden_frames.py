"""Golden frames for the simulator's encoders, cross-checked with the official decoders.

Every expected byte string below is written out by hand from ``tws-wire-protocol.md`` (§1.1
framing, §2 server-version gates, §3.1 error, §3.3 contractData, §3.6/§3.7 historical data,
§3.9 headTimestamp, §3.10 currentTime, §3.12 ids and accounts, §5 real captures); none is
computed by the code under test. The layouts of server versions 179-200 follow IB's Python
client 10.30-10.51 and ibkr-go's live IB Gateway frames at server version 200 (§5.4), which
the tests also read from ``real-tws-captures.json``.

The same frames are then fed to the installed ``ibapi`` release (9.81.1 or 10.x, see
``tests/ibapi_release.py``) at every server version of :data:`GATE_VERSIONS` it can
negotiate, and to ``ib_async`` 2.1.0 at every version up to its maximum, 178; both must
decode the values we meant. Where ibapi releases differ, a test asserts the installed
release's behaviour and its docstring says so.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import struct
from decimal import Decimal
from pathlib import Path
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
    current_time_in_millis_fields,
    encode_bar_fields,
    error_fields,
    head_timestamp_fields,
    historical_data_end_fields,
    historical_data_fields,
    historical_data_frame,
    historical_data_update_fields,
    managed_accounts_fields,
    next_valid_id_fields,
)
from ibdata.sim._model import SessionTemplate, SimContract
from tests import ibapi_release as rel

#: ib_async 2.1.0 negotiates 157-178: the versions its decoder is run at.
SERVER_VERSIONS = [157, 163, 164, 166, 176, 178]
#: Every layout gate of the messages below (§2), and the last version before each.
GATE_VERSIONS = [
    157, 162, 163, 164, 165, 166, 176, 178, 181, 182, 185, 186, 193, 194, 195, 196, 200,
]  # fmt: skip
#: The gate versions the installed ibapi can negotiate: [157] for 9.81.1, up to 176 for
#: 10.19, 187 for 10.30, all of them from 10.37 (which ibdata offers at most 200).
IBAPI_VERSIONS = rel.versions(GATE_VERSIONS)
#: ibapi 10.x's "no value" for a decimal, the default of sizes it did not read.
UNSET_DECIMAL = Decimal(2**127 - 1)
#: Real frames of other projects (read here, never copied into this project).
CAPTURES_FILE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "real-tws-captures.json"
)

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
# From 194 (ERROR_TIME): no version field, errorTime (epoch ms) last. Byte for byte the live
# IB Gateway frame at server version 200 of §5.4 (ibkr-go), 66 bytes.
FARM_TIME_MS = 1775425766350
ERROR_FARM_194 = b"\x00\x00\x00\x42" + (
    b"4\x00"
    b"-1\x00"
    b"2104\x00"
    b"Market data farm connection is OK:usfarm\x00"
    b"\x00"  # advancedOrderRejectJson
    b"1775425766350\x00"  # errorTime
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
NOT_FOUND_TIME_MS = 1775425767012  # made up, 662 ms after the notice
ERROR_200_194 = b"\x00\x00\x00\x50" + (
    b"4\x00"
    b"9001\x00"
    b"200\x00"
    b"No security definition has been found for the request\x00"
    b"\x00"  # advancedOrderRejectJson
    b"1775425767012\x00"  # errorTime
)

# --- managedAccounts (15), nextValidId (9), currentTime (49), contractDataEnd (52) ---------
MANAGED_ACCOUNTS = b"\x00\x00\x00\x0f" + b"15\x001\x00DU1234567\x00"  # §5.2 exactly
MANAGED_ACCOUNTS_TWO = b"\x00\x00\x00\x19" + b"15\x001\x00DU1234567,DU7654321\x00"
NEXT_VALID_ID = b"\x00\x00\x00\x08" + b"9\x001\x00117\x00"  # §5.2 exactly
CURRENT_TIME = b"\x00\x00\x00\x10" + b"49\x001\x001781163646\x00"  # §3.10
CONTRACT_DATA_END = b"\x00\x00\x00\x0a" + b"52\x001\x009001\x00"
# currentTimeInMillis (109), 197+: no version field, epoch milliseconds.
CURRENT_TIME_IN_MILLIS = b"\x00\x00\x00\x12" + b"109\x001781163646123\x00"

# --- headTimestamp (88), §3.9 ---------------------------------------------------------------
HEAD_TIMESTAMP_EPOCH = b"\x00\x00\x00\x13" + b"88\x009000\x001678323335\x00"
HEAD_TIMESTAMP_DASHED = b"\x00\x00\x00\x1a" + b"88\x001001\x0019801212-14:30:00\x00"

# --- historicalData (17), §3.6; historicalDataEnd (108); historicalDataUpdate (90), §3.7 ----
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
BARS_START = "20240102  09:30:00"
BARS_END = "20240102  09:40:00"
# The two bars, eight fields each: date, open, high, low, close, volume, WAP, count.
_BARS_BODY = (
    b"20240102  09:30:00\x00187.15\x00187.80\x00186.90\x00187.42\x005123\x00187.3312\x002210\x00"
    b"20240102  09:35:00\x00187.42\x00187.55\x00186.71\x00186.88\x003410\x00187.101\x001504\x00"
)
HISTORICAL_DATA = b"\x00\x00\x00\xb3" + (
    b"17\x00"
    b"9000\x00"
    b"20240102  09:30:00\x00"  # startDateStr
    b"20240102  09:40:00\x00"  # endDateStr
    b"2\x00" + _BARS_BODY
)
# From 196 (HISTORICAL_DATA_END): no start and end in 17 (as in ibkr-go's sv-200 capture)...
HISTORICAL_DATA_196 = b"\x00\x00\x00\x8d" + b"17\x00" + b"9000\x00" + b"2\x00" + _BARS_BODY
# ... they follow in historicalDataEnd (108), which ends the answer.
HISTORICAL_DATA_END = b"\x00\x00\x00\x2f" + (
    b"108\x00"
    b"9000\x00"
    b"20240102  09:30:00\x00"  # startDateStr
    b"20240102  09:40:00\x00"  # endDateStr
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
TSLA_START = "20230413  16:31:22"
TSLA_END = "20230415  16:31:22"
_TSLA_BODY = (
    b"20230413\x00182.9400\x00186.5000\x00180.9400\x00185.9000\x00948837.22\x00184.869\x00324891\x00"
    b"20230414\x00183.8800\x00186.2800\x00182.0100\x00185.0000\x00810998.27\x00183.9865\x00277547\x00"
)
HISTORICAL_DATA_DECIMAL = b"\x00\x00\x00\xbd" + (
    b"17\x009000\x0020230413  16:31:22\x0020230415  16:31:22\x002\x00" + _TSLA_BODY
)
HISTORICAL_DATA_DECIMAL_196 = b"\x00\x00\x00\x97" + b"17\x00" + b"9000\x00" + b"2\x00" + _TSLA_BODY
HISTORICAL_DATA_DECIMAL_END = b"\x00\x00\x00\x2f" + (
    b"108\x009000\x0020230413  16:31:22\x0020230415  16:31:22\x00"
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
# reqId .. minTick: the 13 fields after the id (and version) up to server version 181.
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
# 182+ (LAST_TRADE_DATE): 14 fields, an empty lastTradeDate after the month, as in ibkr-go's
# live AAPL frame at server version 200 (§5.4).
_AAPL_HEAD_182 = (
    b"9001\x00"  # reqId
    b"AAPL\x00"
    b"STK\x00"
    b"\x00"  # lastTradeDateOrContractMonth
    b"\x00"  # lastTradeDate
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
# 164-181: no version, no mdSizeMultiplier, the three size rules at the end.
AAPL_164 = b"\x00\x00\x01\x56" + b"10\x00" + _AAPL_HEAD + _AAPL_TAIL + _AAPL_SIZES
# 182-185: lastTradeDate; 186+ (INELIGIBILITY_REASONS): a count of reasons, 0, at the end.
AAPL_182 = b"\x00\x00\x01\x57" + b"10\x00" + _AAPL_HEAD_182 + _AAPL_TAIL + _AAPL_SIZES
AAPL_186 = b"\x00\x00\x01\x59" + b"10\x00" + _AAPL_HEAD_182 + _AAPL_TAIL + _AAPL_SIZES + b"0\x00"

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
# 182+: a future's lastTradeDate is the day alone.
_GBL_HEAD_182 = (
    b"9002\x00"  # reqId
    b"GBL\x00"
    b"FUT\x00"
    b"20250306 12:30 MET\x00"  # lastTradeDateOrContractMonth
    b"20250306\x00"  # lastTradeDate
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
GBL_182 = b"\x00\x00\x01\x59" + b"10\x00" + _GBL_HEAD_182 + _GBL_TAIL + _GBL_SIZES
GBL_186 = b"\x00\x00\x01\x5b" + b"10\x00" + _GBL_HEAD_182 + _GBL_TAIL + _GBL_SIZES + b"0\x00"

ALL_GOLDEN = {
    "ERROR_FARM_5": ERROR_FARM_5,
    "ERROR_FARM_6": ERROR_FARM_6,
    "ERROR_FARM_194": ERROR_FARM_194,
    "ERROR_200_5": ERROR_200_5,
    "ERROR_200_6": ERROR_200_6,
    "ERROR_200_194": ERROR_200_194,
    "MANAGED_ACCOUNTS": MANAGED_ACCOUNTS,
    "MANAGED_ACCOUNTS_TWO": MANAGED_ACCOUNTS_TWO,
    "NEXT_VALID_ID": NEXT_VALID_ID,
    "CURRENT_TIME": CURRENT_TIME,
    "CURRENT_TIME_IN_MILLIS": CURRENT_TIME_IN_MILLIS,
    "CONTRACT_DATA_END": CONTRACT_DATA_END,
    "HEAD_TIMESTAMP_EPOCH": HEAD_TIMESTAMP_EPOCH,
    "HEAD_TIMESTAMP_DASHED": HEAD_TIMESTAMP_DASHED,
    "HISTORICAL_DATA": HISTORICAL_DATA,
    "HISTORICAL_DATA_196": HISTORICAL_DATA_196,
    "HISTORICAL_DATA_END": HISTORICAL_DATA_END,
    "HISTORICAL_DATA_DECIMAL": HISTORICAL_DATA_DECIMAL,
    "HISTORICAL_DATA_DECIMAL_196": HISTORICAL_DATA_DECIMAL_196,
    "HISTORICAL_DATA_DECIMAL_END": HISTORICAL_DATA_DECIMAL_END,
    "HISTORICAL_DATA_UPDATE": HISTORICAL_DATA_UPDATE,
    "AAPL_157": AAPL_157,
    "AAPL_163": AAPL_163,
    "AAPL_164": AAPL_164,
    "AAPL_182": AAPL_182,
    "AAPL_186": AAPL_186,
    "GBL_157": GBL_157,
    "GBL_163": GBL_163,
    "GBL_164": GBL_164,
    "GBL_182": GBL_182,
    "GBL_186": GBL_186,
}


def error_farm(sv: int) -> bytes:
    """The 2104 notice as TWS sends it at server version ``sv``."""
    if sv >= 194:
        return ERROR_FARM_194
    return ERROR_FARM_6 if sv >= 166 else ERROR_FARM_5


def error_not_found(sv: int) -> bytes:
    """The error 200 answer to request 9001 as TWS sends it at server version ``sv``."""
    if sv >= 194:
        return ERROR_200_194
    return ERROR_200_6 if sv >= 166 else ERROR_200_5


def aapl(sv: int) -> bytes:
    """The AAPL contractData frame in the layout of server version ``sv``."""
    if sv >= 186:
        return AAPL_186
    if sv >= 182:
        return AAPL_182
    if sv >= 164:
        return AAPL_164
    return AAPL_163 if sv == 163 else AAPL_157


def gbl(sv: int) -> bytes:
    """The GBL future contractData frame in the layout of server version ``sv``."""
    if sv >= 186:
        return GBL_186
    if sv >= 182:
        return GBL_182
    if sv >= 164:
        return GBL_164
    return GBL_163 if sv == 163 else GBL_157


def historical(sv: int) -> bytes:
    """The two-bar answer at ``sv``: one 17 with start and end, or from 196 a 17 and a 108."""
    return HISTORICAL_DATA_196 + HISTORICAL_DATA_END if sv >= 196 else HISTORICAL_DATA


def historical_decimal(sv: int) -> bytes:
    """The §5.3 decimal-volume answer in the layout of server version ``sv``."""
    if sv >= 196:
        return HISTORICAL_DATA_DECIMAL_196 + HISTORICAL_DATA_DECIMAL_END
    return HISTORICAL_DATA_DECIMAL


def frame(payload: bytes) -> bytes:
    """Length-prefix a payload (test-side framing, independent of the code under test)."""
    return struct.pack(">I", len(payload)) + payload


def split_frames(data: bytes) -> list[bytes]:
    """Cut concatenated frames with ibapi's own ``read_msg``; every byte must belong to one."""
    frames = []
    while data:
        size, payload, data = ibapi.comm.read_msg(data)
        assert size == len(payload) > 0
        frames.append(frame(payload))
    return frames


def capture(capture_id: str) -> list[list[str]]:
    """The frames (as field lists) of one entry of ``real-tws-captures.json``."""
    entries = json.loads(CAPTURES_FILE.read_text(encoding="utf-8"))
    (entry,) = [e for e in entries if e["id"] == capture_id]
    return list(entry["frames"])


def wire(fields: list[str]) -> bytes:
    """A captured field list as TWS sent it: NUL-terminated ASCII fields, length-prefixed."""
    return frame("".join(f"{f}\0" for f in fields).encode("ascii"))


# --- decoding through the official clients ----------------------------------------------


class AsyncRecorder:
    """A minimal wrapper recording the callbacks ib_async's decoder makes."""

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
        self.calls.append(("historicalData", req_id, bar_tuple(bar, bar.average)))

    def historicalDataEnd(self, req_id: int, start: str, end: str) -> None:
        self.calls.append(("historicalDataEnd", req_id, start, end))

    def historicalDataUpdate(self, req_id: int, bar: Any) -> None:
        self.calls.append(("historicalDataUpdate", req_id, bar_tuple(bar, bar.average)))

    def headTimestamp(self, req_id: int, text: str) -> None:
        self.calls.append(("headTimestamp", req_id, text))


class IbapiRecorder(AsyncRecorder):
    """The same for the installed ibapi: ``error`` as the release calls it (three, four or
    five arguments after ``reqId``), the bar's WAP by the release's name, and
    currentTimeInMillis (10.37+)."""

    def error(self, req_id: int, *args: Any) -> None:  # type: ignore[override]
        self.calls.append(("error", req_id, *args))

    def historicalData(self, req_id: int, bar: Any) -> None:
        self.calls.append(("historicalData", req_id, bar_tuple(bar, rel.wap(bar))))

    def historicalDataUpdate(self, req_id: int, bar: Any) -> None:
        self.calls.append(("historicalDataUpdate", req_id, bar_tuple(bar, rel.wap(bar))))

    def currentTimeInMillis(self, time_ms: int) -> None:
        self.calls.append(("currentTimeInMillis", time_ms))


def bar_tuple(bar: Any, wap: Any) -> tuple[Any, ...]:
    """A decoded bar as (date, open, high, low, close, volume, wap, count), types kept."""
    return (bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume, wap, bar.barCount)


def typed(value: Any) -> Any:
    """``value`` with every leaf paired with its type, so that ``5123`` and
    ``Decimal(5123)``, equal in Python, compare unequal."""
    if isinstance(value, (tuple, list)):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def ibapi_bar(bar: tuple[Any, ...]) -> tuple[Any, ...]:
    """A bar of :data:`BARS_DECODED` as the installed ibapi types it: 9.81.1 reads volume as
    ``int`` and WAP (``average``) as ``float``; 10.x reads both as :class:`Decimal`."""
    if rel.IS_9_81:
        return bar
    *head, volume, wap, count = bar
    return (*head, Decimal(repr(volume)), Decimal(repr(wap)), count)


def ibapi_error(req_id: int, code: int, text: str, time_ms: int) -> tuple[Any, ...]:
    """The ``error`` call the installed ibapi makes: ``(reqId, code, text)`` in 9.81.1, with
    an advancedOrderRejectJson in 10.19-10.30, and from 10.37 with the errorTime (0 before
    server version 194) before the code."""
    if rel.IS_9_81:
        return ("error", req_id, code, text)
    if not rel.ERROR_HAS_TIME:
        return ("error", req_id, code, text, "")
    return ("error", req_id, time_ms, code, text, "")


def ib_async_fields(data: bytes) -> list[str]:
    """Cut one frame the way ib_async's ``Client._onSocketHasData`` does."""
    (size,) = struct.unpack(">I", data[:4])
    assert size == len(data) - 4
    fields = data[4 : 4 + size].decode(errors="backslashreplace").split("\0")
    fields.pop()
    return fields


def ibapi_decode(data: bytes, sv: int) -> list[tuple[Any, ...]]:
    """Run one or more frames through the installed ibapi's decoder at server version
    ``sv``, cut and handed over the way the release's own message loop does."""
    rec = IbapiRecorder()
    decoder = ibapi.decoder.Decoder(rec, sv)
    for one in split_frames(data):
        rel.interpret(decoder, rel.fields_of(one))
    return rec.calls


def ib_async_decode(data: bytes, sv: int) -> list[tuple[Any, ...]]:
    """Run one frame through ib_async 2.1.0's decoder at server version ``sv``."""
    rec = AsyncRecorder()
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


TSLA_DECODED = [
    ("20230413", 182.94, 186.5, 180.94, 185.9, 948837.22, 184.869, 324891),
    ("20230414", 183.88, 186.28, 182.01, 185.0, 810998.27, 183.9865, 277547),
]


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


def test_error_golden_frame_is_the_sv200_capture() -> None:
    """The 194+ notice is byte for byte ibkr-go's live IB Gateway 2104 frame at version 200."""
    (captured,) = capture("go-err2104-200")
    assert wire(captured) == ERROR_FARM_194


def test_contract_data_golden_frame_has_the_sv200_capture_shape() -> None:
    """The 186+ AAPL frame has the fields of ibkr-go's live AAPL frame at version 200, empty
    where it is empty, and differs only in the request id, order types, exchanges, primary
    exchange, hours and market rules."""
    (captured,) = capture("go-contract-200")
    golden = [f.decode() for f in rel.fields_of(AAPL_186)]
    assert len(golden) == len(captured) == 44
    assert [i for i, f in enumerate(golden) if not f] == [
        i for i, f in enumerate(captured) if not f
    ]
    differing = {i for i, (a, b) in enumerate(zip(golden, captured, strict=True)) if a != b}
    # reqId, orderTypes, validExchanges, primaryExchange, trading and liquid hours, rules
    assert differing == {1, 16, 17, 21, 27, 28, 37}


def test_historical_data_golden_frame_has_the_sv200_capture_shape() -> None:
    """Like ibkr-go's live bars at version 200, the 196+ frame is ``[17, reqId, n, 8n]``."""
    (captured,) = capture("go-hist-200")
    assert captured[:2] == ["17", "1001"]
    assert len(captured) == 3 + 8 * int(captured[2]) == 3 + 8 * 7
    golden = rel.fields_of(HISTORICAL_DATA_196)
    assert golden[:3] == (b"17", b"9000", b"2")
    assert len(golden) == 3 + 8 * 2


# --- 1. golden frames ----------------------------------------------------------------------
# error, contractData and historicalData take the server version; the other encoders have
# one layout across 157-200, so their golden tests need no version (the decoder tests below
# still run them at every version).


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_error_farm_notice_frame(sv: int) -> None:
    """A farm notice is ``[4, 2, -1, 2104, text]``, plus an empty field from version 166,
    and from 194 ``[4, -1, 2104, text, "", timeMs]``; the time is sent only from 194."""
    frame_with_time = encode(error_fields(-1, 2104, FARM_TEXT, sv, time_ms=FARM_TIME_MS))
    assert frame_with_time == error_farm(sv)
    if sv < 194:
        assert encode(error_fields(-1, 2104, FARM_TEXT, sv)) == error_farm(sv)


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_error_request_frame(sv: int) -> None:
    """A request error carries the request id, gains advancedOrderRejectJson at 166, and
    loses the version field and gains its time at 194."""
    fields = error_fields(9001, 200, NOT_FOUND_TEXT, sv, time_ms=NOT_FOUND_TIME_MS)
    assert encode(fields) == error_not_found(sv)


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


def test_current_time_in_millis_frame() -> None:
    """currentTimeInMillis (197+) is ``[109, epochMilliseconds]`` with no version field."""
    assert encode(current_time_in_millis_fields(1781163646123)) == CURRENT_TIME_IN_MILLIS


def test_contract_data_end_frame() -> None:
    """contractDataEnd is ``[52, 1, reqId]``."""
    assert encode(contract_data_end_fields(9001)) == CONTRACT_DATA_END


def test_head_timestamp_frames() -> None:
    """headTimestamp is ``[88, reqId, text]`` with no version field, epoch or dashed text."""
    assert encode(head_timestamp_fields(9000, "1678323335")) == HEAD_TIMESTAMP_EPOCH
    assert encode(head_timestamp_fields(1001, "19801212-14:30:00")) == HEAD_TIMESTAMP_DASHED


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_historical_data_frame(sv: int) -> None:
    """historicalData is ``[17, reqId, start, end, n, n x 8 bar fields]`` with no version;
    from 196 ``[17, reqId, n, ...]`` followed by historicalDataEnd ``[108, reqId, start, end]``."""
    fields = historical_data_fields(9000, BARS_START, BARS_END, BARS, server_version=sv)
    if sv < 196:
        assert len(fields) == 5 + 8 * 2
        assert encode(fields) == HISTORICAL_DATA
    else:
        assert len(fields) == 3 + 8 * 2
        assert encode(fields) == HISTORICAL_DATA_196
    assert encode(historical_data_end_fields(9000, BARS_START, BARS_END)) == HISTORICAL_DATA_END


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_historical_data_decimal_frame(sv: int) -> None:
    """Decimal volume and WAP pass through untouched, reproducing the §5.3 capture."""
    fields = historical_data_fields(9000, TSLA_START, TSLA_END, TSLA_BARS, server_version=sv)
    end = encode(historical_data_end_fields(9000, TSLA_START, TSLA_END)) if sv >= 196 else b""
    assert encode(fields) + end == historical_decimal(sv)


def wire_fields(bar: WireBar) -> list[str]:
    """A WireBar's eight fields in wire order."""
    return [bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.wap, bar.count]


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_historical_data_frame_from_encoded_bars(sv: int) -> None:
    """historical_data_frame wraps bar fields encoded once into the same bytes as the field
    encoders, the 108 included from 196."""
    assert encode_bar_fields([wire_fields(b) for b in BARS]) == _BARS_BODY
    got = historical_data_frame(9000, BARS_START, BARS_END, 2, _BARS_BODY, server_version=sv)
    assert got == historical(sv)
    got = historical_data_frame(9000, TSLA_START, TSLA_END, 2, _TSLA_BODY, server_version=sv)
    assert got == historical_decimal(sv)


def test_historical_data_update_frame() -> None:
    """historicalDataUpdate orders open, close, high, low, then WAP before volume."""
    assert encode(historical_data_update_fields(9000, "-1", UPDATE_BAR)) == HISTORICAL_DATA_UPDATE


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_historical_data_without_bars(sv: int) -> None:
    """An empty answer still has start, end and a zero count (from 196 in its 108)."""
    fields = encode(historical_data_fields(7, "a", "b", [], server_version=sv))
    end = encode(historical_data_end_fields(7, "a", "b"))
    from_body = historical_data_frame(7, "a", "b", 0, b"", server_version=sv)
    if sv < 196:
        assert fields == from_body == b"\x00\x00\x00\x0b" + b"17\x007\x00a\x00b\x000\x00"
    else:
        assert fields == b"\x00\x00\x00\x07" + b"17\x007\x000\x00"
        assert end == b"\x00\x00\x00\x0a" + b"108\x007\x00a\x00b\x00"
        assert from_body == fields + end


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_contract_data_stock_frame(sv: int) -> None:
    """AAPL's contractData follows the 157-162, 163, 164-181, 182-185 and 186+ layouts of
    §3.3 and §2 byte for byte."""
    fields = contract_data_fields(
        9001, AAPL, sv, trading_hours=AAPL_TRADING, liquid_hours=AAPL_LIQUID
    )
    assert encode(fields) == aapl(sv)


@pytest.mark.parametrize("sv", GATE_VERSIONS)
def test_contract_data_future_frame(sv: int) -> None:
    """A future's contractData carries expiry time and zone, multiplier and month in place,
    and from 182 its last trade day again in lastTradeDate."""
    fields = contract_data_fields(9002, GBL, sv, trading_hours=GBL_TRADING, liquid_hours=GBL_LIQUID)
    assert encode(fields) == gbl(sv)


@pytest.mark.parametrize(
    ("sv", "count"),
    [
        (157, 41), (160, 41), (162, 41), (163, 42), (164, 42), (170, 42), (178, 42), (181, 42),
        (182, 43), (185, 43), (186, 44), (194, 44), (200, 44),
    ],
)  # fmt: skip
def test_contract_data_field_count(sv: int, count: int) -> None:
    """With one secId pair contractData has 41 fields at 157-162, 42 at 163 and 164-181, 43
    at 182-185 and 44 from 186 (the count of ibkr-go's live AAPL frame at 200)."""
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
    """163 appends sizeMinTick to the 157 layout; 164 drops version and mdSizeMultiplier;
    182 inserts lastTradeDate after the month; 186 appends the ineligibility count."""

    def strings(c: SimContract, sv: int) -> list[str]:
        return [str(f) for f in contract_data_fields(1, c, sv, trading_hours="", liquid_hours="")]

    f157, f163, f164 = strings(AAPL, 157), strings(AAPL, 163), strings(AAPL, 164)
    assert f157[1] == "8"
    assert f163 == [*f157, "0.0001"]
    assert f164 == [f157[0], *f157[2:15], *f157[16:], "0.0001", "0.0001", "100"]
    assert strings(AAPL, 181) == f164
    assert strings(AAPL, 182) == [*f164[:5], "", *f164[5:]]
    assert strings(AAPL, 185) == strings(AAPL, 182)
    assert strings(AAPL, 186) == [*strings(AAPL, 182), "0"]
    assert strings(AAPL, 200) == strings(AAPL, 186)
    g164 = strings(GBL, 164)
    assert strings(GBL, 182) == [*g164[:5], "20250306", *g164[5:]]
    assert strings(GBL, 186) == [*strings(GBL, 182), "0"]


def test_session_template_hours_text() -> None:
    """Trading hours render as ``yyyymmdd:hhmm-yyyymmdd:hhmm`` and ``yyyymmdd:CLOSED`` entries."""
    day = SessionTemplate("0400", "2000").hours("US/Eastern", dt.date(2025, 3, 22), 4)
    assert day == (
        "20250322:CLOSED;20250323:CLOSED;20250324:0400-20250324:2000;20250325:0400-20250325:2000"
    )
    overnight = SessionTemplate("1700", "1600").hours("US/Central", dt.date(2025, 3, 17), 2)
    assert overnight == "20250316:1700-20250317:1600;20250317:1700-20250318:1600"


# --- 2a. the installed ibapi at every gate version it can negotiate ------------------------


def test_ibapi_versions_cover_what_the_release_negotiates() -> None:
    """The ibapi tests run at every gate version up to what ibdata offers with this release:
    157 for 9.81.1, up to 176 for 10.19, 187 for 10.30, 200 from 10.37."""
    assert IBAPI_VERSIONS[0] == 157
    assert [sv for sv in GATE_VERSIONS if sv <= rel.OFFERED] == IBAPI_VERSIONS
    assert min(rel.MAX_CLIENT_VERSION, 200) == rel.OFFERED
    assert rel.versions([rel.OFFERED + 1]) == []


@pytest.mark.parametrize("sv", IBAPI_VERSIONS)
def test_ibapi_decodes_error(sv: int) -> None:
    """ibapi delivers the version's error frame in its release's signature (9.81.1
    ``(reqId, code, text)``, 10.19-10.30 with advancedOrderRejectJson, 10.37+ with the
    errorTime, which is 0 before 194)."""
    time_ms = FARM_TIME_MS if sv >= 194 else 0
    assert ibapi_decode(error_farm(sv), sv) == [ibapi_error(-1, 2104, FARM_TEXT, time_ms)]
    time_ms = NOT_FOUND_TIME_MS if sv >= 194 else 0
    assert ibapi_decode(error_not_found(sv), sv) == [
        ibapi_error(9001, 200, NOT_FOUND_TEXT, time_ms)
    ]


@pytest.mark.parametrize("sv", rel.versions([157, 162, 165]))
def test_ibapi_six_field_error_before_166(sv: int, caplog: pytest.LogCaptureFixture) -> None:
    """Before 166, documented quirk of 9.81.1 (§1.7, §3.1): it drops an error with
    advancedOrderRejectJson, having checked the field count against ``error``'s signature;
    10.x decodes errors field by field and ignores the surplus field."""
    with caplog.at_level(logging.ERROR, logger="ibapi.decoder"):
        calls = ibapi_decode(ERROR_FARM_6, sv)
    if rel.IS_9_81:
        assert calls == []
        assert "diff len fields and params" in caplog.text
    else:
        assert calls == [ibapi_error(-1, 2104, FARM_TEXT, 0)]
        assert caplog.text == ""


@pytest.mark.parametrize("sv", IBAPI_VERSIONS)
def test_ibapi_decodes_start_up_messages(sv: int) -> None:
    """ibapi's exact-field-count decoders accept nextValidId, managedAccounts and currentTime."""
    assert ibapi_decode(NEXT_VALID_ID, sv) == [("nextValidId", 117)]
    assert ibapi_decode(MANAGED_ACCOUNTS, sv) == [("managedAccounts", "DU1234567")]
    assert ibapi_decode(MANAGED_ACCOUNTS_TWO, sv) == [("managedAccounts", "DU1234567,DU7654321")]
    assert ibapi_decode(CURRENT_TIME, sv) == [("currentTime", 1781163646)]
    assert ibapi_decode(CONTRACT_DATA_END, sv) == [("contractDetailsEnd", 9001)]


def test_ibapi_decodes_current_time_in_millis() -> None:
    """From 197 ibapi 10.37+ delivers currentTimeInMillis; older releases cannot negotiate
    197 and have no decoder for message 109."""
    gated = rel.versions([197, 200])
    if rel.DECODES_108_AND_109:
        assert gated == [197, 200]
        for sv in gated:
            calls = ibapi_decode(CURRENT_TIME_IN_MILLIS, sv)
            assert typed(calls) == typed([("currentTimeInMillis", 1781163646123)])
    else:
        assert gated == []
        assert rel.MAX_CLIENT_VERSION < 197
        assert 109 not in ibapi.decoder.Decoder.msgId2handleInfo


@pytest.mark.parametrize("sv", IBAPI_VERSIONS)
@pytest.mark.parametrize(
    ("layout", "req_id", "expected", "sizes", "last_trade_date"),
    [
        (aapl, 9001, AAPL_DECODED, ("0.0001", "0.0001", "100"), ""),
        (gbl, 9002, GBL_DECODED, ("1", "1", "1"), "20250306"),
    ],
    ids=["AAPL", "GBL"],
)
def test_ibapi_decodes_contract_data(
    sv: int,
    layout: Any,
    req_id: int,
    expected: dict[str, Any],
    sizes: tuple[str, str, str],
    last_trade_date: str,
) -> None:
    """ibapi reads every layout it can negotiate with every common value, and its release's
    own: 9.81.1 keeps mdSizeMultiplier; 10.x drops it, reads the size rules as Decimal from
    164 (leaving UNSET_DECIMAL before), and from 10.30 lastTradeDate from 182."""
    cd = details_of(ibapi_decode(layout(sv), sv), req_id)
    assert common_details(cd) == expected
    if rel.IS_9_81:
        assert cd.mdSizeMultiplier == 1
        assert not hasattr(cd, "minSize")
    else:
        assert not hasattr(cd, "mdSizeMultiplier")
        got = (cd.minSize, cd.sizeIncrement, cd.suggestedSizeIncrement)
        want = tuple(Decimal(s) for s in sizes) if sv >= 164 else (UNSET_DECIMAL,) * 3
        assert typed(got) == typed(want)
    if rel.HAS_LAST_TRADE_DATE:
        assert cd.contract.lastTradeDate == (last_trade_date if sv >= 182 else "")
        assert cd.ineligibilityReasonList is None  # a count of 0 from 186
    else:
        assert not hasattr(cd.contract, "lastTradeDate")


@pytest.mark.parametrize("sv", IBAPI_VERSIONS)
def test_ibapi_consumes_every_field(sv: int) -> None:
    """ibapi's sequential decoders read exactly the fields each frame of the version's
    layout carries, no more and no fewer (9.81.1 decodes errors by ``error``'s signature,
    which checks the count instead)."""
    frames = [aapl(sv), gbl(sv), *split_frames(historical(sv)), error_farm(sv)]
    for data in frames:
        fields = rel.fields_of(data)
        handle = ibapi.decoder.Decoder.msgId2handleInfo[int(fields[0])]
        if handle.processMeth is None:
            assert rel.IS_9_81
            assert fields[0] == b"4"
            continue
        rest = iter(rel.process_fields(fields))
        handle.processMeth(ibapi.decoder.Decoder(IbapiRecorder(), sv), rest)
        assert list(rest) == [], fields[0]


@pytest.mark.parametrize("sv", IBAPI_VERSIONS)
def test_ibapi_decodes_historical_data(sv: int) -> None:
    """ibapi delivers each bar and then historicalDataEnd with start and end, from 196 out of
    the 108 that follows; volume and WAP typed as the release documents (int and float in
    9.81.1, Decimal in 10.x)."""
    assert typed(ibapi_decode(historical(sv), sv)) == typed(
        [
            ("historicalData", 9000, ibapi_bar(BARS_DECODED[0])),
            ("historicalData", 9000, ibapi_bar(BARS_DECODED[1])),
            ("historicalDataEnd", 9000, BARS_START, BARS_END),
        ]
    )


@pytest.mark.parametrize("sv", IBAPI_VERSIONS)
def test_ibapi_ends_the_request_on_17_only_before_196(sv: int) -> None:
    """Before 196 ibapi calls historicalDataEnd right after the bars of 17; from 196 (ibapi
    10.37+) 17 carries no window and only the 108 that follows ends the request."""
    first, *rest = split_frames(historical(sv))
    calls = ibapi_decode(first, sv)
    assert [c[0] for c in calls[:2]] == ["historicalData", "historicalData"]
    if sv < 196:
        assert rest == []
        assert calls[2:] == [("historicalDataEnd", 9000, BARS_START, BARS_END)]
    else:
        assert calls[2:] == []
        assert ibapi_decode(rest[0], sv) == [("historicalDataEnd", 9000, BARS_START, BARS_END)]


@pytest.mark.parametrize("sv", IBAPI_VERSIONS)
def test_ibapi_decimal_volume(sv: int) -> None:
    """Documented quirk of 9.81.1 (§3.6): decimal volume raises out of its decoder, so never
    at 157; 10.x reads the §5.3 capture's decimal volume and WAP as exact Decimals."""
    if rel.IS_9_81:
        with pytest.raises(ValueError, match=r"948837\.22"):
            ibapi_decode(historical_decimal(sv), sv)
        return
    assert typed(ibapi_decode(historical_decimal(sv), sv)) == typed(
        [
            ("historicalData", 9000, ibapi_bar(TSLA_DECODED[0])),
            ("historicalData", 9000, ibapi_bar(TSLA_DECODED[1])),
            ("historicalDataEnd", 9000, TSLA_START, TSLA_END),
        ]
    )


@pytest.mark.parametrize("sv", IBAPI_VERSIONS)
def test_ibapi_decodes_historical_data_update(sv: int) -> None:
    """ibapi reads the update as barCount, date, open, close, high, low, WAP, volume."""
    assert typed(ibapi_decode(HISTORICAL_DATA_UPDATE, sv)) == typed(
        [("historicalDataUpdate", 9000, ibapi_bar(UPDATE_DECODED))]
    )


@pytest.mark.parametrize("sv", IBAPI_VERSIONS)
def test_ibapi_decodes_head_timestamp(sv: int) -> None:
    """ibapi passes the head timestamp through as text."""
    assert ibapi_decode(HEAD_TIMESTAMP_EPOCH, sv) == [("headTimestamp", 9000, "1678323335")]
    assert ibapi_decode(HEAD_TIMESTAMP_DASHED, sv) == [("headTimestamp", 1001, "19801212-14:30:00")]


def test_ibapi_decodes_the_sv200_captures() -> None:
    """At server version 200 the installed ibapi (10.37+) decodes ibkr-go's live IB Gateway
    frames into the captured values; a release that cannot negotiate 200 is never sent them."""
    if rel.versions([200]) != [200]:
        assert rel.MAX_CLIENT_VERSION < 200
        return
    (accounts,) = capture("go-accounts-200")
    assert ibapi_decode(wire(accounts), 200) == [("managedAccounts", accounts[2])]
    (next_id,) = capture("go-nextid-200")
    assert ibapi_decode(wire(next_id), 200) == [("nextValidId", int(next_id[2]))]
    (err,) = capture("go-err2104-200")
    assert ibapi_decode(wire(err), 200) == [
        ("error", int(err[1]), int(err[5]), int(err[2]), err[3], err[4])
    ]
    (end,) = capture("go-end52-200")
    assert ibapi_decode(wire(end), 200) == [("contractDetailsEnd", int(end[2]))]

    (f,) = capture("go-contract-200")
    cd = details_of(ibapi_decode(wire(f), 200), int(f[1]))
    c = cd.contract
    assert (c.symbol, c.secType, c.lastTradeDateOrContractMonth, c.lastTradeDate) == (
        f[2], f[3], f[4], f[5],
    )  # fmt: skip
    assert (c.strike, c.right, c.exchange, c.currency, c.localSymbol) == (
        float(f[6]), f[7], f[8], f[9], f[10],
    )  # fmt: skip
    assert (cd.marketName, c.tradingClass, c.conId, cd.minTick) == (
        f[11], f[12], int(f[13]), float(f[14]),
    )  # fmt: skip
    assert (c.multiplier, cd.orderTypes, cd.validExchanges, cd.priceMagnifier) == (
        f[15], f[16], f[17], int(f[18]),
    )  # fmt: skip
    assert (cd.underConId, cd.longName, c.primaryExchange, cd.contractMonth) == (
        int(f[19]), f[20], f[21], f[22],
    )  # fmt: skip
    assert (cd.industry, cd.category, cd.subcategory, cd.timeZoneId) == tuple(f[23:27])
    assert (cd.tradingHours, cd.liquidHours, cd.evRule, cd.evMultiplier) == (
        f[27], f[28], f[29], 0,
    )  # fmt: skip
    assert f[30] == ""  # evMultiplier, which ibapi decodes as 0
    assert f[31] == "1"  # secIdListCount
    assert [(t.tag, t.value) for t in cd.secIdList] == [(f[32], f[33])]
    assert (cd.aggGroup, cd.underSymbol, cd.underSecType, cd.marketRuleIds) == (
        int(f[34]), f[35], f[36], f[37],
    )  # fmt: skip
    assert (cd.realExpirationDate, cd.stockType) == (f[38], f[39])
    sizes = (cd.minSize, cd.sizeIncrement, cd.suggestedSizeIncrement)
    assert typed(sizes) == typed(tuple(Decimal(s) for s in f[40:43]))
    assert (f[43], cd.ineligibilityReasonList) == ("0", None)

    (bars,) = capture("go-hist-200")
    calls = ibapi_decode(wire(bars), 200)
    assert len(calls) == int(bars[2]) == 7  # no historicalDataEnd: 108 brings it from 196
    for i, call in enumerate(calls):
        b = bars[3 + 8 * i : 11 + 8 * i]
        want = (b[0], *map(float, b[1:5]), Decimal(b[5]), Decimal(b[6]), int(b[7]))
        assert typed(call) == typed(("historicalData", int(bars[1]), want))


# --- 2b. ib_async 2.1.0 at every server version up to 178 --------------------------------


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
        (b"v100..200", Hello(100, 200, "")),
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
