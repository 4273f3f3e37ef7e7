"""What the simulator saw: every message clients sent, and running counters."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator

import attrs


@attrs.frozen
class Received:
    """One message a client sent to the simulator.

    Attributes:
        connection: the simulator's number for the TCP connection (1, 2, ...).
        client_id: the API client id, or None before startApi.
        msg_id: the outgoing message id (``20`` for reqHistoricalData).
        name: IB's name for the message (``reqHistoricalData``), or ``msg<N>`` if unknown.
        fields: every field as text, the message id first.
        time: ``time.monotonic()`` when the message was read.
    """

    connection: int
    client_id: int | None
    msg_id: int
    name: str
    fields: tuple[str, ...]
    time: float


class ReceivedLog:
    """A thread-safe, bounded record of received messages with a way to wait for one.

    The newest ``maxlen`` messages are kept; :attr:`total` counts every message ever seen.
    """

    def __init__(self, maxlen: int = 100_000) -> None:
        self._items: collections.deque[Received] = collections.deque(maxlen=maxlen)
        self._cond = threading.Condition()
        self._total = 0

    def append(self, item: Received) -> None:
        """Record a message and wake waiters."""
        with self._cond:
            self._items.append(item)
            self._total += 1
            self._cond.notify_all()

    def snapshot(self) -> list[Received]:
        """The kept messages, oldest first."""
        with self._cond:
            return list(self._items)

    def __iter__(self) -> Iterator[Received]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def total(self) -> int:
        """How many messages were received since the simulator was created or cleared."""
        with self._cond:
            return self._total

    def clear(self) -> None:
        """Forget every recorded message."""
        with self._cond:
            self._items.clear()
            self._total = 0

    def find(
        self,
        name: str | int | None = None,
        *,
        client_id: int | None = None,
        where: Callable[[Received], bool] | None = None,
    ) -> list[Received]:
        """Recorded messages matching a message name or id, a client id and a predicate."""
        return [m for m in self.snapshot() if _matches(m, name, client_id, where)]

    def wait_for(
        self,
        name: str | int | None = None,
        *,
        client_id: int | None = None,
        where: Callable[[Received], bool] | None = None,
        timeout: float = 5.0,
    ) -> Received:
        """Block until a matching message has been received, and return the first such.

        Messages already recorded count. Blocks at most ``timeout`` seconds.

        Raises:
            TimeoutError: no matching message arrived in time.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self._items:
                    if _matches(m, name, client_id, where):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no {name if name is not None else 'message'} received within {timeout} s"
                    )
                self._cond.wait(left)


def _matches(
    m: Received,
    name: str | int | None,
    client_id: int | None,
    where: Callable[[Received], bool] | None,
) -> bool:
    if isinstance(name, int) and m.msg_id != name:
        return False
    if isinstance(name, str) and m.name != name:
        return False
    if client_id is not None and m.client_id != client_id:
        return False
    return where is None or where(m)


@attrs.frozen
class SimStats:
    """Counters of a simulator, read with :attr:`ibdata.sim.Simulator.stats`.

    Attributes:
        connections: TCP connections accepted since start.
        active_clients: connections currently open.
        requests: messages received after startApi.
        historical_requests: reqHistoricalData and reqHeadTimestamp received.
        open_historical: historical requests holding one of the 50 slots now.
        pacing_violations: requests refused with a 162 pacing violation.
        order_messages: order messages received (a read-only client sends none).
        dropped_clients: connections closed for breaking the protocol or not reading.
        live_updates_sent: historicalDataUpdate messages written to clients (keepUpToDate).
    """

    connections: int
    active_clients: int
    requests: int
    historical_requests: int
    open_historical: int
    pacing_violations: int
    order_messages: int
    dropped_clients: int
    live_updates_sent: int
