"""The data commands of ``ibdata`` (bars, contract, products, health), run as real processes
against a simulator started in the test."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ibdata import Client
from ibdata.sim import Simulator
from tests.conftest import run_ibdata

#: The simulator's clock is 2025-03-12 15:00 UTC; the CLI's "now" is the real date, so
#: stock requests give an explicit end.
END = "2025-03-12T15:00:00Z"
HEADER = ["time", "open", "high", "low", "close", "volume", "wap", "count"]
DATE = re.compile(r"\d{4}-\d\d-\d\d")
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator without pacing: each test's processes repeat identical requests."""
    return sim_factory(pacing=None)


@pytest.fixture
def ibdata(tmp_path: Path) -> Run:
    """Run ``python -m ibdata ARGS`` with no IB_* variables and the cache in tmp_path."""
    return functools.partial(run_ibdata, cache=tmp_path / "default-cache.sqlite")


def at(sim: Simulator) -> list[str]:
    """The connection options for ``sim``."""
    return ["--host", "127.0.0.1", "--port", str(sim.port)]


def one_error_line(err: str) -> str:
    """The single ``ibdata: ...`` line on stderr, asserting there is nothing else."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ibdata: "), err
    assert "Traceback" not in err
    return lines[0]


def free_port() -> int:
    """A TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --------------------------------------------------------------------------- bars
def test_bars_table_shows_a_week_of_daily_bars_by_session_date(sim: Simulator, ibdata: Run) -> None:
    """``bars --bar-size '1 day' --duration '1 W'`` prints a header and six dated rows: the
    week's five sessions and, as real TWS answers, the one holding the window's start."""
    out = ibdata("bars", "AAPL", *at(sim), "--duration", "1 W", "--bar-size", "1 day", "--end", END)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == HEADER
    assert len(lines) == 7
    dates = [line.split()[0] for line in lines[1:]]
    assert (dates[0], dates[-1]) == ("2025-03-05", "2025-03-12")
    assert all(DATE.fullmatch(line.split()[0]) for line in lines[1:])


def test_bars_csv_and_json_carry_the_clients_values(sim: Simulator, ibdata: Run) -> None:
    """CSV and JSON output hold exactly the bars ``Client.get_historical_bars`` returns."""
    args = ("bars", "AAPL", *at(sim), "--duration", "1 W", "--bar-size", "1 day", "--end", END)
    as_csv = ibdata(*args, "--format", "csv")
    as_json = ibdata(*args, "--format", "json")
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_json.returncode == 0, as_json.stderr
    with Client(sim.host, sim.port, timeout=20) as ib:
        end = dt.datetime(2025, 3, 12, 15, tzinfo=dt.timezone.utc)
        bars = ib.get_historical_bars("AAPL", duration="1 W", bar_size="1 day", end=end)
    expected = [{**row, "time": row["time"].isoformat()} for row in bars.to_dicts()]
    assert len(expected) == 6

    assert json.loads(as_json.stdout) == expected
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == HEADER
    parsed = [
        {
            "time": r[0],
            **{name: float(value) for name, value in zip(HEADER[1:7], r[1:7], strict=True)},
            "count": int(r[7]),
        }
        for r in rows[1:]
    ]
    assert parsed == expected
    assert all(DATE.fullmatch(r[0]) for r in rows[1:])


def test_intraday_bar_times_are_utc_with_z(sim: Simulator, ibdata: Run) -> None:
    """Hourly bars are stamped ``YYYY-MM-DDTHH:MM:SSZ``, oldest first, before --end."""
    out = ibdata("bars", "AAPL", *at(sim), "--end", END, "--format", "json")
    assert out.returncode == 0, out.stderr
    bars = json.loads(out.stdout)
    assert bars
    times = [b["time"] for b in bars]
    assert all(INSTANT.fullmatch(t) for t in times)
    assert times == sorted(times)
    assert times[-1] < END


def test_bars_output_file(sim: Simulator, ibdata: Run, tmp_path: Path) -> None:
    """``-o FILE`` writes the output to FILE and nothing to stdout."""
    target = tmp_path / "aapl.csv"
    out = ibdata(
        "bars", "AAPL", *at(sim), "--duration", "1 W", "--bar-size", "1 day", "--end", END,
        "--format", "csv", "-o", str(target),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0] == HEADER
    assert len(rows) == 7  # the header and six sessions


def test_range_download_is_cached_between_runs(sim: Simulator, ibdata: Run, tmp_path: Path) -> None:
    """A ``--start/--end`` range run twice on one ``--cache`` file asks IB only the first time."""
    cache = tmp_path / "cache" / "bars.sqlite"
    args = (
        "bars", "MSFT", *at(sim), "--start", "2025-03-03", "--end", "2025-03-08",
        "--bar-size", "5 mins", "--format", "csv", "--cache", str(cache),
    )  # fmt: skip
    first = ibdata(*args, "--progress")
    assert first.returncode == 0, first.stderr
    assert "100%" in first.stderr  # the forced progress bar
    requests = len(sim.received.find("reqHistoricalData"))
    assert requests > 0
    assert cache.exists()
    second = ibdata(*args)
    assert second.returncode == 0, second.stderr
    assert second.stderr == ""  # no progress bar without a terminal
    assert len(sim.received.find("reqHistoricalData")) == requests
    assert second.stdout == first.stdout
    rows = list(csv.reader(io.StringIO(first.stdout)))[1:]
    assert rows
    assert rows[0][0] >= "2025-03-03T00:00:00Z"
    assert rows[-1][0] < "2025-03-08T00:00:00Z"


# --------------------------------------------------------------------------- contract
def test_contract_of_a_stock(sim: Simulator, ibdata: Run) -> None:
    """``contract AAPL`` shows AAPL's conId 265598."""
    out = ibdata("contract", "AAPL", *at(sim))
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()
    assert header.split()[:3] == ["con_id", "symbol", "sec_type"]
    assert row.split()[:3] == ["265598", "AAPL", "STK"]


def test_contract_of_a_product_code_as_json(sim: Simulator, ibdata: Run) -> None:
    """``contract EURBBL --format json`` gives the Bund's continuous future, GBL CONTFUT."""
    out = ibdata("contract", "EURBBL", *at(sim), "--format", "json")
    assert out.returncode == 0, out.stderr
    (details,) = json.loads(out.stdout)
    contract = details["contract"]
    assert (contract["symbol"], contract["sec_type"]) == ("GBL", "CONTFUT")
    assert contract["exchange"] == "EUREX"
    assert contract["trading_class"] == "FGBL"
    assert details["long_name"]


# --------------------------------------------------------------------------- products
def test_products_lists_the_registry(ibdata: Run) -> None:
    """``products`` lists the eight built-in codes in every format, without a connection."""
    codes = ["EURBBL", "EURBND", "EURSCA", "ITB10Y", "UKGB", "UST05Y", "UST10Y", "UST30Y"]
    table = ibdata("products")
    assert table.returncode == 0, table.stderr
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == codes
    as_json = json.loads(ibdata("products", "--format", "json").stdout)
    assert [p["code"] for p in as_json] == codes
    assert as_json[0]["symbol"] == "GBL"
    rows = list(csv.reader(io.StringIO(ibdata("products", "--format", "csv").stdout)))
    assert [r[0] for r in rows[1:]] == codes


# --------------------------------------------------------------------------- health
def test_health_of_a_running_session_exits_0(sim: Simulator, ibdata: Run) -> None:
    """``health`` finds TWS through IB_HOST/IB_PORT, prints "healthy" and exits 0."""
    out = ibdata(
        "health",
        "--format",
        "json",
        extra_env={"IB_HOST": "127.0.0.1", "IB_PORT": str(sim.port)},
    )
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["status"] == "healthy"
    assert record["port"] == sim.port
    assert record["accounts"] == ["DU1234567"]
    assert record["login_time_zone"] == {"name": "UTC", "zone": "Etc/UTC", "certainty": "exact"}


def test_health_options_win_over_the_environment(sim: Simulator, ibdata: Run) -> None:
    """``--port`` overrides ``IB_PORT``."""
    out = ibdata("health", *at(sim), extra_env={"IB_PORT": str(free_port())})
    assert out.returncode == 0, out.stderr
    assert re.search(r"^status: +healthy$", out.stdout, re.MULTILINE)
    assert re.search(
        r"^login_time_zone: +name=UTC, zone=Etc/UTC, certainty=exact$", out.stdout, re.MULTILINE
    )


def test_health_without_tws_exits_1_with_one_line(ibdata: Run) -> None:
    """Against a port where nothing listens, ``health`` says why in one line and exits 1."""
    port = free_port()
    out = ibdata("health", "--port", str(port), "--connect-timeout", "5")
    assert out.returncode == 1
    line = one_error_line(out.stderr)
    assert f"127.0.0.1:{port}" in line
    assert re.search(r"^status: +disconnected$", out.stdout, re.MULTILINE)


# --------------------------------------------------------------------------- errors
def test_unknown_symbol_is_one_line_and_exit_1(sim: Simulator, ibdata: Run) -> None:
    """IB's error 200 is reported as one stderr line, exit status 1, no traceback."""
    out = ibdata("bars", "NOSUCHSYMBOL", *at(sim), "--end", END)
    assert out.returncode == 1
    line = one_error_line(out.stderr)
    assert "200" in line
    assert "No security definition" in line
    assert out.stdout == ""


def test_debug_shows_the_traceback(sim: Simulator, ibdata: Run) -> None:
    """``--debug`` (before or after the command) prints the traceback, then the same line."""
    for args in (("--debug", "contract", "NOSUCHSYMBOL"), ("contract", "NOSUCHSYMBOL", "--debug")):
        out = ibdata(*args, *at(sim))
        assert out.returncode == 1
        assert "Traceback (most recent call last)" in out.stderr
        assert "ContractNotFoundError" in out.stderr
        assert out.stderr.strip().splitlines()[-1].startswith("ibdata: IB error 200")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--bar-size", "7 mins"), "bar_size must be one of"),
        (("--duration", "2 days"), "duration must be"),
        (("--start", "yesterday"), "not an ISO 8601 date or time"),
        (("--start", "2025-03-03", "--duration", "1 D"), "not allowed with"),
        (("--what-to-show", "PRICES"), "what_to_show must be one of"),
    ],
)
def test_bad_arguments_are_usage_errors(ibdata: Run, args: tuple[str, ...], needle: str) -> None:
    """A bad value is refused with exit status 2 and a message naming it, before connecting."""
    out = ibdata("bars", "AAPL", "--port", str(free_port()), *args)
    assert out.returncode == 2
    assert needle in out.stderr
    assert "Traceback" not in out.stderr


def test_range_ending_before_it_starts_is_exit_1(sim: Simulator, ibdata: Run) -> None:
    """A range whose end is not after its start is refused in one line with status 1."""
    out = ibdata("bars", "AAPL", *at(sim), "--start", "2025-03-05", "--end", "2025-03-04")
    assert out.returncode == 1
    assert "must be before end" in one_error_line(out.stderr)
    assert sim.received.find("reqHistoricalData") == []


# --------------------------------------------------------------------------- range limits
#: 36 hours of 1-second bars: 72 requests of 30 minutes each.
SECONDS = ("--bar-size", "1 secs", "--start", "2025-03-10", "--end", "2025-03-11T12:00Z")


def test_dry_run_prints_the_plan_and_requests_no_bars(sim: Simulator, ibdata: Run) -> None:
    """``--dry-run`` prints the requests, their windows and the least time IB's pacing
    rules allow (60 requests per ten minutes: the 73rd, after the head timestamp, goes at
    10 min 4 s), exits 0 and sends no historical request."""
    out = ibdata("bars", "AAPL", *at(sim), *SECONDS, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "72 requests to IB (at least 10 min 4 s under its pacing rules)" in out.stdout
    assert "2025-03-11T11:30:00Z  2025-03-11T12:00:00Z" in out.stdout
    assert sim.received.find("reqHistoricalData") == []
    assert sim.received.find("reqHeadTimeStamp") == []
    as_json = ibdata("bars", "AAPL", *at(sim), *SECONDS, "--dry-run", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    plan = json.loads(as_json.stdout)
    assert plan["requests"] == len(plan["chunks"]) == 72
    assert plan["minimum_seconds"] == 604.0
    assert plan["head_timestamp_request"] is True
    assert sim.received.find("reqHistoricalData") == []


def test_a_range_over_max_requests_is_refused_in_the_clis_terms(
    sim: Simulator, ibdata: Run
) -> None:
    """A range needing more than ``--max-requests`` is one error line naming the flag, the
    requests and the time, exit status 1, with no historical request sent; 400 is the
    default."""
    out = ibdata("bars", "AAPL", *at(sim), *SECONDS, "--max-requests", "60")
    assert out.returncode == 1
    line = one_error_line(out.stderr)
    assert "72 requests to IB (at least 10 min 4 s under its pacing rules)" in line
    assert "more than --max-requests 60 allows" in line
    assert "max_requests" not in line
    assert sim.received.find("reqHistoricalData") == []
    nine_days = ("--bar-size", "1 secs", "--start", "2025-03-01", "--end", "2025-03-10")
    out = ibdata("bars", "AAPL", *at(sim), *nine_days)
    assert out.returncode == 1
    assert "432 requests to IB" in one_error_line(out.stderr)
    assert "--max-requests 400" in out.stderr
    assert sim.received.find("reqHistoricalData") == []


def test_a_cached_range_plans_no_requests(sim: Simulator, ibdata: Run) -> None:
    """After a download, ``--dry-run`` of the same range plans 0 requests; ``--max-requests
    0`` sets no limit."""
    week = ("--bar-size", "1 hour", "--start", "2025-03-03", "--end", "2025-03-08")
    first = ibdata("bars", "AAPL", *at(sim), *week, "--dry-run", "--format", "json")
    assert json.loads(first.stdout)["requests"] == 1
    got = ibdata("bars", "AAPL", *at(sim), *week, "--max-requests", "0", "--format", "csv")
    assert got.returncode == 0, got.stderr
    assert len(sim.received.find("reqHistoricalData")) == 1
    out = ibdata("bars", "AAPL", *at(sim), *week, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "0 requests to IB (at least 0 s under its pacing rules)" in out.stdout
    assert len(sim.received.find("reqHistoricalData")) == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--max-requests", "-1", "--start", "2025-03-03"), "must be 0 (no limit) or more"),
        (("--max-requests", "many", "--start", "2025-03-03"), "not an integer"),
        (("--dry-run", "--duration", "1 D"), "--dry-run plans a --start range"),
    ],
)
def test_bad_limits_are_usage_errors(ibdata: Run, args: tuple[str, ...], needle: str) -> None:
    """A negative or non-integer ``--max-requests``, or ``--dry-run`` without ``--start``, is
    a usage error (exit 2) before connecting."""
    out = ibdata("bars", "AAPL", "--port", str(free_port()), *args)
    assert out.returncode == 2
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
