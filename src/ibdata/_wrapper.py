"""The ``EWrapper`` subclass: routes ibapi's callbacks to the connection, nothing else.

It accepts every ``error`` signature ibapi has had: ``(reqId, code, text)`` in 9.81,
``(reqId, code, text, advancedOrderRejectJson)`` in 10.x before 10.33, and
``(reqId, errorTime, code, text, advancedOrderRejectJson)`` from 10.33.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ibapi.wrapper import EWrapper

from ibdata._requests import BARS, DETAILS, HEAD

if TYPE_CHECKING:
    from ibdata._connection import Connection


def normalize_error(req_id: Any, *args: Any) -> tuple[int, int, str]:
    """Turn any ibapi ``error`` call into ``(req_id, code, text)``.

    Raises:
        TypeError: the arguments fit none of ibapi's signatures.
    """
    if len(args) >= 3 and isinstance(args[1], int) and isinstance(args[2], str):
        _error_time, code, text = args[:3]  # 10.33+: errorTime comes first
    elif len(args) >= 2 and isinstance(args[1], str):
        code, text = args[:2]
    else:
        raise TypeError(f"unexpected error() arguments: {(req_id, *args)!r}")
    return int(req_id), int(code), str(text)


class Wrapper(EWrapper):  # type: ignore[misc]  # ibapi ships no type hints
    """Forwards the callbacks ibdata uses to its :class:`~ibdata._connection.Connection`."""

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self._conn = connection

    def error(self, reqId: Any, *args: Any) -> None:  # noqa: N803
        req_id, code, text = normalize_error(reqId, *args)
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
        # Only reached when the fast path is off (server versions whose layout it does not
        # know); BarData names its WAP ``average`` in 9.81 and ``wap`` in 10.x.
        self._conn.table.add_item(reqId, bar)

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:  # noqa: N802, N803
        self._conn.on_end(reqId, BARS, (start, end))

    def headTimestamp(self, reqId: int, headTimestamp: str) -> None:  # noqa: N802, N803
        self._conn.table.add_item(reqId, headTimestamp)
        self._conn.on_end(reqId, HEAD)

    def currentTime(self, time: int) -> None:  # noqa: N802
        self._conn.on_current_time(time)
