"""The scripts in ``examples/`` run unchanged against ``ibdata sim`` and do what they say.

Each test starts the real command-line simulator (``python -m ibdata sim --port 0``) in a
subprocess, points ``IB_HOST``/``IB_PORT`` at it and runs an example as a user would, with
the interpreter running the tests.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import itertools
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import ibdata
from ibdata.sim import Simulator

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
UTC = dt.timezone.utc

#: Variables a developer's shell may set that would change what the examples do.
_CLEARED = {
    "IB_HOST",
    "IB_PORT",
    "IB_CLIENT_ID",
    "IBDATA_PRODUCTS",
    "IBDATA_API_TOKEN",
    "IBDATA_URL",
}


def _environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    return env | {"PYTHONUNBUFFERED": "1"} | extra


class _Stdout:
    """A child process's stdout, read straight from the pipe so that ``select`` tells the
    truth (a buffered reader may hold lines ``select`` cannot see)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.text = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def _read(self, timeout: float) -> bool:
        """Read what arrives within ``timeout`` seconds; False at the end of the output."""
        if not select.select([self.fd], [], [], max(timeout, 0))[0]:
            return True
        chunk = os.read(self.fd, 65536)
        self.text += self._decoder.decode(chunk, final=not chunk)
        return bool(chunk)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Read until the output matches ``pattern`` (a multi-line regex); fail otherwise."""
        deadline = time.monotonic() + timeout
        while not (match := re.search(pattern, self.text, re.M)):
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                pytest.fail(f"no {pattern!r} in {self.text!r} (status {self.proc.poll()})")
        return match

    def read_to_end(self, timeout: float = 30) -> str:
        """Read until the process closes its stdout; all of its output."""
        deadline = time.monotonic() + timeout
        while self._read(deadline - time.monotonic()):
            if time.monotonic() > deadline:
                pytest.fail(f"still running after {timeout} s: {self.text!r}")
        return self.text


def _stop(proc: subprocess.Popen[str]) -> str:
    """Stop a process with SIGTERM (SIGKILL if it lingers); the rest of its stdout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def _server(args: list[str], log: Path, **env: str) -> subprocess.Popen[str]:
    """``python -m <args>``, its log (stderr) going to a file so it can never block."""
    with log.open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=_environ(**env),
        )


@pytest.fixture
def tws(tmp_path: Path) -> Iterator[int]:
    """The port of a fresh ``ibdata sim`` process (fresh: no pacing history is shared)."""
    proc = _server(["ibdata", "sim", "--port", "0"], tmp_path / "sim.log")
    try:
        yield int(_Stdout(proc).wait_for(r"listening on [\d.]+:(\d+)")[1])
    finally:
        _stop(proc)
    assert proc.returncode == 0, (tmp_path / "sim.log").read_text()


def run(
    script: str, *args: str, port: int, cwd: Path, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<script>`` against the TWS on ``port``; the finished process."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=_environ(IB_HOST="127.0.0.1", IB_PORT=str(port), **env),
        check=False,
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _minute_bars(out: str) -> int:
    """The number of bars year_of_minute_bars.py reports."""
    match = re.search(r"^([\d,]+) 1-minute bars of SPY$", out, re.M)
    assert match is not None, out
    return int(match[1].replace(",", ""))


def _weekdays(first: dt.date, stop: dt.date) -> int:
    """How many Mondays to Fridays lie in ``[first, stop)``."""
    days = (first + dt.timedelta(n) for n in range((stop - first).days))
    return sum(day.weekday() < 5 for day in days)


# ---------------------------------------------------------------------- the examples
def test_bars_to_dataframe_writes_the_simulators_bars(tws: int, tmp_path: Path) -> None:
    """bars_to_dataframe.py writes a year of AAPL daily bars, as the simulator serves them,
    to the CSV file named on its command line."""
    out = _ok(run("bars_to_dataframe.py", "aapl.csv", port=tws, cwd=tmp_path))
    with (tmp_path / "aapl.csv").open(newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header == ["time", "open", "high", "low", "close", "volume", "wap", "count"]
    assert 249 <= len(rows) <= 254  # a year of NYSE sessions (about 252), and the one that
    # holds the start of the year
    assert f"{len(rows)} daily bars of AAPL written to aapl.csv" in out
    with ibdata.Client("127.0.0.1", tws) as ib:
        bars = ib.get_historical_bars("AAPL", duration="1 Y", bar_size="1 day")
    # The newest bar may still be forming, so it is left out of the comparison.
    expected = [(f"{bar.time} 00:00:00+00:00", bar.close) for bar in bars][:-1]
    assert [(row[0], float(row[4])) for row in rows][:-1] == expected


def test_contract_lookup_prints_the_catalogs_contracts(tws: int, tmp_path: Path) -> None:
    """contract_lookup.py prints the conId, symbol and type of a stock and of a product code."""
    out = _ok(run("contract_lookup.py", "AAPL", "EURBBL", port=tws, cwd=tmp_path))
    with ibdata.Client("127.0.0.1", tws) as ib:
        (bund,) = ib.get_contract_details("EURBBL")
    aapl, bund_text = out.split("Euro-Bund")
    assert "APPLE INC" in aapl
    assert re.search(r"conId +265598\n", aapl)
    assert re.search(r"symbol +AAPL \(STK", aapl)
    assert re.search(rf"conId +{bund.contract.con_id}\n", bund_text)
    assert re.search(rf"symbol +GBL \(CONTFUT, local symbol {bund.contract.local_symbol}\)", out)
    assert re.search(rf"last trade date +{bund.contract.last_trade_date} ", bund_text)


def test_contract_lookup_fails_in_one_line(tws: int, tmp_path: Path) -> None:
    """contract_lookup.py exits 1 with IB's error 200 on one line for an unknown symbol."""
    proc = run("contract_lookup.py", "NOSUCHSYMBOL", port=tws, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: IB error 200")
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "script",
    ["bars_to_dataframe.py", "contract_lookup.py", "year_of_minute_bars.py", "futures_roll.py"],
)
def test_examples_without_tws_fail_in_one_line(script: str, tmp_path: Path) -> None:
    """With nothing listening on IB_PORT, an example exits 1 with a one-line message."""
    proc = run(script, "--help", port=0, cwd=tmp_path)  # every example has a --help
    assert proc.returncode == 0
    assert "usage:" in proc.stdout
    proc = run(script, port=_free_port(), cwd=tmp_path)
    assert proc.returncode == 1
    assert re.fullmatch(r"error: cannot connect to 127\.0\.0\.1:\d+: .+\n", proc.stderr)


def test_minute_bars_download_with_progress_into_the_cache(tws: int, tmp_path: Path) -> None:
    """year_of_minute_bars.py --days 5 downloads the range's 1-minute bars with a progress
    bar and leaves every finished bar in its cache file."""
    before = dt.datetime.now(UTC)
    proc = run(
        "year_of_minute_bars.py", "--days", "5", "--cache", "c.sqlite", port=tws, cwd=tmp_path
    )
    out = _ok(proc)
    count = _minute_bars(out)
    # SPY trades 04:00-20:00 New York time: at most 960 bars a session, and five days hold
    # parts of at most five sessions and always at least one.
    assert 0 < count <= 5 * 960
    span = re.search(r"^first (.+) UTC, last (.+) UTC$", out, re.M)
    assert span is not None, out
    start, end = (
        dt.datetime.strptime(t, "%Y-%m-%d %H:%M").replace(tzinfo=UTC) for t in span.groups()
    )
    assert before - dt.timedelta(days=5, minutes=1) <= start <= end <= dt.datetime.now(UTC)
    assert re.search(r"SPY: 100%\|.*\| (\d+)/\1 ", proc.stderr)  # tqdm's last state
    with ibdata.BarCache(tmp_path / "c.sqlite") as cache:
        cached = cache.info().bars
    # The cache holds whole requests: the bar still forming at the end is left out, and the
    # bar that began just before the start (not in the result) is kept.
    assert count - 1 <= cached <= count + 1


@pytest.mark.slow
def test_a_year_of_minute_bars(tws: int, tmp_path: Path) -> None:
    """year_of_minute_bars.py downloads a full year of SPY's 1-minute bars (hundreds of
    paced requests) and reports them."""
    out = _ok(
        run("year_of_minute_bars.py", "--cache", "c.sqlite", port=tws, cwd=tmp_path, timeout=110)
    )
    count = _minute_bars(out)
    # 960 bars a full session; a year holds about 252 NYSE sessions, a few of them ending
    # early (13:00 regular hours, 17:00 extended), the first and last partly inside.
    assert 248 * 960 <= count <= 253 * 960


def test_futures_roll_rolls_before_each_last_trade_date(tws: int, tmp_path: Path) -> None:
    """futures_roll.py prints one roll per quarter, each from one Bund contract month to the
    next, 5 business days before the old contract's last trade date in IB's details."""
    out = _ok(
        run(
            "futures_roll.py", "EURBBL", "--days", "365", "--roll-days", "5", port=tws, cwd=tmp_path
        )
    )
    rolls = re.findall(
        r"^roll on (\S+): (EURBBL\w+) -> (EURBBL\w+) \(\2 last trades (\S+)\)", out, re.M
    )
    assert len(rolls) in (4, 5)  # a year holds four or five quarterly rolls
    for (_, _, new, _), (_, old, _, _) in itertools.pairwise(rolls):
        assert old == new  # consecutive: each roll starts from the contract rolled into
    with ibdata.Client("127.0.0.1", tws) as ib:
        for day, old, _, last_trade in rolls:
            (details,) = ib.get_contract_details(old)
            expiry = dt.datetime.strptime(details.contract.last_trade_date, "%Y%m%d").date()
            assert last_trade == expiry.isoformat()
            roll = dt.date.fromisoformat(day)
            assert roll.weekday() < 5
            assert _weekdays(roll, expiry) == 5
    for _, old, new, _ in rolls:  # the next listed month: H -> M -> U -> Z -> H next year
        month, year = "HMUZ".index(old[6]), int(old[7:])
        following = ("H", year + 1) if month == 3 else ("HMUZ"[month + 1], year)
        assert (new[6], int(new[7:])) == following
    summary = re.search(r"^(\d+) daily bars from (\S+) \((\w+)\) to (\S+) \((\w+)\)$", out, re.M)
    assert summary is not None
    assert summary[3] == rolls[0][1]
    assert summary[5] == rolls[-1][2]
    assert 250 <= int(summary[1]) <= 258  # a year of Eurex sessions (about 255)


@contextmanager
def _monitor(port: int, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], _Stdout]]:
    """health_monitor.py polling every 0.1 s until interrupted, and its output."""
    with (tmp_path / "err").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "health_monitor.py"), "--interval", "0.1"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=_environ(IB_HOST="127.0.0.1", IB_PORT=str(port)),
        )
    try:
        yield proc, _Stdout(proc)
    finally:
        _stop(proc)


def test_health_monitor_prints_the_healthy_session(tws: int, tmp_path: Path) -> None:
    """health_monitor.py prints the status and every farm once, then nothing while nothing
    changes, and exits 0 on Ctrl-C because the session was healthy."""
    with _monitor(tws, tmp_path) as (proc, stdout):
        stdout.wait_for(r" farm usfarm ok$")
        time.sleep(1)  # ten polls that must print nothing
        proc.send_signal(signal.SIGINT)
        out = stdout.read_to_end()
        assert proc.wait(timeout=10) == 0, (tmp_path / "err").read_text()
    status, *farms = [line.split(" ", 1)[1] for line in out.splitlines()]
    assert status.startswith("status healthy (client id ")
    assert status.endswith(f", 127.0.0.1:{tws})")
    assert all(re.fullmatch(r"farm \w+ ok", line) for line in farms)
    assert len(set(farms)) == len(farms)
    assert {"farm usfarm ok", "farm ushmds ok", "farm secdefil ok"} <= set(farms)


def test_health_monitor_prints_an_outage(sim: Simulator, tmp_path: Path) -> None:
    """health_monitor.py prints the 1100 event, the broken farms and the degraded status of
    an outage, then the 1102 event and the healthy status again."""
    with _monitor(sim.port, tmp_path) as (proc, stdout):
        stdout.wait_for(r" farm usfarm ok$")
        sim.outage(duration=1.0)
        stdout.wait_for(r" event 1102 ")
        proc.send_signal(signal.SIGINT)
        out = stdout.read_to_end()
        assert proc.wait(timeout=10) == 0, (tmp_path / "err").read_text()
    lines = [line.split(" ", 1)[1] for line in out.splitlines()]

    def first(prefix: str, after: int = 0) -> int:
        found = [i for i, line in enumerate(lines) if i >= after and line.startswith(prefix)]
        assert found, f"no {prefix!r} after line {after} in {out}"
        return found[0]

    degraded = first("status degraded ")
    healthy = first("status healthy ", degraded)
    assert degraded < first("event 1100 ") < healthy < first("event 1102 ")
    broken = {line.split()[1] for line in lines[degraded:healthy] if line.endswith(" broken")}
    restored = {line.split()[1] for line in lines[healthy:] if line.endswith(" ok")}
    assert broken
    assert restored == broken


def test_health_monitor_fails_when_never_healthy(tmp_path: Path) -> None:
    """health_monitor.py keeps polling while nothing listens, then exits 1 saying the session
    never became healthy."""
    port = _free_port()
    proc = run("health_monitor.py", "--seconds", "1", port=port, cwd=tmp_path)
    assert proc.returncode == 1
    assert "not connected yet" in proc.stdout
    assert proc.stderr == f"error: the session to 127.0.0.1:{port} never became healthy\n"


def test_rest_client_talks_to_ibdata_serve(tws: int, tmp_path: Path) -> None:
    """rest_client.py fetches contract details and bars from ``ibdata serve`` with the bearer
    token, and exits 1 with the status on one line without it or for an unknown symbol."""
    serve = _server(
        ["ibdata", "serve", "--port", "0", "--ib-host", "127.0.0.1", "--ib-port", str(tws)],
        tmp_path / "serve.log",
        IBDATA_API_TOKEN="s3cret",
    )
    try:
        url = _Stdout(serve).wait_for(r"REST adapter on (http://\S+)")[1]
        proc = run(
            "rest_client.py", port=0, cwd=tmp_path, IBDATA_URL=url, IBDATA_API_TOKEN="s3cret"
        )
        out = _ok(proc)
        assert out.splitlines()[0].startswith(f"server {url}: session healthy, client id ")
        assert "APPLE INC: conId 265598, STK AAPL on SMART in USD" in out
        count = re.search(r"^(\d+) daily bars of AAPL in \d+ ms$", out, re.M)
        assert count is not None, out
        assert 19 <= int(count[1]) <= 24  # the sessions of one month
        assert len(re.findall(r"^\d{8} +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+$", out, re.M)) == 5

        proc = run("rest_client.py", port=0, cwd=tmp_path, IBDATA_URL=url)
        assert proc.returncode == 1
        assert proc.stderr == (
            "error: HTTP 401 from /ib/contract-details/AAPL: missing or wrong bearer token\n"
        )
        proc = run(
            "rest_client.py",
            "NOSUCHSYMBOL",
            port=0,
            cwd=tmp_path,
            IBDATA_URL=url,
            IBDATA_API_TOKEN="s3cret",
        )
        assert proc.returncode == 1
        assert proc.stderr.startswith(
            "error: HTTP 404 from /ib/contract-details/NOSUCHSYMBOL: IB error 200"
        )
        assert proc.stderr.count("\n") == 1
    finally:
        _stop(serve)
    assert serve.returncode == 0, (tmp_path / "serve.log").read_text()

    proc = run("rest_client.py", port=0, cwd=tmp_path, IBDATA_URL=url)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: cannot reach {url}: ")


def test_users_pytest_suite_passes(tmp_path: Path) -> None:
    """examples/test_with_simulator.py, a user's own pytest suite on the simulator, passes."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(EXAMPLES / "test_with_simulator.py"),
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=110,
        env=_environ(),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^3 passed", proc.stdout, re.M)
