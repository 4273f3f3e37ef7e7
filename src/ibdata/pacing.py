"""IB's historical-data pacing rules as one value, and a tracker that applies them.

The same rules serve two sides of a TWS session: the simulator enforces them and answers
error 162 ("Historical data request pacing violation"), and the client's pacer waits exactly
until the next request is allowed. Keeping both on :class:`PacingRules` and
:class:`PacingTracker` means they can never disagree.

IB's rules (`Historical Data Limitations
<https://interactivebrokers.github.io/tws-api/historical_limitations.html>`_, IBKR Campus
"Historical Market Data", section "Pacing Violations for Small Bars (30 secs or less)"):

1. no identical historical request within 15 seconds;
2. at most 5 requests for the same contract, exchange and tick type (``what_to_show``)
   within 2 seconds -- the sixth is a violation;
3. at most 60 requests within any ten-minute period.

``BID_ASK`` requests count twice in rules 2 and 3. These hard rules apply to bars of 30
seconds or less and to head-timestamp requests. For larger bars IB applies only an
unpublished "soft" slow-down, modelled here by an optional ``soft_max`` requests per
``soft_window`` seconds. Separately, at most 50 historical requests may be open (unfinished)
at any time, whatever their bar size; :meth:`PacingTracker.open` and
:meth:`PacingTracker.close` keep that count.

Every window means "within N seconds": a request at time ``t`` conflicts with one recorded at
``t0`` when ``t - t0 < N``, so at exactly ``t0 + N`` it is allowed. All windows are divided by
:attr:`PacingRules.time_scale`, so a test can run the ten-minute window in six seconds.

This module needs only the standard library and :mod:`attrs`; it never imports ``ibapi``.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import attrs

__all__ = ["BAR_SIZE_SECONDS", "PacedRequest", "PacingRules", "PacingTracker"]

BAR_SIZE_SECONDS: Mapping[str, int] = MappingProxyType(
    {
        "1 secs": 1,
        "5 secs": 5,
        "10 secs": 10,
        "15 secs": 15,
        "30 secs": 30,
        "1 min": 60,
        "2 mins": 120,
        "3 mins": 180,
        "5 mins": 300,
        "10 mins": 600,
        "15 mins": 900,
        "20 mins": 1200,
        "30 mins": 1800,
        "1 hour": 3600,
        "2 hours": 7200,
        "3 hours": 10800,
        "4 hours": 14400,
        "8 hours": 28800,
        "1 day": 86400,
        "1 week": 7 * 86400,
        "1W": 7 * 86400,
        "1 month": 30 * 86400,
        "1M": 30 * 86400,
    }
)
"""Every bar size IB accepts (``barSizeSetting``), with its nominal length in seconds.

Both spellings of the week and month sizes are listed (``1 week``/``1W``,
``1 month``/``1M``); a month counts as 30 days. The mapping is read-only.
"""


def _bar_seconds(bar_size: str) -> int:
    try:
        return BAR_SIZE_SECONDS[bar_size]
    except (KeyError, TypeError):
        legal = ", ".join(BAR_SIZE_SECONDS)
        raise ValueError(f"bar_size must be one of {legal}; got {bar_size!r}") from None


def _positive_number(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{attribute.name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a positive finite number, got {value!r}")


def _optional_positive_number(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        _positive_number(instance, attribute, value)


def _count(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value!r}")


def _optional_count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _count(instance, attribute, value)


@attrs.frozen(kw_only=True)
class PacingRules:
    """IB's historical-data pacing limits, with every window in IB's nominal seconds.

    The defaults are IB's published rules. Windows are stated as IB states them; the
    ``effective_*`` properties divide them by :attr:`time_scale` to give seconds on the
    caller's clock.

    Attributes:
        identical_window: Rule 1: identical requests closer than this many seconds violate.
        burst_window: Rule 2: the window, in seconds, for requests on the same contract,
            exchange and ``what_to_show``.
        burst_max: Rule 2: the most request weight allowed in one ``burst_window``.
        window: Rule 3: the long window in seconds (ten minutes).
        window_max: Rule 3: the most request weight allowed in one ``window``.
        max_open: The most historical requests that may be open (unfinished) at once, for
            every bar size, head-timestamp requests included.
        bid_ask_weight: How many requests one ``BID_ASK`` request counts as in rules 2 and 3.
        small_bar_seconds: Bars of at most this many seconds are "small" and fall under
            rules 1-3; larger bars fall under the soft limit only.
        soft_window: The soft limit's window in seconds for larger bars, or None for no
            soft limit. Set together with ``soft_max``.
        soft_max: The most larger-bar requests allowed in one ``soft_window`` (each counts
            once, ``BID_ASK`` included), or None for no soft limit.
        time_scale: Every window is divided by this factor: ``time_scale=100`` turns the
            ten-minute window into 6 seconds and 15 seconds into 0.15. Counts are unchanged.

    Raises:
        TypeError: A field has the wrong type (the message names it).
        ValueError: A window or ``time_scale`` is not a positive finite number, a count is
            below 1, only one of ``soft_window`` and ``soft_max`` is set, or
            ``bid_ask_weight`` exceeds ``burst_max`` or ``window_max`` (a ``BID_ASK``
            request could then never be sent). The message names the field.
    """

    identical_window: float = attrs.field(default=15.0, validator=_positive_number)
    burst_window: float = attrs.field(default=2.0, validator=_positive_number)
    burst_max: int = attrs.field(default=5, validator=_count)
    window: float = attrs.field(default=600.0, validator=_positive_number)
    window_max: int = attrs.field(default=60, validator=_count)
    max_open: int = attrs.field(default=50, validator=_count)
    bid_ask_weight: int = attrs.field(default=2, validator=_count)
    small_bar_seconds: int = attrs.field(default=30, validator=_count)
    soft_window: float | None = attrs.field(default=None, validator=_optional_positive_number)
    soft_max: int | None = attrs.field(default=None, validator=_optional_count)
    time_scale: float = attrs.field(default=1.0, validator=_positive_number)

    def __attrs_post_init__(self) -> None:
        if (self.soft_window is None) != (self.soft_max is None):
            raise ValueError(
                "soft_window and soft_max must be set together or both be None, got "
                f"soft_window={self.soft_window!r}, soft_max={self.soft_max!r}"
            )
        if self.bid_ask_weight > min(self.burst_max, self.window_max):
            raise ValueError(
                f"bid_ask_weight ({self.bid_ask_weight}) must not exceed burst_max "
                f"({self.burst_max}) or window_max ({self.window_max})"
            )

    def scaled(self, time_scale: float) -> PacingRules:
        """Return the same rules with another :attr:`time_scale`.

        Args:
            time_scale: The new factor every window is divided by.

        Returns:
            A copy of these rules with ``time_scale`` replaced.

        Raises:
            ValueError: ``time_scale`` is not a positive finite number.
        """
        return attrs.evolve(self, time_scale=time_scale)

    def is_small(self, bar_size: str) -> bool:
        """Tell whether ``bar_size`` falls under the small-bar rules 1-3.

        Args:
            bar_size: One of IB's bar sizes, the keys of :data:`BAR_SIZE_SECONDS`
                (``"1 secs"`` ... ``"1 month"``, also ``"1W"`` and ``"1M"``).

        Returns:
            True when bars of this size last at most :attr:`small_bar_seconds`.

        Raises:
            ValueError: ``bar_size`` is not a bar size IB accepts.
        """
        return _bar_seconds(bar_size) <= self.small_bar_seconds

    def counts_as_small(self, request: PacedRequest) -> bool:
        """Tell whether ``request`` falls under rules 1-3 (small bars or a head timestamp).

        Args:
            request: The request to classify.

        Returns:
            True for head-timestamp requests and for bars of at most
            :attr:`small_bar_seconds`.
        """
        return request.head_timestamp or self.is_small(request.bar_size)

    def weight(self, what_to_show: str) -> int:
        """How many requests one request with this ``what_to_show`` counts as in rules 2 and 3.

        Args:
            what_to_show: IB's exact upper-case value, such as ``"TRADES"`` or ``"BID_ASK"``.

        Returns:
            :attr:`bid_ask_weight` for ``"BID_ASK"``, 1 for everything else.
        """
        return self.bid_ask_weight if what_to_show == "BID_ASK" else 1

    @property
    def effective_identical_window(self) -> float:
        """Rule 1's window in seconds on the caller's clock (``identical_window / time_scale``)."""
        return self.identical_window / self.time_scale

    @property
    def effective_burst_window(self) -> float:
        """Rule 2's window in seconds on the caller's clock (``burst_window / time_scale``)."""
        return self.burst_window / self.time_scale

    @property
    def effective_window(self) -> float:
        """Rule 3's window in seconds on the caller's clock (``window / time_scale``)."""
        return self.window / self.time_scale

    @property
    def effective_soft_window(self) -> float | None:
        """The soft limit's window in seconds on the caller's clock, or None without one."""
        return None if self.soft_window is None else self.soft_window / self.time_scale


@attrs.frozen(kw_only=True)
class PacedRequest:
    """What the pacing rules look at in one historical request.

    Two requests are *identical* (rule 1) when every field is equal; they share a burst
    (rule 2) when ``contract``, ``exchange`` and ``what_to_show`` are equal, whatever the rest.
    A head-timestamp request is never identical to a bar request but shares bursts with them.

    Attributes:
        contract: A key naming the contract, the caller's choice (a ``con_id``, or symbol,
            security type and expiry joined); it must name the same contract the same way.
        exchange: The exchange the request is routed to.
        what_to_show: IB's tick type, such as ``"TRADES"`` or ``"BID_ASK"``.
        bar_size: One of IB's bar sizes (the keys of :data:`BAR_SIZE_SECONDS`) for a bar
            request; ``""`` for a head-timestamp request.
        identity: Everything else that makes two requests identical: end date, duration,
            ``use_rth``, ``format_date`` and so on, as strings.
        head_timestamp: True for a ``reqHeadTimeStamp`` request, which is paced like a
            small-bar request.

    Raises:
        ValueError: ``bar_size`` is not a bar size IB accepts (for a bar request) or is not
            ``""`` (for a head-timestamp request).
    """

    contract: str
    exchange: str
    what_to_show: str
    bar_size: str = ""
    identity: tuple[str, ...] = ()
    head_timestamp: bool = False

    def __attrs_post_init__(self) -> None:
        if self.head_timestamp:
            if self.bar_size != "":
                raise ValueError(
                    f"bar_size must be '' for a head-timestamp request, got {self.bar_size!r}"
                )
        else:
            _bar_seconds(self.bar_size)


class _Entry(NamedTuple):
    time: float
    request: PacedRequest
    weight: int


def _expiry(t0: float, window: float) -> float:
    """The smallest float ``x`` with ``x - t0 >= window`` in floating point."""
    x = t0 + window
    while x - t0 < window:
        x = math.nextafter(x, math.inf)
    while (prev := math.nextafter(x, -math.inf)) - t0 >= window:
        x = prev
    return x


def _free_at(active: Iterable[tuple[float, int]], need: int, window: float) -> float | None:
    """When enough weight ages out of ``window``: None when ``need <= 0``.

    ``active`` holds ``(time, weight)`` of the records inside the window; ``need`` is how
    much weight must leave it.
    """
    if need <= 0:
        return None
    freed = 0
    for t0, weight in sorted(active):
        freed += weight
        if freed >= need:
            return _expiry(t0, window)
    raise AssertionError("unreachable: weights are validated against the limits")


class PacingTracker:
    """Sliding-window pacing state for one TWS session.

    Times are seconds on the caller's clock (``time.monotonic()`` or a simulated one); the
    times given to :meth:`record` and :meth:`acquire` should not decrease. A time earlier
    than one already recorded is tolerated (threads race to the lock): every record later
    than it counts as inside every window. Queries (:meth:`check`, :meth:`delay`,
    :meth:`ready_at`) may ask about any time and change nothing. Each record drops the
    history that can no longer matter at or after the latest recorded time, so memory stays
    bounded over days of use. All methods are thread-safe (one lock).

    Args:
        rules: The rules to apply; IB's published rules when omitted.
    """

    def __init__(self, rules: PacingRules | None = None) -> None:
        self._rules = PacingRules() if rules is None else rules
        self._lock = threading.Lock()
        self._small: deque[_Entry] = deque()
        self._large: deque[float] = deque()
        self._open: set[Hashable] = set()
        self._latest = -math.inf
        r = self._rules
        self._longest = max(
            r.effective_identical_window, r.effective_burst_window, r.effective_window
        )

    def __repr__(self) -> str:
        return (
            f"PacingTracker({self._rules!r}, history_size={self.history_size}, "
            f"open_count={self.open_count})"
        )

    @property
    def rules(self) -> PacingRules:
        """The rules this tracker applies."""
        return self._rules

    @property
    def history_size(self) -> int:
        """How many past requests the tracker still remembers (for monitoring memory)."""
        with self._lock:
            return len(self._small) + len(self._large)

    def check(self, request: PacedRequest, now: float) -> str | None:
        """Tell whether sending ``request`` at ``now`` breaks a pacing rule; records nothing.

        The open-request limit is not checked here; see :meth:`open`.

        Args:
            request: The request about to be sent.
            now: The send time in seconds on the caller's clock.

        Returns:
            None when the request is allowed, else a short reason naming the first rule
            broken, checked in the order identical, same contract, ten-minute window, soft
            limit (for example ``"identical request within 15 s"``).
        """
        with self._lock:
            return self._reason(request, now)

    def record(self, request: PacedRequest, now: float) -> None:
        """Count ``request`` as sent at ``now``, whether or not the rules allow it.

        Args:
            request: The request that was sent.
            now: The send time in seconds on the caller's clock.
        """
        with self._lock:
            self._record(request, now)

    def acquire(self, request: PacedRequest, now: float) -> str | None:
        """Check ``request`` at ``now`` and, if allowed, record it, in one atomic step.

        Args:
            request: The request about to be sent.
            now: The send time in seconds on the caller's clock.

        Returns:
            None when the request was allowed and recorded, else the reason it was refused,
            as from :meth:`check`; a refused request is not recorded.
        """
        with self._lock:
            reason = self._reason(request, now)
            if reason is None:
                self._record(request, now)
            return reason

    def ready_at(self, request: PacedRequest, now: float) -> float:
        """The earliest time, not before ``now``, at which ``request`` would be allowed.

        Args:
            request: The request about to be sent.
            now: The current time in seconds on the caller's clock.

        Returns:
            ``now`` when the request is allowed now; else the smallest time ``t`` for which
            :meth:`check` at ``t`` returns None (checking at any earlier time is refused),
            assuming nothing else is recorded meanwhile.
        """
        with self._lock:
            return self._ready_at(request, now)

    def delay(self, request: PacedRequest, now: float) -> float:
        """Seconds from ``now`` until ``request`` would be allowed (0.0 if allowed now).

        The result is exact in floating point: ``check(request, now + delay)`` returns None,
        and checking any meaningfully earlier time (beyond rounding) is refused, assuming
        nothing else is recorded meanwhile. A pacer that sleeps this long never violates.

        Args:
            request: The request about to be sent.
            now: The current time in seconds on the caller's clock.

        Returns:
            The number of seconds to wait, at least 0.0.
        """
        with self._lock:
            target = self._ready_at(request, now)
            wait = target - now
            # The caller adds ``wait`` to ``now`` in floating point; make sure that sum
            # rounds to ``target`` or later, so sleeping ``wait`` never lands an ulp short.
            while now + wait < target:
                wait += max(math.ulp(wait), math.ulp(now + wait))
            return wait

    def prune(self, now: float) -> None:
        """Forget requests that cannot affect a check at ``now`` or later.

        :meth:`record` and :meth:`acquire` already do this up to the latest recorded time;
        call it only to release memory early. Checks at times before ``now`` may then miss
        forgotten requests.

        Args:
            now: The current time in seconds on the caller's clock.
        """
        with self._lock:
            self._prune(now)

    def open(self, key: Hashable) -> bool:
        """Count a historical request as open, if fewer than ``max_open`` are.

        Args:
            key: Any hashable value naming the request, such as its request id.

        Returns:
            True when the request was counted; False when ``max_open`` requests are already
            open (TWS answers error 322 then).

        Raises:
            ValueError: ``key`` is already open.
        """
        with self._lock:
            if key in self._open:
                raise ValueError(f"key {key!r} is already open")
            if len(self._open) >= self._rules.max_open:
                return False
            self._open.add(key)
            return True

    def close(self, key: Hashable) -> None:
        """Stop counting a request as open; closing an unknown or closed key does nothing.

        Args:
            key: The value given to :meth:`open`.
        """
        with self._lock:
            self._open.discard(key)

    @property
    def open_count(self) -> int:
        """How many requests are open now."""
        with self._lock:
            return len(self._open)

    # -- internals; the lock is held ----------------------------------------------------

    def _prune(self, now: float) -> None:
        small = self._small
        while small and now - small[0].time >= self._longest:
            small.popleft()
        soft = self._rules.effective_soft_window
        large = self._large
        while large and soft is not None and now - large[0] >= soft:
            large.popleft()

    def _record(self, request: PacedRequest, now: float) -> None:
        self._latest = max(self._latest, now)
        self._prune(self._latest)
        r = self._rules
        if r.counts_as_small(request):
            self._small.append(_Entry(now, request, r.weight(request.what_to_show)))
        elif r.soft_window is not None:
            self._large.append(now)

    def _reason(self, request: PacedRequest, now: float) -> str | None:
        r = self._rules
        if not r.counts_as_small(request):
            soft = r.effective_soft_window
            if soft is None or r.soft_max is None:
                return None
            recent = sum(1 for t0 in self._large if now - t0 < soft)
            if recent + 1 > r.soft_max:
                return f"soft limit: more than {r.soft_max} requests within {r.soft_window:g} s"
            return None
        weight = r.weight(request.what_to_show)
        identical_w = r.effective_identical_window
        burst_w = r.effective_burst_window
        long_w = r.effective_window
        identical = False
        burst = 0
        total = 0
        for e in self._small:
            age = now - e.time
            if age < identical_w and e.request == request:
                identical = True
            if age < burst_w and _same_burst(e.request, request):
                burst += e.weight
            if age < long_w:
                total += e.weight
        if identical:
            return f"identical request within {r.identical_window:g} s"
        if burst + weight > r.burst_max:
            return (
                f"more than {r.burst_max} requests for the same contract, exchange and "
                f"tick type within {r.burst_window:g} s"
            )
        if total + weight > r.window_max:
            return f"more than {r.window_max} requests within {r.window:g} s"
        return None

    def _ready_at(self, request: PacedRequest, now: float) -> float:
        r = self._rules
        target = now
        if not r.counts_as_small(request):
            soft = r.effective_soft_window
            if soft is None or r.soft_max is None:
                return now
            active = [(t0, 1) for t0 in self._large if now - t0 < soft]
            free = _free_at(active, len(active) + 1 - r.soft_max, soft)
            return now if free is None else max(now, free)
        weight = r.weight(request.what_to_show)
        identical_w = r.effective_identical_window
        burst_w = r.effective_burst_window
        long_w = r.effective_window
        burst: list[tuple[float, int]] = []
        total: list[tuple[float, int]] = []
        for e in self._small:
            age = now - e.time
            if age < identical_w and e.request == request:
                target = max(target, _expiry(e.time, identical_w))
            if age < burst_w and _same_burst(e.request, request):
                burst.append((e.time, e.weight))
            if age < long_w:
                total.append((e.time, e.weight))
        need = sum(w for _, w in burst) + weight - r.burst_max
        free = _free_at(burst, need, burst_w)
        if free is not None:
            target = max(target, free)
        need = sum(w for _, w in total) + weight - r.window_max
        free = _free_at(total, need, long_w)
        if free is not None:
            target = max(target, free)
        return target


def _same_burst(a: PacedRequest, b: PacedRequest) -> bool:
    return (
        a.contract == b.contract and a.exchange == b.exchange and a.what_to_show == b.what_to_show
    )
