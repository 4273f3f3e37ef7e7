"""How the simulator answers the requests it does not serve: at once, the way TWS refuses.

The simulator serves contract details, historical bars, head timestamps and the start-up
requests of API clients. Real TWS answers every request, with data or an error; a client
that got no answer would wait for its own timeout. So each request the simulator does not
serve gets the error a TWS session without that permission or subscription sends (codes and
texts recorded from real sessions), with the request's id, and a few list requests get the
empty list an account without that feature receives.

Orders are always refused: the simulator behaves as TWS with **Read-Only API** set, which
answers ``placeOrder``, ``cancelOrder``, ``exerciseOptions`` and ``reqGlobalCancel`` with 321
"…The API interface is currently in Read-Only mode." (the order id as the request id).

Where no recorded refusal exists (PnL, option calculations, histograms), the code and text
are the closest IB uses for a missing permission, marked ⚠ in the simulator docs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from ibdata.sim._framing import Field

#: The two-letter tag of 321 texts varies between TWS builds; this one is arbitrary.
READ_ONLY = (
    "Error validating request.-'bh' : cause - The API interface is currently in Read-Only mode."
)
NOT_SUBSCRIBED = (
    "Requested market data is not subscribed. Check API status by selecting the Account menu "
    "then under Management choose Market Data Subscription Manager and/or availability of "
    "delayed data.Delayed market data is not available."
)
NO_PERMISSIONS = (
    "No market data permissions for {exchange} {sec_type}. Requested market data requires "
    "additional subscription for API. See link in 'Market Data Connections' dialog for more "
    "details."
)
CANCEL_CONTRACT_DATA = 215
CME_TAGGING_FIELDS = 192


@attrs.frozen
class Refusal:
    """The error one unserved request gets.

    Attributes:
        name: IB's name of the request.
        req_id: Where the request id sits in the request's fields (None: the request has
            none, and the error goes out with -1), per server version.
        code: The error code.
        text: The error text, formatted with ``symbol``, ``sec_type`` and ``exchange`` of
            the request's contract when it names one.
        contract_at: Where the request's contract (conId, symbol, secType, …) starts, if it
            has one.
    """

    name: str
    req_id: Callable[[int], int | None]
    code: int
    text: str
    contract_at: int | None = None

    def error(self, fields: Sequence[str], server_version: int) -> tuple[int, int, str]:
        """``(req_id, code, text)`` of the refusal of the request ``fields``."""
        at = self.req_id(server_version)
        req_id = -1
        if at is not None and at < len(fields):
            try:
                req_id = int(fields[at] or -1)
            except ValueError:
                req_id = -1
        values = {"symbol": "", "sec_type": "", "exchange": ""}
        if self.contract_at is not None and self.contract_at + 7 < len(fields):
            c = self.contract_at
            values = {
                "symbol": fields[c + 1],
                "sec_type": fields[c + 2],
                "exchange": fields[c + 7],
            }
        return req_id, self.code, self.text.format(**values)


def _at(index: int) -> Callable[[int], int | None]:
    return lambda _sv: index


def _none(_sv: int) -> int | None:
    return None


def _cancel_order_id(sv: int) -> int | None:
    return 2 if sv < CME_TAGGING_FIELDS else 1  # the version field went at 192


#: Outgoing message id -> how the simulator refuses it. Requests it serves, and cancels,
#: which need no answer, are not listed.
REFUSALS: dict[int, Refusal] = {
    1: Refusal("reqMktData", _at(2), 354, NOT_SUBSCRIBED + "{symbol} {exchange}/TOP/ALL", 3),
    3: Refusal("placeOrder", _at(1), 321, READ_ONLY),
    4: Refusal("cancelOrder", _cancel_order_id, 321, READ_ONLY),
    10: Refusal("reqMktDepth", _at(2), 354, NOT_SUBSCRIBED + "{symbol} {exchange}/DEEP/ALL", 3),
    12: Refusal("reqNewsBulletins", _none, 10276, "News feed is not allowed."),
    21: Refusal("exerciseOptions", _at(2), 321, READ_ONLY),
    24: Refusal(
        "reqScannerParameters",
        _none,
        490,
        "You must subscribe for additional permissions to run scanner:Real-Time Market Data",
    ),
    22: Refusal(
        "reqScannerSubscription",
        _at(1),
        490,
        "You must subscribe for additional permissions to run scanner:Real-Time Market Data",
    ),
    50: Refusal("reqRealTimeBars", _at(2), 420, "Invalid Real-time Query:" + NO_PERMISSIONS, 3),
    52: Refusal("reqFundamentalData", _at(2), 10358, "Fundamentals data is not allowed"),
    54: Refusal("calculateImpliedVolatility", _at(2), 354, NOT_SUBSCRIBED, 3),
    55: Refusal("calculateOptionPrice", _at(2), 354, NOT_SUBSCRIBED, 3),
    58: Refusal("reqGlobalCancel", _none, 321, READ_ONLY),
    84: Refusal("reqNewsArticle", _at(1), 10276, "News feed is not allowed."),
    86: Refusal("reqHistoricalNews", _at(1), 10276, "News feed is not allowed."),
    88: Refusal(
        "reqHistogramData",
        _at(1),
        162,
        "Historical Market Data Service error message:" + NO_PERMISSIONS,
        2,
    ),
    92: Refusal(
        "reqPnL",
        _at(1),
        321,
        "Error validating request.-'cR' : cause - PnL is not available for this account",
    ),
    94: Refusal(
        "reqPnLSingle",
        _at(1),
        321,
        "Error validating request.-'cR' : cause - PnL is not available for this account",
    ),
    96: Refusal(
        "reqHistoricalTicks",
        _at(1),
        10187,
        "Failed to request historical ticks:No market data permissions for {exchange} {sec_type}",
        2,
    ),
    97: Refusal(
        "reqTickByTickData",
        _at(1),
        10189,
        "Failed to request tick-by-tick data.No market data permissions for {exchange} {sec_type}.",
        2,
    ),
    100: Refusal("reqWshMetaData", _at(1), 10276, "News feed is not allowed."),
    102: Refusal("reqWshEventData", _at(1), 10276, "News feed is not allowed."),
}

#: Cancels and settings that need no answer (real TWS sends none for them either).
SILENT: frozenset[int] = frozenset(
    {2, 11, 13, 14, 23, 51, 53, 56, 57, 63, 64, 70, 75, 77, 89, 93, 95, 98, 101, 103, 106, 107}
)

#: What any other request the simulator does not know gets, so no client waits for its
#: timeout (⚠ no recorded TWS answer: the text is the simulator's own).
UNSERVED = Refusal(
    "",
    _none,
    321,
    "Error validating request.-'bZ' : cause - This request is not served by the simulator",
)

# Incoming ids of the empty answers below.
IN_NEWS_PROVIDERS = 85
IN_SECURITY_DEFINITION_OPTION_PARAMETER_END = 76
IN_SYMBOL_SAMPLES = 79
IN_SOFT_DOLLAR_TIERS = 77
IN_FAMILY_CODES = 78
IN_MKT_DEPTH_EXCHANGES = 80
IN_OPEN_ORDER_END = 53
IN_POSITION_MULTI_END = 72
IN_SMART_COMPONENTS = 82
IN_USER_INFO = 107


def _empty_with_id(msg_id: int, at: int) -> Callable[[Sequence[str], int], list[Field]]:
    def answer(fields: Sequence[str], _sv: int) -> list[Field]:
        return [msg_id, fields[at] if at < len(fields) else -1, 0]

    return answer


#: Outgoing message id -> (IB's name, the empty answer of an account without the feature).
EMPTY_ANSWERS: dict[int, tuple[str, Callable[[Sequence[str], int], list[Field]]]] = {
    85: ("reqNewsProviders", lambda _f, _sv: [IN_NEWS_PROVIDERS, 0]),
    78: (
        "reqSecDefOptParams",
        lambda f, _sv: [IN_SECURITY_DEFINITION_OPTION_PARAMETER_END, f[1] if len(f) > 1 else -1],
    ),
    81: ("reqMatchingSymbols", _empty_with_id(IN_SYMBOL_SAMPLES, 1)),
    79: ("reqSoftDollarTiers", _empty_with_id(IN_SOFT_DOLLAR_TIERS, 1)),
    80: ("reqFamilyCodes", lambda _f, _sv: [IN_FAMILY_CODES, 0]),
    82: ("reqMktDepthExchanges", lambda _f, _sv: [IN_MKT_DEPTH_EXCHANGES, 0]),
    16: ("reqAllOpenOrders", lambda _f, _sv: [IN_OPEN_ORDER_END, 1]),
    74: (
        "reqPositionsMulti",
        lambda f, _sv: [IN_POSITION_MULTI_END, 1, f[2] if len(f) > 2 else -1],
    ),
    83: ("reqSmartComponents", _empty_with_id(IN_SMART_COMPONENTS, 1)),
    104: ("reqUserInfo", lambda f, _sv: [IN_USER_INFO, f[1] if len(f) > 1 else -1, ""]),
}

#: Outgoing message id -> IB's name, for the received log.
NAMES: dict[int, str] = {
    **{msg_id: r.name for msg_id, r in REFUSALS.items()},
    **{msg_id: name for msg_id, (name, _) in EMPTY_ANSWERS.items()},
}
