"""TWS's login time zone, from the connection time of the handshake.

TWS answers the API handshake with its server version and a connection time,
``yyyymmdd hh:mm:ss <name>``: the wall time of its login zone and the name its Java
runtime gives that zone at that moment. The name may be short or long, standard or
daylight, spelled by the CLDR or the older COMPAT locale data (``Central European Standard
Time`` or ``Central European Time``), a Windows zone name or an IANA name. Many names stand
for several zones: ``CST`` is Chicago's, Havana's and Shanghai's; ``IST`` Kolkata's,
Dublin's (in summer) and Jerusalem's; ``GMT`` London's in winter, and Reykjavik's all year.

``_zone_names.json`` holds every English name Java gives each IANA zone, and each Windows
zone name (``scripts/java_zone_names/generate.py`` made it). The candidates for a name are
the zones listed for it (or the zone itself, for an IANA name). The wall time against UTC
"now" gives the login zone's UTC offset at that moment, to the quarter hour; candidates
with another offset then are dropped. What is left decides the certainty:

* ``exact``: all the name's candidates keep the same clock (the same UTC offsets through
  the year around the login);
* ``offset``: the name's candidates keep different clocks, those left by the offset the
  same one;
* ``ambiguous``: those left keep different clocks (they agree now, not all year);
* ``unknown``: none is left, the name is unknown, or there is no usable "now" and the
  candidates disagree at login.

The zone reported is the most likely of those left: a zone that has the name in the root
English locale before one that has it only in a regional one (``IST`` is London's only in
``en-IE``), then the order of :data:`PREFERRED` (financial centres and the most populous
zone of each offset), then alphabetical order.

What the zone is used for: reading the ``yyyymmdd  hh:mm:ss`` (two spaces) window of a bars
answer below server version 174. Such a time is placed only when every zone left agrees on
its instant; otherwise it stays unplaced (``Bars.start`` / ``Bars.end`` are None), and that
is logged once per session with the reason. Bar times never depend on the login zone.

Where "now" comes from: the client's clock when the connection time arrived. A simulator
on a clock of its own (or a client clock that is wrong by more than a few minutes) gives no
usable offset; the connection then asks TWS for its current time (``reqCurrentTime``) and
measures against TWS's own clock.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from ibdata.models import LoginTimeZone

log = logging.getLogger(__name__)

UTC: Final = dt.timezone.utc
#: Login-zone offsets are whole quarter hours (Kathmandu's +05:45 is one).
QUARTER: Final = dt.timedelta(minutes=15)
#: How far the connection time may be off a whole quarter hour from "now": TWS's and the
#: client's clocks may disagree by up to two minutes, plus the reply's latency.
TOLERANCE: Final = dt.timedelta(minutes=2, seconds=30)
#: No zone is further from UTC than this (Kiritimati, +14:00).
MAX_OFFSET: Final = dt.timedelta(hours=14)
#: Two zones keep the same clock when their offsets agree at each of these instants
#: around the login: every two weeks through a year.
_PROBES: Final = tuple(dt.timedelta(weeks=2 * k) for k in range(-13, 14))

#: Which of several fitting zones to report: where TWS logins are most likely (financial
#: centres and the most populous zone of each offset). Only the order among zones that can
#: fit the same name and offset matters.
PREFERRED: Final = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Toronto",
    "America/Vancouver",
    "America/Halifax",
    "America/St_Johns",
    "America/Mexico_City",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
    "America/Santiago",
    "America/Bogota",
    "America/Lima",
    "America/Caracas",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Zurich",
    "Europe/Brussels",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Vienna",
    "Europe/Warsaw",
    "Europe/Prague",
    "Europe/Helsinki",
    "Europe/Athens",
    "Europe/Kyiv",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Africa/Johannesburg",
    "Africa/Cairo",
    "Africa/Lagos",
    "Africa/Nairobi",
    "Asia/Jerusalem",
    "Asia/Riyadh",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Jakarta",
    "Asia/Singapore",
    "Asia/Hong_Kong",
    "Asia/Shanghai",
    "Asia/Taipei",
    "Asia/Manila",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Australia/Perth",
    "Australia/Adelaide",
    "Australia/Darwin",
    "Australia/Sydney",
    "Australia/Melbourne",
    "Australia/Brisbane",
    "Pacific/Auckland",
    "Etc/UTC",
    "Etc/GMT",
)
#: Zones never reported: Antarctic research stations (Troll shares the name ``UTC`` with
#: UTC itself, but changes to summer time), where no one logs in to TWS.
_IGNORED_PREFIXES: Final = ("Antarctica/",)

_CONNECTION_TIME = re.compile(r"(\d{8}) (\d\d:\d\d:\d\d)(?: +(.*))?")


@attrs.frozen
class _Table:
    """The shipped names: name -> (zones in the root locale, zones in a regional one)."""

    names: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


@functools.cache
def _table() -> _Table:
    raw = json.loads(resources.files("ibdata").joinpath("_zone_names.json").read_text("utf-8"))
    zones: list[str] = raw["zones"]

    def keep(indices: Iterable[int]) -> tuple[str, ...]:
        return tuple(z for z in (zones[i] for i in indices) if not z.startswith(_IGNORED_PREFIXES))

    names = {name: (keep(first), keep(second)) for name, (first, second) in raw["names"].items()}
    return _Table(names)


@functools.cache
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def candidates(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The zones ``name`` may stand for: (the root locale's and Windows', regional ones).

    An IANA name (``Europe/London``, ``US/Eastern``) stands for itself.
    """
    first, second = _table().names.get(name, ((), ()))
    if "/" in name and name not in first and _zone(name) is not None:
        first = (name, *first)
    return first, second


def parse_connection_time(text: str) -> tuple[dt.datetime, str] | None:
    """The naive wall time and the zone name of a connection time, or None if malformed.

    >>> parse_connection_time("20250415 19:38:30 British Summer Time")
    (datetime.datetime(2025, 4, 15, 19, 38, 30), 'British Summer Time')
    """
    m = _CONNECTION_TIME.fullmatch(text.strip())
    if m is None:
        return None
    try:
        wall = dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H:%M:%S")
    except ValueError:
        return None
    return wall, " ".join((m.group(3) or "").split())


def measure_offset(wall: dt.datetime, now: dt.datetime) -> dt.timedelta | None:
    """The login zone's UTC offset: ``wall`` (naive) against ``now`` (aware), to the quarter
    hour; None when the two are not a whole quarter hour apart within
    :data:`TOLERANCE`, or further apart than any zone is from UTC.
    """
    diff = wall - now.astimezone(UTC).replace(tzinfo=None)
    offset = QUARTER * round(diff / QUARTER)
    if abs(diff - offset) > TOLERANCE or abs(offset) > MAX_OFFSET:
        return None
    return offset


def _offset_at(zone: str, instant: dt.datetime) -> dt.timedelta | None:
    tz = _zone(zone)
    return None if tz is None else instant.astimezone(tz).utcoffset()


def _local_offset(zone: str, wall: dt.datetime) -> dt.timedelta | None:
    tz = _zone(zone)
    return None if tz is None else wall.replace(tzinfo=tz).utcoffset()


def _clocks(zones: Iterable[str], instant: dt.datetime) -> int:
    """How many different clocks ``zones`` keep through the year around ``instant``."""
    return len({tuple(_offset_at(z, instant + p) for p in _PROBES) for z in zones})


def _rank(zone: str, regional: Sequence[str]) -> tuple[int, int, str]:
    order = PREFERRED.index(zone) if zone in PREFERRED else len(PREFERRED)
    return (zone in regional, order, zone)


@attrs.frozen
class Resolution:
    """What the connection time says about the login zone.

    ``zones`` are the zones that fit (empty when unknown), ``reason`` says why in words.
    """

    record: LoginTimeZone
    zones: tuple[str, ...]
    offset: dt.timedelta | None
    reason: str

    def place(self, wall: dt.datetime) -> dt.datetime:
        """The aware UTC instant of the naive login-zone ``wall`` time.

        Raises:
            ValueError: the zone is unknown, or the zones that fit disagree on ``wall``.
        """
        if not self.zones:
            raise ValueError(self.reason)
        instants = {wall.replace(tzinfo=_zone(z)).astimezone(UTC) for z in self.zones}
        if len(instants) > 1:
            raise ValueError(
                f"{self.record.name!r} may be {_listed(self.zones)}, which disagree on "
                f"{wall:%Y-%m-%d %H:%M:%S}"
            )
        return instants.pop()


def _listed(zones: Sequence[str], most: int = 4) -> str:
    shown = ", ".join(zones[:most])
    return shown if len(zones) <= most else f"{shown} and {len(zones) - most} more"


def resolve(conn_time: str, now: dt.datetime | None) -> Resolution:
    """The login zone named by ``conn_time``, checked against ``now``.

    Args:
        conn_time: The handshake's connection time (``20250415 19:38:30 BST``).
        now: The UTC instant at which TWS wrote it (aware), as well as it is known: the
            client's clock when the reply arrived, or TWS's own; None when neither is.
    """
    parsed = parse_connection_time(conn_time)
    if parsed is None:
        name = conn_time.strip()
        return _unknown(name, None, f"the connection time {conn_time!r} is not understood")
    wall, name = parsed
    if not name:
        return _unknown(name, None, f"the connection time {conn_time!r} names no zone")
    first, second = candidates(name)
    every = (*first, *second)
    if not every:
        return _unknown(name, None, f"{name!r} is not a time-zone name ibdata knows")
    offset = None if now is None else measure_offset(wall, now)
    how = "measured"
    if offset is None:
        # No usable clock: the name alone tells the offset when all it may mean agree.
        found = {_local_offset(z, wall) for z in every}
        if len(found) != 1 or None in found:
            return _unknown(
                name,
                None,
                f"{name!r} may be {_listed(sorted(every, key=lambda z: _rank(z, second)))}, "
                "and no clock tells which",
            )
        offset = found.pop()
        how = "implied by the name"
    assert offset is not None
    instant = wall.replace(tzinfo=UTC) - offset
    fits = sorted(
        (z for z in every if _offset_at(z, instant) == offset), key=lambda z: _rank(z, second)
    )
    if not fits:
        return _unknown(
            name,
            offset,
            f"no zone named {name!r} is {_utc(offset)} at {instant:%Y-%m-%d %H:%M} UTC",
        )
    if _clocks(every, instant) == 1:
        certainty = "exact"
    elif _clocks(fits, instant) == 1:
        certainty = "offset"
    else:
        certainty = "ambiguous"
    zones = tuple(fits)
    reason = f"{name!r} at {_utc(offset)} ({how}): {_listed(zones)}"
    return Resolution(LoginTimeZone(name, zones[0], certainty), zones, offset, reason)


def _unknown(name: str, offset: dt.timedelta | None, reason: str) -> Resolution:
    return Resolution(LoginTimeZone(name, None, "unknown"), (), offset, reason)


def _utc(offset: dt.timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


class SessionZone:
    """The login zone of one session, as the connection learns it.

    Made from the connection time and the client's clock when it arrived; when that clock
    gives no usable offset, :attr:`wants_tws_clock` is True and :meth:`use_tws_clock`
    resolves it again against TWS's own time. Thread-safe; shared by every request of the
    session, so an update reaches requests already in flight.
    """

    def __init__(self, conn_time: str, received_at: dt.datetime | None) -> None:
        self.conn_time = conn_time
        self._lock = threading.Lock()
        self._warned = False
        self._resolution = resolve(conn_time, received_at)
        parsed = parse_connection_time(conn_time)
        self.wants_tws_clock = (
            parsed is not None
            and received_at is not None
            and measure_offset(parsed[0], received_at) is None
        )

    @property
    def resolution(self) -> Resolution:
        return self._resolution

    @property
    def record(self) -> LoginTimeZone:
        """The public record for :class:`~ibdata.models.Health`."""
        return self._resolution.record

    @property
    def zone(self) -> str | None:
        """The IANA zone chosen, or None."""
        return self._resolution.record.zone

    def inherit(self, previous: SessionZone) -> None:
        """Take over what an earlier session to the same TWS learned, when TWS gives its login
        zone the same name again (a reconnect): its candidates, narrowed by that session's
        answers, still fit, and TWS's clock need not be asked again."""
        ours, theirs = (
            parse_connection_time(self.conn_time),
            parse_connection_time(previous.conn_time),
        )
        if ours is None or theirs is None or ours[1] != theirs[1]:
            return
        with self._lock:
            self._resolution = previous.resolution
            self.wants_tws_clock = False

    def use_tws_clock(self, tws_now: dt.datetime) -> None:
        """Resolve again with ``tws_now``: TWS's UTC time when it wrote the connection time."""
        parsed = parse_connection_time(self.conn_time)
        if parsed is None or measure_offset(parsed[0], tws_now) is None:
            log.info(
                "TWS's clock (%s) gives no offset for its connection time %r either",
                tws_now.isoformat(),
                self.conn_time,
            )
            return
        resolution = resolve(self.conn_time, tws_now)
        with self._lock:
            self._resolution = resolution
        log.info("TWS login time zone, by TWS's clock: %s", describe(resolution))

    def learn(self, wall: dt.datetime, instant: dt.datetime) -> None:
        """Narrow the zones that fit with one more known time: ``wall`` (naive, in the login
        zone) is TWS's rendering of the UTC ``instant`` — the end of a bars answer to a
        request that gave its end, which TWS echoes in its login zone below server version
        174. Zones whose offset then differs are dropped; a winter ``GMT`` login that
        renders a July end an hour ahead is London's (or Dublin's, the same clock), not
        Reykjavik's. Nothing changes when the two do not differ by whole quarter hours (the
        end was not echoed, e.g. clamped to now) or no zone would be left.
        """
        offset = wall.replace(tzinfo=UTC) - instant.astimezone(UTC)
        if offset % QUARTER or abs(offset) > MAX_OFFSET:
            return
        with self._lock:
            current = self._resolution
            fits = tuple(z for z in current.zones if _offset_at(z, instant) == offset)
            if not fits or fits == current.zones:
                return
            certainty = current.record.certainty
            if certainty == "ambiguous" and _clocks(fits, instant) == 1:
                certainty = "offset"
            reason = f"{current.reason}; {_utc(offset)} at {instant:%Y-%m-%d %H:%M} UTC"
            record = LoginTimeZone(current.record.name, fits[0], certainty)
            self._resolution = Resolution(record, fits, current.offset, reason)
        log.info("TWS login time zone narrowed: %s", describe(self._resolution))

    def place(self, wall: dt.datetime) -> dt.datetime:
        """The UTC instant of a naive login-zone time; see :meth:`Resolution.place`.

        The first time of a session that cannot be placed is logged, with the reason.

        Raises:
            ValueError: it cannot be placed.
        """
        try:
            return self._resolution.place(wall)
        except ValueError as exc:
            with self._lock:
                first, self._warned = not self._warned, True
            if first:
                log.warning(
                    "a time TWS gave in its login zone (%s) cannot be placed: %s; such "
                    "times (the window of a bars answer below server version 174) are "
                    "left out this session",
                    f"{wall:%Y%m%d  %H:%M:%S}",
                    exc,
                )
            raise


def describe(resolution: Resolution) -> str:
    """One line for the log: the record and the reason."""
    r = resolution.record
    return f"{r.zone or 'unknown'} ({r.certainty}; {resolution.reason})"
