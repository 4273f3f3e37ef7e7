"""The REST adapter over real HTTP: uvicorn in a thread, a real Client, the simulator."""

from __future__ import annotations

import json
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import schemathesis.checks
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings

from ibdata import Client, PacingRules
from ibdata.http import create_app
from ibdata.sim import Simulator
from tests.http_serving import serving

HEALTH_KEYS = {"status", "connected", "ready", "host", "port", "client_id", "timestamp"}
ERROR_KEYS = {"error", "code", "timestamp"}
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
PACING = "Historical Market Data Service error message:Historical data request pacing violation"

# ---------------------------------------------------------------------- fixtures


@pytest.fixture
def client_factory(sim_factory: Callable[..., Simulator]) -> Iterator[Callable[..., Client]]:
    """Clients connected to a simulator; all are closed after the test (before the sims)."""
    made: list[Client] = []

    def make(sim: Simulator, **options: Any) -> Client:
        options.setdefault("timeout", 10)
        options.setdefault("connect_timeout", 5)
        c = Client(sim.host, sim.port, **options).connect()
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


class Servers:
    """uvicorn servers on free ports, each in a thread, with an httpx client for each."""

    def __init__(self) -> None:
        self.running: dict[httpx.Client, ExitStack] = {}

    def start(self, app: FastAPI) -> httpx.Client:
        """Serve ``app`` and return an HTTP client for it."""
        stack = ExitStack()
        http, _ = stack.enter_context(serving(app, timeout=30))
        self.running[http] = stack
        return http

    def stop(self, http: httpx.Client) -> None:
        """Shut the server behind ``http`` down gracefully and wait for it."""
        self.running.pop(http).close()


@pytest.fixture
def servers(client_factory: Callable[..., Client]) -> Iterator[Servers]:
    """Servers for the test's apps; all are stopped after it (before clients and sims)."""
    s = Servers()
    yield s
    for http in list(s.running):
        s.stop(http)


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator that does not enforce pacing, so tests can repeat requests at will."""
    return sim_factory(pacing=None)


@pytest.fixture
def client(sim: Simulator, client_factory: Callable[..., Client]) -> Client:
    """A connected client without pacing."""
    return client_factory(sim, pacing=None)


@pytest.fixture
def api(client: Client, servers: Servers, monkeypatch: pytest.MonkeyPatch) -> httpx.Client:
    """An HTTP client for the adapter over ``client``, with authentication off."""
    monkeypatch.delenv("IBDATA_API_TOKEN", raising=False)
    return servers.start(create_app(client))


def _error(r: httpx.Response, status: int, code: int | None = None) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= ERROR_KEYS
    assert body["code"] == code
    assert ISO_Z.fullmatch(body["timestamp"])
    assert r.headers["content-type"] == "application/json"
    return str(body["error"])


def _until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# ---------------------------------------------------------------------- the README's examples


def test_health_is_200_with_the_older_fields_and_more(api: httpx.Client, client: Client) -> None:
    """``GET /ib/health`` answers 200 with the older fields plus server version, login time
    zone, accounts and farms."""
    r = api.get("/ib/health")
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= HEALTH_KEYS | {"server_version", "login_time_zone", "accounts", "farms"}
    assert body["login_time_zone"] == {"name": "UTC", "zone": "Etc/UTC", "certainty": "exact"}
    assert body["status"] == "healthy"
    assert body["connected"] is body["ready"] is True
    assert body["client_id"] == client.client_id
    assert body["accounts"] == ["DU1234567"]
    assert ISO_Z.fullmatch(body["timestamp"])


def test_products_lists_the_registry(api: httpx.Client) -> None:
    """``GET /ib/products`` lists every product code with symbol, secType, exchange and
    currency."""
    body = api.get("/ib/products").json()
    assert body["count"] == len(body["products"]) == 8
    bund = body["products"]["EURBBL"]
    assert (bund["symbol"], bund["secType"], bund["exchange"], bund["currency"]) == (
        "GBL",
        "CONTFUT",
        "EUREX",
        "EUR",
    )
    assert {"UKGB", "UST10Y", "UST05Y", "UST30Y", "EURSCA", "ITB10Y", "EURBND"} <= set(
        body["products"]
    )


def test_daily_bars_as_in_the_readme(api: httpx.Client) -> None:
    """AAPL daily bars for a week come with the README's fields and YYYYMMDD times."""
    r = api.get("/ib/market-data/AAPL", params={"duration": "1 W", "barSize": "1 day"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"symbol", "duration", "barSize", "whatToShow", "contract", "data"}
    assert (body["symbol"], body["duration"], body["barSize"]) == ("AAPL", "1 W", "1 day")
    assert body["whatToShow"] == "TRADES"
    assert body["count"] == len(body["data"]) >= 4
    assert isinstance(body["durationMs"], int)
    times = [bar["time"] for bar in body["data"]]
    assert "20250307" in times
    assert all(re.fullmatch(r"\d{8}", t) for t in times)
    assert times == sorted(times)
    bar = body["data"][0]
    assert set(bar) == {"time", "open", "high", "low", "close", "volume", "count", "wap"}
    assert isinstance(bar["volume"], int)
    assert body["contract"]["conId"] == 265598
    assert body["contract"]["secType"] == "STK"


def test_product_code_daily_bars(api: httpx.Client) -> None:
    """``/ib/market-data/EURBBL`` serves the Bund's continuous future."""
    r = api.get("/ib/market-data/EURBBL", params={"duration": "1 M", "barSize": "1 day"})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] >= 18
    assert body["contract"]["symbol"] == "GBL"
    assert body["contract"]["exchange"] == "EUREX"


def test_contract_details_of_a_stock(api: httpx.Client) -> None:
    """``/ib/contract-details/AAPL`` uses the STK/SMART/USD defaults and the README's
    fields."""
    body = api.get("/ib/contract-details/AAPL").json()
    assert body["symbol"] == "AAPL"
    assert body["count"] == len(body["contracts"]) == 1
    c = body["contracts"][0]
    keys = {"symbol", "secType", "exchange", "currency", "localSymbol", "conId", "longName"}
    assert set(c) >= keys | {"category", "timeZoneId"}
    assert (c["symbol"], c["secType"], c["currency"], c["conId"]) == ("AAPL", "STK", "USD", 265598)
    assert c["timeZoneId"] == "US/Eastern"


@pytest.mark.parametrize("query", [{"code": "EURBBL"}, {}])
def test_contract_details_of_a_product_code(api: httpx.Client, query: dict[str, str]) -> None:
    """``/ib/contract-details/EURBBL``, with or without ``code=EURBBL``, gives the Bund's
    continuous future, not a stock."""
    body = api.get("/ib/contract-details/EURBBL", params=query).json()
    assert body["symbol"] == "EURBBL"
    (c,) = body["contracts"]
    assert (c["symbol"], c["secType"], c["exchange"], c["currency"]) == (
        "GBL",
        "CONTFUT",
        "EUREX",
        "EUR",
    )


def test_code_names_the_instrument(api: httpx.Client) -> None:
    """``code`` wins over the path's symbol, which is echoed back."""
    body = api.get("/ib/contract-details/bund", params={"code": "EURBBLM25"}).json()
    assert body["symbol"] == "bund"
    assert body["contracts"][0]["localSymbol"] == "FGBL JUN 25"


def test_explicit_sec_type_overrides_a_product(api: httpx.Client) -> None:
    """An explicit ``secType`` overrides the product's: FUT lists every live Bund expiry."""
    body = api.get("/ib/contract-details/EURBBL", params={"secType": "FUT"}).json()
    assert body["count"] > 1
    assert {c["secType"] for c in body["contracts"]} == {"FUT"}


def test_reconnect_returns_the_new_health(api: httpx.Client, sim: Simulator) -> None:
    """``POST /ib/reconnect`` opens a new session and answers 200 with its health."""
    r = api.post("/ib/reconnect")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy"
    assert body["reconnect_count"] == 1
    _until(lambda: sim.client_ids == [body["client_id"]])


# ---------------------------------------------------------------------- bars


def test_intraday_times_are_iso_utc(api: httpx.Client) -> None:
    """Intraday bar times are ISO 8601 in UTC with ``Z``; the defaults are 1 D of 1 hour."""
    body = api.get("/ib/market-data/AAPL").json()
    assert (body["duration"], body["barSize"], body["useRTH"]) == ("1 D", "1 hour", False)
    assert body["data"]
    assert all(ISO_Z.fullmatch(bar["time"]) for bar in body["data"])


def test_product_code_with_month_suffix(api: httpx.Client) -> None:
    """``EURBBLM25`` serves the June 2025 Bund contract."""
    body = api.get("/ib/market-data/EURBBLM25", params={"barSize": "1 hour"}).json()
    c = body["contract"]
    assert (c["secType"], c["lastTradeDate"], c["localSymbol"]) == (
        "FUT",
        "20250606",
        "FGBL JUN 25",
    )
    assert body["count"] > 0


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-03-10T14:00:00Z", "2025-03-10T16:00:00Z"),
        ("2025-03-10T10:00:00-04:00", "20250310-16:00:00"),
        ("2025-03-10T14:00:00+00:00", "2025-03-10T16:00:00.000z"),
    ],
)
def test_start_end_range(api: httpx.Client, start: str, end: str) -> None:
    """``start``/``end`` fetch exactly the range ``[start, end)``, in any accepted format."""
    r = api.get("/ib/market-data/SPY", params={"start": start, "end": end, "barSize": "5 mins"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["duration"] is None
    assert (body["start"], body["end"]) == ("2025-03-10T14:00:00Z", "2025-03-10T16:00:00Z")
    times = [bar["time"] for bar in body["data"]]
    assert len(times) == body["count"] == 24
    assert (times[0], times[-1]) == ("2025-03-10T14:00:00Z", "2025-03-10T15:55:00Z")


def test_range_needing_too_many_requests_is_a_400(
    sim: Simulator, client: Client, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``max_range_requests``, a range that needs more IB requests is refused, unsent."""
    monkeypatch.delenv("IBDATA_API_TOKEN", raising=False)
    api = servers.start(create_app(client, max_range_requests=2))
    params = {"start": "2025-03-03T00:00:00Z", "end": "2025-03-06T00:00:00Z", "barSize": "1 min"}
    r = api.get("/ib/market-data/AAPL", params=params)
    assert r.status_code == 400, r.text
    assert "needs 3 requests to IB, more than the 2 allowed" in r.json()["error"]
    assert sim.received.find("reqHistoricalData") == []
    params["end"] = "2025-03-05T00:00:00Z"
    assert api.get("/ib/market-data/AAPL", params=params).status_code == 200
    with pytest.raises(ValueError, match="max_range_requests must be at least 1"):
        create_app(client, max_range_requests=0)


def test_end_date_time_ends_the_window(api: httpx.Client) -> None:
    """``endDateTime`` ends a duration request (IB's UTC form accepted)."""
    params = {"duration": "3600 S", "barSize": "5 mins", "endDateTime": "20250311-15:00:00"}
    body = api.get("/ib/market-data/AAPL", params=params).json()
    assert body["count"] == 12
    assert body["data"][-1]["time"] == "2025-03-11T14:55:00Z"


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("1", True), ("0", False)])
def test_use_rth_parses_booleans(api: httpx.Client, text: str, expected: bool) -> None:
    """``useRTH`` accepts true/false/1/0."""
    body = api.get("/ib/market-data/AAPL", params={"useRTH": text}).json()
    assert body["useRTH"] is expected


# ---------------------------------------------------------------------- status codes


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/ib/market-data/AAPL", {"barSize": "1 sec"}, "barSize must be one of"),
        ("/ib/market-data/AAPL", {"barSize": "1h"}, "barSize must be one of"),
        ("/ib/market-data/AAPL", {"duration": "400 D"}, "365"),
        ("/ib/market-data/AAPL", {"duration": "99999999999 D"}, "exceeds IB's limit of 365 D"),
        ("/ib/market-data/AAPL", {"whatToShow": "TRADE"}, "whatToShow must be one of"),
        ("/ib/market-data/AAPL", {"useRTH": "maybe"}, "useRTH"),
        ("/ib/market-data/AAPL", {"endDateTime": "2025-03-11T15:00:00"}, "endDateTime"),
        ("/ib/market-data/AAPL", {"endDateTime": "yesterday"}, "endDateTime"),
        ("/ib/market-data/AAPL", {"start": "2025-03-10T14:00:00Z", "duration": "1 D"}, "both"),
        ("/ib/market-data/AAPL", {"end": "2025-03-10T14:00Z", "endDateTime": "x"}, "not both"),
        ("/ib/market-data/AAPL", {"start": "2025-03-11T00:00Z", "end": "2025-03-10T00:00Z"}, ""),
        ("/ib/market-data/A%01B", {}, "printable"),
        ("/ib/contract-details/AAPL", {"secType": "XYZ"}, "secType must be one of"),
        ("/ib/contract-details/AAPL", {"includeExpired": "often"}, "includeExpired"),
    ],
)
def test_invalid_parameters_are_400(
    api: httpx.Client, sim: Simulator, path: str, params: dict[str, str], fragment: str
) -> None:
    """Invalid parameters answer 400 with the error JSON, and nothing reaches IB."""
    before = sim.received.total
    message = _error(api.get(path, params=params), 400)
    assert fragment in message
    assert sim.received.total == before


def test_ambiguous_contract_is_400_with_candidates(api: httpx.Client) -> None:
    """An instrument matching several contracts answers 400 listing the candidates; ibdata
    found the ambiguity (IB answered with five contracts), so it is not labelled IB's."""
    params = {"secType": "FUT", "exchange": "EUREX", "currency": "EUR"}
    r = api.get("/ib/market-data/GBL", params=params)
    message = _error(r, 400, None)
    assert "matches" in message
    assert "IB error" not in message
    candidates = r.json()["candidates"]
    assert len(candidates) > 1
    assert {c["secType"] for c in candidates} == {"FUT"}


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/ib/market-data/ZZZZ", {}, 200),
        ("/ib/contract-details/ZZZZ", {}, 200),
        ("/ib/market-data/EURBBLF25", {}, None),
        ("/ib/contract-details/EURBBLF25", {}, None),
        ("/ib/market-data/AAPL", {"duration": "3600 S", "endDateTime": "1980-12-01T12:00Z"}, 162),
        ("/ib/nothing-here", {}, None),
    ],
)
def test_not_found_is_404(
    api: httpx.Client, path: str, params: dict[str, str], code: int | None
) -> None:
    """Unknown symbols, months a product does not trade, empty windows and unknown paths
    answer 404."""
    _error(api.get(path, params=params), 404, code)


def test_month_the_product_does_not_trade_says_so(api: httpx.Client) -> None:
    """The 404 for ``EURBBLF25`` says that no Bund trades in January."""
    assert "no contract trades in F" in _error(api.get("/ib/market-data/EURBBLF25"), 404)


def test_no_permission_is_403(
    sim_factory: Callable[..., Simulator],
    client_factory: Callable[..., Client],
    servers: Servers,
) -> None:
    """A symbol without market-data permission answers 403."""
    sim = sim_factory(no_permission=["MSFT"])
    http = servers.start(create_app(client_factory(sim), token=""))
    assert "permission" in _error(http.get("/ib/market-data/MSFT"), 403, 162)


def test_pacing_is_429_with_retry_after(
    sim: Simulator, client_factory: Callable[..., Client], servers: Servers
) -> None:
    """A pacing refusal that outlasts the client's retries answers 429 with Retry-After,
    the seconds until the likely rule leaves room."""
    client = client_factory(sim, pacing=PacingRules(time_scale=1000))
    http = servers.start(create_app(client, token=""))
    sim.fail_next(162, PACING, request="reqHistoricalData", times=10)
    r = http.get("/ib/market-data/AAPL")
    assert "pacing" in _error(r, 429, 162)
    assert r.headers["retry-after"] == "1"  # the ten-minute window, scaled 1000 times


def test_session_down_is_503(
    sim: Simulator, client_factory: Callable[..., Client], servers: Servers
) -> None:
    """Without a session health answers 503 with its usual body, and data requests 503."""
    client = client_factory(sim, auto_reconnect=False, timeout=0.5)
    http = servers.start(create_app(client, token=""))
    sim.drop_all()
    _until(lambda: not client.connected)
    r = http.get("/ib/health")
    assert r.status_code == 503
    assert set(r.json()) >= HEALTH_KEYS
    assert r.json()["status"] == "disconnected"
    _error(http.get("/ib/market-data/AAPL"), 503)


def test_reconnect_failure_is_503(
    sim: Simulator, client_factory: Callable[..., Client], servers: Servers
) -> None:
    """``POST /ib/reconnect`` answers 503 when TWS cannot be reached."""
    http = servers.start(create_app(client_factory(sim, connect_timeout=1), token=""))
    sim.stop()
    _error(http.post("/ib/reconnect"), 503)


def test_timeout_is_504(
    sim: Simulator, client_factory: Callable[..., Client], servers: Servers
) -> None:
    """A request IB does not answer in time answers 504."""
    client = client_factory(sim, pacing=None, timeout=0.5)
    http = servers.start(create_app(client, token=""))
    assert http.get("/ib/market-data/AAPL").status_code == 200  # contract details cached
    sim.set_latency(2)
    assert "no answer" in _error(http.get("/ib/market-data/AAPL"), 504)


def test_other_ib_error_is_502(api: httpx.Client, sim: Simulator) -> None:
    """Any other error IB reports answers 502 with IB's code."""
    assert api.get("/ib/market-data/AAPL").status_code == 200  # contract details cached
    sim.fail_next(
        10197, "No market data during competing live session", request="reqHistoricalData"
    )
    assert "competing" in _error(api.get("/ib/market-data/AAPL"), 502, 10197)


def test_wrong_method_keeps_the_error_shape(api: httpx.Client) -> None:
    """A wrong method answers 405 with the error JSON."""
    _error(api.delete("/ib/health"), 405)


# ---------------------------------------------------------------------- auth


@pytest.fixture
def guarded(client: Client, servers: Servers) -> httpx.Client:
    """An HTTP client for the adapter with the token ``s3cret``."""
    return servers.start(create_app(client, token="s3cret"))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ib/products"),
        ("GET", "/ib/market-data/AAPL"),
        ("GET", "/ib/contract-details/AAPL"),
        ("POST", "/ib/reconnect"),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer s3cre", "Basic s3cret"])
def test_token_is_required(
    guarded: httpx.Client, method: str, path: str, header: str | None
) -> None:
    """With a token, every endpoint but health answers 401 without the right bearer token."""
    headers = {"Authorization": header} if header else {}
    r = guarded.request(method, path, headers=headers)
    _error(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"


def test_right_token_is_accepted(guarded: httpx.Client) -> None:
    """The right bearer token opens every endpoint."""
    auth = {"Authorization": "Bearer s3cret"}
    assert guarded.get("/ib/products", headers=auth).status_code == 200
    assert guarded.get("/ib/market-data/AAPL", headers=auth).status_code == 200
    assert guarded.post("/ib/reconnect", headers=auth).status_code == 200


def test_health_and_docs_stay_open(guarded: httpx.Client) -> None:
    """``/ib/health``, ``/openapi.json`` and ``/docs`` need no token."""
    for path in ("/ib/health", "/openapi.json", "/docs"):
        assert guarded.get(path).status_code == 200, path


def test_token_from_the_environment(
    client: Client, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``IBDATA_API_TOKEN`` turns authentication on when no token is passed."""
    monkeypatch.setenv("IBDATA_API_TOKEN", "from-env")
    http = servers.start(create_app(client))
    _error(http.get("/ib/products"), 401)
    assert http.get("/ib/products", headers={"Authorization": "Bearer from-env"}).is_success


def test_no_token_means_open(api: httpx.Client) -> None:
    """Without a token every endpoint is open."""
    assert api.get("/ib/products").status_code == 200
    assert api.post("/ib/reconnect").status_code == 200


# ---------------------------------------------------------------------- schema and docs


def test_openapi_schema_and_docs(api: httpx.Client) -> None:
    """The OpenAPI schema names every endpoint and its parameters; ``/docs`` is served."""
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) == {
        "/ib/health",
        "/ib/reconnect",
        "/ib/market-data/{symbol}",
        "/ib/contract-details/{symbol}",
        "/ib/products",
        "/ib/stream/{symbol}",
    }
    names = {p["name"] for p in paths["/ib/market-data/{symbol}"]["get"]["parameters"]}
    assert {"duration", "barSize", "whatToShow", "useRTH", "endDateTime", "start", "end"} <= names
    assert "MarketDataBody" in schema["components"]["schemas"]
    assert "useRTH" in schema["components"]["schemas"]["MarketDataBody"]["properties"]
    assert "post" not in paths["/ib/market-data/{symbol}"]
    docs = api.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_openapi_says_what_the_endpoints_take_and_give(api: httpx.Client) -> None:
    """Closed sets are enums (dropdowns), parameters have human titles, each endpoint lists
    only the error responses it can give, the error body is complete, and the API's
    description is markdown, not the module's reST."""
    schema = api.get("/openapi.json").json()
    market = schema["paths"]["/ib/market-data/{symbol}"]["get"]
    params = {p["name"]: p for p in market["parameters"]}
    assert params["barSize"]["schema"]["enum"][:2] == ["1 secs", "5 secs"]
    assert "1 day" in params["barSize"]["schema"]["enum"]
    assert "BID_ASK" in params["whatToShow"]["schema"]["enum"]
    assert "FUT" in params["secType"]["schema"]["enum"]
    titles = {name: p["schema"].get("title") for name, p in params.items()}
    assert titles["barSize"] == "Bar size"
    assert titles["useRTH"] == "Regular trading hours only"
    camel = [name for name in titles if name != name.lower()]  # barSize, useRTH ...
    assert camel
    assert all(titles[name] != name.capitalize() for name in camel)  # not "Barsize", "Userth"
    assert set(market["responses"]) == {"200", "400", "403", "404", "429", "502", "503", "504"}
    products = schema["paths"]["/ib/products"]["get"]["responses"]
    assert set(products) == {"200"}  # no token set: nothing can go wrong but a bug
    details = schema["paths"]["/ib/contract-details/{symbol}"]["get"]["responses"]
    assert "429" not in details
    assert "403" not in details
    error = schema["components"]["schemas"]["ErrorBody"]["properties"]
    assert set(error) == {"error", "code", "timestamp", "candidates"}
    description = schema["info"]["description"]
    assert "``" not in description
    assert "---" not in description


def test_openapi_lists_401_only_behind_a_token(client: Client, servers: Servers) -> None:
    """With a token, every guarded endpoint documents 401; health stays open."""
    api = servers.start(create_app(client, token="s3cret"))
    paths = api.get("/openapi.json").json()["paths"]
    assert "401" in paths["/ib/products"]["get"]["responses"]
    assert "401" in paths["/ib/market-data/{symbol}"]["get"]["responses"]
    assert "401" not in paths["/ib/health"]["get"]["responses"]


def test_no_endpoint_can_trade(api: httpx.Client) -> None:
    """The only state-changing endpoint is reconnect; nothing names orders."""
    paths = api.get("/openapi.json").json()["paths"]
    writes = [(p, m) for p, ops in paths.items() for m in ops if m not in ("get", "head")]
    assert writes == [("/ib/reconnect", "post")]
    assert not any("order" in p for p in paths)


# ---------------------------------------------------------------------- sharing and logging


def test_concurrent_requests_share_one_session(api: httpx.Client, sim: Simulator) -> None:
    """Thirty requests at once all succeed over the one shared session."""
    paths = [
        "/ib/market-data/AAPL",
        "/ib/market-data/MSFT?barSize=1%20day&duration=1%20M",
        "/ib/market-data/EURBBL?barSize=5%20mins",
        "/ib/contract-details/SPY",
        "/ib/products",
        "/ib/health",
    ] * 5
    with ThreadPoolExecutor(30) as pool:
        statuses = list(pool.map(lambda p: api.get(p).status_code, paths))
    assert statuses == [200] * 30
    assert len(sim.client_ids) == 1
    assert sim.stats.connections == 1


def _access_lines(caplog: pytest.LogCaptureFixture, n: int) -> list[dict[str, Any]]:
    def lines() -> list[dict[str, Any]]:
        records = [r for r in caplog.records if r.name == "ibdata.http.access"]
        return [json.loads(r.getMessage()) for r in records]

    _until(lambda: len(lines()) >= n)  # written after the response has gone out
    return lines()


def test_access_log_has_one_json_line_per_request(
    guarded: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Each request logs one JSON line with method, path, status, duration and request id,
    and the token never appears."""
    auth = {"Authorization": "Bearer s3cret"}
    with caplog.at_level(logging.INFO, logger="ibdata.http.access"):
        guarded.get("/ib/health")
        guarded.get("/ib/products", headers=auth)
        guarded.get("/ib/products", headers={"Authorization": "Bearer not-s3cret"})
        r = guarded.get("/ib/market-data/ZZZZ", headers={**auth, "X-Request-ID": "abc-123"})
        lines = _access_lines(caplog, 4)
    assert len(lines) == 4
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("GET", "/ib/health", 200),
        ("GET", "/ib/products", 200),
        ("GET", "/ib/products", 401),
        ("GET", "/ib/market-data/ZZZZ", 404),
    ]
    for line in lines:
        assert isinstance(line["duration_ms"], float)
        assert line["request_id"]
    assert len({line["request_id"] for line in lines}) == 4
    assert lines[-1]["request_id"] == r.headers["x-request-id"] == "abc-123"
    assert "s3cret" not in caplog.text


def test_unsafe_request_id_is_replaced(api: httpx.Client) -> None:
    """A request id that is not a plain token is replaced by a generated one."""
    r = api.get("/ib/health", headers={"X-Request-ID": 'evil"id with spaces'})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


# ---------------------------------------------------------------------- the app's own client


def test_app_creates_and_closes_its_client(
    sim: Simulator, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a client the app connects one from ``IB_HOST``/``IB_PORT`` at start-up and
    closes it at shutdown."""
    monkeypatch.setenv("IB_HOST", sim.host)
    monkeypatch.setenv("IB_PORT", str(sim.port))
    monkeypatch.delenv("IB_CLIENT_ID", raising=False)
    monkeypatch.delenv("IBDATA_API_TOKEN", raising=False)
    http = servers.start(create_app())
    assert http.get("/ib/health").status_code == 200
    assert len(sim.client_ids) == 1
    servers.stop(http)
    _until(lambda: sim.client_ids == [])


def test_starts_without_tws_and_recovers(
    sim_factory: Callable[..., Simulator], servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With TWS down at start-up the app serves 503 health, keeps retrying in the
    background, and is healthy once TWS is up."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("IB_HOST", "127.0.0.1")
    monkeypatch.setenv("IB_PORT", str(port))
    monkeypatch.delenv("IBDATA_API_TOKEN", raising=False)
    http = servers.start(create_app())
    assert http.get("/ib/health").json()["status"] == "connecting"
    assert http.get("/ib/health").status_code == 503
    sim_factory(port=port)
    deadline = time.monotonic() + 20
    while http.get("/ib/health").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert http.get("/ib/health").json()["status"] == "healthy"
    assert http.get("/ib/market-data/AAPL").status_code == 200
    assert http.post("/ib/reconnect").status_code == 200


def test_a_given_client_stays_the_callers(
    client: Client, sim: Simulator, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client passed in is left open at shutdown unless ``manage_client``."""
    monkeypatch.delenv("IBDATA_API_TOKEN", raising=False)
    servers.stop(servers.start(create_app(client)))
    assert client.connected
    servers.stop(servers.start(create_app(client, manage_client=True)))
    assert not client.connected


# ---------------------------------------------------------------------- fuzzing


def test_fuzzed_requests_never_get_a_server_error(api: httpx.Client) -> None:
    """Requests generated from the OpenAPI schema never get a 5xx the schema does not
    list, and every answer matches the schema."""
    schema = schemathesis.openapi.from_dict(api.get("/openapi.json").json())
    base = str(api.base_url)
    checks = [
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
        schemathesis.checks.response_schema_conformance,
    ]
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        if operation.method.upper() != "GET" or operation.path.startswith("/ib/stream/"):
            # a valid stream request never ends by design (tests/test_http_stream.py)
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            case.validate_response(case.call(base_url=base), checks=checks)

        check()


# ---------------------------------------------------------------------- ibdata serve

SERVE = (
    "import argparse, sys; from ibdata import _serve; p = argparse.ArgumentParser(); "
    "_serve.add_arguments(p); sys.exit(_serve.run(p.parse_args(sys.argv[1:])))"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_serve(args: list[str], **env: str) -> tuple[int, str, str, dict[str, Any]]:
    """Run ``ibdata serve`` with ``args``, GET its health, SIGTERM it; the exit status,
    stdout, stderr and the health."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("IB_", "IBDATA_"))}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ | env,
    )
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any("REST adapter on" in line for line in lines):
            assert time.monotonic() < deadline, lines
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                line = proc.stdout.readline()
                assert line, f"ibdata serve exited with status {proc.wait()}"
                lines.append(line)
        port = re.search(r"on http://[^ ]*:(\d+)", "".join(lines))
        assert port is not None
        health = httpx.get(f"http://127.0.0.1:{port[1]}/ib/health", timeout=30).json()
        health["served_port"] = int(port[1])
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, "".join(lines) + out, err, health


def test_serve_simulate_stops_gracefully_on_sigterm() -> None:
    """``ibdata serve --simulate`` serves the simulator's data on ``IB_SERVER_PORT`` and
    exits 0 on SIGTERM."""
    port = _free_port()
    status, out, err, health = _run_serve(["--simulate"], IB_SERVER_PORT=str(port))
    assert status == 0, err
    assert health["status"] == "healthy"
    assert health["served_port"] == port
    assert "simulator listening on 127.0.0.1:" in out
    assert "ibdata serve stopped" in out
    assert "WARNING" not in err


def test_serve_takes_a_postgresql_store_from_ibdata_cache(postgres_url: str) -> None:
    """``IBDATA_CACHE`` may name a PostgreSQL database: ``ibdata serve`` opens it as its
    store (creating ibdata's schema there) and closes it on SIGTERM, releasing its leases."""
    from ibdata.store import open_store

    status, _, err, health = _run_serve(["--simulate", "--port", "0"], IBDATA_CACHE=postgres_url)
    assert status == 0, err
    assert health["status"] == "healthy"
    with open_store(postgres_url) as store:
        info = store.info()
    assert (info.backend, info.schema_version, info.leases) == ("postgresql", 4, 0)


@pytest.mark.parametrize("token", [None, "t0ken"])
def test_serve_warns_on_a_public_address_without_token(token: str | None) -> None:
    """Binding a non-loopback address without ``IBDATA_API_TOKEN`` prints a loud warning."""
    env = {"IBDATA_API_TOKEN": token} if token else {}
    status, _, err, _ = _run_serve(["--simulate", "--host", "0.0.0.0", "--port", "0"], **env)
    assert status == 0, err
    assert ("WARNING: listening on 0.0.0.0" in err) is (token is None)


def test_serve_module_stays_light() -> None:
    """Importing ``ibdata._serve`` (as the CLI does) loads neither fastapi nor uvicorn."""
    code = (
        "import sys, ibdata._serve; "
        "print(','.join(m for m in ('fastapi', 'uvicorn', 'ibdata.sim') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_invalid_request_refused_by_ib_is_400(api: httpx.Client) -> None:
    """A request IB refuses as invalid (10339: an end date for a continuous future) is a
    400 with IB's code, not a 502."""
    r = api.get(
        "/ib/market-data/EURBBL",
        params={"duration": "1 W", "barSize": "1 day", "endDateTime": "2025-03-01T00:00:00Z"},
    )
    assert "continuous future" in _error(r, 400, 10339)


def test_serve_cache_option_opens_the_cache(tmp_path: Path) -> None:
    """``ibdata serve --cache PATH`` (or IBDATA_CACHE) gives the shared client a bar cache."""
    path = tmp_path / "bars.sqlite"
    status, _, err, health = _run_serve(["--simulate", "--port", "0", "--cache", str(path)])
    assert status == 0, err
    assert health["status"] == "healthy"
    assert path.exists()
    env_path = tmp_path / "env.sqlite"
    status, _, err, _ = _run_serve(["--simulate", "--port", "0"], IBDATA_CACHE=str(env_path))
    assert status == 0, err
    assert env_path.exists()


def test_serve_refuses_a_negative_range_limit() -> None:
    """``ibdata serve --max-range-requests -1`` exits 2 with a message naming the option."""
    done = subprocess.run(
        [sys.executable, "-m", "ibdata", "serve", "--port", "0", "--max-range-requests", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--max-range-requests must be 0 or more" in done.stderr


def test_an_expired_month_reports_the_window_its_bars_are_in(api: httpx.Client) -> None:
    """A contract month that has expired is asked up to its last trading day, and the
    answer's window is that day's, not one ending now around bars of a year and more ago."""
    body = api.get("/ib/market-data/EURBBLH25", params={"duration": "1 W", "barSize": "1 day"})
    assert body.status_code == 200, body.text
    data = body.json()  # the simulator's clock: 2025-03-12, six days after H25's expiry
    assert data["contract"]["lastTradeDate"] == "20250306"
    assert data["end"] == "2025-03-07T00:00:00Z"
    assert data["start"] == "2025-02-28T00:00:00Z"
    assert [bar["time"] for bar in data["data"]] == [
        "20250228", "20250303", "20250304", "20250305", "20250306",
    ]  # fmt: skip
