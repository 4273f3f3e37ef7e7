"""The ``ibdata`` command line, run as a real process."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ibdata.cli import _next_quarter_code
from tests.sim.raw import RawClient

ADDRESS = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


@contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start ``python -m <args>`` and yield the process and the port it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = ADDRESS.search(line)
        assert match, f"no address printed: {line!r}"
        yield proc, int(match.group(1))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.parametrize("command", [("ibdata", "sim"), ("ibdata.sim",)])
def test_sim_prints_its_address_serves_and_stops_on_sigint(command: tuple[str, ...]) -> None:
    """``ibdata sim`` (and ``python -m ibdata.sim``) serves clients and exits 0 on SIGINT."""
    with running(*command, "--port", "0", "--gateway", "--server-version", "170") as (proc, port):
        with RawClient(port) as c:
            assert c.hello("v157..178")[0] == "170"
            c.start_api(1)
            frames = c.read_until(lambda f: f[:4] == ["4", "2", "-1", "2158"])
            assert any(f[3] == "2107" for f in frames if f[0] == "4")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "simulator stopped" in out
        assert "connection 1 from 127.0.0.1" in err
        assert "startApi" in err or "client v157..178" in err


def test_sim_refuses_bad_options() -> None:
    """A bad option is reported with exit status 2 and a message naming it."""
    out = subprocess.run(
        [sys.executable, "-m", "ibdata", "sim", "--server-version", "99", "--port", "0"],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "server_version" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "ibdata", "sim", "--latency", "-1"],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "--latency" in out.stderr


def test_sim_names_its_login_zone_as_asked() -> None:
    """``--login-tz-names long`` makes the connection time carry Java's long zone name; a
    zone the simulator has no long name for is refused with exit status 2."""
    with running("ibdata", "sim", "--port", "0", "--login-tz", "Europe/London",
                 "--login-tz-names", "long") as (proc, port):  # fmt: skip
        with RawClient(port) as c:
            reply = c.hello("v100..157")
        assert reply[1].endswith((" Greenwich Mean Time", " British Summer Time")), reply
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
        assert proc.returncode == 0
    out = subprocess.run(
        [sys.executable, "-m", "ibdata", "sim", "--port", "0", "--login-tz", "Asia/Kathmandu",
         "--login-tz-names", "long"],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "no Java long name for 'Asia/Kathmandu'" in out.stderr


def test_demo_prints_bars_and_the_bund_front_month() -> None:
    """``ibdata demo`` fetches bars and a contract from an in-process simulator."""
    out = subprocess.run(
        [sys.executable, "-m", "ibdata", "demo"],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "AAPL daily bars" in out.stdout
    assert re.search(r"^\d{4}-\d\d-\d\d +\d+\.\d\d", out.stdout, re.MULTILINE)
    assert "Euro-Bund (EURBBL, continuous):" in out.stdout
    today = dt.datetime.now(dt.timezone.utc).date()
    code = _next_quarter_code("EURBBL", today)
    month = {"H": "MAR", "M": "JUN", "U": "SEP", "Z": "DEC"}[code[6]]
    assert f"{code}: FGBL {month} {code[7:]}" in out.stdout


@pytest.mark.parametrize(
    ("today", "code"),
    [
        (dt.date(2025, 1, 5), "EURBBLH25"),
        (dt.date(2025, 3, 31), "EURBBLM25"),
        (dt.date(2025, 11, 2), "EURBBLZ25"),
        (dt.date(2025, 12, 1), "EURBBLH26"),
    ],
)
def test_demo_asks_for_the_next_quarterly_contract(today: dt.date, code: str) -> None:
    """The demo's future is the first quarterly month after today's, so it never expires."""
    assert _next_quarter_code("EURBBL", today) == code


def test_cache_info_and_clear(tmp_path: Path) -> None:
    """``ibdata cache info`` describes a cache file and ``ibdata cache clear`` empties it."""
    from array import array

    from ibdata.cache import BarCache, CachedBars, SeriesKey

    path = tmp_path / "bars.sqlite"
    key = SeriesKey(265598, "TRADES", "1 min", False)
    times = array("d", [60.0 * i for i in range(10)])
    ones = array("d", [1.0] * 10)
    with BarCache(path) as cache:
        cache.store(
            key, 0, 600, CachedBars(times, ones, ones, ones, ones, ones, ones, array("q", [1] * 10))
        )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ibdata", "cache", *args, "--path", str(path)],
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
        )

    info = run("info")
    assert info.returncode == 0, info.stderr
    assert "bars:     10" in info.stdout
    assert run("clear").returncode == 0
    assert "bars:     0" in run("info").stdout
    missing = subprocess.run(
        [sys.executable, "-m", "ibdata", "cache", "info", "--path", str(tmp_path / "none")],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1
    assert "no cache at" in missing.stdout
