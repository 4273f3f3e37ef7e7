"""The simulator: a TCP server that speaks the TWS API socket protocol.

Threads: one accepts connections, one runs timed work (live bar updates, outage scripts),
and each connection has a reader (parses and answers requests) and a writer (sends queued
frames, applies latency, keeps ``ibapi``'s 4096-byte reader bug from losing data, and
drops clients that stop reading).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import heapq
import itertools
import logging
import select
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence

import attrs

from ibdata.pacing import PacedRequest, PacingRules, PacingTracker
from ibdata.sim import _bars, _history, _login, _refusals
from ibdata.sim import _messages as m
from ibdata.sim._catalog import Catalog
from ibdata.sim._clock import Clock, SystemClock
from ibdata.sim._framing import (
    MAX_CLIENT_FRAME,
    PREFIX,
    Field,
    FrameReader,
    ProtocolError,
    encode,
    parse_hello,
    split_fields,
)
from ibdata.sim._model import ContractQuery, SimContract, SimError, zone
from ibdata.sim._observe import Received, ReceivedLog, SimStats

log = logging.getLogger("ibdata.sim")

HMDS = "Historical Market Data Service error message:"
TEXT_PACING = HMDS + "Historical data request pacing violation"
TEXT_MAX_OPEN = (
    "Error processing request:-'bS' : cause - "
    "Only 50 simultaneous API historical data requests allowed."
)
TEXT_DUPLICATE_ID = (
    "Unable to connect as the client id is already in use. Retry with a unique client id."
)
TEXT_NOT_FOUND = "No security definition has been found for the request"
TEXT_DUPLICATE_TICKER = "Duplicate ticker ID for API historical data query."
TEXT_CONNECTIVITY = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
}

#: Texts used by :meth:`Simulator.fail_next` when no text is given.
DEFAULT_ERROR_TEXTS: dict[int, str] = {
    162: HMDS + "HMDS query returned no data",
    200: TEXT_NOT_FOUND,
    320: "Error reading request.",
    321: "Error validating request.-'bS' : cause - invalid request",
    322: TEXT_MAX_OPEN,
    354: "Requested market data is not subscribed.",
    366: "No historical data query found for ticker id",
    504: "Not connected",
    10168: "Requested market data is not subscribed. Delayed market data is not enabled.",
    10197: "No market data during competing live session",
}

TWS_FARMS: tuple[tuple[int, str], ...] = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2104, "Market data farm connection is OK:usfuture"),
    (2104, "Market data farm connection is OK:eufarm"),
    (2104, "Market data farm connection is OK:cashfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2106, "HMDS data farm connection is OK:euhmds"),
    (2158, "Sec-def data farm connection is OK:secdefil"),
)
#: IB Gateway's start-up notices, as in every real IB Gateway capture: the market-data farm
#: OK (2104), the historical farm dormant until used (2107), the sec-def farm OK (2158).
GATEWAY_FARMS: tuple[tuple[int, str], ...] = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2107, "HMDS data farm connection is inactive but should be available upon demand.ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefil"),
)
#: What an IB Gateway says when a historical farm connects on first use (⚠ inferred: real
#: IB Gateway sessions started after one list these farms as 2106, "OK").
TEXT_HMDS_OK = "HMDS data farm connection is OK:"
TEXT_HMDS_BROKEN = "HMDS data farm connection is broken:"
#: The error each keepUpToDate subscription gets when TWS's nightly reset ends it (⚠ the text
#: of users' reports; not in a capture).
TEXT_LIVE_DISCONNECTED = "Failed to request live updates (disconnected)."


def hmds_farm(contract: SimContract) -> str:
    """The historical-data farm of a contract: cashhmds (FX), euhmds (European markets) or
    ushmds (the rest)."""
    if contract.sec_type == "CASH":
        return "cashhmds"
    if contract.currency in ("EUR", "GBP", "CHF") or contract.exchange in ("EUREX", "ICEEU"):
        return "euhmds"
    return "ushmds"


def _no_permission_text(contract: SimContract) -> str:
    """TWS's 162 text for data without a market-data permission."""
    return (
        f"{HMDS}No market data permissions for {contract.permission_exchange} {contract.sec_type}"
    )


def _instrument_matcher(instrument: str | int) -> Callable[[SimContract], bool]:
    """A test for contracts named by ``instrument``: a symbol (any case) or a conId.

    Raises:
        TypeError: ``instrument`` is neither text nor an int.
        ValueError: ``instrument`` is empty.
    """
    if isinstance(instrument, bool) or not isinstance(instrument, str | int):
        raise TypeError(f"instrument must be a symbol or a conId, got {instrument!r}")
    name = str(instrument).strip().upper()
    if not name:
        raise ValueError("instrument must not be empty")
    return lambda c: c.symbol.upper() == name or str(c.con_id) == name


def _check_farm(farm: str) -> None:
    if not isinstance(farm, str) or not farm.isascii() or not farm.isalnum():
        raise ValueError(f"farm must be a farm name such as 'ushmds', got {farm!r}")


BROKEN_FARMS: tuple[tuple[int, str], ...] = (
    (2103, "Market data farm connection is broken:usfarm"),
    (2105, TEXT_HMDS_BROKEN + "ushmds"),
    (2157, "Sec-def data farm connection is broken:secdefil"),
)
RESTORED_FARMS: tuple[tuple[int, str], ...] = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, TEXT_HMDS_OK + "ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefil"),
)
#: What TWS's nightly reset says at its start and at its end (before 1102).
RESET_BROKEN: tuple[tuple[int, str], ...] = BROKEN_FARMS[:2]
RESET_RESTORED: tuple[tuple[int, str], ...] = RESTORED_FARMS[:2]

#: Complete bars a live subscription sends at most in one go when its timer fell behind the
#: simulator's clock by many bars (a machine that slept, an extreme clock speed); older ones
#: are skipped.
MAX_CATCH_UP = 100

#: Pause between the two halves of a write split to dodge ibapi's 4096-byte reader bug. The
#: reader must have taken the first half before the second arrives; 30 ms proved too short
#: when the client shares a busy interpreter, so the rare split write pays 200 ms.
SPLIT_PAUSE = 0.2

#: IB's published rules, enforced unless a simulator is given others (or None).
DEFAULT_PACING = PacingRules()

#: Bytes a connection may have queued for a client that does not read before it is dropped.
MAX_QUEUED_BYTES = 64 * 1024 * 1024
#: Seconds a blocked send may last before the client is considered dead and dropped.
SEND_TIMEOUT = 10.0


@attrs.define
class _Failure:
    code: int
    text: str | None
    request: str | None
    times: int


@attrs.define(eq=False)
class _Out:
    due: float
    data: bytes
    key: tuple[int, int] | None = None  # (connection, req_id) of the request it answers
    held: bool = False  # data frames wait while an outage is being played
    on_sent: Callable[[], None] | None = None


@attrs.define(eq=False)
class _Subscription:
    """A keepUpToDate request being served: live, or paused while its farm or IB's
    connectivity is down (both read from the simulator), or stalled for good."""

    key: tuple[int, int]
    session: _Session
    contract: SimContract
    request: m.HistoricalRequest
    farm: str
    stalled: bool = False
    ended: bool = False  # cancelled or dropped: its timer must not run again
    handle: int = 0  # the subscription's one timer
    next_end: dt.datetime | None = None  # end of the bar in progress (simulator time)
    next_periodic: float = 0.0  # time.monotonic() of the next periodic update


def _clock_speed(clock: Clock) -> float | None:
    """Simulator seconds per wall second of a clock that runs: 1 for the wall clock, the
    ``speed`` of a ScaledClock (or of any clock with a positive ``speed``); None for clocks
    that stand still or move only when told."""
    if isinstance(clock, SystemClock):
        return 1.0
    speed = getattr(clock, "speed", None)
    if isinstance(speed, int | float) and not isinstance(speed, bool) and speed > 0:
        return float(speed)
    return None


class Simulator:
    """A fake TWS / IB Gateway speaking the real socket protocol (server versions 157-200).

    Start it with :meth:`start` or as a context manager; it serves from background threads
    until :meth:`stop`. Every client that speaks the TWS API (``ibapi``, ``ib_async``,
    ibdata's own client) connects to :attr:`port` as it would to TWS.

    Live bars: a reqHistoricalData with keepUpToDate is answered with its bars, then
    historicalDataUpdate messages, formatted as the bars of historicalData (the bar count
    included): every ``update_interval`` seconds the bar in progress (none while the market
    is closed) and, when the clock runs (:class:`SystemClock`, :class:`ScaledClock`), at
    each bar's end (a session's close included) the complete bar, exactly as a later
    request returns it, followed by the new bar in progress. Faults act on them:
    :meth:`connectivity_lost`, :meth:`hmds_farm_broken` pause them,
    :meth:`connectivity_restored` and :meth:`hmds_farm_ok` resume them (bars that ended
    meanwhile are never sent as updates), :meth:`connectivity_restored` with
    ``data_lost``, :meth:`nightly_reset`, :meth:`end_subscriptions` and
    :meth:`revoke_permission` drop them, :meth:`stall_subscriptions` silences them for good;
    :attr:`live_subscriptions` counts those held.

    Args:
        host: address to listen on; loopback by default.
        port: TCP port; 0 picks a free one (read it back from :attr:`port`).
        server_version: highest server version offered (157-200: 200 is the last one
            whose messages are all text); each client gets ``min(its maximum,
            server_version)``.
        gateway: behave like IB Gateway: its start-up notices (2104, 2107 ushmds dormant,
            2158) instead of TWS's, and a historical farm reported connected (2106) on its
            first use; later sessions get 2106 for the farms already in use.
        latency: seconds added before every response (see :meth:`set_latency`).
        pacing: IB's historical-data pacing rules to enforce, or None to enforce none
            (see :meth:`set_pacing`).
        clock: the simulator's notion of "now"; the wall clock by default.
        accounts: account codes sent in managedAccounts.
        no_permission: symbols or conIds whose historical data is refused with 162
            "No market data permissions".
        catalog: the instruments served; :meth:`Catalog.default` for the clock's date if None.
        login_tz: IANA name of the TWS login time zone: used for the connection time,
            zone-less end dates and (below server version 174) intraday bar times.
        login_tz_names: how the connection time names the login zone: ``"short"``, the
            IANA abbreviation (``GMT``, ``BST``, ``CST``), or ``"long"``, Java's English long
            name (``Greenwich Mean Time``, ``British Summer Time``, ``China Standard
            Time``), which the simulator has only for the zones listed in the simulator
            docs (others raise ValueError). Real TWS sends either.
        max_clients: simultaneous connections served; the next one is closed at once.
        update_interval: seconds (wall time) between the periodic historicalDataUpdate
            messages of a keepUpToDate subscription; those at a bar's end come on top.
        max_frame: largest frame accepted from a client before it is dropped.
        send_timeout: seconds a blocked write to a client may last before the client is
            considered dead (not reading) and dropped.
        max_queued_bytes: bytes of responses a client may leave unread before it is dropped.
        bar_cache_bytes: memory for encoded bars of finished sessions (0 turns the cache
            off); answers are the same bytes either way, only faster.
        window_semantics: how a request's duration becomes bars and the start/end it
            reports: ``"real"`` (what real TWS does: durations counted in trading time,
            bars overlapping the window included and the last cut at the end, the start
            reported as end minus the duration) or ``"sessions"`` (the simulator's earlier
            model: ``N D`` starts at the N-th last session, bars must start in the window).
            See the simulator docs.
        price_format: how prices are written: ``"tick"`` padded to the tick's decimals
            (``254.20``, as a live capture at server version 200), ``"four"`` to at least
            four (``182.9400``, as captures of 2023 and 2024) or ``"short"`` (``254.2``).
        volume_units: ``"auto"`` (real TWS: US stocks in lots of 100 below server version
            175, whole lots below 163 and with two decimals from 163; shares otherwise) or
            ``"shares"`` (always shares).
        api_time_zone: TWS's "Send instrument-specific attributes for dual-mode API
            client in" setting, for date-times from server version 174 (intraday bar dates,
            a bars answer's window, futures' last trade times): ``"instrument"`` (the
            exchange's zone), ``"operator"`` (the login zone) or ``"utc"``
            (``yyyymmdd-hh:mm:ss``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        server_version: int = m.MAX_SERVER_VERSION,
        gateway: bool = False,
        latency: float = 0.0,
        pacing: PacingRules | None = DEFAULT_PACING,
        clock: Clock | None = None,
        accounts: Sequence[str] = ("DU1234567",),
        no_permission: Iterable[str | int] = (),
        catalog: Catalog | None = None,
        login_tz: str = "UTC",
        login_tz_names: str = "short",
        max_clients: int = 32,
        update_interval: float = 5.0,
        max_frame: int = MAX_CLIENT_FRAME,
        send_timeout: float = SEND_TIMEOUT,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        bar_cache_bytes: int = 64 * 1024 * 1024,
        window_semantics: str = "real",
        price_format: str = "tick",
        volume_units: str = "auto",
        api_time_zone: str = "instrument",
    ) -> None:
        if not m.MIN_SERVER_VERSION <= server_version <= m.MAX_SERVER_VERSION:
            raise ValueError(
                f"server_version must be {m.MIN_SERVER_VERSION}..{m.MAX_SERVER_VERSION}, "
                f"got {server_version!r}"
            )
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency!r}")
        if not accounts or any(not a or "," in a or not a.isascii() for a in accounts):
            raise ValueError(f"accounts must be non-empty ASCII codes, got {accounts!r}")
        if max_clients < 1:
            raise ValueError(f"max_clients must be >= 1, got {max_clients!r}")
        if update_interval <= 0:
            raise ValueError(f"update_interval must be > 0, got {update_interval!r}")
        zone(login_tz)  # raises for an unknown zone
        _login.check_style(login_tz_names, login_tz)
        if window_semantics not in _history.WINDOW_SEMANTICS:
            raise ValueError(
                f"window_semantics must be one of {_history.WINDOW_SEMANTICS}, "
                f"got {window_semantics!r}"
            )
        self.window_semantics = window_semantics
        for name, value, legal in (
            ("price_format", price_format, _bars.PRICE_FORMATS),
            ("volume_units", volume_units, _bars.VOLUME_UNITS),
            ("api_time_zone", api_time_zone, _bars.API_TIME_ZONES),
        ):
            if value not in legal:
                raise ValueError(f"{name} must be one of {legal}, got {value!r}")
        self.price_format = price_format
        self.volume_units = volume_units
        self.api_time_zone = api_time_zone
        self.host = host
        self._requested_port = port
        self.server_version = server_version
        self.gateway = gateway
        self.clock: Clock = clock or SystemClock()
        self.accounts = tuple(accounts)
        self.login_tz = login_tz
        self.login_tz_names = login_tz_names
        self.max_clients = max_clients
        self.update_interval = update_interval
        self.max_frame = max_frame
        self.send_timeout = send_timeout
        self.max_queued_bytes = max_queued_bytes
        self.pacing = pacing
        self._tracker = PacingTracker(pacing) if pacing is not None else None
        self._open_keys: set[tuple[int, int]] = set()
        self.catalog = catalog if catalog is not None else Catalog.default(self.clock.now().date())
        self._no_permission = {str(x).upper() for x in no_permission}
        self.received = ReceivedLog()

        self._lock = threading.RLock()
        self._latency = latency
        self._sessions: dict[int, _Session] = {}
        self._every_session: weakref.WeakSet[_Session] = weakref.WeakSet()
        self._conn_numbers = itertools.count(1)
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._running = False
        self._refusing = False
        self._deaf = False
        self._outage = False
        self._failures: list[_Failure] = []
        self._port = 0
        self._counters: collections.Counter[str] = collections.Counter()
        self._scheduler = _Scheduler()
        self._subs: dict[tuple[int, int], _Subscription] = {}
        self._stalling = False
        self._broken_hmds: set[str] = set()
        self._bar_cache = _ByteLRU(bar_cache_bytes)
        self._hmds_active: set[str] = set()

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        """The bound TCP port (valid after :meth:`start`)."""
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the simulator listens on."""
        return self.host, self._port

    def start(self) -> Simulator:
        """Bind, listen and start serving in background threads; returns ``self``.

        Raises:
            OSError: the address cannot be bound.
            RuntimeError: already started.
        """
        with self._lock:
            if self._running:
                raise RuntimeError("simulator already started")
            self._bind(self._requested_port)
            self._running = True
            self._scheduler.start()
        return self

    def _bind(self, port: int) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        self._listener = sock
        self._port = sock.getsockname()[1]
        thread = threading.Thread(
            target=self._accept_loop, args=(sock,), name=f"ibdata-sim-accept-{self._port}"
        )
        thread.daemon = True
        self._accept_thread = thread
        thread.start()
        log.info("simulator listening on %s:%d", self.host, self._port)

    def stop(self) -> None:
        """Close every connection and the listener, and join all threads. Idempotent."""
        with self._lock:
            if not self._running:
                return
            self._running = False
        self._close_listener()
        self.drop_all()
        self._scheduler.stop()
        with self._lock:
            ended = list(self._every_session)  # sessions that closed themselves, too
        for session in ended:
            session.close("simulator stopped")
            session.join()
        log.info("simulator on port %d stopped", self._port)

    def _close_listener(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            thread, self._accept_thread = self._accept_thread, None
        if listener is not None:
            _shutdown(listener)
            listener.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<Simulator {self.host}:{self._port} sv={self.server_version} {state}>"

    # ------------------------------------------------------------------ faults
    def drop_all(self) -> None:
        """Close every client connection at once (as TWS does at its nightly restart)."""
        with self._lock:
            sessions = list(self._sessions.values())
        for s in sessions:
            s.close("dropped by the simulator")
        for s in sessions:
            s.join()

    def refuse_connections(self, refuse: bool = True) -> None:
        """Accept new connections and close them at once while ``refuse`` is true."""
        self._refusing = refuse

    def go_deaf(self, deaf: bool = True) -> None:
        """While ``deaf``: accept connections and read requests, but never answer anything.

        New connections get no handshake reply; existing sessions get no responses.
        """
        self._deaf = deaf

    def set_latency(self, seconds: float) -> None:
        """Delay every response by ``seconds`` from now on (0 to answer at once)."""
        if seconds < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {seconds!r}")
        self._latency = seconds

    @property
    def latency(self) -> float:
        """Seconds added before every response."""
        return self._latency

    def set_pacing(self, rules: PacingRules | None) -> None:
        """Enforce ``rules`` from now on (None: no pacing), starting from empty windows.

        Requests answered before the change count for nothing under the new rules; open
        historical requests keep their slots. One simulator can so serve an unpaced part of
        a test and a paced part, each paced part as if the simulator were new.
        """
        if rules is not None and not isinstance(rules, PacingRules):
            raise TypeError(f"rules must be PacingRules or None, got {rules!r}")
        tracker = PacingTracker(rules) if rules is not None else None
        with self._lock:
            if tracker is not None:
                for key in self._open_keys:
                    tracker.open(key)
            self.pacing = rules
            self._tracker = tracker

    def fail_next(
        self,
        code: int,
        text: str | None = None,
        *,
        request: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with error ``code`` instead of data.

        Args:
            code: the IB error code to send, with the request's id.
            text: the error text; a typical TWS text for ``code`` if None.
            request: IB's request name to match (``reqHistoricalData``, ``reqContractDetails``,
                ``reqHeadTimestamp``); None matches any of them.
            times: how many requests to fail.
        """
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times!r}")
        with self._lock:
            self._failures.append(_Failure(code, text, request, times))

    def outage(self, duration: float = 1.0, *, data_lost: bool = False) -> None:
        """Play a connectivity outage to every session, in the background.

        Sends 1100 and the farm-broken notices (2103, 2105, 2157) now, holds every data
        response for ``duration`` seconds, then sends the farm-OK notices and 1102 (or 1101
        when ``data_lost``) and releases the held responses: :meth:`connectivity_lost`, then
        :meth:`connectivity_restored` ``duration`` seconds later. Live subscriptions pause
        meanwhile, and resume after 1102 or are dropped at 1101.
        """
        self.connectivity_lost()
        self._scheduler.call_later(duration, lambda: self.connectivity_restored(data_lost))

    def connectivity_lost(self) -> None:
        """Send 1100 and farm-broken notices now and hold data responses until restored.

        Live (keepUpToDate) subscriptions pause: they send no updates, not even at a bar's
        end, until :meth:`connectivity_restored`.
        """
        with self._lock:
            self._outage = True
        self._broadcast([(1100, TEXT_CONNECTIVITY[1100]), *BROKEN_FARMS])

    def connectivity_restored(self, data_lost: bool = False) -> None:
        """Send farm-OK notices and 1102 (1101 when ``data_lost``) and release held data.

        After 1102 ("data maintained") paused subscriptions resume: their next update is the
        bar in progress (or its end); bars that ended meanwhile are never sent as updates,
        so a client must backfill them. After 1101 ("data lost") every live subscription
        is dropped silently: no error, no more updates, and cancelling it later gets no
        answer.
        """
        code = 1101 if data_lost else 1102
        if data_lost:
            self._drop_subscriptions(lambda sub: True)
        self._restore([*RESTORED_FARMS, (code, TEXT_CONNECTIVITY[code])])

    def _restore(self, notices: list[tuple[int, str]]) -> None:
        """Send ``notices``, then release the data held since connectivity was lost."""
        self._broadcast(notices)
        with self._lock:
            sessions = list(self._sessions.values())
        for s in sessions:
            s.requeue_held()  # the restore notices go out before the held data
        with self._lock:
            if self._outage:
                self._skip_ended_bars(lambda sub: True)
            self._outage = False
        for s in sessions:
            s.wake()

    def nightly_reset(self, downtime: float, *, live_error: bool = True) -> None:
        """Play TWS's nightly server reset; the socket stays open. Returns at once.

        Sends 1100, 2103 (usfarm broken) and 2105 (ushmds broken) now; with ``live_error``
        each live subscription then gets error 10182 "Failed to request live updates
        (disconnected)." with its request id. Every live subscription is dropped either way
        (no more updates; cancelling it gets no answer). Data requests made during the
        downtime are held, as in an outage. After ``downtime`` seconds, in the background:
        2104 (usfarm OK), 2106 (ushmds OK) and 1102 "data maintained", then the held
        answers. Real TWS says "data maintained" although its keepUpToDate subscriptions
        are gone: a client must subscribe again by itself.

        Args:
            downtime: seconds (wall time) between the reset's start and its end.
            live_error: send 10182 to each live subscription (TWS does not always).

        Raises:
            ValueError: ``downtime`` is negative.
        """
        if downtime < 0:
            raise ValueError(f"downtime must be >= 0 seconds, got {downtime!r}")
        with self._lock:
            self._outage = True
        self._broadcast([(1100, TEXT_CONNECTIVITY[1100]), *RESET_BROKEN])
        error = (10182, TEXT_LIVE_DISCONNECTED) if live_error else None
        self._drop_subscriptions(lambda sub: True, error=lambda sub: error)
        restored = [*RESET_RESTORED, (1102, TEXT_CONNECTIVITY[1102])]
        self._scheduler.call_later(downtime, lambda: self._restore(restored))

    def hmds_farm_broken(self, farm: str = "ushmds") -> None:
        """Send 2105 "HMDS data farm connection is broken:<farm>" to every session; live
        subscriptions served by ``farm`` pause until :meth:`hmds_farm_ok`.

        A contract's farm is ``cashhmds`` for FX, ``euhmds`` for European markets and
        ``ushmds`` for the rest. Historical requests are still answered.

        Raises:
            ValueError: ``farm`` is empty or not plain text.
        """
        _check_farm(farm)
        with self._lock:
            self._broken_hmds.add(farm)
        self._broadcast([(2105, TEXT_HMDS_BROKEN + farm)])

    def hmds_farm_ok(self, farm: str = "ushmds") -> None:
        """Send 2106 "HMDS data farm connection is OK:<farm>" to every session; subscriptions
        paused by :meth:`hmds_farm_broken` resume as after 1102 (see
        :meth:`connectivity_restored`).

        Raises:
            ValueError: ``farm`` is empty or not plain text.
        """
        _check_farm(farm)
        with self._lock:
            if farm in self._broken_hmds:
                self._skip_ended_bars(lambda sub: sub.farm == farm)
            self._broken_hmds.discard(farm)
        self._broadcast([(2106, TEXT_HMDS_OK + farm)])

    def stall_subscriptions(self, stalled: bool = True) -> None:
        """While ``stalled``: every live subscription, and every one made from now on, stops
        sending updates for good, with no notice (history is still answered).

        ``stall_subscriptions(False)`` lets subscriptions made later work normally; those
        already stalled stay silent until cancelled, as a stalled subscription at IB never
        recovers by itself: a client must notice the silence and subscribe again.
        """
        with self._lock:
            self._stalling = stalled
            if stalled:
                for sub in self._subs.values():
                    sub.stalled = True
                    self._scheduler.cancel(sub.handle)

    def end_subscriptions(self, instrument: str | int, code: int, text: str | None = None) -> int:
        """End every live subscription of an instrument with error ``code``; returns how many.

        Each gets error ``code`` with its request id and is dropped: no more updates, and
        cancelling it gets no answer. Use it for a contract that expired (200 "No security
        definition has been found for the request") or any other end TWS may announce;
        :meth:`revoke_permission` plays a lost permission.

        Args:
            instrument: a symbol (every contract of it: all of a future's months) or a conId.
            code: the IB error code to send.
            text: the error text; a typical TWS text for ``code`` (as for
                :meth:`fail_next`) if None.
        """
        match = _instrument_matcher(instrument)
        message = text or DEFAULT_ERROR_TEXTS.get(code, f"Simulated error {code}")
        return self._drop_subscriptions(
            lambda sub: match(sub.contract), error=lambda sub: (code, message)
        )

    def revoke_permission(self, instrument: str | int) -> int:
        """Take away the market-data permission of an instrument; returns how many live
        subscriptions it ended.

        Its live subscriptions get 162 "Historical Market Data Service error message:No
        market data permissions for <exchange> <secType>" and are dropped (see
        :meth:`end_subscriptions`), and later historical requests for it are refused with
        the same error, as for the ``no_permission`` option.

        Args:
            instrument: a symbol (every contract of it) or a conId.
        """
        match = _instrument_matcher(instrument)
        with self._lock:
            self._no_permission.add(str(instrument).strip().upper())
        return self._drop_subscriptions(
            lambda sub: match(sub.contract),
            error=lambda sub: (162, _no_permission_text(sub.contract)),
        )

    def send_raw(self, data: bytes, *, client_id: int | None = None) -> int:
        """Write raw bytes to every API session (or the one with ``client_id``).

        Nothing is checked: use it to send malformed frames to a client. Returns the number
        of sessions written to.
        """
        sent = 0
        for s in self._api_sessions():
            if client_id is None or s.client_id == client_id:
                s.enqueue(data, held=False, delay=0.0)
                sent += 1
        return sent

    def restart(self, downtime: float = 0.0) -> None:
        """Drop every connection, stop listening for ``downtime`` seconds, then listen again
        on the same port. Blocks for the downtime."""
        with self._lock:
            if not self._running:
                raise RuntimeError("simulator is not running")
            port = self._port
        self._close_listener()
        self.drop_all()
        if downtime > 0:
            time.sleep(downtime)
        with self._lock:
            if self._running:
                self._bind(port)

    # ------------------------------------------------------------------ observation
    @property
    def live_subscriptions(self) -> int:
        """The number of keepUpToDate subscriptions held over all sessions (live, paused or
        stalled), not counting those cancelled by their client or dropped by the simulator."""
        with self._lock:
            return len(self._subs)

    @property
    def stats(self) -> SimStats:
        """A snapshot of the simulator's counters."""
        with self._lock:
            c = self._counters
            return SimStats(
                connections=c["connections"],
                active_clients=len(self._sessions),
                requests=c["requests"],
                historical_requests=c["historical_requests"],
                open_historical=self._open_count(),
                pacing_violations=c["pacing_violations"],
                order_messages=c["order_messages"],
                dropped_clients=c["dropped_clients"],
                live_updates_sent=c["live_updates_sent"],
            )

    @property
    def client_ids(self) -> list[int]:
        """Client ids of the API sessions now connected."""
        return sorted(s.client_id for s in self._api_sessions() if s.client_id is not None)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counters[key] += n

    # ------------------------------------------------------------------ connections
    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, addr = listener.accept()
            except OSError:
                return
            with self._lock:
                if self._listener is not listener or not self._running:
                    sock.close()
                    return
                self._counters["connections"] += 1
                full = len(self._sessions) >= self.max_clients
                if self._refusing or full:
                    why = "refusing connections" if self._refusing else "too many clients"
                    log.info("closing connection from %s:%s: %s", addr[0], addr[1], why)
                    _shutdown(sock)
                    sock.close()
                    continue
                # Answers go out as soon as they are written: with Nagle's algorithm a
                # second small answer waits for the client's delayed ACK of the first
                # (40 ms on Linux), a stall of the simulator's, not of the client's.
                with contextlib.suppress(OSError):  # a client already gone is found later
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                number = next(self._conn_numbers)
                session = _Session(self, sock, number, f"{addr[0]}:{addr[1]}")
                self._sessions[number] = session
                self._every_session.add(session)
            log.info("connection %d from %s:%s", number, addr[0], addr[1])
            session.start()

    def _forget(self, session: _Session) -> None:
        with self._lock:
            self._sessions.pop(session.number, None)
            for sub in [sub for sub in self._subs.values() if sub.session is session]:
                self._end_subscription(sub)
        self._close_slots(lambda key: key[0] == session.number)

    def _api_sessions(self) -> list[_Session]:
        with self._lock:
            return [s for s in self._sessions.values() if s.client_id is not None]

    def _broadcast(self, notices: Iterable[tuple[int, str]]) -> None:
        notices = list(notices)
        for s in self._api_sessions():
            for code, text in notices:
                s.send(s.error_frame(-1, code, text), delay=0.0)

    def gateway_notices(self) -> list[tuple[int, str]]:
        """IB Gateway's start-up notices: 2107 for ushmds until a session used it, then
        2106 for every historical farm in use."""
        with self._lock:
            active = sorted(self._hmds_active)
        if not active:
            return list(GATEWAY_FARMS)
        return [
            GATEWAY_FARMS[0],
            *((2106, TEXT_HMDS_OK + farm) for farm in active),
            GATEWAY_FARMS[-1],
        ]

    def _wake_hmds(self, s: _Session, contract: SimContract) -> None:
        """An IB Gateway connects a historical farm on its first use and says so (2106)."""
        if not self.gateway:
            return
        farm = hmds_farm(contract)
        with self._lock:
            new = farm not in self._hmds_active
            self._hmds_active.add(farm)
        if new:
            s.error(-1, 2106, TEXT_HMDS_OK + farm)

    # ------------------------------------------------------------------ open slots
    def _open_slot(self, s: _Session, key: tuple[int, int]) -> bool:
        """Take one of the open-historical-request slots (50 under IB's rules); answers
        386 for a request id that is still open and 322 when every slot is taken."""
        with self._lock:
            if key in self._open_keys:
                s.error(key[1], 386, TEXT_DUPLICATE_TICKER)
                return False
            if self._tracker is not None and not self._tracker.open(key):
                s.error(key[1], 322, TEXT_MAX_OPEN)
                return False
            self._open_keys.add(key)
            return True

    def _close_slot(self, key: tuple[int, int]) -> None:
        with self._lock:
            if self._tracker is not None:
                self._tracker.close(key)
            self._open_keys.discard(key)

    def _close_slots(self, match: Callable[[tuple[int, int]], bool]) -> None:
        with self._lock:
            keys = [k for k in self._open_keys if match(k)]
        for k in keys:
            self._close_slot(k)

    def _open_count(self) -> int:
        with self._lock:
            return len(self._open_keys)

    # ------------------------------------------------------------------ requests
    def _take_failure(self, name: str) -> _Failure | None:
        with self._lock:
            for f in self._failures:
                if f.request is None or f.request == name:
                    f.times -= 1
                    if f.times <= 0:
                        self._failures.remove(f)
                    return f
        return None

    def _resolve_permitted(self, query: ContractQuery) -> SimContract:
        """The one contract a data request names, if its data may be served.

        Raises:
            SimError: 200/321 from the catalog, or 162 "No market data permissions".
        """
        c = self.catalog.resolve(query, self._today())
        with self._lock:
            refused = c.symbol.upper() in self._no_permission or (
                str(c.con_id) in self._no_permission
            )
        if refused:
            raise SimError(162, _no_permission_text(c))
        return c

    def _today(self) -> dt.date:
        return self.clock.now().date()

    def _pace(self, s: _Session, req_id: int, request: PacedRequest) -> bool:
        """Apply the pacing rules; answers 162 and returns False when refused."""
        if self._tracker is None:
            return True
        reason = self._tracker.acquire(request, time.monotonic())
        if reason is None:
            return True
        self._count("pacing_violations")
        log.info("client %s request %d: pacing violation (%s)", s.client_id, req_id, reason)
        s.error(req_id, 162, TEXT_PACING)
        return False

    def _handle_contract_details(self, s: _Session, fields: list[str]) -> None:
        """reqContractDetails: contractData for every match, then contractDataEnd; or 200."""
        req_id, query = m.read_contract_details_request(fields, s.server_version)
        if self._fail(s, req_id, "reqContractDetails"):
            return
        try:
            found = self.catalog.lookup(query, self._today())
        except SimError as e:
            s.error(req_id, e.code, e.text)
            return
        frames = []
        now = self.clock.now()
        for c in found:
            first = now.astimezone(zone(c.time_zone_id)).date()
            frames.append(
                m.contract_data_fields(
                    req_id,
                    c,
                    s.server_version,
                    trading_hours=c.trading.hours(c.time_zone_id, first, 7, c.calendar),
                    liquid_hours=c.liquid.hours(c.time_zone_id, first, 7, c.calendar),
                    last_trade=_bars.format_last_trade(
                        c.last_trade_date,
                        c.last_trade_time,
                        s.server_version,
                        c.time_zone_id,
                        self.login_tz,
                        zone_style=self.api_time_zone,
                    ),
                )
            )
        frames.append(m.contract_data_end_fields(req_id))
        s.send_many(frames, key=(s.number, req_id))

    def _fail(self, s: _Session, req_id: int, name: str) -> bool:
        failure = self._take_failure(name)
        if failure is None:
            return False
        text = failure.text or DEFAULT_ERROR_TEXTS.get(
            failure.code, f"Simulated error {failure.code}"
        )
        s.error(req_id, failure.code, text)
        return True

    def _handle_historical_data(self, s: _Session, fields: list[str]) -> None:
        """reqHistoricalData: validate like TWS, pace, then answer historicalData (17); with
        keepUpToDate, start the subscription's updates."""
        req = m.read_historical_request(fields)
        self._count("historical_requests")
        key = (s.number, req.req_id)
        if self._fail(s, req.req_id, "reqHistoricalData"):
            return
        try:
            contract = self._resolve_permitted(req.contract)
            plan = _history.plan_bars(
                contract,
                end_text=req.end,
                bar_size=req.bar_size,
                duration=req.duration,
                use_rth=req.use_rth,
                what_to_show=req.what_to_show,
                format_date=req.format_date,
                keep_up_to_date=req.keep_up_to_date,
                now=self.clock.now(),
                login_tz=self.login_tz,
                window_semantics=self.window_semantics,
                contract_by_con_id=req.contract.con_id != 0,
            )
        except SimError as e:
            s.error(req.req_id, e.code, e.text)
            return
        paced = PacedRequest(
            contract=str(contract.con_id),
            exchange=req.contract.exchange or contract.exchange,
            what_to_show=req.what_to_show,
            bar_size=req.bar_size,
            identity=(
                req.end,
                req.bar_size,
                req.duration,
                str(req.use_rth),
                req.what_to_show,
                str(req.format_date),
                str(req.keep_up_to_date),
            ),
        )
        if not self._pace(s, req.req_id, paced):
            return
        if not self._open_slot(s, key):
            return
        self._wake_hmds(s, contract)
        for code, text in plan.warnings:
            s.error(req.req_id, code, text)
        count, body = self._bar_body(
            s, contract, req, plan.bars_start, plan.end, overlap=plan.overlap
        )
        if not count:
            self._close_slot(key)
            err = _history.no_data_error(contract, req.what_to_show)
            s.error(req.req_id, err.code, err.text)
            return
        start_text, end_text = (
            _bars.format_window_time(
                when,
                s.server_version,
                contract.time_zone_id,
                self.login_tz,
                zone_style=self.api_time_zone,
            )
            for when in (plan.start, plan.end)
        )
        frame = m.historical_data_frame(
            req.req_id, start_text, end_text, count, body, server_version=s.server_version
        )
        if req.keep_up_to_date:
            with self._lock:  # the answer is queued before the first update can be
                s.dropped_ids.discard(req.req_id)
                sub = _Subscription(
                    key, s, contract, req, hmds_farm(contract), stalled=self._stalling
                )
                self._subs[key] = sub
                s.enqueue(frame, held=True, key=key)
                if _clock_speed(self.clock) is not None:
                    sub.next_end = _bars.next_bar_end(contract, req.bar_size, req.use_rth, plan.end)
                sub.next_periodic = time.monotonic() + self.update_interval
                self._schedule(sub)
        else:
            s.enqueue(frame, held=True, key=key, on_sent=lambda: self._close_slot(key))

    def _bar_body(
        self,
        s: _Session,
        c: SimContract,
        req: m.HistoricalRequest,
        start: dt.datetime,
        end: dt.datetime,
        *,
        overlap: bool,
    ) -> tuple[int, bytes]:
        """The bars of ``[start, end)``, encoded: ``(count, fields)``; with ``overlap`` those
        that overlap it, the last cut at ``end`` (see :func:`ibdata.sim._bars.generate`).

        Intraday bars are produced session by session, and a session wholly inside the
        window and already over is encoded once and kept in an LRU cache: the generator is
        deterministic, so the bytes are the same for every request that contains it.
        """
        now = self.clock.now()

        def encode(lo: dt.datetime, hi: dt.datetime) -> tuple[int, bytes]:
            bars = _bars.generate(
                c, req.what_to_show, req.bar_size, req.use_rth, lo, hi, now=now, overlap=overlap
            )
            return len(bars), m.encode_bar_fields(
                [
                    (w.date, w.open, w.high, w.low, w.close, w.volume, w.wap, w.count)
                    for w in self._wire_bars(s, c, req, bars)
                ]
            )

        if not _bars.is_intraday(req.bar_size):
            return encode(start, end)
        # everything the bytes of a session's bars depend on besides the bars themselves
        form = (
            req.format_date,
            s.server_version >= m.INSTRUMENT_TIMEZONE,
            self.login_tz,
            self.api_time_zone,
            self.price_format,
            _bars.volume_unit(self.volume_units, c.sec_type, c.currency, s.server_version),
        )
        total, parts = 0, []
        for sess in _bars.sessions(c, req.use_rth, start, end):
            lo, hi = max(start, sess.start), min(end, sess.end)
            if lo == sess.start and hi == sess.end and hi <= now:
                key = (c.con_id, req.what_to_show, req.bar_size, req.use_rth, sess.date, form)
                part = self._bar_cache.get(key)
                if part is None:
                    part = encode(lo, hi)
                    self._bar_cache.put(key, part)
            else:
                part = encode(lo, hi)
            total += part[0]
            parts.append(part[1])
        return total, b"".join(parts)

    def _wire_bars(
        self, s: _Session, c: SimContract, req: m.HistoricalRequest, bars: list[_bars.SimBar]
    ) -> list[m.WireBar]:
        tick = _bars.price_tick(c, req.what_to_show)
        date = _bars.bar_time_formatter(
            req.bar_size,
            req.format_date,
            s.server_version,
            c.time_zone_id,
            self.login_tz,
            zone_style=self.api_time_zone,
        )
        volume = _bars.volume_unit(self.volume_units, c.sec_type, c.currency, s.server_version)
        style = self.price_format
        return [
            m.WireBar(*_bars.bar_fields(b, date(b), tick, price_style=style, volume=volume))
            for b in bars
        ]

    # ------------------------------------------------------------------ live subscriptions
    def _schedule(self, sub: _Subscription) -> None:
        """Set the subscription's one timer: at its next periodic update or, for a clock
        that runs, at the end of the bar in progress, whichever comes first. Call with the
        lock held."""
        if sub.ended or sub.stalled:
            return
        delay = sub.next_periodic - time.monotonic()
        speed = _clock_speed(self.clock)
        if speed is not None and sub.next_end is not None:
            left = (sub.next_end - self.clock.now()).total_seconds() / speed
            delay = min(delay, left)
        sub.handle = self._scheduler.call_later(max(delay, 0.0), lambda: self._tick(sub))

    def _skip_ended_bars(self, resumed: Callable[[_Subscription], bool]) -> None:
        """On resuming: no subscription sends a bar that ended while it was paused, even if
        its timer is late. Call with the lock held."""
        now = self.clock.now()
        for sub in self._subs.values():
            if resumed(sub) and sub.next_end is not None and sub.next_end <= now:
                req = sub.request
                sub.next_end = _bars.next_bar_end(sub.contract, req.bar_size, req.use_rth, now)

    def _paused(self, sub: _Subscription) -> bool:
        return self._outage or self._deaf or sub.farm in self._broken_hmds

    def _tick(self, sub: _Subscription) -> None:
        """The subscription's timer: at a bar's end the complete bar and the one now in
        progress; at the periodic time the bar in progress; nothing while paused."""
        with self._lock:  # serialises with cancels and drops: no update after either
            if sub.ended or sub.stalled:
                return
            c, req = sub.contract, sub.request
            now = self.clock.now()
            mono = time.monotonic()
            paused = self._paused(sub)
            bars: list[_bars.SimBar] = []
            ended = False
            if _clock_speed(self.clock) is None:
                sub.next_end = None
            elif sub.next_end is None or paused:
                # no session was near, or paused: updates of bars that end meanwhile are lost
                if sub.next_end is None or sub.next_end <= now:
                    sub.next_end = _bars.next_bar_end(c, req.bar_size, req.use_rth, now)
            else:
                while sub.next_end is not None and sub.next_end <= now:
                    ended = True
                    if len(bars) == MAX_CATCH_UP:
                        sub.next_end = _bars.next_bar_end(c, req.bar_size, req.use_rth, now)
                        break
                    bar = _bars.bar_ending(
                        c, req.what_to_show, req.bar_size, req.use_rth, sub.next_end
                    )
                    if bar is not None:
                        bars.append(bar)
                    sub.next_end = _bars.next_bar_end(c, req.bar_size, req.use_rth, sub.next_end)
            periodic = mono >= sub.next_periodic
            if periodic:
                missed = (mono - sub.next_periodic) // self.update_interval
                sub.next_periodic += (missed + 1) * self.update_interval
            if (ended or periodic) and not paused:
                bar = _bars.forming_bar(c, req.what_to_show, req.bar_size, req.use_rth, now)
                if bar is not None and (not bars or bar.start >= bars[-1].end):
                    bars.append(bar)
            if bars and not paused:
                self._send_updates(sub, bars)
            self._schedule(sub)

    def _send_updates(self, sub: _Subscription, bars: list[_bars.SimBar]) -> None:
        """historicalDataUpdate (90) for each bar, in one write, formatted as historicalData
        formats the same bars for this session (the bar count included)."""
        s, req = sub.session, sub.request
        data = b"".join(
            encode(m.historical_data_update_fields(req.req_id, w.count, w))
            for w in self._wire_bars(s, sub.contract, req, bars)
        )
        n = len(bars)
        s.enqueue(data, held=False, on_sent=lambda: self._count("live_updates_sent", n))

    def _end_subscription(self, sub: _Subscription) -> None:
        """Forget a subscription and stop its timer (its slot is the caller's). Call with the
        lock held."""
        self._subs.pop(sub.key, None)
        sub.ended = True
        self._scheduler.cancel(sub.handle)

    def _drop_subscriptions(
        self,
        match: Callable[[_Subscription], bool],
        *,
        error: Callable[[_Subscription], tuple[int, str] | None] = lambda sub: None,
    ) -> int:
        """Drop the matching subscriptions, sending each the error ``error`` gives (None:
        silently); their ids are remembered so that cancelling them gets no answer.
        Returns how many were dropped."""
        with self._lock:
            dropped = [sub for sub in self._subs.values() if match(sub)]
            for sub in dropped:
                self._end_subscription(sub)
                sub.session.dropped_ids.add(sub.key[1])
                notice = error(sub)
                if notice is not None:
                    frame = sub.session.error_frame(sub.key[1], *notice)
                    sub.session.send(frame, delay=0.0)
        for sub in dropped:
            self._close_slot(sub.key)
        if dropped:
            log.info("dropped %d live subscription(s)", len(dropped))
        return len(dropped)

    def _handle_cancel_historical(self, s: _Session, fields: list[str]) -> None:
        """cancelHistoricalData: 162 "query cancelled" if its answer is still pending, silence
        for a keepUpToDate subscription (live, paused, stalled, or dropped by the
        simulator), 366 if unknown."""
        cur = m.FieldCursor(fields)
        cur.integer()  # version
        req_id = cur.integer()
        key = (s.number, req_id)
        with self._lock:
            sub = self._subs.get(key)
            if sub is not None:
                self._end_subscription(sub)
            dropped = req_id in s.dropped_ids
            s.dropped_ids.discard(req_id)
        if sub is not None or dropped:
            # A live subscription just stops: no answer (TWS's reply is unverified, and a
            # 162 for a finished request is logged as an error by ib_async). One the
            # simulator dropped is over already: no answer either.
            s.cancel_pending(key)
            self._close_slot(key)
        elif s.cancel_pending(key):
            self._close_slot(key)
            s.error(req_id, 162, f"{HMDS}API historical data query cancelled: {req_id}")
        else:
            s.error(req_id, 366, f"No historical data query found for ticker id:{req_id}")

    def _handle_head_timestamp(self, s: _Session, fields: list[str]) -> None:
        """reqHeadTimestamp: the first available data point (88); the slot stays open
        until cancelHeadTimestamp."""
        req = m.read_head_timestamp_request(fields)
        self._count("historical_requests")
        key = (s.number, req.req_id)
        if self._fail(s, req.req_id, "reqHeadTimestamp"):
            return
        try:
            contract = self._resolve_permitted(req.contract)
            text = _history.plan_head_timestamp(
                contract, req.what_to_show, req.use_rth, req.format_date
            )
        except SimError as e:
            s.error(req.req_id, e.code, e.text)
            return
        paced = PacedRequest(
            contract=str(contract.con_id),
            exchange=req.contract.exchange or contract.exchange,
            what_to_show=req.what_to_show,
            bar_size="",
            identity=("head", str(req.use_rth), req.what_to_show, str(req.format_date)),
            head_timestamp=True,
        )
        if not self._pace(s, req.req_id, paced):
            return
        if not self._open_slot(s, key):
            return
        self._wake_hmds(s, contract)
        s.send_many([m.head_timestamp_fields(req.req_id, text)], key=key)

    def _handle_cancel_head_timestamp(self, s: _Session, fields: list[str]) -> None:
        """cancelHeadTimestamp: frees the request's slot; no answer."""
        req_id = m.FieldCursor(fields).integer()
        self._close_slot((s.number, req_id))
        s.cancel_pending((s.number, req_id))


class _Session:
    """One client connection: a reader thread and a writer thread."""

    def __init__(self, sim: Simulator, sock: socket.socket, number: int, peer: str) -> None:
        self.sim = sim
        self.sock = sock
        self.number = number
        self.peer = peer
        self.client_id: int | None = None
        self.server_version = m.MAX_SERVER_VERSION
        # Bounds every blocked send; the reader treats the resulting recv timeouts as idle.
        sock.settimeout(sim.send_timeout)
        self._cond = threading.Condition()
        self._queue: collections.deque[_Out] = collections.deque()
        self._queued_bytes = 0
        self._cancelled: set[tuple[int, int]] = set()
        self._pending: collections.Counter[tuple[int, int]] = collections.Counter()
        #: request ids of live subscriptions the simulator dropped: cancels get no answer
        self.dropped_ids: set[int] = set()
        self._closing = False
        self._next_id = 1
        self._sent_total = 0
        self._official_reader = True  # until the hello says otherwise
        self._recent_starts: collections.deque[tuple[float, int]] = collections.deque()
        self._reader = threading.Thread(target=self._read_loop, name=f"ibdata-sim-read-{number}")
        self._writer = threading.Thread(target=self._write_loop, name=f"ibdata-sim-write-{number}")
        self._reader.daemon = True
        self._writer.daemon = True

    def start(self) -> None:
        self._reader.start()
        self._writer.start()

    def join(self) -> None:
        for t in (self._reader, self._writer):
            if t is not threading.current_thread() and t.ident is not None:
                t.join(5)

    def close(self, why: str) -> None:
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._queue.clear()
            self._queued_bytes = 0
            self._cond.notify_all()
        log.info("connection %d (client %s) closed: %s", self.number, self.client_id, why)
        _shutdown(self.sock)
        self.sock.close()
        self.sim._forget(self)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def requeue_held(self) -> None:
        """Move held data behind everything queued since, keeping its own order."""
        with self._cond:
            held = [item for item in self._queue if item.held]
            rest = [item for item in self._queue if not item.held]
            self._queue = collections.deque(rest + held)

    # ---------------------------------------------------------------- sending
    def enqueue(
        self,
        data: bytes,
        *,
        held: bool,
        delay: float | None = None,
        key: tuple[int, int] | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        if self.sim._deaf and delay is None:
            if on_sent is not None:
                on_sent()
            return
        wait = self.sim.latency if delay is None else delay
        with self._cond:
            if self._closing:
                return
            self._queue.append(_Out(time.monotonic() + wait, data, key, held, on_sent))
            self._queued_bytes += len(data)
            if key is not None:
                self._pending[key] += 1
            too_much = self._queued_bytes > self.sim.max_queued_bytes
            self._cond.notify_all()
        if too_much:
            self.sim._count("dropped_clients")
            self.close("client is not reading (send queue over its limit)")

    def send(self, fields: list[Field], delay: float | None = None) -> None:
        self.enqueue(encode(fields), held=False, delay=delay)

    def send_many(
        self,
        messages: list[list[Field]],
        *,
        key: tuple[int, int],
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        data = b"".join(encode(f) for f in messages)
        self.enqueue(data, held=True, key=key, on_sent=on_sent)

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(self.error_frame(req_id, code, text))

    def error_frame(self, req_id: int, code: int, text: str) -> list[Field]:
        """An error message in this session's layout, stamped (from server version 194)
        with the simulator's clock."""
        time_ms = int(self.sim.clock.now().timestamp() * 1000)
        return m.error_fields(req_id, code, text, self.server_version, time_ms=time_ms)

    def cancel_pending(self, key: tuple[int, int]) -> bool:
        """Discard queued data for ``key``; True if some was still waiting."""
        with self._cond:
            if self._pending.get(key, 0) <= 0:
                return False
            self._cancelled.add(key)
            self._cond.notify_all()
            return True

    def _next_batch(self) -> list[_Out] | None:
        """Wait for due, sendable items; None when the session is closing."""
        with self._cond:
            while True:
                if self._closing:
                    return None
                now = time.monotonic()
                batch: list[_Out] = []
                wait: float | None = None
                for item in self._queue:
                    if item.held and self.sim._outage:
                        continue
                    if item.due > now:  # later items sent without latency may go first
                        left = item.due - now
                        wait = left if wait is None else min(wait, left)
                        continue
                    batch.append(item)
                if batch:
                    for item in batch:
                        self._queue.remove(item)
                        self._queued_bytes -= len(item.data)
                    return batch
                self._cond.wait(wait if wait is not None else 0.5)

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            chunks: list[bytes] = []
            done: list[Callable[[], None]] = []
            with self._cond:
                for item in batch:
                    if item.key is not None:
                        self._pending[item.key] -= 1
                        if self._pending[item.key] <= 0:
                            del self._pending[item.key]
                        if item.key in self._cancelled:
                            if item.key not in self._pending:
                                self._cancelled.discard(item.key)
                            continue
                    chunks.append(item.data)
                    if item.on_sent is not None:
                        done.append(item.on_sent)
            data = b"".join(chunks)
            if data and not self._write(data):
                return
            for callback in done:
                callback()

    def _write(self, data: bytes) -> bool:
        """Send ``data``; split it when its end would leave ibapi's reader stuck on an exact
        multiple of 4096 bytes (protocol reference §1.7).

        Only IB's official clients have that reader; they announce a minimum version of
        100 (``ib_async`` announces 157), so other clients never pay the pause."""
        now = time.monotonic()
        recent = self._recent_starts
        while recent and now - recent[0][0] > 2.0:
            recent.popleft()
        recent.append((now, self._sent_total))
        end = self._sent_total + len(data)
        risky = self._official_reader and any((end - start) % 4096 == 0 for _, start in recent)
        parts = [data]
        if risky and len(data) > 1:
            cut = len(data) - 1
            while cut > 1 and any((cut + self._sent_total - st) % 4096 == 0 for _, st in recent):
                cut -= 1
            parts = [data[:cut], data[cut:]]
        try:
            for i, part in enumerate(parts):
                if i:
                    time.sleep(SPLIT_PAUSE)
                    recent.append((time.monotonic(), self._sent_total))
                self.sock.sendall(part)
                self._sent_total += len(part)
        except OSError as exc:
            if not self._closing:
                if isinstance(exc, TimeoutError):
                    self.sim._count("dropped_clients")
                self.close(f"send failed: {exc}")
            return False
        return True

    # ---------------------------------------------------------------- reading
    def _recv(self, size: int) -> bytes:
        """Block until bytes arrive; b"" once the session is closing.

        Waits in ``select`` with a short tick: closing a socket from another thread does
        not wake a thread blocked in ``recv`` on Linux, and ``shutdown`` fails on a
        connection the peer has already reset, so the reader checks for closing itself.
        """
        while True:
            if self._closing:
                return b""
            try:
                ready, _, _ = select.select([self.sock], [], [], 0.5)
            except (OSError, ValueError):  # the socket was closed under us
                return b""
            if not ready:
                continue
            try:
                return self.sock.recv(size)
            except TimeoutError:
                continue

    def _read_loop(self) -> None:
        reader = FrameReader(self.sim.max_frame)
        try:
            if not self._handshake(reader):
                return
            while True:
                data = self._recv(65536)
                if not data:
                    self.close("client closed the connection")
                    return
                for payload in reader.feed(data):
                    self._dispatch(split_fields(payload))
        except ProtocolError as exc:
            self.sim._count("dropped_clients")
            self.close(f"protocol error: {exc}")
        except OSError as exc:
            self.close(f"socket error: {exc}")

    def _recv_exact(self, n_prefix: int) -> bytes:
        buf = b""
        while len(buf) < n_prefix:
            data = self._recv(n_prefix - len(buf))
            if not data:
                raise OSError("connection closed during the handshake")
            buf += data
        return buf

    def _handshake(self, reader: FrameReader) -> bool:
        prefix = self._recv_exact(len(PREFIX))
        if prefix != PREFIX:
            raise ProtocolError(f"expected the API prefix, got {prefix!r}")
        frames: list[bytes] = []
        while not frames:
            data = self._recv(65536)
            if not data:
                raise OSError("connection closed during the handshake")
            frames = reader.feed(data)
        hello = parse_hello(frames[0])
        version = min(hello.max_version, self.sim.server_version)
        if version < max(hello.min_version, m.MIN_SERVER_VERSION):
            self.close(
                f"client versions {hello.min_version}..{hello.max_version} "
                f"do not overlap {m.MIN_SERVER_VERSION}..{self.sim.server_version}"
            )
            return False
        self.server_version = version
        self._official_reader = hello.min_version < m.MIN_SERVER_VERSION
        log.info(
            "connection %d: client v%d..%d%s, server version %d",
            self.number,
            hello.min_version,
            hello.max_version,
            f" {hello.options}" if hello.options else "",
            version,
        )
        if self.sim._deaf:
            return True
        # The login zone's wall time on the simulator's clock (fixed or scaled, like the
        # rest of its data), named as the login_tz_names option says.
        conn_time = _login.connection_time(
            self.sim.clock.now(), self.sim.login_tz, self.sim.login_tz_names
        )
        # The reply goes out alone, in one write: ibapi 9.81.1 cannot reassemble it.
        self.enqueue(encode([version, conn_time]), held=False, delay=0.0)
        for extra in frames[1:]:
            self._dispatch(split_fields(extra))
        return True

    def _dispatch(self, fields: list[str]) -> None:
        sim = self.sim
        try:
            msg_id = int(fields[0])
        except (IndexError, ValueError):
            raise ProtocolError(f"message id is not a number: {fields[:1]!r}") from None
        name = m.OUT_NAMES.get(msg_id) or _refusals.NAMES.get(msg_id, f"msg{msg_id}")
        sim.received.append(
            Received(self.number, self.client_id, msg_id, name, tuple(fields), time.monotonic())
        )
        if msg_id in m.ORDER_MESSAGE_IDS:
            sim._count("order_messages")
            log.warning("client %s sent an order message (%s): refused", self.client_id, name)
            if self.client_id is not None and not sim._deaf:
                self._refuse(msg_id, fields)  # read-only API: 321, never acted on
            return
        if self.client_id is None:
            if msg_id == m.OUT_START_API:
                self._start_api(fields)
            else:
                log.info("connection %d: %s before startApi ignored", self.number, name)
            return
        sim._count("requests")
        log.info("client %d: %s %s", self.client_id, name, ",".join(fields[1:])[:200])
        if sim._deaf:
            return
        handler = _HANDLERS.get(msg_id)
        if handler is None:
            self._refuse(msg_id, fields)
            return
        try:
            handler(self, fields)
        except ValueError as exc:
            # A well-framed request with unreadable fields: TWS reports it and carries on.
            self.error(-1, 320, f"Error reading request. {exc}")

    def _refuse(self, msg_id: int, fields: list[str]) -> None:
        """Answer a request the simulator does not serve at once, as TWS would: the error a
        session without that permission gets, or the empty list an account without the
        feature gets; cancels get nothing (see :mod:`ibdata.sim._refusals`)."""
        if msg_id in _refusals.SILENT:
            return
        empty = _refusals.EMPTY_ANSWERS.get(msg_id)
        if empty is not None:
            self.send(empty[1](fields, self.server_version))
            return
        refusal = _refusals.REFUSALS.get(msg_id, _refusals.UNSERVED)
        req_id, code, text = refusal.error(fields, self.server_version)
        log.info("client %s: %s not served: %d %s", self.client_id, msg_id, code, text)
        self.error(req_id, code, text)

    def _start_api(self, fields: list[str]) -> None:
        cur = m.FieldCursor(fields)
        try:
            cur.integer()  # version
            client_id = cur.integer()
        except ValueError as exc:
            raise ProtocolError(f"bad startApi: {exc}") from None
        sim = self.sim
        with sim._lock:
            in_use = any(s.client_id == client_id for s in sim._sessions.values())
            if not in_use:
                self.client_id = client_id
        if in_use:
            log.info("connection %d: client id %d already in use", self.number, client_id)
            self.send(self.error_frame(-1, 326, TEXT_DUPLICATE_ID), delay=0.0)
            self.sim._scheduler.call_later(0.05, lambda: self.close("duplicate client id"))
            return
        if sim._deaf:
            return
        farms = sim.gateway_notices() if sim.gateway else TWS_FARMS
        frames: list[list[Field]] = [
            m.managed_accounts_fields(sim.accounts),
            m.next_valid_id_fields(self._next_id),
        ]
        frames += [self.error_frame(-1, code, text) for code, text in farms]
        self.enqueue(b"".join(encode(f) for f in frames), held=False, delay=0.0)

    # ---------------------------------------------------------------- small handlers
    def on_req_ids(self, fields: list[str]) -> None:
        self.send(m.next_valid_id_fields(self._next_id))

    def on_managed_accounts(self, fields: list[str]) -> None:
        self.send(m.managed_accounts_fields(self.sim.accounts))

    def on_current_time(self, fields: list[str]) -> None:
        self.send(m.current_time_fields(int(self.sim.clock.now().timestamp())))

    def on_current_time_in_millis(self, fields: list[str]) -> None:
        if self.server_version < m.CURRENT_TIME_IN_MILLIS:
            self.error(-1, 503, "The TWS is out of date and must be upgraded.")
            return
        self.send(m.current_time_in_millis_fields(int(self.sim.clock.now().timestamp() * 1000)))

    def on_ignore(self, fields: list[str]) -> None:
        return

    def on_positions(self, fields: list[str]) -> None:
        self.send([m.IN_POSITION_END, 1])

    def on_open_orders(self, fields: list[str]) -> None:
        self.send([m.IN_OPEN_ORDER_END, 1])

    def on_completed_orders(self, fields: list[str]) -> None:
        self.send([m.IN_COMPLETED_ORDERS_END])

    def on_account_updates(self, fields: list[str]) -> None:
        cur = m.FieldCursor(fields)
        cur.integer()
        subscribe = cur.flag()
        account = cur.text() if cur.remaining else self.sim.accounts[0]
        if subscribe:
            self.send([m.IN_ACCOUNT_DOWNLOAD_END, 1, account or self.sim.accounts[0]])

    def on_account_updates_multi(self, fields: list[str]) -> None:
        cur = m.FieldCursor(fields)
        cur.integer()
        self.send([m.IN_ACCOUNT_UPDATE_MULTI_END, 1, cur.integer()])

    def on_executions(self, fields: list[str]) -> None:
        cur = m.FieldCursor(fields)
        if self.server_version < m.PARAMETRIZED_DAYS_OF_EXECUTIONS:
            cur.integer()  # version: gone from server version 200
        self.send([m.IN_EXEC_DETAILS_END, 1, cur.integer()])

    def on_account_summary(self, fields: list[str]) -> None:
        cur = m.FieldCursor(fields)
        cur.integer()
        self.send([m.IN_ACCOUNT_SUMMARY_END, 1, cur.integer()])


def _on_contract_details(s: _Session, f: list[str]) -> None:
    s.sim._handle_contract_details(s, f)


def _on_historical(s: _Session, f: list[str]) -> None:
    s.sim._handle_historical_data(s, f)


def _on_cancel_historical(s: _Session, f: list[str]) -> None:
    s.sim._handle_cancel_historical(s, f)


def _on_head(s: _Session, f: list[str]) -> None:
    s.sim._handle_head_timestamp(s, f)


def _on_cancel_head(s: _Session, f: list[str]) -> None:
    s.sim._handle_cancel_head_timestamp(s, f)


_HANDLERS: dict[int, Callable[[_Session, list[str]], None]] = {
    m.OUT_REQ_CONTRACT_DATA: _on_contract_details,
    m.OUT_REQ_HISTORICAL_DATA: _on_historical,
    m.OUT_CANCEL_HISTORICAL_DATA: _on_cancel_historical,
    m.OUT_REQ_HEAD_TIMESTAMP: _on_head,
    m.OUT_CANCEL_HEAD_TIMESTAMP: _on_cancel_head,
    m.OUT_REQ_IDS: _Session.on_req_ids,
    m.OUT_REQ_MANAGED_ACCTS: _Session.on_managed_accounts,
    m.OUT_REQ_CURRENT_TIME: _Session.on_current_time,
    m.OUT_REQ_CURRENT_TIME_IN_MILLIS: _Session.on_current_time_in_millis,
    m.OUT_REQ_MARKET_DATA_TYPE: _Session.on_ignore,
    m.OUT_REQ_AUTO_OPEN_ORDERS: _Session.on_ignore,
    m.OUT_REQ_POSITIONS: _Session.on_positions,
    m.OUT_REQ_OPEN_ORDERS: _Session.on_open_orders,
    m.OUT_REQ_COMPLETED_ORDERS: _Session.on_completed_orders,
    m.OUT_REQ_ACCOUNT_UPDATES: _Session.on_account_updates,
    m.OUT_REQ_ACCOUNT_UPDATES_MULTI: _Session.on_account_updates_multi,
    m.OUT_REQ_EXECUTIONS: _Session.on_executions,
    m.OUT_REQ_ACCOUNT_SUMMARY: _Session.on_account_summary,
}


class _ByteLRU:
    """A thread-safe LRU of ``(count, bytes)`` values bounded by their total size."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._size = 0
        self._items: collections.OrderedDict[object, tuple[int, bytes]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: object) -> tuple[int, bytes] | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: object, value: tuple[int, bytes]) -> None:
        size = len(value[1])
        if size > self._limit:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old[1])
            self._items[key] = value
            self._size += size
            while self._size > self._limit:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped[1])


class _Scheduler:
    """One thread running timed callbacks; callbacks must not block for long."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> None:
        with self._cond:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="ibdata-sim-scheduler")
            self._thread.daemon = True
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def call_later(self, delay: float, fn: Callable[[], None]) -> int:
        """Run ``fn`` in ``delay`` seconds (never once stopped); returns the timer's handle."""
        handle = next(self._ids)
        with self._cond:
            if not self._stopping:
                heapq.heappush(self._heap, (time.monotonic() + delay, handle, fn))
                self._cond.notify_all()
        return handle

    def cancel(self, handle: int) -> None:
        """Remove a timer; nothing happens for one that already ran (or is running)."""
        with self._cond:
            kept = [entry for entry in self._heap if entry[1] != handle]
            if len(kept) != len(self._heap):
                heapq.heapify(kept)
                self._heap = kept

    @property
    def pending(self) -> int:
        """Timers waiting to run."""
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    if self._heap:
                        due = self._heap[0][0] - time.monotonic()
                        if due <= 0:
                            fn = heapq.heappop(self._heap)[2]
                            break
                        self._cond.wait(due)
                    else:
                        self._cond.wait()
            try:
                fn()
            except Exception:
                log.exception("simulator timer callback failed")


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
