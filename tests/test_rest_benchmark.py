"""The REST benchmark runs (``--quick``); it asserts no timings, and neither does this test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark_scripts import loaded_benchmark


def test_rest_speed_quick_run_writes_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``--quick`` run of the REST benchmark writes a row for each server and the target."""
    with loaded_benchmark("rest_speed") as bench:
        out = tmp_path / "r.md"
        assert bench.main(["--quick", "--old-client-id", "random", "--output", str(out)]) == 0

    text = out.read_text(encoding="utf-8")
    assert text in capsys.readouterr().out
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| server |"))
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("| "):
            break
        rows.append([cell.strip() for cell in line.split("|")[1:-1]])
    assert [row[0] for row in rows] == ["ibdata", "older design"]
    assert all(len(row) == 11 for row in rows)
    assert all(int(row[1].replace(",", "")) > 0 for row in rows)  # some answers were 200
    assert rows[1][-1] == "1.00x"
    assert "| whole handler |" in text
    assert "- cpus: " in text
    targets = [line for line in lines if line.endswith(("**met**.", "**missed**."))]
    assert len(targets) == 1
