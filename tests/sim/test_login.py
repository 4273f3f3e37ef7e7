"""The simulator's connection time: its own clock, and the login zone named short or long."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from ibdata.sim import FixedClock, ScaledClock, Simulator
from tests.sim.raw import RawClient

UTC = dt.timezone.utc
MARCH = dt.datetime(2025, 3, 12, 15, 0, tzinfo=UTC)
JULY = dt.datetime(2025, 7, 16, 15, 0, tzinfo=UTC)


def connection_time(sim: Simulator) -> str:
    """The connection time of a fresh handshake."""
    with RawClient(sim.port) as c:
        reply = c.hello("v100..157")
    assert len(reply) == 2
    return reply[1]


@pytest.mark.parametrize(
    ("zone", "clock", "short", "long"),
    [
        ("Europe/London", MARCH, "20250312 15:00:00 GMT", "20250312 15:00:00 Greenwich Mean Time"),
        ("Europe/London", JULY, "20250716 16:00:00 BST", "20250716 16:00:00 British Summer Time"),
        ("Europe/Dublin", MARCH, "20250312 15:00:00 GMT", "20250312 15:00:00 Greenwich Mean Time"),
        ("Europe/Dublin", JULY, "20250716 16:00:00 IST", "20250716 16:00:00 Irish Standard Time"),
        (
            "Europe/Berlin",
            MARCH,
            "20250312 16:00:00 CET",
            "20250312 16:00:00 Central European Standard Time",
        ),
        (
            "Europe/Berlin",
            JULY,
            "20250716 17:00:00 CEST",
            "20250716 17:00:00 Central European Summer Time",
        ),
        (
            "America/New_York",
            MARCH,
            "20250312 11:00:00 EDT",
            "20250312 11:00:00 Eastern Daylight Time",
        ),
        (
            "America/Chicago",
            dt.datetime(2025, 1, 15, 15, tzinfo=UTC),
            "20250115 09:00:00 CST",
            "20250115 09:00:00 Central Standard Time",
        ),
        ("Asia/Shanghai", MARCH, "20250312 23:00:00 CST", "20250312 23:00:00 China Standard Time"),
        ("Asia/Kolkata", MARCH, "20250312 20:30:00 IST", "20250312 20:30:00 India Standard Time"),
        (
            "Australia/Sydney",
            MARCH,
            "20250313 02:00:00 AEDT",
            "20250313 02:00:00 Australian Eastern Daylight Time",
        ),
        (
            "Australia/Sydney",
            JULY,
            "20250717 01:00:00 AEST",
            "20250717 01:00:00 Australian Eastern Standard Time",
        ),
        ("UTC", JULY, "20250716 15:00:00 UTC", "20250716 15:00:00 Coordinated Universal Time"),
    ],
)
def test_connection_time_is_the_simulators_clock_named_in_either_style(
    sim_factory: Callable[..., Simulator], zone: str, clock: dt.datetime, short: str, long: str
) -> None:
    """The connection time is the simulator's (fixed) clock in the login zone, named by its
    abbreviation or by Java's long name for the season (Dublin's winter is GMT, not a
    negative summer time)."""
    for style, expected in (("short", short), ("long", long)):
        sim = sim_factory(clock=FixedClock(clock), login_tz=zone, login_tz_names=style)
        assert connection_time(sim) == expected


def test_connection_time_follows_a_scaled_clock(sim_factory: Callable[..., Simulator]) -> None:
    """A scaled clock that started on a summer evening in London says BST, on its own date."""
    sim = sim_factory(clock=ScaledClock(JULY, speed=60), login_tz="Europe/London")
    text = connection_time(sim)
    stamped = dt.datetime.strptime(text[:17], "%Y%m%d %H:%M:%S")
    assert text.endswith(" BST")
    assert dt.datetime(2025, 7, 16, 16) <= stamped < dt.datetime(2025, 7, 16, 17)


def test_long_names_are_refused_for_zones_without_one() -> None:
    """Asking for Java's long name of a zone the simulator has none for, or an unknown
    style, is a ValueError naming the option."""
    with pytest.raises(ValueError, match="no Java long name for 'Asia/Kathmandu'"):
        Simulator(login_tz="Asia/Kathmandu", login_tz_names="long")
    with pytest.raises(ValueError, match="login_tz_names must be one of short, long"):
        Simulator(login_tz="UTC", login_tz_names="java")
    Simulator(login_tz="Asia/Kathmandu", login_tz_names="short")  # the abbreviation is fine
