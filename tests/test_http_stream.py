"""``GET /ib/stream/{symbol}``: live bars as Server-Sent Events, over real HTTP (uvicorn in a
thread) from a real Client of a simulator whose clock runs 60 times faster than real time,
so that a 1-minute bar ends about every second."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI

from ibdata import Client
from ibdata.http import create_app
from ibdata.sim import FixedClock, Simulator
from tests.conftest import tuesday_afternoon
from tests.http_serving import serving

UTC = dt.timezone.utc
MINUTE = dt.timedelta(minutes=1)
BAR_KEYS = {"time", "open", "high", "low", "close", "volume", "count", "wap"}
ERROR_KEYS = {"error", "code", "timestamp"}
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


# ---------------------------------------------------------------------- fixtures


@pytest.fixture
def sim(fast_sim: Simulator) -> Simulator:
    """The simulator of these tests (conftest's ``fast_sim``)."""
    return fast_sim


@pytest.fixture
def client(sim: Simulator) -> Iterator[Client]:
    """A connected client of ``sim``, closed after the test."""
    with Client(sim.host, sim.port, timeout=10, connect_timeout=5, pacing=None) as c:
        yield c


@pytest.fixture
def app(client: Client, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The REST adapter over ``client``, authentication off."""
    monkeypatch.delenv("IBDATA_API_TOKEN", raising=False)
    return create_app(client)


@pytest.fixture
def api(app: FastAPI) -> Iterator[httpx.Client]:
    """An HTTP client of ``app`` served by uvicorn."""
    with serving(app) as (http, _):
        yield http


# ---------------------------------------------------------------------- helpers


def events(response: httpx.Response) -> Iterator[dict[str, str]]:
    """The Server-Sent Events of a streaming response, as their fields; a comment line is
    an event ``{"comment": text}``."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if fields:
                yield fields
            fields = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def bar_events(
    response: httpx.Response, n: int, seen: list[dict[str, str]] | None = None
) -> list[dict[str, str]]:
    """The first ``n`` ``bar`` events of a streaming response; every event up to the last
    of them is appended to ``seen``."""
    found: list[dict[str, str]] = []
    for event in events(response):
        if seen is not None:
            seen.append(event)
        if event.get("event") == "bar":
            found.append(event)
            if len(found) == n:
                break
    return found


def minute_ago(sim: Simulator, minutes: int) -> dt.datetime:
    """The start of the simulator's minute ``minutes`` before the current one."""
    now = sim.clock.now().replace(second=0, microsecond=0)
    return now - minutes * MINUTE


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Wait for ``predicate``; the deadline only guards against a hang."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def json_error(r: httpx.Response, status: int) -> str:
    """The message of a JSON error answer (not an event stream) with ``status``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) >= ERROR_KEYS
    return str(body["error"])


def stream_path(symbol: str = "AAPL") -> str:
    return f"/ib/stream/{symbol}"


# ---------------------------------------------------------------------- events


def test_each_final_bar_is_one_event_whose_id_is_its_time(
    api: httpx.Client, sim: Simulator
) -> None:
    """From ``start``, every final bar comes as ``event: bar`` with ``id:`` its time and the
    bar as market data's JSON, one minute after the other, with no gap and no duplicate
    between the history and the live bars."""
    start = minute_ago(sim, 2)
    params = {"barSize": "1 min", "start": start.isoformat()}
    seen: list[dict[str, str]] = []
    with api.stream("GET", stream_path(), params=params) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        got = bar_events(r, 4, seen)
    assert {e.get("event") for e in seen} <= {"bar", "notice"}  # no partial unless asked
    ids = [e["id"] for e in got]
    assert all(ISO_Z.fullmatch(i) for i in ids)
    assert [instant(i) for i in ids] == [start + k * MINUTE for k in range(4)]
    for event in got:
        bar = json.loads(event["data"])
        assert set(bar) == BAR_KEYS
        assert bar["time"] == event["id"]
        assert bar["low"] <= min(bar["open"], bar["close"]) <= bar["high"]


def test_stream_events_are_notices(api: httpx.Client) -> None:
    """What happens to the stream comes as ``event: notice`` with kind, detail and code."""
    with api.stream("GET", stream_path(), params={"barSize": "1 min"}) as r:
        notice = next(e for e in events(r) if e.get("event") == "notice")
    assert "id" not in notice
    body = json.loads(notice["data"])
    assert set(body) == {"kind", "detail", "code"}
    assert body["kind"] == "subscribed"


def test_partial_events_come_only_when_asked_and_have_no_id(
    api: httpx.Client, sim: Simulator
) -> None:
    """With ``partial=true`` the bar still forming comes as ``event: partial`` without an
    id (so a reconnection never resumes from it), later than the last final bar; the final
    bar of the same time follows."""
    params = {"barSize": "1 min", "partial": "true"}
    seen: list[dict[str, str]] = []
    with api.stream("GET", stream_path(), params=params) as r:
        for event in events(r):
            seen.append(event)
            if event.get("event") == "bar" and any(e.get("event") == "partial" for e in seen):
                break
    partials = [e for e in seen if e.get("event") == "partial"]
    assert partials
    assert all("id" not in e for e in partials)
    final = seen[-1]
    partial_times = {json.loads(e["data"])["time"] for e in partials}
    assert final["id"] in partial_times  # the bar formed live, then ended


def test_daily_bars_have_the_date_as_id(api: httpx.Client, sim: Simulator) -> None:
    """Daily bars' ids are their session dates, ``YYYYMMDD``, as market data writes them."""
    start = (sim.clock.now() - dt.timedelta(days=7)).date()
    params = {"barSize": "1 day", "start": start.isoformat()}
    with api.stream("GET", stream_path(), params=params) as r:
        got = bar_events(r, 3)
    ids = [e["id"] for e in got]
    assert all(re.fullmatch(r"\d{8}", i) for i in ids)
    assert ids == sorted(set(ids))
    assert all(json.loads(e["data"])["time"] == e["id"] for e in got)


def test_keep_alive_comment_after_silence(
    sim_factory: Callable[..., Simulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When no event has gone out for a while, the comment ``: keep-alive`` is sent (the
    interval is shortened for the test; the clock stands still, so no bar ends)."""
    monkeypatch.setattr("ibdata.http.KEEP_ALIVE", 0.3)
    monkeypatch.delenv("IBDATA_API_TOKEN", raising=False)
    still = sim_factory(clock=FixedClock(tuesday_afternoon()), pacing=None)
    with (
        Client(still.host, still.port, timeout=10, pacing=None) as ib,
        serving(create_app(ib)) as (http, _),
        http.stream("GET", stream_path(), params={"barSize": "1 min"}) as r,
    ):
        comment = next(e for e in events(r) if "comment" in e)
    assert comment == {"comment": "keep-alive"}


# ---------------------------------------------------------------------- resuming


def test_last_event_id_resumes_with_the_next_bar(api: httpx.Client, sim: Simulator) -> None:
    """A client reconnecting with ``Last-Event-ID`` gets the bar after that one first: no
    gap and no duplicate, even when that bar ended while it was away."""
    params = {"barSize": "1 min", "start": minute_ago(sim, 3).isoformat()}
    with api.stream("GET", stream_path(), params=params) as r:
        first = bar_events(r, 3)
    last = first[-1]["id"]
    # two bars end while the client is away: they must come from history
    until(lambda: sim.clock.now() >= instant(last) + 3 * MINUTE)
    with api.stream("GET", stream_path(), params=params, headers={"Last-Event-ID": last}) as r:
        resumed = bar_events(r, 3)
    times = [instant(e["id"]) for e in resumed]
    assert times == [instant(last) + k * MINUTE for k in (1, 2, 3)]


def test_last_event_id_parameter_resumes_too(api: httpx.Client, sim: Simulator) -> None:
    """``lastEventId`` (for clients that cannot set headers) resumes the same way, and the
    header wins over it."""
    older = minute_ago(sim, 5).strftime("%Y-%m-%dT%H:%M:%SZ")
    newer = minute_ago(sim, 3).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"barSize": "1 min", "lastEventId": older}
    with api.stream("GET", stream_path(), params=params) as r:
        (event,) = bar_events(r, 1)
    assert instant(event["id"]) == instant(older) + MINUTE
    with api.stream("GET", stream_path(), params=params, headers={"Last-Event-ID": newer}) as r:
        (event,) = bar_events(r, 1)
    assert instant(event["id"]) == instant(newer) + MINUTE


def test_daily_last_event_id_resumes_with_the_next_session(
    api: httpx.Client, sim: Simulator
) -> None:
    """A daily bar's id resumes with the next session's bar."""
    start = (sim.clock.now() - dt.timedelta(days=7)).date()
    params = {"barSize": "1 day", "start": start.isoformat()}
    with api.stream("GET", stream_path(), params=params) as r:
        first = [e["id"] for e in bar_events(r, 3)]
    headers = {"Last-Event-ID": first[0]}
    with api.stream("GET", stream_path(), params=params, headers=headers) as r:
        resumed = [e["id"] for e in bar_events(r, 2)]
    assert resumed == first[1:]


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("params", "headers", "named"),
    [
        ({}, {}, "barSize"),
        ({"barSize": "1 secs"}, {}, "barSize"),
        ({"barSize": "1 fortnight"}, {}, "barSize"),
        ({"barSize": "1 min", "whatToShow": "BID_ASK"}, {}, "whatToShow"),
        ({"barSize": "1 min", "start": "2025-03-12T10:00:00"}, {}, "start"),
        ({"barSize": "1 min", "lookback": "-5"}, {}, "lookback"),
        ({"barSize": "1 min", "lookback": "60", "start": "2025-03-12"}, {}, "start"),
        ({"barSize": "1 min"}, {"Last-Event-ID": "yesterday"}, "Last-Event-ID"),
        ({"barSize": "1 min", "lastEventId": "2025-03-12T10:00"}, {}, "lastEventId"),
    ],
)
def test_invalid_parameters_are_a_json_400(
    api: httpx.Client, params: dict[str, str], headers: dict[str, str], named: str
) -> None:
    """A bad parameter (or Last-Event-ID) is the usual JSON 400 naming it, not a stream."""
    r = api.get(stream_path(), params=params, headers=headers)
    assert named in json_error(r, 400)


def test_unknown_symbol_is_a_json_404(api: httpx.Client) -> None:
    """An unknown symbol is the JSON 404 with IB's code 200, as for market data."""
    r = api.get(stream_path("ZZZZ"), params={"barSize": "1 min"})
    json_error(r, 404)
    assert r.json()["code"] == 200


def test_an_error_that_ends_the_stream_is_an_error_event(api: httpx.Client, sim: Simulator) -> None:
    """When IB withdraws the permission mid-stream, an ``event: error`` with the error body
    (IB's code 162) is the last event, and the response ends."""
    with api.stream("GET", stream_path(), params={"barSize": "1 min"}) as r:
        seen = []
        for event in events(r):
            seen.append(event)
            if len(seen) == 1:
                assert sim.revoke_permission("AAPL") == 1
    assert seen[-1]["event"] == "error"
    body = json.loads(seen[-1]["data"])
    assert set(body) >= ERROR_KEYS
    assert body["code"] == 162
    assert "permission" in body["error"].lower()
    until(lambda: sim.live_subscriptions == 0)


# ---------------------------------------------------------------------- closing


def test_disconnecting_cancels_the_subscription(
    api: httpx.Client, app: FastAPI, sim: Simulator
) -> None:
    """When the HTTP client goes away, the stream is closed and its subscription cancelled
    at the simulator."""
    with api.stream("GET", stream_path(), params={"barSize": "1 min"}) as r:
        received = events(r)  # kept: dropping it would close the response early
        next(received)
        assert sim.live_subscriptions == 1
        assert len(app.live_streams) == 1  # type: ignore[attr-defined]
    until(lambda: sim.live_subscriptions == 0)
    until(lambda: not app.live_streams)  # type: ignore[attr-defined]


def test_close_streams_ends_open_responses(api: httpx.Client, app: FastAPI, sim: Simulator) -> None:
    """``close_streams`` (for a server that is stopping) ends every open response and
    cancels its subscription."""
    with api.stream("GET", stream_path(), params={"barSize": "1 min"}) as r:
        stream = events(r)
        next(stream)
        assert app.close_streams() == 1  # type: ignore[attr-defined]
        rest = list(stream)  # the response ends
    assert all(e.get("event") != "error" for e in rest)
    until(lambda: sim.live_subscriptions == 0)


def test_stopping_the_server_closes_open_streams(app: FastAPI, sim: Simulator) -> None:
    """A server that stops with a stream open (after its graceful timeout) closes it and
    cancels the subscription."""
    with (
        serving(app, timeout_graceful_shutdown=0.5) as (http, server),
        http.stream("GET", stream_path(), params={"barSize": "1 min"}) as r,
    ):
        stream = events(r)
        next(stream)
        assert sim.live_subscriptions == 1
        server.should_exit = True
        with pytest.raises(httpx.HTTPError):  # the server drops the connection
            list(stream)
    until(lambda: sim.live_subscriptions == 0)
    assert not app.live_streams  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- schema


def test_openapi_describes_the_event_stream(api: httpx.Client) -> None:
    """The schema lists the endpoint with a text/event-stream 200, its errors, and every
    parameter with a human title."""
    schema = api.get("/openapi.json").json()
    operation = schema["paths"]["/ib/stream/{symbol}"]["get"]
    ok = operation["responses"]["200"]
    assert set(ok["content"]) == {"text/event-stream"}
    assert "event: bar" in ok["description"]
    assert set(operation["responses"]) == {"200", "400", "403", "404", "429", "502", "503", "504"}
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {
        *("symbol", "barSize", "whatToShow", "useRTH", "start", "lookback", "partial"),
        *("Last-Event-ID", "lastEventId", "secType", "exchange", "currency"),
    }
    assert params["Last-Event-ID"]["in"] == "header"
    assert params["barSize"]["required"] is True
    assert "1 secs" not in params["barSize"]["schema"]["enum"]
    assert params["whatToShow"]["schema"]["enum"] == ["TRADES", "MIDPOINT", "BID", "ASK"]
    titles = {name: p["schema"].get("title") for name, p in params.items()}
    assert all(titles.values()), titles
    camel = [name for name in titles if name != name.lower()]  # barSize, Last-Event-ID ...
    assert all(titles[name] != name.capitalize() for name in camel), titles
