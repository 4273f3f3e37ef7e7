"""One TWS session: the socket, the handshake, a reader and a dispatcher thread.

ibdata owns the socket and its reading; ``ibapi`` encodes every request (``EClient``) and
decodes every message (``Decoder``) except the two large, hot ones of the server versions
ibdata knows: historical bars are parsed straight into columns and contract data straight
into :class:`~ibdata.models.ContractDetails` (newer layouts go through ``ibapi``).
Owning the reader shields users from ibapi 9.81.1's defects:

* its reader drops a burst whose size is an exact multiple of 4096 bytes when the socket
  then stays idle; ours reads whatever arrives and never discards;
* a zero-length frame stalls its reader forever; ours skips it;
* an exception in its decoder kills its message loop; ours fails that one request and goes
  on with the next message.

What TWS sends is checked before a caller sees it: an answer that cannot be decoded, or
that ends a request with another kind's end marker, fails that request with a
:class:`~ibdata.exceptions.RequestError`; a frame that never completes (a truncated or
desynchronised stream) drops the session once a request has timed out waiting behind it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ibapi import decoder as ib_decoder
from ibapi.client import EClient

from ibdata import _convert, _ibapi, _zones
from ibdata._requests import BARS, Pending, RequestTable
from ibdata._wrapper import Wrapper
from ibdata.exceptions import (
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    IBDataError,
    NotConnectedError,
    RequestError,
    error_for,
    is_informational,
)
from ibdata.models import ConnectivityEvent, FarmState

log = logging.getLogger(__name__)

_LEN = struct.Struct(">I")
#: The largest frame accepted from TWS (ibapi's own limit is 0xFFFFFF).
MAX_FRAME = 0xFFFFFF
#: Frames up to this size may be handled by the reader itself when nothing is queued.
INLINE_MAX = 4096
#: Historical data (17) carries start/end strings below this server version; from it they
#: come in historicalDataEnd (108).
HISTORICAL_DATA_END = 196
#: From this server version an error message has no version field and ends in its time.
ERROR_TIME = 194
IN_HISTORICAL_DATA_END = 108
#: historicalDataUpdate: the forming bar of a keepUpToDate subscription.
IN_HISTORICAL_DATA_UPDATE = 90

_FARM_STATES = {
    2103: FarmState.BROKEN,
    2104: FarmState.OK,
    2105: FarmState.BROKEN,
    2106: FarmState.OK,
    2107: FarmState.INACTIVE,
    2108: FarmState.INACTIVE,
    2119: FarmState.CONNECTING,
    2157: FarmState.BROKEN,
    2158: FarmState.OK,
}
_CONNECTIVITY = {1100, 1101, 1102, 1300, 2110}
#: Where the request id sits in messages that carry one: msg id -> field index. An error
#: message (4) whose code or text cannot be read still fails the request it names at once.
_REQ_ID_INDEX = {4: 2, 17: 1, 52: 2, 88: 1, 90: 1, 106: 1, 108: 1}


def _req_id_index(msg_id: int, server_version: int) -> int | None:
    """Where the request id of a message sits at ``server_version``, if it has one."""
    if msg_id == 10:
        return 2 if server_version < 164 else 1
    if msg_id == 4 and server_version >= ERROR_TIME:
        return 1
    return _REQ_ID_INDEX.get(msg_id)


def _error_fields(server_version: int) -> int:
    """How many fields an error message (4) has at ``server_version``."""
    if server_version >= ERROR_TIME:
        return 6  # id, reqId, code, text, advancedOrderRejectJson, errorTime
    return 6 if server_version >= 166 else 5


class LiveSink(Protocol):
    """Where a live subscription's messages go once its first answer has arrived: its
    historicalDataUpdate bars, and errors TWS reports for its request id afterwards.
    Called on the session's dispatcher (or reader) thread: it must only queue."""

    def update(self, columns: _convert.BarColumns) -> None: ...
    def error(self, code: int, text: str) -> None: ...


class ProtocolError(Exception):
    """TWS broke the framing; the session cannot continue."""


class RequestNotSentError(NotConnectedError):
    """Nothing of the request reached TWS: the session was gone before it could be sent.

    The client waits for the next session (within the call's deadline) and sends it again.
    """


#: TCP keepalive: probe after 30 s of silence, every 10 s, give up after 3 unanswered
#: probes, so a peer that vanished without a FIN or RST (a NAT or firewall dropping the
#: flow, a host powered off) is noticed in about a minute and the session is replaced.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES = 30, 10, 3


def _keep_alive(sock: socket.socket) -> None:
    """Turn TCP keepalive on, with short timers where the platform lets us set them."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),  # Linux, recent Windows
        ("TCP_KEEPALIVE", KEEPALIVE_IDLE),  # macOS's name for the idle time
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


class _Framer:
    """Cuts TWS's byte stream into frame payloads; zero-length frames are skipped."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held of a frame that has not arrived whole yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        buf = self._buf
        out: list[bytes] = []
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > MAX_FRAME:
                raise ProtocolError(f"TWS sent a frame of {size} bytes")
            if len(buf) - pos - 4 < size:
                break
            if size:
                out.append(bytes(buf[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        if pos:
            del buf[:pos]
        return out


class _Transport:
    """What ``EClient`` calls ``conn``: sends under a lock; ibdata does the reading."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self.open = True

    def sendMsg(self, msg: bytes) -> int:  # noqa: N802  # ibapi's name
        with self._lock:
            if not self.open:
                raise OSError("not connected")
            self._sock.sendall(msg)
        return len(msg)

    def isConnected(self) -> bool:  # noqa: N802
        return self.open

    def disconnect(self) -> None:
        self.open = False


def _farm_name(text: str) -> str:
    if ":" in text:
        return text.rsplit(":", 1)[1].strip()
    if "demand." in text:
        return text.rsplit("demand.", 1)[1].strip()
    return text.strip()


#: How long a new session waits, once ready, for TWS's current time when its login zone
#: needs TWS's clock (the client's disagrees with the connection time).
TWS_CLOCK_GRACE = 1.0


class Connection:
    """One TWS API session. Create it, :meth:`open` it once, :meth:`close` it once.

    ``on_lost`` is called (from the reader thread) when the session drops on its own;
    ``on_notice(code, text)`` for every connectivity and farm notice (1100-1102, 2103-2106
    ...), from the thread that reads them. ``live`` maps the request ids of live
    subscriptions to their :class:`LiveSink`.
    ``previous_zone`` is the login zone an earlier session to the same TWS learned; a
    reconnect keeps it when TWS names its zone alike (see :meth:`SessionZone.inherit`).
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        *,
        on_lost: Callable[[Connection], None] | None = None,
        on_notice: Callable[[int, str], None] | None = None,
        previous_zone: _zones.SessionZone | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.table = RequestTable()
        self.server_version: int | None = None
        self.conn_time = ""
        #: The login zone, for times TWS gives in it; made when the handshake completes.
        self.login_tz = _zones.SessionZone("", None)
        self._reply_at: dt.datetime | None = None  # the client's clock at the reply
        self._reply_mono = 0.0
        self._awaiting_tws_clock = False
        self._previous_zone = previous_zone
        self.accounts: tuple[str, ...] = ()
        self.next_order_id: int | None = None
        self.farms: dict[str, FarmState] = {}
        self.last_event: ConnectivityEvent | None = None
        self.connected_since: dt.datetime | None = None
        self.degraded = False
        self._on_lost = on_lost
        self._on_notice = on_notice
        #: Live subscriptions (keepUpToDate) by request id.
        self.live: dict[int, LiveSink] = {}
        self._cond = threading.Condition()
        self._ready = False
        self._closed = False
        self._lost: BaseException | None = None
        self._refusal: tuple[int, str] | None = None
        self._sock: socket.socket | None = None
        self._transport: _Transport | None = None
        self._client: EClient | None = None
        self._decoder: Any = None
        self._send_lock = threading.Lock()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._handling = threading.Lock()  # held while one message is being handled
        self._order = threading.Lock()  # guards _pending
        self._pending = 0  # frames queued for the dispatcher and not yet handled
        self._threads: list[threading.Thread] = []
        # Since when the reader has held an incomplete frame without completing any.
        self._partial_since: float | None = None

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        """True once TWS sent nextValidId and until the session drops or is closed."""
        with self._cond:
            return self._ready and self._lost is None and not self._closed

    @property
    def lost_reason(self) -> str:
        """Why the session dropped ("" while it has not)."""
        with self._cond:
            return "" if self._lost is None else str(self._lost)

    @property
    def alive(self) -> bool:
        """True while the socket is open."""
        return self._transport is not None and self._transport.open

    # ------------------------------------------------------------------ opening
    def open(self, timeout: float) -> None:
        """Connect, handshake, start the API and wait for TWS to be ready.

        Blocks until ready or ``timeout`` seconds pass.

        Raises:
            ConnectTimeoutError: not ready in time.
            ConnectError: refused, handshake failed, or the client id is in use (326).
        """
        deadline = time.monotonic() + timeout
        try:
            sock = socket.create_connection((self.host, self.port), timeout=max(timeout, 0.001))
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                f"no TCP connection to {self.host}:{self.port} within {timeout} s"
            ) from exc
        except OSError as exc:
            raise ConnectError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _keep_alive(sock)
        self._sock = sock
        try:
            framer = _Framer()
            extra = self._handshake(sock, framer, deadline)
            self._start(sock, framer, extra)
            self._wait_ready(deadline, timeout)
        except BaseException:
            self.close()
            raise

    def _handshake(self, sock: socket.socket, framer: _Framer, deadline: float) -> list[bytes]:
        hello = _ibapi.hello()
        sock.sendall(b"API\0" + _LEN.pack(len(hello)) + hello)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectTimeoutError(
                    f"{self.host}:{self.port} accepted the connection but sent no handshake "
                    "reply in time (is it TWS / IB Gateway with the API enabled?)"
                )
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise ConnectError(f"handshake with {self.host}:{self.port} failed: {exc}") from exc
            if not data:
                raise ConnectError(
                    f"{self.host}:{self.port} closed the connection during the handshake "
                    "(too many clients, or not a TWS API port?)"
                )
            try:
                frames = framer.feed(data)
            except ProtocolError as exc:
                raise ConnectError(f"handshake with {self.host}:{self.port}: {exc}") from exc
            for i, payload in enumerate(frames):
                fields = payload.split(b"\0")[:-1]
                if len(fields) == 2:
                    self._reply_at = dt.datetime.now(dt.timezone.utc)
                    self._reply_mono = time.monotonic()
                    self.server_version = self._server_version(fields[0])
                    self.conn_time = fields[1].decode("ascii", "backslashreplace")
                    return frames[i + 1 :]

    def _server_version(self, text: bytes) -> int:
        """The server version TWS answered; it must lie in the range ibdata offered.

        Raises:
            ConnectError: not a number, or a version ibdata did not offer (a server that
                ignores the client's range would send messages ibdata cannot decode).
        """
        try:
            version = int(text)
        except ValueError:
            raise ConnectError(
                f"{self.host}:{self.port} answered the handshake with "
                f"{text[:20]!r}, not a server version"
            ) from None
        top = _ibapi.release().max_server_version
        if not _ibapi.MIN_SERVER_VERSION <= version <= top:
            raise ConnectError(
                f"{self.host}:{self.port} answered server version {version}; ibdata with "
                f"ibapi {_ibapi.release().version} speaks {_ibapi.MIN_SERVER_VERSION} to {top}"
            )
        return version

    def _start(self, sock: socket.socket, framer: _Framer, extra: list[bytes]) -> None:
        assert self.server_version is not None
        sock.settimeout(None)
        self.login_tz = _zones.SessionZone(self.conn_time, self._reply_at)
        if self._previous_zone is not None:
            self.login_tz.inherit(self._previous_zone)
            self._previous_zone = None
        log.info(
            "TWS login time zone of %r: %s",
            self.conn_time,
            _zones.describe(self.login_tz.resolution),
        )
        transport = _Transport(sock)
        wrapper = Wrapper(self)
        client = EClient(wrapper)
        client.host, client.port, client.clientId = self.host, self.port, self.client_id
        client.conn = transport
        client.serverVersion_ = self.server_version
        client.connTime = self.conn_time
        client.setConnState(EClient.CONNECTED)
        self._decoder = ib_decoder.Decoder(wrapper, self.server_version)
        client.decoder = self._decoder
        self._client, self._transport = client, transport
        self._enqueue(extra)
        name = f"{self.host}:{self.port}#{self.client_id}"
        self._threads = [
            threading.Thread(
                target=self._read_loop, args=(sock, framer), name=f"ibdata-reader-{name}"
            ),
            threading.Thread(target=self._dispatch_loop, name=f"ibdata-dispatch-{name}"),
        ]
        for t in self._threads:
            t.daemon = True
            t.start()
        with self._send_lock:
            client.startApi()
            if self.login_tz.wants_tws_clock:
                # The client's clock is no measure of the connection time (a simulator on a
                # clock of its own, or a wrong clock here): ask TWS for its own time.
                self._awaiting_tws_clock = True
                client.reqCurrentTime()

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        with self._cond:
            while not self._ready:
                if self._refusal is not None:
                    code, text = self._refusal
                    raise ConnectError(f"TWS refused client id {self.client_id}: {text}", code=code)
                if self._lost is not None:
                    raise ConnectError(
                        f"{self.host}:{self.port} closed the session before it was ready "
                        f"({self._lost})"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ConnectTimeoutError(
                        f"TWS at {self.host}:{self.port} did not start the API session "
                        f"within {timeout} s"
                    )
                self._cond.wait(left)
            grace = min(deadline, time.monotonic() + TWS_CLOCK_GRACE)
            while self._awaiting_tws_clock and self._lost is None and not self._closed:
                left = grace - time.monotonic()
                if left <= 0:
                    log.info(
                        "TWS did not tell its current time within %.1f s; its login zone "
                        "stays as its name alone gives it until it does",
                        TWS_CLOCK_GRACE,
                    )
                    break
                self._cond.wait(left)
        self.connected_since = dt.datetime.now(dt.timezone.utc)

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Close the socket and stop the threads; pending requests fail. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if self._transport is not None:
            self._transport.disconnect()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        self.table.fail_all(
            lambda p: ConnectionLostError(
                f"the session was closed while this request ({p.kind}) was in flight",
                req_id=p.req_id,
            )
        )
        me = threading.current_thread()
        for t in self._threads:
            # A session TWS closes at once can be closed by its reader before _start has
            # started the dispatcher; that one then finds the reader's end marker and ends.
            if t is not me and t.ident is not None:
                t.join(5)

    def stalled(self, seconds: float) -> bool:
        """True when the reader has waited ``seconds`` or more on one frame that never
        completes, with no complete message in between.

        TWS writes each message whole, so a request that timed out while this is true
        waited behind a truncated or desynchronised stream, which can never recover.
        """
        since = self._partial_since
        return since is not None and time.monotonic() - since >= seconds

    def drop(self, why: str) -> None:
        """End a session whose stream is broken: pending requests fail with
        ConnectionLostError and ``on_lost`` is called, as when TWS drops the socket."""
        self._connection_lost(why)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader

    def _connection_lost(self, why: str) -> None:
        with self._cond:
            if self._closed or self._lost is not None:
                return
            self._lost = ConnectionLostError(why)
            self._cond.notify_all()
        if self._transport is not None:
            self._transport.disconnect()
        n = self.table.fail_all(
            lambda p: ConnectionLostError(
                f"connection to TWS lost while this request ({p.kind}) was in flight: {why}",
                req_id=p.req_id,
            )
        )
        log.warning(
            "connection to %s:%d lost (%s); requests failed: %d", self.host, self.port, why, n
        )
        if self._on_lost is not None:
            self._on_lost(self)

    # ------------------------------------------------------------------ threads
    def _read_loop(self, sock: socket.socket, framer: _Framer) -> None:
        why = "TWS closed the connection"
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                frames = framer.feed(data)
                if not framer.pending:
                    self._partial_since = None
                elif frames or self._partial_since is None:
                    self._partial_since = time.monotonic()
                self._enqueue(frames)
                del frames
        except ProtocolError as exc:
            why = str(exc)
        except OSError as exc:
            why = f"socket error: {exc}"
        finally:
            self._queue.put(None)
        self._connection_lost(why)

    def _enqueue(self, frames: list[bytes]) -> None:
        """Hand frames to the dispatcher, or handle a small one at once when nothing is
        waiting: that saves a thread switch on every small answer, and the order of messages
        is kept because the reader handles inline only while no frame is queued or being
        handled. (A separate function, so no reference to a large frame outlives it.)"""
        for frame in frames:
            if len(frame) <= INLINE_MAX and self._handling.acquire(blocking=False):
                with self._order:
                    inline = self._pending == 0
                try:
                    if inline:
                        self._handle(frame)
                        continue
                finally:
                    self._handling.release()
            with self._order:
                self._pending += 1
            self._queue.put(frame)

    def _handle(self, payload: bytes) -> None:
        try:
            self._dispatch(payload)
        except Exception as exc:
            self._undecodable(payload, exc)

    def _dispatch_loop(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is None:
                return
            with self._handling:
                self._handle(payload)
                with self._order:
                    self._pending -= 1
            payload = None  # do not keep a large frame alive until the next message

    def _dispatch(self, payload: bytes) -> None:
        fields = payload.split(b"\0")
        fields.pop()
        msg_id = int(fields[0])
        sv = self.server_version or 0
        if msg_id == 17:
            # The hot message: parsed straight into columns, not through ibapi's objects.
            if sv < HISTORICAL_DATA_END:
                req_id, columns = _convert.parse_historical_data(fields)
                self.on_end(req_id, BARS, columns)
            else:
                req_id, columns = _convert.parse_historical_data(fields, with_window=False)
                self.table.add_item(req_id, columns)
            return
        if msg_id == IN_HISTORICAL_DATA_UPDATE:
            req_id, columns = _convert.parse_historical_update(fields)
            sink = self.live.get(req_id)
            if sink is not None:
                sink.update(columns)
            else:
                log.debug("historicalDataUpdate for request %d, which is not live", req_id)
            return
        if msg_id == IN_HISTORICAL_DATA_END and sv >= HISTORICAL_DATA_END and len(fields) == 4:
            start, end = (f.decode("ascii", "replace") for f in fields[2:4])
            self.on_end(int(fields[1]), BARS, (start, end))
            return
        if msg_id == 10 and sv < _convert.CONTRACT_DATA_FAST_BELOW:
            req_id, details = _convert.parse_contract_data(fields, sv)
            self.table.add_item(req_id, details)
            return
        if msg_id == 4 and len(fields) < _error_fields(sv):
            # ibapi logs and drops an error message of the wrong length: its request would
            # wait for its timeout instead of failing now
            raise ValueError(f"an error message of {len(fields)} fields")
        _ibapi.interpret(self._decoder, fields, msg_id)

    def _undecodable(self, payload: bytes, exc: Exception) -> None:
        """A message ibdata or ibapi could not decode: fail its request, keep the session."""
        fields = payload.split(b"\0")
        log.error("undecodable message from TWS %r: %s", payload[:200], exc)
        try:
            msg_id = int(fields[0])
            index = _req_id_index(msg_id, self.server_version or 0)
            if index is None or index >= len(fields):
                return
            req_id = int(fields[index])
        except ValueError:
            return
        self.table.fail(
            req_id,
            RequestError(0, f"TWS sent a message ibdata could not decode: {exc}", req_id),
        )

    # ------------------------------------------------------------------ requests
    def request(
        self,
        kind: str,
        send: Callable[[EClient, int], None],
        *,
        build: Callable[[list[Any], Any], Any],
        cancel: Callable[[EClient, int], None] | None = None,
    ) -> Pending[Any]:
        """Register a request and send it; the returned future settles exactly once.

        ``build(items, extra)`` turns what arrived (and the end marker's data) into the
        result. ``cancel`` is what to send IB if the caller gives up.

        Raises:
            RequestNotSentError: the session is not ready, or it broke as the request was
                being written (the session is then dropped).
        """
        client = self._client
        if client is None or not self.ready:
            raise RequestNotSentError(f"not connected to TWS at {self.host}:{self.port}")

        def do_cancel() -> None:
            if cancel is not None and self.ready:
                with contextlib.suppress(OSError), self._send_lock:
                    cancel(client, p.req_id)

        p = self.table.open(kind, do_cancel)
        p.meta = build
        try:
            with self._send_lock:
                send(client, p.req_id)
        except OSError as exc:
            self.table.abandon(p.req_id)
            self.drop(f"sending {kind} failed: {exc}")
            raise RequestNotSentError(f"sending {kind} to TWS failed: {exc}") from exc
        if self._lost is not None and self.table.abandon(p.req_id) is not None:
            # The session was lost (and its requests failed) before this one was in the
            # table: no answer can come on this socket, so it goes out on the next session.
            raise RequestNotSentError(f"the session to TWS was lost as {kind} was sent")
        return p

    def send_cancel(self, req_id: int, cancel: Callable[[EClient, int], None]) -> None:
        """Send ``cancel`` for ``req_id`` if the session is still ready (best effort: a
        session that has gone took its requests with it)."""
        client = self._client
        if client is not None and self.ready:
            with contextlib.suppress(OSError), self._send_lock:
                cancel(client, req_id)

    # ------------------------------------------------------------------ callbacks
    def on_end(self, req_id: int, kind: str, extra: Any = None) -> None:
        """The end marker (or the single answer) of a ``kind`` request arrived.

        The request fails with a RequestError instead of returning a result when the
        answer is of another kind or cannot be turned into one: a malformed answer never
        reaches the caller as data, nor as a ValueError that looks like a bad argument.
        """

        def build(p: Pending[Any]) -> Any:
            if p.kind != kind:
                raise RequestError(
                    0, f"TWS ended this {p.kind} request with a {kind} answer", req_id
                )
            try:
                return p.meta(p.items, extra)
            except IBDataError:
                raise
            except Exception as exc:
                raise RequestError(
                    0, f"TWS sent an answer ibdata could not decode: {exc}", req_id
                ) from exc

        self.table.finish(req_id, build)

    def on_error(self, req_id: int, code: int, text: str) -> None:
        """Route an error message: a request's failure, a notice, or a session event."""
        if code in _FARM_STATES:
            self.farms[_farm_name(text)] = _FARM_STATES[code]
            log.info("TWS notice %d: %s", code, text)
            self._notice(code, text)
            return
        if code in _CONNECTIVITY:
            self.last_event = ConnectivityEvent(code, text, dt.datetime.now(dt.timezone.utc))
            self.degraded = code in (1100, 2110)
            log.warning("TWS connectivity %d: %s", code, text)
            self._notice(code, text)
            return
        if code == 326 or (req_id == -1 and code in (502, 507)):
            with self._cond:
                self._refusal = (code, text)
                self._cond.notify_all()
            log.warning("TWS refused the session: %d %s", code, text)
            return
        if is_informational(code):
            log.info("TWS notice %d for request %d: %s", code, req_id, text)
            return
        if req_id >= 0 and self.table.fail(req_id, error_for(code, text, req_id)):
            return
        sink = self.live.get(req_id) if req_id >= 0 else None
        if sink is not None:
            sink.error(code, text)
            return
        log.warning("TWS error %d (request %d): %s", code, req_id, text)

    def _notice(self, code: int, text: str) -> None:
        if self._on_notice is not None:
            try:
                self._on_notice(code, text)
            except Exception:  # a listener's failure must not cost the session
                log.exception("handling TWS notice %d failed", code)

    def on_next_valid_id(self, order_id: int) -> None:
        """nextValidId: the session is ready for requests."""
        with self._cond:
            self.next_order_id = order_id
            self._ready = True
            self._cond.notify_all()

    def on_managed_accounts(self, accounts: str) -> None:
        """managedAccounts: the comma-separated account list."""
        self.accounts = tuple(a for a in accounts.split(",") if a)

    def on_current_time(self, epoch: int) -> None:
        """currentTime: TWS's clock, asked for when the login zone needs it; else logged."""
        log.debug("TWS time %s", epoch)
        if not self._awaiting_tws_clock:
            return
        # TWS's UTC time when the connection time arrived: whole seconds (+0.5 s on
        # average) less the time since then.
        elapsed = time.monotonic() - self._reply_mono
        at_reply = dt.datetime.fromtimestamp(epoch + 0.5 - elapsed, dt.timezone.utc)
        self.login_tz.use_tws_clock(at_reply)
        with self._cond:
            self._awaiting_tws_clock = False
            self._cond.notify_all()
