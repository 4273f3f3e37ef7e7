"""A raw TWS-protocol client for tests, written with ``struct`` only.

It does not use the simulator's framing code, so it checks that code independently.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

Frame = list[str]


class RawClient:
    """Speaks the TWS socket protocol byte by byte; every read has a deadline."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self._buf = b""

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_bytes(self, data: bytes) -> None:
        """Write raw bytes."""
        self.sock.sendall(data)

    def send(self, *fields: object) -> None:
        """Send one framed message of NUL-terminated fields."""
        payload = b"".join(str(f).encode() + b"\0" for f in fields)
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def hello(self, versions: str = "v100..178") -> Frame:
        """Send the API prefix and version range; return the server's reply fields."""
        text = versions.encode()
        self.sock.sendall(b"API\0" + struct.pack(">I", len(text)) + text)
        return self.read()

    def start_api(self, client_id: int) -> None:
        """Send startApi with ``client_id``."""
        self.send(71, 2, client_id, "")

    def connect_api(self, client_id: int, versions: str | None = "v100..178") -> list[Frame]:
        """Handshake (unless ``versions`` is None: done already) and startApi; returns the
        start-up burst up to the last farm notice (2158, in either error layout)."""
        if versions is not None:
            self.hello(versions)
        self.start_api(client_id)
        return self.read_until(
            lambda f: f[:4] == ["4", "2", "-1", "2158"] or f[:3] == ["4", "-1", "2158"]
        )

    def _fill(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete frame before the deadline")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("no complete frame before the deadline") from None
        if not data:
            return False
        self._buf += data
        return True

    def read(self, timeout: float | None = None) -> Frame:
        """Read one frame's fields; raises EOFError if the server closed, TimeoutError."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self._buf) >= 4:
                (size,) = struct.unpack(">I", self._buf[:4])
                if len(self._buf) >= 4 + size:
                    payload, self._buf = self._buf[4 : 4 + size], self._buf[4 + size :]
                    assert payload.endswith(b"\0"), payload
                    return payload.decode().split("\0")[:-1]
            if not self._fill(deadline):
                raise EOFError("server closed the connection")

    def read_until(
        self, done: Callable[[Frame], bool], timeout: float | None = None
    ) -> list[Frame]:
        """Read frames until one satisfies ``done``; returns all of them, that one last."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        frames: list[Frame] = []
        while True:
            frame = self.read(max(deadline - time.monotonic(), 0.001))
            frames.append(frame)
            if done(frame):
                return frames

    def closed_by_server(self, timeout: float = 3.0) -> bool:
        """True if the server closes the connection within ``timeout`` (frames are skipped)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.read(max(deadline - time.monotonic(), 0.001))
        except EOFError:
            return True
        except TimeoutError:
            return False
        except OSError:
            return True

    def silent_for(self, seconds: float) -> bool:
        """True if nothing at all arrives for ``seconds``."""
        if self._buf:
            return False
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        self._buf += data
        return not data


def bars_request(
    req_id: int,
    symbol: str = "AAPL",
    *,
    end: str = "",
    bar_size: str = "1 hour",
    duration: str = "1 D",
    what: str = "TRADES",
    keep_up_to_date: bool = False,
    sec_type: str = "STK",
    exchange: str = "SMART",
    currency: str = "USD",
    format_date: int = 1,
) -> list[object]:
    """The 23 fields of reqHistoricalData as ibapi sends them (wire reference §3.4)."""
    return [
        20, req_id, 0, symbol, sec_type, "", "0.0", "", "", exchange, "", currency, "", "", 0,
        end, bar_size, duration, 0, what, format_date, int(keep_up_to_date), "",
    ]  # fmt: skip
