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

    def release(self, key: Hashable) -> None:
        """Free the slot of a finished request. Idempotent."""
        with self._cond:
            self._tracker.close(key)
            self._cond.notify_all()


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
