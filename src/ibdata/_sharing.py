"""One pacing budget per TWS login, shared by every client that uses the same store.

IB counts its pacing rules per login, whatever program or process sends the requests. A
:class:`SharedPacer` therefore decides from the store's ledger (:meth:`BarStore.admit`):
every historical and head-timestamp request of every client on the login is recorded there
before it is sent, under the login's lock, and the 50-open-requests limit is kept with
leases that expire when their process dies. A client with no store paces in memory
(:class:`ibdata._pacer.Pacer`), which is exact for a client alone on its login.

When the store cannot be reached, the pacer says so (a :class:`~ibdata.store.CacheWarning`)
and paces by its own record until the store answers again: a store that fails never stops
a download, and the client's own requests never break the rules even then.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import threading
import time
import uuid
import warnings
from collections.abc import Hashable, Sequence

from ibdata._pacer import Pacer, longest_window, with_margin
from ibdata.exceptions import RequestTimeoutError
from ibdata.pacing import PacedRequest, PacingRules, PacingTracker
from ibdata.store import BarStore, CacheWarning, Decide

log = logging.getLogger("ibdata.pacing")

#: How long after a store failure the pacer paces in memory before it asks the store again.
STORE_RETRY_SECONDS = 5.0

#: How often a request waiting for a free open-request slot asks again (seconds).
SLOT_POLL_SECONDS = 0.1

#: The longest a waiting request sleeps before asking the ledger again.
MAX_SLEEP_SECONDS = 5.0

#: What the store's ledger and this module fail with.
STORE_FAILURES = (sqlite3.Error, OSError)


def encode(request: PacedRequest, by: str) -> str:
    """``request`` as the ledger's text, naming the pacer ``by`` that sent it."""
    return json.dumps(
        [
            request.contract,
            request.exchange,
            request.what_to_show,
            request.bar_size,
            list(request.identity),
            request.head_timestamp,
            by,
        ],
        separators=(",", ":"),
    )


@functools.lru_cache(maxsize=4096)  # each pacing decision reads the whole ledger again
def decode(text: str) -> tuple[PacedRequest, str]:
    """The request and the pacer's name in a ledger entry; ValueError if it is not one."""
    try:
        contract, exchange, show, size, identity, head, by = json.loads(text)
        request = PacedRequest(
            contract=str(contract),
            exchange=str(exchange),
            what_to_show=str(show),
            bar_size=str(size),
            identity=tuple(str(i) for i in identity),
            head_timestamp=bool(head),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a ledger entry: {text!r:.80}") from exc
    return request, str(by)


class SharedPacer:
    """Admits historical requests under IB's rules counted over a store's ledger for one
    TWS login; the same interface as :class:`ibdata._pacer.Pacer`. Thread-safe."""

    def __init__(self, rules: PacingRules, store: BarStore, login: str) -> None:
        self.rules = rules
        self.login = login
        self._store = store
        self._margined = with_margin(rules)
        self._local = Pacer(rules)  # this client's own record: the fallback
        self._name = uuid.uuid4().hex
        self._leases: dict[Hashable, tuple[str, bool]] = {}  # key -> (lease, counted)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._keep = longest_window(self._margined)
        self.waited = 0.0

    def _counted(self, request: PacedRequest) -> bool:
        return self.rules.counts_as_small(request) or self.rules.soft_window is not None

    def _decide(self, request: PacedRequest) -> Decide:
        margined, max_open = self._margined, self.rules.max_open

        def decide(rows: Sequence[tuple[float, str]], open_now: int, now: float) -> float:
            tracker = PacingTracker(margined)
            for at, text in rows:
                try:
                    tracker.record(decode(text)[0], at)
                except ValueError:
                    log.warning("ignoring a ledger entry that is not ibdata's: %.80r", text)
            wait = tracker.delay(request, now)
            if wait > 0:
                return wait
            return SLOT_POLL_SECONDS if open_now >= max_open else 0.0

        return decide

    def acquire(self, request: PacedRequest, key: Hashable, deadline: float | None) -> None:
        """Block until ``request`` may be sent on the login, then count it in the ledger and
        hold an open-request lease for ``key``.

        Raises:
            RequestTimeoutError: ``deadline`` (a ``time.monotonic()`` value) passed first.
        """
        t0 = time.monotonic()
        decide = self._decide(request)
        text = encode(request, self._name) if self._counted(request) else None
        while True:
            now = time.monotonic()
            if now < self._down_until:
                self._local.acquire(request, key, deadline)
                return
            lease = uuid.uuid4().hex
            try:
                wait = self._store.admit(self.login, decide, text, lease, self._keep)
            except STORE_FAILURES as exc:
                self._store_failed(exc)
                continue
            if wait <= 0:
                with self._lock:
                    self._leases[key] = (lease, text is not None)
                self._local.note(request, key, time.monotonic())
                self.waited += time.monotonic() - t0
                return
            if deadline is not None and now + wait > deadline:
                raise RequestTimeoutError(
                    None,
                    max(deadline - t0, 0.0),
                    "waiting for IB's pacing rules to allow a historical request",
                )
            time.sleep(min(wait, MAX_SLEEP_SECONDS))

    def sent(self, key: Hashable) -> None:
        """The request admitted for ``key`` is being sent now: its ledger entry moves to
        this moment, so that a pause between admission and sending (a loaded machine, a
        reconnect) never lets another client's request count from too early."""
        with self._lock:
            held = self._leases.get(key)
        if held is None or not held[1]:
            return
        try:
            self._store.sent(self.login, held[0])
        except STORE_FAILURES as exc:  # the entry keeps its admission time
            log.info("could not note a send in %s: %s", self._store.location, exc)

    def release(self, key: Hashable) -> None:
        """Free the open-request lease of a finished request. Idempotent."""
        with self._lock:
            held = self._leases.pop(key, None)
        self._local.release(key)
        if held is None:
            return
        lease = held[0]
        try:
            self._store.release(lease)
        except STORE_FAILURES as exc:  # it expires on its own
            log.info("could not release lease %s in %s: %s", lease, self._store.location, exc)

    def others(self) -> list[tuple[float, PacedRequest]]:
        """The requests other clients on the login sent, as ``(time.monotonic() value,
        request)``, to explain a pacing refusal; empty when the store cannot say."""
        try:
            rows, now = self._store.ledger(self.login)
        except STORE_FAILURES:
            return []
        shift = time.monotonic() - now
        out = []
        for at, text in rows:
            try:
                request, by = decode(text)
            except ValueError:
                continue
            if by != self._name:
                out.append((at + shift, request))
        return out

    def _store_failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + STORE_RETRY_SECONDS
        message = (
            f"the shared pacing ledger in {self._store.location} could not be used "
            f"({type(exc).__name__}: {exc}); pacing by this client's own requests for "
            f"{STORE_RETRY_SECONDS:g} s"
        )
        log.warning("%s", message)
        warnings.warn(CacheWarning(message), stacklevel=4)
