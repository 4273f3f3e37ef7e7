"""Look contracts up: a stock symbol and a product code of the registry.

Prints the key fields IB returns for each instrument named on the command line (by default
``AAPL`` and ``EURBBL``, the Euro-Bund's continuous future, which IB resolves to the
front month). Try ``EURBBLM25`` for one contract month, or ``SPY MSFT``.

Against the simulator, with ``ibdata sim`` running in another terminal::

    IB_PORT=7497 python examples/contract_lookup.py AAPL EURBBL

Against TWS or IB Gateway with the API enabled, set ``IB_HOST`` / ``IB_PORT`` (TWS 7497
paper, 7496 live; IB Gateway 4002 paper, 4001 live) and run the same command.
"""

import argparse
import datetime as dt
import sys

import ibdata


def show(details: ibdata.ContractDetails) -> None:
    """Print the fields most programs need from one contract."""
    c = details.contract
    print(details.long_name or c.symbol)
    print(f"  conId            {c.con_id}")
    print(f"  symbol           {c.symbol} ({c.sec_type}, local symbol {c.local_symbol})")
    primary = f", primary {c.primary_exchange}" if c.primary_exchange else ""
    print(f"  exchange         {c.exchange}{primary}")
    print(f"  currency         {c.currency}")
    print(f"  trading class    {c.trading_class}")
    if c.last_trade_date:
        print(f"  last trade date  {c.last_trade_date} (multiplier {c.multiplier})")
    print(f"  min tick         {details.min_tick}")
    print(f"  time zone        {details.time_zone_id}")
    now = dt.datetime.now(dt.timezone.utc)
    upcoming = [s for s in details.liquid_hours if s.end > now]  # sessions are in UTC
    if upcoming:
        start, end = upcoming[0].start, upcoming[0].end
        print(f"  liquid hours     {start:%a %Y-%m-%d %H:%M} - {end:%H:%M} UTC")


def main() -> None:
    parser = argparse.ArgumentParser(description="Print contract details.")
    parser.add_argument("instruments", nargs="*", default=["AAPL", "EURBBL"])
    args = parser.parse_args()

    try:
        with ibdata.Client.from_env() as ib:
            for instrument in args.instruments:
                for details in ib.get_contract_details(instrument):
                    show(details)
    except ibdata.IBDataError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
