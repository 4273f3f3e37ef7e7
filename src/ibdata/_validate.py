"""Argument checks shared by the client, the REST adapter and the CLI.

Every check raises ``ValueError`` or ``TypeError`` naming the parameter and, for closed
sets, the legal values, before anything is sent to TWS.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import threading
from typing import TypeVar

from ibdata.models import BarSize, SecType, WhatToShow

E = TypeVar("E", bound=enum.Enum)

_DURATION = re.compile(r"([1-9]\d*) ([SDWMY])")
_DURATION_LIMITS = {"D": 365, "W": 52, "M": 12, "Y": 68, "S": 86400}
_ALIASES: dict[type[enum.Enum], dict[str, str]] = {BarSize: {"1W": "1 week", "1M": "1 month"}}
#: The longest wait Python's locks and sockets accept on this platform (about 292 years on
#: 64-bit Linux); a longer timeout would raise OverflowError only once a request is sent.
MAX_SECONDS = threading.TIMEOUT_MAX


def choice(enum_type: type[E], value: object, name: str) -> E:
    """Accept a member of ``enum_type`` or its exact IB string (case-insensitive for
    what-to-show and security types)."""
    if isinstance(value, enum_type):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a {enum_type.__name__} or a string, got {value!r}")
    text = _ALIASES.get(enum_type, {}).get(value, value)
    if enum_type is not BarSize:
        text = text.upper()
    for member in enum_type:
        if member.value == text:
            return member
    legal = ", ".join(repr(m.value) for m in enum_type)
    raise ValueError(f"{name} must be one of {legal}; got {value!r}")


def bar_size(value: object) -> BarSize:
    """A :class:`BarSize` from the enum or IB's string (``"1 hour"``)."""
    return choice(BarSize, value, "bar_size")


def what_to_show(value: object) -> WhatToShow:
    """A :class:`WhatToShow` from the enum or IB's string (``"TRADES"``)."""
    return choice(WhatToShow, value, "what_to_show")


def sec_type(value: object) -> SecType:
    """A :class:`SecType` from the enum or IB's string (``"FUT"``)."""
    return choice(SecType, value, "sec_type")


def duration(value: object) -> str:
    """IB's duration string ``"<n> <S|D|W|M|Y>"`` within IB's limits (365 D, 52 W, 12 M)."""
    if not isinstance(value, str):
        raise TypeError(f"duration must be a string like '1 D', got {value!r}")
    m = _DURATION.fullmatch(value)
    if m is None:
        raise ValueError(
            f"duration must be '<positive integer> <unit>' with unit S, D, W, M or Y "
            f"(e.g. '1 D', '3600 S', '1 Y'); got {value!r}"
        )
    n, unit = int(m.group(1)), m.group(2)
    if n > _DURATION_LIMITS[unit]:
        hint = " (write longer durations in Y)" if unit in "DWM" else ""
        raise ValueError(
            f"duration {value!r} exceeds IB's limit of {_DURATION_LIMITS[unit]} {unit}{hint}"
        )
    return value


#: The one rule for times, in every face (Python, CLI, REST): what a time without a zone gets.
NO_ZONE = (
    "has no time zone, and ibdata never guesses one: add Z for UTC "
    "(2025-03-12T15:00Z) or an offset (2025-03-12T10:00-05:00); a date alone "
    "(2025-03-12) means 00:00 UTC"
)


def when(value: object, name: str) -> dt.datetime:
    """A point in time, by the one rule of every face of ibdata: an aware datetime; a date
    (00:00 UTC of it); or an ISO 8601 string: a date alone is 00:00 UTC, a date-time needs
    ``Z`` or an offset. A naive datetime or a zone-less date-time string is refused with
    :data:`NO_ZONE`, whichever face it came through."""
    if isinstance(value, str):
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{name} is not an ISO 8601 date or time: {value!r} (e.g. 2025-03-12, "
                "2025-03-12T15:00Z, 2025-03-12T10:00-05:00)"
            ) from None
        if parsed.tzinfo is None:
            if len(text) <= 10 and "T" not in text.upper() and " " not in text:  # a date alone
                return parsed.replace(tzinfo=dt.timezone.utc)
            raise ValueError(f"{name} {value!r} {NO_ZONE}")
        return parsed
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} {value.isoformat()!r} {NO_ZONE}")
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    raise TypeError(
        f"{name} must be an aware datetime, a date or an ISO 8601 string, got {value!r}"
    )


def optional_when(value: object, name: str) -> dt.datetime | None:
    """None, or :func:`when`."""
    return None if value is None else when(value, name)


def aware(value: object, name: str) -> dt.datetime:
    """A timezone-aware datetime; naive ones are refused (ibdata never guesses a zone)."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a timezone-aware datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware (e.g. datetime(..., tzinfo=timezone.utc)); "
            f"got naive {value!r}"
        )
    return value


def optional_aware(value: object, name: str) -> dt.datetime | None:
    """None, or a timezone-aware datetime."""
    return None if value is None else aware(value, name)


def seconds(value: object, name: str) -> float:
    """A positive number of seconds, at most :data:`MAX_SECONDS`, from a number or a
    :class:`~datetime.timedelta`."""
    given = value
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be seconds (a number) or a timedelta, got {value!r}")
    if not (0 < value <= MAX_SECONDS):  # also refuses NaN and infinity
        limit = f"{MAX_SECONDS:.0f}"
        raise ValueError(
            f"{name} must be a positive number of seconds up to {limit}; got {given!r}"
        )
    return float(value)


def optional_seconds(value: object, name: str) -> float | None:
    """None (use the default), or positive seconds."""
    return None if value is None else seconds(value, name)


def flag(value: object, name: str) -> bool:
    """A real bool (``1``/``"yes"`` are refused, so typos cannot flip a flag)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def text(value: object, name: str, *, max_len: int = 64, allow_empty: bool = False) -> str:
    """Printable ASCII without control characters, at most ``max_len`` characters."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r}")
    if not value and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    if len(value) > max_len:
        raise ValueError(f"{name} must be at most {max_len} characters, got {len(value)}")
    if not all(" " <= ch <= "~" for ch in value):
        raise ValueError(
            f"{name} must be printable ASCII without control characters, got {value!r}"
        )
    return value


def port(value: object, name: str = "port") -> int:
    """A TCP port 1..65535."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not 1 <= value <= 65535:
        raise ValueError(f"{name} must be 1..65535, got {value}")
    return value


def client_id(value: object, name: str = "client_id") -> int | None:
    """None (random), or an API client id 0..2147483646 (2147483647 is IB's 'unset')."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer or None, got {value!r}")
    if not 0 <= value <= 2147483646:
        raise ValueError(f"{name} must be 0..2147483646, got {value}")
    return value


def count(value: object, name: str) -> int:
    """A positive integer (a bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def rate(value: object, name: str) -> float:
    """A positive, finite number of events a second (a bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number (per second), got {value!r}")
    if not (0 < value < float("inf")):  # also refuses NaN
        raise ValueError(f"{name} must be a positive, finite number per second; got {value!r}")
    return float(value)
