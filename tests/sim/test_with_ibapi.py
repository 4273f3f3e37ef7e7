"""IB's official ``ibapi`` client against the simulator, over real sockets.

Runs with whichever release is installed (9.81.1 to 10.51, see ``tests/ibapi_release.py``):
each connects at the highest server version it and ibdata's simulator share.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from collections.abc import Callable, Iterator

import pytest

from ibdata._probe import IbapiProbe, ProbeError, future, stock
from ibdata.sim import Simulator
from tests import ibapi_release as rel
from tests.conftest import CLOCK_AT


@pytest.fixture
def ib(sim: Simulator) -> Iterator[IbapiProbe]:
    """An ibapi client connected to the simulator as client 7."""
    with IbapiProbe(sim.host, sim.port, client_id=7) as probe:
        yield probe


def test_handshake_negotiates_and_sends_startup_burst(ib: IbapiProbe) -> None:
    """ibapi gets its own highest server version (157 for 9.81.1, 176 for 10.19, 187 for
    10.30, 200 for 10.37+, the simulator's maximum), the account list and the notices."""
    assert ib.server_version == min(rel.MAX_CLIENT_VERSION, 200)
    assert ib.wrapper.accounts == "DU1234567"
    assert ib.wrapper.next_id == 1
    codes = [code for _, code, _ in ib.wrapper.notices]
    assert codes.count(2104) >= 1
    assert 2106 in codes
    assert 2158 in codes


def test_gateway_flavour_sends_real_gateway_notices(
    sim_factory: Callable[..., Simulator],
) -> None:
    """With gateway=True the start-up notices are those of every real IB Gateway capture:
    2104 usfarm, 2107 ushmds dormant, 2158 secdefil (never TWS's 2106 at start-up)."""
    sim = sim_factory(gateway=True)
    with IbapiProbe(sim.host, sim.port, client_id=1) as ib:
        ib.contract_details(stock("AAPL"))  # a round trip, so every notice has arrived
        notices = [(code, text) for _, code, text in ib.wrapper.notices]
    assert notices == [
        (2104, "Market data farm connection is OK:usfarm"),
        (2107, "HMDS data farm connection is inactive but should be available upon demand.ushmds"),
        (2158, "Sec-def data farm connection is OK:secdefil"),
    ]


def test_gateway_connects_a_historical_farm_on_first_use(
    sim_factory: Callable[..., Simulator],
) -> None:
    """An IB Gateway reports a historical farm connected (2106) when it is first used, once;
    a later session is told at start-up that it is OK (2104 + 2106 + 2158)."""
    sim = sim_factory(gateway=True)
    with IbapiProbe(sim.host, sim.port, client_id=1) as ib:
        ib.head_timestamp(stock("AAPL"))
        ib.historical_data(future("GBL", "EUREX", "EUR", sec_type="CONTFUT"), bar_size="1 day")
        ib.head_timestamp(stock("MSFT"))
        woken = [text for _, code, text in ib.wrapper.notices if code == 2106]
    assert woken == [
        "HMDS data farm connection is OK:ushmds",
        "HMDS data farm connection is OK:euhmds",
    ]
    with IbapiProbe(sim.host, sim.port, client_id=2) as later:
        later.contract_details(stock("AAPL"))
        codes = [code for _, code, _ in later.wrapper.notices]
    assert codes == [2104, 2106, 2106, 2158]


def test_aapl_contract_details(ib: IbapiProbe) -> None:
    """AAPL on SMART comes back as one contract with IB's real identifiers."""
    (d,) = ib.contract_details(stock("AAPL"))
    assert d.contract.conId == 265598
    assert d.contract.primaryExchange == "NASDAQ"
    assert d.contract.tradingClass == "NMS"
    assert d.longName == "APPLE INC"
    assert d.timeZoneId == "US/Eastern"
    assert d.minTick == 0.01
    assert [(t.tag, t.value) for t in d.secIdList] == [("ISIN", "US0378331005")]
    assert re.fullmatch(r"(\d{8}:(CLOSED|\d{4}-\d{8}:\d{4});?)+", d.tradingHours)
    assert "20250312:0930-20250312:1600" in d.liquidHours


def test_contfut_resolves_to_one_front_month(ib: IbapiProbe) -> None:
    """A CONTFUT lookup returns one entry, secType CONTFUT, with the front month's conId."""
    (d,) = ib.contract_details(future("GBL", "EUREX", "EUR", sec_type="CONTFUT"))
    assert d.contract.secType == "CONTFUT"
    assert d.contract.tradingClass == "FGBL"
    assert d.contract.localSymbol.startswith("FGBL ")
    assert d.contract.lastTradeDateOrContractMonth >= CLOCK_AT.strftime("%Y%m%d")
    chain = ib.contract_details(future("GBL", "EUREX", "EUR"))
    assert d.contract.conId == chain[0].contract.conId


def test_futures_chain_lists_live_expiries_only(ib: IbapiProbe) -> None:
    """FUT without an expiry returns every live quarterly contract, oldest first."""
    chain = ib.contract_details(future("ZN", "CBOT", "USD"))
    dates = [d.contract.lastTradeDateOrContractMonth for d in chain]
    assert len(chain) >= 4
    assert dates == sorted(dates)
    assert all(x >= CLOCK_AT.strftime("%Y%m%d") for x in dates)
    assert {d.contractMonth[4:] for d in chain} <= {"03", "06", "09", "12"}
    assert all(d.contract.multiplier == "1000" for d in chain)


def test_expired_contract_needs_include_expired(ib: IbapiProbe) -> None:
    """An expired contract month is found only with includeExpired."""
    old = future("GBL", "EUREX", "EUR", month="202406")
    with pytest.raises(ProbeError) as err:
        ib.contract_details(old)
    assert err.value.code == 200
    old.includeExpired = True
    (d,) = ib.contract_details(old)
    assert d.contractMonth == "202406"


def test_unknown_symbol_is_200(ib: IbapiProbe) -> None:
    """An unknown symbol is answered with 200 and no contractDataEnd."""
    with pytest.raises(ProbeError) as err:
        ib.contract_details(stock("NOSUCH"))
    assert err.value.code == 200
    assert err.value.text == "No security definition has been found for the request"


def test_daily_bars_use_session_dates(ib: IbapiProbe) -> None:
    """One week of daily AAPL bars: yyyymmdd dates, whole volumes, OHLC consistent (ibapi
    9.81 decodes the volume as int, 10.x as Decimal, the WAP as ``average`` or ``wap``)."""
    bars, start, end = ib.historical_data(stock("AAPL"), duration="1 W", bar_size="1 day")
    assert 4 <= len(bars) <= 6
    for b in bars:
        assert re.fullmatch(r"\d{8}", b.date)
        assert dt.date(int(b.date[:4]), int(b.date[4:6]), int(b.date[6:])).weekday() < 5
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert isinstance(rel.number(b.volume), int)
        assert b.volume > 0
        assert b.low <= rel.number(rel.wap(b)) <= b.high
    assert start < end


@pytest.mark.parametrize("sv", rel.versions([157, 173, 174, 196]))
def test_intraday_bar_date_form_follows_the_server_version(
    sv: int, sim_factory: Callable[..., Simulator]
) -> None:
    """Below 174 intraday dates and the window are ``yyyymmdd  hh:mm:ss`` in the login
    zone (two spaces); from 174 ``yyyymmdd hh:mm:ss <instrument zone>``; from 196 the
    window arrives in historicalDataEnd (108), which every release delivers alike."""
    sim = sim_factory(server_version=sv)
    with IbapiProbe(sim.host, sim.port, client_id=7) as ib:
        assert ib.server_version == sv
        bars, start, end = ib.historical_data(stock("AAPL"), duration="3600 S", bar_size="5 mins")
    assert len(bars) == 12
    if sv < 174:
        assert all(re.fullmatch(r"\d{8}  \d\d:\d\d:\d\d", b.date) for b in bars)
        assert re.fullmatch(r"\d{8}  \d\d:\d\d:\d\d", start)
        assert end == "20250312  15:00:00"  # login zone UTC, the simulator's clock
    else:
        assert all(re.fullmatch(r"\d{8} \d\d:\d\d:\d\d US/Eastern", b.date) for b in bars)
        assert bars[-1].date == "20250312 10:55:00 US/Eastern"
        assert end == "20250312 11:00:00 US/Eastern"


def test_epoch_dates_with_format_date_2(ib: IbapiProbe) -> None:
    """formatDate 2 gives epoch seconds for intraday bars."""
    bars, _, _ = ib.historical_data(
        stock("MSFT"), duration="1800 S", bar_size="1 min", format_date=2
    )
    times = [int(b.date) for b in bars]
    assert times == sorted(times)
    assert times[-1] < int(CLOCK_AT.timestamp())
    assert all(b - a == 60 for a, b in itertools.pairwise(times))


@pytest.mark.parametrize("what", ["MIDPOINT", "BID", "ASK", "BID_ASK"])
def test_quote_bars_have_no_volume(ib: IbapiProbe, what: str) -> None:
    """Quote types carry volume, WAP and count of -1."""
    bars, _, _ = ib.historical_data(
        stock("SPY"), duration="1 D", bar_size="1 hour", what_to_show=what
    )
    assert bars
    assert all(b.volume == -1 and b.barCount == -1 for b in bars)


def test_same_bar_whatever_the_window(ib: IbapiProbe) -> None:
    """Two overlapping windows give identical bars where they overlap."""
    a, _, _ = ib.historical_data(stock("AAPL"), duration="7200 S", bar_size="1 min")
    b, _, _ = ib.historical_data(
        stock("AAPL"), end="20250312-14:30:00", duration="3600 S", bar_size="1 min"
    )
    by_date = {x.date: (x.open, x.high, x.low, x.close, x.volume) for x in a}
    common = [x for x in b if x.date in by_date]
    assert len(common) >= 30
    for x in common:
        assert by_date[x.date] == (x.open, x.high, x.low, x.close, x.volume)


def test_fx_midpoint_and_trades_refused(ib: IbapiProbe) -> None:
    """EUR.USD serves MIDPOINT bars and answers TRADES with TWS's 162 text."""
    fx = stock("EUR", "IDEALPRO", "USD")
    fx.secType = "CASH"
    bars, _, _ = ib.historical_data(fx, duration="1 D", bar_size="1 hour", what_to_show="MIDPOINT")
    assert bars
    with pytest.raises(ProbeError) as err:
        ib.historical_data(fx, duration="1 D", bar_size="1 hour")
    assert err.value.code == 162
    assert "No historical market data for EUR/CASH@IDEALPRO" in err.value.text


@pytest.mark.parametrize(
    ("kwargs", "code", "fragment"),
    [
        ({"bar_size": "1 sec"}, 321, "bar size setting is invalid"),
        ({"duration": "400 D", "bar_size": "1 day"}, 321, "must be made in years"),
        ({"duration": "1 Q"}, 321, "duration is invalid"),
        ({"end": "2025-03-12 10:00"}, 10314, "End Date/Time"),
        ({"duration": "1 D", "bar_size": "1 secs"}, 162, "Time length exceed max"),
    ],
)
def test_invalid_requests_get_tws_errors(
    ib: IbapiProbe, kwargs: dict[str, str], code: int, fragment: str
) -> None:
    """Malformed bar sizes, durations and end dates get TWS's codes and texts."""
    with pytest.raises(ProbeError) as err:
        ib.historical_data(stock("AAPL"), **kwargs)  # type: ignore[arg-type]
    assert err.value.code == code
    assert fragment in err.value.text


def test_zoneless_end_warns_2174_and_serves(ib: IbapiProbe) -> None:
    """An end date without a zone is served with warning 2174."""
    bars, _, _ = ib.historical_data(stock("AAPL"), end="20250311 16:00:00", bar_size="1 hour")
    assert bars
    assert any(code == 2174 for _, code, _ in ib.wrapper.notices)


def test_contfut_with_end_date_is_10339(ib: IbapiProbe) -> None:
    """A continuous future with an end date is refused with 10339."""
    cont = future("GBL", "EUREX", "EUR", sec_type="CONTFUT")
    bars, _, _ = ib.historical_data(cont, duration="1 W", bar_size="1 day")
    assert bars
    with pytest.raises(ProbeError) as err:
        ib.historical_data(cont, end="20250301-00:00:00", duration="1 W", bar_size="1 day")
    assert err.value.code == 10339


def test_futures_month_bars_and_chain_ambiguity(ib: IbapiProbe) -> None:
    """A contract month serves bars; FUT without expiry in a bar request is 321."""
    bars, _, _ = ib.historical_data(
        future("ZN", "CBOT", "USD", month="202506"), duration="1 W", bar_size="1 hour"
    )
    assert bars
    with pytest.raises(ProbeError) as err:
        ib.historical_data(future("ZN", "CBOT", "USD"), bar_size="1 hour")
    assert err.value.code == 321
    assert "Please enter a local symbol or an expiry" in err.value.text


def test_no_permission_is_162(sim_factory: Callable[..., Simulator]) -> None:
    """A contract listed in no_permission is refused with 162 "No market data permissions"."""
    sim = sim_factory(no_permission=["MSFT"])
    with IbapiProbe(sim.host, sim.port, client_id=1) as ib:
        assert ib.historical_data(stock("AAPL"))[0]
        with pytest.raises(ProbeError) as err:
            ib.historical_data(stock("MSFT"))
    assert err.value.code == 162
    assert "No market data permissions for" in err.value.text


def test_head_timestamp(ib: IbapiProbe) -> None:
    """The head timestamp of AAPL trades is its first listing day, dashed UTC form."""
    text = ib.head_timestamp(stock("AAPL"))
    assert re.fullmatch(r"\d{8}-\d\d:\d\d:\d\d", text)
    assert text.startswith("1980")


def test_weekend_window_serves_fridays_last_hour(ib: IbapiProbe) -> None:
    """3600 S ending on a weekend is an hour of session time, as real TWS counts it: the last
    60 minutes of Friday's session (which ends 20:00 in New York, 01:00 UTC)."""
    bars, _, _ = ib.historical_data(
        stock("AAPL"), end="20250309-00:00:00", duration="3600 S", bar_size="1 min", format_date=2
    )
    friday_close = int(dt.datetime(2025, 3, 8, 1, 0, tzinfo=dt.timezone.utc).timestamp())
    assert [int(b.date) for b in bars] == list(range(friday_close - 3600, friday_close, 60))


def test_window_without_a_session_has_no_data(ib: IbapiProbe) -> None:
    """A window before the first session is answered with 162 "HMDS query returned no
    data"."""
    with pytest.raises(ProbeError) as err:
        ib.historical_data(
            stock("AAPL"), end="19801201-00:00:00", duration="3600 S", bar_size="1 min"
        )
    assert err.value.code == 162
    assert err.value.text.endswith("HMDS query returned no data: AAPL@SMART Trades")


def test_weekend_window_has_no_data_under_sessions_semantics(
    sim_factory: Callable[..., Simulator],
) -> None:
    """With window_semantics="sessions" a window with no session start in it is 162."""
    sim = sim_factory(window_semantics="sessions")
    with IbapiProbe(sim.host, sim.port, client_id=7) as ib, pytest.raises(ProbeError) as err:
        ib.historical_data(
            stock("AAPL"), end="20250309-00:00:00", duration="3600 S", bar_size="1 min"
        )
    assert err.value.code == 162
    assert err.value.text.endswith("HMDS query returned no data: AAPL@SMART Trades")


def test_burst_of_exactly_4096_bytes_reaches_ibapi(
    sim_factory: Callable[..., Simulator],
) -> None:
    """A burst whose size is a multiple of 4096 followed by silence is not lost by ibapi
    (at 157, whose five-field error every release reads)."""
    sim = sim_factory(server_version=157)
    text = "x" * 495  # 4+2+2+3+5+495+1 = 512 bytes a frame, 8 frames = 4096 bytes
    frame = b"4\x002\x00-1\x002104\x00" + text.encode() + b"\x00"
    burst = b"".join(len(frame).to_bytes(4, "big") + frame for _ in range(8))
    assert len(burst) == 4096
    with IbapiProbe(sim.host, sim.port, client_id=7) as ib:
        before = len(ib.wrapper.notices)
        assert sim.send_raw(burst) == 1
        deadline = time.monotonic() + 3  # ibapi's reader waits 1 s before it would discard
        while len(ib.wrapper.notices) < before + 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [n[2] for n in ib.wrapper.notices[before:]] == [text] * 8
