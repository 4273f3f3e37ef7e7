"""Shared fixtures: simulators on ephemeral ports, a guard against leaked threads, and the
read-only guard: no simulator a test starts in this process may receive an order message.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ibdata import Client, PacingRules
from ibdata.sim import FixedClock, ScaledClock, Simulator

UTC = dt.timezone.utc

#: A Wednesday, 11:00 in New York: US stocks are trading, Eurex and CBOT too.
CLOCK_AT = dt.datetime(2025, 3, 12, 15, 0, tzinfo=UTC)

_WATCHED_PREFIXES = ("ibdata-sim", "ibapi-probe", "ibdata-leases", "ibdata-stream")

#: The TWS API's order messages, by outgoing message id (ibapi's ``OUT`` table): a
#: read-only client sends none of them.
ORDER_MESSAGES = {3: "placeOrder", 4: "cancelOrder", 21: "exerciseOptions", 58: "reqGlobalCancel"}

#: Every simulator started in this process, with the order messages already reported for it.
_STARTED: dict[Simulator, int] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of tests that send order messages on purpose."""
    config.addinivalue_line(
        "markers",
        "sends_orders: the test sends order messages to a simulator on purpose, to check "
        "that they are caught; the read-only guard does not fail it",
    )


def order_messages(sim: Simulator) -> list[str]:
    """The order messages ``sim`` has received, described; empty when it saw none.

    Reads both the received log (each message by its id, so a simulator that mislabelled
    one is still caught) and ``stats.order_messages`` (which counts messages the bounded
    log may have dropped).
    """
    found = [
        f"{ORDER_MESSAGES[m.msg_id]} from client {m.client_id} on connection {m.connection}"
        for m in sim.received.snapshot()
        if m.msg_id in ORDER_MESSAGES
    ]
    counted = sim.stats.order_messages
    if counted > len(found):
        found.append(f"{counted - len(found)} more counted in stats.order_messages")
    return found


@pytest.fixture(scope="session", autouse=True)
def track_simulators() -> Iterator[None]:
    """Record every Simulator started in this process, however the test made it.

    Wraps ``Simulator.start`` (which ``with Simulator() as sim`` calls too) for the whole
    session; the simulator itself is not changed.
    """
    original = Simulator.start

    def start(self: Simulator) -> Simulator:
        started = original(self)
        _STARTED.setdefault(self, 0)
        return started

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Simulator, "start", start)
        yield


@pytest.fixture(autouse=True)
def read_only_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test during which a simulator of this process received an order message."""
    yield
    violations: list[str] = []
    for sim, reported in list(_STARTED.items()):
        found = order_messages(sim)
        if len(found) > reported:
            violations += [f"{sim!r}: {text}" for text in found[reported:]]
            _STARTED[sim] = len(found)
        if not sim._running:  # stopped: it can receive nothing more, so let it go
            del _STARTED[sim]
    if request.node.get_closest_marker("sends_orders") is None:
        assert not violations, f"order messages reached a simulator: {violations}"


def _watched_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(_WATCHED_PREFIXES)}


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves simulator or probe threads running after it ends."""
    before = _watched_threads()
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = _watched_threads() - before
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"threads left running: {sorted(t.name for t in leaked)}"


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., Simulator]]:
    """Start simulators on free ports with a fixed clock; all are stopped after the test."""
    started: list[Simulator] = []

    def make(**options: Any) -> Simulator:
        options.setdefault("clock", FixedClock(CLOCK_AT))
        sim = Simulator(**options)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A running simulator on a free port with the clock fixed at :data:`CLOCK_AT`."""
    return sim_factory()


def tuesday_afternoon() -> dt.datetime:
    """15:00 UTC on a Tuesday about two weeks ago: US stocks are trading."""
    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=14)
    day -= dt.timedelta(days=(day.weekday() - 1) % 7)
    return dt.datetime(day.year, day.month, day.day, 15, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def fast_sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator from :func:`tuesday_afternoon` on a clock 60 times faster than real time
    (a 1-minute bar ends about every second), updating live bars every 50 ms, no pacing."""
    clock = ScaledClock(tuesday_afternoon(), speed=60)
    return sim_factory(clock=clock, update_interval=0.05, pacing=None)


#: How much faster than real time :func:`paced_sim` enforces IB's pacing rules.
PACED_SCALE = 100.0


@pytest.fixture
def paced_sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator enforcing IB's pacing rules 100 times faster than real time."""
    return sim_factory(pacing=PacingRules(time_scale=PACED_SCALE))


@pytest.fixture
def make_client(paced_sim: Simulator, tmp_path: Path) -> Iterator[Callable[..., Client]]:
    """Connected clients of the paced simulator, with its rules and a cache in tmp_path."""
    made: list[Client] = []

    def make(**options: Any) -> Client:
        options.setdefault("pacing", PacingRules(time_scale=PACED_SCALE))
        options.setdefault("cache", tmp_path / "bars.sqlite")
        options.setdefault("timeout", 20)
        c = Client(paced_sim.host, paced_sim.port, **options)
        c.connect()
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def run_ibdata(
    *args: str, cache: Path | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ibdata ARGS`` as a user would: without the environment's IB_* and
    IBDATA_* variables, ``$IBDATA_CACHE`` set to ``cache`` when given, then ``extra_env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IB_", "IBDATA_"))}
    if cache is not None:
        env["IBDATA_CACHE"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "ibdata", *args],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        env={**env, **(extra_env or {})},
    )
