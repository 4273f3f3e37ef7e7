"""Run ibdata's protocol, client and history tests on each supported Python version.

The README promises Python 3.10 and later; the main test run uses one interpreter. This
script builds a fresh virtual environment with each requested interpreter, installs ibdata
into it as a user would (``pip install -e ".[test,ibapi,postgres]"`` with the pip that
``venv`` brings along: the test extra, PyPI's ibapi and the PostgreSQL store the sharing
tests use), and runs the subset of the suite that depends most on the interpreter: wire
formats and decoders, the simulator, the client and ``ib_async`` over real sockets, the
history engine, the bar store and the shared pacing ledger.

Interpreters are looked up without anything beyond a plain machine with pyenv: first in
pyenv's versions (``$PYENV_ROOT``, else ``pyenv root``, else ``~/.pyenv``; the newest patch
release), then ``python3.X`` on ``PATH`` (a pyenv shim counts only if it runs). Each is
checked by running it. A version that cannot be found fails with a message saying where
it was looked for.

Usage::

    python scripts/python_compat.py                                  # 3.10 to 3.13
    python scripts/python_compat.py --python 3.10 --python 3.13
    python scripts/python_compat.py --python /opt/python3.12/bin/python3 -- -x -q

Exits non-zero if an interpreter is missing, an environment cannot be built or any test
fails. ``.ci/run`` runs it for the oldest and the newest supported version.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The versions the README's "Python 3.10+" stands for, oldest first.
SUPPORTED = ["3.10", "3.11", "3.12", "3.13"]

#: What each environment installs: the test extra, PyPI's ibapi release and psycopg.
EXTRAS = "test,ibapi,postgres"

#: The tests run in each environment (the subset of ``scripts/ibapi_compat.py``, with
#: ib_async, the bar store and the shared pacing ledger): a few minutes each.
TESTS = [
    "tests/sim/test_golden_frames.py",
    "tests/replay",
    "tests/test_convert.py",
    "tests/sim/test_with_ibapi.py",
    "tests/sim/test_with_ib_async.py",
    "tests/sim/test_server.py",
    "tests/test_client.py",
    "tests/test_history_engine.py",
    "tests/test_ibapi_release.py",
    "tests/test_cache.py",
    "tests/test_sharing.py",
]

_VERSION = re.compile(r"^(3\.\d+)$")
_PROBE = "import sys, ensurepip; print('%d.%d' % sys.version_info[:2])"


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, check=False, **kw)  # type: ignore[call-overload,no-any-return]


def _pyenv_root() -> Path:
    """``$PYENV_ROOT``, else what ``pyenv root`` says, else ``~/.pyenv``."""
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        said = _run([pyenv, "root"], capture_output=True)
        if said.returncode == 0 and said.stdout.strip():
            return Path(said.stdout.strip())
    return Path.home() / ".pyenv"


def _patch(name: str, version: str) -> int | None:
    """The patch number of a pyenv version folder ``3.10.13`` for ``3.10``; None otherwise."""
    head, _, patch = name.partition(version + ".")
    return int(patch) if head == "" and patch.isdigit() else None


def candidates(version: str) -> list[Path]:
    """Where ``version`` may be, most likely first: pyenv's builds, then ``PATH``."""
    found: list[Path] = []
    versions = _pyenv_root() / "versions"
    if versions.is_dir():
        builds = [(_patch(p.name, version), p) for p in versions.iterdir()]
        newest_first = sorted(((n, p) for n, p in builds if n is not None), reverse=True)
        found += [p / "bin" / f"python{version}" for _, p in newest_first]
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(Path(on_path))
    return found


def find(request: str) -> tuple[Path | None, str]:
    """The interpreter for ``request`` (``3.10`` or a path), checked by running it, and its
    ``major.minor``; or None and the reason."""
    if not _VERSION.match(request):
        exe = Path(request)
        ran = _run([str(exe), "-c", _PROBE], capture_output=True) if exe.is_file() else None
        if ran is None or ran.returncode:
            return None, f"{request} does not run Python with venv and ensurepip"
        return exe, ran.stdout.strip()
    tried = candidates(request)
    for exe in tried:
        if not exe.is_file():
            continue
        ran = _run([str(exe), "-c", _PROBE], capture_output=True)
        if ran.returncode == 0 and ran.stdout.strip() == request:
            return exe, request
    looked = ", ".join(str(p) for p in tried) or "none"
    return None, (
        f"Python {request} not found in {_pyenv_root() / 'versions'} nor as python{request} on "
        f"PATH (tried: {looked}). Install it with  pyenv install {request}  or "
        f"pass --python /path/to/python{request}"
    )


def build(exe: Path, venv: Path) -> str | None:
    """Create the environment with interpreter ``exe``; returns an error text or None."""
    made = _run([str(exe), "-m", "venv", str(venv)], capture_output=True)
    if made.returncode:
        return f"venv failed: {made.stderr.strip()}"
    py = str(_python(venv))
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = _run([*pip, "-e", f"{ROOT}[{EXTRAS}]"], capture_output=True)
    if installed.returncode:
        return f"pip install failed:\n{installed.stdout}{installed.stderr}"
    check = "import sys, ibdata._ibapi as r; print(sys.version.split()[0], r.release().describe())"
    checked = _run([py, "-c", check], capture_output=True, cwd=ROOT)
    if checked.returncode:
        return f"ibdata does not import:\n{checked.stderr}"
    print(f"  Python {checked.stdout.strip()}", flush=True)
    return None


def main(argv: list[str] | None = None) -> int:
    """Build each environment, run the tests there, print a summary; 0 when all pass."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--python",
        action="append",
        metavar="VERSION_OR_PATH",
        help=f"a version ({', '.join(SUPPORTED)}) or an interpreter's path (repeatable; "
        "default: every supported version)",
    )
    parser.add_argument("--workdir", type=Path, help="where to build the environments")
    parser.add_argument("--keep", action="store_true", help="keep the environments")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    requests: list[str] = args.python or SUPPORTED
    found = [(r, *find(r)) for r in requests]
    missing = [why for _, exe, why in found if exe is None]
    if missing:
        for why in missing:
            print(f"python_compat: {why}", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ibdata-python-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, str, float]] = []
    try:
        for _, exe, version in found:
            assert exe is not None
            venv = workdir / f"py{version}"
            if venv.exists():
                shutil.rmtree(venv)
            started = time.monotonic()
            print(f"Python {version}: building {venv} with {exe}", flush=True)
            error = build(exe, venv)
            if error is not None:
                results.append((version, f"environment: {error}", time.monotonic() - started))
                continue
            cmd = [str(_python(venv)), "-m", "pytest", "-p", "no:cacheprovider", "-q"]
            done = _run([*cmd, *TESTS, *args.pytest_args], cwd=ROOT, capture_output=True)
            lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
            summary = lines[-1] if lines else done.stderr.strip()[-200:]
            if done.returncode:
                print(done.stdout[-6000:], done.stderr[-2000:], sep="\n")
            outcome = "ok: " if done.returncode == 0 else "FAILED: "
            results.append((version, outcome + summary.strip("= "), time.monotonic() - started))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\nPython version compatibility")
    for version, outcome, seconds in results:
        print(f"  {version:>5}  {outcome}  ({seconds:.0f} s)")
    return 0 if all(o.startswith("ok") for _, o, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
