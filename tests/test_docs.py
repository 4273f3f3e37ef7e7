"""Every code sample of the documentation runs against the simulator, so the docs cannot rot.

Each page of ``docs/`` (and the README) is one test. Its samples run in page order:

- ```` ```python ```` blocks are executed in one namespace per page, so a block may use what
  an earlier block of the same page defined.
- ```` ```pycon ```` blocks (``>>>`` prompts and their output) are run as doctests in that
  namespace, output compared with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``.
- ```` ```console ```` blocks: every ``$ command`` runs in a shell and must exit 0; the lines
  after it, up to the next ``$``, are its expected output (compared like a doctest's; an
  empty expectation checks only the exit status).

The page runs in a temporary directory with ``HOME`` there too, against a simulator started
for it (its clock fixed at :data:`tests.conftest.CLOCK_AT`, IB's pacing rules enforced, at
server version 157 so that every ibapi release prints the same)
that ``IB_HOST`` / ``IB_PORT`` point at, exactly as a user points the samples at TWS. A page
whose source holds ``<!-- docs-test: rest-server -->`` also gets the REST adapter on a free
port: ``127.0.0.1:3001`` in its samples is replaced by that address before they run.

Other fenced blocks (``bash`` for commands that start servers or need a real TWS, ``toml``,
``json``, ``ini``, ``nginx``, ``text``) are not run; the commands of the ``bash`` blocks are
covered by ``tests/test_cli_commands.py``, ``tests/test_http.py`` and
``tests/test_examples.py``. A python sample written as a ``{code-block}`` directive would
escape this harness, so the harness refuses pages that contain one.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ibdata
from ibdata.sim import FixedClock, Simulator
from tests.conftest import CLOCK_AT

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
RUN = {"python", "py", "pycon", "console"}
REST_MARKER = "<!-- docs-test: rest-server -->"
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: its language, text and first line number."""

    lang: str
    text: str
    line: int


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, nested fences included, in order."""
    found: list[Block] = []
    stack: list[tuple[str, str, int, list[str]]] = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        m = _FENCE.match(line)
        if stack:
            fence, lang, start, body = stack[-1]
            if m and m["fence"][0] == fence[0] and len(m["fence"]) >= len(fence):
                if not m["info"].strip():
                    stack.pop()
                    found.append(Block(lang, "\n".join(body) + "\n", start))
                    continue
                if lang.startswith("{"):  # a directive's body may hold fences of its own
                    stack.append((m["fence"], m["info"].strip().lower(), number + 1, []))
                    continue
            body.append(line)
            continue
        if m:
            stack.append((m["fence"], m["info"].strip().lower(), number + 1, []))
    assert not stack, f"{page.name}: a fence opened at line {stack[-1][2] - 1} is never closed"
    return found


def _run_console(block: Block, page: Path, env: dict[str, str], cwd: Path) -> None:
    """Run each ``$ command`` of a console block and compare its output."""
    checker = doctest.OutputChecker()
    commands: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
        elif line.strip():
            pytest.fail(f"{page.name}:{block.line}: console output before any '$ ' command")
    for command, expected_lines in commands:
        done = subprocess.run(
            command,
            shell=True,
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        where = f"{page.name}:{block.line}: $ {command}"
        assert done.returncode == 0, f"{where}\nexit {done.returncode}\n{done.stdout}{done.stderr}"
        expected = "\n".join(expected_lines).strip("\n")
        if expected:
            got = done.stdout.strip("\n") + "\n"
            assert checker.check_output(expected + "\n", got, DOCTEST_FLAGS), (
                f"{where}\nexpected:\n{expected}\ngot:\n{got}"
            )


def _run_python(block: Block, page: Path, namespace: dict[str, Any]) -> None:
    """Execute a python block in the page's namespace."""
    code = compile(block.text, f"{page.name}:{block.line}", "exec")
    exec(code, namespace)


def _run_pycon(block: Block, page: Path, namespace: dict[str, Any]) -> None:
    """Run a pycon block as a doctest in the page's namespace."""
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block.text, namespace, page.name, str(page), block.line - 1)
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=False)
    namespace.update(test.globs)  # DocTest ran on a copy: later blocks see what this defined
    assert not runner.failures, "".join(report)


class _RestServer:
    """The REST adapter over a client of the page's simulator, in a thread on a free port."""

    def __init__(self, sim: Simulator) -> None:
        import uvicorn

        from ibdata.http import create_app

        self.client = ibdata.Client(sim.host, sim.port, timeout=30).connect()
        config = uvicorn.Config(
            create_app(self.client),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            log_config=None,
            ws="none",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="docs-uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn did not start"
            assert time.monotonic() < deadline, "uvicorn start-up timed out"
            time.sleep(0.01)
        self.port: int = self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop the server, then the client."""
        self.server.should_exit = True
        self.thread.join(15)
        self.client.close()
        assert not self.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def page_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A simulator, a scratch directory as cwd and HOME, and IB_HOST / IB_PORT set."""
    # Server version 157, the one PyPI's ibapi negotiates: a page's samples then print the
    # same with every ibapi release (above 157 US stocks' volumes are exact shares, below
    # TWS sends them in lots of 100 and they come out as round hundreds).
    with Simulator(clock=FixedClock(CLOCK_AT), server_version=157) as sim:
        for var in ("IBDATA_API_TOKEN", "IBDATA_PRODUCTS", "IBDATA_CACHE", "IB_CLIENT_ID"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("IB_HOST", sim.host)
        monkeypatch.setenv("IB_PORT", str(sim.port))
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))
        bin_dir = str(Path(sys.executable).parent)
        monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ.get("PATH", ""))
        monkeypatch.chdir(tmp_path)
        yield {"sim": sim, "cwd": tmp_path}


def _close_clients(namespace: dict[str, Any]) -> None:
    """Close the clients, then stop the simulators, a page left in its namespace.

    Samples close what they open; this only matters when one fails half-way, so that the
    failure is reported alone rather than with leaked threads.
    """
    values = list(namespace.values())
    for value in values:
        if isinstance(value, ibdata.Client):
            value.close()
    for value in values:
        if isinstance(value, Simulator):
            value.stop()


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_samples_run(page: Path, page_env: dict[str, Any]) -> None:
    """Every python, pycon and console sample of the page runs and shows what it says."""
    source = page.read_text(encoding="utf-8")
    assert not re.search(r"\{code-block\}\s*(python|py|pycon)", source), (
        f"{page.name}: write python samples as fenced blocks so they are run"
    )
    sim: Simulator = page_env["sim"]
    rest = _RestServer(sim) if REST_MARKER in source else None
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    try:
        for block in blocks(page):
            lang = block.lang.split()[0] if block.lang else ""
            if lang not in RUN:
                continue
            text = block.text
            if rest is not None:
                text = text.replace("127.0.0.1:3001", f"127.0.0.1:{rest.port}")
            run = Block(lang, text, block.line)
            if lang == "console":
                _run_console(run, page, dict(os.environ), page_env["cwd"])
            elif lang == "pycon":
                _run_pycon(run, page, namespace)
            else:
                _run_python(run, page, namespace)
    finally:
        _close_clients(namespace)
        if rest is not None:
            rest.stop()
    assert sim.stats.order_messages == 0


def test_harness_finds_nested_and_tilde_fences(tmp_path: Path) -> None:
    """The block parser sees fences inside directives and ignores fences inside other fences."""
    page = tmp_path / "page.md"
    page.write_text(
        "````markdown\n```python\nnot run\n```\n````\n"
        ":::{note}\n~~~python\nx = 1\n~~~\n:::\n"
        "```{admonition} Tip\n```python\ny = 2\n```\n```\n",
        encoding="utf-8",
    )
    found = [(b.lang, b.text) for b in blocks(page)]
    assert ("python", "x = 1\n") in found
    assert ("python", "y = 2\n") in found
    assert ("python", "not run\n") not in found


PUBLIC_MODULES = (
    "ibdata",
    "ibdata.models",
    "ibdata.exceptions",
    "ibdata.pacing",
    "ibdata.store",
    "ibdata.cache",
    "ibdata.postgres",
    "ibdata.registry",
    "ibdata.sim",
)


def _inventory(html: Path) -> set[str]:
    """The Python object names in a built site's ``objects.inv``."""
    import zlib

    raw = (html / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four text lines, then the zlib-compressed body
        header_end = raw.index(b"\n", header_end) + 1
    names: set[str] = set()
    for line in zlib.decompress(raw[header_end:]).decode("utf-8").splitlines():
        name, role = line.split(" ", 2)[:2]
        if role.startswith("py:"):
            names.add(name)
    return names


def test_api_reference_documents_every_public_name(tmp_path: Path) -> None:
    """Each name in a public module's ``__all__`` is in the built reference; no private one is."""
    import importlib

    html = tmp_path / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(ROOT / "docs"), str(html)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    documented = _inventory(html)
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if name == "__version__":
                continue
            obj = getattr(module, name)
            home = getattr(obj, "__module__", module_name)
            candidates = {f"{module_name}.{name}", f"{home}.{name}"}
            if not candidates & documented:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"not in the API reference: {missing}"
    # The inventory also lists each re-export's canonical (private) path for intersphinx;
    # what a reader sees is the page, which must not show a private module.
    page = re.sub(r"<[^>]+>", "", (html / "api.html").read_text(encoding="utf-8"))
    private = sorted(set(re.findall(r"ibdata(?:\.\w+)*\._\w+", page)))
    assert not private, f"private names shown in the API reference: {private}"
    for entry in ("ibdata.http.create_app", "ibdata.cli.main", "ibdata.Client.get_historical_bars"):
        assert entry in documented


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_docstring_examples_run(module_name: str) -> None:
    """The ``>>>`` examples of the docstrings in the API reference run and show what they say."""
    import importlib

    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    report: list[str] = []
    tests = finder.find(module, module_name)
    for name in module.__all__:  # re-exports are searched where they are shown
        obj = getattr(module, name)
        if getattr(obj, "__module__", module_name) != module_name and callable(obj):
            tests += finder.find(obj, f"{module_name}.{name}", module=False, globs={})
    for test in tests:
        runner.run(test, out=report.append)
    assert not runner.failures, "".join(report)
