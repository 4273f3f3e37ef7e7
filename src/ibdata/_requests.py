"""The request table: one future per request id, settled exactly once.

Data, the end marker, an error, a timeout and a disconnect all settle the same future; the
entry leaves the table when it is settled, so late messages for it find nothing and are
dropped. Nothing here knows about ``ibapi`` or sockets.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Request ids start here, far from the order ids TWS hands out with nextValidId.
FIRST_REQUEST_ID = 10_000

#: The kinds of request; each is settled only by an answer of its own kind.
BARS = "historical bars"
DETAILS = "contract details"
HEAD = "head timestamp"


class Pending(Generic[T]):
    """One request in flight: its id, kind, collected items and future."""

    __slots__ = ("cancel", "future", "items", "kind", "meta", "req_id")

    def __init__(self, req_id: int, kind: str, cancel: Callable[[], None] | None) -> None:
        self.req_id = req_id
        self.kind = kind
        self.items: list[Any] = []
        self.future: Future[T] = Future()
        self.cancel = cancel
        self.meta: Any = None

    def __repr__(self) -> str:
        return f"<Pending {self.kind} #{self.req_id} items={len(self.items)}>"


class RequestTable:
    """Thread-safe map of request id to :class:`Pending`; ids are never reused."""

    def __init__(self, first_id: int = FIRST_REQUEST_ID) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(first_id)
        self._pending: dict[int, Pending[Any]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def open(self, kind: str, cancel: Callable[[], None] | None = None) -> Pending[Any]:
        """Register a new request and return it; ``cancel`` tells IB to stop it."""
        with self._lock:
            req_id = next(self._ids)
            p: Pending[Any] = Pending(req_id, kind, cancel)
            self._pending[req_id] = p
        return p

    def get(self, req_id: int) -> Pending[Any] | None:
        """The pending request with that id, or None if it was settled or never existed."""
        with self._lock:
            return self._pending.get(req_id)

    def add_item(self, req_id: int, item: object) -> bool:
        """Collect one data item for a request; False if the request is no longer pending."""
        with self._lock:
            p = self._pending.get(req_id)
            if p is None:
                return False
            p.items.append(item)
            return True

    def _take(self, req_id: int) -> Pending[Any] | None:
        with self._lock:
            return self._pending.pop(req_id, None)

    def finish(self, req_id: int, result: Callable[[Pending[Any]], object]) -> bool:
        """Settle a request with ``result(pending)``; False if it was already settled.

        If building the result raises, the request fails with that exception instead.
        """
        p = self._take(req_id)
        if p is None:
            log.debug("end of request %d dropped: not pending", req_id)
            return False
        try:
            value = result(p)
        except Exception as exc:  # a malformed answer fails that request only
            p.future.set_exception(exc)
        else:
            p.future.set_result(value)
        return True

    def fail(self, req_id: int, exc: BaseException) -> bool:
        """Settle a request with an exception; False if it was already settled."""
        p = self._take(req_id)
        if p is None:
            log.debug("error for request %d dropped: not pending (%s)", req_id, exc)
            return False
        p.future.set_exception(exc)
        return True

    def abandon(self, req_id: int) -> Pending[Any] | None:
        """Remove a request without settling it (the caller gave up); returns it if it was
        still pending, so the caller knows it must send IB's cancel."""
        return self._take(req_id)

    def fail_all(self, make_exc: Callable[[Pending[Any]], BaseException]) -> int:
        """Fail every pending request at once; returns how many there were."""
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for p in pending:
            p.future.set_exception(make_exc(p))
        return len(pending)
