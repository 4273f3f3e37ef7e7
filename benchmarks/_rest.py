"""The REST comparison: ibdata's REST adapter (one shared session) against the older
server's design (a new IB connection for every HTTP request), on the run's simulator.

The HTTP servers run side by side in this process, each under uvicorn in a thread (h11, the
asyncio loop: what is installed; uvicorn's access log off, as ``ibdata serve`` runs it),
over the run's simulator (``pacing=None``: the comparison is of the adapters, not of IB's
pacing; TWS's limit of 32 clients).

* **ibdata**: :func:`ibdata.http.create_app` over one connected :class:`ibdata.Client`
  (``pacing=None``), authentication off (``token=""``).
* **older design**: a minimal FastAPI app written here for the comparison, with the same
  endpoint and the same JSON, whose handler (a plain ``def``: Starlette runs it in its
  thread pool of 40, as the older Flask server ran its handlers in threads) connects with
  ``ib_async`` (the maintained ``ib_insync``, which the older server used: its ``connect``
  also synchronises positions, orders, account and executions) for every request, fetches
  the bars, builds the JSON and disconnects. With the fixed client id 1, as the issue
  describes the older server (requests at the same time collide with 326, which surfaces
  after ``ib_async``'s connect timeout of 4 s), or a random one (1-9999: its best case).

The load runs in a **separate process** (this file, run with ``--load-worker``), so that it
does not compete with the servers for this process's GIL: 50 concurrent HTTP clients (50
tasks, each with its own ``httpx.AsyncClient`` and keep-alive connection) in one event
loop, each sending ``GET /ib/market-data/AAPL?duration=1 D&barSize=1 hour`` as soon as it
has the previous answer. Each round opens its 50 HTTP connections with one untimed request
for a path the server answers 404 without asking IB, then times requests for its seconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import rotations

UTC = dt.timezone.utc
SYMBOL = "AAPL"
PATH = f"/ib/market-data/{SYMBOL}?duration=1%20D&barSize=1%20hour"
#: Concurrent HTTP clients of the load.
CLIENTS = 50
#: Seconds the older design's handler waits for the bars.
OLD_TIMEOUT = 10.0
#: ``ib_async``'s own default connect timeout: a 326 (client id in use) surfaces only then.
OLD_CONNECT_TIMEOUT = 4.0
#: The older design's fixed client id: the older README's ``IB_CLIENT_ID=1``.
FIXED_CLIENT_ID = 1
#: ibdata's REST client's id at the simulator.
IBDATA_CLIENT_ID = 21
#: Seconds an HTTP request of the load may take.
HTTP_TIMEOUT = 30.0

IBDATA = "ibdata REST adapter"
OLD_FIXED = "connection per request, client id 1"
OLD_RANDOM = "connection per request, random client id"
_LOAD_WORKER = "--load-worker"
#: A path neither server serves: opens an HTTP connection without asking IB.
WARM_PATH = "/rest-bench-warm-up"


# --------------------------------------------------------------------------------------
# the older design, re-created: a new ib_async connection for every request


class OldFailureError(Exception):
    """The older design could not answer: the HTTP status and the kind of failure."""

    def __init__(self, status: int, kind: str) -> None:
        super().__init__(kind)
        self.status = status
        self.kind = kind


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def old_market_data(
    port: int,
    client_id: Callable[[], int],
    symbol: str,
    duration: str,
    bar_size: str,
    what_to_show: str,
    use_rth: bool,
    phases: list[tuple[float, ...]],
) -> dict[str, Any]:
    """One request as the older server made it: connect (``client_id()``), fetch the bars,
    build the JSON, disconnect; each worker thread with an event loop of its own. Appends
    the seconds of connect, bars, JSON and disconnect to ``phases`` when it succeeds."""
    from ib_async import IB, Stock

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ib = IB()
    ib.RaiseRequestErrors = True
    t0 = time.perf_counter()
    try:
        try:
            ib.connect("127.0.0.1", port, clientId=client_id(), timeout=OLD_CONNECT_TIMEOUT)
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise OldFailureError(
                503, f"connect: {type(exc).__name__} (326 or TWS's 32-client limit)"
            ) from exc
        t_ready = time.perf_counter()
        bars = ib.reqHistoricalData(
            Stock(symbol, "SMART", "USD"),
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
    phases.append((t_ready - t0, t_bars - t_ready, t_json - t_bars, t_end - t_json))
    return body


def old_app(sim_port: int, *, fixed_id: bool) -> Any:
    """The older design's server: ``/ib/market-data/{symbol}``, one IB connection per
    request, with client id 1 (``fixed_id``) or a random one.

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

    def client_id() -> int:
        return FIXED_CLIENT_ID if fixed_id else random.randint(1, 9999)

    @app.get("/ib/market-data/{symbol}")
    def market_data(  # a plain def: Starlette runs it in its thread pool
        symbol: str,
        duration: str = "1 D",
        bar_size: str = Query("1 hour", alias="barSize"),
        what_to_show: str = Query("TRADES", alias="whatToShow"),
        use_rth: bool = Query(False, alias="useRTH"),
    ) -> JSONResponse:
        try:
            body = old_market_data(
                sim_port, client_id, symbol, duration, bar_size, what_to_show, use_rth, phases
            )
        except OldFailureError as exc:
            failures[exc.kind] += 1
            now = dt.datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            return JSONResponse({"error": str(exc), "timestamp": now}, exc.status)
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
        self.thread = threading.Thread(target=self.server.run, name=f"bench-{name}", daemon=True)
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
# the load: a separate process, httpx.AsyncClient tasks in one event loop


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
        (servers and simulator) while the load was timed."""
        assert self.proc.stdin is not None
        command = {"url": url, "seconds": seconds, "clients": clients}
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        if self._event()["event"] != "start":
            raise RuntimeError("the load process did not start the round")
        cpu = time.process_time()
        result = self._event()
        result["server_cpu"] = time.process_time() - cpu
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

    def __init__(self, name: str, served: Served, app: Any) -> None:
        self.name = name
        self.served = served
        self.app = app
        self.rounds: list[dict[str, Any]] = []

    @property
    def ok(self) -> int:
        """Requests answered 200, over all rounds."""
        return sum(len(r["latencies"]) for r in self.rounds)

    @property
    def seconds(self) -> float:
        return float(sum(r["elapsed"] for r in self.rounds))

    @property
    def rate(self) -> float:
        """Requests answered 200 per second, over all rounds."""
        return self.ok / self.seconds

    @property
    def latencies(self) -> list[float]:
        return [x for r in self.rounds for x in r["latencies"]]

    @property
    def errors(self) -> int:
        """Answers other than 200 and failed requests."""
        return sum(
            sum(n for status, n in r["statuses"].items() if status != "200")
            + sum(r["failures"].values())
            for r in self.rounds
        )

    def cpu_per_request(self) -> float:
        """CPU seconds of the servers' process (servers and simulator) per answer 200."""
        return float(sum(r["server_cpu"] for r in self.rounds)) / max(self.ok, 1)

    def old_phases(self) -> list[float]:
        """The older design's median seconds of connect, bars, JSON and disconnect in its
        handler (empty for ibdata)."""
        phases: list[tuple[float, ...]] = getattr(self.app.state, "phases", [])
        if not phases:
            return []
        return [statistics.median(p[i] for p in phases) for i in range(len(phases[0]))]


def _settle(sim: Any, sessions: int) -> None:
    """Wait (up to 5 s) until the older design's connections are gone from the simulator,
    so that a round does not pay for the last one."""
    deadline = time.monotonic() + 5
    while len(sim.client_ids) > sessions and time.monotonic() < deadline:
        time.sleep(0.02)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {n: version(n) for n in ("fastapi", "starlette", "uvicorn", "h11", "httpx")}


def _same_bars(raw: list[dict[str, Any]], ours: list[dict[str, Any]]) -> bool:
    """The same bars: equal but for volume, which ibdata reports in shares rounded to the
    lot of 100 where TWS sends whole lots (US stocks below server version 163, ibdata's
    server version with PyPI's ``ibapi``), and the older design (``ib_async``, at 178) in
    shares as TWS sends them there."""
    if len(raw) != len(ours):
        return False
    for a, b in zip(raw, ours, strict=True):
        if {k: v for k, v in a.items() if k != "volume"} != {
            k: v for k, v in b.items() if k != "volume"
        }:
            return False
        near = abs(a["volume"] - b["volume"]) <= 50  # rounded to the lot of 100
        if not near and a["volume"] * 100 != b["volume"]:
            return False
    return True


def measure(sim: Any, seconds: float, rounds: int) -> tuple[list[Design], dict[str, Any]]:
    """The three servers on ``sim``, the load in turns: ``rounds`` rounds of ``seconds`` per
    server, the order rotating; the designs and the facts."""
    import httpx

    from ibdata import Client
    from ibdata.http import create_app

    client: Client | None = None
    designs: list[Design] = []
    load: LoadProcess | None = None
    try:
        client = Client(
            sim.host,
            sim.port,
            client_id=IBDATA_CLIENT_ID,
            pacing=None,
            timeout=30,
            max_message_rate=None,  # the simulator has no message limit; see _clients.py
        ).connect()
        apps = [
            (IBDATA, create_app(client, token="")),
            (OLD_FIXED, old_app(sim.port, fixed_id=True)),
            (OLD_RANDOM, old_app(sim.port, fixed_id=False)),
        ]
        for name, app in apps:
            designs.append(Design(name, Served(name, app), app))
        load = LoadProcess()

        # warm every server: one request each for the one URL; the same bars from all
        bodies = {}
        with httpx.Client(timeout=HTTP_TIMEOUT) as http:
            for d in designs:
                r = http.get(d.served.url + PATH)
                if r.status_code != 200:
                    raise RuntimeError(f"{d.name}: warm-up answered {r.status_code}: {r.text}")
                bodies[d.name] = r.json()
        data = bodies[IBDATA]["data"]
        if not data or any(not _same_bars(b["data"], data) for b in bodies.values()):
            raise RuntimeError("the servers disagree on the bars")
        for d in designs[1:]:
            d.app.state.phases.clear()
        before = len(sim.received.find("reqHistoricalData", client_id=IBDATA_CLIENT_ID))
        for order in rotations(designs, rounds):
            for d in order:
                _settle(sim, 1)
                d.rounds.append(load.round(d.served.url + PATH, seconds, CLIENTS))
        sent = len(sim.received.find("reqHistoricalData", client_id=IBDATA_CLIENT_ID)) - before
        complete = sim.received.total == len(sim.received)  # the log dropped nothing
        facts = {
            "bars": bodies[IBDATA]["count"],
            "ibdata_requests": sent if complete else None,
            "versions": _versions(),
        }
    finally:
        if load is not None:
            load.close()
        for d in reversed(designs):
            d.served.stop()
        if client is not None:
            client.close()
    return designs, facts


def failures(designs: Sequence[Design]) -> dict[str, collections.Counter[str]]:
    """The older designs' handlers' reasons for failing, by design."""
    return {d.name: d.app.state.failures for d in designs if d.name != IBDATA}


if __name__ == "__main__":
    if sys.argv[1:] == [_LOAD_WORKER]:
        sys.exit(_load_worker())
    sys.exit("benchmarks/_rest.py only runs as the REST load process: run benchmarks/run.py")
