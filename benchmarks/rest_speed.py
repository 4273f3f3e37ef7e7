"""The REST adapter against the older server's design (an IB connection per request).

ibdata's REST adapter (one shared session) and the older design (a new IB connection for
every HTTP request), on one simulator, in one run.

Two HTTP servers run side by side in this process, each under uvicorn in a thread (h11, the
asyncio loop: what is installed), both serving ``GET /ib/market-data/{symbol}`` over the same
in-process simulator: ``Simulator(pacing=None)`` (the benchmark measures the adapters, not
IB's pacing), clock fixed at 2025-03-12 21:00 UTC, TWS's limit of 32 clients.

* **ibdata**: :func:`ibdata.http.create_app` over one connected :class:`ibdata.Client`
  (``pacing=None``), authentication off (``token=""``).
* **older design**: a minimal FastAPI app written here for the comparison, with the same
  endpoint and the same JSON, whose handler (a plain ``def``: Starlette runs it in its thread
  pool, as the older Flask server ran its handlers in threads) opens a new raw ``ibapi``
  9.81.1 connection for every request: ``EClient.connect`` with a random client id
  (1-9999), ``EClient.run`` in a thread, wait for ``nextValidId``, ``reqHistoricalData``,
  wait for ``historicalDataEnd``, build the JSON, disconnect. The older server did this with
  ``ib_insync``; a raw ``ibapi`` connection per request is the same design and the same cost
  class (a TCP connection, a handshake and an API session per request). Its disconnect shuts
  the socket down before ``EClient.disconnect``, so TWS sees the connection end at once as
  with ``ib_insync``: ibapi's own disconnect leaves the TCP connection, and its slot among
  TWS's 32, open until its reader's ``recv`` times out (up to 1 s; ``--plain-disconnect``
  measures that).

The load: 50 concurrent HTTP clients (50 tasks, each with its own ``httpx.AsyncClient`` and
keep-alive connection) in one event loop in a **separate process**, so that the load does not
compete with the servers for this process's GIL. Each client sends
``GET /ib/market-data/AAPL?duration=1 D&barSize=1 hour`` as soon as it has the previous
answer. Before timing, each server answers that URL once (which also puts the window in the
simulator's session cache: IB's side is cheap). The designs take turns in short rounds (3 per
design, the order alternating) so that both see the same machine; each round opens its 50
HTTP connections with one untimed request for a path the server answers 404 without asking
IB, then times requests for a third of ``--seconds``.

Measured per design: requests answered 200 per second (all rounds' 200s over all rounds'
time), p50/p99 latency of those answers (send → whole body, ``time.perf_counter`` in the load
process), every other answer or failure as an error (with the older design's reasons: 326
client id in use, a connection TWS closed at once at its 32-client limit, ...), and CPU time:
of this process (servers and simulator) and of the load process, per second of wall time,
and this process's by thread role, per request (``/proc/self/task``, Linux). For the older
design, the median time of each phase of its handler. The machine's 2 cores are shared by the
load process, the servers and the simulator.

Run ``python benchmarks/rest_speed.py [--quick] [--seconds N] [--output FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ holds _common.py
from _common import leftover_threads, machine

UTC = dt.timezone.utc

#: The simulator's clock: a Wednesday evening, after the US close.
CLOCK_AT = dt.datetime(2025, 3, 12, 21, 0, tzinfo=UTC)
SYMBOL = "AAPL"
PATH = f"/ib/market-data/{SYMBOL}?duration=1%20D&barSize=1%20hour"
CLIENTS = 50
ROUNDS = 3
FULL_SECONDS = 10.0
QUICK_SECONDS = 1.5
#: The issue's target: ibdata's throughput over the older design's.
TARGET = 20.0
#: Seconds the older design's handler waits for TWS at each step, as the older server's
#: connect timeout did (15 s there).
OLD_TIMEOUT = 10.0
#: ``ib_async``'s own default connect timeout: a 326 (client id in use) surfaces only then.
OLD_CONNECT_TIMEOUT = 4.0
#: The older design's client id: ``fixed`` (as the issue describes the older server: one
#: id, so requests at the same time collide with 326) or ``random`` (1-9999, its best case).
OLD_CLIENT_ID = {"mode": "fixed"}
#: The fixed id: the older README's ``IB_CLIENT_ID=1``.
FIXED_CLIENT_ID = 1


def _old_client_id() -> int:
    if OLD_CLIENT_ID["mode"] == "fixed":
        return FIXED_CLIENT_ID
    return random.randint(1, 9999)


#: Seconds an HTTP request of the load may take.
HTTP_TIMEOUT = 30.0

IBDATA = "ibdata"
OLD = "older design"
_LOAD_WORKER = "--load-worker"
#: A path neither server serves: opens an HTTP connection without asking IB.
WARM_PATH = "/rest-speed-warm-up"


# --------------------------------------------------------------------------------------
# the older design, re-created: a new raw ibapi connection for every request


class OldFailureError(Exception):
    """The older design could not answer: the HTTP status, IB's code, and the kind of failure
    (the error table's row)."""

    def __init__(self, status: int, code: int | None, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.kind = kind


def _old_wrapper() -> Any:
    from ibapi.wrapper import EWrapper

    class OldWrapper(EWrapper):  # type: ignore[misc]  # ibapi has no type hints
        """One connection's callbacks: ready, bars, end, the first error, closed."""

        def __init__(self) -> None:
            super().__init__()
            self.cond = threading.Condition()
            self.ready = False
            self.bars: list[Any] = []
            self.ended = False
            self.failure: tuple[int, str] | None = None
            self.closed = False

        def nextValidId(self, orderId: int) -> None:  # noqa: N803
            with self.cond:
                self.ready = True
                self.cond.notify_all()

        def managedAccounts(self, accountsList: str) -> None:  # noqa: N803
            pass

        def connectAck(self) -> None:
            pass

        def error(self, reqId: int, errorCode: int, errorString: str, *rest: Any) -> None:  # noqa: N803
            if 2100 <= errorCode < 2200:  # farm notices
                return
            with self.cond:
                if self.failure is None:
                    self.failure = (errorCode, errorString)
                self.cond.notify_all()

        def historicalData(self, reqId: int, bar: Any) -> None:  # noqa: N803
            self.bars.append(bar)

        def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:  # noqa: N803
            with self.cond:
                self.ended = True
                self.cond.notify_all()

        def connectionClosed(self) -> None:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    return OldWrapper()


def _wait(wrapper: Any, done: Callable[[], bool], step: str) -> None:
    """Wait for ``done``; an IB error, a closed connection or a timeout raise OldFailureError."""
    with wrapper.cond:
        wrapper.cond.wait_for(
            lambda: done() or wrapper.failure is not None or wrapper.closed, OLD_TIMEOUT
        )
        if done():
            return
        if wrapper.failure is not None:
            code, text = wrapper.failure
            status = 503 if code in (326, 502) else 502
            kind, message = f"{step}: IB error {code}", f"{step}: {code} {text}"
            raise OldFailureError(status, code, kind, message)
        if wrapper.closed:
            kind = f"{step}: connection closed"
            raise OldFailureError(503, None, kind, kind)
    raise OldFailureError(504, None, f"{step}: timeout", f"{step}: no answer in {OLD_TIMEOUT} s")


def _bar_time(text: str) -> str:
    """An intraday bar time of formatDate=2 (epoch seconds) as ISO 8601 UTC with Z."""
    return dt.datetime.fromtimestamp(int(text), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def old_market_data(
    port: int,
    symbol: str,
    duration: str,
    bar_size: str,
    what_to_show: str,
    use_rth: bool,
    phases: list[tuple[float, ...]],
    *,
    shutdown: bool = True,
) -> dict[str, Any]:
    """One request the older way: connect, fetch, build the JSON, disconnect.

    ``shutdown``: shut the socket down before ibapi's ``disconnect``, so that TWS sees the
    connection end at once, as it does with ``ib_insync``'s ``disconnect``. ibapi 9.81.1
    only closes the socket while its reader thread sits in ``recv`` on it (1 s timeout):
    the connection then stays open, and holds one of TWS's 32 client slots, until that
    ``recv`` times out.

    Appends the seconds of each phase to ``phases`` when it succeeds: connect (TCP and the
    version handshake), session (startApi until nextValidId), bars (reqHistoricalData until
    historicalDataEnd), JSON, disconnect.
    """
    from ibapi.client import EClient
    from ibapi.contract import Contract

    t0 = time.perf_counter()
    wrapper = _old_wrapper()
    client = EClient(wrapper)
    try:
        client.connect("127.0.0.1", port, _old_client_id())
        t_connect = time.perf_counter()
        if not client.isConnected():
            kind = "connect: closed by TWS at once (its 32-client limit)"
            raise OldFailureError(503, None, kind, kind)
        if client.reader is not None:  # ibapi's reader thread, named for the leak check
            client.reader.name = "ibapi-old-reader"
        threading.Thread(target=client.run, name="ibapi-old-run", daemon=True).start()
        _wait(wrapper, lambda: wrapper.ready, "session")
        t_ready = time.perf_counter()
        contract = Contract()
        contract.symbol, contract.secType = symbol, "STK"
        contract.exchange, contract.currency = "SMART", "USD"
        client.reqHistoricalData(
            1, contract, "", duration, bar_size, what_to_show, int(use_rth), 2, False, []
        )
        _wait(wrapper, lambda: wrapper.ended, "bars")
        t_bars = time.perf_counter()
        data = [
            {
                "time": _bar_time(b.date),
                "open": b.open,
                "high": b.high,
                "low": b.low,
                "close": b.close,
                "volume": _number(b.volume),
                "count": b.barCount,
                "wap": b.average,
            }
            for b in wrapper.bars
        ]
        body = {
            "symbol": symbol,
            "duration": duration,
            "barSize": bar_size,
            "whatToShow": what_to_show,
            "useRTH": use_rth,
            "start": data[0]["time"] if data else None,
            "end": dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),  # asked for "now"
            "contract": {
                "conId": contract.conId,
                "symbol": contract.symbol,
                "secType": contract.secType,
                "exchange": contract.exchange,
                "currency": contract.currency,
                "localSymbol": contract.localSymbol,
                "tradingClass": contract.tradingClass,
                "primaryExchange": contract.primaryExchange,
                "lastTradeDate": contract.lastTradeDateOrContractMonth,
                "multiplier": contract.multiplier,
            },
            "data": data,
            "count": len(data),
            "durationMs": round((t_bars - t_ready) * 1000),
        }
        t_json = time.perf_counter()
    finally:
        if shutdown and client.conn is not None and client.conn.socket is not None:
            with contextlib.suppress(OSError):
                client.conn.socket.shutdown(socket.SHUT_RDWR)
        client.disconnect()  # ibapi's threads end by themselves (its loop polls every 0.2 s)
    t_end = time.perf_counter()
    phases.append(
        (t_connect - t0, t_ready - t_connect, t_bars - t_ready, t_json - t_bars, t_end - t_json)
    )
    return body


def old_market_data_ib_async(
    port: int,
    symbol: str,
    duration: str,
    bar_size: str,
    what_to_show: str,
    use_rth: bool,
    phases: list[tuple[float, ...]],
    *,
    shutdown: bool = True,
) -> dict[str, Any]:
    """One request as the older server made it: ``ib_async`` (the maintained ``ib_insync``)
    connects with a random client id — which also synchronises positions, open and completed
    orders, account updates and executions before it returns, as ``ib_insync`` did — fetches
    the bars, builds the JSON, disconnects. Each worker thread gets its own event loop.

    ``shutdown`` is unused (``ib_async`` closes its socket at once). Appends the phases
    (connect and session together, then bars, JSON, disconnect) when it succeeds.
    """
    del shutdown
    from ib_async import IB, Stock

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ib = IB()
    ib.RaiseRequestErrors = True
    t0 = time.perf_counter()
    try:
        try:
            ib.connect("127.0.0.1", port, clientId=_old_client_id(), timeout=OLD_CONNECT_TIMEOUT)
        except (TimeoutError, ConnectionError, OSError) as exc:
            kind = f"connect: {type(exc).__name__} (326 or TWS's 32-client limit)"
            raise OldFailureError(503, None, kind, kind) from exc
        t_ready = time.perf_counter()
        contract = Stock(symbol, "SMART", "USD")
        bars = ib.reqHistoricalData(
            contract,
            endDateTime="",
            durationStr=duration,
            barSizeSetting=bar_size,
            whatToShow=what_to_show,
            useRTH=use_rth,
            formatDate=2,
            timeout=OLD_TIMEOUT,
        )
        t_bars = time.perf_counter()

        def when(value: Any) -> str:
            if isinstance(value, dt.datetime):
                return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return f"{value:%Y%m%d}"

        data = [
            {
                "time": when(b.date),
                "open": b.open,
                "high": b.high,
                "low": b.low,
                "close": b.close,
                "volume": _number(b.volume),
                "count": b.barCount,
                "wap": b.average,
            }
            for b in bars
        ]
        body = {
            "symbol": symbol,
            "duration": duration,
            "barSize": bar_size,
            "whatToShow": what_to_show,
            "useRTH": use_rth,
            "start": data[0]["time"] if data else None,
            "end": dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "contract": {"symbol": symbol, "secType": "STK", "exchange": "SMART"},
            "data": data,
            "count": len(data),
            "durationMs": round((t_bars - t_ready) * 1000),
        }
        t_json = time.perf_counter()
    finally:
        ib.disconnect()
        # ib_async closes its transport on the loop: let it run before closing the loop
        for _ in range(3):
            loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        asyncio.set_event_loop(None)
    t_end = time.perf_counter()
    phases.append((t_ready - t0, 0.0, t_bars - t_ready, t_json - t_bars, t_end - t_json))
    return body


#: The older design's handler, by the client it uses (``--old-client``).
OLD_CLIENTS = {"ib_async": old_market_data_ib_async, "ibapi": old_market_data}


def old_app(sim_port: int, *, shutdown: bool = True, old_client: str = "ib_async") -> Any:
    """The older design's server: ``/ib/market-data/{symbol}``, one IB connection per request.

    ``app.state.failures`` counts the failures by kind, ``app.state.phases`` collects the
    phases of the requests that succeeded.
    """
    from fastapi import FastAPI, Query
    from fastapi.responses import JSONResponse

    app = FastAPI()
    failures: collections.Counter[str] = collections.Counter()
    phases: list[tuple[float, ...]] = []
    app.state.failures = failures
    app.state.phases = phases

    @app.get("/ib/market-data/{symbol}")
    def market_data(  # a plain def: Starlette runs it in its thread pool
        symbol: str,
        duration: str = "1 D",
        bar_size: str = Query("1 hour", alias="barSize"),
        what_to_show: str = Query("TRADES", alias="whatToShow"),
        use_rth: bool = Query(False, alias="useRTH"),
    ) -> JSONResponse:
        try:
            body = OLD_CLIENTS[old_client](
                sim_port,
                symbol,
                duration,
                bar_size,
                what_to_show,
                use_rth,
                phases,
                shutdown=shutdown,
            )
        except OldFailureError as exc:
            failures[exc.kind] += 1
            now = dt.datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            error = {"error": str(exc), "code": exc.code, "timestamp": now}
            return JSONResponse(error, exc.status)
        return JSONResponse(body)

    return app


# --------------------------------------------------------------------------------------
# the servers, each under uvicorn in a thread


class Served:
    """An app under uvicorn on 127.0.0.1, a free port, in a thread."""

    def __init__(self, name: str, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            log_config=None,
            access_log=False,  # as ibdata serve runs it: the app writes its own access log
            ws="none",
            lifespan="on",
        )
        self.name = name
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, name=f"rest-speed-{name}", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"{name}: uvicorn did not start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: uvicorn start-up timed out")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Shut uvicorn down gracefully and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(30)
        if self.thread.is_alive():
            raise RuntimeError(f"{self.name}: uvicorn did not stop")


# --------------------------------------------------------------------------------------
# the load: a separate process, 50 httpx.AsyncClient tasks in one event loop


async def _load_round(url: str, seconds: float, clients: int) -> dict[str, Any]:
    """Open ``clients`` keep-alive connections (one untimed request each for a path the
    server answers 404 without asking IB), then let each send requests for ``url`` one
    after the other for ``seconds``; the answers and their latencies."""
    import httpx

    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    failures: collections.Counter[str] = collections.Counter()
    async with contextlib.AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(
                # plain HTTP: verify=False spares loading the CA bundle (1 s for 50 clients)
                httpx.AsyncClient(
                    timeout=HTTP_TIMEOUT, limits=httpx.Limits(max_connections=1), verify=False
                )
            )
            for _ in range(clients)
        ]
        warm = url.split("/ib/", 1)[0] + WARM_PATH
        await asyncio.gather(*(h.get(warm) for h in https), return_exceptions=True)
        print(json.dumps({"event": "start"}), flush=True)
        cpu = time.process_time()
        started = time.perf_counter()
        deadline = started + seconds

        async def hammer(http: httpx.AsyncClient) -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await http.get(url)
                except httpx.HTTPError as exc:
                    failures[type(exc).__name__] += 1
                    continue
                took = time.perf_counter() - sent
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    latencies.append(took)

        await asyncio.gather(*(hammer(h) for h in https))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return {
        "event": "done",
        "elapsed": elapsed,
        "cpu": cpu,
        "latencies": latencies,
        "statuses": {str(k): v for k, v in statuses.items()},
        "failures": dict(failures),
    }


def _load_worker() -> int:
    """The load process: one JSON command per line on stdin, JSON events on stdout."""
    for line in sys.stdin:
        command = json.loads(line)
        result = asyncio.run(_load_round(command["url"], command["seconds"], command["clients"]))
        print(json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------------------
# where this process's CPU goes: per-thread CPU time from /proc (Linux)

#: Thread roles, by the start of the thread's name; the first match wins.
ROLES: tuple[tuple[str, str], ...] = (
    ("rest-speed-", "uvicorn's event loop: HTTP (h11), routing, parameters, sending"),
    ("AnyIO worker thread", "thread pool: the handler (its IB request, the JSON body)"),
    ("ibdata-reader", "ibdata's connection: reader and dispatcher threads"),
    ("ibdata-dispatch", "ibdata's connection: reader and dispatcher threads"),
    ("ibdata-sim", "simulator: accept thread, threads of the connections still open"),
    ("ibapi-old", "threads that ended: a connection's ibapi reader and loop, simulator's"),
)
OTHER = "other threads"
ENDED = "threads that ended: a connection's ibapi reader and loop, simulator's"


def thread_cpu() -> dict[int, tuple[str, float]] | None:
    """CPU seconds of each thread of this process by native id, with the Python thread's
    name; None where ``/proc/self/task`` does not exist (not Linux).

    Read from ``schedstat`` (nanoseconds on the CPU), else from ``stat`` (user + system,
    in clock ticks, usually 10 ms).
    """
    task = Path("/proc/self/task")
    if not task.is_dir():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[int, tuple[str, float]] = {}
    for entry in task.iterdir():
        tid = int(entry.name)
        try:
            seconds = int((entry / "schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # the thread ended
                continue
            fields = stat.rsplit(")", 1)[1].split()  # fields[0] is the 3rd field, the state
            seconds = (int(fields[11]) + int(fields[12])) / tick
        out[tid] = (names.get(tid, "?"), seconds)
    return out


def _role(name: str) -> str:
    return next((role for prefix, role in ROLES if name.startswith(prefix)), OTHER)


def cpu_by_role(
    before: dict[int, tuple[str, float]] | None,
    after: dict[int, tuple[str, float]] | None,
    total: float,
) -> dict[str, float]:
    """CPU seconds between two :func:`thread_cpu` snapshots by thread role; what threads
    that ended in between spent is ``total`` minus the rest (``ENDED``)."""
    if before is None or after is None:
        return {}
    out: collections.Counter[str] = collections.Counter()
    for tid, (name, seconds) in after.items():
        old = before.get(tid)
        out[_role(name)] += seconds - (old[1] if old is not None and old[0] == name else 0.0)
    out[ENDED] += max(0.0, total - sum(out.values()))
    return dict(out)


# --------------------------------------------------------------------------------------
# driving the load process


class LoadProcess:
    """The load generator's process, driven round by round."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), _LOAD_WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _event(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the load process ended (status {self.proc.wait()})")
        event: dict[str, Any] = json.loads(line)
        return event

    def round(self, url: str, seconds: float, clients: int) -> dict[str, Any]:
        """One round against ``url``; adds ``server_cpu``: this process's CPU seconds
        (servers and simulator) while the load was timed, and ``threads``: those seconds
        by the role of the thread that spent them (see :func:`cpu_by_role`)."""
        assert self.proc.stdin is not None
        command = {"url": url, "seconds": seconds, "clients": clients}
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        if self._event()["event"] != "start":
            raise RuntimeError("the load process did not start the round")
        cpu = time.process_time()
        threads = thread_cpu()
        result = self._event()
        result["server_cpu"] = time.process_time() - cpu
        result["threads"] = cpu_by_role(threads, thread_cpu(), result["server_cpu"])
        return result

    def close(self) -> None:
        """End the load process and wait for it."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        finally:
            self.proc.stdout.close()
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------------------
# measuring


class Design:
    """One server's rounds."""

    def __init__(self, name: str, served: Served) -> None:
        self.name = name
        self.served = served
        self.rounds: list[dict[str, Any]] = []

    @property
    def ok(self) -> int:
        return sum(len(r["latencies"]) for r in self.rounds)

    @property
    def seconds(self) -> float:
        return sum(r["elapsed"] for r in self.rounds)

    @property
    def rate(self) -> float:
        """Requests answered 200 per second, over all rounds."""
        return self.ok / self.seconds

    @property
    def latencies(self) -> list[float]:
        return sorted(x for r in self.rounds for x in r["latencies"])

    @property
    def errors(self) -> collections.Counter[str]:
        """Answers other than 200 by status, and failed requests by exception."""
        out: collections.Counter[str] = collections.Counter()
        for r in self.rounds:
            for status, n in r["statuses"].items():
                if status != "200":
                    out[f"HTTP {status}"] += n
            for name, n in r["failures"].items():
                out[name] += n
        return out

    def cpu_seconds(self, key: str) -> float:
        """CPU seconds of this process (``server_cpu``) or the load process (``cpu``)."""
        return float(sum(r[key] for r in self.rounds))

    def cpu(self, key: str) -> float:
        """CPU seconds per wall second, over all rounds (1.0 = one core busy)."""
        return self.cpu_seconds(key) / self.seconds

    def cpu_by_role(self) -> dict[str, float]:
        """This process's CPU seconds by thread role, over all rounds."""
        out: collections.Counter[str] = collections.Counter()
        for r in self.rounds:
            out.update(r["threads"])
        return dict(out)


def _quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of sorted ``values`` (nearest rank)."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


@contextmanager
def _quiet_ibapi() -> Iterator[None]:
    """ibapi and ib_async log every connection at INFO or WARNING; keep their errors only."""
    loggers = [logging.getLogger(name) for name in ("ibapi", "ib_async")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)  # ib_async logs every disconnect as an error
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _settle(sim: Any, sessions: int) -> None:
    """Wait (up to 5 s) until the older design's connections are gone from the simulator
    and its ibapi threads have ended, so that a round does not pay for the last one."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        busy = any(t.name.startswith("ibapi-old") for t in threading.enumerate())
        if len(sim.client_ids) <= sessions and not busy:
            return
        time.sleep(0.02)


def measure(
    seconds: float, *, shutdown: bool = True, old_client: str = "ib_async"
) -> dict[str, Any]:
    """Both servers on one simulator, the load in turns; the designs and the facts.

    ``shutdown``: the older design shuts its socket down before ibapi's disconnect (see
    :func:`old_market_data`).
    """
    import httpx

    from ibdata import Client
    from ibdata.http import create_app
    from ibdata.sim import FixedClock, Simulator

    facts: dict[str, Any] = {
        "seconds": seconds,
        "shutdown": shutdown,
        "old_client": old_client,
        "old_client_id": OLD_CLIENT_ID["mode"],
    }
    sim = Simulator(pacing=None, clock=FixedClock(CLOCK_AT)).start()
    client: Client | None = None
    servers: list[Served] = []
    load: LoadProcess | None = None
    try:
        client = Client(sim.host, sim.port, pacing=None, timeout=30).connect()
        ours = Served(IBDATA, create_app(client, token=""))
        servers.append(ours)
        old = old_app(sim.port, shutdown=shutdown, old_client=old_client)
        theirs = Served(OLD, old)
        servers.append(theirs)
        designs = [Design(IBDATA, ours), Design(OLD, theirs)]
        load = LoadProcess()

        # warm both: one request each for the one URL; the same bars from both
        bodies = {}
        with httpx.Client(timeout=HTTP_TIMEOUT) as http:
            for d in designs:
                r = http.get(d.served.url + PATH)
                if r.status_code != 200:
                    raise RuntimeError(f"{d.name}: warm-up answered {r.status_code}: {r.text}")
                bodies[d.name] = r.json()
        if bodies[IBDATA]["data"] != bodies[OLD]["data"] or not bodies[IBDATA]["data"]:
            raise RuntimeError("the two designs disagree on the bars")
        facts["bars"] = bodies[IBDATA]["count"]
        facts["bytes"] = {name: len(json.dumps(b)) for name, b in bodies.items()}
        old.state.phases.clear()
        ours_conn = {m.connection for m in sim.received.find(client_id=client.client_id)}
        before = len(
            sim.received.find("reqHistoricalData", where=lambda m: m.connection in ours_conn)
        )

        for i in range(ROUNDS):
            order = designs if i % 2 == 0 else designs[::-1]
            for d in order:
                _settle(sim, 1)
                d.rounds.append(load.round(d.served.url + PATH, seconds / ROUNDS, CLIENTS))
        facts["old_failures"] = collections.Counter(old.state.failures)
        facts["old_phases"] = list(old.state.phases)
        complete = sim.received.total == len(sim.received)  # the log dropped nothing
        facts["ibdata_requests"] = (
            len(sim.received.find("reqHistoricalData", where=lambda m: m.connection in ours_conn))
            - before
            if complete
            else None
        )
    finally:
        if load is not None:
            load.close()
        for s in reversed(servers):
            s.stop()
        if client is not None:
            client.close()
        sim.stop()
    leftover = leftover_threads()
    if leftover:
        raise RuntimeError(f"threads still running after the servers stopped: {leftover}")
    return {"designs": designs, "facts": facts}


# --------------------------------------------------------------------------------------
# the report


def _versions() -> str:
    from importlib.metadata import version

    import ibdata

    names = ("fastapi", "starlette", "uvicorn", "h11", "httpx", "ibapi")
    return ", ".join([f"ibdata {ibdata.__version__}", *(f"{n} {version(n)}" for n in names)])


def render(result: dict[str, Any], host: dict[str, str]) -> str:
    """The results as markdown: the set-up, the machine, the table, the target."""
    designs: list[Design] = result["designs"]
    facts = result["facts"]
    by = {d.name: d for d in designs}
    ours, theirs = by[IBDATA], by[OLD]
    lines = [
        "### rest_speed",
        "",
        f"One simulator (`pacing=None`, clock {CLOCK_AT:%Y-%m-%d %H:%M} UTC, 32-client limit); "
        f"both servers under uvicorn in threads of one process ({_versions()}); the load in a "
        f"second process: {CLIENTS} concurrent clients (`httpx.AsyncClient` tasks, keep-alive) "
        f"sending `GET {PATH}` ({facts['bars']} bars, {facts['bytes'][IBDATA]:,} bytes of JSON "
        f"from ibdata, {facts['bytes'][OLD]:,} from the older design). {ROUNDS} rounds per "
        f"design of {facts['seconds'] / ROUNDS:.2f} s, the order alternating, after one "
        "untimed request per server, and one per HTTP connection for a path answered 404 "
        "without IB. The older design connects for every request, with "
        + (
            f"the fixed client id {FIXED_CLIENT_ID} (as the issue describes the older server: "
            "requests at the same time collide with 326), "
            if facts["old_client_id"] == "fixed"
            else "a random client id (1-9999: its best case), "
        )
        + "with "
        + (
            "`ib_async` (the maintained `ib_insync`, which the older server used: its "
            "connect also synchronises positions, orders, account and executions)."
            if facts["old_client"] == "ib_async"
            else "raw `ibapi` (`--old-client ibapi`), "
            + (
                "shutting its socket down before ibapi's `disconnect`."
                if facts["shutdown"]
                else "disconnecting with ibapi's `disconnect` alone (`--plain-disconnect`): "
                "each connection stays open until ibapi's reader times out (up to 1 s)."
            )
        ),
        "",
        *(f"- {key}: {value}" for key, value in host.items()),
        "",
        "| server | answered 200 | errors | 200s per second | slowest, fastest round | p50 ms "
        "| p99 ms | max ms | CPU, servers + simulator | CPU, load process | vs older design |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in designs:
        rates = sorted(len(r["latencies"]) / r["elapsed"] for r in d.rounds)
        lat = d.latencies
        lines.append(
            f"| {d.name} | {d.ok:,} | {sum(d.errors.values()):,} | {d.rate:,.1f} | "
            f"{rates[0]:,.1f}, {rates[-1]:,.1f} | {_quantile(lat, 0.5) * 1e3:.1f} | "
            f"{_quantile(lat, 0.99) * 1e3:.1f} | {(lat[-1] if lat else float('nan')) * 1e3:.1f} | "
            f"{d.cpu('server_cpu'):.0%} | {d.cpu('cpu'):.0%} | "
            f"{d.rate / theirs.rate if theirs.rate else float('inf'):.2f}x |"
        )
    lines += [
        "",
        "*CPU*: CPU seconds per second of wall time while the load was timed (100% = one "
        "core); the servers, the simulator and the load share 2 cores.",
        "",
    ]
    errors = [(d.name, kind, n) for d in designs for kind, n in sorted(d.errors.items())]
    failures: collections.Counter[str] = facts["old_failures"]
    if errors or failures:
        lines += ["Errors:", "", "| server | error | count |", "|---|---|---:|"]
        lines += [f"| {name} | {kind} | {n:,} |" for name, kind, n in errors]
        lines += [
            f"| {OLD} (its handler's reasons) | {kind} | {n:,} |"
            for kind, n in sorted(failures.items())
        ]
        lines.append("")
    phases: list[tuple[float, ...]] = facts["old_phases"]
    if phases:
        names = (
            "connect: TCP and version handshake (`EClient.connect`)",
            "session: startApi → nextValidId",
            "bars: reqHistoricalData → historicalDataEnd",
            "JSON body",
            "disconnect",
        )
        medians = [statistics.median(p[i] for p in phases) for i in range(len(names))]
        total = statistics.median(sum(p) for p in phases)
        lines += [
            f"Where the older design's handler spends its time ({len(phases):,} successful "
            "requests, median of each phase, in the handler's thread):",
            "",
            "| phase | median ms |",
            "|---|---:|",
            *(f"| {n} | {m * 1e3:.2f} |" for n, m in zip(names, medians, strict=True)),
            f"| whole handler | {total * 1e3:.2f} |",
            "",
        ]
    roles = list(dict.fromkeys([*(role for _, role in ROLES), OTHER]))
    spent = {d.name: d.cpu_by_role() for d in designs}
    if all(spent.values()):
        lines += [
            "Where the CPU goes: CPU ms per request answered 200, by the role of the thread "
            "that spent it (per-thread CPU time from `/proc/self/task`, summed over the "
            "rounds):",
            "",
            "| thread | " + " | ".join(d.name for d in designs) + " |",
            "|---|" + "---:|" * len(designs),
        ]
        for role in roles:
            if any(spent[d.name].get(role, 0.0) for d in designs):
                cells = [
                    f"{spent[d.name].get(role, 0.0) / max(d.ok, 1) * 1e3:.2f}" for d in designs
                ]
                lines.append(f"| {role} | " + " | ".join(cells) + " |")
        cells = [f"{d.cpu_seconds('server_cpu') / max(d.ok, 1) * 1e3:.2f}" for d in designs]
        lines.append("| **this process (servers and simulator)** | " + " | ".join(cells) + " |")
        cells = [f"{d.cpu_seconds('cpu') / max(d.ok, 1) * 1e3:.2f}" for d in designs]
        lines += ["| load process | " + " | ".join(cells) + " |", ""]
    ratio = ours.rate / theirs.rate if theirs.rate else float("inf")
    met = ratio >= TARGET
    timed = ours.ok + sum(ours.errors.values())
    sent = (
        f"ibdata sent {facts['ibdata_requests']:,} reqHistoricalData for {timed:,} timed requests"
        if facts["ibdata_requests"] is not None
        else "ibdata's requests to the simulator not counted: its log overflowed"
    )
    lines += [
        "Target (this run):",
        "",
        f"- ibdata at least {TARGET:.0f}x the older design's throughput: "
        f"{ours.rate:,.1f} vs {theirs.rate:,.1f} answers 200 per second = {ratio:.2f}x "
        f"(p50 {_quantile(ours.latencies, 0.5) * 1e3:.1f} ms vs "
        f"{_quantile(theirs.latencies, 0.5) * 1e3:.1f} ms; errors {sum(ours.errors.values()):,} "
        f"vs {sum(theirs.errors.values()):,}; {sent}): **{'met' if met else 'missed'}**.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the markdown (and write it to ``--output``)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == [_LOAD_WORKER]:
        return _load_worker()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_SECONDS} s per design (tests)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"seconds of load per design, split into {ROUNDS} rounds (default {FULL_SECONDS})",
    )
    parser.add_argument(
        "--plain-disconnect",
        action="store_true",
        help="the older design disconnects with ibapi's disconnect alone (its socket then "
        "lingers up to 1 s) instead of shutting the socket down first",
    )
    parser.add_argument(
        "--old-client",
        choices=sorted(OLD_CLIENTS),
        default="ib_async",
        help="what the older design connects with for every request: ib_async (the "
        "maintained ib_insync, as the older server; default) or raw ibapi",
    )
    parser.add_argument(
        "--old-client-id",
        choices=["fixed", "random"],
        default="fixed",
        help="the older design's client id: fixed (1, as the issue describes the older "
        "server: concurrent requests collide with 326; default) or random (its best case)",
    )
    parser.add_argument("--output", help="also write the markdown to this file")
    args = parser.parse_args(args_list)
    OLD_CLIENT_ID["mode"] = args.old_client_id
    seconds = (
        args.seconds
        if args.seconds is not None
        else (QUICK_SECONDS if args.quick else FULL_SECONDS)
    )
    if seconds <= 0:
        parser.error("--seconds must be positive")
    host = machine()
    with _quiet_ibapi():
        result = measure(seconds, shutdown=not args.plain_disconnect, old_client=args.old_client)
    text = render(result, host)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
