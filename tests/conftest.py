"""Shared fixtures: simulators on ephemeral ports, and a guard against leaked threads."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ibdata.sim import FixedClock, Simulator

UTC = dt.timezone.utc

#: A Wednesday, 11:00 in New York: US stocks are trading, Eurex and CBOT too.
CLOCK_AT = dt.datetime(2025, 3, 12, 15, 0, tzinfo=UTC)

_WATCHED_PREFIXES = ("ibdata-sim", "ibapi-probe")


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
