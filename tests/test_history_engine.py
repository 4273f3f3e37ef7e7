"""The history engine against the simulator, with IB's pacing rules on a scaled clock."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ibdata import (
    Bars,
    BarSize,
    Client,
    PacingRules,
    PacingViolationError,
    tqdm_progress,
)
from ibdata._engine import final_boundary
from ibdata.cache import BarCache, CacheWarning, SeriesKey
from ibdata.sim import ContractQuery, Simulator, SystemClock
from ibdata.sim import _bars as simbars
from tests import ibapi_release as rel
from tests.conftest import CLOCK_AT, PACED_SCALE

UTC = dt.timezone.utc
#: 10 minutes of IB's pacing window pass in 6 seconds.
SCALE = PACED_SCALE  # the paced simulator's and make_client's (tests/conftest.py)


def _requests(sim: Simulator) -> int:
    return len(sim.received.find("reqHistoricalData"))


def _expected(
    sim: Simulator, symbol: str, size: str, start: dt.datetime, end: dt.datetime, **q: Any
) -> list[Any]:
    """What the simulator's generator holds in [start, end): the oracle."""
    query = ContractQuery(symbol=symbol, **q)
    contract = sim.catalog.resolve(query, CLOCK_AT.date())
    bars = simbars.generate(contract, "TRADES", size, False, start, end, now=CLOCK_AT)
    if BarSize(size).intraday:
        return [(b.start, b.close) for b in bars]
    return [(b.session_date, b.close) for b in bars]


def _got(bars: Bars) -> list[Any]:
    return [(b.time, b.close) for b in bars]


STOCK = {"sec_type": "STK", "exchange": "SMART", "currency": "USD"}


def test_range_across_a_weekend_is_exact(paced_sim: Simulator, make_client: Any) -> None:
    """A minute-bar range over a weekend returns exactly the simulator's bars, sorted, once."""
    client = make_client()
    start = dt.datetime(2025, 3, 6, 14, 30, tzinfo=UTC)
    end = dt.datetime(2025, 3, 11, 16, 0, tzinfo=UTC)
    bars = client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
    assert _got(bars) == _expected(paced_sim, "AAPL", "1 min", start, end, **STOCK)
    assert bars.start == start
    assert bars.end == end
    assert paced_sim.stats.pacing_violations == 0


def test_repeated_range_is_served_from_the_cache(paced_sim: Simulator, make_client: Any) -> None:
    """The same range again reaches IB not at all and gives the same bars."""
    client = make_client()
    start = dt.datetime(2025, 3, 3, tzinfo=UTC)
    end = dt.datetime(2025, 3, 8, tzinfo=UTC)
    first = client.get_historical_bars("MSFT", start=start, end=end, bar_size="5 mins")
    before = _requests(paced_sim)
    second = client.get_historical_bars("MSFT", start=start, end=end, bar_size="5 mins")
    assert _requests(paced_sim) == before
    assert second == first


def test_cache_survives_a_new_client(paced_sim: Simulator, make_client: Any) -> None:
    """A second client on the same cache file asks IB for nothing it already has."""
    start = dt.datetime(2025, 3, 4, tzinfo=UTC)
    end = dt.datetime(2025, 3, 6, tzinfo=UTC)
    first = make_client().get_historical_bars("SPY", start=start, end=end, bar_size="1 min")
    before = _requests(paced_sim)
    again = make_client().get_historical_bars("SPY", start=start, end=end, bar_size="1 min")
    assert again == first
    assert _requests(paced_sim) == before


def test_overlapping_range_fetches_only_the_missing_part(
    paced_sim: Simulator, make_client: Any
) -> None:
    """A range overlapping a cached one requests only what is missing."""
    client = make_client()
    a = dt.datetime(2025, 3, 3, tzinfo=UTC)
    client.get_historical_bars("AAPL", start=a, end=a + dt.timedelta(days=2), bar_size="1 min")
    before = _requests(paced_sim)
    bars = client.get_historical_bars(
        "AAPL", start=a + dt.timedelta(days=1), end=a + dt.timedelta(days=3), bar_size="1 min"
    )
    assert _requests(paced_sim) - before == 1  # one new day of 1-minute bars
    assert _got(bars) == _expected(
        paced_sim, "AAPL", "1 min", a + dt.timedelta(days=1), a + dt.timedelta(days=3), **STOCK
    )


def test_interrupted_download_resumes(paced_sim: Simulator, make_client: Any) -> None:
    """An exception mid-download keeps the chunks fetched; the rerun fetches only the rest."""
    client = make_client()
    start = dt.datetime(2025, 2, 24, tzinfo=UTC)
    end = dt.datetime(2025, 3, 4, tzinfo=UTC)
    seen: list[tuple[int, int, int]] = []

    def stop_after_three(done: int, total: int, bars: int) -> None:
        seen.append((done, total, bars))
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.get_historical_bars(
            "AAPL", start=start, end=end, bar_size="1 min", progress=stop_after_three
        )
    total = seen[0][1]
    assert seen[0] == (0, total, 0)
    before = _requests(paced_sim)
    bars = client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min")
    assert _requests(paced_sim) - before == total - 3
    assert _got(bars) == _expected(paced_sim, "AAPL", "1 min", start, end, **STOCK)


def test_concurrent_identical_calls_share_requests(paced_sim: Simulator, make_client: Any) -> None:
    """Four threads asking for the same range at once cause each IB request once."""
    client = make_client(cache=None)
    start = dt.datetime(2025, 3, 3, tzinfo=UTC)
    end = dt.datetime(2025, 3, 7, tzinfo=UTC)
    results: list[Bars] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        results.append(client.get_historical_bars("MSFT", start=start, end=end, bar_size="1 min"))

    before = _requests(paced_sim)
    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4
    assert all(r == results[0] for r in results)
    assert _requests(paced_sim) - before == 4  # four days of minute bars, each asked once


def test_small_bars_are_paced_without_violations(paced_sim: Simulator, make_client: Any) -> None:
    """Seventy 1-second-bar requests pass the 60-per-10-minutes rule with no violation."""
    client = make_client(cache=None)
    end = dt.datetime(2025, 3, 12, 15, 0, tzinfo=UTC)
    start = end - dt.timedelta(seconds=1800 * 70)
    bars = client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 secs")
    assert paced_sim.stats.pacing_violations == 0
    assert _requests(paced_sim) >= 70
    assert client._pacer is not None
    assert client._pacer.waited > 0  # the 61st request had to wait for the window
    assert len(bars) > 0


#: The other program's contracts: ten, so that it never sends six requests for one
#: contract within two seconds (rule 2) while it fills the ten-minute window (rule 3).
OTHER_SYMBOLS = ("AAPL", "SPY", "AMZN", "TSLA", "NVDA", "GOOGL", "META", "AMD", "QQQ", "IWM")


def _fill_window(other: Client) -> None:
    """Send 60 one-second-bar requests at once from ``other``: IB's ten-minute budget."""
    for symbol in OTHER_SYMBOLS:
        other.get_contract_details(symbol)
    end = dt.datetime(2025, 3, 12, 15, 0, tzinfo=UTC)
    for i in range(60):
        symbol = OTHER_SYMBOLS[i % len(OTHER_SYMBOLS)]
        window_end = end - dt.timedelta(minutes=i)
        other.get_historical_bars(symbol, duration="60 S", end=window_end, bar_size="1 secs")


def test_refusal_from_another_program_waits_for_the_ten_minute_window(
    paced_sim: Simulator, make_client: Any
) -> None:
    """Another program filled the 60-per-10-minutes window: the refused request is sent
    again only once that window has room by the simulator's clock, and succeeds."""
    client = make_client(cache=None)
    other = make_client(cache=None, pacing=None)
    client.get_contract_details("MSFT")
    _fill_window(other)
    first_other = paced_sim.received.find("reqHistoricalData", client_id=other.client_id)[0]
    bars = client.get_historical_bars("MSFT", duration="60 S", bar_size="1 secs")
    assert len(bars) > 0
    assert paced_sim.stats.pacing_violations == 1
    refused, retry = paced_sim.received.find("reqHistoricalData", client_id=client.client_id)
    window = PacingRules(time_scale=SCALE).effective_window
    assert retry.time - first_other.time >= window  # the other program's oldest had left
    assert retry.time - refused.time >= window  # the worst plausible rule: a full window


def test_identical_request_refusal_waits_the_identical_window_only(
    paced_sim: Simulator, make_client: Any
) -> None:
    """A refusal the client's own record explains as an identical request is sent again
    15 s (scaled) after the earlier identical request, not after the ten-minute window."""
    loose = PacingRules(time_scale=SCALE, identical_window=1.0)  # looser than IB's 15 s
    client = make_client(cache=None, pacing=loose)
    end = dt.datetime(2025, 3, 12, 15, 0, tzinfo=UTC)
    for _ in range(2):
        client.get_historical_bars("AAPL", duration="60 S", end=end, bar_size="1 secs")
    assert paced_sim.stats.pacing_violations == 1
    first, refused, retry = paced_sim.received.find("reqHistoricalData", client_id=client.client_id)
    ib = PacingRules(time_scale=SCALE)
    assert retry.time - first.time >= ib.effective_identical_window
    assert retry.time - refused.time < ib.effective_window


def test_wait_beyond_the_timeout_raises_at_once(paced_sim: Simulator, make_client: Any) -> None:
    """When the window another program filled would outlast the call's timeout, the
    PacingViolationError names the rule and the retry time, and nothing more is sent."""
    client = make_client(cache=None, timeout=2)
    other = make_client(cache=None, pacing=None)
    client.get_contract_details("MSFT")
    _fill_window(other)
    with pytest.raises(PacingViolationError) as err:
        client.get_historical_bars("MSFT", duration="60 S", bar_size="1 secs")
    e = err.value
    assert e.rule == "more than 60 requests within 600 s (another program on the login)"
    assert e.note == "not retried: the wait exceeds the 2 s timeout"
    assert 2 < e.retry_after <= PacingRules(time_scale=SCALE).effective_window * 1.02 + 0.01
    assert e.retry_at is not None
    assert e.retry_at > dt.datetime.now(UTC)
    assert "likely rule: more than 60 requests within 600 s" in str(e)
    assert len(paced_sim.received.find("reqHistoricalData", client_id=client.client_id)) == 1
    assert paced_sim.stats.pacing_violations == 1


def test_persistent_refusals_are_retried_then_raised(
    paced_sim: Simulator, make_client: Any
) -> None:
    """Refusals the client cannot explain are retried three times, each after the
    ten-minute window, then raised with the rule, the retry time and the count."""
    text = "Historical Market Data Service error message:Historical data request pacing violation"
    client = make_client(cache=None, pacing=PacingRules(time_scale=1000))
    client.get_contract_details("AAPL")
    paced_sim.fail_next(162, text, request="reqHistoricalData", times=10)
    with pytest.raises(PacingViolationError) as err:
        client.get_historical_bars("AAPL", duration="1800 S", bar_size="1 min")
    assert err.value.note == "refused 4 times"
    assert err.value.rule is not None
    assert "600 s" in err.value.rule
    sent = paced_sim.received.find("reqHistoricalData", client_id=client.client_id)
    assert len(sent) == 4
    window = PacingRules(time_scale=1000).effective_window
    assert all(b.time - a.time >= window for a, b in itertools.pairwise(sent))


def test_daily_bars_over_two_years(paced_sim: Simulator, make_client: Any) -> None:
    """Two years of daily bars: every session date once, across chunk boundaries."""
    client = make_client()
    start = dt.datetime(2023, 3, 1, tzinfo=UTC)
    end = dt.datetime(2025, 3, 1, tzinfo=UTC)
    bars = client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 day")
    dates = [b.time for b in bars]
    assert dates == sorted(set(dates))
    assert _got(bars) == _expected(paced_sim, "AAPL", "1 day", start, end, **STOCK)


def test_futures_month_and_head_timestamp(paced_sim: Simulator, make_client: Any) -> None:
    """A contract month's range starts at its first data; nothing is asked before it."""
    client = make_client()
    start = dt.datetime(2023, 1, 1, tzinfo=UTC)  # long before the June 2025 note was listed
    end = dt.datetime(2024, 11, 1, tzinfo=UTC)
    bars = client.get_historical_bars("UST10YM25", start=start, end=end, bar_size="1 day")
    assert bars
    heads = paced_sim.received.find("reqHeadTimestamp")
    assert len(heads) == 1
    first = bars[0].time
    assert isinstance(first, dt.date)
    assert first >= dt.date(2024, 8, 1)  # listed about nine months before its expiry
    client.get_historical_bars("UST10YM25", start=start, end=end, bar_size="1 day")
    assert len(paced_sim.received.find("reqHeadTimestamp")) == 1  # remembered


def test_continuous_future_range_in_the_past_is_refused(
    make_client: Any, paced_sim: Simulator
) -> None:
    """A CONTFUT range ending in the past raises, pointing to the contract months, before
    anything (even the contract lookup) is sent."""
    client = make_client()
    before = paced_sim.received.total
    with pytest.raises(ValueError, match="contract months"):
        client.get_historical_bars(
            "EURBBL",
            start=dt.datetime(2025, 1, 1, tzinfo=UTC),
            end=dt.datetime(2025, 2, 1, tzinfo=UTC),
            bar_size="1 hour",
        )
    assert paced_sim.received.total == before


def test_continuous_future_range_up_to_now(
    sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    """A CONTFUT range ending now is one request without an end date."""
    sim = sim_factory(clock=SystemClock())
    start = dt.datetime.now(UTC) - dt.timedelta(days=7)
    with Client(sim.host, sim.port, timeout=20, cache=tmp_path / "c.sqlite") as client:
        bars = client.get_historical_bars("EURBBL", start=start, bar_size="1 hour")
    assert len(bars) > 20
    (req,) = sim.received.find("reqHistoricalData")
    assert req.fields[15] == ""  # no end date
    assert bars[0].time >= start


def test_start_and_duration_are_exclusive(make_client: Any) -> None:
    """start and duration together are refused before anything is sent."""
    client = make_client()
    with pytest.raises(ValueError, match="not both"):
        client.get_historical_bars(
            "AAPL", start=dt.datetime(2025, 3, 1, tzinfo=UTC), duration="1 D"
        )
    with pytest.raises(ValueError, match="has no time zone"):
        client.get_historical_bars("AAPL", start=dt.datetime(2025, 3, 1))


def test_times_by_one_rule(make_client: Any) -> None:
    """A range given as ISO strings or dates is the same range as aware datetimes: a date
    alone is 00:00 UTC, a string with Z or an offset is that instant."""
    client = make_client()
    as_datetimes = client.get_historical_bars(
        "AAPL",
        start=dt.datetime(2025, 3, 10, tzinfo=UTC),
        end=dt.datetime(2025, 3, 11, 14, 0, tzinfo=UTC),
        bar_size="1 hour",
    )
    as_strings = client.get_historical_bars(
        "AAPL", start="2025-03-10", end="2025-03-11T10:00-04:00", bar_size="1 hour"
    )
    as_dates = client.get_historical_bars(
        "AAPL", start=dt.date(2025, 3, 10), end="2025-03-11T14:00Z", bar_size="1 hour"
    )
    assert list(as_strings) == list(as_datetimes) == list(as_dates)
    assert as_strings.start == dt.datetime(2025, 3, 10, tzinfo=UTC)


def test_corrupt_cache_file_is_rebuilt(paced_sim: Simulator, tmp_path: Path) -> None:
    """A corrupt cache file is reported with a CacheWarning, set aside and rebuilt."""
    path = tmp_path / "broken.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.warns(CacheWarning):
        cache = BarCache(path)
    try:
        with Client(
            paced_sim.host, paced_sim.port, cache=cache, pacing=PacingRules(time_scale=SCALE)
        ) as c:
            start = dt.datetime(2025, 3, 10, tzinfo=UTC)
            bars = c.get_historical_bars(
                "AAPL", start=start, end=start + dt.timedelta(days=1), bar_size="5 mins"
            )
        assert bars
        assert cache.info().bars >= len(bars)
    finally:
        cache.close()
    assert any(p.name.startswith("broken.sqlite.corrupt-") for p in tmp_path.iterdir())


def test_a_locked_cache_costs_no_download(
    paced_sim: Simulator, make_client: Any, tmp_path: Path
) -> None:
    """A cache another program keeps locked for writing past the cache's timeout is worked
    around: the shared pacing ledger, the head timestamp's store and the first chunk's
    lease each fail once with a CacheWarning, and the rest of the download (7 chunks) does
    not wait for the lock again (the pacer paces by its own record); the range comes from
    IB, exact, and the next call with the cache free stores it."""
    with BarCache(tmp_path / "shared.sqlite", timeout=0.2) as cache:
        client = make_client(cache=cache, chunk_spans={"5 mins": "14400 S"})
        start = dt.datetime(2025, 3, 10, 14, 0, tzinfo=UTC)
        end = dt.datetime(2025, 3, 11, 16, 0, tzinfo=UTC)
        expected = _expected(paced_sim, "AAPL", "5 mins", start, end, **STOCK)
        other = sqlite3.connect(cache.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # holds the write lock
            before_first = _requests(paced_sim)
            with pytest.warns(CacheWarning) as caught:
                bars = client.get_historical_bars("AAPL", start=start, end=end, bar_size="5 mins")
        finally:
            other.close()
        assert _got(bars) == expected
        assert _requests(paced_sim) - before_first == 7  # 26 hours in chunks of 4
        messages = sorted(str(w.message).split(" could not ")[1] for w in caught)
        assert [m.split(" (")[0] for m in messages] == [
            "be used",
            "lease a chunk",
            "store a head timestamp",
        ]
        assert all("(TimeoutError: the bar cache" in m for m in messages), messages
        assert cache.info().bars == 0  # nothing could be stored
        before = _requests(paced_sim)
        again = client.get_historical_bars("AAPL", start=start, end=end, bar_size="5 mins")
        assert _got(again) == expected
        assert _requests(paced_sim) > before  # fetched again, and stored this time
        assert cache.missing(bars_key(client, "AAPL"), start.timestamp(), end.timestamp()) == []


class _UnreadableCache(BarCache):
    """A cache whose reads fail as on a disk returning I/O errors, which cannot be caused
    on demand here (a lock cannot keep readers out of a WAL file): the only stand-in in
    these tests, for ibdata's own class, never for ibapi, the socket or the clock."""

    def covered(self, key: SeriesKey, start: float, end: float) -> list[tuple[float, float]]:
        """Fail as SQLite does on an I/O error."""
        raise sqlite3.OperationalError("disk I/O error")

    def head(self, con_id: int, what_to_show: Any, use_rth: bool) -> float | None:
        """Fail as SQLite does on an I/O error."""
        raise sqlite3.OperationalError("disk I/O error")


def test_an_unreadable_cache_costs_no_download(
    paced_sim: Simulator, make_client: Any, tmp_path: Path
) -> None:
    """A cache whose reads fail is worked around: CacheWarnings say so, and the whole range
    comes from IB, exact, even the part the cache holds (it cannot be trusted)."""
    start = dt.datetime(2025, 3, 10, 14, 0, tzinfo=UTC)
    end = dt.datetime(2025, 3, 11, 16, 0, tzinfo=UTC)
    make_client().get_historical_bars("AAPL", start=start, end=end, bar_size="5 mins")
    with _UnreadableCache(tmp_path / "bars.sqlite") as cache:
        client = make_client(cache=cache)
        before = _requests(paced_sim)
        with pytest.warns(CacheWarning) as caught:
            bars = client.get_historical_bars("AAPL", start=start, end=end, bar_size="5 mins")
    assert _got(bars) == _expected(paced_sim, "AAPL", "5 mins", start, end, **STOCK)
    assert _requests(paced_sim) > before  # the cached range was fetched again
    messages = sorted(str(w.message).split(" could not ")[1] for w in caught)
    assert messages == [
        "be read (OperationalError: disk I/O error); going on without it",
        "read a head timestamp (OperationalError: disk I/O error); going on without it",
    ]


def bars_key(client: Client, symbol: str) -> SeriesKey:
    """The cache key of a stock's 5-minute trade bars, all hours."""
    (details,) = client.get_contract_details(symbol)
    return SeriesKey(details.contract.con_id, "TRADES", "5 mins", False)


def test_tqdm_progress_shows_chunks_and_bars(paced_sim: Simulator, make_client: Any) -> None:
    """tqdm_progress draws a bar counting requests, with the bars fetched so far."""
    out = io.StringIO()
    client = make_client(cache=None)
    start = dt.datetime(2025, 3, 3, tzinfo=UTC)
    bars = client.get_historical_bars(
        "AAPL",
        start=start,
        end=start + dt.timedelta(days=3),
        bar_size="1 min",
        progress=tqdm_progress(file=out, desc="AAPL"),
    )
    text = out.getvalue()
    assert "AAPL" in text
    assert "3/3" in text
    assert f"{len(bars):,} bars" in text


def test_range_past_a_contracts_expiry(paced_sim: Simulator, make_client: Any) -> None:
    """A contract month's range past its last trading day ends with its last session."""
    client = make_client()
    start = dt.datetime(2025, 3, 3, tzinfo=UTC)
    end = dt.datetime(2025, 3, 12, tzinfo=UTC)
    bars = client.get_historical_bars("EURBBLH5", start=start, end=end, bar_size="1 hour")
    assert bars.contract is not None
    assert bars.contract.last_trade_date == "20250306"
    times = [b.time for b in bars]
    assert isinstance(times[-1], dt.datetime)
    assert times[-1].date() <= dt.date(2025, 3, 6)
    expected = _expected(
        paced_sim,
        "GBL",
        "1 hour",
        start,
        end,
        sec_type="FUT",
        exchange="EUREX",
        last_trade_date_or_contract_month="202503",
        include_expired=True,
    )
    assert _got(bars) == expected


def test_max_requests_refuses_a_range_before_any_bars_are_asked(
    paced_sim: Simulator, make_client: Any
) -> None:
    """A range needing more requests than max_requests raises; the cached part needs none."""
    client = make_client()
    start = dt.datetime(2025, 3, 3, tzinfo=UTC)
    end = dt.datetime(2025, 3, 7, tzinfo=UTC)  # four days of 1-minute bars: four chunks
    with pytest.raises(ValueError, match=r"max_requests: the range needs 4 requests"):
        client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min", max_requests=3)
    assert _requests(paced_sim) == 0
    middle = dt.datetime(2025, 3, 5, tzinfo=UTC)
    client.get_historical_bars("AAPL", start=start, end=middle, bar_size="1 min", max_requests=2)
    assert _requests(paced_sim) == 2
    bars = client.get_historical_bars(
        "AAPL", start=start, end=end, bar_size="1 min", max_requests=2
    )  # two days are cached: two more requests are enough
    assert _got(bars) == _expected(paced_sim, "AAPL", "1 min", start, end, **STOCK)
    with pytest.raises(ValueError, match="max_requests must be at least 1"):
        client.get_historical_bars("AAPL", start=start, end=end, bar_size="1 min", max_requests=0)


# ------------------------------------------------------------ either window semantics
# Real TWS answers a request with every bar overlapping the window, cuts the bar that holds
# the end there, and dates a weekly or monthly bar by its last trading day up to the end;
# the simulator's "sessions" semantics returns whole bars starting in the window. Either
# way a range download returns whole bars, each once, and caches nothing partial.


@pytest.fixture(params=["real", "sessions"])
def either_sim(request: pytest.FixtureRequest, sim_factory: Callable[..., Simulator]) -> Simulator:
    """A paced simulator with real TWS's window semantics, or the sessions-based ones."""
    return sim_factory(pacing=PacingRules(time_scale=SCALE), window_semantics=request.param)


@pytest.fixture
def either_client(either_sim: Simulator, tmp_path: Path) -> Iterator[Client]:
    """A client of :func:`either_sim` with a cache."""
    with Client(
        either_sim.host,
        either_sim.port,
        pacing=PacingRules(time_scale=SCALE),
        cache=tmp_path / "bars.sqlite",
        timeout=20,
    ) as c:
        yield c


def _whole(sim: Simulator, size: str, start: dt.datetime, end: dt.datetime) -> list[Any]:
    """The simulator's whole bars of AAPL placed in [start, end): intraday bars by their
    start, longer ones by their date (a week's or month's last trading day)."""
    contract = sim.catalog.resolve(ContractQuery(symbol="AAPL", **STOCK), CLOCK_AT.date())
    margin = dt.timedelta(days=45)
    bars = simbars.generate(
        contract, "TRADES", size, False, start - margin, end + margin, now=CLOCK_AT
    )
    # what ibdata reports: shares, rounded to whole lots where TWS sends those (below 163)
    lots = rel.OFFERED < 163

    def volume(v: int) -> float:
        return float(round(v / 100) * 100 if lots else v)

    if BarSize(size).intraday:
        return [(b.start, b.open, b.high, b.low, b.close, volume(b.volume), b.count)
                for b in bars if start <= b.start < end]  # fmt: skip
    return [(b.session_date, b.open, b.high, b.low, b.close, volume(b.volume), b.count)
            for b in bars if start.date() <= b.session_date < end.date()]  # fmt: skip


def _values(bars: Bars) -> list[Any]:
    return [(b.time, b.open, b.high, b.low, b.close, b.volume, b.count) for b in bars]


@pytest.mark.parametrize("size", ["1 min", "1 hour"])
def test_unaligned_range_gives_whole_bars_under_either_semantics(
    either_sim: Simulator, either_client: Client, size: str
) -> None:
    """A range whose ends fall inside bars returns the whole bars starting in it, and a
    later overlapping range read partly from the cache gets whole bars too."""
    start = dt.datetime(2025, 3, 10, 14, 30, 17, tzinfo=UTC)
    end = dt.datetime(2025, 3, 11, 16, 0, 45, tzinfo=UTC)
    first = either_client.get_historical_bars("AAPL", start=start, end=end, bar_size=size)
    assert _values(first) == _whole(either_sim, size, start, end)
    later = dt.datetime(2025, 3, 11, 15, 20, 30, tzinfo=UTC)
    until = dt.datetime(2025, 3, 11, 19, 59, 59, tzinfo=UTC)
    second = either_client.get_historical_bars("AAPL", start=later, end=until, bar_size=size)
    assert _values(second) == _whole(either_sim, size, later, until)
    assert either_sim.stats.pacing_violations == 0


@pytest.mark.parametrize("size", ["1 week", "1 month"])
def test_weekly_and_monthly_bars_are_whole_under_either_semantics(
    either_sim: Simulator, either_client: Client, size: str
) -> None:
    """Two years of weekly or monthly bars: each period once, whole (the aggregate of its
    days), dated by its last trading day; a range ending mid-period first caches nothing of
    that period, so extending it later gives the whole period."""
    start = dt.datetime(2023, 1, 4, tzinfo=UTC)
    mid = dt.datetime(2024, 7, 17, tzinfo=UTC)  # a Wednesday, mid-month
    end = dt.datetime(2025, 2, 20, tzinfo=UTC)
    part = either_client.get_historical_bars("AAPL", start=start, end=mid, bar_size=size)
    assert _values(part) == _whole(either_sim, size, start, mid)
    full = either_client.get_historical_bars("AAPL", start=start, end=end, bar_size=size)
    assert _values(full) == _whole(either_sim, size, start, end)
    dates = [b.time for b in full]
    assert dates == sorted(set(dates))
    assert all(isinstance(d, dt.date) and d.weekday() < 5 for d in dates)


THURSDAY = dt.datetime(2025, 3, 13, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("size", "now", "boundary"),
    [
        ("1 min", THURSDAY, dt.datetime(2025, 3, 13, 9, 59, tzinfo=UTC)),
        ("1 day", THURSDAY, dt.datetime(2025, 3, 11, tzinfo=UTC)),
        # a week's bar is final once its week is over: not before Monday 10 March
        ("1 week", THURSDAY, dt.datetime(2025, 3, 10, tzinfo=UTC)),
        # on Monday the settling time of Friday's close still applies
        ("1 week", dt.datetime(2025, 3, 10, 10, tzinfo=UTC), dt.datetime(2025, 3, 8, tzinfo=UTC)),
        ("1 month", THURSDAY, dt.datetime(2025, 3, 1, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_bars_of_the_current_period_are_never_final(
    size: str, now: dt.datetime, boundary: dt.datetime
) -> None:
    """Only bars before the boundary are cached: a weekly or monthly bar dated in the
    current week or month is never final, however old its date."""
    assert final_boundary(BarSize(size), now) == boundary.timestamp()


@pytest.mark.parametrize("sv", rel.versions([157, 165, 175]))
def test_us_stock_volume_in_lots_is_returned_in_shares(
    sim_factory: Callable[..., Simulator], sv: int
) -> None:
    """TWS sends a US stock's historical volume in lots of 100 below server version 175
    (whole lots below 163, two decimals from 163); ibdata returns shares at every version:
    the simulator's share volume, rounded to the lot where TWS rounds it."""
    sim = sim_factory(server_version=sv)
    start = dt.datetime(2025, 3, 10, 14, tzinfo=UTC)
    end = dt.datetime(2025, 3, 10, 20, tzinfo=UTC)
    with Client(sim.host, sim.port, timeout=20) as c:
        assert c.health().server_version == sv
        bars = c.get_historical_bars("AAPL", start=start, end=end, bar_size="5 mins")
    contract = sim.catalog.resolve(ContractQuery(symbol="AAPL", **STOCK), CLOCK_AT.date())
    shares = [
        b.volume
        for b in simbars.generate(contract, "TRADES", "5 mins", False, start, end, now=CLOCK_AT)
    ]
    got = [b.volume for b in bars]
    if sv < 163:
        assert got == [round(v / 100) * 100 for v in shares]
    else:
        assert got == pytest.approx(shares, abs=1e-6)
