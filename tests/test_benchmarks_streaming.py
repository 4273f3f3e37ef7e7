"""The live-bars benchmark runs (``--quick``): simulators in processes of their own, ibdata's
streams, a framing-only reference and ``ib_async``. It asserts no timings, and neither does
this test: only that every row is there, that every stream equalled history, and that
ibdata's stream lost, repeated and invented no bar in the fault script."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.benchmark_scripts import loaded_benchmark, markdown_table

READERS = [
    "ibdata, iterated (a thread per stream)",
    "framing only (reference)",
]


def test_streaming_quick_run_writes_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``--quick`` run writes the three tables with every row; every ibdata stream equals
    a later history download, and in the fault script ibdata's stream has every bar once."""
    out = tmp_path / "streaming.md"
    with loaded_benchmark("streaming") as bench:
        assert bench.main(["--quick", "--write-table", str(out)]) == 0

    text = out.read_text(encoding="utf-8")
    assert text in capsys.readouterr().out
    assert "- cpus: " in text

    cases = [("1 min", "60x", "1"), ("5 secs", "12x", "1"), ("1 min", "60x", "50")]
    expected = [(*c, r) for c in cases for r in READERS]
    expected.insert(5, ("1 min", "60x", "50", "ibdata, `on_bar`"))
    latency = markdown_table(text, "| bar size | clock speed | streams | reader | bars |")
    assert [tuple(row[:4]) for row in latency] == expected
    for row in latency:
        assert int(row[4].replace(",", "")) > 0, row  # some bars in the window
        assert re.fullmatch(r"-?[\d.]+ ms", row[5]), row
        assert row[-1] == ("—" if row[3].startswith("framing") else "yes"), row

    cpu = markdown_table(text, "| bar size | clock speed | streams | reader | window |")
    assert [tuple(row[:4]) for row in cpu] == expected
    for row in cpu:
        assert re.fullmatch(r"\d+ µs", row[8]), row

    faults = markdown_table(text, "| library | final bars expected |")
    assert [row[0] for row in faults] == ["ibdata", "ib_async 2.1.0"]
    ours = faults[0]
    assert int(ours[1]) >= 20
    assert ours[1:] == [ours[1], ours[1], "0", "0", "0"]  # received all, lost/dup/wrong none

    script = markdown_table(text, "| fault | simulator time |")
    assert [row[0] for row in script] == [
        "before the first fault",
        "1100, then 1102 (data maintained)",
        "HMDS farm broken (2105), then OK (2106)",
        "stall (new subscriptions work half a bar later)",
        "nightly reset with 10182",
        "nightly reset without 10182",
        "dropped connection",
    ]
    for row in script[1:]:
        assert row[4] != "—", row  # ibdata resubscribed after every fault
        assert row[5] == "0, 0", row
