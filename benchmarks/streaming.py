"""What live bars cost and how they survive faults: the latency from a bar's close to
``BarStream`` yielding it, the client's CPU time per historicalDataUpdate, and one fault
script played to ibdata's stream and to ``ib_async``'s keepUpToDate subscription.

Every simulator runs in a process of its own (this script, started again with
``--simulator``; it answers a few commands on its standard input: ``port?``,
``fault NAME [SECONDS]``, ``stats``, ``stop``), on a :class:`~ibdata.sim.ScaledClock` from
Tuesday 2026-11-24 15:00 UTC (10:00 in New York), so the client's process holds the client
alone. The simulator process reports a pair (its clock's time, ``time.time()``) taken
together and the clock's speed: the parent maps any simulator time to the wall clock
(``wall = wall0 + (sim - sim0) / speed``).

1. **Latency.** One stream (``Client.stream_bars`` without ``start``, so every bar it
   yields is live) of AAPL ``1 min`` bars on a clock 60 times faster (a bar every wall
   second), one of ``5 secs`` bars at speed 12 (a bar every 0.42 s), and 50 streams of
   ``1 min`` bars on one client (AAPL's bars under 50 names). A thread per stream iterates
   it; a bar's latency is ``time.time()`` when the iterator returns it minus the wall time
   of the bar's end (``bar.time`` plus the bar size, mapped). The 50 streams run a second
   time delivering through ``on_bar``, timed in the callable. The simulator sends a bar's
   complete values at its end and the first update of the next bar right after it; the
   stream yields the bar when that update arrives. So the figure covers the simulator's
   work at the boundary, loopback, ibapi's reader, ibdata's dispatch and the stream's
   worker and queue. The reference for each case, on its own simulator: a framing-only
   client (``sim_throughput.RawTws``) holding as many subscriptions, timing the arrival of
   the next bar's first update: the simulator's and the socket's share.
2. **CPU per update.** ``time.process_time()`` of the client's process over the measured
   window, divided by the historicalDataUpdate messages the simulator sent meanwhile
   (``SimStats.live_updates_sent``): the same runs as part 1, the reference's included.
3. **Faults.** The same script, on a fresh simulator process for each library (same start,
   same speed 60): from the first bar boundary after subscribing, at fixed simulated times,
   1100 then 1102 (2 minutes), the HMDS farm broken then OK (2 minutes), a stall of the
   subscriptions (new ones work again half a bar later), the nightly reset with 10182
   (2 minutes), the nightly reset without it, and last a dropped connection; 25 simulated
   minutes in all. ibdata: ``stream_bars(..., stall_after=one bar)`` on a client that
   reconnects after 0.05-0.2 s. ``ib_async`` 2.1.0 as its documentation shows, with no
   recovery code: ``reqHistoricalData(..., keepUpToDate=True)``, a bar counted as final
   when ``updateEvent`` says ``hasNewBar`` (the closed bar is ``bars[-2]``), its loop run by
   ``ib.sleep`` in the main thread. Afterwards an ibdata client downloads the period's
   history, and each library's final bars are counted against it: lost, duplicated, wrong.

Nothing here asserts a time: the figures are medians, percentiles and ratios measured in
one run on a shared, noisy machine. ``ib_async`` negotiates server version 178, where TWS
sends a US stock's volume in shares; ibdata (``ibapi`` 9.81.1) server version 157, where it
sends whole lots of 100: ``ib_async``'s volumes are compared with history in lots.

Run ``python benchmarks/streaming.py [--quick] [--output FILE]`` (``--write-table`` is the
same; default ``docs/_static/benchmarks-streaming.md``). The full run takes about four
minutes; ``--quick`` (a few bars of each, the fault script on a clock 240 times faster)
about half a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import attrs

import ibdata
from ibdata import Bar, Client, StreamEvent

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ holds _common.py
from _common import UTC, event_loop, leftover_threads, machine, quantile, quiet

HERE = Path(__file__).resolve().parent
#: Where ``ibdata`` was imported from: the simulator processes import the same code.
SRC = Path(ibdata.__file__).resolve().parent.parent
DEFAULT_OUTPUT = HERE.parent / "docs" / "_static" / "benchmarks-streaming.md"

#: Every simulator's clock starts here: a Tuesday, 10:00 in New York; AAPL trades.
OPEN = dt.datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
#: Wall seconds between the simulator's periodic updates of a forming bar.
UPDATE_INTERVAL = 0.05
SYMBOL = "AAPL"
MINUTE = 60.0
#: Wall seconds anything may take before the benchmark gives up.
GUARD = 60.0


@dataclass(frozen=True)
class LatencyCase:
    """One case of parts 1 and 2, measured with ibdata (iterated, and through ``on_bar``
    if ``on_bar_window``) and with a framing-only reader."""

    bar_size: str
    seconds: int  # the bar size in seconds
    speed: float
    streams: int
    window: float  # wall seconds measured with ibdata, iterating the streams
    raw_window: float  # wall seconds measured with the framing-only reader
    on_bar_window: float = 0.0  # wall seconds measured with ibdata's on_bar (0: none)


@dataclass(frozen=True)
class Settings:
    """The sizes of one run (full or ``--quick``)."""

    cases: tuple[LatencyCase, ...]
    fault_speed: float
    warm_up: float  # wall seconds after subscribing before the window opens


FULL = Settings(
    cases=(
        LatencyCase("1 min", 60, 60.0, 1, 55.0, 12.0),
        LatencyCase("5 secs", 5, 12.0, 1, 35.0, 8.0),
        LatencyCase("1 min", 60, 60.0, 50, 15.0, 12.0, 12.0),
    ),
    fault_speed=60.0,
    warm_up=2.0,
)
QUICK = Settings(
    cases=(
        LatencyCase("1 min", 60, 60.0, 1, 1.5, 0.8),
        LatencyCase("5 secs", 5, 12.0, 1, 1.2, 0.8),
        LatencyCase("1 min", 60, 60.0, 50, 1.2, 0.8, 1.0),
    ),
    fault_speed=240.0,
    warm_up=0.8,
)
#: The readers of parts 1 and 2.
IBDATA = "ibdata"
ON_BAR = "ibdata, on_bar"
RAW = "framing only"
READERS = {
    IBDATA: "ibdata, iterated (a thread per stream)",
    ON_BAR: "ibdata, `on_bar`",
    RAW: "framing only (reference)",
}


# --------------------------------------------------------------------------- the simulator
def serve(config: dict[str, Any], commands: TextIO, replies: TextIO) -> int:
    """The simulator process: start a simulator as ``config`` says, then answer one JSON
    line on ``replies`` for every command line read from ``commands``, until ``stop``."""
    from ibdata.sim import Catalog, ScaledClock, Simulator

    start = dt.datetime.fromisoformat(config["start"])
    catalog = Catalog.default(start.date())
    (aapl,) = [c for c in catalog.contracts if c.symbol == SYMBOL]
    for i in range(config["copies"]):  # AAPL's bars under other names: S00, S01, ...
        name = f"S{i:02d}"
        catalog.add(attrs.evolve(aapl, con_id=9_000_000 + i, symbol=name, local_symbol=name))
    clock = ScaledClock(start, config["speed"])
    sim = Simulator(
        clock=clock,
        update_interval=config["update_interval"],
        pacing=None,
        catalog=catalog,
    ).start()

    def now() -> float:
        return clock.now().timestamp()

    def pair() -> dict[str, float]:
        """The clock's time and the wall clock's, taken together (the closest of five)."""
        samples = []
        for _ in range(5):
            before = time.time()
            at = now()
            after = time.time()
            samples.append((after - before, at, (before + after) / 2))
        _, at, wall = min(samples)
        return {"sim": at, "wall": wall}

    faults: dict[str, Callable[[float], None]] = {
        "lost": lambda _: sim.connectivity_lost(),
        "restored": lambda _: sim.connectivity_restored(data_lost=False),
        "farm_broken": lambda _: sim.hmds_farm_broken(),
        "farm_ok": lambda _: sim.hmds_farm_ok(),
        "stall": lambda _: sim.stall_subscriptions(True),
        "unstall": lambda _: sim.stall_subscriptions(False),
        "reset": lambda seconds: sim.nightly_reset(seconds, live_error=True),
        "reset_silent": lambda seconds: sim.nightly_reset(seconds, live_error=False),
        "drop": lambda _: sim.drop_all(),
    }
    try:
        for line in commands:
            words = line.split()
            if not words:
                continue
            reply: dict[str, Any]
            if words[0] == "port?":
                reply = {"host": sim.host, "port": sim.port, "speed": clock.speed, **pair()}
            elif words[0] == "fault":
                at = now()
                faults[words[1]](float(words[2]) if len(words) > 2 else 0.0)
                reply = {"sim": at}
            elif words[0] == "stats":
                stats = sim.stats
                reply = {
                    "updates": stats.live_updates_sent,
                    "live": sim.live_subscriptions,
                    "sim": now(),
                }
            elif words[0] == "stop":
                break
            else:
                reply = {"error": f"unknown command {line.strip()!r}"}
            replies.write(json.dumps(reply) + "\n")
            replies.flush()
    finally:
        sim.stop()
    return 0


@dataclass(frozen=True)
class ClockMap:
    """The simulator's clock against this machine's wall clock (both in epoch seconds)."""

    sim0: float
    wall0: float
    speed: float

    def wall(self, sim: float) -> float:
        return self.wall0 + (sim - self.sim0) / self.speed

    def sim(self, wall: float) -> float:
        return self.sim0 + (wall - self.wall0) * self.speed


class SimProcess:
    """A simulator in a process of its own, driven over its standard input and output."""

    def __init__(self, *, speed: float, copies: int = 0) -> None:
        self.config = {
            "start": OPEN.isoformat(),
            "speed": speed,
            "update_interval": UPDATE_INTERVAL,
            "copies": copies,
        }
        # the child's log, read if it dies; closed by close()
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONDONTWRITEBYTECODE": "1"}
        self._child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--simulator", json.dumps(self.config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )
        try:
            info = self.ask("port?")
        except BaseException:
            self.close()
            raise
        self.host: str = info["host"]
        self.port: int = info["port"]
        self.clock = ClockMap(info["sim"], info["wall"], info["speed"])

    def ask(self, command: str) -> dict[str, Any]:
        """Send one command; its reply."""
        child = self._child
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(command + "\n")
        child.stdin.flush()
        line = child.stdout.readline()
        if not line:
            child.wait(10)
            self._stderr.seek(0)
            raise RuntimeError(
                f"the simulator process ended (exit {child.returncode}):\n{self._stderr.read()}"
            )
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def fault(self, name: str, seconds: float | None = None) -> float:
        """Apply a fault now; the simulator's time when it was applied."""
        arg = "" if seconds is None else f" {seconds:.3f}"
        return float(self.ask(f"fault {name}{arg}")["sim"])

    def updates(self) -> int:
        """historicalDataUpdate messages sent so far."""
        return int(self.ask("stats")["updates"])

    def now(self) -> float:
        return self.clock.sim(time.time())

    def close(self) -> None:
        child = self._child
        if child.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert child.stdin is not None
                child.stdin.write("stop\n")
                child.stdin.flush()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(15)
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()
        self._stderr.close()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _client(sim: SimProcess) -> Client:
    """An ibdata client of ``sim`` without pacing (as the stream tests), reconnecting at
    once after a drop."""
    return Client(
        sim.host,
        sim.port,
        pacing=None,
        timeout=30,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.2,
    ).connect()


def _wait_sim(sim: SimProcess, until: float, pump: Callable[[float], object] = time.sleep) -> None:
    """Wait until the simulator's clock reaches ``until`` (epoch seconds), calling ``pump``
    with the seconds to wait (at most 0.05 at a time)."""
    deadline = time.monotonic() + GUARD + max(0.0, sim.clock.wall(until) - time.time())
    while (left := sim.clock.wall(until) - time.time()) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the simulator's clock never got there")
        pump(min(left, 0.05))


class Consumer:
    """A thread that iterates a stream and notes ``time.time()`` at every bar it yields."""

    def __init__(self, stream: ibdata.BarStream) -> None:
        self.stream = stream
        self.got: list[tuple[float, Bar]] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-consumer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for bar in self.stream:
                self.got.append((time.time(), bar))
        except BaseException as exc:  # reported by the benchmark, not raised in the thread
            self.error = exc

    def join(self) -> None:
        self._thread.join(GUARD)
        if self._thread.is_alive():
            raise RuntimeError(f"the stream {self.stream!r} did not end")


# --------------------------------------------------------------------------- 1 and 2
@dataclass
class LatencyRow:
    case: LatencyCase
    reader: str  # IBDATA, ON_BAR or RAW
    latencies: list[float]  # seconds
    cpu: float  # client process CPU seconds over the window
    updates: int  # historicalDataUpdate messages the simulator sent over the window
    window: float  # wall seconds
    same_as_history: bool | None  # None: not checked (the framing-only reader)
    events: Counter[str]


def _symbols(case: LatencyCase) -> list[str]:
    return [SYMBOL] if case.streams == 1 else [f"S{i:02d}" for i in range(case.streams)]


class Callback:
    """An ``on_bar`` callable that notes ``time.time()`` at every bar (on the stream's
    thread)."""

    def __init__(self) -> None:
        self.got: list[tuple[float, Bar]] = []
        self.error: BaseException | None = None

    def __call__(self, bar: Bar) -> None:
        self.got.append((time.time(), bar))

    def join(self) -> None:
        """Nothing to wait for: the stream's close has stopped the calls."""


def measure_latency(
    case: LatencyCase, settings: Settings, log: Callable[[str], None], *, on_bar: bool = False
) -> LatencyRow:
    """An ibdata row of a case: streams open for ``case.window`` wall seconds (with
    ``on_bar``: ``case.on_bar_window``), iterated by a thread each or delivering through
    ``on_bar``."""
    how = "on_bar" if on_bar else "iterated"
    log(f"latency: {case.streams} stream(s) of {case.bar_size} bars at {case.speed:g}x, {how}")
    symbols = _symbols(case)
    with SimProcess(speed=case.speed, copies=len(symbols) if case.streams > 1 else 0) as sim:
        client = _client(sim)
        streams: list[ibdata.BarStream] = []
        consumers: list[Consumer | Callback] = []
        try:
            for symbol in symbols:
                if on_bar:
                    consumers.append(Callback())
                    streams.append(
                        client.stream_bars(symbol, bar_size=case.bar_size, on_bar=consumers[-1])
                    )
                else:
                    streams.append(client.stream_bars(symbol, bar_size=case.bar_size))
                    consumers.append(Consumer(streams[-1]))
            time.sleep(settings.warm_up)
            cpu0, updates0, wall0 = time.process_time(), sim.updates(), time.time()
            time.sleep(case.on_bar_window if on_bar else case.window)
            cpu1, updates1, wall1 = time.process_time(), sim.updates(), time.time()
        finally:
            for stream in streams:
                stream.close()
            for consumer in consumers:
                consumer.join()
        try:
            for consumer in consumers:
                if consumer.error is not None:
                    raise RuntimeError(f"a stream failed: {consumer.error!r}")
            latencies = [
                yielded - sim.clock.wall(bar.time.timestamp() + case.seconds)  # type: ignore[union-attr]
                for consumer in consumers
                for yielded, bar in consumer.got
                if wall0 <= yielded <= wall1
            ]
            same = all(
                _equals_history(client, symbol, [bar for _, bar in consumer.got], case.bar_size)
                for symbol, consumer in zip(symbols, consumers, strict=True)
            )
            events = Counter(e.kind for stream in streams for e in stream.events)
        finally:
            client.close()
    reader = ON_BAR if on_bar else IBDATA
    return LatencyRow(
        case, reader, latencies, cpu1 - cpu0, updates1 - updates0, wall1 - wall0, same, events
    )


class RawTap:
    """The least a program can do with live bars: a framing-only TWS client (server
    version 157, as ibdata's) holding one keepUpToDate subscription per symbol, whose
    thread notes ``time.time()`` when the first update of each new bar arrives."""

    def __init__(self, sim: SimProcess, symbols: Sequence[str], bar_size: str) -> None:
        from sim_throughput import RawTws

        self.tws = RawTws(sim.port, 157, client_id=71)
        #: (arrival, request id, the new bar's start in epoch seconds)
        self.arrivals: list[tuple[float, int, int]] = []
        self._last: dict[int, int] = {}
        for req_id, symbol in enumerate(symbols, 1):
            self.tws.send(
                [
                    20, req_id, 0, symbol, "STK", "", "0.0", "", "", "SMART", "", "USD", "",
                    "", 0, "", bar_size, "600 S", 0, "TRADES", 2, 1, "",
                ]
            )  # fmt: skip
        self._thread = threading.Thread(target=self._run, name="bench-raw-tap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                payload = self.tws.read_frame()
                if not payload.startswith(b"90\0"):  # historicalDataUpdate
                    continue
                fields = payload.split(b"\0", 5)  # 90, reqId, barCount, date, ...
                req_id, start = int(fields[1]), int(fields[3])
                last = self._last.get(req_id)
                if last is not None and start > last:
                    self.arrivals.append((time.time(), req_id, start))
                if last is None or start > last:
                    self._last[req_id] = start

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.tws.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(GUARD)
        self.tws.close()


def measure_raw(case: LatencyCase, settings: Settings, log: Callable[[str], None]) -> LatencyRow:
    """The framing-only reader's row of a case: the simulator's and the socket's share of
    the latency, and the least CPU a program spends on an update."""
    log(f"latency: framing only, {case.streams} subscription(s) of {case.bar_size} bars")
    symbols = _symbols(case)
    with SimProcess(speed=case.speed, copies=len(symbols) if case.streams > 1 else 0) as sim:
        tap = RawTap(sim, symbols, case.bar_size)
        try:
            time.sleep(settings.warm_up)
            cpu0, updates0, wall0 = time.process_time(), sim.updates(), time.time()
            time.sleep(case.raw_window)
            cpu1, updates1, wall1 = time.process_time(), sim.updates(), time.time()
        finally:
            tap.close()
    latencies = [
        arrived - sim.clock.wall(start)
        for arrived, _, start in tap.arrivals
        if wall0 <= arrived <= wall1
    ]
    return LatencyRow(
        case, RAW, latencies, cpu1 - cpu0, updates1 - updates0, wall1 - wall0, None, Counter()
    )


def _equals_history(client: Client, symbol: str, bars: Sequence[Bar], bar_size: str) -> bool:
    """Whether ``bars`` are exactly the history of their period, none missing."""
    if not bars:
        return False
    last = bars[-1].time
    assert isinstance(last, dt.datetime)
    history = client.get_historical_bars(
        symbol, bar_size=bar_size, start=bars[0].time, end=last + dt.timedelta(seconds=1)
    )
    return list(history) == list(bars)


# --------------------------------------------------------------------------- 3. faults
@dataclass(frozen=True)
class Fault:
    """One fault of the script: started ``at`` simulated minutes after the first boundary."""

    name: str
    at: float
    start: str  # the simulator command
    end: str | None = None  # the command that ends it, ``length`` minutes later
    length: float = 0.0  # simulated minutes until it is over
    downtime: bool = False  # the simulator ends it by itself after ``length`` minutes


SCRIPT = (
    Fault("1100, then 1102 (data maintained)", 2.5, "lost", "restored", 2.0),
    Fault("HMDS farm broken (2105), then OK (2106)", 6.5, "farm_broken", "farm_ok", 2.0),
    Fault("stall (new subscriptions work half a bar later)", 10.5, "stall", "unstall", 0.5),
    Fault("nightly reset with 10182", 14.5, "reset", None, 2.0, downtime=True),
    Fault("nightly reset without 10182", 18.5, "reset_silent", None, 2.0, downtime=True),
    Fault("dropped connection", 22.5, "drop"),
)
#: Simulated minutes from the first boundary to the end of the script.
SCRIPT_MINUTES = 25


@dataclass
class Played:
    """One fault as played: simulator times (epoch seconds) it started and was over."""

    fault: Fault
    started: float
    restored: float


@dataclass
class FaultRun:
    """One library's run of the script."""

    library: str
    first: float  # the first boundary (epoch seconds, simulator time): the period's start
    end: float  # the period's end
    played: list[Played]
    received: list[Bar]  # final bars of the period, in the order received
    history: list[Bar]
    events: list[tuple[float, StreamEvent]] = field(default_factory=list)  # simulator time
    note: str = ""

    @property
    def expected(self) -> list[Bar]:
        return self.history

    def lost(self) -> list[Bar]:
        seen = {b.time for b in self.received}
        return [b for b in self.history if b.time not in seen]

    def duplicated(self) -> list[dt.datetime]:
        counts = Counter(b.time for b in self.received)
        return sorted(t for t, n in counts.items() if n > 1)  # type: ignore[type-var]

    def wrong(self) -> list[tuple[Bar, Bar | None]]:
        """Received bars unlike history's bar of the same time (None: history has none)."""
        by_time = {b.time: b for b in self.history}
        return [(b, by_time.get(b.time)) for b in self.received if by_time.get(b.time) != b]

    def resubscribed_after(self, played: Played) -> float | None:
        """Simulator seconds from the fault's end to the stream's next ``resubscribed``."""
        for at, event in self.events:
            if event.kind == "resubscribed" and at >= played.restored:
                return at - played.restored
        return None


def _boundary_after(sim: SimProcess, seconds: float = MINUTE) -> float:
    """The first boundary of the bar grid at least 10 simulated seconds from now."""
    now = sim.now() + 10
    return (now // seconds + 1) * seconds


def play_script(
    sim: SimProcess, first: float, pump: Callable[[float], object], log: Callable[[str], None]
) -> list[Played]:
    """Play :data:`SCRIPT` from the boundary ``first``; wait until the period has ended and
    the bar after it has begun."""
    played = []
    speed = sim.clock.speed
    for fault in SCRIPT:
        _wait_sim(sim, first + fault.at * MINUTE, pump)
        log(f"  {fault.name}")
        if fault.downtime:
            started = sim.fault(fault.start, fault.length * MINUTE / speed)
            restored = started + fault.length * MINUTE
        else:
            started = sim.fault(fault.start)
            restored = started
        if fault.end is not None:
            _wait_sim(sim, started + fault.length * MINUTE, pump)
            restored = sim.fault(fault.end)
        played.append(Played(fault, started, restored))
    _wait_sim(sim, first + (SCRIPT_MINUTES + 0.5) * MINUTE, pump)
    return played


def _in_period(bars: Sequence[Bar], first: float, end: float) -> list[Bar]:
    return [b for b in bars if first <= b.time.timestamp() < end]  # type: ignore[union-attr]


def _history(sim: SimProcess, first: float, end: float) -> list[Bar]:
    with _client(sim) as client:
        bars = client.get_historical_bars(
            SYMBOL,
            bar_size="1 min",
            start=dt.datetime.fromtimestamp(first, UTC),
            end=dt.datetime.fromtimestamp(end, UTC),
        )
    return _in_period(list(bars), first, end)


def faults_ibdata(settings: Settings, log: Callable[[str], None]) -> FaultRun:
    """The script against ``Client.stream_bars``."""
    log(f"faults: ibdata at speed {settings.fault_speed:g}")
    with SimProcess(speed=settings.fault_speed) as sim:
        stall_after = MINUTE / settings.fault_speed  # one bar, in wall seconds
        with _client(sim) as client:
            stream = client.stream_bars(SYMBOL, bar_size="1 min", stall_after=stall_after)
            consumer = Consumer(stream)
            try:
                first = _boundary_after(sim)
                played = play_script(sim, first, time.sleep, log)
            finally:
                stream.close()
                consumer.join()
            end = first + SCRIPT_MINUTES * MINUTE
            events = [(sim.clock.sim(e.at.timestamp()), e) for e in stream.events]
            received = _in_period([bar for _, bar in consumer.got], first, end)
            note = "" if consumer.error is None else f"the stream ended: {consumer.error!r}"
        history = _history(sim, first, end)
    return FaultRun("ibdata", first, end, played, received, history, events, note)


def faults_ib_async(settings: Settings, log: Callable[[str], None]) -> FaultRun:
    """The script against ``ib_async``'s keepUpToDate subscription, used as documented."""
    from ib_async import IB, Stock

    log(f"faults: ib_async at speed {settings.fault_speed:g}")
    with (
        SimProcess(speed=settings.fault_speed) as sim,
        event_loop(),
        quiet("ib_async", "ib_async.wrapper", "ib_async.client", "ib_async.ib"),
    ):
        ib = IB()
        ib.connect(sim.host, sim.port, clientId=17, timeout=30)
        finals: list[Bar] = []
        disconnected: list[float] = []

        def on_update(bars: Any, has_new_bar: bool) -> None:
            if has_new_bar and len(bars) >= 2:
                b = bars[-2]
                finals.append(
                    Bar(
                        b.date,
                        b.open,
                        b.high,
                        b.low,
                        b.close,
                        round(float(b.volume) / 100) * 100,  # as TWS sends it at 157
                        b.average,
                        b.barCount,
                    )
                )

        ib.disconnectedEvent += lambda: disconnected.append(sim.now())
        raised: list[tuple[float, BaseException]] = []

        def pump(seconds: float) -> None:
            """Run ib_async's loop for a while; once ``ib.sleep`` has raised (its
            connection is gone), just wait: nothing more can come."""
            if raised:
                time.sleep(seconds)
                return
            try:
                ib.sleep(seconds)
            except ConnectionError as exc:
                raised.append((sim.now(), exc))

        try:
            bars = ib.reqHistoricalData(
                Stock(SYMBOL, "SMART", "USD"),
                endDateTime="",
                durationStr="600 S",
                barSizeSetting="1 min",
                whatToShow="TRADES",
                useRTH=False,
                formatDate=2,
                keepUpToDate=True,
            )
            bars.updateEvent += on_update
            first = _boundary_after(sim)
            started = time.monotonic()
            played = play_script(sim, first, pump, log)
            took = time.monotonic() - started
        finally:
            ib.disconnect()
        end = first + SCRIPT_MINUTES * MINUTE
        history = _history(sim, first, end)
    expected = (SCRIPT_MINUTES + 0.5) * MINUTE / settings.fault_speed
    notes = [f"the script ran {took:.1f} s of wall time, {expected:.1f} s planned"]
    if disconnected:
        notes.append(f"`disconnectedEvent` at {_hhmm(disconnected[0])}")
    for at, exc in raised:
        notes.append(
            f"`ib.sleep` raised `{type(exc).__name__}({str(exc)!r})` at {_hhmm(at)}: a "
            f"program whose loop is `ib.sleep` stops there unless it catches that"
        )
    note = "; ".join(notes)
    return FaultRun(
        "ib_async 2.1.0", first, end, played, _in_period(finals, first, end), history, note=note
    )


# --------------------------------------------------------------------------- rendering
def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


def _hhmm(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


def _end(bar: Bar) -> float:
    """A one-minute bar's end, epoch seconds."""
    return bar.time.timestamp() + MINUTE  # type: ignore[union-attr]


def _difference(got: Bar, want: Bar | None) -> str:
    """How a received bar differs from history's."""
    when = got.time.strftime("%H:%M")  # type: ignore[union-attr]
    if want is None:
        return f"{when}, which history does not have"
    fields = ("open", "high", "low", "close", "volume", "wap", "count")
    differ = [
        f"{n} {getattr(got, n)} (history {getattr(want, n)})"
        for n in fields
        if getattr(got, n) != getattr(want, n)
    ]
    return f"{when} with " + ", ".join(differ)


def _bar_list(times: Sequence[dt.datetime | dt.date], limit: int = 8) -> str:
    text = ", ".join(t.strftime("%H:%M") for t in times[:limit])  # type: ignore[union-attr]
    return text + (f" and {len(times) - limit} more" if len(times) > limit else "")


def _groups(rows: Sequence[LatencyRow]) -> list[list[LatencyRow]]:
    """Each case's rows: ibdata's (iterated, then ``on_bar``), then the framing-only one."""
    order = {IBDATA: 0, ON_BAR: 1, RAW: 2}
    cases = list(dict.fromkeys(row.case for row in rows))
    return [sorted((r for r in rows if r.case == c), key=lambda r: order[r.reader]) for c in cases]


def render_latency(rows: Sequence[LatencyRow]) -> list[str]:
    lines = [
        "| bar size | clock speed | streams | reader | bars | median | p99 | max "
        "| ibdata's share of the median | same as history |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for group in _groups(rows):
        (raw,) = [row for row in group if row.reader == RAW]
        floor = statistics.median(raw.latencies)
        for row in group:
            c, lat = row.case, row.latencies
            same = {None: "—", True: "yes", False: "NO"}[row.same_as_history]
            share = _ms(statistics.median(lat) - floor) if row is not raw else "—"
            reader = READERS[row.reader]
            lines.append(
                f"| {c.bar_size} | {c.speed:g}x | {c.streams} | {reader} | {len(lat):,} "
                f"| {_ms(statistics.median(lat))} | {_ms(quantile(lat, 0.99))} "
                f"| {_ms(max(lat))} | {share} | {same} |"
            )
    other = Counter[str]()
    for row in rows:
        other.update({k: n for k, n in row.events.items() if k != "subscribed"})
    lines += [
        "",
        "- *ibdata, iterated*: `time.time()` when the stream's iterator returned the bar, "
        "minus the wall time of the bar's end on the simulator's clock; each stream is "
        "iterated by a thread of its own. *ibdata, `on_bar`*: the same, taken in the "
        "`on_bar` callable, which the stream's own thread calls. `stream_bars` without "
        "`start`, so every bar is live; a bar is final when the first update of the next "
        "bar arrives.",
        "- *framing only*: the reference, run on its own simulator right after ibdata's "
        "row: a client that splits frames and reads two fields, nothing else (server "
        "version 157, as ibdata's), as many keepUpToDate subscriptions as ibdata had "
        "streams; `time.time()` when the first update of the next bar arrives, minus the "
        "bar's end. It is the simulator's work at the boundary (each subscription's "
        "complete bar and next bar, one subscription after the other) and loopback: a "
        "floor no client beats here. *ibdata's share of the median*: ibdata's median "
        "minus the reference's.",
        "- *bars*: final bars in the measured window (after a warm-up), over all streams. "
        "*same as history*: every stream's bars equal a history download of their period.",
        "- Stream events besides `subscribed` during these runs: "
        + (", ".join(f"{k} {n}" for k, n in sorted(other.items())) or "none")
        + ".",
    ]
    return lines


def render_cpu(rows: Sequence[LatencyRow]) -> list[str]:
    lines = [
        "| bar size | clock speed | streams | reader | window | updates | updates/s "
        "| client CPU | CPU per update | vs ibdata, 1 stream of 1 min |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    base = rows[0].cpu / rows[0].updates if rows and rows[0].updates else float("nan")
    for group in _groups(rows):
        for row in group:
            c = row.case
            per = row.cpu / row.updates if row.updates else float("nan")
            reader = READERS[row.reader]
            lines.append(
                f"| {c.bar_size} | {c.speed:g}x | {c.streams} | {reader} | {row.window:.1f} s "
                f"| {row.updates:,} | {row.updates / row.window:,.0f} "
                f"| {row.cpu:.2f} s ({row.cpu / row.window:.1%}) | {_us(per)} "
                f"| {per / base:.2f}x |"
            )
    lines += [
        "",
        f"- *updates*: historicalDataUpdate messages the simulator sent in the window "
        f"(`SimStats.live_updates_sent`): per stream, one every {UPDATE_INTERVAL * 1000:.0f} "
        f"ms of wall time for the forming bar, and two at each bar's end (the complete bar, "
        f"then the next one forming). *client CPU*: `time.process_time()` of the client's "
        f"process over the window (in parentheses: of one core), every thread of it: for "
        f"ibdata `ibapi`'s reader, ibdata's dispatcher, the stream workers and the threads "
        f"iterating the streams. The simulator runs in another process and is not counted.",
    ]
    return lines


def render_faults(runs: Sequence[FaultRun], speed: float) -> list[str]:
    lines = [
        "| library | final bars expected | received | lost | duplicated | wrong |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.library} | {len(run.expected)} | {len(run.received)} | {len(run.lost())} "
            f"| {len(run.duplicated())} | {len(run.wrong())} |"
        )
    ours = runs[0]
    lines += [
        "",
        "| fault | simulator time | over at | ibdata: start → resubscribed "
        "| ibdata: over → resubscribed | "
        + " | ".join(f"{run.library}: lost, wrong" for run in runs)
        + " |",
        "|---|---|---|---:|---:|" + "---|" * len(runs),
    ]
    cells = []
    for run in runs:
        lo, hi = run.first - MINUTE, run.played[0].started
        lost = [b for b in run.lost() if lo < _end(b) <= hi]
        wrong = [b for b, _ in run.wrong() if lo < _end(b) <= hi]
        cells.append(f"{len(lost)}, {len(wrong)}")
    lines.append(
        f"| before the first fault | {_hhmm(ours.first)} | — | — | — | " + " | ".join(cells) + " |"
    )
    delays: list[float] = []
    for i, played in enumerate(ours.played):
        delay = ours.resubscribed_after(played)
        if delay is not None:
            delays.append(delay)
        cells = []
        for run in runs:
            lo, hi = (
                run.played[i].started,
                (run.played[i + 1].started if i + 1 < len(run.played) else run.end),
            )
            lost = [b for b in run.lost() if lo < _end(b) <= hi]
            wrong = [b for b, _ in run.wrong() if lo < _end(b) <= hi]
            cells.append(f"{len(lost)}, {len(wrong)}")
        shown = "—" if delay is None else f"{delay:.1f} s ({_ms(delay / speed)} wall)"
        since = "—"
        if delay is not None:
            whole = played.restored + delay - played.started
            since = f"{whole:.1f} s ({_ms(whole / speed)} wall)"
        lines.append(
            f"| {played.fault.name} | {_hhmm(played.started)} | {_hhmm(played.restored)} "
            f"| {since} | {shown} | " + " | ".join(cells) + " |"
        )
    within = delays and len(delays) == len(ours.played) and max(delays) <= MINUTE
    lines.append("")
    if delays:
        lines.append(
            f"- ibdata's resubscription after each fault was over: median "
            f"{statistics.median(delays):.1f} s, max {max(delays):.1f} s of simulator time "
            f"({_ms(statistics.median(delays) / speed)} and {_ms(max(delays) / speed)} wall); "
            + (
                "every one within the bar size (60 s)."
                if within
                else "NOT every one within the bar size (60 s)."
            )
        )
    for run in runs:
        details = []
        if run.lost():
            details.append(f"lost {_bar_list([b.time for b in run.lost()])}")
        if run.duplicated():
            details.append(f"duplicated {_bar_list(run.duplicated())}")
        if run.wrong():
            details.append(f"wrong {_bar_list([b.time for b, _ in run.wrong()])}")
            got, want = run.wrong()[0]
            details.append(f"the first wrong bar: {_difference(got, want)}")
        text = "; ".join(details) if details else "every final bar, once, equal to history"
        lines.append(f"- {run.library}: {text}" + (f" ({run.note})" if run.note else "") + ".")
    first, end = ours.first, ours.end
    lines += [
        f"- The period: the {len(ours.expected)} one-minute AAPL bars from the first bar "
        f"boundary after subscribing ({_hhmm(first)} UTC in ibdata's run) to "
        f"{SCRIPT_MINUTES} minutes later ({_hhmm(end)}); a bar counts for the last fault "
        f"that started before the bar's end. Times are the simulator's (speed {speed:g}: a "
        f"simulated minute is {MINUTE / speed:g} s of wall time). *over → resubscribed*: "
        f"from the end of the fault (1102, 2106, the end of the reset's downtime, the "
        f"un-stall, the drop itself) to the stream's next `resubscribed` event; *start → "
        f"resubscribed*: from the fault's start (for a stall, the silence counts only "
        f"after `stall_after`, here one bar). `StreamEvent.at` (the client's wall clock) "
        f"is mapped to the simulator's clock.",
        "- *lost*: a bar of history never received; *duplicated*: received more than once; "
        "*wrong*: received with values unlike history's bar of that minute.",
    ]
    return lines


def render(
    settings: Settings,
    quick: bool,
    host: dict[str, str],
    rows: Sequence[LatencyRow],
    runs: Sequence[FaultRun],
    wall: float,
) -> str:
    import ib_async

    lines = [
        f"One run of `python benchmarks/streaming.py{' --quick' if quick else ''}`: live "
        f"bars from `Client.stream_bars`; every simulator in a process of its own on a "
        f"clock running faster than real time from {OPEN:%Y-%m-%d %H:%M} UTC (a Tuesday, "
        f"10:00 in New York), periodic updates every {UPDATE_INTERVAL * 1000:.0f} ms. "
        f"Medians and percentiles on a shared, noisy machine (2 cores, shared with other "
        f"work): compare figures within this run only.",
        "",
        *(f"- {name}: {value}" for name, value in host.items()),
        f"- ibdata {ibdata.__version__}, ibapi {ibdata.ibapi_release().version}, "
        f"ib_async {ib_async.__version__}",
        f"- wall time of the run: {wall:.0f} s",
        "",
        "**1. Latency from a bar's close to the stream yielding it**",
        "",
        *render_latency(rows),
        "",
        "**2. Client CPU per historicalDataUpdate**",
        "",
        *render_cpu(rows),
        "",
        f"**3. One fault script, ibdata and `ib_async`** (speed {settings.fault_speed:g})",
        "",
        *render_faults(runs, settings.fault_speed),
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the markdown and write it to ``--output``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a few bars of each (the tests)")
    parser.add_argument(
        "--output",
        "--write-table",
        dest="output",
        default=str(DEFAULT_OUTPUT),
        help="where to write the markdown as well",
    )
    parser.add_argument("--verbose", action="store_true", help="say what runs, on stderr")
    parser.add_argument("--simulator", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.simulator is not None:
        return serve(json.loads(args.simulator), sys.stdin, sys.stdout)
    settings = QUICK if args.quick else FULL

    def log(text: str) -> None:
        if args.verbose:
            print(text, file=sys.stderr, flush=True)

    started = time.monotonic()
    host = machine()
    before = {t.name for t in threading.enumerate()}
    with quiet("ibdata", "ibapi"):
        rows = []
        for case in settings.cases:
            rows.append(measure_latency(case, settings, log))
            if case.on_bar_window:
                rows.append(measure_latency(case, settings, log, on_bar=True))
            rows.append(measure_raw(case, settings, log))
        log(f"({time.monotonic() - started:.0f} s)")
        runs = [faults_ibdata(settings, log)]
        log(f"({time.monotonic() - started:.0f} s)")
        runs.append(faults_ib_async(settings, log))
        log(f"({time.monotonic() - started:.0f} s)")
    left = [name for name in leftover_threads() if name not in before]
    if left:
        raise RuntimeError(f"threads left running: {left}")
    text = render(settings, args.quick, host, rows, runs, time.monotonic() - started)
    print(text, end="")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
