"""Exchange holiday calendars of the simulator, computed by rule for any year.

A calendar says which dates an exchange does not trade (:meth:`ExchangeCalendar.is_holiday`)
and on which it closes early (:meth:`ExchangeCalendar.is_early_close`). Sessions are named
by the date they close (:class:`~ibdata.sim._model.SessionTemplate`), so a holiday removes
the session that would close on it: for an overnight futures session that is the one that
opened the evening before; the session after the holiday opens as usual.

Calendars (names as used in ``catalog.json`` and :attr:`SimContract.calendar`):

``NYSE``
    US equities and indices (NYSE, NASDAQ, ARCA, CBOE …). New Year's Day, Martin Luther
    King Jr. Day (third Monday of January, from 1998), Washington's Birthday (third Monday of
    February), Good Friday, Memorial Day (last Monday of May), Juneteenth (from 2022),
    Independence Day, Labor Day (first Monday of September), Thanksgiving (fourth Thursday
    of November) and Christmas. A holiday on a Saturday is observed the Friday before, on a
    Sunday the Monday after, except New Year's Day on a Saturday, which is not observed
    (NYSE Rule 7.2). Early closes (13:00 in New York for regular hours) on the day after
    Thanksgiving, on 24 December and on 3 July when those fall Monday to Thursday. One-off
    closures (hurricanes, national days of mourning such as 9 January 2025) are listed in
    :data:`NYSE_SPECIAL_CLOSURES`.
``CME``
    CME Group (CME, CBOT, NYMEX, COMEX): the same US holidays and observance as ``NYSE``,
    each a full closure of the session dated that day. ⚠ A simplification: on most of these
    days CME Globex really has a shortened session that halts around 12:00 Chicago time and
    settles with the next day, and interest-rate futures sometimes trade on Good Friday.
    No early closes are modelled.
``EUREX``
    1 January, Good Friday, Easter Monday, 1 May, 24, 25, 26 and 31 December, when they fall
    on a weekday (no observance on other days).
``ICE_EUROPE``
    ICE Futures Europe financial futures (the Long Gilt): every bank holiday of England and
    Wales by rule: New Year's Day, Good Friday, Easter Monday, the early May bank holiday
    (first Monday of May), the spring bank holiday (last Monday of May), the summer bank
    holiday (last Monday of August), Christmas Day and Boxing Day, with weekend days
    substituted by the next weekdays. ⚠ One-off bank holidays (royal events, a moved early
    May or spring holiday) are not modelled, and ICE's energy contracts, which trade on
    some of these days, would need another calendar.
``IDEALPRO``
    IB's FX venue: no session closes on 1 January or 25 December. ⚠ IB's real FX hours
    around those dates are not documented publicly; this is the common interbank practice.
``""`` (empty)
    No holidays: every weekday of the session template trades.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Final

import attrs

__all__ = [
    "CALENDARS",
    "CALENDAR_NAMES",
    "NYSE_SPECIAL_CLOSURES",
    "ExchangeCalendar",
    "default_calendar",
    "easter_sunday",
    "get_calendar",
]

_DAY: Final = dt.timedelta(days=1)
_MON, _TUE, _WED, _THU, _FRI, _SAT, _SUN = range(7)

#: Days the New York Stock Exchange closed outside its holiday rules (since 1980).
NYSE_SPECIAL_CLOSURES: Final[Mapping[dt.date, str]] = MappingProxyType(
    {
        dt.date(1985, 9, 27): "Hurricane Gloria",
        dt.date(1994, 4, 27): "National Day of Mourning (Richard Nixon)",
        dt.date(2001, 9, 11): "September 11 attacks",
        dt.date(2001, 9, 12): "September 11 attacks",
        dt.date(2001, 9, 13): "September 11 attacks",
        dt.date(2001, 9, 14): "September 11 attacks",
        dt.date(2004, 6, 11): "National Day of Mourning (Ronald Reagan)",
        dt.date(2007, 1, 2): "National Day of Mourning (Gerald Ford)",
        dt.date(2012, 10, 29): "Hurricane Sandy",
        dt.date(2012, 10, 30): "Hurricane Sandy",
        dt.date(2018, 12, 5): "National Day of Mourning (George H. W. Bush)",
        dt.date(2025, 1, 9): "National Day of Mourning (Jimmy Carter)",
    }
)


def easter_sunday(year: int) -> dt.date:
    """Western (Gregorian) Easter Sunday of ``year`` (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The ``n``-th ``weekday`` (0 = Monday) of the month; ``n = -1`` is the last one."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    last = following - _DAY
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed_us(day: dt.date) -> dt.date:
    """A US holiday's observed day: Saturday → Friday, Sunday → Monday."""
    if day.weekday() == _SAT:
        return day - _DAY
    if day.weekday() == _SUN:
        return day + _DAY
    return day


def _us_holidays(year: int) -> dict[dt.date, str]:
    """The US federal holidays the exchanges close for, observed (NYSE's rules)."""
    out: dict[dt.date, str] = {}
    new_year = dt.date(year, 1, 1)
    if new_year.weekday() != _SAT:  # a Saturday New Year's Day is not observed on Friday
        out[_observed_us(new_year)] = "New Year's Day"
    if year >= 1998:
        out[_nth_weekday(year, 1, _MON, 3)] = "Martin Luther King Jr. Day"
    out[_nth_weekday(year, 2, _MON, 3)] = "Washington's Birthday"
    out[easter_sunday(year) - 2 * _DAY] = "Good Friday"
    out[_nth_weekday(year, 5, _MON, -1)] = "Memorial Day"
    if year >= 2022:
        out[_observed_us(dt.date(year, 6, 19))] = "Juneteenth"
    out[_observed_us(dt.date(year, 7, 4))] = "Independence Day"
    out[_nth_weekday(year, 9, _MON, 1)] = "Labor Day"
    out[_nth_weekday(year, 11, _THU, 4)] = "Thanksgiving Day"
    out[_observed_us(dt.date(year, 12, 25))] = "Christmas Day"
    return out


def _nyse_holidays(year: int) -> dict[dt.date, str]:
    out = _us_holidays(year)
    out.update((d, name) for d, name in NYSE_SPECIAL_CLOSURES.items() if d.year == year)
    return out


def _nyse_early_closes(year: int) -> dict[dt.date, str]:
    out = {_nth_weekday(year, 11, _THU, 4) + _DAY: "Day after Thanksgiving"}
    eves = {dt.date(year, 7, 3): "Independence Day eve", dt.date(year, 12, 24): "Christmas Eve"}
    for day, name in eves.items():
        if day.weekday() <= _THU:  # on a Friday it is the observed holiday itself
            out[day] = name
    return out


def _eurex_holidays(year: int) -> dict[dt.date, str]:
    easter = easter_sunday(year)
    days = {
        dt.date(year, 1, 1): "New Year's Day",
        easter - 2 * _DAY: "Good Friday",
        easter + _DAY: "Easter Monday",
        dt.date(year, 5, 1): "Labour Day",
        dt.date(year, 12, 24): "Christmas Eve",
        dt.date(year, 12, 25): "Christmas Day",
        dt.date(year, 12, 26): "Boxing Day",
        dt.date(year, 12, 31): "New Year's Eve",
    }
    return {d: name for d, name in days.items() if d.weekday() < _SAT}


def _next_weekday(day: dt.date, taken: Mapping[dt.date, str]) -> dt.date:
    while day.weekday() >= _SAT or day in taken:
        day += _DAY
    return day


def _uk_holidays(year: int) -> dict[dt.date, str]:
    """England and Wales bank holidays by rule (weekend days substituted)."""
    easter = easter_sunday(year)
    out: dict[dt.date, str] = {}
    out[_next_weekday(dt.date(year, 1, 1), out)] = "New Year's Day"
    out[easter - 2 * _DAY] = "Good Friday"
    out[easter + _DAY] = "Easter Monday"
    if year >= 1978:
        out[_nth_weekday(year, 5, _MON, 1)] = "Early May bank holiday"
    out[_nth_weekday(year, 5, _MON, -1)] = "Spring bank holiday"
    out[_nth_weekday(year, 8, _MON, -1)] = "Summer bank holiday"
    out[_next_weekday(dt.date(year, 12, 25), out)] = "Christmas Day"
    out[_next_weekday(dt.date(year, 12, 26), out)] = "Boxing Day"
    return out


def _fx_holidays(year: int) -> dict[dt.date, str]:
    return {dt.date(year, 1, 1): "New Year's Day", dt.date(year, 12, 25): "Christmas Day"}


def _none(year: int) -> dict[dt.date, str]:
    del year
    return {}


@attrs.frozen
class ExchangeCalendar:
    """The holidays and early closes of one exchange, by rule for every year.

    ``holidays_of`` and ``early_closes_of`` map a year to ``{date: name}``; look-ups are cached
    per year.
    """

    name: str
    holidays_of: Callable[[int], Mapping[dt.date, str]] = attrs.field(repr=False)
    early_closes_of: Callable[[int], Mapping[dt.date, str]] = attrs.field(default=_none, repr=False)

    def holidays(self, year: int) -> Mapping[dt.date, str]:
        """``{date: holiday name}`` of ``year``: the dates the exchange does not trade."""
        return _holidays(self, year)

    def early_closes(self, year: int) -> Mapping[dt.date, str]:
        """``{date: name}`` of ``year``: the days the exchange closes early."""
        return _early_closes(self, year)

    def is_holiday(self, day: dt.date) -> bool:
        """True when the exchange does not trade on ``day`` (weekends aside)."""
        return day in _holidays(self, day.year)

    def is_early_close(self, day: dt.date) -> bool:
        """True when the exchange closes early on ``day``."""
        return day in _early_closes(self, day.year)

    def is_business_day(self, day: dt.date) -> bool:
        """True for a weekday that is not a holiday."""
        return day.weekday() < _SAT and not self.is_holiday(day)


#: Every calendar by name; ``""`` is the calendar without holidays.
CALENDARS: Final[Mapping[str, ExchangeCalendar]] = MappingProxyType(
    {
        "": ExchangeCalendar("", _none),
        "NYSE": ExchangeCalendar("NYSE", _nyse_holidays, _nyse_early_closes),
        "CME": ExchangeCalendar("CME", _us_holidays),
        "EUREX": ExchangeCalendar("EUREX", _eurex_holidays),
        "ICE_EUROPE": ExchangeCalendar("ICE_EUROPE", _uk_holidays),
        "IDEALPRO": ExchangeCalendar("IDEALPRO", _fx_holidays),
    }
)

#: The names a contract's ``calendar`` may take.
CALENDAR_NAMES: Final = frozenset(CALENDARS)


@lru_cache(maxsize=1024)
def _holidays(calendar: ExchangeCalendar, year: int) -> Mapping[dt.date, str]:
    return MappingProxyType(dict(calendar.holidays_of(year)))


@lru_cache(maxsize=1024)
def _early_closes(calendar: ExchangeCalendar, year: int) -> Mapping[dt.date, str]:
    holidays = _holidays(calendar, year)
    early = calendar.early_closes_of(year)
    return MappingProxyType({d: n for d, n in early.items() if d not in holidays})


def get_calendar(name: str) -> ExchangeCalendar:
    """The calendar called ``name`` (see :data:`CALENDARS`).

    Raises:
        ValueError: ``name`` is not a known calendar.
    """
    try:
        return CALENDARS[name]
    except KeyError:
        raise ValueError(
            f"unknown exchange calendar {name!r}; expected one of {sorted(CALENDARS)}"
        ) from None


_BY_EXCHANGE: Final[Mapping[str, str]] = MappingProxyType(
    {
        **dict.fromkeys(
            (
                "NYSE",
                "NASDAQ",
                "ISLAND",
                "ARCA",
                "AMEX",
                "BATS",
                "IEX",
                "CBOE",
                "PHLX",
                "ISE",
                "BEX",
                "BYX",
                "EDGEA",
                "EDGX",
                "PEARL",
                "MEMX",
                "NYSENAT",
                "LTSE",
                "PSX",
                "CHX",
                "DRCTEDGE",
            ),
            "NYSE",
        ),
        **dict.fromkeys(("CME", "CBOT", "NYMEX", "COMEX", "GLOBEX", "ECBOT", "NYBOT"), "CME"),
        **dict.fromkeys(("EUREX", "DTB"), "EUREX"),
        **dict.fromkeys(("ICEEU", "ICEEUSOFT", "IPE", "LIFFE"), "ICE_EUROPE"),
        **dict.fromkeys(("IDEALPRO", "IDEAL", "FXCONV"), "IDEALPRO"),
    }
)


def default_calendar(exchange: str, primary_exchange: str = "") -> str:
    """The calendar an instrument on ``exchange`` follows when it names none.

    A SMART-routed instrument follows its primary exchange's calendar. Exchanges the
    simulator has no calendar for get ``""`` (no holidays).
    """
    for venue in (exchange, primary_exchange):
        name = _BY_EXCHANGE.get(venue)
        if name is not None:
            return name
    return ""
