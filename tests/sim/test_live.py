"""keepUpToDate subscriptions over raw sockets: updates consistent with history, updates at
bar ends on clocks that run, and every fault's effect on the wire and on the subscriptions."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import pytest

from ibdata.sim import FixedClock, ScaledClock, Simulator
from tests.conftest import CLOCK_AT
from tests.sim.raw import Frame, RawClient, bars_request

UTC = dt.timezone.utc
MINUTE = 60

#: The last minute of AAPL's trading session on CLOCK_AT's day: 19:59 New York time.
CLOSE = dt.datetime(2025, 3, 13, 0, 0, tzinfo=UTC)


def _subscribe(
    c: RawClient, req_id: int, symbol: str = "AAPL", *, bar_size: str = "1 min", **fields: object
) -> list[Frame]:
    """Start a keepUpToDate subscription (dates as epoch seconds); returns its bars."""
    c.send(
        *bars_request(
            req_id,
            symbol,
            bar_size=bar_size,
            duration=str(fields.pop("duration", "600 S")),
            keep_up_to_date=True,
            format_date=2,
            **fields,  # type: ignore[arg-type]
        )
    )
    return _bars(c.read_until(lambda f: f[:2] == ["17", str(req_id)])[-1])


def _history(c: RawClient, req_id: int, bar_size: str, duration: str = "1800 S") -> list[Frame]:
    """The bars a plain request ending now returns (dates as epoch seconds)."""
    c.send(*bars_request(req_id, bar_size=bar_size, duration=duration, format_date=2))
    return _bars(c.read_until(lambda f: f[:2] == ["17", str(req_id)])[-1])


def _bars(frame: Frame) -> list[Frame]:
    """The bars of historicalData below server version 196: eight fields each."""
    body = frame[5:]
    return [body[i : i + 8] for i in range(0, len(body), 8)]


def _as_bar(update: Frame) -> Frame:
    """An update's fields in historicalData's order: date, O, H, L, C, volume, WAP, count."""
    _, _, count, date, o, close, h, low, wap, volume = update
    return [date, o, h, low, close, volume, wap, count]


def _collect(
    c: RawClient, done: Callable[[list[Frame]], bool], timeout: float = 5.0
) -> list[Frame]:
    """Read frames until ``done(frames)``; fail after ``timeout`` seconds."""
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout
    while not done(frames):
        left = deadline - time.monotonic()
        assert left > 0, f"gave up waiting; got {frames[-5:]}"
        try:
            frames.append(c.read(min(left, 0.1)))
        except TimeoutError:
            continue
    return frames


def _cancel_then_sync(c: RawClient, *req_ids: int) -> list[Frame]:
    """Cancel the requests, then ask the time: every answer to the cancels comes before the
    time's (requests are answered in order). Returns the frames up to the time's."""
    for req_id in req_ids:
        c.send(25, 1, req_id)
    c.send(49, 1)
    return _collect(c, lambda fs: bool(fs) and fs[-1][0] == "49")


def _after(frames: list[Frame], code: str) -> list[Frame]:
    """The frames after the error frame with ``code``."""
    at = next(i for i, f in enumerate(frames) if f[0] == "4" and f[3] == code)
    return frames[at + 1 :]


def _updates(frames: list[Frame], req_id: int) -> list[Frame]:
    return [f for f in frames if f[:2] == ["90", str(req_id)]]


def _errors(frames: list[Frame]) -> list[tuple[str, str, str]]:
    """(request id, code, text) of the error frames (layout below server version 194)."""
    return [(f[2], f[3], f[4]) for f in frames if f[0] == "4"]


def _last_by_date(updates: list[Frame]) -> dict[str, Frame]:
    last: dict[str, Frame] = {}
    for u in updates:
        last[u[3]] = _as_bar(u)
    return last


def _wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition still false"
        time.sleep(0.01)


def _scaled(
    sim_factory: Callable[..., Simulator], start: dt.datetime, speed: float, **options: object
) -> Simulator:
    options.setdefault("pacing", None)
    return sim_factory(clock=ScaledClock(start, speed), **options)


def _sim_time(sim: Simulator) -> int:
    return int(sim.clock.now().timestamp())


# ---------------------------------------------------------------------------- content


@pytest.mark.parametrize(
    ("bar_size", "step", "speed"), [("1 min", MINUTE, 480.0), ("5 secs", 5, 40.0)]
)
def test_the_last_update_of_each_bar_is_the_history_bar(
    sim_factory: Callable[..., Simulator], bar_size: str, step: int, speed: float
) -> None:
    """On a scaled clock each bar's last update is the complete bar, field for field as a
    later request returns it, and is followed by the next bar in progress."""
    sim = _scaled(
        sim_factory, CLOCK_AT + dt.timedelta(seconds=step / 3), speed, update_interval=0.05
    )
    with RawClient(sim.port) as c:
        c.connect_api(1)
        _subscribe(c, 1, bar_size=bar_size)
        frames = _collect(c, lambda fs: len({u[3] for u in _updates(fs, 1)}) >= 5)
        history = {b[0]: b for b in _history(c, 2, bar_size)}
    updates = _updates(frames, 1)
    dates = sorted({u[3] for u in updates}, key=int)
    assert dates == [str(int(dates[0]) + k * step) for k in range(len(dates))], "no bar skipped"
    last = _last_by_date(updates)
    for date in dates[:-1]:  # each ended during the test
        assert last[date] == history[date]
    ends = [i for i, u in enumerate(updates) if _as_bar(u) == history.get(u[3])]
    assert all(
        updates[i + 1][3] == str(int(updates[i][3]) + step) for i in ends if i + 1 < len(updates)
    )


def test_updates_carry_the_bar_count_and_quotes_carry_minus_one(
    sim_factory: Callable[..., Simulator],
) -> None:
    """TRADES updates carry the bar's trade count; MIDPOINT ones -1 volume, WAP and count,
    as their history does."""
    sim = sim_factory(update_interval=0.05, pacing=None)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        trades = _subscribe(c, 1)
        quotes = _subscribe(c, 2, "EUR", what="MIDPOINT", sec_type="CASH", exchange="IDEALPRO")
        frames = _collect(c, lambda fs: bool(_updates(fs, 1) and _updates(fs, 2)))
    assert _as_bar(_updates(frames, 1)[0]) == trades[-1]
    assert int(trades[-1][7]) > 0
    assert _as_bar(_updates(frames, 2)[0]) == quotes[-1]
    assert quotes[-1][5:] == ["-1", "-1", "-1"]


@pytest.mark.parametrize(
    ("bar_size", "start", "speed", "duration"),
    [
        ("1 min", CLOSE - dt.timedelta(seconds=100), 480.0, "600 S"),
        ("1 day", CLOSE - dt.timedelta(seconds=10), 40.0, "3 D"),
    ],
)
def test_a_bar_ending_at_the_close_gets_its_update_then_nothing(
    sim_factory: Callable[..., Simulator],
    bar_size: str,
    start: dt.datetime,
    speed: float,
    duration: str,
) -> None:
    """The bar that ends at the session's close is sent complete, then no update comes while
    the market is closed."""
    sim = _scaled(sim_factory, start, speed, update_interval=0.05)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        _subscribe(c, 1, bar_size=bar_size, duration=duration)
        frames = _collect(c, lambda fs: sim.clock.now() > CLOSE + dt.timedelta(seconds=8))
        c.send(*bars_request(2, bar_size=bar_size, duration=duration, format_date=2))
        answer = c.read_until(lambda f: f[:2] == ["17", "2"])
        history = _bars(answer[-1])
    updates = _updates(frames + answer, 1)
    assert updates, "updates before the close"
    assert _as_bar(updates[-1]) == history[-1], "the last update is the session's last bar"
    before = [u for u in updates if u[3] != history[-1][0]]
    assert not before or _as_bar(before[-1]) == history[-2]


def test_a_fixed_clock_sends_only_the_bar_in_progress(
    sim_factory: Callable[..., Simulator],
) -> None:
    """With a fixed clock nothing is sent at a bar's end: moved past it, the next update is
    the new bar in progress, never the bar that ended."""
    clock = FixedClock(CLOCK_AT + dt.timedelta(seconds=30))
    sim = sim_factory(clock=clock, update_interval=0.05)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        _subscribe(c, 1)
        first = _collect(c, lambda fs: bool(_updates(fs, 1)))
        clock.advance(MINUTE)
        later = _collect(
            c, lambda fs: any(u[3] != _updates(first, 1)[0][3] for u in _updates(fs, 1))
        )
    assert _updates(first, 1)[0][3] == str(int(CLOCK_AT.timestamp()))
    dates = {u[3] for u in _updates(later, 1)}
    assert dates <= {str(int(CLOCK_AT.timestamp()) + d) for d in (0, MINUTE)}
    new = [u for u in _updates(later, 1) if u[3] != _updates(first, 1)[0][3]]
    assert new[0][3] == str(int(CLOCK_AT.timestamp()) + MINUTE)


def test_fifty_subscriptions_on_one_session_get_their_bar_ends(
    sim_factory: Callable[..., Simulator],
) -> None:
    """Fifty subscriptions on one connection each get every bar's complete update."""
    sim = _scaled(sim_factory, CLOCK_AT + dt.timedelta(seconds=20), 600.0)
    ids = range(1, 51)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        for i in ids:
            c.send(
                *bars_request(
                    i, bar_size="1 min", duration="300 S", keep_up_to_date=True, format_date=2
                )
            )
        ends = {str(int(CLOCK_AT.timestamp()) + d) for d in (MINUTE, 2 * MINUTE)}

        def done(fs: list[Frame]) -> bool:
            return all(ends <= {u[3] for u in _updates(fs, i)} for i in ids)

        frames = _collect(c, done, timeout=10)
        history = {b[0]: b for b in _history(c, 99, "1 min", "600 S")}
        assert sim.live_subscriptions == 50
    complete = str(int(CLOCK_AT.timestamp()) + MINUTE)
    for i in ids:
        assert _last_by_date(_updates(frames, i))[complete] == history[complete]
    assert sim.stats.live_updates_sent >= 100


# ---------------------------------------------------------------------------- pauses


def test_connectivity_loss_pauses_and_1102_resumes_with_the_bar_in_progress(
    sim_factory: Callable[..., Simulator],
) -> None:
    """After 1100 no update comes; after 1102 updates resume with the bar in progress, and
    the bars that ended meanwhile are never sent."""
    sim = _scaled(sim_factory, CLOCK_AT + dt.timedelta(seconds=10), 480.0, update_interval=0.05)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        _subscribe(c, 1)
        _collect(c, lambda fs: bool(_updates(fs, 1)))
        sim.connectivity_lost()
        lost_at = _sim_time(sim)
        paused = _collect(c, lambda fs: _sim_time(sim) > lost_at + 2 * MINUTE)
        restored_at = _sim_time(sim)
        sim.connectivity_restored()
        after = _collect(c, lambda fs: len({u[3] for u in _updates(fs, 1)}) >= 2)
        assert sim.live_subscriptions == 1
    assert [e[1] for e in _errors(paused)] == ["1100", "2103", "2105", "2157"]
    assert not _updates(_after(paused, "1100"), 1), "no update after 1100"
    assert [e[1] for e in _errors(after)][-1] == "1102"
    bar_at_restore = restored_at - restored_at % MINUTE
    assert all(int(u[3]) >= bar_at_restore for u in _updates(after, 1))


def test_1101_drops_subscriptions_and_their_cancel_is_silent(
    sim_factory: Callable[..., Simulator],
) -> None:
    """After 1101 "data lost" a subscription sends nothing more and its cancel gets no
    answer; an unknown id still gets 366."""
    sim = sim_factory(update_interval=0.05)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        _subscribe(c, 1)
        _collect(c, lambda fs: bool(_updates(fs, 1)))
        sim.outage(0.1, data_lost=True)
        frames = _collect(c, lambda fs: "1101" in [e[1] for e in _errors(fs)])
        assert sim.live_subscriptions == 0
        assert sim.stats.open_historical == 0
        rest = _cancel_then_sync(c, 1, 7)
    assert not _updates(_after(frames, "1100"), 1)
    assert not _updates(rest, 1)
    assert _errors(rest) == [("7", "366", "No historical data query found for ticker id:7")]


def test_hmds_farm_broken_pauses_the_farms_subscriptions(
    sim_factory: Callable[..., Simulator],
) -> None:
    """2105 ushmds pauses US subscriptions (not FX ones, served by cashhmds); 2106 resumes
    them."""
    sim = sim_factory(update_interval=0.05, pacing=None)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        _subscribe(c, 1)
        _subscribe(c, 2, "EUR", what="MIDPOINT", sec_type="CASH", exchange="IDEALPRO")
        sim.hmds_farm_broken()
        broken = _collect(c, lambda fs: bool(_errors(fs)))
        paused = _collect(c, lambda fs: len(_updates(fs, 2)) >= 5)
        sim.hmds_farm_ok()
        resumed = _collect(c, lambda fs: bool(_updates(fs, 1)))
        assert sim.live_subscriptions == 2
    assert _errors(broken) == [("-1", "2105", "HMDS data farm connection is broken:ushmds")]
    assert not _updates(paused, 1), "AAPL is paused, EUR.USD is not"
    assert _errors(resumed)[0] == ("-1", "2106", "HMDS data farm connection is OK:ushmds")
    assert _updates(resumed, 1)[0][3] == str(int(CLOCK_AT.timestamp()) - MINUTE)


def test_stalled_subscriptions_stay_silent_and_later_ones_work(
    sim_factory: Callable[..., Simulator],
) -> None:
    """stall_subscriptions silences live subscriptions for good, with no notice; one made
    after stall_subscriptions(False) updates normally; cancelling a stalled one is silent."""
    sim = sim_factory(update_interval=0.05, pacing=None)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        _subscribe(c, 1)
        _collect(c, lambda fs: bool(_updates(fs, 1)))
        sim.stall_subscriptions()
        _subscribe(c, 2)  # made while stalling: answered, then silent too
        sim.stall_subscriptions(False)
        _subscribe(c, 3)
        frames = _collect(c, lambda fs: len(_updates(fs, 3)) >= 3)
        assert sim.live_subscriptions == 3
        frames += _cancel_then_sync(c, 1, 2)
        assert sim.live_subscriptions == 1
        frames += _cancel_then_sync(c, 3)
        assert sim.live_subscriptions == 0
    assert not _updates(frames, 1)
    assert not _updates(frames, 2)
    assert not _errors(frames)


# ---------------------------------------------------------------------------- drops


@pytest.mark.parametrize("live_error", [True, False])
def test_nightly_reset(sim_factory: Callable[..., Simulator], live_error: bool) -> None:
    """The nightly reset: 1100, 2103, 2105, 10182 per subscription (if asked), requests
    held, then 2104, 2106 and 1102, and no subscription lives on."""
    sim = sim_factory(update_interval=0.05)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        _subscribe(c, 1)
        _subscribe(c, 2, "MSFT")
        sim.nightly_reset(0.1, live_error=live_error)
        assert sim.live_subscriptions == 0
        c.send(*bars_request(3, format_date=2))  # held until the end of the reset
        frames = _collect(c, lambda fs: any(f[:2] == ["17", "3"] for f in fs))
        assert not _errors(_cancel_then_sync(c, 1)), "a dropped subscription's cancel"
    errors = _errors(frames)
    start = [e for e in errors if e[1] in ("1100", "2103", "2105")]
    assert start == [
        ("-1", "1100", "Connectivity between IB and Trader Workstation has been lost."),
        ("-1", "2103", "Market data farm connection is broken:usfarm"),
        ("-1", "2105", "HMDS data farm connection is broken:ushmds"),
    ]
    lost = [e for e in errors if e[1] == "10182"]
    text = "Failed to request live updates (disconnected)."
    assert lost == ([("1", "10182", text), ("2", "10182", text)] if live_error else [])
    end = [e[1] for e in errors if e[1] in ("2104", "2106", "1102")]
    assert end == ["2104", "2106", "1102"]
    codes = [f[3] if f[0] == "4" else f[0] for f in frames]
    assert codes.index("1102") < codes.index("17"), "the held answer comes after 1102"
    assert not _updates(_after(frames, "1100"), 1)


def test_end_subscriptions_by_symbol_or_con_id(sim_factory: Callable[..., Simulator]) -> None:
    """end_subscriptions sends the error to the instrument's subscriptions only, drops
    them, and returns their number; their cancel is silent."""
    sim = sim_factory(update_interval=0.05, pacing=None)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        _subscribe(c, 1)
        _subscribe(c, 2, "MSFT")
        _subscribe(c, 3)
        assert sim.end_subscriptions("aapl", 200) == 2
        assert sim.end_subscriptions(272093, 10197, "competing session") == 1  # MSFT
        assert sim.end_subscriptions("AAPL", 200) == 0
        frames = _collect(c, lambda fs: len(_errors(fs)) >= 3)
        assert not _errors(_cancel_then_sync(c, 1, 2))
        assert sim.live_subscriptions == 0
        assert sim.stats.open_historical == 0
    text = "No security definition has been found for the request"
    assert sorted(_errors(frames)) == [
        ("1", "200", text),
        ("2", "10197", "competing session"),
        ("3", "200", text),
    ]


def test_revoked_permission_ends_and_refuses_subscriptions(
    sim_factory: Callable[..., Simulator],
) -> None:
    """revoke_permission ends the instrument's subscriptions with 162 and refuses new
    requests for it with the same error."""
    sim = sim_factory(update_interval=0.05, pacing=None)
    text = "Historical Market Data Service error message:No market data permissions for NASDAQ STK"
    with RawClient(sim.port) as c:
        c.connect_api(1)
        _subscribe(c, 1)
        _subscribe(c, 2, "MSFT")
        assert sim.revoke_permission("AAPL") == 1
        ended = _collect(c, lambda fs: bool(_errors(fs)))
        c.send(*bars_request(3, keep_up_to_date=True))
        refused = _collect(c, lambda fs: bool(_errors(fs)))
        assert sim.live_subscriptions == 1
    assert _errors(ended) == [("1", "162", text)]
    assert _errors(refused) == [("3", "162", text)]


def test_fault_arguments_are_checked(sim: Simulator) -> None:
    """Bad arguments raise before anything is sent."""
    with pytest.raises(ValueError, match="downtime"):
        sim.nightly_reset(-1)
    with pytest.raises(ValueError, match="farm"):
        sim.hmds_farm_broken("")
    with pytest.raises(ValueError, match="instrument"):
        sim.end_subscriptions(" ", 200)
    with pytest.raises(TypeError, match="instrument"):
        sim.revoke_permission(1.5)  # type: ignore[arg-type]


def test_dropped_sessions_leave_no_subscription_or_timer(
    sim_factory: Callable[..., Simulator],
) -> None:
    """drop_all and restart remove the sessions' subscriptions and their timers; stop
    leaves no timer either."""
    sim = _scaled(sim_factory, CLOCK_AT, 60.0, update_interval=0.05)
    with RawClient(sim.port) as c:
        c.connect_api(1)
        for i in range(1, 4):
            _subscribe(c, i)
        assert sim.live_subscriptions == 3
        sim.drop_all()
        assert sim.live_subscriptions == 0  # before the client saw anything
        assert sim._scheduler.pending == 0
        assert c.closed_by_server()
    with RawClient(sim.port) as c:
        c.connect_api(2)
        _subscribe(c, 1)
        sim.restart()
        assert sim.live_subscriptions == 0
        assert sim._scheduler.pending == 0
        assert c.closed_by_server()
    with RawClient(sim.port) as c:
        c.connect_api(3)
        _subscribe(c, 1)
        sim.stop()
        assert sim.live_subscriptions == 0
        assert sim._scheduler.pending == 0
