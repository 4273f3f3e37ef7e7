"""ibdata's own parsers agree with the decoders of ibapi and ib_async.

The simulator encodes each message (its encoders are independent of ibdata's client);
ibdata's fast parser and the official decoders (followed by ibdata's conversion) must give
the same models.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest
from ib_async.decoder import Decoder as AsyncDecoder
from ibapi.decoder import Decoder as IbapiDecoder
from ibapi.wrapper import EWrapper

from ibdata import _convert
from ibdata.models import ContractDetails
from ibdata.sim import Catalog, ContractQuery
from ibdata.sim import _messages as m
from ibdata.sim._framing import encode

TODAY = dt.date(2025, 3, 12)
CATALOG = Catalog.default(TODAY)
CONTRACTS = {
    "AAPL": ContractQuery(symbol="AAPL", sec_type="STK", exchange="SMART", currency="USD"),
    "ZNM5": ContractQuery(symbol="ZN", sec_type="FUT", exchange="CBOT",
                          last_trade_date_or_contract_month="202506"),
    "FGBL": ContractQuery(symbol="GBL", sec_type="CONTFUT", exchange="EUREX"),
    "EUR.USD": ContractQuery(symbol="EUR", sec_type="CASH", exchange="IDEALPRO", currency="USD"),
}  # fmt: skip


def _fields(name: str, sv: int) -> list[bytes]:
    c = CATALOG.resolve(CONTRACTS[name], TODAY)
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


class _IbapiSink(EWrapper):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:  # noqa: N803
        self.got.append(contractDetails)


class _AsyncSink:
    def __init__(self) -> None:
        self.got: list[Any] = []

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:  # noqa: N803
        self.got.append(contractDetails)


def _via_ibapi(fields: list[bytes], sv: int) -> ContractDetails:
    sink = _IbapiSink()
    IbapiDecoder(sink, sv).interpret(tuple(fields))
    (cd,) = sink.got
    return _convert.contract_details(cd)


def _via_ib_async(fields: list[bytes], sv: int) -> ContractDetails:
    sink = _AsyncSink()
    AsyncDecoder(sink, sv).interpret([f.decode() for f in fields])  # type: ignore[arg-type]
    (cd,) = sink.got
    return _convert.contract_details(cd)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
@pytest.mark.parametrize("sv", [157, 158, 160, 162])
def test_fast_contract_data_matches_ibapi(name: str, sv: int) -> None:
    """At the versions ibapi 9.81.1 knows, the fast parser equals ibapi's decoder."""
    fields = _fields(name, sv)
    req_id, fast = _convert.parse_contract_data(fields, sv)
    assert req_id == 7
    assert fast == _via_ibapi(fields, sv)


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


def test_fast_contract_data_refuses_a_wrong_field_count() -> None:
    """A contractData message with a field too many or too few is refused."""
    fields = _fields("AAPL", 178)
    with pytest.raises(ValueError, match="fields"):
        _convert.parse_contract_data([*fields, b"extra"], 178)
    with pytest.raises((ValueError, IndexError)):
        _convert.parse_contract_data(fields[:-4], 178)
