"""``ib_async`` 2.1.0 against the simulator, over real sockets, with its synchronous API."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ib_async import IB, ContFuture, Contract, Forex, Future, Index, RequestError, Stock

from ibdata._probe import IbapiProbe, stock
from ibdata.sim import FixedClock, Simulator
from tests import ibapi_release as rel
from tests.conftest import CLOCK_AT

UTC = dt.timezone.utc
EASTERN = ZoneInfo("US/Eastern")
#: The start-up requests ib_async sends from ``IB.connect`` (protocol reference §1.6).
STARTUP_REQUESTS = (
    "reqPositions",
    "reqOpenOrders",
    "reqCompletedOrders",
    "reqAccountUpdates",
    "reqAccountUpdatesMulti",
    "reqExecutions",
)

Connect = Callable[..., IB]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for ib_async's synchronous API; closed, with its tasks, afterwards."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    try:
        loop.run_until_complete(asyncio.sleep(0))  # let closed transports release their sockets
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def connect(
    loop: asyncio.AbstractEventLoop, sim_factory: Callable[..., Simulator]
) -> Iterator[Connect]:
    """Connect ib_async clients (``RaiseRequestErrors`` on); all are disconnected after the test."""
    clients: list[IB] = []

    def make(sim: Simulator, client_id: int = 1, timeout: float = 5) -> IB:
        ib = IB()
        ib.RaiseRequestErrors = True
        clients.append(ib)
        ib.connect(sim.host, sim.port, clientId=client_id, timeout=timeout)
        return ib

    yield make
    for ib in clients:
        ib.disconnect()


@pytest.fixture
def ib(sim: Simulator, connect: Connect) -> IB:
    """An ib_async client connected to the default simulator as client 11."""
    return connect(sim, client_id=11)


def errors_of(ib: IB) -> list[tuple[int, int, str]]:
    """Collect ``(reqId, code, text)`` of every error and warning ib_async reports from now on."""
    seen: list[tuple[int, int, str]] = []

    def on_error(req_id: int, code: int, text: str, contract: Any) -> None:
        seen.append((req_id, code, text))

    ib.errorEvent += on_error
    return seen


def utc_naive(t: dt.datetime) -> dt.datetime:
    """A bar time as naive UTC: aware times are converted, naive ones are UTC already."""
    return t if t.tzinfo is None else t.astimezone(UTC).replace(tzinfo=None)


AAPL = Stock("AAPL", "SMART", "USD")


# ---------------------------------------------------------------------------- connection


def test_connect_is_quick_and_answers_startup_requests(
    sim: Simulator, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """connect() returns at once because every start-up request gets its end marker."""
    caplog.set_level(logging.INFO, logger="ib_async")
    began = time.monotonic()
    ib = connect(sim, client_id=3, timeout=5)
    assert time.monotonic() - began < 2.0
    assert ib.isConnected()
    assert ib.client.serverVersion() == 178
    assert ib.managedAccounts() == ["DU1234567"]
    names = [r.name for r in sim.received.find(client_id=3)]
    for name in STARTUP_REQUESTS:
        assert name in names
    assert names.index("reqExecutions") > max(names.index(n) for n in STARTUP_REQUESTS[:-1])
    (updates,) = sim.received.find("reqAccountUpdates", client_id=3)
    assert updates.fields[-1] == "DU1234567"
    assert "Synchronization complete" in caplog.text
    assert "timed out" not in caplog.text


@pytest.mark.parametrize("version", [157, 163, 164, 166, 176, 178])
def test_server_versions(
    sim_factory: Callable[..., Simulator], connect: Connect, version: int
) -> None:
    """At every server version ib_async decodes contract details, bars and errors."""
    sim = sim_factory(server_version=version)
    ib = connect(sim, client_id=2)
    assert ib.client.serverVersion() == version

    (d,) = ib.reqContractDetails(AAPL)
    assert d.contract is not None
    assert d.contract.conId == 265598
    assert d.contract.primaryExchange == "NASDAQ"
    assert d.minTick == 0.01
    assert d.timeZoneId == "US/Eastern"
    assert [(t.tag, t.value) for t in d.secIdList or []] == [("ISIN", "US0378331005")]
    if version >= 164:
        assert (d.minSize, d.sizeIncrement, d.suggestedSizeIncrement) == (0.0001, 0.0001, 100)
    elif version == 163:  # ib_async stores sv 163's sizeMinTick in suggestedSizeIncrement
        assert d.suggestedSizeIncrement == 0.0001

    hourly = ib.reqHistoricalData(AAPL, "", "1 D", "1 hour", "TRADES", False, timeout=5)
    assert hourly
    assert all(type(b.date) is dt.datetime for b in hourly)
    if version >= 174:
        assert all(b.date.tzinfo == EASTERN for b in hourly)
    else:
        assert all(b.date.tzinfo is None for b in hourly)  # login zone UTC, naive
    times = [utc_naive(b.date) for b in hourly]
    assert times == sorted(times)
    assert times[-1] == dt.datetime(2025, 3, 12, 14, 0)

    daily = ib.reqHistoricalData(AAPL, "", "1 W", "1 day", "TRADES", False, timeout=5)
    assert 4 <= len(daily) <= 6
    assert all(type(b.date) is dt.date and b.date.weekday() < 5 for b in daily)

    # 321 is on ib_async's warning list: it is reported but does not end the request, which
    # then times out and returns no bars (ib_async cancels it).
    seen = errors_of(ib)
    bad = ib.reqHistoricalData(AAPL, "", "1 D", "1 sec", "TRADES", False, timeout=0.5)
    assert len(bad) == 0
    assert (bad.reqId, 321) in {(r, c) for r, c, _ in seen}
    sim.received.wait_for(
        "cancelHistoricalData", where=lambda r: r.fields[2] == str(bad.reqId), timeout=2
    )
    # A request error that is not a warning fails the request at every error layout.
    with pytest.raises(RequestError) as err:
        ib.reqHistoricalData(
            AAPL, "19801201-00:00:00", "3600 S", "1 min", "TRADES", False, timeout=5
        )
    assert err.value.code == 162


# ---------------------------------------------------------------------------- futures


def test_contfut_details_and_qualify(ib: IB) -> None:
    """A CONTFUT has one contract-details entry and qualifies to the front month's conId."""
    (d,) = ib.reqContractDetails(ContFuture("GBL", "EUREX", currency="EUR"))
    assert d.contract is not None
    assert d.contract.secType == "CONTFUT"
    assert d.contract.tradingClass == "FGBL"
    chain = ib.reqContractDetails(Future("GBL", exchange="EUREX", currency="EUR"))
    assert chain[0].contract is not None
    assert d.contract.conId == chain[0].contract.conId

    cont = ContFuture("GBL", "EUREX", currency="EUR")
    assert ib.qualifyContracts(cont) == [cont]
    assert cont.conId == d.contract.conId
    assert cont.secType == "CONTFUT"
    assert cont.localSymbol.startswith("FGBL ")


def test_futures_chain_and_contract_month_bars(ib: IB) -> None:
    """FUT without expiry lists the live ZN contracts; a contract month serves bars."""
    chain = ib.reqContractDetails(Future("ZN", exchange="CBOT", currency="USD"))
    assert len(chain) >= 4
    months = [d.contractMonth for d in chain]
    assert months == sorted(months)
    assert all(d.contract is not None and d.contract.secType == "FUT" for d in chain)
    assert all(d.contract is not None and d.contract.multiplier == "1000" for d in chain)

    june = Future("ZN", "202506", "CBOT")
    assert ib.qualifyContracts(june) == [june]
    assert june.conId in {d.contract.conId for d in chain if d.contract is not None}
    bars = ib.reqHistoricalData(june, "", "1 W", "1 hour", "TRADES", False, timeout=5)
    assert bars
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)


def test_contracts_of_public_examples_qualify(
    sim_factory: Callable[..., Simulator], connect: Connect
) -> None:
    """The contracts public ib_async examples use qualify to IB's real conIds (a generated
    one where IB's is not known), and ES carries its underlying index."""
    sim = sim_factory(clock=FixedClock(dt.datetime(2026, 6, 10, 15, 0, tzinfo=UTC)))
    ib = connect(sim, client_id=12)
    es = Future("ES", "202612", "CME")
    tsla = Stock("TSLA", "SMART", "USD")
    cable = Forex("GBPUSD")
    ndx = Index("NDX", "NASDAQ")
    crude = Future("CL", "202612", "NYMEX")
    assert ib.qualifyContracts(es, tsla, cable, ndx, crude) == [es, tsla, cable, ndx, crude]
    assert [c.conId for c in (es, tsla, cable, ndx, crude)] == [
        515416632,
        76792991,
        12087797,
        416843,
        651202612,  # CLZ6's real conId is not known: the catalog's generated one
    ]
    assert (es.localSymbol, es.lastTradeDateOrContractMonth, es.multiplier) == (
        "ESZ6",
        "20261218",
        "50",
    )
    assert (crude.localSymbol, crude.lastTradeDateOrContractMonth) == ("CLZ6", "20261120")
    assert (tsla.primaryExchange, tsla.tradingClass) == ("NASDAQ", "NMS")
    assert cable.localSymbol == "GBP.USD"
    (d,) = ib.reqContractDetails(es)
    assert (d.underConId, d.underSymbol, d.underSecType) == (11004968, "ES", "IND")
    assert (d.longName, d.timeZoneId, d.lastTradeTime) == ("E-mini S&P 500", "US/Central", "08:30")


# ---------------------------------------------------------------------------- bars


@pytest.mark.parametrize(
    ("bar_size", "duration", "step"),
    [
        ("1 min", "1800 S", dt.timedelta(minutes=1)),
        ("5 mins", "3600 S", dt.timedelta(minutes=5)),
        ("1 hour", "1 D", dt.timedelta(hours=1)),
    ],
)
def test_intraday_bar_sizes(ib: IB, bar_size: str, duration: str, step: dt.timedelta) -> None:
    """Intraday bars carry instrument-zone datetimes one bar size apart, ending before now."""
    bars = ib.reqHistoricalData(AAPL, "", duration, bar_size, "TRADES", False, timeout=5)
    assert bars
    dates = [b.date for b in bars]
    assert all(isinstance(d, dt.datetime) and d.tzinfo == EASTERN for d in dates)
    assert all(b - a == step for a, b in itertools.pairwise(dates))
    assert dates[-1] + step <= CLOCK_AT
    for b in bars:
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.volume > 0
        assert b.barCount > 0
        assert b.low <= b.average <= b.high


def test_daily_and_weekly_bars_are_dates(ib: IB) -> None:
    """Daily and weekly bars are dated with ``datetime.date``; a week by its last session.
    The end (Friday 19:00 in New York) lies in Friday's extended session, and the window's
    start (2 W, 1 M back) in another Friday's: as in real TWS the bars holding the start are
    included and the last one is cut at the end."""
    end = "20250308-00:00:00"
    daily = ib.reqHistoricalData(AAPL, end, "2 W", "1 day", "TRADES", False, timeout=5)
    weekly = ib.reqHistoricalData(AAPL, end, "1 M", "1 week", "TRADES", False, timeout=5)
    assert len(daily) == 11
    assert daily[0].date == dt.date(2025, 2, 21)
    assert len(weekly) == 5
    assert weekly[0].date == dt.date(2025, 2, 7)
    for bars in (daily, weekly):
        dates = [b.date for b in bars]
        assert all(type(d) is dt.date and d.weekday() < 5 for d in dates)
        assert dates == sorted(set(dates))
        assert dates[-1] == dt.date(2025, 3, 7)
        assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)
    assert all(b.date.weekday() == 4 for b in weekly)  # no exchange holiday on these Fridays
    assert weekly[-1].close == daily[-1].close
    assert weekly[-1].high == max(b.high for b in daily[-5:])


@pytest.mark.parametrize("what", ["MIDPOINT", "BID", "ASK", "BID_ASK"])
def test_quote_bars_have_no_volume(ib: IB, what: str) -> None:
    """Quote types decode with volume, WAP and count of -1."""
    bars = ib.reqHistoricalData(
        Stock("SPY", "SMART", "USD"), "", "1 D", "1 hour", what, False, timeout=5
    )
    assert bars
    assert all(b.volume == -1 and b.average == -1 and b.barCount == -1 for b in bars)
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)


def test_format_date_2_gives_utc_datetimes(ib: IB) -> None:
    """formatDate 2 makes ib_async return UTC-aware datetimes for intraday bars."""
    bars = ib.reqHistoricalData(
        Stock("MSFT", "SMART", "USD"),
        "",
        "1800 S",
        "1 min",
        "TRADES",
        False,
        formatDate=2,
        timeout=5,
    )
    assert len(bars) == 30
    assert all(b.date.tzinfo == UTC for b in bars)
    assert bars[-1].date == CLOCK_AT - dt.timedelta(minutes=1)


def test_datetime_end_is_sent_in_utc_and_honoured(ib: IB, sim: Simulator) -> None:
    """An aware endDateTime goes out as ``yyyymmdd hh:mm:ss UTC`` and bounds the bars."""
    end = dt.datetime(2025, 3, 11, 16, 0, tzinfo=EASTERN)
    bars = ib.reqHistoricalData(AAPL, end, "3600 S", "5 mins", "TRADES", False, timeout=5)
    assert len(bars) == 12
    assert bars[-1].date == end - dt.timedelta(minutes=5)
    request = sim.received.find("reqHistoricalData", where=lambda r: r.fields[1] == str(bars.reqId))
    assert request[0].fields[15] == "20250311 20:00:00 UTC"


# ---------------------------------------------------------------------------- errors


def test_unknown_contract_is_200(ib: IB) -> None:
    """An unknown symbol raises RequestError 200; without RaiseRequestErrors it is empty."""
    with pytest.raises(RequestError) as err:
        ib.reqContractDetails(Stock("NOSUCH", "SMART", "USD"))
    assert err.value.code == 200
    assert err.value.message == "No security definition has been found for the request"
    with pytest.raises(RequestError) as err:
        ib.reqHistoricalData(
            Stock("NOSUCH", "SMART", "USD"), "", "1 D", "1 hour", "TRADES", False, timeout=5
        )
    assert err.value.code == 200

    ib.RaiseRequestErrors = False
    assert ib.reqContractDetails(Stock("NOSUCH", "SMART", "USD")) == []
    assert ib.qualifyContracts(Stock("NOSUCH", "SMART", "USD")) == [None]


def test_fx_trades_is_162(ib: IB) -> None:
    """EUR.USD serves MIDPOINT bars and answers TRADES with 162."""
    assert ib.reqHistoricalData(Forex("EURUSD"), "", "1 D", "1 hour", "MIDPOINT", False, timeout=5)
    with pytest.raises(RequestError) as err:
        ib.reqHistoricalData(Forex("EURUSD"), "", "1 D", "1 hour", "TRADES", False, timeout=5)
    assert err.value.code == 162
    assert "No historical market data for EUR/CASH@IDEALPRO" in err.value.message


def test_no_permission_is_162(sim_factory: Callable[..., Simulator], connect: Connect) -> None:
    """A symbol listed in no_permission raises RequestError 162 "No market data permissions"."""
    ib = connect(sim_factory(no_permission=["MSFT"]))
    assert ib.reqHistoricalData(AAPL, "", "1 D", "1 hour", "TRADES", False, timeout=5)
    with pytest.raises(RequestError) as err:
        ib.reqHistoricalData(
            Stock("MSFT", "SMART", "USD"), "", "1 D", "1 hour", "TRADES", False, timeout=5
        )
    assert err.value.code == 162
    assert "No market data permissions for" in err.value.message


def test_contfut_with_end_date_is_10339(ib: IB) -> None:
    """A continuous future serves bars up to now but refuses an end date with 10339."""
    cont = ContFuture("GBL", "EUREX", currency="EUR")
    assert ib.reqHistoricalData(cont, "", "1 W", "1 day", "TRADES", False, timeout=5)
    with pytest.raises(RequestError) as err:
        ib.reqHistoricalData(cont, "20250301-00:00:00", "1 W", "1 day", "TRADES", False, timeout=5)
    assert err.value.code == 10339


def test_zoneless_end_warns_2174_and_serves(ib: IB) -> None:
    """An end date without a zone is served; 2174 reaches ib_async as a warning."""
    seen = errors_of(ib)
    bars = ib.reqHistoricalData(
        AAPL, "20250311 16:00:00", "1 D", "1 hour", "TRADES", False, timeout=5
    )
    assert bars
    assert (bars.reqId, 2174) in {(r, c) for r, c, _ in seen}
    assert utc_naive(bars[-1].date) == dt.datetime(2025, 3, 11, 15, 0)  # login zone UTC


def test_window_without_a_session_is_162_no_data(ib: IB) -> None:
    """A window before the first session raises RequestError 162 "HMDS query returned no
    data" (a weekend one is Friday's last hour of session time, as in real TWS)."""
    with pytest.raises(RequestError) as err:
        ib.reqHistoricalData(
            AAPL, "19801201-00:00:00", "3600 S", "1 min", "TRADES", False, timeout=5
        )
    assert err.value.code == 162
    assert err.value.message.endswith("HMDS query returned no data: AAPL@SMART Trades")


# ---------------------------------------------------------------------------- head timestamp


def test_head_timestamp_and_automatic_cancel(ib: IB, sim: Simulator) -> None:
    """AAPL's head timestamp is a 1980 datetime and ib_async's cancelHeadTimestamp arrives."""
    head = ib.reqHeadTimeStamp(AAPL, "TRADES", useRTH=False, formatDate=1)
    assert isinstance(head, dt.datetime)
    assert head.year == 1980
    request = sim.received.wait_for("reqHeadTimestamp", timeout=1)
    cancel = sim.received.wait_for("cancelHeadTimestamp", timeout=2)
    assert cancel.fields[1] == request.fields[1]
    deadline = time.monotonic() + 2
    while sim.stats.open_historical and time.monotonic() < deadline:
        ib.sleep(0.02)
    assert sim.stats.open_historical == 0


def test_head_timestamp_epoch_form(ib: IB) -> None:
    """formatDate 2 gives a UTC-aware head timestamp equal to the dashed form's time."""
    aware = ib.reqHeadTimeStamp(AAPL, "MIDPOINT", useRTH=True, formatDate=2)
    naive = ib.reqHeadTimeStamp(AAPL, "MIDPOINT", useRTH=True, formatDate=1)
    assert aware.tzinfo == UTC
    assert aware.replace(tzinfo=None) == naive


# ---------------------------------------------------------------------------- live updates


def test_keep_up_to_date_updates_then_cancels(
    sim_factory: Callable[..., Simulator], connect: Connect
) -> None:
    """keepUpToDate bars get updateEvent from historicalDataUpdate until cancelled."""
    clock = FixedClock(CLOCK_AT + dt.timedelta(minutes=1))
    sim = sim_factory(update_interval=0.2, clock=clock)
    ib = connect(sim)
    bars = ib.reqHistoricalData(AAPL, "", "3600 S", "5 mins", "TRADES", False, keepUpToDate=True)
    count = len(bars)
    assert bars[-1].date == CLOCK_AT  # the bar in progress, cut at the clock's 15:01
    fired: list[bool] = []
    bars.updateEvent += lambda _bars, has_new_bar: fired.append(has_new_bar)
    clock.advance(60)  # an update equal to the last bar changes nothing: let the bar grow
    deadline = time.monotonic() + 3
    while not fired and time.monotonic() < deadline:
        ib.waitOnUpdate(timeout=0.5)
    assert fired
    assert fired[0] is False  # the last bar is updated, none is added
    assert len(bars) == count
    assert bars[-1].date == CLOCK_AT

    ib.cancelHistoricalData(bars)
    sim.received.wait_for(
        "cancelHistoricalData", where=lambda r: r.fields[2] == str(bars.reqId), timeout=2
    )
    deadline = time.monotonic() + 2
    while sim.stats.open_historical and time.monotonic() < deadline:
        ib.sleep(0.02)
    assert sim.stats.open_historical == 0


# ---------------------------------------------------------------------------- across clients


def _ibapi_time(text: str) -> dt.datetime:
    """An ibapi bar date as naive UTC: ``yyyymmdd  hh:mm:ss`` in the login zone (UTC here)
    below server version 174, ``yyyymmdd hh:mm:ss <zone>`` from it."""
    if "  " in text:
        return dt.datetime.strptime(text, "%Y%m%d  %H:%M:%S")
    day, clock, zone = text.split(" ")
    local = dt.datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S")
    return utc_naive(local.replace(tzinfo=ZoneInfo(zone)))


def test_same_bars_as_ibapi(sim: Simulator, connect: Connect) -> None:
    """ibapi (at its own highest version: 157 for 9.81.1, up to 200 for 10.x) and ib_async
    (178) get identical OHLCV for the same window."""
    with IbapiProbe(sim.host, sim.port, client_id=7) as probe:
        probe_version = probe.server_version
        expected, _, _ = probe.historical_data(
            stock("AAPL"), end="20250312-14:00:00", duration="7200 S", bar_size="5 mins"
        )
    ib = connect(sim, client_id=8)
    got = ib.reqHistoricalData(
        AAPL, "20250312-14:00:00", "7200 S", "5 mins", "TRADES", False, timeout=5
    )
    assert len(got) == len(expected) == 24
    for a, b in zip(expected, got, strict=True):
        assert (a.open, a.high, a.low, a.close) == (b.open, b.high, b.low, b.close)
        if probe_version < 163:  # TWS sends US stocks in whole lots of 100 below 163
            assert rel.number(a.volume) == round(b.volume / 100)
        elif probe_version < 175:  # in lots with two decimals from 163, shares from 175
            assert rel.number(a.volume) * 100 == pytest.approx(b.volume)
        else:
            assert rel.number(a.volume) == b.volume
        assert rel.number(rel.wap(a)) == b.average
        assert a.barCount == b.barCount
        # ibapi keeps the text (two-space login-zone form below 174, instrument zone from
        # it); ib_async parses the instrument-zone form: the same instant.
        assert _ibapi_time(a.date) == utc_naive(b.date)


def test_duplicate_client_id_is_refused_with_326(
    sim: Simulator, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """A second client with a client id in use is refused (326); the first keeps working."""
    caplog.set_level(logging.INFO)
    first = connect(sim, client_id=5)
    began = time.monotonic()
    # ib_async raises asyncio's TimeoutError: the builtin from Python 3.11 on, a class of its
    # own on 3.10.
    with pytest.raises(asyncio.TimeoutError):
        connect(sim, client_id=5, timeout=2)
    assert time.monotonic() - began < 4
    assert "client id 5 already in use" in caplog.text  # the simulator's log
    assert "Error 326" in caplog.text  # ib_async's log
    assert len(sim.received.find("startApi")) == 2
    assert sim.client_ids == [5]
    assert first.isConnected()
    (d,) = first.reqContractDetails(AAPL)
    assert d.contract is not None
    assert d.contract.conId == 265598


def test_disconnect_is_seen_by_the_simulator(sim: Simulator, connect: Connect) -> None:
    """After ib_async disconnects, the simulator has no client left."""
    ib = connect(sim, client_id=9)
    assert sim.client_ids == [9]
    ib.disconnect()
    deadline = time.monotonic() + 2
    while sim.client_ids and time.monotonic() < deadline:
        ib.sleep(0.02)
    assert sim.client_ids == []


def test_con_id_only_contract_resolves(ib: IB) -> None:
    """A plain Contract with only a conId and exchange resolves to AAPL."""
    (d,) = ib.reqContractDetails(Contract(conId=265598, exchange="SMART"))
    assert d.contract is not None
    assert d.contract.symbol == "AAPL"


# ------------------------------------------------------------- requests it does not serve


def _elapsed(call: Callable[[], Any]) -> tuple[Any, float]:
    began = time.monotonic()
    return call(), time.monotonic() - began


def test_market_data_requests_are_refused_at_once(ib: IB) -> None:
    """Streaming requests the simulator does not serve get, at once, the error a TWS
    session without the subscription sends, with the request's id: no client waits for its
    own timeout."""
    (aapl,) = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    seen = errors_of(ib)
    ib.reqMktData(aapl)
    ib.reqRealTimeBars(aapl, 5, "TRADES", False)
    ib.reqTickByTickData(aapl, "Last")
    deadline = time.monotonic() + 2
    while len(seen) < 3 and time.monotonic() < deadline:
        ib.sleep(0.02)
    codes = sorted(code for _, code, _ in seen)
    assert codes == [354, 420, 10189]
    texts = {code: text for _, code, text in seen}
    assert texts[354].startswith("Requested market data is not subscribed.")
    assert texts[354].endswith("AAPL SMART/TOP/ALL")
    assert texts[420] == (
        "Invalid Real-time Query:No market data permissions for SMART STK. Requested market "
        "data requires additional subscription for API. See link in 'Market Data "
        "Connections' dialog for more details."
    )
    assert all(req_id > 0 for req_id, _, _ in seen)


def test_blocking_requests_fail_fast_instead_of_timing_out(ib: IB) -> None:
    """ib_async's blocking calls for historical ticks, scanners and news end with IB's
    error (or an empty list, as for an account without news) well within a second."""
    with pytest.raises(RequestError) as err:
        _elapsed(lambda: ib.reqHistoricalTicks(AAPL, "", "20250312-14:00:00", 100, "TRADES", False))
    assert err.value.code == 10187
    providers, took = _elapsed(ib.reqNewsProviders)
    assert (providers, took < 1) == ([], True)
    symbols, took = _elapsed(lambda: ib.reqMatchingSymbols("AAP"))
    assert (symbols, took < 1) == ([], True)


@pytest.mark.sends_orders
def test_an_order_is_refused_as_read_only(sim: Simulator, ib: IB) -> None:
    """placeOrder is answered with 321 "read-only" for its order id and never acted on."""
    from ib_async import LimitOrder

    seen = errors_of(ib)
    trade = ib.placeOrder(AAPL, LimitOrder("BUY", 1, 1.0))
    deadline = time.monotonic() + 2
    while not seen and time.monotonic() < deadline:
        ib.sleep(0.02)
    assert seen == [
        (
            trade.order.orderId,
            321,
            "Error validating request.-'bh' : cause - The API interface is currently in "
            "Read-Only mode.",
        )
    ]
    assert sim.stats.order_messages == 1
