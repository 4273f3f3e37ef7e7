"""The package's public surface and import hygiene."""

from __future__ import annotations

import subprocess
import sys

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


def test_simulator_never_imports_ibapi() -> None:
    """``ibdata.sim`` is independent of IB's client: importing it does not load ``ibapi``."""
    code = "import sys, ibdata.sim; print('ibapi' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_version_is_exposed() -> None:
    """``ibdata.__version__`` is a version string."""
    assert ibdata.__version__[0].isdigit()
