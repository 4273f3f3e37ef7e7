"""``ibdata stream``, run as a real process against a simulator started in the test whose
clock runs 60 times faster than real time, so that a 1-minute bar ends about every second."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from ibdata.sim import Simulator
from tests.conftest import run_ibdata

UTC = dt.timezone.utc
MINUTE = dt.timedelta(minutes=1)
HEADER = ["time", "open", "high", "low", "close", "volume", "wap", "count"]


@pytest.fixture
def sim(fast_sim: Simulator) -> Simulator:
    """The simulator of these tests (conftest's ``fast_sim``)."""
    return fast_sim


class Streaming:
    """A running ``ibdata stream`` process: its stdout line by line, stderr in a file."""

    def __init__(self, proc: subprocess.Popen[str], stderr: IO[str]) -> None:
        self.proc = proc
        self._stderr = stderr
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        assert proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, out: IO[str]) -> None:
        for line in out:
            self._lines.put(line)
        self._lines.put("")  # end of output

    def line(self, timeout: float = 20) -> str:
        """The next line of stdout ("" at its end); the timeout only guards against a hang."""
        return self._lines.get(timeout=timeout)

    def lines(self, n: int) -> list[str]:
        got = [self.line() for _ in range(n)]
        assert "" not in got, f"output ended early: {got}; stderr: {self.stderr()}"
        return [line.rstrip("\n") for line in got]

    def interrupt(self) -> int:
        """Send SIGINT, as Ctrl-C does; the exit status."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=20)

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def stop(self) -> None:
        """Kill the process if it still runs, and close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=20)
        self._reader.join(20)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._stderr.close()


@pytest.fixture
def stream(sim: Simulator, tmp_path: Path) -> Iterator[Callable[..., Streaming]]:
    """Start ``python -m ibdata stream ARGS --port <sim>`` (killed after the test if still
    running)."""
    started: list[Streaming] = []

    def start(*args: str) -> Streaming:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IB_", "IBDATA_"))}
        stderr = (tmp_path / f"stderr-{len(started)}.txt").open("w+", encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ibdata", "stream", *args, "--port", str(sim.port)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
        started.append(Streaming(proc, stderr))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def minute_ago(sim: Simulator, minutes: int) -> str:
    """The start of the simulator's minute ``minutes`` before the current one, ISO 8601."""
    now = sim.clock.now().replace(second=0, microsecond=0)
    return (now - minutes * MINUTE).strftime("%Y-%m-%dT%H:%M:%SZ")


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Wait for ``predicate``; the deadline only guards against a hang."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def assert_interrupted(s: Streaming, sim: Simulator) -> None:
    """Ctrl-C ends the command with status 130 and one line, no traceback, and the
    subscription is gone at the simulator."""
    assert s.interrupt() == 130
    err = s.stderr()
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["ibdata: interrupted"]
    until(lambda: sim.live_subscriptions == 0)


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("form", ["table", "csv"])
def test_table_and_csv_print_a_header_once_then_each_bar(
    stream: Callable[..., Streaming], sim: Simulator, form: str
) -> None:
    """``table`` and ``csv`` print their header once, then one line per final bar, oldest
    first, from --start on with no gap and no duplicate; Ctrl-C exits 130."""
    start = minute_ago(sim, 2)
    s = stream("AAPL", "--bar-size", "1 min", "--start", start, "--format", form)
    header, *rows = s.lines(5)
    if form == "csv":
        assert header.split(",") == HEADER
        parsed = list(csv.reader(rows))
        assert all(len(row) == len(HEADER) for row in parsed)
        times = [row[0] for row in parsed]
    else:
        assert header.split() == HEADER
        assert all(len(row.split()) == len(HEADER) for row in rows)
        times = [row.split()[0] for row in rows]
    assert [instant(t) for t in times] == [instant(start) + k * MINUTE for k in range(4)]
    assert_interrupted(s, sim)


def test_jsonl_prints_one_object_per_bar(stream: Callable[..., Streaming], sim: Simulator) -> None:
    """``jsonl`` prints one JSON object per bar, with the keys of ``bars --format json`` and
    no ``final`` key without --partial."""
    start = minute_ago(sim, 2)
    s = stream("AAPL", "--bar-size", "1 min", "--start", start, "--format", "jsonl")
    bars = [json.loads(line) for line in s.lines(3)]
    assert [list(bar) for bar in bars] == [HEADER] * 3
    assert [instant(b["time"]) for b in bars] == [instant(start) + k * MINUTE for k in range(3)]
    assert all(isinstance(b["volume"], int) for b in bars)
    assert_interrupted(s, sim)


@pytest.mark.parametrize("form", ["csv", "jsonl"])
def test_partial_adds_the_final_column(
    stream: Callable[..., Streaming], sim: Simulator, form: str
) -> None:
    """With --partial the bar still forming is printed after every update with final
    false, and once it ends with final true (csv: a ``final`` column; jsonl: a key)."""
    s = stream("AAPL", "--bar-size", "1 min", "--partial", "--format", form)
    if form == "csv":
        assert s.lines(1) == [",".join([*HEADER, "final"])]
    rows: list[tuple[str, str]] = []
    while not rows or rows[-1][1] != "true" or len(rows) < 2:
        (line,) = s.lines(1)
        if form == "csv":
            fields = line.split(",")
            rows.append((fields[0], fields[-1]))
        else:
            bar = json.loads(line)
            assert list(bar) == [*HEADER, "final"]
            rows.append((bar["time"], "true" if bar["final"] is True else "false"))
    ended, _ = rows[-1]
    assert (ended, "false") in rows  # it was printed while it formed
    assert {final for _, final in rows} == {"true", "false"}
    assert_interrupted(s, sim)


def test_verbose_prints_the_stream_events_on_stderr(
    stream: Callable[..., Streaming], sim: Simulator
) -> None:
    """With -v each stream event is one line ``# kind: detail`` on stderr; without it,
    none."""
    quiet = stream("AAPL", "--bar-size", "1 min", "--format", "csv")
    quiet.lines(2)
    loud = stream("AAPL", "--bar-size", "1 min", "--format", "csv", "-v")
    loud.lines(2)
    assert quiet.interrupt() == 130
    assert loud.interrupt() == 130
    assert "# " not in quiet.stderr()
    assert "\n# subscribed: keepUpToDate" in "\n" + loud.stderr()


# --------------------------------------------------------------------------- errors


def test_an_error_that_ends_the_stream_exits_1(
    stream: Callable[..., Streaming], sim: Simulator
) -> None:
    """When the permission is withdrawn mid-stream the command prints the one-line error
    and exits 1, as for any error ibdata raises."""
    s = stream("AAPL", "--bar-size", "1 min", "--format", "jsonl")
    s.lines(1)
    assert sim.revoke_permission("AAPL") == 1
    while s.line():  # the bars it had, then the end
        pass
    assert s.proc.wait(timeout=20) == 1
    err = s.stderr().strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("ibdata: ")
    assert "permission" in err[0].lower()


def test_an_unknown_symbol_exits_1(sim: Simulator) -> None:
    """An unknown symbol is the one-line error with exit status 1."""
    out = run_ibdata("stream", "ZZZZ", "--bar-size", "1 min", "--port", str(sim.port))
    assert out.returncode == 1
    assert out.stderr.startswith("ibdata: IB error 200")
    assert out.stdout == ""


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--bar-size", "1 secs"], "--bar-size"),
        (["--bar-size", "1 fortnight"], "--bar-size"),
        ([], "--bar-size"),
        (["--bar-size", "1 min", "--what-to-show", "BID_ASK"], "--what-to-show"),
        (["--bar-size", "1 min", "--start", "2025-03-12T10:00"], "--start"),
        (["--bar-size", "1 min", "--lookback", "0"], "--lookback"),
        (["--bar-size", "1 min", "--lookback", "60", "--start", "2025-03-12"], "--start"),
        (["--bar-size", "1 min", "--stall-after", "-1"], "--stall-after"),
        (["--bar-size", "1 min", "--format", "json"], "--format"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], named: str) -> None:
    """A bad option is argparse's usage error (exit 2) naming it, before connecting."""
    out = run_ibdata("stream", "AAPL", *args, "--port", "1")
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("usage: ibdata stream")
    assert named in out.stderr.splitlines()[-1]


def test_help_describes_the_command() -> None:
    """``ibdata stream --help`` says what it does and lists its options."""
    out = run_ibdata("stream", "--help")
    assert out.returncode == 0
    description = out.stdout.split("options:")[0]
    assert "Live bars" in description
    assert "Ctrl-C" in description
    for option in ("--bar-size", "--start", "--lookback", "--partial", "--stall-after"):
        assert option in out.stdout
