"""The client benchmark runs (``--quick``); it asserts no timings, and neither does this test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark_scripts import loaded_benchmark


def test_client_speed_quick_run_writes_every_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``--quick`` run of the client benchmark writes every row of its three tables."""
    with loaded_benchmark("client_speed") as bench:
        out = tmp_path / "x.md"
        assert bench.main(["--quick", "--output", str(out)]) == 0

    text = out.read_text(encoding="utf-8")
    assert text in capsys.readouterr().out
    tables: list[tuple[str, list[str]]] = []  # (first column's title, first cells)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        first = line.split("|")[1].strip() if line.startswith("| ") else None
        if first is not None and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            tables.append((first, []))
        elif first is not None:
            tables[-1][1].append(first)
    client_tables = [rows for title, rows in tables if title == "client"]
    assert len(client_tables) == 3
    details, bars, memory = client_tables
    assert details == [
        "ibdata",
        "ibdata connection only (diagnostic)",
        "ibdata connection + model (diagnostic)",
        "raw ibapi 9.81.1",
        "ib_async 2.1.0",
    ]
    clients = ["ibdata", "raw ibapi 9.81.1", "ib_async 2.1.0", "ib_async 2.1.0, formatDate=1"]
    assert bars == clients
    assert memory == clients
    assert "| ibdata | 4,800 |" in text  # --quick asks for one week: 4,800 bars
    assert "- cpus: " in text
    targets = [line for line in text.splitlines() if line.endswith(("**met**.", "**missed**."))]
    assert len(targets) == 4
