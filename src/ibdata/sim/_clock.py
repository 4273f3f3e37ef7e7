"""Clocks for the simulator: the wall clock, a frozen instant, or time that runs faster."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol, runtime_checkable

UTC = dt.timezone.utc


@runtime_checkable
class Clock(Protocol):
    """Anything with a ``now()`` that returns an aware UTC datetime."""

    def now(self) -> dt.datetime:
        """The simulator's current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The machine's wall clock."""

    def now(self) -> dt.datetime:
        """The current UTC time."""
        return dt.datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that stands still at ``at`` until :meth:`set` or :meth:`advance` moves it."""

    def __init__(self, at: dt.datetime) -> None:
        _check_aware(at)
        self._lock = threading.Lock()
        self._at = at.astimezone(UTC)

    def now(self) -> dt.datetime:
        """The instant the clock stands at."""
        with self._lock:
            return self._at

    def set(self, at: dt.datetime) -> None:
        """Move the clock to ``at`` (timezone-aware)."""
        _check_aware(at)
        with self._lock:
            self._at = at.astimezone(UTC)

    def advance(self, by: dt.timedelta | float) -> None:
        """Move the clock forward by a timedelta or a number of seconds."""
        delta = by if isinstance(by, dt.timedelta) else dt.timedelta(seconds=by)
        with self._lock:
            self._at += delta

    def __repr__(self) -> str:
        return f"FixedClock({self._at.isoformat()})"


class ScaledClock:
    """Starts at ``start`` and runs ``speed`` times faster than real time."""

    def __init__(self, start: dt.datetime, speed: float = 1.0) -> None:
        _check_aware(start)
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        self._start = start.astimezone(UTC)
        self._t0 = time.monotonic()
        self.speed = speed

    def now(self) -> dt.datetime:
        """``start`` plus the real time elapsed since creation, times ``speed``."""
        return self._start + dt.timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    def __repr__(self) -> str:
        return f"ScaledClock({self._start.isoformat()}, speed={self.speed})"


def _check_aware(value: dt.datetime) -> None:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"a timezone-aware datetime is required, got {value!r}")
