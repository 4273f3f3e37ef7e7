"""Tests for ibdata.exceptions: the exception tree, IB's codes and their mapping."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

import ibdata.exceptions
from ibdata.exceptions import (
    IB_ERROR_CODES,
    AmbiguousContractError,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    ContractNotFoundError,
    IBDataError,
    InvalidRequestError,
    NoDataError,
    NotConnectedError,
    PacingViolationError,
    PermissionDeniedError,
    RangeTooLargeError,
    RequestError,
    RequestTimeoutError,
    SessionError,
    UnknownProductError,
    error_for,
    is_informational,
)
from ibdata.models import Contract

HMDS = "Historical Market Data Service error message:"


def es(month: str) -> Contract:
    return Contract(1, "ES", "FUT", "CME", "USD", f"ES{month}", "ES", "", "20250620", "50")


def test_public_names_are_documented() -> None:
    """Every name in ``__all__`` exists and every class and function has a docstring."""
    for name in ibdata.exceptions.__all__:
        obj = getattr(ibdata.exceptions, name)
        if callable(obj):
            assert obj.__doc__, name


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (IBDataError, (Exception,)),
        (SessionError, (IBDataError,)),
        (ConnectError, (SessionError,)),
        (ConnectTimeoutError, (ConnectError, TimeoutError)),
        (NotConnectedError, (SessionError,)),
        (ConnectionLostError, (SessionError,)),
        (RequestError, (IBDataError,)),
        (ContractNotFoundError, (RequestError, LookupError)),
        (AmbiguousContractError, (RequestError,)),
        (NoDataError, (RequestError,)),
        (PacingViolationError, (RequestError,)),
        (PermissionDeniedError, (RequestError,)),
        (RequestTimeoutError, (IBDataError, TimeoutError)),
        (UnknownProductError, (IBDataError, LookupError)),
        (RangeTooLargeError, (ValueError,)),
    ],
)
def test_exception_tree(cls: type[Exception], bases: tuple[type, ...]) -> None:
    """Each class has exactly the documented direct bases and a docstring."""
    assert cls.__bases__ == bases
    assert cls.__doc__


def test_timeouts_are_timeout_errors_and_lookups_are_lookup_errors() -> None:
    """``except TimeoutError`` and ``except LookupError`` catch the matching ibdata errors."""
    with pytest.raises(TimeoutError):
        raise RequestTimeoutError(3, 30.0)
    with pytest.raises(TimeoutError):
        raise ConnectTimeoutError("no handshake")
    with pytest.raises(LookupError):
        raise ContractNotFoundError(200, "No security definition has been found", 1)
    with pytest.raises(LookupError):
        raise UnknownProductError("EURBBX")


def test_request_error_str_shows_code_and_request_id() -> None:
    """str() reads ``IB error <code> (request <id>): <IB's text>``."""
    err = RequestError(200, "No security definition has been found for the request", 12)
    assert str(err) == (
        "IB error 200 (request 12): No security definition has been found for the request"
    )
    assert (err.code, err.req_id) == (200, 12)
    assert err.message == "No security definition has been found for the request"
    assert str(err) in repr(err)


def test_request_error_without_request() -> None:
    """Without a request id (or with IB's -1) the id is None and left out of str()."""
    assert str(RequestError(322, "Error processing request")) == (
        "IB error 322: Error processing request"
    )
    err = RequestError(504, "Not connected", -1)
    assert err.req_id is None
    assert str(err) == "IB error 504: Not connected"


def test_session_error_str() -> None:
    """Session errors show IB's code and the request when given, else just the message."""
    assert str(ConnectError("refused")) == "refused"
    refused = ConnectError("client id 7 is in use", code=326)
    assert str(refused) == "IB error 326: client id 7 is in use"
    assert refused.code == 326
    lost = ConnectionLostError("socket closed", req_id=4)
    assert str(lost) == "request 4: socket closed"
    assert (lost.req_id, lost.code) == (4, None)


def test_request_timeout_error() -> None:
    """RequestTimeoutError carries the request id and timeout and says it was cancelled."""
    err = RequestTimeoutError(9, 30.0, "historical bars for AAPL")
    assert (err.req_id, err.timeout) == (9, 30.0)
    assert str(err) == (
        "request 9 (historical bars for AAPL) got no answer within 30 s and was cancelled"
    )
    assert str(RequestTimeoutError(None, 2.5)) == (
        "a request got no answer within 2.5 s and was cancelled"
    )


def test_unknown_product_error() -> None:
    """UnknownProductError carries the code and shows suggestions."""
    err = UnknownProductError("EURBBX", suggestions=["EURBBL", "EURBND"])
    assert err.code == "EURBBX"
    assert str(err) == "unknown product code 'EURBBX' (did you mean EURBBL, EURBND?)"
    assert str(UnknownProductError("Q", "bad month code 'Q'")) == "bad month code 'Q'"


def test_ambiguous_contract_error_lists_candidates() -> None:
    """AmbiguousContractError keeps its candidates as a tuple and names a few in str()."""
    err = AmbiguousContractError(
        200, "The contract description specified for ES is ambiguous", 5,
        candidates=[es(m) for m in ("M5", "U5", "Z5", "H6", "M6", "U6", "Z6")],
    )  # fmt: skip
    assert len(err.candidates) == 7
    assert isinstance(err.candidates, tuple)
    assert str(err).startswith("IB error 200 (request 5): The contract description")
    assert "candidates: ES FUT 20250620 CME USD;" in str(err)
    assert str(err).endswith("and 2 more)")
    assert AmbiguousContractError(200, "ambiguous").candidates == ()


def test_pacing_violation_retry_after() -> None:
    """The retry hint defaults to IB's 15 s identical-request window; bad values are refused."""
    assert PacingViolationError.DEFAULT_RETRY_AFTER == 15.0
    err = PacingViolationError(162, "pacing violation", 3)
    assert err.retry_after == 15.0
    assert str(err).endswith("(retry after 15 s)")
    assert PacingViolationError(162, "x", retry_after=2).retry_after == 2.0
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="retry_after"):
            PacingViolationError(162, "x", retry_after=bad)


@pytest.mark.parametrize(
    "err",
    [
        ConnectError("refused", code=326),
        ConnectTimeoutError("slow", req_id=3),
        NotConnectedError("closed"),
        ConnectionLostError("gone", req_id=8),
        RequestError(321, "Error validating request", 4),
        ContractNotFoundError(200, "No security definition", 1),
        AmbiguousContractError(200, "ambiguous", 2, candidates=[es("M5")]),
        NoDataError(162, "HMDS query returned no data", 3),
        PacingViolationError(162, "pacing violation", 4, retry_after=20),
        PermissionDeniedError(354, "not subscribed", 5),
        RequestTimeoutError(6, 1.5, "bars"),
        UnknownProductError("XX", suggestions=["XY"]),
    ],
    ids=lambda e: type(e).__name__,
)
def test_exceptions_pickle_with_their_attributes(err: IBDataError) -> None:
    """Every exception survives pickling (multiprocessing, task queues) unchanged."""
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err)
    assert str(again) == str(err)
    assert vars(again) == vars(err)


@pytest.mark.parametrize(
    ("code", "message", "cls"),
    [
        (200, "No security definition has been found for the request", ContractNotFoundError),
        (200, "The contract description specified for ES is ambiguous", AmbiguousContractError),
        (200, "The contract description specified for ES is AMBIGUOUS.", AmbiguousContractError),
        (162, HMDS + "Historical data request pacing violation", PacingViolationError),
        (162, HMDS + "HMDS query returned no data: ESM3@CME Trades", NoDataError),
        (162, HMDS + "HMDS query returned no data: GOOGL@SMART Trades", NoDataError),
        (162, HMDS + "No historical market data for EUR/CASH@IDEALPRO Last 0", NoDataError),
        (162, HMDS + "No historical market data for EUR/CASH@FXSUBPIP AllLast 0", NoDataError),
        (162, HMDS + "No market data permissions for NYSE STK", PermissionDeniedError),
        (162, HMDS + "API historical data query cancelled: 28", RequestError),
        (162, HMDS + "Time length exceed max.", InvalidRequestError),
        (162, HMDS + "invalid step: 1", InvalidRequestError),
        (162, HMDS + "Trading TWS session is connected from a different IP address", RequestError),
        (166, "HMDS Expired Contract Violation.", NoDataError),
        (
            321,
            "Error validating request.-'bK' : cause - Historical data bar size setting is "
            "invalid. Legal ones are: 1 secs, 5 secs, 10 secs, 15 secs, 30 secs, 1 min, "
            "2 mins, 3 mins, 5 mins, 10 mins, 15 mins, 20 mins, 30 mins, 1 hour, 2 hours, "
            "3 hours, 4 hours, 8 hours, 1 day, 1W, 1M",
            InvalidRequestError,
        ),
        (
            321,
            "Error validating request.-'bH' : cause - Historical data requests for durations "
            "longer than 365 days must be made in years.",
            InvalidRequestError,
        ),
        (
            321,
            "Error validating request:-'bS' : cause - Please enter exchange",
            InvalidRequestError,
        ),
        (
            321,
            "Error validating request.-'bS' : cause - End date not supported with adjusted last",
            InvalidRequestError,
        ),
        (
            322,
            "Error processing request:-'bS' : cause - Only 50 simultaneous API historical data "
            "requests allowed.",
            RequestError,
        ),
        (
            354,
            "Requested market data is not subscribed. Check API status by selecting the "
            "Account menu then under Management choose Market Data Subscription Manager and/or "
            "availability of delayed data.",
            PermissionDeniedError,
        ),
        (354, "Not subscribed to requested market data.", PermissionDeniedError),
        (366, "No historical data query found for ticker id:7", RequestError),
        (386, "Duplicate ticker ID for API historical data query.", RequestError),
        (
            10089,
            "Requested market data requires additional subscription for API. See link in "
            "'Market Data Connections' dialog for more details.Delayed market data is available.",
            PermissionDeniedError,
        ),
        (10090, "Part of requested market data is not subscribed.", PermissionDeniedError),
        (
            10168,
            "Requested market data is not subscribed. Delayed market data is not enabled.",
            PermissionDeniedError,
        ),
        (
            10187,
            "Failed to request historical ticks:No market data permissions",
            PermissionDeniedError,
        ),
        (10197, "No market data during competing live session", RequestError),
        (
            10299,
            "Expected what to show is AGGTRADES, please use that instead of TRADES.",
            InvalidRequestError,
        ),
        (
            10314,
            "End Date/Time: The date, time, or time-zone entered is invalid. The correct "
            "format is yyyymmdd hh:mm:ss xx/xxxx where yyyymmdd and xx/xxxx are optional.",
            InvalidRequestError,
        ),
        (
            10339,
            "Setting end date/time for continuous future security type is not allowed.",
            InvalidRequestError,
        ),
        (100, "Max rate of messages per second has been exceeded.", RequestError),
        (99999, "Something IB added later", RequestError),
    ],
)
def test_error_for_maps_codes_and_texts(code: int, message: str, cls: type[RequestError]) -> None:
    """error_for builds the documented class, keeping code, text and request id."""
    err = error_for(code, message, 42)
    assert type(err) is cls
    assert (err.code, err.message, err.req_id) == (code, message, 42)
    assert str(err) == (
        f"IB error {code} (request 42): {message}"
        + (" (retry after 15 s)" if cls is PacingViolationError else "")
    )


def test_error_for_pacing_uses_given_retry_after() -> None:
    """A caller's retry_after hint reaches the PacingViolationError; others ignore it."""
    err = error_for(162, HMDS + "Historical data request pacing violation", 3, retry_after=60)
    assert isinstance(err, PacingViolationError)
    assert err.retry_after == 60.0
    assert type(error_for(200, "No security definition", 3, retry_after=60)) is (
        ContractNotFoundError
    )


def test_error_for_without_request_id() -> None:
    """IB's -1 request id becomes None."""
    assert error_for(200, "No security definition", -1).req_id is None
    assert error_for(200, "No security definition", None).req_id is None


@pytest.mark.parametrize(
    "code", [2100, 2103, 2104, 2105, 2106, 2107, 2108, 2110, 2119, 2157, 2158, 2174, 2176, 2199]
)
def test_farm_notices_and_warnings_are_informational(code: int) -> None:
    """Codes 2100-2199 (farm notices and warnings) are informational."""
    assert is_informational(code)


@pytest.mark.parametrize("code", [1102, 10167, 165])
def test_other_informational_codes(code: int) -> None:
    """1102 (restored, data kept), 10167 (delayed data shown) and 165 are informational."""
    assert is_informational(code)


@pytest.mark.parametrize(
    "code", [1100, 1101, 1300, 162, 166, 200, 321, 322, 326, 354, 2099, 2200, 10168, 10089, -1]
)
def test_errors_and_connectivity_events_are_not_informational(code: int) -> None:
    """Request errors and the 1100/1101/1300 connectivity events are not informational."""
    assert not is_informational(code)


REQUIRED_CODES = [
    162, 165, 166, 200, 321, 322, 326, 354, 366, 386, 502, 504, 507, 509,
    1100, 1101, 1102, 1300, 2103, 2104, 2105, 2106, 2107, 2108, 2110, 2119, 2157, 2158, 2174,
    10089, 10090, 10167, 10168, 10187, 10197, 10299, 10314, 10339,
]  # fmt: skip


def test_ib_error_codes_table_covers_the_codes_ibdata_handles() -> None:
    """IB_ERROR_CODES describes every code ibdata handles, in code order, read only."""
    assert set(REQUIRED_CODES) <= set(IB_ERROR_CODES)
    assert list(IB_ERROR_CODES) == sorted(IB_ERROR_CODES)
    assert all(isinstance(text, str) and text for text in IB_ERROR_CODES.values())
    with pytest.raises(TypeError):
        IB_ERROR_CODES[1] = "x"  # type: ignore[index]


def test_ib_error_codes_table_agrees_with_the_mapping() -> None:
    """The table marks informational codes as such and names the class error_for picks."""
    for code, text in IB_ERROR_CODES.items():
        if is_informational(code):
            assert "Informational" in text, code
        elif code not in (162, 200):
            cls = type(error_for(code, "", 1))
            if cls is not RequestError:
                assert cls.__name__ in text, code


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (
            321,
            "Error validating request.-'bK' : cause - Historical data bar size setting is invalid.",
        ),
        (10299, "Expected what to show is AGGTRADES, please use that instead of TRADES."),
        (10314, "End Date/Time: The date, time, or time-zone entered is invalid."),
        (10339, "Setting end date/time for continuous future security type is not allowed."),
        (162, "Historical Market Data Service error message:Time length exceed max."),
        (162, "Historical Market Data Service error message:invalid step: 1"),
    ],
)
def test_invalid_requests_map_to_invalid_request_error(code: int, text: str) -> None:
    """IB's "this request is invalid" answers map to InvalidRequestError, a RequestError."""
    exc = error_for(code, text, 12)
    assert type(exc) is InvalidRequestError
    assert isinstance(exc, RequestError)
    assert exc.code == code


def test_pacing_violation_says_rule_and_retry_time() -> None:
    """A PacingViolationError carries the likely rule, the retry time and a note, shows
    them in its message and keeps them through pickling."""
    at = dt.datetime(2025, 3, 12, 15, 10, 12, tzinfo=dt.timezone.utc)
    err = PacingViolationError(
        162,
        "Historical data request pacing violation",
        7,
        retry_after=612.01,
        rule="more than 60 requests within 600 s",
        retry_at=at,
        note="refused 4 times",
    )
    assert (err.rule, err.retry_at, err.note, err.retry_after) == (
        "more than 60 requests within 600 s",
        at,
        "refused 4 times",
        612.01,
    )
    assert str(err) == (
        "IB error 162 (request 7): Historical data request pacing violation (likely rule: "
        "more than 60 requests within 600 s; refused 4 times; retry after 612.01 s, at "
        "2025-03-12 15:10:12 UTC)"
    )
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.rule, copy.retry_at, copy.note, str(copy)) == (err.rule, at, err.note, str(err))
    with pytest.raises(ValueError, match="retry_at"):
        PacingViolationError(162, "x", retry_at=dt.datetime(2025, 3, 12))
