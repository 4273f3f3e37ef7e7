"""The package's public surface and import hygiene."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ibdata
import ibdata.sim


def test_all_is_sorted_and_complete() -> None:
    """``__all__`` of ``ibdata`` and ``ibdata.sim`` is sorted and names only real attributes."""
    for module in (ibdata, ibdata.sim):
        names = module.__all__
        assert names == sorted(names), module.__name__
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_sim_public_names_are_documented() -> None:
    """Every public name of ``ibdata.sim`` has a docstring."""
    for name in ibdata.sim.__all__:
        assert getattr(ibdata.sim, name).__doc__, name


def test_import_ibdata_stays_light() -> None:
    """``import ibdata`` loads neither the simulator nor fastapi nor pandas."""
    code = (
        "import sys, ibdata; "
        "heavy = [m for m in ('ibdata.sim', 'fastapi', 'pandas') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_simulator_never_imports_ibapi_or_client_internals() -> None:
    """No module of ``ibdata.sim`` imports ``ibapi`` or the client's modules: the simulator
    is an independent check on both (only the shared pacing rules are common)."""
    allowed = ("ibdata.sim", "ibdata.pacing")
    for path in Path(ibdata.sim.__file__).parent.glob("*.py"):
        if path.name == "__main__.py":
            continue  # the command-line entry point, which goes through ibdata.cli
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert not name.startswith("ibapi"), f"{path.name} imports {name}"
                if name.startswith("ibdata"):
                    assert name.startswith(allowed), f"{path.name} imports {name}"


def test_version_is_exposed() -> None:
    """``ibdata.__version__`` is a version string."""
    assert ibdata.__version__[0].isdigit()
