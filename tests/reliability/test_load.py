"""Load: many threads on one client, many HTTP clients on one REST adapter.

The simulator's bars are deterministic, so the answer to every request is known: it is
first asked alone, one request at a time, on a separate quiet client. Under load each
answer must equal that one (bars, contract details, or the same IB error), none may be
lost, and no request may be left in the client's table.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ibdata import Bars, Client, ContractDetails, RequestError
from ibdata.http import create_app
from ibdata.sim import Simulator
from tests.conftest import CLOCK_AT
from tests.reliability.conftest import Figures
from tests.test_http import Servers

THREADS = 32
CALLS_PER_THREAD = 200
HTTP_CLIENTS = 50
HTTP_CALLS_PER_CLIENT = 40

#: (instrument, contract overrides, what to show): stocks, an index (trades only), a
#: currency pair (quotes only) and futures months.
INSTRUMENTS: list[tuple[str, dict[str, str], tuple[str, ...]]] = [
    ("AAPL", {}, ("TRADES", "MIDPOINT", "BID")),
    ("MSFT", {}, ("TRADES", "MIDPOINT", "BID")),
    ("SPY", {}, ("TRADES", "MIDPOINT", "BID")),
    ("SPX", {"sec_type": "IND", "exchange": "CBOE"}, ("TRADES",)),
    ("EUR", {"sec_type": "CASH", "exchange": "IDEALPRO"}, ("MIDPOINT", "BID", "ASK")),
    ("EURBBLM25", {}, ("TRADES", "MIDPOINT", "BID")),
    ("UST10YM25", {}, ("TRADES", "MIDPOINT", "BID")),
]
#: Continuous futures take no end date (IB answers 10339 if given one).
CONTINUOUS = ["EURBBL", "UST10Y"]
SIZES = [
    ("1 day", "1 M"),
    ("1 hour", "2 D"),
    ("5 mins", "1 D"),
    ("1 min", "3600 S"),
    ("15 mins", "1 W"),
]
ENDS: list[dt.datetime | None] = [
    None,
    CLOCK_AT - dt.timedelta(hours=3),  # the same daily bars as None: skipped for those
    CLOCK_AT - dt.timedelta(days=1),
    CLOCK_AT - dt.timedelta(days=2, hours=5),
]

Call = tuple[str, str, dict[str, Any]]  # (method, instrument, keyword arguments)


def request_pool() -> list[Call]:
    """Every distinct request of the load: bars of every shape, details, range downloads,
    and requests IB refuses (their errors must reach the right caller too)."""
    calls: list[Call] = []
    for symbol, overrides, shows in INSTRUMENTS:
        for size, duration in SIZES:
            for show in shows:
                for end in [e for e in ENDS if size != "1 day" or e != ENDS[1]]:
                    kwargs = {"bar_size": size, "duration": duration, "what_to_show": show}
                    calls.append(("bars", symbol, {**kwargs, "end": end, **overrides}))
    for symbol in CONTINUOUS:
        for size, duration in SIZES:
            for show in ("TRADES", "MIDPOINT", "BID"):
                kwargs = {"bar_size": size, "duration": duration, "what_to_show": show}
                calls.append(("bars", symbol, kwargs))
    calls.append(("bars", "EURBBL", {"duration": "1 W", "end": CLOCK_AT}))  # 10339
    calls.append(("bars", "ZZZZ", {}))  # 200: unknown
    calls.append(("bars", "EUR", {"sec_type": "CASH", "exchange": "IDEALPRO"}))  # 162: no trades
    calls.append(("bars", "SPX", {"sec_type": "IND", "exchange": "CBOE", "what_to_show": "BID"}))
    for symbol, overrides, _ in INSTRUMENTS:
        calls.append(("details", symbol, overrides))
    for symbol in (*CONTINUOUS, "ZZZZ", "QQQQ"):
        calls.append(("details", symbol, {}))
    calls.append(("details", "GBL", {"sec_type": "FUT", "exchange": "EUREX", "currency": "EUR"}))
    for symbol in ("AAPL", "MSFT", "EURBBLM25"):
        for size, days in (("1 hour", 9), ("1 day", 60)):
            start = CLOCK_AT - dt.timedelta(days=days)
            calls.append(("bars", symbol, {"bar_size": size, "start": start, "end": CLOCK_AT}))
    return calls


def perform(client: Client, call: Call) -> object:
    """The call's answer, or the IB error it raised as ``(class, code, IB's text)``."""
    method, instrument, kwargs = call
    try:
        if method == "details":
            return client.get_contract_details(instrument, **kwargs)
        return client.get_historical_bars(instrument, **kwargs)
    except RequestError as exc:
        return (type(exc).__name__, exc.code, exc.message)


def fingerprint(answer: object) -> object:
    """A hashable summary of an answer that differs whenever the answers differ."""
    if isinstance(answer, Bars):
        columns = answer.to_arrays()
        return (repr(answer), answer.contract, tuple(c.tobytes() for c in columns.values()))
    if isinstance(answer, list):
        return tuple(answer)
    return answer


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator without pacing, so the load is limited by the machine only."""
    return sim_factory(pacing=None)


@pytest.fixture
def clients(sim: Simulator) -> Iterator[Callable[[], Client]]:
    """Connected clients without pacing or message-rate limit (the simulator enforces
    neither; this load measures routing, not TWS's rate); all are closed after the test."""
    made: list[Client] = []

    def make() -> Client:
        c = Client(
            sim.host, sim.port, pacing=None, max_message_rate=None, timeout=60, connect_timeout=10
        ).connect()
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def _sent(sim: Simulator) -> int:
    names = ("reqHistoricalData", "reqContractDetails", "reqHeadTimestamp")
    return sum(len(sim.received.find(name)) for name in names)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_thirty_two_threads_get_exactly_their_own_answers(
    sim: Simulator, clients: Callable[[], Client], figures: Figures
) -> None:
    """32 threads x 200 mixed requests on one client: each answer equals the one the same
    request got alone, none is lost, and the client's request table ends empty."""
    pool = request_pool()
    quiet = clients()
    expected = [perform(quiet, call) for call in pool]
    successes = [fingerprint(a) for a in expected if not isinstance(a, tuple)]
    assert len(set(successes)) == len(successes), "every answer must tell its request apart"
    errors = [a for a in expected if isinstance(a, tuple)]
    assert {a[1] for a in errors} == {162, 200, 10339}  # IB errors are part of the mix

    loaded = clients()
    sent_before = _sent(sim)
    results: dict[int, list[tuple[int, object, float]]] = {}
    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        rng = random.Random(index)
        mine = results.setdefault(index, [])
        barrier.wait()
        for _ in range(CALLS_PER_THREAD):
            which = rng.randrange(len(pool))
            started = time.perf_counter()
            answer = perform(loaded, pool[which])
            mine.append((which, answer, time.perf_counter() - started))

    threads = [threading.Thread(target=worker, args=(i,), name=f"load-{i}") for i in range(THREADS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(100)
    elapsed = time.perf_counter() - started
    assert not any(t.is_alive() for t in threads)

    answers = [row for rows in results.values() for row in rows]
    assert len(answers) == THREADS * CALLS_PER_THREAD  # none lost
    wrong = [(pool[i], answer) for i, answer, _ in answers if answer != expected[i]]
    assert wrong == []
    conn = loaded._conn
    assert conn is not None
    assert len(conn.table) == 0
    assert loaded._engine._calls == {}
    assert loaded._engine._inflight == {}
    assert sim.stats.open_historical == 0
    assert loaded.health().status == "healthy"
    assert sim.stats.connections == 2  # neither client had to reconnect

    latencies = [seconds for _, _, seconds in answers]
    figures.record("calls held (32 threads x 200)", len(answers))
    figures.record("distinct requests in the mix", len(pool))
    figures.record(
        "IB error answers routed to their callers", sum(isinstance(a, tuple) for _, a, _ in answers)
    )
    figures.record("wrong, lost or crossed answers", len(wrong))
    figures.record(
        "IB requests sent (identical calls in flight share one)", _sent(sim) - sent_before
    )
    figures.record("latency p50 (ms)", 1000 * statistics.median(latencies))
    figures.record("latency p99 (ms)", 1000 * _percentile(latencies, 0.99))
    figures.record("latency max (ms)", 1000 * max(latencies))
    figures.record("wall time (s)", elapsed)


# ---------------------------------------------------------------------- REST


def _query(kwargs: dict[str, Any]) -> dict[str, str]:
    names = {
        "bar_size": "barSize",
        "what_to_show": "whatToShow",
        "sec_type": "secType",
        "end": "endDateTime",
    }
    query: dict[str, str] = {}
    for key, value in kwargs.items():
        if value is None:
            continue
        text = value.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, dt.datetime) else value
        query[names.get(key, key)] = str(text)
    return query


def _bar_json(bars: Bars) -> list[dict[str, Any]]:
    """The bars as the REST adapter must serve them (the older server's JSON)."""
    out = []
    for bar in bars:
        stamp = bar.time
        if isinstance(stamp, dt.datetime):
            text = stamp.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            text = stamp.strftime("%Y%m%d")
        volume = bar.volume
        if volume is not None and float(volume).is_integer():
            volume = int(volume)
        out.append(
            {
                "time": text,
                "open": bar.open,
                "high": bar.high,
                "low": bar.low,
                "close": bar.close,
                "volume": volume,
                "count": bar.count,
                "wap": bar.wap,
            }
        )
    return out


def expected_json(answer: object) -> tuple[int, Any]:
    """The status and the parts of the JSON body the REST adapter must answer with."""
    if isinstance(answer, Bars):
        assert answer.contract is not None
        return 200, (answer.contract.con_id, answer.bar_size.value, _bar_json(answer))
    if isinstance(answer, list):
        details: list[ContractDetails] = answer
        return 200, [(d.contract.con_id, d.contract.local_symbol) for d in details]
    name, code, message = answer  # type: ignore[misc]
    status = {"ContractNotFoundError": 404, "InvalidRequestError": 400, "NoDataError": 404}[name]
    return status, (code, message)


def observed_json(method: str, response: httpx.Response) -> tuple[int, Any]:
    """The same parts, read from the adapter's answer."""
    body = response.json()
    if response.status_code != 200:
        message = body["error"].split(": ", 1)[1]  # "IB error 200 (request 7): <IB's text>"
        return response.status_code, (body["code"], message)
    if method == "details":
        return 200, [(c["conId"], c["localSymbol"]) for c in body["contracts"]]
    assert body["count"] == len(body["data"])
    return 200, (body["contract"]["conId"], body["barSize"], body["data"])


def test_fifty_http_clients_get_the_direct_answers(
    sim: Simulator, clients: Callable[[], Client], figures: Figures
) -> None:
    """50 concurrent HTTP clients on one REST adapter: every JSON answer carries exactly
    the bars, contracts or IB error the client gives for the same request."""
    pool = [call for call in request_pool() if "start" not in call[2]]
    quiet = clients()
    expected = [expected_json(perform(quiet, call)) for call in pool]
    servers = Servers()
    http = servers.start(create_app(clients(), token="load-token"))
    base = str(http.base_url)
    results: list[tuple[int, tuple[int, Any], float]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(HTTP_CLIENTS)

    def consumer(index: int) -> None:
        rng = random.Random(1000 + index)
        auth = {"Authorization": "Bearer load-token"}
        with httpx.Client(base_url=base, timeout=60, headers=auth) as own:
            barrier.wait()
            for _ in range(HTTP_CALLS_PER_CLIENT):
                which = rng.randrange(len(pool))
                method, symbol, kwargs = pool[which]
                path = "contract-details" if method == "details" else "market-data"
                started = time.perf_counter()
                response = own.get(f"/ib/{path}/{symbol}", params=_query(kwargs))
                seconds = time.perf_counter() - started
                row = (which, observed_json(method, response), seconds)
                with lock:
                    results.append(row)

    threads = [threading.Thread(target=consumer, args=(i,)) for i in range(HTTP_CLIENTS)]
    try:
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(100)
        elapsed = time.perf_counter() - started
        assert not any(t.is_alive() for t in threads)
    finally:
        servers.stop(http)

    assert len(results) == HTTP_CLIENTS * HTTP_CALLS_PER_CLIENT
    wrong = [(pool[i], got) for i, got, _ in results if got != expected[i]]
    assert wrong == []
    statuses: dict[int, int] = {}
    for _, (status, _), _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    assert set(statuses) <= {200, 400, 404}
    latencies = [seconds for _, _, seconds in results]
    figures.record("HTTP requests held (50 clients x 40)", len(results))
    figures.record("HTTP statuses", dict(sorted(statuses.items())))
    figures.record("wrong or lost JSON answers", len(wrong))
    figures.record("HTTP latency p50 (ms)", 1000 * statistics.median(latencies))
    figures.record("HTTP latency p99 (ms)", 1000 * _percentile(latencies, 0.99))
    figures.record("HTTP latency max (ms)", 1000 * max(latencies))
    figures.record("HTTP wall time (s)", elapsed)
