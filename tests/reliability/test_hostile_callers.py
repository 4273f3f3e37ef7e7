"""Hostile callers: fuzzed arguments, environment variables and HTTP requests.

Every public argument of the client and every REST parameter is fed unicode, NUL and
control characters, huge strings, path tricks and values of the wrong type. Each input must
be refused with ValueError or TypeError (a 4xx over HTTP), or answered by IB (the simulator)
with an ibdata error; it must never crash or get a 500. Whatever reaches the wire is checked
in the simulator's received log: printable ASCII, at most 64 characters a field; and a
refused input sends nothing at all. How many inputs were tried per target is recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ibdata import (
    BarSize,
    Client,
    ContractSpec,
    PacingRules,
    ProductRegistry,
    RequestError,
    RequestTimeoutError,
    SecType,
    UnknownProductError,
    WhatToShow,
)
from ibdata import _validate as v
from ibdata.http import _time as http_time
from ibdata.http import create_app
from ibdata.sim import Received, Simulator
from tests.reliability.conftest import Figures
from tests.test_http import Servers

UTC = dt.timezone.utc
TOKEN = "tok-3b9f1c8e7d"
FIELD_LIMIT = 64

# ---------------------------------------------------------------------- strategies

#: Path tricks, injections, look-alikes and edge lengths.
TRICKS = (
    "../", "..", ".", "%2e%2e", "%2e%2e%2f", "%2E%2E/", "AAPL/../../x", "..%2f..%2fetc%2fpasswd",
    "%00", "AAPL%00", "AAPL\x00", "\x00", "..\\..\\windows", "/etc/passwd", "AAPL;reqGlobalCancel",
    "' OR 1=1 --", "<script>alert(1)</script>", "${jndi:ldap://x/a}", "AAPL\r\nX-Injected: 1",
    "AAPL\n", "\t", "\u202eLPAA", "\uff21\uff21\uff30\uff2c", "AAPL\u200b", "AAPL\ufeff", "\u0130",
    "\u00df", "\x7f", "\x1b[31m", "%s%s%n", "{0}", " AAPL", "AAPL ", "", " ", "A" * 64, "A" * 65,
    "~", "~root", "?", "#", "&", "=", "+", "%", "%zz", "%ff", "\\",
)  # fmt: skip
SYMBOLS = (
    "AAPL", "aapl", "MSFT", "SPY", "EURBBL", "eurbblm25", "UST10YZ5", "EURBBLQ25", "ZZZZ", "GBL",
    "FGBL JUN 25",
)  # fmt: skip
PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126)
#: The longest strings tried (hypothesis refuses to print a failing example much longer).
HUGE = 25_000


def texts(valid: tuple[str, ...], *, surrogates: bool = False) -> st.SearchStrategy[str]:
    """Hostile text around a parameter's ``valid`` values (lone surrogates for Python
    callers only: they cannot travel in a URL)."""
    options = [
        st.sampled_from(valid),
        st.sampled_from(TRICKS),
        st.text(),
        st.text(PRINTABLE, min_size=1, max_size=70),
        st.tuples(st.sampled_from(valid), st.sampled_from(TRICKS)).map("".join),
        st.tuples(st.sampled_from(TRICKS), st.sampled_from(valid)).map("".join),
        st.integers(65, HUGE).map(lambda n: "A" * n),
        st.integers(1, HUGE).map(lambda n: "\x00" * n),
    ]
    if surrogates:
        options.append(st.text(st.characters(categories=["Cs"]), min_size=1))
    return st.one_of(options)


OTHERS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.builds(object),
    st.dates(),
    st.timedeltas(),
    st.complex_numbers(),
)
ZONES = st.one_of(
    st.none(),
    st.just(UTC),
    st.timedeltas(-dt.timedelta(hours=23, minutes=59), dt.timedelta(hours=23, minutes=59)).map(
        dt.timezone
    ),
    st.timezones(),
)
#: Times near the simulator's clock, where it has data.
NEAR = st.datetimes(dt.datetime(2025, 2, 1), dt.datetime(2025, 3, 20), timezones=st.just(UTC))
MOMENTS = st.one_of(st.datetimes(timezones=ZONES), NEAR)
#: Legal durations of the client's options (None: the default).
VALID_SECONDS = st.one_of(st.none(), st.floats(0.001, 1e6), st.timedeltas(dt.timedelta(seconds=1)))
TIMEOUTS = st.one_of(
    st.none(),
    st.floats(),
    st.integers(),
    st.timedeltas(),
    st.floats(5, 30),
    texts(("5",)),
    OTHERS,
)
DURATIONS = ("1 D", "3600 S", "2 D", "1 W", "1 M", "60 S", "0 D", "-1 D", "1  D", "1 d", "400 D")
BAR_SIZES = tuple(s.value for s in BarSize)
SHOWS = (*[w.value for w in WhatToShow], "trades", "bid_ask")
SEC_TYPES = (*[s.value for s in SecType], "fut", "stk")


def mostly(
    valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Legal values three times in four, so that calls also get past the other arguments'
    checks to the wire; hostile ones otherwise."""
    return st.integers(0, 3).flatmap(lambda i: hostile if i == 0 else valid)


def one_of_param(valid: tuple[str, ...], enum: Any = None) -> st.SearchStrategy[Any]:
    """A text parameter's strategy: its legal strings (and enum members), hostile text and
    other types."""
    members = [st.sampled_from(list(enum))] if enum is not None else []
    return st.one_of(*members, st.sampled_from(valid), texts(valid, surrogates=True), OTHERS)


@st.composite
def instruments(draw: st.DrawFn) -> object:
    """A product code, symbol or ContractSpec built from hostile fields (or, when the
    ContractSpec refuses them, the text itself), or a value of another type."""
    kind = draw(st.sampled_from(["text", "text", "spec", "other"]))
    if kind == "other":
        return draw(OTHERS)
    symbol = draw(mostly(st.sampled_from(SYMBOLS), texts(SYMBOLS, surrogates=True)))
    if kind == "text":
        return symbol
    fields = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "exchange": texts(("SMART", "EUREX", "CBOE")),
                "currency": texts(("USD", "EUR")),
                "sec_type": one_of_param(SEC_TYPES, SecType),
                "local_symbol": texts(("FGBL JUN 25",)),
                "last_trade_date_or_contract_month": texts(("202506", "20250606", "")),
                "con_id": st.one_of(st.integers(), OTHERS),
                "primary_exchange": texts(("NASDAQ",)),
            },
        )
    )
    try:
        return ContractSpec(symbol, **fields)
    except (ValueError, TypeError):
        return symbol


def _duration_seconds(text: str) -> int:
    number, unit = text.split()
    n = int(number)
    return n * {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 31 * 86_400, "Y": 366 * 86_400}[unit]


@st.composite
def bar_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for get_historical_bars: any subset of its parameters."""
    kwargs = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "duration": mostly(
                    st.sampled_from(DURATIONS[:6]),
                    st.one_of(st.sampled_from(DURATIONS), texts(DURATIONS), OTHERS),
                ),
                "end": mostly(
                    st.one_of(st.none(), NEAR), st.one_of(MOMENTS, OTHERS, texts(("20250312",)))
                ),
                "bar_size": mostly(st.sampled_from(BAR_SIZES), one_of_param(BAR_SIZES, BarSize)),
                "what_to_show": mostly(st.sampled_from(SHOWS), one_of_param(SHOWS, WhatToShow)),
                "use_rth": mostly(st.booleans(), st.one_of(OTHERS, texts(("true",)))),
                "timeout": mostly(st.one_of(st.none(), st.floats(5, 30)), TIMEOUTS),
                "sec_type": mostly(st.none(), one_of_param(SEC_TYPES, SecType)),
                "exchange": mostly(st.none(), texts(("SMART", "EUREX", "IDEALPRO"))),
                "currency": mostly(st.none(), texts(("USD", "EUR"))),
            },
        )
    )
    if draw(st.integers(0, 4)) == 0:  # a range download: start, and an end near it
        start = draw(mostly(NEAR, st.one_of(MOMENTS, OTHERS, texts(("2025-03-10",)))))
        kwargs["start"] = start
        if isinstance(start, dt.datetime) and start.utcoffset() is not None:
            delta = draw(st.timedeltas(-dt.timedelta(days=1), dt.timedelta(days=2)))
            try:
                kwargs["end"] = start + delta
            except OverflowError:
                kwargs["end"] = start - abs(delta)
        if draw(st.booleans()):
            kwargs["progress"] = draw(st.one_of(st.just(lambda *a: None), OTHERS))
    # Keep every request the simulator would serve small: IB lifted the limits for bars of
    # 1 min and more, so e.g. 68 Y of 1-min bars is a legal request that takes minutes.
    try:
        size = v.bar_size(kwargs.get("bar_size", "1 hour"))
        span = _duration_seconds(v.duration(kwargs.get("duration") or "1 D"))
    except (ValueError, TypeError):
        pass
    else:
        assume(span / size.seconds <= 50_000)
    return kwargs


# ---------------------------------------------------------------------- the wire


def _printable(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


def _new_messages(sim: Simulator, before: int) -> list[Received]:
    count = sim.received.total - before
    return sim.received.snapshot()[-count:] if count else []


def assert_clean_wire(messages: list[Received]) -> None:
    """Every field sent is printable ASCII of at most 64 characters."""
    for m in messages:
        bad = [f for f in m.fields if len(f) > FIELD_LIMIT or not _printable(f)]
        assert not bad, f"{m.name} carried {bad!r}"


def settle(client: Client) -> None:
    """Wait until the simulator has read everything the client sent: it answers requests
    on one connection in order, so a request's answer comes after everything before it."""
    client.get_contract_details("AAPL")


class Tally:
    """Counts a target's inputs by outcome; the total is the number of inputs tried."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] += 1

    @property
    def tried(self) -> int:
        return sum(self.outcomes.values())

    def record(self, figures: Figures, target: str) -> None:
        figures.record(f"{target}: inputs tried", self.tried)
        figures.record(f"{target}: outcomes", dict(sorted(self.outcomes.items())))


REFUSED = (ValueError, TypeError, UnknownProductError)


def call_and_check(
    sim: Simulator, client: Client, tally: Tally, call: Callable[[], object], timeout: object
) -> None:
    """Make one fuzzed call: refused inputs send nothing, the rest sends clean fields."""
    before = sim.received.total
    try:
        call()
    except REFUSED as exc:
        outcome = f"refused: {type(exc).__name__}"
    except RequestTimeoutError:
        outcome = "RequestTimeoutError"
    except RequestError as exc:
        outcome = f"IB: {type(exc).__name__} {exc.code}"
    else:
        outcome = "answered"
    tally.add(outcome)
    if outcome.startswith("refused"):
        assert sim.received.total == before, f"a refused input reached the wire ({outcome})"
        return
    if outcome == "RequestTimeoutError":  # legitimate only for a tiny timeout asked for
        assert isinstance(timeout, (int, float, dt.timedelta)), timeout
        assert v.seconds(timeout, "timeout") < 5, timeout
    settle(client)
    assert_clean_wire(_new_messages(sim, before))


# ---------------------------------------------------------------------- fixtures

SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator without pacing: fuzzed requests may repeat at will."""
    return sim_factory(pacing=None)


@pytest.fixture
def client(sim: Simulator) -> Iterator[Client]:
    """A connected client without pacing."""
    with Client(sim.host, sim.port, pacing=None, timeout=10, connect_timeout=5) as c:
        yield c


def assert_session_intact(sim: Simulator, client: Client) -> None:
    """The client still holds its one session, answers, and left nothing in flight."""
    assert sim.stats.connections == 1, "the client had to reconnect"
    assert client.health().status == "healthy"
    assert client.get_historical_bars("AAPL", duration="1 D", bar_size="1 hour")
    conn = client._conn
    assert conn is not None
    assert len(conn.table) == 0


# ---------------------------------------------------------------------- the client


def test_fuzzed_historical_bar_arguments(sim: Simulator, client: Client, figures: Figures) -> None:
    """Every argument of get_historical_bars, fuzzed: refused before sending, or sent as
    clean fields and answered with bars or an ibdata error; the session survives."""
    tally = Tally()

    @settings(SETTINGS, max_examples=600)
    @given(instrument=instruments(), kwargs=bar_requests())
    def check(instrument: object, kwargs: dict[str, Any]) -> None:
        call = lambda: client.get_historical_bars(instrument, **kwargs)  # type: ignore[arg-type]  # noqa: E731
        call_and_check(sim, client, tally, call, kwargs.get("timeout"))

    check()
    assert_session_intact(sim, client)
    assert tally.outcomes["answered"] > 20
    tally.record(figures, "Client.get_historical_bars")


def test_fuzzed_contract_detail_arguments(sim: Simulator, client: Client, figures: Figures) -> None:
    """Every argument of get_contract_details, fuzzed: refused before sending, or sent as
    clean fields and answered; the session survives."""
    tally = Tally()

    @settings(SETTINGS, max_examples=400)
    @given(
        instrument=instruments(),
        kwargs=st.fixed_dictionaries(
            {},
            optional={
                "sec_type": mostly(st.none(), one_of_param(SEC_TYPES, SecType)),
                "exchange": mostly(st.none(), texts(("SMART", "EUREX"))),
                "currency": mostly(st.none(), texts(("USD", "EUR"))),
                "include_expired": mostly(st.booleans(), OTHERS),
                "timeout": mostly(st.one_of(st.none(), st.floats(5, 30)), TIMEOUTS),
            },
        ),
    )
    def check(instrument: object, kwargs: dict[str, Any]) -> None:
        call = lambda: client.get_contract_details(instrument, **kwargs)  # type: ignore[arg-type]  # noqa: E731
        call_and_check(sim, client, tally, call, kwargs.get("timeout"))

    check()
    assert_session_intact(sim, client)
    assert tally.outcomes["answered"] > 20
    tally.record(figures, "Client.get_contract_details")


def test_fuzzed_resolve_sends_nothing(sim: Simulator, client: Client, figures: Figures) -> None:
    """resolve() never sends anything: it returns a ContractSpec of clean text or refuses
    with ValueError, TypeError or UnknownProductError."""
    tally = Tally()
    before = sim.received.total

    @settings(SETTINGS, max_examples=1000)
    @given(
        instrument=instruments(),
        kwargs=st.fixed_dictionaries(
            {},
            optional={
                "sec_type": st.one_of(st.none(), one_of_param(SEC_TYPES, SecType)),
                "exchange": st.one_of(st.none(), texts(("SMART",))),
                "currency": st.one_of(st.none(), texts(("USD",))),
                "include_expired": st.one_of(st.booleans(), OTHERS),
            },
        ),
    )
    def check(instrument: object, kwargs: dict[str, Any]) -> None:
        try:
            spec = client.resolve(instrument, **kwargs)  # type: ignore[arg-type]
        except REFUSED as exc:
            tally.add(f"refused: {type(exc).__name__}")
            return
        texts_sent = [x for x in attrs.astuple(spec, recurse=False) if isinstance(x, str)]
        assert all(_printable(t) and len(t) <= FIELD_LIMIT for t in texts_sent), spec
        tally.add("resolved")

    check()
    assert sim.received.total == before
    assert tally.outcomes["resolved"] > 20
    tally.record(figures, "Client.resolve")


def test_fuzzed_constructor_options(tmp_path: Path, figures: Figures) -> None:
    """Every option of Client(...), fuzzed: a client with checked values, or ValueError /
    TypeError naming the option (an unusable cache path may also give the file system's
    or SQLite's error); nothing connects and no thread is left."""
    tally = Tally()
    threads = threading.active_count()
    caches = tmp_path / "caches"
    names = st.text(min_size=1, max_size=300).map(lambda s: s.replace("/", "_"))
    names = names.filter(lambda s: s not in (".", ".."))

    @settings(SETTINGS, max_examples=800)
    @given(
        kwargs=st.fixed_dictionaries(
            {},
            optional={
                "host": mostly(
                    st.sampled_from(("127.0.0.1", "localhost", "::1", "tws.example")),
                    st.one_of(texts(("127.0.0.1",)), OTHERS),
                ),
                "port": mostly(
                    st.integers(1, 65535), st.one_of(st.integers(), OTHERS, texts(("7497",)))
                ),
                "client_id": mostly(
                    st.one_of(st.none(), st.integers(0, 2_147_483_646)),
                    st.one_of(st.integers(), OTHERS, texts(("1",))),
                ),
                "connect_timeout": mostly(VALID_SECONDS, TIMEOUTS),
                "timeout": mostly(VALID_SECONDS, TIMEOUTS),
                "auto_reconnect": mostly(st.booleans(), OTHERS),
                "registry": mostly(st.just(ProductRegistry()), OTHERS),
                "reconnect_min_delay": mostly(VALID_SECONDS, TIMEOUTS),
                "reconnect_max_delay": mostly(VALID_SECONDS, TIMEOUTS),
                "cache": mostly(
                    st.one_of(st.none(), names.map(lambda n: caches / n)),
                    st.one_of(OTHERS, texts(("x",))),
                ),
                "pacing": mostly(st.one_of(st.none(), st.just(PacingRules())), OTHERS),
                "chunk_spans": st.one_of(
                    OTHERS,
                    st.dictionaries(
                        st.one_of(
                            st.sampled_from(list(BarSize)),
                            st.sampled_from(BAR_SIZES),
                            texts(BAR_SIZES),
                            st.integers(),
                            st.none(),
                        ),
                        st.one_of(st.sampled_from(DURATIONS), texts(DURATIONS), OTHERS),
                        max_size=3,
                    ),
                ),
            },
        )
    )
    def check(kwargs: dict[str, Any]) -> None:
        cache = kwargs.get("cache")
        if isinstance(cache, str):  # a bare string is a path relative to the working dir
            kwargs["cache"] = caches / cache.replace("/", "_").replace("..", "__")
        try:
            made = Client(**kwargs)
        except (ValueError, TypeError) as exc:
            tally.add(f"refused: {type(exc).__name__}")
            return
        except (OSError, sqlite3.Error) as exc:
            unusable = type(exc).__name__
        else:
            unusable = ""
        if unusable:
            assert isinstance(kwargs.get("cache"), Path), unusable
            tally.add(f"cache path unusable: {unusable}")
            return
        try:
            assert _printable(made.host)
            assert 0 < len(made.host) <= 255
            assert 1 <= made.port <= 65535
            for name in ("connect_timeout", "timeout", "reconnect_min_delay"):
                assert 0 < getattr(made, name) <= v.MAX_SECONDS
            assert made.reconnect_min_delay <= made.reconnect_max_delay <= v.MAX_SECONDS
            assert made.client_id is None or 0 <= made.client_id <= 2_147_483_646
            assert not made.connected
            tally.add("constructed")
        finally:
            made.close()

    check()
    assert threading.active_count() == threads
    assert tally.outcomes["constructed"] > 20
    tally.record(figures, "Client(...) options")


@contextlib.contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables, restoring them afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


ENV_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    st.sampled_from(["7497", " 7497 ", "0", "-1", "65536", "1e3", "0x10", "1_000", "\u0661\u0662"]),
    st.sampled_from([t for t in TRICKS if "\x00" not in t]),
    st.integers(65, HUGE).map(lambda n: "9" * n),
)


def test_fuzzed_environment_of_from_env(tmp_path: Path, figures: Figures) -> None:
    """Client.from_env with fuzzed IB_HOST, IB_PORT, IB_CLIENT_ID and IBDATA_PRODUCTS: a
    client with checked values, ValueError naming the problem, or OSError when the product
    file cannot be read."""
    tally = Tally()
    product_dir = tmp_path / "products"
    product_dir.mkdir()
    files = st.tuples(
        st.sampled_from([".toml", ".json", ".txt", ""]),
        st.one_of(st.text(max_size=200), st.sampled_from(['{"X": {}}', "[X]\nsymbol = 1\n"])),
    )
    counter = iter(range(10**9))

    def product_file(spec: tuple[str, str]) -> str:
        path = product_dir / f"p{next(counter)}{spec[0]}"
        path.write_text(spec[1], encoding="utf-8", errors="surrogatepass")
        return str(path)

    @settings(SETTINGS, max_examples=500)
    @given(
        host=mostly(st.sampled_from([None, "127.0.0.1", "tws.example"]), ENV_TEXT),
        port=mostly(st.one_of(st.none(), st.integers(1, 65535).map(str)), ENV_TEXT),
        client_id=mostly(st.one_of(st.none(), st.integers(0, 10**6).map(str)), ENV_TEXT),
        products=mostly(
            st.none(),
            st.one_of(
                ENV_TEXT,
                files.map(product_file),
                st.sampled_from(["~", "~/none.toml", "~nosuchuser-x/p.toml", str(tmp_path)]),
            ),
        ),
    )
    def check(
        host: str | None, port: str | None, client_id: str | None, products: str | None
    ) -> None:
        env = {"IB_HOST": host, "IB_PORT": port, "IB_CLIENT_ID": client_id}
        with environment({**env, "IBDATA_PRODUCTS": products}):
            try:
                made = Client.from_env()
            except ValueError:
                tally.add("refused: ValueError")
                return
            except OSError as exc:
                unreadable = type(exc).__name__
            else:
                unreadable = ""
        if unreadable:
            assert products, "OSError without a product file"
            tally.add(f"product file unreadable: {unreadable}")
            return
        try:
            assert _printable(made.host)
            assert 1 <= made.port <= 65535
            if host:
                assert made.host == host
            tally.add("constructed")
        finally:
            made.close()

    check()
    assert tally.outcomes["constructed"] > 20
    tally.record(figures, "Client.from_env variables")


# ---------------------------------------------------------------------- REST

#: Query parameters of each endpoint, with legal values.
MARKET_DATA_PARAMS: dict[str, tuple[str, ...]] = {
    "duration": DURATIONS,
    "barSize": BAR_SIZES,
    "whatToShow": SHOWS,
    "useRTH": ("true", "false", "1", "0", "yes", "no"),
    "endDateTime": ("2025-03-11T15:00:00Z", "20250311-15:00:00", "2025-03-11T15:00:00"),
    "end": ("2025-03-11T15:00:00+01:00",),
    "start": ("2025-03-10T14:00:00Z", "2025-03-11T14:00:00Z"),
    "secType": SEC_TYPES,
    "exchange": ("SMART", "EUREX", "IDEALPRO"),
    "currency": ("USD", "EUR"),
}
DETAILS_PARAMS: dict[str, tuple[str, ...]] = {
    "code": ("EURBBL", "UST10YZ5", "AAPL"),
    "secType": SEC_TYPES,
    "exchange": ("SMART", "EUREX"),
    "currency": ("USD", "EUR"),
    "includeExpired": ("true", "false"),
}
AUTH = {
    "right": f"Bearer {TOKEN}",
    "wrong": "Bearer not-the-token",
    "prefix": f"Bearer {TOKEN[:-1]}",
    "basic": f"Basic {TOKEN}",
    "lower": f"bearer {TOKEN}",
    "empty": "Bearer ",
}


def _encode(text: str, raw: bool) -> str:
    """``text`` for a URL: percent-encoded, or raw (path tricks kept as written, other
    bytes escaped only where the request line would otherwise break)."""
    if raw:
        return urllib.parse.quote(text, safe="/%.;:$,~!*'()@")
    return urllib.parse.quote(text, safe="")


def _parsed_time(text: str | None) -> dt.datetime | None:
    try:
        return http_time(text, "time")
    except (ValueError, OverflowError):
        return None


def _bounded(draw: st.DrawFn, query: dict[str, str], raw: bool) -> None:
    """Keep what the simulator would serve small, as in :func:`bar_requests`: a range gets
    an end at most two days after its start, a single request at most 50,000 bars."""
    seen = {k: urllib.parse.unquote(val) if raw else val for k, val in query.items()}
    start = _parsed_time(seen.get("start"))
    if start is not None and "duration" not in seen:
        ends = [name for name in ("end", "endDateTime") if name in seen]
        if not ends:
            span = draw(st.timedeltas(dt.timedelta(minutes=1), dt.timedelta(days=2)))
            with contextlib.suppress(OverflowError):
                query["end"] = (start + span).isoformat()
        elif len(ends) == 1:
            stop = _parsed_time(seen[ends[0]])
            assume(stop is None or stop - start <= dt.timedelta(days=2))
    try:
        size = v.bar_size(seen.get("barSize", "1 hour"))
        span_s = _duration_seconds(v.duration(seen.get("duration", "1 D")))
    except (ValueError, TypeError):
        return
    assume(span_s / size.seconds <= 50_000)


@st.composite
def rest_requests(draw: st.DrawFn, endpoint: str) -> tuple[str, dict[str, str]]:
    """A request target for ``endpoint`` with hostile path and query, and its headers."""
    params = MARKET_DATA_PARAMS if endpoint == "market-data" else DETAILS_PARAMS
    raw = draw(st.booleans())
    symbol = draw(mostly(st.sampled_from(SYMBOLS), texts(SYMBOLS)))
    query: dict[str, str] = {}
    for name in draw(st.lists(st.sampled_from(sorted(params)), unique=True, max_size=4)):
        query[name] = draw(mostly(st.sampled_from(params[name]), texts(params[name])))
    if endpoint == "market-data":
        _bounded(draw, query, raw)
    pairs = [f"{_encode(k, raw)}={_encode(value, raw)}" for k, value in query.items()]
    target = f"/ib/{endpoint}/{_encode(symbol, raw)}" + ("?" + "&".join(pairs) if pairs else "")
    headers: dict[str, str] = {}
    auth = draw(mostly(st.just("right"), st.sampled_from([*AUTH, "none", "text"])))
    if auth == "text":
        headers["Authorization"] = draw(st.text(st.characters(max_codepoint=255), max_size=80))
    elif auth != "none":
        headers["Authorization"] = AUTH[auth]
    if draw(st.booleans()):
        headers["X-Request-ID"] = draw(texts(("abc-123",)).filter(lambda s: len(s) < 4000))
    return target, headers


#: The most bytes of request head uvicorn's HTTP parser (h11) buffers before refusing it.
H11_LIMIT = 16 * 1024


def http_get(port: int, target: str, headers: dict[str, str]) -> tuple[int, dict[str, Any] | None]:
    """Send one GET with the target and headers exactly as given (no URL normalisation)
    over a raw socket; the status and the JSON body, or None if the body is not JSON.

    A redirect (Starlette's, for a path ending in ``/``) must stay on this server's
    ``/ib/`` paths: it is returned as ``{"location": ...}``.

    A request larger than the HTTP parser's limit (:data:`H11_LIMIT`) is refused by uvicorn
    before the app sees it, by closing the connection; when the close arrives while the
    request is still being sent, the connection is reset before its 400 can be read, and
    the status is 0. Only such a request may end that way.
    """
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        data = b""
        try:
            sock.sendall(request)
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            assert len(request) > H11_LIMIT, f"a request of {len(request)} bytes was reset"
            return 0, None
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status == 307:
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
        location = urllib.parse.urlsplit(fields[b"location"].decode("latin-1"))
        assert (location.scheme, location.netloc) == ("http", "127.0.0.1"), location
        assert location.path.startswith("/ib/"), location
        return status, {"location": location.geturl()}
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


@pytest.mark.parametrize("auth", [True, False], ids=["token", "open"])
@pytest.mark.parametrize("endpoint", ["market-data", "contract-details"])
def test_fuzzed_rest_requests_never_get_a_server_error(
    sim: Simulator, client: Client, endpoint: str, auth: bool, figures: Figures
) -> None:
    """Fuzzed paths, query parameters and headers get 200 or a 4xx, never a 5xx; a request
    refused by ibdata (no IB code and no candidates in the error) or by the token check sends
    nothing to TWS, and whatever is sent is clean."""
    servers = Servers()
    http = servers.start(create_app(client, token=TOKEN if auth else ""))
    port = http.base_url.port
    assert port is not None
    tally = Tally()
    try:

        @settings(SETTINGS, max_examples=300)
        @given(request=rest_requests(endpoint))
        def check(request: tuple[str, dict[str, str]]) -> None:
            target, headers = request
            before = sim.received.total
            status, body = http_get(port, target, headers)
            if status == 0:  # an oversize request the HTTP server cut off (see http_get)
                assert sim.received.total == before, target
                tally.add("reset (HTTP parser, over 16 KiB)")
                return
            assert status < 500, (status, target, body)
            assert status in (200, 307, 400, 401, 404), (status, target, body)
            scheme, _, credentials = headers.get("Authorization", "").strip().partition(" ")
            authorized = not auth or (scheme.lower(), credentials) == ("bearer", TOKEN)
            if status == 307:  # a path ending in "/": redirected without it, nothing sent
                assert sim.received.total == before, target
                tally.add("307 (trailing slash)")
                return
            if body is None:  # refused by the HTTP server before the app
                assert status == 400, (status, target)
                tally.add("400 (HTTP parser)")
            elif status == 200:
                tally.add("200")
            else:
                assert set(body) >= {"error", "code", "timestamp"}, body
                tally.add(f"{status} ({'IB' if body['code'] is not None else 'ibdata'})")
            if body is not None and status != 401 and not authorized:
                assert (status, body["error"]) == (404, "Not Found"), target  # no such route
            # An ambiguity (no IB code, but candidates) is ibdata's reading of TWS's answer to
            # the contract lookup: that request reached TWS, and is checked as any other.
            if status != 200 and (
                body is None or (body["code"] is None and not body.get("candidates"))
            ):
                assert sim.received.total == before, f"{target} was refused but reached TWS"
                return
            settle(client)
            assert_clean_wire(_new_messages(sim, before))

        check()
    finally:
        servers.stop(http)
    assert_session_intact(sim, client)
    assert tally.outcomes["200"] > 10
    tally.record(figures, f"REST /ib/{endpoint} ({'token' if auth else 'no token'})")


#: Raw request targets: path traversal and encoding tricks, sent without normalisation.
PATH_TRICKS = (
    "/ib/market-data/../../etc/passwd",
    "/ib/market-data/..%2f..%2fetc%2fpasswd",
    "/ib/market-data/%2e%2e/%2e%2e/ib/products",
    "/ib/market-data/AAPL/../../x",
    "/ib/market-data/AAPL%2f..%2f..%2fx",
    "/ib/market-data/AAPL%00",
    "/ib/market-data/%00",
    "/ib/market-data/AAPL%0d%0aX-Injected:%201",
    "/ib/market-data/%ff%fe",
    "/ib/market-data/%",
    "/ib/market-data/%zz",
    "/ib/market-data/%c0%ae%c0%ae",
    "/ib/market-data/\u00c4APL",
    "/ib/market-data/AAPL?barSize=1%20hour%00",
    "/ib/market-data/AAPL?duration=1%20D&duration=2%20D",
    "/ib/market-data/" + "A" * 60_000,
    "/ib/contract-details/..",
    "/ib/contract-details/.",
    "/ib/contract-details/%2e",
    "/ib/contract-details/AAPL?code=..%2f..",
    "/ib/../ib/products",
    "//ib/products",
    "/ib/products/../reconnect",
    "/ib/market-data/AAPL\x01",
    "/ib/market-data/AA PL",
    "*",
    "http://evil.example/ib/products",
)


@pytest.mark.parametrize("auth", [True, False], ids=["token", "open"])
def test_path_tricks_are_refused_or_answered_cleanly(
    sim: Simulator, client: Client, auth: bool, figures: Figures
) -> None:
    """Raw path-traversal and encoding tricks get a 4xx (or the plain answer for the
    symbol they spell), never a 5xx, and nothing unchecked reaches TWS."""
    servers = Servers()
    http = servers.start(create_app(client, token=TOKEN if auth else ""))
    port = http.base_url.port
    assert port is not None
    statuses: Counter[int] = Counter()
    try:
        for target in PATH_TRICKS:
            for headers in ({"Authorization": AUTH["right"]}, {}):
                before = sim.received.total
                status, body = http_get(port, target, headers)
                assert status in (200, 307, 400, 401, 404), (status, target, body)
                statuses[status] += 1
                if status != 200 and (body is None or body.get("code") is None):
                    assert sim.received.total == before, target
                settle(client)
                assert_clean_wire(_new_messages(sim, before))
    finally:
        servers.stop(http)
    figures.record(
        f"REST path tricks ({'token' if auth else 'no token'}): requests", sum(statuses.values())
    )
    figures.record(
        f"REST path tricks ({'token' if auth else 'no token'}): statuses",
        dict(sorted(statuses.items())),
    )


# ---------------------------------------------------------------------- serving


def _non_loopback_address() -> str | None:
    """This host's address on its default route, or None without one (nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.255", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_serve_listens_on_loopback_and_never_logs_the_token(figures: Figures) -> None:
    """``ibdata serve`` binds 127.0.0.1 by default (unreachable on other addresses), and at
    debug level its log shows neither the token nor a wrong one, however they were sent."""
    environ = {k: val for k, val in os.environ.items() if not k.startswith(("IB_", "IBDATA_"))}
    environ |= {"IBDATA_API_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    wrong = "wrong-3b9f1c8e7d"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ibdata", "serve", "--simulate", "--port", "0", "-v"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None:
            assert time.monotonic() < deadline
            line = proc.stdout.readline()
            assert line, f"ibdata serve exited with status {proc.wait()}"
            match = re.search(r"REST adapter on (http://(\S+):(\d+))", line)
            if match:
                url, host, port = match[1], match[2], int(match[3])
        assert host == "127.0.0.1"
        with httpx.Client(base_url=url, timeout=30) as http:
            right = {"Authorization": f"Bearer {TOKEN}"}
            assert http.get("/ib/products", headers=right).status_code == 200
            assert http.get("/ib/market-data/AAPL", headers=right).status_code == 200
            for headers in (
                {"Authorization": f"Bearer {wrong}"},
                {"Authorization": f"Basic {TOKEN}"},
                {"Authorization": TOKEN},
                {"Cookie": f"token={TOKEN}"},
                {"X-Api-Key": TOKEN},
            ):
                assert http.get("/ib/products", headers=headers).status_code == 401
            for name in ("token", "access_token", "api_key"):
                for value in (TOKEN, wrong):
                    assert http.get("/ib/products", params={name: value}).status_code == 401
                    r = http.get("/ib/market-data/AAPL", params={name: value}, headers=right)
                    assert r.status_code == 200
            assert http.get("/ib/health").status_code == 200
        other = _non_loopback_address()
        if other is not None:  # a host with another interface: the port is not open there
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((other, port), timeout=2).close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    log = out + err
    assert "ibdata.http.access" in log  # the requests were logged ...
    assert '"status": 401' in log
    assert TOKEN not in log
    assert wrong not in log
    figures.record("serve: default bind address", host)
    figures.record("serve: log lines searched for the token", len(log.splitlines()))
