"""The recorded captures, and the scenarios that replay them to ibdata.

Two files hold the captures, in the same shape: the shared reference
``../shared/reference/real-tws-captures.json`` (read where it is, relative to the project
root, never copied) and this package's ``captures.json`` (captures found for issue 14).
A group has ``frames`` (one recorded answer, or a handshake reply and start-up burst) or a
``session`` (each request recorded with the frames that answered it), and ``sv``: the
server version whose layout its frames have.

A :class:`Scenario` says which captures make up one replayed session: the connection time
and start-up burst, the answer to each request ibdata sends, and the call the test makes.
Where a capture lacks what ibdata needs to reach it (the contract lookup that precedes
every bar request; a contractDataEnd the recording left out), a scenario names the
stand-in capture it borrows or says that the gateway adds the end marker
(``synthesized_end``); nothing else is added to what was recorded.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.replay import expected
from tests.replay.gateway import Script, standard_connection_time
from tests.replay.layouts import Frame, parse_contract_data, relay

#: The project root (``tests/replay/`` is two levels below it).
ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "reference" / "real-tws-captures.json"
LOCAL = Path(__file__).with_name("captures.json")

#: The burst of captures that have none: rust-ibapi's recorded IB Gateway start-up.
STANDARD_BURST = "rust-burst-173"


@cache
def groups() -> dict[str, dict[str, Any]]:
    """Every capture group of both files, by id (ids are unique across them)."""
    found: dict[str, dict[str, Any]] = {}
    for path in (SHARED, LOCAL):
        for group in json.loads(path.read_text(encoding="utf-8")):
            assert group["id"] not in found, f"capture id {group['id']} appears twice"
            group["file"] = path.name
            found[group["id"]] = group
    return found


def group(capture: str) -> dict[str, Any]:
    """One capture group."""
    return groups()[capture]


def frames(capture: str) -> list[Frame]:
    """The recorded frames of a ``frames`` group."""
    return [list(f) for f in group(capture)["frames"]]


def session(capture: str) -> list[tuple[Frame, list[Frame]]]:
    """The (request, answer frames) steps of a ``session`` group."""
    return [(list(req), [list(f) for f in resp]) for req, resp in group(capture)["session"]]


def session_start(capture: str) -> tuple[str, list[Frame]]:
    """The connection time and start-up burst of a session (its ``startapi`` step)."""
    for request, answer in session(capture):
        if request == ["startapi"]:
            return answer[0][1], answer[1:]
    raise LookupError(f"{capture} has no start-up")


def session_answers(capture: str, msg: str) -> list[list[Frame]]:
    """The recorded answers to the session's requests with outgoing id ``msg``."""
    return [answer for request, answer in session(capture) if request[0] == msg]


@dataclass
class Scenario:
    """One replayed session and the call a test makes in it.

    Attributes:
        name: The test id.
        kind: ``details``, ``bars``, ``head``, ``error``, ``pacing`` or ``startup``.
        version: The server version of the scenario's own layout (its captures' ``sv``).
        sources: The capture ids it plays, for the report.
        connection_time: The recorded connection time, or None for the standard one.
        startup: The start-up burst (in ``version``'s layout).
        answers: Per outgoing message id, the recorded answers (``version``'s layout).
        call: What the test asks ibdata (keyword arguments of the call).
        expect: What the test checks beyond the generic decoding (see the test module).
        synthesized_end: The gateway adds contractDataEnd (52) to a recorded contract
            answer that has none.
    """

    name: str
    kind: str
    version: int
    sources: list[str]
    connection_time: str | None
    startup: list[Frame]
    answers: dict[int, list[list[Frame]]] = field(default_factory=dict)
    call: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)
    synthesized_end: bool = False

    @property
    def lots(self) -> bool:
        """The scenario's bars are a US stock's (its contract lookup answers a USD STK):
        volumes in lots of 100 below server version 175."""
        data = [f for f in self.answer_frames(9) if f[0] == "10"]
        if not data or 20 not in self.answers:
            return False
        fields = parse_contract_data(data[0], self.version)
        return bool(fields["secType"] == "STK" and fields["currency"] == "USD")

    @property
    def connected_at(self) -> dt.datetime | None:
        """The UTC instant of the recorded connection time (None without one)."""
        if self.connection_time is None:
            return None
        day, clock, _ = self.connection_time.split(" ", 2)
        naive = dt.datetime.strptime(day + clock, "%Y%m%d%H:%M:%S")
        zone = ZoneInfo(expected.login_zone(self.connection_time))
        return naive.replace(tzinfo=zone).astimezone(dt.timezone.utc)

    def script(self, server_version: int) -> Script:
        """The gateway's script, negotiating at most ``server_version``."""
        return Script(
            source_version=self.version,
            server_version=server_version,
            startup=self.startup,
            answers=self.answers,
            connection_time=self.connection_time,
            connected_at=self.connected_at,
            lots=self.lots,
        )

    def answer_frames(self, msg: int) -> list[Frame]:
        """Every frame of every answer to requests ``msg``, in this layout."""
        return [f for answer in self.answers.get(msg, []) for f in answer]


def laid(
    capture_frames: list[Frame], source: int, version: int, *, lots: bool = False
) -> list[Frame]:
    """Frames of another capture laid out for the scenario's version (``lots``: a US
    stock's bars, see :func:`~tests.replay.layouts.relay`)."""
    return relay(capture_frames, source, version, lots=lots)


def contract_answer(
    capture: str, version: int, *, only: int | None = None
) -> tuple[list[Frame], bool]:
    """A recorded contract answer for ``version``: its contractData (``only`` picks one
    by position) and its contractDataEnd, or a synthesized one when none was recorded."""
    recorded = frames(capture)
    data = [f for f in recorded if f[0] == "10"]
    if only is not None:
        data = [data[only]]
    ends = [f for f in recorded if f[0] == "52"]
    synthesized = not ends
    end = ends[:1] or [["52", "1", "0"]]
    return laid(data, group(capture)["sv"], version) + end, synthesized


def standard_burst(version: int) -> list[Frame]:
    """rust-ibapi's recorded start-up burst, laid out for ``version``."""
    return laid(frames(STANDARD_BURST), group(STANDARD_BURST)["sv"], version)


def _startup_from_frames(capture: str) -> tuple[str, list[Frame]]:
    recorded = frames(capture)
    return recorded[0][1], recorded[1:]


# --------------------------------------------------------------------------- scenarios
def _details(name: str, capture: str, spec: dict[str, Any], **extra: Any) -> Scenario:
    """A contract-details request answered by a ``frames`` capture."""
    sv = group(capture)["sv"]
    answer, synthesized = contract_answer(capture, sv)
    startup = extra.pop("startup", None)
    when = extra.pop("connection_time", None)
    sources = [capture, *extra.pop("also", [])]
    return Scenario(
        name=name,
        kind="details",
        version=sv,
        sources=sources,
        connection_time=when,
        startup=startup if startup is not None else standard_burst(sv),
        answers={9: [answer]},
        call={"spec": spec},
        synthesized_end=synthesized,
        **extra,
    )


def _go_startup() -> tuple[str, list[Frame]]:
    return _startup_from_frames("go-bootstrap-200")


def scenarios() -> list[Scenario]:
    """Every scenario, each playing one or more captures."""
    out: list[Scenario] = []
    go_time, go_burst = _go_startup()

    # ---- contract details ------------------------------------------------------------
    out.append(_details("rust-aapl-contract-173", "rust-aapl-contract-173",
                        {"symbol": "AAPL"}, also=[STANDARD_BURST]))  # fmt: skip
    out.append(_details("rust-tsla-contract-165", "rust-tsla-contract-165",
                        {"symbol": "TSLA"}, also=[STANDARD_BURST]))  # fmt: skip
    out.append(_details("rust-es-fut-173", "rust-es-fut-173",
                        {"symbol": "ES", "sec_type": "FUT", "exchange": "CME",
                         "last_trade_date_or_contract_month": "202506"},
                        also=[STANDARD_BURST]))  # fmt: skip
    out.append(_details("pyf-robusta-contract-176", "pyf-robusta-contract-176",
                        {"con_id": 553444806, "symbol": "", "exchange": "ICEEUSOFT"},
                        also=[STANDARD_BURST]))  # fmt: skip
    out.append(_details("pyf-zc-contract-176", "pyf-zc-contract-176",
                        {"symbol": "ZC", "sec_type": "FUT", "exchange": "CBOT"},
                        also=[STANDARD_BURST]))  # fmt: skip
    out.append(_details("pyf-ng-contract-176", "pyf-ng-contract-176",
                        {"symbol": "NG", "sec_type": "FUT", "exchange": "NYMEX"},
                        also=[STANDARD_BURST]))  # fmt: skip
    out.append(_details("naut-eurusd-contract-176", "naut-eurusd-contract-176",
                        {"symbol": "EUR", "sec_type": "CASH", "exchange": "IDEALPRO"},
                        also=[STANDARD_BURST]))  # fmt: skip
    go_accounts = frames("go-accounts-200") + frames("go-nextid-200") + frames("go-err2104-200")
    aapl200, _ = contract_answer("go-contract-200", 200)
    aapl200 = [f for f in aapl200 if f[0] == "10"] + frames("go-end52-200")
    out.append(Scenario(
        name="go-contract-200", kind="details", version=200,
        sources=["go-accounts-200", "go-nextid-200", "go-err2104-200", "go-contract-200",
                 "go-end52-200"],
        connection_time=None, startup=go_accounts, answers={9: [aapl200]},
        call={"spec": {"symbol": "AAPL"}},
    ))  # fmt: skip
    for capture, spec in (
        ("go-es-fut-200", {"symbol": "ES", "sec_type": "FUT", "exchange": "CME"}),
        ("go-opt-200", {"symbol": "AAPL", "sec_type": "OPT"}),
        ("go-fund-200", {"symbol": "VTSAX", "sec_type": "FUND", "exchange": "FUNDSERV"}),
    ):
        out.append(_details(capture, capture, spec, startup=go_burst, connection_time=go_time,
                            also=["go-bootstrap-200"]))  # fmt: skip
    for capture, spec in (
        ("pyf-session-da-fut-176", {"symbol": "DA", "sec_type": "FUT", "exchange": "CME",
                                    "trading_class": "DC"}),
        ("pyf-session-ebm-176", {"symbol": "EBM", "sec_type": "FUT", "exchange": "MATIF",
                                 "currency": "EUR", "trading_class": "EBM"}),
    ):  # fmt: skip
        when, burst = session_start(capture)
        out.append(Scenario(
            name=capture, kind="details", version=176, sources=[capture],
            connection_time=when, startup=burst,
            answers={9: session_answers(capture, "9")},
            call={"spec": spec},
        ))  # fmt: skip

    # ---- start-up only --------------------------------------------------------------
    when, burst = _startup_from_frames("naut-handshake-burst-176")
    out.append(Scenario(name="naut-handshake-burst-176", kind="startup", version=176,
                        sources=["naut-handshake-burst-176"], connection_time=when,
                        startup=burst))  # fmt: skip
    when, burst = session_start("pyf-session-connect-176")
    pushed = [f for f in session_answers("pyf-session-connect-176", "62")[0] if f[0] == "4"]
    out.append(Scenario(name="pyf-session-connect-176", kind="startup", version=176,
                        sources=["pyf-session-connect-176"], connection_time=when,
                        startup=burst + pushed,
                        expect={"note": "the notices TWS pushed while the account summary "
                                        "ran are sent after the burst; ibdata asks no "
                                        "account summary"}))  # fmt: skip

    # ---- bars ------------------------------------------------------------------------
    tsla_contract, _ = contract_answer("rust-tsla-contract-165", 165, only=0)
    tsla_bars = frames("rust-tsla-daily-165")
    tsla_call = {"spec": {"symbol": "TSLA"}, "duration": "2 D", "bar_size": "1 day"}

    def two_space(name: str, version: int, when: str | None, burst: list[Frame],
                  sources: list[str]) -> Scenario:  # fmt: skip
        # The call gives the end TWS echoed (the recorded window's end in this login zone):
        # an end TWS echoes in the login zone tells its offset on that day, which decides
        # between the zones a name alone leaves (GMT: London or Reykjavik).
        login = expected.login_zone(when or standard_connection_time())
        echoed = expected.ib_time(tsla_bars[0][3], login)
        return Scenario(
            name=name, kind="bars", version=version,
            sources=[*sources, "rust-tsla-contract-165", "rust-tsla-daily-165"],
            connection_time=when, startup=burst,
            answers={9: [laid(tsla_contract, 165, version)],
                     20: [laid(tsla_bars, 165, version, lots=True)]},
            call={**tsla_call, "end": echoed.isoformat()},
            expect={"login": "the two-space TSLA answer read under this login"},
        )  # fmt: skip

    out.append(two_space("rust-tsla-daily-165", 165, None, standard_burst(165),
                         [STANDARD_BURST]))  # fmt: skip
    gmt_time = frames("rust-handshake-173-gmt")[0][1]
    out.append(two_space("login-gmt-173", 173, gmt_time, frames("rust-burst-173"),
                         ["rust-handshake-173-gmt", "rust-burst-173"]))  # fmt: skip
    bst_time = frames("rust-handshake-173-bst")[0][1]
    out.append(two_space("login-bst-173", 173, bst_time, standard_burst(173),
                         ["rust-handshake-173-bst", STANDARD_BURST]))  # fmt: skip
    when, burst = _startup_from_frames("naut-handshake-burst-176")
    out.append(two_space("login-est-176", 176, when, burst, ["naut-handshake-burst-176"]))
    out.append(two_space("login-cest-200", 200, go_time, go_burst, ["go-bootstrap-200"]))

    when, burst = session_start("pyf-session-bars-176")
    out.append(Scenario(
        name="pyf-session-bars-176", kind="bars", version=176,
        sources=["pyf-session-bars-176"], connection_time=when, startup=burst,
        answers={9: session_answers("pyf-session-bars-176", "9"),
                 20: session_answers("pyf-session-bars-176", "20")},
        call={"spec": {"symbol": "DA", "sec_type": "CONTFUT", "exchange": "CME",
                       "trading_class": "DC"},
              "duration": "5 D", "bar_size": "1 day", "end": "2024-03-22T16:30:00+00:00"},
    ))  # fmt: skip
    when, burst = session_start("pyf-session-keepup-176")
    zc, synthesized = contract_answer("pyf-zc-contract-176", 176)
    out.append(Scenario(
        name="pyf-session-keepup-176", kind="bars", version=176,
        sources=["pyf-session-keepup-176", "pyf-zc-contract-176 (stand-in contract)"],
        connection_time=when, startup=burst,
        answers={9: [zc], 20: session_answers("pyf-session-keepup-176", "20")},
        call={"spec": {"symbol": "M6A", "sec_type": "FUT", "exchange": "CME"},
              "duration": "60 S", "bar_size": "1 min", "what_to_show": "BID"},
        synthesized_end=synthesized,
        expect={"stand_in": "pyf-zc-contract-176"},
    ))  # fmt: skip
    robusta, _ = contract_answer("pyf-robusta-contract-176", 176)
    for capture, call in (
        ("pyf-robusta-daily-bid-176", {"duration": "4 D", "bar_size": "1 day"}),
        ("pyf-robusta-1min-bid-176", {"duration": "180 S", "bar_size": "1 min"}),
    ):
        out.append(Scenario(
            name=capture, kind="bars", version=176,
            sources=[capture, "pyf-robusta-contract-176", STANDARD_BURST],
            connection_time=None, startup=standard_burst(176),
            answers={9: [robusta], 20: [frames(capture)]},
            call={"spec": {"con_id": 553444806, "symbol": "", "exchange": "ICEEUSOFT"},
                  "what_to_show": "BID", "use_rth": True, **call},
        ))  # fmt: skip
    go_bars = frames("go-hist-200") + frames("go-hist-end-200")
    out.append(Scenario(
        name="go-hist-200", kind="bars", version=200,
        sources=["go-bootstrap-200", "go-contract-200", "go-hist-200",
                 "go-hist-end-200 (the 108 of another sv-200 capture)"],
        connection_time=go_time, startup=go_burst,
        answers={9: [aapl200], 20: [go_bars]},
        call={"spec": {"symbol": "AAPL"}, "duration": "1 D", "bar_size": "1 hour",
              "use_rth": True},
    ))  # fmt: skip
    aapl173, _ = contract_answer("rust-aapl-contract-173", 173)
    out.append(Scenario(
        name="asyncib-bond-daily-178", kind="bars", version=178,
        sources=["asyncib-bond-daily-178", "rust-aapl-contract-173 (stand-in contract)",
                 STANDARD_BURST],
        connection_time=None, startup=standard_burst(178),
        answers={9: [laid(aapl173, 173, 178)], 20: [frames("asyncib-bond-daily-178")]},
        call={"spec": {"symbol": "AAPL"}, "duration": "8 D", "bar_size": "1 day",
              "what_to_show": "MIDPOINT", "use_rth": True},
        expect={"stand_in": "rust-aapl-contract-173"},
    ))  # fmt: skip

    # ---- head timestamps ---------------------------------------------------------------
    out.append(Scenario(
        name="pyf-robusta-head-176", kind="head", version=176,
        sources=["pyf-robusta-head-176", "pyf-robusta-contract-176",
                 "pyf-robusta-1min-bid-176", STANDARD_BURST],
        connection_time=None, startup=standard_burst(176),
        answers={9: [robusta], 87: [frames("pyf-robusta-head-176")],
                 20: [frames("pyf-robusta-1min-bid-176")]},
        call={"spec": {"con_id": 553444806, "symbol": "", "exchange": "ICEEUSOFT"},
              "what_to_show": "BID", "use_rth": True},
        expect={"head": "2022-03-29T08:00:00+00:00"},
    ))  # fmt: skip
    out.append(Scenario(
        name="go-head-200", kind="head", version=200,
        sources=["go-head-200", "go-bootstrap-200", "go-contract-200", "go-hist-200",
                 "go-hist-end-200"],
        connection_time=go_time, startup=go_burst,
        answers={9: [aapl200], 87: [frames("go-head-200")], 20: [go_bars]},
        call={"spec": {"symbol": "AAPL"}, "what_to_show": "TRADES", "use_rth": False},
        expect={"head": "1980-12-12T14:30:00+00:00"},
    ))  # fmt: skip

    # ---- errors ----------------------------------------------------------------------
    when, burst = session_start("pyf-session-321-176")
    out.append(Scenario(
        name="pyf-session-321-176", kind="error", version=176,
        sources=["pyf-session-321-176"], connection_time=when, startup=burst,
        answers={9: session_answers("pyf-session-321-176", "9")},
        call={"spec": {"symbol": "DA", "sec_type": "FUT", "exchange": "CME"}},
        expect={"code": 321, "error": "InvalidRequestError", "during": "details"},
    ))  # fmt: skip
    out.append(Scenario(
        name="pyf-321-176", kind="error", version=176,
        sources=["pyf-321-176", STANDARD_BURST], connection_time=None,
        startup=standard_burst(176), answers={9: [frames("pyf-321-176")]},
        call={"spec": {"symbol": "DA", "sec_type": "FUT", "exchange": "CME"}},
        expect={"code": 321, "error": "InvalidRequestError", "during": "details"},
    ))  # fmt: skip
    when, burst = session_start("go-notfound-225")
    out.append(Scenario(
        name="go-notfound-225", kind="error", version=200,
        sources=["go-notfound-225"], connection_time=when, startup=burst,
        answers={9: session_answers("go-notfound-225", "9")},
        call={"spec": {"symbol": "ZZZZNONE"}},
        expect={"code": 200, "error": "ContractNotFoundError", "during": "details"},
    ))  # fmt: skip
    eurusd, synthesized = contract_answer("naut-eurusd-contract-176", 176)
    out.append(Scenario(
        name="insync-162-fx-nodata-176", kind="error", version=176,
        sources=["insync-162-fx-nodata-176", "naut-eurusd-contract-176", STANDARD_BURST],
        connection_time=None, startup=standard_burst(176),
        answers={9: [eurusd], 20: [frames("insync-162-fx-nodata-176")]},
        call={"spec": {"symbol": "EUR", "sec_type": "CASH", "exchange": "IDEALPRO"},
              "duration": "3600 S", "bar_size": "5 mins"},
        synthesized_end=synthesized,
        expect={"code": 162, "error": "NoDataError", "during": "bars"},
    ))  # fmt: skip
    out.append(Scenario(
        name="insync-162-cancelled", kind="error", version=157,
        sources=["insync-162-cancelled", "rust-aapl-contract-173 (stand-in contract)",
                 STANDARD_BURST],
        connection_time=None, startup=standard_burst(157),
        answers={9: [laid(aapl173, 173, 157)], 20: [frames("insync-162-cancelled")]},
        call={"spec": {"symbol": "AAPL"}, "duration": "6 D", "bar_size": "1 min"},
        expect={"code": 162, "error": "RequestError", "during": "bars"},
    ))  # fmt: skip
    out.append(Scenario(
        name="qc-162-pacing", kind="pacing", version=157,
        sources=["qc-162-pacing", "naut-eurusd-contract-176 (stand-in contract)",
                 STANDARD_BURST],
        connection_time=None, startup=standard_burst(157),
        answers={9: [laid(eurusd, 176, 157)], 20: [frames("qc-162-pacing")]},
        call={"spec": {"symbol": "EUR", "sec_type": "CASH", "exchange": "IDEALPRO"},
              "duration": "1 D", "bar_size": "1 hour", "what_to_show": "ASK"},
        synthesized_end=synthesized,
        expect={"code": 162, "error": "PacingViolationError", "during": "bars"},
    ))  # fmt: skip
    return out


def used_captures() -> set[str]:
    """Every capture id some scenario plays (stand-in annotations stripped)."""
    return {s.split(" ")[0] for scenario in scenarios() for s in scenario.sources}
