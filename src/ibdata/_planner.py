"""The request planner of the history engine: a time range cut into IB historical requests.

IB answers one ``reqHistoricalData`` with the bars of a window given as an end date and a
duration. :func:`plan` cuts any range ``[start, end)`` into such windows (:class:`Chunk`),
oldest first, contiguous and without overlap, each small enough for IB to accept and to
answer quickly. :func:`plan_gaps` does the same for the intervals a cache is missing.

Only duration units with an exact length are used: ``S`` (seconds) and ``W`` (weeks of seven
calendar days). ``D`` counts trading sessions and ``M``/``Y`` calendar months and years, so
chunks written in them would leave gaps or overlap; spans in those units are refused.

The span of one chunk per bar size (:data:`DEFAULT_SPANS`, overridable with ``spans=``):

==============================  ==========  =============================================
bar size                        span        bars per chunk at most (24-hour instrument)
==============================  ==========  =============================================
``1 secs``                      1800 S      1,800 (IB's classic step table; Campus: 2000 S)
``5 secs``                      3600 S      720
``10 secs``                     14400 S     1,440
``15 secs``                     14400 S     960
``30 secs``                     28800 S     960
``1 min``                       86400 S     1,440
``2 mins``                      1 W         5,040
``3 mins``                      1 W         3,360
``5 mins``                      2 W         4,032
``10 mins``                     4 W         4,032
``15 mins``                     6 W         4,032
``20 mins``                     8 W         4,032
``30 mins``                     12 W        4,032
``1 hour``                      26 W        4,368
``2 hours`` … ``8 hours``       52 W        4,368 (2 hours) or fewer
``1 day``, ``1 week``,          52 W        364, 52, 12
``1 month``
==============================  ==========  =============================================

IB's limits, checked by :func:`validate_span`: bars of 30 secs or less take ``S`` durations
only, up to the values in the table (hard limits; longer ones answer 162 "Time length
exceed max."); every bar size takes at most 86,400 S or 52 W. A span shorter than one bar
is refused too. See `IB's historical data limitations
<https://interactivebrokers.github.io/tws-api/historical_limitations.html>`_.

Weeks and time zones. A week back from an end date is seven calendar days in the
instrument's zone (that is how the simulator reads ``N W``), so across a daylight-saving
change it lasts 167 or 169 hours. Pass the instrument's zone
(:attr:`ibdata.models.ContractDetails.time_zone_id`) as ``time_zone`` and ``W`` chunks
follow that rule and meet exactly; without it a week is 168 hours of UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

import attrs

from ibdata import _validate
from ibdata._convert import end_date_time, zone
from ibdata.models import BarSize

__all__ = [
    "DEFAULT_SPANS",
    "Chunk",
    "chunk_span",
    "parse_duration",
    "plan",
    "plan_gaps",
    "validate_span",
]

UTC: Final = dt.timezone.utc
_SECOND: Final = dt.timedelta(seconds=1)
_WEEK_SECONDS: Final = 7 * 86_400
_MAX_SECONDS: Final = 86_400
_MAX_WEEKS: Final = 52
_MIN_SECONDS: Final = 60  # the shortest duration in IB's step-size table
_DURATION: Final = re.compile(r"([1-9][0-9]{0,8}) ([SDWMY])")

#: The longest ``S`` duration IB serves for bars of 30 secs or less, which take no other
#: unit. ``1 secs`` uses the classic step table's 1800 S rather than Campus' 2000 S.
_SMALL_BAR_MAX_SECONDS: Final[Mapping[BarSize, int]] = MappingProxyType(
    {
        BarSize.ONE_SECOND: 1800,
        BarSize.FIVE_SECONDS: 3600,
        BarSize.TEN_SECONDS: 14_400,
        BarSize.FIFTEEN_SECONDS: 14_400,
        BarSize.THIRTY_SECONDS: 28_800,
    }
)

#: The duration of one chunk for each bar size (see the table in the module docstring).
DEFAULT_SPANS: Final[Mapping[BarSize, str]] = MappingProxyType(
    {
        BarSize.ONE_SECOND: "1800 S",
        BarSize.FIVE_SECONDS: "3600 S",
        BarSize.TEN_SECONDS: "14400 S",
        BarSize.FIFTEEN_SECONDS: "14400 S",
        BarSize.THIRTY_SECONDS: "28800 S",
        BarSize.ONE_MINUTE: "86400 S",
        BarSize.TWO_MINUTES: "1 W",
        BarSize.THREE_MINUTES: "1 W",
        BarSize.FIVE_MINUTES: "2 W",
        BarSize.TEN_MINUTES: "4 W",
        BarSize.FIFTEEN_MINUTES: "6 W",
        BarSize.TWENTY_MINUTES: "8 W",
        BarSize.THIRTY_MINUTES: "12 W",
        BarSize.ONE_HOUR: "26 W",
        BarSize.TWO_HOURS: "52 W",
        BarSize.THREE_HOURS: "52 W",
        BarSize.FOUR_HOURS: "52 W",
        BarSize.EIGHT_HOURS: "52 W",
        BarSize.ONE_DAY: "52 W",
        BarSize.ONE_WEEK: "52 W",
        BarSize.ONE_MONTH: "52 W",
    }
)


@attrs.frozen
class Chunk:
    """One historical-data request of a plan: the window ``[start, end)``.

    Attributes:
        start: Aware UTC start of the window the request covers.
        end: Aware UTC end of the window, sent as the request's ``endDateTime``; always a
            whole second.
        duration: IB's duration string for the window, ``"<n> S"`` or ``"<n> W"``.
    """

    start: dt.datetime
    end: dt.datetime
    duration: str

    @property
    def end_date_time(self) -> str:
        """The ``endDateTime`` to send: :attr:`end` in IB's UTC form ``yyyymmdd-hh:mm:ss``."""
        return end_date_time(self.end)


def parse_duration(duration: str) -> tuple[int, str]:
    """The count and unit of a duration string (``"<positive int> <S|D|W|M|Y>"``)."""
    match = _DURATION.fullmatch(duration)
    if match is None:
        raise ValueError(
            f"duration must be '<positive integer> <unit>' with unit S or W "
            f"(e.g. '3600 S', '2 W'); got {duration!r}"
        )
    return int(match.group(1)), match.group(2)


def validate_span(bar_size: BarSize | str, duration: str) -> None:
    """Check that IB accepts ``duration`` as the span of one chunk of ``bar_size`` bars.

    Args:
        bar_size: The bar size, a :class:`~ibdata.models.BarSize` or IB's string.
        duration: IB's duration string, ``"<n> S"`` or ``"<n> W"``.

    Raises:
        TypeError: ``duration`` is not a string, or ``bar_size`` neither a bar size nor a
            string.
        ValueError: ``bar_size`` is not one of IB's bar sizes; ``duration`` is malformed,
            uses a unit other than ``S`` or ``W`` (``D`` counts trading sessions, ``M`` and
            ``Y`` calendar months, so chunks would gap or overlap), is longer than IB allows
            for the bar size (86,400 S or 52 W; for bars of 30 secs or less ``S`` only, up to
            1800, 3600, 14,400, 14,400 and 28,800 S), or shorter than one bar.
    """
    bar = _validate.bar_size(bar_size)
    if not isinstance(duration, str):
        raise TypeError(f"duration must be a string like '3600 S' or '2 W', got {duration!r}")
    count, unit = parse_duration(duration)
    if unit not in ("S", "W"):
        raise ValueError(
            f"duration must be in S (seconds) or W (weeks), got {duration!r}: IB counts D in "
            "trading sessions and M and Y in calendar months, so chunks would gap or overlap"
        )
    limit = _MAX_SECONDS if unit == "S" else _MAX_WEEKS
    if count > limit:
        raise ValueError(f"duration {duration!r} exceeds IB's limit of {limit} {unit}")
    small = _SMALL_BAR_MAX_SECONDS.get(bar)
    if small is not None and unit != "S":
        raise ValueError(
            f"duration {duration!r} is not allowed for {bar.value} bars: IB takes them in "
            f"seconds only, at most {small} S"
        )
    if small is not None and count > small:
        raise ValueError(
            f"duration {duration!r} is too long for {bar.value} bars: IB allows at most "
            f"{small} S for them"
        )
    seconds = count if unit == "S" else count * _WEEK_SECONDS
    if seconds < bar.seconds:
        raise ValueError(f"duration {duration!r} is shorter than one {bar.value} bar")


def _spans(spans: Mapping[BarSize, str] | None) -> Mapping[BarSize, str]:
    """The defaults updated with the checked overrides."""
    if spans is None:
        return DEFAULT_SPANS
    if not isinstance(spans, Mapping):
        raise TypeError(f"spans must be a mapping of bar size to duration, got {spans!r}")
    merged = dict(DEFAULT_SPANS)
    seen: set[BarSize] = set()
    for key, duration in spans.items():
        bar = _validate.bar_size(key)
        if bar in seen:
            raise ValueError(f"spans gives more than one duration for {bar.value} bars")
        seen.add(bar)
        try:
            validate_span(bar, duration)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"spans[{bar.value!r}]: {exc}") from None
        merged[bar] = duration
    return merged


def chunk_span(
    bar_size: BarSize | str, spans: Mapping[BarSize, str] | None = None
) -> tuple[str, dt.timedelta]:
    """The duration of one chunk of ``bar_size`` bars and its nominal length.

    Args:
        bar_size: The bar size, a :class:`~ibdata.models.BarSize` or IB's string.
        spans: Durations overriding :data:`DEFAULT_SPANS` for some bar sizes; every entry
            is checked with :func:`validate_span`.

    Returns:
        The duration string and its length (``N W`` is ``N`` times 168 hours; see the module
        docs for weeks across daylight-saving changes).

    Raises:
        TypeError: A bar size or duration of the wrong type.
        ValueError: An unknown bar size, or a duration :func:`validate_span` refuses.
    """
    bar = _validate.bar_size(bar_size)
    duration = _spans(spans)[bar]
    count, unit = parse_duration(duration)
    return duration, dt.timedelta(seconds=count if unit == "S" else count * _WEEK_SECONDS)


def _tz(time_zone: str | dt.tzinfo | None) -> dt.tzinfo:
    if time_zone is None:
        return UTC
    if isinstance(time_zone, dt.tzinfo):
        return time_zone
    if isinstance(time_zone, str):
        try:
            return zone(time_zone)
        except ValueError as exc:
            raise ValueError(f"time_zone: {exc}") from None
    raise TypeError(f"time_zone must be a zone name, a tzinfo or None, got {time_zone!r}")


def _utc(value: object, name: str) -> dt.datetime:
    return _validate.aware(value, name).astimezone(UTC)


def _ceil_second(t: dt.datetime) -> dt.datetime:
    if t.microsecond:
        return t.replace(microsecond=0) + _SECOND
    return t


def _ceil_seconds(delta: dt.timedelta) -> int:
    return -(-(delta // dt.timedelta(microseconds=1)) // 1_000_000)


def _weeks_back(end: dt.datetime, weeks: int, tz: dt.tzinfo) -> dt.datetime:
    """``weeks`` times 7 calendar days before ``end`` in ``tz`` (wall-clock), in UTC."""
    return (end.astimezone(tz) - dt.timedelta(days=7 * weeks)).astimezone(UTC)


def _plan_utc(
    start: dt.datetime, end: dt.datetime, bar: BarSize, duration: str, tz: dt.tzinfo
) -> list[Chunk]:
    """Chunks for a checked range in UTC, oldest first."""
    count, unit = parse_duration(duration)
    newest_first: list[Chunk] = []
    chunk_end = _ceil_second(end)
    while True:
        if unit == "S":
            chunk_start = chunk_end - dt.timedelta(seconds=count)
        else:
            chunk_start = _weeks_back(chunk_end, count, tz)
        if chunk_start > start:
            newest_first.append(Chunk(chunk_start, chunk_end, duration))
            chunk_end = chunk_start
            continue
        # The oldest chunk: as short as still reaches back to ``start``.
        if unit == "S":
            needed = max(_ceil_seconds(chunk_end - start), _MIN_SECONDS, bar.seconds)
            needed = -(-needed // bar.seconds) * bar.seconds  # whole bars
            seconds = min(count, needed)
            oldest = Chunk(chunk_end - dt.timedelta(seconds=seconds), chunk_end, f"{seconds} S")
        else:
            weeks = max(
                -(-_ceil_seconds(chunk_end - start) // _WEEK_SECONDS),
                -(-bar.seconds // _WEEK_SECONDS),  # at least one bar
            )
            weeks = min(count, weeks)
            while weeks < count and _weeks_back(chunk_end, weeks, tz) > start:
                weeks += 1  # a week shortened by a daylight-saving change
            oldest = Chunk(_weeks_back(chunk_end, weeks, tz), chunk_end, f"{weeks} W")
        newest_first.append(oldest)
        break
    newest_first.reverse()
    return newest_first


def plan(
    start: dt.datetime,
    end: dt.datetime,
    bar_size: BarSize | str,
    *,
    spans: Mapping[BarSize, str] | None = None,
    time_zone: str | dt.tzinfo | None = None,
) -> list[Chunk]:
    """Cut ``[start, end)`` into historical-data requests for ``bar_size`` bars.

    Every chunk but the oldest spans the bar size's duration (:func:`chunk_span`). The newest
    chunk ends at ``end`` (rounded up to a whole second, since ``endDateTime`` has no
    fractions); each older chunk ends where the next one starts, so the chunks meet exactly
    and never overlap; the oldest one starts at or before ``start``. It is shortened to what
    still reaches ``start``: whole bars and at least 60 S for an ``S`` span, whole weeks
    (and at least one bar) for a ``W`` span. No chunk lies outside ``[start, end)``.

    Args:
        start: Aware start of the range (inclusive), any zone.
        end: Aware end of the range (exclusive), any zone.
        bar_size: The bar size, a :class:`~ibdata.models.BarSize` or IB's string.
        spans: Durations overriding :data:`DEFAULT_SPANS` for some bar sizes, each checked
            with :func:`validate_span`.
        time_zone: The instrument's zone (IB's ``timeZoneId`` such as ``"US/Eastern"``, or a
            tzinfo), in which ``W`` durations count calendar days; None counts weeks as
            168 hours (see the module docs).

    Returns:
        The chunks, oldest first, with UTC times.

    Raises:
        TypeError: ``start`` or ``end`` is not a datetime, or another argument has the wrong
            type.
        ValueError: ``start`` or ``end`` is naive, ``start`` is not before ``end``, the bar
            size or time zone is unknown, or a span in ``spans`` is refused by
            :func:`validate_span`.
    """
    start_utc = _utc(start, "start")
    end_utc = _utc(end, "end")
    if start_utc >= end_utc:
        raise ValueError(f"start must be before end; got start={start!r}, end={end!r}")
    bar = _validate.bar_size(bar_size)
    duration, _ = chunk_span(bar, spans)
    return _plan_utc(start_utc, end_utc, bar, duration, _tz(time_zone))


def plan_gaps(
    gaps: Iterable[tuple[dt.datetime, dt.datetime]],
    bar_size: BarSize | str,
    *,
    spans: Mapping[BarSize, str] | None = None,
    time_zone: str | dt.tzinfo | None = None,
) -> list[Chunk]:
    """Plan the requests for the intervals a cache is missing, oldest first.

    Overlapping or touching gaps are joined. Each gap is planned like :func:`plan`; when the
    oldest chunk of a gap would reach into the chunks of the gap before it (the data cached
    between them is shorter than a chunk), the two gaps are planned as one interval instead,
    which refetches that short stretch rather than sending overlapping requests. So the
    chunks never overlap, each one covers part of a gap, and together they cover every gap.

    Args:
        gaps: ``(start, end)`` pairs of aware datetimes, ``start`` before ``end``, in any
            order.
        bar_size: The bar size, a :class:`~ibdata.models.BarSize` or IB's string.
        spans: Durations overriding :data:`DEFAULT_SPANS` (see :func:`plan`).
        time_zone: The instrument's zone for ``W`` durations (see :func:`plan`).

    Returns:
        The chunks of all gaps, oldest first.

    Raises:
        TypeError: A gap is not a pair of datetimes, or another argument has the wrong type.
        ValueError: A gap has a naive bound or does not start before it ends, or as for
            :func:`plan`.
    """
    bar = _validate.bar_size(bar_size)
    duration, _ = chunk_span(bar, spans)
    tz = _tz(time_zone)
    intervals: list[tuple[dt.datetime, dt.datetime]] = []
    for i, gap in enumerate(gaps):
        try:
            first_value, last_value = gap
        except (TypeError, ValueError):
            raise TypeError(f"gaps[{i}] must be a (start, end) pair, got {gap!r}") from None
        gap_start = _utc(first_value, f"gaps[{i}] start")
        gap_end = _utc(last_value, f"gaps[{i}] end")
        if gap_start >= gap_end:
            raise ValueError(f"gaps[{i}] must start before it ends, got {gap!r}")
        intervals.append((gap_start, gap_end))
    intervals.sort()
    joined: list[tuple[dt.datetime, dt.datetime]] = []
    for gap_start, gap_end in intervals:
        if joined and gap_start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], gap_end))
        else:
            joined.append((gap_start, gap_end))
    planned: list[tuple[dt.datetime, list[Chunk]]] = []
    for gap_start, gap_end in joined:
        first = gap_start
        chunks = _plan_utc(first, gap_end, bar, duration, tz)
        while planned and chunks[0].start < planned[-1][1][-1].end:
            first = planned.pop()[0]
            chunks = _plan_utc(first, gap_end, bar, duration, tz)
        planned.append((first, chunks))
    return [chunk for _, chunks in planned for chunk in chunks]
