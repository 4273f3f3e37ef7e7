"""The benchmark scripts run (``--quick``); they assert no timings, and neither do these tests."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

import ibdata
from tests.benchmark_scripts import loaded_benchmark, markdown_table


def test_sim_throughput_quick_run_writes_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``--quick`` run of the simulator-throughput benchmark writes a table with every row."""
    out = tmp_path / "sim_throughput.md"
    with loaded_benchmark("sim_throughput") as bench:
        assert bench.main(["--quick", "--output", str(out)]) == 0

    text = out.read_text(encoding="utf-8")
    assert text in capsys.readouterr().out
    ibapi = ibdata.ibapi_release().version
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
        f"ibapi {ibapi}: comm.read_fields",
        f"ibapi {ibapi}: Decoder.interpret",
        f"ibapi {ibapi}: read_fields + interpret",
    }
    bars = {int(line.split("|")[2].strip().replace(",", "")) for line in rows.values()}
    assert len(bars) == 1
    assert 1_000 <= bars.pop() <= 10_000  # --quick asks for about 5,000 bars
    assert "- cpus: " in text
    assert text.count("- Simulator ") == 4


def test_run_quick_writes_every_comparison_and_the_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``--quick`` run of ``run.py`` writes a table with every comparison's rows, each with
    a figure, and a PNG chart."""
    with loaded_benchmark("run") as bench:
        assert bench.main(["--quick", "--output-dir", str(tmp_path)]) == 0

    text = (tmp_path / "benchmarks-latest.md").read_text(encoding="utf-8")
    assert text in capsys.readouterr().out
    rows = markdown_table(text, "| comparison |")
    assert all(len(row) == 6 for row in rows)
    found = {(row[0].split(" (")[0], row[1]) for row in rows}
    clients = ["ibdata", "raw ibapi 9.81.1", "ib_async 2.1.0"]
    history = ["ib_async docs loop", "ib_async docs loop, past empty answers"]
    sleeper = "ib_async docs loop, sleeping between requests"
    rest = ["connection per request, client id 1", "connection per request, random client id"]
    expected = {
        *(("Connect", c) for c in [*clients, "ib_async 2.1.0, readonly, fetchFields=0"]),
        *(("Small request", c) for c in clients),
        *(("One large response", c) for c in [*clients, "ib_async 2.1.0, formatDate=1"]),
        *(("Memory per bar", c) for c in [*clients, "ib_async 2.1.0, formatDate=1"]),
        *(("Many requests at once", c) for c in [*clients, "ib_async 2.1.0, its default throttle"]),
        *(
            ("History engine: share of the range", c)
            for c in ["ibdata history engine", *history, sleeper]
        ),
        ("History engine: time for the range", "ibdata history engine"),
        ("History engine: time for the range", "fastest the rules allow (answers taking no time)"),
        ("History engine: time for the range", sleeper),
        ("Cache: a repeated range", "ibdata, from the cache"),
        ("Cache: a repeated range", "ibdata, downloading it"),
        *(("REST throughput", c) for c in ["ibdata REST adapter", *rest]),
    }
    assert found == expected
    assert len(rows) == len(expected)
    for row in rows:
        assert re.fullmatch(r"[\d,]+(\.\d+)?(%| [a-z/]+)", row[2]), row  # the median
        if row[1] not in rest:  # the older design may answer nothing in a quick round
            assert re.fullmatch(r"[\d,]+(\.\d+)?x", row[4]), row  # ibdata's advantage
    by = {(row[0].split(" (")[0], row[1]): row for row in rows}
    ours = by["History engine: share of the range", "ibdata history engine"]
    assert ours[2] == "100.0%"
    assert " 0 pacing violations" in ours[5]
    assert by["Cache: a repeated range", "ibdata, from the cache"][5].startswith(
        "0 messages to the simulator; same bars: yes"
    )
    assert "| One large response (4,800 bars) | ibdata |" in text
    assert "- cpus: " in text

    png = (tmp_path / "benchmarks.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert width >= 800
    assert height >= 400
