"""``/docs`` and ``/redoc`` of ``ibdata serve --simulate`` in a real browser, with no internet.

Headless Chromium from Debian's ``chromium`` package, driven by Playwright's Python package
(never a browser Playwright downloads), opens the pages as a person on another machine
would: under a host name that is not localhost (Chromium maps ``ibdata.test`` to
127.0.0.1). Every request the pages make is recorded, any to another address is refused,
and the tests fail if there was one.

Without Chromium or playwright the tests skip, saying what to install; with
``IBDATA_REQUIRE_BROWSER=1`` (CI sets it) they fail instead. The screenshot in the docs,
``docs/_static/rest-docs.png``, is written when it is missing or when
``IBDATA_UPDATE_SCREENSHOTS=1``, so that ordinary runs leave the work tree as it was.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, Route

#: Debian's Chromium.
CHROMIUM = Path("/usr/bin/chromium")

#: The switches every start of Chromium uses: no sandbox (CI runs as root), no GPU, and none
#: of Chromium's own traffic (first-run pages, component updates, sync), plus the test's
#: host name mapped to the loopback address.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP ibdata.test 127.0.0.1",
]

HOST = "ibdata.test"
SCREENSHOT = Path(__file__).parent.parent / "docs" / "_static" / "rest-docs.png"
ADAPTER = re.compile(r"ibdata REST adapter on http://127\.0\.0\.1:(\d+)")

#: Seconds a page may take to show what a test waits for.
PATIENCE = 30


def _missing() -> str | None:
    """What the browser tests lack on this machine, or None when nothing."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed: pip install -e '.[dev]'"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM}: apt-get install chromium"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium; skips (fails under ``IBDATA_REQUIRE_BROWSER=1``) without it."""
    missing = _missing()
    if missing is not None:
        if os.environ.get("IBDATA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"IBDATA_REQUIRE_BROWSER=1, but {missing}", pytrace=False)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of ``ibdata serve --simulate`` in its own process, without a token."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "IBDATA_API_TOKEN"}
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ibdata", "serve", "--simulate", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if match := ADAPTER.search(line):
                break
        else:
            pytest.fail(f"ibdata serve exited without serving:\n{log.read_text()}")
        yield int(match[1])
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
        assert proc.returncode == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


class Offline:
    """A page on ``http://ibdata.test:<port>`` whose requests elsewhere are refused."""

    def __init__(self, browser: Browser, port: int) -> None:
        self.origin = f"http://{HOST}:{port}"
        self.requested: list[str] = []
        self.foreign: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.on("request", lambda request: self.requested.append(request.url))
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(PATIENCE * 1000)

    def _route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort("internetdisconnected")

    def open(self, path: str) -> Page:
        """Load ``path`` of the adapter; the page."""
        self.page.goto(self.origin + path)
        return self.page


@pytest.fixture
def offline(browser: Browser, port: int) -> Iterator[Offline]:
    """A fresh browser context on the adapter, recording every request."""
    page = Offline(browser, port)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def schema(port: int) -> dict[str, Any]:
    """The adapter's OpenAPI schema."""
    schema: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()
    return schema


def _operations(schema: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(METHOD, path) → operationId for every operation of ``schema``."""
    return {
        (method.upper(), path): operation["operationId"]
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }


def _set(operation: Locator, name: str, value: str) -> None:
    """Type ``value`` into the parameter ``name`` (or choose it, when it is a list)."""
    field = operation.locator(f'tr[data-param-name="{name}"]').locator("input, select").first
    if field.evaluate("element => element.tagName") == "SELECT":
        field.select_option(value)
    else:
        field.fill(value)


def test_pages_name_only_files_the_adapter_serves(port: int) -> None:
    """Even without a browser: ``/docs`` and ``/redoc`` name no other host, every script,
    style and icon they name is served, and ReDoc's bundle asks for its logo locally."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=PATIENCE) as http:
        for path in ("/docs", "/redoc"):
            html = http.get(path).text
            assert not re.search(r"(https?:)?//", html), path
            named = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert len(named) >= 2, html
            for url in named:
                r = http.get(url)
                assert r.status_code == 200, url
                assert r.content, url
        redoc = http.get("/docs/assets/redoc/redoc.standalone.js").text
        assert "cdn.redoc.ly" not in redoc
        logo = http.get("/redoc/logo-mini.svg")
        assert logo.headers["content-type"] == "image/svg+xml"


def test_swagger_ui_lists_every_endpoint_and_try_it_out_fetches_bars(
    offline: Offline, schema: dict[str, Any], tmp_path: Path
) -> None:
    """``/docs`` lists every operation of the schema, and "Try it out" on market data shows
    AAPL's daily bars, with no request to any other host."""
    page = offline.open("/docs")
    page.locator(".opblock").first.wait_for()
    listed = page.locator(".opblock").evaluate_all(
        """blocks => blocks.map(block => [
            block.querySelector('.opblock-summary-method').textContent,
            block.querySelector('.opblock-summary-path').dataset.path,
        ])"""
    )
    assert sorted(map(tuple, listed)) == sorted(_operations(schema))

    market = page.locator(
        '.opblock:has(.opblock-summary-path[data-path="/ib/market-data/{symbol}"])'
    )
    market.locator(".opblock-summary").click()
    market.get_by_role("button", name="Try it out").click()
    _set(market, "symbol", "AAPL")
    _set(market, "duration", "1 W")
    _set(market, "barSize", "1 day")
    market.get_by_role("button", name="Execute").click()
    live = market.locator(".live-responses-table tr.response")
    live.locator(".response-col_status").wait_for()
    assert live.locator(".response-col_status").inner_text().strip() == "200"
    body = json.loads(live.locator(".response-col_description pre").first.inner_text())
    assert (body["symbol"], body["duration"], body["barSize"]) == ("AAPL", "1 W", "1 day")
    assert body["count"] == len(body["data"]) >= 4
    assert all(re.fullmatch(r"\d{8}", bar["time"]) for bar in body["data"])
    assert all(bar["low"] <= bar["close"] <= bar["high"] for bar in body["data"])
    called = f"{offline.origin}/ib/market-data/AAPL?duration=1%20W&barSize=1%20day"
    assert any(url.startswith(called) for url in offline.requested), offline.requested

    # The picture for the docs: the endpoints, down to the bars the server answered with.
    page_y = "element => element.getBoundingClientRect().%s + window.scrollY"
    top = page.locator(".opblock-tag-section").first.evaluate(page_y % "top")
    bottom = market.locator(".live-responses-table").evaluate(page_y % "bottom")
    clip = {"x": 0, "y": top, "width": 1280, "height": bottom - top}
    shot = page.screenshot(full_page=True, clip=clip)
    assert shot.startswith(b"\x89PNG\r\n\x1a\n")
    (tmp_path / SCREENSHOT.name).write_bytes(shot)
    if not SCREENSHOT.exists() or os.environ.get("IBDATA_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.write_bytes(shot)

    assert offline.foreign == []
    assert f"{offline.origin}/docs/assets/swagger/swagger-ui-bundle.js" in offline.requested


def test_redoc_lists_every_endpoint(offline: Offline, schema: dict[str, Any]) -> None:
    """``/redoc`` shows a section, with its path, for every operation of the schema, with
    no request to any other host."""
    logo = f"{offline.origin}/redoc/logo-mini.svg"  # ReDoc's own logo, served locally
    with offline.page.expect_response(logo) as answer:
        page = offline.open("/redoc")
    assert answer.value.ok
    page.locator('[data-section-id^="operation/"]').first.wait_for()
    shown = {
        element.get_attribute("data-section-id")
        for element in page.locator('[data-section-id^="operation/"]').all()
    }  # ReDoc 2.4 (the one for Python 3.10) marks two elements of a section, 2.5 one
    operations = _operations(schema)
    assert shown == {f"operation/{operation_id}" for operation_id in operations.values()}
    for (method, path), operation_id in operations.items():
        section = page.locator(f'[data-section-id="operation/{operation_id}"]')
        assert section.get_by_text(path, exact=True).count() >= 1, (method, path)
    assert offline.foreign == []
    assert f"{offline.origin}/docs/assets/redoc/redoc.standalone.js" in offline.requested
