"""Live bars: one stream from history into the present, gap-free across faults.

A :class:`BarStream` runs one worker thread. It subscribes with ``keepUpToDate`` through a
:class:`Feed` (the client's narrow interface: one paced subscription, one history
download), yields the bars of the subscription's first answer and of every
historicalDataUpdate as they become final, and repairs the stream itself:

* **the seam** with history: the subscription is made first; its first answer's earliest
  bar is where the history download (through the engine and the store) ends, so nothing
  is fetched twice and the store only ever holds bars that had ended;
* **de-duplication**: a final bar is yielded only if it is later than the last final bar
  yielded, whatever source it came from;
* **finality**: a bar is final when the update of the very next bar on the grid arrives
  with no disruption since the bar began (the last update of a bar is its final state:
  the simulator and, as far as reports go, TWS send it at the boundary). Otherwise - a
  jump over several bars, a session change, daily bars, any fault in between - the bars
  from the forming one up to the new one are taken from history, which is what a later
  download returns;
* **faults**: a lost session, 1100/1101/1102, an HMDS farm broken then OK, error 10182
  and a stall (no update for ``stall_after`` seconds) all lead to the same repair:
  cancel, resubscribe (paced, as any historical request), backfill what the new answer
  does not cover from history, de-duplicate, go on. Restoration notices are always acted
  on, 1102 ("data maintained") included, because TWS keeps the socket but drops
  keepUpToDate subscriptions at its nightly reset;
* **endings**: :meth:`BarStream.close`, the client's close, or an error that leaves
  nothing to stream (no permission, no such contract) ends the stream; the iterator then
  raises that error after the bars it had.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Final, Protocol

import attrs

from ibdata import _convert, _planner
from ibdata._engine import Job
from ibdata.exceptions import (
    AmbiguousContractError,
    ContractNotFoundError,
    IBDataError,
    InvalidRequestError,
    NotConnectedError,
    PermissionDeniedError,
    error_for,
)
from ibdata.models import Bar, Bars, BarSize, WhatToShow

log = logging.getLogger("ibdata.stream")

UTC: Final = dt.timezone.utc

#: What keepUpToDate serves (IB's rule).
LIVE_WHAT_TO_SHOW: Final = (WhatToShow.TRADES, WhatToShow.MIDPOINT, WhatToShow.BID, WhatToShow.ASK)
#: Event kinds, in the order they usually appear.
EVENT_KINDS: Final = (
    "subscribed",
    "session_lost",
    "connectivity",
    "stalled",
    "gap",
    "resubscribed",
    "backfilled",
    "ended",
)
#: Notices after which the subscription is presumed dead: connectivity lost, a market or
#: historical data farm broken.
_SUSPEND: Final = frozenset({1100, 2103, 2105, 2110})
#: Notices after which a suspended stream resubscribes.
_RESTORE: Final = frozenset({1101, 1102, 2104, 2106})
#: Errors for a live subscription that end it without ending the stream: it is made again.
_LIVE_LOST: Final = frozenset({10182, 366, 162, 1100, 2105})
#: Errors after which there is nothing to stream.
_FATAL: Final = (
    ContractNotFoundError,
    AmbiguousContractError,
    PermissionDeniedError,
    InvalidRequestError,
    TypeError,
    ValueError,
)
#: Restoration notices come in bursts (2104, 2106, 1102): wait this long for the last.
SETTLE_SECONDS: Final = 0.25
#: Longest pause between attempts to subscribe again, and between stall checks.
MAX_BACKOFF: Final = 900.0
#: While suspended, a stall counts only after this many times the stall time.
SUSPENDED_FACTOR: Final = 4
#: Most events kept on :attr:`BarStream.events`.
MAX_EVENTS: Final = 1000


class PartialBar(Bar):
    """The bar still forming, yielded by a stream made with ``include_partial=True``.

    A :class:`~ibdata.models.Bar` with the values so far: it is yielded again with every
    update, and once the bar ends the final :class:`~ibdata.models.Bar` of the same time is
    yielded exactly once (``type(b) is Bar``). Test with ``isinstance(b, PartialBar)``.
    A partial bar is never stored.
    """


@attrs.frozen
class StreamEvent:
    """Something that happened to a live stream (see :attr:`BarStream.events`).

    Attributes:
        kind: one of ``subscribed``, ``session_lost``, ``connectivity``, ``stalled``,
            ``gap``, ``resubscribed``, ``backfilled``, ``ended``.
        at: when it happened (this machine's clock, aware UTC).
        detail: a sentence saying what happened.
        start: for ``gap`` and ``backfilled``: the first bar time concerned.
        end: for ``gap`` and ``backfilled``: the time up to which (exclusive) history was
            asked.
        bars: for ``backfilled``: the bars history supplied that had not been yielded.
        code: the TWS code of a ``connectivity`` notice or of the error that ended a
            subscription, else None.
    """

    kind: str
    at: dt.datetime
    detail: str
    start: dt.datetime | dt.date | None = None
    end: dt.datetime | dt.date | None = None
    bars: int = 0
    code: int | None = None


@attrs.frozen
class Subscription:
    """A live subscription made by a :class:`Feed`: its first answer (the last bar
    possibly still forming), how to turn an update into bars, and how to cancel it."""

    bars: Bars
    convert: Callable[[_convert.BarColumns], Bars]
    cancel: Callable[[], None]


class Feed(Protocol):
    """What a stream needs of a client."""

    def subscribe(self, job: Job, duration: str, sink: Any) -> Subscription:
        """Send one paced keepUpToDate request and wait for its first answer; ``sink``
        (a :class:`ibdata._connection.LiveSink`) gets its updates and later errors.
        The subscription holds one open-request slot of the pacing ledger until cancelled.
        """
        ...

    def history(self, job: Job, start: dt.datetime, end: dt.datetime) -> Bars:
        """Every bar of ``[start, end)`` through the history engine (and its store)."""
        ...

    def detach(self, stream: BarStream) -> None:
        """The stream has ended: forget it."""
        ...


def _key(time_: dt.datetime | dt.date, intraday: bool = True) -> float:
    """A bar time (or a range's end) as one comparable number: epoch seconds for intraday
    bars, the date's ordinal for daily and longer ones (a datetime: its UTC date)."""
    if isinstance(time_, dt.datetime):
        if intraday:
            return time_.timestamp()
        return float(time_.astimezone(UTC).date().toordinal())
    return float(time_.toordinal())


def _as_datetime(time_: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(time_, dt.datetime):
        return time_
    return dt.datetime(time_.year, time_.month, time_.day, tzinfo=UTC)


def live_duration(size: BarSize, seconds: float) -> str:
    """The duration of a keepUpToDate request covering ``seconds`` back from now, at least
    two bars, in a unit IB accepts for ``size``, and no longer than one request of the
    history guide's table may be (a longer gap is backfilled from history)."""
    cap = _planner.chunk_span(size)[1].total_seconds()
    want = min(max(seconds, 2 * size.seconds, 60), cap)
    if size.intraday and want <= 86_400:
        return f"{math.ceil(want)} S"
    days = min(max(math.ceil(want / 86_400), 2), 365)
    return f"{days} D"


class _Sink:
    """The connection's end of one subscription: queues its messages for the worker."""

    __slots__ = ("_generation", "_inbox")

    def __init__(self, inbox: queue.SimpleQueue[tuple[Any, ...]], generation: int) -> None:
        self._inbox = inbox
        self._generation = generation

    def update(self, columns: _convert.BarColumns) -> None:
        self._inbox.put(("update", self._generation, columns, time.monotonic()))

    def error(self, code: int, text: str) -> None:
        self._inbox.put(("error", self._generation, code, text))


_END = object()


class BarStream:
    """Live bars of one series: the history from ``start`` (if given), then every bar as it
    ends, with no gap and no duplicate. Made by :meth:`ibdata.Client.stream_bars`.

    Iterate it (``for bar in stream``) for final :class:`~ibdata.models.Bar` objects,
    oldest first (and :class:`PartialBar` updates when made with ``include_partial``), or
    give ``on_bar`` to have them delivered to a callable on the stream's thread. Use it as
    a context manager, or call :meth:`close`: either cancels the subscription at IB.

    When the stream cannot continue (the permission was withdrawn, the contract is gone),
    iteration raises the error after the bars that came before it, and ``error`` holds
    it. Closing ends iteration normally.

    Attributes:
        events: what happened to the stream (:class:`StreamEvent`, the last 1,000),
            oldest first.
        bars_yielded: final bars delivered so far.
        error: the exception that ended the stream, or None.
        subscribed: a :class:`threading.Event` set once the first subscription was
            answered or failed.
    """

    def __init__(self) -> None:
        raise TypeError("a BarStream is made by Client.stream_bars(...)")

    @classmethod
    def _create(cls, feed: Feed, job: Job, **options: Any) -> BarStream:
        """A stream, not started (see :meth:`start`)."""
        stream = cls.__new__(cls)
        stream._setup(feed, job, **options)
        return stream

    def _setup(
        self,
        feed: Feed,
        job: Job,
        *,
        start: dt.datetime | None,
        on_bar: Callable[[Bar], object] | None,
        on_event: Callable[[StreamEvent], object] | None,
        include_partial: bool,
        stall_after: float,
        name: str,
    ) -> None:
        self._feed = feed
        self._job = job
        self._size = job.size
        self._start = start
        self._on_bar = on_bar
        self._on_event = on_event
        self._partial = include_partial
        self._stall_after = stall_after
        self.name = name
        self.events: deque[StreamEvent] = deque(maxlen=MAX_EVENTS)
        self.bars_yielded = 0
        self.error: BaseException | None = None
        self._inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        # worker state
        self._generation = 0
        self._sub: Subscription | None = None
        self._last: float | None = None  # key of the last final bar yielded
        # nothing earlier than start is yielded (the first answer may reach further back)
        self._floor = None if start is None else _key(start, job.size.intraday)
        self._forming: Bar | None = None
        self._clean = False  # no disruption since the forming bar's first update
        self._suspended = False
        self._resubscribe_at: float | None = None  # monotonic; a pending resubscription
        self._last_message = time.monotonic()
        self._quiet = 0  # stalls in a row that brought no new bar
        self._first_error: BaseException | None = None
        self.subscribed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ibdata-stream-{name}", daemon=True)

    # ------------------------------------------------------------------ public
    def start(self) -> BarStream:
        """Start the worker and wait for the first subscription's answer (done by
        ``Client.stream_bars``); the history and the live bars then come in the background.

        Raises:
            IBDataError: the first subscription failed (the stream has ended).
        """
        self._thread.start()
        self.subscribed.wait()
        if self._first_error is not None:
            self._thread.join(self._job.limit)
            raise self._first_error
        return self

    @property
    def closed(self) -> bool:
        """True once the stream has ended (closed, or stopped by an error)."""
        return self._done.is_set()

    @property
    def bar_size(self) -> BarSize:
        """The stream's bar size."""
        return self._size

    @property
    def contract(self) -> Any:
        """The contract streamed (:class:`~ibdata.models.Contract`)."""
        return self._job.details.contract

    def close(self, timeout: float | None = None) -> None:
        """Cancel the subscription at IB and end the stream. Idempotent.

        Waits up to ``timeout`` seconds (the request timeout by default) for the worker to
        stop; a request it has in flight ends within that timeout.
        """
        self._closing.set()
        self._inbox.put(("close",))
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self._job.limit if timeout is None else timeout)

    def __enter__(self) -> BarStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Bar]:
        return self

    def __next__(self) -> Bar:
        item = self.next(None)
        if item is None:  # pragma: no cover - next(None) only returns on an item or end
            raise StopIteration
        return item

    def next(self, timeout: float | None) -> Bar | None:
        """The next bar, waiting up to ``timeout`` seconds (None: until one comes);
        None if none came in time.

        Raises:
            StopIteration: the stream was closed and every bar was taken.
            IBDataError: the stream ended with this error (after every bar before it).
        """
        if self._on_bar is not None:
            raise TypeError("this stream delivers its bars to on_bar; do not iterate it")
        try:
            item = self._out.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _END:
            self._out.put(_END)  # every later call ends too
            if self.error is not None:
                raise self.error
            raise StopIteration
        bar: Bar = item
        return bar

    def notice(self, code: int, text: str) -> None:
        """A connectivity or farm notice of the client's session (from the client)."""
        self._inbox.put(("notice", code, text))

    def session_lost(self, why: str) -> None:
        """The client's session dropped (from the client)."""
        self._inbox.put(("lost", why))

    def session_ready(self) -> None:
        """The client has a new session (from the client)."""
        self._inbox.put(("ready",))

    def __repr__(self) -> str:
        state = "closed" if self.closed else "live"
        return (
            f"<BarStream {self.name} {self._size.value} {self._job.show.value} "
            f"{state} bars={self.bars_yielded}>"
        )

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        try:
            self._subscribe("subscribed", first=True)
            while not self._closing.is_set():
                msg = self._take()
                if msg is None:
                    continue
                self._handle(msg)
        except _StreamClosedError:
            pass
        except BaseException as exc:  # the stream ends with the error that stopped it
            self.error = exc
            if exc is self._first_error:
                return
            self._event("ended", f"the stream ended: {exc}", code=getattr(exc, "code", None))
            log.warning("stream %s ended: %s", self.name, exc)
        finally:
            self.subscribed.set()
            self._cancel()
            self._done.set()
            self._out.put(_END)
            self._feed.detach(self)

    def _take(self) -> tuple[Any, ...] | None:
        """The next message, or None after acting on a timer (stall, resubscription)."""
        now = time.monotonic()
        due = [self._last_message + self._stall_window()]
        if self._resubscribe_at is not None:
            due.append(self._resubscribe_at)
        wait = min(due) - now
        if wait > 0:
            try:
                return self._inbox.get(timeout=wait)
            except queue.Empty:
                pass
        now = time.monotonic()
        if self._resubscribe_at is not None and now >= self._resubscribe_at:
            self._resubscribe_at = None
            self._subscribe("resubscribed")
        elif now >= self._last_message + self._stall_window():
            self._quiet += 1
            self._event(
                "stalled",
                f"no update for {now - self._last_message:.1f} s; subscribing again",
            )
            self._subscribe("resubscribed")
        return None

    def _stall_window(self) -> float:
        """Seconds of silence that count as a stall: ``stall_after``, doubled for every
        stall in a row that brought nothing new (a market that is closed), at most
        :data:`MAX_BACKOFF`; four times as long while TWS says its connection is down
        (the restore notice is awaited, and a request now would only be held)."""
        window: float = self._stall_after * 2 ** min(self._quiet, 16)
        if self._suspended:
            window *= SUSPENDED_FACTOR
        return min(window, max(MAX_BACKOFF, self._stall_after))

    def _handle(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "close":
            raise _StreamClosedError
        if kind == "update":
            _, generation, columns, at = msg
            if generation == self._generation and self._sub is not None:
                self._last_message = at
                try:
                    bars = self._sub.convert(columns)
                except (ValueError, IBDataError) as exc:
                    log.error("stream %s: an update ibdata could not read: %s", self.name, exc)
                    return
                self._update(bars)
        elif kind == "error":
            _, generation, code, text = msg
            if generation == self._generation:
                self._live_error(code, text)
        elif kind == "notice":
            self._notice(msg[1], msg[2])
        elif kind == "lost":
            self._suspend()
            self._event("session_lost", f"the session to TWS dropped: {msg[1]}")
        elif kind == "ready":
            self._schedule("a new session to TWS is ready")

    def _notice(self, code: int, text: str) -> None:
        if code in _SUSPEND and (code != 2103 or not self._suspended):
            self._suspend()
            self._event("connectivity", f"TWS {code}: {text}", code=code)
        elif code in _RESTORE and (self._suspended or code in (1101, 1102)):
            self._event("connectivity", f"TWS {code}: {text}", code=code)
            self._schedule(f"TWS {code}")

    def _live_error(self, code: int, text: str) -> None:
        exc = _error(code, text)
        if isinstance(exc, _FATAL):
            raise exc
        self._suspend()
        self._event("connectivity", f"TWS ended the subscription: {code} {text}", code=code)
        self._schedule(f"TWS error {code}", delay=self._stall_after / 4)

    def _suspend(self) -> None:
        """The subscription is presumed dead: stop trusting the forming bar."""
        self._suspended = True
        self._clean = False

    def _schedule(self, why: str, delay: float = SETTLE_SECONDS) -> None:
        log.info("stream %s: %s; subscribing again", self.name, why)
        self._resubscribe_at = time.monotonic() + delay

    # ------------------------------------------------------------------ subscribing
    def _cancel(self) -> None:
        sub, self._sub = self._sub, None
        self._generation += 1
        if sub is not None:
            try:
                sub.cancel()
            except Exception:  # cancelling is best effort: the session may be gone
                log.debug("cancelling the subscription of %s failed", self.name, exc_info=True)

    def _subscribe(self, kind: str, *, first: bool = False) -> None:
        """(Re)subscribe, retrying with backoff until it works, the stream closes, or an
        error leaves nothing to stream; then join the answer to what was yielded."""
        self._cancel()
        attempt = 0
        while True:
            if self._closing.is_set():
                raise _StreamClosedError
            since = time.monotonic() - self._last_message
            duration = live_duration(self._size, since + 3 * self._size.seconds)
            generation = self._generation
            try:
                sub = self._feed.subscribe(self._job, duration, _Sink(self._inbox, generation))
            except BaseException as exc:
                if first or not _transient(exc):
                    self._first_error = exc
                    raise
                attempt += 1
                delay = min(self._stall_after / 4 * 2 ** min(attempt, 12), MAX_BACKOFF)
                log.info(
                    "stream %s: subscribing failed (%s); again in %.2f s", self.name, exc, delay
                )
                if self._closing.wait(delay):
                    raise _StreamClosedError from None
                continue
            finally:
                self.subscribed.set()
            break
        if self._closing.is_set():
            sub.cancel()
            raise _StreamClosedError
        self._sub = sub
        self._suspended = False
        self._resubscribe_at = None
        self._last_message = time.monotonic()
        found = self._join(sub.bars, first=first)
        if found:
            self._quiet = 0
        self._event(kind, f"keepUpToDate {duration}: {len(sub.bars)} bars in the first answer")

    def _join(self, bars: Bars, *, first: bool) -> bool:
        """Yield what a subscription's first answer (and history before it) adds; keep its
        last bar as the forming one. True if any new final bar came."""
        rows = list(bars)
        forming: Bar | None = None
        if rows and self._still_forming(rows[-1], bars.end):
            forming = rows.pop()
        before = self.bars_yielded
        if first and self._start is None:
            # no history asked for: new bars only, from the one forming now
            if rows:
                self._last = self._key(rows[-1].time)
        else:
            lo = self._next_after_last()
            if lo is None and self._start is not None:
                lo = self._start
            first_time = rows[0].time if rows else (forming.time if forming else None)
            if lo is not None and first_time is not None and self._key(lo) < self._key(first_time):
                self._backfill(lo, _as_datetime(first_time), first=first)
            for bar in rows:
                self._final(bar)
        self._forming = forming
        # A first answer's forming bar may be taken as final from updates; after a fault the
        # answer may have been held by TWS and its forming bar be stale: that bar is then
        # taken from history when it ends.
        self._clean = forming is not None and first
        if forming is not None:
            self._partial_update(forming)
        return self.bars_yielded > before

    def _still_forming(self, bar: Bar, now: dt.datetime | None) -> bool:
        if not self._size.intraday or now is None:
            return True
        start = bar.time
        assert isinstance(start, dt.datetime)
        return start + dt.timedelta(seconds=self._size.seconds) > now

    def _next_after_last(self) -> dt.datetime | None:
        """The earliest time a bar not yet yielded can have."""
        if self._last is None:
            return None
        if self._size.intraday:
            return dt.datetime.fromtimestamp(self._last + self._size.seconds, UTC)
        day = dt.date.fromordinal(int(self._last)) + dt.timedelta(days=1)
        return _as_datetime(day)

    def _backfill(self, start: dt.datetime, end: dt.datetime, *, first: bool = False) -> None:
        """Yield the bars of ``[start, end)`` from history that were not yielded."""
        if not first:
            self._event("gap", f"bars from {start} to {end} not seen live", start=start, end=end)
        while True:
            try:
                bars = self._feed.history(self._job, start, end)
                break
            except IBDataError as exc:
                if not _transient(exc):
                    raise
                log.info("stream %s: backfill failed (%s); again", self.name, exc)
                if self._closing.wait(min(self._stall_after, 5.0)):
                    raise _StreamClosedError from None
        before = self.bars_yielded
        for bar in bars:
            if self._key(bar.time) < self._key(end):
                self._final(bar)
        added = self.bars_yielded - before
        self._event(
            "backfilled",
            f"{added} bars from history for {start} to {end}",
            start=start,
            end=end,
            bars=added,
        )

    # ------------------------------------------------------------------ bars
    def _key(self, time_: dt.datetime | dt.date) -> float:
        return _key(time_, self._size.intraday)

    def _update(self, bars: Bars) -> None:
        if not bars:
            return
        bar = bars[0]
        forming = self._forming
        key = self._key(bar.time)
        if self._last is not None and key <= self._last:
            return  # a bar already final (a late update): never yielded twice
        if forming is None:
            # the first update since a quiet answer (a closed market): anything between the
            # last final bar and this one comes from history
            after = self._next_after_last()
            if after is not None and self._key(after) < key:
                self._backfill(after, _as_datetime(bar.time))
            self._clean = not self._suspended
        if forming is None or key == self._key(forming.time):
            self._forming = bar
            self._partial_update(bar)
            return
        if key < self._key(forming.time):
            return  # an update older than the forming bar
        if self._clean and self._adjacent(forming, bar):
            self._final(forming)
        else:
            self._backfill(_as_datetime(forming.time), _as_datetime(bar.time))
        self._forming = bar
        self._clean = not self._suspended
        self._quiet = 0
        self._partial_update(bar)

    def _adjacent(self, bar: Bar, after: Bar) -> bool:
        if not self._size.intraday:
            return False
        return self._key(after.time) - self._key(bar.time) == self._size.seconds

    def _final(self, bar: Bar) -> None:
        key = self._key(bar.time)
        if (self._last is not None and key <= self._last) or (
            self._floor is not None and key < self._floor
        ):
            return
        self._last = key
        final = bar if type(bar) is Bar else Bar(*attrs.astuple(bar, recurse=False))
        self.bars_yielded += 1
        self._deliver(final)

    def _partial_update(self, bar: Bar) -> None:
        if self._partial:
            self._deliver(PartialBar(*attrs.astuple(bar, recurse=False)))

    def _deliver(self, bar: Bar) -> None:
        if self._on_bar is None:
            self._out.put(bar)
            return
        try:
            self._on_bar(bar)
        except Exception:  # the callback's failure must not end the stream
            log.exception("stream %s: on_bar raised", self.name)

    def _event(self, kind: str, detail: str, **fields: Any) -> None:
        event = StreamEvent(kind, dt.datetime.now(UTC), detail, **fields)
        self.events.append(event)
        log.log(
            logging.INFO if kind in ("subscribed", "backfilled") else logging.WARNING,
            "stream %s: %s: %s",
            self.name,
            kind,
            detail,
        )
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("stream %s: on_event raised", self.name)


class Streams:
    """A client's live streams: the :class:`Feed` they use, and the session events they
    hear. Every method is safe from any thread."""

    def __init__(
        self,
        *,
        subscribe: Callable[[Job, str, Any], Subscription],
        history: Callable[[Job, dt.datetime, dt.datetime], Bars],
    ) -> None:
        self._subscribe = subscribe
        self._history = history
        self._lock = threading.Lock()
        self._live: set[BarStream] = set()
        self._closed = False
        self._count = 0

    # Feed
    def subscribe(self, job: Job, duration: str, sink: Any) -> Subscription:
        """See :meth:`Feed.subscribe`."""
        return self._subscribe(job, duration, sink)

    def history(self, job: Job, start: dt.datetime, end: dt.datetime) -> Bars:
        """See :meth:`Feed.history`."""
        return self._history(job, start, end)

    def detach(self, stream: BarStream) -> None:
        """See :meth:`Feed.detach`."""
        with self._lock:
            self._live.discard(stream)

    def open(self, job: Job, **options: Any) -> BarStream:
        """Make, register and start a stream (see :class:`BarStream` for ``options``).

        Raises:
            IBDataError: the client is closed, or the first subscription failed.
        """
        with self._lock:
            if self._closed:
                raise NotConnectedError("the client is closed")
            self._count += 1
            name = f"{job.spec.symbol}-{self._count}"
            stream = BarStream._create(self, job, name=name, **options)
            self._live.add(stream)
        return stream.start()

    @property
    def live(self) -> list[BarStream]:
        """The streams not yet ended."""
        with self._lock:
            return list(self._live)

    def notice(self, code: int, text: str) -> None:
        """A connectivity or farm notice of the session: every stream hears it."""
        for stream in self.live:
            stream.notice(code, text)

    def session_lost(self, why: str) -> None:
        """The session dropped."""
        for stream in self.live:
            stream.session_lost(why)

    def session_ready(self) -> None:
        """A new session is ready."""
        for stream in self.live:
            stream.session_ready()

    def closing(self) -> None:
        """The client is closing: no new stream, and every stream is told to stop."""
        with self._lock:
            self._closed = True
            streams = list(self._live)
        for stream in streams:
            stream.close(timeout=0)

    def close_all(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout`` seconds in all) for every stream to end."""
        deadline = time.monotonic() + timeout
        for stream in self.live:
            stream.close(timeout=max(deadline - time.monotonic(), 0.0))


class _StreamClosedError(Exception):
    """The stream is being closed: unwind the worker."""


def _error(code: int, text: str) -> IBDataError:
    return error_for(code, text, None)


def _transient(exc: BaseException) -> bool:
    """Whether subscribing again later may work after ``exc``: anything but an error that
    says there is nothing to stream (no such contract, no permission, an invalid request)."""
    return isinstance(exc, IBDataError) and not isinstance(exc, _FATAL)
