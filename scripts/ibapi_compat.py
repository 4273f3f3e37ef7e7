"""Run ibdata's protocol, client and history tests with each supported ibapi release.

Each release gets a virtual environment of its own, built from the package index exactly as
a user would install it next to ibdata (``pip install -e ".[test]" <release>``: ibdata
declares no ibapi of its own), so two releases never share or overwrite one ``ibapi``
module. The script checks that the environment really runs the release it was built for
(and that no other package owns the same files), then runs the test subset there.

Usage::

    python scripts/ibapi_compat.py                  # every release below
    python scripts/ibapi_compat.py --release 10.51  # one of them
    python scripts/ibapi_compat.py --keep --workdir /tmp/ibapi-envs -- -x -q

Exits non-zero if any environment cannot be built or any test fails. ``.ci/run`` runs it
for the 10.x releases (the main test run already uses 9.81.1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The tested releases: name -> (pip requirement, the version ``ibapi`` itself reports).
#: 9.81.1 is PyPI's release by IB; 10.19.4 and 10.30.1 are IB's code repackaged as
#: ``nautilus-ibapi``; 10.51.1, the newest IB release on the index, as ``ibapi-latest``.
RELEASES: dict[str, tuple[str, str]] = {
    "9.81": ("ibapi==9.81.1.post1", "9.81.1"),
    "10.19": ("nautilus-ibapi==10.19.4", "10.19.4"),
    "10.30": ("nautilus-ibapi==10.30.1", "10.30.1"),
    "10.51": ("ibapi-latest==10.51.1", "10.51.1"),
}

#: The tests that depend on the release: wire formats and decoders, the client over real
#: sockets, real TWS captures replayed at the versions the release negotiates, and the
#: history engine end to end.
TESTS = [
    "tests/sim/test_golden_frames.py",
    "tests/replay",
    "tests/test_convert.py",
    "tests/sim/test_with_ibapi.py",
    "tests/sim/test_server.py",
    "tests/test_client.py",
    "tests/test_history_engine.py",
    "tests/test_ibapi_release.py",
]

_CHECK = (
    "import ibdata._ibapi as r; rel = r.release(); "
    "print(rel.version, rel.distribution, ','.join(rel.other_distributions), "
    "rel.max_server_version)"
)


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, check=False, **kw)  # type: ignore[call-overload,no-any-return]


def build(name: str, venv: Path) -> str | None:
    """Create the environment for release ``name``; returns an error text or None."""
    requirement, expected = RELEASES[name]
    made = _run([sys.executable, "-m", "venv", str(venv)], capture_output=True)
    if made.returncode:
        return f"venv failed: {made.stderr.strip()}"
    py = str(_python(venv))
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = _run([*pip, "-e", f"{ROOT}[test]", requirement], capture_output=True)
    if installed.returncode:
        return f"pip install failed:\n{installed.stdout}{installed.stderr}"
    checked = _run([py, "-c", _CHECK], capture_output=True, cwd=ROOT)
    if checked.returncode:
        return f"ibdata does not import:\n{checked.stderr}"
    version, owner, others, offered = checked.stdout.split(" ")
    if version != expected or others.strip():
        return (
            f"the environment runs ibapi {version} from {owner} (others: {others.strip() or '-'}),"
            f" not {expected} alone"
        )
    print(f"  {name}: ibapi {version} from {owner}, offers server versions up to {offered.strip()}")
    return None


def main(argv: list[str] | None = None) -> int:
    """Build each environment, run the tests there, print a summary; 0 when all pass."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--release",
        action="append",
        choices=sorted(RELEASES),
        help="a release to check (repeatable; default: all)",
    )
    parser.add_argument("--workdir", type=Path, help="where to build the environments")
    parser.add_argument("--keep", action="store_true", help="keep the environments")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    names = args.release or list(RELEASES)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ibdata-ibapi-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, str, float]] = []
    try:
        for name in names:
            venv = workdir / f"ibapi-{name}"
            if venv.exists():
                shutil.rmtree(venv)
            started = time.monotonic()
            print(f"ibapi {name}: building {venv}", flush=True)
            error = build(name, venv)
            if error is not None:
                results.append((name, f"environment: {error}", time.monotonic() - started))
                continue
            cmd = [str(_python(venv)), "-m", "pytest", "-p", "no:cacheprovider", "-q"]
            done = _run([*cmd, *TESTS, *args.pytest_args], cwd=ROOT, capture_output=True)
            lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
            summary = lines[-1] if lines else done.stderr.strip()[-200:]
            if done.returncode:
                print(done.stdout[-6000:], done.stderr[-2000:], sep="\n")
            outcome = "ok: " if done.returncode == 0 else "FAILED: "
            results.append((name, outcome + summary.strip("= "), time.monotonic() - started))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\nibapi release compatibility")
    for name, outcome, seconds in results:
        print(f"  {RELEASES[name][1]:>8}  {outcome}  ({seconds:.0f} s)")
    return 0 if all(o.startswith("ok") for _, o, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
