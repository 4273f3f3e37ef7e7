"""The client's pacer: every historical request of a client waits here until IB's rules
allow it, exactly as long as needed and no longer.

It applies :class:`ibdata.PacingRules` (the object the simulator enforces) with each window
lengthened by :data:`SAFETY` and :data:`SAFETY_SECONDS`, because TWS counts a request when it
arrives, a moment after ibdata counted it when sending: without the margin, two requests one
window apart by ibdata's clock can land a hair under one window apart by TWS's.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Hashable, Iterable

import attrs

from ibdata.exceptions import RequestTimeoutError
from ibdata.pacing import PacedRequest, PacingRules, PacingTracker

#: Fraction added to every pacing window on the client side.
SAFETY = 0.02
#: Real seconds added as well: network and scheduling jitter does not shrink with a scaled
#: clock, and a 2 s window scaled 100 times is only 20 ms long.
SAFETY_SECONDS = 0.01


def with_margin(
    rules: PacingRules, margin: float = SAFETY, seconds: float = SAFETY_SECONDS
) -> PacingRules:
    """``rules`` with every window lengthened by ``margin`` (a fraction) plus ``seconds``
    of real time."""
    extra = seconds * rules.time_scale  # windows are stated in unscaled seconds

    def grow(window: float) -> float:
        return window * (1 + margin) + extra

    return attrs.evolve(
        rules,
        identical_window=grow(rules.identical_window),
        burst_window=grow(rules.burst_window),
        window=grow(rules.window),
        soft_window=grow(rules.soft_window) if rules.soft_window is not None else None,
    )


class Pacer:
    """Admits historical requests under IB's rules; thread-safe.

    ``acquire`` blocks until the request may be sent (and one of the open-request slots is
    free), records it, and takes the slot; ``release`` gives the slot back when the request
    has ended, however it ended.
    """

    def __init__(self, rules: PacingRules) -> None:
        self.rules = rules
        self._tracker = PacingTracker(with_margin(rules))
        self._cond = threading.Condition()
        self.waited = 0.0  # total seconds requests spent waiting for the rules

    def acquire(self, request: PacedRequest, key: Hashable, deadline: float | None) -> None:
        """Block until ``request`` may be sent, then count it and hold a slot for ``key``.

        Raises:
            RequestTimeoutError: ``deadline`` (a ``time.monotonic()`` value) passed first.
        """
        t0 = time.monotonic()
        with self._cond:
            while True:
                now = time.monotonic()
                wait = self._tracker.delay(request, now)
                if wait <= 0 and self._tracker.check(request, now) is None:
                    if self._tracker.open(key):
                        self._tracker.record(request, now)
                        self.waited += now - t0
                        return
                    wait = 0.5  # every slot is taken: woken by release()
                if deadline is not None and now + wait > deadline:
                    raise RequestTimeoutError(
                        None,
                        max(deadline - t0, 0.0),
                        "waiting for IB's pacing rules to allow a historical request",
                    )
                self._cond.wait(wait)

    def note(self, request: PacedRequest, key: Hashable, now: float) -> None:
        """Count ``request`` as sent at ``now`` and ``key`` as open without waiting: another
        pacer (the shared ledger) admitted it. This record is what the client paces by if
        that pacer's store fails."""
        with self._cond:
            self._tracker.record(request, now)
            self._tracker.open(key)  # False with max_open open here: counted in the store

    def release(self, key: Hashable) -> None:
        """Free the slot of a finished request. Idempotent."""
        with self._cond:
            self._tracker.close(key)
            self._cond.notify_all()


def longest_window(rules: PacingRules) -> float:
    """The longest window of ``rules`` on the caller's clock: how long a record of sent
    requests must be kept to apply them."""
    return max(
        rules.effective_identical_window,
        rules.effective_burst_window,
        rules.effective_window,
        rules.effective_soft_window or 0.0,
    )


def minimum_time(rules: PacingRules, requests: Iterable[PacedRequest]) -> float:
    """The least time in which ``requests`` can be sent one after another under ``rules``.

    Each request is sent at the earliest moment ``rules`` allow it, given the ones before
    it, starting with an idle session at time 0; the result is the moment the last one is
    sent, in seconds on the caller's clock (windows divided by ``time_scale``). The rules
    are taken as given, without the client's :data:`SAFETY` margin, and answers are taken
    as instant: a lower bound worked out from the rules, not a measurement.
    """
    tracker = PacingTracker(rules)
    t = 0.0
    for request in requests:
        t = tracker.ready_at(request, t)
        tracker.record(request, t)
    return t


def strictest(rules: PacingRules) -> PacingRules:
    """``rules`` made no looser than IB's published ones at the same ``time_scale``.

    A client may be configured with looser rules than IB enforces; working out why IB
    refused a request must not trust them further than IB's own numbers.
    """
    ib = PacingRules(time_scale=rules.time_scale)
    return attrs.evolve(
        rules,
        identical_window=max(rules.identical_window, ib.identical_window),
        burst_window=max(rules.burst_window, ib.burst_window),
        burst_max=min(rules.burst_max, ib.burst_max),
        window=max(rules.window, ib.window),
        window_max=min(rules.window_max, ib.window_max),
        bid_ask_weight=max(rules.bid_ask_weight, ib.bid_ask_weight),
        small_bar_seconds=max(rules.small_bar_seconds, ib.small_bar_seconds),
    )


@attrs.frozen
class Verdict:
    """Why IB most likely refused a request for pacing, and when to send it again.

    ``rule`` names the rule in IB's words (nominal seconds); ``at`` is a
    ``time.monotonic()`` value; ``elsewhere`` is True when the client's own record shows
    room, so another program on the login must have sent the requests that broke it.
    """

    rule: str
    at: float
    elsewhere: bool

    @property
    def described(self) -> str:
        """The rule, saying when another program on the login must have broken it."""
        return self.rule + (" (another program on the login)" if self.elsewhere else "")


class Ledger:
    """The client's record of the historical requests it sent, to explain pacing refusals.

    The pacer keeps IB's rules from being broken by the client's own requests; IB counts
    every program on the login, so a refusal can still arrive. :meth:`diagnose` works out
    the likely rule from this record and the rules, and when the request may go again:

    1. If the record *without* the refused request already breaks a rule (the client's
       rules looser than IB's, or no pacing at all), that rule is the cause, and the
       request may go when the record allows it again (each window lengthened by the
       pacer's safety margin, the refused attempt counted too, as TWS may count it).
    2. Otherwise the record shows room, so another program on the same login sent
       requests ibdata cannot see, and the worst plausible rule is the longest one: more
       than 60 requests within ten minutes. Those requests were all sent before the
       refusal, so one full window (with the margin) after the refused request was sent,
       every one of them has left it: the request may go then. IB publishes no limit for
       bars over 30 seconds besides an unnamed slow-down, so the same holds for them.

    Thread-safe. Times are ``time.monotonic()`` values; the record keeps one longest
    window of history.
    """

    def __init__(self, rules: PacingRules) -> None:
        self.rules = strictest(rules)
        self._margined = with_margin(self.rules)
        self._lock = threading.Lock()
        self._sent: deque[tuple[float, object, PacedRequest]] = deque()
        self._keep = longest_window(self._margined)

    def record(self, key: object, request: PacedRequest, now: float) -> None:
        """Note that ``request`` (named by ``key``) was sent at ``now``. A request no rule
        counts (bars over 30 secs without a soft limit) is not kept: it explains nothing,
        and a client sending many of them would hold ten minutes of them."""
        r = self.rules
        if not r.counts_as_small(request) and r.soft_window is None:
            return
        with self._lock:
            while self._sent and now - self._sent[0][0] >= self._keep:
                self._sent.popleft()
            self._sent.append((now, key, request))

    def diagnose(
        self,
        key: object,
        request: PacedRequest,
        sent: float,
        elsewhere: Iterable[tuple[float, PacedRequest]] = (),
    ) -> Verdict:
        """The likely rule behind the refusal of ``request`` (``key``, sent at ``sent``);
        ``elsewhere`` are requests other clients on the login sent (the shared ledger's), as
        ``(time.monotonic() value, request)``."""
        with self._lock:
            entries: list[tuple[float, object, PacedRequest]] = list(self._sent)
        entries += [(t, None, req) for t, req in elsewhere]
        entries.sort(key=lambda entry: entry[0])
        others = PacingTracker(self.rules)
        everything = PacingTracker(self._margined)
        for t, k, req in entries:
            if k is not key:
                others.record(req, t)
            everything.record(req, t)
        own = others.check(request, sent)
        if own is not None:
            return Verdict(own, everything.ready_at(request, sent), elsewhere=False)
        r = self.rules
        rule = f"more than {r.window_max} requests within {r.window:g} s"
        return Verdict(rule, sent + self._margined.effective_window, elsewhere=True)
