"""The simulator's connection handling, faults and observation, over raw sockets."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

import pytest

from ibdata.pacing import PacingRules
from ibdata.sim import Simulator
from tests.conftest import CLOCK_AT
from tests.sim.raw import RawClient, bars_request


def _is_bars(req_id: int) -> Callable[[list[str]], bool]:
    return lambda f: f[:2] == ["17", str(req_id)] or (f[0] == "4" and f[2] == str(req_id))


@pytest.mark.parametrize(
    ("versions", "offered", "expected"),
    [
        ("v100..157", 178, 157),
        ("v157..178", 178, 178),
        ("v157..170", 178, 170),
        ("v157..178", 163, 163),
        ("v176", 178, 176),
        ("v100..157 +PACEAPI", 178, 157),
        ("v100..176", 200, 176),  # ibapi 10.19
        ("v100..187", 200, 187),  # ibapi 10.30
        ("v100..200", 200, 200),  # ibdata with ibapi 10.37+
        ("v100..226", 200, 200),  # ibapi 10.51 on its own: the simulator stops at 200
        ("v100..226", 194, 194),
    ],
)
def test_handshake_answers_min_of_both_maxima(
    sim_factory: Callable[..., Simulator], versions: str, offered: int, expected: int
) -> None:
    """The reply is one frame of two fields: min(client max, offered) and a connection time."""
    sim = sim_factory(server_version=offered)
    with RawClient(sim.port) as c:
        reply = c.hello(versions)
        assert reply[0] == str(expected)
        assert len(reply) == 2
        assert reply[1].endswith(" UTC")
        assert c.silent_for(0.2), "nothing may follow the reply before startApi"


def test_simulator_refuses_versions_beyond_200(sim_factory: Callable[..., Simulator]) -> None:
    """201 and up are binary-framed; the simulator offers at most 200."""
    with pytest.raises(ValueError, match=r"157\.\.200"):
        sim_factory(server_version=201)


@pytest.mark.parametrize("sv", [193, 194, 200])
def test_errors_carry_their_time_from_194(sim_factory: Callable[..., Simulator], sv: int) -> None:
    """From 194 an error has no version field and ends in the simulator clock's time (ms)."""
    sim = sim_factory(server_version=sv)
    with RawClient(sim.port) as c:
        c.hello(f"v100..{sv}")
        frames = c.connect_api(3, versions=None)
    notice = frames[2]
    if sv < 194:
        assert notice[:3] == ["4", "2", "-1"]
        assert len(notice) == 6
    else:
        assert notice[:2] == ["4", "-1"]
        assert notice[4:] == ["", str(int(CLOCK_AT.timestamp() * 1000))]


def test_client_below_157_is_closed(sim: Simulator) -> None:
    """A client whose versions all lie below 157 is closed without a reply."""
    with RawClient(sim.port) as c:
        text = b"v100..150"
        c.send_bytes(b"API\0" + struct.pack(">I", len(text)) + text)
        assert c.closed_by_server()


def test_startup_burst_order(sim: Simulator) -> None:
    """After startApi: managedAccounts, nextValidId, then farm notices with reqId -1."""
    with RawClient(sim.port) as c:
        frames = c.connect_api(3)
    assert frames[0] == ["15", "1", "DU1234567"]
    assert frames[1] == ["9", "1", "1"]
    notices = frames[2:]
    assert all(f[:3] == ["4", "2", "-1"] and len(f) == 6 for f in notices)
    assert [f[3] for f in notices] == ["2104", "2104", "2104", "2104", "2106", "2106", "2158"]


def test_answers_are_sent_without_nagle_delays(sim: Simulator) -> None:
    """Every client connection has TCP_NODELAY set, so a small answer written after another
    is not held back for the client's delayed ACK (a 40 ms stall, measured with ib_async's
    connect, that would be the simulator's cost and not the client's)."""
    with RawClient(sim.port) as c:
        c.connect_api(3)
        sessions = list(sim._sessions.values())  # the accepted sockets, seen from inside
        assert len(sessions) == 1
        assert sessions[0].sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_requests_before_start_api_are_ignored(sim: Simulator) -> None:
    """Nothing is answered before startApi."""
    with RawClient(sim.port) as c:
        c.hello()
        c.send(49, 1)
        assert c.silent_for(0.3)
        c.start_api(1)
        assert c.read()[0] == "15"


def test_duplicate_client_id_gets_326_and_close(sim: Simulator) -> None:
    """A second connection with a client id in use gets 326 and is closed; the first lives."""
    with RawClient(sim.port) as first, RawClient(sim.port) as second:
        first.connect_api(5)
        second.hello()
        second.start_api(5)
        err = second.read()
        assert err[:4] == ["4", "2", "-1", "326"]
        assert err[4].startswith("Unable to connect as the client id is already in use")
        assert second.closed_by_server()
        first.send(49, 1)
        assert first.read() == ["49", "1", str(int(CLOCK_AT.timestamp()))]


def test_thirty_third_connection_is_closed(sim: Simulator) -> None:
    """32 clients are served at once; the 33rd connection is closed without a reply."""
    clients = [RawClient(sim.port) for _ in range(32)]
    try:
        for i, c in enumerate(clients):
            c.connect_api(100 + i)
        with RawClient(sim.port) as extra:
            extra.send_bytes(b"API\0")
            assert extra.closed_by_server()
        assert sim.stats.active_clients == 32
        clients[-1].send(49, 1)
        assert clients[-1].read()[0] == "49"
    finally:
        for c in clients:
            c.close()


def test_drop_all_closes_every_session(sim: Simulator) -> None:
    """drop_all closes every connection at once."""
    with RawClient(sim.port) as a, RawClient(sim.port) as b:
        a.connect_api(1)
        b.connect_api(2)
        sim.drop_all()
        assert a.closed_by_server(1)
        assert b.closed_by_server(1)


def test_refuse_connections_then_accept_again(sim: Simulator) -> None:
    """While refusing, connections are closed at once; afterwards they are served."""
    sim.refuse_connections()
    with RawClient(sim.port) as c:
        c.send_bytes(b"API\0")
        assert c.closed_by_server()
    sim.refuse_connections(False)
    with RawClient(sim.port) as c:
        assert c.connect_api(1)[0][0] == "15"


def test_deaf_simulator_accepts_but_never_answers(sim: Simulator) -> None:
    """A deaf simulator sends no handshake reply and no responses, but records requests."""
    with RawClient(sim.port) as live:
        live.connect_api(1)
        sim.go_deaf()
        with RawClient(sim.port) as c:
            text = b"v100..178"
            c.send_bytes(b"API\0" + struct.pack(">I", len(text)) + text)
            assert c.silent_for(0.3)
        live.send(49, 1)
        assert live.silent_for(0.3)
        assert sim.received.wait_for("reqCurrentTime", timeout=1).client_id == 1
        sim.go_deaf(False)
        live.send(49, 1)
        assert live.read()[0] == "49"


def test_latency_delays_responses(sim: Simulator) -> None:
    """set_latency delays every response by at least that long."""
    with RawClient(sim.port) as c:
        c.connect_api(1)
        sim.set_latency(0.3)
        t0 = time.monotonic()
        c.send(49, 1)
        assert c.read()[0] == "49"
        assert time.monotonic() - t0 >= 0.3
        with pytest.raises(ValueError, match="latency"):
            sim.set_latency(-1)


def test_fail_next_injects_one_error(sim: Simulator) -> None:
    """fail_next answers the next matching request with the given code, then data flows."""
    sim.fail_next(354, "Requested market data is not subscribed.", request="reqHistoricalData")
    with RawClient(sim.port) as c:
        c.connect_api(1)
        c.send(*bars_request(1))
        assert c.read()[:5] == ["4", "2", "1", "354", "Requested market data is not subscribed."]
        c.send(*bars_request(2))
        assert c.read_until(_is_bars(2))[-1][:2] == ["17", "2"]


@pytest.mark.parametrize(("data_lost", "final"), [(False, "1102"), (True, "1101")])
def test_outage_holds_data_until_restored(sim: Simulator, data_lost: bool, final: str) -> None:
    """An outage sends 1100 and broken farms, holds data, then farm OK and 1102/1101."""
    with RawClient(sim.port) as c:
        c.connect_api(1)
        sim.outage(0.5, data_lost=data_lost)
        codes = [f[3] for f in (c.read() for _ in range(4))]
        assert codes == ["1100", "2103", "2105", "2157"]
        c.send(*bars_request(9))
        frames = c.read_until(lambda f: f[0] == "17", timeout=3)
        codes = [f[3] for f in frames if f[0] == "4"]
        assert codes == ["2104", "2106", "2158", final], "data only after the restore"


def test_send_raw_reaches_the_client(sim: Simulator) -> None:
    """send_raw writes bytes unchecked to the chosen client only."""
    with RawClient(sim.port) as a, RawClient(sim.port) as b:
        a.connect_api(1)
        b.connect_api(2)
        assert sim.send_raw(struct.pack(">I", 5) + b"49\x001\x00", client_id=2) == 1
        assert b.read() == ["49", "1"]
        assert a.silent_for(0.2)


def test_restart_on_the_same_port(sim: Simulator) -> None:
    """restart drops every client and listens again on the same port."""
    port = sim.port
    with RawClient(port) as c:
        c.connect_api(1)
        sim.restart(downtime=0.1)
        assert c.closed_by_server(1)
    assert sim.port == port
    with RawClient(port) as c:
        assert c.connect_api(1)[0][0] == "15"


def test_received_records_every_message(sim: Simulator) -> None:
    """received holds each message with its client id and fields, and wait_for times out."""
    with RawClient(sim.port) as c:
        c.connect_api(42)
        c.send(*bars_request(7, "MSFT"))
        msg = sim.received.wait_for("reqHistoricalData", client_id=42, timeout=2)
        assert msg.msg_id == 20
        assert msg.fields[:4] == ("20", "7", "0", "MSFT")
        assert sim.received.find("startApi")[0].fields == ("71", "2", "42", "")
    with pytest.raises(TimeoutError):
        sim.received.wait_for("reqContractDetails", timeout=0.1)


@pytest.mark.sends_orders
def test_order_messages_are_counted_and_refused_as_read_only(sim: Simulator) -> None:
    """An order message is recorded, counted, never acted on, and refused at once with
    321 "read-only" for its order id, as TWS with Read-Only API answers."""
    with RawClient(sim.port) as c:
        c.connect_api(1, versions="v100..157")
        c.send(3, 17, 0, "AAPL", "STK")
        sim.received.wait_for("placeOrder", timeout=2)
        err = c.read()
    assert err[:4] == ["4", "2", "17", "321"]
    assert err[4].endswith("cause - The API interface is currently in Read-Only mode.")
    assert sim.stats.order_messages == 1


def test_malformed_request_gets_320_and_session_lives(sim: Simulator) -> None:
    """A well-framed request with a non-numeric field gets 320; the session carries on."""
    with RawClient(sim.port) as c:
        c.connect_api(1)
        c.send(20, "not-a-number", 0, "AAPL")
        err = c.read()
        assert err[:4] == ["4", "2", "-1", "320"]
        c.send(49, 1)
        assert c.read()[0] == "49"


@pytest.mark.parametrize(
    "payload",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"API\0" + struct.pack(">I", 50_000_000),
        b"API\0" + struct.pack(">I", 5) + b"hello",
    ],
    ids=["garbage", "oversize", "bad-hello"],
)
def test_hostile_client_is_dropped_alone(sim: Simulator, payload: bytes) -> None:
    """Garbage, an oversize frame or a bad hello drop that client; others are still served."""
    with RawClient(sim.port) as good:
        good.connect_api(1)
        with RawClient(sim.port) as bad:
            bad.send_bytes(payload)
            assert bad.closed_by_server()
        good.send(49, 1)
        assert good.read()[0] == "49"
    assert sim.stats.dropped_clients >= 1


def test_client_that_never_reads_is_dropped(sim_factory: Callable[..., Simulator]) -> None:
    """A client that stops reading is dropped once its unread responses pass the limit."""
    sim = sim_factory(max_queued_bytes=2_000_000, send_timeout=0.5, pacing=None)
    with RawClient(sim.port) as good, RawClient(sim.port) as lazy:
        lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        good.connect_api(1)
        lazy.connect_api(2)
        for i in range(40):
            lazy.send(*bars_request(100 + i, bar_size="1 min", duration="1 W"))
        deadline = time.monotonic() + 10
        while sim.stats.dropped_clients == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sim.stats.dropped_clients == 1
        good.send(49, 1)
        assert good.read()[0] == "49"


def test_cancel_running_query_and_unknown_id(sim: Simulator) -> None:
    """Cancelling a query still running gives 162 "cancelled" and no bars; unknown is 366."""
    with RawClient(sim.port) as c:
        c.connect_api(1)
        sim.set_latency(0.5)
        c.send(*bars_request(11))
        sim.received.wait_for("reqHistoricalData", timeout=2)
        c.send(25, 1, 11)
        err = c.read()
        assert err[3:5] == [
            "162",
            "Historical Market Data Service error message:API historical data query cancelled: 11",
        ]
        assert c.silent_for(0.8), "no bars after the cancel"
        sim.set_latency(0)
        c.send(25, 1, 99)
        assert c.read()[3:5] == ["366", "No historical data query found for ticker id:99"]
    assert sim.stats.open_historical == 0


def test_fifty_open_requests_limit_is_322(sim_factory: Callable[..., Simulator]) -> None:
    """Past max_open simultaneous historical requests, TWS answers 322."""
    sim = sim_factory(pacing=PacingRules(max_open=2), latency=0.5)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        for i in (1, 2, 3):
            c.send(*bars_request(i, ["AAPL", "MSFT", "SPY"][i - 1]))
        sim.received.wait_for(where=lambda r: r.fields[:2] == ("20", "3"), timeout=2)
        # Requests 1 and 2 hold their slots until their (delayed) answers are written.
        deadline = time.monotonic() + 0.4
        while sim.stats.open_historical != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sim.stats.open_historical == 2
        frames = c.read_until(lambda f: f[0] == "4" and f[2] == "3", timeout=3)
        err = frames[-1]
        assert err[3] == "322"
        assert "Only 50 simultaneous API historical data requests allowed" in err[4]
        assert [f[1] for f in frames if f[0] == "17"] == ["1", "2"]
    deadline = time.monotonic() + 2
    while sim.stats.open_historical and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.stats.open_historical == 0


def test_identical_small_bar_request_is_a_pacing_violation(
    sim_factory: Callable[..., Simulator],
) -> None:
    """An identical small-bar request within the (scaled) 15 s window gets 162 pacing."""
    sim = sim_factory(pacing=PacingRules(time_scale=50))  # 15 s becomes 0.3 s
    req = bars_request(1, bar_size="30 secs", duration="1800 S")
    with RawClient(sim.port) as c:
        c.connect_api(1)
        c.send(*req)
        assert c.read_until(_is_bars(1))[-1][0] == "17"
        req[1] = 2
        c.send(*req)
        err = c.read_until(_is_bars(2))[-1]
        assert err[3:5] == [
            "162",
            "Historical Market Data Service error message:Historical data request pacing violation",
        ]
        time.sleep(0.35)
        req[1] = 3
        c.send(*req)
        assert c.read_until(_is_bars(3))[-1][0] == "17"
    assert sim.stats.pacing_violations == 1


def test_set_pacing_switches_rules_with_empty_windows(
    sim_factory: Callable[..., Simulator],
) -> None:
    """set_pacing turns pacing on and off while serving; new rules start from empty windows."""
    sim = sim_factory(pacing=None)
    req = bars_request(1, bar_size="30 secs", duration="1800 S")
    with RawClient(sim.port) as c:
        c.connect_api(1)
        for i in (1, 2):  # identical, unpaced: both answered
            req[1] = i
            c.send(*req)
            assert c.read_until(_is_bars(i))[-1][0] == "17"
        sim.set_pacing(PacingRules(time_scale=1))  # 15 s between identical requests
        for i in (3, 4):  # the first counts from an empty window; the second is refused
            req[1] = i
            c.send(*req)
        assert c.read_until(_is_bars(3))[-1][0] == "17"
        assert c.read_until(_is_bars(4))[-1][3] == "162"
        sim.set_pacing(PacingRules(time_scale=1))  # the same rules again: windows emptied
        req[1] = 5
        c.send(*req)
        assert c.read_until(_is_bars(5))[-1][0] == "17"
        sim.set_pacing(None)
        req[1] = 6
        c.send(*req)
        assert c.read_until(_is_bars(6))[-1][0] == "17"
    assert sim.stats.pacing_violations == 1
    assert sim.pacing is None
    with pytest.raises(TypeError, match="PacingRules or None"):
        sim.set_pacing(100)  # type: ignore[arg-type]


def test_ten_minute_window_is_enforced(sim_factory: Callable[..., Simulator]) -> None:
    """The Nth small-bar request past window_max in the window gets 162 pacing."""
    sim = sim_factory(pacing=PacingRules(window_max=3, burst_max=100))
    symbols = ["AAPL", "MSFT", "SPY", "AAPL"]
    with RawClient(sim.port) as c:
        c.connect_api(1)
        for i, sym in enumerate(symbols, start=1):
            c.send(*bars_request(i, sym, bar_size="5 secs", duration=f"{300 + i} S"))
            last = c.read_until(_is_bars(i))[-1]
        assert last[3] == "162"
        assert "pacing violation" in last[4]


def test_keep_up_to_date_sends_updates_until_cancelled(
    sim_factory: Callable[..., Simulator],
) -> None:
    """keepUpToDate answers the bars, then historicalDataUpdate frames until cancelled; at a
    fixed clock standing on a bar's end each update is the answer's last bar."""
    sim = sim_factory(update_interval=0.05)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        c.send(*bars_request(5, bar_size="1 min", duration="3600 S", keep_up_to_date=True))
        date, o, h, lo, cl, volume, wap, count = c.read_until(_is_bars(5))[-1][-8:]
        update = c.read_until(lambda f: f[0] == "90")[-1]
        assert update == ["90", "5", count, date, o, cl, h, lo, wap, volume]
        assert int(count) > 0
        c.send(25, 1, 5)
        sim.received.wait_for("cancelHistoricalData", timeout=2)
        time.sleep(0.1)  # an update already queued may still arrive
        c._buf = b""
        assert c.silent_for(0.3), "no updates and no error after the cancel"
    assert sim.stats.open_historical == 0


def test_stats_count_requests(sim: Simulator) -> None:
    """stats counts connections, requests and historical requests."""
    with RawClient(sim.port) as c:
        c.connect_api(1)
        c.send(49, 1)
        c.read()
        c.send(*bars_request(1))
        c.read_until(_is_bars(1))
        s = sim.stats
    assert s.connections == 1
    assert s.requests == 2
    assert s.historical_requests == 1


def test_simulator_options_are_validated() -> None:
    """Bad options raise ValueError naming the option."""
    with pytest.raises(ValueError, match="server_version"):
        Simulator(server_version=150)
    with pytest.raises(ValueError, match="accounts"):
        Simulator(accounts=[""])
    with pytest.raises(ValueError, match="latency"):
        Simulator(latency=-0.1)


def test_reused_request_id_while_open_is_386(sim_factory: Callable[..., Simulator]) -> None:
    """A request id reused while the first request is still open gets 386."""
    sim = sim_factory(latency=0.3)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        c.send(*bars_request(4, "AAPL"))
        c.send(*bars_request(4, "MSFT"))
        frames = c.read_until(lambda f: f[0] == "4" and f[2] == "4", timeout=3)
        assert frames[-1][3:5] == ["386", "Duplicate ticker ID for API historical data query."]
        assert [f[:2] for f in frames if f[0] == "17"] == [["17", "4"]], "the first is answered"


def test_bar_cache_gives_identical_bytes(sim_factory: Callable[..., Simulator]) -> None:
    """Answers served from the encoded-session cache equal freshly generated ones."""
    cached = sim_factory(pacing=None)
    fresh = sim_factory(pacing=None, bar_cache_bytes=0)
    answers = []
    for client_id, sim in enumerate((cached, cached, fresh), start=1):
        with RawClient(sim.port) as c:
            c.connect_api(client_id)  # distinct ids: the previous close may not be seen yet
            c.send(*bars_request(1, bar_size="1 min", duration="2 W", end="20250311-18:30:00"))
            answers.append(c.read_until(_is_bars(1))[-1])
    assert answers[0] == answers[1] == answers[2]
    assert int(answers[0][4]) > 5000  # ten sessions of minute bars, one cut by the end


def test_an_unknown_request_is_refused_and_a_cancel_needs_no_answer(sim: Simulator) -> None:
    """A request id the simulator does not know is refused at once (321, request id -1);
    a cancel gets no answer, as from TWS."""
    with RawClient(sim.port) as c:
        c.connect_api(1, versions="v100..157")
        c.send(2, 2, 5)  # cancelMktData of a subscription that never existed
        assert c.silent_for(0.2)
        c.send(150, 1, 2)  # no such message
        err = c.read()
    assert err[:4] == ["4", "2", "-1", "321"]
    assert "not served by the simulator" in err[4]
