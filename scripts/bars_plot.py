"""Draw the chart of docs/bars.md: ``Bars.plot()`` of a week of hourly AAPL bars.

The bars come from the simulator with its clock fixed at Wednesday 12 March 2025, 15:00
UTC, as in the docs' samples, so the picture shows what the page's code gives::

    .venv/bin/python scripts/bars_plot.py                      # docs/_static/bars-plot.png
    .venv/bin/python scripts/bars_plot.py --output bars.png

Needs the extra ``ibdata[plot]`` (matplotlib). tests/test_notebook.py runs it.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import ibdata
from ibdata.sim import FixedClock, Simulator

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "docs" / "_static" / "bars-plot.png"
CLOCK = dt.datetime(2025, 3, 12, 15, tzinfo=dt.timezone.utc)


def main() -> None:
    """Fetch the bars from a simulator, draw them and save the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT, help="the PNG to write")
    args = parser.parse_args()
    with (
        Simulator(clock=FixedClock(CLOCK), server_version=157) as sim,
        ibdata.Client(sim.host, sim.port, timeout=30) as ib,
    ):
        bars = ib.get_historical_bars("AAPL", duration="1 W", bar_size="1 hour", use_rth=True)
    fig = bars.plot()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=80, metadata={"Software": None})
    print(f"{len(bars)} bars drawn to {args.output}")


if __name__ == "__main__":
    main()
