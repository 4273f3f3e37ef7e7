"""The sharing benchmark runs (``--quick``) on SQLite and on a real PostgreSQL. It asserts no
timings, and neither does this test: only that every row is there and that the simulators
saw no pacing violation and no historical request a store should have served."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.benchmark_scripts import loaded_benchmark, markdown_table
from tests.pg_fixtures import PostgresServer

STORES = ["SQLite file", "PostgreSQL"]


def test_sharing_quick_run_writes_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_server: PostgresServer
) -> None:
    """A ``--quick`` run writes the three tables with every row, and its simulators saw no
    pacing violation: processes sharing a login through a store keep IB's rules together."""
    out = tmp_path / "sharing.md"
    with loaded_benchmark("sharing") as bench:
        argv = ["--quick", "--postgres", postgres_server.url, "--output", str(out)]
        assert bench.main(argv) == 0

    text = out.read_text(encoding="utf-8")
    assert text in capsys.readouterr().out
    assert "- cpus: " in text

    rates = markdown_table(text, "| store | processes |")
    assert [(row[0], row[1]) for row in rates] == [(s, p) for s in STORES for p in "124"]
    for row in rates:
        assert len(row) == 12, row
        assert row[2] == "64", row  # every chunk requested once, by one of the processes
        assert row[-1] == "0", row  # pacing violations
        assert re.fullmatch(r"\d+\.\d%", row[6]), row

    year = markdown_table(text, "| operation | store |")
    kinds = [
        "`store.load` over the range",
        "`Client.get_historical_bars` from the store",
        "download from the simulator into the store (IB's rules, real time)",
    ]
    expected = [(kind, store) for kind in kinds for store in STORES]
    assert [(row[0], row[1]) for row in year[:-1]] == expected
    assert year[-1][0].startswith("least time IB's rules allow for the download's 14 requests")
    assert len({row[2] for row in year}) == 1  # every read returned the downloaded bars
    assert "sent 0 historical requests to the simulator while reading" in text
    assert "Pacing violations during part 2: 0." in text

    ledger = markdown_table(text, "| pacer | request |")
    pacers = ["in-memory Pacer (no store)", *(f"SharedPacer, {s}" for s in STORES)]
    requests = ["1 min bars (no rule counts it)", "1 secs bars (counted)"]
    assert [(row[0], row[1]) for row in ledger] == [(p, r) for p in pacers for r in requests]
    for row in ledger:
        assert row[2] == "120", row
        assert re.fullmatch(r"[\d.,]+ (µs|ms|s)", row[3]), row
