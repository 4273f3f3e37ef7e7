"""A hostile gateway: malformed frames, wrong field counts, bad numbers, garbage.

TWS is not an adversary, but a client running for months meets proxies, half-written
frames and bugs. Whatever arrives, ibdata raises or reconnects, never hangs, never dies
silently (its reader and dispatcher threads survive, or the session is marked lost and
replaced), and never returns a bar it could not read as IB sent it: a call whose answer
held a bad bar raises instead of returning part of it.

The simulator's ``send_raw`` writes the bytes to the client's socket; a request is held in
flight by the simulator's latency while they are injected, and the real answer comes later
(or never, once the request has failed).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ibdata import (
    Bars,
    Client,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    IBDataError,
    RequestError,
)
from ibdata.sim import Simulator
from tests.reliability.conftest import Figures
from tests.reliability.probes import Call, fd_count, frame, session_threads, wait_until

#: The window every test asks for: twelve 5-minute bars, intraday (epoch-second times).
WINDOW = {"duration": "3600 S", "bar_size": "5 mins"}
#: The timeout of calls that may run into a broken stream.
TIMEOUT = 1.0
#: Well-formed bars: epoch start, open, high, low, close, volume, WAP, count.
GOOD_BARS = [
    [str(1741788000 + 300 * i), "10.0", "11.0", "9.0", "10.5", "100", "10.2", "5"] for i in range(3)
]


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """The simulator at server version 157: the hand-made frames below are in its layouts
    (5-field errors, a window in historicalData), which every ibapi release negotiates down
    to and reads."""
    return sim_factory(server_version=157)


@pytest.fixture
def client(sim: Simulator) -> Iterator[Client]:
    """A connected client that reconnects within a tenth of a second."""
    c = Client(
        sim.host, sim.port, timeout=5, connect_timeout=5,
        reconnect_min_delay=0.02, reconnect_max_delay=0.1,
    )  # fmt: skip
    c.connect()
    yield c
    c.close()


@pytest.fixture
def expected(client: Client) -> Bars:
    """The bars of :data:`WINDOW` from a clean run."""
    return client.get_historical_bars("AAPL", **WINDOW)


def _flat(bars: list[list[str]]) -> list[str]:
    return [field for bar in bars for field in bar]


def _bar_frame(req_id: str, bars: list[list[str]], count: int | None = None) -> bytes:
    n = len(bars) if count is None else count
    return frame(17, req_id, "20250312 14:00:00", "20250312 15:00:00", n, *_flat(bars))


def _in_flight(
    sim: Simulator, call: Callable[[], object], request: str, hold: float = 30
) -> tuple[Call, str]:
    """Start ``call`` with its answer held back ``hold`` seconds; returns it and its
    request id."""
    sim.set_latency(hold)
    before = len(sim.received.find(request))
    running = Call(call)
    assert wait_until(lambda: len(sim.received.find(request)) > before, 5)
    msg = sim.received.find(request)[-1]
    return running, msg.fields[2] if request == "reqContractDetails" else msg.fields[1]


def _bars_in_flight(sim: Simulator, client: Client, hold: float = 30) -> tuple[Call, str]:
    return _in_flight(
        sim, lambda: client.get_historical_bars("AAPL", **WINDOW), "reqHistoricalData", hold
    )


def _same_session_alive(client: Client, reconnects: int = 0) -> None:
    """The session was not replaced and its reader and dispatcher threads still run."""
    assert client.health().reconnect_count == reconnects
    assert client.connected
    mine = [name for name in session_threads() if name.endswith(f"#{client.client_id}")]
    assert len(mine) == 2, session_threads()


def _only_the_current_session(client: Client) -> None:
    """Every earlier session's reader and dispatcher have ended; the current one's run."""
    mine = f"#{client.client_id}"
    assert wait_until(lambda: all(n.endswith(mine) for n in session_threads()), 2), (
        f"threads of an earlier session live on: {session_threads()}"
    )
    assert len(session_threads()) == 2


def _recovers(client: Client, expected: Bars, attempts: int) -> tuple[int, float]:
    """Ask for the window until the answer is right; every failure must be an ibdata error.

    Returns how many calls failed and how long recovery took.
    """
    start = time.monotonic()
    for failed in range(attempts + 1):
        call = Call(lambda: client.get_historical_bars("AAPL", **WINDOW, timeout=TIMEOUT))
        assert call.join(TIMEOUT + 5), "a call hangs"
        if call.error is None:
            assert call.result == expected
            return failed, time.monotonic() - start
        assert isinstance(call.error, IBDataError), call.error
    raise AssertionError(f"still failing after {attempts} calls")


def _bad(index: int, field: int, value: str) -> list[list[str]]:
    bars = [list(bar) for bar in GOOD_BARS]
    bars[index][field] = value
    return bars


BAD_BARS: dict[str, bytes | Callable[[str], bytes]] = {
    "price not a number": lambda r: _bar_frame(r, _bad(1, 1, "abc")),
    "empty price": lambda r: _bar_frame(r, _bad(1, 4, "")),
    "NaN open": lambda r: _bar_frame(r, _bad(1, 1, "nan")),
    "infinite high": lambda r: _bar_frame(r, _bad(1, 2, "inf")),
    "minus infinite low": lambda r: _bar_frame(r, _bad(2, 3, "-inf")),
    "close overflowing to infinity": lambda r: _bar_frame(r, _bad(0, 4, "1e999")),
    "NaN WAP": lambda r: _bar_frame(r, _bad(1, 6, "NaN")),
    "volume not a number": lambda r: _bar_frame(r, _bad(1, 5, "x")),
    "fractional count": lambda r: _bar_frame(r, _bad(1, 7, "1.5")),
    "count beyond 64 bits": lambda r: _bar_frame(r, _bad(1, 7, "9" * 30)),
    "time not a number": lambda r: _bar_frame(r, _bad(1, 0, "abc")),
    "NaN time": lambda r: _bar_frame(r, _bad(1, 0, "nan")),
    "empty time": lambda r: _bar_frame(r, _bad(2, 0, "")),
    "non-ASCII bytes in a price": lambda r: frame(
        17, r, "a", "b", 1, GOOD_BARS[0][0], b"\xff\xfe", *GOOD_BARS[0][2:]
    ),
    "a bar one field short": lambda r: frame(
        17, r, "a", "b", 3, *(f for i, f in enumerate(_flat(GOOD_BARS)) if i != 11)
    ),
    "a bar one field long": lambda r: _bar_frame(r, [*GOOD_BARS[:2], [*GOOD_BARS[2], "7"]]),
    "bar count above the bars sent": lambda r: _bar_frame(r, GOOD_BARS, count=4),
    "negative bar count": lambda r: _bar_frame(r, GOOD_BARS, count=-1),
    "contractDataEnd for the bar request": lambda r: frame(52, 1, r),
    "headTimestamp for the bar request": lambda r: frame(88, r, "1741788000"),
    "no fields after the request id": lambda r: frame(17, r),
    "an error for it with a non-numeric code": lambda r: frame(4, 2, r, "abc", "text"),
    "an error for it without its code and text": lambda r: frame(4, 2, r),
}


@pytest.mark.parametrize("case", list(BAD_BARS))
def test_a_bad_answer_fails_its_call_and_the_session_goes_on(
    sim: Simulator, client: Client, expected: Bars, case: str
) -> None:
    """An answer with one bad bar, a wrong field count, another request kind's end or an
    unreadable error message raises RequestError for that call at once (never bars), and
    the same session serves the next."""
    call, req_id = _bars_in_flight(sim, client)
    make = BAD_BARS[case]
    sim.send_raw(make(req_id) if callable(make) else make, client_id=client.client_id)
    assert call.join(5), "the call hangs"
    assert call.result is None
    assert isinstance(call.error, RequestError), call.error
    assert call.error.code == 0  # found by ibdata, not reported by IB
    assert call.error.req_id == int(req_id)
    _same_session_alive(client)
    sim.set_latency(0)
    assert client.get_historical_bars("AAPL", **WINDOW) == expected


def test_bars_instead_of_contract_details_fail_the_call(sim: Simulator, client: Client) -> None:
    """A contract-details request answered with a historicalData message raises
    RequestError instead of returning an empty list."""
    call, req_id = _in_flight(
        sim, lambda: client.get_contract_details("MSFT"), "reqContractDetails"
    )
    sim.send_raw(_bar_frame(req_id, GOOD_BARS), client_id=client.client_id)
    assert call.join(5)
    assert isinstance(call.error, RequestError), call.error
    assert call.result is None
    _same_session_alive(client)


NOISE: dict[str, bytes] = {
    "zero-length frame": struct.pack(">I", 0),
    "binary garbage in a frame": struct.pack(">I", 6) + b"\xde\xad\xbe\xef\x00\x00",
    "unknown message id": frame(999, 1, "x"),
    "a payload without its NUL": struct.pack(">I", 2) + b"17",
    "error notice two fields short": frame(4, 2, -1),
    "error with a non-numeric code": frame(4, 2, -1, "abc", "text"),
    "nextValidId with a non-numeric id": frame(9, 1, "x"),
    "a notice in non-ASCII bytes": frame(4, 2, -1, 2104, b"\xc3\xa9\xff farm OK:usfarm"),
}


def test_noise_between_answers_is_skipped(
    sim: Simulator, client: Client, expected: Bars, figures: Figures
) -> None:
    """Well-framed noise (empty, unreadable, unknown or short messages) is logged and
    skipped: the call in flight gets exactly its bars and the session goes on."""
    call, _ = _bars_in_flight(sim, client, hold=1.0)  # the real answer comes after the noise
    for payload in NOISE.values():
        sim.send_raw(payload, client_id=client.client_id)
    assert call.join(5), "the call hangs"
    assert call.error is None, call.error
    assert call.result == expected
    _same_session_alive(client)
    figures.record("noise frames skipped without harm", len(NOISE))


BREAKS: dict[str, bytes] = {
    "length prefix above 16 MiB": struct.pack(">I", 0x0100_0000) + b"x" * 16,
    "length prefix 0xFFFFFFFF": b"\xff\xff\xff\xff" + b"x" * 16,
    "unframed text": b"GET / HTTP/1.1\r\nHost: tws\r\n\r\n",
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_broken_frame_drops_the_session_at_once(
    sim: Simulator, client: Client, expected: Bars, figures: Figures, case: str
) -> None:
    """A frame longer than any TWS sends (16 MiB, ibapi's limit too) or unframed bytes fail
    the call in flight with ConnectionLostError at once; the client reconnects and the new
    session returns exactly the expected bars."""
    call, _ = _bars_in_flight(sim, client)
    sent = time.monotonic()
    sim.send_raw(BREAKS[case], client_id=client.client_id)
    assert call.join(5), "the call hangs"
    assert isinstance(call.error, ConnectionLostError), call.error
    assert call.result is None
    detection = call.settled_at - sent  # type: ignore[operator]
    assert detection < 1.0
    sim.set_latency(0)
    failed, took = _recovers(client, expected, attempts=1)
    assert failed == 0  # the client was back before the next call needed it
    assert client.health().reconnect_count == 1
    _only_the_current_session(client)
    figures.record(f"{case}: failure detection (s)", detection)
    figures.record(f"{case}: back to correct bars (s)", took)


@pytest.mark.parametrize(
    "where", [0.1, 0.5, 0.99], ids=["near the start", "midway", "near the end"]
)
def test_a_frame_cut_open_by_another_never_yields_bars(
    sim: Simulator, client: Client, expected: Bars, figures: Figures, where: float
) -> None:
    """A notice frame written into the middle of a bar frame (the stream is interleaved)
    fails the bar call with an ibdata error, never bars; the client then serves exactly
    the expected bars again within two timeouts."""
    call, req_id = _bars_in_flight(sim, client)
    bar_frame = _bar_frame(req_id, GOOD_BARS)
    cut = int(len(bar_frame) * where)
    notice = frame(4, 2, -1, 2104, "Market data farm connection is OK:usfarm")
    sim.send_raw(bar_frame[:cut] + notice + bar_frame[cut:], client_id=client.client_id)
    assert call.join(5), "the call hangs"
    assert call.result is None
    assert isinstance(call.error, (RequestError, ConnectionLostError)), call.error
    sim.set_latency(0)
    failed, took = _recovers(client, expected, attempts=2)
    _only_the_current_session(client)
    name = f"notice cut into a bar frame {where:.0%} in"
    figures.record(f"{name}: the bar call raised", type(call.error).__name__)
    figures.record(f"{name}: calls failed after it ({TIMEOUT} s timeout)", failed)
    figures.record(f"{name}: back to correct bars (s)", took)


STALLS: dict[str, bytes] = {
    "truncated frame (100 bytes announced, 50 sent)": struct.pack(">I", 100) + b"x" * 50,
    "frame of 16 MiB announced, 50 bytes sent": struct.pack(">I", 0xFF_FFFF) + b"x" * 50,
    "zero-prefixed garbage (a 3 MiB frame announced)": b"\x00\x31\x32\x00" + b"x" * 10,
}


@pytest.mark.parametrize("case", list(STALLS))
def test_a_frame_that_never_completes_costs_at_most_two_timeouts(
    sim: Simulator, client: Client, expected: Bars, figures: Figures, case: str
) -> None:
    """After a frame that never completes (the stream is desynchronised for good), calls
    raise ibdata errors at their timeout, and once one has timed out waiting behind that
    frame the session is dropped and replaced: at most two calls fail."""
    sim.send_raw(STALLS[case], client_id=client.client_id)
    failed, took = _recovers(client, expected, attempts=2)
    assert failed >= 1  # nothing can be read behind the broken frame
    assert client.health().reconnect_count == 1
    _only_the_current_session(client)
    figures.record(f"{case}: calls failed ({TIMEOUT} s timeout) before recovery", failed)
    figures.record(f"{case}: back to correct bars (s)", took)


class _HandshakeServer:
    """Accepts one connection, reads the API prefix and hello, answers ``reply``, then
    closes (``close=True``) or stays silent until stopped."""

    def __init__(self, reply: bytes, *, close: bool) -> None:
        self._reply = reply
        self._close = close
        self._stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="ibdata-sim-hostile")
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            data = b""
            while len(data) < 8 or len(data) < 8 + struct.unpack(">I", data[4:8])[0]:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            assert data.startswith(b"API\0")
            conn.sendall(self._reply)
            if not self._close:
                self._stop.wait(10)

    def stop(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(5)


HANDSHAKES: dict[str, tuple[bytes, bool, type[Exception], str]] = {
    "a version that is not a number": (
        frame("abc", "20250312 15:00:00 UTC"), False, ConnectError, "not a server version"
    ),
    "a frame above 16 MiB": (b"\xff\xff\xff\xff", False, ConnectError, "frame of"),
    "closed without a reply": (b"", True, ConnectError, "during the handshake"),
    "a version, then closed": (frame(157, "20250312 15:00:00 UTC"), True, ConnectError,
                               "before it was ready"),
    "only a zero-length frame": (struct.pack(">I", 0), False, ConnectTimeoutError,
                                 "no handshake reply"),
    "a version above any ibdata offers": (frame(201, "20250312 15:00:00 UTC"), False,
                                          ConnectError, "answered server version 201"),
    "a version below 157": (frame(150, "20250312 15:00:00 UTC"), False, ConnectError,
                            "answered server version 150"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HANDSHAKES))
def test_a_hostile_handshake_fails_connect_cleanly(case: str) -> None:
    """A server that answers the handshake with garbage, an oversize frame or a close
    fails connect() with ConnectError at once (one that answers nothing readable, with
    ConnectTimeoutError at connect_timeout), and leaves nothing behind."""
    reply, close, error, fragment = HANDSHAKES[case]
    baseline = (threading.active_count(), fd_count())
    server = _HandshakeServer(reply, close=close)
    client = Client("127.0.0.1", server.port, connect_timeout=1.0, timeout=5)
    start = time.monotonic()
    try:
        with pytest.raises(error, match=fragment):
            client.connect()
        took = time.monotonic() - start
    finally:
        client.close()
        server.stop()
    if error is ConnectTimeoutError:
        assert 0.9 <= took <= 1.1
    else:
        assert took < 1.0, took
    assert wait_until(lambda: (threading.active_count(), fd_count()) == baseline, 2)
    assert not session_threads()
