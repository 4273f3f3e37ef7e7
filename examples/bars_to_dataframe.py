"""Daily bars of a stock in a pandas DataFrame, saved as a CSV file.

Fetches a year of AAPL daily bars, prints the last rows and writes the frame to the file
named on the command line (``aapl_daily.csv`` by default). Needs pandas:
``pip install 'ibdata[pandas]'``.

Against the simulator, with ``ibdata sim`` running in another terminal::

    IB_PORT=7497 python examples/bars_to_dataframe.py aapl_daily.csv

Against TWS or IB Gateway with the API enabled, set ``IB_HOST`` / ``IB_PORT`` (TWS 7497
paper, 7496 live; IB Gateway 4002 paper, 4001 live) and run the same command.
"""

import argparse
import sys

import ibdata


def main() -> None:
    parser = argparse.ArgumentParser(description="AAPL daily bars to a DataFrame and a CSV.")
    parser.add_argument("path", nargs="?", default="aapl_daily.csv", help="the CSV file")
    parser.add_argument("--symbol", default="AAPL", help="a stock symbol or product code")
    args = parser.parse_args()

    try:
        with ibdata.Client.from_env() as ib:
            bars = ib.get_historical_bars(args.symbol, duration="1 Y", bar_size="1 day")
    except ibdata.IBDataError as exc:
        sys.exit(f"error: {exc}")

    df = bars.to_pandas()  # indexed by session date (midnight UTC), one column per field
    print(df.tail().to_string())
    df.to_csv(args.path)
    print(f"{len(df)} daily bars of {args.symbol} written to {args.path}")


if __name__ == "__main__":
    main()
