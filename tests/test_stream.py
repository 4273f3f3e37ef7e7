"""Live bars (issue 17): BarStream against the simulator on a scaled clock, over sockets.

Every fault is injected mid-stream; each test then downloads the same period from history
and requires the stream to equal it: no lost final bar, no duplicate, nothing invented.
The simulator's clock runs ``SPEED`` times faster than the wall clock, so a 1-minute bar
ends about every second.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

import ibdata
from ibdata import Bar, Client, PacingRules, PartialBar, StreamEvent
from ibdata.sim import ScaledClock, Simulator
from ibdata.sim._catalog import Catalog

UTC = dt.timezone.utc
#: A Tuesday, 10:00 in New York: AAPL trades (the simulator's extended hours 04:00-20:00).
OPEN = dt.datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SPEED = 60.0
MINUTE = dt.timedelta(minutes=1)
#: Wall seconds a test may wait for anything before it fails as hung.
GUARD = 60.0


@pytest.fixture
def live_sim(sim_factory: Callable[..., Simulator]) -> Callable[..., Simulator]:
    """Simulators on a clock running ``SPEED`` times faster, from ``OPEN``; stopped after."""

    def make(*, at: dt.datetime = OPEN, speed: float = SPEED, **options: object) -> Simulator:
        options.setdefault("update_interval", 0.05)
        options.setdefault("pacing", None)
        return sim_factory(clock=ScaledClock(at, speed), **options)

    return make


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    """Connected clients that reconnect at once after a drop; closed after the test."""
    made: list[Client] = []

    def make(sim: Simulator, **options: object) -> Client:
        options.setdefault("pacing", None)
        options.setdefault("timeout", 15)
        options.setdefault("reconnect_min_delay", 0.05)
        options.setdefault("reconnect_max_delay", 0.2)
        c = Client(sim.host, sim.port, **options)  # type: ignore[arg-type]
        c.connect()
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def sim_now(sim: Simulator) -> dt.datetime:
    return sim.clock.now()


def wait_sim(sim: Simulator, until: dt.datetime) -> None:
    """Sleep until the simulator's clock reaches ``until``."""
    deadline = time.monotonic() + GUARD
    while sim_now(sim) < until:
        assert time.monotonic() < deadline, f"the simulator's clock never reached {until}"
        time.sleep(0.02)


def collect(stream: ibdata.BarStream, until: dt.datetime, into: list[Bar]) -> list[Bar]:
    """Take final bars from ``stream`` until one starts at or after ``until``."""
    deadline = time.monotonic() + GUARD
    while not into or into[-1].time < until:
        assert time.monotonic() < deadline, (
            f"no bar at or after {until} came; last {into[-1:]}, events {list(stream.events)}"
        )
        bar = stream.next(0.2)
        if bar is not None:
            into.append(bar)
    return into


def assert_equals_history(client: Client, symbol: str, bars: list[Bar], **options: object) -> None:
    """The streamed bars are exactly what a history download of their period returns."""
    assert bars, "nothing was streamed"
    times = [b.time for b in bars]
    assert times == sorted(set(times)), "bars out of order or repeated"
    last = bars[-1].time
    assert isinstance(last, dt.datetime)
    size = str(options.pop("bar_size", "1 min"))
    # [first, last]: a range holds the bars that start in it (the last may be short: the
    # end of a session that closes off the grid)
    history = client.get_historical_bars(
        symbol,
        bar_size=size,
        start=bars[0].time,
        end=last + dt.timedelta(seconds=1),
        **options,  # type: ignore[arg-type]
    )
    expected = list(history)
    missing = sorted({b.time for b in expected} - set(times))
    extra = sorted(set(times) - {b.time for b in expected})
    assert not missing, f"{len(missing)} final bars lost: {missing[:5]}"
    assert not extra, f"{len(extra)} bars history does not have: {extra[:5]}"
    differ = [(h, s) for h, s in zip(expected, bars, strict=True) if h != s]
    assert not differ, f"{len(differ)} bars differ from history, first: {differ[0]}"


def drain(stream: ibdata.BarStream, into: list[Bar]) -> list[Bar]:
    """Take every bar until the stream ends (its error, if it ended with one, propagates)."""
    deadline = time.monotonic() + GUARD
    for bar in stream:
        into.append(bar)
        assert time.monotonic() < deadline, "the stream did not end"
    return into


def wait_cancelled(sim: Simulator) -> None:
    """Wait until the simulator has no live subscription (cancels travel asynchronously)."""
    deadline = time.monotonic() + GUARD
    while sim.live_subscriptions:
        assert time.monotonic() < deadline, f"{sim.live_subscriptions} left live at IB"
        time.sleep(0.02)


def kinds(stream: ibdata.BarStream) -> list[str]:
    return [e.kind for e in stream.events]


# ---------------------------------------------------------------------------- the seam
def test_history_then_live_bars_without_gap_or_duplicate(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client], tmp_path: Path
) -> None:
    sim = live_sim()
    c = clients(sim, cache=tmp_path / "bars.sqlite")
    start = OPEN - 90 * MINUTE
    with c.stream_bars("AAPL", bar_size="1 min", start=start, stall_after=2.0) as stream:
        got = collect(stream, sim_now(sim) + 4 * MINUTE, [])
        assert stream.bars_yielded == len(got)
    assert got[0].time == start  # nothing before start, nothing missing at the start
    assert_equals_history(c, "AAPL", got)
    assert kinds(stream)[:2] == ["backfilled", "subscribed"]
    wait_cancelled(sim)  # closing cancelled at IB
    # The store holds the history part only, every bar of it final: a partial bar is never
    # stored as final (the seam's forming bar came from the subscription, not the store).
    assert c.cache is not None
    stored = c.get_historical_bars("AAPL", bar_size="1 min", start=start, end=got[-1].time)
    assert list(stored) == [b for b in got if b.time < got[-1].time]


def test_without_start_only_bars_that_end_from_now(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    sim = live_sim()
    c = clients(sim)
    opened = sim_now(sim)
    with c.stream_bars("AAPL", bar_size="1 min", stall_after=2.0) as stream:
        got = collect(stream, opened + 3 * MINUTE, [])
    assert got[0].time <= opened < got[0].time + MINUTE  # the bar forming at subscription
    assert_equals_history(c, "AAPL", got)


def test_partial_bars_are_marked_and_each_final_bar_comes_once(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    sim = live_sim()
    c = clients(sim)
    until = sim_now(sim) + 4 * MINUTE
    items: list[Bar] = []
    with c.stream_bars("AAPL", bar_size="1 min", include_partial=True, stall_after=2.0) as s:
        deadline = time.monotonic() + GUARD
        while not [b for b in items if type(b) is Bar and b.time >= until]:
            assert time.monotonic() < deadline
            item = s.next(0.2)
            if item is not None:
                items.append(item)
        assert s.bars_yielded == len([b for b in items if type(b) is Bar])
    finals = [b for b in items if not isinstance(b, PartialBar)]
    partials = [b for b in items if isinstance(b, PartialBar)]
    assert len(partials) > len(finals)  # several updates per bar
    assert len({b.time for b in finals}) == len(finals)
    for final in finals:  # every final bar was seen forming first, then never again
        at = items.index(final)
        assert any(isinstance(p, PartialBar) and p.time == final.time for p in items[:at])
        assert not any(b.time == final.time for b in items[at + 1 :])
    assert_equals_history(c, "AAPL", finals)


def test_on_bar_and_on_event_callbacks(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    sim = live_sim()
    c = clients(sim)
    bars: list[Bar] = []
    events: list[StreamEvent] = []
    until = sim_now(sim) + 3 * MINUTE
    stream = c.stream_bars(
        "AAPL", bar_size="1 min", on_bar=bars.append, on_event=events.append, stall_after=2.0
    )
    try:
        deadline = time.monotonic() + GUARD
        while not bars or bars[-1].time < until:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(TypeError, match="on_bar"):
            stream.next(0)
    finally:
        stream.close()
    assert [e.kind for e in events] == kinds(stream)
    assert events[0].kind == "subscribed"
    assert_equals_history(c, "AAPL", list(bars))


# ---------------------------------------------------------------------------- faults
def _drop(sim: Simulator) -> None:
    sim.drop_all()


def _restart(sim: Simulator) -> None:
    sim.restart(downtime=1.5)


def _outage_data_lost(sim: Simulator) -> None:
    sim.connectivity_lost()
    time.sleep(2.0)
    sim.connectivity_restored(data_lost=True)


def _outage_data_maintained(sim: Simulator) -> None:
    sim.connectivity_lost()
    time.sleep(2.0)
    sim.connectivity_restored(data_lost=False)


def _farm(sim: Simulator) -> None:
    sim.hmds_farm_broken()
    time.sleep(2.0)
    sim.hmds_farm_ok()


def _stall(sim: Simulator) -> None:
    sim.stall_subscriptions(True)
    time.sleep(0.5)
    sim.stall_subscriptions(False)


def _nightly(sim: Simulator) -> None:
    sim.nightly_reset(2.0)
    time.sleep(2.0)


def _nightly_silent(sim: Simulator) -> None:
    sim.nightly_reset(2.0, live_error=False)
    time.sleep(2.0)


FAULTS: dict[str, tuple[Callable[[Simulator], None], set[str]]] = {
    "drop and reconnect": (_drop, {"session_lost", "resubscribed"}),
    "TWS restart": (_restart, {"session_lost", "resubscribed"}),
    "1100 then 1101": (_outage_data_lost, {"connectivity", "resubscribed"}),
    "1100 then 1102": (_outage_data_maintained, {"connectivity", "resubscribed"}),
    "HMDS farm broken then OK": (_farm, {"connectivity", "resubscribed"}),
    "stall": (_stall, {"stalled", "resubscribed"}),
    "nightly reset with 10182": (_nightly, {"connectivity", "resubscribed"}),
    "nightly reset, silent": (_nightly_silent, {"connectivity", "resubscribed"}),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_mid_stream_loses_and_repeats_nothing(
    fault: str, live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    inject, expected = FAULTS[fault]
    sim = live_sim()
    c = clients(sim)
    with c.stream_bars(
        "AAPL", bar_size="1 min", start=OPEN - 5 * MINUTE, stall_after=1.0
    ) as stream:
        got = collect(stream, sim_now(sim) + 2 * MINUTE, [])
        inject(sim)
        collect(stream, sim_now(sim) + 3 * MINUTE, got)
        assert not stream.closed, stream.error
    assert expected <= set(kinds(stream)), kinds(stream)
    assert_equals_history(c, "AAPL", got)
    wait_cancelled(sim)  # cancelled at IB (a dropped session took its own)


def test_a_gap_in_updates_is_backfilled_from_history(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    """An HMDS outage of three bars: the old subscription resumes bars later (and the stream
    subscribes again on 2106); the bars between come from history, and the forming bar's
    stale values are never taken as final."""
    sim = live_sim()
    c = clients(sim)
    with c.stream_bars("AAPL", bar_size="1 min", stall_after=30.0) as stream:
        got = collect(stream, sim_now(sim) + 2 * MINUTE, [])
        sim.hmds_farm_broken()
        wait_sim(sim, sim_now(sim) + 3 * MINUTE)
        sim.hmds_farm_ok()
        collect(stream, sim_now(sim) + 2 * MINUTE, got)
    assert {"connectivity", "resubscribed", "backfilled"} <= set(kinds(stream))
    assert_equals_history(c, "AAPL", got)


# ---------------------------------------------------------------------------- endings
def test_permission_withdrawn_ends_the_stream_with_the_error(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    sim = live_sim()
    c = clients(sim)
    stream = c.stream_bars("AAPL", bar_size="1 min", stall_after=2.0)
    got = collect(stream, sim_now(sim) + 2 * MINUTE, [])
    assert sim.revoke_permission("AAPL") == 1
    with pytest.raises(ibdata.PermissionDeniedError):
        drain(stream, got)
    assert stream.closed
    assert isinstance(stream.error, ibdata.PermissionDeniedError)
    assert kinds(stream)[-1] == "ended"
    with pytest.raises(ibdata.PermissionDeniedError):  # and again: the end is final
        next(stream)
    stream.close()


def test_contract_gone_ends_the_stream(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    sim = live_sim()
    c = clients(sim)
    stream = c.stream_bars("AAPL", bar_size="1 min", stall_after=2.0)
    assert sim.end_subscriptions("AAPL", 200) == 1
    with pytest.raises(ibdata.ContractNotFoundError):
        for _ in stream:
            pass
    stream.close()


def test_first_subscription_errors_raise_from_stream_bars(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    sim = live_sim(no_permission=["MSFT"])
    c = clients(sim)
    with pytest.raises(ibdata.PermissionDeniedError):
        c.stream_bars("MSFT", bar_size="1 min")
    with pytest.raises(ibdata.ContractNotFoundError):
        c.stream_bars("NOSUCH", bar_size="1 min")
    assert sim.live_subscriptions == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bar_size": "1 secs"}, "bar_size must be 5 secs or longer"),
        ({"bar_size": "1 min", "what_to_show": "BID_ASK"}, "what_to_show must be one of"),
        ({"bar_size": "1 min", "start": "2026-11-24", "lookback": 60}, "either start or"),
        ({"bar_size": "1 min", "start": "2026-11-24T10:00"}, "no time zone"),
        ({"bar_size": "1 min", "stall_after": 0}, "stall_after must be"),
        ({"bar_size": "1 min", "on_bar": 3}, "on_bar must be callable"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_sent(
    options: dict[str, object],
    message: str,
    live_sim: Callable[..., Simulator],
    clients: Callable[..., Client],
) -> None:
    sim = live_sim()
    c = clients(sim)
    before = sim.stats.historical_requests
    with pytest.raises((ValueError, TypeError), match=message):
        c.stream_bars("AAPL", **options)  # type: ignore[arg-type]
    assert sim.stats.historical_requests == before


def test_closing_the_client_closes_its_streams(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    sim = live_sim()
    c = clients(sim)
    streams = [c.stream_bars(s, bar_size="1 min", stall_after=2.0) for s in ("AAPL", "MSFT")]
    assert sim.live_subscriptions == 2
    c.close()
    for stream in streams:
        assert stream.closed
        assert stream.error is None
        drain(stream, [])  # ends normally, after whatever bars had come
    assert not [t for t in threading.enumerate() if t.name.startswith("ibdata-stream")]


# ---------------------------------------------------------------------------- many, long
def test_fifty_streams_on_one_client_share_the_pacing_slots(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    catalog = Catalog.default(OPEN.date())
    (aapl,) = [x for x in catalog.contracts if x.symbol == "AAPL"]
    symbols = [f"S{i:02d}" for i in range(50)]
    for i, symbol in enumerate(symbols):
        catalog.add(attrs.evolve(aapl, con_id=9_000_000 + i, symbol=symbol, local_symbol=symbol))
    rules = PacingRules(time_scale=100)
    sim = live_sim(catalog=catalog, pacing=rules)
    c = clients(sim, pacing=rules)
    streams = [c.stream_bars(s, bar_size="1 min", stall_after=5.0) for s in symbols]
    assert sim.live_subscriptions == 50
    until = sim_now(sim) + 3 * MINUTE
    got = {s: collect(stream, until, []) for s, stream in zip(symbols, streams, strict=True)}
    for stream in streams:
        stream.close()
    wait_cancelled(sim)
    for symbol in symbols:
        assert_equals_history(c, symbol, got[symbol])


def test_a_simulated_week_with_nightly_resets(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    """EUR.USD midpoint, 1-hour bars, Monday to Saturday at 10 simulated hours a second, IB's
    nightly reset every day at 05:00 UTC (the socket stays open)."""
    monday = dt.datetime(2026, 11, 16, tzinfo=UTC)
    sim = live_sim(at=monday, speed=36_000.0, update_interval=0.02)
    c = clients(sim)
    options = {
        "bar_size": "1 hour",
        "what_to_show": "MIDPOINT",
        "sec_type": "CASH",
        "exchange": "IDEALPRO",
    }
    resets = 0
    with c.stream_bars(
        "EUR",
        start=monday - dt.timedelta(days=1),
        stall_after=0.5,
        **options,  # type: ignore[arg-type]
    ) as stream:
        got: list[Bar] = []
        for day in range(6):
            reset_at = monday + dt.timedelta(days=day, hours=5)
            collect(stream, reset_at - dt.timedelta(hours=2), got)
            wait_sim(sim, reset_at)
            sim.nightly_reset(0.05, live_error=day % 2 == 0)
            resets += 1
        collect(stream, monday + dt.timedelta(days=5, hours=20), got)
    assert resets == 6
    assert kinds(stream).count("connectivity") >= 6
    assert_equals_history(c, "EUR", got, **options)


def test_each_subscription_holds_an_open_request_lease_in_the_shared_ledger(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client], tmp_path: Path
) -> None:
    """Other processes on the login see a live stream as one of IB's 50 open requests."""
    sim = live_sim()
    store = tmp_path / "shared.sqlite"
    c = clients(sim, cache=store, pacing=PacingRules(time_scale=100))
    assert c.cache is not None
    streams = [c.stream_bars(s, bar_size="1 min", stall_after=5.0) for s in ("AAPL", "MSFT")]
    other = ibdata.BarCache(store)  # another process's view of the same store
    try:
        assert other.info().leases == 2
        streams[0].close()
        assert other.info().leases == 1
        streams[1].close()
        assert other.info().leases == 0
    finally:
        other.close()


def test_the_last_bar_of_a_session_comes_without_waiting_for_the_next_session(
    live_sim: Callable[..., Simulator], clients: Callable[..., Client]
) -> None:
    """AAPL's extended session ends at 20:00 New York (01:00 UTC): nothing follows its last
    bar for eight hours; the stall check's fresh answer delivers it, complete."""
    close = dt.datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    sim = live_sim(at=close - 4 * MINUTE)
    c = clients(sim)
    with c.stream_bars("AAPL", bar_size="1 min", stall_after=1.0) as stream:
        got = collect(stream, close - MINUTE, [])
        assert "stalled" in kinds(stream)
    assert got[-1].time == close - MINUTE
    assert_equals_history(c, "AAPL", got)
