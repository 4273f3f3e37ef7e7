"""The history-engine benchmark runs (``--quick``); it asserts no timings, and neither does this."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark_scripts import loaded_benchmark


def _rows(text: str) -> dict[str, list[str]]:
    """Table rows by their first cell."""
    return {
        cells[0]: cells[1:]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("|---")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }


def test_history_speed_quick_run_writes_every_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``--quick`` run of the history benchmark writes its pacing, cache and target rows."""
    out = tmp_path / "h.md"
    with loaded_benchmark("history_speed") as bench:
        assert bench.main(["--quick", "--output", str(out)]) == 0

    text = out.read_text(encoding="utf-8")
    assert text in capsys.readouterr().out
    rows = _rows(text)
    for name in (bench.IBDATA, bench.RECIPE, bench.RECIPE_ON):
        assert name in rows
    ours = rows[bench.IBDATA]
    assert ours[0] == str(bench.QUICK_REQUESTS)  # bar requests that reached the simulator
    assert ours[4] == "0"  # pacing violations
    assert ours[5].split(" of ")[0] == ours[5].split(" of ")[1]  # every bar of the range
    assert any(name.startswith("fastest the rules allow") for name in rows)
    assert any(name.startswith("the same with ibdata's 2% safety margin") for name in rows)
    assert bench.FIRST in rows
    repeat = next(cells for name, cells in rows.items() if name.startswith(bench.REPEAT))
    assert repeat[:2] == ["0", "0"]  # no request, no message reached the simulator
    assert "- cpus: " in text
    assert text.count("**met**") + text.count("**missed**") == 2
