"""A limit on the rate of messages a client sends TWS.

TWS accepts at most 50 messages a second from one API client and, after repeated excess
(error 100), closes the connection. The client sends every request through a
:class:`Throttle`, which spaces them evenly at its rate while allowing a burst of one
second's worth, so a burst of a few requests goes out at once and a flood is smoothed.
"""

from __future__ import annotations

import threading
import time

__all__ = ["Throttle"]


class Throttle:
    """Spaces events at ``rate`` a second with a burst of ``rate`` (a virtual scheduling
    algorithm: each event reserves the next slot). Thread-safe."""

    def __init__(self, rate: float) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        self.rate = rate
        self._interval = 1.0 / rate
        self._burst = max(rate - 1.0, 0.0) * self._interval  # tolerance: one second's worth
        self._lock = threading.Lock()
        self._due = 0.0  # when the stream of events, sent at the rate, would be through

    def reserve(self, now: float | None = None) -> float:
        """Reserve the next slot; returns how many seconds to wait before using it."""
        with self._lock:
            at = time.monotonic() if now is None else now
            due = max(self._due, at)
            wait = due - at - self._burst
            wait = wait if wait > 1e-9 else 0.0  # float rounding of the burst is no wait
            self._due = due + self._interval
            return wait
