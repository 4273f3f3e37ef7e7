"""What a notebook shows: readable reprs, HTML tables for bars and contracts, and
``Bars.plot()``'s candles."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from matplotlib.figure import Figure

from ibdata import Bars, Client
from ibdata.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc
END = dt.datetime(2025, 3, 12, 15, tzinfo=UTC)


@pytest.fixture
def ib(sim: Simulator) -> Iterator[Client]:
    """A client of the simulator."""
    with Client(sim.host, sim.port, timeout=20) as client:
        yield client


def hourly(ib: Client, **options: object) -> Bars:
    """Two days of hourly AAPL bars (23 of them) before the simulator's clock."""
    return ib.get_historical_bars("AAPL", duration="2 D", bar_size="1 hour", end=END, **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reprs
def test_contract_details_repr_is_one_short_line(ib: Client) -> None:
    """``repr(ContractDetails)`` names the contract, conId, name, zone and the span of its
    sessions in one line, not every session."""
    (details,) = ib.get_contract_details("EURBBLM25")
    text = repr(details)
    assert text.startswith("<ContractDetails GBL FUT 20250606 EUREX EUR, con_id 611202506, ")
    assert "'Euro-Bund Futures', MET, " in text
    assert f"{len(details.trading_hours)} trading sessions 2025-03-" in text
    assert "\n" not in text
    assert len(text) < 200


def test_health_repr_is_one_short_line(ib: Client) -> None:
    """``repr(Health)`` gives the state, address, client id, server version, farms, start
    of the session, reconnects and ibapi release."""
    health = ib.health()
    text = repr(health)
    assert text.startswith(f"<Health healthy: 127.0.0.1:{ib.health().port}, ")
    assert f"client {health.client_id}, server version {health.server_version}" in text
    assert f"farms {len(health.farms)} ok" in text
    assert "0 reconnects" in text
    assert text.endswith(f"ibapi {health.ibapi_version}>")
    assert len(text) < 200


def test_health_repr_names_broken_farms(ib: Client) -> None:
    """A degraded session's repr names the farms that are not ok."""
    health = ib.health()
    farms = dict(health.farms) | {"usfarm": "broken"}
    text = repr(attrs.evolve(health, status="degraded", farms=farms))
    assert text.startswith("<Health degraded: ")
    assert "broken usfarm" in text


# --------------------------------------------------------------------------- HTML
def test_bars_html_shows_the_summary_and_both_ends(ib: Client) -> None:
    """A notebook table of bars states the contract, kind, count, span, zone and gaps, and
    shows the first five and the last five bars around an ellipsis row."""
    bars = hourly(ib)
    page = bars._repr_html_()
    assert len(bars) == 23
    for fact in (
        "AAPL STK SMART USD",
        "1 hour TRADES, all hours",
        ">23<",
        "2025-03-11T08:00:00Z .. 2025-03-12T14:00:00Z",
        "US/Eastern",
        "UTC (bar start)",
    ):
        assert fact in page
    assert page.count("<tr><td>") == 11  # five, the ellipsis, five
    assert page.count("<td>…</td>") == 8
    assert "<td>111900</td>" in page  # a volume, written whole
    first, last = bars[0], bars[-1]
    assert f"<td>{first.time:%Y-%m-%dT%H:%M:%SZ}</td>" in page
    assert f"<td>{last.time:%Y-%m-%dT%H:%M:%SZ}</td>" in page
    assert "1 between bars (longest 8 h, from 2025-03-12T00:00:00Z)" in page


def test_short_bars_show_every_row_and_daily_gaps(ib: Client) -> None:
    """Ten bars or fewer are shown whole; daily bars count the weekdays without a bar."""
    bars = ib.get_historical_bars("AAPL", duration="1 W", bar_size="1 day", end=END)
    page = bars._repr_html_()
    assert page.count("<tr><td>") == len(bars)
    assert "…" not in page
    assert "session dates" in page
    assert "gaps</th><td style='text-align:left'>none<" in page
    missing = Bars.from_bars(
        [bars[0], bars[2]], bar_size="1 day", what_to_show="TRADES", use_rth=False
    )
    assert "1 weekday without a bar" in missing._repr_html_()


def test_html_is_escaped() -> None:
    """Text from IB is escaped, so that a name cannot inject markup."""
    bars = Bars.from_bars([], bar_size="1 min", what_to_show="TRADES", use_rth=False,
                          time_zone="<b>zone</b>")  # fmt: skip
    page = bars._repr_html_()
    assert "<b>" not in page
    assert "&lt;b&gt;zone&lt;/b&gt;" in page


def test_contract_details_html_lists_the_main_fields(ib: Client) -> None:
    """The HTML of contract details holds its names, ids, tick, zone and sessions."""
    (details,) = ib.get_contract_details("AAPL")
    page = details._repr_html_()
    for fact in ("AAPL STK SMART USD", "265598", "APPLE INC", "NASDAQ", "0.01", "US/Eastern"):
        assert fact in page
    assert f"{len(details.trading_hours)} sessions; next " in page
    assert "ISIN=US0378331005" in page


# --------------------------------------------------------------------------- plot
def test_plot_draws_candles_and_volume(ib: Client) -> None:
    """``plot()`` returns a figure with a candle per bar above a volume panel."""
    bars = hourly(ib)
    fig = bars.plot()
    assert isinstance(fig, Figure)
    price, volume = fig.axes
    assert len(price.patches) == len(bars)  # the candles' bodies
    assert len(volume.patches) == len(bars)
    assert price.get_title(loc="left") == "AAPL STK SMART USD: 1 hour TRADES"
    assert volume.get_xlabel() == "UTC"
    fig.canvas.draw()  # renders without pyplot or a display


def test_plot_of_quote_bars_has_no_volume_panel(ib: Client) -> None:
    """Bars without volume (MIDPOINT) get the price panel only."""
    bars = hourly(ib, what_to_show="MIDPOINT")
    (price,) = bars.plot(title="midpoints").axes
    assert price.get_title(loc="left") == "midpoints"


def test_plot_needs_bars_and_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty bars cannot be drawn; without matplotlib the error names the extra."""
    empty = Bars.from_bars([], bar_size="1 day", what_to_show="TRADES", use_rth=False)
    with pytest.raises(ValueError, match="at least one bar"):
        empty.plot()
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'ibdata\[plot\]'"):
        empty.plot()


def test_the_docs_picture_script_runs(tmp_path: Path) -> None:
    """``scripts/bars_plot.py``, which draws docs/_static/bars-plot.png, writes a PNG."""
    target = tmp_path / "bars.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bars_plot.py"), "--output", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert target.read_bytes().startswith(b"\x89PNG")
    assert (ROOT / "docs" / "_static" / "bars-plot.png").is_file()
