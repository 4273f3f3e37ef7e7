"""The Client: a typed, blocking, thread-safe facade over one TWS API session."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import attrs

from ibdata import _convert, _ibapi, _planner, _stream, _zones
from ibdata import _validate as v
from ibdata._connection import Connection, LiveSink, RequestNotSentError
from ibdata._engine import (
    FORMAT_DATE,
    LONG_BAR_SPANS,
    HistoryEngine,
    Job,
    Progress,
    Source,
    continuous_duration,
)
from ibdata._pacer import Ledger, Pacer
from ibdata._requests import BARS, DETAILS, HEAD, Pending
from ibdata._sharing import SharedPacer
from ibdata._stream import BarStream, StreamEvent, Subscription
from ibdata._throttle import Throttle
from ibdata.exceptions import (
    AmbiguousContractError,
    ConnectError,
    ContractNotFoundError,
    NotConnectedError,
    PacingViolationError,
    RequestTimeoutError,
)
from ibdata.models import (
    Bar,
    Bars,
    BarSize,
    Contract,
    ContractDetails,
    ContractSpec,
    DownloadPlan,
    Health,
    SecType,
    WhatToShow,
)
from ibdata.pacing import PacedRequest, PacingRules
from ibdata.registry import EXCHANGE_CURRENCIES, ProductRegistry, default_registry
from ibdata.store import BarStore, open_store

log = logging.getLogger(__name__)

T = TypeVar("T")

#: IB's published pacing rules: the default of every client.
DEFAULT_PACING = PacingRules()

#: Requests a second a client sends TWS by default: under TWS's limit of 50 messages a
#: second, leaving room for the session's own messages (cancels, the start-up requests).
DEFAULT_MESSAGE_RATE = 45.0

#: Random client ids are drawn from this range (TWS accepts 0..2147483646).
CLIENT_ID_RANGE = (1_000, 999_999)
#: How many random client ids to try when TWS answers 326 (id in use).
CLIENT_ID_ATTEMPTS = 5
#: How long resolved contract details are reused before asking TWS again.
DETAILS_TTL = 3600.0
#: How many times a request refused for pacing (by another program's load) is retried.
PACING_RETRIES = 3


@functools.lru_cache(maxsize=1)
def _fits_a_wider_week(span: str) -> bool:
    """True when a daily chunk of ``span`` is in weeks and stays within 52 W once widened."""
    count, unit = _planner.parse_duration(span)
    return unit == "W" and count <= 51


def _range_end(
    spec: ContractSpec, size: BarSize, begin: dt.datetime, end: dt.datetime | None
) -> dt.datetime:
    """The end of a range download (None: now), checked before anything is sent."""
    now = dt.datetime.now(dt.timezone.utc)
    stop = end if end is not None else now
    if begin >= stop:
        raise ValueError(f"start ({begin.isoformat()}) must be before end ({stop.isoformat()})")
    if spec.sec_type is SecType.CONTFUT:  # refused before the contract lookup is sent
        continuous_duration(spec, begin, stop, size, now)
    return stop


def _expired_end(contract: Contract, now: dt.datetime) -> dt.datetime | None:
    """For a contract that stopped trading before ``now`` (an expired future or option),
    the end of its last trading day (00:00 UTC the day after); else None. IB answers a
    request for it that ends "now" with the bars before its expiry, so ibdata asks for
    those explicitly and reports the window they are in."""
    text = contract.last_trade_date
    if contract.sec_type not in ("FUT", "FOP", "OPT") or not (len(text) == 8 and text.isdigit()):
        return None  # a continuous future rolls on; IB refuses it an end date (10339)
    day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    end = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    return end if end < now else None


@functools.lru_cache(maxsize=1)
def _bars_builder(
    job: Job, conn: Connection, asked_end: dt.datetime | None
) -> Callable[[list[Any], Any], Bars]:
    """How a historicalData answer (or one update's columns) of ``job`` on ``conn`` becomes
    :class:`~ibdata.models.Bars`."""
    login_tz = conn.login_tz
    lots = _convert.volume_in_lots(job.details.contract, conn.server_version or 0)

    def build(items: list[Any], extra: Any) -> Bars:
        if isinstance(extra, _convert.BarColumns):
            columns = extra
        else:
            first, last = extra if extra else ("", "")
            if items and all(isinstance(i, _convert.BarColumns) for i in items):
                columns = _convert.join_columns(items, first, last)
            else:
                columns = _convert.columns_from_bar_data(items, first, last)
        return _convert.build_bars(
            columns,
            contract=job.details.contract,
            bar_size=job.size,
            what_to_show=job.show,
            use_rth=job.rth,
            time_zone=job.details.time_zone_id,
            login_tz=login_tz,
            asked_end=asked_end,
            volume_in_lots=lots,
        )

    return build


def _warn_mixed_ibapi(description: str) -> None:
    """Say once per process that the ibapi module is not one release's files alone."""
    log.warning(
        "the installed ibapi is not one release's files alone: %s (see ibdata's "
        "'Connecting' guide, 'IB's Python client')",
        description,
    )


class Client:
    """A blocking, thread-safe client for historical bars and contract data from TWS.

    One client holds one TWS API session, shared by every thread that uses it. Each call
    blocks until IB has answered, IB has reported an error (raised as an
    :class:`~ibdata.exceptions.IBDataError`), or the call's timeout has passed (raised as
    :class:`~ibdata.exceptions.RequestTimeoutError`, after IB's cancel was sent). A call
    never returns an empty result where IB reported an error.

    Args:
        host: TWS / IB Gateway host.
        port: its API port: TWS 7497 (paper) / 7496 (live), IB Gateway 4002 / 4001.
        client_id: the API client id; None picks a random one and picks another if TWS says
            it is in use (error 326). A fixed id that is in use raises
            :class:`~ibdata.exceptions.ConnectError`.
        connect_timeout: seconds (or a timedelta) to wait for the session to be ready.
        timeout: default seconds for each request; every ``get_*`` takes ``timeout=`` too.
        auto_reconnect: after an unexpected drop, reconnect in the background with
            exponential backoff and jitter, between ``reconnect_min_delay`` and
            ``reconnect_max_delay`` seconds. Requests made meanwhile wait for the session up
            to their timeout, then raise :class:`~ibdata.exceptions.NotConnectedError`.
        registry: product codes to resolve (``EURBBL``, ``UST10YZ5``); the default registry
            if None.
        reconnect_min_delay: first backoff delay in seconds.
        reconnect_max_delay: largest backoff delay in seconds.
        cache: the history engine's store: a path (a SQLite file), a ``postgresql://`` URL,
            or a :class:`~ibdata.store.BarStore`; None keeps none. A path or URL is opened
            here and closed by :meth:`close`. With a store, the pacing rules are applied to
            the requests of every client using the same store and TWS login, in every
            process and on every host (the shared ledger, :doc:`/sharing`); without one,
            to this client's own requests.
        pacing: the rules every historical request of this client is paced by (IB's by
            default, :class:`~ibdata.PacingRules`); None sends without pacing.
        login: the name of the TWS login in the shared pacing ledger; by default
            ``"host:port"``. Give the same name to clients that reach one login through
            different addresses (``localhost`` and ``127.0.0.1``, or a proxy).
        chunk_spans: per bar size, the IB duration of each request of a range download
            (``{"1 min": "43200 S"}``); the defaults are the history guide's chunk-span table.
        max_message_rate: the most requests a second this client sends TWS, spread
            evenly with a burst of one second's worth; TWS accepts 50 messages a second
            from a client and disconnects one that exceeds it repeatedly (error 100). None
            sends without limit (for the simulator, or a TWS configured otherwise).

    Raises:
        ValueError: an argument is out of range.
        TypeError: an argument has the wrong type.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        *,
        client_id: int | None = None,
        connect_timeout: float | dt.timedelta = 10.0,
        timeout: float | dt.timedelta = 60.0,
        auto_reconnect: bool = True,
        registry: ProductRegistry | None = None,
        reconnect_min_delay: float | dt.timedelta = 0.5,
        reconnect_max_delay: float | dt.timedelta = 30.0,
        cache: str | os.PathLike[str] | BarStore | None = None,
        pacing: PacingRules | None = DEFAULT_PACING,
        login: str | None = None,
        chunk_spans: Mapping[BarSize | str, str] | None = None,
        max_message_rate: float | None = DEFAULT_MESSAGE_RATE,
    ) -> None:
        self.host = v.text(host, "host", max_len=255)
        self.port = v.port(port)
        self._fixed_id = v.client_id(client_id)
        self.connect_timeout = v.seconds(connect_timeout, "connect_timeout")
        self.timeout = v.seconds(timeout, "timeout")
        self.auto_reconnect = v.flag(auto_reconnect, "auto_reconnect")
        if registry is not None and not isinstance(registry, ProductRegistry):
            raise TypeError(f"registry must be a ProductRegistry or None, got {registry!r}")
        self.registry = registry if registry is not None else default_registry()
        self.reconnect_min_delay = v.seconds(reconnect_min_delay, "reconnect_min_delay")
        self.reconnect_max_delay = v.seconds(reconnect_max_delay, "reconnect_max_delay")
        if self.reconnect_max_delay < self.reconnect_min_delay:
            raise ValueError("reconnect_max_delay must be >= reconnect_min_delay")
        self._cond = threading.Condition()
        self._conn: Connection | None = None
        self._connecting = False
        self._closed = False
        self._started = False
        self._reconnects = 0
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._details: dict[ContractSpec, tuple[float, list[ContractDetails]]] = {}
        self._resolved: dict[tuple[str, dt.date], ContractSpec] = {}
        self._last_client_id: int | None = self._fixed_id
        #: The last session's login zone: a reconnect to the same TWS starts from it.
        self._zone: _zones.SessionZone | None = None
        if pacing is not None and not isinstance(pacing, PacingRules):
            raise TypeError(f"pacing must be PacingRules or None, got {pacing!r}")
        self.pacing = pacing
        #: The TWS login's name in the shared pacing ledger.
        self.login = (
            f"{self.host}:{self.port}" if login is None else v.text(login, "login", max_len=255)
        )
        #: Every historical request sent, to tell which rule a pacing refusal broke.
        self._ledger = Ledger(pacing if pacing is not None else DEFAULT_PACING)
        if chunk_spans is not None and not isinstance(chunk_spans, Mapping):
            raise TypeError(f"chunk_spans must be a mapping or None, got {chunk_spans!r}")
        spans: dict[BarSize, str] = dict(LONG_BAR_SPANS)
        for size, span in (chunk_spans or {}).items():
            spans[v.bar_size(size)] = v.text(span, "chunk_spans")
        for size, span in spans.items():
            _planner.validate_span(size, span)
            if size in LONG_BAR_SPANS and not _fits_a_wider_week(span):
                raise ValueError(
                    f"chunk_spans[{size.value!r}] must be whole weeks, at most 51 W: daily "
                    f"and longer bars are asked one week wider, and IB refuses more than "
                    f"52 W; got {span!r}"
                )
        self.chunk_spans: Mapping[BarSize, str] = spans
        if max_message_rate is None:
            self._throttle: Throttle | None = None
        else:
            self._throttle = Throttle(v.rate(max_message_rate, "max_message_rate"))
        self._own_cache = False
        self.cache: BarStore | None
        if cache is None or isinstance(cache, BarStore):
            self.cache = cache
        elif isinstance(cache, (str, os.PathLike)):
            self.cache = open_store(cache)
            self._own_cache = True
        else:
            raise TypeError(
                f"cache must be a path, a postgresql:// URL, a BarStore or None, got {cache!r}"
            )
        self._pacer: Pacer | SharedPacer | None = None
        if pacing is not None:
            store = self.cache
            self._pacer = Pacer(pacing) if store is None else SharedPacer(pacing, store, self.login)
        source = Source(pacing, self.chunk_spans, self._request_bars, self._request_head)
        self._engine = HistoryEngine(source, self.cache)
        self._streams = _stream.Streams(
            subscribe=self._subscribe,
            history=lambda job, start, end: self._engine.download(job, start, end, None),
        )

    @classmethod
    def from_env(cls, **options: Any) -> Client:
        """A client configured from ``IB_HOST``, ``IB_PORT`` and ``IB_CLIENT_ID``.

        The older HTTP server's variables; unset ones keep the defaults (127.0.0.1, 7497,
        a random client id). ``IBDATA_PRODUCTS`` may name a TOML or JSON file of extra
        products (see :meth:`~ibdata.registry.ProductRegistry.from_env`).
        ``IBDATA_LOGIN`` names the TWS login in the shared pacing ledger (``login``);
        ``IBDATA_PACING_SCALE`` runs IB's pacing windows that many times faster (IB's rules
        with :attr:`~ibdata.PacingRules.time_scale`), to match a simulator whose pacing
        clock is scaled. ``options`` are passed on to :class:`Client` and win over the
        environment.

        Raises:
            ValueError: a variable is set to something invalid (the message names it).
            OSError: ``IBDATA_PRODUCTS`` names a file that cannot be read.
        """
        env = os.environ
        kwargs: dict[str, Any] = dict(options)
        if env.get("IB_HOST"):
            kwargs.setdefault("host", env["IB_HOST"])
        for var, key in (("IB_PORT", "port"), ("IB_CLIENT_ID", "client_id")):
            raw = env.get(var, "").strip()
            if raw:
                try:
                    kwargs.setdefault(key, int(raw))
                except ValueError:
                    raise ValueError(f"{var} must be an integer, got {raw!r}") from None
        if env.get("IBDATA_LOGIN", "").strip():
            kwargs.setdefault("login", env["IBDATA_LOGIN"].strip())
        scale = env.get("IBDATA_PACING_SCALE", "").strip()
        if scale and "pacing" not in kwargs:
            try:
                kwargs["pacing"] = DEFAULT_PACING.scaled(float(scale))
            except ValueError:
                raise ValueError(
                    f"IBDATA_PACING_SCALE must be a positive number, got {scale!r}"
                ) from None
        if "registry" not in kwargs:
            kwargs["registry"] = ProductRegistry.from_env()
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid IB_* environment: {exc}") from exc

    # ------------------------------------------------------------------ session
    def connect(self, *, retry_in_background: bool = False) -> Client:
        """Connect and wait until TWS is ready for requests; returns ``self``.

        Blocks up to ``connect_timeout`` seconds (for each client id tried).

        Args:
            retry_in_background: if this attempt fails and ``auto_reconnect`` is on, keep
                trying in the background with the usual backoff (the error is raised all
                the same); requests then wait for the session up to their timeout. For
                services that must start while TWS is down.

        Raises:
            ConnectError: refused, handshake failed, or the fixed client id is in use.
            ConnectTimeoutError: the session was not ready in time.
        """
        with self._cond:
            if self._closed:
                raise ConnectError("this client was closed; create a new one")
            if self._conn is not None and self._conn.ready:
                return self
        try:
            conn = self._open_session()
        except ConnectError:
            if retry_in_background and self.auto_reconnect:
                with self._cond:
                    self._started = True
                    if not self._connecting:
                        self._connecting = True
                        self._supervisor = threading.Thread(
                            target=self._reconnect_loop, name="ibdata-reconnect", daemon=True
                        )
                        self._supervisor.start()
            raise
        with self._cond:
            self._conn = conn
            self._started = True
            self._cond.notify_all()
        return self

    def _open_session(self) -> Connection:
        attempts = 1 if self._fixed_id is not None else CLIENT_ID_ATTEMPTS
        for attempt in range(attempts):
            cid = self._fixed_id if self._fixed_id is not None else random.randint(*CLIENT_ID_RANGE)
            conn = Connection(
                self.host,
                self.port,
                cid,
                on_lost=self._on_lost,
                on_notice=self._streams.notice,
                previous_zone=self._zone,
            )
            try:
                conn.open(self.connect_timeout)
            except ConnectError as exc:
                if exc.code == 326 and attempt + 1 < attempts:
                    log.info("client id %d is in use; trying another", cid)
                    continue
                if exc.code == 326:
                    raise ConnectError(
                        f"client id {cid} is already in use at {self.host}:{self.port}; "
                        "choose another or pass client_id=None for a random one",
                        code=326,
                    ) from exc
                raise
            self._last_client_id = cid
            self._zone = conn.login_tz
            found = _ibapi.release()
            log.info(
                "connected to %s:%d as client %d (server version %s, ibapi %s)",
                self.host,
                self.port,
                cid,
                conn.server_version,
                found.version,
            )
            if found.mixed:
                _warn_mixed_ibapi(found.describe())
            return conn
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the session and stop reconnecting; pending requests fail. Idempotent."""
        with self._cond:
            self._closed = True
            conn, self._conn = self._conn, None
            self._cond.notify_all()
        self._stop.set()
        self._streams.closing()
        if conn is not None:
            conn.close()
        self._streams.close_all()
        sup = self._supervisor
        if sup is not None and sup is not threading.current_thread():
            sup.join(10)
        if self._own_cache and self.cache is not None:
            self.cache.close()

    def __enter__(self) -> Client:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        """``<Client 127.0.0.1:7497 client_id=12 connected server_version=200 cache=...>``:
        where it connects, its state, and its store (never a password)."""
        conn = self._conn
        if self._closed:
            state = "closed"
        elif conn is not None and conn.ready:
            state = f"connected server_version={conn.server_version}"
        else:
            state = "not connected"
        parts = [f"{self.host}:{self.port}", f"client_id={self._last_client_id}", state]
        if self.login != f"{self.host}:{self.port}":
            parts.append(f"login={self.login!r}")
        if self.cache is not None:
            parts.append(f"cache={self.cache.location!r}")
        if self.pacing is None:
            parts.append("pacing=None")
        return f"<Client {' '.join(parts)}>"

    def reconnect(self) -> None:
        """Drop the session and establish a new one now (a new random client id unless
        ``client_id`` was fixed). Pending requests fail with ConnectionLostError.

        Blocks until the new session is ready.

        Raises:
            ConnectError: the new session could not be established.
            ConnectTimeoutError: it was not ready in time.
        """
        with self._cond:
            if self._closed:
                raise ConnectError("this client was closed; create a new one")
            old, self._conn = self._conn, None
            self._connecting = True
        try:
            if old is not None:
                old.close()
            conn = self._open_session()
        finally:
            with self._cond:
                self._connecting = False
                self._cond.notify_all()
        with self._cond:
            self._conn = conn
            self._reconnects += 1
            self._started = True
            self._cond.notify_all()
        if old is not None:
            self._streams.session_lost("reconnect() replaced the session")
        self._streams.session_ready()

    def _on_lost(self, conn: Connection) -> None:
        """Called by a connection's reader thread when its session dropped by itself."""
        conn.close()  # release the socket and the dispatcher thread
        with self._cond:
            if self._closed or conn is not self._conn:
                return
            self._streams.session_lost(conn.lost_reason)
            self._conn = None
            if not self.auto_reconnect or self._connecting:
                return
            self._connecting = True
            self._supervisor = threading.Thread(
                target=self._reconnect_loop, name="ibdata-reconnect", daemon=True
            )
            self._supervisor.start()

    def _reconnect_loop(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                delay = min(self.reconnect_max_delay, self.reconnect_min_delay * 2**attempt)
                delay *= random.uniform(0.5, 1.0)
                if self._stop.wait(delay):
                    return
                try:
                    conn = self._open_session()
                except ConnectError as exc:  # includes ConnectTimeoutError
                    attempt += 1
                    log.info("reconnect attempt %d failed: %s", attempt, exc)
                    continue
                with self._cond:
                    if self._closed:
                        conn.close()
                        return
                    self._conn = conn
                    self._reconnects += 1
                    self._cond.notify_all()
                log.info("reconnected to %s:%d", self.host, self.port)
                self._streams.session_ready()
                return
        finally:
            with self._cond:
                self._connecting = False
                self._cond.notify_all()

    def _session(self, deadline: float) -> Connection:
        """The ready session, waiting for a reconnect up to ``deadline``."""
        with self._cond:
            while True:
                if self._closed:
                    raise NotConnectedError("the client is closed")
                conn = self._conn
                if conn is not None and conn.ready:
                    return conn
                if not self._started:
                    raise NotConnectedError(
                        "not connected: call connect() or use the client in a with block"
                    )
                left = deadline - time.monotonic()
                if left <= 0 or not (self.auto_reconnect or self._connecting):
                    raise NotConnectedError(
                        f"not connected to TWS at {self.host}:{self.port}"
                        + (" (still reconnecting)" if self._connecting else "")
                    )
                self._cond.wait(min(left, 0.5))

    @property
    def client_id(self) -> int | None:
        """The client id of the current (or last) session."""
        return self._last_client_id

    @property
    def connected(self) -> bool:
        """True when the session is ready for requests."""
        conn = self._conn
        return conn is not None and conn.ready

    # ------------------------------------------------------------------ health
    def health(self) -> Health:
        """The session's state now. Never raises and never blocks on TWS."""
        now = dt.datetime.now(dt.timezone.utc)
        try:
            conn = self._conn
            ready = conn is not None and conn.ready
            if ready and conn is not None:
                broken = any(s.value == "broken" for s in conn.farms.values())
                status = "degraded" if (conn.degraded or broken) else "healthy"
            elif self._connecting or (
                conn is not None and self.auto_reconnect and not self._closed
            ):
                # A lost session whose reconnect is about to start counts as connecting.
                status = "connecting"
            else:
                status = "disconnected"
            return Health(
                status=status,
                connected=conn is not None and conn.alive,
                ready=ready,
                host=self.host,
                port=self.port,
                client_id=self._last_client_id,
                server_version=conn.server_version if conn is not None else None,
                login_time_zone=(
                    conn.login_tz.record if conn is not None and conn.conn_time else None
                ),
                accounts=conn.accounts if conn is not None else (),
                farms=dict(conn.farms) if conn is not None else {},
                last_connectivity_event=conn.last_event if conn is not None else None,
                connected_since=conn.connected_since if ready and conn is not None else None,
                reconnect_count=self._reconnects,
                ibapi_version=_ibapi.release().version,
                timestamp=now,
            )
        except Exception:  # health() is for monitoring: it must answer whatever happened
            log.exception("health() failed to read the session state")
            return Health(
                status="disconnected",
                connected=False,
                ready=False,
                host=self.host,
                port=self.port,
                client_id=self._last_client_id,
                server_version=None,
                accounts=(),
                farms={},
                last_connectivity_event=None,
                connected_since=None,
                reconnect_count=self._reconnects,
                ibapi_version="unknown",
                timestamp=now,
            )

    # ------------------------------------------------------------------ requests
    def _deadline(self, timeout: object) -> tuple[float, float]:
        seconds = v.optional_seconds(timeout, "timeout")
        limit = self.timeout if seconds is None else seconds
        return limit, time.monotonic() + limit

    def _send(
        self,
        kind: str,
        send: Callable[[Any, int], None],
        build: Callable[[list[Any], Any], Any],
        cancel: Callable[[Any, int], None] | None,
        deadline: float,
    ) -> tuple[Connection, Pending[Any]]:
        """Send a request on the ready session, waiting for a reconnect up to ``deadline``.

        A request that could not be written because the session had just dropped is sent
        again on the next session: nothing of it reached TWS.
        """
        self._throttled(kind, deadline)
        while True:
            conn = self._session(deadline)
            try:
                return conn, conn.request(kind, send, build=build, cancel=cancel)
            except RequestNotSentError:
                if time.monotonic() >= deadline:
                    raise

    def _throttled(self, kind: str, deadline: float) -> None:
        """Wait for this request's slot under the message-rate limit, up to ``deadline``."""
        if self._throttle is None:
            return
        wait = self._throttle.reserve()
        if wait <= 0:
            return
        left = deadline - time.monotonic()
        if wait > left:
            raise RequestTimeoutError(
                None,
                max(left, 0.0),
                f"{kind}: not sent, the message-rate limit "
                f"({self._throttle.rate:g}/s) had no slot before the timeout",
            )
        self._stop.wait(wait)

    def _wait(self, conn: Connection, p: Pending[T], limit: float, deadline: float) -> T:
        try:
            return p.future.result(timeout=max(deadline - time.monotonic(), 0.0))
        except FutureTimeout:
            if conn.table.abandon(p.req_id) is None:
                return p.future.result()  # settled at the deadline: take the answer
            if p.cancel is not None:
                p.cancel()
            if conn.stalled(limit):
                conn.drop(
                    f"TWS left a message incomplete for {limit} s while request {p.req_id} "
                    "waited: the stream is broken"
                )
            raise RequestTimeoutError(p.req_id, limit, p.kind) from None

    def resolve(
        self,
        instrument: str | ContractSpec,
        *,
        sec_type: SecType | str | None = None,
        exchange: str | None = None,
        currency: str | None = None,
        include_expired: bool = False,
    ) -> ContractSpec:
        """The :class:`~ibdata.models.ContractSpec` ibdata sends for ``instrument``.

        A product code from the registry (``EURBBL``: the continuous future;
        ``EURBBLM25``: that contract month), a plain symbol (a stock on SMART in USD unless
        ``sec_type``/``exchange``/``currency`` say otherwise), or a ContractSpec (the
        keyword arguments, when given, override its fields). Sends nothing.

        A plain symbol given an exchange whose contracts all trade in one currency and no
        currency takes that exchange's (``EUREX`` → EUR, ``ICEEU`` → GBP; the table is
        :data:`ibdata.registry.EXCHANGE_CURRENCIES`); on other exchanges it stays USD, and
        when IB then knows no such contract, the
        :class:`~ibdata.exceptions.ContractNotFoundError` says that USD was assumed.

        Raises:
            ValueError: an argument is invalid.
            TypeError: ``instrument`` is neither a string nor a ContractSpec.
        """
        overrides: dict[str, Any] = {}
        if sec_type is not None:
            overrides["sec_type"] = v.sec_type(sec_type)
        if exchange is not None:
            overrides["exchange"] = v.text(exchange, "exchange")
        if currency is not None:
            overrides["currency"] = v.text(currency, "currency")
        if v.flag(include_expired, "include_expired"):
            overrides["include_expired"] = True
        spec: ContractSpec | None
        if isinstance(instrument, ContractSpec):
            spec = instrument
        elif isinstance(instrument, str):
            memo = (instrument, dt.date.today())  # month suffixes depend on today's date
            spec = self._resolved.get(memo)
            if spec is None:
                v.text(instrument, "instrument")
                spec = self.registry.lookup(instrument) or ContractSpec(instrument.upper())
                if len(self._resolved) >= 4096:  # bounded: product codes and symbols repeat
                    self._resolved.clear()
                self._resolved[memo] = spec
        else:
            raise TypeError(
                f"instrument must be a product code, a symbol or a ContractSpec, got {instrument!r}"
            )
        if (
            isinstance(instrument, str)
            and currency is None
            and "exchange" in overrides
            and self.registry.lookup(instrument) is None
        ):
            implied = EXCHANGE_CURRENCIES.get(overrides["exchange"].upper())
            if implied is not None:
                overrides["currency"] = implied
        if overrides:
            spec = attrs.evolve(spec, **overrides)
        return spec

    @contextlib.contextmanager
    def _assumed_currency(
        self, instrument: object, currency: object, spec: ContractSpec
    ) -> Iterator[None]:
        """Add to a ContractNotFoundError that ibdata assumed the currency (USD, the default
        of a plain symbol) when the caller gave none and looked beyond a stock on SMART."""
        try:
            yield
        except ContractNotFoundError as exc:
            assumed = (
                currency is None
                and isinstance(instrument, str)
                and self.registry.lookup(instrument) is None
                and (spec.sec_type is not SecType.STK or spec.exchange != "SMART")
            )  # a plain stock on SMART is the default lookup: USD is no surprise there
            if not assumed:
                raise
            note = (
                f" (ibdata assumed currency {spec.currency}, the default for a plain symbol; "
                "give currency= if the contract trades in another)"
            )
            raise ContractNotFoundError(exc.code, exc.message + note, exc.req_id) from exc

    def get_contract_details(
        self,
        instrument: str | ContractSpec,
        *,
        sec_type: SecType | str | None = None,
        exchange: str | None = None,
        currency: str | None = None,
        include_expired: bool = False,
        timeout: float | dt.timedelta | None = None,
    ) -> list[ContractDetails]:
        """Every contract IB lists for ``instrument`` (see :meth:`resolve`).

        A futures product without a month gives its continuous contract (one entry, the
        front month); a FUT spec without an expiry gives every live expiry.

        Blocks until TWS answers or ``timeout`` (default: the client's) passes.

        Raises:
            ContractNotFoundError: IB knows no such contract (200).
            RequestError: IB reported another error.
            RequestTimeoutError: no answer in time.
            NotConnectedError: no session within the timeout.
            ConnectionLostError: the session dropped during the request.
            ValueError: an argument is invalid (nothing was sent).
        """
        spec = self.resolve(
            instrument,
            sec_type=sec_type,
            exchange=exchange,
            currency=currency,
            include_expired=include_expired,
        )
        limit, deadline = self._deadline(timeout)
        with self._assumed_currency(instrument, currency, spec):
            return self._contract_details(spec, limit, deadline)

    def _contract_details(
        self, spec: ContractSpec, limit: float, deadline: float
    ) -> list[ContractDetails]:
        contract = _convert.to_ib_contract(spec)

        def send(client: Any, req_id: int) -> None:
            client.reqContractDetails(req_id, contract)

        def build(items: list[Any], extra: Any) -> list[ContractDetails]:
            # parsed by the fast path already, or ibapi objects from its decoder
            return [
                cd if isinstance(cd, ContractDetails) else _convert.contract_details(cd)
                for cd in items
            ]

        conn, p = self._send(DETAILS, send, build, None, deadline)
        details: list[ContractDetails] = self._wait(conn, p, limit, deadline)
        self._details[spec] = (time.monotonic(), details)
        return details

    def _contract_for(
        self,
        instrument: object,
        currency: object,
        spec: ContractSpec,
        limit: float,
        deadline: float,
    ) -> ContractDetails:
        """The one contract of ``spec``, saying in a ContractNotFoundError when the currency
        was assumed."""
        with self._assumed_currency(instrument, currency, spec):
            return self._one_contract(spec, limit, deadline)

    def _one_contract(self, spec: ContractSpec, limit: float, deadline: float) -> ContractDetails:
        cached = self._details.get(spec)
        if cached is not None and time.monotonic() - cached[0] < DETAILS_TTL:
            details = cached[1]
        else:
            details = self._contract_details(spec, limit, deadline)
        if not details:
            raise ContractNotFoundError(0, f"IB lists no contract for {spec.describe()}")
        if len(details) > 1:
            raise AmbiguousContractError(
                0,
                f"{spec.describe()} matches {len(details)} contracts; give an expiry, a local "
                "symbol or a con_id (candidates are on the exception)",
                candidates=tuple(d.contract for d in details),
            )
        return details[0]

    def get_historical_bars(
        self,
        instrument: str | ContractSpec,
        *,
        duration: str | None = None,
        start: dt.datetime | dt.date | str | None = None,
        end: dt.datetime | dt.date | str | None = None,
        bar_size: BarSize | str = BarSize.ONE_HOUR,
        what_to_show: WhatToShow | str = WhatToShow.TRADES,
        use_rth: bool = False,
        timeout: float | dt.timedelta | None = None,
        sec_type: SecType | str | None = None,
        exchange: str | None = None,
        currency: str | None = None,
        progress: Progress | None = None,
        max_requests: int | None = None,
    ) -> Bars:
        """Historical bars: ``duration`` back from ``end``, or the whole range ``[start, end)``.

        With ``duration`` (default ``"1 D"``) this is one request to IB (shared by identical
        calls made while it is in flight). With ``start`` it is the history engine: the
        range is split into requests IB accepts, paced under IB's rules, merged without
        duplicates, and cached when the client has a cache.

        Args:
            instrument: a product code, a symbol or a ContractSpec (see :meth:`resolve`).
            duration: IB's duration ``"<n> <S|D|W|M|Y>"``: ``"3600 S"``, ``"1 D"``, ``"1 W"``,
                ``"1 M"``, ``"1 Y"`` (at most 365 D, 52 W, 12 M). Not with ``start``.
            start: the range's start: an aware datetime, a date (00:00 UTC), or an ISO 8601
                string (``"2025-03-12"``, ``"2025-03-12T15:00Z"``); a time without a zone
                is refused, as in the CLI and REST. Not with ``duration``.
            end: the same forms; None means now.
            bar_size: a :class:`~ibdata.models.BarSize` or IB's string (``"1 hour"``).
            what_to_show: a :class:`~ibdata.models.WhatToShow` or IB's string.
            use_rth: only bars inside regular trading hours.
            timeout: seconds for each request to IB (the contract lookup, and every chunk
                of a range); waiting for the pacing rules does not count.
            sec_type: overrides the security type (default STK for plain symbols).
            exchange: overrides the exchange (default SMART for plain symbols).
            currency: overrides the currency (default USD for plain symbols).
            progress: called as ``progress(chunks_done, chunks_total, bars_so_far)`` while a
                range downloads (see :func:`ibdata.tqdm_progress`).
            max_requests: for a range, the most historical-data requests it may need (the
                cached parts need none); a range that needs more raises
                :class:`~ibdata.exceptions.RangeTooLargeError` before any bars are
                requested, with the plan :meth:`plan` would give. None sets no limit. A
                service answering callers it does not control, or a command line run by
                people, uses it to bound the time one call can take.

        Returns:
            The bars, oldest first, without duplicates, with the contract IB resolved and the
            request's metadata. Intraday bars carry UTC datetimes; daily and longer bars the
            session date. A range holds exactly the bars IB has in ``[start, end)`` (daily
            and longer bars by their session date at 00:00 UTC); weekends, holidays and
            times before the instrument's first data are simply absent.

        Blocks until every request has been answered.

        Raises:
            ContractNotFoundError: IB knows no such contract.
            AmbiguousContractError: the instrument matches several contracts.
            NoDataError: IB has no bars for a single-request window (a range is empty
                instead).
            PacingViolationError: IB refused for pacing after the retries (another program
                is loading the same session).
            PermissionDeniedError: no market-data permission for the instrument.
            RequestError: IB reported another error (e.g. 321 invalid request, 10339).
            RequestTimeoutError: a request got no answer in time; it was cancelled at IB.
            NotConnectedError: no session within the timeout.
            ConnectionLostError: the session dropped during a request.
            RangeTooLargeError: the range needs more than ``max_requests`` requests (a
                ValueError; no bars were requested).
            ValueError: an argument is invalid, or a continuous future's range ends in
                the past (nothing was sent).
            TypeError: an argument has the wrong type (nothing was sent).
        """
        size = v.bar_size(bar_size)
        show = v.what_to_show(what_to_show)
        if start is not None and duration is not None:
            raise ValueError("give either start (a range) or duration, not both")
        begin = v.optional_when(start, "start")
        span = v.duration(duration if duration is not None else "1 D")
        end_at = v.optional_when(end, "end")
        rth = v.flag(use_rth, "use_rth")
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be callable, got {progress!r}")
        most = None if max_requests is None else v.count(max_requests, "max_requests")
        spec = self.resolve(instrument, sec_type=sec_type, exchange=exchange, currency=currency)
        limit, deadline = self._deadline(timeout)
        if begin is None:
            end_text = _convert.end_date_time(end_at)

            def one() -> Bars:
                details = self._contract_for(instrument, currency, spec, limit, deadline)
                job = Job(spec, details, size, show, rth, limit)
                expired = None
                if end_at is None:
                    expired = _expired_end(details.contract, dt.datetime.now(dt.timezone.utc))
                text = end_text if expired is None else _convert.end_date_time(expired)
                return self._request_bars(job, text, span)

            # Identical requests in flight at the same moment (many threads, many REST
            # consumers) share one IB request, as identical range downloads do. The timeout
            # is part of the identity: a caller never waits on a request with a longer one.
            key = ("window", spec, size, show, rth, span, end_text, limit)
            return self._engine.shared(key, one)
        stop = _range_end(spec, size, begin, end_at)

        def run() -> Bars:
            details = self._contract_for(instrument, currency, spec, limit, deadline)
            job = Job(spec, details, size, show, rth, limit)
            return self._engine.download(job, begin, stop, progress, most)

        if progress is not None:  # a caller watching its own progress runs its own download
            return run()
        return self._engine.shared((spec, size, show, rth, begin, stop, limit, most), run)

    def stream_bars(
        self,
        instrument: str | ContractSpec,
        *,
        bar_size: BarSize | str,
        what_to_show: WhatToShow | str = WhatToShow.TRADES,
        use_rth: bool = False,
        start: dt.datetime | dt.date | str | None = None,
        lookback: dt.timedelta | float | None = None,
        on_bar: Callable[[Bar], object] | None = None,
        on_event: Callable[[StreamEvent], object] | None = None,
        include_partial: bool = False,
        stall_after: float | dt.timedelta | None = None,
        timeout: float | dt.timedelta | None = None,
        sec_type: SecType | str | None = None,
        exchange: str | None = None,
        currency: str | None = None,
    ) -> BarStream:
        """Live bars: the history from ``start`` (if given), then every bar as it ends.

        Subscribes with IB's ``keepUpToDate`` and returns a :class:`~ibdata.BarStream` once
        IB has answered: iterate it for final :class:`~ibdata.models.Bar` objects, oldest
        first, or pass ``on_bar``. The stream is gap-free and free of duplicates across
        session drops, 1100/1101/1102, data farm outages, stalls and IB's nightly reset: it
        subscribes again (paced, as every historical request), takes what it missed from
        history and goes on. See :doc:`/streaming`.

        Args:
            instrument: a product code, a symbol or a ContractSpec (see :meth:`resolve`).
            bar_size: 5 secs or longer (IB's keepUpToDate rule).
            what_to_show: ``TRADES``, ``MIDPOINT``, ``BID`` or ``ASK`` (IB's rule).
            use_rth: only bars inside regular trading hours.
            start: first yield the history from here (through the history engine and the
                cache); the same time forms as :meth:`get_historical_bars`. None: only bars
                that end from now on.
            lookback: instead of ``start``: that long before now (seconds or a timedelta).
            on_bar: called with every bar on the stream's thread, instead of iterating.
            on_event: called with every :class:`~ibdata.StreamEvent` (also kept on
                :attr:`BarStream.events` and logged on the ``ibdata.stream`` logger).
            include_partial: also yield the bar still forming, as
                :class:`~ibdata.PartialBar` objects, after every update.
            stall_after: seconds without an update after which the subscription counts as
                stalled and is made again; by default the bar size (at most 60 s) plus
                30 s. While the market is closed the wait doubles after every stall that
                brings nothing new, up to 15 minutes.
            timeout: seconds for each request (the contract lookup, each subscription, each
                history request).
            sec_type: overrides the security type (default STK for plain symbols).
            exchange: overrides the exchange (default SMART for plain symbols).
            currency: overrides the currency (default USD for plain symbols).

        Returns:
            The live :class:`~ibdata.BarStream`; close it (or use it as a context manager)
            to cancel the subscription at IB. Closing the client closes its streams.

        Blocks until the contract lookup and the first subscription are answered.

        Raises:
            ContractNotFoundError: IB knows no such contract.
            AmbiguousContractError: the instrument matches several contracts.
            PermissionDeniedError: no market-data permission for the instrument.
            RequestError: IB refused the subscription (e.g. 321).
            RequestTimeoutError: a request got no answer in time.
            NotConnectedError: no session within the timeout.
            ValueError: an argument is invalid (nothing was sent).
            TypeError: an argument has the wrong type (nothing was sent).
        """
        size = v.bar_size(bar_size)
        show = v.what_to_show(what_to_show)
        if size.seconds < 5:
            raise ValueError(
                f"bar_size must be 5 secs or longer for live bars (IB's keepUpToDate rule); "
                f"got {size.value!r}"
            )
        if show not in _stream.LIVE_WHAT_TO_SHOW:
            names = ", ".join(w.value for w in _stream.LIVE_WHAT_TO_SHOW)
            raise ValueError(
                f"what_to_show must be one of {names} for live bars; got {show.value!r}"
            )
        rth = v.flag(use_rth, "use_rth")
        if start is not None and lookback is not None:
            raise ValueError("give either start or lookback, not both")
        begin = v.optional_when(start, "start")
        if lookback is not None:
            begin = dt.datetime.now(dt.timezone.utc) - dt.timedelta(
                seconds=v.seconds(lookback, "lookback")
            )
        for name, fn in (("on_bar", on_bar), ("on_event", on_event)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable, got {fn!r}")
        partial = v.flag(include_partial, "include_partial")
        stall = v.optional_seconds(stall_after, "stall_after")
        if stall is None:
            stall = min(size.seconds, 60) + 30.0
        spec = self.resolve(instrument, sec_type=sec_type, exchange=exchange, currency=currency)
        limit, deadline = self._deadline(timeout)
        details = self._contract_for(instrument, currency, spec, limit, deadline)
        job = Job(spec, details, size, show, rth, limit)
        return self._streams.open(
            job,
            start=begin,
            on_bar=on_bar,
            on_event=on_event,
            include_partial=partial,
            stall_after=stall,
        )

    def plan(
        self,
        instrument: str | ContractSpec,
        *,
        start: dt.datetime | dt.date | str,
        end: dt.datetime | dt.date | str | None = None,
        bar_size: BarSize | str = BarSize.ONE_HOUR,
        what_to_show: WhatToShow | str = WhatToShow.TRADES,
        use_rth: bool = False,
        timeout: float | dt.timedelta | None = None,
        sec_type: SecType | str | None = None,
        exchange: str | None = None,
        currency: str | None = None,
    ) -> DownloadPlan:
        """What ``get_historical_bars(instrument, start=..., ...)`` would send IB, unsent.

        Takes the arguments of a range download and plans it as the download would: the
        range clipped to the instrument's head timestamp, less what the cache holds, cut
        into requests IB accepts. It sends no historical-data and no head-timestamp
        request; it looks the contract up (one contract-details request, reused for an
        hour, as the download does), since the cache, the chunks and the pacing rules are
        per contract. What it cannot know without asking IB:

        - the head timestamp, unless this client asked for it before or its cache holds
          it: the plan then starts at ``start`` and counts the head-timestamp request the
          download will send (``head_timestamp`` is None, ``head_timestamp_request``
          True), so it may count requests for a time before the first data;
        - where IB has bars: a weekend or a holiday costs a request all the same, as in
          the download;
        - how long IB takes to answer, and the requests other programs send on the same
          TWS login: ``minimum_time`` is what IB's pacing rules allow from an idle
          session, not a forecast.

        The plan holds while the cache and the head timestamp stay as they are; another
        download into the same cache in between makes it smaller. A continuous future is
        one request ending now.

        Args:
            instrument: a product code, a symbol or a ContractSpec (see :meth:`resolve`).
            start: the range's start, timezone-aware.
            end: timezone-aware; None means now.
            bar_size: a :class:`~ibdata.models.BarSize` or IB's string (``"1 hour"``).
            what_to_show: a :class:`~ibdata.models.WhatToShow` or IB's string.
            use_rth: only bars inside regular trading hours.
            timeout: seconds for the contract lookup.
            sec_type: overrides the security type (default STK for plain symbols).
            exchange: overrides the exchange (default SMART for plain symbols).
            currency: overrides the currency (default USD for plain symbols).

        Returns:
            The :class:`~ibdata.models.DownloadPlan`: ``requests``, the ``chunks`` and the
            ``minimum_time`` the client's pacing rules need to send them.

        Blocks until the contract lookup is answered (at once when it is remembered).

        Raises:
            ContractNotFoundError: IB knows no such contract.
            AmbiguousContractError: the instrument matches several contracts.
            RequestError: IB reported another error for the contract lookup.
            RequestTimeoutError: the contract lookup got no answer in time.
            NotConnectedError: no session within the timeout.
            ConnectionLostError: the session dropped during the lookup.
            ValueError: an argument is invalid, or a continuous future's range ends in the
                past (nothing was sent).
            TypeError: an argument has the wrong type (nothing was sent).
        """
        size = v.bar_size(bar_size)
        show = v.what_to_show(what_to_show)
        begin = v.when(start, "start")
        end_at = v.optional_when(end, "end")
        rth = v.flag(use_rth, "use_rth")
        spec = self.resolve(instrument, sec_type=sec_type, exchange=exchange, currency=currency)
        limit, deadline = self._deadline(timeout)
        stop = _range_end(spec, size, begin, end_at)
        details = self._contract_for(instrument, currency, spec, limit, deadline)
        job = Job(spec, details, size, show, rth, limit)
        return self._engine.plan(job, begin, stop)

    def _paced(
        self,
        kind: str,
        request: PacedRequest,
        limit: float,
        send: Callable[[Connection, float], T],
        *,
        hold: list[object] | None = None,
    ) -> T:
        """Run one historical request under the pacer, retrying pacing refusals.

        ``send(conn, deadline)`` makes the request and waits for its answer. A pacing
        refusal (another program on the login used IB's budget) is sent again when the
        ledger says the likely rule leaves room (see :class:`ibdata._pacer.Ledger`), at
        most :data:`PACING_RETRIES` times, and never later than ``limit`` allows: a wait
        longer than ``limit`` raises at once.

        With ``hold`` (a live subscription), the open-request slot stays taken when the
        request succeeds: its pacer key is appended to ``hold`` for the caller to release.
        """
        for attempt in range(PACING_RETRIES + 1):
            token = object()
            kept = False
            if self._pacer is not None:
                self._pacer.acquire(request, token, None)
            sent = time.monotonic()
            try:
                deadline = sent + limit
                self._throttled(kind, deadline)
                while True:
                    conn = self._session(deadline)
                    if isinstance(self._pacer, SharedPacer):
                        self._pacer.sent(token)  # the ledger counts it from now
                    sent = time.monotonic()
                    self._ledger.record(token, request, sent)
                    try:
                        result = send(conn, deadline)
                        if hold is not None:
                            hold.append(token)
                            kept = True
                        return result
                    except RequestNotSentError:
                        if time.monotonic() >= deadline:
                            raise
                        # nothing reached TWS: wait for the next session and send again
            except PacingViolationError as exc:
                elsewhere = self._pacer.others() if isinstance(self._pacer, SharedPacer) else []
                verdict = self._ledger.diagnose(token, request, sent, elsewhere)
                now = time.monotonic()
                wait = max(verdict.at - now, 0.0)
                rule = verdict.described
                note = ""
                if attempt == PACING_RETRIES:
                    note = f"refused {attempt + 1} times"
                elif wait > limit:
                    note = f"not retried: the wait exceeds the {limit:g} s timeout"
                if note:
                    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=wait)
                    raise PacingViolationError(
                        exc.code, exc.message, exc.req_id,
                        retry_after=wait, rule=rule, retry_at=at, note=note,
                    ) from exc  # fmt: skip
                log.warning(
                    "%s refused for pacing (%s, request %s), likely %s; retry %d in %.3f s",
                    kind,
                    exc.code,
                    exc.req_id,
                    rule,
                    attempt + 1,
                    wait,
                )
                self._stop.wait(wait)
            finally:
                if self._pacer is not None and not kept:
                    self._pacer.release(token)
        raise AssertionError("unreachable")  # pragma: no cover

    def _release_slot(self, token: object) -> None:
        """Give back an open-request slot kept by :meth:`_paced` with ``hold``."""
        if self._pacer is not None:
            self._pacer.release(token)

    def _request_bars(self, job: Job, end_text: str, duration: str) -> Bars:
        """One reqHistoricalData, paced; the building block of every bar call."""
        contract = _convert.to_ib_contract(job.spec)
        asked_end = _convert.parse_ib_time(end_text, None) if end_text else None

        def send_req(client: Any, req_id: int) -> None:
            client.reqHistoricalData(
                req_id, contract, end_text, duration, job.size.value, job.show.value,
                int(job.rth), FORMAT_DATE, False, [],
            )  # fmt: skip

        def cancel(client: Any, req_id: int) -> None:
            client.cancelHistoricalData(req_id)

        def send(conn: Connection, deadline: float) -> Bars:
            build = _bars_builder(job, conn, asked_end)
            p = conn.request(BARS, send_req, build=build, cancel=cancel)
            bars: Bars = self._wait(conn, p, job.limit, deadline)
            return bars

        return self._paced("historical bars", job.paced_bars(end_text, duration), job.limit, send)

    def _subscribe(self, job: Job, duration: str, sink: LiveSink) -> Subscription:
        """One keepUpToDate reqHistoricalData, paced like any, whose open-request slot stays
        taken until the subscription is cancelled; its updates and later errors go to
        ``sink``. Returns its first answer (the last bar still forming)."""
        contract = _convert.to_ib_contract(job.spec)
        held: list[object] = []
        sent: list[tuple[Connection, int]] = []

        def cancel_req(client: Any, req_id: int) -> None:
            client.cancelHistoricalData(req_id)

        def send(conn: Connection, deadline: float) -> tuple[Bars, Callable[..., Bars]]:
            def send_req(client: Any, req_id: int) -> None:
                conn.live[req_id] = sink  # before the request: no update can be missed
                sent.append((conn, req_id))
                client.reqHistoricalData(
                    req_id, contract, "", duration, job.size.value, job.show.value,
                    int(job.rth), FORMAT_DATE, True, [],
                )  # fmt: skip

            build = _bars_builder(job, conn, None)
            p = conn.request(BARS, send_req, build=build, cancel=cancel_req)
            bars: Bars = self._wait(conn, p, job.limit, deadline)
            return bars, build

        paced = job.paced_bars("", duration)
        paced = attrs.evolve(paced, identity=(*paced.identity, "keepUpToDate"))
        try:
            bars, build = self._paced("live bars", paced, job.limit, send, hold=held)
        except BaseException:
            for conn, req_id in sent:
                conn.live.pop(req_id, None)
            raise
        conn, req_id = sent[-1]
        for old, old_id in sent[:-1]:  # attempts refused for pacing
            old.live.pop(old_id, None)

        def cancel() -> None:
            if conn.live.pop(req_id, None) is not None:
                conn.send_cancel(req_id, cancel_req)
            for token in held:
                self._release_slot(token)

        return Subscription(bars, lambda columns: build([], columns), cancel)

    def _request_head(self, job: Job) -> dt.datetime:
        """reqHeadTimestamp (paced like a small-bar request), then its cancel, which frees
        the open-request slot TWS keeps for it."""
        spec, show, rth, limit = job.spec, job.show, job.rth, job.limit
        contract = _convert.to_ib_contract(spec)
        paced = job.paced_head()

        def send_req(client: Any, req_id: int) -> None:
            client.reqHeadTimeStamp(req_id, contract, show.value, int(rth), 2)

        def cancel(client: Any, req_id: int) -> None:
            client.cancelHeadTimeStamp(req_id)

        def send(conn: Connection, deadline: float) -> dt.datetime:
            def build(items: list[Any], extra: Any) -> dt.datetime:
                return _convert.parse_ib_time(str(items[0]), conn.login_tz)

            p = conn.request(HEAD, send_req, build=build, cancel=cancel)
            try:
                head: dt.datetime = self._wait(conn, p, limit, deadline)
            finally:
                if p.cancel is not None and p.future.done():
                    p.cancel()
            return head

        return self._paced("head timestamp", paced, limit, send)
