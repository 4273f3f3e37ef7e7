"""The bars of live updates: bar ends, the complete bar at each end and the bar in progress,
each the same as the bars a request returns."""

from __future__ import annotations

import datetime as dt

import pytest

from ibdata.sim._bars import BAR_SIZES, bar_ending, forming_bar, generate, next_bar_end
from ibdata.sim._model import SimContract
from tests.sim.test_bars import FUTURE, FX, STOCK

UTC = dt.timezone.utc

#: Friday 15 November 2024, 19:58 New York time: AAPL's session ends two minutes later.
FRIDAY_EVENING = dt.datetime(2024, 11, 16, 0, 58, 20, tzinfo=UTC)

SIZES = ["5 secs", "1 min", "30 mins", "1 hour", "1 day", "1W", "1M"]


def _steps(bar_size: str) -> int:
    return 3 if BAR_SIZES[bar_size] >= 86_400 else 30


@pytest.mark.parametrize("bar_size", SIZES)
@pytest.mark.parametrize(
    ("contract", "what"), [(STOCK, "TRADES"), (FUTURE, "TRADES"), (FX, "MIDPOINT")]
)
@pytest.mark.parametrize("use_rth", [False, True])
def test_each_bar_end_gives_the_bar_a_request_returns(
    contract: SimContract, what: str, bar_size: str, use_rth: bool
) -> None:
    """Walking from bar end to bar end (over a close and a weekend), the complete bar at each
    end is the bar a request for a wider window returns, and the ends only grow."""
    at = FRIDAY_EVENING - dt.timedelta(minutes=30)
    for _ in range(_steps(bar_size)):
        end = next_bar_end(contract, bar_size, use_rth, at)
        if end is None:  # only after a future's last trading day
            assert contract.expired_on is not None
            assert at.date() >= contract.expired_on
            break
        assert end > at
        bar = bar_ending(contract, what, bar_size, use_rth, end)
        assert bar is not None
        assert bar.end == end
        assert generate(contract, what, bar_size, use_rth, bar.start, end) == [bar]
        at = end


@pytest.mark.parametrize("bar_size", SIZES)
def test_the_bar_in_progress_is_the_last_bar_of_a_request(bar_size: str) -> None:
    """Inside a session the bar in progress is the last bar of a request answered at that
    moment."""
    for now in (FRIDAY_EVENING, FRIDAY_EVENING + dt.timedelta(seconds=70.5)):
        start = now - dt.timedelta(seconds=2 * BAR_SIZES[bar_size])
        answer = generate(STOCK, "TRADES", bar_size, False, start, now, now=now, overlap=True)
        assert forming_bar(STOCK, "TRADES", bar_size, False, now) == answer[-1]


def test_no_bar_is_in_progress_after_the_close() -> None:
    """After the close no intraday or daily bar is in progress; at the close itself the
    last bar is the complete one."""
    close = dt.datetime(2024, 11, 16, 1, 0, tzinfo=UTC)
    for bar_size in ("5 secs", "1 min", "1 hour", "1 day"):
        assert (
            forming_bar(STOCK, "TRADES", bar_size, False, close + dt.timedelta(seconds=0.5)) is None
        )
        last = forming_bar(STOCK, "TRADES", bar_size, False, close)
        assert last == bar_ending(STOCK, "TRADES", bar_size, False, close)
    monday = next_bar_end(STOCK, "1 min", False, close)
    assert monday == dt.datetime(2024, 11, 18, 9, 1, tzinfo=UTC)  # 04:01 New York time


def test_an_expired_future_has_no_next_bar() -> None:
    """After a future's last trading day no bar ends any more."""
    after = dt.datetime(2024, 12, 21, tzinfo=UTC)
    assert next_bar_end(FUTURE, "1 min", False, after) is None
    assert next_bar_end(FUTURE, "1W", False, after) is None
