"""The ``ibapi`` release installed in this environment, as the tests see it.

The suite runs with every supported release (PyPI's 9.81.1 and IB's 10.x, see
``scripts/ibapi-compat``). Tests that drive ``ibapi`` directly use this module, which finds
out what the installed release is and how it is called from ``ibapi`` itself, independently
of :mod:`ibdata._ibapi` (the code under test). Where releases behave differently, a test
asserts the behaviour of the installed one (``IS_9_81``), never skips it.
"""

from __future__ import annotations

import inspect
from decimal import Decimal
from typing import Any

import ibapi
import ibapi.comm
import ibapi.contract
import ibapi.decoder
import ibapi.server_versions
import ibapi.wrapper

#: The release, e.g. ``(9, 81, 1)`` or ``(10, 51, 1)``.
VERSION: tuple[int, ...] = tuple(
    int(p) for p in str(ibapi.get_version_string()).replace("-", ".").split(".")[:3]
)
IS_9_81 = VERSION[0] < 10
#: The highest server version the release can negotiate, and what ibdata offers with it.
MAX_CLIENT_VERSION = int(ibapi.server_versions.MAX_CLIENT_VER)
OFFERED = min(MAX_CLIENT_VERSION, 200)
#: From 10.37 the decoder takes the fields after the message id, and the message id.
INTERPRET_TAKES_ID = "msgId" in inspect.signature(ibapi.decoder.Decoder.interpret).parameters
#: From 10.37 ``EWrapper.error`` gets the error's time before its code.
ERROR_HAS_TIME = "errorTime" in inspect.signature(ibapi.wrapper.EWrapper.error).parameters
#: From 10.30 ``Contract`` has ``lastTradeDate``, which contractData carries from server
#: version 182.
HAS_LAST_TRADE_DATE = hasattr(ibapi.contract.Contract(), "lastTradeDate")
#: From 10.37 the decoder reads historicalDataEnd (108) and currentTimeInMillis (109), the
#: messages of server versions 196 and 197.
DECODES_108_AND_109 = {108, 109} <= set(ibapi.decoder.Decoder.msgId2handleInfo)


def versions(candidates: list[int]) -> list[int]:
    """The server versions of ``candidates`` this release can negotiate."""
    return [sv for sv in candidates if sv <= OFFERED]


def fields_of(frame: bytes) -> tuple[bytes, ...]:
    """Cut one frame with ibapi's own ``read_msg``/``read_fields``; nothing may be left over."""
    size, payload, rest = ibapi.comm.read_msg(frame)
    assert (size, rest) == (len(frame) - 4, b"")
    return tuple(ibapi.comm.read_fields(payload))


def interpret(decoder: Any, fields: tuple[bytes, ...]) -> None:
    """Call the decoder the way this release's own message loop does."""
    if INTERPRET_TAKES_ID:
        decoder.interpret(fields[1:], int(fields[0]))
    else:
        decoder.interpret(fields)


def process_fields(fields: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """What a decoder's ``process…`` method is handed: every field in 9.81-10.30, the
    fields after the message id from 10.37."""
    return fields[1:] if INTERPRET_TAKES_ID else fields


def error_args(*args: Any) -> tuple[int, str]:
    """``(code, text)`` from the arguments after ``reqId`` of any release's ``error``."""
    if len(args) >= 3 and isinstance(args[1], int) and isinstance(args[2], str):
        return args[1], args[2]
    return args[0], args[1]


def wap(bar: Any) -> Any:
    """A decoded bar's WAP: ``average`` in 9.81, ``wap`` in 10.x."""
    return bar.average if IS_9_81 else bar.wap


def number(value: Any) -> Any:
    """A decoded size as a plain number: 10.x decodes volume and WAP as ``Decimal``."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
