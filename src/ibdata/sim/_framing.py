"""TWS socket framing, written from the protocol reference, independent of ``ibapi``.

A frame is a 4-byte big-endian payload length followed by the payload; the payload is a run
of ASCII fields, each terminated by a NUL byte. Before the first frame a client sends the
raw prefix ``API\\0`` and one frame holding the un-terminated version text ``v<min>..<max>``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable

import attrs

PREFIX = b"API\0"
_LEN = struct.Struct(">I")
_HELLO = re.compile(r"v(\d{1,4})(?:\.\.(\d{1,4}))?(?: ([ -~]*))?")

#: Largest frame the simulator accepts from a client. Real requests are a few hundred bytes.
MAX_CLIENT_FRAME = 64 * 1024

Field = str | int | float | bool


class ProtocolError(Exception):
    """A peer broke the framing rules; the connection cannot continue."""


def field_text(value: Field) -> str:
    """Render one field as TWS does: booleans as ``0``/``1``, numbers as decimal text."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def encode(fields: Iterable[Field]) -> bytes:
    """Encode one message: length prefix plus NUL-terminated ASCII fields.

    Raises:
        ValueError: a field holds a NUL byte or a non-ASCII character, or there are no fields
            (a zero-length frame would stall ``ibapi``'s reader forever).
    """
    parts: list[str] = []
    for value in fields:
        text = field_text(value)
        if "\0" in text:
            raise ValueError(f"field {text!r} contains a NUL byte")
        parts.append(text)
    if not parts:
        raise ValueError("a message needs at least one field")
    try:
        payload = ("\0".join(parts) + "\0").encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError(f"fields must be ASCII: {parts!r}") from exc
    return _LEN.pack(len(payload)) + payload


@attrs.frozen
class Hello:
    """The client's version announcement."""

    min_version: int
    max_version: int
    options: str


def parse_hello(payload: bytes) -> Hello:
    """Parse ``v<min>..<max>[ <options>]`` (or ``v<n>``); a trailing NUL is tolerated.

    Raises:
        ProtocolError: the text is not a version range.
    """
    try:
        text = payload.decode("ascii").rstrip("\0")
    except UnicodeDecodeError as exc:
        raise ProtocolError("client hello is not ASCII") from exc
    m = _HELLO.fullmatch(text)
    if m is None:
        raise ProtocolError(f"malformed client hello {text[:40]!r}")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if lo > hi:
        raise ProtocolError(f"client version range {lo}..{hi} is empty")
    return Hello(lo, hi, m.group(3) or "")


class FrameReader:
    """Cuts a byte stream into frames, refusing frames larger than ``max_frame``.

    Zero-length frames are skipped (they carry nothing); a frame that is too large raises
    :class:`ProtocolError` before its payload is buffered, so memory stays bounded.
    """

    def __init__(self, max_frame: int = MAX_CLIENT_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes and return every complete frame payload."""
        self._buf += data
        out: list[bytes] = []
        pos = 0
        buf = self._buf
        while len(buf) - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > self._max:
                raise ProtocolError(f"frame of {size} bytes exceeds the limit of {self._max}")
            if len(buf) - pos - 4 < size:
                break
            if size:
                out.append(bytes(buf[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        if pos:
            del buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)


def split_fields(payload: bytes) -> list[str]:
    """Split a payload into fields, dropping what follows the last NUL (as both clients do).

    Non-ASCII bytes are kept visible as backslash escapes rather than failing.
    """
    text = payload.decode("ascii", errors="backslashreplace")
    parts = text.split("\0")
    parts.pop()
    return parts
