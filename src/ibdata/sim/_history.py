"""Validating reqHistoricalData and reqHeadTimestamp the way TWS does, and planning the window.

:func:`plan_bars` turns the request's text fields into a :class:`BarsPlan` (the UTC window to
generate bars for, plus warnings such as 2174) or raises :class:`~ibdata.sim._model.SimError`
with the code and text TWS sends. Checks run in this order, the first failure wins:

1. bar size (321); 2. duration grammar and unit overflow (321); 3. ``formatDate`` (321);
4. unknown ``whatToShow`` (321); 5. ``ADJUSTED_LAST`` / ``keepUpToDate`` / ``CONTFUT`` named by
symbol with an end date (321, 321, 10339; a ``CONTFUT`` named by conId is served, as a real
capture shows), then ``keepUpToDate`` restrictions (321); 6. ``endDateTime``
syntax (10314); 7. ``whatToShow`` not offered for the instrument (162, or 10299 for crypto
``TRADES``), ``SCHEDULE`` with non-daily bars (10295); 8. duration too long for the bar size
(162 ``Time length exceed max.``). 321 texts read ``Error validating request.-'xx' : cause -
<cause>``; the two-letter tag varies between real TWS builds and is arbitrary here.

Duration limits. Every bar size accepts at most 86,400 S, 365 D, 52 W, 12 M or 68 Y (IB's
"max duration per bar size" table); more D, W or M answer 321 "must be made in years", more S
or Y answer 162 "Time length exceed max.". Bars of 30 secs or less are also held to the classic
step-size table (they may only use ``S``): ``1 secs`` up to 2000 S (the Campus maximum, a
little above the table's 1800 S), ``5 secs`` up to 3600 S, ``10 secs`` and ``15 secs`` up to
14,400 S, ``30 secs`` up to 28,800 S; beyond that 162 "Time length exceed max.". Bars of
1 min and more are not held to the step table (IB lifted those limits; large requests are
merely slow), so e.g. a year of 1-min bars (~100,000 bars) is served in one response.

Windows. The end is the parsed ``endDateTime`` (now when empty), clamped to now. Two window
semantics are modelled (``window_semantics``); the start/end strings of the answer report the
window of the chosen one.

``"real"`` (the default), what real TWS answers (each rule from a real capture, see the
simulator docs): durations are counted in *trading time* to pick the bars, and the reported
start is the end minus the duration in calendar time. Bars that overlap the picked window
are included (the bar containing its start too), and the last bar is cut at the end:

* ``N S``: bars covering the last N seconds of session time before the end (after the close
  that is the session's last N seconds; before the open, the previous sessions'); reported
  start = end - N seconds;
* ``N D``: bars of the N most recent sessions starting before the end (a session in progress
  counts); reported start = end - N x 24 hours;
* ``N W``, ``N M``, ``N Y``: bars overlapping the calendar window (N x 7 days, N calendar
  months or years back, wall-clock arithmetic in the instrument's zone; a day past the end
  of the target month is clipped to its last day), which is also the reported start.

``"sessions"`` (the simulator's earlier model): the reported window is the one bars are
picked from, and a bar belongs to it when it *starts* in it (whole, cut only at now):
``N S`` is exactly N seconds before the end; ``N D`` starts at the N-th most recent session
(trading sessions, liquid ones when ``useRTH``) that starts before the end, the session in
progress counting as one; ``N W``, ``N M``, ``N Y`` as above.

In both, with fewer sessions available (head timestamp, expiry) the window starts at the
first available session; with none, it is empty (162 "no data").

The six-month limit on bars of 30 secs or less is not enforced: old small bars are served.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Final
from zoneinfo import ZoneInfo

import attrs

from ibdata.sim import _bars
from ibdata.sim._model import Session, SimContract, SimError, zone

UTC = dt.timezone.utc

__all__ = [
    "KNOWN_WHAT_TO_SHOW",
    "WINDOW_SEMANTICS",
    "BarsPlan",
    "no_data_error",
    "parse_end_date_time",
    "plan_bars",
    "plan_head_timestamp",
]

HMDS: Final = "Historical Market Data Service error message:"

#: The window semantics :func:`plan_bars` models: ``"real"`` (real TWS's) and ``"sessions"``.
WINDOW_SEMANTICS: Final = ("real", "sessions")

#: Every ``whatToShow`` TWS knows; anything else is rejected with 321.
KNOWN_WHAT_TO_SHOW: Final = frozenset(
    {
        "TRADES",
        "MIDPOINT",
        "BID",
        "ASK",
        "BID_ASK",
        "ADJUSTED_LAST",
        "HISTORICAL_VOLATILITY",
        "OPTION_IMPLIED_VOLATILITY",
        "FEE_RATE",
        "REBATE_RATE",
        "YIELD_BID",
        "YIELD_ASK",
        "YIELD_BID_ASK",
        "YIELD_LAST",
        "SCHEDULE",
        "AGGTRADES",
    }
)

TEXT_2174: Final = (
    "Warning: You submitted request with date-time attributes without explicit time zone. "
    "Please switch to use yyyymmdd-hh:mm:ss in UTC or use instrument time zone, like "
    "US/Eastern. Implied time zone functionality will be removed in the next API release"
)
TEXT_10314: Final = (
    "End Date/Time: The date, time, or time-zone entered is invalid. The correct format is "
    "yyyymmdd hh:mm:ss xx/xxxx where yyyymmdd and xx/xxxx are optional. E.g.: 20031126 "
    "15:59:00 US/Eastern  Note that there is a space between the date and time, and between "
    "the time and time-zone.  If no date is specified, current date is assumed. If no "
    "time-zone is specified, local time-zone is assumed(deprecated).  You can also provide "
    "yyyymmddd-hh:mm:ss time is in UTC. Note that there is a dash between the date and time "
    "in UTC notation."
)
TEXT_10339: Final = "Setting end date/time for continuous future security type is not allowed."
TEXT_TIME_LENGTH: Final = f"{HMDS}Time length exceed max."

_LIVE_TYPES: Final = ("TRADES", "MIDPOINT", "BID", "ASK")
_DURATION: Final = re.compile(r"(\d{1,9}) ([SDWMY])")
_DATE: Final = re.compile(r"\d{8}")
_TIME: Final = re.compile(r"\d{2}:\d{2}:\d{2}")
_UNIT_LIMITS: Final = {"S": 86_400, "D": 365, "W": 52, "M": 12, "Y": 68}
_UNIT_NAMES: Final = {"D": "days", "W": "weeks", "M": "months"}
_SMALL_BAR_MAX_SECONDS: Final = {1: 2000, 5: 3600, 10: 14_400, 15: 14_400, 30: 28_800}
_MAX_SESSIONS_SCAN: Final = 4000  # calendar days scanned backwards for a "D" window


def _invalid(tag: str, cause: str) -> SimError:
    return SimError(321, f"Error validating request.-'{tag}' : cause - {cause}")


@attrs.frozen(kw_only=True)
class BarsPlan:
    """A validated reqHistoricalData: the window to serve and the warnings to send first.

    ``start`` and ``end`` are the window the answer reports (aware UTC, ``start <= end``).
    The bars that answer it are those of ``[bars_start, end)``: those that overlap it, the
    last cut at ``end``, when ``overlap`` (real TWS), else those whose start lies in it (then
    ``bars_start == start``). ``bar_size`` is the long spelling (``1 week`` for ``1W``).
    ``warnings`` are ``(code, text)`` pairs to send as error frames before the data.
    """

    start: dt.datetime
    end: dt.datetime
    bars_start: dt.datetime
    overlap: bool
    bar_size: str
    duration: str
    duration_count: int
    duration_unit: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool
    end_is_now: bool
    warnings: list[tuple[int, str]] = attrs.field(factory=list, hash=False)

    def bars(self, contract: SimContract) -> list[_bars.SimBar]:
        """The bars of this plan for ``contract`` (see :func:`ibdata.sim._bars.generate`).

        Raises:
            ValueError: For ``SCHEDULE``, which is answered with sessions
                (:func:`ibdata.sim._bars.sessions`), not bars.
        """
        return _bars.generate(
            contract,
            self.what_to_show,
            self.bar_size,
            self.use_rth,
            self.bars_start,
            self.end,
            overlap=self.overlap,
        )


def _type_name(what_to_show: str) -> str:
    return "_".join(part.capitalize() for part in what_to_show.split("_"))


def no_data_error(contract: SimContract, what_to_show: str) -> SimError:
    """The 162 TWS sends when a window holds no bars.

    ``Historical Market Data Service error message:HMDS query returned no data:
    <localSymbol>@<exchange> <Type>`` with Type ``Trades``, ``Midpoint``, ``Bid``, ``Ask``,
    ``Bid_Ask``, ``Adjusted_Last``, ``Historical_Volatility`` …
    """
    return SimError(
        162,
        f"{HMDS}HMDS query returned no data: {contract.local_symbol}@{contract.exchange} "
        f"{_type_name(what_to_show)}",
    )


def _check_format_date(format_date: int) -> None:
    if format_date not in (1, 2):
        raise _invalid("bO", f"Date formatting selection of {format_date} rejected")


def _check_what_to_show(what_to_show: str) -> None:
    if what_to_show not in KNOWN_WHAT_TO_SHOW:
        raise _invalid("bP", f"Historical data request for an invalid type: {what_to_show}")


def _check_offered(contract: SimContract, what_to_show: str) -> None:
    offered = contract.what_to_show
    if what_to_show in offered and (
        what_to_show in _bars.SUPPORTED_WHAT_TO_SHOW or what_to_show == "SCHEDULE"
    ):
        return
    if what_to_show == "TRADES" and "AGGTRADES" in offered:
        raise SimError(
            10299, "Expected what to show is AGGTRADES, please use that instead of TRADES."
        )
    name = "Last" if what_to_show == "TRADES" else _type_name(what_to_show)
    raise SimError(
        162,
        f"{HMDS}No historical market data for "
        f"{contract.symbol}/{contract.sec_type}@{contract.exchange} {name} 0",
    )


def _parse_duration(duration: str) -> tuple[int, str]:
    match = _DURATION.fullmatch(duration)
    if match is None or int(match.group(1)) <= 0:
        raise _invalid("bH", "Historical data requested duration is invalid.")
    count, unit = int(match.group(1)), match.group(2)
    if unit in _UNIT_NAMES and count > _UNIT_LIMITS[unit]:
        raise _invalid(
            "bH",
            f"Historical data requests for durations longer than {_UNIT_LIMITS[unit]} "
            f"{_UNIT_NAMES[unit]} must be made in years.",
        )
    return count, unit


def _check_length(bar_seconds: int, count: int, unit: str) -> None:
    if count > _UNIT_LIMITS[unit]:
        raise SimError(162, TEXT_TIME_LENGTH)
    small = _SMALL_BAR_MAX_SECONDS.get(bar_seconds)
    if small is not None and (unit != "S" or count > small):
        raise SimError(162, TEXT_TIME_LENGTH)


def _zone_or_none(name: str) -> ZoneInfo | None:
    if not name or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return zone(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None


def _wall(day: str, time: str, tz: dt.tzinfo) -> dt.datetime | None:
    if _DATE.fullmatch(day) is None or _TIME.fullmatch(time) is None:
        return None
    try:
        return dt.datetime(
            int(day[:4]),
            int(day[4:6]),
            int(day[6:]),
            int(time[:2]),
            int(time[3:5]),
            int(time[6:]),
            tzinfo=tz,
        )
    except ValueError:
        return None


def parse_end_date_time(
    text: str, *, now: dt.datetime, login_tz: str
) -> tuple[dt.datetime, list[tuple[int, str]]]:
    """Parse a reqHistoricalData ``endDateTime`` into an aware UTC datetime and warnings.

    Accepted forms:

    * ``""``: now;
    * ``yyyymmdd hh:mm:ss <zone>``: wall time in any IANA/IB zone name (``US/Eastern``,
      ``UTC``, ``GMT``, ``Europe/London`` …);
    * ``yyyymmdd-hh:mm:ss``: UTC;
    * ``yyyymmdd hh:mm:ss``: wall time in the TWS login zone, with warning 2174;
    * ``yyyymmdd``: 23:59:59 that day in the login zone, with warning 2174 (a simulator choice;
      TWS's help text makes the time mandatory);
    * ``hh:mm:ss [<zone>]``: that time today (today in the zone), 2174 without a zone.

    Raises:
        SimError: 10314 for anything else (bad date or time, unknown zone, junk).
    """
    text = text.strip()
    if not text:
        return now.astimezone(UTC), []
    login = zone(login_tz)
    warn = [(2174, TEXT_2174)]
    parts = text.split(" ")
    parsed: dt.datetime | None = None
    warnings: list[tuple[int, str]] = []
    if len(parts) == 1 and "-" in text:
        day, _, time = text.partition("-")
        parsed = _wall(day, time, UTC)
    elif len(parts) == 1 and _DATE.fullmatch(text):
        parsed = _wall(text, "23:59:59", login)
        warnings = warn
    elif len(parts) == 1 and _TIME.fullmatch(text):
        parsed = _wall(f"{now.astimezone(login):%Y%m%d}", text, login)
        warnings = warn
    elif len(parts) == 2 and _TIME.fullmatch(parts[0]):
        tz = _zone_or_none(parts[1])
        if tz is not None:
            parsed = _wall(f"{now.astimezone(tz):%Y%m%d}", parts[0], tz)
    elif len(parts) == 2:
        parsed = _wall(parts[0], parts[1], login)
        warnings = warn
    elif len(parts) == 3:
        tz = _zone_or_none(parts[2])
        if tz is not None:
            parsed = _wall(parts[0], parts[1], tz)
    if parsed is None:
        raise SimError(10314, TEXT_10314)
    return parsed.astimezone(UTC), warnings


def _months_back(t: dt.datetime, months: int) -> dt.datetime:
    index = t.year * 12 + (t.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    last_day = (following - dt.timedelta(days=1)).day
    return t.replace(year=year, month=month, day=min(t.day, last_day))


def _sessions_before(contract: SimContract, use_rth: bool, end: dt.datetime) -> Iterator[Session]:
    """The contract's sessions that start before ``end``, newest first: none before its head
    timestamp, after its expiry, or on its calendar's holidays (at most
    ``_MAX_SESSIONS_SCAN`` calendar days are scanned)."""
    template = contract.liquid if use_rth else contract.trading
    tz = contract.time_zone_id
    head = contract.head_timestamp
    expiry = contract.expired_on
    day = end.astimezone(zone(tz)).date() + dt.timedelta(days=1)
    if expiry is not None:
        day = min(day, expiry)
    stop = head.astimezone(zone(tz)).date() - dt.timedelta(days=1)
    for _ in range(_MAX_SESSIONS_SCAN):
        if day < stop:
            return
        s = template.session_on(day, tz, contract.calendar)
        if s is not None and s.start < end and s.start >= head:
            yield s
        day -= dt.timedelta(days=1)


def _sessions_back(
    contract: SimContract, use_rth: bool, end: dt.datetime, count: int
) -> dt.datetime:
    """The start of the ``count``-th most recent session starting before ``end`` (or of the
    oldest available one); ``end`` when there is none."""
    start = end
    for found, s in enumerate(_sessions_before(contract, use_rth, end), start=1):
        start = s.start
        if found == count:
            break
    return start


def _trading_time_back(
    contract: SimContract, use_rth: bool, end: dt.datetime, seconds: int
) -> dt.datetime:
    """The instant from which ``[instant, end)`` holds ``seconds`` of session time (or the
    start of the oldest available session); ``end`` when no session starts before it."""
    remaining = dt.timedelta(seconds=seconds)
    start = end
    for s in _sessions_before(contract, use_rth, end):
        stop = min(s.end, end)
        if remaining <= stop - s.start:
            return stop - remaining
        remaining -= stop - s.start
        start = s.start
    return start


def _calendar_back(contract: SimContract, end: dt.datetime, count: int, unit: str) -> dt.datetime:
    """``end`` moved back ``count`` weeks, months or years in the instrument's wall time."""
    local = end.astimezone(zone(contract.time_zone_id))
    if unit == "W":
        start = local - dt.timedelta(days=7 * count)
    elif unit == "M":
        start = _months_back(local, count)
    else:
        start = _months_back(local, 12 * count)
    return start.astimezone(UTC)


def _window(
    contract: SimContract, use_rth: bool, end: dt.datetime, count: int, unit: str, *, real: bool
) -> tuple[dt.datetime, dt.datetime]:
    """The reported start and the start of the bars (see the module docs)."""
    if unit == "S":
        reported = end - dt.timedelta(seconds=count)
        return reported, _trading_time_back(contract, use_rth, end, count) if real else reported
    if unit == "D":
        first = _sessions_back(contract, use_rth, end, count)
        return (end - dt.timedelta(days=count), first) if real else (first, first)
    start = _calendar_back(contract, end, count, unit)
    return start, start


def plan_bars(
    contract: SimContract,
    *,
    end_text: str,
    bar_size: str,
    duration: str,
    use_rth: bool,
    what_to_show: str,
    format_date: int,
    keep_up_to_date: bool,
    now: dt.datetime,
    login_tz: str,
    window_semantics: str = "real",
    contract_by_con_id: bool = False,
) -> BarsPlan:
    """Validate a reqHistoricalData like TWS and plan the window it covers.

    The checks, their order and the window rules are described in this module's docstring.

    Args:
        contract: The resolved instrument.
        end_text: ``endDateTime`` as sent (see :func:`parse_end_date_time`).
        bar_size: ``barSizeSetting`` as sent (see :data:`ibdata.sim._bars.LEGAL_BAR_SIZES`).
        duration: ``durationStr`` as sent, ``<positive int> <S|D|W|M|Y>``.
        use_rth: Liquid (regular) sessions only.
        what_to_show: ``whatToShow`` as sent.
        format_date: 1 or 2.
        keep_up_to_date: The request asks for live updates of the last bar.
        now: The simulator's current time (aware).
        login_tz: The TWS login time zone, for zone-less end times.
        window_semantics: ``"real"`` (real TWS's windows) or ``"sessions"``; see the module
            docs.
        contract_by_con_id: The request named its contract by conId (a ``CONTFUT`` named so
            may have an end date).

    Returns:
        The plan.

    Raises:
        SimError: With TWS's code and text when TWS would refuse the request.
        ValueError: ``window_semantics`` is not one of :data:`WINDOW_SEMANTICS`.
    """
    if window_semantics not in WINDOW_SEMANTICS:
        raise ValueError(
            f"window_semantics must be one of {WINDOW_SEMANTICS}, got {window_semantics!r}"
        )
    if bar_size not in _bars.BAR_SIZES:
        raise _invalid(
            "bK",
            "Historical data bar size setting is invalid. Legal ones are: "
            + ", ".join(_bars.LEGAL_BAR_SIZES),
        )
    bar_seconds = _bars.BAR_SIZES[bar_size]
    count, unit = _parse_duration(duration)
    _check_format_date(format_date)
    _check_what_to_show(what_to_show)
    has_end = bool(end_text.strip())
    if has_end and what_to_show == "ADJUSTED_LAST":
        raise _invalid("bQ", "End date not supported with adjusted last")
    if has_end and keep_up_to_date:
        raise _invalid("bQ", "End date not supported with live updates")
    if has_end and contract.sec_type == "CONTFUT" and not contract_by_con_id:
        raise SimError(10339, TEXT_10339)
    if keep_up_to_date and what_to_show not in _LIVE_TYPES:
        raise _invalid(
            "bQ",
            f"Live updates (keepUpToDate) are not supported for {what_to_show}; "
            "use TRADES, MIDPOINT, BID or ASK",
        )
    if keep_up_to_date and bar_seconds < 5:
        raise _invalid("bQ", "Live updates (keepUpToDate) require a bar size of 5 secs or more")
    end, warnings = parse_end_date_time(end_text, now=now, login_tz=login_tz)
    _check_offered(contract, what_to_show)
    if what_to_show == "SCHEDULE" and bar_seconds != 86_400:
        raise SimError(10295, "Only daily resolution supported for Schedule requests")
    _check_length(bar_seconds, count, unit)
    now_utc = now.astimezone(UTC)
    end_is_now = end >= now_utc
    end = min(end, now_utc)
    real = window_semantics == "real"
    start, bars_start = _window(contract, use_rth, end, count, unit, real=real)
    return BarsPlan(
        start=min(start, end),
        end=end,
        bars_start=min(bars_start, end),
        overlap=real,
        bar_size=_bars.canonical_bar_size(bar_size),
        duration=duration,
        duration_count=count,
        duration_unit=unit,
        use_rth=use_rth,
        what_to_show=what_to_show,
        format_date=format_date,
        keep_up_to_date=keep_up_to_date,
        end_is_now=end_is_now,
        warnings=warnings,
    )


def plan_head_timestamp(
    contract: SimContract, what_to_show: str, use_rth: bool, format_date: int
) -> str:
    """Validate a reqHeadTimestamp and return the headTimestamp text to send.

    The first session open at or after the contract's head timestamp (liquid sessions when
    ``use_rth``), as epoch seconds for ``format_date`` 2 or dashed UTC ``yyyymmdd-hh:mm:ss``
    for 1.

    Raises:
        SimError: 321 for a ``format_date`` other than 1 or 2 or an unknown ``what_to_show``;
            162 (or 10299) when the instrument does not offer ``what_to_show``.
    """
    _check_format_date(format_date)
    _check_what_to_show(what_to_show)
    _check_offered(contract, what_to_show)
    head = _bars.head_timestamp(contract, what_to_show, use_rth)
    return _bars.format_head_timestamp(head, format_date)
