"""A year of 1-minute bars through the history engine, with a progress bar and a cache.

One call downloads the whole range: the history engine splits it into requests IB accepts,
paces them under IB's rules and keeps every finished bar in an SQLite file, so running the
script again fetches only what is new. ``--days`` shortens the range.

Against the simulator, with ``ibdata sim`` running in another terminal::

    IB_PORT=7497 python examples/year_of_minute_bars.py SPY --days 365

Against TWS or IB Gateway with the API enabled, set ``IB_HOST`` / ``IB_PORT`` (TWS 7497
paper, 7496 live; IB Gateway 4002 paper, 4001 live) and run the same command. A year of
1-minute bars is a few hundred requests to IB, so the first run takes a while.
"""

import argparse
import datetime as dt
import sys

import ibdata


def main() -> None:
    parser = argparse.ArgumentParser(description="A year of 1-minute bars, cached.")
    parser.add_argument("symbol", nargs="?", default="SPY")
    parser.add_argument("--days", type=int, default=365, help="days back from now (365)")
    parser.add_argument("--cache", default="minute_bars.sqlite", help="the cache file")
    args = parser.parse_args()

    end = dt.datetime.now(dt.timezone.utc)
    start = end - dt.timedelta(days=args.days)
    try:
        with ibdata.Client.from_env(cache=args.cache) as ib:
            bars = ib.get_historical_bars(
                args.symbol,
                start=start,
                end=end,
                bar_size="1 min",
                progress=ibdata.tqdm_progress(desc=args.symbol),
            )
    except ibdata.IBDataError as exc:
        sys.exit(f"error: {exc}")

    if not bars:
        sys.exit(f"error: no bars of {args.symbol} from {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    print(f"{len(bars):,} 1-minute bars of {args.symbol}")
    print(f"first {bars[0].time:%Y-%m-%d %H:%M} UTC, last {bars[-1].time:%Y-%m-%d %H:%M} UTC")
    print(f"cached in {args.cache}")


if __name__ == "__main__":
    main()
