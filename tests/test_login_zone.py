"""TWS's login zone end to end: the simulator at server version 157 (where a bars answer's
window is a two-space time in the login zone) for logins around the world, both naming
styles, over real sockets.

The expected window is read from the same answer by a raw client that knows the zone the
simulator was given; ibdata knows only what TWS sent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest

import ibdata
from ibdata.sim import FixedClock, Simulator
from tests.conftest import CLOCK_AT
from tests.reliability.probes import wait_until
from tests.sim.raw import RawClient, bars_request

UTC = dt.timezone.utc
SUMMER = dt.datetime(2025, 7, 16, 15, 0, tzinfo=UTC)
WINTER = dt.datetime(2025, 1, 15, 15, 0, tzinfo=UTC)

#: (login zone, the simulator's clock, the certainty of the short name, of the long name)
LOGINS = [
    ("Europe/London", CLOCK_AT, "ambiguous", "ambiguous"),  # GMT: also Reykjavik's
    ("Europe/London", SUMMER, "offset", "exact"),  # BST: also Bougainville's
    ("Europe/Berlin", CLOCK_AT, "ambiguous", "ambiguous"),  # CET: also Algiers'
    ("Europe/Berlin", SUMMER, "offset", "offset"),
    ("America/New_York", CLOCK_AT, "offset", "offset"),  # EDT
    ("America/New_York", WINTER, "ambiguous", "ambiguous"),  # EST: also Panama's
    ("America/Chicago", CLOCK_AT, "offset", "offset"),  # CDT
    ("Asia/Shanghai", CLOCK_AT, "offset", "exact"),  # CST / China Standard Time
    ("Asia/Kolkata", CLOCK_AT, "offset", "exact"),  # IST / India Standard Time
    ("Australia/Sydney", CLOCK_AT, "offset", "offset"),  # AEDT
]


def _two_space(text: str, zone: str) -> dt.datetime:
    """A ``yyyymmdd  hh:mm:ss`` time in ``zone``, as aware UTC."""
    naive = dt.datetime.strptime(text, "%Y%m%d  %H:%M:%S")
    return naive.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def raw_bars(sim: Simulator, zone: str, end: dt.datetime) -> list[str]:
    """The historicalData frame the simulator sends a raw 157 client for 2 D of hourly
    AAPL bars ending at ``end``."""
    with RawClient(sim.port) as c:
        assert c.hello("v100..157")[0] == "157"
        c.connect_api(990, versions=None)
        c.send(*bars_request(1, end=f"{end:%Y%m%d-%H:%M:%S}", duration="2 D"))
        return c.read_until(lambda f: f[0] == "17", timeout=30)[-1]


@pytest.mark.parametrize("style", ["short", "long"])
@pytest.mark.parametrize(("zone", "clock", "short", "long"), LOGINS)
def test_bars_window_at_157_is_placed_for_logins_around_the_world(
    sim_factory: Callable[..., Simulator],
    zone: str,
    clock: dt.datetime,
    short: str,
    long: str,
    style: str,
) -> None:
    """``Bars.start``/``Bars.end`` are the UTC window the simulator used, and ``health()``
    names the login zone with the certainty its name allows."""
    sim = sim_factory(
        server_version=157,
        clock=FixedClock(clock),
        login_tz=zone,
        login_tz_names=style,
        pacing=None,
    )
    frame = raw_bars(sim, zone, clock)
    start, end = _two_space(frame[2], zone), _two_space(frame[3], zone)
    assert end == clock
    with ibdata.Client(sim.host, sim.port, max_message_rate=None) as ib:
        record = ib.health().login_time_zone
        bars = ib.get_historical_bars("AAPL", duration="2 D", bar_size="1 hour", end=clock)
    assert record is not None
    assert record.zone == zone
    assert record.certainty == (short if style == "short" else long)
    assert (bars.start, bars.end) == (start, end)
    assert [b.time for b in bars] == [_two_space(t, zone) for t in frame[5::8]]


def test_the_name_in_the_handshake_follows_the_simulators_clock_and_style(
    sim_factory: Callable[..., Simulator],
) -> None:
    """A London login names its zone by the simulator's own date: BST in July, GMT in
    March; the long style spells Java's names."""
    names = {}
    for style in ("short", "long"):
        for clock in (CLOCK_AT, SUMMER):
            sim = sim_factory(
                clock=FixedClock(clock), login_tz="Europe/London", login_tz_names=style
            )
            with ibdata.Client(sim.host, sim.port) as ib:
                record = ib.health().login_time_zone
            assert record is not None
            names[style, clock.month] = record.name
    assert names == {
        ("short", 3): "GMT",
        ("short", 7): "BST",
        ("long", 3): "Greenwich Mean Time",
        ("long", 7): "British Summer Time",
    }


def test_a_winter_login_learns_the_summer_offset_from_an_echoed_end(
    sim_factory: Callable[..., Simulator], caplog: pytest.LogCaptureFixture
) -> None:
    """A winter login named ``Greenwich Mean Time`` may be London's or Reykjavik's (which
    keeps no summer time); the end TWS echoes for a July request an hour ahead tells it is
    London's clock, so the summer window is placed right and the record says so."""
    sim = sim_factory(
        server_version=157,
        clock=FixedClock(CLOCK_AT),
        login_tz="Europe/London",
        login_tz_names="long",
        pacing=None,
    )
    end = dt.datetime(2024, 7, 10, 15, tzinfo=UTC)
    frame = raw_bars(sim, "Europe/London", end)
    with (
        caplog.at_level(logging.INFO, logger="ibdata._zones"),
        ibdata.Client(sim.host, sim.port, max_message_rate=None) as ib,
    ):
        before = ib.health().login_time_zone
        bars = ib.get_historical_bars("AAPL", duration="2 D", bar_size="1 hour", end=end)
        after = ib.health().login_time_zone
    assert before == ibdata.LoginTimeZone("Greenwich Mean Time", "Europe/London", "ambiguous")
    assert after == ibdata.LoginTimeZone("Greenwich Mean Time", "Europe/London", "offset")
    assert (bars.start, bars.end) == (_two_space(frame[2], "Europe/London"), end)
    assert [b.time for b in bars] == [_two_space(t, "Europe/London") for t in frame[5::8]]
    assert any("narrowed" in r.getMessage() for r in caplog.records)


def test_a_client_on_the_simulators_clock_needs_no_time_request(
    sim_factory: Callable[..., Simulator],
) -> None:
    """When the connection time agrees with the client's clock, ibdata asks TWS nothing
    more; when it does not (a fixed simulator clock), it asks for TWS's current time once."""
    fixed = sim_factory(login_tz="Asia/Shanghai")
    live = sim_factory(clock=None, login_tz="Asia/Shanghai")
    for sim in (fixed, live):
        with ibdata.Client(sim.host, sim.port) as ib:
            record = ib.health().login_time_zone
        assert record == ibdata.LoginTimeZone("CST", "Asia/Shanghai", "offset")
    assert len(fixed.received.find("reqCurrentTime")) == 1
    assert len(live.received.find("reqCurrentTime")) == 0


def test_a_reconnect_keeps_the_login_zone_without_asking_tws_clock_again(
    sim_factory: Callable[..., Simulator],
) -> None:
    """After TWS restarts under the same login zone, the new session knows the zone at
    once: no second time request, no wait for one (a reconnect is ready as fast as TWS
    answers nextValidId, even while TWS is slow to answer anything else)."""
    sim = sim_factory(login_tz="Asia/Shanghai")
    with ibdata.Client(
        sim.host, sim.port, reconnect_min_delay=0.01, reconnect_max_delay=0.05
    ) as ib:
        assert ib.health().login_time_zone == ibdata.LoginTimeZone("CST", "Asia/Shanghai", "offset")
        sim.set_latency(30)  # a time request now would be answered 30 s later
        sim.restart()
        assert wait_until(lambda: ib.health().reconnect_count == 1 and ib.connected, 5)
        record = ib.health().login_time_zone
        sim.set_latency(0)
    assert record == ibdata.LoginTimeZone("CST", "Asia/Shanghai", "offset")
    assert len(sim.received.find("reqCurrentTime")) == 1
