"""Outages between TWS and IB: 1100, broken farms, then 1102 or 1101, during downloads.

While IB's servers are out of reach TWS keeps the API session and holds answers. A client
must say so in ``health()`` at every step and must neither hang nor return less than was
asked: each request completes with exactly the bars a clean run returns (the simulator's
bars are deterministic) or fails with a clear ibdata error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest

from ibdata import Bars, Client, Health, RequestTimeoutError
from ibdata.sim import Simulator
from tests.reliability.conftest import Figures
from tests.reliability.probes import Call, frame, wait_until

UTC = dt.timezone.utc

#: Farms the simulator reports broken in an outage (2103, 2105, 2157) and those it leaves.
BROKEN = {"usfarm", "ushmds", "secdefil"}
UNTOUCHED = {"usfuture", "eufarm", "cashfarm", "euhmds"}

#: Single-request windows downloaded across an outage: (instrument, duration, bar size).
WINDOWS = (
    ("AAPL", "1 D", "5 mins"),
    ("MSFT", "2 D", "1 hour"),
    ("SPY", "3600 S", "1 min"),
    ("EURBBL", "1 W", "1 day"),
)
#: A range of 1-minute bars: a head timestamp, then one request per day.
RANGE = (dt.datetime(2025, 3, 3, tzinfo=UTC), dt.datetime(2025, 3, 8, tzinfo=UTC))
#: Time allowed for a notice to reach health(), and for a held answer to be delivered.
NOTICE_WAIT = 3.0
#: A call still running this long after its answer was released counts as hung.
HANG_LIMIT = 10.0


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """The simulator at server version 157, the layout of the hand-made notices below,
    which every ibapi release negotiates down to and reads."""
    return sim_factory(server_version=157)


@pytest.fixture
def client(sim: Simulator) -> Iterator[Client]:
    """A connected client with plenty of time per request."""
    c = Client(sim.host, sim.port, timeout=10, connect_timeout=5)
    c.connect()
    yield c
    c.close()


def _health_until(client: Client, done: Callable[[Health], bool]) -> Health:
    wait_until(lambda: done(client.health()), NOTICE_WAIT)
    return client.health()


def _event(h: Health) -> int | None:
    return h.last_connectivity_event.code if h.last_connectivity_event is not None else None


def _farms(h: Health, names: set[str]) -> set[str]:
    return {h.farms[name].value for name in names}


def _bars(client: Client, window: tuple[str, str, str], timeout: float = 10) -> Bars:
    instrument, duration, bar_size = window
    return client.get_historical_bars(
        instrument, duration=duration, bar_size=bar_size, timeout=timeout
    )


def _notice(code: int, text: str) -> bytes:
    """An error-message frame with request id -1 at server version 157: a TWS notice."""
    return frame(4, 2, -1, code, text)


@pytest.mark.parametrize("data_lost", [False, True], ids=["1102", "1101"])
def test_outage_during_downloads(
    sim: Simulator, client: Client, figures: Figures, data_lost: bool
) -> None:
    """Across 1100 and broken farms then 1102 or 1101, health() reports each step, calls in
    flight and calls made meanwhile return exactly a clean run's bars once data flows again,
    and a call whose timeout ends inside the outage raises RequestTimeoutError, cancelled."""
    expected = {w: _bars(client, w) for w in WINDOWS}
    late = ("AAPL", "7200 S", "1 min")
    meanwhile = ("MSFT", "3600 S", "1 min")
    for window in (late, meanwhile):
        expected[window] = _bars(client, window)
    h = client.health()
    assert (h.status, _event(h), _farms(h, BROKEN | UNTOUCHED)) == ("healthy", None, {"ok"})

    sim.set_latency(1.0)  # answers would come 1 s after each request, outage or not
    before = len(sim.received.find("reqHistoricalData"))
    calls = {w: Call(lambda w=w: _bars(client, w)) for w in WINDOWS}
    short = Call(lambda: _bars(client, late, timeout=1.0))
    assert wait_until(
        lambda: len(sim.received.find("reqHistoricalData")) - before == len(WINDOWS) + 1, 5
    )
    sim.connectivity_lost()

    h = _health_until(client, lambda h: _event(h) == 1100 and h.farms["ushmds"].value == "broken")
    assert h.status == "degraded"
    assert h.ready  # the API session itself is up
    assert h.connected
    assert _event(h) == 1100
    assert _farms(h, BROKEN) == {"broken"}
    assert _farms(h, UNTOUCHED) == {"ok"}

    made_meanwhile = Call(lambda: _bars(client, meanwhile))
    assert short.join(3)
    assert isinstance(short.error, RequestTimeoutError), short.error
    sim.received.wait_for(
        "cancelHistoricalData", where=lambda m: m.fields[2] == str(short.error.req_id), timeout=2
    )
    # the 1 s latency has passed: only the outage holds the answers now
    assert not any(c.join(0) for c in [*calls.values(), made_meanwhile])
    assert client.health().status == "degraded"

    sim.connectivity_restored(data_lost=data_lost)
    final = 1101 if data_lost else 1102
    h = _health_until(client, lambda h: _event(h) == final and h.status == "healthy")
    assert h.status == "healthy"
    assert _event(h) == final
    assert _farms(h, BROKEN | UNTOUCHED) == {"ok"}

    for window, call in calls.items():
        assert call.join(HANG_LIMIT), f"{window} hangs"
        assert call.error is None, call.error
        assert call.result == expected[window], window
    assert made_meanwhile.join(HANG_LIMIT)
    assert made_meanwhile.result == expected[meanwhile]
    sim.set_latency(0)
    assert _bars(client, late) == expected[late]
    assert client.health().reconnect_count == 0

    name = f"outage ending in {final}"
    figures.record(f"{name}: calls held, then exactly a clean run's bars", len(calls) + 1)
    figures.record(f"{name}: calls timed out inside it (RequestTimeoutError, cancelled)", 1)


def test_health_tells_each_step(sim: Simulator, client: Client) -> None:
    """health() follows a farm broken alone (degraded, no connectivity event), its
    recovery, then 1100 → 1101 and 1100 → 1102, and requests are served after each step."""
    expected = _bars(client, WINDOWS[2])
    steps: list[tuple[Callable[[], object], str, int | None, str]] = [
        (lambda: sim.send_raw(_notice(2105, "HMDS data farm connection is broken:ushmds")),
         "degraded", None, "broken"),
        (lambda: sim.send_raw(_notice(2106, "HMDS data farm connection is OK:ushmds")),
         "healthy", None, "ok"),
        (sim.connectivity_lost, "degraded", 1100, "broken"),
        (lambda: sim.connectivity_restored(data_lost=True), "healthy", 1101, "ok"),
        (sim.connectivity_lost, "degraded", 1100, "broken"),
        (lambda: sim.connectivity_restored(data_lost=False), "healthy", 1102, "ok"),
    ]  # fmt: skip
    for step, status, event, hmds in steps:
        step()
        h = _health_until(
            client,
            lambda h, s=status, e=event, f=hmds: (
                (h.status, _event(h), h.farms["ushmds"].value) == (s, e, f)
            ),
        )
        assert (h.status, _event(h), h.farms["ushmds"].value) == (status, event, hmds)
        if status == "healthy":
            assert _bars(client, WINDOWS[2]) == expected


def test_range_download_across_repeated_outages(
    sim: Simulator, client: Client, figures: Figures
) -> None:
    """A range download that two outages (ending in 1102, then 1101) interrupt between its
    chunks returns exactly the bars of a clean download."""
    start, end = RANGE
    clean = client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
    chunks = len(sim.received.find("reqHistoricalData"))
    assert chunks >= 5  # one request per day at least
    sim.set_latency(0.2)
    before = len(sim.received.find("reqHistoricalData"))

    def sent() -> int:
        return len(sim.received.find("reqHistoricalData")) - before

    download = Call(
        lambda: client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
    )
    for data_lost, after in ((False, 2), (True, 4)):
        assert wait_until(lambda a=after: sent() >= a, 10)
        sim.connectivity_lost()
        h = _health_until(client, lambda h: h.status == "degraded")
        assert _event(h) == 1100
        assert not download.join(0.5)  # held: no chunk is answered during the outage
        held_at = sent()
        sim.connectivity_restored(data_lost=data_lost)
        assert wait_until(lambda h=held_at: sent() > h or download.join(0), 5)
    assert download.join(HANG_LIMIT)
    assert download.error is None, download.error
    assert download.result == clean
    h = client.health()
    assert (h.status, _event(h)) == ("healthy", 1101)
    figures.record("range download across two outages: chunks", sent())
    figures.record("range download across two outages: bars, equal to a clean run", len(clean))


def test_range_download_fails_whole_when_an_outage_outlasts_its_timeout(
    sim: Simulator, client: Client
) -> None:
    """A range download whose chunk is held past its timeout raises RequestTimeoutError
    (never a partial range), the chunk is cancelled at IB, and the same download succeeds
    once the outage is over."""
    start, end = RANGE
    clean = client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
    sim.set_latency(0.2)
    before = len(sim.received.find("reqHistoricalData"))
    download = Call(
        lambda: client.get_historical_bars(
            "AAPL", start=start, end=end, bar_size="1 min", timeout=1.0
        )
    )
    assert wait_until(lambda: len(sim.received.find("reqHistoricalData")) - before >= 2, 10)
    sim.connectivity_lost()
    assert download.join(5)
    assert isinstance(download.error, RequestTimeoutError), download.error
    assert download.result is None
    sim.received.wait_for(
        "cancelHistoricalData", where=lambda m: m.fields[2] == str(download.error.req_id)
    )
    sim.connectivity_restored()
    sim.set_latency(0)
    assert client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min") == clean
