"""ibdata's own parsers agree with the decoders of ibapi and ib_async.

The simulator encodes each message (its encoders are independent of ibdata's client);
ibdata's fast parser and the official decoders (followed by ibdata's conversion) must give
the same models. ibapi is the installed release (9.81.1 or 10.x, see
``tests/ibapi_release.py``), run at every server version it can negotiate.
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from typing import Any

import attrs
import pytest
from ib_async.decoder import Decoder as AsyncDecoder
from ibapi.decoder import Decoder as IbapiDecoder
from ibapi.wrapper import EWrapper

from ibdata import _convert
from ibdata.models import Bars, BarSize, ContractDetails, WhatToShow
from ibdata.sim import Catalog, ContractQuery
from ibdata.sim import _messages as m
from ibdata.sim._framing import encode
from ibdata.sim._model import SimContract
from tests import ibapi_release as rel

TODAY = dt.date(2025, 3, 12)
CATALOG = Catalog.default(TODAY)
CONTRACTS = {
    "AAPL": ContractQuery(symbol="AAPL", sec_type="STK", exchange="SMART", currency="USD"),
    "ZNM5": ContractQuery(symbol="ZN", sec_type="FUT", exchange="CBOT",
                          last_trade_date_or_contract_month="202506"),
    "FGBL": ContractQuery(symbol="GBL", sec_type="CONTFUT", exchange="EUREX"),
    "EUR.USD": ContractQuery(symbol="EUR", sec_type="CASH", exchange="IDEALPRO", currency="USD"),
}  # fmt: skip
#: Every server version that changes contractData (§2), and the last before some: 157-162,
#: 163 (sizeMinTick), 164-178 (size rules, no version field), 179 (fund fields, FUND only),
#: 182 (lastTradeDate), 186 (ineligibility reasons), up to 200.
CONTRACT_DATA_GATES = [157, 162, 163, 164, 176, 178, 179, 182, 186, 194, 200]

#: ibapi's "no value" sentinels (``ibapi.common``; UNSET_DECIMAL from 10.x).
UNSET_INTEGER = 2**31 - 1
UNSET_DOUBLE = sys.float_info.max
UNSET_DECIMAL = Decimal(2**127 - 1)
#: How TWS writes "no value" in a decimal or floating-point field: empty, or UNSET_INTEGER,
#: UNSET_LONG or UNSET_DOUBLE as text (ibapi 10.x's ``decode`` reads each of these as
#: UNSET_DECIMAL; §5.1 shows TWS sending the last two).
NO_VALUE_NUMBERS = ["", "2147483647", "9223372036854775807", "1.7976931348623157E308"]
#: The same for an integer field (no exponent form).
NO_VALUE_INTEGERS = ["", "2147483647", "9223372036854775807"]


def _contract(name: str) -> SimContract:
    return CATALOG.resolve(CONTRACTS[name], TODAY)


def _contract_fields(c: SimContract, sv: int) -> list[bytes]:
    frame = encode(
        m.contract_data_fields(
            7,
            c,
            sv,
            trading_hours=c.trading.hours(c.time_zone_id, TODAY, 7),
            liquid_hours=c.liquid.hours(c.time_zone_id, TODAY, 7),
        )
    )
    return frame[4:].split(b"\0")[:-1]


def _fields(name: str, sv: int) -> list[bytes]:
    return _contract_fields(_contract(name), sv)


class _IbapiSink(EWrapper):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:  # noqa: N803
        self.got.append(contractDetails)

    def historicalData(self, reqId: int, bar: Any) -> None:  # noqa: N803
        self.got.append(bar)


class _AsyncSink:
    def __init__(self) -> None:
        self.got: list[Any] = []

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:  # noqa: N803
        self.got.append(contractDetails)


def _ibapi_decoded(fields: list[bytes], sv: int) -> list[Any]:
    """What the installed ibapi's decoder hands its wrapper for one message at ``sv``."""
    sink = _IbapiSink()
    rel.interpret(IbapiDecoder(sink, sv), tuple(fields))
    return sink.got


def _via_ibapi(fields: list[bytes], sv: int) -> ContractDetails:
    (cd,) = _ibapi_decoded(fields, sv)
    return _convert.contract_details(cd)


def _via_ib_async(fields: list[bytes], sv: int) -> ContractDetails:
    sink = _AsyncSink()
    AsyncDecoder(sink, sv).interpret([f.decode() for f in fields])  # type: ignore[arg-type]
    (cd,) = sink.got
    return _convert.contract_details(cd)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
@pytest.mark.parametrize("sv", rel.versions(CONTRACT_DATA_GATES))
def test_fast_contract_data_matches_ibapi(name: str, sv: int) -> None:
    """At every layout the installed ibapi can negotiate the fast parser equals ibapi's
    decoder, but at 163, where ibapi drops sizeMinTick and ibdata reports it as the
    suggested size increment (as ib_async does)."""
    fields = _fields(name, sv)
    req_id, fast = _convert.parse_contract_data(fields, sv)
    assert req_id == 7
    other = _via_ibapi(fields, sv)
    if sv == 163:
        assert fast.suggested_size_increment == float(_contract(name).size_increment)
        assert other.suggested_size_increment is None
        other = attrs.evolve(other, suggested_size_increment=fast.suggested_size_increment)
    assert fast == other


@pytest.mark.parametrize("name", sorted(CONTRACTS))
@pytest.mark.parametrize("sv", [157, 162, 163, 164, 166, 170, 176, 178])
def test_fast_contract_data_matches_ib_async(name: str, sv: int) -> None:
    """At every layout (157-162, 163, 164-178) the fast parser equals ib_async's decoder."""
    fields = _fields(name, sv)
    _, fast = _convert.parse_contract_data(fields, sv)
    other = _via_ib_async(fields, sv)
    if sv < 164:  # the size fields are not on the wire: ib_async shows 0.0, ibdata None
        assert (fast.min_size, fast.size_increment) == (None, None)
        assert (other.min_size, other.size_increment) == (0.0, 0.0)
        other = attrs.evolve(other, min_size=None, size_increment=None)
        if sv < 163:
            assert fast.suggested_size_increment is None
            other = attrs.evolve(other, suggested_size_increment=None)
    assert fast == other


@pytest.mark.parametrize("sv", [178, 182, 186, 200])
def test_fast_contract_data_refuses_a_wrong_field_count(sv: int) -> None:
    """A contractData message with a field too many or too few is refused."""
    fields = _fields("AAPL", sv)
    with pytest.raises(ValueError, match="fields"):
        _convert.parse_contract_data([*fields, b"extra"], sv)
    with pytest.raises((ValueError, IndexError)):
        _convert.parse_contract_data(fields[:-4], sv)


# --- ibapi's "no value" sentinels -------------------------------------------------------


def _unset_contract(text: str) -> SimContract:
    """AAPL with "no value" in its size rules, underlying con id, price magnifier, aggregate
    group and min tick."""
    return attrs.evolve(
        _contract("AAPL"),
        min_size=text,
        size_increment=text,
        suggested_size_increment=text,
        under_con_id=UNSET_INTEGER,
        price_magnifier=UNSET_INTEGER,
        agg_group=UNSET_INTEGER,
        min_tick=UNSET_DOUBLE,
    )


@pytest.mark.parametrize("text", NO_VALUE_NUMBERS)
@pytest.mark.parametrize("sv", [157, 163, 164, 182, 186, 200])
def test_fast_contract_data_reads_no_value_as_missing(sv: int, text: str) -> None:
    """Unset size rules read as None, an UNSET_INTEGER underlying con id and price magnifier
    as 0, and an UNSET_DOUBLE min tick as 0, in every layout."""
    _, details = _convert.parse_contract_data(_contract_fields(_unset_contract(text), sv), sv)
    sizes = (details.min_size, details.size_increment, details.suggested_size_increment)
    assert sizes == (None, None, None)
    assert (details.under_con_id, details.price_magnifier, details.min_tick) == (0, 0, 0.0)
    assert details.contract.con_id == 265598


@pytest.mark.parametrize("text", NO_VALUE_NUMBERS)
@pytest.mark.parametrize("sv", rel.versions([157, 164, 182, 186, 200]))
def test_ibapi_contract_details_read_no_value_as_missing(sv: int, text: str) -> None:
    """ibapi's decoded sentinels (UNSET_DECIMAL sizes in 10.x, UNSET_INTEGER, UNSET_DOUBLE)
    become None and 0 in ContractDetails, the same as the fast parser's."""
    fields = _contract_fields(_unset_contract(text), sv)
    (cd,) = _ibapi_decoded(fields, sv)
    assert (cd.underConId, cd.priceMagnifier, cd.aggGroup) == (UNSET_INTEGER,) * 3
    assert cd.minTick == UNSET_DOUBLE
    if sv >= 164:
        assert (cd.minSize, cd.sizeIncrement, cd.suggestedSizeIncrement) == (UNSET_DECIMAL,) * 3
    details = _convert.contract_details(cd)
    sizes = (details.min_size, details.size_increment, details.suggested_size_increment)
    assert sizes == (None, None, None)
    assert (details.under_con_id, details.price_magnifier, details.min_tick) == (0, 0, 0.0)
    assert details == _convert.parse_contract_data(fields, sv)[1]


def _bar_fields(sv: int, **values: str) -> list[bytes]:
    """historicalData (17) at ``sv`` with one five-minute bar (formatDate=2), fields
    overridden by ``values``."""
    bar = m.WireBar(
        **{
            "date": "1704205800",  # 2024-01-02 14:30 UTC
            "open": "187.15",
            "high": "187.80",
            "low": "186.90",
            "close": "187.42",
            "volume": "5123",
            "wap": "187.3312",
            "count": "2210",
            **values,
        }
    )
    frame = encode(m.historical_data_fields(7, "", "", [bar], server_version=sv))
    return frame[4:].split(b"\0")[:-1]


def _build(columns: _convert.BarColumns, *, volume_in_lots: bool = False) -> Bars:
    return _convert.build_bars(
        columns,
        contract=None,
        bar_size=BarSize("5 mins"),
        what_to_show=WhatToShow("TRADES"),
        use_rth=False,
        time_zone="US/Eastern",
        login_tz=None,
        volume_in_lots=volume_in_lots,
    )


def _fast_bars(fields: list[bytes], sv: int) -> Bars:
    """ibdata's own path: historicalData parsed straight into columns."""
    _, columns = _convert.parse_historical_data(fields, with_window=sv < 196)
    return _build(columns)


def _ibapi_bars(fields: list[bytes], sv: int) -> Bars:
    """The slow path: the installed ibapi's BarData objects turned into columns."""
    return _build(_convert.columns_from_bar_data(_ibapi_decoded(fields, sv), "", ""))


@pytest.mark.parametrize(
    ("lots", "shares"),
    [
        ("0.29", 29.0),
        ("948837.22", 94883722.0),
        ("28297.36", 2829736.0),
        ("5123", 512300.0),
        ("-1", None),
    ],
)
def test_volume_in_lots_becomes_whole_shares(lots: str, shares: float | None) -> None:
    """A volume in lots (two decimals at most) is returned as the exact whole number of
    shares, not the float product (0.29 x 100 is 28.999999999999996); -1 stays "none"."""
    _, columns = _convert.parse_historical_data(_bar_fields(165, volume=lots), with_window=True)
    bars = _build(columns, volume_in_lots=True)
    assert [b.volume for b in bars] == [shares]


@pytest.mark.parametrize("text", NO_VALUE_NUMBERS)
@pytest.mark.parametrize("sv", [157, 163, 196, 200])
def test_fast_bars_read_no_value_volume_and_wap_as_missing(sv: int, text: str) -> None:
    """An empty or sentinel volume and WAP are None on the bar; prices and count stay."""
    (bar,) = _fast_bars(_bar_fields(sv, volume=text, wap=text), sv)
    assert (bar.volume, bar.wap, bar.count) == (None, None, 2210)
    assert (bar.open, bar.high, bar.low, bar.close) == (187.15, 187.8, 186.9, 187.42)


@pytest.mark.parametrize("text", NO_VALUE_INTEGERS)
@pytest.mark.parametrize("sv", [157, 163, 196, 200])
def test_fast_bars_read_no_value_count_as_missing(sv: int, text: str) -> None:
    """An empty or sentinel trade count is None on the bar; volume and WAP stay."""
    (bar,) = _fast_bars(_bar_fields(sv, count=text), sv)
    assert (bar.volume, bar.wap, bar.count) == (5123.0, 187.3312, None)


@pytest.mark.parametrize(
    ("volume", "wap", "count"),
    [
        ("2147483647", "1.7976931348623157E308", "2147483647"),
        ("9223372036854775807", "9223372036854775807", "9223372036854775807"),
        ("2147483647", "2147483647", "2147483647"),
    ],
)
@pytest.mark.parametrize("sv", rel.versions([157, 163, 196, 200]))
def test_ibapi_bars_read_sentinels_as_missing(sv: int, volume: str, wap: str, count: str) -> None:
    """ibapi's decoded sentinels in volume, WAP and count (UNSET_DECIMAL in 10.x; the
    integer and float sentinels themselves in 9.81.1) are None on the bar."""
    fields = _bar_fields(sv, volume=volume, wap=wap, count=count)
    (decoded,) = _ibapi_decoded(fields, sv)
    if rel.IS_9_81:
        assert (decoded.volume, decoded.average) == (int(volume), float(wap))
    else:
        assert (decoded.volume, decoded.wap) == (UNSET_DECIMAL, UNSET_DECIMAL)
    assert decoded.barCount == int(count)
    (bar,) = _ibapi_bars(fields, sv)
    assert (bar.volume, bar.wap, bar.count) == (None, None, None)
    assert (bar.open, bar.close) == (187.15, 187.42)
    assert _ibapi_bars(fields, sv) == _fast_bars(fields, sv)


@pytest.mark.parametrize("sv", rel.versions([157, 163, 196, 200]))
def test_ibapi_bars_with_empty_fields(sv: int) -> None:
    """Empty volume and WAP decode as UNSET_DECIMAL in 10.x and read as missing; 9.81.1
    decodes them as 0, as it does an empty count in every release."""
    fields = _bar_fields(sv, volume="", wap="", count="")
    (bar,) = _ibapi_bars(fields, sv)
    if rel.IS_9_81:
        assert (bar.volume, bar.wap, bar.count) == (0.0, 0.0, 0)
    else:
        assert (bar.volume, bar.wap, bar.count) == (None, None, 0)


@pytest.mark.parametrize("text", ["", "9223372036854775807", "1.7976931348623157E308"])
@pytest.mark.parametrize("price", ["open", "high", "low", "close"])
@pytest.mark.parametrize("sv", [157, 196])
def test_fast_bars_refuse_a_no_value_price(sv: int, price: str, text: str) -> None:
    """A bar whose price is empty or a sentinel fails with ValueError, never a huge price."""
    _, columns = _convert.parse_historical_data(
        _bar_fields(sv, **{price: text}), with_window=sv < 196
    )
    with pytest.raises(ValueError, match=f"a bar's {price} is IB's 'no value' sentinel"):
        _build(columns)


@pytest.mark.parametrize("text", ["9223372036854775807", "1.7976931348623157E308"])
@pytest.mark.parametrize("price", ["open", "high", "low", "close"])
@pytest.mark.parametrize("sv", rel.versions([157, 196]))
def test_ibapi_bars_refuse_a_sentinel_price(sv: int, price: str, text: str) -> None:
    """A price ibapi decodes as UNSET_DOUBLE (or UNSET_LONG) fails with ValueError."""
    fields = _bar_fields(sv, **{price: text})
    (decoded,) = _ibapi_decoded(fields, sv)
    assert getattr(decoded, price) == float(text)
    with pytest.raises(ValueError, match=f"a bar's {price} is IB's 'no value' sentinel"):
        _ibapi_bars(fields, sv)
