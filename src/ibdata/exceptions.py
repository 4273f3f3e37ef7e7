"""Everything ibdata raises on purpose, and the table of IB's message codes.

The tree::

    IBDataError                       root of everything ibdata raises on purpose
    ├── SessionError                  the TWS session, not one request
    │   ├── ConnectError              refused, handshake failed, client id in use (326)
    │   │   └── ConnectTimeoutError   (also TimeoutError)
    │   ├── NotConnectedError         a request while no session is ready
    │   └── ConnectionLostError       the session dropped while a request was in flight
    ├── RequestError                  IB failed this request: .code .message .req_id
    │   ├── ContractNotFoundError     (also LookupError) 200
    │   ├── AmbiguousContractError    200 "ambiguous"; .candidates
    │   ├── NoDataError               162 "HMDS query returned no data", 166
    │   ├── PacingViolationError      162 "pacing violation"; .rule .retry_after .retry_at
    │   ├── PermissionDeniedError     354, 162 "No market data permissions", 10168 ...
    │   └── InvalidRequestError       321, 10299, 10314, 10339, 162 "Time length exceed max."
    ├── RequestTimeoutError           (also TimeoutError) no answer in time; cancelled
    └── UnknownProductError           (also LookupError) a product code the registry lacks

``except ibdata.IBDataError`` catches all of them; ``except TimeoutError`` catches both
timeouts and ``except LookupError`` both "not found" errors. Arguments that are wrong
before anything is sent raise :class:`ValueError` or :class:`TypeError` instead; so does a
range download that needs more requests than its ``max_requests``
(:class:`RangeTooLargeError`, a ValueError carrying the plan).

IB reports problems as numbered messages (``EWrapper.error``). :func:`error_for` turns one
into the right :class:`RequestError` subclass from one table; :func:`is_informational`
tells the notices that are only logged (and shown in ``Client.health()``) from the errors
that end a request; :data:`IB_ERROR_CODES` says what each code ibdata knows means. See
`IB's message codes <https://interactivebrokers.github.io/tws-api/message_codes.html>`_.

Every exception pickles (for multiprocessing and task queues) with its attributes intact.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ibdata.models import Contract, DownloadPlan

__all__ = [
    "IB_ERROR_CODES",
    "AmbiguousContractError",
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "ContractNotFoundError",
    "IBDataError",
    "InvalidRequestError",
    "NoDataError",
    "NotConnectedError",
    "PacingViolationError",
    "PermissionDeniedError",
    "RangeTooLargeError",
    "RequestError",
    "RequestTimeoutError",
    "SessionError",
    "UnknownProductError",
    "error_for",
    "is_informational",
]


def _rebuild(cls: type[IBDataError], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Unpickle an ibdata exception by calling its constructor again."""
    return cls(*args, **kwargs)


def _request_label(code: int | None, req_id: int | None) -> str:
    parts = []
    if code:  # 0: found by ibdata itself, not IB's error
        parts.append(f"IB error {code}")
    if req_id is not None:
        parts.append(f"(request {req_id})" if parts else f"request {req_id}")
    return " ".join(parts)


def _req_id(value: int | None) -> int | None:
    """IB's -1 (and any negative id) means "no request"; ibdata says None."""
    return None if value is None or value < 0 else value


class IBDataError(Exception):
    """The root of every exception ibdata raises on purpose.

    Catch it to handle any failure of a session or request in one place. It is never
    raised itself; each subclass says when it is raised.
    """

    def _ctor(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return self.args, {}

    def __reduce__(self) -> tuple[Any, ...]:
        args, kwargs = self._ctor()
        return (_rebuild, (type(self), args, kwargs), dict(self.__dict__) or None)


# --------------------------------------------------------------------------- session
class SessionError(IBDataError):
    """The TWS session failed, as opposed to one request on it.

    Raised through its subclasses; catch it to handle every connection problem.

    Args:
        message: What happened, for people.
        code: IB's message code when TWS sent one (326: client id in use), else None.
        req_id: The request that was in flight, if the failure hit one, else None.

    Attributes:
        message: What happened.
        code: IB's code, or None.
        req_id: The affected request, or None.
    """

    def __init__(self, message: str, *, code: int | None = None, req_id: int | None = None) -> None:
        self.message = message
        self.code = code
        self.req_id = _req_id(req_id)
        super().__init__(message)

    def _ctor(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.message,), {"code": self.code, "req_id": self.req_id}

    def __str__(self) -> str:
        label = _request_label(self.code, self.req_id)
        return f"{label}: {self.message}" if label else self.message


class ConnectError(SessionError):
    """A session could not be opened.

    Raised by ``Client.connect()`` (and the reconnect logic) when nothing listens on the
    port, the peer is not TWS / IB Gateway with the API enabled, the handshake fails, or
    TWS refuses the client id because another client uses it (error 326, in ``code``).
    """


class ConnectTimeoutError(ConnectError, TimeoutError):
    """No session was ready within the connect timeout (also a :class:`TimeoutError`).

    Raised when TWS did not accept the TCP connection, answer the handshake or start the
    API session (next valid id) in time; the half-open socket has been closed.
    """


class NotConnectedError(SessionError):
    """A request was made while no session is ready.

    Raised before anything is sent: the client was never connected, was closed, or is
    between a lost connection and a reconnect.
    """


class ConnectionLostError(SessionError):
    """The session dropped while a request was in flight.

    Raised to every caller whose request was pending when the socket closed or TWS reset
    it (1300); the request may not be answered, so retry it after reconnecting.
    """


# --------------------------------------------------------------------------- requests
class RequestError(IBDataError):
    """IB failed one request with an error message.

    Raised for IB errors that end a request and have no more specific subclass here,
    such as 321 (the request did not validate), 322 (more than 50 open historical
    requests), 10314 (bad end date) or 162 with another detail. ``str()`` gives
    ``"IB error 200 (request 12): No security definition has been found for the
    request"``. Use :func:`error_for` to build the right subclass from a code.

    Args:
        code: IB's error code; 0 for failures found by ibdata itself on IB's answer.
        message: IB's text, unchanged.
        req_id: The request's id; None (or IB's -1) when the message is not tied to one.

    Attributes:
        code: IB's error code.
        message: IB's text.
        req_id: The request's id, or None.
    """

    def __init__(self, code: int, message: str, req_id: int | None = None) -> None:
        self.code = code
        self.message = message
        self.req_id = _req_id(req_id)
        super().__init__(self._describe())

    def _describe(self) -> str:
        label = _request_label(self.code, self.req_id)
        return f"{label}: {self.message}" if label else self.message

    def _ctor(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.code, self.message, self.req_id), {}

    def __str__(self) -> str:
        return self._describe()


class ContractNotFoundError(RequestError, LookupError):
    """IB knows no contract matching the request (error 200); also a :class:`LookupError`.

    Raised when IB answers "No security definition has been found for the request": a
    wrong symbol, exchange or currency, an expired future without ``include_expired``, or
    a renamed exchange (``GLOBEX`` is now ``CME``, ``DTB`` is ``EUREX``). TWS answers a
    contract-details query that matches nothing with this error too, so
    ``get_contract_details`` raises it rather than returning an empty list.
    """


class AmbiguousContractError(RequestError):
    """The contract description matches more than one contract.

    Raised for IB's error 200 "The contract description specified for ... is ambiguous",
    and by ibdata when a request needs one contract and the description matched several.
    Add ``exchange``, ``primary_exchange``, ``currency``, an expiry, ``trading_class`` or
    ``multiplier``, or use a ``con_id``.

    Args:
        code: IB's error code (200), as in :class:`RequestError`.
        message: IB's (or ibdata's) text.
        req_id: The request's id, or None.
        candidates: The contracts that matched, when known.

    Attributes:
        candidates: The contracts that matched, as a tuple; empty when IB did not list
            them. ``str()`` names the first few.
    """

    def __init__(
        self,
        code: int,
        message: str,
        req_id: int | None = None,
        *,
        candidates: Iterable[Contract] = (),
    ) -> None:
        self.candidates: tuple[Contract, ...] = tuple(candidates)
        super().__init__(code, message, req_id)

    def _describe(self) -> str:
        text = super()._describe()
        if not self.candidates:
            return text
        shown = "; ".join(c.describe() for c in self.candidates[:5])
        more = f"; and {len(self.candidates) - 5} more" if len(self.candidates) > 5 else ""
        return f"{text} (candidates: {shown}{more})"

    def _ctor(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.code, self.message, self.req_id), {"candidates": self.candidates}


class NoDataError(RequestError):
    """IB has no bars for the request.

    Raised for error 162 "HMDS query returned no data" (a window before the contract
    listed, a holiday, a closed market) and "No historical market data" (a tick type the
    instrument lacks, such as ``TRADES`` for FX), and for 166 "HMDS Expired Contract
    Violation" (an expired contract beyond IB's history). An answer with zero bars is not
    an error: it returns empty bars.
    """


class PacingViolationError(RequestError):
    """IB refused a historical request for breaking its pacing rules (error 162).

    Raised for "Historical data request pacing violation" once the client's own retries
    were refused too, or at once when waiting for the rules would take longer than the
    call's ``timeout``. IB's rules: no identical request within 15 s, at most 5 requests
    for one contract, exchange and tick type in 2 s, at most 60 requests in 10 minutes
    (``BID_ASK`` counts twice). IB's answer does not say which rule was broken: the client
    works it out from its own record of requests (see the history guide), and when that
    record shows room, another program on the same login is sending and the 10-minute
    rule is assumed.

    Args:
        code: IB's error code (162).
        message: IB's text.
        req_id: The request's id, or None.
        retry_after: Seconds to wait before retrying; defaults to
            :attr:`DEFAULT_RETRY_AFTER`.
        rule: The rule that most likely caused the refusal, in IB's words, or None when
            unknown.
        retry_at: When the request may be sent again (timezone-aware), or None when
            unknown.
        note: What the client did about it (``"refused 4 times"``), or ``""``.

    Attributes:
        retry_after: Seconds, from when the error was raised, until the rules leave room
            for the request again (on the client's clock: divided by ``time_scale``).
        rule: The likely rule, such as ``"more than 60 requests within 600 s"``, or None.
        retry_at: The time ``retry_after`` points to, in UTC, or None.
        note: What the client did about it, or ``""``.

    Raises:
        ValueError: ``retry_after`` is negative, NaN or infinite, or ``retry_at`` is naive.
    """

    DEFAULT_RETRY_AFTER: Final[float] = 15.0
    """The hint used when none is given, in seconds (15, IB's identical-request window,
    the shortest wait after which IB could accept the same request)."""

    def __init__(
        self,
        code: int,
        message: str,
        req_id: int | None = None,
        *,
        retry_after: float | None = None,
        rule: str | None = None,
        retry_at: dt.datetime | None = None,
        note: str = "",
    ) -> None:
        wait = self.DEFAULT_RETRY_AFTER if retry_after is None else float(retry_after)
        if not (math.isfinite(wait) and wait >= 0):
            raise ValueError(f"retry_after must be a finite number >= 0, got {retry_after!r}")
        if retry_at is not None and retry_at.utcoffset() is None:
            raise ValueError(f"retry_at must be timezone-aware, got {retry_at!r}")
        self.retry_after = wait
        self.rule = rule
        self.retry_at = None if retry_at is None else retry_at.astimezone(dt.timezone.utc)
        self.note = note
        super().__init__(code, message, req_id)

    def _describe(self) -> str:
        parts = []
        if self.rule is not None:
            parts.append(f"likely rule: {self.rule}")
        if self.note:
            parts.append(self.note)
        when = f"retry after {self.retry_after:g} s"
        if self.retry_at is not None:
            when += f", at {self.retry_at:%Y-%m-%d %H:%M:%S} UTC"
        parts.append(when)
        return f"{super()._describe()} ({'; '.join(parts)})"

    def _ctor(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.code, self.message, self.req_id), {
            "retry_after": self.retry_after,
            "rule": self.rule,
            "retry_at": self.retry_at,
            "note": self.note,
        }


class PermissionDeniedError(RequestError):
    """The account lacks the market-data permission (subscription) the request needs.

    Raised for 162 "No market data permissions for ...", 354 "Requested market data is
    not subscribed", 10089 / 10090 (an additional or partial subscription is needed),
    10168 (not subscribed and delayed data not enabled) and 10187 (historical ticks
    without permissions). IB needs a real-time (Level 1) subscription even for history.
    """


class InvalidRequestError(RequestError):
    """IB refused the request as invalid: the caller can fix it by asking differently.

    Raised for 321 ("Error validating request"), 10299 (wrong what-to-show for the
    instrument), 10314 (bad end date), 10339 (an end date for a continuous future) and
    162 "Time length exceed max." / "invalid step" (a duration too long for the bar
    size). ibdata checks arguments before sending, so this means IB applies a rule ibdata
    does not know; the message is IB's.
    """


class RequestTimeoutError(IBDataError, TimeoutError):
    """A request got no complete answer in time (also a :class:`TimeoutError`).

    Raised when a request's timeout passes before IB sends its end marker or an error.
    ibdata has sent IB's cancel for it, so late data is dropped; never an empty result.

    Args:
        req_id: The request's id, or None.
        timeout: The timeout that passed, in seconds.
        description: What was asked, for the message (``"historical bars for AAPL"``).

    Attributes:
        req_id: The request's id, or None.
        timeout: The timeout in seconds.
        description: What was asked, or ``""``.
    """

    def __init__(self, req_id: int | None, timeout: float, description: str = "") -> None:
        self.req_id = _req_id(req_id)
        self.timeout = timeout
        self.description = description
        super().__init__(self._describe())

    def _describe(self) -> str:
        what = _request_label(None, self.req_id) or "a request"
        if self.description:
            what += f" ({self.description})"
        return f"{what} got no answer within {self.timeout:g} s and was cancelled"

    def _ctor(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.req_id, self.timeout, self.description), {}

    def __str__(self) -> str:
        return self._describe()


class UnknownProductError(IBDataError, LookupError):
    """A product code is not in the registry (also a :class:`LookupError`).

    Raised by the product registry, before anything is sent, for a code it cannot
    resolve, such as ``"EURBBX"`` or a bad futures month suffix.

    Args:
        code: The product code asked for.
        message: Why it is unknown; a standard message when omitted.
        suggestions: Known codes close to it, to show in the message.

    Attributes:
        code: The product code asked for.
        suggestions: The suggested codes, as a tuple.
    """

    def __init__(
        self, code: str, message: str | None = None, *, suggestions: Iterable[str] = ()
    ) -> None:
        self.code = code
        self.message = message
        self.suggestions = tuple(suggestions)
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = self.message or f"unknown product code {self.code!r}"
        if self.suggestions:
            text += f" (did you mean {', '.join(self.suggestions)}?)"
        return text

    def _ctor(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.code, self.message), {"suggestions": self.suggestions}

    def __str__(self) -> str:
        return self._describe()


# --------------------------------------------------------------------------- limits
class RangeTooLargeError(ValueError):
    """A range download needs more historical-data requests than the caller allows.

    Raised by ``Client.get_historical_bars(..., start=..., max_requests=N)`` when the range,
    less what the cache holds, needs more than ``N`` requests to IB. It is raised before
    any bar is requested (the contract lookup and, once per series, the head-timestamp
    request have been sent). A :class:`ValueError`, not an :class:`IBDataError`, since
    the caller's own limit refused it, as for other arguments; the REST adapter answers
    400 and ``ibdata bars`` exits 1.

    Args:
        plan: What the download would have sent (``Client.plan()`` gives the same).
        max_requests: The limit it exceeds.

    Attributes:
        plan: The :class:`~ibdata.models.DownloadPlan`: its ``requests``, ``chunks`` and
            ``minimum_time``.
        max_requests: The limit.
    """

    def __init__(self, plan: DownloadPlan, max_requests: int) -> None:
        self.plan = plan
        self.max_requests = max_requests
        super().__init__(self._describe())

    def _describe(self) -> str:
        from ibdata.models import _duration_text

        n = self.plan.requests
        return (
            f"max_requests: the range needs {n:,} request{'' if n == 1 else 's'} to IB, more "
            f"than the {self.max_requests:,} allowed (sending them takes at least "
            f"{_duration_text(self.plan.minimum_time)} under IB's pacing rules); ask for a "
            "shorter range or larger bars"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.plan, self.max_requests))

    def __str__(self) -> str:
        return self._describe()


# --------------------------------------------------------------------------- IB codes
#: The one table from IB codes to exceptions: (code, text to look for or None, class).
#: The first row whose code matches and whose text occurs in the message (ignoring case)
#: wins; codes without a row give a plain RequestError.
_RULES: Final[tuple[tuple[int, str | None, type[RequestError]], ...]] = (
    (162, "pacing violation", PacingViolationError),
    (162, "hmds query returned no data", NoDataError),
    (162, "no historical market data", NoDataError),
    (162, "no market data permissions", PermissionDeniedError),
    (166, None, NoDataError),
    (200, "ambiguous", AmbiguousContractError),
    (200, None, ContractNotFoundError),
    (354, None, PermissionDeniedError),
    (10089, None, PermissionDeniedError),
    (10090, None, PermissionDeniedError),
    (10168, None, PermissionDeniedError),
    (10187, None, PermissionDeniedError),
    (162, "time length exceed max", InvalidRequestError),
    (162, "invalid step", InvalidRequestError),
    (321, None, InvalidRequestError),
    (10299, None, InvalidRequestError),
    (10314, None, InvalidRequestError),
    (10339, None, InvalidRequestError),
)


def error_for(
    code: int, message: str, req_id: int | None, *, retry_after: float | None = None
) -> RequestError:
    """The exception for an error IB sent about a request.

    The mapping: 200 gives :class:`ContractNotFoundError`, or
    :class:`AmbiguousContractError` when the text says "ambiguous". 162 depends on its
    text: "pacing violation" gives :class:`PacingViolationError`, "HMDS query returned
    no data" and "No historical market data" give :class:`NoDataError`, "No market data
    permissions" gives :class:`PermissionDeniedError`, "Time length exceed max." and
    "invalid step" give :class:`InvalidRequestError`, anything else (a cancelled query) a
    plain :class:`RequestError`. 166 gives :class:`NoDataError`; 354, 10089, 10090, 10168
    and 10187 give :class:`PermissionDeniedError`; 321, 10299, 10314 and 10339 give
    :class:`InvalidRequestError`. Every other code, 322, 366 and 386 among them, gives a
    plain :class:`RequestError`.

    Check :func:`is_informational` first: informational codes should be logged, not
    raised.

    Args:
        code: IB's error code.
        message: IB's text.
        req_id: The request's id; None or -1 when not tied to a request.
        retry_after: For a pacing violation, seconds to wait before retrying; defaults to
            :attr:`PacingViolationError.DEFAULT_RETRY_AFTER` (15 s). Ignored otherwise.

    Returns:
        A new exception, not raised.
    """
    text = message.casefold()
    cls: type[RequestError] = RequestError
    for rule_code, needle, rule_cls in _RULES:
        if rule_code == code and (needle is None or needle in text):
            cls = rule_cls
            break
    if cls is PacingViolationError:
        return PacingViolationError(code, message, req_id, retry_after=retry_after)
    return cls(code, message, req_id)


_INFORMATIONAL_CODES: Final = frozenset({165, 1102, 10167})


def is_informational(code: int) -> bool:
    """Tell whether an IB message code is a notice rather than an error.

    Informational codes are logged and shown in ``Client.health()`` but never raised, and
    the request they name goes on: 2100-2199 (farm status 2103-2158, TWS-server
    connectivity 2110, warnings such as 2174 "no explicit time zone" and 2176 "fractional
    share size"), 1102 (connectivity restored, data maintained), 10167 (delayed data
    shown instead) and 165 (a Historical Market Data Service query notice, such as "no
    items retrieved"; IB ends such a request with an error or its end marker, as ib_async
    also assumes).

    1100, 1101 and 1300 are connectivity events: not informational, and not request
    errors either; the connection layer handles them.

    Args:
        code: IB's message code.

    Returns:
        True when the code is only a notice.
    """
    return 2100 <= code <= 2199 or code in _INFORMATIONAL_CODES


IB_ERROR_CODES: Final[Mapping[int, str]] = MappingProxyType(
    {
        100: "Max rate of messages per second exceeded (50/s by default); TWS may "
        "disconnect after repeats. RequestError.",
        162: "Historical Market Data Service error; the detail decides: pacing violation "
        "(PacingViolationError), HMDS query returned no data or no historical market data "
        "(NoDataError), no market data permissions (PermissionDeniedError), time length "
        "exceeds max or invalid step (InvalidRequestError), query cancelled (RequestError).",
        165: "Historical Market Data Service query message, e.g. 'no items retrieved'. "
        "Informational.",
        166: "HMDS Expired Contract Violation: no history for this expired contract. NoDataError.",
        200: "No security definition has been found for the request "
        "(ContractNotFoundError), or the description is ambiguous "
        "(AmbiguousContractError).",
        321: "Error validating request: bad bar size, duration, date format, missing "
        "exchange or expiry, end date with ADJUSTED_LAST. InvalidRequestError.",
        322: "Error processing request, e.g. more than 50 simultaneous historical data "
        "requests. RequestError.",
        326: "Client id already in use; TWS closes the connection. ConnectError.",
        354: "Requested market data is not subscribed. PermissionDeniedError.",
        366: "No historical data query found for the ticker id (cancel of an unknown or "
        "finished request). RequestError.",
        386: "Duplicate ticker id for an API historical data query. RequestError.",
        502: "Could not connect to TWS: API not enabled or wrong port (client side). ConnectError.",
        504: "Not connected (client side). NotConnectedError.",
        507: "Bad message length: the socket stream broke (client side). ConnectionLostError.",
        509: "Exception caught while reading the socket (client side). ConnectionLostError.",
        1100: "Connectivity between IB and TWS lost. Connectivity event (health "
        "degraded); not raised.",
        1101: "Connectivity between IB and TWS restored, data lost: subscriptions must be "
        "renewed. Connectivity event; not raised.",
        1102: "Connectivity between IB and TWS restored, data maintained. Informational.",
        1300: "TWS socket port reset; the connection is dropped, reconnect on the new "
        "port. Connectivity event; pending requests get ConnectionLostError.",
        2103: "Market data farm connection is broken. Informational (farm state broken).",
        2104: "Market data farm connection is OK. Informational (farm state ok).",
        2105: "HMDS (historical) data farm connection is broken. Informational (farm "
        "state broken).",
        2106: "HMDS data farm connection is OK. Informational (farm state ok).",
        2107: "HMDS data farm connection is inactive but available on demand. "
        "Informational (farm state inactive).",
        2108: "Market data farm connection is inactive but available on demand. "
        "Informational (farm state inactive).",
        2110: "Connectivity between TWS and server is broken; restored automatically. "
        "Informational.",
        2119: "Market data farm is connecting. Informational (farm state connecting).",
        2157: "Sec-def (contract details) data farm connection is broken. Informational "
        "(farm state broken).",
        2158: "Sec-def data farm connection is OK. Informational (farm state ok).",
        2174: "Warning: date-time without explicit time zone; the request proceeds. Informational.",
        2176: "Warning: API version does not support fractional share size rules; data "
        "still valid. Informational.",
        10089: "Requested market data requires an additional subscription for the API. "
        "PermissionDeniedError.",
        10090: "Part of the requested market data is not subscribed. PermissionDeniedError.",
        10167: "Requested market data is not subscribed; delayed data is shown. Informational.",
        10168: "Requested market data is not subscribed and delayed data is not enabled. "
        "PermissionDeniedError.",
        10187: "Failed to request historical ticks: no market data permissions. "
        "PermissionDeniedError.",
        10197: "No market data during a competing live session (paper and live logged in "
        "at once). RequestError.",
        10299: "Wrong whatToShow for the instrument, e.g. AGGTRADES instead of TRADES for "
        "crypto. InvalidRequestError.",
        10314: "End date/time invalid: use yyyymmdd hh:mm:ss with a zone, or "
        "yyyymmdd-hh:mm:ss in UTC. InvalidRequestError.",
        10339: "An end date/time is not allowed for continuous futures (CONTFUT). "
        "InvalidRequestError.",
    }
)
"""What each IB message code ibdata knows means, and how ibdata reports it.

Read only; for the documentation and for log messages. Codes not listed are reported as
a plain :class:`RequestError` with IB's text.
"""
