"""Helpers shared by the benchmark scripts: machine facts and a check for leftover threads."""

from __future__ import annotations

import datetime as dt
import os
import platform
import threading
import time


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
