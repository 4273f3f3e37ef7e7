"""Test your own code against the simulator, in your own pytest suite.

A fixture starts :class:`ibdata.sim.Simulator` on a free port with a fixed clock, so every
run sees the same bars; the tests call a toy strategy with a client connected to it, and
inject faults (an IB error, a dropped connection) the strategy must survive. No TWS and no
IB account are needed. Copy the fixtures into your ``conftest.py``.

Run it with pytest::

    pytest examples/test_with_simulator.py

The simulator speaks the real TWS protocol, so the same strategy runs unchanged against
TWS or IB Gateway: pass it a client from ``ibdata.Client.from_env()`` instead.
"""

import datetime as dt
from collections.abc import Iterator

import pytest

import ibdata
from ibdata.sim import FixedClock, Simulator

NOW = dt.datetime(2025, 3, 12, 15, 0, tzinfo=dt.timezone.utc)  # a Wednesday, markets open


def moving_average_signal(ib: ibdata.Client, symbol: str) -> str:
    """The strategy under test: "buy" when the 5-day average close is above the 20-day one,
    "sell" when below, "hold" when IB has no bars or too few. A request cut off by a
    dropped session is retried once: the client reconnects by itself."""
    for attempt in range(2):
        try:
            bars = ib.get_historical_bars(symbol, duration="2 M", bar_size="1 day")
            break
        except ibdata.SessionError:  # ConnectionLostError, NotConnectedError
            if attempt:
                raise
        except ibdata.NoDataError:
            return "hold"
    closes = [bar.close for bar in bars]
    if len(closes) < 20:
        return "hold"
    fast, slow = sum(closes[-5:]) / 5, sum(closes[-20:]) / 20
    return "buy" if fast > slow else "sell"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A simulator on a free port whose clock stands still at NOW."""
    with Simulator(port=0, clock=FixedClock(NOW)) as simulator:
        yield simulator


@pytest.fixture
def ib(sim: Simulator) -> Iterator[ibdata.Client]:
    """A client connected to the simulator, closed after the test."""
    with ibdata.Client(sim.host, sim.port, timeout=10) as client:
        yield client


def test_signal_from_two_months_of_daily_bars(ib: ibdata.Client, sim: Simulator) -> None:
    """The strategy reads one request's daily bars, decides, and never sends an order."""
    assert moving_average_signal(ib, "AAPL") in ("buy", "sell")
    (request,) = sim.received.find("reqHistoricalData")
    assert "2 M" in request.fields
    assert sim.received.find("placeOrder") == []


def test_no_data_means_hold(ib: ibdata.Client, sim: Simulator) -> None:
    """When IB answers "no data" (error 162) the strategy holds instead of crashing."""
    sim.fail_next(162, "HMDS query returned no data", request="reqHistoricalData")
    assert moving_average_signal(ib, "AAPL") == "hold"


def test_survives_a_dropped_connection(ib: ibdata.Client, sim: Simulator) -> None:
    """After TWS drops every connection (its nightly restart) the strategy still decides,
    the same way, on a new session."""
    before = moving_average_signal(ib, "MSFT")
    sim.drop_all()
    assert moving_average_signal(ib, "MSFT") == before
    assert ib.health().reconnect_count == 1
