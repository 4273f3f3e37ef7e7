"""Request windows and weekly/monthly bars over real sockets, checked against real TWS.

Each real capture (``real-tws-captures.json``, read from ``../shared``) or recorded
expectation (@stoqey/ib's live tests) is replayed as a request to the simulator, with its
clock set to when the capture was made, through IB's own client and ``ib_async``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ib_async import IB, Forex, RequestError, Stock

from ibdata._probe import IbapiProbe, ProbeError, future, stock
from ibdata.sim import FixedClock, Simulator
from tests import ibapi_release as rel

UTC = dt.timezone.utc
#: Real frames of other projects (read here, never copied into this project).
CAPTURES_FILE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "real-tws-captures.json"
)
#: @stoqey/ib's weekly and monthly SPY requests end here (a Monday, Labor Day 2023).
STOQEY_END = "20230904-20:00:00"


def capture(capture_id: str) -> dict[str, Any]:
    """One entry of ``real-tws-captures.json``."""
    entries = json.loads(CAPTURES_FILE.read_text(encoding="utf-8"))
    (entry,) = [e for e in entries if e["id"] == capture_id]
    return dict(entry)


def session_step(entry: dict[str, Any], msg_id: str) -> tuple[list[str], list[list[str]]]:
    """The first request with ``msg_id`` in a recorded session and the frames answering it."""
    for request, answers in entry["session"]:
        if request and request[0] == msg_id:
            return list(request), [list(a) for a in answers]
    raise AssertionError(f"no request {msg_id} in {entry['id']}")


def connected_at(entry: dict[str, Any]) -> dt.datetime:
    """The connection time a recorded session's handshake reply states (a GMT login)."""
    for request, answers in entry["session"]:
        if request == ["startapi"]:
            text = answers[0][1]
            assert text.endswith(" Greenwich Mean Time")
            return dt.datetime.strptime(text[:17], "%Y%m%d %H:%M:%S").replace(tzinfo=UTC)
    raise AssertionError("no handshake")


def instant(text: str, login_tz: str = "UTC") -> dt.datetime:
    """A window time in any form TWS writes: dashed UTC, ``<date> <time> <zone>`` or the
    two-space login-zone form."""
    if "-" in text:
        return dt.datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    day, _, rest = text.partition(" ")
    clock, _, zone = rest.strip().partition(" ")
    local = dt.datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S")
    return local.replace(tzinfo=ZoneInfo(zone or login_tz)).astimezone(UTC)


def bar_dates(frame: list[str], first: int) -> list[str]:
    """The date field of every bar of a historicalData frame whose bars start at ``first``."""
    count = int(frame[first - 1])
    return [frame[first + 8 * i] for i in range(count)]


@pytest.fixture
def at(sim_factory: Callable[..., Simulator]) -> Callable[..., Simulator]:
    """Simulators whose clock stands at a given instant."""

    def make(when: dt.datetime, **options: Any) -> Simulator:
        return sim_factory(clock=FixedClock(when), **options)

    return make


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for ib_async's synchronous API, closed afterwards."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    try:
        loop.run_until_complete(asyncio.sleep(0))
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def ib_async_to(loop: asyncio.AbstractEventLoop) -> Iterator[Callable[[Simulator], IB]]:
    """Connect ib_async clients (request errors raised); disconnected after the test."""
    clients: list[IB] = []

    def make(sim: Simulator) -> IB:
        ib = IB()
        ib.RaiseRequestErrors = True
        clients.append(ib)
        ib.connect(sim.host, sim.port, clientId=21, timeout=5)
        return ib

    yield make
    for ib in clients:
        ib.disconnect()


# ---------------------------------------------------------------------------- weeks, months


def test_stoqey_weekly_bars_over_ibapi(at: Callable[..., Simulator]) -> None:
    """SPY 1 week bars over 1 M ending 2023-09-04 20:00 UTC: 5 bars, the last dated 20230901
    (the week of Labor Day has no session before the end), as real TWS gave @stoqey/ib; the
    week is the exact aggregate of its days (volumes in shares here: in lots, as TWS sends
    US stocks below server version 175, each bar's volume is rounded on its own)."""
    sim = at(dt.datetime(2023, 9, 20, 15, tzinfo=UTC), volume_units="shares")
    with IbapiProbe(sim.host, sim.port, client_id=3) as ib:
        weekly, _, _ = ib.historical_data(
            stock("SPY"), end=STOQEY_END, duration="1 M", bar_size="1 week", format_date=2
        )
        daily, _, _ = ib.historical_data(
            stock("SPY"), end=STOQEY_END, duration="1 M", bar_size="1 day", format_date=2
        )
    assert [b.date for b in weekly] == ["20230804", "20230811", "20230818", "20230825", "20230901"]
    week = [b for b in daily if b.date >= "20230828"]
    assert [b.date for b in week] == ["20230828", "20230829", "20230830", "20230831", "20230901"]
    last = weekly[-1]
    assert last.open == week[0].open
    assert last.high == max(b.high for b in week)
    assert last.low == min(b.low for b in week)
    assert last.close == week[-1].close
    assert rel.number(last.volume) == sum(rel.number(b.volume) for b in week)
    assert last.barCount == sum(b.barCount for b in week)


def test_stoqey_monthly_bars_over_ib_async(
    at: Callable[..., Simulator], ib_async_to: Callable[[Simulator], IB]
) -> None:
    """SPY 1 month bars over 1 Y ending 2023-09-04 20:00 UTC: 13 bars (September 2022, which
    holds the start, to the one September 2023 day before the end), the last dated
    2023-09-01, as real TWS gave @stoqey/ib."""
    ib = ib_async_to(at(dt.datetime(2023, 10, 2, 15, tzinfo=UTC)))
    spy = Stock("SPY", "SMART", "USD")
    monthly = ib.reqHistoricalData(spy, STOQEY_END, "1 Y", "1 month", "TRADES", False, 2)
    assert len(monthly) == 13
    assert monthly[0].date == dt.date(2022, 9, 30)
    assert monthly[-1].date == dt.date(2023, 9, 1)
    assert monthly[-2].date == dt.date(2023, 8, 31)
    (september,) = ib.reqHistoricalData(
        spy, "20230905-00:00:00", "3 D", "1 day", "TRADES", False, 2
    )[-1:]
    assert september.date == dt.date(2023, 9, 1)
    assert (monthly[-1].open, monthly[-1].close) == (september.open, september.close)
    assert monthly[-1].volume == september.volume


def test_sessions_semantics_keeps_the_whole_week(at: Callable[..., Simulator]) -> None:
    """Under window_semantics="sessions" a week belongs to the window when its first session
    starts in it and is whole: the Labor Day week is served complete, dated 20230908."""
    sim = at(dt.datetime(2023, 9, 20, 15, tzinfo=UTC), window_semantics="sessions")
    with IbapiProbe(sim.host, sim.port, client_id=3) as ib:
        weekly, _, _ = ib.historical_data(
            stock("SPY"), end="20230906-20:00:00", duration="1 M", bar_size="1 week"
        )
    assert [b.date for b in weekly] == ["20230811", "20230818", "20230825", "20230901", "20230908"]


# ---------------------------------------------------------------------------- captures


def test_daily_window_of_capture_pyf_session_bars(at: Callable[..., Simulator]) -> None:
    """Capture pyf-session-bars-176: a CONTFUT named by conId with an end date is served;
    5 D reports start = end - 5 x 24 h and holds the 5 sessions dated like the capture's."""
    entry = capture("pyf-session-bars-176")
    request, (answer,) = session_step(entry, "20")
    end, bar_size, duration = request[15], request[16], request[17]
    sim = at(connected_at(entry))
    with IbapiProbe(sim.host, sim.port, client_id=4) as ib:
        (front,) = ib.contract_details(future("ZN", "CBOT", "USD", sec_type="CONTFUT"))
        cont = future("ZN", "CBOT", "USD", sec_type="CONTFUT")
        cont.conId = front.contract.conId
        bars, start, stop = ib.historical_data(
            cont,
            end=end,
            duration=duration,
            bar_size=bar_size,
            use_rth=request[18] == "1",
            format_date=int(request[20]),
        )
        by_symbol = future("ZN", "CBOT", "USD", sec_type="CONTFUT")
        with pytest.raises(ProbeError) as err:
            ib.historical_data(by_symbol, end=end, duration=duration, bar_size=bar_size)
    assert err.value.code == 10339
    assert instant(start) == instant(answer[2]) == instant(end) - dt.timedelta(days=5)
    assert instant(stop) == instant(answer[3])
    assert [b.date for b in bars] == bar_dates(answer, 5)


def test_daily_window_of_capture_rust_tsla_daily(at: Callable[..., Simulator]) -> None:
    """Capture rust-tsla-daily-165: 2 D of daily bars asked on a Saturday reports the window
    as two-space login-zone times two days apart and holds Thursday's and Friday's bars."""
    (answer,) = capture("rust-tsla-daily-165")["frames"]
    end = instant(answer[3])
    sim = at(end, server_version=165)
    with IbapiProbe(sim.host, sim.port, client_id=4) as ib:
        bars, start, stop = ib.historical_data(stock("AAPL"), duration="2 D", bar_size="1 day")
    assert (start, stop) == (answer[2], answer[3])
    assert [b.date for b in bars] == bar_dates(answer, 5)


def test_after_the_close_seconds_are_the_sessions_last_bars(
    at: Callable[..., Simulator],
) -> None:
    """Capture pyf-robusta-1min-bid-176: 180 S of 1-min BID bars with useRTH after the close
    reports the last 180 s of clock time and serves the session's last 3 bars (here the Long
    Gilt's, closing 18:00 London), not "no data"."""
    (answer,) = capture("pyf-robusta-1min-bid-176")["frames"]
    now = instant(answer[3])
    sim = at(now)
    gilt = future("R", "ICEEU", "GBP", month="202312")
    with IbapiProbe(sim.host, sim.port, client_id=4) as ib:
        bars, start, stop = ib.historical_data(
            gilt,
            duration="180 S",
            bar_size="1 min",
            what_to_show="BID",
            use_rth=True,
            format_date=2,
        )
    assert (instant(start), instant(stop)) == (instant(answer[2]), now)
    assert len(bars) == len(bar_dates(answer, 5)) == 3
    close = dt.datetime(2023, 11, 15, 18, 0, tzinfo=UTC)
    assert [int(b.date) for b in bars] == [
        int((close - dt.timedelta(minutes=m)).timestamp()) for m in (3, 2, 1)
    ]
    assert all(int(b.date) < int(instant(start).timestamp()) for b in bars)


def test_sixty_seconds_include_the_bar_holding_the_start(at: Callable[..., Simulator]) -> None:
    """Capture pyf-session-keepup-176: 60 S of 1-min BID bars at 14:48:22 gave the 14:47 bar
    (holding the start) and the 14:48 bar in progress; EUR.USD gives the same two."""
    entry = capture("pyf-session-keepup-176")
    _, answers = session_step(entry, "20")
    answer = answers[0]
    sim = at(connected_at(entry))
    fx = stock("EUR", "IDEALPRO", "USD")
    fx.secType = "CASH"
    with IbapiProbe(sim.host, sim.port, client_id=4) as ib:
        bars, start, stop = ib.historical_data(
            fx, duration="60 S", bar_size="1 min", what_to_show="BID", format_date=2
        )
    assert [b.date for b in bars] == bar_dates(answer, 5)
    assert (instant(start), instant(stop)) == (instant(answer[2]), instant(answer[3]))


def test_sessions_semantics_answers_no_data_after_the_close(
    at: Callable[..., Simulator],
) -> None:
    """Under window_semantics="sessions" the same after-close request gets 162 "no data",
    and N D reports the N-th session's start."""
    now = dt.datetime(2023, 11, 15, 22, 17, 33, tzinfo=UTC)
    sim = at(now, window_semantics="sessions")
    gilt = future("R", "ICEEU", "GBP", month="202312")
    with IbapiProbe(sim.host, sim.port, client_id=4) as ib:
        with pytest.raises(ProbeError) as err:
            ib.historical_data(gilt, duration="180 S", bar_size="1 min", use_rth=True)
        _, start, _ = ib.historical_data(gilt, duration="2 D", bar_size="1 hour", use_rth=True)
    assert err.value.code == 162
    assert instant(start) == dt.datetime(2023, 11, 14, 8, 0, tzinfo=UTC)


def test_invalid_sec_type_is_321(at: Callable[..., Simulator]) -> None:
    """Capture pyf-session-321-176: an unknown secType gets 321 "Please enter a valid
    security type", with the capture's text."""
    entry = capture("pyf-session-321-176")
    request, (answer,) = session_step(entry, "9")
    sim = at(connected_at(entry))
    contract = future(request[4], request[10], "", sec_type=request[5])
    contract.tradingClass = request[14]
    with IbapiProbe(sim.host, sim.port, client_id=4) as ib, pytest.raises(ProbeError) as err:
        ib.contract_details(contract)
    assert (err.value.code, err.value.text) == (int(answer[3]), answer[4])


def test_both_semantics_over_ib_async(
    at: Callable[..., Simulator], ib_async_to: Callable[[Simulator], IB]
) -> None:
    """ib_async reads the real window (Friday's last hour for 3600 S on a Saturday) and the
    sessions one (no data, RequestError 162) from simulators set each way."""
    saturday = dt.datetime(2025, 3, 8, 15, 0, tzinfo=UTC)
    eur = Forex("EURUSD")
    real = ib_async_to(at(saturday))
    bars = real.reqHistoricalData(eur, "", "3600 S", "5 mins", "MIDPOINT", False, 2)
    assert len(bars) == 12
    friday_close = dt.datetime(2025, 3, 7, 22, 0, tzinfo=UTC)  # 17:00 in New York
    assert bars[-1].date == friday_close - dt.timedelta(minutes=5)
    old = ib_async_to(at(saturday, window_semantics="sessions"))
    with pytest.raises(RequestError) as err:
        old.reqHistoricalData(eur, "", "3600 S", "5 mins", "MIDPOINT", False, 2)
    assert err.value.code == 162


def test_unknown_window_semantics_is_refused(sim_factory: Callable[..., Simulator]) -> None:
    """The simulator refuses a window semantics it does not model."""
    with pytest.raises(ValueError, match="window_semantics"):
        sim_factory(window_semantics="calendar")
