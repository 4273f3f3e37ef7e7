"""The public API as a user calls it; checked by ``mypy --strict`` in CI, never run.

If a change breaks a signature users rely on, this file stops type-checking.
"""

from __future__ import annotations

import datetime as dt

import ibdata
from ibdata.sim import FixedClock, Simulator


def use_client(sim: Simulator) -> None:
    """Every public call of the client, with the types users get back."""
    with ibdata.Client(sim.host, sim.port, client_id=None, timeout=30.0) as ib:
        end = dt.datetime(2025, 3, 12, 21, tzinfo=dt.timezone.utc)
        bars: ibdata.Bars = ib.get_historical_bars(
            "AAPL",
            duration="1 W",
            bar_size=ibdata.BarSize.ONE_DAY,
            what_to_show="TRADES",
            end=end,
            use_rth=True,
            timeout=dt.timedelta(seconds=10),
        )
        first: ibdata.Bar = bars[0]
        when: dt.datetime | dt.date = first.time
        volume: float | None = first.volume
        rows: list[dict[str, object]] = bars.to_dicts()
        details: list[ibdata.ContractDetails] = ib.get_contract_details(
            ibdata.ContractSpec("GBL", sec_type=ibdata.SecType.CONTFUT, exchange="EUREX")
        )
        con_id: int = details[0].contract.con_id
        health: ibdata.Health = ib.health()
        status: str = health.status
        login: ibdata.LoginTimeZone | None = health.login_time_zone
        if login is not None:
            login_zone: str | None = login.zone
            certainty: str = login.certainty
            sent: str = login.name
            del login_zone, certainty, sent
        ib.reconnect()
        spec: ibdata.ContractSpec = ib.resolve("EURBBLM25")
        ranged: ibdata.Bars = ib.get_historical_bars(
            "SPY",
            start=end - dt.timedelta(days=30),
            end=end,
            bar_size="1 min",
            progress=ibdata.tqdm_progress(desc="SPY"),
            max_requests=400,
        )
        columns = ranged.to_arrays()["close"]
        plan: ibdata.DownloadPlan = ib.plan(
            "SPY",
            start=end - dt.timedelta(days=30),
            end=end,
            bar_size=ibdata.BarSize.ONE_SECOND,
            what_to_show="TRADES",
            use_rth=False,
            timeout=10,
        )
        requests: int = plan.requests
        windows: tuple[tuple[dt.datetime, dt.datetime], ...] = plan.chunks
        least: dt.timedelta = plan.minimum_time
        head: dt.datetime | None = plan.head_timestamp
        summary: str = plan.describe()
        try:
            ib.get_historical_bars("SPY", start=end - dt.timedelta(days=30), max_requests=60)
        except ibdata.RangeTooLargeError as exc:
            refused: ibdata.DownloadPlan = exc.plan
            limit: int = exc.max_requests
            del refused, limit
        del when, volume, rows, con_id, status, spec, columns
        del requests, windows, least, head, summary
    try:
        ibdata.Client.from_env().connect()
    except ibdata.ConnectError as exc:
        code: int | None = exc.code
        del code
    except ibdata.IBDataError:
        pass


def use_ibapi_release() -> None:
    """The installed ibapi release, as ``ibdata --version`` reports it."""
    found: ibdata.IbapiRelease = ibdata.ibapi_release()
    version: str = found.version
    top: int = found.max_server_version
    owner: str | None = found.distribution
    others: tuple[str, ...] = found.other_distributions
    mixed: bool = found.mixed
    line: str = found.describe()
    del version, top, owner, others, mixed, line


def use_cache(path: str) -> None:
    """The cache on its own and through a client."""
    with ibdata.BarCache(path) as cache:
        bars: int = cache.info().bars
        del bars
    client = ibdata.Client(
        cache=path, pacing=ibdata.PacingRules(time_scale=10), max_message_rate=None
    )
    client.close()


def use_registry() -> None:
    """Product codes in and specs out."""
    registry = ibdata.ProductRegistry()
    spec: ibdata.ContractSpec = registry.resolve("UST10YZ5", today=dt.date(2025, 1, 1))
    found: ibdata.ContractSpec | None = registry.lookup("AAPL")
    del spec, found


def use_simulator() -> None:
    """The simulator's constructor, faults and observation."""
    clock = FixedClock(dt.datetime(2025, 3, 12, 15, tzinfo=dt.timezone.utc))
    with Simulator(port=0, clock=clock, pacing=ibdata.PacingRules(time_scale=10)) as sim:
        sim.fail_next(162, request="reqHistoricalData")
        sim.outage(0.5, data_lost=True)
        sim.set_latency(0.1)
        port: int = sim.port
        count: int = sim.stats.pacing_violations
        del port, count
    with Simulator(login_tz="Europe/London", login_tz_names="long") as london:
        names: str = london.login_tz_names
        del names


def use_stores() -> None:
    """Stores of both backends behind one interface, shared by clients of one login."""
    from ibdata.postgres import PostgresStore
    from ibdata.store import BarStore, Copied, SeriesKey, copy_store, open_store

    with open_store("bars.sqlite") as local:
        store: BarStore = local
        key = SeriesKey(265598, "TRADES", "1 min", use_rth=False)
        gaps: list[tuple[float, float]] = store.missing(key, 0.0, 60.0)
        location: str = store.location
        del gaps, location
        with PostgresStore("postgresql://ibdata@db.internal/ibdata", lease_seconds=10) as team:
            copied: Copied = copy_store(local, team)
            bars: int = copied.bars
            del bars
    client = ibdata.Client(cache="postgresql://ibdata@db.internal/ibdata", login="team")
    plan: ibdata.DownloadPlan = client.plan("AAPL", start="2025-03-10", end=dt.date(2025, 3, 11))
    got: ibdata.Bars = client.get_historical_bars("AAPL", start="2025-03-10T14:00Z")
    del plan, got
    client.close()
