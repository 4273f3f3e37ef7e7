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
- ``GET /ib/stream/{symbol}``: live bars as Server-Sent Events
  (:meth:`ibdata.Client.stream_bars`). ``barSize`` (required), ``whatToShow``, ``useRTH``,
  ``secType``, ``exchange``, ``currency`` as for market data; ``start`` (a time) or
  ``lookback`` (seconds) to begin with history; ``partial=true`` for the bar still
  forming. Each final bar is ``id: <its time>``, ``event: bar``, ``data: <the bar's JSON>``
  (as one element of market data's ``data``); a forming bar is ``event: partial`` without
  an id; what happens to the stream (a gap backfilled, a resubscription ...) is ``event:
  notice`` with ``{"kind", "detail", "code"}``; an error that ends the stream is ``event:
  error`` with the error body, and the response ends. A comment ``: keep-alive`` is sent
  after 15 s of silence. ``Last-Event-ID`` (or the ``lastEventId`` parameter) resumes after
  that bar, with no gap and no duplicate. Errors found before streaming are the usual JSON
  answers. The stream is cancelled at IB when the HTTP client goes away or the app stops.
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

import asyncio
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

import anyio
import attrs
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ibdata import _validate as v
from ibdata._client import Client
from ibdata._docs_ui import add_docs
from ibdata._stream import LIVE_WHAT_TO_SHOW, BarStream, StreamEvent
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
from ibdata.models import (
    Bar,
    BarSize,
    Contract,
    ContractDetails,
    Health,
    SecType,
    WhatToShow,
)

__all__ = ["create_app"]

log = logging.getLogger(__name__)
access_log = logging.getLogger("ibdata.http.access")

UTC = dt.timezone.utc
_IB_UTC = re.compile(r"\d{8}-\d{2}:\d{2}:\d{2}")
_DATE_ID = re.compile(r"\d{8}")
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


def _json_responses(*statuses: int, guarded: bool) -> dict[int | str, dict[str, Any]]:
    """:func:`_responses` for an endpoint whose own answer is not JSON: FastAPI would
    document a ``model`` in the endpoint's media type, but errors are JSON."""
    schema = {"$ref": "#/components/schemas/ErrorBody"}  # there: the other endpoints use it
    return {
        status: {
            "description": response["description"],
            "content": {"application/json": {"schema": schema}},
        }
        for status, response in _responses(*statuses, guarded=guarded).items()
    }


#: IB's closed sets, offered as dropdowns; ibdata still validates (other spellings IB
#: accepts, such as "1W", keep working) and answers in the REST parameter's name.
_BAR_SIZES = [size.value for size in BarSize]
_SHOWS = [show.value for show in WhatToShow]
_SEC_TYPES = [kind.value for kind in SecType]

#: What live bars take (IB's keepUpToDate rules).
_LIVE_SIZES = [size.value for size in BarSize if size.seconds >= 5]
_LIVE_SHOWS = [show.value for show in LIVE_WHAT_TO_SHOW]

#: The event stream's 200, for the schema.
_STREAM_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events until the client disconnects: `event: bar` (with "
        "`id:`, the bar's time) for each final bar, `event: partial` for the bar forming "
        "(with partial=true), `event: notice` ({kind, detail, code}) for what happens to "
        "the stream, `event: error` (the error body) when an error ends it, and the "
        "comment `: keep-alive` after 15 s of silence. Each `data:` is one line of JSON; "
        "a bar is as in market data's `data`.",
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": 'id: 2025-03-12T15:00:00Z\nevent: bar\ndata: {"time":'
                '"2025-03-12T15:00:00Z","open":254.2,"high":254.5,"low":254.1,'
                '"close":254.3,"volume":5100,"count":61,"wap":254.28}\n\n',
            }
        },
    }
}

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


def _bar(b: Bar) -> dict[str, Any]:
    """One bar as market data's ``data`` holds it (and an event stream's ``data:``)."""
    return {
        "time": _iso(b.time),
        "open": b.open,
        "high": b.high,
        "low": b.low,
        "close": b.close,
        "volume": _number(b.volume),
        "count": b.count,
        "wap": b.wap,
    }


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


def _body(message: str, code: int | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": message, "code": code, "timestamp": _now()} | extra


def _error(
    status: int,
    message: str,
    code: int | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(_body(message, code, **extra), status, headers=headers)


# ---------------------------------------------------------------- errors
def _failure(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    """The status, error body and headers ``exc`` is answered with."""
    status = next((s for cls, s in _STATUS if isinstance(exc, cls)), 500)
    if status == 500:  # a bug
        return 500, _body("internal error; see the server's log"), None
    code = exc.code if isinstance(exc, (RequestError, SessionError)) else None
    code = code or None  # 0: ibdata found it, not IB
    if isinstance(exc, PacingViolationError):
        return status, _body(str(exc), code), {"Retry-After": str(math.ceil(exc.retry_after))}
    if isinstance(exc, AmbiguousContractError):
        candidates = [_contract(c) for c in exc.candidates]
        return status, _body(str(exc), code, candidates=candidates), None
    return status, _body(str(exc), code), None


async def _on_exception(request: Request, exc: Exception) -> JSONResponse:
    # a bug (500) is answered too, and Starlette re-raises it for the server to log
    status, body, headers = _failure(exc)
    return JSONResponse(body, status, headers=headers)


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


# ---------------------------------------------------------------- live bars
#: Seconds of silence after which an event stream sends the comment ``: keep-alive``, so
#: that proxies keep the connection open.
KEEP_ALIVE = 15.0
#: Seconds between an event stream's checks that its BarStream goes on.
_POLL = 0.5
#: What an event stream's queue is told when the bar stream has ended.
_ENDED = object()


def _sse(event: str, data: Mapping[str, Any], id: str | None = None) -> bytes:
    """One Server-Sent Event: ``id:`` (if any), ``event:``, one ``data:`` line of JSON."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = "" if id is None else f"id: {id}\n"
    return f"{head}event: {event}\ndata: {text}\n\n".encode()


def _resume(text: str | None, name: str, size: BarSize) -> dt.datetime | dt.date | None:
    """Where a stream resumes after the bar whose event id is ``text``: the next bar's start
    (intraday) or the next day (daily and longer bars); None for no id.

    Raises:
        ValueError: ``text`` is no bar time, naming ``name``.
    """
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        if _DATE_ID.fullmatch(text):
            last = dt.datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)
        else:
            last = v.when(text, name).astimezone(UTC)
    except ValueError:
        raise ValueError(
            f"{name} must be the id of a bar event: its time, such as 2025-03-12T15:00:00Z "
            f"(or 20250312 for daily bars); got {text!r}"
        ) from None
    if size.intraday:
        return last + dt.timedelta(seconds=size.seconds)
    return last.date() + dt.timedelta(days=1)


class _EventStream(StreamingResponse):
    """A live :class:`ibdata.BarStream` as ``text/event-stream`` (``GET /ib/stream``).

    The stream's thread hands bars and events to the event loop (``on_bar``/``on_event``
    put them on ``inbox``): no worker thread of the app waits for bars. When the HTTP
    client goes away, the server stops, or the stream ends, the stream is closed (its
    subscription cancelled at IB) and forgotten by ``live``.
    """

    media_type = "text/event-stream"

    def __init__(
        self, stream: BarStream, inbox: asyncio.Queue[object], live: set[BarStream]
    ) -> None:
        self._stream = stream
        self._live = live
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(self._events(inbox), headers=headers)

    async def _events(self, inbox: asyncio.Queue[object]) -> AsyncIterator[bytes]:
        stream = self._stream
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while True:
            try:
                item = await asyncio.wait_for(inbox.get(), _POLL)
            except asyncio.TimeoutError:
                if stream.closed:
                    # its last deliveries were queued on the loop before it ended
                    loop.call_soon(inbox.put_nowait, _ENDED)
                elif loop.time() - quiet_since >= KEEP_ALIVE:
                    quiet_since = loop.time()
                    yield b": keep-alive\n\n"
                continue
            quiet_since = loop.time()
            if item is _ENDED:
                if stream.error is not None:
                    _, body, _ = _failure(stream.error)
                    yield _sse("error", body)
                return
            if isinstance(item, StreamEvent):
                if item.kind != "ended":  # the error event says it
                    yield _sse(
                        "notice", {"kind": item.kind, "detail": item.detail, "code": item.code}
                    )
            elif isinstance(item, Bar):
                if type(item) is Bar:
                    yield _sse("bar", _bar(item), id=_iso(item.time))
                else:  # a PartialBar
                    yield _sse("partial", _bar(item))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def respond() -> None:
                    with contextlib.suppress(OSError):  # the client went away mid-write
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(respond)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            self._stream.close(timeout=0)
            self._live.discard(self._stream)


# ---------------------------------------------------------------- the app
class _App(FastAPI):
    #: The bar streams of open event streams (``GET /ib/stream``).
    live_streams: set[BarStream]

    def close_streams(self) -> int:
        """End every open event stream now: each response ends and its subscription is
        cancelled at IB. Returns how many there were.

        For a server that is stopping: uvicorn waits for responses in flight (up to its
        graceful timeout) before the app's shutdown runs, and an event stream never ends
        by itself.
        """
        streams = list(self.live_streams)
        for stream in streams:
            stream.close(timeout=0)
        return len(streams)

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
        succeeds. Its ``close_streams()`` ends every open event stream (``/ib/stream``)
        at once, for a server that begins to stop; they are closed at shutdown anyway.

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
    async def lifespan(app: _App) -> AsyncIterator[None]:
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
            app.close_streams()
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
    app.live_streams = set()
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
        data = [_bar(b) for b in bars]
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

    @app.get(
        "/ib/stream/{symbol}",
        response_class=_EventStream,
        status_code=200,
        responses=_STREAM_OK | _json_responses(400, 403, 404, 429, 502, 503, 504, guarded=guarded),
        dependencies=guard,
        summary="Live bars (Server-Sent Events)",
    )
    async def stream(
        symbol: Annotated[str, Path(title="Symbol", description=_SYMBOL)],
        *,
        ib: IB,
        bar_size: Annotated[
            str,
            Query(
                alias="barSize",
                title="Bar size",
                description="IB's bar size, 5 secs or longer (IB's rule for live bars)",
                json_schema_extra={"enum": _LIVE_SIZES},
            ),
        ],
        what_to_show: Annotated[
            str,
            Query(
                alias="whatToShow",
                title="What to show",
                description="what the bars measure (IB streams these four)",
                json_schema_extra={"enum": _LIVE_SHOWS},
            ),
        ] = "TRADES",
        use_rth: Annotated[
            bool,
            Query(alias="useRTH", title="Regular trading hours only"),
        ] = False,
        start: Annotated[
            str | None,
            Query(
                title="Start",
                description="first send the bars from this time (history), then the live ones; "
                "default: only bars that end from now on",
            ),
        ] = None,
        lookback: Annotated[
            float | None,
            Query(title="Lookback", description="instead of start: this many seconds before now"),
        ] = None,
        partial: Annotated[
            bool,
            Query(
                title="Partial bars",
                description="also send the bar still forming after every update "
                "(event: partial, without an id)",
            ),
        ] = False,
        last_event_id: Annotated[
            str | None,
            Header(
                alias="Last-Event-ID",
                title="Last event id",
                description="resume after this bar (the id of its event): sent by EventSource "
                "when it reconnects; wins over start, lookback and lastEventId",
            ),
        ] = None,
        last_event_id_query: Annotated[
            str | None,
            Query(
                alias="lastEventId",
                title="Last event id (parameter)",
                description="Last-Event-ID, for clients that cannot set headers",
            ),
        ] = None,
        sec_type: SecTypeQuery = None,
        exchange: ExchangeQuery = None,
        currency: CurrencyQuery = None,
    ) -> _EventStream:
        """Live bars of a product code, a product code with a month, or a symbol, as
        Server-Sent Events: history from ``start`` first if given, then each bar as it
        ends; ``Last-Event-ID`` resumes after a bar with no gap and no duplicate."""
        with _rest_names():
            size = v.bar_size(bar_size)
            resume = _resume(last_event_id, "Last-Event-ID", size) or _resume(
                last_event_id_query, "lastEventId", size
            )
            begin = resume if resume is not None else _time(start, "start")
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[object] = asyncio.Queue()

        def deliver(item: object) -> None:  # on the stream's thread
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
                loop.call_soon_threadsafe(inbox.put_nowait, item)

        def open_stream() -> BarStream:
            with _rest_names():
                return ib.stream_bars(
                    symbol,
                    bar_size=size,
                    what_to_show=what_to_show,
                    use_rth=use_rth,
                    start=begin,
                    lookback=None if resume is not None else lookback,
                    on_bar=deliver,
                    on_event=deliver,
                    include_partial=partial,
                    sec_type=sec_type,
                    exchange=exchange,
                    currency=currency,
                )

        with anyio.CancelScope(shield=True):  # a stream opened reaches the response
            bars = await run_in_threadpool(open_stream)
        app.live_streams.add(bars)
        return _EventStream(bars, inbox, app.live_streams)

    return app
