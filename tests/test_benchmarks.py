"""The benchmark scripts run (``--quick``); they assert no timings, and neither do these tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark_scripts import loaded_benchmark


def test_sim_throughput_quick_run_writes_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``--quick`` run of the simulator-throughput benchmark writes a table with every row."""
    out = tmp_path / "sim_throughput.md"
    with loaded_benchmark("sim_throughput") as bench:
        assert bench.main(["--quick", "--output", str(out)]) == 0

    text = out.read_text(encoding="utf-8")
    assert text in capsys.readouterr().out
    rows = {
        line.split("|")[1].strip(): line
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| component")
    }
    assert set(rows) == {
        "simulator, sv 178: request → complete frame",
        "simulator, sv 178, session cache off: request → complete frame",
        "ib_async 2.1.0: split frame into fields",
        "ib_async 2.1.0: Decoder.interpret",
        "ib_async 2.1.0: split + interpret + parseIBDatetime",
        "simulator, sv 157: request → complete frame",
        "ibapi 9.81.1: comm.read_fields",
        "ibapi 9.81.1: Decoder.interpret",
        "ibapi 9.81.1: read_fields + interpret",
    }
    bars = {int(line.split("|")[2].strip().replace(",", "")) for line in rows.values()}
    assert len(bars) == 1
    assert 1_000 <= bars.pop() <= 10_000  # --quick asks for about 5,000 bars
    assert "- cpus: " in text
    assert text.count("- Simulator ") == 4
