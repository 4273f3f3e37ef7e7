"""The ``EWrapper`` subclass: routes ibapi's callbacks to the session, nothing else.

It depends on the session only through :class:`Session`, the handful of methods it calls,
and accepts every ``error`` signature ibapi has had (see :mod:`ibdata._ibapi`).
"""

from __future__ import annotations

from typing import Any, Protocol

from ibapi.wrapper import EWrapper

from ibdata import _ibapi
from ibdata._requests import BARS, DETAILS, HEAD, RequestTable


class Session(Protocol):
    """What the wrapper needs of a session: its request table and its event handlers."""

    table: RequestTable

    def on_error(self, req_id: int, code: int, text: str) -> None: ...
    def on_next_valid_id(self, order_id: int) -> None: ...
    def on_managed_accounts(self, accounts: str) -> None: ...
    def on_end(self, req_id: int, kind: str, extra: Any = None) -> None: ...
    def on_current_time(self, epoch: int) -> None: ...


class Wrapper(EWrapper):  # type: ignore[misc]  # ibapi ships no type hints
    """Forwards the callbacks ibdata uses to its session."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._conn = session

    def error(self, reqId: Any, *args: Any) -> None:  # noqa: N803
        req_id, code, text = _ibapi.normalize_error(reqId, *args)
        self._conn.on_error(req_id, code, text)

    def nextValidId(self, orderId: int) -> None:  # noqa: N802, N803
        self._conn.on_next_valid_id(orderId)

    def managedAccounts(self, accountsList: str) -> None:  # noqa: N802, N803
        self._conn.on_managed_accounts(accountsList)

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:  # noqa: N802, N803
        self._conn.table.add_item(reqId, contractDetails)

    def bondContractDetails(self, reqId: int, contractDetails: Any) -> None:  # noqa: N802, N803
        self._conn.table.add_item(reqId, contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:  # noqa: N802, N803
        self._conn.on_end(reqId, DETAILS)

    def historicalData(self, reqId: int, bar: Any) -> None:  # noqa: N802, N803
        # Only reached for layouts ibdata does not parse itself.
        self._conn.table.add_item(reqId, bar)

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:  # noqa: N802, N803
        self._conn.on_end(reqId, BARS, (start, end))

    def headTimestamp(self, reqId: int, headTimestamp: str) -> None:  # noqa: N802, N803
        self._conn.table.add_item(reqId, headTimestamp)
        self._conn.on_end(reqId, HEAD)

    def currentTime(self, time: int) -> None:  # noqa: N802
        self._conn.on_current_time(time)
