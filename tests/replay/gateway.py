"""A small TCP server that plays recorded TWS answers back to a client.

It does what TWS does on the wire and no more: the ``API\\0`` + ``v<min>..<max>`` hello,
one ``[serverVersion, connTime]`` reply negotiated as ``min(client max, its own version)``,
the start-up burst once startApi (71) arrives, then an answer to each request that the
script has one for, with the recorded request ids replaced by the client's. The recorded
frames are kept in the layout of the server version they were recorded at and re-laid
(:mod:`tests.replay.layouts`) to the negotiated version as they are sent.

Requests and their answers (outgoing ids, ``message.OUT``): reqContractDetails (9),
reqHistoricalData (20) and reqHeadTimestamp (87) get the script's next recorded answer
(the last one again once they run out); reqCurrentTime (49) gets the script's recorded
currentTime, else the time by the gateway's clock: the recorded connection time's instant
plus the time since the handshake (as the TWS that printed it would answer), or now;
reqIds (8) nextValidId; reqManagedAccts (17) the burst's managedAccounts. Cancels (25,
90), startApi (71) and reqMarketDataType (59) get nothing, as from TWS. Every request is
logged in :attr:`ReplayGateway.received`; a request the script has no answer for is also
logged in :attr:`ReplayGateway.unanswered`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from tests.replay.layouts import Frame, relay, restamp

_LEN = struct.Struct(">I")
#: Where the request id sits in the requests the gateway answers (outgoing ids).
_REQUEST_ID_AT = {9: 2, 20: 1, 87: 1}
#: Requests TWS never answers.
_SILENT = {25, 59, 71, 90}
_NEW_YORK = ZoneInfo("America/New_York")


def standard_connection_time(now: dt.datetime | None = None) -> str:
    """The connection time of a capture that has none: now, as TWS on a New York host
    prints it (``20230228 17:24:14 EST`` in the nautilus_trader capture; EDT in summer)."""
    local = (now or dt.datetime.now(dt.timezone.utc)).astimezone(_NEW_YORK)
    return f"{local:%Y%m%d %H:%M:%S} {local.tzname()}"


@dataclass
class Script:
    """What the gateway plays.

    Attributes:
        source_version: The server version the recorded frames are laid out for.
        server_version: The highest version the gateway negotiates (TWS's own maximum).
        startup: The burst sent after startApi (managedAccounts, nextValidId, notices).
        answers: Per outgoing message id, the recorded answers in the order they are used.
        connection_time: The handshake's connection time; None for
            :func:`standard_connection_time`.
        connected_at: The UTC instant ``connection_time`` names: the gateway's clock at
            the handshake. None: the clock is the machine's (the standard connection time
            is now).
        lots: The bar answers are a US stock's, whose volume TWS sends in lots of 100
            below server version 175 and in shares from it (see :func:`relay`).
    """

    source_version: int
    server_version: int
    startup: list[Frame]
    answers: dict[int, list[list[Frame]]] = field(default_factory=dict)
    connection_time: str | None = None
    connected_at: dt.datetime | None = None
    lots: bool = False


@dataclass
class Received:
    """One request the gateway read: its connection number and fields."""

    connection: int
    fields: Frame

    @property
    def msg_id(self) -> int:
        """The request's outgoing message id."""
        return int(self.fields[0])


class ReplayGateway:
    """Serves one :class:`Script` on 127.0.0.1; use as a context manager or start/stop."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.host = "127.0.0.1"
        self.port = 0
        #: The server version negotiated with each connection, in order.
        self.negotiated: list[int] = []
        #: The hello text of each connection (``v100..157``).
        self.hellos: list[str] = []
        #: The connection time sent to each connection.
        self.connection_times: list[str] = []
        self.received: list[Received] = []
        self.unanswered: list[Received] = []
        #: Exceptions raised in the server's threads (a test asserts there are none).
        self.failures: list[BaseException] = []
        self._used: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ReplayGateway:
        """Listen on a free port and accept connections in a thread."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(8)
        listener.settimeout(0.05)
        self._listener = listener
        self.port = listener.getsockname()[1]
        accept = threading.Thread(target=self._accept_loop, name="ibdata-sim-replay-accept")
        accept.daemon = True
        self._threads.append(accept)
        accept.start()
        return self

    def stop(self) -> None:
        """Close every socket and join every thread the gateway started."""
        self._stop.set()
        for sock in [self._listener, *self._sockets]:
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in list(self._threads):
            thread.join(5)

    def __enter__(self) -> ReplayGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests(self, msg_id: int) -> list[Frame]:
        """The fields of every request with that outgoing message id, in order."""
        with self._lock:
            return [r.fields for r in self.received if r.msg_id == msg_id]

    # ------------------------------------------------------------------ threads
    def _accept_loop(self) -> None:
        assert self._listener is not None
        number = 0
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            number += 1
            self._sockets.append(conn)
            worker = threading.Thread(
                target=self._serve, args=(conn, number), name=f"ibdata-sim-replay-conn-{number}"
            )
            worker.daemon = True
            self._threads.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        try:
            self._session(conn, number)
        except OSError:
            pass  # the client (or stop()) closed the socket
        except BaseException as exc:  # reported by the test, never swallowed
            self.failures.append(exc)
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _frames(self, conn: socket.socket) -> Iterator[bytes]:
        """Payloads of the frames the client sends, after the ``API\\0`` prefix."""
        conn.settimeout(0.05)
        buf = b""
        prefix_seen = False
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            buf += data
            if not prefix_seen:
                if len(buf) < 4:
                    continue
                if buf[:4] != b"API\0":
                    raise ValueError(f"hello does not start with API\\0: {buf[:16]!r}")
                buf, prefix_seen = buf[4:], True
            while len(buf) >= 4:
                (size,) = _LEN.unpack_from(buf)
                if len(buf) < 4 + size:
                    break
                yield buf[4 : 4 + size]
                buf = buf[4 + size :]

    @staticmethod
    def _send(conn: socket.socket, frames: list[Frame]) -> None:
        data = b""
        for frame in frames:
            payload = b"".join(f.encode("ascii") + b"\0" for f in frame)
            data += _LEN.pack(len(payload)) + payload
        if data:
            conn.sendall(data)

    def _session(self, conn: socket.socket, number: int) -> None:
        script = self.script
        frames = self._frames(conn)
        hello = next(frames).decode("ascii")
        self.hellos.append(hello)
        top = int(hello.split(" ")[0].split("..")[1])
        sv = min(top, script.server_version)
        self.negotiated.append(sv)
        when = script.connection_time or standard_connection_time()
        self.connection_times.append(when)
        self._send(conn, [[str(sv), when]])  # one write, as ibapi 9.81.1 needs
        handshake = time.monotonic()
        startup = relay(script.startup, script.source_version, sv)
        for payload in frames:
            fields = payload.decode("ascii").split("\0")[:-1]
            received = Received(number, fields)
            with self._lock:
                self.received.append(received)
            msg = received.msg_id
            if msg == 71:
                self._send(conn, startup)
            elif msg in _REQUEST_ID_AT:
                answer = self._next_answer(msg)
                if answer is None:
                    self.unanswered.append(received)
                    continue
                req_id = fields[_REQUEST_ID_AT[msg]]
                laid = relay(answer, script.source_version, sv, lots=script.lots)
                self._send(conn, [restamp(f, sv, req_id) for f in laid])
            elif msg == 49:
                answer = self._next_answer(49)
                if script.connected_at is None:
                    now = time.time()
                else:
                    now = script.connected_at.timestamp() + time.monotonic() - handshake
                self._send(conn, answer if answer is not None else [["49", "1", str(int(now))]])
            elif msg == 8:
                ids = [f for f in startup if f[0] == "9"]
                self._send(conn, ids[:1] or [["9", "1", "1"]])
            elif msg == 17:
                self._send(conn, [f for f in startup if f[0] == "15"][:1])
            elif msg not in _SILENT:
                self.unanswered.append(received)

    def _next_answer(self, msg: int) -> list[Frame] | None:
        answers = self.script.answers.get(msg)
        if not answers:
            return None
        with self._lock:
            used = self._used.get(msg, 0)
            self._used[msg] = used + 1
        return answers[min(used, len(answers) - 1)]
