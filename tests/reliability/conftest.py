"""Fixtures of the reliability suite: every test here is marked ``slow``, and records figures.

A test records what it measured (cycles survived, the slowest failure detection, a timeout's
error, requests held under load, inputs tried) with the ``figures`` fixture. The figures of
a run are printed at the end of the pytest report only when asked (``-v``, or
``IBDATA_FIGURES`` set) and, when ``IBDATA_FIGURES`` names a file, written there as JSON;
``docs/reliability.md`` quotes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

_RECORDED: list[dict[str, str]] = []


class Figures:
    """Records the figures one test measured, under the test's name."""

    def __init__(self, test: str) -> None:
        self.test = test

    def record(self, figure: str, value: object) -> None:
        """Record one figure, e.g. ``record("cycles survived", 100)``."""
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        _RECORDED.append({"test": self.test, "figure": figure, "value": text})


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """The recorder of this test's figures."""
    return Figures(request.node.name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this directory ``slow``, so ``-m "not slow"`` skips the suite."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the run's figures when asked (``-v`` or ``IBDATA_FIGURES``), and write them to
    the file ``IBDATA_FIGURES`` names; a plain run stays quiet (they ran to ~100 lines)."""
    if not _RECORDED:
        return
    target = os.environ.get("IBDATA_FIGURES")
    if target is None and terminalreporter.config.get_verbosity() < 1:
        return
    terminalreporter.section("reliability figures")
    for row in _RECORDED:
        terminalreporter.write_line(f"{row['test']}: {row['figure']} = {row['value']}")
    if target:
        Path(target).write_text(json.dumps(_RECORDED, indent=2) + "\n", encoding="utf-8")
