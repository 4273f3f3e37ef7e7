"""The REST adapter: the older IB HTTP server's endpoints and JSON over one shared Client.

Needs the optional extra ``ibdata[http]``; run it with ``ibdata serve`` or build the app
with :func:`create_app`. Every request uses one long-lived :class:`ibdata.Client`. Nothing
here can place, change or cancel orders.

Endpoints
---------

- ``GET /ib/health``: the session's state (``status``, ``connected``, ``ready``, ``host``,
  ``port``, ``client_id``, ``timestamp``, plus ``server_version``, ``login_time_zone``,
  ``accounts``, ``farms`` ...). 200 when ``status`` is ``healthy``; 503 with the same body
  otherwise (``degraded``, ``connecting``, ``disconnected``). Open even when a token is
  set.
- ``POST /ib/reconnect``: drops the session and opens a new one; the new health, with
  status codes as for ``/ib/health``.
- ``GET /ib/market-data/{symbol}``: bars for a product code (``EURBBL``: the continuous
  future), a product code with a month suffix (``EURBBLM25``: the June 2025 contract) or a
  stock symbol (STK on SMART in USD). Query parameters:

  - ``duration``: IB's duration, ``1 D`` by default; not together with ``start`` (400).
  - ``barSize`` (``1 hour``), ``whatToShow`` (``TRADES``): IB's strings.
  - ``useRTH``: ``true``/``false``/``1``/``0`` (also ``yes``/``no``), ``false`` by default.
  - ``endDateTime``, or its newer name ``end`` (at most one of them): the end of the
    window, now by default.
  - ``start``: fetch the whole range ``[start, end)`` through the history engine (split
    into requests IB accepts, paced, merged); the answer's ``duration`` is then null.
  - ``secType``, ``exchange``, ``currency``: override the contract's fields.

  Times are ISO 8601 with an offset or ``Z`` (``2025-03-12T15:00:00Z``), a date alone
  (00:00 UTC), or IB's UTC form ``20250312-15:00:00``; a time without a zone is a 400,
  with the message Python and the CLI give. The answer has ``symbol``,
  ``duration``, ``barSize``, ``whatToShow``, ``useRTH``, ``start``, ``end``, ``contract``,
  ``data``, ``count`` and ``durationMs``. Each bar's ``time`` is ``YYYYMMDD`` (the session
  date) for daily and longer bars and ISO 8601 UTC with ``Z`` for intraday bars;
  ``volume``, ``wap`` and ``count`` are null when IB has none.
- ``GET /ib/contract-details/{symbol}``: every contract IB lists. ``code``, when given,
  names the instrument instead of ``symbol`` (which is echoed back). A product code
  resolves through the registry (``EURBBL``: the Euro-Bund's continuous future, with or
  without ``code=EURBBL``); a plain symbol is a stock on SMART in USD. ``secType``,
  ``exchange`` and ``currency`` override those fields only when given, so the documented
  defaults STK/SMART/USD apply to plain symbols, never to product codes.
  ``includeExpired=true`` finds expired futures.
- ``GET /ib/products``: the product registry, code → ``symbol``, ``secType`` (what the
  plain code resolves to: ``CONTFUT`` for futures), ``exchange``, ``currency``, ``name``,
  ``tradingClass``, ``multiplier``, ``months``.
- ``GET /openapi.json``, ``GET /docs``: the schema and interactive docs (always open).

Errors
------

Every error is ``{"error": message, "code": IB's code or null, "timestamp": ISO 8601}``:

- 400: invalid parameters (also FastAPI's own validation errors), a request IB refused as
  invalid (``InvalidRequestError``: 321, 10314, 10339 ..., with IB's code), and an
  instrument that matches several contracts (``AmbiguousContractError``; narrow it with a
  month, ``secType``, ``exchange`` or ``currency``; the body adds ``candidates``)
- 401: a token is required and was missing or wrong
- 403: no market-data permission for the instrument
- 404: unknown symbol or product code (a month suffix the product does not trade), or IB
  has no data for the window
- 429: IB's pacing rules refused the request after ibdata's own retries; ``Retry-After``
  says how many seconds to wait
- 502: any other error IB reported
- 503: no session to TWS / IB Gateway
- 504: IB did not answer in time (the request was cancelled at IB)

Security
--------

With a token (``IBDATA_API_TOKEN``), every ``/ib/`` endpoint but ``/ib/health`` requires
``Authorization: Bearer <token>``, compared in constant time. Each request writes one JSON
line to the ``ibdata.http.access`` logger (method, path, status, duration_ms, request_id,
client); headers and tokens are never logged. A request's ``X-Request-ID`` header is used
as its id when it is a plain token of at most 128 characters, and is returned on the
response.
"""

import contextlib
import datetime as dt
import json
import logging
import math
import os
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Annotated, Any

import attrs
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ibdata import _validate as v
from ibdata._client import Client
from ibdata._docs_ui import add_docs
from ibdata._version import __version__
from ibdata.exceptions import (
    AmbiguousContractError,
    ConnectError,
    ContractNotFoundError,
    IBDataError,
    InvalidRequestError,
    NoDataError,
    PacingViolationError,
    PermissionDeniedError,
    RequestError,
    RequestTimeoutError,
    SessionError,
    UnknownProductError,
)
from ibdata.models import BarSize, Contract, ContractDetails, Health, SecType, WhatToShow

__all__ = ["create_app"]

log = logging.getLogger(__name__)
access_log = logging.getLogger("ibdata.http.access")

UTC = dt.timezone.utc
_IB_UTC = re.compile(r"\d{8}-\d{2}:\d{2}:\d{2}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

#: Exception class → HTTP status; the first match wins.
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (PacingViolationError, 429),
    (PermissionDeniedError, 403),
    (AmbiguousContractError, 400),
    (InvalidRequestError, 400),
    (ContractNotFoundError, 404),
    (NoDataError, 404),
    (UnknownProductError, 404),
    (SessionError, 503),
    (RequestTimeoutError, 504),
    (IBDataError, 502),
    (ValueError, 400),
    (TypeError, 400),
)


# ---------------------------------------------------------------- schema (documentation)
class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)


class LoginTimeZoneBody(BaseModel):
    """TWS's login time zone (``ibdata.LoginTimeZone.to_dict()``)."""

    name: str
    zone: str | None
    certainty: str


class HealthBody(BaseModel):
    """The session's state (``ibdata.Health.to_dict()``)."""

    status: str
    connected: bool
    ready: bool
    host: str
    port: int
    client_id: int | None
    server_version: int | None
    login_time_zone: LoginTimeZoneBody | None
    accounts: list[str]
    farms: dict[str, str]
    last_connectivity_event: dict[str, Any] | None
    connected_since: str | None
    reconnect_count: int
    ibapi_version: str
    timestamp: str


class ContractBody(_Camel):
    """A contract as IB returned it."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    primary_exchange: str
    last_trade_date: str
    multiplier: str


class ErrorBody(BaseModel):
    """An error: what went wrong in the request's own terms."""

    error: str = Field(description="what was wrong, naming the REST parameter")
    code: int | None = Field(
        description="IB's error code when IB reported the error; null when ibdata found it"
    )
    timestamp: str = Field(description="when, ISO 8601 UTC with milliseconds and Z")
    candidates: list[ContractBody] | None = Field(
        default=None,
        description="the contracts an ambiguous instrument matches (400 only): narrow it "
        "with a month, secType, exchange or currency",
    )


class BarBody(BaseModel):
    """One bar: ``time`` is ``YYYYMMDD`` for daily and longer bars, else ISO 8601 UTC."""

    time: str
    open: float
    high: float
    low: float
    close: float
    volume: float | None
    count: int | None
    wap: float | None


class MarketDataBody(_Camel):
    """Historical bars and the request they answer."""

    symbol: str
    duration: str | None
    bar_size: str
    what_to_show: str
    use_rth: bool = Field(alias="useRTH")
    start: str | None
    end: str | None
    contract: ContractBody | None
    data: list[BarBody]
    count: int
    duration_ms: int


class DetailsBody(ContractBody):
    """A contract and what IB says about it."""

    long_name: str
    category: str
    industry: str
    subcategory: str
    time_zone_id: str
    market_name: str
    min_tick: float
    contract_month: str
    real_expiration_date: str
    stock_type: str
    valid_exchanges: list[str]
    sec_ids: dict[str, str]
    trading_hours: str
    liquid_hours: str


class ContractDetailsBody(BaseModel):
    """Every contract IB lists for the instrument."""

    symbol: str
    contracts: list[DetailsBody]
    count: int


class ProductBody(_Camel):
    """A product code's instrument."""

    symbol: str
    sec_type: str
    exchange: str
    currency: str
    name: str
    trading_class: str
    multiplier: str
    months: str


class ProductsBody(BaseModel):
    """The product registry."""

    products: dict[str, ProductBody]
    count: int


_SYMBOL = (
    "a product code (EURBBL: the continuous future), a product code with a month "
    "(EURBBLM25), or a symbol (a stock on SMART in USD unless overridden)"
)
_STK = "overrides the security type; default STK for a plain symbol, the product's own type"
_SMART = "overrides the exchange; default SMART for a plain symbol, the product's own exchange"
_USD = (
    "overrides the currency; default USD for a plain symbol (or the exchange's own "
    "currency, such as EUR on EUREX), the product's own currency"
)

#: What each status means, for the schema.
_MEANING: dict[int, str] = {
    400: "invalid parameters, a request IB refused as invalid, or an ambiguous instrument",
    401: "a token is required and was missing or wrong",
    403: "no market-data permission for the instrument",
    404: "unknown symbol or product code, or no data in the window",
    429: "IB's pacing rules refused the request; Retry-After gives the seconds to wait",
    502: "another error IB reported",
    503: "no session to TWS / IB Gateway",
    504: "IB did not answer in time (the request was cancelled at IB)",
}


def _responses(*statuses: int, guarded: bool) -> dict[int | str, dict[str, Any]]:
    """The error responses an endpoint can really give (401 only behind a token)."""
    chosen = sorted({*statuses, *((401,) if guarded else ())})
    return {s: {"model": ErrorBody, "description": _MEANING[s]} for s in chosen}


#: IB's closed sets, offered as dropdowns; ibdata still validates (other spellings IB
#: accepts, such as "1W", keep working) and answers in the REST parameter's name.
_BAR_SIZES = [size.value for size in BarSize]
_SHOWS = [show.value for show in WhatToShow]
_SEC_TYPES = [kind.value for kind in SecType]

#: The contract overrides both data endpoints take.
SecTypeQuery = Annotated[
    str | None,
    Query(
        alias="secType",
        title="Security type",
        description=_STK,
        json_schema_extra={"enum": _SEC_TYPES},
    ),
]
ExchangeQuery = Annotated[str | None, Query(title="Exchange", description=_SMART)]
CurrencyQuery = Annotated[str | None, Query(title="Currency", description=_USD)]

#: Python parameter names in ibdata's messages → the REST parameters they come from.
_REST_NAMES = (
    ("bar_size", "barSize"),
    ("what_to_show", "whatToShow"),
    ("use_rth", "useRTH"),
    ("sec_type", "secType"),
    ("include_expired", "includeExpired"),
)

#: The description of the API in the schema (markdown; the module docstring is reST).
_DESCRIPTION = """Historical bars and contract data from Interactive Brokers' TWS or IB
Gateway, through ibdata: the older IB HTTP server's endpoints and JSON.

* Times are ISO 8601 with `Z` or an offset (`2025-03-12T15:00:00Z`), a date alone
  (00:00 UTC), or IB's UTC form `20250312-15:00:00`; a time without a zone is refused.
* `start` (with `end`) downloads a whole range, split into requests IB accepts and paced
  under IB's rules; `duration` is one request.
* Every error is `{"error", "code", "timestamp"}`; `code` is IB's when IB reported it.
* Nothing here can place, change or cancel orders.
"""


@contextlib.contextmanager
def _rest_names() -> Iterator[None]:
    """Say what was wrong in the REST caller's terms: ``barSize``, not ``bar_size``."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        if isinstance(exc, IBDataError):
            raise
        text = str(exc)
        for python, rest in _REST_NAMES:
            text = re.sub(rf"\b{python}\b", rest, text)
        if text == str(exc):
            raise
        raise type(exc)(text) from exc


# ---------------------------------------------------------------- serialization
def _now() -> str:
    return dt.datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(text: str | None, name: str) -> dt.datetime | None:
    if text is None:
        return None
    if _IB_UTC.fullmatch(text):
        return dt.datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    # the rule of every face: a date alone is 00:00 UTC, a time needs Z or an offset
    return v.when(text, name)


def _iso(value: dt.date | None) -> str | None:
    """ISO 8601 UTC with ``Z`` for a datetime, ``YYYYMMDD`` for a date (daily bars)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None if value is None else value.strftime("%Y%m%d")


def _number(value: float | None) -> float | int | None:
    return int(value) if value is not None and value.is_integer() else value


def _contract(c: Contract) -> dict[str, Any]:
    return {to_camel(key): value for key, value in attrs.asdict(c).items()}


def _details(d: ContractDetails) -> dict[str, Any]:
    return _contract(d.contract) | {
        "longName": d.long_name,
        "category": d.category,
        "industry": d.industry,
        "subcategory": d.subcategory,
        "timeZoneId": d.time_zone_id,
        "marketName": d.market_name,
        "minTick": d.min_tick,
        "contractMonth": d.contract_month,
        "realExpirationDate": d.real_expiration_date,
        "stockType": d.stock_type,
        "validExchanges": list(d.valid_exchanges),
        "secIds": dict(d.sec_ids),
        "tradingHours": d.raw_trading_hours,
        "liquidHours": d.raw_liquid_hours,
    }


def _health(h: Health) -> JSONResponse:
    return JSONResponse(h.to_dict(), 200 if h.status == "healthy" else 503)


def _error(
    status: int,
    message: str,
    code: int | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"error": message, "code": code, "timestamp": _now()}
    return JSONResponse(body | extra, status, headers=headers)


# ---------------------------------------------------------------- errors
async def _on_exception(request: Request, exc: Exception) -> JSONResponse:
    status = next((s for cls, s in _STATUS if isinstance(exc, cls)), 500)
    if status == 500:  # a bug: Starlette re-raises it for the server to log
        return _error(500, "internal error; see the server's log")
    code = exc.code if isinstance(exc, (RequestError, SessionError)) else None
    code = code or None  # 0: ibdata found it, not IB
    if isinstance(exc, PacingViolationError):
        retry = {"Retry-After": str(math.ceil(exc.retry_after))}
        return _error(status, str(exc), code, headers=retry)
    if isinstance(exc, AmbiguousContractError):
        candidates = [_contract(c) for c in exc.candidates]
        return _error(status, str(exc), code, candidates=candidates)
    return _error(status, str(exc), code)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = [f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors()]
    return _error(400, "; ".join(parts) or "invalid request")


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail), headers=exc.headers)


# ---------------------------------------------------------------- access log
class _AccessLog:
    """ASGI middleware: one JSON line per request, and an ``X-Request-ID`` on the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        status = 500  # unless a response starts
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            line = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "request_id": request_id,
                "client": (scope.get("client") or [None])[0],
            }
            access_log.info(json.dumps(line))
        return None


# ---------------------------------------------------------------- the app
class _App(FastAPI):
    def openapi(self) -> dict[str, Any]:
        """The schema without FastAPI's 422: validation errors are answered with 400."""
        if self.openapi_schema is None:
            schema = super().openapi()
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        return self.openapi_schema or {}


async def _ib(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


IB = Annotated[Client, Depends(_ib)]


def create_app(
    client: Client | None = None,
    *,
    token: str | None = None,
    manage_client: bool = False,
    max_range_requests: int | None = None,
) -> FastAPI:
    """Build the FastAPI app serving the older HTTP server's endpoints over one Client.

    Args:
        client: the client every request uses, shared by all of them. None creates one with
            :meth:`ibdata.Client.from_env` at start-up, connects it, and closes it at
            shutdown. A given client stays the caller's (connect it first) unless
            ``manage_client``.
        token: the bearer token every endpoint but ``/ib/health`` requires. None reads
            ``IBDATA_API_TOKEN``; None or an empty string there (or ``token=""``) turns
            authentication off.
        manage_client: with a given ``client``, connect it at start-up unless it is
            connected, and close it at shutdown.
        max_range_requests: the most IB requests one ``start``/``end`` range may need
            (passed as ``max_requests`` to :meth:`ibdata.Client.get_historical_bars`); a
            larger range is answered 400 before any bars are requested. None sets no
            limit; ``ibdata serve`` sets 400.

    Returns:
        The app, for uvicorn or any ASGI server. A failed connect at start-up is logged and
        the app serves anyway: ``/ib/health`` answers 503 until ``POST /ib/reconnect``
        succeeds.

    Raises:
        TypeError: ``client`` is not a Client.
        ValueError: ``max_range_requests`` is below 1.
    """
    if client is not None and not isinstance(client, Client):
        raise TypeError(f"client must be an ibdata.Client or None, got {client!r}")
    if max_range_requests is not None and max_range_requests < 1:
        raise ValueError(f"max_range_requests must be at least 1, got {max_range_requests}")
    secret = os.environ.get("IBDATA_API_TOKEN", "") if token is None else token
    bearer = HTTPBearer(auto_error=False, description="the server's IBDATA_API_TOKEN")

    async def authorize(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        given = credentials.credentials if credentials is not None else ""
        if not secrets.compare_digest(given.encode(), secret.encode()):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ib = client if client is not None else Client.from_env()
        app.state.client = ib
        managed = client is None or manage_client
        if managed and not ib.connected:
            try:
                await run_in_threadpool(lambda: ib.connect(retry_in_background=True))
            except ConnectError as exc:
                log.warning(
                    "could not connect to TWS (%s); retrying in the background "
                    "(POST /ib/reconnect to retry now)",
                    exc,
                )
        try:
            yield
        finally:
            if managed:
                await run_in_threadpool(ib.close)

    app = _App(
        title="ibdata",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load from a CDN; add_docs serves installed files
        redoc_url=None,
    )
    add_docs(app)
    app.state.client = client
    app.add_middleware(_AccessLog)
    for cls in (IBDataError, ValueError, TypeError, Exception):
        app.add_exception_handler(cls, _on_exception)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    guard = [Depends(authorize)] if secret else []

    guarded = bool(secret)
    unhealthy: dict[int | str, dict[str, Any]] = {
        503: {"model": HealthBody, "description": "not healthy: the same body, with why"}
    }

    @app.get("/ib/health", response_model=HealthBody, responses=unhealthy)
    def health(ib: IB) -> JSONResponse:
        """The session's state; 503 unless healthy."""
        return _health(ib.health())

    @app.post(
        "/ib/reconnect",
        response_model=HealthBody,
        responses=unhealthy | _responses(guarded=guarded),
        dependencies=guard,
    )
    def reconnect(ib: IB) -> JSONResponse:
        """Drop the session and open a new one; the new health."""
        ib.reconnect()
        return _health(ib.health())

    @app.get(
        "/ib/market-data/{symbol}",
        response_model=MarketDataBody,
        responses=_responses(400, 403, 404, 429, 502, 503, 504, guarded=guarded),
        dependencies=guard,
        summary="Historical bars",
    )
    def market_data(
        symbol: Annotated[str, Path(title="Symbol", description=_SYMBOL)],
        *,
        ib: IB,
        duration: Annotated[
            str | None,
            Query(
                title="Duration",
                description="IB's duration back from the end, '<n> <S|D|W|M|Y>' "
                "(at most 365 D, 52 W, 12 M); default 1 D; not with start",
                examples=["1 D"],
            ),
        ] = None,
        bar_size: Annotated[
            str,
            Query(
                alias="barSize",
                title="Bar size",
                description="IB's bar size",
                json_schema_extra={"enum": _BAR_SIZES},
            ),
        ] = "1 hour",
        what_to_show: Annotated[
            str,
            Query(
                alias="whatToShow",
                title="What to show",
                description="what the bars measure",
                json_schema_extra={"enum": _SHOWS},
            ),
        ] = "TRADES",
        use_rth: Annotated[
            bool,
            Query(alias="useRTH", title="Regular trading hours only"),
        ] = False,
        end_date_time: Annotated[
            str | None,
            Query(alias="endDateTime", title="End", description="the window's end; default now"),
        ] = None,
        start: Annotated[
            str | None,
            Query(title="Start", description="download the whole range [start, end)"),
        ] = None,
        end: Annotated[
            str | None, Query(title="End (newer name)", description="endDateTime's newer name")
        ] = None,
        sec_type: SecTypeQuery = None,
        exchange: ExchangeQuery = None,
        currency: CurrencyQuery = None,
    ) -> JSONResponse:
        """Historical bars for a product code, a product code with a month, or a symbol."""
        if end is not None and end_date_time is not None:
            raise ValueError("give endDateTime or end, not both")
        started = time.perf_counter()
        with _rest_names():
            bars = ib.get_historical_bars(
                symbol,
                duration=duration,
                start=_time(start, "start"),
                end=_time(end, "end") or _time(end_date_time, "endDateTime"),
                bar_size=bar_size,
                what_to_show=what_to_show,
                use_rth=use_rth,
                sec_type=sec_type,
                exchange=exchange,
                currency=currency,
                max_requests=max_range_requests,
            )
        elapsed = round((time.perf_counter() - started) * 1000)
        data = [
            {
                "time": _iso(b.time),
                "open": b.open,
                "high": b.high,
                "low": b.low,
                "close": b.close,
                "volume": _number(b.volume),
                "count": b.count,
                "wap": b.wap,
            }
            for b in bars
        ]
        body = {
            "symbol": symbol,
            "duration": duration if duration is not None or start is not None else "1 D",
            "barSize": bars.bar_size.value,
            "whatToShow": bars.what_to_show.value,
            "useRTH": bars.use_rth,
            "start": _iso(bars.start),
            "end": _iso(bars.end),
            "contract": None if bars.contract is None else _contract(bars.contract),
            "data": data,
            "count": len(data),
            "durationMs": elapsed,
        }
        return JSONResponse(body)

    @app.get(
        "/ib/contract-details/{symbol}",
        response_model=ContractDetailsBody,
        responses=_responses(400, 404, 502, 503, 504, guarded=guarded),
        dependencies=guard,
        summary="Contract details",
    )
    def contract_details(
        symbol: Annotated[str, Path(title="Symbol", description=_SYMBOL)],
        *,
        ib: IB,
        code: Annotated[
            str | None,
            Query(title="Product code", description="a product code; wins over symbol"),
        ] = None,
        sec_type: SecTypeQuery = None,
        exchange: ExchangeQuery = None,
        currency: CurrencyQuery = None,
        include_expired: Annotated[
            bool, Query(alias="includeExpired", title="Include expired contracts")
        ] = False,
    ) -> JSONResponse:
        """Every contract IB lists for a symbol or product code."""
        with _rest_names():
            details = ib.get_contract_details(
                code or symbol,
                sec_type=sec_type,
                exchange=exchange,
                currency=currency,
                include_expired=include_expired,
            )
        contracts = [_details(d) for d in details]
        return JSONResponse({"symbol": symbol, "contracts": contracts, "count": len(contracts)})

    @app.get(
        "/ib/products",
        response_model=ProductsBody,
        responses=_responses(guarded=guarded),
        dependencies=guard,
        summary="Product codes",
    )
    async def products(ib: IB) -> JSONResponse:
        """The product codes the registry knows."""
        out = {}
        for code, p in ib.registry.products.items():
            spec = p.spec()
            out[code] = {
                "symbol": spec.symbol,
                "secType": spec.sec_type.value,
                "exchange": spec.exchange,
                "currency": spec.currency,
                "name": p.name,
                "tradingClass": p.trading_class,
                "multiplier": p.multiplier,
                "months": p.months,
            }
        return JSONResponse({"products": out, "count": len(out)})

    return app
