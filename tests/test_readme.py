"""The README as a new user meets it: its first set-up command, in a fresh virtual
environment built from a copy of the project, serves the REST API over the simulator; its
first code sample runs in that environment, needing nothing the command did not install.
(The test command is what CI runs; the README's other samples run in tests/test_docs.py.)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _marked_command(marker: str) -> str:
    """The first line of the fenced block after ``<!-- marker -->``, as .ci/run reads it."""
    match = re.search(rf"<!-- {marker} -->\n```\w*\n(.+?)\n", README)
    assert match, f"no {marker} block in the README"
    return match.group(1)


def _first_python_block() -> str:
    match = re.search(r"```python\n(.+?)```", README, re.S)
    assert match, "no python block in the README"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _project_copy(target: Path) -> Path:
    """The files a clone has (tracked by git), copied: a clean clone, not this tree."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name.decode())
    return target


@pytest.mark.slow
def test_first_command_and_first_sample_work_in_a_fresh_environment(tmp_path: Path) -> None:
    """The run command installs what it says and serves bars; the first sample runs with
    only what the run command installed (no pandas, no dev tools)."""
    command = _marked_command("run-command")
    assert command.startswith("python3 -m venv .venv && "), command
    assert command.endswith(".venv/bin/ibdata serve --simulate"), command
    project = _project_copy(tmp_path / "ibdata")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IB_", "IBDATA_", "PYTEST"))}
    env["IB_SERVER_PORT"] = str(port)  # the README's server, on a free port
    server = subprocess.Popen(
        ["bash", "-c", command],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/ib/market-data/AAPL?duration=1%20W&barSize=1%20day"
        deadline = time.monotonic() + 600  # pip installs from the index first
        body = None
        while body is None:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "the README's server never answered"
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    body = answer.read().decode()
            except OSError:
                time.sleep(0.5)
        assert '"symbol":"AAPL"' in body
        assert '"count":5' in body
        python = project / ".venv" / "bin" / "python"
        sample = subprocess.run(
            [str(python), "-c", _first_python_block()],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert sample.returncode == 0, sample.stderr
        assert "<Bars AAPL" in sample.stdout
        assert "healthy" in sample.stdout
        pandas = subprocess.run(
            [str(python), "-c", "import pandas"], capture_output=True, timeout=60, check=False
        )
        assert pandas.returncode != 0  # the sample indeed needs no pandas
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        if server.stdout is not None:
            server.stdout.close()
