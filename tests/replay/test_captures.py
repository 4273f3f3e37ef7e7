"""ibdata's real client against real TWS traffic, replayed over a real socket.

Every capture of ``../shared/reference/real-tws-captures.json`` and of this package's
``captures.json`` is played by :class:`~tests.replay.gateway.ReplayGateway` to an
``ibdata.Client``, at the capture's own server version and re-laid at 157 (the only
version ibapi 9.81.1 negotiates). A capture whose version the installed ibapi release
cannot negotiate runs re-laid at 157 only (``tests/ibapi_release.py``'s ``versions``:
the release's real limit). Every decoded value is compared with what the frames say
(:mod:`tests.replay.expected`); at 157 the size rules are None, as that layout has none.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest

import ibdata
from ibdata import Client, ContractSpec, PacingRules
from ibdata.models import FarmState
from tests import ibapi_release as rel
from tests.replay import expected
from tests.replay.captures import Scenario, groups, scenarios, used_captures
from tests.replay.gateway import ReplayGateway
from tests.replay.layouts import parse_contract_data, parse_error

UTC = dt.timezone.utc


def _scenarios() -> tuple[dict[str, Scenario], str | None]:
    """The scenarios by name, or none and why: without the shared reference file every
    test here would fail at collection and stop the whole suite; instead the one test
    below fails, saying where the file was looked for."""
    try:
        return {s.name: s for s in scenarios()}, None
    except FileNotFoundError as exc:
        return {}, f"the shared captures are missing: {exc}"


SCENARIOS, MISSING = _scenarios()
_FARM_STATES = {
    2103: FarmState.BROKEN, 2104: FarmState.OK, 2105: FarmState.BROKEN,
    2106: FarmState.OK, 2107: FarmState.INACTIVE, 2108: FarmState.INACTIVE,
    2119: FarmState.CONNECTING, 2157: FarmState.BROKEN, 2158: FarmState.OK,
}  # fmt: skip


def _modes(scenario: Scenario) -> list[int]:
    """The capture's own version where this ibapi release negotiates it, and 157."""
    own = rel.versions([scenario.version])
    return sorted({*own, 157}, reverse=True)


def _params(kind: str) -> list[Any]:
    return [
        pytest.param(s, sv, id=f"{s.name}-sv{sv}")
        for s in SCENARIOS.values()
        if s.kind == kind
        for sv in _modes(s)
    ]


def _spec(call: dict[str, Any]) -> ContractSpec:
    return ContractSpec(**call["spec"])


class Replay:
    """A running gateway and a connected client for one scenario at one version."""

    def __init__(self, scenario: Scenario, sv: int, **options: Any) -> None:
        self.scenario = scenario
        self.sv = sv
        self.gateway = ReplayGateway(scenario.script(sv)).start()
        options.setdefault("pacing", None)
        self.client = Client(
            self.gateway.host, self.gateway.port, connect_timeout=5, timeout=5,
            auto_reconnect=False, max_message_rate=None, **options,
        )  # fmt: skip

    def close(self) -> None:
        self.client.close()
        self.gateway.stop()

    @property
    def login(self) -> str:
        """The IANA zone of the login the gateway announced."""
        return expected.login_zone(self.gateway.connection_times[0])

    def check_session(self) -> None:
        """The handshake negotiated ``sv`` and health() shows the start-up burst."""
        burst = self.scenario.startup
        accounts = tuple(a for f in burst if f[0] == "15" for a in f[2].split(",") if a)
        farms: dict[str, FarmState] = {}
        for f in burst:
            if f[0] != "4":
                continue
            error = parse_error(f, self.scenario.version)
            code, text = int(error["code"]), error["text"]
            if code in _FARM_STATES:
                name = text.rsplit(":", 1)[1] if ":" in text else text.rsplit("demand.", 1)[1]
                farms[name] = _FARM_STATES[code]
        deadline = time.monotonic() + 3
        health = self.client.health()
        while dict(health.farms) != farms and time.monotonic() < deadline:
            time.sleep(0.01)
            health = self.client.health()
        assert self.gateway.hellos == [f"v100..{rel.OFFERED}"]
        assert self.gateway.negotiated == [self.sv]
        assert health.server_version == self.sv
        assert health.ready
        assert health.connected
        assert health.accounts == accounts
        assert dict(health.farms) == farms
        broken = FarmState.BROKEN in farms.values()
        assert health.status == ("degraded" if broken else "healthy")

    def check_clean(self) -> None:
        """The gateway answered every request and none of its threads failed."""
        assert not self.gateway.failures, self.gateway.failures
        assert not self.gateway.unanswered, [r.fields for r in self.gateway.unanswered]


@pytest.fixture
def replay(request: pytest.FixtureRequest) -> Iterator[Replay]:
    """The parametrized scenario served at its version, with a connected client."""
    scenario, sv = request.param
    options = {"pacing": PacingRules(time_scale=1000.0)} if scenario.kind == "pacing" else {}
    running = Replay(scenario, sv, **options)
    try:
        running.client.connect()
        running.check_session()
        yield running
        running.check_clean()
    finally:
        running.close()


def _indirect(kind: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "replay", [pytest.param(p.values, id=p.id) for p in _params(kind)], indirect=True
    )


def _report(problems: list[str], replay: Replay) -> str:
    return f"{replay.scenario.name} at server version {replay.sv}:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------- the suite
def test_every_capture_is_replayed() -> None:
    """Every capture group of both files is played by some scenario."""
    assert MISSING is None, MISSING
    assert set(groups()) == used_captures()


@_indirect("startup")
def test_start_up(replay: Replay) -> None:
    """The handshake and start-up burst give the negotiated version, the accounts and each
    farm's state in health()."""
    assert replay.client.connected


@_indirect("details")
def test_contract_details(replay: Replay) -> None:
    """Every contractData of the answer decodes to the ContractDetails its fields say, in
    order, at the capture's version and re-laid at 157."""
    got = replay.client.get_contract_details(_spec(replay.scenario.call))
    want = [
        expected.details(parse_contract_data(f, replay.scenario.version), replay.sv)
        for f in replay.scenario.answer_frames(9)
        if f[0] == "10"
    ]
    assert len(got) == len(want)
    problems = [p for i, (w, g) in enumerate(zip(want, got, strict=True))
                for p in expected.differences(w, g, f"[{i}]")]  # fmt: skip
    assert not problems, _report(problems, replay)


def _bar_call(call: dict[str, Any]) -> dict[str, Any]:
    kwargs = {k: v for k, v in call.items() if k not in ("spec", "end")}
    if "end" in call:
        kwargs["end"] = dt.datetime.fromisoformat(call["end"])
    return kwargs


@_indirect("bars")
def test_bars(replay: Replay) -> None:
    """The bars decode to their recorded times (UTC instants, or session dates), prices,
    volumes, WAPs and counts, with the window's start and end as UTC instants and the
    contract of the lookup."""
    scenario = replay.scenario
    call = scenario.call
    bars = replay.client.get_historical_bars(_spec(call), **_bar_call(call))
    size = ibdata.BarSize(call["bar_size"])
    want, start, end = expected.bars(
        scenario.answers[20][0], scenario.version, replay.login, intraday=size.intraday,
        lots=scenario.lots,
    )  # fmt: skip
    lookup = next(f for f in scenario.answer_frames(9) if f[0] == "10")
    fields = parse_contract_data(lookup, scenario.version)
    problems = [p for i, (w, g) in enumerate(zip(want, list(bars), strict=False))
                for p in expected.differences(w, g, f"bar[{i}]")]  # fmt: skip
    if len(bars) != len(want):
        problems.append(f"bars: expected {len(want)}, got {len(bars)}")
    for name, w, g in (
        ("start", start, bars.start),
        ("end", end, bars.end),
        ("contract", expected.contract(fields), bars.contract),
        ("time_zone", fields["timeZoneId"], bars.time_zone),
        ("bar_size", size, bars.bar_size),
        ("what_to_show", ibdata.WhatToShow(call.get("what_to_show", "TRADES")), bars.what_to_show),
        ("use_rth", call.get("use_rth", False), bars.use_rth),
    ):
        if w != g:
            problems.append(f"{name}: expected {w!r}, got {g!r}")
    assert not problems, _report(problems, replay)
    assert replay.client.health().ready  # late updates (90) for the settled request are dropped


@_indirect("head")
def test_head_timestamp(replay: Replay) -> None:
    """The head timestamp decodes to its UTC instant: a range ending at it asks IB for no
    bars, a range ending one second later does."""
    call = replay.scenario.call
    head = dt.datetime.fromisoformat(replay.scenario.expect["head"])
    options = {"bar_size": "1 min", "what_to_show": call["what_to_show"],
               "use_rth": call["use_rth"]}  # fmt: skip
    before = replay.client.get_historical_bars(
        _spec(call), start=head - dt.timedelta(hours=1), end=head, **options
    )
    assert len(before) == 0
    assert replay.gateway.requests(20) == []
    after = replay.client.get_historical_bars(
        _spec(call), start=head - dt.timedelta(hours=1), end=head + dt.timedelta(seconds=1),
        **options,
    )  # fmt: skip
    assert len(after) == 0  # the recorded bars lie years away from the head
    assert len(replay.gateway.requests(87)) == 1
    assert len(replay.gateway.requests(20)) >= 1


_ERRORS = {
    "InvalidRequestError": ibdata.InvalidRequestError,
    "ContractNotFoundError": ibdata.ContractNotFoundError,
    "NoDataError": ibdata.NoDataError,
    "PacingViolationError": ibdata.PacingViolationError,
    "RequestError": ibdata.RequestError,
}


def _raises(replay: Replay) -> ibdata.RequestError:
    scenario = replay.scenario
    wanted = _ERRORS[scenario.expect["error"]]
    if scenario.expect["during"] == "details":
        with pytest.raises(ibdata.RequestError) as caught:
            replay.client.get_contract_details(_spec(scenario.call))
    else:
        with pytest.raises(ibdata.RequestError) as caught:
            replay.client.get_historical_bars(_spec(scenario.call), **_bar_call(scenario.call))
    error = caught.value
    assert type(error) is wanted, f"{scenario.name}: {type(error).__name__}, want {wanted.__name__}"
    return error


def _error_frame(replay: Replay) -> dict[str, Any]:
    msg = 9 if replay.scenario.expect["during"] == "details" else 20
    frame = next(f for f in replay.scenario.answer_frames(msg) if f[0] == "4")
    return parse_error(frame, replay.scenario.version)


@_indirect("error")
def test_error_frames(replay: Replay) -> None:
    """An error frame ends its request with the exception class of its code and text, with
    IB's code, text and the request's id."""
    error = _raises(replay)
    recorded = _error_frame(replay)
    msg = 9 if replay.scenario.expect["during"] == "details" else 20
    sent = replay.gateway.requests(msg)[-1]
    assert error.code == int(recorded["code"]) == replay.scenario.expect["code"]
    assert error.message == recorded["text"]
    assert error.req_id == int(sent[2 if msg == 9 else 1])


@_indirect("pacing")
def test_pacing_violation(replay: Replay) -> None:
    """A request TWS refuses for pacing is retried (three times) and then raises
    PacingViolationError with IB's code and text."""
    error = _raises(replay)
    assert error.code == 162
    assert error.message == _error_frame(replay)["text"]
    assert len(replay.gateway.requests(20)) == 4


# --------------------------------------------------------------------------- spot checks
class Sized:
    """A value that the 157 layout cannot carry: ``own`` at 164 and above, None at 157."""

    def __init__(self, own: Any) -> None:
        self.own = own


#: Literal values from the frames, independent of :mod:`tests.replay.expected`: the formats
#: real TWS sends that ibdata must survive (issue 14, item 7) and the facts issue 14 names.
SPOT: dict[str, dict[str, Any]] = {
    "rust-es-fut-173": {
        "0.contract.last_trade_date": "20250620",  # from '20250620 08:30 US/Central'
        "0.contract.local_symbol": "ESM5",
        "0.contract.con_id": 620731015,
        "0.contract.multiplier": "50",
        "0.contract_month": "202506",
        "0.under_con_id": 11004968,
        "0.under_symbol": "ES",
        "0.under_sec_type": "IND",
        "0.min_tick": 0.25,
        "0.time_zone_id": "US/Central",
        "0.real_expiration_date": "20250620",
        "0.min_size": Sized(1.0),
        "0.trading_hours.0.start": dt.datetime(2025, 5, 21, 22, 0, tzinfo=UTC),
        "0.trading_hours.0.end": dt.datetime(2025, 5, 22, 21, 0, tzinfo=UTC),
    },
    "go-es-fut-200": {
        "0.contract.last_trade_date": "20261218",  # '20261218 08:30:00 US/Central'
        "0.under_con_id": 11004968,
        "0.trading_hours.0.start": dt.datetime(2026, 4, 5, 22, 0, tzinfo=UTC),  # after ';'
        "0.liquid_hours.0.start": dt.datetime(2026, 4, 6, 13, 30, tzinfo=UTC),
    },
    "rust-aapl-contract-173": {
        "0.contract.primary_exchange": "NASDAQ",
        "0.sec_ids": {"ISIN": "US0378331005"},
        "0.min_size": Sized(0.0001),
        "0.suggested_size_increment": Sized(100.0),
        "0.liquid_hours.0.start": dt.datetime(2025, 3, 24, 13, 30, tzinfo=UTC),
    },
    "pyf-robusta-contract-176": {
        "0.time_zone_id": "GB-Eire",
        "0.contract.last_trade_date": "20231124",  # '20231124-12:30:00'
        "0.trading_hours.0.start": dt.datetime(2023, 11, 15, 9, 0, tzinfo=UTC),
        "0.trading_hours.0.end": dt.datetime(2023, 11, 15, 17, 30, tzinfo=UTC),
    },
    "pyf-session-da-fut-176": {
        "0.contract.last_trade_date": "20240402",  # '20240402-17:10:00'
        "23.contract.local_symbol": "DCG6",
        "0.under_symbol": "DA",
        "0.under_con_id": 36555530,
    },
    "go-fund-200": {
        "0.contract.sec_type": "FUND",
        "0.contract.con_id": 48013650,
        "0.min_size": Sized(0.001),
    },
    "naut-eurusd-contract-176": {
        "0.min_tick": 0.00005,
        "0.contract.local_symbol": "EUR.USD",
        "0.trading_hours.0.start": dt.datetime(2023, 12, 3, 22, 15, tzinfo=UTC),
    },
    "rust-tsla-daily-165": {
        "bars.0.time": dt.date(2023, 4, 13),
        "bars.0.open": 182.94,  # '182.9400'
        "bars.0.volume": 94883722.0,  # '948837.22': lots of 100 shares, with decimals, at 165
        "bars.0.wap": 184.869,
        "bars.1.count": 277547,
        "start": dt.datetime(2023, 4, 13, 20, 31, 22, tzinfo=UTC),  # New York login
    },
    "login-gmt-173": {"start": dt.datetime(2023, 4, 13, 15, 31, 22, tzinfo=UTC)},
    "login-bst-173": {"end": dt.datetime(2023, 4, 15, 15, 31, 22, tzinfo=UTC)},
    "login-est-176": {"start": dt.datetime(2023, 4, 13, 20, 31, 22, tzinfo=UTC)},
    "login-cest-200": {"start": dt.datetime(2023, 4, 13, 14, 31, 22, tzinfo=UTC)},
    "pyf-session-bars-176": {
        "contract.sec_type": "CONTFUT",
        "contract.last_trade_date": "20240430",
        "start": dt.datetime(2024, 3, 17, 16, 30, tzinfo=UTC),  # '20240317-16:30:00'
        "bars.4.close": 15.57,
    },
    "pyf-session-keepup-176": {
        "bars.0.time": dt.datetime(2024, 3, 28, 14, 47, tzinfo=UTC),
        "bars.0.volume": None,
        "bars.0.wap": None,
        "start": dt.datetime(2024, 3, 28, 14, 47, 22, tzinfo=UTC),
    },
    "pyf-robusta-daily-bid-176": {"bars.0.open": 2603.0, "bars.3.count": None},
    "pyf-robusta-1min-bid-176": {
        "bars.0.time": dt.datetime(2023, 11, 15, 17, 27, tzinfo=UTC),
        "start": dt.datetime(2023, 11, 15, 22, 14, 33, tzinfo=UTC),
    },
    "go-hist-200": {
        "bars.0.time": dt.datetime(2026, 4, 2, 13, 30, tzinfo=UTC),
        "bars.0.volume": 2829736.0,
        "bars.6.wap": 255.576,
        "start": dt.datetime(2026, 4, 6, 11, 37, 52, tzinfo=UTC),
    },
    "asyncib-bond-daily-178": {
        "bars.0.time": dt.date(2025, 4, 2),
        "bars.0.open": 99.77543,
        "bars.7.volume": None,
        "start": dt.datetime(2025, 4, 5, 21, 56, tzinfo=UTC),
        "end": dt.datetime(2025, 4, 13, 21, 56, tzinfo=UTC),
    },
}


def _get(value: Any, path: str) -> Any:
    for part in path.split("."):
        if part.isdigit():
            value = value[int(part)]
        elif isinstance(value, ibdata.Bars) and part == "bars":
            value = list(value)
        else:
            value = getattr(value, part)
    return value


@pytest.mark.parametrize(
    "replay",
    [pytest.param(p.values, id=p.id) for kind in ("details", "bars")
     for p in _params(kind) if p.values[0].name in SPOT],
    indirect=True,
)  # fmt: skip
def test_spot_values(replay: Replay) -> None:
    """The values issue 14 names decode as written in the frames: padded prices, decimal
    volumes, dashed-UTC and zoned date-times, futures underlyings, GB-Eire hours, windows
    under each real login zone."""
    call = replay.scenario.call
    if replay.scenario.kind == "details":
        got: Any = replay.client.get_contract_details(_spec(call))
    else:
        got = replay.client.get_historical_bars(_spec(call), **_bar_call(call))
    problems = []
    for path, spot in SPOT[replay.scenario.name].items():
        want = (spot.own if replay.sv >= 164 else None) if isinstance(spot, Sized) else spot
        value = _get(got, path)
        if isinstance(want, dict):
            value = dict(value)
        if value != want:
            problems.append(f"{path}: expected {want!r}, got {value!r}")
    assert not problems, _report(problems, replay)


#: Logins whose name and offset at login leave zones that disagree on the April 2023
#: window: a winter ``GMT`` (London or Reykjavik) and a winter ``EST`` (New York or Panama).
_AMBIGUOUS = ("login-gmt-173", "login-est-176")


@pytest.mark.parametrize(
    "replay",
    [pytest.param(p.values, id=p.id) for p in _params("bars")
     if p.values[0].name in _AMBIGUOUS and p.values[1] < 174],
    indirect=True,
)  # fmt: skip
def test_an_ambiguous_login_without_an_echoed_end_leaves_the_window_unplaced(
    replay: Replay,
) -> None:
    """Asked without an end, TWS echoes none that could tell the zones apart: the window
    (two-space login times below 174) is None, never one of the zones guessed; the bars,
    whose times do not depend on the login, are all there."""
    call = {k: v for k, v in replay.scenario.call.items() if k != "end"}
    bars = replay.client.get_historical_bars(_spec(call), **_bar_call(call))
    assert (bars.start, bars.end) == (None, None)
    assert [b.time for b in bars] == [dt.date(2023, 4, 13), dt.date(2023, 4, 14)]
    login = replay.client.health().login_time_zone
    assert login is not None
    assert login.certainty == "ambiguous"
