"""A minimal blocking client on IB's official ``ibapi``, for the demo and for tests.

It is deliberately small: one connection, one request at a time per call, no reconnects.
It exists to drive the simulator with IB's own client code; ibdata's real client is
:class:`ibdata.Client`.
"""

from __future__ import annotations

import threading
from typing import Any

from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.wrapper import EWrapper

from ibdata._ibapi import normalize_error


class ProbeError(Exception):
    """IB answered a request with an error: ``code`` and ``text`` as sent."""

    def __init__(self, req_id: int, code: int, text: str) -> None:
        super().__init__(f"{code} (request {req_id}): {text}")
        self.req_id = req_id
        self.code = code
        self.text = text


class _Wrapper(EWrapper):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Condition()
        self.next_id: int | None = None
        self.accounts = ""
        self.results: dict[int, list[Any]] = {}
        self.done: dict[int, Any] = {}
        self.notices: list[tuple[int, int, str]] = []
        self.closed = False

    def nextValidId(self, orderId: int) -> None:  # noqa: N802, N803
        with self.lock:
            self.next_id = orderId
            self.lock.notify_all()

    def managedAccounts(self, accountsList: str) -> None:  # noqa: N802, N803
        self.accounts = accountsList

    def error(self, reqId: int, *args: Any) -> None:  # noqa: N803
        # every release's signature: (code, text[, json]) or, from 10.37, (time, code, text, json)
        reqId, errorCode, errorString = normalize_error(reqId, *args)  # noqa: N806
        with self.lock:
            self.notices.append((reqId, errorCode, errorString))
            informational = errorCode in (2174,) or 2100 <= errorCode < 2200
            if reqId in self.results and not informational:
                self.done[reqId] = ProbeError(reqId, errorCode, errorString)
            self.lock.notify_all()

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:  # noqa: N802, N803
        with self.lock:
            self.results.setdefault(reqId, []).append(contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:  # noqa: N802, N803
        with self.lock:
            self.done[reqId] = True
            self.lock.notify_all()

    def historicalData(self, reqId: int, bar: Any) -> None:  # noqa: N802, N803
        with self.lock:
            self.results.setdefault(reqId, []).append(bar)

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:  # noqa: N802, N803
        with self.lock:
            self.done[reqId] = (start, end)
            self.lock.notify_all()

    def headTimestamp(self, reqId: int, headTimestamp: str) -> None:  # noqa: N802, N803
        with self.lock:
            self.results[reqId] = [headTimestamp]
            self.done[reqId] = True
            self.lock.notify_all()

    def connectionClosed(self) -> None:  # noqa: N802
        with self.lock:
            self.closed = True
            self.lock.notify_all()


class IbapiProbe:
    """Connects with ``ibapi``'s ``EClient`` and makes blocking requests.

    Args:
        host: TWS host.
        port: TWS port.
        client_id: API client id.
        timeout: seconds to wait for any answer.
    """

    def __init__(self, host: str, port: int, client_id: int = 1, timeout: float = 10.0) -> None:
        self.wrapper = _Wrapper()
        self.client = EClient(self.wrapper)
        self.timeout = timeout
        self._ids = 1000
        self.client.connect(host, port, client_id)
        self._thread = threading.Thread(target=self.client.run, name="ibapi-probe", daemon=True)
        self._thread.start()
        self._wait(lambda: self.wrapper.next_id is not None, "nextValidId")

    def close(self) -> None:
        """Disconnect and stop ibapi's message loop."""
        self.client.disconnect()
        self._thread.join(5)

    def __enter__(self) -> IbapiProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def server_version(self) -> int:
        """The negotiated server version."""
        return int(self.client.serverVersion())

    def _wait(self, cond: Any, what: str) -> None:
        w = self.wrapper
        with w.lock:
            if not w.lock.wait_for(lambda: cond() or w.closed, self.timeout):
                raise TimeoutError(f"no {what} within {self.timeout} s")
            if not cond():
                raise ConnectionError(f"connection closed while waiting for {what}")

    def _new_id(self) -> int:
        self._ids += 1
        with self.wrapper.lock:
            self.wrapper.results[self._ids] = []
        return self._ids

    def _result(self, req_id: int, what: str) -> tuple[list[Any], Any]:
        self._wait(lambda: req_id in self.wrapper.done, what)
        with self.wrapper.lock:
            done = self.wrapper.done.pop(req_id)
            items = self.wrapper.results.pop(req_id, [])
        if isinstance(done, ProbeError):
            raise done
        return items, done

    def contract_details(self, contract: Contract) -> list[Any]:
        """reqContractDetails; returns ibapi ``ContractDetails`` objects or raises ProbeError."""
        req_id = self._new_id()
        self.client.reqContractDetails(req_id, contract)
        return self._result(req_id, "contract details")[0]

    def historical_data(
        self,
        contract: Contract,
        *,
        end: str = "",
        duration: str = "1 D",
        bar_size: str = "1 hour",
        what_to_show: str = "TRADES",
        use_rth: bool = False,
        format_date: int = 1,
    ) -> tuple[list[Any], str, str]:
        """reqHistoricalData; returns ``(bars, start, end)`` or raises ProbeError."""
        req_id = self._new_id()
        self.client.reqHistoricalData(
            req_id,
            contract,
            end,
            duration,
            bar_size,
            what_to_show,
            int(use_rth),
            format_date,
            False,
            [],
        )
        bars, (start, stop) = self._result(req_id, "historical data")
        return bars, start, stop

    def head_timestamp(
        self, contract: Contract, what_to_show: str = "TRADES", use_rth: bool = False
    ) -> str:
        """reqHeadTimestamp then cancelHeadTimestamp; returns IB's text."""
        req_id = self._new_id()
        self.client.reqHeadTimeStamp(req_id, contract, what_to_show, int(use_rth), 1)
        items = self._result(req_id, "head timestamp")[0]
        self.client.cancelHeadTimeStamp(req_id)
        return str(items[0])


def stock(symbol: str, exchange: str = "SMART", currency: str = "USD") -> Contract:
    """An ibapi ``Contract`` for a stock."""
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = symbol, "STK", exchange, currency
    return c


def future(
    symbol: str, exchange: str, currency: str, month: str = "", sec_type: str = "FUT"
) -> Contract:
    """An ibapi ``Contract`` for a future (``month`` YYYYMM) or a CONTFUT."""
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = symbol, sec_type, exchange, currency
    c.lastTradeDateOrContractMonth = month
    return c
