"""What the fault tests share: calls run in threads and timed, resource counts, raw frames.

Nothing here fakes the network or the clock: calls go to a real simulator over loopback, and
times are ``time.monotonic()``.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

#: The threads one client session runs: its socket reader and its message dispatcher.
SESSION_THREAD_PREFIXES = ("ibdata-reader-", "ibdata-dispatch-")


class Call:
    """One blocking call run in its own thread; records its result or exception and when it
    settled, so a test can time a failure and tell a hang (still running) from an answer."""

    def __init__(self, fn: Callable[[], Any], name: str = "reliability-call") -> None:
        self._fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.settled_at: float | None = None
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:  # the test inspects whatever the call raised
            self.error = exc
        finally:
            self.settled_at = time.monotonic()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True if the call has returned or raised."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def elapsed(self) -> float:
        """Seconds from start to settling (the call must have settled)."""
        assert self.settled_at is not None, "the call has not settled"
        return self.settled_at - self.started_at


def fd_count() -> int:
    """Open file descriptors of this process (sockets included)."""
    return len(os.listdir("/proc/self/fd"))


def session_threads() -> list[str]:
    """Names of the reader and dispatcher threads of every client session alive now."""
    return sorted(
        t.name for t in threading.enumerate() if t.name.startswith(SESSION_THREAD_PREFIXES)
    )


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.005) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(step)
    return True


def frame(*fields: object) -> bytes:
    """One TWS frame: a 4-byte big-endian length, then NUL-terminated fields (``bytes``
    fields are sent as they are, anything else as its ``str``)."""
    payload = b"".join(
        (f if isinstance(f, bytes) else str(f).encode("ascii")) + b"\0" for f in fields
    )
    return struct.pack(">I", len(payload)) + payload
