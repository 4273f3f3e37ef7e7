"""TWS's login time zone from the handshake's connection time (``ibdata._zones``).

The names below are what Java 17 prints for each city (``TimeZone.getDisplayName`` in the
English locales, CLDR and COMPAT locale data), plus the Windows zone names, and what real
captures show.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ibdata import _convert, _zones
from ibdata.models import LoginTimeZone

UTC = dt.timezone.utc
ROOT = Path(__file__).resolve().parent.parent
WINTER = dt.datetime(2025, 1, 15, 15, 0, 3, tzinfo=UTC)
SUMMER = dt.datetime(2025, 7, 15, 15, 0, 3, tzinfo=UTC)

#: city -> (names in its standard time, names in its summer time), as Java 17 and Windows
#: print them; a zone without summer time has the same names all year.
CITY_NAMES: dict[str, tuple[set[str], set[str]]] = {
    "Europe/London": (
        {"GMT", "Greenwich Mean Time", "GMT Standard Time"},
        {"BST", "British Summer Time", "GMT+01:00", "GMT Standard Time"},
    ),
    "Europe/Berlin": (
        {
            "CET",
            "Central European Time",
            "Central European Standard Time",
            "GMT+01:00",
            "W. Europe Standard Time",
        },
        {"CEST", "Central European Summer Time", "GMT+02:00", "W. Europe Standard Time"},
    ),
    "America/New_York": (
        {"EST", "Eastern Standard Time", "GMT-05:00"},
        {"EDT", "Eastern Daylight Time", "GMT-04:00", "Eastern Standard Time"},
    ),
    "America/Chicago": (
        {"CST", "Central Standard Time", "GMT-06:00"},
        {"CDT", "Central Daylight Time", "GMT-05:00", "Central Standard Time"},
    ),
    "Asia/Shanghai": ({"CST", "China Standard Time", "GMT+08:00"}, set()),
    "Asia/Kolkata": ({"IST", "India Standard Time", "GMT+05:30"}, set()),
    "Australia/Sydney": (
        {
            "AEST",
            "Australian Eastern Standard Time",
            "Australian Eastern Standard Time (New South Wales)",
            "GMT+10:00",
            "AUS Eastern Standard Time",
        },
        {
            "AEDT",
            "Australian Eastern Daylight Time",
            "Australian Eastern Daylight Time (New South Wales)",
            "GMT+11:00",
            "AUS Eastern Standard Time",
        },
    ),
}


def conn_time(zone: str, at: dt.datetime, name: str) -> str:
    """The connection time TWS in ``zone`` writes at ``at``, naming its zone ``name``."""
    return f"{at.astimezone(ZoneInfo(zone)):%Y%m%d %H:%M:%S} {name}"


def wall(zone: str, at: dt.datetime) -> dt.datetime:
    return at.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def same_clock(a: str, b: str, around: dt.datetime) -> bool:
    """True when ``a`` and ``b`` have the same UTC offsets through the year around."""
    probes = [around + dt.timedelta(days=14 * k) for k in range(-13, 14)]
    return all(
        p.astimezone(ZoneInfo(a)).utcoffset() == p.astimezone(ZoneInfo(b)).utcoffset()
        for p in probes
    )


def resolve(
    zone: str, at: dt.datetime, name: str, now: dt.datetime | None = None
) -> _zones.Resolution:
    return _zones.resolve(conn_time(zone, at, name), at if now is None else now)


# ---------------------------------------------------------------------- every name of the cities
def on_summer_time(zone: str, at: dt.datetime) -> bool:
    """True when ``zone`` is ahead of its lowest offset of the year at ``at``."""
    offsets = [
        (at + dt.timedelta(days=30 * k)).astimezone(ZoneInfo(zone)).utcoffset() for k in range(12)
    ]
    return at.astimezone(ZoneInfo(zone)).utcoffset() != min(o for o in offsets if o is not None)


CASES = [
    (city, at, name)
    for city, (standard, summer) in CITY_NAMES.items()
    for at in (WINTER, SUMMER)
    for name in sorted(summer if on_summer_time(city, at) else standard)
]


@pytest.mark.parametrize(("city", "at", "name"), CASES)
def test_every_name_of_the_cities_gives_a_zone_that_keeps_their_clock(
    city: str, at: dt.datetime, name: str
) -> None:
    """Each name a city's TWS may print resolves, with its offset, to a zone on the city's
    clock, and places the login's own wall time on the right instant."""
    r = resolve(city, at, name)
    assert r.record.name == name
    assert r.record.certainty != "unknown", r.reason
    assert r.record.zone is not None
    assert r.offset == at.astimezone(ZoneInfo(city)).utcoffset()
    assert r.place(wall(city, at)) == at.replace(microsecond=0)
    if r.record.certainty in ("exact", "offset"):
        assert same_clock(r.record.zone, city, at), r.reason


@pytest.mark.parametrize(
    ("city", "at", "name", "zone", "certainty"),
    [
        ("Asia/Shanghai", WINTER, "CST", "Asia/Shanghai", "offset"),
        ("Asia/Shanghai", SUMMER, "CST", "Asia/Shanghai", "offset"),
        ("America/Chicago", WINTER, "CST", "America/Chicago", "ambiguous"),
        ("America/Chicago", SUMMER, "CDT", "America/Chicago", "offset"),
        ("Asia/Kolkata", WINTER, "IST", "Asia/Kolkata", "offset"),
        ("Europe/Dublin", SUMMER, "IST", "Europe/Dublin", "offset"),
        ("Asia/Jerusalem", WINTER, "IST", "Asia/Jerusalem", "offset"),
        ("Asia/Jerusalem", SUMMER, "IDT", "Asia/Jerusalem", "offset"),
        ("Europe/London", SUMMER, "BST", "Europe/London", "offset"),
        ("Europe/London", SUMMER, "British Summer Time", "Europe/London", "exact"),
        ("Europe/London", WINTER, "Greenwich Mean Time", "Europe/London", "ambiguous"),
        ("Australia/Sydney", WINTER, "AEDT", "Australia/Sydney", "offset"),
        ("Europe/Berlin", SUMMER, "Central European Summer Time", "Europe/Berlin", "offset"),
        ("Europe/Berlin", WINTER, "Central European Standard Time", "Europe/Berlin", "ambiguous"),
        ("Europe/Berlin", WINTER, "W. Europe Standard Time", "Europe/Berlin", "exact"),
        ("Europe/Paris", SUMMER, "Romance Standard Time", "Europe/Paris", "exact"),
        ("Asia/Shanghai", WINTER, "China Standard Time", "Asia/Shanghai", "exact"),
        ("Asia/Kolkata", SUMMER, "India Standard Time", "Asia/Kolkata", "exact"),
        ("America/New_York", SUMMER, "EDT", "America/New_York", "offset"),
        ("America/New_York", WINTER, "EST", "America/New_York", "ambiguous"),
        ("Asia/Tokyo", WINTER, "JST", "Asia/Tokyo", "exact"),
        ("Etc/UTC", WINTER, "UTC", "Etc/UTC", "exact"),
        ("Etc/UTC", SUMMER, "Coordinated Universal Time", "Etc/UTC", "exact"),
        ("Europe/London", SUMMER, "Europe/London", "Europe/London", "exact"),
        ("America/New_York", WINTER, "US/Eastern", "US/Eastern", "exact"),
        ("Asia/Kathmandu", WINTER, "GMT+05:45", "Asia/Kathmandu", "exact"),
    ],
)
def test_names_resolve_to_the_zone_that_fits_the_offset(
    city: str, at: dt.datetime, name: str, zone: str, certainty: str
) -> None:
    """Ambiguous names (``CST``, ``IST``) are told apart by the offset at login, and the
    record says how sure the choice is."""
    assert resolve(city, at, name).record == LoginTimeZone(name, zone, certainty)


@pytest.mark.parametrize(
    "text",
    [
        "20250323 22:21:01 Greenwich Mean Time",
        "20250415 19:38:30 British Summer Time",
        "20240325 21:22:58 Greenwich Mean Time",
        "20230228 17:24:14 EST",
    ],
)
def test_real_captures_resolve_by_their_own_clock(text: str) -> None:
    """The connection times of real captures give London or New York when "now" is the
    moment they were written (UTC from the capture's wall time and zone)."""
    wall_time, name = _zones.parse_connection_time(text) or (None, "")
    assert wall_time is not None
    city = "America/New_York" if name == "EST" else "Europe/London"
    now = wall_time.replace(tzinfo=ZoneInfo(city)).astimezone(UTC)
    assert _zones.resolve(text, now).record.zone == city


# ---------------------------------------------------------------------- offsets that do not fit
def test_a_name_with_a_wrong_offset_is_unknown() -> None:
    """``British Summer Time`` two hours ahead of UTC (or CST at +3) fits no zone: unknown."""
    r = resolve("Europe/Berlin", SUMMER, "British Summer Time")
    assert r.record == LoginTimeZone("British Summer Time", None, "unknown")
    assert "UTC+02:00" in r.reason
    with pytest.raises(ValueError, match="UTC\\+02:00"):
        r.place(wall("Europe/Berlin", SUMMER))
    assert resolve("Europe/Moscow", WINTER, "CST").record.certainty == "unknown"


@pytest.mark.parametrize("skew", [-150, -119, -30, 0, 5, 30, 119, 150])
def test_clocks_up_to_two_and_a_half_minutes_apart_still_decide(skew: int) -> None:
    """TWS's clock and the client's may disagree by a couple of minutes (plus latency)."""
    now = WINTER + dt.timedelta(seconds=skew)
    assert resolve("Asia/Shanghai", WINTER, "CST", now).record.zone == "Asia/Shanghai"
    assert resolve("America/Chicago", WINTER, "CST", now).record.zone == "America/Chicago"


@pytest.mark.parametrize("skew", [-3600 * 30, -600, -200, 200, 420, 3600 * 15 + 600, 86400 * 200])
def test_clocks_further_apart_give_no_offset(skew: int) -> None:
    """Beyond the tolerance (or further than any zone is from UTC) nothing is measured: a
    name that means one clock still decides, an ambiguous one is unknown."""
    now = SUMMER + dt.timedelta(seconds=skew)
    assert resolve("Asia/Shanghai", SUMMER, "CST", now).record.certainty == "unknown"
    london = resolve("Europe/London", SUMMER, "British Summer Time", now)
    assert london.record == LoginTimeZone("British Summer Time", "Europe/London", "exact")
    assert "implied by the name" in london.reason


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (dt.timedelta(hours=5, minutes=45), dt.timedelta(hours=5, minutes=45)),
        (dt.timedelta(hours=-9, minutes=-30), dt.timedelta(hours=-9, minutes=-30)),
        (dt.timedelta(hours=14), dt.timedelta(hours=14)),
        (dt.timedelta(hours=14, minutes=15), None),
        (dt.timedelta(minutes=7), None),
    ],
)
def test_offsets_are_measured_to_the_quarter_hour(
    offset: dt.timedelta, expected: dt.timedelta | None
) -> None:
    """The wall time against UTC now is rounded to 15 minutes, within ±14 hours."""
    now = dt.datetime(2025, 3, 1, 12, tzinfo=UTC)
    naive = now.replace(tzinfo=None) + offset + dt.timedelta(seconds=40)
    assert _zones.measure_offset(naive, now) == expected


# ---------------------------------------------------------------------- DST transitions
@pytest.mark.parametrize(
    ("city", "utc", "name"),
    [
        # London springs forward at 01:00 UTC on 30 March 2025, falls back on 26 October.
        ("Europe/London", dt.datetime(2025, 3, 30, 0, 59, 58, tzinfo=UTC), "GMT"),
        ("Europe/London", dt.datetime(2025, 3, 30, 1, 0, 1, tzinfo=UTC), "BST"),
        ("Europe/London", dt.datetime(2025, 10, 26, 0, 59, 59, tzinfo=UTC), "British Summer Time"),
        ("Europe/London", dt.datetime(2025, 10, 26, 1, 0, 0, tzinfo=UTC), "Greenwich Mean Time"),
        ("Europe/London", dt.datetime(2025, 10, 26, 1, 30, 0, tzinfo=UTC), "GMT"),
        # Chicago at 08:00 UTC on 9 March and 7 November 2025; Sydney on 6 April, 16:00 UTC.
        ("America/Chicago", dt.datetime(2025, 3, 9, 7, 59, 59, tzinfo=UTC), "CST"),
        ("America/Chicago", dt.datetime(2025, 3, 9, 8, 0, 0, tzinfo=UTC), "CDT"),
        ("America/Chicago", dt.datetime(2025, 11, 2, 6, 30, 0, tzinfo=UTC), "CDT"),
        ("America/Chicago", dt.datetime(2025, 11, 2, 7, 30, 0, tzinfo=UTC), "CST"),
        ("Australia/Sydney", dt.datetime(2025, 4, 5, 15, 59, 59, tzinfo=UTC), "AEDT"),
        ("Australia/Sydney", dt.datetime(2025, 4, 5, 16, 0, 0, tzinfo=UTC), "AEST"),
    ],
)
@pytest.mark.parametrize("skew", [-90, 0, 90])
def test_logins_at_a_clock_change_resolve_with_skewed_clocks(
    city: str, utc: dt.datetime, name: str, skew: int
) -> None:
    """Right at a clock change, the offset is read at TWS's own instant (its wall time less
    the offset), so a skewed client clock does not pick the other side of the change."""
    r = resolve(city, utc, name, utc + dt.timedelta(seconds=skew))
    assert r.record.zone is not None, r.reason
    assert same_clock(r.record.zone, city, utc) or r.record.certainty == "ambiguous"
    assert r.offset == utc.astimezone(ZoneInfo(city)).utcoffset()


# ---------------------------------------------------------------------- unknown names
@pytest.mark.parametrize(
    "text",
    [
        "20250115 15:00:00 Foo Standard Time",
        "20250115 15:00:00 Mitteleuropäische Normalzeit",
        "20250115 15:00:00 Nowhere/Land",
        "20250115 15:00:00",
        "20250115 15:00",
        "not a time",
        "",
    ],
)
def test_unknown_or_missing_names_are_unknown_and_place_nothing(text: str) -> None:
    """A name ibdata does not know, none at all, or a malformed connection time gives no
    zone, and no login-zone time is placed, whatever the offset."""
    r = _zones.resolve(text, WINTER)
    assert r.record.zone is None
    assert r.record.certainty == "unknown"
    with pytest.raises(ValueError, match=re.escape(r.reason)):
        r.place(dt.datetime(2025, 1, 15, 15, 0))


def test_no_clock_and_a_name_of_different_offsets_is_unknown() -> None:
    """Without any "now", ``CST`` (Chicago or Shanghai) cannot be told apart."""
    r = _zones.resolve("20250115 23:00:00 CST", None)
    assert r.record == LoginTimeZone("CST", None, "unknown")
    assert "no clock" in r.reason


# ---------------------------------------------------------------------- placing login-zone times
def test_an_ambiguous_zone_places_only_times_its_candidates_agree_on() -> None:
    """``Greenwich Mean Time`` in winter may be London or Reykjavik: a winter time is placed,
    a summer time (where they differ by an hour) is not."""
    r = resolve("Europe/London", WINTER, "Greenwich Mean Time")
    assert r.record.certainty == "ambiguous"
    assert "Atlantic/Reykjavik" in r.zones or "Africa/Abidjan" in r.zones
    assert r.place(dt.datetime(2025, 2, 1, 9, 30)) == dt.datetime(2025, 2, 1, 9, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="disagree on 2025-07-01 09:30:00"):
        r.place(dt.datetime(2025, 7, 1, 9, 30))


def test_an_exact_zone_places_any_time_by_its_rules() -> None:
    """A summer login in London places a winter window too, at London's winter offset."""
    r = resolve("Europe/London", SUMMER, "British Summer Time")
    assert r.place(dt.datetime(2025, 1, 2, 9, 0)) == dt.datetime(2025, 1, 2, 9, 0, tzinfo=UTC)
    assert r.place(dt.datetime(2025, 7, 2, 9, 0)) == dt.datetime(2025, 7, 2, 8, 0, tzinfo=UTC)


def test_a_time_that_cannot_be_placed_is_logged_once_per_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The session's zone logs the first unplaceable time with the reason, then is quiet."""
    session = _zones.SessionZone("20250115 23:00:00 CST", None)
    with caplog.at_level(logging.WARNING, logger="ibdata._zones"):
        for _ in range(3):
            with pytest.raises(ValueError, match="no clock tells which"):
                _convert.parse_ib_time("20250114  10:00:00", session)
    warnings = [r for r in caplog.records if r.name == "ibdata._zones"]
    assert len(warnings) == 1
    assert "'CST' may be America/Chicago" in warnings[0].getMessage()
    assert "20250114  10:00:00" in warnings[0].getMessage()


def test_parse_ib_time_reads_two_space_times_in_the_session_zone() -> None:
    """A two-space time is read in the session's login zone; other forms ignore it."""
    session = _zones.SessionZone(
        "20250312 23:00:00 CST", dt.datetime(2025, 3, 12, 15, 0, 1, tzinfo=UTC)
    )
    assert session.record == LoginTimeZone("CST", "Asia/Shanghai", "offset")
    assert not session.wants_tws_clock
    assert _convert.parse_ib_time("20250312  08:00:00", session) == dt.datetime(
        2025, 3, 12, 0, 0, tzinfo=UTC
    )
    assert _convert.parse_ib_time("20250312-08:00:00", session) == dt.datetime(
        2025, 3, 12, 8, 0, tzinfo=UTC
    )


def test_a_session_zone_learns_from_tws_clock_when_the_clients_disagrees() -> None:
    """A connection time far from the client's clock (a simulator on its own clock) asks
    for TWS's time, and that decides."""
    session = _zones.SessionZone("20250312 23:00:00 CST", dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert session.wants_tws_clock
    assert session.record.certainty == "unknown"
    session.use_tws_clock(dt.datetime(2025, 3, 12, 15, 0, 0, 400000, tzinfo=UTC))
    assert session.record == LoginTimeZone("CST", "Asia/Shanghai", "offset")
    session.use_tws_clock(dt.datetime(2024, 1, 1, tzinfo=UTC))  # no use: kept as it was
    assert session.zone == "Asia/Shanghai"


def test_a_reconnect_keeps_what_the_last_session_learned_while_the_name_is_the_same() -> None:
    """A new session whose connection time names the same zone starts from the earlier
    session's resolution and asks TWS's clock nothing; a different name starts afresh."""
    first = _zones.SessionZone("20250312 23:00:00 CST", dt.datetime(2026, 1, 1, tzinfo=UTC))
    first.use_tws_clock(dt.datetime(2025, 3, 12, 15, 0, tzinfo=UTC))
    again = _zones.SessionZone("20250312 23:05:00 CST", dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert again.wants_tws_clock
    again.inherit(first)
    assert not again.wants_tws_clock
    assert again.record == LoginTimeZone("CST", "Asia/Shanghai", "offset")
    moved = _zones.SessionZone("20250312 16:05:00 CET", dt.datetime(2026, 1, 1, tzinfo=UTC))
    moved.inherit(first)
    assert moved.wants_tws_clock
    assert (moved.record.name, moved.record.certainty) == ("CET", "ambiguous")


# ---------------------------------------------------------------------- the shipped table
def _data() -> dict[str, object]:
    text = resources.files("ibdata").joinpath("_zone_names.json").read_text("utf-8")
    data: dict[str, object] = json.loads(text)
    return data


def test_the_table_names_only_zones_the_database_knows() -> None:
    """Every zone of the shipped table, and of the preference list, is a real IANA zone."""
    data = _data()
    zones = data["zones"]
    assert isinstance(zones, list)
    for zone in [*zones, *_zones.PREFERRED]:
        ZoneInfo(zone)
    assert len(set(_zones.PREFERRED)) == len(_zones.PREFERRED)


def test_the_table_has_every_name_of_the_cities_and_the_captures() -> None:
    """The long and short names of the target cities, both Java generations' spellings and
    the Windows names are all in the table."""
    names = _data()["names"]
    assert isinstance(names, dict)
    wanted = set().union(*(a | b for a, b in CITY_NAMES.values()))
    wanted |= {"Central European Time", "Romance Standard Time", "IST", "IDT", "JST", "AEDT"}
    assert wanted <= set(names)
