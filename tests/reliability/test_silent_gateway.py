"""Silent gateways: a TWS that accepts and never answers, and a port that never accepts.

A hung TWS (a modal dialog, a frozen JVM, a full accept queue) must cost a caller exactly
the timeout it chose: the connect and request timeouts fire on time (within 10 % of the
configured value, wall time), IB's cancels go out for the requests that were sent, and
nothing is left behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ibdata import (
    Client,
    ConnectTimeoutError,
    NotConnectedError,
    RequestTimeoutError,
)
from ibdata.sim import Simulator
from tests.reliability.conftest import Figures
from tests.reliability.probes import Call, fd_count, session_threads, wait_until

UTC = dt.timezone.utc

#: Timeouts under test: long enough that 10 % (0.15 s) is well above scheduling jitter on a
#: busy two-core machine, short enough to keep the suite quick.
CONNECT_TIMEOUT = 1.5
REQUEST_TIMEOUT = 1.5
#: The issue's accuracy: a timeout fires within 10 % of its configured value.
ACCURACY = 0.10
#: How long the simulator may take to notice a closed client and end its threads (its
#: readers wake every 0.5 s).
SETTLE = 3.0


def _timed(fn: Callable[[], object]) -> tuple[BaseException, float]:
    """Run ``fn``, which must raise; returns the exception and the wall time it took."""
    start = time.monotonic()
    try:
        fn()
    except BaseException as exc:  # the caller checks the type
        return exc, time.monotonic() - start
    raise AssertionError("the call returned instead of raising")


def _check_accuracy(figures: Figures, what: str, configured: float, measured: float) -> None:
    error = (measured - configured) / configured
    figures.record(f"{what} ({configured} s): measured (s)", measured)
    figures.record(f"{what} ({configured} s): error (%)", 100 * error)
    assert abs(error) <= ACCURACY, f"{what} fired after {measured:.3f} s, not {configured} s"


def _baseline() -> tuple[int, int]:
    return threading.active_count(), fd_count()


def _assert_back_to(baseline: tuple[int, int]) -> None:
    """Threads and descriptors return to what they were before the client existed."""
    wait_until(lambda: _baseline() == baseline, SETTLE)
    assert _baseline() == baseline, f"(threads, fds) {baseline} before, {_baseline()} after"
    assert not session_threads()


@contextlib.contextmanager
def _silent_listener(backlog: int) -> Iterator[socket.socket]:
    """A listening socket that is never accept()ed."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(backlog)
        yield listener
    finally:
        listener.close()


def test_connect_timeout_against_a_deaf_gateway(sim: Simulator, figures: Figures) -> None:
    """A gateway that accepts and never replies to the handshake fails connect() with
    ConnectTimeoutError after connect_timeout, and leaves nothing behind."""
    sim.go_deaf()
    baseline = _baseline()
    client = Client(sim.host, sim.port, connect_timeout=CONNECT_TIMEOUT, timeout=5)
    try:
        exc, took = _timed(client.connect)
    finally:
        client.close()
    assert isinstance(exc, ConnectTimeoutError), exc
    assert "no handshake reply" in str(exc)
    _check_accuracy(figures, "connect timeout, deaf gateway", CONNECT_TIMEOUT, took)
    assert sim.received.find("startApi") == []  # the session never started
    _assert_back_to(baseline)


@pytest.mark.parametrize("queue", ["room in the accept queue", "accept queue full"])
def test_connect_timeout_against_a_port_that_never_accepts(figures: Figures, queue: str) -> None:
    """A port whose listener never calls accept() fails connect() with ConnectTimeoutError
    after connect_timeout, whether the kernel completes the TCP handshake or not.

    On Linux the kernel completes the handshake for up to backlog + 1 connections nobody
    has accepted; the client then waits for TWS's reply, which never comes. Once that queue
    is full the kernel drops further SYNs, so the TCP connect itself never completes.
    """
    fillers: list[socket.socket] = []
    with _silent_listener(backlog=0) as listener:
        address = listener.getsockname()
        if queue == "accept queue full":
            for _ in range(8):  # fill the queue until a connect no longer completes
                filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                filler.settimeout(0.2)
                fillers.append(filler)
                try:
                    filler.connect(address)
                except TimeoutError:
                    break
            else:
                pytest.fail("the accept queue never filled: the kernel accepts them all")
        baseline = _baseline()
        client = Client(address[0], address[1], connect_timeout=CONNECT_TIMEOUT, timeout=5)
        try:
            exc, took = _timed(client.connect)
        finally:
            client.close()
            for filler in fillers:
                filler.close()
        assert isinstance(exc, ConnectTimeoutError), exc
        if queue == "accept queue full":
            assert "no TCP connection" in str(exc)
        else:
            assert "no handshake reply" in str(exc)
        what = f"connect timeout, port never accepting, {queue}"
        _check_accuracy(figures, what, CONNECT_TIMEOUT, took)
        _assert_back_to((baseline[0], baseline[1] - len(fillers)))


def test_request_timeouts_when_the_gateway_goes_deaf(sim: Simulator, figures: Figures) -> None:
    """With the session up but nothing answered, bar, contract and range requests raise
    RequestTimeoutError on time, IB's cancels are sent for bars and head timestamps, the
    session serves again once the gateway answers, and closing leaves nothing behind."""
    baseline = _baseline()
    client = Client(sim.host, sim.port, timeout=REQUEST_TIMEOUT, connect_timeout=5)
    try:
        client.connect()
        client.get_contract_details("AAPL")  # the bar calls' contract lookup, cached
        window = {"duration": "3600 S", "bar_size": "1 min"}
        expected = client.get_historical_bars("AAPL", **window)
        sim.go_deaf()

        exc, took = _timed(lambda: client.get_historical_bars("AAPL", **window))
        assert isinstance(exc, RequestTimeoutError), exc
        _check_accuracy(figures, "request timeout, historical bars", REQUEST_TIMEOUT, took)
        sim.received.wait_for(
            "cancelHistoricalData", where=lambda m: m.fields[2] == str(exc.req_id), timeout=2
        )

        exc, took = _timed(lambda: client.get_contract_details("MSFT"))
        assert isinstance(exc, RequestTimeoutError), exc
        _check_accuracy(figures, "request timeout, contract details", REQUEST_TIMEOUT, took)
        # IB has no cancel for contract details: nothing else is sent

        start = dt.datetime(2025, 3, 3, tzinfo=UTC)
        exc, took = _timed(
            lambda: client.get_historical_bars(
                "AAPL", start=start, end=start + dt.timedelta(days=2), bar_size="1 hour"
            )
        )
        assert isinstance(exc, RequestTimeoutError), exc  # the range's head timestamp
        _check_accuracy(figures, "request timeout, range download", REQUEST_TIMEOUT, took)
        sim.received.wait_for(
            "cancelHeadTimestamp", where=lambda m: m.fields[1] == str(exc.req_id), timeout=2
        )

        sim.go_deaf(False)
        assert client.get_historical_bars("AAPL", **window) == expected
        assert client.health().reconnect_count == 0  # timeouts never cost the session
    finally:
        client.close()
    _assert_back_to(baseline)


def test_requests_while_no_session_comes_up(sim: Simulator, figures: Figures) -> None:
    """While a deaf gateway keeps every connect attempt from completing, a request waits
    for its timeout and raises NotConnectedError on time; when the gateway answers again the
    client connects in the background, and closing leaves nothing behind."""
    sim.go_deaf()
    baseline = _baseline()
    client = Client(
        sim.host,
        sim.port,
        connect_timeout=0.5,
        timeout=REQUEST_TIMEOUT,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.2,
    )
    try:
        with pytest.raises(ConnectTimeoutError):
            client.connect(retry_in_background=True)
        exc, took = _timed(lambda: client.get_contract_details("AAPL"))
        assert isinstance(exc, NotConnectedError), exc
        _check_accuracy(figures, "request timeout, no session", REQUEST_TIMEOUT, took)
        attempts = len(sim.received.find("startApi"))
        sim.go_deaf(False)
        (aapl,) = client.get_contract_details("AAPL", timeout=10)
        assert aapl.contract.con_id == 265598
        assert attempts == 0  # no attempt got as far as starting the API while deaf
    finally:
        client.close()
    _assert_back_to(baseline)


def test_identical_calls_with_different_timeouts_each_keep_their_own(
    sim: Simulator, figures: Figures
) -> None:
    """Identical bar calls made together with different timeouts each raise
    RequestTimeoutError at their own timeout: a short call does not wait on a long one, nor
    a long one give up with a short one."""
    short, long = REQUEST_TIMEOUT, 2 * REQUEST_TIMEOUT
    client = Client(sim.host, sim.port, timeout=30, connect_timeout=5)
    try:
        client.connect()
        client.get_contract_details("AAPL")
        sim.go_deaf()
        calls = {
            limit: Call(lambda limit=limit: client.get_historical_bars("AAPL", timeout=limit))
            for limit in (long, short)  # the long call is in flight first
        }
        for limit, call in calls.items():
            assert call.join(long + 2)
            assert isinstance(call.error, RequestTimeoutError), call.error
            assert call.error.timeout == limit
            _check_accuracy(figures, "request timeout, identical calls", limit, call.elapsed)
    finally:
        client.close()
