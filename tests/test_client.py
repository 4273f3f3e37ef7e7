"""ibdata.Client against the simulator over real sockets."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ibdata._client
from ibdata import (
    AmbiguousContractError,
    BarSize,
    Client,
    ConnectError,
    ConnectionLostError,
    ContractNotFoundError,
    ContractSpec,
    NoDataError,
    NotConnectedError,
    PermissionDeniedError,
    RequestError,
    RequestTimeoutError,
    SecType,
    WhatToShow,
)
from ibdata._ibapi import normalize_error
from ibdata.sim import Simulator
from tests import ibapi_release as rel
from tests.conftest import CLOCK_AT

UTC = dt.timezone.utc


@pytest.fixture
def client_factory(sim: Simulator) -> Iterator[Callable[..., Client]]:
    """Clients connected to the simulator; all are closed after the test."""
    made: list[Client] = []

    def make(**options: Any) -> Client:
        options.setdefault("timeout", 10)
        options.setdefault("connect_timeout", 5)
        options.setdefault("reconnect_min_delay", 0.05)
        options.setdefault("reconnect_max_delay", 0.5)
        c = Client(sim.host, sim.port, **options)
        c.connect()
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def client(client_factory: Callable[..., Client]) -> Client:
    """A connected client with a random client id."""
    return client_factory()


def _historical_requests(sim: Simulator) -> int:
    return len(sim.received.find("reqHistoricalData"))


# ---------------------------------------------------------------------- happy paths


def test_daily_bars_are_session_dates(client: Client) -> None:
    """Daily bars carry the session date, oldest first, with the request's metadata."""
    bars = client.get_historical_bars("AAPL", duration="1 W", bar_size="1 day")
    assert 4 <= len(bars) <= 6
    assert all(isinstance(b.time, dt.date) and not isinstance(b.time, dt.datetime) for b in bars)
    assert [b.time for b in bars] == sorted(b.time for b in bars)
    assert bars[-1].time == CLOCK_AT.date()
    assert bars.contract is not None
    assert bars.contract.con_id == 265598
    assert bars.bar_size is BarSize.ONE_DAY
    assert bars.what_to_show is WhatToShow.TRADES
    assert bars.time_zone == "US/Eastern"
    for b in bars:
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.volume is not None
        assert b.volume > 0


def test_intraday_bars_are_utc_datetimes(client: Client) -> None:
    """Intraday bars carry timezone-aware UTC datetimes of the bar start."""
    bars = client.get_historical_bars("MSFT", duration="3600 S", bar_size=BarSize.FIVE_MINUTES)
    assert len(bars) == 12
    times = [b.time for b in bars]
    assert all(isinstance(t, dt.datetime) and t.utcoffset() == dt.timedelta(0) for t in times)
    assert times[0] == CLOCK_AT - dt.timedelta(hours=1)
    assert all((b - a) == dt.timedelta(minutes=5) for a, b in itertools.pairwise(times))


def test_quote_bars_have_no_volume(client: Client) -> None:
    """IB's -1 volume, WAP and count of quote bars become None."""
    bars = client.get_historical_bars("SPY", what_to_show="MIDPOINT")
    assert bars
    assert all(b.volume is None and b.wap is None and b.count is None for b in bars)


def test_end_in_the_past_and_determinism(client: Client) -> None:
    """Bars for an end in the past equal the same bars inside a wider window."""
    end = dt.datetime(2025, 3, 11, 18, 0, tzinfo=UTC)
    narrow = client.get_historical_bars("AAPL", duration="3600 S", bar_size="1 min", end=end)
    wide = client.get_historical_bars(
        "AAPL", duration="7200 S", bar_size="1 min", end=end + dt.timedelta(minutes=30)
    )
    by_time = {b.time: b for b in wide}
    assert len(narrow) == 60
    assert all(by_time[b.time] == b for b in narrow)
    assert narrow[-1].time == end - dt.timedelta(minutes=1)


def test_contract_details_of_a_stock(client: Client) -> None:
    """AAPL resolves to IB's real identifiers with parsed trading sessions."""
    (d,) = client.get_contract_details("AAPL")
    assert d.contract.con_id == 265598
    assert d.contract.primary_exchange == "NASDAQ"
    assert d.long_name == "APPLE INC"
    assert d.time_zone_id == "US/Eastern"
    assert d.min_tick == 0.01
    assert d.liquid_hours
    assert all(s.start.tzinfo is not None and s.start < s.end for s in d.liquid_hours)
    open_now = [s for s in d.liquid_hours if s.start <= CLOCK_AT < s.end]
    assert len(open_now) == 1


def test_product_code_is_the_continuous_future(client: Client) -> None:
    """A plain product code resolves to the CONTFUT front month of IB's real symbol."""
    (d,) = client.get_contract_details("EURBBL")
    assert d.contract.symbol == "GBL"
    assert d.contract.sec_type == "CONTFUT"
    assert d.contract.trading_class == "FGBL"
    assert d.contract.exchange == "EUREX"
    bars = client.get_historical_bars("eurbbl", duration="1 W", bar_size="1 day")
    assert bars


def test_product_code_with_month_is_that_contract(client: Client) -> None:
    """EURBBLM25 is the June 2025 Bund, and UST10YM25 the June 2025 10-year note."""
    (bund,) = client.get_contract_details("EURBBLM25")
    assert bund.contract.sec_type == "FUT"
    assert bund.contract_month == "202506"
    assert bund.contract.local_symbol == "FGBL JUN 25"
    bars = client.get_historical_bars("UST10YM25", duration="2 D", bar_size="1 hour")
    assert bars.contract is not None
    assert bars.contract.symbol == "ZN"


def test_futures_chain_and_ambiguity(client: Client) -> None:
    """A FUT spec without expiry lists the chain; asking bars for it is ambiguous."""
    spec = ContractSpec("ZN", sec_type=SecType.FUT, exchange="CBOT")
    chain = client.get_contract_details(spec)
    assert len(chain) >= 4
    with pytest.raises(AmbiguousContractError) as err:
        client.get_historical_bars(spec)
    assert len(err.value.candidates) == len(chain)


# ---------------------------------------------------------------------- errors


def test_unknown_symbol_raises_contract_not_found(client: Client) -> None:
    """An unknown symbol raises ContractNotFoundError (a LookupError) with code 200."""
    with pytest.raises(ContractNotFoundError) as err:
        client.get_contract_details("NOSUCH")
    assert err.value.code == 200
    assert isinstance(err.value, LookupError)
    assert "200" in str(err.value)


def test_no_data_raises(client: Client) -> None:
    """A window without bars (before AAPL's first trade: real TWS counts a duration in
    trading time, so a weekend window still gets Friday's bars) raises NoDataError, never an
    empty result."""
    with pytest.raises(NoDataError) as err:
        client.get_historical_bars(
            "AAPL", duration="3600 S", end=dt.datetime(1980, 12, 1, 12, tzinfo=UTC)
        )
    assert err.value.code == 162


def test_permission_denied(sim_factory: Callable[..., Simulator]) -> None:
    """A symbol without market-data permission raises PermissionDeniedError."""
    sim = sim_factory(no_permission=["MSFT"])
    with Client(sim.host, sim.port, timeout=5) as c, pytest.raises(PermissionDeniedError):
        c.get_historical_bars("MSFT")


@pytest.mark.parametrize(
    ("code", "text", "exc"),
    [
        (354, "Requested market data is not subscribed.", PermissionDeniedError),
        (10197, "No market data during competing live session", RequestError),
    ],
)
def test_injected_errors_map_to_classes(
    sim: Simulator, client: Client, code: int, text: str, exc: type[Exception]
) -> None:
    """Each IB error code raises its class from the one code table (pacing refusals are
    retried first: see tests/test_history_engine.py)."""
    client.get_contract_details("AAPL")  # resolved; the next request is the bars
    sim.fail_next(code, text, request="reqHistoricalData")
    with pytest.raises(exc) as err:
        client.get_historical_bars("AAPL")
    assert isinstance(err.value, RequestError)
    assert err.value.code == code


def test_tws_validation_error_is_raised(client: Client) -> None:
    """TWS's own validation errors (10339 for CONTFUT with an end date) are raised."""
    with pytest.raises(RequestError) as err:
        client.get_historical_bars(
            "EURBBL", duration="1 W", bar_size="1 day", end=dt.datetime(2025, 3, 1, tzinfo=UTC)
        )
    assert err.value.code == 10339


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "exc", "fragment"),
    [
        ({"bar_size": "1 sec"}, ValueError, "bar_size must be one of"),
        ({"what_to_show": "TRADE"}, ValueError, "what_to_show must be one of"),
        ({"duration": "400 D"}, ValueError, "365"),
        ({"duration": "1D"}, ValueError, "duration"),
        ({"end": dt.datetime(2025, 3, 1)}, ValueError, "end .* has no time zone"),
        ({"end": "2025-03-01T15:00"}, ValueError, "end .* has no time zone"),
        ({"end": 20250301}, TypeError, "end must be an aware datetime, a date or an ISO"),
        ({"use_rth": 1}, TypeError, "use_rth"),
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": 1e10}, ValueError, "timeout"),  # longer than a lock can wait
        ({"timeout": dt.timedelta.max}, ValueError, "timeout"),
    ],
)
def test_bad_arguments_are_refused_before_sending(
    sim: Simulator, client: Client, kwargs: dict[str, Any], exc: type[Exception], fragment: str
) -> None:
    """Bad arguments raise naming the parameter, and nothing reaches the simulator."""
    before = _historical_requests(sim)
    with pytest.raises(exc, match=fragment):
        client.get_historical_bars("AAPL", **kwargs)
    assert _historical_requests(sim) == before


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    symbol=st.text(max_size=80),
    bar_size=st.one_of(st.text(max_size=12), st.sampled_from([s.value for s in BarSize])),
    duration=st.one_of(st.text(max_size=12), st.sampled_from(["1 D", "3600 S", "2 W"])),
)
def test_fuzzed_arguments_never_reach_the_wire_unchecked(
    sim: Simulator, client: Client, symbol: str, bar_size: str, duration: str
) -> None:
    """Arbitrary text is refused before sending, or goes out as printable ASCII only."""
    before = sim.received.total
    try:
        client.get_historical_bars(symbol, bar_size=bar_size, duration=duration, timeout=5)
    except RequestError:
        pass  # IB's own answer (unknown symbol, pacing, no data): the request was valid
    except (ValueError, TypeError, LookupError):  # LookupError: an unknown product code
        assert sim.received.total == before, "refused arguments must not reach the wire"
        return
    new = sim.received.total - before
    assert new >= 1
    for msg in sim.received.snapshot()[-new:]:
        assert all(" " <= ch <= "~" for field in msg.fields for ch in field), msg


# ---------------------------------------------------------------------- timeouts and drops


def test_timeout_raises_and_cancels_at_ib(sim: Simulator, client: Client) -> None:
    """A request past its timeout raises RequestTimeoutError and IB's cancel is sent."""
    client.get_contract_details("AAPL")
    sim.set_latency(3)
    t0 = time.monotonic()
    with pytest.raises(RequestTimeoutError) as err:
        client.get_historical_bars("AAPL", timeout=0.5)
    assert time.monotonic() - t0 < 2.5
    assert isinstance(err.value, TimeoutError)
    req_id = err.value.req_id
    cancel = sim.received.wait_for(
        "cancelHistoricalData", where=lambda m: m.fields[2] == str(req_id), timeout=2
    )
    assert cancel.client_id == client.client_id


def test_drop_fails_pending_request_at_once(sim: Simulator, client: Client) -> None:
    """A dropped socket fails the request in flight with ConnectionLostError, not at its
    timeout."""
    client.get_contract_details("AAPL")
    sim.set_latency(5)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.get_historical_bars("AAPL", timeout=20)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    sim.received.wait_for("reqHistoricalData", timeout=5)
    t0 = time.monotonic()
    sim.drop_all()
    t.join(5)
    assert not t.is_alive()
    assert time.monotonic() - t0 < 1.0
    assert len(errors) == 1
    assert isinstance(errors[0], ConnectionLostError)


def test_health_says_connecting_as_soon_as_a_call_sees_the_drop(
    sim: Simulator, client: Client
) -> None:
    """The moment a call raises ConnectionLostError, health() already reports the reconnect."""
    client.get_contract_details("AAPL")  # resolved now, so the bars request goes out at once
    sim.set_latency(5)
    statuses: list[str] = []

    def call() -> None:
        try:
            client.get_historical_bars("AAPL", timeout=20)
        except ConnectionLostError:
            statuses.append(client.health().status)

    t = threading.Thread(target=call)
    t.start()
    sim.received.wait_for("reqHistoricalData", timeout=5)
    sim.set_latency(0)
    sim.drop_all()
    t.join(5)
    assert not t.is_alive()
    assert statuses == ["connecting"]


@pytest.mark.parametrize("span", ["52 W", "86400 S"])
def test_daily_chunk_spans_leave_room_for_the_extra_week(span: str) -> None:
    """A daily chunk span that would exceed 52 W once widened (or is not in weeks) is refused."""
    with pytest.raises(ValueError, match=r"chunk_spans\['1 day'\] must be whole weeks"):
        Client(chunk_spans={"1 day": span})
    assert Client(chunk_spans={"1 day": "51 W"}).chunk_spans[BarSize.ONE_DAY] == "51 W"


@pytest.mark.parametrize("spans", [True, "1 day", [("1 day", "1 W")], 3])
def test_chunk_spans_must_be_a_mapping(spans: object) -> None:
    """chunk_spans of another type raises TypeError naming it (not AttributeError)."""
    with pytest.raises(TypeError, match="chunk_spans must be a mapping"):
        Client(chunk_spans=spans)  # type: ignore[arg-type]


def test_request_right_after_a_drop_waits_for_the_reconnect(sim: Simulator, client: Client) -> None:
    """A call made just after TWS dropped the session is sent on the next one, not refused.

    Only a request already written to the old session may fail (ConnectionLostError, it was
    in flight); one that could not be written is never lost to a NotConnectedError.
    """
    outcomes: dict[str, int] = {}
    for _ in range(40):
        sim.drop_all()
        try:
            client.get_contract_details("AAPL", timeout=10)
            outcome = "answered"
        except ConnectionLostError:
            outcome = "in flight"
        except NotConnectedError as exc:
            outcome = f"not connected: {exc}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert set(outcomes) <= {"answered", "in flight"}, outcomes
    assert outcomes.get("answered", 0) >= 20, outcomes


def test_auto_reconnect_after_restart(sim: Simulator, client: Client) -> None:
    """After the gateway restarts, the client reconnects by itself and serves requests."""
    first_id = client.client_id
    sim.restart(downtime=0.3)
    bars = client.get_historical_bars("AAPL", timeout=10)  # waits for the new session
    assert bars
    h = client.health()
    assert h.reconnect_count == 1
    assert h.ready
    assert first_id is not None


def test_request_while_down_raises_not_connected(
    sim: Simulator, client_factory: Callable[..., Client]
) -> None:
    """Without a session within the timeout a request raises NotConnectedError."""
    c = client_factory(auto_reconnect=False)
    sim.drop_all()
    deadline = time.monotonic() + 2
    while c.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(NotConnectedError):
        c.get_historical_bars("AAPL", timeout=0.3)


def test_duplicate_fixed_client_id_is_refused(client_factory: Callable[..., Client]) -> None:
    """A fixed client id in use raises ConnectError saying so."""
    client_factory(client_id=4242)
    with pytest.raises(ConnectError, match="4242 is already in use") as err:
        client_factory(client_id=4242)
    assert err.value.code == 326


def test_random_client_id_retries_after_326(
    client_factory: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A random client id that is in use is replaced by another (bounded retries)."""
    client_factory(client_id=5555)
    ids = iter([5555, 5555, 6666])
    monkeypatch.setattr(ibdata._client.random, "randint", lambda a, b: next(ids))
    c = client_factory()
    assert c.client_id == 6666


def test_reconnect_uses_a_new_random_id(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """reconnect() re-establishes the session with a newly drawn client id."""
    before = client.client_id
    monkeypatch.setattr(ibdata._client.random, "randint", lambda a, b: 123456)
    client.reconnect()
    assert client.connected
    assert (before, client.client_id) != (123456, 123456)
    assert client.client_id == 123456
    assert client.health().reconnect_count == 1


# ---------------------------------------------------------------------- health


def test_health_reports_the_session(client: Client) -> None:
    """health() reports status, identity, accounts and farm states."""
    h = client.health()
    assert h.status == "healthy"
    assert h.connected
    assert h.ready
    assert h.server_version == rel.OFFERED  # the simulator serves up to 200
    assert h.ibapi_version == ".".join(map(str, rel.VERSION))
    assert h.accounts == ("DU1234567",)
    assert h.farms["usfarm"].value == "ok"
    assert h.connected_since is not None
    assert h.to_dict()["status"] == "healthy"


def test_health_follows_an_outage(sim: Simulator, client: Client) -> None:
    """1100 and broken farms make health degraded; 1102 and OK farms make it healthy."""
    sim.connectivity_lost()
    deadline = time.monotonic() + 3
    while client.health().status != "degraded" and time.monotonic() < deadline:
        time.sleep(0.02)
    h = client.health()
    assert h.status == "degraded"
    assert h.last_connectivity_event is not None
    assert h.last_connectivity_event.code == 1100
    sim.connectivity_restored()
    while client.health().status != "healthy" and time.monotonic() < deadline + 3:
        time.sleep(0.02)
    h = client.health()
    assert h.status == "healthy"
    assert h.last_connectivity_event is not None
    assert h.last_connectivity_event.code == 1102


def test_health_never_raises_when_closed() -> None:
    """health() answers for a client that never connected."""
    h = Client("127.0.0.1", 1).health()
    assert h.status == "disconnected"
    assert not h.connected


def test_from_env(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """from_env reads IB_HOST, IB_PORT and IB_CLIENT_ID; bad values name the variable."""
    monkeypatch.setenv("IB_HOST", sim.host)
    monkeypatch.setenv("IB_PORT", str(sim.port))
    monkeypatch.setenv("IB_CLIENT_ID", "77")
    with Client.from_env(timeout=5) as c:
        assert c.client_id == 77
        assert c.health().ready
    monkeypatch.setenv("IB_PORT", "seventy")
    with pytest.raises(ValueError, match="IB_PORT"):
        Client.from_env()


def test_from_env_reads_extra_products(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """IBDATA_PRODUCTS adds products from a file to the client's registry."""
    path = tmp_path / "products.toml"
    path.write_text(
        '[products.BUND]\nname = "Bund again"\nsymbol = "GBL"\ntrading_class = "FGBL"\n'
        'exchange = "EUREX"\ncurrency = "EUR"\nmultiplier = "1000"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("IB_PORT", str(sim.port))
    monkeypatch.setenv("IBDATA_PRODUCTS", str(path))
    with Client.from_env(timeout=5) as c:
        (d,) = c.get_contract_details("BUND")
    assert d.contract.symbol == "GBL"
    assert d.contract.sec_type == "CONTFUT"


# ---------------------------------------------------------------------- concurrency and leaks


def test_thirty_two_threads_no_cross_talk(client: Client) -> None:
    """32 threads at once each get exactly the bars of their own request; nothing leaks."""
    symbols = ["AAPL", "MSFT", "SPY"]
    cases = [(symbols[i % 3], 1800 + 60 * i) for i in range(32)]
    expected = {
        case: client.get_historical_bars(case[0], duration=f"{case[1]} S", bar_size="1 min")
        for case in cases
    }
    results: dict[tuple[str, int], Any] = {}
    barrier = threading.Barrier(32)

    def run(case: tuple[str, int]) -> None:
        barrier.wait()
        results[case] = client.get_historical_bars(
            case[0], duration=f"{case[1]} S", bar_size="1 min"
        )

    threads = [threading.Thread(target=run, args=(c,)) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == expected
    conn = client._conn
    assert conn is not None
    assert len(conn.table) == 0


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_hundred_reconnects_leak_nothing(client: Client) -> None:
    """Thread and socket counts are the same after 100 reconnects."""
    client.reconnect()
    threads, fds = threading.active_count(), _fd_count()
    for _ in range(100):
        client.reconnect()
    assert client.get_historical_bars("AAPL")
    assert threading.active_count() == threads
    assert _fd_count() == fds
    assert client.health().reconnect_count == 101


# ---------------------------------------------------------------------- ibapi's defects


def test_zero_length_frame_does_not_stall(sim: Simulator, client: Client) -> None:
    """A zero-length frame from TWS is skipped; the session goes on."""
    sim.send_raw(b"\x00\x00\x00\x00")
    assert client.get_historical_bars("AAPL")


def test_undecodable_message_fails_only_its_request(sim: Simulator, client: Client) -> None:
    """A malformed bar message fails that request; the next request works."""
    client.get_contract_details("AAPL")
    sim.set_latency(2)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.get_historical_bars("AAPL", timeout=10)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    req = sim.received.wait_for("reqHistoricalData", timeout=5)
    req_id = req.fields[1]
    payload = f"17\0{req_id}\0a\0b\0" + "1\0x\0" + "1\0" * 6
    sim.send_raw(struct.pack(">I", len(payload)) + payload.encode(), client_id=client.client_id)
    t.join(5)
    assert len(errors) == 1
    assert isinstance(errors[0], RequestError)
    assert "could not decode" in str(errors[0])
    sim.set_latency(0)
    assert client.get_historical_bars("MSFT")


def test_error_signatures_of_every_ibapi_release() -> None:
    """error() arguments of ibapi 9.81, 10.x and 10.33+ normalise to (req_id, code, text)."""
    assert normalize_error(5, 200, "No security") == (5, 200, "No security")
    assert normalize_error(5, 200, "No security", "") == (5, 200, "No security")
    assert normalize_error(5, 1_700_000_000_000, 200, "No security", "") == (5, 200, "No security")
    with pytest.raises(TypeError):
        normalize_error(5, "x")


def test_first_connect_can_retry_in_the_background(sim_factory: Callable[..., Simulator]) -> None:
    """A failed first connect with retry_in_background keeps trying until TWS is up."""
    sim = sim_factory()
    port = sim.port
    sim.refuse_connections()
    c = Client(
        sim.host, port, connect_timeout=1, timeout=10,
        reconnect_min_delay=0.05, reconnect_max_delay=0.2,
    )  # fmt: skip
    try:
        with pytest.raises(ConnectError):
            c.connect(retry_in_background=True)
        assert c.health().status == "connecting"
        sim.refuse_connections(False)
        assert c.get_historical_bars("AAPL")  # waits for the background session
        assert c.health().ready
    finally:
        c.close()


def test_identical_concurrent_requests_share_one_ib_request(sim: Simulator, client: Client) -> None:
    """Identical calls made while one is in flight get its answer; IB is asked once."""
    client.get_contract_details("AAPL")
    sim.set_latency(0.3)  # keeps the first request in flight while the others arrive
    before = _historical_requests(sim)
    results: list[Any] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        results.append(client.get_historical_bars("AAPL", duration="1 D", bar_size="1 hour"))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 8
    assert all(r == results[0] for r in results)
    assert _historical_requests(sim) - before == 1


def test_session_socket_has_tcp_keepalive(client: Client) -> None:
    """The session's socket probes a silent peer, so a vanished gateway is noticed."""
    import socket

    from ibdata import _connection

    conn = client._conn
    assert conn is not None
    assert conn._sock is not None
    sock = conn._sock
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_KEEPIDLE"):
        idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        assert idle == _connection.KEEPALIVE_IDLE
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3


def test_throttle_allows_a_burst_then_spaces_at_its_rate() -> None:
    """At 45 a second, 45 requests go at once and each further one waits 1/45 s more."""
    from ibdata._throttle import Throttle

    throttle = Throttle(45.0)
    waits = [throttle.reserve(now=100.0) for _ in range(48)]
    assert waits[:45] == [0.0] * 45
    assert waits[45:] == pytest.approx([1 / 45, 2 / 45, 3 / 45])
    assert throttle.reserve(now=102.0) == 0.0  # two quiet seconds refill the burst


def test_requests_never_exceed_the_message_rate(
    sim: Simulator, client_factory: Callable[..., Client]
) -> None:
    """Forty lookups from eight threads at a limit of 20 a second reach TWS no faster."""
    client = client_factory(max_message_rate=20)
    errors: list[BaseException] = []

    def lookups() -> None:
        try:
            for _ in range(5):
                client.get_contract_details("AAPL")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lookups) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    times = sorted(r.time for r in sim.received.find("reqContractDetails"))
    assert len(times) == 40
    # 20 may go at once (one second's burst); the other 20 are spaced 1/20 s apart at least.
    assert times[-1] - times[0] >= 20 / 20 * 0.95


def test_no_slot_before_the_timeout_raises_unsent(
    sim: Simulator, client_factory: Callable[..., Client]
) -> None:
    """A request whose rate-limit slot comes after its timeout raises at once, unsent."""
    client = client_factory(max_message_rate=1)
    client.get_contract_details("AAPL")
    before = len(sim.received.find("reqContractDetails"))
    with pytest.raises(RequestTimeoutError, match="message-rate limit"):
        client.get_contract_details("AAPL", timeout=0.3)
    assert len(sim.received.find("reqContractDetails")) == before


@pytest.mark.parametrize(
    ("rate", "error"),
    [
        (0, ValueError),
        (-5, ValueError),
        (float("nan"), ValueError),
        (True, TypeError),
        ("45", TypeError),
    ],
)
def test_message_rate_is_checked(rate: object, error: type[Exception]) -> None:
    """A message rate that is not a positive finite number is refused, naming the option."""
    with pytest.raises(error, match="max_message_rate"):
        Client(max_message_rate=rate)  # type: ignore[arg-type]


def test_the_exchange_implies_the_currency(client: Client) -> None:
    """A plain symbol on an exchange that trades in one currency takes it (EUREX: EUR), so
    the Bund is found without currency=; given currencies and registry products win."""
    assert client.resolve("GBL", sec_type="FUT", exchange="EUREX").currency == "EUR"
    assert client.resolve("GBL", sec_type="FUT", exchange="eurex").currency == "EUR"
    assert client.resolve("GBL", exchange="EUREX", currency="USD").currency == "USD"
    assert client.resolve("AAPL", exchange="SMART").currency == "USD"
    assert client.resolve("UST10Y", exchange="EUREX").currency == "USD"  # the product's own
    details = client.get_contract_details("GBL", sec_type="FUT", exchange="EUREX")
    assert details
    assert {d.contract.currency for d in details} == {"EUR"}


def test_an_assumed_currency_is_named_when_nothing_is_found(client: Client) -> None:
    """A lookup that fails under the default USD says that USD was assumed; one with the
    currency given does not."""
    with pytest.raises(ContractNotFoundError, match="ibdata assumed currency USD") as raised:
        client.get_contract_details("GBL", sec_type="FUT", exchange="CME")
    assert raised.value.code == 200
    with pytest.raises(ContractNotFoundError, match="assumed currency USD"):
        client.get_historical_bars("GBL", sec_type="FUT", exchange="CME", duration="1 D")
    with pytest.raises(ContractNotFoundError) as given:
        client.get_contract_details("GBL", sec_type="FUT", exchange="CME", currency="USD")
    assert "assumed" not in str(given.value)


def test_repr_says_where_and_what_state(sim: Simulator, tmp_path: Path) -> None:
    """``repr(Client)`` names the address, the client id, the state and the store."""
    c = Client(sim.host, sim.port, client_id=7, cache=tmp_path / "c.sqlite", login="team")
    assert repr(c) == (
        f"<Client {sim.host}:{sim.port} client_id=7 not connected login='team' "
        f"cache={str(tmp_path / 'c.sqlite')!r}>"
    )
    with c:
        assert f"client_id=7 connected server_version={c.health().server_version} " in repr(c)
    assert repr(c).endswith("closed login='team' cache=" + repr(str(tmp_path / "c.sqlite")) + ">")
