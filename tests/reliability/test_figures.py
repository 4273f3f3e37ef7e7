"""The reliability figures print only when asked: ``-v`` or ``IBDATA_FIGURES``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

INNER = """
def test_measures(figures):
    figures.record("cycles survived", 100)
"""


def _run(tmp_path: Path, *args: str, figures: str | None = None) -> str:
    (tmp_path / "conftest.py").write_text((HERE / "conftest.py").read_text())
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "IBDATA_FIG"))}
    if figures is not None:
        env["IBDATA_FIGURES"] = figures
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", os.devnull,
         "--rootdir", str(tmp_path), str(tmp_path), *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_plain_run_prints_no_figures(tmp_path: Path) -> None:
    """Without -v or IBDATA_FIGURES, the report has no figures section."""
    assert "reliability figures" not in _run(tmp_path)


def test_verbose_runs_print_them(tmp_path: Path) -> None:
    """-v prints each figure under the test's name."""
    out = _run(tmp_path, "-v")
    assert "reliability figures" in out
    assert "test_measures: cycles survived = 100" in out


def test_a_figures_file_gets_them_as_json(tmp_path: Path) -> None:
    """IBDATA_FIGURES names a file: they are printed and written there."""
    target = tmp_path / "figures.json"
    out = _run(tmp_path, figures=str(target))
    assert "test_measures: cycles survived = 100" in out
    assert json.loads(target.read_text()) == [
        {"test": "test_measures", "figure": "cycles survived", "value": "100"}
    ]
