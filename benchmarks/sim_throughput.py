"""How many bars per second the simulator serves in one large response, next to how fast
``ib_async`` 2.1.0 and ``ibapi`` 9.81.1 decode that same response.

The simulator must never be the bottleneck of a benchmark: if it serves bars more slowly than
a client decodes them, a client benchmark run against it measures the simulator.

What is timed (``time.perf_counter``, wall time):

* **simulator**: a raw socket client (``struct`` framing only, no field decoding) sends one
  ``reqHistoricalData`` (AAPL, ``1 min``, ``TRADES``, ``useRTH=0``, formatDate 1) and the clock
  stops when the last byte of the historicalData (17) frame has been read. This covers the
  simulator's request parsing, bar generation, formatting, encoding, its writer thread and the
  loopback socket. Measured at server version 178 (what ``ib_async`` negotiates) and 157 (what
  ``ibapi`` 9.81.1 negotiates: integer volumes, the legacy date form).
* **ib_async**: the captured frame's payload is split as ``ib_async.client.Client`` does
  (UTF-8 decode, split on NUL, drop the last empty field), then fed to
  ``ib_async.decoder.Decoder(wrapper, serverVersion=178).interpret`` with a minimal wrapper that
  keeps the bars. The "receive path" row adds the date parsing that ``ib_async``'s own
  ``Wrapper.historicalData`` does per bar (``ib_async.util.parseIBDatetime``), i.e. all the
  per-bar work behind ``IB.reqHistoricalData``.
* **ibapi**: ``ibapi.comm.read_fields`` on the sv-157 frame, then
  ``ibapi.decoder.Decoder(wrapper, 157).interpret``.

Every repetition measures every component once, round-robin, so all rows see the same machine
load; the table reports medians. One untimed request per server version comes first: it
captures the frame the decoders are given and fills the simulator's cache of encoded
sessions, so the plain simulator rows measure a repeated window. The "session cache off" row
runs a second simulator with ``bar_cache_bytes=0``: every request generates and encodes every
bar, which is what the first request for a new window costs.

Run ``python benchmarks/sim_throughput.py [--quick] [--repeat N] [--output FILE]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ibdata import ibapi_release
from ibdata.sim import FixedClock, Simulator

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ holds _common.py
from _common import leftover_threads, machine

UTC = dt.timezone.utc

#: The simulator's clock: a Wednesday evening, after the US close.
CLOCK_AT = dt.datetime(2025, 3, 12, 21, 0, tzinfo=UTC)
#: 21 weeks of 1-minute all-hours bars: 105 sessions x 960 bars = 100,800 bars.
FULL_DURATION = "21 W"
#: One week: 5 sessions x 960 bars = 4,800 bars.
QUICK_DURATION = "1 W"
BAR_SIZE = "1 min"
SYMBOL = "AAPL"
WHAT_TO_SHOW = "TRADES"
FULL_REPEAT = 5
QUICK_REPEAT = 1
#: Server versions: the highest the simulator offers (ib_async takes it) and ibapi 9.81.1's.
SV_IB_ASYNC = 178
SV_IBAPI = 157
#: The installed ibapi release, as its rows are labelled (9.81.1 in the project's venv).
IBAPI = ibapi_release().version

_LEN = struct.Struct(">I")
_SOCKET_TIMEOUT = 120.0


# --------------------------------------------------------------------------------------
# a raw TWS socket client: framing only


class RawTws:
    """A blocking TWS API client that frames bytes and never decodes bar fields."""

    def __init__(self, port: int, max_version: int, client_id: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=_SOCKET_TIMEOUT)
        try:
            hello = f"v100..{max_version}".encode("ascii")
            self.sock.sendall(b"API\0" + _LEN.pack(len(hello)) + hello)
            self.server_version = int(self.read_frame().split(b"\0")[0])
            self.send([71, 2, client_id, ""])  # startApi
            while True:  # the start-up burst ends with the 2158 (sec-def farm) notice
                fields = self.read_frame().split(b"\0")
                if fields[0] == b"4" and fields[3] == b"2158":
                    break
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> RawTws:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, fields: Sequence[object]) -> None:
        """Send one frame of NUL-terminated fields."""
        payload = b"".join(str(f).encode("ascii") + b"\0" for f in fields)
        self.sock.sendall(_LEN.pack(len(payload)) + payload)

    def _read_exact(self, n: int) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if k == 0:
                raise EOFError("the simulator closed the connection")
            got += k
        return buf

    def read_frame(self) -> bytearray:
        """One frame's payload, as raw bytes."""
        (size,) = _LEN.unpack(self._read_exact(4))
        return self._read_exact(size)

    def timed_bars(self, req_id: int, duration: str) -> tuple[float, bytes]:
        """Request bars; return (seconds from sending the request to holding the complete
        historicalData frame, that frame's payload)."""
        request = [
            20, req_id, 0, SYMBOL, "STK", "", "0.0", "", "", "SMART", "", "USD", "", "", 0,
            "", BAR_SIZE, duration, 0, WHAT_TO_SHOW, 1, 0, "",
        ]  # fmt: skip
        start = time.perf_counter()
        self.send(request)
        while True:
            payload = self.read_frame()
            if payload.startswith(b"17\0"):
                break
            if payload.startswith(b"4\0"):
                fields = payload.split(b"\0")
                if fields[2] == str(req_id).encode():
                    text = b" ".join(fields[3:5]).decode(errors="replace")
                    raise RuntimeError(f"the simulator refused the request: {text}")
        elapsed = time.perf_counter() - start
        return elapsed, bytes(payload)


def bar_count(payload: bytes) -> int:
    """The itemCount field of a historicalData (17) payload."""
    return int(payload.split(b"\0", 5)[4])


# --------------------------------------------------------------------------------------
# the decoders


class AsyncBarSink:
    """The two ``ib_async`` wrapper methods a historicalData message calls; keeps the bars."""

    def __init__(self) -> None:
        self.bars: list[Any] = []
        self.ended = 0

    def historicalData(self, req_id: int, bar: Any) -> None:
        self.bars.append(bar)

    def historicalDataEnd(self, req_id: int, start: str, end: str) -> None:
        self.ended += 1


class AsyncDateParsingSink(AsyncBarSink):
    """Also parses each bar's date, as ``ib_async.wrapper.Wrapper.historicalData`` does."""

    def __init__(self) -> None:
        super().__init__()
        from ib_async.util import parseIBDatetime

        self._parse = parseIBDatetime

    def historicalData(self, req_id: int, bar: Any) -> None:
        bar.date = self._parse(bar.date)
        self.bars.append(bar)


def ib_async_split(payload: bytes) -> list[str]:
    """Fields of a payload the way ``ib_async.client.Client._onSocketHasData`` cuts them."""
    fields = payload.decode(errors="backslashreplace").split("\0")
    fields.pop()
    return fields


def _make_ibapi_sink() -> Any:
    from ibapi.wrapper import EWrapper

    class IbapiBarSink(EWrapper):  # type: ignore[misc]  # ibapi has no type hints
        """The two ``ibapi`` wrapper methods a historicalData message calls; keeps the bars."""

        def __init__(self) -> None:
            super().__init__()
            self.bars: list[Any] = []
            self.ended = 0

        def historicalData(self, reqId: int, bar: Any) -> None:  # noqa: N803
            self.bars.append(bar)

        def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:  # noqa: N803
            self.ended += 1

    return IbapiBarSink()


# --------------------------------------------------------------------------------------
# measuring


class Row:
    """One component's timings."""

    def __init__(self, name: str, bars: int, baseline: str | None, run: Callable[[], float]):
        self.name = name
        self.bars = bars
        self.baseline = baseline  # name of the simulator row this one is compared with
        self.run = run
        self.seconds: list[float] = []

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        return self.bars / self.median


def _decode_run(
    split: Callable[[bytes], Sequence[Any]],
    decoder: Callable[[Any], Callable[[Sequence[Any]], None]],
    new_sink: Callable[[], Any],
    payload: bytes,
    bars: int,
    *,
    time_split: bool,
    time_decode: bool,
) -> Callable[[], float]:
    """A timed run of ``split`` and/or a decoder's ``interpret`` on ``payload``; the decoder is
    built (for a fresh sink) before the clock starts. Checks that every bar arrived."""
    pre_split = split(payload)

    def run() -> float:
        sink = new_sink()
        interpret = decoder(sink)
        start = time.perf_counter()
        fields = split(payload) if time_split else pre_split
        if time_decode:
            interpret(fields)
        elapsed = time.perf_counter() - start
        if time_decode and (len(sink.bars) != bars or sink.ended != 1):
            raise RuntimeError(f"decoder delivered {len(sink.bars)} of {bars} bars")
        if not time_decode and len(fields) != 5 + 8 * bars:
            raise RuntimeError(f"split gave {len(fields)} fields for {bars} bars")
        return elapsed

    return run


def measure(duration: str, repeat: int) -> tuple[list[Row], dict[str, Any]]:
    """Run every component ``repeat`` times, round-robin; returns the rows and run facts."""
    from ib_async.decoder import Decoder as AsyncDecoder
    from ibapi.comm import read_fields
    from ibapi.decoder import Decoder as IbapiDecoder

    facts: dict[str, Any] = {"duration": duration, "repeat": repeat}
    req_ids = iter(range(1000, 1_000_000))
    sim = Simulator(pacing=None, clock=FixedClock(CLOCK_AT))
    # The same simulator with its session cache off: every request generates every bar,
    # which is what the first request for a window costs.
    cold_sim = Simulator(pacing=None, clock=FixedClock(CLOCK_AT), bar_cache_bytes=0)
    with (
        sim,
        cold_sim,
        RawTws(sim.port, SV_IB_ASYNC, 1) as modern,
        RawTws(sim.port, SV_IBAPI, 2) as legacy,
        RawTws(cold_sim.port, SV_IB_ASYNC, 3) as cold,
    ):
        if (modern.server_version, legacy.server_version) != (SV_IB_ASYNC, SV_IBAPI):
            raise RuntimeError(
                f"negotiated server versions {modern.server_version}/{legacy.server_version}"
            )
        _, frame178 = modern.timed_bars(next(req_ids), duration)
        _, frame157 = legacy.timed_bars(next(req_ids), duration)
        bars = bar_count(frame178)
        if bar_count(frame157) != bars:
            raise RuntimeError("the sv-157 and sv-178 responses hold different bar counts")
        facts["bars"] = bars
        facts["frame_bytes"] = {SV_IB_ASYNC: len(frame178) + 4, SV_IBAPI: len(frame157) + 4}

        def serve(client: RawTws, expected: bytes) -> Callable[[], float]:
            def run() -> float:
                seconds, payload = client.timed_bars(next(req_ids), duration)
                # the request id is the only field that differs between repetitions
                if payload.split(b"\0", 2)[2] != expected.split(b"\0", 2)[2]:
                    raise RuntimeError("the simulator sent a different response")
                return seconds

            return run

        def async_interpret(sink: Any) -> Callable[[Sequence[Any]], None]:
            return AsyncDecoder(sink, SV_IB_ASYNC).interpret

        def ibapi_interpret(sink: Any) -> Callable[[Sequence[Any]], None]:
            interpret = IbapiDecoder(sink, SV_IBAPI).interpret
            if "msgId" not in inspect.signature(interpret).parameters:
                return interpret  # type: ignore[no-any-return]
            # 10.37+: the fields after the message id, and the id (as its EClient.run does)
            return lambda fields: interpret(tuple(fields[1:]), int(fields[0]))

        sim178 = f"simulator, sv {SV_IB_ASYNC}: request → complete frame"
        sim157 = f"simulator, sv {SV_IBAPI}: request → complete frame"
        rows = [
            Row(sim178, bars, None, serve(modern, frame178)),
            Row(SIM_COLD, bars, sim178, serve(cold, frame178)),
            Row(
                "ib_async 2.1.0: split frame into fields",
                bars,
                sim178,
                _decode_run(
                    ib_async_split, async_interpret, AsyncBarSink, frame178, bars,
                    time_split=True, time_decode=False,
                ),
            ),
            Row(
                "ib_async 2.1.0: Decoder.interpret",
                bars,
                sim178,
                _decode_run(
                    ib_async_split, async_interpret, AsyncBarSink, frame178, bars,
                    time_split=False, time_decode=True,
                ),
            ),
            Row(
                "ib_async 2.1.0: split + interpret + parseIBDatetime",
                bars,
                sim178,
                _decode_run(
                    ib_async_split, async_interpret, AsyncDateParsingSink, frame178, bars,
                    time_split=True, time_decode=True,
                ),
            ),
            Row(sim157, bars, None, serve(legacy, frame157)),
            Row(
                f"ibapi {IBAPI}: comm.read_fields",
                bars,
                sim157,
                _decode_run(
                    read_fields, ibapi_interpret, _make_ibapi_sink, frame157, bars,
                    time_split=True, time_decode=False,
                ),
            ),
            Row(
                f"ibapi {IBAPI}: Decoder.interpret",
                bars,
                sim157,
                _decode_run(
                    read_fields, ibapi_interpret, _make_ibapi_sink, frame157, bars,
                    time_split=False, time_decode=True,
                ),
            ),
            Row(
                f"ibapi {IBAPI}: read_fields + interpret",
                bars,
                sim157,
                _decode_run(
                    read_fields, ibapi_interpret, _make_ibapi_sink, frame157, bars,
                    time_split=True, time_decode=True,
                ),
            ),
        ]  # fmt: skip
        for _ in range(repeat):
            for row in rows:
                row.seconds.append(row.run())
    leftover = leftover_threads(("ibdata-sim",))
    if leftover:
        raise RuntimeError(f"simulator threads still running: {leftover}")
    return rows, facts


# --------------------------------------------------------------------------------------
# reporting


SIM_COLD = f"simulator, sv {SV_IB_ASYNC}, session cache off: request → complete frame"


def _rate(x: float) -> str:
    return f"{x:,.0f}"


def render(rows: list[Row], facts: dict[str, Any], host: dict[str, str]) -> str:
    """The results as markdown: machine, table, conclusion."""
    by_name = {r.name: r for r in rows}
    sizes = facts["frame_bytes"]
    lines = [
        "### sim_throughput",
        "",
        f"One response of {facts['bars']:,} bars ({SYMBOL} `{BAR_SIZE}` {WHAT_TO_SHOW}, "
        f"useRTH=0, duration `{facts['duration']}`); historicalData frame of "
        f"{sizes[SV_IB_ASYNC]:,} bytes at sv {SV_IB_ASYNC}, {sizes[SV_IBAPI]:,} at sv {SV_IBAPI}. "
        f"{facts['repeat']} repetition(s), round-robin.",
        "",
        *(f"- {key}: {value}" for key, value in host.items()),
        "",
        "| component | bars | median s | min s | max s | median bars/s | speed vs simulator |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = by_name[r.baseline] if r.baseline else r
        lines.append(
            f"| {r.name} | {r.bars:,} | {r.median:.4f} | {min(r.seconds):.4f} | "
            f"{max(r.seconds):.4f} | {_rate(r.rate)} | {r.rate / base.rate:.2f}x |"
        )
    lines += [
        "",
        "*speed vs simulator*: the row's bars/s divided by the simulator's bars/s at the same "
        "server version. Above 1x the client works through the response faster than the "
        "simulator produces it.",
        "",
    ]
    client = by_name["ib_async 2.1.0: split + interpret + parseIBDatetime"]
    decode = by_name["ib_async 2.1.0: Decoder.interpret"]
    for sim, how in ((rows[0], "repeated window"), (by_name[SIM_COLD], "first request, cold")):
        for other, what in ((client, "whole receive path"), (decode, "Decoder.interpret")):
            ratio = other.rate / sim.rate
            if ratio < 1:
                verdict = f"the simulator is {1 / ratio:.2f}x as fast: not the bottleneck"
            else:
                verdict = f"ib_async is {ratio:.2f}x as fast: the simulator is the bottleneck"
            lines.append(
                f"- Simulator ({how}) {_rate(sim.rate)} bars/s vs ib_async {what} "
                f"{_rate(other.rate)} bars/s: {verdict}."
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the markdown table (and write it to ``--output``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="about 5,000 bars, 1 repetition (for tests)"
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help=f"repetitions (default {FULL_REPEAT})"
    )
    parser.add_argument("--output", help="also write the markdown to this file")
    args = parser.parse_args(argv)
    repeat = (
        args.repeat if args.repeat is not None else (QUICK_REPEAT if args.quick else FULL_REPEAT)
    )
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    host = machine()
    rows, facts = measure(QUICK_DURATION if args.quick else FULL_DURATION, repeat)
    text = render(rows, facts, host)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
