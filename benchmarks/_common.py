"""Helpers shared by the benchmark modules: machine facts, the simulator's clock, an event
loop for ``ib_async``, quiet loggers, percentiles, round-robin orders and a check for
leftover threads."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import platform
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

UTC = dt.timezone.utc
T = TypeVar("T")

#: The simulator's clock in every benchmark: a Wednesday evening, after the US close.
CLOCK_AT = dt.datetime(2025, 3, 12, 21, 0, tzinfo=UTC)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    """Facts about the machine the figures come from."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpus": f"{os.cpu_count()} (usable: {usable})",
        "cpu model": _cpu_model(),
        "load average before the run": load,
    }


def leftover_threads(prefixes: tuple[str, ...] = ("ibdata", "ibapi")) -> list[str]:
    """Names of threads with these prefixes still running after waiting up to 5 seconds."""
    deadline = time.monotonic() + 5
    while True:
        left = [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


@contextmanager
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for ib_async's synchronous API, closed with its tasks afterwards."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        try:
            loop.run_until_complete(asyncio.sleep(0))  # let closed transports let go
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


@contextmanager
def quiet(*names: str) -> Iterator[None]:
    """Silence these loggers for a while (``ib_async`` logs every 162 and every disconnect
    as an error; ``ibapi`` logs every connection)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values``, interpolated between the closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def rotations(items: Sequence[T], rounds: int) -> Iterator[list[T]]:
    """``rounds`` round-robin passes over ``items``, each starting one further along."""
    for i in range(rounds):
        k = i % len(items)
        yield [*items[k:], *items[:k]]


def rotation(items: Sequence[T], n: int) -> list[T]:
    """Pass ``n`` (from 0) of :func:`rotations`."""
    k = n % len(items)
    return [*items[k:], *items[:k]]
