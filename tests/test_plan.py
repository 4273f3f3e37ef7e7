"""``Client.plan`` and ``max_requests`` against a paced simulator: a plan counts exactly the
requests a download then sends, and a range over the limit is refused with none sent."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path
from typing import Any

import pytest

from ibdata import DownloadPlan, PacingRules, RangeTooLargeError
from ibdata.sim import Simulator
from tests.conftest import PACED_SCALE

UTC = dt.timezone.utc
#: IB's ten-minute window passes in 6 seconds.
SCALE = PACED_SCALE  # the paced simulator's and make_client's (tests/conftest.py)
RULES = PacingRules(time_scale=SCALE)

#: 36 hours of 1-second bars: 72 requests of 30 minutes each.
SECONDS_RANGE = {
    "start": dt.datetime(2025, 3, 10, tzinfo=UTC),
    "end": dt.datetime(2025, 3, 11, 12, tzinfo=UTC),
    "bar_size": "1 secs",
}
#: Five days of 1-minute bars: five requests of one day each.
MINUTES_RANGE = {
    "start": dt.datetime(2025, 3, 3, tzinfo=UTC),
    "end": dt.datetime(2025, 3, 8, tzinfo=UTC),
    "bar_size": "1 min",
}


def _sent(sim: Simulator, name: str = "reqHistoricalData") -> list[Any]:
    return list(sim.received.find(name))


def _ib_time(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")


def _small_bar_seconds(count: int, rules: PacingRules, weight: int = 1) -> float:
    """When the last of ``count`` small-bar requests for one contract may go, from IB's
    rules written out: ``window_max`` per ``window``, ``burst_max`` per ``burst_window``,
    each request counting ``weight`` times.

    Request ``k`` (from 0) goes in ten-minute window ``k // per_window``, and within it in
    burst ``(k % per_window) // per_burst``.
    """
    k = count - 1
    per_window, per_burst = rules.window_max // weight, rules.burst_max // weight
    window, burst = rules.window / rules.time_scale, rules.burst_window / rules.time_scale
    return window * (k // per_window) + burst * ((k % per_window) // per_burst)


def test_a_plan_counts_exactly_the_requests_the_download_sends(
    paced_sim: Simulator, make_client: Any
) -> None:
    """plan() sends no bar or head-timestamp request; the download then sends one request
    per planned chunk, for the planned windows, and a second plan of the cached range is
    empty."""
    client = make_client()
    plan = client.plan("AAPL", **MINUTES_RANGE)
    assert isinstance(plan, DownloadPlan)
    assert _sent(paced_sim) == []
    assert _sent(paced_sim, "reqHeadTimeStamp") == []
    assert plan.requests == len(plan.chunks) == 5
    assert plan.head_timestamp is None
    assert plan.head_timestamp_request
    assert plan.contract.symbol == "AAPL"
    assert (plan.start, plan.end) == (MINUTES_RANGE["start"], MINUTES_RANGE["end"])
    assert plan.chunks[0][0] == MINUTES_RANGE["start"]
    assert plan.chunks[-1][1] == MINUTES_RANGE["end"]
    assert all(a[1] == b[0] for a, b in zip(plan.chunks, plan.chunks[1:], strict=False))

    client.get_historical_bars("AAPL", **MINUTES_RANGE)
    sent = _sent(paced_sim)
    assert len(sent) == plan.requests
    sent_ends = {field for r in sent for field in r.fields if field[:2] == "20"}
    assert {_ib_time(end) for _, end in plan.chunks} <= sent_ends

    again = client.plan("AAPL", **MINUTES_RANGE)
    assert again.requests == 0
    assert again.chunks == ()
    assert again.minimum_time == dt.timedelta(0)
    assert again.head_timestamp is not None  # asked by the download, kept in the cache
    assert not again.head_timestamp_request
    assert len(_sent(paced_sim)) == plan.requests


def test_a_partly_cached_range_plans_only_what_the_cache_lacks(
    paced_sim: Simulator, make_client: Any, tmp_path: Path
) -> None:
    """A new client on the same cache file plans only the days it lacks, and downloading
    the whole range then sends exactly that many requests."""
    make_client().get_historical_bars(
        "AAPL", start=dt.datetime(2025, 3, 4, tzinfo=UTC), end=dt.datetime(2025, 3, 6, tzinfo=UTC),
        bar_size="1 min",
    )  # fmt: skip
    before = len(_sent(paced_sim))
    client = make_client()
    plan = client.plan("AAPL", **MINUTES_RANGE)
    assert plan.requests == 3  # 3, 6 and 7 March
    assert plan.head_timestamp is not None
    assert not plan.head_timestamp_request
    client.get_historical_bars("AAPL", **MINUTES_RANGE)
    assert len(_sent(paced_sim)) - before == plan.requests


def test_the_minimum_time_is_what_the_pacing_rules_give(make_client: Any) -> None:
    """For 1-second bars the plan's time is the moment IB's rules let the last request go:
    60 requests per ten minutes in bursts of five per two seconds, the head-timestamp
    request counted while it is unknown; bars over 30 seconds wait for nothing."""
    client = make_client()
    plan = client.plan("AAPL", **SECONDS_RANGE)
    assert plan.requests == 72  # 36 hours of 30-minute requests
    assert plan.head_timestamp_request
    expected = _small_bar_seconds(72 + 1, RULES)
    assert expected == pytest.approx(6.04)  # window 6 s, then bursts of 0.02 s: 2 more
    assert plan.minimum_time.total_seconds() == pytest.approx(expected)

    client.get_historical_bars("AAPL", **MINUTES_RANGE)  # learns the head timestamp
    known = client.plan("AAPL", **SECONDS_RANGE)
    assert not known.head_timestamp_request
    assert known.minimum_time.total_seconds() == pytest.approx(_small_bar_seconds(72, RULES))
    assert client.plan("AAPL", **MINUTES_RANGE).minimum_time == dt.timedelta(0)

    bid_ask = client.plan("AAPL", what_to_show="BID_ASK", **SECONDS_RANGE)
    # BID_ASK counts twice (its head timestamp too, unknown for BID_ASK): 30 requests per
    # window and 2 per burst, so request 72 goes in the third window, seventh burst
    assert bid_ask.head_timestamp_request
    expected = _small_bar_seconds(72 + 1, RULES, weight=2)
    assert expected == pytest.approx(12.12)
    assert bid_ask.minimum_time.total_seconds() == pytest.approx(expected)


def test_without_pacing_the_minimum_time_is_zero(
    paced_sim: Simulator, make_client: Any, tmp_path: Path
) -> None:
    """A client with ``pacing=None`` plans the same requests and no waiting."""
    client = make_client(pacing=None, cache=None)
    plan = client.plan("AAPL", **SECONDS_RANGE)
    assert plan.requests == 72
    assert plan.minimum_time == dt.timedelta(0)


def test_max_requests_refuses_with_the_plan_before_any_bar_request(
    paced_sim: Simulator, make_client: Any
) -> None:
    """A range over max_requests raises RangeTooLargeError (a ValueError) naming the
    requests, the limit and the time, with no reqHistoricalData sent."""
    client = make_client()
    with pytest.raises(RangeTooLargeError) as caught:
        client.get_historical_bars("AAPL", max_requests=60, **SECONDS_RANGE)
    assert _sent(paced_sim) == []
    err = caught.value
    assert isinstance(err, ValueError)
    assert err.max_requests == 60
    assert err.plan.requests == 72
    assert err.plan.minimum_time.total_seconds() == pytest.approx(_small_bar_seconds(72, RULES))
    assert "needs 72 requests to IB, more than the 60 allowed" in str(err)
    assert "at least 6.04 s under IB's pacing rules" in str(err)
    assert client.plan("AAPL", **SECONDS_RANGE).chunks == err.plan.chunks
    again = pickle.loads(pickle.dumps(err))
    assert (str(again), again.plan, again.max_requests) == (str(err), err.plan, 60)


def test_a_plan_as_json_values(make_client: Any) -> None:
    """to_dict() gives JSON-ready values with the counts and every chunk."""
    plan = make_client().plan("AAPL", **MINUTES_RANGE)
    record = plan.to_dict()
    assert record["requests"] == 5
    assert record["head_timestamp"] is None
    assert record["chunks"][0] == {
        "start": "2025-03-03T00:00:00.000Z",
        "end": "2025-03-04T00:00:00.000Z",
    }
    assert record["minimum_seconds"] == 0.0
    assert plan.describe() == "5 requests to IB (at least 0 s under its pacing rules)"


def test_plan_checks_its_arguments_before_sending(paced_sim: Simulator, make_client: Any) -> None:
    """Naive times and an end before the start are refused with nothing sent."""
    client = make_client()
    sent = len(paced_sim.received.find("reqContractDetails"))
    with pytest.raises(ValueError, match="start"):
        client.plan("AAPL", start=dt.datetime(2025, 3, 3), bar_size="1 min")
    with pytest.raises(ValueError, match="must be before end"):
        client.plan(
            "AAPL", start=MINUTES_RANGE["end"], end=MINUTES_RANGE["start"], bar_size="1 min"
        )
    assert len(paced_sim.received.find("reqContractDetails")) == sent
