"""The client comparisons: ibdata against a minimal raw ``ibapi`` client and ``ib_async``
2.1.0, all connected to one simulator at once.

* **ibdata**: :class:`ibdata.Client` with its own pacing off (``pacing=None``): nothing else
  here paces, and the repetitions are identical requests, which IB's rules space 15 s apart.
* **raw ibapi**: :class:`RawIbapiClient`, written here for the comparison, on ``ibapi``
  9.81.1 as IB ships it: ``EClient.connect``, ``EClient.run`` in a thread, an ``EWrapper``
  that collects each request's callbacks by request id and signals the end through a
  ``threading.Condition``.
* **ib_async**: ``ib_async.IB`` with its synchronous API (``RaiseRequestErrors=True``) in the
  caller's thread, on an event loop the caller creates (:func:`_common.event_loop`); for many
  requests at once, coroutines on that loop. Its throttle (at most 45 requests a second, for
  TWS's limit of 50 messages a second) is off (``Client.MaxRequests = 0``), as ibdata's
  (``max_message_rate=None``; 45 a second by default too) and raw ibapi has none, and the
  simulator enforces no message rate; one row of "many requests at once" runs ib_async with
  its throttle on, its default.

Every function here measures one comparison with the rows interleaved: each round runs
every client once, in a new order, so all rows share the machine's load. Wall time from
the call to holding the result, ``time.perf_counter``. Nothing asserts anything about time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import itertools
import random
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import ibdata
from _common import CLOCK_AT, rotation
from ibdata.sim import Simulator
from ibdata.sim._server import SPLIT_PAUSE

#: The end of every bar request.
END = CLOCK_AT
BAR_SIZE = "1 min"
SYMBOL = "AAPL"
WHAT_TO_SHOW = "TRADES"
#: Seconds any one request may take before the benchmark gives up.
TIMEOUT = 300.0
#: Seconds the memory measure lets a client's threads finish with a message.
SETTLE = 0.5

IBDATA = "ibdata"
RAW = "raw ibapi 9.81.1"
ASYNC2 = "ib_async 2.1.0"
ASYNC1 = "ib_async 2.1.0, formatDate=1"
#: ib_async's connect with nothing synchronised but positions (its fastest).
ASYNC_LEAN = "ib_async 2.1.0, readonly, fetchFields=0"
#: ib_async with its default throttle: at most 45 requests a second (TWS allows 50 messages).
ASYNC_THROTTLED = "ib_async 2.1.0, its default throttle"
#: ib_async's throttle (``Client.MaxRequests`` per second): its default, and off.
THROTTLE = 45
#: Client ids of the connected clients (ib_async's rows share one connection).
CLIENT_IDS = {IBDATA: 11, RAW: 12, ASYNC2: 13, ASYNC1: 13, ASYNC_THROTTLED: 13}


# --------------------------------------------------------------------------------------
# a minimal client on raw ibapi, written for this comparison


def _make_raw_wrapper() -> Any:
    from ibapi.wrapper import EWrapper

    class RawWrapper(EWrapper):  # type: ignore[misc]  # ibapi has no type hints
        """Collects callbacks by request id; signals each end on ``cond`` and ``on_end``."""

        def __init__(self) -> None:
            super().__init__()
            self.cond = threading.Condition()
            self.next_id: int | None = None
            self.items: dict[int, list[Any]] = {}
            self.done: dict[int, object] = {}
            self.closed = False
            #: Called in ibapi's message thread when a request ends: (req_id, outcome).
            self.on_end: Callable[[int, object], None] | None = None

        def _end(self, req_id: int, outcome: object) -> None:
            with self.cond:
                self.done[req_id] = outcome
            if self.on_end is not None:
                self.on_end(req_id, outcome)
            with self.cond:  # after on_end: a waiter sees what it did
                self.cond.notify_all()

        def nextValidId(self, orderId: int) -> None:  # noqa: N803
            with self.cond:
                self.next_id = orderId
                self.cond.notify_all()

        def error(self, reqId: int, errorCode: int, errorString: str, *rest: Any) -> None:  # noqa: N803
            if reqId >= 0 and not 2100 <= errorCode < 2200:
                self._end(reqId, RuntimeError(f"IB error {errorCode}: {errorString}"))

        def contractDetails(self, reqId: int, contractDetails: Any) -> None:  # noqa: N803
            self.items.setdefault(reqId, []).append(contractDetails)

        def contractDetailsEnd(self, reqId: int) -> None:  # noqa: N803
            self._end(reqId, True)

        def historicalData(self, reqId: int, bar: Any) -> None:  # noqa: N803
            self.items.setdefault(reqId, []).append(bar)

        def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:  # noqa: N803
            self._end(reqId, True)

        def connectionClosed(self) -> None:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    return RawWrapper()


class RawIbapiClient:
    """``EClient.connect`` + ``EClient.run`` in a thread; ready once ``nextValidId`` came."""

    def __init__(self, port: int, client_id: int) -> None:
        from ibapi.client import EClient
        from ibapi.contract import Contract

        self.wrapper = _make_raw_wrapper()
        self.client = EClient(self.wrapper)
        self.client.connect("127.0.0.1", port, client_id)
        if self.client.reader is not None:  # ibapi's reader thread, for the leak check
            self.client.reader.name = "ibapi-raw-reader"
        self._thread = threading.Thread(target=self.client.run, name="ibapi-raw-run", daemon=True)
        self._thread.start()
        self._ids = itertools.count(1)
        self.contract = Contract()
        self.contract.symbol, self.contract.secType = SYMBOL, "STK"
        self.contract.exchange, self.contract.currency = "SMART", "USD"
        self._wait(lambda: self.wrapper.next_id is not None)

    def close(self) -> None:
        """Disconnect; wait for ibapi's threads to end.

        The socket is shut down first: ibapi's ``disconnect`` alone leaves its reader in a
        ``recv`` with a 1 s timeout.
        """
        reader = self.client.reader
        conn = self.client.conn
        if conn is not None and conn.socket is not None:
            with suppress(OSError):
                conn.socket.shutdown(socket.SHUT_RDWR)
        self.client.disconnect()
        self._thread.join(10)
        if reader is not None:
            reader.join(10)

    def _wait(self, cond: Callable[[], bool]) -> None:
        w = self.wrapper
        with w.cond:
            if not w.cond.wait_for(lambda: cond() or w.closed, TIMEOUT):
                raise TimeoutError(f"raw ibapi: no answer within {TIMEOUT} s")
        if not cond():
            raise ConnectionError("raw ibapi: connection closed")

    def _take(self, req_id: int) -> list[Any]:
        w = self.wrapper
        with w.cond:
            done = w.done.pop(req_id)
            items: list[Any] = w.items.pop(req_id, [])
        if isinstance(done, Exception):
            raise done
        return items

    def contract_details(self) -> list[Any]:
        """reqContractDetails for AAPL; the ibapi ContractDetails objects."""
        req_id = next(self._ids)
        self.client.reqContractDetails(req_id, self.contract)
        self._wait(lambda: req_id in self.wrapper.done)
        return self._take(req_id)

    def bars(self, duration: str) -> list[Any]:
        """reqHistoricalData; the ibapi BarData objects."""
        req_id = next(self._ids)
        end = END.strftime("%Y%m%d-%H:%M:%S")
        self.client.reqHistoricalData(
            req_id, self.contract, end, duration, BAR_SIZE, WHAT_TO_SHOW, 0, 2, False, []
        )
        self._wait(lambda: req_id in self.wrapper.done)
        return self._take(req_id)

    def details_in_flight(self, total: int, window: int) -> list[float]:
        """``total`` reqContractDetails with ``window`` in flight at once, ibapi's own way:
        requests by id, answers by callback. The caller sends the first ``window``; ibapi's
        message thread sends the next one as each ends. Each request's seconds from send
        to end."""
        lock = threading.Lock()
        sent_at: dict[int, float] = {}
        took: list[float] = []
        failures: list[str] = []
        left = [total]

        def send() -> None:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
                req_id = next(self._ids)
                sent_at[req_id] = time.perf_counter()
            self.client.reqContractDetails(req_id, self.contract)

        def on_end(req_id: int, outcome: object) -> None:
            ended = time.perf_counter()
            with lock:
                took.append(ended - sent_at.pop(req_id))
            try:
                if len(self._take(req_id)) != 1:
                    failures.append(f"request {req_id}: not one contract")
            except Exception as exc:
                failures.append(f"request {req_id}: {exc}")
            send()

        self.wrapper.on_end = on_end
        try:
            for _ in range(window):
                send()
            self._wait(lambda: len(took) == total)
        finally:
            self.wrapper.on_end = None
        if failures:
            raise RuntimeError(f"raw ibapi: {failures[0]} ({len(failures)} failed)")
        return took


# --------------------------------------------------------------------------------------
# the clients behind one interface


class Contender:
    """One client's calls (None: the comparison has no such row) and its measurements."""

    def __init__(
        self,
        name: str,
        *,
        details: Callable[[], list[Any]] | None = None,
        bars: Callable[[], Any] | None = None,
        burst: Callable[[int, int], list[float]] | None = None,
    ) -> None:
        self.name = name
        self.details = details
        self.bars = bars
        #: ``burst(total, concurrency)``: that many contract-details requests, that many at
        #: once; each request's seconds.
        self.burst = burst
        self.latency: list[float] = []
        self.seconds: list[float] = []
        self.result_bytes = 0
        self.burst_walls: list[float] = []
        self.burst_latency: list[float] = []

    @property
    def clean_latency(self) -> list[float]:
        """Latency samples under 0.2 s: without the simulator's split pause (official
        clients) or a client's own stalls."""
        return [x for x in self.latency if x < SPLIT_PAUSE]


def ibdata_client(sim: Simulator, client_id: int) -> ibdata.Client:
    """A connected ibdata client without pacing or message-rate limit (see the module's
    docstring: ib_async's throttle is off too)."""
    return ibdata.Client(
        "127.0.0.1",
        sim.port,
        client_id=client_id,
        timeout=TIMEOUT,
        pacing=None,
        max_message_rate=None,
    )


def _ibdata_burst(client: ibdata.Client) -> Callable[[int, int], list[float]]:
    def burst(total: int, threads: int) -> list[float]:
        """``threads`` threads share one client, each making ``total / threads`` calls."""
        per_thread = [total // threads + (i < total % threads) for i in range(threads)]
        took: list[list[float]] = [[] for _ in range(threads)]
        failures: list[BaseException] = []
        start = threading.Barrier(threads + 1)

        def work(i: int) -> None:
            start.wait()
            try:
                for _ in range(per_thread[i]):
                    t0 = time.perf_counter()
                    found = client.get_contract_details(SYMBOL)
                    took[i].append(time.perf_counter() - t0)
                    if len(found) != 1:
                        raise RuntimeError(f"{len(found)} contract details")
            except BaseException as exc:
                failures.append(exc)

        workers = [
            threading.Thread(target=work, args=(i,), name=f"bench-thread-{i}", daemon=True)
            for i in range(threads)
        ]
        for w in workers:
            w.start()
        start.wait()
        for w in workers:
            w.join(TIMEOUT)
        if failures:
            raise RuntimeError(f"ibdata: {failures[0]!r} ({len(failures)} threads failed)")
        return [x for xs in took for x in xs]

    return burst


def _ib_async_burst(ib: Any, stock: Any, throttle: int) -> Callable[[int, int], list[float]]:
    def burst(total: int, tasks: int) -> list[float]:
        """``tasks`` coroutines on ib_async's loop, each awaiting its share one by one, with
        ib_async's throttle at ``throttle`` requests a second (0: off)."""
        took: list[float] = []

        async def work(n: int) -> None:
            for _ in range(n):
                t0 = time.perf_counter()
                found = await ib.reqContractDetailsAsync(stock)
                took.append(time.perf_counter() - t0)
                if len(found) != 1:
                    raise RuntimeError(f"ib_async: {len(found)} contract details")

        shares = [total // tasks + (i < total % tasks) for i in range(tasks)]
        loop = asyncio.get_event_loop()
        ib.client.MaxRequests = throttle
        try:
            loop.run_until_complete(asyncio.gather(*(work(n) for n in shares)))
        finally:
            ib.client.MaxRequests = 0
        return took

    return burst


@contextmanager
def contenders(sim: Simulator, duration: str) -> Iterator[list[Contender]]:
    """ibdata, raw ibapi and ib_async (its bars twice: formatDate 2 and 1), connected to
    ``sim``; closed afterwards. Call inside :func:`_common.event_loop`."""
    from ib_async import IB, Stock

    ours = ibdata_client(sim, CLIENT_IDS[IBDATA]).connect()
    raw: RawIbapiClient | None = None
    ib = IB()
    try:
        raw = RawIbapiClient(sim.port, CLIENT_IDS[RAW])
        ib.RaiseRequestErrors = True
        ib.connect("127.0.0.1", sim.port, clientId=CLIENT_IDS[ASYNC2], timeout=30)
        ib.client.MaxRequests = 0  # its throttle off: see the module's docstring
        stock = Stock(SYMBOL, "SMART", "USD")

        def async_bars(format_date: int) -> Callable[[], Any]:
            def run() -> Any:
                return ib.reqHistoricalData(
                    stock,
                    END,
                    duration,
                    BAR_SIZE,
                    WHAT_TO_SHOW,
                    False,
                    formatDate=format_date,
                    timeout=TIMEOUT,
                )

            return run

        def ours_bars() -> ibdata.Bars:
            return ours.get_historical_bars(
                SYMBOL,
                duration=duration,
                bar_size=BAR_SIZE,
                what_to_show=WHAT_TO_SHOW,
                end=END,
                use_rth=False,
            )

        yield [
            Contender(
                IBDATA,
                details=lambda: ours.get_contract_details(SYMBOL),
                bars=ours_bars,
                burst=_ibdata_burst(ours),
            ),
            Contender(
                RAW,
                details=raw.contract_details,
                bars=lambda: raw.bars(duration),
                burst=raw.details_in_flight,
            ),
            Contender(
                ASYNC2,
                details=lambda: ib.reqContractDetails(stock),
                bars=async_bars(2),
                burst=_ib_async_burst(ib, stock, 0),
            ),
            # the same ib_async client with its default formatDate: bars only
            Contender(ASYNC1, bars=async_bars(1)),
            # and with its default throttle: many requests at once only
            Contender(ASYNC_THROTTLED, burst=_ib_async_burst(ib, stock, THROTTLE)),
        ]
    finally:
        ib.disconnect()
        if raw is not None:
            raw.close()
        ours.close()


# --------------------------------------------------------------------------------------
# measuring


def _details_requests(sim: Simulator) -> dict[int, int]:
    counts: dict[int, int] = {}
    for m in sim.received.find("reqContractDetails"):
        if m.client_id is not None:
            counts[m.client_id] = counts.get(m.client_id, 0) + 1
    return counts


def _check_round_trips(
    sim: Simulator, before: dict[int, int], calls: dict[str, int], what: str
) -> None:
    """Every call was one reqContractDetails at the simulator (nothing cached, nothing
    shared)."""
    after = _details_requests(sim)
    expected: dict[int, int] = {}
    for name, n in calls.items():
        expected[CLIENT_IDS[name]] = expected.get(CLIENT_IDS[name], 0) + n
    for client_id, n in expected.items():
        sent = after.get(client_id, 0) - before.get(client_id, 0)
        if sent != n:
            raise RuntimeError(
                f"{what}: client {client_id} sent {sent} reqContractDetails for {n} calls: "
                "not every call was a round trip"
            )


def measure_connect(sim: Simulator, samples: int, times: dict[str, list[float]]) -> None:
    """Seconds from the call to a client ready for requests, ``samples`` more per client in
    ``times``, interleaved (every client once per round, in a new random order); each
    connection is closed, untimed, before the next. Each sample uses a new client id. The
    first call connects each client once untimed (imports, first-use caches)."""
    from ib_async import IB, StartupFetch

    ids = itertools.count(1000 + 10 * sum(len(t) for t in times.values()))

    def ours() -> Callable[[], object]:
        client = ibdata_client(sim, next(ids)).connect()
        return client.close

    def raw() -> Callable[[], object]:
        return RawIbapiClient(sim.port, next(ids)).close

    def async_connect(lean: bool) -> Callable[[], Callable[[], object]]:
        def connect() -> Callable[[], object]:
            ib = IB()
            options: dict[str, Any] = {}
            if lean:  # positions only: ib_async has no way to skip those
                options = {"readonly": True, "fetchFields": StartupFetch(0)}
            ib.connect("127.0.0.1", sim.port, clientId=next(ids), timeout=30, **options)
            return ib.disconnect

        return connect

    connects: dict[str, Callable[[], Callable[[], object]]] = {
        IBDATA: ours,
        RAW: raw,
        ASYNC2: async_connect(False),
        ASYNC_LEAN: async_connect(True),
    }
    names = list(connects)
    if not times:
        times.update({name: [] for name in names})
        for name in names:
            connects[name]()()
    shuffle = random.Random(sum(len(t) for t in times.values())).shuffle
    for _ in range(samples):
        shuffle(names)
        for name in names:
            start = time.perf_counter()
            close = connects[name]()
            times[name].append(time.perf_counter() - start)
            close()


def measure_latency(contenders: list[Contender], sim: Simulator, samples: int) -> None:
    """Time ``samples`` contract-details round trips per client, interleaved (every client
    once per round, in a new random order); check with the simulator's log that each one
    reached it."""
    clients = [c for c in contenders if c.details is not None]
    calls = {c.name: c.details for c in clients if c.details is not None}
    for c in clients:  # one untimed call each: imports, first-use caches
        if len(calls[c.name]()) != 1:
            raise RuntimeError(f"{c.name}: AAPL should resolve to one contract")
    before = _details_requests(sim)
    shuffle = random.Random(len(clients[0].latency)).shuffle
    for _ in range(samples):
        order = list(clients)
        shuffle(order)
        for c in order:
            start = time.perf_counter()
            details = calls[c.name]()
            c.latency.append(time.perf_counter() - start)
            if len(details) != 1:
                raise RuntimeError(f"{c.name}: {len(details)} contract details")
    _check_round_trips(sim, before, {c.name: samples for c in clients}, "latency")


def check_bars(contenders: list[Contender]) -> dict[str, Any]:
    """Ask every client for the window once, untimed (this also fills the simulator's
    session cache, so the simulator is never the bottleneck), and check that all hold the
    same bars: count, closes, first and last time."""
    closes: dict[str, list[float]] = {}
    spans: dict[str, tuple[dt.datetime, dt.datetime]] = {}
    for c in contenders:
        if c.bars is None:
            continue
        result = c.bars()
        closes[c.name] = [b.close for b in result]
        if c.name == IBDATA:
            spans[c.name] = result[0].time, result[-1].time
        elif c.name in (ASYNC1, ASYNC2):
            spans[c.name] = result[0].date, result[-1].date
        del result
    reference = closes[IBDATA]
    for name, values in closes.items():
        if values != reference:
            raise RuntimeError(f"{name} got other bars than ibdata ({len(values)} closes)")
    for name, span in spans.items():
        if span != spans[IBDATA]:  # aware datetimes: equal when they are the same instant
            raise RuntimeError(f"{name}'s bars span {span}, ibdata's {spans[IBDATA]}")
    first, last = spans[IBDATA]
    return {"bars": len(reference), "first": first, "last": last}


def measure_bars(contenders: list[Contender], bars: int, n: int) -> None:
    """Time one call per client for the large response, in the order of round ``n``
    of the round-robin, each after a ``gc.collect()``."""
    clients = [c for c in contenders if c.bars is not None]
    for c in rotation(clients, n):
        assert c.bars is not None
        gc.collect()  # garbage of the previous call is not this call's cost
        start = time.perf_counter()
        result = c.bars()
        c.seconds.append(time.perf_counter() - start)
        n = len(result)
        del result
        if n != bars:
            raise RuntimeError(f"{c.name} got {n} bars, expected {bars}")


def measure_memory(contenders: list[Contender]) -> None:
    """Traced bytes that dropping each client's result frees: the result object alone (one
    more call per client under ``tracemalloc``, started afresh for each, with only the
    result alive after ``gc.collect()``); socket buffers and decoder garbage not counted.

    A client's message thread may still be freeing the frame (a million field objects)
    when the caller already holds the result: the measure waits for it, or part of the
    frame would be counted as the result (seen once: 118.8 instead of 64.8 bytes a bar)."""
    for c in contenders:
        if c.bars is None:
            continue
        gc.collect()
        tracemalloc.start()
        try:
            result = c.bars()
            time.sleep(SETTLE)
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0]
            del result
            gc.collect()
            c.result_bytes = kept - tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()


def measure_burst(
    contenders: list[Contender], sim: Simulator, total: int, concurrency: int, n: int
) -> None:
    """``total`` contract-details requests per client, ``concurrency`` at once, the clients
    one after the other in the order of round ``n``; wall time and each request's
    latency; every request must reach the simulator."""
    clients = [c for c in contenders if c.burst is not None]
    before = _details_requests(sim)
    for c in rotation(clients, n):
        assert c.burst is not None
        gc.collect()
        start = time.perf_counter()
        took = c.burst(total, concurrency)
        c.burst_walls.append(time.perf_counter() - start)
        c.burst_latency.extend(took)
        if len(took) != total:
            raise RuntimeError(f"{c.name}: {len(took)} answers for {total} requests")
    _check_round_trips(sim, before, {c.name: total for c in clients}, "many at once")
