"""Tests for ibdata.pacing: IB's historical-data pacing rules and the tracker applying them."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibdata.pacing import BAR_SIZE_SECONDS, PacedRequest, PacingRules, PacingTracker

SMALL_BARS = ["1 secs", "5 secs", "10 secs", "15 secs", "30 secs"]
LARGE_BARS = [
    "1 min",
    "2 mins",
    "3 mins",
    "5 mins",
    "10 mins",
    "15 mins",
    "20 mins",
    "30 mins",
    "1 hour",
    "2 hours",
    "3 hours",
    "4 hours",
    "8 hours",
    "1 day",
    "1 week",
    "1W",
    "1 month",
    "1M",
]


def bars(
    contract: str = "ES",
    *,
    what_to_show: str = "TRADES",
    bar_size: str = "5 secs",
    end: str = "20240102 16:00:00",
    exchange: str = "CME",
) -> PacedRequest:
    """A bar request whose identity is its end date and a fixed duration."""
    return PacedRequest(
        contract=contract,
        exchange=exchange,
        what_to_show=what_to_show,
        bar_size=bar_size,
        identity=(end, "1800 S", "1"),
    )


def head(contract: str = "ES", *, what_to_show: str = "TRADES") -> PacedRequest:
    """A head-timestamp request."""
    return PacedRequest(
        contract=contract, exchange="CME", what_to_show=what_to_show, head_timestamp=True
    )


# -- rules ------------------------------------------------------------------------------


def test_defaults_are_ibs_published_rules() -> None:
    """The default rules are IB's: 15 s, 5 per 2 s, 60 per 10 min, 50 open, BID_ASK twice."""
    r = PacingRules()
    assert (r.identical_window, r.burst_window, r.burst_max) == (15.0, 2.0, 5)
    assert (r.window, r.window_max, r.max_open, r.bid_ask_weight) == (600.0, 60, 50, 2)
    assert (r.small_bar_seconds, r.soft_window, r.soft_max, r.time_scale) == (30, None, None, 1.0)


@pytest.mark.parametrize("bar_size", SMALL_BARS)
def test_small_bar_sizes_are_small(bar_size: str) -> None:
    """Bars of 30 seconds or less fall under the small-bar rules."""
    assert PacingRules().is_small(bar_size)


@pytest.mark.parametrize("bar_size", LARGE_BARS)
def test_large_bar_sizes_are_not_small(bar_size: str) -> None:
    """Bars of one minute and more are not small."""
    assert not PacingRules().is_small(bar_size)


def test_bar_size_table_lists_every_legal_size() -> None:
    """The bar-size table holds exactly IB's legal sizes and is read-only."""
    assert set(BAR_SIZE_SECONDS) == set(SMALL_BARS) | set(LARGE_BARS)
    with pytest.raises(TypeError):
        BAR_SIZE_SECONDS["2 secs"] = 2  # type: ignore[index]


def test_small_bar_seconds_moves_the_boundary() -> None:
    """Raising small_bar_seconds to 60 makes one-minute bars small."""
    assert PacingRules(small_bar_seconds=60).is_small("1 min")
    assert not PacingRules(small_bar_seconds=60).is_small("2 mins")


@pytest.mark.parametrize("bar_size", ["1 sec", "2 secs", "1 year", "3 months", "", "1 MIN"])
def test_unknown_bar_size_raises_naming_bar_size(bar_size: str) -> None:
    """An unknown bar size is a ValueError naming bar_size, from the rules and the request."""
    with pytest.raises(ValueError, match="bar_size"):
        PacingRules().is_small(bar_size)
    with pytest.raises(ValueError, match="bar_size"):
        bars(bar_size=bar_size)


def test_head_timestamp_with_bar_size_raises() -> None:
    """A head-timestamp request must not carry a bar size."""
    with pytest.raises(ValueError, match="bar_size"):
        PacedRequest(
            contract="ES", exchange="CME", what_to_show="TRADES", bar_size="1 secs",
            head_timestamp=True,
        )  # fmt: skip


def test_weight_counts_bid_ask_twice() -> None:
    """BID_ASK weighs bid_ask_weight and everything else weighs one."""
    assert PacingRules().weight("BID_ASK") == 2
    assert PacingRules().weight("TRADES") == 1
    assert PacingRules(bid_ask_weight=1).weight("BID_ASK") == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"identical_window": 0}, "identical_window"),
        ({"identical_window": -1.0}, "identical_window"),
        ({"burst_window": math.nan}, "burst_window"),
        ({"window": math.inf}, "window"),
        ({"time_scale": 0.0}, "time_scale"),
        ({"burst_max": 0}, "burst_max"),
        ({"window_max": -5}, "window_max"),
        ({"max_open": 0}, "max_open"),
        ({"bid_ask_weight": 0}, "bid_ask_weight"),
        ({"small_bar_seconds": 0}, "small_bar_seconds"),
        ({"soft_window": 10.0}, "soft_window"),
        ({"soft_max": 3}, "soft_max"),
        ({"soft_window": -1.0, "soft_max": 3}, "soft_window"),
        ({"soft_window": 1.0, "soft_max": 0}, "soft_max"),
        ({"bid_ask_weight": 6}, "bid_ask_weight"),
        ({"burst_max": 1}, "bid_ask_weight"),
    ],
)
def test_bad_rules_raise_value_error_naming_field(kwargs: dict[str, Any], field: str) -> None:
    """A window, count or soft limit out of range is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        PacingRules(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"burst_max": 1.5}, "burst_max"),
        ({"max_open": True}, "max_open"),
        ({"window": "600"}, "window"),
        ({"time_scale": False}, "time_scale"),
    ],
)
def test_wrong_types_raise_type_error_naming_field(kwargs: dict[str, Any], field: str) -> None:
    """A field of the wrong type is a TypeError naming the field."""
    with pytest.raises(TypeError, match=field):
        PacingRules(**kwargs)


def test_scaled_divides_every_window() -> None:
    """scaled() keeps the rules and divides every effective window by the new scale."""
    r = PacingRules(soft_window=30.0, soft_max=10).scaled(100)
    assert r.time_scale == 100
    assert r.window == 600.0
    assert r.effective_window == 6.0
    assert r.effective_identical_window == pytest.approx(0.15)
    assert r.effective_burst_window == pytest.approx(0.02)
    assert r.effective_soft_window == pytest.approx(0.3)
    assert PacingRules().effective_soft_window is None
    with pytest.raises(ValueError, match="time_scale"):
        PacingRules().scaled(0)


# -- rule 1: identical requests ---------------------------------------------------------


def test_identical_request_refused_within_15_s_and_allowed_at_15_s() -> None:
    """An identical request is refused until exactly 15 s have passed, then allowed."""
    tracker = PacingTracker()
    assert tracker.acquire(bars(), 100.0) is None
    reason = tracker.check(bars(), 114.999)
    assert reason is not None
    assert "identical" in reason
    assert "15 s" in reason
    assert tracker.delay(bars(), 110.0) == 5.0
    assert tracker.check(bars(), 115.0) is None


def test_requests_differing_in_identity_are_not_identical() -> None:
    """Requests that differ in any identity field are not identical."""
    tracker = PacingTracker()
    tracker.record(bars(end="20240102 16:00:00"), 0.0)
    assert tracker.check(bars(end="20240103 16:00:00"), 0.0) is None
    assert tracker.check(bars(bar_size="1 secs"), 0.0) is None
    assert tracker.check(bars(what_to_show="MIDPOINT"), 0.0) is None


# -- rule 2: bursts on one contract -----------------------------------------------------


def test_sixth_request_for_same_contract_within_2_s_refused() -> None:
    """Five requests on one contract, exchange and tick type pass within 2 s; the sixth fails."""
    tracker = PacingTracker()
    for i in range(5):
        assert tracker.acquire(bars(end=f"day {i}"), i * 0.1) is None
    reason = tracker.acquire(bars(end="day 5"), 0.5)
    assert reason is not None
    assert "more than 5 requests for the same contract" in reason
    assert tracker.check(bars(end="day 5"), 1.999) is not None
    assert tracker.check(bars(end="day 5"), 2.0) is None
    assert tracker.delay(bars(end="day 5"), 0.5) == 1.5


def test_burst_is_per_contract_exchange_and_tick_type() -> None:
    """Another contract, exchange or tick type does not share the burst."""
    tracker = PacingTracker()
    for i in range(5):
        tracker.record(bars(end=f"day {i}"), 0.0)
    assert tracker.check(bars("NQ", end="x"), 0.0) is None
    assert tracker.check(bars(exchange="GLOBEX", end="x"), 0.0) is None
    assert tracker.check(bars(what_to_show="MIDPOINT", end="x"), 0.0) is None
    assert tracker.check(bars(end="x"), 0.0) is not None


# -- rule 3: sixty per ten minutes ------------------------------------------------------


def test_61st_request_in_10_minutes_refused() -> None:
    """Sixty requests pass within ten minutes; the 61st is refused until the first ages out."""
    tracker = PacingTracker()
    for i in range(60):
        assert tracker.acquire(bars(f"C{i}"), float(i)) is None
    reason = tracker.check(bars("C60"), 60.0)
    assert reason is not None
    assert "more than 60 requests within 600 s" in reason
    assert tracker.check(bars("C60"), 599.999) is not None
    assert tracker.check(bars("C60"), 600.0) is None
    assert tracker.delay(bars("C60"), 60.0) == 540.0


# -- BID_ASK, head timestamps, large bars -----------------------------------------------


def test_bid_ask_counts_twice_in_a_burst() -> None:
    """Two BID_ASK requests weigh four, so a third (six) breaks the burst limit of five."""
    tracker = PacingTracker()
    assert tracker.acquire(bars(what_to_show="BID_ASK", end="a"), 0.0) is None
    assert tracker.acquire(bars(what_to_show="BID_ASK", end="b"), 0.0) is None
    assert tracker.check(bars(what_to_show="BID_ASK", end="c"), 0.0) is not None
    assert PacingTracker(PacingRules(bid_ask_weight=1)).check(bars(), 0.0) is None


def test_bid_ask_counts_twice_in_ten_minutes() -> None:
    """Thirty BID_ASK requests fill the sixty-request window."""
    tracker = PacingTracker()
    for i in range(29):
        assert tracker.acquire(bars(f"C{i}", what_to_show="BID_ASK"), float(i)) is None
    # 58 used: one TRADES fits, then a BID_ASK (two) does not.
    assert tracker.check(bars("X", what_to_show="BID_ASK"), 29.0) is None
    assert tracker.acquire(bars("X"), 29.0) is None
    reason = tracker.check(bars("Y", what_to_show="BID_ASK"), 30.0)
    assert reason is not None
    assert "more than 60" in reason
    assert tracker.check(bars("Y"), 30.0) is None


def test_delay_counts_the_weight_that_ages_out() -> None:
    """A BID_ASK request waits only until one earlier BID_ASK (two slots) leaves the window."""
    tracker = PacingTracker(PacingRules(window_max=4))
    tracker.record(bars("A", what_to_show="BID_ASK"), 0.0)
    tracker.record(bars("B", what_to_show="BID_ASK"), 1.0)
    assert tracker.delay(bars("C", what_to_show="BID_ASK"), 2.0) == 598.0
    tracker.record(bars("D"), 2.0)
    assert tracker.delay(bars("C", what_to_show="BID_ASK"), 2.0) == 599.0


def test_head_timestamps_count_like_small_bars() -> None:
    """Head timestamps share bursts and the ten-minute window with bar requests."""
    tracker = PacingTracker()
    assert tracker.acquire(head(), 0.0) is None
    for i in range(4):
        assert tracker.acquire(bars(end=f"day {i}"), 0.0) is None
    assert tracker.check(bars(end="other"), 0.0) is not None
    assert tracker.check(head("NQ"), 0.0) is None

    rules = PacingRules(window_max=3)
    tracker = PacingTracker(rules)
    for c in ("A", "B", "C"):
        assert tracker.acquire(head(c), 0.0) is None
    assert tracker.check(bars("D"), 3.0) is not None


def test_head_timestamps_are_identical_only_to_head_timestamps() -> None:
    """An identical head timestamp within 15 s is refused; a bar request never matches one."""
    tracker = PacingTracker()
    tracker.record(head(), 0.0)
    reason = tracker.check(head(), 14.0)
    assert reason is not None
    assert "identical" in reason
    assert tracker.check(head(), 15.0) is None
    plain = PacedRequest(contract="ES", exchange="CME", what_to_show="TRADES", bar_size="1 secs")
    assert tracker.check(plain, 1.0) is None


def test_large_bars_are_unlimited_by_default() -> None:
    """Bars of a minute and more break no rule and leave no history without a soft limit."""
    tracker = PacingTracker()
    for _ in range(500):
        assert tracker.acquire(bars(bar_size="1 min"), 0.0) is None
        assert tracker.acquire(bars(bar_size="1 day", what_to_show="BID_ASK"), 0.0) is None
    assert tracker.history_size == 0
    assert tracker.delay(bars(bar_size="1 hour"), 0.0) == 0.0
    assert tracker.check(bars(), 0.0) is None


def test_large_bars_obey_the_soft_limit_when_configured() -> None:
    """With soft_max=3 per 10 s the fourth large-bar request waits until the first ages out."""
    tracker = PacingTracker(PacingRules(soft_window=10.0, soft_max=3))
    for i in range(3):
        assert tracker.acquire(bars(bar_size="1 min"), float(i)) is None
    reason = tracker.acquire(bars(bar_size="1 day"), 3.0)
    assert reason is not None
    assert "soft limit" in reason
    assert tracker.delay(bars(bar_size="1 day"), 3.0) == 7.0
    assert tracker.check(bars(bar_size="1 day"), 10.0) is None
    assert tracker.check(bars(), 3.0) is None


# -- open requests ----------------------------------------------------------------------


def test_at_most_50_requests_open() -> None:
    """Fifty requests may be open; the 51st is refused until one closes."""
    tracker = PacingTracker()
    assert all(tracker.open(i) for i in range(50))
    assert tracker.open_count == 50
    assert not tracker.open(50)
    assert tracker.open_count == 50
    tracker.close(7)
    assert tracker.open(50)
    assert tracker.open_count == 50


def test_close_is_idempotent_and_reopen_raises() -> None:
    """Closing twice or closing an unknown key is harmless; opening an open key raises."""
    tracker = PacingTracker(PacingRules(max_open=2))
    assert tracker.open("a")
    with pytest.raises(ValueError, match="key"):
        tracker.open("a")
    tracker.close("a")
    tracker.close("a")
    tracker.close("never")
    assert tracker.open_count == 0


# -- time scale -------------------------------------------------------------------------


def test_time_scale_100_makes_ten_minutes_six_seconds() -> None:
    """At time_scale 100 the ten-minute window lasts 6 s and the identical window 0.15 s."""
    tracker = PacingTracker(PacingRules().scaled(100))
    for i in range(60):
        assert tracker.acquire(bars(f"C{i}"), i * 0.01) is None
    assert tracker.check(bars("X"), 5.999) is not None
    assert tracker.check(bars("X"), 6.0) is None
    assert tracker.delay(bars("X"), 1.0) == 5.0

    tracker = PacingTracker(PacingRules(time_scale=100))
    tracker.record(bars(), 10.0)
    assert tracker.check(bars(), 10.1) is not None
    assert tracker.check(bars(), 10.15) is None
    assert tracker.check(bars(), 10.0 + tracker.delay(bars(), 10.0)) is None


# -- tracker housekeeping ---------------------------------------------------------------


def test_memory_stays_bounded() -> None:
    """History older than the longest window is dropped, even for requests recorded over limits."""
    tracker = PacingTracker(PacingRules(soft_window=5.0, soft_max=1))
    for i in range(20_000):
        tracker.record(bars(f"C{i % 7}", end=str(i)), i * 0.5)
        tracker.record(bars(bar_size="1 day"), i * 0.5)
    assert tracker.history_size <= 1200 + 10
    tracker.prune(1e9)
    assert tracker.history_size == 0


def test_acquire_is_atomic_across_threads() -> None:
    """Of many threads acquiring one request at the same instant, exactly one succeeds."""
    tracker = PacingTracker()
    barrier = threading.Barrier(16)
    results: list[str | None] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        r = tracker.acquire(bars(), 0.0)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(None) == 1


def test_ready_at_is_now_plus_delay() -> None:
    """ready_at gives the absolute time matching delay, and now when allowed."""
    tracker = PacingTracker()
    assert tracker.ready_at(bars(), 3.0) == 3.0
    tracker.record(bars(), 3.0)
    assert tracker.ready_at(bars(), 4.0) == 18.0
    assert repr(tracker).startswith("PacingTracker(PacingRules(")


def test_checks_at_later_times_change_nothing() -> None:
    """A check far in the future does not make the tracker forget the present."""
    tracker = PacingTracker()
    tracker.record(bars(), 0.0)
    assert tracker.check(bars(), 1e9) is None
    assert tracker.delay(bars(), 1e9) == 0.0
    assert tracker.check(bars(), 1.0) is not None
    assert tracker.history_size == 1


def test_earlier_time_counts_later_records() -> None:
    """A check at a time before a recorded request still counts that request."""
    tracker = PacingTracker()
    tracker.record(bars(), 10.0)
    assert tracker.check(bars(), 9.0) is not None


# -- properties -------------------------------------------------------------------------


def reference(
    rules: PacingRules, history: list[tuple[float, PacedRequest]], req: PacedRequest, t: float
) -> str | None:
    """The rule ``req`` breaks at ``t``, counted plainly over the whole history, or None."""

    def small(r: PacedRequest) -> bool:
        return r.head_timestamp or BAR_SIZE_SECONDS[r.bar_size] <= rules.small_bar_seconds

    def weight(r: PacedRequest) -> int:
        return rules.bid_ask_weight if r.what_to_show == "BID_ASK" else 1

    scale = rules.time_scale
    if not small(req):
        if rules.soft_window is None or rules.soft_max is None:
            return None
        soft = rules.soft_window / scale
        n = sum(1 for t0, r in history if not small(r) and t - t0 < soft)
        return "soft" if n + 1 > rules.soft_max else None
    smalls = [(t0, r) for t0, r in history if small(r)]
    if any(r == req and t - t0 < rules.identical_window / scale for t0, r in smalls):
        return "identical"
    burst = sum(
        weight(r)
        for t0, r in smalls
        if (r.contract, r.exchange, r.what_to_show)
        == (req.contract, req.exchange, req.what_to_show)
        and t - t0 < rules.burst_window / scale
    )
    if burst + weight(req) > rules.burst_max:
        return "burst"
    total = sum(weight(r) for t0, r in smalls if t - t0 < rules.window / scale)
    if total + weight(req) > rules.window_max:
        return "window"
    return None


def category(reason: str | None) -> str | None:
    """The rule a tracker's reason names, in the reference's words."""
    if reason is None:
        return None
    if "identical" in reason:
        return "identical"
    if "same contract" in reason:
        return "burst"
    if "soft" in reason:
        return "soft"
    assert "requests within" in reason
    return "window"


@st.composite
def rule_sets(draw: st.DrawFn) -> PacingRules:
    """Small rule sets, so every rule is reached by short schedules."""
    soft = draw(
        st.one_of(
            st.just((None, None)),
            st.tuples(st.sampled_from([1.0, 4.0, 10.0]), st.integers(1, 4)),
        )
    )
    burst_max = draw(st.integers(2, 5))
    return PacingRules(
        identical_window=draw(st.sampled_from([1.0, 3.0, 15.0])),
        burst_window=draw(st.sampled_from([0.5, 1.0, 2.0])),
        burst_max=burst_max,
        window=draw(st.sampled_from([5.0, 10.0, 600.0])),
        window_max=draw(st.integers(burst_max, 20)),
        bid_ask_weight=draw(st.integers(1, 2)),
        soft_window=soft[0],
        soft_max=soft[1],
        time_scale=draw(st.sampled_from([1.0, 3.0, 100.0])),
    )


@st.composite
def requests(draw: st.DrawFn, *, large: bool = True) -> PacedRequest:
    """Requests from a small set of contracts, tick types, bar sizes and identities."""
    contract = draw(st.sampled_from(["ES", "ES", "NQ"]))
    exchange = draw(st.sampled_from(["CME", "CME", "CME", "GLOBEX"]))
    what_to_show = draw(st.sampled_from(["TRADES", "TRADES", "BID_ASK", "BID_ASK", "MIDPOINT"]))
    identity = draw(st.sampled_from([(), ("a",), ("b", "1")]))
    if draw(st.integers(0, 5)) == 0:
        return PacedRequest(
            contract=contract, exchange=exchange, what_to_show=what_to_show,
            identity=identity, head_timestamp=True,
        )  # fmt: skip
    sizes = ["1 secs", "5 secs", "30 secs"] + (["1 min", "1 day"] if large else [])
    return PacedRequest(
        contract=contract,
        exchange=exchange,
        what_to_show=what_to_show,
        bar_size=draw(st.sampled_from(sizes)),
        identity=identity,
    )


GAPS = [0.0, 0.0, 0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 15.0, 100.0]
STARTS = [0.0, 1234.5678, 1e6]


@settings(max_examples=300, deadline=None)
@given(
    rules=rule_sets(),
    start=st.sampled_from(STARTS),
    steps=st.lists(
        st.tuples(
            st.sampled_from(GAPS), requests(), st.sampled_from(["acquire", "acquire", "record"])
        ),
        min_size=10,
        max_size=80,
    ),
)
def test_check_agrees_with_brute_force_reference(
    rules: PacingRules, start: float, steps: list[tuple[float, PacedRequest, str]]
) -> None:
    """check() names the same broken rule as a plain count over the full history."""
    tracker = PacingTracker(rules)
    history: list[tuple[float, PacedRequest]] = []
    t = start
    for gap, req, action in steps:
        t += gap / rules.time_scale
        expected = reference(rules, history, req, t)
        assert category(tracker.check(req, t)) == expected
        if action == "record":
            tracker.record(req, t)
            history.append((t, req))
        else:
            assert category(tracker.acquire(req, t)) == expected
            if expected is None:
                history.append((t, req))


@settings(max_examples=200, deadline=None)
@given(
    rules=rule_sets(),
    start=st.sampled_from(STARTS),
    steps=st.lists(st.tuples(st.sampled_from(GAPS), requests()), min_size=10, max_size=80),
)
def test_greedy_pacer_is_never_refused_and_waits_minimally(
    rules: PacingRules, start: float, steps: list[tuple[float, PacedRequest]]
) -> None:
    """A pacer that waits delay() then acquires is never refused, and waiting less would be."""
    tracker = PacingTracker(rules)
    history: list[tuple[float, PacedRequest]] = []
    now = start
    for gap, req in steps:
        now += gap / rules.time_scale
        wait = tracker.delay(req, now)
        assert wait >= 0.0
        assert tracker.ready_at(req, now) <= now + wait
        if wait > 0:
            assert tracker.check(req, now + wait - 1e-6) is not None
            assert reference(rules, history, req, now + wait - 1e-6) is not None
        else:
            assert tracker.check(req, now) is None
        now += wait
        assert reference(rules, history, req, now) is None
        assert tracker.acquire(req, now) is None
        history.append((now, req))
