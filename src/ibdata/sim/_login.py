"""The simulator's connection time: the wall time of its login zone and that zone's name.

Real TWS names its login zone as its Java runtime does, and captures show both styles:
``20230228 17:24:14 EST`` and ``20250415 19:38:30 British Summer Time``. The simulator
gives either:

* ``"short"``: the abbreviation of the IANA database (``zoneinfo``'s ``tzname()``:
  ``GMT``, ``BST``, ``CET``, ``EST``, ``CST``, ``IST``, ``AEDT``). Java's short names
  mostly agree; where Java has none it prints ``GMT+08:00`` instead (⚠ not modelled).
* ``"long"``: Java's long names with its default (CLDR) locale data in English, for the
  zones in :data:`JAVA_LONG_NAMES`, copied from what Java 17's
  ``TimeZone.getDisplayName(daylight, LONG, Locale.ENGLISH)`` prints. Other zones are
  refused.

This table is the simulator's own, kept apart from the client's on purpose: the simulator
is an independent check on the client.
"""

from __future__ import annotations

import datetime as dt
from typing import Final
from zoneinfo import ZoneInfo

UTC: Final = dt.timezone.utc

#: How the login zone may be named in the connection time.
STYLES: Final = ("short", "long")

_CET = ("Central European Standard Time", "Central European Summer Time")
_EET = ("Eastern European Standard Time", "Eastern European Summer Time")
_ET = ("Eastern Standard Time", "Eastern Daylight Time")
_CT = ("Central Standard Time", "Central Daylight Time")
_MT = ("Mountain Standard Time", "Mountain Daylight Time")
_PT = ("Pacific Standard Time", "Pacific Daylight Time")
_AET = ("Australian Eastern Standard Time", "Australian Eastern Daylight Time")
_UTC = ("Coordinated Universal Time", "Coordinated Universal Time")
_GMT = ("Greenwich Mean Time", "Greenwich Mean Time")

#: Java's English long names (CLDR locale data): zone -> (standard, daylight).
JAVA_LONG_NAMES: Final[dict[str, tuple[str, str]]] = {
    "UTC": _UTC,
    "Etc/UTC": _UTC,
    "GMT": _GMT,
    "Etc/GMT": _GMT,
    "Europe/London": ("Greenwich Mean Time", "British Summer Time"),
    "Europe/Dublin": ("Greenwich Mean Time", "Irish Standard Time"),
    "Europe/Lisbon": ("Western European Standard Time", "Western European Summer Time"),
    "Europe/Amsterdam": _CET,
    "Europe/Berlin": _CET,
    "Europe/Brussels": _CET,
    "Europe/Madrid": _CET,
    "Europe/Paris": _CET,
    "Europe/Rome": _CET,
    "Europe/Stockholm": _CET,
    "Europe/Vienna": _CET,
    "Europe/Zurich": _CET,
    "Europe/Athens": _EET,
    "Europe/Helsinki": _EET,
    "Europe/Moscow": ("Moscow Standard Time", "Moscow Summer Time"),
    "America/New_York": _ET,
    "America/Toronto": _ET,
    "US/Eastern": _ET,
    "America/Chicago": _CT,
    "US/Central": _CT,
    "America/Denver": _MT,
    "America/Phoenix": _MT,
    "US/Mountain": _MT,
    "America/Los_Angeles": _PT,
    "US/Pacific": _PT,
    "America/Sao_Paulo": ("Brasilia Standard Time", "Brasilia Summer Time"),
    "Asia/Shanghai": ("China Standard Time", "China Daylight Time"),
    "Asia/Hong_Kong": ("Hong Kong Standard Time", "Hong Kong Summer Time"),
    "Asia/Taipei": ("Taipei Standard Time", "Taipei Daylight Time"),
    "Asia/Tokyo": ("Japan Standard Time", "Japan Daylight Time"),
    "Asia/Seoul": ("Korean Standard Time", "Korean Daylight Time"),
    "Asia/Singapore": ("Singapore Standard Time", "Singapore Daylight Time"),
    "Asia/Kolkata": ("India Standard Time", "Kolkata Daylight Time"),
    "Asia/Calcutta": ("India Standard Time", "Kolkata Daylight Time"),
    "Asia/Dubai": ("Gulf Standard Time", "Dubai Daylight Time"),
    "Asia/Jerusalem": ("Israel Standard Time", "Israel Daylight Time"),
    "Australia/Sydney": _AET,
    "Australia/Melbourne": _AET,
    "Australia/Brisbane": _AET,
    "Australia/Perth": ("Australian Western Standard Time", "Australian Western Daylight Time"),
    "Pacific/Auckland": ("New Zealand Standard Time", "New Zealand Daylight Time"),
    "Africa/Johannesburg": ("South Africa Standard Time", "Johannesburg Daylight Time"),
}


def check_style(style: str, login_tz: str) -> None:
    """Refuse a naming style the simulator cannot honour for ``login_tz``.

    Raises:
        ValueError: an unknown style, or ``"long"`` for a zone without a long name here.
    """
    if style not in STYLES:
        raise ValueError(f"login_tz_names must be one of {', '.join(STYLES)}; got {style!r}")
    if style == "long" and login_tz not in JAVA_LONG_NAMES:
        raise ValueError(
            f"login_tz_names='long': the simulator has no Java long name for {login_tz!r} "
            f"(it has them for {', '.join(sorted(JAVA_LONG_NAMES))})"
        )


def _daylight(tz: ZoneInfo, at: dt.datetime) -> bool:
    """True when ``tz`` is on summer time at ``at``: ahead of its lowest offset that year.

    (Not ``dst()``: the database gives Dublin's winter time as a negative DST, which Java
    does not.)
    """
    offsets = [(at + dt.timedelta(days=30 * k)).astimezone(tz).utcoffset() for k in range(-6, 7)]
    now = at.astimezone(tz).utcoffset()
    return now is not None and now > min(o for o in offsets if o is not None)


def connection_time(now: dt.datetime, login_tz: str, style: str) -> str:
    """The handshake's connection time at ``now`` (aware): ``yyyymmdd hh:mm:ss <name>``."""
    tz = ZoneInfo(login_tz)
    local = now.astimezone(tz)
    if style == "long":
        standard, daylight = JAVA_LONG_NAMES[login_tz]
        name = daylight if _daylight(tz, now) else standard
    else:
        name = local.tzname() or login_tz
    return f"{local:%Y%m%d %H:%M:%S} {name}"
