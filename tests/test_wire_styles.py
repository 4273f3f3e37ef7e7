"""ibdata reads every form real TWS writes the same data in: padded or short prices, volumes
in lots or shares, date-times in the instrument's zone, the operator's or UTC.

Each style is one a real capture shows (see the simulator docs); the client must return the
same bars, windows and contract facts whichever the gateway uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

import ibdata
from ibdata.sim import Simulator
from tests import ibapi_release as rel

UTC = dt.timezone.utc
END = dt.datetime(2025, 3, 11, 20, tzinfo=UTC)


def _fetch(sim: Simulator) -> tuple[ibdata.Bars, ibdata.Bars, str]:
    with ibdata.Client(sim.host, sim.port, timeout=20) as ib:
        intraday = ib.get_historical_bars("AAPL", duration="2 D", bar_size="1 hour", end=END)
        daily = ib.get_historical_bars("EURBBLM25", duration="1 W", bar_size="1 day", end=END)
        (bund,) = ib.get_contract_details("EURBBLM25")
    return intraday, daily, bund.contract.last_trade_date


@pytest.mark.parametrize("sv", rel.versions([157, 165, 176, 200]))
@pytest.mark.parametrize(
    ("price_format", "api_time_zone"),
    [("short", "instrument"), ("four", "utc"), ("tick", "operator")],
)
def test_every_wire_style_gives_the_same_bars(
    sim_factory: Callable[..., Simulator], sv: int, price_format: str, api_time_zone: str
) -> None:
    """Bars, their windows and a future's last trade date are the same whatever style the
    gateway writes them in, at every server version the installed ibapi speaks."""
    base = sim_factory(server_version=sv, login_tz="Europe/Zurich")
    styled = sim_factory(
        server_version=sv,
        login_tz="Europe/Zurich",
        price_format=price_format,
        api_time_zone=api_time_zone,
    )
    expected, got = _fetch(base), _fetch(styled)
    assert got[0] == expected[0]
    assert got[1] == expected[1]
    assert (got[0].start, got[0].end) == (expected[0].start, expected[0].end) != (None, None)
    assert got[2] == expected[2] == "20250606"
