"""Tests for ibdata._planner: a time range cut into historical requests IB accepts."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ibdata._planner import DEFAULT_SPANS, Chunk, chunk_span, plan, plan_gaps, validate_span
from ibdata.models import BarSize
from ibdata.sim import Catalog, ContractQuery, SimContract
from ibdata.sim._history import plan_bars

UTC = dt.timezone.utc
NY = ZoneInfo("US/Eastern")
TODAY = dt.date(2025, 3, 12)
SMALL_BARS = [
    BarSize.ONE_SECOND,
    BarSize.FIVE_SECONDS,
    BarSize.TEN_SECONDS,
    BarSize.FIFTEEN_SECONDS,
    BarSize.THIRTY_SECONDS,
]
ZONES = [
    "UTC",
    "US/Eastern",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Sydney",
    "America/St_Johns",
]
THREE_YEARS = 3 * 366 * 86_400
#: The simulator validates at most this many chunks of each plan (oldest, newest, middle).
SIM_CHECKS_PER_PLAN = 3


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    """An aware UTC datetime."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture(scope="module")
def aapl() -> SimContract:
    """AAPL from the simulator's default catalog (New York hours, zone US/Eastern)."""
    query = ContractQuery(symbol="AAPL", sec_type="STK", exchange="SMART", currency="USD")
    return Catalog.default(TODAY).resolve(query, TODAY)


def sim_window(contract: SimContract, bar_size: BarSize, chunk: Chunk) -> dt.datetime:
    """The start of the window the simulator serves for a chunk; raises SimError if refused."""
    served = plan_bars(
        contract,
        end_text=chunk.end_date_time,
        bar_size=bar_size.value,
        duration=chunk.duration,
        use_rth=False,
        what_to_show="TRADES",
        format_date=2,
        keep_up_to_date=False,
        now=chunk.end + dt.timedelta(days=1),
        login_tz="America/Chicago",
    )
    assert served.end == chunk.end
    return served.start


def check_cover(chunks: list[Chunk], start: dt.datetime, end: dt.datetime) -> None:
    """Assert that the chunks tile [start, end) exactly, oldest first, none outside it."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    assert chunks
    assert chunks[0].start <= start
    assert end <= chunks[-1].end < end + dt.timedelta(seconds=1)
    if end.microsecond == 0:
        assert chunks[-1].end == end
    for older, newer in itertools.pairwise(chunks):
        assert older.end == newer.start
    for chunk in chunks:
        assert chunk.start.tzinfo is UTC
        assert chunk.end.tzinfo is UTC
        assert chunk.start < chunk.end
        assert chunk.end > start
        assert chunk.start < end
        assert chunk.end.microsecond == 0


def sample(chunks: list[Chunk]) -> list[Chunk]:
    """A bounded selection of chunks: the oldest, the newest and one from the middle."""
    picked = {0, len(chunks) // 2, len(chunks) - 1}
    return [chunks[i] for i in sorted(picked)][:SIM_CHECKS_PER_PLAN]


@st.composite
def ranges(draw: st.DrawFn) -> tuple[dt.datetime, dt.datetime]:
    """Aware start and end in assorted zones, 1 second to 3 years apart, within 2000-2030."""
    start = draw(
        st.datetimes(
            min_value=dt.datetime(2000, 1, 1),
            max_value=dt.datetime(2026, 12, 31),
            timezones=st.sampled_from(ZONES).map(ZoneInfo),
            allow_imaginary=False,
        )
    )
    seconds = draw(
        st.one_of(
            st.integers(1, 3600),
            st.integers(1, 40 * 86_400),
            st.integers(1, THREE_YEARS),
        )
    )
    micros = draw(st.sampled_from([0, 0, 1, 999_999]))
    end = start.astimezone(UTC) + dt.timedelta(seconds=seconds, microseconds=micros)
    return start, end.astimezone(ZoneInfo(draw(st.sampled_from(ZONES))))


@pytest.mark.parametrize("bar_size", list(BarSize))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(span=ranges(), in_new_york=st.booleans())
def test_plan_tiles_the_range_with_requests_the_simulator_accepts(
    aapl: SimContract,
    bar_size: BarSize,
    span: tuple[dt.datetime, dt.datetime],
    in_new_york: bool,
) -> None:
    """Any range is tiled exactly by valid chunks whose windows the simulator serves as planned."""
    start, end = span
    time_zone = "US/Eastern" if in_new_york else None
    chunks = plan(start, end, bar_size, time_zone=time_zone)
    check_cover(chunks, start, end)
    span_duration, span_length = chunk_span(bar_size)
    for i, chunk in enumerate(chunks):
        validate_span(bar_size, chunk.duration)
        count, unit = chunk.duration.split(" ")
        assert unit in ("S", "W")
        if i > 0:
            assert chunk.duration == span_duration
        if unit == "S" or time_zone is None:
            length = int(count) * (1 if unit == "S" else 7 * 86_400)
            assert chunk.end - chunk.start == dt.timedelta(seconds=length)
        if i > 0 and time_zone is None:
            assert chunk.end - chunk.start == span_length
    for chunk in sample(chunks):
        served_start = sim_window(aapl, bar_size, chunk)
        if time_zone is not None or chunk.duration.endswith(" S"):
            assert served_start == chunk.start


@st.composite
def gap_lists(draw: st.DrawFn) -> list[tuple[dt.datetime, dt.datetime]]:
    """Up to six UTC gaps, possibly overlapping, touching or out of order."""
    origin = utc(2020, 1, 1)
    gaps = []
    for _ in range(draw(st.integers(0, 6))):
        first = draw(st.integers(0, 200 * 86_400))
        length = draw(st.one_of(st.integers(1, 7200), st.integers(1, 30 * 86_400)))
        begin = origin + dt.timedelta(seconds=first)
        gaps.append((begin, begin + dt.timedelta(seconds=length)))
    return gaps


@pytest.mark.parametrize(
    "bar_size",
    [
        BarSize.ONE_SECOND,
        BarSize.THIRTY_SECONDS,
        BarSize.ONE_MINUTE,
        BarSize.FIVE_MINUTES,
        BarSize.ONE_HOUR,
        BarSize.ONE_DAY,
        BarSize.ONE_MONTH,
    ],
)
@settings(max_examples=40, deadline=None)
@given(gaps=gap_lists())
def test_plan_gaps_cover_every_gap_without_overlap(
    bar_size: BarSize, gaps: list[tuple[dt.datetime, dt.datetime]]
) -> None:
    """Chunks for several gaps are oldest first, never overlap, cover each gap and touch one."""
    chunks = plan_gaps(gaps, bar_size)
    if not gaps:
        assert chunks == []
        return
    for older, newer in itertools.pairwise(chunks):
        assert older.end <= newer.start
    for gap_start, gap_end in gaps:
        inside = [c for c in chunks if c.end > gap_start and c.start < gap_end]
        assert inside[0].start <= gap_start
        assert inside[-1].end >= gap_end
        for older, newer in itertools.pairwise(inside):
            assert older.end == newer.start
    for chunk in chunks:
        validate_span(bar_size, chunk.duration)
        assert any(chunk.end > a and chunk.start < b for a, b in gaps)


def test_default_spans_cover_every_bar_size_and_the_simulator_accepts_them(
    aapl: SimContract,
) -> None:
    """Every bar size has a default span in S or W that validates and the simulator serves."""
    assert set(DEFAULT_SPANS) == set(BarSize)
    end = utc(2024, 6, 3, 12)
    for bar_size, duration in DEFAULT_SPANS.items():
        validate_span(bar_size, duration)
        assert duration.endswith((" S", " W"))
        length = chunk_span(bar_size)[1]
        chunk = plan(end - length, end, bar_size, time_zone=aapl.time_zone_id)[-1]
        assert chunk.duration == duration
        assert sim_window(aapl, bar_size, chunk) == chunk.start


def test_default_spans_match_the_documented_table() -> None:
    """The default spans are IB's small-bar limits and a few thousand bars for larger bars."""
    assert DEFAULT_SPANS[BarSize.ONE_SECOND] == "1800 S"
    assert DEFAULT_SPANS[BarSize.FIVE_SECONDS] == "3600 S"
    assert DEFAULT_SPANS[BarSize.TEN_SECONDS] == "14400 S"
    assert DEFAULT_SPANS[BarSize.FIFTEEN_SECONDS] == "14400 S"
    assert DEFAULT_SPANS[BarSize.THIRTY_SECONDS] == "28800 S"
    assert DEFAULT_SPANS[BarSize.ONE_MINUTE] == "86400 S"
    assert DEFAULT_SPANS[BarSize.FIVE_MINUTES] == "2 W"
    assert DEFAULT_SPANS[BarSize.ONE_HOUR] == "26 W"
    assert DEFAULT_SPANS[BarSize.ONE_DAY] == "52 W"
    for bar_size, duration in DEFAULT_SPANS.items():
        bars = chunk_span(bar_size)[1].total_seconds() / bar_size.seconds
        assert bars <= 5040, (bar_size, duration)


def test_a_year_of_one_minute_bars_takes_one_request_per_day() -> None:
    """A 365-day year of 1-min bars is 365 requests of 86400 S, ending at midnight UTC."""
    chunks = plan(utc(2023, 1, 1), utc(2024, 1, 1), BarSize.ONE_MINUTE)
    assert len(chunks) == 365
    assert {c.duration for c in chunks} == {"86400 S"}
    assert chunks[0].start == utc(2023, 1, 1)
    assert chunks[-1].end_date_time == "20240101-00:00:00"


def test_three_years_of_daily_bars_take_four_requests_the_oldest_shortened() -> None:
    """Daily bars come in 52-week requests; the oldest has only the weeks it needs."""
    chunks = plan(utc(2021, 1, 1), utc(2024, 1, 1), "1 day")
    assert [c.duration for c in chunks] == ["1 W", "52 W", "52 W", "52 W"]
    assert chunks[0].start <= utc(2021, 1, 1) < chunks[0].end


@pytest.mark.parametrize(
    ("bar_size", "seconds", "expected"),
    [
        (BarSize.ONE_MINUTE, 90 * 60, "5400 S"),
        (BarSize.ONE_MINUTE, 90 * 60 + 1, "5460 S"),
        (BarSize.ONE_MINUTE, 30, "60 S"),
        (BarSize.ONE_SECOND, 10, "60 S"),
        (BarSize.ONE_SECOND, 100, "100 S"),
        (BarSize.THIRTY_SECONDS, 95, "120 S"),
        (BarSize.FIVE_MINUTES, 10 * 86_400, "2 W"),
        (BarSize.FIVE_MINUTES, 3 * 86_400, "1 W"),
        (BarSize.ONE_DAY, 10 * 86_400, "2 W"),
        (BarSize.ONE_WEEK, 86_400, "1 W"),
        (BarSize.ONE_MONTH, 3 * 86_400, "5 W"),
    ],
)
def test_the_oldest_chunk_is_shortened_to_what_reaches_the_start(
    bar_size: BarSize, seconds: int, expected: str
) -> None:
    """A short range gets one request of whole bars (at least 60 S) or whole weeks."""
    end = utc(2024, 5, 8, 15, 30)
    (chunk,) = plan(end - dt.timedelta(seconds=seconds), end, bar_size)
    assert chunk.duration == expected
    assert chunk.end == end


def test_a_range_of_one_day_of_one_second_bars_takes_48_requests() -> None:
    """One day of 1-sec bars is 48 requests of 1800 S (the classic table's limit)."""
    chunks = plan(utc(2024, 5, 8), utc(2024, 5, 9), "1 secs")
    assert len(chunks) == 48
    assert {c.duration for c in chunks} == {"1800 S"}


def test_spans_override_the_defaults() -> None:
    """spans= replaces the default duration of the bar sizes it names, by enum or string."""
    hourly = plan(utc(2024, 5, 8), utc(2024, 5, 9), BarSize.ONE_MINUTE, spans={"1 min": "3600 S"})  # type: ignore[dict-item]
    assert len(hourly) == 24
    assert chunk_span(BarSize.ONE_HOUR, {BarSize.ONE_HOUR: "4 W"}) == (
        "4 W",
        dt.timedelta(weeks=4),
    )
    assert chunk_span(BarSize.ONE_DAY, {BarSize.ONE_HOUR: "4 W"}) == (
        "52 W",
        dt.timedelta(weeks=52),
    )


@pytest.mark.parametrize(
    ("bar_size", "duration", "match"),
    [
        (BarSize.ONE_MINUTE, "1 D", "S .seconds. or W"),
        (BarSize.ONE_DAY, "1 M", "S .seconds. or W"),
        (BarSize.ONE_DAY, "1 Y", "S .seconds. or W"),
        (BarSize.ONE_DAY, "400 D", "S .seconds. or W"),
        (BarSize.ONE_SECOND, "1801 S", "too long for 1 secs"),
        (BarSize.FIVE_SECONDS, "3601 S", "too long for 5 secs"),
        (BarSize.TEN_SECONDS, "14401 S", "too long"),
        (BarSize.FIFTEEN_SECONDS, "14401 S", "too long"),
        (BarSize.THIRTY_SECONDS, "28801 S", "too long"),
        (BarSize.THIRTY_SECONDS, "1 W", "in seconds only"),
        (BarSize.ONE_MINUTE, "86401 S", "limit of 86400 S"),
        (BarSize.ONE_HOUR, "53 W", "limit of 52 W"),
        (BarSize.ONE_HOUR, "1800 S", "shorter than one 1 hour bar"),
        (BarSize.ONE_MONTH, "4 W", "shorter than one"),
        (BarSize.ONE_MINUTE, "0 S", "positive integer"),
        (BarSize.ONE_MINUTE, "60S", "positive integer"),
        (BarSize.ONE_MINUTE, "", "positive integer"),
        ("1 sec", "60 S", "bar_size"),
    ],
)
def test_validate_span_refuses_what_ib_would(
    bar_size: BarSize | str, duration: str, match: str
) -> None:
    """Spans in D, M or Y, too long for the bar size, shorter than a bar or malformed fail."""
    with pytest.raises(ValueError, match=match):
        validate_span(bar_size, duration)


@pytest.mark.parametrize(
    ("bar_size", "duration"),
    [
        (BarSize.ONE_SECOND, "1800 S"),
        (BarSize.ONE_SECOND, "1 S"),
        (BarSize.THIRTY_SECONDS, "28800 S"),
        (BarSize.ONE_MINUTE, "86400 S"),
        (BarSize.ONE_DAY, "86400 S"),
        (BarSize.EIGHT_HOURS, "52 W"),
        ("1M", "5 W"),
    ],
)
def test_validate_span_accepts_ibs_limits(bar_size: BarSize | str, duration: str) -> None:
    """Spans up to IB's limits, in S or W, pass."""
    validate_span(bar_size, duration)


def test_validate_span_refuses_a_duration_that_is_not_a_string() -> None:
    """A duration given as a number is a TypeError."""
    with pytest.raises(TypeError, match="duration"):
        validate_span(BarSize.ONE_MINUTE, 3600)  # type: ignore[arg-type]


def test_plan_refuses_bad_span_overrides() -> None:
    """A refused override fails planning with the bar size it was given for."""
    with pytest.raises(ValueError, match=r"spans\['1 min'\].*S \(seconds\) or W"):
        plan(utc(2024, 1, 1), utc(2024, 1, 2), "1 min", spans={BarSize.ONE_MINUTE: "1 D"})
    with pytest.raises(ValueError, match=r"spans\['5 secs'\].*seconds only"):
        plan(utc(2024, 1, 1), utc(2024, 1, 2), "1 min", spans={BarSize.FIVE_SECONDS: "1 W"})
    with pytest.raises(ValueError, match="more than one duration"):
        chunk_span("1 week", {BarSize.ONE_WEEK: "1 W", "1W": "2 W"})  # type: ignore[dict-item]


def test_plan_refuses_naive_datetimes() -> None:
    """Naive start or end datetimes are refused with the parameter's name."""
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        plan(dt.datetime(2024, 1, 1), utc(2024, 1, 2), BarSize.ONE_HOUR)
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        plan(utc(2024, 1, 1), dt.datetime(2024, 1, 2), BarSize.ONE_HOUR)
    with pytest.raises(ValueError, match=r"gaps\[1\] end must be timezone-aware"):
        plan_gaps(
            [(utc(2024, 1, 1), utc(2024, 1, 2)), (utc(2024, 1, 3), dt.datetime(2024, 1, 4))],
            BarSize.ONE_HOUR,
        )


def test_plan_refuses_an_empty_or_reversed_range() -> None:
    """start must be before end, in plan and in every gap."""
    with pytest.raises(ValueError, match="start must be before end"):
        plan(utc(2024, 1, 2), utc(2024, 1, 2), BarSize.ONE_HOUR)
    with pytest.raises(ValueError, match="start must be before end"):
        plan(utc(2024, 1, 2), utc(2024, 1, 1), BarSize.ONE_HOUR)
    with pytest.raises(ValueError, match=r"gaps\[0\] must start before it ends"):
        plan_gaps([(utc(2024, 1, 2), utc(2024, 1, 1))], BarSize.ONE_HOUR)


def test_plan_refuses_an_unknown_bar_size_or_time_zone() -> None:
    """Bar sizes and zone names outside IB's sets fail with ValueError."""
    with pytest.raises(ValueError, match="bar_size"):
        plan(utc(2024, 1, 1), utc(2024, 1, 2), "1 sec")
    with pytest.raises(ValueError, match="time_zone: unknown time zone"):
        plan(utc(2024, 1, 1), utc(2024, 1, 2), "1 hour", time_zone="Mars/Olympus")


def test_plan_converts_to_utc_and_formats_the_end_date_time() -> None:
    """Chunks are in UTC and their endDateTime is IB's dashed UTC form."""
    tokyo = ZoneInfo("Asia/Tokyo")
    (chunk,) = plan(
        dt.datetime(2024, 3, 5, 23, 0, tzinfo=tokyo),
        dt.datetime(2024, 3, 5, 23, 30, 15, tzinfo=tokyo),
        BarSize.ONE_MINUTE,
    )
    assert chunk.end == utc(2024, 3, 5, 14, 30, 15)
    assert chunk.end_date_time == "20240305-14:30:15"
    assert chunk.duration == "1860 S"


def test_a_fractional_end_is_rounded_up_to_a_whole_second() -> None:
    """endDateTime has whole seconds, so the newest chunk ends at the next second."""
    (chunk,) = plan(
        utc(2024, 3, 5, 14), utc(2024, 3, 5, 14, 30, 0) + dt.timedelta(microseconds=5), "1 min"
    )
    assert chunk.end == utc(2024, 3, 5, 14, 30, 1)
    assert chunk.end_date_time == "20240305-14:30:01"


def test_weeks_follow_the_instruments_calendar_across_daylight_saving(
    aapl: SimContract,
) -> None:
    """With the instrument's zone, a week across the March change is 167 hours, as simulated."""
    end = utc(2024, 3, 14)
    start = end - dt.timedelta(days=7)
    in_new_york = plan(start, end, BarSize.TWO_MINUTES, time_zone=NY)
    assert [c.duration for c in in_new_york] == ["1 W", "1 W"]
    assert in_new_york[1].start == utc(2024, 3, 7, 1)
    for chunk in in_new_york:
        assert sim_window(aapl, BarSize.TWO_MINUTES, chunk) == chunk.start
    (in_utc,) = plan(start, end, BarSize.TWO_MINUTES)
    assert in_utc.start == start


def test_plan_gaps_joins_gaps_closer_than_a_chunk() -> None:
    """Two gaps a few minutes apart on weekly chunks become one request, not two overlapping."""
    gaps = [(utc(2024, 5, 1), utc(2024, 5, 2)), (utc(2024, 5, 2, 0, 5), utc(2024, 5, 3))]
    (chunk,) = plan_gaps(gaps, BarSize.FIVE_MINUTES)
    assert chunk.duration == "1 W"
    assert chunk.start <= utc(2024, 5, 1)
    assert chunk.end == utc(2024, 5, 3)


def test_plan_gaps_plans_distant_gaps_separately_oldest_first() -> None:
    """Gaps far apart are planned one by one, in time order whatever order they came in."""
    gaps = [(utc(2024, 5, 8, 10), utc(2024, 5, 8, 11)), (utc(2024, 5, 1, 10), utc(2024, 5, 1, 11))]
    chunks = plan_gaps(gaps, BarSize.ONE_MINUTE)
    assert [(c.start, c.end, c.duration) for c in chunks] == [
        (utc(2024, 5, 1, 10), utc(2024, 5, 1, 11), "3600 S"),
        (utc(2024, 5, 8, 10), utc(2024, 5, 8, 11), "3600 S"),
    ]


def test_plan_gaps_refuses_something_that_is_not_a_pair() -> None:
    """A gap must be a (start, end) pair."""
    with pytest.raises(TypeError, match=r"gaps\[0\] must be a \(start, end\) pair"):
        plan_gaps([(utc(2024, 1, 1),)], BarSize.ONE_HOUR)  # type: ignore[list-item]
